//! Multi-head self-attention over rows of tokens: the queries, keys and values are
//! three linear maps of the same rows, attended in H heads over sequences of L
//! tokens ([`attention`](crate::ops::attention)), then a fourth linear map mixes the
//! heads: y = W_o·attention(W_q·x, W_k·x, W_v·x) + b_o (PyTorch's
//! `MultiheadAttention(D, H, batch_first=True)` called on `(x, x, x)`, with its
//! sequences as L consecutive rows).

use super::*;
#[cfg(feature = "cuda")]
use crate::autodiff::{CudaAttentionVarOps, CudaDual};
use crate::ops::attention::{Heads, Mask, Tokens, attention_pullback};
#[cfg(feature = "cuda")]
use crate::ops::cuda::CudaAttentionOps;

/// Multi-head self-attention on rows `(R, D)` of N sequences of L tokens (R = N·L,
/// checked when it runs), in H heads of D/H values (H dividing D is checked when the
/// program with a forward pass of the layer is built; `cargo check` does not see it,
/// as for `GroupNorm`'s groups): queries, keys and values by their own linear maps, the heads'
/// results side by side, mixed by `output`. `mask` says which tokens a token sees:
/// its whole sequence ([`Mask::Full`]) or itself and those before it
/// ([`Mask::Causal`], a decoder's).
///
/// ```
/// use fluxion::nn::layer::{LayerNorm, Module, MultiHeadAttention, Residual, Sequential};
/// use fluxion::nn::prelude::Mask;
/// use fluxion::prelude::*;
///
/// // A pre-norm decoder block's attention: 16 values per token in 4 heads, sequences of 8.
/// let block = Residual(Sequential((
///     LayerNorm::<f64, 16>::default(),
///     MultiHeadAttention::<f64, 16, 4, 8>::new(Mask::Causal, 1),
/// )));
/// let tokens = Tensor::<f64, (Dyn, Const<16>), Heap>::random_normal_shaped((Dyn(3 * 8), Const), 0.0, 1.0, 2);
/// assert_eq!(block.forward(&tokens).shape(), (Dyn(24), Const::<16>));
/// ```
#[derive(Differentiable, Clone)]
pub struct MultiHeadAttention<T, const D: usize, const H: usize, const L: usize, K = Heap>
where
    T: RealScalar,
    K: StorageKind<T, (Const<D>, Const<D>)>,
    WithBias: BiasKind<T, D, K>,
{
    /// The queries' map, W_q·x + b_q.
    pub query: Linear<T, D, D, K>,
    /// The keys' map.
    pub key: Linear<T, D, D, K>,
    /// The values' map.
    pub value: Linear<T, D, D, K>,
    /// The map of the heads' results side by side, W_o·a + b_o.
    pub output: Linear<T, D, D, K>,
    /// The tokens each token attends to.
    #[no_derivative]
    pub mask: Mask,
}

impl<T: RealScalar, const D: usize, const H: usize, const L: usize, K> MultiHeadAttention<T, D, H, L, K>
where
    K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>,
{
    /// The four maps drawn as [`Linear::new`]'s, seeded, with `mask`.
    #[cfg(feature = "std")]
    pub fn new(mask: Mask, seed: u64) -> Self {
        let map = |k| Linear::new(sub_seed(seed, k));
        MultiHeadAttention { query: map(0), key: map(1), value: map(2), output: map(3), mask }
    }

    /// The forward pass on rows, differentiated by `#[differentiable]`: the body of
    /// [`apply_batch`](Self::apply_batch), whose companions use this one's but for the
    /// records ([`record`](Self::record)).
    #[differentiable]
    fn attend_rows<R: Dim>(&self, x: &Tensor<T, (R, Const<D>), K>) -> Tensor<T, (R, Const<D>), K>
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let (queries, keys, values) =
            (self.query.apply_batch(x), self.key.apply_batch(x), self.value.apply_batch(x));
        // The mask is a constant (`#[no_derivative]`), which the macro cannot see from here.
        let mask = rules::stop_gradient(self.mask);
        let attended = queries.attention(&keys, &values, Heads::<H>, Tokens::<L>, mask);
        self.output.apply_batch(&attended)
    }
}

/// Rows of tokens on a host storage kind.
type Rows<T, R, const D: usize, K> = Tensor<T, (R, Const<D>), K>;

/// The calls of [`MultiHeadAttention`] beyond [`Module::forward`], for every form
/// of the layer (plain, traced, lifted, on the GPU): self-attention over padded
/// sequences, and cross-attention to the rows of other sequences (a memory: an
/// encoder's output). On the plain host layer, inherent methods of the same names
/// are `#[differentiable]` (static mode); this trait serves the other forms.
pub trait AttentionModule<X> {
    /// Self-attention in which the tokens of sequence n after its first `lengths[n]`
    /// are padding: no token attends to them (PyTorch's `key_padding_mask`); the
    /// padding rows still get outputs, for a loss to leave out.
    ///
    /// # Panics
    /// As [`forward`](Module::forward), and when there is not one length per sequence
    /// or one is not from 1 to L (the message names them).
    fn forward_padded(&self, x: &X, lengths: &[usize]) -> X;

    /// Cross-attention: queries from `x` (sequences of the layer's L tokens), keys
    /// and values from `memory` (as many sequences, of LK tokens), by the layer's
    /// maps; the layer's mask applies (causal: query t sees memory tokens 0 to t),
    /// and with `lengths` of sequence n only the first `lengths[n]` memory tokens
    /// (PyTorch's `MultiheadAttention(x, memory, memory, key_padding_mask)`).
    ///
    /// # Panics
    /// When the rows are not whole sequences, the sequence counts differ, or the
    /// lengths are not one per sequence from 1 to LK (the message names them).
    fn forward_to<const LK: usize>(
        &self,
        x: &X,
        memory: &X,
        memory_tokens: Tokens<LK>,
        lengths: Option<&[usize]>,
    ) -> X;
}

impl<T: RealScalar, const D: usize, const H: usize, const L: usize, K> MultiHeadAttention<T, D, H, L, K>
where
    K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>,
{
    /// [`AttentionModule::forward_padded`], differentiable in static mode with
    /// respect to the layer and the rows (the lengths are a constant).
    #[differentiable(wrt(self, x))]
    pub fn forward_padded<R: Dim>(&self, x: &Rows<T, R, D, K>, lengths: &[usize]) -> Rows<T, R, D, K>
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let (queries, keys, values) =
            (self.query.apply_batch(x), self.key.apply_batch(x), self.value.apply_batch(x));
        let mask = rules::stop_gradient(self.mask);
        let attended = queries.padded_attention(&keys, &values, Heads::<H>, Tokens::<L>, mask, lengths);
        self.output.apply_batch(&attended)
    }

    /// [`AttentionModule::forward_to`], differentiable in static mode with respect to
    /// the layer, the rows and the memory.
    #[differentiable(wrt(self, x, memory))]
    pub fn forward_to<R: Dim, const LK: usize>(
        &self,
        x: &Rows<T, R, D, K>,
        memory: &Rows<T, R, D, K>,
        memory_tokens: Tokens<LK>,
        lengths: Option<&[usize]>,
    ) -> Rows<T, R, D, K>
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let queries = self.query.apply_batch(x);
        let (keys, values) = (self.key.apply_batch(memory), self.value.apply_batch(memory));
        let mask = rules::stop_gradient(self.mask);
        let attended =
            queries.cross_attention(&keys, &values, Heads::<H>, Tokens::<L>, memory_tokens, mask, lengths);
        self.output.apply_batch(&attended)
    }
}

impl<T: RealScalar, const D: usize, const H: usize, const L: usize, K> MultiHeadAttention<T, D, H, L, K>
where
    K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>,
{
    /// The forward pass of `apply_batch` keeping what its reverse sweep needs (each
    /// map its input, the attention its operands): `attend_rows`'s own record would
    /// run the attention again in the reverse sweep (a method of a value it computes,
    /// which a record cannot keep).
    #[allow(clippy::type_complexity)]
    fn record<'l, R: Dim>(
        &'l self,
        x: Rows<T, R, D, K>,
        [parameters, input]: [bool; 2],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(Rows<T, R, D, K>) -> (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>) + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let wanted = [parameters, input];
        let (queries, query_pullback) = self.query.__record_owned_apply_batch(x.clone(), wanted);
        let (keys, key_pullback) = self.key.__record_owned_apply_batch(x.clone(), wanted);
        let (values, value_pullback) = self.value.__record_owned_apply_batch(x, wanted);
        let arguments = (Heads::<H>, Tokens::<L>, self.mask);
        let attended = queries.attention(&keys, &values, arguments.0, arguments.1, arguments.2);
        let (y, output_pullback) =
            self.output.__record_owned_apply_batch(attended, [parameters, parameters || input]);
        (y, move |y_bar| {
            let (output, attended_bar) = output_pullback(y_bar);
            let [q_bar, k_bar, v_bar] =
                attention_pullback([&queries, &keys, &values], &attended_bar, arguments);
            let (query, mut x_bar) = query_pullback(q_bar);
            let ((key, from_keys), (value, from_values)) = (key_pullback(k_bar), value_pullback(v_bar));
            crate::autodiff::VectorSpace::add_assign(&mut x_bar, &from_keys);
            crate::autodiff::VectorSpace::add_assign(&mut x_bar, &from_values);
            (MultiHeadAttentionTangent { query, key, value, output }, x_bar)
        })
    }
}

/// The forward pass for static mode: `apply_batch` and the companions that
/// `#[differentiable]` code calls, those of `attend_rows` but for the records.
#[allow(clippy::type_complexity)]
impl<T: RealScalar, const D: usize, const H: usize, const L: usize, K> MultiHeadAttention<T, D, H, L, K>
where
    K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>,
{
    /// The forward pass on rows, written for static mode: `mha.apply_batch(&x)` inside
    /// `#[differentiable]` code, alone or in a chain, keeps the values its reverse
    /// sweep needs.
    pub fn apply_batch<R: Dim>(&self, x: &Rows<T, R, D, K>) -> Rows<T, R, D, K>
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.attend_rows(x)
    }

    #[doc(hidden)]
    pub fn __record_apply_batch<'l, R: Dim>(
        &'l self,
        x: &'l Rows<T, R, D, K>,
        wanted: [bool; 2],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(Rows<T, R, D, K>) -> (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>) + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.record(x.clone(), wanted)
    }

    #[doc(hidden)]
    pub fn __record_owned_apply_batch<'l, R: Dim>(
        &'l self,
        x: Rows<T, R, D, K>,
        wanted: [bool; 2],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(Rows<T, R, D, K>) -> (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>) + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.record(x, wanted)
    }

    #[doc(hidden)]
    pub fn __joint_apply_batch<R: Dim>(
        &self,
        x: &Rows<T, R, D, K>,
        seed: Rows<T, R, D, K>,
    ) -> (Rows<T, R, D, K>, (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>))
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.__joint_attend_rows(x, seed)
    }

    #[doc(hidden)]
    pub fn __joint_lanes_apply_batch<R: Dim, const N: usize>(
        &self,
        x: &Rows<T, R, D, K>,
        seeds: [Rows<T, R, D, K>; N],
    ) -> (Rows<T, R, D, K>, ([MultiHeadAttentionTangent<T, D, H, L, K>; N], [Rows<T, R, D, K>; N]))
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.__joint_lanes_attend_rows(x, seeds)
    }

    #[doc(hidden)]
    pub fn __jvp_apply_batch<R: Dim>(
        &self,
        x: &Rows<T, R, D, K>,
        tangents: (Option<&MultiHeadAttentionTangent<T, D, H, L, K>>, Option<&Rows<T, R, D, K>>),
    ) -> (Rows<T, R, D, K>, Rows<T, R, D, K>)
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.__jvp_attend_rows(x, tangents)
    }

    #[doc(hidden)]
    pub fn __jvp_lanes_apply_batch<R: Dim, const N: usize>(
        &self,
        x: &Rows<T, R, D, K>,
        tangents: (Option<&[MultiHeadAttentionTangent<T, D, H, L, K>; N]>, Option<&[Rows<T, R, D, K>; N]>),
    ) -> (Rows<T, R, D, K>, [Rows<T, R, D, K>; N])
    where
        K: Storage<T, (R, Const<D>)>,
    {
        self.__jvp_lanes_attend_rows(x, tangents)
    }
}

crate::static_module!(
    impl[T: RealScalar, const D: usize, const H: usize, const L: usize, K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>, R: Dim]
        MultiHeadAttention<T, D, H, L, K>:
        apply_batch(Tensor<T, (R, Const<D>), K>) -> Tensor<T, (R, Const<D>), K>;
    where [K: Storage<T, (R, Const<D>)>]
);

debug_and_eq_by_fields!(
    [T: RealScalar, const D: usize, const H: usize, const L: usize, K: StorageKind<T, (Const<D>, Const<D>)>]
        MultiHeadAttention<T, D, H, L, K>, "MultiHeadAttention"
    where [WithBias: BiasKind<T, D, K>,] {
        query: Linear<T, D, D, K>,
        key: Linear<T, D, D, K>,
        value: Linear<T, D, D, K>,
        output: Linear<T, D, D, K>,
        mask: Mask
    }
);

/// `Module<$input>` and `AttentionModule<$input>` for one form of the layer, from one
/// expression each: the maps are that form's `Linear`s, whose forward pass on
/// `$input` the bounds ask for.
macro_rules! attention_module {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $layer:ty: $input:ty;
        where [$($bounds:tt)*]
    ) => {
        $(#[$attribute])*
        impl<$($generics)*> Module<$input> for $layer
        where
            $($bounds)*
        {
            type Output = $input;

            #[track_caller]
            fn forward(&self, x: &$input) -> $input {
                let (queries, keys, values) = (self.query.forward(x), self.key.forward(x), self.value.forward(x));
                self.output.forward(&queries.attention(&keys, &values, Heads::<H>, Tokens::<L>, self.mask))
            }
        }

        $(#[$attribute])*
        impl<$($generics)*> AttentionModule<$input> for $layer
        where
            $($bounds)*
        {
            #[track_caller]
            fn forward_padded(&self, x: &$input, lengths: &[usize]) -> $input {
                let (queries, keys, values) = (self.query.forward(x), self.key.forward(x), self.value.forward(x));
                let attended = queries.padded_attention(&keys, &values, Heads::<H>, Tokens::<L>, self.mask, lengths);
                self.output.forward(&attended)
            }

            #[track_caller]
            fn forward_to<const LK: usize>(
                &self,
                x: &$input,
                memory: &$input,
                memory_tokens: Tokens<LK>,
                lengths: Option<&[usize]>,
            ) -> $input {
                let queries = self.query.forward(x);
                let (keys, values) = (self.key.forward(memory), self.value.forward(memory));
                let (heads, tokens) = (Heads::<H>, Tokens::<L>);
                self.output.forward(&queries.cross_attention(&keys, &values, heads, tokens, memory_tokens, self.mask, lengths))
            }
        }
    };
}

attention_module!(
    impl[T: RealScalar, const D: usize, const H: usize, const L: usize, K, R: Dim]
        MultiHeadAttention<T, D, H, L, K>: Tensor<T, (R, Const<D>), K>;
    where [
        K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)> + Storage<T, (R, Const<D>)>,
        Linear<T, D, D, K>: Module<Tensor<T, (R, Const<D>), K>, Output = Tensor<T, (R, Const<D>), K>>,
    ]
);

attention_module!(
    #[cfg(feature = "std")]
    impl[T: RealScalar, const D: usize, const H: usize, const L: usize, K, R: Dim]
        MultiHeadAttentionTraced<T, D, H, L, K>: Var<Tensor<T, (R, Const<D>), K>>;
    where [
        K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)> + Storage<T, (R, Const<D>)>,
        LinearTraced<T, D, D, K>: Module<Var<Tensor<T, (R, Const<D>), K>>, Output = Var<Tensor<T, (R, Const<D>), K>>>,
    ]
);

attention_module!(
    /// Forward mode: the lifted layer on rows of duals.
    impl[T: RealScalar, const D: usize, const H: usize, const L: usize, K, R: Dim]
        MultiHeadAttentionLifted<T, D, H, L, K>: Tensor<Dual<T>, (R, Const<D>), K>;
    where [
        K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)> + Storage<Dual<T>, (Const<D>, Const<D>)> + Storage<Dual<T>, (Const<D>,)> + Storage<Dual<T>, (R, Const<D>)>,
        LinearLifted<T, D, D, K>: Module<Tensor<Dual<T>, (R, Const<D>), K>, Output = Tensor<Dual<T>, (R, Const<D>), K>>,
    ]
);

attention_module!(
    /// Forward over reverse: the lifted layer traced, on traced rows of duals.
    #[cfg(feature = "std")]
    impl[T: RealScalar, const D: usize, const H: usize, const L: usize, K, R: Dim]
        MultiHeadAttentionLiftedTraced<T, D, H, L, K>: Var<Tensor<Dual<T>, (R, Const<D>), K>>;
    where [
        K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)> + Storage<Dual<T>, (Const<D>, Const<D>)> + Storage<Dual<T>, (Const<D>,)> + Storage<Dual<T>, (R, Const<D>)>,
        LinearLiftedTraced<T, D, D, K>:
            Module<Var<Tensor<Dual<T>, (R, Const<D>), K>>, Output = Var<Tensor<Dual<T>, (R, Const<D>), K>>>,
    ]
);

constant_input!(
    [T: RealScalar, const D: usize, const H: usize, const L: usize, K: StorageKind<T, (R, Const<D>)>, R: Dim]
    MultiHeadAttentionTraced<T, D, H, L, K>, Tensor<T, (R, Const<D>), K>;
    where [K: StorageKind<T, (Const<D>, Const<D>)>, WithBias: BiasKind<T, D, K>, Linear<T, D, D, K>: Trace,]
);
constant_input!(
    [T: RealScalar, const D: usize, const H: usize, const L: usize, K: Storage<T, (R, Const<D>)> + Storage<Dual<T>, (R, Const<D>)>, R: Dim]
    MultiHeadAttentionLiftedTraced<T, D, H, L, K>, Tensor<T, (R, Const<D>), K> => Tensor<Dual<T>, (R, Const<D>), K>, |x| x.map(Dual::constant);
    where [K: StorageKind<T, (Const<D>, Const<D>)>, WithBias: BiasKind<T, D, K>, Linear<T, D, D, K>: Lift<Lifted: Trace>,]
);

#[cfg(feature = "cuda")]
impl<T: CudaElement, const D: usize, const H: usize, const L: usize> ToDevice
    for MultiHeadAttention<T, D, H, L, Heap>
{
    type OnDevice = MultiHeadAttention<T, D, H, L, Cuda>;
    fn to_device(&self) -> Self::OnDevice {
        MultiHeadAttention {
            query: self.query.to_device(),
            key: self.key.to_device(),
            value: self.value.to_device(),
            output: self.output.to_device(),
            mask: self.mask,
        }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const D: usize, const H: usize, const L: usize> ToHost
    for MultiHeadAttention<T, D, H, L, Cuda>
{
    type OnHost = MultiHeadAttention<T, D, H, L, Heap>;
    fn to_host(&self) -> Self::OnHost {
        MultiHeadAttention {
            query: self.query.to_host(),
            key: self.key.to_host(),
            value: self.value.to_host(),
            output: self.output.to_host(),
            mask: self.mask,
        }
    }
}

attention_module!(
    /// On the GPU, from the same expression (the attention's own kernels).
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, const D: usize, const H: usize, const L: usize, R: Dim]
        MultiHeadAttention<T, D, H, L, Cuda>: Tensor<T, (R, Const<D>), Cuda>;
    where []
);

attention_module!(
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, const D: usize, const H: usize, const L: usize, R: Dim]
        MultiHeadAttentionTraced<T, D, H, L, Cuda>: Var<Tensor<T, (R, Const<D>), Cuda>>;
    where []
);

attention_module!(
    /// Forward mode on the GPU: the lifted layer on dual rows.
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, const D: usize, const H: usize, const L: usize, R: Dim]
        MultiHeadAttentionLifted<T, D, H, L, Cuda>: CudaDual<T, (R, Const<D>)>;
    where []
);
