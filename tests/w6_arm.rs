//! Workload W6 (the benchmark's UR5 arm): the forward-mode Jacobian equals the
//! hand-written geometric Jacobian and finite differences, needs no heap, and the
//! nested-dual Hessian of the squared distance matches finite differences of its
//! gradient.

#[path = "../benches/w6/model.rs"]
mod model;

use model::{Ur5, joint_angles};

fn finite_difference_jacobian(arm: &Ur5, q: [f64; 6]) -> [[f64; 6]; 3] {
    let step = 1e-6;
    let mut jacobian = [[0.0; 6]; 3];
    for k in 0..6 {
        let (mut plus, mut minus) = (q, q);
        plus[k] += step;
        minus[k] -= step;
        let (p, m) = (arm.end_effector(plus), arm.end_effector(minus));
        for r in 0..3 {
            jacobian[r][k] = (p[r] - m[r]) / (2.0 * step);
        }
    }
    jacobian
}

#[test]
fn forward_jacobian_equals_the_geometric_jacobian_and_finite_differences() {
    let arm = Ur5::default();
    for q in [joint_angles(), [0.0; 6], [1.0, -0.5, 2.0, 0.3, -1.2, 0.7]] {
        let forward = arm.jacobian_forward(q);
        let analytic = arm.jacobian_analytic(q);
        let numeric = finite_difference_jacobian(&arm, q);
        for r in 0..3 {
            for k in 0..6 {
                assert!((forward[r][k] - analytic[r][k]).abs() < 1e-12, "J[{r}][{k}]");
                assert!((forward[r][k] - numeric[r][k]).abs() < 1e-8, "J[{r}][{k}] vs finite differences");
            }
        }
    }
}

#[test]
fn position_at_zero_matches_the_dh_parameters() {
    // At q = 0 the UR5 is stretched along −x: p = (a₂ + a₃, −(d₄ + d₆), d₁ − d₅).
    let p = Ur5::default().end_effector([0.0; 6]);
    let expected = [-0.425 - 0.39225, -(0.10915 + 0.0823), 0.089159 - 0.09465];
    for (a, b) in p.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{p:?}");
    }
}

#[test]
fn distance_hessian_matches_finite_differences_of_the_gradient() {
    let arm = Ur5::default();
    let (q, target) = (joint_angles(), [0.3, -0.2, 0.5]);
    let hessian = arm.distance_hessian(q, target);
    // ∇‖p − t‖² = 2 Jᵀ (p − t), from the forward-mode Jacobian.
    let gradient = |q: [f64; 6]| -> [f64; 6] {
        let (p, j) = (arm.end_effector(q), arm.jacobian_forward(q));
        core::array::from_fn(|k| (0..3).map(|r| 2.0 * j[r][k] * (p[r] - target[r])).sum())
    };
    let step = 1e-6;
    for k in 0..6 {
        let (mut plus, mut minus) = (q, q);
        plus[k] += step;
        minus[k] -= step;
        let (gp, gm) = (gradient(plus), gradient(minus));
        for i in 0..6 {
            let numeric = (gp[i] - gm[i]) / (2.0 * step);
            assert!((hessian[i][k] - numeric).abs() < 1e-7, "H[{i}][{k}] = {} vs {numeric}", hessian[i][k]);
            assert!((hessian[i][k] - hessian[k][i]).abs() < 1e-12, "symmetry");
        }
    }
}

#[test]
fn static_mode_jacobians_equal_the_geometric_jacobian() {
    let arm = Ur5::default();
    for q in [joint_angles(), [0.0; 6], [1.0, -0.5, 2.0, 0.3, -1.2, 0.7]] {
        let analytic = arm.jacobian_analytic(q);
        let q_vector = fluxion::Vector::from_array(q);
        assert_eq!(arm.static_end_effector(&q_vector).to_array(), arm.end_effector(q));
        let forward: fluxion::Matrix<f64, 3, 6> = arm.static_end_effector_jacfwd(&q_vector);
        let reverse: fluxion::Matrix<f64, 3, 6> = arm.static_end_effector_jacrev(&q_vector);
        // The linear map of a method: column k is J·eₖ.
        let (_, map) = arm.static_end_effector_linearize(&q_vector);
        for k in 0..6 {
            let mut unit = fluxion::Vector::<f64, 6>::zeros();
            unit[[k]] = 1.0;
            let column = map(&unit);
            for r in 0..3 {
                assert!((forward[[r, k]] - analytic[r][k]).abs() < 1e-12, "jacfwd J[{r}][{k}]");
                assert!((reverse[[r, k]] - analytic[r][k]).abs() < 1e-12, "jacrev J[{r}][{k}]");
                assert!((column[[r]] - analytic[r][k]).abs() < 1e-12, "linearize J[{r}][{k}]");
            }
        }
    }
}

#[test]
fn static_mode_jacobian_allocates_nothing() {
    let arm = Ur5::default();
    let q = fluxion::Vector::from_array(joint_angles());
    let before = allocations();
    let jacobian: fluxion::Matrix<f64, 3, 6> = std::hint::black_box(arm.static_end_effector_jacfwd(&q));
    let reverse: fluxion::Matrix<f64, 3, 6> = std::hint::black_box(arm.static_end_effector_jacrev(&q));
    assert_eq!(allocations(), before, "a static-mode Jacobian allocated");
    assert_eq!(jacobian.to_array().len() + reverse.to_array().len(), 6);
}

/// Counts this thread's allocations.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.get()
}

// SAFETY: every method forwards to the system allocator with the same arguments; the
// counter has no effect on the memory handed out.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.set(ALLOCATIONS.get() + 1);
        // SAFETY: the caller's contract for `layout` is passed on unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` with this `layout` (through `alloc`).
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;
