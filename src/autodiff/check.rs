//! The gradient checker: compares a function's reverse-mode derivatives with central
//! finite differences, (f(x + εv) − f(x − εv)) / 2ε, computed in the function's own
//! precision.
//!
//! Coordinates are real: a complex leaf contributes its real and imaginary parts as
//! two coordinates, perturbed separately, so the check covers the complex convention
//! (the cotangent of z = a + ib is ∂L/∂a + i·∂L/∂b).
//!
//! [`check_vjp`] and [`check_grad`] check a function on the tape; [`check_pullback`]
//! checks any pullback against the plain function (static mode's `f::vjp`, a
//! derivative written by hand), and [`check_pushforward`] any forward-mode
//! derivative (`f::linearize`, a custom rule's `jvp`) — JAX's `check_grads` with
//! `modes=["rev"]` and `["fwd"]`.
//!
//! Two checks:
//! - **Full Jacobian** (when inputs × outputs is small): every entry Jⱼₖ from
//!   finite differences against row j of the pullback, vjp(eⱼ)ₖ.
//! - **Adjoint identity** on random directions: ⟨vjp(w), v⟩ = ⟨w, J·v⟩, with J·v
//!   from finite differences and ⟨·,·⟩ the real inner product of coordinates.
//!
//! The function must be the same function at every evaluation: a model in training
//! whose [`Dropout`](crate::nn::layer::Dropout) draws a fresh mask per call fails the
//! check with large differences. Check it inside
//! [`evaluation`](crate::nn::layer::evaluation)`(|| …)`, or with the dropout's mask
//! taken once outside and multiplied in.

use core::fmt;
use std::string::String;
use std::vec::Vec;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::operators::{Trace, evaluate, vjp};
use super::tangent::{Differentiable, Leaf, LeafVisitor, RealLeaves, VectorSpace};
use super::tape::Var;
use crate::error::{ShapeError, or_panic};
use crate::shape::Dims;

/// Step size and tolerances of a check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOptions {
    /// The finite-difference step ε. Rounding in f(x ± εv) limits a difference to
    /// about |f|·10⁻¹⁶/ε in f64: for a function whose value is large (a loss near
    /// 10⁷, say), raise ε or the tolerances with it.
    pub step: f64,
    /// Absolute tolerance. Derivatives much smaller than it are hardly compared: for a
    /// function whose derivatives are small (a loss scaled by 10⁻⁷, say), scale the
    /// function or this tolerance to them.
    pub abs_tol: f64,
    /// Relative tolerance, against the larger magnitude of the two values compared.
    pub rel_tol: f64,
    /// The full Jacobian is checked when inputs × outputs (real coordinates) is at most
    /// this.
    pub max_full_entries: usize,
    /// How many random (v, w) pairs the adjoint identity is checked on.
    pub directions: usize,
    /// Seed of the random directions.
    pub seed: u64,
}

impl CheckOptions {
    /// For functions computed in f64: ε = 1e-6, tolerance 1e-6 (absolute and
    /// relative).
    pub fn f64() -> Self {
        CheckOptions {
            step: 1e-6,
            abs_tol: 1e-6,
            rel_tol: 1e-6,
            max_full_entries: 4096,
            directions: 3,
            seed: 7,
        }
    }

    /// For functions computed in f32: ε = 1e-2, tolerance 1e-2.
    pub fn f32() -> Self {
        CheckOptions { step: 1e-2, abs_tol: 1e-2, rel_tol: 1e-2, ..CheckOptions::f64() }
    }

    fn agree(&self, a: f64, b: f64) -> bool {
        (a - b).abs() <= self.abs_tol + self.rel_tol * a.abs().max(b.abs())
    }
}

/// A derivative that disagrees with finite differences.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientError {
    /// What was compared, e.g. `"Jacobian entry (output [2], input leaf layer.weight
    /// [0, 1])"`: a coordinate is named by its leaf when the value has several (its
    /// path through fields and elements: `blocks.1.weight`, `0` for a tuple's first),
    /// its index in that leaf, and `re` or `im` of a complex element.
    pub what: String,
    /// The value from the derivative checked (its pullback or pushforward).
    pub analytic: f64,
    /// The value from finite differences.
    pub numeric: f64,
}

impl fmt::Display for GradientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the derivative gives {:e}, finite differences {:e} (difference {:e})",
            self.what,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for GradientError {}

/// The layout of a value's real coordinates, in [`RealLeaves`] order, which names a
/// coordinate for messages: the leaf when there are several, by its path through the
/// value's fields and elements (`blocks.1.weight`, `0` for a tuple's first), the
/// element's index in it (`[1, 0]`), and `re` or `im` of a complex element; a lone
/// real scalar is `0`. A leaf of unknown axes (a user's [`Leaf`] that does not give
/// them) names its coordinates by position (`[3]`).
struct CoordinateNames {
    /// Each leaf's path, its axes (when known) and its count of real coordinates.
    leaves: Vec<(String, Option<Dims>, usize)>,
    /// The parts entered on the way to the next leaf.
    path: Vec<String>,
}

impl CoordinateNames {
    fn of<V: VectorSpace>(v: &V) -> Self {
        let mut names = CoordinateNames { leaves: Vec::new(), path: Vec::new() };
        or_panic(V::zip_leaves([], [v], &mut names));
        names
    }

    /// The name of coordinate `k`.
    fn name(&self, mut k: usize) -> String {
        let mut name = Vec::new();
        for (leaf, (path, dims, reals)) in self.leaves.iter().enumerate() {
            if k >= *reals {
                k -= reals;
                continue;
            }
            if self.leaves.len() > 1 {
                name.push(match path.is_empty() {
                    true => std::format!("leaf {leaf}"),
                    false => std::format!("leaf {path}"),
                });
            }
            match dims {
                Some(dims) => {
                    let parts = reals.checked_div(dims.num_elements()).unwrap_or(1);
                    if !dims.as_slice().is_empty() {
                        name.push(std::format!("{:?}", multi_index(dims.as_slice(), k / parts)));
                    }
                    if parts == 2 {
                        name.push(String::from(if k.is_multiple_of(2) { "re" } else { "im" }));
                    }
                }
                None => name.push(std::format!("[{k}]")),
            }
            return if name.is_empty() { String::from("0") } else { name.join(" ") };
        }
        std::format!("{k} (past the last coordinate)")
    }
}

/// Records each leaf's path, axes and count of real coordinates.
impl LeafVisitor<0, 1> for CoordinateNames {
    fn visit<L: Leaf>(&mut self, _: Option<&mut L>, _: [&mut L; 0], [x]: [&L; 1]) -> Result<(), ShapeError> {
        let mut reals = 0;
        L::zip_reals([], [x], |_, _| {
            reals += 1;
            []
        });
        self.leaves.push((self.path.join("."), x.coordinate_dims(), reals));
        Ok(())
    }
    fn enter_part(&mut self, name: &dyn core::fmt::Display) {
        self.path.push(std::format!("{name}"));
    }
    fn leave_part(&mut self) {
        self.path.pop();
    }
}

/// The row-major index of element `flat` of a tensor with axes `dims`.
fn multi_index(dims: &[usize], mut flat: usize) -> Vec<usize> {
    let mut index = std::vec![0; dims.len()];
    for (axis, &len) in dims.iter().enumerate().rev() {
        index[axis] = flat % len;
        flat /= len;
    }
    index
}

/// The real coordinates of `v`, in [`RealLeaves`] order.
pub fn coordinates<V: RealLeaves + ?Sized>(v: &V) -> Vec<f64> {
    let mut out = Vec::new();
    v.for_each_real(&mut |c| out.push(c));
    out
}

/// A tangent like `prototype` whose coordinates are `values`.
fn with_coordinates<V: RealLeaves + Clone>(prototype: &V, values: &[f64]) -> V {
    let mut out = prototype.clone();
    let mut index = 0;
    out.map_reals(&mut |_| {
        index += 1;
        values[index - 1]
    });
    out
}

/// The real coordinates of the value `y` that its tangents move (a field marked
/// `#[no_derivative]` has none), in the order of the tangent's coordinates.
fn value_coordinates<Y: Differentiable + Clone>(y: &Y, tangent_prototype: &Y::Tangent) -> Vec<f64> {
    let mut out = Vec::new();
    y.clone().map_leaves_with(tangent_prototype, &mut |c, _| {
        out.push(c);
        c
    });
    out
}

fn unit(len: usize, k: usize) -> Vec<f64> {
    let mut values = std::vec![0.0; len];
    values[k] = 1.0;
    values
}

fn real_inner(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Checks the pullback of `f` at `x` against finite differences (see the module
/// docs); `Ok` carries the number of comparisons made.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::check::{CheckOptions, check_vjp};
/// let x: Vector<f64, 3> = Vector::from_array([0.3, -1.2, 2.0]);
/// let comparisons = check_vjp(|x: Var<Vector<f64, 3>>| x.tanh().hadamard(&x), &x, CheckOptions::f64()).unwrap();
/// assert!(comparisons >= 9);
/// ```
pub fn check_vjp<X, Y>(
    f: impl Fn(X::Traced) -> Var<Y>,
    x: &X,
    options: CheckOptions,
) -> Result<usize, GradientError>
where
    X: Trace + Clone,
    Y: Differentiable + Clone,
{
    let (_, mut pullback) = vjp(&f, x);
    check_pullback(|x: &X| evaluate(&f, x), |y_bar: &Y::Tangent| pullback.call(y_bar), x, options)
}

/// Checks a derivative given as a pullback ȳ ↦ x̄ at `x` — a static-mode function's
/// (`f::vjp`), one written by hand, or a custom rule's — against finite differences
/// of the plain function `f` (see the module docs); `Ok` carries the number of
/// comparisons made. A function of several arguments is checked as a function of
/// their tuple.
///
/// ```
/// use fluxion::autodiff::check::{CheckOptions, check_pullback};
/// use fluxion::autodiff::differentiable;
/// use fluxion::prelude::*;
///
/// #[differentiable]
/// fn spring(q: &Vector<f64, 2>, k: f64) -> f64 {
///     let stretch = q.dot(q).sqrt() - 1.0;
///     0.5 * k * stretch * stretch
/// }
///
/// let point = (Vector::from_array([0.6, 1.1]), 3.0);
/// let (_, pullback) = spring::vjp(&point.0, point.1);
/// let comparisons = check_pullback(|(q, k): &(Vector<f64, 2>, f64)| spring(q, *k), pullback, &point, CheckOptions::f64())
///     .unwrap();
/// assert!(comparisons >= 3);
/// ```
pub fn check_pullback<X, Y>(
    f: impl Fn(&X) -> Y,
    mut pullback: impl FnMut(&Y::Tangent) -> X::Tangent,
    x: &X,
    options: CheckOptions,
) -> Result<usize, GradientError>
where
    X: Differentiable + Clone,
    Y: Differentiable + Clone,
{
    let mut reference = FiniteDifferences::new(&f, x, options);
    let (n_in, n_out) = (reference.input.real_len(), reference.output.real_len());
    if n_in * n_out <= options.max_full_entries {
        let (inputs, outputs) =
            (CoordinateNames::of(&reference.input), CoordinateNames::of(&reference.output));
        let rows: Vec<Vec<f64>> = (0..n_out)
            .map(|j| coordinates(&pullback(&with_coordinates(&reference.output, &unit(n_out, j)))))
            .collect();
        for k in 0..n_in {
            let column = reference.directional(&unit(n_in, k));
            for (j, (row, &numeric)) in rows.iter().zip(&column).enumerate() {
                reference.compare(
                    &|| std::format!("Jacobian entry (output {}, input {})", outputs.name(j), inputs.name(k)),
                    row[k],
                    numeric,
                )?;
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    for direction in 0..options.directions {
        let v: Vec<f64> = (0..n_in).map(|_| rng.random_range(-1.0..1.0)).collect();
        let w: Vec<f64> = (0..n_out).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lhs = real_inner(&coordinates(&pullback(&with_coordinates(&reference.output, &w))), &v);
        let rhs = real_inner(&w, &reference.directional(&v));
        reference.compare(
            &|| std::format!("adjoint identity ⟨vjp(w), v⟩ = ⟨w, J·v⟩ (direction {direction})"),
            lhs,
            rhs,
        )?;
    }
    Ok(reference.comparisons)
}

/// Checks a derivative given as a pushforward ẋ ↦ ẏ = J·ẋ at `x` — a static-mode
/// function's (`f::linearize`, or `f::jvp` with the arguments fixed), a custom
/// rule's `jvp` — against finite differences of the plain function `f`: every
/// column J·eₖ when the Jacobian is small (see [`CheckOptions::max_full_entries`]),
/// and J·v on random directions, coordinate by coordinate. `Ok` carries the number
/// of comparisons made. A pullback that passes [`check_pullback`] says nothing of a
/// function's forward mode when both are written by hand: check each.
///
/// ```
/// use fluxion::autodiff::check::{CheckOptions, check_pushforward};
/// use fluxion::autodiff::differentiable;
/// use fluxion::prelude::*;
///
/// #[differentiable]
/// fn spring(q: &Vector<f64, 2>, k: f64) -> f64 {
///     let stretch = q.dot(q).sqrt() - 1.0;
///     0.5 * k * stretch * stretch
/// }
///
/// let point = (Vector::from_array([0.6, 1.1]), 3.0);
/// let (_, pushforward) = spring::linearize(&point.0, point.1);
/// let comparisons = check_pushforward(
///     |(q, k): &(Vector<f64, 2>, f64)| spring(q, *k),
///     |(q_dot, k_dot): &(Vector<f64, 2>, f64)| pushforward(q_dot, k_dot),
///     &point,
///     CheckOptions::f64(),
/// )
/// .unwrap();
/// assert!(comparisons >= 3);
/// ```
pub fn check_pushforward<X, Y>(
    f: impl Fn(&X) -> Y,
    mut pushforward: impl FnMut(&X::Tangent) -> Y::Tangent,
    x: &X,
    options: CheckOptions,
) -> Result<usize, GradientError>
where
    X: Differentiable + Clone,
    Y: Differentiable + Clone,
{
    let mut reference = FiniteDifferences::new(&f, x, options);
    let (n_in, n_out) = (reference.input.real_len(), reference.output.real_len());
    let (inputs, outputs) = (CoordinateNames::of(&reference.input), CoordinateNames::of(&reference.output));
    let mut check_column =
        |reference: &mut FiniteDifferences<'_, X, Y, _>, v: &[f64], what: &dyn Fn(usize) -> String| {
            let tangent = coordinates(&pushforward(&with_coordinates(&reference.input, v)));
            let numeric = reference.directional(v);
            if tangent.len() != numeric.len() {
                let what = std::format!(
                    "the pushforward's tangent has {} coordinates, the output {}",
                    tangent.len(),
                    numeric.len()
                );
                return Err(GradientError { what, analytic: f64::NAN, numeric: f64::NAN });
            }
            for (j, (&analytic, &numeric)) in tangent.iter().zip(&numeric).enumerate() {
                reference.compare(&|| what(j), analytic, numeric)?;
            }
            Ok(())
        };
    if n_in * n_out <= options.max_full_entries {
        for k in 0..n_in {
            check_column(&mut reference, &unit(n_in, k), &|j| {
                std::format!(
                    "Jacobian entry (output {}, input {}) by forward mode",
                    outputs.name(j),
                    inputs.name(k)
                )
            })?;
        }
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    for direction in 0..options.directions {
        let v: Vec<f64> = (0..n_in).map(|_| rng.random_range(-1.0..1.0)).collect();
        check_column(&mut reference, &v, &|j| {
            std::format!("J·v, output {}, by forward mode (direction {direction})", outputs.name(j))
        })?;
    }
    Ok(reference.comparisons)
}

/// Central differences of `f` at `x` in the direction of given coordinates, and the
/// count of comparisons made against them.
struct FiniteDifferences<'a, X: Differentiable, Y: Differentiable, F> {
    f: &'a F,
    x: &'a X,
    /// Zero tangents of the input and of `f(x)`: the coordinates' layout.
    input: X::Tangent,
    output: Y::Tangent,
    options: CheckOptions,
    comparisons: usize,
}

impl<'a, X, Y, F> FiniteDifferences<'a, X, Y, F>
where
    X: Differentiable + Clone,
    Y: Differentiable + Clone,
    F: Fn(&X) -> Y,
{
    fn new(f: &'a F, x: &'a X, options: CheckOptions) -> Self {
        let output = f(x).zero_tangent();
        FiniteDifferences { f, x, input: x.zero_tangent(), output, options, comparisons: 0 }
    }

    /// J·v by central differences, as output coordinates.
    fn directional(&self, v: &[f64]) -> Vec<f64> {
        let offset = with_coordinates(&self.input, v).scaled(self.options.step);
        let (mut forward, mut backward) = (self.x.clone(), self.x.clone());
        forward.move_by(&offset);
        backward.move_by(&offset.negated());
        let (ahead, behind) = ((self.f)(&forward), (self.f)(&backward));
        let ahead = value_coordinates(&ahead, &self.output);
        let behind = value_coordinates(&behind, &self.output);
        ahead.iter().zip(&behind).map(|(a, b)| (a - b) / (2.0 * self.options.step)).collect()
    }

    /// One comparison of a derivative with its finite difference.
    fn compare(
        &mut self,
        what: &dyn Fn() -> String,
        analytic: f64,
        numeric: f64,
    ) -> Result<(), GradientError> {
        self.comparisons += 1;
        if self.options.agree(analytic, numeric) {
            Ok(())
        } else {
            Err(GradientError { what: what(), analytic, numeric })
        }
    }
}

/// [`check_vjp`] for a real scalar function: its gradient against finite
/// differences; `Ok` carries the number of comparisons made.
pub fn check_grad<X, R>(
    f: impl Fn(X::Traced) -> Var<R>,
    x: &X,
    options: CheckOptions,
) -> Result<usize, GradientError>
where
    X: Trace + Clone,
    R: super::tangent::RealOutput,
{
    check_vjp(f, x, options)
}
