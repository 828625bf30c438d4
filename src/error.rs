//! Errors of operations whose shapes are checked at run time.

use core::fmt;

use crate::shape::Dims;

/// Two shapes that an operation cannot combine, named in full.
///
/// Returned by every `try_*` method; the plain methods panic with the same message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeError {
    operation: &'static str,
    lhs: Dims,
    rhs: Dims,
    requirement: &'static str,
    subject: Subject,
}

/// What a [`ShapeError`]'s two shapes describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject {
    /// Two operands' shapes.
    Shapes,
    /// Key lengths of padded sequences: `[count]` against `[sequences]`.
    LengthCount,
    /// One sequence's key length: `[sequence, length]` against `[tokens]`.
    KeyLength,
    /// One matrix's shape (both shapes), which is not square.
    NotSquare,
    /// One matrix's shape (both shapes), which has fewer rows than columns.
    Wide,
}

impl ShapeError {
    /// A mismatch in `operation` between `lhs` and `rhs`, which violates `requirement`.
    pub fn new(operation: &'static str, lhs: Dims, rhs: Dims, requirement: &'static str) -> Self {
        ShapeError { operation, lhs, rhs, requirement, subject: Subject::Shapes }
    }

    /// `count` key lengths given for `sequences` sequences in `operation` (shapes
    /// `[count]` and `[sequences]`).
    pub(crate) fn length_count(operation: &'static str, count: usize, sequences: usize) -> Self {
        let requirement = "one key length per sequence";
        ShapeError {
            subject: Subject::LengthCount,
            ..Self::new(operation, Dims::new(&[count]), Dims::new(&[sequences]), requirement)
        }
    }

    /// Sequence `sequence`'s key length `length` is not from 1 to `tokens` in
    /// `operation` (shapes `[sequence, length]` and `[tokens]`).
    pub(crate) fn key_length(operation: &'static str, [sequence, length]: [usize; 2], tokens: usize) -> Self {
        let requirement = "the key tokens per sequence";
        ShapeError {
            subject: Subject::KeyLength,
            ..Self::new(operation, Dims::new(&[sequence, length]), Dims::new(&[tokens]), requirement)
        }
    }

    /// A matrix of `shape` given to `operation`, which needs a square one (both
    /// shapes `shape`).
    pub(crate) fn not_square(operation: &'static str, shape: Dims) -> Self {
        ShapeError { subject: Subject::NotSquare, ..Self::new(operation, shape, shape, "a square matrix") }
    }

    /// A matrix of `shape` given to `operation`, which needs at least as many rows as
    /// columns, as `requirement` says (both shapes `shape`).
    pub(crate) fn wide(operation: &'static str, shape: Dims, requirement: &'static str) -> Self {
        ShapeError { subject: Subject::Wide, ..Self::new(operation, shape, shape, requirement) }
    }

    /// The operation that failed, e.g. `"matmul"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The left (or first) shape.
    pub fn lhs(&self) -> Dims {
        self.lhs
    }

    /// The right (or second) shape.
    pub fn rhs(&self) -> Dims {
        self.rhs
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (operation, requirement, lhs, rhs) = (self.operation, self.requirement, self.lhs, self.rhs);
        match (self.subject, lhs.as_slice(), rhs.as_slice()) {
            (Subject::LengthCount, [count], [sequences]) => {
                write!(f, "{operation}: {count} key lengths for {sequences} sequences ({requirement})")
            }
            (Subject::KeyLength, [sequence, length], [tokens]) => {
                write!(
                    f,
                    "{operation}: sequence {sequence} has key length {length}, not from 1 to {tokens} ({requirement})"
                )
            }
            (Subject::NotSquare, ..) => write!(f, "{operation}: a matrix of shape {lhs} is not square"),
            (Subject::Wide, ..) => {
                write!(f, "{operation}: a matrix of shape {lhs} has fewer rows than columns ({requirement})")
            }
            _ => write!(f, "{operation}: shapes {lhs} and {rhs} are incompatible ({requirement})"),
        }
    }
}

impl core::error::Error for ShapeError {}

/// Unwraps a checked result, panicking with the error's message.
#[track_caller]
#[inline(always)]
pub(crate) fn or_panic<T, E: fmt::Display>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    }
}
