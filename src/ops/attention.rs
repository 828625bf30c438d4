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
//!
//! Derivatives, per sequence and head, with P the probabilities (rows t):
//! - reverse: V̄ = PᵀŌ, P̄ = ŌVᵀ, S̄ = P ⊙ (P̄ − rowsum(P ⊙ P̄)), Q̄ = S̄K/√d,
//!   K̄ = S̄ᵀQ/√d;
//! - forward: Ṡ = (Q̇Kᵀ + QK̇ᵀ)/√d, Ṗ = P ⊙ (Ṡ − rowsum(P ⊙ Ṡ)), Ȯ = ṖV + PV̇.
//!
//! A masked pair has p = 0 and carries nothing. The probabilities are recomputed one
//! query at a time (two arrays of L elements on the stack) in the value and in each
//! derivative: no L×L matrix is kept, and nothing is allocated beyond the results.
//! For sequences of many thousands of tokens (or of nested duals), give the thread a
//! larger stack.

use crate::error::{ShapeError, or_panic};
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

impl Mask {
    /// How many tokens token `t` of a sequence of `tokens` sees: the first ones.
    fn seen(self, t: usize, tokens: usize) -> usize {
        match self {
            Mask::Full => tokens,
            Mask::Causal => t + 1,
        }
    }
}

// The companions that `#[differentiable]` generates take the six arguments and more.
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
        check_attention::<L>([self, keys, values].map(|rows| rows.dims()))?;
        let mut out = Tensor::zeros_shaped(self.shape());
        Geometry::<D, H, L>::attend([self, keys, values].map(Tensor::as_slice), mask, out.as_mut_slice());
        Ok(out)
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
}

/// Checks the queries', keys' and values' shapes: the same rows, whole sequences of
/// L ≥ 1 tokens. (H dividing the width is checked when the program is built.)
pub(crate) fn check_attention<const L: usize>([queries, keys, values]: [Dims; 3]) -> Result<(), ShapeError> {
    for other in [keys, values] {
        if other != queries {
            return Err(ShapeError::new(
                "attention",
                queries,
                other,
                "queries, keys and values must have the same shape",
            ));
        }
    }
    if L == 0 || !queries.as_slice()[0].is_multiple_of(L) {
        return Err(ShapeError::new(
            "attention",
            queries,
            Dims::new(&[L]),
            "the row count must be a whole number of sequences: a multiple of the token count, which must be at least 1",
        ));
    }
    Ok(())
}

/// Checks a derivative's operands as the attention does, and that each of `others`
/// (the cotangent, or the tangents) has the queries' shape; H dividing D when the
/// program is built.
#[track_caller]
pub(crate) fn check_derivative<const D: usize, const H: usize, const L: usize>(
    operation: &'static str,
    operands: [Dims; 3],
    others: &[Dims],
) {
    let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
    or_panic(check_attention::<L>(operands));
    for &other in others {
        if other != operands[0] {
            or_panic(Err(ShapeError::new(
                operation,
                operands[0],
                other,
                "a cotangent or tangent must have the queries' shape",
            )))
        }
    }
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
    check_derivative::<D, H, L>(
        "attention_pullback",
        [queries, keys, values].map(|x| x.dims()),
        &[y_bar.dims()],
    );
    let mut bars = [(); 3].map(|()| Tensor::zeros_shaped(queries.shape()));
    let [q_bar, k_bar, v_bar] = &mut bars;
    Geometry::<D, H, L>::pullback(
        [queries, keys, values].map(Tensor::as_slice),
        y_bar.as_slice(),
        mask,
        [q_bar.as_mut_slice(), k_bar.as_mut_slice(), v_bar.as_mut_slice()],
    );
    bars
}

/// The pushforward of [`attention`](Tensor::attention): ẏ for the operands'
/// tangents (q̇, k̇, v̇).
///
/// # Panics
/// As the attention, and when a tangent's shape differs from the queries'.
#[track_caller]
pub fn attention_push<T: RealScalar, R: Dim, const D: usize, const H: usize, const L: usize, K>(
    operands: [&Rows<T, R, D, K>; 3],
    tangents: [&Rows<T, R, D, K>; 3],
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> Rows<T, R, D, K>
where
    K: Storage<T, (R, Const<D>)>,
{
    check_derivative::<D, H, L>("attention_push", operands.map(|x| x.dims()), &tangents.map(|x| x.dims()));
    let mut out = Tensor::zeros_shaped(operands[0].shape());
    Geometry::<D, H, L>::push(
        operands.map(Tensor::as_slice),
        tangents.map(Tensor::as_slice),
        mask,
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

/// The sizes of one attention: sequences of L rows of D values, H heads of D/H.
struct Geometry<const D: usize, const H: usize, const L: usize>;

impl<const D: usize, const H: usize, const L: usize> Geometry<D, H, L> {
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

    /// `visit(at, h, t, seen)` for every head h of every token t of the sequences in
    /// `len` values: `at` is the offset of the sequence's first value and `seen` the
    /// tokens t attends to.
    fn each_query(len: usize, mask: Mask, mut visit: impl FnMut(usize, usize, usize, usize)) {
        let sequence = L * D;
        for at in (0..len / sequence.max(1)).map(|n| n * sequence) {
            for h in 0..H {
                for t in 0..L {
                    visit(at, h, t, mask.seen(t, L));
                }
            }
        }
    }

    /// The attention's loops: `out` (zeros) += Σ_u p_tu·v_u per head and token.
    fn attend<T: RealScalar>([queries, keys, values]: [&[T]; 3], mask: Mask, out: &mut [T]) {
        Self::each_query(out.len(), mask, |at, h, t, seen| {
            let p = Self::probabilities(&queries[at..], &keys[at..], t, h, seen);
            let o = Self::head_mut(&mut out[at..], t, h);
            for (u, &p) in p[..seen].iter().enumerate() {
                add_scaled(o, p, Self::head(&values[at..], u, h));
            }
        });
    }

    /// The pullback's loops: (q̄, k̄, v̄) (zeros) += the cotangents for ȳ.
    fn pullback<T: RealScalar>(
        [queries, keys, values]: [&[T]; 3],
        y_bar: &[T],
        mask: Mask,
        [q_bar, k_bar, v_bar]: [&mut [T]; 3],
    ) {
        let scale = Self::scale::<T>();
        Self::each_query(y_bar.len(), mask, |at, h, t, seen| {
            let (q, k, v) = (&queries[at..], &keys[at..], &values[at..]);
            let p = Self::probabilities(q, k, t, h, seen);
            let o_bar = Self::head(&y_bar[at..], t, h);
            // V̄_u += p_tu·ō_t and P̄_tu = ō_t·v_u.
            let mut p_bar = [T::zero(); L];
            for u in 0..seen {
                add_scaled(Self::head_mut(&mut v_bar[at..], u, h), p[u], o_bar);
                p_bar[u] = dot(o_bar, Self::head(v, u, h));
            }
            let centre = dot(&p[..seen], &p_bar[..seen]);
            // S̄_tu/√d, into Q̄_t += Σ_u S̄_tu·k_u/√d and K̄_u += S̄_tu·q_t/√d.
            for u in 0..seen {
                let s_bar = p[u] * (p_bar[u] - centre) * scale;
                add_scaled(Self::head_mut(&mut q_bar[at..], t, h), s_bar, Self::head(k, u, h));
                add_scaled(Self::head_mut(&mut k_bar[at..], u, h), s_bar, Self::head(q, t, h));
            }
        });
    }

    /// The pushforward's loops: `out` (zeros) += ȯ_t = Σ_u ṗ_tu·v_u + p_tu·v̇_u.
    fn push<T: RealScalar>(
        [queries, keys, values]: [&[T]; 3],
        [q_dot, k_dot, v_dot]: [&[T]; 3],
        mask: Mask,
        out: &mut [T],
    ) {
        let scale = Self::scale::<T>();
        Self::each_query(out.len(), mask, |at, h, t, seen| {
            let (q, k, v) = (&queries[at..], &keys[at..], &values[at..]);
            let p = Self::probabilities(q, k, t, h, seen);
            let (query, query_dot) = (Self::head(q, t, h), Self::head(&q_dot[at..], t, h));
            // Ṡ_tu = (q̇_t·k_u + q_t·k̇_u)/√d.
            let mut s_dot = [T::zero(); L];
            for (u, s_dot) in s_dot[..seen].iter_mut().enumerate() {
                let (key, key_dot) = (Self::head(k, u, h), Self::head(&k_dot[at..], u, h));
                *s_dot = (dot(query_dot, key) + dot(query, key_dot)) * scale;
            }
            let centre = dot(&p[..seen], &s_dot[..seen]);
            let o_dot = Self::head_mut(&mut out[at..], t, h);
            for u in 0..seen {
                add_scaled(o_dot, p[u] * (s_dot[u] - centre), Self::head(v, u, h));
                add_scaled(o_dot, p[u], Self::head(&v_dot[at..], u, h));
            }
        });
    }

    /// Token t's probabilities over the first `seen` tokens in head h (the rest 0):
    /// the softmax of q_t·k_u/√d, shifted by the largest score.
    fn probabilities<T: RealScalar>(queries: &[T], keys: &[T], t: usize, h: usize, seen: usize) -> [T; L] {
        let (query, scale) = (Self::head(queries, t, h), Self::scale::<T>());
        let mut p = [T::zero(); L];
        let scores = &mut p[..seen];
        for (u, score) in scores.iter_mut().enumerate() {
            *score = dot(query, Self::head(keys, u, h)) * scale;
        }
        let largest = scores.iter().fold(T::neg_infinity(), |m, &s| m.max(s));
        let mut total = T::zero();
        for score in scores.iter_mut() {
            *score = (*score - largest).exp();
            total += *score;
        }
        scores.iter_mut().for_each(|p| *p /= total);
        p
    }
}

/// a·b.
fn dot<T: RealScalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |total, (&a, &b)| total + a * b)
}

/// y += a·x.
fn add_scaled<T: RealScalar>(y: &mut [T], a: T, x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
}
