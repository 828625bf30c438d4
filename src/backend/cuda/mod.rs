//! The GPU storage kind [`Cuda`] and the kernels behind its operations.
//!
//! `Tensor<T, S, Cuda>` keeps its elements in GPU memory (`T` is `f32`, `f64`,
//! `Complex32` or `Complex64`: a [`CudaScalar`], a complex element stored as its real
//! part, then its imaginary part), with the same static and dynamic shapes as the host
//! kinds. Transfers are explicit:
//! [`Tensor::to_device`](crate::Tensor::to_device) and
//! [`Tensor::to_host`](crate::Tensor::to_host). Its operations
//! carry the host names (`exp`, `+`, `matmul`, `sum_axis`, `log_softmax`, …) and launch
//! GPU kernels. Those that the host tensors also have as inherent methods are methods
//! of traits in the prelude ([`CudaTensorOps`](crate::ops::cuda::CudaTensorOps),
//! [`CudaRealOps`](crate::ops::cuda::CudaRealOps), …; on `Var`s
//! [`CudaVarOps`](crate::autodiff::CudaVarOps), …): the compiler tries inherent
//! methods first, so a host tensor whose storage kind is inferred later in the
//! function finds the host's method of a name, as it does without the `cuda` feature.
//!
//! | operation | kernel |
//! | --- | --- |
//! | elementary functions, `relu`, `+`, `−`, scaling, `hadamard`, user [`ScalarFunction`](crate::ops::elementwise::ScalarFunction)s and [`FusedFunction`](crate::ops::elementwise::FusedFunction)s | generated: the generic Rust definition evaluated on a symbolic scalar, printed as CUDA C; a chain of them on real tensors (of `+`, `−` and real scaling on complex ones) is one kernel (their formulas substituted into each other, [`DeviceBuffer`]) |
//! | their pullbacks | generated from the same derivative table (`Elementary::derivative`) |
//! | `sum_axis`, `max_axis`, `sum`, `mean` | generated reduction along one axis |
//! | `softmax`, `log_softmax`, `logsumexp` | reductions (max, shifted totals) + one generated elementwise pass |
//! | `broadcast_axis` (a new axis anywhere), `broadcast` of a removed axis, bias rows | generated elementwise kernel reading one value per line |
//! | `transpose` | a tiled shared-memory transpose (a complex matrix: two passes, the second moving each element's two parts together) |
//! | `concat`, `narrow` and their pullbacks | a block copy along one axis |
//! | the pullbacks of `max`, `max_axis` | one thread per line: its first largest element (its first NaN if it has one, as on the host) |
//! | the pullback of `logsumexp` | one generated elementwise pass, then one thread per line that gives a line with a +∞ its cotangent at the first +∞ |
//! | `matmul` (matrix, matrix × vector, batched) | cuBLAS `sgemm`/`dgemm`/`cgemm`/`zgemm` through `cublasGemmStridedBatchedEx` (TF32 or BF16 tensor cores only when [`Device::set_matmul_precision`] asks; BF16 rounds the operands in a kernel first); a `Complex64` product with a dimension of 1 as four `dgemm`s of the parts (cuBLAS 13.1's `zgemm` crashes on those shapes) |
//! | its pullback | the same, Ā = Ȳ·Bᴴ and B̄ = Aᴴ·Ȳ by cuBLAS's (conjugate-)transpose flag |
//! | complex `hadamard`, scaling, `inner`, `dotu`, `conj`, `re`, `im`, `abs`, `norm_sqr`, the elementary functions, their pullbacks and their tangents (forward mode) | generated from num-complex's arithmetic and the host's `Elementary` definitions evaluated on `Complex<Sym>` |
//! | complex `+`, `−`, real scaling, Σ, layout changes, `add_rows`, `gather_rows` | the real kernels on the parts (a complex element's two parts an innermost axis) |
//! | `matmul_transposed`, `transposed_matmul` and their pullbacks | the same, with cuBLAS's transpose flag instead of a copy (complex: the flag conjugates, so the transposed operand is conjugated first, or the product after, in one elementwise pass) |
//! | `conv2d`, `conv2d_padded`, `conv2d_strided` | the images unfolded (`im2col`, one row per output position), one cuBLAS product, a transpose per image |
//! | their pullbacks | two cuBLAS products, then the unfolded cotangent folded back (`col2im`, one thread per input element, no atomics) |
//! | `max_pool2d`, `avg_pool2d` (any window, stride and padding) | one thread per window |
//! | their pullbacks (average pooling's tangent is the pooling of ẋ) | one thread per input element, visiting the windows that read it in order (overlapping windows, no atomics; the host's sums to the bit) |
//! | `gather_rows` (an embedding lookup) | one thread per element; the indices travel as the element type's bits |
//! | its pullback | the indices grouped by row on the host, one thread per (row, column) summing its group in order (no atomics) |
//! | `add_channels` and its pullback | the bias read once per line of H·W; sums over each plane, then over the batch |
//! | `attention` (multi-head, full or causal), its tangent and its pullback | one thread per query, its scores recomputed in the host's order; the pullback keeps three values per query, then q̄ per query and k̄, v̄ per key over the queries that see it (no atomics) |
//!
//! | a [`FusedFunction`](crate::ops::elementwise::FusedFunction) of N tensors | one generated kernel; its pullback one kernel per input and its tangent one kernel, recorded from the same definition run on symbolic duals |
//!
//! Kernels are compiled by NVRTC on first use and cached for the process, keyed by
//! name: the operation, how each input is read, the store (written or added), the
//! element type, and for a user's function a hash of the recorded formula (and the
//! input a pullback is for), so that a name always denotes one source.
//!
//! Separate elementwise operations fuse: their results wait as formulas until
//! something else reads them, and a chain such as `(&(x.exp() * 2.0) + &y).relu()`
//! runs as one generated kernel (see [`DeviceBuffer`]; [`Device::kernel_launches`]
//! counts the kernels a computation took).
//!
//! The CUDA libraries are loaded at run time: a build needs no CUDA, and without a GPU
//! [`Device::get`] returns [`CudaError::Unavailable`] saying why.

mod attention;
mod bf16;
mod codegen;
mod complex;
mod device;
#[cfg(test)]
mod emulator;
mod fusion;
mod gather;
mod image;
mod symbolic;

use std::boxed::Box;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

pub(crate) use attention::{AttentionGeometry, attention, attention_pullback, attention_push};
pub use codegen::{CType, Combine, Indexing, Store};
pub(crate) use complex::{ComplexKernel, Kind};
pub(crate) use device::or_panic_cuda;
pub use device::{CudaElement, CudaError, CudaScalar, Device, MatmulPrecision};
pub use fusion::{DeviceBuffer, MOST_LEAVES, MOST_NODES};
pub(crate) use gather::{gather_rows, permute, scatter_add_rows};
pub(crate) use image::{
    ConvGeometry, PoolGeometry, avg_pool, avg_pool_pullback, col2im, im2col, max_pool, max_pool_pullback,
    max_pool_push,
};
pub use symbolic::{Sym, Unrecordable};

use crate::autodiff::CoordinateUpdate;
use crate::shape::Shape;
use crate::tensor::StorageKind;

/// Elements stored in GPU memory (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuda;

#[diagnostic::do_not_recommend]
impl<T: CudaScalar, S: Shape> StorageKind<T, S> for Cuda {
    type Buffer = DeviceBuffer<T>;
}

/// Seals the traits of the GPU tensors' methods (`CudaTensorOps`, `CudaVarOps`, …):
/// only GPU tensors and their `Var`s implement them, so they may gain methods.
pub(crate) mod method_seal {
    use super::{Cuda, CudaScalar};
    use crate::autodiff::Var;
    use crate::shape::Shape;
    use crate::tensor::Tensor;

    /// Implemented by the GPU tensors and their `Var`s only.
    pub trait Sealed {}

    impl<T: CudaScalar, S: Shape> Sealed for Tensor<T, S, Cuda> {}
    impl<T: CudaScalar, S: Shape> Sealed for Var<Tensor<T, S, Cuda>> {}
}

/// The geometry of an axis: `(outer, len, inner)` as in
/// [`Dims::split_at_axis`](crate::shape::Dims::split_at_axis); `(1, n, 1)` for a
/// tensor seen as one line.
pub type AxisSplit = (usize, usize, usize);

/// A generated kernel: a scalar function of its inputs and parameters, and how it is
/// applied (elementwise, or folded along each line of an axis).
pub(crate) struct Kernel {
    /// The operation's name, e.g. `"add"`; the compiled kernel's name adds how each
    /// input is read, the store and the element type.
    pub name: String,
    /// How each input is read.
    pub indexing: Vec<Indexing>,
    /// The number of scalar parameters.
    pub params: usize,
    /// How the result is stored.
    pub store: Store,
    /// `None` for an elementwise kernel, else how each line is folded.
    pub combine: Option<Combine>,
    /// The function of the inputs and parameters, evaluated on symbols.
    pub function: Box<dyn Fn(&[Sym], &[Sym]) -> Sym>,
}

impl Kernel {
    /// An elementwise kernel: `out[i] (=|+=) function(inputs; params)`.
    pub fn elementwise(
        name: impl Into<String>,
        indexing: &[Indexing],
        params: usize,
        store: Store,
        function: impl Fn(&[Sym], &[Sym]) -> Sym + 'static,
    ) -> Kernel {
        Kernel {
            name: name.into(),
            indexing: indexing.to_vec(),
            params,
            store,
            combine: None,
            function: Box::new(function),
        }
    }

    /// A reduction: `out[line] (=|+=) ⊕ₖ function(inputs; params)` along each line.
    pub fn reduction(
        name: impl Into<String>,
        indexing: &[Indexing],
        params: usize,
        combine: Combine,
        store: Store,
        function: impl Fn(&[Sym], &[Sym]) -> Sym + 'static,
    ) -> Kernel {
        Kernel { combine: Some(combine), ..Kernel::elementwise(name, indexing, params, store, function) }
    }

    /// The compiled kernel's name for element type `ctype`.
    pub fn compiled_name(&self, ctype: CType) -> String {
        let reads: String =
            self.indexing.iter().map(|i| if *i == Indexing::Element { 'e' } else { 'l' }).collect();
        let store = if self.store == Store::Overwrite { 'w' } else { 'a' };
        let combine = match self.combine {
            None => "",
            Some(Combine::Sum) => "_sum",
            Some(Combine::Max) => "_max",
        };
        format!("{}{combine}_{reads}{store}_{}", self.name, ctype.name())
    }

    /// The kernel's CUDA C for element type `ctype`.
    pub fn source(&self, ctype: CType) -> Result<String, CudaError> {
        let name = self.compiled_name(ctype);
        let expression =
            symbolic::record(self.indexing.len(), self.params, |x, p| vec![(self.function)(x, p)])
                .map_err(|e| CudaError::Unrecordable(format!("kernel `{name}`: {e}")))?;
        Ok(match self.combine {
            None => codegen::elementwise_source(
                &name,
                ctype,
                &expression,
                &self.indexing,
                self.params,
                self.store,
            ),
            Some(combine) => codegen::reduction_source(
                &name,
                ctype,
                &expression,
                &self.indexing,
                self.params,
                combine,
                self.store,
            ),
        })
    }

    /// The recorded function evaluated on the host for one element (see
    /// [`symbolic::Expression::evaluate`]).
    #[cfg(test)]
    pub(crate) fn evaluate(&self, inputs: &[f64], params: &[f64]) -> Result<f64, Unrecordable> {
        let expression =
            symbolic::record(self.indexing.len(), self.params, |x, p| vec![(self.function)(x, p)])?;
        Ok(expression.evaluate(inputs, params)[0])
    }

    /// The reduction that folds values unchanged: the second pass over the chunks of
    /// split lines, and `sum`/`max` themselves.
    pub fn fold(combine: Combine, store: Store) -> Kernel {
        Kernel::reduction("reduce", &[Indexing::Element], 0, combine, store, |x, _| x[0])
    }

    /// Runs the kernel on `inputs` (one per [`Kernel::indexing`], each holding the
    /// elements or the lines it is read at) and `params`, over the axis split `axis`
    /// of the tensor being computed or reduced, into `out`.
    ///
    /// # Panics
    /// When the number of inputs or parameters differs from the kernel's, or a buffer
    /// is shorter than the axis split says (checked here, so that no kernel reads or
    /// writes past a buffer).
    pub fn launch<T: CudaElement>(
        &self,
        inputs: &[&CudaSlice<T>],
        params: &[T],
        axis: AxisSplit,
        out: &mut CudaSlice<T>,
    ) -> Result<(), CudaError> {
        self.launch_on(Device::get()?, inputs, params, axis, out)
    }

    /// [`Kernel::launch`] on `runner`.
    fn launch_on<T: CudaElement, R: Runner<T>>(
        &self,
        runner: &R,
        inputs: &[&R::Buffer],
        params: &[T],
        axis: AxisSplit,
        out: &mut R::Buffer,
    ) -> Result<(), CudaError> {
        assert!(
            inputs.len() == self.indexing.len() && params.len() == self.params,
            "kernel `{}` takes {} inputs and {} parameters",
            self.name,
            self.indexing.len(),
            self.params
        );
        let (outer, len, inner) = axis;
        let (elements, lines) = (outer * len * inner, outer * inner);
        let short = |buffer_len: usize, needed: usize| buffer_len < needed.max(1);
        for (input, indexing) in inputs.iter().zip(&self.indexing) {
            let needed = if *indexing == Indexing::Element { elements } else { lines };
            assert!(
                !short(R::len(input), needed),
                "kernel `{}`: an input holds {} elements, not {needed}",
                self.name,
                R::len(input)
            );
        }
        let needed = if self.combine.is_none() { elements } else { lines };
        assert!(
            !short(R::len(out), needed),
            "kernel `{}`: the output holds {} elements, not {needed}",
            self.name,
            R::len(out)
        );
        match self.combine {
            None => {
                let n = axis.0 * axis.1 * axis.2;
                if n == 0 {
                    return Ok(());
                }
                let sizes = [n as u64, axis.1.max(1) as u64, axis.2.max(1) as u64];
                let config = elementwise_launch(n, runner.multiprocessors());
                // SAFETY: the buffers were checked above against the axis split that
                // `sizes` describes.
                unsafe { self.run(runner, inputs, params, &sizes, out, config) }
            }
            Some(combine) => {
                let (config, chunks) = reduction_launch(axis, runner.multiprocessors());
                // SAFETY: the buffers were checked above against the axis split.
                unsafe { self.reduce(runner, inputs, params, axis, (config, chunks), out, combine) }
            }
        }
    }

    /// Runs a reduction in `chunks` pieces per line, then folds the pieces.
    ///
    /// # Safety
    /// Each input holds the elements or lines of the axis split it is read at, and
    /// `out` one element per line.
    #[allow(clippy::too_many_arguments)]
    unsafe fn reduce<T: CudaElement, R: Runner<T>>(
        &self,
        runner: &R,
        inputs: &[&R::Buffer],
        params: &[T],
        (outer, len, inner): AxisSplit,
        (config, chunks): (LaunchConfig, usize),
        out: &mut R::Buffer,
        combine: Combine,
    ) -> Result<(), CudaError> {
        let lines = outer * inner;
        if lines == 0 {
            return Ok(());
        }
        let chunk = len.div_ceil(chunks).max(1);
        let sizes = [outer as u64, len as u64, inner as u64, chunk as u64];
        if chunks == 1 {
            // SAFETY: this function's contract.
            return unsafe { self.run(runner, inputs, params, &sizes, out, config) };
        }
        // Every piece is stored; an accumulating kernel adds it to a zero.
        let mut pieces = runner.buffer(chunks * lines, self.store == Store::Accumulate)?;
        // SAFETY: this function's contract for the inputs; `pieces` holds one element
        // per line and chunk, where chunk c of line l is stored at c·lines + l.
        unsafe { self.run(runner, inputs, params, &sizes, &mut pieces, config)? };
        let folded = (1, chunks, lines);
        let (config, _) = reduction_launch(folded, 0);
        let fold = Kernel::fold(combine, self.store);
        // SAFETY: `pieces` is the one input, of `chunks` lines' values for each of
        // `lines` lines, folded along the chunks into `out`, one element per line.
        unsafe { fold.reduce(runner, &[&pieces], &[], folded, (config, 1), out, combine) }
    }

    /// Launches the kernel with its inputs, output, parameters and sizes.
    ///
    /// # Safety
    /// The buffers hold every element the kernel reads or writes for `sizes`.
    unsafe fn run<T: CudaElement, R: Runner<T>>(
        &self,
        runner: &R,
        inputs: &[&R::Buffer],
        params: &[T],
        sizes: &[u64],
        out: &mut R::Buffer,
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        let mut buffers: Vec<BufferArg<'_, R::Buffer>> =
            inputs.iter().map(|input| BufferArg::Read(*input)).collect();
        buffers.push(BufferArg::Write(out));
        let name = self.compiled_name(T::C_TYPE);
        // SAFETY: the inputs, output, parameters and sizes of the kernel's parameter
        // list, in its order; the buffers as this function's contract says.
        unsafe { runner.launch(&name, &|| self.source(T::C_TYPE), &mut buffers, params, sizes, config) }
    }
}

/// What runs a generated kernel: the GPU through cudarc (a [`Device`]), or, in the
/// tests, the same CUDA C compiled for the host.
trait Runner<T: CudaElement> {
    /// A buffer of elements.
    type Buffer;

    /// The number of elements in `buffer`.
    fn len(buffer: &Self::Buffer) -> usize;

    /// A new buffer of `len` elements, zeroed when `zeroed` (else every element is
    /// written before it is read).
    fn buffer(&self, len: usize, zeroed: bool) -> Result<Self::Buffer, CudaError>;

    /// A new buffer holding `elements`.
    fn upload(&self, elements: &[T]) -> Result<Self::Buffer, CudaError>;

    /// The number of multiprocessors the launch shapes are sized for.
    fn multiprocessors(&self) -> usize;

    /// Compiles kernel `name` from `source()` if needed and launches it with
    /// `buffers`, then `params`, then `sizes`: the order of every kernel's parameter
    /// list.
    ///
    /// # Safety
    /// `name` must always denote the kernel `source()` gives (names are made from
    /// everything that shapes the source), the arguments must be those of its
    /// parameter list, and each buffer must hold every element the kernel reads or
    /// writes for these sizes (kernels index without bounds checks); only `Write`
    /// buffers are written.
    unsafe fn launch(
        &self,
        name: &str,
        source: &dyn Fn() -> Result<String, CudaError>,
        buffers: &mut [BufferArg<'_, Self::Buffer>],
        params: &[T],
        sizes: &[u64],
        config: LaunchConfig,
    ) -> Result<(), CudaError>;
}

/// A buffer argument of a kernel launch.
enum BufferArg<'a, B> {
    /// Read only.
    Read(&'a B),
    /// Written (and possibly read).
    Write(&'a mut B),
}

impl<T: CudaElement> Runner<T> for Device {
    type Buffer = CudaSlice<T>;

    fn len(buffer: &CudaSlice<T>) -> usize {
        buffer.len()
    }

    fn buffer(&self, len: usize, zeroed: bool) -> Result<CudaSlice<T>, CudaError> {
        if zeroed { self.zeros(len) } else { self.uninitialized(len) }
    }

    fn upload(&self, elements: &[T]) -> Result<CudaSlice<T>, CudaError> {
        Device::upload(self, elements)
    }

    fn multiprocessors(&self) -> usize {
        Device::multiprocessors(self)
    }

    unsafe fn launch(
        &self,
        name: &str,
        source: &dyn Fn() -> Result<String, CudaError>,
        buffers: &mut [BufferArg<'_, CudaSlice<T>>],
        params: &[T],
        sizes: &[u64],
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        let function = self.kernel(name, source)?;
        let mut arguments = self.stream().launch_builder(&function);
        for buffer in buffers.iter_mut() {
            match buffer {
                BufferArg::Read(buffer) => arguments.arg(*buffer),
                BufferArg::Write(buffer) => arguments.arg(&mut **buffer),
            };
        }
        for param in params {
            arguments.arg(param);
        }
        for size in sizes {
            arguments.arg(size);
        }
        Device::launch(self, arguments, config)
    }
}

/// The launch shape of an elementwise kernel over `n` elements: blocks of 256 threads,
/// each thread [`codegen::UNROLL`] elements a round, at most 32 blocks per
/// multiprocessor (more elements take more rounds).
fn elementwise_launch(n: usize, multiprocessors: usize) -> LaunchConfig {
    grid_stride_launch(n.div_ceil(codegen::UNROLL), multiprocessors)
}

/// The launch shape of a grid-stride loop wanting `threads` threads: blocks of 256, at
/// most 32 blocks per multiprocessor (more work takes more rounds).
fn grid_stride_launch(threads: usize, multiprocessors: usize) -> LaunchConfig {
    let blocks = threads.div_ceil(256).clamp(1, 32 * multiprocessors.max(1));
    LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// The launch shape of a reduction over the lines of `axis`, and how many chunks each
/// line is split into: for lines along the last axis up to 256 lanes per line, else
/// 32 neighbouring lines (coalesced reads) × 8 lanes; lines are split when there are
/// too few blocks to give each of the `multiprocessors` eight, in chunks of at least
/// 64 values.
fn reduction_launch((outer, len, inner): AxisSplit, multiprocessors: usize) -> (LaunchConfig, usize) {
    let (lines_per_block, lanes) = if inner == 1 {
        let lanes = len.next_power_of_two().clamp(1, 256);
        (256 / lanes, lanes)
    } else {
        (32, 8)
    };
    let blocks = (outer * inner).div_ceil(lines_per_block).max(1);
    let chunks = (8 * multiprocessors).div_ceil(blocks).clamp(1, (len / 64).max(1));
    let config = LaunchConfig {
        grid_dim: (blocks as u32, chunks as u32, 1),
        block_dim: (lines_per_block as u32, lanes as u32, 1),
        shared_mem_bytes: 0,
    };
    (config, chunks)
}

/// A stable 64-bit hash of the formula `f` records on `inputs` symbolic inputs
/// ([`symbolic::Expression::fingerprint`]); `None` when it cannot be recorded (its
/// kernel then reports why when built).
pub(crate) fn expression_hash(inputs: usize, f: impl FnOnce(&[Sym]) -> Sym) -> Option<u64> {
    symbolic::record(inputs, 0, |x, _| vec![f(x)]).ok().map(|expression| expression.fingerprint())
}

/// The in-place kernel of a [`CoordinateUpdate`]: its `apply` recorded on symbols,
/// named by the update's name and a hash of the formula (so a setting that changes the
/// formula, such as Nesterov momentum, gets a kernel of its own, while the parameters
/// are arguments of one kernel).
pub(crate) struct UpdateKernel {
    name: String,
    buffers: (usize, usize),
    params: usize,
    expression: symbolic::Expression,
}

impl UpdateKernel {
    /// Records `update`.
    pub fn new<const W: usize, const R: usize, const P: usize, U: CoordinateUpdate<W, R, P>>(
        update: &U,
    ) -> Result<UpdateKernel, CudaError> {
        let expression = symbolic::record(W + R, P, |x, p| {
            let written = core::array::from_fn(|k| x[k]);
            let read = core::array::from_fn(|k| x[W + k]);
            update.apply(written, read, core::array::from_fn(|k| p[k])).to_vec()
        })
        .map_err(|e| CudaError::Unrecordable(format!("update `{}`: {e}", U::NAME)))?;
        let name = format!("update_{}_{:016x}", U::NAME, expression.fingerprint());
        Ok(UpdateKernel { name, buffers: (W, R), params: P, expression })
    }

    /// The compiled kernel's name for element type `ctype`.
    pub fn compiled_name(&self, ctype: CType) -> String {
        format!("{}_{}", self.name, ctype.name())
    }

    /// The recorded update evaluated on the host (see [`symbolic::Expression::evaluate`]).
    #[cfg(test)]
    pub(crate) fn evaluate(&self, inputs: &[f64], params: &[f64]) -> Vec<f64> {
        self.expression.evaluate(inputs, params)
    }

    /// The kernel's CUDA C for element type `ctype`.
    pub fn source(&self, ctype: CType) -> String {
        codegen::update_source(&self.compiled_name(ctype), ctype, &self.expression, self.buffers, self.params)
    }

    /// Updates the `written` buffers in place from themselves, `read` and `params`.
    ///
    /// # Panics
    /// When the numbers of buffers or parameters differ from the update's, or the
    /// buffers' lengths differ (checked here, so that no kernel reads or writes past a
    /// buffer).
    pub fn launch<T: CudaElement>(
        &self,
        written: &mut [&mut CudaSlice<T>],
        read: &[&CudaSlice<T>],
        params: &[T],
    ) -> Result<(), CudaError> {
        self.launch_on(Device::get()?, written, read, params)
    }

    /// [`UpdateKernel::launch`] on `runner`.
    fn launch_on<T: CudaElement, R: Runner<T>>(
        &self,
        runner: &R,
        written: &mut [&mut R::Buffer],
        read: &[&R::Buffer],
        params: &[T],
    ) -> Result<(), CudaError> {
        assert!(
            (written.len(), read.len()) == self.buffers && params.len() == self.params,
            "update `{}` takes {:?} buffers and {} parameters",
            self.name,
            self.buffers,
            self.params
        );
        let n = written.first().map_or(0, |w| R::len(w));
        assert!(
            written.iter().map(|w| R::len(w)).chain(read.iter().map(|r| R::len(r))).all(|len| len == n),
            "update `{}`: the buffers' lengths differ",
            self.name
        );
        if n == 0 {
            return Ok(());
        }
        let mut buffers: Vec<BufferArg<'_, R::Buffer>> = written
            .iter_mut()
            .map(|buffer| BufferArg::Write(&mut **buffer))
            .chain(read.iter().map(|buffer| BufferArg::Read(*buffer)))
            .collect();
        let name = self.compiled_name(T::C_TYPE);
        let config = elementwise_launch(n, runner.multiprocessors());
        // SAFETY: the written, read, parameter and size arguments of `update_source`'s
        // list, in its order, each buffer of the `n` elements checked above.
        unsafe {
            runner.launch(&name, &|| Ok(self.source(T::C_TYPE)), &mut buffers, params, &[n as u64], config)
        }
    }
}

/// The name of the transpose kernel for `ctype`.
fn transpose_name(ctype: CType) -> String {
    format!("transpose_{}", ctype.name())
}

/// `out[b, c, r] = x[b, r, c]` for `batch` row-major `rows × cols` matrices.
///
/// # Panics
/// When `x` or `out` holds fewer than `batch·rows·cols` elements.
pub fn transpose<T: CudaElement>(
    x: &CudaSlice<T>,
    sizes: (usize, usize, usize),
    out: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    transpose_on(Device::get()?, x, sizes, out)
}

/// [`transpose`] on `runner`.
fn transpose_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    (batch, rows, cols): (usize, usize, usize),
    out: &mut R::Buffer,
) -> Result<(), CudaError> {
    let n = batch * rows * cols;
    let (x_len, out_len) = (R::len(x), R::len(out));
    assert!(x_len >= n && out_len >= n, "transpose: buffers of {x_len} and {out_len} elements for {n}");
    if n == 0 {
        return Ok(());
    }
    let name = transpose_name(T::C_TYPE);
    let tiles = rows.div_ceil(32) * cols.div_ceil(32);
    let config = LaunchConfig {
        grid_dim: (u32::try_from(tiles).expect("fewer than 2³² tiles of 32×32"), 1, batch.min(65535) as u32),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    let sizes = [batch as u64, rows as u64, cols as u64];
    let source = || Ok(codegen::transpose_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(out)];
    // SAFETY: `transpose_source`'s parameter list, both buffers checked above to hold
    // batch·rows·cols elements.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}

/// `out[c, r, p] = x[r, c, p]`: the transpose of a row-major `rows × cols` matrix whose
/// elements are `parts` consecutive numbers (2 for a complex element, re then im).
/// Elements of one part take one pass of the tile transpose; wider ones take two,
/// `[R, C·P] → [C·P, R]`, then each of the `C` blocks `[P, R] → [R, P]`.
///
/// # Panics
/// When `x` or `out` holds fewer than `rows·cols·parts` numbers.
pub fn transpose_elements<T: CudaElement>(
    x: &CudaSlice<T>,
    sizes: (usize, usize, usize),
    out: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    transpose_elements_on(Device::get()?, x, sizes, out)
}

/// [`transpose_elements`] on `runner`.
fn transpose_elements_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    (rows, cols, parts): (usize, usize, usize),
    out: &mut R::Buffer,
) -> Result<(), CudaError> {
    if parts == 1 {
        return transpose_on(runner, x, (1, rows, cols), out);
    }
    let mut columns = runner.buffer(rows * cols * parts, false)?;
    transpose_on(runner, x, (1, rows, cols * parts), &mut columns)?;
    transpose_on(runner, &columns, (cols, parts, rows), out)
}

/// The name of the block-copy kernel for `ctype` and `store`.
fn copy_block_name(ctype: CType, store: Store) -> String {
    kernel_name("copy_block", Some(store), ctype)
}

/// Where a block copy reads and writes along the axis: `len` is the axis length of
/// the tensor, `start` the first position copied.
#[derive(Clone, Copy, Debug)]
pub struct AxisRange {
    /// The axis length of the tensor.
    pub len: usize,
    /// The first position along the axis.
    pub start: usize,
}

/// Copies `count` positions along an axis, for each of `outer` × `inner` lines, from
/// `src` (at `from`) into `dst` (at `to`), overwriting or adding as `store` says.
///
/// # Panics
/// When a range falls outside its tensor's axis or a buffer is too short for it.
pub fn copy_block<T: CudaElement>(
    src: &CudaSlice<T>,
    dst: &mut CudaSlice<T>,
    sizes: (usize, usize, usize),
    from: AxisRange,
    to: AxisRange,
    store: Store,
) -> Result<(), CudaError> {
    copy_block_on(Device::get()?, src, dst, sizes, from, to, store)
}

/// [`copy_block`] on `runner`.
#[allow(clippy::too_many_arguments)]
fn copy_block_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    src: &R::Buffer,
    dst: &mut R::Buffer,
    (outer, count, inner): (usize, usize, usize),
    from: AxisRange,
    to: AxisRange,
    store: Store,
) -> Result<(), CudaError> {
    for (range, buffer_len, side) in [(from, R::len(src), "source"), (to, R::len(dst), "destination")] {
        assert!(
            range.start + count <= range.len && buffer_len >= (outer * range.len * inner).max(1),
            "copy_block: the {side} range {}..{} does not fit an axis of {} in a buffer of {buffer_len}",
            range.start,
            range.start + count,
            range.len
        );
    }
    if outer * count * inner == 0 {
        return Ok(());
    }
    let name = copy_block_name(T::C_TYPE, store);
    let sizes = [outer, count, inner, from.len, from.start, to.len, to.start].map(|size| size as u64);
    let config = grid_stride_launch(outer * count * inner, runner.multiprocessors());
    let source = || Ok(codegen::copy_block_source(&name, T::C_TYPE, store));
    let mut buffers = [BufferArg::Read(src), BufferArg::Write(dst)];
    // SAFETY: `copy_block_source`'s parameter list, both ranges checked above to fit
    // their axes and buffers.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}

/// The name of the max-pullback kernel for `ctype` and `store`.
fn max_pullback_name(ctype: CType, store: Store) -> String {
    kernel_name("max_pullback", Some(store), ctype)
}

/// A written-out kernel's name: the operation, the store (`w` or `a`) where it has a
/// choice of one, the element type.
fn kernel_name(operation: &str, store: Option<Store>, ctype: CType) -> String {
    match store {
        None => format!("{operation}_{}", ctype.name()),
        Some(Store::Overwrite) => format!("{operation}_w_{}", ctype.name()),
        Some(Store::Accumulate) => format!("{operation}_a_{}", ctype.name()),
    }
}

/// x̄ (=|+=) ȳ[line] at each line's first largest element of `x` (its first NaN if it
/// has one) along the axis split `axis`, 0 elsewhere.
///
/// # Panics
/// When a buffer is shorter than the axis split says.
pub fn max_pullback<T: CudaElement>(
    x: &CudaSlice<T>,
    y_bar: &CudaSlice<T>,
    x_bar: &mut CudaSlice<T>,
    axis: AxisSplit,
    store: Store,
) -> Result<(), CudaError> {
    max_pullback_on(Device::get()?, x, y_bar, x_bar, axis, store)
}

/// [`max_pullback`] on `runner`.
fn max_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    y_bar: &R::Buffer,
    x_bar: &mut R::Buffer,
    (outer, len, inner): AxisSplit,
    store: Store,
) -> Result<(), CudaError> {
    let (elements, lines) = (outer * len * inner, outer * inner);
    assert!(
        R::len(x) >= elements.max(1) && R::len(x_bar) >= elements.max(1) && R::len(y_bar) >= lines.max(1),
        "max_pullback: buffers shorter than the axis split"
    );
    if elements == 0 {
        return Ok(());
    }
    let name = max_pullback_name(T::C_TYPE, store);
    let sizes = [outer as u64, len as u64, inner as u64];
    let config = grid_stride_launch(lines, runner.multiprocessors());
    let source = || Ok(codegen::max_pullback_source(&name, T::C_TYPE, store));
    let mut buffers = [BufferArg::Read(x), BufferArg::Read(y_bar), BufferArg::Write(x_bar)];
    // SAFETY: `max_pullback_source`'s parameter list, the buffers checked above
    // against the axis split.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}

/// The position along the axis of each line's first largest element of `x` (its
/// first NaN if it has one), along the axis split `axis`: one index per line.
///
/// # Panics
/// When `x` is shorter than the axis split says, when a line is empty (no largest
/// element to name), or when an `f32` line has more than 2³² elements.
pub(crate) fn line_argmax<T: CudaElement>(
    x: &CudaSlice<T>,
    axis: AxisSplit,
) -> Result<Vec<usize>, CudaError> {
    let device = Device::get()?;
    let lines = axis.0 * axis.2;
    let mut indices = device.zeros::<T>(lines)?;
    line_argmax_on(device, x, &mut indices, axis)?;
    Ok(device.download(&indices, lines)?.into_iter().map(CudaElement::to_index).collect())
}

/// [`line_argmax`] on `runner`, into `indices` (one element's bits per line).
fn line_argmax_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    indices: &mut R::Buffer,
    (outer, len, inner): AxisSplit,
) -> Result<(), CudaError> {
    let lines = outer * inner;
    assert!(len > 0 || lines == 0, "argmax: {lines} lines of 0 elements have no largest element");
    // The last position must fit the index bits (panics otherwise, naming the type).
    T::from_index(len.saturating_sub(1));
    assert!(
        R::len(x) >= (outer * len * inner).max(1) && R::len(indices) >= lines.max(1),
        "argmax: buffers shorter than the axis split"
    );
    if lines == 0 {
        return Ok(());
    }
    let name = kernel_name("line_argmax", None, T::C_TYPE);
    let sizes = [outer as u64, len as u64, inner as u64];
    let config = grid_stride_launch(lines, runner.multiprocessors());
    let source = || Ok(codegen::line_argmax_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(indices)];
    // SAFETY: `line_argmax_source`'s parameter list (the indices' buffer holds one
    // element, of the index type's width, per line), the buffers checked above
    // against the axis split.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}

/// Adds s̄[line] to the first +∞ of each line of `x` whose logsumexp `s` is +∞ (along
/// the axis split `axis`), leaving the other lines alone: the rest of logsumexp's
/// pullback after its elementwise pass.
///
/// # Panics
/// When a buffer is shorter than the axis split says.
pub(crate) fn infinite_line_pullback<T: CudaElement>(
    x: &CudaSlice<T>,
    (s, s_bar): (&CudaSlice<T>, &CudaSlice<T>),
    x_bar: &mut CudaSlice<T>,
    axis: AxisSplit,
) -> Result<(), CudaError> {
    infinite_line_pullback_on(Device::get()?, x, (s, s_bar), x_bar, axis)
}

/// [`infinite_line_pullback`] on `runner`.
fn infinite_line_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    (s, s_bar): (&R::Buffer, &R::Buffer),
    x_bar: &mut R::Buffer,
    (outer, len, inner): AxisSplit,
) -> Result<(), CudaError> {
    let (elements, lines) = (outer * len * inner, outer * inner);
    assert!(
        R::len(x) >= elements && R::len(x_bar) >= elements && R::len(s) >= lines && R::len(s_bar) >= lines,
        "infinite_line_pullback: buffers shorter than the axis split"
    );
    if elements == 0 {
        return Ok(());
    }
    let name = kernel_name("infinite_line_pullback", None, T::C_TYPE);
    let sizes = [outer as u64, len as u64, inner as u64];
    let config = grid_stride_launch(lines, runner.multiprocessors());
    let source = || Ok(codegen::infinite_line_pullback_source(&name, T::C_TYPE));
    let mut buffers =
        [BufferArg::Read(x), BufferArg::Read(s), BufferArg::Read(s_bar), BufferArg::Write(x_bar)];
    // SAFETY: `infinite_line_pullback_source`'s parameter list, the buffers checked
    // above against the axis split.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}

/// Every kernel that fluxion's own operations generate, as `(name, CUDA C)` for
/// element type `ctype`: what the offline check compiles without a GPU.
pub fn builtin_kernel_sources(ctype: CType) -> Vec<(String, String)> {
    let mut sources: Vec<(String, String)> = crate::ops::cuda::builtin_kernels()
        .iter()
        .map(|kernel| {
            (kernel.compiled_name(ctype), kernel.source(ctype).expect("fluxion's own kernels record"))
        })
        .collect();
    sources.extend(
        crate::nn::optim::update_kernels()
            .iter()
            .map(|kernel| (kernel.compiled_name(ctype), kernel.source(ctype))),
    );
    sources.push((transpose_name(ctype), codegen::transpose_source(&transpose_name(ctype), ctype)));
    for store in [Store::Overwrite, Store::Accumulate] {
        let name = copy_block_name(ctype, store);
        sources.push((name.clone(), codegen::copy_block_source(&name, ctype, store)));
        let name = max_pullback_name(ctype, store);
        sources.push((name.clone(), codegen::max_pullback_source(&name, ctype, store)));
    }
    let name = kernel_name("infinite_line_pullback", None, ctype);
    sources.push((name.clone(), codegen::infinite_line_pullback_source(&name, ctype)));
    let name = kernel_name("line_argmax", None, ctype);
    sources.push((name.clone(), codegen::line_argmax_source(&name, ctype)));
    sources.extend(crate::ops::cuda::complex_kernels().iter().map(|kernel| {
        (kernel.compiled_name(ctype), kernel.source(ctype).expect("fluxion's own kernels record"))
    }));
    sources.extend(image::sources(ctype));
    sources.extend(attention::sources(ctype));
    sources.extend(gather::sources(ctype));
    sources.extend(bf16::sources(ctype));
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the elementwise kernel's loops (block, thread, round, step) on the host:
    /// every element is visited exactly once.
    #[test]
    fn elementwise_launches_visit_every_element_once() {
        for (n, multiprocessors) in [(1, 132), (1000, 132), (4096 * 256, 132), (1 << 20, 2), (1023, 1)] {
            let config = elementwise_launch(n, multiprocessors);
            let (blocks, threads) = (config.grid_dim.0 as usize, config.block_dim.0 as usize);
            let mut visits = vec![0u8; n];
            let stride = threads * blocks * codegen::UNROLL;
            for block in 0..blocks {
                for thread in 0..threads {
                    let mut base = block * threads * codegen::UNROLL + thread;
                    while base < n {
                        for step in 0..codegen::UNROLL {
                            let i = base + step * threads;
                            if i >= n {
                                break;
                            }
                            visits[i] += 1;
                        }
                        base += stride;
                    }
                }
            }
            assert!(visits.iter().all(|&v| v == 1), "n = {n}");
        }
    }

    /// Replays the reduction kernel's loops: every value of every line is folded
    /// exactly once, into the piece of its chunk, and blocks stay within 256 threads.
    #[test]
    fn reduction_launches_fold_every_value_once() {
        for axis in
            [(1, 16 << 20, 1), (1, 4096, 256), (4096, 10, 1), (5, 300, 7), (3, 0, 4), (1, 100, 1), (2, 1, 3)]
        {
            for multiprocessors in [0, 2, 132] {
                let (config, chunks) = reduction_launch(axis, multiprocessors);
                let (outer, len, inner) = axis;
                let lines = outer * inner;
                let (lines_per_block, lanes) = (config.block_dim.0 as usize, config.block_dim.1 as usize);
                assert!(lanes.is_power_of_two() && lines_per_block * lanes <= 256);
                assert_eq!(config.grid_dim.1 as usize, chunks);
                assert!(config.grid_dim.0 as usize * lines_per_block >= lines);
                if len > 64 * 1024 {
                    continue; // the coverage replay below is for moderate sizes
                }
                let chunk = len.div_ceil(chunks).max(1);
                let mut visits = vec![0u8; outer * len * inner];
                for piece in 0..chunks {
                    let (first, end) = (piece * chunk, ((piece + 1) * chunk).min(len));
                    for line in 0..lines {
                        let start = (line / inner) * len * inner + line % inner;
                        for lane in 0..lanes {
                            let mut k = first + lane;
                            while k < end {
                                visits[start + k * inner] += 1;
                                k += lanes;
                            }
                        }
                    }
                }
                assert!(visits.iter().all(|&v| v == 1), "axis {axis:?} on {multiprocessors} multiprocessors");
            }
        }
    }

    /// Replays the transpose kernel's tiles on the host: every output element is
    /// written once, with the transposed input element.
    #[test]
    fn transpose_tiles_write_every_element_once() {
        for (batch, rows, cols) in [(1, 1, 1), (1, 33, 65), (3, 64, 31), (2, 100, 7)] {
            let input: Vec<usize> = (0..batch * rows * cols).collect();
            let mut output = vec![usize::MAX; batch * rows * cols];
            let column_tiles = cols.div_ceil(32);
            let tiles = rows.div_ceil(32) * column_tiles;
            let grid_z = batch.min(65535);
            for tile in 0..tiles {
                let (tile_row, tile_column) = (tile / column_tiles, tile % column_tiles);
                for z in 0..grid_z {
                    for b in (z..batch).step_by(grid_z) {
                        let offset = b * rows * cols;
                        // The tile as the kernel loads it: tile[j][x] = in[row j, column x].
                        let at = |j: usize, x: usize| {
                            let (row, column) = (tile_row * 32 + j, tile_column * 32 + x);
                            (row < rows && column < cols).then(|| input[offset + row * cols + column])
                        };
                        for j in 0..32 {
                            for x in 0..32 {
                                let (out_row, out_column) = (tile_column * 32 + j, tile_row * 32 + x);
                                if out_row < cols && out_column < rows {
                                    assert_eq!(
                                        output[offset + out_row * rows + out_column],
                                        usize::MAX,
                                        "written twice"
                                    );
                                    output[offset + out_row * rows + out_column] =
                                        at(x, j).expect("read inside the input");
                                }
                            }
                        }
                    }
                }
            }
            for b in 0..batch {
                for r in 0..rows {
                    for c in 0..cols {
                        let offset = b * rows * cols;
                        assert_eq!(output[offset + c * rows + r], input[offset + r * cols + c]);
                    }
                }
            }
        }
    }
}
