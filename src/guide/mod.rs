//! Guides, one per topic, with examples that run as tests. They only hold
//! documentation: the API lives in [`crate::autodiff`], [`crate::tensor`] and the
//! other modules.
//!
//! | guide | for |
//! | --- | --- |
//! | [`from_pytorch_and_jax`] | the names of PyTorch's and JAX's operations here, and what is not here |
//! | [`static_mode`] | `#[differentiable]`: one ordinary function, every mode, compiled, no heap |
//! | [`reverse_mode`] | gradients of a scalar loss: `grad`, `value_and_grad`, models, the tape |
//! | [`models`] | layers, losses, optimisers, parameter files |
//! | [`forward_mode`] | Jacobian-vector products and Jacobians with dual numbers, no heap |
//! | [`higher_order`] | Hessians and Hessian-vector products |
//! | [`custom_rules`] | a new primitive with its own derivative, mode by mode |
//! | [`complex_numbers`] | what a gradient of a complex input means |
//! | [`no_std`] | what works without the standard library or an allocator |
//! | [`performance`] | what costs what: modes, storage, element types, threads |
//! | [`gpu`] | `Cuda` tensors: moving data, kernels, training on the GPU |

pub mod complex_numbers;
pub mod custom_rules;
pub mod forward_mode;
pub mod from_pytorch_and_jax;
pub mod gpu;
pub mod higher_order;
pub mod models;
pub mod no_std;
pub mod performance;
pub mod reverse_mode;
pub mod static_mode;
