//! Workload W6: the end-effector position p(q) ∈ R³ of a UR5 arm (standard
//! Denavit–Hartenberg parameters) and its 3×6 Jacobian dp/dq at q_k = 0.3·sin(k + 1).
//!
//! Shared by the benchmark (`benches/w6/mod.rs`) and the tests (`tests/w6_arm.rs`):
//! one forward-kinematics routine generic over the scalar (plain f64, fluxion's
//! `Dual<f64, 6>`, num-dual's `DualSVec64<6>`, nested duals for the Hessian), and a
//! hand-written geometric Jacobian Jₖ = zₖ₋₁ × (p − oₖ₋₁). The same kinematics
//! written once over plain values for static mode (`static_end_effector`).

use core::f64::consts::FRAC_PI_2;
use core::ops::{Add, Mul, Sub};

use fluxion::autodiff::{Dual, differentiable};
use fluxion::prelude::*;

/// Link offsets d.
pub const D: [f64; 6] = [0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823];
/// Link lengths a.
pub const A: [f64; 6] = [0.0, -0.425, -0.39225, 0.0, 0.0, 0.0];
/// Link twists α.
pub const ALPHA: [f64; 6] = [FRAC_PI_2, 0.0, 0.0, FRAC_PI_2, -FRAC_PI_2, 0.0];

/// The joint angles of the workload, q_k = 0.3·sin(k + 1).
pub fn joint_angles() -> [f64; 6] {
    core::array::from_fn(|k| 0.3 * ((k + 1) as f64).sin())
}

/// The arm, with sin α and cos α computed once.
#[derive(Clone, Copy, Debug)]
pub struct Ur5 {
    sin_alpha: [f64; 6],
    cos_alpha: [f64; 6],
}

impl Default for Ur5 {
    fn default() -> Self {
        Ur5 { sin_alpha: ALPHA.map(f64::sin), cos_alpha: ALPHA.map(f64::cos) }
    }
}

/// The scalar operations forward kinematics needs.
pub trait Kinematic: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    /// (sin x, cos x).
    fn sin_cos(self) -> (Self, Self);
    /// x·c for a constant c.
    fn times(self, c: f64) -> Self;
    /// x + c for a constant c.
    fn plus(self, c: f64) -> Self;
    /// The constant 0.
    fn zero() -> Self;
}

impl Kinematic for f64 {
    fn sin_cos(self) -> (f64, f64) {
        f64::sin_cos(self)
    }
    fn times(self, c: f64) -> f64 {
        self * c
    }
    fn plus(self, c: f64) -> f64 {
        self + c
    }
    fn zero() -> f64 {
        0.0
    }
}

impl<T: RealScalar + Kinematic, const N: usize> Kinematic for Dual<T, N> {
    fn sin_cos(self) -> (Self, Self) {
        Scalar::sin_cos(self)
    }
    fn times(self, c: f64) -> Self {
        self.scale(T::from_f64(c))
    }
    fn plus(self, c: f64) -> Self {
        self + Dual::constant(T::from_f64(c))
    }
    fn zero() -> Self {
        Dual::constant(T::from_f64(0.0))
    }
}

impl Ur5 {
    /// p(q): the DH transforms T₀(q₀)⋯T₅(q₅) applied, right to left, to the origin of
    /// the last frame (three affine rows per joint; no 4×4 products).
    pub fn end_effector<S: Kinematic>(&self, q: [S; 6]) -> [S; 3] {
        let (mut x, mut y, mut z) = (S::zero(), S::zero(), S::zero());
        for i in (0..6).rev() {
            let (s, c) = q[i].sin_cos();
            let shifted = x.plus(A[i]);
            let twisted = y.times(self.cos_alpha[i]) - z.times(self.sin_alpha[i]);
            (x, y, z) = (
                c * shifted - s * twisted,
                s * shifted + c * twisted,
                (y.times(self.sin_alpha[i]) + z.times(self.cos_alpha[i])).plus(D[i]),
            );
        }
        [x, y, z]
    }

    /// The 3×6 Jacobian by forward mode: one pass with `Dual<f64, 6>` seeded with the
    /// unit directions.
    pub fn jacobian_forward(&self, q: [f64; 6]) -> [[f64; 6]; 3] {
        let seeded: [Dual<f64, 6>; 6] = core::array::from_fn(|k| {
            Dual::new(q[k], core::array::from_fn(|j| if j == k { 1.0 } else { 0.0 }))
        });
        self.end_effector(seeded).map(|p| p.tangent())
    }

    /// The geometric Jacobian, hand-written: walk the frames from the base, keep each
    /// joint axis zₖ₋₁ and origin oₖ₋₁, then Jₖ = zₖ₋₁ × (p − oₖ₋₁).
    pub fn jacobian_analytic(&self, q: [f64; 6]) -> [[f64; 6]; 3] {
        let mut rotation = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let mut origin = [0.0; 3];
        let mut axes = [[0.0; 3]; 6];
        let mut origins = [[0.0; 3]; 6];
        for i in 0..6 {
            axes[i] = [rotation[0][2], rotation[1][2], rotation[2][2]];
            origins[i] = origin;
            let (s, c) = q[i].sin_cos();
            let (sa, ca) = (self.sin_alpha[i], self.cos_alpha[i]);
            let local = [[c, -s * ca, s * sa], [s, c * ca, -c * sa], [0.0, sa, ca]];
            let offset = [A[i] * c, A[i] * s, D[i]];
            for r in 0..3 {
                origin[r] +=
                    rotation[r][0] * offset[0] + rotation[r][1] * offset[1] + rotation[r][2] * offset[2];
            }
            rotation = core::array::from_fn(|r| {
                core::array::from_fn(|col| (0..3).map(|k| rotation[r][k] * local[k][col]).sum())
            });
        }
        let mut jacobian = [[0.0; 6]; 3];
        for k in 0..6 {
            let [ax, ay, az] = axes[k];
            let [dx, dy, dz] =
                [origin[0] - origins[k][0], origin[1] - origins[k][1], origin[2] - origins[k][2]];
            let column = [ay * dz - az * dy, az * dx - ax * dz, ax * dy - ay * dx];
            for r in 0..3 {
                jacobian[r][k] = column[r];
            }
        }
        jacobian
    }

    /// p(q) written over plain values for static mode, as `end_effector` computes it;
    /// `#[differentiable]` gives `static_end_effector_jacfwd` and `_jacrev`.
    #[differentiable(wrt(q))]
    pub fn static_end_effector(&self, q: &Vector<f64, 6>) -> Vector<f64, 3> {
        let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
        for i in (0..6).rev() {
            let angle = q[[i]];
            let (s, c) = (angle.sin(), angle.cos());
            let shifted = x + A[i];
            let twisted = y * self.cos_alpha[i] - z * self.sin_alpha[i];
            let next_x = c * shifted - s * twisted;
            let next_y = s * shifted + c * twisted;
            z = y * self.sin_alpha[i] + z * self.cos_alpha[i] + D[i];
            x = next_x;
            y = next_y;
        }
        Vector::from_array([x, y, z])
    }

    /// ‖p(q) − target‖², generic over the scalar.
    pub fn squared_distance<S: Kinematic>(&self, q: [S; 6], target: [f64; 3]) -> S {
        let p = self.end_effector(q);
        let d = [p[0].plus(-target[0]), p[1].plus(-target[1]), p[2].plus(-target[2])];
        d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    }

    /// The 6×6 Hessian of ‖p(q) − target‖² by forward-over-forward mode: nested duals
    /// `Dual<Dual<f64, 6>, 6>` seeded with the unit directions at both levels.
    pub fn distance_hessian(&self, q: [f64; 6], target: [f64; 3]) -> [[f64; 6]; 6] {
        let unit = |k: usize| -> [f64; 6] { core::array::from_fn(|j| if j == k { 1.0 } else { 0.0 }) };
        let seeded: [Dual<Dual<f64, 6>, 6>; 6] =
            core::array::from_fn(|k| Dual::new(Dual::new(q[k], unit(k)), unit(k).map(Dual::constant)));
        let value = self.squared_distance(seeded, target);
        core::array::from_fn(|i| value.tangent()[i].tangent())
    }
}
