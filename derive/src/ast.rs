//! The parsed input: a struct and its fields.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Error, Fields, Generics, Ident, Index, Member, Result, Type, Visibility};

use crate::attr;

/// How the struct's fields are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Named,
    Tuple,
    Unit,
}

pub struct Field<'a> {
    /// The field in the original struct.
    pub member: Member,
    pub vis: &'a Visibility,
    pub ty: &'a Type,
    pub differentiable: bool,
    /// `#[buffer]`: not differentiated, and saved with the parameters.
    pub buffer: bool,
}

pub struct Input<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub generics: &'a Generics,
    pub style: Style,
    pub fields: Vec<Field<'a>>,
    /// `#[storage_kind(K)]`: the type parameter that is the struct's storage kind.
    pub storage_kind: Option<Ident>,
}

impl<'a> Input<'a> {
    pub fn from_syn(input: &'a DeriveInput) -> Result<Self> {
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(data) => {
                return Err(Error::new(
                    data.enum_token.span,
                    "`Differentiable` can be derived for structs only: an enum has no single tangent space \
                     (implement `Differentiable` by hand if its variants share one)",
                ));
            }
            Data::Union(data) => {
                return Err(Error::new(
                    data.union_token.span,
                    "`Differentiable` can be derived for structs only, not for unions",
                ));
            }
        };
        if let Some(lifetime) = input.generics.lifetimes().next() {
            return Err(Error::new_spanned(
                lifetime,
                "`Differentiable` cannot be derived for a struct with lifetime parameters: tangents must own their data",
            ));
        }
        let style = match &data.fields {
            Fields::Named(_) => Style::Named,
            Fields::Unnamed(_) => Style::Tuple,
            Fields::Unit => Style::Unit,
        };
        let fields = data
            .fields
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let member = match &field.ident {
                    Some(ident) => Member::Named(ident.clone()),
                    None => Member::Unnamed(Index { index: index as u32, span: Span::call_site() }),
                };
                let kind = attr::field_kind(&field.attrs)?;
                Ok(Field {
                    member,
                    vis: &field.vis,
                    ty: &field.ty,
                    differentiable: kind == attr::FieldKind::Differentiable,
                    buffer: kind == attr::FieldKind::Buffer,
                })
            })
            .collect::<Result<_>>()?;
        let storage_kind = attr::storage_kind(&input.attrs, &input.generics)?;
        Ok(Input {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            style,
            fields,
            storage_kind,
        })
    }

    /// The fields that have a tangent, in order.
    pub fn differentiable_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|field| field.differentiable)
    }
}
