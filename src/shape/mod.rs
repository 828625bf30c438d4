//! Shapes: tuples of dimensions, rank 0 to 4, stored row-major.
//!
//! A shape is `()`, `(A,)`, `(A, B)`, `(A, B, C)` or `(A, B, C, D)` where each
//! letter is a [`Dim`]: [`Const<N>`] (checked by the compiler) or [`Dyn`] (checked at
//! run time). Element `[i₀, …, i_{r-1}]` lives at flat offset Σ iₖ·strideₖ with
//! strideₖ = Π_{j>k} dimⱼ.
//!
//! Relations that type unification cannot state (reshaping, concatenation, slicing,
//! broadcasting, axis indices) are the constraint traits of [`constraint`].

pub mod constraint;
mod dim;

use core::fmt;

pub use dim::{Const, Dim, Dyn};

/// The highest rank fluxion supports.
pub const MAX_RANK: usize = 4;

/// The run-time sizes of a shape, used in error messages and generic kernels.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dims {
    rank: usize,
    sizes: [usize; MAX_RANK],
}

impl Dims {
    /// Sizes from a slice of at most [`MAX_RANK`] entries.
    ///
    /// # Panics
    /// When `sizes` has more than [`MAX_RANK`] entries.
    pub fn new(sizes: &[usize]) -> Self {
        assert!(sizes.len() <= MAX_RANK, "rank {} exceeds the maximum {MAX_RANK}", sizes.len());
        let mut all = [0; MAX_RANK];
        all[..sizes.len()].copy_from_slice(sizes);
        Dims { rank: sizes.len(), sizes: all }
    }

    /// The sizes, one per axis.
    pub fn as_slice(&self) -> &[usize] {
        &self.sizes[..self.rank]
    }

    /// The number of elements, Π sizes (1 for rank 0).
    ///
    /// # Panics
    /// When the product overflows `usize` (no tensor of that shape can exist).
    #[track_caller]
    pub fn num_elements(&self) -> usize {
        match self.checked_num_elements() {
            Some(count) => count,
            None => panic!("the shape {self} has more elements than a usize counts"),
        }
    }

    /// The number of elements, or `None` when it overflows `usize`.
    pub fn checked_num_elements(&self) -> Option<usize> {
        self.as_slice().iter().try_fold(1usize, |count, &size| count.checked_mul(size))
    }

    /// Splits the row-major layout around `axis` into `(outer, len, inner)`: the element
    /// at `(o, k, i)` lives at `(o·len + k)·inner + i`.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let sizes = self.as_slice();
        let outer = sizes[..axis].iter().product();
        let inner = sizes[axis + 1..].iter().product();
        (outer, sizes[axis], inner)
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A tensor shape: a tuple of up to four [`Dim`]s.
pub trait Shape: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Number of axes.
    const RANK: usize;

    /// A multi-index into a tensor of this shape, `[usize; RANK]`.
    type Index: Copy + fmt::Debug;

    /// The run-time sizes.
    fn dims(&self) -> Dims;

    /// The shape with these sizes, or `None` when the rank differs or a static
    /// dimension disagrees.
    fn from_dims(sizes: &[usize]) -> Option<Self>;

    /// The shape when the compiler knows every dimension (all [`Const`]), else
    /// `None`.
    fn known() -> Option<Self>;

    /// Row-major flat offset of `index`, or `None` when it is out of bounds.
    fn offset(&self, index: Self::Index) -> Option<usize>;

    /// The multi-index of flat offset `offset` (row-major).
    fn unravel(&self, offset: usize) -> Self::Index;

    /// The number of elements.
    #[inline(always)]
    #[track_caller]
    fn num_elements(&self) -> usize {
        self.dims().num_elements()
    }
}

/// A shape whose every dimension is [`Const`]: it needs no run-time information and
/// its elements can be stored inline in a nested array.
pub trait StaticShape: Shape + Default {
    /// The nested array holding the elements: `[[T; C]; R]` for `(Const<R>, Const<C>)`,
    /// `[T; 1]` for rank 0.
    type Array<T: Copy>: FlatArray<T>;

    /// The number of elements.
    const NUM_ELEMENTS: usize;
}

/// A (possibly nested) array viewed as one contiguous row-major slice.
pub trait FlatArray<T>: Copy {
    /// Builds the array from its flat (row-major) elements.
    fn from_flat_fn(f: impl FnMut(usize) -> T) -> Self;
    /// The array with every element `value`.
    fn filled(value: T) -> Self;
    /// The elements, row-major.
    fn as_flat(&self) -> &[T];
    /// The elements, row-major, mutably.
    fn as_flat_mut(&mut self) -> &mut [T];
}

/// Writes `f(i)` into every element after the first. Filling an array with its first
/// element and then writing the rest is a plain loop the compiler vectorises, where
/// nested `array::from_fn` closures are not inlined.
#[inline(always)]
fn fill_rest<T>(flat: &mut [T], mut f: impl FnMut(usize) -> T) {
    for (i, x) in flat.iter_mut().enumerate().skip(1) {
        *x = f(i);
    }
}

impl<T: Copy, const A: usize> FlatArray<T> for [T; A] {
    #[inline(always)]
    fn filled(value: T) -> Self {
        [value; A]
    }
    #[inline(always)]
    fn from_flat_fn(mut f: impl FnMut(usize) -> T) -> Self {
        if A == 0 {
            return core::array::from_fn(f);
        }
        let mut array = [f(0); A];
        fill_rest(&mut array, f);
        array
    }
    #[inline(always)]
    fn as_flat(&self) -> &[T] {
        self
    }
    #[inline(always)]
    fn as_flat_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<T: Copy, const A: usize, const B: usize> FlatArray<T> for [[T; B]; A] {
    #[inline(always)]
    fn filled(value: T) -> Self {
        [[value; B]; A]
    }
    #[inline(always)]
    fn from_flat_fn(mut f: impl FnMut(usize) -> T) -> Self {
        if A * B == 0 {
            return core::array::from_fn(|i| core::array::from_fn(|j| f(i * B + j)));
        }
        let mut array = [[f(0); B]; A];
        fill_rest(array.as_flat_mut(), f);
        array
    }
    #[inline(always)]
    fn as_flat(&self) -> &[T] {
        self.as_flattened()
    }
    #[inline(always)]
    fn as_flat_mut(&mut self) -> &mut [T] {
        self.as_flattened_mut()
    }
}

impl<T: Copy, const A: usize, const B: usize, const C: usize> FlatArray<T> for [[[T; C]; B]; A] {
    #[inline(always)]
    fn filled(value: T) -> Self {
        [[[value; C]; B]; A]
    }
    #[inline(always)]
    fn from_flat_fn(mut f: impl FnMut(usize) -> T) -> Self {
        if A * B * C == 0 {
            return core::array::from_fn(|i| {
                core::array::from_fn(|j| core::array::from_fn(|k| f((i * B + j) * C + k)))
            });
        }
        let mut array = [[[f(0); C]; B]; A];
        fill_rest(array.as_flat_mut(), f);
        array
    }
    #[inline(always)]
    fn as_flat(&self) -> &[T] {
        self.as_flattened().as_flattened()
    }
    #[inline(always)]
    fn as_flat_mut(&mut self) -> &mut [T] {
        self.as_flattened_mut().as_flattened_mut()
    }
}

impl<T: Copy, const A: usize, const B: usize, const C: usize, const D: usize> FlatArray<T>
    for [[[[T; D]; C]; B]; A]
{
    #[inline(always)]
    fn filled(value: T) -> Self {
        [[[[value; D]; C]; B]; A]
    }
    #[inline(always)]
    fn from_flat_fn(mut f: impl FnMut(usize) -> T) -> Self {
        if A * B * C * D == 0 {
            return core::array::from_fn(|i| {
                core::array::from_fn(|j| {
                    core::array::from_fn(|k| core::array::from_fn(|l| f(((i * B + j) * C + k) * D + l)))
                })
            });
        }
        let mut array = [[[[f(0); D]; C]; B]; A];
        fill_rest(array.as_flat_mut(), f);
        array
    }
    #[inline(always)]
    fn as_flat(&self) -> &[T] {
        self.as_flattened().as_flattened().as_flattened()
    }
    #[inline(always)]
    fn as_flat_mut(&mut self) -> &mut [T] {
        self.as_flattened_mut().as_flattened_mut().as_flattened_mut()
    }
}

macro_rules! impl_shape {
    ($rank:literal; $($D:ident $i:tt),*) => {
        impl<$($D: Dim),*> Shape for ($($D,)*) {
            const RANK: usize = $rank;
            type Index = [usize; $rank];

            #[inline(always)]
            fn dims(&self) -> Dims {
                Dims::new(&[$(self.$i.size()),*])
            }

            fn from_dims(sizes: &[usize]) -> Option<Self> {
                if sizes.len() != $rank {
                    return None;
                }
                Some(($($D::from_size(sizes[$i])?,)*))
            }

            #[inline(always)]
            fn known() -> Option<Self> {
                Some(($($D::from_size($D::STATIC?)?,)*))
            }

            #[inline(always)]
            #[allow(unused_mut, unused_variables)]
            fn offset(&self, index: [usize; $rank]) -> Option<usize> {
                let mut offset = 0;
                $(
                    if index[$i] >= self.$i.size() {
                        return None;
                    }
                    offset = offset * self.$i.size() + index[$i];
                )*
                Some(offset)
            }

            /// Divides by each size from the last axis: for `Const` dimensions the
            /// sizes are constants and the divisions become multiplications.
            #[inline(always)]
            #[allow(unused_mut, unused_variables)]
            fn unravel(&self, offset: usize) -> [usize; $rank] {
                let sizes: [usize; $rank] = [$(self.$i.size()),*];
                let mut index = [0; $rank];
                let mut rest = offset;
                for axis in (0..$rank).rev() {
                    index[axis] = rest % sizes[axis];
                    rest /= sizes[axis];
                }
                index
            }
        }
    };
}

impl_shape!(0;);
impl_shape!(1; A 0);
impl_shape!(2; A 0, B 1);
impl_shape!(3; A 0, B 1, C 2);
impl_shape!(4; A 0, B 1, C 2, D 3);

impl StaticShape for () {
    type Array<T: Copy> = [T; 1];
    const NUM_ELEMENTS: usize = 1;
}

impl<const A: usize> StaticShape for (Const<A>,) {
    type Array<T: Copy> = [T; A];
    const NUM_ELEMENTS: usize = A;
}

impl<const A: usize, const B: usize> StaticShape for (Const<A>, Const<B>) {
    type Array<T: Copy> = [[T; B]; A];
    const NUM_ELEMENTS: usize = A * B;
}

impl<const A: usize, const B: usize, const C: usize> StaticShape for (Const<A>, Const<B>, Const<C>) {
    type Array<T: Copy> = [[[T; C]; B]; A];
    const NUM_ELEMENTS: usize = A * B * C;
}

impl<const A: usize, const B: usize, const C: usize, const D: usize> StaticShape
    for (Const<A>, Const<B>, Const<C>, Const<D>)
{
    type Array<T: Copy> = [[[[T; D]; C]; B]; A];
    const NUM_ELEMENTS: usize = A * B * C * D;
}
