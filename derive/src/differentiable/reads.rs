//! Which variables a piece of plain code reads: the variables it names as
//! expressions, less the names its own closures, `let`s, `match` arms and `for`
//! loops bind over their scope. A field or method name (`p.x`, `p.x()`), a struct
//! literal's field name (`P { x: 1.0 }`) and a closure parameter (`|x| x + 1.0`)
//! read nothing of the function's; a macro's tokens are taken as read whole.

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use syn::visit::{self, Visit};
use syn::{Expr, Pat};

/// The first name in `tokens` that `wanted` accepts and that is read as a variable
/// of the enclosing code (tokens that are no expression: every identifier).
pub fn first_read(tokens: TokenStream, wanted: &dyn Fn(&str) -> bool) -> Option<String> {
    let mut reads = Reads { wanted, scopes: Vec::new(), found: Vec::new(), first_only: true };
    match syn::parse2::<Expr>(tokens.clone()) {
        Ok(expr) => reads.visit_expr(&expr),
        Err(_) => reads.read_tokens(tokens),
    }
    reads.found.into_iter().next()
}

/// Every name of the enclosing code that `block` reads and `wanted` accepts.
pub fn block_reads(block: &syn::Block, wanted: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut reads = Reads { wanted, scopes: Vec::new(), found: Vec::new(), first_only: false };
    reads.visit_block(block);
    reads.found
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

struct Reads<'a> {
    wanted: &'a dyn Fn(&str) -> bool,
    /// The names bound inside the code, innermost scope last.
    scopes: Vec<HashSet<String>>,
    /// The names read, in order, each once.
    found: Vec<String>,
    /// Whether to stop at the first.
    first_only: bool,
}

impl Reads<'_> {
    fn read(&mut self, name: &str) {
        let shadowed = self.scopes.iter().any(|scope| scope.contains(name));
        if !self.done() && !shadowed && (self.wanted)(name) && !self.found.iter().any(|found| found == name) {
            self.found.push(name.to_owned());
        }
    }

    /// Every identifier in `tokens` (a macro's, which are no expression to walk).
    fn read_tokens(&mut self, tokens: TokenStream) {
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => self.read(&ident.to_string()),
                proc_macro2::TokenTree::Group(group) => self.read_tokens(group.stream()),
                _ => {}
            }
        }
    }

    fn done(&self) -> bool {
        self.first_only && !self.found.is_empty()
    }

    /// `visit` with the names of `pats` bound.
    fn scoped<'p>(&mut self, pats: impl IntoIterator<Item = &'p Pat>, visit: impl FnOnce(&mut Self)) {
        self.scopes.push(pats.into_iter().flat_map(bound_names).collect());
        visit(self);
        self.scopes.pop();
    }
}

impl<'ast> Visit<'ast> for Reads<'_> {
    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        if path.qself.is_none()
            && let Some(ident) = path.path.get_ident()
        {
            self.read(&ident.to_string());
        }
        visit::visit_expr_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.read_tokens(mac.tokens.clone());
    }

    fn visit_expr_closure(&mut self, closure: &'ast syn::ExprClosure) {
        self.scoped(&closure.inputs, |reads| reads.visit_expr(&closure.body));
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.scoped([], |reads| visit::visit_block(reads, block));
    }

    /// The value first, then its names for the rest of the block.
    fn visit_local(&mut self, local: &'ast syn::Local) {
        if let Some(init) = &local.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(bound_names(&local.pat));
        }
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        self.scoped([&arm.pat], |reads| {
            if let Some((_, guard)) = &arm.guard {
                reads.visit_expr(guard);
            }
            reads.visit_expr(&arm.body);
        });
    }

    fn visit_expr_for_loop(&mut self, for_loop: &'ast syn::ExprForLoop) {
        self.visit_expr(&for_loop.expr);
        self.scoped([&*for_loop.pat], |reads| reads.visit_block(&for_loop.body));
    }
}
