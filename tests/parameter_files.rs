//! Parameter files: names from field paths, bit-exact round trips, and every kind of
//! mismatch or damage refused with the model left as it was.

use fluxion::nn::io::{self, ParameterFileError};
use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::nn::params::Parameters;
use fluxion::prelude::*;

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Encoder {
    layers: Vec<Linear<f64, 3, 3>>,
    scale: f64,
    projection: Matrix<f32, 2, 3, Heap>,
    #[no_derivative]
    label: String,
}

fn encoder(seed: u64, layers: usize) -> Encoder {
    Encoder {
        layers: (0..layers as u64).map(|i| Linear::new(seed + 10 * i)).collect(),
        scale: 0.5 + seed as f64,
        projection: Matrix::random_normal(0.0, 1.0, seed + 99),
        label: format!("encoder {seed}"),
    }
}

fn names<P: Parameters>(model: &P) -> Vec<String> {
    model.parameter_shapes().into_iter().map(|(name, _)| name).collect()
}

#[test]
fn names_follow_the_field_paths() {
    assert_eq!(
        names(&encoder(1, 2)),
        ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "scale", "projection"]
    );
    let sequential = Sequential((Linear::<f32, 2, 2>::new(1), Relu, Linear::<f32, 2, 1>::new(2)));
    assert_eq!(names(&sequential), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(sequential.parameter_count(), 4 + 2 + 2 + 1);
    // A complex element counts as its two parts.
    let complex: Vector<Complex64, 3> = Vector::zeros();
    assert_eq!(
        (complex.parameter_count(), complex.parameter_shapes()),
        (6, vec![(String::new(), vec![3, 2])])
    );
}

#[test]
fn a_round_trip_is_bit_exact() {
    let mut model = encoder(1, 2);
    // Values whose bits a decimal round trip would lose or change.
    model.scale = f64::from_bits(0x3FB9_9999_9999_999A);
    model.layers[0].bias[[0]] = -0.0;
    model.layers[0].bias[[1]] = f64::NAN;
    model.projection[[1, 2]] = f32::MIN_POSITIVE / 3.0;
    let path = std::env::temp_dir().join(format!("fluxion-round-trip-{}.safetensors", std::process::id()));
    io::save(&model, &path).unwrap();
    let mut restored = encoder(2, 2);
    io::load(&mut restored, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let bits = |m: &Encoder| {
        let mut bits = Vec::new();
        m.visit_parameters(&mut String::new(), &mut |_, leaf| match leaf.elements {
            fluxion::nn::params::Elements::F32(v) => bits.extend(v.iter().map(|x| x.to_bits() as u64)),
            fluxion::nn::params::Elements::F64(v) => bits.extend(v.iter().map(|x| x.to_bits())),
        });
        bits
    };
    assert_eq!(bits(&restored), bits(&model));
    assert_eq!(restored.label, "encoder 2", "constants are not parameters");
}

/// Loads `bytes` into a fresh model and checks that the model did not change.
fn refused(bytes: &[u8], mut model: Encoder) -> ParameterFileError {
    let before = model.clone();
    let error = io::load_bytes(&mut model, bytes).unwrap_err();
    assert_eq!(format!("{model:?}"), format!("{before:?}"), "the model changed on {error}");
    error
}

#[test]
fn a_missing_or_extra_tensor_is_named() {
    let two = io::to_bytes(&encoder(1, 2)).unwrap();
    let three = io::to_bytes(&encoder(1, 3)).unwrap();
    // Every name is listed, sorted.
    let missing = refused(&two, encoder(5, 3));
    assert_eq!(missing.to_string(), "parameters missing from the file: `layers.2.bias`, `layers.2.weight`");
    let extra = refused(&three, encoder(5, 2));
    assert_eq!(
        extra.to_string(),
        "parameters in the file but not in the model: `layers.2.bias`, `layers.2.weight`"
    );
    // Ten names at most.
    let many = refused(&two, encoder(5, 8));
    assert!(many.to_string().ends_with("`layers.6.bias`, `layers.6.weight` and 2 more"), "{many}");
    // A renamed field: both lists at once.
    let renamed = refused(&io::to_bytes(&Sequential((Linear::<f64, 3, 3>::new(1),))).unwrap(), encoder(5, 1));
    assert!(
        matches!(&renamed, ParameterFileError::Names { missing, unexpected }
        if missing.len() == 4 && unexpected == &["0.bias", "0.weight"]),
        "{renamed}"
    );
    assert!(renamed.to_string().contains("missing from the file: `layers.0.bias`, `layers.0.weight`, `projection`, `scale`; parameters in the file"), "{renamed}");
}

#[test]
fn another_shape_or_element_type_is_named() {
    let small = Sequential((Linear::<f64, 3, 3>::new(1), Linear::<f64, 3, 3>::new(2)));
    let bytes = io::to_bytes(&small).unwrap();
    let mut wider = Sequential((Linear::<f64, 3, 4>::new(1), Linear::<f64, 4, 3>::new(2)));
    let error = io::load_bytes(&mut wider, &bytes).unwrap_err();
    assert_eq!(error.to_string(), "parameter `0.weight`: the model has shape [4, 3], the file [3, 3]");
    let mut single = Sequential((Linear::<f32, 3, 3>::new(1), Linear::<f32, 3, 3>::new(2)));
    let before = single.clone();
    let error = io::load_bytes(&mut single, &bytes).unwrap_err();
    assert_eq!(error.to_string(), "parameter `0.weight`: the model holds F32, the file F64");
    assert_eq!(single, before);
}

#[test]
fn a_truncated_or_corrupted_file_is_refused() {
    let bytes = io::to_bytes(&encoder(1, 2)).unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let error = refused(&bytes[..cut], encoder(3, 2));
        assert!(matches!(error, ParameterFileError::Format(_)), "cut at {cut}: {error}");
    }
    // The header's length field is damage the format sees; a changed byte in the
    // JSON header may instead rename a tensor, seen as a missing parameter.
    for position in [0, 7] {
        let mut corrupted = bytes.clone();
        corrupted[position] ^= 0x5A;
        let error = refused(&corrupted, encoder(3, 2));
        assert!(matches!(error, ParameterFileError::Format(_)), "byte {position}: {error}");
    }
    for position in 8..40 {
        let mut corrupted = bytes.clone();
        corrupted[position] ^= 0x5A;
        refused(&corrupted, encoder(3, 2));
    }
    let error = io::load(&mut encoder(3, 2), "/nonexistent/fluxion.safetensors").unwrap_err();
    assert!(matches!(error, ParameterFileError::Io { .. }));
    assert!(error.to_string().starts_with("parameter file `/nonexistent/fluxion.safetensors`: "), "{error}");
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Filter {
    taps: Vector<Complex64, 3, Heap>,
    gain: Complex32,
}

#[test]
fn complex_parameters_are_pairs_of_reals() {
    let filter = Filter {
        taps: Vector::from_array([
            Complex64::new(1.0, -2.0),
            Complex64::new(0.5, 0.25),
            Complex64::new(-3.0, 4.0),
        ]),
        gain: Complex32::new(0.1, -0.7),
    };
    let mut shapes = Vec::new();
    filter.visit_parameters(&mut String::new(), &mut |name, leaf| {
        shapes.push((name.to_owned(), leaf.shape.to_vec()))
    });
    assert_eq!(shapes, [("taps".to_owned(), vec![3, 2]), ("gain".to_owned(), vec![2])]);
    let bytes = io::to_bytes(&filter).unwrap();
    let mut restored = Filter { taps: Vector::zeros(), gain: Complex32::new(0.0, 0.0) };
    io::load_bytes(&mut restored, &bytes).unwrap();
    assert_eq!(restored, filter);
}

/// Every layer with parameters, on the heap and inline.
#[derive(Differentiable, Clone, Debug, PartialEq)]
struct EveryLayer {
    convolution: fluxion::nn::layer::Conv2d<f32, 2, 3, 3, 3, 4, 4>,
    norm: fluxion::nn::layer::LayerNorm<f64, 5>,
    groups: fluxion::nn::layer::GroupNorm<f32, 4, 2>,
    table: fluxion::nn::layer::Embedding<f32, 7, 3>,
    fixed: Linear<f64, 2, 3, Inline>,
    attention: fluxion::nn::layer::MultiHeadAttention<f32, 4, 2, 3>,
}

fn every_layer(seed: u64) -> EveryLayer {
    let norm = fluxion::nn::layer::LayerNorm {
        weight: Tensor::random_normal(0.0, 1.0, seed + 1),
        bias: Tensor::random_normal(0.0, 1.0, seed + 2),
        epsilon: 1e-5,
    };
    let groups = fluxion::nn::layer::GroupNorm {
        weight: Tensor::random_normal(0.0, 1.0, seed + 5),
        bias: Tensor::random_normal(0.0, 1.0, seed + 6),
        epsilon: 1e-5,
    };
    EveryLayer {
        convolution: fluxion::nn::layer::Conv2d::new(seed),
        norm,
        groups,
        table: fluxion::nn::layer::Embedding::new(seed + 3),
        fixed: Linear::new(seed + 4),
        attention: fluxion::nn::layer::MultiHeadAttention::new(fluxion::nn::prelude::Mask::Causal, seed + 7),
    }
}

#[test]
fn every_layer_kind_round_trips_bit_exactly() {
    let model = every_layer(1);
    assert_eq!(
        names(&model),
        [
            "convolution.weight",
            "convolution.bias",
            "norm.weight",
            "norm.bias",
            "groups.weight",
            "groups.bias",
            "table.weight",
            "fixed.weight",
            "fixed.bias",
            "attention.query.weight",
            "attention.query.bias",
            "attention.key.weight",
            "attention.key.bias",
            "attention.value.weight",
            "attention.value.bias",
            "attention.output.weight",
            "attention.output.bias"
        ]
    );
    let bytes = io::to_bytes(&model).unwrap();
    let mut restored = every_layer(2);
    assert_ne!(restored, model);
    io::load_bytes(&mut restored, &bytes).unwrap();
    assert_eq!(restored, model);
}

/// A model, its optimiser and a fixed batch: `steps` training steps from `model`.
type Classifier = Sequential<(Linear<f64, 2, 6>, Relu, Linear<f64, 6, 2>)>;

fn train<O: fluxion::nn::optim::Optimizer<Classifier>>(
    model: &mut Classifier,
    optimizer: &mut O,
    steps: usize,
) {
    use fluxion::nn::loss::{Reduction, cross_entropy};
    let x = Tensor::<f64, (Dyn, Const<2>), Heap>::from_shape_fn((Dyn(16), Const), |[r, c]| {
        ((r * 5 + c * 3) % 7) as f64 / 7.0 - 0.5
    });
    let labels: Vec<usize> = (0..16).map(|r| r % 2).collect();
    for _ in 0..steps {
        let gradient = grad(
            |m: <Classifier as Trace>::Traced| cross_entropy(&m.forward(&x), &labels, Reduction::Mean),
            model,
        );
        optimizer.step(model, &gradient);
    }
}

fn classifier(seed: u64) -> Classifier {
    Sequential((Linear::new(seed), Relu, Linear::new(seed + 1)))
}

#[test]
fn training_resumed_from_a_checkpoint_matches_training_straight_through() {
    use fluxion::nn::optim::{Adam, AdamConfig, Sgd, SgdConfig};
    fn resume<O: fluxion::nn::optim::Optimizer<Classifier> + io::OptimizerState<Classifier>>(
        mut optimizer: O,
        mut fresh: O,
    ) {
        let mut model = classifier(1);
        train(&mut model, &mut optimizer, 5);
        let (parameters, state) =
            (io::to_bytes(&model).unwrap(), io::optimizer_to_bytes(&optimizer).unwrap());
        train(&mut model, &mut optimizer, 5);

        let mut resumed = classifier(7);
        io::load_bytes(&mut resumed, &parameters).unwrap();
        io::load_optimizer_bytes(&mut fresh, &resumed, &state).unwrap();
        assert_eq!(fresh.learning_rate(), 0.03, "the settings come from the file");
        train(&mut resumed, &mut fresh, 5);
        assert_eq!(resumed, model, "bit for bit");
    }
    let adam = AdamConfig { learning_rate: 0.03, beta1: 0.8, ..AdamConfig::adamw() };
    resume(Adam::new(adam), Adam::new(AdamConfig::default()));
    let sgd = SgdConfig { learning_rate: 0.03, momentum: 0.9, nesterov: true, ..SgdConfig::default() };
    resume(Sgd::new(sgd), Sgd::new(SgdConfig::default()));

    // Saved before its first step: no state, and the settings.
    let mut adam = Adam::<Classifier>::new(AdamConfig::default());
    io::load_optimizer_bytes(
        &mut adam,
        &classifier(1),
        &io::optimizer_to_bytes(&Adam::<Classifier>::new(AdamConfig {
            epsilon: 1e-6,
            ..AdamConfig::default()
        }))
        .unwrap(),
    )
    .unwrap();
    assert_eq!((adam.steps(), adam.moments().is_none(), adam.config().epsilon), (0, true, 1e-6));
}

#[test]
fn a_checkpoint_of_another_optimiser_or_model_is_refused() {
    use fluxion::nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
    let mut model = classifier(1);
    let mut adam = Adam::new(AdamConfig::default());
    train(&mut model, &mut adam, 2);
    let bytes = io::optimizer_to_bytes(&adam).unwrap();
    fn snapshot<M: Differentiable<Tangent: Parameters>>(adam: &Adam<M>) -> (u64, Vec<u8>) {
        (adam.steps(), io::optimizer_to_bytes(adam).unwrap())
    }

    let mut sgd = Sgd::<Classifier>::new(SgdConfig { momentum: 0.5, ..SgdConfig::default() });
    let error = io::load_optimizer_bytes(&mut sgd, &model, &bytes).unwrap_err();
    assert_eq!(error.to_string(), "the file holds the state of `adam`, not of `sgd`");
    let error = io::load_optimizer_bytes(&mut adam, &model, &io::to_bytes(&model).unwrap()).unwrap_err();
    assert_eq!(error.to_string(), "the file holds no optimiser state (loading `adam`)");

    // A model of another size: the moments do not fit, and nothing changes.
    let mut other = Adam::new(AdamConfig::default());
    let mut wider = Sequential((Linear::<f64, 2, 7>::new(1), Relu, Linear::<f64, 7, 2>::new(2)));
    let gradient = wider.zero_tangent();
    other.step(&mut wider, &gradient);
    let before = snapshot(&other);
    let error = io::load_optimizer_bytes(&mut other, &wider, &bytes).unwrap_err();
    assert_eq!(error.to_string(), "parameter `m.0.weight`: the model has shape [7, 2], the file [6, 2]");
    assert!(snapshot(&other) == before);

    // A truncated file.
    let error = io::load_optimizer_bytes(&mut other, &wider, &bytes[..bytes.len() - 3]).unwrap_err();
    assert!(matches!(error, ParameterFileError::Format(_)), "{error}");
    assert!(snapshot(&other) == before);
}

#[test]
fn a_tangent_is_named_like_its_model() {
    let model = encoder(1, 2);
    assert_eq!(names(&model.zero_tangent()), names(&model));
    // Tuple fields keep the struct's positions, also past a field with no derivative.
    #[derive(Differentiable, Clone)]
    struct Tagged(#[no_derivative] u8, Linear<f64, 2, 2>, f64);
    let tagged = Tagged(3, Linear::new(1), 0.5);
    assert_eq!(names(&tagged.zero_tangent()), ["1.weight", "1.bias", "2"]);
    assert_eq!(names(&tagged), names(&tagged.zero_tangent()));
}

#[test]
fn a_checkpoint_with_settings_that_are_not_allowed_is_refused() {
    use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
    let mut model = classifier(1);
    let mut sgd = Sgd::new(SgdConfig { momentum: 0.9, nesterov: true, ..SgdConfig::default() });
    train(&mut model, &mut sgd, 1);
    let mut bytes = io::optimizer_to_bytes(&sgd).unwrap();
    // Nesterov momentum without momentum, written over the header's text.
    let at = bytes.windows(12).position(|w| w == b"momentum=0.9").expect("the setting is in the header");
    bytes[at..at + 12].copy_from_slice(b"momentum=0.0");
    let mut fresh = Sgd::<Classifier>::new(SgdConfig::default());
    let error = io::load_optimizer_bytes(&mut fresh, &model, &bytes).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the optimiser setting `nesterov` is missing, repeated, unknown or not allowed"
    );
    assert_eq!((fresh.velocity().is_none(), *fresh.config()), (true, SgdConfig::default()));
    assert_eq!(fresh.learning_rate(), SgdConfig::default().learning_rate);
}

/// Overwrites `from` with `to` (the same length) in a checkpoint's header text.
fn edited(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "the header keeps its length");
    let mut bytes = bytes.to_vec();
    let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).expect("the text is in the header");
    bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
    bytes
}

#[test]
fn a_checkpoint_whose_header_does_not_fit_the_optimiser_is_refused() {
    use fluxion::nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
    let mut model = classifier(1);
    let mut adam = Adam::new(AdamConfig::default());
    train(&mut model, &mut adam, 3);
    let bytes = io::optimizer_to_bytes(&adam).unwrap();
    assert_eq!(bytes, io::optimizer_to_bytes(&adam).unwrap(), "the same optimiser, the same bytes");
    let refused = |bytes: &[u8]| {
        let mut fresh = Adam::<Classifier>::new(AdamConfig::default());
        let error = io::load_optimizer_bytes(&mut fresh, &model, bytes).unwrap_err().to_string();
        assert_eq!((fresh.steps(), fresh.moments().is_none()), (0, true), "{error}");
        error
    };
    // A step count that is no whole number, or past what a file holds exactly, or
    // zero with moments; a β of 1.
    let fraction = edited(&bytes, "steps=3", "steps=.");
    assert!(refused(&fraction).contains("`steps`"));
    let past = edited(
        &bytes,
        "epsilon=0.00000001; weight_decay=0; decoupled_weight_decay=0; decay_vectors=1; steps=3",
        "epsilon=1e-8; weight_decay=0; decoupled_weight_decay=0; decay_vectors=1; steps=1000e16",
    );
    assert!(refused(&past).contains("`steps`"));
    let malformed = edited(&bytes, "; steps=3", "; steps 3");
    assert!(refused(&malformed).contains("`steps 3`"), "a malformed part is named");
    let count = edited(&bytes, "steps=3", "steps=0");
    assert!(refused(&count).contains("`steps`"));
    let beta = edited(&bytes, "beta1=0.9", "beta1=1.0");
    assert!(refused(&beta).contains("`beta1`"));
    // An unknown setting (from another version) and a repeated one.
    let unknown = edited(&bytes, "epsilon=", "amsgrad=");
    assert!(refused(&unknown).contains("`amsgrad="));
    let repeated = edited(&bytes, "beta2=", "beta1=");
    assert!(refused(&repeated).contains("`beta1="));

    // Moments of another element type.
    type Single = Sequential<(Linear<f32, 2, 6>, Relu, Linear<f32, 6, 2>)>;
    let single: Single = Sequential((Linear::new(1), Relu, Linear::new(2)));
    let mut fresh = Adam::<Single>::new(AdamConfig::default());
    let error = io::load_optimizer_bytes(&mut fresh, &single, &bytes).unwrap_err();
    assert!(
        matches!(&error, ParameterFileError::ElementType { name, .. } if name == "m.0.weight"),
        "{error}"
    );

    // Plain SGD keeps no velocity: its checkpoint has none, and one with a velocity is refused.
    let mut plain = Sgd::new(SgdConfig::default());
    train(&mut model, &mut plain, 2);
    let path = std::env::temp_dir().join(format!("fluxion-sgd-{}.safetensors", std::process::id()));
    io::save_optimizer(&plain, &path).unwrap();
    let mut restored = Sgd::<Classifier>::new(SgdConfig { learning_rate: 0.5, ..SgdConfig::default() });
    io::load_optimizer(&mut restored, &model, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((restored.config(), restored.velocity().is_none()), (plain.config(), true));
    let mut momentum = Sgd::new(SgdConfig { momentum: 0.5, ..SgdConfig::default() });
    train(&mut model, &mut momentum, 1);
    let kept = edited(&io::optimizer_to_bytes(&momentum).unwrap(), "momentum=0.5", "momentum=0.0");
    let error = io::load_optimizer_bytes(&mut restored, &model, &kept).unwrap_err();
    assert!(error.to_string().contains("`state`"), "{error}");
    assert_eq!(restored.learning_rate(), plain.learning_rate());
}

#[test]
fn settings_that_are_not_allowed_are_refused_by_name() {
    use fluxion::nn::optim::{AdamConfig, SgdConfig};
    let name = |result: Result<(), fluxion::nn::optim::InvalidSetting>| result.unwrap_err().name;
    assert_eq!(name(SgdConfig { learning_rate: -0.1, ..SgdConfig::default() }.check()), "learning_rate");
    assert_eq!(name(SgdConfig { momentum: f64::NAN, ..SgdConfig::default() }.check()), "momentum");
    assert_eq!(name(SgdConfig { nesterov: true, ..SgdConfig::default() }.check()), "nesterov");
    assert_eq!(name(AdamConfig { beta2: 1.0, ..AdamConfig::default() }.check()), "beta2");
    assert_eq!(name(AdamConfig { epsilon: -1e-8, ..AdamConfig::default() }.check()), "epsilon");
    assert!(AdamConfig::adamw().check().is_ok() && SgdConfig::default().check().is_ok());
    let panic = std::panic::catch_unwind(|| {
        fluxion::nn::optim::Adam::<f64>::new(AdamConfig { beta1: -0.5, ..AdamConfig::default() })
    });
    let message = *panic.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(message, "optimiser setting `beta1`: a decay must be in [0, 1)");
}

#[test]
fn a_checkpoint_of_model_and_optimiser_resumes_training_and_is_all_or_nothing() {
    use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
    let mut model = classifier(1);
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.02, ..AdamConfig::adamw() });
    train(&mut model, &mut adam, 4);
    let path = std::env::temp_dir().join(format!("fluxion-checkpoint-{}.safetensors", std::process::id()));
    io::save_checkpoint(&model, &adam, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names[..3], ["model.0.bias", "model.0.weight", "model.2.bias"]);
    assert!(names.contains(&"optimizer.m.0.weight") && names.contains(&"optimizer.v.2.bias"));
    train(&mut model, &mut adam, 3);

    let (mut resumed, mut fresh) = (classifier(9), Adam::new(AdamConfig::default()));
    io::load_checkpoint(&mut resumed, &mut fresh, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((fresh.steps(), fresh.learning_rate()), (4, 0.02));
    train(&mut resumed, &mut fresh, 3);
    assert_eq!(resumed, model, "bit for bit");

    // A setting that is not allowed: refused after the tensors were read, and neither
    // the model nor the optimiser changes.
    let (before, mut untouched) = (classifier(9), Adam::new(AdamConfig::default()));
    let mut target = before.clone();
    let error =
        io::load_checkpoint_bytes(&mut target, &mut untouched, &edited(&bytes, "beta2=0.999", "beta2=1.999"))
            .unwrap_err();
    assert!(error.to_string().contains("`beta2`"), "{error}");
    assert_eq!((target == before, untouched.steps()), (true, 0));
    // A parameter file without the optimiser, and a truncated checkpoint.
    let error =
        io::load_checkpoint_bytes(&mut target, &mut untouched, &io::to_bytes(&before).unwrap()).unwrap_err();
    assert!(matches!(error, ParameterFileError::Optimizer { file: None, .. }), "{error}");
    let error =
        io::load_checkpoint_bytes(&mut target, &mut untouched, &bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(error, ParameterFileError::Format(_)), "{error}");
    assert_eq!((target == before, untouched.steps()), (true, 0));
}

#[test]
fn a_part_loads_from_the_tensors_under_its_prefix() {
    // The first layer of the encoder from a file of the whole encoder.
    let source = encoder(1, 2);
    let bytes = io::to_bytes(&source).unwrap();
    let mut layer: Linear<f64, 3, 3> = Linear::new(77);
    io::load_part_bytes(&mut layer, &bytes, "layers.0").unwrap();
    assert_eq!(layer, source.layers[0]);
    io::load_part_bytes(&mut layer, &bytes, "layers.1.").unwrap();
    assert_eq!(layer, source.layers[1], "a trailing dot is not part of the prefix");
    let mut whole = encoder(5, 2);
    io::load_part_bytes(&mut whole, &bytes, "").unwrap();
    assert_eq!(
        Encoder { label: source.label.clone(), ..whole },
        source,
        "the empty prefix is the whole file"
    );
    // A prefix that is a name's start but no segment of it reads nothing: `layers.0`
    // is not under `layer`.
    let before = layer.clone();
    let error = io::load_part_bytes(&mut layer, &bytes, "layer").unwrap_err();
    let ParameterFileError::Names { missing, unexpected } = &error else { panic!("{error}") };
    assert_eq!(missing, &["layer.bias", "layer.weight"]);
    // The file has nothing under it: the error lists the file's names, prefixes and all.
    assert_eq!(unexpected.len(), names(&source).len(), "{error}");
    assert!(unexpected.contains(&"layers.0.weight".to_string()));
    assert_eq!(layer, before);
    // Every tensor under the prefix must be a parameter of the part: a scalar is not
    // the whole of `layers`.
    let mut scale = 0.0f64;
    let error = io::load_part_bytes(&mut scale, &bytes, "layers.1").unwrap_err();
    assert!(
        matches!(&error, ParameterFileError::Names { unexpected, .. } if unexpected.len() == 2),
        "{error}"
    );
    assert_eq!(scale, 0.0);
    // A shape that differs is named by the file's name.
    let mut wide: Linear<f64, 3, 4> = Linear::new(5);
    let error = io::load_part_bytes(&mut wide, &bytes, "layers.1").unwrap_err();
    assert_eq!(error.to_string(), "parameter `layers.1.weight`: the model has shape [4, 3], the file [3, 3]");
    // A part saved under a prefix reads back under it, as from the whole file; with
    // the empty prefix, a part's file is the whole-model file of that part.
    let part = io::part_to_bytes(&source.layers[1], "layers.1.").unwrap();
    let mut from_part: Linear<f64, 3, 3> = Linear::new(8);
    io::load_part_bytes(&mut from_part, &part, "layers.1").unwrap();
    assert_eq!(from_part, source.layers[1]);
    assert!(io::load_bytes(&mut from_part, &part).is_err(), "the names carry the prefix");
    assert_eq!(io::part_to_bytes(&source.layers[1], "").unwrap(), io::to_bytes(&source.layers[1]).unwrap());
    // A checkpoint's model is the part under `model`.
    use fluxion::nn::optim::{Sgd, SgdConfig};
    let mut model = classifier(3);
    let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, momentum: 0.9, ..SgdConfig::default() });
    train(&mut model, &mut sgd, 2);
    let checkpoint = io::checkpoint_to_bytes(&model, &sgd).unwrap();
    let mut fresh = classifier(9);
    io::load_part_bytes(&mut fresh, &checkpoint, "model").unwrap();
    assert_eq!(fresh, model);
}

#[test]
fn batch_normalisation_keeps_its_running_estimates_as_buffers() {
    use fluxion::nn::layer::{BatchNorm, Tanh, evaluation};
    type Net = Sequential<(Linear<f64, 3, 4>, BatchNorm<f64, 4>, Tanh)>;
    let batch =
        |seed| Tensor::<f64, (Dyn, Const<3>), Heap>::random_normal_shaped((Dyn(5), Const), 0.0, 2.0, seed);
    let net: Net = Sequential((Linear::new(1), BatchNorm::new(), Tanh));
    net.forward(&batch(2)); // running estimates away from 0 and 1
    assert!(!names(&net).iter().any(|name| name.contains("running")));
    let bytes = io::to_bytes(&net).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut stored = file.names();
    stored.sort();
    assert_eq!(stored, ["0.bias", "0.weight", "1.bias", "1.running_mean", "1.running_var", "1.weight"]);

    let mut fresh: Net = Sequential((Linear::new(3), BatchNorm::new(), Tanh));
    io::load_bytes(&mut fresh, &bytes).unwrap();
    assert_eq!(fresh, net);
    assert_eq!(fresh.0.1.running_var.get(), net.0.1.running_var.get());
    let x = batch(4);
    assert_eq!(evaluation(|| fresh.forward(&x)), evaluation(|| net.forward(&x)));

    // A file without them is refused, naming what is missing, and changes nothing.
    let parameters_only =
        io::to_bytes(&(net.0.0.clone(), (net.0.1.weight.clone(), net.0.1.bias.clone()))).unwrap();
    let mut other: Net = Sequential((Linear::new(5), BatchNorm::new(), Tanh));
    let before = other.0.1.clone();
    match io::load_bytes(&mut other, &parameters_only) {
        Err(ParameterFileError::Names { missing, unexpected }) => {
            assert_eq!(missing, ["1.bias", "1.running_mean", "1.running_var", "1.weight"]);
            assert_eq!(unexpected, ["1.0", "1.1"]);
        }
        other => panic!("expected a names error, got {other:?}"),
    }
    assert_eq!(other.0.1, before);
}

/// `bytes` with more tensors added: (name, dtype, shape, little-endian data).
fn with_entries(bytes: &[u8], extra: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut views: Vec<(String, TensorView<'_>)> = file.tensors();
    for (name, dtype, shape, data) in extra {
        views.push((name.to_string(), TensorView::new(*dtype, shape.clone(), data).unwrap()));
    }
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn pytorchs_count_of_batch_normalisation_batches_is_read_and_ignored() {
    use fluxion::nn::layer::BatchNorm;
    use safetensors::Dtype;
    type Net = Sequential<(Linear<f64, 3, 4>, BatchNorm<f64, 4>)>;
    let net: Net = Sequential((Linear::new(1), BatchNorm::new()));
    net.forward(&Tensor::<f64, (Dyn, Const<3>), Heap>::random_normal_shaped((Dyn(5), Const), 0.0, 2.0, 2));
    let count = 7i64.to_le_bytes().to_vec();
    // As PyTorch's `state_dict()` has it: a 0-dimensional int64 beside the estimates.
    let pytorch = with_entries(
        &io::to_bytes(&net).unwrap(),
        &[("1.num_batches_tracked", Dtype::I64, vec![], count.clone())],
    );
    let mut fresh: Net = Sequential((Linear::new(3), BatchNorm::new()));
    io::load_bytes(&mut fresh, &pytorch).unwrap();
    assert_eq!(fresh, net);
    // Not beside a batch normalisation's estimates, or not a count: still unexpected.
    for (name, dtype, shape, data) in [
        ("0.num_batches_tracked", Dtype::I64, vec![], count.clone()),
        ("1.num_batches_tracked", Dtype::F64, vec![], 7f64.to_le_bytes().to_vec()),
        ("1.num_batches_tracked", Dtype::I64, vec![1], count.clone()),
        ("1.xnum_batches_tracked", Dtype::I64, vec![], count.clone()),
    ] {
        let file = with_entries(&io::to_bytes(&net).unwrap(), &[(name, dtype, shape, data)]);
        match io::load_bytes(&mut fresh, &file) {
            Err(ParameterFileError::Names { missing, unexpected }) => {
                assert!(missing.is_empty());
                assert_eq!(unexpected, [name]);
            }
            other => panic!("expected {name} to be unexpected, got {other:?}"),
        }
    }
}

#[test]
fn a_refused_checkpoint_leaves_shared_buffers_as_they_were() {
    use fluxion::nn::layer::BatchNorm;
    use fluxion::nn::optim::{Sgd, SgdConfig};
    type Net = Sequential<(Linear<f64, 2, 3>, BatchNorm<f64, 3>)>;
    let net: Net = Sequential((Linear::new(1), BatchNorm::new()));
    net.forward(&Tensor::<f64, (Dyn, Const<2>), Heap>::random_normal_shaped((Dyn(4), Const), 0.0, 1.0, 2));
    let sgd = Sgd::new(SgdConfig { learning_rate: 0.1, momentum: 0.9, ..SgdConfig::default() });
    let bytes = io::checkpoint_to_bytes(&net, &sgd).unwrap();
    // Every tensor fits; the optimiser refuses a setting only after they were read
    // into a copy of the model, which shares the model's buffers.
    let refused = edited(&bytes, "learning_rate=0.1", "learning_rate=-01");
    let mut model: Net = Sequential((Linear::new(3), BatchNorm::new()));
    let before = (model.0.1.running_mean.get(), model.0.1.running_var.get());
    let mut sgd_again = Sgd::new(SgdConfig::default());
    let error = io::load_checkpoint_bytes(&mut model, &mut sgd_again, &refused).unwrap_err();
    assert!(error.to_string().contains("learning_rate"), "{error}");
    assert_eq!((model.0.1.running_mean.get(), model.0.1.running_var.get()), before);
    io::load_checkpoint_bytes(&mut model, &mut sgd_again, &bytes).unwrap();
    assert_eq!(model.0.1.running_mean.get(), net.0.1.running_mean.get());
}

#[test]
fn a_files_contents_list_names_shapes_and_element_types() {
    use safetensors::Dtype;
    let model = (Linear::<f32, 3, 2>::new(1), Matrix::<f64, 2, 2, Heap>::full(1.0));
    let listed = io::contents_bytes(&io::to_bytes(&model).unwrap()).unwrap();
    let summary: Vec<(&str, &[usize], Dtype)> =
        listed.iter().map(|t| (t.name.as_str(), t.shape.as_slice(), t.dtype)).collect();
    assert_eq!(
        summary,
        [("0.bias", &[2][..], Dtype::F32), ("0.weight", &[2, 3], Dtype::F32), ("1", &[2, 2], Dtype::F64)]
    );
    assert!(matches!(io::contents_bytes(b"not a file"), Err(ParameterFileError::Format(_))));
}

/// The bytes of a parameter file with its optimiser header line rewritten by `edit`.
fn with_header(bytes: &[u8], edit: impl Fn(&str) -> String) -> Vec<u8> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut header = metadata.metadata().clone().unwrap_or_default();
    let line = header.get("optimizer").expect("an optimiser's header").clone();
    header.insert("optimizer".to_owned(), edit(&line));
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    safetensors::serialize(file.tensors(), Some(header)).unwrap()
}

#[test]
fn weight_decay_on_vectors_is_saved_and_defaults_to_on_in_older_checkpoints() {
    use fluxion::nn::optim::{Adam, AdamConfig, Sgd, SgdConfig};
    let model = classifier(1);
    let adam = Adam::<Classifier>::new(AdamConfig { decay_vectors: false, ..AdamConfig::adamw() });
    let bytes = io::optimizer_to_bytes(&adam).unwrap();
    let mut restored = Adam::<Classifier>::new(AdamConfig::default());
    io::load_optimizer_bytes(&mut restored, &model, &bytes).unwrap();
    assert_eq!(restored.config(), adam.config());
    // A checkpoint written before the setting existed: decay on every leaf.
    let older = with_header(&bytes, |line| line.replace("; decay_vectors=0", ""));
    io::load_optimizer_bytes(&mut restored, &model, &older).unwrap();
    assert_eq!(restored.config(), &AdamConfig { decay_vectors: true, ..*adam.config() });
    let sgd =
        Sgd::<Classifier>::new(SgdConfig { weight_decay: 0.1, decay_vectors: false, ..SgdConfig::default() });
    let mut restored = Sgd::<Classifier>::new(SgdConfig::default());
    io::load_optimizer_bytes(&mut restored, &model, &io::optimizer_to_bytes(&sgd).unwrap()).unwrap();
    assert_eq!(restored.config(), sgd.config());
}
