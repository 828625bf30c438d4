//! The tape's memory reuse and the in-place rule API: nodes, values and adjoint
//! buffers are reused from one gradient to the next on a thread, including when
//! dynamic shapes or the control flow change between gradients; adjoints that several
//! uses of a value reach are summed whether the rules write or add; and custom rules
//! written against `record_unary_in_place` / `record_binary_in_place` pass the checker.

mod common_grad;

use common_grad::{assert_close_slices, mixed_values, ok, static_tensor};
use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::autodiff::{
    Var, grad, record_binary_in_place, record_unary_in_place, value_and_grad, value_and_grad_into, vjp,
    write_elements,
};
use fluxion::prelude::*;

fn dmatrix(rows: usize, cols: usize, offset: usize) -> DMatrix<f64> {
    let values = mixed_values(rows * cols + offset);
    Tensor::from_shape_slice((Dyn(rows), Dyn(cols)), &values[offset..]).unwrap()
}

/// Σᵢⱼ (A·B)ᵢⱼ has gradient J·Bᵀ with respect to A (J all ones): entry (i, k) is
/// the sum of row k of B.
fn row_sums(b: &DMatrix<f64>) -> Vec<f64> {
    let (rows, cols) = (b.shape().0.size(), b.shape().1.size());
    (0..rows).map(|k| b.as_slice()[k * cols..][..cols].iter().sum()).collect()
}

#[test]
fn reused_nodes_follow_dynamic_shapes_that_change_between_gradients() {
    for (m, k, n) in [(2, 3, 4), (5, 2, 3), (2, 3, 4), (40, 20, 30), (3, 1, 2)] {
        let (a, b) = (dmatrix(m, k, 0), dmatrix(k, n, 1));
        let g = grad(|a: Var<DMatrix<f64>>| a.matmul(&Var::constant(b.clone())).sum(), &a);
        assert_eq!(g.dims().as_slice(), &[m, k]);
        let expected: Vec<f64> = (0..m).flat_map(|_| row_sums(&b)).collect();
        assert_close_slices(g.as_slice(), &expected, 1e-12);
    }
}

/// Two layers when `deep`, one otherwise: a different sequence of nodes.
fn branching_loss(w: &Var<M33>, x: &Var<V3>, deep: bool) -> Var<f64> {
    let h = w.matmul(x).tanh();
    let h = if deep { w.matmul(&h).sin() } else { h };
    h.dot(&h)
}

type M33 = Matrix<f64, 3, 3>;
type V3 = Vector<f64, 3>;

#[test]
fn reused_nodes_follow_control_flow_that_changes_between_gradients() {
    let w: M33 = static_tensor(&mixed_values(9));
    let x: V3 = static_tensor(&mixed_values(3));
    for deep in [true, false, true, true, false] {
        let options = CheckOptions::f64();
        ok(
            "branching loss",
            check_grad(|w: Var<M33>| branching_loss(&w, &Var::constant(x), deep), &w, options),
        );
        let first = grad(|w: Var<M33>| branching_loss(&w, &Var::constant(x), deep), &w);
        let again = grad(|w: Var<M33>| branching_loss(&w, &Var::constant(x), deep), &w);
        assert_eq!(first, again);
    }
}

/// Σ (A·A) for a square A: both operands are the same value, so its adjoint gets
/// J·Aᵀ + Aᵀ·J, one term written and the other added.
#[test]
fn matmul_of_a_value_by_itself_sums_both_cotangents() {
    for n in [3, 24] {
        let a = dmatrix(n, n, 2);
        let g = grad(|a: Var<DMatrix<f64>>| a.matmul(&a).sum(), &a);
        let a_t = a.transpose();
        let ones = DMatrix::<f64>::ones_shaped((Dyn(n), Dyn(n)));
        let expected = &ones.matmul(&a_t) + &a_t.matmul(&ones);
        assert_close_slices(g.as_slice(), expected.as_slice(), 1e-11);
    }
}

/// W used twice, W·x and W·y, both below and above the size where products go to
/// the blocked kernel: W̄ = ȳ₁ ⊗ x + ȳ₂ ⊗ y whichever kernel writes and adds.
#[test]
fn a_weight_used_twice_sums_its_cotangents() {
    for n in [4, 48] {
        let w = dmatrix(n, n, 3);
        let (x, y) = (dmatrix(n, 1, 4), dmatrix(n, 2, 5));
        let loss = |w: Var<DMatrix<f64>>| {
            let first = w.matmul(&Var::constant(x.clone())).sum();
            let second = w.matmul(&Var::constant(y.clone())).sum();
            &first + &second
        };
        let g = grad(loss, &w);
        let (x_rows, y_rows) = (row_sums(&x), row_sums(&y));
        let expected: Vec<f64> =
            (0..n).flat_map(|_| (0..n).map(|k| x_rows[k] + y_rows[k]).collect::<Vec<_>>()).collect();
        assert_close_slices(g.as_slice(), &expected, 1e-11);
    }
}

#[test]
fn a_pullback_called_twice_overwrites_rather_than_accumulates() {
    let w: M33 = static_tensor(&mixed_values(9));
    let x: V3 = static_tensor(&mixed_values(3));
    let (_, mut pullback) = vjp(|w: Var<M33>| w.matmul(&Var::constant(x)).tanh(), &w);
    let ones = V3::ones();
    let first = pullback.call(&ones);
    assert_eq!(pullback.call(&ones), first);
    assert_eq!(pullback.call(&ones.scale(2.0)), first.scale(2.0));
}

#[test]
fn gradient_into_overwrites_whatever_the_buffer_held() {
    let x: V3 = static_tensor(&mixed_values(3));
    let f = |x: Var<V3>| x.sin().dot(&x);
    let (value, expected) = value_and_grad(f, &x);
    let mut gradient = V3::full(f64::NAN);
    assert_eq!(value_and_grad_into(f, &x, &mut gradient), value);
    assert_eq!(gradient, expected);

    // A `Vec` input: a gradient buffer of another length is resized.
    let xs = vec![x, x.scale(2.0)];
    let mut gradients = vec![V3::zeros(); 5];
    value_and_grad_into(|xs: Vec<Var<V3>>| xs[0].dot(&xs[1]), &xs, &mut gradients);
    assert_eq!(gradients, vec![xs[1], xs[0]]);
}

/// softsign(x) = x / (1 + |x|) with an in-place rule: x̄ = ȳ / (1 + |x|)², written or
/// added straight into the adjoint.
fn softsign<S: Shape, K: Storage<f64, S>>(x: &Var<Tensor<f64, S, K>>) -> Var<Tensor<f64, S, K>> {
    let value = x.shared_value();
    let y = value.map(|v| v / (1.0 + v.abs()));
    record_unary_in_place(x, y, move |_, y_bar, x_bar| {
        let cotangents = value.iter().zip(y_bar.iter()).map(|(&v, &g)| g / (1.0 + v.abs()).powi(2));
        x_bar.write_or_add(value.shape(), |buffer, write| {
            write_elements(write, buffer.as_mut_slice(), cotangents)
        })
    })
}

/// a ⊙ b with an in-place rule that accumulates each side with `add_in_place`, and
/// the output value handed to the rule: ā = ȳ ⊙ b and b̄ = ȳ ⊙ y / b.
fn product_rule(a: &Var<V3>, b: &Var<V3>) -> Var<V3> {
    let (a_value, b_value) = (*a.value(), *b.value());
    record_binary_in_place(a, b, a_value.hadamard(&b_value), move |y, y_bar, mut adjoints| {
        adjoints.lhs().add_in_place(V3::zeros, |a_bar| *a_bar += &y_bar.hadamard(&b_value));
        adjoints
            .rhs()
            .add_in_place(V3::zeros, |b_bar| *b_bar += &y_bar.hadamard(y).zip_map(&b_value, |p, b| p / b));
    })
}

#[test]
fn in_place_custom_rules_pass_the_checker() {
    let x: V3 = static_tensor(&mixed_values(3));
    let options = CheckOptions::f64();
    ok("softsign", check_grad(|x: Var<V3>| softsign(&softsign(&x)).sum(), &x, options));
    let h = dmatrix(3, 4, 6);
    ok("softsign, dynamic", check_grad(|h: Var<DMatrix<f64>>| softsign(&h).sum(), &h, options));
    let pair = (x, x.map(|v| v + 3.0));
    ok("product rule", check_grad(|(a, b): (Var<V3>, Var<V3>)| product_rule(&a, &b).sum(), &pair, options));
    // The same value on both sides: ā and b̄ land in one adjoint.
    ok("product rule, x ⊙ x", check_grad(|a: Var<V3>| product_rule(&a, &a).sum(), &pair.1, options));
}

/// A cotangent of the wrong length given to a pullback is an error naming the shapes,
/// also on the second call of a pullback whose adjoints hold the first call's values.
#[test]
#[should_panic(expected = "incompatible")]
fn a_wrong_length_cotangent_panics_instead_of_leaving_stale_elements() {
    let x = DVector::<f64>::from_shape_slice((Dyn(3),), &mixed_values(3)).unwrap();
    let c = x.clone();
    let (_, mut pullback) = vjp(|x: Var<DVector<f64>>| x.sin().add(&Var::constant(c.clone())), &x);
    let tens = DVector::<f64>::full_shaped((Dyn(3),), 10.0);
    pullback.call(&tens);
    pullback.call(&DVector::<f64>::full_shaped((Dyn(1),), 1.0));
}
