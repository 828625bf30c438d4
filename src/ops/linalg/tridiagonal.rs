//! The Hermitian eigenproblem in two stages, on a Hermitian matrix S (n×n, row-major,
//! both triangles held) and, optionally, the columns of V:
//! - [`tridiagonalize`]: S ← QᴴSQ, tridiagonal with a real off-diagonal, by n − 2
//!   Householder reflections P = I − β·u·uᴴ (β = 2/|u|², P Hermitian and unitary),
//!   each zeroing one column below its subdiagonal, then (complex S) a diagonal of
//!   phases that makes the subdiagonal real; V ← V·Q;
//! - [`tridiagonal_qr`]: that real symmetric tridiagonal matrix to diagonal form by
//!   implicit QR steps with Wilkinson's shift, each a chase of rotations down the
//!   band (Golub and Van Loan, *Matrix Computations*, §8.3); V ← V·J for each
//!   rotation J.
//!
//! LAPACK's `sytrd` and `steqr` work so (its `syevd` ends in divide and conquer
//! instead of the QR steps): about 4n³/3
//! real operations for the reflections and O(n²) for the values; with the vectors,
//! 6n³ or so more for the rotations' updates of V. A Jacobi sweep alone takes ~4n³.

use num_traits::{One, Zero};

use super::parts::{Divisor, largest_part, over_real, polar, times_real};
use super::rotated;
use crate::backend::cpu::dot;
use crate::scalar::{RealScalar, Scalar};

/// The columns of one pass of [`tridiagonalize`]'s rank-2 update, whose q entries
/// (held down a column) it copies to the stack, so that the update runs along rows.
const UPDATE_BLOCK: usize = 32;

/// Reduces the Hermitian `s` (n×n) to tridiagonal form in place: afterwards its
/// diagonal and subdiagonal (sᵢ₊₁,ᵢ, real and, for complex S, non-negative) hold the
/// tridiagonal matrix T = QᴴSQ; its other entries are left meaningless. `vectors`
/// (n columns), when given, becomes V·Q.
///
/// Step k (skipped where x is 0 but for x₀) reflects x = S[k+1.., k] onto −φ|x|·e₁
/// (φ = x₀/|x₀|, 1 for x₀ = 0) with u = x + φ|x|·e₁ scaled to u₀ = 1, and updates
/// the trailing block as
/// S ← P·S·P = S − u·qᴴ − q·uᴴ, p = β·S·u, q = p − ½β(uᴴp)·u; then
/// V ← V·P = V − β·(V·u)·uᴴ. The step keeps u in row k right of the diagonal and q
/// (but q₀) in column k below the subdiagonal, places whose values the tridiagonal
/// matrix does not need.
pub(super) fn tridiagonalize<T: Scalar>(s: &mut [T], n: usize, mut vectors: Option<&mut [T]>) {
    let zero = T::Real::zero();
    let (one, half) = (T::Real::one(), T::Real::from_f64(0.5));
    let same = |x: T| x;
    let mut q_columns = [T::zero(); UPDATE_BLOCK];
    for k in 0..n.saturating_sub(2) {
        // The reflection acts on rows and columns `first..n`.
        let (first, m) = (k + 1, n - k - 1);
        // A column already 0 below its subdiagonal needs no reflection (P = I; the
        // phase of a complex subdiagonal entry is taken out after): a tridiagonal
        // matrix costs O(n²) comparisons here instead of O(n³) operations.
        if (first + 1..n).all(|i| s[i * n + k] == T::zero()) {
            continue;
        }
        let head = s[first * n + k];
        let (head_size, phase) = if head == T::zero() { (zero, T::one()) } else { polar(head) };
        let length = column_length(s, n, k);
        // u = x/u₀ with u₀ = φ(|x₀| + |x|).
        let leading = times_real(phase, head_size + length);
        let divisor = Divisor::new(leading);
        s[k * n + first] = T::one();
        let mut u_squares = zero;
        for j in 1..m {
            let u = divisor.divide(s[(first + j) * n + k]);
            s[k * n + first + j] = u;
            u_squares += u.norm_sqr();
        }
        // β = 2/|u|² from the stored u (|uⱼ| ≤ 1), so that P is unitary to rounding.
        let beta = T::Real::from_f64(2.0) / (one + u_squares);
        s[first * n + k] = -times_real(phase, length);

        // p = β·S·u, p₀ in a local and the rest in column k below the subdiagonal.
        let (above, block) = s.split_at_mut(first * n);
        let u = &above[k * n + first..k * n + n];
        let row_times_u =
            |block: &[T], i: usize| times_real(dot(&block[i * n + first..(i + 1) * n], u, same, same), beta);
        let p_head = row_times_u(block, 0);
        let mut u_p = p_head.re();
        for i in 1..m {
            let p = row_times_u(block, i);
            block[i * n + k] = p;
            u_p += (u[i].conj() * p).re();
        }
        // q = p − ½β(uᴴp)·u.
        let along_u = half * beta * u_p;
        let q_head = p_head - T::from_real(along_u);
        for i in 1..m {
            block[i * n + k] -= times_real(u[i], along_u);
        }
        // S ← S − u·qᴴ − q·uᴴ, UPDATE_BLOCK columns at a time with their q̄ on the stack.
        let q_at = |block: &[T], i: usize| if i == 0 { q_head } else { block[i * n + k] };
        for start in (0..m).step_by(UPDATE_BLOCK) {
            let width = UPDATE_BLOCK.min(m - start);
            for (j, q) in q_columns[..width].iter_mut().enumerate() {
                *q = q_at(block, start + j).conj();
            }
            let u_columns = &u[start..start + width];
            for i in 0..m {
                let (u_i, q_i) = (u[i], q_at(block, i));
                let row = &mut block[i * n + first + start..i * n + first + start + width];
                for ((x, &q_j), &u_j) in row.iter_mut().zip(&q_columns[..width]).zip(u_columns) {
                    *x -= u_i * q_j + q_i * u_j.conj();
                }
            }
        }
        // V ← V − β·(V·u)·uᴴ, row by row.
        if let Some(v) = vectors.as_deref_mut() {
            let u = &s[k * n + first..k * n + n];
            for row in v.chunks_exact_mut(n) {
                let row = &mut row[first..];
                let scaled = times_real(dot(row, u, same, same), beta);
                for (x, &u) in row.iter_mut().zip(u) {
                    *x -= scaled * u.conj();
                }
            }
        }
    }
    if T::IS_COMPLEX {
        make_subdiagonal_real(s, n, vectors);
    }
}

/// |x| for x = S[k+1.., k]: from the squares where their sum is at least min/ε²
/// (each square that matters then normal), else from x divided by its largest part
/// (a column whose squares are subnormal would lose digits).
fn column_length<T: Scalar>(s: &[T], n: usize, k: usize) -> T::Real {
    let column = || (k + 1..n).map(|i| s[i * n + k]);
    let squares = column().fold(T::Real::zero(), |total, x| total + x.norm_sqr());
    let epsilon = T::Real::epsilon();
    if squares >= T::Real::min_positive() / (epsilon * epsilon) {
        return squares.sqrt();
    }
    let largest = column().fold(T::Real::zero(), |largest, x| largest.max(largest_part(x)));
    if largest == T::Real::zero() {
        return largest;
    }
    let scaled = column().fold(T::Real::zero(), |total, x| total + over_real(x, largest).norm_sqr());
    largest * scaled.sqrt()
}

/// T ← DᴴTD and V ← V·D for the tridiagonal T of [`tridiagonalize`] and D =
/// diag(δ₀ = 1, δ₁, …), δᵢ₊₁ = δᵢ·tᵢ₊₁,ᵢ/|tᵢ₊₁,ᵢ|: each subdiagonal entry becomes
/// its modulus.
fn make_subdiagonal_real<T: Scalar>(s: &mut [T], n: usize, mut vectors: Option<&mut [T]>) {
    let mut delta = T::one();
    for i in 0..n.saturating_sub(1) {
        let entry = s[(i + 1) * n + i];
        if entry != T::zero() {
            let (modulus, phase) = polar(entry);
            delta *= phase;
            s[(i + 1) * n + i] = T::from_real(modulus);
        }
        for x in vectors.iter_mut().flat_map(|v| v.iter_mut().skip(i + 1).step_by(n)) {
            *x *= delta;
        }
    }
}

/// Diagonalises the real symmetric tridiagonal matrix that [`tridiagonalize`]
/// leaves in `s` (its diagonal and subdiagonal; n×n) in place, the rotations
/// applied to `transposed` = Vᵀ too when given (V ← V·J: J combines columns of V,
/// rows of Vᵀ, which lie in memory together). Returns whether every subdiagonal
/// entry fell below rounding within 30n steps (Wilkinson's shift converges, in
/// practice in two or three steps per eigenvalue).
///
/// A subdiagonal entry eᵢ is negligible, and set to 0, where |eᵢ| ≤ ε(|dᵢ| + |dᵢ₊₁|)
/// or eᵢ is below the smallest normal number. Each step runs on the last unreduced
/// block [low, high]: the shift μ is the eigenvalue of its trailing 2×2 nearer its
/// last entry, and the rotations J (c, s) of (k, k + 1), k = low, …, high − 1, chase
/// the bulge that the first (from (d_low − μ, e_low)) makes down the band.
pub(super) fn tridiagonal_qr<T: Scalar>(s: &mut [T], n: usize, mut transposed: Option<&mut [T]>) -> bool {
    let diagonal = |i: usize| i * (n + 1);
    let below = |i: usize| (i + 1) * n + i;
    let (zero, one, two) = (T::Real::zero(), T::Real::one(), T::Real::from_f64(2.0));
    let (epsilon, smallest) = (T::Real::epsilon(), T::Real::min_positive());
    let mut steps = 0;
    let mut high = n.saturating_sub(1);
    while high > 0 {
        let mut low = high;
        while low > 0 {
            let e = s[below(low - 1)].re().abs();
            let scale = s[diagonal(low - 1)].re().abs() + s[diagonal(low)].re().abs();
            if e <= epsilon * scale || e < smallest {
                s[below(low - 1)] = T::zero();
                break;
            }
            low -= 1;
        }
        if low == high {
            high -= 1;
            continue;
        }
        steps += 1;
        if steps > 30 * n {
            return false;
        }
        let (a, b, c) = (s[diagonal(high - 1)].re(), s[below(high - 1)].re(), s[diagonal(high)].re());
        let delta = (a - c) / two;
        let root = hypot(delta, b);
        // b·(b/(δ ± r)), not b²/(δ ± r): the ratio is at most 1 in size, where b² can
        // underflow (a QR step on a block of equal diagonal entries would then only
        // swap them).
        let shift = c - b * (b / (if delta < zero { delta - root } else { delta + root }));
        let mut x = s[diagonal(low)].re() - shift;
        let mut z = s[below(low)].re();
        for k in low..high {
            let r = hypot(x, z);
            let (cosine, sine) = if r == zero { (one, zero) } else { (x / r, -z / r) };
            if k > low {
                s[below(k - 1)] = T::from_real(r);
            }
            let (a, b, m) = (s[diagonal(k)].re(), s[below(k)].re(), s[diagonal(k + 1)].re());
            let (cc, ss, cs) = (cosine * cosine, sine * sine, cosine * sine);
            s[diagonal(k)] = T::from_real(cc * a - two * cs * b + ss * m);
            s[diagonal(k + 1)] = T::from_real(ss * a + two * cs * b + cc * m);
            let coupling = cs * (a - m) + (cc - ss) * b;
            s[below(k)] = T::from_real(coupling);
            if k + 1 < high {
                let next = s[below(k + 1)].re();
                (x, z) = (coupling, -sine * next);
                s[below(k + 1)] = T::from_real(cosine * next);
            }
            if let Some(v) = transposed.as_deref_mut() {
                let (upper, lower) = v.split_at_mut((k + 1) * n);
                for (first, second) in upper[k * n..].iter_mut().zip(&mut lower[..n]) {
                    (*first, *second) = rotated((*first, *second), (cosine, sine));
                }
            }
        }
    }
    true
}

/// √(x² + z²), from the squares where their sum is finite and at least
/// min/ε² (the larger square then exact to rounding, and the smaller one, if it
/// underflowed, negligible beside it), else from x and z divided by the larger.
#[inline(always)]
fn hypot<T: RealScalar>(x: T, z: T) -> T {
    let squares = x * x + z * z;
    let epsilon = T::epsilon();
    if squares >= T::min_positive() / (epsilon * epsilon) && squares < -T::neg_infinity() {
        return squares.sqrt();
    }
    let largest = x.abs().max(z.abs());
    if largest == T::zero() {
        return largest;
    }
    let (x, z) = (x / largest, z / largest);
    largest * (x * x + z * z).sqrt()
}
