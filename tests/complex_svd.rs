//! The singular values, the thin SVD and the pseudo-inverse of complex matrices:
//! σ against the square roots of AᴴA's eigenvalues (an independent algorithm:
//! Householder tridiagonalisation and QR steps), A = U·diag(σ)·Vᴴ with UᴴU = VᴴV =
//! I and each column of V's largest entry real and positive, the four Penrose
//! conditions and A⁺·b against least squares; `Dyn` sizes, `Complex32`, inline
//! against heap; and derivatives in every mode under the crate's complex convention
//! (a cotangent is ∂L/∂Re + i·∂L/∂Im): the tape's against finite differences over
//! the real and imaginary parts in every cotangent direction, U and Vᴴ alone
//! included (their phases are fixed by V's anchors, and those derivatives carry the
//! turn that keeps the anchors real), static mode's pullbacks and tangents against
//! finite differences, the public tangents and cotangents against each other
//! (Re⟨push(Ȧ), W⟩ = Re⟨Ȧ, pull(W)⟩), and forward mode on complex duals (which
//! adds each level of tangents by those formulas) against the public tangents; a
//! square matrix's factors too, where U has no part outside its columns.

use fluxion::autodiff::check::{CheckOptions, GradientError, check_pullback, check_pushforward, check_vjp};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{
    pseudo_inverse_pullback, pseudo_inverse_push, singular_values_pullback, singular_values_push,
    svd_pullback, svd_push,
};
use fluxion::prelude::*;
use fluxion::shape::constraint::NoFewerRowsThan;
use proptest::prelude::*;

mod common;
use common::{complex_distance, real_distance, real_inner};

type C = Complex64;
type Tall = Matrix<C, 4, 3>;
type Square = Matrix<C, 3, 3>;
type Wide = Matrix<C, 2, 4>;
type DynMatrix = Tensor<C, (Dyn, Dyn), Heap>;

fn complex_matrices<const M: usize, const N: usize>() -> impl Strategy<Value = Matrix<C, M, N>> {
    (prop::collection::vec(-1.0..1.0f64, M * N), prop::collection::vec(-1.0..1.0f64, M * N))
        .prop_map(|(re, im)| Matrix::from_fn(|[i, j]| C::new(re[i * N + j], im[i * N + j])))
}

/// A tall matrix with its singular values apart and away from 0: `d` plus
/// diag(8, 5, 2) on the top.
fn tall_matrices() -> impl Strategy<Value = Tall> {
    complex_matrices::<4, 3>().prop_map(|d| {
        d + Tall::from_fn(|[i, j]| C::new(if i == j { 8.0 - 3.0 * i as f64 } else { 0.0 }, 0.0))
    })
}

/// σ, U·diag(σ)·Vᴴ = A, UᴴU = I, VᴴV = I, V's anchors real and positive, and σ²
/// against λ(AᴴA), descending.
fn assert_decomposition<M: NoFewerRowsThan<N>, N: Dim>(a: &Tensor<C, (M, N), Heap>, tolerance: f64) {
    let (u, sigma, v_h) = a.svd();
    let n = sigma.len();
    let back =
        u.matmul(&Tensor::from_shape_fn((v_h.shape().0, v_h.shape().1), |[i, j]| v_h[[i, j]] * sigma[[i]]));
    assert!(complex_distance(back.as_slice(), a.as_slice()) < tolerance, "U·diag(σ)·Vᴴ differs from A");
    let identity = Tensor::<C, (N, N), Heap>::identity_sized(sigma.shape().0);
    assert!(
        complex_distance(u.conj_transpose().matmul(&u).as_slice(), identity.as_slice()) < tolerance,
        "UᴴU"
    );
    assert!(
        complex_distance(v_h.matmul(&v_h.conj_transpose()).as_slice(), identity.as_slice()) < tolerance,
        "VᴴV"
    );
    for j in 0..n {
        // Column j of V is row j of Vᴴ conjugated: its largest entry real, positive.
        let largest =
            (0..n).fold(0, |best, k| if v_h[[j, k]].norm() > v_h[[j, best]].norm() { k } else { best });
        assert!(v_h[[j, largest]].im.abs() < 1e-15 && v_h[[j, largest]].re > 0.0, "{v_h:?}");
    }
    let mut expected = a.conj_transpose().matmul(a).hermitian_eigenvalues().to_vec();
    expected.reverse();
    let squares: Vec<f64> = sigma.iter().map(|s| s * s).collect();
    let size = expected.first().map_or(1.0, |largest| largest.max(1.0));
    assert!(real_distance(&squares, &expected) < tolerance * size, "{sigma:?} against √{expected:?}");
    assert!(sigma.as_slice().windows(2).all(|pair| pair[0] >= pair[1]), "{sigma:?}");
    assert!(real_distance(a.singular_values().as_slice(), sigma.as_slice()) < 1e-15);
}

/// The four Penrose conditions for Y = A⁺.
fn assert_penrose<M: Dim, N: Dim>(a: &Tensor<C, (M, N), Heap>, y: &Tensor<C, (N, M), Heap>, tolerance: f64) {
    let (ay, ya) = (a.matmul(y), y.matmul(a));
    assert!(complex_distance(ay.matmul(a).as_slice(), a.as_slice()) < tolerance, "A·A⁺·A");
    assert!(complex_distance(ya.matmul(y).as_slice(), y.as_slice()) < tolerance, "A⁺·A·A⁺");
    assert!(complex_distance(ay.conj_transpose().as_slice(), ay.as_slice()) < tolerance, "(A·A⁺)ᴴ");
    assert!(complex_distance(ya.conj_transpose().as_slice(), ya.as_slice()) < tolerance, "(A⁺·A)ᴴ");
}

#[test]
fn known_decompositions() {
    let (one, i) = (C::new(1.0, 0.0), C::new(0.0, 1.0));
    // i·diag(2, 1): σ = (2, 1), V = I (anchors 1), U = i·I.
    let a: Matrix<C, 2, 2> = Matrix::from_array([[i * 2.0, 0.0 * one], [0.0 * one, i]]);
    let (u, sigma, v_h) = a.svd();
    assert_eq!(sigma.to_array(), [2.0, 1.0]);
    assert!(complex_distance(u.as_slice(), &[i, 0.0 * one, 0.0 * one, i]) < 1e-16, "{u:?}");
    assert!(complex_distance(v_h.as_slice(), &[one, 0.0 * one, 0.0 * one, one]) < 1e-16, "{v_h:?}");
    // Columns (1, i) and (i, 1) are orthogonal under aᴴb: σ = (√2, √2).
    let b: Matrix<C, 2, 2> = Matrix::from_array([[one, i], [i, one]]);
    let sigma = b.singular_values();
    assert!(sigma.iter().all(|s| (s - 2f64.sqrt()).abs() < 1e-15), "{sigma:?}");
    // A rank-1 matrix u·vᴴ: one nonzero σ, and A⁺ = v·uᴴ/(|u|²|v|²).
    let (x, y) = ([one, i, one * 2.0], [i, one]);
    let rank_one: Matrix<C, 3, 2> = Matrix::from_fn(|[r, c]| x[r] * y[c].conj());
    let sigma = rank_one.singular_values();
    assert!((sigma[[0]] - 12f64.sqrt()).abs() < 1e-14 && sigma[[1]].abs() < 1e-14, "{sigma:?}");
    let expected = Matrix::<C, 2, 3>::from_fn(|[r, c]| y[r] * x[c].conj() / 12.0);
    assert!(complex_distance(rank_one.pseudo_inverse().as_slice(), expected.as_slice()) < 1e-15);
}

#[test]
fn sizes_precision_and_storage_kinds() {
    let mut random = common::TestRng::new(29);
    for m in 0..7 {
        for n in 0..=m {
            let a = DynMatrix::from_shape_fn((Dyn(m), Dyn(n)), |_| random.element::<C>());
            assert_decomposition(&a, 1e-13);
            // A zero column: σ = 0 exactly, and U's column for it completed.
            if n > 0 {
                let mut deficient = a.clone();
                (0..m).for_each(|i| deficient[[i, n - 1]] = C::new(0.0, 0.0));
                assert_decomposition(&deficient, 1e-13);
            }
            assert_penrose(&a, &a.pseudo_inverse(), 1e-12);
            // A wide matrix's pseudo-inverse goes through its conjugate transpose.
            let wide = a.conj_transpose();
            assert_penrose(&wide, &wide.pseudo_inverse(), 1e-12);
        }
    }
    let a: Tall = Matrix::from_fn(|[i, j]| C::new((i * 3 + j) as f64 % 4.0 - 1.5, (i + 2 * j) as f64 % 3.0));
    let (u, sigma, v_h) = a.svd();
    let (u_heap, sigma_heap, v_h_heap) = a.to_storage::<Heap>().svd();
    assert_eq!(
        (u.to_vec(), sigma.to_vec(), v_h.to_vec()),
        (u_heap.to_vec(), sigma_heap.to_vec(), v_h_heap.to_vec())
    );
    // Complex32, against f64.
    let single: Matrix<Complex32, 4, 3> = a.map(|z| Complex32::new(z.re as f32, z.im as f32));
    let sigma_single = single.singular_values();
    assert!(
        sigma_single.iter().zip(sigma.iter()).all(|(s, d)| (f64::from(*s) - d).abs() < 1e-5 * d.max(1.0))
    );
    // A NaN entry makes every singular value NaN.
    let mut broken = a;
    broken[[1, 2]] = C::new(f64::NAN, 0.0);
    assert!(broken.singular_values().iter().all(|s| s.is_nan()));
}

#[differentiable]
fn values(a: &Tall) -> Vector<f64, 3> {
    a.singular_values()
}

#[differentiable]
fn factors(a: &Tall) -> (Tall, Vector<f64, 3>, Square) {
    a.svd()
}

#[differentiable]
fn inverse_of_wide(a: &Wide) -> Matrix<C, 4, 2> {
    a.pseudo_inverse()
}

fn fail(error: GradientError) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn decompositions_and_pseudo_inverses(a in tall_matrices(), wide in complex_matrices::<2, 4>(), b in complex_matrices::<4, 1>()) {
        assert_decomposition(&a.to_storage::<Heap>(), 1e-13);
        let y = a.pseudo_inverse();
        assert_penrose(&a.to_storage::<Heap>(), &y.to_storage::<Heap>(), 1e-13);
        prop_assert!(complex_distance(y.matmul(&b).as_slice(), a.least_squares(&b).as_slice()) < 1e-13);
        assert_penrose(&wide.to_storage::<Heap>(), &wide.pseudo_inverse().to_storage::<Heap>(), 1e-13);
    }

    #[test]
    fn derivatives_of_the_singular_values(a in tall_matrices(), direction in complex_matrices::<4, 3>(), w in prop::array::uniform3(-1.0..1.0f64)) {
        let options = CheckOptions::f64();
        check_vjp(|a: Var<Tall>| a.singular_values(), &a, options).map_err(fail)?;
        check_pullback(|a: &Tall| a.singular_values(), values::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.singular_values(), |a_dot| values::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let w = Vector::from_array(w);
        let sigma_dot = singular_values_push(&a, &direction);
        let a_bar = singular_values_pullback(&a, &w);
        let (lhs, rhs) = (sigma_dot.dot(&w), real_inner(direction.as_slice(), a_bar.as_slice()));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<C>, 4, 3>| a.singular_values(), &a, &direction);
        prop_assert!(real_distance(sigma_dot.as_slice(), dual_tangent.as_slice()) < 1e-12);
    }

    #[test]
    fn derivatives_of_the_factors(
        a in tall_matrices(), direction in complex_matrices::<4, 3>(),
        u_bar in complex_matrices::<4, 3>(), sigma_bar in prop::array::uniform3(-1.0..1.0f64), v_h_bar in complex_matrices::<3, 3>(),
    ) {
        let options = CheckOptions::f64();
        // Each factor alone: U and Vᴴ depend on the phases V's anchors fix.
        check_vjp(|a: Var<Tall>| a.svd().0, &a, options).map_err(fail)?;
        check_vjp(|a: Var<Tall>| a.svd().1, &a, options).map_err(fail)?;
        check_vjp(|a: Var<Tall>| a.svd().2, &a, options).map_err(fail)?;
        let square = Square::from_fn(|[i, j]| a[[i, j]]);
        check_vjp(|a: Var<Square>| a.svd().0, &square, options).map_err(fail)?;
        check_vjp(|a: Var<Square>| a.svd().2, &square, options).map_err(fail)?;
        check_pullback(|a: &Tall| a.svd(), factors::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.svd(), |a_dot| factors::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity between the public tangent and cotangent.
        let (u, sigma, v_h) = a.svd();
        let sigma_bar = Vector::from_array(sigma_bar);
        let (u_dot, sigma_dot, v_h_dot) = svd_push(&u, &sigma, &v_h, &direction);
        let a_bar = svd_pullback(&u, &sigma, &v_h, &u_bar, &sigma_bar, &v_h_bar);
        let lhs = real_inner(u_dot.as_slice(), u_bar.as_slice()) + sigma_dot.dot(&sigma_bar)
            + real_inner(v_h_dot.as_slice(), v_h_bar.as_slice());
        let rhs = real_inner(direction.as_slice(), a_bar.as_slice());
        prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        // The tangents against forward mode on complex duals.
        let (_, (u_dual, sigma_dual, v_h_dual)) = jvp(|a: Matrix<Dual<C>, 4, 3>| a.svd(), &a, &direction);
        prop_assert!(complex_distance(u_dot.as_slice(), u_dual.as_slice()) < 1e-12);
        prop_assert!(real_distance(sigma_dot.as_slice(), sigma_dual.as_slice()) < 1e-12);
        prop_assert!(complex_distance(v_h_dot.as_slice(), v_h_dual.as_slice()) < 1e-12);
        // A loss that does not depend on the phases: U·diag(σ)·Vᴴ's gradient is the
        // identity's, W itself.
        let gradient = grad(|a: Var<Tall>| { let (u, sigma, v_h) = a.svd(); u.mul_rows(&sigma.to_complex()).matmul(&v_h).norm_sqr().sum() }, &a);
        prop_assert!(complex_distance(gradient.as_slice(), a.scale(C::new(2.0, 0.0)).as_slice()) < 1e-12);
    }

    #[test]
    fn derivatives_of_the_pseudo_inverse(a in tall_matrices(), wide in complex_matrices::<2, 4>(), direction in complex_matrices::<2, 4>(), w in complex_matrices::<4, 2>()) {
        let options = CheckOptions::f64();
        check_vjp(|a: Var<Tall>| a.pseudo_inverse(), &a, options).map_err(fail)?;
        check_vjp(|a: Var<Wide>| a.pseudo_inverse(), &wide, options).map_err(fail)?;
        check_pullback(|a: &Wide| a.pseudo_inverse(), inverse_of_wide::vjp(&wide).1, &wide, options).map_err(fail)?;
        check_pushforward(|a: &Wide| a.pseudo_inverse(), |a_dot| inverse_of_wide::jvp(&wide, a_dot).1, &wide, options).map_err(fail)?;
        let y = wide.pseudo_inverse();
        let y_dot = pseudo_inverse_push(&wide, &y, &direction);
        let a_bar = pseudo_inverse_pullback(&wide, &y, &w);
        let (lhs, rhs) = (real_inner(y_dot.as_slice(), w.as_slice()), real_inner(direction.as_slice(), a_bar.as_slice()));
        prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<C>, 2, 4>| a.pseudo_inverse(), &wide, &direction);
        prop_assert!(complex_distance(y_dot.as_slice(), dual_tangent.as_slice()) < 1e-12);
    }
}
