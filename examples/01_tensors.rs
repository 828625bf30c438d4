//! A tour of fluxion's tensors: static shapes, the product table, reductions and
//! layout changes, and dynamic shapes with run-time checks.

// The first lines are the README's quickstart verbatim, `clone` and `&` included.
#![allow(clippy::clone_on_copy, clippy::op_ref)]

use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let x: Vector<f64, 3> = Vector::from_array([1., 0., -1.]);
    let y: Vector<f64, 2> = a.matmul(&x);
    let at: Matrix<f64, 3, 2> = a.transpose();
    let g: Matrix<f64, 2, 2> = a.matmul(&at);
    let h: Matrix<f64, 2, 3> = a.hadamard(&a);
    let d: f64 = x.dot(&x);
    let s: Matrix<f64, 2, 3> = a.clone() * 2.0;
    let sum: Matrix<f64, 2, 3> = &a + &h;
    let o: Matrix<f64, 3, 3> = x.outer(&x);
    let r: Matrix<f64, 3, 2> = a.reshape();
    let e: f64 = a[[1, 2]];
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    let ip: Complex64 = z.inner(&z);

    println!("a        = {a}");
    println!("a·x      = {y}");
    println!("a·aᵀ     = {g}");
    println!("a ⊙ a    = {h}");
    println!("x·x      = {d}");
    println!("2a       = {s}");
    println!("a + a⊙a  = {sum}");
    println!("x ⊗ x    = {o}");
    println!("reshaped = {r}");
    println!("a[1, 2]  = {e}");
    println!("⟨z, z⟩   = {ip}");

    let logits: Matrix<f64, 2, 3> = Matrix::from_array([[1000., 1001., 1002.], [0., 0., 0.]]);
    println!("softmax  = {:.4}", logits.softmax(Axis::<1>));
    println!("row sums = {}", a.sum_axis(Axis::<1>));

    // Dynamic shapes: checked when the operation runs.
    let m = DMatrix::from_shape_vec((Dyn(2), Dyn(2)), vec![1., 2., 3., 4.]).expect("4 elements");
    let v = DVector::from_shape_vec((Dyn(3),), vec![1., 1., 1.]).expect("3 elements");
    match m.try_matmul(&v) {
        Ok(product) => println!("m·v = {product}"),
        Err(error) => println!("as expected, {error}"),
    }
}
