//! Multi-head scaled dot-product attention on rows of tokens.
//!
//! Queries, keys and values are `(R, D)` rows: R = N·L tokens, N sequences of L
//! consecutive rows, each row one token's D values split into H heads of d = D/H
//! (head h: columns h·d to (h + 1)·d, PyTorch's `view(N, L, H, d)`). For each
//! sequence and head, token t attends to the tokens u it sees — all L of them, or
//! u ≤ t under a causal mask:
//!
//! s_tu = q_t·k_u/√d,  p_t = softmax_u(s_t),  o_t = Σ_u p_tu·v_u,
//!
//! and its output row holds the heads' o_t side by side (PyTorch's
//! `scaled_dot_product_attention` on `(N, H, L, d)` with the heads merged back).
//! Over padded sequences ([`padded_attention`](Tensor::padded_attention)) token t of
//! sequence n sees only the first `lengths[n]` of those (PyTorch's
//! `key_padding_mask`); in a cross-attention
//! ([`cross_attention`](Tensor::cross_attention)) the queries come in sequences of
//! LQ tokens and the keys and values in as many sequences of LK, sequence n's queries
//! attending to sequence n's keys.
//!
//! Derivatives, per sequence and head, with P the probabilities (rows t):
//! - reverse: V̄ = PᵀŌ, P̄ = ŌVᵀ, S̄ = P ⊙ (P̄ − rowsum(P ⊙ P̄)), Q̄ = S̄K/√d,
//!   K̄ = S̄ᵀQ/√d;
//! - forward: Ṡ = (Q̇Kᵀ + QK̇ᵀ)/√d, Ṗ = P ⊙ (Ṡ − rowsum(P ⊙ Ṡ)), Ȯ = ṖV + PV̇.
//!
//! A masked or padding pair has p = 0 and carries nothing (a padding key and value
//! get zero cotangents). The probabilities are recomputed one query at a time (two
//! arrays of LK elements on the stack) in the value and in each derivative: no
//! LQ×LK matrix is kept, and nothing is allocated beyond the results. For sequences
//! of many thousands of tokens (or of nested duals), give the thread a larger stack.

use crate::error::{ShapeError, or_panic};
use crate::ops::reduce::contiguous_max;
use crate::ops::softmax::exponentiate_shifted;
use crate::scalar::RealScalar;
use crate::shape::constraint::SplitsIntoHeads;
use crate::shape::{Const, Dim, Dims};
use crate::tensor::{Storage, Tensor};

/// Rows of tokens, D values each.
type Rows<T, R, const D: usize, K> = Tensor<T, (R, Const<D>), K>;

/// H attention heads, as an argument: `q.attention(&k, &v, Heads::<4>, Tokens::<16>,
/// Mask::Causal)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heads<const H: usize>;

/// Sequences of L tokens (L consecutive rows each), as an argument of
/// [`attention`](Tensor::attention).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens<const L: usize>;

impl<const L: usize> Tokens<L> {
    /// Each of `rows` rows' position in its sequence, 0, 1, …, L − 1, 0, 1, …: the
    /// indices of a position embedding.
    ///
    /// ```
    /// use fluxion::nn::prelude::Tokens;
    /// let positions: Vec<usize> = Tokens::<3>.positions(7).collect();
    /// assert_eq!(positions, [0, 1, 2, 0, 1, 2, 0]);
    /// ```
    ///
    /// # Panics
    /// When L is 0.
    pub fn positions(self, rows: usize) -> impl Iterator<Item = usize> {
        assert!(L > 0, "Tokens::positions: a sequence of 0 tokens");
        (0..rows).map(|row| row % L)
    }

    /// The rows of the real tokens of sequences padded to L tokens, sequence n
    /// holding `lengths[n]`: n·L + t for t < `lengths[n]`, in order. A loss over the
    /// real tokens alone gathers them (PyTorch's `ignore_index`, or `logits[mask]`):
    ///
    /// ```
    /// use fluxion::nn::loss::{Reduction, cross_entropy};
    /// use fluxion::nn::prelude::Tokens;
    /// use fluxion::prelude::*;
    ///
    /// // Two sequences padded to 3 tokens, with 2 and 1 real ones.
    /// let lengths = [2, 1];
    /// let rows: Vec<usize> = Tokens::<3>.unpadded_rows(&lengths).collect();
    /// assert_eq!(rows, [0, 1, 3]);
    /// let logits = Tensor::<f64, (Dyn, Const<4>), Heap>::random_normal_shaped((Dyn(6), Const), 0.0, 1.0, 1);
    /// let targets = [2, 0, 9, 1, 9, 9]; // 9 on the padding: never read
    /// let real_targets: Vec<usize> = rows.iter().map(|&row| targets[row]).collect();
    /// let loss = cross_entropy(&logits.gather_rows(&rows), &real_targets, Reduction::Mean);
    /// assert!(loss > 0.0);
    /// ```
    ///
    /// # Panics
    /// When a length exceeds L.
    pub fn unpadded_rows(self, lengths: &[usize]) -> impl Iterator<Item = usize> + '_ {
        lengths.iter().enumerate().flat_map(|(n, &length)| {
            assert!(length <= L, "Tokens::unpadded_rows: sequence {n} has {length} tokens, more than {L}");
            (0..length).map(move |t| n * L + t)
        })
    }
}

/// Which tokens a token attends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mask {
    /// Every token of its sequence (an encoder's, BERT's).
    Full,
    /// Itself and the tokens before it (a decoder's, GPT's; PyTorch's
    /// `is_causal=True`).
    Causal,
}

/// A mask has no derivative: inside `#[differentiable]` code a layer's mask field,
/// which the macro takes for a differentiated value, is read as
/// `stop_gradient(self.mask)`.
#[diagnostic::do_not_recommend]
impl crate::autodiff::rules::StopGradient for Mask {
    type Stopped = Mask;
    fn stop_gradient(self) -> Mask {
        self
    }
}

/// Which keys each query sees: the mask's, and of sequence n only its first
/// `lengths[n]` keys when the sequences are padded (the rest are padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen<'a> {
    pub(crate) causal: bool,
    pub(crate) lengths: Option<&'a [usize]>,
}

impl<'a> Seen<'a> {
    /// The keys seen under `mask`, trimmed to `lengths` when given.
    pub(crate) fn new(mask: Mask, lengths: Option<&'a [usize]>) -> Self {
        Seen { causal: mask == Mask::Causal, lengths }
    }

    /// How many keys token `t` of sequence `n` sees, of `keys` per sequence: the
    /// first ones.
    fn count(self, n: usize, t: usize, keys: usize) -> usize {
        let unpadded = if self.causal { (t + 1).min(keys) } else { keys };
        self.lengths.map_or(unpadded, |lengths| unpadded.min(lengths[n]))
    }
}

/// The keys' and values' rows of a cross-attention, `(RK, D)`.
type KeyRows<T, RK, const D: usize, K> = Tensor<T, (RK, Const<D>), K>;

// The companions that `#[differentiable]` generates take the arguments and more.
#[allow(clippy::too_many_arguments)]
impl<T: RealScalar, R: Dim, const D: usize, K: Storage<T, (R, Const<D>)>> Rows<T, R, D, K> {
    /// Multi-head scaled dot-product attention with these rows as the queries (see
    /// the [module](self) for the definition); an error names the shapes when the
    /// keys' or values' rows differ from the queries' or the rows are not whole
    /// sequences of L tokens. H dividing D is checked when the program is built.
    pub fn try_attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
    ) -> Result<Self, ShapeError> {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        attend::<T, R, R, D, H, L, L, K>("attention", self, [keys, values], Seen::new(mask, None))
    }

    /// [`try_attention`](Self::try_attention) that panics on a mismatch: the
    /// attention of these queries to `keys`, averaging `values`, in H heads over
    /// sequences of L tokens. Differentiable in static mode with respect to all three.
    ///
    /// ```
    /// use fluxion::nn::prelude::{Heads, Mask, Tokens};
    /// use fluxion::prelude::*;
    ///
    /// // Two sequences of 3 tokens, 4 values each in 2 heads of 2.
    /// let x = Tensor::<f64, (Dyn, Const<4>), Heap>::from_shape_fn((Dyn(6), Const), |[r, c]| (r * 4 + c) as f64 * 0.1);
    /// let y = x.attention(&x, &x, Heads::<2>, Tokens::<3>, Mask::Causal);
    /// // The first token of each sequence sees only itself.
    /// assert_eq!(y.as_slice()[..4], x.as_slice()[..4]);
    /// assert_eq!(y.as_slice()[12..16], x.as_slice()[12..16]);
    /// ```
    ///
    /// # Panics
    /// When the keys' or values' rows differ from the queries', or the rows are not
    /// whole sequences of L ≥ 1 tokens (the message names the shapes).
    #[track_caller]
    #[crate::autodiff::differentiable(wrt(self, keys, values), vjp = attention_vjp, jvp = attention_jvp)]
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

    /// [`try_attention`](Self::try_attention) over padded sequences: the tokens of
    /// sequence n after its first `lengths[n]` are padding, which no token attends
    /// to (PyTorch's `key_padding_mask`). The padding rows still get outputs — of the
    /// real tokens they see — for a loss to leave out. An error names the shapes as
    /// `try_attention`'s does, and the lengths when there is not one per sequence or
    /// one is not from 1 to L.
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
        attend::<T, R, R, D, H, L, L, K>(
            "padded_attention",
            self,
            [keys, values],
            Seen::new(mask, Some(lengths)),
        )
    }

    /// [`try_padded_attention`](Self::try_padded_attention) that panics on a
    /// mismatch. Differentiable in static mode with respect to the queries, keys and
    /// values (the lengths are a constant).
    ///
    /// ```
    /// use fluxion::nn::prelude::{Heads, Mask, Tokens};
    /// use fluxion::prelude::*;
    ///
    /// // Two sequences of 4 tokens; the first has 2 real tokens, the second 3.
    /// let x = Tensor::<f64, (Dyn, Const<4>), Heap>::random_normal_shaped((Dyn(8), Const), 0.0, 1.0, 1);
    /// let y = x.padded_attention(&x, &x, Heads::<2>, Tokens::<4>, Mask::Full, &[2, 3]);
    /// // The first sequence's real tokens see only each other: as if it were cut at 2.
    /// let cut = Tensor::<f64, (Dyn, Const<4>), Heap>::from_flat_fn((Dyn(2), Const), |i| x.as_slice()[i]);
    /// let alone = cut.attention(&cut, &cut, Heads::<2>, Tokens::<2>, Mask::Full);
    /// assert_eq!(y.as_slice()[..8], alone.as_slice()[..]);
    /// ```
    ///
    /// # Panics
    /// As [`attention`](Self::attention), and when there is not one length per
    /// sequence or one is not from 1 to L (the message names them).
    #[track_caller]
    #[crate::autodiff::differentiable(
        wrt(self, keys, values),
        vjp = padded_attention_vjp,
        jvp = padded_attention_jvp
    )]
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

    /// Cross-attention: these rows, sequences of LQ tokens, attend to `keys`,
    /// averaging `values`, sequences of LK tokens (an encoder's output, say),
    /// sequence n of the queries to sequence n of the keys: s_tu = q_t·k_u/√d,
    /// p_t = softmax(s_t), o_t = Σ_u p_tu·v_u over the keys query t sees — every key
    /// under [`Mask::Full`], keys 0 to t under [`Mask::Causal`] (aligned at the first
    /// token, as PyTorch's `is_causal`), and with `lengths` of sequence n only the
    /// first `lengths[n]` (the rest padding). An error names the shapes when the
    /// keys' and values' differ, the rows are not whole sequences, the queries' and
    /// keys' sequence counts differ, or the lengths are not one per sequence from 1
    /// to LK.
    pub fn try_cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &KeyRows<T, RK, D, K>,
        values: &KeyRows<T, RK, D, K>,
        _: Heads<H>,
        _: Tokens<LQ>,
        _: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Result<Self, ShapeError>
    where
        K: Storage<T, (RK, Const<D>)>,
    {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        attend::<T, R, RK, D, H, LQ, LK, K>("cross_attention", self, [keys, values], Seen::new(mask, lengths))
    }

    /// [`try_cross_attention`](Self::try_cross_attention) that panics on a mismatch.
    /// Differentiable in static mode with respect to the queries, keys and values.
    ///
    /// ```
    /// use fluxion::nn::prelude::{Heads, Mask, Tokens};
    /// use fluxion::prelude::*;
    ///
    /// type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;
    /// // Two sequences: 3 queries each, attending to 5 keys each (4 and 5 of them real).
    /// let queries = Rows::random_normal_shaped((Dyn(6), Const), 0.0, 1.0, 1);
    /// let memory = Rows::random_normal_shaped((Dyn(10), Const), 0.0, 1.0, 2);
    /// let lengths = [4, 5];
    /// let y = queries.cross_attention(&memory, &memory, Heads::<2>, Tokens::<3>, Tokens::<5>, Mask::Full, Some(&lengths));
    /// assert_eq!(y.shape(), queries.shape());
    /// ```
    ///
    /// # Panics
    /// As [`try_cross_attention`](Self::try_cross_attention) (the message names the
    /// shapes).
    #[track_caller]
    #[crate::autodiff::differentiable(
        wrt(self, keys, values),
        vjp = cross_attention_vjp,
        jvp = cross_attention_jvp
    )]
    pub fn cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &KeyRows<T, RK, D, K>,
        values: &KeyRows<T, RK, D, K>,
        heads: Heads<H>,
        query_tokens: Tokens<LQ>,
        key_tokens: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self
    where
        K: Storage<T, (RK, Const<D>)>,
    {
        or_panic(self.try_cross_attention(keys, values, heads, query_tokens, key_tokens, mask, lengths))
    }
}

/// Checks the operands and runs the attention's loops (the callers check that H
/// divides D, so that a compile-time error names them).
pub(crate) fn attend<
    T: RealScalar,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    operation: &'static str,
    queries: &Rows<T, R, D, K>,
    [keys, values]: [&KeyRows<T, RK, D, K>; 2],
    seen: Seen<'_>,
) -> Result<Rows<T, R, D, K>, ShapeError>
where
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    let sequences =
        check_operands::<LQ, LK>(operation, [queries.dims(), keys.dims(), values.dims()], seen.lengths)?;
    let mut out = Tensor::zeros_shaped(queries.shape());
    let operands = (queries.as_slice(), [keys.as_slice(), values.as_slice()]);
    Geometry::<D, H, LQ, LK>::attend(operands, sequences, seen, out.as_mut_slice());
    Ok(out)
}

/// Checks the queries', keys' and values' shapes and the key lengths: the keys and
/// values alike, whole sequences of LQ ≥ 1 and LK ≥ 1 tokens, as many of the queries
/// as of the keys (in a self-attention, LQ = LK: the queries' shape), and one length
/// per sequence from 1 to LK. The sequence count when they hold.
pub(crate) fn check_operands<const LQ: usize, const LK: usize>(
    operation: &'static str,
    [queries, keys, values]: [Dims; 3],
    lengths: Option<&[usize]>,
) -> Result<usize, ShapeError> {
    if values != keys {
        return Err(ShapeError::new(operation, values, keys, "the keys and values must have the same shape"));
    }
    let rows = |dims: Dims| dims.as_slice()[0];
    for (dims, tokens) in [(queries, LQ), (keys, LK)] {
        if tokens == 0 || !rows(dims).is_multiple_of(tokens) {
            return Err(ShapeError::new(
                operation,
                dims,
                Dims::new(&[tokens]),
                "the row count must be a whole number of sequences: a multiple of the token count, which must be at least 1",
            ));
        }
    }
    let sequences = rows(queries) / LQ;
    if rows(keys) / LK != sequences {
        return Err(ShapeError::new(
            operation,
            queries,
            keys,
            "the queries and the keys must hold as many sequences (of their own token counts)",
        ));
    }
    if let Some(lengths) = lengths {
        if lengths.len() != sequences {
            return Err(ShapeError::length_count(operation, lengths.len(), sequences));
        }
        if let Some(n) = lengths.iter().position(|&length| length == 0 || length > LK) {
            return Err(ShapeError::key_length(operation, [n, lengths[n]], LK));
        }
    }
    Ok(sequences)
}

/// Checks a derivative's operands as the attention does, and that each cotangent or
/// tangent has its operand's shape: `of_queries` the queries', `of_keys` the keys'.
/// The sequence count.
#[track_caller]
pub(crate) fn check_derivative<const D: usize, const H: usize, const LQ: usize, const LK: usize>(
    operation: &'static str,
    operands: [Dims; 3],
    seen: Seen<'_>,
    [of_queries, of_keys]: [&[Dims]; 2],
) -> usize {
    let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
    let sequences = or_panic(check_operands::<LQ, LK>(operation, operands, seen.lengths));
    for (others, operand) in [(of_queries, operands[0]), (of_keys, operands[1])] {
        for &other in others {
            if other != operand {
                or_panic(Err(ShapeError::new(
                    operation,
                    operand,
                    other,
                    "a cotangent or tangent must have its operand's shape",
                )))
            }
        }
    }
    sequences
}

/// The pullback of [`attention`](Tensor::attention): (q̄, k̄, v̄) for the output's
/// cotangent ȳ.
///
/// # Panics
/// As the attention, and when ȳ's shape differs from the queries'.
#[track_caller]
pub fn attention_pullback<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    [queries, keys, values]: [&Rows<T, R, D, K>; 3],
    y_bar: &Rows<T, R, D, K>,
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> [Rows<T, R, D, K>; 3]
where
    K: Storage<T, (R, Const<D>)>,
{
    let (q_bar, [k_bar, v_bar]) = pullback::<T, R, R, D, H, L, L, K>(
        "attention_pullback",
        (queries, [keys, values]),
        y_bar,
        Seen::new(mask, None),
    );
    [q_bar, k_bar, v_bar]
}

/// The pushforward of [`attention`](Tensor::attention): ẏ for the operands'
/// tangents (q̇, k̇, v̇).
///
/// # Panics
/// As the attention, and when a tangent's shape differs from the queries'.
#[track_caller]
pub fn attention_push<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    [queries, keys, values]: [&Rows<T, R, D, K>; 3],
    [q_dot, k_dot, v_dot]: [&Rows<T, R, D, K>; 3],
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)>,
{
    push::<T, R, R, D, H, L, L, K>(
        "attention_push",
        (queries, [keys, values]),
        (q_dot, [k_dot, v_dot]),
        Seen::new(mask, None),
    )
}

/// The pullback of [`cross_attention`](Tensor::cross_attention) — and of
/// [`padded_attention`](Tensor::padded_attention), with the keys' rows the
/// queries' and LK = LQ: (q̄, [k̄, v̄]) for the output's cotangent ȳ.
///
/// # Panics
/// As the attention, and when ȳ's shape differs from the queries'.
#[track_caller]
pub fn cross_attention_pullback<
    T,
    R,
    RK,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    operands: (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    y_bar: &Rows<T, R, D, K>,
    (_, _, _, mask, lengths): (Heads<H>, Tokens<LQ>, Tokens<LK>, Mask, Option<&[usize]>),
) -> (Rows<T, R, D, K>, [KeyRows<T, RK, D, K>; 2])
where
    T: RealScalar,
    R: Dim,
    RK: Dim,
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    pullback::<T, R, RK, D, H, LQ, LK, K>(
        "cross_attention_pullback",
        operands,
        y_bar,
        Seen::new(mask, lengths),
    )
}

/// The pushforward of [`cross_attention`](Tensor::cross_attention) (and of
/// [`padded_attention`](Tensor::padded_attention), as for the pullback): ẏ for the
/// operands' tangents.
///
/// # Panics
/// As the attention, and when a tangent's shape differs from its operand's.
#[track_caller]
pub fn cross_attention_push<T, R, RK, const D: usize, const H: usize, const LQ: usize, const LK: usize, K>(
    operands: (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    tangents: (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    (_, _, _, mask, lengths): (Heads<H>, Tokens<LQ>, Tokens<LK>, Mask, Option<&[usize]>),
) -> Rows<T, R, D, K>
where
    T: RealScalar,
    R: Dim,
    RK: Dim,
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    push::<T, R, RK, D, H, LQ, LK, K>("cross_attention_push", operands, tangents, Seen::new(mask, lengths))
}

/// (q̄, [k̄, v̄]) of any of the attentions for the output's cotangent ȳ.
#[track_caller]
pub(crate) fn pullback<
    T: RealScalar,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    operation: &'static str,
    (queries, [keys, values]): (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    y_bar: &Rows<T, R, D, K>,
    seen: Seen<'_>,
) -> (Rows<T, R, D, K>, [KeyRows<T, RK, D, K>; 2])
where
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    let operands = [queries.dims(), keys.dims(), values.dims()];
    let sequences = check_derivative::<D, H, LQ, LK>(operation, operands, seen, [&[y_bar.dims()], &[]]);
    let mut q_bar = Tensor::zeros_shaped(queries.shape());
    let mut key_bars = [(); 2].map(|()| Tensor::zeros_shaped(keys.shape()));
    let [k_bar, v_bar] = &mut key_bars;
    Geometry::<D, H, LQ, LK>::pullback(
        (queries.as_slice(), [keys.as_slice(), values.as_slice()]),
        y_bar.as_slice(),
        (sequences, seen),
        [q_bar.as_mut_slice(), k_bar.as_mut_slice(), v_bar.as_mut_slice()],
    );
    (q_bar, key_bars)
}

/// ẏ of any of the attentions for the operands' tangents.
#[track_caller]
pub(crate) fn push<
    T: RealScalar,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    operation: &'static str,
    (queries, [keys, values]): (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    (q_dot, [k_dot, v_dot]): (&Rows<T, R, D, K>, [&KeyRows<T, RK, D, K>; 2]),
    seen: Seen<'_>,
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    let operands = [queries.dims(), keys.dims(), values.dims()];
    let sequences = check_derivative::<D, H, LQ, LK>(
        operation,
        operands,
        seen,
        [&[q_dot.dims()], &[k_dot.dims(), v_dot.dims()]],
    );
    let mut out = Tensor::zeros_shaped(queries.shape());
    Geometry::<D, H, LQ, LK>::push(
        (queries.as_slice(), [keys.as_slice(), values.as_slice()]),
        (q_dot.as_slice(), [k_dot.as_slice(), v_dot.as_slice()]),
        (sequences, seen),
        out.as_mut_slice(),
    );
    out
}

/// `attention`'s derivative for static mode's reverse sweep.
#[allow(clippy::type_complexity)]
fn attention_vjp<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    queries: &Rows<T, R, D, K>,
    keys: &Rows<T, R, D, K>,
    values: &Rows<T, R, D, K>,
    heads: Heads<H>,
    tokens: Tokens<L>,
    mask: Mask,
    y_bar: Rows<T, R, D, K>,
) -> (Rows<T, R, D, K>, Rows<T, R, D, K>, Rows<T, R, D, K>)
where
    K: Storage<T, (R, Const<D>)>,
{
    let [q_bar, k_bar, v_bar] = attention_pullback([queries, keys, values], &y_bar, (heads, tokens, mask));
    (q_bar, k_bar, v_bar)
}

/// `attention`'s derivative for static mode's forward mode.
#[allow(clippy::too_many_arguments)]
fn attention_jvp<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    queries: &Rows<T, R, D, K>,
    keys: &Rows<T, R, D, K>,
    values: &Rows<T, R, D, K>,
    heads: Heads<H>,
    tokens: Tokens<L>,
    mask: Mask,
    q_dot: &Rows<T, R, D, K>,
    k_dot: &Rows<T, R, D, K>,
    v_dot: &Rows<T, R, D, K>,
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)>,
{
    attention_push([queries, keys, values], [q_dot, k_dot, v_dot], (heads, tokens, mask))
}

/// `padded_attention`'s derivative for static mode's reverse sweep: the
/// cross-attention's, of the same rows.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn padded_attention_vjp<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    queries: &Rows<T, R, D, K>,
    keys: &Rows<T, R, D, K>,
    values: &Rows<T, R, D, K>,
    heads: Heads<H>,
    tokens: Tokens<L>,
    mask: Mask,
    lengths: &[usize],
    y_bar: Rows<T, R, D, K>,
) -> (Rows<T, R, D, K>, Rows<T, R, D, K>, Rows<T, R, D, K>)
where
    K: Storage<T, (R, Const<D>)>,
{
    cross_attention_vjp(queries, keys, values, heads, tokens, tokens, mask, Some(lengths), y_bar)
}

/// `padded_attention`'s derivative for static mode's forward mode: the
/// cross-attention's, of the same rows.
#[allow(clippy::too_many_arguments)]
fn padded_attention_jvp<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    queries: &Rows<T, R, D, K>,
    keys: &Rows<T, R, D, K>,
    values: &Rows<T, R, D, K>,
    heads: Heads<H>,
    tokens: Tokens<L>,
    mask: Mask,
    lengths: &[usize],
    q_dot: &Rows<T, R, D, K>,
    k_dot: &Rows<T, R, D, K>,
    v_dot: &Rows<T, R, D, K>,
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)>,
{
    cross_attention_jvp(
        queries,
        keys,
        values,
        heads,
        tokens,
        tokens,
        mask,
        Some(lengths),
        q_dot,
        k_dot,
        v_dot,
    )
}

/// `cross_attention`'s derivative for static mode's reverse sweep.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn cross_attention_vjp<
    T: RealScalar,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    queries: &Rows<T, R, D, K>,
    keys: &KeyRows<T, RK, D, K>,
    values: &KeyRows<T, RK, D, K>,
    heads: Heads<H>,
    query_tokens: Tokens<LQ>,
    key_tokens: Tokens<LK>,
    mask: Mask,
    lengths: Option<&[usize]>,
    y_bar: Rows<T, R, D, K>,
) -> (Rows<T, R, D, K>, KeyRows<T, RK, D, K>, KeyRows<T, RK, D, K>)
where
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    let arguments = (heads, query_tokens, key_tokens, mask, lengths);
    let (q_bar, [k_bar, v_bar]) = cross_attention_pullback((queries, [keys, values]), &y_bar, arguments);
    (q_bar, k_bar, v_bar)
}

/// `cross_attention`'s derivative for static mode's forward mode.
#[allow(clippy::too_many_arguments)]
fn cross_attention_jvp<
    T: RealScalar,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
    K,
>(
    queries: &Rows<T, R, D, K>,
    keys: &KeyRows<T, RK, D, K>,
    values: &KeyRows<T, RK, D, K>,
    heads: Heads<H>,
    query_tokens: Tokens<LQ>,
    key_tokens: Tokens<LK>,
    mask: Mask,
    lengths: Option<&[usize]>,
    q_dot: &Rows<T, R, D, K>,
    k_dot: &KeyRows<T, RK, D, K>,
    v_dot: &KeyRows<T, RK, D, K>,
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)> + Storage<T, (RK, Const<D>)>,
{
    let arguments = (heads, query_tokens, key_tokens, mask, lengths);
    cross_attention_push((queries, [keys, values]), (q_dot, [k_dot, v_dot]), arguments)
}

/// The sizes of one attention: sequences of LQ query rows and LK key rows of D values
/// each, H heads of D/H.
struct Geometry<const D: usize, const H: usize, const LQ: usize, const LK: usize>;

/// The queries' rows and the keys' and values' rows, as slices.
type Operands<'a, T> = (&'a [T], [&'a [T]; 2]);

impl<const D: usize, const H: usize, const LQ: usize, const LK: usize> Geometry<D, H, LQ, LK> {
    /// The values of one head (H dividing D is checked where an attention starts).
    const WIDTH: usize = D / H;

    /// Head h of token t in rows starting at a sequence's first.
    fn head<T>(rows: &[T], t: usize, h: usize) -> &[T] {
        &rows[t * D + h * Self::WIDTH..][..Self::WIDTH]
    }

    /// Head h of token t in rows starting at a sequence's first, to write.
    fn head_mut<T>(rows: &mut [T], t: usize, h: usize) -> &mut [T] {
        &mut rows[t * D + h * Self::WIDTH..][..Self::WIDTH]
    }

    /// 1/√d.
    fn scale<T: RealScalar>() -> T {
        T::one() / T::from_f64(Self::WIDTH as f64).sqrt()
    }

    /// `visit(at, h, t, count)` for every head h of every query t of `sequences`:
    /// `at` is the offsets of the sequence's first query and first key, `count` the
    /// keys t sees.
    fn each_query(
        sequences: usize,
        seen: Seen<'_>,
        mut visit: impl FnMut((usize, usize), usize, usize, usize),
    ) {
        for n in 0..sequences {
            let at = (n * LQ * D, n * LK * D);
            for h in 0..H {
                for t in 0..LQ {
                    visit(at, h, t, seen.count(n, t, LK));
                }
            }
        }
    }

    /// The attention's loops: `out` (zeros) += Σ_u p_tu·v_u per head and query.
    fn attend<T: RealScalar>(
        (queries, [keys, values]): Operands<'_, T>,
        sequences: usize,
        seen: Seen<'_>,
        out: &mut [T],
    ) {
        Self::each_query(sequences, seen, |(at, key_at), h, t, count| {
            let p = Self::probabilities(&queries[at..], &keys[key_at..], t, h, count);
            let o = Self::head_mut(&mut out[at..], t, h);
            for (u, &p) in p[..count].iter().enumerate() {
                add_scaled(o, p, Self::head(&values[key_at..], u, h));
            }
        });
    }

    /// The pullback's loops: (q̄, k̄, v̄) (zeros) += the cotangents for ȳ.
    fn pullback<T: RealScalar>(
        (queries, [keys, values]): Operands<'_, T>,
        y_bar: &[T],
        (sequences, seen): (usize, Seen<'_>),
        [q_bar, k_bar, v_bar]: [&mut [T]; 3],
    ) {
        let scale = Self::scale::<T>();
        Self::each_query(sequences, seen, |(at, key_at), h, t, count| {
            let (q, k, v) = (&queries[at..], &keys[key_at..], &values[key_at..]);
            let p = Self::probabilities(q, k, t, h, count);
            let o_bar = Self::head(&y_bar[at..], t, h);
            // V̄_u += p_tu·ō_t and P̄_tu = ō_t·v_u.
            for (u, &p) in p[..count].iter().enumerate() {
                add_scaled(Self::head_mut(&mut v_bar[key_at..], u, h), p, o_bar);
            }
            let mut p_bar = [T::zero(); LK];
            Self::dots(o_bar, v, h, &mut p_bar[..count]);
            let centre = dot(&p[..count], &p_bar[..count]);
            // S̄_tu/√d, into Q̄_t += Σ_u S̄_tu·k_u/√d and K̄_u += S̄_tu·q_t/√d.
            for u in 0..count {
                let s_bar = p[u] * (p_bar[u] - centre) * scale;
                add_scaled(Self::head_mut(&mut q_bar[at..], t, h), s_bar, Self::head(k, u, h));
                add_scaled(Self::head_mut(&mut k_bar[key_at..], u, h), s_bar, Self::head(q, t, h));
            }
        });
    }

    /// The pushforward's loops: `out` (zeros) += ȯ_t = Σ_u ṗ_tu·v_u + p_tu·v̇_u.
    fn push<T: RealScalar>(
        (queries, [keys, values]): Operands<'_, T>,
        (q_dot, [k_dot, v_dot]): Operands<'_, T>,
        (sequences, seen): (usize, Seen<'_>),
        out: &mut [T],
    ) {
        let scale = Self::scale::<T>();
        Self::each_query(sequences, seen, |(at, key_at), h, t, count| {
            let (q, k, v) = (&queries[at..], &keys[key_at..], &values[key_at..]);
            let p = Self::probabilities(q, k, t, h, count);
            let (query, query_dot) = (Self::head(q, t, h), Self::head(&q_dot[at..], t, h));
            // Ṡ_tu = (q̇_t·k_u + q_t·k̇_u)/√d.
            let (mut s_dot, mut through_keys) = ([T::zero(); LK], [T::zero(); LK]);
            Self::dots(query_dot, k, h, &mut s_dot[..count]);
            Self::dots(query, &k_dot[key_at..], h, &mut through_keys[..count]);
            for (s_dot, &through_keys) in s_dot[..count].iter_mut().zip(&through_keys) {
                *s_dot = (*s_dot + through_keys) * scale;
            }
            let centre = dot(&p[..count], &s_dot[..count]);
            let o_dot = Self::head_mut(&mut out[at..], t, h);
            for u in 0..count {
                add_scaled(o_dot, p[u] * (s_dot[u] - centre), Self::head(v, u, h));
                add_scaled(o_dot, p[u], Self::head(&v_dot[key_at..], u, h));
            }
        });
    }

    /// `out[u] = a·(head h of row u)` for every u < `out.len()`, four rows at a time:
    /// each sum is added in order (the numbers [`dot`] gives), and the four run as
    /// independent chains of additions.
    fn dots<T: RealScalar>(a: &[T], rows: &[T], h: usize, out: &mut [T]) {
        let count = out.len();
        let mut blocks = out.chunks_exact_mut(4);
        for (block, first) in (&mut blocks).zip((0..).step_by(4)) {
            let heads: [&[T]; 4] = core::array::from_fn(|j| &Self::head(rows, first + j, h)[..a.len()]);
            let mut sums = [T::zero(); 4];
            for (i, &a) in a.iter().enumerate() {
                for (sum, head) in sums.iter_mut().zip(heads) {
                    *sum += a * head[i];
                }
            }
            block.copy_from_slice(&sums);
        }
        let remainder = blocks.into_remainder();
        let done = count - remainder.len();
        for (u, o) in remainder.iter_mut().enumerate() {
            *o = dot(a, Self::head(rows, done + u, h));
        }
    }

    /// Query t's probabilities over the first `count` keys in head h (the rest 0):
    /// the softmax of q_t·k_u/√d, shifted by the largest score.
    fn probabilities<T: RealScalar>(queries: &[T], keys: &[T], t: usize, h: usize, count: usize) -> [T; LK] {
        let (query, scale) = (Self::head(queries, t, h), Self::scale::<T>());
        let mut p = [T::zero(); LK];
        let scores = &mut p[..count];
        Self::dots(query, keys, h, scores);
        scores.iter_mut().for_each(|score| *score *= scale);
        let total = exponentiate_shifted(scores, contiguous_max(scores));
        scores.iter_mut().for_each(|p| *p /= total);
        p
    }
}

/// a·b.
fn dot<T: RealScalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |total, (&a, &b)| total + a * b)
}

/// y += a·x. Not inlined: called from the closures of the attention's loops, where
/// the compiler no longer knows that `y` and `x` do not overlap, its loop ran a load,
/// a multiply, an add and a store per element; as a function of its own it runs
/// whole vectors (the attention's gradient 385 → 262 µs in `attention/primitive`).
#[inline(never)]
fn add_scaled<T: RealScalar>(y: &mut [T], a: T, x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
}
