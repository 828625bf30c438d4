//! Primitive operations other than products: elementwise maps and arithmetic, named
//! elementwise functions (softplus, SiLU, leaky ReLU, clamp, maximum, minimum),
//! reductions, normalisations along an axis, row-wise operations on batches, image
//! operations (convolution, pooling), and layout changes.

pub mod attention;
pub mod conv;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod elementwise;
pub mod functions;
pub mod layout;
pub mod linalg;
pub mod pool;
pub mod reduce;
pub mod rows;
pub mod softmax;
