//! Seeded initialisers for weights of fan-in I and fan-out O:
//!
//! | [`Init`] | distribution |
//! | --- | --- |
//! | `KaimingNormal` | N(0, σ²), σ = √(2/I) (He et al., for ReLU nets) |
//! | `KaimingUniform` | U(−a, a), a = √(6/I) |
//! | `XavierNormal` | N(0, σ²), σ = √(2/(I + O)) (Glorot and Bengio, for tanh and sigmoid) |
//! | `XavierUniform` | U(−a, a), a = √(6/(I + O)) |
//!
//! `Linear::init`, `Conv2d::init` and `Embedding::init` take one, with PyTorch's
//! fans: I and O for a linear layer, C·KH·KW and O·KH·KW for a convolution, D and V
//! for an embedding table; biases start at zero.
//!
//! ```
//! use fluxion::nn::init::Init;
//! use fluxion::nn::layer::Linear;
//!
//! let layer: Linear<f32, 64, 32> = Linear::init(Init::KaimingNormal, 7);
//! assert!(layer.bias.iter().all(|&b| b == 0.0));
//! ```

use crate::scalar::RealScalar;
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

/// A seeded weight initialisation (see the module docs for the distributions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// N(0, 2/I).
    KaimingNormal,
    /// U(±√(6/I)).
    KaimingUniform,
    /// N(0, 2/(I + O)).
    XavierNormal,
    /// U(±√(6/(I + O))).
    XavierUniform,
}

/// An independent seed for the `stream`-th tensor of a layer seeded with `seed`
/// (splitmix64 of both), so that layers seeded 1, 2, … share no stream.
pub fn sub_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Init {
    /// A tensor of `shape` for weights of fan-in `fan_in` and fan-out `fan_out`, drawn
    /// from a generator seeded with `seed`.
    ///
    /// # Panics
    /// When `fan_in` is 0.
    pub fn tensor<T: RealScalar, S: Shape, K: Storage<T, S>>(
        self,
        shape: S,
        fan_in: usize,
        fan_out: usize,
        seed: u64,
    ) -> Tensor<T, S, K> {
        assert!(fan_in > 0, "Init::tensor: a layer needs at least one input (fan-in 0)");
        let (fan_in, fan_sum) = (fan_in as f64, (fan_in + fan_out) as f64);
        let normal = |variance: f64| {
            Tensor::random_normal_shaped(shape, T::zero(), T::from_f64(variance.sqrt()), seed)
        };
        let uniform = |bound: f64| {
            let bound = T::from_f64(bound.sqrt());
            Tensor::random_uniform_shaped(shape, -bound, bound, seed)
        };
        match self {
            Init::KaimingNormal => normal(2.0 / fan_in),
            Init::KaimingUniform => uniform(6.0 / fan_in),
            Init::XavierNormal => normal(2.0 / fan_sum),
            Init::XavierUniform => uniform(6.0 / fan_sum),
        }
    }
}
