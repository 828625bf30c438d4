//! Multi-head self-attention over rows of tokens: the queries, keys and values are
//! three linear maps of the same rows, attended in H heads over sequences of L
//! tokens ([`attention`](crate::ops::attention)), then a fourth linear map mixes the
//! heads: y = W_o·attention(W_q·x, W_k·x, W_v·x) + b_o (PyTorch's
//! `MultiheadAttention(D, H, batch_first=True)` called on `(x, x, x)`, with its
//! sequences as L consecutive rows).

use super::*;
use crate::autodiff::rules::NotDifferentiated;
#[cfg(feature = "cuda")]
use crate::autodiff::{CudaAttentionVarOps, CudaDual};
use crate::error::or_panic;
use crate::ops::attention::{self, Heads, Mask, Seen, Tokens};
#[cfg(feature = "cuda")]
use crate::ops::cuda::CudaAttentionOps;
use crate::shape::constraint::SplitsIntoHeads;

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
}

/// Rows of tokens on a host storage kind.
type Rows<T, R, const D: usize, K> = Tensor<T, (R, Const<D>), K>;

/// The calls of [`MultiHeadAttention`] beyond [`Module::forward`], for every form
/// of the layer (plain, traced, lifted, on the GPU): self-attention over padded
/// sequences, and cross-attention to the rows of other sequences (a memory: an
/// encoder's output). The plain host layer also has inherent methods of the same
/// names, `#[differentiable]` (static mode), which a call on it picks. A block of
/// layers (`Sequential`, `Residual`) does not pass the lengths or the memory on:
/// call the attention layer itself, from a `#[module]` helper or a loss.
pub trait AttentionModule<X>: Module<X> {
    /// Self-attention in which the tokens of sequence n after its first `lengths[n]`
    /// are padding: no token attends to them (PyTorch's `key_padding_mask`); the
    /// padding rows still get outputs, for a loss to leave out
    /// ([`Tokens::unpadded_rows`] gives the rows to keep).
    ///
    /// # Panics
    /// As [`forward`](Module::forward), and when there is not one length per sequence
    /// or one is not from 1 to L (the message names them).
    fn forward_padded(&self, x: &X, lengths: &[usize]) -> Self::Output;

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
    ) -> Self::Output;
}

/// The forward passes for static mode: `apply_batch` (as `forward`),
/// `forward_padded` and `forward_to` (as [`AttentionModule`]'s), each
/// `#[differentiable]` with a record written by hand
/// (`record_attention`) that keeps the attention's
/// operands, where the body's own record would run the attention again in the
/// reverse sweep (a method of a value the body computes).
impl<T: RealScalar, const D: usize, const H: usize, const L: usize, K> MultiHeadAttention<T, D, H, L, K>
where
    K: Storage<T, (Const<D>, Const<D>)> + Storage<T, (Const<D>,)>,
{
    /// The forward pass on rows, written for static mode: `mha.apply_batch(&x)` inside
    /// `#[differentiable]` code, alone or in a chain, keeps the values its reverse
    /// sweep needs.
    #[differentiable(record = Self::record_rows)]
    pub fn apply_batch<R: Dim>(&self, x: &Rows<T, R, D, K>) -> Rows<T, R, D, K>
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

    /// [`AttentionModule::forward_padded`], differentiable in static mode with
    /// respect to the layer and the rows (the lengths are a constant).
    #[differentiable(wrt(self, x), record = Self::record_padded)]
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
    #[differentiable(wrt(self, x, memory), record = Self::record_to)]
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

    /// `apply_batch`'s record.
    #[allow(clippy::type_complexity)]
    fn record_rows<'l, R: Dim>(
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
        let names = ["attention", "attention_pullback"];
        let seen = Seen::new(self.mask, None);
        let (y, pullback) = self.record_attention::<R, L>(names, (x, None), seen, [parameters, input, false]);
        (y, move |y_bar| {
            let (tangent, x_bar, _) = pullback(y_bar);
            (tangent, x_bar)
        })
    }

    /// `forward_padded`'s record.
    #[allow(clippy::type_complexity)]
    fn record_padded<'l, R: Dim>(
        &'l self,
        x: Rows<T, R, D, K>,
        lengths: &'l [usize],
        [parameters, input, _]: [bool; 3],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(
            Rows<T, R, D, K>,
        ) -> (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>, NotDifferentiated)
        + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let names = ["padded_attention", "padded_attention_pullback"];
        let seen = Seen::new(self.mask, Some(lengths));
        let (y, pullback) = self.record_attention::<R, L>(names, (x, None), seen, [parameters, input, false]);
        (y, move |y_bar| {
            let (tangent, x_bar, _) = pullback(y_bar);
            (tangent, x_bar, NotDifferentiated)
        })
    }

    /// `forward_to`'s record.
    #[allow(clippy::type_complexity)]
    fn record_to<'l, R: Dim, const LK: usize>(
        &'l self,
        x: Rows<T, R, D, K>,
        memory: Rows<T, R, D, K>,
        _: Tokens<LK>,
        lengths: Option<&'l [usize]>,
        [parameters, input, from_memory, ..]: [bool; 5],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(
            Rows<T, R, D, K>,
        ) -> (
            MultiHeadAttentionTangent<T, D, H, L, K>,
            Rows<T, R, D, K>,
            Rows<T, R, D, K>,
            NotDifferentiated,
            NotDifferentiated,
        ) + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let names = ["cross_attention", "cross_attention_pullback"];
        let seen = Seen::new(self.mask, lengths);
        let wanted = [parameters, input, from_memory];
        let (y, pullback) = self.record_attention::<R, LK>(names, (x, Some(memory)), seen, wanted);
        (y, move |y_bar| {
            let (tangent, x_bar, memory_bar) = pullback(y_bar);
            let memory_bar = memory_bar.expect("a cross-attention's memory gets a cotangent");
            (tangent, x_bar, memory_bar, NotDifferentiated, NotDifferentiated)
        })
    }

    /// The forward pass keeping what its reverse sweep needs (each map its input,
    /// the attention its operands), queries from `x` and keys and values from the
    /// memory (`x` itself when there is none), for the parameters, `x` and the
    /// memory as `wanted`; the reverse sweep gives the layer's tangent, x̄ and the
    /// memory's cotangent (when there is a memory). `names` are the attention's and
    /// its pullback's, for errors.
    #[allow(clippy::type_complexity)]
    fn record_attention<'l, R: Dim, const LK: usize>(
        &'l self,
        [name, pullback_name]: [&'static str; 2],
        (x, memory): (Rows<T, R, D, K>, Option<Rows<T, R, D, K>>),
        seen: Seen<'l>,
        [parameters, input, from_memory]: [bool; 3],
    ) -> (
        Rows<T, R, D, K>,
        impl FnOnce(
            Rows<T, R, D, K>,
        )
            -> (MultiHeadAttentionTangent<T, D, H, L, K>, Rows<T, R, D, K>, Option<Rows<T, R, D, K>>)
        + 'l,
    )
    where
        K: Storage<T, (R, Const<D>)>,
    {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        let crossing = memory.is_some();
        let source_wanted = if crossing { from_memory } else { input };
        let (queries, query_pullback) = self.query.__record_owned_apply_batch(x.clone(), [parameters, input]);
        let source = memory.unwrap_or(x);
        let (keys, key_pullback) =
            self.key.__record_owned_apply_batch(source.clone(), [parameters, source_wanted]);
        let (values, value_pullback) =
            self.value.__record_owned_apply_batch(source, [parameters, source_wanted]);
        let attended =
            or_panic(attention::attend::<T, R, R, D, H, L, LK, K>(name, &queries, [&keys, &values], seen));
        let wanted_attended = parameters || input || from_memory;
        let (y, output_pullback) =
            self.output.__record_owned_apply_batch(attended, [parameters, wanted_attended]);
        (y, move |y_bar| {
            let (output, attended_bar) = output_pullback(y_bar);
            let (q_bar, [k_bar, v_bar]) = attention::pullback::<T, R, R, D, H, L, LK, K>(
                pullback_name,
                (&queries, [&keys, &values]),
                &attended_bar,
                seen,
            );
            let (query, mut x_bar) = query_pullback(q_bar);
            let ((key, mut source_bar), (value, from_values)) = (key_pullback(k_bar), value_pullback(v_bar));
            crate::autodiff::VectorSpace::add_assign(&mut source_bar, &from_values);
            let memory_bar = if crossing {
                Some(source_bar)
            } else {
                crate::autodiff::VectorSpace::add_assign(&mut x_bar, &source_bar);
                None
            };
            (MultiHeadAttentionTangent { query, key, value, output }, x_bar, memory_bar)
        })
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

/// `Module` and `AttentionModule` of plain rows for a traced form of the layer: the
/// rows (and the memory) taken as constants.
macro_rules! attention_constant_input {
    ([$($generics:tt)*] $traced:ty, $input:ty => $traced_input:ty, |$x:ident| $constant:expr; where [$($bounds:tt)*]) => {
        constant_input!([$($generics)*] $traced, $input => $traced_input, |$x| $constant; where [$($bounds)*]);

        #[cfg(feature = "std")]
        impl<$($generics)*> AttentionModule<$input> for $traced
        where
            $($bounds)*
            $traced: AttentionModule<Var<$traced_input>>,
        {
            #[track_caller]
            fn forward_padded(&self, $x: &$input, lengths: &[usize]) -> Self::Output {
                <$traced as AttentionModule<Var<$traced_input>>>::forward_padded(self, &Var::constant($constant), lengths)
            }

            #[track_caller]
            fn forward_to<const LK: usize>(
                &self,
                x: &$input,
                memory: &$input,
                memory_tokens: Tokens<LK>,
                lengths: Option<&[usize]>,
            ) -> Self::Output {
                let constant = |$x: &$input| Var::constant($constant);
                let (x, memory) = (constant(x), constant(memory));
                <$traced as AttentionModule<Var<$traced_input>>>::forward_to(self, &x, &memory, memory_tokens, lengths)
            }
        }
    };
}

attention_constant_input!(
    [T: RealScalar, const D: usize, const H: usize, const L: usize, K: StorageKind<T, (R, Const<D>)>, R: Dim]
    MultiHeadAttentionTraced<T, D, H, L, K>, Tensor<T, (R, Const<D>), K> => Tensor<T, (R, Const<D>), K>, |x| x.clone();
    where [K: StorageKind<T, (Const<D>, Const<D>)>, WithBias: BiasKind<T, D, K>, Linear<T, D, D, K>: Trace,]
);
attention_constant_input!(
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
