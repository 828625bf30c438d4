//! Named parameters: every real leaf of a model with its path, the field names from
//! the root joined by dots (`layers.0.weight`; tuple and array positions are numbers;
//! a leaf at the root has the empty name). Parameter files ([`crate::nn::io`]) and
//! summaries are written over this walk; `#[derive(Differentiable)]` implements it
//! for a struct whose differentiable fields do (constants marked `#[no_derivative]`
//! are not parameters).
//!
//! ```
//! use fluxion::nn::layer::{Linear, Relu};
//! use fluxion::nn::params::Parameters;
//!
//! let model = (Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 8, 2>::new(2));
//! let mut names = Vec::new();
//! model.visit_parameters(&mut String::new(), &mut |name, leaf| names.push((name.to_owned(), leaf.shape.to_vec())));
//! assert_eq!(names[0], ("0.weight".to_owned(), vec![8, 4]));
//! assert_eq!(names[3], ("2.bias".to_owned(), vec![2]));
//! ```

use std::string::String;
use std::vec::Vec;

use crate::scalar::RealScalar;
use crate::shape::Shape;
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
pub struct Leaf<'a> {
    /// The sizes of its axes (empty for a scalar).
    pub shape: &'a [usize],
    /// The elements, row-major.
    pub elements: Elements<'a>,
}

/// One parameter leaf, writable in place (its shape is fixed).
#[derive(Debug)]
pub struct LeafMut<'a> {
    /// The sizes of its axes (empty for a scalar).
    pub shape: &'a [usize],
    /// The elements, row-major.
    pub elements: ElementsMut<'a>,
}

/// The element types a parameter file holds: `f32` and `f64`.
pub trait ParameterElement: RealScalar {
    /// A slice of them as [`Elements`].
    fn elements(slice: &[Self]) -> Elements<'_>;
    /// A mutable slice of them as [`ElementsMut`].
    fn elements_mut(slice: &mut [Self]) -> ElementsMut<'_>;
}

impl ParameterElement for f32 {
    fn elements(slice: &[f32]) -> Elements<'_> {
        Elements::F32(slice)
    }
    fn elements_mut(slice: &mut [f32]) -> ElementsMut<'_> {
        ElementsMut::F32(slice)
    }
}

impl ParameterElement for f64 {
    fn elements(slice: &[f64]) -> Elements<'_> {
        Elements::F64(slice)
    }
    fn elements_mut(slice: &mut [f64]) -> ElementsMut<'_> {
        ElementsMut::F64(slice)
    }
}

/// A value whose real parameter leaves can be listed by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no named real parameters",
    note = "parameter files hold `f32` and `f64` scalars and host tensors, and tuples, arrays, `Vec`s and derived structs of them"
)]
pub trait Parameters {
    /// Calls `f` with each leaf's name (`path` is the prefix so far, restored on
    /// return) and the leaf, in a fixed order.
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>));

    /// Calls `f` with each leaf's name and the leaf, writable, in the same order.
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>));
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

impl<T: ParameterElement> Parameters for T {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
        f(path, Leaf { shape: &[], elements: T::elements(core::slice::from_ref(self)) });
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>)) {
        f(path, LeafMut { shape: &[], elements: T::elements_mut(core::slice::from_mut(self)) });
    }
}

impl<T: ParameterElement, S: Shape, K: Storage<T, S>> Parameters for Tensor<T, S, K> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
        let dims = self.shape().dims();
        f(path, Leaf { shape: dims.as_slice(), elements: T::elements(self.as_slice()) });
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>)) {
        let dims = self.shape().dims();
        f(path, LeafMut { shape: dims.as_slice(), elements: T::elements_mut(self.as_mut_slice()) });
    }
}

impl Parameters for () {
    fn visit_parameters(&self, _: &mut String, _: &mut dyn FnMut(&str, Leaf<'_>)) {}
    fn visit_parameters_mut(&mut self, _: &mut String, _: &mut dyn FnMut(&str, LeafMut<'_>)) {}
}

/// Elements of a slice named by their positions.
fn visit_elements<P: Parameters>(items: &[P], path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
    for (i, item) in items.iter().enumerate() {
        with_segment(path, &i, |path| item.visit_parameters(path, f));
    }
}

/// Elements of a slice named by their positions, writable.
fn visit_elements_mut<P: Parameters>(
    items: &mut [P],
    path: &mut String,
    f: &mut dyn FnMut(&str, LeafMut<'_>),
) {
    for (i, item) in items.iter_mut().enumerate() {
        with_segment(path, &i, |path| item.visit_parameters_mut(path, f));
    }
}

impl<P: Parameters, const N: usize> Parameters for [P; N] {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
        visit_elements(self, path, f);
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>)) {
        visit_elements_mut(self, path, f);
    }
}

impl<P: Parameters> Parameters for Vec<P> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
        visit_elements(self, path, f);
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>)) {
        visit_elements_mut(self, path, f);
    }
}

macro_rules! tuple_parameters {
    ($($P:ident $i:tt),+) => {
        impl<$($P: Parameters),+> Parameters for ($($P,)+) {
            fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, Leaf<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_parameters(path, f));)+
            }
            fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, LeafMut<'_>)) {
                $(with_segment(path, &$i, |path| self.$i.visit_parameters_mut(path, f));)+
            }
        }
    };
}

tuple_parameters!(A 0);
tuple_parameters!(A 0, B 1);
tuple_parameters!(A 0, B 1, C 2);
tuple_parameters!(A 0, B 1, C 2, D 3);
tuple_parameters!(A 0, B 1, C 2, D 3, E 4);
tuple_parameters!(A 0, B 1, C 2, D 3, E 4, F 5);
