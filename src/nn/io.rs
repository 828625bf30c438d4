//! Parameter files in the [safetensors](https://github.com/huggingface/safetensors)
//! format: one tensor per parameter leaf, named by its path ([`crate::nn::params`]),
//! `F32` or `F64` (a complex leaf as its real and imaginary parts, with a last axis of
//! 2), little-endian, bit-exact both ways.
//!
//! Loading checks the file against the model's own types before it writes anything:
//! every parameter present with its shape and element type, no tensor left over. A
//! mismatch, or a truncated or malformed file, returns a [`ParameterFileError`]
//! naming it, and the model is left as it was. (The format has no checksum: a changed
//! byte inside a tensor's data loads as a different value. On `Cuda` tensors the
//! parameters pass through host copies, leaf by leaf.)
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
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::params::{Elements, ElementsMut, Parameters};

/// Why a parameter file could not be written or read into a model.
#[derive(Debug)]
pub enum ParameterFileError {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// The bytes are not a valid safetensors file (truncated, corrupted).
    Format(String),
    /// A parameter of the model has no tensor in the file.
    Missing(String),
    /// A tensor of the file is no parameter of the model.
    Unexpected(String),
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
}

impl fmt::Display for ParameterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterFileError::Io(error) => write!(f, "parameter file: {error}"),
            ParameterFileError::Format(reason) => write!(f, "not a valid safetensors file: {reason}"),
            ParameterFileError::Missing(name) => write!(f, "parameter `{name}` is not in the file"),
            ParameterFileError::Unexpected(name) => {
                write!(f, "the file's tensor `{name}` is no parameter of the model")
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
        }
    }
}

impl std::error::Error for ParameterFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParameterFileError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ParameterFileError {
    fn from(error: std::io::Error) -> Self {
        ParameterFileError::Io(error)
    }
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

/// The model's parameters as a safetensors file in memory.
pub fn to_bytes<M: Parameters>(model: &M) -> Result<Vec<u8>, ParameterFileError> {
    let mut encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut names = BTreeSet::new();
    let mut duplicate = None;
    model.visit_parameters(&mut String::new(), &mut |name, leaf| {
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
    safetensors::serialize(views, None).map_err(format_error)
}

/// Writes the model's parameters to a safetensors file at `path`.
pub fn save<M: Parameters>(model: &M, path: impl AsRef<Path>) -> Result<(), ParameterFileError> {
    std::fs::write(path, to_bytes(model)?)?;
    Ok(())
}

/// Reads a safetensors file from memory into the model's parameters, or returns
/// the first mismatch and leaves the model as it was.
pub fn load_bytes<M: Parameters>(model: &mut M, bytes: &[u8]) -> Result<(), ParameterFileError> {
    let file = SafeTensors::deserialize(bytes).map_err(format_error)?;
    let mut seen = BTreeSet::new();
    let mut problem = None;
    model.visit_parameters(&mut String::new(), &mut |name, leaf| {
        if problem.is_some() {
            return;
        }
        let model_dtype = dtype(&leaf.elements);
        problem = match file.tensor(name) {
            Err(_) => Some(ParameterFileError::Missing(name.to_owned())),
            Ok(_) if !seen.insert(name.to_owned()) => {
                Some(ParameterFileError::DuplicateName(name.to_owned()))
            }
            Ok(tensor) if tensor.dtype() != model_dtype => Some(ParameterFileError::ElementType {
                name: name.to_owned(),
                model: model_dtype,
                file: tensor.dtype(),
            }),
            Ok(tensor) if tensor.shape() != leaf.shape => Some(ParameterFileError::Shape {
                name: name.to_owned(),
                model: leaf.shape.to_vec(),
                file: tensor.shape().to_vec(),
            }),
            Ok(_) => None,
        };
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    if let Some(extra) = file.names().into_iter().find(|name| !seen.contains(*name)) {
        return Err(ParameterFileError::Unexpected(extra.to_owned()));
    }
    // Every name, type and shape matches: the copy cannot fail halfway.
    model.visit_parameters_mut(&mut String::new(), &mut |name, leaf| {
        let bytes = file.tensor(name).expect("checked above").data();
        match leaf.elements {
            ElementsMut::F32(values) => values
                .iter_mut()
                .zip(bytes.chunks_exact(4))
                .for_each(|(x, b)| *x = f32::from_le_bytes(b.try_into().expect("4 bytes"))),
            ElementsMut::F64(values) => values
                .iter_mut()
                .zip(bytes.chunks_exact(8))
                .for_each(|(x, b)| *x = f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        }
    });
    Ok(())
}

/// Reads the safetensors file at `path` into the model's parameters, or returns
/// the first mismatch and leaves the model as it was.
pub fn load<M: Parameters>(model: &mut M, path: impl AsRef<Path>) -> Result<(), ParameterFileError> {
    load_bytes(model, &std::fs::read(path)?)
}
