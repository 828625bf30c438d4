//! The [`Tensor`] type: a shape, a storage kind and row-major elements.
//!
//! `Tensor<T, S, K>` holds elements of type `T` in shape `S` (see [`crate::shape`])
//! with storage `K` ([`Inline`] or [`Heap`]). The aliases [`Vector`], [`Matrix`],
//! [`Tensor3`] and [`Tensor4`] name fully static shapes and default to inline storage;
//! [`DVector`] and [`DMatrix`] are dynamic and live on the heap.

mod construct;
#[cfg(feature = "nalgebra")]
mod nalgebra;
pub(crate) mod show;
#[cfg(feature = "std")]
mod spares;
mod storage;

use core::ops::{Index, IndexMut};

#[cfg(feature = "alloc")]
pub use storage::HeapBuffer;
pub use storage::{Heap, HostMemory, Inline, SameKind, Storage, StorageKind, Zeros};

use crate::error::ShapeError;
use crate::shape::{Const, Dims, Dyn, Shape};

/// An n-dimensional array of `T` with shape `S`, stored as `K`.
///
/// # Examples
/// ```
/// use fluxion::prelude::*;
/// let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]);
/// assert_eq!(m[[1, 0]], 3.0);
/// assert_eq!(m.dims().as_slice(), &[2, 2]);
/// ```
pub struct Tensor<T, S: Shape, K: StorageKind<T, S>> {
    shape: S,
    data: K::Buffer,
}

/// A rank-0 tensor holding one element.
pub type Tensor0<T, K = Inline> = Tensor<T, (), K>;
/// A vector of `N` elements.
pub type Vector<T, const N: usize, K = Inline> = Tensor<T, (Const<N>,), K>;
/// An `R`×`C` matrix.
pub type Matrix<T, const R: usize, const C: usize, K = Inline> = Tensor<T, (Const<R>, Const<C>), K>;
/// A rank-3 tensor of shape `[A, B, C]` (e.g. a batch of `A` matrices).
pub type Tensor3<T, const A: usize, const B: usize, const C: usize, K = Inline> =
    Tensor<T, (Const<A>, Const<B>, Const<C>), K>;
/// A rank-4 tensor of shape `[A, B, C, D]`.
pub type Tensor4<T, const A: usize, const B: usize, const C: usize, const D: usize, K = Inline> =
    Tensor<T, (Const<A>, Const<B>, Const<C>, Const<D>), K>;
/// A vector whose length is known at run time.
pub type DVector<T> = Tensor<T, (Dyn,), Heap>;
/// A matrix whose dimensions are known at run time.
pub type DMatrix<T> = Tensor<T, (Dyn, Dyn), Heap>;

impl<T, S: Shape, K: StorageKind<T, S>> Clone for Tensor<T, S, K> {
    #[inline(always)]
    fn clone(&self) -> Self {
        Tensor { shape: self.shape, data: self.data.clone() }
    }

    /// Copies `source` into `self` (a heap buffer is shared, as by `clone`).
    #[inline(always)]
    fn clone_from(&mut self, source: &Self) {
        self.shape = source.shape;
        self.data.clone_from(&source.data);
    }
}

impl<T, S: Shape, K: StorageKind<T, S>> Copy for Tensor<T, S, K> where K::Buffer: Copy {}

impl<T, S: Shape, K: StorageKind<T, S>> Tensor<T, S, K> {
    /// A tensor of `shape` over a buffer of `K` that holds its elements, row-major.
    #[inline(always)]
    pub(crate) fn from_buffer(shape: S, data: K::Buffer) -> Self {
        Tensor { shape, data }
    }

    /// The buffer that holds the elements.
    #[cfg(feature = "cuda")]
    #[inline(always)]
    pub(crate) fn buffer(&self) -> &K::Buffer {
        &self.data
    }

    /// The buffer that holds the elements, mutably.
    #[cfg(feature = "cuda")]
    #[inline(always)]
    pub(crate) fn buffer_mut(&mut self) -> &mut K::Buffer {
        &mut self.data
    }

    /// The shape.
    #[inline(always)]
    pub fn shape(&self) -> S {
        self.shape
    }

    /// The run-time sizes of the shape.
    pub fn dims(&self) -> Dims {
        self.shape.dims()
    }

    /// Checks that `other` has the same run-time shape (only [`Dyn`] dimensions can
    /// differ once the types agree).
    pub(crate) fn check_same_shape<U, K2: StorageKind<U, S>>(
        &self,
        other: &Tensor<U, S, K2>,
        operation: &'static str,
    ) -> Result<(), ShapeError> {
        if self.shape == other.shape {
            Ok(())
        } else {
            Err(ShapeError::new(operation, self.dims(), other.dims(), "the shapes must be equal"))
        }
    }
}

impl<T, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Builds a tensor of `shape` from its flat (row-major) elements.
    #[inline(always)]
    pub fn from_flat_fn(shape: S, f: impl FnMut(usize) -> T) -> Self {
        Tensor { shape, data: K::from_flat_fn(&shape, f) }
    }

    /// Builds a tensor of `shape` from exactly one element per position, row-major.
    ///
    /// # Panics
    /// When `elements` yields a different number of elements.
    #[inline(always)]
    pub fn from_elements(shape: S, elements: impl Iterator<Item = T>) -> Self {
        Tensor { shape, data: K::from_elements(&shape, elements) }
    }

    /// A tensor of `shape` made of the slices `runs` yields, one after another (see
    /// [`Storage::from_runs`]).
    #[inline(always)]
    pub(crate) fn from_runs<'a>(shape: S, runs: impl Iterator<Item = &'a [T]>) -> Self
    where
        T: Copy + 'a,
    {
        Tensor { shape, data: K::from_runs(&shape, runs) }
    }

    /// A tensor of `shape` holding `f` of each of `elements` (see
    /// [`Storage::mapped`]).
    #[inline(always)]
    pub(crate) fn from_mapped<U: Copy>(shape: S, elements: &[U], f: impl FnMut(U) -> T) -> Self {
        Tensor { shape, data: K::mapped(&shape, elements, f) }
    }

    /// The number of elements.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in row-major order.
    #[inline(always)]
    pub fn as_slice(&self) -> &[T] {
        K::as_slice(&self.data)
    }

    /// The elements in row-major order, mutably.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        K::as_mut_slice(&mut self.data)
    }

    /// Iterates over the elements in row-major order.
    pub fn iter(&self) -> core::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the elements in row-major order.
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, T> {
        self.as_mut_slice().iter_mut()
    }

    /// The element at `index`, or `None` when it is out of bounds.
    pub fn get(&self, index: S::Index) -> Option<&T> {
        self.shape.offset(index).map(|offset| &self.as_slice()[offset])
    }
}

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// The same elements in another storage kind (e.g. `Inline` to `Heap`).
    pub fn to_storage<K2: Storage<T, S>>(&self) -> Tensor<T, S, K2> {
        let data = self.as_slice();
        Tensor::from_flat_fn(self.shape, |i| data[i])
    }

    /// The elements in row-major order, copied into a `Vec`.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> alloc::vec::Vec<T> {
        self.as_slice().to_vec()
    }
}

impl<T, S: Shape, K: Storage<T, S>> Index<S::Index> for Tensor<T, S, K> {
    type Output = T;

    #[track_caller]
    fn index(&self, index: S::Index) -> &T {
        match self.shape.offset(index) {
            Some(offset) => &self.as_slice()[offset],
            None => panic!("index {index:?} is out of bounds for shape {}", self.dims()),
        }
    }
}

impl<T, S: Shape, K: Storage<T, S>> IndexMut<S::Index> for Tensor<T, S, K> {
    #[track_caller]
    fn index_mut(&mut self, index: S::Index) -> &mut T {
        match self.shape.offset(index) {
            Some(offset) => &mut self.as_mut_slice()[offset],
            None => panic!("index {index:?} is out of bounds for shape {}", self.dims()),
        }
    }
}

impl<'a, T, S: Shape, K: Storage<T, S>> IntoIterator for &'a Tensor<T, S, K> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: PartialEq, S: Shape, K: Storage<T, S>> PartialEq for Tensor<T, S, K> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.as_slice() == other.as_slice()
    }
}
