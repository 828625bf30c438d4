use fluxion::nn::layer::{BiasKind, Linear, WithBias};
use fluxion::prelude::*;

#[derive(Clone, Differentiable)]
#[storage_kind(K)] // the struct's storage kind is `S`
struct Encoder<S>
where
    S: StorageKind<f32, (Const<4>, Const<4>)> + StorageKind<f32, (Const<4>,)>,
    WithBias: BiasKind<f32, 4, S>,
{
    embed: Linear<f32, 4, 4, S>,
}

fn main() {}
