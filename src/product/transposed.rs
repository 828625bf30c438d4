//! Matrix products with a transposed operand, computed without copying it:
//!
//! | method | meaning | shapes |
//! | --- | --- | --- |
//! | [`matmul_transposed`](crate::Tensor::matmul_transposed) | (A·Bᵀ)ᵢⱼ = Σₖ AᵢₖBⱼₖ | `[M, K]×[N, K] → [M, N]` |
//! | [`transposed_matmul`](crate::Tensor::transposed_matmul) | (Aᵀ·B)ᵢⱼ = Σₖ AₖᵢBₖⱼ | `[K, M]×[K, N] → [M, N]` |
//!
//! They equal `a.matmul(&b.transpose())` and `a.transpose().matmul(&b)` (up to
//! rounding), but the kernel reads the transposed operand in place, through swapped
//! strides, instead of copying it first. The transpose is the plain one: nothing is
//! conjugated, on complex data too. This is what a layer storing its weights
//! `[out, in]` (as PyTorch does) needs for a batch of rows: `x.matmul_transposed(&w)`.
//!
//! The pullbacks are the adjoints of the differentials under the real inner product
//! ⟨U, V⟩ = Re Σ conj(Uᵢⱼ)·Vᵢⱼ (the crate's complex convention), and are themselves
//! products with a transposed operand, so they copy nothing either:
//!
//! | product | Ā | B̄ |
//! | --- | --- | --- |
//! | Y = A·Bᵀ | Ȳ·conj(B) (`[M, N]×[N, K]`) | Ȳᵀ·conj(A) (`[N, M]×[M, K]`) |
//! | Y = Aᵀ·B | conj(B)·Ȳᵀ (`[K, N]×[N, M]`) | conj(A)·Ȳ (`[K, M]×[M, N]`) |
//!
//! On real data the conjugations vanish: Ā = Ȳ·B and B̄ = Ȳᵀ·A for A·Bᵀ.
//!
//! The shared dimension is one type parameter repeated, so a static mismatch is a
//! compile error; a dynamic mismatch is a [`ShapeError`] naming both shapes.

use crate::backend::cpu::{MatRef, Write, matmul_into, matmul_write};
use crate::error::{ShapeError, or_panic};
use crate::product::matmul::{check_output, elements};
use crate::scalar::Scalar;
use crate::shape::{Dim, Shape};
use crate::tensor::{Storage, StorageKind, Tensor};

/// The product of `Self` by the transpose of `Rhs`: A·Bᵀ.
#[diagnostic::on_unimplemented(
    message = "cannot multiply `{Self}` by the transpose of `{Rhs}`",
    label = "both operands must be matrices with the same number of columns, on one device",
    note = "matmul_transposed takes [M, K]×[N, K] → [M, N]: the two operands' last dimensions must agree",
    note = "both operands must be in the same storage kind (copy one with `.to_device()` or `.to_host()`)"
)]
pub trait MatMulTransposed<Rhs> {
    /// The product's type.
    type Output;

    /// A·Bᵀ, or an error naming both shapes when the dynamic column counts differ.
    fn try_matmul_transposed(&self, rhs: &Rhs) -> Result<Self::Output, ShapeError>;

    /// Writes A·Bᵀ into `out` (no allocation), or returns an error naming the shapes
    /// when a dynamic column count or output dimension differs.
    fn try_matmul_transposed_into(&self, rhs: &Rhs, out: &mut Self::Output) -> Result<(), ShapeError>;

    /// Reverse-mode rule: given Ȳ, the cotangents Ā = Ȳ·conj(B) and B̄ = Ȳᵀ·conj(A),
    /// each computed only when it is wanted and then written into its buffer or added
    /// to it as its [`Write`] says.
    ///
    /// # Panics
    /// When a cotangent's size differs from its operand's.
    fn matmul_transposed_pullback(
        &self,
        rhs: &Rhs,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Rhs, Write)>,
    ) where
        Self: Sized,
        Rhs: Sized;
}

/// The product of the transpose of `Self` by `Rhs`: Aᵀ·B.
#[diagnostic::on_unimplemented(
    message = "cannot multiply the transpose of `{Self}` by `{Rhs}`",
    label = "both operands must be matrices with the same number of rows, on one device",
    note = "transposed_matmul takes [K, M]×[K, N] → [M, N]: the two operands' first dimensions must agree",
    note = "both operands must be in the same storage kind (copy one with `.to_device()` or `.to_host()`)"
)]
pub trait TransposedMatMul<Rhs> {
    /// The product's type.
    type Output;

    /// Aᵀ·B, or an error naming both shapes when the dynamic row counts differ.
    fn try_transposed_matmul(&self, rhs: &Rhs) -> Result<Self::Output, ShapeError>;

    /// Writes Aᵀ·B into `out` (no allocation), or returns an error naming the shapes
    /// when a dynamic row count or output dimension differs.
    fn try_transposed_matmul_into(&self, rhs: &Rhs, out: &mut Self::Output) -> Result<(), ShapeError>;

    /// Reverse-mode rule: given Ȳ, the cotangents Ā = conj(B)·Ȳᵀ and B̄ = conj(A)·Ȳ,
    /// each computed only when it is wanted and then written into its buffer or added
    /// to it as its [`Write`] says.
    ///
    /// # Panics
    /// When a cotangent's size differs from its operand's.
    fn transposed_matmul_pullback(
        &self,
        rhs: &Rhs,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Rhs, Write)>,
    ) where
        Self: Sized,
        Rhs: Sized;
}

/// The error of `matmul_transposed` when the operands' column counts differ.
pub(crate) fn columns_mismatch<A: Shape, B: Shape>(lhs: &A, rhs: &B) -> ShapeError {
    ShapeError::new(
        "matmul_transposed",
        lhs.dims(),
        rhs.dims(),
        "A·Bᵀ takes [M, K]×[N, K]: the two operands must have the same number of columns",
    )
}

/// The error of `transposed_matmul` when the operands' row counts differ.
pub(crate) fn rows_mismatch<A: Shape, B: Shape>(lhs: &A, rhs: &B) -> ShapeError {
    ShapeError::new(
        "transposed_matmul",
        lhs.dims(),
        rhs.dims(),
        "Aᵀ·B takes [K, M]×[K, N]: the two operands must have the same number of rows",
    )
}

impl<T: Scalar, S: Shape, K: StorageKind<T, S>> Tensor<T, S, K> {
    /// A·Bᵀ for A of shape `[M, K]` and B of shape `[N, K]`, reading B in place (see
    /// [`MatMulTransposed`]): the transpose is on the right, as in `x·Wᵀ` for weights
    /// stored `[out, in]`. For Aᵀ·B, see [`Tensor::transposed_matmul`].
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let x: Matrix<f64, 1, 3> = Matrix::from_array([[1., 2., 3.]]);
    /// // Weights stored [out, in], as PyTorch stores them.
    /// let w: Matrix<f64, 2, 3> = Matrix::from_array([[1., 0., 0.], [0., 1., 1.]]);
    /// let y: Matrix<f64, 1, 2> = x.matmul_transposed(&w);
    /// assert_eq!(y.to_array(), [[1., 5.]]);
    /// ```
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    /// let x: Matrix<f64, 1, 3> = Matrix::zeros();
    /// let w: Matrix<f64, 3, 2> = Matrix::zeros();
    /// x.matmul_transposed(&w); // column counts 3 and 2 differ
    /// ```
    #[track_caller]
    #[inline(always)]
    pub fn matmul_transposed<Rhs>(&self, rhs: &Rhs) -> <Self as MatMulTransposed<Rhs>>::Output
    where
        Self: MatMulTransposed<Rhs>,
    {
        or_panic(self.try_matmul_transposed(rhs))
    }

    /// [`Tensor::matmul_transposed`] that returns an error naming both shapes on a
    /// dynamic mismatch.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(3)));
    /// let b = DMatrix::<f64>::zeros_shaped((Dyn(4), Dyn(5)));
    /// let error = a.try_matmul_transposed(&b).unwrap_err();
    /// assert_eq!(error.operation(), "matmul_transposed");
    /// assert_eq!((error.lhs().as_slice(), error.rhs().as_slice()), (&[2, 3][..], &[4, 5][..]));
    /// ```
    #[inline(always)]
    pub fn try_matmul_transposed<Rhs>(
        &self,
        rhs: &Rhs,
    ) -> Result<<Self as MatMulTransposed<Rhs>>::Output, ShapeError>
    where
        Self: MatMulTransposed<Rhs>,
    {
        MatMulTransposed::try_matmul_transposed(self, rhs)
    }

    /// A·Bᵀ written into `out`, which is overwritten: no allocation.
    #[track_caller]
    #[inline(always)]
    pub fn matmul_transposed_into<Rhs>(&self, rhs: &Rhs, out: &mut <Self as MatMulTransposed<Rhs>>::Output)
    where
        Self: MatMulTransposed<Rhs>,
    {
        or_panic(self.try_matmul_transposed_into(rhs, out));
    }

    /// Aᵀ·B for A of shape `[K, M]` and B of shape `[K, N]`, reading A in place (see
    /// [`TransposedMatMul`]): the transpose is on the left, as in the weight gradient
    /// `Ȳᵀ·X`. For A·Bᵀ, see [`Tensor::matmul_transposed`].
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let b: Matrix<f64, 2, 1> = Matrix::from_array([[1.], [-1.]]);
    /// let y: Matrix<f64, 3, 1> = a.transposed_matmul(&b);
    /// assert_eq!(y.to_array(), [[-3.], [-3.], [-3.]]);
    /// ```
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::zeros();
    /// a.transposed_matmul(&a.transpose()); // row counts 2 and 3 differ
    /// ```
    #[track_caller]
    #[inline(always)]
    pub fn transposed_matmul<Rhs>(&self, rhs: &Rhs) -> <Self as TransposedMatMul<Rhs>>::Output
    where
        Self: TransposedMatMul<Rhs>,
    {
        or_panic(self.try_transposed_matmul(rhs))
    }

    /// [`Tensor::transposed_matmul`] that returns an error naming both shapes on a
    /// dynamic mismatch.
    #[inline(always)]
    pub fn try_transposed_matmul<Rhs>(
        &self,
        rhs: &Rhs,
    ) -> Result<<Self as TransposedMatMul<Rhs>>::Output, ShapeError>
    where
        Self: TransposedMatMul<Rhs>,
    {
        TransposedMatMul::try_transposed_matmul(self, rhs)
    }

    /// Aᵀ·B written into `out`, which is overwritten: no allocation.
    #[track_caller]
    #[inline(always)]
    pub fn transposed_matmul_into<Rhs>(&self, rhs: &Rhs, out: &mut <Self as TransposedMatMul<Rhs>>::Output)
    where
        Self: TransposedMatMul<Rhs>,
    {
        or_panic(self.try_transposed_matmul_into(rhs, out));
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, I: Dim, N: Dim, K> MatMulTransposed<Tensor<T, (N, I), K>> for Tensor<T, (M, I), K>
where
    K: Storage<T, (M, I)> + Storage<T, (N, I)> + Storage<T, (M, N)>,
{
    type Output = Tensor<T, (M, N), K>;

    #[inline(always)]
    fn try_matmul_transposed(&self, rhs: &Tensor<T, (N, I), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().0, rhs.shape().0));
        self.try_matmul_transposed_into(rhs, &mut out)?;
        Ok(out)
    }

    #[inline(always)]
    fn try_matmul_transposed_into(
        &self,
        rhs: &Tensor<T, (N, I), K>,
        out: &mut Self::Output,
    ) -> Result<(), ShapeError> {
        let ((m, i), (n, i2)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(columns_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_transposed_into", out, (m, n))?;
        let (m, k, n) = (m.size(), i.size(), n.size());
        matmul_into(
            (m, k, n),
            MatRef::row_major(self.as_slice(), k),
            MatRef::transposed(rhs.as_slice(), k),
            (false, false),
            out.as_mut_slice(),
        );
        Ok(())
    }

    #[inline(always)]
    fn matmul_transposed_pullback(
        &self,
        rhs: &Tensor<T, (N, I), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (N, I), K>, Write)>,
    ) {
        let (m, k, n) = (self.shape().0.size(), self.shape().1.size(), rhs.shape().0.size());
        let (a, b, y_bar) = (self.as_slice(), rhs.as_slice(), out_bar.as_slice());
        if let Some((a_bar, write)) = elements(lhs_bar) {
            // Ā (m×k) = Ȳ (m×n) · conj(B) (n×k).
            let (y_bar, b) = (MatRef::row_major(y_bar, n), MatRef::row_major(b, k));
            matmul_write(write, (m, n, k), y_bar, b, (false, true), a_bar);
        }
        if let Some((b_bar, write)) = elements(rhs_bar) {
            // B̄ (n×k) = Ȳᵀ (n×m) · conj(A) (m×k).
            let (y_bar_t, a) = (MatRef::transposed(y_bar, n), MatRef::row_major(a, k));
            matmul_write(write, (n, m, k), y_bar_t, a, (false, true), b_bar);
        }
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, I: Dim, M: Dim, N: Dim, K> TransposedMatMul<Tensor<T, (I, N), K>> for Tensor<T, (I, M), K>
where
    K: Storage<T, (I, M)> + Storage<T, (I, N)> + Storage<T, (M, N)>,
{
    type Output = Tensor<T, (M, N), K>;

    #[inline(always)]
    fn try_transposed_matmul(&self, rhs: &Tensor<T, (I, N), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().1, rhs.shape().1));
        self.try_transposed_matmul_into(rhs, &mut out)?;
        Ok(out)
    }

    #[inline(always)]
    fn try_transposed_matmul_into(
        &self,
        rhs: &Tensor<T, (I, N), K>,
        out: &mut Self::Output,
    ) -> Result<(), ShapeError> {
        let ((i, m), (i2, n)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(rows_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("transposed_matmul_into", out, (m, n))?;
        let (m, k, n) = (m.size(), i.size(), n.size());
        matmul_into(
            (m, k, n),
            MatRef::transposed(self.as_slice(), m),
            MatRef::row_major(rhs.as_slice(), n),
            (false, false),
            out.as_mut_slice(),
        );
        Ok(())
    }

    #[inline(always)]
    fn transposed_matmul_pullback(
        &self,
        rhs: &Tensor<T, (I, N), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (I, N), K>, Write)>,
    ) {
        let (k, m, n) = (self.shape().0.size(), self.shape().1.size(), rhs.shape().1.size());
        let (a, b, y_bar) = (self.as_slice(), rhs.as_slice(), out_bar.as_slice());
        if let Some((a_bar, write)) = elements(lhs_bar) {
            // Ā (k×m) = conj(B) (k×n) · Ȳᵀ (n×m).
            let (b, y_bar_t) = (MatRef::row_major(b, n), MatRef::transposed(y_bar, n));
            matmul_write(write, (k, n, m), b, y_bar_t, (true, false), a_bar);
        }
        if let Some((b_bar, write)) = elements(rhs_bar) {
            // B̄ (k×n) = conj(A) (k×m) · Ȳ (m×n).
            let (a, y_bar) = (MatRef::row_major(a, m), MatRef::row_major(y_bar, n));
            matmul_write(write, (k, m, n), a, y_bar, (true, false), b_bar);
        }
    }
}
