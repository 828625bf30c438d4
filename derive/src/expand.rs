//! Code generation for `#[derive(Differentiable)]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Index, Member, WhereClause, parse_quote, parse_quote_spanned};

use crate::ast::{Field, Input, Style};

pub fn differentiable(input: &Input) -> TokenStream {
    let tangent = tangent_struct(input);
    let tangent_impls = tangent_impls(input);
    let differentiable_impl = differentiable_impl(input);
    let traced = traced(input);
    let lifted = lifted(input);
    let lifted_traced = lifted_traced(input);
    let conversions = tangent_conversions(input);
    let parameters = parameters(input);
    let checks = field_checks(input);
    let sharing = buffer_sharing(input);
    let copies = crate::device::copies(input, input.storage_kind.as_ref());
    quote! {
        #checks
        #sharing
        #copies
        #tangent
        #tangent_impls
        #differentiable_impl
        #conversions
        #lifted
        ::fluxion::__private::with_reverse_mode! { #traced #parameters #lifted_traced }
    }
}

/// `Parameters` for the struct and for its tangent: each differentiable field's
/// leaves, named by the field (the tangent's by the struct's field names, so that a
/// gradient or an optimiser's state is named like the parameters it belongs to).
fn parameters(input: &Input) -> TokenStream {
    let ident = input.ident;
    let own = parameters_impl(
        input,
        &quote!(#ident),
        &where_with(input, |field| {
            (field.differentiable || field.buffer).then(|| quote!(::fluxion::__private::Parameters))
        }),
        input.differentiable_fields().map(|field| field.member.clone()).collect(),
        buffers(input),
    );
    let tangent = tangent_ident(input);
    let tangent_bounds = tangent_bounds(input, quote!(::fluxion::__private::Parameters));
    let tangent_members = tangent_members(input).map(|(_, member)| member).collect();
    let tangent = parameters_impl(input, &quote!(#tangent), &tangent_bounds, tangent_members, quote!());
    quote!(#own #tangent)
}

/// A field's label in parameter names: its name, or its position in a tuple struct.
fn label(field: &Field) -> String {
    match &field.member {
        Member::Named(ident) => ident.to_string(),
        Member::Unnamed(index) => index.index.to_string(),
    }
}

/// `visit_buffers` and `visit_buffers_mut` of the struct: the buffers of each
/// differentiable field and of each `#[buffer]` field (a `Buffer`, all of whose
/// leaves are buffers), under the field's label.
fn buffers(input: &Input) -> TokenStream {
    let visits = |method: TokenStream, reference: TokenStream| {
        let visits = input.fields.iter().filter(|field| field.differentiable || field.buffer).map(|field| {
            let (label, member) = (label(field), &field.member);
            quote! {
                ::fluxion::__private::with_segment(path, &#label, |path| {
                    ::fluxion::__private::Parameters::#method(#reference self.#member, path, f)
                });
            }
        });
        quote!(#(#visits)*)
    };
    let visits_mut = visits(quote!(visit_buffers_mut), quote!(&mut));
    let visits = visits(quote!(visit_buffers), quote!(&));
    quote! {
        #[allow(unused_variables)]
        fn visit_buffers(
            &self,
            path: &mut ::fluxion::__private::String,
            f: &mut dyn FnMut(&str, ::fluxion::__private::ParameterLeaf<'_>),
        ) {
            #visits
        }
        #[allow(unused_variables)]
        fn visit_buffers_mut(
            &mut self,
            path: &mut ::fluxion::__private::String,
            f: &mut dyn FnMut(&str, ::fluxion::__private::ParameterLeafMut<'_>),
        ) {
            #visits_mut
        }
    }
}

/// `impl Parameters for #ty` visiting `members`, each labelled by its differentiable
/// field's name (a tuple field by its position in the struct), and with `buffers`'
/// methods.
fn parameters_impl(
    input: &Input,
    ty: &TokenStream,
    bounds: &WhereClause,
    members: Vec<Member>,
    buffers: TokenStream,
) -> TokenStream {
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let labels: Vec<String> = input.differentiable_fields().map(label).collect();
    let members_mut = members.iter();
    let members = members.iter();
    quote! {
        impl #impl_generics ::fluxion::__private::Parameters for #ty #ty_generics #bounds {
            #[allow(unused_variables)] // a struct may have no differentiable field
            fn visit_parameters(
                &self,
                path: &mut ::fluxion::__private::String,
                f: &mut dyn FnMut(&str, ::fluxion::__private::ParameterLeaf<'_>),
            ) {
                #( ::fluxion::__private::with_segment(path, &#labels, |path| {
                    ::fluxion::__private::Parameters::visit_parameters(&self.#members, path, f)
                }); )*
            }
            #[allow(unused_variables)]
            fn visit_parameters_mut(
                &mut self,
                path: &mut ::fluxion::__private::String,
                f: &mut dyn FnMut(&str, ::fluxion::__private::ParameterLeafMut<'_>),
            ) {
                #( ::fluxion::__private::with_segment(path, &#labels, |path| {
                    ::fluxion::__private::Parameters::visit_parameters_mut(&mut self.#members_mut, path, f)
                }); )*
            }
            #buffers
        }
    }
}

fn tangent_ident(input: &Input) -> Ident {
    format_ident!("{}Tangent", input.ident)
}

fn traced_ident(input: &Input) -> Ident {
    format_ident!("{}Traced", input.ident)
}

fn lifted_ident(input: &Input) -> Ident {
    format_ident!("{}Lifted", input.ident)
}

/// The original where clause plus `bound` for every field type that `filter` keeps.
fn where_with(input: &Input, filter: impl Fn(&Field) -> Option<TokenStream>) -> WhereClause {
    let mut clause = input.generics.where_clause.clone().unwrap_or_else(|| parse_quote!(where));
    for field in &input.fields {
        if let Some(bound) = filter(field) {
            let ty = field.ty;
            clause.predicates.push(field_predicate(input, field, quote!(#ty), bound));
        }
    }
    clause
}

/// `subject: bound` for a field's type. On a field whose type names none of the
/// struct's generic parameters the predicate is written for all lifetimes
/// (`for<'fluxion_field>`): the compiler then takes it as an assumption rather than
/// rejecting every generated item when the field's type lacks the trait, and the one
/// error is [`field_checks`]'s, at the field.
fn field_predicate(
    input: &Input,
    field: &Field,
    subject: TokenStream,
    bound: TokenStream,
) -> syn::WherePredicate {
    let span = field.ty.span();
    if mentions_generics(input, field.ty) {
        parse_quote_spanned!(span=> #subject: #bound)
    } else {
        parse_quote_spanned!(span=> for<'fluxion_field> #subject: #bound)
    }
}

/// Whether `ty` names one of the struct's generic parameters.
fn mentions_generics(input: &Input, ty: &syn::Type) -> bool {
    let names: Vec<String> = input
        .generics
        .params
        .iter()
        .map(|param| match param {
            syn::GenericParam::Type(param) => param.ident.to_string(),
            syn::GenericParam::Const(param) => param.ident.to_string(),
            syn::GenericParam::Lifetime(param) => param.lifetime.to_string(),
        })
        .collect();
    fn any_ident(tokens: TokenStream, names: &[String]) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => names.contains(&ident.to_string()),
            proc_macro2::TokenTree::Group(group) => any_ident(group.stream(), names),
            _ => false,
        })
    }
    any_ident(quote!(#ty), &names)
}

/// One check per differentiable field whose type names no generic parameter: a
/// field of a type that is not differentiable is one error, at the field.
fn field_checks(input: &Input) -> TokenStream {
    let checks =
        input.differentiable_fields().filter(|field| !mentions_generics(input, field.ty)).map(|field| {
            let ty = field.ty;
            quote_spanned!(ty.span()=> differentiable::<#ty>();)
        });
    quote! {
        const _: () = {
            fn differentiable<T: ?Sized + ::fluxion::__private::Differentiable>() {}
            #[allow(dead_code)]
            fn check_fields() {
                #(#checks)*
            }
        };
    }
}

/// The struct's differentiable bounds plus `bound` on each differentiable field's
/// tangent.
fn tangent_bounds(input: &Input, bound: TokenStream) -> WhereClause {
    let mut bounds = differentiable_bounds(input);
    for field in input.differentiable_fields() {
        let ty = field.ty;
        let tangent = quote!(<#ty as ::fluxion::__private::Differentiable>::Tangent);
        bounds.predicates.push(field_predicate(input, field, tangent, bound.clone()));
    }
    bounds
}

fn differentiable_bounds(input: &Input) -> WhereClause {
    where_with(input, |field| field.differentiable.then(|| quote!(::fluxion::__private::Differentiable)))
}

/// The member of a differentiable field in the tangent struct (tuple positions skip
/// `#[no_derivative]` fields).
fn tangent_members<'a>(input: &'a Input) -> impl Iterator<Item = (&'a Field<'a>, Member)> + 'a {
    input.differentiable_fields().enumerate().map(|(position, field)| {
        let member = match &field.member {
            Member::Named(ident) => Member::Named(ident.clone()),
            Member::Unnamed(_) => Member::Unnamed(Index { index: position as u32, span: Span::call_site() }),
        };
        (field, member)
    })
}

/// `Name { a: e, b: e }`, `Name(e, e)` or `Name`, from (member, expression) pairs.
pub(crate) fn construct(ident: &Ident, style: Style, parts: Vec<(Member, TokenStream)>) -> TokenStream {
    match style {
        Style::Named => {
            let fields = parts.into_iter().map(|(member, value)| quote!(#member: #value));
            quote!(#ident { #(#fields),* })
        }
        Style::Tuple => {
            let values = parts.into_iter().map(|(_, value)| value);
            quote!(#ident(#(#values),*))
        }
        Style::Unit => quote!(#ident),
    }
}

/// A struct definition with the input's generics and style.
fn define(
    input: &Input,
    ident: &Ident,
    doc: &str,
    where_clause: &WhereClause,
    fields: Vec<(Option<Ident>, TokenStream, TokenStream)>,
) -> TokenStream {
    let vis = input.vis;
    let params = &input.generics.params;
    let fields = fields.into_iter().map(|(name, field_vis, ty)| match name {
        Some(name) => {
            let field_doc = format!("The `{name}` part.");
            quote!(#[doc = #field_doc] #field_vis #name: #ty)
        }
        None => quote!(#field_vis #ty),
    });
    match input.style {
        Style::Named => quote! {
            #[doc = #doc]
            #vis struct #ident<#params> #where_clause { #(#fields),* }
        },
        Style::Tuple => quote! {
            #[doc = #doc]
            #vis struct #ident<#params>(#(#fields),*) #where_clause;
        },
        Style::Unit => quote! {
            #[doc = #doc]
            #vis struct #ident<#params> #where_clause;
        },
    }
}

fn field_name(field: &Field) -> Option<Ident> {
    match &field.member {
        Member::Named(ident) => Some(ident.clone()),
        Member::Unnamed(_) => None,
    }
}

fn tangent_struct(input: &Input) -> TokenStream {
    let doc = format!("The tangent of [`{}`]: one tangent per differentiable field.", input.ident);
    let fields = input
        .differentiable_fields()
        .map(|field| {
            let (vis, ty) = (field.vis, field.ty);
            (field_name(field), quote!(#vis), quote!(<#ty as ::fluxion::__private::Differentiable>::Tangent))
        })
        .collect();
    define(input, &tangent_ident(input), &doc, &differentiable_bounds(input), fields)
}

/// `From` both ways between the struct and its tangent, for a struct whose every
/// field is differentiable. Each field must be its own tangent; the bound is written
/// through `Deferred` so that a struct with another field still compiles and the
/// conversion is refused where it is used, naming the field's type.
fn tangent_conversions(input: &Input) -> TokenStream {
    if input.fields.iter().any(|field| !field.differentiable) {
        return TokenStream::new();
    }
    let (ident, tangent) = (input.ident, tangent_ident(input));
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let mut bounds = differentiable_bounds(input);
    for field in &input.fields {
        let ty = field.ty;
        bounds.predicates.push(parse_quote!(
            for<'fluxion_deferred> <#ty as ::fluxion::__private::Deferred<'fluxion_deferred>>::Itself:
                ::fluxion::__private::OwnTangent
        ));
    }
    let parts = |source: &Ident, method: Ident| {
        input
            .fields
            .iter()
            .map(|field| {
                let member = &field.member;
                (member.clone(), quote!(::fluxion::__private::OwnTangent::#method(#source.#member)))
            })
            .collect()
    };
    let value = format_ident!("value");
    let into_tangent = construct(&tangent, input.style, parts(&value, format_ident!("into_tangent")));
    let from_tangent = construct(ident, input.style, parts(&value, format_ident!("from_tangent")));
    quote! {
        impl #impl_generics ::fluxion::__private::From<#ident #ty_generics> for #tangent #ty_generics #bounds {
            #[allow(unused_variables)]
            fn from(value: #ident #ty_generics) -> Self {
                #into_tangent
            }
        }

        impl #impl_generics ::fluxion::__private::From<#tangent #ty_generics> for #ident #ty_generics #bounds {
            #[allow(unused_variables)]
            fn from(value: #tangent #ty_generics) -> Self {
                #from_tangent
            }
        }
    }
}

fn tangent_impls(input: &Input) -> TokenStream {
    let tangent = tangent_ident(input);
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let bounds = differentiable_bounds(input);
    let debug_bounds = tangent_bounds(input, quote!(::fluxion::__private::Debug));
    let eq_bounds = tangent_bounds(input, quote!(::fluxion::__private::PartialEq));
    let members: Vec<Member> = tangent_members(input).map(|(_, member)| member).collect();
    let map = |f: &dyn Fn(&Member) -> TokenStream| -> TokenStream {
        construct(&tangent, input.style, members.iter().map(|m| (m.clone(), f(m))).collect())
    };
    let clone = map(&|m| quote!(::fluxion::__private::Clone::clone(&self.#m)));
    let zero = map(&|m| quote!(::fluxion::__private::VectorSpace::zero_like(&self.#m)));
    // The fields that hold coordinates: an empty field (a layer without parameters)
    // needs no writing.
    let nonempty = input.differentiable_fields().map(|field| {
        let ty = field.ty;
        quote!((::core::mem::size_of::<<#ty as ::fluxion::__private::Differentiable>::Tangent>() != 0) as usize)
    });
    let vector_space = vector_space_methods(zero, &members, quote!(0 #(+ #nonempty)*));
    let equal = match members.is_empty() {
        true => quote!(true),
        false => quote!(#(self.#members == other.#members)&&*),
    };
    let name = tangent.to_string();
    let debug_fields = members.iter().map(|m| {
        let label = match m {
            Member::Named(ident) => ident.to_string(),
            Member::Unnamed(index) => index.index.to_string(),
        };
        quote!(.field(#label, &self.#m))
    });
    quote! {
        impl #impl_generics ::fluxion::__private::Clone for #tangent #ty_generics #bounds {
            fn clone(&self) -> Self {
                #clone
            }
        }

        impl #impl_generics ::fluxion::__private::Debug for #tangent #ty_generics #debug_bounds {
            fn fmt(&self, f: &mut ::fluxion::__private::Formatter<'_>) -> ::fluxion::__private::FmtResult {
                f.debug_struct(#name) #(#debug_fields)* .finish()
            }
        }

        /// Equal when every field is (a gradient compared with another).
        impl #impl_generics ::fluxion::__private::PartialEq for #tangent #ty_generics #eq_bounds {
            #[allow(unused_variables)] // a struct may have no differentiable field
            fn eq(&self, other: &Self) -> bool {
                #equal
            }
        }

        impl #impl_generics ::fluxion::__private::VectorSpace for #tangent #ty_generics #bounds {
            #vector_space
        }
    }
}

/// The methods of `VectorSpace` for a struct of `members`, `zero` building its zero
/// and `field_count` counting its fields that hold coordinates.
fn vector_space_methods(zero: TokenStream, members: &[Member], field_count: TokenStream) -> TokenStream {
    let names = members.iter().map(part_name);
    quote! {
        const FIELDS: usize = #field_count;
        fn zero_like(&self) -> Self {
            #zero
        }
        fn try_add_assign(&mut self, other: &Self) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
            ::fluxion::__private::try_add_assign_leaves(self, other)
        }
        #[allow(unused_variables)] // a struct may have no differentiable field
        fn scale_mut(&mut self, factor: impl ::fluxion::__private::Into<f64>) {
            let factor: f64 = ::fluxion::__private::Into::into(factor);
            #( ::fluxion::__private::VectorSpace::scale_mut(&mut self.#members, factor); )*
        }
        #[allow(unused_mut, unused_variables)] // a struct may have no differentiable field
        fn zip_leaves<const FLUXION_W: usize, const FLUXION_R: usize, FluxionVisitor: ::fluxion::__private::LeafVisitor<FLUXION_W, FLUXION_R>>(
            mut written: [&mut Self; FLUXION_W],
            read: [&Self; FLUXION_R],
            visitor: &mut FluxionVisitor,
        ) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
            #( ::fluxion::__private::visit_part(visitor, &#names, |visitor| ::fluxion::__private::VectorSpace::zip_leaves(
                written.each_mut().map(|w| &mut w.#members),
                read.map(|r| &r.#members),
                visitor,
            ))?; )*
            ::fluxion::__private::Result::Ok(())
        }
    }
}

/// The struct's members and their tangent's, from (own field, tangent field) pairs.
fn own_and_tangent_members(pairs: &[(Member, Member)]) -> (Vec<&Member>, Vec<&Member>) {
    pairs.iter().map(|(own, theirs)| (own, theirs)).unzip()
}

/// A field's name as the leaf walks give it to visitors (`weight`, or `0` in a tuple
/// struct): a string literal.
fn part_name(member: &Member) -> TokenStream {
    let name = match member {
        Member::Named(ident) => ident.to_string(),
        Member::Unnamed(index) => index.index.to_string(),
    };
    quote!(#name)
}

/// `Differentiable::zip_leaves_with` for a struct: each (own field, tangent field) pair.
fn zip_leaves_with_method(pairs: &[(Member, Member)]) -> TokenStream {
    let (own, theirs) = own_and_tangent_members(pairs);
    let names = own.iter().map(|member| part_name(member));
    quote! {
        #[allow(unused_mut, unused_variables)] // a struct may have no differentiable field
        fn zip_leaves_with<const FLUXION_W: usize, const FLUXION_R: usize, FluxionVisitor: ::fluxion::__private::LeafVisitor<FLUXION_W, FLUXION_R>>(
            &mut self,
            mut written: [&mut Self::Tangent; FLUXION_W],
            read: [&Self::Tangent; FLUXION_R],
            visitor: &mut FluxionVisitor,
        ) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
            #( ::fluxion::__private::visit_part(visitor, &#names, |visitor| ::fluxion::__private::Differentiable::zip_leaves_with(
                &mut self.#own,
                written.each_mut().map(|w| &mut w.#theirs),
                read.map(|r| &r.#theirs),
                visitor,
            ))?; )*
            ::fluxion::__private::Result::Ok(())
        }
    }
}

/// The methods of `Trace` for a struct, from its traced and constant forms, its
/// value built back from `traced` (with `leaves` noted), and its (own field, tangent
/// field) pairs.
fn trace_methods(
    trace: TokenStream,
    as_constant: TokenStream,
    untrace: TokenStream,
    pairs: &[(Member, Member)],
) -> TokenStream {
    let (own, theirs) = own_and_tangent_members(pairs);
    quote! {
        #[inline]
        fn trace(&self) -> Self::Traced {
            #trace
        }

        #[inline]
        fn as_constant(&self) -> Self::Traced {
            #as_constant
        }

        #[inline]
        fn gradient_buffers<'fluxion_gradient>(
            &self,
            gradient: &'fluxion_gradient mut Self::Tangent,
            buffers: &mut ::fluxion::__private::Vec<&'fluxion_gradient mut dyn ::fluxion::__private::Any>,
        ) {
            #( ::fluxion::__private::Trace::gradient_buffers(&self.#own, &mut gradient.#theirs, buffers); )*
        }

        #[allow(unused_variables)] // a struct may have no differentiable field
        fn untrace(traced: &Self::Traced, leaves: &mut ::fluxion::__private::TracedLeaves) -> Self {
            #untrace
        }
    }
}

/// `ident` built back from `traced`, its traced twin: each differentiable field, of
/// type `field_type(field)`, by `Trace::untrace`, each constant cloned.
fn untrace_fields(input: &Input, ident: &Ident, field_type: impl Fn(&Field) -> TokenStream) -> TokenStream {
    construct_from_fields(
        input,
        ident,
        |field| {
            let (member, ty) = (&field.member, field_type(field));
            quote!(<#ty as ::fluxion::__private::Trace>::untrace(&traced.#member, leaves))
        },
        |field| carry(input, field, quote!(traced)),
    )
}

fn differentiable_impl(input: &Input) -> TokenStream {
    let ident = input.ident;
    let tangent = tangent_ident(input);
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let bounds = differentiable_bounds(input);
    let pairs: Vec<(Member, Member)> =
        tangent_members(input).map(|(field, member)| (field.member.clone(), member)).collect();
    let zero = construct(
        &tangent,
        input.style,
        pairs
            .iter()
            .map(|(own, theirs)| {
                (theirs.clone(), quote!(::fluxion::__private::Differentiable::zero_tangent(&self.#own)))
            })
            .collect(),
    );
    let zip_leaves_with = zip_leaves_with_method(&pairs);
    let (own, theirs) = own_and_tangent_members(&pairs);
    // A tuple struct's tangent renumbers the fields after a constant one.
    let keeps_positions = pairs.iter().all(|(own, theirs)| own == theirs);
    // `stop_gradient` in forward mode: each differentiable field without its dual
    // tangents, constants as they are.
    let carries = input.differentiable_fields().map(|field| {
        let ty = field.ty;
        quote!(<#ty as ::fluxion::__private::Differentiable>::CARRIES_TANGENT)
    });
    let without_tangent = construct_from_fields(
        input,
        ident,
        |field| {
            let member = &field.member;
            quote!(::fluxion::__private::Differentiable::without_tangent(self.#member))
        },
        |field| {
            let member = &field.member;
            quote!(self.#member)
        },
    );
    quote! {
        #[diagnostic::do_not_recommend]
        impl #impl_generics ::fluxion::__private::Differentiable for #ident #ty_generics #bounds {
            type Tangent = #tangent #ty_generics;
            const TANGENT_KEEPS_POSITIONS: bool = #keeps_positions;
            const CARRIES_TANGENT: bool = false #(|| #carries)*;

            fn without_tangent(self) -> Self {
                #without_tangent
            }

            fn try_move_by(&mut self, offset: &Self::Tangent) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                ::fluxion::__private::try_move_by_leaves(self, offset)
            }

            fn zero_tangent(&self) -> Self::Tangent {
                #zero
            }

            #[allow(unused_variables)] // a struct may have no differentiable field
            fn check_tangent(&self, tangent: &Self::Tangent, operation: &'static str) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                #( ::fluxion::__private::Differentiable::check_tangent(&self.#own, &tangent.#theirs, operation)?; )*
                ::fluxion::__private::Result::Ok(())
            }


            #zip_leaves_with
        }
    }
}

/// A twin of the input struct for one mode: each differentiable field of type `F`
/// becomes `<F as $trait_path>::$assoc`, each `#[no_derivative]` field keeps its type.
/// Returns the where clause (`F: $trait_path`, constants `Clone`), the definition,
/// and the construction of the twin from `self`, where `convert` turns a
/// differentiable field into its twin and constants are cloned.
fn twin(
    input: &Input,
    twin_ident: &Ident,
    doc: &str,
    trait_path: TokenStream,
    assoc: &str,
    convert: impl Fn(&Field) -> TokenStream,
) -> (WhereClause, TokenStream, TokenStream) {
    let assoc = format_ident!("{assoc}");
    let bounds =
        where_with(
            input,
            |field| {
                if field.differentiable { Some(trait_path.clone()) } else { carry_bound(field) }
            },
        );
    let fields = input
        .fields
        .iter()
        .map(|field| {
            let (vis, ty) = (field.vis, field.ty);
            let ty = if field.differentiable { quote!(<#ty as #trait_path>::#assoc) } else { quote!(#ty) };
            (field_name(field), quote!(#vis), ty)
        })
        .collect();
    let definition = define(input, twin_ident, doc, &bounds, fields);
    let construction =
        construct_from_fields(input, twin_ident, convert, |field| carry(input, field, quote!(self)));
    (bounds, definition, construction)
}

/// The name of the function that shares a `#[buffer]` field ([`buffer_sharing`]).
fn share_function(field: &Field) -> Ident {
    match &field.member {
        Member::Named(ident) => format_ident!("__fluxion_share_{}", ident),
        Member::Unnamed(index) => format_ident!("__fluxion_share_{}", index.index),
    }
}

/// For each `#[buffer]` field, an associated function of the struct that shares it
/// (`ShareState::share`): the twins call it, so a field that is no `Buffer` is one
/// error, at the field.
fn buffer_sharing(input: &Input) -> TokenStream {
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let functions = input.fields.iter().filter(|field| field.buffer).map(|field| {
        let (name, ty) = (share_function(field), field.ty);
        quote_spanned! {ty.span()=>
            #[doc(hidden)]
            fn #name(field: &#ty) -> #ty {
                ::fluxion::__private::ShareState::share(field)
            }
        }
    });
    quote! {
        #[allow(dead_code)] // without reverse mode, only the lifted twin calls them
        impl #impl_generics #ident #ty_generics #where_clause {
            #(#functions)*
        }
    }
}

/// A constant field of `source` carried into a twin: cloned, or shared for a
/// `#[buffer]` field (the twins a gradient makes update the model's buffers).
fn carry(input: &Input, field: &Field, source: TokenStream) -> TokenStream {
    let member = &field.member;
    if field.buffer {
        let (ident, function) = (input.ident, share_function(field));
        let (_, ty_generics, _) = input.generics.split_for_impl();
        let ty_generics = ty_generics.as_turbofish();
        quote!(#ident #ty_generics::#function(&#source.#member))
    } else {
        quote!(::fluxion::__private::Clone::clone(&#source.#member))
    }
}

/// The bound a twin puts on a constant field's type: `Clone` for [`carry`] (none for
/// a buffer, which the struct's own function shares).
fn carry_bound(field: &Field) -> Option<TokenStream> {
    (!field.buffer).then(|| quote!(::fluxion::__private::Clone))
}

/// `ident { … }` built field by field from `self`: each differentiable field by
/// `differentiable`, each constant by `constant`.
fn construct_from_fields(
    input: &Input,
    ident: &Ident,
    differentiable: impl Fn(&Field) -> TokenStream,
    constant: impl Fn(&Field) -> TokenStream,
) -> TokenStream {
    let parts = input
        .fields
        .iter()
        .map(|field| {
            let value = if field.differentiable { differentiable(field) } else { constant(field) };
            (field.member.clone(), value)
        })
        .collect();
    construct(ident, input.style, parts)
}

fn traced(input: &Input) -> TokenStream {
    let ident = input.ident;
    let traced = traced_ident(input);
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let doc = format!("[`{ident}`] as a differentiated function sees it: every differentiable field traced.");
    let (bounds, definition, trace) =
        twin(input, &traced, &doc, quote!(::fluxion::__private::Trace), "Traced", |field| {
            let member = &field.member;
            quote!(::fluxion::__private::Trace::trace(&self.#member))
        });
    let (_, _, as_constant) =
        twin(input, &traced, &doc, quote!(::fluxion::__private::Trace), "Traced", |field| {
            let member = &field.member;
            quote!(::fluxion::__private::Trace::as_constant(&self.#member))
        });
    let pairs: Vec<(Member, Member)> =
        tangent_members(input).map(|(field, member)| (field.member.clone(), member)).collect();
    let field_type = |field: &Field| {
        let ty = field.ty;
        quote!(#ty)
    };
    let untrace = untrace_fields(input, ident, field_type);
    let trace_methods = trace_methods(trace, as_constant, untrace, &pairs);
    let clone = traced_clone(input, &traced, &bounds, field_type);
    quote! {
        #definition

        #clone

        impl #impl_generics ::fluxion::__private::Trace for #ident #ty_generics #bounds {
            type Traced = #traced #ty_generics;

            #trace_methods
        }

        #[diagnostic::do_not_recommend]
        impl #impl_generics ::fluxion::__private::TracedInput for #traced #ty_generics #bounds {
            type Value = #ident #ty_generics;
        }
    }
}

/// `Clone` for the traced twin `traced` (its `Var`s share their values) when every
/// field's traced form is `Clone`, so that a model's traced form read by reference can
/// be handed to `checkpoint`. `bounds` are the twin's own; `field_type` gives the type
/// a differentiable field traces.
fn traced_clone(
    input: &Input,
    traced: &Ident,
    bounds: &WhereClause,
    field_type: impl Fn(&Field) -> TokenStream,
) -> TokenStream {
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let mut clone_bounds = bounds.clone();
    for field in input.differentiable_fields() {
        // A bound on the field's type, not on its traced type: a field type without
        // `Trace` (a GPU dual's) then leaves the impl unusable rather than refused.
        let bound = quote!(::fluxion::__private::CloneTraced);
        clone_bounds.predicates.push(field_predicate(input, field, field_type(field), bound));
    }
    let clone = construct_from_fields(
        input,
        traced,
        |field| {
            let (member, ty) = (&field.member, field_type(field));
            quote!(<#ty as ::fluxion::__private::CloneTraced>::clone_traced(&self.#member))
        },
        |field| carry(input, field, quote!(self)),
    );
    quote! {
        impl #impl_generics ::fluxion::__private::Clone for #traced #ty_generics #clone_bounds {
            fn clone(&self) -> Self {
                #clone
            }
        }
    }
}

/// Second order (reverse mode over dual numbers: `hvp`, `coordinate_hessian`):
/// `NameLifted` becomes a value that is its own tangent (as a tensor of duals is;
/// `#[no_derivative]` fields ride along unchanged), and a function takes it traced as
/// `NameLiftedTraced` (each field's lifted type traced; the associated type names
/// only the generated struct, so private field types stay private). Every bound names the fields' lifted types, so a struct
/// whose lifted fields are not their own tangents (a layer's) still compiles and only
/// the second-order call is refused.
fn lifted_traced(input: &Input) -> TokenStream {
    if input.style == Style::Unit {
        return TokenStream::new();
    }
    let (ident, lifted, traced) =
        (input.ident, lifted_ident(input), format_ident!("{}LiftedTraced", input.ident));
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let lifted_type_of = |field: &Field| {
        let ty = field.ty;
        quote!(<#ty as ::fluxion::__private::Lift>::Lifted)
    };
    let lifted_types: Vec<TokenStream> = input
        .fields
        .iter()
        .map(|field| {
            let ty = field.ty;
            if field.differentiable { lifted_type_of(field) } else { quote!(#ty) }
        })
        .collect();
    // `bound` on each differentiable field's lifted type; constants are cloned.
    let bounds_with = |bound: &dyn Fn(&TokenStream) -> TokenStream| -> WhereClause {
        let mut clause =
            where_with(input, |field| field.differentiable.then(|| quote!(::fluxion::__private::Lift)));
        for (field, lifted_ty) in input.fields.iter().zip(&lifted_types) {
            let bound =
                if field.differentiable { bound(lifted_ty) } else { quote!(::fluxion::__private::Clone) };
            clause.predicates.push(field_predicate(input, field, lifted_ty.clone(), bound));
        }
        clause
    };
    let clone_bounds = bounds_with(&|_| quote!(::fluxion::__private::Clone));
    let own_tangent_bounds = bounds_with(
        &|ty| quote!(::fluxion::__private::Differentiable<Tangent = #ty> + ::fluxion::__private::VectorSpace),
    );
    let trace_bounds = bounds_with(
        &|ty| quote!(::fluxion::__private::Trace + ::fluxion::__private::Differentiable<Tangent = #ty> + ::fluxion::__private::VectorSpace),
    );
    // Each field built by `differentiable` (a differentiable one) or cloned (a constant).
    let each_field = |name: &Ident, differentiable: &dyn Fn(&Member) -> TokenStream| -> TokenStream {
        let parts = input.fields.iter().map(|field| {
            let m = &field.member;
            let value =
                if field.differentiable { differentiable(m) } else { carry(input, field, quote!(self)) };
            (m.clone(), value)
        });
        construct(name, input.style, parts.collect())
    };
    let clone = each_field(&lifted, &|m| quote!(::fluxion::__private::Clone::clone(&self.#m)));
    let zero = each_field(&lifted, &|m| quote!(::fluxion::__private::VectorSpace::zero_like(&self.#m)));
    let members: Vec<Member> = input.differentiable_fields().map(|field| field.member.clone()).collect();
    // Every field counts here: static mode writes tangents field by field, never this
    // lifted twin, so the count is only an upper bound it never reads.
    let field_count = members.len();
    let vector_space = vector_space_methods(zero, &members, quote!(#field_count));
    let pairs: Vec<(Member, Member)> = members.iter().map(|m| (m.clone(), m.clone())).collect();
    let zip_leaves_with = zip_leaves_with_method(&pairs);
    // The traced twin, with the struct's generics: each field's lifted type traced.
    let doc =
        format!("[`{ident}`] lifted to dual numbers and traced: the argument of a second-order function.");
    let traced_fields = input
        .fields
        .iter()
        .zip(&lifted_types)
        .map(|(field, ty)| {
            (
                field_name(field),
                {
                    let vis = field.vis;
                    quote!(#vis)
                },
                if field.differentiable {
                    quote!(<#ty as ::fluxion::__private::Trace>::Traced)
                } else {
                    ty.clone()
                },
            )
        })
        .collect();
    let traced_bounds = bounds_with(&|_| quote!(::fluxion::__private::Trace));
    let traced_definition = define(input, &traced, &doc, &traced_bounds, traced_fields);
    let clone_traced = traced_clone(input, &traced, &traced_bounds, lifted_type_of);
    let trace_parts = |method: TokenStream| {
        each_field(&traced, &|m| quote!(::fluxion::__private::Trace::#method(&self.#m)))
    };
    let untrace = untrace_fields(input, &lifted, lifted_type_of);

    let trace_methods =
        trace_methods(trace_parts(quote!(trace)), trace_parts(quote!(as_constant)), untrace, &pairs);
    quote! {
        impl #impl_generics ::fluxion::__private::Clone for #lifted #ty_generics #clone_bounds {
            fn clone(&self) -> Self {
                #clone
            }
        }

        impl #impl_generics ::fluxion::__private::VectorSpace for #lifted #ty_generics #own_tangent_bounds {
            #vector_space
        }

        #[diagnostic::do_not_recommend]
        impl #impl_generics ::fluxion::__private::Differentiable for #lifted #ty_generics #own_tangent_bounds {
            type Tangent = Self;

            fn try_move_by(&mut self, offset: &Self) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                ::fluxion::__private::try_move_by_leaves(self, offset)
            }

            fn zero_tangent(&self) -> Self {
                ::fluxion::__private::VectorSpace::zero_like(self)
            }

            #zip_leaves_with
        }

        #[allow(dead_code)] // the fields are for the user's function
        #traced_definition

        #clone_traced

        impl #impl_generics ::fluxion::__private::Trace for #lifted #ty_generics #trace_bounds {
            type Traced = #traced #ty_generics;

            #trace_methods
        }

        #[diagnostic::do_not_recommend]
        impl #impl_generics ::fluxion::__private::TracedInput for #traced #ty_generics #trace_bounds {
            type Value = #lifted #ty_generics;
        }
    }
}

/// `NameLifted` (every differentiable field lifted to dual numbers) with `Lift` for
/// the struct and `Unlift` back, for forward mode.
fn lifted(input: &Input) -> TokenStream {
    let ident = input.ident;
    let lifted = lifted_ident(input);
    let tangent = tangent_ident(input);
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let doc = format!("[`{ident}`] in forward mode: every differentiable field lifted to dual numbers.");
    let (bounds, definition, lift) =
        twin(input, &lifted, &doc, quote!(::fluxion::__private::Lift), "Lifted", |field| {
            let member = &field.member;
            let theirs = tangent_members(input).find(|(f, _)| f.member == field.member).map(|(_, m)| m);
            quote!(::fluxion::__private::Lift::lift(&self.#member, &tangent.#theirs))
        });
    let parts: Vec<Ident> = (0..input.fields.len()).map(|i| format_ident!("part_{}", i)).collect();
    let split = input.fields.iter().zip(&parts).map(|(field, part)| {
        let member = &field.member;
        if field.differentiable {
            quote!(let #part = ::fluxion::__private::Unlift::unlift(&self.#member);)
        } else {
            let carried = carry(input, field, quote!(self));
            quote!(let #part = #carried;)
        }
    });
    let value = construct(
        ident,
        input.style,
        input
            .fields
            .iter()
            .zip(&parts)
            .map(|(field, part)| {
                let value = if field.differentiable { quote!(#part.0) } else { quote!(#part) };
                (field.member.clone(), value)
            })
            .collect(),
    );
    let tangent_value = construct(
        &tangent,
        input.style,
        tangent_members(input)
            .map(|(field, member)| {
                let position =
                    input.fields.iter().position(|f| f.member == field.member).expect("a field of the input");
                let part = &parts[position];
                (member, quote!(#part.1))
            })
            .collect(),
    );
    quote! {
        #definition

        impl #impl_generics ::fluxion::__private::Lift for #ident #ty_generics #bounds {
            type Lifted = #lifted #ty_generics;

            fn lift(&self, tangent: &Self::Tangent) -> Self::Lifted {
                #lift
            }
        }

        impl #impl_generics ::fluxion::__private::Unlift for #lifted #ty_generics #bounds {
            type Primal = #ident #ty_generics;

            fn unlift(&self) -> (Self::Primal, <Self::Primal as ::fluxion::__private::Differentiable>::Tangent) {
                #(#split)*
                (#value, #tangent_value)
            }
        }
    }
}
