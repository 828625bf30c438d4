//! On invalid input: the error, plus a stub impl so that uses of the type do not add
//! a cascade of follow-up errors.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, Error};

pub fn differentiable(input: &DeriveInput, error: Error) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let error = error.into_compile_error();
    quote! {
        #error
        impl #impl_generics ::fluxion::__private::Differentiable for #ident #ty_generics #where_clause {
            type Tangent = ();
            fn try_move_by(&mut self, _: &()) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                ::fluxion::__private::Result::Ok(())
            }
            fn zero_tangent(&self) {}
            fn map_leaves_with(&mut self, _: &(), _: &mut dyn FnMut(f64, f64) -> f64) {}
            fn zip_leaves_with<const W: usize, const R: usize, V: ::fluxion::__private::LeafVisitor<W, R>>(
                &mut self,
                _: [&mut (); W],
                _: [&(); R],
                _: &mut V,
            ) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                ::fluxion::__private::Result::Ok(())
            }
        }
    }
}
