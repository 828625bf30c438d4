//! Layout changes: transpose, reshape, flatten, broadcast, concatenation and static
//! slicing. None of them changes an element's value; each only moves it.
//!
//! - `transpose`: yᵢⱼ = xⱼᵢ for a matrix.
//! - `reshape`: the same row-major sequence of elements under another shape of equal
//!   element count (checked by `cargo check` for static shapes).
//! - `broadcast`: prepends axes, repeating the whole tensor along them.
//! - `broadcast_axis` at k: inserts axis k, repeating each line along it,
//!   y[o, j, i] = x[o, i] (the shape `sum_axis` would reduce back: NumPy's and
//!   PyTorch's `keepdim`/`unsqueeze(k).expand(…)`).
//! - `concat` along axis k: the other axes must agree; the lengths along k add up.
//! - `narrow::<AXIS, START, LEN>`: the `LEN` entries from `START` along `AXIS`.
//! - `permute(Axes::<…>)`: the axes in a new order, y\[i₀, …, i_{r−1}\] = x\[j\] with
//!   j_{order\[k\]} = i_k (the matrix transpose is `Axes::<1, 0>`); its cotangent is ȳ
//!   permuted back by the inverse order.

use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::constraint::{
    AddsUpTo, Axis, Broadcastable, FitsSlice, HasAxis, InsertsAxis, PermutesAxes, SameElementCount,
};
use crate::shape::{Const, Dim, Dims, Dyn, MAX_RANK, Shape, StaticShape};
use crate::tensor::{Storage, Tensor};

impl<T: Copy, R: Dim, C: Dim, K> Tensor<T, (R, C), K>
where
    K: Storage<T, (R, C)> + Storage<T, (C, R)>,
{
    /// The transposed matrix, yᵢⱼ = xⱼᵢ (no conjugation), copied tile by tile.
    #[inline(always)]
    pub fn transpose(&self) -> Tensor<T, (C, R), K> {
        let (rows, cols) = (self.shape().0.size(), self.shape().1.size());
        let data = self.as_slice();
        let shape = (self.shape().1, self.shape().0);
        let Some(&first) = data.first() else {
            return Tensor::from_buffer(shape, K::from_elements(&shape, core::iter::empty()));
        };
        let mut out = Tensor::full_shaped(shape, first);
        let source = Block { start: 0, row_stride: cols, rows, columns: cols };
        transpose_block(data, source, first, out.as_mut_slice(), (0, rows));
        out
    }
}

/// A tensor of `shape` holding `data` (row-major, `dims`) with its axes in `order`
/// (output axis k is input axis `order[k]`). When the last axis stays last, each
/// output line is a run of the input, copied once. Otherwise the two axes that meet
/// the last places (the input's last, and the one that becomes the output's last) are
/// transposed tile by tile, for every index of the other axes: reads and writes both
/// stay contiguous (a batch of matrix transposes when the last two axes swap).
fn reordered<T: Copy, Out: Shape, K: Storage<T, Out>>(
    data: &[T],
    dims: Dims,
    order: &[usize],
    shape: Out,
) -> Tensor<T, Out, K> {
    let Some(&first) = data.first() else {
        return Tensor::from_buffer(shape, K::from_elements(&shape, core::iter::empty()));
    };
    let (dims, last) = (dims.as_slice(), order.len() - 1);
    let input_strides = row_major_strides(dims);
    let output_strides = row_major_strides(shape.dims().as_slice());
    // Each output axis's size, its stride through the input and its own stride.
    let mut sizes = [0; MAX_RANK];
    let mut strides = [[0; MAX_RANK]; 2];
    for (k, &axis) in order.iter().enumerate() {
        (sizes[k], strides[0][k], strides[1][k]) = (dims[axis], input_strides[axis], output_strides[k]);
    }
    if order[last] == last {
        let lines = Odometer::new(&sizes[..last], strides);
        return Tensor::from_runs(shape, lines.map(|[start, _]| &data[start..][..dims[last]]));
    }
    // Output axis `q` runs along the input's last axis, and the output's last axis
    // along input axis `order[last]`; the other axes are visited one index at a time.
    let q = order.iter().position(|&axis| axis == last).expect("an order names every axis");
    let (row_stride, rows, columns) = (input_strides[order[last]], sizes[last], dims[last]);
    let source = |start| Block { start, row_stride, rows, columns };
    for k in [last, q] {
        sizes[k] = 1;
    }
    let mut out = Tensor::full_shaped(shape, first);
    for [input, output] in Odometer::new(&sizes[..=last], strides) {
        transpose_block(data, source(input), first, out.as_mut_slice(), (output, output_strides[q]));
    }
    out
}

/// The strides of a row-major array of sizes `dims`.
fn row_major_strides(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut strides = [0; MAX_RANK];
    let mut stride = 1;
    for (axis, &size) in dims.iter().enumerate().rev() {
        strides[axis] = stride;
        stride *= size;
    }
    strides
}

/// Every index of `sizes` in row-major order, as its offsets under two sets of
/// strides (one index, at offsets [0, 0], when there are no sizes).
struct Odometer {
    sizes: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; 2],
    rank: usize,
    index: [usize; MAX_RANK],
    offsets: [usize; 2],
    remaining: usize,
}

impl Odometer {
    fn new(sizes: &[usize], strides: [[usize; MAX_RANK]; 2]) -> Self {
        let mut all = [0; MAX_RANK];
        all[..sizes.len()].copy_from_slice(sizes);
        let remaining = sizes.iter().product();
        Odometer { sizes: all, strides, rank: sizes.len(), index: [0; MAX_RANK], offsets: [0; 2], remaining }
    }
}

impl Iterator for Odometer {
    type Item = [usize; 2];

    #[inline]
    fn next(&mut self) -> Option<[usize; 2]> {
        self.remaining = self.remaining.checked_sub(1)?;
        let current = self.offsets;
        for k in (0..self.rank).rev() {
            self.index[k] += 1;
            for (offset, strides) in self.offsets.iter_mut().zip(&self.strides) {
                *offset += strides[k];
            }
            if self.index[k] < self.sizes[k] {
                break;
            }
            for (offset, strides) in self.offsets.iter_mut().zip(&self.strides) {
                *offset -= self.index[k] * strides[k];
            }
            self.index[k] = 0;
        }
        Some(current)
    }
}

/// A `rows` × `columns` matrix inside a flat array: entry (i, j) at
/// `start + i·row_stride + j`.
#[derive(Clone, Copy)]
struct Block {
    start: usize,
    row_stride: usize,
    rows: usize,
    columns: usize,
}

/// The side of the square tiles a transpose copies through: a tile's rows are read
/// and its columns written while both stay in cache (measured: a 256×784 `f32` matrix
/// in 67 µs, against 297 µs element by element in the order of the output).
const TRANSPOSE_TILE: usize = 16;

/// Writes the transpose of the `source` block of `data` into `out`, entry (j, i) at
/// `start + j·stride + i` for `(start, stride)` = `destination`: whole tiles through
/// a fixed-size array (first filled with `fill`), then the partial tiles at the right
/// and bottom edges element by element. (Filling the array only when a whole tile
/// exists, or lending one array to every block, measured 4–6 % slower on the matrix
/// transpose; many blocks smaller than a tile each pay for the fill.)
#[inline]
fn transpose_block<T: Copy>(data: &[T], source: Block, fill: T, out: &mut [T], destination: (usize, usize)) {
    const B: usize = TRANSPOSE_TILE;
    let Block { start, row_stride, rows, columns } = source;
    let (out_start, out_stride) = destination;
    let (full_rows, full_columns) = (rows / B * B, columns / B * B);
    let mut tile = [[fill; B]; B];
    for i0 in (0..full_rows).step_by(B) {
        for j0 in (0..full_columns).step_by(B) {
            for (k, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&data[start + (i0 + k) * row_stride + j0..][..B]);
            }
            for k in 0..B {
                let column = &mut out[out_start + (j0 + k) * out_stride + i0..][..B];
                for (l, element) in column.iter_mut().enumerate() {
                    *element = tile[l][k];
                }
            }
        }
    }
    for i in 0..rows {
        for j in full_columns..columns {
            out[out_start + j * out_stride + i] = data[start + i * row_stride + j];
        }
    }
    for i in full_rows..rows {
        for j in 0..full_columns {
            out[out_start + j * out_stride + i] = data[start + i * row_stride + j];
        }
    }
}

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// The axes in the order `axes` names: axis k of the result is axis `axes[k]` of
    /// `self` (PyTorch's `x.permute(2, 0, 1)`, NumPy's `x.transpose(2, 0, 1)`); for a
    /// matrix, `Axes::<1, 0>` is the [transpose](Self::transpose). Static and dynamic
    /// axes move with their types. An axis past the rank does not compile, and one
    /// named twice stops the build (`cargo build`: `cargo check` stops before
    /// evaluating that check).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // A batch of 2 sequences of 3 tokens with 4 features each, as (token, batch, feature).
    /// let x = Tensor::<f32, (Const<2>, Const<3>, Const<4>), Inline>::from_fn(|[b, t, f]| (100 * b + 10 * t + f) as f32);
    /// let y: Tensor<f32, (Const<3>, Const<2>, Const<4>), Inline> = x.permute(Axes::<1, 0, 2>);
    /// assert_eq!(y[[2, 1, 3]], 123.0);
    /// ```
    #[inline]
    pub fn permute<P: PermutesAxes<S>>(&self, _: P) -> Tensor<T, P::Output, K>
    where
        K: Storage<T, P::Output>,
    {
        let () = P::CHECK;
        self.reorder_axes::<P>()
    }

    /// [`Self::permute`] once the order is known to name each axis once (its callers
    /// check it, so that a mistake points at their caller).
    pub(crate) fn reorder_axes<P: PermutesAxes<S>>(&self) -> Tensor<T, P::Output, K>
    where
        K: Storage<T, P::Output>,
    {
        reordered(self.as_slice(), self.dims(), P::ORDER, P::permuted(&self.shape()))
    }

    /// The same elements under the static shape `Target`, of any size; the element
    /// counts are compared by the compiler when it builds the program.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let r: Matrix<f64, 3, 2> = a.reshape();
    /// assert_eq!(r.to_array(), [[1., 2.], [3., 4.], [5., 6.]]);
    /// ```
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::zeros();
    /// let r: Matrix<f64, 4, 2> = a.reshape();
    /// ```
    pub fn reshape<Target>(&self) -> Tensor<T, Target, K>
    where
        Target: StaticShape,
        S: SameElementCount<Target>,
        K: Storage<T, Target>,
    {
        let () = <S as SameElementCount<Target>>::CHECK;
        self.relabelled()
    }

    /// The same elements under `Target`, whose element count its callers have checked.
    pub(crate) fn relabelled<Target>(&self) -> Tensor<T, Target, K>
    where
        Target: StaticShape,
        K: Storage<T, Target>,
    {
        Tensor::from_runs(Target::default(), core::iter::once(self.as_slice()))
    }

    /// The same elements under `shape`; an error names both shapes when the element
    /// counts differ.
    pub fn try_reshape<Target: Shape>(&self, shape: Target) -> Result<Tensor<T, Target, K>, ShapeError>
    where
        K: Storage<T, Target>,
    {
        check_element_count(self.dims(), shape.dims())?;
        Ok(Tensor::from_runs(shape, core::iter::once(self.as_slice())))
    }

    /// The elements as a vector of static length `N` (row-major order).
    pub fn flatten<const N: usize>(&self) -> Tensor<T, (Const<N>,), K>
    where
        S: SameElementCount<(Const<N>,)>,
        K: Storage<T, (Const<N>,)>,
    {
        let () = <S as SameElementCount<(Const<N>,)>>::CHECK;
        self.relabelled()
    }

    /// The tensor repeated along new leading axes to the static shape `Target`.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let bias: Vector<f64, 2> = Vector::from_array([1., 2.]);
    /// let rows: Matrix<f64, 3, 2> = bias.broadcast();
    /// assert_eq!(rows.to_array(), [[1., 2.], [1., 2.], [1., 2.]]);
    /// ```
    pub fn broadcast<Target>(&self) -> Tensor<T, Target, K>
    where
        Target: StaticShape,
        S: Broadcastable<Target>,
        K: Storage<T, Target>,
    {
        or_panic(self.try_broadcast_to(Target::default()))
    }

    /// The tensor repeated along new leading axes to `shape`; an error names both shapes
    /// when a dynamic trailing dimension differs.
    pub fn try_broadcast_to<Target>(&self, shape: Target) -> Result<Tensor<T, Target, K>, ShapeError>
    where
        Target: Shape,
        S: Broadcastable<Target>,
        K: Storage<T, Target>,
    {
        check_broadcast(self.dims(), shape.dims(), Target::RANK - S::RANK)?;
        let data = self.as_slice();
        let copies = shape.num_elements().checked_div(data.len()).unwrap_or(0);
        Ok(Tensor::from_runs(shape, core::iter::repeat_n(data, copies)))
    }

    /// The tensor repeated along a new axis at position `AXIS` of the static shape
    /// `Target`: y[o, j, i] = x[o, i] for every j (`Target` without axis `AXIS` is the
    /// tensor's shape). A reduction along an axis broadcast back, as NumPy's
    /// `keepdims` and PyTorch's `unsqueeze(AXIS).expand(…)` do:
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let x: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let centred = &x - &x.mean_axis(Axis::<1>).broadcast_axis(Axis::<1>);
    /// assert_eq!(centred.to_array(), [[-1., 0., 1.], [-1., 0., 1.]]);
    /// ```
    pub fn broadcast_axis<const AXIS: usize, Target>(&self, axis: Axis<AXIS>) -> Tensor<T, Target, K>
    where
        Target: StaticShape + InsertsAxis<AXIS, S>,
        K: Storage<T, Target>,
    {
        or_panic(self.try_broadcast_axis_to(axis, Target::default()))
    }

    /// [`broadcast_axis`](Self::broadcast_axis) to `shape`; an error names both shapes
    /// when `shape` without axis `AXIS` is not the tensor's shape.
    pub fn try_broadcast_axis_to<const AXIS: usize, Target>(
        &self,
        _: Axis<AXIS>,
        shape: Target,
    ) -> Result<Tensor<T, Target, K>, ShapeError>
    where
        Target: InsertsAxis<AXIS, S>,
        K: Storage<T, Target>,
    {
        check_broadcast_axis::<AXIS, S, Target>(self.shape(), shape)?;
        let (outer, len, inner) = shape.dims().split_at_axis(AXIS);
        let lines = blocks(self.as_slice(), outer, inner);
        Ok(Tensor::from_runs(shape, lines.flat_map(|line| core::iter::repeat_n(line, len))))
    }

    /// Concatenation with `other` along `AXIS`; an error names both shapes when another
    /// axis differs at run time.
    pub fn try_concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &Tensor<T, S::Replaced<B>, K>,
    ) -> Result<Tensor<T, S::Replaced<C>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
        K: Storage<T, S::Replaced<B>> + Storage<T, S::Replaced<C>>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        self.join_along(axis, other)
    }

    /// [`Self::try_concat`] once the static lengths are known to agree (its callers
    /// check them).
    pub(crate) fn join_along<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &Tensor<T, S::Replaced<B>, K>,
    ) -> Result<Tensor<T, S::Replaced<C>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
        K: Storage<T, S::Replaced<B>> + Storage<T, S::Replaced<C>>,
    {
        let _ = axis;
        let (lhs, rhs) = (self.dims(), other.dims());
        check_concat(AXIS, lhs, rhs)?;
        let out_shape =
            self.shape().replaced(self.shape().axis_dim().add_dims(S::axis_of_replaced(&other.shape())));
        let (outer, len_a, inner) = lhs.split_at_axis(AXIS);
        let len_b = rhs.as_slice()[AXIS];
        let a = blocks(self.as_slice(), outer, len_a * inner);
        let b = blocks(other.as_slice(), outer, len_b * inner);
        Ok(Tensor::from_runs(out_shape, a.zip(b).flat_map(|(a, b)| [a, b])))
    }

    /// Concatenation with `other` along `AXIS`. For static lengths the output length is
    /// checked by the compiler.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a: Vector<f64, 2> = Vector::from_array([1., 2.]);
    /// let b: Vector<f64, 3> = Vector::from_array([3., 4., 5.]);
    /// let c: Vector<f64, 5> = a.concat(Axis::<0>, &b);
    /// assert_eq!(c.to_array(), [1., 2., 3., 4., 5.]);
    /// ```
    #[track_caller]
    pub fn concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &Tensor<T, S::Replaced<B>, K>,
    ) -> Tensor<T, S::Replaced<C>, K>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
        K: Storage<T, S::Replaced<B>> + Storage<T, S::Replaced<C>>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        or_panic(self.join_along(axis, other))
    }

    /// The `LEN` entries starting at `START` along `AXIS`; for a static axis the bounds
    /// are checked by the compiler, for a dynamic one an error names the shape. For
    /// offsets known only at run time, [`narrow_range`](Self::narrow_range).
    pub fn try_narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Result<Tensor<T, S::Replaced<Const<LEN>>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
        K: Storage<T, S::Replaced<Const<LEN>>>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        self.window_along::<AXIS, START, LEN>()
    }

    /// [`Self::try_narrow`] once the static lengths are known to agree (its callers
    /// check them).
    pub(crate) fn window_along<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Result<Tensor<T, S::Replaced<Const<LEN>>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
        K: Storage<T, S::Replaced<Const<LEN>>>,
    {
        if !self.shape().axis_dim().fits() {
            return Err(narrow_error(self.dims(), AXIS, START, LEN));
        }
        let (outer, len, inner) = self.dims().split_at_axis(AXIS);
        let windows =
            blocks(self.as_slice(), outer, len * inner).map(|block| &block[START * inner..][..LEN * inner]);
        Ok(Tensor::from_runs(self.shape().replaced(Const::<LEN>), windows))
    }

    /// The entries `range` along `AXIS`, with offsets known at run time: the axis
    /// becomes [`Dyn`] (a mini-batch of images, `x.narrow_range(Axis::<0>, 32..64)`;
    /// PyTorch's `x[32:64]`). An error names the shape when the range does not fit.
    pub fn try_narrow_range<const AXIS: usize>(
        &self,
        _: Axis<AXIS>,
        range: core::ops::Range<usize>,
    ) -> Result<Tensor<T, S::Replaced<Dyn>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        let (outer, len, inner) = self.dims().split_at_axis(AXIS);
        if range.start > range.end || range.end > len {
            return Err(narrow_error(self.dims(), AXIS, range.start, range.end.saturating_sub(range.start)));
        }
        let window = range.start * inner..range.end * inner;
        let windows = blocks(self.as_slice(), outer, len * inner).map(|block| &block[window.clone()]);
        Ok(Tensor::from_runs(self.shape().replaced(Dyn(range.len())), windows))
    }

    /// [`Tensor::try_narrow_range`] that panics when the range does not fit.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let images = Tensor::<f32, (Dyn, Const<1>, Const<2>, Const<2>), Heap>::from_shape_fn(
    ///     (Dyn(5), Const, Const, Const),
    ///     |[b, _, i, j]| (b * 4 + i * 2 + j) as f32,
    /// );
    /// let batch = images.narrow_range(Axis::<0>, 1..3);
    /// assert_eq!(batch.shape(), (Dyn(2), Const, Const, Const));
    /// assert_eq!(batch[[1, 0, 1, 1]], 11.0);
    /// ```
    #[track_caller]
    pub fn narrow_range<const AXIS: usize>(
        &self,
        axis: Axis<AXIS>,
        range: core::ops::Range<usize>,
    ) -> Tensor<T, S::Replaced<Dyn>, K>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        or_panic(self.try_narrow_range(axis, range))
    }

    /// The entries at `indices` along `AXIS`, in their order (repeats allowed): the
    /// axis becomes [`Dyn`], of length `indices.len()` (PyTorch's
    /// `x.index_select(dim, idx)`, `x[idx]` along axis 0: a shuffled mini-batch of
    /// images). An error names the shape and the first index past the axis.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let images = Tensor::<f32, (Dyn, Const<1>, Const<2>, Const<2>), Heap>::from_shape_fn(
    ///     (Dyn(5), Const, Const, Const),
    ///     |[b, _, i, j]| (b * 4 + i * 2 + j) as f32,
    /// );
    /// let batch = images.index_select(Axis::<0>, &[4, 0, 4]);
    /// assert_eq!(batch.shape(), (Dyn(3), Const, Const, Const));
    /// assert_eq!((batch[[0, 0, 0, 0]], batch[[1, 0, 1, 1]], batch[[2, 0, 0, 1]]), (16.0, 3.0, 17.0));
    /// ```
    pub fn try_index_select<const AXIS: usize>(
        &self,
        _: Axis<AXIS>,
        indices: &[usize],
    ) -> Result<Tensor<T, S::Replaced<Dyn>, K>, ShapeError>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        let (outer, len, inner) = self.dims().split_at_axis(AXIS);
        if let Some(&past) = indices.iter().find(|&&index| index >= len) {
            return Err(narrow_error(self.dims(), AXIS, past, 1));
        }
        let selected = blocks(self.as_slice(), outer, len * inner)
            .flat_map(|block| indices.iter().map(move |&index| &block[index * inner..][..inner]));
        Ok(Tensor::from_runs(self.shape().replaced(Dyn(indices.len())), selected))
    }

    /// [`Tensor::try_index_select`] that panics on an index past the axis.
    #[track_caller]
    pub fn index_select<const AXIS: usize>(
        &self,
        axis: Axis<AXIS>,
        indices: &[usize],
    ) -> Tensor<T, S::Replaced<Dyn>, K>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        or_panic(self.try_index_select(axis, indices))
    }

    /// [`Tensor::try_narrow`] that panics when a dynamic axis is too short.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let m: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let right: Matrix<f64, 2, 2> = m.narrow::<1, 1, 2>();
    /// assert_eq!(right.to_array(), [[2., 3.], [5., 6.]]);
    /// ```
    #[track_caller]
    pub fn narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Tensor<T, S::Replaced<Const<LEN>>, K>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
        K: Storage<T, S::Replaced<Const<LEN>>>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        or_panic(self.window_along::<AXIS, START, LEN>())
    }
}

/// The first `count` consecutive blocks of `size` elements of `data`.
fn blocks<T>(data: &[T], count: usize, size: usize) -> impl Iterator<Item = &[T]> + Clone {
    (0..count).map(move |block| &data[block * size..][..size])
}

/// Checks that two shapes agree on every axis except `axis`, as concatenation along
/// it needs.
pub(crate) fn check_concat(axis: usize, lhs: Dims, rhs: Dims) -> Result<(), ShapeError> {
    let others_agree =
        lhs.as_slice().iter().zip(rhs.as_slice()).enumerate().all(|(index, (a, b))| index == axis || a == b);
    if others_agree {
        Ok(())
    } else {
        Err(ShapeError::new("concat", lhs, rhs, "every axis except the concatenated one must agree"))
    }
}

/// Checks that a reshape from `from` to `to` keeps the number of elements.
pub(crate) fn check_element_count(from: Dims, to: Dims) -> Result<(), ShapeError> {
    check_countable("reshape", from, to)?;
    if from.checked_num_elements() == to.checked_num_elements() {
        Ok(())
    } else {
        Err(ShapeError::new("reshape", from, to, "the element counts must be equal"))
    }
}

/// The error of a slice [`start`, `start + len`) that does not fit inside axis `axis`
/// of `dims` (its second "shape" is [start, len]).
pub(crate) fn narrow_error(dims: Dims, axis: usize, start: usize, len: usize) -> ShapeError {
    const MUST_FIT: [&str; 4] = [
        "the slice [start, len] (the second) must fit inside axis 0",
        "the slice [start, len] (the second) must fit inside axis 1",
        "the slice [start, len] (the second) must fit inside axis 2",
        "the slice [start, len] (the second) must fit inside axis 3",
    ];
    ShapeError::new("narrow", dims, Dims::new(&[start, len]), MUST_FIT[axis])
}

/// An error for `operation` from `source` when the `target` shape has more elements
/// than a `usize` counts.
fn check_countable(operation: &'static str, source: Dims, target: Dims) -> Result<(), ShapeError> {
    match target.checked_num_elements() {
        Some(_) => Ok(()),
        None => Err(ShapeError::new(
            operation,
            source,
            target,
            "the target has more elements than a usize counts",
        )),
    }
}

/// That `source` repeats along new leading axes to `target` (`rank_difference` of
/// them): its dimensions are the target's trailing ones, and the target's elements
/// can be counted.
pub(crate) fn check_broadcast(source: Dims, target: Dims, rank_difference: usize) -> Result<(), ShapeError> {
    if &target.as_slice()[rank_difference..] != source.as_slice() {
        return Err(ShapeError::new(
            "broadcast",
            source,
            target,
            "the trailing dimensions of the target must equal the source's",
        ));
    }
    check_countable("broadcast", source, target)
}

impl<T: Scalar, R: Dim, C: Dim, K> Tensor<T, (R, C), K>
where
    K: Storage<T, (R, C)> + Storage<T, (C, R)>,
{
    /// The conjugate transpose Aᴴ, yᵢⱼ = conj(xⱼᵢ) (PyTorch's `A.mH`, JAX's
    /// `A.conj().T`, nalgebra's `adjoint`); the transpose on real matrices. Its
    /// cotangent is ȳᴴ.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let c = Complex64::new;
    /// let a: Matrix<Complex64, 1, 2> = Matrix::from_array([[c(1.0, 2.0), c(0.0, -1.0)]]);
    /// assert_eq!(a.conj_transpose().to_array(), [[c(1.0, -2.0)], [c(0.0, 1.0)]]);
    /// ```
    #[doc(alias = "adjoint")]
    #[doc(alias = "mH")]
    #[doc(alias = "dagger")]
    pub fn conj_transpose(&self) -> Tensor<T, (C, R), K> {
        let transpose = self.transpose();
        if T::IS_COMPLEX { transpose.conj() } else { transpose }
    }
}

// Reverse-mode rules: each moves the cotangent back to where the element came from.

/// x̄ = ȳᵀ for y = xᵀ.
pub fn transpose_pullback<T: Copy, R: Dim, C: Dim, K>(y_bar: &Tensor<T, (C, R), K>) -> Tensor<T, (R, C), K>
where
    K: Storage<T, (R, C)> + Storage<T, (C, R)>,
{
    y_bar.transpose()
}

/// x̄ for y = `x.permute(axes)`: ȳ with its axes put back, by the inverse order
/// (a permutation's adjoint is its inverse).
pub fn permute_pullback<T: Copy, S: Shape, P: PermutesAxes<S>, K>(
    _: P,
    y_bar: &Tensor<T, P::Output, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, P::Output>,
{
    let () = P::CHECK;
    axes_put_back::<T, S, P, K>(y_bar)
}

/// [`permute_pullback`] once the order is known to name each axis once.
pub(crate) fn axes_put_back<T: Copy, S: Shape, P: PermutesAxes<S>, K>(
    y_bar: &Tensor<T, P::Output, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, P::Output>,
{
    let (shape, inverse) = permuted_back::<S, P>(y_bar.dims());
    reordered(y_bar.as_slice(), y_bar.dims(), &inverse[..P::ORDER.len()], shape)
}

/// The shape whose permutation by `P` has dimensions `y_dims`, and the inverse order
/// (its first rank entries) that puts them back.
pub(crate) fn permuted_back<S: Shape, P: PermutesAxes<S>>(y_dims: Dims) -> (S, [usize; MAX_RANK]) {
    let (mut inverse, mut sizes) = ([0; MAX_RANK], [0; MAX_RANK]);
    for (k, &axis) in P::ORDER.iter().enumerate() {
        (inverse[axis], sizes[axis]) = (k, y_dims.as_slice()[k]);
    }
    let shape =
        S::from_dims(&sizes[..P::ORDER.len()]).expect("a permuted shape's axes, put back, are the input's");
    (shape, inverse)
}

/// x̄ = ȳ under x's shape, for any reshape (and flatten) of x.
#[track_caller]
pub fn reshape_pullback<T: Copy, S: Shape, Target: Shape, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, Target, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, Target>,
{
    or_panic(y_bar.try_reshape(x.shape()))
}

/// Checks that `target` without axis `AXIS` is `source` (the shapes of
/// `broadcast_axis`), naming both shapes otherwise.
pub(crate) fn check_broadcast_axis<const AXIS: usize, S: Shape, Target: InsertsAxis<AXIS, S>>(
    source: S,
    target: Target,
) -> Result<(), ShapeError> {
    if target.removed() != source {
        return Err(ShapeError::new(
            "broadcast_axis",
            source.dims(),
            target.dims(),
            "the target without the new axis must equal the source",
        ));
    }
    check_countable("broadcast_axis", source.dims(), target.dims())
}

/// x̄ⱼ = Σ over the prepended axes of ȳ, for y = broadcast(x).
pub fn broadcast_pullback<T: Scalar, S: Shape, Target: Shape, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, Target, K>,
) -> Tensor<T, S, K>
where
    K: Storage<T, S> + Storage<T, Target>,
{
    let mut x_bar = Tensor::full_shaped(x.shape(), T::zero());
    let sums = x_bar.as_mut_slice();
    let tiles = y_bar.len().checked_div(sums.len()).unwrap_or(0);
    for tile in blocks(y_bar.as_slice(), tiles, sums.len()) {
        sums.iter_mut().zip(tile).for_each(|(sum, &g)| *sum += g);
    }
    x_bar
}

/// (ā, b̄): the two parts of ȳ along `AXIS`, for y = concat(a, b).
pub fn concat_pullback<const AXIS: usize, T: Copy, S: HasAxis<AXIS>, B: Dim, C: Dim, K>(
    a: &Tensor<T, S, K>,
    b: &Tensor<T, S::Replaced<B>, K>,
    y_bar: &Tensor<T, S::Replaced<C>, K>,
) -> (Tensor<T, S, K>, Tensor<T, S::Replaced<B>, K>)
where
    K: Storage<T, S> + Storage<T, S::Replaced<B>> + Storage<T, S::Replaced<C>>,
{
    let (outer, len_a, inner) = a.dims().split_at_axis(AXIS);
    let len_b = b.dims().as_slice()[AXIS];
    let joined = || blocks(y_bar.as_slice(), outer, (len_a + len_b) * inner);
    let a_bar = Tensor::from_runs(a.shape(), joined().map(|block| &block[..len_a * inner]));
    (a_bar, Tensor::from_runs(b.shape(), joined().map(|block| &block[len_a * inner..])))
}

/// x̄ = ȳ inside the slice `[START, START + LEN)` along `AXIS`, zero elsewhere.
pub fn narrow_pullback<const AXIS: usize, const START: usize, const LEN: usize, T: Scalar, S, K>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S::Replaced<Const<LEN>>, K>,
) -> Tensor<T, S, K>
where
    S: HasAxis<AXIS>,
    K: Storage<T, S> + Storage<T, S::Replaced<Const<LEN>>>,
{
    window_pullback(x, AXIS, START..START + LEN, y_bar.as_slice())
}

/// x̄ = ȳ inside `range` along `AXIS` (the slice `narrow_range` took), zero
/// elsewhere.
///
/// # Panics
/// When ȳ's shape is not x's with `range.len()` along `AXIS`, or the range does not
/// fit.
#[track_caller]
pub fn narrow_range_pullback<const AXIS: usize, T: Scalar, S, K>(
    x: &Tensor<T, S, K>,
    range: core::ops::Range<usize>,
    y_bar: &Tensor<T, S::Replaced<Dyn>, K>,
) -> Tensor<T, S, K>
where
    S: HasAxis<AXIS>,
    K: Storage<T, S> + Storage<T, S::Replaced<Dyn>>,
{
    let expected = x.shape().replaced(Dyn(range.len()));
    let (_, len, _) = x.dims().split_at_axis(AXIS);
    if range.start > range.end || range.end > len {
        panic!("{}", narrow_error(x.dims(), AXIS, range.start, range.end.saturating_sub(range.start)));
    }
    if y_bar.shape() != expected {
        let requirement = "a cotangent of the slice's shape";
        panic!("{}", ShapeError::new("narrow_range_pullback", expected.dims(), y_bar.dims(), requirement));
    }
    window_pullback(x, AXIS, range, y_bar.as_slice())
}

/// x̄ = `window` (the entries `range` along `axis`, in order) placed into zeros of
/// x's shape.
fn window_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    axis: usize,
    range: core::ops::Range<usize>,
    window: &[T],
) -> Tensor<T, S, K> {
    let (outer, len, inner) = x.dims().split_at_axis(axis);
    let mut x_bar = Tensor::full_shaped(x.shape(), T::zero());
    let sums = x_bar.as_mut_slice();
    for (block, part) in blocks(window, outer, range.len() * inner).enumerate() {
        sums[(block * len + range.start) * inner..][..range.len() * inner].copy_from_slice(part);
    }
    x_bar
}
