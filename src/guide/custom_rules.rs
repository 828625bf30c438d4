//! # Custom rules: a new primitive with its own derivative
//!
//! A library author adds an operation by computing its value with any code and
//! stating its rule; fluxion's own primitives use the same mechanism.
//!
//! - **Reverse mode:** `record_unary`,
//!   `record_binary` and
//!   `record_many` (any number of inputs) record the
//!   value with its pullback; the `_in_place` forms let the rule write straight into
//!   the adjoints.
//! - **An elementwise function**, written once over `RealScalar` with its derivative
//!   as a [`ScalarFunction`](crate::ops::elementwise::ScalarFunction), works on host
//!   tensors, on traced tensors (`map_function`), on duals (forward mode, through the
//!   written derivative), inside `#[differentiable]` code (host tensors: static mode
//!   does not take GPU ones) and on GPU tensors, where its kernel is generated from
//!   the same definition.
//! - **A fused elementwise function of several tensors**, written once over
//!   `RealScalar` as a [`FusedFunction`](crate::ops::elementwise::FusedFunction) —
//!   the value only: its partial derivatives come from forward mode on duals — runs
//!   in one pass on every storage kind, on the tape, in forward mode and inside
//!   `#[differentiable]` code (host tensors), as `f.apply([&a, &b])` in each
//!   (`use fluxion::ops::elementwise::{FusedFunction, ScalarFunction}`: neither is in
//!   the prelude).
//! - **Forward mode:** a function generic over the scalar runs on duals as is.
//! - **Static mode:** `#[differentiable(vjp = …, jvp = …)]` takes a hand-written pair.
//!   Nothing checks the two against each other: test each against finite differences
//!   of the plain function, the vjp with
//!   [`check_pullback`](crate::autodiff::check::check_pullback)`(f, f::vjp(x).1, &x, …)`
//!   and the jvp with
//!   [`check_pushforward`](crate::autodiff::check::check_pushforward)`(f, |ẋ| f::jvp(x, ẋ).1, &x, …)`.
//!   Where the body's derivatives are right but its record would run part of the
//!   forward pass again in the reverse sweep, `#[differentiable(record = path)]`
//!   keeps the body for every other companion and records with `path` (see the
//!   static-mode guide, and `MultiHeadAttention`'s `record_attention`).
//!
//! ```
//! use fluxion::autodiff::check::{CheckOptions, check_grad};
//! use fluxion::autodiff::record_unary;
//! use fluxion::prelude::*;
//!
//! // softplus(x) = ln(1 + eˣ) with the rule x̄ = ȳ·σ(x).
//! fn softplus(x: &Var<f64>) -> Var<f64> {
//!     let v = *x.value();
//!     record_unary(x, v.max(0.0) + (-v.abs()).exp().ln_1p(), move |y_bar: &f64| y_bar / (1.0 + (-v).exp()))
//! }
//! // The checker compares the rule with finite differences and the adjoint identity.
//! check_grad(|x: Var<f64>| softplus(&x), &0.7, CheckOptions::f64()).unwrap();
//! ```
//!
//! A rule's output can be a derived struct, a value of its own on the tape whose
//! cotangent is the struct's tangent; the checker takes such outputs too. A struct
//! whose every field is its own tangent converts to and from that tangent:
//!
//! ```
//! use fluxion::autodiff::check::{CheckOptions, check_vjp};
//! use fluxion::autodiff::{Differentiable, record_unary};
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone, Debug, PartialEq)]
//! struct Polar {
//!     radius: f64,
//!     angle: f64,
//! }
//!
//! // (x, y) ↦ (r, θ) in one node: r̄ pulls back to (x, y)·r̄/r, θ̄ to (−y, x)·θ̄/r².
//! fn to_polar(p: &Var<Vector<f64, 2>>) -> Var<Polar> {
//!     let [x, y] = p.value().to_array();
//!     let r = x.hypot(y);
//!     record_unary(p, Polar { radius: r, angle: y.atan2(x) }, move |bar: &PolarTangent| {
//!         let (radial, angular) = (bar.radius / r, bar.angle / (r * r));
//!         Vector::from_array([x * radial - y * angular, y * radial + x * angular])
//!     })
//! }
//! let p = Vector::from_array([3.0, 4.0]);
//! check_vjp(|p: Var<Vector<f64, 2>>| to_polar(&p), &p, CheckOptions::f64()).unwrap();
//! let direction: PolarTangent = Polar { radius: 1.0, angle: 0.0 }.into();
//! assert_eq!(Polar::from(direction.clone()), Polar { radius: 1.0, angle: 0.0 });
//! ```
//!
//! `examples/custom_op.rs` and `examples/cuda_custom_op.rs` show both forms.
