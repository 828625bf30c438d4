//! Helpers shared by the gradient tests (`tests/grad_*.rs`): asserting a checker
//! result, deterministic inputs away from non-differentiable points, and approximate
//! comparison of gradients.
//!
//! Each gradient test file includes this module with `mod common_grad;` and uses a
//! subset of it.
#![allow(dead_code)]

use fluxion::autodiff::check::GradientError;
use fluxion::prelude::*;

/// Asserts that a checker result is `Ok` with at least one comparison, naming `what`
/// and the first disagreement otherwise.
#[track_caller]
pub fn ok(what: &str, result: Result<usize, GradientError>) {
    match result {
        Ok(comparisons) => assert!(comparisons > 0, "{what}: the checker made no comparison"),
        Err(error) => panic!("{what}: {error}"),
    }
}

/// `n` distinct values of mixed sign, none within 0.1 of zero and no two within 0.05
/// of each other (so relu, abs and max are differentiable there and have no ties).
pub fn mixed_values(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let magnitude = 0.3 + 0.137 * i as f64 + 0.05 * ((i * 7) % 5) as f64;
            if i % 3 == 1 { -magnitude } else { magnitude }
        })
        .collect()
}

/// `n` distinct values in [0.4, 2.5): inputs for `ln`, `sqrt` and `powf`.
pub fn positive_values(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.4 + (0.31 * i as f64 + 0.17 * ((i * 5) % 7) as f64) % 2.1).collect()
}

/// `n` complex values with |Re|, |Im| below 1.2, none near zero.
pub fn complex_values(n: usize) -> Vec<Complex64> {
    let re = mixed_values(n);
    (0..n)
        .map(|i| Complex64::new(re[i] * 0.9, 0.25 + 0.11 * ((i * 3) % 7) as f64 - 0.4 * (i % 2) as f64))
        .collect()
}

/// `n` complex values with positive real part: away from the branch cut of `ln`,
/// `sqrt` and `powf` on the negative real axis.
pub fn complex_right_half_plane(n: usize) -> Vec<Complex64> {
    let re = positive_values(n);
    (0..n).map(|i| Complex64::new(re[i], 0.6 - 0.23 * ((i * 4) % 6) as f64)).collect()
}

/// A tensor of static shape `S` whose flat elements are `values`.
pub fn static_tensor<T: Copy, S: StaticShape, K: Storage<T, S>>(values: &[T]) -> Tensor<T, S, K> {
    Tensor::from_shape_slice(S::default(), values).expect("as many values as elements")
}

/// The elements of `values` as `f32`.
pub fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&x| x as f32).collect()
}

/// Asserts `|a − e| ≤ tol·max(1, |e|)` for every element of two complex or real
/// sequences.
#[track_caller]
pub fn assert_close_slices<T: Scalar>(actual: &[T], expected: &[T], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let difference = (a - e).abs().to_f64();
        let scale = e.abs().to_f64().max(1.0);
        assert!(difference <= tol * scale, "element {index}: {a} differs from {e} by {difference:e}");
    }
}

/// Asserts `|a − e| ≤ tol·max(1, |e|)` for two scalars.
#[track_caller]
pub fn assert_close<T: Scalar>(actual: T, expected: T, tol: f64) {
    assert_close_slices(&[actual], &[expected], tol);
}

/// A direction with every real coordinate in [−0.5, 0.5), deterministic; `start` in
/// (0, 1) picks another one.
pub fn seeded_direction<V: VectorSpace>(zero: V, start: f64) -> V {
    let (mut direction, mut seed) = (zero, start);
    direction.map_reals(&mut |_| {
        seed = (seed * 7.1 + 0.13).fract();
        seed - 0.5
    });
    direction
}

/// [`seeded_direction`] from 0.3.
pub fn some_direction<V: VectorSpace>(zero: V) -> V {
    seeded_direction(zero, 0.3)
}

/// ⟨a, b⟩ over every real coordinate.
pub fn inner<V: RealLeaves>(a: &V, b: &V) -> f64 {
    let (mut left, mut right) = (Vec::new(), Vec::new());
    a.for_each_real(&mut |c| left.push(c));
    b.for_each_real(&mut |c| right.push(c));
    left.iter().zip(&right).map(|(a, b)| a * b).sum()
}

/// Asserts that `product`, H·v for the loss whose gradient `gradient` gives, matches
/// central differences of the gradient along `v` at `model`, read along `w`.
#[track_caller]
pub fn assert_hvp_matches_differences<M>(
    model: &M,
    v: &M::Tangent,
    w: &M::Tangent,
    product: &M::Tangent,
    gradient: impl Fn(&M) -> M::Tangent,
) where
    M: Differentiable + Clone,
    M::Tangent: VectorSpace + RealLeaves,
{
    let h = 1e-5;
    let gradient_at = |sign: f64| {
        let mut moved = model.clone();
        moved.move_by(&v.scaled(sign * h));
        gradient(&moved)
    };
    let (plus, minus) = (gradient_at(1.0), gradient_at(-1.0));
    let numeric = (inner(&plus, w) - inner(&minus, w)) / (2.0 * h);
    assert!((inner(product, w) - numeric).abs() < 1e-7, "{} vs {numeric}", inner(product, w));
}
