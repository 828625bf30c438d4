//! Losses of predictions against plain targets, each reduced by
//! [`Reduction::Mean`] (over every element, or every row for cross-entropy) or
//! [`Reduction::Sum`]:
//!
//! | loss | value per element or row |
//! | --- | --- |
//! | [`mse`] | (yᵢ − tᵢ)² |
//! | [`cross_entropy`] | −log softmax(z)\[b, class_b\] for class indices |
//! | [`cross_entropy_one_hot`] | −Σ_c t\[b, c\]·log softmax(z)\[b, c\] for one-hot or probability targets |
//! | [`binary_cross_entropy_with_logits`] | −t·log σ(z) − (1 − t)·log(1 − σ(z)) = softplus(z) − z·t |
//!
//! [`unreduced`] gives the values before the reduction (PyTorch's
//! `reduction='none'`), one per element or row: a traced tensor, or a plain one for
//! plain predictions.
//!
//! Cross-entropies take logits (no softmax before them) and are stable at any
//! magnitude: `log_softmax` shifts by the row maximum, and softplus(z) =
//! max(z, 0) + ln(1 + e^−|z|).
//!
//! The predictions are traced (`Var`) inside `value_and_grad`, and the loss is a
//! traced scalar; or they are plain tensors, and the loss is a plain number (a
//! validation loss: nothing recorded; the prediction is cloned into a constant: free
//! for heap tensors, which share their elements until written, a copy for inline and
//! GPU ones). So a loss of an untraced forward pass cannot be returned from a
//! differentiated function by mistake: the closure must return a `Var`. The
//! losses take tensors of every storage kind, `Cuda` included (with the `cuda`
//! feature), so one training loop serves host and GPU models, and so do [`argmax`]
//! and [`accuracy`] (on the GPU one kernel; only the picked columns come back).
//!
//! ```
//! use fluxion::nn::loss::{Reduction, accuracy, cross_entropy};
//! use fluxion::prelude::*;
//!
//! let logits: Matrix<f64, 2, 3> = Matrix::from_array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]);
//! let classes = [0, 1];
//! let (loss, gradient) =
//!     value_and_grad(|z: Var<Matrix<f64, 2, 3>>| cross_entropy(&z, &classes, Reduction::Mean), &logits);
//! assert!(loss > 0.0 && loss < 0.5);
//! // The gradient of the mean cross-entropy is (softmax(z) − one_hot) / rows.
//! let p = logits.softmax(Axis::<1>);
//! assert!((gradient[[0, 0]] - (p[[0, 0]] - 1.0) / 2.0).abs() < 1e-15);
//! assert_eq!(accuracy(&logits, &classes), 1.0);
//! // On plain logits: the same loss, nothing recorded.
//! assert_eq!(cross_entropy(&logits, &classes, Reduction::Mean), loss);
//! ```

use alloc::vec::Vec;

#[cfg(feature = "cuda")]
use crate::autodiff::{CudaRealVarOps, CudaVarOps};
use crate::autodiff::{Operand, Prediction, Var, record_own_unary};
#[cfg(feature = "cuda")]
use crate::backend::cuda::{Cuda, CudaElement};
use crate::backend::wide::wide_with;
use crate::error::or_panic;
use crate::nn::per_example::check_classes;
use crate::ops::elementwise::FusedFunction;
#[cfg(feature = "cuda")]
use crate::ops::functions::MapFunction;
use crate::ops::functions::SoftplusFunction;
use crate::ops::reduce::first_argmax;
use crate::scalar::RealScalar;
#[cfg(feature = "cuda")]
use crate::shape::constraint::Axis;
use crate::shape::{Dim, Shape};
#[cfg(feature = "cuda")]
use crate::tensor::Heap;
use crate::tensor::{Storage, StorageKind, Tensor};

/// How a loss combines its per-element (or per-row) values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean (over elements, or over rows for the cross-entropies).
    #[default]
    Mean,
    /// The sum.
    Sum,
}

/// Σ or mean of `values`, `count` being what the mean divides by.
fn reduce<T: RealScalar>(total: Var<T>, count: usize, reduction: Reduction) -> Var<T> {
    match reduction {
        Reduction::Mean => &total / T::from_f64(count as f64),
        Reduction::Sum => total,
    }
}

/// Mean squared error (yᵢ − tᵢ)², reduced.
///
/// # Panics
/// When a dynamic dimension of the target differs from the prediction's (the message
/// names both shapes).
#[track_caller]
pub fn mse<T: RealScalar, S: Shape, K: ElementLosses<T, S>, P: Prediction<Tensor<T, S, K>>>(
    prediction: &P,
    target: &Tensor<T, S, K>,
    reduction: Reduction,
) -> P::Loss<T> {
    let errors = squared_errors(prediction, target);
    P::loss(reduce(K::total(&errors), errors.value().shape().num_elements(), reduction))
}

/// Cross-entropy of logits `[B, C]` against one-hot (or probability) targets of the
/// same shape: −Σ_c t\[b, c\]·log softmax(z)\[b, c\] per row, reduced over rows.
///
/// # Panics
/// When a dynamic dimension of the targets differs from the logits' (the message
/// names both shapes).
#[track_caller]
pub fn cross_entropy_one_hot<
    T: RealScalar,
    B: Dim,
    C: Dim,
    K: RowLosses<T, B, C>,
    P: Prediction<Tensor<T, (B, C), K>>,
>(
    logits: &P,
    targets: &Tensor<T, (B, C), K>,
    reduction: Reduction,
) -> P::Loss<T> {
    let logits = logits.to_var();
    or_panic(logits.value().check_same_shape(targets, "cross_entropy_one_hot"));
    P::loss(reduce(K::cross_entropy_sum(&logits, targets), logits.value().shape().0.size(), reduction))
}

/// Cross-entropy of logits `[B, C]` against class indices, one per row:
/// −log softmax(z)\[b, class_b\], reduced over rows.
///
/// # Panics
/// When `classes` does not hold one index per row, or an index is not below `C`.
#[track_caller]
pub fn cross_entropy<
    T: RealScalar,
    B: Dim,
    C: Dim,
    K: RowLosses<T, B, C>,
    P: Prediction<Tensor<T, (B, C), K>>,
>(
    logits: &P,
    classes: &[usize],
    reduction: Reduction,
) -> P::Loss<T> {
    let logits = logits.to_var();
    check_classes("cross_entropy", logits.value(), classes);
    P::loss(reduce(K::class_cross_entropy_sum(&logits, classes), logits.value().shape().0.size(), reduction))
}

/// t·log p of a target probability t against a log-probability: 0 where t is 0,
/// also where log p is −∞ (a masked class: 0·log 0 = 0, as in the entropy), so that
/// a masked logit leaves a cross-entropy finite (a NaN target stays NaN).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TargetTerm;

impl FusedFunction<2> for TargetTerm {
    #[inline(always)]
    fn value<T: RealScalar>(&self, [log_probability, target]: [T; 2]) -> T {
        let term = target * log_probability;
        T::select_positive(target, term, T::select_positive(-target, term, target * T::zero()))
    }
}

/// Binary cross-entropy of logits against targets in [0, 1] of the same shape:
/// softplus(z) − z·t per element (−t·log σ(z) − (1 − t)·log(1 − σ(z)), stable),
/// reduced. It takes logits, as PyTorch's `binary_cross_entropy_with_logits`: no
/// sigmoid before it.
///
/// # Panics
/// When a dynamic dimension of the targets differs from the logits' (the message
/// names both shapes).
#[track_caller]
pub fn binary_cross_entropy_with_logits<
    T: RealScalar,
    S: Shape,
    K: ElementLosses<T, S>,
    P: Prediction<Tensor<T, S, K>>,
>(
    logits: &P,
    targets: &Tensor<T, S, K>,
    reduction: Reduction,
) -> P::Loss<T> {
    let losses = softplus_terms(logits, targets);
    P::loss(reduce(K::total(&losses), losses.value().shape().num_elements(), reduction))
}

/// The losses before their reduction (PyTorch's `reduction='none'`): one value per
/// element, or per row for the cross-entropies, to weight, mask or inspect before
/// summing. The reduced losses are their sums or means (to rounding).
///
/// ```
/// use fluxion::nn::loss::{Reduction, cross_entropy, unreduced};
/// use fluxion::prelude::*;
///
/// let logits: Matrix<f64, 2, 3> = Matrix::from_array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]);
/// // Weight the second example twice as much as the first.
/// let weights: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
/// let (loss, gradient) = value_and_grad(
///     |z: Var<Matrix<f64, 2, 3>>| unreduced::cross_entropy(&z, &[0, 1]).dot(&Var::constant(weights)),
///     &logits,
/// );
/// let rows = unreduced::cross_entropy(&logits, &[0, 1]);
/// assert_eq!(loss, rows[[0]] + 2.0 * rows[[1]]);
/// assert_eq!(rows.sum(), cross_entropy(&logits, &[0, 1], Reduction::Sum));
/// assert!(gradient[[1, 1]] < 0.0);
/// ```
pub mod unreduced {
    use super::{ElementLosses, RowLosses, check_classes, softplus_terms, squared_errors};
    use crate::autodiff::Prediction;
    use crate::error::or_panic;
    use crate::scalar::RealScalar;
    use crate::shape::{Dim, Shape};
    use crate::tensor::Tensor;

    /// (yᵢ − tᵢ)² for every element.
    ///
    /// # Panics
    /// When a dynamic dimension of the target differs from the prediction's (the
    /// message names both shapes).
    #[track_caller]
    pub fn mse<T: RealScalar, S: Shape, K: ElementLosses<T, S>, P: Prediction<Tensor<T, S, K>>>(
        prediction: &P,
        target: &Tensor<T, S, K>,
    ) -> P::Loss<Tensor<T, S, K>> {
        P::loss(squared_errors(prediction, target))
    }

    /// −Σ_c t\[b, c\]·log softmax(z)\[b, c\] for every row b of logits `[B, C]`
    /// against one-hot (or probability) targets of the same shape.
    ///
    /// # Panics
    /// When a dynamic dimension of the targets differs from the logits' (the message
    /// names both shapes).
    #[track_caller]
    pub fn cross_entropy_one_hot<T, B, C, K, P>(
        logits: &P,
        targets: &Tensor<T, (B, C), K>,
    ) -> P::Loss<Tensor<T, (B,), K>>
    where
        T: RealScalar,
        B: Dim,
        C: Dim,
        K: RowLosses<T, B, C>,
        P: Prediction<Tensor<T, (B, C), K>>,
    {
        let logits = logits.to_var();
        or_panic(logits.value().check_same_shape(targets, "cross_entropy_one_hot"));
        P::loss(K::cross_entropies(&logits, targets))
    }

    /// −log softmax(z)\[b, class_b\] for every row b of logits `[B, C]`.
    ///
    /// # Panics
    /// When `classes` does not hold one index per row, or an index is not below `C`.
    #[track_caller]
    pub fn cross_entropy<T, B, C, K, P>(logits: &P, classes: &[usize]) -> P::Loss<Tensor<T, (B,), K>>
    where
        T: RealScalar,
        B: Dim,
        C: Dim,
        K: RowLosses<T, B, C>,
        P: Prediction<Tensor<T, (B, C), K>>,
    {
        let logits = logits.to_var();
        check_classes("cross_entropy", logits.value(), classes);
        P::loss(K::class_cross_entropies(&logits, classes))
    }

    /// softplus(zᵢ) − zᵢ·tᵢ for every element of logits against targets in [0, 1].
    ///
    /// # Panics
    /// When a dynamic dimension of the targets differs from the logits' (the message
    /// names both shapes).
    #[track_caller]
    pub fn binary_cross_entropy_with_logits<
        T: RealScalar,
        S: Shape,
        K: ElementLosses<T, S>,
        P: Prediction<Tensor<T, S, K>>,
    >(
        logits: &P,
        targets: &Tensor<T, S, K>,
    ) -> P::Loss<Tensor<T, S, K>> {
        P::loss(softplus_terms(logits, targets))
    }
}

/// (yᵢ − tᵢ)², traced, after the shape check.
#[track_caller]
fn squared_errors<T: RealScalar, S: Shape, K: ElementLosses<T, S>>(
    prediction: &impl Operand<Tensor<T, S, K>>,
    target: &Tensor<T, S, K>,
) -> Var<Tensor<T, S, K>> {
    let prediction = prediction.to_var();
    or_panic(prediction.value().check_same_shape(target, "mse"));
    K::squared_errors(&prediction, target)
}

/// softplus(zᵢ) − zᵢ·tᵢ, traced, after the shape check.
#[track_caller]
fn softplus_terms<T: RealScalar, S: Shape, K: ElementLosses<T, S>>(
    logits: &impl Operand<Tensor<T, S, K>>,
    targets: &Tensor<T, S, K>,
) -> Var<Tensor<T, S, K>> {
    let logits = logits.to_var();
    or_panic(logits.value().check_same_shape(targets, "binary_cross_entropy_with_logits"));
    K::binary_cross_entropies(&logits, targets)
}

/// The elementwise losses over a storage kind's own operations: every host kind, and
/// `Cuda` with the `cuda` feature (the same expressions, below).
pub trait ElementLosses<T: RealScalar, S: Shape>: StorageKind<T, S> {
    /// (yᵢ − tᵢ)².
    #[doc(hidden)]
    fn squared_errors(
        prediction: &Var<Tensor<T, S, Self>>,
        target: &Tensor<T, S, Self>,
    ) -> Var<Tensor<T, S, Self>>;
    /// softplus(zᵢ) − zᵢ·tᵢ.
    #[doc(hidden)]
    fn binary_cross_entropies(
        logits: &Var<Tensor<T, S, Self>>,
        targets: &Tensor<T, S, Self>,
    ) -> Var<Tensor<T, S, Self>>;
    /// Σᵢ xᵢ.
    #[doc(hidden)]
    fn total(x: &Var<Tensor<T, S, Self>>) -> Var<T>;
}

/// The row losses over a storage kind's own operations, as [`ElementLosses`], and
/// the rows' [`argmax`].
pub trait RowLosses<T: RealScalar, B: Dim, C: Dim>: StorageKind<T, (B, C)> + StorageKind<T, (B,)> {
    /// −Σ_c t\[b, c\]·log softmax(z)\[b, c\] for each row b.
    #[doc(hidden)]
    fn cross_entropies(
        logits: &Var<Tensor<T, (B, C), Self>>,
        targets: &Tensor<T, (B, C), Self>,
    ) -> Var<Tensor<T, (B,), Self>>;
    /// −Σ_b Σ_c t\[b, c\]·log softmax(z)\[b, c\], summed in one pass.
    #[doc(hidden)]
    fn cross_entropy_sum(logits: &Var<Tensor<T, (B, C), Self>>, targets: &Tensor<T, (B, C), Self>) -> Var<T>;
    /// −log softmax(z)\[b, class_b\] for each row b (the classes checked by the caller).
    #[doc(hidden)]
    fn class_cross_entropies(
        logits: &Var<Tensor<T, (B, C), Self>>,
        classes: &[usize],
    ) -> Var<Tensor<T, (B,), Self>>;
    /// −Σ_b log softmax(z)\[b, class_b\].
    #[doc(hidden)]
    fn class_cross_entropy_sum(logits: &Var<Tensor<T, (B, C), Self>>, classes: &[usize]) -> Var<T>;
    /// The column of each row's first largest value (its first NaN if it has one;
    /// the columns checked by the caller).
    #[doc(hidden)]
    fn row_argmax(scores: &Tensor<T, (B, C), Self>) -> Vec<usize>;
}

/// The losses' expressions, once, for the storage kinds named (the row losses' given
/// per kind): the targets enter the tape as constants.
macro_rules! loss_kernels {
    (
        $(#[$attribute:meta])*
        element [$($element_generics:tt)*] $element_kind:ty;
        row [$($row_generics:tt)*] $row_kind:ty;
        cross_entropies |$logits:ident, $targets:ident| $cross_entropies:expr;
        cross_entropy_sum |$sum_logits:ident, $sum_targets:ident| $cross_entropy_sum:expr;
        class_cross_entropies |$class_logits:ident, $classes:ident| $class_cross_entropies:expr;
        class_cross_entropy_sum |$class_sum_logits:ident, $sum_classes:ident| $class_cross_entropy_sum:expr;
        row_argmax |$scores:ident| $row_argmax:expr
    ) => {
        $(#[$attribute])*
        impl<$($element_generics)*> ElementLosses<T, S> for $element_kind {
            fn squared_errors(
                prediction: &Var<Tensor<T, S, Self>>,
                target: &Tensor<T, S, Self>,
            ) -> Var<Tensor<T, S, Self>> {
                let error = prediction - &Var::constant(target.clone());
                error.hadamard(&error)
            }
            fn binary_cross_entropies(
                logits: &Var<Tensor<T, S, Self>>,
                targets: &Tensor<T, S, Self>,
            ) -> Var<Tensor<T, S, Self>> {
                &logits.map_function(SoftplusFunction) - &logits.hadamard(&Var::constant(targets.clone()))
            }
            fn total(x: &Var<Tensor<T, S, Self>>) -> Var<T> {
                x.sum()
            }
        }

        $(#[$attribute])*
        impl<$($row_generics)*> RowLosses<T, B, C> for $row_kind {
            fn cross_entropies(
                $logits: &Var<Tensor<T, (B, C), Self>>,
                $targets: &Tensor<T, (B, C), Self>,
            ) -> Var<Tensor<T, (B,), Self>> {
                $cross_entropies
            }
            fn cross_entropy_sum(
                $sum_logits: &Var<Tensor<T, (B, C), Self>>,
                $sum_targets: &Tensor<T, (B, C), Self>,
            ) -> Var<T> {
                $cross_entropy_sum
            }
            fn class_cross_entropies(
                $class_logits: &Var<Tensor<T, (B, C), Self>>,
                $classes: &[usize],
            ) -> Var<Tensor<T, (B,), Self>> {
                $class_cross_entropies
            }
            fn class_cross_entropy_sum($class_sum_logits: &Var<Tensor<T, (B, C), Self>>, $sum_classes: &[usize]) -> Var<T> {
                $class_cross_entropy_sum
            }
            fn row_argmax($scores: &Tensor<T, (B, C), Self>) -> Vec<usize> {
                $row_argmax
            }
        }
    };
}

loss_kernels! {
    element [T: RealScalar, S: Shape, K: Storage<T, S>] K;
    row [T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)> + Storage<T, (B,)>] K;
    cross_entropies |logits, targets| row_cross_entropies(logits, DenseTargets(targets.clone()));
    cross_entropy_sum |logits, targets| row_cross_entropies(logits, DenseTargets(targets.clone())).sum();
    class_cross_entropies |logits, classes| row_cross_entropies(logits, ClassTargets(classes.to_vec()));
    class_cross_entropy_sum |logits, classes| row_cross_entropies(logits, ClassTargets(classes.to_vec())).sum();
    row_argmax |scores| {
        let columns = scores.shape().1.size().max(1);
        scores.as_slice().chunks(columns).map(|row| first_argmax(row, 0, row.len(), 1).unwrap_or(0)).collect()
    }
}

// On the GPU: the log-softmax's kernels, then the target terms' fused kernel.
loss_kernels! {
    #[cfg(feature = "cuda")]
    element [T: CudaElement, S: Shape] Cuda;
    row [T: CudaElement, B: Dim, C: Dim] Cuda;
    cross_entropies |logits, targets| {
        let terms = TargetTerm.apply([&logits.log_softmax(Axis::<1>), &Var::constant(targets.clone())]);
        -&terms.sum_axis(Axis::<1>)
    };
    cross_entropy_sum |logits, targets| {
        -TargetTerm.apply([&logits.log_softmax(Axis::<1>), &Var::constant(targets.clone())]).sum()
    };
    class_cross_entropies |logits, classes| Self::cross_entropies(logits, &one_hot(logits, classes));
    class_cross_entropy_sum |logits, classes| Self::cross_entropy_sum(logits, &one_hot(logits, classes));
    row_argmax |scores| scores.argmax_along::<1>()
}

/// The one-hot rows of `classes` for `logits`, built in host memory and copied.
#[cfg(feature = "cuda")]
fn one_hot<T: CudaElement, B: Dim, C: Dim>(
    logits: &Var<Tensor<T, (B, C), Cuda>>,
    classes: &[usize],
) -> Tensor<T, (B, C), Cuda> {
    let shape = logits.value().shape();
    let mut rows = Tensor::<T, (B, C), Heap>::zeros_shaped(shape);
    let columns = shape.1.size();
    for (b, &class) in classes.iter().enumerate() {
        rows.as_mut_slice()[b * columns + class] = T::one();
    }
    rows.to_device()
}

/// The targets of a row cross-entropy: dense rows (one-hot or probabilities) or one
/// class per row.
trait RowTargets<T: RealScalar>: 'static {
    /// Row b's targets t ≠ 0, each beside its log-probability p = (z − m) − l.
    fn nonzero_terms<'a>(
        &'a self,
        b: usize,
        z_row: &'a [T],
        shift: (T, T),
    ) -> impl Iterator<Item = (T, T)> + 'a;
    /// Row b's z̄ = g·(exp(p)·w − τ(p, t)), written into `out`.
    fn write_pullback(&self, b: usize, z_row: &[T], shift: (T, T), g_and_w: (T, T), out: &mut [T]);
}

/// ∂TargetTerm/∂p as the fused rule's dual evaluation gives it: 0 where t is 0, else
/// t + 0·p (NaN for a NaN target, or a positive target on a masked −∞ logit).
#[inline(always)]
fn target_slope<T: RealScalar>(p: T, t: T) -> T {
    if t == T::zero() { T::zero() } else { t + T::zero() * p }
}

/// One-hot or probability rows, of the logits' shape (checked by the caller).
struct DenseTargets<T, B: Dim, C: Dim, K: Storage<T, (B, C)>>(Tensor<T, (B, C), K>);

impl<T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)>> DenseTargets<T, B, C, K> {
    /// Row b's targets.
    fn row(&self, b: usize) -> &[T] {
        let columns = self.0.shape().1.size();
        &self.0.as_slice()[b * columns..][..columns]
    }
}

impl<T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)>> RowTargets<T> for DenseTargets<T, B, C, K> {
    fn nonzero_terms<'a>(
        &'a self,
        b: usize,
        z_row: &'a [T],
        (m, l): (T, T),
    ) -> impl Iterator<Item = (T, T)> + 'a {
        z_row.iter().zip(self.row(b)).filter(|&(_, &t)| t != T::zero()).map(move |(&z, &t)| ((z - m) - l, t))
    }
    fn write_pullback(&self, b: usize, z_row: &[T], (m, l): (T, T), (g, w): (T, T), out: &mut [T]) {
        wide_with::<T, _, _>(
            out,
            #[inline(always)]
            |out| {
                for (out, (&z, &t)) in out.iter_mut().zip(z_row.iter().zip(self.row(b))) {
                    let p = (z - m) - l;
                    *out = g * (p.exp() * w - target_slope(p, t));
                }
            },
        );
    }
}

/// −Σ_c t\[b, c\]·log softmax(z)\[b, c\] for each row b, as one node of the host's tape.
/// Each row's maximum m_b and l_b = ln Σ_c exp(z\[b, c\] − m_b) are found once; the
/// log-probabilities p = (z − m_b) − l_b, as `log_softmax` computes them, go through
/// the same [`TargetTerm`]s; and the pullback is the log-softmax's of the terms'
/// cotangent −ȳ_b·τ, in one pass per row:
/// z̄\[b, c\] = ȳ_b·(softmax(z)\[b, c\]·Σ_c τ\[b, c\] − τ\[b, c\]), with τ the
/// [`target_slope`], so that the GPU's fused kernels and this node agree.
fn row_cross_entropies<T, B, C, K>(
    logits: &Var<Tensor<T, (B, C), K>>,
    targets: impl RowTargets<T>,
) -> Var<Tensor<T, (B,), K>>
where
    T: RealScalar,
    B: Dim,
    C: Dim,
    K: Storage<T, (B, C)> + Storage<T, (B,)>,
{
    let z = logits.shared_value();
    let (shape, columns) = (z.shape(), z.shape().1.size());
    let (max, log_totals) = z.shifted_log_totals::<1>();
    let shift = move |b: usize| (max.as_slice()[b], log_totals.as_slice()[b]);
    // Row b's positions in the flat elements.
    let row = move |b: usize| b * columns..(b + 1) * columns;
    // Per row: the loss, −Σ of the terms, and Σ_c τ for the pullback. A zero target's
    // term and slope are 0 (a dual's tangents too), so only the others are summed.
    let mut values = Tensor::<T, (B,), K>::zeros_shaped((shape.0,));
    let mut weights = values.clone();
    for b in 0..shape.0.size() {
        let (mut value, mut weight) = (T::zero(), T::zero());
        for (p, t) in targets.nonzero_terms(b, &z.as_slice()[row(b)], shift(b)) {
            value += TargetTerm.value([p, t]);
            weight += target_slope(p, t);
        }
        (values.as_mut_slice()[b], weights.as_mut_slice()[b]) = (-value, weight);
    }
    record_own_unary(logits, values, move |y_bar: &Tensor<T, (B,), K>| {
        let mut z_bar = Tensor::zeros_shaped(shape);
        for (b, (&g, &w)) in y_bar.as_slice().iter().zip(weights.as_slice()).enumerate() {
            let out = &mut z_bar.as_mut_slice()[row(b)];
            targets.write_pullback(b, &z.as_slice()[row(b)], shift(b), (g, w), out);
        }
        z_bar
    })
}

/// One class index per row (checked by the caller): a one-hot row without its zeros.
struct ClassTargets(Vec<usize>);

impl<T: RealScalar> RowTargets<T> for ClassTargets {
    fn nonzero_terms<'a>(
        &'a self,
        b: usize,
        z_row: &'a [T],
        (m, l): (T, T),
    ) -> impl Iterator<Item = (T, T)> + 'a {
        core::iter::once(((z_row[self.0[b]] - m) - l, T::one()))
    }
    fn write_pullback(&self, b: usize, z_row: &[T], (m, l): (T, T), (g, w): (T, T), out: &mut [T]) {
        // τ is 0 off the class, where g·(exp(p)·w − 0) = g·(exp(p)·w).
        wide_with::<T, _, _>(
            &mut *out,
            #[inline(always)]
            |out| {
                for (out, &z) in out.iter_mut().zip(z_row) {
                    *out = g * (((z - m) - l).exp() * w);
                }
            },
        );
        let (class, p) = (self.0[b], (z_row[self.0[b]] - m) - l);
        out[class] = g * (p.exp() * w - target_slope(p, T::one()));
    }
}

/// The index of each row's largest value (the first one on ties, a NaN over any
/// number), for logits or probabilities `[B, C]`, on the host or the GPU (one
/// kernel; only the indices are copied back).
///
/// # Panics
/// When there are rows but no columns (no largest value to name).
#[track_caller]
pub fn argmax<T: RealScalar, B: Dim, C: Dim, K: RowLosses<T, B, C>>(
    scores: &Tensor<T, (B, C), K>,
) -> Vec<usize> {
    let (rows, columns) = (scores.shape().0.size(), scores.shape().1.size());
    assert!(columns > 0 || rows == 0, "argmax: {rows} rows of 0 columns have no largest value");
    K::row_argmax(scores)
}

/// The fraction of rows whose [`argmax`] is the given class (NaN for no rows).
///
/// # Panics
/// When `classes` does not hold one index per row, or holds an index past the
/// columns (as `cross_entropy` does: labels numbered from 1 would otherwise count
/// as wrong predictions).
#[track_caller]
pub fn accuracy<T: RealScalar, B: Dim, C: Dim, K: RowLosses<T, B, C>>(
    scores: &Tensor<T, (B, C), K>,
    classes: &[usize],
) -> f64 {
    check_classes("accuracy", scores, classes);
    let predicted = argmax(scores);
    let correct = predicted.iter().zip(classes).filter(|(p, c)| p == c).count();
    correct as f64 / predicted.len() as f64
}
