//! Inverse, determinants, the Cholesky factor, triangular solves, diagonals and
//! symmetric eigenvalues:
//! values against known results and identities (A·A⁻¹ = I, det(AB) = det A·det B,
//! ln|det A|, L·Lᵀ = A, T·x = b), the errors for singular, indefinite and
//! non-square matrices, and derivatives in every mode
//! against independent references: the tape's gradients against finite differences
//! and the adjoint identity (`check_grad`), static mode's pullbacks and tangents
//! against finite differences (`check_pullback`, `check_pushforward`), its tangents
//! against forward mode on duals (which differentiates the factorisations
//! themselves), and second derivatives against differences of the gradient.

use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{
    LinAlgError, Triangle, cholesky_push, inverse_pullback, matrix_exp_pullback, matrix_exp_push,
    symmetric_eigen_pullback, symmetric_eigen_push, triangular_solve_pullback,
};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::{distance, relative_distance};

type M33 = Matrix<f64, 3, 3>;
type DynMatrix = Tensor<f64, (Dyn, Dyn), Heap>;

/// A well-conditioned 3×3 matrix: `entries` (in [−1, 1]) plus 4·I.
fn well_conditioned(entries: [f64; 9]) -> M33 {
    Matrix::from_fn(|[i, j]| entries[i * 3 + j] + if i == j { 4.0 } else { 0.0 })
}

/// A symmetric positive definite 3×3 matrix: M·Mᵀ + I.
fn positive_definite(entries: [f64; 9]) -> M33 {
    let m: M33 = Matrix::from_fn(|[i, j]| entries[i * 3 + j]);
    m.matmul_transposed(&m) + M33::identity()
}

/// Well-conditioned matrices with their rows in one of the six orders, so that
/// elimination swaps rows (none, one or two swaps).
fn matrices() -> impl Strategy<Value = M33> {
    const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    (prop::array::uniform9(-1.0..1.0f64), 0..6usize).prop_map(|(entries, order)| {
        let dominant = well_conditioned(entries);
        Matrix::from_fn(|[i, j]| dominant[[ORDERS[order][i], j]])
    })
}

fn spd_matrices() -> impl Strategy<Value = M33> {
    prop::array::uniform9(-1.0..1.0f64).prop_map(positive_definite)
}

fn directions() -> impl Strategy<Value = M33> {
    prop::array::uniform9(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

#[test]
fn known_values() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 3.0]]);
    assert!(distance(&a.inverse(), &Matrix::from_array([[0.6, -0.2], [-0.2, 0.4]])) < 1e-15);
    assert!((a.determinant() - 5.0).abs() < 1e-15);
    assert!((a.log_abs_determinant() - 5f64.ln()).abs() < 1e-15);
    let l = a.cholesky().to_array();
    let expected = [[2f64.sqrt(), 0.0], [1.0 / 2f64.sqrt(), (2.5f64).sqrt()]];
    for (row, expected_row) in l.iter().zip(expected) {
        for (x, e) in row.iter().zip(expected_row) {
            assert!((x - e).abs() < 1e-15, "{l:?}");
        }
    }
    // One row swap flips the sign; the zero first pivot needs it. A cyclic
    // permutation takes two swaps.
    let swap: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1.0], [1.0, 0.0]]);
    assert_eq!(swap.determinant(), -1.0);
    assert_eq!(swap.log_abs_determinant(), 0.0);
    assert_eq!(swap.inverse(), swap);
    let cycle: M33 = Matrix::from_array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
    assert_eq!(cycle.determinant(), 1.0);
    assert_eq!(cycle.inverse(), cycle.transpose());
    let scaled_cycle: M33 = Matrix::from_array([[0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [5.0, 0.0, 0.0]]);
    assert_eq!(scaled_cycle.determinant(), 30.0);
    // A triangular matrix: the product of its diagonal.
    let upper: M33 = Matrix::from_array([[2.0, 5.0, -1.0], [0.0, -3.0, 7.0], [0.0, 0.0, 0.5]]);
    assert!((upper.determinant() + 3.0).abs() < 1e-15);
    // The empty matrix: det 1, ln|det| 0, empty inverse and factor.
    let empty = DynMatrix::zeros_shaped((Dyn(0), Dyn(0)));
    assert_eq!(empty.determinant(), 1.0);
    assert_eq!(empty.log_abs_determinant(), 0.0);
    assert_eq!(empty.inverse().len(), 0);
    assert_eq!(empty.cholesky().len(), 0);
}

#[test]
fn heap_gradients_match_finite_differences() {
    let n = 5;
    let a = DynMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| {
        ((i * 5 + j * 2) % 7) as f64 / 7.0 - 0.4 + if i == (j + 2) % n { 3.0 } else { 0.0 }
    });
    let w = DynMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| (i as f64 - j as f64) * 0.3);
    let spd = a.matmul_transposed(&a);
    let options = CheckOptions::f64();
    check_grad(|a: Var<DynMatrix>| a.inverse().dot(&Var::constant(w.clone())), &a, options).unwrap();
    check_grad(|a: Var<DynMatrix>| a.determinant(), &a, options).unwrap();
    check_grad(|a: Var<DynMatrix>| a.log_abs_determinant(), &a, options).unwrap();
    check_grad(|s: Var<DynMatrix>| s.cholesky().dot(&Var::constant(w.clone())), &spd, options).unwrap();
}

#[test]
fn heap_and_f32_matrices() {
    let n = 6;
    let a = DynMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| {
        ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.4 + if i == j { 3.0 } else { 0.0 }
    });
    let identity = DynMatrix::identity_sized(Dyn(n));
    assert!(distance(&a.matmul(&a.inverse()), &identity) < 1e-14);
    let spd = a.matmul_transposed(&a);
    let l = spd.cholesky();
    assert!(distance(&l.matmul_transposed(&l), &spd) < 1e-13);
    assert!((spd.log_abs_determinant() - 2.0 * a.log_abs_determinant()).abs() < 1e-13);
    let b: Matrix<f32, 2, 2> = Matrix::from_array([[4.0, 2.0], [2.0, 3.0]]);
    assert!((b.determinant() - 8.0).abs() < 1e-6);
    assert!((b.cholesky().to_array()[1][1] - 2.0f32.sqrt()).abs() < 1e-6);
}

#[test]
fn singular_indefinite_and_non_square_matrices() {
    let singular: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [2.0, 4.0]]);
    assert_eq!(singular.determinant(), 0.0);
    assert_eq!(M33::zeros().determinant(), 0.0);
    // A NaN is a pivot before a zero: NaN results, not a singular matrix.
    let with_nan: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1.0], [f64::NAN, 1.0]]);
    assert!(with_nan.determinant().is_nan() && with_nan.log_abs_determinant().is_nan());
    assert!(with_nan.inverse().as_slice().iter().all(|x| x.is_nan()));
    assert!(with_nan.solve(&Vector::from_array([1.0, 1.0])).as_slice().iter().all(|x| x.is_nan()));
    assert_eq!(singular.log_abs_determinant(), f64::NEG_INFINITY);
    let error = singular.try_inverse().unwrap_err();
    assert_eq!(error, LinAlgError::Singular { operation: "inverse", column: 1 });
    assert_eq!(error.to_string(), "inverse: the matrix is singular (no nonzero pivot in column 1)");
    // Indefinite, and NaN: not positive definite, at the first column that shows it.
    let indefinite: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [2.0, 1.0]]);
    let error = indefinite.try_cholesky().unwrap_err();
    assert_eq!(error, LinAlgError::NotPositiveDefinite { column: 1 });
    assert_eq!(
        error.to_string(),
        "cholesky: the matrix is not positive definite (its pivot in column 1 is not positive)"
    );
    let nan: Matrix<f64, 2, 2> = Matrix::from_array([[f64::NAN, 0.0], [0.0, 1.0]]);
    assert_eq!(nan.try_cholesky().unwrap_err(), LinAlgError::NotPositiveDefinite { column: 0 });
    let message =
        std::panic::catch_unwind(|| indefinite.cholesky()).unwrap_err().downcast::<String>().unwrap();
    assert_eq!(
        *message,
        "cholesky: the matrix is not positive definite (its pivot in column 1 is not positive)"
    );
    // The derivative of a determinant at a singular matrix is not computed: a panic
    // that says so, not a wrong number.
    let message = std::panic::catch_unwind(|| grad(|a: Var<Matrix<f64, 2, 2>>| a.determinant(), &singular))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert_eq!(
        *message,
        "determinant: the matrix is singular (no nonzero pivot in column 1); its derivative at a singular matrix is not computed"
    );
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    assert_eq!(
        wide.try_inverse().unwrap_err().to_string(),
        "inverse: a matrix of shape [2, 3] is not square"
    );
    assert!(matches!(wide.try_cholesky().unwrap_err(), LinAlgError::Shape(_)));
    let panic_message = |f: &dyn Fn()| {
        *std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err().downcast::<String>().unwrap()
    };
    assert_eq!(
        panic_message(&|| _ = wide.determinant()),
        "determinant: a matrix of shape [2, 3] is not square"
    );
    assert_eq!(
        panic_message(&|| _ = wide.log_abs_determinant()),
        "log_abs_determinant: a matrix of shape [2, 3] is not square"
    );
    assert_eq!(panic_message(&|| _ = wide.cholesky()), "cholesky: a matrix of shape [2, 3] is not square");
    // The public pullbacks check their shapes too.
    assert_eq!(
        panic_message(&|| _ = inverse_pullback(&wide, &wide)),
        "inverse_pullback: a matrix of shape [2, 3] is not square"
    );
    assert_eq!(
        panic_message(&|| _ = cholesky_push(&wide, &wide)),
        "cholesky_push: a matrix of shape [2, 3] is not square"
    );
}

/// A symmetric matrix with well separated eigenvalues: M·Mᵀ plus 0, 3 and 6 on the
/// diagonal.
fn spread_eigenvalues(entries: [f64; 9]) -> M33 {
    positive_definite(entries) + Matrix::from_fn(|[i, j]| if i == j { 3.0 * i as f64 } else { 0.0 })
}

#[test]
fn symmetric_eigenvalues_of_known_matrices() {
    let close = |x: Vector<f64, 3>, expected: [f64; 3]| {
        assert!(
            x.as_slice().iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-14),
            "{x:?} against {expected:?}"
        )
    };
    let two: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 2.0]]);
    let values = two.symmetric_eigenvalues().to_array();
    assert!((values[0] - 1.0).abs() < 1e-15 && (values[1] - 3.0).abs() < 1e-15, "{values:?}");
    let diagonal: M33 = Matrix::from_array([[3.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]);
    assert_eq!(diagonal.symmetric_eigenvalues().to_array(), [-1.0, 2.0, 3.0]);
    let second_difference: M33 = Matrix::from_array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]);
    let root = 2f64.sqrt();
    close(second_difference.symmetric_eigenvalues(), [2.0 - root, 2.0, 2.0 + root]);
    // A repeated eigenvalue, and the symmetric part of a matrix that is not symmetric.
    close(M33::identity().scale(4.0).symmetric_eigenvalues(), [4.0, 4.0, 4.0]);
    let skewed = second_difference + Matrix::from_fn(|[i, j]| (i as f64 - j as f64) * 0.7);
    close(skewed.symmetric_eigenvalues(), [2.0 - root, 2.0, 2.0 + root]);
    // A repeated eigenvalue that takes rotations to find.
    let ones_plus_identity: M33 = Matrix::from_fn(|[i, j]| if i == j { 2.0 } else { 1.0 });
    close(ones_plus_identity.symmetric_eigenvalues(), [1.0, 1.0, 4.0]);
    // NaN or infinite entries: every value NaN.
    for bad in [f64::NAN, f64::INFINITY] {
        let with_bad: M33 = Matrix::from_fn(|[i, j]| if i == 1 && j == 2 { bad } else { 1.0 });
        assert!(with_bad.symmetric_eigenvalues().as_slice().iter().all(|x| x.is_nan()));
    }
    // Entries whose squares overflow or underflow.
    let huge: Matrix<f64, 2, 2> = Matrix::from_array([[1e200, 1e200], [1e200, 1e200]]);
    let values = huge.symmetric_eigenvalues().to_array();
    assert!(values[0].abs() < 1e185 && (values[1] / 2e200 - 1.0).abs() < 1e-15, "{values:?}");
    let tiny: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1e-170], [1e-170, 0.0]]);
    let values = tiny.symmetric_eigenvalues().to_array();
    assert!(
        (values[0] / -1e-170 - 1.0).abs() < 1e-15 && (values[1] / 1e-170 - 1.0).abs() < 1e-15,
        "{values:?}"
    );
    let single: Matrix<f32, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 2.0]]);
    let values = single.symmetric_eigenvalues().to_array();
    assert!((values[0] - 1.0).abs() < 1e-6 && (values[1] - 3.0).abs() < 1e-6);
    // Equal diagonal entries (θ = 0 in every first rotation): the tangent on duals
    // against the closed form vᵢᵀ·Ȧ·vᵢ, for Ȧ = E₀₀ (v = (½, √½, ½), (√½, 0, −√½), …).
    let first_entry: M33 = Matrix::from_fn(|[i, j]| if i == 0 && j == 0 { 1.0 } else { 0.0 });
    let (_, on_duals) =
        jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigenvalues(), &second_difference, &first_entry);
    close(on_duals, [0.25, 0.5, 0.25]);
    close(eigenvalues::jvp(&second_difference, &first_entry).1, [0.25, 0.5, 0.25]);
    let heap = DynMatrix::from_shape_fn((Dyn(5), Dyn(5)), |[i, j]| 1.0 / (i + j + 1) as f64);
    let values = heap.symmetric_eigenvalues();
    let trace: f64 = (0..5).map(|i| heap[[i, i]]).sum();
    assert!((values.sum() - trace).abs() < 1e-14 && values.as_slice().windows(2).all(|w| w[0] <= w[1]));
    check_grad(
        |a: Var<DynMatrix>| a.symmetric_eigenvalues().dot(&Var::constant(values.clone())),
        &heap,
        CheckOptions::f64(),
    )
    .unwrap();
}

#[test]
fn the_tape_returns_errors_with_nothing_recorded() {
    type M22 = Matrix<f64, 2, 2>;
    let singular: M22 = Matrix::from_array([[1.0, 2.0], [2.0, 4.0]]);
    let b = Vector::from_array([1.0, 1.0]);
    // A fallback taken on the error: the gradient is the fallback's alone.
    let gradient = grad(
        |a: Var<M22>| match a.try_solve(&Var::constant(b)) {
            Ok(x) => x.sum(),
            Err(error) => {
                assert_eq!(error, LinAlgError::Singular { operation: "solve", column: 1 });
                assert!(a.try_inverse().is_err());
                a.sum()
            }
        },
        &singular,
    );
    assert_eq!(gradient, M22::from_array([[1.0, 1.0], [1.0, 1.0]]));
    // An indefinite matrix factorised after adding jitter: checked against differences.
    let indefinite: M22 = Matrix::from_array([[1.0, 2.0], [2.0, 1.0]]);
    let with_jitter = |a: Var<M22>| {
        let l =
            a.try_cholesky().or_else(|_| (a + Var::constant(M22::identity() * 3.0)).try_cholesky()).unwrap();
        l.diagonal().ln().sum()
    };
    check_grad(with_jitter, &indefinite, CheckOptions::f64()).unwrap();
}

#[test]
fn determinants_of_singular_matrices_on_duals_have_the_adjugate_as_derivative() {
    // det [[a, b], [c, d]] = ad − bc: its gradient at [[1, 2], [2, 4]] is [[4, −2], [−2, 1]].
    let singular: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [2.0, 4.0]]);
    for (direction, expected) in
        [([[1.0, 0.0], [0.0, 0.0]], 4.0), ([[0.0, 1.0], [0.0, 0.0]], -2.0), ([[0.5, 0.0], [0.0, 2.0]], 4.0)]
    {
        let (value, tangent) =
            jvp(|a: Matrix<Dual<f64>, 2, 2>| a.determinant(), &singular, &Matrix::from_array(direction));
        assert_eq!((value, tangent), (0.0, expected));
    }
    // A 3×3 matrix of rank 2 against central differences.
    let rank_two: M33 = Matrix::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    let direction: M33 = Matrix::from_array([[0.3, -0.1, 0.2], [0.5, 0.4, -0.7], [-0.2, 0.9, 0.1]]);
    let (value, tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.determinant(), &rank_two, &direction);
    let step = 1e-6;
    let difference = ((rank_two + direction.scale(step)).determinant()
        - (rank_two - direction.scale(step)).determinant())
        / (2.0 * step);
    assert!(value.abs() < 1e-14, "{value}");
    assert!((tangent - difference).abs() < 1e-8, "{tangent} against {difference}");
}

/// `t` with `garbage` added to the strict triangle opposite `triangle`, which a
/// triangular solve must not read.
fn with_garbage(t: &M33, triangle: Triangle, garbage: f64) -> M33 {
    Matrix::from_fn(|[i, j]| {
        let opposite = match triangle {
            Triangle::Lower => j > i,
            Triangle::Upper => j < i,
        };
        t[[i, j]] + if opposite { garbage * (1.0 + i as f64 - j as f64) } else { 0.0 }
    })
}

/// The `triangle` of `a`, zeros elsewhere.
fn triangular(a: &M33, triangle: Triangle) -> M33 {
    *a - opposite_part(a, triangle)
}

/// The strict triangle of `a` opposite `triangle`, zeros elsewhere.
fn opposite_part(a: &M33, triangle: Triangle) -> M33 {
    Matrix::from_fn(|[i, j]| match triangle {
        Triangle::Lower if j > i => a[[i, j]],
        Triangle::Upper if j < i => a[[i, j]],
        _ => 0.0,
    })
}

#[test]
fn triangular_solves() {
    let l: M33 = Matrix::from_array([[2.0, 0.0, 0.0], [1.0, 4.0, 0.0], [-1.0, 3.0, 0.5]]);
    let b = Vector::from_array([2.0, 5.0, 3.5]);
    // 2x₁ = 2, x₁ + 4x₂ = 5, −x₁ + 3x₂ + ½x₃ = 3.5: x = (1, 1, 3).
    assert_eq!(l.solve_lower_triangular(&b).to_array(), [1.0, 1.0, 3.0]);
    // The upper triangle is not read.
    assert_eq!(with_garbage(&l, Triangle::Lower, 7.0).solve_lower_triangular(&b).to_array(), [1.0, 1.0, 3.0]);
    let u = l.transpose();
    let x = with_garbage(&u, Triangle::Upper, -2.0).solve_upper_triangular(&b);
    assert!(distance(&u.matmul(&x), &b) < 1e-15);
    // Columns solved together, on the heap.
    let heap = DynMatrix::from_shape_fn((Dyn(3), Dyn(3)), |[i, j]| l[[i, j]]);
    let columns = DynMatrix::from_shape_fn((Dyn(3), Dyn(2)), |[i, j]| b[[i]] * (j as f64 + 1.0));
    let solved = heap.solve_lower_triangular(&columns);
    assert!(distance(&heap.matmul(&solved), &columns) < 1e-15);
    // A zero on the diagonal.
    let mut singular = l;
    singular[[1, 1]] = 0.0;
    let error = singular.try_solve_lower_triangular(&b).unwrap_err();
    assert_eq!(error, LinAlgError::Singular { operation: "solve_lower_triangular", column: 1 });
    assert_eq!(
        error.to_string(),
        "solve_lower_triangular: the matrix is singular (no nonzero pivot in column 1)"
    );
    let message = std::panic::catch_unwind(|| triangular_solve_pullback(&singular, Triangle::Lower, &b, &b))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert!(message.starts_with("solve_lower_triangular: the matrix is singular"), "{message}");
    let mut singular = u;
    singular[[2, 2]] = 0.0;
    assert_eq!(
        singular.try_solve_upper_triangular(&b).unwrap_err(),
        LinAlgError::Singular { operation: "solve_upper_triangular", column: 2 }
    );
    // Columns of the upper triangle together.
    let columns: Matrix<f64, 3, 2> = Matrix::from_fn(|[i, j]| b[[i]] - j as f64);
    let solved = with_garbage(&u, Triangle::Upper, 5.0).solve_upper_triangular(&columns);
    assert!(distance(&u.matmul(&solved), &columns) < 1e-14);
    // Shapes known when it runs, and nothing to solve (the diagonal not read).
    let long = DynMatrix::zeros_shaped((Dyn(4), Dyn(1)));
    assert_eq!(
        heap.try_solve_upper_triangular(&long).unwrap_err().to_string(),
        "solve_upper_triangular: shapes [3, 3] and [4, 1] are incompatible (a right-hand side with as many rows as the matrix)"
    );
    let zero = DynMatrix::zeros_shaped((Dyn(3), Dyn(3)));
    assert_eq!(zero.solve_lower_triangular(&DynMatrix::zeros_shaped((Dyn(3), Dyn(0)))).len(), 0);
}

#[test]
fn diagonals() {
    let a: M33 = Matrix::from_fn(|[i, j]| (i * 3 + j) as f64);
    assert_eq!(a.diagonal().to_array(), [0.0, 4.0, 8.0]);
    let z: Matrix<Complex64, 2, 2> = Matrix::from_fn(|[i, j]| Complex64::new(i as f64, j as f64));
    assert_eq!(z.diagonal().to_array(), [Complex64::new(0.0, 0.0), Complex64::new(1.0, 1.0)]);
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message = std::panic::catch_unwind(|| wide.diagonal()).unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*message, "diagonal: a matrix of shape [2, 3] is not square");
    let w = Vector::from_array([0.5, -1.0, 2.0]);
    check_grad(|a: Var<M33>| a.diagonal().dot(&Var::constant(w)), &a, CheckOptions::f64()).unwrap();
    check_pullback(|a: &M33| a.diagonal(), diagonal::vjp(&a).1, &a, CheckOptions::f64()).unwrap();
    check_pushforward(|a: &M33| a.diagonal(), |a_dot| diagonal::jvp(&a, a_dot).1, &a, CheckOptions::f64())
        .unwrap();
    // Its adjoint, the diagonal matrix of a vector.
    assert_eq!(w.diagonal_matrix(), Matrix::from_array([[0.5, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]));
    assert_eq!(w.diagonal_matrix().diagonal(), w);
    check_grad(|v: Var<Vector<f64, 3>>| v.diagonal_matrix().dot(&Var::constant(a)), &w, CheckOptions::f64())
        .unwrap();
    check_pullback(
        |v: &Vector<f64, 3>| v.diagonal_matrix(),
        diagonal_matrix::vjp(&w).1,
        &w,
        CheckOptions::f64(),
    )
    .unwrap();
    check_pushforward(
        |v: &Vector<f64, 3>| v.diagonal_matrix(),
        |v_dot| diagonal_matrix::jvp(&w, v_dot).1,
        &w,
        CheckOptions::f64(),
    )
    .unwrap();
}

/// The diagonal matrix of a vector, for its derivatives in static mode.
#[differentiable]
fn diagonal_matrix(v: &Vector<f64, 3>) -> M33 {
    v.diagonal_matrix()
}

/// The diagonal, for its derivatives in static mode.
#[differentiable]
fn diagonal(a: &M33) -> Vector<f64, 3> {
    a.diagonal()
}

/// L⁻¹b.
#[differentiable]
fn lower_solution(l: &M33, b: &Matrix<f64, 3, 2>) -> Matrix<f64, 3, 2> {
    l.solve_lower_triangular(b)
}

/// U⁻¹b.
#[differentiable]
fn upper_solution(u: &M33, b: &Vector<f64, 3>) -> Vector<f64, 3> {
    u.solve_upper_triangular(b)
}

/// The Gaussian's negative log-likelihood of [`negative_log_likelihood`] the way a
/// GP is written: ½|L⁻¹x|² + Σ ln lᵢᵢ, one factorisation.
#[differentiable(wrt(sigma))]
fn by_triangular_solve<T: RealScalar>(sigma: &Matrix<T, 3, 3>, x: &Vector<T, 3>) -> T {
    let l = sigma.cholesky();
    let z = l.solve_lower_triangular(x);
    z.dot(&z) * T::from_f64(0.5) + l.diagonal().ln().sum()
}

/// The eigenvalues of a symmetric matrix, for their derivatives in static mode.
#[differentiable]
fn eigenvalues(a: &M33) -> Vector<f64, 3> {
    a.symmetric_eigenvalues()
}

/// ⟨W, A⁻¹⟩.
#[differentiable]
fn weighted_inverse(a: &M33, w: &M33) -> f64 {
    a.inverse().dot(w)
}

/// A⁻¹ itself, for its tangents.
#[differentiable]
fn inverse(a: &M33) -> M33 {
    a.inverse()
}

/// det A.
#[differentiable]
fn determinant(a: &M33) -> f64 {
    a.determinant()
}

/// ln|det A|, generic over the scalar for its Hessian.
#[differentiable]
fn log_abs_determinant<T: RealScalar>(a: &Matrix<T, 3, 3>) -> T {
    a.log_abs_determinant()
}

/// The Cholesky factor, for its tangents.
#[differentiable]
fn cholesky(a: &M33) -> M33 {
    a.cholesky()
}

/// A Gaussian's negative log-likelihood up to a constant, ½ ln det Σ + ½ |L⁻¹x|²
/// through the Cholesky factor L of Σ, in Σ, generic over the scalar for its
/// Hessian.
#[differentiable(wrt(sigma))]
fn negative_log_likelihood<T: RealScalar>(sigma: &Matrix<T, 3, 3>, x: &Vector<T, 3>) -> T {
    let l = sigma.cholesky();
    let z = l.solve(x);
    let half = T::from_f64(0.5);
    sigma.log_abs_determinant() * half + z.dot(&z) * half
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn identities(a in matrices(), b in matrices(), s in spd_matrices()) {
        prop_assert!(distance(&a.matmul(&a.inverse()), &M33::identity()) < 1e-14);
        prop_assert!(distance(&a.inverse().matmul(&a), &M33::identity()) < 1e-14);
        let product = a.matmul(&b).determinant();
        prop_assert!((product - a.determinant() * b.determinant()).abs() <= 1e-12 * product.abs());
        prop_assert!((a.log_abs_determinant() - a.determinant().abs().ln()).abs() < 1e-13);
        prop_assert!((a.transpose().determinant() - a.determinant()).abs() <= 1e-12 * a.determinant().abs());
        let l = s.cholesky();
        prop_assert!(distance(&l.matmul_transposed(&l), &s) < 1e-14);
        for i in 0..3 {
            prop_assert!(l[[i, i]] > 0.0);
            for j in i + 1..3 {
                prop_assert_eq!(l[[i, j]], 0.0);
            }
        }
        // ln det Σ = 2 Σ ln lᵢᵢ.
        let from_factor: f64 = (0..3).map(|i| 2.0 * l[[i, i]].ln()).sum();
        prop_assert!((s.log_abs_determinant() - from_factor).abs() < 1e-13);
        // A non-symmetric input is factorised as its symmetric part.
        let skew = Matrix::from_fn(|[i, j]| if i < j { 0.3 } else if i > j { -0.3 } else { 0.0 });
        prop_assert!(distance(&(s + skew).cholesky(), &l) < 1e-14);
    }

    #[test]
    fn tape_gradients_match_finite_differences(a in matrices(), s in spd_matrices(), w in directions()) {
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        check_grad(|a: Var<M33>| a.inverse().dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_grad(|a: Var<M33>| a.determinant(), &a, options).map_err(fail)?;
        check_grad(|a: Var<M33>| a.log_abs_determinant(), &a, options).map_err(fail)?;
        check_grad(|s: Var<M33>| s.cholesky().dot(&Var::constant(w)), &s, options).map_err(fail)?;
        // At a non-symmetric matrix the gradient is still symmetric.
        let skew = Matrix::from_fn(|[i, j]| if i < j { 0.3 } else if i > j { -0.3 } else { 0.0 });
        let gradient = grad(|s: Var<M33>| s.cholesky().dot(&Var::constant(w)), &(s + skew));
        prop_assert!(distance(&gradient, &gradient.transpose()) < 1e-14);
        // Composed: det of an inverse times ln|det| of the same matrix.
        check_grad(|a: Var<M33>| a.inverse().determinant() * a.log_abs_determinant(), &a, options).map_err(fail)?;
    }

    #[test]
    fn static_mode_agrees_with_finite_differences_the_tape_and_duals(
        a in matrices(), s in spd_matrices(), w in directions(), direction in directions(),
    ) {
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        check_pullback(|a: &M33| a.inverse(), inverse::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.inverse(), |a_dot| inverse::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.determinant(), determinant::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.determinant(), |a_dot| determinant::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.log_abs_determinant(), log_abs_determinant::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.log_abs_determinant(), |a_dot| log_abs_determinant::jvp(&a, a_dot).1, &a, options)
            .map_err(fail)?;
        check_pullback(|s: &M33| s.cholesky(), cholesky::vjp(&s).1, &s, options).map_err(fail)?;
        check_pushforward(|s: &M33| s.cholesky(), |s_dot| cholesky::jvp(&s, s_dot).1, &s, options).map_err(fail)?;
        // The gradient against the tape's.
        let (_, (static_gradient, _)) = weighted_inverse::value_and_grad(&a, &w);
        let tape_gradient = grad(|a: Var<M33>| a.inverse().dot(&Var::constant(w)), &a);
        prop_assert!(distance(&static_gradient, &tape_gradient) <= 1e-13);
        // Tangents against forward mode on duals, which runs the factorisations on them.
        let on_duals = |f: fn(&Matrix<Dual<f64>, 3, 3>) -> Matrix<Dual<f64>, 3, 3>, at: &M33| {
            jvp(|a: Matrix<Dual<f64>, 3, 3>| f(&a), at, &direction).1
        };
        prop_assert!(distance(&inverse::jvp(&a, &direction).1, &on_duals(|a| a.inverse(), &a)) <= 1e-12);
        prop_assert!(distance(&cholesky::jvp(&s, &direction).1, &on_duals(|s| s.cholesky(), &s)) <= 1e-12);
        let (_, det_tangent) = determinant::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.determinant(), &a, &direction);
        prop_assert!((det_tangent - dual_tangent).abs() <= 1e-12 * dual_tangent.abs().max(1.0));
    }

    #[test]
    fn triangular_solve_derivatives(
        a in matrices(), garbage in -3.0..3.0f64, bb in prop::array::uniform6(-2.0..2.0f64), direction in directions(),
    ) {
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        // Triangles of well-conditioned matrices with 4 more on the diagonal (3 to 9).
        let a = Matrix::from_fn(|[i, j]| a[[i, j]] + if i == j { 4.0 } else { 0.0 });
        let (lower, upper) = (with_garbage(&triangular(&a, Triangle::Lower), Triangle::Lower, garbage), with_garbage(&triangular(&a, Triangle::Upper), Triangle::Upper, garbage));
        let b: Matrix<f64, 3, 2> = Matrix::from_fn(|[i, j]| bb[i * 2 + j]);
        let v = Vector::from_fn(|[i]| bb[i]);
        check_grad(|(l, b): (Var<M33>, Var<Matrix<f64, 3, 2>>)| { let x = l.solve_lower_triangular(&b); x.dot(&x) }, &(lower, b), options).map_err(fail)?;
        check_grad(|(u, v): (Var<M33>, Var<Vector<f64, 3>>)| { let x = u.solve_upper_triangular(&v); x.dot(&x) }, &(upper, v), options).map_err(fail)?;
        check_pullback(|(l, b): &(M33, Matrix<f64, 3, 2>)| l.solve_lower_triangular(b), lower_solution::vjp(&lower, &b).1, &(lower, b), options).map_err(fail)?;
        check_pushforward(|(l, b): &(M33, Matrix<f64, 3, 2>)| l.solve_lower_triangular(b), |(l_dot, b_dot)| lower_solution::jvp(&lower, &b, l_dot, b_dot).1, &(lower, b), options).map_err(fail)?;
        check_pullback(|(u, v): &(M33, Vector<f64, 3>)| u.solve_upper_triangular(v), upper_solution::vjp(&upper, &v).1, &(upper, v), options).map_err(fail)?;
        check_pushforward(|(u, v): &(M33, Vector<f64, 3>)| u.solve_upper_triangular(v), |(u_dot, v_dot)| upper_solution::jvp(&upper, &v, u_dot, v_dot).1, &(upper, v), options).map_err(fail)?;
        // The tangent against forward mode on duals, which runs the substitution on them.
        let (_, tangent) = upper_solution::jvp(&upper, &v, &direction, &v);
        let (_, dual_tangent) = jvp(|(u, v): (Matrix<Dual<f64>, 3, 3>, Vector<Dual<f64>, 3>)| u.solve_upper_triangular(&v), &(upper, v), &(direction, v));
        prop_assert!(distance(&tangent, &dual_tangent) <= 1e-12);
    }

    #[test]
    fn a_gaussian_likelihood_two_ways(s in spd_matrices(), x in prop::array::uniform3(-2.0..2.0f64), direction in directions()) {
        let x = Vector::from_array(x);
        let (value, gradient) = by_triangular_solve::value_and_grad(&s, &x);
        let (expected, expected_gradient) = negative_log_likelihood::value_and_grad(&s, &x);
        prop_assert!((value - expected).abs() <= 1e-13 * expected.abs().max(1.0));
        prop_assert!(distance(&gradient, &expected_gradient) <= 1e-12);
        let tape = grad(|s: Var<M33>| {
            let l = s.cholesky();
            let z = l.solve_lower_triangular(&Var::constant(x));
            z.dot(&z) * 0.5 + l.diagonal().ln().sum()
        }, &s);
        prop_assert!(distance(&tape, &expected_gradient) <= 1e-12);
        let symmetric = direction + direction.transpose();
        let hv: M33 = by_triangular_solve::hvp(&s, &x, &symmetric);
        let expected_hv: M33 = negative_log_likelihood::hvp(&s, &x, &symmetric);
        prop_assert!(distance(&hv, &expected_hv) <= 1e-11);
    }

    #[test]
    fn symmetric_eigenvalue_identities_and_derivatives(
        entries in prop::array::uniform9(-1.0..1.0f64), order in 0..6usize, w in prop::array::uniform3(-1.0..1.0f64),
        direction in directions(),
    ) {
        let a = spread_eigenvalues(entries);
        let values = a.symmetric_eigenvalues();
        // Σλ = trace, Πλ = det, ascending, and the same for P·A·Pᵀ (P a permutation).
        let trace: f64 = (0..3).map(|i| a[[i, i]]).sum();
        prop_assert!((values.sum() - trace).abs() < 1e-13);
        let product: f64 = values.as_slice().iter().product();
        prop_assert!((product - a.determinant()).abs() <= 1e-12 * product.abs());
        prop_assert!(values[[0]] <= values[[1]] && values[[1]] <= values[[2]]);
        const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let permuted: M33 = Matrix::from_fn(|[i, j]| a[[ORDERS[order][i], ORDERS[order][j]]]);
        prop_assert!(distance(&permuted.symmetric_eigenvalues(), &values) < 1e-13);
        // Derivatives: the tape, static mode's pullback and tangent against finite
        // differences; the tangent against forward mode on duals (the rotations run on them).
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        let w = Vector::from_array(w);
        check_grad(|a: Var<M33>| a.symmetric_eigenvalues().dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.symmetric_eigenvalues(), eigenvalues::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.symmetric_eigenvalues(), |a_dot| eigenvalues::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let (_, tangent) = eigenvalues::jvp(&a, &direction);
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigenvalues(), &a, &direction);
        prop_assert!(distance(&tangent, &dual_tangent) <= 1e-11, "{tangent:?} against {dual_tangent:?}");
    }

    #[test]
    fn second_derivatives(a in matrices(), s in spd_matrices(), x in prop::array::uniform3(-2.0..2.0f64), direction in directions()) {
        // H·V of ln|det A| is −A⁻ᵀVᵀA⁻ᵀ, in closed form.
        let inverse_transposed = a.inverse().transpose();
        let expected = -inverse_transposed.matmul(&direction.transpose()).matmul(&inverse_transposed);
        let hv: M33 = log_abs_determinant::hvp(&a, &direction);
        prop_assert!(distance(&hv, &expected) <= 1e-13, "{hv:?} against {expected:?}");
        // The Gaussian's negative log-likelihood in Σ: H·V against central
        // differences of the gradient (a symmetric direction keeps Σ symmetric).
        let x = Vector::from_array(x);
        let symmetric = direction + direction.transpose();
        let hv: M33 = negative_log_likelihood::hvp(&s, &x, &symmetric);
        let step = 1e-5;
        let at = |t: f64| negative_log_likelihood::grad(&(s + symmetric.scale(t)), &x);
        let difference = (at(step) - at(-step)).scale(0.5 / step);
        prop_assert!(distance(&hv, &difference) <= 1e-6 * difference.as_slice().iter().fold(1.0f64, |m, v| m.max(v.abs())));
    }
}

/// The rotation about the axis (1, 2, 2)/3 by 0.7: an orthogonal Q for matrices
/// Q·diag(d)·Qᵀ with known exponentials Q·diag(eᵈ)·Qᵀ.
fn orthogonal() -> M33 {
    let (axis, angle) = ([1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0], 0.7f64);
    let cross: M33 =
        Matrix::from_array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]]);
    let outer: M33 = Matrix::from_fn(|[i, j]| axis[i] * axis[j]);
    M33::identity().scale(angle.cos()) + cross.scale(angle.sin()) + outer.scale(1.0 - angle.cos())
}

#[test]
fn matrix_exponentials_of_known_matrices() {
    type M22 = Matrix<f64, 2, 2>;
    assert_eq!(M33::zeros().matrix_exp(), M33::identity());
    // Norms from 0.01 to 300: every Padé degree, and scaling and squaring.
    for scale in [0.01, 0.1, 0.5, 1.5, 4.0, 12.0, 300.0] {
        // Each squaring doubles the relative error the approximant leaves.
        let tolerance = 2e-15 * scale.max(1.0);
        // A diagonal matrix, and one similar to it by a rotation.
        let d = [-scale, 0.3 * scale, 0.7 * scale];
        let exponential = M33::from_fn(|[i, j]| if i == j { d[i].exp() } else { 0.0 });
        let diagonal = M33::from_fn(|[i, j]| if i == j { d[i] } else { 0.0 });
        let error = relative_distance(&diagonal.matrix_exp(), &exponential);
        assert!(error < tolerance, "{scale}: {error}");
        let q = orthogonal();
        let similar = q.matmul(&diagonal).matmul_transposed(&q);
        let expected = q.matmul(&exponential).matmul_transposed(&q);
        let error = relative_distance(&similar.matrix_exp(), &expected);
        assert!(error < tolerance, "{scale}: {error}");
        // A rotation and growth: e^(σI + ωJ) = e^σ·R(ω).
        let (sigma, omega) = (0.1 * scale, scale);
        let generator: M22 = Matrix::from_array([[sigma, -omega], [omega, sigma]]);
        let growth = sigma.exp();
        let expected: M22 = Matrix::from_array([
            [growth * omega.cos(), -growth * omega.sin()],
            [growth * omega.sin(), growth * omega.cos()],
        ]);
        let error = relative_distance(&generator.matrix_exp(), &expected);
        assert!(error < tolerance, "{scale}: {error}");
        // Triangular, not normal: [[a, b], [0, c]] ↦ [[eᵃ, b(eᵃ − eᶜ)/(a − c)], [0, eᶜ]].
        let (a, b, c) = (0.5 * scale, 2.0 * scale, -0.25 * scale);
        let triangular: M22 = Matrix::from_array([[a, b], [0.0, c]]);
        let expected: M22 =
            Matrix::from_array([[a.exp(), b * (a.exp() - c.exp()) / (a - c)], [0.0, c.exp()]]);
        let error = relative_distance(&triangular.matrix_exp(), &expected);
        assert!(error < tolerance, "{scale}: {error}");
    }
    // Nilpotent: e^N = I + N.
    let nilpotent: M33 = Matrix::from_array([[0.0, 3.0, -2.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]]);
    let expected = M33::identity() + nilpotent + nilpotent.matmul(&nilpotent).scale(0.5);
    assert!(distance(&nilpotent.matrix_exp(), &expected) < 1e-14);
    // NaN or infinite entries: NaN everywhere.
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for fill in [0.5, 1e-3] {
            let with_bad: M33 = Matrix::from_fn(|[i, j]| if i == 2 && j == 0 { bad } else { fill });
            assert!(with_bad.matrix_exp().as_slice().iter().all(|x| x.is_nan()), "{bad} among {fill}");
        }
    }
    // Finite entries whose column sums overflow: NaN too (documented).
    assert!(M33::full(-1e308).matrix_exp().as_slice().iter().all(|x| x.is_nan()));
    // f32, the heap, the empty matrix, and a matrix that is not square.
    let single: Matrix<f32, 2, 2> = Matrix::from_array([[0.0, -1.0], [1.0, 0.0]]);
    let rotation = single.matrix_exp().to_array();
    assert!((rotation[0][0] - 1f32.cos()).abs() < 1e-6 && (rotation[1][0] - 1f32.sin()).abs() < 1e-6);
    let heap = DynMatrix::from_shape_fn((Dyn(5), Dyn(5)), |[i, j]| (i as f64 - 2.0 * j as f64) * 0.4);
    let product = heap.matrix_exp().matmul(&heap.scale(-1.0).matrix_exp());
    assert!(distance(&product, &DynMatrix::identity_sized(Dyn(5))) < 1e-11);
    assert_eq!(DynMatrix::zeros_shaped((Dyn(0), Dyn(0))).matrix_exp().len(), 0);
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message = std::panic::catch_unwind(|| wide.matrix_exp()).unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*message, "matrix_exp: a matrix of shape [2, 3] is not square");
    let message = std::panic::catch_unwind(|| matrix_exp_pullback(&wide, &wide))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert_eq!(*message, "matrix_exp_pullback: a matrix of shape [2, 3] is not square");
}

#[test]
fn matrix_exponential_derivatives_against_closed_forms() {
    // For a diagonal A, L(A, E)ᵢⱼ = Eᵢⱼ·(e^aᵢ − e^aⱼ)/(aᵢ − aⱼ) (eᵃⁱ where aᵢ = aⱼ).
    for scale in [0.05, 1.0, 30.0] {
        let d = [-0.6 * scale, 0.2 * scale, scale];
        let a = M33::from_fn(|[i, j]| if i == j { d[i] } else { 0.0 });
        let e: M33 = Matrix::from_fn(|[i, j]| 1.0 + i as f64 - 0.5 * j as f64);
        let divided = |i: usize, j: usize| {
            if i == j { d[i].exp() } else { (d[i].exp() - d[j].exp()) / (d[i] - d[j]) }
        };
        let expected = M33::from_fn(|[i, j]| e[[i, j]] * divided(i, j));
        let error = relative_distance(&matrix_exp_push(&a, &e), &expected);
        assert!(error < 1e-13, "{scale}: {error}");
        // A diagonal matrix is its own transpose: the cotangent is the same map.
        let error = relative_distance(&matrix_exp_pullback(&a, &e), &expected);
        assert!(error < 1e-13, "{scale}: {error}");
    }
    // d/dt e^(tA) = A·e^(tA): the tangent in the direction A itself.
    let a: M33 = Matrix::from_array([[0.3, -1.2, 0.5], [2.0, -0.4, 0.1], [-0.7, 0.9, 0.2]]);
    for t in [0.01, 1.0, 7.0] {
        let at = a.scale(t);
        let expected = a.matmul(&at.matrix_exp());
        assert!(relative_distance(&matrix_exp_push(&at, &a), &expected) < 1e-13, "{t}");
    }
}

#[differentiable]
fn exponential(a: &M33) -> M33 {
    a.matrix_exp()
}

/// ‖e^A − I‖² weighted, with a second derivative through the algorithm (generic for
/// `hvp`).
#[differentiable]
fn exponential_energy<T: RealScalar>(a: &Matrix<T, 3, 3>) -> T {
    let y = a.matrix_exp();
    y.dot(&y)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn matrix_exponential_identities_and_derivatives(
        entries in prop::array::uniform9(-1.0..1.0f64),
        scale in prop::sample::select(vec![0.004, 0.08, 0.3, 0.7, 1.5, 6.0]),
        w in directions(),
        direction in directions(),
    ) {
        // Norms from 0.004 to 18: every degree, and up to three squarings.
        let a = M33::from_fn(|[i, j]| entries[i * 3 + j] * scale);
        let y = a.matrix_exp();
        // e^(2A) = (e^A)², A·e^A = e^A·A.
        let error = relative_distance(&a.scale(2.0).matrix_exp(), &y.matmul(&y));
        prop_assert!(error < 1e-13, "{error}");
        let error = relative_distance(&a.matmul(&y), &y.matmul(&a));
        prop_assert!(error < 1e-13, "{error}");
        // The tape, static mode's pullback and tangent against finite differences. At
        // norm 18, e^A's entries reach 10⁴ and more, and a difference's rounding error
        // grows with them (≈ 3e-6 at ε = 1e-6 for entries near 3000): a longer step, and
        // an absolute tolerance of 10⁻⁹ of the largest entry (10⁻⁶ below 1000).
        let largest = y.as_slice().iter().fold(1000.0f64, |m, x| m.max(x.abs()));
        let options = CheckOptions { step: 1e-5, abs_tol: 1e-9 * largest, ..CheckOptions::f64() };
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        check_grad(|a: Var<M33>| a.matrix_exp().dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.matrix_exp(), exponential::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.matrix_exp(), |a_dot| exponential::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity ⟨L(A, Ȧ), W⟩ = ⟨Ȧ, L(Aᵀ, W)⟩, to rounding.
        let (tangent, cotangent) = (matrix_exp_push(&a, &direction), matrix_exp_pullback(&a, &w));
        let (lhs, rhs) = (tangent.dot(&w), direction.dot(&cotangent));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * (tangent.dot(&tangent) * w.dot(&w)).sqrt(), "{lhs} against {rhs}");
        // The tangent against forward mode on duals, which runs the algorithm on them,
        // and the static gradient against the tape's.
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.matrix_exp(), &a, &direction);
        prop_assert!(relative_distance(&exponential::jvp(&a, &direction).1, &dual_tangent) < 1e-13);
        let (_, static_gradient) = exponential_energy::value_and_grad(&a);
        let tape_gradient = grad(|a: Var<M33>| { let y = a.matrix_exp(); y.dot(&y) }, &a);
        prop_assert!(relative_distance(&static_gradient, &tape_gradient) < 1e-13);
        // Its Hessian-vector product against central differences of the gradient.
        let hv: M33 = exponential_energy::hvp(&a, &direction);
        let step = 1e-5;
        let (_, ahead) = exponential_energy::value_and_grad(&(a + direction.scale(step)));
        let (_, behind) = exponential_energy::value_and_grad(&(a - direction.scale(step)));
        let difference = (ahead - behind).scale(0.5 / step);
        prop_assert!(relative_distance(&hv, &difference) < 1e-6, "{hv:?} against {difference:?}");
    }
}

#[differentiable]
fn eigenvectors(a: &M33) -> M33 {
    a.symmetric_eigenvectors()
}

/// ⟨V, W⟩ for the eigenvectors V, generic for second order.
#[differentiable(wrt(a))]
fn weighted_eigenvectors<T: RealScalar>(a: &Matrix<T, 3, 3>, w: &Matrix<T, 3, 3>) -> T {
    a.symmetric_eigenvectors().dot(w)
}

#[test]
fn symmetric_eigenvectors_of_known_matrices() {
    // A diagonal matrix: the unit vectors, in the order of ascending values.
    let diagonal: M33 = Matrix::from_array([[3.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]);
    let expected: M33 = Matrix::from_array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    assert_eq!(diagonal.symmetric_eigenvectors(), expected);
    // The second difference matrix: vₖ ∝ (sin kπ/4, sin 2kπ/4, sin 3kπ/4), signs fixed
    // by the largest entry; the skew part of a non-symmetric matrix is not read. The
    // middle vector (√½, 0, −√½) has two entries of equal magnitude, where rounding
    // decides the sign: it is compared up to sign.
    let second_difference: M33 = Matrix::from_array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]);
    let half = 0.5f64.sqrt();
    let expected: M33 = Matrix::from_array([[0.5, half, -0.5], [half, 0.0, half], [0.5, -half, -0.5]]);
    let up_to_middle_sign = |vectors: M33| {
        let flipped = M33::from_fn(|[i, j]| if j == 1 { -vectors[[i, j]] } else { vectors[[i, j]] });
        let error = distance(&vectors, &expected).min(distance(&flipped, &expected));
        assert!(error < 1e-15, "{vectors:?}");
    };
    up_to_middle_sign(second_difference.symmetric_eigenvectors());
    up_to_middle_sign(
        (second_difference + Matrix::from_fn(|[i, j]| (i as f64 - j as f64) * 0.7)).symmetric_eigenvectors(),
    );
    // NaN or infinite entries: NaN everywhere; a matrix that is not square.
    for bad in [f64::NAN, f64::INFINITY] {
        let with_bad: M33 = Matrix::from_fn(|[i, j]| if i == 0 && j == 2 { bad } else { 1.0 });
        assert!(with_bad.symmetric_eigenvectors().as_slice().iter().all(|x| x.is_nan()));
    }
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message =
        std::panic::catch_unwind(|| wide.symmetric_eigenvectors()).unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*message, "symmetric_eigenvectors: a matrix of shape [2, 3] is not square");
    // Diagonal and block-diagonal matrices, where Jacobi rotates nothing (or not
    // every pair): the tangent on duals and the Hessian-vector product of ⟨V, W⟩
    // against the closed form and central differences.
    let block: M33 = Matrix::from_array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 4.0]]);
    let direction: M33 = Matrix::from_array([[0.3, -0.5, 0.2], [0.1, -0.4, 0.7], [0.6, 0.2, 0.25]]);
    let w: M33 = Matrix::from_fn(|[i, j]| 0.5 + i as f64 - 0.3 * j as f64);
    for at in [diagonal, block] {
        let (_, tangent) = eigenvectors::jvp(&at, &direction);
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigenvectors(), &at, &direction);
        assert!(distance(&tangent, &dual_tangent) < 1e-14, "{tangent:?} against {dual_tangent:?}");
        let symmetric = direction + direction.transpose();
        let hv: M33 = weighted_eigenvectors::hvp(&at, &w, &symmetric);
        let step = 1e-5;
        let (_, ahead) = weighted_eigenvectors::value_and_grad(&(at + symmetric.scale(step)), &w);
        let (_, behind) = weighted_eigenvectors::value_and_grad(&(at - symmetric.scale(step)), &w);
        assert!(distance(&hv, &(ahead - behind).scale(0.5 / step)) < 1e-7, "{hv:?}");
    }
    // A repeated eigenvalue that the cotangent does not involve: the gradient of the
    // separated eigenvector's entries is finite.
    let repeated: M33 = Matrix::from_array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]]);
    let only_last = M33::from_fn(|[i, j]| if j == 2 { 1.0 + i as f64 } else { 0.0 });
    let (_, gradient) = weighted_eigenvectors::value_and_grad(&repeated, &only_last);
    assert!(gradient.as_slice().iter().all(|x| x.is_finite()), "{gradient:?}");
    // On duals, a tangent that couples the repeated pair leaves the values exact and
    // that coupling 0 (there is no derivative); the separated vector's tangent is right.
    let (values, tangent) =
        jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigenvectors(), &repeated, &direction);
    assert_eq!(values, repeated.symmetric_eigenvectors());
    assert!(tangent.as_slice().iter().all(|x| x.is_finite()), "{tangent:?}");
    let separated = |m: &M33| Vector::<f64, 3>::from_fn(|[i]| m[[i, 2]]);
    let (_, pushed) = eigenvectors::jvp(&repeated, &direction);
    assert!(distance(&separated(&tangent), &separated(&pushed)) < 1e-15, "{tangent:?} against {pushed:?}");
    // On the heap: A·V = V·diag(λ) and VᵀV = I.
    let heap = DynMatrix::from_shape_fn((Dyn(6), Dyn(6)), |[i, j]| {
        1.0 / (i + j + 1) as f64 + if i == j { i as f64 } else { 0.0 }
    });
    let (values, vectors) = (heap.symmetric_eigenvalues(), heap.symmetric_eigenvectors());
    assert!(distance(&heap.matmul(&vectors), &vectors.mul_rows(&values)) < 1e-13);
    assert!(distance(&vectors.transposed_matmul(&vectors), &DynMatrix::identity_sized(Dyn(6))) < 1e-14);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn symmetric_eigenvector_identities_and_derivatives(
        entries in prop::array::uniform9(-1.0..1.0f64), w in directions(), direction in directions(),
    ) {
        let a = spread_eigenvalues(entries);
        let (values, vectors) = (a.symmetric_eigenvalues(), a.symmetric_eigenvectors());
        // A·V = V·diag(λ), VᵀV = I, each column's largest entry positive.
        prop_assert!(distance(&a.matmul(&vectors), &vectors.mul_rows(&values)) < 1e-13);
        prop_assert!(distance(&vectors.transposed_matmul(&vectors), &M33::identity()) < 1e-14);
        for j in 0..3 {
            let largest = (0..3).map(|i| vectors[[i, j]]).fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            prop_assert!(largest > 0.0);
        }
        // The tape, static mode's pullback and tangent against finite differences.
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        check_grad(|a: Var<M33>| a.symmetric_eigenvectors().dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.symmetric_eigenvectors(), eigenvectors::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.symmetric_eigenvectors(), |a_dot| eigenvectors::jvp(&a, a_dot).1, &a, options)
            .map_err(fail)?;
        // The tangent keeps VᵀV = I to first order (VᵀV̇ antisymmetric), and agrees
        // with forward mode on duals, which runs the rotations on them.
        let (_, tangent) = eigenvectors::jvp(&a, &direction);
        let product = vectors.transposed_matmul(&tangent);
        prop_assert!(distance(&product, &-product.transpose()) < 1e-12);
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigenvectors(), &a, &direction);
        prop_assert!(distance(&tangent, &dual_tangent) < 1e-10, "{tangent:?} against {dual_tangent:?}");
        // The static gradient against the tape's, and its Hessian-vector product
        // against central differences of the gradient.
        let (_, static_gradient) = weighted_eigenvectors::value_and_grad(&a, &w);
        let tape_gradient = grad(|a: Var<M33>| a.symmetric_eigenvectors().dot(&Var::constant(w)), &a);
        prop_assert!(distance(&static_gradient, &tape_gradient) < 1e-13);
        let symmetric = direction + direction.transpose();
        let hv: M33 = weighted_eigenvectors::hvp(&a, &w, &symmetric);
        let step = 1e-5;
        let (_, ahead) = weighted_eigenvectors::value_and_grad(&(a + symmetric.scale(step)), &w);
        let (_, behind) = weighted_eigenvectors::value_and_grad(&(a - symmetric.scale(step)), &w);
        let difference = (ahead - behind).scale(0.5 / step);
        prop_assert!(distance(&hv, &difference) < 1e-6, "{hv:?} against {difference:?}");
    }
}

#[differentiable]
fn eigen(a: &M33) -> (Vector<f64, 3>, M33) {
    a.symmetric_eigen()
}

/// ⟨λ, s⟩ + ⟨V, W⟩ from one decomposition, generic for second order.
#[differentiable(wrt(a))]
fn weighted_eigen<T: RealScalar>(a: &Matrix<T, 3, 3>, s: &Vector<T, 3>, w: &Matrix<T, 3, 3>) -> T {
    let (values, vectors) = a.symmetric_eigen();
    values.dot(s) + vectors.dot(w)
}

#[test]
fn symmetric_eigen_is_both_at_once() {
    let a = spread_eigenvalues([0.3, -0.2, 0.5, 0.1, 0.9, -0.7, 0.4, 0.0, -0.3]);
    let (values, vectors) = a.symmetric_eigen();
    assert_eq!((values, vectors), (a.symmetric_eigenvalues(), a.symmetric_eigenvectors()));
    let heap = DynMatrix::from_shape_fn((Dyn(5), Dyn(5)), |[i, j]| 1.0 / (i + j + 1) as f64);
    let (values, vectors) = heap.symmetric_eigen();
    assert!(distance(&heap.matmul(&vectors), &vectors.mul_rows(&values)) < 1e-15);
    let wide = DynMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let message =
        std::panic::catch_unwind(|| wide.symmetric_eigen()).unwrap_err().downcast::<String>().unwrap();
    assert_eq!(*message, "symmetric_eigen: a matrix of shape [2, 3] is not square");
    let short = Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(4),));
    let square = DynMatrix::identity_sized(Dyn(5));
    let message = std::panic::catch_unwind(|| symmetric_eigen_push(&short, &square, &square)).unwrap_err();
    assert!(message.downcast_ref::<String>().unwrap().starts_with("symmetric_eigen_push: "));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn symmetric_eigen_derivatives(
        entries in prop::array::uniform9(-1.0..1.0f64), s in prop::array::uniform3(-1.0..1.0f64), w in directions(), direction in directions(),
    ) {
        let a = spread_eigenvalues(entries);
        let s = Vector::from_array(s);
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        // Through both outputs and through each alone (the other's cotangent zero).
        check_grad(|a: Var<M33>| { let (values, vectors) = a.symmetric_eigen(); values.dot(&Var::constant(s)) + vectors.dot(&Var::constant(w)) }, &a, options).map_err(fail)?;
        check_grad(|a: Var<M33>| a.symmetric_eigen().1.dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_pullback(|a: &M33| a.symmetric_eigen(), eigen::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &M33| a.symmetric_eigen(), |a_dot| eigen::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity, and the tangents against duals.
        let (values, vectors) = a.symmetric_eigen();
        let (values_dot, vectors_dot) = symmetric_eigen_push(&values, &vectors, &direction);
        let a_bar = symmetric_eigen_pullback(&values, &vectors, &s, &w);
        let (lhs, rhs) = (values_dot.dot(&s) + vectors_dot.dot(&w), direction.dot(&a_bar));
        prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, (values_dual, vectors_dual)) = jvp(|a: Matrix<Dual<f64>, 3, 3>| a.symmetric_eigen(), &a, &direction);
        prop_assert!(distance(&values_dot, &values_dual) < 1e-12 && distance(&vectors_dot, &vectors_dual) < 1e-10);
        // Static mode against the tape, and H·Ȧ against differences of the gradient.
        let (_, static_gradient) = weighted_eigen::value_and_grad(&a, &s, &w);
        let tape_gradient = grad(|a: Var<M33>| { let (values, vectors) = a.symmetric_eigen(); values.dot(&Var::constant(s)) + vectors.dot(&Var::constant(w)) }, &a);
        prop_assert!(distance(&static_gradient, &tape_gradient) < 1e-13);
        let symmetric = direction + direction.transpose();
        let hv: M33 = weighted_eigen::hvp(&a, &s, &w, &symmetric);
        let step = 1e-5;
        let gradient_at = |t: f64| weighted_eigen::value_and_grad(&(a + symmetric.scale(t)), &s, &w).1;
        let difference = (gradient_at(step) - gradient_at(-step)).scale(0.5 / step);
        prop_assert!(distance(&hv, &difference) < 1e-6, "{hv:?} against {difference:?}");
    }
}

#[test]
fn symmetric_eigen_second_derivatives_on_nested_duals() {
    // diag(1, 2) moved by t·[[0, 1], [1, 0]]: λ = (3 ∓ √(1 + 4t²))/2, λ″ = ∓2 at t = 0,
    // where no rotation runs on the values.
    let lifted: Matrix<Dual<Dual<f64>>, 2, 2> = Matrix::from_fn(|[i, j]| {
        let (value, tangent) = if i == j { ((i + 1) as f64, 0.0) } else { (0.0, 1.0) };
        Dual::new(Dual::new(value, [tangent]), [Dual::new(tangent, [0.0])])
    });
    let (values, _) = lifted.symmetric_eigen();
    let second = |k: usize| values[[k]].tangent()[0].tangent()[0];
    assert!((second(0) + 2.0).abs() < 1e-14 && (second(1) - 2.0).abs() < 1e-14, "{values:?}");
    assert_eq!(lifted.symmetric_eigenvalues(), values);
    // vᵀ·H·v of ⟨λ, s⟩ + ⟨V, W⟩, forward over forward against reverse over forward, at
    // a diagonal and at a general matrix.
    let s = Vector::from_array([0.5, -1.0, 2.0]);
    let w: M33 = Matrix::from_fn(|[i, j]| 0.5 + i as f64 - 0.3 * j as f64);
    let v: M33 = Matrix::from_array([[0.3, -0.5, 0.2], [-0.5, -0.4, 0.7], [0.2, 0.7, 0.25]]);
    let lift = |m: &M33| -> Matrix<Dual<Dual<f64>>, 3, 3> {
        Matrix::from_fn(|[i, j]| Dual::new(Dual::new(m[[i, j]], [v[[i, j]]]), [Dual::new(v[[i, j]], [0.0])]))
    };
    let constant = |m: &M33| m.map(|x| Dual::constant(Dual::constant(x)));
    let general = spread_eigenvalues([0.3, -0.2, 0.5, 0.1, 0.9, -0.7, 0.4, 0.0, -0.3]);
    let diagonal: M33 = Matrix::from_fn(|[i, j]| if i == j { [3.0, -1.0, 2.0][i] } else { 0.0 });
    for at in [diagonal, general] {
        let forward =
            weighted_eigen(&lift(&at), &s.map(|x| Dual::constant(Dual::constant(x))), &constant(&w));
        let reverse = v.dot(&weighted_eigen::hvp(&at, &s, &w, &v));
        let second = forward.tangent()[0].tangent()[0];
        assert!((second - reverse).abs() < 1e-10 * reverse.abs().max(1.0), "{second} against {reverse}");
    }
}
