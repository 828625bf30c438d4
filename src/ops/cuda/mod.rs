//! The operations of `Tensor<T, S, Cuda>`: the host operations under the same names,
//! each launching a generated kernel (see [`crate::backend::cuda`]), and the
//! reverse-mode rules of the elementwise, reducing and normalising primitives.
//!
//! The formulas are the host's: elementary functions and their derivatives come from
//! [`Elementary::apply`] and [`Elementary::derivative`] evaluated on a symbolic scalar,
//! `relu` is `RealScalar::max(x, 0)`, and softmax and its relatives shift by the
//! line's maximum as on the host. Shapes are checked as on the host: a dynamic
//! mismatch is an error naming both shapes (`try_*`) or a panic with that message.
//! A GPU failure (out of memory, no device) panics with CUDA's error in the infallible
//! forms and is returned by [`Tensor::try_to_device`] and [`Tensor::try_to_host`].

use core::ops::{AddAssign, SubAssign};
use std::borrow::Cow;
use std::format;
use std::string::String;
use std::vec::Vec;

use cudarc::driver::CudaSlice;
use num_traits::{One, Zero};

use crate::backend::cpu::Write;
use crate::backend::cuda::{
    AxisRange, AxisSplit, CType, Combine, Cuda, CudaElement, CudaError, CudaScalar, Device, DeviceBuffer,
    Indexing, Kernel, Store, Sym, copy_block, expression_hash, gather_rows as gather_rows_kernel,
    infinite_line_pullback, line_argmax, max_pullback as max_pullback_kernel, or_panic_cuda,
    permute as permute_kernel, scatter_add_rows, transpose_elements,
};
use crate::error::{ShapeError, or_panic};
use crate::ops::elementwise::{
    Elementary, Fusable, FusedFunction, KindArithmetic, ScalarFunction, check_fused_shapes,
    elementary_methods, fused_partials, times_partial,
};
use crate::ops::functions::{self, MapFunction};
use crate::ops::layout::{check_broadcast_axis, check_concat, check_element_count, permuted_back};
use crate::ops::rows::check_row;
use crate::product::matmul::{check_output, inner_mismatch};
use crate::product::transposed::{columns_mismatch, rows_mismatch};
use crate::product::{MatMul, MatMulTransposed, TransposedMatMul};
use crate::scalar::{RealDot, RealScalar, Scalar};
use crate::shape::constraint::{
    AddsUpTo, Axis, Broadcastable, FitsSlice, HasAxis, InsertsAxis, PermutesAxes, SameElementCount,
};
use crate::shape::{Const, Dim, Dyn, Shape};
use crate::tensor::show::write_nested;
use crate::tensor::{Heap, Storage, Tensor, Zeros};

use Indexing::{Element, Line};

pub(crate) mod attention;
mod complex;
mod image;

pub(crate) use complex::complex_kernels;

/// `normalize_groups` of a GPU image batch (plain, traced or dual) `$x` of `$shape`
/// `(B, C, H, W)`: the batch seen as B·G lines of C/G·H·W consecutive elements, each
/// line normalised as a row, then seen as images again.
macro_rules! groups_as_rows {
    ($x:expr, $shape:expr, $groups:expr, $epsilon:expr) => {{
        let shape = $shape;
        let lines = crate::ops::conv::group_lines(shape, $groups);
        crate::error::or_panic(
            crate::error::or_panic($x.try_reshape(lines)).normalize_rows($epsilon).try_reshape(shape),
        )
    }};
}
pub use attention::{
    CudaAttentionOps, attention_pullback, attention_push, cross_attention_pullback, cross_attention_push,
};
pub use complex::{
    CudaComplexElementaryOps, CudaComplexMatrixOps, CudaComplexOps, RealValued, complex_elementary_pullback,
    complex_elementary_push, complex_fill_pullback, complex_hadamard_pullback, complex_scaled_pullback,
    conj_pullback, real_valued_pullback, real_valued_push, sum_of_products_pullback,
};
pub(crate) use groups_as_rows;
pub use image::{
    CudaChannelOps, CudaImageOps, add_channels_pullback, avg_pool2d_pullback, conv2d_pullback,
    max_pool2d_pullback, max_pool2d_push, mul_channels_pullback,
};

/// A device tensor of GPU operations: the element type and shape stay, the storage is
/// [`Cuda`].
type OnDevice<T, S> = Tensor<T, S, Cuda>;

/// Stores a kernel result as `write` says.
fn store(write: Write) -> Store {
    match write {
        Write::Overwrite => Store::Overwrite,
        Write::Accumulate => Store::Accumulate,
    }
}

/// The elementary function `f` on symbols, its real parameter (the exponent of `powf`)
/// taken from the kernel parameter `p`.
fn symbolic<R>(f: Elementary<R>, p: Sym) -> Elementary<Sym> {
    match f {
        Elementary::Exp => Elementary::Exp,
        Elementary::Ln => Elementary::Ln,
        Elementary::Sin => Elementary::Sin,
        Elementary::Cos => Elementary::Cos,
        Elementary::Tanh => Elementary::Tanh,
        Elementary::Sqrt => Elementary::Sqrt,
        Elementary::Sigmoid => Elementary::Sigmoid,
        Elementary::Powi(n) => Elementary::Powi(n),
        Elementary::Powf(_) => Elementary::Powf(p),
    }
}

/// The kernel's name for `f` (`powi` names its exponent, compiled once per n; `powf`
/// passes its exponent as a parameter).
fn elementary_name<R>(f: &Elementary<R>) -> std::string::String {
    match f {
        Elementary::Exp => "exp".into(),
        Elementary::Ln => "ln".into(),
        Elementary::Sin => "sin".into(),
        Elementary::Cos => "cos".into(),
        Elementary::Tanh => "tanh".into(),
        Elementary::Sqrt => "sqrt".into(),
        Elementary::Sigmoid => "sigmoid".into(),
        Elementary::Powi(n) if *n < 0 => format!("powi_m{}", n.unsigned_abs()),
        Elementary::Powi(n) => format!("powi_{n}"),
        Elementary::Powf(_) => "powf".into(),
    }
}

/// The exponent parameter of `f`, for its kernel (unused except by `powf`).
fn elementary_param<T: RealScalar>(f: &Elementary<T>) -> T {
    match f {
        Elementary::Powf(p) => *p,
        _ => T::zero(),
    }
}

// The kernels of the built-in operations, one function each: the operations launch
// them and `builtin_kernels` lists them for the offline check.

fn fill_kernel(write: Write) -> Kernel {
    Kernel::elementwise("fill", &[], 1, store(write), |_, p| p[0])
}
fn scale_kernel() -> Kernel {
    Kernel::elementwise("scale", &[Element], 1, Store::Overwrite, |x, p| x[0] * p[0])
}
fn add_scaled_kernel() -> Kernel {
    Kernel::elementwise("add_scaled", &[Element], 1, Store::Accumulate, |x, p| x[0] * p[0])
}
fn add_kernel() -> Kernel {
    Kernel::elementwise("add", &[Element, Element], 0, Store::Overwrite, |x, _| x[0] + x[1])
}
fn sub_kernel() -> Kernel {
    Kernel::elementwise("sub", &[Element, Element], 0, Store::Overwrite, |x, _| x[0] - x[1])
}
fn hadamard_kernel(write: Write) -> Kernel {
    Kernel::elementwise("hadamard", &[Element, Element], 0, store(write), |x, _| x[0] * x[1])
}
fn elementary_kernel<R: 'static + Copy>(f: Elementary<R>) -> Kernel {
    Kernel::elementwise(elementary_name(&f), &[Element], 1, Store::Overwrite, move |x, p| {
        symbolic(f, p[0]).apply(x[0])
    })
}
/// x̄ (=|+=) conj(f′(x))·ȳ from x, y = f(x) and ȳ.
fn elementary_pullback_kernel<R: 'static + Copy>(f: Elementary<R>, write: Write) -> Kernel {
    let name = format!("{}_pullback", elementary_name(&f));
    Kernel::elementwise(name, &[Element, Element, Element], 1, store(write), move |x, p| {
        symbolic(f, p[0]).derivative(x[0], x[1]).conj() * x[2]
    })
}
fn abs_kernel() -> Kernel {
    Kernel::elementwise("abs", &[Element], 0, Store::Overwrite, |x, _| x[0].abs())
}
fn square_kernel() -> Kernel {
    Kernel::elementwise("square", &[Element], 0, Store::Overwrite, |x, _| x[0].norm_sqr())
}
fn relu_kernel() -> Kernel {
    Kernel::elementwise("relu", &[Element], 0, Store::Overwrite, |x, _| x[0].max(Sym::zero()))
}
/// x̄ (=|+=) ȳ where x > 0, else 0.
fn relu_pullback_kernel(write: Write) -> Kernel {
    Kernel::elementwise("relu_pullback", &[Element, Element], 0, store(write), |x, _| {
        x[0].where_positive(x[1])
    })
}
/// The name and CUDA C of the kernel that computes `f` elementwise on `ctype` data
/// (what [`map_function`](OnDevice::map_function) compiles on first use; its
/// pullback's kernel comes from `f.derivative` the same way). Needs no GPU.
pub fn function_kernel_source<F: ScalarFunction>(f: F, ctype: CType) -> Result<(String, String), CudaError> {
    let kernel = function_kernel(f);
    Ok((kernel.compiled_name(ctype), kernel.source(ctype)?))
}

fn function_kernel<F: ScalarFunction>(f: F) -> Kernel {
    Kernel::elementwise(
        function_name::<F>("value", 1, |x| f.value(x[0])),
        &[Element],
        0,
        Store::Overwrite,
        move |x, _| f.value(x[0]),
    )
}
fn function_pullback_kernel<F: ScalarFunction>(f: F, write: Write) -> Kernel {
    Kernel::elementwise(
        function_name::<F>("pullback", 3, |x| f.chain(x[0], x[1], x[2])),
        &[Element, Element, Element],
        0,
        store(write),
        move |x, _| f.chain(x[0], x[1], x[2]),
    )
}
/// The kernels of `f` and of its pullback, overwriting and accumulating.
fn scalar_function_kernels<F: ScalarFunction>(f: F) -> [Kernel; 3] {
    [
        function_kernel(f),
        function_pullback_kernel(f, Write::Overwrite),
        function_pullback_kernel(f, Write::Accumulate),
    ]
}
/// A fused function's value, tangent and pullback kernels (each input's, each store).
fn fused_function_kernels<F: FusedFunction<N>, const N: usize>(f: F) -> Vec<Kernel> {
    let mut kernels = std::vec![fused_kernel(f), fused_tangent_kernel(f)];
    for write in [Write::Overwrite, Write::Accumulate] {
        kernels.extend((0..N).map(|k| fused_pullback_kernel(f, k, write)));
    }
    kernels
}

/// A fused function's value: `N` elementwise inputs.
fn fused_kernel<F: FusedFunction<N>, const N: usize>(f: F) -> Kernel {
    let value = move |x: &[Sym]| f.value(core::array::from_fn(|k| x[k]));
    Kernel::elementwise(
        function_name::<F>("fused", N, value),
        &[Element; N],
        0,
        Store::Overwrite,
        move |x, _| value(x),
    )
}
/// ∂f/∂xₖ·ȳ for input `k` of a fused function (inputs x₁, …, x_N, then ȳ), the
/// partial recorded by forward mode on symbolic duals.
fn fused_pullback_kernel<F: FusedFunction<N>, const N: usize>(f: F, k: usize, write: Write) -> Kernel {
    let partial = move |x: &[Sym]| times_partial(fused_partials(f, core::array::from_fn(|j| x[j]))[k], x[N]);
    let role = format!("fused_pullback{k}");
    Kernel::elementwise(
        function_name::<F>(&role, N + 1, partial),
        &std::vec![Element; N + 1],
        0,
        store(write),
        move |x, _| partial(x),
    )
}
/// Σₖ ∂f/∂xₖ·ẋₖ, a fused function's tangent (inputs x₁, …, x_N, then ẋ₁, …, ẋ_N).
fn fused_tangent_kernel<F: FusedFunction<N>, const N: usize>(f: F) -> Kernel {
    let tangent = move |x: &[Sym]| {
        let partials = fused_partials(f, core::array::from_fn(|j| x[j]));
        (1..N).fold(times_partial(partials[0], x[N]), |sum, k| sum + times_partial(partials[k], x[N + k]))
    };
    Kernel::elementwise(
        function_name::<F>("fused_tangent", 2 * N, tangent),
        &std::vec![Element; 2 * N],
        0,
        Store::Overwrite,
        move |x, _| tangent(x),
    )
}

/// x + b[column]: a row added to every row of a matrix (its columns are the lines of
/// axis 0).
fn add_rows_kernel() -> Kernel {
    Kernel::elementwise("add_rows", &[Element, Line], 0, Store::Overwrite, |x, _| x[0] + x[1])
}
/// x·g[column] (=|+=): every row multiplied by a row; also x̄ = ȳ·g[column].
fn mul_rows_kernel(write: Write) -> Kernel {
    Kernel::elementwise("mul_rows", &[Element, Line], 0, store(write), |x, _| x[0] * x[1])
}
/// Σ (x − μ[line])² along each line: a row's variance times its length.
fn centered_squares_kernel() -> Kernel {
    Kernel::reduction("centered_squares", &[Element, Line], 0, Combine::Sum, Store::Overwrite, |x, _| {
        let centered = x[0] - x[1];
        centered * centered
    })
}
/// r = 1/√(s·p₀ + p₁) for s = Σ (x − μ)² of a row, p₀ = 1/n and p₁ = ε.
fn row_scale_kernel() -> Kernel {
    Kernel::elementwise("row_scale", &[Element], 2, Store::Overwrite, |x, p| {
        Sym::one() / (x[0] * p[0] + p[1]).sqrt()
    })
}
/// (x − μ[line])·r[line]: a normalised row.
fn normalize_rows_kernel() -> Kernel {
    Kernel::elementwise("normalize_rows", &[Element, Line, Line], 0, Store::Overwrite, |x, _| {
        (x[0] - x[1]) * x[2]
    })
}
/// x̄ (=|+=) r·(ȳ − p₀·Σȳ − p₀·y·Σȳy), from ȳ, y, r[line], Σȳ[line] and Σȳy[line],
/// p₀ = 1/n.
fn normalize_rows_pullback_kernel(write: Write) -> Kernel {
    let inputs = [Element, Element, Line, Line, Line];
    Kernel::elementwise("normalize_rows_pullback", &inputs, 1, store(write), |x, p| {
        x[2] * (x[0] - x[3] * p[0] - x[1] * x[4] * p[0])
    })
}
/// `out[line] = Σ x` along each line.
fn sum_kernel(write: Write) -> Kernel {
    Kernel::fold(Combine::Sum, store(write))
}
fn max_kernel() -> Kernel {
    Kernel::fold(Combine::Max, Store::Overwrite)
}
/// `out[i] (=|+=) p·v[line(i)]`: a line value spread over its line (broadcasting, the
/// pullback of a sum or mean).
fn spread_kernel(write: Write) -> Kernel {
    Kernel::elementwise("spread", &[Line], 1, store(write), |x, p| x[0] * p[0])
}
/// Σ exp(x − m) along each line, m the line's maximum.
fn shifted_total_kernel() -> Kernel {
    Kernel::reduction("shifted_total", &[Element, Line], 0, Combine::Sum, Store::Overwrite, |x, _| {
        (x[0] - x[1]).exp()
    })
}
/// logsumexp = m + ln Σ exp(x − m), or m itself when m is ±∞ (as on the host).
fn logsumexp_kernel() -> Kernel {
    Kernel::elementwise("logsumexp", &[Element, Element], 0, Store::Overwrite, |x, _| {
        let (m, total) = (x[0], x[1]);
        m.where_finite(m + total.ln(), m)
    })
}
fn log_softmax_kernel() -> Kernel {
    Kernel::elementwise("log_softmax", &[Element, Line, Line], 0, Store::Overwrite, |x, _| {
        (x[0] - x[1]) - x[2].ln()
    })
}
fn softmax_kernel() -> Kernel {
    Kernel::elementwise("softmax", &[Element, Line, Line], 0, Store::Overwrite, |x, _| {
        (x[0] - x[1]).exp() / x[2]
    })
}
/// x̄ = ȳ − exp(y)·Σȳ for y = log_softmax(x).
fn log_softmax_pullback_kernel(write: Write) -> Kernel {
    Kernel::elementwise("log_softmax_pullback", &[Element, Element, Line], 0, store(write), |x, _| {
        x[1] - x[0].exp() * x[2]
    })
}
/// Σ ȳ·y along each line.
fn dot_along_kernel() -> Kernel {
    Kernel::reduction("dot_along", &[Element, Element], 0, Combine::Sum, Store::Overwrite, |x, _| x[0] * x[1])
}
/// x̄ = y·(ȳ − Σȳ·y) for y = softmax(x).
fn softmax_pullback_kernel(write: Write) -> Kernel {
    Kernel::elementwise("softmax_pullback", &[Element, Element, Line], 0, store(write), |x, _| {
        x[0] * (x[1] - x[2])
    })
}
/// x̄ = softmax(x)·s̄ for s = logsumexp(x): exp(x − s)·s̄ where s is finite. Where it
/// is not: 1/|s|, which is 0 along a line that is all −∞ (its softmax, 0/0, is not a
/// derivative) or has a +∞ (whose first +∞ the line kernel then gives s̄), and NaN
/// along a line with a NaN, as on the host.
fn logsumexp_pullback_kernel(write: Write) -> Kernel {
    Kernel::elementwise("logsumexp_pullback", &[Element, Line, Line], 0, store(write), |x, _| {
        let (x, s, s_bar) = (x[0], x[1], x[2]);
        s.where_finite((x - s).exp() * s_bar, Sym::one() / s.abs())
    })
}

/// A C identifier for a kernel of the user function `F`: its type's name (for a
/// profiler's list and an error), a hash of the formula it records (so that two
/// parameter values share a compiled kernel exactly when they compute the same
/// thing) and the kernel's role. A function that cannot be recorded has no hash: its
/// kernel reports why when built, under the function's name.
fn function_name<F>(role: &str, inputs: usize, f: impl FnOnce(&[Sym]) -> Sym) -> std::string::String {
    let path = core::any::type_name::<F>();
    let path = path.split('<').next().unwrap_or(path);
    let type_name = path.rsplit("::").next().unwrap_or(path);
    let label: std::string::String =
        type_name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    match expression_hash(inputs, f) {
        Some(hash) => format!("user_{label}_{hash:016x}_{role}"),
        None => format!("user_{label}_{role}"),
    }
}

/// The elementary functions whose kernels the offline check compiles (`powi` for two
/// exponents; `powf`'s exponent is a parameter).
const ELEMENTARY: [Elementary<f64>; 10] = [
    Elementary::Exp,
    Elementary::Ln,
    Elementary::Sin,
    Elementary::Cos,
    Elementary::Tanh,
    Elementary::Sqrt,
    Elementary::Sigmoid,
    Elementary::Powi(3),
    Elementary::Powi(-2),
    Elementary::Powf(0.5),
];

/// Every kernel the built-in operations generate, for both stores where an operation
/// takes a [`Write`]: what the offline check compiles.
pub(crate) fn builtin_kernels() -> Vec<Kernel> {
    let functions = ELEMENTARY;
    let mut kernels = std::vec![
        abs_kernel(),
        add_rows_kernel(),
        centered_squares_kernel(),
        row_scale_kernel(),
        normalize_rows_kernel(),
        square_kernel(),
        scale_kernel(),
        add_scaled_kernel(),
        add_kernel(),
        sub_kernel(),
        relu_kernel(),
        max_kernel(),
        shifted_total_kernel(),
        logsumexp_kernel(),
        log_softmax_kernel(),
        softmax_kernel(),
        dot_along_kernel(),
    ];
    kernels.extend(functions.iter().map(|&f| elementary_kernel(f)));
    // The library's own scalar functions: GELU in both forms, batch normalisation's
    // inverse deviation and the named functions (softplus is also the binary
    // cross-entropy's); a parameter is part of the formula, so one value each stands
    // for the rest.
    kernels.extend(scalar_function_kernels(crate::nn::layer::GeluFunction));
    kernels.extend(scalar_function_kernels(crate::nn::layer::InverseDeviation { epsilon: 1e-5 }));
    kernels.extend(scalar_function_kernels(crate::nn::layer::GeluTanhFunction));
    kernels.extend(scalar_function_kernels(functions::SoftplusFunction));
    kernels.extend(scalar_function_kernels(functions::SiluFunction));
    kernels.extend(scalar_function_kernels(functions::LeakyReluFunction { slope: 0.01 }));
    kernels.extend(scalar_function_kernels(functions::ClampFunction { low: -1.0, high: 1.0 }));
    // The static-mode rules that tensors map by name (`x.erf()`, `x.floor()`, …).
    {
        use crate::autodiff::rules::*;
        kernels.extend(scalar_function_kernels(Tan));
        kernels.extend(scalar_function_kernels(ArcTan));
        kernels.extend(scalar_function_kernels(ArcSin));
        kernels.extend(scalar_function_kernels(ArcCos));
        kernels.extend(scalar_function_kernels(ErrorFunction));
        kernels.extend(scalar_function_kernels(ComplementaryErrorFunction));
        kernels.extend(scalar_function_kernels(Floor));
        kernels.extend(scalar_function_kernels(Ceiling));
        kernels.extend(scalar_function_kernels(Rounding));
        kernels.extend(scalar_function_kernels(Truncation));
        kernels.extend(scalar_function_kernels(FractionalPart));
    }
    // The fused functions of two tensors: the cross-entropies' target terms t·log p
    // (0 where t is 0), `maximum` and `minimum`.
    kernels.extend(fused_function_kernels(crate::nn::loss::TargetTerm));
    kernels.extend(fused_function_kernels(functions::Larger));
    kernels.extend(fused_function_kernels(functions::Smaller));
    for write in [Write::Overwrite, Write::Accumulate] {
        kernels.extend(functions.iter().map(|&f| elementary_pullback_kernel(f, write)));
        kernels.extend([
            fill_kernel(write),
            hadamard_kernel(write),
            mul_rows_kernel(write),
            normalize_rows_pullback_kernel(write),
            relu_pullback_kernel(write),
            sum_kernel(write),
            spread_kernel(write),
            log_softmax_pullback_kernel(write),
            softmax_pullback_kernel(write),
            logsumexp_pullback_kernel(write),
        ]);
    }
    kernels
}

/// The whole tensor as one line: `(1, n, 1)`.
fn one_line(n: usize) -> AxisSplit {
    (1, n, 1)
}

/// The operations every GPU element type shares: storage, transfers, and what acts on
/// each real part alike (sums, differences, real scaling, reductions by Σ, layout).
/// A complex element is two parts, re then im; these operations read a complex
/// tensor's buffer as a real one with a trailing axis of two.
#[fluxion_derive::extension_trait(CudaTensorOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, S: Shape> OnDevice<T, S> {
    /// A tensor of `shape` on the GPU whose buffer of parts `fill` writes in full.
    fn try_new(
        shape: S,
        fill: impl FnOnce(&mut CudaSlice<T::Part>) -> Result<(), CudaError>,
    ) -> Result<Self, CudaError> {
        let mut slice = Device::get()?.uninitialized(shape.num_elements() * T::PARTS)?;
        fill(&mut slice)?;
        Ok(Tensor::from_buffer(shape, DeviceBuffer::computed(slice, shape.num_elements() * T::PARTS)))
    }

    /// [`OnDevice::try_new`] that panics with the CUDA error.
    #[track_caller]
    fn new(shape: S, fill: impl FnOnce(&mut CudaSlice<T::Part>) -> Result<(), CudaError>) -> Self {
        or_panic_cuda(Self::try_new(shape, fill))
    }

    /// A tensor of `shape` holding `elements` (row-major, one per position), copied
    /// to the GPU.
    pub(crate) fn try_from_elements(shape: S, elements: &[T]) -> Result<Self, CudaError> {
        assert_eq!(elements.len(), shape.num_elements(), "one element per position of the shape");
        let slice = Device::get()?.upload(&T::to_parts(elements))?;
        Ok(Tensor::from_buffer(shape, DeviceBuffer::computed(slice, shape.num_elements() * T::PARTS)))
    }

    /// The buffer: every element's parts, in order (computed first if pending; a GPU
    /// failure then panics with CUDA's error).
    #[track_caller]
    pub(crate) fn slice(&self) -> &CudaSlice<T::Part> {
        or_panic_cuda(self.buffer().slice())
    }

    /// The buffer to write in place (computed first if pending, copied first if
    /// shared; a GPU failure panics with CUDA's error).
    #[track_caller]
    pub(crate) fn slice_mut(&mut self) -> &mut CudaSlice<T::Part> {
        or_panic_cuda(self.buffer_mut().slice_mut())
    }

    /// The pending result of an elementwise kernel over the parts of `inputs` (each
    /// read at the part, the result written): fused with the elementwise work that
    /// produced its inputs and that will read it (see [`DeviceBuffer`]).
    #[track_caller]
    fn fused_elementwise(shape: S, kernel: Kernel, inputs: &[&Self], params: &[T::Part]) -> Self {
        let buffers: Vec<&DeviceBuffer<T>> = inputs.iter().map(|input| input.buffer()).collect();
        let parts = shape.num_elements() * T::PARTS;
        Tensor::from_buffer(shape, or_panic_cuda(DeviceBuffer::elementwise(&kernel, &buffers, params, parts)))
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().num_elements()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of real parts in the buffer.
    fn parts(&self) -> usize {
        self.len() * T::PARTS
    }

    /// The split of axis `axis` over the buffer's parts: a complex element's two parts
    /// are an innermost axis of their own.
    fn parts_split(&self, axis: usize) -> AxisSplit {
        let (outer, len, inner) = self.dims().split_at_axis(axis);
        (outer, len, inner * T::PARTS)
    }

    /// The elements conjugated: the tensor itself for real elements (no copy).
    fn conjugated(&self) -> Cow<'_, Self> {
        if T::PARTS == 1 {
            return Cow::Borrowed(self);
        }
        Cow::Owned(Self::new(self.shape(), |out| {
            complex::conjugate_parts(self.slice(), self.len(), out, Write::Overwrite)
        }))
    }

    /// The elements, row-major, copied into a `Vec` (waits for the GPU).
    #[track_caller]
    pub fn to_vec(&self) -> Vec<T> {
        or_panic_cuda(self.try_to_vec())
    }

    fn try_to_vec(&self) -> Result<Vec<T>, CudaError> {
        Ok(T::elements_from_parts(Device::get()?.download(self.buffer().slice()?, self.parts())?))
    }

    /// A tensor of `shape` holding the elements whose parts are `parts`, copied to the
    /// GPU.
    pub(crate) fn try_from_parts(shape: S, parts: &[T::Part]) -> Result<Self, CudaError> {
        assert_eq!(parts.len(), shape.num_elements() * T::PARTS, "every element's parts");
        let slice = Device::get()?.upload(parts)?;
        Ok(Tensor::from_buffer(shape, DeviceBuffer::computed(slice, shape.num_elements() * T::PARTS)))
    }

    /// The buffer's parts copied to the host (waits for the GPU).
    #[track_caller]
    pub(crate) fn parts_to_vec(&self) -> Vec<T::Part> {
        or_panic_cuda(Device::get().and_then(|device| device.download(self.slice(), self.parts())))
    }

    /// One value folded from every part of `inputs` (`self` first) by `kernel`
    /// (waits for the GPU).
    fn fold_parts(&self, kernel: Kernel, others: &[&Self]) -> T::Part {
        let mut inputs = std::vec![self.slice()];
        inputs.extend(others.iter().map(|other| other.slice()));
        let total: OnDevice<T::Part, ()> =
            OnDevice::new((), |out| kernel.launch(&inputs, &[], one_line(self.parts()), out));
        total.to_vec()[0]
    }

    /// The largest |part| (NaN if any part is NaN; waits for the GPU).
    pub(crate) fn largest_part(&self) -> T::Part {
        self.partwise_unary(abs_kernel(), &[]).fold_parts(max_kernel(), &[])
    }

    /// Σ of every part squared (waits for the GPU).
    pub(crate) fn sum_of_squared_parts(&self) -> T::Part {
        self.fold_parts(dot_along_kernel(), &[self])
    }

    /// `out = f(self)` for a kernel applied to each part alike.
    fn partwise_unary(&self, kernel: Kernel, params: &[T::Part]) -> Self {
        Self::fused_elementwise(self.shape(), kernel, &[self], params)
    }

    /// `out = f(self, other)` for a kernel applied to each part alike, shapes checked.
    fn partwise_binary(
        &self,
        other: &Self,
        operation: &'static str,
        kernel: Kernel,
    ) -> Result<Self, ShapeError> {
        self.check_same_shape(other, operation)?;
        Ok(Self::fused_elementwise(self.shape(), kernel, &[self, other], &[]))
    }

    /// Every element multiplied by the real `factor`.
    pub(crate) fn scale_parts(&self, factor: T::Part) -> Self {
        self.partwise_unary(scale_kernel(), &[factor])
    }

    /// Elementwise sum; an error names both shapes when a dynamic dimension differs.
    pub fn try_add(&self, other: &Self) -> Result<Self, ShapeError> {
        self.partwise_binary(other, "add", add_kernel())
    }

    /// Elementwise difference; an error names both shapes when a dynamic dimension
    /// differs.
    pub fn try_sub(&self, other: &Self) -> Result<Self, ShapeError> {
        self.partwise_binary(other, "sub", sub_kernel())
    }

    /// Σ of all elements, on the GPU.
    fn total(&self) -> OnDevice<T, ()> {
        OnDevice::new((), |out| {
            sum_kernel(Write::Overwrite).launch(&[self.slice()], &[], (1, self.len(), T::PARTS), out)
        })
    }

    /// Σ of all elements (waits for the GPU).
    pub fn sum(&self) -> T {
        self.total().to_vec()[0]
    }

    /// Mean of all elements (NaN for an empty tensor; waits for the GPU).
    pub fn mean(&self) -> T {
        self.total().scale_parts(T::Part::one() / T::Part::from_f64(self.len() as f64)).to_vec()[0]
    }

    /// Σ along `AXIS`.
    pub fn sum_axis<const AXIS: usize>(&self, _: Axis<AXIS>) -> OnDevice<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        OnDevice::new(self.shape().removed(), |out| {
            sum_kernel(Write::Overwrite).launch(&[self.slice()], &[], self.parts_split(AXIS), out)
        })
    }

    /// Mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> OnDevice<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        let len = self.shape().axis_dim().size();
        self.sum_axis(axis).scale_parts(T::Part::one() / T::Part::from_f64(len as f64))
    }

    /// The tensor repeated along a new axis at `AXIS` of the static shape `Target`
    /// (see the host's `broadcast_axis`): one generated kernel reading one value per
    /// line.
    #[track_caller]
    pub fn broadcast_axis<const AXIS: usize, Target>(&self, axis: Axis<AXIS>) -> OnDevice<T, Target>
    where
        Target: crate::shape::StaticShape + InsertsAxis<AXIS, S>,
    {
        or_panic(self.try_broadcast_axis_to(axis, Target::default()))
    }

    /// [`broadcast_axis`](Self::broadcast_axis) to `shape`; an error names both shapes
    /// when `shape` without axis `AXIS` is not the tensor's shape.
    pub fn try_broadcast_axis_to<const AXIS: usize, Target>(
        &self,
        _: Axis<AXIS>,
        shape: Target,
    ) -> Result<OnDevice<T, Target>, ShapeError>
    where
        Target: InsertsAxis<AXIS, S>,
    {
        check_broadcast_axis::<AXIS, S, Target>(self.shape(), shape)?;
        let (outer, len, inner) = shape.dims().split_at_axis(AXIS);
        Ok(OnDevice::new(shape, |out| {
            spread_kernel(Write::Overwrite).launch(
                &[self.slice()],
                &[T::Part::one()],
                (outer, len, inner * T::PARTS),
                out,
            )
        }))
    }

    /// The tensor repeated along new leading axes to the static shape `Target`.
    pub fn broadcast<Target>(&self) -> OnDevice<T, Target>
    where
        Target: crate::shape::StaticShape,
        S: Broadcastable<Target>,
    {
        or_panic(self.try_broadcast_to(Target::default()))
    }

    /// The tensor repeated along new leading axes to `shape`; an error names both shapes
    /// when a dynamic trailing dimension differs.
    pub fn try_broadcast_to<Target: Shape>(&self, shape: Target) -> Result<OnDevice<T, Target>, ShapeError>
    where
        S: Broadcastable<Target>,
    {
        crate::ops::layout::check_broadcast(self.dims(), shape.dims(), Target::RANK - S::RANK)?;
        let axis = (1, shape.num_elements() / self.len().max(1), self.parts());
        Ok(OnDevice::new(shape, |out| {
            spread_kernel(Write::Overwrite).launch(&[self.slice()], &[T::Part::one()], axis, out)
        }))
    }

    /// Σ aᵢbᵢ (real data: also `inner` and `dotu`); waits for the GPU. Complex data
    /// does not compile: it has `inner` and `dotu`.
    #[track_caller]
    pub fn dot(&self, other: &Self) -> T
    where
        T: RealDot,
    {
        or_panic(self.try_dot(other))
    }

    /// [`Tensor::dot`] that returns an error naming both shapes on a mismatch.
    pub fn try_dot(&self, other: &Self) -> Result<T, ShapeError>
    where
        T: RealDot,
    {
        self.check_same_shape(other, "dot")?;
        let total: OnDevice<T, ()> = OnDevice::new((), |out| {
            dot_along_kernel().launch(&[self.slice(), other.slice()], &[], one_line(self.parts()), out)
        });
        Ok(total.to_vec()[0])
    }

    /// The same elements in another shape with as many elements; an error names both
    /// shapes otherwise.
    pub fn try_reshape<Target: Shape>(&self, shape: Target) -> Result<OnDevice<T, Target>, ShapeError> {
        check_element_count(self.dims(), shape.dims())?;
        Ok(Tensor::from_buffer(shape, self.buffer().clone()))
    }

    /// The same elements under the static shape `Target` (element counts checked by
    /// the compiler, as on the host).
    pub fn reshape<Target>(&self) -> OnDevice<T, Target>
    where
        Target: crate::shape::StaticShape,
        S: SameElementCount<Target>,
    {
        let () = <S as SameElementCount<Target>>::CHECK;
        self.relabelled()
    }

    /// The same elements under `Target`, whose element count its callers have checked.
    pub(crate) fn relabelled<Target: crate::shape::StaticShape>(&self) -> OnDevice<T, Target> {
        Tensor::from_buffer(Target::default(), self.buffer().clone())
    }

    /// The elements as a vector of static length `N`.
    pub fn flatten<const N: usize>(&self) -> OnDevice<T, (Const<N>,)>
    where
        S: SameElementCount<(Const<N>,)>,
    {
        let () = <S as SameElementCount<(Const<N>,)>>::CHECK;
        self.relabelled()
    }

    /// Concatenation with `other` along `AXIS`; an error names both shapes when
    /// another axis differs.
    pub fn try_concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &OnDevice<T, S::Replaced<B>>,
    ) -> Result<OnDevice<T, S::Replaced<C>>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        self.join_along(axis, other)
    }

    /// [`Self::try_concat`] once the static lengths are known to agree (its callers
    /// check them).
    pub(crate) fn join_along<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        _: Axis<AXIS>,
        other: &OnDevice<T, S::Replaced<B>>,
    ) -> Result<OnDevice<T, S::Replaced<C>>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
    {
        let (lhs, rhs) = (self.dims(), other.dims());
        check_concat(AXIS, lhs, rhs)?;
        let out_shape =
            self.shape().replaced(self.shape().axis_dim().add_dims(S::axis_of_replaced(&other.shape())));
        let (outer, len_a, inner) = self.parts_split(AXIS);
        let len_b = rhs.as_slice()[AXIS];
        let total = len_a + len_b;
        Ok(OnDevice::new(out_shape, |out| {
            let at = |len, start| AxisRange { len, start };
            copy_block(
                self.slice(),
                out,
                (outer, len_a, inner),
                at(len_a, 0),
                at(total, 0),
                Store::Overwrite,
            )?;
            copy_block(
                other.slice(),
                out,
                (outer, len_b, inner),
                at(len_b, 0),
                at(total, len_a),
                Store::Overwrite,
            )
        }))
    }

    /// [`Tensor::try_concat`] that panics on a mismatch.
    #[track_caller]
    pub fn concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &OnDevice<T, S::Replaced<B>>,
    ) -> OnDevice<T, S::Replaced<C>>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        or_panic(self.join_along(axis, other))
    }

    /// The slice `[START, START + LEN)` along `AXIS`; an error names the axis and the
    /// slice when it does not fit (a `Dyn` axis).
    pub fn try_narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Result<OnDevice<T, S::Replaced<Const<LEN>>>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        self.window_along::<AXIS, START, LEN>()
    }

    /// [`Self::try_narrow`] once the static lengths are known to agree (its callers
    /// check them).
    pub(crate) fn window_along<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Result<OnDevice<T, S::Replaced<Const<LEN>>>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
    {
        if !self.shape().axis_dim().fits() {
            return Err(crate::ops::layout::narrow_error(self.dims(), AXIS, START, LEN));
        }
        let (outer, len, inner) = self.parts_split(AXIS);
        Ok(OnDevice::new(self.shape().replaced(Const::<LEN>), |out| {
            let (from, to) = (AxisRange { len, start: START }, AxisRange { len: LEN, start: 0 });
            copy_block(self.slice(), out, (outer, LEN, inner), from, to, Store::Overwrite)
        }))
    }

    /// [`Tensor::try_narrow`] that panics when the slice does not fit.
    #[track_caller]
    pub fn narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> OnDevice<T, S::Replaced<Const<LEN>>>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        or_panic(self.window_along::<AXIS, START, LEN>())
    }

    /// The axes in the order `axes` names, as [`Tensor::permute`] on the host: one
    /// kernel reading each element from its input offset.
    pub fn permute<P: PermutesAxes<S>>(&self, _: P) -> OnDevice<T, P::Output> {
        let () = P::CHECK;
        self.reorder_axes::<P>()
    }

    /// [`Self::permute`] once the order is known to name each axis once (its callers
    /// check it, so that a mistake points at their caller).
    pub(crate) fn reorder_axes<P: PermutesAxes<S>>(&self) -> OnDevice<T, P::Output> {
        OnDevice::new(P::permuted(&self.shape()), |out| {
            permute_kernel(self.slice(), self.dims().as_slice(), P::ORDER, T::PARTS, out)
        })
    }
}

/// x̄ for y = `x.permute(axes)` on the GPU: ȳ with its axes put back by the inverse
/// order, as [`crate::ops::layout::permute_pullback`] on the host.
pub fn permute_pullback<T: CudaScalar, S: Shape, P: PermutesAxes<S>>(
    _: P,
    y_bar: &OnDevice<T, P::Output>,
) -> OnDevice<T, S> {
    let () = P::CHECK;
    let (shape, inverse) = permuted_back::<S, P>(y_bar.dims());
    OnDevice::new(shape, |out| {
        permute_kernel(y_bar.slice(), y_bar.dims().as_slice(), &inverse[..P::ORDER.len()], T::PARTS, out)
    })
}

/// The GPU tensors' own constructors, transfers and in-place update (no host method
/// has these names, so they stay inherent: no import needed).
impl<T: CudaScalar, S: Shape> OnDevice<T, S> {
    /// A tensor of `shape` on the GPU with every element `value`: a real value is a
    /// kernel parameter; a complex one is copied to the GPU once and spread.
    pub fn device_full(shape: S, value: T) -> Self {
        let n = shape.num_elements();
        if let [part] = T::to_parts(core::slice::from_ref(&value))[..] {
            return Self::new(shape, |out| {
                fill_kernel(Write::Overwrite).launch(&[], &[part], one_line(n), out)
            });
        }
        let element = or_panic_cuda(OnDevice::<T, (Const<1>,)>::try_from_elements((Const,), &[value]));
        Self::new(shape, |out| {
            spread_kernel(Write::Overwrite).launch(
                &[element.slice()],
                &[T::Part::one()],
                (1, n, T::PARTS),
                out,
            )
        })
    }

    /// A tensor of `shape` on the GPU with every element zero. (Constructors of device
    /// tensors carry their own names: an associated function of the same name as a
    /// host one would make `Tensor::zeros_shaped(…)` ambiguous where the storage kind
    /// is inferred later.)
    pub fn device_zeros(shape: S) -> Self {
        let slice =
            or_panic_cuda(Device::get().and_then(|device| device.zeros(shape.num_elements() * T::PARTS)));
        Tensor::from_buffer(shape, DeviceBuffer::computed(slice, shape.num_elements() * T::PARTS))
    }

    /// Elements drawn uniformly from `[low, high)` (see
    /// [`Tensor::random_uniform_shaped`]), drawn on the host and copied: the same seed
    /// gives the same elements as a host tensor, so a model initialised on either
    /// storage kind starts from the same point.
    ///
    /// # Panics
    /// When a bound is not finite, or the GPU cannot take the copy.
    #[track_caller]
    pub fn device_random_uniform(shape: S, low: T::Real, high: T::Real, seed: u64) -> Self {
        Tensor::<T, S, Heap>::random_uniform_shaped(shape, low, high, seed).to_device()
    }

    /// Elements drawn from a normal distribution (see
    /// [`Tensor::random_normal_shaped`]), drawn on the host and copied, as
    /// [`Tensor::device_random_uniform`].
    #[track_caller]
    pub fn device_random_normal(shape: S, mean: T::Real, std_dev: T::Real, seed: u64) -> Self {
        Tensor::<T, S, Heap>::random_normal_shaped(shape, mean, std_dev, seed).to_device()
    }

    /// The elements copied to host storage `K` (waits for the GPU).
    #[track_caller]
    pub fn to_host<K: Storage<T, S>>(&self) -> Tensor<T, S, K> {
        or_panic_cuda(self.try_to_host())
    }

    /// [`Tensor::to_host`] that returns the CUDA error.
    pub fn try_to_host<K: Storage<T, S>>(&self) -> Result<Tensor<T, S, K>, CudaError> {
        let elements = self.try_to_vec()?;
        Ok(Tensor::from_elements(self.shape(), elements.into_iter()))
    }

    /// `self += factor·other` in place for a real `factor` (an SGD step is
    /// `w.add_scaled(-lr, &g)`).
    #[track_caller]
    pub fn add_scaled(&mut self, factor: T::Part, other: &Self) {
        or_panic(self.check_same_shape(other, "add_scaled"));
        let parts = self.parts();
        or_panic_cuda(add_scaled_kernel().launch(
            &[other.slice()],
            &[factor],
            one_line(parts),
            self.slice_mut(),
        ));
    }
}

/// The operations of real GPU tensors (`f32`, `f64`): a [`ScalarFunction`]'s or an
/// [`Elementary`] function's generated kernel (the named ones are
/// [`CudaElementaryOps`]'), `relu`, Hadamard and inner products, maxima, softmax and
/// logsumexp, and the complex views (`re`, `im`, `conj`), trivial on real data.
#[fluxion_derive::extension_trait(CudaRealOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, S: Shape> OnDevice<T, S> {
    /// `out = f(self)` for a kernel of one elementwise input.
    #[track_caller]
    fn unary(&self, kernel: Kernel, params: &[T]) -> Self {
        Self::fused_elementwise(self.shape(), kernel, &[self], params)
    }

    /// `out = f(self, other)` for a kernel of two elementwise inputs, shapes checked.
    fn binary(&self, other: &Self, operation: &'static str, kernel: Kernel) -> Result<Self, ShapeError> {
        self.check_same_shape(other, operation)?;
        Ok(Self::fused_elementwise(self.shape(), kernel, &[self, other], &[]))
    }

    /// f(x) elementwise for an elementary function `f`.
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        self.unary(elementary_kernel(f), &[elementary_param(&f)])
    }

    /// max(x, 0) elementwise.
    pub fn relu(&self) -> Self {
        self.unary(relu_kernel(), &[])
    }

    /// Multiplies every element by `factor`, into a new tensor.
    #[must_use = "`scale` returns the scaled tensor and leaves `self` as it is"]
    pub fn scale(&self, factor: T) -> Self {
        self.scale_parts(factor)
    }

    /// (self ⊙ other)ᵢ = selfᵢ·otherᵢ.
    #[track_caller]
    pub fn hadamard(&self, other: &Self) -> Self {
        or_panic(self.try_hadamard(other))
    }

    /// [`Tensor::hadamard`] that returns an error naming both shapes on a mismatch.
    pub fn try_hadamard(&self, other: &Self) -> Result<Self, ShapeError> {
        self.binary(other, "hadamard", hadamard_kernel(Write::Overwrite))
    }

    /// A reduction of each line of `axis` into a tensor of shape `shape`.
    fn reduced<R: Shape>(&self, shape: R, axis: AxisSplit, kernel: Kernel, params: &[T]) -> OnDevice<T, R> {
        OnDevice::new(shape, |out| kernel.launch(&[self.slice()], params, axis, out))
    }

    /// One value for the whole tensor, copied to the host.
    fn reduced_to_host(&self, kernel: Kernel) -> T {
        let total: OnDevice<T, ()> = self.reduced((), one_line(self.len()), kernel, &[]);
        total.to_vec()[0]
    }

    /// The largest element (NaN if any element is NaN, −∞ for an empty tensor; waits
    /// for the GPU).
    pub fn max(&self) -> T {
        if self.is_empty() { T::neg_infinity() } else { self.reduced_to_host(max_kernel()) }
    }

    /// The largest element along `AXIS` (NaN propagates; −∞ for an empty axis).
    pub fn max_axis<const AXIS: usize>(&self, _: Axis<AXIS>) -> OnDevice<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        self.reduced(self.shape().removed(), self.dims().split_at_axis(AXIS), max_kernel(), &[])
    }

    /// The position along `AXIS` of each line's first largest element (its first NaN
    /// if it has one), computed on the GPU; only the positions are copied back.
    pub(crate) fn argmax_along<const AXIS: usize>(&self) -> Vec<usize>
    where
        S: HasAxis<AXIS>,
    {
        or_panic_cuda(line_argmax(self.slice(), self.dims().split_at_axis(AXIS)))
    }

    /// Each line's maximum m and Σ exp(x − m).
    fn shifted_totals<const AXIS: usize>(&self) -> (OnDevice<T, S::Removed>, OnDevice<T, S::Removed>)
    where
        S: HasAxis<AXIS>,
    {
        let max = self.max_axis(Axis::<AXIS>);
        let axis = self.dims().split_at_axis(AXIS);
        let totals = OnDevice::new(max.shape(), |out| {
            shifted_total_kernel().launch(&[self.slice(), max.slice()], &[], axis, out)
        });
        (max, totals)
    }

    /// ln Σ exp along `AXIS`, shifted by the maximum (see [`crate::ops::softmax`]).
    pub fn logsumexp<const AXIS: usize>(&self, _: Axis<AXIS>) -> OnDevice<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        let (max, totals) = self.shifted_totals::<AXIS>();
        or_panic(max.binary(&totals, "logsumexp", logsumexp_kernel()))
    }

    /// (x − m) − ln Σ exp(x − m) along `AXIS`.
    pub fn log_softmax<const AXIS: usize>(&self, _: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        self.normalised::<AXIS>(log_softmax_kernel())
    }

    /// exp(x − m) / Σ exp(x − m) along `AXIS`.
    pub fn softmax<const AXIS: usize>(&self, _: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        self.normalised::<AXIS>(softmax_kernel())
    }

    fn normalised<const AXIS: usize>(&self, kernel: Kernel) -> Self
    where
        S: HasAxis<AXIS>,
    {
        let (max, totals) = self.shifted_totals::<AXIS>();
        let axis = self.dims().split_at_axis(AXIS);
        Self::new(self.shape(), |out| {
            kernel.launch(&[self.slice(), max.slice(), totals.slice()], &[], axis, out)
        })
    }

    /// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ, which is `dot` on real data.
    #[track_caller]
    pub fn inner(&self, other: &Self) -> T {
        self.dot(other)
    }

    /// Σ aᵢbᵢ, which is `dot` on real data.
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> T {
        self.dot(other)
    }

    /// [`Tensor::inner`] that returns an error naming both shapes on a mismatch.
    pub fn try_inner(&self, other: &Self) -> Result<T, ShapeError> {
        self.try_dot(other)
    }

    /// [`Tensor::dotu`] that returns an error naming both shapes on a mismatch.
    pub fn try_dotu(&self, other: &Self) -> Result<T, ShapeError> {
        self.try_dot(other)
    }

    /// |x| elementwise.
    pub fn abs(&self) -> Self {
        self.unary(abs_kernel(), &[])
    }

    /// |x|² elementwise.
    pub fn norm_sqr(&self) -> Self {
        self.unary(square_kernel(), &[])
    }

    /// The real part: the tensor itself on real data.
    pub fn re(&self) -> Self {
        self.clone()
    }

    /// The imaginary part: zeros on real data.
    pub fn im(&self) -> Self {
        OnDevice::device_zeros(self.shape())
    }

    /// The complex conjugate: the tensor itself on real data.
    pub fn conj(&self) -> Self {
        self.clone()
    }
}

elementary_methods!(
    /// eˣ, ln, sin, cos, tanh, √, the sigmoid and powers of real GPU tensors, each a kernel
    /// generated from the function's definition.
    #[fluxion_derive::extension_trait(CudaElementaryOps: crate::backend::cuda::method_seal::Sealed)]
    impl<T: CudaElement, S: Shape> OnDevice<T, S>
);

/// The outer product of GPU vectors.
#[fluxion_derive::extension_trait(CudaVectorOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, M: Dim> OnDevice<T, (M,)> {
    /// a ⊗ b → the M×N matrix aᵢbⱼ, not conjugated (cuBLAS, inner size 1).
    pub fn outer<N: Dim>(&self, other: &OnDevice<T, (N,)>) -> OnDevice<T, (M, N)> {
        let (m, n) = (self.shape().0, other.shape().0);
        OnDevice::new((m, n), |out| {
            gemm_into::<T>(
                (m.size(), 1, n.size(), 1),
                (self.slice(), false),
                (other.slice(), false),
                out,
                Write::Overwrite,
            );
            Ok(())
        })
    }
}

#[diagnostic::do_not_recommend]
/// `f` applied to every element, by a kernel generated from `f`'s definition.
///
/// # Panics
/// When `f` cannot be recorded on symbols (it compares values, say): the message names
/// `f`'s type and what it asked.
impl<T: CudaElement, S: Shape> MapFunction for OnDevice<T, S> {
    #[track_caller]
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        self.unary(function_kernel(f), &[])
    }
}

/// A fused elementwise function of `N` GPU tensors: one generated kernel.
#[diagnostic::do_not_recommend]
impl<T: CudaElement, S: Shape, const N: usize> Fusable<N> for OnDevice<T, S> {
    #[track_caller]
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self {
        let () = const { assert!(N > 0, "a fused function takes at least one input") };
        check_fused_shapes(F::NAME, &inputs);
        Self::fused_elementwise(inputs[0].shape(), fused_kernel(f), &inputs, &[])
    }
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(other, operation)
    }
}

impl<T: CudaElement, S: Shape> OnDevice<T, S> {
    /// Σₖ ∂f/∂xₖ·ẋₖ at `inputs` for the tangents `tangents`: a fused function's
    /// forward-mode rule, one kernel.
    #[track_caller]
    pub(crate) fn fused_tangent<F: FusedFunction<N>, const N: usize>(
        f: F,
        inputs: [&Self; N],
        tangents: [&Self; N],
    ) -> Self {
        let () = const { assert!(N > 0, "a fused function takes at least one input") };
        check_fused_shapes(F::NAME, &inputs);
        for tangent in &tangents {
            or_panic(inputs[0].check_same_shape(tangent, "fused_tangent"));
        }
        let len = inputs[0].len();
        let buffers: std::vec::Vec<&CudaSlice<T>> =
            inputs.iter().chain(&tangents).map(|x| x.slice()).collect();
        Self::new(inputs[0].shape(), |out| fused_tangent_kernel(f).launch(&buffers, &[], one_line(len), out))
    }
}

impl<T: CudaScalar, S: Shape> Zeros<T, S> for Cuda {
    fn zeros_shaped(shape: S) -> OnDevice<T, S> {
        OnDevice::device_zeros(shape)
    }
}

/// The shape, then the elements (copied from the GPU) nested by axis.
impl<T: CudaScalar, S: Shape> core::fmt::Debug for OnDevice<T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Tensor {} on the GPU ", self.dims())?;
        match self.try_to_vec() {
            Ok(elements) => {
                write_nested(f, self.dims().as_slice(), &elements, &|x, f| core::fmt::Debug::fmt(x, f))
            }
            Err(error) => write!(f, "(unreadable: {error})"),
        }
    }
}

/// Row scaling and normalisation of real GPU matrices.
#[fluxion_derive::extension_trait(CudaRealMatrixOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, C: Dim> OnDevice<T, (R, C)> {
    /// yᵢⱼ = xᵢⱼ·gⱼ: every row multiplied by `row` elementwise; an error names both
    /// shapes when a dynamic column count differs.
    pub fn try_mul_rows(&self, row: &OnDevice<T, (C,)>) -> Result<Self, ShapeError> {
        check_row(self.shape(), row.shape(), "mul_rows")?;
        let axis = self.dims().split_at_axis(0);
        Ok(Self::new(self.shape(), |out| {
            mul_rows_kernel(Write::Overwrite).launch(&[self.slice(), row.slice()], &[], axis, out)
        }))
    }

    /// [`Tensor::try_mul_rows`] that panics on a mismatch.
    #[track_caller]
    pub fn mul_rows(&self, row: &OnDevice<T, (C,)>) -> Self {
        or_panic(self.try_mul_rows(row))
    }

    /// yᵢⱼ = (xᵢⱼ − μᵢ)/√(σᵢ² + ε), with μᵢ and σᵢ² the mean and (biased) variance of
    /// row i.
    pub fn normalize_rows(&self, epsilon: T) -> Self {
        self.normalized_rows(epsilon).0
    }

    /// The normalised rows and 1/√(σᵢ² + ε) per row (what the pullback needs).
    pub(crate) fn normalized_rows(&self, epsilon: T) -> (Self, OnDevice<T, (R,)>) {
        let inverse_count = T::from_f64(1.0 / self.shape().1.size() as f64);
        let means = self.mean_axis(Axis::<1>);
        let axis = self.dims().split_at_axis(1);
        let squares = OnDevice::<T, _>::new(means.shape(), |out| {
            centered_squares_kernel().launch(&[self.slice(), means.slice()], &[], axis, out)
        });
        let scales = OnDevice::new(squares.shape(), |out| {
            row_scale_kernel().launch(
                &[squares.slice()],
                &[inverse_count, epsilon],
                one_line(squares.len()),
                out,
            )
        });
        let y = Self::new(self.shape(), |out| {
            normalize_rows_kernel().launch(&[self.slice(), means.slice(), scales.slice()], &[], axis, out)
        });
        (y, scales)
    }
}

/// Row operations of every element type: a complex row is its parts in a row.
#[fluxion_derive::extension_trait(CudaMatrixOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, R: Dim, C: Dim> OnDevice<T, (R, C)> {
    /// yᵢⱼ = xᵢⱼ + bⱼ: `row` added to every row; an error names both shapes when a
    /// dynamic column count differs.
    pub fn try_add_rows(&self, row: &OnDevice<T, (C,)>) -> Result<Self, ShapeError> {
        check_row(self.shape(), row.shape(), "add_rows")?;
        let axis = self.parts_split(0);
        Ok(Self::new(self.shape(), |out| {
            add_rows_kernel().launch(&[self.slice(), row.slice()], &[], axis, out)
        }))
    }

    /// [`Tensor::try_add_rows`] that panics on a mismatch.
    #[track_caller]
    pub fn add_rows(&self, row: &OnDevice<T, (C,)>) -> Self {
        or_panic(self.try_add_rows(row))
    }

    /// The transposed matrix (not conjugated: for the adjoint of a complex matrix,
    /// follow with [`conj`](OnDevice::conj)). A complex matrix takes two passes of
    /// the transpose kernel.
    pub fn transpose(&self) -> OnDevice<T, (C, R)> {
        let (rows, cols) = self.shape();
        OnDevice::new((cols, rows), |out| {
            transpose_elements(self.slice(), (rows.size(), cols.size(), T::PARTS), out)
        })
    }

    /// yₖⱼ = x_{indices\[k\], j}: the rows at `indices`, in order (repeats allowed).
    ///
    /// # Panics
    /// When an index is not a row of `self` (the message names it and the row count).
    #[track_caller]
    pub fn gather_rows(&self, indices: &[usize]) -> OnDevice<T, (Dyn, C)> {
        let (rows, columns) = self.shape();
        crate::ops::rows::check_row_indices("gather_rows", indices, rows.size());
        OnDevice::new((Dyn(indices.len()), columns), |out| {
            gather_rows_kernel(self.slice(), (rows.size(), columns.size() * T::PARTS), indices, out)
        })
    }
}

impl<T: CudaScalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// The elements copied to GPU memory.
    ///
    /// # Panics
    /// When there is no GPU or it cannot hold the tensor (the message names the CUDA
    /// error); [`Tensor::try_to_device`] returns the error instead.
    #[track_caller]
    pub fn to_device(&self) -> OnDevice<T, S> {
        or_panic_cuda(self.try_to_device())
    }

    /// The elements copied to GPU memory, or the CUDA error.
    pub fn try_to_device(&self) -> Result<OnDevice<T, S>, CudaError> {
        OnDevice::try_from_elements(self.shape(), self.as_slice())
    }
}

macro_rules! assign_operator {
    ($Assign:ident, $assign:ident, $try_method:ident) => {
        impl<T: CudaScalar, S: Shape> $Assign<&OnDevice<T, S>> for OnDevice<T, S> {
            #[track_caller]
            fn $assign(&mut self, rhs: &OnDevice<T, S>) {
                *self = or_panic(self.$try_method(rhs));
            }
        }
        impl<T: CudaScalar, S: Shape> $Assign for OnDevice<T, S> {
            #[track_caller]
            fn $assign(&mut self, rhs: OnDevice<T, S>) {
                *self = or_panic(self.$try_method(&rhs));
            }
        }
    };
}

assign_operator!(AddAssign, add_assign, try_add);
assign_operator!(SubAssign, sub_assign, try_sub);

/// The operators `+`, `−`, unary `−`, and `*` and `/` by a scalar (a real one beside
/// complex data too, as on the host) of GPU tensors: generated kernels, sums and
/// differences on the parts, scaling by the element type's kernel.
impl<T: CudaScalar, S: Shape> KindArithmetic<T, S> for Cuda {
    #[track_caller]
    fn try_add(a: &OnDevice<T, S>, b: &OnDevice<T, S>) -> Result<OnDevice<T, S>, ShapeError> {
        CudaTensorOps::try_add(a, b)
    }
    #[track_caller]
    fn try_sub(a: &OnDevice<T, S>, b: &OnDevice<T, S>) -> Result<OnDevice<T, S>, ShapeError> {
        CudaTensorOps::try_sub(a, b)
    }
    fn negate(a: &OnDevice<T, S>) -> OnDevice<T, S> {
        a.scale_parts(-T::Part::one())
    }
    fn scale(a: &OnDevice<T, S>, factor: T) -> OnDevice<T, S> {
        T::scale_on_device(a, factor)
    }
    fn divide(a: &OnDevice<T, S>, divisor: T) -> OnDevice<T, S> {
        T::divide_on_device(a, divisor)
    }
}

// Matrix products through cuBLAS.

/// The matrix product `(m, k, n, batch)`: out (=|+=) op(a)·op(b), op the adjoint
/// where an operand's flag is set.
#[allow(clippy::too_many_arguments)]
fn gemm_into<T: CudaScalar>(
    sizes: (usize, usize, usize, usize),
    a: (&CudaSlice<T::Part>, bool),
    b: (&CudaSlice<T::Part>, bool),
    out: &mut CudaSlice<T::Part>,
    write: Write,
) {
    let (m, k, n, _) = sizes;
    if T::PARTS == 2 && T::Part::C_TYPE == CType::F64 && (m == 1 || k == 1 || n == 1) {
        return complex::gemm_by_parts::<T::Part>(sizes, a, b, out, write);
    }
    let beta = if write == Write::Accumulate { T::one() } else { T::zero() };
    or_panic_cuda(Device::get().and_then(|device| device.gemm(sizes, a, b, out, (T::one(), beta))));
}

/// The cotangents of C = A·B for `batch` products of sizes (m, k, n):
/// Ā = C̄·Bᴴ and B̄ = Aᴴ·C̄ (transposes, for real elements), each written or added as
/// asked.
fn gemm_pullback<T: CudaScalar>(
    (m, k, n, batch): (usize, usize, usize, usize),
    (a, b, out_bar): (&CudaSlice<T::Part>, &CudaSlice<T::Part>, &CudaSlice<T::Part>),
    a_bar: Option<(&mut CudaSlice<T::Part>, Write)>,
    b_bar: Option<(&mut CudaSlice<T::Part>, Write)>,
) {
    if let Some((a_bar, write)) = a_bar {
        gemm_into::<T>((m, n, k, batch), (out_bar, false), (b, true), a_bar, write);
    }
    if let Some((b_bar, write)) = b_bar {
        gemm_into::<T>((k, m, n, batch), (a, true), (out_bar, false), b_bar, write);
    }
}

/// Implements [`MatMul`] for device tensors of the given shapes: `$sizes` gives
/// `(m, k, n, batch)` and `$out` the product's shape from the operand shapes.
macro_rules! device_matmul {
    (<$($d:ident),*> $lhs:ty, $rhs:ty => $output:ty, |$a:ident, $b:ident| $inner_ok:expr, $out_shape:expr, $sizes:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: CudaScalar, $($d: Dim),*> MatMul<OnDevice<T, $rhs>> for OnDevice<T, $lhs> {
            type Output = OnDevice<T, $output>;

            fn try_matmul(&self, rhs: &OnDevice<T, $rhs>) -> Result<Self::Output, ShapeError> {
                #[allow(unused_variables)] // a matrix × vector product's sizes ignore the vector's
                let ($a, $b) = (self.shape(), rhs.shape());
                if !$inner_ok {
                    return Err(inner_mismatch(&self.shape(), &rhs.shape()));
                }
                let sizes = $sizes;
                Ok(OnDevice::new($out_shape, |out| {
                    gemm_into::<T>(sizes, (self.slice(), false), (rhs.slice(), false), out, Write::Overwrite);
                    Ok(())
                }))
            }

            fn try_matmul_into(&self, rhs: &OnDevice<T, $rhs>, out: &mut Self::Output) -> Result<(), ShapeError> {
                #[allow(unused_variables)] // a matrix × vector product's sizes ignore the vector's
                let ($a, $b) = (self.shape(), rhs.shape());
                if !$inner_ok {
                    return Err(inner_mismatch(&self.shape(), &rhs.shape()));
                }
                check_output("matmul_into", out, $out_shape)?;
                gemm_into::<T>($sizes, (self.slice(), false), (rhs.slice(), false), out.slice_mut(), Write::Overwrite);
                Ok(())
            }

            fn matmul_pullback(
                &self,
                rhs: &OnDevice<T, $rhs>,
                out_bar: &Self::Output,
                lhs_bar: Option<(&mut Self, Write)>,
                rhs_bar: Option<(&mut OnDevice<T, $rhs>, Write)>,
            ) {
                #[allow(unused_variables)] // a matrix × vector product's sizes ignore the vector's
                let ($a, $b) = (self.shape(), rhs.shape());
                gemm_pullback::<T>(
                    $sizes,
                    (self.slice(), rhs.slice(), out_bar.slice()),
                    lhs_bar.map(|(x, write)| (x.slice_mut(), write)),
                    rhs_bar.map(|(x, write)| (x.slice_mut(), write)),
                );
            }
        }
    };
}

device_matmul!(<M, I, N> (M, I), (I, N) => (M, N), |a, b| a.1 == b.0, (a.0, b.1), (a.0.size(), a.1.size(), b.1.size(), 1));
device_matmul!(<M, I> (M, I), (I,) => (M,), |a, b| a.1 == b.0, (a.0,), (a.0.size(), a.1.size(), 1, 1));
device_matmul!(<B, M, I, N> (B, M, I), (B, I, N) => (B, M, N), |a, b| a.2 == b.1 && a.0 == b.0, (a.0, a.1, b.2),
    (a.1.size(), a.2.size(), b.2.size(), a.0.size()));
// A batch by one matrix is one [B·M, K]×[K, N] product (B̄ sums over the batch in it).
device_matmul!(<B, M, I, N> (B, M, I), (I, N) => (B, M, N), |a, b| a.2 == b.0, (a.0, a.1, b.1),
    (a.0.size() * a.1.size(), a.2.size(), b.1.size(), 1));

/// A·Bᵀ (transposed, never conjugated, as on the host), with Ā = Ȳ·conj(B) and
/// B̄ = Ȳᵀ·conj(A). cuBLAS's flag gives the adjoint, so B is read as the adjoint of
/// conj(B) and B̄ is the conjugate of Ȳᴴ·A: for real elements B is read in place and
/// nothing is conjugated; for complex ones each costs a conjugating pass.
#[diagnostic::do_not_recommend]
impl<T: CudaScalar, M: Dim, I: Dim, N: Dim> MatMulTransposed<OnDevice<T, (N, I)>> for OnDevice<T, (M, I)> {
    type Output = OnDevice<T, (M, N)>;

    fn try_matmul_transposed(&self, rhs: &OnDevice<T, (N, I)>) -> Result<Self::Output, ShapeError> {
        let ((m, i), (n, i2)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(columns_mismatch(&self.shape(), &rhs.shape()));
        }
        let sizes = (m.size(), i.size(), n.size(), 1);
        let b = rhs.conjugated();
        Ok(OnDevice::new((m, n), |out| {
            gemm_into::<T>(sizes, (self.slice(), false), (b.slice(), true), out, Write::Overwrite);
            Ok(())
        }))
    }

    fn try_matmul_transposed_into(
        &self,
        rhs: &OnDevice<T, (N, I)>,
        out: &mut Self::Output,
    ) -> Result<(), ShapeError> {
        let ((m, i), (n, i2)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(columns_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_transposed_into", out, (m, n))?;
        let sizes = (m.size(), i.size(), n.size(), 1);
        let b = rhs.conjugated();
        gemm_into::<T>(sizes, (self.slice(), false), (b.slice(), true), out.slice_mut(), Write::Overwrite);
        Ok(())
    }

    fn matmul_transposed_pullback(
        &self,
        rhs: &OnDevice<T, (N, I)>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut OnDevice<T, (N, I)>, Write)>,
    ) {
        let (m, k, n) = (self.shape().0.size(), self.shape().1.size(), rhs.shape().0.size());
        if let Some((a_bar, write)) = lhs_bar {
            // Ā (m×k) = Ȳ (m×n) · conj(B) (n×k).
            let b = rhs.conjugated();
            gemm_into::<T>(
                (m, n, k, 1),
                (out_bar.slice(), false),
                (b.slice(), false),
                a_bar.slice_mut(),
                write,
            );
        }
        if let Some((b_bar, write)) = rhs_bar {
            // B̄ (n×k) = Ȳᵀ (n×m) · conj(A) (m×k) = conj(Ȳᴴ·A).
            let (y_bar, a) = ((out_bar.slice(), true), (self.slice(), false));
            gemm_conjugated_into::<T>((n, m, k, 1), y_bar, a, b_bar.slice_mut(), write);
        }
    }
}

/// Aᵀ·B (transposed, never conjugated), with Ā = conj(B)·Ȳᵀ and B̄ = conj(A)·Ȳ: A
/// read as the adjoint of conj(A) and Ā the conjugate of B·Ȳᴴ, as for
/// [`MatMulTransposed`] (in place and unconjugated for real elements).
#[diagnostic::do_not_recommend]
impl<T: CudaScalar, I: Dim, M: Dim, N: Dim> TransposedMatMul<OnDevice<T, (I, N)>> for OnDevice<T, (I, M)> {
    type Output = OnDevice<T, (M, N)>;

    fn try_transposed_matmul(&self, rhs: &OnDevice<T, (I, N)>) -> Result<Self::Output, ShapeError> {
        let ((i, m), (i2, n)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(rows_mismatch(&self.shape(), &rhs.shape()));
        }
        let sizes = (m.size(), i.size(), n.size(), 1);
        let a = self.conjugated();
        Ok(OnDevice::new((m, n), |out| {
            gemm_into::<T>(sizes, (a.slice(), true), (rhs.slice(), false), out, Write::Overwrite);
            Ok(())
        }))
    }

    fn try_transposed_matmul_into(
        &self,
        rhs: &OnDevice<T, (I, N)>,
        out: &mut Self::Output,
    ) -> Result<(), ShapeError> {
        let ((i, m), (i2, n)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(rows_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("transposed_matmul_into", out, (m, n))?;
        let sizes = (m.size(), i.size(), n.size(), 1);
        let a = self.conjugated();
        gemm_into::<T>(sizes, (a.slice(), true), (rhs.slice(), false), out.slice_mut(), Write::Overwrite);
        Ok(())
    }

    fn transposed_matmul_pullback(
        &self,
        rhs: &OnDevice<T, (I, N)>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut OnDevice<T, (I, N)>, Write)>,
    ) {
        let (k, m, n) = (self.shape().0.size(), self.shape().1.size(), rhs.shape().1.size());
        if let Some((a_bar, write)) = lhs_bar {
            // Ā (k×m) = conj(B) (k×n) · Ȳᵀ (n×m) = conj(B·Ȳᴴ).
            let (b, y_bar) = ((rhs.slice(), false), (out_bar.slice(), true));
            gemm_conjugated_into::<T>((k, n, m, 1), b, y_bar, a_bar.slice_mut(), write);
        }
        if let Some((b_bar, write)) = rhs_bar {
            // B̄ (k×n) = conj(A) (k×m) · Ȳ (m×n).
            let a = self.conjugated();
            gemm_into::<T>(
                (k, m, n, 1),
                (a.slice(), false),
                (out_bar.slice(), false),
                b_bar.slice_mut(),
                write,
            );
        }
    }
}

/// out (=|+=) conj(op(a)·op(b)), sizes as [`gemm_into`]: the product itself for real
/// elements; for complex ones, the product in a scratch buffer, then a conjugating
/// pass into `out`.
fn gemm_conjugated_into<T: CudaScalar>(
    sizes: (usize, usize, usize, usize),
    a: (&CudaSlice<T::Part>, bool),
    b: (&CudaSlice<T::Part>, bool),
    out: &mut CudaSlice<T::Part>,
    write: Write,
) {
    if T::PARTS == 1 {
        return gemm_into::<T>(sizes, a, b, out, write);
    }
    let (m, _, n, batch) = sizes;
    let elements = batch * m * n;
    let scratch = Device::get().and_then(|device| device.uninitialized::<T::Part>(elements * T::PARTS));
    let result = scratch.and_then(|mut product| {
        gemm_into::<T>(sizes, a, b, &mut product, Write::Overwrite);
        complex::conjugate_parts(&product, elements, out, write)
    });
    or_panic_cuda(result);
}

// Reverse-mode rules, the device forms of the host's `*_pullback` functions: each
// writes its cotangent into `x_bar` or adds it there, as `write` says.

/// Checks that every tensor has `expected`'s shape.
#[track_caller]
fn check_shapes<T: CudaScalar, S: Shape>(
    operation: &'static str,
    expected: &OnDevice<T, S>,
    others: &[&OnDevice<T, S>],
) {
    for other in others {
        or_panic(expected.check_same_shape(other, operation));
    }
}

/// Checks that `reduced` has the shape of `x` with `AXIS` removed.
#[track_caller]
fn check_removed<const AXIS: usize, T: CudaScalar, S: HasAxis<AXIS>>(
    operation: &'static str,
    x: &OnDevice<T, S>,
    reduced: &OnDevice<T, S::Removed>,
) {
    if x.shape().removed() != reduced.shape() {
        panic!(
            "{}",
            ShapeError::new(
                operation,
                x.dims(),
                reduced.dims(),
                "the second must be the first without the axis"
            )
        );
    }
}

/// x̄ = conj(f′(x))·ȳ for y = f(x) elementwise.
#[track_caller]
pub fn elementary_pullback<T: CudaElement, S: Shape>(
    f: Elementary<T>,
    (x, y, y_bar): (&OnDevice<T, S>, &OnDevice<T, S>, &OnDevice<T, S>),
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("elementary_pullback", x, &[y, y_bar, x_bar]);
    let kernel = elementary_pullback_kernel(f, write);
    let len = x.len();
    or_panic_cuda(kernel.launch(
        &[x.slice(), y.slice(), y_bar.slice()],
        &[elementary_param(&f)],
        one_line(len),
        x_bar.slice_mut(),
    ));
}

/// x̄ = f′(x)·ȳ for y = f(x) elementwise, with f′ from `f`'s own derivative.
#[track_caller]
pub fn function_pullback<T: CudaElement, S: Shape, F: ScalarFunction>(
    f: F,
    (x, y, y_bar): (&OnDevice<T, S>, &OnDevice<T, S>, &OnDevice<T, S>),
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("function_pullback", x, &[y, y_bar, x_bar]);
    let len = x.len();
    or_panic_cuda(function_pullback_kernel(f, write).launch(
        &[x.slice(), y.slice(), y_bar.slice()],
        &[],
        one_line(len),
        x_bar.slice_mut(),
    ));
}

/// x̄ₖ = ∂f/∂xₖ·ȳ for input `k` of y = f(x₁, …, x_N) elementwise.
#[track_caller]
pub fn fused_pullback<T: CudaElement, S: Shape, F: FusedFunction<N>, const N: usize>(
    (f, k): (F, usize),
    inputs: [&OnDevice<T, S>; N],
    y_bar: &OnDevice<T, S>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    assert!(k < N, "fused_pullback: input {k} of {N}");
    check_fused_shapes(F::NAME, &inputs);
    check_shapes("fused_pullback", y_bar, &[inputs[0], x_bar]);
    let mut buffers: std::vec::Vec<&CudaSlice<T>> = inputs.iter().map(|x| x.slice()).collect();
    buffers.push(y_bar.slice());
    let len = y_bar.len();
    or_panic_cuda(fused_pullback_kernel(f, k, write).launch(&buffers, &[], one_line(len), x_bar.slice_mut()));
}

/// x̄ = factor·ȳ for a real factor: the rule of real scaling, and of `+` and `−`
/// (factor ±1).
#[track_caller]
pub fn scaled_pullback<T: CudaScalar, S: Shape>(
    y_bar: &OnDevice<T, S>,
    factor: T::Part,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("scaled_pullback", y_bar, &[x_bar]);
    let parts = y_bar.parts();
    let kernel = match write {
        Write::Overwrite => scale_kernel(),
        Write::Accumulate => add_scaled_kernel(),
    };
    or_panic_cuda(kernel.launch(&[y_bar.slice()], &[factor], one_line(parts), x_bar.slice_mut()));
}

/// x̄ = ȳ where x > 0, else 0.
#[track_caller]
pub fn relu_pullback<T: CudaElement, S: Shape>(
    x: &OnDevice<T, S>,
    y_bar: &OnDevice<T, S>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("relu_pullback", x, &[y_bar, x_bar]);
    let len = x.len();
    or_panic_cuda(relu_pullback_kernel(write).launch(
        &[x.slice(), y_bar.slice()],
        &[],
        one_line(len),
        x_bar.slice_mut(),
    ));
}

/// ā = ȳ ⊙ b and b̄ = ȳ ⊙ a for y = a ⊙ b (real data: no conjugates).
#[track_caller]
pub fn hadamard_pullback<T: CudaElement, S: Shape>(
    (a, b, y_bar): (&OnDevice<T, S>, &OnDevice<T, S>, &OnDevice<T, S>),
    a_bar: Option<(&mut OnDevice<T, S>, Write)>,
    b_bar: Option<(&mut OnDevice<T, S>, Write)>,
) {
    check_shapes("hadamard_pullback", a, &[b, y_bar]);
    let len = a.len();
    for (other, bar) in [(b, a_bar), (a, b_bar)] {
        if let Some((bar, write)) = bar {
            check_shapes("hadamard_pullback", a, &[bar]);
            or_panic_cuda(hadamard_kernel(write).launch(
                &[y_bar.slice(), other.slice()],
                &[],
                one_line(len),
                bar.slice_mut(),
            ));
        }
    }
}

/// x̄[o, k, i] = factor·ȳ[o, i]: ȳ spread along `AXIS` (factor 1 for `sum_axis`, 1/len
/// for `mean_axis`).
#[track_caller]
pub fn spread_along_pullback<const AXIS: usize, T: CudaScalar, S: HasAxis<AXIS>>(
    y_bar: &OnDevice<T, S::Removed>,
    factor: T::Part,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_removed::<AXIS, T, S>("spread_along_pullback", x_bar, y_bar);
    let axis = x_bar.parts_split(AXIS);
    or_panic_cuda(spread_kernel(write).launch(&[y_bar.slice()], &[factor], axis, x_bar.slice_mut()));
}

/// x̄ (=|+=) Σ of ȳ along `AXIS`, for y = x broadcast along a new axis `AXIS`.
#[track_caller]
pub fn broadcast_axis_pullback<const AXIS: usize, T: CudaScalar, Target: HasAxis<AXIS>>(
    y_bar: &OnDevice<T, Target>,
    x_bar: &mut OnDevice<T, Target::Removed>,
    write: Write,
) {
    check_removed::<AXIS, T, Target>("broadcast_axis_pullback", y_bar, x_bar);
    let axis = y_bar.parts_split(AXIS);
    or_panic_cuda(sum_kernel(write).launch(&[y_bar.slice()], &[], axis, x_bar.slice_mut()));
}

/// x̄ = factor·s̄ everywhere, for s = Σ x (factor 1) or the mean (factor 1/n).
pub fn fill_pullback<T: CudaElement, S: Shape>(
    s_bar: T,
    factor: T,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    let len = x_bar.len();
    or_panic_cuda(fill_kernel(write).launch(&[], &[s_bar * factor], one_line(len), x_bar.slice_mut()));
}

/// b̄ = Σ over the leading axes of ȳ, for y = b broadcast to `Target`.
#[track_caller]
pub fn broadcast_pullback<T: CudaScalar, S: Shape, Target: Shape>(
    y_bar: &OnDevice<T, Target>,
    b_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    let (source, target) = (b_bar.dims(), y_bar.dims());
    if target.as_slice().len() < source.as_slice().len()
        || &target.as_slice()[target.as_slice().len() - source.as_slice().len()..] != source.as_slice()
    {
        panic!(
            "{}",
            ShapeError::new(
                "broadcast_pullback",
                source,
                target,
                "the trailing dimensions of the target must equal the source's"
            )
        );
    }
    let axis = (1, y_bar.len() / b_bar.len().max(1), b_bar.parts());
    or_panic_cuda(sum_kernel(write).launch(&[y_bar.slice()], &[], axis, b_bar.slice_mut()));
}

/// x̄ (=|+=) ȳᵢⱼ·gⱼ, the input's cotangent of `x.mul_rows(g)`.
#[track_caller]
pub fn mul_rows_pullback<T: CudaElement, R: Dim, C: Dim>(
    y_bar: &OnDevice<T, (R, C)>,
    row: &OnDevice<T, (C,)>,
    x_bar: &mut OnDevice<T, (R, C)>,
    write: Write,
) {
    check_shapes("mul_rows_pullback", y_bar, &[x_bar]);
    or_panic(check_row(y_bar.shape(), row.shape(), "mul_rows_pullback"));
    let axis = y_bar.dims().split_at_axis(0);
    or_panic_cuda(mul_rows_kernel(write).launch(&[y_bar.slice(), row.slice()], &[], axis, x_bar.slice_mut()));
}

/// x̄ (=|+=) the rows of ȳ at the rows they were read from, the pullback of
/// `gather_rows(indices)`: each row's sum in the order of `indices`, as on the host.
#[track_caller]
pub fn gather_rows_pullback<T: CudaScalar, R: Dim, C: Dim>(
    indices: &[usize],
    y_bar: &OnDevice<T, (Dyn, C)>,
    x_bar: &mut OnDevice<T, (R, C)>,
    write: Write,
) {
    let (rows, columns) = x_bar.shape();
    let expected = (Dyn(indices.len()), columns);
    if y_bar.shape() != expected {
        panic!(
            "{}",
            ShapeError::new(
                "gather_rows_pullback",
                expected.dims(),
                y_bar.dims(),
                "one cotangent row per index"
            )
        );
    }
    if write == Write::Overwrite {
        let parts = x_bar.parts();
        let zero = T::Part::zero();
        or_panic_cuda(fill_kernel(Write::Overwrite).launch(&[], &[zero], one_line(parts), x_bar.slice_mut()));
    }
    let sizes = (rows.size(), columns.size() * T::PARTS);
    or_panic_cuda(scatter_add_rows(y_bar.slice(), indices, x_bar.slice_mut(), sizes));
}

/// x̄ (=|+=) r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) on each row, the pullback of
/// `normalize_rows` from its output y and the scales r = 1/√(σ² + ε).
#[track_caller]
pub fn normalize_rows_pullback<T: CudaElement, R: Dim, C: Dim>(
    (y, scales, y_bar): (&OnDevice<T, (R, C)>, &OnDevice<T, (R,)>, &OnDevice<T, (R, C)>),
    x_bar: &mut OnDevice<T, (R, C)>,
    write: Write,
) {
    check_shapes("normalize_rows_pullback", y, &[y_bar, x_bar]);
    assert_eq!(scales.len(), y.shape().0.size(), "normalize_rows_pullback: one scale per row");
    let totals = y_bar.sum_axis(Axis::<1>);
    let axis = y.dims().split_at_axis(1);
    let products: OnDevice<T, (R,)> = OnDevice::new(totals.shape(), |out| {
        dot_along_kernel().launch(&[y_bar.slice(), y.slice()], &[], axis, out)
    });
    let inverse_count = T::from_f64(1.0 / y.shape().1.size() as f64);
    or_panic_cuda(normalize_rows_pullback_kernel(write).launch(
        &[y_bar.slice(), y.slice(), scales.slice(), totals.slice(), products.slice()],
        &[inverse_count],
        axis,
        x_bar.slice_mut(),
    ));
}

/// x̄ = ȳ − exp(y)·Σȳ along `AXIS`, for y = log_softmax(x).
#[track_caller]
pub fn log_softmax_pullback<const AXIS: usize, T: CudaElement, S: HasAxis<AXIS>>(
    y: &OnDevice<T, S>,
    y_bar: &OnDevice<T, S>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("log_softmax_pullback", y, &[y_bar, x_bar]);
    let totals = y_bar.sum_axis(Axis::<AXIS>);
    let axis = y.dims().split_at_axis(AXIS);
    or_panic_cuda(log_softmax_pullback_kernel(write).launch(
        &[y.slice(), y_bar.slice(), totals.slice()],
        &[],
        axis,
        x_bar.slice_mut(),
    ));
}

/// x̄ = y·(ȳ − Σȳ·y) along `AXIS`, for y = softmax(x).
#[track_caller]
pub fn softmax_pullback<const AXIS: usize, T: CudaElement, S: HasAxis<AXIS>>(
    y: &OnDevice<T, S>,
    y_bar: &OnDevice<T, S>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("softmax_pullback", y, &[y_bar, x_bar]);
    let axis = y.dims().split_at_axis(AXIS);
    let totals: OnDevice<T, S::Removed> = OnDevice::new(y.shape().removed(), |out| {
        dot_along_kernel().launch(&[y_bar.slice(), y.slice()], &[], axis, out)
    });
    or_panic_cuda(softmax_pullback_kernel(write).launch(
        &[y.slice(), y_bar.slice(), totals.slice()],
        &[],
        axis,
        x_bar.slice_mut(),
    ));
}

/// x̄ = exp(x − s)·s̄ along `AXIS` (softmax(x)·s̄), for s = logsumexp(x).
#[track_caller]
pub fn logsumexp_pullback<const AXIS: usize, T: CudaElement, S: HasAxis<AXIS>>(
    x: &OnDevice<T, S>,
    (s, s_bar): (&OnDevice<T, S::Removed>, &OnDevice<T, S::Removed>),
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("logsumexp_pullback", x, &[x_bar]);
    check_removed::<AXIS, T, S>("logsumexp_pullback", x, s);
    check_removed::<AXIS, T, S>("logsumexp_pullback", x, s_bar);
    let axis = x.dims().split_at_axis(AXIS);
    or_panic_cuda(logsumexp_pullback_kernel(write).launch(
        &[x.slice(), s.slice(), s_bar.slice()],
        &[],
        axis,
        x_bar.slice_mut(),
    ));
    or_panic_cuda(infinite_line_pullback(x.slice(), (s.slice(), s_bar.slice()), x_bar.slice_mut(), axis));
}

/// ā, b̄ = the two parts of ȳ along `AXIS`, for y = concat(a, b), each written or
/// added as asked.
#[track_caller]
pub fn concat_pullback<const AXIS: usize, T: CudaScalar, S: HasAxis<AXIS>, B: Dim, C: Dim>(
    y_bar: &OnDevice<T, S::Replaced<C>>,
    a_bar: Option<(&mut OnDevice<T, S>, Write)>,
    b_bar: Option<(&mut OnDevice<T, S::Replaced<B>>, Write)>,
    (len_a, len_b): (usize, usize),
) {
    let (outer, total, inner) = y_bar.parts_split(AXIS);
    assert_eq!(total, len_a + len_b, "concat_pullback: the cotangent's axis is not the sum of the parts");
    if let Some((a_bar, write)) = a_bar {
        let (from, to) = (AxisRange { len: total, start: 0 }, AxisRange { len: len_a, start: 0 });
        or_panic_cuda(copy_block(
            y_bar.slice(),
            a_bar.slice_mut(),
            (outer, len_a, inner),
            from,
            to,
            store(write),
        ));
    }
    if let Some((b_bar, write)) = b_bar {
        let (from, to) = (AxisRange { len: total, start: len_a }, AxisRange { len: len_b, start: 0 });
        or_panic_cuda(copy_block(
            y_bar.slice(),
            b_bar.slice_mut(),
            (outer, len_b, inner),
            from,
            to,
            store(write),
        ));
    }
}

/// x̄ = ȳ inside the slice `[START, START + LEN)` along `AXIS` and 0 elsewhere, written
/// or added as asked.
#[track_caller]
pub fn narrow_pullback<
    const AXIS: usize,
    const START: usize,
    const LEN: usize,
    T: CudaScalar,
    S: HasAxis<AXIS>,
>(
    y_bar: &OnDevice<T, S::Replaced<Const<LEN>>>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    let (outer, len, inner) = x_bar.parts_split(AXIS);
    if write == Write::Overwrite {
        let parts = x_bar.parts();
        or_panic_cuda(fill_kernel(Write::Overwrite).launch(
            &[],
            &[T::Part::zero()],
            one_line(parts),
            x_bar.slice_mut(),
        ));
    }
    let (from, to) = (AxisRange { len: LEN, start: 0 }, AxisRange { len, start: START });
    or_panic_cuda(copy_block(
        y_bar.slice(),
        x_bar.slice_mut(),
        (outer, LEN, inner),
        from,
        to,
        Store::Accumulate,
    ));
}

/// ā = Ȳ·conj(b) and b̄ = Ȳᵀ·conj(a) for Y = a ⊗ b (cuBLAS, b̄ computed as the row
/// aᴴ·Ȳ), each written or added as asked.
#[track_caller]
pub fn outer_pullback<T: CudaScalar, M: Dim, N: Dim>(
    (a, b, y_bar): (&OnDevice<T, (M,)>, &OnDevice<T, (N,)>, &OnDevice<T, (M, N)>),
    a_bar: Option<(&mut OnDevice<T, (M,)>, Write)>,
    b_bar: Option<(&mut OnDevice<T, (N,)>, Write)>,
) {
    let (m, n) = (a.len(), b.len());
    assert_eq!(y_bar.dims().as_slice(), &[m, n], "outer_pullback: the cotangent must be {m}×{n}");
    if let Some((a_bar, write)) = a_bar {
        // b read as the adjoint of a 1×N row: conj(b) as a column.
        gemm_into::<T>((m, n, 1, 1), (y_bar.slice(), false), (b.slice(), true), a_bar.slice_mut(), write);
    }
    if let Some((b_bar, write)) = b_bar {
        gemm_into::<T>((1, m, n, 1), (a.slice(), true), (y_bar.slice(), false), b_bar.slice_mut(), write);
    }
}

/// x̄ = ȳ at each line's first largest element (its first NaN if it has one) along
/// `AXIS`, 0 elsewhere, written or added as asked.
#[track_caller]
pub fn max_axis_pullback<const AXIS: usize, T: CudaElement, S: HasAxis<AXIS>>(
    x: &OnDevice<T, S>,
    y_bar: &OnDevice<T, S::Removed>,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("max_axis_pullback", x, &[x_bar]);
    check_removed::<AXIS, T, S>("max_axis_pullback", x, y_bar);
    let axis = x.dims().split_at_axis(AXIS);
    or_panic_cuda(max_pullback_kernel(x.slice(), y_bar.slice(), x_bar.slice_mut(), axis, store(write)));
}

/// x̄ = s̄ at the first largest element of `x` (its first NaN if it has one), 0
/// elsewhere, for s = max(x).
#[track_caller]
pub fn max_pullback<T: CudaElement, S: Shape>(
    x: &OnDevice<T, S>,
    s_bar: T,
    x_bar: &mut OnDevice<T, S>,
    write: Write,
) {
    check_shapes("max_pullback", x, &[x_bar]);
    let s_bar: OnDevice<T, ()> = or_panic_cuda(OnDevice::try_from_elements((), &[s_bar]));
    let axis = one_line(x.len());
    or_panic_cuda(max_pullback_kernel(x.slice(), s_bar.slice(), x_bar.slice_mut(), axis, store(write)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// max(x, y)·|z| + x·y: a fused function that chooses by value.
    #[derive(Clone, Copy, Debug)]
    struct Choosing;

    impl FusedFunction<3> for Choosing {
        fn value<T: RealScalar>(&self, [x, y, z]: [T; 3]) -> T {
            RealScalar::max(x, y) * z.abs() + x * y
        }
    }

    /// The GPU's derivative kernels of a fused function are recorded on symbolic duals,
    /// choices included (`max`, `abs`): evaluated on the host they give the partials
    /// that forward mode on `f64` duals gives, at points on either side of each choice.
    #[test]
    fn fused_derivative_kernels_record_choices_and_match_forward_mode() {
        for point in [[0.5, -1.5, 2.0], [-1.5, 0.5, -2.0], [1.0, 1.0, 0.0], [2.0, 3.0, -0.25]] {
            let partials = fused_partials(Choosing, point);
            let y_bar = 0.75;
            for (k, partial) in partials.iter().enumerate() {
                let kernel = fused_pullback_kernel(Choosing, k, Write::Overwrite);
                let inputs = [point[0], point[1], point[2], y_bar];
                assert_eq!(kernel.evaluate(&inputs, &[]).unwrap(), partial * y_bar, "input {k} at {point:?}");
            }
            let tangents = [0.25, -0.5, 2.0];
            let expected: f64 = partials.iter().zip(&tangents).map(|(p, t)| p * t).sum();
            let inputs = [point[0], point[1], point[2], tangents[0], tangents[1], tangents[2]];
            let tangent = fused_tangent_kernel(Choosing).evaluate(&inputs, &[]).unwrap();
            assert!(
                (tangent - expected).abs() <= 1e-15 * expected.abs().max(1.0),
                "{tangent} against {expected}"
            );
            let value = fused_kernel(Choosing).evaluate(&point, &[]).unwrap();
            assert_eq!(value, Choosing.value(point));
        }
    }

    /// The logsumexp pullback's elementwise pass: 0 along a line that is all −∞ or has
    /// a +∞ (the host's rule), NaN along a NaN line, exp(x − y)·ȳ elsewhere.
    #[test]
    fn the_logsumexp_pullback_is_zero_along_infinite_lines() {
        let kernel = logsumexp_pullback_kernel(Write::Overwrite);
        let at = |x: f64, y: f64, y_bar: f64| kernel.evaluate(&[x, y, y_bar], &[]).unwrap();
        assert_eq!(at(f64::NEG_INFINITY, f64::NEG_INFINITY, 2.0), 0.0);
        assert!((at(0.5, 1.0, 2.0) - 2.0 * (-0.5f64).exp()).abs() < 1e-15);
        assert_eq!(at(f64::NEG_INFINITY, 1.0, 2.0), 0.0);
        // A line with a +∞: 0 here, its first +∞ gets ȳ from the line kernel.
        assert_eq!(at(f64::INFINITY, f64::INFINITY, 2.0), 0.0);
        assert_eq!(at(0.5, f64::INFINITY, 2.0), 0.0);
        assert!(at(0.5, f64::NAN, 2.0).is_nan(), "a NaN line stays NaN");
    }
}
