//! Reductions: Σ, mean and max over all elements or along one axis, and the
//! Euclidean norm ‖x‖ = √Σ|xᵢ|² of all elements.
//!
//! Along axis `k`, the output has the shape with axis `k` removed (typed:
//! `Matrix<R, C>::sum_axis(Axis::<1>)` is a `Vector<R>`), and
//! out[…, i_{k-1}, i_{k+1}, …] = Σ_{i_k} x[…, i_k, …]. `max` propagates NaN; the max of
//! an empty axis is −∞.

use num_traits::Zero;

use crate::backend::wide::wide;
use crate::error::or_panic;
use crate::scalar::{RealScalar, Scalar, is_nan, overtakes};
use crate::shape::constraint::{Axis, HasAxis};
use crate::shape::{Dim, Shape};
use crate::tensor::{Storage, Tensor};

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Folds each line along `AXIS` into one value: `out[o, i] = fold(x[o, 0..len, i])`.
    pub fn fold_axis<const AXIS: usize, U>(
        &self,
        _: Axis<AXIS>,
        init: U,
        mut fold: impl FnMut(U, T) -> U,
    ) -> Tensor<U, S::Removed, K>
    where
        U: Copy,
        S: HasAxis<AXIS>,
        K: Storage<U, S::Removed>,
    {
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        let mut out = Tensor::from_flat_fn(self.shape().removed(), |_| init);
        if len == 0 || inner == 0 {
            return out;
        }
        if inner == 1 {
            // The last axis: each line is contiguous, folded in one pass.
            for (accumulator, line) in out.as_mut_slice().iter_mut().zip(self.as_slice().chunks_exact(len)) {
                *accumulator = line.iter().fold(init, |acc, &x| fold(acc, x));
            }
            return out;
        }
        // Whole lines of `inner` contiguous elements folded into the accumulators in
        // order of k: the same folds as one line at a time, in a loop that vectorises.
        let accumulators = out.as_mut_slice().chunks_exact_mut(inner);
        for (accumulator, block) in accumulators.zip(self.as_slice().chunks_exact(len * inner)) {
            for line in block.chunks_exact(inner) {
                accumulator.iter_mut().zip(line).for_each(|(acc, &x)| *acc = fold(*acc, x));
            }
        }
        out
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Σ of all elements.
    pub fn sum(&self) -> T {
        pairwise_sum(self.as_slice())
    }

    /// Mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> T {
        self.sum().div_count(self.len())
    }

    /// ‖x‖ = √Σ|xᵢ|², the Euclidean norm of all the elements (a matrix's Frobenius
    /// norm; `torch.linalg.norm`, `jnp.linalg.norm`, nalgebra's `norm`): 0 for an
    /// empty tensor, ∞ with an infinite element, NaN with a NaN. The squares are
    /// summed as they are where their sum is safely inside the scalar's range, else
    /// again with each element divided by the largest |xᵢ| first, so no square
    /// overflows or underflows.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let x: Vector<f64, 2> = Vector::from_array([3.0, 4.0]);
    /// assert_eq!(x.norm(), 5.0);
    /// // Squares past f64's range: 1e300·√2, not ∞.
    /// let huge: Vector<f64, 2> = Vector::from_array([1e300, 1e300]);
    /// assert!((huge.norm() / 1e300 - 2f64.sqrt()).abs() < 1e-15);
    /// ```
    pub fn norm(&self) -> T::Real {
        euclidean_norm(self.iter().copied())
    }

    /// Σ along `AXIS`.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let m: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let rows: Vector<f64, 2> = m.sum_axis(Axis::<1>);
    /// assert_eq!(rows.to_array(), [6., 15.]);
    /// ```
    pub fn sum_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        if inner == 1 && len > 0 {
            // Contiguous lines: each summed pairwise.
            let mut out = Tensor::from_flat_fn(self.shape().removed(), |_| T::zero());
            for (total, line) in out.as_mut_slice().iter_mut().zip(self.as_slice().chunks_exact(len)) {
                *total = pairwise_sum(line);
            }
            return out;
        }
        #[cfg(feature = "alloc")]
        if len > LINE_BLOCK && inner > 0 {
            return cascaded_sum_axis::<AXIS, T, S, K>(self);
        }
        self.fold_axis(axis, T::zero(), |acc, x| acc + x)
    }

    /// Mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let len = self.shape().axis_dim().size();
        self.sum_axis(axis).map(|x| x.div_count(len))
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// The largest element (NaN if any element is NaN, −∞ for an empty tensor). On
    /// duals, the element the pullback picks (the first NaN, or else the first
    /// largest), with its tangent.
    pub fn max(&self) -> T
    where
        T: RealScalar,
    {
        if T::CARRIES_TANGENT {
            let data = self.as_slice();
            first_argmax(data, 0, data.len(), 1).map_or(T::neg_infinity(), |winner| data[winner])
        } else {
            self.iter().fold(T::neg_infinity(), |acc, &x| acc.max(x))
        }
    }

    /// The largest element along `AXIS` (as [`max`](Self::max) on each line).
    pub fn max_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let (_, len, inner) = self.dims().split_at_axis(AXIS);
        let data = self.as_slice();
        if inner == 1 {
            Tensor::from_flat_fn(self.shape().removed(), |line| contiguous_max(&data[line * len..][..len]))
        } else if T::CARRIES_TANGENT {
            Tensor::from_flat_fn(self.shape().removed(), |line| {
                line_argmax(data, line, len, inner).map_or(T::neg_infinity(), |winner| data[winner])
            })
        } else {
            self.fold_axis(axis, T::neg_infinity(), RealScalar::max)
        }
    }
}

/// The maximum of the contiguous `line` (NaN if it holds one, −∞ if empty; a dual's
/// is its first largest element, tangent included). Plain numbers of a long line go
/// in eight lanes, so that one comparison does not wait for the one before; a zero
/// maximum is found again in order, so that −0 and +0 tie as a fold in order does.
pub(crate) fn contiguous_max<T: RealScalar>(line: &[T]) -> T {
    const LANES: usize = 8;
    if T::CARRIES_TANGENT {
        return first_argmax(line, 0, line.len(), 1).map_or(T::neg_infinity(), |winner| line[winner]);
    }
    if line.len() < 2 * LANES {
        return line.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    }
    let mut lanes = [T::neg_infinity(); LANES];
    let mut chunks = line.chunks_exact(LANES);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, &x)| *lane = lane.max(x));
    }
    let rest = chunks.remainder().iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    let max = lanes.into_iter().fold(rest, RealScalar::max);
    if max == T::zero() {
        return line.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    }
    max
}

// Reverse-mode rules.

/// x̄ᵢ = s̄ for s = Σ xᵢ.
pub fn sum_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(x: &Tensor<T, S, K>, s_bar: T) -> Tensor<T, S, K> {
    Tensor::full_shaped(x.shape(), s_bar)
}

/// x̄ᵢ = s̄/n for the mean of n elements.
pub fn mean_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    s_bar: T,
) -> Tensor<T, S, K> {
    Tensor::full_shaped(x.shape(), s_bar.div_count(x.len()))
}

/// √Σ|xᵢ|² of `values` (see [`Tensor::norm`]): the squares summed as they are where
/// their sum is safely inside the scalar's range, else again divided by the
/// largest |xᵢ| first.
#[inline(always)]
pub(crate) fn euclidean_norm<T: Scalar>(values: impl Iterator<Item = T> + Clone) -> T::Real {
    let infinity = -T::Real::neg_infinity();
    let sum_of_squares = values.clone().fold(T::Real::zero(), |sum, x| sum + x.norm_sqr());
    // Below this a term that underflowed would matter; at ∞ one overflowed.
    if sum_of_squares >= T::Real::min_positive() / T::Real::epsilon() && sum_of_squares < infinity {
        return sum_of_squares.sqrt();
    }
    let largest = values.clone().fold(T::Real::zero(), |largest, x| largest.max(x.abs()));
    // 0, ∞ or NaN is the norm itself.
    if largest == T::Real::zero() || largest == infinity || is_nan(largest) {
        return largest;
    }
    let scaled = values.fold(T::Real::zero(), |sum, x| sum + divided_by(x, largest).norm_sqr());
    largest * scaled.sqrt()
}

/// x/r for a real r, each part divided by r (no reciprocal to overflow).
#[inline(always)]
fn divided_by<T: Scalar>(x: T, r: T::Real) -> T {
    T::from_parts(x.re() / r, x.im() / r)
}

/// x/‖x‖ given y = ‖x‖, each part divided by y (no reciprocal to overflow), or 0 at
/// x = 0.
fn unit_direction<T: Scalar, S: Shape, K: Storage<T, S>>(x: &Tensor<T, S, K>, y: T::Real) -> Tensor<T, S, K> {
    if y == T::Real::zero() {
        return Tensor::zeros_shaped(x.shape());
    }
    x.map(|x| divided_by(x, y))
}

/// The tangent of y = ‖x‖ given y: ẏ = Re⟨u, ẋ⟩ with u = x/‖x‖; 0 at x = 0, where the
/// norm has no derivative (the subgradient 0, as PyTorch's).
///
/// # Panics
/// When the shapes differ.
#[track_caller]
pub fn norm_push<T: Scalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    y: T::Real,
    x_dot: &Tensor<T, S, K>,
) -> T::Real {
    or_panic(x.check_same_shape(x_dot, "norm_push"));
    unit_direction(x, y).inner(x_dot).re()
}

/// The cotangent of y = ‖x‖ given y: x̄ = ȳ·x/‖x‖, 0 at x = 0.
pub fn norm_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    y: T::Real,
    y_bar: T::Real,
) -> Tensor<T, S, K> {
    unit_direction(x, y).scale(T::from_real(y_bar))
}

/// s̄ flows to the first largest element of x.
pub fn max_pullback<T: RealScalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    s_bar: T,
) -> Tensor<T, S, K> {
    let winner = first_argmax(x.as_slice(), 0, x.len(), 1);
    Tensor::from_flat_fn(x.shape(), |i| if Some(i) == winner { s_bar } else { T::zero() })
}

/// The block that [`pairwise_sum`] sums directly, in [`SUM_LANES`] interleaved totals.
const SUM_BLOCK: usize = 2048;

/// Interleaved totals of a block: independent chains of additions, which vectorise
/// and overlap (four AVX2 vectors of `f32`), each summing 64 values of a block.
const SUM_LANES: usize = 32;

/// Σ of `values` by pairwise summation: halves summed recursively down to blocks of
/// [`SUM_BLOCK`] values, each summed in [`SUM_LANES`] interleaved totals combined as a
/// tree. The rounding error grows as O(log n) rather than O(n): 2²⁴ + 8 ones in `f32`
/// sum to 16777224, where a running total stops at 16777216.
pub(crate) fn pairwise_sum<T: Scalar>(values: &[T]) -> T {
    pairwise_sum_by(values, |x| x)
}

/// Σ f(xᵢ) over `values` in the order and grouping of [`pairwise_sum`] (a variance's
/// squared deviations, without a buffer of them).
#[inline]
pub(crate) fn pairwise_sum_by<T: Copy, U: Scalar>(values: &[T], f: impl Fn(T) -> U + Copy) -> U {
    if values.len() < SUM_LANES {
        return values.iter().fold(U::zero(), |total, &x| total + f(x));
    }
    if values.len() > SUM_BLOCK {
        let middle = (values.len() / 2).next_multiple_of(SUM_BLOCK).min(values.len());
        let (left, right) = values.split_at(middle);
        return pairwise_sum_by(left, f) + pairwise_sum_by(right, f);
    }
    let mut lanes = [U::zero(); SUM_LANES];
    let chunks = values.chunks_exact(SUM_LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    for k in 8..SUM_LANES {
        lanes[k % 8] += lanes[k];
    }
    let [a, b, c, d, e, f_, g, h] = [0, 1, 2, 3, 4, 5, 6, 7].map(|k| lanes[k]);
    rest.iter().fold(((a + b) + (c + d)) + ((e + f_) + (g + h)), |total, &x| total + f(x))
}

/// The lines of an axis that is not the last one summed in order before their total
/// joins the pairwise combination ([`cascaded_sum_axis`]).
#[cfg(feature = "alloc")]
const LINE_BLOCK: usize = 128;

/// Σ along an axis that is not the last one, of more than [`LINE_BLOCK`] lines:
/// blocks of lines summed in order, the blocks' totals combined pairwise (a binary
/// counter of partial sums, one per level), so the rounding grows as O(log n).
#[cfg(feature = "alloc")]
fn cascaded_sum_axis<const AXIS: usize, T: Scalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
) -> Tensor<T, S::Removed, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let (_, len, inner) = x.dims().split_at_axis(AXIS);
    let mut out = Tensor::from_flat_fn(x.shape().removed(), |_| T::zero());
    for (total, lines) in
        out.as_mut_slice().chunks_exact_mut(inner).zip(x.as_slice().chunks_exact(len * inner))
    {
        // levels[i]: the total of 2^i blocks, while its bit of the block count is set.
        let mut levels: alloc::vec::Vec<Option<alloc::vec::Vec<T>>> = alloc::vec::Vec::new();
        for block in lines.chunks(LINE_BLOCK * inner) {
            let mut carry = alloc::vec![T::zero(); inner];
            for line in block.chunks_exact(inner) {
                carry.iter_mut().zip(line).for_each(|(acc, &v)| *acc += v);
            }
            for level in levels.iter_mut() {
                match level.take() {
                    Some(earlier) => carry.iter_mut().zip(earlier).for_each(|(acc, e)| *acc = e + *acc),
                    None => {
                        *level = Some(carry);
                        carry = alloc::vec::Vec::new();
                        break;
                    }
                }
            }
            if !carry.is_empty() {
                levels.push(Some(carry));
            }
        }
        // The remaining levels, smallest first.
        for partial in levels.into_iter().flatten() {
            total.iter_mut().zip(partial).for_each(|(acc, p)| *acc = p + *acc);
        }
    }
    out
}

/// x̄[o, k, i] = ȳ[o, i] for y = Σ along `AXIS` (ȳ repeated along the axis).
pub fn sum_axis_pullback<const AXIS: usize, T: Scalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S::Removed, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    spread_along(x, AXIS, [y_bar.as_slice()], |_, _, _, [g]| g)
}

/// x̄[o, k, i] = ȳ[o, i]/len for the mean along `AXIS`.
pub fn mean_axis_pullback<const AXIS: usize, T: Scalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S::Removed, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let len = x.shape().axis_dim().size();
    spread_along(x, AXIS, [y_bar.as_slice()], |_, _, _, [g]| g.div_count(len))
}

/// ȳ[o, i] flows to the first largest element of each line along `AXIS`.
#[cfg(feature = "alloc")]
pub fn max_axis_pullback<const AXIS: usize, T: RealScalar, S: HasAxis<AXIS>, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S::Removed, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, S::Removed>,
{
    let (outer, len, inner) = x.dims().split_at_axis(AXIS);
    let data = x.as_slice();
    let winners: alloc::vec::Vec<Option<usize>> =
        (0..outer * inner).map(|line| line_argmax(data, line, len, inner)).collect();
    spread_along(
        x,
        AXIS,
        [y_bar.as_slice()],
        |flat, line, _, [g]| if winners[line] == Some(flat) { g } else { T::zero() },
    )
}

/// The flat index of the first NaN, or else of the first largest, of `len` elements
/// starting at `start`, `stride` apart (`None` when empty): the element `max` gives,
/// NaN propagating.
pub(crate) fn first_argmax<T: RealScalar>(
    data: &[T],
    start: usize,
    len: usize,
    stride: usize,
) -> Option<usize> {
    (0..len)
        .map(|k| start + k * stride)
        .reduce(|best, i| if overtakes(data[i], data[best]) { i } else { best })
}

/// [`first_argmax`] of line `line` along an axis of length `len`, with `inner`
/// elements after it in each block.
pub(crate) fn line_argmax<T: RealScalar>(data: &[T], line: usize, len: usize, inner: usize) -> Option<usize> {
    first_argmax(data, (line / inner) * len * inner + line % inner, len, inner)
}

/// A tensor of x's shape whose element at flat index `flat`, on line `line` along
/// `axis`, is `f(flat, line, x[flat], [per_line[0][line], …])`; `line` indexes the
/// shape without the axis.
pub(crate) fn spread_along<T: Copy + 'static, U: Copy, const N: usize, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    axis: usize,
    per_line: [&[U]; N],
    mut f: impl FnMut(usize, usize, T, [U; N]) -> T,
) -> Tensor<T, S, K> {
    let (_, len, inner) = x.dims().split_at_axis(axis);
    // Written in place of a copy, with no division per element, in loops that
    // vectorise `f32` and `f64` elementary functions.
    let mut y = x.clone();
    if len == 0 || inner == 0 {
        return y;
    }
    let values = y.as_mut_slice();
    wide::<T, _>(
        #[inline(always)]
        || {
            if inner == 1 {
                // The last axis: lines are contiguous rows.
                for (line, row) in values.chunks_exact_mut(len).enumerate() {
                    let at_line = per_line.map(|values| values[line]);
                    for (k, out) in row.iter_mut().enumerate() {
                        *out = f(line * len + k, line, *out, at_line);
                    }
                }
                return;
            }
            // Another axis: block by block, entry k of the axis a run of `inner`
            // elements of consecutive lines, whose per-line values are a run too.
            for (outer, block) in values.chunks_exact_mut(len * inner).enumerate() {
                let lines = per_line.map(|values| &values[outer * inner..][..inner]);
                for (k, run) in block.chunks_exact_mut(inner).enumerate() {
                    let first = (outer * len + k) * inner;
                    for (i, out) in run.iter_mut().enumerate() {
                        *out = f(first + i, outer * inner + i, *out, lines.map(|values| values[i]));
                    }
                }
            }
        },
    );
    y
}
