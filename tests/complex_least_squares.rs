//! The QR factorisation and least squares of complex matrices: the factors against
//! Gram–Schmidt with reorthogonalisation (a real positive diagonal of R makes them
//! unique), A = Q·R and QᴴQ = I; least-squares solutions against the normal
//! equations AᴴA·x = Aᴴb solved by elimination, and Aᴴ(b − A·x) = 0; rank errors,
//! magnitudes near both ends of the range, `Complex32`, `Dyn` sizes and inline
//! against heap; and derivatives in every mode under the crate's complex convention
//! (a cotangent is ∂L/∂Re + i·∂L/∂Im): the tape's against finite differences over
//! the real and imaginary parts in every cotangent direction, static mode's
//! pullbacks and tangents against finite differences, the public tangents and
//! cotangents against each other (Re⟨push(Ȧ), W⟩ = Re⟨Ȧ, pull(W)⟩), and forward
//! mode on duals (which takes its tangents from those at the values) against
//! the public tangents and, where a head entry is 0, central differences.

use fluxion::autodiff::check::{
    CheckOptions, GradientError, check_grad, check_pullback, check_pushforward, check_vjp,
};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{LinAlgError, least_squares_pullback, least_squares_push, qr_pullback, qr_push};
use fluxion::prelude::*;
use fluxion::shape::constraint::NoFewerRowsThan;
use proptest::prelude::*;

mod common;
use common::{complex_distance, real_inner};

type C = Complex64;
type Tall = Matrix<C, 5, 3>;
type Square = Matrix<C, 3, 3>;
type Sides = Matrix<C, 5, 2>;
type DynMatrix = Tensor<C, (Dyn, Dyn), Heap>;

/// `re + i·im` (entries in [−1, 1]) plus 2 on the top 3×3 diagonal.
fn tall_matrices() -> impl Strategy<Value = Tall> {
    tall_directions().prop_map(|d| d + Tall::from_fn(|[i, j]| C::new(if i == j { 2.0 } else { 0.0 }, 0.0)))
}

fn tall_directions() -> impl Strategy<Value = Tall> {
    (prop::array::uniform15(-1.0..1.0f64), prop::array::uniform15(-1.0..1.0f64))
        .prop_map(|(re, im)| Matrix::from_fn(|[i, j]| C::new(re[i * 3 + j], im[i * 3 + j])))
}

fn square_directions() -> impl Strategy<Value = Square> {
    (prop::array::uniform9(-1.0..1.0f64), prop::array::uniform9(-1.0..1.0f64))
        .prop_map(|(re, im)| Matrix::from_fn(|[i, j]| C::new(re[i * 3 + j], im[i * 3 + j])))
}

fn right_hand_sides() -> impl Strategy<Value = Sides> {
    (prop::array::uniform10(-2.0..2.0f64), prop::array::uniform10(-2.0..2.0f64))
        .prop_map(|(re, im)| Matrix::from_fn(|[i, j]| C::new(re[i * 2 + j], im[i * 2 + j])))
}

/// Q and R by classical Gram–Schmidt, each column orthogonalised twice: rᵢⱼ = qᵢᴴaⱼ,
/// rⱼⱼ = |aⱼ − Σ rᵢⱼqᵢ| (real and positive).
fn gram_schmidt<M: Dim, N: Dim>(
    a: &Tensor<C, (M, N), Heap>,
) -> (Tensor<C, (M, N), Heap>, Tensor<C, (N, N), Heap>) {
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    let mut q = a.clone();
    let mut r = Tensor::zeros_shaped((a.shape().1, a.shape().1));
    for j in 0..n {
        for _ in 0..2 {
            for i in 0..j {
                let c = (0..m).map(|k| q.as_slice()[k * n + i].conj() * q.as_slice()[k * n + j]).sum::<C>();
                r.as_mut_slice()[i * n + j] += c;
                for k in 0..m {
                    let step = c * q.as_slice()[k * n + i];
                    q.as_mut_slice()[k * n + j] -= step;
                }
            }
        }
        let length = (0..m).map(|k| q.as_slice()[k * n + j].norm_sqr()).sum::<f64>().sqrt();
        r.as_mut_slice()[j * n + j] = C::new(length, 0.0);
        (0..m).for_each(|k| q.as_mut_slice()[k * n + j] /= length);
    }
    (q, r)
}

/// A = Q·R, QᴴQ = I, R upper triangular (exact zeros below) with a real
/// non-negative diagonal, and Q, R those of Gram–Schmidt.
fn assert_factors<M: NoFewerRowsThan<N>, N: Dim>(a: &Tensor<C, (M, N), Heap>, tolerance: f64) {
    let (q, r) = a.qr();
    let n = r.shape().0.size();
    assert!(complex_distance(q.matmul(&r).as_slice(), a.as_slice()) < tolerance, "Q·R differs from A");
    let gram = q.conj().transposed_matmul(&q);
    assert!(
        complex_distance(gram.as_slice(), Tensor::<C, (N, N), Heap>::identity_sized(r.shape().0).as_slice())
            < tolerance,
        "QᴴQ = {gram:?}"
    );
    for i in 0..n {
        let diagonal = r.as_slice()[i * n + i];
        assert!(diagonal.im == 0.0 && diagonal.re >= 0.0, "R = {r:?}");
        assert!((0..i).all(|j| r.as_slice()[i * n + j] == C::new(0.0, 0.0)), "R = {r:?}");
    }
    let (q_expected, r_expected) = gram_schmidt(a);
    assert!(
        complex_distance(q.as_slice(), q_expected.as_slice()) < tolerance,
        "{q:?} against {q_expected:?}"
    );
    assert!(
        complex_distance(r.as_slice(), r_expected.as_slice()) < tolerance,
        "{r:?} against {r_expected:?}"
    );
}

#[test]
fn known_factors() {
    let i = C::new(0.0, 1.0);
    let one = C::new(1.0, 0.0);
    // [[1, i], [i, 1]]: orthogonal columns of length √2.
    let a: Matrix<C, 2, 2> = Matrix::from_array([[one, i], [i, one]]);
    let (q, r) = a.qr();
    let root = 2f64.sqrt();
    let expected_q = [one / root, i / root, i / root, one / root];
    assert!(complex_distance(q.as_slice(), &expected_q) < 1e-15, "{q:?}");
    assert!(complex_distance(r.as_slice(), &[one * root, 0.0 * one, 0.0 * one, one * root]) < 1e-15, "{r:?}");
    // A column whose first entry is imaginary: its phase moves into Q.
    let column: Matrix<C, 2, 1> = Matrix::from_array([[i * 3.0], [one * 4.0]]);
    let (q, r) = column.qr();
    assert_eq!(r[[0, 0]], one * 5.0);
    assert!(complex_distance(q.as_slice(), &[i * 0.6, one * 0.8]) < 1e-15, "{q:?}");
}

#[test]
fn dependent_columns_and_rank_errors() {
    let a: Matrix<C, 4, 3> = Matrix::from_fn(|[r, c]| match c {
        0 => C::new(1.0 + r as f64, 0.5),
        1 => C::new(r as f64 * r as f64, -1.0),
        _ => C::new(1.0 + r as f64, 0.5) * C::new(2.0, -3.0),
    });
    let b = Vector::from_fn(|[r]| C::new(r as f64, 1.0));
    assert_eq!(
        a.try_least_squares(&b).unwrap_err(),
        LinAlgError::RankDeficient { operation: "least_squares", column: 2 }
    );
    // The factors exist still: R's last diagonal entry is 0 to rounding.
    let (q, r) = a.qr();
    assert!(complex_distance(q.matmul(&r).as_slice(), a.as_slice()) < 1e-13);
    assert!(r[[2, 2]].norm() < 1e-14 * r[[0, 0]].norm(), "{r:?}");
    let message = common::panic_message(|| {
        qr_pullback(&q, &r.map(|x| if x == r[[2, 2]] { C::new(0.0, 0.0) } else { x }), &q, &r)
    });
    assert!(
        message.contains("qr_pullback: the matrix's columns are linearly dependent (column 2"),
        "{message}"
    );
}

#[test]
fn magnitudes_near_both_ends_of_the_range() {
    // A complex multiple c·A has the factors Q·φ and |c|·R, φ = c/|c|, exactly where
    // |c| is a power of two. Column 0 at 2¹⁰²¹ has |x₀| + ‖x‖ past the largest
    // number, and a column at 2⁻¹⁰⁷⁰ has it below the smallest normal one: either
    // way the reflector is built from x/‖x‖.
    let integers: Matrix<f64, 5, 3> = Matrix::from_array([
        [4.0, 1.0, 0.0],
        [3.0, 2.0, 1.0],
        [0.0, 1.0, 2.0],
        [0.0, 0.0, 1.0],
        [0.0, 3.0, 0.0],
    ]);
    let phase = C::new(0.6, 0.8);
    let a = integers.to_complex().scale(phase);
    let (q, r) = integers.to_complex().qr();
    for exponent in [1021, 1000, -1000] {
        let size = 2f64.powi(exponent);
        let (q_scaled, r_scaled) = a.scale(C::new(size, 0.0)).qr();
        assert!(
            complex_distance(q_scaled.as_slice(), q.scale(phase).as_slice()) < 1e-15,
            "2^{exponent}: {q_scaled:?}"
        );
        assert!(
            complex_distance(r_scaled.scale(C::new(1.0 / size, 0.0)).as_slice(), r.as_slice()) < 1e-14,
            "2^{exponent}"
        );
    }
    let tiny = f64::MIN_POSITIVE / 2f64.powi(48);
    let column: Matrix<C, 2, 1> = Matrix::from_array([[C::new(0.0, 3.0 * tiny)], [C::new(4.0 * tiny, 0.0)]]);
    let (q, r) = column.qr();
    assert_eq!(r[[0, 0]], C::new(5.0 * tiny, 0.0));
    assert!(complex_distance(q.as_slice(), &[C::new(0.0, 0.6), C::new(0.8, 0.0)]) < 1e-15, "{q:?}");
    // Least squares scales too: x of (c·A, c·b) is x of (A, b).
    let b = Vector::from_fn(|[i]| C::new(1.0 - i as f64, 0.5 * i as f64));
    let x = a.least_squares(&b);
    for exponent in [1000, -1000] {
        let c = C::new(2f64.powi(exponent), 0.0) * C::new(0.0, 1.0);
        let x_scaled = a.scale(c).least_squares(&b.scale(c));
        assert!(complex_distance(x_scaled.as_slice(), x.as_slice()) < 1e-14, "2^{exponent}: {x_scaled:?}");
    }
}

#[test]
fn single_precision_dynamic_sizes_and_storage_kinds() {
    let a: Matrix<Complex32, 3, 2> = Matrix::from_array([
        [Complex32::new(3.0, 0.5), Complex32::new(0.2, -1.0)],
        [Complex32::new(-0.4, 0.3), Complex32::new(2.5, -0.2)],
        [Complex32::new(0.1, 1.0), Complex32::new(-0.3, 0.6)],
    ]);
    let b =
        Vector::from_array([Complex32::new(1.0, -1.0), Complex32::new(0.5, 2.0), Complex32::new(-1.0, 0.0)]);
    let (q, r) = a.qr();
    let gram = q.conj().transposed_matmul(&q) - Matrix::<Complex32, 2, 2>::identity();
    assert!(gram.as_slice().iter().all(|x| x.norm() < 1e-6), "{gram:?}");
    assert!((q.matmul(&r) - a).as_slice().iter().all(|x| x.norm() < 1e-5));
    check_grad(
        |(a, b): (Var<Matrix<Complex32, 3, 2>>, Var<Vector<Complex32, 3>>)| {
            a.least_squares(&b).norm_sqr().sum()
        },
        &(a, b),
        CheckOptions::f32(),
    )
    .unwrap();
    // Every size up to 7 rows, against Gram–Schmidt; inline equal to heap.
    let mut random = common::TestRng::new(17);
    for m in 0..8 {
        for n in 0..=m {
            let shift = |i, j| C::new(if i == j { 2.0 } else { 0.0 }, 0.0);
            let a = DynMatrix::from_shape_fn((Dyn(m), Dyn(n)), |[i, j]| random.element::<C>() + shift(i, j));
            assert_factors(&a, 1e-13);
        }
    }
    let inline: Tall =
        Matrix::from_fn(|[i, j]| C::new((i * 3 + j) as f64 % 4.0 - 1.5, (i + 2 * j) as f64 % 3.0));
    let (q, r) = inline.qr();
    let (q_heap, r_heap) = inline.to_storage::<Heap>().qr();
    assert_eq!((q.to_vec(), r.to_vec()), (q_heap.to_vec(), r_heap.to_vec()));
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message = common::panic_message(|| wide.qr());
    assert!(message.contains("qr") && message.contains("[2, 3]"), "{message}");
}

/// Central differences of `f` at `a` along `direction`, step 1e-6.
fn central_difference<T: Scalar, const M: usize, const N: usize, const P: usize, const Q: usize>(
    f: impl Fn(&Matrix<T, M, N>) -> Matrix<T, P, Q>,
    a: &Matrix<T, M, N>,
    direction: &Matrix<T, M, N>,
) -> Matrix<T, P, Q> {
    let step = T::from_real(T::Real::from_f64(1e-6));
    let half = T::from_real(T::Real::from_f64(0.5e6));
    (f(&(a + direction.scale(step))) - f(&(a - direction.scale(step)))).scale(half)
}

#[test]
fn duals_where_a_head_entry_is_zero() {
    // a₀₀ = 0: the first reflection's sign (phase) there has no derivative, but the
    // factors and the solution do; the tangents on duals against central
    // differences, for real and complex A.
    let mut a: Tall = Matrix::from_fn(|[i, j]| {
        let shift = if i == j { 2.0 } else { 0.0 };
        C::new(((i * 3 + j * 5) % 7) as f64 / 7.0 - 0.4 + shift, ((i + 2 * j) % 5) as f64 / 5.0 - 0.3)
    });
    a[[0, 0]] = C::new(0.0, 0.0);
    let direction: Tall =
        Matrix::from_fn(|[i, j]| C::new(((i + j) % 3) as f64 - 1.0, ((2 * i + j) % 4) as f64 / 4.0));
    let b = Vector::from_fn(|[i]| C::new(1.0 - i as f64, 0.5));
    let (_, (q_dot, r_dot)) = jvp(|a: Matrix<Dual<C>, 5, 3>| a.qr(), &a, &direction);
    assert!(
        complex_distance(q_dot.as_slice(), central_difference(|a| a.qr().0, &a, &direction).as_slice())
            < 1e-8
    );
    assert!(
        complex_distance(r_dot.as_slice(), central_difference(|a| a.qr().1, &a, &direction).as_slice())
            < 1e-8
    );
    let b_dual = b.map(Dual::constant);
    let (_, x_dot) = jvp(|a: Matrix<Dual<C>, 5, 3>| a.least_squares(&b_dual), &a, &direction);
    let solution = |a: &Tall| Matrix::<C, 3, 1>::from_fn(|[i, _]| a.least_squares(&b)[[i]]);
    assert!(
        complex_distance(x_dot.as_slice(), central_difference(solution, &a, &direction).as_slice()) < 1e-8
    );
    let (real, real_direction) = (a.map(|z| z.re), direction.map(|z| z.re));
    let (_, (q_dot, r_dot)) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.qr(), &real, &real_direction);
    let expected = (
        central_difference(|a| a.qr().0, &real, &real_direction),
        central_difference(|a| a.qr().1, &real, &real_direction),
    );
    assert!(common::distance(&q_dot, &expected.0) < 1e-8 && common::distance(&r_dot, &expected.1) < 1e-8);
}

#[differentiable]
fn factors(a: &Tall) -> (Tall, Square) {
    a.qr()
}

#[differentiable]
fn fit(a: &Tall, b: &Sides) -> Matrix<C, 3, 2> {
    a.least_squares(b)
}

fn fail(error: GradientError) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn factors_against_gram_schmidt(a in tall_matrices()) {
        assert_factors(&a.to_storage::<Heap>(), 1e-14);
    }

    #[test]
    fn least_squares_against_the_normal_equations(a in tall_matrices(), b in right_hand_sides()) {
        let x = a.least_squares(&b);
        let adjoint = a.conj().transpose();
        let normal = adjoint.matmul(&a).solve(&adjoint.matmul(&b));
        prop_assert!(complex_distance(x.as_slice(), normal.as_slice()) < 1e-13, "{x:?} against {normal:?}");
        // The residual is orthogonal to A's columns.
        let residual = b - a.matmul(&x);
        prop_assert!(adjoint.matmul(&residual).as_slice().iter().all(|z| z.norm() < 1e-13));
        // A vector right-hand side is a column of the matrix one.
        let column = Vector::from_fn(|[i]| b[[i, 1]]);
        let x_column = a.least_squares(&column);
        prop_assert!(complex_distance(x_column.as_slice(), &[x[[0, 1]], x[[1, 1]], x[[2, 1]]]) < 1e-15);
    }

    #[test]
    fn derivatives_of_the_factors(a in tall_matrices(), w in tall_directions(), v in square_directions(), direction in tall_directions()) {
        let options = CheckOptions::f64();
        // The tape: every cotangent direction of both factors, and a real loss.
        check_vjp(|a: Var<Tall>| a.qr().0, &a, options).map_err(fail)?;
        check_vjp(|a: Var<Tall>| a.qr().1, &a, options).map_err(fail)?;
        check_grad(|a: Var<Tall>| { let (q, r) = a.qr(); (q - Var::constant(w)).norm_sqr().sum() + r.diagonal().ln().sum().re() }, &a, options).map_err(fail)?;
        // Static mode.
        check_pullback(|a: &Tall| a.qr(), factors::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.qr(), |a_dot| factors::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity between the public tangent and cotangent.
        let (q, r) = a.qr();
        let (q_dot, r_dot) = qr_push(&q, &r, &direction);
        let a_bar = qr_pullback(&q, &r, &w, &v);
        let lhs = real_inner(q_dot.as_slice(), w.as_slice()) + real_inner(r_dot.as_slice(), v.as_slice());
        let rhs = real_inner(direction.as_slice(), a_bar.as_slice());
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        // R's diagonal stays real: its tangent's is real too.
        prop_assert!((0..3).all(|k| r_dot[[k, k]].im.abs() < 1e-15));
        // The tangents against forward mode on complex duals, where the phase that
        // makes R's diagonal real has a tangent of its own, also where its value is 1
        // (the first reflection maps a negative real a₀₀ to a positive rₒₒ).
        let mut flipped = a;
        flipped[[0, 0]] = C::new(-1.0 - a[[0, 0]].norm(), 0.0);
        for a in [a, flipped] {
            let (q, r) = a.qr();
            let (q_dot, r_dot) = qr_push(&q, &r, &direction);
            let (_, (q_dual, r_dual)) = jvp(|a: Matrix<Dual<C>, 5, 3>| a.qr(), &a, &direction);
            prop_assert!(complex_distance(q_dot.as_slice(), q_dual.as_slice()) < 1e-12);
            prop_assert!(complex_distance(r_dot.as_slice(), r_dual.as_slice()) < 1e-12);
        }
    }

    #[test]
    fn derivatives_of_least_squares(
        a in tall_matrices(), b in right_hand_sides(), w in square_directions(),
        a_dot in tall_directions(), b_dot in right_hand_sides(),
    ) {
        let options = CheckOptions::f64();
        check_vjp(|(a, b): (Var<Tall>, Var<Sides>)| a.least_squares(&b), &(a, b), options).map_err(fail)?;
        let column = Vector::from_fn(|[i]| b[[i, 0]]);
        check_grad(|b: Var<Vector<C, 5>>| Var::constant(a).least_squares(&b).norm_sqr().sum(), &column, options).map_err(fail)?;
        check_pullback(|(a, b): &(Tall, Sides)| a.least_squares(b), fit::vjp(&a, &b).1, &(a, b), options).map_err(fail)?;
        check_pushforward(|(a, b): &(Tall, Sides)| a.least_squares(b), |(a_dot, b_dot)| fit::jvp(&a, &b, a_dot, b_dot).1, &(a, b), options).map_err(fail)?;
        // The adjoint identity, and the tangent against complex duals.
        let w: Matrix<C, 3, 2> = Matrix::from_fn(|[i, j]| w[[i, j]]);
        let x = a.least_squares(&b);
        let x_dot = least_squares_push(&a, &b, &x, Some(&a_dot), Some(&b_dot));
        let (a_bar, b_bar) = least_squares_pullback(&a, &b, &x, &w);
        let lhs = real_inner(x_dot.as_slice(), w.as_slice());
        let rhs = real_inner(a_dot.as_slice(), a_bar.as_slice()) + real_inner(b_dot.as_slice(), b_bar.as_slice());
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|(a, b): (Matrix<Dual<C>, 5, 3>, Matrix<Dual<C>, 5, 2>)| a.least_squares(&b), &(a, b), &(a_dot, b_dot));
        prop_assert!(complex_distance(x_dot.as_slice(), dual_tangent.as_slice()) < 1e-12);
    }
}
