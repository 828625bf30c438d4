//! A `#![no_std]` crate without an allocator that uses fluxion with default features
//! off: it proves the core builds and works for embedded, real-time code.
#![no_std]

use fluxion::prelude::*;

/// One dense layer with tanh, `y = tanh(W x + b)`, entirely on the stack.
pub fn dense_tanh(w: &Matrix<f32, 2, 3>, b: &Vector<f32, 2>, x: &Vector<f32, 3>) -> Vector<f32, 2> {
    (w.matmul(x) + b).tanh()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_layer_runs_without_std() {
        let w: Matrix<f32, 2, 3> = Matrix::from_array([[1., 0., 0.], [0., 1., 0.]]);
        let b: Vector<f32, 2> = Vector::from_array([0., 0.5]);
        let x: Vector<f32, 3> = Vector::from_array([0.25, -0.5, 2.]);
        let y = dense_tanh(&w, &b, &x);
        assert!((y[[0]] - 0.25f32.tanh()).abs() < 1e-6);
        assert_eq!(y[[1]], 0.0);
    }
}
