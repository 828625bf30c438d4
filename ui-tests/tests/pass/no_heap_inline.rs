use fluxion::prelude::*;

// Inline tensors keep their elements in the value itself: no allocation, and exactly
// the size of the nested array.
const _: () = assert!(core::mem::size_of::<Matrix<f64, 2, 3>>() == 6 * core::mem::size_of::<f64>());
const _: () = assert!(core::mem::size_of::<Tensor3<f32, 2, 2, 2>>() == 8 * core::mem::size_of::<f32>());

fn layer(w: &Matrix<f32, 2, 3>, b: &Vector<f32, 2>, x: &Vector<f32, 3>) -> Vector<f32, 2> {
    (w.matmul(x) + b).relu()
}

fn main() {
    let w: Matrix<f32, 2, 3> = Matrix::from_array([[1., 0., -1.], [0., 1., 0.]]);
    let b: Vector<f32, 2> = Vector::from_array([0.5, -3.]);
    let x: Vector<f32, 3> = Vector::from_array([1., 2., 3.]);
    let y = layer(&w, &b, &x);
    assert_eq!(y.to_array(), [0., 0.]);
    let p: Vector<f32, 2> = y.softmax(Axis::<0>);
    assert_eq!(p.to_array(), [0.5, 0.5]);
    let total: Tensor0<f32> = x.sum_axis(Axis::<0>);
    assert_eq!(total[[]], 6.);
}
