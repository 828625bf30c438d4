//! `#[module]`: a layer's forward pass written once, as an inherent `forward`
//! method, implemented for every form the layer takes: `Module` for the plain
//! struct (inference), `Module` of traced tensors for its traced twin (training on
//! the tape; a plain input is taken as a constant, as the library's layers take it),
//! and a `#[differentiable]` `apply_batch` with `StaticModule` (static mode), whose
//! body is the same with each `.forward(` call of a layer read as that layer's
//! static form (`.static_forward(`, of the hidden `StaticForward` trait). Helper
//! methods in the block get the same three forms: plain, over traced values (their
//! reference arguments and outputs), and `#[differentiable]` as `__module_name`,
//! which the static bodies call. `#[module(no_static)]` leaves the static form out;
//! `#[module(storage_kind(K))]` writes a block generic over its storage kind out for
//! `Heap` and `Cuda`.

use proc_macro2::{Group, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericParam, ImplItem, ImplItemFn, ItemImpl, Pat, PathArguments, ReturnType, Type, parse2,
};

/// The block's forms, or the error beside the block as written (so that its methods
/// still exist and the error is not followed by one at each call).
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = options(attr).and_then(|options| {
        let block = parse2::<ItemImpl>(item.clone())?;
        match options {
            Options { with_static, storage_kind: None } => module(&block, with_static),
            Options { with_static, storage_kind: Some(kind) } => every_kind(&block, &kind, with_static),
        }
    });
    expanded.unwrap_or_else(|error| {
        let error = error.into_compile_error();
        quote!(#error #item)
    })
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

/// The block's `forward`: `fn forward(&self, x: &Input) -> Output`.
struct Forward<'a> {
    method: &'a ImplItemFn,
    /// The input's binding as written (`x`, `mut x`) and its name.
    input_pattern: &'a syn::PatIdent,
    input_name: &'a syn::Ident,
    input: &'a Type,
    output: &'a Type,
}

/// A helper method the body calls, `fn name(&self, a: &A, n: usize, …) -> Output`:
/// written out for every form as `forward` is, its reference arguments traced on
/// the tape and differentiated in static mode (arguments taken by value, and
/// references to slices and to values never traced, `&[usize]`, `&Vec<usize>`, are
/// constants).
struct Helper<'a> {
    method: &'a ImplItemFn,
    arguments: Vec<Argument<'a>>,
    output: &'a Type,
}

struct Argument<'a> {
    pattern: &'a syn::PatIdent,
    /// The type as written (`&A`, `usize`, `&[usize]`).
    ty: &'a Type,
    /// `A` of a traced argument `&A`.
    traced: Option<&'a Type>,
}

/// The block's shape, said in every error about it.
const SHAPE: &str = "`#[module]` takes an `impl` block of a method `fn forward(&self, x: &Input) -> Output` and any helper methods `fn name(&self, …) -> Output` that it calls";

/// An error at `span` saying what is wrong and the shape the block needs.
fn shape_error(span: proc_macro2::Span, what: &str) -> syn::Error {
    syn::Error::new(span, format!("{what}: {SHAPE}"))
}

/// A method's signature without qualifiers, generics of its own or `self` by value.
fn plain_signature(method: &ImplItemFn) -> syn::Result<()> {
    let signature = &method.sig;
    let name = &signature.ident;
    let qualified = signature.constness.is_some()
        || signature.asyncness.is_some()
        || signature.unsafety.is_some()
        || signature.abi.is_some()
        || signature.generics.where_clause.is_some();
    if qualified {
        let message = format!(
            "`#[module]`'s `{name}` is a plain method: no `const`, `async`, `unsafe`, `extern` or `where` of its own (put bounds on the `impl`)"
        );
        return Err(syn::Error::new(signature.span(), message));
    }
    if !signature.generics.params.is_empty() {
        let what = format!("`{name}` has generic parameters of its own (put them on the `impl`)");
        return Err(shape_error(signature.generics.span(), &what));
    }
    match signature.inputs.first() {
        Some(FnArg::Receiver(syn::Receiver { reference: Some(_), mutability: None, .. })) => Ok(()),
        Some(FnArg::Receiver(receiver)) => Err(shape_error(
            receiver.span(),
            &format!("`{name}` takes `self` by value or `&mut self`, not `&self`"),
        )),
        _ => Err(shape_error(signature.ident.span(), &format!("`{name}` takes no `&self`"))),
    }
}

/// An argument bound to a name, not `&mut`, `ref` or a pattern.
fn named_argument<'a>(
    method: &syn::Ident,
    argument: &'a FnArg,
) -> syn::Result<(&'a syn::PatIdent, &'a Type)> {
    let FnArg::Typed(typed) = argument else {
        return Err(shape_error(argument.span(), &format!("`{method}` takes `self` twice")));
    };
    if let Type::Reference(reference) = &*typed.ty
        && reference.mutability.is_some()
    {
        let what = format!(
            "`{method}` takes an argument by `&mut` (a traced value is taken by `&`, a constant by value)"
        );
        return Err(shape_error(typed.ty.span(), &what));
    }
    match &*typed.pat {
        Pat::Ident(pattern) if pattern.by_ref.is_none() && pattern.subpat.is_none() => {
            Ok((pattern, &typed.ty))
        }
        pattern => Err(shape_error(
            pattern.span(),
            &format!("`{method}` binds an argument to a pattern, not a name"),
        )),
    }
}

fn methods(block: &ItemImpl) -> syn::Result<(Forward<'_>, Vec<Helper<'_>>)> {
    if let Some((_, path, _)) = &block.trait_ {
        return Err(shape_error(path.span(), "this is a trait's `impl`"));
    }
    let mut forward = None;
    let mut helpers = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(method) = item else {
            return Err(shape_error(item.span(), "the block holds an item that is not a method"));
        };
        plain_signature(method)?;
        let name = &method.sig.ident;
        let ReturnType::Type(_, output) = &method.sig.output else {
            return Err(shape_error(method.sig.span(), &format!("`{name}` returns nothing")));
        };
        let mut arguments = Vec::new();
        for argument in method.sig.inputs.iter().skip(1) {
            let (pattern, ty) = named_argument(name, argument)?;
            let traced = match ty {
                Type::Reference(reference) if !never_traced(&reference.elem) => Some(&*reference.elem),
                _ => None,
            };
            arguments.push(Argument { pattern, ty, traced });
        }
        if name != "forward" {
            helpers.push(Helper { method, arguments, output });
            continue;
        }
        if forward.is_some() {
            return Err(shape_error(name.span(), "a second `forward`"));
        }
        let [Argument { pattern, ty: Type::Reference(input), .. }] = arguments.as_slice() else {
            let what =
                "`forward` takes one input, by reference (a layer has one input: several travel as a tuple)";
            let at = method.sig.inputs.iter().nth(2).or(method.sig.inputs.iter().nth(1));
            return Err(shape_error(at.map_or(name.span(), Spanned::span), what));
        };
        let input = &input.elem;
        forward = Some(Forward { method, input_pattern: pattern, input_name: &pattern.ident, input, output });
    }
    let forward = forward.ok_or_else(|| shape_error(block.self_ty.span(), "the block has no `forward`"))?;
    Ok((forward, helpers))
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

/// Whether `trees[index]` is called: `( … )` follows it.
fn is_called(trees: &[TokenTree], index: usize) -> bool {
    matches!(trees.get(index + 1), Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Parenthesis)
}

/// The identifier `trees[index]` follows as `receiver.name`.
fn receiver_of(trees: &[TokenTree], index: usize) -> Option<&syn::Ident> {
    match trees.get(index.checked_sub(2)?..index)? {
        [TokenTree::Ident(receiver), TokenTree::Punct(dot)] if dot.as_char() == '.' => Some(receiver),
        _ => None,
    }
}

/// The identifier `trees[index]` follows as `Owner::name`.
fn owner_of(trees: &[TokenTree], index: usize) -> Option<&syn::Ident> {
    match trees.get(index.checked_sub(3)?..index)? {
        [TokenTree::Ident(owner), TokenTree::Punct(first), TokenTree::Punct(second)]
            if first.as_char() == ':' && second.as_char() == ':' =>
        {
            Some(owner)
        }
        _ => None,
    }
}

/// `tokens` with each call `self.name(` (or `Self::name(`) of a helper read as a
/// call of the helper's static form (`helpers`: each name with its static form's).
fn static_helper_calls(tokens: TokenStream, helpers: &[(syn::Ident, syn::Ident)]) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    for (index, tree) in trees.iter().enumerate() {
        let on_self = receiver_of(&trees, index).is_some_and(|receiver| receiver == "self")
            || owner_of(&trees, index).is_some_and(|owner| owner == "Self");
        out.push(match tree {
            TokenTree::Ident(ident) if on_self && is_called(&trees, index) => {
                let static_name =
                    helpers.iter().find(|(name, _)| name == ident).map(|(_, static_name)| static_name);
                TokenTree::Ident(static_name.unwrap_or(ident).clone())
            }
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), static_helper_calls(group.stream(), helpers));
                inner.set_span(group.span());
                TokenTree::Group(inner)
            }
            other => other.clone(),
        });
    }
    out.into_iter().collect()
}

/// The first call `self.name(…)` in `tokens` of a method that is not one of
/// `helpers`.
fn call_of_another_method(tokens: TokenStream, helpers: &[syn::Ident]) -> Option<syn::Ident> {
    // `forward` is the block's own (its static form, `static_forward`).
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    trees.iter().enumerate().find_map(|(index, tree)| match tree {
        TokenTree::Ident(name)
            if receiver_of(&trees, index).is_some_and(|receiver| receiver == "self")
                && is_called(&trees, index)
                && !helpers.contains(name)
                && name != "forward" =>
        {
            Some(name.clone())
        }
        TokenTree::Group(group) => call_of_another_method(group.stream(), helpers),
        _ => None,
    })
}

/// The first call `Name::helper(…)` in `tokens` of one of `helpers` through the
/// struct's name `owner` (which the traced form, on the traced twin, cannot call).
fn helper_called_through_its_type(
    tokens: TokenStream,
    owner: &syn::Ident,
    helpers: &[syn::Ident],
) -> Option<syn::Ident> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    trees.iter().enumerate().find_map(|(index, tree)| match tree {
        TokenTree::Ident(name)
            if helpers.contains(name)
                && owner_of(&trees, index) == Some(owner)
                && is_called(&trees, index) =>
        {
            Some(name.clone())
        }
        TokenTree::Group(group) => helper_called_through_its_type(group.stream(), owner, helpers),
        _ => None,
    })
}

impl Helper<'_> {
    /// Whether each reference argument is traced (not a slice) and may be taken by
    /// value (the rule of static mode's `__record_owned`), and there is one: the static
    /// form then takes clones of its inputs where a caller's record keeps its reverse
    /// sweep.
    fn owns_its_inputs(&self) -> bool {
        let mut references =
            self.arguments.iter().filter(|argument| matches!(argument.ty, Type::Reference(_)));
        self.arguments.iter().any(|argument| argument.traced.is_some())
            && references.all(|argument| argument.traced.is_some_and(crate::differentiable::may_be_owned))
    }

    /// The static form's name: `__module_name` for one that owns its inputs (the
    /// prefix static mode reads as such a call; see `owns_its_inputs`), `__helper_name`
    /// for another.
    fn static_name(&self) -> syn::Ident {
        let name = &self.method.sig.ident;
        let prefix = if self.owns_its_inputs() { "__module" } else { "__helper" };
        format_ident!("{}_{}", prefix, name, span = name.span())
    }
}

/// Types a body's value never has traced: those static mode never differentiates
/// (integers, `bool`, `char`, strings), `Vec`s, `Option`s, `Box`es, arrays, slices,
/// references, function pointers, trait objects and `_`; and any type that names a
/// trait object (`Rc<dyn Trait>`, a coercion the annotation drives).
fn never_traced(ty: &Type) -> bool {
    let names_a_trait_object =
        quote!(#ty).into_iter().any(|tree| matches!(tree, TokenTree::Ident(ident) if ident == "dyn"));
    names_a_trait_object
        || crate::differentiable::plain_type(ty)
        || match ty {
            Type::Path(path) => path.path.segments.last().is_some_and(|last| {
                crate::differentiable::OWNING_CONTAINERS.contains(&last.ident.to_string().as_str())
            }),
            Type::Array(_)
            | Type::Slice(_)
            | Type::Reference(_)
            | Type::Ptr(_)
            | Type::BareFn(_)
            | Type::TraitObject(_)
            | Type::ImplTrait(_)
            | Type::Infer(_)
            | Type::Never(_) => true,
            Type::Paren(inner) => never_traced(&inner.elem),
            Type::Group(inner) => never_traced(&inner.elem),
            _ => false,
        }
}

/// Whether `value`'s type comes from its annotation: its last step is a call whose
/// result type is generic (`collect()`, `sum()`, `into()`, `parse()`,
/// `Default::default()`, `unwrap()` of such a call, …), which `annotated` would
/// leave ambiguous between a value and a traced one.
fn inferred_from_annotation(value: &syn::Expr) -> bool {
    const GENERIC_RETURNS: &[&str] = &[
        "collect",
        "sum",
        "product",
        "into",
        "try_into",
        "parse",
        "default",
        "from",
        "try_from",
        "cast",
        "fold",
        "unwrap",
        "expect",
        "unwrap_or",
        "unwrap_or_default",
        "unwrap_or_else",
    ];
    let named = |ident: &syn::Ident| GENERIC_RETURNS.contains(&ident.to_string().as_str());
    match value {
        syn::Expr::MethodCall(call) => named(&call.method),
        syn::Expr::Call(call) => match &*call.func {
            syn::Expr::Path(path) => path.path.segments.last().is_some_and(|last| named(&last.ident)),
            _ => false,
        },
        syn::Expr::Try(attempt) => inferred_from_annotation(&attempt.expr),
        syn::Expr::Paren(inner) => inferred_from_annotation(&inner.expr),
        _ => false,
    }
}

/// A body in its traced form: each `let x: T = value;` read as `let x =
/// annotated::<T, _>(value);`, which takes a `T` or a traced `T`, so that an
/// annotation written for the plain form holds in both. A tuple's annotation is left
/// out; one of a type that is [`never_traced`], one whose value's type comes from it
/// ([`inferred_from_annotation`]) and one without a value stay as written.
fn traced_body(body: &syn::Block) -> TokenStream {
    struct Annotations;
    impl syn::visit_mut::VisitMut for Annotations {
        fn visit_local_mut(&mut self, local: &mut syn::Local) {
            syn::visit_mut::visit_local_mut(self, local);
            let (Pat::Type(typed), Some(init)) = (&local.pat, &mut local.init) else { return };
            let (pattern, ty) = ((*typed.pat).clone(), &*typed.ty);
            if never_traced(ty) || inferred_from_annotation(&init.expr) {
                return;
            }
            if !matches!(ty, Type::Tuple(_)) {
                let value = &init.expr;
                *init.expr = syn::parse_quote!(::fluxion::__private::annotated::<#ty, _>(#value));
            }
            local.pat = pattern;
        }

        fn visit_item_mut(&mut self, _: &mut syn::Item) {}
    }
    let mut body = body.clone();
    syn::visit_mut::VisitMut::visit_block_mut(&mut Annotations, &mut body);
    quote!(#body)
}

/// `Output` of the tape, `Var<Output>`, or a tuple of them for a tuple of outputs.
fn traced_output(output: &Type) -> TokenStream {
    let var = quote!(::fluxion::autodiff::Var);
    match output {
        Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            let elements = tuple.elems.iter();
            quote!((#(#var<#elements>,)*))
        }
        other => quote!(#var<#other>),
    }
}

/// The form of a helper method that one of the block's forms calls.
#[derive(Clone, Copy)]
enum HelperForm {
    Plain,
    Traced,
    Static,
}

/// The block's `where` bounds that name none of `params`.
fn bounds_naming_none_of<'a>(
    block: &'a ItemImpl,
    params: &'a [&GenericParam],
) -> impl Iterator<Item = &'a syn::WherePredicate> + Clone {
    let predicates = block.generics.where_clause.iter().flat_map(|clause| &clause.predicates);
    predicates.filter(|bound| !params.iter().any(|param| names(quote!(#bound), param_ident(param))))
}

/// A helper method in an `impl` of the struct's own generic parameters: the
/// block's other parameters (`method_params`) that its signature names go on the
/// method, with the bounds that name no other. `body`: the body of this form.
fn helper_method(
    helper: &Helper<'_>,
    block: &ItemImpl,
    method_params: &[&GenericParam],
    form: HelperForm,
    body: TokenStream,
) -> TokenStream {
    let Helper { method, arguments, output } = helper;
    let signature = &method.sig;
    let (inputs, signature_output) = (&signature.inputs, &signature.output);
    let named = quote!(#inputs #signature_output);
    let (params, left_out): (Vec<&GenericParam>, Vec<&GenericParam>) =
        method_params.iter().partition(|param| names(named.clone(), param_ident(param)));
    let bounds = bounds_naming_none_of(block, &left_out);
    let (attrs, vis, name) = (&method.attrs, &method.vis, &signature.ident);
    let declarations = arguments.iter().map(|Argument { pattern, ty, traced }| match (&form, traced) {
        (HelperForm::Traced, Some(traced)) => quote!(#pattern: &::fluxion::autodiff::Var<#traced>),
        _ => quote!(#pattern: #ty),
    });
    let head = quote!(<#(#params),*>(&self, #(#declarations),*));
    match form {
        HelperForm::Plain => quote!(#(#attrs)* #vis fn #name #head -> #output where #(#bounds,)* #body),
        HelperForm::Traced => {
            let output = traced_output(output);
            quote!(#(#attrs)* #vis fn #name #head -> #output where #(#bounds,)* #body)
        }
        HelperForm::Static => {
            let static_name = helper.static_name();
            let differentiated =
                arguments.iter().filter(|argument| argument.traced.is_some()).map(|a| &a.pattern.ident);
            // A helper that owns its inputs keeps its layers' reverse sweeps where a
            // caller passes it clones (`__record_owned`): the bounds say it may clone
            // them in turn.
            let traced = arguments.iter().filter_map(|argument| argument.traced);
            let cloned = helper.owns_its_inputs().then(|| quote!(#(#traced: ::core::clone::Clone,)*));
            quote! {
                #(#attrs)*
                #[doc(hidden)]
                #[::fluxion::autodiff::differentiable(wrt(self, #(#differentiated),*))]
                fn #static_name #head -> #output where #(#bounds,)* #cloned #body
            }
        }
    }
}

fn module(block: &ItemImpl, with_static: bool) -> syn::Result<TokenStream> {
    let (Forward { method, input_pattern, input_name, input, output }, helpers) = methods(block)?;
    let self_type = &block.self_ty;
    let traced = traced_twin(self_type)?;
    let Type::Path(self_path) = &**self_type else { unreachable!("`traced_twin` takes a path only") };
    let struct_name = &self_path.path.segments.last().expect("a path has a segment").ident;
    if let Some(helper) =
        helpers.iter().find(|helper| helper.method.sig.ident == "apply_batch" && with_static)
    {
        let name = &helper.method.sig.ident;
        return Err(shape_error(
            name.span(),
            "a helper named `apply_batch`, the name of the block's static form",
        ));
    }
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let generic_params = &block.generics.params;
    let bounds = where_clause.map(|clause| &clause.predicates);
    let bounds_comma =
        bounds.map(|bounds| if bounds.empty_or_trailing() { quote!(#bounds) } else { quote!(#bounds,) });
    let attrs = &method.attrs;
    let body = &method.block;
    let span = method.sig.ident.span();
    let layer = quote_spanned!(span=> ::fluxion::nn::layer);
    let var = quote!(::fluxion::autodiff::Var);
    // The parameters the struct's type names stay on the `impl`; the others (an
    // input's width, say) go on the methods, where their inputs constrain them.
    let (own, method_params): (Vec<&GenericParam>, Vec<&GenericParam>) =
        block.generics.params.iter().partition(|param| names(quote!(#self_type), param_ident(param)));
    let helper_names: Vec<syn::Ident> =
        helpers.iter().map(|helper| helper.method.sig.ident.clone()).collect();
    // A method of the struct's outside the block has no static form (and, unless
    // written for the traced twin too, no traced one).
    let bodies: Vec<TokenStream> = std::iter::once(method)
        .chain(helpers.iter().map(|helper| helper.method))
        .map(|m| m.block.to_token_stream())
        .collect();
    let other = bodies.iter().find_map(|body| call_of_another_method(body.clone(), &helper_names));
    if let Some(name) = other.filter(|_| with_static) {
        let message = format!(
            "`self.{name}(…)`: a method that a `#[module]` body calls on `self` is a helper of the block, written out for every form: move `{name}` into this block"
        );
        return Err(syn::Error::new(name.span(), message));
    }
    if let Some(name) = bodies
        .iter()
        .find_map(|body| helper_called_through_its_type(body.clone(), struct_name, &helper_names))
    {
        let message = format!(
            "call the helper `{name}` as `self.{name}(…)`, which each form of the block reads as its own"
        );
        return Err(syn::Error::new(name.span(), message));
    }
    let traced_forward_body = traced_body(body);
    let static_names: Vec<(syn::Ident, syn::Ident)> =
        helpers.iter().map(|helper| (helper.method.sig.ident.clone(), helper.static_name())).collect();
    let static_body = |body: &syn::Block| static_helper_calls(static_calls(quote!(#body)), &static_names);
    let forms = |form: HelperForm| -> Vec<TokenStream> {
        helpers
            .iter()
            .map(|helper| {
                let body = &helper.method.block;
                let body = match form {
                    HelperForm::Plain => quote!(#body),
                    HelperForm::Traced => traced_body(body),
                    HelperForm::Static => static_body(body),
                };
                helper_method(helper, block, &method_params, form, body)
            })
            .collect()
    };
    // The bounds that name only the struct's own parameters, for the `impl`s of its
    // methods (which must satisfy the struct's and its traced twin's bounds).
    let own_bounds = bounds_naming_none_of(block, &method_params);
    let own_where = quote!(where #(#own_bounds,)*);
    let helper_impl = |of: &dyn ToTokens, methods: Vec<TokenStream>| {
        (!methods.is_empty()).then(|| quote!(impl<#(#own),*> #of #own_where { #(#methods)* }))
    };
    let plain_helpers = helper_impl(self_type, forms(HelperForm::Plain));
    let traced_helpers = helper_impl(&traced, forms(HelperForm::Traced));
    let static_form = with_static.then(|| {
        let (static_body, static_helpers) = (static_body(body), forms(HelperForm::Static));
        // The helpers' static forms, called from `apply_batch` (not every companion
        // is; theirs are named `__joint___module_name`, …).
        let static_helpers = (!helpers.is_empty()).then(|| {
            quote! {
                #[allow(dead_code, non_snake_case)]
                impl<#(#own),*> #self_type #own_where {
                    #(#static_helpers)*
                }
            }
        });
        quote! {
            #[allow(unused_imports)]
            use #layer::StaticForward as _;

            impl<#(#own),*> #self_type #own_where {
                #(#attrs)*
                ///
                /// Static mode's form (`#[module]`): inside `#[differentiable]` code.
                #[::fluxion::autodiff::differentiable]
                pub fn apply_batch<#(#method_params),*>(&self, #input_pattern: &#input) -> #output
                where #bounds_comma #input: ::core::clone::Clone
                #static_body
            }

            #static_helpers

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

        #plain_helpers

        ::fluxion::__private::with_reverse_mode! {
            impl #impl_generics #layer::Module<#var<#input>> for #traced #where_clause {
                type Output = #var<#output>;
                #(#attrs)*
                fn forward(&self, #input_pattern: &#var<#input>) -> #var<#output> #traced_forward_body
            }

            /// A plain input, taken as a constant of the tape.
            impl #impl_generics #layer::Module<#input> for #traced #where_clause {
                type Output = #var<#output>;
                fn forward(&self, #input_name: &#input) -> #var<#output> {
                    #layer::Module::<#var<#input>>::forward(self, &#var::constant(::core::clone::Clone::clone(#input_name)))
                }
            }

            #traced_helpers
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
    fn a_block_of_another_shape_is_refused_saying_what_and_the_shape_it_needs() {
        for (block, what) in [
            (quote!(impl Net { fn forward(&self, x: &X, y: &Y) -> Z { x } }), "`forward` takes one input"),
            (quote!(impl Net { fn apply(&self, x: &X) -> Z { x } }), "the block has no `forward`"),
            (
                quote!(impl Net { fn forward(&self, x: X) -> Z { x } }),
                "`forward` takes one input, by reference",
            ),
            (quote!(impl Module<X> for Net { fn forward(&self, x: &X) -> Z { x } }), "a trait's `impl`"),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn other(&self) {} }),
                "`other` returns nothing",
            ),
            (quote!(impl Net { fn forward(&self, ref x: &X) -> Z { x } }), "binds an argument to a pattern"),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn forward(&self, x: &X) -> Z { x } }),
                "a second `forward`",
            ),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn helper(self, x: &X) -> Z { x } }),
                "`helper` takes `self` by value",
            ),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn helper(x: &X) -> Z { x } }),
                "takes no `&self`",
            ),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn helper<A>(&self, x: &A) -> Z { x } }),
                "`helper` has generic parameters of its own",
            ),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn helper(&self, x: &mut X) -> Z { x } }),
                "`helper` takes an argument by `&mut`",
            ),
            (
                quote!(impl Net { fn forward(&self, x: &X) -> Z { x } fn helper(&self, (a, b): (X, X)) -> Z { a } }),
                "binds an argument to a pattern",
            ),
            (quote!(impl Net { fn forward(&self, x: &X) -> Z { x } const N: usize = 1; }), "not a method"),
        ] {
            let error = expand(TokenStream::new(), block.clone()).to_string();
            assert!(error.contains(what), "{block}: {error}");
            assert!(error.contains("takes an `impl` block of a method `fn forward"), "{block}: {error}");
            // The block as written follows the error: its methods exist, so calls of
            // them report nothing more.
            assert!(error.ends_with(&block.to_string()), "{block}: {error}");
        }
    }

    #[test]
    fn annotations_hold_a_traced_value_in_the_traced_form() {
        let body: syn::Block = syn::parse_quote!({
            let h: Rows = self.a.forward(x);
            let (p, q): (Rows, Rows) = self.pair(&h);
            let picks: Vec<usize> = (0..4).collect();
            let n: usize = 2;
            let later: Rows;
            let total: f64 = picks.iter().map(|&i| i as f64).sum();
            let ids: Ids = (0..4).collect();
            let shared: Rc<dyn Shape> = Rc::new(Square);
            let e: T = num_traits::cast(n).unwrap();
            let f: fn(f64) -> f64 = f64::tanh;
            p
        });
        let traced = traced_body(&body).to_string();
        assert!(
            traced.contains(
                "let h = :: fluxion :: __private :: annotated :: < Rows , _ > (self . a . forward (x))"
            ),
            "{traced}"
        );
        assert!(traced.contains("let (p , q) = self . pair (& h)"), "{traced}");
        for kept in [
            "let picks : Vec < usize > = (0 .. 4) . collect ()",
            "let n : usize = 2",
            "let later : Rows ;",
            "let total : f64 = picks",
            "let ids : Ids = (0 .. 4) . collect ()",
            "let shared : Rc < dyn Shape > = Rc :: new (Square)",
            "let e : T = num_traits :: cast (n) . unwrap ()",
            "let f : fn (f64) -> f64 = f64 :: tanh",
        ] {
            assert!(traced.contains(kept), "{kept}: {traced}");
        }
    }

    #[test]
    fn references_to_values_never_traced_are_constants() {
        let block = quote!(
            impl Net {
                fn forward(&self, x: &X) -> X { self.pick(x, &vec![0], &1) }
                fn pick(&self, x: &X, rows: &Vec<usize>, count: &usize) -> X { x.clone() }
            }
        );
        let expanded = expand(TokenStream::new(), block).to_string();
        assert!(
            expanded.contains(
                "x : & :: fluxion :: autodiff :: Var < X > , rows : & Vec < usize > , count : & usize"
            ),
            "{expanded}"
        );
        assert!(expanded.contains("differentiable (wrt (self , x))] fn __helper_pick"), "{expanded}");
    }

    #[test]
    fn a_helper_is_called_through_self() {
        let helper = quote!(
            fn squash(&self, x: &X) -> X {
                x.tanh()
            }
        );
        let through_self =
            quote!(impl Net { fn forward(&self, x: &X) -> X { Self::squash(self, x) } #helper });
        let expanded = expand(TokenStream::new(), through_self).to_string();
        assert!(expanded.contains("Self :: __module_squash (self , x)"), "{expanded}");
        let through_type =
            quote!(impl Net { fn forward(&self, x: &X) -> X { Net::squash(self, x) } #helper });
        let error = expand(TokenStream::new(), through_type).to_string();
        assert!(error.contains("call the helper `squash` as `self.squash(…)`"), "{error}");
    }

    #[test]
    fn a_body_calling_a_method_outside_the_block_is_told_to_move_it_in() {
        let block =
            quote!(impl Net { fn forward(&self, x: &X) -> X { self.layer.forward(&self.outside(x)) } });
        let error = expand(TokenStream::new(), block.clone()).to_string();
        assert!(
            error.contains("`self.outside(…)`") && error.contains("move `outside` into this block"),
            "{error}"
        );
        // Without a static form, the traced twin may have a method of that name.
        assert!(!expand(quote!(no_static), block).to_string().contains("compile_error"));
    }

    #[test]
    fn helper_methods_get_every_form_and_their_calls_on_self_the_static_one() {
        let block = quote!(
            impl Net {
                fn forward(&self, x: &X) -> X {
                    let (a, b) = self.pair(x);
                    self.gate(&a, &b, 2, &[1, 2])
                }
                fn pair(&self, x: &X) -> (X, X) {
                    (self.a.forward(x), self.gate(x, x, 1, &[]))
                }
                fn gate(&self, a: &X, b: &X, n: i32, picks: &[usize]) -> X {
                    a.hadamard(&b.powi(n))
                }
            }
        );
        let expanded = expand(TokenStream::new(), block).to_string();
        // The traced twin's helpers take and return values of the tape, except the
        // constants (by value, slices).
        assert!(
            expanded.contains("fn pair < > (& self , x : & :: fluxion :: autodiff :: Var < X >) -> (:: fluxion :: autodiff :: Var < X > , :: fluxion :: autodiff :: Var < X > ,)"),
            "{expanded}"
        );
        assert!(
            expanded.contains("n : i32 , picks : & [usize]) -> :: fluxion :: autodiff :: Var < X >"),
            "{expanded}"
        );
        // The static forms differentiate `self` and the traced arguments, and call
        // each other's static forms.
        // A helper whose reference arguments are all traced owns them in a caller's
        // record (`__module_`, bounded `Clone`); one taking a slice does not.
        assert!(expanded.contains("differentiable (wrt (self , a , b))] fn __helper_gate"), "{expanded}");
        assert!(expanded.contains("self . __helper_gate (x , x , 1 , & [])"), "{expanded}");
        assert!(expanded.contains("self . __module_pair (x)"), "{expanded}");
        assert!(
            expanded.contains(
                "fn __module_pair < > (& self , x : & X) -> (X , X) where X : :: core :: clone :: Clone ,"
            ),
            "{expanded}"
        );
        // The plain forms call the plain helpers.
        assert!(
            expanded.contains("fn forward (& self , x : & X) -> X { let (a , b) = self . pair (x) ;"),
            "{expanded}"
        );
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
