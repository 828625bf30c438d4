//! Forward mode on a planar three-link arm: the Jacobian of the hand's position with
//! respect to the joint angles. The kinematics are written once, generic over the
//! real scalar; one pass over `Dual<f64, 3>` numbers (each angle seeded with its own
//! tangent direction) gives the whole 2×3 Jacobian, on inline values: no heap, no
//! tape. It is checked against the analytic Jacobian and against `jacfwd`.

use fluxion::prelude::*;

/// Link lengths, metres.
const LENGTHS: [f64; 3] = [1.0, 0.8, 0.5];

/// The hand's position (x, y) for joint angles θ: each link turns by its joint
/// angle relative to the previous link.
fn hand<S: RealScalar>(theta: [S; 3]) -> [S; 2] {
    let (mut angle, mut x, mut y) = (S::zero(), S::zero(), S::zero());
    for (joint, length) in theta.into_iter().zip(LENGTHS) {
        angle += joint;
        x += S::from_f64(length) * angle.cos();
        y += S::from_f64(length) * angle.sin();
    }
    [x, y]
}

/// ∂(x, y)/∂θⱼ by hand: joint j moves every link from j on.
fn analytic_jacobian(theta: [f64; 3]) -> [[f64; 3]; 2] {
    let mut jacobian = [[0.0; 3]; 2];
    for j in 0..3 {
        let mut angle: f64 = theta[..j].iter().sum();
        for k in j..3 {
            angle += theta[k];
            jacobian[0][j] -= LENGTHS[k] * angle.sin();
            jacobian[1][j] += LENGTHS[k] * angle.cos();
        }
    }
    jacobian
}

fn main() {
    let theta = [0.3, -0.5, 1.1];

    // One forward pass: angle k carries the unit tangent e_k.
    let seeded: [Dual<f64, 3>; 3] = core::array::from_fn(|k| {
        Dual::new(theta[k], core::array::from_fn(|j| if j == k { 1.0 } else { 0.0 }))
    });
    let [x, y] = hand(seeded);
    let jacobian: Matrix<f64, 2, 3> = Matrix::from_array([x.tangent(), y.tangent()]);
    println!("hand at ({:.4}, {:.4})", x.value(), y.value());
    println!("Jacobian (one Dual<f64, 3> pass): {jacobian}");

    let expected = analytic_jacobian(theta);
    for (row, expected_row) in jacobian.to_array().iter().zip(expected) {
        for (got, want) in row.iter().zip(expected_row) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    // The same through `jacfwd` on an inline tensor (one pass per angle).
    let through_jacfwd: Matrix<f64, 2, 3> = jacfwd(
        |theta: Vector<Dual<f64>, 3>| Vector::from_array(hand(theta.to_array())),
        &Vector::from_array(theta),
    );
    assert_eq!(through_jacfwd.to_array(), jacobian.to_array());
    println!("jacfwd agrees; the analytic Jacobian agrees to 1e-15");
}
