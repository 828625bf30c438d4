//! An encoder–decoder transformer that learns to reverse sequences of different
//! lengths: the sources padded to L tokens attend among their real tokens
//! (`forward_padded`), a causal decoder reads the encoder's output by
//! cross-attention (`forward_to`), and the loss covers the real tokens alone
//! (`Tokens::unpadded_rows`, `gather_rows`: PyTorch's `ignore_index`).
//!
//! `cargo run --release --example reverse`

use fluxion::nn::layer::{
    AttentionModule, Embedding, LayerNorm, Linear, Module, MultiHeadAttention, Relu, Sequential,
};
use fluxion::nn::loss::{Reduction, accuracy, cross_entropy};
use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
use fluxion::nn::prelude::{Mask, Tokens};
use fluxion::prelude::*;

/// Tokens per sequence, source and target.
const L: usize = 8;
/// Width of a token, in 4 heads.
const D: usize = 32;
/// The padding token, the decoder's start token, then 6 symbols.
const PADDING: usize = 0;
const START: usize = 1;
const VOCABULARY: usize = 8;

type Rows<const C: usize> = Tensor<f64, (Dyn, Const<C>), Heap>;
type Attention = MultiHeadAttention<f64, D, 4, L>;
type FeedForward = Sequential<(LayerNorm<f64, D>, Linear<f64, D, 64>, Relu, Linear<f64, 64, D>)>;

#[derive(Differentiable, Clone)]
struct Reverser {
    source: Embedding<f64, VOCABULARY, D>,
    target: Embedding<f64, VOCABULARY, D>,
    position: Embedding<f64, L, D>,
    encoder_norm: LayerNorm<f64, D>,
    encoder: Attention,
    encoder_feed_forward: FeedForward,
    memory_norm: LayerNorm<f64, D>,
    decoder_norm: LayerNorm<f64, D>,
    decoder: Attention,
    cross_norm: LayerNorm<f64, D>,
    cross: Attention,
    decoder_feed_forward: FeedForward,
    output_norm: LayerNorm<f64, D>,
    output: Linear<f64, D, VOCABULARY>,
}

fn feed_forward(seed: u64) -> FeedForward {
    Sequential((LayerNorm::default(), Linear::new(seed), Relu, Linear::new(seed + 1)))
}

/// Sequences as rows, L per sequence: the sources, the decoder's inputs (the start
/// token, then the reversed source but its last token), the targets (the reversed
/// source) and each source's real tokens.
struct Batch {
    sources: Vec<usize>,
    inputs: Vec<usize>,
    targets: Vec<usize>,
    lengths: Vec<usize>,
}

impl Batch {
    /// `count` sequences of 1 to L random symbols, from `seed`.
    fn new(count: usize, seed: u64) -> Batch {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut draw = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut batch = Batch { sources: vec![], inputs: vec![], targets: vec![], lengths: vec![] };
        for _ in 0..count {
            let length = 1 + draw(L);
            let source: Vec<usize> = (0..length).map(|_| 2 + draw(VOCABULARY - 2)).collect();
            let reversed: Vec<usize> = source.iter().rev().copied().collect();
            for t in 0..L {
                batch.sources.push(source.get(t).copied().unwrap_or(PADDING));
                batch.inputs.push(if t == 0 {
                    START
                } else {
                    reversed.get(t - 1).copied().unwrap_or(PADDING)
                });
                batch.targets.push(reversed.get(t).copied().unwrap_or(PADDING));
            }
            batch.lengths.push(length);
        }
        batch
    }
}

impl ReverserTraced {
    /// Every decoder position's logits.
    fn logits(&self, batch: &Batch) -> Var<Rows<VOCABULARY>> {
        let positions: Vec<usize> = Tokens::<L>.positions(batch.sources.len()).collect();
        let position = self.position.forward(&positions[..]);
        // The encoder: its tokens never attend to the padding.
        let x = &self.source.forward(&batch.sources[..]) + &position;
        let x = &x + &self.encoder.forward_padded(&self.encoder_norm.forward(&x), &batch.lengths);
        let x = &x + &self.encoder_feed_forward.forward(&x);
        let memory = self.memory_norm.forward(&x);
        // The decoder: causal, then reading the memory's real tokens.
        let y = &self.target.forward(&batch.inputs[..]) + &position;
        let y = &y + &self.decoder.forward(&self.decoder_norm.forward(&y));
        let read =
            self.cross.forward_to(&self.cross_norm.forward(&y), &memory, Tokens::<L>, Some(&batch.lengths));
        let y = &y + &read;
        let y = &y + &self.decoder_feed_forward.forward(&y);
        self.output.forward(&self.output_norm.forward(&y))
    }
}

/// The real tokens' rows and their targets.
fn real_tokens(batch: &Batch) -> (Vec<usize>, Vec<usize>) {
    let rows: Vec<usize> = Tokens::<L>.unpadded_rows(&batch.lengths).collect();
    let targets = rows.iter().map(|&row| batch.targets[row]).collect();
    (rows, targets)
}

fn main() {
    let mut model = Reverser {
        source: Embedding::new(1),
        target: Embedding::new(2),
        position: Embedding::new(3),
        encoder_norm: LayerNorm::default(),
        encoder: MultiHeadAttention::new(Mask::Full, 4),
        encoder_feed_forward: feed_forward(5),
        memory_norm: LayerNorm::default(),
        decoder_norm: LayerNorm::default(),
        decoder: MultiHeadAttention::new(Mask::Causal, 7),
        cross_norm: LayerNorm::default(),
        cross: MultiHeadAttention::new(Mask::Full, 8),
        decoder_feed_forward: feed_forward(9),
        output_norm: LayerNorm::default(),
        output: Linear::new(11),
    };
    let mut adam = Adam::new(AdamConfig { learning_rate: 3e-3, ..AdamConfig::default() });
    for step in 0..=400 {
        let batch = Batch::new(64, step + 100);
        let (rows, targets) = real_tokens(&batch);
        let (loss, gradient) = value_and_grad(
            |m: ReverserTraced| {
                cross_entropy(&m.logits(&batch).gather_rows(&rows), &targets, Reduction::Mean)
            },
            &model,
        );
        adam.step(&mut model, &gradient);
        if step % 100 == 0 {
            println!("step {step:3}: loss {loss:.4}");
        }
    }
    // Each real target token of unseen sequences, the decoder given the reversed
    // source so far (teacher forcing).
    let test = Batch::new(256, 1);
    let (rows, targets) = real_tokens(&test);
    let logits = model.as_constant().logits(&test).value().gather_rows(&rows);
    let correct = accuracy(&logits, &targets);
    println!("tokens right on unseen sequences: {:.2} %", 100.0 * correct);
    assert!(correct > 0.97, "the reverser did not learn: {correct}");
}
