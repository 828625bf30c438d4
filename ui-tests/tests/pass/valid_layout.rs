use fluxion::prelude::*;

fn main() {
    let a: Vector<f64, 2> = Vector::from_array([1., 2.]);
    let b: Vector<f64, 3> = Vector::from_array([3., 4., 5.]);
    let c: Vector<f64, 5> = a.concat(Axis::<0>, &b);
    assert_eq!(c.to_array(), [1., 2., 3., 4., 5.]);

    let m: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let n: Matrix<f64, 2, 1> = Matrix::from_array([[7.], [8.]]);
    let wide: Matrix<f64, 2, 4> = m.concat(Axis::<1>, &n);
    assert_eq!(wide.to_array(), [[1., 2., 3., 7.], [4., 5., 6., 8.]]);

    let right: Matrix<f64, 2, 2> = m.narrow::<1, 1, 2>();
    assert_eq!(right.to_array(), [[2., 3.], [5., 6.]]);
    let last_row: Matrix<f64, 1, 3> = m.narrow::<0, 1, 1>();
    assert_eq!(last_row.to_array(), [[4., 5., 6.]]);

    let rows: Matrix<f64, 3, 2> = a.broadcast();
    assert_eq!(rows.to_array(), [[1., 2.], [1., 2.], [1., 2.]]);
    let batch: Tensor3<f64, 2, 2, 3> = m.broadcast();
    assert_eq!(batch[[1, 1, 2]], 6.0);

    let flat: Vector<f64, 6> = m.flatten();
    assert_eq!(flat.to_array(), [1., 2., 3., 4., 5., 6.]);
    let cube: Tensor3<f64, 1, 2, 3> = flat.reshape();
    assert_eq!(cube[[0, 1, 0]], 4.0);
}
