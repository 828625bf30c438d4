//! The thin singular value decomposition: the factors of matrices built from known
//! ones (up to the signs, which the convention fixes), orthonormality and the
//! reconstruction, nalgebra's SVD, rank-deficient, zero, NaN, huge, empty, `Dyn`
//! and f32 matrices; and derivatives in every mode: the tape's gradients through
//! each factor against finite differences and the adjoint identity (`check_grad`),
//! static mode's pullback and tangent against finite differences, the public
//! tangent and cotangent against each other, tangents against forward mode on
//! duals (including a matrix whose columns are already orthogonal, where the
//! rotations do not run), and second derivatives against differences of the
//! gradient.

use fluxion::autodiff::check::{CheckOptions, GradientError, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{svd_pullback, svd_push};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::{orthonormal_factors, relative_distance};

type Tall = Matrix<f64, 5, 3>;
type Square = Matrix<f64, 3, 3>;
type Factors = (Tall, Vector<f64, 3>, Square);

/// Checks A = U·diag(σ)·Vᵀ, UᵀU = I, VᵀV = I (to `tolerance` relative to σ₁), σ
/// descending, and the sign convention: each column of V has its entry of largest
/// magnitude positive.
fn assert_decomposition<M: Dim, N: Dim>(
    a: &Tensor<f64, (M, N), Heap>,
    (u, sigma, v_t): &(Tensor<f64, (M, N), Heap>, Tensor<f64, (N,), Heap>, Tensor<f64, (N, N), Heap>),
    tolerance: f64,
) {
    let scale = sigma.as_slice().first().copied().unwrap_or(0.0).max(f64::MIN_POSITIVE);
    let back = u.mul_rows(sigma).matmul(v_t);
    assert!(
        relative_distance(&back.scale(1.0 / scale), &a.scale(1.0 / scale)) < tolerance,
        "{back:?} against {a:?}"
    );
    let n = sigma.len();
    let identity = Tensor::<f64, (N, N), Heap>::identity_sized(sigma.shape().0);
    assert!(
        relative_distance(&u.transposed_matmul(u), &identity) < tolerance,
        "UᵀU = {:?}",
        u.transposed_matmul(u)
    );
    assert!(relative_distance(&v_t.matmul_transposed(v_t), &identity) < tolerance);
    assert!(sigma.as_slice().windows(2).all(|pair| pair[0] >= pair[1]) && sigma.iter().all(|s| *s >= 0.0));
    for row in 0..n {
        let entries = &v_t.as_slice()[row * n..(row + 1) * n];
        let largest = entries.iter().fold(0.0f64, |m, x| if x.abs() > m.abs() { *x } else { m });
        assert!(largest > 0.0, "Vᵀ row {row}: {entries:?}");
    }
}

fn with_singular_values(sigma: [f64; 3]) -> Tall {
    let (u, v) = orthonormal_factors();
    u.matmul(&Matrix::from_fn(|[i, j]| if i == j { sigma[i] } else { 0.0 })).matmul_transposed(&v)
}

#[test]
fn known_factors() {
    let (u0, v0) = orthonormal_factors();
    for sigma in [[4.0, 2.0, 1.0], [1.0, 1e-3, 1e-9], [3.0, 1.0, 0.0]] {
        let a = with_singular_values(sigma);
        let (u, found, v_t) = a.svd();
        assert_decomposition(&a.to_storage(), &(u.to_storage(), found.to_storage(), v_t.to_storage()), 1e-14);
        for (x, expected) in found.as_slice().iter().zip(sigma) {
            assert!((x - expected).abs() < 4e-14, "{found:?} against {sigma:?}");
        }
        // Each pair (uᵢ, vᵢ) with σᵢ > 0 is the known one up to one sign for both.
        for i in (0..3).filter(|&i| sigma[i] > 0.0) {
            let sign = (0..3).map(|k| v_t[[i, k]] * v0[[k, i]]).sum::<f64>();
            assert!((sign.abs() - 1.0).abs() < 1e-14, "vᵢ·v0ᵢ = {sign}");
            // The rounding of A moves uᵢ out of U's span by about ε·σ₁/σᵢ.
            for k in 0..5 {
                let gap = (u[[k, i]] - sign.signum() * u0[[k, i]]).abs();
                assert!(gap < 1e-13 + 1e-15 / sigma[i], "u{i} against the known one: {gap:e}");
            }
        }
    }
    // Columns in any order and sign come back descending, with V the permutation.
    let scaled: Square = Matrix::from_array([[0.0, -2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]);
    let (u, sigma, v_t) = scaled.svd();
    assert_eq!(sigma.to_array(), [5.0, 2.0, 1.0]);
    assert_eq!(v_t.to_array(), [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
    assert_eq!(u.to_array(), [[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
}

#[test]
fn larger_sizes_against_nalgebra() {
    // Pseudo-random matrices up to 48×40: σ against nalgebra's (bidiagonal QR), and
    // the factors' identities.
    let mut random = common::TestRng::new(41);
    for (m, n) in [(1, 1), (9, 2), (16, 16), (33, 12), (48, 40)] {
        let a = DMatrix::from_shape_fn((Dyn(m), Dyn(n)), |_| random.signed_unit());
        let factors = a.svd();
        assert_decomposition(&a, &factors, 1e-13 * m as f64);
        let mut theirs: Vec<f64> =
            nalgebra::DMatrix::from_row_slice(m, n, a.as_slice()).singular_values().iter().copied().collect();
        theirs.sort_by(|x, y| y.total_cmp(x));
        let largest = theirs[0];
        assert!(
            factors.1.iter().zip(&theirs).all(|(s, t)| (s - t).abs() < 1e-13 * m as f64 * largest),
            "{m}×{n}: {:?} against {theirs:?}",
            factors.1
        );
    }
}

#[test]
fn against_nalgebra() {
    let a: Tall = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let (u, sigma, v_t) = a.svd();
    let theirs = nalgebra::SMatrix::<f64, 5, 3>::from_fn(|i, j| a[[i, j]]).svd(true, true);
    let (their_u, their_v_t) = (theirs.u.unwrap(), theirs.v_t.unwrap());
    for i in 0..3 {
        // nalgebra's order and signs are its own: match each of ours by σ and sign.
        let k = (0..3).find(|&k| (theirs.singular_values[k] - sigma[[i]]).abs() < 1e-13).unwrap();
        let sign = (0..3).map(|c| v_t[[i, c]] * their_v_t[(k, c)]).sum::<f64>().signum();
        for c in 0..3 {
            assert!((v_t[[i, c]] - sign * their_v_t[(k, c)]).abs() < 1e-13);
        }
        for r in 0..5 {
            assert!((u[[r, i]] - sign * their_u[(r, k)]).abs() < 1e-13);
        }
    }
}

#[test]
fn rank_deficient_and_edge_cases() {
    // Rank 1 and the zero matrix: U still has orthonormal columns.
    let rank_one: Tall = Matrix::from_fn(|[i, j]| (i as f64 - 2.0) * (j as f64 + 1.0));
    let factors = rank_one.svd();
    assert!(factors.1[[1]] < 1e-15 * factors.1[[0]] && factors.1[[2]] < 1e-15 * factors.1[[0]]);
    assert_decomposition(
        &rank_one.to_storage(),
        &(factors.0.to_storage(), factors.1.to_storage(), factors.2.to_storage()),
        1e-14,
    );
    let (u, sigma, v_t) = Tall::zeros().svd();
    assert_eq!(sigma.to_array(), [0.0; 3]);
    assert_eq!(v_t, Square::identity());
    assert!(relative_distance(&u.transposed_matmul(&u), &Square::identity()) < 1e-15);
    // NaN or infinity: NaN everywhere.
    let mut with_nan = Tall::zeros();
    with_nan[[2, 1]] = f64::NAN;
    let (u, sigma, v_t) = with_nan.svd();
    assert!(u.iter().chain(sigma.iter()).chain(v_t.iter()).all(|x| x.is_nan()));
    // Entries past the range of their squares.
    let huge: Matrix<f64, 2, 2> = Matrix::from_array([[3e200, 0.0], [4e200, 1e200]]);
    let (u, sigma, v_t) = huge.svd();
    let back = u.mul_rows(&sigma).matmul(&v_t);
    assert!(relative_distance(&back.scale(1e-200), &huge.scale(1e-200)) < 1e-15);
    assert!(relative_distance(&u.transposed_matmul(&u), &Matrix::identity()) < 1e-15);
    // Entries near the smallest subnormal: U from the scaled columns, still orthonormal.
    let tiny: Matrix<f64, 3, 2> = Matrix::from_array([[3e-315, 1e-315], [1e-315, 3e-315], [0.0, 2e-315]]);
    let (u, _, _) = tiny.svd();
    assert!(relative_distance(&u.transposed_matmul(&u), &Matrix::identity()) < 1e-15, "{u:?}");
    // Columns of lengths 1 and about 1e-160, whose squares' product underflows:
    // σ₂ = |det A|/σ₁, and the rotation still runs.
    let graded: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 1e-160], [0.0, 1e-160]]);
    let (u, sigma, _) = graded.svd();
    assert!((sigma[[0]] - 1.0).abs() < 1e-15 && (sigma[[1]] / 1e-160 - 1.0).abs() < 1e-14, "{sigma:?}");
    assert!(relative_distance(&u.transposed_matmul(&u), &Matrix::identity()) < 1e-15, "{u:?}");
    assert_eq!(graded.singular_values(), sigma);
    // Dyn on the heap as the static form; no columns; the wide error.
    let dynamic = DMatrix::from_shape_fn((Dyn(4), Dyn(2)), |[i, j]| (i + 2 * j) as f64 + 0.5);
    let fixed: Matrix<f64, 4, 2> = Matrix::from_fn(|[i, j]| (i + 2 * j) as f64 + 0.5);
    let (dynamic, fixed) = (dynamic.svd(), fixed.svd());
    assert_eq!((dynamic.0.as_slice(), dynamic.2.as_slice()), (fixed.0.as_slice(), fixed.2.as_slice()));
    let empty = DMatrix::<f64>::zeros_shaped((Dyn(3), Dyn(0))).svd();
    assert_eq!((empty.0.shape(), empty.1.len(), empty.2.shape()), ((Dyn(3), Dyn(0)), 0, (Dyn(0), Dyn(0))));
    let nothing = DMatrix::<f64>::zeros_shaped((Dyn(0), Dyn(0))).svd();
    assert!(nothing.0.is_empty() && nothing.1.is_empty() && nothing.2.is_empty());
    let wide = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(3)));
    let message = std::panic::catch_unwind(|| wide.svd()).unwrap_err();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "svd: a matrix of shape [2, 3] has fewer rows than columns (at least as many rows as columns; factorise the conjugate transpose)"
    );
    // f32.
    let single: Matrix<f32, 3, 2> = Matrix::from_array([[3.0, 1.0], [1.0, 3.0], [0.0, 0.0]]);
    let (u, sigma, v_t) = single.svd();
    let back = u.mul_rows(&sigma).matmul(&v_t);
    assert!((back - single).as_slice().iter().all(|x| x.abs() < 1e-6));
    assert!((sigma[[0]] - 4.0).abs() < 1e-6 && (sigma[[1]] - 2.0).abs() < 1e-6);
}

#[test]
fn public_derivatives_check_their_shapes() {
    let a = DMatrix::from_shape_fn((Dyn(4), Dyn(2)), |[i, j]| (i * 3 + j) as f64 % 5.0 + 0.5);
    let (u, sigma, v_t) = a.svd();
    let short = Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(3),));
    let message = std::panic::catch_unwind(|| svd_pullback(&u, &sigma, &v_t, &u, &short, &v_t)).unwrap_err();
    assert!(message.downcast_ref::<String>().unwrap().starts_with("svd_pullback: "), "{message:?}");
    let other = DMatrix::<f64>::zeros_shaped((Dyn(4), Dyn(3)));
    let message = std::panic::catch_unwind(|| svd_push(&u, &sigma, &v_t, &other)).unwrap_err();
    assert!(message.downcast_ref::<String>().unwrap().starts_with("svd_push: "), "{message:?}");
}

#[test]
fn tangents_at_orthogonal_columns() {
    // The columns are orthogonal already, so the rotations do not run on the duals:
    // their tangents come from the first-order formulas, checked against the
    // formulas and against central differences.
    let a: Tall = Matrix::from_fn(|[i, j]| if i == j { [1.0, 3.0, 2.0][i] } else { 0.0 });
    let direction: Tall = Matrix::from_fn(|[i, j]| ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.4);
    let (u, sigma, v_t) = a.svd();
    let (u_dot, sigma_dot, v_t_dot) = svd_push(&u, &sigma, &v_t, &direction);
    let (_, (u_dual, sigma_dual, v_t_dual)) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.svd(), &a, &direction);
    assert!(relative_distance(&u_dual, &u_dot) < 1e-14 && relative_distance(&sigma_dual, &sigma_dot) < 1e-14);
    assert!(relative_distance(&v_t_dual, &v_t_dot) < 1e-14, "{v_t_dual:?} against {v_t_dot:?}");
    let step = 1e-6;
    let (plus, minus) = ((a + direction.scale(step)).svd(), (a - direction.scale(step)).svd());
    assert!(relative_distance(&(plus.0 - minus.0).scale(0.5 / step), &u_dot) < 1e-8);
    assert!(relative_distance(&(plus.2 - minus.2).scale(0.5 / step), &v_t_dot) < 1e-8);
}

#[test]
fn a_zero_singular_value_has_the_subgradient_zero_in_every_mode() {
    // The third column is zero: σ₃ = 0 exactly (no rotation touches it), and U's
    // third column is a completion. σ₃'s tangent and cotangent are 0 in every mode.
    let a: Matrix<f64, 4, 3> = Matrix::from_fn(|[i, j]| if j == 2 { 0.0 } else { (i * 2 + j + 1) as f64 });
    let direction: Matrix<f64, 4, 3> = Matrix::from_fn(|[i, j]| ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.4);
    let (u, sigma, v_t) = a.svd();
    assert_eq!(sigma[[2]], 0.0);
    assert!(relative_distance(&u.transposed_matmul(&u), &Matrix::identity()) < 1e-15);
    let (_, sigma_dot, _) = svd_push(&u, &sigma, &v_t, &direction);
    let third = Vector::from_array([0.0, 0.0, 1.0]);
    let zero = Matrix::<f64, 3, 3>::zeros();
    let a_bar = svd_pullback(&u, &sigma, &v_t, &Matrix::zeros(), &third, &zero);
    let (_, (_, sigma_dual, _)) = jvp(|a: Matrix<Dual<f64>, 4, 3>| a.svd(), &a, &direction);
    let by_tape = grad(|a: Var<Matrix<f64, 4, 3>>| a.svd().1.at([2]), &a);
    let values_alone = fluxion::ops::linalg::singular_values_pullback(&a, &third);
    assert_eq!((sigma_dot[[2]], sigma_dual[[2]]), (0.0, 0.0));
    assert!(a_bar.iter().chain(by_tape.iter()).chain(values_alone.iter()).all(|x| *x == 0.0));
}

#[test]
fn second_derivatives_on_nested_duals() {
    // Forward over forward: vᵀ·H·v from Dual<Dual<f64>> against the reverse-over-
    // forward H·v, at a matrix whose rotations run and at one whose columns are
    // orthogonal already (no rotation runs on the values), of full and of lower
    // rank (two completed columns of U, whose coupling is left 0).
    let v: Tall = Matrix::from_fn(|[i, j]| ((i * 3 + j * 5) % 7) as f64 / 7.0 - 0.5);
    let general = separated([0.3, -0.2, 0.5, 0.1, 0.9, -0.7, 0.4, 0.0, -0.3, 0.8, -0.6, 0.2, 0.7, -0.1, 0.6]);
    let orthogonal: Tall = Matrix::from_fn(|[i, j]| if i == j { [1.0, 3.0, 2.0][i] } else { 0.0 });
    for a in [general, orthogonal] {
        let lifted: Matrix<Dual<Dual<f64>>, 5, 3> = Matrix::from_fn(|[i, j]| {
            Dual::new(Dual::new(a[[i, j]], [v[[i, j]]]), [Dual::new(v[[i, j]], [0.0])])
        });
        let forward_over_forward = energy(&lifted).tangent()[0].tangent()[0];
        let reverse_over_forward = v.dot(&energy::hvp(&a, &v));
        let gap = (forward_over_forward - reverse_over_forward).abs();
        assert!(
            gap < 1e-10 * reverse_over_forward.abs().max(1.0),
            "{forward_over_forward} against {reverse_over_forward}"
        );
    }
    let rank_one: Tall = Matrix::from_fn(|[i, j]| if i == 0 && j == 0 { 2.0 } else { 0.0 });
    let (_, (u_dot, sigma_dot, v_t_dot)) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.svd(), &rank_one, &v);
    assert!(u_dot.iter().chain(sigma_dot.iter()).chain(v_t_dot.iter()).all(|x| x.is_finite()));
    assert_eq!(sigma_dot[[0]], v[[0, 0]]);
    let (u, sigma, v_t) = rank_one.svd();
    let (u_pushed, _, v_t_pushed) = svd_push(&u, &sigma, &v_t, &v);
    assert!(u_pushed.iter().chain(v_t_pushed.iter()).all(|x| x.is_finite()), "{u_pushed:?}");
    assert!(relative_distance(&u_pushed.narrow::<1, 0, 1>(), &u_dot.narrow::<1, 0, 1>()) < 1e-15);
}

#[test]
fn low_rank_approximation_gradient() {
    // ‖A − σ₁u₁v₁ᵀ‖² = σ₂² + σ₃², whose gradient is 2(σ₂u₂v₂ᵀ + σ₃u₃v₃ᵀ) = 2(A − σ₁u₁v₁ᵀ).
    let a = with_singular_values([3.0, 1.0, 0.5]);
    let gradient = grad(
        |a: Var<Tall>| {
            let (u, sigma, v_t) = a.svd();
            let first = Var::constant(Matrix::<f64, 3, 3>::from_fn(
                |[i, j]| if i == j && i == 0 { 1.0 } else { 0.0 },
            ));
            let rank_one = u.mul_rows(&sigma).matmul(&first).matmul(&v_t);
            let residual = &a - &rank_one;
            residual.dot(&residual)
        },
        &a,
    );
    let (u, sigma, v_t) = a.svd();
    let expected = (a - u.narrow::<1, 0, 1>().scale(sigma[[0]]).matmul(&v_t.narrow::<0, 0, 1>())).scale(2.0);
    assert!(relative_distance(&gradient, &expected) < 1e-13, "{gradient:?} against {expected:?}");
}

/// Singular values kept apart (about 3, 1.5 and 0.5 plus a random part of at most
/// ±0.25 each): well-defined derivatives.
fn separated(entries: [f64; 15]) -> Tall {
    let spread: Tall = Matrix::from_fn(|[i, j]| entries[i * 3 + j] * 0.08);
    with_singular_values([3.0, 1.5, 0.5]) + spread
}

fn tall_directions() -> impl Strategy<Value = Tall> {
    prop::array::uniform15(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

fn square_directions() -> impl Strategy<Value = Square> {
    prop::array::uniform9(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

#[differentiable]
fn decompose(a: &Tall) -> Factors {
    a.svd()
}

#[differentiable]
fn decompose_square(a: &Square) -> (Square, Vector<f64, 3>, Square) {
    a.svd()
}

/// Σ uᵢⱼ³ + Σ σᵢ² + Σ (Vᵀ)ᵢⱼ³, generic for second order.
#[differentiable]
fn energy<T: RealScalar>(a: &Matrix<T, 5, 3>) -> T {
    let (u, sigma, v_t) = a.svd();
    u.hadamard(&u).hadamard(&u).sum() + sigma.dot(&sigma) + v_t.hadamard(&v_t).hadamard(&v_t).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_matrices(a in tall_directions()) {
        let factors = a.svd();
        assert_decomposition(&a.to_storage(), &(factors.0.to_storage(), factors.1.to_storage(), factors.2.to_storage()), 1e-14);
    }

    #[test]
    fn derivatives(entries in prop::array::uniform15(-1.0..1.0f64), w in tall_directions(), s in prop::array::uniform3(-1.0..1.0f64), v in square_directions(), direction in tall_directions()) {
        let a = separated(entries);
        let s = Vector::from_array(s);
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        // Through every factor, and through each alone (the others' cotangents zero).
        check_grad(|a: Var<Tall>| { let (u, sigma, v_t) = a.svd(); u.dot(&Var::constant(w)) + sigma.dot(&Var::constant(s)) + v_t.dot(&Var::constant(v)) }, &a, options).map_err(fail)?;
        check_grad(|a: Var<Tall>| a.svd().0.dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_grad(|a: Var<Tall>| a.svd().2.dot(&Var::constant(v)), &a, options).map_err(fail)?;
        check_pullback(|a: &Tall| a.svd(), decompose::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.svd(), |a_dot| decompose::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity between the public tangent and cotangent.
        let (u, sigma, v_t) = a.svd();
        let (u_dot, sigma_dot, v_t_dot) = svd_push(&u, &sigma, &v_t, &direction);
        let a_bar = svd_pullback(&u, &sigma, &v_t, &w, &s, &v);
        let (lhs, rhs) = (u_dot.dot(&w) + sigma_dot.dot(&s) + v_t_dot.dot(&v), direction.dot(&a_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        // The tangents against forward mode on duals.
        let (_, (u_dual, sigma_dual, v_t_dual)) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.svd(), &a, &direction);
        prop_assert!(relative_distance(&u_dot, &u_dual) < 1e-12 && relative_distance(&sigma_dot, &sigma_dual) < 1e-12 && relative_distance(&v_t_dot, &v_t_dual) < 1e-12);
    }

    #[test]
    fn square_derivatives(entries in prop::array::uniform9(-1.0..1.0f64), w in square_directions(), v in square_directions(), direction in square_directions()) {
        // m = n: U is square too, and the term outside its columns is absent.
        let (u0, v0) = orthonormal_factors();
        let q = u0.narrow::<0, 0, 3>().qr().0;
        let a = q.matmul(&Square::from_fn(|[i, j]| if i == j { [3.0, 1.5, 0.5][i] } else { 0.0 })).matmul_transposed(&v0)
            + Square::from_fn(|[i, j]| entries[i * 3 + j] * 0.08);
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        check_grad(|a: Var<Square>| { let (u, _, v_t) = a.svd(); u.dot(&Var::constant(w)) + v_t.dot(&Var::constant(v)) }, &a, options).map_err(fail)?;
        check_pullback(|a: &Square| a.svd(), decompose_square::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Square| a.svd(), |a_dot| decompose_square::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let (u, sigma, v_t) = a.svd();
        let (u_dot, _, v_t_dot) = svd_push(&u, &sigma, &v_t, &direction);
        let (_, (u_dual, _, v_t_dual)) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.svd(), &a, &direction);
        prop_assert!(relative_distance(&u_dot, &u_dual) < 1e-12 && relative_distance(&v_t_dot, &v_t_dual) < 1e-12);
    }

    #[test]
    fn second_derivatives(entries in prop::array::uniform15(-1.0..1.0f64), direction in tall_directions()) {
        let a = separated(entries);
        // Static mode's gradient against the tape's.
        let (_, static_gradient) = energy::value_and_grad(&a);
        let tape_gradient = grad(|a: Var<Tall>| {
            let (u, sigma, v_t) = a.svd();
            u.hadamard(&u).hadamard(&u).sum() + sigma.dot(&sigma) + v_t.hadamard(&v_t).hadamard(&v_t).sum()
        }, &a);
        prop_assert!(relative_distance(&static_gradient, &tape_gradient) < 1e-13);
        // H·Ȧ against central differences of the gradient.
        let hv: Tall = energy::hvp(&a, &direction);
        let step = 1e-5;
        let gradient_at = |t: f64| energy::value_and_grad(&(a + direction.scale(t))).1;
        let difference = (gradient_at(step) - gradient_at(-step)).scale(0.5 / step);
        let size = difference.as_slice().iter().fold(1.0f64, |m, x| m.max(x.abs()));
        prop_assert!(relative_distance(&hv, &difference) < 1e-6 * size, "{hv:?} against {difference:?}");
    }
}
