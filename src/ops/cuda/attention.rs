//! Multi-head attention on GPU rows of tokens under the host's name
//! ([`crate::ops::attention`]), with the same checks, and its derivatives: kernels
//! of their own, one thread per query (and per key for k̄ and v̄), each sum in the
//! host's order ([`crate::backend::cuda`]).

use super::OnDevice;
use crate::backend::cuda::{
    AttentionGeometry, CudaElement, attention as attention_kernel, attention_pullback as pullback_kernel,
    attention_push as push_kernel, or_panic_cuda,
};
use crate::error::{ShapeError, or_panic};
use crate::ops::attention::{Heads, Mask, Tokens, check_attention, check_derivative};
use crate::shape::constraint::SplitsIntoHeads;
use crate::shape::{Const, Dim};

/// Rows of tokens on the GPU, D values each.
type Rows<T, R, const D: usize> = OnDevice<T, (R, Const<D>)>;

/// The geometry of an attention over `rows` rows of D values in H heads and
/// sequences of L tokens (L dividing the rows was checked).
fn geometry<const D: usize, const H: usize, const L: usize>(rows: usize, mask: Mask) -> AttentionGeometry {
    let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
    AttentionGeometry { sequences: rows / L, tokens: L, width: D, heads: H, causal: mask == Mask::Causal }
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
        check_attention::<L>([self, keys, values].map(|rows| rows.dims()))?;
        let geometry = geometry::<D, H, L>(self.shape().0.size(), mask);
        let operands = [self, keys, values].map(|rows| rows.slice());
        Ok(OnDevice::new(self.shape(), |y| attention_kernel(operands, y, geometry)))
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
}

/// The pullback of the attention on the GPU: (q̄, k̄, v̄) for the output's cotangent
/// ȳ (the host's [`attention_pullback`](crate::ops::attention::attention_pullback)).
///
/// # Panics
/// When the operands' shapes differ from each other or from ȳ's, or the rows are not
/// whole sequences of L tokens.
#[track_caller]
pub fn attention_pullback<T: CudaElement, R: Dim, const D: usize, const H: usize, const L: usize>(
    operands: [&Rows<T, R, D>; 3],
    y_bar: &Rows<T, R, D>,
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> [Rows<T, R, D>; 3] {
    let shape = y_bar.shape();
    check_derivative::<D, H, L>("attention_pullback", operands.map(|rows| rows.dims()), &[y_bar.dims()]);
    let geometry = geometry::<D, H, L>(shape.0.size(), mask);
    let mut bars = [(); 3].map(|()| OnDevice::device_zeros(shape));
    let [q_bar, k_bar, v_bar] = &mut bars;
    let operands = operands.map(|rows| rows.slice());
    or_panic_cuda(pullback_kernel(
        operands,
        y_bar.slice(),
        [q_bar.slice_mut(), k_bar.slice_mut(), v_bar.slice_mut()],
        geometry,
    ));
    bars
}

/// The pushforward of the attention on the GPU: ẏ for the operands' tangents.
///
/// # Panics
/// As [`attention_pullback`].
#[track_caller]
pub fn attention_push<T: CudaElement, R: Dim, const D: usize, const H: usize, const L: usize>(
    operands: [&Rows<T, R, D>; 3],
    tangents: [&Rows<T, R, D>; 3],
    (_, _, mask): (Heads<H>, Tokens<L>, Mask),
) -> Rows<T, R, D> {
    check_derivative::<D, H, L>(
        "attention_push",
        operands.map(|rows| rows.dims()),
        &tangents.map(|rows| rows.dims()),
    );
    let geometry = geometry::<D, H, L>(operands[0].shape().0.size(), mask);
    let (operands_slices, tangent_slices) =
        (operands.map(|rows| rows.slice()), tangents.map(|rows| rows.slice()));
    OnDevice::new(operands[0].shape(), |y_dot| push_kernel(operands_slices, tangent_slices, y_dot, geometry))
}
