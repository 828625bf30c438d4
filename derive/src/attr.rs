//! The field attribute `#[no_derivative]`.

use syn::{Attribute, Error, Meta, Result};

/// Whether the field carries `#[no_derivative]`; an error for any other form of it.
pub fn no_derivative(attrs: &[Attribute]) -> Result<bool> {
    let mut found = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("no_derivative")) {
        if !matches!(attr.meta, Meta::Path(_)) {
            return Err(Error::new_spanned(attr, "`#[no_derivative]` takes no arguments"));
        }
        if found {
            return Err(Error::new_spanned(attr, "duplicate `#[no_derivative]`"));
        }
        found = true;
    }
    Ok(found)
}
