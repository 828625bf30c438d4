//! Forward mode on inline tensors allocates nothing: `jvp`, `linearize` and `jacfwd`
//! (one pass per coordinate and all coordinates in one pass), counted by a global
//! allocator on the test's own thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fluxion::autodiff::{Dual, jacfwd, jvp, linearize};
use fluxion::prelude::*;

/// Counts the allocations made on each thread.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator with the same arguments; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.set(ALLOCATIONS.get() + 1);
        // SAFETY: the caller's contract for `layout` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this `layout` (through `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The allocations `f` makes on this thread.
fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.get();
    let result = f();
    (result, ALLOCATIONS.get() - before)
}

/// A planar three-link arm's hand position, generic over the real scalar.
fn hand<S: RealScalar>(theta: Vector<S, 3>) -> Vector<S, 2> {
    let (mut angle, mut x, mut y) = (S::zero(), S::zero(), S::zero());
    for (joint, length) in theta.to_array().into_iter().zip([1.0, 0.8, 0.5]) {
        angle += joint;
        x += S::from_f64(length) * angle.cos();
        y += S::from_f64(length) * angle.sin();
    }
    Vector::from_array([x, y])
}

#[test]
fn forward_mode_on_inline_tensors_allocates_nothing() {
    let theta: Vector<f64, 3> = Vector::from_array([0.3, -0.5, 1.1]);
    let v: Vector<f64, 3> = Vector::from_array([1.0, -1.0, 0.5]);
    let ((_, along_v), count) = allocations_of(|| jvp(|t: Vector<Dual<f64>, 3>| hand(t), &theta, &v));
    assert_eq!(count, 0, "jvp allocated");
    let (one_pass, count) = allocations_of(|| jacfwd(|t: Vector<Dual<f64, 3>, 3>| hand(t), &theta));
    assert_eq!(count, 0, "jacfwd (one pass) allocated");
    let (per_coordinate, count) = allocations_of(|| jacfwd(|t: Vector<Dual<f64>, 3>| hand(t), &theta));
    assert_eq!(count, 0, "jacfwd (a pass per coordinate) allocated");
    let (linear, count) = allocations_of(|| linearize(|t: Vector<Dual<f64>, 3>| hand(t), &theta).1);
    let (applied, applied_count) = allocations_of(|| linear(&v));
    assert_eq!((count, applied_count), (0, 0), "linearize allocated");

    assert_eq!(one_pass.to_array(), per_coordinate.to_array());
    assert_eq!(applied.to_array(), along_v.to_array());
    let expected: Vector<f64, 2> = one_pass.matmul(&v);
    for (a, b) in along_v.iter().zip(expected.iter()) {
        assert!((a - b).abs() < 1e-15);
    }
}
