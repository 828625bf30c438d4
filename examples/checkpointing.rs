//! Gradient checkpointing on a deep residual tower: each block, h + tanh(Linear(h)),
//! runs as a `checkpoint`, so the tape keeps the blocks' inputs and not the values
//! inside them; the backward sweep recomputes one block at a time.
//!
//! The example counts the bytes the process holds (a counting allocator) and prints
//! the peak of one gradient computation with and without checkpoints, checks that
//! both gradients are the same, and takes a few SGD steps.
//!
//! `cargo run --release --example checkpointing`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fluxion::autodiff::{checkpoint, release_tape_memory};
use fluxion::nn::layer::LinearTraced;
use fluxion::nn::prelude::*;
use fluxion::prelude::*;

/// The system allocator, counting the bytes held now and their peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with its own arguments; the counters
// only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout` comes from the caller, as `System::alloc` requires.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        pointer
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `pointer` was allocated by `alloc` above with `layout`.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const WIDTH: usize = 256;
const DEPTH: usize = 24;
type Batch = Tensor<f64, (Dyn, Const<WIDTH>), Heap>;

#[derive(Differentiable, Clone)]
struct Tower {
    blocks: Vec<Linear<f64, WIDTH, WIDTH>>,
    head: Linear<f64, WIDTH, 1>,
}

impl TowerTraced {
    /// The mean squared error of the tower's prediction against `target`.
    fn loss(&self, x: &Batch, target: &Tensor<f64, (Dyn, Const<1>), Heap>, checkpointed: bool) -> Var<f64> {
        let block =
            |(layer, h): (LinearTraced<f64, WIDTH, WIDTH>, Var<Batch>)| &h + &layer.forward(&h).tanh();
        let mut h = Var::constant(x.clone());
        for layer in &self.blocks {
            h = match checkpointed {
                true => checkpoint(block, &(layer.clone(), h)),
                false => block((layer.clone(), h)),
            };
        }
        mse(&self.head.forward(&h), target, Reduction::Mean)
    }
}

/// The loss and gradient of `tower` on the batch, with the peak bytes the
/// computation held beyond what was held before it.
fn gradient(
    tower: &Tower,
    x: &Batch,
    target: &Tensor<f64, (Dyn, Const<1>), Heap>,
    checkpointed: bool,
) -> (f64, TowerTangent, usize) {
    release_tape_memory();
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (loss, gradient) = value_and_grad(|t: TowerTraced| t.loss(x, target, checkpointed), tower);
    (loss, gradient, PEAK.load(Ordering::Relaxed) - before)
}

fn main() {
    let batch = 128;
    let x: Batch = Tensor::random_uniform_shaped((Dyn(batch), Const), -1.0, 1.0, 1);
    let target = Tensor::from_shape_fn((Dyn(batch), Const::<1>), |[r, _]| x.as_slice()[r * WIDTH].sin());
    let mut tower = Tower {
        blocks: (0..DEPTH as u64).map(|seed| Linear::new(seed + 10)).collect(),
        head: Linear::new(3),
    };
    let (plain_loss, plain, plain_peak) = gradient(&tower, &x, &target, false);
    let (loss, checkpointed, peak) = gradient(&tower, &x, &target, true);
    assert_eq!(loss, plain_loss);
    for (a, b) in checkpointed.blocks.iter().zip(&plain.blocks) {
        assert_eq!(
            (&a.weight, &a.bias),
            (&b.weight, &b.bias),
            "the same gradient: each block reads its input once"
        );
    }
    let megabytes = |bytes: usize| bytes as f64 / 1e6;
    println!("{DEPTH} residual blocks of width {WIDTH}, batch {batch}: peak memory of one gradient");
    println!("  plain tape:       {:6.1} MB", megabytes(plain_peak));
    println!(
        "  block checkpoints: {:5.1} MB ({:.1}× less)",
        megabytes(peak),
        plain_peak as f64 / peak as f64
    );
    assert!(peak < plain_peak, "checkpoints keep less");

    let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.002, ..SgdConfig::default() });
    let first = loss;
    for _ in 0..20 {
        let (_, gradient, _) = gradient(&tower, &x, &target, true);
        sgd.step(&mut tower, &gradient);
    }
    let (last, _, _) = gradient(&tower, &x, &target, true);
    println!("loss {first:.4} → {last:.4} after 20 SGD steps through the checkpoints");
    assert!(last < first);
}
