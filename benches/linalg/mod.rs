//! Linear solves beside Gaussian elimination written by hand (partial pivoting on
//! fixed-size arrays, or on a `Vec` for the heap size), the gradient of ½|A⁻¹b|² in
//! static mode beside the hand-written one (one elimination for x, one with Aᵀ for
//! b̄ = A⁻ᵀx, then Ā = −b̄·xᵀ), the Cholesky factor beside the textbook loop on
//! arrays, and the gradient of ln|det A| (A⁻ᵀ) beside one that keeps the LU factors
//! of the value for the triangular solves of A⁻ᵀ.
//!
//! Triangular solves beside forward substitution on arrays, and the eigenvalues of
//! a symmetric matrix beside the same cyclic Jacobi method on arrays and beside
//! nalgebra's (id `nalgebra/inline-6`).
//!
//! Groups `linalg/solve` (ids `{ours,handwritten}/{inline-6,heap-64}`),
//! `linalg/solve_gradient`, `linalg/cholesky`,
//! `linalg/log_abs_determinant_gradient`, `linalg/solve_lower_triangular` and
//! `linalg/symmetric_eigenvalues` (`{ours,handwritten}/inline-6`); throughput
//! counts the matrix's elements.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group};
use fluxion::prelude::*;

use crate::common::{compare, config};

criterion_group! {
    name = benches;
    config = config();
    targets = solve, solve_gradient, cholesky, log_abs_determinant_gradient, triangular_solve, symmetric_eigenvalues
}

/// A diagonally dominant n×n matrix (well conditioned), row by row.
fn dominant(n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5 + if i == j { 4.0 } else { 0.0 }
        })
        .collect()
}

/// x with A·x = b (or Aᵀ·x = b when `transposed`), A row-major n×n: partial pivoting,
/// then back substitution, as `solve` computes it.
fn eliminate<const N: usize>(a: &[[f64; N]; N], b: &[f64; N], transposed: bool) -> [f64; N] {
    let mut m = *a;
    if transposed {
        for i in 0..N {
            for j in 0..N {
                m[i][j] = a[j][i];
            }
        }
    }
    let mut x = *b;
    for k in 0..N {
        let mut p = k;
        for i in k + 1..N {
            if m[i][k].abs() > m[p][k].abs() {
                p = i;
            }
        }
        m.swap(k, p);
        x.swap(k, p);
        let (top, below) = m.split_at_mut(k + 1);
        let pivot_row = &top[k];
        for (offset, row) in below.iter_mut().enumerate() {
            let factor = row[k] / pivot_row[k];
            for (entry, &above) in row[k + 1..].iter_mut().zip(&pivot_row[k + 1..]) {
                *entry -= factor * above;
            }
            x[k + 1 + offset] -= factor * x[k];
        }
    }
    for i in (0..N).rev() {
        let mut total = x[i];
        for j in i + 1..N {
            total -= m[i][j] * x[j];
        }
        x[i] = total / m[i][i];
    }
    x
}

/// [`eliminate`] on a `Vec`: A row-major n×n.
fn eliminate_heap(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let (mut m, mut x) = (a.to_vec(), b.to_vec());
    for k in 0..n {
        let p = (k + 1..n).fold(k, |p, i| if m[i * n + k].abs() > m[p * n + k].abs() { i } else { p });
        for j in 0..n {
            m.swap(k * n + j, p * n + j);
        }
        x.swap(k, p);
        let (upper, lower) = m.split_at_mut((k + 1) * n);
        let pivot_row = &upper[k * n..];
        for (r, row) in lower.chunks_exact_mut(n).enumerate() {
            let factor = row[k] / pivot_row[k];
            for (entry, &above) in row[k + 1..].iter_mut().zip(&pivot_row[k + 1..]) {
                *entry -= factor * above;
            }
            x[k + 1 + r] -= factor * x[k];
        }
    }
    for i in (0..n).rev() {
        let total = (i + 1..n).fold(x[i], |total, j| total - m[i * n + j] * x[j]);
        x[i] = total / m[i * n + i];
    }
    x
}

/// The 6×6 system of the inline benchmarks, as tensors and as arrays.
fn inline_system() -> (Matrix<f64, 6, 6>, Vector<f64, 6>, [[f64; 6]; 6], [f64; 6]) {
    let entries = dominant(6);
    let a: Matrix<f64, 6, 6> = Matrix::from_fn(|[i, j]| entries[i * 6 + j]);
    let b: Vector<f64, 6> = Vector::from_fn(|[i]| i as f64 - 2.5);
    let (arrays, rhs) = (a.to_array(), b.to_array());
    (a, b, arrays, rhs)
}

/// `linalg/solve`: one right-hand side.
fn solve(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/solve");
    let (a, b, arrays, rhs) = inline_system();
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).solve(black_box(&b)),
        || eliminate(black_box(&arrays), black_box(&rhs), false),
    );
    let n = 64;
    let entries = dominant(n);
    let a = Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| entries[i * n + j]);
    let b = Tensor::<f64, (Dyn,), Heap>::from_shape_fn((Dyn(n),), |[i]| i as f64 - 30.0);
    let rhs = b.to_vec();
    compare(
        &mut group,
        "heap-64",
        n * n,
        || black_box(&a).solve(black_box(&b)),
        || eliminate_heap(black_box(&entries), black_box(&rhs), n),
    );
    group.finish();
}

/// ½|A⁻¹b|², differentiated in A and b.
#[differentiable]
fn energy(a: &Matrix<f64, 6, 6>, b: &Vector<f64, 6>) -> f64 {
    let x = a.solve(b);
    x.dot(&x) * 0.5
}

/// The gradient of ½|A⁻¹b|² by hand: x, b̄ = A⁻ᵀx, Ā = −b̄·xᵀ.
fn energy_gradient(a: &[[f64; 6]; 6], b: &[f64; 6]) -> (f64, [[f64; 6]; 6], [f64; 6]) {
    let x = eliminate(a, b, false);
    let b_bar = eliminate(a, &x, true);
    let mut a_bar = [[0.0; 6]; 6];
    for (row, &bi) in a_bar.iter_mut().zip(&b_bar) {
        for (entry, &xj) in row.iter_mut().zip(&x) {
            *entry = -bi * xj;
        }
    }
    (x.iter().map(|v| v * v).sum::<f64>() * 0.5, a_bar, b_bar)
}

/// `linalg/solve_gradient`: static mode beside the hand-written gradient.
fn solve_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/solve_gradient");
    let (a, b, arrays, rhs) = inline_system();
    compare(
        &mut group,
        "inline-6",
        36,
        || energy::value_and_grad(black_box(&a), black_box(&b)),
        || energy_gradient(black_box(&arrays), black_box(&rhs)),
    );
    group.finish();
}

/// Asserts that ours and the hand-written computation agree to rounding.
fn assert_agree(ours: &[f64], handwritten: &[f64]) {
    for (a, b) in ours.iter().zip(handwritten) {
        assert!((a - b).abs() <= 1e-13 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// The lower-triangular L with L·Lᵀ = A for a symmetric positive definite A,
/// column by column (the Cholesky–Crout order) from its lower triangle.
fn cholesky_by_hand(a: &[[f64; 6]; 6]) -> [[f64; 6]; 6] {
    let mut l = [[0.0; 6]; 6];
    for j in 0..6 {
        let pivot = (0..j).fold(a[j][j], |total, k| total - l[j][k] * l[j][k]).sqrt();
        l[j][j] = pivot;
        for i in j + 1..6 {
            l[i][j] = (0..j).fold(a[i][j], |total, k| total - l[i][k] * l[j][k]) / pivot;
        }
    }
    l
}

/// `linalg/cholesky`: the factor of the symmetric part of the inline system's
/// matrix (positive definite, being diagonally dominant).
fn cholesky(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/cholesky");
    let (a, ..) = inline_system();
    let symmetric = (a + a.transpose()).scale(0.5);
    let arrays = symmetric.to_array();
    assert_agree(symmetric.cholesky().as_slice(), cholesky_by_hand(&arrays).as_flattened());
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&symmetric).cholesky(),
        || cholesky_by_hand(black_box(&arrays)),
    );
    group.finish();
}

/// ln|det A|, differentiated.
#[differentiable]
fn log_abs_determinant(a: &Matrix<f64, 6, 6>) -> f64 {
    a.log_abs_determinant()
}

/// ln|det A| and its gradient A⁻ᵀ by hand: P·A = L·U once, then each row of A⁻ᵀ
/// by two triangular solves with the same factors.
fn log_abs_determinant_by_hand(a: &[[f64; 6]; 6]) -> (f64, [[f64; 6]; 6]) {
    let (mut lu, mut rows) = (*a, [0, 1, 2, 3, 4, 5]);
    for k in 0..6 {
        let p = (k + 1..6).fold(k, |p, i| if lu[i][k].abs() > lu[p][k].abs() { i } else { p });
        lu.swap(k, p);
        rows.swap(k, p);
        let (top, below) = lu.split_at_mut(k + 1);
        for row in below {
            let factor = row[k] / top[k][k];
            row[k] = factor;
            for (entry, &above) in row[k + 1..].iter_mut().zip(&top[k][k + 1..]) {
                *entry -= factor * above;
            }
        }
    }
    let value = (0..6).map(|i| lu[i][i].abs().ln()).sum();
    // Row r of A⁻ᵀ is column r of A⁻¹, x with L·U·x = P·eᵣ: forward with L's unit
    // diagonal, then back with U.
    let mut gradient = [[0.0; 6]; 6];
    for (r, x) in gradient.iter_mut().enumerate() {
        for i in 0..6 {
            let permuted = if rows[i] == r { 1.0 } else { 0.0 };
            x[i] = (0..i).fold(permuted, |total, k| total - lu[i][k] * x[k]);
        }
        for i in (0..6).rev() {
            x[i] = (i + 1..6).fold(x[i], |total, k| total - lu[i][k] * x[k]) / lu[i][i];
        }
    }
    (value, gradient)
}

/// `linalg/log_abs_determinant_gradient`: static mode beside the hand-written
/// gradient.
fn log_abs_determinant_gradient(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/log_abs_determinant_gradient");
    let (a, _, arrays, _) = inline_system();
    let ((value, gradient), (hand_value, hand_gradient)) =
        (log_abs_determinant::value_and_grad(&a), log_abs_determinant_by_hand(&arrays));
    assert_agree(&[value], &[hand_value]);
    assert_agree(gradient.as_slice(), hand_gradient.as_flattened());
    compare(
        &mut group,
        "inline-6",
        36,
        || log_abs_determinant::value_and_grad(black_box(&a)),
        || log_abs_determinant_by_hand(black_box(&arrays)),
    );
    group.finish();
}

/// x with L·x = b, L the lower triangle of `l`, by forward substitution.
fn forward_substitution(l: &[[f64; 6]; 6], b: &[f64; 6]) -> [f64; 6] {
    let mut x = [0.0; 6];
    for i in 0..6 {
        x[i] = (0..i).fold(b[i], |total, k| total - l[i][k] * x[k]) / l[i][i];
    }
    x
}

/// `linalg/solve_lower_triangular`: the inline system's lower triangle.
fn triangular_solve(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/solve_lower_triangular");
    let (a, b, arrays, rhs) = inline_system();
    assert_agree(a.solve_lower_triangular(&b).as_slice(), &forward_substitution(&arrays, &rhs));
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).solve_lower_triangular(black_box(&b)),
        || forward_substitution(black_box(&arrays), black_box(&rhs)),
    );
    group.finish();
}

/// The eigenvalues of a symmetric A, ascending, by cyclic Jacobi sweeps until the
/// off-diagonal part is below rounding, as `symmetric_eigenvalues` stops.
fn jacobi_eigenvalues(a: &[[f64; 6]; 6]) -> [f64; 6] {
    let mut s = *a;
    let tolerance = f64::EPSILON * f64::EPSILON * s.as_flattened().iter().map(|x| x * x).sum::<f64>();
    for _ in 0..64 {
        let off: f64 = (0..6).map(|p| (p + 1..6).map(|q| s[p][q] * s[p][q]).sum::<f64>()).sum();
        if off <= tolerance {
            break;
        }
        for p in 0..6 {
            for q in p + 1..6 {
                if s[p][q] == 0.0 {
                    continue;
                }
                let theta = (s[q][q] - s[p][p]) / (2.0 * s[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * c;
                for row in s.iter_mut() {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - sn * y;
                    row[q] = sn * x + c * y;
                }
                let (row_p, row_q) = (s[p], s[q]);
                for k in 0..6 {
                    s[p][k] = c * row_p[k] - sn * row_q[k];
                    s[q][k] = sn * row_p[k] + c * row_q[k];
                }
                s[p][q] = 0.0;
                s[q][p] = 0.0;
            }
        }
    }
    let mut values = [0.0; 6];
    for (i, value) in values.iter_mut().enumerate() {
        *value = s[i][i];
    }
    values.sort_by(f64::total_cmp);
    values
}

/// `linalg/symmetric_eigenvalues`: a symmetric 6×6 matrix with entries of both
/// signs (no dominant diagonal).
fn symmetric_eigenvalues(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/symmetric_eigenvalues");
    let a: Matrix<f64, 6, 6> =
        Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11 + (j * 7 + i * 3) % 11) as f64 / 11.0 - 1.0);
    let arrays = a.to_array();
    assert_agree(a.symmetric_eigenvalues().as_slice(), &jacobi_eigenvalues(&arrays));
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).symmetric_eigenvalues(),
        || jacobi_eigenvalues(black_box(&arrays)),
    );
    // nalgebra's (Householder tridiagonalisation, then implicit QR), for scale.
    let matrix = nalgebra::Matrix6::from_fn(|i, j| arrays[i][j]);
    let mut theirs: Vec<f64> = matrix.symmetric_eigenvalues().iter().copied().collect();
    theirs.sort_by(f64::total_cmp);
    assert_agree(a.symmetric_eigenvalues().as_slice(), &theirs);
    group.bench_function(BenchmarkId::new("nalgebra", "inline-6"), |bencher| {
        bencher.iter(|| black_box(&matrix).symmetric_eigenvalues())
    });
    group.finish();
}
