//! Reverse mode on a tape: every operation on a [`Var`] whose inputs are active
//! records one node holding its pullback; the backward sweep visits the nodes in
//! reverse order, and each node adds its inputs' cotangents into their adjoints.
//!
//! The tape is per thread and exists only while a gradient is being taken
//! ([`crate::autodiff::grad`] and friends push it, run the function, and take it back).
//! Operations whose inputs are all constants record nothing. Any Rust control flow
//! works: the tape sees only the operations that actually ran.

use core::any::Any;
use core::cell::RefCell;
use core::sync::atomic::{AtomicU64, Ordering};
use std::boxed::Box;
use std::rc::Rc;
use std::vec::Vec;

use super::tangent::{Differentiable, VectorSpace};

/// A value being differentiated: the value itself and, when it depends on a
/// differentiated input, its node on the active tape.
///
/// Operations on `Var`s mirror those of the underlying values and record their
/// pullbacks. A `Var` made by [`Var::constant`] carries no node: gradients do not flow
/// into it.
pub struct Var<V> {
    value: Rc<V>,
    node: Option<NodeRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeRef {
    tape: u64,
    index: usize,
}

impl<V> Clone for Var<V> {
    /// Shares the value (no copy).
    fn clone(&self) -> Self {
        Var { value: Rc::clone(&self.value), node: self.node }
    }
}

impl<V: core::fmt::Debug> core::fmt::Debug for Var<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Var").field("value", &self.value).field("active", &self.node.is_some()).finish()
    }
}

impl<V> Var<V> {
    /// A value that gradients do not flow into.
    pub fn constant(value: V) -> Self {
        Var { value: Rc::new(value), node: None }
    }

    /// The value.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, consuming the `Var` (copied only if it is still shared).
    pub fn into_value(self) -> V
    where
        V: Clone,
    {
        Rc::unwrap_or_clone(self.value)
    }

    /// The value, shared: what pullbacks capture instead of copying it.
    pub fn shared_value(&self) -> Rc<V> {
        Rc::clone(&self.value)
    }

    /// Whether the value depends on a differentiated input.
    pub fn is_active(&self) -> bool {
        self.node.is_some()
    }
}

/// The same value with gradients stopped: later uses do not propagate into `x`.
pub fn stop_gradient<V>(x: &Var<V>) -> Var<V> {
    Var { value: Rc::clone(&x.value), node: None }
}

trait Node {
    /// `&mut Option<Tangent>` of this node's value, type-erased.
    fn adjoint(&mut self) -> &mut dyn Any;
    /// Adds this node's inputs' cotangents into the adjoints of `earlier` nodes.
    fn backward(&mut self, earlier: &mut [Box<dyn Node>]);
    /// Forgets the adjoint, before another sweep.
    fn clear(&mut self);
}

struct TypedNode<Tangent, Pullback> {
    adjoint: Option<Tangent>,
    pullback: Pullback,
}

impl<Tangent, Pullback> Node for TypedNode<Tangent, Pullback>
where
    Tangent: VectorSpace,
    Pullback: Fn(&Tangent, &mut [Box<dyn Node>]),
{
    fn adjoint(&mut self) -> &mut dyn Any {
        &mut self.adjoint
    }
    fn backward(&mut self, earlier: &mut [Box<dyn Node>]) {
        if let Some(adjoint) = &self.adjoint {
            (self.pullback)(adjoint, earlier);
        }
    }
    fn clear(&mut self) {
        self.adjoint = None;
    }
}

/// One recorded computation.
pub struct Tape {
    id: u64,
    nodes: Vec<Box<dyn Node>>,
}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

std::thread_local! {
    static ACTIVE_TAPES: RefCell<Vec<Tape>> = const { RefCell::new(Vec::new()) };
}

impl Tape {
    /// Starts recording on a new tape on this thread; [`Tape::finish`] takes it back.
    pub(crate) fn start() {
        let tape = Tape { id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed), nodes: Vec::new() };
        ACTIVE_TAPES.with_borrow_mut(|tapes| tapes.push(tape));
    }

    /// Stops recording and returns the tape.
    pub(crate) fn finish() -> Tape {
        ACTIVE_TAPES.with_borrow_mut(|tapes| tapes.pop()).expect("a tape was started on this thread")
    }

    /// Sets the adjoint of `output` to `seed`, sweeps backward and leaves every
    /// node's adjoint in place for [`Tape::adjoint`].
    pub(crate) fn backward<V: Differentiable>(&mut self, output: &Var<V>, seed: V::Tangent) {
        self.nodes.iter_mut().for_each(|node| node.clear());
        let Some(node) = output.node else { return };
        assert_eq!(node.tape, self.id, "the output was not computed on this tape");
        *self.nodes[node.index].adjoint().downcast_mut::<Option<V::Tangent>>().expect("adjoint type") =
            Some(seed);
        for index in (0..=node.index).rev() {
            let (earlier, rest) = self.nodes.split_at_mut(index);
            rest[0].backward(earlier);
        }
    }

    /// Takes the adjoint of leaf `index` after [`Tape::backward`], if any cotangent
    /// reached it.
    #[inline]
    pub(crate) fn take_adjoint<T: VectorSpace>(&mut self, index: usize) -> Option<T> {
        self.nodes[index].adjoint().downcast_mut::<Option<T>>().expect("adjoint type").take()
    }
}

/// Pushes a node onto the active tape and returns a reference to it.
fn push(node: Box<dyn Node>) -> NodeRef {
    ACTIVE_TAPES.with_borrow_mut(|tapes| {
        let tape = tapes.last_mut().expect("an active Var exists only while its tape records");
        tape.nodes.push(node);
        NodeRef { tape: tape.id, index: tape.nodes.len() - 1 }
    })
}

/// Checks that `node` belongs to the active tape (a `Var` must not outlive or cross
/// gradient computations).
fn check_active(node: NodeRef) {
    let active = ACTIVE_TAPES.with_borrow(|tapes| tapes.last().map(|tape| tape.id));
    assert_eq!(
        active,
        Some(node.tape),
        "a Var from another gradient computation was used; wrap values that should not be \
         differentiated in `Var::constant`"
    );
}

/// Adds `tangent` into the adjoint of the node at `index`.
fn accumulate<T: VectorSpace>(earlier: &mut [Box<dyn Node>], index: usize, tangent: T) {
    let slot = earlier[index].adjoint().downcast_mut::<Option<T>>().expect("adjoint type");
    match slot {
        Some(total) => total.add_assign(&tangent),
        None => *slot = Some(tangent),
    }
}

/// Creates a leaf: a differentiated input on the active tape.
#[inline]
pub(crate) fn leaf<V: Differentiable>(value: V) -> Var<V> {
    let node = push(Box::new(TypedNode::<V::Tangent, _> {
        adjoint: None,
        pullback: |_: &V::Tangent, _: &mut [Box<dyn Node>]| {},
    }));
    Var { value: Rc::new(value), node: Some(node) }
}

/// Records `y = f(x)` with the pullback `x̄ = pullback(ȳ)`.
///
/// This is the public mechanism for new primitives: compute the value with any code,
/// and state its reverse-mode rule as a closure that owns what it needs.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::{grad, record_unary};
///
/// // softplus(x) = ln(1 + eˣ), with its derivative σ(x).
/// fn softplus(x: &Var<f64>) -> Var<f64> {
///     let v = *x.value();
///     let y = if v > 0.0 { v + (-v).exp().ln_1p() } else { v.exp().ln_1p() };
///     record_unary(x, y, move |y_bar: &f64| y_bar / (1.0 + (-v).exp()))
/// }
/// let g = grad(|x: Var<f64>| softplus(&x), &0.0);
/// assert!((g - 0.5).abs() < 1e-12);
/// ```
pub fn record_unary<X, Y>(x: &Var<X>, y: Y, pullback: impl Fn(&Y::Tangent) -> X::Tangent + 'static) -> Var<Y>
where
    X: Differentiable,
    Y: Differentiable,
{
    let Some(parent) = x.node else { return Var::constant(y) };
    check_active(parent);
    let node = TypedNode::<Y::Tangent, _> {
        adjoint: None,
        pullback: move |y_bar: &Y::Tangent, earlier: &mut [Box<dyn Node>]| {
            accumulate(earlier, parent.index, pullback(y_bar));
        },
    };
    Var { value: Rc::new(y), node: Some(push(Box::new(node))) }
}

/// Records `y = f(a, b)` with the pullback `(ā, b̄) = pullback(ȳ)`; a constant input
/// receives nothing.
pub fn record_binary<A, B, Y>(
    a: &Var<A>,
    b: &Var<B>,
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> (A::Tangent, B::Tangent) + 'static,
) -> Var<Y>
where
    A: Differentiable,
    B: Differentiable,
    Y: Differentiable,
{
    let (parent_a, parent_b) = (a.node, b.node);
    if parent_a.is_none() && parent_b.is_none() {
        return Var::constant(y);
    }
    parent_a.into_iter().chain(parent_b).for_each(check_active);
    let node = TypedNode::<Y::Tangent, _> {
        adjoint: None,
        pullback: move |y_bar: &Y::Tangent, earlier: &mut [Box<dyn Node>]| {
            let (a_bar, b_bar) = pullback(y_bar);
            if let Some(parent) = parent_a {
                accumulate(earlier, parent.index, a_bar);
            }
            if let Some(parent) = parent_b {
                accumulate(earlier, parent.index, b_bar);
            }
        },
    };
    Var { value: Rc::new(y), node: Some(push(Box::new(node))) }
}
