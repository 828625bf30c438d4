//! # Complex numbers
//!
//! fluxion follows PyTorch. The tangent inner product is ⟨u, v⟩ = Re Σ conj(uᵢ)·vᵢ,
//! and for a real loss L of z = x + iy the gradient is ∂L/∂x + i·∂L/∂y, so
//! `z − rate·gradient` descends. Every pullback is the adjoint of the differential
//! under that inner product; for a holomorphic f it is x̄ = conj(f′(x))·ȳ. JAX's
//! `grad` returns the conjugate, ∂L/∂x − i·∂L/∂y: code ported from JAX takes
//! `.conj()` of its gradients (the ground-state energy's gradient in a Hamiltonian
//! H is v₀·v₀ᴴ here, its conjugate in JAX).
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
//!
//! Static mode (`#[differentiable]`) has the same rules: the arithmetic, the
//! elementary functions, the products, `conj`, `re`, `im`, `norm_sqr`, `abs` (x̄ =
//! ȳ·x/|x|, 0 at 0, also where |x|² underflows), `inner`, `sum_axis` and `mean_axis`
//! of complex scalars and tensors. Real numbers enter with `to_complex()` (x + 0i);
//! a complex number built from two differentiated reals is
//! `re.to_complex() + im.to_complex() * Complex64::i()` (`Complex64::new(re, im)`
//! has no rule: its arguments are fields, not operations).
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::prelude::*;
//!
//! type V = Vector<Complex64, 2>;
//! type M = Matrix<Complex64, 2, 2>;
//!
//! /// ‖A·z − b‖², differentiated in z at compile time.
//! #[differentiable(wrt(z))]
//! fn residual(a: M, z: V, b: V) -> f64 {
//!     (a.matmul(&z) - b).norm_sqr().sum()
//! }
//!
//! let c = Complex64::new;
//! let a: M = Matrix::from_array([[c(1.0, 0.0), c(0.0, 1.0)], [c(2.0, 0.0), c(1.0, -1.0)]]);
//! let (z, b): (V, V) = (Vector::from_array([c(0.5, 0.5), c(-1.0, 0.0)]), Vector::from_array([c(1.0, 0.0); 2]));
//! let by_static = residual::grad(a, z, b);
//! // The tape's gradient, 2·Aᴴ(A·z − b), agrees.
//! let by_tape = grad(|z: Var<V>| (&Var::constant(a).matmul(&z) - &Var::constant(b)).norm_sqr().sum(), &z);
//! assert!(by_static.iter().zip(by_tape.iter()).all(|(s, t)| (s - t).norm() < 1e-12));
//! ```
//!
//! ## Complex linear algebra
//!
//! `solve`, `inverse`, `determinant`, `log_abs_determinant` (a real number),
//! `cholesky` (L·Lᴴ = ½(A + Aᴴ) for a Hermitian positive definite A, with a real
//! positive diagonal), the triangular solves and the factorisations below take
//! complex matrices, in every
//! mode: their derivatives are the real ones with each transpose conjugated
//! ([`ops::linalg`](crate::ops::linalg) states them). `hermitian_eigenvalues` and
//! `hermitian_eigen` diagonalise a Hermitian matrix (real eigenvalues, unitary V,
//! each column's largest entry made real and positive to fix its phase), and
//! `matrix_exp` takes complex matrices (e^(−iHt), a unitary evolution). Real
//! parameters enter a complex computation by `x.to_complex()` (x + 0i, x̄ = Re ȳ;
//! `examples/quantum_control.rs` shapes a qubit's drive so, through e^(−iHΔt)). A
//! complex system is the real one of twice the size, and its gradient is that
//! system's:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let c = Complex64::new;
//! let a: Matrix<Complex64, 2, 2> = Matrix::from_array([[c(2.0, 1.0), c(0.0, 1.0)], [c(1.0, 0.0), c(3.0, -1.0)]]);
//! let b: Vector<Complex64, 2> = Vector::from_array([c(1.0, 0.0), c(0.0, 2.0)]);
//! let x = a.solve(&b);
//! assert!((a.matmul(&x) - b).iter().all(|r| r.norm() < 1e-15));
//! // d|x|²/db = 2·A⁻ᴴx, the cotangent ∂/∂Re b + i·∂/∂Im b.
//! let gradient = grad(|b: Var<Vector<Complex64, 2>>| Var::constant(a).solve(&b).norm_sqr().sum(), &b);
//! let inverse_adjoint = a.inverse().conj_transpose();
//! let expected = inverse_adjoint.matmul(&x).scale(c(2.0, 0.0));
//! assert!(gradient.iter().zip(expected.iter()).all(|(g, e)| (g - e).norm() < 1e-14));
//! ```
//!
//! `qr` (Q with orthonormal columns under aᴴb, R with a real non-negative
//! diagonal) and `least_squares` take complex matrices too, by Hermitian
//! Householder reflections. The complex amplitudes of two known frequencies in
//! six samples, fitted in squares:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let c = Complex64::new;
//! let frequencies = [1.0, 2.5];
//! let design: Matrix<Complex64, 6, 2> = Matrix::from_fn(|[t, k]| c(0.0, frequencies[k] * t as f64).exp());
//! let amplitudes = Vector::from_array([c(1.0, -0.5), c(0.25, 2.0)]);
//! let noise = Vector::from_fn(|[t]| c(0.01 * (t as f64 - 2.5), 0.0));
//! let fitted = design.least_squares(&(design.matmul(&amplitudes) + noise));
//! assert!((fitted - amplitudes).iter().all(|e| e.norm() < 0.02));
//! // Without noise, exactly (to rounding); R's diagonal is real.
//! let (_, r) = design.qr();
//! assert!((design.least_squares(&design.matmul(&amplitudes)) - amplitudes).iter().all(|e| e.norm() < 1e-14));
//! assert!(r[[0, 0]].im == 0.0 && r[[1, 1]].im == 0.0);
//! ```
//!
//! `singular_values`, `svd` (U, σ, Vᴴ, σ real, each column of V's largest entry
//! real and positive) and `pseudo_inverse` take complex matrices as well. The
//! entanglement entropy of two qubits in the state cos θ·|00⟩ + i·sin θ·|11⟩ comes
//! from its Schmidt coefficients, the singular values of the 2×2 matrix of
//! amplitudes, and its gradient is U·diag(∂S/∂σ)·Vᴴ:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let (c, s) = (0.3f64.cos(), 0.3f64.sin());
//! let zero = Complex64::new(0.0, 0.0);
//! let psi: Matrix<Complex64, 2, 2> = Matrix::from_array([[Complex64::new(c, 0.0), zero], [zero, Complex64::new(0.0, s)]]);
//! let entropy = |psi: Var<Matrix<Complex64, 2, 2>>| {
//!     let p = psi.singular_values().powi(2);
//!     -(p.hadamard(&p.ln())).sum()
//! };
//! let (value, gradient) = value_and_grad(entropy, &psi);
//! let expected = -(c * c) * (c * c).ln() - (s * s) * (s * s).ln();
//! assert!((value - expected).abs() < 1e-15);
//! // ∂S/∂σ = −2σ(1 + ln σ²), along U = diag(1, i) and V = I.
//! let slope = |x: f64| -2.0 * x * (1.0 + (x * x).ln());
//! assert!((gradient[[0, 0]] - Complex64::new(slope(c), 0.0)).norm() < 1e-14);
//! assert!((gradient[[1, 1]] - Complex64::new(0.0, slope(s))).norm() < 1e-14);
//! ```
//!
//! A Hamiltonian's ground-state energy and its gradient, the expectation of each
//! coupling's operator in the ground state (Hellmann–Feynman): ∂E₀/∂H = v₀·v₀ᴴ.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let c = Complex64::new;
//! let h: Matrix<Complex64, 2, 2> = Matrix::from_array([[c(1.0, 0.0), c(0.5, -0.5)], [c(0.5, 0.5), c(-1.0, 0.0)]]);
//! let gradient = grad(|h: Var<Matrix<Complex64, 2, 2>>| h.hermitian_eigenvalues().at([0]), &h);
//! let (_, vectors) = h.hermitian_eigen();
//! let ground = [vectors[[0, 0]], vectors[[1, 0]]];
//! for i in 0..2 {
//!     for j in 0..2 {
//!         assert!((gradient[[i, j]] - ground[i] * ground[j].conj()).norm() < 1e-15);
//!     }
//! }
//! ```
