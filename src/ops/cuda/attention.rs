//! Multi-head attention on GPU rows of tokens under the host's names
//! ([`crate::ops::attention`]): self-attention, over padded sequences and
//! cross-attention, with the same checks, and their derivatives: kernels of their
//! own, one thread per query (and per key for k̄ and v̄), each sum in the host's
//! order ([`crate::backend::cuda`]).

use super::OnDevice;
use crate::backend::cuda::{
    AttentionGeometry, CudaElement, attention as attention_kernel, attention_pullback as pullback_kernel,
    attention_push as push_kernel, or_panic_cuda,
};
use crate::error::{ShapeError, or_panic};
use crate::ops::attention::{Heads, Mask, Seen, Tokens, check_derivative, check_operands};
use crate::shape::constraint::SplitsIntoHeads;
use crate::shape::{Const, Dim};

/// Rows of tokens on the GPU, D values each.
type Rows<T, R, const D: usize> = OnDevice<T, (R, Const<D>)>;

/// The geometry of an attention over `sequences` of LQ queries and LK keys of D
/// values in H heads.
fn geometry<const D: usize, const H: usize, const LQ: usize, const LK: usize>(
    sequences: usize,
    seen: Seen<'_>,
) -> AttentionGeometry {
    let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
    AttentionGeometry { sequences, query_tokens: LQ, key_tokens: LK, width: D, heads: H, causal: seen.causal }
}

/// Checks the operands and runs the attention's kernel (H dividing D is checked
/// with the geometry).
pub(crate) fn attend<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    operation: &'static str,
    queries: &Rows<T, R, D>,
    [keys, values]: [&Rows<T, RK, D>; 2],
    seen: Seen<'_>,
) -> Result<Rows<T, R, D>, ShapeError> {
    let sequences =
        check_operands::<LQ, LK>(operation, [queries.dims(), keys.dims(), values.dims()], seen.lengths)?;
    let geometry = geometry::<D, H, LQ, LK>(sequences, seen);
    let operands = [queries.slice(), keys.slice(), values.slice()];
    Ok(OnDevice::new(queries.shape(), |y| attention_kernel(operands, y, (geometry, seen.lengths))))
}

/// Multi-head attention of GPU rows of tokens `(R, D)`.
#[fluxion_derive::extension_trait(CudaAttentionOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, const D: usize> Rows<T, R, D> {
    /// Multi-head scaled dot-product attention with these rows as the queries, as
    /// [`Tensor::try_attention`](crate::Tensor::try_attention) on the host: an error
    /// names the shapes when the keys' or values' rows differ or the rows are not
    /// whole sequences of L tokens.
    pub fn try_attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
    ) -> Result<Self, ShapeError> {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        attend::<T, R, R, D, H, L, L>("attention", self, [keys, values], Seen::new(mask, None))
    }

    /// [`try_attention`](CudaAttentionOps::try_attention) that panics on a mismatch.
    #[track_caller]
    pub fn attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        heads: Heads<H>,
        tokens: Tokens<L>,
        mask: Mask,
    ) -> Self {
        or_panic(self.try_attention(keys, values, heads, tokens, mask))
    }

    /// Attention over padded sequences, as
    /// [`Tensor::try_padded_attention`](crate::Tensor::try_padded_attention) on the
    /// host.
    pub fn try_padded_attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
        lengths: &[usize],
    ) -> Result<Self, ShapeError> {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        attend::<T, R, R, D, H, L, L>(
            "padded_attention",
            self,
            [keys, values],
            Seen::new(mask, Some(lengths)),
        )
    }

    /// [`try_padded_attention`](CudaAttentionOps::try_padded_attention) that panics
    /// on a mismatch.
    #[track_caller]
    pub fn padded_attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        heads: Heads<H>,
        tokens: Tokens<L>,
        mask: Mask,
        lengths: &[usize],
    ) -> Self {
        or_panic(self.try_padded_attention(keys, values, heads, tokens, mask, lengths))
    }

    /// Cross-attention to keys and values in sequences of LK tokens, as
    /// [`Tensor::try_cross_attention`](crate::Tensor::try_cross_attention) on the
    /// host.
    #[allow(clippy::too_many_arguments)]
    pub fn try_cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &Rows<T, RK, D>,
        values: &Rows<T, RK, D>,
        _: Heads<H>,
        _: Tokens<LQ>,
        _: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Result<Self, ShapeError> {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        attend::<T, R, RK, D, H, LQ, LK>("cross_attention", self, [keys, values], Seen::new(mask, lengths))
    }

    /// [`try_cross_attention`](CudaAttentionOps::try_cross_attention) that panics on
    /// a mismatch.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &Rows<T, RK, D>,
        values: &Rows<T, RK, D>,
        heads: Heads<H>,
        query_tokens: Tokens<LQ>,
        key_tokens: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self {
        or_panic(self.try_cross_attention(keys, values, heads, query_tokens, key_tokens, mask, lengths))
    }
}

/// The pullback of the attention on the GPU: (q̄, k̄, v̄) for the output's cotangent
/// ȳ (the host's [`attention_pullback`](crate::ops::attention::attention_pullback)).
///
/// # Panics
/// When the operands' shapes differ from each other or from ȳ's, or the rows are not
/// whole sequences of L tokens.
#[track_caller]
pub fn attention_pullback<T: CudaElement, R: Dim, const D: usize, const H: usize, const L: usize>(
    [queries, keys, values]: [&Rows<T, R, D>; 3],
    y_bar: &Rows<T, R, D>,
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> [Rows<T, R, D>; 3] {
    let seen = Seen::new(mask, None);
    let (q_bar, [k_bar, v_bar]) =
        pullback::<T, R, R, D, H, L, L>("attention_pullback", (queries, [keys, values]), y_bar, seen);
    [q_bar, k_bar, v_bar]
}

/// The pushforward of the attention on the GPU: ẏ for the operands' tangents.
///
/// # Panics
/// As [`attention_pullback`].
#[track_caller]
pub fn attention_push<T: CudaElement, R: Dim, const D: usize, const H: usize, const L: usize>(
    [queries, keys, values]: [&Rows<T, R, D>; 3],
    [q_dot, k_dot, v_dot]: [&Rows<T, R, D>; 3],
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> Rows<T, R, D> {
    let seen = Seen::new(mask, None);
    push::<T, R, R, D, H, L, L>("attention_push", (queries, [keys, values]), (q_dot, [k_dot, v_dot]), seen)
}

/// The pullback of the cross-attention on the GPU (and of the padded attention, with
/// the keys' rows the queries' and LK = LQ): (q̄, [k̄, v̄]) for the output's cotangent
/// ȳ (the host's
/// [`cross_attention_pullback`](crate::ops::attention::cross_attention_pullback)).
///
/// # Panics
/// As the attention, and when ȳ's shape differs from the queries'.
#[track_caller]
pub fn cross_attention_pullback<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    operands: (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    y_bar: &Rows<T, R, D>,
    (_, _, _, mask, lengths): (Heads<H>, Tokens<LQ>, Tokens<LK>, Mask, Option<&[usize]>),
) -> (Rows<T, R, D>, [Rows<T, RK, D>; 2]) {
    pullback::<T, R, RK, D, H, LQ, LK>("cross_attention_pullback", operands, y_bar, Seen::new(mask, lengths))
}

/// The pushforward of the cross-attention on the GPU (and of the padded attention, as
/// for the pullback): ẏ for the operands' tangents.
///
/// # Panics
/// As [`cross_attention_pullback`], and when a tangent's shape differs from its
/// operand's.
#[track_caller]
pub fn cross_attention_push<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    operands: (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    tangents: (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    (_, _, _, mask, lengths): (Heads<H>, Tokens<LQ>, Tokens<LK>, Mask, Option<&[usize]>),
) -> Rows<T, R, D> {
    push::<T, R, RK, D, H, LQ, LK>("cross_attention_push", operands, tangents, Seen::new(mask, lengths))
}

/// (q̄, [k̄, v̄]) of any of the attentions on the GPU for the output's cotangent ȳ.
#[track_caller]
pub(crate) fn pullback<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    operation: &'static str,
    (queries, [keys, values]): (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    y_bar: &Rows<T, R, D>,
    seen: Seen<'_>,
) -> (Rows<T, R, D>, [Rows<T, RK, D>; 2]) {
    let operands = [queries.dims(), keys.dims(), values.dims()];
    let sequences = check_derivative::<D, H, LQ, LK>(operation, operands, seen, [&[y_bar.dims()], &[]]);
    let geometry = geometry::<D, H, LQ, LK>(sequences, seen);
    let mut q_bar = OnDevice::device_zeros(queries.shape());
    let mut key_bars = [(); 2].map(|()| OnDevice::device_zeros(keys.shape()));
    let [k_bar, v_bar] = &mut key_bars;
    or_panic_cuda(pullback_kernel(
        [queries.slice(), keys.slice(), values.slice()],
        y_bar.slice(),
        [q_bar.slice_mut(), k_bar.slice_mut(), v_bar.slice_mut()],
        (geometry, seen.lengths),
    ));
    (q_bar, key_bars)
}

/// ẏ of any of the attentions on the GPU for the operands' tangents.
#[track_caller]
pub(crate) fn push<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    operation: &'static str,
    (queries, [keys, values]): (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    (q_dot, [k_dot, v_dot]): (&Rows<T, R, D>, [&Rows<T, RK, D>; 2]),
    seen: Seen<'_>,
) -> Rows<T, R, D> {
    let operands = [queries.dims(), keys.dims(), values.dims()];
    let sequences = check_derivative::<D, H, LQ, LK>(
        operation,
        operands,
        seen,
        [&[q_dot.dims()], &[k_dot.dims(), v_dot.dims()]],
    );
    let geometry = geometry::<D, H, LQ, LK>(sequences, seen);
    let operands = [queries.slice(), keys.slice(), values.slice()];
    let tangents = [q_dot.slice(), k_dot.slice(), v_dot.slice()];
    OnDevice::new(queries.shape(), |y_dot| push_kernel(operands, tangents, y_dot, (geometry, seen.lengths)))
}
