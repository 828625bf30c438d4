//! The image operations of `Tensor<T, (B, C, H, W), Cuda>` under the host's names
//! ([`crate::ops::conv`]), with the same compile-time size checks, and their
//! reverse-mode rules.
//!
//! A convolution is one product through cuBLAS on the unfolded images
//! ([`crate::backend::cuda`]'s `im2col`): with U the `[B·HO·WO, C·KH·KW]` matrix of
//! the patches each output reads and W the kernels as `[O, C·KH·KW]`, the outputs
//! are U·Wᵀ, one row per output position, transposed per image into `(O, HO, WO)`.
//! The pullback takes Ȳ (the cotangent in the same rows): W̄ = Ȳᵀ·U, Ū = Ȳ·W, and x̄
//! is Ū folded back onto the images. Max and average pooling and their pullbacks,
//! and the bias and gain per channel, are kernels of their own; `flatten_images` only relabels the shape.

use super::{
    CudaRealMatrixOps, CudaRealOps, CudaTensorOps, OnDevice, add_rows_kernel, check_shapes, gemm_into,
    mul_rows_kernel, store, sum_kernel,
};
use crate::backend::cpu::Write;
use crate::backend::cuda::{
    ConvGeometry, CudaElement, PoolGeometry, avg_pool, avg_pool_pullback, col2im, im2col, max_pool,
    max_pool_pullback, max_pool_push, or_panic_cuda, transpose as transpose_kernel,
};
use crate::error::or_panic;
use crate::ops::conv::{Groups, Padding, Stride, check_channel_vector};
use crate::ops::pool::Window;
use crate::shape::constraint::{ConvolvesTo, PadsPoolingWindow, PoolsTo, SameElementCount};
use crate::shape::{Const, Dim, Dyn, Shape};

/// A batch of images on the GPU.
type Images<T, B, const C: usize, const H: usize, const W: usize> =
    OnDevice<T, (B, Const<C>, Const<H>, Const<W>)>;
/// Convolution kernels `[O, C, KH, KW]` on the GPU.
type Kernels<T, const O: usize, const C: usize, const KH: usize, const KW: usize> =
    OnDevice<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>;
/// A matrix of run-time size on the GPU (the unfolded images and their cotangents).
type Matrix<T> = OnDevice<T, (Dyn, Dyn)>;

/// The geometry of a convolution of `batch` images `(C, H, W)` with `KH × KW` kernels,
/// `stride` and `padding`, giving `output` positions per axis.
fn geometry<const C: usize, const H: usize, const W: usize, const KH: usize, const KW: usize>(
    batch: usize,
    output: (usize, usize),
    stride: usize,
    padding: usize,
) -> ConvGeometry {
    ConvGeometry { batch, channels: C, height: H, width: W, kernel: (KH, KW), output, stride, padding }
}

/// The geometry of pooling `batch` images `(C, H, W)` into `HO × WO` windows of
/// K×K moved S per output over the images padded by P.
fn pool_geometry<
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
>(
    batch: usize,
    _: (Window<K>, Stride<S>, Padding<P>),
) -> PoolGeometry {
    let () = <Const<P> as PadsPoolingWindow<K>>::CHECK;
    PoolGeometry {
        images: batch * C,
        height: H,
        width: W,
        window: K,
        stride: S,
        padding: P,
        output: (HO, WO),
    }
}

/// Checks that a cotangent's batch size is its input's.
#[track_caller]
fn check_batch(operation: &str, input: usize, cotangent: usize) {
    assert_eq!(input, cotangent, "{operation}: a batch of {input} images, a cotangent for {cotangent}");
}

/// The unfolded images U, `[B·HO·WO, C·KH·KW]`.
fn unfold<T: CudaElement, S: Shape>(x: &OnDevice<T, S>, geometry: ConvGeometry) -> Matrix<T> {
    OnDevice::new((Dyn(geometry.positions()), Dyn(geometry.taps())), |cols| im2col(x.slice(), cols, geometry))
}

/// Convolution, pooling and flattening of GPU image batches `[B, C, H, W]`.
#[fluxion_derive::extension_trait(CudaImageOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize> Images<T, B, C, H, W> {
    /// The valid cross-correlation with `kernels` (stride 1, no padding); the output
    /// size `(H − KH + 1, W − KW + 1)` is checked at compile time.
    pub fn conv2d<const O: usize, const KH: usize, const KW: usize, const HO: usize, const WO: usize>(
        &self,
        kernels: &Kernels<T, O, C, KH, KW>,
    ) -> Images<T, B, O, HO, WO>
    where
        Const<H>: ConvolvesTo<KH, 0, HO>,
        Const<W>: ConvolvesTo<KW, 0, WO>,
    {
        self.conv2d_strided(kernels, Stride::<1>, Padding::<0>)
    }

    /// The cross-correlation with `kernels` over the images padded with P zeros on
    /// every side (stride 1); the output size `(H + 2P − KH + 1, W + 2P − KW + 1)` is
    /// checked at compile time.
    pub fn conv2d_padded<
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &Kernels<T, O, C, KH, KW>,
        padding: Padding<P>,
    ) -> Images<T, B, O, HO, WO>
    where
        Const<H>: ConvolvesTo<KH, P, HO>,
        Const<W>: ConvolvesTo<KW, P, WO>,
    {
        self.conv2d_strided(kernels, Stride::<1>, padding)
    }

    /// The cross-correlation with `kernels` moved S positions per output over the
    /// images padded with P zeros on every side: y_{b o i j} = Σ_{c p q} w_{o c p q}·
    /// x_{b c (S·i + p − P) (S·j + q − P)}; the output size
    /// `(⌊(H + 2P − KH)/S⌋ + 1, ⌊(W + 2P − KW)/S⌋ + 1)` is checked at compile time.
    pub fn conv2d_strided<
        const S: usize,
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &Kernels<T, O, C, KH, KW>,
        _: Stride<S>,
        _: Padding<P>,
    ) -> Images<T, B, O, HO, WO>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
    {
        let [y] = self.conv2d_strided_with_each([kernels], Stride::<S>, Padding::<P>);
        y
    }

    /// [`Tensor::conv2d_strided`] with each of `kernels`, the images unfolded once.
    pub(crate) fn conv2d_strided_with_each<
        const N: usize,
        const S: usize,
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: [&Kernels<T, O, C, KH, KW>; N],
        _: Stride<S>,
        _: Padding<P>,
    ) -> [Images<T, B, O, HO, WO>; N]
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
    {
        let batch = self.shape().0;
        let geometry = geometry::<C, H, W, KH, KW>(batch.size(), (HO, WO), S, P);
        let cols = unfold(self, geometry);
        kernels.map(|kernels| {
            // One row of O outputs per position, then each image's [HO·WO, O] transposed.
            let rows: Matrix<T> = OnDevice::new((Dyn(geometry.positions()), Dyn(O)), |rows| {
                gemm_into::<T>(
                    (geometry.positions(), geometry.taps(), O, 1),
                    (cols.slice(), false),
                    (kernels.slice(), true),
                    rows,
                    Write::Overwrite,
                );
                Ok(())
            });
            OnDevice::new((batch, Const, Const, Const), |y| {
                transpose_kernel(rows.slice(), (batch.size(), HO * WO, O), y)
            })
        })
    }

    /// Group normalisation without gain and shift (see the host's): each group's
    /// elements are consecutive, so the groups are lines for the row normalisation's
    /// kernels.
    pub fn normalize_groups<const G: usize>(&self, groups: Groups<G>, epsilon: T) -> Self {
        super::groups_as_rows!(self, self.shape(), groups, epsilon)
    }

    /// The maximum of each K×K window, with stride K; `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)` is
    /// checked at compile time.
    pub fn max_pool2d<const K: usize, const HO: usize, const WO: usize>(&self) -> Images<T, B, C, HO, WO>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.max_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The maximum of each K×K window moved S positions per output over the images
    /// padded by P; `HO = ⌊(H + 2P − K)/S⌋ + 1` and 2P ≤ K are checked at compile time.
    pub fn max_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Images<T, B, C, HO, WO>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        let batch = self.shape().0;
        let geometry = pool_geometry::<C, H, W, K, S, P, HO, WO>(batch.size(), (window, stride, padding));
        OnDevice::new((batch, Const, Const, Const), |y| max_pool(self.slice(), y, geometry))
    }

    /// The mean of each K×K window, with stride K; `(HO, WO) = (⌊H/K⌋, ⌊W/K⌋)` is
    /// checked at compile time.
    pub fn avg_pool2d<const K: usize, const HO: usize, const WO: usize>(&self) -> Images<T, B, C, HO, WO>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.avg_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The sum of each K×K window's elements inside the images over K², the window
    /// moved S positions per output over the images padded by P; sizes as for
    /// `max_pool2d_strided`.
    pub fn avg_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Images<T, B, C, HO, WO>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        let batch = self.shape().0;
        let geometry = pool_geometry::<C, H, W, K, S, P, HO, WO>(batch.size(), (window, stride, padding));
        OnDevice::new((batch, Const, Const, Const), |y| avg_pool(self.slice(), y, geometry))
    }

    /// Each example's C·H·W values as one row (channel, then row, then column). F =
    /// C·H·W is checked when the program is built, as on the host.
    pub fn flatten_images<const F: usize>(&self) -> OnDevice<T, (B, Const<F>)> {
        let () = <(Const<C>, Const<H>, Const<W>) as SameElementCount<(Const<F>,)>>::CHECK;
        or_panic(self.try_reshape((self.shape().0, Const)))
    }
}

/// A per-channel bias added to GPU image batches.
#[fluxion_derive::extension_trait(CudaChannelOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim> OnDevice<T, (B, C, H, W)> {
    /// y_{b c i j} = x_{b c i j} + b_c: a bias per channel.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the bias length.
    #[track_caller]
    pub fn add_channels(&self, bias: &OnDevice<T, (C,)>) -> Self {
        let (per_image, lines) = per_line("add_channels", self.shape(), bias);
        OnDevice::new(self.shape(), |y| {
            add_rows_kernel().launch(&[self.slice(), per_image.slice()], &[], lines, y)
        })
    }

    /// y_{b c i j} = x_{b c i j}·g_c: a gain per channel.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the gain's length.
    #[track_caller]
    pub fn mul_channels(&self, gain: &OnDevice<T, (C,)>) -> Self {
        let (per_image, lines) = per_line("mul_channels", self.shape(), gain);
        OnDevice::new(self.shape(), |y| {
            mul_rows_kernel(Write::Overwrite).launch(&[self.slice(), per_image.slice()], &[], lines, y)
        })
    }
}

/// A vector per channel laid out once per image, `(B, C)`, and the lines of H·W
/// elements that read it (one line per image and channel); checks the channel count.
#[track_caller]
fn per_line<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim>(
    operation: &str,
    (batch, channels, height, width): (B, C, H, W),
    per_channel: &OnDevice<T, (C,)>,
) -> (OnDevice<T, (B, C)>, (usize, usize, usize)) {
    check_channel_vector(operation, channels.size(), per_channel.len());
    let per_image = or_panic(per_channel.try_broadcast_to((batch, channels)));
    (per_image, (batch.size() * channels.size(), height.size() * width.size(), 1))
}

/// The pullback of `mul_channels`: x̄ (=|+=) ȳ·g_c and ḡ_c (=|+=) Σ_{b i j}
/// x_{b c i j}·ȳ_{b c i j}, each where asked.
pub fn mul_channels_pullback<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim>(
    (x, gain): (&OnDevice<T, (B, C, H, W)>, &OnDevice<T, (C,)>),
    y_bar: &OnDevice<T, (B, C, H, W)>,
    x_bar: Option<(&mut OnDevice<T, (B, C, H, W)>, Write)>,
    gain_bar: Option<(&mut OnDevice<T, (C,)>, Write)>,
) {
    if let Some((x_bar, write)) = x_bar {
        check_shapes("mul_channels_pullback", y_bar, &[x_bar]);
        let (per_image, lines) = per_line("mul_channels_pullback", y_bar.shape(), gain);
        or_panic_cuda(mul_rows_kernel(write).launch(
            &[y_bar.slice(), per_image.slice()],
            &[],
            lines,
            x_bar.slice_mut(),
        ));
    }
    if let Some((gain_bar, write)) = gain_bar {
        add_channels_pullback(&y_bar.hadamard(x), gain_bar, write);
    }
}

/// The pullback of `conv2d_strided` with stride S and padding P (and of `conv2d` and
/// `conv2d_padded`, S = 1): x̄ and w̄ from x, w and ȳ, each written or added as asked
/// and computed only when asked for (module docs).
#[allow(clippy::type_complexity)]
pub fn conv2d_pullback<
    const S: usize,
    const P: usize,
    T: CudaElement,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
>(
    x: &Images<T, B, C, H, W>,
    kernels: &Kernels<T, O, C, KH, KW>,
    y_bar: &Images<T, B, O, HO, WO>,
    x_bar: Option<(&mut Images<T, B, C, H, W>, Write)>,
    w_bar: Option<(&mut Kernels<T, O, C, KH, KW>, Write)>,
) where
    Const<H>: ConvolvesTo<KH, P, HO, S>,
    Const<W>: ConvolvesTo<KW, P, WO, S>,
{
    let batch = x.shape().0.size();
    check_batch("conv2d_pullback", batch, y_bar.shape().0.size());
    if let Some((x_bar, _)) = &x_bar {
        check_shapes("conv2d_pullback", x, &[x_bar]);
    }
    let geometry = geometry::<C, H, W, KH, KW>(batch, (HO, WO), S, P);
    let (positions, taps) = (geometry.positions(), geometry.taps());
    // Ȳ: each image's [O, HO·WO] cotangent transposed into rows of O.
    let rows_bar: Matrix<T> = OnDevice::new((Dyn(positions), Dyn(O)), |rows| {
        transpose_kernel(y_bar.slice(), (batch, O, HO * WO), rows)
    });
    if let Some((w_bar, write)) = w_bar {
        let cols = unfold(x, geometry);
        gemm_into::<T>(
            (O, positions, taps, 1),
            (rows_bar.slice(), true),
            (cols.slice(), false),
            w_bar.slice_mut(),
            write,
        );
    }
    if let Some((x_bar, write)) = x_bar {
        let cols_bar: Matrix<T> = OnDevice::new((Dyn(positions), Dyn(taps)), |cols_bar| {
            gemm_into::<T>(
                (positions, O, taps, 1),
                (rows_bar.slice(), false),
                (kernels.slice(), false),
                cols_bar,
                Write::Overwrite,
            );
            Ok(())
        });
        or_panic_cuda(col2im(cols_bar.slice(), x_bar.slice_mut(), geometry, store(write)));
    }
}

/// The pullback of `add_channels` in the bias: b̄_c (=|+=) Σ_{b i j} ȳ_{b c i j}
/// (x̄ = ȳ needs no kernel of its own).
pub fn add_channels_pullback<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim>(
    y_bar: &OnDevice<T, (B, C, H, W)>,
    bias_bar: &mut OnDevice<T, (C,)>,
    write: Write,
) {
    let (batch, channels, height, width) = y_bar.shape();
    check_channel_vector("add_channels_pullback", channels.size(), bias_bar.len());
    // Σ over each image's plane, then over the batch.
    let lines = batch.size() * channels.size();
    let per_image: OnDevice<T, (Dyn,)> = OnDevice::new((Dyn(lines),), |totals| {
        sum_kernel(Write::Overwrite).launch(
            &[y_bar.slice()],
            &[],
            (lines, height.size() * width.size(), 1),
            totals,
        )
    });
    or_panic_cuda(sum_kernel(write).launch(
        &[per_image.slice()],
        &[],
        (1, batch.size(), channels.size()),
        bias_bar.slice_mut(),
    ));
}

/// The pullback of `max_pool2d_strided` (and `max_pool2d`): x̄ (=|+=) the sum of ȳ over
/// the windows whose first maximum each element is, 0 for the others.
pub fn max_pool2d_pullback<
    T: CudaElement,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
>(
    x: &Images<T, B, C, H, W>,
    y_bar: &Images<T, B, C, HO, WO>,
    x_bar: &mut Images<T, B, C, H, W>,
    pooling: (Window<K>, Stride<S>, Padding<P>),
    write: Write,
) where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
{
    check_shapes("max_pool2d_pullback", x, &[x_bar]);
    check_batch("max_pool2d_pullback", x.shape().0.size(), y_bar.shape().0.size());
    let geometry = pool_geometry::<C, H, W, K, S, P, HO, WO>(x.shape().0.size(), pooling);
    or_panic_cuda(max_pool_pullback(x.slice(), y_bar.slice(), x_bar.slice_mut(), geometry, store(write)));
}

/// The pullback of `avg_pool2d_strided` (and `avg_pool2d`): x̄ (=|+=) the sum of ȳ/K²
/// over the windows that read each element, 0 where none does. (Its pushforward is
/// the pooling of ẋ.)
pub fn avg_pool2d_pullback<
    T: CudaElement,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
>(
    y_bar: &Images<T, B, C, HO, WO>,
    x_bar: &mut Images<T, B, C, H, W>,
    pooling: (Window<K>, Stride<S>, Padding<P>),
    write: Write,
) where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
{
    check_batch("avg_pool2d_pullback", x_bar.shape().0.size(), y_bar.shape().0.size());
    let geometry = pool_geometry::<C, H, W, K, S, P, HO, WO>(x_bar.shape().0.size(), pooling);
    or_panic_cuda(avg_pool_pullback(y_bar.slice(), x_bar.slice_mut(), geometry, store(write)));
}

/// The pushforward of `max_pool2d_strided` (and `max_pool2d`): each ẏ is ẋ at the
/// first maximum of its window.
pub fn max_pool2d_push<
    T: CudaElement,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const HO: usize,
    const WO: usize,
>(
    x: &Images<T, B, C, H, W>,
    x_dot: &Images<T, B, C, H, W>,
    pooling: (Window<K>, Stride<S>, Padding<P>),
) -> Images<T, B, C, HO, WO>
where
    Const<H>: PoolsTo<K, HO, P, S>,
    Const<W>: PoolsTo<K, WO, P, S>,
{
    check_shapes("max_pool2d_push", x, &[x_dot]);
    let batch = x.shape().0;
    let geometry = pool_geometry::<C, H, W, K, S, P, HO, WO>(batch.size(), pooling);
    OnDevice::new((batch, Const, Const, Const), |y_dot| {
        max_pool_push(x.slice(), x_dot.slice(), y_dot, geometry)
    })
}
