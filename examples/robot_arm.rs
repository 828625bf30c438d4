//! Inverse kinematics of a six-joint arm (a UR5, standard Denavit–Hartenberg
//! parameters) by damped least squares, with Jacobians from static mode.
//!
//! The forward kinematics p(q) is one ordinary function over inline tensors with
//! `#[differentiable]` on it; `end_effector::jacfwd` is its 3×6 Jacobian, generated
//! at compile time (no tape, no heap). Each step solves
//!
//! Δq = Jᵀ (J Jᵀ + λ² I)⁻¹ (target − p(q)),
//!
//! a 3×3 system, until the position error is below 1e-12 m.

use core::f64::consts::FRAC_PI_2;

use fluxion::prelude::*;

/// Link offsets d (m).
const D: [f64; 6] = [0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823];
/// Link lengths a (m).
const A: [f64; 6] = [0.0, -0.425, -0.39225, 0.0, 0.0, 0.0];
/// Link twists α (rad).
const ALPHA: [f64; 6] = [FRAC_PI_2, 0.0, 0.0, FRAC_PI_2, -FRAC_PI_2, 0.0];

/// The tool's position: the DH transforms T₀(q₀)⋯T₅(q₅) applied, last first, to the
/// origin of the tool frame.
#[differentiable]
fn end_effector(q: &Vector<f64, 6>) -> Vector<f64, 3> {
    let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
    for i in (0..6).rev() {
        let (s, c) = (q[[i]].sin(), q[[i]].cos());
        let (sin_alpha, cos_alpha) = ALPHA[i].sin_cos();
        let shifted = x + A[i];
        let twisted = y * cos_alpha - z * sin_alpha;
        let next_x = c * shifted - s * twisted;
        let next_y = s * shifted + c * twisted;
        z = y * sin_alpha + z * cos_alpha + D[i];
        x = next_x;
        y = next_y;
    }
    Vector::from_array([x, y, z])
}

fn main() {
    let reachable: Vector<f64, 6> = Vector::from_array([0.4, -1.1, 1.3, -0.6, 0.9, 0.2]);
    let target = end_effector(&reachable);
    let mut q: Vector<f64, 6> = Vector::from_array([0.0, -0.5, 0.5, 0.0, 0.5, 0.0]);
    let damping = 1e-3;
    println!("target position: {target}");
    let mut error = f64::INFINITY;
    for iteration in 0..50 {
        let residual = target - end_effector(&q);
        error = residual.dot(&residual).sqrt();
        println!("iteration {iteration:2}: position error {error:.3e} m");
        if error < 1e-12 {
            break;
        }
        let jacobian: Matrix<f64, 3, 6> = end_effector::jacfwd(&q);
        let jacobian_t = jacobian.transpose();
        // Damped least squares: Δq = Jᵀ(JJᵀ + λ²I)⁻¹·e, a 3×3 solve on the stack.
        let system = jacobian.matmul(&jacobian_t) + Matrix::<f64, 3, 3>::identity() * (damping * damping);
        q += jacobian_t.matmul(&system.solve(&residual));
    }
    assert!(error < 1e-9, "the solver reached the target: error {error:e}");
    println!("joint angles: {q}");
}
