use fluxion::prelude::*;

fn main() {
    // A batch of any length of 3-vectors times a static 3×4 matrix.
    let batch: Tensor<f64, (Dyn, Const<3>), Heap> =
        Tensor::from_shape_vec((Dyn(2), Const), vec![1., 0., 0., 0., 1., 0.]).unwrap();
    let w: Tensor<f64, (Const<3>, Const<4>), Heap> = Tensor::from_fn(|[i, j]: [usize; 2]| (i * 4 + j) as f64);
    let out: Tensor<f64, (Dyn, Const<4>), Heap> = batch.matmul(&w);
    assert_eq!(out.dims().as_slice(), &[2, 4]);
    assert_eq!(out.to_vec(), vec![0., 1., 2., 3., 4., 5., 6., 7.]);

    // A dynamic inner dimension is checked when the product runs.
    let left: DMatrix<f64> = DMatrix::zeros_shaped((Dyn(2), Dyn(3)));
    let right: DMatrix<f64> = DMatrix::zeros_shaped((Dyn(2), Dyn(2)));
    assert!(left.try_matmul(&right).is_err());

    // Dynamic rows, static columns, summed over the static axis.
    let rows: Tensor<f64, (Dyn,), Heap> = batch.sum_axis(Axis::<1>);
    assert_eq!(rows.to_vec(), vec![1., 1.]);
}
