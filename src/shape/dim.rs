//! Dimensions: [`Const<N>`] is known to the compiler, [`Dyn`] only at run time.
//!
//! Both implement [`Dim`], so a shape can mix them: `(Dyn, Const<3>)` is a batch of
//! any length of 3-vectors. Equality of two static dimensions is checked by the type
//! checker (the same `Const<N>` must appear twice); equality involving a [`Dyn`] is
//! checked when the operation runs.

use core::fmt;

/// One dimension of a shape: static ([`Const<N>`]) or dynamic ([`Dyn`]).
pub trait Dim: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// The size when the compiler knows it.
    const STATIC: Option<usize>;

    /// The size of this dimension.
    fn size(self) -> usize;

    /// The dimension of size `n`, or `None` when `Self` is static and `n` differs.
    fn from_size(n: usize) -> Option<Self>;
}

/// A dimension of size `N`, known at compile time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Const<const N: usize>;

/// A dimension whose size is known only at run time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Dyn(pub usize);

impl<const N: usize> fmt::Debug for Const<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Const<{N}>")
    }
}

impl<const N: usize> Dim for Const<N> {
    const STATIC: Option<usize> = Some(N);

    #[inline(always)]
    fn size(self) -> usize {
        N
    }

    fn from_size(n: usize) -> Option<Self> {
        (n == N).then_some(Const)
    }
}

impl Dim for Dyn {
    const STATIC: Option<usize> = None;

    #[inline(always)]
    fn size(self) -> usize {
        self.0
    }

    fn from_size(n: usize) -> Option<Self> {
        Some(Dyn(n))
    }
}
