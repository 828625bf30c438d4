//! `#[differentiable]`: static-mode differentiation of one ordinary function.
//!
//! The body is lowered to single-assignment form ([`lower`]) and two functions are
//! generated from it ([`emit`]): a joint reverse-mode function (`__joint`: forward
//! sweep, then the reverse sweep with adjoints in locals, returning the value and
//! one tangent per parameter) and a tangent function (`__jvp`). The public
//! companions (`value_and_grad`, `grad`, `value_and_grad_into`, `vjp`, `jvp`,
//! `linearize`) are thin wrappers. A free function `f` gets them as associated functions of a struct `f` beside it (types and
//! values live in different namespaces, so `use a::f;` imports both); a method `m`
//! gets inherent methods `m_grad`, … beside it, and an associated function `g`
//! without `self` (marked `#[differentiable(associated)]`: an attribute does not
//! see that it sits in an `impl`) associated functions `g_grad`, … beside it. A
//! call of another differentiable function at the top level of a joint function
//! runs through its `__record` companion (the forward sweep, returning the value and the reverse sweep as a
//! closure; the caller says which arguments it differentiates, and the callee skips
//! the pullbacks that lead only to the others). A `__record` body, whose closure
//! owns its locals, keeps a call's pullback only where the call borrows nothing of
//! them, or passes one local input to a method (through the callee's
//! `__record_owned`, with a clone). Any other call, and one inside a branch or a loop
//! or in a lanes body, runs plainly forward and through its `__joint` in the reverse
//! sweep (recomputing its forward pass). Forward mode calls `__jvp`.

mod emit;
mod lower;
mod reads;
mod returns;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use self::lower::Param;

/// A parameter of the user's function.
struct Parameter {
    ident: Ident,
    /// The value's type (`T` for a parameter `&T`).
    ty: Type,
    by_ref: bool,
    differentiated: bool,
    /// As declared, without `mut` (a receiver's `&self`, or `name: Type`): the
    /// companions that only pass it on.
    declaration: TokenStream,
    /// As declared in `vjp`, with an elided reference lifetime named `'__l`.
    declaration_with_lifetime: TokenStream,
    /// `mut` where the user wrote it: the companions that run the body declare it so.
    mutability: Option<syn::Token![mut]>,
}

impl Parameter {
    /// The declaration for a companion that runs the body (`mut` as written).
    fn body_declaration(&self, with_lifetime: bool) -> TokenStream {
        let (mutability, declaration) = (
            &self.mutability,
            if with_lifetime { &self.declaration_with_lifetime } else { &self.declaration },
        );
        quote!(#mutability #declaration)
    }
}

/// Expands the attribute, or reports every error beside the untouched item.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand_function(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#item #error)
        }
    }
}

/// What the attribute says: the differentiated parameters, a derivative given by
/// hand (`vjp = path, jvp = path`), a forward sweep that keeps what its reverse
/// sweep needs, given by hand (`record = path`), and whether the function is an
/// associated function of an `impl` (`associated`).
#[derive(Default)]
struct Options {
    wrt: Option<Vec<Ident>>,
    vjp: Option<syn::Path>,
    jvp: Option<syn::Path>,
    record: Option<syn::Path>,
    associated: bool,
}

/// Where the function sits, which decides where its companions go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A free function `f`: the companions are associated functions of a struct `f`
    /// beside it (`f::grad`).
    Free,
    /// A method `m` (`self` or `&self`): sibling methods `m_grad`, … (`x.m_grad()`).
    Method,
    /// An associated function `g` without `self`: sibling associated functions
    /// `g_grad`, … (`Type::g_grad()`, `Self::g_grad()`).
    Associated,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    if attr.is_empty() {
        return Ok(options);
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("wrt") {
            let content;
            syn::parenthesized!(content in meta.input);
            let names = content.parse_terminated(Ident::parse_any_ident, syn::Token![,])?;
            options.wrt = Some(names.into_iter().collect());
            Ok(())
        } else if meta.path.is_ident("vjp") {
            options.vjp = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("jvp") {
            options.jvp = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("record") {
            options.record = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("associated") {
            options.associated = true;
            Ok(())
        } else {
            Err(meta.error(
                "`#[differentiable]` takes `wrt(a, b, …)` (the arguments to differentiate), `associated` (on an associated function without `self`, inside an `impl`), for a derivative given by hand `vjp = path, jvp = path`, and for a forward sweep that keeps what its reverse sweep needs `record = path`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, attr.clone())?;
    if options.record.is_some() && options.vjp.is_some() {
        return Err(syn::Error::new_spanned(
            attr,
            "`record = …` stands in for the record of a body the macro differentiates; with `vjp = …` the records come from the derivative given by hand",
        ));
    }
    if options.vjp.is_some() != options.jvp.is_some() {
        return Err(syn::Error::new_spanned(
            attr,
            "a derivative given by hand needs both `vjp = …` and `jvp = …`, so that both modes can use it",
        ));
    }
    Ok(options)
}

trait ParseAnyIdent {
    fn parse_any_ident(input: syn::parse::ParseStream<'_>) -> syn::Result<Ident>;
}

impl ParseAnyIdent for Ident {
    fn parse_any_ident(input: syn::parse::ParseStream<'_>) -> syn::Result<Ident> {
        syn::ext::IdentExt::parse_any(input)
    }
}

fn parameters(function: &ItemFn, wrt: Option<&Vec<Ident>>) -> syn::Result<Vec<Parameter>> {
    let mut parameters = Vec::new();
    for input in &function.sig.inputs {
        let parameter = match input {
            FnArg::Receiver(receiver) => {
                if receiver.mutability.is_some() || receiver.colon_token.is_some() {
                    return Err(syn::Error::new(
                        receiver.span(),
                        "`#[differentiable]` methods take `&self` or `self`",
                    ));
                }
                let by_ref = receiver.reference.is_some();
                let declaration = if by_ref { quote!(&self) } else { quote!(self) };
                Parameter {
                    ident: Ident::new("self", receiver.self_token.span),
                    ty: syn::parse_quote!(Self),
                    by_ref,
                    differentiated: true,
                    declaration_with_lifetime: if by_ref { quote!(&'__l self) } else { quote!(self) },
                    declaration,
                    mutability: None,
                }
            }
            FnArg::Typed(typed) => {
                let Pat::Ident(pat) = &*typed.pat else {
                    return Err(syn::Error::new(
                        typed.pat.span(),
                        "`#[differentiable]` needs each parameter bound to a name (`x: T`)",
                    ));
                };
                let ident = pat.ident.clone();
                let (ty, by_ref, with_lifetime) = match &*typed.ty {
                    Type::Reference(reference) if reference.mutability.is_some() => {
                        return Err(syn::Error::new(
                            typed.ty.span(),
                            "`#[differentiable]` functions take values or shared references, not `&mut`",
                        ));
                    }
                    Type::Reference(reference) => {
                        ((*reference.elem).clone(), true, with_named_lifetimes(&typed.ty))
                    }
                    other => (other.clone(), false, with_named_lifetimes(other)),
                };
                let declared = &typed.ty;
                Parameter {
                    declaration: quote!(#ident: #declared),
                    declaration_with_lifetime: quote!(#ident: #with_lifetime),
                    mutability: pat.mutability,
                    differentiated: !plain_type(&ty),
                    ident,
                    ty,
                    by_ref,
                }
            }
        };
        parameters.push(parameter);
    }
    if let Some(wrt) = wrt {
        for name in wrt {
            if !parameters.iter().any(|p| p.ident == *name) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("`{name}` is not a parameter of this function"),
                ));
            }
        }
        for parameter in &mut parameters {
            parameter.differentiated = wrt.contains(&parameter.ident);
            if parameter.differentiated && plain_type(&parameter.ty) {
                let ty = &parameter.ty;
                return Err(syn::Error::new(
                    ty.span(),
                    format!(
                        "`{}` cannot be differentiated: `{}` has no tangent space; leave it out of `wrt(…)`",
                        parameter.ident,
                        quote!(#ty)
                    ),
                ));
            }
        }
    }
    Ok(parameters)
}

fn expand_function(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = parse_options(attr)?;
    let sig = &function.sig;
    for (present, what) in [
        (sig.asyncness.is_some(), "`async` functions"),
        (sig.constness.is_some(), "`const` functions"),
        (sig.unsafety.is_some(), "`unsafe` functions"),
        (sig.variadic.is_some(), "variadic functions"),
    ] {
        if present {
            return Err(syn::Error::new(sig.span(), format!("`#[differentiable]` does not apply to {what}")));
        }
    }
    let ReturnType::Type(_, output) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`#[differentiable]` needs a function that returns a value",
        ));
    };
    let parameters = parameters(&function, options.wrt.as_ref())?;
    if !parameters.iter().any(|p| p.differentiated) {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`#[differentiable]` needs at least one differentiated parameter",
        ));
    }
    let mut next = 0;
    let ids: Vec<Option<usize>> = parameters
        .iter()
        .map(|p| {
            p.differentiated.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let kind = if parameters.first().is_some_and(|p| p.ident == "self") {
        Kind::Method
    } else if options.associated {
        Kind::Associated
    } else {
        Kind::Free
    };
    let (joint, record, joint_lanes_body, tangent_body, lanes_body) = match (&options.vjp, &options.jvp) {
        (Some(vjp), Some(jvp)) => {
            let (joint, joint_lanes, tangent, lanes) =
                given_derivative(&function, &parameters, kind, (vjp, jvp));
            (
                joint.clone(),
                Some(Records { borrowed: joint.clone(), owned: joint }),
                joint_lanes,
                tangent,
                lanes,
            )
        }
        _ => {
            let lowered_params: Vec<Param> = parameters
                .iter()
                .map(|p| Param {
                    ident: p.ident.clone(),
                    by_ref: p.by_ref,
                    differentiated: p.differentiated,
                    mutable: p.mutability.is_some(),
                })
                .collect();
            reads::reject_interior_mutability(&function.sig, &function.block)?;
            let block = returns::without_early_returns(&function.block);
            let type_params = scalar_type_params(&function.sig.generics);
            let body = lower::lower(&lowered_params, &type_params, &block, false)?;
            let record_body = lower::lower(&lowered_params, &type_params, &block, true)?;
            (
                emit::joint_parts(&body, &ids, false, true),
                (!record_body.keeps_borrows).then(|| Records {
                    borrowed: emit::record_parts(&record_body, &ids, &[]),
                    owned: emit::record_parts(
                        &record_body,
                        &ids,
                        &owned_positions(kind, &parameters)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|position| {
                                (position, bounded_clone(&function.sig.generics, &parameters[position].ty))
                            })
                            .collect::<Vec<_>>(),
                    ),
                }),
                emit::joint_body(&body, &ids, true),
                emit::tangent_body(&body, &ids, emit::Mode::Tangent),
                emit::tangent_body(&body, &ids, emit::Mode::Lanes),
            )
        }
    };
    let companions = Companions {
        function: &function,
        parameters: &parameters,
        output,
        kind,
        custom_record: options.record.as_ref(),
    };
    let generated = companions.generate(joint, record, [joint_lanes_body, tangent_body, lanes_body]);
    // Used through its companions only, the function itself is not dead code.
    let result = quote! {
        #[allow(dead_code)]
        #function
        #generated
    };
    Ok(result)
}

/// The parameters a `__record_owned` companion takes by value, which a caller's
/// `__record` passes clones of its locals to (see `emit::kept_calls_in_record`): of a
/// method, those after `self` taken by reference, when there is one and every one is
/// differentiated and of a type that may be taken by value (not unsized, not
/// borrowing: a slice, a trait object, a lifetime; a `?Sized` parameter is bounded
/// `Sized` there).
fn owned_positions(kind: Kind, parameters: &[Parameter]) -> Option<Vec<usize>> {
    if kind != Kind::Method {
        return None;
    }
    let positions: Vec<usize> =
        (1..parameters.len()).filter(|&position| parameters[position].by_ref).collect();
    let owned = |parameter: &Parameter| parameter.differentiated && may_be_owned(&parameter.ty);
    (!positions.is_empty() && positions.iter().all(|&position| owned(&parameters[position])))
        .then_some(positions)
}

/// Whether a parameter taken by reference as `&ty` may be taken by value instead:
/// `ty` is not unsized (a slice, `str`, a trait object) and borrows nothing (names
/// no lifetime).
pub(crate) fn may_be_owned(ty: &Type) -> bool {
    let ty = ungrouped(ty);
    let unsized_or_borrowing = match ty {
        Type::Slice(_) | Type::TraitObject(_) | Type::ImplTrait(_) => true,
        Type::Path(path) => path.path.is_ident("str"),
        _ => false,
    } || quote!(#ty).to_string().contains('\'');
    !unsized_or_borrowing
}

/// `ty` without the invisible groups of a macro's expansion.
fn ungrouped(mut ty: &Type) -> &Type {
    while let Type::Group(group) = ty {
        ty = &group.elem;
    }
    ty
}

/// Whether the function's bounds say that `ty` is `Clone` (`where X: Clone`, or a
/// type parameter `X: Clone`): a `__record_owned` companion then gives a layer called
/// on its input a clone of that input to keep.
fn bounded_clone(generics: &syn::Generics, ty: &Type) -> bool {
    let is_clone = |bound: &syn::TypeParamBound| matches!(bound, syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|last| last.ident == "Clone"));
    let ty = quote!(#ty).to_string();
    let in_where = generics.where_clause.iter().flat_map(|clause| &clause.predicates).any(|predicate| {
        matches!(predicate, syn::WherePredicate::Type(p) if {
            let bounded = &p.bounded_ty;
            quote!(#bounded).to_string() == ty && p.bounds.iter().any(is_clone)
        })
    });
    let in_params =
        generics.type_params().any(|param| param.ident == ty && param.bounds.iter().any(is_clone));
    in_where || in_params
}

/// The parts of the `__record` companions: `borrowed` for `__record`, which borrows
/// its arguments, and `owned` for `__record_owned`, which owns its input (see
/// [`Companions::owned_input`]): a call passing that input by reference passes a
/// local there.
struct Records {
    borrowed: emit::JointParts,
    owned: emit::JointParts,
}

impl Records {
    fn get(&self, owned: bool) -> &emit::JointParts {
        if owned { &self.owned } else { &self.borrowed }
    }
}

/// The joint function's parts and the joint-lanes, tangent and lanes bodies of a
/// function whose derivative is given by hand:
/// `vjp(args…, ȳ)` returns the differentiated parameters' tangents (one, or a tuple
/// in order) and `jvp(args…, &ẋ…)` the output's tangent.
fn given_derivative(
    function: &ItemFn,
    parameters: &[Parameter],
    kind: Kind,
    (vjp, jvp): (&syn::Path, &syn::Path),
) -> (emit::JointParts, TokenStream, TokenStream, TokenStream) {
    let ident = &function.sig.ident;
    let cloned: Vec<_> = parameters
        .iter()
        .map(|p| {
            let name = &p.ident;
            if p.by_ref { quote!(#name) } else { quote!(::core::clone::Clone::clone(&#name)) }
        })
        .collect();
    let plain_call = match kind {
        Kind::Method => {
            let rest = &cloned[1..];
            quote!(self.#ident(#(#rest),*))
        }
        Kind::Associated => quote!(Self::#ident(#(#cloned),*)),
        Kind::Free => quote!(#ident(#(#cloned),*)),
    };
    let names: Vec<_> = parameters.iter().map(|p| &p.ident).collect();
    let differentiated: Vec<_> = parameters.iter().enumerate().filter(|(_, p)| p.differentiated).collect();
    let writes = differentiated.iter().enumerate().map(|(k, (position, _))| {
        let (out, k) = (format_ident!("__out{}", position), syn::Index::from(k));
        quote!(*#out = __tangents.#k;)
    });
    let wrap = if differentiated.len() == 1 { quote!((__tangents,)) } else { quote!(__tangents) };
    let joint = emit::JointParts {
        forward: quote!(let __value = #plain_call;),
        reverse: quote! {
            let __tangents = #vjp(#(#cloned,)* __seed);
            let __tangents = #wrap;
            #(#writes)*
        },
    };
    let lane_writes = differentiated.iter().enumerate().map(|(k, (position, _))| {
        let (out, k) = (format_ident!("__out{}", position), syn::Index::from(k));
        quote!((*#out)[__lane] = __tangents.#k;)
    });
    let joint_lanes = quote! {
        let __value = #plain_call;
        for (__lane, __seed) in ::core::iter::Iterator::enumerate(::core::iter::IntoIterator::into_iter(__seed)) {
            let __tangents = #vjp(#(#cloned,)* __seed);
            let __tangents = #wrap;
            #(#lane_writes)*
        }
        __value
    };
    let mut seeds = TokenStream::new();
    let mut lane_seeds = TokenStream::new();
    let mut dots = Vec::new();
    for (position, parameter) in &differentiated {
        let name = &parameter.ident;
        let (dot, zero, position) = (
            format_ident!("__dot{}", position),
            format_ident!("__zero{}", position),
            syn::Index::from(*position),
        );
        let reference = if parameter.by_ref { quote!(#name) } else { quote!(&#name) };
        let zero_tangent = quote!(::fluxion::__private::Differentiable::zero_tangent(#reference));
        let seed = |zero_value: TokenStream| emit::tangent_seed(&dot, &zero, &position, zero_value);
        seeds.extend(seed(zero_tangent.clone()));
        lane_seeds.extend(seed(quote!(::core::array::from_fn::<_, __N, _>(|_| #zero_tangent))));
        dots.push(dot);
    }
    let tangent = quote! {
        #seeds
        let __value = #plain_call;
        let __tangent = #jvp(#(#names,)* #(#dots),*);
        (__value, __tangent)
    };
    let lanes = quote! {
        #lane_seeds
        let __value = #plain_call;
        let __tangent = ::core::array::from_fn::<_, __N, _>(|__lane| #jvp(#(#cloned,)* #(&#dots[__lane]),*));
        (__value, __tangent)
    };
    (joint, joint_lanes, tangent, lanes)
}

struct Companions<'a> {
    function: &'a ItemFn,
    parameters: &'a [Parameter],
    output: &'a Type,
    kind: Kind,
    /// `record = path`: the function that records the forward sweep in place of the
    /// body's own record.
    custom_record: Option<&'a syn::Path>,
}

/// `Ty::Tangent`, spanned at the type so that a type with no tangent is reported there.
fn tangent_of(ty: &Type) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as ::fluxion::__private::Differentiable>::Tangent)
}

/// Whether `ty` is written as a tensor of rank 3 or more (`Tensor3`, `Tensor4`,
/// `Tensor<T, (A, B, C), K>`), whose Hessian `S ++ S` is no shape: such an input gets
/// `hvp` and no `hessian` companion.
fn above_rank_two(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else { return false };
    if last.ident == "Tensor3" || last.ident == "Tensor4" {
        return true;
    }
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else { return false };
    last.ident == "Tensor"
        && matches!(arguments.args.iter().nth(1), Some(syn::GenericArgument::Type(Type::Tuple(shape))) if shape.elems.len() > 2)
}

/// Whether `ty` is written as a tensor or as the scalar type parameter `scalar`
/// itself: the types whose dual twin is the same type at `Dual<T>`.
fn tensor_or_scalar(ty: &Type, scalar: &Ident) -> bool {
    let Type::Path(path) = ty else { return false };
    path.path.segments.last().is_some_and(|last| {
        last.ident == *scalar
            || ["Tensor", "Tensor0", "Vector", "Matrix", "Tensor3", "Tensor4", "DVector", "DMatrix"]
                .iter()
                .any(|name| last.ident == name)
    })
}

/// `ty` with each elided reference lifetime (`&T`, `'_`) named `'__l`, the lifetime
/// of a record's captured arguments; those of `fn` pointers and `Fn(…)` bounds stay
/// elided (they are the function's own).
fn with_named_lifetimes(ty: &Type) -> TokenStream {
    struct Name;
    impl syn::visit_mut::VisitMut for Name {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            if reference.lifetime.is_none() {
                reference.lifetime = Some(syn::Lifetime::new("'__l", Span::call_site()));
            }
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = syn::Lifetime::new("'__l", Span::call_site());
            }
        }
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_parenthesized_generic_arguments_mut(&mut self, _: &mut syn::ParenthesizedGenericArguments) {}
    }
    let mut named = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Name, &mut named);
    named.into_token_stream()
}

/// The containers that hold values of one type: a constant when what they hold is
/// one ([`plain_type`]).
pub(crate) const OWNING_CONTAINERS: &[&str] = &["Option", "Vec", "Box"];

/// Whether a parameter of type `ty` is a constant that is never differentiated:
/// integers, `bool`, `char`, strings, and references, slices, arrays, tuples,
/// `Option`s, `Vec`s and `Box`es of them (`&[usize]`, `Option<&[usize]>`).
pub(crate) fn plain_type(ty: &Type) -> bool {
    const PLAIN: &[&str] = &[
        "bool", "char", "str", "String", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize",
    ];
    match ty {
        Type::Path(path) => path.path.segments.last().is_some_and(|last| {
            let name = last.ident.to_string();
            match &last.arguments {
                syn::PathArguments::None => PLAIN.contains(&name.as_str()),
                syn::PathArguments::AngleBracketed(arguments)
                    if OWNING_CONTAINERS.contains(&name.as_str()) =>
                {
                    arguments
                        .args
                        .iter()
                        .all(|argument| matches!(argument, syn::GenericArgument::Type(ty) if plain_type(ty)))
                }
                _ => false,
            }
        }),
        Type::Reference(reference) => plain_type(&reference.elem),
        Type::Slice(slice) => plain_type(&slice.elem),
        Type::Array(array) => plain_type(&array.elem),
        Type::Tuple(tuple) => !tuple.elems.is_empty() && tuple.elems.iter().all(plain_type),
        Type::Paren(inner) => plain_type(&inner.elem),
        Type::Group(inner) => plain_type(&inner.elem),
        _ => false,
    }
}

impl Companions<'_> {
    /// Whether the companions are the function's siblings in its `impl` (a method or
    /// an associated function), not associated functions of a struct of its name.
    fn siblings(&self) -> bool {
        self.kind != Kind::Free
    }

    /// A companion's name: `name` in the struct of a free function, `function_name`
    /// beside a method or an associated function (`__joint` and `__jvp` become
    /// prefixes there).
    fn name(&self, name: &str) -> Ident {
        let function = &self.function.sig.ident;
        if !self.siblings() {
            format_ident!("{}", name)
        } else if name.starts_with("__") {
            format_ident!("{}_{}", name, function)
        } else {
            format_ident!("{}_{}", function, name)
        }
    }

    /// The function's type and const parameters as generic arguments (`T`, `N`),
    /// with `scalar` in place of the real scalar type where given.
    fn generic_arguments(&self, scalar: Option<(&Ident, &TokenStream)>) -> Vec<TokenStream> {
        self.function
            .sig
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                syn::GenericParam::Type(ty) => match scalar {
                    Some((name, replacement)) if ty.ident == *name => Some(replacement.clone()),
                    _ => {
                        let name = &ty.ident;
                        Some(quote!(#name))
                    }
                },
                syn::GenericParam::Const(constant) => {
                    let name = &constant.ident;
                    Some(quote!(#name))
                }
                syn::GenericParam::Lifetime(_) => None,
            })
            .collect()
    }

    /// A call of companion `name` (or of the function itself) with `args` after the
    /// parameters. The function's generic arguments are named: the companions of a
    /// function whose generics its arguments do not determine (`fn f<const N:
    /// usize>(x: f64)`) call each other too.
    fn call(&self, name: Option<&str>, arguments: &[TokenStream], extra: TokenStream) -> TokenStream {
        let extra = if extra.is_empty() { quote!() } else { quote!(#extra,) };
        let function = &self.function.sig.ident;
        let turbofish =
            emit::turbofish(&self.generic_arguments(None), name.map_or(0, emit::companion_generics));
        let callee = match (name, self.kind) {
            (Some(name), Kind::Method) => {
                let name = self.name(name);
                quote!(#name #turbofish)
            }
            (Some(name), _) => {
                let name = self.name(name);
                quote!(Self::#name #turbofish)
            }
            (None, Kind::Associated) => quote!(Self::#function #turbofish),
            (None, _) => quote!(#function #turbofish),
        };
        if self.kind == Kind::Method {
            // `self`, or a clone of it where the caller calls more than once.
            let (receiver, rest) = (&arguments[0], &arguments[1..]);
            quote!((#receiver).#callee(#(#rest,)* #extra))
        } else {
            quote!(#callee(#(#arguments,)* #extra))
        }
    }

    fn arguments(&self, cloned: bool) -> Vec<TokenStream> {
        self.parameters
            .iter()
            .map(|p| {
                let ident = &p.ident;
                if cloned && !p.by_ref {
                    quote!(::core::clone::Clone::clone(&#ident))
                } else {
                    quote!(#ident)
                }
            })
            .collect()
    }

    /// The body of `__record` (or of `__record_owned`, when `owned`) for `record =
    /// path`: `path(arguments…, __wanted)`, each differentiated reference parameter
    /// but the receiver given by value (a clone, or the owned input).
    fn custom_record_call(&self, owned: bool) -> TokenStream {
        let path = self.custom_record.expect("a record given by hand");
        let positions =
            if owned { owned_positions(self.kind, self.parameters).unwrap_or_default() } else { Vec::new() };
        let arguments = self.parameters.iter().enumerate().map(|(position, parameter)| {
            let ident = &parameter.ident;
            let receiver = position == 0 && self.kind == Kind::Method;
            if positions.contains(&position) {
                let owned = format_ident!("__owned_{}", ident.to_string().trim_start_matches("r#"));
                quote!(#owned)
            } else if parameter.differentiated && parameter.by_ref && !receiver {
                quote!(::core::clone::Clone::clone(#ident))
            } else {
                quote!(#ident)
            }
        });
        quote!(#path(#(#arguments,)* __wanted))
    }

    /// For `__record_owned` (see [`owned_positions`]): the declarations with each
    /// input `x` it owns taken by value (`__owned_x: X`), and the statements that bind
    /// each back to a reference (`let x = &__owned_x;`).
    fn owned_input(&self) -> Option<(Vec<TokenStream>, TokenStream)> {
        let positions = owned_positions(self.kind, self.parameters)?;
        let mut rebinds = TokenStream::new();
        let declarations = self
            .parameters
            .iter()
            .enumerate()
            .map(|(position, parameter)| {
                if !positions.contains(&position) {
                    return parameter.declaration_with_lifetime.clone();
                }
                let (ident, ty) = (&parameter.ident, ungrouped(&parameter.ty));
                let owned = format_ident!("__owned_{}", ident.to_string().trim_start_matches("r#"));
                rebinds.extend(quote!(let #ident = &#owned;));
                quote!(#owned: #ty)
            })
            .collect();
        Some((declarations, rebinds))
    }

    /// The predicates of a `__record_owned` companion: its inputs are sized (a
    /// generic input may be `?Sized` elsewhere).
    fn owned_input_sized(&self) -> TokenStream {
        let positions = owned_positions(self.kind, self.parameters).unwrap_or_default();
        let types = positions.iter().map(|&position| &self.parameters[position].ty);
        quote!(#(#types: ::core::marker::Sized,)*)
    }

    fn differentiated(&self) -> Vec<(usize, &Parameter)> {
        self.parameters.iter().enumerate().filter(|(_, p)| p.differentiated).collect()
    }

    /// Each parameter's tangent slot (a marker for one not differentiated).
    fn tangent_slots(&self) -> Vec<TokenStream> {
        let slot = |p: &Parameter| {
            if p.differentiated {
                tangent_of(&p.ty)
            } else {
                quote!(::fluxion::autodiff::rules::NotDifferentiated)
            }
        };
        self.parameters.iter().map(slot).collect()
    }

    /// The function's generic parameters followed by the lanes' count `__N`.
    fn generics_with_lanes(&self) -> TokenStream {
        let params = &self.function.sig.generics.params;
        if params.is_empty() { quote!(<const __N: usize>) } else { quote!(<#params, const __N: usize>) }
    }

    /// The function's type and lifetime parameters, which outlive a pullback's
    /// lifetime `'__l`.
    fn outlived(&self) -> Vec<TokenStream> {
        let params = &self.function.sig.generics.params;
        params
            .iter()
            .filter_map(|param| match param {
                syn::GenericParam::Type(ty) => Some(ty.ident.to_token_stream()),
                syn::GenericParam::Lifetime(lifetime) => Some(lifetime.lifetime.to_token_stream()),
                syn::GenericParam::Const(_) => None,
            })
            .collect()
    }

    /// The gradient's type: the one differentiated parameter's tangent, or a tuple.
    fn gradient_type(&self) -> TokenStream {
        let types: Vec<_> = self.differentiated().iter().map(|(_, p)| tangent_of(&p.ty)).collect();
        if types.len() == 1 { types[0].clone() } else { quote!((#(#types,)*)) }
    }

    /// The gradient taken out of the joint function's tuple `tangents`.
    fn select_gradient(&self, tangents: TokenStream) -> TokenStream {
        let parts: Vec<_> = self
            .differentiated()
            .iter()
            .map(|(position, _)| {
                let position = syn::Index::from(*position);
                quote!(#tangents.#position)
            })
            .collect();
        if parts.len() == 1 { parts[0].clone() } else { quote!((#(#parts,)*)) }
    }

    /// The function's real scalar type parameter, where the function can run at dual
    /// numbers of it: generic over that one type parameter, bounded by `RealScalar`
    /// alone (where it is declared or in the `where` clause, so that `Dual<T>` meets
    /// every bound the function asks of it), returning the scalar itself, with every
    /// differentiated parameter and every other that mentions the scalar a tensor of
    /// it or the scalar (the types whose dual twin is the same type at `Dual<T>`; a
    /// model taken as a constant, a `Sequential` of layers over `T`, has no such twin).
    fn dual_scalar(&self) -> Option<&Ident> {
        let generics = &self.function.sig.generics;
        let types: Vec<_> = generics.type_params().collect();
        let [scalar] = types.as_slice() else { return None };
        let scalar = &scalar.ident;
        let mut bounds: Vec<&syn::TypeParamBound> = types[0].bounds.iter().collect();
        for predicate in generics.where_clause.iter().flat_map(|clause| &clause.predicates) {
            match predicate {
                syn::WherePredicate::Type(bounded) if matches!(&bounded.bounded_ty, Type::Path(path) if path.path.is_ident(scalar)) =>
                {
                    bounds.extend(&bounded.bounds);
                }
                other if lower::contains_word(quote!(#other), &scalar.to_string()) => return None,
                _ => {}
            }
        }
        let real_scalar_only = !bounds.is_empty()
            && bounds.iter().all(|bound| {
                matches!(bound, syn::TypeParamBound::Trait(bound)
                if bound.path.segments.last().is_some_and(|last| last.ident == "RealScalar"))
            });
        let liftable = self.parameters.iter().all(|p| {
            let mentions = self.mentions_scalar(&p.ty, scalar);
            if p.differentiated {
                mentions && tensor_or_scalar(&p.ty, scalar)
            } else {
                !mentions || tensor_or_scalar(&p.ty, scalar)
            }
        });
        // A Hessian needs a real output: the scalar itself (a function returning a
        // vector of it gets its Jacobians, and no Hessian companions).
        let scalar_output = matches!(self.output, Type::Path(path) if path.path.is_ident(scalar));
        (real_scalar_only && liftable && scalar_output).then_some(scalar)
    }

    fn mentions_scalar(&self, ty: &Type, scalar: &Ident) -> bool {
        lower::contains_word(quote!(#ty), &scalar.to_string())
    }

    /// A call of `grad` at the dual scalar `dual`, the parameters at `point` (their
    /// positions) taken from `__point` (one: itself; several: a tuple of them), the
    /// others that mention the scalar lifted to duals with zero tangents: the
    /// statements that bind them, and the call.
    fn gradient_at_dual(&self, scalar: &Ident, dual: TokenStream, point: &[usize]) -> TokenStream {
        let mut lifts = match point {
            [_] => TokenStream::new(),
            _ => {
                let names = point.iter().map(|position| format_ident!("__point{}", position));
                quote!(let (#(#names,)*) = __point;)
            }
        };
        let arguments: Vec<_> = self
            .parameters
            .iter()
            .enumerate()
            .map(|(position, p)| {
                let name = &p.ident;
                let by_ref = if p.by_ref { quote!(&) } else { quote!() };
                if point.contains(&position) {
                    let value = if point.len() == 1 {
                        format_ident!("__point")
                    } else {
                        format_ident!("__point{}", position)
                    };
                    return quote!(#by_ref #value);
                }
                if !self.mentions_scalar(&p.ty, scalar) {
                    return if p.by_ref {
                        quote!(#name)
                    } else {
                        quote!(::core::clone::Clone::clone(&#name))
                    };
                }
                let lifted = format_ident!("__lifted{}", position);
                let reference = if p.by_ref { quote!(#name) } else { quote!(&#name) };
                lifts.extend(quote! {
                    let #lifted = ::fluxion::autodiff::rules::ConstantDuals::constant_duals(#reference);
                });
                quote!(#by_ref #lifted)
            })
            .collect();
        let grad = self.name("grad");
        // `grad` at the dual scalar; its output type `__Y` inferred.
        let generics = emit::turbofish(&self.generic_arguments(Some((scalar, &dual))), 1);
        let call = if self.kind == Kind::Method {
            let rest = &arguments[1..];
            quote!(Self::#grad #generics(self, #(#rest),*))
        } else {
            quote!(Self::#grad #generics(#(#arguments),*))
        };
        quote!({ #lifts #call })
    }

    /// `hvp` and `hessian`, for a function that runs at dual numbers
    /// ([`dual_scalar`](Self::dual_scalar)) with one differentiated parameter: forward
    /// mode over the static gradient, instantiated at dual numbers (`Dual<T>` for
    /// `hvp`, eight tangents per pass for `hessian`).
    fn second_order(&self) -> TokenStream {
        let ([(position, parameter)], Some(scalar)) = (&self.differentiated()[..], self.dual_scalar()) else {
            return self.second_order_stubs();
        };
        let (impl_generics, _, where_clause) = self.function.sig.generics.split_for_impl();
        let declarations: Vec<_> = self.parameters.iter().map(|p| &p.declaration).collect();
        let input = &parameter.ty;
        let input_tangent = tangent_of(input);
        let ident = &parameter.ident;
        let reference = if parameter.by_ref { quote!(#ident) } else { quote!(&#ident) };
        let (hvp_call, hessian_call) = (
            self.gradient_at_dual(scalar, quote!(::fluxion::autodiff::Dual<#scalar>), &[*position]),
            self.gradient_at_dual(
                scalar,
                quote!(::fluxion::autodiff::Dual<#scalar, { ::fluxion::autodiff::rules::JACOBIAN_LANES }>),
                &[*position],
            ),
        );
        let vis = self.companion_visibility();
        let function = &self.function.sig.ident;
        let (hvp, hessian) = (self.name("hvp"), self.name("hessian"));
        // A scalar's Hessian is its second derivative: its `hvp` along 1.
        let scalar_input = matches!(&parameter.ty, Type::Path(path) if path.path.is_ident(scalar));
        let scalar_hessian = scalar_input.then(|| quote! {
            #[doc = concat!("The second derivative of `", stringify!(#function), "`: forward mode over its static derivative.")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #hessian #impl_generics (#(#declarations,)*) -> #scalar #where_clause {
                let __one = <#scalar as ::fluxion::RealScalar>::from_f64(1.0);
                ::fluxion::autodiff::jvp(|__point| #hvp_call, #reference, &__one).1
            }
        });
        let hessian_item = (!scalar_input && !above_rank_two(&parameter.ty)).then(|| quote! {
            #[doc = concat!("The Hessian of `", stringify!(#function), "` (shape `S ++ S`): forward mode over its static gradient, eight directions per pass.")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #hessian #impl_generics (#(#declarations,)*) -> <#input as ::fluxion::autodiff::rules::HessianShape>::Matrix #where_clause {
                ::fluxion::autodiff::jacfwd(|__point| #hessian_call, #reference)
            }
        });
        quote! {
            #[doc = concat!("H·v for `", stringify!(#function), "`: forward mode over its static gradient, at `Dual` numbers.")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #hvp #impl_generics (#(#declarations,)* __direction: &#input_tangent) -> #input_tangent #where_clause {
                ::fluxion::autodiff::jvp(|__point| #hvp_call, #reference, __direction).1
            }

            #hessian_item
            #scalar_hessian
        }
    }

    /// The name of the companion through which another body calls this function's
    /// gradient, for the caller's `companion` (`__jvp`, …): `__grad_jvp` beside a free
    /// function `f` (the caller writes `f::grad`), `__jvp_m_grad` beside a method or
    /// an associated function `m` (the caller writes `x.m_grad(…)` or
    /// `Self::m_grad(…)`, a call like any other).
    fn nested_name(&self, companion: &str) -> Ident {
        if self.siblings() {
            format_ident!("{}_{}_grad", companion, self.function.sig.ident)
        } else {
            format_ident!("__grad{}", &companion[1..])
        }
    }

    /// The companions public (in a free function's struct) or as visible as the
    /// method or associated function.
    fn companion_visibility(&self) -> TokenStream {
        if self.siblings() {
            let vis = &self.function.vis;
            quote!(#vis)
        } else {
            quote!(pub)
        }
    }

    /// The companions through which another `#[differentiable]` body calls this free
    /// function's gradient (`f::grad(x)` there): `__grad_jvp`, `__grad_jvp_lanes`,
    /// `__grad_record`, `__grad_joint` and `__grad_joint_lanes`, the protocol of
    /// `__jvp`, … with `grad` in place of the function. For a function that runs at
    /// dual numbers ([`dual_scalar`](Self::dual_scalar)): the gradient's tangent along
    /// ẋ is `grad` at `Dual` numbers seeded with ẋ (forward over reverse), and its
    /// pullback is the same map — the Jacobian of ∇ₓf is the Hessian, symmetric — so
    /// ḡ ↦ H·ḡ. The cotangents are those of the differentiated parameters (the
    /// others are constants of `f`, as for a call of `f`). For any other function,
    /// stand-ins of the same types, `__grad_jvp` (which every caller calls) bound by a
    /// trait no type has, whose message says what the function needs: one error.
    fn nested_gradient(&self) -> TokenStream {
        let point: Vec<usize> = self.differentiated().iter().map(|(position, _)| *position).collect();
        if point.is_empty() {
            return TokenStream::new();
        }
        let (impl_generics, _, where_clause) = self.function.sig.generics.split_for_impl();
        let with_lanes = self.generics_with_lanes();
        let declarations: Vec<_> = self.parameters.iter().map(|p| &p.declaration).collect();
        let gradient = self.gradient_type();
        let slots = self.tangent_slots();
        let seeds: Vec<_> = slots.iter().map(|slot| quote!(::core::option::Option<&#slot>)).collect();
        let lane_seeds: Vec<_> =
            slots.iter().map(|slot| quote!(::core::option::Option<&[#slot; __N]>)).collect();
        let mut record_generics = self.function.sig.generics.clone();
        record_generics.params.insert(0, syn::parse_quote!('__l));
        let (record_impl_generics, _, _) = record_generics.split_for_impl();
        let record_declarations: Vec<_> =
            self.parameters.iter().map(|p| &p.declaration_with_lifetime).collect();
        let outlived = self.outlived();
        let receiver = self.siblings().then(|| quote!(Self: '__l,));
        let outlived = quote!(#(#outlived: '__l,)* #receiver);
        let record_where = match where_clause {
            Some(clause) => extended_where(&clause.predicates, &outlived),
            None => quote!(where #outlived),
        };
        let parameter_count = self.parameters.len();
        let vis = self.companion_visibility();
        let owned_input = self.owned_input();
        let (jvp_seeds, bodies, owned_record_body) = match self.dual_scalar() {
            Some(scalar) => {
                let owned_record_body = owned_input.as_ref().map(|(_, rebind)| {
                    let [.., record] = self.nested_gradient_bodies(scalar, &point, Some(rebind));
                    quote!(#rebind #record)
                });
                (quote!((#(#seeds,)*)), self.nested_gradient_bodies(scalar, &point, None), owned_record_body)
            }
            None => {
                // The seeds as `impl Trait`, so that a turbofish names the function's
                // own generic parameters as it does on the real companion.
                let message = "no type has `NestedGradientCompanion`";
                let never = quote!(unreachable!(#message));
                let record = quote!((#never, move |_| #never));
                (
                    quote!(impl ::fluxion::autodiff::rules::NestedGradientCompanion),
                    [never.clone(), never.clone(), never.clone(), never, record.clone()],
                    Some(record),
                )
            }
        };
        // `__record_owned`, for a caller's `__record` passing a local input (see
        // `emit::kept_calls_in_record`).
        let owned_record = owned_input.zip(owned_record_body).map(|((declarations, _), body)| {
            let name = self.nested_name("__record_owned");
            let with_sized = {
                let sized = self.owned_input_sized();
                quote!(#outlived #sized)
            };
            let record_where = match where_clause {
                Some(clause) => extended_where(&clause.predicates, &with_sized),
                None => quote!(where #with_sized),
            };
            quote! {
                #[doc(hidden)]
                #[inline]
                #[allow(unused_variables, unreachable_code, clippy::multiple_bound_locations, clippy::too_many_arguments)]
                #vis fn #name #record_impl_generics (#(#declarations,)* __wanted: [bool; #parameter_count]) -> (#gradient, impl FnOnce(#gradient) -> (#(#slots,)*) + '__l) #record_where {
                    #body
                }
            }
        });
        let [jvp_body, jvp_lanes_body, joint_body, joint_lanes_body, record_body] = bodies;
        let [jvp, jvp_lanes, joint, joint_lanes, record] =
            ["__jvp", "__jvp_lanes", "__joint", "__joint_lanes", "__record"]
                .map(|companion| self.nested_name(companion));
        quote! {
            #[doc(hidden)]
            #[inline]
            #[allow(unused_variables, clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #jvp #impl_generics (#(#declarations,)* __tangents: #jvp_seeds) -> (#gradient, #gradient) #where_clause {
                #jvp_body
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_variables, clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #jvp_lanes #with_lanes (#(#declarations,)* __tangents: (#(#lane_seeds,)*)) -> (#gradient, [#gradient; __N]) #where_clause {
                #jvp_lanes_body
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_variables, clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #joint #impl_generics (#(#declarations,)* __seed: #gradient) -> (#gradient, (#(#slots,)*)) #where_clause {
                #joint_body
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_variables, clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #joint_lanes #with_lanes (#(#declarations,)* __seed: [#gradient; __N]) -> (#gradient, (#([#slots; __N],)*)) #where_clause {
                #joint_lanes_body
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_variables, unreachable_code, clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #record #record_impl_generics (#(#record_declarations,)* __wanted: [bool; #parameter_count]) -> (#gradient, impl FnOnce(#gradient) -> (#(#slots,)*) + '__l) #record_where {
                #record_body
            }

            #owned_record
        }
    }

    /// The bodies of [`nested_gradient`](Self::nested_gradient)'s companions, for a
    /// function that runs at dual numbers of `scalar`, whose differentiated
    /// parameters are at `point`.
    fn nested_gradient_bodies(
        &self,
        scalar: &Ident,
        point: &[usize],
        rebind: Option<&TokenStream>,
    ) -> [TokenStream; 5] {
        // The point (the differentiated parameters' values, owned) and the direction
        // from the seeds (a zero tangent where a seed is `None`).
        let (values, directions): (Vec<_>, Vec<_>) = self
            .differentiated()
            .iter()
            .map(|(position, p)| {
                let position = syn::Index::from(*position);
                let ident = &p.ident;
                let reference = if p.by_ref { quote!(#ident) } else { quote!(&#ident) };
                let direction = quote! {
                    __tangents.#position.map_or_else(
                        || ::fluxion::__private::Differentiable::zero_tangent(#reference),
                        ::core::clone::Clone::clone,
                    )
                };
                (quote!(::core::clone::Clone::clone(#reference)), direction)
            })
            .unzip();
        let (point_value, direction) = if point.len() == 1 {
            (values[0].clone(), directions[0].clone())
        } else {
            (quote!((#(#values,)*)), quote!((#(#directions,)*)))
        };
        let at_dual = self.gradient_at_dual(scalar, quote!(::fluxion::autodiff::Dual<#scalar>), point);
        // The seed ḡ split into the differentiated parameters' directions, and the
        // pulled tangent H·ḡ spread back into every parameter's slot.
        let mut differentiated_count = 0;
        let (seed_parts, spread): (Vec<_>, Vec<_>) = self
            .parameters
            .iter()
            .map(|p| {
                if !p.differentiated {
                    return (
                        quote!(::core::option::Option::None),
                        quote!(::fluxion::autodiff::rules::NotDifferentiated),
                    );
                }
                let index = syn::Index::from(differentiated_count);
                differentiated_count += 1;
                if point.len() == 1 {
                    (quote!(::core::option::Option::Some(&__seed)), quote!(__pulled))
                } else {
                    (quote!(::core::option::Option::Some(&__seed.#index)), quote!(__pulled.#index))
                }
            })
            .unzip();
        let positions: Vec<_> = (0..self.parameters.len()).map(syn::Index::from).collect();
        let arguments = self.arguments(true);
        // Every call as `Self::name(self, …)` for a method too.
        let grad = self.name("grad");
        let plain_turbofish = emit::turbofish(&self.generic_arguments(None), 1);
        let plain_gradient = quote!(Self::#grad #plain_turbofish(#(#arguments),*));
        let generics = emit::turbofish(&self.generic_arguments(None), 0);
        let (jvp, joint) = (self.nested_name("__jvp"), self.nested_name("__joint"));
        let jvp_call = |seeds: TokenStream| quote!(Self::#jvp #generics(#(#arguments,)* #seeds));
        let joint_call = |seed: TokenStream| quote!(Self::#joint #generics(#(#arguments,)* #seed));
        let seeded_jvp = jvp_call(quote!((#(#seed_parts,)*)));
        let lane_seeds =
            positions.iter().map(|position| quote!(__tangents.#position.map(|__seeds| &__seeds[__lane])));
        let lane_jvp = jvp_call(quote!((#(#lane_seeds,)*)));
        let lane_joint = joint_call(quote!(::core::clone::Clone::clone(&__seed[__lane])));
        let joint_in_pullback = joint_call(quote!(__seed));
        [
            quote!(::fluxion::autodiff::jvp(|__point| #at_dual, &#point_value, &#direction)),
            quote!((#plain_gradient, ::core::array::from_fn(|__lane| #lane_jvp.1))),
            quote! {
                let (__value, __pulled) = #seeded_jvp;
                (__value, (#(#spread,)*))
            },
            quote! {
                let __pulled: [_; __N] = ::core::array::from_fn(|__lane| #lane_joint.1);
                (#plain_gradient, (#(::core::array::from_fn(|__lane| ::core::clone::Clone::clone(&__pulled[__lane].#positions)),)*))
            },
            quote!((#plain_gradient, move |__seed| { #rebind #joint_in_pullback.1 })),
        ]
    }

    /// Where `hvp` and `hessian` cannot be generated, for a free function or an
    /// associated function: stand-ins whose bound no type meets, so that a call is an
    /// error saying what the companions need (not "no function named `hessian`").
    fn second_order_stubs(&self) -> TokenStream {
        if self.kind == Kind::Method {
            return TokenStream::new();
        }
        let vis = self.companion_visibility();
        let (hvp, hessian) = (self.name("hvp"), self.name("hessian"));
        let params: Vec<_> =
            (0..self.parameters.len()).map(|position| format_ident!("__A{}", position)).collect();
        let Some(first) = params.first() else {
            return TokenStream::new();
        };
        let bound = quote!(#first: ::fluxion::autodiff::rules::SecondOrderCompanion);
        quote! {
            #[doc(hidden)]
            #vis fn #hvp<#(#params,)* __V>(#(_: #params,)* _: __V) -> ::core::convert::Infallible where #bound {
                unreachable!("no type has `SecondOrderCompanion`")
            }
            #[doc(hidden)]
            #vis fn #hessian<#(#params,)*>(#(_: #params,)*) -> ::core::convert::Infallible where #bound {
                unreachable!("no type has `SecondOrderCompanion`")
            }
        }
    }

    /// `jacfwd` and `jacrev`, for a function of one differentiated tensor (their
    /// bounds are checked where they are called, so other functions compile).
    fn jacobians(&self) -> TokenStream {
        let [(position, parameter)] = self.differentiated()[..] else {
            return TokenStream::new();
        };
        let function = &self.function.sig.ident;
        let (_, _, where_clause) = self.function.sig.generics.split_for_impl();
        let generic_params = &self.function.sig.generics.params;
        let with_j = if generic_params.is_empty() {
            quote!(<__X, __Y, __J>)
        } else {
            quote!(<#generic_params, __X, __Y, __J>)
        };
        let (input, output) = (&parameter.ty, self.output);
        let (input_tangent, output_tangent) = (tangent_of(input), tangent_of(output));
        // A tensor input and output, each its own tangent; named through `__X` and
        // `__Y` so the bounds are checked where `jacfwd` is called.
        let bounds = quote! {
            #input: ::fluxion::autodiff::rules::Is<__X>,
            #input_tangent: ::fluxion::autodiff::rules::Is<__X>,
            #output: ::fluxion::autodiff::rules::Is<__Y>,
            #output_tangent: ::fluxion::autodiff::rules::Is<__Y>,
            __X: ::core::clone::Clone + ::fluxion::autodiff::rules::Is<#input_tangent>
                + ::fluxion::autodiff::rules::Jacobian<__Y, Matrix = __J>,
            __Y: ::core::clone::Clone + ::fluxion::autodiff::rules::Is<#output_tangent>,
        };
        let where_j = match where_clause {
            Some(clause) => extended_where(&clause.predicates, &bounds),
            None => quote!(where #bounds),
        };
        let vis = self.companion_visibility();
        let declarations: Vec<_> = self.parameters.iter().map(|p| &p.declaration).collect();
        let ident = &parameter.ident;
        let reference = if parameter.by_ref { quote!(#ident) } else { quote!(&#ident) };
        let point =
            quote!(::fluxion::autodiff::rules::Is::<__X>::cast(::core::clone::Clone::clone(#reference)));
        // Inside the closures: the differentiated input as given, the rest cloned per pass.
        let arguments = self.arguments(true);
        let seeds: Vec<_> = self
            .parameters
            .iter()
            .map(|p| {
                if p.ident == *ident {
                    quote!(::core::option::Option::Some(&__directions))
                } else {
                    quote!(::core::option::Option::None)
                }
            })
            .collect();
        let jvp_call = self.call(Some("__jvp_lanes"), &arguments, quote!((#(#seeds,)*)));
        let joint_call = self.call(Some("__joint_lanes"), &arguments, quote!(__seeds));
        let forward_call = self.call(None, &arguments, TokenStream::new());
        let position = syn::Index::from(position);
        let (jacfwd, jacrev) = (self.name("jacfwd"), self.name("jacrev"));
        quote! {
            #[doc = concat!("The Jacobian of `", stringify!(#function), "` by static forward mode (one pass per input coordinate), of shape `Out ++ In`.")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #jacfwd #with_j (#(#declarations,)*) -> __J #where_j {
                let __point = #point;
                ::fluxion::autodiff::rules::Jacobian::jacobian_forward(&__point, |__directions: &[__X; ::fluxion::autodiff::rules::JACOBIAN_LANES]| {
                    let __directions: [#input_tangent; ::fluxion::autodiff::rules::JACOBIAN_LANES] =
                        ::core::clone::Clone::clone(__directions).map(::fluxion::autodiff::rules::Is::cast);
                    #jvp_call.1.map(::fluxion::autodiff::rules::Is::<__Y>::cast)
                })
            }

            #[doc = concat!("The Jacobian of `", stringify!(#function), "` by static reverse mode (one pass per output coordinate), of shape `Out ++ In`.")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #jacrev #with_j (#(#declarations,)*) -> __J #where_j {
                let __point = #point;
                let __output = || ::fluxion::autodiff::rules::Is::<__Y>::cast(#forward_call);
                ::fluxion::autodiff::rules::Jacobian::jacobian_reverse(&__point, __output, |__seeds: &[__Y; ::fluxion::autodiff::rules::REVERSE_LANES]| {
                    let __seeds: [#output_tangent; ::fluxion::autodiff::rules::REVERSE_LANES] =
                        ::core::clone::Clone::clone(__seeds).map(::fluxion::autodiff::rules::Is::cast);
                    #joint_call.1.#position.map(::fluxion::autodiff::rules::Is::<__X>::cast)
                })
            }
        }
    }

    /// The companions, from the parts of the joint function and of the `__record`
    /// companions (`None`: they recompute) and the joint-lanes, tangent and
    /// tangent-lanes bodies.
    fn generate(
        &self,
        joint: emit::JointParts,
        record: Option<Records>,
        [joint_lanes_body, tangent_body, lanes_body]: [TokenStream; 3],
    ) -> TokenStream {
        let emit::JointParts { forward: joint_forward, reverse: joint_reverse } = joint;
        let function = self.function;
        let ident = &function.sig.ident;
        let (impl_generics, _, where_clause) = function.sig.generics.split_for_impl();
        let generic_params = &function.sig.generics.params;
        let output = self.output;
        let output_tangent = tangent_of(output);
        let declarations: Vec<_> = self.parameters.iter().map(|p| &p.declaration).collect();
        let all_tangents = self.tangent_slots();
        let seeds: Vec<_> =
            all_tangents.iter().map(|tangent| quote!(::core::option::Option<&#tangent>)).collect();
        let vis = self.companion_visibility();
        let (joint, joint_into, jvp_inner, jvp_lanes) =
            (self.name("__joint"), self.name("__joint_into"), self.name("__jvp"), self.name("__jvp_lanes"));
        // `__record`: the forward sweep, returning the value and the reverse sweep as a
        // closure over what it keeps (a caller's reverse sweep calls it: no forward
        // pass recomputed); `__wanted` says which arguments the caller differentiates,
        // and pullbacks that lead only to the others are skipped.
        let record_name = self.name("__record");
        let parameter_count = self.parameters.len();
        let stores: Vec<_> =
            (0..self.parameters.len()).map(|position| format_ident!("__store{}", position)).collect();
        let with_lanes = self.generics_with_lanes();
        let lane_seeds: Vec<_> =
            all_tangents.iter().map(|tangent| quote!(::core::option::Option<&[#tangent; __N]>)).collect();
        let outs: Vec<_> =
            (0..self.parameters.len()).map(|position| format_ident!("__out{}", position)).collect();
        let zeros: Vec<_> = self
            .parameters
            .iter()
            .map(|p| {
                if !p.differentiated {
                    return quote!(::fluxion::autodiff::rules::NotDifferentiated);
                }
                let ident = &p.ident;
                let reference = if p.by_ref { quote!(#ident) } else { quote!(&#ident) };
                quote!(::fluxion::__private::Differentiable::zero_tangent(#reference))
            })
            .collect();
        let out_arguments: Vec<_> = outs.iter().map(|out| quote!(&mut #out)).collect();
        let lane_zeros: Vec<_> =
            zeros.iter().map(|zero| quote!(::core::array::from_fn::<_, __N, _>(|_| #zero))).collect();
        let (joint_lanes, joint_lanes_into) = (self.name("__joint_lanes"), self.name("__joint_lanes_into"));
        let joint_lanes_into_call = self.call(
            Some("__joint_lanes_into"),
            &self.arguments(false),
            quote!(__seed, #(#out_arguments),*),
        );
        let joint_into_call =
            self.call(Some("__joint_into"), &self.arguments(false), quote!(__seed, #(#out_arguments),*));
        // `value_and_grad_into` writes straight into the caller's gradient.
        let wrt_count = self.differentiated().len();
        let mut unused_outs = Vec::new();
        let mut wrt_index = 0;
        let gradient_outs: Vec<_> = self
            .parameters
            .iter()
            .zip(&outs)
            .map(|(p, out)| {
                if !p.differentiated {
                    unused_outs.push(out.clone());
                    return quote!(#out);
                }
                let index = syn::Index::from(wrt_index);
                wrt_index += 1;
                if wrt_count == 1 { quote!(__gradient) } else { quote!(&mut __gradient.#index) }
            })
            .collect();
        // Each gradient buffer of another shape than its parameter's (a dynamic size
        // that changed) is replaced by zeros of the right one first, as the tape does.
        let fitted_buffers: Vec<TokenStream> = self
            .differentiated()
            .into_iter()
            .enumerate()
            .map(|(position, (_, p))| {
                let ident = &p.ident;
                let parameter = if p.by_ref { quote!(#ident) } else { quote!(&#ident) };
                let index = syn::Index::from(position);
                let buffer = if wrt_count == 1 { quote!(__gradient) } else { quote!(&mut __gradient.#index) };
                quote!(::fluxion::autodiff::rules::fit_gradient(#parameter, #buffer);)
            })
            .collect();
        let seed_value =
            quote!(::fluxion::autodiff::rules::Is::cast(::fluxion::autodiff::rules::seed::<__Y>()));
        let into_call =
            self.call(Some("__joint_into"), &self.arguments(false), quote!(#seed_value, #(#gradient_outs),*));
        let gradient = self.gradient_type();
        let arguments = self.arguments(false);
        let joint_call = |seed: TokenStream| self.call(Some("__joint"), &arguments, seed);
        let select = self.select_gradient(quote!(__tangents));
        let rules = quote!(::fluxion::autodiff::rules);
        let with_y = if generic_params.is_empty() { quote!(<__Y>) } else { quote!(<#generic_params, __Y>) };
        let y_bounds = quote! {
            __Y: ::fluxion::autodiff::RealOutput + #rules::Is<#output_tangent>,
            #output: #rules::Is<__Y>,
        };
        let where_y = match where_clause {
            Some(clause) => extended_where(&clause.predicates, &y_bounds),
            None => quote!(where #y_bounds),
        };
        let seed = quote!(#rules::Is::cast(#rules::seed::<__Y>()));
        let gradient_call = joint_call(seed);
        let (value_and_grad, grad, into, vjp, jvp) = (
            self.name("value_and_grad"),
            self.name("grad"),
            self.name("value_and_grad_into"),
            self.name("vjp"),
            self.name("jvp"),
        );
        // `vjp`: the pullback recomputes the forward sweep from the captured arguments.
        let mut vjp_generics = function.sig.generics.clone();
        vjp_generics.params.insert(0, syn::parse_quote!('__l));
        let outlived = self.outlived();
        let (vjp_impl_generics, _, _) = vjp_generics.split_for_impl();
        let vjp_where = {
            let predicates = where_clause.map(|clause| &clause.predicates);
            let comma = predicates.filter(|p| !p.empty_or_trailing()).map(|_| quote!(,));
            let receiver = self.siblings().then(|| quote!(Self: '__l));
            quote!(where #predicates #comma #(#outlived: '__l,)* #receiver)
        };
        let vjp_declarations: Vec<_> = self.parameters.iter().map(|p| &p.declaration_with_lifetime).collect();
        let body_declarations: Vec<_> = self.parameters.iter().map(|p| p.body_declaration(false)).collect();
        let body_vjp_declarations: Vec<_> =
            self.parameters.iter().map(|p| p.body_declaration(true)).collect();
        let forward_call = self.call(None, &self.arguments(true), TokenStream::new());
        // The `__record` body: the forward sweep, then the value with the reverse sweep
        // as a closure; `rebind` first in both (see `owned_input`). The zero cotangents
        // are made before the forward sweep, whose `let`s may shadow a parameter.
        let record_body =
            |rebind: Option<&TokenStream>| match record.as_ref().map(|records| records.get(rebind.is_some()))
            {
                _ if self.custom_record.is_some() => self.custom_record_call(rebind.is_some()),
                Some(emit::JointParts { forward, reverse }) => quote! {
                    #rebind
                    let __zero_stores = (#(#zeros,)*);
                    #forward
                    (__value, move |__seed: #output_tangent| {
                        #rebind
                        let (#(mut #stores,)*) = __zero_stores;
                        {
                            #(let #outs = &mut #stores;)*
                            #reverse
                        }
                        (#(#stores,)*)
                    })
                },
                // The forward sweep may borrow the function's locals: the pullback
                // recomputes it from the arguments, as `vjp`'s does.
                None => {
                    let recomputed = self.call(Some("__joint"), &self.arguments(true), quote!(__seed));
                    quote! {
                        #rebind
                        let __value = #forward_call;
                        (__value, move |__seed: #output_tangent| {
                            #rebind
                            #recomputed.1
                        })
                    }
                }
            };
        // `__record_owned`: `__record` with the input taken by value and kept by the
        // pullback, which then borrows nothing the caller made: a chain of layers
        // keeps each layer's input in that layer's pullback
        // (`nn::layer::StaticModule`). Only for a layer's shape of method (see
        // `owned_input`).
        let owned_record = self.owned_input().map(|(declarations, rebind)| {
            let record_owned_name = self.name("__record_owned");
            let body = record_body(Some(&rebind));
            let sized = self.owned_input_sized();
            let owned_where = {
                let predicates = where_clause.map(|clause| &clause.predicates);
                let comma = predicates.filter(|p| !p.empty_or_trailing()).map(|_| quote!(,));
                let receiver = self.siblings().then(|| quote!(Self: '__l,));
                quote!(where #predicates #comma #(#outlived: '__l,)* #receiver #sized)
            };
            quote! {
                #[doc(hidden)]
                #[inline]
                #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
                #vis fn #record_owned_name #vjp_impl_generics (#(#declarations,)* __wanted: [bool; #parameter_count]) -> (#output, impl FnOnce(#output_tangent) -> (#(#all_tangents,)*) + '__l) #owned_where {
                    #body
                }
            }
        });
        let record_body = record_body(None);
        let captured_call =
            self.call(Some("__joint"), &self.arguments(true), quote!(::core::clone::Clone::clone(__seed)));
        let vjp_select = self.select_gradient(quote!(__tangents));
        let dots: Vec<_> = self
            .differentiated()
            .iter()
            .map(|(_, p)| format_ident!("__{}_dot", p.ident.to_string().trim_start_matches("r#")))
            .collect();
        let dot_types: Vec<_> = self.differentiated().iter().map(|(_, p)| tangent_of(&p.ty)).collect();
        let dot_seeds: Vec<_> = {
            let mut dots = dots.iter();
            self.parameters
                .iter()
                .map(|p| {
                    if p.differentiated {
                        let dot = dots.next().expect("one tangent per differentiated parameter");
                        quote!(::core::option::Option::Some(#dot))
                    } else {
                        quote!(::core::option::Option::None)
                    }
                })
                .collect()
        };
        let jvp_call = self.call(Some("__jvp"), &arguments, quote!((#(#dot_seeds,)*)));
        let linearize = self.name("linearize");
        let linear_map_call = self.call(Some("__jvp"), &self.arguments(true), quote!((#(#dot_seeds,)*)));
        let jacobians = self.jacobians();
        let second_order = self.second_order();
        let nested_gradient = self.nested_gradient();
        let items = quote! {
            #[doc(hidden)]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            #vis fn #joint_into #impl_generics (#(#body_declarations,)* __seed: #output_tangent, #(#outs: &mut #all_tangents,)*) -> #output #where_clause {
                #joint_forward
                #joint_reverse
                __value
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            #vis fn #record_name #vjp_impl_generics (#(#body_vjp_declarations,)* __wanted: [bool; #parameter_count]) -> (#output, impl FnOnce(#output_tangent) -> (#(#all_tangents,)*) + '__l) #vjp_where {
                #record_body
            }

            #owned_record

            #[doc(hidden)]
            #[inline]
            #vis fn #joint #impl_generics (#(#declarations,)* __seed: #output_tangent) -> (#output, (#(#all_tangents,)*)) #where_clause {
                #(let mut #outs = #zeros;)*
                let __value = #joint_into_call;
                (__value, (#(#outs,)*))
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            #vis fn #joint_lanes_into #with_lanes (#(#body_declarations,)* __seed: [#output_tangent; __N], #(#outs: &mut [#all_tangents; __N],)*) -> #output #where_clause {
                #joint_lanes_body
            }

            #[doc(hidden)]
            #[inline]
            #vis fn #joint_lanes #with_lanes (#(#declarations,)* __seed: [#output_tangent; __N]) -> (#output, (#([#all_tangents; __N],)*)) #where_clause {
                #(let mut #outs = #lane_zeros;)*
                let __value = #joint_lanes_into_call;
                (__value, (#(#outs,)*))
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            #vis fn #jvp_inner #impl_generics (#(#body_declarations,)* __tangents: (#(#seeds,)*)) -> (#output, #output_tangent) #where_clause {
                #tangent_body
            }

            #[doc(hidden)]
            #[inline]
            #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
            #vis fn #jvp_lanes #with_lanes (#(#body_declarations,)* __tangents: (#(#lane_seeds,)*)) -> (#output, [#output_tangent; __N]) #where_clause {
                #lanes_body
            }

            #[doc = concat!("The value of `", stringify!(#ident), "` and its gradient (static mode).")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #value_and_grad #with_y (#(#declarations,)*) -> (__Y, #gradient) #where_y {
                let (__value, __tangents) = #gradient_call;
                (#rules::Is::cast(__value), #select)
            }

            #[doc = concat!("The gradient of `", stringify!(#ident), "` (static mode).")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #grad #with_y (#(#declarations,)*) -> #gradient #where_y {
                let (_, __tangents) = #gradient_call;
                #select
            }

            #[doc = concat!("The value of `", stringify!(#ident), "`, with its gradient written into the last argument (static mode).")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #into #with_y (#(#declarations,)* __gradient: &mut #gradient) -> __Y #where_y {
                #(let #unused_outs = &mut ::fluxion::autodiff::rules::NotDifferentiated;)*
                #(#fitted_buffers)*
                #rules::Is::cast(#into_call)
            }

            #[doc = concat!("The value of `", stringify!(#ident), "` and its pullback ȳ ↦ x̄ (static mode; the pullback recomputes the forward sweep).")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #vjp #vjp_impl_generics (#(#vjp_declarations,)*) -> (#output, impl Fn(&#output_tangent) -> #gradient + '__l) #vjp_where {
                let __value = #forward_call;
                (__value, move |__seed: &#output_tangent| {
                    let (_, __tangents) = #captured_call;
                    #vjp_select
                })
            }

            #[doc = concat!("The value of `", stringify!(#ident), "` and its derivative along the given tangents (static forward mode).")]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            #vis fn #jvp #impl_generics (#(#declarations,)* #(#dots: &#dot_types,)*) -> (#output, #output_tangent) #where_clause {
                #jvp_call
            }

            #[doc = concat!("The value of `", stringify!(#ident), "` and its linear map, the differentiated parameters' tangents ↦ the output's (static forward mode; each call of the map runs the tangent code once more).")]
            #[inline]
            #[allow(clippy::multiple_bound_locations, clippy::too_many_arguments)]
            #vis fn #linearize #vjp_impl_generics (#(#vjp_declarations,)*) -> (#output, impl Fn(#(&#dot_types,)*) -> #output_tangent + '__l) #vjp_where {
                let __value = #forward_call;
                (__value, move |#(#dots: &#dot_types,)*| {
                    let __recomputation = ::fluxion::__private::recomputation();
                    #linear_map_call.1
                })
            }
        };
        let items = quote!(#items #jacobians #second_order #nested_gradient);
        if self.siblings() {
            items
        } else {
            // A braced struct lives in the type namespace only, beside the function
            // in the value namespace: `f::grad` finds it wherever `f` is in scope,
            // in a module or inside a block.
            let struct_vis = &function.vis;
            quote! {
                #[doc = concat!("Derivatives of [`", stringify!(#ident), "`](fn@", stringify!(#ident), ") by static mode: `value_and_grad`, `grad`, `value_and_grad_into`, `vjp`, `jvp`, `linearize` (and `jacfwd`, `jacrev` for one tensor; `hvp`, `hessian` when generic over the real scalar type).")]
                #[allow(non_camel_case_types)]
                #struct_vis struct #ident {}

                // A companion the program does not call is no dead code, nor is a
                // derivative given by hand that only it calls.
                #[allow(dead_code)]
                impl #ident {
                    #items
                }
            }
        }
    }
}

/// `where <predicates>, <extra>`, with one comma whether or not the predicates end
/// with one.
fn extended_where(
    predicates: &syn::punctuated::Punctuated<syn::WherePredicate, syn::token::Comma>,
    extra: &TokenStream,
) -> TokenStream {
    let comma = (!predicates.empty_or_trailing()).then(|| quote!(,));
    quote!(where #predicates #comma #extra)
}

/// The type parameters bounded by `RealScalar`, `Scalar` or `Float` (where declared
/// or in the `where` clause): `T::sqrt(x)` of one is the method `x.sqrt()`.
fn scalar_type_params(generics: &syn::Generics) -> std::collections::HashSet<String> {
    let scalar_bound = |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>| {
        bounds.iter().any(|bound| {
            matches!(bound, syn::TypeParamBound::Trait(bound)
                if bound.path.segments.last().is_some_and(|last| ["RealScalar", "Scalar", "Float"].iter().any(|name| last.ident == name)))
        })
    };
    let mut scalars: std::collections::HashSet<String> = generics
        .type_params()
        .filter(|param| scalar_bound(&param.bounds))
        .map(|param| param.ident.to_string())
        .collect();
    for predicate in generics.where_clause.iter().flat_map(|clause| &clause.predicates) {
        if let syn::WherePredicate::Type(bounded) = predicate
            && let Type::Path(path) = &bounded.bounded_ty
            && let Some(name) = path.path.get_ident()
            && scalar_bound(&bounded.bounds)
        {
            scalars.insert(name.to_string());
        }
    }
    scalars
}

#[cfg(test)]
mod tests {
    use super::expand;
    use proc_macro2::TokenStream;

    fn tokens(text: &str) -> TokenStream {
        text.parse().expect("tokens")
    }

    /// Whether the expansion reports an error (a `compile_error!`).
    fn reports_error(attribute: &str, item: &str) -> bool {
        expand(tokens(attribute), tokens(item)).to_string().contains("compile_error")
    }

    /// `T::sqrt(x)` of the function's type parameter is the method; a user type's
    /// associated function of the same name stays a call of it (its companions).
    #[test]
    fn associated_functions_named_like_rules() {
        let generic = expand(tokens(""), tokens("fn f<T: RealScalar>(x: T) -> T { T::sqrt(x) }")).to_string();
        assert!(generic.contains("Elementary :: Sqrt") && !generic.contains("T :: sqrt ::"), "{generic}");
        let user = expand(tokens(""), tokens("fn f(x: f64) -> f64 { Safe::sqrt(x) * 2.0 }")).to_string();
        assert!(user.contains("Safe :: __record_sqrt") && !user.contains("Elementary :: Sqrt"), "{user}");
        // A type parameter that is not the scalar: its own function.
        let other =
            expand(tokens("wrt(x)"), tokens("fn f<A: Activation>(x: f64) -> f64 { A::tanh(x) }")).to_string();
        assert!(other.contains("A :: __record_tanh") && !other.contains("Elementary :: Tanh"), "{other}");
        let bounded =
            expand(tokens(""), tokens("fn f<T>(x: T) -> T where T: RealScalar { T::tanh(x) }")).to_string();
        assert!(bounded.contains("Elementary :: Tanh"), "{bounded}");
        // An enum's variant is an error naming it, not a struct literal.
        assert!(reports_error("", "fn f(x: f64) -> f64 { let y = Some(x * 2.0); x }"));
        assert!(reports_error("", "fn f(x: f64) -> f64 { let y = Shape::Circle(x); x }"));
        assert!(!reports_error("", "fn f(x: f64) -> f64 { let p = Polar(x, 1.0); p.0 }"));
    }

    /// Constants: integers, strings and the references, slices, arrays, tuples,
    /// `Option`s, `Vec`s and `Box`es of them; a container of a float is not one.
    #[test]
    fn constant_parameter_types() {
        let plain = |ty: &str| super::plain_type(&syn::parse_str(ty).expect("a type"));
        for constant in
            ["usize", "&[usize]", "Option<&[usize]>", "(usize, bool)", "[u8; 4]", "Vec<String>", "&&str"]
        {
            assert!(plain(constant), "{constant}");
        }
        for differentiated in
            ["f64", "[f64; 3]", "Option<f64>", "(usize, f64)", "Vec<T>", "()", "Tensor<f64, S>"]
        {
            assert!(!plain(differentiated), "{differentiated}");
        }
        // Named in the record's lifetime, so that its closures may keep it.
        let expanded =
            expand(tokens(""), tokens("fn f(x: f64, lengths: Option<&[usize]>) -> f64 { x * 2.0 }"))
                .to_string();
        assert!(expanded.contains("lengths : Option < & '__l [usize] >"), "{expanded}");
    }

    /// `record = path`: `__record` calls it with the differentiated reference
    /// arguments by value, `__record_owned` with the owned ones; not beside `vjp`.
    #[test]
    fn a_record_given_by_hand() {
        let item = "fn m(&self, x: &Rows, memory: &Rows, n: usize) -> Rows { self.w.apply_batch(x) }";
        let expanded = expand(tokens("wrt(self, x, memory), record = Self::kept"), tokens(item)).to_string();
        let borrowed = "Self :: kept (self , :: core :: clone :: Clone :: clone (x) , :: core :: clone :: Clone :: clone (memory) , n , __wanted)";
        assert!(expanded.contains(borrowed), "{expanded}");
        assert!(
            expanded.contains("Self :: kept (self , __owned_x , __owned_memory , n , __wanted)"),
            "{expanded}"
        );
        assert!(reports_error("vjp = a, jvp = b, record = c", "fn f(x: f64) -> f64 { x }"));
    }

    /// `associated`: the companions are the function's siblings, named as a method's
    /// (no struct, which an `impl` cannot hold); `Self::h(x)` and `Arm::k(x)` are
    /// calls of associated functions, through their sibling companions, and
    /// `geometry::h(x)` (a module's function) stays a call through `h`'s struct.
    #[test]
    fn associated_functions_get_sibling_companions() {
        let item = "fn g<T: RealScalar>(x: T) -> T { Self::h(x) * Arm::k::<T>(x) + geometry::m(x) }";
        let expanded = expand(tokens("associated"), tokens(item)).to_string();
        assert!(!expanded.contains("compile_error") && !expanded.contains("struct g"), "{expanded}");
        for sibling in ["fn g_grad", "fn g_vjp", "fn g_hessian", "fn __joint_g", "fn __jvp_g_grad"] {
            assert!(expanded.contains(sibling), "{sibling}: {expanded}");
        }
        for call in ["Self :: __record_h (", "Arm :: __record_k :: < T , > (", "geometry :: m :: __record ("]
        {
            assert!(expanded.contains(call), "{call}: {expanded}");
        }
        assert!(
            expanded.contains("Self :: __jvp_h (") && expanded.contains("Self :: g :: < T , > ("),
            "{expanded}"
        );
        assert!(reports_error("associated = true", "fn g(x: f64) -> f64 { x }"));
    }

    /// std's `Cell` changed in the function, however bound; reads, shadowing names
    /// and other types' methods are fine.
    #[test]
    fn interior_mutability_is_refused_where_the_text_shows_it() {
        let loop_with = |setup: &str, change: &str| {
            std::format!(
                "fn f(x: f64, n: usize, cell: &Cell<f64>, m: &Mutex<f64>) -> f64 {{ {setup} let mut y = x; for _ in 0..n {{ {change} y = y * 2.0; }} y }}"
            )
        };
        for (setup, change) in [
            ("let c = Cell::new(1.0);", "c.set(2.0);"),
            ("let c: Cell<f64> = Cell::new(1.0);", "c.set(2.0);"),
            ("let c = &cell;", "c.set(2.0);"),
            ("", "cell.replace(2.0);"),
        ] {
            assert!(reports_error("wrt(x)", &loop_with(setup, change)), "{setup} {change}");
        }
        for (setup, change) in [
            ("let k = *m.lock().unwrap();", "let _ = k;"),
            ("let mut cell = [1.0, 2.0];", "cell.swap(0, 1);"),
            ("let name = \"a-b\";", "let _ = name.replace('-', \"_\");"),
        ] {
            assert!(!reports_error("wrt(x)", &loop_with(setup, change)), "{setup} {change}");
        }
    }

    #[test]
    fn odd_and_malformed_input_gives_errors_never_panics() {
        let items = [
            "",
            "struct S;",
            "fn f() {}",
            "fn f(x: f64) {}",
            "async fn f(x: f64) -> f64 { x }",
            "const fn f(x: f64) -> f64 { x }",
            "unsafe fn f(x: f64) -> f64 { x }",
            "fn f((a, b): (f64, f64)) -> f64 { a }",
            "fn f(x: &mut f64) -> f64 { *x }",
            "fn f(x: f64) -> f64 { while x > 0.0 { } x }",
            "fn f(x: f64) -> f64 { loop { return x; } }",
            "fn f(x: f64) -> f64 { if x > 0.0 { return x; } x }",
            "fn f(x: f64) -> f64 { if x > 0.0 { return; } x }",
            "fn f(x: f64) -> f64 { return x; x }",
            "fn f(x: f64) -> f64 { match x { _ => return x } }",
            "fn f(x: f64) -> f64 { let g = |y: f64| y * x; g(1.0) }",
            "fn f(x: f64) -> f64 { x as f32 as f64 }",
            "fn f(x: f64) -> f64 { if let Some(y) = Some(x) { y } else { x } }",
            "fn f(x: f64) -> f64 { let [a] = [x]; a }",
            "fn f(x: f64) -> f64 { x.floor() }",
            "fn f(x: f64) -> f64 { x.powf(x) }",
            "fn f(x: f64) -> f64 { x.exp(1.0) }",
            "fn f(x: f64) -> f64 { x % 2.0 }",
            "fn f(x: f64) -> f64 { !x }",
            "fn f(x: f64) -> f64 { match x { _ if x > 0.0 => x, _ => -x } }",
            "fn f(x: f64) -> f64 { for v in [x] { } x }",
            "fn f(x: f64) -> f64 { unsafe { x } }",
            "fn f(x: f64) -> f64 { (|| x)() }",
            "fn f(x: f64) -> f64 { let y; y = x; y }",
            "fn f(x: f64, y: f64) -> f64 { x[y] }",
            "fn f(n: usize) -> f64 { 1.0 }",
            "fn f(x: f64) -> f64 { {{{ x }}} }",
            "fn f(x: f64) -> f64 { stop_gradient(x, x) }",
        ];
        let attributes = [
            "",
            "wrt(x)",
            "wrt(q)",
            "wrt",
            "wrt = x",
            "vjp = a",
            "vjp = a, jvp = b",
            "jvp",
            "nonsense(1)",
            "wrt(x), wrt(x)",
            "associated",
            "associated, wrt(x)",
            "associated, vjp = a, jvp = b",
        ];
        for item in items {
            for attribute in attributes {
                // Every combination expands (to code or to errors) without panicking.
                let _ = expand(tokens(attribute), tokens(item));
            }
        }
        assert!(reports_error("", "struct S;"));
        assert!(reports_error("", "fn f(x: f64) {}"));
        assert!(reports_error("", "fn f(n: usize) -> f64 { 1.0 }"));
        assert!(reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; loop { y = y * 0.5; if y < 1.0 { break; } } y }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; while let Some(z) = Some(y) { y = z; } y }"
        ));
        assert!(!reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; while y > 1.0 { y = y * 0.5; } y }"
        ));
        assert!(reports_error("", "fn f(x: f64) -> f64 { x.log(3.0) }"));
        assert!(reports_error("", "fn f(x: f64) -> f64 { g::value_and_grad(x).0 }"));
        assert!(reports_error("", "fn f(x: f64) -> f64 { g::vjp(x).0 }"));
        assert!(!reports_error("", "fn f(x: f64) -> f64 { x.floor() }"));
        assert!(reports_error("", "fn f(x: f64) -> f64 { x.powf(x) }"));
        assert!(reports_error("", "fn f(x: &mut f64) -> f64 { *x }"));
        assert!(reports_error("wrt(q)", "fn f(x: f64) -> f64 { x }"));
        assert!(reports_error("vjp = a", "fn f(x: f64) -> f64 { x }"));
        assert!(reports_error("nonsense(1)", "fn f(x: f64) -> f64 { x }"));
        assert!(!reports_error("", "fn f(x: f64) -> f64 { let y = x * x; y.sin() }"));
        // Assignments inside arms would lose their derivative: refused, in loops too.
        let in_loop = "fn f(x: f64) -> f64 { let mut y = x; for _ in 0..1 { if x > 0.0 { y = y * 2.0; } else { y = y * 3.0; } } y }";
        assert!(reports_error("", in_loop));
        let in_match = "fn f(x: f64, k: usize) -> f64 { let mut y = x; for _ in 0..3 { match k { 0 => { y = y * y; } _ => { y = y.sin(); } } } y }";
        assert!(reports_error("", in_match));
        // A guarded `break` before any change of state becomes the loop's condition;
        // one after, or `continue`, is refused.
        assert!(!reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; for i in 0..10 { if i > 3 { break; } y = y.sin(); } y }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; for i in 0..10 { y = y.sin(); if i > 3 { break; } } y }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut y = x; for i in 0..10 { if i > 3 { continue; } y = y.sin(); } y }"
        ));
        // Early returns become branch values; one that cannot (the arm binds a name
        // the rest reads, or it sits in a loop or a `let`'s value) is refused.
        assert!(!reports_error("", "fn f(x: f64) -> f64 { if x > 0.0 { return x; } x * 2.0 }"));
        assert!(!reports_error(
            "",
            "fn f(x: f64, k: u8) -> f64 { match k { 0 => return x, _ => {} } x.sin() }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64) -> f64 { let y = x; if x > 0.0 { let y = 2.0; } else { return x; } y }"
        ));
        assert!(reports_error("", "fn f(x: f64) -> f64 { for _ in 0..2 { if x > 0.0 { return x; } } x }"));
        assert!(reports_error("", "fn f(x: f64) -> f64 { let y = if x > 0.0 { return x; } else { x }; y }"));
        assert!(reports_error(
            "",
            "fn f(x: f64, c: bool) -> f64 { let y = if c { return 0.0 } else { x }; y }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64, k: u8) -> f64 { let y = match k { 0 => return 0.0, _ => x }; y }"
        ));
        // A match pattern (or an `if let`) that binds a name the rest reads.
        assert!(reports_error(
            "wrt(x)",
            "fn f(x: f64, s: f64) -> f64 { let y = x * 3.0; match s { y if y > 0.0 => {}, _ => return x } y * 2.0 }"
        ));
        assert!(reports_error(
            "",
            "fn f(x: f64, o: Option<f64>) -> f64 { let y = x; if let Some(y) = o { y; } else { return x; } y }"
        ));
        // An arm that returns may bind what the rest binds again.
        assert!(!reports_error(
            "",
            "fn f(x: f64) -> f64 { if x > 1.0 { let y = x.ln(); return y * y; } let y = x * x; y }"
        ));
        // Plain bookkeeping inside arms stays allowed.
        assert!(!reports_error(
            "",
            "fn f(x: f64) -> f64 { let mut n = 0; let y = if x > 0.0 { n += 1; x } else { x * 2.0 }; y * (n as f64) }"
        ));
    }

    /// A local closure called with a differentiated argument is named as a local, not
    /// taken for a differentiable function's module.
    #[test]
    fn a_closure_call_is_named_as_a_local() {
        let expansion =
            expand(tokens(""), tokens("fn f(x: f64) -> f64 { let g = |y: f64| y * 2.0; g(x) }")).to_string();
        assert!(expansion.contains("`g` is a local variable"), "{expansion}");
    }
}
