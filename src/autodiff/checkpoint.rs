//! Gradient checkpointing (rematerialisation, JAX's `jax.checkpoint`, PyTorch's
//! `torch.utils.checkpoint`): [`checkpoint`] records a function as one node that
//! keeps only its input, and recomputes the function's inner values in the backward
//! sweep when its cotangent arrives. A chain of n checkpointed segments keeps about
//! n segment inputs plus one segment's inner values at a time, for about one more
//! forward pass.
//!
//! The recomputation runs the same code on the same values, so the gradient is the
//! plain tape's up to the order of one summation: the cotangents of a value that the
//! function reads several times are summed inside the checkpoint first (bit for bit
//! the same when it reads each input once). Random draws inside the function (a
//! [`Dropout`](crate::nn::layer::Dropout) mask) go through [`replayable_draw`], so the
//! recomputation draws the masks of the first run; a
//! [`BatchNorm`](crate::nn::layer::BatchNorm) normalises as in the first run (batch
//! statistics or running estimates) and updates its running estimates once.

use core::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

use super::operators::{Trace, TracedInput, Whole, gradient_buffers, record};
use super::tangent::Differentiable;
use super::tape::{
    CAPTURED_IN_CHECKPOINT, Purpose, TracedLeaves, Var, record_on_leaves, record_own_unary, unrecorded,
};

/// `f(x)`, recorded as one node on `x`'s leaves that keeps `x`'s value and not the
/// values inside `f`: in the backward sweep, the node runs `f` again on a tape of
/// its own and pulls the cotangent back through it.
///
/// `x` is what a differentiated function receives — a [`Var`], a tuple of them, a
/// derived struct's `…Traced` form, a layer — and `f` takes it by value; the node
/// keeps a clone of `x` (its `Var`s share their values, nothing is copied). `f` is
/// kept until the sweep, so it owns what it captures (`move`; a heap batch's clone
/// shares its buffer). It must read traced values only through `x`: one it captured
/// from outside panics (naming `checkpoint`), since the recomputation could not send
/// it a cotangent. It runs twice and must compute the same value both times (random
/// draws: see [`replayable_draw`]). It returns a `Var` or a tuple of them
/// ([`TracedOutput`]), and the checkpoint returns the same. With no active leaf in
/// `x` there is nothing to checkpoint: `f` simply runs, on the tape.
///
/// Checkpoints nest, and work in every reverse-mode operator, forward over reverse
/// ([`hvp`](super::hvp)) and on GPU tensors.
///
/// ```
/// use fluxion::autodiff::{checkpoint, grad};
/// use fluxion::prelude::*;
///
/// // One residual block, h + tanh(W·h); only the blocks' inputs stay on the tape.
/// fn block(w: &Var<Matrix<f64, 2, 2>>, h: &Var<Vector<f64, 2>>) -> Var<Vector<f64, 2>> {
///     h + &w.matmul(h).tanh()
/// }
/// let w: Matrix<f64, 2, 2> = Matrix::from_array([[0.5, -0.3], [0.2, 0.8]]);
/// let x: Vector<f64, 2> = Vector::from_array([1.0, -1.0]);
/// let loss = |checkpointed: bool| {
///     move |w: Var<Matrix<f64, 2, 2>>| {
///         let mut h = Var::constant(x.clone());
///         for _ in 0..4 {
///             h = match checkpointed {
///                 true => checkpoint(|(w, h)| block(&w, &h), &(w.clone(), h)),
///                 false => block(&w, &h),
///             };
///         }
///         h.dot(&h)
///     }
/// };
/// assert_eq!(grad(loss(true), &w), grad(loss(false), &w));
/// ```
///
/// # Panics
/// When `f` reads or returns a traced value that is not in `x`; when the
/// recomputation draws more or fewer values through [`replayable_draw`] than the
/// first run did.
pub fn checkpoint<X, O>(f: impl Fn(X) -> O + 'static, x: &X) -> O
where
    X: TracedInput + Clone + 'static,
    O: TracedOutput,
{
    let mut leaves = TracedLeaves::default();
    let value = X::Value::untrace(x, &mut leaves);
    if !leaves.any_active() {
        return f(value.as_constant());
    }
    let (output, draws) = recording_draws(|| unrecorded(|| f(value.as_constant())));
    // On constants, only a traced value captured from outside comes out traced.
    assert!(!output.is_active(), "{CAPTURED_IN_CHECKPOINT}");
    // The node keeps `x` itself, whose values its `Var`s share with the tape, rather
    // than `value`'s copies (inline tensors are copied whole).
    let input = x.clone();
    let whole = record_on_leaves(leaves, output.into_value(), move |y_bar: &OutputTangent<O>| {
        let value = X::Value::untrace(&input, &mut TracedLeaves::default());
        let recompute = |traced: X| f(traced).gather();
        let (mut tape, output) = replaying_draws(&draws, || record(Purpose::Checkpoint, recompute, &value));
        let mut x_bar = value.zero_tangent();
        let mut buffers = gradient_buffers(&value, &tape, &mut x_bar);
        tape.backward(&output, y_bar.clone(), &mut buffers);
        drop(buffers);
        (value, x_bar)
    });
    O::split(whole)
}

/// The tangent of a checkpointed function's output values.
type OutputTangent<O> = <<O as TracedOutput>::Value as Differentiable>::Tangent;

/// What a checkpointed function returns: a [`Var`], or a tuple of them (as JAX's
/// `checkpoint` returns a tuple of arrays); the checkpoint returns the same.
#[diagnostic::on_unimplemented(
    message = "a checkpointed function returns `{Self}`",
    label = "not a `Var` or a tuple of `Var`s",
    note = "return the traced values, one `Var` or a tuple of them"
)]
pub trait TracedOutput: Sized {
    /// The parts' values, together.
    type Value: Differentiable + Clone + 'static;
    /// Whether a part is on a tape.
    fn is_active(&self) -> bool;
    /// The parts' values.
    fn into_value(self) -> Self::Value;
    /// The parts as one `Var` on the active tape (one node gathering a tuple's).
    fn gather(self) -> Var<Self::Value>;
    /// The parts of `whole` (one node taking each part of a tuple).
    fn split(whole: Var<Self::Value>) -> Self;
}

impl<V: Differentiable + Clone + 'static> TracedOutput for Var<V> {
    type Value = V;
    fn is_active(&self) -> bool {
        Var::is_active(self)
    }
    fn into_value(self) -> V {
        Var::into_value(self)
    }
    fn gather(self) -> Var<V> {
        self
    }
    fn split(whole: Var<V>) -> Self {
        whole
    }
}

macro_rules! tuple_output {
    ($($A:ident $i:tt),+) => {
        // Left out of an unmet bound's list of the types that implement the trait,
        // which then shows `Var`'s.
        #[diagnostic::do_not_recommend]
        impl<$($A: Differentiable + Clone + 'static),+> TracedOutput for ($(Var<$A>,)+)
        where
            ($($A,)+): Differentiable<Tangent = ($($A::Tangent,)+)>,
        {
            type Value = ($($A,)+);
            fn is_active(&self) -> bool {
                false $(|| self.$i.is_active())+
            }
            fn into_value(self) -> Self::Value {
                ($(self.$i.into_value(),)+)
            }
            fn gather(self) -> Var<Self::Value> {
                let mut leaves = TracedLeaves::default();
                let parts = <($(Whole<$A>,)+) as Trace>::untrace(&self, &mut leaves);
                let value = ($(parts.$i.0.clone(),)+);
                if !leaves.any_active() {
                    return Var::constant(value);
                }
                record_on_leaves(leaves, value, move |y_bar: &($($A::Tangent,)+)| (parts.clone(), y_bar.clone()))
            }
            fn split(whole: Var<Self::Value>) -> Self {
                ($({
                    let shared = whole.shared_value();
                    record_own_unary(&whole, whole.value().$i.clone(), move |part_bar: &$A::Tangent| {
                        let mut bar = shared.zero_tangent();
                        bar.$i = part_bar.clone();
                        bar
                    })
                },)+)
            }
        }
    };
}

for_each_tuple!(tuple_output);

/// The values drawn through [`replayable_draw`] by one run of a checkpointed
/// function: logged by its first run, handed back in order to its recomputation.
enum DrawLog {
    Recording(Vec<u64>),
    Replaying { draws: Rc<[u64]>, next: usize },
}

std::thread_local! {
    /// The draw logs of the checkpointed functions running on this thread,
    /// innermost last.
    static DRAW_LOGS: RefCell<Vec<DrawLog>> = const { RefCell::new(Vec::new()) };
}

/// A value drawn from a random stream (a seed, a call counter) by code that may run
/// inside [`checkpoint`]: `draw()` on the first run, and in the recomputation during
/// the backward sweep the value the first run drew, without drawing again. A mask
/// drawn from it therefore repeats, and the gradient is that of the value computed.
/// Outside a checkpointed function this is `draw()`.
///
/// [`Dropout`](crate::nn::layer::Dropout) draws its masks' seeds this way; a library
/// author's random operation does the same.
///
/// ```
/// use fluxion::autodiff::{checkpoint, grad, replayable_draw};
/// use fluxion::prelude::*;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// // A random sign per call, from a shared counter.
/// let counter = Rc::new(Cell::new(0u64));
/// let stream = Rc::clone(&counter);
/// let random_sign = move |x: &Var<f64>| {
///     let draw = replayable_draw(|| stream.replace(stream.get() + 1));
///     if draw % 2 == 0 { x * 2.0 } else { x * -2.0 }
/// };
/// let g = grad(|x: Var<f64>| checkpoint(move |x: Var<f64>| random_sign(&x), &x), &1.0);
/// assert_eq!(g, 2.0); // draw 0, replayed in the backward sweep
/// assert_eq!(counter.get(), 1); // drawn once
/// ```
///
/// # Panics
/// In a recomputation that draws more values than its first run.
pub fn replayable_draw(draw: impl FnOnce() -> u64) -> u64 {
    let replayed = DRAW_LOGS.with_borrow_mut(|logs| {
        logs.iter_mut().rev().find_map(|log| match log {
            DrawLog::Recording(_) => None,
            DrawLog::Replaying { draws, next } => {
                let value = *draws.get(*next).expect(
                    "a checkpointed function drew more random values when recomputed than when it first \
                     ran: it must compute the same way both times",
                );
                *next += 1;
                Some(value)
            }
        })
    });
    let value = replayed.unwrap_or_else(draw);
    // Every checkpoint running inside the innermost recomputation (or all of them)
    // logs the value for its own recomputation.
    DRAW_LOGS.with_borrow_mut(|logs| {
        for log in logs.iter_mut().rev() {
            match log {
                DrawLog::Recording(draws) => draws.push(value),
                DrawLog::Replaying { .. } => break,
            }
        }
    });
    value
}

/// Whether a recomputation of a forward pass is running on this thread: a
/// [`checkpoint`]'s in the backward sweep, or what a static-mode companion computes
/// again (its reverse sweep, the calls of `linearize`'s map). State that a forward
/// pass updates as it runs (a batch normalisation's running estimates, a
/// [`Buffer`](crate::nn::params::Buffer) of your own layer) was updated by the first
/// run and is left alone when this is true.
pub fn recomputing() -> bool {
    RECOMPUTATIONS.get() > 0
        || DRAW_LOGS.with_borrow(|logs| logs.iter().any(|log| matches!(log, DrawLog::Replaying { .. })))
}

std::thread_local! {
    /// Static-mode recomputations running on this thread ([`Recomputation`]).
    static RECOMPUTATIONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// A static-mode recomputation, from its start to its drop: [`recomputing`] is true
/// meanwhile.
#[doc(hidden)]
pub struct Recomputation(());

impl Recomputation {
    /// Starts one.
    pub fn start() -> Self {
        RECOMPUTATIONS.set(RECOMPUTATIONS.get() + 1);
        Recomputation(())
    }
}

impl Drop for Recomputation {
    fn drop(&mut self) {
        RECOMPUTATIONS.set(RECOMPUTATIONS.get() - 1);
    }
}

/// Runs `f` with `log` as the innermost draw log, and returns it after.
fn with_draw_log<Out>(log: DrawLog, f: impl FnOnce() -> Out) -> (Out, DrawLog) {
    /// Takes the log off the stack, even when `f` panics.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            DRAW_LOGS.with_borrow_mut(|logs| logs.pop());
        }
    }
    DRAW_LOGS.with_borrow_mut(|logs| logs.push(log));
    let _pop = Pop;
    let out = f();
    let empty = DrawLog::Recording(Vec::new());
    let log =
        DRAW_LOGS.with_borrow_mut(|logs| core::mem::replace(logs.last_mut().expect("pushed above"), empty));
    (out, log)
}

/// Runs `f` with a draw log of its own, and returns what it drew.
fn recording_draws<Out>(f: impl FnOnce() -> Out) -> (Out, Rc<[u64]>) {
    match with_draw_log(DrawLog::Recording(Vec::new()), f) {
        (out, DrawLog::Recording(draws)) => (out, draws.into()),
        (_, DrawLog::Replaying { .. }) => unreachable!("the log stays a recording"),
    }
}

/// Runs `f` with `draws` handed back in order to its [`replayable_draw`] calls.
///
/// # Panics
/// When `f` draws fewer values than `draws` holds (more panics in the draw).
fn replaying_draws<Out>(draws: &Rc<[u64]>, f: impl FnOnce() -> Out) -> Out {
    let (out, log) = with_draw_log(DrawLog::Replaying { draws: Rc::clone(draws), next: 0 }, f);
    let DrawLog::Replaying { next, .. } = log else { unreachable!("the log stays a replay") };
    assert_eq!(
        next,
        draws.len(),
        "a checkpointed function drew fewer random values when recomputed than when it first ran: it \
         must compute the same way both times"
    );
    out
}
