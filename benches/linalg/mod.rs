//! Linear solves beside Gaussian elimination written by hand (partial pivoting on
//! fixed-size arrays, or on a `Vec` for the heap size), the gradient of ½|A⁻¹b|² in
//! static mode beside the hand-written one (one elimination for x, one with Aᵀ for
//! b̄ = A⁻ᵀx, then Ā = −b̄·xᵀ), the Cholesky factor beside the textbook loop on
//! arrays, and the gradient of ln|det A| (A⁻ᵀ) beside one that keeps the LU factors
//! of the value for the triangular solves of A⁻ᵀ.
//!
//! Triangular solves beside forward substitution on arrays, and the eigenvalues of
//! a symmetric matrix, and its eigenvectors, beside the same Householder
//! tridiagonalisation and implicit QR on arrays and beside nalgebra's (id
//! `nalgebra/inline-6`; at 64×64, `{ours,nalgebra}/heap-64`, for scale). The matrix exponential beside the same
//! scaling and squaring on arrays and beside nalgebra's `exp`, at a small norm
//! (degree 7, no squaring) and a large one (degree 13, two squarings), with the
//! gradient of ⟨e^A, W⟩ in static mode for its cost over the value. The QR
//! factors of a 12×4 matrix and the least-squares solution through them beside the
//! same Householder reflections on arrays (τ kept per column, the reflections fused
//! into one pass over the remaining columns) and beside nalgebra's QR, with the
//! gradient of |x|² in static mode. The singular values of that matrix beside the
//! same one-sided Jacobi rotations on arrays and beside nalgebra's (bidiagonal
//! QR), with the gradient of the nuclear norm Σσ; its thin SVD beside the rotations
//! with V accumulated on arrays and nalgebra's SVD, with the gradient of a loss of
//! every factor (and, for scale, `{ours,nalgebra}/heap-64` of a pseudo-random 64×64
//! matrix); its pseudo-inverse beside V·diag(σ⁺)·Uᵀ from that SVD on arrays and
//! nalgebra's, with the gradient of |A⁺|².
//!
//! Complex matrices: a 6×6 `Complex64` solve beside the same elimination on arrays
//! and nalgebra's LU, and the eigendecomposition of a 6×6 Hermitian matrix beside
//! the same reflections and QR steps on arrays and nalgebra's `symmetric_eigen`,
//! with the gradient of ⟨λ, w⟩ + |V − W|² in static mode. The QR factors and the
//! thin SVD of a 12×4 `Complex64` matrix beside the real ones' array code, generic
//! over the entry, and nalgebra's, with the gradient of a loss of every SVD factor.
//!
//! Groups `linalg/solve` (ids `{ours,handwritten}/{inline-6,heap-64}`),
//! `linalg/solve_gradient`, `linalg/cholesky`,
//! `linalg/log_abs_determinant_gradient`, `linalg/solve_lower_triangular` and
//! `linalg/symmetric_eigenvalues` and `linalg/symmetric_eigenvectors`
//! (`{ours,handwritten,nalgebra}/inline-6`, `gradient/inline-6`; the eigenvectors
//! also `{ours,nalgebra}/heap-64`), `linalg/matrix_exp`
//! (`{ours,handwritten,nalgebra}/{norm-0.8,norm-20}`, `gradient/…`), `linalg/qr` and
//! `linalg/least_squares`, `linalg/singular_values`, `linalg/svd` and `linalg/pseudo_inverse`
//! (`{ours,handwritten,nalgebra}/inline-12x4`, `gradient/inline-12x4`),
//! `linalg/complex_solve` (`{ours,handwritten,nalgebra}/inline-6`),
//! `linalg/hermitian_eigen` (`{ours,handwritten,nalgebra}/inline-6`,
//! `gradient/inline-6`), `linalg/complex_qr` (`{ours,handwritten,nalgebra}/inline-12x4`)
//! and `linalg/complex_svd` (the same and `gradient/inline-12x4`); throughput counts
//! the matrix's elements.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group};
use fluxion::prelude::*;

use crate::common::{compare, config};

criterion_group! {
    name = benches;
    config = config();
    targets = solve, solve_gradient, cholesky, log_abs_determinant_gradient, triangular_solve, symmetric_eigenvalues,
        matrix_exp, least_squares, singular_values, svd, pseudo_inverse, complex_solve, hermitian_eigen,
        complex_factorisations
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

/// An entry of the matrices that [`householder_qr`] takes: `f64` or `Complex64`.
trait Entry:
    Copy
    + PartialEq
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const COMPLEX: bool;
    fn conj(self) -> Self;
    fn re(self) -> f64;
    fn im(self) -> f64;
    fn norm_sqr(self) -> f64;
    fn modulus(self) -> f64;
    fn times(self, r: f64) -> Self;
    fn over(self, r: f64) -> Self;
    /// (|x|, x/|x|), (0, 1) at 0.
    fn polar(self) -> (f64, Self);
}

impl Entry for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const COMPLEX: bool = false;
    fn conj(self) -> f64 {
        self
    }
    fn re(self) -> f64 {
        self
    }
    fn im(self) -> f64 {
        0.0
    }
    fn norm_sqr(self) -> f64 {
        self * self
    }
    fn modulus(self) -> f64 {
        self.abs()
    }
    fn times(self, r: f64) -> f64 {
        self * r
    }
    fn over(self, r: f64) -> f64 {
        self / r
    }
    fn polar(self) -> (f64, f64) {
        (self.abs(), if self < 0.0 { -1.0 } else { 1.0 })
    }
}

impl Entry for C {
    const ZERO: C = C::new(0.0, 0.0);
    const ONE: C = C::new(1.0, 0.0);
    const COMPLEX: bool = true;
    fn conj(self) -> C {
        C::conj(&self)
    }
    fn re(self) -> f64 {
        self.re
    }
    fn im(self) -> f64 {
        self.im
    }
    fn norm_sqr(self) -> f64 {
        C::norm_sqr(&self)
    }
    fn modulus(self) -> f64 {
        self.norm()
    }
    fn times(self, r: f64) -> C {
        C::new(self.re * r, self.im * r)
    }
    fn over(self, r: f64) -> C {
        C::new(self.re / r, self.im / r)
    }
    fn polar(self) -> (f64, C) {
        let modulus = self.norm();
        if modulus == 0.0 { (0.0, C::ONE) } else { (modulus, self.times(1.0 / modulus)) }
    }
}

/// The eigenvalues (ascending) of a Hermitian 6×6 matrix and, when `VECTORS`, its
/// eigenvectors, each column's largest entry made real and positive, as
/// `symmetric_eigen` and `hermitian_eigen` compute them: Householder reflections to
/// a tridiagonal matrix (its subdiagonal made real by phases), then implicit QR
/// steps with Wilkinson's shift, the rotations accumulated into V.
fn householder_qr<E: Entry, const VECTORS: bool>(a: &[[E; 6]; 6]) -> ([f64; 6], [[E; 6]; 6]) {
    const N: usize = 6;
    let mut s = *a;
    let mut v = [[E::ZERO; N]; N];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = E::ONE;
    }
    let mut off = [E::ZERO; N];
    for k in 0..N - 2 {
        let (head_size, phase) = s[k + 1][k].polar();
        let length = (head_size * head_size + (k + 2..N).map(|i| s[i][k].norm_sqr()).sum::<f64>()).sqrt();
        let mut u = [E::ZERO; N];
        u[k + 1] = E::ONE;
        if length > 0.0 {
            let scale = E::ONE.times(1.0 / (head_size + length)) * phase.conj();
            for i in k + 2..N {
                u[i] = s[i][k] * scale;
            }
        }
        let beta = 2.0 / u.iter().map(|x| x.norm_sqr()).sum::<f64>();
        off[k] = phase.times(-length);
        let mut p = [E::ZERO; N];
        for i in k + 1..N {
            p[i] = (k + 1..N).fold(E::ZERO, |t, j| t + s[i][j] * u[j]).times(beta);
        }
        let along_u = 0.5 * beta * (k + 1..N).map(|i| (u[i].conj() * p[i]).re()).sum::<f64>();
        for i in k + 1..N {
            p[i] = p[i] - u[i].times(along_u);
        }
        for i in k + 1..N {
            for j in k + 1..N {
                s[i][j] = s[i][j] - (u[i] * p[j].conj() + p[i] * u[j].conj());
            }
        }
        if VECTORS {
            for row in v.iter_mut() {
                let t = (k + 1..N).fold(E::ZERO, |t, j| t + row[j] * u[j]).times(beta);
                for j in k + 1..N {
                    row[j] = row[j] - t * u[j].conj();
                }
            }
        }
    }
    off[N - 2] = s[N - 1][N - 2];
    let mut d = [0.0; N];
    let mut e = [0.0; N];
    let mut delta = E::ONE;
    for i in 0..N {
        d[i] = s[i][i].re();
        if i + 1 < N {
            let (modulus, phase) = off[i].polar();
            e[i] = modulus;
            delta = delta * phase;
            if VECTORS {
                for row in v.iter_mut() {
                    row[i + 1] = row[i + 1] * delta;
                }
            }
        }
    }
    let mut high = N - 1;
    while high > 0 {
        let mut low = high;
        while low > 0 && e[low - 1].abs() > f64::EPSILON * (d[low - 1].abs() + d[low].abs()) {
            low -= 1;
        }
        if low == high {
            high -= 1;
            continue;
        }
        let delta = (d[high - 1] - d[high]) / 2.0;
        let root = (delta * delta + e[high - 1] * e[high - 1]).sqrt();
        let shift =
            d[high] - e[high - 1] * e[high - 1] / (if delta < 0.0 { delta - root } else { delta + root });
        let (mut x, mut z) = (d[low] - shift, e[low]);
        for k in low..high {
            let r = (x * x + z * z).sqrt();
            let (c, sn) = if r == 0.0 { (1.0, 0.0) } else { (x / r, -z / r) };
            if k > low {
                e[k - 1] = r;
            }
            let (a, b, m) = (d[k], e[k], d[k + 1]);
            d[k] = c * c * a - 2.0 * c * sn * b + sn * sn * m;
            d[k + 1] = sn * sn * a + 2.0 * c * sn * b + c * c * m;
            e[k] = c * sn * (a - m) + (c * c - sn * sn) * b;
            if k + 1 < high {
                (x, z) = (e[k], -sn * e[k + 1]);
                e[k + 1] *= c;
            }
            if VECTORS {
                for row in v.iter_mut() {
                    let (p, q) = (row[k], row[k + 1]);
                    row[k] = p.times(c) - q.times(sn);
                    row[k + 1] = p.times(sn) + q.times(c);
                }
            }
        }
    }
    let mut order = [0, 1, 2, 3, 4, 5];
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let mut vectors = [[E::ZERO; N]; N];
    if VECTORS {
        for (column, &from) in order.iter().enumerate() {
            let largest = (0..N)
                .fold(0, |best, i| if v[i][from].norm_sqr() > v[best][from].norm_sqr() { i } else { best });
            let phase = v[largest][from].polar().1.conj();
            for (row, v_row) in vectors.iter_mut().zip(&v) {
                row[column] = v_row[from] * phase;
            }
        }
    }
    (order.map(|i| d[i]), vectors)
}

/// `linalg/symmetric_eigenvalues`: a symmetric 6×6 matrix with entries of both
/// signs (no dominant diagonal).
fn symmetric_eigenvalues(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/symmetric_eigenvalues");
    let a: Matrix<f64, 6, 6> =
        Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11 + (j * 7 + i * 3) % 11) as f64 / 11.0 - 1.0);
    let arrays = a.to_array();
    assert_agree(a.symmetric_eigenvalues().as_slice(), &householder_qr::<f64, false>(&arrays).0);
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).symmetric_eigenvalues(),
        || householder_qr::<f64, false>(black_box(&arrays)),
    );
    // nalgebra's (the same two stages).
    let matrix = nalgebra::Matrix6::from_fn(|i, j| arrays[i][j]);
    let mut theirs: Vec<f64> = matrix.symmetric_eigenvalues().iter().copied().collect();
    theirs.sort_by(f64::total_cmp);
    assert_agree(a.symmetric_eigenvalues().as_slice(), &theirs);
    group.bench_function(BenchmarkId::new("nalgebra", "inline-6"), |bencher| {
        bencher.iter(|| black_box(&matrix).symmetric_eigenvalues())
    });
    group.finish();
    // The eigenvectors (values found beside them), and the gradient of ⟨V, W⟩.
    let mut group = c.benchmark_group("linalg/symmetric_eigenvectors");
    assert_agree(
        a.symmetric_eigenvectors().as_slice(),
        householder_qr::<f64, true>(&arrays).1.as_flattened(),
    );
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).symmetric_eigenvectors(),
        || householder_qr::<f64, true>(black_box(&arrays)),
    );
    group.bench_function(BenchmarkId::new("nalgebra", "inline-6"), |bencher| {
        bencher.iter(|| black_box(matrix).symmetric_eigen())
    });
    let w = a.transpose().scale(0.5);
    group.bench_function(BenchmarkId::new("gradient", "inline-6"), |bencher| {
        bencher.iter(|| weighted_eigenvectors::value_and_grad(black_box(&a), black_box(&w)))
    });
    // B + Bᵀ for B of pseudo-random entries: eigenvalues spread out, as
    // `dominant`'s periodic pattern would not have them (most equal).
    let entries = pseudo_random(64 * 64);
    let large = Tensor::<f64, (Dyn, Dyn), Heap>::from_flat_fn((Dyn(64), Dyn(64)), |k| {
        entries[k] + entries[(k % 64) * 64 + k / 64]
    });
    let theirs = nalgebra::DMatrix::from_row_slice(64, 64, large.as_slice());
    group.bench_function(BenchmarkId::new("ours", "heap-64"), |bencher| {
        bencher.iter(|| black_box(&large).symmetric_eigen())
    });
    group.bench_function(BenchmarkId::new("nalgebra", "heap-64"), |bencher| {
        bencher.iter(|| black_box(&theirs).clone().symmetric_eigen())
    });
    group.finish();
}

/// `count` pseudo-random numbers in [−1, 1) (a linear congruential generator).
fn pseudo_random(count: usize) -> Vec<f64> {
    let mut state = 1u64;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// ⟨V, W⟩ for the eigenvectors V.
#[differentiable(wrt(a))]
fn weighted_eigenvectors(a: &Matrix<f64, 6, 6>, w: &Matrix<f64, 6, 6>) -> f64 {
    a.symmetric_eigenvectors().dot(w)
}

type Array6 = [[f64; 6]; 6];

/// A·B on arrays, row by row.
fn array_product(a: &Array6, b: &Array6) -> Array6 {
    let mut c = [[0.0; 6]; 6];
    for i in 0..6 {
        for k in 0..6 {
            let aik = a[i][k];
            for j in 0..6 {
                c[i][j] += aik * b[k][j];
            }
        }
    }
    c
}

/// Σₖ cₖ·Xₖ + d·I on arrays, a term at a time.
fn array_combination(terms: &[(f64, &Array6)], identity: f64) -> Array6 {
    let mut sum = [[0.0; 6]; 6];
    for (i, row) in sum.iter_mut().enumerate() {
        row[i] = identity;
    }
    for &(c, x) in terms {
        for (row, x_row) in sum.iter_mut().zip(x) {
            for (entry, x) in row.iter_mut().zip(x_row) {
                *entry += c * x;
            }
        }
    }
    sum
}

/// e^A on arrays by the algorithm of `matrix_exp` (Higham's scaling and squaring of
/// the [m/m] Padé approximant, m and s from ‖A‖₁), Q⁻¹P by elimination with partial
/// pivoting.
fn exponential_by_hand(a: &Array6) -> Array6 {
    const DEGREES: [(usize, f64); 5] = [
        (3, 1.495585217958292e-2),
        (5, 2.53939833006323e-1),
        (7, 9.504178996162932e-1),
        (9, 2.097847961257068),
        (13, 5.371920351148152),
    ];
    let norm = (0..6).map(|j| (0..6).map(|i| a[i][j].abs()).sum::<f64>()).fold(0.0, f64::max);
    let (degree, squarings) = match DEGREES.iter().find(|(_, bound)| norm <= *bound) {
        Some(&(degree, _)) => (degree, 0),
        None => (13, (norm / DEGREES[4].1).log2().ceil() as i32),
    };
    let mut c = [0.0; 14];
    c[0] = 1.0;
    let m = degree as f64;
    for j in 1..=degree {
        c[j] = c[j - 1] * (m - j as f64 + 1.0) / (j as f64 * (2.0 * m - j as f64 + 1.0));
    }
    let a = array_combination(&[(0.5f64.powi(squarings), a)], 0.0);
    let a2 = array_product(&a, &a);
    let a4 = array_product(&a2, &a2);
    let a6 = array_product(&a4, &a2);
    let (odd, even) = if degree == 13 {
        let high_odd =
            array_product(&a6, &array_combination(&[(c[13], &a6), (c[11], &a4), (c[9], &a2)], 0.0));
        let high_even =
            array_product(&a6, &array_combination(&[(c[12], &a6), (c[10], &a4), (c[8], &a2)], 0.0));
        (
            array_combination(&[(1.0, &high_odd), (c[7], &a6), (c[5], &a4), (c[3], &a2)], c[1]),
            array_combination(&[(1.0, &high_even), (c[6], &a6), (c[4], &a4), (c[2], &a2)], c[0]),
        )
    } else {
        assert_eq!(degree, 7, "the benchmark's small matrix takes degree 7");
        (
            array_combination(&[(c[7], &a6), (c[5], &a4), (c[3], &a2)], c[1]),
            array_combination(&[(c[6], &a6), (c[4], &a4), (c[2], &a2)], c[0]),
        )
    };
    let u = array_product(&a, &odd);
    let mut q = array_combination(&[(1.0, &even), (-1.0, &u)], 0.0);
    let mut r = array_combination(&[(1.0, &even), (1.0, &u)], 0.0);
    // Q·R = P by elimination with partial pivoting, then back substitution, a row
    // of R at a time.
    for k in 0..6 {
        let pivot = (k..6).max_by(|&i, &j| q[i][k].abs().total_cmp(&q[j][k].abs())).unwrap();
        q.swap(k, pivot);
        r.swap(k, pivot);
        let ((q_top, q_below), (r_top, r_below)) = (q.split_at_mut(k + 1), r.split_at_mut(k + 1));
        for (q_row, r_row) in q_below.iter_mut().zip(r_below) {
            let factor = q_row[k] / q_top[k][k];
            for (entry, &above) in q_row[k + 1..].iter_mut().zip(&q_top[k][k + 1..]) {
                *entry -= factor * above;
            }
            for (entry, &above) in r_row.iter_mut().zip(&r_top[k]) {
                *entry -= factor * above;
            }
        }
    }
    for k in (0..6).rev() {
        let (r_top, r_below) = r.split_at_mut(k + 1);
        let row = &mut r_top[k];
        for (&coefficient, solved) in q[k][k + 1..].iter().zip(r_below.iter()) {
            for (entry, &x) in row.iter_mut().zip(solved) {
                *entry -= coefficient * x;
            }
        }
        let pivot = q[k][k];
        for entry in row.iter_mut() {
            *entry /= pivot;
        }
    }
    for _ in 0..squarings {
        r = array_product(&r, &r);
    }
    r
}

/// `linalg/matrix_exp`: a 6×6 matrix with entries of both signs at 1-norms 0.8
/// (degree 7) and 20 (degree 13, two squarings); and the gradient of ⟨e^A, W⟩.
fn matrix_exp(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/matrix_exp");
    let pattern: Matrix<f64, 6, 6> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let norm = (0..6).map(|j| (0..6).map(|i| pattern[[i, j]].abs()).sum::<f64>()).fold(0.0, f64::max);
    for target in [0.8, 20.0] {
        let a = pattern.scale(target / norm);
        let arrays = a.to_array();
        let expected = a.matrix_exp();
        let scale = expected.as_slice().iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let agree = |theirs: &[f64]| {
            for (x, y) in expected.as_slice().iter().zip(theirs) {
                assert!((x - y).abs() <= 1e-13 * scale, "{x} vs {y}");
            }
        };
        agree(exponential_by_hand(&arrays).as_flattened());
        let param = format!("norm-{target}");
        compare(
            &mut group,
            &param,
            36,
            || black_box(&a).matrix_exp(),
            || exponential_by_hand(black_box(&arrays)),
        );
        let matrix = nalgebra::Matrix6::from_fn(|i, j| arrays[i][j]);
        let theirs = matrix.exp();
        agree(&(0..36).map(|k| theirs[(k / 6, k % 6)]).collect::<Vec<_>>());
        group.bench_function(BenchmarkId::new("nalgebra", &param), |bencher| {
            bencher.iter(|| black_box(&matrix).exp())
        });
        let w = pattern.transpose();
        group.bench_function(BenchmarkId::new("gradient", &param), |bencher| {
            bencher.iter(|| weighted_exponential::value_and_grad(black_box(&a), black_box(&w)))
        });
    }
    group.finish();
}

/// ⟨e^A, W⟩.
#[differentiable(wrt(a))]
fn weighted_exponential(a: &Matrix<f64, 6, 6>, w: &Matrix<f64, 6, 6>) -> f64 {
    a.matrix_exp().dot(w)
}

type Tall<E = f64> = [[E; 4]; 12];

/// Householder QR of a 12×4 matrix on arrays: R on and above the diagonal, reflector
/// k's v (v₀ = 1) below it, and τₖ = 2/vᴴv = (|x₀| + ‖x‖)/‖x‖ kept per column; for
/// column x, v = x − α·e₁ with α = −φ‖x‖, φ the phase (sign) of x₀.
fn householder_by_hand<E: Entry>(a: &Tall<E>) -> (Tall<E>, [f64; 4]) {
    let (mut m, mut tau) = (*a, [0.0; 4]);
    for k in 0..4 {
        let norm = (k..12).map(|i| m[i][k].norm_sqr()).sum::<f64>().sqrt();
        let (size, phase) = m[k][k].polar();
        // 1/v₀ = conj(φ)/(|x₀| + ‖x‖).
        let reciprocal = phase.conj().times(1.0 / (size + norm));
        for row in &mut m[k + 1..] {
            row[k] = row[k] * reciprocal;
        }
        m[k][k] = phase.times(-norm);
        tau[k] = (size + norm) / norm;
        for j in k + 1..4 {
            let w = (k + 1..12).fold(m[k][j], |w, i| w + m[i][k].conj() * m[i][j]).times(tau[k]);
            m[k][j] = m[k][j] - w;
            for row in &mut m[k + 1..] {
                row[j] = row[j] - w * row[k];
            }
        }
    }
    (m, tau)
}

/// Q (12×4) and R (4×4) with R's diagonal real and non-negative, as `qr` returns
/// them.
// Indexed loops: the form of this baseline that runs fastest (row iterators over
// the column took 1.3× as long).
#[allow(clippy::needless_range_loop)]
fn qr_by_hand<E: Entry>(a: &Tall<E>) -> (Tall<E>, [[E; 4]; 4]) {
    let (m, tau) = householder_by_hand(a);
    let mut q = [[E::ZERO; 4]; 12];
    for (k, row) in q.iter_mut().enumerate().take(4) {
        row[k] = E::ONE;
    }
    for k in (0..4).rev() {
        for j in k..4 {
            let w = (k + 1..12).fold(q[k][j], |w, i| w + m[i][k].conj() * q[i][j]).times(tau[k]);
            q[k][j] = q[k][j] - w;
            for i in k + 1..12 {
                q[i][j] = q[i][j] - w * m[i][k];
            }
        }
    }
    let mut r = [[E::ZERO; 4]; 4];
    for i in 0..4 {
        let (size, phase) = m[i][i].polar();
        r[i][i] = E::ONE.times(size);
        for j in i + 1..4 {
            r[i][j] = phase.conj() * m[i][j];
        }
        for row in &mut q {
            row[i] = row[i] * phase;
        }
    }
    (q, r)
}

/// The least-squares x: the reflections applied to b, then back substitution.
fn least_squares_by_hand(a: &Tall, b: &[f64; 12]) -> [f64; 4] {
    let (m, tau) = householder_by_hand(a);
    let mut y = *b;
    for k in 0..4 {
        let w = tau[k] * (k + 1..12).fold(y[k], |w, i| w + m[i][k] * y[i]);
        y[k] -= w;
        for i in k + 1..12 {
            y[i] -= w * m[i][k];
        }
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        x[i] = (i + 1..4).fold(y[i], |total, j| total - m[i][j] * x[j]) / m[i][i];
    }
    x
}

/// `name`: the QR factors of a 12×4 matrix beside [`qr_by_hand`] and nalgebra's.
fn qr_group<E: Entry + Scalar + nalgebra::ComplexField>(c: &mut Criterion, name: &str, a: &Matrix<E, 12, 4>) {
    let arrays = a.to_array();
    let matrix = nalgebra::SMatrix::<E, 12, 4>::from_fn(|i, j| arrays[i][j]);
    let (q, r) = a.qr();
    let (q_hand, r_hand) = qr_by_hand(&arrays);
    assert_agree(&parts(q.as_slice()), &parts(q_hand.as_flattened()));
    assert_agree(&parts(r.as_slice()), &parts(r_hand.as_flattened()));
    let mut group = c.benchmark_group(name);
    compare(&mut group, "inline-12x4", 48, || black_box(a).qr(), || qr_by_hand(black_box(&arrays)));
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| {
            let factors = black_box(matrix).qr();
            (factors.q(), factors.r())
        })
    });
    group.finish();
}

/// `linalg/qr` and `linalg/least_squares`: a 12×4 matrix with entries of both signs
/// (twelve observations of four parameters), b alike; and the gradient of |x|² in A.
fn least_squares(c: &mut Criterion) {
    let a: Matrix<f64, 12, 4> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let b: Vector<f64, 12> = Vector::from_fn(|[i]| ((i * 5) % 7) as f64 / 7.0 - 0.5);
    let (arrays, b_array) = (a.to_array(), b.to_array());
    let matrix = nalgebra::SMatrix::<f64, 12, 4>::from_fn(|i, j| arrays[i][j]);
    qr_group(c, "linalg/qr", &a);
    let mut group = c.benchmark_group("linalg/least_squares");
    let x = a.least_squares(&b);
    assert_agree(x.as_slice(), &least_squares_by_hand(&arrays, &b_array));
    let by_nalgebra = |matrix: nalgebra::SMatrix<f64, 12, 4>, b: nalgebra::SVector<f64, 12>| {
        let factors = matrix.qr();
        let mut rotated = b;
        factors.q_tr_mul(&mut rotated);
        factors.r().solve_upper_triangular(&rotated.fixed_rows::<4>(0).into_owned())
    };
    let b_vector = nalgebra::SVector::<f64, 12>::from_fn(|i, _| b_array[i]);
    let theirs = by_nalgebra(matrix, b_vector).expect("R is invertible");
    assert_agree(x.as_slice(), theirs.as_slice());
    compare(
        &mut group,
        "inline-12x4",
        48,
        || black_box(&a).least_squares(black_box(&b)),
        || least_squares_by_hand(black_box(&arrays), black_box(&b_array)),
    );
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| by_nalgebra(black_box(matrix), black_box(b_vector)))
    });
    group.bench_function(BenchmarkId::new("gradient", "inline-12x4"), |bencher| {
        bencher.iter(|| squared_solution::value_and_grad(black_box(&a), black_box(&b)))
    });
    group.finish();
}

/// |x|² for the least-squares x of A·x ≈ b.
#[differentiable(wrt(a))]
fn squared_solution(a: &Matrix<f64, 12, 4>, b: &Vector<f64, 12>) -> f64 {
    let x = a.least_squares(b);
    x.dot(&x)
}

/// One-sided Jacobi rotations of a 12×4 matrix's columns on arrays (scaled by the
/// largest |entry|), the Gram entries of each pair summed in one pass, until every
/// pair is orthogonal to working precision; V accumulated when given. A complex
/// pair's inner product |γ|·φ is made real first by turning column q by conj(φ).
/// Returns the rotated columns, still scaled, and the scale.
fn rotate_columns_by_hand<E: Entry>(a: &Tall<E>, mut v: Option<&mut [[E; 4]; 4]>) -> (Tall<E>, f64) {
    let largest = a.as_flattened().iter().fold(0.0f64, |m, x| m.max(x.modulus()));
    let mut w = *a;
    for row in &mut w {
        for x in row {
            *x = x.over(largest);
        }
    }
    for _ in 0..64 {
        let mut rotated = false;
        for p in 0..4 {
            for q in p + 1..4 {
                let (mut first, mut second, mut pivot) = (0.0, 0.0, E::ZERO);
                for row in &w {
                    first += row[p].norm_sqr();
                    second += row[q].norm_sqr();
                    pivot = pivot + row[p].conj() * row[q];
                }
                if pivot.modulus() <= f64::EPSILON * (first * second).sqrt() {
                    continue;
                }
                rotated = true;
                let (coupling, turn) = if E::COMPLEX {
                    let (size, phase) = pivot.polar();
                    (size, phase.conj())
                } else {
                    (pivot.re(), E::ONE)
                };
                let theta = (second - first) / (2.0 * coupling);
                let root = (theta * theta + 1.0).sqrt();
                let t = 1.0 / if theta < 0.0 { theta - root } else { theta + root };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                let rows = w.iter_mut().chain(v.iter_mut().flat_map(|v| v.iter_mut()));
                for row in rows {
                    let (x, y) = (row[p], if E::COMPLEX { row[q] * turn } else { row[q] });
                    row[p] = x.times(c) - y.times(s);
                    row[q] = x.times(s) + y.times(c);
                }
            }
        }
        if !rotated {
            break;
        }
    }
    (w, largest)
}

/// The singular values of a 12×4 matrix on arrays, descending: the lengths of the
/// rotated columns.
fn singular_values_by_hand<E: Entry>(a: &Tall<E>) -> [f64; 4] {
    let (w, largest) = rotate_columns_by_hand(a, None);
    let mut sigma = [0.0; 4];
    for (j, value) in sigma.iter_mut().enumerate() {
        *value = largest * w.iter().map(|row| row[j].norm_sqr()).sum::<f64>().sqrt();
    }
    sigma.sort_by(|x, y| y.total_cmp(x));
    sigma
}

/// The thin SVD (U, σ, Vᴴ) of a 12×4 matrix on arrays: the rotations with V
/// accumulated, the columns ordered by length, U the rotated columns over their
/// lengths (all nonzero here), and each pair's sign (phase) fixed by V's largest
/// entry, made real and positive.
fn svd_by_hand<E: Entry>(a: &Tall<E>) -> (Tall<E>, [f64; 4], [[E; 4]; 4]) {
    let mut v = [[E::ZERO; 4]; 4];
    for (k, row) in v.iter_mut().enumerate() {
        row[k] = E::ONE;
    }
    let (w, largest) = rotate_columns_by_hand(a, Some(&mut v));
    let mut lengths = [0.0; 4];
    for (j, length) in lengths.iter_mut().enumerate() {
        *length = w.iter().map(|row| row[j].norm_sqr()).sum::<f64>().sqrt();
    }
    let mut order = [0, 1, 2, 3];
    order.sort_by(|&x, &y| lengths[y].total_cmp(&lengths[x]));
    let (mut u, mut sigma, mut v_h) = ([[E::ZERO; 4]; 12], [0.0; 4], [[E::ZERO; 4]; 4]);
    for (k, &j) in order.iter().enumerate() {
        let largest_entry =
            (0..4).map(|i| v[i][j]).fold(E::ZERO, |m, x| if x.modulus() > m.modulus() { x } else { m });
        let turn = largest_entry.polar().1.conj();
        sigma[k] = largest * lengths[j];
        for i in 0..4 {
            v_h[k][i] = (v[i][j] * turn).conj();
        }
        let scale = turn.times(1.0 / lengths[j]);
        for (u_row, w_row) in u.iter_mut().zip(&w) {
            u_row[k] = w_row[j] * scale;
        }
    }
    (u, sigma, v_h)
}

/// `linalg/singular_values`: the 12×4 matrix of `linalg/least_squares`, and the
/// gradient of the nuclear norm.
fn singular_values(c: &mut Criterion) {
    let a: Matrix<f64, 12, 4> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let arrays = a.to_array();
    let matrix = nalgebra::SMatrix::<f64, 12, 4>::from_fn(|i, j| arrays[i][j]);
    let sigma = a.singular_values();
    assert_agree(sigma.as_slice(), &singular_values_by_hand(&arrays));
    let mut theirs: Vec<f64> = matrix.singular_values().iter().copied().collect();
    theirs.sort_by(|x, y| y.total_cmp(x));
    assert_agree(sigma.as_slice(), &theirs);
    let mut group = c.benchmark_group("linalg/singular_values");
    compare(
        &mut group,
        "inline-12x4",
        48,
        || black_box(&a).singular_values(),
        || singular_values_by_hand(black_box(&arrays)),
    );
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| black_box(matrix).singular_values())
    });
    group.bench_function(BenchmarkId::new("gradient", "inline-12x4"), |bencher| {
        bencher.iter(|| nuclear_norm::value_and_grad(black_box(&a)))
    });
    group.finish();
}

/// `linalg/svd`: the thin decomposition of the same 12×4 matrix, and the gradient
/// of ΣU + Σσ + ΣVᵀ (every factor's cotangent).
fn svd(c: &mut Criterion) {
    let a: Matrix<f64, 12, 4> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let arrays = a.to_array();
    let matrix = nalgebra::SMatrix::<f64, 12, 4>::from_fn(|i, j| arrays[i][j]);
    let (u, sigma, v_t) = a.svd();
    let (their_u, their_sigma, their_v_t) = svd_by_hand(&arrays);
    assert_agree(u.as_slice(), their_u.as_flattened());
    assert_agree(sigma.as_slice(), &their_sigma);
    assert_agree(v_t.as_slice(), their_v_t.as_flattened());
    let mut group = c.benchmark_group("linalg/svd");
    compare(&mut group, "inline-12x4", 48, || black_box(&a).svd(), || svd_by_hand(black_box(&arrays)));
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| black_box(matrix).svd(true, true))
    });
    group.bench_function(BenchmarkId::new("gradient", "inline-12x4"), |bencher| {
        bencher.iter(|| factor_sums::value_and_grad(black_box(&a)))
    });
    // A 64×64 matrix of pseudo-random entries, for scale.
    let entries = pseudo_random(64 * 64);
    let large = Tensor::<f64, (Dyn, Dyn), Heap>::from_flat_fn((Dyn(64), Dyn(64)), |k| entries[k]);
    let theirs = nalgebra::DMatrix::from_row_slice(64, 64, large.as_slice());
    group.bench_function(BenchmarkId::new("ours", "heap-64"), |bencher| {
        bencher.iter(|| black_box(&large).svd())
    });
    group.bench_function(BenchmarkId::new("nalgebra", "heap-64"), |bencher| {
        bencher.iter(|| black_box(&theirs).clone().svd(true, true))
    });
    group.finish();
}

/// A⁺ of a 12×4 matrix on arrays: the SVD by hand, then V·diag(σ⁺)·Uᵀ with σ⁺ 0
/// below 12·ε·σ₁.
fn pseudo_inverse_by_hand(a: &Tall) -> [[f64; 12]; 4] {
    let (u, sigma, v_t) = svd_by_hand(a);
    let cutoff = 12.0 * f64::EPSILON * sigma[0];
    let inverse = sigma.map(|s| if s <= cutoff { 0.0 } else { 1.0 / s });
    let mut y = [[0.0; 12]; 4];
    for (i, row) in y.iter_mut().enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            *entry = (0..4).map(|k| v_t[k][i] * inverse[k] * u[j][k]).sum();
        }
    }
    y
}

/// `linalg/pseudo_inverse`: A⁺ of the same 12×4 matrix, and the gradient of |A⁺|².
fn pseudo_inverse(c: &mut Criterion) {
    let a: Matrix<f64, 12, 4> = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let arrays = a.to_array();
    let matrix = nalgebra::SMatrix::<f64, 12, 4>::from_fn(|i, j| arrays[i][j]);
    let ours = a.pseudo_inverse();
    assert_agree(ours.as_slice(), pseudo_inverse_by_hand(&arrays).as_flattened());
    let theirs = matrix.pseudo_inverse(12.0 * f64::EPSILON).unwrap();
    assert_agree(
        ours.as_slice(),
        &Matrix::<f64, 4, 12>::from_fn(|[i, j]| theirs[(i, j)]).to_array().concat(),
    );
    let mut group = c.benchmark_group("linalg/pseudo_inverse");
    compare(
        &mut group,
        "inline-12x4",
        48,
        || black_box(&a).pseudo_inverse(),
        || pseudo_inverse_by_hand(black_box(&arrays)),
    );
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| black_box(matrix).pseudo_inverse(12.0 * f64::EPSILON))
    });
    group.bench_function(BenchmarkId::new("gradient", "inline-12x4"), |bencher| {
        bencher.iter(|| squared_pseudo_inverse::value_and_grad(black_box(&a)))
    });
    group.finish();
}

/// |A⁺|².
#[differentiable]
fn squared_pseudo_inverse(a: &Matrix<f64, 12, 4>) -> f64 {
    let y = a.pseudo_inverse();
    y.dot(&y)
}

/// ΣU + Σσ + ΣVᵀ for A's thin SVD.
#[differentiable]
fn factor_sums(a: &Matrix<f64, 12, 4>) -> f64 {
    let (u, sigma, v_t) = a.svd();
    u.sum() + sigma.sum() + v_t.sum()
}

/// Σσ, the nuclear norm.
#[differentiable]
fn nuclear_norm(a: &Matrix<f64, 12, 4>) -> f64 {
    a.singular_values().sum()
}

type C = Complex64;

/// A 6×6 complex matrix with entries of both signs in both parts: `dominant(6)`
/// plus i times a second pattern, Hermitian when `hermitian` (its Hermitian part).
fn complex_matrix(hermitian: bool) -> Matrix<C, 6, 6> {
    let entries = dominant(6);
    let a: Matrix<C, 6, 6> =
        Matrix::from_fn(|[i, j]| C::new(entries[i * 6 + j], ((i * 5 + j * 2) % 7) as f64 / 7.0 - 0.4));
    if hermitian { (a + a.transpose().conj()).scale(C::new(0.5, 0.0)) } else { a }
}

/// x with A·x = b for complex A by partial pivoting on |Re aᵢₖ| + |Im aᵢₖ|, as
/// `solve` computes it, with num-complex's division (by |b|², which `solve` avoids).
fn eliminate_complex(a: &[[C; 6]; 6], b: &[C; 6]) -> [C; 6] {
    let (mut m, mut x) = (*a, *b);
    let size = |z: C| z.re.abs() + z.im.abs();
    for k in 0..6 {
        let pivot = (k + 1..6).fold(k, |best, i| if size(m[i][k]) > size(m[best][k]) { i } else { best });
        m.swap(k, pivot);
        x.swap(k, pivot);
        let (upper, lower) = m.split_at_mut(k + 1);
        let (pivot_row, x_k) = (&upper[k], x[k]);
        for (row, x_i) in lower.iter_mut().zip(&mut x[k + 1..]) {
            let factor = row[k] / pivot_row[k];
            for (entry, &above) in row[k + 1..].iter_mut().zip(&pivot_row[k + 1..]) {
                *entry -= factor * above;
            }
            *x_i -= factor * x_k;
        }
    }
    for i in (0..6).rev() {
        let known = (i + 1..6).fold(x[i], |total, j| total - m[i][j] * x[j]);
        x[i] = known / m[i][i];
    }
    x
}

/// `linalg/complex_solve`: a 6×6 `Complex64` system.
fn complex_solve(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/complex_solve");
    let a = complex_matrix(false);
    let b: Vector<C, 6> = Vector::from_fn(|[i]| C::new(i as f64 - 2.5, 1.0 - 0.3 * i as f64));
    let (arrays, rhs) = (a.to_array(), b.to_array());
    assert_agree(&parts(a.solve(&b).as_slice()), &parts(&eliminate_complex(&arrays, &rhs)));
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).solve(black_box(&b)),
        || eliminate_complex(black_box(&arrays), black_box(&rhs)),
    );
    let matrix = nalgebra::Matrix6::from_fn(|i, j| nalgebra::Complex::new(arrays[i][j].re, arrays[i][j].im));
    let vector = nalgebra::Vector6::from_fn(|i, _| nalgebra::Complex::new(rhs[i].re, rhs[i].im));
    let theirs = matrix.lu().solve(&vector).expect("nonsingular");
    assert_agree(
        &parts(a.solve(&b).as_slice()),
        &theirs.iter().flat_map(|z| [z.re, z.im]).collect::<Vec<_>>(),
    );
    group.bench_function(BenchmarkId::new("nalgebra", "inline-6"), |bencher| {
        bencher.iter(|| black_box(&matrix).lu().solve(black_box(&vector)))
    });
    group.finish();
}

/// `linalg/hermitian_eigen`: a Hermitian 6×6 `Complex64` matrix.
fn hermitian_eigen(c: &mut Criterion) {
    let mut group = c.benchmark_group("linalg/hermitian_eigen");
    let a = complex_matrix(true);
    let arrays = a.to_array();
    let (values, vectors) = a.hermitian_eigen();
    let (hand_values, hand_vectors) = householder_qr::<C, true>(&arrays);
    assert_agree(values.as_slice(), &hand_values);
    assert_agree(&parts(vectors.as_slice()), &parts(hand_vectors.as_flattened()));
    compare(
        &mut group,
        "inline-6",
        36,
        || black_box(&a).hermitian_eigen(),
        || householder_qr::<C, true>(black_box(&arrays)),
    );
    // nalgebra's (the same two stages).
    let matrix = nalgebra::Matrix6::from_fn(|i, j| nalgebra::Complex::new(arrays[i][j].re, arrays[i][j].im));
    let mut theirs: Vec<f64> = matrix.symmetric_eigen().eigenvalues.iter().copied().collect();
    theirs.sort_by(f64::total_cmp);
    assert_agree(values.as_slice(), &theirs);
    group.bench_function(BenchmarkId::new("nalgebra", "inline-6"), |bencher| {
        bencher.iter(|| black_box(matrix).symmetric_eigen())
    });
    let (w, target) = (values.map(|x| 0.5 - x), vectors.transpose());
    group.bench_function(BenchmarkId::new("gradient", "inline-6"), |bencher| {
        bencher.iter(|| eigen_loss::value_and_grad(black_box(&a), black_box(&w), black_box(&target)))
    });
    group.finish();
}

/// ⟨λ, w⟩ + |V − W|² for the Hermitian eigendecomposition (λ, V).
#[differentiable(wrt(a))]
fn eigen_loss(a: &Matrix<C, 6, 6>, w: &Vector<f64, 6>, target: &Matrix<C, 6, 6>) -> f64 {
    let (values, vectors) = a.hermitian_eigen();
    values.dot(w) + (vectors - target).norm_sqr().sum()
}

/// The real and imaginary parts of entries as a flat list, for [`assert_agree`].
fn parts<E: Entry>(z: &[E]) -> Vec<f64> {
    z.iter().flat_map(|&z| [z.re(), z.im()]).collect()
}

/// `linalg/complex_qr` and `linalg/complex_svd`: a 12×4 `Complex64` matrix, the
/// real one of `linalg/least_squares` plus an imaginary part.
fn complex_factorisations(c: &mut Criterion) {
    let a: Matrix<C, 12, 4> = Matrix::from_fn(|[i, j]| {
        C::new(((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45, ((i * 5 + j * 2) % 7) as f64 / 7.0 - 0.4)
    });
    qr_group(c, "linalg/complex_qr", &a);
    let arrays = a.to_array();
    let matrix = nalgebra::SMatrix::<C, 12, 4>::from_fn(|i, j| arrays[i][j]);
    let (u, sigma, v_h) = a.svd();
    let (u_hand, sigma_hand, v_h_hand) = svd_by_hand(&arrays);
    assert_agree(&parts(u.as_slice()), &parts(u_hand.as_flattened()));
    assert_agree(sigma.as_slice(), &sigma_hand);
    assert_agree(&parts(v_h.as_slice()), &parts(v_h_hand.as_flattened()));
    let mut theirs: Vec<f64> = matrix.singular_values().iter().copied().collect();
    theirs.sort_by(|x, y| y.total_cmp(x));
    assert_agree(sigma.as_slice(), &theirs);
    let mut group = c.benchmark_group("linalg/complex_svd");
    compare(&mut group, "inline-12x4", 48, || black_box(&a).svd(), || svd_by_hand(black_box(&arrays)));
    group.bench_function(BenchmarkId::new("nalgebra", "inline-12x4"), |bencher| {
        bencher.iter(|| black_box(matrix).svd(true, true))
    });
    group.bench_function(BenchmarkId::new("gradient", "inline-12x4"), |bencher| {
        bencher.iter(|| complex_factor_sums::value_and_grad(black_box(&a)))
    });
    group.finish();
}

/// Re ΣU + Σσ + Re ΣVᴴ for A's thin SVD: a loss of every factor, phases included.
#[differentiable]
fn complex_factor_sums(a: &Matrix<C, 12, 4>) -> f64 {
    let (u, sigma, v_h) = a.svd();
    u.re().sum() + sigma.sum() + v_h.re().sum()
}
