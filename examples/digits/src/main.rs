//! Trains an MLP 64→64→10 on the UCI handwritten digits (1797 images of 8×8 grey
//! levels, `data/digits.csv.gz`) on a seeded, stratified 80/20 split: Adam with a
//! cosine learning-rate schedule and gradient clipping, a progress bar with the
//! running loss, the loss curve drawn to `target/digits-loss.png`, the trained
//! parameters saved to `target/digits.safetensors` and loaded back into a fresh
//! model for the final evaluation, and a checkpoint of the model and the optimiser
//! saved beside them.
//!
//! ```sh
//! cargo run --release -p fluxion-digits
//! ```
//!
//! A package of its own (`examples/digits`), so that this builds only what it uses.

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use flate2::read::GzDecoder;
use fluxion::autodiff::value_and_grad_into;
use fluxion::data::{Dataset, Order};
use fluxion::nn::io;
use fluxion::nn::prelude::*;
use fluxion::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

mod text;

/// 8×8 grey levels.
const PIXELS: usize = 64;
type Mlp = Sequential<(Linear<f32, PIXELS, 64>, Relu, Linear<f32, 64, 10>)>;
type Images = Tensor<f32, (Dyn, Const<PIXELS>), Heap>;

const EPOCHS: usize = 30;
const BATCH: usize = 32;
const SEED: u64 = 7;

/// The images (grey levels scaled to [0, 1]) and their labels.
fn read_digits(path: &Path) -> Result<Dataset<f32, PIXELS>, Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .has_headers(true)
        .from_reader(GzDecoder::new(File::open(path)?));
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record?;
        let values = record.iter().map(str::parse::<f32>).collect::<Result<Vec<_>, _>>()?;
        let (image, label) = values.split_at(PIXELS);
        pixels.extend(image.iter().map(|grey| grey / 16.0));
        labels.push(label[0] as usize);
    }
    let images = Images::from_shape_vec((Dyn(labels.len()), Const), pixels)?;
    Ok(Dataset::new(images, labels)?)
}

/// The loss curve's size in pixels.
const PLOT_SIZE: (u32, u32) = (640, 400);

/// The loss curve as a PNG, x the epoch and y the mean training loss, with their
/// ticks: plotters draws into an RGB buffer and the `png` crate encodes it.
fn draw_loss_curve(losses: &[f32], path: &Path) -> Result<(), Box<dyn Error>> {
    let (width, height) = PLOT_SIZE;
    let mut pixels = vec![0u8; 3 * width as usize * height as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let top = losses.iter().cloned().fold(0.0f32, f32::max) * 1.05;
        let epochs = losses.len() as f32;
        let mut chart = ChartBuilder::on(&root)
            .margin(20)
            .x_label_area_size(2 * text::HEIGHT + 16)
            .y_label_area_size(text::width("0.0") + 14)
            .build_cartesian_2d(0f32..epochs, 0f32..top)?;
        chart.draw_series(LineSeries::new([(0.0, top), (0.0, 0.0), (epochs, 0.0)], BLACK.stroke_width(1)))?;
        chart.draw_series(LineSeries::new(
            losses.iter().enumerate().map(|(epoch, &loss)| ((epoch + 1) as f32, loss)),
            BLUE.stroke_width(2),
        ))?;
        // Ticks: every fifth epoch, and every half unit of loss below the top.
        for epoch in (0..=losses.len()).step_by(5) {
            let (x, y) = chart.backend_coord(&(epoch as f32, 0.0));
            root.draw(&PathElement::new([(x, y), (x, y + 4)], BLACK))?;
            let label = epoch.to_string();
            text::draw(&root, &label, (x - text::width(&label) / 2, y + 7))?;
        }
        for half_units in (0..).take_while(|&k| k as f32 * 0.5 <= top) {
            let loss = half_units as f32 * 0.5;
            let (x, y) = chart.backend_coord(&(0.0, loss));
            root.draw(&PathElement::new([(x - 4, y), (x, y)], BLACK))?;
            let label = format!("{loss:.1}");
            text::draw(&root, &label, (x - 7 - text::width(&label), y - text::HEIGHT / 2))?;
        }
        let (right, bottom) = chart.backend_coord(&(epochs, 0.0));
        let (left, upper) = chart.backend_coord(&(0.0, top));
        text::draw(&root, "epoch", ((left + right - text::width("epoch")) / 2, bottom + 10 + text::HEIGHT))?;
        text::draw(&root, "loss", (left - text::width("loss") / 2, upper - 8 - text::HEIGHT))?;
        root.present()?;
    }
    let mut encoder = png::Encoder::new(BufWriter::new(File::create(path)?), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let digits = read_digits(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv.gz")))?;
    let (train, test) = digits.train_test_split(0.2, SEED);
    println!("{} training images, {} test images", train.len(), test.len());

    let mut model: Mlp = Sequential((Linear::new(SEED), Relu, Linear::new(SEED + 1)));
    let mut adam = Adam::new(AdamConfig { learning_rate: 3e-3, ..AdamConfig::default() });
    let schedule = CosineDecay { initial: 3e-3, minimum: 1e-4, steps: EPOCHS };
    let mut gradient = model.zero_tangent();

    let steps_per_epoch = train.len().div_ceil(BATCH);
    let progress = ProgressBar::new((EPOCHS * steps_per_epoch) as u64)
        .with_style(ProgressStyle::with_template("{bar:40} epoch {msg} [{elapsed}]")?);
    let mut losses = Vec::new();
    for epoch in 0..EPOCHS {
        adam.set_learning_rate(schedule.rate(epoch));
        let mut total = 0.0;
        for (images, labels) in train.batches(BATCH, Order::Shuffled(SEED + epoch as u64)) {
            let images = Var::constant(images);
            let loss = value_and_grad_into(
                |m: <Mlp as Trace>::Traced| cross_entropy(&m.forward(&images), &labels, Reduction::Mean),
                &model,
                &mut gradient,
            );
            clip_grad_norm(&mut gradient, 5.0);
            adam.step(&mut model, &gradient);
            total += loss * labels.len() as f32;
            progress.inc(1);
            progress.set_message(format!("{}/{EPOCHS}, loss {:.4}", epoch + 1, total / train.len() as f32));
        }
        losses.push(total / train.len() as f32);
    }
    progress.finish();

    // The workspace's `target/`, two levels above this package.
    let target = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target"));
    std::fs::create_dir_all(target)?;
    let target = &target.canonicalize()?;
    draw_loss_curve(&losses, &target.join("digits-loss.png"))?;
    let parameters = target.join("digits.safetensors");
    io::save(&model, &parameters)?;
    let mut restored: Mlp = Sequential((Linear::new(0), Relu, Linear::new(0)));
    io::load(&mut restored, &parameters)?;
    assert_eq!(restored, model, "the file holds the trained parameters, bit for bit");
    // A checkpoint of the model and the optimiser, to resume training where it stopped.
    let checkpoint = target.join("digits-checkpoint.safetensors");
    io::save_checkpoint(&model, &adam, &checkpoint)?;
    let (mut resumed_model, mut resumed_adam): (Mlp, _) =
        (Sequential((Linear::new(0), Relu, Linear::new(0))), Adam::new(AdamConfig::default()));
    io::load_checkpoint(&mut resumed_model, &mut resumed_adam, &checkpoint)?;
    assert!(
        resumed_model == model
            && resumed_adam.steps() == adam.steps()
            && resumed_adam.config() == adam.config()
    );

    let train_accuracy = accuracy(&restored.forward(train.features()), train.labels());
    let test_accuracy = accuracy(&restored.forward(test.features()), test.labels());
    println!("final loss {:.4}", losses[EPOCHS - 1]);
    println!("accuracy: training {:.1}%, test {:.1}%", 100.0 * train_accuracy, 100.0 * test_accuracy);
    println!("loss curve: {}", target.join("digits-loss.png").display());
    println!("parameters: {}", parameters.display());
    println!("checkpoint (model and optimiser): {}", checkpoint.display());
    if test_accuracy < 0.96 {
        return Err(format!("test accuracy {:.1}% is below 96%", 100.0 * test_accuracy).into());
    }
    Ok(())
}
