//! Workload W1 (the benchmark's MLP): fluxion's gradient equals hand-written
//! backpropagation and finite differences, and repeated gradients do not grow memory.

#[path = "../benches/w1/model.rs"]
mod model;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::prelude::*;
use model::{ArrayMlp, Mlp, MlpTraced, fluxion_gradient, handwritten_gradient, loss, sample};

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

#[test]
fn repeated_gradients_do_not_grow_memory() {
    let model = Mlp::new(7);
    let (x, t) = sample();
    for _ in 0..10 {
        fluxion_gradient(&model, &x, &t);
    }
    let live_before = LIVE_BYTES.get();
    let allocations_before = ALLOCATIONS.get();
    let rounds = 200;
    for _ in 0..rounds {
        std::hint::black_box(fluxion_gradient(&model, &x, &t));
    }
    let per_gradient = (ALLOCATIONS.get() - allocations_before) / rounds;
    let growth = LIVE_BYTES.get() - live_before;
    println!(
        "W1: {per_gradient} allocations per gradient, live-byte growth over {rounds} gradients: {growth}"
    );
    assert_eq!(growth, 0, "memory grew by {growth} bytes over {rounds} gradients");
    assert!(per_gradient < 64, "{per_gradient} allocations per gradient");
}
