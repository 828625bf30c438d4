//! Linear algebra of matrices, on any real scalar (duals included) and, for all
//! but the symmetric eigendecomposition (whose complex form is the Hermitian one),
//! on complex ones too (`Complex32`, `Complex64`, complex duals):
//! - `a.solve(&b)`: x = A⁻¹b for b a vector or a matrix whose columns are solved
//!   together, by Gaussian elimination with partial pivoting (LAPACK's `gesv`,
//!   `torch.linalg.solve`, `jnp.linalg.solve`);
//! - `a.inverse()`: A⁻¹, the same elimination on the identity;
//! - `a.determinant()` and `a.log_abs_determinant()`: det A = ±∏ uᵢᵢ and ln|det A| =
//!   Σ ln|uᵢᵢ| from the pivots uᵢᵢ of that elimination (±: the parity of its row
//!   swaps); 0 and −∞ for a singular matrix;
//! - `a.cholesky()`: the lower-triangular L with L·Lᵀ = ½(A + Aᵀ) for a symmetric
//!   positive definite A (LAPACK's `potrf`; the symmetrised input as
//!   `jax.numpy.linalg.cholesky`'s, so a derivative in A is symmetric), and for a
//!   complex A, L·Lᴴ = ½(A + Aᴴ) with a real positive diagonal (Hermitian);
//! - `t.solve_lower_triangular(&b)`, `t.solve_upper_triangular(&b)`: x = T⁻¹b for T
//!   one triangle of t (the other not read), by substitution in O(n²) per column
//!   (`jax.scipy.linalg.solve_triangular`, LAPACK's `trtrs`);
//! - `a.symmetric_eigenvalues()`: the eigenvalues of ½(A + Aᵀ), ascending
//!   (`torch.linalg.eigvalsh`), by Householder reflections to a tridiagonal matrix
//!   T = QᵀAQ, then implicit QR steps with Wilkinson's shift on T (LAPACK's `sytrd`
//!   and `steqr`, O(n³)); `a.symmetric_eigenvectors()`, the orthonormal eigenvectors
//!   in their order, Q times the QR steps' rotations, each column's largest entry
//!   positive (`torch.linalg.eigh`'s second output), and `a.symmetric_eigen()`,
//!   both from one run (`torch.linalg.eigh`); for a complex A,
//!   `a.hermitian_eigenvalues()` and `a.hermitian_eigen()`, of ½(A + Aᴴ), λ real,
//!   the tridiagonal matrix made real by a diagonal of phases, and each
//!   eigenvector's phase fixed by its entry of largest magnitude, made real and
//!   positive;
//! - `a.matrix_exp()`: e^A = Σₖ Aᵏ/k!, by scaling and squaring the [m/m] Padé
//!   approximant r: e^A = r(A/2ˢ)^(2ˢ), m ≤ 13 and s read from ‖A‖₁ (Higham, 2005,
//!   as `jax.scipy.linalg.expm`; `torch.linalg.matrix_exp`); a matrix whose 1-norm
//!   overflows (entries near the largest finite value) gives NaN;
//! - `a.qr()`: A = Q·R for an m×n A with m ≥ n, Q with orthonormal columns and R
//!   upper triangular with a real non-negative diagonal, by Householder reflections
//!   (Hermitian ones, I − τ·v·vᴴ with τ real, on complex A; LAPACK's `geqrf`,
//!   `torch.linalg.qr`'s reduced mode), and `a.least_squares(&b)`: x minimising
//!   ‖A·x − b‖, x = R⁻¹·Qᴴb for A of full column rank (LAPACK's `gels`,
//!   `torch.linalg.lstsq`), never forming AᴴA;
//! - `a.singular_values()`: σ₁ ≥ … ≥ σₙ ≥ 0 of an m×n A with m ≥ n, A = U·diag(σ)·Vᴴ,
//!   by one-sided Jacobi rotations of A's columns (Hestenes; `torch.linalg.svdvals`;
//!   on complex A each rotation first turns one column's phase so that the pair's
//!   inner product is real), and `a.svd()`: (U, σ, Vᴴ), the thin decomposition, V
//!   accumulated from the same rotations and each column of V's largest entry real
//!   and positive (`torch.linalg.svd` with `full_matrices=False`); σ is real for
//!   complex A too;
//! - `a.pseudo_inverse()`: A⁺ = V·diag(σ⁺)·Uᴴ for A of any shape (the SVD of Aᴴ when
//!   it is wide), σ at most max(m, n)·ε·σ₁ taken as 0 (`torch.linalg.pinv`); A⁺·b is
//!   the least-squares solution of least norm;
//! - `a.diagonal()`: (a₁₁, …, aₙₙ), and `v.diagonal_matrix()`, its adjoint, on any
//!   scalar.
//!
//! A Gaussian's log-density, or a Gaussian process's marginal likelihood, takes one
//! factorisation: with L = chol(Σ), z = L⁻¹x gives ½xᵀΣ⁻¹x = ½|z|² and ½ ln det Σ =
//! Σᵢ ln lᵢᵢ (`l.diagonal().ln().sum()`).
//!
//! Derivatives (⟨X, Y⟩ = Σᵢⱼ XᵢⱼYᵢⱼ, Φ(X) the lower triangle of X with its diagonal
//! halved, sym(X) = ½(X + Xᵀ)), for real matrices; on complex ones, with the
//! crate's convention (a cotangent is ∂L/∂Re + i·∂L/∂Im, the adjoint under ⟨X, Y⟩ =
//! Re Σᵢⱼ conj(Xᵢⱼ)·Yᵢⱼ), the same formulas with each transpose conjugated (Aᴴ for
//! Aᵀ, herm(X) = ½(X + Xᴴ) for sym), the determinant's as Ā = ȳ·conj(y)·A⁻ᴴ and
//! ln|det A|'s tangent as Re tr(A⁻¹·Ȧ):
//! - x = A⁻¹b: ẋ = A⁻¹(ḃ − Ȧ·x); b̄ = A⁻ᵀx̄ (a second elimination, on Aᵀ), Ā = −b̄·xᵀ;
//! - Y = A⁻¹: Ẏ = −Y·Ȧ·Y; Ā = −Yᵀ·Ȳ·Yᵀ (products only);
//! - y = det A: ẏ = y·⟨A⁻ᵀ, Ȧ⟩, Ā = ȳ·y·A⁻ᵀ; y = ln|det A|: ẏ = ⟨A⁻ᵀ, Ȧ⟩, Ā = ȳ·A⁻ᵀ;
//! - L = chol(A): L̇ = L·Φ(L⁻¹·sym(Ȧ)·L⁻ᵀ); Ā = sym(L⁻ᵀ·Φ(Lᵀ·L̄)·L⁻¹) (triangular
//!   solves and products);
//! - x = T⁻¹b, T triangular: as for `solve`, with T̄ = −b̄·xᵀ kept on T's triangle
//!   (the other is not read: its cotangent is 0) and Ṫ read on it;
//! - λ = eig(sym(A)) with orthonormal eigenvectors vᵢ (the columns of V): λ̇ᵢ =
//!   vᵢᵀ·Ȧ·vᵢ, Ā = V·diag(λ̄)·Vᵀ (where the eigenvalues are distinct; at a repeated
//!   one the sorted eigenvalues have no derivative and these formulas pick one);
//! - V, those eigenvectors: V̇ = V·(F∘(Vᵀ·sym(Ȧ)·V)), Ā = sym(V·(F∘(Vᵀ·V̄))·Vᵀ) (both
//!   together: Ā = sym(V·(diag(λ̄) + F∘(Vᵀ·V̄))·Vᵀ)), with F the reciprocal gaps
//!   fᵢⱼ = 1/(λⱼ − λᵢ) off the diagonal and 0 on it (the
//!   derivative of unit vectors whose signs stay fixed). At a repeated eigenvalue
//!   its vectors have no derivative: a tangent or cotangent that couples them is
//!   infinite or NaN, one that does not (a loss of the other vectors) stays finite.
//!   On duals (the eigenvalues' too), the rotations run on the values and each
//!   level of tangents is added by these formulas at the levels inside it, where
//!   it enters linearly: nested duals (forward over forward) get every order, also
//!   at diagonal matrices whose tangent is not, where no rotation runs (an exactly
//!   repeated pair's coupling is left 0);
//! - (λ, V) = eigh(herm(A)) for complex A: with P = Vᴴ·herm(Ȧ)·V, λ̇ = diag P and V̇ =
//!   V·(F∘P) + V·diag(iω), where iωⱼ turns column j's phase so that its anchor vᵣⱼ
//!   (the entry made real) stays real: ωⱼ = −Im(V·(F∘P))ᵣⱼ/vᵣⱼ; with J = Vᴴ·V̄ and G
//!   the matrix whose column j is −i·Im(jⱼⱼ)/vᵣⱼ times conj of V's row r, Ā =
//!   herm(V·(diag(λ̄) + F∘(J + G))·Vᴴ). A loss that does not depend on the phases has
//!   Im(jⱼⱼ) = 0, and G = 0;
//! - Y = e^A: Ẏ = L(A, Ȧ), the Fréchet derivative, computed by the product rule
//!   run through the algorithm beside its values (Ẋ·Y + X·Ẏ for each product,
//!   Q⁻¹(Ṗ − Q̇·R) for R = Q⁻¹P); Ā = L(Aᵀ, Ȳ), as ⟨L(A, E), G⟩ = ⟨E, L(Aᵀ, G)⟩ for
//!   a rational function with real coefficients (the m and s of A kept for Aᵀ);
//! - (Q, R) = qr(A): with E = Ȧ·R⁻¹, C = Qᵀ·E and U the upper-triangular matrix
//!   with uᵢⱼ = cᵢⱼ + cⱼᵢ above the diagonal and uᵢᵢ = cᵢᵢ (so that QᵀQ̇ = C − U is
//!   antisymmetric and Ṙ·R⁻¹ = U upper triangular), Q̇ = E − Q·U and Ṙ = U·R; Ā =
//!   (Q̄ + Q·S)·R⁻ᵀ, S the symmetric matrix whose upper triangle is that of
//!   R̄·Rᵀ − Qᵀ·Q̄ (triangular solves and products; R must have no zero on its
//!   diagonal). On complex A, where R's diagonal is kept real, QᴴQ̇ is
//!   skew-Hermitian with an imaginary diagonal that Ṙ·R⁻¹ has not: uᵢᵢ = Re cᵢᵢ,
//!   and S's diagonal is the real part of that of R̄·Rᴴ − Qᴴ·Q̄;
//! - x = A⁺b, the least-squares solution (A⁺ = R⁻¹Qᵀ), r = b − A·x: ẋ = A⁺(ḃ − Ȧ·x) +
//!   (AᵀA)⁻¹Ȧᵀr; b̄ = Q·R⁻ᵀx̄ and, with z = (AᵀA)⁻¹x̄ = R⁻¹R⁻ᵀx̄, Ā = r·zᵀ − b̄·xᵀ (the
//!   second terms vanish for a consistent system, r = 0);
//! - σ = svdvals(A), with U and V from the same rotations: σ̇ᵢ = uᵢᵀ·Ȧ·vᵢ, Ā =
//!   U·diag(σ̄)·Vᵀ (where the σᵢ are distinct; at a repeated one the sorted values
//!   have no derivative and these formulas pick one; at σᵢ = 0 the subgradient 0);
//! - (U, σ, Vᵀ) = svd(A): with P = Uᵀ·Ȧ·V, G and H the reciprocal gaps gᵢⱼ = 1/(σⱼ − σᵢ)
//!   and hᵢⱼ = 1/(σⱼ + σᵢ) off the diagonal (0 on it) and asym(X) = ½(X − Xᵀ), σ̇ =
//!   diag P, U̇ = U·(G∘sym(P) + H∘asym(P)) + (I − U·Uᵀ)·Ȧ·V·diag(σ)⁻¹ and V̇ = V·Ω for
//!   Ω = G∘sym(P) − H∘asym(P), so that the third output moves by −Ω·Vᵀ; with V̄ the
//!   transpose of that output's cotangent, J = Uᵀ·Ū and L = Vᵀ·V̄, Ā = (U·(diag(σ̄) +
//!   G∘asym(J + L) + H∘asym(J − L)) + (I − U·Uᵀ)·Ū·diag(σ)⁻¹)·Vᵀ. At σᵢ = 0, σ̇ᵢ and
//!   σ̄ᵢ's part are 0 (the subgradient, as for `singular_values`) and U's last term
//!   (absent when m = n) leaves that column out; two columns of U completed where
//!   σᵢ = σⱼ = 0 are not coupled. The vectors have a derivative where the σᵢ are
//!   distinct: a tangent or cotangent that couples two equal nonzero values is
//!   infinite or NaN, except on duals, where an exactly repeated pair's coupling is
//!   left 0. On duals the rotations run on the values and each level of tangents
//!   is added by these formulas at the levels inside it, as for the eigenvectors:
//!   nested duals get every order, at columns already orthogonal too. On complex A
//!   (P = Uᴴ·Ȧ·V, σ̇ = Re diag P, herm and skew for sym and asym), U and V share a
//!   free phase per column, fixed by V's anchor (its entry made real): V̇ = V·Ω
//!   gains the diagonal i·ωⱼ, ωⱼ = −Im(V·Ω)ᵣⱼ/vᵣⱼ, that keeps vᵣⱼ real, and U's
//!   coupling matrix the diagonal i·(ωⱼ + Im pⱼⱼ/σⱼ); in Ā, diag(σ̄) becomes
//!   diag(σ̄ᵢ + i·Im jᵢᵢ/σᵢ) and L gains lₖⱼ += −i·conj(vᵣₖ)·(Im jⱼⱼ + Im lⱼⱼ)/vᵣⱼ
//!   (zero for a loss that does not depend on the phases);
//! - Y = A⁺, where the rank of A does not change (Golub and Pereyra): Ẏ = −Y·Ȧ·Y +
//!   Y·Yᵀ·Ȧᵀ·(I − A·Y) + (I − Y·A)·Ȧᵀ·Yᵀ·Y; Ā = −Yᵀ·Ȳ·Yᵀ + (I − A·Y)·Ȳᵀ·Y·Yᵀ +
//!   Yᵀ·Y·Ȳᵀ·(I − Y·A) (products only, from A and Y; where the cutoff drops a σ that
//!   is not exactly 0, the truncated matrix's). On duals, Y of the values with each
//!   level of tangents added by Ẏ at the levels inside it: nested duals get every
//!   order, and repeated singular values, where the vectors have no derivative,
//!   are no obstacle;
//! - y = diag A: ẏ = diag Ȧ, Ā = ȳ on the diagonal of a zero matrix.
//!
//! A pivot that is exactly zero is an error ([`LinAlgError::Singular`]) for `solve`,
//! `inverse` and the triangular solves (a zero on the diagonal), and a diagonal
//! entry of R at most max(m, n)·ε times the largest one for `least_squares`
//! ([`LinAlgError::RankDeficient`], the `rcond` of PyTorch's and JAX's `lstsq`); a nearly singular
//! matrix gives the large values its conditioning implies, as LAPACK's does; a NaN
//! gives NaN. Where elimination meets a zero
//! pivot, `determinant` evaluates det A without division instead, so on duals its
//! tangent stays exact there; the tape's and static mode's derivatives of a
//! determinant need A⁻¹ and panic at an exactly singular matrix (where they are the
//! adjugate, which they do not compute). The factorisations work in copies of
//! their inputs and allocate nothing else (inline tensors: nothing on the heap).
//! The pullbacks of `solve`, the determinants, the eigenvalues and (in static
//! mode) the singular values and `least_squares` factorise anew instead of keeping
//! the factors; those of `inverse`, `cholesky`, `qr`, `svd`, `symmetric_eigen`,
//! `symmetric_eigenvectors`, `hermitian_eigen` and `pseudo_inverse` work from their
//! outputs.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 3.0]]);
//! let b: Vector<f64, 2> = Vector::from_array([3.0, 5.0]);
//! let x = a.solve(&b);
//! assert!((x.to_array()[0] - 0.8).abs() < 1e-15 && (x.to_array()[1] - 1.4).abs() < 1e-15);
//! assert!((a.determinant() - 5.0).abs() < 1e-15);
//! let l = a.cholesky();
//! assert!((l.matmul_transposed(&l).to_array()[0][1] - 1.0).abs() < 1e-15);
//! // The gradient of Σx with respect to b is A⁻ᵀ·1.
//! let gb = grad(|b: Var<Vector<f64, 2>>| Var::constant(a.clone()).solve(&b).sum(), &b);
//! assert!((gb.to_array()[0] - 0.4).abs() < 1e-15 && (gb.to_array()[1] - 0.2).abs() < 1e-15);
//! // The gradient of ln|det A| is A⁻ᵀ.
//! let ga = grad(|a: Var<Matrix<f64, 2, 2>>| a.log_abs_determinant(), &a);
//! assert!((ga.to_array()[0][1] + 0.2).abs() < 1e-15);
//! // ½ ln det A from the Cholesky factor, and A⁻¹b by two triangular solves.
//! assert!((l.diagonal().ln().sum() - 0.5 * 5f64.ln()).abs() < 1e-15);
//! let y = l.transpose().solve_upper_triangular(&l.solve_lower_triangular(&b));
//! assert!((y.to_array()[1] - 1.4).abs() < 1e-15);
//! ```

use core::cmp::Ordering;
use core::fmt;

use num_traits::Zero;

#[cfg(feature = "std")]
use crate::autodiff::{Operand, Var, record_binary_in_place, record_own_unary, record_unary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::product::MatMul;
use crate::scalar::{RealScalar, Scalar, overtakes};
use crate::shape::constraint::RightHandSide;
use crate::shape::{Dim, Dims, Shape};
use crate::tensor::{Storage, Tensor};
use parts::{Divisor, largest_part, over_real, pivot_size, polar, times_real};

mod eigenvectors;
mod exponential;
mod parts;
mod pseudo_inverse;
mod qr;
mod singular;
mod tridiagonal;
pub use eigenvectors::{
    hermitian_eigen_pullback, hermitian_eigen_push, hermitian_eigenvalues_pullback,
    hermitian_eigenvalues_push, symmetric_eigen_pullback, symmetric_eigen_push,
    symmetric_eigenvectors_pullback, symmetric_eigenvectors_push,
};
pub use exponential::{matrix_exp_pullback, matrix_exp_push};
pub use pseudo_inverse::{PseudoInverseStorage, pseudo_inverse_pullback, pseudo_inverse_push};
pub(crate) use qr::least_squares_rhs_pullback;
pub use qr::{LeastSquaresSolution, least_squares_pullback, least_squares_push, qr_pullback, qr_push};
pub use singular::{singular_values_pullback, singular_values_push, svd_pullback, svd_push};

/// Why a factorisation of a matrix gave no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinAlgError {
    /// The matrix is not square (or, for `qr` and `least_squares`, has fewer rows
    /// than columns), or the right-hand side has another number of rows (sizes
    /// known only when it runs).
    Shape(ShapeError),
    /// The elimination found only zeros for the pivot of a column: the matrix is
    /// singular. (A NaN is taken as a pivot before any number, so a matrix with NaN
    /// gives NaN results rather than this error.)
    Singular {
        /// The operation that eliminated (`solve`, `inverse`, …).
        operation: &'static str,
        /// The first column without a pivot.
        column: usize,
    },
    /// A least-squares problem's matrix has a column that is a combination of the
    /// earlier ones to working precision (its QR factor R's diagonal entry there is
    /// at most max(m, n)·ε times the largest), so the solution is not determined;
    /// also the error of the QR derivatives at an exact zero on R's diagonal, where
    /// they do not exist.
    RankDeficient {
        /// The operation (`least_squares`, `qr_pullback`, …).
        operation: &'static str,
        /// The first column that depends on the earlier ones.
        column: usize,
    },
    /// The Cholesky factorisation met a diagonal entry that is not positive (or is
    /// NaN): the matrix is not positive definite.
    NotPositiveDefinite {
        /// The first column whose diagonal entry is not positive.
        column: usize,
    },
}

impl fmt::Display for LinAlgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinAlgError::Shape(error) => error.fmt(f),
            LinAlgError::Singular { operation, column } => {
                write!(f, "{operation}: the matrix is singular (no nonzero pivot in column {column})")
            }
            LinAlgError::RankDeficient { operation, column } => write!(
                f,
                "{operation}: the matrix's columns are linearly dependent (column {column} is a combination of the earlier ones)"
            ),
            LinAlgError::NotPositiveDefinite { column } => {
                write!(
                    f,
                    "cholesky: the matrix is not positive definite (its pivot in column {column} is not positive)"
                )
            }
        }
    }
}

impl core::error::Error for LinAlgError {}

impl From<ShapeError> for LinAlgError {
    fn from(error: ShapeError) -> Self {
        LinAlgError::Shape(error)
    }
}

/// The triangle of a matrix that a triangular solve reads, its diagonal included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triangle {
    /// On and below the diagonal.
    Lower,
    /// On and above the diagonal.
    Upper,
}

/// How a linear system reads its matrix: all of it, by elimination, or one
/// triangle, by substitution.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    General,
    Triangular(Triangle),
}

impl System {
    /// The method that solves it, for messages.
    fn operation(self) -> &'static str {
        match self {
            System::General => "solve",
            System::Triangular(Triangle::Lower) => "solve_lower_triangular",
            System::Triangular(Triangle::Upper) => "solve_upper_triangular",
        }
    }

    /// Its pullback's name, for messages.
    fn pullback(self) -> &'static str {
        match self {
            System::General => "solve_pullback",
            System::Triangular(_) => "triangular_solve_pullback",
        }
    }

    /// Its tangent's name, for messages.
    fn push(self) -> &'static str {
        match self {
            System::General => "solve_push",
            System::Triangular(_) => "triangular_solve_push",
        }
    }

    /// The columns of row `i` that it reads from an n×n matrix.
    #[inline(always)]
    fn columns(self, i: usize, n: usize) -> core::ops::Range<usize> {
        match self {
            System::General => 0..n,
            System::Triangular(Triangle::Lower) => 0..i + 1,
            System::Triangular(Triangle::Upper) => i..n,
        }
    }
}

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> Tensor<T, (N, N), K> {
    /// x with A·x = b, A this square matrix, b a vector or a matrix with as many rows
    /// (its columns solved together), by Gaussian elimination with partial pivoting.
    /// An error names the shapes when a size known only when it runs differs (a
    /// `Dyn` matrix that is not square, a right-hand side with another number of
    /// rows), or the column without a pivot when the matrix is singular. A
    /// right-hand side of no columns gives an empty x without looking at A.
    pub fn try_solve<B: RightHandSide<N>>(&self, b: &Tensor<T, B, K>) -> Result<Tensor<T, B, K>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        solve_system(System::General, self, b)
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

    /// x with L·x = b for L the lower triangle of this matrix (its diagonal
    /// included; the entries above it are not read), by forward substitution:
    /// O(n²) per column of b. An error for shapes that do not fit or a zero on the
    /// diagonal (`Singular`, naming its column).
    pub fn try_solve_lower_triangular<B: RightHandSide<N>>(
        &self,
        b: &Tensor<T, B, K>,
    ) -> Result<Tensor<T, B, K>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        solve_system(System::Triangular(Triangle::Lower), self, b)
    }

    /// [`try_solve_lower_triangular`](Self::try_solve_lower_triangular)'s x.
    ///
    /// # Panics
    /// With its error message.
    #[track_caller]
    pub fn solve_lower_triangular<B: RightHandSide<N>>(&self, b: &Tensor<T, B, K>) -> Tensor<T, B, K>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve_lower_triangular(b))
    }

    /// x with U·x = b for U the upper triangle of this matrix (its diagonal
    /// included), by back substitution; as
    /// [`try_solve_lower_triangular`](Self::try_solve_lower_triangular). With a
    /// Cholesky factor L, `l.transpose().solve_upper_triangular(&z)` is L⁻ᵀz.
    pub fn try_solve_upper_triangular<B: RightHandSide<N>>(
        &self,
        b: &Tensor<T, B, K>,
    ) -> Result<Tensor<T, B, K>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        solve_system(System::Triangular(Triangle::Upper), self, b)
    }

    /// [`try_solve_upper_triangular`](Self::try_solve_upper_triangular)'s x.
    ///
    /// # Panics
    /// With its error message.
    #[track_caller]
    pub fn solve_upper_triangular<B: RightHandSide<N>>(&self, b: &Tensor<T, B, K>) -> Tensor<T, B, K>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve_upper_triangular(b))
    }

    /// A⁻¹, by the elimination of [`try_solve`](Self::try_solve) on the identity; an
    /// error for a `Dyn` matrix that is not square or a singular one.
    pub fn try_inverse(&self) -> Result<Self, LinAlgError> {
        check_square("inverse", self.dims())?;
        let mut inverse = Self::identity_sized(self.shape().0);
        eliminate("inverse", self, Orientation::AsIs, &mut inverse)?;
        Ok(inverse)
    }

    /// [`try_inverse`](Self::try_inverse)'s A⁻¹. To apply A⁻¹ to a vector or a few
    /// columns, [`solve`](Self::solve) is cheaper and more accurate.
    ///
    /// # Panics
    /// With `try_inverse`'s error message.
    #[track_caller]
    pub fn inverse(&self) -> Self {
        or_panic(self.try_inverse())
    }

    /// det A, ±∏ uᵢᵢ from the pivots of Gaussian elimination with partial
    /// pivoting (±∞ past the scalar's range: see
    /// [`log_abs_determinant`](Self::log_abs_determinant)). Where the elimination
    /// meets a zero pivot, det A is evaluated without division instead (Bird's
    /// algorithm, O(n⁴)): 0 up to rounding, and on duals the exact derivative, the
    /// adjugate's, which the pivots cannot give there.
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    pub fn determinant(&self) -> T {
        or_panic(check_square("determinant", self.dims()));
        let mut upper = self.clone();
        match triangularize(&mut upper) {
            Ok(odd_swaps) => {
                let product = diagonal_entries(&upper).fold(T::one(), |product, pivot| product * pivot);
                if odd_swaps { -product } else { product }
            }
            Err(_) => division_free_determinant(self),
        }
    }

    /// ln|det A| (`torch.linalg.slogdet`'s second value), Σ ln|uᵢᵢ| over the pivots,
    /// which neither overflows nor underflows where det A does: −∞ for a singular
    /// matrix. The sign of det A is [`determinant`](Self::determinant)'s where that
    /// does not underflow to 0.
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    pub fn log_abs_determinant(&self) -> T::Real {
        or_panic(check_square("log_abs_determinant", self.dims()));
        let mut upper = self.clone();
        match triangularize(&mut upper) {
            Ok(_) => diagonal_entries(&upper).fold(T::Real::zero(), |total, pivot| total + pivot.abs().ln()),
            Err(_) => T::Real::neg_infinity(),
        }
    }

    /// The lower-triangular L with positive diagonal and L·Lᴴ = ½(A + Aᴴ) (A itself
    /// when Hermitian; Lᵀ and Aᵀ for real A), row by row (the Cholesky–Banachiewicz
    /// order); an error for a `Dyn` matrix that is not square or one that is not
    /// positive definite.
    pub fn try_cholesky(&self) -> Result<Self, LinAlgError> {
        check_square("cholesky", self.dims())?;
        let (n, half) = (self.shape().0.size(), T::from_real(T::Real::from_f64(0.5)));
        let mut factor = Self::zeros_shaped(self.shape());
        let (a, l) = (self.as_slice(), factor.as_mut_slice());
        // Row by row: lᵢⱼ = (sᵢⱼ − Σₖ₍<ⱼ₎ lᵢₖ·conj(lⱼₖ)) / lⱼⱼ, then lᵢᵢ = √(Re aᵢᵢ −
        // Σₖ₍<ᵢ₎ |lᵢₖ|²).
        for i in 0..n {
            let (done, rest) = l.split_at_mut(i * n);
            let row = &mut rest[..n];
            for j in 0..i {
                let above = &done[j * n..j * n + j + 1];
                let products =
                    row[..j].iter().zip(above).fold(T::zero(), |total, (&x, &y)| total + x * y.conj());
                row[j] = over_real((a[i * n + j] + a[j * n + i].conj()) * half - products, above[j].re());
            }
            let pivot =
                (a[i * n + i] - row[..i].iter().fold(T::zero(), |total, &x| total + x.conj() * x)).re();
            // Not greater than zero: zero, negative or NaN.
            if pivot.partial_cmp(&T::Real::zero()) != Some(Ordering::Greater) {
                return Err(LinAlgError::NotPositiveDefinite { column: i });
            }
            row[i] = T::from_real(pivot.sqrt());
        }
        Ok(factor)
    }

    /// [`try_cholesky`](Self::try_cholesky)'s L.
    ///
    /// # Panics
    /// With `try_cholesky`'s error message.
    #[track_caller]
    pub fn cholesky(&self) -> Self {
        or_panic(self.try_cholesky())
    }
}

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>> Tensor<T, (N, N), K> {
    /// The diagonal (a₁₁, …, aₙₙ) of this square matrix (`torch.diagonal`,
    /// `jnp.diag`): with a Cholesky factor L of A, `l.diagonal().ln().sum()` is
    /// ½ ln det A.
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    pub fn diagonal(&self) -> Tensor<T, (N,), K> {
        or_panic(check_square("diagonal", self.dims()));
        let (n, entries) = (self.shape().0.size(), self.as_slice());
        Tensor::from_shape_fn((self.shape().0,), |[i]| entries[i * (n + 1)])
    }
}

impl<T: Scalar, N: Dim, K: Storage<T, (N,)> + Storage<T, (N, N)>> Tensor<T, (N,), K> {
    /// The square matrix with this vector on its diagonal and zeros elsewhere
    /// (nalgebra's `Matrix::from_diagonal`, `torch.diag(v)`, `jnp.diag(v)`): the
    /// adjoint of [`Tensor::diagonal`].
    pub fn diagonal_matrix(&self) -> Tensor<T, (N, N), K> {
        let size = self.shape().0;
        let n = size.size();
        let mut matrix = Tensor::zeros_shaped((size, size));
        for (i, &entry) in self.as_slice().iter().enumerate() {
            matrix.as_mut_slice()[i * (n + 1)] = entry;
        }
        matrix
    }
}

#[cfg(feature = "std")]
impl<T: Scalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>> Var<Tensor<T, (N, N), K>> {
    /// The diagonal, recorded with its pullback: ȳ on the diagonal of a zero
    /// matrix (see [`Tensor::diagonal`]).
    ///
    /// # Panics
    /// As [`Tensor::diagonal`].
    #[track_caller]
    pub fn diagonal(&self) -> Var<Tensor<T, (N,), K>> {
        record_own_unary(self, self.value().diagonal(), Tensor::diagonal_matrix)
    }
}

#[cfg(feature = "std")]
impl<T: RealScalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>> Var<Tensor<T, (N, N), K>> {
    /// The eigenvalues of ½(A + Aᵀ), ascending, recorded with their pullback
    /// Ā = V·diag(λ̄)·Vᵀ (see [`Tensor::symmetric_eigenvalues`]).
    ///
    /// # Panics
    /// As [`Tensor::symmetric_eigenvalues`].
    #[track_caller]
    pub fn symmetric_eigenvalues(&self) -> Var<Tensor<T, (N,), K>> {
        let a = self.shared_value();
        record_unary_in_place(self, a.symmetric_eigenvalues(), move |_, y_bar, x_bar| {
            x_bar.add(|| symmetric_eigenvalues_pullback(&a, y_bar));
        })
    }
}

#[cfg(feature = "std")]
impl<T: Scalar, N: Dim, K: Storage<T, (N,)> + Storage<T, (N, N)>> Var<Tensor<T, (N,), K>> {
    /// The diagonal matrix of this vector, recorded with its pullback: the
    /// diagonal of Ȳ (see [`Tensor::diagonal_matrix`]).
    pub fn diagonal_matrix(&self) -> Var<Tensor<T, (N, N), K>> {
        record_own_unary(self, self.value().diagonal_matrix(), Tensor::diagonal)
    }
}

#[cfg(feature = "std")]
impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> Var<Tensor<T, (N, N), K>> {
    /// x with A·x = b, recorded with its pullback b̄ = A⁻ᴴx̄, Ā = −b̄·xᴴ (A⁻ᵀ, xᵀ for real data; see
    /// [`Tensor::solve`]); `b` a `Var` or a constant tensor.
    ///
    /// # Panics
    /// As [`Tensor::solve`].
    #[track_caller]
    pub fn solve<B: RightHandSide<N>>(&self, b: &impl Operand<Tensor<T, B, K>>) -> Var<Tensor<T, B, K>>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve(b))
    }

    /// [`solve`](Self::solve), or [`Tensor::try_solve`]'s error with nothing
    /// recorded: a singular matrix met while differentiating can be handled.
    pub fn try_solve<B: RightHandSide<N>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Result<Var<Tensor<T, B, K>>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        self.record_system(System::General, b)
    }

    /// x with L·x = b, L the lower triangle, recorded with its pullback
    /// b̄ = L⁻ᴴx̄, L̄ = −(b̄·xᴴ)'s lower triangle (see
    /// [`Tensor::solve_lower_triangular`]).
    ///
    /// # Panics
    /// As [`Tensor::solve_lower_triangular`].
    #[track_caller]
    pub fn solve_lower_triangular<B: RightHandSide<N>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Var<Tensor<T, B, K>>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve_lower_triangular(b))
    }

    /// [`solve_lower_triangular`](Self::solve_lower_triangular), or its error with
    /// nothing recorded.
    pub fn try_solve_lower_triangular<B: RightHandSide<N>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Result<Var<Tensor<T, B, K>>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        self.record_system(System::Triangular(Triangle::Lower), b)
    }

    /// x with U·x = b, U the upper triangle, recorded with its pullback
    /// b̄ = U⁻ᴴx̄, Ū = −(b̄·xᴴ)'s upper triangle (see
    /// [`Tensor::solve_upper_triangular`]).
    ///
    /// # Panics
    /// As [`Tensor::solve_upper_triangular`].
    #[track_caller]
    pub fn solve_upper_triangular<B: RightHandSide<N>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Var<Tensor<T, B, K>>
    where
        K: Storage<T, B>,
    {
        or_panic(self.try_solve_upper_triangular(b))
    }

    /// [`solve_upper_triangular`](Self::solve_upper_triangular), or its error with
    /// nothing recorded.
    pub fn try_solve_upper_triangular<B: RightHandSide<N>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Result<Var<Tensor<T, B, K>>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        self.record_system(System::Triangular(Triangle::Upper), b)
    }

    /// The solution of `system` recorded with its pullback, or its error with
    /// nothing recorded.
    fn record_system<B: RightHandSide<N>>(
        &self,
        system: System,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Result<Var<Tensor<T, B, K>>, LinAlgError>
    where
        K: Storage<T, B>,
    {
        let b = b.to_var();
        let a = self.shared_value();
        let x = solve_system(system, &a, b.value())?;
        Ok(record_binary_in_place(self, &b, x, move |x, x_bar, mut adjoints| {
            let b_bar = adjoint_system_solve(system, &a, x_bar);
            adjoints.lhs().add(|| system_matrix_cotangent(system, &a, &b_bar, x));
            adjoints.rhs().add(|| b_bar);
        }))
    }

    /// A⁻¹, recorded with its pullback Ā = −Yᴴ·Ȳ·Yᴴ (see [`Tensor::inverse`]).
    ///
    /// # Panics
    /// As [`Tensor::inverse`].
    #[track_caller]
    pub fn inverse(&self) -> Self {
        or_panic(self.try_inverse())
    }

    /// [`inverse`](Self::inverse), or [`Tensor::try_inverse`]'s error with nothing
    /// recorded.
    pub fn try_inverse(&self) -> Result<Self, LinAlgError> {
        let y = self.value().try_inverse()?;
        Ok(record_unary_in_place(self, y, |y, y_bar, x_bar| {
            x_bar.add(|| inverse_pullback(y, y_bar));
        }))
    }

    /// det A, recorded with its pullback Ā = ȳ·conj(det A)·A⁻ᴴ (see
    /// [`Tensor::determinant`]).
    ///
    /// # Panics
    /// As [`Tensor::determinant`]; the backward pass at an exactly singular matrix.
    #[track_caller]
    pub fn determinant(&self) -> Var<T> {
        let a = self.shared_value();
        record_unary_in_place(self, a.determinant(), move |y, y_bar, x_bar| {
            x_bar.add(|| determinant_pullback(&a, *y, *y_bar));
        })
    }

    /// ln|det A|, recorded with its pullback Ā = ȳ·A⁻ᴴ (see
    /// [`Tensor::log_abs_determinant`]).
    ///
    /// # Panics
    /// As [`Tensor::log_abs_determinant`]; the backward pass at an exactly
    /// singular matrix.
    #[track_caller]
    pub fn log_abs_determinant(&self) -> Var<T::Real> {
        let a = self.shared_value();
        record_unary_in_place(self, a.log_abs_determinant(), move |_, y_bar, x_bar| {
            x_bar.add(|| log_abs_determinant_pullback(&a, *y_bar));
        })
    }

    /// The Cholesky factor L, recorded with its pullback Ā = herm(L⁻ᴴ·Φ(Lᴴ·L̄)·L⁻¹)
    /// (see [`Tensor::cholesky`]).
    ///
    /// # Panics
    /// As [`Tensor::cholesky`].
    #[track_caller]
    pub fn cholesky(&self) -> Self {
        or_panic(self.try_cholesky())
    }

    /// [`cholesky`](Self::cholesky), or [`Tensor::try_cholesky`]'s error with
    /// nothing recorded: an indefinite matrix met while differentiating (a
    /// covariance that lost definiteness) can be handled, by adding jitter and
    /// retrying, say.
    pub fn try_cholesky(&self) -> Result<Self, LinAlgError> {
        let l = self.value().try_cholesky()?;
        Ok(record_unary_in_place(self, l, |l, l_bar, x_bar| {
            x_bar.add(|| cholesky_pullback(l, l_bar));
        }))
    }
}

/// Which matrix an elimination solves with: A, or Aᴴ, its conjugate transpose (the
/// pullback's; Aᵀ for real A).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Orientation {
    AsIs,
    Adjoint,
}

/// Checks that `matrix` is square.
#[inline(always)]
fn check_square(operation: &'static str, matrix: Dims) -> Result<(), ShapeError> {
    let (rows, columns) = (matrix.as_slice()[0], matrix.as_slice()[1]);
    if rows != columns {
        return Err(ShapeError::not_square(operation, matrix));
    }
    Ok(())
}

/// Checks that `matrix` is square and `rhs` has as many rows.
#[inline(always)]
fn check_system(operation: &'static str, matrix: Dims, rhs: Dims) -> Result<(), ShapeError> {
    if matrix.as_slice()[0] != matrix.as_slice()[1] {
        return Err(ShapeError::new(operation, matrix, rhs, "a square matrix"));
    }
    if rhs.as_slice()[0] != matrix.as_slice()[0] {
        return Err(ShapeError::new(
            operation,
            matrix,
            rhs,
            "a right-hand side with as many rows as the matrix",
        ));
    }
    Ok(())
}

/// The diagonal entries of a square matrix.
fn diagonal_entries<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    matrix: &Tensor<T, (N, N), K>,
) -> impl Iterator<Item = T> + '_ {
    let n = matrix.shape().0.size();
    matrix.as_slice().iter().step_by(n + 1).copied()
}

/// Brings `matrix` to the upper-triangular U of P·A = L·U in place (partial
/// pivoting; what is left below the diagonal is not L) and tells whether the row
/// swaps were odd, or the first column without a pivot.
#[inline(always)]
fn triangularize<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    matrix: &mut Tensor<T, (N, N), K>,
) -> Result<bool, usize> {
    let n = matrix.shape().0.size();
    eliminate_forward(matrix.as_mut_slice(), n, &mut [], 0)
}

/// det A by Bird's division-free algorithm: X ← μ(X)·A, n − 1 times from X = A,
/// where μ(X) keeps X's strict upper triangle, zeroes the lower one and puts
/// −Σₖ₍>ᵢ₎ xₖₖ at (i, i); then det A = (−1)ⁿ⁻¹·x₁₁. A polynomial in A's entries
/// (O(n⁴)), so exact on duals where elimination divides by zero.
fn division_free_determinant<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(a: &Tensor<T, (N, N), K>) -> T {
    let n = a.shape().0.size();
    if n == 0 {
        return T::one();
    }
    let mut x = a.clone();
    for _ in 1..n {
        let entries = x.as_mut_slice();
        let mut below = T::zero();
        for i in (0..n).rev() {
            let diagonal = entries[i * n + i];
            entries[i * n + i] = -below;
            below += diagonal;
            entries[i * n..i * n + i].fill(T::zero());
        }
        x = x.matmul(a);
    }
    let first = x.as_slice()[0];
    if n.is_multiple_of(2) { -first } else { first }
}

/// Forward elimination with partial pivoting of `lu` (n×n, row-major) in place,
/// the same row operations applied to `x` (n rows of m values): for each column
/// the largest pivot in magnitude (the first of equal ones; a NaN before any
/// number), its row swapped up, the rows below cleared (only right of the column:
/// nothing reads the entries below the diagonal again). Returns whether the row
/// swaps were odd, or the first column without a pivot.
#[inline(always)]
fn eliminate_forward<T: Scalar>(lu: &mut [T], n: usize, x: &mut [T], m: usize) -> Result<bool, usize> {
    let mut odd_swaps = false;
    for k in 0..n {
        let pivot_row = (k + 1..n).fold(k, |best, i| {
            if overtakes(pivot_size(lu[i * n + k]), pivot_size(lu[best * n + k])) { i } else { best }
        });
        if lu[pivot_row * n + k] == T::zero() {
            return Err(k);
        }
        if pivot_row != k {
            odd_swaps = !odd_swaps;
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
        let pivot = Divisor::new(pivot_row[k]);
        for (r, row) in lower.chunks_exact_mut(n).enumerate() {
            let factor = pivot.divide(row[k]);
            for (entry, &above) in row[k + 1..].iter_mut().zip(&pivot_row[k + 1..]) {
                *entry -= factor * above;
            }
            for (entry, &above) in x_lower[r * m..(r + 1) * m].iter_mut().zip(x_pivot_row) {
                *entry -= factor * above;
            }
        }
    }
    Ok(odd_swaps)
}

/// Overwrites `x` (n rows of m values) with T⁻¹x for T the `triangle` of the n×n
/// `t` (its diagonal included), or with T⁻ᴴx (T⁻ᵀx for real T) when `adjoint`: xᵢ =
/// (xᵢ − Σₖ cᵢₖ·xₖ) / cᵢᵢ over the rows k already solved, cᵢₖ the entry of T (or
/// Tᴴ), from the first row down when the matrix solved with is lower triangular,
/// from the last up when it is upper.
#[inline(always)]
fn substitute<T: Scalar>(t: &[T], n: usize, triangle: Triangle, adjoint: bool, x: &mut [T], m: usize) {
    let descending = (triangle == Triangle::Upper) != adjoint;
    for step in 0..n {
        let i = if descending { n - 1 - step } else { step };
        // Row i apart from the solved rows, which lie after it or before it.
        let (x_row, solved_rows) = if descending {
            let (head, tail) = x.split_at_mut((i + 1) * m);
            (&mut head[i * m..], &*tail)
        } else {
            let (head, tail) = x.split_at_mut(i * m);
            (&mut tail[..m], &*head)
        };
        let solved = if descending { i + 1..n } else { 0..i };
        let coefficient = |k: usize| if adjoint { t[k * n + i].conj() } else { t[i * n + k] };
        let pivot = Divisor::new(coefficient(i));
        if m == 1 {
            // One column: its sum kept in a register.
            let known =
                solved.zip(solved_rows).fold(x_row[0], |total, (k, &value)| total - coefficient(k) * value);
            x_row[0] = pivot.divide(known);
            continue;
        }
        // Several: row i updated by each solved row in turn, along the columns.
        for (k, x_solved) in solved.zip(solved_rows.chunks_exact(m)) {
            let coefficient = coefficient(k);
            for (entry, &value) in x_row.iter_mut().zip(x_solved) {
                *entry -= coefficient * value;
            }
        }
        for entry in x_row {
            *entry = pivot.divide(*entry);
        }
    }
}

/// Overwrites `x` (a vector or a matrix of n rows) with y solving A·y = x, or
/// Aᴴ·y = x, by forward elimination and back substitution in a copy of A.
fn eliminate<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    operation: &'static str,
    a: &Tensor<T, (N, N), K>,
    orientation: Orientation,
    x: &mut Tensor<T, B, K>,
) -> Result<(), LinAlgError> {
    // The sizes: constants for static shapes, for loops the compiler unrolls.
    let (n, elements) = (a.shape().0.size(), x.len());
    // No right-hand side (n or m zero): nothing to solve.
    if elements == 0 {
        return Ok(());
    }
    let (m, x) = (elements / n, x.as_mut_slice());
    let mut matrix = a.clone();
    let lu = matrix.as_mut_slice();
    if orientation == Orientation::Adjoint {
        // Aᴴ in place (a transposing copy is slower at small sizes).
        for i in 0..n {
            lu[i * n + i] = lu[i * n + i].conj();
            for j in i + 1..n {
                let (upper, lower) = (lu[i * n + j], lu[j * n + i]);
                (lu[i * n + j], lu[j * n + i]) = (lower.conj(), upper.conj());
            }
        }
    }
    eliminate_forward(lu, n, x, m).map_err(|column| LinAlgError::Singular { operation, column })?;
    substitute(lu, n, Triangle::Upper, false, x, m);
    Ok(())
}

/// x with A·x = b for `system`'s reading of A (an error as
/// [`Tensor::try_solve`]'s, named after the system's method).
#[inline(always)]
pub(crate) fn solve_system<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
    a: &Tensor<T, (N, N), K>,
    b: &Tensor<T, B, K>,
) -> Result<Tensor<T, B, K>, LinAlgError> {
    check_system(system.operation(), a.dims(), b.dims())?;
    let mut x = b.clone();
    solve_in_place(system, a, Orientation::AsIs, &mut x)?;
    Ok(x)
}

/// Overwrites `x` (a vector or a matrix of n rows, its shape checked) with A⁻¹x or
/// A⁻ᴴx for `system`'s reading of A: by elimination, or by substitution after
/// checking the diagonal for a zero. A right-hand side without elements is left
/// as it is, A not looked at.
#[inline(always)]
fn solve_in_place<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
    a: &Tensor<T, (N, N), K>,
    orientation: Orientation,
    x: &mut Tensor<T, B, K>,
) -> Result<(), LinAlgError> {
    let operation = system.operation();
    let triangle = match system {
        System::General => return eliminate(operation, a, orientation, x),
        System::Triangular(triangle) => triangle,
    };
    let (n, elements) = (a.shape().0.size(), x.len());
    if elements == 0 {
        return Ok(());
    }
    if let Some(column) = diagonal_entries(a).position(|entry| entry == T::zero()) {
        return Err(LinAlgError::Singular { operation, column });
    }
    let adjoint = orientation == Orientation::Adjoint;
    substitute(a.as_slice(), n, triangle, adjoint, x.as_mut_slice(), elements / n);
    Ok(())
}

/// b̄ = A⁻ᴴx̄ (A⁻ᵀx̄ for real A) for `system`'s reading of A.
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or Aᴴ has a zero pivot (A,
/// whose solve succeeded, is then singular in all but rounding).
pub(crate) fn adjoint_system_solve<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
    a: &Tensor<T, (N, N), K>,
    x_bar: &Tensor<T, B, K>,
) -> Tensor<T, B, K> {
    or_panic(check_system(system.operation(), a.dims(), x_bar.dims()));
    let mut b_bar = x_bar.clone();
    if let Err(error) = solve_in_place(system, a, Orientation::Adjoint, &mut b_bar) {
        panic!("{error} (in the pullback, with the conjugate transpose)");
    }
    b_bar
}

/// Ā = −b̄·xᴴ (over the right-hand side's columns; −b̄·xᵀ for real x) on the
/// entries `system` reads, 0 elsewhere.
fn system_matrix_cotangent<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
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
        for j in system.columns(i, n) {
            row[j] = -(0..m).fold(T::zero(), |total, c| total + b_bar[i * m + c] * x[j * m + c].conj());
        }
    }
    a_bar
}

/// The cotangents of x = A⁻¹b for `system`'s reading of A.
///
/// # Panics
/// When the shapes do not fit or Aᴴ has a zero pivot.
pub(crate) fn system_pullback<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    x_bar: &Tensor<T, B, K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, B, K>) {
    or_panic(x.check_same_shape(x_bar, system.pullback()));
    let b_bar = adjoint_system_solve(system, a, x_bar);
    (system_matrix_cotangent(system, a, &b_bar, x), b_bar)
}

/// The tangent of x = A⁻¹b for `system`'s reading of A: ẋ = A⁻¹(ḃ − Ȧ·x), Ȧ read
/// as A is, a missing tangent zero.
///
/// # Panics
/// When the shapes do not fit or A has a zero pivot.
pub(crate) fn system_push<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    system: System,
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    a_dot: Option<&Tensor<T, (N, N), K>>,
    b_dot: Option<&Tensor<T, B, K>>,
) -> Tensor<T, B, K> {
    or_panic(check_system(system.operation(), a.dims(), x.dims()));
    let mut x_dot = match b_dot {
        Some(b_dot) => {
            or_panic(x.check_same_shape(b_dot, system.push()));
            b_dot.clone()
        }
        None => Tensor::zeros_shaped(x.shape()),
    };
    if let Some(a_dot) = a_dot {
        or_panic(a.check_same_shape(a_dot, system.push()));
    }
    // ḃ − Ȧ·x, row by row (nothing to do without elements).
    if let Some(a_dot) = a_dot.filter(|_| !x.is_empty()) {
        let (n, elements) = (a.shape().0.size(), x.len());
        let (m, a_dot, x) = (elements / n, a_dot.as_slice(), x.as_slice());
        for (i, row) in x_dot.as_mut_slice().chunks_exact_mut(m).enumerate() {
            for (c, entry) in row.iter_mut().enumerate() {
                *entry =
                    system.columns(i, n).fold(*entry, |total, j| total - a_dot[i * n + j] * x[j * m + c]);
            }
        }
    }
    or_panic(solve_in_place(system, a, Orientation::AsIs, &mut x_dot));
    x_dot
}

/// The cotangents of x = A⁻¹b given x and x̄: (Ā, b̄) = (−b̄·xᴴ, A⁻ᴴx̄).
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or Aᴴ has a zero pivot.
pub fn solve_pullback<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    x_bar: &Tensor<T, B, K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, B, K>) {
    system_pullback(System::General, a, x, x_bar)
}

/// The tangent of x = A⁻¹b given x: ẋ = A⁻¹(ḃ − Ȧ·x), a missing tangent zero.
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::solve`]'s) or A has a zero pivot.
pub fn solve_push<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    a: &Tensor<T, (N, N), K>,
    x: &Tensor<T, B, K>,
    a_dot: Option<&Tensor<T, (N, N), K>>,
    b_dot: Option<&Tensor<T, B, K>>,
) -> Tensor<T, B, K> {
    system_push(System::General, a, x, a_dot, b_dot)
}

/// The cotangents of x = T⁻¹b for T the `triangle` of `t`: (T̄, b̄) = (−b̄·xᴴ on
/// that triangle, T⁻ᴴx̄).
///
/// # Panics
/// When the shapes do not fit or T has a zero on its diagonal.
pub fn triangular_solve_pullback<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    t: &Tensor<T, (N, N), K>,
    triangle: Triangle,
    x: &Tensor<T, B, K>,
    x_bar: &Tensor<T, B, K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, B, K>) {
    system_pullback(System::Triangular(triangle), t, x, x_bar)
}

/// The tangent of x = T⁻¹b for T the `triangle` of `t`: ẋ = T⁻¹(ḃ − Ṫ·x), Ṫ's
/// same triangle, a missing tangent zero.
///
/// # Panics
/// When the shapes do not fit or T has a zero on its diagonal.
pub fn triangular_solve_push<T: Scalar, N: Dim, B: Shape, K: Storage<T, (N, N)> + Storage<T, B>>(
    t: &Tensor<T, (N, N), K>,
    triangle: Triangle,
    x: &Tensor<T, B, K>,
    t_dot: Option<&Tensor<T, (N, N), K>>,
    b_dot: Option<&Tensor<T, B, K>>,
) -> Tensor<T, B, K> {
    system_push(System::Triangular(triangle), t, x, t_dot, b_dot)
}

/// The cotangent of Y = A⁻¹ given Y: Ā = −Yᴴ·Ȳ·Yᴴ (−Yᵀ·Ȳ·Yᵀ for real Y).
///
/// # Panics
/// When Y is not square or the shapes differ.
pub fn inverse_pullback<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    y: &Tensor<T, (N, N), K>,
    y_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("inverse_pullback", y.dims()));
    or_panic(y.check_same_shape(y_bar, "inverse_pullback"));
    with_conjugate(y, |conjugate| -conjugate.transposed_matmul(&y_bar.matmul_transposed(conjugate)))
}

/// The tangent of Y = A⁻¹ given Y: Ẏ = −Y·Ȧ·Y.
///
/// # Panics
/// When Y is not square or the shapes differ.
pub fn inverse_push<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    y: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("inverse_push", y.dims()));
    or_panic(y.check_same_shape(a_dot, "inverse_push"));
    -y.matmul(&a_dot.matmul(y))
}

/// `f` of conj(M): M itself for real data (no copy), a conjugated copy for complex.
#[inline(always)]
fn with_conjugate<T: Scalar, S: Shape, K: Storage<T, S>, R>(
    m: &Tensor<T, S, K>,
    f: impl FnOnce(&Tensor<T, S, K>) -> R,
) -> R {
    if T::IS_COMPLEX { f(&m.conj()) } else { f(m) }
}

/// A⁻ᴴ (A⁻ᵀ for real A), for the derivatives of `operation` (a determinant's).
///
/// # Panics
/// When A is not square, or singular: the derivative there is the adjugate, not
/// computed.
#[track_caller]
fn inverse_adjoint<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    operation: &'static str,
    a: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square(operation, a.dims()));
    let mut inverse = Tensor::identity_sized(a.shape().0);
    if let Err(error) = eliminate(operation, a, Orientation::Adjoint, &mut inverse) {
        panic!("{error}; its derivative at a singular matrix is not computed");
    }
    inverse
}

/// The cotangent of y = det A given y: Ā = ȳ·conj(y)·A⁻ᴴ (ȳ·y·A⁻ᵀ for real A).
///
/// # Panics
/// When A is not square or is singular.
#[track_caller]
pub fn determinant_pullback<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    y: T,
    y_bar: T,
) -> Tensor<T, (N, N), K> {
    inverse_adjoint("determinant", a).scale(y_bar * y.conj())
}

/// The tangent of y = det A given y: ẏ = y·tr(A⁻¹·Ȧ) = y·⟨A⁻ᴴ, Ȧ⟩.
///
/// # Panics
/// When the shapes differ, A is not square or is singular.
#[track_caller]
pub fn determinant_push<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    y: T,
    a_dot: &Tensor<T, (N, N), K>,
) -> T {
    or_panic(a.check_same_shape(a_dot, "determinant_push"));
    y * inverse_adjoint("determinant", a).inner(a_dot)
}

/// The cotangent of y = ln|det A| (ȳ real): Ā = ȳ·A⁻ᴴ (ȳ·A⁻ᵀ for real A).
///
/// # Panics
/// When A is not square or is singular.
#[track_caller]
pub fn log_abs_determinant_pullback<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    y_bar: T::Real,
) -> Tensor<T, (N, N), K> {
    inverse_adjoint("log_abs_determinant", a).scale(T::from_real(y_bar))
}

/// The tangent of y = ln|det A|: ẏ = Re tr(A⁻¹·Ȧ) = Re⟨A⁻ᴴ, Ȧ⟩.
///
/// # Panics
/// When the shapes differ, A is not square or is singular.
#[track_caller]
pub fn log_abs_determinant_push<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> T::Real {
    or_panic(a.check_same_shape(a_dot, "log_abs_determinant_push"));
    inverse_adjoint("log_abs_determinant", a).inner(a_dot).re()
}

/// The cotangent of L = chol(A) given L: Ā = herm(L⁻ᴴ·Φ(Lᴴ·L̄)·L⁻¹) (sym, ᵀ for
/// real L).
///
/// # Panics
/// When the shapes differ or L is not square.
pub fn cholesky_pullback<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    l: &Tensor<T, (N, N), K>,
    l_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("cholesky_pullback", l.dims()));
    or_panic(l.check_same_shape(l_bar, "cholesky_pullback"));
    let n = l.shape().0.size();
    // W = L⁻ᴴ·Φ(Lᴴ·L̄), then L⁻ᴴ·Wᴴ = (W·L⁻¹)ᴴ, whose Hermitian part is Ā.
    let mut w = with_conjugate(l, |conjugate| conjugate.transposed_matmul(l_bar));
    lower_with_half_diagonal(w.as_mut_slice(), n);
    substitute(l.as_slice(), n, Triangle::Lower, true, w.as_mut_slice(), n);
    let mut a_bar = w.conj_transpose();
    substitute(l.as_slice(), n, Triangle::Lower, true, a_bar.as_mut_slice(), n);
    hermitize(a_bar.as_mut_slice(), n);
    a_bar
}

/// The tangent of L = chol(A) given L: L̇ = L·Φ(L⁻¹·herm(Ȧ)·L⁻ᴴ).
///
/// # Panics
/// When the shapes differ or L is not square.
pub fn cholesky_push<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    l: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("cholesky_push", l.dims()));
    or_panic(l.check_same_shape(a_dot, "cholesky_push"));
    let n = l.shape().0.size();
    // Z = L⁻¹·S for S = herm(Ȧ); then L⁻¹·Zᴴ = L⁻¹·S·L⁻ᴴ, S being Hermitian.
    let mut z = a_dot.clone();
    hermitize(z.as_mut_slice(), n);
    substitute(l.as_slice(), n, Triangle::Lower, false, z.as_mut_slice(), n);
    let mut middle = z.conj_transpose();
    substitute(l.as_slice(), n, Triangle::Lower, false, middle.as_mut_slice(), n);
    lower_with_half_diagonal(middle.as_mut_slice(), n);
    l.matmul(&middle)
}

/// Brings herm(S) (`s`, n×n; sym(S) for real S) to diagonal form in place, the
/// transformations applied to the columns of `vectors` too when given (V ← V·Q):
/// Householder reflections to a real tridiagonal matrix, then implicit QR steps
/// ([`tridiagonal`]); then sorts the diagonal ascending, the vectors' columns with
/// it, and sets the other entries to 0.
///
/// Both stages work on S/m, m the largest part |Re sᵢⱼ| or |Im sᵢⱼ|, so that no
/// square overflows, and take lengths from squares only where those are normal
/// numbers (else from values divided by the largest part); an entry that is NaN or
/// infinite makes every value NaN, as do QR steps that have not converged after 30n
/// (Wilkinson's shift converges, in two or three steps per eigenvalue in practice).
#[inline(always)]
fn diagonalize<T: Scalar>(s: &mut [T], n: usize, mut vectors: Option<&mut [T]>) {
    hermitize(s, n);
    let zero = T::Real::zero();
    let largest = s.iter().fold(zero, |largest, &x| {
        let size = largest_part(x);
        if overtakes(size, largest) { size } else { largest }
    });
    if largest == zero {
        return;
    }
    let nan = T::from_real(T::Real::from_f64(f64::NAN));
    // Not below infinity: infinite or NaN.
    let finite = largest.partial_cmp(&-T::Real::neg_infinity()) == Some(Ordering::Less);
    let converged = finite && {
        for x in s.iter_mut() {
            *x = over_real(*x, largest);
        }
        tridiagonal::tridiagonalize(s, n, vectors.as_deref_mut());
        // The QR steps' rotations combine columns of V: rows of Vᵀ, which lie in
        // memory together.
        if let Some(v) = vectors.as_deref_mut() {
            transpose_in_place(v, n);
        }
        let converged = tridiagonal::tridiagonal_qr(s, n, vectors.as_deref_mut());
        if let Some(v) = vectors.as_deref_mut() {
            transpose_in_place(v, n);
        }
        converged
    };
    if !converged {
        s.fill(nan);
        if let Some(v) = vectors {
            v.fill(nan);
        }
        return;
    }
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            s[i * n + j] = T::zero();
        }
        s[i * (n + 1)] = T::from_real(s[i * (n + 1)].re() * largest);
    }
    // Ascending, by selection: each smallest remaining value (and its vector)
    // swapped into place.
    for i in 0..n {
        let smallest =
            (i + 1..n).fold(i, |best, j| if s[j * n + j].re() < s[best * n + best].re() { j } else { best });
        if smallest != i {
            s.swap(i * n + i, smallest * n + smallest);
            if let Some(v) = vectors.as_deref_mut() {
                for k in 0..n {
                    v.swap(k * n + i, k * n + smallest);
                }
            }
        }
    }
}

/// M ← Mᵀ for a square M (n×n).
fn transpose_in_place<T>(m: &mut [T], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            m.swap(i * n + j, j * n + i);
        }
    }
}

/// The rotation (c, s) that zeroes the off-diagonal entry `pivot` (nonzero) of the
/// symmetric 2×2 matrix [[`first`, `pivot`], [`pivot`, `second`]] by JᵀMJ, J =
/// [[c, s], [−s, c]]: t = s/c the smaller root of t² + 2θt − 1 = 0, θ =
/// (`second` − `first`)/(2·`pivot`), written without |θ| so that duals get its
/// derivative at θ = 0 (equal diagonal entries).
#[inline(always)]
pub(super) fn jacobi_rotation<T: RealScalar>(first: T, second: T, pivot: T) -> (T, T) {
    let (one, two) = (T::one(), T::from_f64(2.0));
    let theta = (second - first) / (two * pivot);
    // Past 1/√ε, t = 1/(2θ) to working precision, where θ² would overflow.
    let tangent = if theta.abs() > one / T::epsilon().sqrt() {
        one / (two * theta)
    } else {
        let root = (theta * theta + one).sqrt();
        one / (if theta < T::zero() { theta - root } else { theta + root })
    };
    let cosine = one / (tangent * tangent + one).sqrt();
    (cosine, tangent * cosine)
}

/// For a tensor of duals, `add(inner, change)` for each level of its tangents from
/// the innermost out: `inner` is A with the tangents of the levels inside that one
/// (`values`, A's values, at the first) and `change` that level's part. A change's
/// square is 0, so a result defined by a first-order rule gains exactly that
/// level's part by its tangent at `inner` along `change`: the decompositions build
/// a nested dual's result so, one level at a time, with the factorisation itself
/// run on the values only.
pub(super) fn each_tangent_level<T: Scalar, S: Shape, K: Storage<T, S>>(
    a: &Tensor<T, S, K>,
    values: Tensor<T, S, K>,
    mut add: impl FnMut(&Tensor<T, S, K>, &Tensor<T, S, K>),
) {
    let mut inner = values;
    for levels in 1..=T::TANGENT_LEVELS {
        let with_level = a.map(|x| x.keep_inner_tangents(levels));
        add(&inner, &(&with_level - &inner));
        inner = with_level;
    }
}

/// x/gap, or 0 where both are 0: a coupling of two equal eigenvalues or singular
/// values that the tangent or cotangent leaves out stays finite (one it involves
/// is infinite or NaN: there is no derivative). Compared by value, so that on
/// duals a tangent over a nonzero gap is kept.
#[inline(always)]
pub(super) fn divided_by_gap<T: Scalar>(x: T, gap: T::Real) -> T {
    if x == T::zero() && gap == T::Real::zero() { T::zero() } else { over_real(x, gap) }
}

/// Fixes each column of V (n×n) so that its entry of largest magnitude (the first
/// of equal ones, [`largest_entry_row`]) is real and positive: negates it where
/// that entry is negative, or for complex V multiplies it by the conjugate of that
/// entry's phase (the entry set to its modulus, exactly real); the same column of
/// `partner` (n columns) with it.
pub(super) fn fix_signs<T: Scalar>(vectors: &mut [T], n: usize, mut partner: Option<&mut [T]>) {
    for j in 0..n {
        let row = largest_entry_row(vectors, n, j);
        let anchor = vectors[row * n + j];
        // The factor, and the anchor's value after it (exactly real: the product may
        // leave a rounding error in its imaginary part).
        let (factor, fixed) = if T::IS_COMPLEX {
            if anchor == T::zero() {
                continue;
            }
            let (modulus, unit) = polar(anchor);
            (unit.conj(), T::from_real(modulus))
        } else if anchor.re() < T::Real::zero() {
            (-T::one(), -anchor)
        } else {
            continue;
        };
        let column = vectors.iter_mut().skip(j).step_by(n);
        let partner_column = partner.iter_mut().flat_map(|partner| partner.iter_mut().skip(j).step_by(n));
        for x in column.chain(partner_column) {
            *x = if T::IS_COMPLEX { *x * factor } else { -*x };
        }
        vectors[row * n + j] = fixed;
    }
}

/// The row of column j's entry of largest magnitude in V (n×n), the first of
/// equal ones: the entry that [`fix_signs`] makes real and positive.
fn largest_entry_row<T: Scalar>(vectors: &[T], n: usize, j: usize) -> usize {
    (1..n).fold(0, |best, i| if vectors[i * n + j].abs() > vectors[best * n + j].abs() { i } else { best })
}

/// The row of column j's anchor in V (n×n) after [`fix_signs`]: the entry of
/// largest real part, the first of equal ones. The anchor, real and of largest
/// magnitude, has it; finding it again by magnitude could pick another entry of
/// equal magnitude up to rounding (the entries of a circulant's eigenvectors all
/// have one), which the phase made complex.
pub(super) fn anchor_row<T: Scalar>(vectors: &[T], n: usize, j: usize) -> usize {
    (1..n).fold(0, |best, i| if vectors[i * n + j].re() > vectors[best * n + j].re() { i } else { best })
}

/// −i·x/vᵣⱼ for the real part of a column's anchor vᵣⱼ: the turn of the column's
/// phase that keeps the anchor real when x is the imaginary part its tangent would
/// otherwise take, or that turn's cotangent weight (the eigenvectors' and the
/// singular vectors' derivatives).
pub(super) fn phase_turn<T: Scalar>(x: T::Real, anchor: T) -> T {
    T::from_parts(T::Real::zero(), -x / anchor.re())
}

/// Adds to `target` (n×n) the cotangent of the phase turns that keep the anchors of
/// V (`vectors`, n×n) real: column j gains −i·conj(vᵣₖ)·wⱼ/vᵣⱼ in row k, r column
/// j's anchor, with wⱼ the imaginary part of `target`'s jth diagonal entry (read
/// before column j changes; no other column's changes it) plus `extra(j)`.
pub(super) fn add_phase_cotangent<T: Scalar>(
    vectors: &[T],
    n: usize,
    target: &mut [T],
    extra: impl Fn(usize) -> T::Real,
) {
    for j in 0..n {
        let anchor = anchor_row(vectors, n, j);
        let turn = phase_turn(target[j * (n + 1)].im() + extra(j), vectors[anchor * n + j]);
        for k in 0..n {
            target[k * n + j] += turn * vectors[anchor * n + k].conj();
        }
    }
}

/// (c·a − s·b, s·a + c·b).
#[inline(always)]
pub(super) fn rotated<T: Scalar>((a, b): (T, T), (cosine, sine): (T::Real, T::Real)) -> (T, T) {
    (times_real(a, cosine) - times_real(b, sine), times_real(a, sine) + times_real(b, cosine))
}

/// The cotangent of λ = the eigenvalues of sym(A): Ā = V·diag(λ̄)·Vᵀ, V the
/// eigenvectors (found anew).
///
/// # Panics
/// When A is not square or λ̄ has another length.
#[track_caller]
pub fn symmetric_eigenvalues_pullback<T: RealScalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>>(
    a: &Tensor<T, (N, N), K>,
    values_bar: &Tensor<T, (N,), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("symmetric_eigenvalues_pullback", a.dims()));
    if values_bar.len() != a.shape().0.size() {
        panic!(
            "{}",
            ShapeError::new(
                "symmetric_eigenvalues_pullback",
                a.dims(),
                values_bar.dims(),
                "one cotangent per eigenvalue"
            )
        );
    }
    let vectors = a.symmetric_eigenvectors();
    vectors.mul_rows(values_bar).matmul_transposed(&vectors)
}

/// The tangent of λ = the eigenvalues of sym(A): λ̇ᵢ = vᵢᵀ·Ȧ·vᵢ, the diagonal of
/// Vᵀ·Ȧ·V.
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn symmetric_eigenvalues_push<T: RealScalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>>(
    a: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N,), K> {
    or_panic(check_square("symmetric_eigenvalues_push", a.dims()));
    or_panic(a.check_same_shape(a_dot, "symmetric_eigenvalues_push"));
    let vectors = a.symmetric_eigenvectors();
    vectors.transposed_matmul(&a_dot.matmul(&vectors)).diagonal()
}

/// Φ in place on an n×n matrix: the strict upper triangle zeroed, the diagonal
/// halved.
#[inline(always)]
fn lower_with_half_diagonal<T: Scalar>(matrix: &mut [T], n: usize) {
    let half = T::from_real(T::Real::from_f64(0.5));
    for i in 0..n {
        matrix[i * n + i] *= half;
        for entry in &mut matrix[i * n + i + 1..(i + 1) * n] {
            *entry = T::zero();
        }
    }
}

/// herm(M) = ½(M + Mᴴ) in place on an n×n matrix (sym for real M): each entry
/// replaced by the mean of itself and its mirror's conjugate, the diagonal by its
/// real part.
#[inline(always)]
fn hermitize<T: Scalar>(matrix: &mut [T], n: usize) {
    let half = T::from_real(T::Real::from_f64(0.5));
    for i in 0..n {
        if T::IS_COMPLEX {
            matrix[i * n + i] = T::from_real(matrix[i * n + i].re());
        }
        for j in i + 1..n {
            // Halves first: a sum of two entries past half the largest number overflows.
            let mean = matrix[i * n + j] * half + matrix[j * n + i].conj() * half;
            matrix[i * n + j] = mean;
            matrix[j * n + i] = mean.conj();
        }
    }
}
