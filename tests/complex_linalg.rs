//! Linear systems, inverses, determinants, Cholesky factors and Hermitian
//! eigendecompositions of complex matrices: values against independent references
//! (the real system of twice the size that a complex one is, whose eigenvalues are
//! the Hermitian matrix's, each twice; det by cofactors, A·A⁻¹ = I, T·x = b, L·Lᴴ =
//! A, H·V = V·diag(λ)), the singular case, and derivatives
//! in every mode under the crate's complex convention (a cotangent is ∂L/∂a +
//! i·∂L/∂b): the tape's and static mode's against finite differences over the real
//! and imaginary parts and the adjoint identity, static mode's tangents against
//! forward mode on complex duals (which runs the elimination on them).

use fluxion::autodiff::check::{
    CheckOptions, GradientError, check_grad, check_pullback, check_pushforward, check_vjp,
};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{LinAlgError, hermitian_eigen_push};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;

type C = Complex64;
type M = Matrix<C, 3, 3>;
type V = Vector<C, 3>;
type DualMatrix = Matrix<Dual<C>, 3, 3>;

/// `re + i·im` plus 4·I, its rows in one of the six orders, so that elimination
/// swaps rows.
fn well_conditioned(re: [f64; 9], im: [f64; 9], order: usize) -> M {
    const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    Matrix::from_fn(|[i, j]| {
        let row = ORDERS[order][i];
        C::new(re[row * 3 + j] + if row == j { 4.0 } else { 0.0 }, im[row * 3 + j])
    })
}

fn matrices() -> impl Strategy<Value = M> {
    (prop::array::uniform9(-1.0..1.0f64), prop::array::uniform9(-1.0..1.0f64), 0..6usize)
        .prop_map(|(re, im, order)| well_conditioned(re, im, order))
}

/// A Hermitian positive definite matrix: B·Bᴴ + I.
fn positive_definite() -> impl Strategy<Value = M> {
    directions().prop_map(|b| b.matmul(&conjugate_transpose(&b)) + M::identity())
}

fn conjugate_transpose(a: &M) -> M {
    a.transpose().conj()
}

/// A Hermitian matrix with its eigenvalues apart: B + Bᴴ + diag(−4, 0, 4).
fn hermitian() -> impl Strategy<Value = M> {
    directions().prop_map(|b| {
        let spread = Matrix::from_fn(|[i, j]| C::new(if i == j { 4.0 * (i as f64 - 1.0) } else { 0.0 }, 0.0));
        b + conjugate_transpose(&b) + spread
    })
}

fn directions() -> impl Strategy<Value = M> {
    (prop::array::uniform9(-1.0..1.0f64), prop::array::uniform9(-1.0..1.0f64))
        .prop_map(|(re, im)| Matrix::from_fn(|[i, j]| C::new(re[i * 3 + j], im[i * 3 + j])))
}

fn vectors() -> impl Strategy<Value = V> {
    (prop::array::uniform3(-2.0..2.0f64), prop::array::uniform3(-2.0..2.0f64))
        .prop_map(|(re, im)| Vector::from_fn(|[i]| C::new(re[i], im[i])))
}

/// The real 6×6 matrix [[X, −Y], [Y, X]] of A = X + iY: it maps (Re z, Im z) to
/// (Re Az, Im Az).
fn real_form(a: &M) -> Matrix<f64, 6, 6> {
    Matrix::from_fn(|[i, j]| {
        let z = a[[i % 3, j % 3]];
        match (i < 3, j < 3) {
            (true, true) | (false, false) => z.re,
            (true, false) => -z.im,
            (false, true) => z.im,
        }
    })
}

/// (Re z, Im z).
fn stacked(z: &V) -> Vector<f64, 6> {
    Vector::from_fn(|[i]| if i < 3 { z[[i]].re } else { z[[i - 3]].im })
}

/// det A by cofactors along the first row.
fn cofactor_determinant(a: &M) -> C {
    let minor = |j: usize, k: usize| a[[1, j]] * a[[2, k]] - a[[1, k]] * a[[2, j]];
    a[[0, 0]] * minor(1, 2) - a[[0, 1]] * minor(0, 2) + a[[0, 2]] * minor(0, 1)
}

/// `a` with each diagonal entry moved 4 + |aᵢᵢ| along the real axis: triangles of
/// it are well conditioned (the rows of `a` may be permuted).
fn triangular_friendly(a: &M) -> M {
    Matrix::from_fn(|[i, j]| {
        a[[i, j]] + if i == j { C::new(4.0 + a[[i, i]].norm(), 0.0) } else { C::new(0.0, 0.0) }
    })
}

fn lower_part(a: &M) -> M {
    Matrix::from_fn(|[i, j]| if j <= i { a[[i, j]] } else { C::new(0.0, 0.0) })
}

fn real_distance(a: &Vector<f64, 6>, b: &Vector<f64, 6>) -> f64 {
    common::distance(a, b)
}

fn real_distance3(a: &Vector<f64, 3>, b: &Vector<f64, 3>) -> f64 {
    common::distance(a, b)
}

fn distance(a: &[C], b: &[C]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).norm()).fold(0.0, |m, d| if d.is_nan() || d > m { d } else { m })
}

#[test]
fn known_values() {
    let i = C::i();
    let one = C::new(1.0, 0.0);
    // A = [[1, i], [0, 2]]: det A = 2, A⁻¹ = [[1, −i/2], [0, 1/2]].
    let a: Matrix<C, 2, 2> = Matrix::from_array([[one, i], [C::new(0.0, 0.0), one * 2.0]]);
    assert_eq!(a.determinant(), one * 2.0);
    assert_eq!(a.inverse().to_array(), [[one, -i * 0.5], [C::new(0.0, 0.0), one * 0.5]]);
    assert!((a.log_abs_determinant() - 2f64.ln()).abs() < 1e-15);
    // The rows of [[i, 1], [1, i]] sum to 1 + i: x = (1, 1) solves it for (1 + i, 1 + i).
    let b: Matrix<C, 2, 2> = Matrix::from_array([[i, one], [one, i]]);
    let x = b.solve(&Vector::from_array([one + i, one + i]));
    assert!(distance(x.as_slice(), &[one, one]) < 1e-15);
    assert_eq!(b.determinant(), C::new(-2.0, 0.0));
    // The triangular solves read one triangle: the other may hold anything.
    let t: Matrix<C, 2, 2> = Matrix::from_array([[i, C::new(9.0, 9.0)], [one, one * 2.0]]);
    let y = t.solve_lower_triangular(&Vector::from_array([-one, one]));
    // i·y₀ = −1 gives y₀ = i; y₀ + 2y₁ = 1 gives y₁ = (1 − i)/2.
    assert!(distance(y.as_slice(), &[i, (one - i) * 0.5]) < 1e-15);
    // Single precision.
    let a32: Matrix<Complex32, 2, 2> = Matrix::from_array([
        [Complex32::new(1.0, 0.0), Complex32::i()],
        [Complex32::new(0.0, 0.0), Complex32::new(2.0, 0.0)],
    ]);
    assert_eq!(a32.determinant(), Complex32::new(2.0, 0.0));
}

#[test]
fn exponentials_of_known_complex_matrices() {
    // e^(−iθσₓ) = cos θ·I − i sin θ·σₓ, and e^diag(iφ) = diag(e^(iφ)).
    let (theta, zero, one) = (0.8f64, C::new(0.0, 0.0), C::new(1.0, 0.0));
    let sigma_x: Matrix<C, 2, 2> = Matrix::from_array([[zero, one], [one, zero]]);
    let rotation = sigma_x.scale(C::new(0.0, -theta)).matrix_exp();
    let expected = [
        [C::new(theta.cos(), 0.0), C::new(0.0, -theta.sin())],
        [C::new(0.0, -theta.sin()), C::new(theta.cos(), 0.0)],
    ];
    assert!(distance(rotation.as_slice(), expected.as_flattened()) < 1e-15, "{rotation:?}");
    let phases: Matrix<C, 2, 2> = Matrix::from_array([[C::new(0.0, 0.4), zero], [zero, C::new(0.0, -2.5)]]);
    let diagonal = phases.matrix_exp();
    assert!(
        distance(diagonal.as_slice(), &[C::from_polar(1.0, 0.4), zero, zero, C::from_polar(1.0, -2.5)])
            < 1e-15
    );
}

#[test]
fn singular_complex_matrices() {
    let i = C::i();
    let one = C::new(1.0, 0.0);
    // [[1, i], [i, −1]]: the second row is i times the first.
    let a: Matrix<C, 2, 2> = Matrix::from_array([[one, i], [i, -one]]);
    let b = Vector::from_array([one, one]);
    assert_eq!(a.try_solve(&b), Err(LinAlgError::Singular { operation: "solve", column: 1 }));
    assert!(matches!(a.try_inverse(), Err(LinAlgError::Singular { operation: "inverse", .. })));
    assert_eq!(a.determinant(), C::new(0.0, 0.0));
    assert_eq!(a.log_abs_determinant(), f64::NEG_INFINITY);
    // On the tape: the error, with nothing recorded.
    let gradient = grad(
        |a: Var<Matrix<C, 2, 2>>| match a.try_solve(&Var::constant(b)) {
            Ok(x) => x.norm_sqr().sum(),
            Err(_) => a.norm_sqr().sum(),
        },
        &a,
    );
    assert_eq!(gradient, a.scale(C::new(2.0, 0.0)));
}

#[differentiable]
fn solution(a: &M, b: &V) -> V {
    a.solve(b)
}

#[differentiable]
fn inverse(a: &M) -> M {
    a.inverse()
}

#[differentiable]
fn determinant(a: &M) -> C {
    a.determinant()
}

#[differentiable]
fn log_abs_determinant(a: &M) -> f64 {
    a.log_abs_determinant()
}

#[differentiable]
fn cholesky(a: &M) -> M {
    a.cholesky()
}

#[differentiable]
fn lower_solution(l: &M, b: &V) -> V {
    l.solve_lower_triangular(b)
}

#[differentiable]
fn upper_solution(u: &M, b: &V) -> V {
    u.solve_upper_triangular(b)
}

/// A real loss of a complex solution: |A⁻¹b − c|².
#[differentiable(wrt(a, b))]
fn residual(a: &M, b: &V, c: &V) -> f64 {
    (a.solve(b) - c).norm_sqr().sum()
}

/// e^(−iΣₖ xₖHₖ) applied to v, |·|² summed: real parameters into a complex
/// computation through `to_complex`, scalar and tensor.
#[differentiable(wrt(x))]
fn evolved_weight(x: &Vector<f64, 3>, h: &M, v: &V) -> f64 {
    let phases = x.to_complex();
    let generator = h.scale(C::new(0.0, -1.0)).scale(x[[0]].to_complex()) + h.matmul(h).scale(phases.sum());
    generator.matrix_exp().matmul(v).hadamard(&phases).norm_sqr().sum()
}

/// |Bᴴ·A·B|² for a 3×2 B: the conjugate transpose in static mode.
#[differentiable]
fn projected_weight(a: &M, b: &Matrix<C, 3, 2>) -> f64 {
    b.conj_transpose().matmul(&a.matmul(b)).norm_sqr().sum()
}

#[differentiable]
fn exponential(a: &M) -> M {
    a.matrix_exp()
}

#[differentiable]
fn hermitian_values(a: &M) -> Vector<f64, 3> {
    a.hermitian_eigenvalues()
}

#[differentiable]
fn hermitian_decomposition(a: &M) -> (Vector<f64, 3>, M) {
    a.hermitian_eigen()
}

/// Each column's entry of largest magnitude is real and positive.
fn anchored(v: &M) -> bool {
    (0..3).all(|j| {
        let anchor = (0..3).fold(0, |best, i| if v[[i, j]].norm() > v[[best, j]].norm() { i } else { best });
        v[[anchor, j]].im == 0.0 && v[[anchor, j]].re > 0.0
    })
}

fn fail(error: GradientError) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn values_against_the_real_form_and_cofactors(a in matrices(), b in matrices(), v in vectors()) {
        // A complex system is the real one of twice the size.
        let x = a.solve(&v);
        let real = real_form(&a).solve(&stacked(&v));
        prop_assert!(real_distance(&stacked(&x), &real) < 1e-14);
        // A matrix of right-hand sides, column by column.
        let columns = a.solve(&b);
        for j in 0..3 {
            let column = a.solve(&Vector::from_fn(|[i]| b[[i, j]]));
            prop_assert!(distance(&(0..3).map(|i| columns[[i, j]]).collect::<Vec<_>>(), column.as_slice()) < 1e-14);
        }
        prop_assert!(distance(a.matmul(&a.inverse()).as_slice(), M::identity().as_slice()) < 1e-14);
        let det = a.determinant();
        prop_assert!((det - cofactor_determinant(&a)).norm() <= 1e-13 * det.norm());
        // det of the real form is |det A|².
        prop_assert!((real_form(&a).determinant() - det.norm_sqr()).abs() <= 1e-12 * det.norm_sqr());
        prop_assert!((a.log_abs_determinant() - det.norm().ln()).abs() < 1e-13);
        prop_assert!((a.matmul(&b).determinant() - det * b.determinant()).norm() <= 1e-12 * (det * b.determinant()).norm());
        // Triangular solves: L·x = v with L the lower triangle, U·x = v with the upper.
        let t = triangular_friendly(&a);
        let l = t.solve_lower_triangular(&v);
        prop_assert!(distance(lower_part(&t).matmul(&l).as_slice(), v.as_slice()) < 1e-13);
        let upper = lower_part(&t.transpose()).transpose();
        let u = t.solve_upper_triangular(&v);
        prop_assert!(distance(upper.matmul(&u).as_slice(), v.as_slice()) < 1e-13);
    }

    #[test]
    fn hermitian_cholesky_factors(s in positive_definite(), skew in directions()) {
        let l = s.cholesky();
        prop_assert!(distance(l.matmul(&conjugate_transpose(&l)).as_slice(), s.as_slice()) < 1e-13);
        for i in 0..3 {
            // A real, positive diagonal; nothing above it.
            prop_assert!(l[[i, i]].im == 0.0 && l[[i, i]].re > 0.0);
            for j in i + 1..3 {
                prop_assert_eq!(l[[i, j]], C::new(0.0, 0.0));
            }
        }
        // ln det S = 2 Σ ln lᵢᵢ.
        let from_factor: f64 = (0..3).map(|i| 2.0 * l[[i, i]].re.ln()).sum();
        prop_assert!((s.log_abs_determinant() - from_factor).abs() < 1e-13);
        // A matrix that is not Hermitian is factorised as its Hermitian part.
        let anti_hermitian = skew - conjugate_transpose(&skew);
        prop_assert!(distance((s + anti_hermitian).cholesky().as_slice(), l.as_slice()) < 1e-13);
        // x = S⁻¹b by two triangular solves with L and Lᴴ.
        let b = Vector::from_fn(|[i]| C::new(i as f64, 1.0));
        let x = conjugate_transpose(&l).solve_upper_triangular(&l.solve_lower_triangular(&b));
        prop_assert!(distance(x.as_slice(), s.solve(&b).as_slice()) < 1e-13);
    }

    #[test]
    fn hermitian_eigendecompositions(h in hermitian(), skew in directions()) {
        let (values, vectors) = h.hermitian_eigen();
        prop_assert_eq!(values, h.hermitian_eigenvalues());
        prop_assert!(values[[0]] < values[[1]] && values[[1]] < values[[2]]);
        // The real form's eigenvalues are these, each twice.
        let real = real_form(&h).symmetric_eigenvalues();
        for k in 0..6 {
            prop_assert!((real[[k]] - values[[k / 2]]).abs() < 1e-13, "{real:?} against {values:?}");
        }
        // V unitary, H·V = V·diag(λ), each column anchored.
        prop_assert!(distance(conjugate_transpose(&vectors).matmul(&vectors).as_slice(), M::identity().as_slice()) < 1e-14);
        let scaled = vectors.mul_rows(&values.map(|x| C::new(x, 0.0)));
        prop_assert!(distance(h.matmul(&vectors).as_slice(), scaled.as_slice()) < 1e-13);
        prop_assert!(anchored(&vectors));
        // A matrix that is not Hermitian is taken as its Hermitian part.
        let anti_hermitian = skew - conjugate_transpose(&skew);
        let (shifted_values, shifted_vectors) = (h + anti_hermitian).hermitian_eigen();
        prop_assert!(shifted_values.as_slice().iter().zip(values.as_slice()).all(|(a, b)| (a - b).abs() < 1e-13));
        prop_assert!(distance(shifted_vectors.as_slice(), vectors.as_slice()) < 1e-12);
        // A real symmetric matrix as complex: the real eigenvalues.
        let symmetric = real_form(&h).symmetric_eigenvalues();
        let as_complex: Matrix<C, 6, 6> = real_form(&h).map(|x| C::new(x, 0.0));
        prop_assert!(as_complex.hermitian_eigenvalues().as_slice().iter().zip(symmetric.as_slice()).all(|(a, b)| (a - b).abs() < 1e-13));
    }

    #[test]
    fn hermitian_eigen_derivatives(h in hermitian(), w in prop::array::uniform3(-1.0..1.0f64), direction in directions()) {
        let options = CheckOptions::f64();
        let w = Vector::from_array(w);
        check_grad(|h: Var<M>| h.hermitian_eigenvalues().dot(&Var::constant(w)), &h, options).map_err(fail)?;
        // The vectors in every cotangent direction: the phase convention's term too.
        check_vjp(|h: Var<M>| h.hermitian_eigen().1, &h, options).map_err(fail)?;
        check_grad(|h: Var<M>| {
            let (values, vectors) = h.hermitian_eigen();
            values.dot(&Var::constant(w)) + (vectors - Var::constant(direction)).norm_sqr().sum()
        }, &h, options).map_err(fail)?;
        check_pullback(|h: &M| h.hermitian_eigenvalues(), hermitian_values::vjp(&h).1, &h, options).map_err(fail)?;
        check_pushforward(|h: &M| h.hermitian_eigenvalues(), |h_dot| hermitian_values::jvp(&h, h_dot).1, &h, options).map_err(fail)?;
        check_pullback(|h: &M| h.hermitian_eigen(), hermitian_decomposition::vjp(&h).1, &h, options).map_err(fail)?;
        check_pushforward(|h: &M| h.hermitian_eigen(), |h_dot| hermitian_decomposition::jvp(&h, h_dot).1, &h, options).map_err(fail)?;
        // Tangents against forward mode on complex duals.
        let (_, (values_dot, vectors_dot)) = hermitian_decomposition::jvp(&h, &direction);
        let (_, (dual_values_dot, dual_vectors_dot)) = jvp(|h: DualMatrix| h.hermitian_eigen(), &h, &direction);
        prop_assert!(real_distance3(&values_dot, &dual_values_dot) <= 1e-12);
        prop_assert!(distance(vectors_dot.as_slice(), dual_vectors_dot.as_slice()) <= 1e-12);
        let (_, dual_values_dot) = jvp(|h: DualMatrix| h.hermitian_eigenvalues(), &h, &direction);
        prop_assert!(real_distance3(&values_dot, &dual_values_dot) <= 1e-12);
        // The anchors stay real along the tangent.
        let (_, vectors) = h.hermitian_eigen();
        for j in 0..3 {
            let anchor = (0..3).fold(0, |best, i| if vectors[[i, j]].norm() > vectors[[best, j]].norm() { i } else { best });
            prop_assert!(vectors_dot[[anchor, j]].im.abs() < 1e-14);
        }
    }

    #[test]
    fn complex_matrix_exponentials(h in hermitian(), a in directions(), direction in directions(), scale in 0.1..3.0f64) {
        // e^A through the real form, whose exponential is the real form of e^A.
        let a = a.scale(C::new(scale, 0.0));
        let exponential_of_a = a.matrix_exp();
        let through_real = real_form(&a).matrix_exp();
        prop_assert!(common::distance(&real_form(&exponential_of_a), &through_real) < 1e-12 * scale.exp().powi(2));
        // e^(−iHt) = V·diag(e^(−iλt))·Vᴴ, unitary.
        let t = 0.7;
        let evolution = h.scale(C::new(0.0, -t)).matrix_exp();
        let (values, vectors) = h.hermitian_eigen();
        let phases = values.map(|l| C::from_polar(1.0, -l * t));
        let expected = vectors.mul_rows(&phases).matmul(&conjugate_transpose(&vectors));
        prop_assert!(distance(evolution.as_slice(), expected.as_slice()) < 1e-12);
        prop_assert!(distance(conjugate_transpose(&evolution).matmul(&evolution).as_slice(), M::identity().as_slice()) < 1e-12);
        // Derivatives: the tape and static mode against finite differences, static
        // mode's tangent against complex duals.
        let options = CheckOptions::f64();
        check_vjp(|a: Var<M>| a.matrix_exp(), &a, options).map_err(fail)?;
        check_grad(|h: Var<M>| (h.scale(C::new(0.0, -t)).matrix_exp() - Var::constant(direction)).norm_sqr().sum(), &h, options).map_err(fail)?;
        check_pullback(|a: &M| a.matrix_exp(), exponential::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M| a.matrix_exp(), |a_dot| exponential::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let (_, tangent) = exponential::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: DualMatrix| a.matrix_exp(), &a, &direction);
        prop_assert!(distance(tangent.as_slice(), dual_tangent.as_slice()) <= 1e-11 * scale.exp().powi(2));
    }

    #[test]
    fn real_parameters_of_complex_computations(h in hermitian(), v in vectors(), x in prop::array::uniform3(-1.0..1.0f64), direction in prop::array::uniform3(-1.0..1.0f64)) {
        let (x, direction) = (Vector::from_array(x), Vector::from_array(direction));
        let h = h.scale(C::new(0.2, 0.0));
        let options = CheckOptions::f64();
        let plain = |x: &Vector<f64, 3>| evolved_weight(x, &h, &v);
        check_pullback(plain, |&y_bar: &f64| evolved_weight::vjp(&x, &h, &v).1(&y_bar), &x, options).map_err(fail)?;
        check_pushforward(plain, |x_dot| evolved_weight::jvp(&x, &h, &v, x_dot).1, &x, options).map_err(fail)?;
        // The tape's gradient, and forward mode on duals, agree with static mode's.
        let tape = grad(|x: Var<Vector<f64, 3>>| {
            let phases = x.to_complex();
            let generator = Var::constant(h.scale(C::new(0.0, -1.0))).scale_by(&x.at([0]).to_complex())
                + Var::constant(h.matmul(&h)).scale_by(&phases.sum());
            generator.matrix_exp().matmul(&Var::constant(v)).hadamard(&phases).norm_sqr().sum()
        }, &x);
        let (_, static_gradient) = evolved_weight::value_and_grad(&x, &h, &v);
        prop_assert!(common::distance(&tape, &static_gradient) < 1e-12);
        let (_, tangent) = evolved_weight::jvp(&x, &h, &v, &direction);
        let along: f64 = static_gradient.as_slice().iter().zip(direction.as_slice()).map(|(g, d)| g * d).sum();
        prop_assert!((tangent - along).abs() < 1e-12 * along.abs().max(1.0));
    }

    #[test]
    fn conjugate_transposes(a in directions(), b in directions()) {
        let b: Matrix<C, 3, 2> = Matrix::from_fn(|[i, j]| b[[i, j]]);
        prop_assert_eq!(b.conj_transpose(), b.transpose().conj());
        prop_assert_eq!(b.conj_transpose().conj_transpose(), b);
        let real = real_form(&a);
        prop_assert_eq!(real.conj_transpose(), real.transpose());
        let options = CheckOptions::f64();
        check_vjp(|b: Var<Matrix<C, 3, 2>>| b.conj_transpose(), &b, options).map_err(fail)?;
        check_pullback(|(a, b): &(M, Matrix<C, 3, 2>)| projected_weight(a, b), |y_bar: &f64| projected_weight::vjp(&a, &b).1(y_bar), &(a, b), options).map_err(fail)?;
        check_pushforward(|(a, b): &(M, Matrix<C, 3, 2>)| projected_weight(a, b), |(a_dot, b_dot)| projected_weight::jvp(&a, &b, a_dot, b_dot).1, &(a, b), options).map_err(fail)?;
        let tape = grad(|(a, b): (Var<M>, Var<Matrix<C, 3, 2>>)| b.conj_transpose().matmul(&a.matmul(&b)).norm_sqr().sum(), &(a, b));
        let (_, (a_bar, b_bar)) = projected_weight::value_and_grad(&a, &b);
        prop_assert!(distance(tape.0.as_slice(), a_bar.as_slice()) < 1e-12 && distance(tape.1.as_slice(), b_bar.as_slice()) < 1e-12);
    }

    #[test]
    fn tape_derivatives_match_finite_differences(a in matrices(), w in directions(), v in vectors()) {
        let options = CheckOptions::f64();
        check_grad(|(a, v): (Var<M>, Var<V>)| a.solve(&v).norm_sqr().sum(), &(a, v), options).map_err(fail)?;
        check_grad(|a: Var<M>| (a.inverse() - Var::constant(w)).norm_sqr().sum(), &a, options).map_err(fail)?;
        check_grad(|a: Var<M>| a.log_abs_determinant(), &a, options).map_err(fail)?;
        // Complex outputs: every cotangent direction, real and imaginary.
        check_vjp(|a: Var<M>| a.determinant(), &a, options).map_err(fail)?;
        check_vjp(|a: Var<M>| a.inverse(), &a, options).map_err(fail)?;
        check_vjp(|(a, v): (Var<M>, Var<V>)| a.solve(&v), &(a, v), options).map_err(fail)?;
        let t = triangular_friendly(&a);
        check_vjp(|(l, v): (Var<M>, Var<V>)| l.solve_lower_triangular(&v), &(t, v), options).map_err(fail)?;
        check_vjp(|(u, v): (Var<M>, Var<V>)| u.solve_upper_triangular(&v), &(t, v), options).map_err(fail)?;
        // Cholesky at a Hermitian positive definite matrix; its gradient is Hermitian.
        let s = a.matmul(&conjugate_transpose(&a));
        check_vjp(|s: Var<M>| s.cholesky(), &s, options).map_err(fail)?;
        let gradient = grad(|s: Var<M>| (s.cholesky() - Var::constant(w)).norm_sqr().sum(), &s);
        prop_assert!(distance(gradient.as_slice(), conjugate_transpose(&gradient).as_slice()) < 1e-13);
    }

    #[test]
    fn static_mode_agrees_with_finite_differences_the_tape_and_duals(
        a in matrices(), direction in directions(), v in vectors(), v_dot in vectors(), c in vectors(),
    ) {
        let options = CheckOptions::f64();
        check_pullback(|(a, v): &(M, V)| a.solve(v), solution::vjp(&a, &v).1, &(a, v), options).map_err(fail)?;
        check_pushforward(|(a, v): &(M, V)| a.solve(v), |(a_dot, v_dot)| solution::jvp(&a, &v, a_dot, v_dot).1, &(a, v), options).map_err(fail)?;
        check_pullback(|a: &M| a.inverse(), inverse::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M| a.inverse(), |a_dot| inverse::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        check_pullback(|a: &M| a.determinant(), determinant::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M| a.determinant(), |a_dot| determinant::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        check_pullback(|a: &M| a.log_abs_determinant(), log_abs_determinant::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M| a.log_abs_determinant(), |a_dot| log_abs_determinant::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let s = a.matmul(&conjugate_transpose(&a));
        check_pullback(|s: &M| s.cholesky(), cholesky::vjp(&s).1, &s, options).map_err(fail)?;
        check_pushforward(|s: &M| s.cholesky(), |s_dot| cholesky::jvp(&s, s_dot).1, &s, options).map_err(fail)?;
        let (_, tangent) = cholesky::jvp(&s, &direction);
        let (_, dual_tangent) = jvp(|s: DualMatrix| s.cholesky(), &s, &direction);
        prop_assert!(distance(tangent.as_slice(), dual_tangent.as_slice()) <= 1e-12);
        let t = triangular_friendly(&a);
        check_pullback(|(l, v): &(M, V)| l.solve_lower_triangular(v), lower_solution::vjp(&t, &v).1, &(t, v), options).map_err(fail)?;
        check_pushforward(|(u, v): &(M, V)| u.solve_upper_triangular(v), |(u_dot, v_dot)| upper_solution::jvp(&t, &v, u_dot, v_dot).1, &(t, v), options).map_err(fail)?;
        // A real loss: static mode's gradient is the tape's.
        let (value, (a_bar, v_bar)) = residual::value_and_grad(&a, &v, &c);
        let (tape_value, (tape_a_bar, tape_v_bar)) =
            value_and_grad(|(a, v): (Var<M>, Var<V>)| (a.solve(&v) - Var::constant(c)).norm_sqr().sum(), &(a, v));
        prop_assert!((value - tape_value).abs() <= 1e-13 * value.abs().max(1.0));
        prop_assert!(distance(a_bar.as_slice(), tape_a_bar.as_slice()) <= 1e-12);
        prop_assert!(distance(v_bar.as_slice(), tape_v_bar.as_slice()) <= 1e-12);
        // Tangents against forward mode on complex duals, which eliminates on them.
        let (_, tangent) = solution::jvp(&a, &v, &direction, &v_dot);
        let (_, dual_tangent) = jvp(|(a, v): (DualMatrix, Vector<Dual<C>, 3>)| a.solve(&v), &(a, v), &(direction, v_dot));
        prop_assert!(distance(tangent.as_slice(), dual_tangent.as_slice()) <= 1e-12);
        let (_, tangent) = inverse::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: DualMatrix| a.inverse(), &a, &direction);
        prop_assert!(distance(tangent.as_slice(), dual_tangent.as_slice()) <= 1e-12);
        let (det, tangent) = determinant::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: DualMatrix| a.determinant(), &a, &direction);
        prop_assert!((tangent - dual_tangent).norm() <= 1e-12 * det.norm());
        let (_, tangent) = log_abs_determinant::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: DualMatrix| a.log_abs_determinant(), &a, &direction);
        prop_assert!((tangent - dual_tangent).abs() <= 1e-12);
    }
}

#[test]
fn hermitian_second_derivatives_on_nested_duals() {
    // diag(1, 2) moved by t·[[0, i], [−i, 0]]: λ = (3 ∓ √(1 + 4t²))/2, λ″ = ∓2 at t = 0,
    // where no rotation runs on the values.
    let i = C::i();
    let lifted: Matrix<Dual<Dual<C>>, 2, 2> = Matrix::from_fn(|[r, c]| {
        let (value, tangent) = match (r, c) {
            (0, 1) => (C::new(0.0, 0.0), i),
            (1, 0) => (C::new(0.0, 0.0), -i),
            _ => (C::new((r + 1) as f64, 0.0), C::new(0.0, 0.0)),
        };
        Dual::new(Dual::new(value, [tangent]), [Dual::new(tangent, [C::new(0.0, 0.0)])])
    });
    let (values, _) = lifted.hermitian_eigen();
    let second = |k: usize| values[[k]].tangent()[0].tangent()[0];
    assert!((second(0) + 2.0).abs() < 1e-14 && (second(1) - 2.0).abs() < 1e-14, "{values:?}");
    assert_eq!(lifted.hermitian_eigenvalues(), values);
    // At a general Hermitian matrix, the second derivatives of λ and V along E against
    // central differences of their first derivatives.
    let h: M = Matrix::from_fn(|[r, c]| {
        let base = C::new(0.3 * r as f64 - 0.2 * c as f64, 0.4 * (r as f64 - c as f64));
        base + if r == c { C::new(3.0 * r as f64, 0.0) } else { C::new(0.0, 0.0) }
    });
    let h = (h + conjugate_transpose(&h)).scale(C::new(0.5, 0.0));
    let e: M = Matrix::from_fn(|[r, c]| C::new(0.5 - 0.1 * (r + c) as f64, 0.3 * (c as f64 - r as f64)));
    let lift: Matrix<Dual<Dual<C>>, 3, 3> = Matrix::from_fn(|[r, c]| {
        Dual::new(Dual::new(h[[r, c]], [e[[r, c]]]), [Dual::new(e[[r, c]], [C::new(0.0, 0.0)])])
    });
    let (values, vectors) = lift.hermitian_eigen();
    let step = 1e-5;
    let first = |t: f64| hermitian_decomposition::jvp(&(h + e.scale(C::new(t, 0.0))), &e).1;
    let ((plus_values, plus_vectors), (minus_values, minus_vectors)) = (first(step), first(-step));
    for k in 0..3 {
        let difference = (plus_values[[k]] - minus_values[[k]]) / (2.0 * step);
        let second = values[[k]].tangent()[0].tangent()[0];
        assert!((second - difference).abs() < 1e-6, "λ{k}″ = {second}, differences {difference}");
        for r in 0..3 {
            let difference = (plus_vectors[[r, k]] - minus_vectors[[r, k]]) / (2.0 * step);
            let second = vectors[[r, k]].tangent()[0].tangent()[0];
            assert!((second - difference).norm() < 1e-6, "V″[{r}, {k}] = {second}, differences {difference}");
        }
    }
}

/// Each column's anchor, the entry of largest real part: real, positive and of the
/// column's largest magnitude up to rounding.
fn anchors<const N: usize>(v: &Matrix<C, N, N>) -> [usize; N] {
    core::array::from_fn(|j| {
        let anchor = (0..N).fold(0, |best, i| if v[[i, j]].re > v[[best, j]].re { i } else { best });
        let largest = (0..N).map(|i| v[[i, j]].norm()).fold(0.0, f64::max);
        assert!(
            v[[anchor, j]].im == 0.0 && v[[anchor, j]].re >= largest * (1.0 - 1e-15),
            "column {j} of {v:?}"
        );
        anchor
    })
}

#[test]
fn eigenvectors_whose_entries_have_equal_magnitudes() {
    // A ring of four sites threaded by a flux (hopping t = e^(0.3i)) and, beside it,
    // [[a, b], [b̄, a]]: every eigenvector's entries have one magnitude, so that
    // which is largest is a matter of rounding.
    let t = C::from_polar(1.0, 0.3);
    let zero = C::new(0.0, 0.0);
    let ring: Matrix<C, 4, 4> = Matrix::from_fn(|[i, j]| match (j + 4 - i) % 4 {
        1 => t,
        3 => t.conj(),
        _ => zero,
    });
    let pair: Matrix<C, 2, 2> =
        Matrix::from_array([[C::new(0.5, 0.0), C::new(0.3, -0.7)], [C::new(0.3, 0.7), C::new(0.5, 0.0)]]);
    let (values, vectors) = ring.hermitian_eigen();
    // λₖ = 2cos(0.3 + πk/2), ascending.
    let mut expected: Vec<f64> =
        (0..4).map(|k| 2.0 * (0.3 + std::f64::consts::FRAC_PI_2 * k as f64).cos()).collect();
    expected.sort_by(f64::total_cmp);
    assert!(values.as_slice().iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-14), "{values:?}");
    let direction: Matrix<C, 4, 4> =
        Matrix::from_fn(|[i, j]| C::new(0.1 * (i + 2 * j) as f64, 0.05 * (i as f64 - j as f64)));
    let (_, vectors_dot) = hermitian_eigen_push(&values, &vectors, &direction);
    for (j, anchor) in anchors(&vectors).into_iter().enumerate() {
        // The tangent keeps the anchor real (and is finite).
        assert!(vectors_dot[[anchor, j]].im.abs() < 1e-13, "{vectors_dot:?}");
    }
    assert!(vectors_dot.iter().all(|z| z.re.is_finite() && z.im.is_finite()));
    let (values, vectors) = pair.hermitian_eigen();
    assert!(
        (values[[0]] - (0.5 - 0.58f64.sqrt())).abs() < 1e-15
            && (values[[1]] - (0.5 + 0.58f64.sqrt())).abs() < 1e-15
    );
    let direction =
        Matrix::from_array([[C::new(0.3, 0.0), C::new(-0.2, 0.4)], [C::new(0.1, 0.1), C::new(0.7, 0.0)]]);
    let (_, vectors_dot) = hermitian_eigen_push(&values, &vectors, &direction);
    for (j, anchor) in anchors(&vectors).into_iter().enumerate() {
        assert!(vectors_dot[[anchor, j]].im.abs() < 1e-13, "{vectors_dot:?}");
    }
}

#[test]
fn extreme_magnitudes() {
    // A subnormal pivot: its phase still has modulus 1, so the rotation is unitary.
    let tiny = C::new(5e-324, 5e-324);
    let one = |x: f64| C::new(x, 0.0);
    let h: M = Matrix::from_array([
        [one(0.5), tiny, one(0.0)],
        [tiny.conj(), one(0.7), one(1.0)],
        [one(0.0), one(1.0), one(0.2)],
    ]);
    let (values, vectors) = h.hermitian_eigen();
    let root = (0.0625f64 + 1.0).sqrt();
    let expected = [0.45 - root, 0.5, 0.45 + root];
    assert!(values.as_slice().iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-14), "{values:?}");
    assert!(
        distance(conjugate_transpose(&vectors).matmul(&vectors).as_slice(), M::identity().as_slice()) < 1e-15
    );
    // Entries near the largest and the smallest normal numbers: the solve and the
    // eigenvalues scale with them (a complex division by |b|² would overflow or
    // underflow, and so would |z| of an entry whose parts are both near the largest).
    let a = well_conditioned(
        [0.3, -0.2, 0.5, 0.1, 0.9, -0.7, 0.4, 0.0, -0.3],
        [0.2, 0.6, -0.1, -0.5, 0.3, 0.8, -0.4, 0.1, 0.7],
        3,
    );
    let b = Vector::from_fn(|[i]| C::new(1.0 - i as f64, 0.5 * i as f64));
    let (x, hermitian) = (a.solve(&b), a.matmul(&conjugate_transpose(&a)));
    let values = hermitian.hermitian_eigenvalues();
    for scale in [1e300, 1e-300] {
        let scaled = a.scale(C::new(scale, scale));
        let x_scaled = scaled.solve(&b.scale(C::new(scale, scale)));
        assert!(distance(x_scaled.as_slice(), x.as_slice()) < 1e-14, "{x_scaled:?}");
        let values_scaled = hermitian.scale(C::new(scale, 0.0)).hermitian_eigenvalues();
        assert!(
            values_scaled
                .as_slice()
                .iter()
                .zip(values.as_slice())
                .all(|(s, v)| (s / scale - v).abs() < 1e-13 * v.abs().max(1.0))
        );
    }
}

#[test]
fn single_precision_and_dynamic_sizes() {
    // Complex32: the solve's gradient against finite differences in f32.
    let a: Matrix<Complex32, 2, 2> = Matrix::from_array([
        [Complex32::new(3.0, 0.5), Complex32::new(0.2, -1.0)],
        [Complex32::new(-0.4, 0.3), Complex32::new(2.5, -0.2)],
    ]);
    let b = Vector::from_array([Complex32::new(1.0, -1.0), Complex32::new(0.5, 2.0)]);
    check_grad(
        |(a, b): (Var<Matrix<Complex32, 2, 2>>, Var<Vector<Complex32, 2>>)| a.solve(&b).norm_sqr().sum(),
        &(a, b),
        CheckOptions::f32(),
    )
    .unwrap();
    let (values, _) = a.matmul(&a.transpose().conj()).hermitian_eigen();
    assert!(values[[0]] > 0.0 && values[[0]] < values[[1]]);
    // Dyn: 0×0 and 1×1.
    let empty = Tensor::<C, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(0), Dyn(0)));
    let (values, vectors) = empty.hermitian_eigen();
    assert_eq!((values.len(), vectors.len()), (0, 0));
    assert_eq!(empty.determinant(), C::new(1.0, 0.0));
    let single = Tensor::<C, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(1), Dyn(1)), |_| C::new(2.0, 0.0));
    let (values, vectors) = single.hermitian_eigen();
    assert_eq!((values.to_vec(), vectors.to_vec()), (vec![2.0], vec![C::new(1.0, 0.0)]));
    let x = single.solve(&Tensor::<C, (Dyn,), Heap>::from_shape_fn((Dyn(1),), |_| C::new(0.0, 4.0)));
    assert_eq!(x.to_vec(), vec![C::new(0.0, 2.0)]);
    let wide = Tensor::<C, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(3)));
    let message = common::panic_message(|| wide.hermitian_eigen());
    assert!(message.contains("hermitian_eigen") && message.contains("[2, 3]"), "{message}");
}
