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
}

impl ShapeError {
    /// A mismatch in `operation` between `lhs` and `rhs`, which violates `requirement`.
    pub fn new(operation: &'static str, lhs: Dims, rhs: Dims, requirement: &'static str) -> Self {
        ShapeError { operation, lhs, rhs, requirement }
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
        write!(
            f,
            "{}: shapes {} and {} are incompatible ({})",
            self.operation, self.lhs, self.rhs, self.requirement
        )
    }
}

impl core::error::Error for ShapeError {}

/// Unwraps a checked result, panicking with the error's message.
#[track_caller]
#[inline(always)]
pub(crate) fn or_panic<T>(result: Result<T, ShapeError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    }
}
