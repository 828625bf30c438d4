//! Parameter files in the [safetensors](https://github.com/huggingface/safetensors)
//! format: one tensor per parameter leaf and per buffer leaf (a `BatchNorm`'s running
//! estimates), named by its path ([`crate::nn::params`]),
//! `F32` or `F64` (a complex leaf as its real and imaginary parts, with a last axis of
//! 2), little-endian, bit-exact both ways.
//!
//! Loading checks the file against the model's own types before it writes anything:
//! every parameter and buffer present with its shape and element type, no tensor
//! left over. A
//! mismatch, or a truncated or malformed file, returns a [`ParameterFileError`]
//! naming it, and the model is left as it was. (The format has no checksum: a changed
//! byte inside a tensor's data loads as a different value. On `Cuda` tensors the
//! parameters pass through host copies, leaf by leaf.) [`load_part`] reads the
//! tensors under a prefix into a part of a model, with the same checks within the
//! prefix: a pretrained body under a new head, or the model of a checkpoint;
//! [`save_part`] writes a part under a prefix. [`contents`] lists a file's tensors
//! with their shapes and element types. Settings that are not tensors are the
//! model's as built, not the file's: a `Dropout`'s probability and seed, which its
//! `==` compares, so a model loaded into one built with other dropout seeds holds
//! equal parameters and buffers but compares unequal (build both with the same seeds
//! to check a round trip with `==`).
//!
//! An optimiser's checkpoint ([`save_optimizer`], [`load_optimizer`]) holds its
//! settings and step count in the file's header and its state tangents as tensors
//! named after the model's parameters (`m.0.weight`, `v.0.weight`). Loading checks the
//! state against the model the optimiser will update and restores the settings too
//! (as PyTorch's `load_state_dict` does), so that training resumes where it stopped:
//! bit for bit, given the same batches in the same order (a `Dropout`'s sequence of
//! masks is not saved). A mismatch leaves the optimiser as it was. [`save_checkpoint`]
//! and [`load_checkpoint`] keep a model and its optimiser in one file (PyTorch's
//! `torch.save({"model": …, "optimizer": …})`), under `model.` and `optimizer.`,
//! and a load changes both or neither.
//!
//! ```
//! use fluxion::nn::io;
//! use fluxion::nn::layer::{Linear, Relu, Sequential};
//!
//! let model = Sequential((Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 8, 2>::new(2)));
//! let bytes = io::to_bytes(&model)?;
//! let mut restored = Sequential((Linear::<f32, 4, 8>::new(3), Relu, Linear::<f32, 8, 2>::new(4)));
//! io::load_bytes(&mut restored, &bytes)?;
//! assert_eq!(restored, model);
//!
//! // A model of another size is refused, and left as it was.
//! let mut wider = Sequential((Linear::<f32, 4, 9>::new(3), Relu, Linear::<f32, 9, 2>::new(4)));
//! let before = wider.clone();
//! let error = io::load_bytes(&mut wider, &bytes).unwrap_err();
//! assert_eq!(error.to_string(), "parameter `0.weight`: the model has shape [9, 4], the file [8, 4]");
//! assert_eq!(wider, before);
//! # Ok::<(), io::ParameterFileError>(())
//! ```

use std::borrow::ToOwned;
use std::collections::BTreeSet;
use std::fmt;
use std::format;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::params::{Elements, ElementsMut, ParameterLeaf, ParameterLeafMut, Parameters, with_segment};
use crate::autodiff::Differentiable;

/// Why a parameter file could not be written or read into a model.
#[derive(Debug)]
#[non_exhaustive]
pub enum ParameterFileError {
    /// The file could not be read or written.
    Io {
        /// The file's path.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (truncated, corrupted).
    Format(String),
    /// The names differ: parameters of the model with no tensor in the file, and
    /// tensors of the file that are no parameter of the model (each list sorted).
    Names {
        /// The model's parameters missing from the file.
        missing: Vec<String>,
        /// The file's tensors that the model does not have.
        unexpected: Vec<String>,
    },
    /// A tensor's shape differs from its parameter's.
    Shape {
        /// The parameter's name.
        name: String,
        /// The model's shape.
        model: Vec<usize>,
        /// The file's shape.
        file: Vec<usize>,
    },
    /// A tensor's element type differs from its parameter's.
    ElementType {
        /// The parameter's name.
        name: String,
        /// The model's element type.
        model: Dtype,
        /// The file's element type.
        file: Dtype,
    },
    /// Two parameters of the model have one name.
    DuplicateName(String),
    /// The file holds another optimiser's checkpoint, or none.
    Optimizer {
        /// The optimiser being loaded.
        expected: &'static str,
        /// The optimiser named by the file.
        file: Option<String>,
    },
    /// An optimiser's setting is missing from the file, repeated, unknown to the
    /// optimiser or not allowed (the setting's name, or the header's text for it).
    Setting(String),
}

impl fmt::Display for ParameterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterFileError::Io { path, error } => {
                write!(f, "parameter file `{}`: {error}", path.display())
            }
            ParameterFileError::Format(reason) => write!(f, "not a valid safetensors file: {reason}"),
            ParameterFileError::Names { missing, unexpected } => {
                let parts =
                    [("missing from the file", missing), ("in the file but not in the model", unexpected)];
                let mut first = true;
                for (what, names) in parts.into_iter().filter(|(_, names)| !names.is_empty()) {
                    let separator = if first { "" } else { "; " };
                    write!(f, "{separator}parameters {what}: {}", listed(names))?;
                    first = false;
                }
                Ok(())
            }
            ParameterFileError::Shape { name, model, file } => {
                write!(f, "parameter `{name}`: the model has shape {model:?}, the file {file:?}")
            }
            ParameterFileError::ElementType { name, model, file } => {
                write!(f, "parameter `{name}`: the model holds {model:?}, the file {file:?}")
            }
            ParameterFileError::DuplicateName(name) => {
                write!(f, "two parameters of the model are named `{name}`")
            }
            ParameterFileError::Optimizer { expected, file: Some(file) } => {
                write!(f, "the file holds the state of `{file}`, not of `{expected}`")
            }
            ParameterFileError::Optimizer { expected, file: None } => {
                write!(f, "the file holds no optimiser state (loading `{expected}`)")
            }
            ParameterFileError::Setting(name) => {
                write!(f, "the optimiser setting `{name}` is missing, repeated, unknown or not allowed")
            }
        }
    }
}

impl std::error::Error for ParameterFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParameterFileError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// At most ten names, quoted: `a`, `b` and 3 more.
fn listed(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|name| format!("`{name}`")).collect();
    match names.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} and {more} more", quoted.join(", ")),
        _ => quoted.join(", "),
    }
}

/// Reads the file at `path`.
fn read(path: &Path) -> Result<Vec<u8>, ParameterFileError> {
    std::fs::read(path).map_err(|error| ParameterFileError::Io { path: path.to_owned(), error })
}

/// Writes `bytes` to the file at `path`.
fn write(path: &Path, bytes: &[u8]) -> Result<(), ParameterFileError> {
    std::fs::write(path, bytes).map_err(|error| ParameterFileError::Io { path: path.to_owned(), error })
}

fn format_error(error: safetensors::SafeTensorError) -> ParameterFileError {
    ParameterFileError::Format(error.to_string())
}

/// The file's element type for `elements`.
fn dtype(elements: &Elements<'_>) -> Dtype {
    match elements {
        Elements::F32(_) => Dtype::F32,
        Elements::F64(_) => Dtype::F64,
    }
}

/// The elements' little-endian bytes.
fn encode(elements: &Elements<'_>) -> Vec<u8> {
    match elements {
        Elements::F32(values) => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Elements::F64(values) => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Writes little-endian `bytes` (of the elements' type and count) into the elements.
fn decode(elements: ElementsMut<'_>, bytes: &[u8]) {
    match elements {
        ElementsMut::F32(values) => values
            .iter_mut()
            .zip(bytes.chunks_exact(4))
            .for_each(|(x, b)| *x = f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ElementsMut::F64(values) => values
            .iter_mut()
            .zip(bytes.chunks_exact(8))
            .for_each(|(x, b)| *x = f64::from_le_bytes(b.try_into().expect("8 bytes"))),
    }
}

/// One tensor of a parameter file, as [`contents`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTensor {
    /// Its name (a parameter's or buffer's path).
    pub name: String,
    /// The sizes of its axes.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: Dtype,
}

/// The tensors of a safetensors file in memory, sorted by name: what a model must
/// hold to load it (a PyTorch file's names, a checkpoint's prefixes).
pub fn contents_bytes(bytes: &[u8]) -> Result<Vec<StoredTensor>, ParameterFileError> {
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let mut tensors: Vec<StoredTensor> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| StoredTensor { name, shape: view.shape().to_vec(), dtype: view.dtype() })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// The tensors of the safetensors file at `path`, sorted by name ([`contents_bytes`]).
pub fn contents(path: impl AsRef<Path>) -> Result<Vec<StoredTensor>, ParameterFileError> {
    contents_bytes(&read(path.as_ref())?)
}

/// The model's parameters as a safetensors file in memory.
pub fn to_bytes<M: Parameters>(model: &M) -> Result<Vec<u8>, ParameterFileError> {
    encode_file(|f| model.visit_state(&mut String::new(), f), Vec::new())
}

/// The leaves that `visit` hands over, each under its name, as a safetensors file in
/// memory with `metadata` in its header.
fn encode_file(
    visit: impl FnOnce(&mut dyn FnMut(&str, ParameterLeaf<'_>)),
    metadata: Vec<(String, String)>,
) -> Result<Vec<u8>, ParameterFileError> {
    let mut encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut names = BTreeSet::new();
    let mut duplicate = None;
    visit(&mut |name, leaf| {
        if !names.insert(name.to_owned()) {
            duplicate.get_or_insert_with(|| name.to_owned());
        }
        encoded.push((name.to_owned(), dtype(&leaf.elements), leaf.shape.to_vec(), encode(&leaf.elements)));
    });
    if let Some(name) = duplicate {
        return Err(ParameterFileError::DuplicateName(name));
    }
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(format_error)?;
    let metadata = (!metadata.is_empty()).then(|| metadata.into_iter().collect());
    safetensors::serialize(views, metadata).map_err(format_error)
}

/// Writes the model's parameters to a safetensors file at `path`.
pub fn save<M: Parameters>(model: &M, path: impl AsRef<Path>) -> Result<(), ParameterFileError> {
    write(path.as_ref(), &to_bytes(model)?)
}

/// A part's parameters as a safetensors file in memory, each named `prefix.` and its
/// name in the part (a body saved as a whole model's file would name it, for
/// [`load_part_bytes`] with the same prefix). An empty prefix is [`to_bytes`]; a
/// prefix's trailing dots are not part of it.
pub fn part_to_bytes<P: Parameters>(part: &P, prefix: &str) -> Result<Vec<u8>, ParameterFileError> {
    let prefix = prefix.trim_end_matches('.');
    let mut path = String::new();
    encode_file(|f| with_segment(&mut path, &prefix, |path| part.visit_state(path, f)), Vec::new())
}

/// Writes a part's parameters under `prefix` to a safetensors file at `path`
/// ([`part_to_bytes`]).
pub fn save_part<P: Parameters>(
    part: &P,
    path: impl AsRef<Path>,
    prefix: &str,
) -> Result<(), ParameterFileError> {
    write(path.as_ref(), &part_to_bytes(part, prefix)?)
}

/// Reads a safetensors file from memory into the model's parameters, or returns
/// what does not match (every missing and unexpected name, or else the first shape
/// or element type that differs) and leaves the model as it was.
pub fn load_bytes<M: Parameters>(model: &mut M, bytes: &[u8]) -> Result<(), ParameterFileError> {
    load_file(model, &SafeTensors::deserialize(bytes).map_err(format_error)?, "")
}

/// Reads the tensors named `prefix.…` of a safetensors file in memory into `part`,
/// each into the part's parameter of the name that follows the prefix: a part of a
/// model from another model's file (a pretrained body under a new head, PyTorch's
/// `body.load_state_dict` of a filtered state dict), or a model from a checkpoint
/// (prefix `"model"`). Every parameter of the part must be there and every tensor
/// under the prefix must be one of them, with its shape and element type; the file's
/// other tensors are not read. An empty prefix is the whole file ([`load_bytes`]); a
/// prefix's trailing dots are not part of it (`"body."` is `"body"`). On a mismatch,
/// returns it (naming the missing and unexpected names; for a prefix under which the
/// file has nothing, every name in the file) and leaves the part as it was.
///
/// ```
/// use fluxion::nn::io;
/// use fluxion::nn::prelude::*;
/// use fluxion::prelude::*;
///
/// #[derive(Differentiable, Clone, PartialEq, Debug)]
/// struct Classifier<const C: usize> {
///     body: Sequential<(Linear<f32, 4, 8>, Relu)>,
///     head: Linear<f32, 8, C>,
/// }
///
/// // Pretrained for 10 classes; fine-tuned for 3: the body is read, the new head kept.
/// let pretrained = Classifier::<10> { body: Sequential((Linear::new(1), Relu)), head: Linear::new(2) };
/// let bytes = io::to_bytes(&pretrained)?;
/// let mut tuned = Classifier::<3> { body: Sequential((Linear::new(3), Relu)), head: Linear::new(4) };
/// let head = tuned.head.clone();
/// io::load_part_bytes(&mut tuned.body, &bytes, "body")?;
/// assert_eq!((&tuned.body, &tuned.head), (&pretrained.body, &head));
/// // The whole model would not load: the heads differ.
/// assert!(io::load_bytes(&mut tuned, &bytes).is_err());
/// # Ok::<(), io::ParameterFileError>(())
/// ```
pub fn load_part_bytes<P: Parameters>(
    part: &mut P,
    bytes: &[u8],
    prefix: &str,
) -> Result<(), ParameterFileError> {
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let prefix = prefix.trim_end_matches('.');
    load_file(&mut Under { prefix, part }, &file, prefix)
}

/// Reads the tensors named `prefix.…` of the safetensors file at `path` into `part`
/// ([`load_part_bytes`]).
pub fn load_part<P: Parameters>(
    part: &mut P,
    path: impl AsRef<Path>,
    prefix: &str,
) -> Result<(), ParameterFileError> {
    load_part_bytes(part, &read(path.as_ref())?, prefix)
}

/// A part's parameters named under a prefix (its own names for the empty prefix).
struct Under<'p, P> {
    prefix: &'p str,
    part: &'p mut P,
}

impl<P: Parameters> Parameters for Under<'_, P> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        with_segment(path, &self.prefix, |path| self.part.visit_parameters(path, f));
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        with_segment(path, &self.prefix, |path| self.part.visit_parameters_mut(path, f));
    }
    fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        with_segment(path, &self.prefix, |path| self.part.visit_buffers(path, f));
    }
    fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        with_segment(path, &self.prefix, |path| self.part.visit_buffers_mut(path, f));
    }
}

/// Reads the file's tensors into the model's parameters, or returns what does not
/// match and leaves the model as it was ([`load_bytes`]). Only the tensors under
/// `scope` (`scope.…`; all of them for `""`) are matched against the parameters.
fn load_file<M: Parameters>(
    model: &mut M,
    file: &SafeTensors<'_>,
    scope: &str,
) -> Result<(), ParameterFileError> {
    let mut seen = BTreeSet::new();
    let (mut missing, mut problem) = (Vec::new(), None);
    model.visit_state(&mut String::new(), &mut |name, leaf| {
        let model_dtype = dtype(&leaf.elements);
        let found = match file.tensor(name) {
            Err(_) => return missing.push(name.to_owned()),
            Ok(_) if !seen.insert(name.to_owned()) => ParameterFileError::DuplicateName(name.to_owned()),
            Ok(tensor) if tensor.dtype() != model_dtype => ParameterFileError::ElementType {
                name: name.to_owned(),
                model: model_dtype,
                file: tensor.dtype(),
            },
            Ok(tensor) if tensor.shape() != leaf.shape => ParameterFileError::Shape {
                name: name.to_owned(),
                model: leaf.shape.to_vec(),
                file: tensor.shape().to_vec(),
            },
            Ok(_) => return,
        };
        problem.get_or_insert(found);
    });
    let in_scope =
        |name: &str| scope.is_empty() || name.strip_prefix(scope).is_some_and(|rest| rest.starts_with('.'));
    // A prefix that names nothing in the file: list the file's names, which show the
    // prefixes it has.
    let scoped = file.names().into_iter().any(&in_scope);
    let mut unexpected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|name| {
            (in_scope(name) || !scoped) && !seen.contains(*name) && !batches_tracked(file, name, &seen)
        })
        .map(|name| name.to_owned())
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        missing.sort();
        unexpected.sort();
        return Err(ParameterFileError::Names { missing, unexpected });
    }
    if let Some(problem) = problem {
        return Err(problem);
    }
    // Every name, type and shape matches: the copy cannot fail halfway.
    model.visit_state_mut(&mut String::new(), &mut |name, leaf| {
        decode(leaf.elements, file.tensor(name).expect("checked above").data());
    });
    Ok(())
}

/// PyTorch's count of the batches a batch normalisation has seen in training (a
/// 0-dimensional `int64` tensor `prefix.num_batches_tracked`, beside that layer's
/// `running_mean` and `running_var`): read and ignored, as fluxion's layer moves its
/// running estimates by a fixed momentum and keeps no count. PyTorch's
/// `load_state_dict` adds the entry itself when a file (without version metadata)
/// lacks it, so fluxion's files do not write it.
fn batches_tracked(file: &SafeTensors<'_>, name: &str, seen: &BTreeSet<String>) -> bool {
    let Some(prefix) = name.strip_suffix("num_batches_tracked").filter(|p| p.is_empty() || p.ends_with('.'))
    else {
        return false;
    };
    let count =
        file.tensor(name).is_ok_and(|tensor| tensor.dtype() == Dtype::I64 && tensor.shape().is_empty());
    count && ["running_mean", "running_var"].iter().all(|buffer| seen.contains(&format!("{prefix}{buffer}")))
}

/// Reads the safetensors file at `path` into the model's parameters, or returns
/// what does not match and leaves the model as it was ([`load_bytes`]).
pub fn load<M: Parameters>(model: &mut M, path: impl AsRef<Path>) -> Result<(), ParameterFileError> {
    load_bytes(model, &read(path.as_ref())?)
}

/// An optimiser that a checkpoint can hold ([`save_optimizer`], [`load_optimizer`]):
/// its settings and step count as named numbers in the file's header, and its state
/// tangents as tensors named after the model's parameters (`velocity.0.weight` for
/// [`Sgd`](super::optim::Sgd); `m.0.weight` and `v.0.weight` for
/// [`Adam`](super::optim::Adam)).
pub trait OptimizerState<M: Differentiable> {
    /// The optimiser's name in the file.
    const KIND: &'static str;
    /// The names of the state tangents, in order.
    const STATE: &'static [&'static str];

    /// The settings and the step count, by name (a switch as 0 or 1).
    fn settings(&self) -> Vec<(&'static str, f64)>;

    /// The state tangents, one per name of [`STATE`](Self::STATE); `None` before the
    /// step that makes them.
    fn state(&self) -> Option<&[M::Tangent]>;

    /// Takes the settings (`setting` gives each by name) and the state; or returns
    /// the name of a setting that is missing or not allowed (`"state"` when the
    /// state does not fit the settings), and changes nothing.
    fn restore(
        &mut self,
        setting: &dyn Fn(&'static str) -> Option<f64>,
        state: Option<Vec<M::Tangent>>,
    ) -> Result<(), &'static str>;
}

/// The header key of an optimiser's checkpoint. Its value is one line, `kind;
/// state=kept|none; name=value; …`: a single key, because the header's keys are
/// written in no fixed order and a checkpoint's bytes should not depend on the run.
const OPTIMIZER_KEY: &str = "optimizer";

/// Visits each tangent's leaves under its name: `names[i].…` for `tangents[i]`.
fn visit_named<P: Parameters>(
    names: &[&str],
    tangents: &[P],
    path: &mut String,
    f: &mut dyn FnMut(&str, ParameterLeaf<'_>),
) {
    for (name, tangent) in names.iter().zip(tangents) {
        with_segment(path, name, |path| tangent.visit_parameters(path, f));
    }
}

/// State tangents being read from a checkpoint, each under its name.
struct NamedState<P> {
    names: &'static [&'static str],
    tangents: Vec<P>,
}

impl<P: Parameters> Parameters for NamedState<P> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        visit_named(self.names, &self.tangents, path, f);
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        for (name, tangent) in self.names.iter().zip(&mut self.tangents) {
            with_segment(path, name, |path| tangent.visit_parameters_mut(path, f));
        }
    }
}

/// The optimiser's settings, step count and state as a safetensors file in memory.
pub fn optimizer_to_bytes<M, O>(optimizer: &O) -> Result<Vec<u8>, ParameterFileError>
where
    M: Differentiable<Tangent: Parameters>,
    O: OptimizerState<M>,
{
    let state = optimizer.state().unwrap_or(&[]);
    encode_file(|f| visit_named(O::STATE, state, &mut String::new(), f), optimizer_header(optimizer))
}

/// Writes the optimiser's settings, step count and state to a safetensors file at
/// `path`, to resume training with [`load_optimizer`].
pub fn save_optimizer<M, O>(optimizer: &O, path: impl AsRef<Path>) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters>,
    O: OptimizerState<M>,
{
    write(path.as_ref(), &optimizer_to_bytes(optimizer)?)
}

/// Reads an optimiser's checkpoint from memory: its settings, step count and state,
/// the state checked against `model` (the model it will update: every tangent's
/// names, shapes and element types). On any mismatch, returns it and leaves the
/// optimiser as it was.
pub fn load_optimizer_bytes<M, O>(
    optimizer: &mut O,
    model: &M,
    bytes: &[u8],
) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters>,
    O: OptimizerState<M>,
{
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let header = OptimizerHeader::read(optimizer, bytes)?;
    let mut state = header.fresh_state(model);
    load_file(&mut state, &file, "")?;
    header.restore(optimizer, state)
}

/// Reads an optimiser's checkpoint from the safetensors file at `path`
/// ([`load_optimizer_bytes`]).
pub fn load_optimizer<M, O>(
    optimizer: &mut O,
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters>,
    O: OptimizerState<M>,
{
    load_optimizer_bytes(optimizer, model, &read(path.as_ref())?)
}

/// The model's parameters and its optimiser's checkpoint as one safetensors file in
/// memory (PyTorch's `torch.save({"model": …, "optimizer": …})`): the parameters
/// under `model.` (`model.0.weight`), the optimiser's state under `optimizer.`
/// (`optimizer.m.0.weight`), its settings and step count in the header.
pub fn checkpoint_to_bytes<M, O>(model: &M, optimizer: &O) -> Result<Vec<u8>, ParameterFileError>
where
    M: Differentiable<Tangent: Parameters> + Parameters,
    O: OptimizerState<M>,
{
    let state = optimizer.state().unwrap_or(&[]);
    let visit = |f: &mut dyn FnMut(&str, ParameterLeaf<'_>)| {
        let path = &mut String::new();
        with_segment(path, &MODEL_PREFIX, |path| model.visit_state(path, f));
        with_segment(path, &OPTIMIZER_PREFIX, |path| visit_named(O::STATE, state, path, f));
    };
    encode_file(visit, optimizer_header(optimizer))
}

/// Writes the model's parameters and its optimiser's checkpoint to one safetensors
/// file at `path` ([`checkpoint_to_bytes`]), to resume training with
/// [`load_checkpoint`].
pub fn save_checkpoint<M, O>(
    model: &M,
    optimizer: &O,
    path: impl AsRef<Path>,
) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters> + Parameters,
    O: OptimizerState<M>,
{
    write(path.as_ref(), &checkpoint_to_bytes(model, optimizer)?)
}

/// Reads a checkpoint of a model and its optimiser from memory
/// ([`checkpoint_to_bytes`]): the parameters, and the optimiser's settings, step
/// count and state, everything checked against the model's types before anything is
/// written. On any mismatch, returns it and leaves both as they were.
pub fn load_checkpoint_bytes<M, O>(
    model: &mut M,
    optimizer: &mut O,
    bytes: &[u8],
) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters> + Parameters + Clone,
    O: OptimizerState<M>,
{
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let header = OptimizerHeader::read(optimizer, bytes)?;
    // Into a copy of the model (buffers included), kept only once the optimiser has
    // taken its part.
    let mut checkpoint = Checkpoint { model: model.clone(), state: header.fresh_state(model) };
    load_file(&mut checkpoint, &file, "")?;
    header.restore(optimizer, checkpoint.state)?;
    *model = checkpoint.model;
    Ok(())
}

/// Reads a checkpoint of a model and its optimiser from the safetensors file at
/// `path` ([`load_checkpoint_bytes`]).
pub fn load_checkpoint<M, O>(
    model: &mut M,
    optimizer: &mut O,
    path: impl AsRef<Path>,
) -> Result<(), ParameterFileError>
where
    M: Differentiable<Tangent: Parameters> + Parameters + Clone,
    O: OptimizerState<M>,
{
    load_checkpoint_bytes(model, optimizer, &read(path.as_ref())?)
}

/// The prefixes of a checkpoint's two parts.
const MODEL_PREFIX: &str = "model";
const OPTIMIZER_PREFIX: &str = "optimizer";

/// A model and its optimiser's state being read from one checkpoint.
struct Checkpoint<M, P> {
    model: M,
    state: NamedState<P>,
}

impl<M: Parameters, P: Parameters> Parameters for Checkpoint<M, P> {
    fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        with_segment(path, &MODEL_PREFIX, |path| self.model.visit_parameters(path, f));
        with_segment(path, &OPTIMIZER_PREFIX, |path| self.state.visit_parameters(path, f));
    }
    fn visit_parameters_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        with_segment(path, &MODEL_PREFIX, |path| self.model.visit_parameters_mut(path, f));
        with_segment(path, &OPTIMIZER_PREFIX, |path| self.state.visit_parameters_mut(path, f));
    }
    fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
        with_segment(path, &MODEL_PREFIX, |path| self.model.visit_buffers(path, f));
    }
    fn visit_buffers_mut(&mut self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {
        with_segment(path, &MODEL_PREFIX, |path| self.model.visit_buffers_mut(path, f));
    }
}

/// The header of an optimiser's checkpoint: one line, `kind; state=kept|none;
/// name=value; …` (`Display` of an `f64` is the shortest text that reads back to the
/// same bits).
fn optimizer_header<M: Differentiable, O: OptimizerState<M>>(optimizer: &O) -> Vec<(String, String)> {
    let kept = if optimizer.state().is_some() { "kept" } else { "none" };
    let mut line = format!("{}; state={kept}", O::KIND);
    for (name, value) in optimizer.settings() {
        line.push_str(&format!("; {name}={value}"));
    }
    vec![(OPTIMIZER_KEY.to_owned(), line)]
}

/// An optimiser's header read back and checked against the optimiser: its kind,
/// then exactly the state and each of the optimiser's settings, once each.
struct OptimizerHeader {
    /// The names of the state tangents the file holds (none before the first step).
    state: &'static [&'static str],
    entries: Vec<(String, String)>,
}

impl OptimizerHeader {
    fn read<M: Differentiable, O: OptimizerState<M>>(
        optimizer: &O,
        bytes: &[u8],
    ) -> Result<Self, ParameterFileError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format_error)?;
        let line = header.metadata().as_ref().and_then(|metadata| metadata.get(OPTIMIZER_KEY));
        let mut parts = line.map(|line| line.split("; ")).into_iter().flatten();
        let kind = parts.next();
        if kind != Some(O::KIND) {
            return Err(ParameterFileError::Optimizer { expected: O::KIND, file: kind.map(str::to_owned) });
        }
        let known: Vec<&str> =
            core::iter::once("state").chain(optimizer.settings().into_iter().map(|(name, _)| name)).collect();
        let mut entries: Vec<(String, String)> = Vec::new();
        for part in parts {
            match part.split_once('=') {
                Some((name, value))
                    if known.contains(&name) && !entries.iter().any(|(seen, _)| seen == name) =>
                {
                    entries.push((name.to_owned(), value.to_owned()));
                }
                _ => return Err(ParameterFileError::Setting(part.to_owned())),
            }
        }
        let state = match entries.iter().find(|(name, _)| name == "state").map(|(_, value)| value.as_str()) {
            Some("kept") => O::STATE,
            Some("none") => &[],
            _ => return Err(ParameterFileError::Setting("state".to_owned())),
        };
        Ok(OptimizerHeader { state, entries })
    }

    /// Zero state tangents shaped like the model, one per state name, to read the
    /// file's into (none when the file holds no state).
    fn fresh_state<M: Differentiable>(&self, model: &M) -> NamedState<M::Tangent> {
        NamedState { names: self.state, tangents: self.state.iter().map(|_| model.zero_tangent()).collect() }
    }

    /// Gives the optimiser the settings and the state read.
    fn restore<M: Differentiable, O: OptimizerState<M>>(
        &self,
        optimizer: &mut O,
        state: NamedState<M::Tangent>,
    ) -> Result<(), ParameterFileError> {
        let setting = |name: &'static str| {
            let value = self.entries.iter().find(|(key, _)| key == name).map(|(_, value)| value);
            value.and_then(|text| text.parse().ok())
        };
        let state = (!self.state.is_empty()).then_some(state.tangents);
        optimizer.restore(&setting, state).map_err(|name| ParameterFileError::Setting(name.to_owned()))
    }
}
