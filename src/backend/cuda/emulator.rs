//! The generated CUDA C run on the host, to check each kernel without a GPU.
//!
//! The kernels' source is compiled by the host's C++ compiler together with the
//! prelude of the `fluxion-cuda-emulator` crate, which gives it CUDA's names: each
//! block of a launch runs in turn; a block that synchronises runs each thread as an
//! OS thread (`__syncthreads` a barrier, `__shared__` memory a static the block's
//! threads share), any other block runs its threads one after another. The launches
//! go through the same [`Runner`] calls as on the GPU: the same launch shapes,
//! argument order, split reductions and their second pass. The tests compare every
//! generated kernel with its recorded formula evaluated on the host. (The same
//! crate stands in for the CUDA libraries as a whole, so that `tests/cuda.rs` runs
//! without a GPU: `scripts/cuda-emulator.sh`.)

use std::ffi::c_void;
use std::format;
use std::process::Command;
use std::string::String;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::vec::Vec;

use cudarc::driver::LaunchConfig;
use fluxion_cuda_emulator::kernels::{self, Entry};

use super::codegen::CType;
use super::{BufferArg, CudaElement, CudaError, Runner};

/// The generated kernels, compiled for the host into a shared library.
pub(super) struct Emulator {
    library: libloading::Library,
}

impl Emulator {
    /// The process's emulator, compiled on first use. Its launch state (the block's
    /// barrier, `gridDim`) is global, so one launch runs at a time: tests side by
    /// side wait for the lock. `None`, after saying why, where the host has no `g++`
    /// (unless `FLUXION_REQUIRE_NVRTC`, set by CI, asks for the kernel compilers).
    pub(super) fn get() -> Option<MutexGuard<'static, Emulator>> {
        static EMULATOR: OnceLock<Option<Mutex<Emulator>>> = OnceLock::new();
        let emulator = EMULATOR.get_or_init(|| {
            let version = Command::new("g++").arg("--version").output();
            if version.is_ok_and(|output| output.status.success()) {
                return Some(Mutex::new(Emulator::new()));
            }
            assert!(std::env::var_os("FLUXION_REQUIRE_NVRTC").is_none(), "g++ is required here");
            std::eprintln!("skipping the host emulation of the GPU kernels: no g++ (C++20) found");
            None
        });
        Some(emulator.as_ref()?.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Compiles every kernel that fluxion generates, for both element types.
    fn new() -> Emulator {
        let source: String = [CType::F32, CType::F64]
            .into_iter()
            .flat_map(super::builtin_kernel_sources)
            .map(|(_, kernel)| kernel)
            .collect();
        let library_path =
            kernels::compile(&source).unwrap_or_else(|log| panic!("g++ rejects the kernels: {log}"));
        // SAFETY: the library was built from the kernels above and the emulator's
        // prelude; loading runs no initialisers other than the C++ runtime's.
        let library = unsafe { libloading::Library::new(&library_path) }.expect("the kernels' library loads");
        Emulator { library }
    }
}

impl<T: CudaElement> Runner<T> for Emulator {
    type Buffer = Vec<T>;

    fn len(buffer: &Vec<T>) -> usize {
        buffer.len()
    }

    /// A buffer that is not asked to be zeroed holds NaN: an element read before it
    /// is written shows.
    fn buffer(&self, len: usize, zeroed: bool) -> Result<Vec<T>, CudaError> {
        let fill = if zeroed { T::zero() } else { T::from_f64(f64::NAN) };
        Ok(std::vec![fill; len.max(1)])
    }

    fn upload(&self, elements: &[T]) -> Result<Vec<T>, CudaError> {
        Ok(elements.to_vec())
    }

    fn multiprocessors(&self) -> usize {
        2
    }

    unsafe fn launch(
        &self,
        name: &str,
        _source: &dyn Fn() -> Result<String, CudaError>,
        buffers: &mut [BufferArg<'_, Vec<T>>],
        params: &[T],
        sizes: &[u64],
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        let pointers: Vec<*mut c_void> = buffers
            .iter_mut()
            .map(|buffer| match buffer {
                BufferArg::Read(buffer) => buffer.as_ptr() as *mut c_void,
                BufferArg::Write(buffer) => buffer.as_mut_ptr() as *mut c_void,
            })
            .collect();
        // The address of each argument in the kernel's order, as `cuLaunchKernel` takes
        // them: buffers, then parameters, then sizes.
        let arguments: Vec<*mut c_void> = (pointers.iter().map(|pointer| pointer as *const _ as *mut c_void))
            .chain(params.iter().map(|param| param as *const T as *mut c_void))
            .chain(sizes.iter().map(|size| size as *const u64 as *mut c_void))
            .collect();
        let grid = [config.grid_dim.0, config.grid_dim.1, config.grid_dim.2];
        let block = [config.block_dim.0, config.block_dim.1, config.block_dim.2];
        // SAFETY: every `run_` symbol of a compiled module is an `Entry` (`kernels`).
        let entry = unsafe { self.library.get::<Entry>(kernels::entry_name(name).as_bytes()) }
            .unwrap_or_else(|error| panic!("no entry point for `{name}`: {error}"));
        // SAFETY: the kernel reads and writes the buffers within the sizes passed, which
        // every launcher checks against the buffers' lengths (as on the GPU), and only
        // writes the buffers passed as `Write`; `arguments` holds one address per
        // parameter of its list, each of the declared type.
        unsafe { entry(grid.as_ptr(), block.as_ptr(), arguments.as_ptr()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::vec;

    use super::super::attention::{
        AttentionGeometry, attention_on, attention_pullback_on, attention_push_on,
    };
    use super::super::bf16::round_to_bf16_on;
    use super::super::codegen::{Combine, Indexing, Store};
    use super::super::gather::{gather_rows_on, permute_on, scatter_add_rows_on};
    use super::super::image::{
        avg_pool_on, avg_pool_pullback_on, col2im_on, im2col_on, max_pool_on, max_pool_pullback_on,
        max_pool_push_on,
    };
    use super::super::symbolic::record;
    use num_complex::Complex;
    use std::boxed::Box;

    use crate::ops::elementwise::Elementary;

    use super::super::{
        AxisRange, AxisSplit, ComplexKernel, ConvGeometry, Kernel, Kind, PoolGeometry, UpdateKernel,
        copy_block_on, infinite_line_pullback_on, line_argmax_on, max_pullback_on, transpose_elements_on,
        transpose_on,
    };
    use super::*;
    use crate::scalar::{RealScalar, overtakes};

    /// Deterministic values in [−2, 2) (xorshift64*), exact in f32.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            bits as f64 / (1u64 << 24) as f64 * 4.0 - 2.0
        }

        fn take<T: CudaElement>(&mut self, n: usize) -> Vec<T> {
            (0..n).map(|_| T::from_f64(self.next())).collect()
        }
    }

    /// |device − host| ≤ tol·max(1, |host|), NaN where the host has NaN.
    #[track_caller]
    fn assert_close(device: &[f64], host: &[f64], tol: f64, what: &str) {
        assert_eq!(device.len(), host.len(), "{what}");
        for (i, (&d, &h)) in device.iter().zip(host).enumerate() {
            let agree = if h.is_nan() || d.is_nan() {
                h.is_nan() && d.is_nan()
            } else if h.is_infinite() {
                d == h
            } else {
                (d - h).abs() <= tol * h.abs().max(1.0)
            };
            assert!(agree, "{what}, element {i}: emulated {d}, host {h}");
        }
    }

    /// What `kernel` should leave in `out` (holding `before`): its formula evaluated on
    /// the host for every element (elementwise) or folded along every line (reduction).
    fn expected(
        kernel: &Kernel,
        inputs: &[Vec<f64>],
        params: &[f64],
        axis: AxisSplit,
        before: &[f64],
    ) -> Vec<f64> {
        let expression =
            record(kernel.indexing.len(), kernel.params, |x, p| vec![(kernel.function)(x, p)]).unwrap();
        let (outer, len, inner) = axis;
        let value = |i: usize, line: usize| {
            let read: Vec<f64> = inputs
                .iter()
                .zip(&kernel.indexing)
                .map(|(input, indexing)| if *indexing == Indexing::Element { input[i] } else { input[line] })
                .collect();
            expression.evaluate(&read, params)[0]
        };
        let results: Vec<f64> = match kernel.combine {
            None => {
                (0..outer * len * inner).map(|i| value(i, (i / (len * inner)) * inner + i % inner)).collect()
            }
            Some(combine) => (0..outer * inner)
                .map(|line| {
                    let start = (line / inner) * len * inner + line % inner;
                    let values = (0..len).map(|k| value(start + k * inner, line));
                    match combine {
                        Combine::Sum => values.sum(),
                        Combine::Max => values.fold(f64::NEG_INFINITY, RealScalar::max),
                    }
                })
                .collect(),
        };
        match kernel.store {
            Store::Overwrite => results,
            Store::Accumulate => results.iter().zip(before).map(|(r, b)| b + r).collect(),
        }
    }

    /// Runs `kernel` over `axis` in the emulator on deterministic data and compares the
    /// result with [`expected`].
    fn check_kernel<T: CudaElement>(
        emulator: &Emulator,
        kernel: &Kernel,
        axis: AxisSplit,
        tol: f64,
        seed: u64,
    ) {
        let mut values = Values(seed);
        let (elements, lines) = (axis.0 * axis.1 * axis.2, axis.0 * axis.2);
        let inputs: Vec<Vec<T>> = kernel
            .indexing
            .iter()
            .map(|indexing| values.take(if *indexing == Indexing::Element { elements } else { lines }))
            .collect();
        let params: Vec<T> =
            (0..kernel.params).map(|_| T::from_f64(0.5 + values.next().abs() / 2.0)).collect();
        let mut out: Vec<T> = values.take(if kernel.combine.is_none() { elements } else { lines });
        let before: Vec<f64> = out.iter().map(|x| x.to_f64()).collect();
        let input_refs: Vec<&Vec<T>> = inputs.iter().collect();
        kernel.launch_on(emulator, &input_refs, &params, axis, &mut out).unwrap();
        let to_f64 = |xs: &[T]| xs.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
        let host_inputs: Vec<Vec<f64>> = inputs.iter().map(|input| to_f64(input)).collect();
        let want = expected(kernel, &host_inputs, &to_f64(&params), axis, &before);
        let what = format!("`{}` over {axis:?}", kernel.compiled_name(T::C_TYPE));
        assert_close(&to_f64(&out), &want, tol, &what);
    }

    #[test]
    fn every_generated_kernel_computes_its_formula() {
        let kernels = crate::ops::cuda::builtin_kernels();
        let Some(emulator) = Emulator::get() else { return };
        let elementwise_shapes = [(3, 5, 7), (1, 9, 1)];
        // Lines along the last axis and across it; the last two are split into chunks
        // (with two multiprocessors) and folded by a second pass.
        let reduction_shapes = [(2, 7, 3), (3, 300, 1), (2, 200, 5)];
        for axis in &reduction_shapes[1..] {
            assert!(super::super::reduction_launch(*axis, 2).1 > 1, "{axis:?} is split");
        }
        for (index, kernel) in kernels.iter().enumerate() {
            let shapes: &[AxisSplit] =
                if kernel.combine.is_none() { &elementwise_shapes } else { &reduction_shapes };
            for &axis in shapes {
                check_kernel::<f64>(&emulator, kernel, axis, 1e-12, index as u64 + 1);
                check_kernel::<f32>(&emulator, kernel, axis, 1e-4, index as u64 + 1);
            }
        }
        // More elements than a full grid's threads hold: the grid-stride loop's rounds.
        let add = kernels.iter().find(|kernel| kernel.name == "add").expect("an `add` kernel");
        check_kernel::<f32>(&emulator, add, (1, 70_001, 1), 1e-6, 99);
    }

    /// Runs `update` in the emulator on deterministic data and compares every written
    /// buffer with its formula evaluated on the host.
    fn check_update<T: CudaElement>(emulator: &Emulator, update: &UpdateKernel, tol: f64, seed: u64) {
        let (written, read) = update.buffers;
        let n = 1000;
        let mut values = Values(seed);
        let mut buffers: Vec<Vec<T>> = (0..written).map(|_| values.take(n)).collect();
        let reads: Vec<Vec<T>> = (0..read).map(|_| values.take(n)).collect();
        let params: Vec<T> =
            (0..update.params).map(|_| T::from_f64(0.5 + values.next().abs() / 2.0)).collect();
        let host_params: Vec<f64> = params.iter().map(|p| p.to_f64()).collect();
        let want: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let inputs: Vec<f64> =
                    buffers.iter().chain(&reads).map(|buffer| buffer[i].to_f64()).collect();
                update.expression.evaluate(&inputs, &host_params)
            })
            .collect();
        let mut written_refs: Vec<&mut Vec<T>> = buffers.iter_mut().collect();
        let read_refs: Vec<&Vec<T>> = reads.iter().collect();
        update.launch_on(emulator, &mut written_refs, &read_refs, &params).unwrap();
        for (k, buffer) in buffers.iter().enumerate() {
            let emulated: Vec<f64> = buffer.iter().map(|x| x.to_f64()).collect();
            let column: Vec<f64> = want.iter().map(|outputs| outputs[k]).collect();
            let what = format!("`{}`, buffer {k}", update.compiled_name(T::C_TYPE));
            assert_close(&emulated, &column, tol, &what);
        }
    }

    /// What each complex kernel computes, in the host's num-complex arithmetic (a real
    /// input arrives with a zero imaginary part; a real result is the real part); an
    /// elementary function, its pullback and its tangent are the host's
    /// `Elementary::apply` and `derivative` on `Complex<f64>`, `powf`'s exponent the
    /// real part of `p`.
    fn complex_reference(
        name: &str,
        p: f64,
    ) -> Box<dyn Fn(&[Complex<f64>], &[Complex<f64>]) -> Complex<f64>> {
        let elementary = |name: &str| {
            Some(match name {
                "exp" => Elementary::Exp,
                "ln" => Elementary::Ln,
                "sin" => Elementary::Sin,
                "cos" => Elementary::Cos,
                "tanh" => Elementary::Tanh,
                "sqrt" => Elementary::Sqrt,
                "sigmoid" => Elementary::Sigmoid,
                "powi_3" => Elementary::Powi(3),
                "powi_m2" => Elementary::Powi(-2),
                "powf" => Elementary::Powf(p),
                _ => return None,
            })
        };
        if let Some(f) = name.strip_suffix("_pullback").and_then(elementary) {
            return Box::new(move |x, _| f.derivative(x[0], x[1]).conj() * x[2]);
        }
        if let Some(f) = name.strip_suffix("_tangent").and_then(elementary) {
            return Box::new(move |x, _| f.derivative(x[0], x[1]) * x[2]);
        }
        if let Some(f) = elementary(name) {
            return Box::new(move |x, _| f.apply(x[0]));
        }
        let formula: fn(&[Complex<f64>], &[Complex<f64>]) -> Complex<f64> = match name {
            "fill" => |_, p| p[0],
            "interleave" => |x, _| Complex::new(x[0].re, x[1].re),
            "scale" => |x, p| x[0] * p[0],
            "conj_scale" => |x, p| x[0].conj() * p[0],
            "hadamard" => |x, _| x[0] * x[1],
            "conj_hadamard" => |x, _| x[0].conj() * x[1],
            "conj" => |x, _| x[0].conj(),
            "re" => |x, _| Complex::new(x[0].re, 0.0),
            "im" => |x, _| Complex::new(x[0].im, 0.0),
            "norm_sqr" => |x, _| Complex::new(x[0].norm_sqr(), 0.0),
            "abs" => |x, _| Complex::new(x[0].norm(), 0.0),
            "re_pullback" => |x, _| x[0],
            "im_pullback" => |x, _| Complex::new(0.0, x[0].re),
            "norm_sqr_pullback" => |x, _| x[0] * (2.0 * x[1].re),
            "abs_pullback" => |x, _| {
                let modulus = x[0].norm();
                let unit = Complex::new(x[0].re / modulus, x[0].im / modulus);
                if modulus == 0.0 { Complex::new(0.0, 0.0) } else { unit * x[1].re }
            },
            "abs_tangent" => |x, _| {
                let modulus = x[0].norm();
                let slope = x[0].re / modulus * x[1].re + x[0].im / modulus * x[1].im;
                let slope = if modulus == 0.0 { 0.0 } else { slope };
                Complex::new(slope, 0.0)
            },
            "norm_sqr_tangent" => |x, _| Complex::new(2.0 * (x[0].conj() * x[1]).re, 0.0),
            other => panic!("no host reference for the complex kernel `{other}`"),
        };
        Box::new(formula)
    }

    /// Runs a complex kernel on `n` elements in the emulator (every fourth complex
    /// input zero, for |x| at 0) and compares it with its host reference.
    fn check_complex_kernel<T: CudaElement>(emulator: &Emulator, kernel: &ComplexKernel, tol: f64) {
        let n = 1003;
        let mut values = Values(17);
        let inputs: Vec<Vec<T>> = kernel
            .inputs
            .iter()
            .map(|kind| {
                let parts = if *kind == Kind::Complex { 2 } else { 1 };
                let mut input: Vec<T> = values.take(n * parts);
                input.chunks_mut(parts).step_by(4).for_each(|element| element.fill(T::zero()));
                input
            })
            .collect();
        let params: Vec<Complex<T>> = (0..kernel.params)
            .map(|_| Complex::new(T::from_f64(values.next()), T::from_f64(values.next())))
            .collect();
        let out_parts = if kernel.output == Kind::Complex { 2 } else { 1 };
        let mut out: Vec<T> = values.take(n * out_parts);
        let before = out.clone();
        let input_refs: Vec<&Vec<T>> = inputs.iter().collect();
        kernel.launch_on(emulator, &input_refs, &params, n, &mut out).unwrap();
        let host_params: Vec<Complex<f64>> =
            params.iter().map(|p| Complex::new(p.re.to_f64(), p.im.to_f64())).collect();
        let reference = complex_reference(&kernel.name, host_params.first().map_or(0.0, |p| p.re));
        let mut want = Vec::new();
        for i in 0..n {
            let element: Vec<Complex<f64>> = inputs
                .iter()
                .zip(kernel.inputs)
                .map(|(input, kind)| match kind {
                    Kind::Complex => Complex::new(input[2 * i].to_f64(), input[2 * i + 1].to_f64()),
                    Kind::Real => Complex::new(input[i].to_f64(), 0.0),
                })
                .collect();
            let value = reference(&element, &host_params);
            let parts = [value.re, value.im];
            for (q, part) in parts.iter().enumerate().take(out_parts) {
                let earlier =
                    if kernel.store == Store::Accumulate { before[i * out_parts + q].to_f64() } else { 0.0 };
                want.push(earlier + part);
            }
        }
        let emulated: Vec<f64> = out.iter().map(|x| x.to_f64()).collect();
        assert_close(&emulated, &want, tol, &format!("`{}`", kernel.compiled_name(T::C_TYPE)));
    }

    #[test]
    fn every_complex_kernel_computes_num_complex_arithmetic() {
        let kernels = crate::ops::cuda::complex_kernels();
        let Some(emulator) = Emulator::get() else { return };
        for kernel in &kernels {
            check_complex_kernel::<f64>(&emulator, kernel, 1e-14);
            check_complex_kernel::<f32>(&emulator, kernel, 1e-5);
        }
    }

    #[test]
    fn every_update_kernel_updates_in_place_by_its_formula() {
        let Some(emulator) = Emulator::get() else { return };
        for (index, update) in crate::nn::optim::update_kernels().iter().enumerate() {
            check_update::<f64>(&emulator, update, 1e-12, index as u64 + 7);
            check_update::<f32>(&emulator, update, 1e-4, index as u64 + 7);
        }
    }

    #[test]
    fn the_written_out_kernels_transpose_copy_blocks_and_route_the_max_cotangent() {
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(11);
        // Transpose: 3 matrices of 37×70 (partial tiles on both edges).
        let (batch, rows, cols) = (3, 37, 70);
        let x: Vec<f64> = values.take(batch * rows * cols);
        let mut out = vec![0.0; x.len()];
        transpose_on(&*emulator, &x, (batch, rows, cols), &mut out).unwrap();
        for (b, r, c) in
            (0..batch).flat_map(|b| (0..rows).flat_map(move |r| (0..cols).map(move |c| (b, r, c))))
        {
            assert_eq!(
                out[(b * cols + c) * rows + r],
                x[(b * rows + r) * cols + c],
                "transpose at {b}, {r}, {c}"
            );
        }
        // A complex 37×70 matrix (two numbers to an element) transposed in two passes.
        let x: Vec<f64> = values.take(rows * cols * 2);
        let mut out = vec![0.0; x.len()];
        transpose_elements_on(&*emulator, &x, (rows, cols, 2), &mut out).unwrap();
        for (r, c, p) in (0..rows).flat_map(|r| (0..cols).flat_map(move |c| (0..2).map(move |p| (r, c, p)))) {
            assert_eq!(
                out[(c * rows + r) * 2 + p],
                x[(r * cols + c) * 2 + p],
                "complex transpose at {r}, {c}, {p}"
            );
        }
        // Block copy: positions 2..6 of an axis of 7 added to positions 1..5 of an axis of 9.
        let (outer, count, inner) = (4, 4, 3);
        let (from, to) = (AxisRange { len: 7, start: 2 }, AxisRange { len: 9, start: 1 });
        let src: Vec<f32> = values.take(outer * from.len * inner);
        let before: Vec<f32> = values.take(outer * to.len * inner);
        let mut dst = before.clone();
        copy_block_on(&*emulator, &src, &mut dst, (outer, count, inner), from, to, Store::Accumulate)
            .unwrap();
        for o in 0..outer {
            for k in 0..to.len {
                for i in 0..inner {
                    let at = (o * to.len + k) * inner + i;
                    let copied = (to.start..to.start + count).contains(&k);
                    let added = if copied {
                        src[(o * from.len + from.start + k - to.start) * inner + i]
                    } else {
                        0.0
                    };
                    assert_eq!(dst[at], before[at] + added, "copy_block at {o}, {k}, {i}");
                }
            }
        }
        // Max pullback: the cotangent goes to each line's first largest element, or
        // its first NaN, as on the host.
        let axis = (2, 5, 3);
        let mut x: Vec<f64> = values.take(30);
        // A tie along line 0 (elements 0, 3, …, 12): the first of 3 and 6 wins; a NaN
        // third along line 1 (elements 1, 4, …, 13) wins over any number.
        (x[3], x[6], x[7]) = (10.0, 10.0, f64::NAN);
        let y_bar: Vec<f64> = values.take(6);
        let mut x_bar = vec![0.0; 30];
        max_pullback_on(&*emulator, &x, &y_bar, &mut x_bar, axis, Store::Overwrite).unwrap();
        for (line, &cotangent) in y_bar.iter().enumerate() {
            let start = (line / 3) * 15 + line % 3;
            let positions: Vec<usize> = (0..5).map(|k| start + k * 3).collect();
            let first_max = positions
                .iter()
                .copied()
                .fold(positions[0], |best, at| if overtakes(x[at], x[best]) { at } else { best });
            for at in positions {
                assert_eq!(x_bar[at], if at == first_max { cotangent } else { 0.0 }, "max_pullback at {at}");
            }
        }
        assert_eq!((x_bar[3], x_bar[7]), (y_bar[0], y_bar[1]), "the tie and the NaN");
        // Argmax: the same element's position along the axis, written as index bits.
        let mut indices = vec![0.0; 6];
        line_argmax_on(&*emulator, &x, &mut indices, axis).unwrap();
        for (line, &index) in indices.iter().enumerate() {
            let host =
                crate::ops::reduce::line_argmax(&x, line, 5, 3).map(|flat| (flat - (line / 3) * 15) / 3);
            assert_eq!(Some(index.to_index()), host, "argmax of line {line}");
        }
        assert_eq!((indices[0].to_index(), indices[1].to_index()), (1, 2), "the tie and the NaN");

        // logsumexp's +∞ lines: s̄ added to each such line's first +∞, other lines
        // left alone (lines 0 and 4 have two +∞; 1 is finite, 2 all −∞, 3 NaN).
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let mut x: Vec<f64> = values.take(30);
        (x[3], x[9], x[19], x[22]) = (inf, inf, inf, inf);
        [2, 5, 8, 11, 14].into_iter().for_each(|at| x[at] = f64::NEG_INFINITY);
        x[15] = nan;
        let s = [inf, 1.0, f64::NEG_INFINITY, nan, inf, 2.0];
        let s_bar: Vec<f64> = values.take(6);
        let before: Vec<f64> = values.take(30);
        let mut x_bar = before.clone();
        infinite_line_pullback_on(&*emulator, &x, (&s.to_vec(), &s_bar), &mut x_bar, axis).unwrap();
        let mut expected = before;
        (expected[3], expected[19]) = (expected[3] + s_bar[0], expected[19] + s_bar[4]);
        assert_eq!(x_bar, expected, "infinite_line_pullback");
    }

    #[test]
    fn the_image_kernels_unfold_fold_back_and_pool_as_the_loops_do() {
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(12);
        // 2 images of 3 channels, 5×7, a 3×2 kernel with stride 2 and padding 1:
        // outputs ⌊(5 + 2 − 3)/2⌋ + 1 = 3 by ⌊(7 + 2 − 2)/2⌋ + 1 = 4.
        let geometry = ConvGeometry {
            batch: 2,
            channels: 3,
            height: 5,
            width: 7,
            kernel: (3, 2),
            output: (3, 4),
            stride: 2,
            padding: 1,
        };
        let x: Vec<f64> = values.take(geometry.image_elements());
        let mut cols = vec![f64::NAN; geometry.positions() * geometry.taps()];
        im2col_on(&*emulator, &x, &mut cols, geometry).unwrap();
        let mut expected = Vec::new();
        for (b, i, j) in (0..2).flat_map(|b| (0..3).flat_map(move |i| (0..4).map(move |j| (b, i, j)))) {
            for (c, p, q) in (0..3).flat_map(|c| (0..3).flat_map(move |p| (0..2).map(move |q| (c, p, q)))) {
                let (row, column) = ((2 * i + p) as isize - 1, (2 * j + q) as isize - 1);
                let inside = (0..5).contains(&row) && (0..7).contains(&column);
                expected.push(if inside {
                    x[((b * 3 + c) * 5 + row as usize) * 7 + column as usize]
                } else {
                    0.0
                });
            }
        }
        assert_eq!(cols, expected, "im2col");
        // col2im is im2col's adjoint: ⟨im2col(x), ḡ⟩ = ⟨x, col2im(ḡ)⟩, and it adds when asked.
        let g: Vec<f64> = values.take(cols.len());
        let before: Vec<f64> = values.take(x.len());
        let mut folded = before.clone();
        col2im_on(&*emulator, &g, &mut folded, geometry, Store::Accumulate).unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        let added: Vec<f64> = folded.iter().zip(&before).map(|(f, b)| f - b).collect();
        assert!((dot(&cols, &g) - dot(&x, &added)).abs() < 1e-12, "col2im is not im2col's adjoint");
        // Every input element's sum, by its own loop, for the overwriting kernel in f32.
        let g32: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        let mut folded32 = vec![f32::NAN; x.len()];
        col2im_on(&*emulator, &g32, &mut folded32, geometry, Store::Overwrite).unwrap();
        let mut sums = vec![0.0f64; x.len()];
        for (position, row) in expected.chunks(18).enumerate() {
            let (b, i, j) = (position / 12, position / 4 % 3, position % 4);
            for (tap, _) in row.iter().enumerate() {
                let (c, p, q) = (tap / 6, tap / 2 % 3, tap % 2);
                let (h, w) = ((2 * i + p) as isize - 1, (2 * j + q) as isize - 1);
                if (0..5).contains(&h) && (0..7).contains(&w) {
                    sums[((b * 3 + c) * 5 + h as usize) * 7 + w as usize] += g[position * 18 + tap];
                }
            }
        }
        let folded32: Vec<f64> = folded32.iter().map(|&v| v as f64).collect();
        assert_close(&folded32, &sums, 1e-5, "col2im");

        // Max pooling 2×2 on 3 images of 5×7 (the last row and column in no window),
        // with a tie in the first window (the first of the tied elements wins) and a
        // NaN last in the second (NaN wins, as on the host).
        let pool =
            PoolGeometry { images: 3, height: 5, width: 7, window: 2, stride: 2, padding: 0, output: (2, 3) };
        let mut x: Vec<f64> = values.take(3 * 35);
        (x[1], x[7], x[10]) = (10.0, 10.0, f64::NAN);
        let mut y = vec![f64::NAN; 3 * 6];
        max_pool_on(&*emulator, &x, &mut y, pool).unwrap();
        let x_dot: Vec<f64> = values.take(x.len());
        let mut y_dot = vec![f64::NAN; y.len()];
        max_pool_push_on(&*emulator, &x, &x_dot, &mut y_dot, pool).unwrap();
        let y_bar: Vec<f64> = values.take(y.len());
        let mut x_bar = vec![f64::NAN; x.len()];
        max_pool_pullback_on(&*emulator, &x, &y_bar, &mut x_bar, pool, Store::Overwrite).unwrap();
        let mut expected_bar = vec![0.0; x.len()];
        for (window, (&pooled, &cotangent)) in y.iter().zip(&y_bar).enumerate() {
            let (image, i, j) = (window / 6, window / 3 % 2, window % 3);
            let at = |p: usize, q: usize| image * 35 + (2 * i + p) * 7 + 2 * j + q;
            let first_max = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(p, q)| at(p, q)).into_iter().fold(
                at(0, 0),
                |best, at| {
                    if overtakes(x[at], x[best]) { at } else { best }
                },
            );
            assert_eq!(pooled.to_bits(), x[first_max].to_bits(), "max_pool, window {window}");
            assert_eq!(y_dot[window], x_dot[first_max], "max_pool_push, window {window}");
            expected_bar[first_max] = cotangent;
        }
        assert_eq!(x_bar, expected_bar, "max_pool_pullback");
        assert_eq!(x_bar[1], y_bar[0], "the tie goes to the first maximum");
        assert!(y[1].is_nan() && x_bar[10] == y_bar[1], "a NaN in a window is its maximum");

        // Average pooling 3×3 on 2 images of 7×8 (the last row and two columns in no
        // window), accumulating onto a cotangent already there.
        let pool =
            PoolGeometry { images: 2, height: 7, width: 8, window: 3, stride: 3, padding: 0, output: (2, 2) };
        let x: Vec<f64> = values.take(2 * 56);
        let mut y = vec![f64::NAN; 2 * 4];
        avg_pool_on(&*emulator, &x, &mut y, pool).unwrap();
        let y_bar: Vec<f64> = values.take(y.len());
        let earlier: Vec<f64> = values.take(x.len());
        let mut x_bar = earlier.clone();
        avg_pool_pullback_on(&*emulator, &y_bar, &mut x_bar, pool, Store::Accumulate).unwrap();
        let mut expected_bar = earlier;
        for (window, (&pooled, &cotangent)) in y.iter().zip(&y_bar).enumerate() {
            let (image, i, j) = (window / 4, window / 2 % 2, window % 2);
            let at = |p: usize, q: usize| image * 56 + (3 * i + p) * 8 + 3 * j + q;
            let sum: f64 = (0..3).flat_map(|p| (0..3).map(move |q| (p, q))).map(|(p, q)| x[at(p, q)]).sum();
            assert_eq!(pooled, sum / 9.0, "avg_pool, window {window}");
            for (p, q) in (0..3).flat_map(|p| (0..3).map(move |q| (p, q))) {
                expected_bar[at(p, q)] += cotangent / 9.0;
            }
        }
        assert_eq!(x_bar, expected_bar, "avg_pool_pullback");

        // Overlapping windows of 3 with stride 2 over 2 images of 5×6 padded by 1 (a
        // ResNet stem's pooling): ⌊(5 + 2 − 3)/2⌋ + 1 = 3 rows, 3 columns of windows;
        // an element read by up to four windows collects each one's cotangent.
        let pool =
            PoolGeometry { images: 2, height: 5, width: 6, window: 3, stride: 2, padding: 1, output: (3, 3) };
        let x: Vec<f64> = values.take(2 * 30);
        let (mut largest, mut mean) = (vec![f64::NAN; 2 * 9], vec![f64::NAN; 2 * 9]);
        max_pool_on(&*emulator, &x, &mut largest, pool).unwrap();
        avg_pool_on(&*emulator, &x, &mut mean, pool).unwrap();
        let y_bar: Vec<f64> = values.take(2 * 9);
        let (mut max_bar, mut avg_bar) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
        max_pool_pullback_on(&*emulator, &x, &y_bar, &mut max_bar, pool, Store::Overwrite).unwrap();
        avg_pool_pullback_on(&*emulator, &y_bar, &mut avg_bar, pool, Store::Overwrite).unwrap();
        let (mut expected_max_bar, mut expected_avg_bar) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        for (window, &cotangent) in y_bar.iter().enumerate() {
            let (image, i, j) = (window / 9, window / 3 % 3, window % 3);
            let inside = (0..3).flat_map(|p| (0..3).map(move |q| (2 * i + p, 2 * j + q)));
            let read: Vec<usize> = inside
                .filter(|&(h, w)| (1..=5).contains(&h) && (1..=6).contains(&w))
                .map(|(h, w)| image * 30 + (h - 1) * 6 + w - 1)
                .collect();
            let first_max =
                read.iter().fold(read[0], |best, &at| if overtakes(x[at], x[best]) { at } else { best });
            assert_eq!(largest[window], x[first_max], "overlapping max_pool, window {window}");
            let sum: f64 = read.iter().map(|&at| x[at]).sum();
            assert_eq!(mean[window], sum / 9.0, "padded avg_pool, window {window}");
            expected_max_bar[first_max] += cotangent;
            read.iter().for_each(|&at| expected_avg_bar[at] += cotangent / 9.0);
        }
        assert_eq!(max_bar, expected_max_bar, "overlapping max_pool_pullback");
        assert_eq!(avg_bar, expected_avg_bar, "padded avg_pool_pullback");
    }

    #[test]
    fn the_pooling_kernels_read_every_geometry_as_the_loops_do() {
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(14);
        // Windows of 1 to 4, strides of 1 to 4 (gaps between windows when S > K),
        // every padding up to half the window, on images of a few sizes: each
        // kernel's output equal to the loops' to the bit.
        for (window, stride) in (1..=4).flat_map(|k| (1..=4).map(move |s| (k, s))) {
            for padding in 0..=window / 2 {
                for height in (window - 2 * padding).max(1)..window + 3 {
                    let width = height + 1;
                    let out = |n: usize| (n + 2 * padding - window) / stride + 1;
                    let (ho, wo) = (out(height), out(width));
                    let pool =
                        PoolGeometry { images: 2, height, width, window, stride, padding, output: (ho, wo) };
                    let mut x: Vec<f64> = values.take(2 * height * width);
                    x[0] = x[1]; // a tie
                    let y_bar: Vec<f64> = values.take(2 * ho * wo);
                    let (mut largest, mut mean) = (vec![f64::NAN; y_bar.len()], vec![f64::NAN; y_bar.len()]);
                    let (mut max_bar, mut avg_bar) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
                    max_pool_on(&*emulator, &x, &mut largest, pool).unwrap();
                    avg_pool_on(&*emulator, &x, &mut mean, pool).unwrap();
                    max_pool_pullback_on(&*emulator, &x, &y_bar, &mut max_bar, pool, Store::Overwrite)
                        .unwrap();
                    avg_pool_pullback_on(&*emulator, &y_bar, &mut avg_bar, pool, Store::Overwrite).unwrap();
                    let (mut expected_max_bar, mut expected_avg_bar) =
                        (vec![0.0; x.len()], vec![0.0; x.len()]);
                    for (output, &cotangent) in y_bar.iter().enumerate() {
                        let (image, i, j) = (output / (ho * wo), output / wo % ho, output % wo);
                        let taps = (0..window)
                            .flat_map(|p| (0..window).map(move |q| (stride * i + p, stride * j + q)));
                        let read: Vec<usize> = taps
                            .filter(|&(h, w)| {
                                (padding..padding + height).contains(&h)
                                    && (padding..padding + width).contains(&w)
                            })
                            .map(|(h, w)| (image * height + h - padding) * width + w - padding)
                            .collect();
                        let first_max = read
                            .iter()
                            .fold(read[0], |best, &at| if overtakes(x[at], x[best]) { at } else { best });
                        let sum = read.iter().fold(0.0, |total, &at| total + x[at]);
                        let what = format!("{pool:?}, window {output}");
                        assert_eq!(largest[output], x[first_max], "max_pool, {what}");
                        assert_eq!(mean[output], sum / (window * window) as f64, "avg_pool, {what}");
                        expected_max_bar[first_max] += cotangent;
                        read.iter()
                            .for_each(|&at| expected_avg_bar[at] += cotangent / (window * window) as f64);
                    }
                    assert_eq!(max_bar, expected_max_bar, "max_pool_pullback, {pool:?}");
                    assert_eq!(avg_bar, expected_avg_bar, "avg_pool_pullback, {pool:?}");
                }
            }
        }
    }

    #[test]
    fn the_row_gather_and_its_pullback_read_and_add_the_rows_the_loops_do() {
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(13);
        // A table of 6 rows of 5, rows 3 and 0 read more than once, rows 2 and 5 never.
        let (rows, columns, indices) = (6, 5, [3, 0, 3, 4, 3, 1, 0]);
        let table: Vec<f32> = values.take(rows * columns);
        let mut out = vec![f32::NAN; indices.len() * columns];
        gather_rows_on(&*emulator, &table, (rows, columns), &indices, &mut out).unwrap();
        for (k, &index) in indices.iter().enumerate() {
            assert_eq!(out[k * columns..][..columns], table[index * columns..][..columns], "row {k}");
        }
        // The pullback sums each row's cotangents in the order of the indices, as the
        // host's loop does: bit for bit, on top of what the table's cotangent held.
        let y_bar: Vec<f64> = values.take(indices.len() * columns);
        let before: Vec<f64> = values.take(rows * columns);
        let mut table_bar = before.clone();
        scatter_add_rows_on(&*emulator, &y_bar, &indices, &mut table_bar, (rows, columns)).unwrap();
        let mut sums = vec![0.0f64; rows * columns];
        for (k, &index) in indices.iter().enumerate() {
            for c in 0..columns {
                sums[index * columns + c] += y_bar[k * columns + c];
            }
        }
        let expected: Vec<f64> = before.iter().zip(&sums).map(|(b, s)| b + s).collect();
        assert_eq!(table_bar, expected, "scatter_add_rows");
    }

    #[test]
    fn the_permutation_kernel_reads_each_element_where_the_host_does() {
        use crate::shape::{Dyn, Shape};
        use crate::tensor::{Heap, Tensor};
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(17);
        // Rank 4, axes 3, 0, 2, 1, against the host's permutation.
        let shape = (Dyn(2), Dyn(3), Dyn(5), Dyn(7));
        let x: Vec<f64> = values.take(shape.num_elements());
        let host = Tensor::<f64, _, Heap>::from_elements(shape, x.iter().copied())
            .permute(crate::Axes::<3, 0, 2, 1>);
        let mut out = vec![f64::NAN; x.len()];
        permute_on(&*emulator, &x, &[2, 3, 5, 7], &[3, 0, 2, 1], 1, &mut out).unwrap();
        assert_eq!(out, host.as_slice(), "rank 4");
        // Complex elements (two numbers each), rank 3, axes 2, 0, 1.
        let z: Vec<f32> = values.take(4 * 6 * 3 * 2);
        let mut out = vec![f32::NAN; z.len()];
        permute_on(&*emulator, &z, &[4, 6, 3], &[2, 0, 1], 2, &mut out).unwrap();
        for (k, i, j, part) in (0..3).flat_map(|k| {
            (0..4).flat_map(move |i| (0..6).flat_map(move |j| (0..2).map(move |p| (k, i, j, p))))
        }) {
            assert_eq!(
                out[((k * 4 + i) * 6 + j) * 2 + part],
                z[((i * 6 + j) * 3 + k) * 2 + part],
                "at {k}, {i}, {j}, {part}"
            );
        }
    }

    #[test]
    fn bf16_rounding_takes_the_nearest_value_with_ties_to_even() {
        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(14);
        let mut x: Vec<f32> = values.take(200);
        let specials = [
            1.0 + 2f32.powi(-8),       // halfway between 1 and its next bf16: to 1 (even)
            1.0 + 3.0 * 2f32.powi(-8), // halfway, upwards to the even neighbour
            -0.0,
            f32::INFINITY,
            f32::MAX, // rounds up past the largest bf16: infinity
            f32::MIN_POSITIVE / 3.0,
            f32::NAN,
        ];
        x.extend(specials);
        let packed = round_to_bf16_on(&*emulator, &x, x.len()).unwrap();
        let rounded: Vec<f32> = packed
            .iter()
            .flat_map(|slot| {
                let bits = slot.to_bits();
                [bits & 0xffff, bits >> 16].map(|half| f32::from_bits(half << 16))
            })
            .take(x.len())
            .collect();
        for (&value, &r) in x.iter().zip(&rounded) {
            if value.is_nan() {
                assert!(r.is_nan(), "NaN rounds to {r}");
                continue;
            }
            if value == 0.0 {
                assert_eq!(r.to_bits(), value.to_bits(), "a zero keeps its sign");
                continue;
            }
            if value.abs() > 3.3e38 {
                assert_eq!(r, value.signum() * f32::INFINITY, "{value:e}");
                continue;
            }
            // No bf16 neighbour of r is nearer to the value; a tie keeps an even mantissa.
            let bits = r.to_bits() >> 16;
            let distance = |candidate: u32| (f32::from_bits(candidate << 16) as f64 - value as f64).abs();
            let (own, up, down) = (distance(bits), distance(bits + 1), distance(bits.wrapping_sub(1)));
            assert!(own <= up && own <= down, "{value:e} rounds to {r:e}");
            if own == up || own == down {
                assert_eq!(bits & 1, 0, "{value:e}: a tie goes to the even neighbour, not {r:e}");
            }
        }
        assert_eq!(rounded[200], 1.0);
        assert_eq!(rounded[201], 1.0 + 4.0 * 2f32.powi(-8));
    }

    /// The attention kernels on `sequences` of LQ queries and LK keys of W values in H
    /// heads, against the host's value, tangent and cotangents.
    fn check_attention<const W: usize, const H: usize, const LQ: usize, const LK: usize>(
        emulator: &Emulator,
        values: &mut Values,
        sequences: usize,
        seen: crate::ops::attention::Seen<'_>,
    ) {
        use crate::ops::attention::{attend, pullback, push};
        use crate::shape::{Const, Dyn};
        use crate::tensor::{Heap, Tensor};
        type Rows<const W: usize> = Tensor<f64, (Dyn, Const<W>), Heap>;
        let sizes = [LQ, LK].map(|tokens| sequences * tokens * W);
        let host = |elements: &[f64]| -> Rows<W> {
            Tensor::from_flat_fn((Dyn(elements.len() / W), Const), |i| elements[i])
        };
        let [q, q_dot, y_bar] = [(); 3].map(|()| values.take::<f64>(sizes[0]));
        let [k, v, k_dot, v_dot] = [(); 4].map(|()| values.take::<f64>(sizes[1]));
        let geometry = AttentionGeometry {
            sequences,
            query_tokens: LQ,
            key_tokens: LK,
            width: W,
            heads: H,
            causal: seen.causal,
        };
        let lengths = seen
            .lengths
            .map(|lengths| lengths.iter().map(|&length| f64::from_index(length)).collect::<Vec<f64>>());
        let launched = (geometry, lengths.as_ref());
        let what = |name: &str| format!("{name}, {geometry:?}, {:?}", seen.lengths);
        let (hq, hk, hv) = (host(&q), host(&k), host(&v));
        let mut y = vec![f64::NAN; sizes[0]];
        attention_on(emulator, [&q, &k, &v], &mut y, launched).unwrap();
        let expected =
            attend::<f64, Dyn, Dyn, W, H, LQ, LK, Heap>("attention", &hq, [&hk, &hv], seen).unwrap();
        assert_close(&y, expected.as_slice(), 1e-14, &what("attention"));
        let mut y_dot = vec![f64::NAN; sizes[0]];
        attention_push_on(emulator, [&q, &k, &v], [&q_dot, &k_dot, &v_dot], &mut y_dot, launched).unwrap();
        let dots = (host(&q_dot), [host(&k_dot), host(&v_dot)]);
        let expected = push::<f64, Dyn, Dyn, W, H, LQ, LK, Heap>(
            "attention_push",
            (&hq, [&hk, &hv]),
            (&dots.0, [&dots.1[0], &dots.1[1]]),
            seen,
        );
        assert_close(&y_dot, expected.as_slice(), 1e-14, &what("attention_push"));
        let (mut q_bar, mut key_bars) =
            (vec![f64::NAN; sizes[0]], [(); 2].map(|()| vec![f64::NAN; sizes[1]]));
        let [k_bar, v_bar] = &mut key_bars;
        attention_pullback_on(emulator, [&q, &k, &v], &y_bar, [&mut q_bar, k_bar, v_bar], launched).unwrap();
        let (host_q_bar, host_key_bars) = pullback::<f64, Dyn, Dyn, W, H, LQ, LK, Heap>(
            "attention_pullback",
            (&hq, [&hk, &hv]),
            &host(&y_bar),
            seen,
        );
        assert_close(&q_bar, host_q_bar.as_slice(), 1e-13, &what("q̄"));
        for (name, (device, host)) in ["k̄", "v̄"].iter().zip(key_bars.iter().zip(&host_key_bars)) {
            assert_close(device, host.as_slice(), 1e-13, &what(name));
        }
    }

    #[test]
    fn the_attention_kernels_compute_the_hosts_values_and_derivatives() {
        use crate::ops::attention::{Heads, Mask, Seen, Tokens};
        use crate::shape::{Const, Dyn};
        use crate::tensor::{Heap, Tensor};

        let Some(emulator) = Emulator::get() else { return };
        let mut values = Values(15);
        for mask in [Mask::Full, Mask::Causal] {
            let seen = Seen::new(mask, None);
            // Two sequences of 4 tokens of 6 values in 2 heads of 3; one-token
            // sequences in heads of one value; no sequence; 320 queries, so that the
            // grid-stride loop of a 256-thread block runs more than once.
            check_attention::<6, 2, 4, 4>(&emulator, &mut values, 2, seen);
            check_attention::<3, 3, 1, 1>(&emulator, &mut values, 3, seen);
            check_attention::<6, 2, 4, 4>(&emulator, &mut values, 0, seen);
            check_attention::<8, 4, 16, 16>(&emulator, &mut values, 5, seen);
            // Padded sequences: 2 and 4 of 4 real keys, then 1 of 1.
            check_attention::<6, 2, 4, 4>(&emulator, &mut values, 2, Seen::new(mask, Some(&[2, 4])));
            check_attention::<3, 3, 1, 1>(&emulator, &mut values, 1, Seen::new(mask, Some(&[1])));
        }
        // Cross-attention: 3 queries to 5 keys, and 6 queries to 2 keys, each with and
        // without padding and the causal mask; 320 keys in the keys' pullback.
        for mask in [Mask::Full, Mask::Causal] {
            for lengths in [None, Some(&[5, 1, 3][..])] {
                check_attention::<6, 2, 3, 5>(&emulator, &mut values, 3, Seen::new(mask, lengths));
            }
            for lengths in [None, Some(&[2, 1][..])] {
                check_attention::<4, 2, 6, 2>(&emulator, &mut values, 2, Seen::new(mask, lengths));
            }
        }
        check_attention::<8, 4, 2, 16>(&emulator, &mut values, 5, Seen::new(Mask::Full, None));
        // f32 against the host in f64.
        type Rows = Tensor<f64, (Dyn, Const<6>), Heap>;
        let q: Vec<f32> = values.take(8 * 6);
        let (k, v): (Vec<f32>, Vec<f32>) = (values.take(8 * 6), values.take(8 * 6));
        let geometry = AttentionGeometry {
            sequences: 2,
            query_tokens: 4,
            key_tokens: 4,
            width: 6,
            heads: 3,
            causal: true,
        };
        let mut y = vec![f32::NAN; q.len()];
        attention_on(&*emulator, [&q, &k, &v], &mut y, (geometry, None)).unwrap();
        let wide = |x: &[f32]| -> Rows { Tensor::from_flat_fn((Dyn(8), Const), |i| x[i] as f64) };
        let expected = wide(&q).attention(&wide(&k), &wide(&v), Heads::<3>, Tokens::<4>, Mask::Causal);
        let y: Vec<f64> = y.iter().map(|&y| y as f64).collect();
        assert_close(&y, expected.as_slice(), 1e-5, "attention in f32");
        // Padded, the lengths as f32 bits.
        let lengths: Vec<f32> = [3, 1].map(f32::from_index).to_vec();
        let mut y = vec![f32::NAN; q.len()];
        attention_on(&*emulator, [&q, &k, &v], &mut y, (geometry, Some(&lengths))).unwrap();
        let expected =
            wide(&q).padded_attention(&wide(&k), &wide(&v), Heads::<3>, Tokens::<4>, Mask::Causal, &[3, 1]);
        let y: Vec<f64> = y.iter().map(|&y| y as f64).collect();
        assert_close(&y, expected.as_slice(), 1e-5, "padded attention in f32");
    }
}
