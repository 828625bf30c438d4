//! Reductions: Σ, mean and max over all elements or along one axis.
//!
//! Along axis `k`, the output has the shape with axis `k` removed (typed:
//! `Matrix<R, C>::sum_axis(Axis::<1>)` is a `Vector<R>`), and
//! out[…, i_{k-1}, i_{k+1}, …] = Σ_{i_k} x[…, i_k, …]. `max` propagates NaN; the max of
//! an empty axis is −∞.

use crate::scalar::{RealScalar, Scalar};
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
        let data = self.as_slice();
        Tensor::from_flat_fn(self.shape().removed(), |flat| {
            let (outer_index, inner_index) = (flat / inner, flat % inner);
            let start = outer_index * len * inner + inner_index;
            (0..len).fold(init, |acc, k| fold(acc, data[start + k * inner]))
        })
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Σ of all elements.
    pub fn sum(&self) -> T {
        self.iter().fold(T::zero(), |acc, &x| acc + x)
    }

    /// Mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> T {
        self.sum() / T::from_real(count::<T::Real>(self.len()))
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
        self.fold_axis(axis, T::zero(), |acc, x| acc + x)
    }

    /// Mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let len = T::from_real(count::<T::Real>(self.shape().axis_dim().size()));
        self.sum_axis(axis).map(|x| x / len)
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// The largest element (NaN if any element is NaN, −∞ for an empty tensor).
    pub fn max(&self) -> T
    where
        T: RealScalar,
    {
        self.iter().fold(T::neg_infinity(), |acc, &x| acc.max(x))
    }

    /// The largest element along `AXIS`.
    pub fn max_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Tensor<T, S::Removed, K>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        self.fold_axis(axis, T::neg_infinity(), RealScalar::max)
    }
}

/// `n` as a real scalar.
fn count<R: RealScalar>(n: usize) -> R {
    R::from_f64(n as f64)
}
