//! Per-primitive rules of static mode ([`differentiable`](crate::autodiff::differentiable)):
//! each primitive's value, its pushforward (JVP) and its pullback (VJP).
//!
//! A primitive is named by a small value (an *operation*: [`Addition`],
//! [`MatrixProduct`], an [`Elementary`] function, …) that implements [`UnaryRule`] or
//! [`BinaryRule`] for the types it accepts. For y = f(x) the rule gives
//!
//! - `value(x)`: y;
//! - `push(x, y, ẋ)`: ẏ = f′(x)·ẋ, the derivative applied to a tangent;
//! - `pull(x, y, ȳ)`: x̄ = f′(x)ᴴ·ȳ, its adjoint under the real inner product
//!   ⟨u, v⟩ = Re Σ conj(uᵢ)·vᵢ (the crate's complex convention).
//!
//! A binary rule has the two partial maps of each kind, and fused forms
//! (`push_both`, `pull_both`) that a rule overrides when one pass computes both (a
//! matrix–vector product reads the matrix once for Ā and x̄).
//! A library's [`FusedFunction`] of N tensors, `f.apply([&x₁, …, &x_N])`, goes
//! through [`FusedOperand`]: its value, its tangent and every wanted cotangent, each
//! in one pass.
//!
//! The pullbacks call the same rule functions as the tape (`ops::*::*_pullback`,
//! `MatMul::matmul_pullback`), so the two reverse modes share one source of truth per
//! primitive. Rules take every operand by reference and own nothing: the generated
//! code keeps the primal values alive and hands them back to the rule in the
//! reverse sweep, so no residual is copied.
//!
//! A library author gives a new primitive a rule by implementing [`UnaryRule`] or
//! [`BinaryRule`] for an operation type of their own and calling it with
//! [`unary`] / [`binary`] from plain code, or from `#[differentiable]` code through a
//! function marked `#[derivative]`; see the module docs of
//! [`differentiable`](crate::autodiff::differentiable).

use num_traits::Float;

use crate::autodiff::tangent::{Differentiable, VectorSpace};
pub use crate::backend::cpu::Write;
use crate::backend::cpu::write_elements;
use crate::error::or_panic;
use crate::ops::conv::{
    Groups, Padding, Stride, add_channels_pullback, conv2d_pullback, mul_channels_pullback,
    normalize_groups_pullback,
};
use crate::ops::elementwise::{
    Elementary, FusedFunction, ScalarFunction, abs_pullback, conj_pullback, elementary_pullback,
    function_pullback, fused_pullback_of, fused_tangent, im_pullback, norm_sqr_pullback, re_pullback,
    relu_pullback,
};
use crate::ops::functions::{ClampFunction, Larger, Smaller};
use crate::ops::layout::{
    concat_pullback, narrow_pullback, narrow_range_pullback, permute_pullback, reshape_pullback,
};
use crate::ops::linalg::{
    LeastSquaresSolution, PseudoInverseStorage, System, Triangle, adjoint_system_solve, cholesky_pullback,
    cholesky_push, determinant_pullback, determinant_push, hermitian_eigen_pullback, hermitian_eigen_push,
    hermitian_eigenvalues_pullback, hermitian_eigenvalues_push, inverse_pullback, inverse_push,
    least_squares_pullback, least_squares_push, least_squares_rhs_pullback, log_abs_determinant_pullback,
    log_abs_determinant_push, matrix_exp_pullback, matrix_exp_push, pseudo_inverse_pullback,
    pseudo_inverse_push, qr_pullback, qr_push, singular_values_pullback, singular_values_push, solve_system,
    svd_pullback, svd_push, symmetric_eigen_pullback, symmetric_eigen_push, symmetric_eigenvalues_pullback,
    symmetric_eigenvalues_push, symmetric_eigenvectors_pullback, symmetric_eigenvectors_push,
    system_pullback, system_push,
};
use crate::ops::pool::{Window, avg_pool2d_pullback, max_pool2d_pullback, max_pool2d_push};
#[cfg(feature = "alloc")]
use crate::ops::reduce::max_axis_pullback;
use crate::ops::reduce::{
    max_pullback, mean_axis_pullback, mean_pullback, norm_pullback, norm_push, sum_axis_pullback,
    sum_pullback,
};
#[cfg(feature = "alloc")]
use crate::ops::rows::gather_rows_pullback;
use crate::ops::rows::{column_pullback, mul_rows_pullback, normalize_rows_pullback, row_pullback};
use crate::ops::softmax::{log_softmax_pullback, log_softmax_push, logsumexp_pullback, softmax_pullback};
use crate::product::cross::{
    ThreeElements, cross_lhs_cotangent, cross_matrix_pullback, cross_pullback, cross_rhs_cotangent,
};
use crate::product::dot::dotu_pullback;
use crate::product::hadamard::hadamard_pullback;
use crate::product::inner::inner_pullback;
use crate::product::kron::kron_pullback;
use crate::product::outer::outer_pullback;
use crate::product::{MatMul, MatMulTransposed, ScalarFactor, TransposedMatMul};
use crate::scalar::{ComplexScalar, RealDot, RealScalar, Scalar};
use crate::shape::Dyn;
use crate::shape::constraint::{
    AddsUpTo, Axis, ConcatShapes, ConvolvesTo, FitsSlice, HasAxis, InsertsAxis, MultipliesTo,
    NoFewerRowsThan, PermutesAxes, PoolsTo, RightHandSide, SameElementCount,
};
use crate::shape::{Const, Dim, Shape};
use crate::tensor::{Storage, Tensor};

/// `Self` is `T`: lets a generated gradient function name its output type both as
/// written and as a real scalar (only the identity implements it).
pub trait Is<T> {
    /// `self` as a `T`.
    fn cast(self) -> T;
}

impl<T> Is<T> for T {
    #[inline(always)]
    fn cast(self) -> T {
        self
    }
}

/// Makes `gradient` a tangent of `x`'s shape for a `value_and_grad_into` companion:
/// kept (its memory reused) when it is one, replaced by zeros of the right shape
/// when a dynamic size differs (as the tape's `value_and_grad_into` does), so the
/// sweep never writes into a buffer of another shape.
#[doc(hidden)]
#[inline]
pub fn fit_gradient<D: Differentiable + ?Sized>(x: &D, gradient: &mut D::Tangent) {
    if x.check_tangent(gradient, "value_and_grad_into").is_err() {
        *gradient = x.zero_tangent();
    }
}

/// The seed of a gradient: ∂L/∂L = 1.
#[inline(always)]
pub fn seed<Y: crate::autodiff::RealOutput>() -> Y {
    Y::one()
}

/// The number of fields of a tangent that hold coordinates (see
/// [`VectorSpace::FIELDS`]), read from a value so generated code need not name its
/// type.
#[inline(always)]
pub fn field_count<V: VectorSpace>(_: &V) -> usize {
    V::FIELDS
}

/// 1 for a tangent field that holds coordinates, 0 for an empty one (a layer without
/// parameters): what a field written by static mode counts towards
/// [`field_count`].
#[inline(always)]
pub fn holds_coordinates<V>(_: &V) -> usize {
    usize::from(core::mem::size_of::<V>() != 0)
}

/// The tangent slot of a parameter that a `#[differentiable]` function does not
/// differentiate (left out of its `wrt(…)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotDifferentiated;

/// A cotangent that a call gives back for one of its arguments.
#[diagnostic::on_unimplemented(
    message = "a differentiated value is passed to a parameter that the called function does not differentiate",
    label = "this call's function leaves that parameter out of its `wrt(…)`",
    note = "add the parameter to the called function's `wrt(…)`, or pass `stop_gradient(value)`"
)]
pub trait ArgumentCotangent {}

#[diagnostic::do_not_recommend]
impl<V: VectorSpace> ArgumentCotangent for V {}

/// `cotangent`, checked to be one (not the slot of a parameter left out of `wrt`).
#[inline(always)]
pub fn argument_cotangent<V: ArgumentCotangent>(cotangent: V) -> V {
    cotangent
}

/// Static mode reads and writes the tangent of `value`'s fields by their positions
/// (`p.2`): refused when the program is built for a tuple struct whose tangent
/// renumbers them (a `#[no_derivative]` field before a differentiable one, so the
/// struct's `.2` is the tangent's `.1`).
#[inline(always)]
pub fn tangent_keeps_positions<V: Differentiable>(_: &V) {
    let () = PositionCheck::<V>::CHECK;
}

/// The build-time check of [`tangent_keeps_positions`].
struct PositionCheck<V>(core::marker::PhantomData<V>);

impl<V: Differentiable> PositionCheck<V> {
    const CHECK: () = require_positions(V::TANGENT_KEEPS_POSITIONS);
}

/// Stops the build unless `keeps`; the error points here rather than into `core`.
#[track_caller]
const fn require_positions(keeps: bool) {
    if !keeps {
        panic!(
            "static mode reads fields by position, and this tuple struct's tangent renumbers them (a `#[no_derivative]` field comes before a differentiable one): move the constant fields last or name the fields"
        )
    }
}

/// The value of `x`, with no derivative of any order flowing through it (JAX's
/// `stop_gradient`, PyTorch's `detach`), in every mode: on the tape a traced value
/// (`Var`, or a reference to one) comes back cut from the tape; inside
/// `#[differentiable]` code the value is read as a constant; a value of duals (a
/// dual, or a tensor, tuple, array or derived struct of them) comes back with zero
/// tangents (forward mode through generic code, and forward over reverse); any other
/// value comes back as it is.
///
/// ```
/// use fluxion::prelude::*;
///
/// // d/dx (x · stop_gradient(x)) = stop_gradient(x) = x, not 2x.
/// assert_eq!(grad(|x: Var<f64>| &x * &stop_gradient(&x), &1.5), 1.5);
/// // In static mode the same.
/// #[differentiable]
/// fn half_square(x: f64) -> f64 {
///     x * stop_gradient(x) / 2.0
/// }
/// assert_eq!(half_square::grad(3.0), 1.5);
/// // Forward mode on duals: the tangent stops too.
/// assert_eq!(jvp(|x: Dual<f64>| x * stop_gradient(x), &1.5, &1.0).1, 1.5);
/// ```
#[inline(always)]
pub fn stop_gradient<X: StopGradient<Stopped = Y>, Y>(x: X) -> Y {
    x.stop_gradient()
}

/// A value whose derivative [`stop_gradient`] can stop: every differentiable value
/// (as it is), and traced values and references to them (cut from the tape).
#[diagnostic::on_unimplemented(
    message = "`stop_gradient` takes a differentiable value or a traced `Var`, not `{Self}`",
    note = "scalars, tensors, tuples, arrays and derived structs of them are differentiable, by value (`stop_gradient(x)`, or `stop_gradient(x.clone())` for one still needed; a traced `&Var` is taken by reference); plain data (a count, an index) has no derivative to stop: use it as it is"
)]
pub trait StopGradient {
    /// What comes back: the value itself, or a traced value cut from the tape.
    type Stopped;
    /// The value with no derivative flowing through it.
    fn stop_gradient(self) -> Self::Stopped;
}

#[diagnostic::do_not_recommend]
impl<X: Differentiable> StopGradient for X {
    type Stopped = X;
    #[inline(always)]
    fn stop_gradient(self) -> X {
        self.without_tangent()
    }
}

/// The tangent type of `X`.
pub type TangentOf<X> = <X as Differentiable>::Tangent;

/// The operands and the result of a binary primitive, as its rule receives them.
pub type Operands<'a, A, B, Y> = (&'a A, &'a B, &'a Y);

/// Operands and result of one type.
type Same<'a, X> = Operands<'a, X, X, X>;

/// What `f::hvp` and `f::hessian` of static mode ask when the function cannot have
/// them: no type has it, so such a call is an error that says what they need.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this `#[differentiable]` function has no `hvp` or `hessian` companion",
    label = "second order needs one differentiated parameter and the function generic over its own real scalar alone: `fn f<T: RealScalar>(x: Vector<T, 3>) -> T` (inside `impl<T> Type<T>`, give it its own type parameter: `fn f<S: RealScalar>(x: Vector<S, 3>) -> S`)"
)]
pub trait SecondOrderCompanion {}

/// What a call of `f::grad(x)` inside another `#[differentiable]` body asks of `f`
/// when `f` cannot have it: no type has it, so such a call is an error that says
/// what it needs.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`grad` of this `#[differentiable]` function cannot be differentiated inside another body",
    label = "its derivative is the Hessian, from `grad` at dual numbers: the function (or method) must have one type parameter of its own, bounded by `RealScalar` alone, every differentiated parameter and every other that mentions it a tensor of it or itself (leave `self` out with `wrt(…)`), returning it: `fn f<T: RealScalar>(x: T, v: &Vector<T, 3>) -> T`"
)]
pub trait NestedGradientCompanion {}

/// The rule of a one-operand primitive y = f(x).
#[diagnostic::on_unimplemented(
    message = "no derivative rule `{Self}` for `{X}`",
    label = "static mode has no rule for this operation on this type, or the operand's shape does not fit it (see the other errors)",
    note = "give it one: implement `fluxion::autodiff::rules::UnaryRule<{X}>` for the operation, or give a function that computes it a derivative by hand, `#[differentiable(vjp = …, jvp = …)]`",
    note = "static mode reads a method named like a library operation (`sum`, `scale`, `sin`, …) as that operation: if `{X}` is your own type, rename its method"
)]
pub trait UnaryRule<X: Differentiable> {
    /// The result's type.
    type Output: Differentiable;
    /// y = f(x).
    fn value(&self, x: &X) -> Self::Output;
    /// ẏ = f′(x)·ẋ.
    fn push(&self, x: &X, y: &Self::Output, x_dot: &TangentOf<X>) -> TangentOf<Self::Output>;
    /// x̄ = f′(x)ᴴ·ȳ.
    fn pull(&self, x: &X, y: &Self::Output, y_bar: &TangentOf<Self::Output>) -> TangentOf<X>;

    /// x̄ written into `x_bar` or added to it, as `write` says.
    #[inline(always)]
    fn pull_into(
        &self,
        x: &X,
        y: &Self::Output,
        y_bar: &TangentOf<Self::Output>,
        x_bar: &mut TangentOf<X>,
        write: Write,
    ) {
        write_tangent(x_bar, self.pull(x, y, y_bar), write);
    }
}

/// `destination ← value` or `destination ← destination + value`.
#[inline(always)]
#[track_caller]
pub fn write_tangent<V: VectorSpace>(destination: &mut V, value: V, write: Write) {
    match write {
        Write::Overwrite => *destination = value,
        Write::Accumulate => destination.add_assign(&value),
    }
}

/// The rule of a two-operand primitive y = f(a, b).
#[diagnostic::on_unimplemented(
    message = "no derivative rule `{Self}` for `{A}` and `{B}`",
    label = "static mode has no rule for this operation on these types, or their shapes do not fit it (see the other errors)",
    note = "give it one: implement `fluxion::autodiff::rules::BinaryRule<{A}, {B}>` for the operation, or give a function that computes it a derivative by hand, `#[differentiable(vjp = …, jvp = …)]`",
    note = "static mode reads a method named like a library operation (`scale`, `dot`, `matmul`, …) as that operation: if `{A}` is your own type, rename its method"
)]
pub trait BinaryRule<A: Differentiable, B: Differentiable> {
    /// The result's type.
    type Output: Differentiable;
    /// y = f(a, b).
    fn value(&self, a: &A, b: &B) -> Self::Output;
    /// ẏ = ∂f/∂a·ȧ.
    fn push_lhs(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        a_dot: &TangentOf<A>,
    ) -> TangentOf<Self::Output>;
    /// ẏ = ∂f/∂b·ḃ.
    fn push_rhs(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        b_dot: &TangentOf<B>,
    ) -> TangentOf<Self::Output>;
    /// ā = (∂f/∂a)ᴴ·ȳ.
    fn pull_lhs(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
    ) -> TangentOf<A>;
    /// b̄ = (∂f/∂b)ᴴ·ȳ.
    fn pull_rhs(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
    ) -> TangentOf<B>;

    /// ẏ = ∂f/∂a·ȧ + ∂f/∂b·ḃ.
    #[inline(always)]
    fn push_both(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        a_dot: &TangentOf<A>,
        b_dot: &TangentOf<B>,
    ) -> TangentOf<Self::Output> {
        let mut y_dot = self.push_lhs(args, a_dot);
        y_dot.add_assign(&self.push_rhs(args, b_dot));
        y_dot
    }

    /// (ā, b̄) together.
    #[inline(always)]
    fn pull_both(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
    ) -> (TangentOf<A>, TangentOf<B>) {
        (self.pull_lhs(args, y_bar), self.pull_rhs(args, y_bar))
    }

    /// ā written into `a_bar` or added to it, as `write` says.
    #[inline(always)]
    fn pull_lhs_into(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
        a_bar: &mut TangentOf<A>,
        write: Write,
    ) {
        write_tangent(a_bar, self.pull_lhs(args, y_bar), write);
    }

    /// b̄ written into `b_bar` or added to it, as `write` says.
    #[inline(always)]
    fn pull_rhs_into(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
        b_bar: &mut TangentOf<B>,
        write: Write,
    ) {
        write_tangent(b_bar, self.pull_rhs(args, y_bar), write);
    }

    /// ā and b̄ written or added, each as its `Write` says.
    #[inline(always)]
    fn pull_both_into(
        &self,
        args: Operands<'_, A, B, Self::Output>,
        y_bar: &TangentOf<Self::Output>,
        (a_bar, a_write): (&mut TangentOf<A>, Write),
        (b_bar, b_write): (&mut TangentOf<B>, Write),
    ) {
        self.pull_lhs_into(args, y_bar, a_bar, a_write);
        self.pull_rhs_into(args, y_bar, b_bar, b_write);
    }
}

/// `op(x)`: the value of a one-operand primitive.
#[inline(always)]
pub fn unary<X: Differentiable, Op: UnaryRule<X>>(op: Op, x: &X) -> Op::Output {
    op.value(x)
}

/// `op(a, b)`: the value of a two-operand primitive.
#[inline(always)]
pub fn binary<A: Differentiable, B: Differentiable, Op: BinaryRule<A, B>>(
    op: Op,
    a: &A,
    b: &B,
) -> Op::Output {
    op.value(a, b)
}

/// a + b.
#[derive(Clone, Copy, Debug)]
pub struct Addition;
/// a − b.
#[derive(Clone, Copy, Debug)]
pub struct Subtraction;
/// a·b: scalar by scalar, tensor by scalar or scalar by tensor (never tensor by
/// tensor: that is [`HadamardProduct`] or [`MatrixProduct`]).
#[derive(Clone, Copy, Debug)]
pub struct Multiplication;
/// a / b for a scalar b.
#[derive(Clone, Copy, Debug)]
pub struct Division;
/// −x.
#[derive(Clone, Copy, Debug)]
pub struct Negation;
/// max(x, 0) elementwise.
#[derive(Clone, Copy, Debug)]
pub struct Relu;
/// `x.map_function(f)`: a library author's [`ScalarFunction`] elementwise, with
/// ẏ = f′(x)·ẋ and x̄ = f′(x)·ȳ (so `GeluTanhFunction` and other user functions are
/// differentiated in static mode as on the tape).
#[derive(Clone, Copy, Debug)]
pub struct FunctionMap<F>(F);
impl<F: ScalarFunction> From<F> for FunctionMap<F> {
    fn from(f: F) -> Self {
        FunctionMap(f)
    }
}
/// Σ xᵢ.
#[derive(Clone, Copy, Debug)]
pub struct Summation;
/// (Σ xᵢ)/n.
#[derive(Clone, Copy, Debug)]
pub struct Mean;
/// xᵀ of a matrix.
#[derive(Clone, Copy, Debug)]
pub struct Transposition;
/// xᴴ of a matrix (`conj_transpose`): ẏ = ẋᴴ, x̄ = ȳᴴ.
#[derive(Clone, Copy, Debug)]
pub struct ConjugateTransposition;
/// `a.matmul(&b)` (see [`MatMul`]): Y = A·B, Ẏ = Ȧ·B + A·Ḃ, Ā = Ȳ·Bᴴ, B̄ = Aᴴ·Ȳ
/// (through [`MatMul::matmul_pullback`], which reads A once for both when B is a
/// vector).
#[derive(Clone, Copy, Debug)]
pub struct MatrixProduct;
/// `a.matmul_transposed(&b)` (see [`MatMulTransposed`]): Y = A·Bᵀ, no operand copied
/// in either direction.
#[derive(Clone, Copy, Debug)]
pub struct MatrixTransposedProduct;
/// `a.transposed_matmul(&b)` (see [`TransposedMatMul`]): Y = Aᵀ·B.
#[derive(Clone, Copy, Debug)]
pub struct TransposedMatrixProduct;
/// `a.solve(&b)`: x = A⁻¹b, ẋ = A⁻¹(ḃ − Ȧ·x), b̄ = A⁻ᴴx̄, Ā = −b̄·xᴴ (Aᵀ and xᵀ for
/// real data; see [`linalg`](crate::ops::linalg)); both cotangents from one
/// elimination on Aᴴ.
#[derive(Clone, Copy, Debug)]
pub struct LinearSolve;
/// `a.least_squares(&b)`: x minimising ‖A·x − b‖, ẋ = A⁺(ḃ − Ȧ·x) +
/// (AᴴA)⁻¹Ȧᴴr, b̄ = Q·R⁻ᴴx̄, Ā = r·zᴴ − b̄·xᴴ with r = b − A·x and z = (AᴴA)⁻¹x̄ (ᵀ for
/// real data; see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct LeastSquares;
/// `a.qr()`: (Q, R) with A = Q·R, Q̇ = E − Q·U, Ṙ = U·R, Ā = (Q̄ + Q·S)·R⁻ᴴ (R⁻ᵀ for
/// real data; see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct QrDecomposition;
/// `a.singular_values()`: σ descending and real, σ̇ᵢ = Re uᵢᴴ·Ȧ·vᵢ, Ā = U·diag(σ̄)·Vᴴ
/// (ᵀ for real data; see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct SingularValues;
/// `a.svd()`: (U, σ, Vᴴ) with A = U·diag(σ)·Vᴴ; with P = Uᴴ·Ȧ·V, σ̇ = Re diag P and
/// U̇, V̇ from P over the gaps σⱼ ∓ σᵢ (complex: and the phases that keep V's anchors
/// real); Ā from the same couplings of Uᴴ·Ū and Vᴴ·V̄ (see
/// [`linalg`](crate::ops::linalg) and [`svd_pullback`]).
#[derive(Clone, Copy, Debug)]
pub struct SingularValueDecomposition;
/// `a.pseudo_inverse()`: Y = A⁺, Ẏ = −Y·Ȧ·Y + Y·Yᴴ·Ȧᴴ·(I − A·Y) + (I − Y·A)·Ȧᴴ·Yᴴ·Y
/// (constant rank; ᵀ for real data; see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct PseudoInverse;
/// `l.solve_lower_triangular(&b)`: x = L⁻¹b for L the lower triangle, ẋ =
/// L⁻¹(ḃ − L̇·x), b̄ = L⁻ᴴx̄, L̄ = −b̄·xᴴ's lower triangle (see
/// [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct LowerTriangularSolve;
/// `u.solve_upper_triangular(&b)`: as [`LowerTriangularSolve`] with the upper
/// triangle.
#[derive(Clone, Copy, Debug)]
pub struct UpperTriangularSolve;
/// `a.diagonal()`: y = (a₁₁, …, aₙₙ), ẏ = ȧ's diagonal, Ā = ȳ on the diagonal of a
/// zero matrix.
#[derive(Clone, Copy, Debug)]
pub struct Diagonal;
/// `v.diagonal_matrix()`: Y = diag(v), Ẏ = diag(v̇), v̄ = Ȳ's diagonal.
#[derive(Clone, Copy, Debug)]
pub struct DiagonalMatrix;
/// `a.symmetric_eigenvalues()`: λ the eigenvalues of sym(A), ascending, λ̇ᵢ =
/// vᵢᵀ·Ȧ·vᵢ, Ā = V·diag(λ̄)·Vᵀ (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct SymmetricEigenvalues;
/// `a.symmetric_eigenvectors()`: V the eigenvectors of sym(A), V̇ =
/// V·(F∘(Vᵀ·sym(Ȧ)·V)), Ā = sym(V·(F∘(Vᵀ·V̄))·Vᵀ), F the reciprocal eigenvalue gaps
/// (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct SymmetricEigenvectors;
/// `let (values, vectors) = a.symmetric_eigen();`: with P = Vᵀ·sym(Ȧ)·V, λ̇ = diag P,
/// V̇ = V·(F∘P); Ā = sym(V·(diag(λ̄) + F∘(Vᵀ·V̄))·Vᵀ) (see
/// [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct SymmetricEigendecomposition;
/// `a.inverse()`: Y = A⁻¹, Ẏ = −Y·Ȧ·Y, Ā = −Yᴴ·Ȳ·Yᴴ (see
/// [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct MatrixInverse;
/// `a.hermitian_eigenvalues()`: λ the eigenvalues of herm(A) for complex A,
/// ascending, λ̇ᵢ = Re vᵢᴴ·Ȧ·vᵢ, Ā = V·diag(λ̄)·Vᴴ (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct HermitianEigenvalues;
/// `let (values, vectors) = a.hermitian_eigen();` for complex A: with P =
/// Vᴴ·herm(Ȧ)·V, λ̇ = diag P, V̇ = V·(F∘P) plus the phase turn that keeps each
/// column's anchor real (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct HermitianEigendecomposition;
/// `a.matrix_exp()`: Y = e^A, Ẏ = L(A, Ȧ), the Fréchet derivative, Ā = L(Aᴴ, Ȳ)
/// (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct MatrixExponential;
/// `a.determinant()`: y = det A, ẏ = y·tr(A⁻¹·Ȧ), Ā = ȳ·conj(y)·A⁻ᴴ (see
/// [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct Determinant;
/// `a.log_abs_determinant()`: y = ln|det A|, ẏ = Re tr(A⁻¹·Ȧ), Ā = ȳ·A⁻ᴴ (see
/// [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct LogAbsDeterminant;
/// `a.cholesky()`: L with L·Lᴴ = herm(A), L̇ = L·Φ(L⁻¹·herm(Ȧ)·L⁻ᴴ),
/// Ā = herm(L⁻ᴴ·Φ(Lᴴ·L̄)·L⁻¹) (see [`linalg`](crate::ops::linalg)).
#[derive(Clone, Copy, Debug)]
pub struct CholeskyFactor;
/// `x.add_rows(&b)`: yᵢⱼ = xᵢⱼ + bⱼ, ẏ = ẋ + 1·ḃᵀ, x̄ = ȳ, b̄ = the column sums of ȳ.
#[derive(Clone, Copy, Debug)]
pub struct RowAddition;
/// `x.mul_rows(&g)`: yᵢⱼ = xᵢⱼ·gⱼ, ẏ = ẋ·g + x·ġ per row, x̄ = ȳ·conj(g),
/// ḡ = Σᵢ conj(xᵢⱼ)·ȳᵢⱼ.
#[derive(Clone, Copy, Debug)]
pub struct RowMultiplication;
/// `x.add_channels(&b)`: y_{b c i j} = x_{b c i j} + b_c; b̄ sums ȳ over all but the
/// channel axis.
#[derive(Clone, Copy, Debug)]
pub struct ChannelAddition;
/// `x.mul_channels(&g)`: y_{b c i j} = x_{b c i j}·g_c, ẏ = ẋ·g_c + x·ġ_c, x̄ = ȳ·g_c,
/// ḡ_c = Σ_{b i j} x_{b c i j}·ȳ_{b c i j}.
#[derive(Clone, Copy, Debug)]
pub struct ChannelMultiplication;
/// `x.conv2d_strided(&w, Stride::<S>, Padding::<P>)` (and `x.conv2d_padded(&w,
/// Padding::<P>)`, S = 1, and `x.conv2d(&w)`, S = 1 and P = 0) with output size HO×WO:
/// bilinear, so ẏ = conv(ẋ, w) + conv(x, ẇ); x̄ and w̄ come from one pass of the tape's
/// pullback.
#[derive(Clone, Copy, Debug, Default)]
pub struct Convolution<const P: usize, const HO: usize, const WO: usize, const S: usize = 1>;
impl<const P: usize, const HO: usize, const WO: usize> From<Padding<P>> for Convolution<P, HO, WO> {
    fn from(_: Padding<P>) -> Self {
        Convolution
    }
}
impl<const P: usize, const HO: usize, const WO: usize, const S: usize> From<(Stride<S>, Padding<P>)>
    for Convolution<P, HO, WO, S>
{
    fn from(_: (Stride<S>, Padding<P>)) -> Self {
        Convolution
    }
}
/// `x.max_pool2d_strided(Window::<KS>, Stride::<S>, Padding::<P>)` (and
/// `x.max_pool2d::<KS, HO, WO>()`, S = KS and P = 0): ẏ and x̄ follow the first
/// maximum of each window.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxPooling<
    const KS: usize,
    const HO: usize,
    const WO: usize,
    const P: usize = 0,
    const S: usize = KS,
>;
/// `x.avg_pool2d_strided(Window::<KS>, Stride::<S>, Padding::<P>)` (and
/// `x.avg_pool2d::<KS, HO, WO>()`): linear, so ẏ is ẋ pooled and x̄ spreads ȳ/KS²
/// over each window.
#[derive(Clone, Copy, Debug, Default)]
pub struct AveragePooling<
    const KS: usize,
    const HO: usize,
    const WO: usize,
    const P: usize = 0,
    const S: usize = KS,
>;
/// Pooling rules from the arguments of the strided calls.
macro_rules! pooling_from_arguments {
    ($($rule:ident),*) => {$(
        impl<const KS: usize, const HO: usize, const WO: usize, const P: usize, const S: usize>
            From<(Window<KS>, Stride<S>, Padding<P>)> for $rule<KS, HO, WO, P, S>
        {
            fn from(_: (Window<KS>, Stride<S>, Padding<P>)) -> Self {
                $rule
            }
        }
    )*};
}
pooling_from_arguments!(MaxPooling, AveragePooling);
/// `x.normalize_groups(Groups::<G>, ε)` (ε a constant): each group's Jacobian,
/// r·(I − 11ᵀ/n − y·yᵀ/n), is symmetric, so ẏ and x̄ come from one formula.
#[derive(Clone, Copy, Debug)]
pub struct GroupNormalization<const G: usize, T> {
    epsilon: T,
}
impl<const G: usize, T> From<(Groups<G>, T)> for GroupNormalization<G, T> {
    fn from((_, epsilon): (Groups<G>, T)) -> Self {
        GroupNormalization { epsilon }
    }
}
/// `x.flatten_images::<F>()`: a reshape, so ẏ is ẋ flattened and x̄ is ȳ unflattened.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageFlattening<const F: usize>;
/// `x.flatten::<N>()`: a reshape to a vector (`N` from the turbofish or from how the
/// result is used), so ẏ is ẋ flattened and x̄ is ȳ under x's shape.
pub type Flattening<const N: usize> = Reshaping<(Const<N>,)>;
/// `x.reshape::<Target>()` (`Target` from the turbofish or from how the result is
/// used): ẏ is ẋ reshaped, x̄ is ȳ under x's shape.
pub struct Reshaping<Target>(core::marker::PhantomData<fn() -> Target>);
impl<Target> Reshaping<Target> {
    /// The rule of a reshape to `Target`.
    pub const fn new() -> Self {
        Reshaping(core::marker::PhantomData)
    }
}
impl<Target> Default for Reshaping<Target> {
    fn default() -> Self {
        Self::new()
    }
}
impl<Target> Clone for Reshaping<Target> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<Target> Copy for Reshaping<Target> {}
impl<Target> core::fmt::Debug for Reshaping<Target> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Reshaping<{}>", core::any::type_name::<Target>())
    }
}
/// `table.gather_rows(indices)`: row k of y is row indices\[k\] of the table; ẏ gathers
/// ẋ the same way, and x̄ adds each row of ȳ into the row it came from.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug)]
pub struct RowGathering<'a> {
    indices: &'a [usize],
}
#[cfg(feature = "alloc")]
impl<'a, I: AsRef<[usize]> + ?Sized> From<&'a I> for RowGathering<'a> {
    fn from(indices: &'a I) -> Self {
        RowGathering { indices: indices.as_ref() }
    }
}
/// `m.row(i)`: ẏ = row i of ṁ; m̄ = ȳ in row i, 0 elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct RowSelection {
    index: usize,
}
impl From<usize> for RowSelection {
    fn from(index: usize) -> Self {
        RowSelection { index }
    }
}
/// `m.column(j)`: ẏ = column j of ṁ; m̄ = ȳ in column j, 0 elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct ColumnSelection {
    index: usize,
}
impl From<usize> for ColumnSelection {
    fn from(index: usize) -> Self {
        ColumnSelection { index }
    }
}
/// `x.normalize_rows(ε)`: its Jacobian r·(I − 11ᵀ/n − y·yᵀ/n) per row is symmetric,
/// so ẏ and x̄ are the same map of ẋ or ȳ.
#[derive(Clone, Copy, Debug)]
pub struct RowNormalization<T> {
    epsilon: T,
}
impl<T> From<T> for RowNormalization<T> {
    fn from(epsilon: T) -> Self {
        RowNormalization { epsilon }
    }
}
/// `a.hadamard(&b)`: the elementwise product.
#[derive(Clone, Copy, Debug)]
pub struct HadamardProduct;
/// `a.outer(&b)` of two vectors: Yᵢⱼ = aᵢbⱼ.
#[derive(Clone, Copy, Debug)]
pub struct OuterProduct;
/// `a.dot(&b)`: Σ aᵢbᵢ of real tensors.
#[derive(Clone, Copy, Debug)]
pub struct DotProduct;
/// `a.kron(&b)` of two matrices, the Kronecker product of sizes (MP, NQ) (from how the
/// result is used, as the method's): ẏ = ȧ ⊗ b + a ⊗ ḃ; ā and b̄ from
/// [`kron_pullback`].
pub struct KroneckerProduct<MP, NQ>(core::marker::PhantomData<fn() -> (MP, NQ)>);

impl<MP, NQ> KroneckerProduct<MP, NQ> {
    /// The rule, its sizes inferred.
    pub fn new() -> Self {
        KroneckerProduct(core::marker::PhantomData)
    }
}

impl<MP, NQ> Default for KroneckerProduct<MP, NQ> {
    fn default() -> Self {
        Self::new()
    }
}

impl<MP, NQ> Clone for KroneckerProduct<MP, NQ> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<MP, NQ> Copy for KroneckerProduct<MP, NQ> {}

impl<MP, NQ> core::fmt::Debug for KroneckerProduct<MP, NQ> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KroneckerProduct")
    }
}
/// `a.inner(&b)`: ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ of tensors.
#[derive(Clone, Copy, Debug)]
pub struct InnerProduct;

// Scalars. Every scalar is its own tangent; a holomorphic f pulls back by conj(f′).

#[diagnostic::do_not_recommend]
impl<T: Scalar> BinaryRule<T, T> for Addition {
    type Output = T;
    #[inline(always)]
    fn value(&self, a: &T, b: &T) -> T {
        *a + *b
    }
    #[inline(always)]
    fn push_lhs(&self, _: Same<'_, T>, a_dot: &T) -> T {
        *a_dot
    }
    #[inline(always)]
    fn push_rhs(&self, _: Same<'_, T>, b_dot: &T) -> T {
        *b_dot
    }
    #[inline(always)]
    fn pull_lhs(&self, _: Same<'_, T>, y_bar: &T) -> T {
        *y_bar
    }
    #[inline(always)]
    fn pull_rhs(&self, _: Same<'_, T>, y_bar: &T) -> T {
        *y_bar
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> BinaryRule<T, T> for Subtraction {
    type Output = T;
    #[inline(always)]
    fn value(&self, a: &T, b: &T) -> T {
        *a - *b
    }
    #[inline(always)]
    fn push_lhs(&self, _: Same<'_, T>, a_dot: &T) -> T {
        *a_dot
    }
    #[inline(always)]
    fn push_rhs(&self, _: Same<'_, T>, b_dot: &T) -> T {
        -*b_dot
    }
    #[inline(always)]
    fn pull_lhs(&self, _: Same<'_, T>, y_bar: &T) -> T {
        *y_bar
    }
    #[inline(always)]
    fn pull_rhs(&self, _: Same<'_, T>, y_bar: &T) -> T {
        -*y_bar
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> BinaryRule<T, T> for Multiplication {
    type Output = T;
    #[inline(always)]
    fn value(&self, a: &T, b: &T) -> T {
        *a * *b
    }
    #[inline(always)]
    fn push_lhs(&self, (_, b, _): Same<'_, T>, a_dot: &T) -> T {
        *a_dot * *b
    }
    #[inline(always)]
    fn push_rhs(&self, (a, _, _): Same<'_, T>, b_dot: &T) -> T {
        *a * *b_dot
    }
    #[inline(always)]
    fn pull_lhs(&self, (_, b, _): Same<'_, T>, y_bar: &T) -> T {
        *y_bar * b.conj()
    }
    #[inline(always)]
    fn pull_rhs(&self, (a, _, _): Same<'_, T>, y_bar: &T) -> T {
        *y_bar * a.conj()
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> BinaryRule<T, T> for Division {
    type Output = T;
    #[inline(always)]
    fn value(&self, a: &T, b: &T) -> T {
        *a / *b
    }
    #[inline(always)]
    fn push_lhs(&self, (_, b, _): Same<'_, T>, a_dot: &T) -> T {
        *a_dot / *b
    }
    #[inline(always)]
    fn push_rhs(&self, (_, b, y): Same<'_, T>, b_dot: &T) -> T {
        -*b_dot * (*y / *b)
    }
    #[inline(always)]
    fn pull_lhs(&self, (_, b, _): Same<'_, T>, y_bar: &T) -> T {
        *y_bar / b.conj()
    }
    #[inline(always)]
    fn pull_rhs(&self, (_, b, y): Same<'_, T>, y_bar: &T) -> T {
        -*y_bar * (*y / *b).conj()
    }
}

/// An operation of a complex value (a scalar or a tensor) and a real scalar, in
/// either order (`z * 2.0`, `1.0 - z`): the rule of the complex value and a complex
/// scalar, with the real operand as r + 0i. Its tangent enters as ṙ + 0i and its
/// cotangent is the real part of the complex one's (a real operand moves along the
/// real axis only). `lhs` implements `value op r`, `rhs` implements `r op value`.
macro_rules! real_beside_complex_rules {
    ($([$($generics:tt)*] $value:ty: $($rule:ident $($side:ident)+),+;)+) => {$(
        real_beside_complex_rules!(@group {[$($generics)*] $value} $($rule $($side)+),+);
    )+};
    (@group $header:tt $($rule:ident $($side:ident)+),+) => {$($(
        real_beside_complex_rules!(@$side $header $rule);
    )+)+};
    (@lhs {[$($generics:tt)*] $value:ty} $rule:ident) => {
        #[diagnostic::do_not_recommend]
        impl<R, $($generics)*> BinaryRule<$value, R> for $rule
        where
            R: RealScalar + Differentiable<Tangent = R>,
            num_complex::Complex<R>: Scalar<Real = R> + Differentiable<Tangent = num_complex::Complex<R>>,
            $value: Differentiable,
            $rule: BinaryRule<$value, num_complex::Complex<R>>,
        {
            type Output = <$rule as BinaryRule<$value, num_complex::Complex<R>>>::Output;
            #[inline(always)]
            fn value(&self, a: &$value, b: &R) -> Self::Output {
                <$rule as BinaryRule<$value, num_complex::Complex<R>>>::value(self, a, &Scalar::from_real(*b))
            }
            #[inline(always)]
            fn push_lhs(&self, (a, b, y): Operands<'_, $value, R, Self::Output>, a_dot: &TangentOf<$value>) -> TangentOf<Self::Output> {
                let b = Scalar::from_real(*b);
                <$rule as BinaryRule<$value, num_complex::Complex<R>>>::push_lhs(self, (a, &b, y), a_dot)
            }
            #[inline(always)]
            fn push_rhs(&self, (a, b, y): Operands<'_, $value, R, Self::Output>, b_dot: &R) -> TangentOf<Self::Output> {
                let (b, b_dot) = (Scalar::from_real(*b), Scalar::from_real(*b_dot));
                <$rule as BinaryRule<$value, num_complex::Complex<R>>>::push_rhs(self, (a, &b, y), &b_dot)
            }
            #[inline(always)]
            fn pull_lhs(&self, (a, b, y): Operands<'_, $value, R, Self::Output>, y_bar: &TangentOf<Self::Output>) -> TangentOf<$value> {
                let b = Scalar::from_real(*b);
                <$rule as BinaryRule<$value, num_complex::Complex<R>>>::pull_lhs(self, (a, &b, y), y_bar)
            }
            #[inline(always)]
            fn pull_rhs(&self, (a, b, y): Operands<'_, $value, R, Self::Output>, y_bar: &TangentOf<Self::Output>) -> R {
                let b = Scalar::from_real(*b);
                <$rule as BinaryRule<$value, num_complex::Complex<R>>>::pull_rhs(self, (a, &b, y), y_bar).re
            }
        }
    };
    (@rhs {[$($generics:tt)*] $value:ty} $rule:ident) => {
        #[diagnostic::do_not_recommend]
        impl<R, $($generics)*> BinaryRule<R, $value> for $rule
        where
            R: RealScalar + Differentiable<Tangent = R>,
            num_complex::Complex<R>: Scalar<Real = R> + Differentiable<Tangent = num_complex::Complex<R>>,
            $value: Differentiable,
            $rule: BinaryRule<num_complex::Complex<R>, $value>,
        {
            type Output = <$rule as BinaryRule<num_complex::Complex<R>, $value>>::Output;
            #[inline(always)]
            fn value(&self, a: &R, b: &$value) -> Self::Output {
                <$rule as BinaryRule<num_complex::Complex<R>, $value>>::value(self, &Scalar::from_real(*a), b)
            }
            #[inline(always)]
            fn push_lhs(&self, (a, b, y): Operands<'_, R, $value, Self::Output>, a_dot: &R) -> TangentOf<Self::Output> {
                let (a, a_dot) = (Scalar::from_real(*a), Scalar::from_real(*a_dot));
                <$rule as BinaryRule<num_complex::Complex<R>, $value>>::push_lhs(self, (&a, b, y), &a_dot)
            }
            #[inline(always)]
            fn push_rhs(&self, (a, b, y): Operands<'_, R, $value, Self::Output>, b_dot: &TangentOf<$value>) -> TangentOf<Self::Output> {
                let a = Scalar::from_real(*a);
                <$rule as BinaryRule<num_complex::Complex<R>, $value>>::push_rhs(self, (&a, b, y), b_dot)
            }
            #[inline(always)]
            fn pull_lhs(&self, (a, b, y): Operands<'_, R, $value, Self::Output>, y_bar: &TangentOf<Self::Output>) -> R {
                let a = Scalar::from_real(*a);
                <$rule as BinaryRule<num_complex::Complex<R>, $value>>::pull_lhs(self, (&a, b, y), y_bar).re
            }
            #[inline(always)]
            fn pull_rhs(&self, (a, b, y): Operands<'_, R, $value, Self::Output>, y_bar: &TangentOf<Self::Output>) -> TangentOf<$value> {
                let a = Scalar::from_real(*a);
                <$rule as BinaryRule<num_complex::Complex<R>, $value>>::pull_rhs(self, (&a, b, y), y_bar)
            }
        }
    };
}

real_beside_complex_rules! {
    [] num_complex::Complex<R>: Addition lhs rhs, Subtraction lhs rhs, Multiplication lhs rhs, Division lhs rhs;
    [S: Shape, K: Storage<num_complex::Complex<R>, S>] Tensor<num_complex::Complex<R>, S, K>:
        Multiplication lhs rhs, Division lhs;
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> UnaryRule<T> for Negation {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        -*x
    }
    #[inline(always)]
    fn push(&self, _: &T, _: &T, x_dot: &T) -> T {
        -*x_dot
    }
    #[inline(always)]
    fn pull(&self, _: &T, _: &T, y_bar: &T) -> T {
        -*y_bar
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> UnaryRule<T> for Elementary<T::Real> {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        self.apply(*x)
    }
    #[inline(always)]
    fn push(&self, x: &T, y: &T, x_dot: &T) -> T {
        self.derivative(*x, *y) * *x_dot
    }
    #[inline(always)]
    fn pull(&self, x: &T, y: &T, y_bar: &T) -> T {
        self.derivative(*x, *y).conj() * *y_bar
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar> UnaryRule<T> for Relu {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        if *x < T::zero() { T::zero() } else { *x }
    }
    #[inline(always)]
    fn push(&self, x: &T, _: &T, x_dot: &T) -> T {
        if *x > T::zero() { *x_dot } else { T::zero() }
    }
    #[inline(always)]
    fn pull(&self, x: &T, y: &T, y_bar: &T) -> T {
        self.push(x, y, y_bar)
    }
}

// Tensors. A host tensor is its own tangent; shapes are checked by the operations.

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, Tensor<T, S, K>> for Addition {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Self::Output, b: &Self::Output) -> Self::Output {
        or_panic(a.try_add(b))
    }
    #[inline(always)]
    fn push_lhs(&self, _: Same<'_, Self::Output>, a_dot: &Self::Output) -> Self::Output {
        a_dot.clone()
    }
    #[inline(always)]
    fn push_rhs(&self, _: Same<'_, Self::Output>, b_dot: &Self::Output) -> Self::Output {
        b_dot.clone()
    }
    #[inline(always)]
    #[track_caller]
    fn push_both(
        &self,
        _: Same<'_, Self::Output>,
        a_dot: &Self::Output,
        b_dot: &Self::Output,
    ) -> Self::Output {
        or_panic(a_dot.try_add(b_dot))
    }
    #[inline(always)]
    fn pull_lhs(&self, _: Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.clone()
    }
    #[inline(always)]
    fn pull_rhs(&self, _: Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.clone()
    }
    #[inline(always)]
    #[track_caller]
    fn pull_lhs_into(
        &self,
        _: Same<'_, Self::Output>,
        y_bar: &Self::Output,
        a_bar: &mut Self::Output,
        write: Write,
    ) {
        write_elements(write, a_bar.as_mut_slice(), y_bar.iter().copied());
    }
    #[inline(always)]
    #[track_caller]
    fn pull_rhs_into(
        &self,
        _: Same<'_, Self::Output>,
        y_bar: &Self::Output,
        b_bar: &mut Self::Output,
        write: Write,
    ) {
        write_elements(write, b_bar.as_mut_slice(), y_bar.iter().copied());
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, Tensor<T, S, K>> for Subtraction {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Self::Output, b: &Self::Output) -> Self::Output {
        or_panic(a.try_sub(b))
    }
    #[inline(always)]
    fn push_lhs(&self, _: Same<'_, Self::Output>, a_dot: &Self::Output) -> Self::Output {
        a_dot.clone()
    }
    #[inline(always)]
    fn push_rhs(&self, _: Same<'_, Self::Output>, b_dot: &Self::Output) -> Self::Output {
        b_dot.map(|v| -v)
    }
    #[inline(always)]
    #[track_caller]
    fn push_both(
        &self,
        _: Same<'_, Self::Output>,
        a_dot: &Self::Output,
        b_dot: &Self::Output,
    ) -> Self::Output {
        or_panic(a_dot.try_sub(b_dot))
    }
    #[inline(always)]
    fn pull_lhs(&self, _: Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.clone()
    }
    #[inline(always)]
    fn pull_rhs(&self, _: Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.map(|v| -v)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Negation {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.map(|v| -v)
    }
    #[inline(always)]
    fn push(&self, _: &Self::Output, _: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        x_dot.map(|v| -v)
    }
    #[inline(always)]
    fn pull(&self, _: &Self::Output, _: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        y_bar.map(|v| -v)
    }
}

/// Two tensors under `*` or `/` have no rule: the bound fails, reporting (as
/// outside static mode) that `*` and `/` take a tensor and a scalar and naming the
/// products to say instead. No tensor is a `ScalarFactor`, so the bodies never run.
macro_rules! tensor_by_tensor {
    ($($rule:ident),+) => {$(
        #[diagnostic::do_not_recommend]
        impl<T: Scalar, S: Shape, S2: Shape, K: Storage<T, S> + Storage<T, S2>>
            BinaryRule<Tensor<T, S, K>, Tensor<T, S2, K>> for $rule
        where
            Tensor<T, S2, K>: ScalarFactor<T>,
        {
            type Output = Tensor<T, S, K>;
            fn value(&self, _: &Tensor<T, S, K>, _: &Tensor<T, S2, K>) -> Self::Output {
                unreachable!("a tensor is no scalar factor")
            }
            fn push_lhs(&self, _: Operands<'_, Tensor<T, S, K>, Tensor<T, S2, K>, Self::Output>, _: &Tensor<T, S, K>) -> Self::Output {
                unreachable!("a tensor is no scalar factor")
            }
            fn push_rhs(&self, _: Operands<'_, Tensor<T, S, K>, Tensor<T, S2, K>, Self::Output>, _: &Tensor<T, S2, K>) -> Self::Output {
                unreachable!("a tensor is no scalar factor")
            }
            fn pull_lhs(&self, _: Operands<'_, Tensor<T, S, K>, Tensor<T, S2, K>, Self::Output>, _: &Self::Output) -> Tensor<T, S, K> {
                unreachable!("a tensor is no scalar factor")
            }
            fn pull_rhs(&self, _: Operands<'_, Tensor<T, S, K>, Tensor<T, S2, K>, Self::Output>, _: &Self::Output) -> Tensor<T, S2, K> {
                unreachable!("a tensor is no scalar factor")
            }
        }
    )+};
}

tensor_by_tensor!(Multiplication, Division);

/// y = s·x (x a tensor, s a scalar): ẏ = ṡ·x + s·ẋ, x̄ = conj(s)·ȳ, s̄ = ⟨x, ȳ⟩.
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, T> for Multiplication {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output, s: &T) -> Self::Output {
        x.scale(*s)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, s, _): Operands<'_, Self::Output, T, Self::Output>,
        x_dot: &Self::Output,
    ) -> Self::Output {
        x_dot.scale(*s)
    }
    #[inline(always)]
    fn push_rhs(&self, (x, _, _): Operands<'_, Self::Output, T, Self::Output>, s_dot: &T) -> Self::Output {
        x.scale(*s_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (_, s, _): Operands<'_, Self::Output, T, Self::Output>,
        y_bar: &Self::Output,
    ) -> Self::Output {
        y_bar.scale(s.conj())
    }
    #[inline(always)]
    fn pull_rhs(&self, (x, _, _): Operands<'_, Self::Output, T, Self::Output>, y_bar: &Self::Output) -> T {
        x.inner(y_bar)
    }
}

/// y = s·x with the scalar on the left: the rule above with the operands swapped.
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<T, Tensor<T, S, K>> for Multiplication {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, s: &T, x: &Self::Output) -> Self::Output {
        x.scale(*s)
    }
    #[inline(always)]
    fn push_lhs(&self, (s, x, y): Operands<'_, T, Self::Output, Self::Output>, s_dot: &T) -> Self::Output {
        self.push_rhs((x, s, y), s_dot)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (s, x, y): Operands<'_, T, Self::Output, Self::Output>,
        x_dot: &Self::Output,
    ) -> Self::Output {
        self.push_lhs((x, s, y), x_dot)
    }
    #[inline(always)]
    fn pull_lhs(&self, (s, x, y): Operands<'_, T, Self::Output, Self::Output>, y_bar: &Self::Output) -> T {
        self.pull_rhs((x, s, y), y_bar)
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (s, x, y): Operands<'_, T, Self::Output, Self::Output>,
        y_bar: &Self::Output,
    ) -> Self::Output {
        self.pull_lhs((x, s, y), y_bar)
    }
}

/// y = x/s: ẏ = ẋ/s − ṡ·y/s, x̄ = ȳ/conj(s), s̄ = −⟨y, ȳ⟩/conj(s).
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, T> for Division {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output, s: &T) -> Self::Output {
        // Each element divided, as the plain `x / s` computes it (not scaled by 1/s,
        // which can round differently).
        x / *s
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, s, _): Operands<'_, Self::Output, T, Self::Output>,
        x_dot: &Self::Output,
    ) -> Self::Output {
        x_dot / *s
    }
    #[inline(always)]
    fn push_rhs(&self, (_, s, y): Operands<'_, Self::Output, T, Self::Output>, s_dot: &T) -> Self::Output {
        y.scale(-*s_dot / *s)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (_, s, _): Operands<'_, Self::Output, T, Self::Output>,
        y_bar: &Self::Output,
    ) -> Self::Output {
        y_bar.scale(T::one() / s.conj())
    }
    #[inline(always)]
    fn pull_rhs(&self, (_, s, y): Operands<'_, Self::Output, T, Self::Output>, y_bar: &Self::Output) -> T {
        -y.inner(y_bar) / s.conj()
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Elementary<T::Real> {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.elementary(*self)
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        let f = *self;
        Tensor::from_flat_fn(x.shape(), |i| {
            let (x, y, x_dot) = (x.as_slice()[i], y.as_slice()[i], x_dot.as_slice()[i]);
            f.derivative(x, y) * x_dot
        })
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        let f = *self;
        Tensor::from_flat_fn(x.shape(), |i| {
            let (x, y, y_bar) = (x.as_slice()[i], y.as_slice()[i], y_bar.as_slice()[i]);
            f.derivative(x, y).conj() * y_bar
        })
    }
    #[inline(always)]
    #[track_caller]
    fn pull_into(
        &self,
        x: &Self::Output,
        y: &Self::Output,
        y_bar: &Self::Output,
        x_bar: &mut Self::Output,
        write: Write,
    ) {
        elementary_pullback(*self, (x, y, y_bar), x_bar, write);
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Relu {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.relu()
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, _: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        relu_pullback(x, x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, _: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        relu_pullback(x, y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<F: ScalarFunction, T: RealScalar> UnaryRule<T> for FunctionMap<F> {
    type Output = T;
    /// f(x), with the tangents of the written derivative when `T` is a dual (a
    /// Hessian through a traced scalar).
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        x.apply_function(self.0)
    }
    #[inline(always)]
    fn push(&self, x: &T, y: &T, x_dot: &T) -> T {
        self.0.chain(*x, *y, *x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &T, y: &T, y_bar: &T) -> T {
        self.0.chain(*x, *y, *y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<F: ScalarFunction, T: RealScalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>>
    for FunctionMap<F>
{
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.map_function(self.0)
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        // A real function's derivative is its own adjoint: the pullback's formula.
        function_pullback(self.0, (x, y, x_dot))
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        function_pullback(self.0, (x, y, y_bar))
    }
}

/// What a [`FusedFunction`] applies to in static mode, where `#[differentiable]`
/// reads `f.apply([&x₁, …, &x_N])` through it: y = f(x₁, …, x_N) elementwise,
/// ẏ = Σₖ ∂f/∂xₖ·ẋₖ and x̄ₖ = ∂f/∂xₖ·ȳ (a rule of N operands, which [`UnaryRule`]
/// and [`BinaryRule`] are not). Host tensors of real elements have it.
#[diagnostic::on_unimplemented(
    message = "a fused function cannot be applied to `{Self}`",
    label = "fused functions take tensors of f32 or f64 (host tensors in static mode)",
    note = "a `FusedFunction` is written over `RealScalar`: complex data goes through `.re()`/`.im()` or the complex operations"
)]
pub trait FusedOperand<const N: usize>: Differentiable + Sized {
    /// y = f(x₁, …, x_N) elementwise.
    fn fused_value<F: FusedFunction<N>>(f: &F, inputs: [&Self; N]) -> Self;
    /// ẏ = Σₖ ∂f/∂xₖ·ẋₖ over the inputs with a tangent (`None`: a constant).
    fn fused_push<F: FusedFunction<N>>(
        f: &F,
        inputs: [&Self; N],
        tangents: [Option<&TangentOf<Self>>; N],
    ) -> TangentOf<Self>;
    /// x̄ₖ = ∂f/∂xₖ·ȳ for the inputs marked `wanted` (`None` for the others), in one
    /// pass; [`take_pulled`] hands each on.
    fn fused_pull<F: FusedFunction<N>>(
        f: &F,
        inputs: [&Self; N],
        y_bar: &TangentOf<Self>,
        wanted: [bool; N],
    ) -> [Option<TangentOf<Self>>; N];
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>, const N: usize> FusedOperand<N> for Tensor<T, S, K> {
    #[inline(always)]
    #[track_caller]
    fn fused_value<F: FusedFunction<N>>(f: &F, inputs: [&Self; N]) -> Self {
        f.apply(inputs)
    }
    #[inline(always)]
    #[track_caller]
    fn fused_push<F: FusedFunction<N>>(f: &F, inputs: [&Self; N], tangents: [Option<&Self>; N]) -> Self {
        fused_tangent(*f, inputs, tangents)
    }
    #[inline(always)]
    #[track_caller]
    fn fused_pull<F: FusedFunction<N>>(
        f: &F,
        inputs: [&Self; N],
        y_bar: &Self,
        wanted: [bool; N],
    ) -> [Option<Self>; N] {
        fused_pullback_of(*f, inputs, y_bar, wanted)
    }
}

/// The cotangent [`FusedOperand::fused_pull`] computed for an input it was asked
/// for.
#[inline(always)]
pub fn take_pulled<V>(slot: &mut Option<V>) -> V {
    slot.take().expect("a fused function's pullback computes every cotangent asked for")
}

/// A reduction to a scalar (Σ xᵢ or their mean): ẏ reduces ẋ the same way, x̄ comes
/// from the reduction's pullback.
macro_rules! reduction_rule {
    ($rule:ident, $reduce:ident, $pullback:ident) => {
        #[diagnostic::do_not_recommend]
        impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for $rule {
            type Output = T;
            #[inline(always)]
            fn value(&self, x: &Tensor<T, S, K>) -> T {
                x.$reduce()
            }
            #[inline(always)]
            fn push(&self, _: &Tensor<T, S, K>, _: &T, x_dot: &Tensor<T, S, K>) -> T {
                x_dot.$reduce()
            }
            #[inline(always)]
            fn pull(&self, x: &Tensor<T, S, K>, _: &T, y_bar: &T) -> Tensor<T, S, K> {
                $pullback(x, *y_bar)
            }
        }
    };
}

reduction_rule!(Summation, sum, sum_pullback);
reduction_rule!(Mean, mean, mean_pullback);

/// The Euclidean norm of a tensor (`x.norm()`): y = √Σ|xᵢ|², ẏ = Re⟨u, ẋ⟩ and
/// x̄ = ȳ·u for u = x/y (0 at x = 0, the subgradient PyTorch takes).
#[derive(Clone, Copy, Debug)]
pub struct EuclideanNorm;

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for EuclideanNorm {
    type Output = T::Real;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> T::Real {
        x.norm()
    }
    #[inline(always)]
    #[track_caller]
    fn push(&self, x: &Tensor<T, S, K>, y: &T::Real, x_dot: &Tensor<T, S, K>) -> T::Real {
        norm_push(x, *y, x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &Tensor<T, S, K>, y: &T::Real, y_bar: &T::Real) -> Tensor<T, S, K> {
        norm_pullback(x, *y, *y_bar)
    }
}

/// The largest element of a real tensor (`x.max()`): ẏ = ẋ at the first largest
/// element, x̄ = ȳ there (the tape's choice at ties too; PyTorch's whole-tensor `max()`
/// and JAX's `max` share ȳ evenly between tied elements instead).
#[derive(Clone, Copy, Debug)]
pub struct LargestElement;

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for LargestElement {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> T {
        x.max()
    }
    #[inline(always)]
    fn push(&self, x: &Tensor<T, S, K>, _: &T, x_dot: &Tensor<T, S, K>) -> T {
        max_pullback(x, T::one()).hadamard(x_dot).sum()
    }
    #[inline(always)]
    fn pull(&self, x: &Tensor<T, S, K>, _: &T, y_bar: &T) -> Tensor<T, S, K> {
        max_pullback(x, *y_bar)
    }
}

/// Operations along one axis, each named by its method and built from the method's
/// [`Axis`] argument: `x.sum_axis(Axis::<1>)` is the rule `SumAxis::<1>`.
macro_rules! axis_rules {
    ($($(#[$doc:meta])* $rule:ident;)+) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, Default)]
            pub struct $rule<const AXIS: usize>;

            impl<const AXIS: usize> From<Axis<AXIS>> for $rule<AXIS> {
                fn from(_: Axis<AXIS>) -> Self {
                    $rule
                }
            }
        )+
    };
}

axis_rules! {
    /// Σ along an axis: ẏ = Σ ẋ along it; x̄ = ȳ repeated along it.
    SumAxis;
    /// The mean along an axis.
    MeanAxis;
    /// log Σ exp along an axis: ẏ = Σ softmax(x) ⊙ ẋ; x̄ = ȳ ⊙ softmax(x).
    LogSumExp;
    /// softmax along an axis: its Jacobian diag(y) − y·yᵀ is symmetric, so ẏ and x̄
    /// are the same map, y ⊙ (v − Σ y ⊙ v).
    SoftmaxAlong;
    /// log_softmax along an axis: ẏ = ẋ − Σ softmax(x) ⊙ ẋ; x̄ = ȳ − softmax(x)·Σ ȳ.
    LogSoftmaxAlong;
    /// The largest element along an axis: ẏ = ẋ at the first largest of each line,
    /// x̄ = ȳ there (the tape's choice at ties too, as PyTorch's `max(dim)`; `amax`
    /// and JAX's `max` share ȳ evenly between tied elements instead).
    MaxAxis;
}

/// A rule along `AXIS` whose output's shape is a type parameter (`$shape`), taken
/// from how the result is used: a marker built from the method's [`Axis`] argument.
macro_rules! axis_rule_with_output_shape {
    ($(#[$doc:meta])* $rule:ident<$shape:ident>) => {
        $(#[$doc])*
        pub struct $rule<const AXIS: usize, $shape>(core::marker::PhantomData<fn() -> $shape>);

        impl<const AXIS: usize, $shape> From<Axis<AXIS>> for $rule<AXIS, $shape> {
            fn from(_: Axis<AXIS>) -> Self {
                $rule(core::marker::PhantomData)
            }
        }

        impl<const AXIS: usize, $shape> Clone for $rule<AXIS, $shape> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<const AXIS: usize, $shape> Copy for $rule<AXIS, $shape> {}

        impl<const AXIS: usize, $shape> core::fmt::Debug for $rule<AXIS, $shape> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($rule), "<{}>"), AXIS)
            }
        }
    };
}

axis_rule_with_output_shape! {
    /// A new axis `AXIS` of the target shape `Target`, each line repeated along it
    /// (`x.broadcast_axis(Axis::<AXIS>)`): ẏ = ẋ broadcast the same way; x̄ = Σ ȳ
    /// along the axis. `Target` (static) comes from how the result is used, or a type
    /// on its `let`.
    AxisBroadcast<Target>
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, Target, K, const AXIS: usize> UnaryRule<Tensor<T, S, K>>
    for AxisBroadcast<AXIS, Target>
where
    Target: crate::shape::StaticShape + InsertsAxis<AXIS, S>,
    K: Storage<T, S> + Storage<T, Target>,
{
    type Output = Tensor<T, Target, K>;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.broadcast_axis(Axis::<AXIS>)
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.broadcast_axis(Axis::<AXIS>)
    }
    #[inline(always)]
    fn pull(&self, _: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        y_bar.sum_axis(Axis::<AXIS>)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, Target, K> UnaryRule<Tensor<T, S, K>> for Reshaping<Target>
where
    Target: crate::shape::StaticShape,
    S: SameElementCount<Target>,
    K: Storage<T, S> + Storage<T, Target>,
{
    type Output = Tensor<T, Target, K>;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.reshape::<Target>()
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.reshape::<Target>()
    }
    #[inline(always)]
    fn pull(&self, x: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        reshape_pullback(x, y_bar)
    }
}

/// The entries `start..end` along `AXIS`, known as the program runs
/// (`x.narrow_range(Axis::<AXIS>, start..end)`, the axis becoming `Dyn`): ẏ = ẋ
/// narrowed the same way; x̄ = ȳ in the slice, 0 elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct RangeNarrowing<const AXIS: usize> {
    start: usize,
    end: usize,
}

impl<const AXIS: usize> From<(Axis<AXIS>, core::ops::Range<usize>)> for RangeNarrowing<AXIS> {
    fn from((_, range): (Axis<AXIS>, core::ops::Range<usize>)) -> Self {
        RangeNarrowing { start: range.start, end: range.end }
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S, K, const AXIS: usize> UnaryRule<Tensor<T, S, K>> for RangeNarrowing<AXIS>
where
    S: HasAxis<AXIS>,
    K: Storage<T, S> + Storage<T, S::Replaced<Dyn>>,
{
    type Output = Tensor<T, S::Replaced<Dyn>, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.narrow_range(Axis::<AXIS>, self.start..self.end)
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.narrow_range(Axis::<AXIS>, self.start..self.end)
    }
    #[inline(always)]
    fn pull(&self, x: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        narrow_range_pullback::<AXIS, _, _, _>(x, self.start..self.end, y_bar)
    }
}

/// The axes in a new order (`x.permute(Axes::<2, 0, 1>)`, the order `P`): ẏ is ẋ
/// permuted the same way; x̄ is ȳ with its axes put back.
#[derive(Clone, Copy, Debug, Default)]
pub struct AxisPermutation<P>(P);

impl<P> From<P> for AxisPermutation<P> {
    fn from(axes: P) -> Self {
        AxisPermutation(axes)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, P: PermutesAxes<S>, K> UnaryRule<Tensor<T, S, K>> for AxisPermutation<P>
where
    K: Storage<T, S> + Storage<T, P::Output>,
{
    type Output = Tensor<T, P::Output, K>;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.permute(self.0)
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.permute(self.0)
    }
    #[inline(always)]
    fn pull(&self, _: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        permute_pullback(self.0, y_bar)
    }
}

/// The `LEN` entries from `START` along `AXIS` (`x.narrow::<AXIS, START, LEN>()`):
/// ẏ = ẋ narrowed the same way; x̄ = ȳ in the slice, 0 elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Narrowing<const AXIS: usize, const START: usize, const LEN: usize>;

#[diagnostic::do_not_recommend]
impl<T: Scalar, S, K, const AXIS: usize, const START: usize, const LEN: usize> UnaryRule<Tensor<T, S, K>>
    for Narrowing<AXIS, START, LEN>
where
    S: HasAxis<AXIS>,
    S::Axis: FitsSlice<START, LEN>,
    K: Storage<T, S> + Storage<T, S::Replaced<Const<LEN>>>,
{
    type Output = Tensor<T, S::Replaced<Const<LEN>>, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.narrow::<AXIS, START, LEN>()
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.narrow::<AXIS, START, LEN>()
    }
    #[inline(always)]
    fn pull(&self, x: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        narrow_pullback::<AXIS, START, LEN, _, _, _>(x, y_bar)
    }
}

axis_rule_with_output_shape! {
    /// Two tensors joined along `AXIS` (`a.concat(Axis::<AXIS>, &b)`) into one whose
    /// length there is `C` (from the result's use, as the method's): ẏ joins ȧ and
    /// ḃ; (ā, b̄) are ȳ's two parts.
    Concatenation<C>
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, SA, SB, C, K, const AXIS: usize> BinaryRule<Tensor<T, SA, K>, Tensor<T, SB, K>>
    for Concatenation<AXIS, C>
where
    SB: HasAxis<AXIS>,
    SA: HasAxis<AXIS, Replaced<SB::Axis> = SB>,
    SA::Axis: AddsUpTo<SB::Axis, C>,
    C: Dim,
    K: Storage<T, SA> + Storage<T, SB> + Storage<T, SA::Replaced<C>>,
{
    type Output = Tensor<T, SA::Replaced<C>, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, SA, K>, b: &Tensor<T, SB, K>) -> Self::Output {
        a.concat(Axis::<AXIS>, b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        a_dot: &Tensor<T, SA, K>,
    ) -> Self::Output {
        a_dot.concat(Axis::<AXIS>, &Tensor::full_shaped(b.shape(), T::zero()))
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (a, _, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        b_dot: &Tensor<T, SB, K>,
    ) -> Self::Output {
        Tensor::full_shaped(a.shape(), T::zero()).concat(Axis::<AXIS>, b_dot)
    }
    #[inline(always)]
    fn push_both(
        &self,
        _: Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        a_dot: &Tensor<T, SA, K>,
        b_dot: &Tensor<T, SB, K>,
    ) -> Self::Output {
        a_dot.concat(Axis::<AXIS>, b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        args: Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, SA, K> {
        self.pull_both(args, y_bar).0
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        args: Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, SB, K> {
        self.pull_both(args, y_bar).1
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> (Tensor<T, SA, K>, Tensor<T, SB, K>) {
        concat_pullback::<AXIS, T, SA, SB::Axis, C, K>(a, b, y_bar)
    }
}

/// The rule of an axis reduction or normalisation `$method` of `$rule`, for tensors of
/// `$scalar`s (`Scalar` for the linear sums and means, `RealScalar` for the rest).
macro_rules! axis_rule_impl {
    ($scalar:ident: $rule:ident, $method:ident, $output:ty, |$x:ident, $y:ident, $x_dot:ident| $push:expr, |$xp:ident, $yp:ident, $y_bar:ident| $pull:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: $scalar, S: HasAxis<AXIS>, K, const AXIS: usize> UnaryRule<Tensor<T, S, K>> for $rule<AXIS>
        where
            K: Storage<T, S> + Storage<T, S::Removed>,
        {
            type Output = $output;
            #[inline(always)]
            fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
                x.$method(Axis::<AXIS>)
            }
            #[inline(always)]
            fn push(
                &self,
                $x: &Tensor<T, S, K>,
                $y: &Self::Output,
                $x_dot: &Tensor<T, S, K>,
            ) -> Self::Output {
                $push
            }
            #[inline(always)]
            fn pull(
                &self,
                $xp: &Tensor<T, S, K>,
                $yp: &Self::Output,
                $y_bar: &Self::Output,
            ) -> Tensor<T, S, K> {
                $pull
            }
        }
    };
}

axis_rule_impl!(Scalar: SumAxis, sum_axis, Tensor<T, S::Removed, K>,
    |_x, _y, x_dot| x_dot.sum_axis(Axis::<AXIS>),
    |x, _y, y_bar| sum_axis_pullback::<AXIS, _, _, _>(x, y_bar));
axis_rule_impl!(Scalar: MeanAxis, mean_axis, Tensor<T, S::Removed, K>,
    |_x, _y, x_dot| x_dot.mean_axis(Axis::<AXIS>),
    |x, _y, y_bar| mean_axis_pullback::<AXIS, _, _, _>(x, y_bar));
axis_rule_impl!(RealScalar: LogSumExp, logsumexp, Tensor<T, S::Removed, K>,
    // The weights are the pullback's of ȳ = 1: softmax(x), and 0 along a line that is
    // all −∞ (whose softmax is 0/0).
    |x, y, x_dot| logsumexp_pullback::<AXIS, _, _, _>(x, &Tensor::full_shaped(y.shape(), T::one()))
        .hadamard(x_dot)
        .sum_axis(Axis::<AXIS>),
    |x, _y, y_bar| logsumexp_pullback::<AXIS, _, _, _>(x, y_bar));
#[cfg(feature = "alloc")]
axis_rule_impl!(RealScalar: MaxAxis, max_axis, Tensor<T, S::Removed, K>,
    |x, y, x_dot| max_axis_pullback::<AXIS, _, _, _>(x, &Tensor::full_shaped(y.shape(), T::one()))
        .hadamard(x_dot)
        .sum_axis(Axis::<AXIS>),
    |x, _y, y_bar| max_axis_pullback::<AXIS, _, _, _>(x, y_bar));
axis_rule_impl!(RealScalar: SoftmaxAlong, softmax, Tensor<T, S, K>,
    |_x, y, x_dot| softmax_pullback::<AXIS, _, _, _>(y, x_dot),
    |_x, y, y_bar| softmax_pullback::<AXIS, _, _, _>(y, y_bar));
axis_rule_impl!(RealScalar: LogSoftmaxAlong, log_softmax, Tensor<T, S, K>,
    |_x, y, x_dot| log_softmax_push::<AXIS, _, _, _>(y, x_dot),
    |_x, y, y_bar| log_softmax_pullback::<AXIS, _, _, _>(y, y_bar));

/// The rule of a matrix's (conjugate) transpose `$method`: linear, and its own
/// adjoint (⟨Y, Xᵀ⟩ = ⟨Yᵀ, X⟩; with conjugation under Re Σ conj(Xᵢⱼ)·Yᵢⱼ), so the
/// tangent and the cotangent both go through `$method`.
macro_rules! transposition_rule {
    ($rule:ident, $method:ident) => {
        #[diagnostic::do_not_recommend]
        impl<T: Scalar, R: Dim, C: Dim, K> UnaryRule<Tensor<T, (R, C), K>> for $rule
        where
            K: Storage<T, (R, C)> + Storage<T, (C, R)>,
        {
            type Output = Tensor<T, (C, R), K>;
            #[inline(always)]
            fn value(&self, x: &Tensor<T, (R, C), K>) -> Self::Output {
                x.$method()
            }
            #[inline(always)]
            fn push(
                &self,
                _: &Tensor<T, (R, C), K>,
                _: &Self::Output,
                x_dot: &Tensor<T, (R, C), K>,
            ) -> Self::Output {
                x_dot.$method()
            }
            #[inline(always)]
            fn pull(
                &self,
                _: &Tensor<T, (R, C), K>,
                _: &Self::Output,
                y_bar: &Self::Output,
            ) -> Tensor<T, (R, C), K> {
                y_bar.$method()
            }
        }
    };
}

transposition_rule!(Transposition, transpose);
transposition_rule!(ConjugateTransposition, conj_transpose);

/// The rule of a matrix product `$rule` through its product trait: Y = op(A, B) is
/// bilinear, so Ẏ = op(Ȧ, B) + op(A, Ḃ), and Ā, B̄ come from the trait's pullback
/// (which writes or adds in place).
macro_rules! product_rule {
    ($rule:ident, $Product:ident, $try:ident, $pullback:ident) => {
        #[diagnostic::do_not_recommend]
        impl<T, SA, SB, K> BinaryRule<Tensor<T, SA, K>, Tensor<T, SB, K>> for $rule
        where
            T: Scalar,
            SA: Shape,
            SB: Shape,
            K: Storage<T, SA> + Storage<T, SB>,
            Tensor<T, SA, K>: $Product<Tensor<T, SB, K>>,
            <Tensor<T, SA, K> as $Product<Tensor<T, SB, K>>>::Output:
                Differentiable<Tangent = <Tensor<T, SA, K> as $Product<Tensor<T, SB, K>>>::Output>,
        {
            type Output = <Tensor<T, SA, K> as $Product<Tensor<T, SB, K>>>::Output;
            #[inline(always)]
            #[track_caller]
            fn value(&self, a: &Tensor<T, SA, K>, b: &Tensor<T, SB, K>) -> Self::Output {
                or_panic(a.$try(b))
            }
            #[inline(always)]
            #[track_caller]
            fn push_lhs(
                &self,
                (_, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                a_dot: &Tensor<T, SA, K>,
            ) -> Self::Output {
                or_panic(a_dot.$try(b))
            }
            #[inline(always)]
            #[track_caller]
            fn push_rhs(
                &self,
                (a, _, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                b_dot: &Tensor<T, SB, K>,
            ) -> Self::Output {
                or_panic(a.$try(b_dot))
            }
            #[inline(always)]
            fn pull_lhs(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
            ) -> Tensor<T, SA, K> {
                let mut a_bar = Tensor::zeros_shaped(a.shape());
                a.$pullback(b, y_bar, Some((&mut a_bar, Write::Overwrite)), None);
                a_bar
            }
            #[inline(always)]
            fn pull_rhs(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
            ) -> Tensor<T, SB, K> {
                let mut b_bar = Tensor::zeros_shaped(b.shape());
                a.$pullback(b, y_bar, None, Some((&mut b_bar, Write::Overwrite)));
                b_bar
            }
            #[inline(always)]
            fn pull_both(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
            ) -> (Tensor<T, SA, K>, Tensor<T, SB, K>) {
                let (mut a_bar, mut b_bar) =
                    (Tensor::zeros_shaped(a.shape()), Tensor::zeros_shaped(b.shape()));
                a.$pullback(
                    b,
                    y_bar,
                    Some((&mut a_bar, Write::Overwrite)),
                    Some((&mut b_bar, Write::Overwrite)),
                );
                (a_bar, b_bar)
            }
            #[inline(always)]
            fn pull_lhs_into(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
                a_bar: &mut Tensor<T, SA, K>,
                write: Write,
            ) {
                a.$pullback(b, y_bar, Some((a_bar, write)), None);
            }
            #[inline(always)]
            fn pull_rhs_into(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
                b_bar: &mut Tensor<T, SB, K>,
                write: Write,
            ) {
                a.$pullback(b, y_bar, None, Some((b_bar, write)));
            }
            #[inline(always)]
            fn pull_both_into(
                &self,
                (a, b, _): Operands<'_, Tensor<T, SA, K>, Tensor<T, SB, K>, Self::Output>,
                y_bar: &Self::Output,
                a_bar: (&mut Tensor<T, SA, K>, Write),
                b_bar: (&mut Tensor<T, SB, K>, Write),
            ) {
                a.$pullback(b, y_bar, Some(a_bar), Some(b_bar));
            }
        }
    };
}

product_rule!(MatrixProduct, MatMul, try_matmul, matmul_pullback);
product_rule!(MatrixTransposedProduct, MatMulTransposed, try_matmul_transposed, matmul_transposed_pullback);
product_rule!(TransposedMatrixProduct, TransposedMatMul, try_transposed_matmul, transposed_matmul_pullback);

/// The rule of a linear system `$rule` that reads its matrix as `$system` does:
/// x = A⁻¹b, ẋ = A⁻¹(ḃ − Ȧ·x), b̄ = A⁻ᵀx̄, Ā = −b̄·xᵀ (on the entries read); both
/// cotangents from one solve with Aᵀ.
macro_rules! system_rule {
    ($rule:ident, $system:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: Scalar, N: Dim, B: RightHandSide<N>, K> BinaryRule<Tensor<T, (N, N), K>, Tensor<T, B, K>>
            for $rule
        where
            K: Storage<T, (N, N)> + Storage<T, B>,
        {
            type Output = Tensor<T, B, K>;
            #[inline(always)]
            #[track_caller]
            fn value(&self, a: &Tensor<T, (N, N), K>, b: &Tensor<T, B, K>) -> Self::Output {
                or_panic(solve_system($system, a, b))
            }
            #[inline(always)]
            fn push_lhs(
                &self,
                (a, _, x): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                a_dot: &Tensor<T, (N, N), K>,
            ) -> Self::Output {
                system_push($system, a, x, Some(a_dot), None)
            }
            #[inline(always)]
            fn push_rhs(
                &self,
                (a, _, x): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                b_dot: &Self::Output,
            ) -> Self::Output {
                system_push($system, a, x, None, Some(b_dot))
            }
            #[inline(always)]
            fn push_both(
                &self,
                (a, _, x): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                a_dot: &Tensor<T, (N, N), K>,
                b_dot: &Self::Output,
            ) -> Self::Output {
                system_push($system, a, x, Some(a_dot), Some(b_dot))
            }
            #[inline(always)]
            fn pull_lhs(
                &self,
                (a, _, x): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                x_bar: &Self::Output,
            ) -> Tensor<T, (N, N), K> {
                system_pullback($system, a, x, x_bar).0
            }
            #[inline(always)]
            fn pull_rhs(
                &self,
                (a, ..): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                x_bar: &Self::Output,
            ) -> Self::Output {
                adjoint_system_solve($system, a, x_bar)
            }
            #[inline(always)]
            fn pull_both(
                &self,
                (a, _, x): Operands<'_, Tensor<T, (N, N), K>, Tensor<T, B, K>, Self::Output>,
                x_bar: &Self::Output,
            ) -> (Tensor<T, (N, N), K>, Self::Output) {
                system_pullback($system, a, x, x_bar)
            }
        }
    };
}

system_rule!(LinearSolve, System::General);
system_rule!(LowerTriangularSolve, System::Triangular(Triangle::Lower));
system_rule!(UpperTriangularSolve, System::Triangular(Triangle::Upper));

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: NoFewerRowsThan<N>, N: Dim, B: RightHandSide<M>, K>
    BinaryRule<Tensor<T, (M, N), K>, Tensor<T, B, K>> for LeastSquares
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    type Output = Tensor<T, LeastSquaresSolution<B, M, N>, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, (M, N), K>, b: &Tensor<T, B, K>) -> Self::Output {
        a.least_squares(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (a, b, x): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        a_dot: &Tensor<T, (M, N), K>,
    ) -> Self::Output {
        least_squares_push(a, b, x, Some(a_dot), None)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (a, b, x): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        b_dot: &Tensor<T, B, K>,
    ) -> Self::Output {
        least_squares_push(a, b, x, None, Some(b_dot))
    }
    #[inline(always)]
    fn push_both(
        &self,
        (a, b, x): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        a_dot: &Tensor<T, (M, N), K>,
        b_dot: &Tensor<T, B, K>,
    ) -> Self::Output {
        least_squares_push(a, b, x, Some(a_dot), Some(b_dot))
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (a, b, x): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        x_bar: &Self::Output,
    ) -> Tensor<T, (M, N), K> {
        least_squares_pullback(a, b, x, x_bar).0
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        x_bar: &Self::Output,
    ) -> Tensor<T, B, K> {
        least_squares_rhs_pullback(a, b, x_bar)
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, x): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, B, K>, Self::Output>,
        x_bar: &Self::Output,
    ) -> (Tensor<T, (M, N), K>, Tensor<T, B, K>) {
        least_squares_pullback(a, b, x, x_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: NoFewerRowsThan<N>, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N, N)>>
    UnaryRule<Tensor<T, (M, N), K>> for QrDecomposition
{
    type Output = (Tensor<T, (M, N), K>, Tensor<T, (N, N), K>);
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, (M, N), K>) -> Self::Output {
        a.qr()
    }
    #[inline(always)]
    fn push(
        &self,
        _: &Tensor<T, (M, N), K>,
        (q, r): &Self::Output,
        a_dot: &Tensor<T, (M, N), K>,
    ) -> Self::Output {
        qr_push(q, r, a_dot)
    }
    #[inline(always)]
    fn pull(
        &self,
        _: &Tensor<T, (M, N), K>,
        (q, r): &Self::Output,
        (q_bar, r_bar): &Self::Output,
    ) -> Tensor<T, (M, N), K> {
        qr_pullback(q, r, q_bar, r_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: NoFewerRowsThan<N>, N: Dim, K> UnaryRule<Tensor<T, (M, N), K>> for SingularValues
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    type Output = Tensor<T::Real, (N,), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, (M, N), K>) -> Self::Output {
        a.singular_values()
    }
    #[inline(always)]
    fn push(&self, a: &Tensor<T, (M, N), K>, _: &Self::Output, a_dot: &Tensor<T, (M, N), K>) -> Self::Output {
        singular_values_push(a, a_dot)
    }
    #[inline(always)]
    fn pull(
        &self,
        a: &Tensor<T, (M, N), K>,
        _: &Self::Output,
        sigma_bar: &Self::Output,
    ) -> Tensor<T, (M, N), K> {
        singular_values_pullback(a, sigma_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: NoFewerRowsThan<N>, N: Dim, K> UnaryRule<Tensor<T, (M, N), K>>
    for SingularValueDecomposition
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    type Output = (Tensor<T, (M, N), K>, Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>);
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, (M, N), K>) -> Self::Output {
        a.svd()
    }
    #[inline(always)]
    fn push(
        &self,
        _: &Tensor<T, (M, N), K>,
        (u, sigma, v_h): &Self::Output,
        a_dot: &Tensor<T, (M, N), K>,
    ) -> Self::Output {
        svd_push(u, sigma, v_h, a_dot)
    }
    #[inline(always)]
    fn pull(
        &self,
        _: &Tensor<T, (M, N), K>,
        (u, sigma, v_h): &Self::Output,
        (u_bar, sigma_bar, v_h_bar): &Self::Output,
    ) -> Tensor<T, (M, N), K> {
        svd_pullback(u, sigma, v_h, u_bar, sigma_bar, v_h_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>> UnaryRule<Tensor<T, (M, N), K>>
    for PseudoInverse
{
    type Output = Tensor<T, (N, M), K>;
    #[inline(always)]
    fn value(&self, a: &Tensor<T, (M, N), K>) -> Self::Output {
        a.pseudo_inverse()
    }
    #[inline(always)]
    fn push(&self, a: &Tensor<T, (M, N), K>, y: &Self::Output, a_dot: &Tensor<T, (M, N), K>) -> Self::Output {
        pseudo_inverse_push(a, y, a_dot)
    }
    #[inline(always)]
    fn pull(&self, a: &Tensor<T, (M, N), K>, y: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (M, N), K> {
        pseudo_inverse_pullback(a, y, y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>> UnaryRule<Tensor<T, (N, N), K>>
    for Diagonal
{
    type Output = Tensor<T, (N,), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Tensor<T, (N, N), K>) -> Self::Output {
        a.diagonal()
    }
    #[inline(always)]
    #[track_caller]
    fn push(&self, a: &Tensor<T, (N, N), K>, _: &Self::Output, a_dot: &Tensor<T, (N, N), K>) -> Self::Output {
        or_panic(a.check_same_shape(a_dot, "diagonal"));
        a_dot.diagonal()
    }
    #[inline(always)]
    fn pull(&self, _: &Tensor<T, (N, N), K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (N, N), K> {
        y_bar.diagonal_matrix()
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, N: Dim, K: Storage<T, (N,)> + Storage<T, (N, N)>> UnaryRule<Tensor<T, (N,), K>>
    for DiagonalMatrix
{
    type Output = Tensor<T, (N, N), K>;
    #[inline(always)]
    fn value(&self, v: &Tensor<T, (N,), K>) -> Self::Output {
        v.diagonal_matrix()
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, (N,), K>, _: &Self::Output, v_dot: &Tensor<T, (N,), K>) -> Self::Output {
        v_dot.diagonal_matrix()
    }
    #[inline(always)]
    #[track_caller]
    fn pull(&self, _: &Tensor<T, (N,), K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (N,), K> {
        y_bar.diagonal()
    }
}

/// The rule of a function of one square matrix of `$scalar`s, `$rule`: `$value` its
/// value, `$push` its tangent from (A, Y, Ȧ), `$pull` its cotangent from (A, Y, Ȳ);
/// `$storage`, the storage its output needs besides the matrix's.
macro_rules! square_matrix_rule {
    ($rule:ident -> $Output:ty, $scalar:ident, [$($storage:path),*], $value:expr, $push:expr, $pull:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: $scalar, N: Dim, K: Storage<T, (N, N)> $(+ $storage)*> UnaryRule<Tensor<T, (N, N), K>>
            for $rule
        {
            type Output = $Output;
            #[inline(always)]
            #[track_caller]
            fn value(&self, a: &Tensor<T, (N, N), K>) -> Self::Output {
                $value(a)
            }
            #[inline(always)]
            fn push(
                &self,
                a: &Tensor<T, (N, N), K>,
                y: &Self::Output,
                a_dot: &Tensor<T, (N, N), K>,
            ) -> Self::Output {
                $push(a, y, a_dot)
            }
            #[inline(always)]
            fn pull(
                &self,
                a: &Tensor<T, (N, N), K>,
                y: &Self::Output,
                y_bar: &Self::Output,
            ) -> Tensor<T, (N, N), K> {
                $pull(a, y, y_bar)
            }
        }
    };
}

square_matrix_rule!(
    MatrixInverse -> Tensor<T, (N, N), K>,
    Scalar,
    [],
    Tensor::inverse,
    |_, y, a_dot| inverse_push(y, a_dot),
    |_, y, y_bar| inverse_pullback(y, y_bar)
);
square_matrix_rule!(
    SymmetricEigenvectors -> Tensor<T, (N, N), K>,
    RealScalar,
    [],
    Tensor::symmetric_eigenvectors,
    |a, v, a_dot| symmetric_eigenvectors_push(a, v, a_dot),
    |a, v, v_bar| symmetric_eigenvectors_pullback(a, v, v_bar)
);
square_matrix_rule!(
    SymmetricEigendecomposition -> (Tensor<T, (N,), K>, Tensor<T, (N, N), K>),
    RealScalar,
    [Storage<T, (N,)>],
    Tensor::symmetric_eigen,
    |_, y: &(Tensor<T, (N,), K>, Tensor<T, (N, N), K>), a_dot| symmetric_eigen_push(&y.0, &y.1, a_dot),
    |_, y: &(Tensor<T, (N,), K>, Tensor<T, (N, N), K>), bars: &(Tensor<T, (N,), K>, Tensor<T, (N, N), K>)| {
        symmetric_eigen_pullback(&y.0, &y.1, &bars.0, &bars.1)
    }
);
square_matrix_rule!(
    HermitianEigenvalues -> Tensor<T::Real, (N,), K>,
    ComplexScalar,
    [Storage<T, (N,)>, Storage<T::Real, (N,)>],
    Tensor::hermitian_eigenvalues,
    |a, _, a_dot| hermitian_eigenvalues_push(a, a_dot),
    |a, _, y_bar| hermitian_eigenvalues_pullback(a, y_bar)
);
square_matrix_rule!(
    HermitianEigendecomposition -> (Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>),
    ComplexScalar,
    [Storage<T, (N,)>, Storage<T::Real, (N,)>],
    Tensor::hermitian_eigen,
    |_, y: &(Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>), a_dot| hermitian_eigen_push(&y.0, &y.1, a_dot),
    |_, y: &(Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>), bars: &(Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>)| {
        hermitian_eigen_pullback(&y.0, &y.1, &bars.0, &bars.1)
    }
);
square_matrix_rule!(
    MatrixExponential -> Tensor<T, (N, N), K>,
    Scalar,
    [],
    Tensor::matrix_exp,
    |a, _, a_dot| matrix_exp_push(a, a_dot),
    |a, _, y_bar| matrix_exp_pullback(a, y_bar)
);
square_matrix_rule!(
    Determinant -> T,
    Scalar,
    [],
    Tensor::determinant,
    |a, y: &T, a_dot| determinant_push(a, *y, a_dot),
    |a, y: &T, y_bar: &T| determinant_pullback(a, *y, *y_bar)
);
square_matrix_rule!(
    LogAbsDeterminant -> T::Real,
    Scalar,
    [],
    Tensor::log_abs_determinant,
    |a, _, a_dot| log_abs_determinant_push(a, a_dot),
    |a, _, y_bar: &T::Real| log_abs_determinant_pullback(a, *y_bar)
);
square_matrix_rule!(
    CholeskyFactor -> Tensor<T, (N, N), K>,
    Scalar,
    [],
    Tensor::cholesky,
    |_, l, a_dot| cholesky_push(l, a_dot),
    |_, l, l_bar| cholesky_pullback(l, l_bar)
);
square_matrix_rule!(
    SymmetricEigenvalues -> Tensor<T, (N,), K>,
    RealScalar,
    [Storage<T, (N,)>],
    Tensor::symmetric_eigenvalues,
    |a, _, a_dot| symmetric_eigenvalues_push(a, a_dot),
    |a, _, y_bar| symmetric_eigenvalues_pullback(a, y_bar)
);

#[diagnostic::do_not_recommend]
impl<T: Scalar, R: Dim, C: Dim, K> BinaryRule<Tensor<T, (R, C), K>, Tensor<T, (C,), K>> for RowAddition
where
    K: Storage<T, (R, C)> + Storage<T, (C,)>,
{
    type Output = Tensor<T, (R, C), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &Self::Output, b: &Tensor<T, (C,), K>) -> Self::Output {
        x.add_rows(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        x_dot: &Self::Output,
    ) -> Self::Output {
        x_dot.clone()
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (x, _, _): Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        b_dot: &Tensor<T, (C,), K>,
    ) -> Self::Output {
        Self::Output::zeros_shaped(x.shape()).add_rows(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Self::Output {
        y_bar.clone()
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (C,), K> {
        y_bar.sum_axis(Axis::<0>)
    }
}

/// The rule of a product by a vector along one axis (`x.mul_rows(&g)`,
/// `x.mul_channels(&g)`): bilinear, so ẏ = ẋ∘g + x∘ġ, with x̄ and ḡ from `$pullback`.
macro_rules! vector_product_rule {
    ($rule:ident, [$($generics:tt)*] $input:ty, $vector:ty, where [$($bounds:tt)*], $method:ident, $pullback:ident) => {
        #[diagnostic::do_not_recommend]
        impl<$($generics)*> BinaryRule<$input, $vector> for $rule
        where
            $($bounds)*
        {
            type Output = $input;
            #[inline(always)]
            #[track_caller]
            fn value(&self, x: &Self::Output, g: &$vector) -> Self::Output {
                x.$method(g)
            }
            #[inline(always)]
            fn push_lhs(&self, (_, g, _): Operands<'_, Self::Output, $vector, Self::Output>, x_dot: &Self::Output) -> Self::Output {
                x_dot.$method(g)
            }
            #[inline(always)]
            fn push_rhs(&self, (x, _, _): Operands<'_, Self::Output, $vector, Self::Output>, g_dot: &$vector) -> Self::Output {
                x.$method(g_dot)
            }
            #[inline(always)]
            fn pull_lhs(&self, (x, g, _): Operands<'_, Self::Output, $vector, Self::Output>, y_bar: &Self::Output) -> Self::Output {
                $pullback(x, g, y_bar).0
            }
            #[inline(always)]
            fn pull_rhs(&self, (x, g, _): Operands<'_, Self::Output, $vector, Self::Output>, y_bar: &Self::Output) -> $vector {
                $pullback(x, g, y_bar).1
            }
        }
    };
}

vector_product_rule!(
    RowMultiplication, [T: Scalar, R: Dim, C: Dim, K] Tensor<T, (R, C), K>, Tensor<T, (C,), K>,
    where [K: Storage<T, (R, C)> + Storage<T, (C,)>], mul_rows, mul_rows_pullback
);

#[diagnostic::do_not_recommend]
impl<T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K>
    BinaryRule<Tensor<T, (B, C, H, W), K>, Tensor<T, (C,), K>> for ChannelAddition
where
    K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>,
{
    type Output = Tensor<T, (B, C, H, W), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &Self::Output, b: &Tensor<T, (C,), K>) -> Self::Output {
        x.add_channels(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        x_dot: &Self::Output,
    ) -> Self::Output {
        x_dot.clone()
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (x, _, _): Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        b_dot: &Tensor<T, (C,), K>,
    ) -> Self::Output {
        Tensor::<T, _, K>::zeros_shaped(x.shape()).add_channels(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Self::Output {
        y_bar.clone()
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        _: Operands<'_, Self::Output, Tensor<T, (C,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (C,), K> {
        add_channels_pullback(y_bar).1
    }
}

vector_product_rule!(
    ChannelMultiplication, [T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K]
    Tensor<T, (B, C, H, W), K>, Tensor<T, (C,), K>,
    where [K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>], mul_channels, mul_channels_pullback
);

/// A batch of images.
type Images<T, B, const C: usize, const H: usize, const W: usize, K> =
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>;
/// Convolution kernels `[O, C, KH, KW]`.
type Kernels<T, const O: usize, const C: usize, const KH: usize, const KW: usize, K> =
    Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>;

#[diagnostic::do_not_recommend]
impl<
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
    const S: usize,
    K,
> BinaryRule<Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>> for Convolution<P, HO, WO, S>
where
    Const<H>: ConvolvesTo<KH, P, HO, S>,
    Const<W>: ConvolvesTo<KW, P, WO, S>,
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
        + Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
        + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
{
    type Output = Images<T, B, O, HO, WO, K>;
    #[inline(always)]
    fn value(&self, x: &Images<T, B, C, H, W, K>, w: &Kernels<T, O, C, KH, KW, K>) -> Self::Output {
        x.conv2d_strided(w, Stride::<S>, Padding::<P>)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, w, _): Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        x_dot: &Images<T, B, C, H, W, K>,
    ) -> Self::Output {
        x_dot.conv2d_strided(w, Stride::<S>, Padding::<P>)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (x, _, _): Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        w_dot: &Kernels<T, O, C, KH, KW, K>,
    ) -> Self::Output {
        x.conv2d_strided(w_dot, Stride::<S>, Padding::<P>)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (x, w, _): Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Images<T, B, C, H, W, K> {
        conv2d_pullback::<S, P, _, _, C, H, W, O, KH, KW, HO, WO, _>(x, w, y_bar, (true, false)).0
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (x, w, _): Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Kernels<T, O, C, KH, KW, K> {
        conv2d_pullback::<S, P, _, _, C, H, W, O, KH, KW, HO, WO, _>(x, w, y_bar, (false, true)).1
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (x, w, _): Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> (Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>) {
        conv2d_pullback::<S, P, _, _, C, H, W, O, KH, KW, HO, WO, _>(x, w, y_bar, (true, true))
    }
    #[inline(always)]
    fn pull_both_into(
        &self,
        args: Operands<'_, Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>, Self::Output>,
        y_bar: &Self::Output,
        (x_bar, x_write): (&mut Images<T, B, C, H, W, K>, Write),
        (w_bar, w_write): (&mut Kernels<T, O, C, KH, KW, K>, Write),
    ) {
        let (x_cotangent, w_cotangent) = self.pull_both(args, y_bar);
        write_tangent(x_bar, x_cotangent, x_write);
        write_tangent(w_bar, w_cotangent, w_write);
    }
}

/// The rule of a pooling on images from its value, its push and its pull, each an
/// expression of `x` (the images), `x_dot` or `y_bar`, and `pooling` (the window,
/// stride and padding).
macro_rules! pooling_rule {
    (
        $rule:ident,
        value |$x:ident, $pooling:ident| $value:expr,
        push |$push_x:pat_param, $x_dot:ident| $push:expr,
        pull |$pull_x:pat_param, $y_bar:ident| $pull:expr $(,)?
    ) => {
        #[diagnostic::do_not_recommend]
        impl<
            T: RealScalar,
            B: Dim,
            const C: usize,
            const H: usize,
            const W: usize,
            const KS: usize,
            const HO: usize,
            const WO: usize,
            const P: usize,
            const S: usize,
            K,
        > UnaryRule<Images<T, B, C, H, W, K>> for $rule<KS, HO, WO, P, S>
        where
            Const<H>: PoolsTo<KS, HO, P, S>,
            Const<W>: PoolsTo<KS, WO, P, S>,
            K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
                + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
        {
            type Output = Images<T, B, C, HO, WO, K>;
            #[inline(always)]
            fn value(&self, $x: &Images<T, B, C, H, W, K>) -> Self::Output {
                let $pooling = (Window::<KS>, Stride::<S>, Padding::<P>);
                $value
            }
            #[inline(always)]
            fn push(
                &self,
                $push_x: &Images<T, B, C, H, W, K>,
                _: &Self::Output,
                $x_dot: &Images<T, B, C, H, W, K>,
            ) -> Self::Output {
                let $pooling = (Window::<KS>, Stride::<S>, Padding::<P>);
                $push
            }
            #[inline(always)]
            fn pull(
                &self,
                $pull_x: &Images<T, B, C, H, W, K>,
                _: &Self::Output,
                $y_bar: &Self::Output,
            ) -> Images<T, B, C, H, W, K> {
                let $pooling = (Window::<KS>, Stride::<S>, Padding::<P>);
                $pull
            }
        }
    };
}

pooling_rule!(
    MaxPooling,
    value | x,
    pooling | x.max_pool2d_strided(pooling.0, pooling.1, pooling.2),
    push | x,
    x_dot | max_pool2d_push(x, x_dot, pooling),
    pull | x,
    y_bar | max_pool2d_pullback(x, y_bar, pooling),
);

pooling_rule!(
    AveragePooling,
    value | x,
    pooling | x.avg_pool2d_strided(pooling.0, pooling.1, pooling.2),
    push | _,
    x_dot | x_dot.avg_pool2d_strided(pooling.0, pooling.1, pooling.2),
    pull | _,
    y_bar | avg_pool2d_pullback(y_bar, pooling),
);

#[diagnostic::do_not_recommend]
impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, const F: usize, K>
    UnaryRule<Images<T, B, C, H, W, K>> for ImageFlattening<F>
where
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<F>)>,
{
    type Output = Tensor<T, (B, Const<F>), K>;
    #[inline(always)]
    fn value(&self, x: &Images<T, B, C, H, W, K>) -> Self::Output {
        x.flatten_images::<F>()
    }
    #[inline(always)]
    fn push(
        &self,
        _: &Images<T, B, C, H, W, K>,
        _: &Self::Output,
        x_dot: &Images<T, B, C, H, W, K>,
    ) -> Self::Output {
        x_dot.flatten_images::<F>()
    }
    #[inline(always)]
    fn pull(
        &self,
        x: &Images<T, B, C, H, W, K>,
        _: &Self::Output,
        y_bar: &Self::Output,
    ) -> Images<T, B, C, H, W, K> {
        reshape_pullback(x, y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>> UnaryRule<Tensor<T, (R, C), K>>
    for RowSelection
{
    type Output = Tensor<T, (C,), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, m: &Tensor<T, (R, C), K>) -> Self::Output {
        m.row(self.index)
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, (R, C), K>, _: &Self::Output, m_dot: &Tensor<T, (R, C), K>) -> Self::Output {
        m_dot.row(self.index)
    }
    #[inline(always)]
    fn pull(&self, m: &Tensor<T, (R, C), K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (R, C), K> {
        row_pullback(m.shape(), self.index, y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (R,)>> UnaryRule<Tensor<T, (R, C), K>>
    for ColumnSelection
{
    type Output = Tensor<T, (R,), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, m: &Tensor<T, (R, C), K>) -> Self::Output {
        m.column(self.index)
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, (R, C), K>, _: &Self::Output, m_dot: &Tensor<T, (R, C), K>) -> Self::Output {
        m_dot.column(self.index)
    }
    #[inline(always)]
    fn pull(&self, m: &Tensor<T, (R, C), K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (R, C), K> {
        column_pullback(m.shape(), self.index, y_bar)
    }
}

#[cfg(feature = "alloc")]
#[diagnostic::do_not_recommend]
impl<T: Scalar, R: Dim, C: Dim, K> UnaryRule<Tensor<T, (R, C), K>> for RowGathering<'_>
where
    K: Storage<T, (R, C)> + Storage<T, (Dyn, C)>,
{
    type Output = Tensor<T, (Dyn, C), K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, table: &Tensor<T, (R, C), K>) -> Self::Output {
        table.gather_rows(self.indices)
    }
    #[inline(always)]
    fn push(
        &self,
        _: &Tensor<T, (R, C), K>,
        _: &Self::Output,
        table_dot: &Tensor<T, (R, C), K>,
    ) -> Self::Output {
        table_dot.gather_rows(self.indices)
    }
    #[inline(always)]
    fn pull(
        &self,
        table: &Tensor<T, (R, C), K>,
        _: &Self::Output,
        y_bar: &Self::Output,
    ) -> Tensor<T, (R, C), K> {
        gather_rows_pullback(table.shape(), self.indices, y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, R: Dim, C: Dim, K> UnaryRule<Tensor<T, (R, C), K>> for RowNormalization<T>
where
    K: Storage<T, (R, C)> + Storage<T, (R,)>,
{
    type Output = Tensor<T, (R, C), K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.normalize_rows(self.epsilon)
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        normalize_rows_pullback(y, &x.row_scales(self.epsilon), x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        normalize_rows_pullback(y, &x.row_scales(self.epsilon), y_bar)
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, const G: usize, K>
    UnaryRule<Images<T, B, C, H, W, K>> for GroupNormalization<G, T>
where
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<G>)>,
{
    type Output = Images<T, B, C, H, W, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.normalize_groups(Groups::<G>, self.epsilon)
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        normalize_groups_pullback(y, &x.group_scales(Groups::<G>, self.epsilon), x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        normalize_groups_pullback(y, &x.group_scales(Groups::<G>, self.epsilon), y_bar)
    }
}

/// y = a ⊙ b: ẏ = ȧ ⊙ b + a ⊙ ḃ, ā = ȳ ⊙ conj(b), b̄ = ȳ ⊙ conj(a).
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, Tensor<T, S, K>> for HadamardProduct {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    #[track_caller]
    fn value(&self, a: &Self::Output, b: &Self::Output) -> Self::Output {
        a.hadamard(b)
    }
    #[inline(always)]
    fn push_lhs(&self, (_, b, _): Same<'_, Self::Output>, a_dot: &Self::Output) -> Self::Output {
        a_dot.hadamard(b)
    }
    #[inline(always)]
    fn push_rhs(&self, (a, _, _): Same<'_, Self::Output>, b_dot: &Self::Output) -> Self::Output {
        a.hadamard(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(&self, (_, b, _): Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.zip_map(b, |g, b| g * b.conj())
    }
    #[inline(always)]
    fn pull_rhs(&self, (a, _, _): Same<'_, Self::Output>, y_bar: &Self::Output) -> Self::Output {
        y_bar.zip_map(a, |g, a| g * a.conj())
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, _): Same<'_, Self::Output>,
        y_bar: &Self::Output,
    ) -> (Self::Output, Self::Output) {
        hadamard_pullback(a, b, y_bar)
    }
}

/// Y = A ⊗ B: Ẏ = Ȧ ⊗ B + A ⊗ Ḃ, (Ā, B̄) from [`kron_pullback`] (the tape's).
#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, N: Dim, P: Dim, Q: Dim, MP: Dim, NQ: Dim, K>
    BinaryRule<Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>> for KroneckerProduct<MP, NQ>
where
    M: MultipliesTo<P, MP>,
    N: MultipliesTo<Q, NQ>,
    K: Storage<T, (M, N)> + Storage<T, (P, Q)> + Storage<T, (MP, NQ)>,
{
    type Output = Tensor<T, (MP, NQ), K>;
    #[inline(always)]
    fn value(&self, a: &Tensor<T, (M, N), K>, b: &Tensor<T, (P, Q), K>) -> Self::Output {
        a.kron(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, b, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>, Self::Output>,
        a_dot: &Tensor<T, (M, N), K>,
    ) -> Self::Output {
        a_dot.kron(b)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (a, _, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>, Self::Output>,
        b_dot: &Tensor<T, (P, Q), K>,
    ) -> Self::Output {
        a.kron(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (M, N), K> {
        kron_pullback(a, b, y_bar).0
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (P, Q), K> {
        kron_pullback(a, b, y_bar).1
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> (Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>) {
        kron_pullback(a, b, y_bar)
    }
}

/// Y = a ⊗ b: Ẏ = ȧ ⊗ b + a ⊗ ḃ, āᵢ = Σⱼ Ȳᵢⱼ·conj(bⱼ), b̄ⱼ = Σᵢ conj(aᵢ)·Ȳᵢⱼ (the tape's
/// pullback).
#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, N: Dim, K> BinaryRule<Tensor<T, (M,), K>, Tensor<T, (N,), K>> for OuterProduct
where
    K: Storage<T, (M,)> + Storage<T, (N,)> + Storage<T, (M, N)>,
{
    type Output = Tensor<T, (M, N), K>;
    #[inline(always)]
    fn value(&self, a: &Tensor<T, (M,), K>, b: &Tensor<T, (N,), K>) -> Self::Output {
        a.outer(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, b, _): Operands<'_, Tensor<T, (M,), K>, Tensor<T, (N,), K>, Self::Output>,
        a_dot: &Tensor<T, (M,), K>,
    ) -> Self::Output {
        a_dot.outer(b)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (a, _, _): Operands<'_, Tensor<T, (M,), K>, Tensor<T, (N,), K>, Self::Output>,
        b_dot: &Tensor<T, (N,), K>,
    ) -> Self::Output {
        a.outer(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M,), K>, Tensor<T, (N,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (M,), K> {
        outer_pullback(a, b, y_bar).0
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M,), K>, Tensor<T, (N,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> Tensor<T, (N,), K> {
        outer_pullback(a, b, y_bar).1
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, _): Operands<'_, Tensor<T, (M,), K>, Tensor<T, (N,), K>, Self::Output>,
        y_bar: &Self::Output,
    ) -> (Tensor<T, (M,), K>, Tensor<T, (N,), K>) {
        outer_pullback(a, b, y_bar)
    }
}

/// c = a × b: ċ = ȧ × b + a × ḃ, ā = conj(b) × c̄, b̄ = c̄ × conj(a).
#[derive(Clone, Copy, Debug)]
pub struct CrossProduct;

#[diagnostic::do_not_recommend]
impl<T: Scalar, D: ThreeElements, K: Storage<T, (D,)>> BinaryRule<Tensor<T, (D,), K>, Tensor<T, (D,), K>>
    for CrossProduct
{
    type Output = Tensor<T, (D,), K>;
    #[inline(always)]
    fn value(&self, a: &Self::Output, b: &Self::Output) -> Self::Output {
        a.cross(b)
    }
    #[inline(always)]
    fn push_lhs(
        &self,
        (_, b, _): Operands<'_, Self::Output, Self::Output, Self::Output>,
        a_dot: &Self::Output,
    ) -> Self::Output {
        a_dot.cross(b)
    }
    #[inline(always)]
    fn push_rhs(
        &self,
        (a, _, _): Operands<'_, Self::Output, Self::Output, Self::Output>,
        b_dot: &Self::Output,
    ) -> Self::Output {
        a.cross(b_dot)
    }
    #[inline(always)]
    fn pull_lhs(
        &self,
        (_, b, _): Operands<'_, Self::Output, Self::Output, Self::Output>,
        c_bar: &Self::Output,
    ) -> Self::Output {
        cross_lhs_cotangent(b, c_bar)
    }
    #[inline(always)]
    fn pull_rhs(
        &self,
        (a, _, _): Operands<'_, Self::Output, Self::Output, Self::Output>,
        c_bar: &Self::Output,
    ) -> Self::Output {
        cross_rhs_cotangent(a, c_bar)
    }
    #[inline(always)]
    fn pull_both(
        &self,
        (a, b, _): Operands<'_, Self::Output, Self::Output, Self::Output>,
        c_bar: &Self::Output,
    ) -> (Self::Output, Self::Output) {
        cross_pullback(a, b, c_bar)
    }
}

/// Y = \[a\]× (`a.cross_matrix()`), linear in a: Ẏ = \[ȧ\]×,
/// ā = (Ȳ₃₂ − Ȳ₂₃, Ȳ₁₃ − Ȳ₃₁, Ȳ₂₁ − Ȳ₁₂).
#[derive(Clone, Copy, Debug)]
pub struct CrossMatrix;

#[diagnostic::do_not_recommend]
impl<T: Scalar, D: ThreeElements, K: Storage<T, (D,)> + Storage<T, (D, D)>> UnaryRule<Tensor<T, (D,), K>>
    for CrossMatrix
{
    type Output = Tensor<T, (D, D), K>;
    #[inline(always)]
    fn value(&self, a: &Tensor<T, (D,), K>) -> Self::Output {
        a.cross_matrix()
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, (D,), K>, _: &Self::Output, a_dot: &Tensor<T, (D,), K>) -> Self::Output {
        a_dot.cross_matrix()
    }
    #[inline(always)]
    fn pull(&self, _: &Tensor<T, (D,), K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, (D,), K> {
        cross_matrix_pullback(y_bar)
    }
}

/// The rules of the sums of products s = Σ aᵢ·bᵢ (`dot`, real) and Σ conj(aᵢ)·bᵢ
/// (`inner`): ṡ = the product of (ȧ, b) plus that of (a, ḃ), ā = b·conj(s̄), b̄ = a·s̄
/// (conj is the identity on reals).
macro_rules! sum_of_products_rule {
    ($rule:ident, $element:ident, $product:ident, $pullback:ident) => {
        #[diagnostic::do_not_recommend]
        impl<T: $element, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, Tensor<T, S, K>> for $rule {
            type Output = T;
            #[inline(always)]
            #[track_caller]
            fn value(&self, a: &Tensor<T, S, K>, b: &Tensor<T, S, K>) -> T {
                a.$product(b)
            }
            #[inline(always)]
            fn push_lhs(
                &self,
                (_, b, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                a_dot: &Tensor<T, S, K>,
            ) -> T {
                a_dot.$product(b)
            }
            #[inline(always)]
            fn push_rhs(
                &self,
                (a, _, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                b_dot: &Tensor<T, S, K>,
            ) -> T {
                a.$product(b_dot)
            }
            #[inline(always)]
            fn pull_lhs(
                &self,
                (_, b, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                s_bar: &T,
            ) -> Tensor<T, S, K> {
                b.scale(s_bar.conj())
            }
            #[inline(always)]
            fn pull_rhs(
                &self,
                (a, _, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                s_bar: &T,
            ) -> Tensor<T, S, K> {
                a.scale(*s_bar)
            }
            #[inline(always)]
            fn pull_both(
                &self,
                (a, b, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                s_bar: &T,
            ) -> (Tensor<T, S, K>, Tensor<T, S, K>) {
                $pullback(a, b, *s_bar)
            }
            #[inline(always)]
            #[track_caller]
            fn pull_lhs_into(
                &self,
                (_, b, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                s_bar: &T,
                a_bar: &mut Tensor<T, S, K>,
                write: Write,
            ) {
                let factor = s_bar.conj();
                write_elements(write, a_bar.as_mut_slice(), b.iter().map(|&b| b * factor));
            }
            #[inline(always)]
            #[track_caller]
            fn pull_rhs_into(
                &self,
                (a, _, _): Operands<'_, Tensor<T, S, K>, Tensor<T, S, K>, T>,
                s_bar: &T,
                b_bar: &mut Tensor<T, S, K>,
                write: Write,
            ) {
                write_elements(write, b_bar.as_mut_slice(), a.iter().map(|&a| a * *s_bar));
            }
        }
    };
}

sum_of_products_rule!(DotProduct, RealDot, dot, dotu_pullback);
sum_of_products_rule!(InnerProduct, Scalar, inner, inner_pullback);

/// Which arm of an `if` or `match` ran, holding what the reverse sweep needs of it
/// (an arm of three or more is `Second(Branch<…>)`).
#[derive(Clone, Debug)]
pub enum Branch<A, B> {
    /// The first arm.
    First(A),
    /// Any later arm.
    Second(B),
}

/// The number of directions a static-mode `jacfwd` pushes in one pass (unused ones
/// are zero): eight `f64` tangents fill one AVX-512 register.
pub const JACOBIAN_LANES: usize = 8;

/// The number of cotangents a static-mode `jacrev` pulls in one sweep (unused ones
/// are zero): fewer than [`JACOBIAN_LANES`], since a pullback carries an adjoint per
/// lane for every value and outputs are usually few.
pub const REVERSE_LANES: usize = 4;

/// Jacobians of functions of one tensor, assembled from a function's pushforward or
/// pullback: ∂y/∂x typed as a tensor of shape `Out ++ In` (as [`jacfwd`] types it),
/// with no allocation on inline tensors.
///
/// [`jacfwd`]: crate::autodiff::jacfwd
pub trait Jacobian<Y>: Sized {
    /// The Jacobian's type.
    type Matrix;
    /// [`JACOBIAN_LANES`] pushforwards per pass: columns j..j + 8 are
    /// `push([eⱼ, …, eⱼ₊₇])` (directions past the last coordinate are zero).
    fn jacobian_forward(
        &self,
        push: impl FnMut(&[Self; JACOBIAN_LANES]) -> [Y; JACOBIAN_LANES],
    ) -> Self::Matrix;
    /// [`REVERSE_LANES`] pullbacks per pass: rows i..i + 4 are conj(`pull([eᵢ, …,
    /// eᵢ₊₃])`) (seeds past the last coordinate are zero); `output` computes the
    /// function's value, called only when the output's shape is not static.
    fn jacobian_reverse(
        &self,
        output: impl FnOnce() -> Y,
        pull: impl FnMut(&[Y; REVERSE_LANES]) -> [Self; REVERSE_LANES],
    ) -> Self::Matrix;
}

impl<T, In, Out, K> Jacobian<Tensor<T, Out, K>> for Tensor<T, In, K>
where
    T: Scalar,
    In: Shape,
    Out: ConcatShapes<In>,
    K: Storage<T, In> + Storage<T, Out> + Storage<T, Out::Output>,
{
    type Matrix = Tensor<T, Out::Output, K>;

    fn jacobian_forward(
        &self,
        mut push: impl FnMut(&[Self; JACOBIAN_LANES]) -> [Tensor<T, Out, K>; JACOBIAN_LANES],
    ) -> Self::Matrix {
        let n = self.len();
        let mut directions: [Self; JACOBIAN_LANES] =
            core::array::from_fn(|_| Tensor::zeros_shaped(self.shape()));
        // The directions eⱼ, …, eⱼ₊₇ (zero past the last coordinate).
        let seed = |directions: &mut [Self; JACOBIAN_LANES], first: usize, value: T| {
            for (lane, direction) in directions.iter_mut().enumerate() {
                if first + lane < n {
                    direction.as_mut_slice()[first + lane] = value;
                }
            }
        };
        let mut jacobian: Option<Self::Matrix> = None;
        let mut first = 0;
        loop {
            seed(&mut directions, first, T::one());
            let columns = push(&directions);
            seed(&mut directions, first, T::zero());
            let out = jacobian
                .get_or_insert_with(|| Tensor::zeros_shaped(columns[0].shape().concat_shapes(&self.shape())));
            let out = out.as_mut_slice();
            for (lane, column) in columns.iter().enumerate().take(n.saturating_sub(first)) {
                for (i, &value) in column.iter().enumerate() {
                    out[i * n + first + lane] = value;
                }
            }
            first += JACOBIAN_LANES;
            if first >= n {
                return jacobian.expect("one pass made the Jacobian");
            }
        }
    }

    fn jacobian_reverse(
        &self,
        output: impl FnOnce() -> Tensor<T, Out, K>,
        mut pull: impl FnMut(&[Tensor<T, Out, K>; REVERSE_LANES]) -> [Self; REVERSE_LANES],
    ) -> Self::Matrix {
        let output_shape = Out::known().unwrap_or_else(|| output().shape());
        let (n, m) = (self.len(), output_shape.num_elements());
        let mut jacobian = Tensor::zeros_shaped(output_shape.concat_shapes(&self.shape()));
        let mut seeds: [Tensor<T, Out, K>; REVERSE_LANES] =
            core::array::from_fn(|_| Tensor::zeros_shaped(output_shape));
        // The seeds eᵢ, …, eᵢ₊₃ (zero past the last coordinate).
        let seed = |seeds: &mut [Tensor<T, Out, K>; REVERSE_LANES], first: usize, value: T| {
            for (lane, seed) in seeds.iter_mut().enumerate() {
                if first + lane < m {
                    seed.as_mut_slice()[first + lane] = value;
                }
            }
        };
        for first in (0..m).step_by(REVERSE_LANES) {
            seed(&mut seeds, first, T::one());
            let rows = pull(&seeds);
            seed(&mut seeds, first, T::zero());
            for (lane, row) in rows.iter().enumerate().take(m - first) {
                let i = first + lane;
                let out = &mut jacobian.as_mut_slice()[i * n..(i + 1) * n];
                for (slot, value) in out.iter_mut().zip(row.iter()) {
                    *slot = value.conj();
                }
            }
        }
        jacobian
    }
}

/// `x[index]`: one element of a tensor (`index` its multi-index) or of an array.
/// ẏ = `ẋ[index]`; x̄ is ȳ at `index`, zero elsewhere.
#[derive(Clone, Copy, Debug)]
pub struct Element<I>(pub I);

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Element<S::Index> {
    type Output = T;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &Tensor<T, S, K>) -> T {
        x[self.0]
    }
    #[inline(always)]
    #[track_caller]
    fn push(&self, _: &Tensor<T, S, K>, _: &T, x_dot: &Tensor<T, S, K>) -> T {
        x_dot[self.0]
    }
    #[inline(always)]
    #[track_caller]
    fn pull(&self, x: &Tensor<T, S, K>, _: &T, y_bar: &T) -> Tensor<T, S, K> {
        let mut x_bar = Tensor::zeros_shaped(x.shape());
        x_bar[self.0] = *y_bar;
        x_bar
    }
    #[inline(always)]
    #[track_caller]
    fn pull_into(&self, _: &Tensor<T, S, K>, _: &T, y_bar: &T, x_bar: &mut Tensor<T, S, K>, write: Write) {
        match write {
            Write::Overwrite => {
                x_bar.as_mut_slice().fill(T::zero());
                x_bar[self.0] = *y_bar;
            }
            Write::Accumulate => x_bar[self.0] += *y_bar,
        }
    }
}

#[diagnostic::do_not_recommend]
impl<D: Differentiable + Clone, const N: usize> UnaryRule<[D; N]> for Element<usize>
where
    D::Tangent: Clone,
{
    type Output = D;
    #[inline(always)]
    #[track_caller]
    fn value(&self, x: &[D; N]) -> D {
        x[self.0].clone()
    }
    #[inline(always)]
    #[track_caller]
    fn push(&self, _: &[D; N], _: &D, x_dot: &[D::Tangent; N]) -> D::Tangent {
        x_dot[self.0].clone()
    }
    #[inline(always)]
    #[track_caller]
    fn pull(&self, x: &[D; N], _: &D, y_bar: &D::Tangent) -> [D::Tangent; N] {
        let mut x_bar: [D::Tangent; N] = core::array::from_fn(|i| x[i].zero_tangent());
        x_bar[self.0] = y_bar.clone();
        x_bar
    }
}

/// `Tensor::from_array(a)` on an array of differentiated scalars: a vector from
/// `[T; N]` or a matrix from `[[T; C]; R]` (inline storage). Its derivative moves
/// tangents between the two layouts.
#[derive(Clone, Copy, Debug)]
pub struct FromArray;

#[diagnostic::do_not_recommend]
impl<T: Scalar, const N: usize> UnaryRule<[T; N]> for FromArray {
    type Output = crate::tensor::Vector<T, N>;
    #[inline(always)]
    fn value(&self, x: &[T; N]) -> Self::Output {
        Tensor::from_array(*x)
    }
    #[inline(always)]
    fn push(&self, _: &[T; N], _: &Self::Output, x_dot: &[T; N]) -> Self::Output {
        Tensor::from_array(*x_dot)
    }
    #[inline(always)]
    fn pull(&self, _: &[T; N], _: &Self::Output, y_bar: &Self::Output) -> [T; N] {
        y_bar.to_array()
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, const R: usize, const C: usize> UnaryRule<[[T; C]; R]> for FromArray {
    type Output = crate::tensor::Matrix<T, R, C>;
    #[inline(always)]
    fn value(&self, x: &[[T; C]; R]) -> Self::Output {
        Tensor::from_array(*x)
    }
    #[inline(always)]
    fn push(&self, _: &[[T; C]; R], _: &Self::Output, x_dot: &[[T; C]; R]) -> Self::Output {
        Tensor::from_array(*x_dot)
    }
    #[inline(always)]
    fn pull(&self, _: &[[T; C]; R], _: &Self::Output, y_bar: &Self::Output) -> [[T; C]; R] {
        y_bar.to_array()
    }
}

/// A constant argument of a scalar-generic function at a point of dual numbers with
/// `N` tangents: each element a dual with zero tangents (`Out` is `Dual<T, N>` for
/// a scalar `T`, a tensor of them for a tensor). Static mode's `hvp` and `hessian`
/// pass the arguments they do not differentiate through it; `N` follows from the
/// call.
pub trait ConstantDuals<Out> {
    /// The value as constant duals.
    fn constant_duals(&self) -> Out;
}

impl<T: Scalar, const N: usize> ConstantDuals<crate::autodiff::Dual<T, N>> for T {
    #[inline(always)]
    fn constant_duals(&self) -> crate::autodiff::Dual<T, N> {
        crate::autodiff::Dual::constant(*self)
    }
}

impl<T: Scalar, S: Shape, K, const N: usize> ConstantDuals<Tensor<crate::autodiff::Dual<T, N>, S, K>>
    for Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<crate::autodiff::Dual<T, N>, S>,
{
    #[inline(always)]
    fn constant_duals(&self) -> Tensor<crate::autodiff::Dual<T, N>, S, K> {
        self.map(crate::autodiff::Dual::constant)
    }
}

/// The Hessian's type of a real function of a tensor of shape `S`: shape `S ++ S`
/// (as [`hessian`](crate::autodiff::hessian) types it).
pub trait HessianShape {
    /// The Hessian's type.
    type Matrix;
}

impl<T: Scalar, S: ConcatShapes<S>, K: Storage<T, S> + Storage<T, S::Output>> HessianShape
    for Tensor<T, S, K>
{
    type Matrix = Tensor<T, S::Output, K>;
}

/// conj(x) of a scalar or elementwise: ẏ = conj(ẋ), x̄ = conj(ȳ).
#[derive(Clone, Copy, Debug)]
pub struct Conjugation;

/// Re x of a scalar or elementwise: ẏ = Re ẋ, x̄ = ȳ (a complex number).
#[derive(Clone, Copy, Debug)]
pub struct RealPart;

/// Im x of a scalar or elementwise: ẏ = Im ẋ, x̄ = i·ȳ.
#[derive(Clone, Copy, Debug)]
pub struct ImaginaryPart;

/// |x|² of a scalar or elementwise: ẏ = 2·Re(conj(x)·ẋ), x̄ = 2ȳ·x.
#[derive(Clone, Copy, Debug)]
pub struct NormSquared;

/// x + 0i, a real scalar or tensor as a complex one (`to_complex`): ẏ = ẋ + 0i,
/// x̄ = Re ȳ.
#[derive(Clone, Copy, Debug)]
pub struct ToComplex;

#[diagnostic::do_not_recommend]
impl<T: RealScalar> UnaryRule<T> for ToComplex {
    type Output = T::Complex;
    #[inline(always)]
    fn value(&self, x: &T) -> T::Complex {
        T::Complex::from_real(*x)
    }
    #[inline(always)]
    fn push(&self, _: &T, _: &T::Complex, x_dot: &T) -> T::Complex {
        T::Complex::from_real(*x_dot)
    }
    #[inline(always)]
    fn pull(&self, _: &T, _: &T::Complex, y_bar: &T::Complex) -> T {
        y_bar.re()
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S> + Storage<T::Complex, S>> UnaryRule<Tensor<T, S, K>>
    for ToComplex
{
    type Output = Tensor<T::Complex, S, K>;
    #[inline(always)]
    fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
        x.to_complex()
    }
    #[inline(always)]
    fn push(&self, _: &Tensor<T, S, K>, _: &Self::Output, x_dot: &Tensor<T, S, K>) -> Self::Output {
        x_dot.to_complex()
    }
    #[inline(always)]
    fn pull(&self, _: &Tensor<T, S, K>, _: &Self::Output, y_bar: &Self::Output) -> Tensor<T, S, K> {
        y_bar.re()
    }
}

/// The rules of the parts of complex scalars: `$rule` computes `$value` and pushes
/// `$push` (from x and ẋ), pulls `$pull` (from x and ȳ).
macro_rules! scalar_part_rule {
    ($rule:ident -> $output:ty, |$x:ident| $value:expr, |$x_dot:ident| $push:expr, |$y_bar:ident| $pull:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: Scalar> UnaryRule<T> for $rule {
            type Output = $output;
            #[inline(always)]
            fn value(&self, $x: &T) -> $output {
                let $x = *$x;
                $value
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn push(&self, $x: &T, _: &$output, $x_dot: &T) -> $output {
                let ($x, $x_dot) = (*$x, *$x_dot);
                $push
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn pull(&self, $x: &T, _: &$output, $y_bar: &$output) -> T {
                let ($x, $y_bar) = (*$x, *$y_bar);
                $pull
            }
        }
    };
}

scalar_part_rule!(Conjugation -> T, |x| x.conj(), |x_dot| x_dot.conj(), |y_bar| y_bar.conj());
scalar_part_rule!(RealPart -> T::Real, |x| x.re(), |x_dot| x_dot.re(), |y_bar| T::from_real(y_bar));
scalar_part_rule!(
    ImaginaryPart -> T::Real,
    |x| x.im(),
    |x_dot| x_dot.im(),
    |y_bar| T::from_parts(<T::Real as num_traits::Zero>::zero(), y_bar)
);
scalar_part_rule!(
    NormSquared -> T::Real,
    |x| x.norm_sqr(),
    |x_dot| {
        let re = (x.conj() * x_dot).re();
        re + re
    },
    |y_bar| x * T::from_real(y_bar + y_bar)
);

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Conjugation {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.conj()
    }
    #[inline(always)]
    fn push(&self, _: &Self::Output, _: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        x_dot.conj()
    }
    #[inline(always)]
    fn pull(&self, _: &Self::Output, _: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        conj_pullback(y_bar)
    }
}

/// The rules of the elementwise parts of complex tensors, from their pullbacks.
macro_rules! tensor_part_rule {
    ($rule:ident, $value:ident, |$x:ident, $x_dot:ident| $push:expr, |$x_again:ident, $y_bar:ident| $pull:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>> UnaryRule<Tensor<T, S, K>>
            for $rule
        {
            type Output = Tensor<T::Real, S, K>;
            #[inline(always)]
            fn value(&self, x: &Tensor<T, S, K>) -> Self::Output {
                x.$value()
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn push(&self, $x: &Tensor<T, S, K>, _: &Self::Output, $x_dot: &Tensor<T, S, K>) -> Self::Output {
                $push
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn pull(
                &self,
                $x_again: &Tensor<T, S, K>,
                _: &Self::Output,
                $y_bar: &Self::Output,
            ) -> Tensor<T, S, K> {
                $pull
            }
        }
    };
}

tensor_part_rule!(RealPart, re, |x, x_dot| x_dot.re(), |x, y_bar| re_pullback(y_bar));
tensor_part_rule!(ImaginaryPart, im, |x, x_dot| x_dot.im(), |x, y_bar| im_pullback(y_bar));
tensor_part_rule!(
    NormSquared,
    norm_sqr,
    |x, x_dot| Tensor::from_elements(
        x.shape(),
        x.iter().zip(x_dot.iter()).map(|(&x, &x_dot)| {
            let re = (x.conj() * x_dot).re();
            re + re
        })
    ),
    |x, y_bar| norm_sqr_pullback(x, y_bar)
);
// |x|: ẏ = Re(conj(u)·ẋ) with u = x/|x| (sign(x)·ẋ for reals), 0 where x = 0.
tensor_part_rule!(
    Absolute,
    abs,
    |x, x_dot| Tensor::from_elements(
        x.shape(),
        x.iter().zip(x_dot.iter()).map(|(&x, &x_dot)| crate::ops::elementwise::abs_tangent(x, x_dot))
    ),
    |x, y_bar| abs_pullback(x, y_bar)
);

/// `a.maximum(&b)` of real tensors, elementwise: the picked element's derivative
/// (half of each on a tie, a NaN's), as [`ElementwiseFunctions`](crate::ops::functions::ElementwiseFunctions).
#[derive(Clone, Copy, Debug)]
pub struct ElementwiseMaximum;

/// `a.minimum(&b)` of real tensors, elementwise (as [`ElementwiseMaximum`]).
#[derive(Clone, Copy, Debug)]
pub struct ElementwiseMinimum;

/// The rule of an elementwise choice between two tensors by its fused function: each
/// push and pull is the function's partial derivative times the tangent (a real
/// elementwise map is its own adjoint).
macro_rules! elementwise_choice_rule {
    ($rule:ident, $function:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: RealScalar, S: Shape, K: Storage<T, S>> BinaryRule<Tensor<T, S, K>, Tensor<T, S, K>>
            for $rule
        {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            #[track_caller]
            fn value(&self, a: &Tensor<T, S, K>, b: &Tensor<T, S, K>) -> Tensor<T, S, K> {
                $function.apply([a, b])
            }
            #[inline(always)]
            fn push_lhs(
                &self,
                (a, b, y): Same<'_, Tensor<T, S, K>>,
                a_dot: &Tensor<T, S, K>,
            ) -> Tensor<T, S, K> {
                self.pull_lhs((a, b, y), a_dot)
            }
            #[inline(always)]
            fn push_rhs(
                &self,
                (a, b, y): Same<'_, Tensor<T, S, K>>,
                b_dot: &Tensor<T, S, K>,
            ) -> Tensor<T, S, K> {
                self.pull_rhs((a, b, y), b_dot)
            }
            #[inline(always)]
            fn pull_lhs(
                &self,
                (a, b, _): Same<'_, Tensor<T, S, K>>,
                y_bar: &Tensor<T, S, K>,
            ) -> Tensor<T, S, K> {
                let [a_bar, _] = fused_pullback_of($function, [a, b], y_bar, [true, false]);
                a_bar.expect("the wanted cotangent")
            }
            #[inline(always)]
            fn pull_rhs(
                &self,
                (a, b, _): Same<'_, Tensor<T, S, K>>,
                y_bar: &Tensor<T, S, K>,
            ) -> Tensor<T, S, K> {
                let [_, b_bar] = fused_pullback_of($function, [a, b], y_bar, [false, true]);
                b_bar.expect("the wanted cotangent")
            }
        }
    };
}

elementwise_choice_rule!(ElementwiseMaximum, Larger);
elementwise_choice_rule!(ElementwiseMinimum, Smaller);

/// |x| of a real scalar: ẏ = sign(x)·ẋ, x̄ = sign(x)·ȳ (the subgradient 0 at x = 0);
/// of a complex scalar or a tensor, elementwise, real or complex (x̄ = ȳ·x/|x|, 0 at
/// x = 0, as the tape's).
#[derive(Clone, Copy, Debug)]
pub struct Absolute;

/// max(a, b) of real scalars: the derivative of the larger operand (half of each on
/// a tie, as PyTorch and JAX).
#[derive(Clone, Copy, Debug)]
pub struct Maximum;

/// min(a, b) of real scalars: the derivative of the smaller operand (half of each on
/// a tie).
#[derive(Clone, Copy, Debug)]
pub struct Minimum;

/// sign(x) with sign(0) = 0.
#[inline(always)]
fn sign<T: RealScalar>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar> UnaryRule<T> for Absolute {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        x.abs()
    }
    #[inline(always)]
    fn push(&self, x: &T, _: &T, x_dot: &T) -> T {
        sign(*x) * *x_dot
    }
    #[inline(always)]
    fn pull(&self, x: &T, _: &T, y_bar: &T) -> T {
        sign(*x) * *y_bar
    }
}

/// |x| of a complex scalar: ẏ = Re(conj(u)·ẋ), x̄ = ȳ·u with u = x/|x| (the tape's),
/// both 0 at x = 0; u is formed first, so neither overflows nor underflows where |x|
/// or ẋ are extreme.
#[diagnostic::do_not_recommend]
impl<R: RealScalar> UnaryRule<num_complex::Complex<R>> for Absolute
where
    num_complex::Complex<R>: Scalar<Real = R> + Differentiable<Tangent = num_complex::Complex<R>>,
    R: Differentiable<Tangent = R>,
{
    type Output = R;
    #[inline(always)]
    fn value(&self, x: &num_complex::Complex<R>) -> R {
        Scalar::abs(*x)
    }
    #[inline(always)]
    fn push(&self, x: &num_complex::Complex<R>, _: &R, x_dot: &num_complex::Complex<R>) -> R {
        crate::ops::elementwise::abs_tangent(*x, *x_dot)
    }
    #[inline(always)]
    fn pull(&self, x: &num_complex::Complex<R>, _: &R, y_bar: &R) -> num_complex::Complex<R> {
        crate::ops::elementwise::abs_cotangent(*x, *y_bar)
    }
}

/// ‖z‖ of a complex scalar, `z.norm()` as num-complex names |z|: [`Absolute`]'s rule.
#[diagnostic::do_not_recommend]
impl<R: RealScalar> UnaryRule<num_complex::Complex<R>> for EuclideanNorm
where
    num_complex::Complex<R>: Scalar<Real = R> + Differentiable<Tangent = num_complex::Complex<R>>,
    R: Differentiable<Tangent = R>,
{
    type Output = R;
    #[inline(always)]
    fn value(&self, z: &num_complex::Complex<R>) -> R {
        Absolute.value(z)
    }
    #[inline(always)]
    fn push(&self, z: &num_complex::Complex<R>, y: &R, z_dot: &num_complex::Complex<R>) -> R {
        Absolute.push(z, y, z_dot)
    }
    #[inline(always)]
    fn pull(&self, z: &num_complex::Complex<R>, y: &R, y_bar: &R) -> num_complex::Complex<R> {
        Absolute.pull(z, y, y_bar)
    }
}

/// Whether `a` is the operand that `max` (when `larger`) or `min` picks: the first
/// NaN (NaN propagates, as in `RealScalar::max`), else the larger (smaller), `a` on
/// a tie.
#[inline(always)]
fn picks_lhs<T: RealScalar>(larger: bool, a: T, b: T) -> bool {
    crate::scalar::is_nan(a) || if larger { a >= b } else { a <= b }
}

/// `d` scaled by the share of the derivative that `a` gets (when `lhs`) or `b` gets
/// in `max` (when `larger`) or `min` of `a` and `b`: all of it when that operand
/// alone is picked, half on a tie (as PyTorch's `maximum` and JAX's `max`), and an
/// exact 0 when the other is picked, even for an infinite or NaN `d`.
#[inline(always)]
fn picked_share<T: RealScalar>(larger: bool, lhs: bool, (a, b): (T, T), d: T) -> T {
    if a == b {
        T::from_f64(0.5) * d
    } else if picks_lhs(larger, a, b) == lhs {
        d
    } else {
        T::zero()
    }
}

macro_rules! extremum_rule {
    ($rule:ident, $larger:expr) => {
        #[diagnostic::do_not_recommend]
        impl<T: RealScalar> BinaryRule<T, T> for $rule {
            type Output = T;
            #[inline(always)]
            fn value(&self, a: &T, b: &T) -> T {
                if picks_lhs($larger, *a, *b) { *a } else { *b }
            }
            #[inline(always)]
            fn push_lhs(&self, (a, b, _): Same<'_, T>, a_dot: &T) -> T {
                picked_share($larger, true, (*a, *b), *a_dot)
            }
            #[inline(always)]
            fn push_rhs(&self, (a, b, _): Same<'_, T>, b_dot: &T) -> T {
                picked_share($larger, false, (*a, *b), *b_dot)
            }
            #[inline(always)]
            fn pull_lhs(&self, args: Same<'_, T>, y_bar: &T) -> T {
                self.push_lhs(args, y_bar)
            }
            #[inline(always)]
            fn pull_rhs(&self, args: Same<'_, T>, y_bar: &T) -> T {
                self.push_rhs(args, y_bar)
            }
        }
    };
}

extremum_rule!(Maximum, true);
extremum_rule!(Minimum, false);

/// The rules of real functions of one real scalar, each with its derivative f′(x, y)
/// (y = f(x)): ẏ = f′·ẋ and x̄ = f′·ȳ. Each is also a [`ScalarFunction`], so the
/// tensors' elementwise methods of the same names (`x.erf()`, `x.floor()`, …: see
/// [`ElementwiseFunctions`](crate::ops::functions::ElementwiseFunctions)) map it, on
/// the host and in generated GPU kernels, and a tensor's rule is its map. A function
/// constant between its jumps (the rounding functions) is marked `constant`: its
/// chain-rule step is 0 whatever the tangent or cotangent, an infinite one too (as
/// PyTorch and JAX: 0·∞ would be NaN).
macro_rules! real_function_rules {
    ($($(#[$doc:meta])* $rule:ident: |$x:ident, $y:ident| $value:expr, $derivative:expr $(, $constant:ident)?;)+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $rule;

        impl ScalarFunction for $rule {
            #[inline(always)]
            fn value<T: RealScalar>(&self, $x: T) -> T {
                $value
            }
            #[inline(always)]
            #[allow(unused_variables)] // a derivative reads x or y
            fn derivative<T: RealScalar>(&self, $x: T, $y: T) -> T {
                $derivative
            }
            $(
                #[doc = concat!("0 whatever comes in: the function is ", stringify!($constant), " between its jumps.")]
                #[inline(always)]
                fn chain_from_slope<T: RealScalar>(&self, _: T, _: T) -> T {
                    T::zero()
                }
            )?
        }

        rules_of_scalar_function!($rule);
    )+};
}

/// A [`ScalarFunction`]'s rules on real scalars (duals too) and on tensors: its
/// [`FunctionMap`]'s.
macro_rules! rules_of_scalar_function {
    ($rule:ident) => {
        #[diagnostic::do_not_recommend]
        impl<T: RealScalar> UnaryRule<T> for $rule {
            type Output = T;
            #[inline(always)]
            fn value(&self, x: &T) -> T {
                FunctionMap(*self).value(x)
            }
            #[inline(always)]
            fn push(&self, x: &T, y: &T, x_dot: &T) -> T {
                FunctionMap(*self).push(x, y, x_dot)
            }
            #[inline(always)]
            fn pull(&self, x: &T, y: &T, y_bar: &T) -> T {
                FunctionMap(*self).pull(x, y, y_bar)
            }
        }

        #[diagnostic::do_not_recommend]
        impl<T: RealScalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for $rule {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            fn value(&self, x: &Self::Output) -> Self::Output {
                FunctionMap(*self).value(x)
            }
            #[inline(always)]
            fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
                FunctionMap(*self).push(x, y, x_dot)
            }
            #[inline(always)]
            fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
                FunctionMap(*self).pull(x, y, y_bar)
            }
        }
    };
}

real_function_rules! {
    /// tan x: f′ = 1 + tan² x.
    Tan: |x, y| x.tan(), T::one() + y * y;
    /// atan x: f′ = 1/(1 + x²).
    ArcTan: |x, y| x.atan(), T::one() / (T::one() + x * x);
    /// asin x: f′ = 1/√(1 − x²), with 1 − x² as (1 − x)(1 + x) (exact near |x| = 1).
    ArcSin: |x, y| x.asin(), T::one() / ((T::one() - x) * (T::one() + x)).sqrt();
    /// acos x: f′ = −1/√(1 − x²), likewise.
    ArcCos: |x, y| x.acos(), -T::one() / ((T::one() - x) * (T::one() + x)).sqrt();
    /// erf x: f′ = 2/√π·e^(−x²).
    ErrorFunction: |x, y| x.erf(), T::from_f64(core::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp();
    /// erfc x = 1 − erf x: f′ = −2/√π·e^(−x²).
    ComplementaryErrorFunction: |x, y| x.erfc(), T::from_f64(-core::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp();
    /// x − trunc(x): f′ = 1 (between its jumps).
    FractionalPart: |x, y| x.fract(), T::one();
    /// ⌊x⌋: f′ = 0 (piecewise constant; its jumps have no derivative).
    Floor: |x, y| x.floor(), T::zero(), constant;
    /// ⌈x⌉: f′ = 0.
    Ceiling: |x, y| x.ceil(), T::zero(), constant;
    /// x rounded half away from zero: f′ = 0.
    Rounding: |x, y| x.round(), T::zero(), constant;
    /// x rounded toward zero: f′ = 0.
    Truncation: |x, y| x.trunc(), T::zero(), constant;
}

/// The rules of the float functions that `f32` and `f64` have and `RealScalar` does
/// not (so for concrete scalars only), each with its derivative f′(x, y) in terms of
/// `F`, the float type.
macro_rules! float_function_rules {
    ($($(#[$doc:meta])* $rule:ident: |$x:ident, $y:ident| $value:expr, $derivative:expr;)+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $rule;
        float_function_rules!(@for f32, $rule, |$x, $y| $value, $derivative);
        float_function_rules!(@for f64, $rule, |$x, $y| $value, $derivative);
    )+};
    (@for $float:ty, $rule:ident, |$x:ident, $y:ident| $value:expr, $derivative:expr) => {
        impl UnaryRule<$float> for $rule {
            type Output = $float;
            #[inline(always)]
            fn value(&self, $x: &$float) -> $float {
                type F = $float;
                let $x: F = *$x;
                $value
            }
            #[inline(always)]
            #[allow(unused_variables)] // a derivative reads x or y
            fn push(&self, $x: &$float, $y: &$float, x_dot: &$float) -> $float {
                type F = $float;
                let ($x, $y): (F, F) = (*$x, *$y);
                $derivative * *x_dot
            }
            #[inline(always)]
            fn pull(&self, x: &$float, y: &$float, y_bar: &$float) -> $float {
                self.push(x, y, y_bar)
            }
        }
    };
}

float_function_rules! {
    /// 1/x: f′ = −1/x² = −y².
    Reciprocal: |x, y| Float::recip(x), -(y * y);
    /// ∛x: f′ = 1/(3·∛x²) (infinite at 0).
    CubeRoot: |x, y| Float::cbrt(x), 1.0 / (3.0 * y * y);
    /// sinh x: f′ = cosh x.
    HyperbolicSine: |x, y| Float::sinh(x), Float::cosh(x);
    /// cosh x: f′ = sinh x.
    HyperbolicCosine: |x, y| Float::cosh(x), Float::sinh(x);
    /// asinh x: f′ = 1/√(x² + 1).
    HyperbolicArcSine: |x, y| Float::asinh(x), 1.0 / Float::sqrt(x * x + 1.0);
    /// acosh x: f′ = 1/√(x² − 1).
    HyperbolicArcCosine: |x, y| Float::acosh(x), 1.0 / Float::sqrt(x * x - 1.0);
    /// atanh x: f′ = 1/(1 − x²).
    HyperbolicArcTangent: |x, y| Float::atanh(x), 1.0 / (1.0 - x * x);
    /// ln(1 + x): f′ = 1/(1 + x).
    LnOnePlus: |x, y| Float::ln_1p(x), 1.0 / (1.0 + x);
    /// eˣ − 1: f′ = eˣ = y + 1.
    ExpMinusOne: |x, y| Float::exp_m1(x), y + 1.0;
    /// 2ˣ: f′ = 2ˣ·ln 2.
    PowerOfTwo: |x, y| Float::exp2(x), y * Float::ln(2.0 as F);
    /// log₂ x: f′ = 1/(x·ln 2).
    BinaryLogarithm: |x, y| Float::log2(x), 1.0 / (x * Float::ln(2.0 as F));
    /// log₁₀ x: f′ = 1/(x·ln 10).
    DecimalLogarithm: |x, y| Float::log10(x), 1.0 / (x * Float::ln(10.0 as F));
    /// x in degrees to radians: f′ = π/180.
    DegreesToRadians: |x, y| Float::to_radians(x), Float::to_radians(1.0 as F);
    /// x in radians to degrees: f′ = 180/π.
    RadiansToDegrees: |x, y| Float::to_degrees(x), Float::to_degrees(1.0 as F);
}

/// The sign of x (±1, or NaN) of `f32`/`f64` scalars: f′ = 0, as JAX and PyTorch
/// take it (its jump at 0 has no derivative), so ẏ and x̄ are 0 whatever comes in.
#[derive(Clone, Copy, Debug)]
pub struct Sign;

macro_rules! sign_rule {
    ($($float:ty),+) => {$(
        impl UnaryRule<$float> for Sign {
            type Output = $float;
            #[inline(always)]
            fn value(&self, x: &$float) -> $float {
                Float::signum(*x)
            }
            #[inline(always)]
            fn push(&self, _: &$float, _: &$float, _: &$float) -> $float {
                0.0
            }
            #[inline(always)]
            fn pull(&self, _: &$float, _: &$float, _: &$float) -> $float {
                0.0
            }
        }
    )+};
}

sign_rule!(f32, f64);

/// The Euclidean remainder r = a mod b (0 ≤ r < |b|) of `f32`/`f64` scalars
/// (`a.rem_euclid(b)`): r = a − b·q with q an integer constant between jumps, so
/// ∂r/∂a = 1 and ∂r/∂b = −q = −(a − r)/b.
#[derive(Clone, Copy, Debug)]
pub struct EuclideanRemainder;

macro_rules! euclidean_remainder {
    ($($float:ty),+) => {$(
        #[diagnostic::do_not_recommend]
        impl BinaryRule<$float, $float> for EuclideanRemainder {
            type Output = $float;
            #[inline(always)]
            fn value(&self, a: &$float, b: &$float) -> $float {
                num_traits::Euclid::rem_euclid(a, b)
            }
            #[inline(always)]
            fn push_lhs(&self, _: Same<'_, $float>, a_dot: &$float) -> $float {
                *a_dot
            }
            #[inline(always)]
            fn push_rhs(&self, (a, b, r): Same<'_, $float>, b_dot: &$float) -> $float {
                -RealScalar::round((a - r) / b) * b_dot
            }
            #[inline(always)]
            fn pull_lhs(&self, args: Same<'_, $float>, y_bar: &$float) -> $float {
                self.push_lhs(args, y_bar)
            }
            #[inline(always)]
            fn pull_rhs(&self, args: Same<'_, $float>, y_bar: &$float) -> $float {
                self.push_rhs(args, y_bar)
            }
        }
    )+};
}

euclidean_remainder!(f32, f64);

/// |a| with the sign of b, of `f32`/`f64` scalars (`a.copysign(b)`): ∂/∂a = ±sign(a)
/// (the sign flipped where b's sign bit is set; 0 at a = 0, as `abs`'s), ∂/∂b = 0 (a
/// sign, as JAX takes it).
#[derive(Clone, Copy, Debug)]
pub struct SignCopy;

/// a·b + c rounded once, of `f32`/`f64` scalars (`a.mul_add(b, c)`), as a rule of `a`
/// and the pair `(b, c)`: ẏ = b·ȧ + a·ḃ + ċ.
#[derive(Clone, Copy, Debug)]
pub struct MultiplyAdd;

macro_rules! float_sign_and_fused_rules {
    ($($float:ty),+) => {$(
        #[diagnostic::do_not_recommend]
        impl BinaryRule<$float, $float> for SignCopy {
            type Output = $float;
            #[inline(always)]
            fn value(&self, a: &$float, b: &$float) -> $float {
                a.copysign(*b)
            }
            #[inline(always)]
            fn push_lhs(&self, (a, b, _): Same<'_, $float>, a_dot: &$float) -> $float {
                let magnitude = if *a > 0.0 { 1.0 } else if *a < 0.0 { -1.0 } else { 0.0 };
                magnitude * (1.0 as $float).copysign(*b) * a_dot
            }
            #[inline(always)]
            fn push_rhs(&self, _: Same<'_, $float>, _: &$float) -> $float {
                0.0
            }
            #[inline(always)]
            fn pull_lhs(&self, args: Same<'_, $float>, y_bar: &$float) -> $float {
                self.push_lhs(args, y_bar)
            }
            #[inline(always)]
            fn pull_rhs(&self, _: Same<'_, $float>, _: &$float) -> $float {
                0.0
            }
        }

        #[diagnostic::do_not_recommend]
        impl BinaryRule<$float, ($float, $float)> for MultiplyAdd {
            type Output = $float;
            #[inline(always)]
            fn value(&self, a: &$float, (b, c): &($float, $float)) -> $float {
                a.mul_add(*b, *c)
            }
            #[inline(always)]
            fn push_lhs(&self, (_, (b, _), _): Operands<'_, $float, ($float, $float), $float>, a_dot: &$float) -> $float {
                b * a_dot
            }
            #[inline(always)]
            fn push_rhs(
                &self,
                (a, _, _): Operands<'_, $float, ($float, $float), $float>,
                (b_dot, c_dot): &($float, $float),
            ) -> $float {
                a * b_dot + c_dot
            }
            #[inline(always)]
            fn pull_lhs(&self, args: Operands<'_, $float, ($float, $float), $float>, y_bar: &$float) -> $float {
                self.push_lhs(args, y_bar)
            }
            #[inline(always)]
            fn pull_rhs(
                &self,
                (a, _, _): Operands<'_, $float, ($float, $float), $float>,
                y_bar: &$float,
            ) -> ($float, $float) {
                (a * y_bar, *y_bar)
            }
        }
    )+};
}

float_sign_and_fused_rules!(f32, f64);

/// x held to [low, high] (constants): derivative 1 on the closed interval (PyTorch's
/// `clamp`), 0 outside it.
#[derive(Clone, Copy, Debug)]
pub struct Clamp<T> {
    low: T,
    high: T,
}

impl<T: RealScalar> From<(T, T)> for Clamp<T> {
    /// # Panics
    /// When `low > high` or a bound is NaN, as `f64::clamp` does.
    #[track_caller]
    fn from((low, high): (T, T)) -> Self {
        assert!(low <= high, "clamp: the bounds {low:?} and {high:?} are not in order");
        Clamp { low, high }
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar> UnaryRule<T> for Clamp<T> {
    type Output = T;
    #[inline(always)]
    fn value(&self, x: &T) -> T {
        x.clamp(self.low, self.high)
    }
    #[inline(always)]
    fn push(&self, x: &T, _: &T, x_dot: &T) -> T {
        if *x >= self.low && *x <= self.high { *x_dot } else { T::zero() }
    }
    #[inline(always)]
    fn pull(&self, x: &T, y: &T, y_bar: &T) -> T {
        self.push(x, y, y_bar)
    }
}

/// A tensor's `clamp(low, high)`, elementwise (bounds `f64` for any real element type,
/// as the tensor method takes them): [`ClampFunction`]'s value and derivative.
#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> UnaryRule<Tensor<T, S, K>> for Clamp<f64> {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn value(&self, x: &Self::Output) -> Self::Output {
        x.map_function(ClampFunction { low: self.low, high: self.high })
    }
    #[inline(always)]
    fn push(&self, x: &Self::Output, y: &Self::Output, x_dot: &Self::Output) -> Self::Output {
        function_pullback(ClampFunction { low: self.low, high: self.high }, (x, y, x_dot))
    }
    #[inline(always)]
    fn pull(&self, x: &Self::Output, y: &Self::Output, y_bar: &Self::Output) -> Self::Output {
        function_pullback(ClampFunction { low: self.low, high: self.high }, (x, y, y_bar))
    }
}

/// (sin x, cos x) together: (ṡ, ċ) = (cos x·ẋ, −sin x·ẋ), x̄ = cos x·s̄ − sin x·c̄.
#[derive(Clone, Copy, Debug)]
pub struct SineCosine;

#[diagnostic::do_not_recommend]
impl<T: RealScalar> UnaryRule<T> for SineCosine {
    type Output = (T, T);
    #[inline(always)]
    fn value(&self, x: &T) -> (T, T) {
        x.sin_cos()
    }
    #[inline(always)]
    fn push(&self, _: &T, &(s, c): &(T, T), x_dot: &T) -> (T, T) {
        (c * *x_dot, -s * *x_dot)
    }
    #[inline(always)]
    fn pull(&self, _: &T, &(s, c): &(T, T), &(s_bar, c_bar): &(T, T)) -> T {
        c * s_bar - s * c_bar
    }
}

/// The rules of real functions of two real scalars y = f(a, b), each with its
/// partial derivatives ∂f/∂a and ∂f/∂b (given a, b and y): ẏ = ∂f/∂a·ȧ + ∂f/∂b·ḃ,
/// ā = ∂f/∂a·ȳ, b̄ = ∂f/∂b·ȳ.
macro_rules! real_binary_rules {
    ($($(#[$doc:meta])* $rule:ident: |$a:ident, $b:ident, $y:ident| $value:expr, $lhs:expr, $rhs:expr;)+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $rule;

        #[diagnostic::do_not_recommend]
        impl<T: RealScalar> BinaryRule<T, T> for $rule {
            type Output = T;
            #[inline(always)]
            fn value(&self, $a: &T, $b: &T) -> T {
                let ($a, $b) = (*$a, *$b);
                $value
            }
            #[inline(always)]
            #[allow(unused_variables)] // a partial reads some of a, b and y
            fn push_lhs(&self, ($a, $b, $y): Same<'_, T>, a_dot: &T) -> T {
                let ($a, $b, $y) = (*$a, *$b, *$y);
                $lhs * *a_dot
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn push_rhs(&self, ($a, $b, $y): Same<'_, T>, b_dot: &T) -> T {
                let ($a, $b, $y) = (*$a, *$b, *$y);
                $rhs * *b_dot
            }
            #[inline(always)]
            fn pull_lhs(&self, args: Same<'_, T>, y_bar: &T) -> T {
                self.push_lhs(args, y_bar)
            }
            #[inline(always)]
            fn pull_rhs(&self, args: Same<'_, T>, y_bar: &T) -> T {
                self.push_rhs(args, y_bar)
            }
        }
    )+};
}

real_binary_rules! {
    /// atan2(a, b) of real scalars, the angle of the point (b, a): ∂/∂a = b/(a² + b²),
    /// ∂/∂b = −a/(a² + b²).
    ArcTan2: |a, b, y| a.atan2(b), b / (a * a + b * b), -a / (a * a + b * b);
    /// hypot(a, b) = √(a² + b²) of real scalars: ∂/∂a = a/y, ∂/∂b = b/y (0 at the
    /// origin, where it has no derivative).
    Hypotenuse: |a, b, y| a.hypot(b), T::select_positive(y, a / y, T::zero()), T::select_positive(y, b / y, T::zero());
}
