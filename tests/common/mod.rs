//! Helpers shared by the integration tests: approximate comparison, independent
//! reference computations, deterministic test data and panic capture.
//!
//! Each test file includes this module with `mod common;` and uses a subset of it.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use fluxion::prelude::*;

/// Converts any element type to `Complex64`, so that references can be computed in
/// double precision whatever the element type under test.
pub fn to_c64<T: Scalar>(x: T) -> Complex64 {
    Complex64::new(x.re().to_f64(), x.im().to_f64())
}

/// Builds an element of type `T` from a complex double (the imaginary part is dropped
/// for real types).
pub fn from_c64<T: Scalar>(z: Complex64) -> T {
    T::from_parts(T::Real::from_f64(z.re), T::Real::from_f64(z.im))
}

/// Machine epsilon of the real type underlying `T`, as `f64`.
pub fn eps_of<T: Scalar>() -> f64 {
    T::Real::epsilon().to_f64()
}

/// `|actual − expected| ≤ rtol · max(1, |expected|)`, compared in double precision.
pub fn close<T: Scalar>(actual: T, expected: T, rtol: f64) -> bool {
    let (a, e) = (to_c64(actual), to_c64(expected));
    (a - e).norm() <= rtol * e.norm().max(1.0)
}

/// Asserts [`close`], naming both values on failure.
#[track_caller]
pub fn assert_close<T: Scalar>(actual: T, expected: T, rtol: f64) {
    assert!(close(actual, expected, rtol), "{actual} is not within rtol {rtol} of {expected}");
}

/// Asserts [`close`] element by element for two sequences of equal length.
#[track_caller]
pub fn assert_all_close<T: Scalar>(actual: &[T], expected: &[T], rtol: f64) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(close(a, e, rtol), "element {index}: {a} is not within rtol {rtol} of {e}");
    }
}

/// Asserts that `actual` is the product `a·b` of row-major `m×k` and `k×n` matrices,
/// computed independently by a naive triple loop in double precision. The error
/// allowed for entry (i, j) is `rtol · Σₚ |aᵢₚ|·|bₚⱼ|` (the standard forward-error
/// bound of a dot product), so cancellation does not cause false failures.
#[track_caller]
pub fn assert_matmul_close<T: Scalar>(
    actual: &[T],
    a: &[T],
    b: &[T],
    (m, k, n): (usize, usize, usize),
    rtol: f64,
) {
    assert_eq!(a.len(), m * k, "left operand length");
    assert_eq!(b.len(), k * n, "right operand length");
    assert_eq!(actual.len(), m * n, "product length");
    for i in 0..m {
        for j in 0..n {
            let mut exact = Complex64::new(0.0, 0.0);
            let mut magnitude = 0.0;
            for p in 0..k {
                let (x, y) = (to_c64(a[i * k + p]), to_c64(b[p * n + j]));
                exact += x * y;
                magnitude += x.norm() * y.norm();
            }
            let got = to_c64(actual[i * n + j]);
            assert!(
                (got - exact).norm() <= rtol * magnitude.max(f64::MIN_POSITIVE),
                "entry ({i}, {j}) of a {m}×{k}·{k}×{n} product: got {got}, expected {exact}"
            );
        }
    }
}

/// A small, self-contained generator (SplitMix64) for deterministic test data that
/// does not depend on the library's own random initialisation.
pub struct TestRng(u64);

impl TestRng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniform in `[-1, 1)`.
    pub fn signed_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    /// An element of type `T` with real (and, for complex types, imaginary) part in
    /// `[-1, 1)`.
    pub fn element<T: Scalar>(&mut self) -> T {
        let re = self.signed_unit();
        let im = self.signed_unit();
        from_c64(Complex64::new(re, im))
    }

    /// `n` elements of type `T`.
    pub fn elements<T: Scalar>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| self.element()).collect()
    }
}

/// Runs `f`, expecting it to panic, and returns the panic message.
#[track_caller]
pub fn panic_message<R>(f: impl FnOnce() -> R) -> String {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("the operation was expected to panic but returned normally"),
        Err(payload) => payload,
    };
    if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_string()
    } else {
        panic!("the panic payload is not a string")
    }
}

/// Asserts that a shape error's message names both shapes, written as `[a, b, …]`.
#[track_caller]
pub fn assert_names_shapes(error: &ShapeError, lhs: &[usize], rhs: &[usize]) {
    let message = error.to_string();
    for shape in [lhs, rhs] {
        let written = format!("{shape:?}");
        assert!(message.contains(&written), "the message {message:?} does not name the shape {written}");
    }
    assert_eq!(error.lhs().as_slice(), lhs, "lhs of {message:?}");
    assert_eq!(error.rhs().as_slice(), rhs, "rhs of {message:?}");
}

/// The largest |xᵢ − yᵢ| of two tensors, NaN if any difference is NaN (so that a
/// NaN fails a `<` test).
pub fn distance<S: Shape, K: Storage<f64, S>>(x: &Tensor<f64, S, K>, y: &Tensor<f64, S, K>) -> f64 {
    real_distance(x.as_slice(), y.as_slice())
}

/// [`distance`] of two lists of numbers of one length.
pub fn real_distance(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    largest_gap(x.iter().zip(y).map(|(a, b)| (a - b).abs()))
}

/// [`distance`] of two lists of complex numbers of one length: the largest |xᵢ − yᵢ|.
pub fn complex_distance(x: &[Complex64], y: &[Complex64]) -> f64 {
    assert_eq!(x.len(), y.len());
    largest_gap(x.iter().zip(y).map(|(a, b)| (a - b).norm()))
}

/// The largest gap, NaN if any is NaN.
fn largest_gap(gaps: impl Iterator<Item = f64>) -> f64 {
    gaps.fold(0.0, |worst, gap| if gap.is_nan() || gap > worst { gap } else { worst })
}

/// Re Σ conj(xᵢ)·yᵢ, the real inner product under which the crate's complex
/// cotangents are adjoints of tangents.
pub fn real_inner(x: &[Complex64], y: &[Complex64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (a.conj() * b).re).sum()
}

/// [`distance`] relative to the largest |yᵢ|, or absolute where that is below 1.
pub fn relative_distance<S: Shape, K: Storage<f64, S>>(x: &Tensor<f64, S, K>, y: &Tensor<f64, S, K>) -> f64 {
    distance(x, y) / y.as_slice().iter().fold(1.0f64, |largest, v| largest.max(v.abs()))
}

/// A 5×3 matrix with orthonormal columns and a 3×3 orthogonal matrix, the Q factors
/// of fixed well-conditioned matrices: singular vectors for matrices of known
/// singular values.
pub fn orthonormal_factors() -> (Matrix<f64, 5, 3>, Matrix<f64, 3, 3>) {
    let left: Matrix<f64, 5, 3> =
        Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 + if i == j { 1.0 } else { 0.0 });
    let right: Matrix<f64, 3, 3> =
        Matrix::from_fn(|[i, j]| ((i * 5 + j * 2) % 7) as f64 / 7.0 + if i == j { 1.0 } else { 0.0 });
    (left.qr().0, right.qr().0)
}
