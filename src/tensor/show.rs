//! `Debug` and `Display`: the shape, then the elements nested by axis.

use core::fmt;

use super::{Storage, Tensor};
use crate::shape::Shape;

/// Writes `data` (row-major, shape `sizes`) as nested brackets, formatting each
/// element with `element`.
pub(crate) fn write_nested<T>(
    f: &mut fmt::Formatter<'_>,
    sizes: &[usize],
    data: &[T],
    element: &impl Fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    let Some((&len, rest)) = sizes.split_first() else {
        return element(&data[0], f);
    };
    let stride: usize = rest.iter().product();
    f.write_str("[")?;
    for i in 0..len {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_nested(f, rest, &data[i * stride..(i + 1) * stride], element)?;
    }
    f.write_str("]")
}

impl<T: fmt::Debug, S: Shape, K: Storage<T, S>> fmt::Debug for Tensor<T, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor {} ", self.dims())?;
        write_nested(f, self.dims().as_slice(), self.as_slice(), &|x, f| fmt::Debug::fmt(x, f))
    }
}

/// ```
/// use fluxion::prelude::*;
/// let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]);
/// assert_eq!(m.to_string(), "[[1, 2], [3, 4]] (shape [2, 2])");
/// ```
impl<T: fmt::Display, S: Shape, K: Storage<T, S>> fmt::Display for Tensor<T, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nested(f, self.dims().as_slice(), self.as_slice(), &|x, f| fmt::Display::fmt(x, f))?;
        write!(f, " (shape {})", self.dims())
    }
}
