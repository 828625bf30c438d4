//! The losses against their formulas computed directly, against finite differences
//! (gradients) and at extreme logits (stability).

mod common_grad;

use common_grad::{assert_close, ok};
use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::nn::loss::{
    Reduction, accuracy, argmax, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_one_hot, mse,
};
use fluxion::prelude::*;

type M = Matrix<f64, 3, 4>;

fn logits() -> M {
    Matrix::from_array([[2.0, -1.0, 0.5, 0.0], [-0.5, 1.5, 1.0, -2.0], [0.25, 0.25, -1.0, 3.0]])
}

#[test]
fn mse_is_the_mean_or_sum_of_squared_errors() {
    let (y, t) = (logits(), Matrix::full(0.5));
    let direct: f64 = y.iter().zip(t.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
    let (mean, _) = value_and_grad(|y: Var<M>| mse(&y, &t, Reduction::Mean), &y);
    let (sum, _) = value_and_grad(|y: Var<M>| mse(&y, &t, Reduction::Sum), &y);
    assert_close(mean, direct / 12.0, 1e-15);
    assert_close(sum, direct, 1e-15);
    ok("mse", check_grad(|y: Var<M>| mse(&y, &t, Reduction::Mean), &y, CheckOptions::f64()));
}

#[test]
fn cross_entropy_from_class_indices_equals_the_one_hot_form_and_the_formula() {
    let z = logits();
    let classes = [0, 2, 3];
    let one_hot = Matrix::from_fn(|[b, c]| if classes[b] == c { 1.0 } else { 0.0 });
    let (by_index, index_gradient) =
        value_and_grad(|z: Var<M>| cross_entropy(&z, &classes, Reduction::Mean), &z);
    let (by_one_hot, one_hot_gradient) =
        value_and_grad(|z: Var<M>| cross_entropy_one_hot(&z, &one_hot, Reduction::Mean), &z);
    // Class indices skip the one-hot rows' zeros, to the same bits.
    assert_eq!((by_index, &index_gradient), (by_one_hot, &one_hot_gradient));
    let direct: f64 = (0..3)
        .map(|b| {
            let row: Vec<f64> = (0..4).map(|c| z[[b, c]]).collect();
            let total: f64 = row.iter().map(|v| v.exp()).sum();
            total.ln() - row[classes[b]]
        })
        .sum::<f64>()
        / 3.0;
    assert_close(by_index, direct, 1e-15);
    assert_close(by_one_hot, direct, 1e-15);
    ok(
        "cross_entropy",
        check_grad(|z: Var<M>| cross_entropy(&z, &classes, Reduction::Sum), &z, CheckOptions::f64()),
    );
}

/// Soft targets (some zero, one negative, rows not summing to 1) on a dynamic batch:
/// the value and gradient of the loss, one node on the tape, equal those of the
/// log-softmax and the target terms recorded one by one; a Hessian-vector product
/// through it (forward over reverse) agrees with central differences of the gradient.
#[test]
fn cross_entropy_as_one_node_equals_its_pieces_and_has_second_derivatives() {
    use fluxion::autodiff::{Dual, hvp};
    type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;
    let z: Rows = Tensor::random_uniform_shaped((Dyn(5), Const), -3.0, 3.0, 7);
    let mut t: Rows = Tensor::random_uniform_shaped((Dyn(5), Const), 0.0, 1.0, 8);
    (t[[0, 1]], t[[2, 3]], t[[4, 0]]) = (0.0, -0.25, 0.0);
    let (loss, gradient) = value_and_grad(|z: Var<Rows>| cross_entropy_one_hot(&z, &t, Reduction::Sum), &z);
    let (pieces, pieces_gradient) = value_and_grad(
        |z: Var<Rows>| -z.log_softmax(Axis::<1>).hadamard(&Var::constant(t.clone())).sum(),
        &z,
    );
    assert_close(loss, pieces, 1e-14);
    for (a, b) in gradient.iter().zip(pieces_gradient.iter()) {
        assert_close(*a, *b, 1e-14);
    }
    let v: Rows = Tensor::random_uniform_shaped((Dyn(5), Const), -1.0, 1.0, 9);
    let hessian_v = hvp(
        |z: Var<Tensor<Dual<f64>, (Dyn, Const<4>), Heap>>| {
            cross_entropy_one_hot(&z, &t.map(Dual::constant), Reduction::Sum)
        },
        &z,
        &v,
    );
    let h = 1e-5;
    let gradient_at = |step: f64| {
        grad(|z: Var<Rows>| cross_entropy_one_hot(&z, &t, Reduction::Sum), &(&z + &v.scale(step)))
    };
    let (ahead, behind) = (gradient_at(h), gradient_at(-h));
    for ((hv, a), b) in hessian_v.iter().zip(ahead.iter()).zip(behind.iter()) {
        assert!((hv - (a - b) / (2.0 * h)).abs() < 1e-7, "Hv {hv}, differences {}", (a - b) / (2.0 * h));
    }
}

/// A validation loss on plain predictions: a plain number, the traced loss's value,
/// nothing recorded. So a loss of an untraced forward pass cannot be what a
/// differentiated function returns (the closure must return a `Var`).
#[test]
fn every_loss_takes_plain_predictions_with_the_traced_value() {
    let (z, t) = (logits(), Matrix::from_fn(|[b, c]| ((b * c) % 2) as f64));
    let classes = [1, 0, 3];
    let traced = |loss: &dyn Fn(&Var<M>) -> Var<f64>| value_and_grad(|z: Var<M>| loss(&z), &z).0;
    let plain: f64 = mse(&z, &t, Reduction::Mean);
    assert_eq!(plain, traced(&|z| mse(z, &t, Reduction::Mean)));
    assert_eq!(
        cross_entropy(&z, &classes, Reduction::Sum),
        traced(&|z| cross_entropy(z, &classes, Reduction::Sum))
    );
    assert_eq!(
        cross_entropy_one_hot(&z, &t, Reduction::Mean),
        traced(&|z| cross_entropy_one_hot(z, &t, Reduction::Mean))
    );
    assert_eq!(
        binary_cross_entropy_with_logits(&z, &t, Reduction::Mean),
        traced(&|z| binary_cross_entropy_with_logits(z, &t, Reduction::Mean))
    );
    // Inside a differentiated function a loss of plain predictions is a constant: it
    // adds to the value and nothing to the gradient.
    let other = logits().map(|v| v * 0.5);
    let (alone, gradient) = value_and_grad(|z: Var<M>| mse(&z, &t, Reduction::Mean), &z);
    let (with_constant, same_gradient) = value_and_grad(
        |z: Var<M>| &mse(&z, &t, Reduction::Mean) + &Var::constant(mse(&other, &t, Reduction::Mean)),
        &z,
    );
    assert_close(with_constant - alone, mse(&other, &t, Reduction::Mean), 1e-15);
    assert_eq!(gradient, same_gradient);
}

#[test]
fn binary_cross_entropy_matches_its_formula_and_is_stable() {
    let z = logits();
    let t: M = Matrix::from_fn(|[b, c]| ((b + c) % 2) as f64);
    let sigma = |v: f64| 1.0 / (1.0 + (-v).exp());
    let direct: f64 =
        z.iter().zip(t.iter()).map(|(&z, &t)| -(t * sigma(z).ln() + (1.0 - t) * (1.0 - sigma(z)).ln())).sum();
    let (sum, _) = value_and_grad(|z: Var<M>| binary_cross_entropy_with_logits(&z, &t, Reduction::Sum), &z);
    assert_close(sum, direct, 1e-13);
    ok(
        "binary_cross_entropy_with_logits",
        check_grad(
            |z: Var<M>| binary_cross_entropy_with_logits(&z, &t, Reduction::Mean),
            &z,
            CheckOptions::f64(),
        ),
    );
    // Logits of ±1000 give finite losses and gradients.
    let extreme: Vector<f64, 2> = Vector::from_array([1000.0, -1000.0]);
    let targets: Vector<f64, 2> = Vector::from_array([0.0, 1.0]);
    let (loss, gradient) = value_and_grad(
        |z: Var<Vector<f64, 2>>| binary_cross_entropy_with_logits(&z, &targets, Reduction::Sum),
        &extreme,
    );
    assert_close(loss, 2000.0, 1e-12);
    assert_eq!(gradient.to_array(), [1.0, -1.0]);
    let wide: Matrix<f64, 1, 3> = Matrix::from_array([[1000.0, 0.0, -1000.0]]);
    let (loss, _) =
        value_and_grad(|z: Var<Matrix<f64, 1, 3>>| cross_entropy(&z, &[2], Reduction::Sum), &wide);
    assert_close(loss, 2000.0, 1e-12);
}

#[test]
fn argmax_takes_the_first_largest_and_accuracy_counts_matches() {
    let scores: Matrix<f64, 3, 3> =
        Matrix::from_array([[0.1, 0.7, 0.7], [2.0, 1.0, 0.0], [-1.0, -3.0, -0.5]]);
    assert_eq!(argmax(&scores), vec![1, 0, 2]);
    assert_close(accuracy(&scores, &[1, 0, 0]), 2.0 / 3.0, 1e-15);
}

#[test]
#[should_panic(expected = "accuracy: class index 3 is out of range for 3 classes")]
fn accuracy_reports_a_class_index_out_of_range() {
    // Labels numbered from 1: the last row's 3 names no column.
    let scores: Matrix<f64, 3, 3> = Matrix::from_array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
    let _ = accuracy(&scores, &[1, 2, 3]);
}

#[test]
#[should_panic(expected = "class index 4 is out of range for 4 classes")]
fn a_class_index_out_of_range_is_reported() {
    let _ = value_and_grad(|z: Var<M>| cross_entropy(&z, &[0, 4, 1], Reduction::Mean), &logits());
}

#[test]
#[should_panic(expected = "cross_entropy: class index 7 is out of range for 5 classes")]
fn a_class_index_out_of_range_is_reported_by_the_per_example_loss() {
    let z: Vector<f64, 5> = Vector::from_array([0.1, 0.2, 0.3, 0.4, 0.5]);
    let _ = fluxion::nn::per_example::cross_entropy::grad(&z, 7);
}

/// The per-example losses of static mode equal the tape's batch losses with a sum
/// over the same elements, value and gradient, and stay finite at extreme logits.
#[test]
fn static_mode_per_example_losses_equal_the_tape_losses() {
    use fluxion::nn::per_example;
    let z = logits();
    let t: M = Matrix::from_fn(|[b, c]| ((b + c) % 2) as f64);
    let (value, gradient) = per_example::binary_cross_entropy_with_logits::value_and_grad(&z, &t);
    let (tape_value, tape_gradient) =
        value_and_grad(|z: Var<M>| binary_cross_entropy_with_logits(&z, &t, Reduction::Sum), &z);
    assert_close(value, tape_value, 1e-13);
    gradient.iter().zip(tape_gradient.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    let extreme: Vector<f64, 2> = Vector::from_array([1000.0, -1000.0]);
    let targets: Vector<f64, 2> = Vector::from_array([0.0, 1.0]);
    let (loss, gradient) = per_example::binary_cross_entropy_with_logits::value_and_grad(&extreme, &targets);
    assert_close(loss, 2000.0, 1e-12);
    assert_eq!(gradient.to_array(), [1.0, -1.0]);

    let row: Vector<f64, 4> = Vector::from_array([-0.5, 1.5, 1.0, -2.0]);
    let probabilities: Vector<f64, 4> = Vector::from_array([0.1, 0.6, 0.3, 0.0]);
    let (value, gradient) = per_example::cross_entropy_one_hot::value_and_grad(&row, &probabilities);
    let as_matrix = |v: &Vector<f64, 4>| Matrix::<f64, 1, 4>::from_fn(|[_, c]| v[[c]]);
    let (tape_value, tape_gradient) = value_and_grad(
        |z: Var<Matrix<f64, 1, 4>>| cross_entropy_one_hot(&z, &as_matrix(&probabilities), Reduction::Sum),
        &as_matrix(&row),
    );
    assert_close(value, tape_value, 1e-15);
    gradient.iter().zip(tape_gradient.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-15));
    // With a one-hot target it is the class-index form.
    let one_hot: Vector<f64, 4> = Vector::from_array([0.0, 0.0, 1.0, 0.0]);
    let by_index = per_example::cross_entropy::value_and_grad(&row, 2);
    let by_one_hot = per_example::cross_entropy_one_hot::value_and_grad(&row, &one_hot);
    assert_close(by_index.0, by_one_hot.0, 1e-15);
    by_index.1.iter().zip(by_one_hot.1.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-15));
}

/// A dynamic shape mismatch panics naming the loss and both shapes.
#[test]
fn a_dynamic_mismatch_names_the_loss_and_both_shapes() {
    type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;
    let (eight, four) = (Rows::zeros_shaped((Dyn(8), Const)), Rows::zeros_shaped((Dyn(4), Const)));
    for (name, loss) in [
        ("mse", mse as fn(&Rows, &Rows, Reduction) -> f64),
        ("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits),
        ("cross_entropy_one_hot", cross_entropy_one_hot),
    ] {
        let panic = std::panic::catch_unwind(|| loss(&eight, &four, Reduction::Mean)).expect_err(name);
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(
            message.contains(name) && message.contains("[8, 4]") && message.contains("[4, 4]"),
            "{message}"
        );
    }
}

/// The unreduced losses: their sums are the `Sum` losses, and their pullbacks pass
/// the finite-difference and adjoint checks with any cotangent (a weighting).
#[test]
fn unreduced_losses_sum_to_the_reduced_ones_and_pass_the_checks() {
    use fluxion::autodiff::check::check_vjp;
    use fluxion::nn::loss::unreduced;
    let (z, t) = (logits(), Matrix::from_fn(|[b, c]| ((b + c) % 3) as f64 / 2.0));
    let classes = [1, 0, 3];
    let one_hot = Matrix::from_fn(|[b, c]| if classes[b] == c { 1.0 } else { 0.0 });
    assert_close(unreduced::mse(&z, &t).sum(), mse(&z, &t, Reduction::Sum), 1e-14);
    let bce = binary_cross_entropy_with_logits(&z, &t, Reduction::Sum);
    assert_close(unreduced::binary_cross_entropy_with_logits(&z, &t).sum(), bce, 1e-14);
    let rows = unreduced::cross_entropy(&z, &classes);
    assert_eq!(rows, unreduced::cross_entropy_one_hot(&z, &one_hot));
    assert_close(rows.sum(), cross_entropy(&z, &classes, Reduction::Sum), 1e-14);
    // Row b is −log softmax(z)[b, class_b].
    for (b, &class) in classes.iter().enumerate() {
        let log_total = (0..4).map(|c| z[[b, c]].exp()).sum::<f64>().ln();
        assert_close(rows[[b]], log_total - z[[b, class]], 1e-15);
    }
    let options = CheckOptions::f64();
    ok("unreduced mse", check_vjp(|y: Var<M>| unreduced::mse(&y, &t), &z, options));
    ok(
        "unreduced bce",
        check_vjp(|y: Var<M>| unreduced::binary_cross_entropy_with_logits(&y, &t), &z, options),
    );
    ok("unreduced cross_entropy", check_vjp(|y: Var<M>| unreduced::cross_entropy(&y, &classes), &z, options));
    ok(
        "unreduced cross_entropy_one_hot",
        check_vjp(|y: Var<M>| unreduced::cross_entropy_one_hot(&y, &t), &z, options),
    );
}

#[test]
#[should_panic(expected = "cross_entropy: 2 class indices for 3 rows")]
fn a_class_count_that_differs_from_the_row_count_is_reported() {
    let _ = cross_entropy(&logits(), &[0, 1], Reduction::Mean);
}

#[test]
#[should_panic(expected = "argmax: 3 rows of 0 columns have no largest value")]
fn argmax_of_rows_without_columns_is_reported() {
    let empty = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(3), Dyn(0)));
    let _ = argmax(&empty);
}
