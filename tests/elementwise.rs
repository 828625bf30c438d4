//! Elementwise maps against the standard library and num-complex, and the arithmetic
//! operators (`+`, `−`, `+=`, `−=`, scaling by `*` and `/`, negation).

mod common;

use common::{TestRng, assert_all_close, assert_close};
use fluxion::prelude::*;

/// Checks one unary tensor method against a per-element reference function, on an
/// inline matrix, a heap matrix of static shape and a dynamic heap matrix.
macro_rules! check_unary {
    ($t:ty, $inputs:expr, $rtol:expr, |$x:ident| $reference:expr, |$m:ident| $method:expr) => {{
        let inputs: [[$t; 3]; 2] = $inputs;
        let flat: Vec<$t> = inputs.as_flattened().to_vec();
        let expected: Vec<_> = flat.iter().map(|&$x| $reference).collect();

        let $m: Matrix<$t, 2, 3> = Matrix::from_array(inputs);
        assert_all_close($method.as_slice(), &expected, $rtol);
        let $m: Matrix<$t, 2, 3, Heap> = Matrix::from_array(inputs);
        assert_all_close($method.as_slice(), &expected, $rtol);
        let $m = DMatrix::from_shape_vec((Dyn(2), Dyn(3)), flat.clone()).unwrap();
        let result = $method;
        assert_eq!(result.dims().as_slice(), &[2, 3]);
        assert_all_close(result.as_slice(), &expected, $rtol);
    }};
}

macro_rules! real_unary_tests {
    ($($module:ident: $t:ty),*) => {$(
        mod $module {
            use super::*;

            const RTOL: f64 = 4.0 * <$t>::EPSILON as f64;
            const ANY: [[$t; 3]; 2] = [[-2.5, -1.0, -0.25], [0.0, 0.75, 3.0]];
            const POSITIVE: [[$t; 3]; 2] = [[0.125, 0.5, 1.0], [2.0, 9.0, 100.0]];

            #[test]
            fn neg() {
                check_unary!($t, ANY, 0.0, |x| -x, |m| -&m);
                check_unary!($t, ANY, 0.0, |x| -x, |m| -m.clone());
            }

            #[test]
            fn exp() {
                check_unary!($t, ANY, RTOL, |x| <$t>::exp(x), |m| m.exp());
            }

            #[test]
            fn ln() {
                check_unary!($t, POSITIVE, RTOL, |x| <$t>::ln(x), |m| m.ln());
            }

            #[test]
            fn sin() {
                check_unary!($t, ANY, RTOL, |x| <$t>::sin(x), |m| m.sin());
            }

            #[test]
            fn cos() {
                check_unary!($t, ANY, RTOL, |x| <$t>::cos(x), |m| m.cos());
            }

            #[test]
            fn tanh() {
                check_unary!($t, ANY, RTOL, |x| <$t>::tanh(x), |m| m.tanh());
            }

            #[test]
            fn sigmoid() {
                check_unary!($t, ANY, RTOL, |x| 1.0 / (1.0 + <$t>::exp(-x)), |m| m.sigmoid());
                // σ(0) = 1/2, σ(−x) = 1 − σ(x), and the tails saturate without NaN.
                let v: Vector<$t, 4> = Vector::from_array([0.0, 1.5, -1000.0, 1000.0]);
                let s = v.sigmoid();
                assert_eq!(s[[0]], 0.5);
                assert_close((-v).sigmoid()[[1]], 1.0 - s[[1]], RTOL);
                assert_eq!(s[[2]], 0.0);
                assert_eq!(s[[3]], 1.0);
            }

            #[test]
            fn relu() {
                check_unary!($t, ANY, 0.0, |x| if x > 0.0 { x } else { 0.0 }, |m| m.relu());
            }

            #[test]
            fn sqrt() {
                check_unary!($t, POSITIVE, RTOL, |x| <$t>::sqrt(x), |m| m.sqrt());
                let squares: Vector<$t, 3> = Vector::from_array([0.0, 4.0, 6.25]);
                assert_eq!(squares.sqrt().to_array(), [0.0, 2.0, 2.5]);
            }

            #[test]
            fn abs() {
                check_unary!($t, ANY, 0.0, |x| <$t>::abs(x), |m| m.abs());
            }

            #[test]
            fn powi() {
                for n in [-2, 0, 1, 3] {
                    check_unary!($t, POSITIVE, RTOL, |x| <$t>::powi(x, n), |m| m.powi(n));
                }
                let v: Vector<$t, 3> = Vector::from_array([-2.0, 0.5, 3.0]);
                assert_eq!(v.powi(2).to_array(), [4.0, 0.25, 9.0]);
                assert_eq!(v.powi(3).to_array(), [-8.0, 0.125, 27.0]);
            }

            #[test]
            fn powf() {
                for p in [-0.5, 0.5, 2.0, 3.7] {
                    check_unary!($t, POSITIVE, RTOL, |x| <$t>::powf(x, p), |m| m.powf(p));
                }
            }

            #[test]
            fn conj_re_im_norm_sqr_on_real_data() {
                check_unary!($t, ANY, 0.0, |x| x, |m| m.conj());
                check_unary!($t, ANY, 0.0, |x| x, |m| m.re());
                check_unary!($t, ANY, 0.0, |_x| 0.0, |m| m.im());
                check_unary!($t, ANY, RTOL, |x| x * x, |m| m.norm_sqr());
            }
        }
    )*};
}

real_unary_tests!(real_f32: f32, real_f64: f64);

/// Complex inputs covering every quadrant and both axes.
fn complex_inputs() -> [[Complex64; 3]; 2] {
    let c = Complex64::new;
    [[c(1.0, 2.0), c(-0.5, 0.25), c(0.0, -1.5)], [c(-2.0, -0.75), c(3.0, 0.0), c(0.3, -0.4)]]
}

/// Checks a complex-valued map of a `Complex64` tensor against num-complex, per element.
macro_rules! check_complex_unary {
    (|$z:ident| $reference:expr, |$m:ident| $method:expr) => {
        check_unary!(Complex64, complex_inputs(), 4.0 * f64::EPSILON, |$z| $reference, |$m| $method)
    };
}

#[test]
fn complex_exp_ln_sin_cos_tanh_sqrt_match_num_complex() {
    check_complex_unary!(|z| Complex64::exp(z), |m| m.exp());
    check_complex_unary!(|z| Complex64::ln(z), |m| m.ln());
    check_complex_unary!(|z| Complex64::sin(z), |m| m.sin());
    check_complex_unary!(|z| Complex64::cos(z), |m| m.cos());
    // tanh(a + ib) = (tanh a + i·tan b)/(1 + i·tanh a·tan b): num-complex's own form
    // loses digits where cos 2b ≈ −1 (tan 1.5 by 4·10⁻¹⁵); this one does not here.
    check_complex_unary!(
        |z| {
            let (t, u) = (z.re.tanh(), z.im.tan());
            Complex64::new(t, u) / Complex64::new(1.0, t * u)
        },
        |m| m.tanh()
    );
    check_complex_unary!(|z| Complex64::sqrt(z), |m| m.sqrt());
    check_complex_unary!(|z| -z, |m| -&m);
    check_complex_unary!(
        |z| Complex64::new(1.0, 0.0) / (Complex64::new(1.0, 0.0) + Complex64::exp(-z)),
        |m| m.sigmoid()
    );
}

#[test]
fn complex_powers_match_num_complex() {
    for n in [-1, 0, 2, 5] {
        check_complex_unary!(|z| Complex64::powi(&z, n), |m| m.powi(n));
    }
    for p in [-0.5, 0.5, 2.5] {
        check_complex_unary!(|z| Complex64::powf(z, p), |m| m.powf(p));
    }
    // i² = −1 exactly.
    let i: Vector<Complex64, 1> = Vector::from_array([Complex64::new(0.0, 1.0)]);
    assert_eq!(i.powi(2)[[0]], Complex64::new(-1.0, 0.0));
}

#[test]
fn complex_conj_re_im_abs_norm_sqr_per_element() {
    let inputs = complex_inputs();
    let flat = inputs.as_flattened();
    let m: Matrix<Complex64, 2, 3> = Matrix::from_array(inputs);
    let conj = m.conj();
    // The real-valued maps have real element types.
    let re: Matrix<f64, 2, 3> = m.re();
    let im: Matrix<f64, 2, 3> = m.im();
    let abs: Matrix<f64, 2, 3> = m.abs();
    let norm_sqr: Matrix<f64, 2, 3> = m.norm_sqr();
    for (k, z) in flat.iter().enumerate() {
        assert_eq!(conj.as_slice()[k], Complex64::new(z.re, -z.im));
        assert_eq!(re.as_slice()[k], z.re);
        assert_eq!(im.as_slice()[k], z.im);
        assert_close(abs.as_slice()[k], (z.re * z.re + z.im * z.im).sqrt(), 2.0 * f64::EPSILON);
        assert_close(norm_sqr.as_slice()[k], z.re * z.re + z.im * z.im, 2.0 * f64::EPSILON);
    }
    // The same on a dynamic heap tensor of Complex32.
    let d = DVector::from_shape_vec((Dyn(2),), vec![Complex32::new(3.0, -4.0), Complex32::new(0.0, 2.0)])
        .unwrap();
    let abs: DVector<f32> = d.abs();
    let norm_sqr: DVector<f32> = d.norm_sqr();
    assert_eq!(abs.to_vec(), vec![5.0, 2.0]);
    assert_eq!(norm_sqr.to_vec(), vec![25.0, 4.0]);
    assert_eq!(d.conj().to_vec(), vec![Complex32::new(3.0, 4.0), Complex32::new(0.0, -2.0)]);
    assert_eq!(d.re().to_vec(), vec![3.0, 0.0]);
    assert_eq!(d.im().to_vec(), vec![-4.0, 2.0]);
}

#[test]
fn map_and_zip_map_apply_the_closure_per_position() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let b: Matrix<f64, 2, 2> = Matrix::from_array([[10., 20.], [30., 40.]]);
    let as_int: Matrix<i64, 2, 2> = a.map(|x| x as i64 * 3);
    assert_eq!(as_int.to_array(), [[3, 6], [9, 12]]);
    let combined = a.zip_map(&b, |x, y| y - x * x);
    assert_eq!(combined.to_array(), [[9., 16.], [21., 24.]]);
    let flags: Matrix<bool, 2, 2> = a.zip_map(&b, |x, y| x * 10.0 == y);
    assert_eq!(flags.to_array(), [[true; 2]; 2]);
}

/// `map` calls its closure once per element, in order, on every storage kind: a
/// closure with state (a counter, a random stream) sees each element once.
#[test]
fn map_calls_the_closure_once_per_element_in_order() {
    fn check(elements: &[f32], map: impl FnOnce(&mut dyn FnMut(f32) -> f32) -> Vec<f32>) {
        let mut seen = Vec::new();
        let result = map(&mut |x| {
            seen.push(x);
            seen.len() as f32
        });
        assert_eq!(seen, elements);
        assert!(result.iter().enumerate().all(|(i, &n)| n == (i + 1) as f32));
    }
    let inline: Matrix<f32, 2, 3> = Matrix::from_fn(|[r, c]| (r * 3 + c) as f32);
    let heap: Matrix<f32, 2, 3, Heap> = Matrix::from_fn(|[r, c]| (r * 3 + c) as f32);
    let large =
        DMatrix::from_shape_vec((Dyn(64), Dyn(96)), (0..64 * 96).map(|i| i as f32).collect()).unwrap();
    check(inline.as_slice(), |f| inline.map(f).as_slice().to_vec());
    check(heap.as_slice(), |f| heap.map(f).as_slice().to_vec());
    check(large.as_slice(), |f| large.map(f).as_slice().to_vec());
    // Inline f64 fills its array from the first element (f32 from zeros).
    let inline_f64: Matrix<f64, 2, 3> = Matrix::from_fn(|[r, c]| (r * 3 + c) as f64);
    let mut seen = Vec::new();
    let counted = inline_f64.map(|x| {
        seen.push(x);
        seen.len() as f64
    });
    assert_eq!(seen, inline_f64.as_slice());
    assert_eq!(counted.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

/// Random operands for the arithmetic tests: static inline, static heap and dynamic.
fn operands(seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = TestRng::new(seed);
    (rng.elements(6), rng.elements(6))
}

#[test]
fn add_and_sub_in_every_ownership_combination() {
    let (x, y) = operands(1);
    let sum: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    let diff: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();

    let a: Matrix<f64, 2, 3, Heap> = Matrix::from_shape_slice(Default::default(), &x).unwrap();
    let b: Matrix<f64, 2, 3, Heap> = Matrix::from_shape_slice(Default::default(), &y).unwrap();
    assert_eq!((&a + &b).to_vec(), sum);
    assert_eq!((a.clone() + &b).to_vec(), sum);
    assert_eq!((&a + b.clone()).to_vec(), sum);
    assert_eq!((a.clone() + b.clone()).to_vec(), sum);
    assert_eq!((&a - &b).to_vec(), diff);
    assert_eq!((a.clone() - &b).to_vec(), diff);
    assert_eq!((&a - b.clone()).to_vec(), diff);
    assert_eq!((a.clone() - b.clone()).to_vec(), diff);
    assert_eq!(a.try_add(&b).unwrap().to_vec(), sum);
    assert_eq!(a.try_sub(&b).unwrap().to_vec(), diff);

    let (ai, bi): (Matrix<f64, 2, 3>, Matrix<f64, 2, 3>) = (a.to_storage(), b.to_storage());
    assert_eq!((ai + bi).to_vec(), sum);
    assert_eq!((ai - bi).to_vec(), diff);

    let ad = DMatrix::from_shape_vec((Dyn(3), Dyn(2)), x.clone()).unwrap();
    let bd = DMatrix::from_shape_vec((Dyn(3), Dyn(2)), y.clone()).unwrap();
    assert_eq!((&ad + &bd).to_vec(), sum);
    assert_eq!((&ad - &bd).to_vec(), diff);
    assert_eq!((&ad + &bd).dims().as_slice(), &[3, 2]);
    // a − a = 0 and (a + b) − b = a up to one rounding per element.
    assert!((&ad - &ad).iter().all(|&v| v == 0.0));
    assert_all_close(((&ad + &bd) - &bd).as_slice(), &x, 2.0 * f64::EPSILON);
}

#[test]
fn add_assign_and_sub_assign_update_in_place() {
    let (x, y) = operands(2);
    let mut a = DVector::from_shape_vec((Dyn(6),), x.clone()).unwrap();
    let b = DVector::from_shape_vec((Dyn(6),), y.clone()).unwrap();
    a += &b;
    assert_eq!(a.to_vec(), x.iter().zip(&y).map(|(p, q)| p + q).collect::<Vec<_>>());
    a -= &b;
    a -= &b;
    let expected: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p + q - q - q).collect();
    assert_eq!(a.to_vec(), expected);

    let mut m: Matrix<f32, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let n: Matrix<f32, 2, 2> = Matrix::from_array([[0.5, 0.5], [-1., 8.]]);
    m += &n;
    assert_eq!(m.to_array(), [[1.5, 2.5], [2., 12.]]);
    m -= &n;
    m -= &n;
    assert_eq!(m.to_array(), [[0.5, 1.5], [4., -4.]]);
}

#[test]
fn scaling_by_a_scalar_on_either_side() {
    let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., -2., 3.], [0.5, 0., -6.]]);
    let doubled = [[2., -4., 6.], [1., 0., -12.]];
    assert_eq!((a * 2.0).to_array(), doubled);
    assert_eq!((&a * 2.0).to_array(), doubled);
    assert_eq!((2.0 * a).to_array(), doubled);
    assert_eq!((2.0 * &a).to_array(), doubled);
    assert_eq!(a.scale(2.0).to_array(), doubled);
    assert_eq!((a / 2.0).to_array(), [[0.5, -1., 1.5], [0.25, 0., -3.]]);
    assert_eq!((&a / 4.0).to_array(), [[0.25, -0.5, 0.75], [0.125, 0., -1.5]]);

    let v = DVector::from_shape_vec((Dyn(3),), vec![1.0f32, 2.0, 3.0]).unwrap();
    assert_eq!((3.0f32 * &v).to_vec(), vec![3.0, 6.0, 9.0]);
    assert_eq!((v.clone() / 2.0).to_vec(), vec![0.5, 1.0, 1.5]);
    let w: DVector<f32> = -(&v * -1.0);
    assert_eq!(w, v);
}

#[test]
fn complex_tensors_scale_by_real_and_complex_scalars() {
    let c = Complex64::new;
    let z: Vector<Complex64, 2> = Vector::from_array([c(1.0, 2.0), c(-3.0, 0.5)]);
    assert_eq!((z * 2.0).to_array(), [c(2.0, 4.0), c(-6.0, 1.0)]);
    assert_eq!((&z * 2.0).to_array(), [c(2.0, 4.0), c(-6.0, 1.0)]);
    assert_eq!((z / 2.0).to_array(), [c(0.5, 1.0), c(-1.5, 0.25)]);
    // (1+2i)·i = −2+i, (−3+0.5i)·i = −0.5−3i.
    assert_eq!((z * c(0.0, 1.0)).to_array(), [c(-2.0, 1.0), c(-0.5, -3.0)]);
    assert_eq!((c(0.0, 1.0) * z).to_array(), [c(-2.0, 1.0), c(-0.5, -3.0)]);
    // Division by i is multiplication by −i.
    assert_close((z / c(0.0, 1.0))[[0]], c(2.0, -1.0), f64::EPSILON);

    let w = DVector::from_shape_vec((Dyn(2),), vec![Complex32::new(1.0, -1.0), Complex32::new(0.0, 4.0)])
        .unwrap();
    assert_eq!((&w * 0.5f32).to_vec(), vec![Complex32::new(0.5, -0.5), Complex32::new(0.0, 2.0)]);
    assert_eq!((w.clone() / 4.0f32).to_vec(), vec![Complex32::new(0.25, -0.25), Complex32::new(0.0, 1.0)]);
}

#[test]
fn complex_add_and_sub_match_per_element_arithmetic() {
    let mut rng = TestRng::new(3);
    let x: Vec<Complex64> = rng.elements(8);
    let y: Vec<Complex64> = rng.elements(8);
    let a = Tensor::<Complex64, (Dyn, Const<2>), Heap>::from_shape_vec((Dyn(4), Const), x.clone()).unwrap();
    let b = Tensor::<Complex64, (Dyn, Const<2>), Heap>::from_shape_vec((Dyn(4), Const), y.clone()).unwrap();
    let sum: Vec<Complex64> = x.iter().zip(&y).map(|(p, q)| p + q).collect();
    let diff: Vec<Complex64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
    assert_eq!((&a + &b).to_vec(), sum);
    assert_eq!((&a - &b).to_vec(), diff);
    let mut c = a.clone();
    c += &b;
    assert_eq!(c.to_vec(), sum);
}

#[test]
fn asin_and_acos_keep_their_digits_near_one() {
    // 1 − x² cancels near |x| = 1; (1 − x)(1 + x) does not.
    for x in [0.9999999925523139f64, -0.9999999925523139, 1.0 - 1e-15, 0.5] {
        let v: Vector<f64, 1> = Vector::from_array([x]);
        assert!((v.acos()[[0]] - x.acos()).abs() <= 4.0 * f64::EPSILON * x.acos(), "acos {x}");
        assert!((v.asin()[[0]] - x.asin()).abs() <= 4.0 * f64::EPSILON * x.asin().abs(), "asin {x}");
    }
    let y: Vector<f32, 1> = Vector::from_array([0.9998809f32]);
    assert!((y.acos()[[0]] - 0.9998809f32.acos()).abs() <= 4.0 * f32::EPSILON * 0.9998809f32.acos());
}

/// `f32` maps over heap and inline tensors run in a loop compiled for the processor's
/// widest vectors where it has them (AVX-512 or AVX2): the same bits as the scalar
/// functions, called one at a time, on every element — ±∞ and subnormal inputs
/// included; NaN gives a NaN (its sign bit may differ, as IEEE 754 allows) — and
/// softmax's the same as its formula element by element.
#[test]
fn f32_maps_give_the_scalar_functions_bits_on_every_path() {
    let mut rng = TestRng::new(31);
    let mut values: Vec<f32> = (0..4093).map(|_| (rng.signed_unit() * 12.0) as f32).collect();
    values.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-40, -1e-40, 88.8, -104.0]);
    let heap = Tensor::<f32, (Dyn,), Heap>::from_shape_vec((Dyn(values.len()),), values.clone()).unwrap();
    let inline: Vector<f32, 16> = Vector::from_fn(|[i]| values[i * 97 % values.len()]);
    let bits = |x: f32| if x.is_nan() { f32::NAN.to_bits() } else { x.to_bits() };
    for (name, tensor_function, scalar_function) in [
        ("exp", Tensor::exp as fn(&_) -> _, <f32 as Scalar>::exp as fn(f32) -> f32),
        ("ln", Tensor::ln, <f32 as Scalar>::ln),
        ("tanh", Tensor::tanh, <f32 as Scalar>::tanh),
        ("sigmoid", Tensor::sigmoid, <f32 as Scalar>::sigmoid),
        ("erf", Tensor::erf, RealScalar::erf),
        ("erfc", Tensor::erfc, RealScalar::erfc),
    ] {
        let mapped = tensor_function(&heap);
        for (&x, &y) in values.iter().zip(mapped.as_slice()) {
            assert_eq!(bits(y), bits(scalar_function(x)), "{name}({x:e})");
        }
    }
    for (name, inline_function, scalar_function) in [
        ("exp", Vector::exp as fn(&_) -> _, <f32 as Scalar>::exp as fn(f32) -> f32),
        ("tanh", Vector::tanh, <f32 as Scalar>::tanh),
        ("erf", Vector::erf, RealScalar::erf),
    ] {
        for (&x, &y) in inline.as_slice().iter().zip(inline_function(&inline).as_slice()) {
            assert_eq!(bits(y), bits(scalar_function(x)), "{name}({x:e}) inline");
        }
    }
    // Rows of 300 (one to a block of exponentials) and of 5 (many rows to a block, 60
    // rows making two blocks).
    for columns in [300, 5] {
        let rows = DMatrix::from_shape_fn((Dyn(60), Dyn(columns)), |[r, c]| values[(r * columns + c) % 4000]);
        let softmax = rows.softmax(Axis::<1>);
        for r in 0..60 {
            let row: Vec<f32> = (0..columns).map(|c| rows[[r, c]]).collect();
            let largest = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let exps: Vec<f32> = row.iter().map(|&x| <f32 as Scalar>::exp(x - largest)).collect();
            let total = exps.iter().fold(0.0, |t, &e| t + e);
            for c in 0..columns {
                assert_eq!(bits(softmax[[r, c]]), bits(exps[c] / total), "softmax row {r}, column {c}");
            }
        }
    }
}
