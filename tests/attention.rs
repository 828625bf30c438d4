//! Multi-head attention: values against the definition (full and causal masks, one
//! head and several), gradients against finite differences and the adjoint identity,
//! forward mode against reverse, second order against differences of the gradient,
//! static mode against the tape, shape errors, and a small decoder that learns.

mod common_grad;

use common_grad::{
    assert_close, assert_hvp_matches_differences, inner, ok, seeded_direction, some_direction,
};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Dual, Lift, differentiable, hvp, jvp};
use fluxion::nn::layer::{
    AttentionModule, Embedding, LayerNorm, Linear, Module, MultiHeadAttention, Relu, Residual, Sequential,
    StaticModule,
};
use fluxion::nn::loss::{Reduction, cross_entropy};
use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
use fluxion::nn::params::Parameters;
use fluxion::nn::prelude::{Heads, Mask, Tokens};
use fluxion::prelude::*;

/// Rows of 6 values: tokens in 2 heads of 3.
type Rows = Tensor<f64, (Dyn, Const<6>), Heap>;

fn rows(count: usize, seed: u64) -> Rows {
    Tensor::random_normal_shaped((Dyn(count), Const), 0.0, 1.0, seed)
}

/// The attention by the definition, one sequence and head at a time: the score
/// matrix, its masked softmax row by row, then the weighted values.
fn reference(q: &Rows, k: &Rows, v: &Rows, heads: usize, tokens: usize, mask: Mask) -> Vec<f64> {
    reference_of(q, (k, v), heads, (tokens, tokens), (mask == Mask::Causal, None))
}

/// [`reference`] for sequences of `query_tokens` queries and `key_tokens` keys, each
/// query seeing the keys up to itself when `causal` and of sequence n only the first
/// `lengths[n]`.
fn reference_of(
    q: &Rows,
    (k, v): (&Rows, &Rows),
    heads: usize,
    (query_tokens, key_tokens): (usize, usize),
    (causal, lengths): (bool, Option<&[usize]>),
) -> Vec<f64> {
    let width = 6 / heads;
    let mut out = vec![0.0; q.len()];
    let at =
        |x: &Rows, tokens: usize, n: usize, t: usize, h: usize, i: usize| x[[n * tokens + t, h * width + i]];
    for n in 0..q.shape().0.size() / query_tokens {
        let length = lengths.map_or(key_tokens, |lengths| lengths[n]);
        for h in 0..heads {
            for t in 0..query_tokens {
                let seen = if causal { (t + 1).min(length) } else { length };
                let scores: Vec<f64> = (0..seen)
                    .map(|u| {
                        (0..width)
                            .map(|i| at(q, query_tokens, n, t, h, i) * at(k, key_tokens, n, u, h, i))
                            .sum::<f64>()
                    })
                    .map(|s| s / (width as f64).sqrt())
                    .collect();
                let total: f64 = scores.iter().map(|s| s.exp()).sum();
                for i in 0..width {
                    let o: f64 =
                        (0..seen).map(|u| scores[u].exp() / total * at(v, key_tokens, n, u, h, i)).sum();
                    out[(n * query_tokens + t) * 6 + h * width + i] = o;
                }
            }
        }
    }
    out
}

#[test]
fn attention_is_the_definition_for_every_mask_and_head_count() {
    let (q, k, v) = (rows(8, 1), rows(8, 2), rows(8, 3));
    for mask in [Mask::Full, Mask::Causal] {
        let two = q.attention(&k, &v, Heads::<2>, Tokens::<4>, mask);
        let one = q.attention(&k, &v, Heads::<1>, Tokens::<4>, mask);
        let six = q.attention(&k, &v, Heads::<6>, Tokens::<2>, mask);
        for (y, heads, tokens) in [(two, 2, 4), (one, 1, 4), (six, 6, 2)] {
            let expected = reference(&q, &k, &v, heads, tokens, mask);
            y.as_slice().iter().zip(&expected).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
        }
    }
}

#[test]
fn a_causal_token_ignores_the_tokens_after_it() {
    let (q, k, v) = (rows(8, 4), rows(8, 5), rows(8, 6));
    let y = q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal);
    // Change the last two tokens of the first sequence: its first two outputs and the
    // whole second sequence stay as they were.
    let changed = |x: &Rows| -> Rows {
        Tensor::from_shape_fn(x.shape(), |[r, c]| if r == 2 || r == 3 { 9.0 } else { x[[r, c]] })
    };
    let z = changed(&q).attention(&changed(&k), &changed(&v), Heads::<2>, Tokens::<4>, Mask::Causal);
    for r in [0, 1, 4, 5, 6, 7] {
        (0..6).for_each(|c| assert_eq!(y[[r, c]], z[[r, c]], "row {r}"));
    }
    assert_ne!(y[[2, 0]], z[[2, 0]]);
    // Without the mask every output of the sequence sees them.
    let full = q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Full);
    let changed_full = changed(&q).attention(&changed(&k), &changed(&v), Heads::<2>, Tokens::<4>, Mask::Full);
    assert_ne!(full[[0, 0]], changed_full[[0, 0]]);
}

type Operands = (Rows, Rows, Rows);
type TracedOperands = (Var<Rows>, Var<Rows>, Var<Rows>);

#[test]
fn gradients_pass_the_checkers() {
    let operands: Operands = (rows(8, 7), rows(8, 8), rows(8, 9));
    for mask in [Mask::Full, Mask::Causal] {
        let f = move |(q, k, v): TracedOperands| q.attention(&k, &v, Heads::<2>, Tokens::<4>, mask);
        ok("attention", check_vjp(f, &operands, CheckOptions::f64()));
        ok(
            "attention",
            check_grad(move |x: TracedOperands| f(x).tanh().sum(), &operands, CheckOptions::f64()),
        );
    }
    // Queries alone traced, keys and values plain.
    let (k, v) = (operands.1.clone(), operands.2.clone());
    let queries_only =
        move |q: Var<Rows>| q.attention(&k, &v, Heads::<3>, Tokens::<2>, Mask::Causal).tanh().sum();
    ok("attention of the queries", check_grad(queries_only, &operands.0, CheckOptions::f64()));
    // One value per head.
    let narrow = |(q, k, v): TracedOperands| q.attention(&k, &v, Heads::<6>, Tokens::<4>, Mask::Full);
    ok("attention in heads of one", check_vjp(narrow, &operands, CheckOptions::f64()));
}

#[test]
fn forward_mode_agrees_with_reverse_mode() {
    let operands: Operands = (rows(8, 10), rows(8, 11), rows(8, 12));
    let loss =
        |(q, k, v): TracedOperands| q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal).tanh().sum();
    let gradient = grad(loss, &operands);
    let direction = some_direction(operands.zero_tangent());
    type Lifted = <Operands as Lift>::Lifted;
    let (_, derivative) = jvp(
        |(q, k, v): Lifted| q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal).tanh().sum(),
        &operands,
        &direction,
    );
    assert_close(derivative, inner(&gradient, &direction), 1e-13);
}

#[differentiable]
fn static_loss(q: &Rows, k: &Rows, v: &Rows) -> f64 {
    q.attention(k, v, Heads::<2>, Tokens::<4>, Mask::Causal).tanh().sum()
}

#[test]
fn static_mode_gives_the_tapes_value_gradient_and_tangent() {
    let operands: Operands = (rows(8, 13), rows(8, 14), rows(8, 15));
    let (q, k, v) = &operands;
    let (value, gradient) = static_loss::value_and_grad(q, k, v);
    let (tape_value, tape_gradient) = value_and_grad(
        |(q, k, v): TracedOperands| q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal).tanh().sum(),
        &operands,
    );
    assert_close(value, tape_value, 1e-14);
    for (a, b) in
        [(&gradient.0, &tape_gradient.0), (&gradient.1, &tape_gradient.1), (&gradient.2, &tape_gradient.2)]
    {
        a.as_slice().iter().zip(b.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    }
    let directions = [0.3, 0.5, 0.7].map(|start| seeded_direction(q.zero_tangent(), start));
    let (_, derivative) = static_loss::jvp(q, k, v, &directions[0], &directions[1], &directions[2]);
    let expected = inner(&gradient.0, &directions[0])
        + inner(&gradient.1, &directions[1])
        + inner(&gradient.2, &directions[2]);
    assert_close(derivative, expected, 1e-12);
}

#[test]
fn a_mismatch_is_an_error_naming_the_shapes() {
    let (q, k) = (rows(8, 16), rows(6, 17));
    let error = q.try_attention(&k, &q, Heads::<2>, Tokens::<2>, Mask::Full).unwrap_err();
    assert_eq!(error.operation(), "attention");
    assert!(error.to_string().contains("[8, 6]") && error.to_string().contains("[6, 6]"), "{error}");
    let error = q.try_attention(&q, &q, Heads::<2>, Tokens::<3>, Mask::Full).unwrap_err();
    assert!(error.to_string().contains("whole number of sequences"), "{error}");
    assert!(q.try_attention(&q, &q, Heads::<2>, Tokens::<0>, Mask::Full).is_err());
}

#[test]
#[should_panic(expected = "whole number of sequences")]
fn the_panicking_form_panics_with_the_message() {
    let q = rows(5, 18);
    let _ = q.attention(&q, &q, Heads::<2>, Tokens::<2>, Mask::Causal);
}

/// A pre-norm decoder block over sequences of L tokens: attention, then a
/// position-wise MLP, each residual.
type BlockOf<const L: usize> = Sequential<(
    Residual<Sequential<(LayerNorm<f64, 6>, MultiHeadAttention<f64, 6, 2, L>)>>,
    Residual<Sequential<(LayerNorm<f64, 6>, Linear<f64, 6, 12>, Relu, Linear<f64, 12, 6>)>>,
)>;
type Block = BlockOf<4>;

fn block<const L: usize>(seed: u64) -> BlockOf<L> {
    let norm = || LayerNorm { weight: Tensor::random_normal(1.0, 0.3, seed), ..LayerNorm::default() };
    Sequential((
        Residual(Sequential((norm(), MultiHeadAttention::new(Mask::Causal, seed + 1)))),
        Residual(Sequential((norm(), Linear::new(seed + 2), Relu, Linear::new(seed + 3)))),
    ))
}

#[test]
fn the_layer_is_its_maps_around_the_attention() {
    let layer = MultiHeadAttention::<f64, 6, 2, 4>::new(Mask::Full, 19);
    let x = rows(8, 20);
    let (q, k, v) = (layer.query.forward(&x), layer.key.forward(&x), layer.value.forward(&x));
    let expected = layer.output.forward(&q.attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Full));
    assert_eq!(layer.forward(&x).as_slice(), expected.as_slice());
    let mut names = Vec::new();
    layer.visit_parameters(&mut String::new(), &mut |name, _| names.push(name.to_string()));
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(
        names.contains(&"query.weight".to_string()) && names.contains(&"output.bias".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_decoder_block_passes_the_checkers_and_second_order_matches_differences() {
    let (model, x): (Block, _) = (block(21), rows(8, 22));
    let loss = |m: <Block as Trace>::Traced| m.forward(&x).tanh().sum();
    ok("block", check_grad(loss, &model, CheckOptions::f64()));
    let both = (model.clone(), x.clone());
    ok(
        "block",
        check_vjp(|(m, x): (<Block as Trace>::Traced, Var<Rows>)| m.forward(&x), &both, CheckOptions::f64()),
    );
    let (v, w) = (some_direction(model.zero_tangent()), seeded_direction(model.zero_tangent(), 0.7));
    let product = hvp(|m: <<Block as Lift>::Lifted as Trace>::Traced| m.forward(&x).tanh().sum(), &model, &v);
    assert_hvp_matches_differences(&model, &v, &w, &product, |moved| grad(loss, moved));
    // Forward mode through the lifted block.
    let gradient = grad(loss, &model);
    let x_dual = x.map(Dual::constant);
    let (_, derivative) = jvp(|m: <Block as Lift>::Lifted| m.forward(&x_dual).tanh().sum(), &model, &v);
    assert_close(derivative, inner(&gradient, &v), 1e-12);
}

#[differentiable(wrt(model))]
fn block_loss(model: &Block, x: &Rows) -> f64 {
    model.apply_batch(x).tanh().sum()
}

#[differentiable]
fn block_and_input_loss(model: &Block, x: &Rows) -> f64 {
    model.apply_batch(x).tanh().sum()
}

type Layer = MultiHeadAttention<f64, 6, 2, 4>;

#[differentiable]
fn layer_loss(layer: &Layer, x: &Rows) -> f64 {
    layer.apply_batch(x).tanh().sum()
}

#[test]
fn the_layer_called_alone_in_static_mode_gives_the_tapes_gradient() {
    let (layer, x) = (Layer::new(Mask::Causal, 39), rows(8, 40));
    let (value, (layer_bar, x_bar)) = layer_loss::value_and_grad(&layer, &x);
    let both = (layer.clone(), x.clone());
    let (tape_value, (tape_layer_bar, tape_x_bar)) =
        value_and_grad(|(m, x): (<Layer as Trace>::Traced, Var<Rows>)| m.forward(&x).tanh().sum(), &both);
    assert_close(value, tape_value, 1e-13);
    let direction = seeded_direction(layer.zero_tangent(), 0.2);
    assert_close(inner(&layer_bar, &direction), inner(&tape_layer_bar, &direction), 1e-12);
    x_bar.as_slice().iter().zip(tape_x_bar.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
    let x_direction = seeded_direction(x.clone(), 0.4);
    let (_, derivative) = layer_loss::jvp(&layer, &x, &direction, &x_direction);
    assert_close(derivative, inner(&layer_bar, &direction) + inner(&x_bar, &x_direction), 1e-12);
}

#[test]
fn a_decoder_block_in_static_mode_gives_the_tapes_gradient() {
    let (model, x): (Block, _) = (block(23), rows(12, 24));
    let (value, gradient) = block_loss::value_and_grad(&model, &x);
    let (tape_value, tape_gradient) =
        value_and_grad(|m: <Block as Trace>::Traced| m.forward(&x).tanh().sum(), &model);
    assert_close(value, tape_value, 1e-13);
    let direction = some_direction(model.zero_tangent());
    assert_close(inner(&gradient, &direction), inner(&tape_gradient, &direction), 1e-12);
    let (_, derivative) = block_loss::jvp(&model, &x, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-12);
    // With the input differentiated too, every coordinate of both gradients.
    let (_, (model_bar, x_bar)) = block_and_input_loss::value_and_grad(&model, &x);
    let both = (model.clone(), x.clone());
    let (_, (tape_model_bar, tape_x_bar)) =
        value_and_grad(|(m, x): (<Block as Trace>::Traced, Var<Rows>)| m.forward(&x).tanh().sum(), &both);
    let reals = |v: &<Block as Differentiable>::Tangent| {
        let mut out = Vec::new();
        v.for_each_real(&mut |c| out.push(c));
        out
    };
    reals(&model_bar).iter().zip(reals(&tape_model_bar)).for_each(|(a, b)| assert_close(*a, b, 1e-12));
    x_bar.as_slice().iter().zip(tape_x_bar.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
}

/// A one-block decoder over a vocabulary of 4 tokens in sequences of 6: embeddings of
/// token and position, the block, a read-out to each position's logits.
type Decoder = (Embedding<f64, 4, 6>, Embedding<f64, 6, 6>, BlockOf<6>, Linear<f64, 6, 4>);

fn logits(model: &<Decoder as Trace>::Traced, tokens: &[usize]) -> Var<Tensor<f64, (Dyn, Const<4>), Heap>> {
    let positions: Vec<usize> = Tokens::<6>.positions(tokens.len()).collect();
    let x = &model.0.forward(tokens) + &model.1.forward(&positions[..]);
    model.3.forward(&model.2.forward(&x))
}

#[test]
fn a_small_decoder_learns_to_recall_the_first_token() {
    // Every position's target is its sequence's first token. Sequence s starts with
    // s mod 4 and continues with (⌊s/4⌋ + t) mod 4: a later token and its position
    // leave the first token open (each of the 4 comes with them once), so only
    // attention to position 0 brings the loss below (5/6)·ln 4 ≈ 1.16.
    let inputs: Vec<usize> =
        (0..16).flat_map(|s| (0..6).map(move |t| if t == 0 { s % 4 } else { (s / 4 + t) % 4 })).collect();
    let targets: Vec<usize> = (0..16).flat_map(|s| [s % 4; 6]).collect();
    let mut model: Decoder = (Embedding::new(27), Embedding::new(28), block(25), Linear::new(29));
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.02, ..AdamConfig::default() });
    let loss_of = |model: &Decoder| {
        value_and_grad(
            |m: <Decoder as Trace>::Traced| cross_entropy(&logits(&m, &inputs), &targets, Reduction::Mean),
            model,
        )
    };
    let first = loss_of(&model).0;
    for _ in 0..200 {
        let (_, gradient) = loss_of(&model);
        adam.step(&mut model, &gradient);
    }
    let last = loss_of(&model).0;
    assert!(last < 0.1, "loss {first} → {last}");
}

/// One sequence of 4 tokens through the block, as a static matrix.
type Sequence = Tensor<f64, (Const<4>, Const<6>), Heap>;

#[differentiable(wrt(x))]
fn block_outputs(model: &Block, x: &Sequence) -> Sequence {
    model.apply_batch(x)
}

#[test]
fn jacfwd_and_jacrev_through_a_decoder_block_agree_with_finite_differences() {
    let model: Block = block(30);
    let x: Sequence = Tensor::random_normal(0.0, 1.0, 31);
    type Jacobian = Tensor<f64, (Const<4>, Const<6>, Const<4>, Const<6>), Heap>;
    let (forward, reverse): (Jacobian, Jacobian) =
        (block_outputs::jacfwd(&model, &x), block_outputs::jacrev(&model, &x));
    let h = 1e-6;
    for (i, j) in [(0, 0), (1, 4), (3, 2)] {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[[i, j]] += h;
        minus[[i, j]] -= h;
        let (p, m) = (block_outputs(&model, &plus), block_outputs(&model, &minus));
        for (a, b) in [(0, 0), (2, 5), (3, 1)] {
            let numeric = (p[[a, b]] - m[[a, b]]) / (2.0 * h);
            assert_close(forward[[a, b, i, j]], reverse[[a, b, i, j]], 1e-12);
            assert!((reverse[[a, b, i, j]] - numeric).abs() < 1e-7, "{} vs {numeric}", reverse[[a, b, i, j]]);
        }
    }
    // Under the causal mask an output does not depend on later tokens.
    assert!((0..6).all(|b| (0..6).all(|j| forward[[1, b, 2, j]] == 0.0 && forward[[0, b, 3, j]] == 0.0)));
}

#[test]
fn one_token_sequences_and_no_rows_are_attended_as_the_definition_says() {
    let (q, k, v, y_bar) = (rows(4, 32), rows(4, 33), rows(4, 34), rows(4, 35));
    let args = (Heads::<2>, Tokens::<1>, Mask::Full);
    // A token alone attends to itself: y = v, and only the values get a cotangent.
    assert_eq!(q.attention(&k, &v, args.0, args.1, args.2).as_slice(), v.as_slice());
    let [q_bar, k_bar, v_bar] = fluxion::ops::attention::attention_pullback([&q, &k, &v], &y_bar, args);
    assert!(q_bar.iter().chain(k_bar.iter()).all(|g| *g == 0.0));
    assert_eq!(v_bar.as_slice(), y_bar.as_slice());
    let none = rows(0, 36);
    assert_eq!(none.attention(&none, &none, Heads::<3>, Tokens::<2>, Mask::Causal).len(), 0);
}

#[test]
#[should_panic(expected = "attention_pullback")]
fn a_cotangent_of_another_shape_is_refused() {
    let (q, y_bar) = (rows(8, 37), rows(4, 38));
    let _ = fluxion::ops::attention::attention_pullback(
        [&q, &q, &q],
        &y_bar,
        (Heads::<2>, Tokens::<4>, Mask::Full),
    );
}

/// Three sequences of 4 tokens with 2, 4 and 1 of them real.
const LENGTHS: [usize; 3] = [2, 4, 1];

#[test]
fn padded_attention_is_the_definition_and_ignores_the_padding() {
    let (q, k, v) = (rows(12, 41), rows(12, 42), rows(12, 43));
    for mask in [Mask::Full, Mask::Causal] {
        let y = q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, mask, &LENGTHS);
        let expected = reference_of(&q, (&k, &v), 2, (4, 4), (mask == Mask::Causal, Some(&LENGTHS)));
        y.as_slice().iter().zip(&expected).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
        // The padding keys and values change nothing, and their rows get no cotangent.
        let padding = |r: usize| matches!(r, 2 | 3 | 9 | 10 | 11);
        let noise = |x: &Rows| -> Rows {
            Tensor::from_shape_fn(x.shape(), |[r, c]| if padding(r) { 50.0 + c as f64 } else { x[[r, c]] })
        };
        let z = q.padded_attention(&noise(&k), &noise(&v), Heads::<2>, Tokens::<4>, mask, &LENGTHS);
        assert_eq!(y.as_slice(), z.as_slice());
        let [_, k_bar, v_bar] = grad(
            |[q, k, v]: [Var<Rows>; 3]| {
                q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, mask, &LENGTHS).sum()
            },
            &[q.clone(), k.clone(), v.clone()],
        );
        for r in (0..12).filter(|&r| padding(r)) {
            (0..6).for_each(|c| assert!(k_bar[[r, c]] == 0.0 && v_bar[[r, c]] == 0.0, "row {r}"));
        }
        assert!(v_bar[[0, 0]] != 0.0);
    }
    // Every key real: the attention without padding.
    let full = q.padded_attention(&k, &v, Heads::<3>, Tokens::<4>, Mask::Causal, &[4, 4, 4]);
    assert_eq!(full.as_slice(), q.attention(&k, &v, Heads::<3>, Tokens::<4>, Mask::Causal).as_slice());
}

/// Queries: 3 sequences of 2 tokens; keys and values: 3 sequences of 5.
fn cross_operands(seed: u64) -> Operands {
    (rows(6, seed), rows(15, seed + 1), rows(15, seed + 2))
}

const KEY_LENGTHS: [usize; 3] = [5, 1, 3];

#[test]
fn cross_attention_is_the_definition() {
    let (q, k, v) = cross_operands(44);
    for (mask, lengths) in [Mask::Full, Mask::Causal]
        .into_iter()
        .flat_map(|mask| [None, Some(&KEY_LENGTHS[..])].map(|lengths| (mask, lengths)))
    {
        for (heads, y) in [
            (2, q.cross_attention(&k, &v, Heads::<2>, Tokens::<2>, Tokens::<5>, mask, lengths)),
            (6, q.cross_attention(&k, &v, Heads::<6>, Tokens::<2>, Tokens::<5>, mask, lengths)),
        ] {
            let expected = reference_of(&q, (&k, &v), heads, (2, 5), (mask == Mask::Causal, lengths));
            y.as_slice().iter().zip(&expected).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
        }
    }
    // More queries than keys (6 to 2 per sequence), causal: query t sees keys 0 to
    // min(t, 1), and the padding.
    let (many, few) = (rows(18, 77), rows(6, 78));
    for lengths in [None, Some(&[2, 1, 2][..])] {
        let y = many.cross_attention(&few, &few, Heads::<2>, Tokens::<6>, Tokens::<2>, Mask::Causal, lengths);
        let expected = reference_of(&many, (&few, &few), 2, (6, 2), (true, lengths));
        y.as_slice().iter().zip(&expected).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    }
    // Queries as many as keys: the same as a full self-attention of the same rows.
    let (k, v) = (rows(6, 47), rows(6, 48));
    let cross = q.cross_attention(&k, &v, Heads::<2>, Tokens::<2>, Tokens::<2>, Mask::Full, None);
    assert_eq!(cross.as_slice(), q.attention(&k, &v, Heads::<2>, Tokens::<2>, Mask::Full).as_slice());
}

#[test]
fn padded_and_cross_attention_gradients_pass_the_checkers() {
    let operands: Operands = (rows(12, 49), rows(12, 50), rows(12, 51));
    for mask in [Mask::Full, Mask::Causal] {
        let f = move |(q, k, v): TracedOperands| {
            q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, mask, &LENGTHS)
        };
        ok("padded attention", check_vjp(f, &operands, CheckOptions::f64()));
        ok("padded attention", check_grad(move |x| f(x).tanh().sum(), &operands, CheckOptions::f64()));
    }
    let operands = cross_operands(52);
    for (mask, lengths) in [(Mask::Full, None), (Mask::Full, Some(&KEY_LENGTHS[..])), (Mask::Causal, None)] {
        let f = move |(q, k, v): TracedOperands| {
            q.cross_attention(&k, &v, Heads::<3>, Tokens::<2>, Tokens::<5>, mask, lengths)
        };
        ok("cross-attention", check_vjp(f, &operands, CheckOptions::f64()));
        ok("cross-attention", check_grad(move |x| f(x).tanh().sum(), &operands, CheckOptions::f64()));
    }
    // The keys and the values one traced memory, the queries a constant.
    let (q, memory) = (operands.0.clone(), operands.1.clone());
    let attend_memory = move |m: Var<Rows>| {
        Var::constant(q.clone())
            .cross_attention(&m, &m, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, Some(&KEY_LENGTHS))
            .tanh()
            .sum()
    };
    ok("cross-attention to one memory", check_grad(attend_memory, &memory, CheckOptions::f64()));
}

#[test]
fn forward_mode_of_padded_and_cross_attention_agrees_with_reverse_mode() {
    type Lifted = <Operands as Lift>::Lifted;
    let operands: Operands = (rows(12, 53), rows(12, 54), rows(12, 55));
    let direction = some_direction(operands.zero_tangent());
    let padded = |(q, k, v): TracedOperands| {
        q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal, &LENGTHS).tanh().sum()
    };
    let (_, derivative) = jvp(
        |(q, k, v): Lifted| {
            q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal, &LENGTHS).tanh().sum()
        },
        &operands,
        &direction,
    );
    assert_close(derivative, inner(&grad(padded, &operands), &direction), 1e-13);
    let operands = cross_operands(56);
    let direction = some_direction(operands.zero_tangent());
    let cross = |(q, k, v): TracedOperands| {
        q.cross_attention(&k, &v, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, Some(&KEY_LENGTHS))
            .tanh()
            .sum()
    };
    let (_, derivative) = jvp(
        |(q, k, v): Lifted| {
            q.cross_attention(&k, &v, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, Some(&KEY_LENGTHS))
                .tanh()
                .sum()
        },
        &operands,
        &direction,
    );
    assert_close(derivative, inner(&grad(cross, &operands), &direction), 1e-13);
}

#[differentiable]
fn padded_loss(q: &Rows, k: &Rows, v: &Rows, lengths: &[usize]) -> f64 {
    q.padded_attention(k, v, Heads::<2>, Tokens::<4>, Mask::Causal, lengths).tanh().sum()
}

#[differentiable]
fn cross_loss(q: &Rows, k: &Rows, v: &Rows, lengths: Option<&[usize]>) -> f64 {
    q.cross_attention(k, v, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, lengths).tanh().sum()
}

/// The static gradient equals the tape's, and the static jvp its inner product with
/// the directions.
fn assert_static_matches_tape(
    operands: &Operands,
    (value, gradient): (f64, Operands),
    tape: impl Fn(TracedOperands) -> Var<f64>,
    static_jvp: impl Fn([&Rows; 3]) -> f64,
) {
    let (tape_value, tape_gradient) = value_and_grad(tape, operands);
    assert_close(value, tape_value, 1e-14);
    for (a, b) in
        [(&gradient.0, &tape_gradient.0), (&gradient.1, &tape_gradient.1), (&gradient.2, &tape_gradient.2)]
    {
        a.as_slice().iter().zip(b.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    }
    let directions = [
        seeded_direction(operands.0.zero_tangent(), 0.3),
        seeded_direction(operands.1.zero_tangent(), 0.5),
        seeded_direction(operands.2.zero_tangent(), 0.7),
    ];
    let expected = inner(&gradient.0, &directions[0])
        + inner(&gradient.1, &directions[1])
        + inner(&gradient.2, &directions[2]);
    assert_close(static_jvp([&directions[0], &directions[1], &directions[2]]), expected, 1e-12);
}

#[test]
fn static_mode_of_padded_and_cross_attention_gives_the_tapes_gradient_and_tangent() {
    let operands: Operands = (rows(12, 57), rows(12, 58), rows(12, 59));
    let (q, k, v) = &operands;
    assert_static_matches_tape(
        &operands,
        padded_loss::value_and_grad(q, k, v, &LENGTHS),
        |(q, k, v)| q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal, &LENGTHS).tanh().sum(),
        |[dq, dk, dv]| padded_loss::jvp(q, k, v, &LENGTHS, dq, dk, dv).1,
    );
    let operands = cross_operands(60);
    let (q, k, v) = &operands;
    for lengths in [None, Some(&KEY_LENGTHS[..])] {
        assert_static_matches_tape(
            &operands,
            cross_loss::value_and_grad(q, k, v, lengths),
            |(q, k, v)| {
                q.cross_attention(&k, &v, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, lengths)
                    .tanh()
                    .sum()
            },
            |[dq, dk, dv]| cross_loss::jvp(q, k, v, lengths, dq, dk, dv).1,
        );
    }
}

#[test]
fn wrong_lengths_and_sequence_counts_are_errors_naming_them() {
    let q = rows(12, 61);
    let message = |lengths: &[usize]| {
        let error = q.try_padded_attention(&q, &q, Heads::<2>, Tokens::<4>, Mask::Full, lengths).unwrap_err();
        assert_eq!(error.operation(), "padded_attention");
        error.to_string()
    };
    assert_eq!(
        message(&[2, 4]),
        "padded_attention: 2 key lengths for 3 sequences (one key length per sequence)"
    );
    assert_eq!(
        message(&[2, 0, 1]),
        "padded_attention: sequence 1 has key length 0, not from 1 to 4 (the key tokens per sequence)"
    );
    assert!(message(&[2, 5, 1]).contains("sequence 1 has key length 5, not from 1 to 4"));
    let (k, v) = (rows(15, 62), rows(10, 63));
    let error =
        q.try_cross_attention(&k, &k, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, None).unwrap_err();
    assert!(error.to_string().contains("as many sequences"), "{error}");
    let error =
        q.try_cross_attention(&k, &v, Heads::<2>, Tokens::<4>, Tokens::<5>, Mask::Full, None).unwrap_err();
    assert!(
        error.to_string().contains("[15, 6]") && error.to_string().contains("the keys and values"),
        "{error}"
    );
    let error = q
        .try_cross_attention(&k, &k, Heads::<2>, Tokens::<4>, Tokens::<5>, Mask::Full, Some(&[5, 5, 6]))
        .unwrap_err();
    assert!(error.to_string().contains("sequence 2 has key length 6, not from 1 to 5"), "{error}");
}

#[test]
#[should_panic(expected = "one key length per sequence")]
fn the_traced_padded_attention_panics_with_the_message() {
    let q = Var::constant(rows(8, 64));
    let _ = q.padded_attention(&q, &q, Heads::<2>, Tokens::<4>, Mask::Full, &[1, 2, 3]);
}

#[test]
fn the_layer_over_padded_sequences_and_to_a_memory_is_its_maps_around_the_attention() {
    let layer = MultiHeadAttention::<f64, 6, 2, 4>::new(Mask::Causal, 65);
    let (x, memory) = (rows(12, 66), rows(15, 67));
    let (q, k, v) = (layer.query.forward(&x), layer.key.forward(&x), layer.value.forward(&x));
    let padded =
        layer.output.forward(&q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal, &LENGTHS));
    // The inherent (static) form and the trait's give the definition.
    assert_eq!(layer.forward_padded(&x, &LENGTHS).as_slice(), padded.as_slice());
    assert_eq!(AttentionModule::forward_padded(&layer, &x, &LENGTHS).as_slice(), padded.as_slice());
    let (mk, mv) = (layer.key.forward(&memory), layer.value.forward(&memory));
    let crossed = layer.output.forward(&q.cross_attention(
        &mk,
        &mv,
        Heads::<2>,
        Tokens::<4>,
        Tokens::<5>,
        Mask::Causal,
        Some(&KEY_LENGTHS),
    ));
    let args = (Tokens::<5>, Some(&KEY_LENGTHS[..]));
    assert_eq!(layer.forward_to(&x, &memory, args.0, args.1).as_slice(), crossed.as_slice());
    assert_eq!(
        AttentionModule::forward_to(&layer, &x, &memory, args.0, args.1).as_slice(),
        crossed.as_slice()
    );
}

#[differentiable(wrt(layer, x))]
fn padded_layer_loss(layer: &Layer, x: &Rows, lengths: &[usize]) -> f64 {
    layer.forward_padded(x, lengths).tanh().sum()
}

#[differentiable(wrt(layer, x, memory))]
fn cross_layer_loss(layer: &Layer, x: &Rows, memory: &Rows, lengths: Option<&[usize]>) -> f64 {
    layer.forward_to(x, memory, Tokens::<5>, lengths).tanh().sum()
}

#[test]
fn the_layers_padded_and_cross_forms_agree_in_every_mode() {
    type Traced = <Layer as Trace>::Traced;
    let (layer, x, memory) = (Layer::new(Mask::Full, 68), rows(12, 69), rows(15, 70));
    // The tape: the checkers, through the traced layer.
    let padded = |(m, x): (Traced, Var<Rows>)| m.forward_padded(&x, &LENGTHS).tanh().sum();
    ok("padded layer", check_grad(padded, &(layer.clone(), x.clone()), CheckOptions::f64()));
    let crossed = |(m, x, memory): (Traced, Var<Rows>, Var<Rows>)| {
        m.forward_to(&x, &memory, Tokens::<5>, Some(&KEY_LENGTHS)).tanh().sum()
    };
    let all = (layer.clone(), x.clone(), memory.clone());
    ok("cross layer", check_grad(crossed, &all, CheckOptions::f64()));
    // Static mode: the tape's value and gradient; its jvp by the adjoint identity.
    let (value, (layer_bar, x_bar)) = padded_layer_loss::value_and_grad(&layer, &x, &LENGTHS);
    let (tape_value, (tape_layer_bar, tape_x_bar)) = value_and_grad(padded, &(layer.clone(), x.clone()));
    assert_close(value, tape_value, 1e-13);
    let direction = seeded_direction(layer.zero_tangent(), 0.2);
    assert_close(inner(&layer_bar, &direction), inner(&tape_layer_bar, &direction), 1e-12);
    x_bar.as_slice().iter().zip(tape_x_bar.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
    // The traced layer takes plain rows as constants.
    let (_, layer_only) = value_and_grad(|m: Traced| m.forward_padded(&x, &LENGTHS).tanh().sum(), &layer);
    assert_close(inner(&layer_only, &direction), inner(&tape_layer_bar, &direction), 1e-12);
    let x_direction = seeded_direction(x.clone(), 0.4);
    let (_, derivative) = padded_layer_loss::jvp(&layer, &x, &LENGTHS, &direction, &x_direction);
    assert_close(derivative, inner(&layer_bar, &direction) + inner(&x_bar, &x_direction), 1e-12);
    let (value, (layer_bar, x_bar, memory_bar)) =
        cross_layer_loss::value_and_grad(&layer, &x, &memory, Some(&KEY_LENGTHS));
    let (tape_value, (tape_layer_bar, tape_x_bar, tape_memory_bar)) = value_and_grad(crossed, &all);
    assert_close(value, tape_value, 1e-13);
    assert_close(inner(&layer_bar, &direction), inner(&tape_layer_bar, &direction), 1e-12);
    x_bar.as_slice().iter().zip(tape_x_bar.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
    memory_bar
        .as_slice()
        .iter()
        .zip(tape_memory_bar.as_slice())
        .for_each(|(a, b)| assert_close(*a, *b, 1e-12));
    // Forward mode through the lifted layer.
    let (memory_dual, lengths) = (memory.map(Dual::constant), Some(&KEY_LENGTHS[..]));
    let (_, derivative) = jvp(
        |m: <Layer as Lift>::Lifted| {
            m.forward_to(&x.map(Dual::constant), &memory_dual, Tokens::<5>, lengths).tanh().sum()
        },
        &layer,
        &direction,
    );
    assert_close(derivative, inner(&tape_layer_bar, &direction), 1e-12);
}

/// An encoder–decoder in miniature over a vocabulary of 4: the memory is the
/// embedding of 5 tokens (3 to 5 of them real) and their positions; each of 2
/// queries, its position's embedding, cross-attends to it and reads out a token.
type Reader = (
    Embedding<f64, 4, 6>,
    Embedding<f64, 5, 6>,
    Embedding<f64, 2, 6>,
    MultiHeadAttention<f64, 6, 2, 2>,
    Linear<f64, 6, 4>,
);

#[test]
fn a_decoder_learns_to_read_its_memory_through_cross_attention() {
    // Query p's target is memory token p; sequence s's tokens run (s + 3u) mod 4, so
    // that no position alone tells the target.
    let sequences = 16;
    let memory_tokens: Vec<usize> =
        (0..sequences).flat_map(|s| (0..5).map(move |u| (s + 3 * u + s / 4) % 4)).collect();
    let lengths: Vec<usize> = (0..sequences).map(|s| 3 + s % 3).collect();
    let targets: Vec<usize> = (0..sequences).flat_map(|s| [0, 1].map(|p| memory_tokens[s * 5 + p])).collect();
    let (memory_positions, query_positions): (Vec<usize>, Vec<usize>) =
        (Tokens::<5>.positions(sequences * 5).collect(), Tokens::<2>.positions(sequences * 2).collect());
    let mut model: Reader = (
        Embedding::new(71),
        Embedding::new(72),
        Embedding::new(73),
        MultiHeadAttention::new(Mask::Full, 74),
        Linear::new(75),
    );
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.03, ..AdamConfig::default() });
    let loss_of = |model: &Reader| {
        value_and_grad(
            |m: <Reader as Trace>::Traced| {
                let memory = &m.0.forward(&memory_tokens[..]) + &m.1.forward(&memory_positions[..]);
                let queries = m.2.forward(&query_positions[..]);
                let read = m.3.forward_to(&queries, &memory, Tokens::<5>, Some(&lengths));
                cross_entropy(&m.4.forward(&read), &targets, Reduction::Mean)
            },
            model,
        )
    };
    let first = loss_of(&model).0;
    for _ in 0..300 {
        let (_, gradient) = loss_of(&model);
        adam.step(&mut model, &gradient);
    }
    let last = loss_of(&model).0;
    // Without reading the memory the loss stays near ln 4 ≈ 1.39.
    assert!(last < 0.1, "loss {first} → {last}");
}

#[differentiable(wrt(logits))]
fn real_tokens_loss(logits: &Rows, rows: &[usize], classes: &[usize]) -> f64 {
    fluxion::nn::per_example::mean_cross_entropy(&logits.gather_rows(rows), classes)
}

#[test]
fn a_loss_over_the_real_tokens_gathers_their_rows() {
    let real: Vec<usize> = Tokens::<4>.unpadded_rows(&LENGTHS).collect();
    assert_eq!(real, [0, 1, 4, 5, 6, 7, 8]);
    let (logits, targets) = (rows(12, 76), [3, 1, 0, 0, 2, 5, 4, 1, 0, 0, 0, 0]);
    let classes: Vec<usize> = real.iter().map(|&row| targets[row]).collect();
    let (value, gradient) = value_and_grad(
        |z: Var<Rows>| cross_entropy(&z.gather_rows(&real), &classes, Reduction::Mean),
        &logits,
    );
    // The mean over the real rows alone; the padding rows get no gradient.
    let p = logits.log_softmax(Axis::<1>);
    let expected = -real.iter().zip(&classes).map(|(&row, &class)| p[[row, class]]).sum::<f64>() / 7.0;
    assert_close(value, expected, 1e-14);
    assert!([2, 3, 9, 10, 11].iter().all(|&row| (0..6).all(|c| gradient[[row, c]] == 0.0)));
    assert!(gradient[[0, 3]] < 0.0);
    // Static mode gathers the same rows.
    let (static_value, static_gradient) = real_tokens_loss::value_and_grad(&logits, &real, &classes);
    assert_close(static_value, value, 1e-14);
    static_gradient.as_slice().iter().zip(gradient.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
}

#[test]
#[should_panic(expected = "sequence 1 has 5 tokens, more than 4")]
fn a_length_beyond_the_sequence_is_refused_when_gathering() {
    let _ = Tokens::<4>.unpadded_rows(&[2, 5]).count();
}

#[test]
fn the_public_cross_attention_derivatives_serve_the_padded_attention_too() {
    use fluxion::ops::attention::{cross_attention_pullback, cross_attention_push};
    let ([q, k, v], y_bar) = ([79, 80, 81].map(|seed| rows(12, seed)), rows(12, 82));
    let arguments = (Heads::<2>, Tokens::<4>, Tokens::<4>, Mask::Causal, Some(&LENGTHS[..]));
    let (q_bar, [k_bar, v_bar]) = cross_attention_pullback((&q, [&k, &v]), &y_bar, arguments);
    // ⟨ȳ, y⟩'s gradient on the tape.
    let [tape_q, tape_k, tape_v] = grad(
        |[q, k, v]: [Var<Rows>; 3]| {
            q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, Mask::Causal, &LENGTHS)
                .dot(&Var::constant(y_bar.clone()))
        },
        &[q.clone(), k.clone(), v.clone()],
    );
    for (bar, tape) in [(&q_bar, &tape_q), (&k_bar, &tape_k), (&v_bar, &tape_v)] {
        bar.as_slice().iter().zip(tape.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    }
    // The adjoint identity: ⟨ȳ, ẏ⟩ = ⟨q̄, q̇⟩ + ⟨k̄, k̇⟩ + ⟨v̄, v̇⟩.
    let dots = [83, 84, 85].map(|seed| rows(12, seed));
    let y_dot = cross_attention_push((&q, [&k, &v]), (&dots[0], [&dots[1], &dots[2]]), arguments);
    let pushed = y_bar.dot(&y_dot);
    let pulled = q_bar.dot(&dots[0]) + k_bar.dot(&dots[1]) + v_bar.dot(&dots[2]);
    assert_close(pushed, pulled, 1e-13);
}
