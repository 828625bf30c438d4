//! Building blocks for models: the [`loss`] functions with `argmax` and accuracy
//! (reverse mode, `std`), and the [`optim`]isers over tangents (also without std or
//! a heap). Losses are compositions of traced operations, so every rule they use is
//! the primitives' own, checked one by one.

#[cfg(feature = "std")]
#[cfg(feature = "std")]
pub mod init;
pub mod layer;
#[cfg(feature = "std")]
pub mod loss;
pub mod optim;
