use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let x: Vector<f64, 3> = Vector::from_array([1., 0., -1.]);
    let y: Vector<f64, 2> = a.matmul(&x);
    assert_eq!(y.to_array(), [-2., -2.]);
    let at: Matrix<f64, 3, 2> = a.transpose();
    let g: Matrix<f64, 2, 2> = a.matmul(&at);
    assert_eq!(g.to_array(), [[14., 32.], [32., 77.]]);
    let h: Matrix<f64, 2, 3> = a.hadamard(&a);
    assert_eq!(h.to_array(), [[1., 4., 9.], [16., 25., 36.]]);
    let d: f64 = x.dot(&x);
    assert_eq!(d, 2.0);
    let s: Matrix<f64, 2, 3> = a.clone() * 2.0;
    assert_eq!(s.to_array(), [[2., 4., 6.], [8., 10., 12.]]);
    let sum: Matrix<f64, 2, 3> = &a + &h;
    assert_eq!(sum.to_array(), [[2., 6., 12.], [20., 30., 42.]]);
    let o: Matrix<f64, 3, 3> = x.outer(&x);
    assert_eq!(o.to_array(), [[1., 0., -1.], [0., 0., 0.], [-1., 0., 1.]]);
    let r: Matrix<f64, 3, 2> = a.reshape();
    assert_eq!(r.to_array(), [[1., 2.], [3., 4.], [5., 6.]]);
    let e: f64 = a[[1, 2]];
    assert_eq!(e, 6.0);
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    let ip: Complex64 = z.inner(&z);
    assert_eq!(ip, Complex64::new(6., 0.));
}
