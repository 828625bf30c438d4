//! # Higher order: Hessians
//!
//! Duals nest and run under reverse mode, so second derivatives come from reverse
//! mode over duals (forward-over-reverse): the gradient at x + ε·v carries H·v in its
//! tangent. `hvp` takes one such pass;
//! `hessian` takes one per input coordinate and types the
//! result as a tensor of shape `S ++ S` for an input of shape `S`.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! // f(x) = x₀²·x₁ + x₁³: H = [[2x₁, 2x₀], [2x₀, 6x₁]].
//! fn f<S: Scalar>(x: Var<Vector<S, 2>>) -> Var<S> {
//!     let (a, b) = (x.at([0]), x.at([1]));
//!     &(&(&a * &a) * &b) + &(&(&b * &b) * &b)
//! }
//! let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
//! let h: Matrix<f64, 2, 2> = hessian(f::<Dual<f64>>, &x);
//! assert_eq!(h.to_array(), [[4.0, 2.0], [2.0, 12.0]]);
//! let hv = hvp(f::<Dual<f64>>, &x, &Vector::from_array([1.0, 0.0]));
//! assert_eq!(hv.to_array(), [4.0, 2.0]);
//! ```
//!
//! The tape does not nest in itself (no reverse over reverse): a `grad` called inside
//! another gradient's function on `x.value()` differentiates a constant, and the
//! outer gradient silently misses that path (where JAX's `grad(grad(f))` counts it).
//! Take second derivatives forward over reverse, as here, or in static mode, where
//! `f::grad` of an `f` generic over its real scalar is differentiated inside a
//! `#[differentiable]` body (its Hessian product).
//!
//! In static mode a function generic over its real scalar has `f::hessian` and
//! `f::hvp` of its own, with no tape: forward mode over the generated gradient. A
//! parameter left out of `wrt(…)` is passed as a plain value (of `f64` here), and the
//! functions it calls must be generic too:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! #[differentiable]
//! fn tip<T: RealScalar>(q: &Vector<T, 2>) -> Vector<T, 2> {
//!     let (a, b) = (q[[0]], q[[0]] + q[[1]]);
//!     Vector::from_array([a.cos() + b.cos(), a.sin() + b.sin()])
//! }
//!
//! // c(q) = |tip(q) − target|².
//! #[differentiable(wrt(q))]
//! fn cost<T: RealScalar>(q: &Vector<T, 2>, target: &Vector<T, 2>) -> T {
//!     let miss = tip(q) - target;
//!     miss.dot(&miss)
//! }
//!
//! // Near the solution q = (0, π/2), where H is positive definite.
//! let (q, target) = (Vector::from_array([0.1, 1.4]), Vector::from_array([1.0, 1.0]));
//! let h: Matrix<f64, 2, 2> = cost::hessian(&q, &target);
//! assert!(h[[0, 0]] > 0.0 && h[[0, 0]] * h[[1, 1]] - h[[0, 1]] * h[[1, 0]] > 0.0);
//! let hv: Vector<f64, 2> = cost::hvp(&q, &target, &Vector::from_array([1.0, 0.0]));
//! assert_eq!(hv.to_array(), [h[[0, 0]], h[[1, 0]]]);
//! // Newton's step solves H·s = −∇c.
//! let g: Vector<f64, 2> = cost::grad(&q, &target);
//! let step = h.solve(&(g * -1.0));
//! assert!(cost(&(q + step), &target) < 0.05 * cost(&q, &target));
//! ```
//!
//! `hvp` also takes a tuple or array of tensors (a layer's `(w, b)`), or a derived
//! struct of tensors and scalars, and returns its tangent. For such an input,
//! `coordinate_hessian` gives the whole Hessian as a dense matrix over the real
//! coordinates, with each leaf's name (`0`, `1`, `0.1` for nested tuples, the field
//! path for a struct), shape and range: `h.block("0", "1")` is ∂²f/∂w∂b, and
//! `h.coordinate(k)` names the leaf of row k. A derived struct `Name` reaches `f`
//! lifted to duals and traced, as `NameLiftedTraced` (its fields `Var`s of duals):
//!
//! ```
//! use fluxion::autodiff::{Differentiable, coordinate_hessian};
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone, Debug)]
//! struct Arm {
//!     lengths: Vector<f64, 2>,
//!     gain: f64,
//! }
//!
//! // f = gain · |lengths|²: ∂²f/∂lengths² = 2·gain·I, ∂²f/∂gain∂lengths = 2·lengths.
//! let arm = Arm { lengths: Vector::from_array([1.0, 2.0]), gain: 3.0 };
//! let h = coordinate_hessian(
//!     |a: ArmLiftedTraced| a.lengths.dot(&a.lengths) * &a.gain,
//!     &arm,
//! );
//! assert_eq!(h.block("lengths", "lengths").unwrap().to_vec(), vec![6.0, 0.0, 0.0, 6.0]);
//! assert_eq!(h.block("gain", "lengths").unwrap().to_vec(), vec![2.0, 4.0]);
//! ```
//!
//! A model of library layers takes the same road: its lifted and traced form
//! (`<<Model as Lift>::Lifted as Trace>::Traced`) runs the layers' own forward pass
//! on a traced batch of duals (`Var::constant(x.map(Dual::constant))`; a plain batch
//! `&x` is taken so by a first `Linear`, `LayerNorm`, `GroupNorm`, `BatchNorm` or
//! `Conv2d`) for those layers, the parameter-free layers and `Sequential`, so
//! `coordinate_hessian(|m| cross_entropy(&m.forward(&x), &classes, Reduction::Mean),
//! &model)` is the Hessian of the loss over every parameter (`tests/forward.rs`
//! checks an MLP's and a CNN's against differences of the gradient).
//!
//! Nested duals (`Dual<Dual<f64, N>, N>`) give Hessians in forward mode alone, with
//! no heap.
