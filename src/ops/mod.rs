//! Primitive operations other than products: elementwise maps and arithmetic,
//! reductions, normalisations along an axis, and layout changes.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod elementwise;
pub mod layout;
pub mod reduce;
pub mod softmax;
