//! The pseudo-inverse: the four Penrose conditions on tall, wide, square,
//! rank-deficient and zero matrices, nalgebra's, the least-norm solution of a wide
//! system, agreement with `least_squares` and `inverse`, NaN, empty and `Dyn`
//! shapes; and derivatives in every mode (at constant rank: a rank-deficient matrix
//! is differentiated through factors B·C): the tape's gradients against finite
//! differences and the adjoint identity, static mode's pullback and tangent
//! against finite differences, the public tangent and cotangent against each
//! other, duals (at repeated singular values too) and second derivatives against
//! differences of the gradient.

use fluxion::autodiff::check::{CheckOptions, GradientError, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{pseudo_inverse_pullback, pseudo_inverse_push};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::relative_distance;

/// A·Y·A = A, Y·A·Y = Y, and A·Y, Y·A symmetric, to `tolerance`.
fn assert_penrose<const M: usize, const N: usize>(
    a: &Matrix<f64, M, N>,
    y: &Matrix<f64, N, M>,
    tolerance: f64,
) {
    assert!(relative_distance(&a.matmul(y).matmul(a), a) < tolerance, "A·Y·A ≠ A");
    assert!(relative_distance(&y.matmul(a).matmul(y), y) < tolerance, "Y·A·Y ≠ Y");
    let (ay, ya) = (a.matmul(y), y.matmul(a));
    assert!(
        relative_distance(&ay, &ay.transpose()) < tolerance
            && relative_distance(&ya, &ya.transpose()) < tolerance
    );
}

fn theirs<const M: usize, const N: usize>(a: &Matrix<f64, M, N>) -> Matrix<f64, N, M> {
    let pinv = nalgebra::DMatrix::<f64>::from_fn(M, N, |i, j| a[[i, j]]).pseudo_inverse(1e-12).unwrap();
    Matrix::from_fn(|[i, j]| pinv[(i, j)])
}

#[test]
fn penrose_conditions_and_nalgebra() {
    let tall: Matrix<f64, 5, 3> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let wide = tall.transpose();
    // Rank 2 in a 4×3: the third column is the sum of the first two.
    let deficient: Matrix<f64, 4, 3> = Matrix::from_fn(|[i, j]| {
        if j < 2 {
            ((i * 3 + j * 5) % 7) as f64 - 3.0
        } else {
            ((i * 3) % 7) as f64 + ((i * 3 + 5) % 7) as f64 - 6.0
        }
    });
    assert_penrose(&tall, &tall.pseudo_inverse(), 1e-14);
    assert_penrose(&wide, &wide.pseudo_inverse(), 1e-14);
    assert_penrose(&deficient, &deficient.pseudo_inverse(), 1e-14);
    assert_penrose(&deficient.transpose(), &deficient.transpose().pseudo_inverse(), 1e-14);
    assert!(relative_distance(&tall.pseudo_inverse(), &theirs(&tall)) < 1e-13);
    assert!(relative_distance(&wide.pseudo_inverse(), &theirs(&wide)) < 1e-13);
    assert!(relative_distance(&deficient.pseudo_inverse(), &theirs(&deficient)) < 1e-13);
    assert!(
        relative_distance(&deficient.transpose().pseudo_inverse(), &theirs(&deficient.transpose())) < 1e-13
    );
    // (Aᵀ)⁺ = (A⁺)ᵀ, and a square invertible matrix's is its inverse.
    assert!(relative_distance(&wide.pseudo_inverse(), &tall.pseudo_inverse().transpose()) < 1e-14);
    let square: Matrix<f64, 3, 3> = Matrix::from_array([[2.0, -1.0, 0.5], [0.3, 1.5, -0.7], [1.1, 0.2, 2.5]]);
    assert!(relative_distance(&square.pseudo_inverse(), &square.inverse()) < 1e-14);
}

#[test]
fn least_norm_and_least_squares_solutions() {
    // A wide system: x = A⁺b solves it, and lies in A's row space (x = Aᵀz), so no
    // other solution is shorter.
    let a: Matrix<f64, 2, 4> = Matrix::from_array([[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 3.0, 1.0]]);
    let b = Vector::from_array([1.0, -2.0]);
    let x = a.pseudo_inverse().matmul(&b);
    assert!(relative_distance(&a.matmul(&x), &b) < 1e-15);
    let z = a.matmul_transposed(&a).solve(&b);
    assert!(relative_distance(&x, &a.transpose().matmul(&z)) < 1e-15);
    // A tall full-rank system: the least-squares solution.
    let tall: Matrix<f64, 5, 3> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let c = Vector::from_array([1.0, 0.5, -1.0, 2.0, 0.0]);
    assert!(relative_distance(&tall.pseudo_inverse().matmul(&c), &tall.least_squares(&c)) < 1e-14);
}

#[test]
fn edge_cases() {
    assert_eq!(Matrix::<f64, 3, 2>::zeros().pseudo_inverse(), Matrix::<f64, 2, 3>::zeros());
    assert_eq!(Matrix::<f64, 2, 3>::zeros().pseudo_inverse(), Matrix::<f64, 3, 2>::zeros());
    for bad in [f64::NAN, f64::INFINITY] {
        let mut with_bad = Matrix::<f64, 2, 3>::zeros();
        with_bad[[1, 1]] = bad;
        assert!(with_bad.pseudo_inverse().iter().all(|x| x.is_nan()));
    }
    // Subnormal entries: infinite where A⁺ overflows, 0 where it is 0.
    let tiny: Matrix<f64, 2, 2> = Matrix::from_array([[1e-320, 0.0], [0.0, 1e-320]]);
    assert_eq!(tiny.pseudo_inverse().to_array(), [[f64::INFINITY, 0.0], [0.0, f64::INFINITY]]);
    let small: Matrix<f64, 2, 2> = Matrix::from_array([[1e-308, 0.0], [0.0, 2e-308]]);
    let inverted = small.pseudo_inverse();
    assert!(
        (inverted[[0, 0]] * 1e-308 - 1.0).abs() < 1e-14 && (inverted[[1, 1]] * 2e-308 - 1.0).abs() < 1e-14
    );
    assert!(inverted[[0, 1]] == 0.0 && inverted[[1, 0]] == 0.0);
    // A singular value below max(m, n)·ε·σ₁ counts as zero: rank 1.
    let nearly: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 1.0], [1.0, 1.0 + 1e-15]]);
    let rank_one: Matrix<f64, 2, 2> = Matrix::from_array([[0.25, 0.25], [0.25, 0.25]]);
    assert!(relative_distance(&nearly.pseudo_inverse(), &rank_one) < 1e-14);
    // Dyn on the heap, both orientations, and no rows.
    let dynamic = DMatrix::from_shape_fn((Dyn(2), Dyn(3)), |[i, j]| (i * 3 + j) as f64 - 2.0);
    let fixed: Matrix<f64, 2, 3> = Matrix::from_fn(|[i, j]| (i * 3 + j) as f64 - 2.0);
    assert_eq!(dynamic.pseudo_inverse().as_slice(), fixed.pseudo_inverse().as_slice());
    assert_eq!(
        dynamic.transpose().pseudo_inverse().as_slice(),
        fixed.transpose().pseudo_inverse().as_slice()
    );
    for (m, n) in [(0, 3), (3, 0), (0, 0)] {
        let empty = DMatrix::<f64>::zeros_shaped((Dyn(m), Dyn(n))).pseudo_inverse();
        assert_eq!(empty.shape(), (Dyn(n), Dyn(m)));
    }
    // The public derivatives name the shapes that do not fit.
    let y = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(2)));
    let message = std::panic::catch_unwind(|| pseudo_inverse_push(&dynamic, &y, &dynamic)).unwrap_err();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "pseudo_inverse_push: shapes [2, 3] and [2, 2] are incompatible (a pseudo-inverse of the transposed shape)"
    );
}

type Tall = Matrix<f64, 5, 3>;
type Wide = Matrix<f64, 3, 5>;

fn tall_matrices() -> impl Strategy<Value = Tall> {
    prop::array::uniform15(-1.0..1.0f64)
        .prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j] + if i == j { 2.0 } else { 0.0 }))
}

#[differentiable]
fn inverted(a: &Wide) -> Tall {
    a.pseudo_inverse()
}

/// ⟨A⁺, W⟩ + |A⁺|², generic for second order.
#[differentiable(wrt(a))]
fn energy<T: RealScalar>(a: &Matrix<T, 5, 3>, w: &Matrix<T, 3, 5>) -> T {
    let y = a.pseudo_inverse();
    y.dot(w) + y.dot(&y)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn derivatives(a in tall_matrices(), w in tall_matrices(), direction in tall_matrices()) {
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        let wide = a.transpose();
        check_grad(|a: Var<Tall>| a.pseudo_inverse().dot(&Var::constant(w.transpose())), &a, options).map_err(fail)?;
        check_grad(|a: Var<Wide>| a.pseudo_inverse().dot(&Var::constant(w)), &wide, options).map_err(fail)?;
        check_pullback(|a: &Wide| a.pseudo_inverse(), inverted::vjp(&wide).1, &wide, options).map_err(fail)?;
        check_pushforward(|a: &Wide| a.pseudo_inverse(), |a_dot| inverted::jvp(&wide, a_dot).1, &wide, options).map_err(fail)?;
        // The adjoint identity, and the tangent against duals.
        let y = a.pseudo_inverse();
        let y_dot = pseudo_inverse_push(&a, &y, &direction);
        let a_bar = pseudo_inverse_pullback(&a, &y, &w.transpose());
        let (lhs, rhs) = (y_dot.dot(&w.transpose()), direction.dot(&a_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.pseudo_inverse(), &a, &direction);
        prop_assert!(relative_distance(&y_dot, &dual_tangent) < 1e-13);
        let step = 1e-6;
        let difference = ((a + direction.scale(step)).pseudo_inverse() - (a - direction.scale(step)).pseudo_inverse()).scale(0.5 / step);
        prop_assert!(relative_distance(&difference, &y_dot) < 1e-8, "{difference:?} against {y_dot:?}");
        // Static mode against the tape, and H·Ȧ against differences of the gradient.
        let wt = w.transpose();
        let (_, static_gradient) = energy::value_and_grad(&a, &wt);
        let tape_gradient = grad(|a: Var<Tall>| { let y = a.pseudo_inverse(); y.dot(&Var::constant(wt)) + y.dot(&y) }, &a);
        prop_assert!(relative_distance(&static_gradient, &tape_gradient) < 1e-13);
        let hv: Tall = energy::hvp(&a, &wt, &direction);
        let hv_wide: Wide = hvp(|a: Var<Matrix<Dual<f64>, 3, 5>>| { let y = a.pseudo_inverse(); y.dot(&y) }, &wide, &direction.transpose());
        let hv_tall: Tall = hvp(|a: Var<Matrix<Dual<f64>, 5, 3>>| { let y = a.pseudo_inverse(); y.dot(&y) }, &a, &direction);
        prop_assert!(relative_distance(&hv_wide, &hv_tall.transpose()) < 1e-12);
        let step = 1e-5;
        let gradient_at = |t: f64| energy::value_and_grad(&(a + direction.scale(t)), &wt).1;
        let difference = (gradient_at(step) - gradient_at(-step)).scale(0.5 / step);
        let size = difference.as_slice().iter().fold(1.0f64, |m, x| m.max(x.abs()));
        prop_assert!(relative_distance(&hv, &difference) < 1e-6 * size, "{hv:?} against {difference:?}");
    }

    #[test]
    fn derivatives_at_constant_rank(b in prop::array::uniform8(-1.0..1.0f64), c in prop::array::uniform6(-1.0..1.0f64), w in prop::array::uniform12(-1.0..1.0f64)) {
        // A = B·C of rank 2 in a 4×3 shape: every term of the derivative is present.
        let b: Matrix<f64, 4, 2> = Matrix::from_fn(|[i, j]| b[i * 2 + j] + if i == j { 1.5 } else { 0.0 });
        let c: Matrix<f64, 2, 3> = Matrix::from_fn(|[i, j]| c[i * 3 + j] + if i == j { 1.5 } else { 0.0 });
        let w: Matrix<f64, 3, 4> = Matrix::from_fn(|[i, j]| w[i * 4 + j]);
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        check_grad(|(b, c): (Var<Matrix<f64, 4, 2>>, Var<Matrix<f64, 2, 3>>)| b.matmul(&c).pseudo_inverse().dot(&Var::constant(w)), &(b, c), CheckOptions::f64()).map_err(fail)?;
        // The tangent along a direction that keeps the rank, Ȧ = Ḃ·C + B·Ċ, against
        // differences, duals and the cotangent; the same for the wide transpose.
        let b_dot: Matrix<f64, 4, 2> = Matrix::from_fn(|[i, j]| w[[j, i]]);
        let c_dot: Matrix<f64, 2, 3> = Matrix::from_fn(|[i, j]| w[[j, i + 2]]);
        let a_at = |t: f64| (b + b_dot.scale(t)).matmul(&(c + c_dot.scale(t)));
        let a = a_at(0.0);
        let a_dot = b_dot.matmul(&c) + b.matmul(&c_dot);
        let y = a.pseudo_inverse();
        let y_dot = pseudo_inverse_push(&a, &y, &a_dot);
        let step = 1e-6;
        let difference = (a_at(step).pseudo_inverse() - a_at(-step).pseudo_inverse()).scale(0.5 / step);
        prop_assert!(relative_distance(&difference, &y_dot) < 1e-7, "{difference:?} against {y_dot:?}");
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 4, 3>| a.pseudo_inverse(), &a, &a_dot);
        prop_assert!(relative_distance(&dual_tangent, &y_dot) < 1e-12);
        let a_bar = pseudo_inverse_pullback(&a, &y, &w);
        let (lhs, rhs) = (y_dot.dot(&w), a_dot.dot(&a_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let wide_dot = pseudo_inverse_push(&a.transpose(), &y.transpose(), &a_dot.transpose());
        prop_assert!(relative_distance(&wide_dot, &y_dot.transpose()) < 1e-13);
        let wide_bar = pseudo_inverse_pullback(&a.transpose(), &y.transpose(), &w.transpose());
        prop_assert!(relative_distance(&wide_bar, &a_bar.transpose()) < 1e-13);
    }
}

#[test]
fn tangents_at_repeated_singular_values() {
    // [I; 0] has σ = (1, 1): its singular vectors have no derivative, its
    // pseudo-inverse does, and duals give it.
    let a: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]);
    let direction: Matrix<f64, 3, 2> = Matrix::from_array([[0.3, -0.2], [0.5, 0.1], [-0.4, 0.7]]);
    let y = a.pseudo_inverse();
    let y_dot = pseudo_inverse_push(&a, &y, &direction);
    let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 2>| a.pseudo_inverse(), &a, &direction);
    assert!(relative_distance(&dual_tangent, &y_dot) < 1e-15 && dual_tangent.iter().all(|x| x.is_finite()));
    let step = 1e-6;
    let difference = ((a + direction.scale(step)).pseudo_inverse()
        - (a - direction.scale(step)).pseudo_inverse())
    .scale(0.5 / step);
    assert!(relative_distance(&difference, &y_dot) < 1e-9, "{difference:?} against {y_dot:?}");
}

#[test]
fn second_derivatives_on_nested_duals() {
    // Forward over forward (each level of tangents added by the first-order rule at
    // the levels inside it) against reverse over forward, on a tall and a
    // rank-deficient matrix: vᵀ·H·v of ⟨A⁺, W⟩ + |A⁺|².
    let tall: Tall = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let v: Tall = Matrix::from_fn(|[i, j]| ((i * 3 + j * 5) % 7) as f64 / 7.0 - 0.5);
    let w: Wide = Matrix::from_fn(|[i, j]| ((i * 2 + j) % 5) as f64 / 5.0 - 0.3);
    let lift = |a: &Tall, v: &Tall| -> Matrix<Dual<Dual<f64>>, 5, 3> {
        Matrix::from_fn(|[i, j]| Dual::new(Dual::new(a[[i, j]], [v[[i, j]]]), [Dual::new(v[[i, j]], [0.0])]))
    };
    let lifted_w = w.map(|x| Dual::constant(Dual::constant(x)));
    let forward_over_forward = energy(&lift(&tall, &v), &lifted_w).tangent()[0].tangent()[0];
    let reverse_over_forward = v.dot(&energy::hvp(&tall, &w, &v));
    let gap = (forward_over_forward - reverse_over_forward).abs();
    assert!(
        gap < 1e-11 * reverse_over_forward.abs().max(1.0),
        "{forward_over_forward} against {reverse_over_forward}"
    );
    // 1×1: A⁺ = 1/a, whose second derivative is 2/a³.
    let a = Matrix::<Dual<Dual<f64>>, 1, 1>::from_array([[Dual::new(
        Dual::new(2.0, [1.0]),
        [Dual::new(1.0, [0.0])],
    )]]);
    let y = a.pseudo_inverse()[[0, 0]];
    assert_eq!((y.value().value(), y.tangent()[0].value(), y.tangent()[0].tangent()[0]), (0.5, -0.25, 0.25));
}
