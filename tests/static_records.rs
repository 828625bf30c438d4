//! What a `#[differentiable]` function's record keeps when its body calls other
//! differentiable functions (its caller keeps the record's reverse sweep): bodies
//! whose locals are not `Clone`, layers generic over their layers, callees with an
//! unsized input, inputs rebound in the body, layers that are unit values (`Gelu`) —
//! each compiles and gives the derivative that central finite differences give.

mod common_grad;

use common_grad::assert_close;
use fluxion::autodiff::differentiable;
use fluxion::nn::layer::{Linear, StaticModule, Tanh};
use fluxion::prelude::*;

type Batch = Tensor<f64, (Dyn, Const<3>), Heap>;

fn batch(seed: u64) -> Batch {
    Tensor::random_normal_shaped((Dyn(2), Const), 0.0, 1.0, seed)
}

/// A local of a type that is not `Clone`.
#[derive(Debug, Differentiable)]
struct State {
    p: f64,
}

#[derive(Clone, Debug, Differentiable)]
struct Spring {
    k: f64,
}

impl Spring {
    #[differentiable]
    fn energy(&self, s: &State) -> f64 {
        self.k * s.p * s.p
    }

    #[differentiable]
    fn run(&self, x: &f64) -> f64 {
        let s = State { p: x * 2.0 };
        self.energy(&s)
    }
}

#[differentiable]
fn springs(a: &Spring, x: &f64) -> f64 {
    a.run(x).sin()
}

#[test]
fn a_local_that_is_not_clone_is_passed_on() {
    let (spring, x) = (Spring { k: 0.3 }, 0.6);
    let (value, (gradient, x_bar)) = springs::value_and_grad(&spring, &x);
    // f = sin(4k·x²): ∂f/∂k = cos(·)·4x², ∂f/∂x = cos(·)·8kx.
    let inner = 4.0 * 0.3 * 0.36;
    assert_close(value, f64::sin(inner), 1e-15);
    assert_close(gradient.k, inner.cos() * 4.0 * 0.36, 1e-14);
    assert_close(x_bar, inner.cos() * 8.0 * 0.3 * 0.6, 1e-14);
}

/// A layer generic over its layers.
#[derive(Clone, Debug, Differentiable)]
struct Stack<A: Differentiable + 'static, B: Differentiable + 'static> {
    a: A,
    b: B,
}

impl<A: Differentiable + 'static, B: Differentiable + 'static> Stack<A, B> {
    #[differentiable]
    fn apply_batch<X: Differentiable>(&self, x: &X) -> B::Output
    where
        A: StaticModule<X, InputTangent = X::Tangent>,
        B: StaticModule<A::Output, InputTangent = <A::Output as Differentiable>::Tangent>,
    {
        let h = self.a.apply_batch(x);
        self.b.apply_batch(&h)
    }
}

fluxion::static_module!(
    impl[A: Differentiable + 'static, B: Differentiable + 'static, X: Differentiable] Stack<A, B>: apply_batch(X) -> B::Output, input tangent X::Tangent;
    where [
        A: StaticModule<X, InputTangent = X::Tangent>,
        B: StaticModule<A::Output, InputTangent = <A::Output as Differentiable>::Tangent>,
    ]
);

type Stacked = (Linear<f64, 3, 3>, Stack<Linear<f64, 3, 3>, Tanh>);

#[differentiable]
fn stacked_loss(model: &Stacked, x: &Batch) -> f64 {
    model.apply_batch(x).sum()
}

/// Central differences of `f` along each real coordinate of `x`'s tangent.
fn along_each<V: Differentiable + Clone>(x: &V, f: impl Fn(&V) -> f64) -> Vec<f64> {
    let count = reals(&x.zero_tangent()).len();
    (0..count)
        .map(|i| {
            let moved = |by: f64| {
                let mut step = x.zero_tangent();
                let mut k = 0;
                step.map_reals(&mut |_| {
                    k += 1;
                    if k - 1 == i { by } else { 0.0 }
                });
                let mut y = x.clone();
                y.move_by(&step);
                f(&y)
            };
            (moved(1e-6) - moved(-1e-6)) / 2e-6
        })
        .collect()
}

fn reals<V: RealLeaves>(v: &V) -> Vec<f64> {
    let mut all = Vec::new();
    v.for_each_real(&mut |c| all.push(c));
    all
}

#[test]
fn a_layer_generic_over_its_layers_keeps_their_records() {
    let model: Stacked = (Linear::new(1), Stack { a: Linear::new(2), b: Tanh });
    let x = batch(3);
    let (_, (gradient, x_bar)) = stacked_loss::value_and_grad(&model, &x);
    let numeric = along_each(&model, |m| stacked_loss(m, &x));
    reals(&gradient).iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
    let numeric = along_each(&x, |y| stacked_loss(&model, y));
    x_bar.iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
}

/// A callee whose input may be unsized, called on a local.
#[derive(Clone, Debug, Differentiable)]
struct Wrap<L: Differentiable + 'static> {
    inner: L,
}

impl<L: Differentiable + 'static> Wrap<L> {
    #[differentiable]
    fn forward<X: ?Sized + Differentiable>(&self, x: &X) -> L::Output
    where
        L: StaticModule<X, InputTangent = X::Tangent>,
    {
        self.inner.apply_batch(x)
    }

    /// The same under a layer's name: a record gives it a clone of a computed input.
    #[differentiable]
    fn apply_batch<X: ?Sized + Differentiable>(&self, x: &X) -> L::Output
    where
        L: StaticModule<X, InputTangent = X::Tangent>,
    {
        self.inner.apply_batch(x)
    }
}

#[derive(Clone, Debug, Differentiable)]
struct Outer {
    wrap: Wrap<Linear<f64, 3, 3>>,
    map: Linear<f64, 3, 3>,
}

impl Outer {
    #[differentiable]
    fn apply_batch(&self, x: &Batch) -> Batch {
        let h = self.map.apply_batch(x).tanh();
        self.wrap.forward(&h) + self.wrap.apply_batch(&h)
    }
}

fluxion::static_module!(impl[] Outer: apply_batch(Batch) -> Batch);

/// A layer that rebinds its input's name, taken by value (`self`) and by reference.
#[derive(Clone, Copy, Debug, Differentiable)]
struct Gain {
    a: f64,
}

impl Gain {
    #[differentiable]
    fn apply(self, x: &f64) -> f64 {
        let x = x * self.a + x;
        x.sin()
    }

    #[differentiable]
    fn apply_batch(&self, x: &Batch) -> Batch {
        let x = x * self.a;
        x.tanh()
    }
}

fluxion::static_module!(impl[] Gain: apply_batch(Batch) -> Batch);

#[differentiable]
fn outer_loss(model: &(Linear<f64, 3, 3>, Outer, Gain), x: &Batch, g: &Gain, s: &f64) -> f64 {
    model.apply_batch(x).sum() + g.apply(s)
}

#[test]
fn callees_with_unsized_or_rebound_inputs_keep_their_records() {
    let model = (
        Linear::new(4),
        Outer { wrap: Wrap { inner: Linear::new(5) }, map: Linear::new(6) },
        Gain { a: 0.7 },
    );
    let (x, g, s) = (batch(7), Gain { a: 1.3 }, 0.4);
    let (_, (gradient, x_bar, g_bar, s_bar)) = outer_loss::value_and_grad(&model, &x, &g, &s);
    let numeric = along_each(&model, |m| outer_loss(m, &x, &g, &s));
    reals(&gradient).iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
    let numeric = along_each(&x, |y| outer_loss(&model, y, &g, &s));
    x_bar.iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
    // d sin(s(a + 1))/da = cos(·)·s, d/ds = cos(·)·(a + 1).
    assert_close(g_bar.a, (s * 2.3f64).cos() * s, 1e-14);
    assert_close(s_bar, (s * 2.3f64).cos() * 2.3, 1e-14);
}

/// A layer that is a unit value, as `Gelu` is, counting its forward passes.
#[derive(Clone, Copy, Debug, Differentiable)]
struct Tally;

static TALLIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held by each test that counts `Tally`'s passes (tests run on several threads).
static TALLY_COUNT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Tally {
    #[differentiable]
    fn apply_batch(&self, x: &Batch) -> Batch {
        TALLIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        x.tanh()
    }
}

fluxion::static_module!(impl[] Tally: apply_batch(Batch) -> Batch);

/// Calls the unit layer by its name, on a value it computes.
#[derive(Clone, Debug, Differentiable)]
struct Squashed {
    map: Linear<f64, 3, 3>,
}

impl Squashed {
    #[differentiable]
    fn apply_batch(&self, x: &Batch) -> Batch {
        let h = self.map.apply_batch(x);
        Tally.apply_batch(&h) + x
    }
}

fluxion::static_module!(impl[] Squashed: apply_batch(Batch) -> Batch);

#[differentiable]
fn squashed_loss(model: &(Squashed, Squashed), x: &Batch) -> f64 {
    model.apply_batch(x).sum()
}

#[test]
fn a_unit_layer_called_by_name_keeps_its_record() {
    use std::sync::atomic::Ordering::Relaxed;
    let model = (Squashed { map: Linear::new(8) }, Squashed { map: Linear::new(9) });
    let x = batch(10);
    let _counting = TALLY_COUNT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = TALLIED.load(Relaxed);
    let (_, (gradient, x_bar)) = squashed_loss::value_and_grad(&model, &x);
    // Each block's `Tally` ran forward once: the blocks' records kept its pullback
    // instead of running the blocks again in the reverse sweep.
    assert_eq!(TALLIED.load(Relaxed) - before, 2);
    let numeric = along_each(&model, |m| squashed_loss(m, &x));
    reals(&gradient).iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
    let numeric = along_each(&x, |y| squashed_loss(&model, y));
    x_bar.iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
}

/// Calls the unit layer on its own input, which its bounds say is `Clone`.
#[derive(Clone, Debug, Differentiable)]
struct TallyFirst {
    map: Linear<f64, 3, 3>,
}

impl TallyFirst {
    #[differentiable]
    fn apply_batch(&self, x: &Batch) -> Batch
    where
        Batch: Clone,
    {
        self.map.apply_batch(&Tally.apply_batch(x))
    }
}

fluxion::static_module!(impl[] TallyFirst: apply_batch(Batch) -> Batch);

#[differentiable]
fn tally_first_loss(model: &(Linear<f64, 3, 3>, TallyFirst), x: &Batch) -> f64 {
    model.apply_batch(x).sum()
}

#[test]
fn a_layer_called_on_an_input_bounded_clone_keeps_its_record_in_a_chain() {
    use std::sync::atomic::Ordering::Relaxed;
    let model = (Linear::new(11), TallyFirst { map: Linear::new(12) });
    let x = batch(13);
    let _counting = TALLY_COUNT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = TALLIED.load(Relaxed);
    let (_, (gradient, x_bar)) = tally_first_loss::value_and_grad(&model, &x);
    // The chain hands the first layer's output to the second, which gives `Tally` a
    // clone of it to keep: `Tally` ran forward once, not again in the reverse sweep.
    assert_eq!(TALLIED.load(Relaxed) - before, 1);
    let numeric = along_each(&model, |m| tally_first_loss(m, &x));
    reals(&gradient).iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
    let numeric = along_each(&x, |y| tally_first_loss(&model, y));
    x_bar.iter().zip(&numeric).for_each(|(a, b)| assert!((a - b).abs() < 1e-7, "{a} vs {b}"));
}

/// How many times `Wave::kept`, a record written by hand, has run.
static WAVE_RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Clone, Debug, Differentiable)]
struct Wave {
    g: f64,
}

impl Wave {
    /// y = g·sin x, recorded by [`kept`](Self::kept).
    #[differentiable(wrt(self, x), record = Self::kept)]
    fn apply(&self, x: &f64, _label: &str) -> f64 {
        self.g * x.sin()
    }

    /// `apply`'s record: keeps sin x and cos x from one call.
    #[allow(clippy::type_complexity)]
    fn kept<'l>(
        &'l self,
        x: f64,
        _label: &'l str,
        [_, _, _]: [bool; 3],
    ) -> (f64, impl FnOnce(f64) -> (WaveTangent, f64, fluxion::autodiff::rules::NotDifferentiated) + 'l) {
        WAVE_RECORDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (sin, cos) = x.sin_cos();
        (self.g * sin, move |y_bar| {
            (
                WaveTangent { g: y_bar * sin },
                y_bar * self.g * cos,
                fluxion::autodiff::rules::NotDifferentiated,
            )
        })
    }
}

#[differentiable(wrt(wave, x))]
fn waved(wave: &Wave, x: &f64, label: &str) -> f64 {
    wave.apply(x, label).exp()
}

#[test]
fn a_record_written_by_hand_is_the_one_a_caller_keeps() {
    let (wave, x) = (Wave { g: 0.7 }, 0.4);
    let before = WAVE_RECORDS.load(std::sync::atomic::Ordering::SeqCst);
    let (value, (wave_bar, x_bar)) = waved::value_and_grad(&wave, &x, "wave");
    assert_eq!(WAVE_RECORDS.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    // f = exp(g·sin x): ∂f/∂g = f·sin x, ∂f/∂x = f·g·cos x.
    let f = (0.7 * x.sin()).exp();
    assert_close(value, f, 1e-15);
    assert_close(wave_bar.g, f * x.sin(), 1e-15);
    assert_close(x_bar, f * 0.7 * x.cos(), 1e-15);
    // The other companions come from the body: forward mode agrees.
    let (_, derivative) = waved::jvp(&wave, &x, "wave", &WaveTangent { g: 1.0 }, &0.5);
    assert_close(derivative, wave_bar.g + 0.5 * x_bar, 1e-15);
}
