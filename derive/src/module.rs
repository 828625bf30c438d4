//! `#[module]`: a layer's forward pass written once, as an inherent `forward`
//! method, implemented for every form the layer takes: `Module` for the plain
//! struct (inference), `Module` of traced tensors for its traced twin (training on
//! the tape; a plain input is taken as a constant, as the library's layers take it),
//! and a `#[differentiable]` `apply_batch` with `StaticModule` (static mode), whose
//! body is the same with each `.forward(` call of a layer read as that layer's
//! static form (`.static_forward(`, of the hidden `StaticForward` trait);
//! `#[module(no_static)]` leaves the static form out; `#[module(storage_kind(K))]`
//! writes a block generic over its storage kind out for `Heap` and `Cuda`.

use proc_macro2::{Group, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericParam, ImplItem, ImplItemFn, ItemImpl, Pat, PathArguments, ReturnType, Type, parse2,
};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match options(attr).and_then(|options| Ok((options, parse2::<ItemImpl>(item)?))) {
        Ok((Options { with_static, storage_kind: None }, block)) => {
            module(&block, with_static).unwrap_or_else(syn::Error::into_compile_error)
        }
        Ok((Options { with_static, storage_kind: Some(kind) }, block)) => {
            every_kind(&block, &kind, with_static).unwrap_or_else(syn::Error::into_compile_error)
        }
        Err(error) => error.to_compile_error(),
    }
}

/// The attribute's arguments: `no_static`, `storage_kind(K)`.
struct Options {
    with_static: bool,
    storage_kind: Option<syn::Ident>,
}

fn options(attr: TokenStream) -> syn::Result<Options> {
    let message = "`#[module]` takes `no_static` (the plain and traced forms only) and `storage_kind(K)` (the block for host and GPU tensors), nothing else";
    let arguments = syn::parse::Parser::parse2(
        syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
        attr,
    )?;
    let mut options = Options { with_static: true, storage_kind: None };
    for argument in arguments {
        match &argument {
            syn::Meta::Path(path) if path.is_ident("no_static") => options.with_static = false,
            syn::Meta::List(list) if list.path.is_ident("storage_kind") => {
                options.storage_kind =
                    Some(list.parse_args().map_err(|_| syn::Error::new(list.span(), message))?);
            }
            other => return Err(syn::Error::new(other.span(), message)),
        }
    }
    Ok(options)
}

/// A block generic over its storage kind `K` (`storage_kind(K)`), written out for
/// `Heap` (every form) and, with the `cuda` feature, for `Cuda` (the plain and traced
/// forms: static mode runs on the host): no bound on `K` need say what each form's
/// layers take.
fn every_kind(block: &ItemImpl, kind: &syn::Ident, with_static: bool) -> syn::Result<TokenStream> {
    let is_kind = |param: &GenericParam| matches!(param, GenericParam::Type(ty) if ty.ident == *kind);
    if !block.generics.params.iter().any(is_kind) {
        let message = format!(
            "`{kind}` is not a type parameter of this `impl`: `storage_kind(K)` names the one that is the storage kind"
        );
        return Err(syn::Error::new(kind.span(), message));
    }
    let mut without = block.clone();
    without.generics.params = block.generics.params.iter().filter(|param| !is_kind(param)).cloned().collect();
    let at = |to: TokenStream| -> syn::Result<ItemImpl> {
        parse2(crate::device::substitute(quote!(#without), kind, &to))
    };
    let host = module(&at(quote!(::fluxion::Heap))?, with_static)?;
    let device = module(&at(quote!(::fluxion::Cuda))?, false)?;
    Ok(quote! {
        #host
        ::fluxion::__private::with_cuda! { #device }
    })
}

/// The one method of the block: `fn forward(&self, x: &Input) -> Output`.
struct Forward<'a> {
    method: &'a ImplItemFn,
    /// The input's binding as written (`x`, `mut x`) and its name.
    input_pattern: &'a syn::PatIdent,
    input_name: &'a syn::Ident,
    input: &'a Type,
    output: &'a Type,
}

fn forward_method(block: &ItemImpl) -> syn::Result<Forward<'_>> {
    let shape = "`#[module]` takes an `impl` block of one method, `fn forward(&self, x: &Input) -> Output`";
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(path.span(), shape));
    }
    let [ImplItem::Fn(method)] = block.items.as_slice() else {
        return Err(syn::Error::new(block.self_ty.span(), shape));
    };
    let signature = &method.sig;
    let qualified = signature.constness.is_some()
        || signature.asyncness.is_some()
        || signature.unsafety.is_some()
        || signature.abi.is_some()
        || signature.generics.where_clause.is_some();
    if qualified {
        let message = "`#[module]`'s `forward` is a plain method: no `const`, `async`, `unsafe`, `extern` or `where` of its own (put bounds on the `impl`)";
        return Err(syn::Error::new(signature.span(), message));
    }
    let inputs: Vec<&FnArg> = signature.inputs.iter().collect();
    let ("forward", [FnArg::Receiver(receiver), FnArg::Typed(input)], ReturnType::Type(_, output), true) = (
        signature.ident.to_string().as_str(),
        inputs.as_slice(),
        &signature.output,
        signature.generics.params.is_empty(),
    ) else {
        return Err(syn::Error::new(signature.span(), shape));
    };
    let (Some(_), None, Type::Reference(input_type), Pat::Ident(input_name)) =
        (&receiver.reference, &receiver.mutability, &*input.ty, &*input.pat)
    else {
        return Err(syn::Error::new(signature.inputs.span(), shape));
    };
    if input_type.mutability.is_some() || input_name.by_ref.is_some() || input_name.subpat.is_some() {
        return Err(syn::Error::new(input_type.span(), shape));
    }
    Ok(Forward {
        method,
        input_pattern: input_name,
        input_name: &input_name.ident,
        input: &input_type.elem,
        output,
    })
}

/// `Name<…>` as `NameTraced<…>`: the traced twin that `#[derive(Differentiable)]`
/// defines beside the struct, with the same generic arguments.
fn traced_twin(self_type: &Type) -> syn::Result<Type> {
    let Type::Path(path) = self_type else {
        return Err(syn::Error::new(self_type.span(), "`#[module]` needs a struct named by a path"));
    };
    let mut twin = path.clone();
    let last = twin.path.segments.last_mut().expect("a path has a segment");
    if matches!(last.arguments, PathArguments::Parenthesized(_)) {
        return Err(syn::Error::new(self_type.span(), "`#[module]` needs a struct named by a path"));
    }
    last.ident = format_ident!("{}Traced", last.ident);
    Ok(Type::Path(twin))
}

/// `tokens` with each method call `.forward(` (or `.forward::<…>(`) read as
/// `.static_forward(` (`StaticForward`: any layer's static form), at the same place.
fn static_calls(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    for (index, tree) in trees.iter().enumerate() {
        let is_dot = |at: usize| matches!(&trees[at], TokenTree::Punct(p) if p.as_char() == '.');
        // A method call's `.`, not a range's `..` (whose first dot is joint).
        let after_dot = index > 0
            && is_dot(index - 1)
            && !(index > 1
                && matches!(&trees[index - 2], TokenTree::Punct(p) if p.as_char() == '.' && p.spacing() == proc_macro2::Spacing::Joint));
        let called = matches!(trees.get(index + 1), Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Parenthesis)
            || matches!(trees.get(index + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':');
        out.push(match tree {
            TokenTree::Ident(ident) if ident == "forward" && after_dot && called => {
                TokenTree::Ident(syn::Ident::new("static_forward", ident.span()))
            }
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), static_calls(group.stream()));
                inner.set_span(group.span());
                TokenTree::Group(inner)
            }
            other => other.clone(),
        });
    }
    out.into_iter().collect()
}

/// A generic parameter's name.
fn param_ident(param: &GenericParam) -> &syn::Ident {
    match param {
        GenericParam::Type(ty) => &ty.ident,
        GenericParam::Const(constant) => &constant.ident,
        GenericParam::Lifetime(lifetime) => &lifetime.lifetime.ident,
    }
}

/// Whether `tokens` name `ident`.
fn names(tokens: TokenStream, ident: &syn::Ident) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(found) => found == *ident,
        TokenTree::Group(group) => names(group.stream(), ident),
        _ => false,
    })
}

fn module(block: &ItemImpl, with_static: bool) -> syn::Result<TokenStream> {
    let Forward { method, input_pattern, input_name, input, output } = forward_method(block)?;
    let self_type = &block.self_ty;
    let traced = traced_twin(self_type)?;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let generic_params = &block.generics.params;
    let bounds = where_clause.map(|clause| &clause.predicates);
    let attrs = &method.attrs;
    let body = &method.block;
    let span = method.sig.ident.span();
    let layer = quote_spanned!(span=> ::fluxion::nn::layer);
    let var = quote!(::fluxion::autodiff::Var);
    let static_form = with_static.then(|| {
        let static_body = static_calls(quote!(#body));
        // The parameters the struct's type names stay on the `impl`; the others (an
        // input's width, say) go on the method, where its input constrains them.
        let (own, method_params): (Vec<&GenericParam>, Vec<&GenericParam>) =
            block.generics.params.iter().partition(|param| names(quote!(#self_type), param_ident(param)));
        quote! {
            #[allow(unused_imports)]
            use #layer::StaticForward as _;

            impl<#(#own),*> #self_type {
                #(#attrs)*
                ///
                /// Static mode's form (`#[module]`): inside `#[differentiable]` code.
                #[::fluxion::autodiff::differentiable]
                pub fn apply_batch<#(#method_params),*>(&self, #input_pattern: &#input) -> #output #where_clause #static_body
            }

            ::fluxion::static_module!(impl[#generic_params] #self_type: apply_batch(#input) -> #output; where [#bounds]);
        }
    });
    Ok(quote! {
        #[allow(unused_imports)]
        use #layer::Module as _;

        impl #impl_generics #layer::Module<#input> for #self_type #where_clause {
            type Output = #output;
            #(#attrs)*
            fn forward(&self, #input_pattern: &#input) -> #output #body
        }

        ::fluxion::__private::with_reverse_mode! {
            impl #impl_generics #layer::Module<#var<#input>> for #traced #where_clause {
                type Output = #var<#output>;
                #(#attrs)*
                fn forward(&self, #input_pattern: &#var<#input>) -> #var<#output> #body
            }

            /// A plain input, taken as a constant of the tape.
            impl #impl_generics #layer::Module<#input> for #traced #where_clause {
                type Output = #var<#output>;
                fn forward(&self, #input_name: &#input) -> #var<#output> {
                    #layer::Module::<#var<#input>>::forward(self, &#var::constant(::core::clone::Clone::clone(#input_name)))
                }
            }
        }

        #static_form
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_method_calls_of_forward_are_read_as_static_calls() {
        let body = quote!({
            let forward = 1;
            self.a.forward(x).tanh()
                + self.b.forward::<T>(&self.c.forward(y))
                + forward
                + (0..forward(n)).len()
        });
        let rewritten = static_calls(body).to_string();
        assert_eq!(rewritten.matches("static_forward").count(), 3, "{rewritten}");
        assert!(rewritten.contains(".. forward (n)"), "a range's end is not a method call: {rewritten}");
        assert!(rewritten.contains("let forward = 1") && rewritten.contains("+ forward +"), "{rewritten}");
    }

    #[test]
    fn a_block_of_another_shape_is_refused_with_the_shape_it_needs() {
        for block in [
            quote!(impl Net { fn forward(&self, x: &X, y: &Y) -> Z { x } }),
            quote!(impl Net { fn apply(&self, x: &X) -> Z { x } }),
            quote!(impl Net { fn forward(&self, x: X) -> Z { x } }),
            quote!(impl Module<X> for Net { fn forward(&self, x: &X) -> Z { x } }),
            quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn other(&self) {} }),
            quote!(impl Net { fn forward(&self, ref x: &X) -> Z { x } }),
        ] {
            let error = expand(TokenStream::new(), block).to_string();
            assert!(error.contains("takes an `impl` block of one method"), "{error}");
        }
    }

    #[test]
    fn a_forward_with_qualifiers_or_bounds_of_its_own_is_refused() {
        for block in [
            quote!(impl Net { unsafe fn forward(&self, x: &X) -> Z { x } }),
            quote!(impl Net { const fn forward(&self, x: &X) -> Z { x } }),
            quote!(impl Net { fn forward(&self, x: &X) -> Z where X: Clone { x } }),
        ] {
            let error = expand(TokenStream::new(), block).to_string();
            assert!(error.contains("is a plain method"), "{error}");
        }
    }

    #[test]
    fn the_arguments_choose_the_forms_and_kinds() {
        let block = quote!(impl Net { fn forward(&self, x: &X) -> X { self.a.forward(x) } });
        let error = expand(quote!(statics), block.clone()).to_string();
        assert!(error.contains("takes `no_static`"), "{error}");
        let plain_and_traced = expand(quote!(no_static), block.clone()).to_string();
        let every_form = expand(TokenStream::new(), block).to_string();
        assert!(!plain_and_traced.contains("static_forward") && !plain_and_traced.contains("static_module"));
        assert!(every_form.contains("static_forward") && every_form.contains("static_module"));
        // Generic over its storage kind: written out for `Heap` (every form) and
        // `Cuda` (behind the `cuda` feature, no static form).
        let generic = quote!(
            impl<K> Net<K> {
                fn forward(&self, x: &X<K>) -> X<K> {
                    self.a.forward(x)
                }
            }
        );
        let kinds = expand(quote!(storage_kind(K)), generic.clone()).to_string();
        let (host, device) = kinds.split_once("with_cuda !").expect("the GPU's block");
        assert!(host.contains("Net < :: fluxion :: Heap >") && host.contains("static_module"), "{host}");
        assert!(
            device.contains("Net < :: fluxion :: Cuda >") && !device.contains("static_module"),
            "{device}"
        );
        let error = expand(quote!(storage_kind(T)), generic).to_string();
        assert!(error.contains("`T` is not a type parameter of this `impl`"), "{error}");
    }
}
