//! # Forward mode: dual numbers, no heap
//!
//! A [`Dual<T, N>`](crate::autodiff::Dual) is a value with `N` tangents. It is a
//! scalar, so tensors of duals and any code generic over the scalar compute
//! directional derivatives as they compute values. Forward mode needs no tape and no
//! heap: it works with default features off, on inline tensors.
//!
//! Write the function once, generic over the real scalar:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! /// A planar two-link arm's hand position for joint angles θ.
//! fn hand<S: RealScalar>(theta: Vector<S, 2>) -> Vector<S, 2> {
//!     let (a, b) = (theta[[0]], theta[[0]] + theta[[1]]);
//!     let half = S::from_f64(0.5);
//!     Vector::from_array([a.cos() + half * b.cos(), a.sin() + half * b.sin()])
//! }
//!
//! let theta: Vector<f64, 2> = Vector::from_array([0.3, 0.4]);
//! // J·v along one direction, in one pass:
//! let v = Vector::from_array([1.0, 0.0]);
//! let (position, velocity) = jvp(|t: Vector<Dual<f64>, 2>| hand(t), &theta, &v);
//! // The whole 2×2 Jacobian in one pass: the duals carry two tangents.
//! let j: Matrix<f64, 2, 2> = jacfwd(|t: Vector<Dual<f64, 2>, 2>| hand(t), &theta);
//! assert_eq!(velocity.to_array(), [j[[0, 0]], j[[1, 0]]]);
//! assert!((position[[0]] - (0.3f64.cos() + 0.5 * 0.7f64.cos())).abs() < 1e-15);
//! ```
//!
//! `jacfwd` seeds as many input coordinates per pass as the closure's duals carry
//! tangents: `Dual<f64, 2>` above, one pass; `Dual<f64>`, one pass per coordinate.
//! `linearize` returns the value and the map v ↦ J·v. Seeding duals by hand
//! (`Dual::new(value, tangents)`) works as well; see `examples/arm_jacobian.rs`.
//!
//! Plain scalars mix with duals on either side (`1.0 - d`, `d * 2.0`; for nested
//! duals, `Dual<Dual<f64>>`, the plain scalar is the inner dual: write
//! `Dual::constant(1.0) - d`), and tensors of duals scale by plain scalars. A plain tensor enters a dual function as constants
//! with `x.map(Dual::constant)`.
