//! `#[extension_trait(Name)]`: an inherent `impl` block's public methods moved into a
//! trait of the same methods, implemented for the same type.
//!
//! fluxion puts the GPU tensors' methods in such traits: a host tensor whose storage
//! kind is still being inferred then finds only the host's inherent method of a name
//! (inherent methods are tried before trait methods), where two inherent methods of
//! that name would be ambiguous. The block's doc comment documents the trait; each
//! method's docs and `#[must_use]` go to the trait's declaration, its other
//! attributes (`#[track_caller]`, `#[inline]`, lints) to the implementation. Items that
//! are not `pub` stay in an inherent block.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident, ImplItem, ImplItemFn, ItemImpl, TraitItemFn, Visibility, parse2};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match parse2::<Ident>(attr).and_then(|name| Ok((name, parse2::<ItemImpl>(item)?))) {
        Ok((name, block)) => extension_trait(&name, block),
        Err(error) => error.to_compile_error(),
    }
}

fn extension_trait(name: &Ident, mut block: ItemImpl) -> TokenStream {
    if let Some((_, path, _)) = &block.trait_ {
        return syn::Error::new_spanned(path, "`extension_trait` takes an inherent `impl` block")
            .to_compile_error();
    }
    let (docs, other_attrs): (Vec<Attribute>, Vec<Attribute>) =
        block.attrs.drain(..).partition(|attr| attr.path().is_ident("doc"));
    block.attrs = other_attrs;
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
    let attrs = &block.attrs;
    let inherent = (!rest.is_empty()).then(|| {
        quote! {
            #(#attrs)*
            impl #impl_generics #self_ty #where_clause {
                #(#rest)*
            }
        }
    });
    let params = &generics.params;
    quote! {
        #(#docs)*
        pub trait #name<#params>: Sized #where_clause {
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

fn declaration(method: &ImplItemFn) -> TraitItemFn {
    TraitItemFn {
        attrs: method
            .attrs
            .iter()
            .filter(|a| belongs_to_declaration(a) || a.path().is_ident("cfg"))
            .cloned()
            .collect(),
        sig: method.sig.clone(),
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

    #[test]
    fn a_trait_impl_is_refused() {
        let tokens = expand("Ops".parse().unwrap(), "impl Clone for W { }".parse().unwrap());
        assert!(tokens.to_string().contains("compile_error"), "{tokens}");
    }
}
