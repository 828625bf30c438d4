//! Small static tensors built beside the arrays they hold (`construction/*`): the
//! constructors a control loop calls, each against the array built directly.

use criterion::{Criterion, black_box, criterion_group};
use fluxion::prelude::*;

use crate::common::{compare, config};

criterion_group! {
    name = benches;
    config = config();
    targets = construction
}

fn construction(c: &mut Criterion) {
    let mut group = c.benchmark_group("construction");
    let scale = black_box(0.5f64);
    compare(
        &mut group,
        "from_fn/3x3",
        9,
        || Matrix::<f64, 3, 3>::from_fn(|[i, j]| scale * (i * 3 + j) as f64),
        || -> [[f64; 3]; 3] {
            core::array::from_fn(|i| core::array::from_fn(|j| scale * (i * 3 + j) as f64))
        },
    );
    compare(
        &mut group,
        "from_fn/3",
        3,
        || Vector::<f64, 3>::from_fn(|[i]| scale * i as f64),
        || -> [f64; 3] { core::array::from_fn(|i| scale * i as f64) },
    );
    compare(&mut group, "zeros/3x3", 9, Matrix::<f64, 3, 3>::zeros, || [[0.0f64; 3]; 3]);
    compare(&mut group, "ones/3x3", 9, Matrix::<f64, 3, 3>::ones, || [[1.0f64; 3]; 3]);
    compare(
        &mut group,
        "full/3x3",
        9,
        || Matrix::<f64, 3, 3>::full(black_box(2.0)),
        || [[black_box(2.0f64); 3]; 3],
    );
    let array = black_box([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    compare(
        &mut group,
        "from_array/3x3",
        9,
        || Matrix::<f64, 3, 3>::from_array(black_box(array)),
        || black_box(array),
    );
    let m = Matrix::<f64, 3, 3>::from_array(array);
    compare(&mut group, "to_array/3x3", 9, || black_box(&m).to_array(), || *black_box(&array));
    group.finish();
}
