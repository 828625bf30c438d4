//! Differentiable types and their tangent spaces.
//!
//! A [`Differentiable`] value `x` has a tangent type whose values are directions in
//! which `x` can move (`x.move_by(&v)` is x + v). Tangents form a [`VectorSpace`]
//! over the reals. For complex leaves the tangent is complex and the real inner
//! product of two tangents is ⟨u, v⟩ = Re Σ conj(uᵢ)·vᵢ, summed over all leaves.
//!
//! [`RealLeaves`] walks every real coordinate of a tangent in a fixed order (a
//! complex leaf gives its real part, then its imaginary part): optimisers that need
//! elementwise work and the gradient checker use it; the vector-space operations do
//! not need it.
//!
//! [`VectorSpace::zip_leaves`] and [`Differentiable::zip_leaves_with`] walk several
//! values of the same structure together, one [`Leaf`] (a scalar or a whole tensor) at
//! a time, handing each group of matching leaves to a [`LeafVisitor`]: an optimiser's
//! update is one fused pass over each tensor (parameter, gradient and state side by
//! side), not a callback per coordinate.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::error::{ShapeError, or_panic};
use crate::scalar::{RealScalar, Scalar};
use crate::shape::{Dims, Shape};
use crate::tensor::{Storage, Tensor};

/// Visits or rewrites every real coordinate of a value, in a fixed order.
pub trait RealLeaves {
    /// Calls `f` with each real coordinate.
    fn for_each_real(&self, f: &mut dyn FnMut(f64));

    /// Replaces each real coordinate `c` by `f(c)`.
    fn map_reals(&mut self, f: &mut dyn FnMut(f64) -> f64);

    /// The number of real coordinates.
    fn real_len(&self) -> usize {
        let mut len = 0;
        self.for_each_real(&mut |_| len += 1);
        len
    }
}

/// A real vector space: zero, addition, subtraction, negation and scaling by a real.
///
/// Elementwise multiplication is deliberately absent.
pub trait VectorSpace: Clone + 'static {
    /// The number of fields of a struct or tuple tangent that hold coordinates (0 for
    /// anything else; an empty field, the tangent of a layer without parameters, is
    /// not counted): code that writes a tangent field by field (static mode) knows
    /// from it whether its writes cover the whole value. A hand-written tangent with
    /// fields that keeps the default 0 is zeroed before every such write.
    const FIELDS: usize = 0;

    /// The zero vector of the same (run-time) size as `self`.
    fn zero_like(&self) -> Self;
    /// `self += other`, or an error naming both shapes when a dynamic size differs.
    fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError>;
    /// `self *= factor` in place, for a factor of the model's own real type (`f32` or
    /// `f64`). (Named apart from a tensor's `scale`, which returns a new tensor, so
    /// that `gradient.scale_mut(-rate)` scales every kind of tangent, tensors included.)
    fn scale_mut(&mut self, factor: impl Into<f64>);

    /// Hands each group of matching leaves of `written` and `read` (values of the same
    /// structure) to `visitor`, in a fixed order, with no parameter beside them; stops
    /// at the first error (a `Vec` of another length, or the visitor's own).
    fn zip_leaves<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError>;

    /// `self += other`.
    ///
    /// # Panics
    /// When a dynamic size differs (see [`VectorSpace::try_add_assign`]).
    #[track_caller]
    fn add_assign(&mut self, other: &Self) {
        or_panic(self.try_add_assign(other));
    }

    /// `self -= other`.
    ///
    /// # Panics
    /// When a dynamic size differs.
    #[track_caller]
    fn sub_assign(&mut self, other: &Self) {
        self.add_assign(&other.negated());
    }

    /// −self.
    fn negated(&self) -> Self {
        let mut out = self.clone();
        out.scale_mut(-1.0);
        out
    }

    /// self + other.
    fn added(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.add_assign(other);
        out
    }

    /// self − other.
    fn subtracted(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.sub_assign(other);
        out
    }

    /// factor · self, for a factor of the model's own real type (`f32` or `f64`):
    /// `gradient.scaled(-learning_rate)`.
    fn scaled(&self, factor: impl Into<f64>) -> Self {
        let mut out = self.clone();
        out.scale_mut(factor.into());
        out
    }
}

/// A value that can be differentiated: it has a tangent space and moves along it.
///
/// # Examples
/// ```
/// use fluxion::prelude::*;
/// let mut x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
/// let step: Vector<f64, 2> = Vector::from_array([0.5, -1.0]);
/// x.move_by(&step);
/// assert_eq!(x.to_array(), [1.5, 1.0]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not differentiable",
    label = "no tangent space for this type",
    note = "scalars, tensors, arrays, tuples, `Vec`s and `#[derive(Differentiable)]` structs are (a reference such as `&f64` from `.iter()` is not: dereference it); mark a constant struct field `#[no_derivative]`, leave a constant parameter of a `#[differentiable]` function out of its `wrt(…)`, and pass a `#[module]` helper a constant by value or as a slice (`&[usize]`): its other reference arguments are traced"
)]
pub trait Differentiable {
    /// The type of directions in which a value moves (a tangent's tangent is itself).
    type Tangent: VectorSpace;

    /// Whether the tangent's fields sit at the value's field positions: false for a
    /// derived tuple struct with a `#[no_derivative]` field before a differentiable
    /// one (its tangent keeps only the differentiable fields, renumbered), which
    /// static mode, reading fields by position, refuses.
    #[doc(hidden)]
    const TANGENT_KEEPS_POSITIONS: bool = true;

    /// Whether a value can carry dual tangents (forward mode inside it), which
    /// [`without_tangent`](Self::without_tangent) sets to zero.
    #[doc(hidden)]
    const CARRIES_TANGENT: bool = false;

    /// The value with the dual tangents it carries set to zero: `stop_gradient` in
    /// forward mode (every dual inside a scalar, tensor, tuple, array, `Vec` or derived
    /// struct; a value without duals as it is).
    #[doc(hidden)]
    fn without_tangent(self) -> Self
    where
        Self: Sized,
    {
        self
    }

    /// self ← self + offset, or an error naming both shapes when a dynamic size of
    /// `offset` differs from `self`'s (never a silent broadcast).
    fn try_move_by(&mut self, offset: &Self::Tangent) -> Result<(), ShapeError>;

    /// self ← self + offset.
    ///
    /// # Panics
    /// When a dynamic size of `offset` differs from `self`'s (see
    /// [`Differentiable::try_move_by`]).
    #[track_caller]
    fn move_by(&mut self, offset: &Self::Tangent) {
        or_panic(self.try_move_by(offset));
    }

    /// The zero tangent at `self` (it knows `self`'s dynamic sizes).
    fn zero_tangent(&self) -> Self::Tangent;

    /// An error naming both shapes (and `operation`) when a dynamic size of
    /// `tangent` differs from `self`'s: what a custom rule's cotangent is checked
    /// with. Tensors compare their shapes; structs, tuples, arrays and `Vec`s their
    /// parts; other values compare `tangent` with their zero tangent, leaf by leaf.
    fn check_tangent(&self, tangent: &Self::Tangent, operation: &'static str) -> Result<(), ShapeError> {
        let zero = self.zero_tangent();
        <Self::Tangent as VectorSpace>::zip_leaves([], [&zero, tangent], &mut SameShapes { operation })
    }

    /// Walks every real coordinate of `self` together with the matching coordinate of
    /// `tangent`, replacing the value's coordinate `c` by `f(c, t)`, in f64 (a complex
    /// leaf gives its real part, then its imaginary part). A walk over
    /// [`Differentiable::zip_leaves_with`], which is the faster form for code generic
    /// over the real type (the optimisers use it).
    ///
    /// # Panics
    /// When a dynamic size of `tangent` differs from `self`'s (nothing is changed
    /// before the panic).
    #[track_caller]
    fn map_leaves_with(&mut self, tangent: &Self::Tangent, f: &mut dyn FnMut(f64, f64) -> f64)
    where
        Self: Sized,
    {
        or_panic(self.zip_leaves_with([], [tangent], &mut SameShapes { operation: "map_leaves_with" }));
        or_panic(self.zip_leaves_with([], [tangent], &mut MapReals(f)));
    }

    /// Hands each leaf of `self`, with the matching leaves of the tangents `written`
    /// and `read`, to `visitor` (as its `parameter`), in a fixed order; stops at the
    /// first error. A hand-written `Differentiable` type forwards this to its fields.
    fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut Self::Tangent; W],
        read: [&Self::Tangent; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError>;
}

/// One leaf of a value: a scalar or a tensor (its own tangent), whose real
/// coordinates are updated together with those of matching leaves in one pass.
pub trait Leaf: VectorSpace {
    /// The real type of the coordinates (`f32` or `f64`).
    type Real: RealScalar;

    /// The lengths of the leaf's axes (none for a scalar), by which the checkers name
    /// a coordinate (`[1, 0]`); `None` (the default) names them by position.
    fn coordinate_dims(&self) -> Option<Dims> {
        None
    }

    /// An error naming both shapes when `other`'s shape differs from `self`'s.
    fn check_same_shape_as(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError>;

    /// For every real coordinate i (a complex element gives its real part, then its
    /// imaginary part), sets the written leaves' coordinates to
    /// `f([wᵢ of each written leaf], [rᵢ of each read leaf])`.
    ///
    /// # Panics
    /// When the leaves' shapes differ: check them first with
    /// [`Leaf::check_same_shape_as`].
    fn zip_reals<const W: usize, const R: usize>(
        written: [&mut Self; W],
        read: [&Self; R],
        f: impl FnMut([Self::Real; W], [Self::Real; R]) -> [Self::Real; W],
    );

    /// Applies `update` to every real coordinate of the written and read leaves, as
    /// [`Leaf::zip_reals`] with `update`'s parameters. A host leaf runs it in that one
    /// pass; a GPU leaf records it as one kernel that updates its buffers in place.
    ///
    /// # Panics
    /// When the leaves' shapes differ (check them first), or, on the GPU, when the
    /// device fails.
    #[track_caller]
    fn update<const W: usize, const R: usize, const P: usize, U: CoordinateUpdate<W, R, P>>(
        written: [&mut Self; W],
        read: [&Self; R],
        update: &U,
    ) {
        let parameters = update.parameters().map(Self::Real::from_f64);
        Self::zip_reals(written, read, |w, r| update.apply(w, r, parameters));
    }

    /// Σ of the squares of the real coordinates. A host leaf sums in `f64` (an `f32`
    /// sum of squares overflows from coordinates of about 2⁶⁴ and loses digits on
    /// large tensors); a GPU leaf reduces on the device in its own element type.
    fn squared_norm(&self) -> f64 {
        let mut total = 0.0;
        Self::zip_reals([], [self], |[], [c]| {
            let c = c.to_f64();
            total += c * c;
            []
        });
        total
    }
}

/// An update of `W` coordinates from their old values, `R` read coordinates and `P`
/// parameters that are the same for every coordinate (a learning rate, a decay):
/// written once over any real scalar, so the host runs it on `f32` or `f64` and a GPU
/// leaf evaluates it on a symbolic scalar and runs it as a generated kernel, with the
/// parameters as kernel arguments (one compiled kernel serves every learning rate).
///
/// `apply` may branch on `self` (a setting such as Nesterov momentum gives another
/// kernel) but not on the coordinates: a GPU leaf reports a comparison of them. A
/// value that changes between steps belongs in the parameters: written into `apply`
/// (`X::from_f64(self.rate)`) it becomes a constant of the kernel, compiled anew for
/// every value. `NAME` must be a C identifier.
pub trait CoordinateUpdate<const W: usize, const R: usize, const P: usize> {
    /// The start of the GPU kernel's name.
    const NAME: &'static str;

    /// The parameters p.
    fn parameters(&self) -> [f64; P];

    /// The new written coordinates.
    fn apply<X: RealScalar>(&self, written: [X; W], read: [X; R], parameters: [X; P]) -> [X; W];
}

/// Work done on each group of matching leaves by [`VectorSpace::zip_leaves`] and
/// [`Differentiable::zip_leaves_with`]: `W` tangent leaves written, `R` read, and the
/// parameter leaf itself when the walk is over a differentiable value.
pub trait LeafVisitor<const W: usize, const R: usize> {
    /// Visits one group of matching leaves.
    fn visit<L: Leaf>(
        &mut self,
        parameter: Option<&mut L>,
        written: [&mut L; W],
        read: [&L; R],
    ) -> Result<(), ShapeError>;

    /// Called before the leaves of one part of a compound value (a struct's field, a
    /// tuple's, array's or `Vec`'s element), with its name (`weight`, `0`);
    /// [`LeafVisitor::leave_part`] after them. The checkers name coordinates by these
    /// paths (`blocks.1.weight`); by default nothing happens.
    #[inline(always)]
    fn enter_part(&mut self, name: &dyn core::fmt::Display) {
        let _ = name;
    }

    /// Called after the leaves of the part last entered.
    #[inline(always)]
    fn leave_part(&mut self) {}
}

/// `walk` (the leaves of one part of a compound value, named `name`) between the
/// visitor's [`LeafVisitor::enter_part`] and [`LeafVisitor::leave_part`]: how
/// compound values walk their parts.
#[doc(hidden)]
#[inline(always)]
pub fn visit_part<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
    visitor: &mut Vis,
    name: &dyn core::fmt::Display,
    walk: impl FnOnce(&mut Vis) -> Result<(), ShapeError>,
) -> Result<(), ShapeError> {
    visitor.enter_part(name);
    let walked = walk(visitor);
    visitor.leave_part();
    walked
}

/// Every vector space walks its real coordinates through its leaves.
impl<V: VectorSpace> RealLeaves for V {
    fn for_each_real(&self, f: &mut dyn FnMut(f64)) {
        // A walk over one value cannot fail: no lengths to compare, no check here.
        or_panic(V::zip_leaves([], [self], &mut EachReal(f)));
    }
    fn map_reals(&mut self, f: &mut dyn FnMut(f64) -> f64) {
        or_panic(V::zip_leaves([self], [], &mut MapEachReal(f)));
    }
}

/// Calls f with each real coordinate read.
struct EachReal<'f>(&'f mut dyn FnMut(f64));

impl LeafVisitor<0, 1> for EachReal<'_> {
    fn visit<L: Leaf>(&mut self, _: Option<&mut L>, _: [&mut L; 0], [x]: [&L; 1]) -> Result<(), ShapeError> {
        L::zip_reals([], [x], |[], [c]| {
            (self.0)(c.to_f64());
            []
        });
        Ok(())
    }
}

/// Replaces each real coordinate c written by f(c).
struct MapEachReal<'f>(&'f mut dyn FnMut(f64) -> f64);

impl LeafVisitor<1, 0> for MapEachReal<'_> {
    fn visit<L: Leaf>(&mut self, _: Option<&mut L>, [x]: [&mut L; 1], _: [&L; 0]) -> Result<(), ShapeError> {
        L::zip_reals([x], [], |[c], []| [L::Real::from_f64((self.0)(c.to_f64()))]);
        Ok(())
    }
}

/// Replaces each parameter coordinate c by f(c, t) for the tangent coordinate t, in
/// f64 (`Differentiable::map_leaves_with`).
struct MapReals<'f>(&'f mut dyn FnMut(f64, f64) -> f64);

impl LeafVisitor<0, 1> for MapReals<'_> {
    fn visit<L: Leaf>(
        &mut self,
        parameter: Option<&mut L>,
        _: [&mut L; 0],
        [t]: [&L; 1],
    ) -> Result<(), ShapeError> {
        if let Some(x) = parameter {
            L::zip_reals([x], [t], |[x], [t]| [L::Real::from_f64((self.0)(x.to_f64(), t.to_f64()))]);
        }
        Ok(())
    }
}

/// Checks that every leaf of the values walked has the shape of the first of them
/// (the parameter, else the first written, else the first read): a dry run before an
/// update that must apply to all leaves or to none.
#[derive(Clone, Copy, Debug, Default)]
pub struct SameShapes {
    /// The operation named in the error.
    pub operation: &'static str,
}

impl<const W: usize, const R: usize> LeafVisitor<W, R> for SameShapes {
    fn visit<L: Leaf>(
        &mut self,
        parameter: Option<&mut L>,
        written: [&mut L; W],
        read: [&L; R],
    ) -> Result<(), ShapeError> {
        let written = written.map(|leaf| &*leaf);
        let mut leaves = parameter.map(|leaf| &*leaf).into_iter().chain(written).chain(read);
        match leaves.next() {
            Some(first) => leaves.try_for_each(|leaf| first.check_same_shape_as(leaf, self.operation)),
            None => Ok(()),
        }
    }
}

/// The real scalar types a gradient can be taken of.
#[diagnostic::on_unimplemented(
    message = "`grad` needs a function returning a real scalar, not `{Self}`",
    label = "the output must be `f32` or `f64` (on the tape `Var<f32>` or `Var<f64>`)",
    note = "reduce the output first (`.sum()`, `.dot()`, `.norm_sqr().sum()`), or use `vjp` for vector and complex outputs"
)]
pub trait RealOutput: RealScalar {}

/// Every real scalar: `f32`, `f64`, and their duals (reverse mode over duals,
/// forward-over-reverse, differentiates dual outputs), so a function generic over
/// `T: RealScalar` takes gradients at `T`.
#[diagnostic::do_not_recommend]
impl<T: RealScalar> RealOutput for T {}

/// Converts an `f64` coordinate to the real type of a leaf.
fn real_from_f64<R: RealScalar>(x: f64) -> R {
    R::from_f64(x)
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> VectorSpace for T {
    fn zero_like(&self) -> Self {
        T::zero()
    }
    fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        *self += *other;
        Ok(())
    }
    fn scale_mut(&mut self, factor: impl Into<f64>) {
        let factor: f64 = factor.into();
        *self *= T::from_real(real_from_f64(factor));
    }
    fn zip_leaves<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(None, written, read)
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> Leaf for T {
    type Real = T::Real;
    fn coordinate_dims(&self) -> Option<Dims> {
        Some(Dims::new(&[]))
    }
    fn check_same_shape_as(&self, _: &Self, _: &'static str) -> Result<(), ShapeError> {
        Ok(())
    }
    #[inline]
    fn zip_reals<const W: usize, const R: usize>(
        written: [&mut Self; W],
        read: [&Self; R],
        mut f: impl FnMut([T::Real; W], [T::Real; R]) -> [T::Real; W],
    ) {
        let re = f(written.each_ref().map(|w| w.re()), read.map(|r| r.re()));
        let im = if T::IS_COMPLEX { f(written.each_ref().map(|w| w.im()), read.map(|r| r.im())) } else { re };
        for ((w, re), im) in written.into_iter().zip(re).zip(im) {
            *w = T::from_parts(re, im);
        }
    }
}

/// Every scalar is differentiable and is its own tangent.
#[diagnostic::do_not_recommend]
impl<T: Scalar> Differentiable for T {
    type Tangent = T;
    const CARRIES_TANGENT: bool = T::CARRIES_TANGENT;
    #[inline(always)]
    fn without_tangent(self) -> T {
        Scalar::without_tangent(self)
    }
    fn try_move_by(&mut self, offset: &T) -> Result<(), ShapeError> {
        *self += *offset;
        Ok(())
    }
    fn zero_tangent(&self) -> T {
        T::zero()
    }
    fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut T; W],
        read: [&T; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(Some(self), written, read)
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> VectorSpace for Tensor<T, S, K> {
    #[inline]
    fn zero_like(&self) -> Self {
        Tensor::zeros_shaped(self.shape())
    }
    fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.check_same_shape(other, "add_assign")?;
        self.iter_mut().zip(other.iter()).for_each(|(a, &b)| *a += b);
        Ok(())
    }
    fn scale_mut(&mut self, factor: impl Into<f64>) {
        let factor: f64 = factor.into();
        let factor = T::from_real(real_from_f64(factor));
        self.iter_mut().for_each(|x| *x *= factor);
    }
    fn zip_leaves<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(None, written, read)
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Leaf for Tensor<T, S, K> {
    type Real = T::Real;
    fn coordinate_dims(&self) -> Option<Dims> {
        Some(self.dims())
    }
    fn check_same_shape_as(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(other, operation)
    }
    #[track_caller]
    fn zip_reals<const W: usize, const R: usize>(
        written: [&mut Self; W],
        read: [&Self; R],
        mut f: impl FnMut([T::Real; W], [T::Real; R]) -> [T::Real; W],
    ) {
        let written = written.map(|leaf| leaf.as_mut_slice());
        let read = read.map(|leaf| leaf.as_slice());
        let len = written.first().map(|w| w.len()).or(read.first().map(|r| r.len())).unwrap_or(0);
        let lengths = written.iter().map(|w| w.len()).chain(read.iter().map(|r| r.len()));
        assert!(lengths.into_iter().all(|l| l == len), "zip_reals: the leaves' shapes differ");
        // Every slice cut to `len` in view of the loop: the index checks fold away and
        // the loop vectorises.
        let mut written = written.map(|w| &mut w[..len]);
        let read = read.map(|r| &r[..len]);
        for i in 0..len {
            let mut element = written.each_mut().map(|w| &mut w[i]);
            let elements = read.map(|r| &r[i]);
            T::zip_reals(element.each_mut().map(|w| &mut **w), elements, &mut f);
        }
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> Differentiable for Tensor<T, S, K> {
    type Tangent = Self;
    const CARRIES_TANGENT: bool = T::CARRIES_TANGENT;
    fn without_tangent(self) -> Self {
        if T::CARRIES_TANGENT { self.map(Scalar::without_tangent) } else { self }
    }

    fn try_move_by(&mut self, offset: &Self) -> Result<(), ShapeError> {
        self.check_same_shape(offset, "move_by")?;
        self.try_add_assign(offset)
    }
    #[inline]
    fn zero_tangent(&self) -> Self {
        self.zero_like()
    }
    fn check_tangent(&self, tangent: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(tangent, operation)
    }
    fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(Some(self), written, read)
    }
}

impl VectorSpace for () {
    fn zero_like(&self) {}
    fn try_add_assign(&mut self, _: &()) -> Result<(), ShapeError> {
        Ok(())
    }
    fn scale_mut(&mut self, _: impl Into<f64>) {}
    fn zip_leaves<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        _: [&mut (); W],
        _: [&(); R],
        _: &mut V,
    ) -> Result<(), ShapeError> {
        Ok(())
    }
}

#[diagnostic::do_not_recommend]
impl Differentiable for () {
    type Tangent = ();
    fn try_move_by(&mut self, _: &()) -> Result<(), ShapeError> {
        Ok(())
    }
    fn zero_tangent(&self) {}
    fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        &mut self,
        _: [&mut (); W],
        _: [&(); R],
        _: &mut V,
    ) -> Result<(), ShapeError> {
        Ok(())
    }
}

fn length_mismatch(operation: &'static str, lhs: usize, rhs: usize) -> ShapeError {
    ShapeError::new(operation, Dims::new(&[lhs]), Dims::new(&[rhs]), "the lengths must be equal")
}

/// The common length of the slices, or an error naming the first two that differ.
fn common_length(lengths: impl IntoIterator<Item = usize>) -> Result<usize, ShapeError> {
    let mut lengths = lengths.into_iter();
    let first = lengths.next().unwrap_or(0);
    match lengths.find(|&len| len != first) {
        Some(other) => Err(length_mismatch("zip_leaves", first, other)),
        None => Ok(first),
    }
}

/// [`VectorSpace::zip_leaves`] over matching elements of slices (arrays and `Vec`s).
fn zip_elements<V: VectorSpace, const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
    mut written: [&mut [V]; W],
    read: [&[V]; R],
    visitor: &mut Vis,
) -> Result<(), ShapeError> {
    let len = common_length(written.iter().map(|w| w.len()).chain(read.iter().map(|r| r.len())))?;
    (0..len).try_for_each(|i| {
        visit_part(visitor, &i, |visitor| {
            V::zip_leaves(written.each_mut().map(|w| &mut w[i]), read.map(|r| &r[i]), visitor)
        })
    })
}

/// [`Differentiable::zip_leaves_with`] over matching elements of slices.
fn zip_elements_with<D: Differentiable, const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
    parameters: &mut [D],
    mut written: [&mut [D::Tangent]; W],
    read: [&[D::Tangent]; R],
    visitor: &mut Vis,
) -> Result<(), ShapeError> {
    let lengths = written.iter().map(|w| w.len()).chain(read.iter().map(|r| r.len()));
    let len = common_length(core::iter::once(parameters.len()).chain(lengths))?;
    (0..len).try_for_each(|i| {
        visit_part(visitor, &i, |visitor| {
            parameters[i].zip_leaves_with(written.each_mut().map(|w| &mut w[i]), read.map(|r| &r[i]), visitor)
        })
    })
}

/// Adds each read leaf to its written leaf.
struct AddLeaves;

impl LeafVisitor<1, 1> for AddLeaves {
    fn visit<L: Leaf>(
        &mut self,
        _: Option<&mut L>,
        [sum]: [&mut L; 1],
        [term]: [&L; 1],
    ) -> Result<(), ShapeError> {
        sum.try_add_assign(term)
    }
}

/// Moves each parameter leaf by its tangent leaf.
struct MoveLeaves;

impl LeafVisitor<0, 1> for MoveLeaves {
    fn visit<L: Leaf>(
        &mut self,
        parameter: Option<&mut L>,
        _: [&mut L; 0],
        [offset]: [&L; 1],
    ) -> Result<(), ShapeError> {
        parameter.map_or(Ok(()), |parameter| parameter.try_add_assign(offset))
    }
}

/// `value += other` for a compound value (array, `Vec`, tuple, derived struct): every
/// leaf's shape is checked before any leaf changes, so an error leaves `value` as it
/// was.
#[doc(hidden)]
pub fn try_add_assign_leaves<V: VectorSpace>(value: &mut V, other: &V) -> Result<(), ShapeError> {
    V::zip_leaves([], [&*value, other], &mut SameShapes { operation: "add_assign" })?;
    V::zip_leaves([value], [other], &mut AddLeaves)
}

/// `value.move_by(offset)` for a compound value, checked on every leaf first.
#[doc(hidden)]
pub fn try_move_by_leaves<D: Differentiable>(value: &mut D, offset: &D::Tangent) -> Result<(), ShapeError> {
    value.zip_leaves_with([], [offset], &mut SameShapes { operation: "move_by" })?;
    value.zip_leaves_with([], [offset], &mut MoveLeaves)
}

impl<V: VectorSpace, const N: usize> VectorSpace for [V; N] {
    fn zero_like(&self) -> Self {
        core::array::from_fn(|i| self[i].zero_like())
    }
    fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        try_add_assign_leaves(self, other)
    }
    fn scale_mut(&mut self, factor: impl Into<f64>) {
        let factor: f64 = factor.into();
        self.iter_mut().for_each(|v| v.scale_mut(factor));
    }
    fn zip_leaves<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut Vis,
    ) -> Result<(), ShapeError> {
        zip_elements(written.map(|w| w.as_mut_slice()), read.map(|r| r.as_slice()), visitor)
    }
}

#[diagnostic::do_not_recommend]
impl<D: Differentiable, const N: usize> Differentiable for [D; N] {
    type Tangent = [D::Tangent; N];
    const CARRIES_TANGENT: bool = D::CARRIES_TANGENT;
    fn without_tangent(self) -> Self {
        self.map(D::without_tangent)
    }
    fn try_move_by(&mut self, offset: &Self::Tangent) -> Result<(), ShapeError> {
        try_move_by_leaves(self, offset)
    }
    fn zero_tangent(&self) -> Self::Tangent {
        core::array::from_fn(|i| self[i].zero_tangent())
    }
    fn check_tangent(&self, tangent: &Self::Tangent, operation: &'static str) -> Result<(), ShapeError> {
        self.iter().zip(tangent).try_for_each(|(x, t)| x.check_tangent(t, operation))
    }
    fn zip_leaves_with<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut Self::Tangent; W],
        read: [&Self::Tangent; R],
        visitor: &mut Vis,
    ) -> Result<(), ShapeError> {
        zip_elements_with(self, written.map(|w| w.as_mut_slice()), read.map(|r| r.as_slice()), visitor)
    }
}

#[cfg(feature = "alloc")]
mod vec_impls {
    use super::*;

    impl<V: VectorSpace> VectorSpace for Vec<V> {
        fn zero_like(&self) -> Self {
            self.iter().map(VectorSpace::zero_like).collect()
        }
        fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
            try_add_assign_leaves(self, other)
        }
        fn scale_mut(&mut self, factor: impl Into<f64>) {
            let factor: f64 = factor.into();
            self.iter_mut().for_each(|v| v.scale_mut(factor));
        }
        fn zip_leaves<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
            written: [&mut Self; W],
            read: [&Self; R],
            visitor: &mut Vis,
        ) -> Result<(), ShapeError> {
            zip_elements(written.map(|w| w.as_mut_slice()), read.map(|r| r.as_slice()), visitor)
        }
    }

    #[diagnostic::do_not_recommend]
    impl<D: Differentiable> Differentiable for Vec<D> {
        type Tangent = Vec<D::Tangent>;
        const CARRIES_TANGENT: bool = D::CARRIES_TANGENT;
        fn without_tangent(self) -> Self {
            if D::CARRIES_TANGENT { self.into_iter().map(D::without_tangent).collect() } else { self }
        }
        fn try_move_by(&mut self, offset: &Self::Tangent) -> Result<(), ShapeError> {
            try_move_by_leaves(self, offset)
        }
        fn zero_tangent(&self) -> Self::Tangent {
            self.iter().map(Differentiable::zero_tangent).collect()
        }
        fn check_tangent(&self, tangent: &Self::Tangent, operation: &'static str) -> Result<(), ShapeError> {
            if self.len() != tangent.len() {
                return Err(length_mismatch(operation, self.len(), tangent.len()));
            }
            self.iter().zip(tangent).try_for_each(|(x, t)| x.check_tangent(t, operation))
        }
        fn zip_leaves_with<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
            &mut self,
            written: [&mut Self::Tangent; W],
            read: [&Self::Tangent; R],
            visitor: &mut Vis,
        ) -> Result<(), ShapeError> {
            zip_elements_with(self, written.map(|w| w.as_mut_slice()), read.map(|r| r.as_slice()), visitor)
        }
    }
}

macro_rules! tuple_tangent {
    ($($V:ident $i:tt),+) => {

        impl<$($V: VectorSpace),+> VectorSpace for ($($V,)+) {
            const FIELDS: usize = 0 $(+ (core::mem::size_of::<$V>() != 0) as usize)+;
            fn zero_like(&self) -> Self {
                ($(self.$i.zero_like(),)+)
            }
            fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
                try_add_assign_leaves(self, other)
            }
            fn scale_mut(&mut self, factor: impl Into<f64>) {
                let factor: f64 = factor.into();
                $(self.$i.scale_mut(factor);)+
            }
            fn zip_leaves<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
                mut written: [&mut Self; W],
                read: [&Self; R],
                visitor: &mut Vis,
            ) -> Result<(), ShapeError> {
                $(visit_part(visitor, &$i, |visitor| {
                    $V::zip_leaves(written.each_mut().map(|w| &mut w.$i), read.map(|r| &r.$i), visitor)
                })?;)+
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<$($V: Differentiable),+> Differentiable for ($($V,)+) {
            type Tangent = ($($V::Tangent,)+);
            const CARRIES_TANGENT: bool = false $(|| $V::CARRIES_TANGENT)+;
            fn without_tangent(self) -> Self {
                ($(self.$i.without_tangent(),)+)
            }
            fn try_move_by(&mut self, offset: &Self::Tangent) -> Result<(), ShapeError> {
                try_move_by_leaves(self, offset)
            }
            fn zero_tangent(&self) -> Self::Tangent {
                ($(self.$i.zero_tangent(),)+)
            }
            fn check_tangent(&self, tangent: &Self::Tangent, operation: &'static str) -> Result<(), ShapeError> {
                $(self.$i.check_tangent(&tangent.$i, operation)?;)+
                Ok(())
            }
            fn zip_leaves_with<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
                &mut self,
                mut written: [&mut Self::Tangent; W],
                read: [&Self::Tangent; R],
                visitor: &mut Vis,
            ) -> Result<(), ShapeError> {
                $(visit_part(visitor, &$i, |visitor| {
                    self.$i.zip_leaves_with(written.each_mut().map(|w| &mut w.$i), read.map(|r| &r.$i), visitor)
                })?;)+
                Ok(())
            }
        }
    };
}

for_each_tuple!(tuple_tangent);

/// A value that is its own tangent (a real or complex scalar, a tensor, an array or
/// a tuple of them). A derived struct whose every field is its own tangent converts
/// to and from its tangent struct with `From`/`Into` (`V3` ↔ `V3Tangent`), through
/// this trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not its own tangent",
    label = "a struct converts to its tangent only when every field is its own tangent",
    note = "scalars, tensors, arrays and tuples of them are; a field of dual numbers, of a derived struct or marked `#[no_derivative]` is not: build the tangent field by field (`ATangent {{ inner: a.inner.into(), … }}`)"
)]
pub trait OwnTangent: Differentiable {
    /// The value as a tangent.
    fn into_tangent(self) -> Self::Tangent;
    /// The tangent as a value.
    fn from_tangent(tangent: Self::Tangent) -> Self;
}

#[diagnostic::do_not_recommend]
impl<X: Differentiable<Tangent = X>> OwnTangent for X {
    #[inline(always)]
    fn into_tangent(self) -> X {
        self
    }
    #[inline(always)]
    fn from_tangent(tangent: X) -> X {
        tangent
    }
}

/// `Self`, seen under a lifetime: a bound on `<T as Deferred<'a>>::Itself` for every
/// `'a` is checked where it is used, not where it is written, so a derived impl can
/// name a bound that holds for some structs and not others.
#[doc(hidden)]
pub trait Deferred<'a> {
    type Itself: ?Sized;
}

impl<T: ?Sized> Deferred<'_> for T {
    type Itself = T;
}
