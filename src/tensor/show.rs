//! `Debug`, `Display` and the exponent forms `{:e}`, `{:E}`: the elements nested by
//! axis, with the shape.

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

/// The elements nested by axis, each written by `element`, then the shape.
fn write_with_shape<T, S: Shape, K: Storage<T, S>>(
    tensor: &Tensor<T, S, K>,
    f: &mut fmt::Formatter<'_>,
    element: &impl Fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    write_nested(f, tensor.dims().as_slice(), tensor.as_slice(), element)?;
    write!(f, " (shape {})", tensor.dims())
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
        write_with_shape(self, f, &|x, f| fmt::Display::fmt(x, f))
    }
}

/// Scientific notation, element by element, as `Display` (`{:e}`, `{:.2e}`):
///
/// ```
/// use fluxion::prelude::*;
/// let v: Vector<f64, 2> = Vector::from_array([1234.5, 0.001]);
/// assert_eq!(format!("{v:.1e}"), "[1.2e3, 1.0e-3] (shape [2])");
/// assert_eq!(format!("{v:E}"), "[1.2345E3, 1E-3] (shape [2])");
/// ```
impl<T: fmt::LowerExp, S: Shape, K: Storage<T, S>> fmt::LowerExp for Tensor<T, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_with_shape(self, f, &|x, f| fmt::LowerExp::fmt(x, f))
    }
}

/// `{:E}`: as [`LowerExp`](fmt::LowerExp), with a capital E.
impl<T: fmt::UpperExp, S: Shape, K: Storage<T, S>> fmt::UpperExp for Tensor<T, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_with_shape(self, f, &|x, f| fmt::UpperExp::fmt(x, f))
    }
}
