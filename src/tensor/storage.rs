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

    /// A buffer of `f` applied to each of `elements` in order (as many as `shape` has
    /// positions): a map's result.
    ///
    /// # Panics
    /// When `elements` has another length.
    #[inline(always)]
    fn mapped<U: Copy>(shape: &S, elements: &[U], mut f: impl FnMut(U) -> T) -> Self::Buffer {
        Self::from_elements(shape, elements.iter().map(|&x| f(x)))
    }

    /// A buffer of the slices `runs` yields, one after another (as many elements in
    /// all as `shape` has positions): a layout change copied a contiguous run at a
    /// time, with no index arithmetic per element.
    ///
    /// # Panics
    /// When the runs hold another number of elements.
    fn from_runs<'a>(shape: &S, runs: impl Iterator<Item = &'a [T]>) -> Self::Buffer
    where
        T: Copy + 'a,
    {
        Self::from_elements(shape, runs.flat_map(|run| run.iter().copied()))
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
    message = "tensors of the storage kinds `{Self}` and `{Other}` do not mix",
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
impl<T: Copy + 'static, S: StaticShape> Storage<T, S> for Inline {
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
    /// `f` of every element written in one loop (for `f32` and `f64`, compiled for the
    /// processor's widest vectors, over an array first filled with zeros so that the
    /// loop covers every slot); for other element types, the array is filled with `f`
    /// of the first element and the others are written after it. Either way `f` is
    /// called once per element, in order.
    #[inline(always)]
    fn mapped<U: Copy>(_: &S, elements: &[U], mut f: impl FnMut(U) -> T) -> Self::Buffer {
        assert_eq!(elements.len(), S::NUM_ELEMENTS, "one element per position of the shape");
        let (mut buffer, skipped) = match crate::backend::wide::placeholder::<T>() {
            Some(zero) => (<S::Array<T>>::filled(zero), 0),
            None => match elements.first() {
                Some(&x) => (<S::Array<T>>::filled(f(x)), 1),
                None => {
                    return <S::Array<T>>::from_flat_fn(|_| unreachable!("an empty shape has no element"));
                }
            },
        };
        let slots = buffer.as_flat_mut().get_mut(skipped..).unwrap_or_default();
        let others = elements.get(skipped..).unwrap_or_default();
        crate::backend::wide::wide_with::<T, _, _>(
            slots,
            #[inline(always)]
            |slots| {
                for (slot, &x) in slots.iter_mut().zip(others) {
                    *slot = f(x);
                }
            },
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

/// A [`Heap`] tensor's elements: a `Vec` shared by the tensor's clones until one of
/// them writes. With `std`, a large buffer whose last owner drops it is kept for the
/// thread's next heap tensor instead of being freed (see [`Heap::release_spares`]).
#[cfg(feature = "alloc")]
#[derive(Clone)]
pub struct HeapBuffer<T: Copy + 'static> {
    elements: Arc<Vec<T>>,
    /// Where the tensor's elements begin in `elements`: a buffer laid out for reuse
    /// starts with padding (see [`HeapBuffer::page_padded`]).
    start: usize,
}

#[cfg(feature = "alloc")]
impl<T: Copy + 'static> HeapBuffer<T> {
    /// A buffer that owns `elements`.
    pub(crate) fn new(elements: Vec<T>) -> Self {
        HeapBuffer { elements: Arc::new(elements), start: 0 }
    }

    /// The elements.
    #[inline(always)]
    fn as_slice(&self) -> &[T] {
        &self.elements[self.start..]
    }

    /// The elements: in this buffer's own allocation (moved to its start when it had
    /// padding) unless another buffer shares them, then copied.
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        let start = self.start;
        match Arc::get_mut(&mut self.elements) {
            Some(elements) => {
                let mut elements = core::mem::take(elements);
                elements.drain(..start);
                elements
            }
            None => self.as_slice().to_vec(),
        }
    }

    /// Replaces the elements, which another buffer shares, by a copy of its own.
    #[cold]
    fn unshare(&mut self) {
        let elements = self.as_slice();
        *self = Self::collect(elements.len(), elements.iter().copied());
    }

    /// A buffer of exactly `len` elements.
    ///
    /// # Panics
    /// When `elements` yields another number of elements.
    fn collect(len: usize, elements: impl Iterator<Item = T>) -> Self {
        #[cfg(feature = "std")]
        if super::spares::worth_keeping::<T>(len) && elements.size_hint() == (len, Some(len)) {
            return Self::written(len, |slots| write_slots(slots, elements));
        }
        let buffer: Vec<T> = elements.collect();
        assert_eq!(buffer.len(), len, "one element per position of the shape");
        Self::new(buffer)
    }

    /// `f` of each of `elements`, written straight into the new buffer's slots: for
    /// `f32` and `f64`, in a loop compiled for the processor's widest vectors
    /// ([`wide`](crate::backend::wide::wide)).
    fn mapped<U: Copy>(elements: &[U], f: impl FnMut(U) -> T) -> Self {
        #[cfg(feature = "std")]
        {
            let len = elements.len();
            let write = |slots: &mut [core::mem::MaybeUninit<T>]| write_mapped(slots, elements, f);
            if super::spares::worth_keeping::<T>(len) {
                return Self::written(len, write);
            }
            let mut buffer = Vec::with_capacity(len);
            let written = write(buffer.spare_capacity_mut());
            // SAFETY: `write_mapped` initialised the first `written` slots.
            unsafe { buffer.set_len(written) };
            Self::new(buffer)
        }
        #[cfg(not(feature = "std"))]
        {
            let mut f = f;
            Self::new(elements.iter().map(|&x| f(x)).collect())
        }
    }

    /// A buffer of `len` elements that `write` puts into the slots it is given (one
    /// more than `len`, so that an element too many is caught) and counts: a spare
    /// buffer when the thread has one, else a new one laid out by
    /// [`HeapBuffer::page_padded`].
    ///
    /// # Panics
    /// When `write` writes another number of elements.
    #[cfg(feature = "std")]
    fn written(len: usize, write: impl FnOnce(&mut [core::mem::MaybeUninit<T>]) -> usize) -> Self {
        let (buffer, start) = match super::spares::take(len) {
            Some(mut spare) => {
                let start = spare.len();
                let written = write(&mut spare.spare_capacity_mut()[..=len]);
                // SAFETY: `write` initialised the `written` slots that follow the
                // spare's padding.
                unsafe { spare.set_len(start + written) };
                (spare, start)
            }
            None => Self::laid_out(len, write),
        };
        assert_eq!(buffer.len() - start, len, "one element per position of the shape");
        HeapBuffer { elements: Arc::new(buffer), start }
    }

    /// A buffer of exactly `len` elements, copied from `runs` one after another.
    ///
    /// # Panics
    /// When the runs hold another number of elements.
    fn copied_runs<'a>(len: usize, runs: impl Iterator<Item = &'a [T]>) -> Self {
        #[cfg(feature = "std")]
        if super::spares::worth_keeping::<T>(len) {
            return Self::written(len, |slots| write_runs(slots, runs));
        }
        let mut buffer = Vec::with_capacity(len);
        runs.for_each(|run| buffer.extend_from_slice(run));
        assert_eq!(buffer.len(), len, "one element per position of the shape");
        Self::new(buffer)
    }

    /// A buffer of `len` elements equal to `value`.
    fn filled(len: usize, value: T) -> Self {
        #[cfg(feature = "std")]
        if super::spares::worth_keeping::<T>(len) {
            let (mut buffer, start) = match super::spares::take(len) {
                Some(spare) => {
                    let start = spare.len();
                    (spare, start)
                }
                None => Self::page_padded(len),
            };
            buffer.resize(start + len, value);
            return HeapBuffer { elements: Arc::new(buffer), start };
        }
        // The standard library turns this into a zeroed allocation (no fill pass) when
        // `value` is zero.
        Self::new(alloc::vec![value; len])
    }

    /// A new empty `Vec` with room for `len` elements and one more (see
    /// [`HeapBuffer::collect`]) after up to a page of padding,
    /// and the padding that puts the first element at the thread's next offset within
    /// a page ([`spares::padding`](super::spares::padding)). Buffers that the system
    /// allocates alike start at one offset within their pages, and a loop reading one
    /// while writing another at that offset stalls on the processor's 4 KiB address
    /// aliasing (30 % on `x * c`); freed, they would move, and kept ones do not.
    #[cfg(feature = "std")]
    fn page_padded(len: usize) -> (Vec<T>, usize) {
        let buffer = Vec::with_capacity(len + 1 + super::spares::PAGE_BYTES / size_of::<T>());
        let padding = super::spares::padding(buffer.as_ptr());
        (buffer, padding)
    }

    /// What `write` puts into up to `len + 1` slots in a new `Vec` laid out by
    /// [`HeapBuffer::page_padded`], the padding copies of the first element; with the
    /// padding's length.
    #[cfg(feature = "std")]
    fn laid_out(
        len: usize,
        write: impl FnOnce(&mut [core::mem::MaybeUninit<T>]) -> usize,
    ) -> (Vec<T>, usize) {
        let (mut buffer, padding) = Self::page_padded(len);
        let slots = buffer.spare_capacity_mut();
        let written = write(&mut slots[padding..=padding + len]);
        if written == 0 {
            return (buffer, 0);
        }
        // SAFETY: `write` initialised `slots[padding]`, the first of `written`.
        let first = unsafe { slots[padding].assume_init() };
        slots[..padding].iter_mut().for_each(|slot| {
            slot.write(first);
        });
        // SAFETY: the `padding` slots were just written, and the `written` after them
        // by `write`.
        unsafe { buffer.set_len(padding + written) };
        (buffer, padding)
    }
}

#[cfg(feature = "alloc")]
impl<T: Copy + 'static + core::fmt::Debug> core::fmt::Debug for HeapBuffer<T> {
    /// The tensor's elements (not the padding before them).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Writes `elements` into `slots`, as many as fit; returns how many. A zip of two
/// slice iterators is one counted loop, which the compiler vectorises; `Vec::extend`
/// into a buffer it did not just allocate is not when a map's closure reads a captured
/// reference (`x * c` reloads `c` per element: 5× slower).
#[cfg(feature = "std")]
#[inline(never)]
fn write_slots<T>(slots: &mut [core::mem::MaybeUninit<T>], elements: impl Iterator<Item = T>) -> usize {
    let mut written = 0;
    for (slot, element) in slots.iter_mut().zip(elements) {
        slot.write(element);
        written += 1;
    }
    written
}

/// Copies `runs` one after another into `slots`, as many elements as fit; returns how
/// many.
#[cfg(feature = "std")]
fn write_runs<'a, T: Copy + 'a>(
    slots: &mut [core::mem::MaybeUninit<T>],
    runs: impl Iterator<Item = &'a [T]>,
) -> usize {
    let mut written = 0;
    for run in runs {
        let free = &mut slots[written..];
        let count = run.len().min(free.len());
        for (slot, &x) in free[..count].iter_mut().zip(run) {
            slot.write(x);
        }
        written += count;
        if count < run.len() {
            break;
        }
    }
    written
}

/// Writes `f` of each of `elements` into `slots`, as many as fit; returns how many.
/// `f` is called in the loop's body (not inside an iterator's `next`), so that the
/// loop inlines it however long it is, and vectorises it where [`wide`] compiles the
/// loop for wide vectors.
///
/// [`wide`]: crate::backend::wide::wide
#[cfg(feature = "std")]
#[inline(never)]
fn write_mapped<U: Copy, T: 'static>(
    slots: &mut [core::mem::MaybeUninit<T>],
    elements: &[U],
    mut f: impl FnMut(U) -> T,
) -> usize {
    let count = slots.len().min(elements.len());
    crate::backend::wide::wide_with::<T, _, _>(
        &mut slots[..count],
        #[inline(always)]
        |slots| {
            for (slot, &x) in slots.iter_mut().zip(elements) {
                slot.write(f(x));
            }
        },
    );
    count
}

#[cfg(feature = "alloc")]
impl<T: Copy + 'static> Drop for HeapBuffer<T> {
    /// The last owner's allocation goes to the thread's spares (with `std`).
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        if super::spares::worth_keeping::<T>(self.elements.capacity())
            && let Some(elements) = Arc::get_mut(&mut self.elements)
        {
            super::spares::give(core::mem::take(elements), self.start);
        }
    }
}

#[cfg(feature = "std")]
impl Heap {
    /// Frees the spare buffers this thread keeps.
    ///
    /// A heap buffer of at least 16 KiB whose last tensor is dropped is not freed: the
    /// thread that drops it keeps it (up to 256 MiB per thread, the sizes used least
    /// recently freed first) for its next heap tensor of the same element type and a
    /// length up to a fifth less, so that a gradient's values and cotangents reuse
    /// the memory of the previous gradient's. Such a tensor's buffer (and
    /// [`into_vec`](crate::Tensor::into_vec)'s `Vec`) may then have up to a quarter
    /// more capacity than elements. Call this when a thread is done with large tensors
    /// (a worker that consumed batches, the end of training) and should hand their
    /// memory back; [`release_tape_memory`](crate::autodiff::release_tape_memory)
    /// calls it too.
    pub fn release_spares() {
        super::spares::release();
    }
}

#[cfg(feature = "alloc")]
#[diagnostic::do_not_recommend]
impl<T: Copy + 'static, S: Shape> StorageKind<T, S> for Heap {
    type Buffer = HeapBuffer<T>;
}

#[cfg(feature = "alloc")]
impl<T: Copy + 'static, S: Shape> Storage<T, S> for Heap {
    fn from_flat_fn(shape: &S, f: impl FnMut(usize) -> T) -> HeapBuffer<T> {
        let len = shape.num_elements();
        HeapBuffer::collect(len, (0..len).map(f))
    }
    fn from_elements(shape: &S, elements: impl Iterator<Item = T>) -> HeapBuffer<T> {
        HeapBuffer::collect(shape.num_elements(), elements)
    }
    fn mapped<U: Copy>(shape: &S, elements: &[U], f: impl FnMut(U) -> T) -> HeapBuffer<T> {
        assert_eq!(elements.len(), shape.num_elements(), "one element per position of the shape");
        HeapBuffer::mapped(elements, f)
    }
    fn from_runs<'a>(shape: &S, runs: impl Iterator<Item = &'a [T]>) -> HeapBuffer<T>
    where
        T: 'a,
    {
        HeapBuffer::copied_runs(shape.num_elements(), runs)
    }
    fn filled(shape: &S, value: T) -> HeapBuffer<T> {
        HeapBuffer::filled(shape.num_elements(), value)
    }
    #[inline(always)]
    fn as_slice(buffer: &HeapBuffer<T>) -> &[T] {
        buffer.as_slice()
    }
    /// The elements to write: copied first when another tensor shares them.
    #[inline(always)]
    fn as_mut_slice(buffer: &mut HeapBuffer<T>) -> &mut [T] {
        if Arc::get_mut(&mut buffer.elements).is_none() {
            buffer.unshare();
        }
        let start = buffer.start;
        &mut Arc::get_mut(&mut buffer.elements).expect("a buffer of its own")[start..]
    }
}
