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
use crate::shape::{Const, Dim, Shape};
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
struct WindowAxis {
    window: usize,
    stride: usize,
    padding: usize,
    inputs: usize,
    outputs: usize,
}

impl WindowAxis {
    /// The input positions output `i` reads: S·i + p − P for p < K, inside the axis.
    fn reads(&self, i: usize) -> Range<usize> {
        let start = (self.stride * i).saturating_sub(self.padding);
        let end = (self.stride * i + self.window).saturating_sub(self.padding).min(self.inputs);
        start..end
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

    /// The elements of one image plane.
    fn plane_size(&self) -> usize {
        self.rows.inputs * self.columns.inputs
    }

    /// `visit(output, offset, window)` for every output of `elements` elements of
    /// images, in order: the output's flat index, the offset of the plane its window
    /// is in, and the window's elements in that plane.
    fn each_window(&self, elements: usize, mut visit: impl FnMut(usize, usize, &WindowReads)) {
        let (ho, wo, size) = (self.rows.outputs, self.columns.outputs, self.plane_size());
        for index in 0..elements / size.max(1) {
            for i in 0..ho {
                let rows = self.rows.reads(i);
                for j in 0..wo {
                    let window = WindowReads {
                        rows: rows.clone(),
                        columns: self.columns.reads(j),
                        width: self.columns.inputs,
                    };
                    visit((index * ho + i) * wo + j, index * size, &window);
                }
            }
        }
    }

    /// `visit(output, at)` for every output of the images `x`, in order, with `at` the
    /// offset in `x` of its window's first largest element (its first NaN if it has
    /// one). Windows that tile the images (stride K, no padding) are read with the
    /// window's size known to the compiler.
    fn each_maximum<const K: usize, T: RealScalar>(&self, x: &[T], mut visit: impl FnMut(usize, usize)) {
        let size = self.plane_size();
        if !self.tiles::<K>() {
            self.each_window(x.len(), |output, offset, window| {
                visit(output, offset + window.maximum(&x[offset..offset + size]))
            });
            return;
        }
        let (width, ho, wo) = (self.columns.inputs, self.rows.outputs, self.columns.outputs);
        for (index, plane) in x.chunks_exact(size.max(1)).enumerate() {
            for i in 0..ho {
                for j in 0..wo {
                    let corner = K * (i * width + j);
                    let mut best = corner;
                    for r in 0..K {
                        for at in corner + r * width..corner + r * width + K {
                            if overtakes(plane[at], plane[best]) {
                                best = at;
                            }
                        }
                    }
                    visit((index * ho + i) * wo + j, index * size + best);
                }
            }
        }
    }

    /// Whether the windows are K×K tiles: stride K and no padding.
    fn tiles<const K: usize>(&self) -> bool {
        [self.rows, self.columns].iter().all(|axis| axis.window == K && axis.stride == K && axis.padding == 0)
    }
}

/// The elements of a plane that one window reads: `rows` × `columns` of a plane
/// `width` wide.
struct WindowReads {
    rows: Range<usize>,
    columns: Range<usize>,
    width: usize,
}

impl WindowReads {
    /// The offsets of one row of the window's elements.
    fn row(&self, h: usize) -> Range<usize> {
        h * self.width + self.columns.start..h * self.width + self.columns.end
    }

    /// The offset of the first largest element (its first NaN if it has one), read
    /// row by row.
    fn maximum<T: RealScalar>(&self, plane: &[T]) -> usize {
        let mut best = self.rows.start * self.width + self.columns.start;
        for h in self.rows.clone() {
            for at in self.row(h) {
                if overtakes(plane[at], plane[best]) {
                    best = at;
                }
            }
        }
        best
    }
}

/// One value per window of the images `x` into `out`, folded row by row: `first` of
/// the elements a window reads in its first row, then `rest(value, elements)` for
/// each further row (a fold over the window in row-major order, with the columns of
/// every output of a row taken at once, as consecutive chunks of K when the windows
/// tile the row).
fn fold_windows<T: Copy, const K: usize>(
    windows: &Windows,
    x: &[T],
    out: &mut [T],
    first: impl Fn(&[T]) -> T,
    rest: impl Fn(T, &[T]) -> T,
) {
    let (width, wo, size) = (windows.columns.inputs, windows.columns.outputs, windows.plane_size());
    let tiled = windows.tiles::<K>();
    for (plane, out) in
        x.chunks_exact(size.max(1)).zip(out.chunks_exact_mut((windows.rows.outputs * wo).max(1)))
    {
        for (i, out) in out.chunks_exact_mut(wo.max(1)).enumerate() {
            for (r, h) in windows.rows.reads(i).enumerate() {
                let row = &plane[h * width..][..width];
                let apply = |value: &mut T, elements: &[T]| {
                    *value = if r == 0 { first(elements) } else { rest(*value, elements) }
                };
                if tiled {
                    out.iter_mut()
                        .zip(row.chunks_exact(K))
                        .for_each(|(value, elements)| apply(value, elements));
                } else {
                    for (j, value) in out.iter_mut().enumerate() {
                        apply(value, &row[windows.columns.reads(j)]);
                    }
                }
            }
        }
    }
}

/// Zeros of `shape`, then `fill` on their elements.
fn filled<T: RealScalar, S: Shape, Kind: Storage<T, S>>(
    shape: S,
    fill: impl FnOnce(&mut [T]),
) -> Tensor<T, S, Kind> {
    let mut out = Tensor::zeros_shaped(shape);
    fill(out.as_mut_slice());
    out
}

/// A pooling's two methods on host image batches: `$plain::<K, HO, WO>()` (stride K,
/// no padding) and `$strided(Window::<K>, Stride::<S>, Padding::<P>)`, whose value
/// `$value` computes from `x` (the images' elements), `windows` and `out` (the
/// output's elements, zeros at first).
macro_rules! pooling_methods {
    (
        $(#[$plain_doc:meta])* $plain:ident,
        $(#[$strided_doc:meta])* $strided:ident,
        |$x:ident, $windows:ident, $out:ident| $value:expr
    ) => {
        $(#[$plain_doc])*
        pub fn $plain<const K: usize, const HO: usize, const WO: usize>(&self) -> Images<T, B, C, HO, WO, Kind>
        where
            Const<H>: PoolsTo<K, HO>,
            Const<W>: PoolsTo<K, WO>,
            Kind: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
        {
            self.$strided(Window::<K>, Stride::<K>, Padding::<0>)
        }

        $(#[$strided_doc])*
        pub fn $strided<const K: usize, const S: usize, const P: usize, const HO: usize, const WO: usize>(
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
            let ($x, $windows) = (self.as_slice(), Windows::new::<H, W, K, S, P, HO, WO>());
            filled((self.shape().0, Const, Const, Const), |$out: &mut [T]| $value)
        }
    };
}

impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, Kind> Images<T, B, C, H, W, Kind>
where
    Kind: Storage<T, (B, Const<C>, Const<H>, Const<W>)>,
{
    pooling_methods!(
        /// The maximum of each K×K window, with stride K; `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)`
        /// is checked at compile time.
        max_pool2d,
        /// The maximum of each K×K window moved S positions per output over the images
        /// padded by P (PyTorch's `max_pool2d(x, K, S, P)`); `HO = ⌊(H + 2P − K)/S⌋ + 1`
        /// is checked at compile time, 2P ≤ K when the program is built.
        max_pool2d_strided,
        |x, windows, out| {
            let larger = |leader: T, &candidate: &T| if overtakes(candidate, leader) { candidate } else { leader };
            fold_windows::<T, K>(
                &windows,
                x,
                out,
                |elements| elements[1..].iter().fold(elements[0], larger),
                |value, elements| elements.iter().fold(value, larger),
            )
        }
    );

    pooling_methods!(
        /// The mean of each K×K window, with stride K (PyTorch's `avg_pool2d(x, K)`);
        /// `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)` is checked at compile time.
        avg_pool2d,
        /// The sum of each K×K window's elements inside the images over K², the window
        /// moved S positions per output over the images padded by P (PyTorch's
        /// `avg_pool2d(x, K, S, P)`, padding counted as zeros); sizes as for
        /// [`max_pool2d_strided`](Self::max_pool2d_strided).
        avg_pool2d_strided,
        |x, windows, out| {
            let add = |total: T, &element: &T| total + element;
            fold_windows::<T, K>(
                &windows,
                x,
                out,
                |elements| elements.iter().fold(T::zero(), add),
                |total, elements| elements.iter().fold(total, add),
            );
            let count = window_count::<T, K>();
            out.iter_mut().for_each(|total| *total /= count);
        }
    );
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
    let (windows, tangent) = (Windows::new::<H, W, K, S, P, HO, WO>(), x_dot.as_slice());
    filled((x.shape().0, Const, Const, Const), |out| {
        windows.each_maximum::<K, T>(x.as_slice(), |output, at| out[output] = tangent[at])
    })
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
    let (windows, g) = (Windows::new::<H, W, K, S, P, HO, WO>(), y_bar.as_slice());
    filled(x.shape(), |x_bar| windows.each_maximum::<K, T>(x.as_slice(), |output, at| x_bar[at] += g[output]))
}

/// The pullback of `avg_pool2d_strided` (and `avg_pool2d`): each element gets the sum
/// of ȳ/K² over the windows that read it, in the windows' order, 0 if none does. (Its
/// pushforward is the pooling of ẋ: the pooling is linear.)
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
    filled((y_bar.shape().0, Const, Const, Const), |x_bar| {
        windows.each_window(x_bar.len(), |output, offset, window| {
            let share = g[output] / count;
            for h in window.rows.clone() {
                x_bar[offset..][window.row(h)].iter_mut().for_each(|element| *element += share);
            }
        })
    })
}
