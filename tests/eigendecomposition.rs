//! Symmetric and Hermitian eigendecompositions at every size from 0 to 48 and on
//! matrices that test a tridiagonal QR: eigenvalues against nalgebra's (an
//! independent implementation), A·V = V·diag(λ) and VᴴV = I to rounding relative to
//! ‖A‖, ascending order and each eigenvector's largest entry real and positive;
//! complex ones against the real symmetric matrix of twice the size whose
//! eigenvalues are theirs, each twice. Then close pairs (Wilkinson's W₂₁⁺), repeated
//! eigenvalues, decoupled blocks, graded entries, scalings near the ends of the
//! floating-point range, `f32` and inline storage.

use fluxion::prelude::*;

type Real = Tensor<f64, (Dyn, Dyn), Heap>;
type Hermitian = Tensor<Complex64, (Dyn, Dyn), Heap>;

/// Uniform numbers in (−1, 1) from a fixed sequence.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn symmetric(n: usize, numbers: &mut Numbers) -> Real {
    let b = Real::from_flat_fn((Dyn(n), Dyn(n)), |_| numbers.next());
    &b + &b.transpose()
}

fn hermitian(n: usize, numbers: &mut Numbers) -> Hermitian {
    let b = Hermitian::from_flat_fn((Dyn(n), Dyn(n)), |_| Complex64::new(numbers.next(), numbers.next()));
    &b + &b.conj_transpose()
}

fn largest_entry<T: Scalar>(a: &[T]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs().to_f64()))
}

/// ‖A·V − V·diag(λ)‖ and ‖VᴴV − I‖ (largest entries), the order of λ and each
/// column has an entry of its largest magnitude (up to rounding: entries of equal
/// magnitude tie) that is real and positive.
fn check_decomposition<T: Scalar>(a: &[T], values: &[T::Real], v: &[T], n: usize, tolerance: f64) {
    let scale = largest_entry(a).max(f64::MIN_POSITIVE);
    for i in 0..n {
        for j in 0..n {
            let av = (0..n).fold(T::zero(), |t, k| t + a[i * n + k] * v[k * n + j]);
            let residual = (av - v[i * n + j] * T::from_real(values[j])).abs().to_f64();
            assert!(residual <= tolerance * n as f64 * scale, "n = {n}: (AV − VΛ)[{i}, {j}] = {residual:e}");
            let vv = (0..n).fold(T::zero(), |t, k| t + v[k * n + i].conj() * v[k * n + j]);
            let expected = if i == j { 1.0 } else { 0.0 };
            let gap = (vv - T::from_real(T::Real::from_f64(expected))).abs().to_f64();
            assert!(gap <= tolerance * n as f64, "n = {n}: (VᴴV − I)[{i}, {j}] = {gap:e}");
        }
    }
    for pair in values.windows(2) {
        assert!(pair[0] <= pair[1], "n = {n}: eigenvalues out of order");
    }
    for j in 0..n {
        let column: Vec<T> = (0..n).map(|i| v[i * n + j]).collect();
        let largest = largest_entry(&column);
        let anchored = column.iter().any(|x| {
            x.abs().to_f64() >= largest * (1.0 - 1e-12) && x.re().to_f64() > 0.0 && x.im().to_f64() == 0.0
        });
        assert!(anchored, "n = {n}: no entry of column {j}'s largest magnitude is real and positive");
    }
}

fn nalgebra_eigenvalues(a: &Real) -> Vec<f64> {
    let n = a.shape().0.size();
    if n == 0 {
        return Vec::new(); // nalgebra refuses an empty matrix
    }
    let matrix = nalgebra::DMatrix::from_row_slice(n, n, a.as_slice());
    let mut values: Vec<f64> = matrix.symmetric_eigenvalues().iter().copied().collect();
    values.sort_by(f64::total_cmp);
    values
}

fn assert_close(ours: &[f64], reference: &[f64], tolerance: f64, what: &str) {
    assert_eq!(ours.len(), reference.len());
    for (k, (x, y)) in ours.iter().zip(reference).enumerate() {
        assert!((x - y).abs() <= tolerance, "{what}: eigenvalue {k}: {x} against {y}");
    }
}

#[test]
fn real_symmetric_matrices_of_every_size() {
    let mut numbers = Numbers(1);
    for n in 0..=48 {
        let a = symmetric(n, &mut numbers);
        let (values, vectors) = a.symmetric_eigen();
        check_decomposition(a.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
        let reference = nalgebra_eigenvalues(&a);
        assert_close(values.as_slice(), &reference, 1e-13 * n as f64, &format!("n = {n}"));
        assert_eq!(a.symmetric_eigenvalues().as_slice(), values.as_slice(), "n = {n}: values alone");
    }
}

#[test]
fn hermitian_matrices_of_every_size() {
    let mut numbers = Numbers(2);
    for n in 0..=40 {
        let h = hermitian(n, &mut numbers);
        let (values, vectors) = h.hermitian_eigen();
        check_decomposition(h.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
        // [[Re H, −Im H], [Im H, Re H]] has H's eigenvalues, each twice.
        let embedded = Real::from_flat_fn((Dyn(2 * n), Dyn(2 * n)), |k| {
            let (i, j) = (k / (2 * n), k % (2 * n));
            let x = h.as_slice()[(i % n) * n + j % n];
            match (i < n, j < n) {
                (true, true) | (false, false) => x.re,
                (true, false) => -x.im,
                (false, true) => x.im,
            }
        });
        let doubled: Vec<f64> = values.as_slice().iter().flat_map(|&x| [x, x]).collect();
        assert_close(&doubled, &nalgebra_eigenvalues(&embedded), 1e-13 * n as f64, &format!("n = {n}"));
        assert_eq!(h.hermitian_eigenvalues().as_slice(), values.as_slice(), "n = {n}: values alone");
    }
}

/// W₂₁⁺: tridiagonal, 1 off the diagonal and |10 − i| on it; its largest
/// eigenvalues come in pairs that agree to 15 digits, whose eigenvectors must still
/// come out orthogonal.
#[test]
fn close_pairs_of_wilkinsons_matrix() {
    let n = 21;
    let w = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| {
        let (i, j) = (k / n, k % n);
        if i == j {
            (10.0 - i as f64).abs()
        } else if i.abs_diff(j) == 1 {
            1.0
        } else {
            0.0
        }
    });
    let (values, vectors) = w.symmetric_eigen();
    check_decomposition(w.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
    let largest = values.as_slice()[n - 1];
    assert!((largest - 10.746194182903393).abs() < 1e-12, "{largest}");
    assert!((values.as_slice()[n - 1] - values.as_slice()[n - 2]).abs() < 1e-12);
    assert_close(values.as_slice(), &nalgebra_eigenvalues(&w), 1e-13, "W21+");
}

#[test]
fn repeated_eigenvalues_and_decoupled_blocks() {
    // The identity, a diagonal with repeats, and blocks that the reduction leaves
    // apart (zeros on the subdiagonal from the start).
    let n = 9;
    let identity = Real::identity_sized(Dyn(n));
    let (values, vectors) = identity.symmetric_eigen();
    assert!(values.as_slice().iter().all(|&x| x == 1.0));
    assert_eq!(vectors.as_slice(), identity.as_slice());

    let diagonal = [3.0, -1.0, 3.0, 0.0, 2.0, -1.0, 5.0, 0.0, 3.0];
    let d = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| if k / n == k % n { diagonal[k / n] } else { 0.0 });
    let (values, vectors) = d.symmetric_eigen();
    let mut sorted = diagonal.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(values.as_slice(), sorted.as_slice());
    // Each eigenvector is a coordinate vector: one entry 1, the rest 0.
    for j in 0..n {
        let ones = (0..n).filter(|&i| vectors.as_slice()[i * n + j] == 1.0).count();
        let zeros = (0..n).filter(|&i| vectors.as_slice()[i * n + j] == 0.0).count();
        assert_eq!((ones, zeros), (1, n - 1), "column {j}");
    }

    let mut numbers = Numbers(3);
    let block = symmetric(4, &mut numbers);
    let blocks = Real::from_flat_fn((Dyn(12), Dyn(12)), |k| {
        let (i, j) = (k / 12, k % 12);
        if i / 4 == j / 4 { block.as_slice()[(i % 4) * 4 + j % 4] * (1 + i / 4) as f64 } else { 0.0 }
    });
    let (values, vectors) = blocks.symmetric_eigen();
    check_decomposition(blocks.as_slice(), values.as_slice(), vectors.as_slice(), 12, 1e-14);
    assert_close(values.as_slice(), &nalgebra_eigenvalues(&blocks), 1e-13, "blocks");

    // Complex blocks: a zero on the subdiagonal, which takes no phase.
    let block = hermitian(3, &mut numbers);
    let blocks = Hermitian::from_flat_fn((Dyn(6), Dyn(6)), |k| {
        let (i, j) = (k / 6, k % 6);
        if i / 3 == j / 3 {
            block.as_slice()[(i % 3) * 3 + j % 3] * (1 + i / 3) as f64
        } else {
            Complex64::new(0.0, 0.0)
        }
    });
    let (values, vectors) = blocks.hermitian_eigen();
    check_decomposition(blocks.as_slice(), values.as_slice(), vectors.as_slice(), 6, 1e-14);
    let (block_values, _) = block.hermitian_eigen();
    let mut expected: Vec<f64> = block_values.as_slice().iter().flat_map(|&x| [x, 2.0 * x]).collect();
    expected.sort_by(f64::total_cmp);
    assert_close(values.as_slice(), &expected, 1e-14, "complex blocks");
}

#[test]
fn graded_and_badly_scaled_matrices() {
    // Entries 10^−(i+j): eigenvalues from 1 down past 10⁻³⁰; each is within
    // rounding of the largest.
    let n = 8;
    let graded = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| {
        10f64.powi(-((k / n + k % n) as i32)) * if k % 3 == 0 { -1.0 } else { 1.0 }
    });
    let graded = &graded + &graded.transpose();
    let (values, vectors) = graded.symmetric_eigen();
    check_decomposition(graded.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
    assert_close(values.as_slice(), &nalgebra_eigenvalues(&graded), 1e-14, "graded");

    // Scaled by 2¹⁰⁰⁰, 2⁻¹⁰⁰⁰ and 2⁻¹⁰²⁰ (where the smaller entries become
    // subnormal and lose digits): the eigenvalues scale with the matrix, the vectors
    // do not change, to rounding.
    let mut numbers = Numbers(4);
    let a = symmetric(10, &mut numbers);
    let (values, vectors) = a.symmetric_eigen();
    for factor in [2f64.powi(1000), 2f64.powi(-1000), 2f64.powi(-1020)] {
        let scaled = a.map(|x| x * factor);
        let (scaled_values, scaled_vectors) = scaled.symmetric_eigen();
        for (x, y) in scaled_values.as_slice().iter().zip(values.as_slice()) {
            assert!((x / factor - y).abs() <= 1e-14 * 10.0, "{factor:e}: {x:e} against {y:e}");
        }
        for (x, y) in scaled_vectors.as_slice().iter().zip(vectors.as_slice()) {
            assert!((x - y).abs() <= 1e-13, "{factor:e}: a vector entry {x} against {y}");
        }
    }
}

fn real(rows: &[&[f64]]) -> Real {
    let n = rows.len();
    Real::from_flat_fn((Dyn(n), Dyn(n)), |k| rows[k / n][k % n])
}

/// Blocks whose coupling is far below the largest entry: a shift from b² would
/// underflow (and a QR step on equal diagonal entries then only swap them), and
/// Householder vectors whose squares are subnormal.
#[test]
fn couplings_far_below_the_largest_entry() {
    // Eigenvalues 0, 2 and 10²⁰⁰; then ±10⁻³⁰⁰ and 1.
    let cases: [(Real, [f64; 3]); 3] = [
        (real(&[&[1e200, 0.0, 0.0], &[0.0, 1.0, 1.0], &[0.0, 1.0, 1.0]]), [0.0, 2.0, 1e200]),
        (real(&[&[1.0, 0.0, 0.0], &[0.0, 0.0, 1e-300], &[0.0, 1e-300, 0.0]]), [-1e-300, 1e-300, 1.0]),
        (real(&[&[0.0, 1e-200, 0.0], &[1e-200, 0.0, 0.0], &[0.0, 0.0, 1.0]]), [-1e-200, 1e-200, 1.0]),
    ];
    for (a, expected) in &cases {
        let (values, vectors) = a.symmetric_eigen();
        check_decomposition(a.as_slice(), values.as_slice(), vectors.as_slice(), 3, 1e-15);
        for (x, y) in values.as_slice().iter().zip(expected) {
            assert!((x - y).abs() <= 1e-15 * y.abs().max(1e-300), "{x:e} against {y:e}");
        }
    }
    // [[0, a, a], [a, 1, 0], [a, 0, 0]], a = 10⁻¹⁶¹: the reflection of (a, a) squares
    // subnormal numbers. Eigenvalues 1 + a² ≈ 1 and two of size about a.
    let a = 1e-161;
    let subnormal = real(&[&[0.0, a, a], &[a, 1.0, 0.0], &[a, 0.0, 0.0]]);
    let (values, vectors) = subnormal.symmetric_eigen();
    check_decomposition(subnormal.as_slice(), values.as_slice(), vectors.as_slice(), 3, 1e-15);
    assert!((values.as_slice()[2] - 1.0).abs() <= 1e-15, "{}", values.as_slice()[2]);
    // The same in single precision.
    let single: Tensor<f32, (Dyn, Dyn), Heap> =
        real(&[&[1e30, 0.0, 0.0], &[0.0, 1.0, 1.0], &[0.0, 1.0, 1.0]]).map(|x| x as f32);
    let (values, _) = single.symmetric_eigen();
    for (x, y) in values.as_slice().iter().zip([0.0, 2.0, 1e30f32]) {
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{:?}", values.as_slice());
    }
    let single: Tensor<f32, (Dyn, Dyn), Heap> =
        real(&[&[1.0, 1.0, 1.0], &[1.0, 1e22, 0.0], &[1.0, 0.0, 0.0]]).map(|x| x as f32);
    let (values, vectors) = single.symmetric_eigen();
    check_decomposition(single.as_slice(), values.as_slice(), vectors.as_slice(), 3, 3e-7);
}

#[test]
fn single_precision_and_inline_storage() {
    let mut numbers = Numbers(5);
    let a = symmetric(16, &mut numbers);
    let single: Tensor<f32, (Dyn, Dyn), Heap> = a.map(|x| x as f32);
    let (values, vectors) = single.symmetric_eigen();
    check_decomposition(single.as_slice(), values.as_slice(), vectors.as_slice(), 16, 3e-7);
    let reference = nalgebra_eigenvalues(&a);
    let widened: Vec<f64> = values.as_slice().iter().map(|&x| f64::from(x)).collect();
    assert_close(&widened, &reference, 1e-5, "f32");

    let h = hermitian(6, &mut numbers);
    let inline: Matrix<Complex64, 6, 6> = Matrix::from_fn(|[i, j]| h.as_slice()[i * 6 + j]);
    let (values, vectors) = inline.hermitian_eigen();
    let (heap_values, heap_vectors) = h.hermitian_eigen();
    assert_eq!(values.as_slice(), heap_values.as_slice());
    assert_eq!(vectors.as_slice(), heap_vectors.as_slice());
}

#[test]
fn infinite_and_nan_entries_give_nan() {
    for bad in [f64::INFINITY, f64::NAN] {
        let mut numbers = Numbers(6);
        let a = symmetric(5, &mut numbers);
        let a = Real::from_flat_fn((Dyn(5), Dyn(5)), |k| if k == 7 { bad } else { a.as_slice()[k] });
        let (values, vectors) = a.symmetric_eigen();
        assert!(values.as_slice().iter().chain(vectors.as_slice()).all(|x| x.is_nan()));
    }
}

/// Matrices that are tridiagonal already, which the reduction leaves as they are:
/// negative subdiagonal entries (real) and complex ones, whose phases are taken out.
#[test]
fn tridiagonal_inputs_with_signs_and_phases() {
    let n = 17;
    let mut numbers = Numbers(7);
    let mut couplings: Vec<f64> = (0..n).map(|_| numbers.next()).collect();
    couplings[5] = 0.0;
    let real = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| {
        let (i, j) = (k / n, k % n);
        if i == j {
            0.1 * i as f64
        } else if i.abs_diff(j) == 1 {
            couplings[i.min(j)]
        } else {
            0.0
        }
    });
    let (values, vectors) = real.symmetric_eigen();
    check_decomposition(real.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
    assert_close(values.as_slice(), &nalgebra_eigenvalues(&real), 1e-14, "real tridiagonal");

    let phases: Vec<Complex64> =
        (0..n).map(|_| Complex64::from_polar(numbers.next(), 3.0 * numbers.next())).collect();
    let complex = Hermitian::from_flat_fn((Dyn(n), Dyn(n)), |k| {
        let (i, j) = (k / n, k % n);
        if i == j {
            Complex64::new(0.1 * i as f64, 0.0)
        } else if i == j + 1 {
            phases[j]
        } else if j == i + 1 {
            phases[i].conj()
        } else {
            Complex64::new(0.0, 0.0)
        }
    });
    let (values, vectors) = complex.hermitian_eigen();
    check_decomposition(complex.as_slice(), values.as_slice(), vectors.as_slice(), n, 1e-14);
    // The moduli of the couplings give the same eigenvalues (a diagonal of phases
    // makes one matrix the other).
    let moduli = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| complex.as_slice()[k].norm());
    let moduli = Real::from_flat_fn((Dyn(n), Dyn(n)), |k| {
        if k / n == k % n { complex.as_slice()[k].re } else { moduli.as_slice()[k] }
    });
    assert_close(values.as_slice(), &nalgebra_eigenvalues(&moduli), 1e-14, "complex tridiagonal");
}
