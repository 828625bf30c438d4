//! Losses of one example, written for static mode: call them from a
//! `#[differentiable]` function and they are differentiated with it, with no tape, no
//! heap and no std (a fixed-size net's training step on a controller). For batches
//! on the tape, see [`loss`](crate::nn::loss) (with `std`).
//!
//! | loss | value |
//! | --- | --- |
//! | [`squared_error`](fn@squared_error) | ½‖y − t‖² |
//! | [`cross_entropy`](fn@cross_entropy) | −log softmax(z)\[class\], from logits z |
//! | [`mean_cross_entropy`](fn@mean_cross_entropy) | its mean over a batch of rows of logits, from class indices |
//! | [`cross_entropy_one_hot`](fn@cross_entropy_one_hot) | −Σ_c t_c·log softmax(z)_c, from logits z |
//! | [`binary_cross_entropy_with_logits`](fn@binary_cross_entropy_with_logits) | Σᵢ softplus(zᵢ) − zᵢtᵢ, from logits z (independent labels) |
//!
//! ```
//! use fluxion::autodiff::differentiable;
//! use fluxion::nn::per_example::cross_entropy;
//! use fluxion::prelude::*;
//!
//! #[differentiable(wrt(w))]
//! fn loss(w: &Matrix<f64, 3, 2>, x: &Vector<f64, 2>, class: usize) -> f64 {
//!     cross_entropy(&w.matmul(x), class)
//! }
//!
//! let w: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]);
//! let x: Vector<f64, 2> = Vector::from_array([2.0, -1.0]);
//! let (value, gradient) = loss::value_and_grad(&w, &x, 0);
//! // ∂/∂W = (softmax(z) − e₀)·xᵀ.
//! let p = w.matmul(&x).softmax(Axis::<0>);
//! assert!((value + p[[0]].ln()).abs() < 1e-15);
//! assert!((gradient[[0, 0]] - (p[[0]] - 1.0) * 2.0).abs() < 1e-15);
//! ```

use crate::autodiff::differentiable;
use crate::ops::functions::SoftplusFunction;
use crate::scalar::RealScalar;
use crate::shape::constraint::Axis;
use crate::shape::{Const, Dim, Shape};
use crate::tensor::{Storage, StorageKind, Tensor};

/// ½‖y − t‖² of a prediction y against a target t.
#[differentiable(wrt(prediction))]
pub fn squared_error<T: RealScalar, S: Shape, K: Storage<T, S>>(
    prediction: &Tensor<T, S, K>,
    target: &Tensor<T, S, K>,
) -> T {
    let residual = prediction - target;
    residual.dot(&residual) * T::from_f64(0.5)
}

/// −log softmax(z)\[class\] of logits z (stable at any magnitude: `log_softmax`
/// shifts by the maximum).
///
/// # Panics
/// When `class` is C or more.
#[differentiable(wrt(logits))]
pub fn cross_entropy<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)> + Storage<T, ()>>(
    logits: &Tensor<T, (Const<C>,), K>,
    class: usize,
) -> T {
    assert!(class < C, "cross_entropy: class index {class} is out of range for {C} classes");
    -logits.log_softmax(Axis::<0>)[[class]]
}

/// The mean over a batch of rows of logits of −log softmax(z_b)\[class_b\]: PyTorch's
/// `cross_entropy(z, classes)` with its default mean, for static mode (the tape's is
/// [`loss::cross_entropy`](crate::nn::loss)). Its gradient is
/// (softmax(z_b) − e_{class_b})/B per row; a logit of −∞ other than the class's adds
/// nothing (a masked class).
///
/// # Panics
/// When there is not one class per row, or a class is C or more.
#[differentiable(wrt(logits), vjp = mean_cross_entropy_vjp, jvp = mean_cross_entropy_jvp)]
pub fn mean_cross_entropy<T: RealScalar, B: Dim, const C: usize, K>(
    logits: &Tensor<T, (B, Const<C>), K>,
    classes: &[usize],
) -> T
where
    K: Storage<T, (B, Const<C>)> + Storage<T, (B,)>,
{
    check_classes("cross_entropy", logits, classes);
    let log_probabilities = logits.log_softmax(Axis::<1>);
    let total = classes
        .iter()
        .enumerate()
        .fold(T::zero(), |total, (row, &class)| total - log_probabilities[[row, class]]);
    total.div_count(classes.len())
}

/// The gradient of the mean cross-entropy, (softmax(z_b) − e_{class_b})/B per row.
fn mean_cross_entropy_gradient<
    T: RealScalar,
    B: Dim,
    const C: usize,
    K: Storage<T, (B, Const<C>)> + Storage<T, (B,)>,
>(
    logits: &Tensor<T, (B, Const<C>), K>,
    classes: &[usize],
) -> Tensor<T, (B, Const<C>), K> {
    let mut gradient = logits.softmax(Axis::<1>);
    for (row, &class) in classes.iter().enumerate() {
        gradient[[row, class]] -= T::one();
    }
    gradient.map(|g| g.div_count(classes.len()))
}

/// z̄ = ȳ·(softmax(z) − one-hot)/B.
fn mean_cross_entropy_vjp<
    T: RealScalar,
    B: Dim,
    const C: usize,
    K: Storage<T, (B, Const<C>)> + Storage<T, (B,)>,
>(
    logits: &Tensor<T, (B, Const<C>), K>,
    classes: &[usize],
    y_bar: T,
) -> Tensor<T, (B, Const<C>), K> {
    mean_cross_entropy_gradient(logits, classes).map(|g| g * y_bar)
}

/// ẏ = ⟨(softmax(z) − one-hot)/B, ż⟩.
fn mean_cross_entropy_jvp<
    T: RealScalar,
    B: Dim,
    const C: usize,
    K: Storage<T, (B, Const<C>)> + Storage<T, (B,)>,
>(
    logits: &Tensor<T, (B, Const<C>), K>,
    classes: &[usize],
    logits_dot: &Tensor<T, (B, Const<C>), K>,
) -> T {
    mean_cross_entropy_gradient(logits, classes).dot(logits_dot)
}

/// Checks that there is one class per row of `logits` and each is below `C`.
#[track_caller]
pub(crate) fn check_classes<T: RealScalar, B: Dim, C: Dim, K: StorageKind<T, (B, C)>>(
    operation: &str,
    logits: &Tensor<T, (B, C), K>,
    classes: &[usize],
) {
    let (rows, columns) = (logits.shape().0.size(), logits.shape().1.size());
    assert!(classes.len() == rows, "{operation}: {} class indices for {rows} rows", classes.len());
    if let Some(&bad) = classes.iter().find(|&&class| class >= columns) {
        panic!("{operation}: class index {bad} is out of range for {columns} classes");
    }
}

/// −Σ_c t_c·log softmax(z)_c of logits z against one-hot or probability targets t (a
/// class of target 0 adds 0, also where its logit is −∞: a masked class), with
/// ∂/∂z = softmax(z)·Σ_c t_c − t.
#[differentiable(wrt(logits), vjp = cross_entropy_one_hot_vjp, jvp = cross_entropy_one_hot_jvp)]
pub fn cross_entropy_one_hot<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)> + Storage<T, ()>>(
    logits: &Tensor<T, (Const<C>,), K>,
    targets: &Tensor<T, (Const<C>,), K>,
) -> T {
    let terms = logits.log_softmax(Axis::<0>).zip_map(targets, |l, t| if t == T::zero() { t } else { t * l });
    -terms.sum()
}

/// The gradient of the one-hot cross-entropy, softmax(z)·Σ_c t_c − t.
fn cross_entropy_one_hot_gradient<
    T: RealScalar,
    const C: usize,
    K: Storage<T, (Const<C>,)> + Storage<T, ()>,
>(
    logits: &Tensor<T, (Const<C>,), K>,
    targets: &Tensor<T, (Const<C>,), K>,
) -> Tensor<T, (Const<C>,), K> {
    let total = targets.sum();
    logits.softmax(Axis::<0>).zip_map(targets, |p, t| p * total - t)
}

/// z̄ = ȳ·(softmax(z)·Σ_c t_c − t).
fn cross_entropy_one_hot_vjp<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)> + Storage<T, ()>>(
    logits: &Tensor<T, (Const<C>,), K>,
    targets: &Tensor<T, (Const<C>,), K>,
    y_bar: T,
) -> Tensor<T, (Const<C>,), K> {
    cross_entropy_one_hot_gradient(logits, targets).map(|g| g * y_bar)
}

/// ẏ = ⟨softmax(z)·Σ_c t_c − t, ż⟩.
fn cross_entropy_one_hot_jvp<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)> + Storage<T, ()>>(
    logits: &Tensor<T, (Const<C>,), K>,
    targets: &Tensor<T, (Const<C>,), K>,
    logits_dot: &Tensor<T, (Const<C>,), K>,
) -> T {
    cross_entropy_one_hot_gradient(logits, targets).dot(logits_dot)
}

/// Σᵢ −tᵢ·log σ(zᵢ) − (1 − tᵢ)·log(1 − σ(zᵢ)) of logits z against targets t in [0, 1]
/// of the same shape (one logit per independent label), as softplus(z) − z·t
/// ([`SoftplusFunction`], stable at any magnitude).
#[differentiable(wrt(logits))]
pub fn binary_cross_entropy_with_logits<T: RealScalar, S: Shape, K: Storage<T, S>>(
    logits: &Tensor<T, S, K>,
    targets: &Tensor<T, S, K>,
) -> T {
    logits.map_function(SoftplusFunction).sum() - logits.dot(targets)
}
