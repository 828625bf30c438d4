//! `exp`, `ln`, `tanh`, `erf` and `erfc` of `f32`, and `tanh` of `f64`, written without
//! branches or tables so that a loop of them over a slice vectorises.
//!
//! Each is computed in `f64` to about 2⁻³¹ relative and rounded once to `f32`: within
//! 1 ulp of the correctly rounded value, and that value itself but for about one
//! result in 10⁴ to 10⁵ that lies near a tie (tested against `f64` libm's value
//! rounded to `f32`: the unit tests sample every 997th bit pattern; a run over all
//! 2³² inputs found none further). Special values
//! (±∞, NaN, overflow, underflow to subnormals and 0) come out of the same
//! arithmetic, with the argument clamped by comparisons that let NaN through.
//!
//! - eˣ: x = k·ln 2 + r with k = round(x/ln 2) and |r| ≤ ln 2 / 2, so
//!   eˣ = 2ᵏ·eʳ with eʳ from its Taylor polynomial of degree 8 (truncation below
//!   2⁻³¹, which an `f32` result cannot resolve) and 2ᵏ built from k's bits.
//! - ln x = e·ln 2 + ln m for x = 2ᵉ·m with m ∈ [√½, √2), and
//!   ln m = 2·atanh s = Σ 2s²ʲ⁺¹/(2j + 1) with s = (m − 1)/(m + 1), seven terms.
//! - tanh x = (e²ˣ − 1)/(e²ˣ + 1), and x itself where |x| < 2⁻²⁶ (where x³/3 is below
//!   half an ulp of x).
//! - erfc |x| = e^(−x²)·g(t) with t = 1/(1 + 0.4|x|): g = erfcx is smooth on
//!   [0, 11] and a polynomial of degree 12 in t matches it to 3.1·10⁻¹¹ relative
//!   (least squares on Chebyshev nodes, `scripts/fit-erfc.py`); erfc x = 2 − erfc |x|
//!   for x < 0.
//! - erf x = x·Σ (−1)ⁿ (2/√π) x²ⁿ/(n!(2n + 1)) for |x| < 1 (13 terms), and
//!   ±(1 − erfc |x|) beyond, where erf ≥ 0.84 loses nothing to the subtraction.
//!
//! Both sides of each choice are computed and one is selected, as a vector unit does.
//! The rounding to an integer adds 1.5·2⁵², which needs `f64` arithmetic without
//! extended precision: true of every target with SSE2 or a floating-point unit of
//! IEEE doubles, not of x87-only ones (i586).
//!
//! A scalar call costs more than the platform's `expf` (a table and a short
//! polynomial) but less than its `tanhf` and libm's `erfcf`; in a loop compiled for
//! wide vectors ([`wide`](crate::backend::wide::wide): AVX-512 or AVX2) every one of
//! them is several times faster. `f64` keeps libm's functions but tanh ([`tanh_f64`]),
//! as fast as the C library's in a scalar loop and 9× faster on 65536 elements. (A
//! branch-free `f64` exp needs a polynomial of degree 13: in a scalar loop, where
//! dual numbers call it, 1.5× slower than the C library's table.)

/// 1.5·2⁵²: adding it to a float of magnitude below 2⁵¹ rounds to an integer,
/// which stands in the low bits of the sum.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;
/// Arguments are clamped to ±150: e¹⁵⁰ overflows `f32` and e⁻¹⁵⁰ is 0 in it, while
/// both are normal `f64`s, so 2ᵏ is one normal factor.
const EXP_ARGUMENT_BOUND: f64 = 150.0;

/// 1/(j + 2)! for j = 0..N: eʳ's Taylor coefficients from r² on.
const fn taylor_tail<const N: usize>() -> [f64; N] {
    let mut coefficients = [0.5; N];
    let mut j = 1;
    while j < N {
        coefficients[j] = coefficients[j - 1] / (j + 2) as f64;
        j += 1;
    }
    coefficients
}

/// eʳ's Taylor coefficients from r² to r⁸.
const EXP_TAYLOR_TAIL: [f64; 7] = taylor_tail();

/// 2/(2j + 1) for j = 0..7: ln m = Σ 2s²ʲ⁺¹/(2j + 1) with s = (m − 1)/(m + 1).
const LN_SERIES: [f64; 7] = {
    let mut coefficients = [0.0; 7];
    let mut j = 0;
    while j < 7 {
        coefficients[j] = 2.0 / (2 * j + 1) as f64;
        j += 1;
    }
    coefficients
};

/// erf's series in x²: (2/√π)·(−1)ⁿ/(n!(2n + 1)) for n = 0..13.
const ERF_SERIES: [f64; 13] = {
    let mut coefficients = [0.0; 13];
    let mut term = core::f64::consts::FRAC_2_SQRT_PI;
    let mut n = 0;
    while n < 13 {
        coefficients[n] = term / (2 * n + 1) as f64;
        term = -term / (n + 1) as f64;
        n += 1;
    }
    coefficients
};

/// erfcx(a) = e^(a²)·erfc(a) on a ∈ [0, 11], as a polynomial in
/// u = `ERFCX_SCALE`·t − `ERFCX_SHIFT` ∈ [−1, 1] with t = 1/(1 + 0.4a).
const ERFCX_FIT: [f64; 13] = [
    0.28912038963381176,
    0.39018325047856506,
    0.21882497226067066,
    0.08417908427479952,
    0.018552348928872003,
    0.0001886222930218345,
    -0.0010241981843674454,
    -9.796918078341932e-05,
    7.29111394157135e-05,
    6.9140167329312385e-06,
    -6.6468781166617585e-06,
    -1.9924645305868793e-07,
    5.204946676717892e-07,
];
const ERFCX_SCALE: f64 = 2.454_545_454_545_454;
const ERFCX_SHIFT: f64 = 1.454_545_454_545_454_4;
/// erfc(11) ≈ 1.4·10⁻⁵⁴ is 0 in `f32`: larger arguments are clamped to it.
const ERFC_LAST_ARGUMENT: f64 = 11.0;

/// `x` held to [`low`, `high`] by comparisons, so that NaN passes through.
#[inline(always)]
fn clamp(x: f64, low: f64, high: f64) -> f64 {
    if x < low {
        low
    } else if x > high {
        high
    } else {
        x
    }
}

/// Σ coefficients[j]·xʲ by Horner's rule.
#[inline(always)]
fn polynomial<const N: usize>(coefficients: &[f64; N], x: f64) -> f64 {
    let mut sum = coefficients[N - 1];
    let mut j = N - 1;
    while j > 0 {
        j -= 1;
        sum = sum * x + coefficients[j];
    }
    sum
}

/// Σ coefficients[j]·xʲ by Estrin's scheme: neighbouring terms paired with x, the
/// pairs paired with x², and so on, a dependency chain of log₂ N steps instead of
/// Horner's N (the products and sums in another order, and the powers of x).
#[inline(always)]
fn polynomial_estrin<const N: usize>(coefficients: &[f64; N], x: f64) -> f64 {
    let (mut terms, mut count, mut power) = (*coefficients, N, x);
    while count > 1 {
        let pairs = count.div_ceil(2);
        for i in 0..pairs {
            terms[i] = if 2 * i + 1 < count { terms[2 * i] + terms[2 * i + 1] * power } else { terms[2 * i] };
        }
        (count, power) = (pairs, power * power);
    }
    terms[0]
}

/// eˣ in `f64` to 2⁻³¹ relative (eʳ's Taylor polynomial of degree 8 after the
/// reduction): enough for a result rounded to `f32`.
#[inline(always)]
fn exp_for_f32(x: f64) -> f64 {
    let x = clamp(x, -EXP_ARGUMENT_BOUND, EXP_ARGUMENT_BOUND);
    let shifted = x * core::f64::consts::LOG2_E + ROUNDING_SHIFT;
    let k = shifted - ROUNDING_SHIFT;
    // k·ln 2 rounds by up to 2⁻⁴⁵ (|k| ≤ 217), far below what an f32 result resolves.
    let r = x - k * core::f64::consts::LN_2;
    // eʳ = 1 + (r + r²·(1/2 + r/6 + …)): the small terms' rounding is scaled down.
    let exp_r = 1.0 + (r + r * r * polynomial(&EXP_TAYLOR_TAIL, r));
    exp_r * power_of_two(shifted)
}

/// 2ᵏ for `shifted` = k + `ROUNDING_SHIFT`, k an integer from −1022 to 1023: from k's
/// bits, the low bits of `shifted`.
#[inline(always)]
fn power_of_two(shifted: f64) -> f64 {
    let biased_k = shifted.to_bits().wrapping_sub(ROUNDING_SHIFT.to_bits()).wrapping_add(1023);
    f64::from_bits(biased_k << 52)
}

/// eˣ.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    exp_for_f32(f64::from(x)) as f32
}

/// ln x.
#[inline(always)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let y = f64::from(x);
    // y = 2ᵉ·m with m ∈ [1, 2) (an f32 subnormal is a normal f64); the exponent field
    // read as a float through the bits of 2⁵² + field.
    let bits = y.to_bits();
    let field = f64::from_bits((bits >> 52) | 0x4330_0000_0000_0000) - 4_503_599_627_370_496.0;
    let m = f64::from_bits((bits & MANTISSA) | 0x3ff0_0000_0000_0000);
    // m ∈ [√½, √2) instead: |s| ≤ 0.172, and the series in s² = 0.0295 converges to
    // 2⁻³⁹ within its seven terms.
    let above = m > core::f64::consts::SQRT_2;
    let (m, e) = (if above { 0.5 * m } else { m }, field - if above { 1022.0 } else { 1023.0 });
    let s = (m - 1.0) / (m + 1.0);
    let ln = e * core::f64::consts::LN_2 + s * polynomial(&LN_SERIES, s * s);
    let special = if y == 0.0 {
        f64::NEG_INFINITY
    } else if y == f64::INFINITY {
        y
    } else {
        f64::NAN
    };
    (if y > 0.0 && y < f64::INFINITY { ln } else { special }) as f32
}

/// tanh x.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let x = f64::from(x);
    // tanh(±10) rounds to ±1 in f32; e²⁰ stays finite.
    let e2x = exp_for_f32(2.0 * clamp(x, -10.0, 10.0));
    let quotient = (e2x - 1.0) / (e2x + 1.0);
    (if x.abs() < 1.0 / 67_108_864.0 { x } else { quotient }) as f32
}

/// erfc a for a ≥ 0 (or NaN).
#[inline(always)]
fn erfc_of_magnitude(a: f64) -> f64 {
    let a = clamp(a, 0.0, ERFC_LAST_ARGUMENT);
    let t = 1.0 / (1.0 + 0.4 * a);
    exp_for_f32(-(a * a)) * polynomial(&ERFCX_FIT, t * ERFCX_SCALE - ERFCX_SHIFT)
}

/// ln 2 = `LN_2_HIGH` + `LN_2_LOW` to about 2⁻⁸⁶: the high part's last 21 bits are
/// zero, so k·`LN_2_HIGH` is exact for every |k| < 2²¹.
const LN_2_HIGH: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN_2_LOW: f64 = 1.908_214_929_270_587_7e-10;

/// eʳ − 1 = r + r²·Σ rʲ/(j + 2)! to r¹⁷, whose next term is below 2⁻⁶¹ of the sum for
/// r ∈ [0, ln 2].
const EXPM1_TAYLOR_TAIL: [f64; 16] = taylor_tail();

/// tanh's Taylor coefficients c₁ … c₁₃ of x³ … x²⁷ (tanh x = Σ cₖ·x²ᵏ⁺¹), from
/// y' = 1 − y²: (2k + 1)·cₖ = −Σ cᵢ·cₖ₋₁₋ᵢ over i < k, with c₀ = 1. For |x| ≤ 0.35 the
/// next term is below 2⁻⁶⁰ of tanh x.
const TANH_SERIES: [f64; 13] = {
    let mut c = [0.0; 14];
    c[0] = 1.0;
    let mut k = 1;
    while k < 14 {
        let (mut sum, mut i) = (0.0, 0);
        while i < k {
            sum += c[i] * c[k - 1 - i];
            i += 1;
        }
        c[k] = -sum / (2 * k + 1) as f64;
        k += 1;
    }
    let (mut series, mut k) = ([0.0; 13], 0);
    while k < 13 {
        series[k] = c[k + 1];
        k += 1;
    }
    series
};

/// Beyond this |x|, tanh x is ±1 in `f64` (1 − tanh 20 ≈ 8.5·10⁻¹⁸ < 2⁻⁵⁴).
const TANH_LAST_ARGUMENT: f64 = 20.0;
/// From this |x| on, tanh x = 1 − 2/(e²ˣ + 1) (tanh 0.9 > 0.7: the subtraction loses
/// little) is the more accurate form, u/(u + 2) below it (the worst errors found: 1.01
/// against 1.36 ulp just above, 0.78 against 1.03 just below).
const TANH_FAR: f64 = 0.9;

/// tanh x in `f64`, within 1.5 ulp (the GNU C library states 2 for its own; 1.39 the
/// worst found against a double-double reference, over 8 million arguments and 22
/// million more near the branches' bounds). With a = min(|x|, 20):
/// - a < ln 2 / 2 ≈ 0.347 (where k below is 0): its Taylor series, a + a·a²·s(a²);
/// - beyond, from u = e²ᵃ − 1: 2a = k·ln 2 + r with k = ⌊2a/ln 2⌋ and r ∈ [0, ln 2),
///   m = eʳ − 1 from its Taylor series (as the exact r's leading part plus a small
///   rest) and u = (2ᵏ − 1) + 2ᵏ·m, whose two terms never cancel; tanh a = u/(u + 2)
///   below 0.9, 1 − 2/(u + 2) from there on.
///
/// The sign is x's: tanh(−0) = −0, and NaN stays NaN. The polynomials go by Estrin's
/// scheme: as fast as the C library's tanh in a scalar loop, several times faster in
/// a wide one (`BENCHMARKS.md`).
#[inline(always)]
pub(crate) fn tanh_f64(x: f64) -> f64 {
    let a = clamp(x.abs(), 0.0, TANH_LAST_ARGUMENT);
    let t = a * a;
    let near_zero = a + a * (t * polynomial_estrin(&TANH_SERIES, t));
    let y = a + a;
    // ⌊y/ln 2⌋ as y/ln 2 − 1/2 rounded (k ≥ 0: the least, −0.5, rounds to 0).
    let shifted = y * core::f64::consts::LOG2_E - 0.5 + ROUNDING_SHIFT;
    let k = shifted - ROUNDING_SHIFT;
    // r = leading − low, where `leading` is exact (k·LN_2_HIGH is, and y − k·LN_2_HIGH
    // then too): only the small rest, r²·p(r) − low, rounds before m's final sum.
    let (leading, low) = (y - k * LN_2_HIGH, k * LN_2_LOW);
    let r = leading - low;
    let rest = r * r * polynomial_estrin(&EXPM1_TAYLOR_TAIL, r) - low;
    let scale = power_of_two(shifted);
    let u = (scale - 1.0) + scale * (leading + rest);
    let far = if a < TANH_FAR { u / (u + 2.0) } else { 1.0 - 2.0 / (u + 2.0) };
    (if k == 0.0 { near_zero } else { far }).copysign(x)
}

/// erfc x = 1 − erf x.
#[inline(always)]
pub(crate) fn erfc_f32(x: f32) -> f32 {
    let x = f64::from(x);
    let tail = erfc_of_magnitude(x.abs());
    (if x < 0.0 { 2.0 - tail } else { tail }) as f32
}

/// erf x.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let x = f64::from(x);
    let series = x * polynomial(&ERF_SERIES, clamp(x * x, 0.0, 1.0));
    let far = (1.0 - erfc_of_magnitude(x.abs())).copysign(x);
    (if x.abs() < 1.0 { series } else { far }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many `f32` values lie from `expected` to `actual` (0 for two NaNs, and
    /// no bound for a NaN against a number).
    fn ulps(actual: f32, expected: f32) -> u64 {
        if actual.is_nan() || expected.is_nan() {
            return if actual.is_nan() && expected.is_nan() { 0 } else { u64::MAX };
        }
        // The bit patterns in the order of the values (−0 and +0 both at 0).
        let ordered = |x: f32| {
            let magnitude = i64::from(x.to_bits() & 0x7fff_ffff);
            if x.is_sign_negative() { -magnitude } else { magnitude }
        };
        ordered(actual).abs_diff(ordered(expected))
    }

    /// The worst error over every 997th `f32` bit pattern (4.3 million values, both
    /// signs, every exponent), against the `f64` function rounded to `f32`.
    fn worst_ulps(ours: fn(f32) -> f32, reference: fn(f64) -> f64) -> (u64, f32) {
        (0..u32::MAX / 997)
            .map(|i| f32::from_bits(i * 997))
            .map(|x| (ulps(ours(x), reference(f64::from(x)) as f32), x))
            .fold((0, 0.0), |worst, next| if next.0 > worst.0 { next } else { worst })
    }

    #[test]
    fn f32_functions_are_within_one_ulp_everywhere() {
        for (name, ours, reference) in [
            ("exp", exp_f32 as fn(f32) -> f32, libm::exp as fn(f64) -> f64),
            ("ln", ln_f32, libm::log),
            ("tanh", tanh_f32, libm::tanh),
            ("erf", erf_f32, libm::erf),
            ("erfc", erfc_f32, libm::erfc),
        ] {
            let (worst, at) = worst_ulps(ours, reference);
            assert!(worst <= 1, "{name}: {worst} ulps at {at:e}");
        }
    }

    #[test]
    fn special_values() {
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        for (name, f, cases) in [
            (
                "exp",
                exp_f32 as fn(f32) -> f32,
                [(inf, inf), (-inf, 0.0), (0.0, 1.0), (89.0, inf), (-104.0, 0.0)],
            ),
            ("ln", ln_f32, [(inf, inf), (0.0, -inf), (-0.0, -inf), (1.0, 0.0), (-1.0, nan)]),
            ("tanh", tanh_f32, [(inf, 1.0), (-inf, -1.0), (0.0, 0.0), (1e-30, 1e-30), (-1e-30, -1e-30)]),
            ("erf", erf_f32, [(inf, 1.0), (-inf, -1.0), (0.0, 0.0), (1.0, 0.842_700_8), (-4.0, -1.0)]),
            ("erfc", erfc_f32, [(inf, 0.0), (-inf, 2.0), (0.0, 1.0), (11.0, 0.0), (-12.0, 2.0)]),
        ] {
            assert!(f(nan).is_nan(), "{name}(NaN)");
            for (x, expected) in cases {
                let y = f(x);
                assert!(y == expected || (y.is_nan() && expected.is_nan()), "{name}({x:e}) = {y:e}");
            }
        }
        assert!(tanh_f32(-0.0).is_sign_negative() && erf_f32(-0.0).is_sign_negative());
        assert_eq!(erf_f32(1e-30), libm::erf(1e-30_f32.into()) as f32);
        // The smallest subnormal; overflow just above ln f32::MAX = 88.72284.
        assert_eq!(exp_f32(-103.27893), f32::from_bits(1));
        assert!(exp_f32(88.72283).is_finite() && exp_f32(88.7229).is_infinite());
    }

    /// A double-double value hi + lo (about 106 bits), for reference values.
    #[derive(Clone, Copy)]
    struct DoubleDouble {
        hi: f64,
        lo: f64,
    }

    impl DoubleDouble {
        fn new(x: f64) -> Self {
            DoubleDouble { hi: x, lo: 0.0 }
        }
        fn renormalised(self) -> Self {
            let hi = self.hi + self.lo;
            DoubleDouble { hi, lo: self.lo - (hi - self.hi) }
        }
        fn add(self, other: Self) -> Self {
            let hi = self.hi + other.hi;
            let other_part = hi - self.hi;
            let error = (self.hi - (hi - other_part)) + (other.hi - other_part);
            DoubleDouble { hi, lo: error + self.lo + other.lo }.renormalised()
        }
        fn neg(self) -> Self {
            DoubleDouble { hi: -self.hi, lo: -self.lo }
        }
        fn mul(self, other: Self) -> Self {
            let hi = self.hi * other.hi;
            let lo = libm::fma(self.hi, other.hi, -hi) + self.hi * other.lo + self.lo * other.hi;
            DoubleDouble { hi, lo }.renormalised()
        }
        fn div(self, other: Self) -> Self {
            let quotient = |rest: Self| DoubleDouble::new(rest.hi / other.hi);
            let first = quotient(self);
            let rest = self.add(other.mul(first).neg());
            let second = quotient(rest);
            let third = quotient(rest.add(other.mul(second).neg()));
            first.add(second).add(third)
        }
    }

    /// eʸ − 1: its Taylor series for |y| ≤ 1; beyond, (e^(y/1024))^1024 − 1 from it.
    fn expm1_reference(y: f64) -> DoubleDouble {
        let series = |y: DoubleDouble| {
            let (mut term, mut total) = (y, y);
            for n in 2..40 {
                term = term.mul(y).div(DoubleDouble::new(f64::from(n)));
                total = total.add(term);
            }
            total
        };
        if y.abs() <= 1.0 {
            return series(DoubleDouble::new(y));
        }
        let mut power = series(DoubleDouble::new(y / 1024.0)).add(DoubleDouble::new(1.0));
        for _ in 0..10 {
            power = power.mul(power);
        }
        power.add(DoubleDouble::new(-1.0))
    }

    /// `actual`'s distance from `expected` in units of the last place at `expected`
    /// (the smaller unit below a power of two, where the exact value lies below it).
    fn ulp_error(actual: f64, expected: DoubleDouble) -> f64 {
        let magnitude = expected.hi.abs();
        let above = f64::from_bits(magnitude.to_bits() + 1) - magnitude;
        let below_a_power_of_two =
            magnitude.to_bits() & ((1 << 52) - 1) == 0 && expected.lo * expected.hi.signum() < 0.0;
        let ulp = if below_a_power_of_two { above / 2.0 } else { above };
        ((actual - expected.hi) - expected.lo).abs() / ulp
    }

    /// tanh x = u/(u + 2) with u = e^(2x) − 1, in double-double.
    fn tanh_reference(x: f64) -> DoubleDouble {
        let u = expm1_reference(2.0 * x);
        u.div(u.add(DoubleDouble::new(2.0)))
    }

    #[test]
    fn f64_tanh_is_within_one_and_a_half_ulps_of_a_double_double_reference() {
        // The reference against tanh to 300 bits (as `hi + lo`, from mpmath).
        for (x, hi, lo) in [
            (1e-5, 9.999_999_999_666_668e-6, -4.575_870_152_693_7e-22),
            (0.3466, 0.333_356_808_433_361_9, 2.006_277_968_323_399_3e-17),
            (0.5, 0.462_117_157_260_009_74, 2.191_660_323_826_092_8e-17),
            (0.9, 0.716_297_870_199_024_5, -3.514_093_391_268_979e-17),
            (3.0, 0.995_054_753_686_730_5, -1.299_189_286_356_262_4e-17),
        ] {
            let reference = tanh_reference(x);
            let error = ((reference.hi - hi) + (reference.lo - lo)).abs();
            assert!(error < 1e-28, "the reference at {x}: off by {error:e}");
        }
        // A xorshift sequence over each branch's range, both signs, and magnitudes
        // from 10⁻³⁰⁰ to 1; then every 10⁻⁶ around the bounds between the branches
        // (ln 2/2, where k becomes 1; 0.9, where the far form takes over) and where k
        // becomes 2 and 3.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1_u64 << 53) as f64
        };
        let sampled = (0..60_000).map(|i| {
            let u = uniform();
            match i % 4 {
                0 => (u - 0.5) * 0.7,
                1 => (u - 0.5) * 2.2,
                2 => (u - 0.5) * 44.0,
                _ => libm::pow(10.0, -300.0 * u) * if i % 8 == 3 { 1.0 } else { -1.0 },
            }
        });
        let bounds =
            [core::f64::consts::LN_2 / 2.0, TANH_FAR, core::f64::consts::LN_2, 1.5 * core::f64::consts::LN_2];
        let near_bounds =
            bounds.into_iter().flat_map(|bound| (-2000..2000).map(move |i| bound + f64::from(i) * 1e-6));
        let worst = sampled
            .chain(near_bounds)
            .map(|x| (ulp_error(tanh_f64(x), tanh_reference(x)), x))
            .fold((0.0, 0.0), |worst, next| if next.0 > worst.0 { next } else { worst });
        assert!(worst.0 <= 1.5, "tanh: {} ulps at {:e}", worst.0, worst.1);
    }

    #[test]
    fn f64_tanh_special_values() {
        let tiny = f64::from_bits(1);
        for (x, expected) in [
            (f64::INFINITY, 1.0),
            (f64::NEG_INFINITY, -1.0),
            (0.0, 0.0),
            (tiny, tiny),
            (-1e-300, -1e-300),
            (20.0, 1.0),
            (1e300, 1.0),
            (-19.0, -(1.0 - f64::EPSILON / 2.0)),
        ] {
            assert_eq!(tanh_f64(x), expected, "tanh({x:e})");
        }
        assert!(tanh_f64(-0.0) == 0.0 && tanh_f64(-0.0).is_sign_negative());
        assert!(tanh_f64(f64::NAN).is_nan());
        // The last bits of ln 2's split.
        assert_eq!(LN_2_HIGH + LN_2_LOW, core::f64::consts::LN_2);
    }
}
