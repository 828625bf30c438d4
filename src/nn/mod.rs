//! Building blocks for models. So far: the [`loss`] functions, with `argmax` and
//! accuracy. They are compositions of traced operations, so every rule they use is
//! the primitives' own, checked one by one.

pub mod loss;
