//! Named parameters: every leaf of a model with its path, the field names from the
//! root joined by dots (`layers.0.weight`; tuple and array positions are numbers; a
//! leaf at the root has the empty name). A complex leaf is seen as its real and
//! imaginary parts, interleaved, with a last axis of 2 (as PyTorch's
//! `view_as_real`). Parameter files (`nn::io`, feature `safetensors`) and
//! summaries are written over this walk; `#[derive(Differentiable)]` implements it
//! for a struct whose differentiable fields do (constants marked `#[no_derivative]`
//! are not parameters). A second walk, over *buffers*, names the state that a layer
//! updates as it runs but that gradients do not train ([`Buffer`]: a `BatchNorm`'s
//! running estimates, a derived struct's `#[buffer]` fields); parameter files hold
//! both ([`Parameters::visit_state`]), counts and summaries the parameters only.
//!
//! ```
//! use fluxion::nn::layer::{Linear, Relu};
//! use fluxion::nn::params::Parameters;
//!
//! let model = (Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 8, 2>::new(2));
//! let shapes = model.parameter_shapes();
//! assert_eq!(shapes[0], ("0.weight".to_owned(), vec![8, 4]));
//! assert_eq!(shapes[3], ("2.bias".to_owned(), vec![2]));
//! assert_eq!(model.parameter_count(), 8 * 4 + 8 + 2 * 8 + 2);
//! // The walk itself: a path prefix, and each leaf's name, shape and elements.
//! let mut largest = 0.0f64;
//! model.visit_parameters(&mut String::new(), &mut |_, leaf| {
//!     if let fluxion::nn::params::Elements::F32(values) = leaf.elements {
//!         largest = values.iter().fold(largest, |m, x| m.max(x.abs() as f64));
//!     }
//! });
//! assert!(largest > 0.0);
//! ```

use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use num_complex::Complex;

#[cfg(feature = "cuda")]
use crate::ops::cuda::CudaTensorOps;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::{MAX_RANK, Shape};
use crate::tensor::{Storage, Tensor};

/// The elements of a parameter leaf, by element type.
#[derive(Debug)]
pub enum Elements<'a> {
    /// Single precision.
    F32(&'a [f32]),
    /// Double precision.
    F64(&'a [f64]),
}

/// The elements of a parameter leaf, writable.
#[derive(Debug)]
pub enum ElementsMut<'a> {
    /// Single precision.
    F32(&'a mut [f32]),
    /// Double precision.
    F64(&'a mut [f64]),
}

/// One parameter leaf: its shape (row-major) and elements.
#[derive(Debug)]
pub struct ParameterLeaf<'a> {
    /// The sizes of its axes (empty for a scalar).
    pub shape: &'a [usize],
    /// The elements, row-major.
    pub elements: Elements<'a>,
}

/// One parameter leaf, writable in place (its shape is fixed).
#[derive(Debug)]
pub struct ParameterLeafMut<'a> {
    /// The sizes of its axes (empty for a scalar).
    pub shape: &'a [usize],
    /// The elements, row-major.
    pub elements: ElementsMut<'a>,
}

/// The element types of parameters: `f32` and `f64`, and their complex numbers as
/// pairs of them.
pub trait ParameterElement: Scalar<Real: RealElement> {
    /// The elements as reals: each complex element its real and imaginary parts.
    fn reals(slice: &[Self]) -> &[Self::Real];
    /// The elements as reals, writable.
    fn reals_mut(slice: &mut [Self]) -> &mut [Self::Real];
}

/// `f32` and `f64`, as a parameter file holds them.
pub trait RealElement: RealScalar {
    /// A slice of them as [`Elements`].
    fn elements(slice: &[Self]) -> Elements<'_>;
    /// A mutable slice of them as [`ElementsMut`].
    fn elements_mut(slice: &mut [Self]) -> ElementsMut<'_>;
}

impl RealElement for f32 {
    fn elements(slice: &[f32]) -> Elements<'_> {
        Elements::F32(slice)
    }
    fn elements_mut(slice: &mut [f32]) -> ElementsMut<'_> {
        ElementsMut::F32(slice)
    }
}

impl RealElement for f64 {
    fn elements(slice: &[f64]) -> Elements<'_> {
        Elements::F64(slice)
    }
    fn elements_mut(slice: &mut [f64]) -> ElementsMut<'_> {
        ElementsMut::F64(slice)
    }
}

#[diagnostic::do_not_recommend]
impl<R: RealElement> ParameterElement for R {
    fn reals(slice: &[R]) -> &[R] {
        slice
    }
    fn reals_mut(slice: &mut [R]) -> &mut [R] {
        slice
    }
}

impl<R: RealElement> ParameterElement for Complex<R>
where
    Complex<R>: Scalar<Real = R>,
{
    fn reals(slice: &[Complex<R>]) -> &[R] {
        // SAFETY: `Complex<R>` is `repr(C)` with the fields `re` and `im` of type `R`,
        // so n complex numbers are 2n values of `R` in the same memory, aligned for
        // `R`; the returned slice borrows `slice` for its lifetime.
        unsafe { core::slice::from_raw_parts(slice.as_ptr().cast::<R>(), 2 * slice.len()) }
    }
    fn reals_mut(slice: &mut [Complex<R>]) -> &mut [R] {
        // SAFETY: as in `reals`; the mutable borrow of `slice` is moved into the
        // returned slice, so the memory has one writer.
        unsafe { core::slice::from_raw_parts_mut(slice.as_mut_ptr().cast::<R>(), 2 * slice.len()) }
    }
}

/// The shape of a leaf of `dims` with elements `T`: a last axis of 2 for complex
/// elements (at most rank 5).
fn leaf_shape<T: Scalar>(dims: &[usize], buffer: &mut [usize; MAX_RANK + 1]) -> usize {
    buffer[..dims.len()].copy_from_slice(dims);
    if T::IS_COMPLEX {
        buffer[dims.len()] = 2;
        dims.len() + 1
    } else {
        dims.len()
    }
}

/// A value whose parameter leaves can be listed by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no named parameters",
    note = "parameters are real or complex scalars and tensors (host or GPU), and tuples, arrays, `Vec`s and derived structs of them"
)]
pub trait Parameters {
    /// Calls `f` with each leaf's name (`path` is the prefix so far, restored on
    /// return) and the leaf, in a fixed order.
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>));

    /// Calls `f` with each leaf's name and the leaf, writable, in the same order.
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>));

    /// Calls `f` with each buffer leaf's name and the leaf: state kept with the
    /// parameters but not trained by gradients, as a [`BatchNorm`]'s running
    /// statistics (PyTorch's buffers; fields marked `#[buffer]` in a derived struct).
    /// None by default: a container written by hand (a layer holding other layers)
    /// forwards it to its parts as it forwards `visit_parameters`, or their buffers
    /// are not saved.
    ///
    /// [`BatchNorm`]: crate::nn::layer::BatchNorm
    fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        let _ = (path, f);
    }

    /// Calls `f` with each buffer leaf's name and the leaf, writable, in the same
    /// order. None by default.
    fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        let _ = (path, f);
    }

    /// The parameters, then the buffers: what a parameter file holds.
    fn visit_state(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        self.visit_parameters(path, f);
        self.visit_buffers(path, f);
    }

    /// The parameters, then the buffers, writable.
    fn visit_state_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        self.visit_parameters_mut(path, f);
        self.visit_buffers_mut(path, f);
    }

    /// Each leaf's name and shape, in order (PyTorch's `named_parameters`, for a
    /// summary; a complex leaf has a last axis of 2).
    fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        self.visit_parameters(&mut String::new(), &mut |name, leaf| {
            shapes.push((name.into(), leaf.shape.to_vec()))
        });
        shapes
    }

    /// The number of real numbers in the parameters (a complex element counts two).
    fn parameter_count(&self) -> usize {
        let mut count = 0;
        self.visit_parameters(&mut String::new(), &mut |_, leaf| {
            count += leaf.shape.iter().product::<usize>()
        });
        count
    }
}

/// Extends `path` by `.segment` (or `segment` at the root), runs `visit`, and restores
/// `path`: how compound values name their parts.
#[doc(hidden)]
pub fn with_segment(path: &mut String, segment: &dyn core::fmt::Display, visit: impl FnOnce(&mut String)) {
    use core::fmt::Write;
    let length = path.len();
    if length > 0 {
        path.push('.');
    }
    write!(path, "{segment}").expect("writing to a String cannot fail");
    visit(path);
    path.truncate(length);
}

#[diagnostic::do_not_recommend]
impl<T: ParameterElement> Parameters for T {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(&[], &mut shape);
        let elements = T::Real::elements(T::reals(core::slice::from_ref(self)));
        f(path, ParameterLeaf { shape: &shape[..rank], elements });
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(&[], &mut shape);
        let elements = T::Real::elements_mut(T::reals_mut(core::slice::from_mut(self)));
        f(path, ParameterLeafMut { shape: &shape[..rank], elements });
    }
}

impl<T: ParameterElement, S: Shape, K: Storage<T, S>> Parameters for Tensor<T, S, K> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(self.shape().dims().as_slice(), &mut shape);
        f(
            path,
            ParameterLeaf { shape: &shape[..rank], elements: T::Real::elements(T::reals(self.as_slice())) },
        );
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(self.shape().dims().as_slice(), &mut shape);
        let elements = T::Real::elements_mut(T::reals_mut(self.as_mut_slice()));
        f(path, ParameterLeafMut { shape: &shape[..rank], elements });
    }
}

/// A GPU tensor's parameters pass through host copies: `visit_parameters` reads a
/// copy, `visit_parameters_mut` writes the copy back to the device afterwards
/// (complex elements as their real and imaginary parts, as on the host).
#[cfg(feature = "cuda")]
impl<T: crate::backend::cuda::CudaScalar + ParameterElement, S: Shape> Parameters
    for Tensor<T, S, crate::backend::cuda::Cuda>
{
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(self.shape().dims().as_slice(), &mut shape);
        let host = self.to_vec();
        f(path, ParameterLeaf { shape: &shape[..rank], elements: T::Real::elements(T::reals(&host)) });
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        let mut shape = [0; MAX_RANK + 1];
        let rank = leaf_shape::<T>(self.shape().dims().as_slice(), &mut shape);
        let mut host = self.to_vec();
        f(
            path,
            ParameterLeafMut {
                shape: &shape[..rank],
                elements: T::Real::elements_mut(T::reals_mut(&mut host)),
            },
        );
        *self = crate::backend::cuda::or_panic_cuda(Tensor::try_from_elements(self.shape(), &host));
    }
}

impl Parameters for () {
    fn visit_parameters(&self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {}
    fn visit_parameters_mut(&mut self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {}
}

/// State that a layer keeps beside its parameters and updates as it runs, saved in
/// parameter files but not trained by gradients (PyTorch's buffers): a
/// [`BatchNorm`]'s running statistics. A forward pass reads its layer through `&self`,
/// so the value sits behind a lock. The twins of a model that a gradient or forward
/// mode makes ([`Trace`](crate::autodiff::Trace), [`Lift`](crate::autodiff::Lift))
/// share it ([`Buffer::share`]), so what a training step records reaches the model;
/// `clone` copies it, so a cloned model is a snapshot that training the original
/// leaves as it is (PyTorch's `copy.deepcopy`). In a derived struct such a field is
/// marked `#[buffer]`: not differentiated, shared with the twins, and saved with the
/// parameters.
///
/// A layer of your own that updates a buffer in its forward pass skips the update
/// while [`recomputing`](crate::autodiff::recomputing) (a checkpoint's
/// recomputation, static mode's reverse sweep), so that each forward pass counts
/// once. The lock is held while [`Buffer::update`]'s closure or a parameter walk's
/// visitor runs: calling the same buffer from there deadlocks.
///
/// [`BatchNorm`]: crate::nn::layer::BatchNorm
pub struct Buffer<X>(Arc<Mutex<X>>);

impl<X> Buffer<X> {
    /// A buffer holding `value`, shared with no other.
    pub fn new(value: X) -> Self {
        Buffer(Arc::new(Mutex::new(value)))
    }

    /// A copy of the value.
    pub fn get(&self) -> X
    where
        X: Clone,
    {
        self.lock().clone()
    }

    /// Replaces the value, for every handle sharing it.
    pub fn set(&self, value: X) {
        *self.lock() = value;
    }

    /// Runs `f` on the value, for every handle sharing it.
    pub fn update<R>(&self, f: impl FnOnce(&mut X) -> R) -> R {
        f(&mut self.lock())
    }

    /// A second handle on the same value: what one writes, the other reads.
    pub fn share(&self) -> Self {
        Buffer(Arc::clone(&self.0))
    }

    /// Whether `other` is a handle on the same value ([`Buffer::share`]).
    pub fn is_shared_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The value, locked (a panic while it was locked left it whole: every update
    /// replaces it at once).
    fn lock(&self) -> MutexGuard<'_, X> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A buffer of its own holding a copy of the value (see [`Buffer`]).
impl<X: Clone> Clone for Buffer<X> {
    fn clone(&self) -> Self {
        Buffer::new(self.get())
    }
}

/// How a derived struct's `#[buffer]` field reaches the struct's twins: shared, not
/// copied.
#[diagnostic::on_unimplemented(
    message = "a `#[buffer]` field holds a `fluxion::nn::params::Buffer`, not `{Self}`",
    label = "not a `Buffer`"
)]
pub trait ShareState {
    /// A handle on the same state.
    fn share(&self) -> Self;
}

impl<X> ShareState for Buffer<X> {
    fn share(&self) -> Self {
        Buffer::share(self)
    }
}

impl<X: core::fmt::Debug> core::fmt::Debug for Buffer<X> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Buffer").field(&*self.lock()).finish()
    }
}

/// Equal values. Two buffers are locked in a fixed order (by address), so that
/// `a == b` and `b == a` on two threads cannot wait on each other; a buffer shared
/// with the other is equal without a second lock.
impl<X: PartialEq> PartialEq for Buffer<X> {
    fn eq(&self, other: &Self) -> bool {
        if self.is_shared_with(other) {
            return true;
        }
        let (first, second) =
            if Arc::as_ptr(&self.0) < Arc::as_ptr(&other.0) { (self, other) } else { (other, self) };
        let first = first.lock();
        *first == *second.lock()
    }
}

/// No parameters: every leaf of the value (its own buffers included) is a buffer,
/// wherever the `Buffer` sits (a `#[buffer]` field, a tuple, a `Vec`).
impl<X: Parameters> Parameters for Buffer<X> {
    fn visit_parameters(&self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {}
    fn visit_parameters_mut(&mut self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {}
    fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        self.lock().visit_state(path, f);
    }
    fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        self.lock().visit_state_mut(path, f);
    }
}

/// Elements of a slice, each visited under its position.
fn visit_elements<P>(items: &[P], path: &mut String, visit: &mut dyn FnMut(&P, &mut String)) {
    for (i, item) in items.iter().enumerate() {
        with_segment(path, &i, |path| visit(item, path));
    }
}

/// Elements of a slice, each visited writable under its position.
fn visit_elements_mut<P>(items: &mut [P], path: &mut String, visit: &mut dyn FnMut(&mut P, &mut String)) {
    for (i, item) in items.iter_mut().enumerate() {
        with_segment(path, &i, |path| visit(item, path));
    }
}

macro_rules! sequence_parameters {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> Parameters for $ty {
            fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                visit_elements(self, path, &mut |item, path| item.visit_parameters(path, f));
            }
            fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
                visit_elements_mut(self, path, &mut |item, path| item.visit_parameters_mut(path, f));
            }
            fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                visit_elements(self, path, &mut |item, path| item.visit_buffers(path, f));
            }
            fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
                visit_elements_mut(self, path, &mut |item, path| item.visit_buffers_mut(path, f));
            }
        }
    };
}

sequence_parameters!([P: Parameters, const N: usize] [P; N]);
sequence_parameters!([P: Parameters] Vec<P>);

macro_rules! tuple_parameters {
    ($($P:ident $i:tt),+) => {
        impl<$($P: Parameters),+> Parameters for ($($P,)+) {
            fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_parameters(path, f));)+
            }
            fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_parameters_mut(path, f));)+
            }
            fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_buffers(path, f));)+
            }
            fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_buffers_mut(path, f));)+
            }
        }
    };
}

for_each_tuple!(tuple_parameters);
