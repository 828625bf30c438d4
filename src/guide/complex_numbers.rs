//! # Complex numbers
//!
//! fluxion follows PyTorch. The tangent inner product is ⟨u, v⟩ = Re Σ conj(uᵢ)·vᵢ,
//! and for a real loss L of z = x + iy the gradient is ∂L/∂x + i·∂L/∂y, so
//! `z − rate·gradient` descends. Every pullback is the adjoint of the differential
//! under that inner product; for a holomorphic f it is x̄ = conj(f′(x))·ȳ.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! // L(z) = |z|² = x² + y²: the gradient is 2x + 2iy = 2z.
//! let z = Complex64::new(1.0, -2.0);
//! let g = grad(|z: Var<Complex64>| z.norm_sqr(), &z);
//! assert_eq!(g, Complex64::new(2.0, -4.0));
//! ```
//!
//! `dot` is the real inner product and does not compile on complex data; `inner`
//! conjugates its left operand and `dotu` does not. Forward mode on
//! `Dual<Complex64>` carries complex tangents: seeding ẋ = 1 gives f′(z) for a
//! holomorphic f.
