//! # Static mode: `#[differentiable]` on ordinary functions
//!
//! Write a function once, over ordinary values — scalars, tensors, derived structs,
//! references to them — and put `#[differentiable]` on it. The function stays plain
//! Rust at plain speed; beside it the attribute generates, at compile time, its
//! derivatives in every mode, with adjoints in local variables: no tape, no heap
//! (on inline tensors), no `std`.
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::prelude::*;
//!
//! #[differentiable]
//! fn f(x: f64, y: f64) -> f64 {
//!     let s = x * y + x.sin();
//!     s * s / (1.0 + y * y)
//! }
//!
//! let (value, (dx, dy)) = f::value_and_grad(0.5, 2.0); // reverse mode
//! let (_, along_x) = f::jvp(0.5, 2.0, &1.0, &0.0); // forward mode
//! assert_eq!(value, f(0.5, 2.0));
//! assert!((along_x - dx).abs() < 1e-15);
//! # let _ = dy;
//! ```
//!
//! A free function `f` gets a struct `f` beside it, whose associated functions are
//! the companions (types and values live in different namespaces, so `use path::f;`
//! brings both); a method `m` gets methods
//! `m_grad`, `m_value_and_grad`, … beside it, and an associated function `g`
//! without `self`, marked `#[differentiable(associated)]`, associated functions
//! `Type::g_grad`, `Type::g_value_and_grad`, … ([below](#methods-and-associated-functions)).
//! With the tape operators' call shapes:
//!
//! | companion | gives |
//! | --- | --- |
//! | `f::value_and_grad(args)` | the value and the gradient (real scalar output) |
//! | `f::grad(args)` | the gradient |
//! | `f::value_and_grad_into(args, &mut g)` | the value, the gradient written into `g` (no allocation) |
//! | `f::vjp(args)` | the value and its pullback, called `pullback(&ȳ)` |
//! | `f::jvp(args, &ẋ…)` | the value and its derivative along the tangents, one per differentiated parameter in order (none for a constant) |
//! | `f::linearize(args)` | the value and the linear map `(&ẋ…) ↦ ẏ` (each call runs the tangent code) |
//! | `f::jacfwd(args)`, `f::jacrev(args)` | the Jacobian (one differentiated tensor or scalar in, one out; other parameters are constants, `#[differentiable(wrt(x))]`), shape `Out ++ In`; heap-free and, in a function generic over its scalar, usable at duals too (the prelude's `jacfwd`/`jacrev` take a closure instead: over duals, and over the tape's `Var`s) |
//! | `f::hvp(args, &v)`, `f::hessian(args)` | second order, for a function generic over its scalar: the product H·v, the Hessian (`hessian` for a scalar or a tensor input of rank 1 or 2: a scalar's is its second derivative) |
//!
//! The gradient is the differentiated parameter's tangent, or a tuple of them in
//! order. By default every parameter is differentiated except those of an integer
//! type, `bool`, `char`, `str` or `String` (constants by nature); `#[differentiable(
//! wrt(model))]` picks the parameters to differentiate, and the others are constants.
//! `vjp`'s pullback borrows the arguments, so they must outlive it (bind a temporary
//! argument to a variable first). A parameter taken by value is cloned by `vjp` and
//! `linearize` (and at entry when the body reuses its name), so its type must be
//! `Clone` (or take it by reference). A generic
//! parameter that no argument determines (`fn f<const K: usize>(x: f64)`) is named
//! on the companion, followed by `_` for each of the companion's own (`grad`'s
//! output type): `f::grad::<3, _>(x)`, `f::jvp::<3>(x, &1.0)`. Moving a function from the tape to static mode is adding
//! the attribute and writing the body over plain values instead of `Var`s:
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone, Debug)]
//! struct Layer {
//!     w: Matrix<f64, 2, 3>,
//!     b: Vector<f64, 2>,
//! }
//!
//! #[differentiable(wrt(layer))]
//! fn loss(layer: &Layer, x: &Vector<f64, 3>, t: &Vector<f64, 2>) -> f64 {
//!     let y = (layer.w.matmul(x) + layer.b).tanh();
//!     let r = y - t;
//!     r.dot(&r) * 0.5
//! }
//!
//! let layer = Layer { w: Matrix::ones(), b: Vector::zeros() };
//! let (x, t) = (Vector::from_array([0.1, 0.2, 0.3]), Vector::from_array([0.0, 1.0]));
//! let gradient: LayerTangent = loss::grad(&layer, &x, &t);
//! assert_eq!(gradient.b.len(), 2);
//! ```
//!
//! A guard clause returns early; `linearize` gives the linear map of the
//! differentiated parameters' tangents, one argument per parameter:
//!
//! ```
//! use fluxion::autodiff::differentiable;
//!
//! #[differentiable]
//! fn guarded(x: f64, y: f64) -> f64 {
//!     if x < 0.0 {
//!         return y * y;
//!     }
//!     x * y
//! }
//!
//! let (value, (dx, dy)) = guarded::value_and_grad(-1.0, 3.0);
//! assert_eq!((value, dx, dy), (9.0, 0.0, 6.0));
//! let (_, map) = guarded::linearize(2.0, 3.0);
//! assert_eq!(map(&1.0, &0.0), 3.0); // ∂/∂x = y
//! ```
//!
//! For a function generic over its scalar (`fn f<T: RealScalar>(…) -> T`, bounded by
//! `RealScalar` alone, there or in a `where` clause, const sizes allowed beside it, with one differentiated tensor or scalar, whose other
//! parameters that mention `T` are tensors of `T` or `T` itself (a model such as
//! `Sequential<…T…>` leaves out `hvp` and `hessian`), returning the scalar; one
//! returning a vector gets its Jacobians only), `f::hvp(args, &v)`
//! and `f::hessian(args)` come too: forward mode over the static gradient,
//! instantiated at dual numbers (a Hessian of shape `S ++ S`, eight directions per
//! pass; for a scalar argument, its second derivative). For other scalar-generic functions (a derived struct generic over its
//! scalar, say) the same works by hand: seed the struct at `Dual<f64>` and read the
//! tangent of `f::grad`.
//!
//! Such a function's gradient can be differentiated inside another
//! `#[differentiable]` body: `f::grad(args)` there is an operation whose tangent and
//! pullback are the Hessian's product (forward over the static gradient at dual
//! numbers; the Hessian is symmetric, so both are ḡ ↦ H·ḡ). Forces from a potential,
//! Hamilton's equations in an integrator, a loss on a gradient (a gradient penalty,
//! a physics residual) are written as they read, and every companion of the outer
//! function works, its own `hessian` included where it is generic too:
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::prelude::*;
//!
//! #[differentiable]
//! fn energy<T: RealScalar>(q: &Vector<T, 2>, p: &Vector<T, 2>) -> T {
//!     p.dot(p) * T::from_f64(0.5) - (-q.dot(q)).exp()
//! }
//!
//! // Leapfrog steps: q̇ = ∂H/∂p, ṗ = −∂H/∂q.
//! #[differentiable]
//! fn final_distance(q: &Vector<f64, 2>, p: &Vector<f64, 2>, steps: usize) -> f64 {
//!     let (mut q, mut p) = (*q, *p);
//!     for _ in 0..steps {
//!         let (force, _) = energy::grad(&q, &p);
//!         p -= force * 0.05;
//!         let (_, velocity) = energy::grad(&q, &p);
//!         q += velocity * 0.1;
//!         let (force, _) = energy::grad(&q, &p);
//!         p -= force * 0.05;
//!     }
//!     q.dot(&q)
//! }
//!
//! let (q, p) = (Vector::from_array([0.5, 0.0]), Vector::from_array([0.0, 0.8]));
//! let (dq, dp) = final_distance::grad(&q, &p, 20);
//! let (_, along) = final_distance::jvp(&q, &p, 20, &Vector::from_array([1.0, 0.0]), &Vector::zeros());
//! assert!((along - dq[[0]]).abs() < 1e-12);
//! # let _ = dp;
//! ```
//!
//! The cotangents are those of the inner function's differentiated parameters (a
//! differentiated value passed to one it leaves out of `wrt(…)` is an error, as for
//! a call of the function), and the inner function must meet the conditions of
//! `hvp` above except the single differentiated parameter: a function written over
//! `f64` is an error saying so. A method's gradient works the same way
//! (`self.energy_grad(q)` inside another method, `energy` generic over its scalar).
//! The call is recognised by its path ending in `::grad` (a function of one's own
//! named `grad` is called by its name alone); only the gradient is differentiated
//! there (`f::value_and_grad(x)`, `f::vjp(x)`, … are errors: call `f(x)` and
//! `f::grad(x)`). The pullback rests on the symmetry of the Hessian: it holds where
//! `f`'s gradient is exact, and not through a hand-written `vjp` that is a surrogate
//! (straight-through, clipped) somewhere inside `f`, where reverse mode then gives
//! J·ḡ in place of Jᵀ·ḡ (forward mode stays right). No turbofish on a method's
//! `x.m_grad(…)` or an associated function's `Self::g_grad(…)` there (its arguments
//! determine the scalar).
//!
//! ## Methods and associated functions
//!
//! In an `impl`, a method `m(&self, …)` (or `self`) gets methods `m_grad`,
//! `m_vjp`, … beside it, called `spring.energy_grad(&q)`; `self` is differentiated
//! unless `wrt(…)` leaves it out. An associated function `g` without `self` gets
//! associated functions `Type::g_grad`, `Type::g_vjp`, … beside it, the same names
//! and signatures as a free function's `g::grad`, `g::vjp`, …: mark it
//! `#[differentiable(associated)]`. The mark is needed because an attribute sees the
//! function alone, not the `impl` around it: unmarked, it is taken for a free
//! function, whose struct an `impl` cannot hold ("struct is not supported in
//! `trait`s or `impl`s"); marked outside an `impl`, the companions find no `Self`
//! ("cannot find type `Self` in this scope"). Inside another `#[differentiable]`
//! body, `Self::g(x)` and `Type::g(x)` are calls like any other (a path whose
//! next-to-last segment is capitalised is taken for a type's associated function),
//! and `Self::g_grad(x)` is differentiated as `f::grad(x)` is (above). A derivative
//! given by hand names its functions apart from the companions: `vjp =
//! Self::g_pullback, jvp = Self::g_pushforward`, not `Self::g_vjp`, a companion's
//! name.
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::prelude::*;
//!
//! /// A planar arm of two unit links.
//! struct Arm;
//!
//! impl Arm {
//!     /// The tip at joint angles `q`.
//!     #[differentiable(associated)]
//!     fn tip(q: &Vector<f64, 2>) -> Vector<f64, 2> {
//!         let (a, b) = (q[[0]], q[[0]] + q[[1]]);
//!         Vector::from_array([a.cos() + b.cos(), a.sin() + b.sin()])
//!     }
//!
//!     /// Half the squared distance of the tip from `target`.
//!     #[differentiable(associated, wrt(q))]
//!     fn reach(q: &Vector<f64, 2>, target: &Vector<f64, 2>) -> f64 {
//!         let miss = Self::tip(q) - target;
//!         miss.dot(&miss) * 0.5
//!     }
//! }
//!
//! let (q, target) = (Vector::from_array([0.3, 0.9]), Vector::from_array([1.0, 1.0]));
//! let (value, gradient) = Arm::reach_value_and_grad(&q, &target);
//! assert_eq!(value, Arm::reach(&q, &target));
//! // The gradient is Jᵀ·(tip − target), J the tip's Jacobian.
//! let jacobian: Matrix<f64, 2, 2> = Arm::tip_jacfwd(&q);
//! let expected = jacobian.transpose().matmul(&(Arm::tip(&q) - target));
//! assert!((gradient - expected).iter().all(|d| d.abs() < 1e-14));
//! ```
//!
//! ## What works inside
//!
//! - `let` and shadowing, nested expressions, `+ − × ÷` and unary `−` (scalar by
//!   scalar, tensor by scalar either way, tensor ± tensor), compound assignment,
//!   tuple assignment (`(x, v) = (x + dt * v, v - dt * x);` evaluates the right side
//!   first), block expressions (`let a = { let t = x * y; t.sin() };`, their names
//!   kept inside).
//! - Methods, by kind:
//!   - elementwise on scalars and tensors: `exp`, `ln`, `sin`, `cos`, `tanh`,
//!     `sqrt`, `powi(n)`, `powf(p)`; on tensors `sigmoid`, `relu`, `abs` (real or
//!     complex), `scale`, `clone`;
//!   - products and reductions: `matmul`, `matmul_transposed`,
//!     `transposed_matmul`, `hadamard`, `dot`, `outer`, `kron` (its sizes from a
//!     type on the `let` or the result's use), `cross`, `cross_matrix`,
//!     `add_rows`, `mul_rows`,
//!     `add_channels`, `normalize_rows(ε)`, `sum`, `mean`, `norm`, `max()` of a real
//!     tensor, along an axis `sum_axis`, `mean_axis`, `max_axis` (real; at ties the
//!     first largest, as the tape), `logsumexp`, `softmax` and `log_softmax` (a
//!     cross-entropy is `-z.log_softmax(Axis::<0>)[[class]]`);
//!   - linear algebra ([`linalg`](crate::ops::linalg)): `solve` (x = A⁻¹b),
//!     `inverse`, `determinant`, `log_abs_determinant`, `cholesky`,
//!     `solve_lower_triangular`, `solve_upper_triangular`, `symmetric_eigenvalues`
//!     and `symmetric_eigenvectors` (real), `let (values, vectors) =
//!     a.symmetric_eigen();`, `matrix_exp`, `let (q, r) = a.qr();`,
//!     `a.least_squares(&b)`, `singular_values`, `let (u, sigma, v_h) = a.svd();`,
//!     `pseudo_inverse`, `diagonal`, `diagonal_matrix` (real or complex but for
//!     the symmetric ones, whose complex form is `hermitian_eigenvalues` and
//!     `let (values, vectors) = a.hermitian_eigen();`);
//!   - shapes: `transpose`, `conj_transpose`, `permute(Axes::<2, 0, 1>)`, `flatten` and `reshape` (their shapes from a turbofish,
//!     a type on the `let` or the result's use), `narrow::<AXIS, START, LEN>()`,
//!     `narrow_range(Axis::<k>, start..end)` (plain offsets; the axis becomes `Dyn`),
//!     `m.row(i)` and `m.column(j)` (the index a plain value),
//!     `a.concat(Axis::<k>, &b)` (its length from the result's use or a type on its
//!     `let`), `broadcast_axis` (its shape from the result's use or a type on its
//!     `let`);
//!   - on complex scalars and tensors `conj`, `re`, `im`, `norm_sqr`, `norm` (|z|
//!     of a scalar) and `inner`
//!     (the [complex numbers guide](crate::guide::complex_numbers) has an
//!     example);
//!   - on real tensors `softplus`, `silu`, `leaky_relu(a)`, `clamp(low, high)`,
//!     `maximum(&b)` and `minimum(&b)` ([`functions`](crate::ops::functions)),
//!     `map_function(f)` (a library's
//!     [`ScalarFunction`](crate::ops::elementwise::ScalarFunction), GELU's
//!     included), `f.apply([&a, &b, …])` (a library's
//!     [`FusedFunction`](crate::ops::elementwise::FusedFunction) of several
//!     tensors, any of them constant);
//!   - on real scalars and real tensors, elementwise and also in scalar-generic
//!     code: `floor`, `ceil`, `round`, `trunc` (derivative 0) and `fract`
//!     (derivative 1), `erf`, `erfc` (on `f64` write `RealScalar::erf(x)`: std has
//!     an unstable `f64::erf` of the same name, which a method call warns of),
//!     `tan`, `atan`, `asin`, `acos`;
//!   - on real scalars, also in scalar-generic code: `abs`, `a.atan2(b)`,
//!     `a.hypot(b)` (derivative 0 at the origin), `x.clamp(low, high)` (constant
//!     bounds; derivative 1 on the closed interval, as PyTorch's),
//!     `let (s, c) = x.sin_cos();` and the binary `a.max(b)`, `a.min(b)` (the picked operand's
//!     derivative; at a tie, half to each, as PyTorch and JAX, so `x.max(0.0)` has
//!     derivative ½ at 0 where `relu` has 0; a NaN is picked, as `RealScalar::max`
//!     propagates it: in a function on concrete `f64` the plain call is
//!     `f64::max`, which ignores a NaN, so there the plain value and the
//!     companions' can differ);
//!   - on `f32`/`f64` scalars only (not in scalar-generic code): `recip`, `cbrt`,
//!     `sinh`, `cosh`, `asinh`, `acosh`, `atanh`, `ln_1p`, `exp_m1`, `exp2`,
//!     `log2`, `log10`, `to_radians`, `to_degrees`, `a.rem_euclid(b)` (∂/∂b =
//!     −⌊a/b⌋ for b > 0), `a.mul_add(b, c)` (rounded once, as in the plain
//!     function), `a.copysign(b)` (∂/∂b = 0), `signum` (derivative 0, as JAX and
//!     PyTorch);
//!   - `len`, `shape`, `dims`, `is_empty` read plain sizes (`x.len() as f64` is a
//!     plain number).
//!
//!   The associated-function forms `f64::atan2(y, x)`, `f64::sin(x)` and
//!   `T::sqrt(x)` (`T` the function's own type parameter bounded by `RealScalar`;
//!   in a method of a generic `impl`, write `x.sqrt()`) are the method calls. A
//!   method call on a differentiated value is read by its name: a method of your
//!   own type named like one of these operations (`row`, `sum`, `scale`, …) is
//!   called as `Grid::row(&g, i)`, which goes to its own companions.
//! - Values: fields of differentiated structs (`self.w.matmul(&x)`), element
//!   access (`v[[i]]`), arrays and tuples of values, `Vector::from_array([…])` and
//!   `Matrix::from_array([[…], …])` of differentiated scalars, `let (a, b) = …` (of a tuple expression or a differentiated tuple). Struct
//!   literals of derived structs (`State { pos: p, vel }`, `Polar(r, θ)`), so a
//!   function can return a new state: the fields a literal does not name, and
//!   `#[no_derivative]` ones, take plain values
//!   (`State { pos, vel, ..stop_gradient(s.clone()) }` carries the counts of `s`
//!   along; `steps: stop_gradient(s.clone()).steps + 1` updates one: written
//!   `s.steps`, the field of a differentiated `s` is differentiated, and the
//!   tangent has no such field).
//! - Calls of other `#[differentiable]` functions (by path, in other modules and
//!   crates too) and methods; functions with a derivative given by hand (below). A
//!   turbofish on such a call (`f::<T, 3>(x)`) goes to the callee's companions.
//! - Constants and values that do not depend on a differentiated argument: plain
//!   Rust, not differentiated (activity analysis). `stop_gradient(x)` (in the
//!   prelude; the same function cuts a `Var` from the tape) makes a value a
//!   constant, for second derivatives too.
//! - `if`/`else` and `match` on conditions that are not differentiated
//!   (comparisons of differentiated values are fine: a condition is not
//!   differentiated; `!`, `&&`, `||`, `is_nan()`, `is_finite()` and the like work on
//!   them), as expressions: `let y = if c { … } else { … };`, and `if let` with
//!   an `else` (`if let Some(g) = gain { x * g } else { x }`, a `match`). The arm
//!   that ran is differentiated. Arms may update plain variables (counters; an `if`
//!   statement whose arms only do that needs no value), but not give an outer
//!   variable a differentiated value or a differentiated variable a plain one (a
//!   compile error says to give the branch a value instead).
//! - `for` loops over plain iterators (ranges, arrays, `.iter()`, `.rev()`,
//!   `step_by`; constant or run-time trip counts), nested too. Variables the body
//!   assigns are carried from one iteration to the next. Every iteration runs:
//!   `break`, `continue` and `return` inside are compile errors.
//!   A loop whose trip count is spelled with integer literals (`0..6`,
//!   `(1..=16).rev()`, up to 16 iterations) keeps each iteration's values for the
//!   reverse sweep, on the stack (an innermost one is unrolled, each iteration's
//!   values locals of their own); any other loop keeps checkpoints of its state
//!   (the carried values and the plain variables it reads that may change) on the
//!   stack, no heap: up to 16 from the forward sweep, and as the reverse sweep
//!   reaches the stretch between two of them, 16 within it, then 16 within each
//!   part of that (three levels, 48 times the state's size). Each iteration's values
//!   are rerun from the last checkpoint before it: about 4n + n²/8192 iterations run
//!   forward for n (measured: the gradient of a 10⁵-iteration scalar loop costs
//!   about 8 plain runs, of 10⁶ iterations about 270; forward mode runs it once). A
//!   loop carrying a large inline tensor (thousands of elements) wants a larger
//!   stack in debug builds, or a `Heap` tensor. Either way
//!   its iterator must give the same items when cloned, and its body must not have
//!   side effects beyond its variables. A loop inside an `if`/`match` arm may not
//!   iterate over a collection the arm declares (its reverse sweep runs after the
//!   arm): declare it before the `if`.
//!   `.iter()` over plain numbers, or a loop over a slice or a reference to an
//!   array (`for l in lengths`, iterated by reference as Rust does), gives references
//!   (`&f64`), which static mode does not differentiate through: write `*l * x`, or
//!   bind by value (`for &l in lengths`).
//! - `while` loops, their condition reading plain or differentiated values (a
//!   solver run to convergence, an integrator run until a time): the forward sweep
//!   tests the condition before each iteration and counts the iterations, keeping up
//!   to 16 checkpoints (when they fill, every other one goes and the rest are twice
//!   as far apart); the reverse sweep reruns the counted iterations from them,
//!   evaluating the condition again for what it changes (`while advance(&mut i)`)
//!   but not testing it. As with an `if`, the condition is not
//!   differentiated: the derivative is that of the iterations that ran (Newton's
//!   iteration for √a run to convergence gives 1/(2√a)). `while let` is not
//!   supported.
//! - `break` in a `for`, `while` or `loop` body, as a top-level `if condition {
//!   break; }` with only `let`s before it (a tolerance test on a step just computed):
//!   the forward sweep runs the `let`s, tests and leaves there, counting the
//!   iterations that ran to their end; the reverse sweep reruns those, as for a
//!   `while` loop (the test, evaluated again, does not hold in them). Loops inside
//!   the body have their own. A statement that changes the state before the test, or
//!   any other `break` or `continue`, is a compile error at it.
//!
//!   ```
//!   use fluxion::autodiff::differentiable;
//!
//!   /// Newton's iteration for √a, at most 50 steps, until the step is tiny.
//!   #[differentiable]
//!   fn newton_sqrt(a: f64) -> f64 {
//!       let mut x = a;
//!       for _ in 0..50 {
//!           let step = (x * x - a) / (2.0 * x);
//!           if step.abs() < 1e-12 {
//!               break;
//!           }
//!           x -= step;
//!       }
//!       x
//!   }
//!   assert!((newton_sqrt::grad(2.0) - 0.5 / 2f64.sqrt()).abs() < 1e-15);
//!   ```
//!
//!   ```
//!   use fluxion::autodiff::differentiable;
//!
//!   /// Explicit Euler for ẋ = −kx until time 1.
//!   #[differentiable(wrt(k))]
//!   fn decay(k: f64, x0: f64, dt: f64) -> f64 {
//!       let (mut x, mut time) = (x0, 0.0);
//!       while time < 1.0 - 1e-9 {
//!           x = x - dt * k * x;
//!           time += dt;
//!       }
//!       x
//!   }
//!   // x(1) = x0 (1 − k dt)^(1/dt), so dx/dk = −x0 (1 − k dt)^(1/dt − 1).
//!   let expected = -2.0 * (1.0f64 - 0.7 * 0.01).powi(99);
//!   assert!((decay::grad(0.7, 2.0, 0.01) - expected).abs() < 1e-12);
//!   ```
//! - A trailing expression or a final `return`, and early `return`s from `if`/`else`
//!   and `match` arms (a guard clause, `match k { 0 => return a, _ => {} }`): the
//!   statements after them move into the arms that do not return, so each return
//!   becomes the value of its branch (those statements then cannot assign to
//!   variables declared before the `if`, as inside any arm).
//!
//! Not supported (a compile error at the construct, naming it): `while let` over
//! differentiated values, a `loop` or a `break` other than the guarded form above
//! (over plain values they are plain code), `continue`, a `let`
//! without a value, a `return` inside a loop or inside a `let`'s value, or from an
//! arm that binds (with `let`) a name the statements after it read, `if let` chains
//! (`if let Some(g) = gain && g > 0.0`: nest them), `as` casts of differentiated
//! values, `&mut` parameters, assignment into an element or a field, values changed
//! through a shared reference (`Cell`, `RefCell`, atomics: the derivative code reruns
//! parts of the body and would see them changed; the check reads the function's
//! text, so a `Cell` reached through a field, or changed inside methods of your
//! own types, is not caught — keep such state out of differentiated functions), a struct literal's `..base` when
//! it is differentiated, patterns other than names and tuples of names in `let`,
//! methods with no rule (the error lists how to give one), a local closure called on
//! a differentiated value (write it as a `#[differentiable]` function).
//! Cases the macro cannot tell from valid code, so the compiler reports them in
//! its own words: a call of a function or method that is not `#[differentiable]`
//! ("cannot find module or crate `helper`", "no method named `__joint_norm`", or "no
//! function or associated item named `__record_norm`": add the attribute, or give
//! it a rule); a method taking `self` by value of a type that is not
//! `Copy`, called from another `#[differentiable]` function ("cannot move out of a
//! shared reference": take `&self`); and the attribute on a method of a trait impl ("method
//! `__joint_into_energy` is not a member of trait"): the companions are inherent
//! items, so give the type an inherent `#[differentiable]` method and call it from
//! the trait's. On an associated function without `self` the attribute needs
//! `associated` (see [methods and associated
//! functions](#methods-and-associated-functions)). A `#[no_derivative]` field of a differentiated struct can bound a
//! loop (`for _ in 0..c.n`) but not enter arithmetic ("no field `scale` on type
//! `PTangent`"): pass such a constant as a plain parameter.
//!
//! ## How it works
//!
//! The body is lowered to single assignment: each operation on a differentiated
//! value becomes one call of its rule (a [`UnaryRule`] or [`BinaryRule`] in
//! [`autodiff::rules`](crate::autodiff::rules)), spanned at the user's expression so
//! that a type with no rule is reported there. Two functions are generated: a joint
//! reverse-mode function (the forward sweep, then the reverse sweep, each
//! adjoint a local or a field of the caller's gradient, written in place by the
//! rules' `_into` pullbacks) and a tangent function. The pullbacks call the same rule
//! functions as the tape, so both reverse modes agree by construction.
//!
//! A call of another differentiable function at the top level of the body runs the
//! callee's forward sweep once and keeps its reverse sweep as a closure over what
//! that sweep needs (a stack value, no heap); the caller's reverse sweep calls it.
//! The call also tells the callee which of its arguments the caller differentiates,
//! and the callee skips every pullback that leads only to the others: a layer's
//! `apply_batch(&x)` on a batch that is not differentiated never computes the batch's
//! cotangent (a whole matrix product). A call inside a branch or a loop, and any call
//! in forward mode or with several cotangents at once (`jacrev`), runs the callee
//! plainly forward and through its joint function in the reverse sweep
//! (checkpointing: its forward sweep runs twice, and every cotangent is computed).
//!
//! The same holds one level down, for a `#[differentiable]` method whose body calls
//! other differentiable functions (a layer built from layers): when its caller keeps
//! its reverse sweep, it keeps its callees' in turn. Its reverse sweep is a closure
//! that owns its locals, so a callee's cannot borrow one: a call whose borrowed
//! arguments outlive the method (its reference parameters, fields of `self`) keeps the
//! callee's reverse sweep as it is, and a layer called on a value the body made
//! (`self.down.apply_batch(&h)`, or `.forward(&h)` in a [`#[module]`](crate::nn::layer::module)
//! body, as is a `#[module]` block's helper method, `self.feed_forward(&h, 0.5)`, with
//! a clone of each of its reference arguments, unless one is a constant, such as a slice)
//! is given a clone of that value to keep — a copy, where the alternative is
//! running the layer forward again (a layer's output is `Clone`:
//! `StaticModule::Output`). Any other call on values the body made (a method *of* a
//! computed value, `q.attention(&k, &v, …)`; a function of them, whose types need
//! not be `Clone`) runs plainly and recomputes its forward pass in the reverse sweep,
//! and so does a layer called on a layer's own input when the layer is not first in
//! a chain (the chain hands that input over, and its type need not be `Clone`),
//! unless the method's bounds say that input is `Clone` (`where X: Clone`, as
//! `#[module]` writes): then that layer, too, is given a clone to keep. A
//! layer that is a unit value (`Gelu.forward(&h)`, a receiver or argument named like
//! a type: `Gelu`, `Mask::Causal`) is a `'static` constant that a kept reverse sweep
//! may borrow. Other constants the body passes to a call (a local that is not
//! differentiated, other than a literal or a reference parameter), and loops over an
//! iterator other than an integer range, make the method's whole forward pass run
//! again in the reverse sweep. Two gated feed-forward blocks
//! written as a struct's method cost 1.02× the same body written out in the loss
//! (`composite/block_gradient`; 1.32× when every call in the method was rerun), and
//! a `#[module]` decoder block calling `Gelu.forward` 1.02–1.05× the tape
//! (`attention/block_gradient/module_*`; 1.40× when `Gelu` made it rerun).
//! On `Heap` tensors static mode makes each value and each cotangent afresh per
//! gradient, where the tape reuses its nodes' adjoints from one gradient to the next.
//! Freed to the system allocator, such a working set of many megabytes (a
//! transformer's activations) goes back to the system under glibc's `malloc` and
//! comes back one page fault at a time. So a heap buffer of 16 KiB or more is not
//! freed when its last tensor is dropped: its thread keeps it (up to 256 MiB, the
//! least recently used sizes freed first) for its next heap tensor of the same
//! element type and about its size, and the next gradient reuses the previous one's
//! memory. [`Heap::release_spares`](crate::tensor::Heap::release_spares) hands a
//! thread's spares back. A character-level decoder's static gradient went from 1.9×
//! the tape's time to 1.1× with it (`BENCHMARKS.md`).
//!
//! A call of the second kind can be kept by a record written by hand:
//! `#[differentiable(record = path)]` has the function's `__record` companion call
//! `path(arguments…, wanted)` — each differentiated reference argument but `self`
//! given by value, `wanted` saying which arguments the caller differentiates — which
//! returns the value and the reverse sweep, a closure giving one cotangent slot per
//! argument (`NotDifferentiated` for the others); every other companion comes from
//! the body as usual. `MultiHeadAttention` keeps its attention's operands so
//! (`apply_batch`, `forward_padded`, `forward_to`; see `record_attention` in
//! `src/nn/layer/attention.rs`): over padded sequences its static gradient went from
//! 1.39× the tape's time to 1.04× (`attention/block_gradient/padded_layer_*`).
//!
//! ## Rules for new operations
//!
//! A function can bring its own derivative: `#[differentiable(vjp = g_vjp, jvp =
//! g_jvp)]` on `g` (both, so that both modes work) generates the same companions from
//! hand-written code, and callers cannot tell the difference. `g_vjp(args…, ȳ)`
//! returns the differentiated parameters' tangents (one, or a tuple); `g_jvp(args…,
//! &ẋ…)` returns the output's tangent. A new operation on new types implements
//! [`UnaryRule`] or [`BinaryRule`] for an operation type of its own.
//!
//! ```
//! use fluxion::autodiff::differentiable;
//!
//! /// softplus with its derivative σ(x) given by hand.
//! #[differentiable(vjp = softplus_vjp, jvp = softplus_jvp)]
//! fn softplus(x: f64) -> f64 {
//!     x.max(0.0) + (-x.abs()).exp().ln_1p()
//! }
//! fn softplus_vjp(x: f64, y_bar: f64) -> f64 {
//!     y_bar / (1.0 + (-x).exp())
//! }
//! fn softplus_jvp(x: f64, x_dot: &f64) -> f64 {
//!     x_dot / (1.0 + (-x).exp())
//! }
//!
//! #[differentiable]
//! fn uses_it(x: f64) -> f64 {
//!     softplus(2.0 * x) * x
//! }
//! let expected = 2.0 / (1.0 + (-1.0f64).exp()) * 0.5 + softplus(1.0);
//! assert!((uses_it::grad(0.5) - expected).abs() < 1e-15);
//! ```
//!
//! `examples/custom_op.rs` shows a rule for the tape and for static mode side by
//! side. To test a derivative, hand-written or generated,
//! [`check_pullback`](crate::autodiff::check::check_pullback) compares `f::vjp`'s
//! pullback with finite differences of the plain function (the full Jacobian when
//! small, and the adjoint identity on random directions).
//!
//! [`UnaryRule`]: crate::autodiff::rules::UnaryRule
//! [`BinaryRule`]: crate::autodiff::rules::BinaryRule
