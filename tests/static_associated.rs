//! `#[differentiable(associated)]`: an associated function without `self` gets its
//! companions as sibling associated functions (`Arm::reach_grad`, …), each checked
//! against finite differences and the adjoint identity; calls of such functions
//! (`Self::tip(q)`, `Arm::reach(q, t)`, `Self::potential_grad(q)`) inside other
//! `#[differentiable]` bodies differentiate in every mode.

use fluxion::autodiff::check::{CheckOptions, check_pullback, check_pushforward};
use fluxion::prelude::*;

/// A planar arm of two links.
struct Arm;

impl Arm {
    const LINKS: (f64, f64) = (1.0, 0.7);

    /// The tip of the arm at joint angles `q`.
    #[differentiable(associated)]
    fn tip(q: &Vector<f64, 2>) -> Vector<f64, 2> {
        let (l1, l2) = Self::LINKS;
        let (a, b) = (q[[0]], q[[0]] + q[[1]]);
        Vector::from_array([l1 * a.cos() + l2 * b.cos(), l1 * a.sin() + l2 * b.sin()])
    }

    /// Half the squared miss of the tip, plus a soft limit on the elbow: sibling
    /// calls at the top level of the body.
    #[differentiable(associated, wrt(q))]
    pub fn reach(q: &Vector<f64, 2>, target: &Vector<f64, 2>) -> f64 {
        let miss = Self::tip(q) - target;
        miss.dot(&miss) * 0.5 + Arm::limit(q[[1]]) * 0.1
    }

    /// `reach` along a fan of scaled postures, and once more in one arm of a branch:
    /// sibling calls inside a loop and a branch.
    #[differentiable(associated, wrt(q))]
    fn fan(q: &Vector<f64, 2>, target: &Vector<f64, 2>, steps: usize) -> f64 {
        let mut total = 0.0;
        for k in 0..steps {
            let posture = q.scale(1.0 + 0.1 * k as f64);
            total += Arm::reach(&posture, target);
        }
        let last = if q[[0]] > 0.0 { Self::reach(q, target) } else { q.dot(q) };
        total + last
    }

    /// A soft joint limit ln(1 + 4θ²), its derivative given by hand (named apart
    /// from the companions `limit_vjp` and `limit_jvp`).
    #[differentiable(associated, vjp = Self::limit_pullback, jvp = Self::limit_pushforward)]
    fn limit(angle: f64) -> f64 {
        (4.0 * angle * angle).ln_1p()
    }

    fn limit_pullback(angle: f64, y_bar: f64) -> f64 {
        y_bar * 8.0 * angle / (1.0 + 4.0 * angle * angle)
    }

    fn limit_pushforward(angle: f64, angle_dot: &f64) -> f64 {
        angle_dot * 8.0 * angle / (1.0 + 4.0 * angle * angle)
    }

    /// The potential energy, generic over its scalar: `hvp` and `hessian` too, and its
    /// gradient differentiates inside other bodies.
    #[differentiable(associated)]
    pub fn potential<T: RealScalar>(q: &Vector<T, 2>) -> T {
        let (a, b) = (q[[0]], q[[0]] + q[[1]]);
        a.sin() * T::from_f64(9.81) + b.sin() * T::from_f64(3.0) + q.dot(q) * T::from_f64(0.5)
    }

    /// The potential after one gradient step from `q`: `Self::potential_grad`
    /// differentiates, its derivative the Hessian.
    #[differentiable(associated)]
    fn settled(q: &Vector<f64, 2>) -> f64 {
        let step = q - Self::potential_grad(q) * 0.05;
        Self::potential(&step)
    }
}

/// A method and a free function calling the arm's associated functions.
struct Controller {
    gain: f64,
}

impl Controller {
    #[differentiable(wrt(q))]
    fn effort(&self, q: &Vector<f64, 2>, target: &Vector<f64, 2>) -> f64 {
        let g = Arm::potential_grad(q);
        g.dot(&g) * self.gain + Arm::reach(q, target)
    }
}

#[differentiable(wrt(q))]
fn free_effort(q: &Vector<f64, 2>, target: &Vector<f64, 2>) -> f64 {
    let tip = Arm::tip(q);
    tip.dot(target) + Arm::potential(q)
}

/// An associated function of a generic type.
struct Chain<const N: usize, T> {
    scale: core::marker::PhantomData<T>,
}

impl<const N: usize, T: RealScalar> Chain<N, T> {
    #[differentiable(associated)]
    fn bend(q: &Vector<T, N>) -> T {
        q.cos().sum() * T::from_f64(2.0) + q.dot(q)
    }
}

fn options() -> CheckOptions {
    CheckOptions::f64()
}

const Q: [f64; 2] = [0.7, -0.4];
const TARGET: [f64; 2] = [0.9, 0.8];

#[test]
fn every_companion_of_an_associated_function_agrees_with_finite_differences() {
    let (q, target) = (Vector::from_array(Q), Vector::from_array(TARGET));
    let f = |q: &Vector<f64, 2>| Arm::reach(q, &target);
    let (_, pullback) = Arm::reach_vjp(&q, &target);
    check_pullback(f, &pullback, &q, options()).unwrap();
    let (_, map) = Arm::reach_linearize(&q, &target);
    check_pushforward(f, &map, &q, options()).unwrap();
    check_pushforward(f, |v: &Vector<f64, 2>| Arm::reach_jvp(&q, &target, v).1, &q, options()).unwrap();
    let gradient = pullback(&1.0);
    let (value, by_value_and_grad) = Arm::reach_value_and_grad(&q, &target);
    assert_eq!(value, Arm::reach(&q, &target));
    let mut into = Vector::zeros();
    let value_into = Arm::reach_value_and_grad_into(&q, &target, &mut into);
    assert_eq!(value_into, value);
    for g in [Arm::reach_grad(&q, &target), by_value_and_grad, into] {
        assert!(g.iter().zip(gradient.iter()).all(|(a, b)| (a - b).abs() < 1e-13), "{g:?}");
    }
}

#[test]
fn jacobians_of_an_associated_function() {
    let q = Vector::from_array(Q);
    let (_, pullback) = Arm::tip_vjp(&q);
    check_pullback(Arm::tip, &pullback, &q, options()).unwrap();
    let (_, map) = Arm::tip_linearize(&q);
    check_pushforward(Arm::tip, &map, &q, options()).unwrap();
    let (forward, reverse): (Matrix<f64, 2, 2>, Matrix<f64, 2, 2>) =
        (Arm::tip_jacfwd(&q), Arm::tip_jacrev(&q));
    for j in 0..2 {
        let column = map(&Vector::from_fn(|[k]| if k == j { 1.0 } else { 0.0 }));
        for i in 0..2 {
            assert!((forward[[i, j]] - column[[i]]).abs() < 1e-14);
            assert!((reverse[[i, j]] - column[[i]]).abs() < 1e-14);
        }
    }
}

#[test]
fn calls_of_associated_functions_in_loops_and_branches() {
    let (target, steps) = (Vector::from_array(TARGET), 3);
    // Both arms of the branch.
    for q in [Vector::from_array(Q), Vector::from_array([-0.3, 0.5])] {
        let f = |q: &Vector<f64, 2>| Arm::fan(q, &target, steps);
        let (_, pullback) = Arm::fan_vjp(&q, &target, steps);
        check_pullback(f, pullback, &q, options()).unwrap();
        let (_, map) = Arm::fan_linearize(&q, &target, steps);
        check_pushforward(f, map, &q, options()).unwrap();
    }
}

#[test]
fn a_derivative_given_by_hand_on_an_associated_function() {
    let angle = 0.6;
    let (_, pullback) = Arm::limit_vjp(angle);
    check_pullback(|a: &f64| Arm::limit(*a), pullback, &angle, options()).unwrap();
    let (_, map) = Arm::limit_linearize(angle);
    check_pushforward(|a: &f64| Arm::limit(*a), map, &angle, options()).unwrap();
}

#[test]
fn second_order_of_a_generic_associated_function() {
    let q = Vector::from_array(Q);
    let h = 1e-5;
    let hessian = Arm::potential_hessian(&q);
    for j in 0..2 {
        let e: Vector<f64, 2> = Vector::from_fn(|[k]| if k == j { 1.0 } else { 0.0 });
        let (plus, minus) = (Arm::potential_grad(&(q + e.scale(h))), Arm::potential_grad(&(q - e.scale(h))));
        let column = Arm::potential_hvp(&q, &e);
        for i in 0..2 {
            let fd = (plus[[i]] - minus[[i]]) / (2.0 * h);
            assert!((hessian[[i, j]] - fd).abs() < 1e-6 * (1.0 + fd.abs()), "H[{i}][{j}]");
            assert!((column[[i]] - hessian[[i, j]]).abs() < 1e-13);
        }
    }
    let (_, pullback) = Arm::potential_vjp(&q);
    check_pullback(Arm::potential, pullback, &q, options()).unwrap();
}

#[test]
fn an_associated_functions_gradient_differentiates_inside_other_bodies() {
    let (q, target) = (Vector::from_array(Q), Vector::from_array(TARGET));
    let (_, pullback) = Arm::settled_vjp(&q);
    check_pullback(Arm::settled, pullback, &q, options()).unwrap();
    let (_, map) = Arm::settled_linearize(&q);
    check_pushforward(Arm::settled, map, &q, options()).unwrap();

    let controller = Controller { gain: 0.3 };
    let f = |q: &Vector<f64, 2>| controller.effort(q, &target);
    let (_, pullback) = controller.effort_vjp(&q, &target);
    check_pullback(f, pullback, &q, options()).unwrap();
    let (_, map) = controller.effort_linearize(&q, &target);
    check_pushforward(f, map, &q, options()).unwrap();

    let f = |q: &Vector<f64, 2>| free_effort(q, &target);
    let (_, pullback) = free_effort::vjp(&q, &target);
    check_pullback(f, pullback, &q, options()).unwrap();
    let (_, map) = free_effort::linearize(&q, &target);
    check_pushforward(f, map, &q, options()).unwrap();
}

#[test]
fn associated_functions_of_a_generic_type() {
    let q = Vector::from_array([0.2, -0.9, 1.4]);
    let f = Chain::<3, f64>::bend;
    let (_, pullback) = Chain::<3, f64>::bend_vjp(&q);
    check_pullback(f, pullback, &q, options()).unwrap();
    let (_, map) = Chain::<3, f64>::bend_linearize(&q);
    check_pushforward(f, map, &q, options()).unwrap();
}
