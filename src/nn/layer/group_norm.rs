//! Group normalisation: each image's C channels in G groups of C/G consecutive
//! channels, each group normalised over its channels and positions, then a gain and a
//! shift per channel: y = γ_c·(x − μ_g)/√(σ_g² + ε) + β_c, with μ_g and σ_g² the mean
//! and biased variance of the C/G·H·W values of image b's group g.
//!
//! The statistics are each image's own, so the layer acts alike in training and in
//! evaluation and keeps no state. G = 1 normalises each image as a whole (with the
//! gain and shift still per channel, not per element as PyTorch's
//! `LayerNorm([C, H, W])`), G = C each channel (instance normalisation). Heights and
//! widths are static; a sequence `(B, C, L)` goes in as `(B, C, L, 1)`.

use super::*;
use crate::ops::conv::Groups;

/// Group normalisation of images `(B, C, H, W)` over G groups of C/G channels
/// (PyTorch's `GroupNorm(G, C)`): y = γ_c·(x − μ_g)/√(σ_g² + ε) + β_c, with γ =
/// `weight` (ones at first), β = `bias` (zeros at first) and ε = 10⁻⁵. G must
/// divide C, which is checked when the program is built (`cargo build` reports it,
/// `cargo check` does not). The same in training and in evaluation (the statistics
/// are each image's own; nothing is kept). PyTorch's `GroupNorm(32, 256, eps=1e-6)`
/// is `GroupNorm::<f32, 256, 32> { epsilon: 1e-6, ..GroupNorm::default() }`; with
/// `affine=False`, call `x.normalize_groups(Groups::<G>, ε)` instead.
///
/// ```
/// use fluxion::nn::layer::{Conv2d, GroupNorm, Module, Sequential, Silu};
/// use fluxion::prelude::*;
///
/// // 8 channels in 2 groups of 4, as a diffusion model's blocks use it.
/// let block = Sequential((Conv2d::<f64, 1, 8, 3, 3, 4, 4>::new(1), GroupNorm::<f64, 8, 2>::default(), Silu));
/// let images = Tensor::<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap>::random_normal_shaped(
///     (Dyn(3), Const, Const, Const), 0.0, 1.0, 2,
/// );
/// let normalised = block.0.1.forward(&block.0.0.forward(&images));
/// // Each image's first group (channels 0 to 3, 4·4·4 values) has mean 0.
/// let first_group: f64 = normalised.as_slice()[..64].iter().sum();
/// assert!(first_group.abs() < 1e-12);
/// assert_eq!(block.forward(&images).shape(), (Dyn(3), Const::<8>, Const::<4>, Const::<4>));
/// ```
#[derive(Differentiable, Clone)]
pub struct GroupNorm<T, const C: usize, const G: usize, K = Heap>
where
    T: RealScalar,
    K: StorageKind<T, (Const<C>,)>,
{
    /// γ, the gain per channel (ones at first).
    pub weight: Tensor<T, (Const<C>,), K>,
    /// β, the shift per channel (zeros at first).
    pub bias: Tensor<T, (Const<C>,), K>,
    /// ε.
    #[no_derivative]
    pub epsilon: T,
}

impl<T: RealScalar, const C: usize, const G: usize, K: Storage<T, (Const<C>,)>> Default
    for GroupNorm<T, C, G, K>
{
    fn default() -> Self {
        GroupNorm { weight: Tensor::full(T::one()), bias: Tensor::zeros(), epsilon: T::from_f64(1e-5) }
    }
}

impl<T: RealScalar, const C: usize, const G: usize, K: Storage<T, (Const<C>,)>> GroupNorm<T, C, G, K> {
    /// The forward pass on images, written for static mode (`#[differentiable]`).
    #[differentiable]
    pub fn apply_images<B: Dim, const H: usize, const W: usize>(
        &self,
        x: &Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>,
    ) -> Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>
    where
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<G>)>,
    {
        // ε is a constant (`#[no_derivative]`), which the macro cannot see from here.
        let epsilon = rules::stop_gradient(self.epsilon);
        x.normalize_groups(Groups::<G>, epsilon).mul_channels(&self.weight).add_channels(&self.bias)
    }
}

crate::static_module!(
    impl[T: RealScalar, const C: usize, const G: usize, K: Storage<T, (Const<C>,)>, B: Dim, const H: usize, const W: usize]
        GroupNorm<T, C, G, K>:
        apply_images(Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>) -> Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>;
    where [K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<G>)>]
);

debug_and_eq_by_fields!(
    [T: RealScalar, const C: usize, const G: usize, K: StorageKind<T, (Const<C>,)>] GroupNorm<T, C, G, K>, "GroupNorm"
    where [] {
        weight: Tensor<T, (Const<C>,), K>,
        bias: Tensor<T, (Const<C>,), K>,
        epsilon: T
    }
);

/// `Module<$input>` for one form of the layer, from one expression: `$fit` gives the
/// input with C channels, `$epsilon` is ε as the input's element.
macro_rules! group_norm_module {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $layer:ty: $input:ty => $output:ty;
        where [$($bounds:tt)*]
        |$layer_name:ident, $x:ident| $fit:expr, $epsilon:expr
    ) => {
        $(#[$attribute])*
        impl<$($generics)*> Module<$input> for $layer
        where
            $($bounds)*
        {
            type Output = $output;

            #[track_caller]
            fn forward(&self, $x: &$input) -> $output {
                let $layer_name = self;
                $fit.normalize_groups(Groups::<G>, $epsilon).mul_channels(&self.weight).add_channels(&self.bias)
            }
        }
    };
}

/// A host storage kind of image batches `(B, C, H, W)` of element `E` (`T`, or
/// `Dual<T>` in forward mode) that [`GroupNorm`] normalises: the gain and shift of
/// element `T` and `E`, the batch with `Ch` channels and with C, and the scales per
/// image and group.
pub trait GroupNormStorage<
    T,
    E,
    B: Dim,
    Ch: Dim,
    const C: usize,
    const G: usize,
    const H: usize,
    const W: usize,
>:
    Storage<T, (Const<C>,)>
    + Storage<E, (Const<C>,)>
    + Storage<E, (B, Ch, Const<H>, Const<W>)>
    + Storage<E, (B, Const<C>, Const<H>, Const<W>)>
    + Storage<E, (B, Const<G>)>
{
}

impl<T, E, B: Dim, Ch: Dim, const C: usize, const G: usize, const H: usize, const W: usize, K>
    GroupNormStorage<T, E, B, Ch, C, G, H, W> for K
where
    K: Storage<T, (Const<C>,)>
        + Storage<E, (Const<C>,)>
        + Storage<E, (B, Ch, Const<H>, Const<W>)>
        + Storage<E, (B, Const<C>, Const<H>, Const<W>)>
        + Storage<E, (B, Const<G>)>,
{
}

group_norm_module! {
    impl[
        T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize, K
    ] GroupNorm<T, C, G, K>: Tensor<T, (B, Ch, Const<H>, Const<W>), K> => Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>;
    where [K: GroupNormStorage<T, T, B, Ch, C, G, H, W>,]
    |layer, x| Ch::fit(x), layer.epsilon
}

group_norm_module! {
    #[cfg(feature = "std")]
    impl[
        T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize, K
    ] GroupNormTraced<T, C, G, K>:
        Var<Tensor<T, (B, Ch, Const<H>, Const<W>), K>> => Var<Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>>;
    where [K: GroupNormStorage<T, T, B, Ch, C, G, H, W>,]
    |layer, x| Ch::fit_traced(x), layer.epsilon
}

group_norm_module! {
    /// Forward mode: the lifted layer on a batch of dual images.
    impl[
        T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize, K
    ] GroupNormLifted<T, C, G, K>:
        Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K> => Tensor<Dual<T>, (B, Const<C>, Const<H>, Const<W>), K>;
    where [K: GroupNormStorage<T, Dual<T>, B, Ch, C, G, H, W>,]
    |layer, x| Ch::fit(x), Dual::constant(layer.epsilon)
}

group_norm_module! {
    /// Forward over reverse: the lifted layer traced, on a traced batch of dual images.
    #[cfg(feature = "std")]
    impl[
        T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize, K
    ] GroupNormLiftedTraced<T, C, G, K>:
        Var<Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K>>
            => Var<Tensor<Dual<T>, (B, Const<C>, Const<H>, Const<W>), K>>;
    where [K: GroupNormStorage<T, Dual<T>, B, Ch, C, G, H, W>,]
    |layer, x| Ch::fit_traced(x), Dual::constant(layer.epsilon)
}

constant_input!(
    [
        T: RealScalar, B: Dim, Ch: Dim, const C: usize, const G: usize, const H: usize, const W: usize,
        K: StorageKind<T, (B, Ch, Const<H>, Const<W>)>
    ]
    GroupNormTraced<T, C, G, K>, Tensor<T, (B, Ch, Const<H>, Const<W>), K>;
    where [K: StorageKind<T, (Const<C>,)>, Tensor<T, (Const<C>,), K>: Trace,]
);
constant_input!(
    [
        T: RealScalar, B: Dim, Ch: Dim, const C: usize, const G: usize, const H: usize, const W: usize,
        K: Storage<T, (B, Ch, Const<H>, Const<W>)> + Storage<Dual<T>, (B, Ch, Const<H>, Const<W>)>
    ]
    GroupNormLiftedTraced<T, C, G, K>,
    Tensor<T, (B, Ch, Const<H>, Const<W>), K> => Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K>, |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<C>,)> + Storage<Dual<T>, (Const<C>,)>,
        Tensor<T, (Const<C>,), K>: Lift<Lifted: Trace>,
    ]
);

group_norm_module! {
    #[cfg(feature = "cuda")]
    impl[
        T: CudaElement, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize
    ] GroupNorm<T, C, G, Cuda>:
        Tensor<T, (B, Ch, Const<H>, Const<W>), Cuda> => Tensor<T, (B, Const<C>, Const<H>, Const<W>), Cuda>;
    where []
    |layer, x| Ch::fit(x), layer.epsilon
}

group_norm_module! {
    #[cfg(feature = "cuda")]
    impl[
        T: CudaElement, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const G: usize,
        const H: usize, const W: usize
    ] GroupNormTraced<T, C, G, Cuda>:
        Var<Tensor<T, (B, Ch, Const<H>, Const<W>), Cuda>> => Var<Tensor<T, (B, Const<C>, Const<H>, Const<W>), Cuda>>;
    where []
    |layer, x| Ch::fit_traced(x), layer.epsilon
}

group_norm_module! {
    /// Forward mode on the GPU.
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, const C: usize, const G: usize, const H: usize, const W: usize]
        GroupNormLifted<T, C, G, Cuda>:
        CudaDual<T, (B, Const<C>, Const<H>, Const<W>)> => CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>;
    where []
    |layer, x| x, layer.epsilon
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const C: usize, const G: usize> ToDevice for GroupNorm<T, C, G, Heap> {
    type OnDevice = GroupNorm<T, C, G, Cuda>;
    fn to_device(&self) -> Self::OnDevice {
        GroupNorm { weight: self.weight.to_device(), bias: self.bias.to_device(), epsilon: self.epsilon }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const C: usize, const G: usize> ToHost for GroupNorm<T, C, G, Cuda> {
    type OnHost = GroupNorm<T, C, G, Heap>;
    fn to_host(&self) -> Self::OnHost {
        GroupNorm { weight: self.weight.to_host(), bias: self.bias.to_host(), epsilon: self.epsilon }
    }
}
