//! Construction, element access, iteration, formatting and storage conversion.

mod common;

use common::panic_message;
use fluxion::prelude::*;

/// The introductory snippet of the crate, with every value checked by hand. The
/// snippet is kept verbatim, including its `clone` of a `Copy` tensor and `&a + &h`.
#[test]
#[allow(clippy::clone_on_copy, clippy::op_ref)]
fn readme_snippet_values() {
    let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let x: Vector<f64, 3> = Vector::from_array([1., 0., -1.]);
    let y: Vector<f64, 2> = a.matmul(&x); // [-2, -2]
    let at: Matrix<f64, 3, 2> = a.transpose();
    let g: Matrix<f64, 2, 2> = a.matmul(&at); // [[14, 32], [32, 77]]
    let h: Matrix<f64, 2, 3> = a.hadamard(&a);
    let d: f64 = x.dot(&x); // 2
    let s: Matrix<f64, 2, 3> = a.clone() * 2.0;
    let sum: Matrix<f64, 2, 3> = &a + &h;
    let o: Matrix<f64, 3, 3> = x.outer(&x);
    let r: Matrix<f64, 3, 2> = a.reshape(); // row-major: [[1,2],[3,4],[5,6]]
    let e: f64 = a[[1, 2]]; // 6
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    let ip: Complex64 = z.inner(&z); // 6 + 0i

    // 1·1 + 2·0 + 3·(−1) = −2 and 4 − 6 = −2.
    assert_eq!(y.to_array(), [-2., -2.]);
    assert_eq!(at.to_array(), [[1., 4.], [2., 5.], [3., 6.]]);
    // 1+4+9 = 14, 4+10+18 = 32, 16+25+36 = 77.
    assert_eq!(g.to_array(), [[14., 32.], [32., 77.]]);
    assert_eq!(h.to_array(), [[1., 4., 9.], [16., 25., 36.]]);
    assert_eq!(d, 2.0);
    assert_eq!(s.to_array(), [[2., 4., 6.], [8., 10., 12.]]);
    assert_eq!(sum.to_array(), [[2., 6., 12.], [20., 30., 42.]]);
    assert_eq!(o.to_array(), [[1., 0., -1.], [0., 0., 0.], [-1., 0., 1.]]);
    assert_eq!(r.to_array(), [[1., 2.], [3., 4.], [5., 6.]]);
    assert_eq!(e, 6.0);
    // |1+2i|² + |−i|² = 5 + 1.
    assert_eq!(ip, Complex64::new(6., 0.));
}

#[test]
fn zeros_ones_full_fill_every_element() {
    let z: Matrix<f64, 2, 3> = Matrix::zeros();
    let o: Tensor3<f32, 2, 1, 3> = Tensor3::ones();
    let f: Vector<f64, 4, Heap> = Vector::full(2.5);
    let c: Vector<Complex64, 3> = Vector::ones();
    assert_eq!(z.to_array(), [[0.0; 3]; 2]);
    assert_eq!(o.to_array(), [[[1.0; 3]]; 2]);
    assert_eq!(f.to_vec(), vec![2.5; 4]);
    assert_eq!(c.to_array(), [Complex64::new(1.0, 0.0); 3]);
    assert_eq!((z.len(), o.len(), f.len(), c.len()), (6, 6, 4, 3));
}

#[test]
fn shaped_constructors_take_dynamic_shapes() {
    let z = DMatrix::<f64>::zeros_shaped((Dyn(3), Dyn(2)));
    let o = DVector::<f32>::ones_shaped((Dyn(5),));
    let f = Tensor::<f64, (Dyn, Const<3>), Heap>::full_shaped((Dyn(2), Const), -1.0);
    assert_eq!(z.dims().as_slice(), &[3, 2]);
    assert!(z.iter().all(|&x| x == 0.0));
    assert_eq!(o.to_vec(), vec![1.0f32; 5]);
    assert_eq!(f.dims().as_slice(), &[2, 3]);
    assert_eq!(f.to_vec(), vec![-1.0; 6]);
    let empty = DVector::<f64>::zeros_shaped((Dyn(0),));
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
}

#[test]
fn from_fn_receives_each_multi_index() {
    let m: Matrix<f64, 3, 4> = Matrix::from_fn(|[i, j]| (10 * i + j) as f64);
    for i in 0..3 {
        for j in 0..4 {
            assert_eq!(m[[i, j]], (10 * i + j) as f64);
            // Row-major: element (i, j) sits at flat offset i·4 + j.
            assert_eq!(m.as_slice()[i * 4 + j], (10 * i + j) as f64);
        }
    }
    let t: Tensor3<i64, 2, 3, 4> = Tensor3::from_fn(|[i, j, k]| (100 * i + 10 * j + k) as i64);
    assert_eq!(t[[1, 2, 3]], 123);
    assert_eq!(t.as_slice()[(3 + 2) * 4 + 3], 123);
    let d = DMatrix::from_shape_fn((Dyn(2), Dyn(3)), |[i, j]| (i as f64) - (j as f64));
    assert_eq!(d.to_vec(), vec![0., -1., -2., 1., 0., -1.]);
    let scalar: Tensor0<f64> = Tensor0::from_fn(|[]| 7.0);
    assert_eq!(scalar[[]], 7.0);
}

#[test]
fn from_array_and_to_array_round_trip_every_rank() {
    let v: Vector<f64, 3> = Vector::from_array([1., 2., 3.]);
    assert_eq!(v.to_array(), [1., 2., 3.]);
    let m: Matrix<f32, 2, 2, Heap> = Matrix::from_array([[1., 2.], [3., 4.]]);
    assert_eq!(m.to_array(), [[1., 2.], [3., 4.]]);
    assert_eq!(m.as_slice(), &[1., 2., 3., 4.]);
    let array3 = [[[1., 2.], [3., 4.]], [[5., 6.], [7., 8.]]];
    let t3: Tensor3<f64, 2, 2, 2> = Tensor3::from_array(array3);
    assert_eq!(t3.to_array(), array3);
    assert_eq!(t3[[1, 0, 1]], array3[1][0][1]);
    let mut array4 = [[[[0u8; 2]; 3]; 1]; 2];
    for (n, x) in array4.as_flattened_mut().as_flattened_mut().as_flattened_mut().iter_mut().enumerate() {
        *x = n as u8;
    }
    let t4: Tensor4<u8, 2, 1, 3, 2> = Tensor4::from_array(array4);
    assert_eq!(t4.to_array(), array4);
    assert_eq!(t4[[1, 0, 2, 1]], array4[1][0][2][1]);
    assert_eq!(t4.as_slice(), &(0..12).collect::<Vec<u8>>()[..]);
    let scalar: Tensor0<f64> = Tensor0::from_array([4.5]);
    assert_eq!(scalar.to_array(), [4.5]);
    assert_eq!(scalar.len(), 1);
}

#[test]
fn from_shape_slice_and_vec_accept_matching_lengths() {
    let data = [1., 2., 3., 4., 5., 6.];
    let m = DMatrix::from_shape_slice((Dyn(2), Dyn(3)), &data).unwrap();
    assert_eq!(m[[1, 0]], 4.0);
    assert_eq!(m.dims().as_slice(), &[2, 3]);
    let v = Tensor::<f64, (Dyn, Const<2>), Heap>::from_shape_vec((Dyn(3), Const), data.to_vec()).unwrap();
    assert_eq!(v[[2, 1]], 6.0);
    assert_eq!(v.into_vec(), data.to_vec());
    let s: Matrix<f64, 3, 2> = Matrix::from_shape_slice(Default::default(), &data).unwrap();
    assert_eq!(s.to_array(), [[1., 2.], [3., 4.], [5., 6.]]);
}

#[test]
fn from_shape_slice_and_vec_reject_wrong_lengths() {
    let error = DMatrix::from_shape_slice((Dyn(2), Dyn(3)), &[1.0; 5]).unwrap_err();
    common::assert_names_shapes(&error, &[2, 3], &[5]);
    let error = DMatrix::from_shape_vec((Dyn(4), Dyn(1)), vec![0.0f32; 7]).unwrap_err();
    common::assert_names_shapes(&error, &[4, 1], &[7]);
    let error = Matrix::<f64, 2, 2>::from_shape_slice(Default::default(), &[1.0; 3]).unwrap_err();
    common::assert_names_shapes(&error, &[2, 2], &[3]);
    // Too much data is an error too, not a silent truncation.
    assert!(DVector::from_shape_vec((Dyn(2),), vec![1.0, 2.0, 3.0]).is_err());
}

#[test]
fn random_uniform_is_reproducible_per_seed() {
    let a: Matrix<f64, 4, 5> = Matrix::random_uniform(-2.0, 3.0, 42);
    let b: Matrix<f64, 4, 5> = Matrix::random_uniform(-2.0, 3.0, 42);
    let c: Matrix<f64, 4, 5> = Matrix::random_uniform(-2.0, 3.0, 43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Any two of 20 continuous draws coincide with probability zero.
    let mut sorted = a.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert!(sorted.windows(2).all(|w| w[0] < w[1]), "repeated values in {a}");
    // The storage kind does not change the values.
    let heap: Matrix<f64, 4, 5, Heap> = Matrix::random_uniform(-2.0, 3.0, 42);
    assert_eq!(heap.as_slice(), a.as_slice());
    let dynamic = DMatrix::<f64>::random_uniform_shaped((Dyn(4), Dyn(5)), -2.0, 3.0, 42);
    assert_eq!(dynamic.as_slice(), a.as_slice());
}

#[test]
fn random_uniform_statistics_on_ten_thousand_draws() {
    let (low, high) = (-1.0, 3.0);
    let t = DVector::<f64>::random_uniform_shaped((Dyn(10_000),), low, high, 7);
    assert!(t.iter().all(|x| (low..high).contains(x)));
    let n = t.len() as f64;
    let mean = t.iter().sum::<f64>() / n;
    let var = t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    // U(a, b): mean (a+b)/2 = 1, variance (b−a)²/12 = 4/3. The standard error of the
    // mean is about 0.012; allow 5 of them.
    assert!((mean - 1.0).abs() < 0.06, "mean {mean}");
    assert!((var - 4.0 / 3.0).abs() < 0.1, "variance {var}");
    // Both ends of the interval are reached within 1% of its width.
    let (min, max) = t.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(min < low + 0.04 && max > high - 0.04, "range [{min}, {max}]");
}

#[test]
fn random_uniform_complex_draws_both_parts_independently() {
    let t = Tensor::<Complex64, (Dyn,), Heap>::random_uniform_shaped((Dyn(10_000),), 0.0, 1.0, 3);
    assert!(t.iter().all(|z| (0.0..1.0).contains(&z.re) && (0.0..1.0).contains(&z.im)));
    let n = t.len() as f64;
    let mean_re = t.iter().map(|z| z.re).sum::<f64>() / n;
    let mean_im = t.iter().map(|z| z.im).sum::<f64>() / n;
    assert!((mean_re - 0.5).abs() < 0.02 && (mean_im - 0.5).abs() < 0.02, "{mean_re}, {mean_im}");
    // Independence: the sample covariance of the parts is near 0 (its standard error
    // is 1/12/√n ≈ 0.0008).
    let cov = t.iter().map(|z| (z.re - mean_re) * (z.im - mean_im)).sum::<f64>() / n;
    assert!(cov.abs() < 0.005, "covariance {cov}");
}

#[test]
fn random_uniform_f32_stays_below_high() {
    let t = DVector::<f32>::random_uniform_shaped((Dyn(10_000),), 0.0, 1.0, 11);
    assert!(t.iter().all(|x| (0.0..1.0).contains(x)));
    let mean = t.iter().map(|&x| x as f64).sum::<f64>() / t.len() as f64;
    assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
}

/// `random_uniform` promises `[low, high)`, but it draws in `f64` and rounds to `f32`:
/// every `f64` draw within 2⁻²⁵ of `high` rounds up to `high` itself. Seed 6772976
/// (found by a search over seeds) makes the first draw 1 − 4.5·10⁻⁹, which becomes 1.0.
#[test]
fn random_uniform_f32_excludes_high_even_when_rounding() {
    let t: Vector<f32, 1> = Vector::random_uniform(0.0, 1.0, 6_772_976);
    assert!(t[[0]] < 1.0, "drew {} from [0, 1)", t[[0]]);
    let c: Vector<Complex32, 1> = Vector::random_uniform(0.0, 1.0, 6_772_976);
    assert!(c[[0]].re < 1.0, "drew {} from [0, 1)", c[[0]].re);
}

#[test]
fn random_normal_statistics_on_ten_thousand_draws() {
    let t = DVector::<f64>::random_normal_shaped((Dyn(10_000),), 5.0, 2.0, 1234);
    assert_eq!(t, DVector::<f64>::random_normal_shaped((Dyn(10_000),), 5.0, 2.0, 1234));
    let n = t.len() as f64;
    let mean = t.iter().sum::<f64>() / n;
    let std = (t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    // Standard error of the mean: 2/100 = 0.02; of the standard deviation: ≈ 2/√(2n) ≈ 0.014.
    assert!((mean - 5.0).abs() < 0.1, "mean {mean}");
    assert!((std - 2.0).abs() < 0.1, "std {std}");
    // About 68.3% of a normal sample lies within one standard deviation of the mean.
    let within = t.iter().filter(|&&x| (x - 5.0).abs() < 2.0).count() as f64 / n;
    assert!((within - 0.6827).abs() < 0.03, "fraction within 1σ: {within}");
}

#[test]
fn random_normal_complex_has_the_requested_spread() {
    let t = Tensor::<Complex64, (Dyn,), Heap>::random_normal_shaped((Dyn(10_000),), 1.0, 2.0, 99);
    let n = t.len() as f64;
    let mean_re = t.iter().map(|z| z.re).sum::<f64>() / n;
    let mean_im = t.iter().map(|z| z.im).sum::<f64>() / n;
    assert!((mean_re - 1.0).abs() < 0.1 && mean_im.abs() < 0.1, "mean {mean_re} + {mean_im}i");
    // E|z − mean|² = std² = 4, split evenly between the two parts.
    let var_re = t.iter().map(|z| (z.re - 1.0).powi(2)).sum::<f64>() / n;
    let var_im = t.iter().map(|z| z.im.powi(2)).sum::<f64>() / n;
    assert!((var_re + var_im - 4.0).abs() < 0.3, "E|z − μ|² = {}", var_re + var_im);
    assert!((var_re - 2.0).abs() < 0.2 && (var_im - 2.0).abs() < 0.2, "{var_re}, {var_im}");
}

#[test]
fn random_static_shapes_match_shaped_versions() {
    let a: Vector<f32, 6> = Vector::random_normal(0.0, 1.0, 5);
    let b = DVector::<f32>::random_normal_shaped((Dyn(6),), 0.0, 1.0, 5);
    assert_eq!(a.as_slice(), b.as_slice());
    assert_ne!(a.as_slice(), Vector::<f32, 6>::random_normal(0.0, 1.0, 6).as_slice());
}

#[test]
fn indexing_reads_and_writes_row_major_positions() {
    let mut m: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    assert_eq!(m[[0, 0]], 1.0);
    assert_eq!(m[[0, 2]], 3.0);
    assert_eq!(m[[1, 1]], 5.0);
    m[[1, 2]] = -6.0;
    assert_eq!(m.to_array(), [[1., 2., 3.], [4., 5., -6.]]);
    assert_eq!(m.get([1, 2]), Some(&-6.0));
    assert_eq!(m.get([2, 0]), None);
    assert_eq!(m.get([0, 3]), None);
    let mut d = DMatrix::<f64>::zeros_shaped((Dyn(3), Dyn(2)));
    d[[2, 1]] = 1.0;
    assert_eq!(d.as_slice()[2 * 2 + 1], 1.0);
    assert_eq!(d.iter().sum::<f64>(), 1.0);
}

#[test]
#[should_panic(expected = "index [2, 0] is out of bounds for shape [2, 3]")]
fn indexing_past_a_row_panics_with_index_and_shape() {
    let m: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = m[[2, 0]];
}

#[test]
#[should_panic(expected = "index [0, 3] is out of bounds for shape [2, 3]")]
fn indexing_past_a_column_panics_even_when_the_flat_offset_exists() {
    // Offset 0·3 + 3 = 3 exists in the buffer; the index is still out of bounds.
    let m = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(3)));
    let _ = m[[0, 3]];
}

#[test]
fn mutable_indexing_out_of_bounds_panics_with_the_same_message() {
    let mut t: Tensor3<f32, 2, 2, 2> = Tensor3::zeros();
    let message = panic_message(|| t[[0, 2, 0]] = 1.0);
    assert_eq!(message, "index [0, 2, 0] is out of bounds for shape [2, 2, 2]");
}

#[test]
fn iteration_visits_elements_in_row_major_order() {
    let mut m: Matrix<i32, 2, 3, Heap> = Matrix::from_array([[1, 2, 3], [4, 5, 6]]);
    assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    let mut seen = Vec::new();
    for x in &m {
        seen.push(*x);
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
    for (n, x) in m.iter_mut().enumerate() {
        *x *= n as i32;
    }
    assert_eq!(m.to_array(), [[0, 2, 6], [12, 20, 30]]);
    m.as_mut_slice()[5] = 0;
    assert_eq!(m[[1, 2]], 0);
    assert_eq!(m.iter().len(), 6);
}

#[test]
fn display_shows_nested_values_and_shape() {
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]);
    assert_eq!(m.to_string(), "[[1, 2], [3, 4]] (shape [2, 2])");
    let v = DVector::from_shape_vec((Dyn(3),), vec![0.5, -1.0, 2.0]).unwrap();
    assert_eq!(v.to_string(), "[0.5, -1, 2] (shape [3])");
    let t: Tensor3<i32, 2, 1, 2> = Tensor3::from_array([[[1, 2]], [[3, 4]]]);
    assert_eq!(t.to_string(), "[[[1, 2]], [[3, 4]]] (shape [2, 1, 2])");
    let s: Tensor0<f64> = Tensor0::from_array([3.5]);
    assert_eq!(s.to_string(), "3.5 (shape [])");
    // A precision applies to every element.
    let p: Vector<f64, 2> = Vector::from_array([1.0 / 3.0, 2.0]);
    assert_eq!(format!("{p:.2}"), "[0.33, 2.00] (shape [2])");
    // Scientific notation, both cases, with a precision.
    let small: Matrix<f64, 1, 2> = Matrix::from_array([[2.5e-12, -3.0e8]]);
    assert_eq!(format!("{small:e}"), "[[2.5e-12, -3e8]] (shape [1, 2])");
    assert_eq!(format!("{small:.2E}"), "[[2.50E-12, -3.00E8]] (shape [1, 2])");
}

#[test]
fn debug_shows_shape_and_debug_values() {
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.5]]);
    let text = format!("{m:?}");
    assert!(text.contains("[2, 2]"), "{text}");
    assert!(text.contains("[[1.0, 2.0], [3.0, 4.5]]"), "{text}");
    let z: Vector<Complex64, 1> = Vector::from_array([Complex64::new(1.0, -2.0)]);
    let text = format!("{z:?}");
    assert!(text.contains("[1]"), "{text}");
    assert!(text.contains(&format!("{:?}", Complex64::new(1.0, -2.0))), "{text}");
}

#[test]
fn to_storage_moves_between_inline_and_heap() {
    let inline: Matrix<f64, 2, 3> = Matrix::from_fn(|[i, j]| (i * 3 + j) as f64);
    let heap: Matrix<f64, 2, 3, Heap> = inline.to_storage();
    assert_eq!(heap.as_slice(), inline.as_slice());
    assert_eq!(heap.to_array(), inline.to_array());
    let back: Matrix<f64, 2, 3, Inline> = heap.to_storage();
    assert_eq!(back, inline);
    let heap_again: Matrix<f64, 2, 3, Heap> = heap.to_storage();
    assert_eq!(heap_again, heap);
}

#[test]
fn inline_tensors_are_copy() {
    fn assert_copy<T: Copy>(_: &T) {}
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    assert_copy(&a);
    let mut b = a; // a copy, not a move: `a` stays usable
    b[[0, 0]] = 10.0;
    assert_eq!(a[[0, 0]], 1.0);
    assert_eq!(b[[0, 0]], 10.0);
    let c = a + a;
    assert_eq!(c.to_array(), [[2., 4.], [6., 8.]]);
    let z: Vector<Complex32, 2> = Vector::ones();
    assert_copy(&z);
}

#[test]
fn shape_and_dims_report_run_time_sizes() {
    let m = Tensor::<f64, (Dyn, Const<4>), Heap>::zeros_shaped((Dyn(3), Const));
    assert_eq!(m.shape().0, Dyn(3));
    assert_eq!(m.dims().as_slice(), &[3, 4]);
    assert_eq!(m.dims().num_elements(), 12);
    let s: Tensor0<f64> = Tensor0::zeros();
    assert_eq!(s.dims().as_slice(), &[] as &[usize]);
    assert_eq!(s.dims().num_elements(), 1);
}

/// Heap tensors share their elements between clones until one of them writes: every
/// clone still behaves as an independent value.
#[test]
fn heap_clones_are_independent_values() {
    let original: DMatrix<f64> = DMatrix::from_shape_vec((Dyn(2), Dyn(2)), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut written = original.clone();
    written.as_mut_slice()[0] = 10.0;
    written[[1, 1]] = 40.0;
    assert_eq!(original.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(written.as_slice(), &[10.0, 2.0, 3.0, 40.0]);
    let shared = original.clone();
    assert_eq!(shared.into_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    let mut target = written.clone();
    target.clone_from(&original);
    target.as_mut_slice()[3] = -1.0;
    assert_eq!(original.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(target.as_slice(), &[1.0, 2.0, 3.0, -1.0]);
    assert_eq!(original.into_vec(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn identity_matrices_have_ones_on_the_diagonal_only() {
    let fixed: Matrix<f32, 3, 3> = Matrix::identity();
    assert_eq!(fixed.to_array(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let sized = DMatrix::<f64>::identity_sized(Dyn(4));
    assert_eq!(sized.shape(), (Dyn(4), Dyn(4)));
    assert!((0..4).all(|r| (0..4).all(|c| sized[[r, c]] == if r == c { 1.0 } else { 0.0 })));
    assert_eq!(DMatrix::<f64>::identity_sized(Dyn(0)).len(), 0);
}

/// A dynamic shape whose element count overflows `usize` is no tensor: the fallible
/// constructors say so, the others panic naming the shape.
#[test]
fn shapes_whose_element_count_overflows_are_refused() {
    let huge = 1usize << 40;
    let error = DMatrix::<f64>::from_shape_slice((Dyn(huge), Dyn(huge)), &[]).unwrap_err();
    assert_eq!(error.lhs().as_slice(), [huge, huge]);
    let message = panic_message(|| DMatrix::<f64>::zeros_shaped((Dyn(huge), Dyn(huge))));
    assert!(message.contains("has more elements than a usize counts"), "{message}");
}

/// The random constructors refuse bounds in the wrong order and a negative or NaN
/// standard deviation.
#[test]
fn random_constructors_refuse_invalid_distributions() {
    let message = panic_message(|| DVector::<f64>::random_uniform_shaped((Dyn(3),), 1.0, 0.0, 7));
    assert!(message.contains("the first at most the second"), "{message}");
    for std_dev in [-1.0, f64::NAN] {
        let message = panic_message(|| DVector::<f64>::random_normal_shaped((Dyn(3),), 0.0, std_dev, 7));
        assert!(message.contains("standard deviation"), "{message}");
    }
    let constant = DVector::<f64>::random_uniform_shaped((Dyn(3),), 2.0, 2.0, 7);
    assert_eq!(constant.as_slice(), [2.0; 3]);
}

/// A large heap buffer whose last tensor is dropped is kept by its thread and reused
/// by the next heap tensor of about its size: only the new elements are seen in it.
#[test]
fn a_dropped_heap_buffer_is_reused_with_only_the_new_elements() {
    type Long = Tensor<f64, (Dyn,), Heap>;
    Heap::release_spares();
    let first = Long::full_shaped((Dyn(4096),), 7.0);
    let address = first.as_slice().as_ptr();
    drop(first);
    // Zeros in the kept buffer, a few fewer of them.
    let zeros = Long::zeros_shaped((Dyn(4000),));
    assert_eq!(zeros.as_slice().as_ptr(), address);
    assert!(zeros.len() == 4000 && zeros.iter().all(|x| *x == 0.0));
    // A copy on write takes a spare buffer too, and leaves the shared one alone.
    let shared = Long::from_shape_fn((Dyn(4000),), |[i]| i as f64);
    drop(zeros);
    let mut written = shared.clone();
    written[[0]] = -1.0;
    assert_eq!(written.as_slice().as_ptr(), address);
    assert_eq!((written[[0]], written[[3999]], shared[[0]]), (-1.0, 3999.0, 0.0));
    assert_eq!(
        written.clone().into_vec(),
        [-1.0].into_iter().chain((1..4000).map(|i| i as f64)).collect::<Vec<_>>()
    );
    // A buffer shared by a clone is not kept when one of them is dropped.
    let kept = written.clone();
    drop(written);
    let other = Long::zeros_shaped((Dyn(4000),));
    assert_ne!(other.as_slice().as_ptr(), address);
    assert_eq!(kept[[0]], -1.0);
    // The elements of a kept buffer, taken out whole.
    drop(other);
    let elements = kept.into_vec();
    assert_eq!((elements.len(), elements[0], elements[3999]), (4000, -1.0, 3999.0));
}

/// An iterator that says it has `claimed` elements and yields `actual`.
struct Claiming {
    claimed: usize,
    actual: usize,
}

impl Iterator for Claiming {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        self.actual = self.actual.checked_sub(1)?;
        self.claimed = self.claimed.saturating_sub(1);
        Some(self.actual as f64)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed, Some(self.claimed))
    }
}

/// A large heap tensor from an iterator with a wrong length is refused, whether its
/// buffer is new or kept, even when the iterator claims the right length.
#[test]
fn a_large_heap_tensor_from_too_few_or_too_many_elements_is_refused() {
    type Long = Tensor<f64, (Dyn,), Heap>;
    let shape = (Dyn(4096),);
    for round in 0..2 {
        for actual in [4095, 4097, 5000] {
            let message = panic_message(|| Long::from_elements(shape, Claiming { claimed: 4096, actual }));
            assert!(message.contains("one element per position"), "round {round}, {actual}: {message}");
        }
        // A tensor dropped: the second round takes its buffer.
        drop(Long::from_elements(shape, Claiming { claimed: 4096, actual: 4096 }));
    }
    let right = Long::from_elements(shape, Claiming { claimed: 4096, actual: 4096 });
    assert_eq!((right[[0]], right[[4095]]), (4095.0, 0.0));
}
