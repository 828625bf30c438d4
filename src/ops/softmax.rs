//! Normalisations along an axis, computed stably by shifting by the maximum:
//!
//! - `logsumexp(x) = m + ln Σ exp(xᵢ − m)` with m = maxᵢ xᵢ (the axis is removed);
//! - `log_softmax(x)ᵢ = (xᵢ − m) − ln Σ exp(xⱼ − m)`;
//! - `softmax(x)ᵢ = exp(xᵢ − m) / Σ exp(xⱼ − m)`, so each line sums to 1.
//!
//! Nothing overflows for inputs of any magnitude (e.g. 1000), and the shifted forms
//! keep full relative precision there. A line whose maximum is ±∞ gives logsumexp ±∞;
//! softmax and log_softmax of such a line are NaN, as in NumPy and PyTorch.

use crate::backend::wide::wide;
use crate::ops::reduce::{contiguous_max, line_argmax, spread_along};
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Shape;
use crate::shape::constraint::{Axis, HasAxis};
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Per line along `AXIS`: the maximum m and Σ exp(xᵢ − m) (1 ≤ Σ ≤ len when m is
    /// finite).
    fn shifted_totals<const AXIS: usize>(&self) -> (Tensor<T, S::Removed, K>, Tensor<T, S::Removed, K>)
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let max = self.max_axis(Axis::<AXIS>);
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        let (data, max_data) = (self.as_slice(), max.as_slice());
        if inner == 1 {
            // Contiguous lines: each a slice.
            let totals = Tensor::from_flat_fn(max.shape(), |line| {
                sum_exp_shifted(&data[line * len..][..len], max_data[line])
            });
            return (max, totals);
        }
        // Another axis: the totals of a block's `inner` lines side by side, entry k of
        // the axis added to each in turn (each line's sum in order).
        let mut totals = Tensor::full_shaped(max.shape(), T::zero());
        if len == 0 || inner == 0 {
            return (max, totals);
        }
        let lines = totals.as_mut_slice().chunks_exact_mut(inner).zip(max_data.chunks_exact(inner));
        wide::<T, _>(
            #[inline(always)]
            || {
                for ((sums, m), block) in lines.zip(data.chunks_exact(len * inner)) {
                    for run in block.chunks_exact(inner) {
                        for ((sum, &m), &x) in sums.iter_mut().zip(m).zip(run) {
                            *sum += (x - m).exp();
                        }
                    }
                }
            },
        );
        (max, totals)
    }

    /// Per line along `AXIS`: the maximum m and ln Σ exp(xᵢ − m), the shift of
    /// `log_softmax` (one logarithm per line).
    pub(crate) fn shifted_log_totals<const AXIS: usize>(
        &self,
    ) -> (Tensor<T, S::Removed, K>, Tensor<T, S::Removed, K>)
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (max, totals) = self.shifted_totals::<AXIS>();
        (max, totals.map(|total| total.ln()))
    }

    /// ln Σ exp along `AXIS`, removing it.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let x: Vector<f64, 2> = Vector::from_array([1000.0, 1000.0]);
    /// let lse = x.logsumexp(Axis::<0>);
    /// assert!((lse[[]] - (1000.0 + 2f64.ln())).abs() < 1e-12);
    /// ```
    pub fn logsumexp<const AXIS: usize>(&self, _: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (max, totals) = self.shifted_totals::<AXIS>();
        max.zip_map(&totals, |m, total| {
            // An infinite maximum is the answer (and would make x − m NaN); a line that
            // is all −∞ does not move with x (a dual's tangent 0, as in the pullback).
            if m <= T::neg_infinity() {
                m.without_tangent()
            } else if m >= -T::neg_infinity() {
                m
            } else {
                m + total.ln()
            }
        })
    }

    /// (x − m) − ln Σ exp(x − m) along `AXIS`, with m the line's maximum.
    pub fn log_softmax<const AXIS: usize>(&self, _: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (max, log_totals) = self.shifted_log_totals::<AXIS>();
        let (max, log_totals) = (max.as_slice(), log_totals.as_slice());
        spread_along(self, AXIS, [max, log_totals], |_, _, x, [m, log_total]| (x - m) - log_total)
    }

    /// exp(x − m) / Σ exp(x − m) along `AXIS`: every line along the axis sums to 1.
    pub fn softmax<const AXIS: usize>(&self, _: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        if inner == 1 && len > 0 {
            // The last axis, a block of rows at a time: each row shifted by its
            // maximum, the block's exponentials in one loop (short rows share it, so
            // that it runs full vectors), then each row divided by its total (the
            // same numbers as the general form below).
            let mut y = self.clone();
            for block in y.as_mut_slice().chunks_mut(len * (SHORT_ROWS_BLOCK / len).max(1)) {
                for row in block.chunks_exact_mut(len) {
                    shift(row, contiguous_max(row));
                }
                exponentiate(block);
                for row in block.chunks_exact_mut(len) {
                    let total = add_in_order(T::zero(), row);
                    row.iter_mut().for_each(|x| *x /= total);
                }
            }
            return y;
        }
        let (max, totals) = self.shifted_totals::<AXIS>();
        let (max, totals) = (max.as_slice(), totals.as_slice());
        spread_along(self, AXIS, [max, totals], |_, _, x, [m, total]| (x - m).exp() / total)
    }
}

/// The most elements of softmax rows along the last axis exponentiated in one loop:
/// rows of up to half as many share it (a longer row has a loop of its own).
const SHORT_ROWS_BLOCK: usize = 256;

/// xᵢ ← xᵢ − m for every element of `values`.
fn shift<T: RealScalar>(values: &mut [T], m: T) {
    values.iter_mut().for_each(|x| *x -= m);
}

/// xᵢ ← e^xᵢ for every element of `values`, in one loop of its own (vectorised for
/// `f32` where [`wide`] finds wide vectors).
fn exponentiate<T: RealScalar>(values: &mut [T]) {
    wide::<T, _>(
        #[inline(always)]
        || values.iter_mut().for_each(|x| *x = x.exp()),
    );
}

/// xᵢ ← e^(xᵢ − m) for every element of `row`, then their sum, added in order: a
/// softmax's numerators and denominator.
pub(crate) fn exponentiate_shifted<T: RealScalar>(row: &mut [T], m: T) -> T {
    shift(row, m);
    exponentiate(row);
    add_in_order(T::zero(), row)
}

/// `start` + Σ `values`, added one after another from the first (the order every
/// softmax total keeps, so that the forms agree bit for bit).
#[inline(always)]
fn add_in_order<T: RealScalar>(start: T, values: &[T]) -> T {
    values.iter().fold(start, |total, &x| total + x)
}

/// Σ e^(xᵢ − m) over `line`, added in order, the exponentials computed a chunk at a
/// time on the stack by [`exponentiate`].
pub(crate) fn sum_exp_shifted<T: RealScalar>(line: &[T], m: T) -> T {
    const CHUNK: usize = 64;
    let mut exponentials = [T::zero(); CHUNK];
    line.chunks(CHUNK).fold(T::zero(), |total, chunk| {
        let exponentials = &mut exponentials[..chunk.len()];
        exponentials.iter_mut().zip(chunk).for_each(|(e, &x)| *e = x - m);
        exponentiate(exponentials);
        add_in_order(total, exponentials)
    })
}

// Reverse-mode rules; `ȳ` is summed along the axis through `sum_axis`.

/// x̄ = ȳ (repeated along the axis) ⊙ softmax(x), for y = logsumexp(x); 0 along a
/// line that is all −∞ (y = −∞ there does not move with x, and its softmax, 0/0, is
/// not a derivative), so that a masked-out line adds no NaN; on a line with a +∞,
/// ȳ to its first +∞ (the limit of the softmax there, and what a dual gives).
pub fn logsumexp_pullback<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S::Removed, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let (max, totals) = x.shifted_totals::<AXIS>();
    let (data, max, totals) = (x.as_slice(), max.as_slice(), totals.as_slice());
    let (_, len, inner) = x.dims().split_at_axis(AXIS);
    spread_along(x, AXIS, [y_bar.as_slice(), max, totals], |flat, line, x, [g, m, total]| {
        if m <= T::neg_infinity() {
            T::zero()
        } else if m >= -T::neg_infinity() {
            // y = +∞ follows the first +∞ element alone (as `max` does; e^(x − m) is
            // NaN there).
            if line_argmax(data, line, len, inner) == Some(flat) { g } else { T::zero() }
        } else {
            g * (x - m).exp() / total
        }
    })
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
    let y = y.as_slice();
    spread_along(y_bar, AXIS, [totals.as_slice()], |flat, _, g, [total]| g - y[flat].exp() * total)
}

/// ẏ = ẋ − Σ softmax(x) ⊙ ẋ along the axis, for y = log_softmax(x) (softmax(x) =
/// e^y): the forward-mode rule.
pub fn log_softmax_push<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    y: &Tensor<T, S, K>,
    x_dot: &Tensor<T, S, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let totals = y.map(|v| v.exp()).hadamard(x_dot).sum_axis(Axis::<AXIS>);
    spread_along(x_dot, AXIS, [totals.as_slice()], |_, _, x_dot, [total]| x_dot - total)
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
    let y = y.as_slice();
    spread_along(y_bar, AXIS, [totals.as_slice()], |flat, _, g, [total]| y[flat] * (g - total))
}
