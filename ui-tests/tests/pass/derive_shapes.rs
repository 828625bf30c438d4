//! Derived `Differentiable` for generic, nested and tuple structs, with a skipped field.
use fluxion::autodiff::grad;
use fluxion::prelude::*;

#[derive(Differentiable, Clone)]
pub struct Dense<const I: usize, const O: usize> {
    pub weight: Matrix<f64, O, I>,
    pub bias: Vector<f64, O>,
    #[no_derivative]
    pub name: String,
}

#[derive(Differentiable, Clone)]
struct Net {
    first: Dense<3, 2>,
    scale: f64,
}

#[derive(Differentiable, Clone)]
struct Pair(f64, #[no_derivative] u8, Complex64);

fn main() {
    let net = Net {
        first: Dense { weight: Matrix::ones(), bias: Vector::zeros(), name: "first".into() },
        scale: 2.0,
    };
    let gradient: NetTangent = grad(|n: NetTraced| &n.first.bias.sum() * &n.scale, &net);
    assert_eq!(gradient.first.bias.to_array(), [2.0, 2.0]);
    assert_eq!(gradient.scale, 0.0);
    assert_eq!(net.first.name, "first");

    let pair = Pair(1.5, 7, Complex64::new(3.0, 4.0));
    let gradient: PairTangent = grad(|p: PairTraced| &p.0 * &p.2.norm_sqr(), &pair);
    assert_eq!(gradient.0, 25.0);
    assert_eq!(gradient.1, Complex64::new(9.0, 12.0));
    assert_eq!(pair.1, 7);
}
