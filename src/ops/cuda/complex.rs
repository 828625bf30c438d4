//! The operations of complex GPU tensors, `Tensor<Complex<R>, S, Cuda>` for `R` `f32`
//! or `f64`, and their reverse-mode rules.
//!
//! What acts on each part alike — `+`, `−`, negation, real scaling, `sum`, `mean`,
//! `sum_axis`, `broadcast`, `reshape`, `concat`, `narrow`, `add_rows`, `gather_rows`,
//! `transpose` — is shared with the real tensors, reading the buffer as real parts. The matrix products go through cuBLAS
//! `cgemm`/`zgemm` ([`MatMul`](crate::product::MatMul), and `outer`), with Ā = Ȳ·Bᴴ
//! and B̄ = Aᴴ·Ȳ taken by cuBLAS's conjugate-transpose flag, not a copy;
//! `matmul_transposed` and `transposed_matmul` (a plain transpose) conjugate one
//! operand or one product in a pass to use the same flag. This module holds what
//! multiplies complex numbers: `hadamard`, `mul_rows` (the row broadcast, then a
//! Hadamard product), scaling by a complex factor, `inner` (Σ conj(aᵢ)·bᵢ), `dotu`
//! (Σ aᵢbᵢ), `conj`, and the real-valued `re`, `im`, `abs`, `norm_sqr`. Their
//! kernels are generated from num-complex's arithmetic evaluated on `Complex<Sym>`,
//! and the rules are the host's: for a real loss the gradient is ∂L/∂x + i·∂L/∂y ([the complex-numbers guide](crate::guide::complex_numbers)).
//! `|x|` is `hypot`, as on the host. The elementary functions (`exp`, `ln`, `sin`,
//! `cos`, `tanh`, `sqrt`, `sigmoid`, `powi`, `powf`) and their pullbacks
//! x̄ = conj(f′(x))·ȳ are the host's [`Elementary::apply`] and
//! [`Elementary::derivative`] run on complex symbols, whose functions follow
//! num-complex's formulas; forward mode's tangents are ẏ = f′(x)·ẋ (unconjugated),
//! Re(conj(x)·ẋ)/|x| for |x| and 2·Re(conj(x)·ẋ) for |x|².

use std::boxed::Box;
use std::format;
use std::string::String;

use cudarc::driver::CudaSlice;
use num_complex::Complex;
use num_traits::Zero;

use super::{
    CudaTensorOps, ELEMENTARY, OnDevice, check_shapes, elementary_name, elementary_param, store, symbolic,
};
use crate::backend::cpu::Write;
use crate::backend::cuda::{
    ComplexKernel, CudaElement, CudaError, CudaScalar, Device, Kind, Store, Sym, or_panic_cuda,
};
use crate::error::{ShapeError, or_panic};
use crate::ops::elementwise::{Elementary, elementary_methods};
use crate::ops::rows::check_row;
use crate::scalar::Scalar;
use crate::shape::{Dim, Shape};

use Kind::{Complex as C, Real as R};

fn kernel(
    name: impl Into<String>,
    inputs: &'static [Kind],
    params: usize,
    output: Kind,
    store: Store,
    function: impl Fn(&[Complex<Sym>], &[Complex<Sym>]) -> Complex<Sym> + 'static,
) -> ComplexKernel {
    ComplexKernel { name: name.into(), inputs, params, output, store, function: Box::new(function) }
}

// The kernels, each a num-complex formula; `complex_kernels` lists them all for the
// offline check.

fn fill_kernel(write: Write) -> ComplexKernel {
    kernel("fill", &[], 1, C, store(write), |_, p| p[0])
}
fn scale_kernel(write: Write) -> ComplexKernel {
    kernel("scale", &[C], 1, C, store(write), |x, p| x[0] * p[0])
}
/// conj(x)·p.
fn conj_scale_kernel(write: Write) -> ComplexKernel {
    kernel("conj_scale", &[C], 1, C, store(write), |x, p| x[0].conj() * p[0])
}
fn hadamard_kernel() -> ComplexKernel {
    kernel("hadamard", &[C, C], 0, C, Store::Overwrite, |x, _| x[0] * x[1])
}
/// conj(a)·b: `inner`'s terms and the pullbacks of products.
fn conj_hadamard_kernel(write: Write) -> ComplexKernel {
    kernel("conj_hadamard", &[C, C], 0, C, store(write), |x, _| x[0].conj() * x[1])
}
fn conj_kernel(write: Write) -> ComplexKernel {
    kernel("conj", &[C], 0, C, store(write), |x, _| x[0].conj())
}
fn re_kernel() -> ComplexKernel {
    kernel("re", &[C], 0, R, Store::Overwrite, |x, _| x[0])
}
fn im_kernel() -> ComplexKernel {
    kernel("im", &[C], 0, R, Store::Overwrite, |x, _| Complex::new(x[0].im, Sym::zero()))
}
fn norm_sqr_kernel() -> ComplexKernel {
    kernel("norm_sqr", &[C], 0, R, Store::Overwrite, |x, _| Complex::new(x[0].norm_sqr(), Sym::zero()))
}
fn abs_kernel() -> ComplexKernel {
    kernel("abs", &[C], 0, R, Store::Overwrite, |x, _| Complex::new(x[0].abs(), Sym::zero()))
}
/// re + i·im from two real tensors.
fn interleave_kernel(write: Write) -> ComplexKernel {
    kernel("interleave", &[R, R], 0, C, store(write), |x, _| Complex::new(x[0].re, x[1].re))
}
/// x̄ = ȳ (embedded) for y = Re x.
fn re_pullback_kernel(write: Write) -> ComplexKernel {
    kernel("re_pullback", &[R], 0, C, store(write), |x, _| x[0])
}
/// x̄ = i·ȳ for y = Im x.
fn im_pullback_kernel(write: Write) -> ComplexKernel {
    kernel("im_pullback", &[R], 0, C, store(write), |x, _| Complex::new(Sym::zero(), x[0].re))
}
/// x̄ = x·2ȳ for y = |x|².
fn norm_sqr_pullback_kernel(write: Write) -> ComplexKernel {
    kernel("norm_sqr_pullback", &[C, R], 0, C, store(write), |x, _| x[0] * (x[1] + x[1]))
}
/// x̄ = (x/|x|)·ȳ for y = |x|, 0 where x = 0 (the parts divided first, as the host's,
/// so a subnormal x does not give x·∞).
fn abs_pullback_kernel(write: Write) -> ComplexKernel {
    kernel("abs_pullback", &[C, R], 0, C, store(write), |x, _| {
        let modulus = x[0].abs();
        let (re, im) = (x[0].re / modulus * x[1].re, x[0].im / modulus * x[1].re);
        Complex::new(modulus.where_positive(re), modulus.where_positive(im))
    })
}

/// f(x) for an elementary function: the host's [`Elementary::apply`] on complex
/// symbols (the exponent of `powf` a parameter).
fn elementary_kernel<R: 'static + Copy>(f: Elementary<R>) -> ComplexKernel {
    kernel(elementary_name(&f), &[C], 1, C, Store::Overwrite, move |x, p| symbolic(f, p[0].re).apply(x[0]))
}
/// x̄ = conj(f′(x))·ȳ for y = f(x) (inputs x, y, ȳ): the host's
/// [`Elementary::derivative`] on complex symbols.
fn elementary_pullback_kernel<R: 'static + Copy>(f: Elementary<R>, write: Write) -> ComplexKernel {
    let name = format!("{}_pullback", elementary_name(&f));
    kernel(name, &[C, C, C], 1, C, store(write), move |x, p| {
        symbolic(f, p[0].re).derivative(x[0], x[1]).conj() * x[2]
    })
}

/// ẏ = f′(x)·ẋ for y = f(x) (inputs x, y, ẋ): forward mode's rule, the same
/// derivative as the pullback's, unconjugated (holomorphic f, as a host dual).
fn elementary_tangent_kernel<R: 'static + Copy>(f: Elementary<R>) -> ComplexKernel {
    let name = format!("{}_tangent", elementary_name(&f));
    kernel(name, &[C, C, C], 1, C, Store::Overwrite, move |x, p| {
        symbolic(f, p[0].re).derivative(x[0], x[1]) * x[2]
    })
}
/// ẏ = Re(conj(u)·ẋ) for y = |x| and u = x/|x| (formed first, as the host's), 0
/// where x = 0.
fn abs_tangent_kernel() -> ComplexKernel {
    kernel("abs_tangent", &[C, C], 0, R, Store::Overwrite, |x, _| {
        let modulus = x[0].abs();
        let slope = x[0].re / modulus * x[1].re + x[0].im / modulus * x[1].im;
        Complex::new(modulus.where_positive(slope), Sym::zero())
    })
}
/// ẏ = 2·Re(conj(x)·ẋ) for y = |x|².
fn norm_sqr_tangent_kernel() -> ComplexKernel {
    kernel("norm_sqr_tangent", &[C, C], 0, R, Store::Overwrite, |x, _| {
        let half = (x[0].conj() * x[1]).re;
        Complex::new(half + half, Sym::zero())
    })
}

/// Every complex kernel that fluxion's own operations generate.
pub(crate) fn complex_kernels() -> std::vec::Vec<ComplexKernel> {
    let mut kernels = std::vec![
        hadamard_kernel(),
        re_kernel(),
        im_kernel(),
        norm_sqr_kernel(),
        abs_kernel(),
        abs_tangent_kernel(),
        norm_sqr_tangent_kernel(),
    ];
    kernels.extend(ELEMENTARY.iter().map(|&f| elementary_kernel(f)));
    kernels.extend(ELEMENTARY.iter().map(|&f| elementary_tangent_kernel(f)));
    for write in [Write::Overwrite, Write::Accumulate] {
        kernels.extend(ELEMENTARY.iter().map(|&f| elementary_pullback_kernel(f, write)));
        kernels.extend([
            fill_kernel(write),
            interleave_kernel(write),
            scale_kernel(write),
            conj_scale_kernel(write),
            conj_hadamard_kernel(write),
            conj_kernel(write),
            re_pullback_kernel(write),
            im_pullback_kernel(write),
            norm_sqr_pullback_kernel(write),
            abs_pullback_kernel(write),
        ]);
    }
    kernels
}

/// The operations of complex GPU tensors (`Complex<f32>`, `Complex<f64>`): an
/// [`Elementary`] function's kernel (the named ones are
/// [`CudaComplexElementaryOps`]'), scaling by a complex factor, the products
/// (Hadamard, aᴴb, aᵀb) and the parts (`re`, `im`, `conj`, `abs`, `norm_sqr`).
#[fluxion_derive::extension_trait(CudaComplexOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, S: Shape> OnDevice<Complex<T>, S>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// `f(self)` elementwise into a complex tensor.
    fn complex_map(&self, kernel: ComplexKernel, params: &[Complex<T>]) -> Self {
        Self::new(self.shape(), |out| kernel.launch(&[self.slice()], params, self.len(), out))
    }

    /// `f(self)` elementwise into a real tensor.
    fn real_map(&self, kernel: ComplexKernel) -> OnDevice<T, S> {
        OnDevice::new(self.shape(), |out| kernel.launch(&[self.slice()], &[], self.len(), out))
    }

    /// Σ of `kernel(self, other)`'s terms, shapes checked (waits for the GPU).
    fn sum_of_terms(
        &self,
        other: &Self,
        operation: &'static str,
        kernel: ComplexKernel,
    ) -> Result<Complex<T>, ShapeError> {
        self.check_same_shape(other, operation)?;
        let terms = Self::new(self.shape(), |out| {
            kernel.launch(&[self.slice(), other.slice()], &[], self.len(), out)
        });
        Ok(terms.sum())
    }

    /// f(x) elementwise for an elementary function `f` (principal branches).
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        self.complex_map(elementary_kernel(f), &[Complex::new(elementary_param(&f), T::zero())])
    }

    /// Multiplies every element by the complex `factor`, into a new tensor.
    #[must_use = "`scale` returns the scaled tensor and leaves `self` as it is"]
    pub fn scale(&self, factor: Complex<T>) -> Self {
        self.complex_map(scale_kernel(Write::Overwrite), &[factor])
    }

    /// (self ⊙ other)ᵢ = selfᵢ·otherᵢ.
    #[track_caller]
    pub fn hadamard(&self, other: &Self) -> Self {
        or_panic(self.try_hadamard(other))
    }

    /// [`Tensor::hadamard`](crate::Tensor::hadamard) that returns an error naming both
    /// shapes on a mismatch.
    pub fn try_hadamard(&self, other: &Self) -> Result<Self, ShapeError> {
        self.check_same_shape(other, "hadamard")?;
        Ok(Self::new(self.shape(), |out| {
            hadamard_kernel().launch(&[self.slice(), other.slice()], &[], self.len(), out)
        }))
    }

    /// ⟨self, other⟩ = Σ conj(selfᵢ)·otherᵢ (waits for the GPU).
    #[track_caller]
    pub fn inner(&self, other: &Self) -> Complex<T> {
        or_panic(self.try_inner(other))
    }

    /// [`Tensor::inner`](crate::Tensor::inner) that returns an error naming both shapes
    /// on a mismatch.
    pub fn try_inner(&self, other: &Self) -> Result<Complex<T>, ShapeError> {
        self.sum_of_terms(other, "inner", conj_hadamard_kernel(Write::Overwrite))
    }

    /// Σ selfᵢ·otherᵢ, without conjugation (waits for the GPU).
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> Complex<T> {
        or_panic(self.try_dotu(other))
    }

    /// [`Tensor::dotu`](crate::Tensor::dotu) that returns an error naming both shapes
    /// on a mismatch.
    pub fn try_dotu(&self, other: &Self) -> Result<Complex<T>, ShapeError> {
        self.sum_of_terms(other, "dotu", hadamard_kernel())
    }

    /// The complex conjugate elementwise.
    pub fn conj(&self) -> Self {
        self.complex_map(conj_kernel(Write::Overwrite), &[])
    }

    /// The real part elementwise.
    pub fn re(&self) -> OnDevice<T, S> {
        self.real_map(re_kernel())
    }

    /// The imaginary part elementwise.
    pub fn im(&self) -> OnDevice<T, S> {
        self.real_map(im_kernel())
    }

    /// |x| elementwise.
    pub fn abs(&self) -> OnDevice<T, S> {
        self.real_map(abs_kernel())
    }

    /// |x|² elementwise.
    pub fn norm_sqr(&self) -> OnDevice<T, S> {
        self.real_map(norm_sqr_kernel())
    }
}

elementary_methods!(
    /// eˣ, ln, sin, cos, tanh, √, the sigmoid and powers of complex GPU tensors (principal
    /// branches), each a generated kernel.
    #[fluxion_derive::extension_trait(CudaComplexElementaryOps: crate::backend::cuda::method_seal::Sealed)]
    impl<T: CudaElement, S: Shape> OnDevice<Complex<T>, S>
    where
        Complex<T>: CudaScalar<Part = T>
);

/// Row scaling of complex GPU matrices.
#[fluxion_derive::extension_trait(CudaComplexMatrixOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, C: Dim> OnDevice<Complex<T>, (R, C)>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// yᵢⱼ = xᵢⱼ·gⱼ: every row multiplied by `row` elementwise (the row broadcast to
    /// the matrix's shape, then one Hadamard product); an error names both shapes when
    /// a dynamic column count differs.
    pub fn try_mul_rows(&self, row: &OnDevice<Complex<T>, (C,)>) -> Result<Self, ShapeError> {
        check_row(self.shape(), row.shape(), "mul_rows")?;
        self.try_hadamard(&row.try_broadcast_to(self.shape())?)
    }

    /// [`Tensor::try_mul_rows`](crate::Tensor::try_mul_rows) that panics on a mismatch.
    #[track_caller]
    pub fn mul_rows(&self, row: &OnDevice<Complex<T>, (C,)>) -> Self {
        or_panic(self.try_mul_rows(row))
    }
}

// Reverse-mode rules: each writes its cotangent into `x_bar` or adds it there, as
// `write` says.

/// x̄ = conj(c)·ȳ for y = c·x.
#[track_caller]
pub fn complex_scaled_pullback<T: CudaElement, S: Shape>(
    y_bar: &OnDevice<Complex<T>, S>,
    factor: Complex<T>,
    x_bar: &mut OnDevice<Complex<T>, S>,
    write: Write,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("scaled_pullback", y_bar, &[x_bar]);
    let n = y_bar.len();
    or_panic_cuda(scale_kernel(write).launch(&[y_bar.slice()], &[factor.conj()], n, x_bar.slice_mut()));
}

/// x̄ = s̄ everywhere, for s = Σ x.
pub fn complex_fill_pullback<T: CudaElement, S: Shape>(
    s_bar: Complex<T>,
    x_bar: &mut OnDevice<Complex<T>, S>,
    write: Write,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    let n = x_bar.len();
    or_panic_cuda(fill_kernel(write).launch(&[], &[s_bar], n, x_bar.slice_mut()));
}

/// ā = conj(b)·ȳ and b̄ = conj(a)·ȳ for y = a ⊙ b.
#[track_caller]
pub fn complex_hadamard_pullback<T: CudaElement, S: Shape>(
    (a, b, y_bar): (&OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>),
    a_bar: Option<(&mut OnDevice<Complex<T>, S>, Write)>,
    b_bar: Option<(&mut OnDevice<Complex<T>, S>, Write)>,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("hadamard_pullback", y_bar, &[a, b]);
    let n = y_bar.len();
    for (other, bar) in [(b, a_bar), (a, b_bar)] {
        if let Some((bar, write)) = bar {
            check_shapes("hadamard_pullback", y_bar, &[bar]);
            let kernel = conj_hadamard_kernel(write);
            or_panic_cuda(kernel.launch(&[other.slice(), y_bar.slice()], &[], n, bar.slice_mut()));
        }
    }
}

/// x̄ = conj(f′(x))·ȳ for y = f(x) elementwise, an elementary `f`.
#[track_caller]
pub fn complex_elementary_pullback<T: CudaElement, S: Shape>(
    f: Elementary<T>,
    (x, y, y_bar): (&OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>),
    x_bar: &mut OnDevice<Complex<T>, S>,
    write: Write,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("elementary_pullback", x, &[y, y_bar, x_bar]);
    let (n, p) = (x.len(), Complex::new(elementary_param(&f), T::zero()));
    let kernel = elementary_pullback_kernel(f, write);
    or_panic_cuda(kernel.launch(&[x.slice(), y.slice(), y_bar.slice()], &[p], n, x_bar.slice_mut()));
}

/// ẏ = f′(x)·ẋ for y = f(x) elementwise, an elementary `f`: forward mode's rule
/// (the pullback's derivative, unconjugated), overwriting `y_dot`.
#[track_caller]
pub fn complex_elementary_push<T: CudaElement, S: Shape>(
    f: Elementary<T>,
    (x, y, x_dot): (&OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>),
    y_dot: &mut OnDevice<Complex<T>, S>,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("elementary_push", x, &[y, x_dot, y_dot]);
    let (n, p) = (x.len(), Complex::new(elementary_param(&f), T::zero()));
    let kernel = elementary_tangent_kernel(f);
    or_panic_cuda(kernel.launch(&[x.slice(), y.slice(), x_dot.slice()], &[p], n, y_dot.slice_mut()));
}

/// x̄ = conj(ȳ) for y = conj(x).
#[track_caller]
pub fn conj_pullback<T: CudaElement, S: Shape>(
    y_bar: &OnDevice<Complex<T>, S>,
    x_bar: &mut OnDevice<Complex<T>, S>,
    write: Write,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("conj_pullback", y_bar, &[x_bar]);
    let n = y_bar.len();
    or_panic_cuda(conj_kernel(write).launch(&[y_bar.slice()], &[], n, x_bar.slice_mut()));
}

/// out (=|+=) conj(x) for `n` complex numbers stored as parts, whatever the element
/// type the caller sees them as (the transposed products conjugate through it).
pub(super) fn conjugate_parts<P: CudaElement>(
    x: &CudaSlice<P>,
    n: usize,
    out: &mut CudaSlice<P>,
    write: Write,
) -> Result<(), CudaError> {
    conj_kernel(write).launch(&[x], &[], n, out)
}

/// The real-valued maps' rules: x̄ from x and the real ȳ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealValued {
    /// y = Re x: x̄ = ȳ.
    Re,
    /// y = Im x: x̄ = i·ȳ.
    Im,
    /// y = |x|: x̄ = ȳ·x/|x| (0 where x = 0).
    Abs,
    /// y = |x|²: x̄ = 2ȳ·x.
    NormSqr,
}

/// x̄ for the real-valued map `map` of x, from its real cotangent ȳ.
#[track_caller]
pub fn real_valued_pullback<T: CudaElement, S: Shape>(
    map: RealValued,
    x: &OnDevice<Complex<T>, S>,
    y_bar: &OnDevice<T, S>,
    x_bar: &mut OnDevice<Complex<T>, S>,
    write: Write,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("real_valued_pullback", x, &[x_bar]);
    or_panic(x.check_same_shape(y_bar, "real_valued_pullback"));
    let n = x.len();
    let launched = match map {
        RealValued::Re => re_pullback_kernel(write).launch(&[y_bar.slice()], &[], n, x_bar.slice_mut()),
        RealValued::Im => im_pullback_kernel(write).launch(&[y_bar.slice()], &[], n, x_bar.slice_mut()),
        RealValued::Abs => {
            abs_pullback_kernel(write).launch(&[x.slice(), y_bar.slice()], &[], n, x_bar.slice_mut())
        }
        RealValued::NormSqr => {
            norm_sqr_pullback_kernel(write).launch(&[x.slice(), y_bar.slice()], &[], n, x_bar.slice_mut())
        }
    };
    or_panic_cuda(launched);
}

/// ẏ for the real-valued map `map` of x, from x's tangent ẋ: Re ẋ, Im ẋ,
/// Re(conj(x)·ẋ)/|x| (0 where x = 0) or 2·Re(conj(x)·ẋ).
#[track_caller]
pub fn real_valued_push<T: CudaElement, S: Shape>(
    map: RealValued,
    x: &OnDevice<Complex<T>, S>,
    x_dot: &OnDevice<Complex<T>, S>,
) -> OnDevice<T, S>
where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("real_valued_push", x, &[x_dot]);
    let kernel = match map {
        RealValued::Re => return x_dot.re(),
        RealValued::Im => return x_dot.im(),
        RealValued::Abs => abs_tangent_kernel(),
        RealValued::NormSqr => norm_sqr_tangent_kernel(),
    };
    OnDevice::new(x.shape(), |out| kernel.launch(&[x.slice(), x_dot.slice()], &[], x.len(), out))
}

/// The pullbacks of s = Σ conj(aᵢ)·bᵢ (`conjugated`) or s = Σ aᵢbᵢ: for `inner`,
/// ā = b·conj(s̄) and b̄ = a·s̄; for `dotu`, ā = conj(b)·s̄ and b̄ = conj(a)·s̄.
#[track_caller]
pub fn sum_of_products_pullback<T: CudaElement, S: Shape>(
    (a, b, s_bar): (&OnDevice<Complex<T>, S>, &OnDevice<Complex<T>, S>, Complex<T>),
    conjugated: bool,
    a_bar: Option<(&mut OnDevice<Complex<T>, S>, Write)>,
    b_bar: Option<(&mut OnDevice<Complex<T>, S>, Write)>,
) where
    Complex<T>: CudaScalar<Part = T>,
{
    check_shapes("sum_of_products_pullback", a, &[b]);
    let n = a.len();
    // inner: ā = b·conj(s̄), b̄ = a·s̄; dotu: conj(b)·s̄ and conj(a)·s̄.
    let (kernel, a_factor): (fn(Write) -> ComplexKernel, _) =
        if conjugated { (scale_kernel, s_bar.conj()) } else { (conj_scale_kernel, s_bar) };
    for (source, factor, bar) in [(b, a_factor, a_bar), (a, s_bar, b_bar)] {
        if let Some((bar, write)) = bar {
            check_shapes("sum_of_products_pullback", a, &[bar]);
            or_panic_cuda(kernel(write).launch(&[source.slice()], &[factor], n, bar.slice_mut()));
        }
    }
}

/// out (=|+=) op(a)·op(b) for complex operands (as [`super::gemm_into`]: sizes
/// `(m, k, n, batch)`, op the adjoint where a flag is set), through four real
/// products of the operands' real and imaginary parts: with sᵃ = −1 for an adjoint
/// `a` (conjugation negates the imaginary part), else 1, and sᵇ likewise,
/// Re C = AᵣBᵣ − sᵃsᵇ·AᵢBᵢ and Im C = sᵇ·AᵣBᵢ + sᵃ·AᵢBᵣ.
///
/// For `Complex64` products with a dimension of 1 (matrix × vector, its pullbacks,
/// outer products): cuBLAS 13.1's `zgemm` ends the process with a segmentation fault
/// on them (seen on an H200 with driver 580, through `cublasZgemm` and
/// `cublasGemmStridedBatchedEx` alike), while `dgemm` and `cgemm` compute them.
#[track_caller]
pub(super) fn gemm_by_parts<T: CudaElement>(
    (m, k, n, batch): (usize, usize, usize, usize),
    (a, a_adjoint): (&CudaSlice<T>, bool),
    (b, b_adjoint): (&CudaSlice<T>, bool),
    out: &mut CudaSlice<T>,
    write: Write,
) {
    let result = Device::get().and_then(|device| {
        let split = |parts: &CudaSlice<T>, len: usize| -> Result<(CudaSlice<T>, CudaSlice<T>), CudaError> {
            let (mut re, mut im) = (device.uninitialized(len)?, device.uninitialized(len)?);
            re_kernel().launch(&[parts], &[], len, &mut re)?;
            im_kernel().launch(&[parts], &[], len, &mut im)?;
            Ok((re, im))
        };
        let (a_re, a_im) = split(a, batch * m * k)?;
        let (b_re, b_im) = split(b, batch * k * n)?;
        let sign = |adjoint: bool| if adjoint { -T::one() } else { T::one() };
        let (sa, sb) = (sign(a_adjoint), sign(b_adjoint));
        let sizes = (m, k, n, batch);
        let product = |x: &CudaSlice<T>, y: &CudaSlice<T>, out: &mut CudaSlice<T>, (alpha, beta): (T, T)| {
            device.gemm::<T>(sizes, (x, a_adjoint), (y, b_adjoint), out, (alpha, beta))
        };
        let (mut c_re, mut c_im) =
            (device.uninitialized(batch * m * n)?, device.uninitialized(batch * m * n)?);
        product(&a_re, &b_re, &mut c_re, (T::one(), T::zero()))?;
        product(&a_im, &b_im, &mut c_re, (-(sa * sb), T::one()))?;
        product(&a_re, &b_im, &mut c_im, (sb, T::zero()))?;
        product(&a_im, &b_re, &mut c_im, (sa, T::one()))?;
        interleave_kernel(write).launch(&[&c_re, &c_im], &[], batch * m * n, out)
    });
    or_panic_cuda(result);
}
