//! Constructors: filled, from a function of the index, from nested arrays, from
//! slices and vectors (run-time checked), and seeded random initialisation.

#[cfg(feature = "alloc")]
use super::Heap;
use super::{Storage, Tensor};
use crate::error::ShapeError;
use crate::scalar::Scalar;
use crate::shape::{Const, Dim, Dims, FlatArray, Shape, StaticShape};

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// A tensor of `shape` with every element `value`.
    #[inline]
    pub fn full_shaped(shape: S, value: T) -> Self {
        Tensor::from_buffer(shape, K::filled(&shape, value))
    }

    /// A tensor of `shape` whose element at index `i` is `f(i)`.
    #[inline(always)]
    pub fn from_shape_fn(shape: S, mut f: impl FnMut(S::Index) -> T) -> Self {
        Self::from_flat_fn(shape, |offset| f(shape.unravel(offset)))
    }

    /// A tensor of `shape` holding a copy of `data` (row-major); an error names both
    /// shapes when the lengths differ.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let m = DMatrix::from_shape_slice((Dyn(2), Dyn(2)), &[1.0, 2.0, 3.0, 4.0]).unwrap();
    /// assert_eq!(m[[1, 1]], 4.0);
    /// assert!(DMatrix::from_shape_slice((Dyn(2), Dyn(2)), &[1.0]).is_err());
    /// ```
    pub fn from_shape_slice(shape: S, data: &[T]) -> Result<Self, ShapeError> {
        check_len(&shape, data.len())?;
        Ok(Self::from_flat_fn(shape, |i| data[i]))
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// A tensor of `shape` filled with zeros.
    #[inline]
    pub fn zeros_shaped(shape: S) -> Self {
        Self::full_shaped(shape, T::zero())
    }

    /// A tensor of `shape` filled with ones.
    pub fn ones_shaped(shape: S) -> Self {
        Self::full_shaped(shape, T::one())
    }
}

impl<T: Scalar, D: Dim, K: Storage<T, (D, D)>> Tensor<T, (D, D), K> {
    /// The identity matrix of `size` rows and columns (`torch.eye`, `jnp.eye`):
    /// ones on the diagonal, zeros elsewhere.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let i = DMatrix::<f64>::identity_sized(Dyn(3));
    /// assert_eq!((i[[1, 1]], i[[1, 2]]), (1.0, 0.0));
    /// let a: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]);
    /// assert_eq!(Matrix::identity().matmul(&a), a);
    /// ```
    pub fn identity_sized(size: D) -> Self {
        Self::from_shape_fn((size, size), |[row, column]| if row == column { T::one() } else { T::zero() })
    }
}

impl<T: Scalar, const N: usize, K: Storage<T, (Const<N>, Const<N>)>> Tensor<T, (Const<N>, Const<N>), K> {
    /// The N×N identity matrix ([`Tensor::identity_sized`] for a static size).
    pub fn identity() -> Self {
        Self::identity_sized(Const)
    }
}

#[cfg(feature = "alloc")]
impl<T: Copy + 'static, S: Shape> Tensor<T, S, Heap> {
    /// A heap tensor of `shape` that takes ownership of `data` (row-major); an error
    /// names both shapes when the lengths differ.
    pub fn from_shape_vec(shape: S, data: alloc::vec::Vec<T>) -> Result<Self, ShapeError> {
        check_len(&shape, data.len())?;
        Ok(Tensor { shape, data: super::storage::HeapBuffer::new(data) })
    }

    /// The elements in row-major order, in the tensor's own allocation (its capacity
    /// may exceed the length) unless a clone of this tensor still shares them, when
    /// they are copied.
    pub fn into_vec(self) -> alloc::vec::Vec<T> {
        self.data.into_vec()
    }
}

fn check_len<S: Shape>(shape: &S, len: usize) -> Result<(), ShapeError> {
    if shape.dims().checked_num_elements() == Some(len) {
        Ok(())
    } else {
        Err(ShapeError::new(
            "from_shape",
            shape.dims(),
            Dims::new(&[len]),
            "the data must hold exactly one element per position of the shape",
        ))
    }
}

impl<T: Copy, S: StaticShape, K: Storage<T, S>> Tensor<T, S, K> {
    /// A tensor with every element `value`.
    pub fn full(value: T) -> Self {
        Self::full_shaped(S::default(), value)
    }

    /// A tensor whose element at index `i` is `f(i)`.
    ///
    /// As fast as building the nested array with `core::array::from_fn` (criterion
    /// group `construction`).
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let eye: Matrix<f64, 3, 3> = Matrix::from_fn(|[i, j]| if i == j { 1.0 } else { 0.0 });
    /// assert_eq!(eye[[2, 2]], 1.0);
    /// ```
    #[inline(always)]
    pub fn from_fn(f: impl FnMut(S::Index) -> T) -> Self {
        Self::from_shape_fn(S::default(), f)
    }

    /// A tensor from nested arrays; the array type is fixed by the shape, so a
    /// mismatch is a type error.
    pub fn from_array(array: S::Array<T>) -> Self {
        let flat = array.as_flat();
        Self::from_flat_fn(S::default(), |i| flat[i])
    }

    /// The elements as nested arrays.
    pub fn to_array(&self) -> S::Array<T> {
        let flat = self.as_slice();
        <S::Array<T>>::from_flat_fn(|i| flat[i])
    }
}

impl<T: Scalar, S: StaticShape, K: Storage<T, S>> Tensor<T, S, K> {
    /// A tensor of zeros.
    pub fn zeros() -> Self {
        Self::zeros_shaped(S::default())
    }

    /// A tensor of ones.
    pub fn ones() -> Self {
        Self::ones_shaped(S::default())
    }
}

#[cfg(feature = "std")]
mod random {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};

    use super::*;
    use crate::scalar::RealScalar;

    impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
        /// Elements drawn uniformly from `[low, high)` with a generator seeded by
        /// `seed` (the same seed gives the same tensor). Complex elements draw the real
        /// and imaginary parts independently.
        ///
        /// # Panics
        /// When a bound is not finite, or `low > high`.
        #[track_caller]
        pub fn random_uniform_shaped(shape: S, low: T::Real, high: T::Real, seed: u64) -> Self {
            let mut rng = StdRng::seed_from_u64(seed);
            let (low, high) = (low.to_f64(), high.to_f64());
            assert!(
                low.is_finite() && high.is_finite() && low <= high,
                "random_uniform: the bounds {low} and {high} must be finite, the first at most the second"
            );
            let high_real = <T::Real>::from_f64(high);
            // Redraw the rare values that round up to `high` in a narrower type.
            let mut draw = move || loop {
                let value = <T::Real>::from_f64(low + (high - low) * rng.random::<f64>());
                if value < high_real || low >= high {
                    break value;
                }
            };
            Self::from_flat_fn(shape, |_| {
                let re = draw();
                T::from_parts(re, if T::IS_COMPLEX { draw() } else { re })
            })
        }

        /// Elements drawn from a normal distribution with the given mean and standard
        /// deviation, seeded by `seed`. Complex elements are `mean + std·(x + iy)/√2`
        /// with x, y standard normal, so that E|z − mean|² = std².
        ///
        /// # Panics
        /// When the mean is not finite, or the standard deviation is negative or not
        /// finite.
        #[track_caller]
        pub fn random_normal_shaped(shape: S, mean: T::Real, std_dev: T::Real, seed: u64) -> Self {
            let mut rng = StdRng::seed_from_u64(seed);
            let (mean, std_dev) = (mean.to_f64(), std_dev.to_f64());
            assert!(
                mean.is_finite() && std_dev.is_finite() && std_dev >= 0.0,
                "random_normal: the mean {mean} must be finite and the standard deviation {std_dev} a finite number ≥ 0"
            );
            let mut standard = move || -> f64 { StandardNormal.sample(&mut rng) };
            Self::from_flat_fn(shape, |_| {
                if T::IS_COMPLEX {
                    let scale = std_dev * core::f64::consts::FRAC_1_SQRT_2;
                    let (x, y) = (standard(), standard());
                    T::from_parts(<T::Real>::from_f64(mean + scale * x), <T::Real>::from_f64(scale * y))
                } else {
                    T::from_real(<T::Real>::from_f64(mean + std_dev * standard()))
                }
            })
        }
    }

    impl<T: Scalar, S: StaticShape, K: Storage<T, S>> Tensor<T, S, K> {
        /// [`Tensor::random_uniform_shaped`] for a static shape.
        ///
        /// ```
        /// use fluxion::prelude::*;
        /// let a: Vector<f64, 4> = Vector::random_uniform(-1.0, 1.0, 7);
        /// assert_eq!(a, Vector::random_uniform(-1.0, 1.0, 7));
        /// assert!(a.iter().all(|x| (-1.0..1.0).contains(x)));
        /// ```
        pub fn random_uniform(low: T::Real, high: T::Real, seed: u64) -> Self {
            Self::random_uniform_shaped(S::default(), low, high, seed)
        }

        /// [`Tensor::random_normal_shaped`] for a static shape.
        pub fn random_normal(mean: T::Real, std_dev: T::Real, seed: u64) -> Self {
            Self::random_normal_shaped(S::default(), mean, std_dev, seed)
        }
    }
}
