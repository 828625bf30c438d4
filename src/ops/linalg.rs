//! Linear systems: x = A⁻¹b for a square matrix A and a right-hand side b with as
//! many rows — a vector, or a matrix whose columns are solved together — by Gaussian
//! elimination with partial pivoting (LAPACK's `gesv`, `torch.linalg.solve`,
//! `jnp.linalg.solve`), on any real scalar, duals included.
//!
//! Derivatives, from A·x = b:
//! - reverse: b̄ = A⁻ᵀx̄ (a second elimination, on Aᵀ), Ā = −b̄·xᵀ;
//! - forward: ẋ = A⁻¹(ḃ − Ȧ·x).
//!
//! A pivot that is exactly zero is an error ([`SolveError::Singular`]); a nearly
//! singular matrix gives the large values its conditioning implies, as LAPACK's
//! does. The elimination works in copies of A and b and allocates nothing else
//! (inline tensors: nothing on the heap); the pullback eliminates on Aᵀ anew instead
//! of keeping A's factors.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 3.0]]);
//! let b: Vector<f64, 2> = Vector::from_array([3.0, 5.0]);
//! let x = a.solve(&b);
//! assert!((x.to_array()[0] - 0.8).abs() < 1e-15 && (x.to_array()[1] - 1.4).abs() < 1e-15);
//! // The gradient of Σx with respect to b is A⁻ᵀ·1.
//! let gb = grad(|b: Var<Vector<f64, 2>>| Var::constant(a.clone()).solve(&b).sum(), &b);
//! assert!((gb.to_array()[0] - 0.4).abs() < 1e-15 && (gb.to_array()[1] - 0.2).abs() < 1e-15);
//! ```

use core::fmt;

#[cfg(feature = "std")]
use crate::autodiff::{Operand, Var, record_binary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::scalar::RealScalar;
use crate::shape::constraint::RightHandSide;
use crate::shape::{Dim, Dims, Shape};
use crate::tensor::{Storage, Tensor};

/// Why [`try_solve`](Tensor::try_solve) gave no solution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SolveError {
    /// The matrix is not square, or the right-hand side has another number of rows
    /// (sizes known only when it runs).
    Shape(ShapeError),
    /// The elimination found only zeros for the pivot of a column (NaN is never
    /// taken as a pivot): the matrix is singular.
    Singular {
        /// The first column without a pivot.
        column: usize,
    },
}

impl fmt::Display for SolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SolveError::Shape(error) => error.fmt(f),
            SolveError::Singular { column } => {
                write!(f, "solve: the matrix is singular (no nonzero pivot in column {column})")
            }
        }
    }
}

impl core::error::Error for SolveError {}

impl From<ShapeError> for SolveError {
    fn from(error: ShapeError) -> Self {
        SolveError::Shape(error)
    }
}

impl<T: RealScalar, N: Dim, K: Storage<T, (N, N)>> Tensor<T, (N, N), K> {
    /// x with A·x = b, A this square matrix, b a vector or a matrix with as many rows
    /// (its columns solved together), by Gaussian elimination with partial pivoting.
    /// An error names the shapes when a size known only when it runs differs (a
    /// `Dyn` matrix that is not square, a right-hand side with another number of
    /// rows), or the column without a pivot when the matrix is singular. A
    /// right-hand side of no columns gives an empty x without looking at A.
    pub fn try_solve<B: RightHandSide<N>>(&self, b: &Tensor<T, B, K>) -> Result<Tensor<T, B, K>, SolveError>
    where
        K: Storage<T, B>,
    {
        check_system(self.dims(), b.dims())?;
        let mut x = b.clone();
        eliminate(self, Orientation::AsIs, &mut x)?;
        Ok(x)
    }

    /// [`try_solve`](Self::try_solve)'s x.
    ///
    /// # Panics
    /// With `try_solve`'s error message: shapes that do not fit, or a singular
    /// matrix.
    #[track_caller]
    pub fn solve<B: RightHandSide<N>>(&self, b: &Tensor<T, B, K>) -> Tensor<T, B, K>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve(b))
    }
}

#[cfg(feature = "std")]
impl<T: RealScalar, N: Dim, K: Storage<T, (N, N)>> Var<Tensor<T, (N, N), K>> {
    /// x with A·x = b, recorded with its pullback b̄ = A⁻ᵀx̄, Ā = −b̄·xᵀ (see
    /// [`Tensor::solve`]); `b` a `Var` or a constant tensor.
    ///
    /// # Panics
    /// As [`Tensor::solve`].
    #[track_caller]
    pub fn solve<B: RightHandSide<N>>(&self, b: &impl Operand<Tensor<T, B, K>>) -> Var<Tensor<T, B, K>>
    where
        K: Storage<T, B>,
    {
        let b = b.to_var();
        let a = self.shared_value();
        let x = a.solve(b.value());
        record_binary_in_place(self, &b, x, move |x, x_bar, mut adjoints| {
            let b_bar = transposed_solve(&a, x_bar);
            adjoints.lhs().add(|| matrix_cotangent(&a, &b_bar, x));
            adjoints.rhs().add(|| b_bar);
        })
    }
}

/// Which matrix an elimination solves with: A, or Aᵀ (the pullback's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Orientation {
    AsIs,
    Transposed,
}

/// Checks that `matrix` is square and `rhs` has as many rows.
fn check_system(matrix: Dims, rhs: Dims) -> Result<(), ShapeError> {
    let (rows, columns) = (matrix.as_slice()[0], matrix.as_slice()[1]);
    if rows != columns {
        return Err(ShapeError::new("solve", matrix, rhs, "a square matrix"));
    }
    if rhs.as_slice()[0] != rows {
        return Err(ShapeError::new(
            "solve",
            matrix,
            rhs,
            "a right-hand side with as many rows as the matrix",
        ));
    }
    Ok(())
}

/// Overwrites `x` (n rows of m values, row-major) with y solving A·y = x, or
/// Aᵀ·y = x, by Gaussian elimination with partial pivoting in a copy of A: the
/// largest pivot of each column in magnitude (the first of equal ones), its row
/// swapped up with the right-hand side's, the rows below cleared, then back
/// substitution.
fn eliminate<T: RealScalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    orientation: Orientation,
    x: &mut Tensor<T, B, K>,
) -> Result<(), SolveError> {
    // The sizes: constants for static shapes, for loops the compiler unrolls.
    let (n, elements) = (a.shape().0.size(), x.len());
    // No right-hand side (n or m zero): nothing to solve.
    if elements == 0 {
        return Ok(());
    }
    let (m, x) = (elements / n, x.as_mut_slice());
    let mut matrix = a.clone();
    let lu = matrix.as_mut_slice();
    if orientation == Orientation::Transposed {
        for i in 0..n {
            for j in i + 1..n {
                lu.swap(i * n + j, j * n + i);
            }
        }
    }
    for k in 0..n {
        let pivot_row =
            (k + 1..n).fold(k, |best, i| if lu[i * n + k].abs() > lu[best * n + k].abs() { i } else { best });
        if lu[pivot_row * n + k] == T::zero() {
            return Err(SolveError::Singular { column: k });
        }
        if pivot_row != k {
            for j in k..n {
                lu.swap(k * n + j, pivot_row * n + j);
            }
            for c in 0..m {
                x.swap(k * m + c, pivot_row * m + c);
            }
        }
        // Row i −= (its column-k entry / the pivot) · row k, for the rows below.
        let ((upper, lower), (x_upper, x_lower)) =
            (lu.split_at_mut((k + 1) * n), x.split_at_mut((k + 1) * m));
        let (pivot_row, x_pivot_row) = (&upper[k * n..], &x_upper[k * m..]);
        for (row, x_row) in lower.chunks_exact_mut(n).zip(x_lower.chunks_exact_mut(m)) {
            let factor = row[k] / pivot_row[k];
            for (entry, &above) in row[k + 1..].iter_mut().zip(&pivot_row[k + 1..]) {
                *entry -= factor * above;
            }
            for (entry, &above) in x_row.iter_mut().zip(x_pivot_row) {
                *entry -= factor * above;
            }
        }
    }
    // Back substitution: xᵢ = (xᵢ − Σⱼ₍>ᵢ₎ uᵢⱼ·xⱼ) / uᵢᵢ, from the last row up.
    for i in (0..n).rev() {
        let (head, solved) = x.split_at_mut((i + 1) * m);
        let (x_row, row) = (&mut head[i * m..], &lu[i * n..(i + 1) * n]);
        for (&coefficient, x_solved) in row[i + 1..].iter().zip(solved.chunks_exact(m)) {
            for (entry, &value) in x_row.iter_mut().zip(x_solved) {
                *entry -= coefficient * value;
            }
        }
        for entry in x_row {
            *entry /= row[i];
        }
    }
    Ok(())
}

/// b̄ = A⁻ᵀx̄.
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or Aᵀ has a zero pivot (A, whose elimination succeeded, is then singular in
/// all but rounding).
pub(crate) fn transposed_solve<T: RealScalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    x_bar: &Tensor<T, B, K>,
) -> Tensor<T, B, K> {
    or_panic(check_system(a.dims(), x_bar.dims()));
    let mut b_bar = x_bar.clone();
    if let Err(error) = eliminate(a, Orientation::Transposed, &mut b_bar) {
        panic!("{error} (in the pullback, with the transpose)");
    }
    b_bar
}

/// Ā = −b̄·xᵀ (over the right-hand side's columns).
fn matrix_cotangent<T: RealScalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    b_bar: &Tensor<T, B, K>,
    x: &Tensor<T, B, K>,
) -> Tensor<T, (N, N), K> {
    let n = a.shape().0.size();
    let mut a_bar = Tensor::zeros_shaped(a.shape());
    if n == 0 {
        return a_bar;
    }
    let m = x.as_slice().len() / n;
    let (b_bar, x) = (b_bar.as_slice(), x.as_slice());
    for (i, row) in a_bar.as_mut_slice().chunks_exact_mut(n).enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            *entry = -(0..m).fold(T::zero(), |total, c| total + b_bar[i * m + c] * x[j * m + c]);
        }
    }
    a_bar
}

/// The cotangents of x = A⁻¹b given x and x̄: (Ā, b̄) = (−b̄·xᵀ, A⁻ᵀx̄).
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or Aᵀ has a zero pivot.
pub fn solve_pullback<T: RealScalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    x_bar: &Tensor<T, B, K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, B, K>) {
    or_panic(x.check_same_shape(x_bar, "solve_pullback"));
    let b_bar = transposed_solve(a, x_bar);
    (matrix_cotangent(a, &b_bar, x), b_bar)
}

/// The tangent of x = A⁻¹b given x: ẋ = A⁻¹(ḃ − Ȧ·x), a missing tangent zero.
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or A has a zero pivot.
pub fn solve_push<T: RealScalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    a_dot: Option<&Tensor<T, (N, N), K>>,
    b_dot: Option<&Tensor<T, B, K>>,
) -> Tensor<T, B, K> {
    or_panic(check_system(a.dims(), x.dims()));
    let mut x_dot = match b_dot {
        Some(b_dot) => {
            or_panic(x.check_same_shape(b_dot, "solve_push"));
            b_dot.clone()
        }
        None => Tensor::zeros_shaped(x.shape()),
    };
    if let Some(a_dot) = a_dot {
        or_panic(a.check_same_shape(a_dot, "solve_push"));
    }
    // ḃ − Ȧ·x, row by row (nothing to do without elements).
    if let Some(a_dot) = a_dot.filter(|_| !x.is_empty()) {
        let (n, elements) = (a.shape().0.size(), x.len());
        let (m, a_dot, x) = (elements / n, a_dot.as_slice(), x.as_slice());
        for (i, row) in x_dot.as_mut_slice().chunks_exact_mut(m).enumerate() {
            for (c, entry) in row.iter_mut().enumerate() {
                *entry = (0..n).fold(*entry, |total, j| total - a_dot[i * n + j] * x[j * m + c]);
            }
        }
    }
    or_panic(eliminate(a, Orientation::AsIs, &mut x_dot));
    x_dot
}
