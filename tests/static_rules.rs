//! Static mode (`#[differentiable]`) primitive by primitive, against the independent
//! references: reverse mode on the tape (`Var`), forward mode on `Dual` numbers and
//! finite differences.
//!
//! 1. For every rule of `fluxion::autodiff::rules` (`+`, `−`, `*`, `/`, negation,
//!    the elementary functions, relu, abs, a library's scalar function, sum, mean,
//!    transpose, flatten, reshape, outer, the reductions and
//!    normalisations along an axis, matmul, hadamard, dot, the row and image
//!    operations, a library's fused function of several tensors) on
//!    scalars and on tensors, with both operands differentiated, with a constant on
//!    either side and with one operand used twice, at random points: static mode's
//!    value and pullback of a random cotangent equal the tape's, its tangent along a
//!    random direction equals forward mode's, and the two satisfy the adjoint identity
//!    ⟨x̄(w), v⟩ = ⟨w, ẏ(v)⟩. `value_and_grad_into` overwrites whatever the gradient
//!    held.
//! 2. Gradients of composite functions (scalar → scalar, tensors → scalar, through a
//!    call of another differentiable function, on heap tensors, through a fused
//!    function with some inputs constant) equal central finite differences, and so do
//!    a fused function's Jacobians.
//! 3. The fused and `_into` forms of every rule (`pull_both`, `push_both`,
//!    `pull_lhs_into`, `pull_rhs_into`, `pull_both_into`, `pull_into`) equal the plain
//!    forms, overwriting or accumulating as their `Write` says.
//! 4. On complex numbers the pullback of a holomorphic f is conj(f′)·ȳ: the gradient of
//!    the real loss Re(conj(ȳ)·f(z)), checked in closed form and by finite differences
//!    of the real and imaginary parts.
//!
//! Every comparison of two exact derivatives is to a relative 1e-12.

use fluxion::autodiff::check::coordinates;
use fluxion::autodiff::rules::{
    Addition, BinaryRule, CholeskyFactor, ColumnSelection, Conjugation, CrossMatrix, CrossProduct,
    Determinant, Diagonal, DiagonalMatrix, Division, DotProduct, ElementwiseMaximum, ElementwiseMinimum,
    EuclideanNorm, HadamardProduct, ImaginaryPart, InnerProduct, LeastSquares, LinearSolve,
    LogAbsDeterminant, LowerTriangularSolve, MatrixExponential, MatrixInverse, MatrixProduct, Mean,
    Multiplication, Negation, NormSquared, PseudoInverse, QrDecomposition, RealPart, Relu, RowSelection,
    SingularValueDecomposition, SingularValues, Subtraction, Summation, SymmetricEigendecomposition,
    SymmetricEigenvalues, SymmetricEigenvectors, TangentOf, Transposition, UnaryRule, UpperTriangularSolve,
    Write,
};
use fluxion::autodiff::{Lift, differentiable, jvp, vjp};
use fluxion::ops::conv::{Groups, Padding, Stride};
use fluxion::ops::elementwise::{Elementary, FusedFunction};
use fluxion::ops::pool::Window;
use fluxion::prelude::*;
use proptest::collection::vec;
use proptest::prelude::*;

type D = Dual<f64>;
type C64 = Complex64;
type V2 = Vector<f64, 2>;
type V3 = Vector<f64, 3>;
type V6 = Vector<f64, 6>;
type M22 = Matrix<f64, 2, 2>;
type M23 = Matrix<f64, 2, 3>;
type M32 = Matrix<f64, 3, 2>;
type M33 = Matrix<f64, 3, 3>;
type M25 = Matrix<f64, 2, 5>;
type M43 = Matrix<f64, 4, 3>;
type T4 = Tensor<f64, (Const<2>, Const<3>, Const<2>, Const<2>), Inline>;
/// A batch of 2 images of 2 channels, 4×4.
type Images = Tensor<f64, (Const<2>, Const<2>, Const<4>, Const<4>), Inline>;
/// 3 kernels of 2 channels, 3×3.
type Kernels = Tensor<f64, (Const<3>, Const<2>, Const<3>, Const<3>), Inline>;
/// `Images` convolved with `Kernels`, no padding.
type Convolved = Tensor<f64, (Const<2>, Const<3>, Const<2>, Const<2>), Inline>;
/// `Images` convolved with `Kernels`, padded by 1.
type PaddedConvolved = Tensor<f64, (Const<2>, Const<3>, Const<4>, Const<4>), Inline>;
/// `Images` pooled 2×2.
type Pooled = Tensor<f64, (Const<2>, Const<2>, Const<2>, Const<2>), Inline>;
/// `Images` pooled 3×3 (one window per image and channel).
type PooledBy3 = Tensor<f64, (Const<2>, Const<2>, Const<1>, Const<1>), Inline>;
/// A batch of 2 images of 4 channels, 2×2.
type Quads = Tensor<f64, (Const<2>, Const<4>, Const<2>, Const<2>), Inline>;
/// `T4` flattened: a row of 12 per image.
type Rows12 = Matrix<f64, 2, 12>;
type CV2 = Vector<C64, 2>;
type CM22 = Matrix<C64, 2, 2>;

/// x·σ(g) + r elementwise: a library author's fused function of three tensors.
#[derive(Clone, Copy, Debug)]
struct GatedResidual;

impl FusedFunction<3> for GatedResidual {
    fn value<T: RealScalar>(&self, [x, g, r]: [T; 3]) -> T {
        x / (T::one() + (-g).exp()) + r
    }
}

/// Relative tolerance of a comparison of two exact derivatives.
const TOL: f64 = 1e-12;
/// Step of the central differences.
const STEP: f64 = 1e-5;
/// Relative tolerance of a comparison with central differences.
const FD_TOL: f64 = 1e-6;

/// 32 random cases per property: the whole file runs in about a second in debug.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(32)
}

/// Reals in [−2, 2].
fn real() -> impl Strategy<Value = f64> + Clone + 'static {
    -2.0..2.0f64
}

/// Reals of magnitude in [0.25, 2], of either sign: divisors, relu inputs away from
/// the kink.
fn away_from_zero() -> impl Strategy<Value = f64> + Clone + 'static {
    (0.25..2.0f64, any::<bool>())
        .prop_map(|(magnitude, negative)| if negative { -magnitude } else { magnitude })
}

/// Reals in [0.25, 3]: the domain of ln, sqrt and powf.
fn positive() -> impl Strategy<Value = f64> + Clone + 'static {
    0.25..3.0f64
}

/// Values drawn one real coordinate after another.
trait Draw: Sized + Clone + std::fmt::Debug + 'static {
    /// Values whose real coordinates `real` draws.
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self>;
}

impl Draw for f64 {
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self> {
        real.boxed()
    }
}

impl Draw for C64 {
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self> {
        (real.clone(), real).prop_map(|(re, im)| C64::new(re, im)).boxed()
    }
}

impl<E: Draw + Scalar, S: StaticShape + 'static> Draw for Tensor<E, S, Inline> {
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self> {
        vec(E::draw(real), S::NUM_ELEMENTS)
            .prop_map(|elements| Tensor::from_shape_slice(S::default(), &elements).unwrap())
            .boxed()
    }
}

impl<A: Draw, B: Draw> Draw for (A, B) {
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self> {
        (A::draw(real.clone()), B::draw(real)).boxed()
    }
}

impl<A: Draw, B: Draw, C: Draw> Draw for (A, B, C) {
    fn draw(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<Self> {
        (A::draw(real.clone()), B::draw(real.clone()), C::draw(real)).boxed()
    }
}

/// Values of type `X` with coordinates drawn by `real`.
fn draw<X: Draw>(real: impl Strategy<Value = f64> + Clone + 'static) -> BoxedStrategy<X> {
    X::draw(real)
}

/// Tangents and cotangents: coordinates in [−2, 2].
fn direction<X: Draw>() -> BoxedStrategy<X> {
    X::draw(real())
}

/// `actual` equals `expected` coordinate by coordinate, to `tol` relative to
/// 1 + the larger magnitude.
fn close_to(
    what: &str,
    actual: &impl RealLeaves,
    expected: &impl RealLeaves,
    tol: f64,
) -> Result<(), TestCaseError> {
    let (actual, expected) = (coordinates(actual), coordinates(expected));
    prop_assert_eq!(actual.len(), expected.len(), "{}: numbers of coordinates", what);
    for (k, (a, e)) in actual.iter().zip(&expected).enumerate() {
        let bound = tol * (1.0 + a.abs().max(e.abs()));
        prop_assert!((a - e).abs() <= bound, "{}: coordinate {}: {:e} vs {:e}", what, k, a, e);
    }
    Ok(())
}

/// [`close_to`] at the tolerance of exact derivatives.
fn close(what: &str, actual: &impl RealLeaves, expected: &impl RealLeaves) -> Result<(), TestCaseError> {
    close_to(what, actual, expected, TOL)
}

/// The real inner product of two values' coordinates, with Σ|aₖbₖ| (the scale of
/// its rounding error).
fn inner(a: &impl RealLeaves, b: &impl RealLeaves) -> (f64, f64) {
    let (a, b) = (coordinates(a), coordinates(b));
    assert_eq!(a.len(), b.len(), "inner product of values of different sizes");
    a.iter().zip(&b).fold((0.0, 0.0), |(sum, scale), (a, b)| (sum + a * b, scale + (a * b).abs()))
}

/// Static mode against the references at one point. Each pair is a value and a
/// derivative: static mode's pullback of `cotangent` (from its `vjp`) and tangent
/// along `direction` (from its `jvp`), the tape's pullback of `cotangent` and forward
/// mode's tangent along `direction`. Also checks the adjoint identity
/// ⟨x̄, direction⟩ = ⟨cotangent, ẏ⟩.
fn agree(
    (value, pulled): (impl RealLeaves, impl RealLeaves),
    (tangent_value, tangent): (impl RealLeaves, impl RealLeaves),
    (tape_value, tape_pulled): (impl RealLeaves, impl RealLeaves),
    (forward_value, forward_tangent): (impl RealLeaves, impl RealLeaves),
    direction: &impl RealLeaves,
    cotangent: &impl RealLeaves,
) -> Result<(), TestCaseError> {
    close("value (against the tape)", &value, &tape_value)?;
    close("value of jvp", &tangent_value, &tape_value)?;
    close("value (against forward mode)", &forward_value, &tape_value)?;
    close("pullback (against the tape)", &pulled, &tape_pulled)?;
    close("tangent (against forward mode)", &tangent, &forward_tangent)?;
    let ((lhs, lhs_scale), (rhs, rhs_scale)) = (inner(&pulled, direction), inner(cotangent, &tangent));
    prop_assert!(
        (lhs - rhs).abs() <= TOL * (1.0 + lhs_scale + rhs_scale),
        "adjoint identity: ⟨x̄, v⟩ = {:e}, ⟨w, ẏ⟩ = {:e}",
        lhs,
        rhs
    );
    Ok(())
}

/// The value and the pullback of `cotangent`, from a `vjp` companion's result.
fn pulled<Y, G>((value, pullback): (Y, impl Fn(&Y) -> G), cotangent: &Y) -> (Y, G) {
    let pulled = pullback(cotangent);
    (value, pulled)
}

/// The tape's value of `f` at `x` and its pullback of `cotangent`.
fn tape<X: Trace + Clone, Y: Differentiable + Clone>(
    f: impl FnOnce(X::Traced) -> Var<Y>,
    x: &X,
    cotangent: &Y::Tangent,
) -> (Y, X::Tangent) {
    let (value, mut pullback) = vjp(f, x);
    (value, pullback.call(cotangent))
}

/// Central differences (f(x + h·eₖ) − f(x − h·eₖ)) / 2h, one for each real coordinate
/// k of `x` (of each of its real and imaginary parts when complex).
fn central_differences<X: Differentiable + Clone>(f: impl Fn(&X) -> f64, x: &X) -> Vec<f64> {
    let zero = x.zero_tangent();
    (0..zero.real_len())
        .map(|k| {
            let mut step = zero.clone();
            let mut index = 0;
            step.map_reals(&mut |_| {
                index += 1;
                if index - 1 == k { STEP } else { 0.0 }
            });
            let (mut forward, mut backward) = (x.clone(), x.clone());
            forward.move_by(&step);
            backward.move_by(&step.negated());
            (f(&forward) - f(&backward)) / (2.0 * STEP)
        })
        .collect()
}

/// The first of its blocks: a reference's own spelling of a body, or the body.
macro_rules! first {
    ($chosen:block $(, $rest:block)*) => {
        $chosen
    };
}

/// Declares static-mode functions in a module `functions` and a property test for
/// each, of the same name. A case (with a doc comment, and attributes for both; its
/// types named by one identifier)
///
/// `name((x, x_dot): X in points, …; c: C in constants, …) -> Y { body }`
///
/// declares `#[differentiable(wrt(x, …))] fn name(x: X, …, c: C, …) -> Y { body }`
/// and checks it with [`agree`] at `x` drawn from `points` (a strategy for the real
/// coordinates), tangent `x_dot`, constants `c` from `constants` and a random
/// cotangent. The tape runs `body` on `Var`s and forward mode on duals, the
/// constants made `Var::constant`s and constant duals, or `tape { … }` and
/// `forward { … }` where those types spell the operation otherwise.
macro_rules! cases {
    ($(
        $(#[$doc:meta])+
        $name:ident(
            $(($x:ident, $x_dot:ident): $xt:ident in $points:expr),+
            $(; $($c:ident: $ct:ident in $constants:expr),+)?
        ) -> $out:ident { $($body:tt)* }
        $(tape { $($tape:tt)* })?
        $(forward { $($forward:tt)* })?
    )*) => {
        pub(crate) mod functions {
            use super::*;
            $(
                $(#[$doc])+
                #[differentiable(wrt($($x),+))]
                pub fn $name($($x: $xt,)+ $($($c: $ct,)+)?) -> $out {
                    $($body)*
                }
            )*
        }

        proptest! {
            #![proptest_config(config())]
            $(
                $(#[$doc])+
                #[test]
                fn $name(
                    $($x in draw::<$xt>($points), $x_dot in direction::<$xt>(),)+
                    $($($c in draw::<$ct>($constants),)+)?
                    cotangent in direction::<$out>(),
                ) {
                    let statics = pulled(functions::$name::vjp($($x.clone(),)+ $($($c.clone(),)+)?), &cotangent);
                    let tangent = functions::$name::jvp($($x.clone(),)+ $($($c.clone(),)+)? $(&$x_dot),+);
                    let (point, direction) = (($($x.clone(),)+), ($($x_dot.clone(),)+));
                    let taped = tape(
                        |($($x,)+)| {
                            $($(let $c = Trace::as_constant(&$c);)+)?
                            first!($({ $($tape)* },)? { $($body)* })
                        },
                        &point,
                        &cotangent,
                    );
                    let forward = jvp(
                        |($($x,)+)| {
                            $($(let $c = Lift::lift(&$c, &Differentiable::zero_tangent(&$c));)+)?
                            first!($({ $($forward)* },)? { $($body)* })
                        },
                        &point,
                        &direction,
                    );
                    agree(statics, tangent, taped, forward, &direction, &cotangent)?;
                }
            )*
        }
    };
}

/// The scalar rules on `f64`.
mod scalars {
    use super::*;

    cases! {
        /// x + y.
        addition((x, x_dot): f64 in real(), (y, y_dot): f64 in real()) -> f64 { x + y } tape { &x + &y }
        /// x + c.
        addition_constant_right((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { x + c } tape { &x + &c }
        /// c + x.
        addition_constant_left((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { c + x } tape { &c + &x }
        /// x + x.
        addition_twice((x, x_dot): f64 in real()) -> f64 { x + x } tape { &x + &x }
        /// x − y.
        subtraction((x, x_dot): f64 in real(), (y, y_dot): f64 in real()) -> f64 { x - y } tape { &x - &y }
        /// x − c.
        subtraction_constant_right((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { x - c } tape { &x - &c }
        /// c − x.
        subtraction_constant_left((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { c - x } tape { &c - &x }
        /// 1.5 − x, a literal.
        subtraction_from_literal((x, x_dot): f64 in real()) -> f64 { 1.5 - x }
            tape { 1.5 - &x } forward { D::constant(1.5) - x }
        /// x − x.
        #[allow(clippy::eq_op)]
        subtraction_twice((x, x_dot): f64 in real()) -> f64 { x - x } tape { &x - &x }
        /// x·y.
        multiplication((x, x_dot): f64 in real(), (y, y_dot): f64 in real()) -> f64 { x * y } tape { &x * &y }
        /// x·c.
        multiplication_constant_right((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { x * c } tape { &x * &c }
        /// c·x.
        multiplication_constant_left((x, x_dot): f64 in real(); c: f64 in real()) -> f64 { c * x } tape { &c * &x }
        /// 2.5·x, a literal.
        multiplication_by_literal((x, x_dot): f64 in real()) -> f64 { 2.5 * x }
            tape { 2.5 * &x } forward { D::constant(2.5) * x }
        /// x·x.
        multiplication_twice((x, x_dot): f64 in real()) -> f64 { x * x } tape { &x * &x }
        /// x / y.
        division((x, x_dot): f64 in real(), (y, y_dot): f64 in away_from_zero()) -> f64 { x / y } tape { &x / &y }
        /// x / c.
        division_constant_right((x, x_dot): f64 in real(); c: f64 in away_from_zero()) -> f64 { x / c } tape { &x / &c }
        /// c / x.
        division_constant_left((x, x_dot): f64 in away_from_zero(); c: f64 in real()) -> f64 { c / x } tape { &c / &x }
        /// x / 4, a literal.
        division_by_literal((x, x_dot): f64 in real()) -> f64 { x / 4.0 }
            tape { &x / 4.0 } forward { x / D::constant(4.0) }
        /// 3 / x, a literal.
        literal_over((x, x_dot): f64 in away_from_zero()) -> f64 { 3.0 / x }
            tape { 3.0 / &x } forward { D::constant(3.0) / x }
        /// x / x.
        #[allow(clippy::eq_op)]
        division_twice((x, x_dot): f64 in away_from_zero()) -> f64 { x / x } tape { &x / &x }
        /// −x.
        negation((x, x_dot): f64 in real()) -> f64 { -x }
        /// eˣ.
        exp((x, x_dot): f64 in real()) -> f64 { x.exp() }
        /// ln x.
        ln((x, x_dot): f64 in positive()) -> f64 { x.ln() }
        /// sin x.
        sin((x, x_dot): f64 in real()) -> f64 { x.sin() }
        /// cos x.
        cos((x, x_dot): f64 in real()) -> f64 { x.cos() }
        /// tanh x.
        tanh((x, x_dot): f64 in real()) -> f64 { x.tanh() }
        /// √x.
        sqrt((x, x_dot): f64 in positive()) -> f64 { x.sqrt() }
        /// x³.
        powi((x, x_dot): f64 in real()) -> f64 { x.powi(3) }
        /// x⁻².
        powi_negative((x, x_dot): f64 in away_from_zero()) -> f64 { x.powi(-2) }
        /// x^1.5.
        powf((x, x_dot): f64 in positive()) -> f64 { x.powf(1.5) } forward { x.powf(D::constant(1.5)) }
    }
}

/// The tensor rules on inline vectors and matrices of `f64`.
mod tensors {
    use super::*;

    cases! {
        /// a + b.
        addition((a, a_dot): V3 in real(), (b, b_dot): V3 in real()) -> V3 { a + b } tape { &a + &b }
        /// a + c.
        addition_constant_right((a, a_dot): V3 in real(); c: V3 in real()) -> V3 { a + c } tape { &a + &c }
        /// c + a.
        addition_constant_left((a, a_dot): M23 in real(); c: M23 in real()) -> M23 { c + a } tape { &c + &a }
        /// a + a.
        addition_twice((a, a_dot): M23 in real()) -> M23 { a + a } tape { &a + &a }
        /// a − b.
        subtraction((a, a_dot): M23 in real(), (b, b_dot): M23 in real()) -> M23 { a - b } tape { &a - &b }
        /// a − c.
        subtraction_constant_right((a, a_dot): V3 in real(); c: V3 in real()) -> V3 { a - c } tape { &a - &c }
        /// c − a.
        subtraction_constant_left((a, a_dot): V3 in real(); c: V3 in real()) -> V3 { c - a } tape { &c - &a }
        /// a − a.
        #[allow(clippy::eq_op)]
        subtraction_twice((a, a_dot): V3 in real()) -> V3 { a - a } tape { &a - &a }
        /// −a.
        negation((a, a_dot): M23 in real()) -> M23 { -a }
        /// a·s.
        times_scalar((a, a_dot): V3 in real(), (s, s_dot): f64 in real()) -> V3 { a * s } tape { a.scale_by(&s) }
        /// s·a.
        scalar_times((a, a_dot): V3 in real(), (s, s_dot): f64 in real()) -> V3 { s * a }
            tape { a.scale_by(&s) } forward { a.scale(s) }
        /// `a.scale(s)`.
        scale((a, a_dot): M23 in real(), (s, s_dot): f64 in real()) -> M23 { a.scale(s) } tape { a.scale_by(&s) }
        /// a·0.5, a literal.
        times_literal((a, a_dot): V3 in real()) -> V3 { a * 0.5 }
        /// 2·a, a literal.
        literal_times((a, a_dot): V3 in real()) -> V3 { 2.0 * a } forward { a * 2.0 }
        /// c·s for a constant tensor c.
        constant_times_scalar((s, s_dot): f64 in real(); c: V3 in real()) -> V3 { c * s } tape { c.scale_by(&s) }
        /// a·s with a constant s.
        times_constant_scalar((a, a_dot): V3 in real(); s: f64 in real()) -> V3 { a * s } tape { a.scale_by(&s) }
        /// a·(Σa): a used twice.
        times_own_sum((a, a_dot): V3 in real()) -> V3 { a * a.sum() } tape { a.scale_by(&a.sum()) }
        /// a / s.
        over_scalar((a, a_dot): V3 in real(), (s, s_dot): f64 in away_from_zero()) -> V3 { a / s }
            tape { a.scale_by(&(1.0 / &s)) }
        /// a / 4, a literal.
        over_literal((a, a_dot): M23 in real()) -> M23 { a / 4.0 }
        /// c / s for a constant tensor c.
        constant_over_scalar((s, s_dot): f64 in away_from_zero(); c: V3 in real()) -> V3 { c / s }
            tape { c.scale_by(&(1.0 / &s)) }
        /// a / ⟨a, a⟩: a used twice.
        over_own_square((a, a_dot): V3 in away_from_zero()) -> V3 { a / a.dot(&a) }
            tape { a.scale_by(&(1.0 / &a.dot(&a))) }
        /// eᵃ.
        exp((a, a_dot): V3 in real()) -> V3 { a.exp() }
        /// ln a.
        ln((a, a_dot): V3 in positive()) -> V3 { a.ln() }
        /// sin a.
        sin((a, a_dot): V3 in real()) -> V3 { a.sin() }
        /// cos a.
        cos((a, a_dot): V3 in real()) -> V3 { a.cos() }
        /// tanh a, on a matrix.
        tanh((a, a_dot): M23 in real()) -> M23 { a.tanh() }
        /// √a.
        sqrt((a, a_dot): V3 in positive()) -> V3 { a.sqrt() }
        /// σ(a).
        sigmoid((a, a_dot): V3 in real()) -> V3 { a.sigmoid() }
        /// a³.
        powi((a, a_dot): V3 in real()) -> V3 { a.powi(3) }
        /// a⁻².
        powi_negative((a, a_dot): V3 in away_from_zero()) -> V3 { a.powi(-2) }
        /// a^1.5.
        powf((a, a_dot): V3 in positive()) -> V3 { a.powf(1.5) } forward { a.powf(D::constant(1.5)) }
        /// relu(a), away from the kink.
        relu((a, a_dot): M23 in away_from_zero()) -> M23 { a.relu() }
        /// softplus, SiLU and leaky ReLU (the named functions' scalar functions).
        named_functions((a, a_dot): M23 in away_from_zero()) -> M23 {
            a.softplus().hadamard(&a.silu()) + a.leaky_relu(0.1)
        }
        /// The elementwise maximum and minimum of two tensors.
        maximum_minimum((a, a_dot): V3 in real(), (b, b_dot): V3 in real()) -> V3 {
            a.maximum(&b) + a.minimum(&b).hadamard(&b)
        }
        /// Tensors clamped (bounds f64 for any element type): 0.45·a always inside, a
        /// clipped at ±0.5.
        clamp_tensor((a, a_dot): V3 in real()) -> V3 { (&a * 0.45).clamp(-1.0, 1.0) + a.clamp(-0.5, 0.5) }
        /// A library's scalar function (GELU, tanh form) elementwise.
        map_function((a, a_dot): M23 in real()) -> M23 { a.map_function(fluxion::nn::layer::GeluTanhFunction) }
        /// A library's fused function of three tensors.
        fused((a, a_dot): M23 in real(), (g, g_dot): M23 in real(), (r, r_dot): M23 in real()) -> M23 {
            GatedResidual.apply([&a, &g, &r])
        }
        /// Fused functions with a constant input and with one input twice.
        fused_constant_and_repeated((a, a_dot): V3 in real(); c: V3 in real()) -> V3 {
            GatedResidual.apply([&a, &c, &a.tanh()]) + GatedResidual.apply([&c, &a, &a])
        }
        /// Σa of a vector.
        sum((a, a_dot): V3 in real()) -> f64 { a.sum() }
        /// Σa of a matrix.
        matrix_sum((a, a_dot): M23 in real()) -> f64 { a.sum() }
        /// The mean of a vector.
        mean((a, a_dot): V3 in real()) -> f64 { a.mean() }
        /// The mean of a matrix.
        matrix_mean((a, a_dot): M23 in real()) -> f64 { a.mean() }
        /// aᵀ.
        transpose((a, a_dot): M23 in real()) -> M32 { a.transpose() }
        /// A·Bᵀ.
        matmul_transposed((a, a_dot): M23 in real(), (b, b_dot): M23 in real()) -> M22 { a.matmul_transposed(&b) }
        /// Aᵀ·B.
        transposed_matmul((a, a_dot): M23 in real(), (b, b_dot): M22 in real()) -> M32 { a.transposed_matmul(&b) }
        /// A bias on every row.
        add_rows((a, a_dot): M23 in real(), (b, b_dot): V3 in real()) -> M23 { a.add_rows(&b) }
        /// A gain on every row.
        mul_rows((a, a_dot): M23 in real(), (g, g_dot): V3 in real()) -> M23 { a.mul_rows(&g) }
        /// Each row normalised.
        normalize_rows((a, a_dot): M23 in real()) -> M23 { a.normalize_rows(1e-5) }
            forward { a.normalize_rows(D::constant(1e-5)) }
        /// Each image's 3 channels in 3 groups, each normalised.
        normalize_groups((x, x_dot): T4 in real()) -> T4 { x.normalize_groups(Groups::<3>, 1e-5) }
            forward { x.normalize_groups(Groups::<3>, D::constant(1e-5)) }
        /// Each image's 4 channels in 2 groups of 2, each normalised (the group count
        /// from the turbofish).
        normalize_two_groups((x, x_dot): Quads in real()) -> Quads { x.normalize_groups::<2>(Groups, 1e-5) }
            forward { x.normalize_groups(Groups::<2>, D::constant(1e-5)) }
        /// Each image normalised as a whole (one group).
        normalize_one_group((x, x_dot): T4 in real()) -> T4 { x.normalize_groups(Groups::<1>, 1e-5) }
            forward { x.normalize_groups(Groups::<1>, D::constant(1e-5)) }
        /// A bias per channel of a batch of images.
        add_channels((a, a_dot): T4 in real(), (b, b_dot): V3 in real()) -> T4 { a.add_channels(&b) }
        /// A valid convolution of a batch of images, images and kernels differentiated.
        conv2d((x, x_dot): Images in real(), (w, w_dot): Kernels in real()) -> Convolved { x.conv2d::<3, 3, 3, 2, 2>(&w) }
        /// A convolution with fixed kernels.
        conv2d_constant_kernels((x, x_dot): Images in real(); w: Kernels in real()) -> Convolved { x.conv2d::<3, 3, 3, 2, 2>(&w) }
        /// A convolution of fixed images.
        conv2d_constant_images((w, w_dot): Kernels in real(); x: Images in real()) -> Convolved { x.conv2d::<3, 3, 3, 2, 2>(&w) }
        /// A convolution with one pixel of zero padding.
        conv2d_padded((x, x_dot): Images in real(), (w, w_dot): Kernels in real()) -> PaddedConvolved {
            x.conv2d_padded::<1, 3, 3, 3, 4, 4>(&w, Padding::<1>)
        }
        /// A convolution with stride 2 and padding 1: ⌊(4 + 2 − 3)/2⌋ + 1 = 2.
        conv2d_strided((x, x_dot): Images in real(), (w, w_dot): Kernels in real()) -> Convolved {
            x.conv2d_strided::<2, 1, 3, 3, 3, 2, 2>(&w, Stride::<2>, Padding::<1>)
        }
        /// 2×2 max pooling, stride 2.
        max_pool2d((x, x_dot): Images in real()) -> Pooled { x.max_pool2d::<2, 2, 2>() }
        /// 2×2 average pooling, stride 2.
        avg_pool2d((x, x_dot): Images in real()) -> Pooled { x.avg_pool2d::<2, 2, 2>() }
        /// 3×3 average pooling: the last row and column are in no window.
        avg_pool2d_leftover((x, x_dot): Images in real()) -> PooledBy3 { x.avg_pool2d::<3, 1, 1>() }
        /// Overlapping 3×3 max pooling with stride 2 and padding 1: ⌊(4 + 2 − 3)/2⌋ + 1 = 2.
        max_pool2d_strided((x, x_dot): Images in real()) -> Pooled {
            x.max_pool2d_strided::<3, 2, 1, 2, 2>(Window::<3>, Stride::<2>, Padding::<1>)
        }
        /// Overlapping 3×3 average pooling with stride 2 and padding 1.
        avg_pool2d_strided((x, x_dot): Images in real()) -> Pooled {
            x.avg_pool2d_strided::<3, 2, 1, 2, 2>(Window::<3>, Stride::<2>, Padding::<1>)
        }
        /// Each image as one row.
        flatten_images((x, x_dot): T4 in real()) -> Rows12 { x.flatten_images::<12>() }
        /// Column sums.
        sum_axis_0((a, a_dot): M23 in real()) -> V3 { a.sum_axis(Axis::<0>) }
        /// Row means.
        mean_axis_1((a, a_dot): M23 in real()) -> V2 { a.mean_axis(Axis::<1>) }
        /// log Σ exp of each row.
        logsumexp_rows((a, a_dot): M23 in real()) -> V2 { a.logsumexp(Axis::<1>) }
        /// Two columns of a matrix.
        narrow_columns((a, a_dot): M23 in real()) -> M22 { a.narrow::<1, 1, 2>() }
        /// Two matrices stacked.
        concat_rows((a, a_dot): M23 in real(), (b, b_dot): M23 in real()) -> M43 { a.concat(Axis::<0>, &b) }
            tape { let y: Var<M43> = a.concat(Axis::<0>, &b); y }
            forward { let y: Matrix<D, 4, 3> = a.concat(Axis::<0>, &b); y }
        /// Two matrices side by side.
        concat_columns((a, a_dot): M23 in real(), (b, b_dot): M22 in real()) -> M25 { a.concat(Axis::<1>, &b) }
            tape { let y: Var<M25> = a.concat(Axis::<1>, &b); y }
            forward { let y: Matrix<D, 2, 5> = a.concat(Axis::<1>, &b); y }
        /// A constant joined after a differentiated matrix.
        concat_constant((a, a_dot): M23 in real(); c: M22 in real()) -> M25 { a.concat(Axis::<1>, &c) }
            tape { let y: Var<M25> = a.concat(Axis::<1>, &c); y }
            forward { let y: Matrix<D, 2, 5> = a.concat(Axis::<1>, &c); y }
        /// A constant joined before a differentiated matrix.
        constant_concat((a, a_dot): M22 in real(); c: M23 in real()) -> M25 { c.concat(Axis::<1>, &a) }
            tape { let y: Var<M25> = c.concat(Axis::<1>, &a); y }
            forward { let y: Matrix<D, 2, 5> = c.concat(Axis::<1>, &a); y }
        /// The largest element of each row (inputs without ties).
        max_axis_rows((a, a_dot): M23 in real()) -> V2 { a.max_axis(Axis::<1>) }
        /// The largest element of a matrix.
        largest_element((a, a_dot): M23 in real()) -> f64 { a.max() }
        /// softmax down each column.
        softmax_columns((a, a_dot): M23 in real()) -> M23 { a.softmax(Axis::<0>) }
        /// log_softmax of each row.
        log_softmax_rows((a, a_dot): M23 in real()) -> M23 { a.log_softmax(Axis::<1>) }
        /// Cross-entropy of a vector of logits against class 2, through log_softmax.
        cross_entropy((a, a_dot): V3 in real()) -> f64 { -a.log_softmax(Axis::<0>)[[2]] }
            tape { -a.log_softmax(Axis::<0>).dot(&V3::from_array([0.0, 0.0, 1.0])) }
        /// A·B, matrix by matrix.
        matmul((a, a_dot): M23 in real(), (b, b_dot): M32 in real()) -> M22 { a.matmul(&b) }
        /// A·x, matrix by vector.
        matvec((a, a_dot): M23 in real(), (x, x_dot): V3 in real()) -> V2 { a.matmul(&x) }
        /// C·x for a constant matrix C.
        constant_matvec((x, x_dot): V3 in real(); c: M23 in real()) -> V2 { c.matmul(&x) }
        /// A·c for a constant vector c.
        matvec_constant((a, a_dot): M23 in real(); c: V3 in real()) -> V2 { a.matmul(&c) }
        /// A·C for a constant matrix C.
        matmul_constant((a, a_dot): M23 in real(); c: M32 in real()) -> M22 { a.matmul(&c) }
        /// A·A.
        matmul_twice((a, a_dot): M33 in real()) -> M33 { a.matmul(&a) }
        /// a ⊙ b.
        hadamard((a, a_dot): M23 in real(), (b, b_dot): M23 in real()) -> M23 { a.hadamard(&b) }
        /// a ⊙ c.
        hadamard_constant_right((a, a_dot): V3 in real(); c: V3 in real()) -> V3 { a.hadamard(&c) }
        /// c ⊙ a.
        hadamard_constant_left((a, a_dot): V3 in real(); c: V3 in real()) -> V3 { c.hadamard(&a) }
        /// a ⊙ a.
        hadamard_twice((a, a_dot): V3 in real()) -> V3 { a.hadamard(&a) }
        /// ⟨a, b⟩.
        dot((a, a_dot): V3 in real(), (b, b_dot): V3 in real()) -> f64 { a.dot(&b) }
        /// ⟨a, b⟩ of matrices.
        matrix_dot((a, a_dot): M23 in real(), (b, b_dot): M23 in real()) -> f64 { a.dot(&b) }
        /// ⟨a, c⟩.
        dot_constant_right((a, a_dot): V3 in real(); c: V3 in real()) -> f64 { a.dot(&c) }
        /// ⟨c, a⟩.
        dot_constant_left((a, a_dot): V3 in real(); c: V3 in real()) -> f64 { c.dot(&a) }
        /// ⟨a, a⟩.
        dot_twice((a, a_dot): V3 in real()) -> f64 { a.dot(&a) }
        /// ⟨r, r⟩ for a local r = a − b.
        dot_of_difference((a, a_dot): V3 in real(), (b, b_dot): V3 in real()) -> f64 {
            let r = a - b;
            r.dot(&r)
        } tape {
            let r = &a - &b;
            r.dot(&r)
        }
        /// a ⊗ b.
        outer((a, a_dot): V3 in real(), (b, b_dot): V2 in real()) -> M32 { a.outer(&b) }
        /// a ⊗ c.
        outer_constant_right((a, a_dot): V3 in real(); c: V2 in real()) -> M32 { a.outer(&c) }
        /// a ⊗ a.
        outer_twice((a, a_dot): V3 in real()) -> M33 { a.outer(&a) }
        /// A flattened.
        flatten((a, a_dot): M23 in real()) -> V6 { a.flatten::<6>() }
        /// A reshaped.
        reshape((a, a_dot): M23 in real()) -> M32 { a.reshape::<(Const<3>, Const<2>)>() }
        /// |a| elementwise (the points are almost surely not 0).
        absolute((a, a_dot): V3 in real()) -> V3 { a.abs() }
    }
}

/// The rules on complex numbers, scalars and tensors.
mod complex {
    use super::*;

    #[differentiable]
    fn modulus(z: C64) -> f64 {
        z.abs()
    }

    #[differentiable]
    fn real_factors(a: &CV2, s: f64) -> f64 {
        let b = a * 0.5 + 2.0 * a / s;
        b.norm_sqr().sum()
    }

    #[differentiable]
    fn complex_factors(a: &CV2, s: C64) -> f64 {
        let b = a * C64::new(0.5, 0.0) + C64::new(2.0, 0.0) * a / s;
        b.norm_sqr().sum()
    }

    /// A complex tensor beside real constants and a real variable: the complex rules
    /// with c + 0i, the real operand's cotangent their real part.
    #[test]
    fn a_complex_tensor_takes_real_factors_in_static_mode() {
        let a: CV2 = Vector::from_array([C64::new(0.3, -1.2), C64::new(-0.7, 0.4)]);
        let (value, (a_bar, s_bar)) = real_factors::value_and_grad(&a, 1.7);
        let (expected, (expected_a_bar, expected_s_bar)) =
            complex_factors::value_and_grad(&a, C64::new(1.7, 0.0));
        assert_eq!((value, a_bar), (expected, expected_a_bar));
        assert_eq!(s_bar, expected_s_bar.re);
        let h = 1e-6;
        let numeric = (real_factors(&a, 1.7 + h) - real_factors(&a, 1.7 - h)) / (2.0 * h);
        assert!((s_bar - numeric).abs() < 1e-7, "{s_bar} vs {numeric}");
        let (_, tangent) = real_factors::jvp(&a, 1.7, &a.map(|_| C64::new(0.0, 0.0)), &1.0);
        assert!((tangent - s_bar).abs() < 1e-12);
    }

    /// |z| at 0 and where |z|² underflows: the tape's x/|x| (0 at 0), not ∞ or NaN.
    #[test]
    fn the_modulus_of_a_tiny_or_zero_complex_scalar_has_the_tapes_gradient() {
        for z in [C64::new(0.0, 0.0), C64::new(1e-200, -1e-200), C64::new(3e-310, 4e-310)] {
            let tape_gradient = grad(|z: Var<C64>| z.abs(), &z);
            assert_eq!(modulus::grad(z), tape_gradient, "at {z}");
            let forward = modulus::jvp(z, &C64::new(1.0, 0.0)).1;
            assert!((forward - tape_gradient.re).abs() < 1e-15, "at {z}: {forward} vs {tape_gradient}");
        }
        let expected = C64::new(0.5f64.sqrt(), -(0.5f64.sqrt()));
        assert!((modulus::grad(C64::new(1e-200, -1e-200)) - expected).norm() < 1e-15);
        // A subnormal modulus: x/|x|, not x·(1/|x|) = x·∞, on the tape (scalar and tensor).
        let subnormal = C64::new(3e-310, 4e-310);
        assert!((modulus::grad(subnormal) - C64::new(0.6, 0.8)).norm() < 1e-12);
        let tensor = grad(|v: Var<CV2>| v.abs().sum(), &Vector::from_array([subnormal, C64::new(0.0, -2.0)]));
        assert!((tensor[[0]] - C64::new(0.6, 0.8)).norm() < 1e-12 && tensor[[1]] == C64::new(0.0, -1.0));
        // Forward mode along a tiny or a huge tangent at a tiny or a huge x: u = x/|x|
        // first, so Re(conj(u)·ẋ) neither underflows nor overflows.
        for (z, x_dot, expected) in [
            (subnormal, 1e-20, 6e-21),
            (C64::new(3e-300, 4e-300), 1e-30, 6e-31),
            (C64::new(3e200, 4e200), 1e200, 6e199),
        ] {
            let forward = modulus::jvp(z, &C64::new(x_dot, 0.0)).1;
            assert!((forward - expected).abs() < 1e-12 * expected, "at {z}: {forward}");
            let (_, dual) = jvp(|z: Dual<C64>| z.abs(), &z, &C64::new(x_dot, 0.0));
            assert!((dual - expected).abs() < 1e-12 * expected, "dual at {z}: {dual}");
        }
        // An infinite x: its direction on the tape and in static mode (sign(x) for reals).
        let inf = f64::INFINITY;
        assert_eq!(grad(|z: Var<C64>| z.abs(), &C64::new(inf, 1.0)), C64::new(1.0, 0.0));
        assert_eq!(grad(|x: Var<f64>| x.abs(), &-inf), -1.0);
        assert_eq!(modulus::grad(C64::new(-inf, 5.0)), C64::new(-1.0, 0.0));
    }

    cases! {
        /// z + u.
        addition((z, z_dot): C64 in real(), (u, u_dot): C64 in real()) -> C64 { z + u } tape { &z + &u }
        /// z − u.
        subtraction((z, z_dot): C64 in real(), (u, u_dot): C64 in real()) -> C64 { z - u } tape { &z - &u }
        /// z·u.
        multiplication((z, z_dot): C64 in real(), (u, u_dot): C64 in real()) -> C64 { z * u } tape { &z * &u }
        /// c·z.
        multiplication_constant_left((z, z_dot): C64 in real(); c: C64 in real()) -> C64 { c * z } tape { &c * &z }
        /// z·z.
        multiplication_twice((z, z_dot): C64 in real()) -> C64 { z * z } tape { &z * &z }
        /// z / u.
        division((z, z_dot): C64 in real(), (u, u_dot): C64 in away_from_zero()) -> C64 { z / u } tape { &z / &u }
        /// −z.
        negation((z, z_dot): C64 in real()) -> C64 { -z }
        /// eᶻ.
        exp((z, z_dot): C64 in real()) -> C64 { z.exp() }
        /// sin z.
        sin((z, z_dot): C64 in real()) -> C64 { z.sin() }
        /// z³.
        powi((z, z_dot): C64 in real()) -> C64 { z.powi(3) }
        /// a·s.
        times_scalar((a, a_dot): CV2 in real(), (s, s_dot): C64 in real()) -> CV2 { a * s } tape { a.scale_by(&s) }
        /// a / s.
        over_scalar((a, a_dot): CV2 in real(), (s, s_dot): C64 in away_from_zero()) -> CV2 { a / s }
            tape { a.scale_by(&(C64::new(1.0, 0.0) / &s)) }
        /// eᵃ elementwise.
        vector_exp((a, a_dot): CV2 in real()) -> CV2 { a.exp() }
        /// a ⊙ b.
        hadamard((a, a_dot): CV2 in real(), (b, b_dot): CV2 in real()) -> CV2 { a.hadamard(&b) }
        /// A·x.
        matvec((a, a_dot): CM22 in real(), (x, x_dot): CV2 in real()) -> CV2 { a.matmul(&x) }
        /// Σa.
        sum((a, a_dot): CV2 in real()) -> C64 { a.sum() }
        /// A bias on every row.
        add_rows((a, a_dot): CM22 in real(), (b, b_dot): CV2 in real()) -> CM22 { a.add_rows(&b) }
        /// A gain on every row: ā = ȳ·conj(g), ḡ = Σᵢ conj(aᵢ)·ȳᵢ.
        mul_rows((a, a_dot): CM22 in real(), (g, g_dot): CV2 in real()) -> CM22 { a.mul_rows(&g) }
        /// conj z·u: not holomorphic in z.
        conj((z, z_dot): C64 in real(), (u, u_dot): C64 in real()) -> C64 { z.conj() * u } tape { &z.conj() * &u }
        /// Re z + 2·Im z: a real function of a complex number.
        parts((z, z_dot): C64 in real()) -> f64 { z.re() + z.im() * 2.0 }
        /// |z|².
        norm_sqr((z, z_dot): C64 in real()) -> f64 { z.norm_sqr() }
        /// |z|.
        absolute((z, z_dot): C64 in away_from_zero()) -> f64 { z.abs() }
        /// Real constants on either side of a complex scalar.
        real_constants((z, z_dot): C64 in real(), (u, u_dot): C64 in away_from_zero()) -> C64 {
            (1.0 - z * 0.5) * 2.0 + z / 4.0 - 0.25 + 3.0 / u
        } tape { (1.0 - &z * 0.5) * 2.0 + &z / 4.0 - 0.25 + 3.0 / &u }
        /// conj a elementwise.
        vector_conj((a, a_dot): CV2 in real()) -> CV2 { a.conj() }
        /// Re a elementwise.
        vector_re((a, a_dot): CV2 in real()) -> V2 { a.re() }
        /// Im a elementwise.
        vector_im((a, a_dot): CV2 in real()) -> V2 { a.im() }
        /// |a|² elementwise.
        vector_norm_sqr((a, a_dot): CV2 in real()) -> V2 { a.norm_sqr() }
        /// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ.
        inner((a, a_dot): CV2 in real(), (b, b_dot): CV2 in real()) -> C64 { a.inner(&b) }
        /// ‖A·x − b‖²: the real least-squares loss of complex parameters.
        least_squares((a, a_dot): CM22 in real(), (x, x_dot): CV2 in real(); b: CV2 in real()) -> f64 {
            let r = a.matmul(&x) - b;
            r.norm_sqr().sum()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The pullbacks of z·u, z/u and eᶻ are conj(∂f)·ȳ, and each is the gradient of
        /// the real loss Re(conj(ȳ)·f) in the real and imaginary parts of its inputs.
        #[test]
        fn pullbacks_are_conjugate_derivatives(
            z in draw::<C64>(real()),
            u in draw::<C64>(away_from_zero()),
            z_dot in direction::<C64>(),
            y_bar in direction::<C64>(),
        ) {
            let loss = |y: C64| (y_bar.conj() * y).re;

            let product = pulled(functions::multiplication::vjp(z, u), &y_bar).1;
            close("z·u", &product, &(y_bar * u.conj(), y_bar * z.conj()))?;
            let differences = central_differences(|&(z, u): &(C64, C64)| loss(z * u), &(z, u));
            close_to("z·u (finite differences)", &product, &differences, FD_TOL)?;

            let quotient = pulled(functions::division::vjp(z, u), &y_bar).1;
            close("z/u", &quotient, &(y_bar / u.conj(), -y_bar * (z / (u * u)).conj()))?;
            let differences = central_differences(|&(z, u): &(C64, C64)| loss(z / u), &(z, u));
            close_to("z/u (finite differences)", &quotient, &differences, FD_TOL)?;

            let exponential = pulled(functions::exp::vjp(z), &y_bar).1;
            close("exp z", &exponential, &(z.exp().conj() * y_bar))?;
            let differences = central_differences(|z: &C64| loss(z.exp()), &z);
            close_to("exp z (finite differences)", &exponential, &differences, FD_TOL)?;

            // The tangent is f′(z)·ż, holomorphic.
            let (_, tangent) = functions::exp::jvp(z, &z_dot);
            close("exp z (tangent)", &tangent, &(z.exp() * z_dot))?;
        }
    }
}

/// A heap matrix of `rows` × `columns` from row-major `elements`.
fn heap_matrix(rows: usize, columns: usize, elements: &[f64]) -> DMatrix<f64> {
    DMatrix::from_shape_slice((Dyn(rows), Dyn(columns)), elements).unwrap()
}

/// A heap vector of `elements`.
fn heap_vector(elements: &[f64]) -> DVector<f64> {
    DVector::from_shape_slice((Dyn(elements.len()),), elements).unwrap()
}

/// Σ tanh(W·x) with the weights a constant by reference.
#[differentiable(wrt(x))]
fn heap_layer(w: &DMatrix<f64>, x: DVector<f64>) -> f64 {
    w.matmul(&x).tanh().sum()
}

/// ⟨W·x, W·x⟩ + mean(W ⊙ W), both differentiated.
#[differentiable]
fn heap_bilinear(w: DMatrix<f64>, x: DVector<f64>) -> f64 {
    let y = w.matmul(&x);
    y.dot(&y) + w.hadamard(&w).mean()
}

proptest! {
    #![proptest_config(config())]

    /// Static mode on heap tensors (dynamic shapes), with a constant passed by reference.
    #[test]
    fn heap_tensors(
        w in vec(real(), 6),
        x in vec(real(), 3),
        w_dot in vec(real(), 6),
        x_dot in vec(real(), 3),
        cotangent in real(),
    ) {
        let (w, x) = (heap_matrix(2, 3, &w), heap_vector(&x));
        let (w_dot, x_dot) = (heap_matrix(2, 3, &w_dot), heap_vector(&x_dot));
        let w_constant = w.lift(&w.zero_tangent());
        agree(
            pulled(heap_layer::vjp(&w, x.clone()), &cotangent),
            heap_layer::jvp(&w, x.clone(), &x_dot),
            tape(|x: Var<DVector<f64>>| Var::constant(w.clone()).matmul(&x).tanh().sum(), &x, &cotangent),
            jvp(|x| w_constant.matmul(&x).tanh().sum(), &x, &x_dot),
            &x_dot,
            &cotangent,
        )?;
        let point = (w.clone(), x.clone());
        let direction = (w_dot.clone(), x_dot.clone());
        agree(
            pulled(heap_bilinear::vjp(w.clone(), x.clone()), &cotangent),
            heap_bilinear::jvp(w.clone(), x.clone(), &w_dot, &x_dot),
            tape(
                |(w, x): (Var<DMatrix<f64>>, Var<DVector<f64>>)| {
                    let y = w.matmul(&x);
                    &y.dot(&y) + &w.hadamard(&w).mean()
                },
                &point,
                &cotangent,
            ),
            jvp(
                |(w, x): (DMatrix<D>, DVector<D>)| {
                    let y = w.matmul(&x);
                    y.dot(&y) + w.hadamard(&w).mean()
                },
                &point,
                &direction,
            ),
            &direction,
            &cotangent,
        )?;
    }
}

/// Static mode's gradient at `x` against central differences of `f`, and its tangent
/// along `direction` against ⟨gradient, direction⟩.
fn matches_differences<X: Differentiable + Clone>(
    (value, gradient): (f64, X::Tangent),
    (tangent_value, tangent): (f64, f64),
    f: impl Fn(&X) -> f64,
    x: &X,
    direction: &X::Tangent,
) -> Result<(), TestCaseError> {
    prop_assert!((value - f(x)).abs() <= TOL * (1.0 + value.abs()), "value {} vs {}", value, f(x));
    close("value of jvp", &tangent_value, &value)?;
    close_to("gradient (against finite differences)", &gradient, &central_differences(f, x), FD_TOL)?;
    let (expected, scale) = inner(&gradient, direction);
    prop_assert!(
        (tangent - expected).abs() <= TOL * (1.0 + scale),
        "tangent {:e} vs {:e}",
        tangent,
        expected
    );
    Ok(())
}

/// A scalar function through every elementary function, the four operators and
/// literals on both sides.
#[differentiable]
fn wave(x: f64) -> f64 {
    let a = x.sin() * x.exp();
    let b = a / (x * x + 1.0);
    let c = (x * x + 0.5).sqrt().ln() + (x * x + 1.0).powf(0.7);
    b.tanh() - 0.5 * x.powi(3) + (2.0 - x).cos() * c
}

/// A small network: every tensor primitive, composed.
#[differentiable]
fn network(w: M23, x: V3, b: V2) -> f64 {
    let h = (w.matmul(&x) + b).sigmoid();
    let r = h.hadamard(&h.tanh()) - b * 0.5;
    let s = w.transpose().matmul(&h).exp();
    r.dot(&r) / 3.0 + x.relu().mean() * s.sum() - (w.hadamard(&w).sum() + 1.0).ln() / x.dot(&x)
}

/// 2·tanh(v), called from [`layered`].
#[differentiable]
fn squash(v: V2) -> V2 {
    v.tanh() * 2.0
}

/// A call of another differentiable function, its result used twice.
#[differentiable]
fn layered(w: M23, x: V3) -> f64 {
    let h = squash(w.matmul(&x));
    h.dot(&h) + squash(h).sum()
}

/// (x·σ(g) + x) ⊙ r of its arguments, one of which the caller below leaves constant:
/// its record computes only the cotangents asked for.
#[differentiable]
fn gate(x: DVector<f64>, g: DVector<f64>, r: DVector<f64>) -> DVector<f64> {
    GatedResidual.apply([&x, &g, &x]).hadamard(&r)
}

/// A fused function inside a composite on heap tensors with a constant input, and
/// through a call of another differentiable function with one argument constant.
#[differentiable(wrt(w, x))]
fn gated(w: &DMatrix<f64>, x: DVector<f64>, r: &DVector<f64>) -> f64 {
    let h = w.matmul(&x);
    let y = GatedResidual.apply([&h, &h.tanh(), r]);
    let z = gate(y.clone(), r.clone(), h);
    y.dot(&y) + z.dot(&z)
}

/// A fused function of one differentiated input used twice and a constant one.
#[differentiable(wrt(a))]
fn gated_twice(a: V3, g: V3) -> V3 {
    GatedResidual.apply([&a, &g, &a])
}

/// Fused functions inside a loop's body and the arms of an `if`.
#[differentiable]
fn gated_steps(a: V3, g: V3) -> f64 {
    let mut h = a;
    for step in 0..4 {
        h = if step % 2 == 0 {
            GatedResidual.apply([&h, &g, &a])
        } else {
            GatedResidual.apply([&h.tanh(), &h, &g])
        };
    }
    h.dot(&h)
}

/// Its Jacobians (lanes of tangents and of cotangents at once) against differences.
#[test]
fn fused_jacobians_match_finite_differences() {
    let (a, g) = (V3::from_array([0.4, -1.2, 0.9]), V3::from_array([-0.3, 0.8, 1.5]));
    let (forward, reverse): (M33, M33) = (gated_twice::jacfwd(a, g), gated_twice::jacrev(a, g));
    for j in 0..3 {
        let moved = |sign: f64| {
            let mut a = a;
            a[[j]] += sign * STEP;
            gated_twice(a, g)
        };
        let (plus, minus) = (moved(1.0), moved(-1.0));
        for i in 0..3 {
            let numeric = (plus[[i]] - minus[[i]]) / (2.0 * STEP);
            assert!((forward[[i, j]] - reverse[[i, j]]).abs() < 1e-14, "{forward:?} vs {reverse:?}");
            assert!((reverse[[i, j]] - numeric).abs() < 1e-8, "{} vs {numeric}", reverse[[i, j]]);
        }
    }
    // Elementwise: nothing off the diagonal.
    assert!((0..3).all(|i| (0..3).all(|j| i == j || reverse[[i, j]] == 0.0)));
}

proptest! {
    #![proptest_config(config())]

    /// A fused function in a composite and in a called function.
    #[test]
    fn fused_composite_matches_finite_differences(
        w in vec(real(), 6),
        x in vec(real(), 3),
        x_dot in vec(real(), 3),
        r in vec(real(), 2),
    ) {
        let (w, x, x_dot, r) = (heap_matrix(2, 3, &w), heap_vector(&x), heap_vector(&x_dot), heap_vector(&r));
        let (value, (w_bar, x_bar)) = gated::value_and_grad(&w, x.clone(), &r);
        matches_differences(
            (value, x_bar),
            gated::jvp(&w, x.clone(), &r, &w.scale(0.0), &x_dot),
            |x: &DVector<f64>| gated(&w, x.clone(), &r),
            &x,
            &x_dot,
        )?;
        // In w: one direction's differences, against the gradient and the tangent.
        let w_dot = heap_matrix(2, 3, &[0.3, -0.1, 0.7, 0.2, -0.5, 0.4]);
        let moved = |sign: f64| gated(&(&w + &w_dot.scale(sign * STEP)), x.clone(), &r);
        let numeric = (moved(1.0) - moved(-1.0)) / (2.0 * STEP);
        let ((analytic, scale), (_, tangent)) = (inner(&w_bar, &w_dot), gated::jvp(&w, x.clone(), &r, &w_dot, &x.scale(0.0)));
        prop_assert!((analytic - numeric).abs() <= FD_TOL * (1.0 + scale), "{} vs {}", analytic, numeric);
        prop_assert!((tangent - analytic).abs() <= TOL * (1.0 + scale), "{} vs {}", tangent, analytic);
    }

    /// Fused functions in a loop and in branches.
    #[test]
    fn fused_steps_match_finite_differences(
        a in draw::<V3>(real()),
        g in draw::<V3>(real()),
        tangent in direction::<(V3, V3)>(),
    ) {
        let (a_dot, g_dot) = tangent;
        matches_differences(
            gated_steps::value_and_grad(a, g),
            gated_steps::jvp(a, g, &a_dot, &g_dot),
            |&(a, g): &(V3, V3)| gated_steps(a, g),
            &(a, g),
            &tangent,
        )?;
    }

    /// Scalar to scalar.
    #[test]
    fn scalar_composite_matches_finite_differences(x in real(), x_dot in real()) {
        matches_differences(wave::value_and_grad(x), wave::jvp(x, &x_dot), |x: &f64| wave(*x), &x, &x_dot)?;
    }

    /// Tensors to scalar.
    #[test]
    fn tensor_composite_matches_finite_differences(
        w in draw::<M23>(real()),
        x in draw::<V3>(away_from_zero()),
        b in draw::<V2>(real()),
        tangent in direction::<(M23, V3, V2)>(),
    ) {
        let (w_dot, x_dot, b_dot) = tangent;
        matches_differences(
            network::value_and_grad(w, x, b),
            network::jvp(w, x, b, &w_dot, &x_dot, &b_dot),
            |&(w, x, b): &(M23, V3, V2)| network(w, x, b),
            &(w, x, b),
            &tangent,
        )?;
    }

    /// Through calls of another differentiable function.
    #[test]
    fn calls_match_finite_differences(
        w in draw::<M23>(real()),
        x in draw::<V3>(real()),
        tangent in direction::<(M23, V3)>(),
    ) {
        let (w_dot, x_dot) = tangent;
        matches_differences(
            layered::value_and_grad(w, x),
            layered::jvp(w, x, &w_dot, &x_dot),
            |&(w, x): &(M23, V3)| layered(w, x),
            &(w, x),
            &tangent,
        )?;
    }

    /// Heap tensors, one argument differentiated.
    #[test]
    fn heap_composite_matches_finite_differences(
        w in vec(real(), 6),
        x in vec(real(), 3),
        x_dot in vec(real(), 3),
    ) {
        let (w, x, x_dot) = (heap_matrix(2, 3, &w), heap_vector(&x), heap_vector(&x_dot));
        matches_differences(
            heap_layer::value_and_grad(&w, x.clone()),
            heap_layer::jvp(&w, x.clone(), &x_dot),
            |x: &DVector<f64>| heap_layer(&w, x.clone()),
            &x,
            &x_dot,
        )?;
    }
}

/// x²: the second argument is differentiated but does not reach the result, so its
/// gradient is zero whatever the buffer held.
#[differentiable]
fn ignores_second(x: f64, _y: f64) -> f64 {
    x * x
}

/// `value_and_grad_into` into a gradient full of `junk` gives `value_and_grad`'s
/// value and gradient, and `grad` the same gradient.
fn into_overwrites<G: VectorSpace>(
    (value, gradient): (f64, G),
    grad: G,
    into: impl FnOnce(&mut G) -> f64,
) -> Result<(), TestCaseError> {
    let mut junk = gradient.clone();
    junk.map_reals(&mut |_| 7.0);
    let into_value = into(&mut junk);
    prop_assert_eq!(into_value, value);
    close("value_and_grad_into", &junk, &gradient)?;
    close("grad", &grad, &gradient)
}

proptest! {
    #![proptest_config(config())]

    /// `value_and_grad_into` overwrites the gradient it is given: with an operand
    /// used twice, both operands differentiated, a local used twice, a reduction, a
    /// call, and an argument that does not reach the result.
    #[test]
    fn value_and_grad_into_overwrites_the_gradient(
        x in real(),
        y in real(),
        a in draw::<V3>(real()),
        b in draw::<V3>(real()),
        w in draw::<M23>(real()),
        v in draw::<V2>(real()),
    ) {
        use scalars::functions::multiplication_twice;
        use tensors::functions::{dot, dot_of_difference, matrix_sum};
        into_overwrites(
            multiplication_twice::value_and_grad(x),
            multiplication_twice::grad(x),
            |g| multiplication_twice::value_and_grad_into(x, g),
        )?;
        into_overwrites(dot::value_and_grad(a, b), dot::grad(a, b), |g| dot::value_and_grad_into(a, b, g))?;
        into_overwrites(
            dot_of_difference::value_and_grad(a, b),
            dot_of_difference::grad(a, b),
            |g| dot_of_difference::value_and_grad_into(a, b, g),
        )?;
        into_overwrites(matrix_sum::value_and_grad(w), matrix_sum::grad(w), |g| matrix_sum::value_and_grad_into(w, g))?;
        into_overwrites(layered::value_and_grad(w, a), layered::grad(w, a), |g| layered::value_and_grad_into(w, a, g))?;
        into_overwrites(network::value_and_grad(w, a, v), network::grad(w, a, v), |g| {
            network::value_and_grad_into(w, a, v, g)
        })?;
        let (value, (gx, gy)) = ignores_second::value_and_grad(x, y);
        prop_assert_eq!((value, gx, gy), (ignores_second(x, y), 2.0 * x, 0.0));
        into_overwrites((value, (gx, gy)), ignores_second::grad(x, y), |g| ignores_second::value_and_grad_into(x, y, g))?;
    }
}

/// `pulled` written over `old`, or added to it, as `write` says.
fn written<V: VectorSpace>(old: &V, pulled: &V, write: Write) -> V {
    match write {
        Write::Overwrite => pulled.clone(),
        Write::Accumulate => old.added(pulled),
    }
}

/// Both orders of one `Write` for each operand, and the two equal ones.
const WRITES: [(Write, Write); 4] = [
    (Write::Overwrite, Write::Accumulate),
    (Write::Accumulate, Write::Overwrite),
    (Write::Overwrite, Write::Overwrite),
    (Write::Accumulate, Write::Accumulate),
];

/// A binary rule's fused and `_into` forms against its plain ones at (a, b): with
/// `old` contents in the destinations, `pull_lhs_into`, `pull_rhs_into` and
/// `pull_both_into` write `pull_lhs` / `pull_rhs` over them or add them, `pull_both`
/// is the pair, and `push_both` the sum of `push_lhs` and `push_rhs`.
fn binary_forms_agree<A: Differentiable, B: Differentiable, Op: BinaryRule<A, B>>(
    op: Op,
    (a, b): (&A, &B),
    (a_dot, b_dot): (&TangentOf<A>, &TangentOf<B>),
    y_bar: &TangentOf<Op::Output>,
    (a_old, b_old): (&TangentOf<A>, &TangentOf<B>),
) -> Result<(), TestCaseError> {
    let y = op.value(a, b);
    let args = (a, b, &y);
    let (a_bar, b_bar) = (op.pull_lhs(args, y_bar), op.pull_rhs(args, y_bar));
    let both = op.pull_both(args, y_bar);
    close("pull_both (ā)", &both.0, &a_bar)?;
    close("pull_both (b̄)", &both.1, &b_bar)?;
    let pushed = op.push_lhs(args, a_dot).added(&op.push_rhs(args, b_dot));
    close("push_both", &op.push_both(args, a_dot, b_dot), &pushed)?;
    for (a_write, b_write) in WRITES {
        let (mut a_into, mut b_into) = (a_old.clone(), b_old.clone());
        op.pull_both_into(args, y_bar, (&mut a_into, a_write), (&mut b_into, b_write));
        close(&format!("pull_both_into (ā, {a_write:?})"), &a_into, &written(a_old, &a_bar, a_write))?;
        close(&format!("pull_both_into (b̄, {b_write:?})"), &b_into, &written(b_old, &b_bar, b_write))?;
        let (mut a_into, mut b_into) = (a_old.clone(), b_old.clone());
        op.pull_lhs_into(args, y_bar, &mut a_into, a_write);
        op.pull_rhs_into(args, y_bar, &mut b_into, b_write);
        close(&format!("pull_lhs_into ({a_write:?})"), &a_into, &written(a_old, &a_bar, a_write))?;
        close(&format!("pull_rhs_into ({b_write:?})"), &b_into, &written(b_old, &b_bar, b_write))?;
    }
    Ok(())
}

/// A unary rule's `pull_into` against its `pull` at x, over `old` contents.
fn unary_forms_agree<X: Differentiable, Op: UnaryRule<X>>(
    op: Op,
    x: &X,
    y_bar: &TangentOf<Op::Output>,
    old: &TangentOf<X>,
) -> Result<(), TestCaseError> {
    let y = op.value(x);
    let x_bar = op.pull(x, &y, y_bar);
    for write in [Write::Overwrite, Write::Accumulate] {
        let mut into = old.clone();
        op.pull_into(x, &y, y_bar, &mut into, write);
        close(&format!("pull_into ({write:?})"), &into, &written(old, &x_bar, write))?;
    }
    Ok(())
}

/// Values cut one after another from a list of drawn reals.
struct Pool(std::vec::IntoIter<f64>);

impl Pool {
    fn scalar(&mut self) -> f64 {
        self.0.next().expect("enough drawn reals")
    }

    fn complex(&mut self) -> C64 {
        C64::new(self.scalar(), self.scalar())
    }

    fn tensor<E: Scalar, S: StaticShape>(
        &mut self,
        element: impl Fn(&mut Self) -> E,
    ) -> Tensor<E, S, Inline> {
        Tensor::from_flat_fn(S::default(), |_| element(self))
    }

    fn reals<S: StaticShape>(&mut self) -> Tensor<f64, S, Inline> {
        self.tensor(Self::scalar)
    }

    fn heap_matrix(&mut self, rows: usize, columns: usize) -> DMatrix<f64> {
        Tensor::from_flat_fn((Dyn(rows), Dyn(columns)), |_| self.scalar())
    }

    fn heap_vector(&mut self, len: usize) -> DVector<f64> {
        Tensor::from_flat_fn((Dyn(len),), |_| self.scalar())
    }
}

/// The elementary functions, each with an exponent where it takes one.
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
    Elementary::Powf(1.5),
];

proptest! {
    #![proptest_config(config())]

    /// The fused and `_into` forms of every binary rule, on scalars, inline and heap
    /// tensors and complex numbers.
    #[test]
    fn binary_into_forms_agree_with_the_value_forms(reals in vec(real(), 2000)) {
        let mut p = Pool(reals.into_iter());
        macro_rules! check {
            ($op:expr, $a:expr, $b:expr) => {{
                let (a, b) = ($a, $b);
                let y = BinaryRule::value(&$op, &a, &b);
                let (a_dot, b_dot, a_old, b_old) = ($a, $b, $a, $b);
                let mut y_bar = y.clone();
                y_bar.map_reals(&mut |_| p.scalar());
                binary_forms_agree($op, (&a, &b), (&a_dot, &b_dot), &y_bar, (&a_old, &b_old))?;
            }};
        }
        let divisor = |p: &mut Pool| 1.0 + p.scalar().abs();
        check!(Addition, p.scalar(), p.scalar());
        check!(Addition, p.reals::<(Const<3>,)>(), p.reals::<(Const<3>,)>());
        check!(Addition, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<2>, Const<3>)>());
        check!(Addition, p.heap_vector(4), p.heap_vector(4));
        check!(Subtraction, p.scalar(), p.scalar());
        check!(Subtraction, p.reals::<(Const<3>,)>(), p.reals::<(Const<3>,)>());
        check!(Multiplication, p.scalar(), p.scalar());
        check!(Multiplication, p.reals::<(Const<3>,)>(), p.scalar());
        check!(Multiplication, p.scalar(), p.reals::<(Const<2>, Const<3>)>());
        check!(Multiplication, p.complex(), p.complex());
        check!(Division, p.scalar(), divisor(&mut p));
        check!(Division, p.reals::<(Const<3>,)>(), divisor(&mut p));
        check!(Division, p.complex(), C64::new(divisor(&mut p), p.scalar()));
        check!(MatrixProduct, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<3>, Const<2>)>());
        check!(MatrixProduct, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<3>,)>());
        check!(MatrixProduct, p.heap_matrix(2, 3), p.heap_matrix(3, 4));
        check!(MatrixProduct, p.heap_matrix(3, 2), p.heap_vector(2));
        check!(MatrixProduct, p.tensor::<C64, (Const<2>, Const<2>)>(Pool::complex), p.tensor::<C64, (Const<2>,)>(Pool::complex));
        // A diagonally dominant matrix: well conditioned.
        let dominant = |p: &mut Pool| p.reals::<(Const<3>, Const<3>)>() + M33::identity() * 8.0;
        check!(LinearSolve, dominant(&mut p), p.reals::<(Const<3>,)>());
        check!(LinearSolve, dominant(&mut p), p.reals::<(Const<3>, Const<2>)>());
        check!(LowerTriangularSolve, dominant(&mut p), p.reals::<(Const<3>,)>());
        check!(UpperTriangularSolve, dominant(&mut p), p.reals::<(Const<3>, Const<2>)>());
        // Tall, with 8 on its top diagonal: well-conditioned columns.
        let tall = |p: &mut Pool| p.reals::<(Const<4>, Const<3>)>() + Matrix::<f64, 4, 3>::from_fn(|[i, j]| if i == j { 8.0 } else { 0.0 });
        check!(LeastSquares, tall(&mut p), p.reals::<(Const<4>,)>());
        check!(LeastSquares, tall(&mut p), p.reals::<(Const<4>, Const<2>)>());
        check!(HadamardProduct, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<2>, Const<3>)>());
        check!(HadamardProduct, p.tensor::<C64, (Const<2>,)>(Pool::complex), p.tensor::<C64, (Const<2>,)>(Pool::complex));
        check!(DotProduct, p.reals::<(Const<3>,)>(), p.reals::<(Const<3>,)>());
        check!(CrossProduct, p.reals::<(Const<3>,)>(), p.reals::<(Const<3>,)>());
        check!(CrossProduct, p.tensor::<C64, (Const<3>,)>(Pool::complex), p.tensor::<C64, (Const<3>,)>(Pool::complex));
        check!(DotProduct, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<2>, Const<3>)>());
        check!(DotProduct, p.heap_vector(5), p.heap_vector(5));
        check!(InnerProduct, p.tensor::<C64, (Const<2>,)>(Pool::complex), p.tensor::<C64, (Const<2>,)>(Pool::complex));
        check!(ElementwiseMaximum, p.reals::<(Const<2>, Const<3>)>(), p.reals::<(Const<2>, Const<3>)>());
        check!(ElementwiseMinimum, p.heap_vector(4), p.heap_vector(4));
    }

    /// `pull_into` of every unary rule, on scalars, inline and heap tensors.
    #[test]
    fn unary_into_forms_agree_with_the_value_forms(reals in vec(real(), 2000)) {
        let mut p = Pool(reals.into_iter());
        macro_rules! check {
            ($op:expr, $x:expr) => {{
                let x = $x;
                let y = UnaryRule::value(&$op, &x);
                let old = $x;
                let mut y_bar = y.clone();
                y_bar.map_reals(&mut |_| p.scalar());
                unary_forms_agree($op, &x, &y_bar, &old)?;
            }};
        }
        let positive = |p: &mut Pool| 0.25 + p.scalar().abs();
        for f in ELEMENTARY {
            check!(f, positive(&mut p));
            check!(f, p.tensor::<f64, (Const<3>,)>(positive));
            check!(f, p.tensor::<f64, (Const<2>, Const<3>)>(positive));
            check!(f, Tensor::<f64, (Dyn,), Heap>::from_flat_fn((Dyn(4),), |_| positive(&mut p)));
            check!(f, C64::new(positive(&mut p), p.scalar()));
        }
        check!(Negation, p.scalar());
        check!(Negation, p.reals::<(Const<3>,)>());
        check!(Relu, p.scalar());
        check!(Relu, p.reals::<(Const<2>, Const<3>)>());
        check!(Summation, p.reals::<(Const<2>, Const<3>)>());
        check!(Summation, p.heap_vector(3));
        check!(Mean, p.reals::<(Const<3>,)>());
        check!(EuclideanNorm, p.reals::<(Const<2>, Const<3>)>());
        check!(EuclideanNorm, p.heap_vector(4));
        check!(EuclideanNorm, p.tensor::<C64, (Const<3>,)>(Pool::complex));
        check!(Transposition, p.reals::<(Const<2>, Const<3>)>());
        check!(RowSelection::from(1), p.reals::<(Const<2>, Const<3>)>());
        check!(ColumnSelection::from(2), p.reals::<(Const<2>, Const<3>)>());
        check!(ColumnSelection::from(0), p.tensor::<C64, (Const<3>, Const<2>)>(Pool::complex));
        check!(RowSelection::from(2), p.heap_matrix(3, 2));
        check!(Transposition, p.heap_matrix(3, 2));
        // Diagonally dominant: well conditioned, and its symmetric part positive definite.
        let dominant = |p: &mut Pool| p.reals::<(Const<3>, Const<3>)>() + M33::identity() * 8.0;
        check!(MatrixInverse, dominant(&mut p));
        check!(Determinant, dominant(&mut p));
        check!(LogAbsDeterminant, dominant(&mut p));
        check!(CholeskyFactor, dominant(&mut p));
        check!(SymmetricEigendecomposition, dominant(&mut p) + Matrix::<f64, 3, 3>::from_fn(|[i, j]| if i == j { 4.0 * i as f64 } else { 0.0 }));
        check!(QrDecomposition, p.reals::<(Const<4>, Const<3>)>() + Matrix::<f64, 4, 3>::from_fn(|[i, j]| if i == j { 8.0 } else { 0.0 }));
        // Singular values about 8, 4 and 2: apart, so derivatives exist.
        check!(SingularValues, p.reals::<(Const<4>, Const<3>)>() * 0.3 + Matrix::<f64, 4, 3>::from_fn(|[i, j]| if i == j { [8.0, 4.0, 2.0][i] } else { 0.0 }));
        check!(SingularValueDecomposition, p.reals::<(Const<4>, Const<3>)>() * 0.3 + Matrix::<f64, 4, 3>::from_fn(|[i, j]| if i == j { [8.0, 4.0, 2.0][i] } else { 0.0 }));
        check!(SingularValueDecomposition, p.reals::<(Const<3>, Const<3>)>() * 0.3 + Matrix::<f64, 3, 3>::from_fn(|[i, j]| if i == j { [8.0, 4.0, 2.0][i] } else { 0.0 }));
        check!(PseudoInverse, p.reals::<(Const<4>, Const<3>)>() + Matrix::<f64, 4, 3>::from_fn(|[i, j]| if i == j { 3.0 } else { 0.0 }));
        check!(PseudoInverse, p.reals::<(Const<2>, Const<3>)>() + Matrix::<f64, 2, 3>::from_fn(|[i, j]| if i == j { 3.0 } else { 0.0 }));
        check!(MatrixExponential, p.reals::<(Const<3>, Const<3>)>());
        check!(MatrixExponential, p.reals::<(Const<3>, Const<3>)>() * 3.0);
        check!(Diagonal, p.reals::<(Const<3>, Const<3>)>());
        check!(DiagonalMatrix, p.heap_vector(3));
        check!(CrossMatrix, p.reals::<(Const<3>,)>());
        check!(CrossMatrix, p.tensor::<C64, (Const<3>,)>(Pool::complex));
        check!(SymmetricEigenvalues, dominant(&mut p));
        // Eigenvalues a few units apart: well-conditioned eigenvectors.
        let spread = M33::from_array([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 6.0]]);
        check!(SymmetricEigenvectors, p.reals::<(Const<3>, Const<3>)>() + spread);
        check!(Conjugation, p.complex());
        check!(Conjugation, p.tensor::<C64, (Const<2>,)>(Pool::complex));
        check!(RealPart, p.complex());
        check!(RealPart, p.tensor::<C64, (Const<2>, Const<2>)>(Pool::complex));
        check!(ImaginaryPart, p.complex());
        check!(ImaginaryPart, p.tensor::<C64, (Const<2>,)>(Pool::complex));
        check!(NormSquared, p.complex());
        check!(NormSquared, p.tensor::<C64, (Const<2>,)>(Pool::complex));
    }

    /// The scalar sigmoid and relu rules, which `#[differentiable]` cannot reach (`f64`
    /// has no `sigmoid` or `relu` method): values and derivatives in closed form and
    /// against central differences.
    #[test]
    fn scalar_sigmoid_and_relu_rules(x in away_from_zero(), x_dot in real()) {
        let sigmoid = Elementary::Sigmoid;
        let y: f64 = UnaryRule::value(&sigmoid, &x);
        close("σ(x)", &y, &(1.0 / (1.0 + (-x).exp())))?;
        let slope = y * (1.0 - y);
        close("σ push", &UnaryRule::push(&sigmoid, &x, &y, &x_dot), &(slope * x_dot))?;
        close("σ pull", &UnaryRule::pull(&sigmoid, &x, &y, &x_dot), &(slope * x_dot))?;
        let difference = central_differences(|x: &f64| UnaryRule::value(&sigmoid, x), &x);
        close_to("σ′ (finite differences)", &slope, &difference, FD_TOL)?;
        let y: f64 = UnaryRule::value(&Relu, &x);
        let step = if x > 0.0 { 1.0 } else { 0.0 };
        prop_assert_eq!(y, x.max(0.0));
        prop_assert_eq!(UnaryRule::push(&Relu, &x, &y, &x_dot), step * x_dot);
        prop_assert_eq!(UnaryRule::pull(&Relu, &x, &y, &x_dot), step * x_dot);
    }
}
