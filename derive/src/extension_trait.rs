//! `#[extension_trait(Name)]`: an inherent `impl` block's public methods moved into a
//! trait of the same methods, implemented for the same type.
//!
//! fluxion puts the GPU tensors' methods in such traits: a host tensor whose storage
//! kind is still being inferred then finds only the host's inherent method of a name
//! (inherent methods are tried before trait methods), where two inherent methods of
//! that name would be ambiguous. The block's doc comment documents the trait; each
//! method's docs and `#[must_use]` go to the trait's declaration, its other
//! attributes (`#[track_caller]`, `#[inline]`) to the implementation, lint levels and
//! `cfg`s to both. Items that are not `pub` stay in an inherent block. Written
//! `#[extension_trait(Name: path::Sealed)]`, the trait has that supertrait (a sealed
//! one, so that no other crate implements it and it may gain methods).

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, PatIdent, Path, Token, TraitItemFn,
    Visibility, parse2,
};

/// The attribute's argument: the trait's name and an optional supertrait.
struct Signature {
    name: Ident,
    supertrait: Option<Path>,
}

impl Parse for Signature {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.parse()?;
        let supertrait =
            if input.parse::<Option<Token![:]>>()?.is_some() { Some(input.parse()?) } else { None };
        Ok(Signature { name, supertrait })
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match parse2::<Signature>(attr).and_then(|signature| Ok((signature, parse2::<ItemImpl>(item)?))) {
        Ok((signature, block)) => extension_trait(&signature, block),
        Err(error) => error.to_compile_error(),
    }
}

fn extension_trait(Signature { name, supertrait }: &Signature, mut block: ItemImpl) -> TokenStream {
    if let Some((_, path, _)) = &block.trait_ {
        return syn::Error::new_spanned(path, "`extension_trait` takes an inherent `impl` block")
            .to_compile_error();
    }
    let (docs, other_attrs): (Vec<Attribute>, Vec<Attribute>) =
        block.attrs.drain(..).partition(|attr| attr.path().is_ident("doc"));
    let cfgs: Vec<&Attribute> = other_attrs.iter().filter(|attr| attr.path().is_ident("cfg")).collect();
    let (methods, rest): (Vec<ImplItem>, Vec<ImplItem>) = block
        .items
        .drain(..)
        .partition(|item| matches!(item, ImplItem::Fn(f) if matches!(f.vis, Visibility::Public(_))));
    let methods: Vec<ImplItemFn> = methods
        .into_iter()
        .map(|item| match item {
            ImplItem::Fn(method) => method,
            _ => unreachable!("partitioned on `ImplItem::Fn`"),
        })
        .collect();

    let declarations = methods.iter().map(declaration);
    let definitions = methods.iter().map(definition);
    let generics = &block.generics;
    let (impl_generics, trait_arguments, where_clause) = generics.split_for_impl();
    let self_ty = &block.self_ty;
    let attrs = &other_attrs;
    let inherent = (!rest.is_empty()).then(|| {
        quote! {
            #(#attrs)*
            impl #impl_generics #self_ty #where_clause {
                #(#rest)*
            }
        }
    });
    let params = &generics.params;
    let supertrait = supertrait.iter();
    quote! {
        #(#docs)*
        #(#cfgs)*
        pub trait #name<#params>: Sized #(+ #supertrait)* #where_clause {
            #(#declarations)*
        }

        #(#attrs)*
        impl #impl_generics #name #trait_arguments for #self_ty #where_clause {
            #(#definitions)*
        }

        #inherent
    }
}

/// Attributes that document a method's contract stay with its declaration.
fn belongs_to_declaration(attr: &Attribute) -> bool {
    ["doc", "must_use", "deprecated"].iter().any(|name| attr.path().is_ident(name))
}

/// Attributes that both the declaration and the implementation need.
fn belongs_to_both(attr: &Attribute) -> bool {
    ["cfg", "allow", "expect", "warn", "deny"].iter().any(|name| attr.path().is_ident(name))
}

/// The method's declaration: its signature with plain parameter names (a declaration
/// takes no `mut` or destructuring pattern).
fn declaration(method: &ImplItemFn) -> TraitItemFn {
    let mut sig = method.sig.clone();
    for (position, input) in sig.inputs.iter_mut().enumerate() {
        if let FnArg::Typed(typed) = input {
            let ident = match &*typed.pat {
                Pat::Ident(PatIdent { ident, subpat: None, .. }) => ident.clone(),
                _ => Ident::new(&format!("argument_{position}"), Span::call_site()),
            };
            *typed.pat = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident,
                subpat: None,
            });
        }
    }
    TraitItemFn {
        attrs: method
            .attrs
            .iter()
            .filter(|a| belongs_to_declaration(a) || belongs_to_both(a))
            .cloned()
            .collect(),
        sig,
        default: None,
        semi_token: Some(Default::default()),
    }
}

fn definition(method: &ImplItemFn) -> ImplItemFn {
    ImplItemFn {
        attrs: method.attrs.iter().filter(|a| !belongs_to_declaration(a)).cloned().collect(),
        vis: Visibility::Inherited,
        ..method.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::expand;
    use syn::{File, ImplItem, Item};

    fn expanded(attr: &str, item: &str) -> File {
        let tokens = expand(attr.parse().expect("tokens"), item.parse().expect("tokens"));
        syn::parse2(tokens).expect("the expansion parses as items")
    }

    /// The public method goes to the trait (its docs and `must_use` to the declaration,
    /// `track_caller` to the implementation); the private helper stays inherent.
    #[test]
    fn public_methods_move_to_the_trait() {
        let file = expanded(
            "Ops",
            "/// Operations.\nimpl<T: Copy> Wrapper<T> {\n/// Doubled.\n#[must_use]\n#[track_caller]\n\
             pub fn doubled(&self) -> Self { self.helper() }\nfn helper(&self) -> Self { *self }\n}",
        );
        let [Item::Trait(declared), Item::Impl(implemented), Item::Impl(inherent)] = &file.items[..] else {
            panic!("expected a trait, its impl and an inherent block: {:?}", file.items.len());
        };
        assert_eq!(declared.ident, "Ops");
        assert!(declared.attrs.iter().any(|a| a.path().is_ident("doc")));
        let syn::TraitItem::Fn(doubled) = &declared.items[0] else { panic!("a method") };
        let names: Vec<_> = doubled.attrs.iter().map(|a| a.path().get_ident().unwrap().to_string()).collect();
        assert_eq!(names, ["doc", "must_use"]);
        assert!(implemented.trait_.is_some());
        let ImplItem::Fn(body) = &implemented.items[0] else { panic!("a method") };
        let names: Vec<_> = body.attrs.iter().map(|a| a.path().get_ident().unwrap().to_string()).collect();
        assert_eq!(names, ["track_caller"]);
        assert!(matches!(body.vis, syn::Visibility::Inherited));
        assert!(inherent.trait_.is_none() && inherent.items.len() == 1);
    }

    /// A supertrait is added; a declaration's parameters lose `mut` and patterns.
    #[test]
    fn supertraits_and_plain_parameter_names() {
        let file = expanded(
            "Ops: crate::Sealed",
            "impl W { pub fn f(&self, mut count: usize, (a, b): (u8, u8)) -> usize { count += 1; count } }",
        );
        let Item::Trait(declared) = &file.items[0] else { panic!("a trait first") };
        let text = quote::quote!(#declared).to_string();
        assert!(text.contains("Sized + crate :: Sealed"), "{text}");
        assert!(text.contains("count : usize") && !text.contains("mut count"), "{text}");
        assert!(text.contains("argument_2 : (u8 , u8)"), "{text}");
    }

    #[test]
    fn a_trait_impl_is_refused() {
        let tokens = expand("Ops".parse().unwrap(), "impl Clone for W { }".parse().unwrap());
        assert!(tokens.to_string().contains("compile_error"), "{tokens}");
    }
}
