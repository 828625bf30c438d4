//! Lowering of a function body to single-assignment form with activity analysis.
//!
//! A value is *active* when it depends on a differentiated argument. Every active
//! operation becomes one [`Op`] whose output is a fresh active value; everything else
//! stays the user's own Rust, kept verbatim as a [`Stmt::Plain`] or inlined as a
//! constant operand. Field accesses of active values are places, not copies.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Ident, Member, Pat, Stmt as SynStmt, UnOp};

/// Where an active value comes from.
#[derive(Clone)]
pub enum Def {
    /// A function parameter (`by_ref`: its type is a reference). `aliased`: the body
    /// rebinds its name, so the derivative code reads it through `__p{id}`, bound at
    /// entry (a copy of the reference, or a clone of the value).
    Param { ident: Ident, by_ref: bool, aliased: bool },
    /// The output of the operation with this index.
    Op,
    /// A field of another active value.
    Field { base: usize, member: Member },
}

/// An operand of an active operation.
#[derive(Clone)]
pub enum Operand {
    /// An active value.
    Active(usize),
    /// A constant, bound to this local: a reference to the value, or the value itself
    /// when `owned` (inside an `if` or `match` arm, whose locals the reverse sweep
    /// reads after the arm has ended).
    Constant { name: Ident, owned: bool },
}

/// An argument of a call of another differentiable function.
#[derive(Clone)]
pub struct CallArg {
    pub operand: Operand,
    /// Written `&x` by the user (passed by reference), else passed by value (a clone
    /// of an active value, which the reverse sweep still needs).
    pub by_ref: bool,
    /// Where the user wrote it: its first and last tokens' spans, which the argument
    /// in a companion's call takes, so that an unmet bound the call puts on the
    /// argument is reported as at the user's call, once.
    pub written: (Span, Span),
}

/// The spans of `tokens`' first and last tokens (a group's whole span for a group).
pub fn first_and_last_spans(tokens: impl ToTokens) -> (Span, Span) {
    let mut tokens = tokens.into_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |token| token.span());
    (first, tokens.last().map_or(first, |token| token.span()))
}

/// What an active operation does.
#[derive(Clone)]
pub enum OpKind {
    /// A primitive with a `UnaryRule`.
    Unary { rule: TokenStream, x: usize },
    /// A primitive with a `BinaryRule`.
    Binary { rule: TokenStream, a: Operand, b: Operand },
    /// `function.apply([&x₁, …, &x_N])`: a `FusedFunction` (a constant) of N
    /// operands, by the rule `FusedOperand`.
    Fused { function: Operand, inputs: Vec<Operand> },
    /// An array, tuple or struct of values, some differentiated.
    Gather { into: Collection, elements: Vec<Operand> },
    /// A plain value taken as a differentiated one (zero tangent, no pullback): a
    /// plain variable that a loop makes differentiated.
    Lift(TokenStream),
    /// A call of a `#[differentiable]` function (`callee` names its companions'
    /// prefix) or method (`method`, with the receiver as the first argument).
    Call { callee: CallTarget, args: Vec<CallArg> },
}

/// What an [`OpKind::Gather`] builds.
#[derive(Clone)]
pub enum Collection {
    Array,
    Tuple,
    /// A struct literal `path { member: element, …, ..rest }` (the fields not named
    /// come from `rest`, a plain value): its tangent is the struct's zero tangent with
    /// the named fields' tangents in place, so the tangent type needs no name.
    Struct {
        path: syn::Path,
        members: Vec<Member>,
        rest: Option<TokenStream>,
    },
}

/// The function or method a [`OpKind::Call`] calls.
#[derive(Clone)]
pub enum Callee {
    /// `path::to::f`: companions `path::to::f::__vjp` and `__jvp`.
    Function(syn::Path),
    /// `receiver.name(…)`: companions `__vjp_name` and `__jvp_name`.
    Method(Ident),
    /// `Owner::name(…)` (`Self::name`, `Type::name`, `Type::<T>::name`), an associated
    /// function without `self`: companions `Owner::__vjp_name` and `Owner::__jvp_name`.
    Associated { owner: syn::Path, name: Ident },
    /// `path::to::f::grad(…)`, the gradient of a `#[differentiable]` function:
    /// companions `path::to::f::__grad_jvp`, … (`path` names `f`).
    Gradient(syn::Path),
}

/// A call's callee with the type and const arguments its turbofish names
/// (`f::<T, 3>(x)`), which its companions take first.
#[derive(Clone)]
pub struct CallTarget {
    pub callee: Callee,
    pub generics: Vec<TokenStream>,
}

/// The type and const arguments of a turbofish (lifetimes are left to inference: the
/// companions declare lifetimes of their own).
fn turbofish_arguments(arguments: Option<&syn::AngleBracketedGenericArguments>) -> Vec<TokenStream> {
    arguments
        .into_iter()
        .flat_map(|arguments| &arguments.args)
        .filter(|argument| !matches!(argument, syn::GenericArgument::Lifetime(_)))
        .map(ToTokens::to_token_stream)
        .collect()
}

/// One active operation.
#[derive(Clone)]
pub struct Op {
    pub out: usize,
    pub kind: OpKind,
    pub span: Span,
}

/// One statement of the forward program.
#[derive(Clone)]
pub enum Stmt {
    /// The user's own code, not differentiated.
    Plain(TokenStream),
    /// An active operation (index into [`Body::ops`]).
    Op(usize),
    /// An `if` or `match` with differentiated values in its arms (index into
    /// [`Body::branches`]).
    Branch(usize),
    /// A `for` loop with differentiated values in its body (index into
    /// [`Body::loops`]).
    Loop(usize),
}

/// How a branch picks its arm: a condition not differentiated, or a `match` on a
/// scrutinee not differentiated (each arm's pattern with its guard).
#[derive(Clone)]
pub enum Selector {
    If(TokenStream),
    Match { scrutinee: TokenStream, patterns: Vec<TokenStream> },
}

/// One arm of a branch.
#[derive(Clone)]
pub struct Arm {
    pub stmts: Vec<Stmt>,
    pub output: Lowered,
    /// The generated locals the arm defines, kept for the reverse sweep.
    pub stored: Vec<Ident>,
    /// The values the arm defines (ids `values.start..values.end`).
    pub values: core::ops::Range<usize>,
}

/// A differentiated value a loop carries from one iteration to the next.
#[derive(Clone)]
pub struct Carried {
    /// Its value before the loop.
    pub entry: usize,
    /// Its value at the start of an iteration.
    pub inner: usize,
    /// Its value at the end of an iteration.
    pub exit: usize,
    /// Its value after the loop.
    pub result: usize,
}

/// A `for` or `while` loop whose body reads differentiated values.
#[derive(Clone)]
pub struct Loop {
    pub pattern: TokenStream,
    /// The iterator (not differentiated), kept to run the loop again; a `while`
    /// loop's is `repeat(())`.
    pub range: TokenStream,
    /// A `while` loop's condition (not differentiated), tested before each iteration
    /// of the forward sweep on the values at its start.
    pub condition: Option<TokenStream>,
    /// Whether the body may leave the loop (a guarded `break`, see `LoopSyntax`):
    /// the forward sweep then counts the iterations as they run.
    pub leaves_early: bool,
    pub carried: Vec<Carried>,
    /// Plain variables the body assigns, or reads where they change later, kept in
    /// the checkpoints of a loop that the reverse sweep runs again.
    pub plain_state: Vec<Ident>,
    pub body: Vec<Stmt>,
    /// The values the body defines.
    pub values: core::ops::Range<usize>,
    /// The number of iterations when the iterator spells it with integer literals
    /// (`0..6`, `(1..=16).rev()`) and it is at most `STORED_TRIP_COUNT`: the forward
    /// sweep then keeps each iteration's values (`stored`) for the reverse sweep,
    /// which needs no recomputation — in one local per iteration, unrolled, for a
    /// loop with no loop directly inside, and in an array otherwise.
    pub trip_count: Option<usize>,
    /// The generated locals of one iteration.
    pub stored: Vec<Ident>,
}

/// A loop as the lowering sees it: `for pattern in iterator { body }`, or
/// `while condition { body }` (no pattern, no iterator), or `loop { body }` (neither).
/// It `leaves_early` when its body has a top-level `if test { break; }` after `let`s
/// only: the forward sweep runs the `let`s, tests and leaves there (the statement
/// lowers as a plain `if`), counting the iterations that ran to their end, which the
/// reverse sweep reruns without the test holding again.
struct LoopSyntax<'a> {
    label: Option<&'a syn::Label>,
    keyword: Span,
    pattern: Option<&'a Pat>,
    iterator: Option<&'a Expr>,
    condition: Option<&'a Expr>,
    body: &'a syn::Block,
    leaves_early: bool,
}

impl<'a> LoopSyntax<'a> {
    fn from_for(for_loop: &'a syn::ExprForLoop) -> syn::Result<Self> {
        Ok(LoopSyntax {
            label: for_loop.label.as_ref(),
            keyword: for_loop.for_token.span,
            pattern: Some(&for_loop.pat),
            iterator: Some(&for_loop.expr),
            condition: None,
            body: &for_loop.body,
            leaves_early: leaves_early(&for_loop.body)?,
        })
    }

    fn from_while(while_loop: &'a syn::ExprWhile) -> syn::Result<Self> {
        if let Expr::Let(_) = &*while_loop.cond {
            return Err(syn::Error::new(
                while_loop.cond.span(),
                "`#[differentiable]` does not differentiate through `while let`; loop over a range, or test a `bool`",
            ));
        }
        Ok(LoopSyntax {
            label: while_loop.label.as_ref(),
            keyword: while_loop.while_token.span,
            pattern: None,
            iterator: None,
            condition: Some(&while_loop.cond),
            body: &while_loop.body,
            leaves_early: leaves_early(&while_loop.body)?,
        })
    }

    /// A `loop`, which the lowering takes only when it leaves early.
    fn from_loop(endless: &'a syn::ExprLoop) -> syn::Result<Self> {
        if !leaves_early(&endless.body)? {
            return Err(syn::Error::new(
                endless.loop_token.span,
                "`#[differentiable]` takes a `loop` whose body tests `if condition { break; }` at its top level, after `let`s only; write this one as `while condition { … }`",
            ));
        }
        Ok(LoopSyntax {
            label: endless.label.as_ref(),
            keyword: endless.loop_token.span,
            pattern: None,
            iterator: None,
            condition: None,
            body: &endless.body,
            leaves_early: true,
        })
    }
}

/// Whether `body` leaves its loop early by a top-level `if test { break; }` with only
/// `let`s before it; an error at any other `break` or `continue` of this loop (those
/// of a loop inside it are that loop's), or at a statement before the test.
fn leaves_early(body: &syn::Block) -> syn::Result<bool> {
    let guarded = body.stmts.iter().position(|stmt| guarded_break(stmt).is_some());
    let mut exits = LoopExits { depth: 0, found: None };
    for (position, stmt) in body.stmts.iter().enumerate() {
        if Some(position) != guarded {
            syn::visit::Visit::visit_stmt(&mut exits, stmt);
        }
    }
    if let Some((span, keyword)) = exits.found {
        return Err(syn::Error::new(
            span,
            format!(
                "`#[differentiable]` leaves a loop over differentiated values only by a top-level `if condition {{ break; }}` with only `let`s before it: this `{keyword}` is not supported"
            ),
        ));
    }
    let Some(position) = guarded else { return Ok(false) };
    if let Some(stmt) = body.stmts[..position].iter().find(|stmt| !matches!(stmt, SynStmt::Local(_))) {
        return Err(syn::Error::new(
            stmt.span(),
            "`#[differentiable]` takes a loop's `if … { break; }` after `let`s only: this statement changes the state before the test (move it after the test)",
        ));
    }
    Ok(true)
}

/// The first `break` or `continue` of a loop's own (outside the loops and closures
/// inside it), with its keyword.
struct LoopExits {
    depth: usize,
    found: Option<(Span, &'static str)>,
}

impl LoopExits {
    fn nested(&mut self, visit: impl FnOnce(&mut Self)) {
        self.depth += 1;
        visit(self);
        self.depth -= 1;
    }
}

impl<'ast> syn::visit::Visit<'ast> for LoopExits {
    fn visit_expr_break(&mut self, leave: &'ast syn::ExprBreak) {
        if self.depth == 0 && self.found.is_none() {
            self.found = Some((leave.break_token.span, "break"));
        }
        syn::visit::visit_expr_break(self, leave);
    }
    fn visit_expr_continue(&mut self, next: &'ast syn::ExprContinue) {
        if self.depth == 0 && self.found.is_none() {
            self.found = Some((next.continue_token.span, "continue"));
        }
    }
    fn visit_expr_for_loop(&mut self, inner: &'ast syn::ExprForLoop) {
        self.nested(|exits| syn::visit::visit_expr_for_loop(exits, inner));
    }
    fn visit_expr_while(&mut self, inner: &'ast syn::ExprWhile) {
        self.nested(|exits| syn::visit::visit_expr_while(exits, inner));
    }
    fn visit_expr_loop(&mut self, inner: &'ast syn::ExprLoop) {
        self.nested(|exits| syn::visit::visit_expr_loop(exits, inner));
    }
    fn visit_expr_closure(&mut self, inner: &'ast syn::ExprClosure) {
        self.nested(|exits| syn::visit::visit_expr_closure(exits, inner));
    }
}

/// The test of `if test { break; }` (no `else`, no label, no value).
fn guarded_break(stmt: &SynStmt) -> Option<&Expr> {
    let SynStmt::Expr(Expr::If(branch), _) = stmt else { return None };
    let [SynStmt::Expr(Expr::Break(leave), _)] = branch.then_branch.stmts.as_slice() else { return None };
    (branch.else_branch.is_none() && leave.label.is_none() && leave.expr.is_none()).then_some(&*branch.cond)
}

/// A lowered loop body (see `Lowering::loop_body`).
struct LoweredBody {
    stmts: Vec<Stmt>,
    condition: Option<TokenStream>,
    carried: Vec<(usize, usize)>,
    assigned_ends: Vec<Option<usize>>,
    stored: Vec<Ident>,
}

/// An `if` or `match` whose value (`result`) is differentiated.
#[derive(Clone)]
pub struct Branch {
    pub selector: Selector,
    pub arms: Vec<Arm>,
    pub result: usize,
}

/// A lowered function body.
pub struct Body {
    pub stmts: Vec<Stmt>,
    pub ops: Vec<Op>,
    pub branches: Vec<Branch>,
    pub loops: Vec<Loop>,
    pub values: Vec<Def>,
    /// Fields of each active value, in the order they were first read.
    pub fields: Vec<Vec<usize>>,
    /// The result.
    pub output: Lowered,
    /// The forward sweep keeps something that may borrow the function's own locals
    /// (a loop's iterator over a local, indices or a constant call argument held by
    /// reference): a `__record` companion, whose pullback outlives the function,
    /// recomputes its forward sweep from the arguments instead of keeping it.
    pub keeps_borrows: bool,
}

/// A lowered expression.
#[derive(Clone)]
pub enum Lowered {
    Active(usize),
    /// Not differentiated: this expression, evaluated where it stands; `by_ref` when
    /// it evaluates to a reference to the value (a reference parameter, `&e`).
    Inactive {
        tokens: TokenStream,
        by_ref: bool,
    },
}

impl Lowered {
    fn plain(tokens: TokenStream) -> Self {
        Lowered::Inactive { tokens, by_ref: false }
    }

    fn is_inactive(&self) -> bool {
        matches!(self, Lowered::Inactive { .. })
    }
}

#[derive(Clone, Copy)]
enum Binding {
    Active(usize),
    Inactive,
    /// A parameter of reference type that is not differentiated: read as `(*name)`.
    InactiveReference,
}

/// A parameter as the lowering sees it.
pub struct Param {
    pub ident: Ident,
    pub by_ref: bool,
    pub differentiated: bool,
    pub mutable: bool,
}

#[derive(Clone)]
struct Lowering {
    stmts: Vec<Stmt>,
    ops: Vec<Op>,
    branches: Vec<Branch>,
    loops: Vec<Loop>,
    /// The generated locals of each arm being lowered (innermost last).
    arm_locals: Vec<Vec<Ident>>,
    values: Vec<Def>,
    fields: Vec<Vec<usize>>,
    field_ids: HashMap<(usize, String), usize>,
    names: HashMap<String, Binding>,
    constants: usize,
    /// Every constant operand held as an owned clone, not a reference, except a
    /// reference parameter's (which outlives the call): for a `__record` companion,
    /// whose pullback closure outlives the function's locals.
    owned_constants: bool,
    /// The parameters taken by reference and not differentiated, while no local
    /// shadows them.
    reference_params: HashSet<String>,
    /// See [`Body::keeps_borrows`].
    keeps_borrows: bool,
    /// The names the function assigns anywhere (`x = …`, `x += …`).
    assigned: Vec<String>,
    /// The names of variables that may change (`mut`, or bound more than once).
    changing: HashSet<String>,
    /// The function's scalar type parameters (`T` in `T::sqrt(x)`).
    type_params: HashSet<String>,
    /// Per loop body or arm being lowered (innermost last): the outer variables it
    /// may assign, each with its binding when a `let` in the scope shadowed it (its
    /// value at the scope's end, which the name no longer reaches).
    shadowed: Vec<(Vec<String>, HashMap<String, Option<Binding>>)>,
    /// Per arm or loop body being lowered (innermost last): the names it declares
    /// (`let`s, a loop's pattern), which its reverse sweep may not see — an arm's is
    /// emitted outside the arm, a kept loop's does not run the body again.
    declared: Vec<(Enclosing, HashSet<String>)>,
    /// The names bound to a reference of a differentiated value (`let r = &z;`),
    /// which name the value itself here.
    reference_names: HashSet<String>,
}

/// A block whose reverse sweep is emitted apart from its forward code.
#[derive(Clone, Copy, PartialEq)]
enum Enclosing {
    Arm,
    LoopBody,
}

/// Lowers `block`, whose parameters are `params` (each bound to active value `i`
/// when differentiated); `owned_constants` as for a `__record` companion.
pub fn lower(
    params: &[Param],
    type_params: &HashSet<String>,
    block: &syn::Block,
    owned_constants: bool,
) -> syn::Result<Body> {
    let mut lowering = Lowering {
        owned_constants,
        type_params: type_params.clone(),
        reference_params: HashSet::new(),
        keeps_borrows: false,
        assigned: {
            let mut assigned = Vec::new();
            collect_assigned_anywhere(&block.stmts, &mut assigned);
            assigned
        },
        shadowed: Vec::new(),
        declared: Vec::new(),
        reference_names: HashSet::new(),
        changing: super::reads::changing_names(
            params.iter().map(|param| (param.ident.to_string(), param.mutable)),
            block,
        ),
        stmts: Vec::new(),
        ops: Vec::new(),
        branches: Vec::new(),
        loops: Vec::new(),
        arm_locals: Vec::new(),
        values: Vec::new(),
        fields: Vec::new(),
        field_ids: HashMap::new(),
        names: HashMap::new(),
        constants: 0,
    };
    for param in params {
        let binding = if param.differentiated {
            let (ident, by_ref) = (param.ident.clone(), param.by_ref);
            let aliased = lowering.changing.contains(&ident.to_string());
            let id = lowering.new_value(Def::Param { ident: ident.clone(), by_ref, aliased });
            if aliased {
                let alias = format_ident!("__p{}", id);
                let value =
                    if by_ref { quote!(#ident) } else { quote!(::core::clone::Clone::clone(&#ident)) };
                lowering.stmts.push(Stmt::Plain(quote!(let #alias = #value;)));
            }
            Binding::Active(id)
        } else if param.by_ref {
            Binding::InactiveReference
        } else {
            Binding::Inactive
        };
        lowering.names.insert(param.ident.to_string(), binding);
        if param.by_ref && !param.differentiated {
            lowering.reference_params.insert(param.ident.to_string());
        }
    }
    let output = lowering.block(block)?;
    Ok(Body {
        stmts: lowering.stmts,
        ops: lowering.ops,
        branches: lowering.branches,
        loops: lowering.loops,
        values: lowering.values,
        fields: lowering.fields,
        output,
        keeps_borrows: lowering.keeps_borrows,
    })
}

/// The elementwise functions with a rule in `Elementary`, by method name.
const ELEMENTARY: &[(&str, &str)] = &[
    ("exp", "Exp"),
    ("ln", "Ln"),
    ("sin", "Sin"),
    ("cos", "Cos"),
    ("tanh", "Tanh"),
    ("sqrt", "Sqrt"),
    ("sigmoid", "Sigmoid"),
];

/// Methods of one operand with a marker rule.
const UNARY_METHODS: &[(&str, &str)] = &[
    ("relu", "Relu"),
    ("sum", "Summation"),
    ("mean", "Mean"),
    ("norm", "EuclideanNorm"),
    ("transpose", "Transposition"),
    ("conj_transpose", "ConjugateTransposition"),
    ("diagonal", "Diagonal"),
    ("cross_matrix", "CrossMatrix"),
    ("diagonal_matrix", "DiagonalMatrix"),
    ("symmetric_eigenvalues", "SymmetricEigenvalues"),
    ("symmetric_eigenvectors", "SymmetricEigenvectors"),
    ("symmetric_eigen", "SymmetricEigendecomposition"),
    ("hermitian_eigenvalues", "HermitianEigenvalues"),
    ("hermitian_eigen", "HermitianEigendecomposition"),
    ("inverse", "MatrixInverse"),
    ("matrix_exp", "MatrixExponential"),
    ("determinant", "Determinant"),
    ("log_abs_determinant", "LogAbsDeterminant"),
    ("cholesky", "CholeskyFactor"),
    ("qr", "QrDecomposition"),
    ("singular_values", "SingularValues"),
    ("svd", "SingularValueDecomposition"),
    ("pseudo_inverse", "PseudoInverse"),
    ("abs", "Absolute"),
    ("tan", "Tan"),
    ("atan", "ArcTan"),
    ("asin", "ArcSin"),
    ("acos", "ArcCos"),
    ("erf", "ErrorFunction"),
    ("erfc", "ComplementaryErrorFunction"),
    ("recip", "Reciprocal"),
    ("cbrt", "CubeRoot"),
    ("sinh", "HyperbolicSine"),
    ("cosh", "HyperbolicCosine"),
    ("asinh", "HyperbolicArcSine"),
    ("acosh", "HyperbolicArcCosine"),
    ("atanh", "HyperbolicArcTangent"),
    ("ln_1p", "LnOnePlus"),
    ("exp_m1", "ExpMinusOne"),
    ("exp2", "PowerOfTwo"),
    ("log2", "BinaryLogarithm"),
    ("log10", "DecimalLogarithm"),
    ("to_radians", "DegreesToRadians"),
    ("to_degrees", "RadiansToDegrees"),
    ("signum", "Sign"),
    ("floor", "Floor"),
    ("ceil", "Ceiling"),
    ("round", "Rounding"),
    ("trunc", "Truncation"),
    ("fract", "FractionalPart"),
    ("sin_cos", "SineCosine"),
    ("max_pool2d", "MaxPooling"),
    ("avg_pool2d", "AveragePooling"),
    ("flatten_images", "ImageFlattening"),
    ("conj", "Conjugation"),
    ("re", "RealPart"),
    ("to_complex", "ToComplex"),
    ("im", "ImaginaryPart"),
    ("norm_sqr", "NormSquared"),
    ("narrow", "Narrowing"),
];

/// Reshapes, whose rule is built by `new()` with the target from the turbofish.
const RESHAPES: &[(&str, &str)] = &[("reshape", "Reshaping"), ("flatten", "Flattening")];

/// Methods of one operand and one plain argument (an axis, ε, a scalar function),
/// with the rule built from the argument.
const ARGUMENT_METHODS: &[(&str, &str)] = &[
    ("normalize_rows", "RowNormalization"),
    ("broadcast_axis", "AxisBroadcast"),
    ("permute", "AxisPermutation"),
    ("sum_axis", "SumAxis"),
    ("mean_axis", "MeanAxis"),
    ("logsumexp", "LogSumExp"),
    ("softmax", "SoftmaxAlong"),
    ("log_softmax", "LogSoftmaxAlong"),
    ("max_axis", "MaxAxis"),
    ("gather_rows", "RowGathering"),
    ("row", "RowSelection"),
    ("column", "ColumnSelection"),
    ("map_function", "FunctionMap"),
];

/// The named elementwise functions of `ops::functions`, by method name: each the
/// `FunctionMap` rule of its scalar function.
const NAMED_FUNCTIONS: &[(&str, &str)] =
    &[("softplus", "SoftplusFunction"), ("silu", "SiluFunction"), ("leaky_relu", "LeakyReluFunction")];

/// Methods of two operands with a marker rule.
const BINARY_METHODS: &[(&str, &str)] = &[
    ("matmul", "MatrixProduct"),
    ("matmul_transposed", "MatrixTransposedProduct"),
    ("transposed_matmul", "TransposedMatrixProduct"),
    ("add_rows", "RowAddition"),
    ("mul_rows", "RowMultiplication"),
    ("add_channels", "ChannelAddition"),
    ("mul_channels", "ChannelMultiplication"),
    ("hadamard", "HadamardProduct"),
    ("outer", "OuterProduct"),
    ("kron", "KroneckerProduct"),
    ("cross", "CrossProduct"),
    ("dot", "DotProduct"),
    ("inner", "InnerProduct"),
    ("maximum", "ElementwiseMaximum"),
    ("minimum", "ElementwiseMinimum"),
    ("scale", "Multiplication"),
    ("max", "Maximum"),
    ("min", "Minimum"),
    ("atan2", "ArcTan2"),
    ("hypot", "Hypotenuse"),
    ("rem_euclid", "EuclideanRemainder"),
    ("copysign", "SignCopy"),
    ("solve", "LinearSolve"),
    ("solve_lower_triangular", "LowerTriangularSolve"),
    ("solve_upper_triangular", "UpperTriangularSolve"),
    ("least_squares", "LeastSquares"),
];

/// The companions of a `#[differentiable]` function other than `grad`, which a body
/// does not differentiate (`f::vjp(x)` there is an error saying so).
const OTHER_COMPANIONS: &[&str] = &[
    "value_and_grad",
    "value_and_grad_into",
    "vjp",
    "jvp",
    "linearize",
    "jacfwd",
    "jacrev",
    "hvp",
    "hessian",
];

/// Methods that read a size, not a value: plain results even on a differentiated
/// value.
const PLAIN_QUERIES: &[&str] = &[
    "len",
    "is_empty",
    "shape",
    "dims",
    "is_nan",
    "is_finite",
    "is_infinite",
    "is_sign_positive",
    "is_sign_negative",
];

/// Methods of scalars and tensors that have no rule in static mode yet: a call on a
/// differentiated value is an error naming the method (any other method is taken
/// for a `#[differentiable]` method of the receiver's type).
const WITHOUT_RULE: &[&str] =
    &["broadcast", "dotu", "iter", "log", "min_axis", "sin_cos", "to_array", "to_vec"];

/// The convolution methods (rule `Convolution<P, HO, WO, S>`) and the plain arguments
/// each takes after the kernels: none for `conv2d(w)` (S = 1, P = 0), a `Padding`
/// for `conv2d_padded(w, padding)` (S = 1), a `Stride` and a `Padding` for
/// `conv2d_strided(w, stride, padding)`.
const CONVOLUTIONS: &[(&str, usize)] = &[("conv2d", 0), ("conv2d_padded", 1), ("conv2d_strided", 2)];

/// The rule of a convolution call with `plain_arguments` plain arguments after the
/// kernels, with the sizes its turbofish gives (`conv2d::<O, KH, KW, HO, WO>`,
/// `conv2d_padded::<P, …>`, `conv2d_strided::<S, P, …>`) or left to inference; the
/// plain arguments then build it (`Convolution::from((stride, padding))`).
fn convolution_rule(call: &syn::ExprMethodCall, plain_arguments: usize, span: Span) -> TokenStream {
    let rule = rule_path("Convolution", span);
    let sizes: Vec<_> = call.turbofish.iter().flat_map(|turbofish| &turbofish.args).collect();
    match (plain_arguments, sizes.as_slice()) {
        (0, [_, _, _, ho, wo]) => quote_spanned!(span=> #rule::<0, #ho, #wo, 1>),
        (0, _) => quote_spanned!(span=> #rule::<0, _, _, 1>),
        (1, [p, _, _, _, ho, wo]) => quote_spanned!(span=> #rule::<#p, #ho, #wo, 1>),
        (2, [s, p, _, _, _, ho, wo]) => quote_spanned!(span=> #rule::<#p, #ho, #wo, #s>),
        _ => rule,
    }
}

/// Methods of one operand and plain arguments (a pooling's window, stride and
/// padding; a group count and ε), with the rule built from the tuple of the
/// arguments: `(method, rule, number of arguments)`.
const PLAIN_ARGUMENTS_METHODS: &[(&str, &str, usize)] = &[
    ("max_pool2d_strided", "MaxPooling", 3),
    ("avg_pool2d_strided", "AveragePooling", 3),
    ("normalize_groups", "GroupNormalization", 2),
];

/// The rule of a call of [`PLAIN_ARGUMENTS_METHODS`] with the sizes its turbofish
/// gives, or left to inference: a pooling's (`max_pool2d_strided::<K, S, P, HO, WO>`,
/// the rule's order being `<K, HO, WO, P, S>`), a group count
/// (`normalize_groups::<G>`, the rule's `<G, _>`).
fn plain_arguments_rule(call: &syn::ExprMethodCall, rule: &str, span: Span) -> TokenStream {
    let rule = rule_path(rule, span);
    let sizes: Vec<_> = call.turbofish.iter().flat_map(|turbofish| &turbofish.args).collect();
    match sizes.as_slice() {
        [k, s, p, ho, wo] => quote_spanned!(span=> #rule::<#k, #ho, #wo, #p, #s>),
        [groups] => quote_spanned!(span=> #rule::<#groups, _>),
        _ => rule,
    }
}

fn rule_path(name: &str, span: Span) -> TokenStream {
    let name = Ident::new(name, span);
    quote_spanned!(span=> ::fluxion::autodiff::rules::#name)
}

impl Lowering {
    fn new_value(&mut self, def: Def) -> usize {
        self.values.push(def);
        self.fields.push(Vec::new());
        self.values.len() - 1
    }

    fn block(&mut self, block: &syn::Block) -> syn::Result<Lowered> {
        self.block_with_tail(block, true)
    }

    /// A block whose last expression, when it has no semicolon, is its value
    /// (`tail_is_value`) or one more statement (a loop body's, whose value is `()`:
    /// `{ s = s * x; count += 1.0 }`).
    fn block_with_tail(&mut self, block: &syn::Block, tail_is_value: bool) -> syn::Result<Lowered> {
        let count = block.stmts.len();
        for (index, stmt) in block.stmts.iter().enumerate() {
            let tail = index + 1 == count;
            let last = tail && tail_is_value;
            match stmt {
                SynStmt::Local(local) => self.local(local)?,
                SynStmt::Item(item) => self.stmts.push(Stmt::Plain(item.to_token_stream())),
                SynStmt::Expr(expr @ (Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_)), None) if last => {
                    self.statement(expr, false)?;
                    return Ok(Lowered::plain(quote!(())));
                }
                SynStmt::Expr(Expr::If(branch), None) if last && branch.else_branch.is_none() => {
                    self.statement(&Expr::If(branch.clone()), false)?;
                    return Ok(Lowered::plain(quote!(())));
                }
                SynStmt::Expr(expr, None) if last => return self.expr(expr),
                // Returns that can become branch values are rewritten before lowering
                // (`returns`); one left here would leave from inside a value.
                SynStmt::Expr(Expr::Return(ret), _) => {
                    return Err(syn::Error::new(ret.return_token.span, RETURN_UNSUPPORTED));
                }
                SynStmt::Expr(expr, semi) => self.statement(expr, semi.is_some() || tail)?,
                SynStmt::Macro(mac) => {
                    self.reject_if_active(mac.to_token_stream(), mac.span(), "a macro")?;
                    self.stmts.push(Stmt::Plain(mac.to_token_stream()));
                }
            }
        }
        Ok(Lowered::plain(quote!(())))
    }

    fn local(&mut self, local: &syn::Local) -> syn::Result<()> {
        let Some(init) = &local.init else {
            return Err(syn::Error::new(local.span(), "`#[differentiable]` needs `let` to have a value"));
        };
        if contains_word(init.expr.to_token_stream(), "return") {
            return Err(syn::Error::new(init.expr.span(), RETURN_UNSUPPORTED));
        }
        if let Some((_, diverge)) = &init.diverge {
            self.reject_if_active(diverge.to_token_stream(), diverge.span(), "`let … else`")?;
        }
        let mut bound = Vec::new();
        collect_pattern_names(&local.pat, &mut bound);
        if let Some((_, declared)) = self.declared.last_mut() {
            declared.extend(bound.iter().cloned());
        }
        if let Some((tracked, shadowed)) = self.shadowed.last_mut() {
            for name in bound.into_iter().filter(|name| tracked.contains(name)) {
                let binding = self.names.get(&name).copied();
                shadowed.entry(name).or_insert(binding);
            }
        }
        // `let (a, b) = (e1, e2);` binds element by element, once every element is
        // evaluated (`let (x, y) = (y, x);` swaps).
        if let (Pat::Tuple(pattern), Expr::Tuple(values)) = (&local.pat, &*init.expr)
            && pattern.elems.len() == values.elems.len()
            && init.diverge.is_none()
            && self.first_active_name(values.to_token_stream()).is_some()
        {
            let elements = self.tuple_elements(values)?;
            for (pat, element) in pattern.elems.iter().zip(elements) {
                self.bind(pat, element)?;
            }
            return Ok(());
        }
        let lowered = self.expr(&init.expr)?;
        if let (Pat::Tuple(pattern), Lowered::Active(id)) = (&local.pat, &lowered) {
            for (position, pat) in pattern.elems.iter().enumerate() {
                let member = Member::Unnamed(syn::Index::from(position));
                let field = self.field(*id, &member);
                self.bind_value(pat, field)?;
            }
            return Ok(());
        }
        match (&local.pat, lowered) {
            (pat, Lowered::Inactive { tokens, by_ref }) => {
                let mut names = Vec::new();
                collect_pattern_names(pat, &mut names);
                let binding = if by_ref { Binding::InactiveReference } else { Binding::Inactive };
                for name in names {
                    self.bind_name(name, binding);
                }
                let attrs = &local.attrs;
                let eq = &init.eq_token;
                let else_branch = init.diverge.as_ref().map(|(e, d)| quote!(#e #d));
                self.stmts.push(Stmt::Plain(quote!(#(#attrs)* let #pat #eq #tokens #else_branch;)));
            }
            (pat, Lowered::Active(id)) => {
                self.bind_value(pat, id)?;
                if let (Some(name), Expr::Reference(_)) = (binding_name(pat), &*init.expr) {
                    self.reference_names.insert(name);
                }
            }
        }
        Ok(())
    }

    /// The elements of a tuple expression, each evaluated (a plain one into a local of
    /// its own) before any is bound or assigned: `(x, y) = (y, x)` swaps.
    fn tuple_elements(&mut self, values: &syn::ExprTuple) -> syn::Result<Vec<Lowered>> {
        let mut elements = Vec::new();
        for value in &values.elems {
            let lowered = self.expr(value)?;
            elements.push(self.evaluated(lowered));
        }
        Ok(elements)
    }

    /// A plain value computed into a local of its own now (a differentiated one
    /// already is).
    fn evaluated(&mut self, lowered: Lowered) -> Lowered {
        match lowered {
            Lowered::Inactive { tokens, by_ref } => {
                let element = format_ident!("__e{}", self.constants);
                self.constants += 1;
                self.stmts.push(Stmt::Plain(quote!(let #element = #tokens;)));
                Lowered::Inactive { tokens: quote!(#element), by_ref }
            }
            active => active,
        }
    }

    /// `let pat = value;` for one element of a destructured tuple.
    fn bind(&mut self, pat: &Pat, value: Lowered) -> syn::Result<()> {
        match value {
            Lowered::Active(id) => self.bind_value(pat, id),
            Lowered::Inactive { tokens, by_ref } => {
                let mut names = Vec::new();
                collect_pattern_names(pat, &mut names);
                let binding = if by_ref { Binding::InactiveReference } else { Binding::Inactive };
                for name in names {
                    self.bind_name(name, binding);
                }
                self.stmts.push(Stmt::Plain(quote!(let #pat = #tokens;)));
                Ok(())
            }
        }
    }

    /// Names a differentiated value (`_` drops it).
    fn bind_value(&mut self, pat: &Pat, id: usize) -> syn::Result<()> {
        if let Pat::Wild(_) = pat {
            return Ok(());
        }
        let name = binding_name(pat).ok_or_else(|| {
            syn::Error::new(
                pat.span(),
                "`#[differentiable]` binds a differentiated value to a name or a tuple of names; other patterns are not supported",
            )
        })?;
        // A type written on the binding still types the value (what a `broadcast_axis`
        // infers its shape from).
        if let (Pat::Type(typed), Def::Op) = (pat, &self.values[id]) {
            let (value, ty) = (format_ident!("__v{}", id), &typed.ty);
            self.stmts.push(Stmt::Plain(quote_spanned!(ty.span()=> let _: &#ty = &#value;)));
        }
        self.bind_name(name, Binding::Active(id));
        Ok(())
    }

    /// `target = value;` for a variable `name` (`target` as the user wrote it).
    fn assign(&mut self, target: &Expr, name: String, value: Lowered) {
        match value {
            Lowered::Active(id) => {
                self.bind_name(name, Binding::Active(id));
            }
            inactive => {
                // A reference variable takes the reference (`r = &r[1..]`), any
                // other the value.
                let value = match (&inactive, self.names.get(&name)) {
                    (Lowered::Inactive { tokens, by_ref: true }, Some(Binding::InactiveReference)) => {
                        tokens.clone()
                    }
                    _ => self.value_expression(&inactive),
                };
                if let Some(Binding::Active(_)) = self.names.get(&name) {
                    // The differentiated value had no variable of its own.
                    self.stmts.push(Stmt::Plain(quote!(let mut #target = #value;)));
                    self.bind_name(name, Binding::Inactive);
                } else {
                    self.stmts.push(Stmt::Plain(quote!(#target = #value;)));
                }
            }
        }
    }

    fn statement(&mut self, expr: &Expr, semicolon: bool) -> syn::Result<()> {
        if let Expr::Assign(assign) = expr
            && let Some(name) = plain_name(&assign.left)
        {
            let value = self.expr(&assign.right)?;
            self.assign(&assign.left, name, value);
            return Ok(());
        }
        // `(x, v) = (x + v, v - x);`: every element evaluated, then each assigned.
        if let Expr::Assign(assign) = expr
            && let Expr::Tuple(targets) = &*assign.left
            && self.first_active_name(expr.to_token_stream()).is_some()
        {
            // Each target a variable, or `_` (`None`).
            let names = targets
                .elems
                .iter()
                .map(|target| match target {
                    Expr::Infer(_) => Ok(None),
                    target => plain_name(target).map(Some).ok_or_else(|| {
                        syn::Error::new(
                            target.span(),
                            "a tuple assignment in `#[differentiable]` assigns variables or `_`; assign a nested tuple with a statement of its own",
                        )
                    }),
                })
                .collect::<syn::Result<Vec<_>>>()?;
            let values = match &*assign.right {
                Expr::Tuple(values) if values.elems.len() == names.len() => self.tuple_elements(values)?,
                right => match self.expr(right)? {
                    Lowered::Active(id) => (0..names.len())
                        .map(|position| {
                            let member = Member::Unnamed(syn::Index::from(position));
                            Lowered::Active(self.field(id, &member))
                        })
                        .collect(),
                    inactive => {
                        let Lowered::Inactive { tokens: whole, .. } = self.evaluated(inactive) else {
                            unreachable!("a plain value stays plain")
                        };
                        (0..names.len())
                            .map(|position| {
                                let position = syn::Index::from(position);
                                Lowered::plain(quote!(#whole.#position))
                            })
                            .collect()
                    }
                },
            };
            for ((name, target), value) in names.into_iter().zip(&targets.elems).zip(values) {
                if let Some(name) = name {
                    self.assign(target, name, value);
                }
            }
            return Ok(());
        }
        if let Expr::Binary(binary) = expr
            && let (Some(op), Some(name)) = (compound_assignment(&binary.op), plain_name(&binary.left))
            && let Lowered::Active(id) = self.binary(op, &binary.left, &binary.right, expr.span())?
        {
            self.bind_name(name, Binding::Active(id));
            return Ok(());
        }
        if self.first_active_name(expr.to_token_stream()).is_some() {
            if let Expr::ForLoop(for_loop) = expr {
                return self.for_loop(&LoopSyntax::from_for(for_loop)?);
            }
            if let Expr::While(while_loop) = expr {
                return self.for_loop(&LoopSyntax::from_while(while_loop)?);
            }
            if let Expr::Loop(endless) = expr {
                return self.for_loop(&LoopSyntax::from_loop(endless)?);
            }
        }
        if let Expr::If(branch) = expr
            && let Some(name) = self.first_active_name(expr.to_token_stream())
        {
            if contains_word(expr.to_token_stream(), "return") {
                return Err(syn::Error::new(branch.if_token.span, RETURN_UNSUPPORTED));
            }
            // Only its conditions read differentiated values (a counter updated on
            // a comparison): plain code once the conditions are lowered.
            if self.arms_are_plain(branch) {
                let statement = self.plain_if(branch)?;
                self.stmts.push(Stmt::Plain(statement));
                return Ok(());
            }
            return Err(syn::Error::new(
                branch.if_token.span,
                format!(
                    "an `if` that reads differentiated values (`{name}`) gives its value from both arms: write `let y = if … {{ … }} else {{ … }};` (assignments inside the arms are not differentiated)"
                ),
            ));
        }
        if let Expr::Match(branch) = expr
            && let Some(name) = self.first_active_name(expr.to_token_stream())
        {
            return Err(syn::Error::new(
                branch.match_token.span,
                format!(
                    "a `match` that reads differentiated values (`{name}`) gives its value from its arms: write `let y = match … {{ … }};` (assignments inside the arms are not differentiated)"
                ),
            ));
        }
        self.reject_if_active(expr.to_token_stream(), expr.span(), construct_name(expr))?;
        let semicolon = semicolon.then(|| quote!(;));
        self.stmts.push(Stmt::Plain(quote!(#expr #semicolon)));
        Ok(())
    }

    /// A `for` loop whose body reads differentiated values. Outer variables the body
    /// assigns are its state: differentiated ones are carried from one iteration to
    /// the next as values of their own; plain ones are copied at the loop's entry, so
    /// that the reverse sweep can rerun the loop from there.
    fn for_loop(&mut self, for_loop: &LoopSyntax<'_>) -> syn::Result<()> {
        if let Some(label) = for_loop.label {
            return Err(syn::Error::new(label.span(), "`#[differentiable]` does not support loop labels"));
        }
        let range = match for_loop.iterator {
            // A `while` loop's iterations are counted as they run (its reverse sweep
            // knows how many ran and does not test the condition again).
            None => quote!(::core::iter::repeat(())),
            Some(iterator) => match self.expr(iterator)? {
                Lowered::Active(_) => {
                    return Err(syn::Error::new(
                        iterator.span(),
                        "`#[differentiable]` loops over values that are not differentiated (a range, say); this one is differentiated: if it is data, leave its parameter out with `#[differentiable(wrt(…))]`",
                    ));
                }
                // A reference (`for x in xs` with `xs: &[f64]`, `for x in &v`) is
                // iterated as written: by reference.
                inactive => self.argument_expression(&inactive),
            },
        };
        // An integer range owns its bounds; another iterator may borrow a local.
        if let Some(iterator) = for_loop.iterator
            && !is_range(iterator)
        {
            self.keeps_borrows = true;
            let declared_in_arm = |name: &str| {
                self.declared
                    .iter()
                    .any(|(enclosing, declared)| *enclosing == Enclosing::Arm && declared.contains(name))
            };
            if let Some(name) = super::reads::first_read(iterator.to_token_stream(), &declared_in_arm) {
                return Err(syn::Error::new(
                    iterator.span(),
                    format!(
                        "this loop inside an `if`/`match` arm iterates over `{name}`, declared in the arm: the reverse sweep runs the loop again after the arm, where `{name}` is gone; declare `{name}` before the `if`/`match`"
                    ),
                ));
            }
        }
        if contains_word(for_loop.body.to_token_stream(), "return") {
            return Err(syn::Error::new(for_loop.keyword, RETURN_UNSUPPORTED));
        }
        let (assigned, pattern_names) = self.loop_assignments(for_loop);
        // A plain variable becomes differentiated when the body assigns it a
        // differentiated value: find those by lowering the body once on a copy.
        let mut carried_names: Vec<String> = assigned
            .iter()
            .filter(|name| matches!(self.names.get(*name), Some(Binding::Active(_))))
            .cloned()
            .collect();
        loop {
            let mut trial = self.clone();
            let trial_body = trial.loop_body(for_loop, &carried_names)?;
            let promoted: Vec<String> = assigned
                .iter()
                .zip(&trial_body.assigned_ends)
                .filter(|(name, exit)| exit.is_some() && !carried_names.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            if promoted.is_empty() {
                break;
            }
            carried_names.extend(promoted);
        }
        let mut entries = Vec::new();
        for name in &carried_names {
            let entry = match self.names.get(name).copied() {
                Some(Binding::Active(id)) => id,
                _ => self.lift(name),
            };
            entries.push(entry);
        }
        // Plain variables the body reads that may change (`mut`, assigned or
        // shadowed): the reverse sweep reruns the body after the forward sweep, and
        // must read them as they were when the loop ran.
        // So must those declared in an enclosing arm or loop body, whose reverse sweep
        // does not see them. A `while` condition is rerun with the body.
        let condition = for_loop.condition.map(|condition| quote!(#condition;));
        let (body, stmts) = (for_loop.body, &for_loop.body.stmts);
        let rerun: syn::Block =
            syn::parse_quote_spanned!(body.brace_token.span.join()=> { #condition #(#stmts)* });
        let read = super::reads::block_reads(&rerun, &|name| {
            matches!(self.names.get(name), Some(Binding::Inactive | Binding::InactiveReference))
                && (self.assigned.iter().any(|assigned| assigned == name)
                    || self.changing.contains(name)
                    || self.declared.iter().any(|(_, declared)| declared.contains(name)))
                && !pattern_names.iter().any(|bound| bound == name)
                && !assigned.iter().any(|assigned| assigned == name)
        });
        let plain_state: Vec<Ident> = assigned
            .iter()
            .filter(|name| !carried_names.contains(name))
            .chain(&read)
            .map(|name| Ident::new(name, Span::call_site()))
            .collect();
        // Plain state kept for the reverse sweep may itself be a borrow.
        self.keeps_borrows |= !plain_state.is_empty();
        let first_value = self.values.len();
        let body = self.loop_body(for_loop, &carried_names)?;
        let values = first_value..self.values.len();
        // Numbered after the body, whose own loops come first.
        let index = self.loops.len();
        self.remember(format_ident!("__range{}", index));
        let mut carried = Vec::new();
        for ((name, entry), (inner, exit)) in carried_names.iter().zip(entries).zip(body.carried) {
            let result = self.new_value(Def::Op);
            self.remember(format_ident!("__v{}", result));
            self.bind_name(name.clone(), Binding::Active(result));
            carried.push(Carried { entry, inner, exit, result });
        }
        let pattern = for_loop.pattern.map_or_else(|| quote!(_), |pattern| quote!(#pattern));
        // A trip count spelled in literals: the iterations' values are kept (unrolled
        // into locals when short); otherwise, when there are too many to keep on the
        // stack, or when a condition may stop the loop early, the reverse sweep
        // reruns the loop.
        let trip_count = for_loop
            .iterator
            .and_then(trip_count)
            .filter(|&count| count <= STORED_TRIP_COUNT && !for_loop.leaves_early);
        if trip_count.is_some() {
            self.remember(format_ident!("__records{}", index));
        } else {
            for name in ["__count", "__stride", "__checkpoints"] {
                self.remember(format_ident!("{}{}", name, index));
            }
        }
        self.loops.push(Loop {
            pattern,
            range,
            condition: body.condition,
            leaves_early: for_loop.leaves_early,
            carried,
            plain_state,
            body: body.stmts,
            values,
            trip_count,
            stored: body.stored,
        });
        self.stmts.push(Stmt::Loop(index));
        Ok(())
    }

    /// Lowers the loop body with each `carried` name bound to a fresh value (its
    /// value at the start of an iteration). Returns the statements, per carried name
    /// its (start, end) values — a plain end value lifted to a differentiated one —
    /// and per outer name the body assigns, its end value when differentiated.
    fn loop_body(&mut self, for_loop: &LoopSyntax<'_>, carried: &[String]) -> syn::Result<LoweredBody> {
        let (assigned, pattern_names) = self.loop_assignments(for_loop);
        let outer_stmts = core::mem::take(&mut self.stmts);
        let outer_names = self.names.clone();
        self.arm_locals.push(Vec::new());
        self.declared.push((Enclosing::LoopBody, pattern_names.iter().cloned().collect()));
        for name in &pattern_names {
            self.bind_name(name.clone(), Binding::Inactive);
        }
        let starts: Vec<usize> = carried
            .iter()
            .map(|name| {
                let id = self.new_value(Def::Op);
                self.remember(format_ident!("__v{}", id));
                self.bind_name(name.clone(), Binding::Active(id));
                id
            })
            .collect();
        // A `while` condition reads the values at the start of an iteration.
        let condition = for_loop.condition.map(|condition| self.condition(condition));
        let tracked = carried.iter().chain(&assigned).cloned().collect();
        let (result, ends) =
            self.with_shadowing(tracked, |lowering| lowering.block_with_tail(for_loop.body, false));
        let active_end = |name: &String| match ends.get(name) {
            Some(Some(Binding::Active(id))) => Some(*id),
            _ => None,
        };
        let assigned_ends = assigned.iter().map(active_end).collect();
        let mut carried_pairs = Vec::new();
        for (name, &start) in carried.iter().zip(&starts) {
            let end = match active_end(name) {
                Some(id) => id,
                None => self.lift(name),
            };
            carried_pairs.push((start, end));
        }
        let stored = self.arm_locals.pop().expect("the body's locals");
        self.declared.pop();
        self.names = outer_names;
        let stmts = core::mem::replace(&mut self.stmts, outer_stmts);
        result?;
        Ok(LoweredBody {
            stmts,
            condition: condition.transpose()?,
            carried: carried_pairs,
            assigned_ends,
            stored,
        })
    }

    /// The outer variables a loop's body assigns, and the names its pattern binds.
    fn loop_assignments(&self, for_loop: &LoopSyntax<'_>) -> (Vec<String>, Vec<String>) {
        let mut assigned = Vec::new();
        let mut pattern_names = Vec::new();
        if let Some(pattern) = for_loop.pattern {
            collect_pattern_names(pattern, &mut pattern_names);
        }
        collect_assigned_scoped(&for_loop.body.stmts, Scope::Outer(&pattern_names), &mut assigned);
        assigned.retain(|name| self.names.contains_key(name));
        (assigned, pattern_names)
    }

    /// The plain variable `name` as a differentiated value (with a zero tangent).
    fn lift(&mut self, name: &str) -> usize {
        let ident = Ident::new(name, Span::call_site());
        match self.push_op(OpKind::Lift(quote!(::core::clone::Clone::clone(&#ident))), Span::call_site()) {
            Lowered::Active(id) => id,
            Lowered::Inactive { .. } => unreachable!("an operation is differentiated"),
        }
    }

    /// An error when `tokens` mention a differentiated value: `what` is a construct
    /// static mode does not differentiate through.
    fn reject_if_active(&self, tokens: TokenStream, span: Span, what: &str) -> syn::Result<()> {
        match self.first_active_name(tokens) {
            Some(name) => Err(syn::Error::new(
                span,
                format!(
                    "`#[differentiable]` does not differentiate through {what}, and `{name}` here is differentiated; compute it outside, or use `stop_gradient({name})` if no derivative should flow through it"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The first differentiated variable that the code in `tokens` reads.
    fn first_active_name(&self, tokens: TokenStream) -> Option<String> {
        super::reads::first_read(tokens, &|name| matches!(self.names.get(name), Some(Binding::Active(_))))
    }

    fn constant(&mut self, tokens: TokenStream, by_ref: bool, span: Span) -> Operand {
        let name = format_ident!("__c{}", self.constants, span = span);
        self.constants += 1;
        // A unit value (`Gelu`) is bound as a `'static` reference: a call's pullback
        // may borrow it however long it lives.
        if syn::parse2::<Expr>(tokens.clone()).is_ok_and(|expr| self.names_a_unit_value(&expr)) {
            self.stmts.push(Stmt::Plain(quote_spanned!(span=> let #name = &#tokens;)));
            self.remember(name.clone());
            return Operand::Constant { name, owned: false };
        }
        let reference_param = by_ref && self.reference_params.contains(&tokens.to_string());
        // A variable the function assigns is copied: a borrow held for the reverse
        // sweep would forbid the assignment.
        let assigned_later = self.assigned.iter().any(|name| contains_word(tokens.clone(), name));
        let owned =
            (self.owned_constants && !reference_param) || !self.arm_locals.is_empty() || assigned_later;
        // A computed value (not a place) is kept as it is, not computed and copied.
        let place = matches!(
            syn::parse2::<Expr>(tokens.clone()),
            Ok(Expr::Path(_) | Expr::Field(_) | Expr::Index(_) | Expr::Unary(_)) | Err(_)
        );
        // A place read through `Plain`: a reference to a differentiable value (a loop's
        // `&f64` item) reads as the value, as `x * w` takes it in Rust.
        let plain = quote! {{
            use ::fluxion::__private::{AsPlain as _, DerefPlain as _};
            (&::fluxion::__private::Plain(&(#tokens))).plain()
        }};
        let value = match (owned, by_ref) {
            (true, false) if !place => quote!((#tokens)),
            (true, false) => quote!(::core::clone::Clone::clone(#plain)),
            (true, true) => quote!(::core::clone::Clone::clone(#tokens)),
            (false, true) => tokens,
            (false, false) if place => plain,
            (false, false) => quote!(&(#tokens)),
        };
        self.stmts.push(Stmt::Plain(quote_spanned!(span=> let #name = #value;)));
        self.remember(name.clone());
        Operand::Constant { name, owned }
    }

    /// Whether `lowered` is a parameter taken by reference (which outlives a call's
    /// pullback), by its name.
    fn names_a_reference_parameter(&self, lowered: &Lowered) -> bool {
        matches!(lowered, Lowered::Inactive { tokens, by_ref: true } if self.reference_params.contains(&tokens.to_string()))
    }

    /// Whether `expr` names a unit struct or a unit enum variant (`Gelu`,
    /// `Heads::<4>`, `Mask::Causal`), by the naming convention of types: a constant
    /// whose reference Rust promotes to `'static`, so that a pullback may keep it.
    fn names_a_unit_value(&self, expr: &Expr) -> bool {
        let Expr::Path(path) = expr else { return false };
        let Some(last) = path.path.segments.last() else { return false };
        let name = last.ident.to_string();
        let camel_case = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().any(|c| c.is_ascii_lowercase());
        let local = path.path.segments.len() == 1 && self.names.contains_key(&name);
        path.qself.is_none() && camel_case && name != "Self" && !local
    }

    /// Whether a call's receiver or argument `lowered` (written `expr`) is a constant
    /// that may borrow the function's locals: not a reference parameter, a literal or
    /// a unit value.
    fn may_borrow_a_local(&self, lowered: &Lowered, expr: &Expr) -> bool {
        lowered.is_inactive()
            && !self.names_a_reference_parameter(lowered)
            && !is_literal(expr)
            && !self.names_a_unit_value(expr)
    }

    /// Binds a name of the user's code (a parameter shadowed by it is no longer one).
    fn bind_name(&mut self, name: String, binding: Binding) {
        self.reference_params.remove(&name);
        self.reference_names.remove(&name);
        self.names.insert(name, binding);
    }

    /// Lowers a loop body or an arm (`lower`) that may assign the outer variables
    /// `tracked`, and returns with its result their bindings at its end: a `let`
    /// inside that shadows one leaves the variable at its value before the `let`.
    fn with_shadowing<R>(
        &mut self,
        tracked: Vec<String>,
        lower: impl FnOnce(&mut Self) -> R,
    ) -> (R, HashMap<String, Option<Binding>>) {
        self.shadowed.push((tracked.clone(), HashMap::new()));
        let result = lower(self);
        let (_, shadowed) = self.shadowed.pop().expect("the scope's shadowed names");
        let ends = tracked
            .into_iter()
            .map(|name| {
                let end = match shadowed.get(&name) {
                    Some(binding) => *binding,
                    None => self.names.get(&name).copied(),
                };
                (name, end)
            })
            .collect();
        (result, ends)
    }

    /// Records a generated local of the arm being lowered.
    fn remember(&mut self, name: Ident) {
        if let Some(locals) = self.arm_locals.last_mut() {
            locals.push(name);
        }
    }

    fn operand(&mut self, lowered: Lowered, span: Span) -> Operand {
        match lowered {
            Lowered::Active(id) => Operand::Active(id),
            Lowered::Inactive { tokens, by_ref } => self.constant(tokens, by_ref, span),
        }
    }

    fn push_op(&mut self, kind: OpKind, span: Span) -> Lowered {
        let out = self.new_value(Def::Op);
        // Only a primitive binds its rule (`__r{index}`) for the reverse sweep.
        if matches!(kind, OpKind::Unary { .. } | OpKind::Binary { .. }) {
            self.remember(super::emit::rule_name(self.ops.len(), span));
        }
        self.remember(format_ident!("__v{}", out));
        self.stmts.push(Stmt::Op(self.ops.len()));
        self.ops.push(Op { out, kind, span });
        Lowered::Active(out)
    }

    fn unary(&mut self, rule: TokenStream, x: usize, span: Span) -> Lowered {
        self.push_op(OpKind::Unary { rule, x }, span)
    }

    fn binary(&mut self, op: &BinOp, left: &Expr, right: &Expr, span: Span) -> syn::Result<Lowered> {
        let (a, b) = (self.expr(left)?, self.expr(right)?);
        if a.is_inactive() && b.is_inactive() {
            let (a, b) = (self.value_expression(&a), self.value_expression(&b));
            return Ok(Lowered::plain(quote!(#a #op #b)));
        }
        let rule = match op {
            BinOp::Add(_) | BinOp::AddAssign(_) => "Addition",
            BinOp::Sub(_) | BinOp::SubAssign(_) => "Subtraction",
            BinOp::Mul(_) | BinOp::MulAssign(_) => "Multiplication",
            BinOp::Div(_) | BinOp::DivAssign(_) => "Division",
            BinOp::Eq(_) | BinOp::Ne(_) | BinOp::Lt(_) | BinOp::Le(_) | BinOp::Gt(_) | BinOp::Ge(_) => {
                let (a, b) = (self.value_expression(&a), self.value_expression(&b));
                return Ok(Lowered::plain(quote!((#a #op #b))));
            }
            _ => {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`#[differentiable]` has no derivative rule for `{}` on differentiated values",
                        op.to_token_stream()
                    ),
                ));
            }
        };
        let (a, b) = (self.operand(a, left.span()), self.operand(b, right.span()));
        Ok(self.push_op(OpKind::Binary { rule: rule_path(rule, span), a, b }, span))
    }

    /// The value of `lowered` as an expression (for comparisons, which are not
    /// differentiated).
    fn value_expression(&self, lowered: &Lowered) -> TokenStream {
        match lowered {
            Lowered::Active(id) => {
                let reference = self.reference(*id);
                quote!((*#reference))
            }
            Lowered::Inactive { tokens, by_ref: true } => quote!((*#tokens)),
            Lowered::Inactive { tokens, by_ref: false } => quote!((#tokens)),
        }
    }

    /// An array or tuple expression: one operation when an element is differentiated.
    fn gather<'e>(
        &mut self,
        tuple: bool,
        elements: impl Iterator<Item = &'e Expr>,
        expr: &Expr,
    ) -> syn::Result<Lowered> {
        let elements: Vec<(&Expr, Lowered)> =
            elements.map(|element| Ok((element, self.expr(element)?))).collect::<syn::Result<_>>()?;
        if elements.iter().all(|(_, lowered)| lowered.is_inactive()) {
            let values = elements.iter().map(|(_, lowered)| self.value_expression(lowered));
            return Ok(Lowered::plain(if tuple { quote!((#(#values,)*)) } else { quote!([#(#values),*]) }));
        }
        let operands =
            elements.into_iter().map(|(element, lowered)| self.operand(lowered, element.span())).collect();
        let into = if tuple { Collection::Tuple } else { Collection::Array };
        Ok(self.push_op(OpKind::Gather { into, elements: operands }, expr.span()))
    }

    /// A struct literal with differentiated fields (`State { pos: p, vel: v }`): one
    /// operation. Fields it does not name may come from a plain `..base`.
    fn struct_literal(&mut self, literal: &syn::ExprStruct) -> syn::Result<Lowered> {
        if literal.qself.is_some() {
            return self.verbatim(&Expr::Struct(literal.clone()), "struct literals with a qualified path");
        }
        let mut members = Vec::new();
        let mut elements = Vec::new();
        for field in &literal.fields {
            let lowered = self.expr(&field.expr)?;
            members.push(field.member.clone());
            elements.push(self.operand(lowered, field.expr.span()));
        }
        // The fields not named come from a plain value (so carry no derivative).
        let rest = match &literal.rest {
            Some(rest) => match self.expr(rest)? {
                Lowered::Active(_) => {
                    return Err(syn::Error::new_spanned(
                        rest,
                        "a struct literal's `..base` is not differentiated: name each differentiated field, and take the others from a plain value (`..stop_gradient(s.clone())`)",
                    ));
                }
                inactive => {
                    let value = self.value_expression(&inactive);
                    Some(quote!(::core::clone::Clone::clone(&#value)))
                }
            },
            None => None,
        };
        let into = Collection::Struct { path: literal.path.clone(), members, rest };
        Ok(self.push_op(OpKind::Gather { into, elements }, literal.span()))
    }

    /// Whether `expr` names a parameter of reference type (passed on as a reference).
    fn names_a_reference(&self, expr: &Expr) -> bool {
        plain_name(expr).is_some_and(|name| self.is_reference_name(&name))
    }

    /// Whether the user's variable `name` is a reference: to a differentiated value
    /// (a reference parameter, `let r = &z;`) or a plain one.
    fn is_reference_name(&self, name: &str) -> bool {
        match self.names.get(name) {
            Some(Binding::Active(id)) => {
                matches!(self.values[*id], Def::Param { by_ref: true, .. })
                    || self.reference_names.contains(name)
            }
            Some(Binding::InactiveReference) => true,
            _ => false,
        }
    }

    /// An inactive argument as the user passes it (by reference when they wrote
    /// `&e` or name a reference parameter).
    fn argument_expression(&self, lowered: &Lowered) -> TokenStream {
        match lowered {
            Lowered::Inactive { tokens, .. } => quote!(#tokens),
            Lowered::Active(id) => self.reference(*id),
        }
    }

    /// A `&X` expression for active value `id` in the forward code.
    fn reference(&self, id: usize) -> TokenStream {
        value_reference(&self.values, id)
    }

    fn expr(&mut self, expr: &Expr) -> syn::Result<Lowered> {
        let span = expr.span();
        match expr {
            Expr::Lit(_) => Ok(Lowered::plain(expr.to_token_stream())),
            Expr::Path(_) => match plain_name(expr).and_then(|name| self.names.get(&name).copied()) {
                Some(Binding::Active(id)) => Ok(Lowered::Active(id)),
                Some(Binding::InactiveReference) => {
                    Ok(Lowered::Inactive { tokens: expr.to_token_stream(), by_ref: true })
                }
                _ => Ok(Lowered::plain(expr.to_token_stream())),
            },
            Expr::Paren(inner) => self.expr(&inner.expr),
            Expr::Group(inner) => self.expr(&inner.expr),
            // `&x` stands for x's value: operands are passed by reference anyway.
            Expr::Reference(reference) if reference.mutability.is_none() => {
                Ok(match self.expr(&reference.expr)? {
                    Lowered::Inactive { tokens, by_ref: false } => {
                        Lowered::Inactive { tokens: quote!(&(#tokens)), by_ref: true }
                    }
                    lowered => lowered,
                })
            }
            Expr::Unary(unary) => match unary.op {
                UnOp::Deref(_) => Ok(match self.expr(&unary.expr)? {
                    Lowered::Inactive { tokens, .. } => Lowered::plain(quote!((*#tokens))),
                    active => active,
                }),
                UnOp::Neg(_) => match self.expr(&unary.expr)? {
                    Lowered::Active(x) => Ok(self.unary(rule_path("Negation", span), x, span)),
                    // `-&t` of a plain value: negated through the reference (a tensor
                    // cannot be moved out of it).
                    Lowered::Inactive { tokens, by_ref: true } => Ok(Lowered::plain(quote!(-(#tokens)))),
                    inactive => {
                        let value = self.value_expression(&inactive);
                        Ok(Lowered::plain(quote!(-#value)))
                    }
                },
                // `!` of a condition (comparisons of differentiated values are plain).
                UnOp::Not(_) => match self.expr(&unary.expr)? {
                    Lowered::Active(_) => self.verbatim(expr, "`!`"),
                    inactive => {
                        let value = self.value_expression(&inactive);
                        Ok(Lowered::plain(quote!(!#value)))
                    }
                },
                _ => self.verbatim(expr, "this operator"),
            },
            Expr::Binary(binary) => self.binary(&binary.op, &binary.left, &binary.right, span),
            Expr::MethodCall(call) => self.method_call(call),
            Expr::Index(index) => match self.expr(&index.expr)? {
                Lowered::Active(x) => {
                    let position = match self.expr(&index.index)? {
                        Lowered::Active(_) => {
                            return Err(syn::Error::new(
                                index.index.span(),
                                "an index cannot be a differentiated value",
                            ));
                        }
                        inactive => self.value_expression(&inactive),
                    };
                    let rule = quote_spanned!(span=> ::fluxion::autodiff::rules::Element(#position));
                    Ok(self.unary(rule, x, span))
                }
                inactive => {
                    let (base, position) = (self.value_expression(&inactive), &index.index);
                    Ok(Lowered::plain(quote!(#base[#position])))
                }
            },
            Expr::Array(array) => self.gather(false, array.elems.iter(), expr),
            Expr::Range(range) => {
                let mut bound = |part: &Option<Box<Expr>>| -> syn::Result<TokenStream> {
                    match part {
                        None => Ok(TokenStream::new()),
                        // A bound is a count, with no derivative: a differentiated
                        // value's (a `#[no_derivative]` size of a differentiated
                        // struct) is read as it is.
                        Some(part) => match self.expr(part)? {
                            Lowered::Active(id) => {
                                let value = self.reference(id);
                                Ok(quote!(::core::clone::Clone::clone(#value)))
                            }
                            inactive => Ok(self.value_expression(&inactive)),
                        },
                    }
                };
                let (start, end, limits) = (bound(&range.start)?, bound(&range.end)?, &range.limits);
                Ok(Lowered::plain(quote!(#start #limits #end)))
            }
            Expr::Tuple(tuple) if !tuple.elems.is_empty() => self.gather(true, tuple.elems.iter(), expr),
            Expr::If(branch) if self.first_active_name(expr.to_token_stream()).is_some() => {
                self.if_expression(branch)
            }
            Expr::Match(branch) if self.first_active_name(expr.to_token_stream()).is_some() => {
                self.match_expression(branch)
            }
            Expr::Call(call) => self.call(call, expr),
            Expr::Struct(literal) if self.first_active_name(expr.to_token_stream()).is_some() => {
                self.struct_literal(literal)
            }
            Expr::Block(block)
                if block.label.is_none() && self.first_active_name(expr.to_token_stream()).is_some() =>
            {
                // `{ let t = x * y; t.sin() }`: a branch of one arm, so that its names
                // stay inside it.
                let mut assigned = Vec::new();
                collect_assigned_in(expr, &mut assigned);
                let arm = self.arm(&assigned, span, |lowering| lowering.block(&block.block))?;
                let selector = Selector::Match { scrutinee: quote!(()), patterns: vec![quote!(_)] };
                Ok(self.push_branch(selector, vec![arm]))
            }
            Expr::Field(field) => match self.expr(&field.base)? {
                Lowered::Active(base) => Ok(Lowered::Active(self.field(base, &field.member))),
                inactive => {
                    let (base, member) = (self.value_expression(&inactive), &field.member);
                    Ok(Lowered::plain(quote!(#base.#member)))
                }
            },
            // A plain value read off a differentiated one (`x.len() as f64`).
            Expr::Cast(cast) => match self.expr(&cast.expr)? {
                Lowered::Active(_) => self.verbatim(expr, construct_name(expr)),
                inactive => {
                    let (value, ty) = (self.value_expression(&inactive), &cast.ty);
                    Ok(Lowered::plain(quote!((#value as #ty))))
                }
            },
            _ => self.verbatim(expr, construct_name(expr)),
        }
    }

    /// `expr` kept as it is, provided it reads no differentiated value.
    fn verbatim(&self, expr: &Expr, what: &str) -> syn::Result<Lowered> {
        self.reject_if_active(expr.to_token_stream(), expr.span(), what)?;
        Ok(Lowered::plain(expr.to_token_stream()))
    }

    /// Lowers one arm: its own statements, names and generated locals.
    /// Lowers one arm (`assigned`: the names its statements assign, `span`: the
    /// branch's, for errors).
    fn arm(
        &mut self,
        assigned: &[String],
        span: Span,
        lower: impl FnOnce(&mut Self) -> syn::Result<Lowered>,
    ) -> syn::Result<Arm> {
        let outer_stmts = core::mem::take(&mut self.stmts);
        let outer_names = self.names.clone();
        let first_value = self.values.len();
        self.arm_locals.push(Vec::new());
        self.declared.push((Enclosing::Arm, HashSet::new()));
        let (output, ends) = self.with_shadowing(assigned.to_vec(), lower);
        self.declared.pop();
        let stored = self.arm_locals.pop().expect("the arm's locals");
        // An outer variable given a differentiated value inside the arm would not
        // reach outside: refuse it rather than lose its derivative.
        for name in assigned {
            let (inner, outer) = (ends.get(name).copied().flatten(), outer_names.get(name));
            let inner = inner.as_ref();
            let given = matches!((inner, outer), (Some(Binding::Active(inner)), Some(outer))
                if !matches!(outer, Binding::Active(id) if id == inner));
            // A differentiated variable given a plain value inside the arm: the
            // assignment would stay inside the arm too.
            let reset =
                matches!(outer, Some(Binding::Active(_))) && !matches!(inner, Some(Binding::Active(_)));
            if given || reset {
                self.names = outer_names;
                self.stmts = outer_stmts;
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`{name}` is {} inside an arm of this `if`/`match`: give the branch a value instead, `let {name} = if … {{ … }} else {{ … }};`",
                        if given { "given a differentiated value" } else { "differentiated and assigned" }
                    ),
                ));
            }
        }
        self.names = outer_names;
        let stmts = core::mem::replace(&mut self.stmts, outer_stmts);
        Ok(Arm { stmts, output: output?, stored, values: first_value..self.values.len() })
    }

    fn push_branch(&mut self, selector: Selector, arms: Vec<Arm>) -> Lowered {
        let result = self.new_value(Def::Op);
        let index = self.branches.len();
        self.remember(format_ident!("__b{}", index));
        self.remember(format_ident!("__v{}", result));
        self.branches.push(Branch { selector, arms, result });
        self.stmts.push(Stmt::Branch(index));
        Lowered::Active(result)
    }

    fn condition(&mut self, condition: &Expr) -> syn::Result<TokenStream> {
        if let Expr::Let(_) = condition {
            return Err(syn::Error::new(
                condition.span(),
                "`#[differentiable]` takes `if let` with an `else` and no `&&` chain (it is a `match`); write the `match`",
            ));
        }
        // Not differentiated: the user's code as it is, each differentiated variable
        // read as its value where it stands, so that `&&`, `||` and guards stay lazy.
        let mut substituted = condition.clone();
        let mut in_macro = None;
        super::reads::substitute(&mut substituted, &mut |name, inside_macro| {
            let Some(Binding::Active(id)) = self.names.get(name) else { return None };
            if inside_macro {
                in_macro.get_or_insert_with(|| name.to_owned());
                return None;
            }
            // A parameter read by its own name is itself (unless the body rebinds
            // the name: then its alias); any other name is its value's local (or the
            // parameter it names), as a reference where the user's variable is one.
            if matches!(&self.values[*id], Def::Param { ident, aliased: false, .. } if ident == name) {
                return None;
            }
            let reference = self.reference(*id);
            Some(if self.is_reference_name(name) {
                syn::parse_quote!((#reference))
            } else {
                syn::parse_quote!((*#reference))
            })
        });
        if let Some(name) = in_macro {
            return Err(syn::Error::new(
                condition.span(),
                format!(
                    "a macro in a condition reads the differentiated `{name}`; compute the test into a `bool` first (`let big = {name} > 1.0;`)"
                ),
            ));
        }
        Ok(quote!((#substituted)))
    }

    /// Whether the arms of `branch` (and of its `else if`s) read no differentiated
    /// value.
    fn arms_are_plain(&self, branch: &syn::ExprIf) -> bool {
        let then_plain = self.first_active_name(branch.then_branch.to_token_stream()).is_none();
        then_plain
            && match branch.else_branch.as_ref().map(|(_, otherwise)| &**otherwise) {
                None => true,
                Some(Expr::If(inner)) => self.arms_are_plain(inner),
                Some(other) => self.first_active_name(other.to_token_stream()).is_none(),
            }
    }

    /// `branch`, whose arms are plain, with its conditions lowered.
    fn plain_if(&mut self, branch: &syn::ExprIf) -> syn::Result<TokenStream> {
        let condition = self.condition(&branch.cond)?;
        let then_branch = &branch.then_branch;
        let otherwise = match branch.else_branch.as_ref().map(|(_, otherwise)| &**otherwise) {
            None => TokenStream::new(),
            Some(Expr::If(inner)) => {
                let inner = self.plain_if(inner)?;
                quote!(else #inner)
            }
            Some(other) => quote!(else #other),
        };
        Ok(quote!(if #condition #then_branch #otherwise))
    }

    fn if_expression(&mut self, branch: &syn::ExprIf) -> syn::Result<Lowered> {
        // Arms that read no differentiated value give a plain value (an index, a
        // count), whatever the conditions compare.
        if self.arms_are_plain(branch) {
            let plain = self.plain_if(branch)?;
            return Ok(Lowered::plain(quote!((#plain))));
        }
        let Some((_, otherwise)) = &branch.else_branch else {
            return Err(syn::Error::new(
                branch.if_token.span,
                "an `if` that reads differentiated values needs an `else`, and both arms give the value",
            ));
        };
        // `if let p = e { a } else { b }` is `match e { p => a, _ => b }`.
        if let Expr::Let(binding) = &*branch.cond {
            let (pattern, scrutinee, then_branch) = (&binding.pat, &binding.expr, &branch.then_branch);
            let matched: syn::ExprMatch = syn::parse_quote_spanned! {branch.if_token.span=>
                match #scrutinee { #pattern => #then_branch, _ => #otherwise }
            };
            return self.match_expression(&matched);
        }
        let condition = self.condition(&branch.cond)?;
        let span = branch.if_token.span;
        let mut assigned = Vec::new();
        collect_assigned(&branch.then_branch.stmts, &mut assigned);
        let then_arm = self.arm(&assigned, span, |lowering| lowering.block(&branch.then_branch))?;
        let mut assigned = Vec::new();
        collect_assigned_in(otherwise, &mut assigned);
        let else_arm = self.arm(&assigned, span, |lowering| match &**otherwise {
            Expr::Block(block) => lowering.block(&block.block),
            other => lowering.expr(other),
        })?;
        Ok(self.push_branch(Selector::If(condition), vec![then_arm, else_arm]))
    }

    fn match_expression(&mut self, branch: &syn::ExprMatch) -> syn::Result<Lowered> {
        let scrutinee = match self.expr(&branch.expr)? {
            Lowered::Active(_) => {
                let name = self.first_active_name(branch.expr.to_token_stream()).unwrap_or_default();
                return Err(syn::Error::new(
                    branch.expr.span(),
                    format!(
                        "`match` on a differentiated value (`{name}`) is not supported; if `{name}` is no number to differentiate (a mode, an enum), leave it out with `#[differentiable(wrt(…))]`"
                    ),
                ));
            }
            inactive => self.value_expression(&inactive),
        };
        let mut arms = Vec::new();
        let mut patterns = Vec::new();
        for arm in &branch.arms {
            let pat = &arm.pat;
            let mut names = Vec::new();
            collect_pattern_names(pat, &mut names);
            // A guard reads the pattern's names and the function's values: lowered as
            // a condition (a differentiated value by its generated local).
            let guard = match &arm.guard {
                Some((token, guard)) => {
                    let saved = self.names.clone();
                    for name in &names {
                        self.names.insert(name.clone(), Binding::Inactive);
                    }
                    let condition = self.condition(guard);
                    self.names = saved;
                    let condition = condition?;
                    Some(quote!(#token #condition))
                }
                None => None,
            };
            patterns.push(quote!(#pat #guard));
            let mut assigned = Vec::new();
            collect_assigned_in_scope(&arm.body, Scope::Outer(&names), &mut assigned);
            arms.push(self.arm(&assigned, branch.match_token.span, |lowering| {
                for name in names {
                    lowering.bind_name(name, Binding::Inactive);
                }
                match &*arm.body {
                    Expr::Block(block) => lowering.block(&block.block),
                    other => lowering.expr(other),
                }
            })?);
        }
        Ok(self.push_branch(Selector::Match { scrutinee, patterns }, arms))
    }

    fn field(&mut self, base: usize, member: &Member) -> usize {
        let key = (base, member.to_token_stream().to_string());
        if let Some(&id) = self.field_ids.get(&key) {
            return id;
        }
        let id = self.new_value(Def::Field { base, member: member.clone() });
        self.fields[base].push(id);
        self.field_ids.insert(key, id);
        if let Member::Unnamed(_) = member {
            // Tangents are read and written by the value's field positions: refused at
            // build time for a type whose tangent renumbers its fields.
            let base = value_reference(&self.values, base);
            self.stmts.push(Stmt::Plain(quote!(::fluxion::autodiff::rules::tangent_keeps_positions(#base);)));
        }
        id
    }

    fn method_call(&mut self, call: &syn::ExprMethodCall) -> syn::Result<Lowered> {
        let span = call.method.span();
        let receiver = self.expr(&call.receiver)?;
        // `f.apply([&x, &y])` of a plain `f`: a fused function's call, its operands
        // the array's elements.
        if call.method == "apply"
            && receiver.is_inactive()
            && call.args.len() == 1
            && let Some(Expr::Array(array)) = call.args.first().map(without_parentheses)
        {
            return self.fused(receiver, call.receiver.span(), array, span);
        }
        let args = call.args.iter().map(|arg| self.expr(arg)).collect::<syn::Result<Vec<_>>>()?;
        if receiver.is_inactive() && args.iter().all(Lowered::is_inactive) {
            let receiver = self.value_expression(&receiver);
            let args = args.iter().map(|arg| self.argument_expression(arg));
            let (method, turbofish) = (&call.method, &call.turbofish);
            return Ok(Lowered::plain(quote!(#receiver.#method #turbofish(#(#args),*))));
        }
        let name = call.method.to_string();
        let wrong_arity =
            |expected: usize| syn::Error::new(span, format!("`{name}` takes {expected} argument(s) here"));
        let active_receiver = |what: &str| match receiver {
            Lowered::Active(id) => Ok(id),
            Lowered::Inactive { .. } => Err(syn::Error::new(
                span,
                format!(
                    "`#[differentiable]` differentiates `{name}` with respect to its receiver only; {what}"
                ),
            )),
        };
        if name == "clone" && args.is_empty() {
            return Ok(receiver);
        }
        if PLAIN_QUERIES.contains(&name.as_str()) && args.iter().all(Lowered::is_inactive) {
            // A size is not differentiated: read it from the value.
            let receiver = self.value_expression(&receiver);
            let args = args.iter().map(|arg| self.argument_expression(arg));
            let method = &call.method;
            return Ok(Lowered::plain(quote!(#receiver.#method(#(#args),*))));
        }
        if name == "max" && args.is_empty() {
            let x = active_receiver("")?;
            return Ok(self.unary(rule_path("LargestElement", span), x, span));
        }
        if name == "min" && args.is_empty() {
            return Err(syn::Error::new(
                span,
                "the `min` reduction of a tensor has no derivative rule in static mode yet (`a.min(b)` of two real scalars has one; `-(-x).max()` is the same value)",
            ));
        }
        if let Some((_, variant)) = ELEMENTARY.iter().find(|(method, _)| *method == name) {
            if !args.is_empty() {
                return Err(wrong_arity(0));
            }
            let x = active_receiver("")?;
            let variant = Ident::new(variant, span);
            let rule = quote_spanned!(span=> ::fluxion::ops::elementwise::Elementary::#variant);
            return Ok(self.unary(rule, x, span));
        }
        if name == "powi" || name == "powf" {
            let [exponent @ Lowered::Inactive { .. }] = args.as_slice() else {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`#[differentiable]` differentiates `{name}` with respect to the base only: the exponent must not be differentiated (write `(p * x.ln()).exp()` for a differentiated exponent)"
                    ),
                ));
            };
            let x = active_receiver("")?;
            let exponent = self.value_expression(exponent);
            let variant = Ident::new(if name == "powi" { "Powi" } else { "Powf" }, span);
            let rule = quote_spanned!(span=> ::fluxion::ops::elementwise::Elementary::#variant(#exponent));
            return Ok(self.unary(rule, x, span));
        }
        if name == "clamp" {
            let [low @ Lowered::Inactive { .. }, high @ Lowered::Inactive { .. }] = args.as_slice() else {
                return Err(syn::Error::new(
                    span,
                    "`#[differentiable]` differentiates `clamp` with respect to its receiver only: the bounds must not be differentiated (write `x.max(low).min(high)` for differentiated bounds)",
                ));
            };
            let x = active_receiver("")?;
            let (low, high) = (self.value_expression(low), self.value_expression(high));
            let rule = rule_path("Clamp", span);
            return Ok(self.unary(quote_spanned!(span=> #rule::from((#low, #high))), x, span));
        }
        if let Some((_, function)) = NAMED_FUNCTIONS.iter().find(|(method, _)| *method == name) {
            // `x.softplus()` is `x.map_function(SoftplusFunction)`; `x.leaky_relu(a)` is
            // `x.map_function(LeakyReluFunction { slope: a })`.
            let function = Ident::new(function, span);
            let path = quote_spanned!(span=> ::fluxion::ops::functions::#function);
            let function = match (name.as_str(), args.as_slice()) {
                ("leaky_relu", [slope @ Lowered::Inactive { .. }]) => {
                    let slope = self.value_expression(slope);
                    quote_spanned!(span=> #path { slope: #slope })
                }
                ("leaky_relu", _) => {
                    return Err(syn::Error::new(
                        span,
                        "`leaky_relu` takes one slope, which must not be differentiated",
                    ));
                }
                (_, []) => path,
                _ => return Err(wrong_arity(0)),
            };
            let x = active_receiver("")?;
            let rule = rule_path("FunctionMap", span);
            return Ok(self.unary(quote_spanned!(span=> #rule::from(#function)), x, span));
        }
        // `x.narrow_range(Axis::<k>, range)`: the rule built from both arguments.
        if name == "narrow_range" {
            let [axis @ Lowered::Inactive { .. }, range @ Lowered::Inactive { .. }] = args.as_slice() else {
                return Err(syn::Error::new(
                    span,
                    "`narrow_range` takes an axis and a range, neither differentiated: `x.narrow_range(Axis::<0>, start..end)`",
                ));
            };
            let x = active_receiver("")?;
            let (axis, range) = (self.value_expression(axis), self.value_expression(range));
            let rule = rule_path("RangeNarrowing", span);
            return Ok(self.unary(quote_spanned!(span=> #rule::from((#axis, #range))), x, span));
        }
        if let Some((_, rule)) = ARGUMENT_METHODS.iter().find(|(method, _)| *method == name) {
            let [argument @ Lowered::Inactive { .. }] = args.as_slice() else {
                return Err(syn::Error::new(
                    span,
                    format!("`{name}` takes one argument, which must not be differentiated"),
                ));
            };
            let x = active_receiver("")?;
            if name == "gather_rows" && !self.names_a_reference_parameter(argument) {
                self.keeps_borrows = true;
            }
            let value = self.value_expression(argument);
            // The indices of `gather_rows` are borrowed (a slice); the other arguments
            // are small values (an axis, ε, a scalar function).
            let argument = if name == "gather_rows" { quote!(&#value) } else { value };
            let rule = rule_path(rule, span);
            return Ok(self.unary(quote_spanned!(span=> #rule::from(#argument)), x, span));
        }
        // `reshape::<Target>()`, `flatten::<N>()`: the rule carries the target shape
        // (from the turbofish, else from how the result is used).
        if let Some((_, rule)) = RESHAPES.iter().find(|(method, _)| *method == name) {
            if !args.is_empty() {
                return Err(wrong_arity(0));
            }
            let x = active_receiver("")?;
            let (rule, turbofish) = (rule_path(rule, span), &call.turbofish);
            return Ok(self.unary(quote_spanned!(span=> #rule #turbofish::new()), x, span));
        }
        if let Some((_, rule)) = UNARY_METHODS.iter().find(|(method, _)| *method == name) {
            if !args.is_empty() {
                return Err(wrong_arity(0));
            }
            let x = active_receiver("")?;
            // Sizes given to the method (`max_pool2d::<2, 14, 14>()`) are the rule's.
            let (rule, turbofish) = (rule_path(rule, span), &call.turbofish);
            return Ok(self.unary(quote_spanned!(span=> #rule #turbofish), x, span));
        }
        if let Some(&(_, plain_arguments)) = CONVOLUTIONS.iter().find(|(method, _)| *method == name) {
            let rule = convolution_rule(call, plain_arguments, span);
            let (kernels, rule) = match args.as_slice() {
                [kernels] if plain_arguments == 0 => (kernels, rule),
                [kernels, padding @ Lowered::Inactive { .. }] if plain_arguments == 1 => {
                    let padding = self.value_expression(padding);
                    (kernels, quote_spanned!(span=> #rule::from(#padding)))
                }
                [kernels, stride @ Lowered::Inactive { .. }, padding @ Lowered::Inactive { .. }]
                    if plain_arguments == 2 =>
                {
                    let (stride, padding) = (self.value_expression(stride), self.value_expression(padding));
                    (kernels, quote_spanned!(span=> #rule::from((#stride, #padding))))
                }
                _ => {
                    let message = match plain_arguments {
                        0 => "`conv2d` takes the kernels",
                        1 => {
                            "`conv2d_padded` takes the kernels and a `Padding`, which must not be differentiated"
                        }
                        _ => {
                            "`conv2d_strided` takes the kernels, a `Stride` and a `Padding`, which must not be differentiated"
                        }
                    };
                    return Err(syn::Error::new(span, message));
                }
            };
            let a = self.operand(receiver, call.receiver.span());
            let b = self.operand(kernels.clone(), call.args[0].span());
            return Ok(self.push_op(OpKind::Binary { rule, a, b }, span));
        }
        if let Some(&(_, rule, arity)) = PLAIN_ARGUMENTS_METHODS.iter().find(|(method, ..)| *method == name) {
            if args.len() != arity {
                return Err(wrong_arity(arity));
            }
            if !args.iter().all(Lowered::is_inactive) {
                let message = format!(
                    "the arguments of `{name}` must not be differentiated: wrap a value of a differentiated parameter in `stop_gradient(…)` (a `#[no_derivative]` field read through `self` is one)"
                );
                return Err(syn::Error::new(span, message));
            }
            let x = active_receiver("")?;
            let rule = plain_arguments_rule(call, rule, span);
            let arguments: Vec<_> = args.iter().map(|argument| self.value_expression(argument)).collect();
            return Ok(self.unary(quote_spanned!(span=> #rule::from((#(#arguments),*))), x, span));
        }
        // `a.mul_add(b, c)` = a·b + c, rounded once: the rule of `a` and the pair `(b, c)`.
        if name == "mul_add" {
            let [b, c] = args.as_slice() else {
                return Err(wrong_arity(2));
            };
            let pair = if b.is_inactive() && c.is_inactive() {
                let (b, c) = (self.value_expression(b), self.value_expression(c));
                Lowered::plain(quote!((#b, #c)))
            } else {
                let elements = vec![
                    self.operand(b.clone(), call.args[0].span()),
                    self.operand(c.clone(), call.args[1].span()),
                ];
                self.push_op(OpKind::Gather { into: Collection::Tuple, elements }, span)
            };
            let a = self.operand(receiver, call.receiver.span());
            let b = self.operand(pair, span);
            return Ok(self.push_op(OpKind::Binary { rule: rule_path("MultiplyAdd", span), a, b }, span));
        }
        // `a.concat(Axis::<1>, &b)`: two operands, the rule built from the axis.
        if name == "concat" {
            let [axis @ Lowered::Inactive { .. }, other] = args.as_slice() else {
                return Err(syn::Error::new(span, "`concat` takes a plain axis and a tensor here"));
            };
            let axis = self.value_expression(axis);
            let rule = quote_spanned!(span=> ::fluxion::autodiff::rules::Concatenation::from(#axis));
            let other = other.clone();
            let a = self.operand(receiver, call.receiver.span());
            let b = self.operand(other, call.args[1].span());
            return Ok(self.push_op(OpKind::Binary { rule, a, b }, span));
        }
        if let Some((_, rule)) = BINARY_METHODS.iter().find(|(method, _)| *method == name) {
            let [arg] = args.as_slice() else {
                return Err(wrong_arity(1));
            };
            // `a.kron(&b)`'s rule carries its output sizes, inferred as the method's.
            let rule = match name.as_str() {
                "kron" => {
                    let rule = rule_path(rule, span);
                    quote_spanned!(span=> #rule::new())
                }
                _ => rule_path(rule, span),
            };
            let a = self.operand(receiver, call.receiver.span());
            let b = self.operand(arg.clone(), call.args[0].span());
            return Ok(self.push_op(OpKind::Binary { rule, a, b }, span));
        }
        if WITHOUT_RULE.contains(&name.as_str()) {
            return Err(syn::Error::new(
                span,
                format!(
                    "`{name}` has no derivative rule in static mode; give it one (a function with `#[differentiable(vjp = …, jvp = …)]`, or an operation implementing `fluxion::autodiff::rules::UnaryRule`), or apply it to a value that is not differentiated (`stop_gradient`, or `#[differentiable(wrt(…))]` leaving out a parameter that is data)"
                ),
            ));
        }
        self.keeps_borrows |= self.may_borrow_a_local(&receiver, &call.receiver);
        let mut call_args = vec![CallArg {
            operand: self.operand(receiver, call.receiver.span()),
            by_ref: true,
            written: first_and_last_spans(&call.receiver),
        }];
        for (lowered, arg) in args.into_iter().zip(&call.args) {
            let by_ref = is_reference(arg) || self.names_a_reference(arg);
            self.keeps_borrows |= self.may_borrow_a_local(&lowered, arg);
            let written = first_and_last_spans(arg);
            call_args.push(CallArg { operand: self.operand(lowered, arg.span()), by_ref, written });
        }
        let callee = CallTarget {
            callee: Callee::Method(call.method.clone()),
            generics: turbofish_arguments(call.turbofish.as_ref()),
        };
        Ok(self.push_op(OpKind::Call { callee, args: call_args }, span))
    }

    /// `function.apply([&x₁, …, &x_N])`: one operation when an element is
    /// differentiated, else plain code.
    fn fused(
        &mut self,
        function: Lowered,
        function_span: Span,
        array: &syn::ExprArray,
        span: Span,
    ) -> syn::Result<Lowered> {
        let inputs: Vec<(&Expr, Lowered)> = array
            .elems
            .iter()
            .map(|element| Ok((element, self.expr(element)?)))
            .collect::<syn::Result<_>>()?;
        if inputs.iter().all(|(_, lowered)| lowered.is_inactive()) {
            let function = self.value_expression(&function);
            let inputs = inputs.iter().map(|(_, lowered)| self.argument_expression(lowered));
            return Ok(Lowered::plain(quote_spanned!(span=> #function.apply([#(#inputs),*]))));
        }
        let function = self.operand(function, function_span);
        let inputs =
            inputs.into_iter().map(|(element, lowered)| self.operand(lowered, element.span())).collect();
        Ok(self.push_op(OpKind::Fused { function, inputs }, span))
    }

    fn call(&mut self, call: &syn::ExprCall, expr: &Expr) -> syn::Result<Lowered> {
        let Expr::Path(function) = &*call.func else {
            return self.verbatim(expr, "a call of a computed function");
        };
        // `f64::atan2(y, x)`, `T::sqrt(x)` (a scalar type parameter), `RealScalar::sin(x)`:
        // the method call `y.atan2(x)`.
        if let [owner, method] = function.path.segments.iter().collect::<Vec<_>>()[..]
            && (["f32", "f64", "RealScalar", "Scalar", "Float"].iter().any(|name| owner.ident == name)
                || self.type_params.contains(&owner.ident.to_string())
                    && has_scalar_rule(&method.ident.to_string()))
            && let Some(receiver) = call.args.first()
            && self.first_active_name(call.args.to_token_stream()).is_some()
        {
            let method_call = syn::ExprMethodCall {
                attrs: Vec::new(),
                receiver: Box::new(receiver.clone()),
                dot_token: Default::default(),
                method: method.ident.clone(),
                turbofish: None,
                paren_token: call.paren_token,
                args: call.args.iter().skip(1).cloned().collect(),
            };
            return self.method_call(&method_call);
        }
        let args = call.args.iter().map(|arg| self.expr(arg)).collect::<syn::Result<Vec<_>>>()?;
        if args.iter().all(Lowered::is_inactive) {
            let args = args.iter().map(|arg| self.argument_expression(arg));
            let function = &call.func;
            return Ok(Lowered::plain(quote!(#function(#(#args),*))));
        }
        let span = call.func.span();
        let last = function.path.segments.last().map(|segment| segment.ident.to_string());
        if last.as_deref() == Some("from_array") {
            let [Lowered::Active(x)] = args.as_slice() else {
                return Err(syn::Error::new(span, "`from_array` takes one array"));
            };
            return Ok(self.unary(rule_path("FromArray", span), *x, span));
        }
        if last.as_deref() == Some("stop_gradient") {
            let [Lowered::Active(id)] = args.as_slice() else {
                return Err(syn::Error::new(span, "`stop_gradient` takes one argument"));
            };
            let value = self.reference(*id);
            // A parameter taken by reference and named as it is (`stop_gradient(self)`)
            // is stopped as the plain body stops it, through the reference's own
            // `StopGradient` (a layer's settings with its shared buffers); any other
            // value (`stop_gradient(x.clone())`) as a constant copy, whose own dual
            // tangents (when the function runs on duals, for second derivatives) are
            // zero too.
            let named = matches!(call.args.first(), Some(Expr::Path(_)));
            return Ok(Lowered::plain(match self.values[*id] {
                Def::Param { by_ref: true, .. } if named => quote_spanned!(span=>
                    ::fluxion::autodiff::rules::stop_gradient(#value)
                ),
                _ => quote_spanned!(span=>
                    ::fluxion::autodiff::rules::stop_gradient(::core::clone::Clone::clone(#value))
                ),
            }));
        }
        if function.qself.is_some() {
            return Err(syn::Error::new(
                span,
                "`#[differentiable]` calls functions by path only (`f(x)` or `module::f(x)`)",
            ));
        }
        // `Name(a, b)`, `geometry::Name(a, b)`: a tuple struct's literal (types are
        // capitalised, functions not; `Some(x)` or `Shape::Circle(r)` is an enum's
        // variant, which has no tangent).
        let segments: Vec<_> =
            function.path.segments.iter().map(|segment| segment.ident.to_string()).collect();
        let capitalised = |name: &String| name.starts_with(|first: char| first.is_ascii_uppercase());
        if let Some(name) = segments.last()
            && capitalised(name)
        {
            let owner = segments.len().checked_sub(2).map(|position| &segments[position]);
            if ["Some", "Ok", "Err"].contains(&name.as_str())
                || owner.is_some_and(|owner| capitalised(owner) && owner != "Self")
            {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "`{name}(…)` of a differentiated value looks like an enum's variant, which static mode does not differentiate (an enum has no tangent): return the value inside, or a derived struct, and build the variant outside"
                    ),
                ));
            }
            let members =
                (0..args.len()).map(|position| Member::Unnamed(syn::Index::from(position))).collect();
            let elements = args
                .into_iter()
                .zip(&call.args)
                .map(|(lowered, arg)| self.operand(lowered, arg.span()))
                .collect();
            let into = Collection::Struct { path: function.path.clone(), members, rest: None };
            return Ok(self.push_op(OpKind::Gather { into, elements }, span));
        }
        if let [name] = segments.as_slice()
            && self.names.contains_key(name)
        {
            return Err(syn::Error::new_spanned(
                &call.func,
                format!(
                    "`{name}` is a local variable (a closure?): static mode differentiates calls of functions only; write it as a function with `#[differentiable]` and call that, or write its body inline"
                ),
            ));
        }
        let mut call_args = Vec::new();
        for (lowered, arg) in args.into_iter().zip(&call.args) {
            let by_ref = is_reference(arg) || self.names_a_reference(arg);
            self.keeps_borrows |= self.may_borrow_a_local(&lowered, arg);
            let written = first_and_last_spans(arg);
            call_args.push(CallArg { operand: self.operand(lowered, arg.span()), by_ref, written });
        }
        // The callee's companions are items of its own name (`f::__record`): generic
        // arguments written on the call (`f::<T>(x)`) go to the companion
        // (`f::__record::<T>`).
        let mut path = function.path.clone();
        let generics = match path.segments.last_mut().map(|last| core::mem::take(&mut last.arguments)) {
            Some(syn::PathArguments::AngleBracketed(arguments)) => turbofish_arguments(Some(&arguments)),
            _ => Vec::new(),
        };
        // `Type::g(x)`, `Self::g(x)`: an associated function (its owner capitalised, as
        // types are; modules are not), whose companions are its siblings
        // (`Type::__record_g`), `Self::g_grad(x)` for its gradient included.
        if let [.., owner, name] = segments.as_slice()
            && capitalised(owner)
            && let Some(companion) =
                OTHER_COMPANIONS.iter().find(|companion| name.ends_with(&format!("_{companion}")))
        {
            let function = &name[..name.len() - companion.len() - 1];
            return Err(syn::Error::new_spanned(
                &call.func,
                format!(
                    "inside a `#[differentiable]` body only `{owner}::{function}_grad` of an associated function is differentiated, not `{name}`: call `{owner}::{function}(…)` for the value and `{owner}::{function}_grad(…)` for the gradient (a function of one's own of this name: rename it)"
                ),
            ));
        }
        if let [.., owner, _] = segments.as_slice()
            && capitalised(owner)
            && let Some(last) = path.segments.pop()
        {
            path.segments.pop_punct();
            let callee = Callee::Associated { owner: path, name: last.into_value().ident };
            return Ok(
                self.push_op(OpKind::Call { callee: CallTarget { callee, generics }, args: call_args }, span)
            );
        }
        // `f::grad(x)`: the gradient of another `#[differentiable]` function, whose
        // own companions differentiate it (a function named `grad` called by a longer
        // path is taken for one: call it by its name alone).
        if path.segments.len() >= 2
            && let Some(last) = path.segments.last()
            && OTHER_COMPANIONS.iter().any(|companion| last.ident == companion)
        {
            return Err(syn::Error::new(
                span,
                format!(
                    "inside a `#[differentiable]` body only `f::grad` of another function is differentiated, not `f::{}`: call `f(…)` for the value and `f::grad(…)` for the gradient (a function of one's own of this name: call it by its name alone)",
                    last.ident
                ),
            ));
        }
        let callee = match path.segments.len() {
            2.. if path.segments.last().is_some_and(|last| last.ident == "grad") => {
                let mut function = path.clone();
                function.segments.pop();
                function.segments.pop_punct();
                Callee::Gradient(function)
            }
            _ => Callee::Function(path),
        };
        let callee = CallTarget { callee, generics };
        Ok(self.push_op(OpKind::Call { callee, args: call_args }, span))
    }
}

/// Whether static mode has a rule for the scalar method `name` (so `T::name(x)` of a
/// type parameter `T` is that method, not a function of the user's).
fn has_scalar_rule(name: &str) -> bool {
    let tables = [ELEMENTARY, UNARY_METHODS, BINARY_METHODS];
    tables.iter().any(|table| table.iter().any(|(method, _)| *method == name))
        || ["powi", "powf", "clamp"].contains(&name)
}

/// A `&X` expression for parameter `id` by its own name, before the body runs.
pub fn parameter_reference(values: &[Def], id: usize) -> TokenStream {
    match &values[id] {
        Def::Param { ident, by_ref: true, .. } => quote!(#ident),
        Def::Param { ident, by_ref: false, .. } => quote!(&#ident),
        _ => unreachable!("value {id} is no parameter"),
    }
}

/// A `&X` expression for active value `id`.
pub fn value_reference(values: &[Def], id: usize) -> TokenStream {
    match &values[id] {
        Def::Param { aliased: true, by_ref, .. } => {
            let alias = format_ident!("__p{}", id);
            if *by_ref { quote!(#alias) } else { quote!(&#alias) }
        }
        Def::Param { .. } => parameter_reference(values, id),
        Def::Op => {
            let name = format_ident!("__v{}", id);
            quote!(&#name)
        }
        Def::Field { base, member } => {
            let base = value_reference(values, *base);
            quote!(&(*#base).#member)
        }
    }
}

fn plain_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().map(Ident::to_string),
        _ => None,
    }
}

fn binding_name(pat: &Pat) -> Option<String> {
    match pat {
        Pat::Ident(ident) if ident.subpat.is_none() && ident.by_ref.is_none() => {
            Some(ident.ident.to_string())
        }
        Pat::Type(typed) => binding_name(&typed.pat),
        _ => None,
    }
}

/// Why a `return` left after the rewrite of early returns (`returns`) is refused.
const RETURN_UNSUPPORTED: &str = "`#[differentiable]` supports early `return`s from `if` and `match` arms only where the statements after them can move into the other arms: not inside a loop, a block or a `let`'s value, nor from an arm that binds a name those statements read; give the branch a value, `let y = if … { … } else { … };`, and return at the end";

/// The names a pattern binds.
pub fn collect_pattern_names(pat: &Pat, names: &mut Vec<String>) {
    match pat {
        Pat::Ident(ident) => {
            names.push(ident.ident.to_string());
            if let Some((_, sub)) = &ident.subpat {
                collect_pattern_names(sub, names);
            }
        }
        Pat::Type(typed) => collect_pattern_names(&typed.pat, names),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| collect_pattern_names(p, names)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| collect_pattern_names(p, names)),
        Pat::Struct(pat) => pat.fields.iter().for_each(|f| collect_pattern_names(&f.pat, names)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| collect_pattern_names(p, names)),
        Pat::Reference(reference) => collect_pattern_names(&reference.pat, names),
        Pat::Paren(paren) => collect_pattern_names(&paren.pat, names),
        Pat::Or(or) => or.cases.iter().for_each(|p| collect_pattern_names(p, names)),
        _ => {}
    }
}

/// A loop run again in the reverse sweep keeps up to this many checkpoints of its
/// state (on the stack): it reruns at most ⌈n / CHECKPOINTS⌉ iterations to reach
/// each of its n iterations.
pub const CHECKPOINTS: usize = 16;

/// Loops with a literal trip count up to this keep each iteration's values for the
/// reverse sweep, on the stack (unrolled into locals of their own when no loop is
/// directly inside); longer ones are run again as run-time loops are.
pub const STORED_TRIP_COUNT: usize = 16;

/// Whether `iterator` is a range (`a..b`, `a..=b`), maybe reversed: it owns its
/// bounds.
fn is_range(iterator: &Expr) -> bool {
    match iterator {
        Expr::Range(_) => true,
        Expr::MethodCall(call) if call.method == "rev" && call.args.is_empty() => is_range(&call.receiver),
        Expr::Paren(inner) => is_range(&inner.expr),
        _ => false,
    }
}

/// Whether `expr` is a literal (or a reference to one): a constant that owns nothing.
fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(_) => true,
        Expr::Reference(reference) => is_literal(&reference.expr),
        Expr::Paren(inner) => is_literal(&inner.expr),
        _ => false,
    }
}

/// The number of items of `a..b`, `a..=b` or their `.rev()` for integer literals.
fn trip_count(iterator: &Expr) -> Option<usize> {
    let literal = |expr: &Option<Box<Expr>>| -> Option<usize> {
        match expr.as_deref() {
            None => Some(0),
            Some(Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(int), .. })) => int.base10_parse().ok(),
            _ => None,
        }
    };
    match iterator {
        Expr::Range(range) if range.end.is_some() => {
            let (start, end) = (literal(&range.start)?, literal(&range.end)?);
            let end =
                if matches!(range.limits, syn::RangeLimits::Closed(_)) { end.checked_add(1)? } else { end };
            Some(end.saturating_sub(start))
        }
        Expr::MethodCall(call) if call.method == "rev" && call.args.is_empty() => trip_count(&call.receiver),
        Expr::Paren(inner) => trip_count(&inner.expr),
        _ => None,
    }
}

/// Which assignments a walk collects.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Assignments to the variables visible where the walk starts: a name that a
    /// `let`, a `match` pattern or a loop variable inside binds first is another
    /// variable (its assignments are left out), as are the names already bound.
    Outer(&'a [String]),
    /// Every assignment, whichever variable of that name it is.
    Anywhere,
}

/// The plain names that `stmts` assign (`x = …`, `x += …`), in nested blocks too,
/// to variables visible where they start.
fn collect_assigned(stmts: &[SynStmt], names: &mut Vec<String>) {
    collect_assigned_scoped(stmts, Scope::Outer(&[]), names);
}

/// [`collect_assigned`] of an expression.
fn collect_assigned_in(expr: &Expr, names: &mut Vec<String>) {
    collect_assigned_in_scope(expr, Scope::Outer(&[]), names);
}

/// Every plain name that `stmts` assign, whichever variable of that name it is.
fn collect_assigned_anywhere(stmts: &[SynStmt], names: &mut Vec<String>) {
    collect_assigned_scoped(stmts, Scope::Anywhere, names);
}

fn collect_assigned_scoped(stmts: &[SynStmt], scope: Scope<'_>, names: &mut Vec<String>) {
    let mut bound = match scope {
        Scope::Outer(bound) => bound.to_vec(),
        Scope::Anywhere => Vec::new(),
    };
    for stmt in stmts {
        let scope = if matches!(scope, Scope::Anywhere) { Scope::Anywhere } else { Scope::Outer(&bound) };
        match stmt {
            SynStmt::Expr(expr, _) => collect_assigned_in_scope(expr, scope, names),
            SynStmt::Local(local) => {
                if let Some(init) = &local.init {
                    collect_assigned_in_scope(&init.expr, scope, names);
                }
                collect_pattern_names(&local.pat, &mut bound);
            }
            _ => {}
        }
    }
}

fn collect_assigned_in_scope(expr: &Expr, scope: Scope<'_>, names: &mut Vec<String>) {
    let bound: &[String] = match scope {
        Scope::Outer(bound) => bound,
        Scope::Anywhere => &[],
    };
    let mut add = |target: &Expr| {
        if let Some(name) = plain_name(target)
            && !bound.contains(&name)
            && !names.contains(&name)
        {
            names.push(name);
        }
    };
    // The names bound inside, with those a pattern binds.
    let with = |pat: &Pat| {
        let mut inner = bound.to_vec();
        collect_pattern_names(pat, &mut inner);
        inner
    };
    let within =
        |inner: &[String], names: &mut Vec<String>, walk: &dyn Fn(Scope<'_>, &mut Vec<String>)| match scope {
            Scope::Anywhere => walk(Scope::Anywhere, names),
            Scope::Outer(_) => walk(Scope::Outer(inner), names),
        };
    match expr {
        Expr::Assign(assign) => match &*assign.left {
            // `(x, v) = …` assigns each.
            Expr::Tuple(targets) => targets.elems.iter().for_each(add),
            target => add(target),
        },
        Expr::Binary(binary) if compound_assignment(&binary.op).is_some() => add(&binary.left),
        Expr::Block(block) => collect_assigned_scoped(&block.block.stmts, scope, names),
        Expr::If(branch) => {
            collect_assigned_scoped(&branch.then_branch.stmts, scope, names);
            if let Some((_, otherwise)) = &branch.else_branch {
                collect_assigned_in_scope(otherwise, scope, names);
            }
        }
        Expr::Match(branch) => {
            for arm in &branch.arms {
                within(&with(&arm.pat), names, &|scope, names| {
                    collect_assigned_in_scope(&arm.body, scope, names)
                });
            }
        }
        Expr::ForLoop(inner) => within(&with(&inner.pat), names, &|scope, names| {
            collect_assigned_scoped(&inner.body.stmts, scope, names)
        }),
        Expr::While(inner) => collect_assigned_scoped(&inner.body.stmts, scope, names),
        Expr::Loop(inner) => collect_assigned_scoped(&inner.body.stmts, scope, names),
        _ => {}
    }
}

/// Whether `tokens` hold the identifier or keyword `word`, in nested groups too.
pub fn contains_word(tokens: TokenStream, word: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => ident == word,
        proc_macro2::TokenTree::Group(group) => contains_word(group.stream(), word),
        _ => false,
    })
}

fn compound_assignment(op: &BinOp) -> Option<&BinOp> {
    matches!(op, BinOp::AddAssign(_) | BinOp::SubAssign(_) | BinOp::MulAssign(_) | BinOp::DivAssign(_))
        .then_some(op)
}

fn is_reference(expr: &Expr) -> bool {
    matches!(expr, Expr::Reference(_))
}

/// `expr` without the parentheses or invisible groups (a macro's `$e:expr`) around it.
fn without_parentheses(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(inner) => without_parentheses(&inner.expr),
        Expr::Group(inner) => without_parentheses(&inner.expr),
        other => other,
    }
}

/// The name of a construct in an error message.
fn construct_name(expr: &Expr) -> &'static str {
    match expr {
        Expr::If(_) => "`if`",
        Expr::Match(_) => "`match`",
        Expr::ForLoop(_) => "`for` loops",
        Expr::While(_) => "`while` loops",
        Expr::Loop(_) => {
            "a `loop` used as a value (`break value`: write the loop as a statement that sets a variable)"
        }
        Expr::Return(_) => "an early `return`",
        Expr::Closure(_) => "closures",
        Expr::Index(_) => "indexing",
        Expr::Cast(_) => "`as` casts",
        Expr::Macro(_) => "a macro",
        Expr::Tuple(_) => "tuples",
        Expr::Array(_) => "arrays",
        Expr::Struct(_) => "struct literals",
        Expr::Assign(_) => "assignments to places",
        Expr::Unsafe(_) => "`unsafe` blocks",
        Expr::Block(_) => "a block statement (give the block a value: `let v = { … };`)",
        _ => "this expression",
    }
}
