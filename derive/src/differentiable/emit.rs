//! Code generation from a lowered body: the joint reverse-mode function (forward
//! sweep, then the reverse sweep with one adjoint local per active value) and the
//! tangent (forward-mode) function.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::Index;

use super::lower::{
    Arm, Body, CHECKPOINTS, CallArg, CallTarget, Callee, Collection, Def, Loop, Lowered, Op, OpKind, Operand,
    Selector, Stmt, parameter_reference, value_reference,
};

const RULES: &str = "::fluxion::autodiff::rules";

fn rules() -> TokenStream {
    RULES.parse().expect("a path")
}

/// `tokens` located at `span`, each keeping how its names resolve (an operation's code
/// points at the user's expression, and the compiler reports one error there instead
/// of one per use). A call's argument keeps its own span (see [`written_at`]).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    map_spans(tokens, &|own| own.located_at(span), true)
}

/// `tokens` with each token's span `span_of` its own; with `keep_arguments`,
/// invisible groups (calls' arguments, see [`written_at`]) kept as they are.
fn map_spans(tokens: TokenStream, span_of: &impl Fn(Span) -> Span, keep_arguments: bool) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            match &token {
                TokenTree::Group(group) if keep_arguments && group.delimiter() == Delimiter::None => {}
                TokenTree::Group(group) => {
                    let mut inner =
                        Group::new(group.delimiter(), map_spans(group.stream(), span_of, keep_arguments));
                    inner.set_span(span_of(group.span()));
                    token = TokenTree::Group(inner);
                }
                _ => token.set_span(span_of(token.span())),
            }
            token
        })
        .collect()
}

/// An argument of a companion's call located where the user wrote the argument
/// (`written`: its first and last tokens' spans): the first token at the first, the
/// rest at the last, so that the compiler's span of the argument is the user's, and
/// an unmet bound that the call puts on the argument is reported as the plain call's
/// is, which the compiler then reports once. Each token keeps how it resolves (a
/// local of the generated code must not take the hygiene of a `macro_rules!`
/// caller's tokens). In an invisible group, which [`respan`] keeps.
fn written_at(tokens: TokenStream, (first, last): (Span, Span)) -> TokenStream {
    let at = |place: Span| move |own: Span| own.located_at(place);
    let mut tokens = tokens.into_iter();
    let head = tokens.next().map(|token| map_spans(token.into(), &at(first), false));
    let located = head.into_iter().flatten().chain(map_spans(tokens.collect(), &at(last), false));
    let mut group = Group::new(Delimiter::None, located.collect());
    group.set_span(first);
    TokenTree::Group(group).into()
}

/// Which sweep forward code serves: the reverse sweep's forward pass (values only),
/// tangents (one direction), or lanes (`__N` directions at once, each tangent an
/// array `[Tangent; __N]`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Reverse,
    Tangent,
    Lanes,
}

impl Mode {
    fn tangents(self) -> bool {
        self != Mode::Reverse
    }

    /// `expression` once per lane (`__lane`) into an array in lanes mode, else as is.
    fn per_lane(self, expression: TokenStream) -> TokenStream {
        match self {
            Mode::Lanes => quote!(::core::array::from_fn::<_, __N, _>(|__lane| #expression)),
            _ => expression,
        }
    }
}

fn value_name(id: usize) -> syn::Ident {
    format_ident!("__v{}", id)
}

/// The local holding operation `op`'s rule, spanned at the user's expression so that
/// a missing rule is reported there, once (a branch's record keeps it by this name).
pub(super) fn rule_name(op: usize, span: Span) -> syn::Ident {
    syn::Ident::new(&format!("__r{op}"), span)
}

fn adjoint_name(id: usize) -> syn::Ident {
    format_ident!("__a{}", id)
}

fn tangent_name(id: usize) -> syn::Ident {
    format_ident!("__t{}", id)
}

fn operand_reference(body: &Body, operand: &Operand) -> TokenStream {
    match operand {
        Operand::Active(id) => value_reference(&body.values, *id),
        Operand::Constant { name, owned: false } => quote!(#name),
        Operand::Constant { name, owned: true } => quote!(&#name),
    }
}

/// The arguments of a call as the callee receives them: by reference where the user
/// wrote `&x`, else a clone of the value (the reverse sweep still reads it).
fn call_arguments(body: &Body, args: &[CallArg]) -> Vec<TokenStream> {
    args.iter()
        .map(|arg| {
            let reference = operand_reference(body, &arg.operand);
            let argument =
                if arg.by_ref { reference } else { quote!(::core::clone::Clone::clone(#reference)) };
            written_at(argument, arg.written)
        })
        .collect()
}

/// A turbofish of `generics` (nothing for none), with `_` for each of `inferred`
/// generic parameters a companion adds after the function's own.
pub(super) fn turbofish(generics: &[TokenStream], inferred: usize) -> TokenStream {
    if generics.is_empty() {
        return TokenStream::new();
    }
    let inferred = (0..inferred).map(|_| quote!(_));
    quote!(::<#(#generics,)* #(#inferred),*>)
}

/// The generic parameters a companion adds after the function's own: the lanes'
/// count `__N`.
pub(super) fn companion_generics(companion: &str) -> usize {
    usize::from(companion.contains("_lanes"))
}

/// `callee(args)` (`companion` None) or its companion `callee::companion(args)` /
/// `receiver.companion_name(args)` / `Owner::companion_name(args)`, with the generic
/// arguments the call names.
fn call_expression(
    body: &Body,
    target: &CallTarget,
    args: &[CallArg],
    companion: Option<&str>,
    extra: TokenStream,
) -> TokenStream {
    let arguments = call_arguments(body, args);
    let turbofish = turbofish(&target.generics, companion.map_or(0, companion_generics));
    match &target.callee {
        Callee::Function(path) => match companion {
            None => quote!(#path #turbofish(#(#arguments),*)),
            Some(companion) => {
                let companion = format_ident!("{}", companion);
                quote!(#path::#companion #turbofish(#(#arguments,)* #extra))
            }
        },
        Callee::Gradient(function) => match companion {
            None => quote!(#function::grad #turbofish(#(#arguments),*)),
            Some(companion) => {
                // `grad`'s own last generic parameter (its output type, written `_`)
                // is not the companions'.
                let generics = &target.generics[..target.generics.len().saturating_sub(1)];
                let generics = self::turbofish(generics, companion_generics(companion));
                let companion = format_ident!("__grad{}", &companion[1..]);
                quote!(#function::#companion #generics(#(#arguments,)* #extra))
            }
        },
        Callee::Associated { owner, name } => match companion {
            None => quote!(#owner::#name #turbofish(#(#arguments),*)),
            Some(companion) => {
                let companion = format_ident!("{}_{}", companion, name);
                quote!(#owner::#companion #turbofish(#(#arguments,)* #extra))
            }
        },
        Callee::Method(name) => {
            let receiver = &arguments[0];
            let rest = &arguments[1..];
            match companion {
                None => quote!((#receiver).#name #turbofish(#(#rest),*)),
                Some(companion) => {
                    let companion = format_ident!("{}_{}", companion, name);
                    quote!((#receiver).#companion #turbofish(#(#rest,)* #extra))
                }
            }
        }
    }
}

/// `value` wrapped as arm `arm` of `count` in nested `Branch`es (one arm: bare).
fn encode_arm(arm: usize, count: usize, value: TokenStream) -> TokenStream {
    let rules = rules();
    match (arm, count) {
        (_, 1) => value,
        (0, _) => quote!(#rules::Branch::First(#value)),
        _ => {
            let inner = encode_arm(arm - 1, count - 1, value);
            quote!(#rules::Branch::Second(#inner))
        }
    }
}

/// The value of an arm's result (an owned value, as the branch's result).
fn arm_output(body: &Body, output: &Lowered) -> TokenStream {
    match output {
        Lowered::Active(id) => output_value(body, *id),
        Lowered::Inactive { tokens, by_ref: true } => quote!(::core::clone::Clone::clone(#tokens)),
        Lowered::Inactive { tokens, by_ref: false } => quote!(#tokens),
    }
}

/// The tangent of an arm's result.
fn arm_output_tangent(body: &Body, mode: Mode, output: &Lowered, value: TokenStream) -> TokenStream {
    match output {
        Lowered::Active(id) => {
            let tangent = tangent_reference(body, mode, *id);
            quote!(::core::clone::Clone::clone(#tangent))
        }
        Lowered::Inactive { .. } => {
            mode.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(&#value)))
        }
    }
}

/// `if` or `match` over the arms, each arm's code from `arm_code(position, arm)`.
fn select(
    selector: &Selector,
    arms: &[Arm],
    mut arm_code: impl FnMut(usize, &Arm) -> TokenStream,
) -> TokenStream {
    match selector {
        Selector::If(condition) => {
            let (then_code, else_code) = (arm_code(0, &arms[0]), arm_code(1, &arms[1]));
            quote!(if #condition { #then_code } else { #else_code })
        }
        Selector::Match { scrutinee, patterns } => {
            let codes: Vec<_> =
                arms.iter().enumerate().map(|(position, arm)| arm_code(position, arm)).collect();
            quote!(match #scrutinee { #(#patterns => { #codes })* })
        }
    }
}

/// The forward sweep of a branch: each arm runs its statements and gives the
/// branch's result with the record of the arm that ran (reverse mode), or the result
/// with its tangent (`tangents`).
fn forward_branch(body: &Body, index: usize, mode: Mode) -> TokenStream {
    let branch = &body.branches[index];
    let (record, value, tangent) =
        (format_ident!("__b{}", index), value_name(branch.result), tangent_name(branch.result));
    let count = branch.arms.len();
    let selected = select(&branch.selector, &branch.arms, |position, arm| {
        let statements = forward_statements(body, &arm.stmts, mode);
        let output = arm_output(body, &arm.output);
        if mode.tangents() {
            let output_tangent = arm_output_tangent(body, mode, &arm.output, quote!(__value));
            quote!(#statements let __value = #output; let __tangent = #output_tangent; (__value, __tangent))
        } else {
            let stored = &arm.stored;
            let kept = encode_arm(position, count, quote!((#(#stored,)*)));
            // The result first: `kept` may move a value the result clones.
            quote!(#statements let __value = #output; (#kept, __value))
        }
    });
    if mode.tangents() {
        quote!(let (#value, #tangent) = #selected;)
    } else {
        quote!(let (#record, #value) = #selected;)
    }
}

/// The names of a rerun loop's checkpoints: its trip count, the iterations between
/// two checkpoints, and the checkpoints (the carried values and plain state before
/// every `stride`-th iteration).
fn checkpoint_names(index: usize) -> (Ident, Ident, Ident) {
    (
        format_ident!("__count{}", index),
        format_ident!("__stride{}", index),
        format_ident!("__checkpoints{}", index),
    )
}

/// The carried values and plain state variables, as a checkpoint holds them.
fn checkpoint_fields(looped: &Loop, index: usize) -> (Vec<Ident>, &[Ident]) {
    let carries =
        (0..looped.carried.len()).map(|position| format_ident!("__carry{}_{}", index, position)).collect();
    (carries, &looped.plain_state)
}

/// A checkpoint: a tuple of clones of the carried values and the plain state, and
/// of the loop's iterator `__iterations` when `with_iterator`.
fn checkpoint(carries: &[Ident], state: &[Ident], with_iterator: bool) -> TokenStream {
    let iterator = with_iterator.then(|| quote!(::core::clone::Clone::clone(&__iterations),));
    quote! {(
        #(::core::clone::Clone::clone(&#carries),)*
        #(::core::clone::Clone::clone(&#state),)*
        #iterator
    )}
}

/// A rerun loop's forward sweep: its trip count, and a checkpoint before every
/// `stride`-th iteration (at most `CHECKPOINTS` of them, on the stack), so that the
/// reverse sweep reruns at most `stride` iterations to reach each one.
fn checkpointed_forward(body: &Body, looped: &Loop, index: usize) -> TokenStream {
    let (count, stride, checkpoints) = checkpoint_names(index);
    let (range, pattern) = (format_ident!("__range{}", index), &looped.pattern);
    let (carries, state) = checkpoint_fields(looped, index);
    let checkpoint = checkpoint(&carries, state, false);
    if looped.condition.is_some() || looped.leaves_early {
        // The trip count of a loop with a condition, or one its body may leave, is
        // known at its end: when the checkpoints are full, every other one goes and
        // the stride doubles. A checkpoint comes before the condition, which the
        // reverse sweep evaluates again; the loop also ends with its iterator
        // (`repeat(())` for `while` and `loop`). A `break` in the body leaves before
        // the iteration is counted; the rerun iterations, which all ran to their end,
        // do not take it again.
        let (start, rest) = tested_iteration(body, looped, index, Mode::Reverse);
        let items = format_ident!("__items{}", index);
        return quote! {
            let mut #count = 0usize;
            let mut #stride = 1usize;
            let mut #checkpoints: [::core::option::Option<_>; #CHECKPOINTS] =
                [const { ::core::option::Option::None }; #CHECKPOINTS];
            let mut #items = ::core::clone::Clone::clone(&#range);
            loop {
                if #count % #stride == 0 {
                    if #count / #stride == #CHECKPOINTS {
                        for __slot in 0..#CHECKPOINTS {
                            #checkpoints[__slot] = if __slot < #CHECKPOINTS / 2 {
                                #checkpoints[2 * __slot].take()
                            } else {
                                ::core::option::Option::None
                            };
                        }
                        #stride *= 2;
                    }
                    #checkpoints[#count / #stride] = ::core::option::Option::Some(#checkpoint);
                }
                let ::core::option::Option::Some(#pattern) = ::core::iter::Iterator::next(&mut #items) else {
                    break;
                };
                #start
                #rest
                #count += 1;
            }
        };
    }
    let iteration = iteration_forward(body, looped, index, Mode::Reverse);
    quote! {
        let #count = ::core::iter::Iterator::count(::core::clone::Clone::clone(&#range));
        let #stride = ::core::cmp::max(1, #count.div_ceil(#CHECKPOINTS));
        let mut #checkpoints: [::core::option::Option<_>; #CHECKPOINTS] =
            [const { ::core::option::Option::None }; #CHECKPOINTS];
        for (__j, #pattern) in ::core::iter::Iterator::enumerate(::core::clone::Clone::clone(&#range)) {
            if __j % #stride == 0 {
                #checkpoints[__j / #stride] = ::core::option::Option::Some(#checkpoint);
            }
            #iteration
        }
    }
}

/// How many levels of checkpoints a rerun loop's reverse sweep keeps: the forward
/// sweep's, then `RERUN_LEVELS − 1` more within each stretch, each level cutting a
/// stretch into up to `CHECKPOINTS` parts; the last level's iterations rerun from
/// their part's start: about n²/(2·16^RERUN_LEVELS) reruns, and one more pass over
/// the iterations per level.
const RERUN_LEVELS: usize = 3;

/// The code of a loop's iteration as the reverse sweep reruns it.
struct Rerun<'a> {
    index: usize,
    /// The carried values' and plain state variables' names, as a checkpoint holds
    /// them (with the loop's iterator last).
    carries: &'a [Ident],
    state: &'a [Ident],
    pattern: &'a TokenStream,
    /// One iteration run forward.
    replay: TokenStream,
    /// One iteration run forward and swept back.
    last: TokenStream,
}

impl Rerun<'_> {
    /// Binds the carried values, the plain state and `__iterations` from the
    /// checkpoint `source` (an expression of a `&(…)` tuple).
    fn restore(&self, source: &TokenStream) -> TokenStream {
        let (carries, state) = (self.carries, self.state);
        quote! {
            let (#(mut #carries,)* #(mut #state,)* mut __iterations) = ::core::clone::Clone::clone(#source);
        }
    }

    /// The next item of `__iterations`, bound to the loop's pattern.
    fn next(&self) -> TokenStream {
        let pattern = self.pattern;
        quote! {
            let #pattern = ::core::iter::Iterator::next(&mut __iterations)
                .expect("a loop's iterator gives the same items when cloned");
        }
    }

    /// The reverse sweep of a stretch of `length` iterations that starts from the
    /// checkpoint `source`. Below the last level: one pass keeps up to `CHECKPOINTS`
    /// checkpoints of it, and each part, last first, is swept at the next level. At
    /// the last level: each iteration, last first, reruns from the stretch's start.
    fn stretch_sweep(&self, level: usize, source: TokenStream, length: &Ident) -> TokenStream {
        let (restore, next, replay, last) = (self.restore(&source), self.next(), &self.replay, &self.last);
        if level == RERUN_LEVELS {
            return quote! {
                for __j in (0..#length).rev() {
                    #restore
                    for _ in 0..__j {
                        #next
                        #replay
                    }
                    #next
                    #last
                }
            };
        }
        let index = self.index;
        let (stride, inner, part) = (
            format_ident!("__stride{}_{}", index, level),
            format_ident!("__inner{}_{}", index, level),
            format_ident!("__part{}_{}", index, level),
        );
        let part_length = format_ident!("__length{}_{}", index, level + 1);
        let checkpoint = checkpoint(self.carries, self.state, true);
        let inner_sweep = self.stretch_sweep(
            level + 1,
            quote!(#inner[#part].as_ref().expect("a checkpoint before every part")),
            &part_length,
        );
        quote! {
            let #stride = ::core::cmp::max(1, #length.div_ceil(#CHECKPOINTS));
            let mut #inner: [::core::option::Option<_>; #CHECKPOINTS] =
                [const { ::core::option::Option::None }; #CHECKPOINTS];
            {
                #restore
                for __j in 0..#length {
                    if __j % #stride == 0 {
                        #inner[__j / #stride] = ::core::option::Option::Some(#checkpoint);
                    }
                    #next
                    #replay
                }
            }
            for #part in (0..#length.div_ceil(#stride)).rev() {
                let #part_length = ::core::cmp::min(#stride, #length - #part * #stride);
                #inner_sweep
            }
        }
    }
}

/// The carried values, plain state variables and the loop's iterator
/// (`__iterations`) as they were at the start of segment `segment` (iterations
/// `segment·stride` on), from its checkpoint.
fn restore_segment(looped: &Loop, index: usize, segment: &Ident) -> TokenStream {
    let (_, stride, checkpoints) = checkpoint_names(index);
    let range = format_ident!("__range{}", index);
    let (carries, state) = checkpoint_fields(looped, index);
    quote! {
        let (#(mut #carries,)* #(mut #state,)*) = ::core::clone::Clone::clone(
            #checkpoints[#segment].as_ref().expect("a checkpoint before every stride-th iteration"),
        );
        let mut __iterations = ::core::clone::Clone::clone(&#range);
        if #segment > 0 {
            let _ = ::core::iter::Iterator::nth(&mut __iterations, #segment * #stride - 1);
        }
    }
}

/// One iteration's forward code, split: binding the carried values at its start,
/// then its statements and the update of the carried values.
fn iteration_parts(body: &Body, looped: &Loop, index: usize, mode: Mode) -> (TokenStream, TokenStream) {
    let mut start = TokenStream::new();
    let mut end = TokenStream::new();
    for (position, carried) in looped.carried.iter().enumerate() {
        let (carry, tangent_carry) =
            (format_ident!("__carry{}_{}", index, position), format_ident!("__tcarry{}_{}", index, position));
        let (inner, exit) = (value_name(carried.inner), value_reference(&body.values, carried.exit));
        start.extend(quote!(let #inner = ::core::clone::Clone::clone(&#carry);));
        end.extend(quote!(#carry = ::core::clone::Clone::clone(#exit);));
        if mode.tangents() {
            let (inner_tangent, exit_tangent) =
                (tangent_name(carried.inner), tangent_reference(body, mode, carried.exit));
            start.extend(quote!(let #inner_tangent = ::core::clone::Clone::clone(&#tangent_carry);));
            end.extend(quote!(#tangent_carry = ::core::clone::Clone::clone(#exit_tangent);));
        }
    }
    let statements = forward_statements(body, &looped.body, mode);
    (start, quote!(#statements #end))
}

/// One whole iteration's forward code.
fn iteration_forward(body: &Body, looped: &Loop, index: usize, mode: Mode) -> TokenStream {
    let (start, rest) = iteration_parts(body, looped, index, mode);
    quote!(#start #rest)
}

/// One iteration's forward code that first tests a `while` loop's condition on the
/// values at its start, leaving the loop when it fails.
fn tested_iteration(body: &Body, looped: &Loop, index: usize, mode: Mode) -> (TokenStream, TokenStream) {
    let (start, rest) = iteration_parts(body, looped, index, mode);
    let test = looped.condition.as_ref().map(|condition| quote!(if !#condition { break; }));
    (quote!(#start #test), rest)
}

/// One iteration's code as the reverse sweep reruns it: a `while` loop's condition
/// evaluated (it held for every counted iteration) for what it changes (`while
/// advance(&mut i)`), not tested.
fn rerun_iteration(body: &Body, looped: &Loop, index: usize) -> (TokenStream, TokenStream) {
    let (start, rest) = iteration_parts(body, looped, index, Mode::Reverse);
    let evaluated = looped.condition.as_ref().map(|condition| quote!(let _ = #condition;));
    (quote!(#start #evaluated), rest)
}

/// The trip count of a loop whose reverse-mode code is unrolled: a kept one (see
/// [`Loop::trip_count`]) with no loop directly inside (unrolling both would multiply
/// the inner body's copies).
fn unrolled_trip_count(looped: &Loop) -> Option<usize> {
    let nested = looped.body.iter().any(|stmt| matches!(stmt, Stmt::Loop(_)));
    looped.trip_count.filter(|_| !nested)
}

/// A loop's forward sweep: the iterator (and the values or checkpoints) kept for the
/// reverse sweep, the carried values (and tangents) updated by each iteration.
fn forward_loop(body: &Body, index: usize, mode: Mode) -> TokenStream {
    let looped = &body.loops[index];
    let (range, range_expression, pattern) =
        (format_ident!("__range{}", index), &looped.range, &looped.pattern);
    let mut setup = quote!(let #range = ::core::iter::IntoIterator::into_iter(#range_expression););
    let mut results = TokenStream::new();
    for (position, carried) in looped.carried.iter().enumerate() {
        let (carry, tangent_carry) =
            (format_ident!("__carry{}_{}", index, position), format_ident!("__tcarry{}_{}", index, position));
        let entry = value_reference(&body.values, carried.entry);
        setup.extend(quote!(let mut #carry = ::core::clone::Clone::clone(#entry);));
        let result = value_name(carried.result);
        results.extend(quote!(let #result = #carry;));
        if mode.tangents() {
            let (entry_tangent, result_tangent) =
                (tangent_reference(body, mode, carried.entry), tangent_name(carried.result));
            setup.extend(quote!(let mut #tangent_carry = ::core::clone::Clone::clone(#entry_tangent);));
            results.extend(quote!(let #result_tangent = #tangent_carry;));
        }
    }
    let iteration = iteration_forward(body, looped, index, mode);
    if let (Some(count), Mode::Reverse) = (unrolled_trip_count(looped), mode) {
        // Unrolled: iteration k's values in the k-th field of a tuple of locals.
        let (records, stored) = (format_ident!("__records{}", index), &looped.stored);
        let iterations = (0..count).map(|k| {
            quote! {{
                let #pattern = ::core::iter::Iterator::nth(&mut ::core::clone::Clone::clone(&#range), #k)
                    .expect("the loop's iterator gives as many items as its range spells");
                #iteration
                (#(#stored,)*)
            }}
        });
        return quote! {
            #setup
            let #records = (#(#iterations,)*);
            #results
        };
    }
    if let (Some(count), Mode::Reverse) = (looped.trip_count, mode) {
        // Each iteration's values kept, in order, for the reverse sweep.
        let (records, stored) = (format_ident!("__records{}", index), &looped.stored);
        return quote! {
            #setup
            let mut __iterations = ::core::clone::Clone::clone(&#range);
            let #records: [_; #count] = ::core::array::from_fn(|_| {
                let #pattern = ::core::iter::Iterator::next(&mut __iterations)
                    .expect("the loop's iterator gives as many items as its range spells");
                #iteration
                (#(#stored,)*)
            });
            #results
        };
    }
    if mode == Mode::Reverse {
        let forward = checkpointed_forward(body, looped, index);
        return quote! {
            #setup
            #forward
            #results
        };
    }
    let (start, rest) = tested_iteration(body, looped, index, mode);
    quote! {
        #setup
        for #pattern in ::core::clone::Clone::clone(&#range) {
            #start
            #rest
        }
        #results
    }
}

/// The primal value of each operation, in program order, with the user's own
/// statements between them.
fn forward_statements(body: &Body, stmts: &[Stmt], mode: Mode) -> TokenStream {
    forward_sweep(body, stmts, mode, &[], &[])
}

/// How the forward sweep runs a call: plainly (the reverse sweep runs the callee's
/// joint function, recomputing its forward pass), or through a companion that returns
/// the value with the callee's pullback, which the reverse sweep calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Run plainly.
    Not,
    /// `__record`: the pullback borrows the call's arguments.
    Borrowing,
    /// `__record_owned` (a layer's call): the input is cloned and the pullback keeps
    /// the clone, borrowing only the receiver.
    Owning,
}

/// How the joint function's forward sweep runs each operation that is a call
/// (`kept[op]`): the calls at the top level of the body, outside branches and loops,
/// keep their pullbacks, so that the reverse sweep sees the pullback's name. (A call
/// inside a branch or a loop recomputes its forward pass in the reverse sweep
/// instead.)
fn kept_calls(body: &Body) -> Vec<Kept> {
    let mut kept = vec![Kept::Not; body.ops.len()];
    for stmt in &body.stmts {
        if let Stmt::Op(index) = stmt
            && matches!(body.ops[*index].kind, OpKind::Call { .. })
        {
            kept[*index] = Kept::Borrowing;
        }
    }
    kept
}

/// The methods through which a layer is called in static mode (`StaticModule`'s and
/// the layers' own): their `__record_owned` companions exist for any sized input,
/// and their outputs are `Clone` (`StaticModule::Output`).
const LAYER_CALLS: [&str; 4] = ["apply_batch", "apply", "apply_images", "static_forward"];

/// The prefix of the static form of a `#[module]` block's helper whose reference
/// arguments are all differentiated and `Clone` (`__module_name`): its
/// `__record_owned` companion takes each by value.
const OWNING_HELPER: &str = "__module_";

/// [`kept_calls`] for a `__record` companion, whose pullback closure owns the
/// function's locals and so cannot hold a callee's pullback that borrows one: a
/// top-level call keeps its pullback when every argument it borrows outlives the
/// companion (a parameter taken by reference, a field of one, a constant such a
/// parameter holds), or, for a layer's call ([`LAYER_CALLS`]) on a value the body
/// computed, through the callee's `__record_owned` with a clone of that value (a
/// copy instead of its forward pass run again). A `#[module]` helper's call
/// ([`OWNING_HELPER`]) does the same when one of its inputs is computed, passing a
/// clone of each. `owned_inputs`: the value of each input that a
/// `__record_owned` companion takes by value (a local there), and whether its type is
/// bounded `Clone`: a layer called on it is then given a clone, as on a computed
/// value; otherwise it runs plainly.
fn kept_calls_in_record(body: &Body, owned_inputs: &[(usize, bool)]) -> Vec<Kept> {
    let root = |mut id: usize| {
        while let Def::Field { base, .. } = body.values[id] {
            id = base;
        }
        id
    };
    let outlives = |arg: &CallArg| match arg.operand {
        _ if !arg.by_ref => true,
        Operand::Active(id) => {
            let id = root(id);
            matches!(body.values[id], Def::Param { by_ref: true, .. })
                && owned_inputs.iter().all(|&(input, _)| input != id)
        }
        // In a `__record` companion only a reference parameter is held by reference.
        Operand::Constant { owned, .. } => !owned,
    };
    // A value the body made, or a field of one (a tuple's element).
    let computed = |arg: &CallArg| matches!(arg.operand, Operand::Active(id) if matches!(body.values[root(id)], Def::Op) || owned_inputs.contains(&(id, true)));
    let mut kept = kept_calls(body);
    for (op, kept) in body.ops.iter().zip(&mut kept) {
        let OpKind::Call { callee, args } = &op.kind else { continue };
        *kept = match (*kept, &callee.callee, args.as_slice()) {
            (Kept::Not, ..) => Kept::Not,
            _ if args.iter().all(outlives) => Kept::Borrowing,
            (_, Callee::Method(name), [receiver, input])
                if LAYER_CALLS.contains(&name.to_string().as_str())
                    && outlives(receiver)
                    && computed(input) =>
            {
                Kept::Owning
            }
            (_, Callee::Method(name), [receiver, inputs @ ..])
                if name.to_string().starts_with(OWNING_HELPER)
                    && outlives(receiver)
                    && inputs.iter().any(computed)
                    && inputs.iter().all(|input| computed(input) || outlives(input)) =>
            {
                Kept::Owning
            }
            _ => Kept::Not,
        };
    }
    kept
}

fn pullback_name(op: usize) -> syn::Ident {
    format_ident!("__pb{}", op)
}

/// [`forward_statements`], with the calls marked in `kept` run through their
/// `__record` or `__record_owned` companion, which returns the value and the pullback
/// to call in the reverse sweep (no forward pass recomputed there). `guards`: in a
/// `__record` companion, when each value's adjoint is needed (see [`Reverse::guards`]).
fn forward_sweep(
    body: &Body,
    stmts: &[Stmt],
    mode: Mode,
    kept: &[Kept],
    guards: &[Option<TokenStream>],
) -> TokenStream {
    let mut outer = TokenStream::new();
    for stmt in stmts {
        let index = match stmt {
            Stmt::Plain(tokens) => {
                outer.extend(tokens.clone());
                continue;
            }
            Stmt::Branch(index) => {
                outer.extend(forward_branch(body, *index, mode));
                continue;
            }
            Stmt::Loop(index) => {
                outer.extend(forward_loop(body, *index, mode));
                continue;
            }
            Stmt::Op(index) => index,
        };
        let mut out_op = TokenStream::new();
        let out = &mut out_op;
        let Op { out: result, kind, span } = &body.ops[*index];
        // Spanned at the user's expression: a missing rule is reported there.
        let rules = quote_spanned!(*span=> ::fluxion::autodiff::rules);
        let (value, rule) = (value_name(*result), rule_name(*index, *span));
        let tangent = tangent_name(*result);
        match kind {
            OpKind::Gather { into, elements } => {
                let values = elements.iter().map(|element| {
                    let reference = operand_reference(body, element);
                    quote!(::core::clone::Clone::clone(#reference))
                });
                out.extend(match into {
                    Collection::Tuple => quote!(let #value = (#(#values,)*);),
                    Collection::Array => quote!(let #value = [#(#values),*];),
                    Collection::Struct { path, members, rest } => {
                        let rest = rest.as_ref().map(|rest| quote!(..#rest));
                        // A tuple struct's tangent must keep its fields' positions.
                        let positions = members
                            .iter()
                            .any(|member| matches!(member, syn::Member::Unnamed(_)))
                            .then(|| quote!(::fluxion::autodiff::rules::tangent_keeps_positions(&#value);));
                        quote!(let #value = #path { #(#members: #values,)* #rest }; #positions)
                    }
                });
                if mode.tangents() {
                    let dots = elements.iter().map(|element| match element {
                        Operand::Active(id) => {
                            let dot = dot(body, mode, *id);
                            Some(quote!(::core::clone::Clone::clone(#dot)))
                        }
                        Operand::Constant { .. } => None,
                    });
                    let gathered = match into {
                        Collection::Struct { members, .. } => {
                            // The struct's zero tangent, each differentiated field's in place.
                            let fields = members.iter().zip(dots).filter_map(|(member, dot)| {
                                dot.map(|dot| quote!(__gathered.#member = #dot;))
                            });
                            quote!({
                                let mut __gathered = ::fluxion::__private::Differentiable::zero_tangent(&#value);
                                #(#fields)*
                                __gathered
                            })
                        }
                        array_or_tuple => {
                            let dots = elements.iter().zip(dots).map(|(element, dot)| {
                                dot.unwrap_or_else(|| {
                                    let reference = operand_reference(body, element);
                                    quote!(::fluxion::__private::Differentiable::zero_tangent(#reference))
                                })
                            });
                            match array_or_tuple {
                                Collection::Tuple => quote!((#(#dots,)*)),
                                _ => quote!([#(#dots),*]),
                            }
                        }
                    };
                    let gathered = mode.per_lane(gathered);
                    out.extend(quote!(let #tangent = #gathered;));
                }
            }
            OpKind::Lift(value_expression) => {
                out.extend(quote!(let #value = #value_expression;));
                if mode.tangents() {
                    let zero =
                        mode.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(&#value)));
                    out.extend(quote!(let #tangent = #zero;));
                }
            }
            OpKind::Unary { rule: rule_expression, x } => {
                let x_ref = value_reference(&body.values, *x);
                out.extend(quote_spanned! {*span=>
                    let #rule = #rule_expression;
                    let #value = #rules::UnaryRule::value(&#rule, #x_ref);
                });
                if mode.tangents() {
                    let x_dot = dot(body, mode, *x);
                    let push = mode.per_lane(
                        quote_spanned!(*span=> #rules::UnaryRule::push(&#rule, #x_ref, &#value, #x_dot)),
                    );
                    out.extend(quote!(let #tangent = #push;));
                }
            }
            OpKind::Binary { rule: rule_expression, a, b } => {
                let (a_ref, b_ref) = (operand_reference(body, a), operand_reference(body, b));
                out.extend(quote_spanned! {*span=>
                    let #rule = #rule_expression;
                    let #value = #rules::BinaryRule::value(&#rule, #a_ref, #b_ref);
                });
                if mode.tangents() {
                    let args = quote!((#a_ref, #b_ref, &#value));
                    let push = match (a, b) {
                        (Operand::Active(a), Operand::Active(b)) => {
                            let (a_dot, b_dot) = (dot(body, mode, *a), dot(body, mode, *b));
                            quote_spanned!(*span=> #rules::BinaryRule::push_both(&#rule, #args, #a_dot, #b_dot))
                        }
                        (Operand::Active(a), _) => {
                            let a_dot = dot(body, mode, *a);
                            quote_spanned!(*span=> #rules::BinaryRule::push_lhs(&#rule, #args, #a_dot))
                        }
                        (_, Operand::Active(b)) => {
                            let b_dot = dot(body, mode, *b);
                            quote_spanned!(*span=> #rules::BinaryRule::push_rhs(&#rule, #args, #b_dot))
                        }
                        _ => unreachable!("an active operation has an active operand"),
                    };
                    let push = mode.per_lane(push);
                    out.extend(quote!(let #tangent = #push;));
                }
            }
            OpKind::Fused { function, inputs } => {
                let function = operand_reference(body, function);
                let inputs_ref: Vec<_> = inputs.iter().map(|input| operand_reference(body, input)).collect();
                out.extend(quote_spanned! {*span=>
                    let #value = #rules::FusedOperand::fused_value(#function, [#(#inputs_ref),*]);
                });
                if mode.tangents() {
                    let dots = inputs.iter().map(|input| match input {
                        Operand::Active(id) => {
                            let dot = dot(body, mode, *id);
                            quote!(::core::option::Option::Some(#dot))
                        }
                        Operand::Constant { .. } => quote!(::core::option::Option::None),
                    });
                    let push = mode.per_lane(
                        quote_spanned!(*span=> #rules::FusedOperand::fused_push(#function, [#(#inputs_ref),*], [#(#dots),*])),
                    );
                    out.extend(quote!(let #tangent = #push;));
                }
            }
            OpKind::Call { callee, args } if mode.tangents() => {
                let seeds = args.iter().map(|arg| match arg.operand {
                    Operand::Active(id) => {
                        let dot = tangent_reference(body, mode, id);
                        quote!(::core::option::Option::Some(#dot))
                    }
                    Operand::Constant { .. } => quote!(::core::option::Option::None),
                });
                // In lanes mode the number of lanes is inferred from the tangents.
                let companion = match mode {
                    Mode::Lanes => "__jvp_lanes",
                    _ => "__jvp",
                };
                let call = call_expression(body, callee, args, Some(companion), quote!((#(#seeds,)*)));
                out.extend(quote_spanned!(*span=> let (#value, #tangent) = #call;));
            }
            OpKind::Call { callee, args } if kept.get(*index).is_some_and(|kept| *kept != Kept::Not) => {
                let pullback = pullback_name(*index);
                // Which arguments this caller needs cotangents of: the callee skips the
                // rest.
                let wanted = args.iter().map(|arg| match arg.operand {
                    Operand::Active(id) => guards.get(id).cloned().flatten().unwrap_or_else(|| quote!(true)),
                    Operand::Constant { .. } => quote!(false),
                });
                let call = if kept[*index] == Kept::Owning {
                    let owned: Vec<_> = args
                        .iter()
                        .enumerate()
                        .map(|(position, arg)| CallArg { by_ref: position == 0, ..arg.clone() })
                        .collect();
                    call_expression(body, callee, &owned, Some("__record_owned"), quote!([#(#wanted),*]))
                } else {
                    call_expression(body, callee, args, Some("__record"), quote!([#(#wanted),*]))
                };
                out.extend(quote_spanned!(*span=> let (#value, #pullback) = #call;));
            }
            OpKind::Call { callee, args } => {
                let call = call_expression(body, callee, args, None, TokenStream::new());
                out.extend(quote_spanned!(*span=> let #value = #call;));
            }
        }
        outer.extend(respan(out_op, *span));
    }
    outer
}

/// A `&Tangent` expression for active value `id` in the tangent code (in lanes
/// mode a `&[Tangent; __N]`; a field's is gathered lane by lane).
fn tangent_reference(body: &Body, mode: Mode, id: usize) -> TokenStream {
    match &body.values[id] {
        Def::Param { .. } => {
            let name = tangent_name(id);
            quote!(#name)
        }
        Def::Op => {
            let name = tangent_name(id);
            quote!(&#name)
        }
        Def::Field { .. } if mode == Mode::Lanes => {
            let lane = lane_reference(body, id);
            quote!(&::core::array::from_fn::<_, __N, _>(|__lane| ::core::clone::Clone::clone(#lane)))
        }
        Def::Field { base, member } => {
            let base = tangent_reference(body, mode, *base);
            quote!(&(*#base).#member)
        }
    }
}

/// A `&Tangent` of lane `__lane` of active value `id` (lanes mode).
fn lane_reference(body: &Body, id: usize) -> TokenStream {
    match &body.values[id] {
        Def::Param { .. } | Def::Op => {
            let name = tangent_name(id);
            quote!(&#name[__lane])
        }
        Def::Field { base, member } => {
            let base = lane_reference(body, *base);
            quote!(&(*#base).#member)
        }
    }
}

/// The tangent of `id` inside a per-lane expression: one lane's in lanes mode.
fn dot(body: &Body, mode: Mode, id: usize) -> TokenStream {
    match mode {
        Mode::Lanes => lane_reference(body, id),
        _ => tangent_reference(body, mode, id),
    }
}

/// Where the reverse sweep gathers a value's adjoint.
enum Target {
    /// A local `__a{id}`, defined by its first contribution.
    Local,
    /// A place in the caller's gradient (`(*__out0).w1`, in lanes mode
    /// `(*__out0)[__lane].w1`): a differentiated parameter or a field of one.
    Place(TokenStream),
}

/// `expression` (which reads lane `__lane`) for every lane, as an array.
fn lane_array(expression: TokenStream) -> TokenStream {
    quote!(::core::array::from_fn::<_, __N, _>(|__lane| #expression))
}

/// The reverse sweep's bookkeeping: which adjoints exist or have been written yet.
struct Reverse<'a> {
    body: &'a Body,
    /// A local's adjoint is defined; a place has been written (its old contents, the
    /// caller's or zeros, are replaced by the first write and added to after).
    started: Vec<bool>,
    /// Each place: the gradient it belongs to (`__out{position}`) and the fields
    /// leading to it.
    places: Vec<Option<(syn::Ident, TokenStream)>>,
    parents: Vec<Option<usize>>,
    /// A place written whole at least once (so its first write covered it).
    written_whole: Vec<bool>,
    /// Lanes mode: every adjoint is an array of `__N` (one per cotangent pulled at
    /// once); writes run lane by lane.
    lanes: bool,
    /// The calls whose pullback the forward sweep kept (see [`kept_calls`]).
    kept: Vec<Kept>,
    /// In a `__record` companion: for each value, the condition on `__wanted` (the
    /// caller's differentiated arguments) under which its adjoint is needed; `None`
    /// where it always is.
    guards: Vec<Option<TokenStream>>,
    out: TokenStream,
}

impl<'a> Reverse<'a> {
    fn new(body: &'a Body, params: &[Option<usize>], lanes: bool) -> Self {
        let count = body.values.len();
        let mut places: Vec<Option<(syn::Ident, TokenStream)>> = vec![None; count];
        let mut parents = vec![None; count];
        for (position, param) in params.iter().enumerate() {
            if let Some(id) = param {
                places[*id] = Some((format_ident!("__out{}", position), TokenStream::new()));
            }
        }
        // Fields are created after their base, so one pass in id order reaches them all.
        for id in 0..count {
            for &field in &body.fields[id] {
                parents[field] = Some(id);
                if let (Some((out, path)), Def::Field { member, .. }) = (&places[id], &body.values[field]) {
                    places[field] = Some((out.clone(), quote!(#path.#member)));
                }
            }
        }
        Reverse {
            body,
            started: vec![false; count],
            places,
            parents,
            written_whole: vec![false; count],
            lanes,
            // Lanes pull many cotangents per sweep: calls recompute their forward pass.
            kept: if lanes { Vec::new() } else { kept_calls(body) },
            guards: Vec::new(),
            out: TokenStream::new(),
        }
    }

    /// The condition under which `id`'s adjoint is needed, if it is not always.
    fn guard(&self, id: usize) -> Option<TokenStream> {
        self.guards.get(id).cloned().flatten()
    }

    /// The place of `id`; in lanes mode, its lane `__lane` (or `lane` when given).
    fn place(&self, id: usize, lane: Option<TokenStream>) -> Option<TokenStream> {
        let (out, path) = self.places[id].as_ref()?;
        Some(if self.lanes {
            let lane = lane.unwrap_or_else(|| quote!(__lane));
            quote!((*#out)[#lane] #path)
        } else {
            quote!((*#out) #path)
        })
    }

    fn target(&self, id: usize) -> Target {
        match self.place(id, None) {
            Some(place) => Target::Place(place),
            None => Target::Local,
        }
    }

    /// The adjoint of `id` as read inside a lane (`__a{id}[__lane]`) or whole.
    fn read(&self, id: usize) -> TokenStream {
        let adjoint = adjoint_name(id);
        if self.lanes { quote!(#adjoint[__lane]) } else { quote!(#adjoint) }
    }

    /// `expression` once per lane into an array in lanes mode, else as is.
    fn per_lane(&self, expression: TokenStream) -> TokenStream {
        if self.lanes { lane_array(expression) } else { expression }
    }

    /// `statement` run for every lane in lanes mode, else once.
    fn each_lane(&self, statement: TokenStream) -> TokenStream {
        if self.lanes { quote!(for __lane in 0..__N { #statement }) } else { statement }
    }

    /// Marks a place written: itself, the places around it and the places in it.
    fn touch(&mut self, id: usize) {
        // Written whole only by an overwrite: an accumulation into a place that a
        // field write started leaves its other fields as the caller had them.
        if !self.started[id] {
            self.written_whole[id] = true;
        }
        self.started[id] = true;
        let mut parent = self.parents[id];
        while let Some(base) = parent {
            self.started[base] = true;
            parent = self.parents[base];
        }
        let mut stack = self.body.fields[id].clone();
        while let Some(field) = stack.pop() {
            self.started[field] = true;
            stack.extend(self.body.fields[field].iter().copied());
        }
    }

    fn write_mode(&self, id: usize) -> TokenStream {
        if self.started[id] {
            quote!(::fluxion::autodiff::rules::Write::Accumulate)
        } else {
            quote!(::fluxion::autodiff::rules::Write::Overwrite)
        }
    }

    /// adjoint(target) ← or += `value` (in lanes mode an array, one per lane).
    fn write_value(&mut self, target: usize, value: TokenStream) {
        let adjoint = adjoint_name(target);
        let lanes = self.lanes;
        // In lanes mode, write element by element: `__value` is lane `__lane`'s.
        let by_lane = |write: TokenStream| {
            quote! {
                for (__lane, __value) in ::core::iter::Iterator::enumerate(::core::iter::IntoIterator::into_iter(#value)) {
                    #write
                }
            }
        };
        match self.target(target) {
            Target::Place(place) => {
                let write = self.write_mode(target);
                self.out.extend(if lanes {
                    by_lane(quote!(::fluxion::autodiff::rules::write_tangent(&mut #place, __value, #write);))
                } else {
                    quote!(::fluxion::autodiff::rules::write_tangent(&mut #place, #value, #write);)
                });
                self.touch(target);
            }
            Target::Local if self.started[target] && lanes => self.out.extend(by_lane(quote! {
                ::fluxion::__private::VectorSpace::add_assign(&mut #adjoint[__lane], &__value);
            })),
            Target::Local if self.started[target] => self.out.extend(quote! {
                ::fluxion::__private::VectorSpace::add_assign(&mut #adjoint, &#value);
            }),
            Target::Local => {
                self.started[target] = true;
                self.out.extend(quote!(let mut #adjoint = #value;));
            }
        }
    }

    /// adjoint(target) ← or += a rule's pullback: `value` computes it, `into(dest,
    /// write)` writes it into an existing adjoint.
    fn write_rule(
        &mut self,
        target: usize,
        value: TokenStream,
        into: impl Fn(TokenStream, TokenStream) -> TokenStream,
    ) {
        let guard = self.guard(target);
        let guarded = |code: TokenStream| match &guard {
            Some(condition) => quote!(if #condition { #code }),
            None => code,
        };
        match self.target(target) {
            Target::Place(place) => {
                let write = self.write_mode(target);
                let call = into(quote!(&mut #place), write);
                self.out.extend(guarded(self.each_lane(quote!(#call;))));
                self.touch(target);
            }
            Target::Local if self.started[target] => {
                let adjoint = self.read(target);
                let call = into(quote!(&mut #adjoint), quote!(::fluxion::autodiff::rules::Write::Accumulate));
                self.out.extend(guarded(self.each_lane(quote!(#call;))));
            }
            Target::Local => {
                let adjoint = adjoint_name(target);
                self.started[target] = true;
                let value = self.per_lane(value);
                let value = match &guard {
                    Some(condition) => {
                        let reference = value_reference(&self.body.values, target);
                        quote! {
                            if #condition { #value } else { ::fluxion::__private::Differentiable::zero_tangent(#reference) }
                        }
                    }
                    None => value,
                };
                self.out.extend(quote!(let mut #adjoint = #value;));
            }
        }
    }

    /// A `(&mut adjoint, Write)` destination for `target`, defining a zero local first
    /// when it has none yet.
    fn destination(&mut self, target: usize) -> TokenStream {
        match self.target(target) {
            Target::Place(place) => {
                let write = self.write_mode(target);
                self.touch(target);
                quote!((&mut #place, #write))
            }
            Target::Local => {
                let write = self.write_mode(target);
                if !self.started[target] {
                    self.define_zero_local(target);
                }
                let adjoint = self.read(target);
                quote!((&mut #adjoint, #write))
            }
        }
    }

    /// `let mut __a{id} = 0` (per lane in lanes mode): a local adjoint about to be
    /// written into.
    fn define_zero_local(&mut self, id: usize) {
        let (adjoint, reference) = (adjoint_name(id), value_reference(&self.body.values, id));
        let zero = self.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(#reference)));
        self.out.extend(quote!(let mut #adjoint = #zero;));
        self.started[id] = true;
    }

    /// Whether the adjoints of `a` and `b` share memory (one holds the other).
    fn overlap(&self, a: usize, b: usize) -> bool {
        let holds = |outer: usize, mut inner: usize| loop {
            if inner == outer {
                return true;
            }
            match self.parents[inner] {
                Some(parent) => inner = parent,
                None => return false,
            }
        };
        holds(a, b) || holds(b, a)
    }

    /// A constant condition: the writes of the sweep cover the place of `id` whole
    /// (written whole, or every field of it covered).
    fn covered(&self, id: usize) -> TokenStream {
        if self.written_whole[id] {
            return quote!(true);
        }
        let fields = &self.body.fields[id];
        let Some(place) = self.place(id, Some(quote!(0))) else { return quote!(false) };
        if fields.is_empty() {
            return quote!(false);
        }
        // The fields the sweep writes into (a field only read, such as a constant
        // `#[no_derivative]` one, has no place in the tangent); each counts when it
        // holds coordinates.
        let written: Vec<usize> = fields.iter().copied().filter(|&field| self.started[field]).collect();
        let counts = written.iter().map(|&field| {
            let field_place = self.place(field, Some(quote!(0)));
            quote!(::fluxion::autodiff::rules::holds_coordinates(&#field_place))
        });
        let covered = written.iter().map(|&field| self.covered(field));
        // A tangent that keeps the default FIELDS = 0 (no field count given) is covered
        // only when it holds nothing at all.
        quote!((::fluxion::autodiff::rules::field_count(&#place) == 0 #(+ #counts)*
            && (::fluxion::autodiff::rules::field_count(&#place) != 0
                || ::fluxion::autodiff::rules::holds_coordinates(&#place) == 0)
            #(&& #covered)*))
    }

    /// Adds the adjoints gathered by a local value's fields into its own adjoint.
    fn gather_fields(&mut self, id: usize) {
        let fields = self.body.fields[id].clone();
        let mut zeroed = false;
        for field in fields {
            self.gather_fields(field);
            if !self.started[field] {
                continue;
            }
            let Def::Field { member, .. } = &self.body.values[field] else { unreachable!("a field") };
            if !self.started[id] {
                self.define_zero_local(id);
                zeroed = true;
            }
            let (whole, part) = (self.read(id), self.read(field));
            let gather = if zeroed {
                quote!(#whole.#member = ::core::clone::Clone::clone(&#part);)
            } else {
                quote!(::fluxion::__private::VectorSpace::add_assign(&mut #whole.#member, &#part);)
            };
            self.out.extend(self.each_lane(gather));
        }
    }

    /// The reverse sweep of `stmts`, last first.
    fn statements(&mut self, stmts: &[Stmt]) {
        for stmt in stmts.iter().rev() {
            match stmt {
                Stmt::Plain(_) => {}
                Stmt::Op(index) => self.operation(*index),
                Stmt::Branch(index) => self.branch(*index),
                Stmt::Loop(index) => self.for_loop(*index),
            }
        }
    }

    /// A sweep that starts where this one stands, for one arm of a branch.
    fn fork(&self) -> Self {
        Reverse {
            body: self.body,
            started: self.started.clone(),
            places: self.places.clone(),
            parents: self.parents.clone(),
            written_whole: self.written_whole.clone(),
            lanes: self.lanes,
            kept: self.kept.clone(),
            guards: self.guards.clone(),
            out: TokenStream::new(),
        }
    }

    /// One arm's reverse sweep: its result's adjoint seeds its output, then its
    /// statements, last first.
    fn arm(&mut self, arm: &Arm, result: usize) {
        if let Lowered::Active(id) = arm.output {
            let adjoint = adjoint_name(result);
            self.write_value(id, quote!(#adjoint));
        }
        self.statements(&arm.stmts);
    }

    /// The reverse sweep of the arm that ran: a `match` on the branch's record.
    /// Adjoints of values from outside that some arm adds to are defined (as zero)
    /// first, so that every arm adds to them.
    fn branch(&mut self, index: usize) {
        let body = self.body;
        let branch = &body.branches[index];
        self.gather_fields(branch.result);
        if !self.started[branch.result] {
            return;
        }
        // A dry run finds the outer adjoints the arms write.
        let written = self.written_by(
            &branch.arms.iter().map(|arm| arm.values.clone()).collect::<Vec<_>>(),
            |dry, position| dry.arm(&branch.arms[position], branch.result),
            branch.arms.len(),
        );
        self.define_zero_adjoints(written);
        let count = branch.arms.len();
        let record = format_ident!("__b{}", index);
        let mut arms = Vec::new();
        for (position, arm) in branch.arms.iter().enumerate() {
            let mut reverse = self.fork();
            reverse.arm(arm, branch.result);
            let stored = &arm.stored;
            let pattern = encode_arm(position, count, quote!((#(#stored,)*)));
            let code = reverse.out;
            arms.push(quote!(#pattern => { #code }));
        }
        self.out.extend(quote!(match #record { #(#arms)* }));
    }

    /// The outer values (defined in none of `inner`, or a field of one: a field
    /// first read inside belongs to its base) whose adjoints some of `count` dry runs
    /// of `sweep` writes for the first time.
    fn written_by(
        &self,
        inner: &[core::ops::Range<usize>],
        mut sweep: impl FnMut(&mut Self, usize),
        count: usize,
    ) -> Vec<usize> {
        let mut written = Vec::new();
        for position in 0..count {
            let mut dry = self.fork();
            sweep(&mut dry, position);
            for id in 0..self.body.values.len() {
                // A field made inside belongs to its base: outer when the chain of
                // bases leaves the inner values (a parameter's field, a field of a
                // local tuple defined before the loop or branch).
                let is_inner = |value: usize| inner.iter().any(|values| values.contains(&value));
                let mut root = id;
                while let (true, Def::Field { base, .. }) = (is_inner(root), &self.body.values[root]) {
                    root = *base;
                }
                let outer = !is_inner(root);
                if outer && dry.started[id] && !self.started[id] && !written.contains(&id) {
                    written.push(id);
                }
            }
        }
        written
    }

    /// Defines the adjoints of `ids` as zero (locals) or writes zero (places).
    fn define_zero_adjoints(&mut self, ids: Vec<usize>) {
        for id in ids {
            if self.started[id] {
                continue;
            }
            let reference = value_reference(&self.body.values, id);
            let zero = quote!(::fluxion::__private::Differentiable::zero_tangent(#reference));
            match self.target(id) {
                Target::Place(place) => {
                    self.out.extend(self.each_lane(quote!(#place = #zero;)));
                    self.touch(id);
                }
                Target::Local => self.define_zero_local(id),
            }
        }
    }

    /// One iteration's reverse sweep: the carried adjoints seed the iteration's end
    /// values, then its statements, last first.
    fn iteration(&mut self, looped: &Loop, index: usize) {
        for (position, carried) in looped.carried.iter().enumerate() {
            let adjoint = format_ident!("__ca{}_{}", index, position);
            self.write_value(carried.exit, quote!(#adjoint));
        }
        self.statements(&looped.body);
    }

    /// The reverse sweep of a loop, iteration n − 1 down to 0. With a kept trip count
    /// the forward sweep kept each iteration's values (unrolled into a tuple, or in an
    /// array around a nested loop); otherwise, for each k, the loop runs again from
    /// the last checkpoint before k to iteration k, which runs with its values kept
    /// and is swept back.
    fn for_loop(&mut self, index: usize) {
        let body = self.body;
        let looped = &body.loops[index];
        for carried in &looped.carried {
            self.gather_fields(carried.result);
        }
        if !looped.carried.iter().any(|carried| self.started[carried.result]) {
            return;
        }
        let written =
            self.written_by(core::slice::from_ref(&looped.values), |dry, _| dry.iteration(looped, index), 1);
        self.define_zero_adjoints(written);
        let mut carried_adjoints = TokenStream::new();
        let mut updates = TokenStream::new();
        let mut sweep = self.fork();
        sweep.iteration(looped, index);
        // A carried value read through its fields in the body: their adjoints add up
        // into the carried adjoint.
        for carried in &looped.carried {
            sweep.gather_fields(carried.inner);
        }
        for (position, carried) in looped.carried.iter().enumerate() {
            let adjoint = format_ident!("__ca{}_{}", index, position);
            let initial = if self.started[carried.result] {
                let result = adjoint_name(carried.result);
                quote!(#result)
            } else {
                let value = value_name(carried.result);
                self.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(&#value)))
            };
            carried_adjoints.extend(quote!(let mut #adjoint = #initial;));
            let next = if sweep.started[carried.inner] {
                let inner = adjoint_name(carried.inner);
                quote!(#inner)
            } else {
                let value = value_name(carried.inner);
                self.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(&#value)))
            };
            updates.extend(quote!(#adjoint = #next;));
        }
        let reverse = sweep.out;
        if let Some(count) = unrolled_trip_count(looped) {
            let (records, stored) = (format_ident!("__records{}", index), &looped.stored);
            let iterations = (0..count).rev().map(|k| {
                let k = syn::Index::from(k);
                quote! {{
                    let (#(#stored,)*) = #records.#k;
                    #reverse
                    #updates
                }}
            });
            self.out.extend(quote! {
                #carried_adjoints
                #(#iterations)*
            });
            for (position, carried) in looped.carried.iter().enumerate() {
                let adjoint = format_ident!("__ca{}_{}", index, position);
                self.write_value(carried.entry, quote!(#adjoint));
            }
            return;
        }
        if looped.trip_count.is_some() {
            let (records, stored) = (format_ident!("__records{}", index), &looped.stored);
            self.out.extend(quote! {
                #carried_adjoints
                for __record in ::core::iter::Iterator::rev(::core::iter::IntoIterator::into_iter(#records)) {
                    let (#(#stored,)*) = __record;
                    #reverse
                    #updates
                }
            });
            for (position, carried) in looped.carried.iter().enumerate() {
                let adjoint = format_ident!("__ca{}_{}", index, position);
                self.write_value(carried.entry, quote!(#adjoint));
            }
            return;
        }
        // Segment by segment, last first, from the forward sweep's checkpoints; each
        // segment swept by `stretch_sweep` (more checkpoints, level by level).
        let (count, stride, _) = checkpoint_names(index);
        let segment = format_ident!("__segment{}", index);
        let restore = restore_segment(looped, index, &segment);
        let (carries, state) = checkpoint_fields(looped, index);
        let (start, forward) = rerun_iteration(body, looped, index);
        let rerun = Rerun {
            index,
            carries: &carries,
            state,
            pattern: &looped.pattern,
            replay: quote!(#start #forward),
            last: quote!(#start #forward #reverse #updates),
        };
        let (first, length) = (format_ident!("__first{}", index), format_ident!("__length{}_1", index));
        let sweep = rerun.stretch_sweep(1, quote!(&#first), &length);
        let first_checkpoint = checkpoint(&carries, state, true);
        self.out.extend(quote! {
            #carried_adjoints
            for #segment in (0..#count.div_ceil(#stride)).rev() {
                #restore
                let #first = #first_checkpoint;
                let #length = ::core::cmp::min(#stride, #count - #segment * #stride);
                #sweep
            }
        });
        for (position, carried) in looped.carried.iter().enumerate() {
            let adjoint = format_ident!("__ca{}_{}", index, position);
            self.write_value(carried.entry, quote!(#adjoint));
        }
    }

    fn operation(&mut self, index: usize) {
        let outer = core::mem::take(&mut self.out);
        self.operation_sweep(index);
        let code = core::mem::replace(&mut self.out, outer);
        self.out.extend(respan(code, self.body.ops[index].span));
    }

    fn operation_sweep(&mut self, index: usize) {
        let body = self.body;
        let Op { out: result, kind, span } = &body.ops[index];
        let rules = quote_spanned!(*span=> ::fluxion::autodiff::rules);
        self.gather_fields(*result);
        if !self.started[*result] {
            return;
        }
        let (value, rule) = (value_name(*result), rule_name(index, *span));
        // The output's adjoint as the rules read it: whole, or lane `__lane`'s.
        let adjoint = self.read(*result);
        match kind {
            OpKind::Lift(_) => {}
            OpKind::Gather { into, elements } => {
                for (position, element) in elements.iter().enumerate() {
                    if let Operand::Active(id) = element {
                        let part = match into {
                            Collection::Tuple => {
                                let position = Index::from(position);
                                quote!(#adjoint.#position)
                            }
                            Collection::Array => quote!(#adjoint[#position]),
                            Collection::Struct { members, .. } => {
                                let member = &members[position];
                                quote!(#adjoint.#member)
                            }
                        };
                        let part = self.per_lane(quote!(::core::clone::Clone::clone(&#part)));
                        self.write_value(*id, part);
                    }
                }
            }
            OpKind::Unary { x, .. } => {
                let x_ref = value_reference(&body.values, *x);
                let pull =
                    quote_spanned!(*span=> #rules::UnaryRule::pull(&#rule, #x_ref, &#value, &#adjoint));
                self.write_rule(*x, pull, |destination, write| {
                    quote_spanned!(*span=> #rules::UnaryRule::pull_into(&#rule, #x_ref, &#value, &#adjoint, #destination, #write))
                });
            }
            OpKind::Binary { a, b, .. } => {
                let (a_ref, b_ref) = (operand_reference(body, a), operand_reference(body, b));
                let args = quote!((#a_ref, #b_ref, &#value));
                match (a, b) {
                    (Operand::Active(a), Operand::Active(b)) if !self.overlap(*a, *b) => {
                        let (a_guard, b_guard) = (self.guard(*a), self.guard(*b));
                        let (a_destination, b_destination) = (self.destination(*a), self.destination(*b));
                        let both = quote_spanned! {*span=>
                            #rules::BinaryRule::pull_both_into(&#rule, #args, &#adjoint, #a_destination, #b_destination);
                        };
                        let call = if a_guard.is_none() && b_guard.is_none() {
                            both
                        } else {
                            // Only the cotangents the caller wants (a skipped one can be
                            // a whole matrix product).
                            let (a_guard, b_guard) =
                                (a_guard.unwrap_or(quote!(true)), b_guard.unwrap_or(quote!(true)));
                            quote_spanned! {*span=>
                                match (#a_guard, #b_guard) {
                                    (true, true) => { #both }
                                    (true, false) => {
                                        let (__destination, __write) = #a_destination;
                                        #rules::BinaryRule::pull_lhs_into(&#rule, #args, &#adjoint, __destination, __write);
                                    }
                                    (false, true) => {
                                        let (__destination, __write) = #b_destination;
                                        #rules::BinaryRule::pull_rhs_into(&#rule, #args, &#adjoint, __destination, __write);
                                    }
                                    (false, false) => {}
                                }
                            }
                        };
                        self.out.extend(self.each_lane(call));
                    }
                    (Operand::Active(a), Operand::Active(b)) if self.lanes => {
                        let lhs = lane_array(
                            quote_spanned!(*span=> #rules::BinaryRule::pull_lhs(&#rule, #args, &#adjoint)),
                        );
                        let rhs = lane_array(
                            quote_spanned!(*span=> #rules::BinaryRule::pull_rhs(&#rule, #args, &#adjoint)),
                        );
                        self.write_value(*a, lhs);
                        self.write_value(*b, rhs);
                    }
                    (Operand::Active(a), Operand::Active(b)) => {
                        let pulled = format_ident!("__pulled{}", index);
                        self.out.extend(quote_spanned! {*span=>
                            let #pulled = #rules::BinaryRule::pull_both(&#rule, #args, &#adjoint);
                        });
                        self.write_value(*a, quote!(#pulled.0));
                        self.write_value(*b, quote!(#pulled.1));
                    }
                    (Operand::Active(a), _) => {
                        let pull =
                            quote_spanned!(*span=> #rules::BinaryRule::pull_lhs(&#rule, #args, &#adjoint));
                        self.write_rule(*a, pull, |destination, write| {
                            quote_spanned!(*span=> #rules::BinaryRule::pull_lhs_into(&#rule, #args, &#adjoint, #destination, #write))
                        });
                    }
                    (_, Operand::Active(b)) => {
                        let pull =
                            quote_spanned!(*span=> #rules::BinaryRule::pull_rhs(&#rule, #args, &#adjoint));
                        self.write_rule(*b, pull, |destination, write| {
                            quote_spanned!(*span=> #rules::BinaryRule::pull_rhs_into(&#rule, #args, &#adjoint, #destination, #write))
                        });
                    }
                    _ => unreachable!("an active operation has an active operand"),
                }
            }
            OpKind::Fused { function, inputs } => {
                let function = operand_reference(body, function);
                let inputs_ref: Vec<_> = inputs.iter().map(|input| operand_reference(body, input)).collect();
                // One pass for every cotangent wanted; each then written as a rule's.
                let wanted = inputs.iter().map(|input| match input {
                    Operand::Active(id) => self.guard(*id).unwrap_or_else(|| quote!(true)),
                    Operand::Constant { .. } => quote!(false),
                });
                let pulled = format_ident!("__pulled{}", index);
                let pull = self.per_lane(
                    quote_spanned!(*span=> #rules::FusedOperand::fused_pull(#function, [#(#inputs_ref),*], &#adjoint, [#(#wanted),*])),
                );
                self.out.extend(quote!(let mut #pulled = #pull;));
                let slots = if self.lanes { quote!(#pulled[__lane]) } else { quote!(#pulled) };
                for (position, input) in inputs.iter().enumerate() {
                    if let Operand::Active(id) = input {
                        let position = Index::from(position);
                        let take = quote_spanned!(*span=> #rules::take_pulled(&mut #slots[#position]));
                        self.write_rule(*id, take.clone(), |destination, write| {
                            quote_spanned!(*span=> #rules::write_tangent(#destination, #take, #write))
                        });
                    }
                }
            }
            OpKind::Call { callee, args } => {
                // In a `__record` companion, a call whose result no wanted parameter
                // depends on is skipped whole; the adjoints it would add to are
                // defined first, so that they exist either way.
                let condition = self.guard(*result);
                if condition.is_some() {
                    for arg in args {
                        if let Operand::Active(id) = arg.operand
                            && matches!(self.target(id), Target::Local)
                            && !self.started[id]
                        {
                            self.define_zero_local(id);
                        }
                    }
                }
                let outer = core::mem::take(&mut self.out);
                let pulled = format_ident!("__pulled{}", index);
                let whole = adjoint_name(*result);
                if self.kept.get(index).is_some_and(|kept| *kept != Kept::Not) {
                    let pullback = pullback_name(index);
                    self.out.extend(quote_spanned!(*span=> let #pulled = #pullback(#whole);));
                } else {
                    let companion = if self.lanes { "__joint_lanes" } else { "__joint" };
                    let call = call_expression(body, callee, args, Some(companion), quote!(#whole));
                    self.out.extend(quote_spanned!(*span=> let #pulled = #call.1;));
                }
                for (position, arg) in args.iter().enumerate() {
                    if let Operand::Active(id) = arg.operand {
                        let position = Index::from(position);
                        let cotangent = quote_spanned!(*span=> #rules::argument_cotangent(#pulled.#position));
                        self.write_value(id, cotangent);
                    }
                }
                let code = core::mem::replace(&mut self.out, outer);
                self.out.extend(match condition {
                    Some(condition) => quote!(if #condition { #code }),
                    None => code,
                });
            }
        }
    }
}

/// The body of the joint function: the forward sweep, the seed `__seed` on the
/// output, the reverse sweep writing each differentiated parameter's tangent into
/// `__out{position}` (`params[position]` is its value id), and the value.
pub fn joint_body(body: &Body, params: &[Option<usize>], lanes: bool) -> TokenStream {
    let JointParts { forward, reverse } = joint_parts(body, params, lanes, false);
    quote! {
        #forward
        #reverse
        __value
    }
}

/// The joint function in two parts: `forward` runs the forward sweep and defines
/// `__value`; `reverse` runs the reverse sweep from `__seed`, writing each
/// differentiated parameter's tangent into `__out{position}`. The `__record`
/// companion returns `__value` with a closure over `reverse`.
#[derive(Clone)]
pub struct JointParts {
    pub forward: TokenStream,
    pub reverse: TokenStream,
}

/// The two parts of the joint function (see [`JointParts`]); with `recording`, the
/// top-level calls keep their pullbacks from the forward sweep (see [`kept_calls`]).
pub fn joint_parts(body: &Body, params: &[Option<usize>], lanes: bool, recording: bool) -> JointParts {
    let mut reverse = Reverse::new(body, params, lanes);
    if !recording {
        reverse.kept.clear();
    }
    JointParts::from_sweep(body, params, lanes, reverse)
}

/// The parts of a `__record` companion: the joint function's, with every pullback
/// whose adjoint leads only to parameters the caller does not differentiate skipped
/// (`__wanted[position]` says which it does), and the calls kept as
/// [`kept_calls_in_record`] says. `owned_input`: for `__record_owned`, the position
/// of each input it takes by value, with whether that input's type is bounded
/// `Clone`.
pub fn record_parts(body: &Body, params: &[Option<usize>], owned_inputs: &[(usize, bool)]) -> JointParts {
    let owned_inputs: Vec<(usize, bool)> = owned_inputs
        .iter()
        .filter_map(|&(position, clone)| params.get(position).copied().flatten().map(|id| (id, clone)))
        .collect();
    let mut reverse = Reverse::new(body, params, false);
    reverse.kept = kept_calls_in_record(body, &owned_inputs);
    reverse.guards = dependency_guards(body, params);
    let mut parts = JointParts::from_sweep(body, params, false, reverse);
    // An owned input that the body rebinds is read through its alias, bound in the
    // forward sweep to the companion's local: the reverse sweep binds it again, so
    // that the closure takes the input itself rather than a borrow of it.
    for &(id, _) in &owned_inputs {
        if let Def::Param { ident, aliased: true, .. } = &body.values[id] {
            let (alias, reverse) = (format_ident!("__p{}", id), parts.reverse);
            parts.reverse = quote!(let #alias = #ident; #reverse);
        }
    }
    parts
}

/// For each value, the condition under which a caller needs its adjoint: some
/// parameter it depends on is wanted (`__wanted[position]`). `None` (always) for a
/// value whose dependencies are not followed here: the results of branches and loops.
fn dependency_guards(body: &Body, params: &[Option<usize>]) -> Vec<Option<TokenStream>> {
    let count = body.values.len();
    let mut producer = vec![None; count];
    for (index, op) in body.ops.iter().enumerate() {
        producer[op.out] = Some(index);
    }
    // Each value's parameter positions, or `None` for unknown.
    let mut depends: Vec<Option<Vec<usize>>> = vec![None; count];
    for (position, param) in params.iter().enumerate() {
        if let Some(id) = param {
            depends[*id] = Some(vec![position]);
        }
    }
    let union =
        |depends: &[Option<Vec<usize>>], ids: &mut dyn Iterator<Item = usize>| -> Option<Vec<usize>> {
            let mut all = Vec::new();
            for id in ids {
                for position in depends[id].as_ref()? {
                    if !all.contains(position) {
                        all.push(*position);
                    }
                }
            }
            Some(all)
        };
    for id in 0..count {
        match &body.values[id] {
            Def::Param { .. } => {}
            Def::Field { base, .. } => depends[id] = depends[*base].clone(),
            Def::Op => {
                let Some(index) = producer[id] else { continue };
                let actives = |operands: &[&Operand]| -> Vec<usize> {
                    operands
                        .iter()
                        .filter_map(|operand| match operand {
                            Operand::Active(id) => Some(*id),
                            Operand::Constant { .. } => None,
                        })
                        .collect()
                };
                let operands = match &body.ops[index].kind {
                    OpKind::Unary { x, .. } => vec![*x],
                    OpKind::Binary { a, b, .. } => actives(&[a, b]),
                    OpKind::Fused { inputs, .. } => actives(&inputs.iter().collect::<Vec<_>>()),
                    OpKind::Gather { elements, .. } => actives(&elements.iter().collect::<Vec<_>>()),
                    OpKind::Lift(_) => Vec::new(),
                    OpKind::Call { args, .. } => {
                        actives(&args.iter().map(|arg| &arg.operand).collect::<Vec<_>>())
                    }
                };
                // Operands come before the value they make, except around loops.
                if operands.iter().all(|operand| *operand < id) {
                    depends[id] = union(&depends, &mut operands.into_iter());
                }
            }
        }
    }
    depends
        .into_iter()
        .map(|positions| {
            let positions = positions?;
            let wanted = positions.iter().map(|position| quote!(__wanted[#position]));
            Some(quote!((false #(|| #wanted)*)))
        })
        .collect()
}

impl JointParts {
    /// The parts from a reverse sweep set up for `body`.
    fn from_sweep(
        body: &Body,
        params: &[Option<usize>],
        lanes: bool,
        mut reverse: Reverse<'_>,
    ) -> JointParts {
        let forward = forward_sweep(body, &body.stmts, Mode::Reverse, &reverse.kept, &reverse.guards);
        let value = match &body.output {
            Lowered::Active(id) => {
                reverse.write_value(*id, quote!(__seed));
                output_value(body, *id)
            }
            Lowered::Inactive { tokens, .. } => quote!(#tokens),
        };
        reverse.statements(&body.stmts);
        // A parameter not covered by the sweep's writes starts from zero (a constant
        // condition: with every field of a struct written, no zeroing is compiled in).
        let mut zeroing = TokenStream::new();
        for (position, param) in params.iter().enumerate() {
            if let Some(id) = param {
                let (out, reference) =
                    (format_ident!("__out{}", position), value_reference(&body.values, *id));
                let zero_value = quote!(::fluxion::__private::Differentiable::zero_tangent(#reference));
                let zero_value = if lanes { lane_array(zero_value) } else { zero_value };
                let zero = quote!(*#out = #zero_value;);
                if !reverse.started[*id] {
                    reverse.out.extend(zero);
                } else if !reverse.written_whole[*id] {
                    let covered = reverse.covered(*id);
                    zeroing.extend(quote!(if !#covered { #zero }));
                }
            }
        }
        let reverse = reverse.out;
        JointParts {
            forward: quote! {
                #forward
                let __value = #value;
            },
            // What the reverse sweep computes again of the forward pass leaves state
            // alone (`fluxion::autodiff::recomputing`).
            reverse: quote! {
                let _ = &__seed;
                let __recomputation = ::fluxion::__private::recomputation();
                #zeroing
                #reverse
            },
        }
    }
}

/// `let dot = the given tangent, or zero when `None``: a parameter's tangent from
/// `__tangents.position` in a tangent function (`zero` holds the zero when needed).
pub fn tangent_seed(
    dot: &syn::Ident,
    zero: &syn::Ident,
    position: &Index,
    zero_value: TokenStream,
) -> TokenStream {
    quote! {
        let #zero;
        let #dot = match __tangents.#position {
            ::core::option::Option::Some(tangent) => tangent,
            ::core::option::Option::None => {
                #zero = #zero_value;
                &#zero
            }
        };
    }
}

/// The output value: an operation's result moves out; a parameter or field is cloned.
fn output_value(body: &Body, id: usize) -> TokenStream {
    let reference = value_reference(&body.values, id);
    quote!(::core::clone::Clone::clone(#reference))
}

/// The body of the tangent function: each differentiated parameter's tangent from
/// `__tangents` (zero when `None`), the forward sweep with tangents, and
/// `(value, tangent)`.
pub fn tangent_body(body: &Body, params: &[Option<usize>], mode: Mode) -> TokenStream {
    let mut seeds = TokenStream::new();
    for (position, param) in params.iter().enumerate() {
        let Some(id) = param else { continue };
        let (tangent, zero) = (tangent_name(*id), format_ident!("__zero{}", id));
        let position = Index::from(position);
        // Before the body: the parameter's own name.
        let reference = parameter_reference(&body.values, *id);
        let zero_value =
            mode.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(#reference)));
        seeds.extend(tangent_seed(&tangent, &zero, &position, zero_value));
    }
    let forward = forward_statements(body, &body.stmts, mode);
    let result = match &body.output {
        Lowered::Active(id) => {
            let (value, tangent) = (output_value(body, *id), tangent_reference(body, mode, *id));
            quote!((#value, ::core::clone::Clone::clone(#tangent)))
        }
        Lowered::Inactive { tokens, .. } => {
            let zero = mode.per_lane(quote!(::fluxion::__private::Differentiable::zero_tangent(&__value)));
            quote! {{
                let __value = #tokens;
                let __tangent = #zero;
                (__value, __tangent)
            }}
        }
    };
    quote! {
        #seeds
        #forward
        #result
    }
}
