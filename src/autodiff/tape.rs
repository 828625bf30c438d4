//! Reverse mode on a tape: every operation on a [`Var`] whose inputs are active
//! records one node holding its pullback; the backward sweep visits the nodes in
//! reverse order, and each node adds its inputs' cotangents into their adjoints.
//!
//! The tape is per thread and exists only while a gradient is being taken
//! ([`crate::autodiff::grad`] and friends push it, run the function, and take it back).
//! Operations whose inputs are all constants record nothing. Any Rust control flow
//! works: the tape sees only the operations that actually ran.
//!
//! # Memory
//!
//! Gradients are taken again and again (an optimiser's loop), so a finished tape
//! keeps its nodes for the next one on the same thread, and recording goes through
//! them in order: an operation reuses the next kept node when it has the same type
//! (one operation inserted or skipped since last time is tolerated), with the node's
//! allocation, its value's allocation and its adjoint's memory. A repeated
//! computation on inline tensors therefore allocates nothing for its nodes after the
//! first gradient (on heap tensors each operation still allocates its result, as
//! outside a gradient); a changed dynamic shape reallocates only that adjoint. Only
//! the last tape's nodes are kept, so alternating between two computations reuses
//! little. They stay held (values, adjoints) per thread, each thread of a pool
//! keeping its own, until the next gradient, the end of the thread, or
//! [`release_tape_memory`].
//!
//! Adjoints are written rather than zeroed and then added to: a rule learns through
//! [`Write`] whether the adjoint already holds a cotangent of this sweep. The
//! adjoints of the leaves (the differentiated inputs) live in the caller's gradient
//! buffers, so the gradient is never copied out of the tape.
use core::any::Any;
use core::cell::RefCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};
use std::boxed::Box;
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

use super::tangent::{Differentiable, VectorSpace};
use crate::backend::cpu::Write;
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::tensor::{Tensor, Zeros};

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

/// A traced value cut from the tape ([`stop_gradient`](super::rules::stop_gradient)):
/// the same value, and later uses do not propagate into `x` (a value of duals, as
/// in forward-over-reverse, also loses its dual tangents).
#[diagnostic::do_not_recommend]
impl<V: Differentiable + Clone> super::rules::StopGradient for &Var<V> {
    type Stopped = Var<V>;
    fn stop_gradient(self) -> Var<V> {
        Var { value: Rc::clone(&self.value), node: None }.stop_gradient()
    }
}

/// A traced value cut from the tape, taken by value.
#[diagnostic::do_not_recommend]
impl<V: Differentiable + Clone> super::rules::StopGradient for Var<V> {
    type Stopped = Var<V>;
    fn stop_gradient(self) -> Var<V> {
        let value = match V::CARRIES_TANGENT {
            true => Rc::new(Rc::unwrap_or_clone(self.value).without_tangent()),
            false => self.value,
        };
        Var { value, node: None }
    }
}

trait Node: Any {
    /// The [`AdjointSlot`] of this node's value, type-erased.
    fn adjoint(&mut self) -> &mut dyn Any;
    /// Adds this node's inputs' cotangents into the adjoints of `earlier` nodes.
    fn backward(&mut self, earlier: &mut Earlier<'_, '_>);
    /// Adds `cotangent`, this node's tangent type erased, into its adjoint (in
    /// `leaf`, the caller's gradient buffer, when it is a leaf). The cotangent's
    /// memory may be swapped with the adjoint's stale memory.
    fn add_erased(&mut self, leaf: Option<&mut &mut dyn Any>, cotangent: &mut dyn Any);
    /// For a leaf: sets its gradient buffer to zero if no cotangent reached it.
    fn zero_if_unreached(&mut self, gradient: &mut dyn Any);
    /// Forgets the adjoint (keeping its memory) before a sweep.
    fn clear(&mut self);
    /// Drops the pullback and the values it captured, keeping the node's memory for
    /// the next tape.
    fn release(&mut self);
    /// Whether the value owns resources (a heap buffer, shared with the traced input
    /// when this node is a leaf), rather than being plain data.
    fn owns_resources(&self) -> bool;
}

/// The adjoint of one node: `current` says whether this sweep has reached it. For
/// an inner node `tangent` holds the accumulation, its memory kept across sweeps
/// and, when the node is reused, across tapes (stale memory is overwritten); a
/// leaf's accumulation lives in the caller's gradient buffer instead.
struct AdjointSlot<T> {
    tangent: Option<T>,
    current: bool,
}

impl<T> AdjointSlot<T> {
    fn get(&self) -> Option<&T> {
        self.tangent.as_ref().filter(|_| self.current)
    }
}

/// Where an adjoint accumulates during a sweep.
enum Memory<'a, T> {
    /// An inner node's own memory.
    Node(&'a mut Option<T>),
    /// The caller's gradient buffer, for a leaf.
    Caller(&'a mut T),
}

/// An adjoint being accumulated: its memory and whether the sweep reached it yet.
struct Slot<'a, T> {
    current: &'a mut bool,
    memory: Memory<'a, T>,
}

impl<'a, T: VectorSpace> Slot<'a, T> {
    fn add(self, cotangent: T) {
        let current = core::mem::replace(self.current, true);
        match self.memory {
            Memory::Node(Some(total)) if current => total.add_assign(&cotangent),
            Memory::Node(memory) => *memory = Some(cotangent),
            Memory::Caller(total) if current => total.add_assign(&cotangent),
            Memory::Caller(memory) => *memory = cotangent,
        }
    }

    /// [`Slot::add`] of a cotangent held elsewhere: when nothing has reached the
    /// adjoint yet, its memory is swapped with the cotangent's (copied only when the
    /// adjoint has none), so `cotangent` may then hold stale values.
    fn add_swapping(self, cotangent: &mut T) {
        let current = core::mem::replace(self.current, true);
        match self.memory {
            Memory::Node(Some(total)) | Memory::Caller(total) if current => total.add_assign(cotangent),
            Memory::Node(Some(stale)) | Memory::Caller(stale) => core::mem::swap(stale, cotangent),
            Memory::Node(memory) => *memory = Some(cotangent.clone()),
        }
    }

    /// The accumulation, set to `zero()` first if nothing has reached it.
    fn in_place(self, zero: impl FnOnce() -> T) -> &'a mut T {
        let current = core::mem::replace(self.current, true);
        match self.memory {
            Memory::Node(memory) if current => memory.get_or_insert_with(zero),
            Memory::Node(memory) => memory.insert(zero()),
            Memory::Caller(memory) => {
                if !current {
                    *memory = zero();
                }
                memory
            }
        }
    }

    /// Memory for a cotangent that a kernel writes or adds as the returned [`Write`]
    /// says: to be overwritten when nothing has reached the adjoint in this sweep
    /// (the memory it has if that `fits`, else `fresh()`), else added to.
    ///
    /// # Panics
    /// When the accumulation so far does not `fit` (its shape differs).
    fn prepare(self, fits: impl Fn(&T) -> bool, fresh: impl FnOnce() -> T) -> (&'a mut T, Write) {
        let current = core::mem::replace(self.current, true);
        let memory = match self.memory {
            Memory::Node(memory) => {
                if !current && !memory.as_ref().is_some_and(&fits) {
                    *memory = None;
                }
                memory.get_or_insert_with(fresh)
            }
            Memory::Caller(memory) => {
                if !current && !fits(memory) {
                    *memory = fresh();
                }
                memory
            }
        };
        if !current {
            return (memory, Write::Overwrite);
        }
        assert!(fits(memory), "a cotangent's shape differs from that of the adjoint it is added to");
        (memory, Write::Accumulate)
    }
}

/// What a pullback sees during the sweep: the nodes recorded before its own, and the
/// caller's gradient buffers, which hold the adjoints of the leaves (the first
/// nodes of the tape).
struct Earlier<'a, 'g> {
    nodes: &'a mut [Box<dyn Node>],
    leaves: &'a mut [&'g mut dyn Any],
}

/// The slot of `node`, whose tangent type is `T`, accumulating in `leaf` when the
/// node is a leaf.
fn slot_of<'a, T: 'static>(node: &'a mut Box<dyn Node>, leaf: Option<&'a mut &mut dyn Any>) -> Slot<'a, T> {
    let AdjointSlot { tangent, current } =
        node.adjoint().downcast_mut::<AdjointSlot<T>>().expect("adjoint type");
    let memory = match leaf {
        Some(buffer) => Memory::Caller(buffer.downcast_mut::<T>().expect("gradient buffer type")),
        None => Memory::Node(tangent),
    };
    Slot { current, memory }
}

impl Earlier<'_, '_> {
    /// The slot of node `index`.
    fn slot<T: 'static>(&mut self, index: usize) -> Slot<'_, T> {
        slot_of(&mut self.nodes[index], self.leaves.get_mut(index))
    }

    /// Adds `cotangent`, of node `index`'s tangent type, into that node's adjoint
    /// (see [`Node::add_erased`]).
    fn add_erased(&mut self, index: usize, cotangent: &mut dyn Any) {
        self.nodes[index].add_erased(self.leaves.get_mut(index), cotangent);
    }

    /// The slots of two different nodes.
    fn two_slots<A: 'static, B: 'static>(&mut self, a: usize, b: usize) -> (Slot<'_, A>, Slot<'_, B>) {
        let [node_a, node_b] = self.nodes.get_disjoint_mut([a, b]).expect("distinct inputs");
        let leaves = self.leaves.len();
        let (leaf_a, leaf_b) = match (a < leaves, b < leaves) {
            (true, true) => {
                let [leaf_a, leaf_b] = self.leaves.get_disjoint_mut([a, b]).expect("distinct inputs");
                (Some(leaf_a), Some(leaf_b))
            }
            (true, false) => (self.leaves.get_mut(a), None),
            (false, true) => (None, self.leaves.get_mut(b)),
            (false, false) => (None, None),
        };
        (slot_of(node_a, leaf_a), slot_of(node_b, leaf_b))
    }
}

/// A recorded value with its adjoint and its pullback (`None` for leaves and for
/// nodes kept for reuse).
struct TypedNode<V: Differentiable, Pullback> {
    value: Rc<V>,
    adjoint: AdjointSlot<V::Tangent>,
    pullback: Option<Pullback>,
}

impl<V, Pullback> Node for TypedNode<V, Pullback>
where
    V: Differentiable + 'static,
    Pullback: Fn(&V, &V::Tangent, &mut Earlier<'_, '_>) + 'static,
{
    fn adjoint(&mut self) -> &mut dyn Any {
        &mut self.adjoint
    }
    fn backward(&mut self, earlier: &mut Earlier<'_, '_>) {
        if let (Some(adjoint), Some(pullback)) = (self.adjoint.get(), &self.pullback) {
            pullback(&self.value, adjoint, earlier);
        }
    }
    fn add_erased(&mut self, leaf: Option<&mut &mut dyn Any>, cotangent: &mut dyn Any) {
        let cotangent = cotangent.downcast_mut::<V::Tangent>().expect("cotangent type");
        let memory = match leaf {
            Some(buffer) => {
                Memory::Caller(buffer.downcast_mut::<V::Tangent>().expect("gradient buffer type"))
            }
            None => Memory::Node(&mut self.adjoint.tangent),
        };
        Slot { current: &mut self.adjoint.current, memory }.add_swapping(cotangent);
    }
    fn zero_if_unreached(&mut self, gradient: &mut dyn Any) {
        if !self.adjoint.current {
            *gradient.downcast_mut::<V::Tangent>().expect("gradient buffer type") = self.value.zero_tangent();
        }
    }
    fn clear(&mut self) {
        self.adjoint.current = false;
    }
    fn release(&mut self) {
        self.pullback = None;
    }
    fn owns_resources(&self) -> bool {
        core::mem::needs_drop::<V>()
    }
}

/// One recorded computation.
pub struct Tape {
    id: u64,
    nodes: Vec<Box<dyn Node>>,
    /// The previous tape's nodes, released, in recording order: recording at
    /// position i reuses the node that tape recorded there when its type matches.
    /// (As `dyn Any`, so that a node of another type can be put back.)
    spare: VecDeque<Box<dyn Any>>,
    /// Whether a backward sweep has run (the next one must first forget adjoints).
    swept: bool,
    /// How many nodes are leaves (the differentiated inputs, recorded first).
    leaves: usize,
    /// What the tape records.
    purpose: Purpose,
}

/// The panic when a checkpointed function reads a traced value it did not receive.
pub(crate) const CAPTURED_IN_CHECKPOINT: &str = "a traced value from outside `checkpoint`'s input was used \
    inside the checkpointed function: pass every traced value it reads in its input (a tuple of them, or a \
    derived struct's traced form)";

/// What a tape records: a gradient, or a function under
/// [`checkpoint`](super::checkpoint) (its first run, which records nothing, or its
/// recomputation in the backward sweep). It only words the error when a `Var` from
/// another tape reaches it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Gradient,
    Checkpoint,
}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

std::thread_local! {
    static ACTIVE_TAPES: RefCell<Vec<Tape>> = const { RefCell::new(Vec::new()) };
    /// The released nodes of the last tape dropped on this thread, for the next one,
    /// and an empty list with the capacity to record them.
    static SPARE: RefCell<(VecDeque<Box<dyn Any>>, Vec<Box<dyn Node>>)> =
        const { RefCell::new((VecDeque::new(), Vec::new())) };
}

impl Drop for Tape {
    /// Keeps the nodes (their allocations, values and adjoint memory) for the next
    /// tape on this thread; repeated gradients of the same computation then allocate
    /// nothing for them. A leaf whose value owns a heap buffer is dropped instead: it
    /// shares that buffer with the caller's input (heap tensors are copied on write),
    /// which then stays unshared, so updating the input in place copies nothing.
    fn drop(&mut self) {
        let mut nodes = core::mem::take(&mut self.nodes);
        let mut position = 0;
        nodes.retain(|node| {
            position += 1;
            position > self.leaves || !node.owns_resources()
        });
        nodes.iter_mut().for_each(|node| node.release());
        let mut spare = core::mem::take(&mut self.spare);
        spare.clear();
        spare.extend(nodes.drain(..).map(|node| -> Box<dyn Any> { node }));
        // A thread being torn down has nowhere to keep them; they are freed.
        let _ = SPARE.try_with(|kept| *kept.borrow_mut() = (spare, nodes));
    }
}

/// Frees the nodes that the last gradient computation on this thread left for reuse
/// (their values and adjoint buffers), and the thread's spare heap buffers
/// ([`Heap::release_spares`](crate::tensor::Heap::release_spares)). The next gradient
/// then allocates them anew; call this after the last of a series of gradients to
/// give their memory back.
pub fn release_tape_memory() {
    let kept = SPARE.with_borrow_mut(core::mem::take);
    drop(kept);
    crate::tensor::Heap::release_spares();
}

impl Tape {
    /// Starts recording on a new tape on this thread; [`Tape::finish`] takes it back.
    fn start(purpose: Purpose) {
        let (spare, nodes) = SPARE.with_borrow_mut(core::mem::take);
        let id = NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed);
        let tape = Tape { id, nodes, spare, swept: false, leaves: 0, purpose };
        ACTIVE_TAPES.with_borrow_mut(|tapes| tapes.push(tape));
    }

    /// Stops recording and returns the tape, without the previous tape's nodes that
    /// this one did not reuse (they are freed here).
    fn finish() -> Tape {
        let mut tape =
            ACTIVE_TAPES.with_borrow_mut(|tapes| tapes.pop()).expect("a tape was started on this thread");
        tape.spare.clear();
        tape
    }

    /// Marks the nodes recorded so far as the leaves: called once the input is
    /// traced, before the function runs.
    pub(crate) fn inputs_traced() {
        ACTIVE_TAPES.with_borrow_mut(|tapes| {
            let tape = tapes.last_mut().expect("a tape was started on this thread");
            tape.leaves = tape.nodes.len();
        });
    }

    /// How many leaves the tape has.
    pub(crate) fn leaf_count(&self) -> usize {
        self.leaves
    }

    /// Sets the adjoint of `output` to `seed` and sweeps backward, accumulating the
    /// adjoint of each leaf in its buffer in `leaves` (one per leaf, in order); a
    /// leaf that no cotangent reaches gets zero.
    pub(crate) fn backward<V: Differentiable>(
        &mut self,
        output: &Var<V>,
        seed: V::Tangent,
        leaves: &mut [&mut dyn Any],
    ) {
        assert_eq!(leaves.len(), self.leaves, "one gradient buffer per leaf");
        if self.swept {
            self.nodes.iter_mut().for_each(|node| node.clear());
        }
        self.swept = true;
        if let Some(node) = output.node {
            assert!(
                node.tape == self.id,
                "the output is a Var of another gradient computation (one that has ended, or an outer one): return a value computed from this closure's input"
            );
            Earlier { nodes: &mut self.nodes, leaves }.slot(node.index).add(seed);
            for index in (self.leaves..=node.index).rev() {
                let (earlier, rest) = self.nodes.split_at_mut(index);
                rest[0].backward(&mut Earlier { nodes: earlier, leaves });
            }
        }
        for (node, gradient) in self.nodes.iter_mut().zip(leaves) {
            node.zero_if_unreached(&mut **gradient);
        }
    }
}

/// Records a node with `pullback` on the active tape and returns its `Var`, after
/// checking that its `parents` belong to that tape (a `Var` must not outlive or cross
/// gradient computations). The node the previous tape recorded at this position is
/// reused when it has the same type; `store` then writes the value into that node's
/// value when nothing else holds it (and returns `None`), and otherwise returns the
/// value for a new `Rc`.
#[inline]
fn push_node<V, Pullback>(
    parents: &[NodeRef],
    pullback: Option<Pullback>,
    store: impl FnOnce(Option<&mut V>) -> Option<V>,
) -> Var<V>
where
    V: Differentiable + 'static,
    Pullback: Fn(&V, &V::Tangent, &mut Earlier<'_, '_>) + 'static,
{
    let (tape, spare) = ACTIVE_TAPES.with_borrow_mut(|tapes| {
        let tape = match tapes.last_mut() {
            Some(tape) if parents.iter().all(|parent| parent.tape == tape.id) => tape,
            None if parents.is_empty() => panic!(
                "no gradient is being recorded on this thread: inputs are traced by `grad`, \
                 `value_and_grad` or `vjp`"
            ),
            Some(tape) if tape.purpose == Purpose::Checkpoint => panic!("{CAPTURED_IN_CHECKPOINT}"),
            _ => panic!(
                "a Var from another gradient computation was used; wrap values that should not be \
                 differentiated in `Var::constant`. A gradient of a gradient (reverse over reverse) \
                 is not taken this way: second derivatives come from `hvp`, `hessian` or \
                 `coordinate_hessian` (forward over reverse), or `#[differentiable]`'s `hvp`"
            ),
        };
        (tape.id, take_spare::<TypedNode<V, Pullback>>(&mut tape.spare))
    });
    // A skipped spare node is dropped here, outside the tape's borrow.
    let (reused, _skipped) = spare;
    let node = match reused {
        Some(mut node) => {
            if let Some(value) = store(Rc::get_mut(&mut node.value)) {
                node.value = Rc::new(value);
            }
            node.adjoint.current = false;
            node.pullback = pullback;
            node
        }
        None => Box::new(TypedNode {
            value: Rc::new(store(None).expect("with nowhere to write, `store` returns the value")),
            adjoint: AdjointSlot { tangent: None, current: false },
            pullback,
        }),
    };
    let value = Rc::clone(&node.value);
    let index = ACTIVE_TAPES.with_borrow_mut(|tapes| {
        let nodes = &mut tapes.last_mut().expect("the tape is still recording").nodes;
        nodes.push(node);
        nodes.len() - 1
    });
    Var { value, node: Some(NodeRef { tape, index }) }
}

/// The previous tape's node for the position being recorded, if it has type `N`,
/// and a spare node skipped on the way. When the front spare node has another type
/// but the one after it matches, the previous computation had an operation here
/// that this one skips: the front one is skipped. When neither matches, this
/// computation has an operation the previous one did not, and the spare nodes wait
/// for the next position. Either way one changed operation costs one fresh node, not
/// all the later ones.
fn take_spare<N: Any>(spare: &mut VecDeque<Box<dyn Any>>) -> (Option<Box<N>>, Option<Box<dyn Any>>) {
    let Some(front) = spare.pop_front() else { return (None, None) };
    let front = match front.downcast::<N>() {
        Ok(node) => return (Some(node), None),
        Err(front) => front,
    };
    if let Some(second) = spare.pop_front() {
        match second.downcast::<N>() {
            Ok(node) => return (Some(node), Some(front)),
            Err(second) => spare.push_front(second),
        }
    }
    spare.push_front(front);
    (None, None)
}

/// A `store` for [`push_node`] that moves `value` in.
#[inline]
fn moved<V>(value: V) -> impl FnOnce(Option<&mut V>) -> Option<V> {
    move |slot| match slot {
        Some(slot) => {
            *slot = value;
            None
        }
        None => Some(value),
    }
}

/// The adjoint of one input of a recorded operation, during the backward sweep: a
/// rule adds its cotangent for that input here. It is inert when the input is a
/// constant, so the rule's closures are not even called then.
pub struct Adjoint<'a, T> {
    slot: Option<Slot<'a, T>>,
}

impl<T: VectorSpace> Adjoint<'_, T> {
    /// Whether the input needs its cotangent (it is not a constant): a rule that
    /// computes several cotangents in one pass skips the unwanted ones.
    #[inline]
    pub fn is_wanted(&self) -> bool {
        self.slot.is_some()
    }

    /// Adds the cotangent that `cotangent` computes.
    #[inline]
    pub fn add(self, cotangent: impl FnOnce() -> T) {
        if let Some(slot) = self.slot {
            slot.add(cotangent());
        }
    }

    /// Lets `add` accumulate into the adjoint in place, which first holds `zero()`
    /// if nothing has reached it yet: no temporary cotangent is built or moved.
    #[inline]
    pub fn add_in_place(self, zero: impl FnOnce() -> T, add: impl FnOnce(&mut T)) {
        if let Some(slot) = self.slot {
            add(slot.in_place(zero));
        }
    }
}

/// The adjoint of the input at `parent` among the `earlier` nodes.
fn adjoint_of<'a, T: 'static>(earlier: &'a mut Earlier<'_, '_>, parent: Option<NodeRef>) -> Adjoint<'a, T> {
    Adjoint { slot: parent.map(|parent| earlier.slot(parent.index)) }
}

/// The adjoints of both inputs of a binary operation, one at a time (both inputs may
/// be the same value).
pub struct BinaryAdjoints<'a, 'e, 'g, A, B> {
    earlier: &'a mut Earlier<'e, 'g>,
    parents: (Option<NodeRef>, Option<NodeRef>),
    tangents: PhantomData<(A, B)>,
}

impl<A: VectorSpace, B: VectorSpace> BinaryAdjoints<'_, '_, '_, A, B> {
    /// The left input's adjoint.
    #[inline]
    pub fn lhs(&mut self) -> Adjoint<'_, A> {
        adjoint_of(self.earlier, self.parents.0)
    }

    /// The right input's adjoint.
    #[inline]
    pub fn rhs(&mut self) -> Adjoint<'_, B> {
        adjoint_of(self.earlier, self.parents.1)
    }
}

/// The cotangent buffer of a tensor adjoint: its memory shaped `shape` (kept from
/// before when it has that shape) and whether to overwrite or add to it.
fn tensor_buffer<T: Scalar, S: Shape, K: Zeros<T, S>>(
    slot: Slot<'_, Tensor<T, S, K>>,
    shape: S,
) -> (&mut Tensor<T, S, K>, Write)
where
    Tensor<T, S, K>: VectorSpace,
{
    slot.prepare(|stale| stale.shape() == shape, || K::zeros_shaped(shape))
}

impl<T: Scalar, S: Shape, K: Zeros<T, S>> Adjoint<'_, Tensor<T, S, K>>
where
    Tensor<T, S, K>: VectorSpace,
{
    /// For rules that write their cotangent straight into the adjoint: `kernel`
    /// receives the adjoint's memory, shaped `shape`, with [`Write::Overwrite`] when
    /// nothing has reached it in this sweep (every element must then be written) and
    /// [`Write::Accumulate`] otherwise. Nothing runs for a constant input.
    #[inline]
    pub fn write_or_add(self, shape: S, kernel: impl FnOnce(&mut Tensor<T, S, K>, Write)) {
        if let Some(slot) = self.slot {
            let (buffer, write) = tensor_buffer(slot, shape);
            kernel(buffer, write);
        }
    }
}

impl<T, SA, SB, KA, KB> BinaryAdjoints<'_, '_, '_, Tensor<T, SA, KA>, Tensor<T, SB, KB>>
where
    T: Scalar,
    SA: Shape,
    SB: Shape,
    KA: Zeros<T, SA>,
    KB: Zeros<T, SB>,
    Tensor<T, SA, KA>: VectorSpace,
    Tensor<T, SB, KB>: VectorSpace,
{
    /// [`Adjoint::write_or_add`] for both inputs in one call, for rules that compute
    /// both cotangents in one pass; an input's buffer is `None` when it is a
    /// constant. When both inputs are the same value, `kernel` runs once per side.
    #[inline]
    pub fn write_or_add(
        &mut self,
        (lhs_shape, rhs_shape): (SA, SB),
        mut kernel: impl FnMut(Option<(&mut Tensor<T, SA, KA>, Write)>, Option<(&mut Tensor<T, SB, KB>, Write)>),
    ) {
        let (lhs, rhs) = match self.parents {
            (Some(a), Some(b)) if a.index == b.index => {
                self.lhs().write_or_add(lhs_shape, |a_bar, write| kernel(Some((a_bar, write)), None));
                self.rhs().write_or_add(rhs_shape, |b_bar, write| kernel(None, Some((b_bar, write))));
                return;
            }
            (Some(a), Some(b)) => {
                let (lhs, rhs) = self.earlier.two_slots(a.index, b.index);
                (Some(lhs), Some(rhs))
            }
            (Some(a), None) => (Some(self.earlier.slot(a.index)), None),
            (None, Some(b)) => (None, Some(self.earlier.slot(b.index))),
            (None, None) => return,
        };
        kernel(
            lhs.map(|slot| tensor_buffer(slot, lhs_shape)),
            rhs.map(|slot| tensor_buffer(slot, rhs_shape)),
        );
    }
}

/// Creates a leaf: a differentiated input on the active tape, holding a copy of
/// `value`.
#[inline]
pub(crate) fn leaf<V: Differentiable + Clone + 'static>(value: &V) -> Var<V> {
    push_node(&[], None::<fn(&V, &V::Tangent, &mut Earlier<'_, '_>)>, |slot: Option<&mut V>| match slot {
        Some(slot) => {
            slot.clone_from(value);
            None
        }
        None => Some(value.clone()),
    })
}

/// Records `y = f(x)` with the pullback `x̄ = pullback(ȳ)`.
///
/// This is the public mechanism for new primitives: compute the value with any code,
/// and state its reverse-mode rule as a closure that owns what it needs.
///
/// # Panics
/// In the backward sweep, when the pullback's cotangent has another shape than `x`
/// (the message names both).
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
#[inline]
pub fn record_unary<X, Y>(x: &Var<X>, y: Y, pullback: impl Fn(&Y::Tangent) -> X::Tangent + 'static) -> Var<Y>
where
    X: Differentiable + 'static,
    Y: Differentiable + 'static,
{
    let input = Rc::clone(&x.value);
    record_unary_in_place(x, y, move |_: &Y, y_bar: &Y::Tangent, x_bar: Adjoint<'_, X::Tangent>| {
        x_bar.add(|| checked_cotangent(&*input, pullback(y_bar)))
    })
}

/// [`record_unary`] for the library's own rules, whose cotangents have their input's
/// shape by construction (tested): no check, no input kept.
#[inline]
pub(crate) fn record_own_unary<X, Y>(
    x: &Var<X>,
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> X::Tangent + 'static,
) -> Var<Y>
where
    X: Differentiable,
    Y: Differentiable + 'static,
{
    record_unary_in_place(x, y, move |_: &Y, y_bar: &Y::Tangent, x_bar: Adjoint<'_, X::Tangent>| {
        x_bar.add(|| pullback(y_bar))
    })
}

/// A custom rule's cotangent for `input`, after checking that its shape is the
/// input's.
///
/// # Panics
/// When it is not (the message names both shapes).
fn checked_cotangent<X: Differentiable>(input: &X, cotangent: X::Tangent) -> X::Tangent {
    crate::error::or_panic(input.check_tangent(&cotangent, "a custom rule's cotangent for its input"));
    cotangent
}

/// [`record_unary`] for a rule that puts its cotangent into the input's [`Adjoint`]
/// itself: on tensors straight into the adjoint's memory with
/// [`Adjoint::write_or_add`] (no temporary is built or moved), on any type with
/// [`Adjoint::add`] or [`Adjoint::add_in_place`]. The rule also receives the output
/// value y, which the tape keeps anyway (so the rule need not capture a copy of it).
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::{grad, record_unary_in_place, write_elements};
///
/// // y = eˣ elementwise, with x̄ = y·ȳ computed from the output the tape hands over.
/// fn exp<S: Shape, K: Storage<f64, S>>(x: &Var<Tensor<f64, S, K>>) -> Var<Tensor<f64, S, K>> {
///     let shape = x.value().shape();
///     record_unary_in_place(x, x.value().map(f64::exp), move |y, y_bar, x_bar| {
///         // `write_elements` panics unless there is one value per element.
///         let cotangent = y.iter().zip(y_bar.iter()).map(|(&y, &g)| y * g);
///         x_bar.write_or_add(shape, |x_bar, write| write_elements(write, x_bar.as_mut_slice(), cotangent))
///     })
/// }
/// let x: Vector<f64, 2> = Vector::from_array([0.0, 1.0]);
/// let g = grad(|x: Var<Vector<f64, 2>>| exp(&x).sum(), &x);
/// assert_eq!(g.to_array(), [1.0, 1f64.exp()]);
/// ```
#[inline]
pub fn record_unary_in_place<X, Y>(
    x: &Var<X>,
    y: Y,
    pullback: impl Fn(&Y, &Y::Tangent, Adjoint<'_, X::Tangent>) + 'static,
) -> Var<Y>
where
    X: Differentiable,
    Y: Differentiable + 'static,
{
    let Some(parent) = x.node else { return Var::constant(y) };
    let pullback = move |y: &Y, y_bar: &Y::Tangent, earlier: &mut Earlier<'_, '_>| {
        pullback(y, y_bar, adjoint_of(earlier, Some(parent)));
    };
    push_node(&[parent], Some(pullback), moved(y))
}

/// Records `y = f(a, b)` with the pullback `(ā, b̄) = pullback(ȳ)`; a constant input
/// receives nothing.
///
/// # Panics
/// In the backward sweep, when a cotangent has another shape than its input.
#[inline]
pub fn record_binary<A, B, Y>(
    a: &Var<A>,
    b: &Var<B>,
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> (A::Tangent, B::Tangent) + 'static,
) -> Var<Y>
where
    A: Differentiable + 'static,
    B: Differentiable + 'static,
    Y: Differentiable + 'static,
{
    let inputs = (Rc::clone(&a.value), Rc::clone(&b.value));
    record_binary_in_place(
        a,
        b,
        y,
        move |_: &Y, y_bar: &Y::Tangent, mut adjoints: BinaryAdjoints<'_, '_, '_, _, _>| {
            let (a_bar, b_bar) = pullback(y_bar);
            adjoints.lhs().add(|| checked_cotangent(&*inputs.0, a_bar));
            adjoints.rhs().add(|| checked_cotangent(&*inputs.1, b_bar));
        },
    )
}

/// [`record_binary`] for the library's own rules (see [`record_own_unary`]).
#[inline]
pub(crate) fn record_own_binary<A, B, Y>(
    a: &Var<A>,
    b: &Var<B>,
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> (A::Tangent, B::Tangent) + 'static,
) -> Var<Y>
where
    A: Differentiable,
    B: Differentiable,
    Y: Differentiable + 'static,
{
    record_binary_in_place(
        a,
        b,
        y,
        move |_: &Y, y_bar: &Y::Tangent, mut adjoints: BinaryAdjoints<'_, '_, '_, _, _>| {
            let (a_bar, b_bar) = pullback(y_bar);
            adjoints.lhs().add(|| a_bar);
            adjoints.rhs().add(|| b_bar);
        },
    )
}

/// [`record_binary`] for a rule that adds its cotangents into the inputs' adjoints
/// itself ([`BinaryAdjoints::lhs`], [`BinaryAdjoints::rhs`]); the cotangent of a
/// constant input is then not computed at all. The rule also receives the output
/// value y.
#[inline]
pub fn record_binary_in_place<A, B, Y>(
    a: &Var<A>,
    b: &Var<B>,
    y: Y,
    pullback: impl Fn(&Y, &Y::Tangent, BinaryAdjoints<'_, '_, '_, A::Tangent, B::Tangent>) + 'static,
) -> Var<Y>
where
    A: Differentiable,
    B: Differentiable,
    Y: Differentiable + 'static,
{
    let parents = (a.node, b.node);
    let (active, count) = match parents {
        (Some(a), Some(b)) => ([a, b], 2),
        (Some(parent), None) | (None, Some(parent)) => ([parent; 2], 1),
        (None, None) => return Var::constant(y),
    };
    let pullback = move |y: &Y, y_bar: &Y::Tangent, earlier: &mut Earlier<'_, '_>| {
        pullback(y, y_bar, BinaryAdjoints { earlier, parents, tangents: PhantomData });
    };
    push_node(&active[..count], Some(pullback), moved(y))
}

/// The adjoints of the `N` inputs of an operation recorded with [`record_many`], one
/// at a time (an input may appear more than once; each use adds its cotangent).
pub struct ManyAdjoints<'a, 'e, 'g, T, const N: usize> {
    earlier: &'a mut Earlier<'e, 'g>,
    parents: [Option<NodeRef>; N],
    tangents: PhantomData<T>,
}

impl<T: VectorSpace, const N: usize> ManyAdjoints<'_, '_, '_, T, N> {
    /// The adjoint of input `k`.
    ///
    /// # Panics
    /// When `k ≥ N`.
    #[inline]
    pub fn input(&mut self, k: usize) -> Adjoint<'_, T> {
        adjoint_of(self.earlier, self.parents[k])
    }
}

/// Records `y = f(x₁, …, x_N)` for `N` inputs of one type, with a rule that adds each
/// input's cotangent through [`ManyAdjoints::input`]; constant inputs receive nothing.
/// This is how a primitive of any number of inputs gets its own rule in one node.
///
/// ```
/// use fluxion::autodiff::{grad, record_many};
/// use fluxion::prelude::*;
///
/// // y = x₁·x₂·x₃ with x̄ₖ = ȳ·Π_{j≠k} xⱼ, one node on the tape.
/// fn product3(x: [&Var<f64>; 3]) -> Var<f64> {
///     let v = x.map(|x| *x.value());
///     record_many(x, v[0] * v[1] * v[2], move |_, &y_bar, mut adjoints| {
///         for k in 0..3 {
///             let others: f64 = (0..3).filter(|&j| j != k).map(|j| v[j]).product();
///             adjoints.input(k).add(|| y_bar * others);
///         }
///     })
/// }
/// let g = grad(|x: [Var<f64>; 3]| product3([&x[0], &x[1], &x[2]]), &[2.0, 3.0, 4.0]);
/// assert_eq!(g, [12.0, 8.0, 6.0]);
/// ```
pub fn record_many<X, Y, const N: usize>(
    inputs: [&Var<X>; N],
    y: Y,
    pullback: impl Fn(&Y, &Y::Tangent, ManyAdjoints<'_, '_, '_, X::Tangent, N>) + 'static,
) -> Var<Y>
where
    X: Differentiable,
    Y: Differentiable + 'static,
{
    let parents: [Option<NodeRef>; N] = inputs.map(|x| x.node);
    let Some(first) = parents.iter().flatten().next().copied() else { return Var::constant(y) };
    let mut active = [first; N];
    let mut count = 0;
    for parent in parents.iter().flatten() {
        active[count] = *parent;
        count += 1;
    }
    let pullback = move |y: &Y, y_bar: &Y::Tangent, earlier: &mut Earlier<'_, '_>| {
        pullback(y, y_bar, ManyAdjoints { earlier, parents, tangents: PhantomData });
    };
    push_node(&active[..count], Some(pullback), moved(y))
}

/// Records `y = f(a, b₁, b₂)` of an input and two inputs of another type (queries,
/// keys and values), with the pullback `(ā, [b̄₁, b̄₂]) = pullback(ȳ)`; constant
/// inputs receive nothing, and an input given twice gets both cotangents.
pub(crate) fn record_one_and_pair<A, B, Y>(
    a: &Var<A>,
    [b1, b2]: [&Var<B>; 2],
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> (A::Tangent, [B::Tangent; 2]) + 'static,
) -> Var<Y>
where
    A: Differentiable,
    B: Differentiable,
    Y: Differentiable + 'static,
{
    let parents = [a.node, b1.node, b2.node];
    let Some(first) = parents.iter().flatten().next().copied() else { return Var::constant(y) };
    let (mut active, mut count) = ([first; 3], 0);
    for parent in parents.iter().flatten() {
        active[count] = *parent;
        count += 1;
    }
    let pullback = move |_: &Y, y_bar: &Y::Tangent, earlier: &mut Earlier<'_, '_>| {
        let (a_bar, [b1_bar, b2_bar]) = pullback(y_bar);
        adjoint_of(earlier, parents[0]).add(|| a_bar);
        adjoint_of(earlier, parents[1]).add(|| b1_bar);
        adjoint_of(earlier, parents[2]).add(|| b2_bar);
    };
    push_node(&active[..count], Some(pullback), moved(y))
}

/// Where the leaves of a traced input sit on the tape, in the order of
/// [`Trace::trace`](super::Trace::trace), `None` for a constant: what
/// [`Trace::untrace`](super::Trace::untrace) notes, so that
/// [`checkpoint`](super::checkpoint) can record one node on all of them.
#[derive(Default)]
pub struct TracedLeaves(Vec<Option<NodeRef>>);

impl TracedLeaves {
    /// Notes where `var` sits on the tape (nowhere, for a constant).
    #[inline]
    pub fn push<V>(&mut self, var: &Var<V>) {
        self.0.push(var.node);
    }

    /// Whether any leaf is on a tape.
    pub(crate) fn any_active(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }
}

/// Records `y` as one node on the traced input whose leaves are `leaves`: `pullback`
/// gives that input's value and its cotangent for the output's, and each active
/// leaf's part of it is added into that leaf's adjoint.
pub(crate) fn record_on_leaves<X, Y>(
    leaves: TracedLeaves,
    y: Y,
    pullback: impl Fn(&Y::Tangent) -> (X, X::Tangent) + 'static,
) -> Var<Y>
where
    X: super::Trace,
    Y: Differentiable + 'static,
{
    let parents: Vec<NodeRef> = leaves.0.iter().flatten().copied().collect();
    let pullback = move |_: &Y, y_bar: &Y::Tangent, earlier: &mut Earlier<'_, '_>| {
        let (input, mut x_bar) = pullback(y_bar);
        let mut buffers = Vec::with_capacity(leaves.0.len());
        input.gradient_buffers(&mut x_bar, &mut buffers);
        assert_eq!(buffers.len(), leaves.0.len(), "one gradient buffer per traced leaf");
        for (leaf, buffer) in leaves.0.iter().zip(buffers) {
            if let Some(node) = leaf {
                earlier.add_erased(node.index, buffer);
            }
        }
    };
    push_node(&parents, Some(pullback), moved(y))
}

/// Runs `f` while a new tape for `purpose` records, and returns that tape; the tape
/// is taken back even if `f` panics.
pub(crate) fn recording<Out>(purpose: Purpose, f: impl FnOnce() -> Out) -> (Tape, Out) {
    /// Takes the tape back when `f` panics.
    struct Unwinding(bool);
    impl Drop for Unwinding {
        fn drop(&mut self) {
            if self.0 {
                drop(Tape::finish());
            }
        }
    }
    Tape::start(purpose);
    let mut unwinding = Unwinding(true);
    let out = f();
    unwinding.0 = false;
    (Tape::finish(), out)
}

/// Runs `f` on a tape of its own that takes no `Var` from elsewhere (a `checkpoint`'s
/// first run, on constants): `f` records nothing, and a traced value it captured
/// from outside panics with the checkpoint's message instead of recording on a tape
/// whose gradient would then miss it.
pub(crate) fn unrecorded<Out>(f: impl FnOnce() -> Out) -> Out {
    recording(Purpose::Checkpoint, f).1
}
