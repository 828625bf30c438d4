//! Conversions to and from nalgebra's statically sized matrices and vectors.
//!
//! nalgebra stores column-major and fluxion row-major; the conversions move each
//! element to the same (row, column) position.

use nalgebra::{SMatrix, SVector};

use super::{Matrix, Storage, Tensor, Vector};
use crate::scalar::Scalar;
use crate::shape::Const;

impl<T, const R: usize, const C: usize, K> From<SMatrix<T, R, C>> for Matrix<T, R, C, K>
where
    T: Scalar + nalgebra::Scalar,
    K: Storage<T, (Const<R>, Const<C>)>,
{
    fn from(m: SMatrix<T, R, C>) -> Self {
        Tensor::from_fn(|[i, j]: [usize; 2]| m[(i, j)])
    }
}

impl<T, const R: usize, const C: usize, K> From<Matrix<T, R, C, K>> for SMatrix<T, R, C>
where
    T: Scalar + nalgebra::Scalar,
    K: Storage<T, (Const<R>, Const<C>)>,
{
    fn from(m: Matrix<T, R, C, K>) -> Self {
        SMatrix::from_fn(|i, j| m[[i, j]])
    }
}

impl<T, const N: usize, K> From<SVector<T, N>> for Vector<T, N, K>
where
    T: Scalar + nalgebra::Scalar,
    K: Storage<T, (Const<N>,)>,
{
    fn from(v: SVector<T, N>) -> Self {
        Tensor::from_fn(|[i]: [usize; 1]| v[i])
    }
}

impl<T, const N: usize, K> From<Vector<T, N, K>> for SVector<T, N>
where
    T: Scalar + nalgebra::Scalar,
    K: Storage<T, (Const<N>,)>,
{
    fn from(v: Vector<T, N, K>) -> Self {
        SVector::from_fn(|i, _| v[[i]])
    }
}
