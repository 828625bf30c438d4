use fluxion::prelude::*;

fn takes_by_value(m: Matrix<f64, 2, 2>) -> f64 {
    m.sum()
}

fn main() {
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    // Inline tensors are `Copy`: `m` stays usable after being moved twice.
    let copy = m;
    assert_eq!(takes_by_value(m), 10.0);
    assert_eq!(takes_by_value(m), 10.0);
    assert_eq!(copy, m);
    // Operators that take their operands by value also leave a copy behind.
    let doubled = m + m;
    assert_eq!(doubled, m * 2.0);
    let z: Vector<Complex32, 1> = Vector::from_array([Complex32::new(1., 1.)]);
    let w = z;
    assert_eq!(z, w);
}
