//! Which variables a piece of plain code reads: the variables it names as
//! expressions, less the names its own closures, `let`s, `if let`s, `match` arms
//! and `for` loops bind over their scope. A field or method name (`p.x`, `p.x()`),
//! a struct literal's field name (`P { x: 1.0 }`) and a closure parameter (`|x| x +
//! 1.0`) read nothing of the function's; a macro's tokens are taken as read whole.
//! The same walk replaces the variables it reads ([`substitute`]).

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Pat};

/// The first name in `tokens` that `wanted` accepts and that is read as a variable
/// of the enclosing code (tokens that are no expression: every identifier).
pub fn first_read(tokens: TokenStream, wanted: &dyn Fn(&str) -> bool) -> Option<String> {
    let mut found = None;
    let mut read = |name: &str, _: bool| {
        if found.is_none() && wanted(name) {
            found = Some(name.to_owned());
        }
        None
    };
    match syn::parse2::<Expr>(tokens.clone()) {
        Ok(mut expr) => Walk { scopes: Vec::new(), read: &mut read }.visit_expr_mut(&mut expr),
        Err(_) => Walk { scopes: Vec::new(), read: &mut read }.read_tokens(tokens),
    }
    found
}

/// Every name of the enclosing code that `block` reads and `wanted` accepts.
pub fn block_reads(block: &syn::Block, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut read = |name: &str, _: bool| {
        if wanted(name) && !found.iter().any(|known| known == name) {
            found.push(name.to_owned());
        }
        None
    };
    Walk { scopes: Vec::new(), read: &mut read }.visit_block_mut(&mut block.clone());
    found
}

/// `expr` with each variable of the enclosing code it reads replaced by
/// `replacement(name, in_macro)` where that gives one (a read inside a macro is
/// reported, not replaced).
pub fn substitute(expr: &mut Expr, replacement: &mut dyn FnMut(&str, bool) -> Option<Expr>) {
    Walk { scopes: Vec::new(), read: replacement }.visit_expr_mut(expr);
}

/// An error at a value changed through a shared reference: a changing method (`set`,
/// `replace`, `take`, `swap`, `update`, `borrow_mut`, `lock`, `write`, `store`,
/// `fetch_…`) called on a parameter whose type is std's `Cell<…>`, `RefCell<…>`,
/// `Mutex<…>`, `RwLock<…>` or an atomic, or on a local made by their `new`. The
/// derivative code reruns parts of the body (loops from checkpoints, calls in
/// branches), which would read such a value changed, or change it twice. The check
/// reads the function's text: a type that changes a `Cell` inside methods of its own
/// is not seen.
pub fn reject_interior_mutability(signature: &syn::Signature, block: &syn::Block) -> syn::Result<()> {
    const SHARED_MUTABLE: &[&str] = &["Cell", "RefCell", "Mutex", "RwLock"];
    const ATOMICS: &[&str] = &[
        "AtomicBool",
        "AtomicUsize",
        "AtomicIsize",
        "AtomicU8",
        "AtomicU16",
        "AtomicU32",
        "AtomicU64",
        "AtomicI8",
        "AtomicI16",
        "AtomicI32",
        "AtomicI64",
    ];
    const CHANGING: &[&str] =
        &["set", "replace", "replace_with", "take", "swap", "update", "borrow_mut", "store"];
    /// Whether `path` names one of std's types with interior mutability (`Cell` and
    /// the like with a type argument, so that a type of the user's named `Cell`
    /// without one is not taken for it).
    fn shared_mutable(path: &syn::Path) -> Option<String> {
        let last = path.segments.last()?;
        let name = last.ident.to_string();
        let generic = !last.arguments.is_empty();
        (SHARED_MUTABLE.contains(&name.as_str()) && generic || ATOMICS.contains(&name.as_str()))
            .then_some(name)
    }
    /// The type a parameter's type refers to (through `&`).
    fn referent(ty: &syn::Type) -> &syn::Type {
        match ty {
            syn::Type::Reference(reference) => referent(&reference.elem),
            other => other,
        }
    }
    struct Finder {
        found: Option<(proc_macro2::Span, String)>,
        /// Bindings of a type with interior mutability, and the type.
        shared: HashMap<String, String>,
    }
    impl Finder {
        /// The type with interior mutability that `expr` gives: a `new` of one, or a
        /// binding of one (by reference too).
        fn shared_value(&self, expr: &Expr) -> Option<String> {
            match expr {
                Expr::Call(call) => {
                    let Expr::Path(function) = &*call.func else { return None };
                    let [.., owner, constructor] = function.path.segments.iter().collect::<Vec<_>>()[..]
                    else {
                        return None;
                    };
                    let name = owner.ident.to_string();
                    (constructor.ident == "new"
                        && SHARED_MUTABLE.iter().chain(ATOMICS).any(|shared| name == *shared))
                    .then_some(name)
                }
                Expr::Reference(reference) => self.shared_value(&reference.expr),
                Expr::Paren(inner) => self.shared_value(&inner.expr),
                Expr::Path(path) => {
                    path.path.get_ident().and_then(|name| self.shared.get(&name.to_string()).cloned())
                }
                _ => None,
            }
        }
    }
    impl Visit<'_> for Finder {
        fn visit_local(&mut self, local: &syn::Local) {
            // `let c = Cell::new(…)`, `let c: Cell<f64> = …`, `let c = &cell;`; any other
            // `let c` shadows a shared `c`.
            let (binding, ty) = match &local.pat {
                Pat::Ident(binding) => (Some(binding), None),
                Pat::Type(typed) => match &*typed.pat {
                    Pat::Ident(binding) => (Some(binding), Some(&*typed.ty)),
                    _ => (None, None),
                },
                _ => (None, None),
            };
            if let Some(binding) = binding {
                let name = binding.ident.to_string();
                let from_type = ty.and_then(|ty| match referent(ty) {
                    syn::Type::Path(path) => shared_mutable(&path.path),
                    _ => None,
                });
                let from_value = local.init.as_ref().and_then(|init| self.shared_value(&init.expr));
                match from_type.or(from_value) {
                    Some(ty) => self.shared.insert(name, ty),
                    None => self.shared.remove(&name),
                };
            }
            visit::visit_local(self, local);
        }
        fn visit_expr_method_call(&mut self, call: &syn::ExprMethodCall) {
            let method = call.method.to_string();
            if let Expr::Path(receiver) = &*call.receiver
                && let Some(name) = receiver.path.get_ident()
                && let Some(ty) = self.shared.get(&name.to_string())
                && (CHANGING.contains(&method.as_str())
                    || method.starts_with("fetch_")
                    || method.starts_with("compare_exchange"))
            {
                let what = format!("`{name}.{method}(…)` of a `{ty}`");
                self.found.get_or_insert((call.method.span(), what));
            }
            visit::visit_expr_method_call(self, call);
        }
    }
    let mut finder = Finder { found: None, shared: HashMap::new() };
    for input in &signature.inputs {
        if let syn::FnArg::Typed(typed) = input
            && let (Pat::Ident(binding), syn::Type::Path(ty)) = (&*typed.pat, referent(&typed.ty))
            && let Some(name) = shared_mutable(&ty.path)
        {
            finder.shared.insert(binding.ident.to_string(), name);
        }
    }
    finder.visit_block(block);
    match finder.found {
        Some((span, what)) => Err(syn::Error::new(
            span,
            format!(
                "`#[differentiable]` functions cannot change values through shared references ({what}): the derivative code reruns parts of the body (loops, calls in branches) and would see them changed; keep such state in `let mut` variables, or pass it as a plain value"
            ),
        )),
        None => Ok(()),
    }
}

/// The names of variables whose value may change while the function runs: bound
/// `mut` (by `block` or among the parameters, `(name, mutable)`), or bound more than
/// once (a later binding may shadow an earlier one).
pub fn changing_names(
    params: impl IntoIterator<Item = (String, bool)>,
    block: &syn::Block,
) -> HashSet<String> {
    #[derive(Default)]
    struct Bindings {
        count: HashMap<String, usize>,
        mutable: HashSet<String>,
    }
    impl Visit<'_> for Bindings {
        fn visit_pat_ident(&mut self, pat: &syn::PatIdent) {
            let name = pat.ident.to_string();
            if pat.mutability.is_some() {
                self.mutable.insert(name.clone());
            }
            *self.count.entry(name).or_default() += 1;
            visit::visit_pat_ident(self, pat);
        }
    }
    let mut bindings = Bindings::default();
    for (name, mutable) in params {
        if mutable {
            bindings.mutable.insert(name.clone());
        }
        bindings.count.insert(name, 1);
    }
    bindings.visit_block(block);
    let rebound = bindings.count.into_iter().filter(|(_, count)| *count > 1).map(|(name, _)| name);
    bindings.mutable.into_iter().chain(rebound).collect()
}

/// The names a pattern binds.
fn bound_names(pat: &Pat) -> HashSet<String> {
    struct Names(HashSet<String>);
    impl Visit<'_> for Names {
        fn visit_pat_ident(&mut self, pat: &syn::PatIdent) {
            self.0.insert(pat.ident.to_string());
            visit::visit_pat_ident(self, pat);
        }
    }
    let mut names = Names(HashSet::new());
    names.visit_pat(pat);
    names.0
}

struct Walk<'a> {
    /// The names bound inside the code, innermost scope last.
    scopes: Vec<HashSet<String>>,
    /// Called with each name read (and whether inside a macro); its expression, if
    /// any, replaces the read.
    read: &'a mut dyn FnMut(&str, bool) -> Option<Expr>,
}

impl Walk<'_> {
    fn shadowed(&self, name: &str) -> bool {
        self.scopes.iter().any(|scope| scope.contains(name))
    }

    /// Every identifier in `tokens` (a macro's, which are no expression to walk).
    fn read_tokens(&mut self, tokens: TokenStream) {
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    if !self.shadowed(&name) {
                        (self.read)(&name, true);
                    }
                }
                proc_macro2::TokenTree::Group(group) => self.read_tokens(group.stream()),
                _ => {}
            }
        }
    }

    /// A condition and the block it guards: a `let` condition's names are bound in
    /// the block.
    fn guarded_block(&mut self, condition: &mut Expr, block: &mut syn::Block) {
        match condition {
            Expr::Let(binding) => {
                self.visit_expr_mut(&mut binding.expr);
                let pat = (*binding.pat).clone();
                self.scoped([&pat], |walk| walk.visit_block_mut(block));
            }
            condition => {
                self.visit_expr_mut(condition);
                self.visit_block_mut(block);
            }
        }
    }

    /// `visit` with the names of `pats` bound.
    fn scoped<'p>(&mut self, pats: impl IntoIterator<Item = &'p Pat>, visit: impl FnOnce(&mut Self)) {
        self.scopes.push(pats.into_iter().flat_map(bound_names).collect());
        visit(self);
        self.scopes.pop();
    }
}

impl VisitMut for Walk<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Path(path) = expr
            && path.qself.is_none()
            && let Some(ident) = path.path.get_ident()
        {
            let name = ident.to_string();
            if !self.shadowed(&name)
                && let Some(replacement) = (self.read)(&name, false)
            {
                *expr = replacement;
            }
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    /// A shorthand field (`P { x }`) written out, so that its value can be replaced.
    fn visit_field_value_mut(&mut self, field: &mut syn::FieldValue) {
        field.colon_token.get_or_insert_with(Default::default);
        visit_mut::visit_field_value_mut(self, field);
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        self.read_tokens(mac.tokens.clone());
    }

    fn visit_expr_closure_mut(&mut self, closure: &mut syn::ExprClosure) {
        let inputs = closure.inputs.clone();
        self.scoped(&inputs, |walk| walk.visit_expr_mut(&mut closure.body));
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        self.scoped([], |walk| visit_mut::visit_block_mut(walk, block));
    }

    /// The value first, then its names for the rest of the block.
    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let Some(init) = &mut local.init {
            self.visit_expr_mut(&mut init.expr);
            if let Some((_, diverge)) = &mut init.diverge {
                self.visit_expr_mut(diverge);
            }
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(bound_names(&local.pat));
        }
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        let pat = arm.pat.clone();
        self.scoped([&pat], |walk| {
            if let Some((_, guard)) = &mut arm.guard {
                walk.visit_expr_mut(guard);
            }
            walk.visit_expr_mut(&mut arm.body);
        });
    }

    /// `if let pat = value { then } else { … }`: the pattern's names in `then` only.
    fn visit_expr_if_mut(&mut self, branch: &mut syn::ExprIf) {
        self.guarded_block(&mut branch.cond, &mut branch.then_branch);
        if let Some((_, otherwise)) = &mut branch.else_branch {
            self.visit_expr_mut(otherwise);
        }
    }

    /// `while let pat = value { body }`: the pattern's names in the body.
    fn visit_expr_while_mut(&mut self, looped: &mut syn::ExprWhile) {
        self.guarded_block(&mut looped.cond, &mut looped.body);
    }

    /// A nested function reads none of the enclosing code's variables.
    fn visit_item_fn_mut(&mut self, _: &mut syn::ItemFn) {}

    fn visit_expr_for_loop_mut(&mut self, for_loop: &mut syn::ExprForLoop) {
        self.visit_expr_mut(&mut for_loop.expr);
        let pat = (*for_loop.pat).clone();
        self.scoped([&pat], |walk| walk.visit_block_mut(&mut for_loop.body));
    }
}
