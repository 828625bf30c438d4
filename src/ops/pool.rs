//! Pooling of image batches `(B, C, H, W)`, with every static size checked at compile
//! time.
//!
//! A pooling reads K×K windows moved S positions per output over the images padded
//! by P at every edge: output (i, j) reads rows S·i + p − P and columns S·j + q − P
//! for p, q < K, those inside the image. `HO = ⌊(H + 2P − K)/S⌋ + 1`, with 2P ≤ K so
//! that every window reads the image (PyTorch's rule); the default stride is the
//! window and the default padding 0, giving `HO = ⌊H/K⌋` (the rest is dropped).
//!
//! - `max_pool2d::<K, HO, WO>()`, `max_pool2d_strided(Window::<K>, Stride::<S>,
//!   Padding::<P>)`: the largest element of each window (padding is never the
//!   maximum: PyTorch pads with −∞);
//! - `avg_pool2d::<K, HO, WO>()`, `avg_pool2d_strided(…)`: the sum of each window's
//!   elements inside the image over K² (PyTorch's `count_include_pad=True`, its
//!   default: padding counts as zeros).
//!
//! Derivatives: max pooling gives ẏ = ẋ at each window's first largest element (its
//! first NaN if it has one) and x̄ the sum of ȳ over the windows whose first largest
//! element it is; average pooling is linear, so ẏ is ẋ pooled and x̄_{h w} = Σ ȳ_{i j}/K²
//! over the windows (i, j) that read (h, w). An element no window reads gets 0.

use core::ops::Range;

use crate::ops::conv::{Padding, Stride};
use crate::scalar::{RealScalar, overtakes};
use crate::shape::constraint::{PadsPoolingWindow, PoolsTo};
use crate::shape::{Const, Dim};
use crate::tensor::{Storage, Tensor};

/// A batch of images.
type Images<T, B, const C: usize, const H: usize, const W: usize, Kind> =
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), Kind>;

/// A pooling window of K×K, as an argument:
/// `x.max_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window<const K: usize>;

/// The windows of a pooling along one axis: `window` positions moved `stride` per
/// output over `inputs` positions padded by `padding`, giving `outputs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowAxis {
    pub window: usize,
    pub stride: usize,
    pub padding: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl WindowAxis {
    /// The input positions output `i` reads: S·i + p − P for p < K, inside the axis.
    pub fn reads(&self, i: usize) -> Range<usize> {
        let start = (self.stride * i).saturating_sub(self.padding);
        let end = (self.stride * i + self.window).saturating_sub(self.padding).min(self.inputs);
        start..end
    }

    /// The outputs whose windows read input position `h`: the i with
    /// S·i − P ≤ h < S·i − P + K.
    pub fn read_by(&self, h: usize) -> Range<usize> {
        let reach = h + self.padding;
        let first = if reach >= self.window { (reach - self.window) / self.stride + 1 } else { 0 };
        first..(reach / self.stride + 1).min(self.outputs)
    }
}

/// The windows of pooling `H × W` images with K, S and P into `HO × WO`.
#[derive(Clone, Copy, Debug)]
struct Windows {
    rows: WindowAxis,
    columns: WindowAxis,
}

impl Windows {
    fn new<
        const H: usize,
        const W: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >() -> Self {
        let () = <Const<P> as PadsPoolingWindow<K>>::CHECK;
        let axis = |inputs, outputs| WindowAxis { window: K, stride: S, padding: P, inputs, outputs };
        Windows { rows: axis(H, HO), columns: axis(W, WO) }
    }

    fn image_size(&self) -> usize {
        self.rows.inputs * self.columns.inputs
    }

    fn pooled_size(&self) -> usize {
        self.rows.outputs * self.columns.outputs
    }

    /// The flat indices into `x` that output `flat` reads, row by row.
    fn read(&self, flat: usize) -> impl Iterator<Item = usize> {
        let (image, i, j) = (
            flat / self.pooled_size(),
            flat / self.columns.outputs % self.rows.outputs,
            flat % self.columns.outputs,
        );
        let (columns, width, base) = (self.columns.reads(j), self.columns.inputs, image * self.image_size());
        self.rows.reads(i).flat_map(move |h| columns.clone().map(move |w| base + h * width + w))
    }

    /// The flat indices of the outputs that read input `flat`, in order.
    fn read_by(&self, flat: usize) -> impl Iterator<Item = usize> {
        let (image, h, w) = (
            flat / self.image_size(),
            flat / self.columns.inputs % self.rows.inputs,
            flat % self.columns.inputs,
        );
        let (columns, wo, base) = (self.columns.read_by(w), self.columns.outputs, image * self.pooled_size());
        self.rows.read_by(h).flat_map(move |i| columns.clone().map(move |j| base + i * wo + j))
    }

    /// The flat index of output `flat`'s first largest element (its first NaN if it
    /// has one).
    fn maximum<T: RealScalar>(&self, x: &[T], flat: usize) -> usize {
        let mut window = self.read(flat);
        let first = window.next().expect("every window reads the image: 2P ≤ K and the image is not empty");
        window.fold(first, |best, at| if overtakes(x[at], x[best]) { at } else { best })
    }
}

impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, Kind> Images<T, B, C, H, W, Kind>
where
    Kind: Storage<T, (B, Const<C>, Const<H>, Const<W>)>,
{
    /// The maximum of each K×K window, with stride K; `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)` is
    /// checked at compile time.
    pub fn max_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Images<T, B, C, HO, WO, Kind>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
        Kind: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        self.max_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The maximum of each K×K window moved S positions per output over the images
    /// padded by P (PyTorch's `max_pool2d(x, K, S, P)`); `HO = ⌊(H + 2P − K)/S⌋ + 1`
    /// and 2P ≤ K are checked at compile time.
    pub fn max_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        _: Window<K>,
        _: Stride<S>,
        _: Padding<P>,
    ) -> Images<T, B, C, HO, WO, Kind>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
        Kind: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        let (x, windows) = (self.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>());
        Tensor::from_flat_fn((self.shape().0, Const, Const, Const), |flat| x[windows.maximum(x, flat)])
    }

    /// The mean of each K×K window, with stride K (PyTorch's `avg_pool2d(x, K)`);
    /// `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)` is checked at compile time.
    pub fn avg_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Images<T, B, C, HO, WO, Kind>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
        Kind: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        self.avg_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The sum of each K×K window's elements inside the images over K², the window
    /// moved S positions per output over the images padded by P (PyTorch's
    /// `avg_pool2d(x, K, S, P)`, padding counted as zeros); sizes as for
    /// [`max_pool2d_strided`](Self::max_pool2d_strided).
    pub fn avg_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        _: Window<K>,
        _: Stride<S>,
        _: Padding<P>,
    ) -> Images<T, B, C, HO, WO, Kind>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
        Kind: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        let (x, windows, count) =
            (self.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>(), window_count::<T, K>());
        Tensor::from_flat_fn((self.shape().0, Const, Const, Const), |flat| {
            windows.read(flat).fold(T::zero(), |total, at| total + x[at]) / count
        })
    }
}

/// K² in the element type.
fn window_count<T: RealScalar, const K: usize>() -> T {
    T::from_f64((K * K) as f64)
}

/// The pushforward of `max_pool2d_strided` (and `max_pool2d`): each ẏ is ẋ at the
/// first maximum of its window.
pub fn max_pool2d_push<
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
    Kind,
>(
    x: &Images<T, B, C, H, W, Kind>,
    x_dot: &Images<T, B, C, H, W, Kind>,
    _: (Window<K>, Stride<S>, Padding<P>),
) -> Images<T, B, C, HO, WO, Kind>
where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
    Kind: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
{
    let (xs, tangent, windows) = (x.as_slice(), x_dot.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>());
    Tensor::from_flat_fn((x.shape().0, Const, Const, Const), |flat| tangent[windows.maximum(xs, flat)])
}

/// The pullback of `max_pool2d_strided` (and `max_pool2d`): each element gets the sum
/// of ȳ over the windows whose first maximum it is, in the windows' order.
pub fn max_pool2d_pullback<
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
    Kind,
>(
    x: &Images<T, B, C, H, W, Kind>,
    y_bar: &Images<T, B, C, HO, WO, Kind>,
    _: (Window<K>, Stride<S>, Padding<P>),
) -> Images<T, B, C, H, W, Kind>
where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
    Kind: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
{
    let (xs, windows) = (x.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>());
    let mut x_bar = Tensor::zeros_shaped(x.shape());
    let target = x_bar.as_mut_slice();
    for (window, &g) in y_bar.as_slice().iter().enumerate() {
        target[windows.maximum(xs, window)] += g;
    }
    x_bar
}

/// The pullback of `avg_pool2d_strided` (and `avg_pool2d`): each element gets the sum
/// of ȳ/K² over the windows that read it, 0 if none does. (Its pushforward is the
/// pooling of ẋ: the pooling is linear.)
pub fn avg_pool2d_pullback<
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
    Kind,
>(
    y_bar: &Images<T, B, C, HO, WO, Kind>,
    _: (Window<K>, Stride<S>, Padding<P>),
) -> Images<T, B, C, H, W, Kind>
where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
    Kind: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
{
    let (g, windows, count) =
        (y_bar.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>(), window_count::<T, K>());
    Tensor::from_flat_fn((y_bar.shape().0, Const, Const, Const), |flat| {
        windows.read_by(flat).fold(T::zero(), |total, window| total + g[window] / count)
    })
}
