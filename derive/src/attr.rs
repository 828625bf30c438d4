//! The field attributes `#[no_derivative]` and `#[buffer]`.

use syn::{Attribute, Error, Meta, Result};

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
