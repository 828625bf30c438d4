use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    let doubled: Vector<Complex64, 2> = z * 2.0;
    assert_eq!(doubled.to_array(), [Complex64::new(2., 4.), Complex64::new(0., -2.)]);
    let halved: Vector<Complex64, 2> = &z / 2.0;
    assert_eq!(halved.to_array(), [Complex64::new(0.5, 1.), Complex64::new(0., -0.5)]);
    let rotated: Vector<Complex64, 2> = z * Complex64::new(0., 1.);
    assert_eq!(rotated.to_array(), [Complex64::new(-2., 1.), Complex64::new(1., 0.)]);
}
