//! Building blocks for models (the common names in one import:
//! `use fluxion::nn::prelude::*`):
//!
//! - [`layer`]: layers with typed shapes and their composition (`Sequential`), one
//!   forward definition for inference and for the tape;
//! - [`optim`]: optimisers over tangents, gradient clipping and learning-rate
//!   schedules (also without std or a heap);
//! - [`loss`]: losses from logits, `argmax` and accuracy (reverse mode, `std`), and
//!   [`per_example`] losses for static mode (also without std or a heap);
//! - [`init`]: seeded Kaiming and Xavier initialisers (`std`);
//! - [`params`]: every parameter of a model with its name (`std`), and `io` on it:
//!   parameter files in the safetensors format (feature `safetensors`).
//!
//! Losses and layers are compositions of traced operations, so every rule they use
//! is the primitives' own, checked one by one.

#[cfg(feature = "std")]
pub mod init;
#[cfg(feature = "safetensors")]
pub mod io;
pub mod layer;
#[cfg(feature = "std")]
pub mod loss;
pub mod optim;
#[cfg(feature = "std")]
pub mod params;
pub mod per_example;
pub mod prelude;
mod static_module;
