//! `matmul`: (AB)ᵢⱼ = Σₖ AᵢₖBₖⱼ for `[M, K]×[K, N] → [M, N]`; matrix × vector
//! `[M, K]×[K] → [M]`; and batched `[B, M, K]×[B, K, N] → [B, M, N]`, one product per
//! batch entry. Never an outer product: use [`outer`](crate::Tensor::outer).
//!
//! The inner dimensions are one type parameter repeated, so a static mismatch is a
//! compile error; a dynamic mismatch is a [`ShapeError`].

use crate::backend::cpu::{MatRef, Write, matmul_into, matmul_write, matvec_pullback};
use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::{Dim, Shape};
use crate::tensor::{Storage, StorageKind, Tensor};

/// The matrix product of `Self` by `Rhs`.
#[diagnostic::on_unimplemented(
    message = "cannot matmul `{Self}` by `{Rhs}`",
    label = "the inner (and batch) dimensions must agree, and both operands be alike: of one storage kind, plain, traced or dual",
    note = "matmul takes [M, K]×[K, N] → [M, N], [M, K]×[K] → [M], [B, M, K]×[B, K, N] → [B, M, N] and [B, M, K]×[K, N] → [B, M, N]: the left's last dimension must equal the right's first matrix dimension, and batch sizes must agree",
    note = "both operands must be in the same storage kind: `Matrix<T, M, N>` and `Vector<T, N>` are `Inline` unless their last parameter says `Heap`, batches and layers' weights are `Heap` (convert with `.to_storage::<Heap>()`), and a GPU tensor multiplies only a GPU tensor (`.to_device()`, `.to_host()`); and both plain, traced or dual (a plain tensor beside a traced or dual one is `Var::constant(t)` or `CudaDual::constant(t)`)"
)]
pub trait MatMul<Rhs> {
    /// The product's type.
    type Output;

    /// The product, or an error naming both shapes when a dynamic inner or batch
    /// dimension differs.
    fn try_matmul(&self, rhs: &Rhs) -> Result<Self::Output, ShapeError>;

    /// The product (a method of this trait, in the prelude, so that a product of the
    /// wrong sizes is reported as that, in one error).
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    /// let x: Vector<f64, 3> = Vector::from_array([1., 0., -1.]);
    /// let y: Vector<f64, 2> = a.matmul(&x);
    /// assert_eq!(y.to_array(), [-2., -2.]);
    /// ```
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 3> = Matrix::zeros();
    /// a.matmul(&a); // inner dimensions 3 and 2 differ
    /// ```
    ///
    /// # Panics
    /// When a dynamic inner or batch dimension differs (the message names both shapes).
    #[track_caller]
    #[inline(always)]
    fn matmul(&self, rhs: &Rhs) -> Self::Output {
        or_panic(self.try_matmul(rhs))
    }

    /// Writes the product into `out` (no allocation), or returns an error naming the
    /// shapes when a dynamic inner, batch or output dimension differs.
    fn try_matmul_into(&self, rhs: &Rhs, out: &mut Self::Output) -> Result<(), ShapeError>;

    /// Reverse-mode rule: given the output's cotangent Ȳ, the cotangents
    /// Ā = Ȳ·Bᴴ and B̄ = Aᴴ·Ȳ, each computed only when it is wanted and then written
    /// into its buffer or added to it as its [`Write`] says. (A vector operand counts
    /// as a one-column matrix.)
    ///
    /// # Panics
    /// When a cotangent's size differs from its operand's.
    fn matmul_pullback(
        &self,
        rhs: &Rhs,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Rhs, Write)>,
    ) where
        Self: Sized,
        Rhs: Sized;
}

/// out = A·B for one m×k by k×n product of row-major slices.
#[inline(always)]
fn row_major_product<T: Scalar>((m, k, n): (usize, usize, usize), a: &[T], b: &[T], out: &mut [T]) {
    matmul_into((m, k, n), MatRef::row_major(a, k), MatRef::row_major(b, n), (false, false), out);
}

/// Ā = Ȳ·Bᴴ and B̄ = Aᴴ·Ȳ, each when wanted, for one m×k by k×n product (row-major
/// slices).
#[inline(always)]
fn pullback_2d<T: Scalar>(
    (m, k, n): (usize, usize, usize),
    (a, b, out_bar): (&[T], &[T], &[T]),
    a_bar: Option<(&mut [T], Write)>,
    b_bar: Option<(&mut [T], Write)>,
) {
    if let Some((a_bar, write)) = a_bar {
        let (y, b) = (MatRef::row_major(out_bar, n), MatRef::transposed(b, n));
        matmul_write(write, (m, n, k), y, b, (false, true), a_bar);
    }
    if let Some((b_bar, write)) = b_bar {
        let (a, y) = (MatRef::transposed(a, k), MatRef::row_major(out_bar, n));
        matmul_write(write, (k, m, n), a, y, (true, false), b_bar);
    }
}

impl<T: Scalar, S: Shape, K: StorageKind<T, S>> Tensor<T, S, K> {
    /// The matrix product written into `out`, which is overwritten: no allocation, for
    /// loops that reuse their buffers.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    /// let mut out: Matrix<f64, 2, 2> = Matrix::zeros();
    /// a.matmul_into(&a, &mut out);
    /// assert_eq!(out.to_array(), [[7., 10.], [15., 22.]]);
    /// ```
    #[track_caller]
    #[inline(always)]
    pub fn matmul_into<Rhs>(&self, rhs: &Rhs, out: &mut <Self as MatMul<Rhs>>::Output)
    where
        Self: MatMul<Rhs>,
    {
        or_panic(MatMul::try_matmul_into(self, rhs, out));
    }
}

/// Never implemented: makes `vector.matmul(&vector)` a compile error that names the
/// products that are meant instead.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "matmul of two vectors is not defined: for the scalar Σ xᵢyᵢ use `.dot()` (or `.inner()` on complex data), for the matrix xᵢyⱼ `.outer()`",
    label = "both operands are vectors"
)]
pub trait NotVectorTimesVector {}

/// A cotangent buffer with its [`Write`], as a slice.
pub(crate) fn elements<T: Scalar, S: Shape, K: Storage<T, S>>(
    cotangent: Option<(&mut Tensor<T, S, K>, Write)>,
) -> Option<(&mut [T], Write)> {
    cotangent.map(|(tensor, write)| (tensor.as_mut_slice(), write))
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, N: Dim, K> MatMul<Tensor<T, (N,), K>> for Tensor<T, (M,), K>
where
    K: Storage<T, (M,)> + Storage<T, (N,)>,
    Self: NotVectorTimesVector,
{
    type Output = T;

    fn try_matmul(&self, _: &Tensor<T, (N,), K>) -> Result<T, ShapeError> {
        unreachable!("vector × vector matmul is rejected at compile time")
    }

    fn try_matmul_into(&self, _: &Tensor<T, (N,), K>, _: &mut T) -> Result<(), ShapeError> {
        unreachable!("vector × vector matmul is rejected at compile time")
    }

    fn matmul_pullback(
        &self,
        _: &Tensor<T, (N,), K>,
        _: &T,
        _: Option<(&mut Self, Write)>,
        _: Option<(&mut Tensor<T, (N,), K>, Write)>,
    ) {
        unreachable!("vector × vector matmul is rejected at compile time")
    }
}

/// Checks that `out` has the product's shape; the error names `operation`.
pub(crate) fn check_output<T, S: Shape, K: StorageKind<T, S>>(
    operation: &'static str,
    out: &Tensor<T, S, K>,
    expected: S,
) -> Result<(), ShapeError> {
    if out.shape() == expected {
        Ok(())
    } else {
        Err(ShapeError::new(
            operation,
            out.dims(),
            expected.dims(),
            "the output must have the product's shape",
        ))
    }
}

/// The error of a product whose inner (or batch) dimensions differ.
pub(crate) fn inner_mismatch<A: Shape, B: Shape>(lhs: &A, rhs: &B) -> ShapeError {
    ShapeError::new(
        "matmul",
        lhs.dims(),
        rhs.dims(),
        "the left's last dimension must equal the right's first matrix dimension, and batch sizes must agree",
    )
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, I: Dim, N: Dim, K> MatMul<Tensor<T, (I, N), K>> for Tensor<T, (M, I), K>
where
    K: Storage<T, (M, I)> + Storage<T, (I, N)> + Storage<T, (M, N)>,
{
    type Output = Tensor<T, (M, N), K>;

    #[inline(always)]
    fn try_matmul(&self, rhs: &Tensor<T, (I, N), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().0, rhs.shape().1));
        self.try_matmul_into(rhs, &mut out)?;
        Ok(out)
    }

    #[inline(always)]
    fn try_matmul_into(&self, rhs: &Tensor<T, (I, N), K>, out: &mut Self::Output) -> Result<(), ShapeError> {
        let ((m, i), (i2, n)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(inner_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_into", out, (m, n))?;
        row_major_product(
            (m.size(), i.size(), n.size()),
            self.as_slice(),
            rhs.as_slice(),
            out.as_mut_slice(),
        );
        Ok(())
    }

    #[inline(always)]
    fn matmul_pullback(
        &self,
        rhs: &Tensor<T, (I, N), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (I, N), K>, Write)>,
    ) {
        let (m, k) = (self.shape().0.size(), self.shape().1.size());
        pullback_2d(
            (m, k, rhs.shape().1.size()),
            (self.as_slice(), rhs.as_slice(), out_bar.as_slice()),
            elements(lhs_bar),
            elements(rhs_bar),
        );
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, M: Dim, I: Dim, K> MatMul<Tensor<T, (I,), K>> for Tensor<T, (M, I), K>
where
    K: Storage<T, (M, I)> + Storage<T, (I,)> + Storage<T, (M,)>,
{
    type Output = Tensor<T, (M,), K>;

    #[inline(always)]
    fn try_matmul(&self, rhs: &Tensor<T, (I,), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().0,));
        self.try_matmul_into(rhs, &mut out)?;
        Ok(out)
    }

    #[inline(always)]
    fn try_matmul_into(&self, rhs: &Tensor<T, (I,), K>, out: &mut Self::Output) -> Result<(), ShapeError> {
        let ((m, i), (i2,)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(inner_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_into", out, (m,))?;
        row_major_product((m.size(), i.size(), 1), self.as_slice(), rhs.as_slice(), out.as_mut_slice());
        Ok(())
    }

    #[inline(always)]
    fn matmul_pullback(
        &self,
        rhs: &Tensor<T, (I,), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (I,), K>, Write)>,
    ) {
        let (a, x, y_bar) = (self.as_slice(), rhs.as_slice(), out_bar.as_slice());
        match (elements(lhs_bar), elements(rhs_bar)) {
            (Some(a_bar), Some(x_bar)) => matvec_pullback((a, x, y_bar), a_bar, x_bar),
            (a_bar, x_bar) => pullback_2d((y_bar.len(), x.len(), 1), (a, x, y_bar), a_bar, x_bar),
        }
    }
}

/// A batch of matrices by one matrix, [B, M, K]×[K, N] → [B, M, N] (PyTorch's
/// broadcasting `@`): row-major, the batch is one [B·M, K] matrix, so this is one
/// product, and its pullback's B̄ = Aᵀ·Ȳ sums over the batch in that same product.
#[diagnostic::do_not_recommend]
impl<T: Scalar, B: Dim, M: Dim, I: Dim, N: Dim, K> MatMul<Tensor<T, (I, N), K>> for Tensor<T, (B, M, I), K>
where
    K: Storage<T, (B, M, I)> + Storage<T, (I, N)> + Storage<T, (B, M, N)>,
{
    type Output = Tensor<T, (B, M, N), K>;

    fn try_matmul(&self, rhs: &Tensor<T, (I, N), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().0, self.shape().1, rhs.shape().1));
        self.try_matmul_into(rhs, &mut out)?;
        Ok(out)
    }

    fn try_matmul_into(&self, rhs: &Tensor<T, (I, N), K>, out: &mut Self::Output) -> Result<(), ShapeError> {
        let ((b, m, i), (i2, n)) = (self.shape(), rhs.shape());
        if i != i2 {
            return Err(inner_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_into", out, (b, m, n))?;
        let sizes = (b.size() * m.size(), i.size(), n.size());
        row_major_product(sizes, self.as_slice(), rhs.as_slice(), out.as_mut_slice());
        Ok(())
    }

    #[inline(always)]
    fn matmul_pullback(
        &self,
        rhs: &Tensor<T, (I, N), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (I, N), K>, Write)>,
    ) {
        let (b, m, k) = self.shape();
        pullback_2d(
            (b.size() * m.size(), k.size(), rhs.shape().1.size()),
            (self.as_slice(), rhs.as_slice(), out_bar.as_slice()),
            elements(lhs_bar),
            elements(rhs_bar),
        );
    }
}

#[diagnostic::do_not_recommend]
impl<T: Scalar, B: Dim, M: Dim, I: Dim, N: Dim, K> MatMul<Tensor<T, (B, I, N), K>> for Tensor<T, (B, M, I), K>
where
    K: Storage<T, (B, M, I)> + Storage<T, (B, I, N)> + Storage<T, (B, M, N)>,
{
    type Output = Tensor<T, (B, M, N), K>;

    fn try_matmul(&self, rhs: &Tensor<T, (B, I, N), K>) -> Result<Self::Output, ShapeError> {
        let mut out = Tensor::zeros_shaped((self.shape().0, self.shape().1, rhs.shape().2));
        self.try_matmul_into(rhs, &mut out)?;
        Ok(out)
    }

    fn try_matmul_into(
        &self,
        rhs: &Tensor<T, (B, I, N), K>,
        out: &mut Self::Output,
    ) -> Result<(), ShapeError> {
        let ((b, m, i), (b2, i2, n)) = (self.shape(), rhs.shape());
        if i != i2 || b != b2 {
            return Err(inner_mismatch(&self.shape(), &rhs.shape()));
        }
        check_output("matmul_into", out, (b, m, n))?;
        let (m, k, n) = (m.size(), i.size(), n.size());
        if m * k == 0 || k * n == 0 {
            out.as_mut_slice().fill(T::zero());
            return Ok(());
        }
        let lhs_batches = self.as_slice().chunks_exact(m * k);
        let rhs_batches = rhs.as_slice().chunks_exact(k * n);
        for ((a, b), c) in lhs_batches.zip(rhs_batches).zip(out.as_mut_slice().chunks_exact_mut(m * n)) {
            row_major_product((m, k, n), a, b, c);
        }
        Ok(())
    }

    #[inline(always)]
    fn matmul_pullback(
        &self,
        rhs: &Tensor<T, (B, I, N), K>,
        out_bar: &Self::Output,
        lhs_bar: Option<(&mut Self, Write)>,
        rhs_bar: Option<(&mut Tensor<T, (B, I, N), K>, Write)>,
    ) {
        let (batches, m, k) = self.shape();
        let (batches, m, k, n) = (batches.size(), m.size(), k.size(), rhs.shape().2.size());
        fn batch<T>(data: &[T], size: usize, index: usize) -> &[T] {
            &data[index * size..][..size]
        }
        fn batch_mut<'a, T>(
            cotangent: &'a mut Option<(&mut [T], Write)>,
            size: usize,
            index: usize,
        ) -> Option<(&'a mut [T], Write)> {
            cotangent.as_mut().map(|(data, write)| (&mut data[index * size..][..size], *write))
        }
        let (mut lhs_bar, mut rhs_bar) = (elements(lhs_bar), elements(rhs_bar));
        for index in 0..batches {
            pullback_2d(
                (m, k, n),
                (
                    batch(self.as_slice(), m * k, index),
                    batch(rhs.as_slice(), k * n, index),
                    batch(out_bar.as_slice(), m * n, index),
                ),
                batch_mut(&mut lhs_bar, m * k, index),
                batch_mut(&mut rhs_bar, k * n, index),
            );
        }
    }
}
