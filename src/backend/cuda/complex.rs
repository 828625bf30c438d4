//! Generated elementwise kernels on complex numbers.
//!
//! A complex element lives on the GPU as two parts, re then im (CUDA's `cuComplex`
//! layout). A [`ComplexKernel`] is a function of complex (or real) inputs and complex
//! parameters, written with num-complex's own arithmetic — the definitions the host
//! runs — and evaluated on `Complex<Sym>`: the recorded real and imaginary parts
//! become one kernel that reads each input's parts and stores the result's.

use std::boxed::Box;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use cudarc::driver::CudaSlice;
use num_complex::Complex;
use num_traits::Zero;

use super::codegen::{self, CType, Store};
use super::symbolic::{self, Sym};
use super::{BufferArg, CudaElement, CudaError, Device, Runner, elementwise_launch};

/// Whether a kernel's input or result is complex (two parts) or real (one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One part: a real number, read as a complex one with a zero imaginary part.
    Real,
    /// Two parts: re, then im.
    Complex,
}

impl Kind {
    fn parts(self) -> usize {
        match self {
            Kind::Real => 1,
            Kind::Complex => 2,
        }
    }

    fn letter(self) -> char {
        match self {
            Kind::Real => 'r',
            Kind::Complex => 'c',
        }
    }
}

/// A complex function applied elementwise: `out[i] (=|+=) f(in₀[i], in₁[i], …; p…)`,
/// each parameter complex.
pub(crate) struct ComplexKernel {
    /// The operation's name, e.g. `"hadamard"`.
    pub name: String,
    /// What each input holds.
    pub inputs: &'static [Kind],
    /// The number of complex parameters.
    pub params: usize,
    /// What the result holds (a real result keeps f's real part).
    pub output: Kind,
    /// How the result is stored.
    pub store: Store,
    /// The function, written with num-complex's arithmetic.
    pub function: Box<dyn Fn(&[Complex<Sym>], &[Complex<Sym>]) -> Complex<Sym>>,
}

impl ComplexKernel {
    /// The compiled kernel's name for parts of type `ctype`: the operation, the kinds
    /// of the inputs, the number of parameters, the result's kind and store, the part
    /// type — everything that shapes the source, so a name always denotes one kernel.
    pub fn compiled_name(&self, ctype: CType) -> String {
        let kinds: String = self.inputs.iter().map(|kind| kind.letter()).collect();
        let store = if self.store == Store::Overwrite { 'w' } else { 'a' };
        let (name, output, params) = (&self.name, self.output.letter(), self.params);
        format!("complex_{name}_{kinds}{params}_{output}{store}_{}", ctype.name())
    }

    /// The kernel's CUDA C for parts of type `ctype`.
    pub fn source(&self, ctype: CType) -> Result<String, CudaError> {
        let parts: Vec<usize> = self.inputs.iter().map(|kind| kind.parts()).collect();
        let expression = symbolic::record(parts.iter().sum(), 2 * self.params, |x, p| {
            let mut next = 0;
            let inputs: Vec<Complex<Sym>> = self
                .inputs
                .iter()
                .map(|kind| {
                    next += kind.parts();
                    match kind {
                        Kind::Real => Complex::new(x[next - 1], Sym::zero()),
                        Kind::Complex => Complex::new(x[next - 2], x[next - 1]),
                    }
                })
                .collect();
            let params: Vec<Complex<Sym>> =
                (0..self.params).map(|k| Complex::new(p[2 * k], p[2 * k + 1])).collect();
            let value = (self.function)(&inputs, &params);
            match self.output {
                Kind::Real => vec![value.re],
                Kind::Complex => vec![value.re, value.im],
            }
        })
        .map_err(|e| CudaError::Unrecordable(format!("kernel `{}`: {e}", self.name)))?;
        let name = self.compiled_name(ctype);
        Ok(codegen::parts_source(
            &name,
            ctype,
            &expression,
            (&parts, self.output.parts()),
            2 * self.params,
            self.store,
        ))
    }

    /// Runs the kernel over `n` elements of `inputs` (each holding its kind's parts)
    /// with `params`, into `out`.
    ///
    /// # Panics
    /// When the numbers of inputs or parameters differ from the kernel's, or a buffer
    /// holds fewer parts than `n` elements need (checked here, so that no kernel reads
    /// or writes past a buffer).
    pub fn launch<R: CudaElement>(
        &self,
        inputs: &[&CudaSlice<R>],
        params: &[Complex<R>],
        n: usize,
        out: &mut CudaSlice<R>,
    ) -> Result<(), CudaError> {
        self.launch_on(Device::get()?, inputs, params, n, out)
    }

    /// [`ComplexKernel::launch`] on `runner`.
    pub(super) fn launch_on<R: CudaElement, Run: Runner<R>>(
        &self,
        runner: &Run,
        inputs: &[&Run::Buffer],
        params: &[Complex<R>],
        n: usize,
        out: &mut Run::Buffer,
    ) -> Result<(), CudaError> {
        assert!(
            inputs.len() == self.inputs.len() && params.len() == self.params,
            "kernel `{}` takes {} inputs and {} parameters",
            self.name,
            self.inputs.len(),
            self.params
        );
        for (input, kind) in inputs.iter().zip(self.inputs) {
            assert!(
                Run::len(input) >= n * kind.parts(),
                "kernel `{}`: an input holds {} parts, not {}",
                self.name,
                Run::len(input),
                n * kind.parts()
            );
        }
        assert!(
            Run::len(out) >= n * self.output.parts(),
            "kernel `{}`: the output holds {} parts, not {}",
            self.name,
            Run::len(out),
            n * self.output.parts()
        );
        if n == 0 {
            return Ok(());
        }
        let mut buffers: Vec<BufferArg<'_, Run::Buffer>> =
            inputs.iter().map(|input| BufferArg::Read(*input)).collect();
        buffers.push(BufferArg::Write(out));
        let scalars: Vec<R> = params.iter().flat_map(|p| [p.re, p.im]).collect();
        let name = self.compiled_name(R::C_TYPE);
        let config = elementwise_launch(n, runner.multiprocessors());
        // SAFETY: the name is made from everything that shapes the source (see
        // `compiled_name`); the arguments are the inputs, output, parameters and size of
        // `parts_source`'s list, in its order, each buffer checked above to hold its
        // parts of `n` elements.
        unsafe {
            runner.launch(&name, &|| self.source(R::C_TYPE), &mut buffers, &scalars, &[n as u64], config)
        }
    }
}
