//! Where a tensor's elements live.
//!
//! [`StorageKind`] is what every kind has: a buffer type. [`Storage`] adds what host
//! memory gives: the elements as a slice. The host kinds are [`Inline`] (a nested
//! array inside the value, no heap; `Copy` when the element is) and [`Heap`] (a `Vec`
//! shared by clones until one of them writes, for large or dynamic shapes); every
//! host operation is written once over
//! [`Storage`] and works on both. A device kind (the `Cuda` kind of the `cuda`
//! feature) implements [`StorageKind`] only and brings its own kernels: the same
//! operations, under the same names, launched on the device.

#[cfg(feature = "alloc")]
use alloc::sync::Arc;
#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::Tensor;
#[cfg(feature = "std")]
use crate::autodiff::Var;
use crate::scalar::Scalar;
use crate::shape::{FlatArray, Shape, StaticShape};

/// A storage kind for elements `T` of a tensor of shape `S`: host memory or a device.
#[diagnostic::on_unimplemented(
    message = "`{Self}` storage cannot hold a tensor of shape `{S}`",
    note = "`Inline` storage needs every dimension to be `Const`; use `Heap` for shapes with `Dyn` dimensions"
)]
pub trait StorageKind<T, S: Shape>: Sized + 'static {
    /// The container of the elements.
    type Buffer: Clone;
}

/// Marks the storage kinds whose elements are in host memory.
///
/// It takes no parameters on purpose: no other crate can implement it for a device
/// kind, so the compiler knows that a device kind is never [`Storage`], and a device
/// kind's operations can carry the same names as the host ones.
pub trait HostMemory {}

impl HostMemory for Inline {}
impl HostMemory for Heap {}

/// A host storage kind: the elements are a row-major slice in memory, so every
/// slice-based operation (iteration, indexing, `map` with a closure) works on it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` storage cannot hold a tensor of shape `{S}` in host memory",
    note = "`Inline` storage needs every dimension to be `Const`; use `Heap` for shapes with `Dyn` dimensions",
    note = "a device tensor's elements are not in host memory: copy it with `.to_host()` first"
)]
pub trait Storage<T, S: Shape>: StorageKind<T, S> + HostMemory {
    /// Builds a buffer for `shape` from its flat (row-major) elements.
    fn from_flat_fn(shape: &S, f: impl FnMut(usize) -> T) -> Self::Buffer;

    /// A buffer for `shape` from exactly `shape.num_elements()` elements in row-major
    /// order. A plain iterator over slices compiles to a vectorised loop, where an
    /// index-based closure would check bounds.
    ///
    /// # Panics
    /// When `elements` yields a different number of elements.
    fn from_elements(shape: &S, mut elements: impl Iterator<Item = T>) -> Self::Buffer {
        let buffer =
            Self::from_flat_fn(shape, |_| elements.next().expect("one element per position of the shape"));
        assert!(elements.next().is_none(), "more elements than positions of the shape");
        buffer
    }

    /// A buffer for `shape` with every element `value`.
    fn filled(shape: &S, value: T) -> Self::Buffer
    where
        T: Copy,
    {
        Self::from_flat_fn(shape, |_| value)
    }
    /// The elements, row-major.
    fn as_slice(buffer: &Self::Buffer) -> &[T];
    /// The elements, row-major, mutably.
    fn as_mut_slice(buffer: &mut Self::Buffer) -> &mut [T];
}

/// A storage kind that makes a zero tensor of a given shape: where reverse mode starts
/// an adjoint. Every host kind is one; a device kind fills its own memory.
pub trait Zeros<T, S: Shape>: StorageKind<T, S> {
    /// A tensor of `shape` with every element zero.
    fn zeros_shaped(shape: S) -> Tensor<T, S, Self>;
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Zeros<T, S> for K {
    #[inline]
    fn zeros_shaped(shape: S) -> Tensor<T, S, K> {
        Tensor::zeros_shaped(shape)
    }
}

/// Two storage kinds that elementwise operators accept together: one kind. A host
/// tensor and a GPU tensor do not mix; copying is explicit.
#[diagnostic::on_unimplemented(
    message = "a `{Self}` tensor and a `{Other}` tensor do not mix",
    label = "both operands must be in one storage kind",
    note = "copy one first: `.to_device()` to the GPU, `.to_host()` back, `.to_storage()` between host kinds"
)]
pub trait SameKind<Other> {
    /// `tensor` as a tensor of kind `Self` (the kinds are one type).
    fn same_kind<T, S: Shape>(tensor: &Tensor<T, S, Other>) -> &Tensor<T, S, Self>
    where
        Self: StorageKind<T, S> + Sized,
        Other: StorageKind<T, S>;

    /// A traced `tensor` as a traced tensor of kind `Self` (the kinds are one type).
    #[cfg(feature = "std")]
    fn same_kind_var<T, S: Shape>(tensor: &Var<Tensor<T, S, Other>>) -> &Var<Tensor<T, S, Self>>
    where
        Self: StorageKind<T, S> + Sized,
        Other: StorageKind<T, S>;
}

#[diagnostic::do_not_recommend]
impl<K> SameKind<K> for K {
    #[cfg(feature = "std")]
    #[inline(always)]
    fn same_kind_var<T, S: Shape>(tensor: &Var<Tensor<T, S, K>>) -> &Var<Tensor<T, S, K>>
    where
        K: StorageKind<T, S>,
    {
        tensor
    }

    #[inline(always)]
    fn same_kind<T, S: Shape>(tensor: &Tensor<T, S, K>) -> &Tensor<T, S, K>
    where
        K: StorageKind<T, S>,
    {
        tensor
    }
}

/// Elements stored inside the tensor value, as a nested array: no heap allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inline;

/// Elements stored in a heap-allocated `Vec`, shared by a tensor's clones until one
/// of them writes (copy on write): cloning a heap tensor, as tracing a model does,
/// copies no elements, and a write to a tensor whose elements nothing else shares
/// copies nothing either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heap;

#[diagnostic::do_not_recommend]
impl<T: Copy, S: StaticShape> StorageKind<T, S> for Inline {
    type Buffer = S::Array<T>;
}

#[diagnostic::do_not_recommend]
impl<T: Copy, S: StaticShape> Storage<T, S> for Inline {
    #[inline(always)]
    fn from_flat_fn(_: &S, f: impl FnMut(usize) -> T) -> Self::Buffer {
        <S::Array<T>>::from_flat_fn(f)
    }
    #[inline(always)]
    fn filled(_: &S, value: T) -> Self::Buffer {
        <S::Array<T>>::filled(value)
    }
    /// Fills the array with the first element, then writes the rest in one zipped
    /// loop (no per-element checks).
    #[inline(always)]
    fn from_elements(_: &S, mut elements: impl Iterator<Item = T>) -> Self::Buffer {
        let first = elements.next();
        let mut buffer =
            <S::Array<T>>::from_flat_fn(|_| first.expect("one element per position of the shape"));
        let slots = buffer.as_flat_mut();
        let written = slots.iter_mut().skip(1).zip(&mut elements).map(|(slot, x)| *slot = x).count();
        assert!(
            written + usize::from(first.is_some()) == slots.len() && elements.next().is_none(),
            "one element per position of the shape"
        );
        buffer
    }
    #[inline(always)]
    fn as_slice(buffer: &Self::Buffer) -> &[T] {
        buffer.as_flat()
    }
    #[inline(always)]
    fn as_mut_slice(buffer: &mut Self::Buffer) -> &mut [T] {
        buffer.as_flat_mut()
    }
}

#[cfg(feature = "alloc")]
#[diagnostic::do_not_recommend]
impl<T: Copy, S: Shape> StorageKind<T, S> for Heap {
    type Buffer = Arc<Vec<T>>;
}

#[cfg(feature = "alloc")]
impl<T: Copy, S: Shape> Storage<T, S> for Heap {
    fn from_flat_fn(shape: &S, f: impl FnMut(usize) -> T) -> Arc<Vec<T>> {
        Arc::new((0..shape.num_elements()).map(f).collect())
    }
    fn from_elements(shape: &S, elements: impl Iterator<Item = T>) -> Arc<Vec<T>> {
        let buffer: Vec<T> = elements.collect();
        assert_eq!(buffer.len(), shape.num_elements(), "one element per position of the shape");
        Arc::new(buffer)
    }
    /// `vec![value; n]`, which the standard library turns into a zeroed allocation
    /// (no fill pass) when `value` is zero.
    fn filled(shape: &S, value: T) -> Arc<Vec<T>> {
        Arc::new(alloc::vec![value; shape.num_elements()])
    }
    #[inline(always)]
    fn as_slice(buffer: &Arc<Vec<T>>) -> &[T] {
        buffer
    }
    /// The elements to write: copied first when another tensor shares them.
    #[inline(always)]
    fn as_mut_slice(buffer: &mut Arc<Vec<T>>) -> &mut [T] {
        Arc::make_mut(buffer).as_mut_slice()
    }
}
