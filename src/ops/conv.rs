//! Image operations on batches `(B, C, H, W)` (batch, channels, height, width), with
//! every static size checked at compile time:
//!
//! - `conv2d(w)`: the valid cross-correlation with kernels w of shape `[O, C, KH, KW]`
//!   (stride 1, no padding), yᵦₒᵢⱼ = Σ_c Σ_p Σ_q w_{o c p q}·x_{b c (i+p) (j+q)}, of
//!   shape `(B, O, H − KH + 1, W − KW + 1)`; `conv2d_padded(w, Padding::<P>)` reads
//!   zeros P positions beyond every edge (x at i + p − P), giving `H + 2P − KH + 1`;
//!   `conv2d_strided(w, Stride::<S>, Padding::<P>)` moves the kernel S positions per
//!   output (x at S·i + p − P), giving `⌊(H + 2P − KH)/S⌋ + 1`, as PyTorch's `stride`;
//! - `add_channels(b)`: y_{b c i j} = x_{b c i j} + b_c (a bias per channel);
//!   `mul_channels(g)`: y_{b c i j} = x_{b c i j}·g_c (a gain per channel);
//! - `normalize_groups(Groups::<G>, ε)`: each image's channels in G groups of C/G,
//!   each group normalised over its channels and positions, (x − μ)/√(σ² + ε);
//! - `flatten_images::<F>()`: each example's `C·H·W` values as one row, F = C·H·W
//!   (checked when the program is built, for any size).
//!
//! Every output size is written by the caller (in the result's type, a `let`
//! annotation or the next layer) and checked, not worked out: stable Rust cannot
//! compute a const generic from others. `Padding`, `Stride` and `Groups` are here
//! and in `fluxion::nn::prelude`.
//!
//! Pullbacks: for `conv2d`, x̄_{b c (i+p) (j+q)} += w_{o c p q}·ȳ_{b o i j} and
//! w̄_{o c p q} = Σ_{b i j} x_{b c (i+p) (j+q)}·ȳ_{b o i j} (with S·i + p − P for
//! i + p under stride and padding); for `add_channels`,
//! b̄_c = Σ_{b i j} ȳ_{b c i j}; for `mul_channels`, x̄ = ȳ·g_c and
//! ḡ_c = Σ_{b i j} x_{b c i j}·ȳ_{b c i j}; for `normalize_groups`, with
//! r = 1/√(σ² + ε), x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) over each group;
//! `flatten_images` only reshapes. Pooling is in [`pool`](super::pool).

use crate::ops::rows::{line_statistics, normalize_lines, normalize_lines_pullback};
use crate::scalar::RealScalar;
use crate::shape::constraint::{ConvolvesTo, SameElementCount, SplitsInto};
use crate::shape::{Const, Dim};
use crate::tensor::{Storage, Tensor};

/// A batch of images.
type Images<T, B, const C: usize, const H: usize, const W: usize, K> =
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>;
/// Convolution kernels `[O, C, KH, KW]`.
type Kernels<T, const O: usize, const C: usize, const KH: usize, const KW: usize, K> =
    Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>;

impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K> Images<T, B, C, H, W, K>
where
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>,
{
    /// The valid cross-correlation with `kernels` (stride 1, no padding); the output
    /// size `(HO, WO) = (H − KH + 1, W − KW + 1)` is checked at compile time.
    pub fn conv2d<const O: usize, const KH: usize, const KW: usize, const HO: usize, const WO: usize>(
        &self,
        kernels: &Kernels<T, O, C, KH, KW, K>,
    ) -> Images<T, B, O, HO, WO, K>
    where
        Const<H>: ConvolvesTo<KH, 0, HO>,
        Const<W>: ConvolvesTo<KW, 0, WO>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        self.conv2d_padded(kernels, Padding::<0>)
    }

    /// The cross-correlation with `kernels` over the images padded with P zeros on
    /// every side (stride 1); the output size `(H + 2P − KH + 1, W + 2P − KW + 1)` is
    /// checked at compile time (P = (K − 1)/2 keeps the size for an odd K).
    pub fn conv2d_padded<
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &Kernels<T, O, C, KH, KW, K>,
        padding: Padding<P>,
    ) -> Images<T, B, O, HO, WO, K>
    where
        Const<H>: ConvolvesTo<KH, P, HO>,
        Const<W>: ConvolvesTo<KW, P, WO>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        self.conv2d_strided(kernels, Stride::<1>, padding)
    }

    /// The cross-correlation with `kernels` moved S positions per output, over the
    /// images padded with P zeros on every side (PyTorch's `stride` and `padding`):
    /// y_{b o i j} = Σ_{c p q} w_{o c p q}·x_{b c (S·i + p − P) (S·j + q − P)}. The
    /// output size `(⌊(H + 2P − KH)/S⌋ + 1, ⌊(W + 2P − KW)/S⌋ + 1)` is checked at
    /// compile time.
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
        kernels: &Kernels<T, O, C, KH, KW, K>,
        _: Stride<S>,
        _: Padding<P>,
    ) -> Images<T, B, O, HO, WO, K>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        let mut y = Tensor::zeros_shaped((self.shape().0, Const, Const, Const));
        Correlation::<S, P, C, H, W, O, KH, KW, HO, WO>::values(
            self.as_slice(),
            kernels.as_slice(),
            y.as_mut_slice(),
        );
        y
    }

    /// Group normalisation without its gain and shift: each image's C channels in G
    /// groups of C/G consecutive channels, every group normalised over its channels
    /// and positions, y = (x − μ)/√(σ² + ε) with the group's mean μ and biased
    /// variance σ² (PyTorch's `group_norm` with no weight). G dividing C is checked
    /// when the program is built (`cargo build` reports it, `cargo check` does not).
    pub fn normalize_groups<const G: usize>(&self, groups: Groups<G>, epsilon: T) -> Self
    where
        K: Storage<T, (B, Const<G>)>,
    {
        self.normalized_groups(groups, epsilon).0
    }

    /// The normalised groups and 1/√(σ² + ε) per image and group (what the pullback
    /// needs): a group's elements are consecutive, so each is one line.
    pub(crate) fn normalized_groups<const G: usize>(
        &self,
        _: Groups<G>,
        epsilon: T,
    ) -> (Self, Tensor<T, (B, Const<G>), K>)
    where
        K: Storage<T, (B, Const<G>)>,
    {
        let () = <Const<C> as SplitsInto<G>>::CHECK;
        normalize_lines(self, (self.shape().0, Const), C / G * H * W, epsilon)
    }

    /// 1/√(σ² + ε) per image and group alone: what a static pullback computes again
    /// from the input it keeps (not the normalised groups).
    pub(crate) fn group_scales<const G: usize>(&self, _: Groups<G>, epsilon: T) -> Tensor<T, (B, Const<G>), K>
    where
        K: Storage<T, (B, Const<G>)>,
    {
        let () = <Const<C> as SplitsInto<G>>::CHECK;
        line_statistics(self, (self.shape().0, Const), C / G * H * W, epsilon).1
    }

    /// Each example's C·H·W values as one row (row-major: channel, then row, then
    /// column). F = C·H·W is checked when the program is built, as for every static
    /// reshape (`cargo build` reports it, `cargo check` does not).
    pub fn flatten_images<const F: usize>(&self) -> Tensor<T, (B, Const<F>), K>
    where
        K: Storage<T, (B, Const<F>)>,
    {
        let () = <(Const<C>, Const<H>, Const<W>) as SameElementCount<(Const<F>,)>>::CHECK;
        Tensor::from_runs((self.shape().0, Const), core::iter::once(self.as_slice()))
    }
}

impl<T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K> Tensor<T, (B, C, H, W), K>
where
    K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>,
{
    /// y_{b c i j} = x_{b c i j} + b_c: a bias per channel.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the bias length.
    #[track_caller]
    pub fn add_channels(&self, bias: &Tensor<T, (C,), K>) -> Self {
        check_channel_vector("add_channels", self.shape().1.size(), bias.len());
        self.each_plane_with(bias, |y, b| *y += b)
    }

    /// y_{b c i j} = x_{b c i j}·g_c: a gain per channel.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the gain's length.
    #[track_caller]
    pub fn mul_channels(&self, gain: &Tensor<T, (C,), K>) -> Self {
        check_channel_vector("mul_channels", self.shape().1.size(), gain.len());
        self.each_plane_with(gain, |y, g| *y *= g)
    }

    /// A copy with `f(y, v_c)` applied to each element y of channel c: one pass per
    /// image plane, which the compiler vectorises (a channel worked out per element,
    /// by division, would not be).
    fn each_plane_with(&self, values: &Tensor<T, (C,), K>, f: impl Fn(&mut T, T)) -> Self {
        let mut y = self.clone();
        let (_, _, height, width) = self.shape();
        let values = values.as_slice();
        let planes = y.as_mut_slice().chunks_exact_mut((height.size() * width.size()).max(1));
        for (plane, &value) in planes.zip(values.iter().cycle()) {
            plane.iter_mut().for_each(|y| f(y, value));
        }
        y
    }
}

/// Checks that a vector per channel (a bias, a gain) has one value per channel,
/// naming both counts.
#[track_caller]
pub(crate) fn check_channel_vector(operation: &str, channels: usize, values: usize) {
    assert_eq!(channels, values, "{operation}: {channels} channels, a vector of {values} values per channel");
}

/// G groups of channels, as an argument: `x.normalize_groups(Groups::<4>, 1e-5)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Groups<const G: usize>;

/// The groups of images of `shape` as lines: `(B·G, C/G·H·W)`, G dividing C checked
/// when the program is built.
#[cfg(feature = "cuda")]
pub(crate) fn group_lines<B: Dim, const C: usize, const H: usize, const W: usize, const G: usize>(
    (batch, ..): (B, Const<C>, Const<H>, Const<W>),
    _: Groups<G>,
) -> (crate::shape::Dyn, crate::shape::Dyn) {
    let () = <Const<C> as SplitsInto<G>>::CHECK;
    (crate::shape::Dyn(batch.size() * G), crate::shape::Dyn(C / G * H * W))
}

/// The pullback of `normalize_groups` given its output y and the scales r per image
/// and group: x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) over each group.
pub fn normalize_groups_pullback<
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const G: usize,
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<G>)>,
>(
    y: &Images<T, B, C, H, W, K>,
    scales: &Tensor<T, (B, Const<G>), K>,
    y_bar: &Images<T, B, C, H, W, K>,
) -> Images<T, B, C, H, W, K> {
    let () = <Const<C> as SplitsInto<G>>::CHECK;
    normalize_lines_pullback(y, scales, y_bar, C / G * H * W)
}

/// Zero padding of P on every side of an image, as an argument:
/// `x.conv2d_padded(&w, Padding::<1>)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding<const P: usize>;

/// A convolution's step of S positions between outputs, as an argument:
/// `x.conv2d_strided(&w, Stride::<2>, Padding::<1>)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stride<const S: usize>;

/// For a kernel offset along one axis: the outputs i whose input S·i + offset − P
/// lies inside the image (the others read padding zeros).
struct Overlap<const S: usize> {
    outputs: core::ops::Range<usize>,
    offset: usize,
    padding: usize,
}

impl<const S: usize> Overlap<S> {
    /// The input position read by output `i` (in range).
    fn input(&self, i: usize) -> usize {
        S * i + self.offset - self.padding
    }

    /// The input position of the first output in range.
    fn first_input(&self) -> usize {
        self.input(self.outputs.start)
    }
}

/// The outputs (of `outputs`) at kernel `offset` that read inside an axis of `inputs`
/// padded by `padding` with stride S: S·i + offset − padding ∈ [0, inputs).
fn overlap<const S: usize>(inputs: usize, outputs: usize, offset: usize, padding: usize) -> Overlap<S> {
    let start = padding.saturating_sub(offset).div_ceil(S);
    let end = outputs.min((inputs + padding).saturating_sub(offset).div_ceil(S)).max(start);
    Overlap { outputs: start..end, offset, padding }
}

/// `f` on the pairs of `strided`'s elements S apart, from its first, and `plain`'s
/// elements, until either runs out; for S = 1 a plain `zip`, so the common case
/// stays a contiguous, vectorised loop.
#[inline(always)]
fn zip_strided<const S: usize, X: IntoIterator, Y: IntoIterator>(
    strided: X,
    plain: Y,
    mut f: impl FnMut(X::Item, Y::Item),
) {
    match S {
        1 => strided.into_iter().zip(plain).for_each(|(x, y)| f(x, y)),
        _ => strided.into_iter().step_by(S).zip(plain).for_each(|(x, y)| f(x, y)),
    }
}

/// The pullback of `conv2d_strided` with stride S and padding P (and of `conv2d`
/// and `conv2d_padded`, S = 1): (x̄, w̄) from x, w and ȳ, computing only the parts
/// `(want_x, want_w)` asks for; a part not asked for is zero (the cotangent of an
/// input nobody differentiates is skipped).
pub fn conv2d_pullback<
    const S: usize,
    const P: usize,
    T: RealScalar,
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
    K,
>(
    x: &Images<T, B, C, H, W, K>,
    kernels: &Kernels<T, O, C, KH, KW, K>,
    y_bar: &Images<T, B, O, HO, WO, K>,
    (want_x, want_w): (bool, bool),
) -> (Images<T, B, C, H, W, K>, Kernels<T, O, C, KH, KW, K>)
where
    Const<H>: ConvolvesTo<KH, P, HO, S>,
    Const<W>: ConvolvesTo<KW, P, WO, S>,
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
        + Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
        + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
{
    let mut x_bar = Tensor::zeros_shaped(x.shape());
    let mut w_bar = Tensor::zeros_shaped(kernels.shape());
    let (x, kernels, y_bar) = (x.as_slice(), kernels.as_slice(), y_bar.as_slice());
    if want_x {
        Correlation::<S, P, C, H, W, O, KH, KW, HO, WO>::input_cotangent(
            kernels,
            y_bar,
            x_bar.as_mut_slice(),
        );
    }
    if want_w {
        Correlation::<S, P, C, H, W, O, KH, KW, HO, WO>::kernel_cotangent(x, y_bar, w_bar.as_mut_slice());
    }
    (x_bar, w_bar)
}

/// `n`, or 1 for 0: a chunk size.
const fn at_least_one(n: usize) -> usize {
    if n == 0 { 1 } else { n }
}

/// The loops of a cross-correlation with stride S and padding P of images `(C, H,
/// W)` with O kernels of `KH × KW`, giving `(O, HO, WO)`: methods over slices, so that
/// the compiler knows the input's and the output's elements apart and vectorises the
/// rows on every storage kind.
struct Correlation<
    const S: usize,
    const P: usize,
    const C: usize,
    const H: usize,
    const W: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
>;

impl<
    const S: usize,
    const P: usize,
    const C: usize,
    const H: usize,
    const W: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
> Correlation<S, P, C, H, W, O, KH, KW, HO, WO>
{
    /// The values of one image, of one output channel's kernels, of one output image
    /// and of one output plane (at least 1, so that an empty axis gives no chunks).
    const IMAGE: usize = at_least_one(C * H * W);
    const KERNELS: usize = at_least_one(C * KH * KW);
    const OUTPUT: usize = at_least_one(O * HO * WO);
    const PLANE: usize = at_least_one(HO * WO);

    /// `out` (zeros, images of O channels of HO×WO) += the kernels `w` over the
    /// images `x`, one output row at a time.
    fn values<T: RealScalar>(x: &[T], w: &[T], out: &mut [T]) {
        for (image, out) in x.chunks_exact(Self::IMAGE).zip(out.chunks_exact_mut(Self::OUTPUT)) {
            for (kernels, plane) in w.chunks_exact(Self::KERNELS).zip(out.chunks_exact_mut(Self::PLANE)) {
                Self::each_kernel_offset(|k, c, rows, columns| {
                    let (weight, image) = (kernels[k], &image[c * H * W..][..H * W]);
                    for i in rows.outputs.clone() {
                        let outputs = &mut plane[i * WO..][columns.outputs.clone()];
                        zip_strided::<S, _, _>(&image[Self::row(rows, columns, i)], outputs, |&x, y| {
                            *y += weight * x
                        });
                    }
                });
            }
        }
    }

    /// x̄_{c (S·i+p−P) (S·j+q−P)} += w_{o c p q}·ȳ_{o i j}, into `x_bar` (zeros).
    fn input_cotangent<T: RealScalar>(w: &[T], y_bar: &[T], x_bar: &mut [T]) {
        for (x_bar, y_bar) in x_bar.chunks_exact_mut(Self::IMAGE).zip(y_bar.chunks_exact(Self::OUTPUT)) {
            for (kernels, plane) in w.chunks_exact(Self::KERNELS).zip(y_bar.chunks_exact(Self::PLANE)) {
                Self::each_kernel_offset(|k, c, rows, columns| {
                    let (weight, image) = (kernels[k], &mut x_bar[c * H * W..][..H * W]);
                    for i in rows.outputs.clone() {
                        let cotangents = &plane[i * WO..][columns.outputs.clone()];
                        zip_strided::<S, _, _>(
                            &mut image[Self::row(rows, columns, i)],
                            cotangents,
                            |x_bar, &g| *x_bar += weight * g,
                        );
                    }
                });
            }
        }
    }

    /// w̄_{o c p q} = Σ_{b i j} x_{b c (S·i+p−P) (S·j+q−P)}·ȳ_{b o i j}, into `w_bar`
    /// (zeros). Each kernel element's products are added up by output column over the
    /// rows, then across the columns: one sum per kernel element and plane, not one
    /// per row.
    fn kernel_cotangent<T: RealScalar>(x: &[T], y_bar: &[T], w_bar: &mut [T]) {
        for (image, y_bar) in x.chunks_exact(Self::IMAGE).zip(y_bar.chunks_exact(Self::OUTPUT)) {
            for (kernels_bar, plane) in
                w_bar.chunks_exact_mut(Self::KERNELS).zip(y_bar.chunks_exact(Self::PLANE))
            {
                Self::each_kernel_offset(|k, c, rows, columns| {
                    let image = &image[c * H * W..][..H * W];
                    let mut by_column = [T::zero(); WO];
                    for i in rows.outputs.clone() {
                        let products = by_column[columns.outputs.clone()]
                            .iter_mut()
                            .zip(&plane[i * WO..][columns.outputs.clone()]);
                        zip_strided::<S, _, _>(
                            &image[Self::row(rows, columns, i)],
                            products,
                            |&x, (total, &g)| *total += x * g,
                        );
                    }
                    kernels_bar[k] += by_column.iter().fold(T::zero(), |total, &t| total + t);
                });
            }
        }
    }

    /// The input elements of an image plane that output row `i` reads at a kernel
    /// offset: from the first column in range to the end of the row.
    fn row(rows: &Overlap<S>, columns: &Overlap<S>, i: usize) -> core::ops::Range<usize> {
        rows.input(i) * W + columns.first_input()..(rows.input(i) + 1) * W
    }

    /// `visit(k, c, rows, columns)` for every element of one output channel's kernels
    /// (`k` its offset in them, `c` its input channel) that reads inside the image:
    /// the output rows and columns whose inputs at that offset are inside the padded
    /// image. (A kernel column reading only padding is skipped.)
    fn each_kernel_offset(mut visit: impl FnMut(usize, usize, &Overlap<S>, &Overlap<S>)) {
        for c in 0..C {
            for p in 0..KH {
                let rows = overlap::<S>(H, HO, p, P);
                for q in 0..KW {
                    let columns = overlap::<S>(W, WO, q, P);
                    if !columns.outputs.is_empty() {
                        visit((c * KH + p) * KW + q, c, &rows, &columns);
                    }
                }
            }
        }
    }
}

/// The pullback of `add_channels`: x̄ = ȳ, b̄_c = Σ_{b i j} ȳ_{b c i j}.
pub fn add_channels_pullback<T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K>(
    y_bar: &Tensor<T, (B, C, H, W), K>,
) -> (Tensor<T, (B, C, H, W), K>, Tensor<T, (C,), K>)
where
    K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>,
{
    let (_, channels, height, width) = y_bar.shape();
    let (g, plane) = (y_bar.as_slice(), height.size() * width.size());
    let mut bias_bar = Tensor::zeros_shaped((channels,));
    let totals = bias_bar.as_mut_slice();
    g.chunks_exact(plane.max(1)).enumerate().for_each(|(k, chunk)| {
        totals[k % channels.size()] += chunk.iter().fold(T::zero(), |t, &v| t + v);
    });
    (y_bar.clone(), bias_bar)
}

/// The pullback of `mul_channels`: x̄ = ȳ·g_c, ḡ_c = Σ_{b i j} x_{b c i j}·ȳ_{b c i j}.
pub fn mul_channels_pullback<T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K>(
    x: &Tensor<T, (B, C, H, W), K>,
    gain: &Tensor<T, (C,), K>,
    y_bar: &Tensor<T, (B, C, H, W), K>,
) -> (Tensor<T, (B, C, H, W), K>, Tensor<T, (C,), K>)
where
    K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>,
{
    let (_, channels, height, width) = y_bar.shape();
    let (g, x, plane) = (y_bar.as_slice(), x.as_slice(), height.size() * width.size());
    let mut gain_bar = Tensor::zeros_shaped((channels,));
    let totals = gain_bar.as_mut_slice();
    g.chunks_exact(plane.max(1)).zip(x.chunks_exact(plane.max(1))).enumerate().for_each(|(k, (g, x))| {
        totals[k % channels.size()] += g.iter().zip(x).fold(T::zero(), |t, (&g, &x)| t + g * x);
    });
    (y_bar.mul_channels(gain), gain_bar)
}
