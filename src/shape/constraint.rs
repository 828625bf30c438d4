//! Constraint traits for shape relations that type unification cannot express.
//!
//! Equality of dimensions is never a trait: it is written by repeating a type
//! parameter, and rustc reports `expected …, found …`. The traits here cover the rest:
//!
//! | trait | relation |
//! | --- | --- |
//! | [`HasAxis<AXIS>`] | the shape has an axis `AXIS` (0-based) |
//! | [`SameElementCount<Target>`] | Π dims(Self) = Π dims(Target), for reshape and flatten |
//! | [`AddsUpTo<Rhs, Out>`] | `Self + Rhs = Out` along one axis, for concat |
//! | [`FitsSlice<START, LEN>`] | `START + LEN ≤ Self`, for static slicing |
//! | [`Broadcastable<Target>`] | `Target` is `Self` with leading axes prepended |
//! | [`ConvolvesTo<K, P, OUT, S>`] | `OUT = ⌊(Self + 2P − K)/S⌋ + 1`: a convolution's output length (stride S, 1 unless given) |
//! | [`SplitsInto<G>`] | G divides `Self` (channels into groups of equal size), compared when the program is built |
//! | [`SplitsIntoHeads<H>`] | H divides `Self` (a token's values into attention heads of equal size), compared when the program is built |
//! | [`NoFewerRowsThan<N>`] | Self ≥ N: a matrix's rows against its columns, for QR and least squares, compared when the program is built |
//! | [`PadsPoolingWindow<K>`] | 2·Self ≤ K: a pooling's padding is at most half its window, compared when the program is built |
//! | [`PoolsTo<K, OUT, P, S>`] | `OUT = ⌊(Self + 2P − K)/S⌋ + 1` with Self ≥ 1: pooling windows of K with stride S (K unless given) and padding P (0 unless given); `⌊Self / K⌋` by default |
//!
//! Reshape, concat and slice relations hold for static sizes of any magnitude: they
//! are compared in constants evaluated when the program is built (`cargo build`,
//! `cargo test`; `cargo check` stops before that step), and a mismatch stops the
//! build with a message in plain numbers ("cannot reshape 6 elements into 8"). The
//! convolution and pooling relations are trait-level arithmetic (typenum as a
//! calculator behind the scenes, lengths up to 1024), which `cargo check` reports.
//! Wherever a [`Dyn`] takes part, the relation is checked when the operation runs.

use core::ops::{Add, Mul};

use typenum::{
    Const as TConst, IsEqual, IsGreaterOrEqual, IsLess, IsLessOrEqual, Prod, Sum, ToUInt, True, U, U0, U1,
};

use super::{Const, Dim, Dyn, Shape, StaticShape};

/// Names an axis in an operation: `t.sum_axis(Axis::<1>)` sums over axis 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axis<const N: usize>;

/// The shape has an axis `AXIS`; gives the shapes with that axis removed or replaced.
#[diagnostic::on_unimplemented(
    message = "axis {AXIS} is out of range for a tensor of shape `{Self}`",
    label = "this shape has no axis {AXIS} (a rank-r shape has axes 0 to r − 1)"
)]
pub trait HasAxis<const AXIS: usize>: Shape {
    /// The dimension at `AXIS`.
    type Axis: Dim;
    /// The shape without `AXIS`.
    type Removed: Shape;
    /// The shape with `AXIS` replaced by `New`.
    type Replaced<New: Dim>: Shape;

    /// The dimension at `AXIS`.
    fn axis_dim(&self) -> Self::Axis;
    /// The shape without `AXIS`.
    fn removed(&self) -> Self::Removed;
    /// The shape with `AXIS` replaced by `new`.
    fn replaced<New: Dim>(&self, new: New) -> Self::Replaced<New>;
    /// The dimension at `AXIS` of a shape built by [`HasAxis::replaced`].
    fn axis_of_replaced<New: Dim>(replaced: &Self::Replaced<New>) -> New;
}

/// The shape `Self` is `S` with an axis inserted at `AXIS`: what
/// `broadcast_axis(Axis::<AXIS>)` turns a tensor of shape `S` into.
#[diagnostic::on_unimplemented(
    message = "a tensor of shape `{S}` cannot gain an axis {AXIS} to become `{Self}`",
    label = "the target without axis {AXIS} must be the source's shape (inserting axis 1 turns `(A, C)` into `(A, B, C)`)"
)]
pub trait InsertsAxis<const AXIS: usize, S: Shape>: HasAxis<AXIS, Removed = S> {}

#[diagnostic::do_not_recommend]
impl<const AXIS: usize, S: Shape, Target: HasAxis<AXIS, Removed = S>> InsertsAxis<AXIS, S> for Target {}

/// An order of a tensor's axes, for [`permute`](crate::tensor::Tensor::permute):
/// axis k of the result is axis number k of the list, `[A, B, C, D][k]`, of the
/// input (`x.permute(Axes::<2, 0, 1>)` is PyTorch's `x.permute(2, 0, 1)` and NumPy's
/// `x.transpose(2, 0, 1)`). A matrix's order names two axes, a rank-3 tensor's three;
/// the places after them are left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axes<
    const A: usize,
    const B: usize,
    const C: usize = { usize::MAX },
    const D: usize = { usize::MAX },
>;

/// `Self` names each axis of shape `S` once, in a new order; the reordered shape is
/// `Output`. An axis past the rank is a type error; an axis named twice stops the
/// build (`CHECK`).
#[diagnostic::on_unimplemented(
    message = "these axes are not an order of the axes of a tensor of shape `{S}`",
    label = "name each axis from 0 to rank − 1 once: `Axes::<1, 0>` for a matrix, `Axes::<2, 0, 1>` for rank 3"
)]
pub trait PermutesAxes<S: Shape>: Copy + Send + Sync + 'static {
    /// The shape with its axes in this order.
    type Output: Shape;
    /// Axis k of the output is axis `ORDER[k]` of the input.
    const ORDER: &'static [usize];
    /// Evaluated where a permutation is compiled: fails the build when an axis is
    /// named twice (each entry is below the rank, which the `HasAxis` bounds have
    /// checked, so distinct entries are a permutation).
    #[doc(hidden)]
    const CHECK: () = {
        let (order, mut first) = (Self::ORDER, 0);
        while first < order.len() {
            let mut second = first + 1;
            while second < order.len() {
                let message = BuildMessage::new().text("axis ").number(order[first]).text(" is named twice");
                message.text(": an order names each axis once").require(order[first] != order[second]);
                second += 1;
            }
            first += 1;
        }
    };

    /// The shape with its axes in this order.
    fn permuted(shape: &S) -> Self::Output;
}

macro_rules! impl_permutes_axes {
    ($shape:ty; $($dim:ident),+; $($axis:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<$($dim: Dim,)+ $(const $axis: usize,)+> PermutesAxes<$shape> for Axes<$($axis),+>
        where
            $shape: $(HasAxis<$axis> +)+ Shape,
        {
            type Output = ($(<$shape as HasAxis<$axis>>::Axis,)+);
            const ORDER: &'static [usize] = &[$($axis),+];

            #[inline(always)]
            fn permuted(shape: &$shape) -> Self::Output {
                ($(<$shape as HasAxis<$axis>>::axis_dim(shape),)+)
            }
        }
    };
}

impl_permutes_axes!((D0, D1); D0, D1; A, B);
impl_permutes_axes!((D0, D1, D2); D0, D1, D2; A, B, C);
impl_permutes_axes!((D0, D1, D2, D3); D0, D1, D2, D3; A, B, C, D);

macro_rules! impl_has_axis {
    ($axis:literal; $($pre:ident $pi:tt),*; $X:ident $xi:tt; $($post:ident $qi:tt),*) => {
        #[diagnostic::do_not_recommend]
        impl<$($pre: Dim,)* $X: Dim, $($post: Dim),*> HasAxis<$axis> for ($($pre,)* $X, $($post,)*) {
            type Axis = $X;
            type Removed = ($($pre,)* $($post,)*);
            type Replaced<New: Dim> = ($($pre,)* New, $($post,)*);

            #[inline(always)]
            fn axis_dim(&self) -> $X {
                self.$xi
            }
            #[inline(always)]
            #[allow(clippy::unused_unit)]
            fn removed(&self) -> Self::Removed {
                ($(self.$pi,)* $(self.$qi,)*)
            }
            #[inline(always)]
            fn replaced<New: Dim>(&self, new: New) -> Self::Replaced<New> {
                ($(self.$pi,)* new, $(self.$qi,)*)
            }
            #[inline(always)]
            fn axis_of_replaced<New: Dim>(replaced: &Self::Replaced<New>) -> New {
                replaced.$xi
            }
        }
    };
}

// Rank 1 is written for every AXIS (and bounded to 0) so that a wrong axis reaches
// the `HasAxis` message instead of being inferred away as a type mismatch.
#[diagnostic::do_not_recommend]
impl<A: Dim, const AXIS: usize> HasAxis<AXIS> for (A,)
where
    TConst<AXIS>: ToUInt,
    U<AXIS>: IsEqual<U0, Output = True>,
{
    type Axis = A;
    type Removed = ();
    type Replaced<New: Dim> = (New,);

    #[inline(always)]
    fn axis_dim(&self) -> A {
        self.0
    }
    #[inline(always)]
    fn removed(&self) {}
    #[inline(always)]
    fn replaced<New: Dim>(&self, new: New) -> (New,) {
        (new,)
    }
    #[inline(always)]
    fn axis_of_replaced<New: Dim>(replaced: &(New,)) -> New {
        replaced.0
    }
}
impl_has_axis!(0; ; A 0; B 1);
impl_has_axis!(1; A 0; B 1; );
impl_has_axis!(0; ; A 0; B 1, C 2);
impl_has_axis!(1; A 0; B 1; C 2);
impl_has_axis!(2; A 0, B 1; C 2; );
impl_has_axis!(0; ; A 0; B 1, C 2, D 3);
impl_has_axis!(1; A 0; B 1; C 2, D 3);
impl_has_axis!(2; A 0, B 1; C 2; D 3);
impl_has_axis!(3; A 0, B 1, C 2; D 3; );

/// Both static shapes hold the same number of elements, so one can be reshaped into
/// the other. The counts are compared when the program is built (any sizes; `cargo
/// check` does not evaluate the comparison): a mismatch stops the build with "cannot
/// reshape 6 elements into 8".
#[diagnostic::on_unimplemented(
    message = "cannot reshape `{Self}` into `{Target}` with a static reshape",
    label = "both shapes must be static",
    note = "with `Dyn` dimensions, use `try_reshape`, which compares the element counts when it runs"
)]
pub trait SameElementCount<Target>: Shape {
    /// Evaluated where a reshape is compiled: fails the build when the counts differ.
    #[doc(hidden)]
    const CHECK: ();
}

#[diagnostic::do_not_recommend]
impl<Source: StaticShape, Target: StaticShape> SameElementCount<Target> for Source {
    const CHECK: () = {
        let (from, to) = (Source::NUM_ELEMENTS, Target::NUM_ELEMENTS);
        let message =
            BuildMessage::new().text("cannot reshape ").number(from).text(" elements into ").number(to);
        message.text(": the element counts differ").require(from == to);
    };
}

/// Concatenating an axis of length `Self` with one of length `Rhs` gives length `Out`.
#[diagnostic::on_unimplemented(
    message = "cannot concatenate an axis of length `{Self}` with one of length `{Rhs}` into length `{Out}`",
    label = "the output length must be the sum of the input lengths",
    note = "static lengths must add up: `Const<A>` with `Const<B>` gives `Const<A + B>` (compared when the program is built); a `Dyn` on either side gives `Dyn`"
)]
pub trait AddsUpTo<Rhs: Dim, Out: Dim>: Dim {
    /// Evaluated where a concatenation is compiled: fails the build when static
    /// lengths do not add up.
    #[doc(hidden)]
    const CHECK: () = ();

    /// The concatenated dimension.
    fn add_dims(self, rhs: Rhs) -> Out;
}

#[diagnostic::do_not_recommend]
impl<const A: usize, const B: usize, const C: usize> AddsUpTo<Const<B>, Const<C>> for Const<A> {
    const CHECK: () = {
        let message =
            BuildMessage::new().text("cannot concatenate lengths ").number(A).text(" and ").number(B);
        let message = message.text(" into ").number(C);
        message.text(": the lengths must add up").require(A + B == C);
    };

    #[inline(always)]
    fn add_dims(self, _: Const<B>) -> Const<C> {
        Const
    }
}

#[diagnostic::do_not_recommend]
impl<const B: usize> AddsUpTo<Const<B>, Dyn> for Dyn {
    fn add_dims(self, _: Const<B>) -> Dyn {
        Dyn(self.0 + B)
    }
}

#[diagnostic::do_not_recommend]
impl<const A: usize> AddsUpTo<Dyn, Dyn> for Const<A> {
    fn add_dims(self, rhs: Dyn) -> Dyn {
        Dyn(A + rhs.0)
    }
}

#[diagnostic::do_not_recommend]
impl AddsUpTo<Dyn, Dyn> for Dyn {
    fn add_dims(self, rhs: Dyn) -> Dyn {
        Dyn(self.0 + rhs.0)
    }
}

/// An axis of length `Self` times one of length `Rhs` has length `Out` (the axes of
/// a Kronecker product).
#[diagnostic::on_unimplemented(
    message = "an axis of length `{Self}` times one of length `{Rhs}` does not give length `{Out}`",
    label = "the output length must be the product of the input lengths",
    note = "static lengths multiply: `Const<A>` with `Const<B>` gives `Const<A × B>` (compared when the program is built); a `Dyn` on either side gives `Dyn`"
)]
pub trait MultipliesTo<Rhs: Dim, Out: Dim>: Dim {
    /// Evaluated where a Kronecker product is compiled: fails the build when static
    /// lengths do not multiply to the output's.
    #[doc(hidden)]
    const CHECK: () = ();

    /// The product dimension.
    fn multiply_dims(self, rhs: Rhs) -> Out;
}

#[diagnostic::do_not_recommend]
impl<const A: usize, const B: usize, const C: usize> MultipliesTo<Const<B>, Const<C>> for Const<A> {
    const CHECK: () = {
        let message = BuildMessage::new().text("a Kronecker product of lengths ").number(A).text(" and ");
        let message = message.number(B).text(" has length ").number(A * B);
        message.text(", not ").number(C).require(A * B == C);
    };

    #[inline(always)]
    fn multiply_dims(self, _: Const<B>) -> Const<C> {
        Const
    }
}

#[diagnostic::do_not_recommend]
impl<const B: usize> MultipliesTo<Const<B>, Dyn> for Dyn {
    fn multiply_dims(self, _: Const<B>) -> Dyn {
        Dyn(multiplied(self.0, B))
    }
}

#[diagnostic::do_not_recommend]
impl<const A: usize> MultipliesTo<Dyn, Dyn> for Const<A> {
    fn multiply_dims(self, rhs: Dyn) -> Dyn {
        Dyn(multiplied(A, rhs.0))
    }
}

#[diagnostic::do_not_recommend]
impl MultipliesTo<Dyn, Dyn> for Dyn {
    fn multiply_dims(self, rhs: Dyn) -> Dyn {
        Dyn(multiplied(self.0, rhs.0))
    }
}

/// `a·b`, or a panic naming both lengths when it overflows (zero-length axes let two
/// huge lengths meet without any memory behind them).
#[track_caller]
fn multiplied(a: usize, b: usize) -> usize {
    a.checked_mul(b).unwrap_or_else(|| panic!("kron: lengths {a} and {b} multiply past usize::MAX"))
}

/// `LEN` elements starting at index `START` fit inside an axis of length `Self`.
#[diagnostic::on_unimplemented(
    message = "cannot take {LEN} elements starting at index {START} from an axis of length `{Self}`",
    label = "the slice runs past the end of the axis",
    note = "a static slice needs START + LEN ≤ the axis length (compared when the program is built)"
)]
pub trait FitsSlice<const START: usize, const LEN: usize>: Dim {
    /// Evaluated where a slice is compiled: fails the build when it runs past the
    /// end of a static axis.
    #[doc(hidden)]
    const CHECK: () = ();

    /// Whether the slice fits (always `true` for static lengths).
    fn fits(self) -> bool;
}

#[diagnostic::do_not_recommend]
impl<const N: usize, const START: usize, const LEN: usize> FitsSlice<START, LEN> for Const<N> {
    const CHECK: () = {
        let message =
            BuildMessage::new().text("cannot take ").number(LEN).text(" elements from index ").number(START);
        message.text(" of an axis of length ").number(N).require(START + LEN <= N);
    };

    #[inline(always)]
    fn fits(self) -> bool {
        true
    }
}

#[diagnostic::do_not_recommend]
impl<const START: usize, const LEN: usize> FitsSlice<START, LEN> for Dyn {
    fn fits(self) -> bool {
        START + LEN <= self.0
    }
}

/// `Target` is `Self` with one or more leading axes prepended (NumPy's rule for
/// missing axes): every element of `Self` is repeated along the new axes.
#[diagnostic::on_unimplemented(
    message = "cannot broadcast a tensor of shape `{Self}` to shape `{Target}`",
    label = "broadcasting prepends axes (`(N,)` to `(M, N)` or `(B, M, N)`): the target must end with the source's dimensions"
)]
pub trait Broadcastable<Target: Shape>: Shape {}

macro_rules! impl_broadcastable {
    ([$($lead:ident),+] [$($d:ident),*]) => {
        #[diagnostic::do_not_recommend]
        impl<$($lead: Dim,)+ $($d: Dim),*> Broadcastable<($($lead,)+ $($d,)*)> for ($($d,)*) {}
    };
}

impl_broadcastable!([L1] []);
impl_broadcastable!([L1, L2] []);
impl_broadcastable!([L1, L2, L3] []);
impl_broadcastable!([L1, L2, L3, L4] []);
impl_broadcastable!([L1][A]);
impl_broadcastable!([L1, L2][A]);
impl_broadcastable!([L1, L2, L3][A]);
impl_broadcastable!([L1] [A, B]);
impl_broadcastable!([L1, L2] [A, B]);
impl_broadcastable!([L1] [A, B, C]);

/// The shape `Self ++ Rhs` (the axes of `Self`, then those of `Rhs`), of rank at most 4:
/// the shape of a Jacobian ∂out/∂in is `Out ++ In`.
#[diagnostic::on_unimplemented(
    message = "the shapes `{Self}` and `{Rhs}` together have more than 4 axes",
    label = "a Jacobian of this function would exceed rank 4",
    note = "flatten the input or the output first (`.flatten()` / `.try_reshape(…)`)"
)]
pub trait ConcatShapes<Rhs: Shape>: Shape {
    /// `Self ++ Rhs`.
    type Output: Shape;

    /// The joined shape.
    fn concat_shapes(&self, rhs: &Rhs) -> Self::Output;
}

macro_rules! impl_concat_shapes {
    ([$($a:ident $ai:tt),*] [$($b:ident $bi:tt),*]) => {
        #[diagnostic::do_not_recommend]
        impl<$($a: Dim,)* $($b: Dim),*> ConcatShapes<($($b,)*)> for ($($a,)*) {
            type Output = ($($a,)* $($b,)*);

            #[allow(clippy::unused_unit, unused_variables)]
            fn concat_shapes(&self, rhs: &($($b,)*)) -> Self::Output {
                ($(self.$ai,)* $(rhs.$bi,)*)
            }
        }
    };
}

impl_concat_shapes!([] []);
impl_concat_shapes!([] [B0 0]);
impl_concat_shapes!([] [B0 0, B1 1]);
impl_concat_shapes!([] [B0 0, B1 1, B2 2]);
impl_concat_shapes!([] [B0 0, B1 1, B2 2, B3 3]);
impl_concat_shapes!([A0 0] []);
impl_concat_shapes!([A0 0] [B0 0]);
impl_concat_shapes!([A0 0] [B0 0, B1 1]);
impl_concat_shapes!([A0 0] [B0 0, B1 1, B2 2]);
impl_concat_shapes!([A0 0, A1 1] []);
impl_concat_shapes!([A0 0, A1 1] [B0 0]);
impl_concat_shapes!([A0 0, A1 1] [B0 0, B1 1]);
impl_concat_shapes!([A0 0, A1 1, A2 2] []);
impl_concat_shapes!([A0 0, A1 1, A2 2] [B0 0]);
impl_concat_shapes!([A0 0, A1 1, A2 2, A3 3] []);

/// A kernel of length `K` slid with stride `S` (1 unless given) over an axis of
/// length `Self` padded with `P` zeros at both ends fits at `OUT` positions:
/// `OUT = ⌊(Self + 2P − K)/S⌋ + 1`, with 1 ≤ K ≤ Self + 2P and S ≥ 1. Checked as
/// `S·(OUT − 1) + K ≤ Self + 2P < S·OUT + K`, which for S = 1 is
/// `Self + 2P − K + 1 = OUT`.
#[diagnostic::on_unimplemented(
    message = "a kernel of {K} with stride {S} over an axis of length `{Self}` padded by {P} does not give {OUT} outputs",
    label = "a kernel of K over N padded by P with stride S gives ⌊(N + 2P − K)/S⌋ + 1 (static lengths checked up to 1024)"
)]
pub trait ConvolvesTo<const K: usize, const P: usize, const OUT: usize, const S: usize = 1>: Dim {}

#[diagnostic::do_not_recommend]
impl<const N: usize, const K: usize, const P: usize, const OUT: usize, const S: usize>
    ConvolvesTo<K, P, OUT, S> for Const<N>
where
    TConst<N>: ToUInt,
    TConst<K>: ToUInt,
    TConst<P>: ToUInt,
    TConst<OUT>: ToUInt,
    TConst<S>: ToUInt,
    U<K>: IsGreaterOrEqual<U1, Output = True>,
    U<S>: IsGreaterOrEqual<U1, Output = True>,
    U<P>: Add<U<P>>,
    U<N>: Add<Sum<U<P>, U<P>>>,
    // K ≤ N + 2P: the kernel fits at least once.
    U<K>: IsLessOrEqual<Sum<U<N>, Sum<U<P>, U<P>>>, Output = True>,
    U<S>: Mul<U<OUT>>,
    Prod<U<S>, U<OUT>>: Add<U<K>>,
    Sum<U<N>, Sum<U<P>, U<P>>>: Add<U<S>>,
    // S·OUT + K ≤ N + 2P + S: the last output's window ends inside.
    Sum<Prod<U<S>, U<OUT>>, U<K>>: IsLessOrEqual<Sum<Sum<U<N>, Sum<U<P>, U<P>>>, U<S>>, Output = True>,
    // N + 2P < S·OUT + K: one output more would not fit.
    Sum<U<N>, Sum<U<P>, U<P>>>: IsLess<Sum<Prod<U<S>, U<OUT>>, U<K>>, Output = True>,
{
}

/// Pooling windows of `K` moved `S` positions per output (`K` unless given) over an
/// axis of length `Self` ≥ 1 padded by `P` (0 unless given) at both ends fit `OUT`
/// times: `OUT = ⌊(Self + 2P − K)/S⌋ + 1`, which is `⌊Self / K⌋` for the default
/// stride and no padding (the rest is dropped, as PyTorch's pooling does). The
/// padding must be at most half the window, as PyTorch requires, so that every
/// window reads the input: [`PadsPoolingWindow`], compared when the program is built.
#[diagnostic::on_unimplemented(
    message = "pooling windows of {K} with stride {S} and padding {P} over an axis of length `{Self}` do not give {OUT} outputs",
    label = "windows of K with stride S and padding P over N give ⌊(N + 2P − K)/S⌋ + 1 outputs (⌊N / K⌋ with stride K, no padding)",
    note = "static lengths are checked up to 1024"
)]
pub trait PoolsTo<const K: usize, const OUT: usize, const P: usize = 0, const S: usize = K>: Dim {}

#[diagnostic::do_not_recommend]
impl<const N: usize, const K: usize, const OUT: usize, const P: usize, const S: usize> PoolsTo<K, OUT, P, S>
    for Const<N>
where
    Const<N>: ConvolvesTo<K, P, OUT, S>,
    TConst<N>: ToUInt,
    // N ≥ 1: with 2P ≤ K (`PadsPoolingWindow`), every window then reads the input.
    U<N>: IsGreaterOrEqual<U1, Output = True>,
{
}

/// A padding of `Self` fits a pooling window of `K`: 2·Self ≤ K, as PyTorch
/// requires, so that no window reads padding only; compared when the program is
/// built, with the numbers in the message.
pub trait PadsPoolingWindow<const K: usize>: Dim {
    /// Evaluated where a pooling is compiled: fails the build when the padding is
    /// more than half the window.
    #[doc(hidden)]
    const CHECK: ();
}

#[diagnostic::do_not_recommend]
impl<const P: usize, const K: usize> PadsPoolingWindow<K> for Const<P> {
    const CHECK: () = {
        let message = BuildMessage::new()
            .text("a padding of ")
            .number(P)
            .text(" is more than half of a pooling window of ");
        message.number(K).text(": every window must read the image").require(2 * P <= K);
    };
}

/// `Self` channels split into `G` groups of equal size (`G` divides the channel
/// count), for group normalisation; compared when the program is built, with the
/// numbers in the message ("cannot split 6 channels into 4 groups").
pub trait SplitsInto<const G: usize>: Dim {
    /// Evaluated where a group normalisation is compiled: fails the build when the
    /// groups do not divide the channels.
    #[doc(hidden)]
    const CHECK: ();
}

#[diagnostic::do_not_recommend]
impl<const C: usize, const G: usize> SplitsInto<G> for Const<C> {
    const CHECK: () = {
        let message = BuildMessage::new().text("cannot split ").number(C).text(" channels into ").number(G);
        message
            .text(" groups: the group count must divide the channel count")
            .require(G > 0 && C.is_multiple_of(G));
    };
}

/// A token's `Self` values split into `H` attention heads of equal size (`H`
/// divides the width); compared when the program is built, with the numbers in the
/// message ("cannot split 10 values per token into 4 heads").
pub trait SplitsIntoHeads<const H: usize>: Dim {
    /// Evaluated where an attention is compiled: fails the build when the heads do
    /// not divide the width.
    #[doc(hidden)]
    const CHECK: ();
}

#[diagnostic::do_not_recommend]
impl<const D: usize, const H: usize> SplitsIntoHeads<H> for Const<D> {
    const CHECK: () = {
        let message =
            BuildMessage::new().text("cannot split ").number(D).text(" values per token into ").number(H);
        message.text(" heads: the head count must divide the width").require(H > 0 && D.is_multiple_of(H));
    };
}

/// A message with numbers in it, assembled in a constant for a build-time shape
/// check (`panic!` in a constant takes only a ready string).
#[doc(hidden)]
pub struct BuildMessage {
    bytes: [u8; Self::CAPACITY],
    len: usize,
}

impl BuildMessage {
    const CAPACITY: usize = 160;

    const fn new() -> Self {
        Self { bytes: [0; Self::CAPACITY], len: 0 }
    }

    const fn text(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut index = 0;
        while index < text.len() {
            self.bytes[self.len] = text[index];
            self.len += 1;
            index += 1;
        }
        self
    }

    const fn number(mut self, value: usize) -> Self {
        let mut digits = [0u8; 20];
        let (mut count, mut rest) = (0, value);
        loop {
            digits[count] = b'0' + (rest % 10) as u8;
            count += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            self.bytes[self.len] = digits[count];
            self.len += 1;
        }
        self
    }

    /// Stops the build with this message unless `holds`; the error points at the
    /// check that called it rather than into `core`.
    #[track_caller]
    const fn require(self, holds: bool) {
        if !holds {
            panic!("{}", self.as_str())
        }
    }

    const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "a shape check failed",
        }
    }
}

/// A right-hand side of a linear system whose matrix has `N` rows
/// ([`solve`](crate::tensor::Tensor::solve),
/// [`least_squares`](crate::tensor::Tensor::least_squares)): a vector `(N,)`, or a
/// matrix `(N, M)` whose columns are solved together.
#[diagnostic::on_unimplemented(
    message = "a tensor of shape `{Self}` is not a right-hand side for a matrix of `{N}` rows",
    label = "a vector or a matrix with as many rows as the matrix (both `Const<N>`, or both `Dyn`)"
)]
pub trait RightHandSide<N: Dim>: Shape {
    /// This shape with `R` rows instead of `N`: the shape of the solution of a
    /// system whose matrix has `R` columns
    /// ([`least_squares`](crate::tensor::Tensor::least_squares)).
    type WithRows<R: Dim>: RightHandSide<R>;

    /// This shape with `rows` rows.
    fn with_rows<R: Dim>(self, rows: R) -> Self::WithRows<R>;
}

// Left out of an unmet bound's list of candidates: the note says it in words.
#[diagnostic::do_not_recommend]
impl<N: Dim> RightHandSide<N> for (N,) {
    type WithRows<R: Dim> = (R,);

    #[inline(always)]
    fn with_rows<R: Dim>(self, rows: R) -> (R,) {
        (rows,)
    }
}

#[diagnostic::do_not_recommend]
impl<N: Dim, M: Dim> RightHandSide<N> for (N, M) {
    type WithRows<R: Dim> = (R, M);

    #[inline(always)]
    fn with_rows<R: Dim>(self, rows: R) -> (R, M) {
        (rows, self.1)
    }
}

/// A matrix of `Self` rows and `N` columns has at least as many rows as columns,
/// as a QR factorisation, a least-squares problem and the singular value
/// decomposition need ([`qr`](crate::tensor::Tensor::qr),
/// [`least_squares`](crate::tensor::Tensor::least_squares),
/// [`singular_values`](crate::tensor::Tensor::singular_values),
/// [`svd`](crate::tensor::Tensor::svd)); static sizes are
/// compared when the program is built ("a matrix of 2 rows and 3 columns"), a `Dyn`
/// one when the operation runs.
pub trait NoFewerRowsThan<N: Dim>: Dim {
    /// Evaluated where the operation is compiled: fails the build when static rows
    /// are fewer than static columns.
    #[doc(hidden)]
    const CHECK: () = ();
}

#[diagnostic::do_not_recommend]
impl<const M: usize, const N: usize> NoFewerRowsThan<Const<N>> for Const<M> {
    const CHECK: () = {
        let message = BuildMessage::new().text("a matrix of ").number(M).text(" rows and ").number(N);
        let needs = " columns: qr, least_squares, singular_values and svd need at least as many rows";
        message.text(needs).text(" (for fewer: the conjugate transpose, or pseudo_inverse)").require(M >= N);
    };
}

#[diagnostic::do_not_recommend]
impl<const M: usize> NoFewerRowsThan<Dyn> for Const<M> {}

#[diagnostic::do_not_recommend]
impl<const N: usize> NoFewerRowsThan<Const<N>> for Dyn {}

#[diagnostic::do_not_recommend]
impl NoFewerRowsThan<Dyn> for Dyn {}
