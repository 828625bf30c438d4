//! Derive macros of fluxion. Use them through the `fluxion` crate:
//! `#[derive(fluxion::autodiff::Differentiable)]` (or `Differentiable` from the prelude).
//!
//! The generated code names only `::fluxion::__private` paths.

mod ast;
mod attr;
mod device;
mod differentiable;
mod expand;
mod extension_trait;
mod fallback;
mod module;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `Differentiable` for a struct whose fields are differentiable.
///
/// Generates, for `struct Name { … }`:
/// - `NameTangent`, with the same field names and visibility, each field of the
///   field's tangent type, implementing `VectorSpace` (and so `RealLeaves`);
/// - `impl Differentiable for Name` (`move_by`, `zero_tangent`, `zip_leaves_with`);
/// - when no field is `#[no_derivative]`: `From<Name> for NameTangent` and back,
///   usable when every field is its own tangent (scalars, tensors; `OwnTangent`; not
///   a field of another derived struct: convert that one field by field), so
///   a gradient converts to a value and a value to a direction (`V3` ↔ `V3Tangent`);
/// - with reverse mode (`std`): `NameTraced`, the struct as a differentiated function
///   sees it (each field traced), and `impl Trace for Name`;
/// - for forward mode (also without `std`): `NameLifted` (each field lifted to dual
///   numbers), `impl Lift for Name` and `impl Unlift for NameLifted`;
/// - for second order (`std`): `NameLifted` as its own tangent (`Clone`,
///   `VectorSpace`, `Differentiable`, `Trace`; constants ride along) and
///   `NameLiftedTraced`, so `hvp` and `coordinate_hessian` take the struct, usable
///   when every lifted field is its own tangent (tensors, scalars, such structs).
///
/// Fields marked `#[no_derivative]` are left out of the tangent: they are carried as
/// constants (and must be `Clone`). In a tuple struct the tangent keeps the
/// differentiable fields in order, so positions after a skipped field shift down
/// (`struct P(f64, #[no_derivative] u8, f64)` has `PTangent(f64, f64)`). Every generic
/// parameter of the struct must appear in some differentiable field.
///
/// Fields marked `#[buffer]` are constants too, and their leaves are the struct's
/// buffers (`Parameters::visit_buffers`): state saved in parameter files with the
/// parameters, under the field's name, as a `fluxion::nn::params::Buffer`, which the
/// struct's twins share rather than copy. A `#[no_derivative]` field is neither
/// parameter nor buffer: a layer kept there (frozen) is not saved, buffers included,
/// and the twins get a clone of it (a `BatchNorm` there should be in evaluation).
/// `Clone` stays the user's (`#[derive(Clone)]` copies a `Buffer`'s value).
///
/// `#[storage_kind(K)]` on a struct generic over its storage kind `K` (its fields
/// `Linear<T, I, O, K>`, `Tensor<T, S, K>`, …) gives it, with the `cuda` feature,
/// `ToDevice` for `Name<…, Heap>` (`to_device()`: each field that names `K`, each
/// differentiable field and each buffer by its own `to_device`, the other constants
/// cloned) and `ToHost` for `Name<…, Cuda>`.
#[proc_macro_derive(Differentiable, attributes(no_derivative, buffer, storage_kind))]
pub fn derive_differentiable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match ast::Input::from_syn(&input) {
        Ok(parsed) => expand::differentiable(&parsed).into(),
        Err(error) => fallback::differentiable(&input, error).into(),
    }
}

/// Differentiates an ordinary function at compile time (static mode).
///
/// On `fn f(…) -> Y`, generates beside it a struct `f` (on a method `m`: methods
/// `m_grad`, …; on an associated function `g` marked `associated`: associated
/// functions `g_grad`, …) with `value_and_grad`, `grad`, `value_and_grad_into`,
/// `vjp`, `jvp`, `linearize`, for a function of one tensor `jacfwd` and `jacrev`,
/// and for a function generic over its real scalar type (`fn f<T: RealScalar>`)
/// `hvp` and `hessian`. Options:
/// `wrt(a, b)` differentiates those parameters only; `vjp = path, jvp = path` gives
/// the derivative by hand; `associated` says the function is an associated function
/// without `self` inside an `impl` (which the attribute cannot see). The body may use `let`, operators and the primitive
/// methods with rules, fields, struct literals and blocks, calls of other
/// differentiable functions, `if`/`match` on plain conditions (early `return`s from
/// their arms too), `for` and `while` loops and `loop` with a `break` under a plain
/// condition; anything else is a compile error naming the construct. The static-mode guide in
/// `fluxion::guide` has the details.
#[proc_macro_attribute]
pub fn differentiable(attr: TokenStream, item: TokenStream) -> TokenStream {
    differentiable::expand(attr.into(), item.into()).into()
}

/// A layer's forward pass written once, for every form of the layer.
///
/// On an inherent `impl Name { fn forward(&self, x: &Input) -> Output { … } }` of a
/// struct that derives `Differentiable`, implements `Module<Input>` for `Name`
/// (inference), `Module<Var<Input>>` for its traced twin `NameTraced` (training on the
/// tape: the same body over traced tensors), and a `#[differentiable]` method
/// `apply_batch` with `StaticModule<Input>` (static mode: the same body with each
/// `.forward(` call read as the layer's static form). The body must compile for plain and
/// traced tensors alike (the tensor methods, operators, layers' `forward`) and be
/// code that static mode differentiates. Helper methods `fn name(&self, …) -> Output`
/// in the block, called as `self.name(…)`, get every form too (reference arguments
/// traced and differentiated; arguments by value, slices and `&Vec<usize>` constant).
/// `#[module(no_static)]` leaves the static
/// form out (a body with dropout, say). `#[module(storage_kind(K))]` on a block
/// generic over its storage kind `K` writes it out for `Heap` (every form) and, with
/// the `cuda` feature, for `Cuda` (plain and traced). The models and GPU guides have
/// examples.
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    module::expand(attr.into(), item.into()).into()
}

/// Moves an inherent `impl` block's public methods into a trait `Name` of the same
/// methods, implemented for the same type (internal to fluxion: its GPU tensors'
/// methods, so that a host tensor whose storage kind is still being inferred is not
/// ambiguous between two inherent methods of one name).
#[doc(hidden)]
#[proc_macro_attribute]
pub fn extension_trait(attr: TokenStream, item: TokenStream) -> TokenStream {
    extension_trait::expand(attr.into(), item.into()).into()
}
