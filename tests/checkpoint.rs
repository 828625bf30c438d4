//! Gradient checkpointing: a checkpointed function gives the gradient of the plain
//! one (bit for bit, and against finite differences), keeps none of its inner values
//! on the tape until the backward sweep recomputes them, nests, takes derived models
//! and their traced forms, repeats its random draws (dropout masks) in the
//! recomputation, works forward over reverse, and refuses a traced value it did not
//! receive.

use std::cell::Cell;
use std::rc::Rc;

use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{
    Differentiable, Dual, Var, checkpoint, grad, hvp, record_unary, replayable_draw, vjp,
};
use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Weights = DMatrix<f64>;
type Hidden = DVector<f64>;

fn weights(n: usize, offset: f64) -> Weights {
    Tensor::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| ((i * n + j) as f64 * 0.37 + offset).sin() * 0.6)
}

fn hidden(n: usize) -> Hidden {
    Tensor::from_shape_fn((Dyn(n),), |[i]| (i as f64 * 1.3 + 0.2).cos())
}

/// h + tanh(W·h + b): a residual block.
fn block(w: &Var<Weights>, b: &Var<Hidden>, h: &Var<Hidden>) -> Var<Hidden> {
    h + &(&w.matmul(h) + b).tanh()
}

/// ‖h₆‖² after six blocks sharing (W, b), each checkpointed or not.
fn six_blocks(checkpointed: bool, x: Hidden) -> impl Fn((Var<Weights>, Var<Hidden>)) -> Var<f64> {
    move |(w, b)| {
        let mut h = Var::constant(x.clone());
        for _ in 0..6 {
            h = match checkpointed {
                true => checkpoint(|(w, b, h)| block(&w, &b, &h), &(w.clone(), b.clone(), h)),
                false => block(&w, &b, &h),
            };
        }
        h.dot(&h)
    }
}

#[test]
fn a_checkpointed_chain_has_the_plain_gradient() {
    let params = (weights(5, 0.1), hidden(5).scale(0.3));
    let plain = grad(six_blocks(false, hidden(5)), &params);
    let checkpointed = grad(six_blocks(true, hidden(5)), &params);
    assert_eq!(checkpointed, plain, "the same operations on the same values");
    check_vjp(six_blocks(true, hidden(5)), &params, CheckOptions::f64()).unwrap();
}

/// Counts the live copies of itself: one rides in each pullback that captures it.
#[derive(Clone)]
struct Tracker(Rc<Cell<usize>>);

impl Tracker {
    fn new(live: &Rc<Cell<usize>>) -> Self {
        live.set(live.get() + 1);
        Tracker(Rc::clone(live))
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

#[test]
fn the_tape_keeps_no_inner_value_of_a_checkpoint_until_the_sweep() {
    for checkpointed in [false, true] {
        let (live, runs) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (live_in, runs_in) = (Rc::clone(&live), Rc::clone(&runs));
        // 3·sin(x), whose inner node's pullback holds a tracker.
        let inner = move |x: Var<f64>| {
            runs_in.set(runs_in.get() + 1);
            let s = x.sin();
            let tracker = Tracker::new(&live_in);
            record_unary(&s, 3.0 * s.value(), move |y_bar: &f64| {
                let _held = &tracker;
                3.0 * y_bar
            })
        };
        let f = move |x: Var<f64>| match checkpointed {
            true => checkpoint(inner.clone(), &x),
            false => inner(x),
        };
        let (y, mut pullback) = vjp(f, &0.5);
        assert_eq!(y, 3.0 * 0.5f64.sin());
        assert_eq!(live.get(), usize::from(!checkpointed), "inner pullbacks kept after the forward pass");
        assert_eq!(pullback.call(&1.0), 3.0 * 0.5f64.cos());
        assert_eq!(live.get(), usize::from(!checkpointed), "the recomputation's tape is dropped after use");
        assert_eq!(runs.get(), if checkpointed { 2 } else { 1 });
    }
}

#[test]
fn checkpoints_nest() {
    let runs = Rc::new(Cell::new(0));
    let counted = Rc::clone(&runs);
    let inner = move |x: Var<f64>| {
        counted.set(counted.get() + 1);
        x.exp() * x.sin()
    };
    let outer = move |x: Var<f64>| checkpoint(inner.clone(), &x.cos()).tanh();
    let nested = grad(|x: Var<f64>| checkpoint(outer.clone(), &x), &0.8);
    let inner_again = |x: Var<f64>| x.exp() * x.sin();
    let plain = grad(|x: Var<f64>| inner_again(x.cos()).tanh(), &0.8);
    assert_eq!(nested, plain);
    // The outer's first run (the inner on constants runs as is), its recomputation
    // (the inner's first run), the inner's recomputation.
    assert_eq!(runs.get(), 3);
}

#[derive(Differentiable, Clone)]
struct Block {
    weight: Matrix<f64, 3, 3>,
    bias: Vector<f64, 3>,
    #[no_derivative]
    gain: f64,
}

#[derive(Differentiable, Clone)]
struct Tower {
    blocks: Vec<Block>,
}

impl BlockTraced {
    fn forward(&self, h: &Var<Vector<f64, 3>>) -> Var<Vector<f64, 3>> {
        h + &(&self.weight.matmul(h) + &self.bias).tanh().scale(self.gain)
    }
}

impl TowerTraced {
    /// The blocks in order, each a checkpoint when asked; the twin is read by
    /// reference and its blocks cloned into the checkpoints.
    fn forward(&self, x: &Vector<f64, 3>, checkpointed: bool) -> Var<f64> {
        let mut h = Var::constant(*x);
        for block in &self.blocks {
            h = match checkpointed {
                true => checkpoint(|(block, h): (BlockTraced, _)| block.forward(&h), &(block.clone(), h)),
                false => block.forward(&h),
            };
        }
        h.dot(&h)
    }
}

#[test]
fn a_derived_model_is_checkpointed_block_by_block() {
    let block = |seed: f64| Block {
        weight: Matrix::from_fn(|[i, j]| ((i * 3 + j) as f64 + seed).sin() * 0.5),
        bias: Vector::from_fn(|[i]| (i as f64 - seed).cos() * 0.1),
        gain: 0.5 + seed,
    };
    let tower = Tower { blocks: vec![block(0.1), block(0.7), block(1.3)] };
    let x = Vector::from_array([0.3, -0.2, 0.9]);
    let plain = grad(|t: TowerTraced| t.forward(&x, false), &tower);
    let checkpointed = grad(|t: TowerTraced| t.forward(&x, true), &tower);
    for (plain, checkpointed) in plain.blocks.iter().zip(&checkpointed.blocks) {
        assert_eq!(checkpointed.weight, plain.weight);
        assert_eq!(checkpointed.bias, plain.bias);
    }
    check_vjp(|t: TowerTraced| t.forward(&x, true), &tower, CheckOptions::f64()).unwrap();
}

type Net = Sequential<(Linear<f64, 4, 8>, Dropout, Relu, Linear<f64, 8, 2>)>;

#[test]
fn dropout_masks_repeat_in_the_recomputation() {
    let x = Tensor::<f64, (Dyn, Const<4>), Heap>::from_shape_fn((Dyn(6), Const), |[r, c]| {
        ((r * 4 + c) as f64).sin()
    });
    let new_net = || -> Net { Sequential((Linear::new(1), Dropout::new(0.5, 9), Relu, Linear::new(2))) };
    let (plain_net, checkpointed_net) = (new_net(), new_net());
    // The checkpointed function is kept until the sweep: it owns its batch (a clone
    // of a heap tensor shares the buffer).
    let loss = move |net: &<Net as fluxion::autodiff::Trace>::Traced| net.forward(&x).sum();
    let plain = grad(|net| loss(&net), &plain_net);
    let checkpointed = grad(|net| checkpoint(move |net| loss(&net), &net), &checkpointed_net);
    assert_eq!(checkpointed.0.weight, plain.0.weight);
    assert_eq!(checkpointed.3.weight, plain.3.weight);
    // One mask drawn by each: both streams are at the same point.
    let (next_plain, next_checkpointed): (Vector<f64, 16>, Vector<f64, 16>) =
        (plain_net.0.1.mask((Const,)), checkpointed_net.0.1.mask((Const,)));
    assert_eq!(next_plain, next_checkpointed);
}

#[test]
#[should_panic(expected = "drew fewer random values when recomputed")]
fn a_recomputation_that_draws_differently_panics() {
    let first_run = Rc::new(Cell::new(true));
    let f = move |x: Var<f64>| {
        if first_run.replace(false) {
            replayable_draw(|| 7);
        }
        x.sin()
    };
    grad(|x: Var<f64>| checkpoint(f.clone(), &x), &0.3);
}

#[test]
fn second_order_goes_through_a_checkpoint() {
    let x: Vector<f64, 3> = Vector::from_array([0.4, -0.7, 1.1]);
    let v: Vector<f64, 3> = Vector::from_array([1.0, 0.5, -2.0]);
    // Forward over reverse: the tape records tensors of dual numbers.
    let energy = |x: &Var<Vector<Dual<f64>, 3>>| x.sin().hadamard(&x.exp()).sum();
    let plain = hvp(|x| energy(&x), &x, &v);
    let checkpointed = hvp(|x| checkpoint(move |x| energy(&x), &x), &x, &v);
    assert_eq!(checkpointed, plain);
}

#[test]
fn constant_inputs_run_the_function_as_is() {
    // Nothing to checkpoint: the function runs on the tape, and the traced value it
    // captures still receives its gradient.
    let g = grad(|w: Var<f64>| checkpoint(move |c: Var<f64>| &c * &w, &Var::constant(2.0)), &5.0);
    assert_eq!(g, 2.0);
}

#[test]
#[should_panic(expected = "a traced value from outside `checkpoint`'s input was used")]
fn a_captured_traced_value_panics() {
    grad(|(w, x): (Var<f64>, Var<f64>)| checkpoint(move |x: Var<f64>| &x * &w, &x), &(2.0, 3.0));
}

type SmallBlock = Sequential<(Linear<f64, 6, 6>, Tanh, Linear<f64, 6, 6>)>;

#[test]
fn a_checkpointed_layer_is_its_inner_layer_with_the_same_gradient() {
    let block = |seed| -> SmallBlock { Sequential((Linear::new(seed), Tanh, Linear::new(seed + 1))) };
    let x = Tensor::<f64, (Dyn, Const<6>), Heap>::from_shape_fn((Dyn(5), Const), |[r, c]| {
        ((r * 6 + c) as f64).cos()
    });
    let classes = [0, 1, 2, 3, 4];
    let checkpointed = Sequential((Checkpointed(block(1)), Relu, Checkpointed(block(3))));
    let plain = Sequential((block(1), Relu, block(3)));
    // Inference on plain tensors: the inner layers.
    assert_eq!(checkpointed.forward(&x), plain.forward(&x));
    let loss = move |y: &Var<Tensor<f64, (Dyn, Const<6>), Heap>>| cross_entropy(y, &classes, Reduction::Mean);
    let (value, gradient) = value_and_grad(|m| loss(&m.forward(&x)), &checkpointed);
    let (expected_value, expected) = value_and_grad(|m| loss(&m.forward(&x)), &plain);
    assert_eq!(value, expected_value);
    assert_eq!(gradient.0.0.weight, expected.0.0.weight);
    assert_eq!(gradient.2.2.bias, expected.2.2.bias);
    check_grad(|m| loss(&m.forward(&x)), &checkpointed, CheckOptions::f64()).unwrap();
    // Parameter names are the inner layer's: a file of one loads into the other.
    let mut names = Vec::new();
    checkpointed.visit_parameters(&mut String::new(), &mut |name, _| names.push(name.to_owned()));
    let mut plain_names = Vec::new();
    plain.visit_parameters(&mut String::new(), &mut |name, _| plain_names.push(name.to_owned()));
    assert_eq!(names, plain_names);
}

#[test]
fn the_node_shares_its_input_values_rather_than_copying_them() {
    // An inline matrix is copied whole by a clone: the node keeps the input's `Var`,
    // whose value it shares with the tape.
    let w: Matrix<f64, 8, 8> = Matrix::from_fn(|[i, j]| ((i * 8 + j) as f64).sin());
    let g = grad(
        |w: Var<Matrix<f64, 8, 8>>| {
            let before = Rc::strong_count(&w.shared_value());
            let y = checkpoint(|w: Var<Matrix<f64, 8, 8>>| w.tanh().sum(), &w);
            assert_eq!(Rc::strong_count(&w.shared_value()), before + 1, "one more holder, no copy");
            y
        },
        &w,
    );
    let expected = grad(|w: Var<Matrix<f64, 8, 8>>| w.tanh().sum(), &w);
    assert_eq!(g, expected);
}

#[test]
fn the_recomputation_drops_what_the_first_run_dropped_whatever_the_evaluation_setting() {
    let x =
        Tensor::<f64, (Dyn, Const<4>), Heap>::from_shape_fn((Dyn(3), Const), |[r, c]| ((r + c) as f64).sin());
    let net: Net = Sequential((Linear::new(1), Dropout::new(0.5, 9), Relu, Linear::new(2)));
    let batch = x.clone();
    let loss = move |net: <Net as fluxion::autodiff::Trace>::Traced| net.forward(&batch).sum();
    // The forward pass in evaluation (no mask), the sweep outside it, and the reverse.
    let (_, mut in_evaluation) = evaluation(|| vjp(|net| checkpoint(loss.clone(), &net), &net));
    let (_, mut plain) = evaluation(|| vjp(&loss, &net));
    assert_eq!(in_evaluation.call(&1.0).0.weight, plain.call(&1.0).0.weight);
    let (_, mut in_training) = vjp(|net| checkpoint(loss.clone(), &net), &net);
    let masked = evaluation(|| in_training.call(&1.0));
    assert_ne!(masked.0.weight, plain.call(&1.0).0.weight, "the first run's mask, not none");
}

#[test]
fn a_pullback_inside_a_checkpoint_may_draw() {
    // A stochastic estimator drawing in its pullback: the backward sweep is not a
    // replay.
    let stream = Rc::new(Cell::new(0u64));
    let drawn = Rc::clone(&stream);
    let noisy = move |x: Var<f64>| {
        let drawn = Rc::clone(&drawn);
        record_unary(&x, 2.0 * x.value(), move |y_bar: &f64| {
            replayable_draw(|| drawn.replace(drawn.get() + 1));
            2.0 * y_bar
        })
    };
    let g = grad(|x: Var<f64>| checkpoint(noisy.clone(), &x), &1.5);
    assert_eq!(g, 2.0);
    assert_eq!(stream.get(), 1);
}

#[derive(Differentiable, Clone)]
struct Pair {
    a: f64,
    b: f64,
}

#[test]
fn a_lifted_traced_struct_is_cloned_into_a_checkpoint() {
    let pair = Pair { a: 0.7, b: -1.3 };
    let direction = PairTangent { a: 1.0, b: 0.5 };
    let energy = |p: &PairLiftedTraced| (&p.a * &p.b).sin() * &p.a;
    let plain = hvp(|p: PairLiftedTraced| energy(&p), &pair, &direction);
    let checkpointed = hvp(
        |p: PairLiftedTraced| {
            let held = &p;
            checkpoint(move |p: PairLiftedTraced| energy(&p), &held.clone())
        },
        &pair,
        &direction,
    );
    assert_eq!((checkpointed.a, checkpointed.b), (plain.a, plain.b));
}

#[test]
#[should_panic(expected = "a traced value from outside `checkpoint`'s input was used")]
fn a_captured_traced_value_returned_as_is_panics_at_once() {
    grad(|(w, x): (Var<f64>, Var<f64>)| checkpoint(move |_: Var<f64>| w.clone(), &x), &(2.0, 3.0));
}

#[test]
fn a_checkpoint_returns_a_tuple_of_outputs() {
    // An LSTM-like cell giving two states, checkpointed step by step.
    let cell = |(w, h, c): (Var<Matrix<f64, 3, 3>>, Var<Vector<f64, 3>>, Var<Vector<f64, 3>>)| {
        let gate = w.matmul(&h).sigmoid();
        let c = &c.hadamard(&gate) + &h.tanh();
        let h = c.tanh().hadamard(&gate);
        (h, c)
    };
    let unrolled = move |checkpointed: bool| {
        move |w: Var<Matrix<f64, 3, 3>>| {
            let (mut h, mut c) =
                (Var::constant(Vector::from_array([0.1, -0.2, 0.3])), Var::constant(Vector::zeros()));
            for _ in 0..5 {
                (h, c) = match checkpointed {
                    true => checkpoint(cell, &(w.clone(), h, c)),
                    false => cell((w.clone(), h, c)),
                };
            }
            &h.sum() + &c.sum()
        }
    };
    let w: Matrix<f64, 3, 3> = Matrix::from_fn(|[i, j]| ((i * 3 + j) as f64 * 0.7).sin());
    assert_eq!(grad(unrolled(true), &w), grad(unrolled(false), &w));
    check_vjp(unrolled(true), &w, CheckOptions::f64()).unwrap();
}
