//! Workload W6 (see `model.rs`): the 3×6 Jacobian of a UR5 arm's end-effector
//! position. Group `w6/ur5_jacobian`: `fluxion_forward` (one pass of `Dual<f64, 6>`
//! seeded by hand), `jacfwd` (the operator, seeding all six joints in one pass),
//! `analytic` (hand-written geometric Jacobian), `num_dual` (`DualSVec64<6>` on the
//! same kinematics), `primal` (plain f64 position) and `jvp` (one direction,
//! `Dual<f64>`), and static mode (`#[differentiable]`): `static_jacfwd`,
//! `static_jacrev`, `static_primal` (the plain function itself). Group `w6/distance_hessian`: the 6×6 Hessian of the squared distance
//! to a target by nested duals.

pub mod model;

use criterion::{Criterion, black_box, criterion_group};
use fluxion::autodiff::{Dual, jacfwd};
use nalgebra::{Const, U1};
use num_dual::DualSVec64;

use self::model::{Kinematic, Ur5, joint_angles};
use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = ur5_jacobian, distance_hessian
}

impl Kinematic for DualSVec64<6> {
    fn sin_cos(self) -> (Self, Self) {
        num_dual::DualNum::sin_cos(&self)
    }
    fn times(self, c: f64) -> Self {
        self * c
    }
    fn plus(self, c: f64) -> Self {
        self + c
    }
    fn zero() -> Self {
        DualSVec64::from_re(0.0)
    }
}

/// The Jacobian by `jacfwd`, all six joints seeded in one pass of `Dual<f64, 6>`.
fn jacfwd_jacobian(arm: &Ur5, q: [f64; 6]) -> [[f64; 6]; 3] {
    let q: fluxion::Vector<f64, 6> = fluxion::Vector::from_array(q);
    let jacobian: fluxion::Matrix<f64, 3, 6> = jacfwd(
        |q: fluxion::Vector<Dual<f64, 6>, 6>| fluxion::Vector::from_array(arm.end_effector(q.to_array())),
        &q,
    );
    jacobian.to_array()
}

/// The Jacobian by num-dual: seed each joint with its own derivative direction.
fn num_dual_jacobian(arm: &Ur5, q: [f64; 6]) -> [[f64; 6]; 3] {
    let seeded: [DualSVec64<6>; 6] = core::array::from_fn(|k| DualSVec64::from_re(q[k]).derivative(k));
    arm.end_effector(seeded).map(|p| {
        let column = p.eps.unwrap_generic(Const::<6>, U1);
        core::array::from_fn(|j| column[j])
    })
}

fn ur5_jacobian(c: &mut Criterion) {
    let arm = Ur5::default();
    let q = joint_angles();
    let reference = arm.jacobian_analytic(q);
    for candidate in [arm.jacobian_forward(q), jacfwd_jacobian(&arm, q), num_dual_jacobian(&arm, q)] {
        let agree =
            candidate.iter().flatten().zip(reference.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-12);
        assert!(agree, "the Jacobians disagree");
    }
    let mut group = c.benchmark_group("w6/ur5_jacobian");
    group.bench_function("fluxion_forward", |b| b.iter(|| arm.jacobian_forward(black_box(q))));
    group.bench_function("jacfwd", |b| b.iter(|| jacfwd_jacobian(&arm, black_box(q))));
    group.bench_function("analytic", |b| b.iter(|| arm.jacobian_analytic(black_box(q))));
    group.bench_function("num_dual", |b| b.iter(|| num_dual_jacobian(&arm, black_box(q))));
    let q_vector = fluxion::Vector::from_array(q);
    group.bench_function("static_jacfwd", |b| {
        b.iter(|| -> fluxion::Matrix<f64, 3, 6> { arm.static_end_effector_jacfwd(black_box(&q_vector)) })
    });
    group.bench_function("static_jacrev", |b| {
        b.iter(|| -> fluxion::Matrix<f64, 3, 6> { arm.static_end_effector_jacrev(black_box(&q_vector)) })
    });
    group.bench_function("primal", |b| b.iter(|| arm.end_effector(black_box(q))));
    group.bench_function("static_primal", |b| b.iter(|| arm.static_end_effector(black_box(&q_vector))));
    group.bench_function("jvp", |b| {
        b.iter(|| {
            let direction = [1.0, 0.5, -0.25, 0.0, 2.0, 1.0];
            let seeded: [Dual<f64>; 6] = core::array::from_fn(|k| Dual::new(black_box(q)[k], [direction[k]]));
            arm.end_effector(seeded)
        })
    });
    group.finish();
}

fn distance_hessian(c: &mut Criterion) {
    let arm = Ur5::default();
    let q = joint_angles();
    let target = [0.3, -0.2, 0.5];
    let mut group = c.benchmark_group("w6/distance_hessian");
    group.bench_function("fluxion_forward_over_forward", |b| {
        b.iter(|| arm.distance_hessian(black_box(q), target))
    });
    group.bench_function("primal", |b| b.iter(|| arm.squared_distance(black_box(q), target)));
    group.finish();
}
