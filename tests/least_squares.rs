//! The QR factorisation and least squares: values against identities (A = Q·R,
//! QᵀQ = I, R upper triangular with a non-negative diagonal, Aᵀ(b − A·x) = 0),
//! nalgebra's QR and the normal equations; the shape and rank errors; and
//! derivatives in every mode: the tape's gradients against finite differences and
//! the adjoint identity (`check_grad`), static mode's pullbacks and tangents against
//! finite differences, the public tangents and cotangents against each other
//! (⟨push(Ȧ), W⟩ = ⟨Ȧ, pull(W)⟩), tangents against forward mode on duals (which
//! runs the reflections on them), and second derivatives against differences of
//! the gradient.

use fluxion::autodiff::check::{CheckOptions, GradientError, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{LinAlgError, least_squares_pullback, least_squares_push, qr_pullback, qr_push};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::distance;

type Tall = Matrix<f64, 5, 3>;
type Square = Matrix<f64, 3, 3>;
type DynMatrix = Tensor<f64, (Dyn, Dyn), Heap>;

/// A well-conditioned 5×3 matrix: `entries` (in [−1, 1]) plus 2 on the top 3×3
/// diagonal.
fn well_conditioned(entries: [f64; 15]) -> Tall {
    Matrix::from_fn(|[i, j]| entries[i * 3 + j] + if i == j { 2.0 } else { 0.0 })
}

fn tall_matrices() -> impl Strategy<Value = Tall> {
    prop::array::uniform15(-1.0..1.0f64).prop_map(well_conditioned)
}

fn tall_directions() -> impl Strategy<Value = Tall> {
    prop::array::uniform15(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

fn square_directions() -> impl Strategy<Value = Square> {
    prop::array::uniform9(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

fn right_hand_sides() -> impl Strategy<Value = Matrix<f64, 5, 2>> {
    prop::array::uniform10(-2.0..2.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 2 + j]))
}

/// Checks A = Q·R, QᵀQ = I and R upper triangular with a non-negative diagonal.
fn assert_factors<M: Dim, N: Dim>(
    a: &Tensor<f64, (M, N), Heap>,
    q: &Tensor<f64, (M, N), Heap>,
    r: &Tensor<f64, (N, N), Heap>,
    tolerance: f64,
) {
    let n = r.shape().0.size();
    assert!(distance(&q.matmul(r), a) < tolerance, "Q·R differs from A");
    let gram = q.transposed_matmul(q);
    assert!(distance(&gram, &Tensor::identity_sized(r.shape().0)) < tolerance, "QᵀQ = {gram:?}");
    for i in 0..n {
        assert!(r.as_slice()[i * n + i] >= 0.0, "R = {r:?}");
        for j in 0..i {
            assert_eq!(r.as_slice()[i * n + j], 0.0, "R = {r:?}");
        }
    }
}

#[test]
fn known_factors() {
    // Columns (3, 4, 0) and (1, 2, 2): r₁₁ = 5, q₁ = (0.6, 0.8, 0), r₁₂ = q₁·a₂ = 2.2,
    // and a₂ − 2.2·q₁ = (−0.32, 0.24, 2) of length √4.16.
    let a: Matrix<f64, 3, 2> = Matrix::from_array([[3.0, 1.0], [4.0, 2.0], [0.0, 2.0]]);
    let (q, r) = a.qr();
    let rest = 4.16f64.sqrt();
    let expected_r = Matrix::from_array([[5.0, 2.2], [0.0, rest]]);
    let expected_q = Matrix::from_array([[0.6, -0.32 / rest], [0.8, 0.24 / rest], [0.0, 2.0 / rest]]);
    assert!(distance(&r, &expected_r) < 1e-15, "{r:?}");
    assert!(distance(&q, &expected_q) < 1e-15, "{q:?}");
    // Signs: a first column pointing down still gives a positive r₁₁.
    let flipped: Matrix<f64, 3, 2> = a.scale(-1.0);
    let (q_flipped, r_flipped) = flipped.qr();
    assert!(distance(&r_flipped, &Matrix::from_array([[5.0, 2.2], [0.0, rest]])) < 1e-15);
    assert!(distance(&q_flipped, &expected_q.scale(-1.0)) < 1e-15);
    // A column that is nearly a negative unit vector: the reflection that maps it
    // to its length adds magnitudes (the other one would cancel −1 + 1 and leave
    // the 1e-10 below the diagonal).
    let nearly_axis: Matrix<f64, 3, 2> = Matrix::from_array([[-1.0, 2.0], [1e-10, 1.0], [0.0, 3.0]]);
    let (q, r) = nearly_axis.qr();
    assert_factors(
        &nearly_axis.to_storage::<Heap>(),
        &q.to_storage::<Heap>(),
        &r.to_storage::<Heap>(),
        1e-15,
    );
    // A square upper-triangular matrix with a positive diagonal is its own R.
    let upper: Square = Matrix::from_array([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5], [0.0, 0.0, 1.5]]);
    let (q, r) = upper.qr();
    assert!(distance(&r, &upper) < 1e-15 && distance(&q, &Square::identity()) < 1e-15);
}

#[test]
fn factors_agree_with_nalgebra_up_to_signs() {
    let a =
        well_conditioned([0.3, -0.2, 0.9, 0.1, 0.5, -0.7, -0.4, 0.8, 0.2, 0.6, -0.1, 0.3, -0.9, 0.4, 0.05]);
    let (q, r) = a.qr();
    let theirs = nalgebra::SMatrix::<f64, 5, 3>::from_fn(|i, j| a[[i, j]]).qr();
    let (their_q, their_r) = (theirs.q(), theirs.r());
    for k in 0..3 {
        let sign = their_r[(k, k)].signum();
        for j in 0..3 {
            assert!((r[[k, j]] - sign * their_r[(k, j)]).abs() < 1e-14);
        }
        for i in 0..5 {
            assert!((q[[i, k]] - sign * their_q[(i, k)]).abs() < 1e-14);
        }
    }
}

#[test]
fn least_squares_solutions() {
    // A line through three points.
    let a: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]);
    let b = Vector::from_array([1.0, 3.0, 4.0]);
    let x = a.least_squares(&b);
    assert!(distance(&x, &Vector::from_array([7.0 / 6.0, 1.5])) < 1e-15, "{x:?}");
    // The residual is orthogonal to A's columns, and x solves the normal equations.
    let a =
        well_conditioned([0.3, -0.2, 0.9, 0.1, 0.5, -0.7, -0.4, 0.8, 0.2, 0.6, -0.1, 0.3, -0.9, 0.4, 0.05]);
    let b: Matrix<f64, 5, 2> = Matrix::from_fn(|[i, j]| (i as f64 - 2.0) * (j as f64 + 1.0) + 0.3);
    let x = a.least_squares(&b);
    let residual = b - a.matmul(&x);
    assert!(a.transposed_matmul(&residual).as_slice().iter().all(|v| v.abs() < 1e-14));
    let normal = a.transposed_matmul(&a).solve(&a.transposed_matmul(&b));
    assert!(distance(&x, &normal) < 1e-14);
    // Each column is its own problem.
    for column in 0..2 {
        let b_column: Vector<f64, 5> = Vector::from_fn(|[i]| b[[i, column]]);
        let x_column = a.least_squares(&b_column);
        assert!((0..3).all(|i| (x_column[[i]] - x[[i, column]]).abs() < 1e-15));
    }
    // A square system: the solution of A·x = b.
    let square: Square = Matrix::from_array([[4.0, 1.0, 0.5], [-1.0, 3.0, 0.2], [0.3, 0.1, 2.0]]);
    let rhs = Vector::from_array([1.0, -2.0, 0.5]);
    assert!(distance(&square.least_squares(&rhs), &square.solve(&rhs)) < 1e-15);
    // A consistent system is solved exactly.
    let exact = Vector::from_array([0.5, -1.0, 2.0]);
    assert!(distance(&a.least_squares(&a.matmul(&exact)), &exact) < 1e-14);
}

#[test]
fn dynamic_shapes_f32_and_errors() {
    let a = DynMatrix::from_shape_fn((Dyn(4), Dyn(2)), |[i, j]| {
        (i + 1) as f64 * if j == 0 { 1.0 } else { i as f64 }
    });
    let (q, r) = a.qr();
    assert_factors(&a, &q, &r, 1e-14);
    let b = Tensor::<f64, (Dyn,), Heap>::from_shape_fn((Dyn(4),), |[i]| (i * i) as f64);
    let x = a.least_squares(&b);
    assert_eq!(x.shape(), (Dyn(2),));
    let residual = b.clone() - a.matmul(&x);
    assert!(a.transpose().matmul(&residual).as_slice().iter().all(|v| v.abs() < 1e-13));
    // The gradient on heap tensors of sizes known when it runs.
    let fail = |e: GradientError| panic!("{e}");
    check_grad(
        |a: Var<DynMatrix>| {
            let x = a.least_squares(&Var::constant(b.clone()));
            x.dot(&x)
        },
        &a,
        CheckOptions::f64(),
    )
    .unwrap_or_else(fail);
    check_grad(
        |a: Var<DynMatrix>| {
            let (q, r) = a.qr();
            q.sum() + r.sum()
        },
        &a,
        CheckOptions::f64(),
    )
    .unwrap_or_else(fail);
    // Fewer rows than columns, and a right-hand side of another length.
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message = std::panic::catch_unwind(|| wide.qr()).unwrap_err();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "qr: a matrix of shape [2, 3] has fewer rows than columns (at least as many rows as columns; factorise the conjugate transpose)"
    );
    let short = Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(3),));
    match a.try_least_squares(&short) {
        Err(LinAlgError::Shape(error)) => assert_eq!(
            error.to_string(),
            "least_squares: shapes [4, 2] and [3] are incompatible (a right-hand side with as many rows as the matrix)"
        ),
        other => panic!("{other:?}"),
    }
    match wide.try_least_squares(&Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(2),))) {
        Err(LinAlgError::Shape(error)) => {
            assert_eq!(error.lhs().as_slice(), &[2, 3]);
            assert!(
                error.to_string().ends_with("least-norm solution is a.pseudo_inverse().matmul(&b))"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // f32 on the stack.
    let single: Matrix<f32, 3, 2> = Matrix::from_array([[3.0, 1.0], [4.0, 2.0], [0.0, 2.0]]);
    let (q, r) = single.qr();
    assert!((q.matmul(&r) - single).norm() < 1e-6);
    assert!((r[[0, 0]] - 5.0).abs() < 1e-6);
    let line: Matrix<f32, 3, 2> = Matrix::from_array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]);
    let fitted = line.least_squares(&Vector::from_array([1.0, 3.0, 4.0]));
    assert!((fitted[[0]] - 7.0 / 6.0).abs() < 1e-6 && (fitted[[1]] - 1.5).abs() < 1e-6);
}

#[test]
fn entries_near_the_ends_of_the_range() {
    // |x₀| + ‖x‖ past f64's largest value, and a reflector lead whose reciprocal
    // would be: the factors still reproduce A with orthonormal Q.
    for magnitude in [1e308, 1e-310, 1e-320] {
        let a: Matrix<f64, 3, 2> =
            Matrix::from_array([[1.0, 0.5], [1.0, -0.25], [0.5, 1.0]]).scale(magnitude);
        let (q, r) = a.qr();
        assert!(distance(&q.transposed_matmul(&q), &Matrix::identity()) < 1e-14, "{magnitude}: {q:?}");
        let error = distance(&q.matmul(&r), &a) / magnitude;
        // Subnormal entries keep fewer digits.
        let tolerance = if magnitude < 1e-300 { 1e-3 } else { 1e-14 };
        assert!(error < tolerance, "{magnitude}: {error}");
    }
}

#[test]
fn dependent_columns() {
    // The third column is the sum of the first two.
    let a: Matrix<f64, 4, 3> =
        Matrix::from_array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    let error = a.try_least_squares(&Vector::from_array([1.0, 2.0, 3.0, 4.0])).unwrap_err();
    assert_eq!(error, LinAlgError::RankDeficient { operation: "least_squares", column: 2 });
    assert_eq!(
        error.to_string(),
        "least_squares: the matrix's columns are linearly dependent (column 2 is a combination of the earlier ones)"
    );
    // Columns dependent up to rounding: a repeated column, one proportional to
    // another, a repeated constant; R's diagonal keeps about ε·‖A‖ there, not 0.
    let t = |i: usize| i as f64 * 0.37 - 1.0;
    let designs: [(Matrix<f64, 8, 3>, usize); 3] = [
        (Matrix::from_fn(|[i, j]| [1.0, t(i), t(i)][j]), 2),
        (Matrix::from_fn(|[i, j]| [1.0, t(i), 2.0 * t(i)][j]), 2),
        (Matrix::from_fn(|[i, j]| [1.0, 1.0, t(i)][j]), 1),
    ];
    let y = Vector::<f64, 8>::from_fn(|[i]| t(i) * t(i));
    for (design, column) in designs {
        assert_eq!(
            design.try_least_squares(&y),
            Err(LinAlgError::RankDeficient { operation: "least_squares", column })
        );
    }
    // Badly scaled but independent columns are solved (a column of 1e-10s).
    let scaled: Matrix<f64, 8, 2> = Matrix::from_fn(|[i, j]| if j == 0 { 1.0 } else { 1e-10 * t(i) });
    let x = scaled.least_squares(&y);
    let residual = y - scaled.matmul(&x);
    assert!(scaled.transpose().matmul(&residual).as_slice().iter().all(|v| v.abs() < 1e-14 * 8.0));
    // QR still factorises it, with a zero on R's diagonal and Q orthonormal.
    let (q, r) = a.qr();
    assert_factors(&a.to_storage::<Heap>(), &q.to_storage::<Heap>(), &r.to_storage::<Heap>(), 1e-15);
    assert_eq!(r[[2, 2]], 0.0);
    // The tape records nothing for the error.
    let b = Vector::from_array([1.0, 2.0, 3.0, 4.0]);
    let outcome = grad(
        |a: Var<Matrix<f64, 4, 3>>| {
            assert!(a.try_least_squares(&b).is_err());
            a.sum()
        },
        &a,
    );
    assert_eq!(outcome, Matrix::from_fn(|_| 1.0));
    // Its derivative does not exist: the tangent and the pullback say so.
    let message = std::panic::catch_unwind(|| qr_push(&q, &r, &q)).unwrap_err();
    assert!(
        message
            .downcast_ref::<String>()
            .unwrap()
            .contains("qr_push: the matrix's columns are linearly dependent (column 2")
    );
    let message = std::panic::catch_unwind(|| qr_pullback(&q, &r, &q, &r)).unwrap_err();
    assert!(
        message
            .downcast_ref::<String>()
            .unwrap()
            .contains("qr_pullback: the matrix's columns are linearly dependent (column 2")
    );
    // A zero matrix: R = 0, Q still has orthonormal columns.
    let (q, r) = Tall::zeros().qr();
    assert_eq!(r, Square::zeros());
    assert!(distance(&q.transposed_matmul(&q), &Square::identity()) < 1e-15);
}

#[test]
fn no_columns_and_no_right_hand_side() {
    let a = DynMatrix::zeros_shaped((Dyn(3), Dyn(0)));
    let (q, r) = a.qr();
    assert_eq!((q.shape(), r.shape()), ((Dyn(3), Dyn(0)), (Dyn(0), Dyn(0))));
    let x = a.least_squares(&Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(3),)));
    assert!(x.is_empty());
    let b = DynMatrix::zeros_shaped((Dyn(3), Dyn(0)));
    let full = DynMatrix::from_shape_fn((Dyn(3), Dyn(2)), |[i, j]| if i == j { 1.0 } else { 0.5 });
    assert_eq!(full.least_squares(&b).shape(), (Dyn(2), Dyn(0)));
}

#[differentiable]
fn factors(a: &Tall) -> (Tall, Square) {
    a.qr()
}

#[differentiable]
fn fit(a: &Tall, b: &Matrix<f64, 5, 2>) -> Matrix<f64, 3, 2> {
    a.least_squares(b)
}

/// ‖x‖² + ⟨R, W⟩ for the least-squares x and A's R, generic for second order.
#[differentiable(wrt(a))]
fn fit_energy<T: RealScalar>(a: &Matrix<T, 5, 3>, b: &Vector<T, 5>, w: &Matrix<T, 3, 3>) -> T {
    let x = a.least_squares(b);
    let (_, r) = a.qr();
    x.dot(&x) + r.dot(w)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn factor_identities(a in tall_matrices()) {
        let (q, r) = a.qr();
        assert_factors(&a.to_storage::<Heap>(), &q.to_storage::<Heap>(), &r.to_storage::<Heap>(), 1e-14);
        // The factors of A·D (D a positive diagonal) are Q and R·D.
        let d = Square::from_fn(|[i, j]| if i == j { (i + 1) as f64 } else { 0.0 });
        let (q_scaled, r_scaled) = a.matmul(&d).qr();
        prop_assert!(distance(&q_scaled, &q) < 1e-14 && distance(&r_scaled, &r.matmul(&d)) < 1e-13);
    }

    #[test]
    fn derivatives_of_the_factors(a in tall_matrices(), w in tall_directions(), v in square_directions(), direction in tall_directions()) {
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        // Through both factors, Q alone and R alone (the other's cotangent zero).
        check_grad(|a: Var<Tall>| { let (q, r) = a.qr(); q.dot(&Var::constant(w)) + r.dot(&Var::constant(v)) }, &a, options).map_err(fail)?;
        check_grad(|a: Var<Tall>| a.qr().0.dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_grad(|a: Var<Tall>| { let (_, r) = a.qr(); r.diagonal().ln().sum() }, &a, options).map_err(fail)?;
        check_pullback(|a: &Tall| a.qr(), factors::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.qr(), |a_dot| factors::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity between the public tangent and cotangent.
        let (q, r) = a.qr();
        let (q_dot, r_dot) = qr_push(&q, &r, &direction);
        let a_bar = qr_pullback(&q, &r, &w, &v);
        let (lhs, rhs) = (q_dot.dot(&w) + r_dot.dot(&v), direction.dot(&a_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        // The tangents against forward mode on duals, which runs the reflections on them.
        let (_, (q_dual, r_dual)) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.qr(), &a, &direction);
        prop_assert!(distance(&q_dot, &q_dual) < 1e-12 && distance(&r_dot, &r_dual) < 1e-12);
    }

    #[test]
    fn derivatives_of_least_squares(
        a in tall_matrices(), b in right_hand_sides(), w in prop::array::uniform6(-1.0..1.0f64),
        a_dot in tall_directions(), b_dot in right_hand_sides(),
    ) {
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        let w: Matrix<f64, 3, 2> = Matrix::from_fn(|[i, j]| w[i * 2 + j]);
        check_grad(|(a, b): (Var<Tall>, Var<Matrix<f64, 5, 2>>)| a.least_squares(&b).dot(&Var::constant(w)), &(a, b), options).map_err(fail)?;
        let column: Vector<f64, 5> = Vector::from_fn(|[i]| b[[i, 0]]);
        check_grad(|a: Var<Tall>| { let x = a.least_squares(&column); x.dot(&x) }, &a, options).map_err(fail)?;
        check_grad(|b: Var<Vector<f64, 5>>| { let x = Var::constant(a).least_squares(&b); x.dot(&x) }, &column, options).map_err(fail)?;
        check_pullback(|(a, b): &(Tall, Matrix<f64, 5, 2>)| a.least_squares(b), fit::vjp(&a, &b).1, &(a, b), options).map_err(fail)?;
        check_pushforward(|(a, b): &(Tall, Matrix<f64, 5, 2>)| a.least_squares(b), |(a_dot, b_dot)| fit::jvp(&a, &b, a_dot, b_dot).1, &(a, b), options).map_err(fail)?;
        // The adjoint identity, and the tangent against duals.
        let x = a.least_squares(&b);
        let x_dot = least_squares_push(&a, &b, &x, Some(&a_dot), Some(&b_dot));
        let (a_bar, b_bar) = least_squares_pullback(&a, &b, &x, &w);
        let (lhs, rhs) = (x_dot.dot(&w), a_dot.dot(&a_bar) + b_dot.dot(&b_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|(a, b): (Matrix<Dual<f64>, 5, 3>, Matrix<Dual<f64>, 5, 2>)| a.least_squares(&b), &(a, b), &(a_dot, b_dot));
        prop_assert!(distance(&x_dot, &dual_tangent) < 1e-12);
    }

    #[test]
    fn second_derivatives(a in tall_matrices(), b in prop::array::uniform5(-2.0..2.0f64), v in square_directions(), direction in tall_directions()) {
        let b = Vector::from_array(b);
        // Static mode's gradient against the tape's.
        let (_, static_gradient) = fit_energy::value_and_grad(&a, &b, &v);
        let tape_gradient = grad(|a: Var<Tall>| {
            let x = a.least_squares(&b);
            x.dot(&x) + a.qr().1.dot(&Var::constant(v))
        }, &a);
        prop_assert!(distance(&static_gradient, &tape_gradient) < 1e-13);
        // H·Ȧ against central differences of the gradient; also with a₀₀ = 0, where
        // the first reflection's sign, run on duals, has no derivative.
        let mut zero_head = a;
        zero_head[[0, 0]] = 0.0;
        for a in [a, zero_head] {
            let hv: Tall = fit_energy::hvp(&a, &b, &v, &direction);
            let step = 1e-5;
            let gradient_at = |t: f64| fit_energy::value_and_grad(&(a + direction.scale(t)), &b, &v).1;
            let difference = (gradient_at(step) - gradient_at(-step)).scale(0.5 / step);
            let size = difference.as_slice().iter().fold(1.0f64, |m, x| m.max(x.abs()));
            prop_assert!(distance(&hv, &difference) < 1e-6 * size, "{hv:?} against {difference:?}");
        }
    }
}
