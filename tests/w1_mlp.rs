//! Workload W1 (the benchmark's MLP): fluxion's gradient equals hand-written
//! backpropagation and finite differences, and repeated gradients do not grow memory.

#[path = "../benches/w1/model.rs"]
mod model;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::autodiff::{Dual, differentiable, release_tape_memory};
use fluxion::prelude::*;
use model::{
    ArrayMlp, Mlp, MlpTraced, fluxion_gradient, fluxion_gradient_into, handwritten_gradient, loss, sample,
};

/// Counts allocations and live bytes per thread, to measure what one gradient
/// allocates while other tests run on other threads.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator with the same arguments; the
// counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.set(ALLOCATIONS.get() + 1);
        LIVE_BYTES.set(LIVE_BYTES.get() + layout.size() as isize);
        // SAFETY: the caller's contract for `layout` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.set(LIVE_BYTES.get() - layout.size() as isize);
        // SAFETY: `ptr` was allocated by `System` with this `layout` (through `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn gradient_equals_handwritten_backpropagation() {
    let model = Mlp::new(3);
    let (x, t) = sample();
    let (value, gradient) = fluxion_gradient(&model, &x, &t);
    let mut expected = ArrayMlp::default();
    let expected_value =
        handwritten_gradient(&ArrayMlp::from(&model), &x.to_array(), &t.to_array(), &mut expected);
    assert!((value - expected_value).abs() < 1e-14);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-13);
    assert!(close(gradient.w1.as_slice(), expected.w1.as_flattened()));
    assert!(close(gradient.b1.as_slice(), &expected.b1));
    assert!(close(gradient.w2.as_slice(), expected.w2.as_flattened()));
    assert!(close(gradient.b2.as_slice(), &expected.b2));
    assert!(close(gradient.w3.as_slice(), expected.w3.as_flattened()));
    assert!(close(gradient.b3.as_slice(), &expected.b3));
    assert_eq!(gradient.real_len(), 1379);
}

#[test]
fn gradient_matches_finite_differences() {
    let model = Mlp::new(5);
    let (x, t) = sample();
    let options = CheckOptions { max_full_entries: 1379, directions: 4, ..CheckOptions::f64() };
    let comparisons = check_grad(|m: MlpTraced| loss(m, &x, &t), &model, options).unwrap();
    assert_eq!(comparisons, 1379 + 4);
}

/// Allocations per gradient and live-byte growth over `rounds` gradients by
/// `gradient`, after a warm-up.
fn allocations_and_growth(rounds: usize, mut gradient: impl FnMut()) -> (usize, isize) {
    for _ in 0..10 {
        gradient();
    }
    let live_before = LIVE_BYTES.get();
    let allocations_before = ALLOCATIONS.get();
    for _ in 0..rounds {
        gradient();
    }
    ((ALLOCATIONS.get() - allocations_before) / rounds, LIVE_BYTES.get() - live_before)
}

#[test]
fn repeated_gradients_reuse_the_tape_and_do_not_grow_memory() {
    let model = Mlp::new(7);
    let (x, t) = sample();
    let rounds = 200;
    let (returned, returned_growth) = allocations_and_growth(rounds, || {
        std::hint::black_box(fluxion_gradient(&model, &x, &t));
    });
    let mut tangent = fluxion_gradient(&model, &x, &t).1;
    let (into, into_growth) = allocations_and_growth(rounds, || {
        std::hint::black_box(fluxion_gradient_into(&model, &x, &t, &mut tangent));
    });
    println!(
        "W1: {returned} allocations per gradient ({into} written into a tangent), live-byte growth over \
         {rounds} gradients: {returned_growth} ({into_growth})"
    );
    assert_eq!((returned_growth, into_growth), (0, 0), "memory grew over {rounds} gradients");
    // The tape's nodes, values and adjoints are reused; what remains is the two
    // `Var::constant`s (input and target) that `loss` wraps on each call and the
    // list of the gradient's leaf buffers that the backward sweep writes into.
    assert_eq!((returned, into), (3, 3), "allocations per gradient");
}

#[test]
fn gradient_into_a_reused_tangent_matches_the_returned_one() {
    let (x, t) = sample();
    let mut tangent = fluxion_gradient(&Mlp::new(3), &x, &t).1;
    for seed in [4, 5] {
        let model = Mlp::new(seed);
        let (value, expected) = fluxion_gradient(&model, &x, &t);
        assert_eq!(fluxion_gradient_into(&model, &x, &t, &mut tangent), value);
        assert_eq!(tangent.w1, expected.w1);
        assert_eq!(tangent.w2, expected.w2);
        assert_eq!(tangent.b3, expected.b3);
    }
}

#[test]
fn releasing_the_tape_memory_frees_the_kept_nodes() {
    let model = Mlp::new(8);
    let (x, t) = sample();
    let (value, gradient) = fluxion_gradient(&model, &x, &t);
    let live = LIVE_BYTES.get();
    release_tape_memory();
    let freed = live - LIVE_BYTES.get();
    // The kept nodes hold, among the rest, a copy of all 1379 parameters (11 032 bytes).
    assert!(freed >= 11_032, "{freed} bytes freed");
    let (again, regradient) = fluxion_gradient(&model, &x, &t);
    assert_eq!((again, regradient.w2), (value, gradient.w2));
}

#[test]
fn a_smaller_computation_frees_the_nodes_it_does_not_reuse() {
    let model = Mlp::new(9);
    let (x, t) = sample();
    fluxion_gradient(&model, &x, &t);
    let live = LIVE_BYTES.get();
    // A vjp of another computation keeps its tape (in the pullback) but not the W1 nodes.
    let (_, pullback) = fluxion::autodiff::vjp(|v: Var<Vector<f64, 2>>| v.sin(), &Vector::<f64, 2>::ones());
    let freed = live - LIVE_BYTES.get();
    assert!(freed >= 11_032, "{freed} bytes freed while the pullback is alive");
    drop(pullback);
}

/// The W1 loss with one more operation at the start when `extra` is set.
fn loss_with_optional_first_step(model: MlpTraced, extra: bool) -> Var<f64> {
    let (x, t) = sample();
    let w1 = if extra { model.w1.scale(1.0) } else { model.w1.clone() };
    loss(MlpTraced { w1, ..model }, &x, &t)
}

#[test]
fn an_operation_inserted_or_skipped_costs_one_node() {
    let model = Mlp::new(10);
    let mut gradient = fluxion_gradient(&model, &sample().0, &sample().1).1;
    let mut extra = false;
    let (per_gradient, growth) = allocations_and_growth(100, || {
        extra = !extra;
        fluxion::autodiff::value_and_grad_into(
            |m| loss_with_optional_first_step(m, extra),
            &model,
            &mut gradient,
        );
    });
    // 3 as in the plain loop, plus the node of the inserted operation when it is new.
    assert!(per_gradient <= 5, "{per_gradient} allocations per gradient");
    assert_eq!(growth, 0);
}

#[test]
fn static_mode_gradient_equals_the_tape_and_allocates_nothing() {
    let model = Mlp::new(11);
    let (x, t) = sample();
    let (value, expected) = fluxion_gradient(&model, &x, &t);
    assert_eq!(model::static_loss(&model, &x, &t), value);
    let (static_value, gradient) = model::static_loss::value_and_grad(&model, &x, &t);
    assert!((static_value - value).abs() < 1e-14);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-13);
    assert!(close(gradient.w1.as_slice(), expected.w1.as_slice()));
    assert!(close(gradient.b1.as_slice(), expected.b1.as_slice()));
    assert!(close(gradient.w2.as_slice(), expected.w2.as_slice()));
    assert!(close(gradient.b2.as_slice(), expected.b2.as_slice()));
    assert!(close(gradient.w3.as_slice(), expected.w3.as_slice()));
    assert!(close(gradient.b3.as_slice(), expected.b3.as_slice()));
    let mut into = model.zero_tangent();
    let (allocations, growth) = allocations_and_growth(100, || {
        std::hint::black_box(model::static_loss::value_and_grad_into(&model, &x, &t, &mut into));
    });
    assert_eq!((allocations, growth), (0, 0), "static mode allocated");
    assert_eq!(into.w2, gradient.w2);
}

#[test]
fn static_mode_pullback_and_tangent_agree_with_the_gradient() {
    let model = Mlp::new(12);
    let (x, t) = sample();
    let gradient = model::static_loss::grad(&model, &x, &t);
    let (value, pullback) = model::static_loss::vjp(&model, &x, &t);
    assert_eq!(value, model::static_loss(&model, &x, &t));
    let pulled = pullback(&2.0);
    assert!(pulled.w2.iter().zip(gradient.w2.iter()).all(|(p, g)| (p - 2.0 * g).abs() < 1e-13));
    // The adjoint identity ⟨∇L, v⟩ = L′(x)·v along a direction v.
    let direction = Mlp::new(13).zero_tangent().added(&gradient.scaled(0.5));
    let mut v = direction.clone();
    v.w1 = Matrix::random_normal(0.0, 1.0, 14);
    let (_, derivative) = model::static_loss::jvp(&model, &x, &t, &v);
    let mut inner = 0.0;
    let mut coordinates = Vec::new();
    v.for_each_real(&mut |c| coordinates.push(c));
    let mut index = 0;
    gradient.for_each_real(&mut |g| {
        inner += g * coordinates[index];
        index += 1;
    });
    assert!((derivative - inner).abs() < 1e-12 * inner.abs().max(1.0), "{derivative} {inner}");
}

/// The W1 network generic over the scalar: its static-mode gradient runs on dual
/// numbers too, which gives Hessian-vector products (forward over reverse).
#[derive(Differentiable, Clone, Debug)]
struct GenericMlp<T: RealScalar> {
    w1: Matrix<T, 32, 6>,
    b1: Vector<T, 32>,
    w2: Matrix<T, 32, 32>,
    b2: Vector<T, 32>,
    w3: Matrix<T, 3, 32>,
    b3: Vector<T, 3>,
}

/// The W1 loss over the generic network.
#[differentiable(wrt(model))]
fn generic_loss<T: RealScalar>(model: &GenericMlp<T>, x: &Vector<T, 6>, t: &Vector<T, 3>) -> T {
    let h1 = (model.w1.matmul(x) + model.b1).tanh();
    let h2 = (model.w2.matmul(&h1) + model.b2).tanh();
    let residual = model.w3.matmul(&h2) + model.b3 - t;
    residual.dot(&residual) * T::from_f64(0.5)
}

/// The model as duals: each parameter carries its coordinate of `direction`.
fn seeded(model: &GenericMlp<f64>, direction: &GenericMlpTangent<f64>) -> GenericMlp<Dual<f64>> {
    let pair = |a: f64, d: f64| Dual::new(a, [d]);
    GenericMlp {
        w1: model.w1.zip_map(&direction.w1, pair),
        b1: model.b1.zip_map(&direction.b1, pair),
        w2: model.w2.zip_map(&direction.w2, pair),
        b2: model.b2.zip_map(&direction.b2, pair),
        w3: model.w3.zip_map(&direction.w3, pair),
        b3: model.b3.zip_map(&direction.b3, pair),
    }
}

#[test]
fn static_mode_hessian_vector_product_matches_finite_differences() {
    let m = Mlp::new(21);
    let model = GenericMlp { w1: m.w1, b1: m.b1, w2: m.w2, b2: m.b2, w3: m.w3, b3: m.b3 };
    let d = Mlp::new(22);
    let direction = GenericMlpTangent { w1: d.w1, b1: d.b1, w2: d.w2, b2: d.b2, w3: d.w3, b3: d.b3 };
    // H·v: the tangent of the static-mode gradient at the model seeded along v.
    let (x, t) = sample();
    let dual_gradient =
        generic_loss::grad(&seeded(&model, &direction), &x.map(Dual::constant), &t.map(Dual::constant));
    let hv: Vec<f64> = dual_gradient.w2.iter().map(|d| d.tangent()[0]).collect();
    // Central differences of the f64 gradient along the direction.
    let h = 1e-5;
    let mut plus = model.clone();
    let mut minus = model.clone();
    plus.move_by(&direction.scaled(h));
    minus.move_by(&direction.scaled(-h));
    let (g_plus, g_minus) = (generic_loss::grad(&plus, &x, &t), generic_loss::grad(&minus, &x, &t));
    for ((a, p), m) in hv.iter().zip(g_plus.w2.iter()).zip(g_minus.w2.iter()) {
        let fd = (p - m) / (2.0 * h);
        assert!((a - fd).abs() < 1e-6 * (1.0 + fd.abs()), "{a} {fd}");
    }
    // The value part of the dual gradient is the gradient itself.
    let plain = generic_loss::grad(&model, &x, &t);
    assert!(dual_gradient.b1.iter().zip(plain.b1.iter()).all(|(d, g)| (d.value() - g).abs() < 1e-15));
    // No heap: the whole product lives on the stack.
    let seeded_model = seeded(&model, &direction);
    let (x_dual, t_dual) = (x.map(Dual::constant), t.map(Dual::constant));
    let before = ALLOCATIONS.get();
    std::hint::black_box(generic_loss::grad(&seeded_model, &x_dual, &t_dual));
    assert_eq!(ALLOCATIONS.get(), before, "the Hessian-vector product allocated");
}
