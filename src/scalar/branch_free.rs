//! `exp`, `ln`, `tanh`, `erf` and `erfc` of `f32`, written without branches or tables so
//! that a loop of them over a slice vectorises.
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
//! them is several times faster. `f64` keeps libm's functions.

/// 1.5·2⁵²: adding it to a float of magnitude below 2⁵¹ rounds to an integer,
/// which stands in the low bits of the sum.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;
/// Arguments are clamped to ±150: e¹⁵⁰ overflows `f32` and e⁻¹⁵⁰ is 0 in it, while
/// both are normal `f64`s, so 2ᵏ is one normal factor.
const EXP_ARGUMENT_BOUND: f64 = 150.0;

/// 1/(j + 2)! for j = 0..7: eʳ's Taylor coefficients from r² to r⁸.
const EXP_TAYLOR_TAIL: [f64; 7] = {
    let mut coefficients = [0.5; 7];
    let mut j = 1;
    while j < 7 {
        coefficients[j] = coefficients[j - 1] / (j + 2) as f64;
        j += 1;
    }
    coefficients
};

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
    // 2ᵏ from k's bits, the low bits of `shifted`.
    let biased_k = shifted.to_bits().wrapping_sub(ROUNDING_SHIFT.to_bits()).wrapping_add(1023);
    exp_r * f64::from_bits(biased_k << 52)
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
}
