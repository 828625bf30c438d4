//! Normalisations along an axis, computed stably by shifting by the maximum:
//!
//! - `logsumexp(x) = m + ln Σ exp(xᵢ − m)` with m = maxᵢ xᵢ (the axis is removed);
//! - `log_softmax(x)ᵢ = xᵢ − logsumexp(x)`;
//! - `softmax(x)ᵢ = exp(xᵢ − logsumexp(x))`, so each line sums to 1.
//!
//! No intermediate overflows for inputs of any magnitude (e.g. 1000). A line whose
//! maximum is −∞ gives logsumexp −∞.

use crate::ops::reduce::spread_along;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Shape;
use crate::shape::constraint::{Axis, HasAxis};
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// ln Σ exp along `AXIS`, removing it.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let x: Vector<f64, 2> = Vector::from_array([1000.0, 1000.0]);
    /// let lse = x.logsumexp(Axis::<0>);
    /// assert!((lse[[]] - (1000.0 + 2f64.ln())).abs() < 1e-12);
    /// ```
    pub fn logsumexp<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let max = self.max_axis(axis);
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        let data = self.as_slice();
        let max_data = max.as_slice();
        Tensor::from_flat_fn(max.shape(), |flat| {
            let shift = max_data[flat];
            if shift == T::neg_infinity() {
                return shift;
            }
            let start = (flat / inner) * len * inner + flat % inner;
            let total = (0..len).fold(T::zero(), |acc, k| acc + (data[start + k * inner] - shift).exp());
            shift + total.ln()
        })
    }

    /// x − logsumexp(x) along `AXIS`.
    pub fn log_softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let lse = self.logsumexp(axis);
        self.shifted_along(AXIS, lse.as_slice(), |x, shift| x - shift)
    }

    /// exp(x − logsumexp(x)) along `AXIS`: every line along the axis sums to 1.
    pub fn softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let lse = self.logsumexp(axis);
        self.shifted_along(AXIS, lse.as_slice(), |x, shift| (x - shift).exp())
    }

    /// Applies `f(x, per_line[line])` where `line` indexes the tensor with `axis`
    /// removed.
    fn shifted_along(&self, axis: usize, per_line: &[T], f: impl Fn(T, T) -> T) -> Self
    where
        T: RealScalar,
    {
        let (_, len, inner) = self.dims().split_at_axis(axis);
        let data = self.as_slice();
        Tensor::from_flat_fn(self.shape(), |flat| {
            let line = (flat / (len * inner)) * inner + flat % inner;
            f(data[flat], per_line[line])
        })
    }
}

// Reverse-mode rules; `ȳ` is summed along the axis through `sum_axis`.

/// x̄ = ȳ (repeated along the axis) ⊙ softmax(x), for y = logsumexp(x).
pub fn logsumexp_pullback<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
    y: &Tensor<T, S::Removed, K>,
    y_bar: &Tensor<T, S::Removed, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let (data, y_bar) = (x.as_slice(), y_bar.as_slice());
    spread_along(x, AXIS, y.as_slice(), |flat, line, _, lse| y_bar[line] * (data[flat] - lse).exp())
}

/// x̄ = ȳ − softmax(x) ⊙ Σ ȳ, for y = log_softmax(x).
pub fn log_softmax_pullback<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    y: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let totals = y_bar.sum_axis(Axis::<AXIS>);
    let (y, g) = (y.as_slice(), y_bar.as_slice());
    spread_along(y_bar, AXIS, totals.as_slice(), |flat, _, _, total| g[flat] - y[flat].exp() * total)
}

/// x̄ = y ⊙ (ȳ − Σ ȳ ⊙ y), for y = softmax(x).
pub fn softmax_pullback<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    y: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let totals = y_bar.hadamard(y).sum_axis(Axis::<AXIS>);
    let (y, g) = (y.as_slice(), y_bar.as_slice());
    spread_along(y_bar, AXIS, totals.as_slice(), |flat, _, _, total| y[flat] * (g[flat] - total))
}
