use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let b: Matrix<f64, 2, 2> = 2.0 * a;
    assert_eq!(b.to_array(), [[2., 4.], [6., 8.]]);
    let c: Matrix<f64, 2, 2> = 2.0 * &a;
    assert_eq!(c, b);
    let x: Vector<f32, 2> = Vector::from_array([1., -1.]);
    let y: Vector<f32, 2> = 0.5f32 * x;
    assert_eq!(y.to_array(), [0.5, -0.5]);
}
