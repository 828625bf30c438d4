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
            fn zip_leaves_with<const FLUXION_W: usize, const FLUXION_R: usize, FluxionVisitor: ::fluxion::__private::LeafVisitor<FLUXION_W, FLUXION_R>>(
                &mut self,
                _: [&mut (); FLUXION_W],
                _: [&(); FLUXION_R],
                _: &mut FluxionVisitor,
            ) -> ::fluxion::__private::Result<(), ::fluxion::__private::ShapeError> {
                ::fluxion::__private::Result::Ok(())
            }
        }
    }
}
