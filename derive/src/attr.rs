//! The field attributes `#[no_derivative]` and `#[buffer]`, and the struct's
//! `#[storage_kind(K)]`.

use syn::{Attribute, Error, GenericParam, Generics, Ident, Meta, Result};

/// What a field is to the derivative.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Differentiated: part of the tangent (no attribute).
    Differentiable,
    /// A constant carried along (`#[no_derivative]`).
    Constant,
    /// A constant saved with the parameters (`#[buffer]`).
    Buffer,
}

/// The field's kind from its attributes; an error for an attribute with arguments,
/// a repeated one, or both.
pub fn field_kind(attrs: &[Attribute]) -> Result<FieldKind> {
    let mut kind = FieldKind::Differentiable;
    for attr in attrs {
        let (found, name) = if attr.path().is_ident("no_derivative") {
            (FieldKind::Constant, "no_derivative")
        } else if attr.path().is_ident("buffer") {
            (FieldKind::Buffer, "buffer")
        } else {
            continue;
        };
        if !matches!(attr.meta, Meta::Path(_)) {
            return Err(Error::new_spanned(attr, format!("`#[{name}]` takes no arguments")));
        }
        if kind != FieldKind::Differentiable {
            let message = if kind == found {
                format!("duplicate `#[{name}]`")
            } else {
                "a field is `#[no_derivative]` or `#[buffer]` (a buffer is not differentiated either), not both"
                    .to_owned()
            };
            return Err(Error::new_spanned(attr, message));
        }
        kind = found;
    }
    Ok(kind)
}

/// The struct's storage-kind parameter from `#[storage_kind(K)]`: one of its type
/// parameters, named once.
pub fn storage_kind(attrs: &[Attribute], generics: &Generics) -> Result<Option<Ident>> {
    let mut found = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("storage_kind")) {
        let kind: Ident = attr.parse_args().map_err(|_| {
            Error::new_spanned(attr, "`#[storage_kind(K)]` names the struct's storage-kind type parameter")
        })?;
        let is_parameter =
            generics.params.iter().any(|param| matches!(param, GenericParam::Type(ty) if ty.ident == kind));
        if !is_parameter {
            return Err(Error::new_spanned(
                &kind,
                format!(
                    "`{kind}` is not a type parameter of the struct: `#[storage_kind(K)]` names the one its tensors and layers take as their storage kind"
                ),
            ));
        }
        if found.replace(kind).is_some() {
            return Err(Error::new_spanned(attr, "duplicate `#[storage_kind]`"));
        }
    }
    Ok(found)
}
