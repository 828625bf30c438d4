//! The operators of forward mode and of higher order: [`jvp`], [`linearize`],
//! [`jacfwd`], [`jacrev`], [`hessian`] and [`hvp`].
//!
//! A forward-mode function takes its input *lifted* ([`Lift::Lifted`]): every scalar
//! becomes a [`Dual`] carrying one tangent (`jacfwd`: as many as its closure's duals
//! carry). Write the function over tensors of duals (or generic over the scalar type)
//! and the operators seed and read the tangents.
//!
//! - `jvp(f, x, v)` = (f(x), J(x)·v) in one evaluation.
//! - `jacfwd` builds J column by column, N input coordinates per forward pass for
//!   duals of N tangents; `jacrev` row by row (one reverse pass per output
//!   coordinate); both return a tensor of shape `Out ++ In`, e.g. the m×n matrix
//!   Jᵢⱼ = ∂fᵢ/∂xⱼ for f: Tⁿ → Tᵐ.
//! - `hessian` and `hvp` run reverse mode over duals (forward-over-reverse):
//!   ∇f(x + εv) = ∇f(x) + ε·H·v. `hessian` types the Hessian of a tensor input of
//!   shape `S` as a tensor of shape `S ++ S`; `coordinate_hessian` takes tuples too and
//!   gives a dense matrix over the real coordinates with each leaf's name and range.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::dual::Dual;
#[cfg(feature = "std")]
use super::operators::{Trace, value_and_grad, vjp};
use super::tangent::Differentiable;
#[cfg(feature = "std")]
use super::tangent::RealOutput;
#[cfg(feature = "std")]
use super::tape::Var;
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::shape::constraint::ConcatShapes;
use crate::tensor::{Storage, Tensor};

/// A value that can be lifted to dual numbers carrying one tangent.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not differentiable",
    label = "no tangent space for this type",
    note = "scalars, tensors, arrays, tuples, `Vec`s and `#[derive(Differentiable)]` structs are; mark a constant struct field `#[no_derivative]`"
)]
pub trait Lift: Differentiable {
    /// The same structure with [`Dual`] scalars.
    type Lifted: Unlift<Primal = Self>;

    /// `self + ε·tangent`.
    fn lift(&self, tangent: &Self::Tangent) -> Self::Lifted;
}

/// A value of dual numbers, split back into its value and its tangent.
pub trait Unlift {
    /// The value's type.
    type Primal: Differentiable;

    /// (value, tangent).
    fn unlift(&self) -> (Self::Primal, <Self::Primal as Differentiable>::Tangent);
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> Lift for T {
    type Lifted = Dual<T>;
    fn lift(&self, tangent: &T) -> Dual<T> {
        Dual::new(*self, [*tangent])
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> Unlift for Dual<T> {
    type Primal = T;
    fn unlift(&self) -> (T, T) {
        (self.value(), self.tangent()[0])
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S> + Storage<Dual<T>, S>> Lift for Tensor<T, S, K> {
    type Lifted = Tensor<Dual<T>, S, K>;
    #[track_caller]
    fn lift(&self, tangent: &Self) -> Self::Lifted {
        self.zip_map(tangent, |x, t| Dual::new(x, [t]))
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S> + Storage<Dual<T>, S>> Unlift for Tensor<Dual<T>, S, K> {
    type Primal = Tensor<T, S, K>;
    fn unlift(&self) -> (Tensor<T, S, K>, Tensor<T, S, K>) {
        (self.map(|d| d.value()), self.map(|d| d.tangent()[0]))
    }
}

/// No parameters, no tangent: `()` lifts to itself (a `Linear` layer without a
/// bias has the bias `()`).
impl Lift for () {
    type Lifted = ();
    fn lift(&self, _: &()) {}
}

impl Unlift for () {
    type Primal = ();
    fn unlift(&self) -> ((), ()) {
        ((), ())
    }
}

macro_rules! tuple_lift {
    ($($X:ident $i:tt),+) => {
        impl<$($X: Lift),+> Lift for ($($X,)+) {
            type Lifted = ($($X::Lifted,)+);
            fn lift(&self, tangent: &Self::Tangent) -> Self::Lifted {
                ($(self.$i.lift(&tangent.$i),)+)
            }
        }

        impl<$($X: Unlift),+> Unlift for ($($X,)+) {
            type Primal = ($($X::Primal,)+);
            fn unlift(&self) -> (Self::Primal, <Self::Primal as Differentiable>::Tangent) {
                let parts = ($(self.$i.unlift(),)+);
                (($(parts.$i.0,)+), ($(parts.$i.1,)+))
            }
        }
    };
}

for_each_tuple!(tuple_lift);

impl<X: Lift, const N: usize> Lift for [X; N] {
    type Lifted = [X::Lifted; N];
    fn lift(&self, tangent: &Self::Tangent) -> Self::Lifted {
        core::array::from_fn(|i| self[i].lift(&tangent[i]))
    }
}

impl<L: Unlift, const N: usize> Unlift for [L; N] {
    type Primal = [L::Primal; N];
    fn unlift(&self) -> (Self::Primal, <Self::Primal as Differentiable>::Tangent) {
        let mut tangents: [Option<<L::Primal as Differentiable>::Tangent>; N] =
            core::array::from_fn(|_| None);
        let values = core::array::from_fn(|i| {
            let (value, tangent) = self[i].unlift();
            tangents[i] = Some(tangent);
            value
        });
        (values, tangents.map(|tangent| tangent.expect("every element was unlifted")))
    }
}

#[cfg(feature = "alloc")]
impl<X: Lift> Lift for Vec<X> {
    type Lifted = Vec<X::Lifted>;
    #[track_caller]
    fn lift(&self, tangent: &Self::Tangent) -> Self::Lifted {
        assert_eq!(self.len(), tangent.len(), "lift: the value and its tangent differ in length");
        self.iter().zip(tangent).map(|(x, t)| x.lift(t)).collect()
    }
}

#[cfg(feature = "alloc")]
impl<L: Unlift> Unlift for Vec<L> {
    type Primal = Vec<L::Primal>;
    fn unlift(&self) -> (Self::Primal, <Self::Primal as Differentiable>::Tangent) {
        self.iter().map(Unlift::unlift).unzip()
    }
}

/// (f(x), J(x)·v): the value and the directional derivative along `v`, in one
/// evaluation of `f` on duals.
///
/// ```
/// use fluxion::autodiff::{Dual, jvp};
/// use fluxion::prelude::*;
/// let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
/// let v: Vector<f64, 2> = Vector::from_array([1.0, 0.0]);
/// let (y, dy) = jvp(|x: Vector<Dual<f64>, 2>| x.hadamard(&x).sum(), &x, &v);
/// assert_eq!((y, dy), (5.0, 2.0));
/// ```
#[track_caller]
pub fn jvp<X: Lift, L: Unlift>(
    f: impl FnOnce(X::Lifted) -> L,
    x: &X,
    v: &X::Tangent,
) -> (L::Primal, <L::Primal as Differentiable>::Tangent) {
    f(x.lift(v)).unlift()
}

/// f(x) and the linear map v ↦ J(x)·v. Each call of the map evaluates `f` on duals
/// once more (nothing is stored between calls).
pub fn linearize<X: Lift + Clone, L: Unlift>(
    f: impl Fn(X::Lifted) -> L,
    x: &X,
) -> (L::Primal, impl Fn(&X::Tangent) -> <L::Primal as Differentiable>::Tangent) {
    let value = f(x.lift(&x.zero_tangent())).unlift().0;
    let point = x.clone();
    (value, move |v: &X::Tangent| jvp(&f, &point, v).1)
}

/// The Jacobian ∂f/∂x of a tensor function by forward mode, typed as a tensor of
/// shape `Out ++ In` (for f: Tⁿ → Tᵐ, the m×n matrix Jᵢⱼ = ∂fᵢ/∂xⱼ; for a matrix
/// input and vector output, a rank-3 tensor).
///
/// `f` takes duals carrying `N` tangents, and `N` is the number of input coordinates
/// seeded per pass: with `Dual<T, N>` for N = the input's length, one pass gives the
/// whole Jacobian (as fast as seeding the duals by hand); with `Dual<T>` it takes one
/// pass per coordinate. On inline tensors nothing is allocated, also without `std`;
/// on heap tensors each pass allocates its seeded input (and `f` its results), and
/// the output is allocated once. Name the dual type in the closure (as below): `N`
/// is read from it and cannot be inferred from a scalar-generic body alone.
///
/// ```
/// use fluxion::autodiff::{Dual, jacfwd};
/// use fluxion::prelude::*;
/// let x: Vector<f64, 2> = Vector::from_array([2.0, 3.0]);
/// // Both coordinates in one pass:
/// let j: Matrix<f64, 1, 2> = jacfwd(|x: Vector<Dual<f64, 2>, 2>| Vector::from_array([x[[0]] * x[[1]]]), &x);
/// assert_eq!(j.to_array(), [[3.0, 2.0]]);
/// // One coordinate per pass:
/// let j: Matrix<f64, 1, 2> = jacfwd(|x: Vector<Dual<f64>, 2>| Vector::from_array([x[[0]] * x[[1]]]), &x);
/// assert_eq!(j.to_array(), [[3.0, 2.0]]);
/// ```
pub fn jacfwd<T, const N: usize, In, Out, K>(
    f: impl Fn(Tensor<Dual<T, N>, In, K>) -> Tensor<Dual<T, N>, Out, K>,
    x: &Tensor<T, In, K>,
) -> Tensor<T, Out::Output, K>
where
    T: Scalar,
    In: Shape,
    Out: ConcatShapes<In>,
    K: Storage<T, In> + Storage<Dual<T, N>, In> + Storage<Dual<T, N>, Out> + Storage<T, Out::Output>,
{
    const { assert!(N > 0, "jacfwd needs duals with at least one tangent") };
    let n = x.len();
    let elements = x.as_slice();
    // The input with coordinates first..first + N seeded along their own directions.
    let seeded = |first: usize| {
        Tensor::from_flat_fn(x.shape(), |i| {
            Dual::new(
                elements[i],
                core::array::from_fn(|k| if i == first + k { T::one() } else { T::zero() }),
            )
        })
    };
    let first_pass = f(seeded(0));
    let mut jacobian = Tensor::from_flat_fn(first_pass.shape().concat_shapes(&x.shape()), |_| T::zero());
    let mut write = |pass: &Tensor<Dual<T, N>, Out, K>, first: usize| {
        let columns = N.min(n - first);
        let out = jacobian.as_mut_slice();
        for (i, y) in pass.iter().enumerate() {
            let tangent = y.tangent();
            out[i * n + first..i * n + first + columns].copy_from_slice(&tangent[..columns]);
        }
    };
    if n > 0 {
        write(&first_pass, 0);
    }
    for first in (N..n).step_by(N) {
        write(&f(seeded(first)), first);
    }
    jacobian
}

#[cfg(feature = "std")]
/// The Jacobian ∂f/∂x by reverse mode, one pullback per output coordinate, typed as
/// a tensor of shape `Out ++ In` like [`jacfwd`]. Row i of the pullback is
/// conj(∂fᵢ/∂x) under the complex convention; it is conjugated back, so for a
/// holomorphic f both operators return the complex derivative.
pub fn jacrev<T, In, Out, K>(
    f: impl FnOnce(Var<Tensor<T, In, K>>) -> Var<Tensor<T, Out, K>>,
    x: &Tensor<T, In, K>,
) -> Tensor<T, Out::Output, K>
where
    T: Scalar,
    In: Shape,
    Out: ConcatShapes<In>,
    K: Storage<T, In> + Storage<T, Out> + Storage<T, Out::Output>,
{
    let (y, mut pullback) = vjp(f, x);
    let rows: Vec<Tensor<T, In, K>> = (0..y.len()).map(|i| pullback.call(&basis(&y, i))).collect();
    let n = x.len();
    Tensor::from_flat_fn(y.shape().concat_shapes(&x.shape()), |flat| {
        rows[flat / n].as_slice()[flat % n].conj()
    })
}

#[cfg(feature = "std")]
/// The Hessian ∂²f/∂x∂x of a real scalar function of a tensor of shape `S` (rank 0
/// to 2, since `S ++ S` has at most four axes; flatten a larger input first), by
/// reverse mode over duals (forward-over-reverse), typed as a tensor of shape
/// `S ++ S`: for a vector input the n×n matrix Hᵢⱼ = ∂²f/∂xᵢ∂xⱼ, for a 2×3 matrix
/// input a 2×3×2×3 tensor. Column j (all the trailing axes at coordinate j) is the
/// tangent of ∇f(x + ε·eⱼ).
///
/// `f` is written for `Var`s of dual tensors; code generic over the element type
/// serves both.
///
/// ```
/// use fluxion::prelude::*;
/// // f(W) = Σ Wᵢⱼ²: its Hessian is 2 where both indices name the same coordinate, else 0.
/// let w: Matrix<f64, 2, 3> = Matrix::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
/// let h: Tensor4<f64, 2, 3, 2, 3> = hessian(|w: Var<Matrix<Dual<f64>, 2, 3>>| w.hadamard(&w).sum(), &w);
/// assert_eq!(h[[1, 2, 1, 2]], 2.0);
/// assert_eq!(h[[0, 1, 1, 2]], 0.0);
/// ```
pub fn hessian<T, S, K>(
    f: impl Fn(Var<Tensor<Dual<T>, S, K>>) -> Var<Dual<T>>,
    x: &Tensor<T, S, K>,
) -> Tensor<T, S::Output, K>
where
    T: RealOutput,
    S: ConcatShapes<S>,
    K: Storage<T, S> + Storage<Dual<T>, S> + Storage<T, S::Output>,
{
    let n = x.len();
    let columns: Vec<Tensor<T, S, K>> = (0..n).map(|j| hvp(&f, x, &basis(x, j))).collect();
    Tensor::from_flat_fn(x.shape().concat_shapes(&x.shape()), |flat| columns[flat % n].as_slice()[flat / n])
}

#[cfg(feature = "std")]
/// The Hessian-vector product H(x)·v of a real scalar function, in one reverse pass
/// over duals, typed as the input's tangent (plain data used inside `f` enters as
/// `Var::constant(t.map(Dual::constant))`). The input can be any value whose lifted
/// form is its own tangent: a scalar, a tensor, an array or tuple of them (say a
/// layer's `(w, b)`), or a derived struct of them (lifted, it is `NameLifted`, and
/// `f` takes `NameLiftedTraced`, with the struct's generic arguments if it has any);
/// `f` takes that input traced, as `value_and_grad` would give it.
///
/// ```
/// use fluxion::prelude::*;
/// // f(w, b) = Σ (w·b)² for a 2×2 matrix w and a 2-vector b.
/// let w: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [0.5, -1.0]]);
/// let b: Vector<f64, 2> = Vector::from_array([1.0, 1.0]);
/// let f = |(w, b): (Var<Matrix<Dual<f64>, 2, 2>>, Var<Vector<Dual<f64>, 2>>)| {
///     let y = w.matmul(&b);
///     y.hadamard(&y).sum()
/// };
/// // Along v = (0, e₀): the b part of H·v is 2·wᵀw·e₀; the w part is
/// // 2·(wᵢ₀·bⱼ + yᵢ·δⱼ₀) with y = w·b = (3, −0.5).
/// let (hw, hb) = hvp(f, &(w, b), &(Matrix::zeros(), Vector::from_array([1.0, 0.0])));
/// assert_eq!(hb.to_array(), [2.0 * (1.0 + 0.25), 2.0 * (2.0 - 0.5)]);
/// assert_eq!(hw.to_array(), [[2.0 * (1.0 + 3.0), 2.0 * 1.0], [2.0 * (0.5 - 0.5), 2.0 * 0.5]]);
/// ```
#[track_caller]
pub fn hvp<X, R>(
    f: impl FnOnce(<X::Lifted as Trace>::Traced) -> Var<Dual<R>>,
    x: &X,
    v: &X::Tangent,
) -> X::Tangent
where
    X: Lift,
    X::Lifted: Trace<Tangent: Unlift<Primal: Differentiable<Tangent = X::Tangent>>>,
    R: RealOutput,
{
    let (_, gradient) = value_and_grad(f, &x.lift(v));
    gradient.unlift().1
}

/// The Hessian of a real function of a structured input over its real coordinates,
/// from [`coordinate_hessian`]: `matrix[[i, j]]` = ∂²f/∂xᵢ∂xⱼ, the coordinates
/// numbered leaf after leaf as [`RealLeaves`](super::RealLeaves) walks the input (a
/// complex element as its real then imaginary part), and `leaves` giving each leaf's
/// name (its field path, as [`Parameters`](crate::nn::params::Parameters) names it:
/// `0`, `weight`, `layers.1.bias`), shape and range of coordinates.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinateHessian {
    /// The n×n matrix of second derivatives, symmetric.
    pub matrix: crate::tensor::DMatrix<f64>,
    /// The input's leaves in coordinate order.
    pub leaves: Vec<LeafCoordinates>,
}

/// Where one leaf of the input lies among the coordinates of a [`CoordinateHessian`].
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafCoordinates {
    /// The field path (empty for an input that is one tensor).
    pub name: std::string::String,
    /// The leaf's shape (a complex leaf has a last axis of 2: real, imaginary).
    pub shape: Vec<usize>,
    /// Its coordinates, row-major.
    pub range: core::ops::Range<usize>,
}

#[cfg(feature = "std")]
impl CoordinateHessian {
    /// The leaf named `name`.
    pub fn leaf(&self, name: &str) -> Option<&LeafCoordinates> {
        self.leaves.iter().find(|leaf| leaf.name == name)
    }

    /// The block ∂²f/∂a∂b of leaves `a` (rows) and `b` (columns), each flattened
    /// row-major; `None` when either name is not a leaf.
    pub fn block(&self, a: &str, b: &str) -> Option<crate::tensor::DMatrix<f64>> {
        use crate::shape::Dyn;
        let (rows, columns) = (self.leaf(a)?.range.clone(), self.leaf(b)?.range.clone());
        Some(crate::tensor::DMatrix::from_shape_fn((Dyn(rows.len()), Dyn(columns.len())), |[i, j]| {
            self.matrix[[rows.start + i, columns.start + j]]
        }))
    }

    /// The leaf that coordinate `index` belongs to, and its position inside the
    /// leaf (row-major); `None` past the last coordinate.
    pub fn coordinate(&self, index: usize) -> Option<(&LeafCoordinates, usize)> {
        let leaf = self.leaves.iter().find(|leaf| leaf.range.contains(&index))?;
        Some((leaf, index - leaf.range.start))
    }
}

#[cfg(feature = "std")]
/// The Hessian of a real scalar function of any input that [`hvp`] takes (a scalar,
/// a tensor, an array or a tuple such as a layer's `(w, b)`, nested as deep as
/// needed, or a derived struct of them, whose leaves are named by field), as a
/// [`CoordinateHessian`]:
/// a dense matrix over the input's real coordinates with each leaf's name and range,
/// so that a block per pair of leaves, or the leaf of any row, is one call away. Column
/// k is the Hessian-vector product along the k-th unit coordinate (one reverse pass
/// over duals per coordinate).
///
/// ```
/// use fluxion::autodiff::coordinate_hessian;
/// use fluxion::prelude::*;
///
/// // f(w, b) = Σ (w·b)² for a 2×2 matrix w and a 2-vector b.
/// let w: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [0.5, -1.0]]);
/// let b: Vector<f64, 2> = Vector::from_array([1.0, 1.0]);
/// let h = coordinate_hessian(
///     |(w, b): (Var<Matrix<Dual<f64>, 2, 2>>, Var<Vector<Dual<f64>, 2>>)| {
///         let y = w.matmul(&b);
///         y.hadamard(&y).sum()
///     },
///     &(w, b),
/// );
/// assert_eq!(h.matrix.dims().as_slice(), &[6, 6]);
/// // ∂²f/∂b∂b = 2·wᵀw.
/// let bb = h.block("1", "1").unwrap();
/// assert_eq!(bb.to_vec(), vec![2.0 * 1.25, 2.0 * 1.5, 2.0 * 1.5, 2.0 * 5.0]);
/// // Coordinate 5 is b[1].
/// let (leaf, position) = h.coordinate(5).unwrap();
/// assert_eq!((leaf.name.as_str(), position), ("1", 1));
/// ```
///
/// # Panics
/// When the input's parameter walk and its tangent's coordinate walk disagree on the
/// leaves' sizes or order (a hand-written `Parameters` that skips or reorders a
/// differentiable leaf).
pub fn coordinate_hessian<X, R>(
    f: impl Fn(<X::Lifted as Trace>::Traced) -> Var<Dual<R>>,
    x: &X,
) -> CoordinateHessian
where
    X: Lift + crate::nn::params::Parameters,
    X::Lifted: Trace<Tangent: Unlift<Primal: Differentiable<Tangent = X::Tangent>>>,
    R: RealOutput,
{
    use super::tangent::RealLeaves;
    use crate::nn::params::Elements;
    use crate::shape::Dyn;

    let zero = x.zero_tangent();
    let n = zero.real_len();
    // Column k is the product along the k-th coordinate.
    let mut columns = Vec::with_capacity(n * n);
    for k in 0..n {
        let mut direction = zero.clone();
        let mut index = 0;
        direction.map_reals(&mut |_| {
            index += 1;
            if index - 1 == k { 1.0 } else { 0.0 }
        });
        hvp(&f, x, &direction).for_each_real(&mut |value| columns.push(value));
    }
    let matrix = crate::tensor::DMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| columns[j * n + i]);
    let mut leaves = Vec::new();
    let mut offset = 0;
    x.visit_parameters(&mut std::string::String::new(), &mut |name, leaf| {
        let len = match leaf.elements {
            Elements::F32(elements) => elements.len(),
            Elements::F64(elements) => elements.len(),
        };
        leaves.push(LeafCoordinates {
            name: name.into(),
            shape: leaf.shape.to_vec(),
            range: offset..offset + len,
        });
        offset += len;
    });
    // The names come from the parameter walk, the coordinates from the tangent's
    // walk: they must visit leaves of the same sizes in the same order.
    let mut tangent_leaves = LeafLengths(Vec::new());
    crate::error::or_panic(<X::Tangent as super::tangent::VectorSpace>::zip_leaves(
        [],
        [&zero],
        &mut tangent_leaves,
    ));
    let parameter_leaves: Vec<usize> = leaves.iter().map(|leaf| leaf.range.len()).collect();
    assert_eq!(
        parameter_leaves, tangent_leaves.0,
        "coordinate_hessian: the parameters' leaf sizes differ from the tangent's"
    );
    CoordinateHessian { matrix, leaves }
}

/// The number of real coordinates of each leaf, in walk order.
#[cfg(feature = "std")]
struct LeafLengths(Vec<usize>);

#[cfg(feature = "std")]
impl super::tangent::LeafVisitor<0, 1> for LeafLengths {
    fn visit<L: super::tangent::Leaf>(
        &mut self,
        _: Option<&mut L>,
        _: [&mut L; 0],
        [leaf]: [&L; 1],
    ) -> Result<(), crate::error::ShapeError> {
        let mut count = 0;
        L::zip_reals([], [leaf], |[], [_]| {
            count += 1;
            []
        });
        self.0.push(count);
        Ok(())
    }
}

/// The unit tangent at `x` along coordinate `k`.
#[cfg(feature = "std")]
fn basis<T: Scalar, S: Shape, K: Storage<T, S>>(x: &Tensor<T, S, K>, k: usize) -> Tensor<T, S, K> {
    Tensor::from_flat_fn(x.shape(), |i| if i == k { T::one() } else { T::zero() })
}
