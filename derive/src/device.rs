//! `#[storage_kind(K)]`: a struct of layers generic over its storage kind `K` moves
//! between the host and the GPU as the library's layers do, field by field:
//! `ToDevice` for `Name<…, Heap, …>` and `ToHost` for `Name<…, Cuda, …>` (with the
//! `cuda` feature; nothing without it). `K` is substituted where it is named as a
//! type (`Tensor<T, S, K>`), not inside a path (`K::Assoc`).

use proc_macro2::{Group, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{GenericParam, Ident};

use crate::ast::Input;

/// `tokens` with every `from` replaced by `to`.
pub(crate) fn substitute(tokens: TokenStream, from: &Ident, to: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| -> Vec<TokenTree> {
            match tree {
                TokenTree::Ident(ident) if ident == *from => to.clone().into_iter().collect(),
                TokenTree::Group(group) => {
                    let mut inner = Group::new(group.delimiter(), substitute(group.stream(), from, to));
                    inner.set_span(group.span());
                    vec![TokenTree::Group(inner)]
                }
                other => vec![other],
            }
        })
        .collect()
}

fn mentions(tokens: TokenStream, name: &Ident) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == *name,
        TokenTree::Group(group) => mentions(group.stream(), name),
        _ => false,
    })
}

/// The copies to the GPU and back of a struct whose storage kind is its type
/// parameter `kind`; nothing without one.
pub fn copies(input: &Input, kind: Option<&Ident>) -> TokenStream {
    let Some(kind) = kind else { return TokenStream::new() };
    let (heap, cuda) = (quote!(::fluxion::Heap), quote!(::fluxion::Cuda));
    let ident = input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let at = |to: &TokenStream| substitute(ty_generics.to_token_stream(), kind, to);
    let (on_host, on_device) = (at(&heap), at(&cuda));
    // The other parameters by name (no defaults); every bound — the kind's, the
    // others' inline ones, the struct's predicates — at both kinds (the struct is
    // well-formed at each).
    let mut params = Vec::new();
    let mut bounds = Vec::new();
    for param in &input.generics.params {
        match param {
            GenericParam::Type(ty) if ty.ident == *kind => {
                let own = &ty.bounds;
                if !own.is_empty() {
                    bounds.push(quote!(#kind: #own));
                }
            }
            GenericParam::Type(ty) => {
                let (ident, own) = (&ty.ident, &ty.bounds);
                params.push(quote!(#ident));
                if !own.is_empty() {
                    bounds.push(quote!(#ident: #own));
                }
            }
            GenericParam::Const(constant) => {
                let (ident, ty) = (&constant.ident, &constant.ty);
                params.push(quote!(const #ident: #ty));
            }
            GenericParam::Lifetime(lifetime) => params.push(lifetime.lifetime.to_token_stream()),
        }
    }
    let clause = input.generics.where_clause.iter().flat_map(|clause| &clause.predicates);
    bounds.extend(clause.map(ToTokens::to_token_stream));
    let mut predicates = Vec::new();
    for tokens in bounds {
        if mentions(tokens.clone(), kind) {
            predicates.extend([substitute(tokens.clone(), kind, &heap), substitute(tokens, kind, &cuda)]);
        } else {
            predicates.push(tokens);
        }
    }
    let layer = quote!(::fluxion::nn::layer);
    let copy = |to_trait: TokenStream,
                method: TokenStream,
                associated: TokenStream,
                from: &TokenStream,
                to: &TokenStream| {
        let mut bounds = predicates.clone();
        let parts = input
            .fields
            .iter()
            .map(|field| {
                let (member, ty) = (&field.member, field.ty.to_token_stream());
                // A constant that names no `K` is cloned; anything else is copied as
                // its own type says (a layer with a stream of its own, `Dropout`,
                // forks it; a buffer gets a buffer of its own).
                let value = if mentions(ty.clone(), kind) || field.differentiable || field.buffer {
                    let (source, target) = (substitute(ty.clone(), kind, from), substitute(ty, kind, to));
                    bounds.push(quote!(#source: #layer::#to_trait<#associated = #target>));
                    quote!(#layer::#to_trait::#method(&self.#member))
                } else {
                    bounds.push(quote!(#ty: ::core::clone::Clone));
                    quote!(::core::clone::Clone::clone(&self.#member))
                };
                (member.clone(), value)
            })
            .collect();
        let value = crate::expand::construct(ident, input.style, parts);
        let (source, target) = if from.to_string() == heap.to_string() {
            (&on_host, &on_device)
        } else {
            (&on_device, &on_host)
        };
        let params = params.clone();
        quote! {
            impl<#(#params),*> #layer::#to_trait for #ident #source where #(#bounds,)* {
                type #associated = #ident #target;
                fn #method(&self) -> Self::#associated {
                    #value
                }
            }
        }
    };
    let to_device = copy(quote!(ToDevice), quote!(to_device), quote!(OnDevice), &heap, &cuda);
    let to_host = copy(quote!(ToHost), quote!(to_host), quote!(OnHost), &cuda, &heap);
    quote! {
        ::fluxion::__private::with_cuda! { #to_device #to_host }
    }
}
