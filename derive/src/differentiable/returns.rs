//! Early `return`s, rewritten away before lowering so that the function's value is
//! the tail of one expression:
//!
//! - `if c { …; return a; } rest` becomes `if c { …; a } else { rest }`; an arm that
//!   does not return gets `rest` after its own statements, and a missing `else` is
//!   `rest` alone;
//! - `match x { P => return a, Q => { … } } rest` becomes `match x { P => a, Q => {
//!   …; rest } }`;
//! - the statements after a `return` are dropped (they never run).
//!
//! Moving `rest` into an arm must not change what its names mean: when the arm
//! binds a name that `rest` reads (with `let`, its `match` pattern or an `if let`),
//! the statement is left as written and the lowering reports the early `return`.
//! Items (`const`, `fn`) stay in the outer block. Returns inside loops, closures,
//! blocks or a `let`'s value are left as written too (and reported).

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Block, Expr, ExprBlock, ExprIf, ExprMatch, Stmt, Token, parse_quote};

use super::lower::collect_pattern_names;

/// `block` with its early returns rewritten as branch values.
pub fn without_early_returns(block: &Block) -> Block {
    Block { brace_token: block.brace_token, stmts: rewrite(block.stmts.clone()) }
}

/// The statements of one block, each early return turned into a branch value.
fn rewrite(stmts: Vec<Stmt>) -> Vec<Stmt> {
    for (index, stmt) in stmts.iter().enumerate() {
        let returns = match stmt {
            Stmt::Expr(Expr::Return(_), _) => true,
            Stmt::Expr(expr @ (Expr::If(_) | Expr::Match(_)), _) => returns_inside(&expr.to_token_stream()),
            _ => false,
        };
        if !returns {
            continue;
        }
        // Items (`const`, `fn`, …) are seen by the whole block: they stay outside.
        let (items, rest): (Vec<Stmt>, Vec<Stmt>) =
            stmts[index + 1..].iter().cloned().partition(|stmt| matches!(stmt, Stmt::Item(_)));
        let rest = rest.as_slice();
        let replacement = match stmt {
            Stmt::Expr(Expr::Return(ret), _) => Some(match &ret.expr {
                Some(value) => (**value).clone(),
                None => parse_quote!(()),
            }),
            Stmt::Expr(Expr::If(branch), _) => rewrite_if(branch, rest).map(Expr::If),
            Stmt::Expr(Expr::Match(matched), _) => rewrite_match(matched, rest).map(Expr::Match),
            _ => None,
        };
        if let Some(tail) = replacement {
            let mut out = stmts[..index].to_vec();
            out.extend(items);
            out.push(Stmt::Expr(tail, None));
            return out;
        }
    }
    stmts
}

/// Both arms of `branch` followed by `rest` (an arm that returns drops it).
fn rewrite_if(branch: &ExprIf, rest: &[Stmt]) -> Option<ExprIf> {
    // `if let` binds names that `rest` would see inside the arm.
    if mentions(&branch.cond.to_token_stream(), "let") {
        return None;
    }
    let then_branch = continued(&branch.then_branch.stmts, &[], rest)?;
    let otherwise: Vec<Stmt> = match &branch.else_branch {
        Some((_, expr)) => continued(&arm_statements(expr), &[], rest)?,
        None => rest.to_vec(),
    };
    Some(ExprIf {
        then_branch: Block { brace_token: branch.then_branch.brace_token, stmts: rewrite(then_branch) },
        else_branch: Some((<Token![else]>::default(), Box::new(rewritten_block(otherwise)))),
        ..branch.clone()
    })
}

/// Every arm of `matched` followed by `rest` (an arm that returns drops it).
fn rewrite_match(matched: &ExprMatch, rest: &[Stmt]) -> Option<ExprMatch> {
    let mut arms = Vec::with_capacity(matched.arms.len());
    for arm in &matched.arms {
        let mut pattern_names = Vec::new();
        collect_pattern_names(&arm.pat, &mut pattern_names);
        let stmts = continued(&arm_statements(&arm.body), &pattern_names, rest)?;
        arms.push(syn::Arm {
            body: Box::new(rewritten_block(stmts)),
            comma: Some(Default::default()),
            ..arm.clone()
        });
    }
    Some(ExprMatch { arms, ..matched.clone() })
}

/// `{ stmts }`, its early returns rewritten.
fn rewritten_block(stmts: Vec<Stmt>) -> Expr {
    Expr::Block(ExprBlock {
        attrs: Vec::new(),
        label: None,
        block: Block { brace_token: Default::default(), stmts: rewrite(stmts) },
    })
}

/// The statements of an arm: a block's own, or the expression alone.
fn arm_statements(body: &Expr) -> Vec<Stmt> {
    match body {
        Expr::Block(block) if block.label.is_none() && block.attrs.is_empty() => block.block.stmts.clone(),
        other => vec![Stmt::Expr(other.clone(), None)],
    }
}

/// `stmts` (an arm's, whose pattern binds `pattern_names`) then `rest`, or `None`
/// when the arm binds a name that `rest` reads (moving `rest` in would change what
/// that name means). An arm that returns at its top level keeps its statements alone.
fn continued(stmts: &[Stmt], pattern_names: &[String], rest: &[Stmt]) -> Option<Vec<Stmt>> {
    if stmts.iter().any(|stmt| matches!(stmt, Stmt::Expr(Expr::Return(_), _))) {
        return Some(stmts.to_vec());
    }
    let mut bound = pattern_names.to_vec();
    for stmt in stmts {
        if let Stmt::Local(local) = stmt {
            collect_pattern_names(&local.pat, &mut bound);
        }
    }
    let rest_tokens: TokenStream = rest.iter().map(ToTokens::to_token_stream).collect();
    if bound.iter().any(|name| mentions(&rest_tokens, name)) {
        return None;
    }
    let mut out: Vec<Stmt> = stmts.to_vec();
    // The arm's own value (a unit, since it is followed by more) becomes a statement.
    if !rest.is_empty()
        && let Some(Stmt::Expr(_, semicolon @ None)) = out.last_mut()
    {
        *semicolon = Some(Default::default());
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// Whether `tokens` hold a `return` anywhere (one inside a loop or a closure is
/// left in place by the rewrite, which then only moves `rest` into the arms).
fn returns_inside(tokens: &TokenStream) -> bool {
    mentions(tokens, "return")
}

fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(&group.stream(), name),
        _ => false,
    })
}
