//! Row-wise operations on a batch `(R, C)` (one example per row), the pieces of
//! layers whose batch size may be dynamic:
//!
//! - `add_rows(b)`: yᵢⱼ = xᵢⱼ + bⱼ (a bias on every example);
//! - `mul_rows(g)`: yᵢⱼ = xᵢⱼ·gⱼ (a per-feature gain);
//! - `normalize_rows(ε)`: yᵢⱼ = (xᵢⱼ − μᵢ)/√(σᵢ² + ε), with μᵢ and σᵢ² the mean and
//!   (biased) variance of row i;
//! - `gather_rows(indices)`: yₖⱼ = x_{indices\[k\], j} (an embedding lookup);
//! - `row(i)` and `column(j)`: one row or column as a vector (`m[i]`, `m[:, j]`).
//!
//! Their pullbacks: for `add_rows`, x̄ = ȳ and b̄ = Σᵢ ȳᵢ; for `mul_rows`,
//! x̄ᵢⱼ = ȳᵢⱼ·conj(gⱼ) and ḡⱼ = Σᵢ conj(xᵢⱼ)·ȳᵢⱼ (conj the identity on real data); for `normalize_rows`, with r = 1/√(σ² + ε),
//! x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) per row; for `gather_rows`, each ȳ row is
//! added to the row it was read from; for `row` and `column`, x̄ is ȳ in that row or
//! column and 0 elsewhere.

use crate::error::{ShapeError, or_panic};
use crate::ops::reduce::{pairwise_sum, pairwise_sum_by};
use crate::scalar::{RealScalar, Scalar};
#[cfg(feature = "alloc")]
use crate::shape::Dyn;
use crate::shape::constraint::Axis;
use crate::shape::{Dim, Dims, Shape};
use crate::tensor::{Storage, Tensor};

/// An error naming both shapes unless a row of `row`'s shape has one element per
/// column of `matrix`'s (on every storage kind).
pub(crate) fn check_row<R: Dim, C: Dim>(
    matrix: (R, C),
    row: (C,),
    operation: &'static str,
) -> Result<(), ShapeError> {
    if matrix.1.size() == row.0.size() {
        return Ok(());
    }
    let requirement = "the row's length must equal the column count";
    Err(ShapeError::new(operation, matrix.dims(), row.dims(), requirement))
}

impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>> Tensor<T, (R, C), K> {
    /// yᵢⱼ = xᵢⱼ + bⱼ: `row` added to every row; an error names both shapes when a
    /// dynamic column count differs.
    pub fn try_add_rows(&self, row: &Tensor<T, (C,), K>) -> Result<Self, ShapeError> {
        check_row(self.shape(), row.shape(), "add_rows")?;
        Ok(self.each_row_with(row, |y, &b| *y += b))
    }

    /// [`Tensor::try_add_rows`] that panics on a mismatch.
    #[track_caller]
    pub fn add_rows(&self, row: &Tensor<T, (C,), K>) -> Self {
        or_panic(self.try_add_rows(row))
    }

    /// yᵢⱼ = xᵢⱼ·gⱼ: every row multiplied by `row` elementwise; an error names both
    /// shapes when a dynamic column count differs.
    pub fn try_mul_rows(&self, row: &Tensor<T, (C,), K>) -> Result<Self, ShapeError> {
        check_row(self.shape(), row.shape(), "mul_rows")?;
        Ok(self.each_row_with(row, |y, &g| *y *= g))
    }

    /// A copy with `f(yᵢⱼ, rⱼ)` applied to each element: one pass per row, which the
    /// compiler vectorises (an index modulo the row length per element would not be).
    fn each_row_with(&self, row: &Tensor<T, (C,), K>, mut f: impl FnMut(&mut T, &T)) -> Self {
        let mut y = self.clone();
        let columns = row.len();
        if columns > 0 {
            for y_row in y.as_mut_slice().chunks_exact_mut(columns) {
                y_row.iter_mut().zip(row.as_slice()).for_each(|(y, r)| f(y, r));
            }
        }
        y
    }

    /// [`Tensor::try_mul_rows`] that panics on a mismatch.
    #[track_caller]
    pub fn mul_rows(&self, row: &Tensor<T, (C,), K>) -> Self {
        or_panic(self.try_mul_rows(row))
    }
}

impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)>> Tensor<T, (R, C), K> {
    /// Row `i` as a vector (`m[i]` in PyTorch, JAX and NumPy); an error names the
    /// shape and the index when there is no row `i`.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let m: Matrix<f64, 2, 3> = Matrix::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// assert_eq!(m.row(1).to_array(), [4.0, 5.0, 6.0]);
    /// assert_eq!(m.column(2).to_array(), [3.0, 6.0]);
    /// assert!(m.try_row(2).is_err());
    /// ```
    pub fn try_row(&self, i: usize) -> Result<Tensor<T, (C,), K>, ShapeError>
    where
        K: Storage<T, (C,)>,
    {
        let columns = self.shape().1;
        check_line_index("row", self.dims(), i, 0)?;
        Ok(Tensor::from_runs(
            (columns,),
            core::iter::once(&self.as_slice()[i * columns.size()..][..columns.size()]),
        ))
    }

    /// [`try_row`](Self::try_row)'s row.
    ///
    /// # Panics
    /// When there is no row `i` (the message names the shape and the index).
    #[track_caller]
    pub fn row(&self, i: usize) -> Tensor<T, (C,), K>
    where
        K: Storage<T, (C,)>,
    {
        or_panic(self.try_row(i))
    }

    /// Column `j` as a vector (`m[:, j]`); an error names the shape and the index
    /// when there is no column `j`.
    pub fn try_column(&self, j: usize) -> Result<Tensor<T, (R,), K>, ShapeError>
    where
        K: Storage<T, (R,)>,
    {
        check_line_index("column", self.dims(), j, 1)?;
        let columns = self.shape().1.size();
        Ok(Tensor::from_shape_fn((self.shape().0,), |[i]| self.as_slice()[i * columns + j]))
    }

    /// [`try_column`](Self::try_column)'s column.
    ///
    /// # Panics
    /// When there is no column `j` (the message names the shape and the index).
    #[track_caller]
    pub fn column(&self, j: usize) -> Tensor<T, (R,), K>
    where
        K: Storage<T, (R,)>,
    {
        or_panic(self.try_column(j))
    }
}

/// An error naming the matrix's shape and the index unless `index` is a row (`axis`
/// 0) or a column (1) of it.
fn check_line_index(
    operation: &'static str,
    matrix: Dims,
    index: usize,
    axis: usize,
) -> Result<(), ShapeError> {
    if index < matrix.as_slice()[axis] {
        return Ok(());
    }
    let requirement = [
        "the index (the second) must be below the row count",
        "the index (the second) must be below the column count",
    ][axis];
    Err(ShapeError::new(operation, matrix, Dims::new(&[index]), requirement))
}

#[cfg(feature = "alloc")]
impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)>> Tensor<T, (R, C), K> {
    /// yₖⱼ = x_{indices\[k\], j}: the rows at `indices`, in order (repeats allowed).
    ///
    /// # Panics
    /// When an index is not a row of `self` (the message names it and the row count).
    #[track_caller]
    pub fn gather_rows(&self, indices: &[usize]) -> Tensor<T, (Dyn, C), K>
    where
        K: Storage<T, (Dyn, C)>,
    {
        let (rows, columns) = (self.shape().0.size(), self.shape().1.size());
        check_row_indices("gather_rows", indices, rows);
        let x = self.as_slice();
        let gathered = indices.iter().map(|&row| &x[row * columns..][..columns]);
        Tensor::from_runs((Dyn(indices.len()), self.shape().1), gathered)
    }
}

impl<T: RealScalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (R,)>> Tensor<T, (R, C), K> {
    /// yᵢⱼ = (xᵢⱼ − μᵢ)/√(σᵢ² + ε) with the mean μᵢ and the biased variance σᵢ² of
    /// row i.
    pub fn normalize_rows(&self, epsilon: T) -> Self {
        self.normalized_rows(epsilon).0
    }

    /// The normalised rows and 1/√(σᵢ² + ε) per row (what the pullback needs).
    pub(crate) fn normalized_rows(&self, epsilon: T) -> (Self, Tensor<T, (R,), K>) {
        normalize_lines(self, (self.shape().0,), self.shape().1.size(), epsilon)
    }

    /// 1/√(σᵢ² + ε) per row alone: what a static pullback computes again from the
    /// input it keeps (not the normalised rows).
    pub(crate) fn row_scales(&self, epsilon: T) -> Tensor<T, (R,), K> {
        line_statistics(self, (self.shape().0,), self.shape().1.size(), epsilon).1
    }
}

/// Each line of `length` consecutive elements of x (`lines` of them) normalised:
/// (xᵢ − μ)·r with the line's mean μ and r = 1/√(σ² + ε), σ² its biased variance;
/// the output and r per line.
pub(crate) fn normalize_lines<T: RealScalar, S: Shape, L: Shape, K: Storage<T, S> + Storage<T, L>>(
    x: &Tensor<T, S, K>,
    lines: L,
    length: usize,
    epsilon: T,
) -> (Tensor<T, S, K>, Tensor<T, L, K>) {
    let (means, scales) = line_statistics(x, lines, length, epsilon);
    let mut y = x.clone();
    for ((line, &mean), &scale) in each_line(&mut y, length).zip(means.as_slice()).zip(scales.as_slice()) {
        line.iter_mut().for_each(|v| *v = (*v - mean) * scale);
    }
    (y, scales)
}

/// The mean μ and r = 1/√(σ² + ε) of each line of [`normalize_lines`].
pub(crate) fn line_statistics<T: RealScalar, S: Shape, L: Shape, K: Storage<T, S> + Storage<T, L>>(
    x: &Tensor<T, S, K>,
    lines: L,
    length: usize,
    epsilon: T,
) -> (Tensor<T, L, K>, Tensor<T, L, K>) {
    let x = x.as_slice();
    let line = |k: usize| &x[k * length..(k + 1) * length];
    let means = Tensor::<T, L, K>::from_flat_fn(lines, |k| pairwise_sum(line(k)).div_count(length));
    let (mean, count) = (means.as_slice(), T::from_f64(length as f64));
    let scales = Tensor::<T, L, K>::from_flat_fn(lines, |k| {
        let variance = pairwise_sum_by(line(k), |v| (v - mean[k]) * (v - mean[k])) / count;
        T::one() / (variance + epsilon).sqrt()
    });
    (means, scales)
}

/// The pullback of [`normalize_lines`] given its output y and the scales r per line:
/// x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) on each line of `length`.
pub(crate) fn normalize_lines_pullback<
    T: RealScalar,
    S: Shape,
    L: Shape,
    K: Storage<T, S> + Storage<T, L>,
>(
    y: &Tensor<T, S, K>,
    scales: &Tensor<T, L, K>,
    y_bar: &Tensor<T, S, K>,
    length: usize,
) -> Tensor<T, S, K> {
    let products = y_bar.hadamard(y);
    let (g, gy) = (y_bar.as_slice(), products.as_slice());
    let line_mean =
        |values: &[T], k: usize| pairwise_sum(&values[k * length..(k + 1) * length]).div_count(length);
    let mean_g = Tensor::<T, L, K>::from_flat_fn(scales.shape(), |k| line_mean(g, k));
    let mean_gy = Tensor::<T, L, K>::from_flat_fn(scales.shape(), |k| line_mean(gy, k));
    let mut x_bar = y_bar.clone();
    let statistics = scales.as_slice().iter().zip(mean_g.as_slice()).zip(mean_gy.as_slice());
    for ((x_bar, y), ((&scale, &mean_g), &mean_gy)) in
        each_line(&mut x_bar, length).zip(y.as_slice().chunks_exact(length.max(1))).zip(statistics)
    {
        x_bar.iter_mut().zip(y).for_each(|(g, &y)| *g = scale * (*g - mean_g - y * mean_gy));
    }
    x_bar
}

/// The lines of `length` elements of `x`, in order, to write (a tensor of lines of
/// length 0 is empty).
fn each_line<T: Scalar, S: Shape, K: Storage<T, S>>(
    x: &mut Tensor<T, S, K>,
    length: usize,
) -> core::slice::ChunksExactMut<'_, T> {
    x.as_mut_slice().chunks_exact_mut(length.max(1))
}

/// The pullback of `add_rows`: x̄ = ȳ, b̄ = Σᵢ ȳᵢ (column sums).
pub fn add_rows_pullback<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>>(
    y_bar: &Tensor<T, (R, C), K>,
) -> (Tensor<T, (R, C), K>, Tensor<T, (C,), K>) {
    (y_bar.clone(), y_bar.sum_axis(Axis::<0>))
}

/// The pullback of `mul_rows(g)` at x: x̄ᵢⱼ = ȳᵢⱼ·conj(gⱼ), ḡⱼ = Σᵢ conj(xᵢⱼ)·ȳᵢⱼ
/// (for complex data the gradient convention of the
/// [complex-numbers guide](crate::guide::complex_numbers); on real data the
/// conjugations are the identity).
pub fn mul_rows_pullback<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>>(
    x: &Tensor<T, (R, C), K>,
    row: &Tensor<T, (C,), K>,
    y_bar: &Tensor<T, (R, C), K>,
) -> (Tensor<T, (R, C), K>, Tensor<T, (C,), K>) {
    let x_bar = y_bar.each_row_with(row, |y, &g| *y *= g.conj());
    (x_bar, x.zip_map(y_bar, |x, g| x.conj() * g).sum_axis(Axis::<0>))
}

/// The pullback of `normalize_rows` given its output y and the scales r per row:
/// x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) on each row.
pub fn normalize_rows_pullback<T: RealScalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (R,)>>(
    y: &Tensor<T, (R, C), K>,
    scales: &Tensor<T, (R,), K>,
    y_bar: &Tensor<T, (R, C), K>,
) -> Tensor<T, (R, C), K> {
    normalize_lines_pullback(y, scales, y_bar, y.shape().1.size())
}

/// The pullback of `row(i)` on a matrix of `shape`: ȳ in row i, 0 elsewhere.
///
/// # Panics
/// When there is no row `i` or ȳ's length is not the column count.
#[track_caller]
pub fn row_pullback<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>>(
    shape: (R, C),
    i: usize,
    y_bar: &Tensor<T, (C,), K>,
) -> Tensor<T, (R, C), K> {
    or_panic(check_line_index("row_pullback", shape.dims(), i, 0));
    or_panic(check_row(shape, y_bar.shape(), "row_pullback"));
    let mut x_bar = Tensor::zeros_shaped(shape);
    let columns = shape.1.size();
    x_bar.as_mut_slice()[i * columns..][..columns].copy_from_slice(y_bar.as_slice());
    x_bar
}

/// The pullback of `column(j)` on a matrix of `shape`: ȳ in column j, 0 elsewhere.
///
/// # Panics
/// When there is no column `j` or ȳ's length is not the row count.
#[track_caller]
pub fn column_pullback<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (R,)>>(
    shape: (R, C),
    j: usize,
    y_bar: &Tensor<T, (R,), K>,
) -> Tensor<T, (R, C), K> {
    or_panic(check_line_index("column_pullback", shape.dims(), j, 1));
    if y_bar.len() != shape.0.size() {
        let requirement = "the column's length must equal the row count";
        panic!("{}", ShapeError::new("column_pullback", shape.dims(), y_bar.dims(), requirement));
    }
    let mut x_bar = Tensor::zeros_shaped(shape);
    let columns = shape.1.size();
    for (i, &g) in y_bar.iter().enumerate() {
        x_bar.as_mut_slice()[i * columns + j] = g;
    }
    x_bar
}

#[cfg(feature = "alloc")]
/// The pullback of `gather_rows(indices)` on a tensor of `shape`: each row of ȳ
/// added to the row of x it was read from.
pub fn gather_rows_pullback<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (Dyn, C)>>(
    shape: (R, C),
    indices: &[usize],
    y_bar: &Tensor<T, (Dyn, C), K>,
) -> Tensor<T, (R, C), K> {
    let columns = shape.1.size();
    let mut x_bar = Tensor::zeros_shaped(shape);
    let (target, source) = (x_bar.as_mut_slice(), y_bar.as_slice());
    for (k, &index) in indices.iter().enumerate() {
        let row = &mut target[index * columns..(index + 1) * columns];
        row.iter_mut().zip(&source[k * columns..(k + 1) * columns]).for_each(|(t, &s)| *t += s);
    }
    x_bar
}

/// Panics naming the first of `indices` that is not one of `rows` rows.
#[cfg(feature = "alloc")]
#[track_caller]
pub(crate) fn check_row_indices(operation: &str, indices: &[usize], rows: usize) {
    if let Some(&bad) = indices.iter().find(|&&index| index >= rows) {
        panic!("{operation}: index {bad} is out of range for {rows} rows");
    }
}
