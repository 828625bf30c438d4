//! Workload W7: the gradient of a long rollout whose step count is known only at run
//! time — a damped pendulum, θ̈ = −sin θ − c·θ̇, by semi-implicit Euler for n steps,
//! scored by the final angle squared — with respect to the damping c and the initial
//! velocity. Group `w7/rollout_gradient/{n}`: `static_grad` (`#[differentiable]`:
//! checkpoints on the stack, iterations rerun), `handwritten` (the forward pass
//! storing every state in a `Vec`, then the adjoint recurrence), `tape` (reverse mode
//! over `Var`) and `primal` (the plain rollout).

use criterion::{BenchmarkId, Criterion, black_box, criterion_group};
use fluxion::autodiff::{Var, differentiable, value_and_grad};

use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = rollout_gradient
}

const DT: f64 = 1e-3;

/// The rollout's final angle squared.
#[differentiable(wrt(damping, velocity))]
fn rollout(damping: f64, velocity: f64, steps: usize) -> f64 {
    let (mut angle, mut omega) = (1.0f64, velocity);
    for _ in 0..steps {
        omega += DT * (-angle.sin() - damping * omega);
        angle += DT * omega;
    }
    angle * angle
}

/// The gradient written by hand: the states kept, then the adjoint recurrence of
/// ω′ = ω + dt(−sin θ − cω), θ′ = θ + dt·ω′, last step first.
fn handwritten(damping: f64, velocity: f64, steps: usize) -> (f64, f64) {
    let mut states = Vec::with_capacity(steps);
    let (mut angle, mut omega) = (1.0f64, velocity);
    for _ in 0..steps {
        states.push((angle, omega));
        omega += DT * (-angle.sin() - damping * omega);
        angle += DT * omega;
    }
    let (mut angle_bar, mut omega_bar, mut damping_bar) = (2.0 * angle, 0.0, 0.0);
    for &(angle, omega) in states.iter().rev() {
        // θ′ = θ + dt·ω′.
        let omega_next_bar = omega_bar + DT * angle_bar;
        // ω′ = ω + dt(−sin θ − cω).
        damping_bar -= DT * omega * omega_next_bar;
        angle_bar -= DT * angle.cos() * omega_next_bar;
        omega_bar = omega_next_bar * (1.0 - DT * damping);
    }
    (damping_bar, omega_bar)
}

fn on_the_tape(damping: f64, velocity: f64, steps: usize) -> (f64, f64) {
    let (_, gradient) = value_and_grad(
        |(damping, velocity): (Var<f64>, Var<f64>)| {
            let (mut angle, mut omega) = (Var::constant(1.0), velocity);
            for _ in 0..steps {
                omega = &omega + (-angle.sin() - &damping * &omega) * DT;
                angle = &angle + &omega * DT;
            }
            &angle * &angle
        },
        &(damping, velocity),
    );
    gradient
}

fn rollout_gradient(c: &mut Criterion) {
    let (damping, velocity) = (0.3, 0.5);
    let mut group = c.benchmark_group("w7/rollout_gradient");
    for steps in [1_000, 100_000] {
        let ours = rollout::grad(damping, velocity, steps);
        let by_hand = handwritten(damping, velocity, steps);
        let taped = on_the_tape(damping, velocity, steps);
        for (a, b) in [(ours.0, by_hand.0), (ours.1, by_hand.1), (ours.0, taped.0), (ours.1, taped.1)] {
            assert!(
                (a - b).abs() < 1e-9 * (1.0 + b.abs()),
                "the gradients disagree: {ours:?} {by_hand:?} {taped:?}"
            );
        }
        let n = black_box(steps);
        group.bench_function(BenchmarkId::new("static_grad", steps), |b| {
            b.iter(|| rollout::grad(black_box(damping), black_box(velocity), n))
        });
        group.bench_function(BenchmarkId::new("handwritten", steps), |b| {
            b.iter(|| handwritten(black_box(damping), black_box(velocity), n))
        });
        group.bench_function(BenchmarkId::new("tape", steps), |b| {
            b.iter(|| on_the_tape(black_box(damping), black_box(velocity), n))
        });
        group.bench_function(BenchmarkId::new("primal", steps), |b| {
            b.iter(|| rollout(black_box(damping), black_box(velocity), n))
        });
    }
}
