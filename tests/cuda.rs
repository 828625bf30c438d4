//! GPU parity: every primitive of `Tensor<_, _, Cuda>` gives the host's forward result
//! and cotangents, within 1e-12 relative in f64 and 1e-5 in f32, and a training loop
//! on the GPU follows the host's loss curve.
//!
//! Without a GPU each test prints why it skips; with `FLUXION_REQUIRE_GPU=1` (set by
//! `scripts/gpu-checks.sh` on the GPU machine) a missing GPU fails instead.
#![cfg(feature = "cuda")]

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use num_complex::Complex;

use fluxion::autodiff::{RealOutput, TracedInput, Write, checkpoint};
use fluxion::backend::cuda::Device;
use fluxion::nn::layer::{
    Conv2d, Dropout, Flatten, LayerNorm, Linear, MaxPool2d, Module, Relu, Residual, Sequential, Tanh,
};
use fluxion::nn::loss::{Reduction, RowLosses, cross_entropy};
use fluxion::nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig, clip_grad_norm, global_norm};
use fluxion::ops::conv::{Groups, Padding, Stride};
use fluxion::ops::cuda as device_rules;
use fluxion::ops::elementwise::{self as host_rules, Elementary, FusedFunction, ScalarFunction};
use fluxion::ops::pool::{self as host_pool, Window};
use fluxion::ops::{reduce, softmax};
use fluxion::prelude::*;

#[path = "common/cuda_mlp.rs"]
mod cuda_mlp;
#[path = "common/gated_square.rs"]
mod gated_square;

use gated_square::GatedSquare;

/// GPU tests share the device: each holds this lock to read, and the one that
/// changes the device's matrix-product precision holds it alone.
static DEVICE_SETTINGS: RwLock<()> = RwLock::new(());

/// Whether a GPU is here; prints why not (and fails when one is required).
fn gpu_available() -> bool {
    match Device::get() {
        Ok(_) => true,
        Err(error) => {
            assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here: {error}");
            eprintln!("skipping a GPU test: {error}");
            false
        }
    }
}

/// A share of the GPU while the guard lives, or `None` where there is none.
fn gpu() -> Option<RwLockReadGuard<'static, ()>> {
    gpu_available().then(|| DEVICE_SETTINGS.read().unwrap_or_else(PoisonError::into_inner))
}

/// The GPU alone while the guard lives (no other test uses it), or `None`.
fn gpu_alone() -> Option<RwLockWriteGuard<'static, ()>> {
    gpu_available().then(|| DEVICE_SETTINGS.write().unwrap_or_else(PoisonError::into_inner))
}

/// Asserts |a − b| ≤ tol·max(1, |b|) elementwise (NaN only where the host has NaN).
#[track_caller]
fn assert_close<T: RealScalar>(device: &[T], host: &[T], tol: f64) {
    assert_eq!(device.len(), host.len());
    for (i, (&d, &h)) in device.iter().zip(host).enumerate() {
        let (d, h) = (d.to_f64(), h.to_f64());
        if h.is_nan() || d.is_nan() {
            assert!(h.is_nan() && d.is_nan(), "element {i}: device {d}, host {h}");
        } else if h.is_infinite() {
            assert_eq!(d, h, "element {i}");
        } else {
            assert!((d - h).abs() <= tol * h.abs().max(1.0), "element {i}: device {d}, host {h}");
        }
    }
}

const F64_TOL: f64 = 1e-12;

/// Every elementary function, `powi` at two exponents.
const ELEMENTARY: [Elementary<f64>; 10] = [
    Elementary::Exp,
    Elementary::Ln,
    Elementary::Sin,
    Elementary::Cos,
    Elementary::Tanh,
    Elementary::Sqrt,
    Elementary::Sigmoid,
    Elementary::Powi(3),
    Elementary::Powi(-2),
    Elementary::Powf(0.7),
];
const F32_TOL: f64 = 1e-5;
/// f32 sums of several hundred products: the rounding grows with their length.
const SUM_TOL: f64 = 28.0 * F32_TOL;

fn positive<const A: usize, const B: usize, const C: usize>(seed: u64) -> Tensor3<f64, A, B, C, Heap> {
    Tensor3::random_uniform(0.2, 2.0, seed)
}

fn signed<const A: usize, const B: usize, const C: usize>(seed: u64) -> Tensor3<f64, A, B, C, Heap> {
    Tensor3::random_uniform(-2.0, 2.0, seed)
}

#[test]
fn elementary_functions_and_their_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let x = positive::<3, 40, 70>(1);
    let y_bar = signed::<3, 40, 70>(2);
    let earlier = signed::<3, 40, 70>(3);
    let (dx, dy_bar) = (x.to_device(), y_bar.to_device());
    for f in ELEMENTARY {
        let y = x.elementary(f);
        let dy = dx.elementary(f);
        assert_close(&dy.to_vec(), y.as_slice(), F64_TOL);
        for write in [Write::Overwrite, Write::Accumulate] {
            let mut x_bar = earlier.clone();
            host_rules::elementary_pullback(f, (&x, &y, &y_bar), &mut x_bar, write);
            let mut dx_bar = earlier.to_device();
            device_rules::elementary_pullback(f, (&dx, &dy, &dy_bar), &mut dx_bar, write);
            assert_close(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
        }
        // f32 against the host's f32.
        let x32: Tensor3<f32, 3, 40, 70, Heap> = x.map(|v| v as f32);
        let f32_function = match f {
            Elementary::Powf(p) => Elementary::Powf(p as f32),
            Elementary::Powi(n) => Elementary::Powi(n),
            Elementary::Exp => Elementary::Exp,
            Elementary::Ln => Elementary::Ln,
            Elementary::Sin => Elementary::Sin,
            Elementary::Cos => Elementary::Cos,
            Elementary::Tanh => Elementary::Tanh,
            Elementary::Sqrt => Elementary::Sqrt,
            Elementary::Sigmoid => Elementary::Sigmoid,
        };
        assert_close(
            &x32.to_device().elementary(f32_function).to_vec(),
            x32.elementary(f32_function).as_slice(),
            F32_TOL,
        );
    }
}

#[test]
fn arithmetic_relu_and_scaling_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let (a, b) = (signed::<2, 33, 65>(4), signed::<2, 33, 65>(5));
    let (da, db) = (a.to_device(), b.to_device());
    assert_close(&(&da + &db).to_vec(), (&a + &b).as_slice(), F64_TOL);
    assert_close(&(&da - &db).to_vec(), (&a - &b).as_slice(), F64_TOL);
    assert_close(&da.hadamard(&db).to_vec(), a.hadamard(&b).as_slice(), F64_TOL);
    assert_close(&(&da * 2.5).to_vec(), (&a * 2.5).as_slice(), F64_TOL);
    assert_close(&(-&da).to_vec(), (-&a).as_slice(), F64_TOL);
    assert_close(&da.relu().to_vec(), a.relu().as_slice(), 0.0);

    let mut x_bar = b.clone();
    x_bar += &host_rules::relu_pullback(&a, &b);
    let mut dx_bar = db.clone();
    device_rules::relu_pullback(&da, &db, &mut dx_bar, Write::Accumulate);
    assert_close(&dx_bar.to_vec(), x_bar.as_slice(), 0.0);

    let (a_bar, b_bar) = fluxion::product::hadamard::hadamard_pullback(&a, &b, &b);
    let (mut da_bar, mut db_bar) = (da.clone(), da.clone());
    device_rules::hadamard_pullback(
        (&da, &db, &db),
        Some((&mut da_bar, Write::Overwrite)),
        Some((&mut db_bar, Write::Overwrite)),
    );
    assert_close(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
    assert_close(&db_bar.to_vec(), b_bar.as_slice(), F64_TOL);

    let mut w = da.clone();
    w.add_scaled(-0.5, &db);
    assert_close(&w.to_vec(), (&a - &(&b * 0.5)).as_slice(), F64_TOL);
}

/// softplus(x) = ln(1 + eˣ): a library author's function, one definition for both.
#[derive(Clone, Copy, Debug)]
struct Softplus;

impl ScalarFunction for Softplus {
    fn value<T: RealScalar>(&self, x: T) -> T {
        (T::one() + x.exp()).ln()
    }
    fn derivative<T: RealScalar>(&self, x: T, _y: T) -> T {
        T::one() / (T::one() + (-x).exp())
    }
}

#[test]
fn a_user_scalar_function_runs_as_a_generated_kernel() {
    let Some(_gpu) = gpu() else { return };
    let (x, y_bar) = (signed::<2, 10, 300>(6), signed::<2, 10, 300>(7));
    let (dx, dy_bar) = (x.to_device(), y_bar.to_device());
    let (y, dy) = (x.map_function(Softplus), dx.map_function(Softplus));
    assert_close(&dy.to_vec(), y.as_slice(), F64_TOL);
    let x_bar = host_rules::function_pullback(Softplus, (&x, &y, &y_bar));
    let mut dx_bar = dx.clone();
    device_rules::function_pullback(Softplus, (&dx, &dy, &dy_bar), &mut dx_bar, Write::Overwrite);
    assert_close(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
}

#[test]
fn reductions_along_every_axis_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let mut x = signed::<5, 300, 7>(8);
    x[[1, 2, 3]] = f64::NAN;
    let dx = x.to_device();
    assert_close(&dx.sum_axis(Axis::<0>).to_vec(), x.sum_axis(Axis::<0>).as_slice(), F64_TOL);
    assert_close(&dx.sum_axis(Axis::<1>).to_vec(), x.sum_axis(Axis::<1>).as_slice(), F64_TOL);
    assert_close(&dx.sum_axis(Axis::<2>).to_vec(), x.sum_axis(Axis::<2>).as_slice(), F64_TOL);
    assert_close(&dx.mean_axis(Axis::<1>).to_vec(), x.mean_axis(Axis::<1>).as_slice(), F64_TOL);
    assert_close(&dx.max_axis(Axis::<0>).to_vec(), x.max_axis(Axis::<0>).as_slice(), 0.0);
    assert_close(&dx.max_axis(Axis::<2>).to_vec(), x.max_axis(Axis::<2>).as_slice(), 0.0);
    assert!(dx.max().is_nan());

    let big: Tensor<f64, (Dyn,), Heap> = Tensor::random_uniform_shaped((Dyn(1 << 20),), -1.0, 1.0, 9);
    let d_big = big.to_device();
    assert!((d_big.sum() - big.sum()).abs() <= 1e-9 * big.iter().map(|v| v.abs()).sum::<f64>());
    assert_eq!(d_big.max(), big.max());
    assert!((d_big.mean() - big.mean()).abs() < 1e-12);

    // Pullbacks of sum, mean and sum_axis: the host's spread, written or added.
    let y_bar = signed::<5, 1, 7>(10).reshape::<(Const<5>, Const<7>)>();
    let mut dx_bar = dx.clone();
    device_rules::spread_along_pullback::<1, f64, (Const<5>, Const<300>, Const<7>)>(
        &y_bar.to_device(),
        1.0,
        &mut dx_bar,
        Write::Overwrite,
    );
    assert_close(&dx_bar.to_vec(), reduce::sum_axis_pullback::<1, _, _, _>(&x, &y_bar).as_slice(), 0.0);
    device_rules::fill_pullback(2.0, 1.0 / x.len() as f64, &mut dx_bar, Write::Overwrite);
    assert_close(&dx_bar.to_vec(), reduce::mean_pullback(&x, 2.0).as_slice(), F64_TOL);
}

#[test]
fn softmax_family_and_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let mut x = signed::<4, 10, 6>(11) * 30.0;
    x[[0, 0, 0]] = f64::INFINITY;
    x[[1, 2, 3]] = 1000.0;
    let dx = x.to_device();
    let y_bar = signed::<4, 10, 6>(12);
    let dy_bar = y_bar.to_device();
    macro_rules! along {
        ($axis:literal) => {{
            let axis = Axis::<$axis>;
            assert_close(&dx.logsumexp(axis).to_vec(), x.logsumexp(axis).as_slice(), F64_TOL);
            assert_close(&dx.log_softmax(axis).to_vec(), x.log_softmax(axis).as_slice(), F64_TOL);
            assert_close(&dx.softmax(axis).to_vec(), x.softmax(axis).as_slice(), F64_TOL);
            // Pullbacks on finite data.
            let x = signed::<4, 10, 6>(13) * 5.0;
            let dx = x.to_device();
            let (y, dy) = (x.log_softmax(axis), dx.log_softmax(axis));
            let mut dx_bar = dx.clone();
            device_rules::log_softmax_pullback::<$axis, _, _>(&dy, &dy_bar, &mut dx_bar, Write::Overwrite);
            assert_close(
                &dx_bar.to_vec(),
                softmax::log_softmax_pullback::<$axis, _, _, _>(&y, &y_bar).as_slice(),
                F64_TOL,
            );
            let (y, dy) = (x.softmax(axis), dx.softmax(axis));
            device_rules::softmax_pullback::<$axis, _, _>(&dy, &dy_bar, &mut dx_bar, Write::Overwrite);
            assert_close(
                &dx_bar.to_vec(),
                softmax::softmax_pullback::<$axis, _, _, _>(&y, &y_bar).as_slice(),
                F64_TOL,
            );
            let s_bar = x.logsumexp(axis).map(|v| v.sin());
            let (s, ds) = (x.logsumexp(axis), dx.logsumexp(axis));
            device_rules::logsumexp_pullback::<$axis, _, _>(
                &dx,
                (&ds, &s_bar.to_device()),
                &mut dx_bar,
                Write::Overwrite,
            );
            let _ = s;
            assert_close(
                &dx_bar.to_vec(),
                softmax::logsumexp_pullback::<$axis, _, _, _>(&x, &s_bar).as_slice(),
                F64_TOL,
            );
        }};
    }
    along!(0);
    along!(1);
    along!(2);
}

#[test]
fn layout_changes_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let m: Matrix<f64, 37, 70, Heap> = Matrix::random_uniform(-1.0, 1.0, 14);
    let dm = m.to_device();
    assert_close(&dm.transpose().to_vec(), m.transpose().as_slice(), 0.0);
    let bias: Vector<f64, 70, Heap> = Vector::random_uniform(-1.0, 1.0, 15);
    let rows: Matrix<f64, 37, 70, Heap> = bias.broadcast();
    assert_close(&bias.to_device().broadcast::<(Const<37>, Const<70>)>().to_vec(), rows.as_slice(), 0.0);
    let mut b_bar = bias.to_device();
    device_rules::broadcast_pullback(&dm, &mut b_bar, Write::Overwrite);
    assert_close(&b_bar.to_vec(), m.sum_axis(Axis::<0>).as_slice(), F64_TOL);
    let flat: Tensor<f64, (Dyn,), Heap> = m.try_reshape((Dyn(37 * 70),)).unwrap();
    assert_close(&dm.try_reshape((Dyn(37 * 70),)).unwrap().to_vec(), flat.as_slice(), 0.0);
    let error = dm.try_reshape((Dyn(5),)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "reshape: shapes [37, 70] and [5] are incompatible (the element counts must be equal)"
    );
}

#[test]
fn axis_permutations_match_the_host_in_every_mode() {
    use fluxion::autodiff::CudaDual;
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let Some(_gpu) = gpu() else { return };
    // Rank 4 with a dynamic axis, and complex rank 3.
    let x = Tensor::<f64, (Dyn, Const<3>, Const<5>, Const<7>), Heap>::random_uniform_shaped(
        (Dyn(2), Const, Const, Const),
        -1.0,
        1.0,
        70,
    );
    let host: Tensor<f64, (Const<7>, Dyn, Const<5>, Const<3>), Heap> = x.permute(Axes::<3, 0, 2, 1>);
    assert_close(&x.to_device().permute(Axes::<3, 0, 2, 1>).to_vec(), host.as_slice(), 0.0);
    let z: Tensor3<Complex64, 4, 6, 3, Heap> = Tensor3::random_uniform(-1.0, 1.0, 71);
    assert_eq!(z.to_device().permute(Axes::<2, 0, 1>).to_vec(), z.permute(Axes::<2, 0, 1>).as_slice());
    check_vjp(
        |z: Var<Tensor3<Complex64, 4, 6, 3, Cuda>>| z.permute(Axes::<2, 0, 1>),
        &z.to_device(),
        CheckOptions::f64(),
    )
    .unwrap();
    // Reverse mode against finite differences and the adjoint identity; forward mode
    // on GPU duals.
    let x3 = signed::<2, 3, 4>(72);
    check_vjp(
        |x: Var<Tensor3<f64, 2, 3, 4, Cuda>>| x.permute(Axes::<2, 0, 1>),
        &x3.to_device(),
        CheckOptions::f64(),
    )
    .unwrap();
    let v3 = signed::<2, 3, 4>(73);
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<2>, Const<3>, Const<4>)>| x.permute(Axes::<1, 2, 0>),
        &x3.to_device(),
        &v3.to_device(),
    );
    assert_eq!(tangent.to_vec(), v3.permute(Axes::<1, 2, 0>).as_slice());
}

#[test]
fn matrix_products_and_their_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let a: Matrix<f64, 65, 33, Heap> = Matrix::random_uniform(-1.0, 1.0, 16);
    let b: Matrix<f64, 33, 47, Heap> = Matrix::random_uniform(-1.0, 1.0, 17);
    let v: Vector<f64, 33, Heap> = Vector::random_uniform(-1.0, 1.0, 18);
    let (da, db, dv) = (a.to_device(), b.to_device(), v.to_device());
    let c = a.matmul(&b);
    assert_close(&da.matmul(&db).to_vec(), c.as_slice(), F64_TOL);
    assert_close(&da.matmul(&dv).to_vec(), a.matmul(&v).as_slice(), F64_TOL);
    let c_bar: Matrix<f64, 65, 47, Heap> = Matrix::random_uniform(-1.0, 1.0, 19);
    for write in [Write::Overwrite, Write::Accumulate] {
        let (mut a_bar, mut b_bar) = (a.clone(), b.clone());
        a.matmul_pullback(&b, &c_bar, Some((&mut a_bar, write)), Some((&mut b_bar, write)));
        let (mut da_bar, mut db_bar) = (da.clone(), db.clone());
        da.matmul_pullback(&db, &c_bar.to_device(), Some((&mut da_bar, write)), Some((&mut db_bar, write)));
        assert_close(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
        assert_close(&db_bar.to_vec(), b_bar.as_slice(), F64_TOL);
    }
    let x: Tensor3<f64, 3, 20, 30, Heap> = Tensor3::random_uniform(-1.0, 1.0, 20);
    let y: Tensor3<f64, 3, 30, 10, Heap> = Tensor3::random_uniform(-1.0, 1.0, 21);
    assert_close(&x.to_device().matmul(&y.to_device()).to_vec(), x.matmul(&y).as_slice(), F64_TOL);
    // A batch by one matrix, and its pullback (B̄ summed over the batch).
    let w: Matrix<f64, 30, 10, Heap> = Matrix::random_uniform(-1.0, 1.0, 24);
    let xw = x.matmul(&w);
    assert_close(&x.to_device().matmul(&w.to_device()).to_vec(), xw.as_slice(), F64_TOL);
    let (mut x_bar, mut w_bar) = (x.clone(), w.clone());
    x.matmul_pullback(&w, &xw, Some((&mut x_bar, Write::Overwrite)), Some((&mut w_bar, Write::Overwrite)));
    let (mut dx_bar, mut dw_bar) = (x.to_device(), w.to_device());
    let (dx, dw) = (x.to_device(), w.to_device());
    dx.matmul_pullback(
        &dw,
        &xw.to_device(),
        Some((&mut dx_bar, Write::Overwrite)),
        Some((&mut dw_bar, Write::Overwrite)),
    );
    assert_close(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
    assert_close(&dw_bar.to_vec(), w_bar.as_slice(), F64_TOL);

    // f32 through sgemm; dynamic shapes checked at run time, both shapes named.
    let a32: Tensor<f32, (Dyn, Dyn), Heap> =
        Tensor::random_uniform_shaped((Dyn(64), Dyn(128)), -1.0, 1.0, 22);
    let b32: Tensor<f32, (Dyn, Dyn), Heap> =
        Tensor::random_uniform_shaped((Dyn(128), Dyn(32)), -1.0, 1.0, 23);
    assert_close(&a32.to_device().matmul(&b32.to_device()).to_vec(), a32.matmul(&b32).as_slice(), F32_TOL);
    let error = a32.to_device().try_matmul(&a32.to_device()).unwrap_err();
    assert!(
        error.to_string().starts_with("matmul: shapes [64, 128] and [64, 128] are incompatible"),
        "{error}"
    );
}

#[test]
fn transposed_products_and_their_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    // A·Bᵀ: [65, 33]×[47, 33]; Aᵀ·B: [33, 65]×[33, 47].
    let a: Matrix<f64, 65, 33, Heap> = Matrix::random_uniform(-1.0, 1.0, 40);
    let b: Matrix<f64, 47, 33, Heap> = Matrix::random_uniform(-1.0, 1.0, 41);
    let (da, db) = (a.to_device(), b.to_device());
    assert_close(&da.matmul_transposed(&db).to_vec(), a.matmul_transposed(&b).as_slice(), F64_TOL);
    let (at, bt): (Matrix<f64, 33, 65, Heap>, Matrix<f64, 33, 47, Heap>) = (a.transpose(), b.transpose());
    let (dat, dbt) = (at.to_device(), bt.to_device());
    assert_close(&dat.transposed_matmul(&dbt).to_vec(), at.transposed_matmul(&bt).as_slice(), F64_TOL);
    let c_bar: Matrix<f64, 65, 47, Heap> = Matrix::random_uniform(-1.0, 1.0, 42);
    let dc_bar = c_bar.to_device();
    for write in [Write::Overwrite, Write::Accumulate] {
        let (mut a_bar, mut b_bar) = (a.clone(), b.clone());
        a.matmul_transposed_pullback(&b, &c_bar, Some((&mut a_bar, write)), Some((&mut b_bar, write)));
        let (mut da_bar, mut db_bar) = (da.clone(), db.clone());
        da.matmul_transposed_pullback(&db, &dc_bar, Some((&mut da_bar, write)), Some((&mut db_bar, write)));
        assert_close(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
        assert_close(&db_bar.to_vec(), b_bar.as_slice(), F64_TOL);

        let (mut a_bar, mut b_bar) = (at.clone(), bt.clone());
        at.transposed_matmul_pullback(&bt, &c_bar, Some((&mut a_bar, write)), Some((&mut b_bar, write)));
        let (mut da_bar, mut db_bar) = (dat.clone(), dbt.clone());
        dat.transposed_matmul_pullback(&dbt, &dc_bar, Some((&mut da_bar, write)), Some((&mut db_bar, write)));
        assert_close(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
        assert_close(&db_bar.to_vec(), b_bar.as_slice(), F64_TOL);
    }

    // f32 at an MLP layer's sizes through sgemm; dynamic shapes checked, both named. Each entry
    // sums 784 products whose magnitudes add to about 200: summed in another order it moves by
    // a few ε of that (1.3e-5 was seen on an H200), so the tolerance is 28× the elementwise one.
    let x: Tensor<f32, (Dyn, Dyn), Heap> = Tensor::random_uniform_shaped((Dyn(128), Dyn(784)), -1.0, 1.0, 43);
    let w: Tensor<f32, (Dyn, Dyn), Heap> = Tensor::random_uniform_shaped((Dyn(256), Dyn(784)), -1.0, 1.0, 44);
    let (dx, dw) = (x.to_device(), w.to_device());
    assert_close(&dx.matmul_transposed(&dw).to_vec(), x.matmul_transposed(&w).as_slice(), SUM_TOL);
    let y_bar: Tensor<f32, (Dyn, Dyn), Heap> =
        Tensor::random_uniform_shaped((Dyn(128), Dyn(256)), -1.0, 1.0, 45);
    assert_close(
        &y_bar.to_device().transposed_matmul(&dx).to_vec(),
        y_bar.transposed_matmul(&x).as_slice(),
        SUM_TOL,
    );
    let error = dx.try_matmul_transposed(&y_bar.to_device()).unwrap_err();
    assert!(
        error.to_string().starts_with("matmul_transposed: shapes [128, 784] and [128, 256] are incompatible"),
        "{error}"
    );
    let error = dx.try_transposed_matmul(&dw).unwrap_err();
    assert!(
        error.to_string().starts_with("transposed_matmul: shapes [128, 784] and [256, 784] are incompatible"),
        "{error}"
    );
}

#[test]
fn training_on_the_gpu_follows_the_host_loss_curve() {
    let Some(_gpu) = gpu() else { return };
    let data = cuda_mlp::Batch::<f64, 64>::random(24);
    let mut host = cuda_mlp::Mlp::<f64, 32, 48, 10>::init(25);
    let mut device = host.to_device();
    for step in 0..20 {
        let host_loss = host.sgd_step(&data, 0.5);
        let device_loss = device.sgd_step(&data.to_device(), 0.5);
        assert!(
            (host_loss - device_loss).abs() <= 1e-12 * host_loss.abs(),
            "step {step}: host {host_loss}, GPU {device_loss}"
        );
    }
}

/// One model definition, instantiated for a storage kind: the same code trains on
/// the host and on the GPU.
macro_rules! classifier {
    ($model:ident, $kind:ty) => {
        #[derive(Clone, Debug, fluxion::autodiff::Differentiable)]
        struct $model {
            w1: Matrix<f64, 32, 48, $kind>,
            b1: Vector<f64, 48, $kind>,
            w2: Matrix<f64, 48, 10, $kind>,
            b2: Vector<f64, 10, $kind>,
        }

        impl $model {
            /// −mean Σ labels ⊙ log softmax(relu(x·W₁ + b₁)·W₂ + b₂).
            fn loss(
                model: &<$model as Trace>::Traced,
                x: &Var<Matrix<f64, 64, 32, $kind>>,
                labels: &Var<Matrix<f64, 64, 10, $kind>>,
            ) -> Var<f64> {
                let pre = &x.matmul(&model.w1) + &model.b1.broadcast::<(Const<64>, Const<48>)>();
                let logits = &pre.relu().matmul(&model.w2) + &model.b2.broadcast::<(Const<64>, Const<10>)>();
                let picked = logits.log_softmax(Axis::<1>).hadamard(labels).sum();
                -&(&picked / 64.0)
            }

            /// Twenty SGD steps; the loss before each.
            fn train(
                &mut self,
                x: &Matrix<f64, 64, 32, $kind>,
                labels: &Matrix<f64, 64, 10, $kind>,
            ) -> Vec<f64> {
                let (x, labels) = (Var::constant(x.clone()), Var::constant(labels.clone()));
                (0..20)
                    .map(|_| {
                        let (loss, mut step) =
                            fluxion::autodiff::value_and_grad(|m| $model::loss(&m, &x, &labels), &*self);
                        step.scale_mut(-0.5);
                        self.move_by(&step);
                        loss
                    })
                    .collect()
            }
        }
    };
}

classifier!(HostClassifier, Heap);
classifier!(GpuClassifier, Cuda);

#[test]
fn a_derived_model_trains_on_the_gpu_with_the_host_loss_curve() {
    let Some(_gpu) = gpu() else { return };
    let data = cuda_mlp::Batch::<f64, 64>::random(26);
    let init = cuda_mlp::Mlp::<f64, 32, 48, 10>::init(27);
    let mut host =
        HostClassifier { w1: init.w1.clone(), b1: init.b1.clone(), w2: init.w2.clone(), b2: init.b2.clone() };
    let mut device = GpuClassifier {
        w1: init.w1.to_device(),
        b1: init.b1.to_device(),
        w2: init.w2.to_device(),
        b2: init.b2.to_device(),
    };
    let host_curve = host.train(&data.inputs, &data.labels);
    let device_curve = device.train(&data.inputs.to_device(), &data.labels.to_device());
    assert!(host_curve[19] < 0.8 * host_curve[0], "the model learns: {host_curve:?}");
    for (step, (h, d)) in host_curve.iter().zip(&device_curve).enumerate() {
        assert!((h - d).abs() <= 1e-12 * h.abs(), "step {step}: host {h}, GPU {d}");
    }
    // The trained parameters agree too.
    assert_close(&device.w1.to_vec(), host.w1.as_slice(), 1e-10);
}

/// A struct of layers generic over its storage kind (`#[storage_kind(K)]`): one
/// definition on the host and on the GPU, moved field by field.
#[derive(Clone, fluxion::autodiff::Differentiable)]
#[storage_kind(K)]
struct Encoder<K, S: RealScalar = f64>
where
    K: StorageKind<f64, (Const<4>, Const<3>)> + StorageKind<f64, (Const<4>,)>,
    fluxion::nn::layer::WithBias: fluxion::nn::layer::BiasKind<f64, 4, K>,
{
    embed: Linear<f64, 3, 4, K>,
    norm: LayerNorm<f64, 4, K>,
    scale: Tensor<f64, (Const<4>,), K>,
    temperature: S,
    dropout: Dropout,
    #[buffer]
    seen: fluxion::nn::params::Buffer<Tensor<f64, (Const<4>,), K>>,
    #[no_derivative]
    steps: usize,
}

#[test]
fn a_struct_generic_over_its_storage_kind_moves_to_the_gpu_and_back() {
    let Some(_gpu) = gpu() else { return };
    let host = Encoder::<Heap> {
        embed: Linear::new(91),
        norm: LayerNorm { weight: Tensor::random_normal(1.0, 0.3, 92), ..LayerNorm::default() },
        scale: Tensor::random_normal(0.0, 1.0, 93),
        temperature: 0.7,
        dropout: Dropout::new(0.5, 95),
        seen: fluxion::nn::params::Buffer::new(Tensor::random_normal(0.0, 1.0, 96)),
        steps: 7,
    };
    let device: Encoder<Cuda> = host.to_device();
    assert_eq!((device.steps, device.temperature), (7, 0.7));
    assert_close(&device.seen.get().to_vec(), host.seen.get().as_slice(), 0.0);
    let x: Tensor<f64, (Dyn, Const<3>), Heap> = Tensor::random_normal_shaped((Dyn(5), Const), 0.0, 1.0, 94);
    let y = host.norm.forward(&host.embed.forward(&x)).mul_rows(&host.scale);
    let y_device = device.norm.forward(&device.embed.forward(&x.to_device())).mul_rows(&device.scale);
    assert_close(&y_device.to_vec(), y.as_slice(), F64_TOL);
    let back: Encoder<Heap> = device.to_host();
    assert_eq!(back.embed.weight.as_slice(), host.embed.weight.as_slice());
    assert_eq!(back.norm.weight.as_slice(), host.norm.weight.as_slice());
    assert_eq!((back.scale.as_slice(), back.steps), (host.scale.as_slice(), host.steps));
    // The buffer is a copy of its own, not shared with the host model's.
    assert!(!back.seen.is_shared_with(&host.seen));
    assert_eq!(back.seen.get().as_slice(), host.seen.get().as_slice());
}

/// A layer of one's own written once for both storage kinds
/// (`#[module(storage_kind(K))]`, with a helper method): the same forward pass, the tape's gradient, on
/// the host and on the GPU; static mode on the host.
#[derive(Clone, fluxion::autodiff::Differentiable)]
#[storage_kind(K)]
struct GatedOn<K>
where
    K: StorageKind<f64, (Const<4>, Const<4>)> + StorageKind<f64, (Const<4>,)>,
    fluxion::nn::layer::WithBias: fluxion::nn::layer::BiasKind<f64, 4, K>,
{
    gate: Linear<f64, 4, 4, K>,
    map: Linear<f64, 4, 4, K>,
}

#[fluxion::nn::layer::module(storage_kind(K))]
impl<K> GatedOn<K>
where
    K: StorageKind<f64, (Const<4>, Const<4>)> + StorageKind<f64, (Const<4>,)>,
    fluxion::nn::layer::WithBias: fluxion::nn::layer::BiasKind<f64, 4, K>,
{
    fn forward(&self, x: &Tensor<f64, (Dyn, Const<4>), K>) -> Tensor<f64, (Dyn, Const<4>), K> {
        self.map.forward(x).hadamard(&self.opening(x))
    }

    /// How far the gate opens: a helper method, written out for each kind too.
    fn opening(&self, x: &Tensor<f64, (Dyn, Const<4>), K>) -> Tensor<f64, (Dyn, Const<4>), K> {
        self.gate.forward(x).sigmoid()
    }
}

#[fluxion::autodiff::differentiable(wrt(layer))]
fn gated_on_loss(layer: &GatedOn<Heap>, x: &Tensor<f64, (Dyn, Const<4>), Heap>) -> f64 {
    layer.apply_batch(x).sum()
}

#[test]
fn a_layer_written_once_for_both_kinds_gives_the_hosts_gradient_on_the_gpu() {
    let Some(_gpu) = gpu() else { return };
    let host = GatedOn::<Heap> { gate: Linear::new(101), map: Linear::new(102) };
    let device: GatedOn<Cuda> = host.to_device();
    let x: Tensor<f64, (Dyn, Const<4>), Heap> = Tensor::random_normal_shaped((Dyn(6), Const), 0.0, 1.0, 103);
    let x_device = x.to_device();
    assert_close(&device.forward(&x_device).to_vec(), host.forward(&x).as_slice(), F64_TOL);
    let (value, gradient) =
        fluxion::autodiff::value_and_grad(|l: GatedOnTraced<Heap>| l.forward(&x).sum(), &host);
    let (device_value, device_gradient) =
        fluxion::autodiff::value_and_grad(|l: GatedOnTraced<Cuda>| l.forward(&x_device).sum(), &device);
    assert!((value - device_value).abs() <= 1e-12 * value.abs());
    assert_close(&device_gradient.gate.weight.to_vec(), gradient.gate.weight.as_slice(), F64_TOL);
    assert_close(&device_gradient.map.bias.to_vec(), gradient.map.bias.as_slice(), F64_TOL);
    // Static mode, on the host, agrees with the tape.
    let (static_value, static_gradient) = gated_on_loss::value_and_grad(&host, &x);
    assert!((static_value - value).abs() <= 1e-12 * value.abs());
    assert_close(static_gradient.gate.weight.as_slice(), gradient.gate.weight.as_slice(), F64_TOL);
}

#[test]
fn row_operations_and_their_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    type Rows<K> = Tensor<f64, (Dyn, Const<5>), K>;
    type Row<K> = Tensor<f64, (Const<5>,), K>;
    let x: Rows<Heap> = Tensor::random_normal_shaped((Dyn(7), Const), 0.0, 1.0, 41);
    let row: Row<Heap> = Tensor::random_normal(0.0, 1.0, 42);
    let weights: Rows<Heap> = Tensor::random_normal_shaped((Dyn(7), Const), 0.0, 1.0, 43);
    let (x_d, row_d, weights_d) = (x.to_device(), row.to_device(), Var::constant(weights.to_device()));
    assert_close(&x_d.add_rows(&row_d).to_vec(), x.add_rows(&row).as_slice(), F64_TOL);
    assert_close(&x_d.mul_rows(&row_d).to_vec(), x.mul_rows(&row).as_slice(), F64_TOL);
    assert_close(&x_d.normalize_rows(1e-5).to_vec(), x.normalize_rows(1e-5).as_slice(), F64_TOL);
    // Layer normalisation's three operations, one row as gain and bias: every
    // pullback reaches x or the row.
    let host = grad(
        |(x, g): (Var<Rows<Heap>>, Var<Row<Heap>>)| {
            x.normalize_rows(1e-5).mul_rows(&g).add_rows(&g).hadamard(&weights).sum()
        },
        &(x.clone(), row.clone()),
    );
    let device = grad(
        |(x, g): (Var<Rows<Cuda>>, Var<Row<Cuda>>)| {
            x.normalize_rows(1e-5).mul_rows(&g).add_rows(&g).hadamard(&weights_d).sum()
        },
        &(x_d, row_d),
    );
    assert_close(&device.0.to_vec(), host.0.as_slice(), F64_TOL);
    assert_close(&device.1.to_vec(), host.1.as_slice(), F64_TOL);
    // A dynamic column count that differs is an error naming both shapes.
    let wide: Tensor<f64, (Dyn, Dyn), Heap> = Tensor::zeros_shaped((Dyn(7), Dyn(5)));
    let short: Tensor<f64, (Dyn,), Heap> = Tensor::zeros_shaped((Dyn(4),));
    let error = wide.to_device().try_add_rows(&short.to_device()).unwrap_err();
    assert_eq!(error.to_string(), wide.try_add_rows(&short).unwrap_err().to_string());
}

/// `steps` steps of `optimizer` on the mean cross-entropy of `model` on `x` (a plain
/// or traced batch) against `classes`; the loss before each step. Written once over
/// the model and the batch: the same code trains a host model and a GPU one.
fn train<M, X, T, B, C, K>(
    model: &mut M,
    optimizer: &mut impl Optimizer<M>,
    x: &X,
    classes: &[usize],
    steps: usize,
) -> Vec<T>
where
    M: Trace,
    M::Traced: Module<X, Output = Var<Tensor<T, (B, C), K>>>,
    T: RealOutput,
    B: Dim,
    C: Dim,
    K: RowLosses<T, B, C>,
{
    (0..steps)
        .map(|_| {
            let (loss, gradient) = loss_and_gradient(&*model, x, classes);
            optimizer.step(model, &gradient);
            loss
        })
        .collect()
}

/// The mean cross-entropy of `model` on `x` (a plain or traced batch) against
/// `classes`, and its gradient: written once, for a host model and a GPU one.
fn loss_and_gradient<M, X, T, B, C, K>(model: &M, x: &X, classes: &[usize]) -> (T, M::Tangent)
where
    M: Trace,
    M::Traced: Module<X, Output = Var<Tensor<T, (B, C), K>>>,
    T: RealOutput,
    B: Dim,
    C: Dim,
    K: RowLosses<T, B, C>,
{
    value_and_grad(|m: M::Traced| cross_entropy(&m.forward(x), classes, Reduction::Mean), model)
}

#[test]
fn a_model_of_library_layers_trains_on_the_gpu_as_on_the_host() {
    let classes: Vec<usize> = (0..64).map(|b| b % 10).collect();
    let x: Tensor<f64, (Dyn, Const<32>), Heap> = Tensor::from_shape_fn((Dyn(64), Const), |[b, f]| {
        ((b * 32 + f) as f64 * 0.37).sin() + if f % 10 == classes[b] { 1.0 } else { 0.0 }
    });
    // Dropout draws its masks from its seed's stream: the same on host and GPU.
    let host = Sequential((
        Linear::<f64, 32, 48>::new(31),
        LayerNorm::default(),
        Relu,
        Dropout::new(0.2, 33),
        Linear::<f64, 48, 10>::new(32),
    ));
    // The host's parameters and a fork of its dropout stream, before the host draws.
    let device = gpu_available().then(|| host.to_device());
    // SGD with momentum on a traced batch, on either kind.
    let sgd = SgdConfig { learning_rate: 0.2, momentum: 0.9, ..SgdConfig::default() };
    let mut host_model = host;
    let host_curve = train(&mut host_model, &mut Sgd::new(sgd), &Var::constant(x.clone()), &classes, 20);
    assert!(host_curve[19] < 0.8 * host_curve[0], "the model learns: {host_curve:?}");
    let Some(_gpu) = gpu() else { return };
    let mut device_model = device.expect("a GPU");
    let device_curve =
        train(&mut device_model, &mut Sgd::new(sgd), &Var::constant(x.to_device()), &classes, 20);
    for (step, (h, d)) in host_curve.iter().zip(&device_curve).enumerate() {
        assert!((h - d).abs() <= 1e-12 * h.abs(), "step {step}: host {h}, GPU {d}");
    }
    assert_close(&device_model.0.0.weight.to_vec(), host_model.0.0.weight.as_slice(), 1e-10);
    assert_close(&device_model.0.1.weight.to_vec(), host_model.0.1.weight.as_slice(), 1e-10);
    assert_close(&device_model.0.4.bias.to_vec(), host_model.0.4.bias.as_slice(), 1e-10);
    // The plain forward pass (inference, dropout off) on the GPU gives the host's logits.
    let (mut device_model, mut host_model) = (device_model, host_model);
    device_model.0.3.set_training(false);
    host_model.0.3.set_training(false);
    let logits = device_model.forward(&x.to_device()).to_vec();
    assert_close(&logits, host_model.forward(&x).as_slice(), 1e-10);
    // The trained GPU model copied back to the host (`model.cpu()`) gives those logits
    // on the host, and holds the GPU's parameters.
    let back = device_model.to_host();
    assert_close(back.forward(&x).as_slice(), &logits, F64_TOL);
    assert_eq!(back.0.0.weight.as_slice(), device_model.0.0.weight.to_vec().as_slice());
}

/// The gradient of the mean cross-entropy of `model` on `x`, the model run as one
/// checkpoint: written once, for a host model and a GPU one.
fn checkpointed_gradient<M, X, T, B, C, K>(model: &M, x: &X, classes: &[usize]) -> M::Tangent
where
    M: Trace + 'static,
    M::Traced: TracedInput<Value = M> + Clone + Module<Var<X>, Output = Var<Tensor<T, (B, C), K>>>,
    X: Differentiable + Clone + 'static,
    T: RealOutput,
    B: Dim,
    C: Dim,
    K: RowLosses<T, B, C>,
{
    let classes = classes.to_vec();
    grad(
        |m: M::Traced| {
            let loss =
                move |(m, x): (M::Traced, Var<X>)| cross_entropy(&m.forward(&x), &classes, Reduction::Mean);
            checkpoint(loss, &(m, Var::constant(x.clone())))
        },
        model,
    )
}

#[test]
fn a_checkpointed_model_has_the_host_gradient_on_the_gpu() {
    let classes: Vec<usize> = (0..12).map(|b| b % 4).collect();
    let x: Tensor<f64, (Dyn, Const<8>), Heap> =
        Tensor::from_shape_fn((Dyn(12), Const), |[b, f]| ((b * 8 + f) as f64 * 0.61).sin());
    // The recomputation draws the dropout masks of the first run, on either kind.
    let host = Sequential((
        Linear::<f64, 8, 16>::new(41),
        Relu,
        Dropout::new(0.3, 43),
        Linear::<f64, 16, 4>::new(42),
    ));
    let device = gpu_available().then(|| host.to_device());
    let host_gradient = checkpointed_gradient(&host, &x, &classes);
    let Some(_gpu) = gpu() else { return };
    let device_gradient = checkpointed_gradient(&device.expect("a GPU"), &x.to_device(), &classes);
    assert_close(&device_gradient.0.weight.to_vec(), host_gradient.0.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.3.weight.to_vec(), host_gradient.3.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.3.bias.to_vec(), host_gradient.3.bias.as_slice(), 1e-10);
}

#[test]
fn residual_blocks_have_the_host_outputs_and_gradient_on_the_gpu() {
    let classes: Vec<usize> = (0..6).map(|b| b % 4).collect();
    let x: Tensor<f64, (Dyn, Const<8>), Heap> =
        Tensor::from_shape_fn((Dyn(6), Const), |[b, f]| ((b * 8 + f) as f64 * 0.37).cos());
    // First in the model (a plain batch meets the traced block), then nested.
    let host = Sequential((
        Residual((Linear::<f64, 8, 8>::new(51), Tanh)),
        Residual(Sequential((Relu, Linear::<f64, 8, 8>::new(52), Residual(Linear::<f64, 8, 8>::new(53))))),
        Linear::<f64, 8, 4>::new(54),
    ));
    let device = gpu_available().then(|| host.to_device());
    let host_gradient = loss_and_gradient(&host, &x, &classes).1;
    let Some(_gpu) = gpu() else { return };
    let device = device.expect("a GPU");
    assert_close(&device.forward(&x.to_device()).to_vec(), host.forward(&x).as_slice(), 1e-12);
    let device_gradient = loss_and_gradient(&device, &x.to_device(), &classes).1;
    assert_close(&device_gradient.0.0.weight.to_vec(), host_gradient.0.0.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.1.2.weight.to_vec(), host_gradient.1.2.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.2.bias.to_vec(), host_gradient.2.bias.as_slice(), 1e-10);
}

#[test]
fn global_average_pooling_has_the_host_outputs_gradient_and_tangent_on_the_gpu() {
    use fluxion::autodiff::CudaDual;
    use fluxion::nn::layer::GlobalAvgPool2d;
    let classes = [0, 2, 1, 1];
    let x: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::from_shape_fn((Dyn(4), Const, Const, Const), |[b, _, h, w]| {
            ((b * 36 + h * 6 + w) as f64 * 0.23).sin()
        });
    type Cnn<K> = Sequential<(Conv2d<f64, 1, 2, 3, 3, 4, 4, K>, Relu, GlobalAvgPool2d, Linear<f64, 2, 3, K>)>;
    let host: Cnn<Heap> = Sequential((Conv2d::new(61), Relu, GlobalAvgPool2d, Linear::new(62)));
    let device = gpu_available().then(|| host.to_device());
    let host_gradient = loss_and_gradient(&host, &x, &classes).1;
    let Some(_gpu) = gpu() else { return };
    let (device, dx) = (device.expect("a GPU"), x.to_device());
    assert_close(&device.forward(&dx).to_vec(), host.forward(&x).as_slice(), 1e-12);
    let device_gradient = loss_and_gradient(&device, &dx, &classes).1;
    assert_close(&device_gradient.0.weight.to_vec(), host_gradient.0.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.3.weight.to_vec(), host_gradient.3.weight.as_slice(), 1e-10);
    // Forward mode: the pooled tangent of a batch of duals, as on the host.
    type Batch<T, K> = Tensor<T, (Const<2>, Const<3>, Const<2>, Const<5>), K>;
    let (images, v): (Batch<f64, Heap>, Batch<f64, Heap>) =
        (Tensor::random_normal(0.0, 1.0, 63), Tensor::random_normal(0.0, 1.0, 64));
    let (_, host_tangent) = jvp(|x: Batch<Dual<f64>, Heap>| GlobalAvgPool2d.forward(&x), &images, &v);
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<2>, Const<3>, Const<2>, Const<5>)>| GlobalAvgPool2d.forward(&x),
        &images.to_device(),
        &v.to_device(),
    );
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
}

#[test]
fn batch_normalisation_trains_and_evaluates_on_the_gpu_as_on_the_host() {
    use fluxion::autodiff::CudaDual;
    use fluxion::nn::layer::{BatchNorm, GlobalAvgPool2d, evaluation};
    let classes = [0, 2, 1, 1];
    let x: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::from_shape_fn((Dyn(4), Const, Const, Const), |[b, _, h, w]| {
            ((b * 36 + h * 6 + w) as f64 * 0.37).cos() + 0.5
        });
    type Cnn<K> = Sequential<(
        Conv2d<f64, 1, 2, 3, 3, 4, 4, K>,
        BatchNorm<f64, 2, K>,
        Relu,
        GlobalAvgPool2d,
        Linear<f64, 2, 4, K>,
        BatchNorm<f64, 4, K>,
        Linear<f64, 4, 3, K>,
    )>;
    let host: Cnn<Heap> = Sequential((
        Conv2d::new(71),
        BatchNorm::new(),
        Relu,
        GlobalAvgPool2d,
        Linear::new(72),
        BatchNorm::new(),
        Linear::new(73),
    ));
    // Copied before the host trains: both start from the same running estimates.
    let device = gpu_available().then(|| host.to_device());
    let host_gradient = loss_and_gradient(&host, &x, &classes).1;
    let Some(_gpu) = gpu() else { return };
    let (device, dx) = (device.expect("a GPU"), x.to_device());
    let device_gradient = loss_and_gradient(&device, &dx, &classes).1;
    assert_close(&device_gradient.0.weight.to_vec(), host_gradient.0.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.1.weight.to_vec(), host_gradient.1.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.5.bias.to_vec(), host_gradient.5.bias.as_slice(), 1e-10);
    assert_close(&device_gradient.6.weight.to_vec(), host_gradient.6.weight.as_slice(), 1e-10);
    assert_close(&device.0.1.running_mean.get().to_vec(), host.0.1.running_mean.get().as_slice(), 1e-12);
    assert_close(&device.0.1.running_var.get().to_vec(), host.0.1.running_var.get().as_slice(), 1e-12);
    assert_close(&device.0.5.running_var.get().to_vec(), host.0.5.running_var.get().as_slice(), 1e-12);
    // Evaluation on the running estimates, and a model brought back with them.
    let evaluated = evaluation(|| device.forward(&dx)).to_vec();
    assert_close(&evaluated, evaluation(|| host.forward(&x)).as_slice(), 1e-12);
    let brought_back = device.to_host().0.1.running_var.get();
    assert_close(brought_back.as_slice(), host.0.1.running_var.get().as_slice(), 1e-12);
    // Forward mode through the batch statistics: the tangent of a batch of duals.
    type Batch<T, K> = Tensor<T, (Const<3>, Const<2>, Const<2>, Const<5>), K>;
    let (images, v): (Batch<f64, Heap>, Batch<f64, Heap>) =
        (Tensor::random_normal(0.0, 1.0, 74), Tensor::random_normal(0.0, 1.0, 75));
    let norm = BatchNorm::<f64, 2>::new();
    let device_norm = norm.to_device();
    let (norm, device_norm) =
        (norm.lift(&norm.zero_tangent()), device_norm.lift(&device_norm.zero_tangent()));
    let (_, host_tangent) = jvp(|x: Batch<Dual<f64>, Heap>| norm.forward(&x), &images, &v);
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<3>, Const<2>, Const<2>, Const<5>)>| device_norm.forward(&x),
        &images.to_device(),
        &v.to_device(),
    );
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
}

#[test]
fn group_normalisation_and_pooling_layers_give_the_hosts_gradients_on_the_gpu() {
    use fluxion::autodiff::CudaDual;
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::nn::layer::{AvgPool2d, GroupNorm, Silu};
    let classes = [0, 2, 1, 1];
    let x: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::from_shape_fn((Dyn(4), Const, Const, Const), |[b, _, h, w]| {
            ((b * 36 + h * 6 + w) as f64 * 0.41).sin() + 0.25
        });
    // A padded convolution, group normalisation, overlapping max pooling (a ResNet
    // stem's) and average pooling.
    type Cnn<K> = Sequential<(
        Conv2d<f64, 1, 4, 3, 3, 6, 6, K, 1>,
        GroupNorm<f64, 4, 2, K>,
        Silu,
        MaxPool2d<3, 3, 3, 1, 2>,
        AvgPool2d<2, 1, 1>,
        Flatten<4>,
        Linear<f64, 4, 3, K>,
    )>;
    let norm = GroupNorm { weight: Tensor::random_uniform(0.5, 1.5, 76), ..GroupNorm::default() };
    let host: Cnn<Heap> =
        Sequential((Conv2d::new(77), norm, Silu, MaxPool2d, AvgPool2d, Flatten, Linear::new(78)));
    let host_gradient = loss_and_gradient(&host, &x, &classes).1;
    let Some(_gpu) = gpu() else { return };
    let (device, dx) = (host.to_device(), x.to_device());
    let device_gradient = loss_and_gradient(&device, &dx, &classes).1;
    assert_close(&device_gradient.0.weight.to_vec(), host_gradient.0.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.1.weight.to_vec(), host_gradient.1.weight.as_slice(), 1e-10);
    assert_close(&device_gradient.1.bias.to_vec(), host_gradient.1.bias.as_slice(), 1e-10);
    assert_close(&device_gradient.6.weight.to_vec(), host_gradient.6.weight.as_slice(), 1e-10);
    // The group normalisation's rule on the GPU passes the adjoint check, and its
    // tangent is the host's.
    type Batch<T, K> = Tensor<T, (Const<3>, Const<4>, Const<2>, Const<5>), K>;
    let (images, v): (Batch<f64, Heap>, Batch<f64, Heap>) =
        (Tensor::random_normal(0.0, 1.0, 79), Tensor::random_normal(0.0, 1.0, 80));
    let normalise = |x: Var<Batch<f64, Cuda>>| x.normalize_groups(Groups::<2>, 1e-5);
    if let Err(error) = check_vjp(normalise, &images.to_device(), CheckOptions::f64()) {
        panic!("normalize_groups: {error}");
    }
    let norm = GroupNorm::<f64, 4, 2>::default();
    let device_norm = norm.to_device();
    let (norm, device_norm) =
        (norm.lift(&norm.zero_tangent()), device_norm.lift(&device_norm.zero_tangent()));
    let (_, host_tangent) = jvp(|x: Batch<Dual<f64>, Heap>| norm.forward(&x), &images, &v);
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<3>, Const<4>, Const<2>, Const<5>)>| device_norm.forward(&x),
        &images.to_device(),
        &v.to_device(),
    );
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
}

#[test]
fn every_optimiser_updates_a_gpu_model_in_its_kernel_as_on_the_host() {
    let gpu = gpu();
    let on_gpu = gpu.is_some();
    let x: Tensor<f32, (Const<16>, Const<8>), Heap> = Tensor::random_uniform(-1.0, 1.0, 5);
    let model: Linear<f32, 8, 4, Heap> = Linear::new(6);
    let sgd = |momentum, dampening, nesterov| SgdConfig {
        learning_rate: 0.3,
        momentum,
        dampening,
        nesterov,
        weight_decay: 0.01,
        ..SgdConfig::default()
    };
    let adam = AdamConfig { learning_rate: 0.05, weight_decay: 0.01, ..AdamConfig::default() };
    let classes: Vec<usize> = (0..16).map(|b| b % 4).collect();
    // Six steps; the traced layer takes the plain batch (a constant), on either kind.
    macro_rules! compare {
        ($optimizer:ident, $config:expr) => {{
            let mut host = model.clone();
            train(&mut host, &mut $optimizer::new($config), &x, &classes, 6);
            assert!(host.weight != model.weight, "the optimiser moves the model");
            if on_gpu {
                let mut device = model.to_device();
                train(&mut device, &mut $optimizer::new($config), &x.to_device(), &classes, 6);
                assert_close(&device.weight.to_vec(), host.weight.as_slice(), F32_TOL);
                assert_close(&device.bias.to_vec(), host.bias.as_slice(), F32_TOL);
            }
        }};
    }
    compare!(Sgd, sgd(0.0, 0.0, false));
    compare!(Sgd, sgd(0.9, 0.1, false));
    compare!(Sgd, sgd(0.9, 0.0, true));
    compare!(Adam, adam);
    compare!(Adam, AdamConfig { learning_rate: 0.05, ..AdamConfig::adamw() });
    // Weight decay on the matrices only: the bias's kernel runs without it.
    compare!(
        Adam,
        AdamConfig { learning_rate: 0.05, weight_decay: 0.5, decay_vectors: false, ..AdamConfig::adamw() }
    );
    // The global norm is a reduction on the GPU, and clipping a scaling there.
    let norm = global_norm(&x);
    assert!(norm > 1.0);
    if on_gpu {
        let mut clipped = x.to_device();
        assert!((global_norm(&clipped) - norm).abs() <= F32_TOL * norm);
        assert!((clip_grad_norm(&mut clipped, 1.0) - norm).abs() <= F32_TOL * norm);
        assert_close(&clipped.to_vec(), x.scale(1.0 / (norm + 1e-6) as f32).as_slice(), F32_TOL);
        // Squares of 1e20 overflow f32: the device scales by the largest |x| first.
        let huge = x.scale(1e20);
        let huge_norm = global_norm(&huge);
        assert!(huge_norm.is_finite());
        assert!((global_norm(&huge.to_device()) - huge_norm).abs() <= F32_TOL * huge_norm);
        // An empty parameter: the update launches nothing, the norm is 0.
        let mut empty = Tensor::<f32, (Dyn,), Cuda>::device_zeros((Dyn(0),));
        assert_eq!(global_norm(&empty), 0.0);
        let gradient = empty.clone();
        Adam::new(AdamConfig::default()).step(&mut empty, &gradient);
        assert!(empty.to_vec().is_empty());
    }
}

#[test]
fn gpu_rules_agree_with_finite_differences_and_the_adjoint_identity() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let Some(_gpu) = gpu() else { return };
    type D = Matrix<f64, 4, 6, Cuda>;
    let x = signed::<1, 4, 6>(28).reshape::<(Const<4>, Const<6>)>().to_device();
    let w = signed::<1, 6, 3>(29).reshape::<(Const<6>, Const<3>)>().to_device();
    let options = CheckOptions::f64();
    macro_rules! check {
        ($name:literal, $f:expr) => {
            if let Err(error) = check_vjp($f, &x, options) {
                panic!("{}: {error}", $name);
            }
        };
    }
    check!("tanh", |x: Var<D>| x.tanh());
    check!("map_function", |x: Var<D>| x.map_function(Softplus));
    check!("log_softmax", |x: Var<D>| x.log_softmax(Axis::<1>));
    check!("softmax", |x: Var<D>| x.softmax(Axis::<0>));
    check!("logsumexp", |x: Var<D>| x.logsumexp(Axis::<1>));
    check!("sum_axis", |x: Var<D>| x.sum_axis(Axis::<0>));
    check!("mean_axis", |x: Var<D>| x.mean_axis(Axis::<1>));
    check!("hadamard", |x: Var<D>| x.hadamard(&x));
    check!("transpose", |x: Var<D>| x.transpose());
    check!("broadcast", |x: Var<D>| x.broadcast::<(Const<2>, Const<4>, Const<6>)>());
    let w_t = Var::constant(signed::<1, 6, 3>(29).reshape::<(Const<6>, Const<3>)>().transpose().to_device());
    let w_rows = Var::constant(signed::<1, 4, 5>(30).reshape::<(Const<4>, Const<5>)>().to_device());
    let w = Var::constant(w);
    check!("matmul", move |x: Var<D>| x.matmul(&w));
    check!("matmul_transposed", move |x: Var<D>| x.matmul_transposed(&w_t));
    check!("transposed_matmul", move |x: Var<D>| x.transposed_matmul(&w_rows));
}

#[test]
fn products_and_real_valued_maps_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let a = signed::<2, 10, 7>(30);
    let b = signed::<2, 10, 7>(31);
    let (da, db) = (a.to_device(), b.to_device());
    assert!((da.dot(&db) - a.dot(&b)).abs() <= F64_TOL * a.dot(&b).abs().max(1.0));
    assert_eq!(da.inner(&db), da.dot(&db));
    assert_close(&da.abs().to_vec(), a.abs().as_slice(), 0.0);
    assert_close(&da.norm_sqr().to_vec(), a.norm_sqr().as_slice(), F64_TOL);
    assert_close(&da.re().to_vec(), a.re().as_slice(), 0.0);
    assert_close(&da.im().to_vec(), a.im().as_slice(), 0.0);
    let flat: Vector<f64, 140, Heap> = a.flatten();
    assert_close(&da.flatten::<140>().to_vec(), flat.as_slice(), 0.0);
    let reshaped: Matrix<f64, 14, 10, Heap> = a.reshape();
    assert_close(&da.reshape::<(Const<14>, Const<10>)>().to_vec(), reshaped.as_slice(), 0.0);
    let u: Vector<f64, 5, Heap> = Vector::random_uniform(-1.0, 1.0, 32);
    let v: Vector<f64, 4, Heap> = Vector::random_uniform(-1.0, 1.0, 33);
    assert_close(&u.to_device().outer(&v.to_device()).to_vec(), u.outer(&v).as_slice(), F64_TOL);
    // Traced outer product against finite differences.
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let dv = Var::constant(v.to_device());
    let outer = |u: Var<Vector<f64, 5, Cuda>>| -> Var<Matrix<f64, 5, 4, Cuda>> { u.outer(&dv) };
    if let Err(error) = check_vjp(outer, &u.to_device(), CheckOptions::f64()) {
        panic!("outer: {error}");
    }
}

/// `x + c`, `c − x`, `x ⊙ c` and `2 / x` with a plain tensor c, written once and
/// instantiated for a storage kind: the value and gradient of their sum.
macro_rules! with_constants {
    ($name:ident, $kind:ty) => {
        fn $name(x: &Tensor3<f64, 2, 3, 4, $kind>, c: &Tensor3<f64, 2, 3, 4, $kind>) -> (f64, Vec<f64>) {
            let (value, gradient) = value_and_grad(
                |x: Var<Tensor3<f64, 2, 3, 4, $kind>>| {
                    let terms = &(&(&x + c) + &(c - &x)) + &(&x.hadamard(c) + &(2.0 / &x));
                    terms.sum()
                },
                x,
            );
            (value, gradient.to_vec())
        }
    };
}

with_constants!(with_constants_on_the_host, Heap);
with_constants!(with_constants_on_the_gpu, Cuda);

#[test]
fn plain_tensors_beside_traced_ones_and_c_over_x_match_the_host() {
    let (x, c) = (positive::<2, 3, 4>(34), signed::<2, 3, 4>(35));
    let (value, gradient) = with_constants_on_the_host(&x, &c);
    // d/dx of x + c + c − x + x·c + 2/x is c − 2/x².
    let expected: Vec<f64> = x.as_slice().iter().zip(c.as_slice()).map(|(x, c)| c - 2.0 / (x * x)).collect();
    assert_close(&gradient, &expected, F64_TOL);
    let Some(_gpu) = gpu() else { return };
    let (device_value, device_gradient) = with_constants_on_the_gpu(&x.to_device(), &c.to_device());
    assert!((device_value - value).abs() <= F64_TOL * value.abs().max(1.0));
    assert_close(&device_gradient, &gradient, F64_TOL);
}

/// `dot` (of matrices and of vectors), `mul_rows` and `add_rows` with a plain tensor
/// on the right, a constant, written once and instantiated for a storage kind: the
/// value and gradient.
macro_rules! with_plain_right_operands {
    ($name:ident, $kind:ty) => {
        fn $name(
            x: &Matrix<f64, 3, 4, $kind>,
            c: &Matrix<f64, 3, 4, $kind>,
            row: &Vector<f64, 4, $kind>,
        ) -> (f64, Vec<f64>) {
            let (value, gradient) = value_and_grad(
                |x: Var<Matrix<f64, 3, 4, $kind>>| {
                    let rows = x.mul_rows(row).add_rows(row);
                    &(&x.dot(c) + &rows.dot(&x)) + &x.sum_axis(Axis::<0>).dot(row)
                },
                x,
            );
            (value, gradient.to_vec())
        }
    };
}

with_plain_right_operands!(with_plain_right_operands_on_the_host, Heap);
with_plain_right_operands!(with_plain_right_operands_on_the_gpu, Cuda);

#[test]
fn plain_tensors_on_the_right_of_dot_and_row_operations_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let x: Matrix<f64, 3, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 36);
    let c: Matrix<f64, 3, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 37);
    let row: Vector<f64, 4, Heap> = Vector::random_uniform(-1.0, 1.0, 38);
    let (value, gradient) = with_plain_right_operands_on_the_host(&x, &c, &row);
    let (device_value, device_gradient) =
        with_plain_right_operands_on_the_gpu(&x.to_device(), &c.to_device(), &row.to_device());
    assert_close(&[device_value], &[value], F64_TOL);
    assert_close(&device_gradient, &gradient, F64_TOL);
}

#[test]
fn forward_mode_on_the_gpu_agrees_with_reverse_mode_and_finite_differences() {
    let Some(_gpu) = gpu() else { return };
    use fluxion::autodiff::{CudaDual, jvp};
    type X = Matrix<f64, 6, 5, Cuda>;
    let x: X = Matrix::<f64, 6, 5, Heap>::random_uniform(-1.0, 1.0, 36).to_device();
    let v: X = Matrix::<f64, 6, 5, Heap>::random_uniform(-1.0, 1.0, 37).to_device();
    let w: Matrix<f64, 5, 4, Cuda> = Matrix::<f64, 5, 4, Heap>::random_uniform(-1.0, 1.0, 38).to_device();
    // f(x) = Σ relu(x·W) ⊙ tanh(x·W) + Σ (x·exp(x) − 3·sin(x) + x³ + √eˣ + ln σ(x))
    // + ⟨x, x⟩, written for duals and for Vars.
    let dual_w = CudaDual::constant(w.clone());
    let on_duals = |x: CudaDual<f64, (Const<6>, Const<5>)>| {
        let h = x.matmul(&dual_w);
        let first = h.relu().hadamard(&h.tanh()).sum();
        let terms = &(&x.hadamard(&x.exp()) - &x.sin().scale(3.0)) + &x.powi(3);
        let second = (&(&terms + &x.exp().sqrt()) + &x.sigmoid().ln()).sum();
        first + second + x.dot(&x)
    };
    let var_w = Var::constant(w.clone());
    let on_vars = |x: Var<X>| {
        let h = x.matmul(&var_w);
        let first = h.relu().hadamard(&h.tanh()).sum();
        let terms = &(&x.hadamard(&x.exp()) - &(&x.sin() * 3.0)) + &x.powi(3);
        let second = (&(&terms + &x.exp().sqrt()) + &x.sigmoid().ln()).sum();
        &(&first + &second) + &x.dot(&x)
    };
    let (value, derivative) = jvp(on_duals, &x, &v);
    let (reverse_value, gradient) = value_and_grad(on_vars, &x);
    assert!((value - reverse_value).abs() <= F64_TOL * value.abs().max(1.0));
    let adjoint = gradient.dot(&v);
    assert!(
        (derivative - adjoint).abs() <= 1e-10 * adjoint.abs().max(1.0),
        "jvp {derivative}, ⟨∇f, v⟩ {adjoint}"
    );
    // Central differences along v.
    let at = |t: f64| on_duals(CudaDual::constant(&x + &v.scale(t))).value();
    let h = 1e-5;
    let central = (at(h) - at(-h)) / (2.0 * h);
    assert!(
        (derivative - central).abs() <= 1e-6 * central.abs().max(1.0),
        "jvp {derivative}, differences {central}"
    );
}

#[test]
fn traced_dot_and_reshape_agree_with_finite_differences_on_the_gpu() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
    let Some(_gpu) = gpu() else { return };
    type D = Matrix<f64, 4, 6, Cuda>;
    let x = signed::<1, 4, 6>(34).reshape::<(Const<4>, Const<6>)>().to_device();
    let c = Var::constant(signed::<1, 4, 6>(35).reshape::<(Const<4>, Const<6>)>().to_device());
    if let Err(error) = check_grad(|x: Var<D>| x.dot(&c), &x, CheckOptions::f64()) {
        panic!("dot: {error}");
    }
    if let Err(error) = check_grad(|x: Var<D>| x.dot(&x), &x, CheckOptions::f64()) {
        panic!("dot with itself: {error}");
    }
    if let Err(error) = check_grad(|x: Var<D>| &x.inner(&c) * &x.dotu(&x), &x, CheckOptions::f64()) {
        panic!("inner and dotu: {error}");
    }
    if let Err(error) = check_vjp(|x: Var<D>| x.reshape::<(Const<24>,)>(), &x, CheckOptions::f64()) {
        panic!("reshape: {error}");
    }
}

#[test]
fn concat_and_narrow_match_the_host_with_their_rules() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::ops::layout as host_layout;
    let Some(_gpu) = gpu() else { return };
    let a = signed::<2, 3, 4>(36);
    let b: Tensor3<f64, 2, 5, 4, Heap> = Tensor3::random_uniform(-1.0, 1.0, 37);
    let joined: Tensor3<f64, 2, 8, 4, Heap> = a.concat(Axis::<1>, &b);
    let (da, db) = (a.to_device(), b.to_device());
    let d_joined: Tensor3<f64, 2, 8, 4, Cuda> = da.concat(Axis::<1>, &db);
    assert_close(&d_joined.to_vec(), joined.as_slice(), 0.0);
    let slice: Tensor3<f64, 2, 3, 4, Heap> = joined.narrow::<1, 4, 3>();
    assert_close(&d_joined.narrow::<1, 4, 3>().to_vec(), slice.as_slice(), 0.0);

    // Pullbacks against the host's, written and added.
    let (a_bar, b_bar) = host_layout::concat_pullback::<1, _, _, _, _, _>(&a, &b, &joined);
    let (mut da_bar, mut db_bar) = (da.clone(), db.clone());
    device_rules::concat_pullback::<1, f64, _, _, _>(
        &d_joined,
        Some((&mut da_bar, Write::Overwrite)),
        Some((&mut db_bar, Write::Accumulate)),
        (3, 5),
    );
    assert_close(&da_bar.to_vec(), a_bar.as_slice(), 0.0);
    assert_close(&db_bar.to_vec(), (&b + &b_bar).as_slice(), F64_TOL);
    let x_bar = host_layout::narrow_pullback::<1, 4, 3, _, _, _>(&joined, &slice);
    let mut dx_bar = d_joined.clone();
    device_rules::narrow_pullback::<1, 4, 3, f64, _>(&slice.to_device(), &mut dx_bar, Write::Overwrite);
    assert_close(&dx_bar.to_vec(), x_bar.as_slice(), 0.0);

    // Traced forms against finite differences.
    type A = Tensor3<f64, 2, 3, 4, Cuda>;
    let db_var = Var::constant(db.clone());
    let concat = |a: Var<A>| -> Var<Tensor3<f64, 2, 8, 4, Cuda>> { a.concat(Axis::<1>, &db_var) };
    if let Err(error) = check_vjp(concat, &da, CheckOptions::f64()) {
        panic!("concat: {error}");
    }
    if let Err(error) = check_vjp(|a: Var<A>| a.narrow::<2, 1, 2>(), &da, CheckOptions::f64()) {
        panic!("narrow: {error}");
    }
}

#[test]
fn the_rules_of_max_send_the_cotangent_to_the_first_maximum_as_on_the_host() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
    let Some(_gpu) = gpu() else { return };
    let mut x = signed::<3, 6, 5>(38);
    // Ties: the first maximum of a line receives the cotangent.
    x[[1, 2, 3]] = 5.0;
    x[[1, 4, 3]] = 5.0;
    let dx = x.to_device();
    let y_bar = signed::<3, 1, 5>(39).reshape::<(Const<3>, Const<5>)>();
    let host = reduce::max_axis_pullback::<1, _, _, _>(&x, &y_bar);
    for write in [Write::Overwrite, Write::Accumulate] {
        let mut dx_bar = dx.clone();
        device_rules::max_axis_pullback::<1, f64, _>(&dx, &y_bar.to_device(), &mut dx_bar, write);
        let expected = if write == Write::Overwrite { host.clone() } else { &host + &x };
        assert_close(&dx_bar.to_vec(), expected.as_slice(), F64_TOL);
    }
    let mut dx_bar = dx.clone();
    device_rules::max_pullback(&dx, 2.0, &mut dx_bar, Write::Overwrite);
    assert_close(&dx_bar.to_vec(), reduce::max_pullback(&x, 2.0).as_slice(), 0.0);

    // Traced forms against finite differences (no ties there).
    type D = Matrix<f64, 4, 6, Cuda>;
    let y = signed::<1, 4, 6>(40).reshape::<(Const<4>, Const<6>)>().to_device();
    if let Err(error) = check_vjp(|y: Var<D>| y.max_axis(Axis::<0>), &y, CheckOptions::f64()) {
        panic!("max_axis: {error}");
    }
    if let Err(error) = check_grad(|y: Var<D>| y.max(), &y, CheckOptions::f64()) {
        panic!("max: {error}");
    }
}

#[test]
fn maxima_logsumexp_and_cross_entropy_at_nan_and_infinity_follow_the_host() {
    use fluxion::autodiff::{CudaDual, Dual, jvp};
    let Some(_gpu) = gpu() else { return };
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    // A NaN after the maximum, two +∞, a masked (all −∞) line, an ordinary line.
    let x = Matrix::<f64, 4, 5, Heap>::from_array([
        [1.0, 4.0, nan, 4.0, 0.5],
        [0.0, inf, 2.0, inf, 1.0],
        [-inf; 5],
        [0.5, -1.0, 2.0, -inf, 1.5],
    ]);
    let dx = x.to_device();
    let axis = Axis::<1>;
    let y_bar = Vector::<f64, 4, Heap>::from_array([0.5, -2.0, 3.0, 1.25]);
    assert_close(&dx.max_axis(axis).to_vec(), x.max_axis(axis).as_slice(), 0.0);
    let mut dx_bar = dx.clone();
    device_rules::max_axis_pullback::<1, f64, _>(&dx, &y_bar.to_device(), &mut dx_bar, Write::Overwrite);
    assert_close(&dx_bar.to_vec(), reduce::max_axis_pullback::<1, _, _, _>(&x, &y_bar).as_slice(), 0.0);
    // logsumexp: its value, its pullback (0 on the masked line, ȳ to the first +∞,
    // NaN on the NaN line) and a dual's tangent, each as on the host.
    let ds = dx.logsumexp(axis);
    assert_close(&ds.to_vec(), x.logsumexp(axis).as_slice(), F64_TOL);
    for write in [Write::Overwrite, Write::Accumulate] {
        let mut dx_bar = Matrix::<f64, 4, 5, Heap>::full(0.25).to_device();
        device_rules::logsumexp_pullback::<1, f64, _>(&dx, (&ds, &y_bar.to_device()), &mut dx_bar, write);
        let host = softmax::logsumexp_pullback::<1, _, _, _>(&x, &y_bar);
        let expected = if write == Write::Overwrite { host } else { host.map(|g| g + 0.25) };
        assert_close(&dx_bar.to_vec(), expected.as_slice(), F64_TOL);
    }
    let v = Matrix::<f64, 4, 5, Heap>::random_uniform(-1.0, 1.0, 64);
    let (_, host_tangent) = jvp(|x: Matrix<Dual<f64>, 4, 5, Heap>| x.logsumexp(axis), &x, &v);
    let (_, tangent) = jvp(|x: CudaDual<f64, (Const<4>, Const<5>)>| x.logsumexp(axis), &dx, &v.to_device());
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
    // Max pooling: a NaN last in a window is that window's maximum and takes its
    // cotangent.
    let mut images =
        Tensor::<f64, (Const<1>, Const<2>, Const<4>, Const<4>), Heap>::random_uniform(-1.0, 1.0, 65);
    images.as_mut_slice()[5] = nan;
    type Pooled = Tensor<f64, (Const<1>, Const<2>, Const<2>, Const<2>), Heap>;
    let pooled: Pooled = images.max_pool2d::<2, 2, 2>();
    assert_close(&images.to_device().max_pool2d::<2, 2, 2>().to_vec(), pooled.as_slice(), 0.0);
    let pooled_bar = Pooled::random_uniform(-1.0, 1.0, 66);
    let mut images_bar = images.to_device();
    let pooling = (Window::<2>, Stride::<2>, Padding::<0>);
    device_rules::max_pool2d_pullback(
        &images.to_device(),
        &pooled_bar.to_device(),
        &mut images_bar,
        pooling,
        Write::Overwrite,
    );
    let host_bar = host_pool::max_pool2d_pullback(&images, &pooled_bar, pooling);
    assert_close(&images_bar.to_vec(), host_bar.as_slice(), 0.0);
    assert_eq!(host_bar.as_slice()[5], pooled_bar.as_slice()[0], "the NaN takes the cotangent");
    // Average pooling 3×3 of 4×4 images: the last row and column in no window get
    // no cotangent; the pullback adds onto what is there; the tangent is ẋ pooled.
    type PooledBy3 = Tensor<f64, (Const<1>, Const<2>, Const<1>, Const<1>), Heap>;
    let images = images.map(|v| if v.is_nan() { 0.5 } else { v });
    let pooled: PooledBy3 = images.avg_pool2d::<3, 1, 1>();
    assert_close(&images.to_device().avg_pool2d::<3, 1, 1>().to_vec(), pooled.as_slice(), 0.0);
    let pooled_bar = PooledBy3::random_uniform(-1.0, 1.0, 67);
    let mut images_bar = images.to_device();
    let pooling = (Window::<3>, Stride::<3>, Padding::<0>);
    device_rules::avg_pool2d_pullback(&pooled_bar.to_device(), &mut images_bar, pooling, Write::Accumulate);
    let host_bar: Tensor<f64, (Const<1>, Const<2>, Const<4>, Const<4>), Heap> =
        host_pool::avg_pool2d_pullback(&pooled_bar, pooling);
    assert_close(&images_bar.to_vec(), (&host_bar + &images).as_slice(), 0.0);
    let v = images.map(|v| v * v - 0.25);
    let (_, host_tangent) = jvp(
        |x: Tensor<Dual<f64>, (Const<1>, Const<2>, Const<4>, Const<4>), Heap>| x.avg_pool2d::<3, 1, 1>(),
        &images,
        &v,
    );
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<1>, Const<2>, Const<4>, Const<4>)>| x.avg_pool2d::<3, 1, 1>(),
        &images.to_device(),
        &v.to_device(),
    );
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
    // Overlapping windows of 3 with stride 2 and padding 1 on 4×4 images (2×2
    // windows, each element read by up to four): values, pullbacks and tangents.
    type Stem = Tensor<f64, (Const<1>, Const<2>, Const<2>, Const<2>), Heap>;
    type Image = Tensor<f64, (Const<1>, Const<2>, Const<4>, Const<4>), Heap>;
    let (window, stride, padding) = (Window::<3>, Stride::<2>, Padding::<1>);
    let pooling = (window, stride, padding);
    let stem_bar = Stem::random_uniform(-1.0, 1.0, 68);
    let largest: Stem = images.max_pool2d_strided(window, stride, padding);
    let mean: Stem = images.avg_pool2d_strided(window, stride, padding);
    let on_device = images.to_device();
    type DeviceStem = Tensor<f64, (Const<1>, Const<2>, Const<2>, Const<2>), Cuda>;
    let (device_largest, device_mean): (DeviceStem, DeviceStem) = (
        on_device.max_pool2d_strided(window, stride, padding),
        on_device.avg_pool2d_strided(window, stride, padding),
    );
    assert_close(&device_largest.to_vec(), largest.as_slice(), 0.0);
    assert_close(&device_mean.to_vec(), mean.as_slice(), 0.0);
    assert_eq!(device_largest.shape(), (Const::<1>, Const::<2>, Const::<2>, Const::<2>));
    let mut max_bar = images.to_device();
    device_rules::max_pool2d_pullback(
        &on_device,
        &stem_bar.to_device(),
        &mut max_bar,
        pooling,
        Write::Overwrite,
    );
    let host_max_bar = host_pool::max_pool2d_pullback(&images, &stem_bar, pooling);
    assert_close(&max_bar.to_vec(), host_max_bar.as_slice(), 0.0);
    let mut avg_bar = images.to_device();
    device_rules::avg_pool2d_pullback(&stem_bar.to_device(), &mut avg_bar, pooling, Write::Overwrite);
    let host_avg_bar: Image = host_pool::avg_pool2d_pullback(&stem_bar, pooling);
    assert_close(&avg_bar.to_vec(), host_avg_bar.as_slice(), 0.0);
    type DualStem = Tensor<Dual<f64>, (Const<1>, Const<2>, Const<2>, Const<2>), Heap>;
    let both = |x: Tensor<Dual<f64>, (Const<1>, Const<2>, Const<4>, Const<4>), Heap>| {
        let (largest, mean): (DualStem, DualStem) =
            (x.max_pool2d_strided(window, stride, padding), x.avg_pool2d_strided(window, stride, padding));
        &largest + &mean
    };
    let (_, host_tangent) = jvp(both, &images, &v);
    let (_, tangent) = jvp(
        |x: CudaDual<f64, (Const<1>, Const<2>, Const<4>, Const<4>)>| {
            type Pooled = CudaDual<f64, (Const<1>, Const<2>, Const<2>, Const<2>)>;
            let (largest, mean): (Pooled, Pooled) = (
                x.max_pool2d_strided(window, stride, padding),
                x.avg_pool2d_strided(window, stride, padding),
            );
            &largest + &mean
        },
        &on_device,
        &v.to_device(),
    );
    assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
    // The cross-entropy's rows with a NaN target, or a target on a masked logit: NaN
    // on the GPU's fused kernels as in the host's one node; the ordinary row a number.
    use fluxion::nn::loss::cross_entropy_one_hot;
    let z = Matrix::<f64, 3, 3, Heap>::from_array([[1.0, 2.0, 0.5], [1.0, -inf, 0.5], [0.2, 0.4, 0.6]]);
    let t = Matrix::<f64, 3, 3, Heap>::from_array([[0.5, nan, 0.5], [0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]);
    let host_gradient = grad(|z: Var<_>| cross_entropy_one_hot(&z, &t, Reduction::Sum), &z);
    let dt = t.to_device();
    let gradient = grad(
        |z: Var<Matrix<f64, 3, 3, Cuda>>| cross_entropy_one_hot(&z, &dt, Reduction::Sum),
        &z.to_device(),
    );
    assert_close(&gradient.to_vec(), host_gradient.as_slice(), F64_TOL);
}

/// Two images of 3 channels, 9×8, as f64 in [−2, 2).
type Images = Tensor<f64, (Const<2>, Const<3>, Const<9>, Const<8>), Heap>;

#[test]
fn image_operations_and_their_pullbacks_match_the_host() {
    use fluxion::ops::conv as host_image;
    let Some(_gpu) = gpu() else { return };
    let x: Images = Tensor::random_uniform(-2.0, 2.0, 50);
    let w: Tensor<f64, (Const<4>, Const<3>, Const<3>, Const<2>), Heap> =
        Tensor::random_uniform(-1.0, 1.0, 51);
    let (dx, dw) = (x.to_device(), w.to_device());
    let write_modes = [Write::Overwrite, Write::Accumulate];

    // Stride 1 without padding: 7×7 outputs; the pullback written and added.
    let y: Tensor<f64, (Const<2>, Const<4>, Const<7>, Const<7>), Heap> = x.conv2d(&w);
    let dy: Tensor<f64, (Const<2>, Const<4>, Const<7>, Const<7>), Cuda> = dx.conv2d(&dw);
    assert_close(&dy.to_vec(), y.as_slice(), F64_TOL);
    let y_bar = Tensor::random_uniform(-1.0, 1.0, 52);
    let (x_bar, w_bar) =
        host_image::conv2d_pullback::<1, 0, _, _, 3, 9, 8, 4, 3, 2, 7, 7, _>(&x, &w, &y_bar, (true, true));
    for write in write_modes {
        let (mut dx_bar, mut dw_bar) = (dx.clone(), dw.clone());
        device_rules::conv2d_pullback::<1, 0, _, _, 3, 9, 8, 4, 3, 2, 7, 7>(
            &dx,
            &dw,
            &y_bar.to_device(),
            Some((&mut dx_bar, write)),
            Some((&mut dw_bar, write)),
        );
        let (x_before, w_before) =
            if write == Write::Accumulate { (x.clone(), w.clone()) } else { (x.scale(0.0), w.scale(0.0)) };
        assert_close(&dx_bar.to_vec(), (&x_before + &x_bar).as_slice(), F64_TOL);
        assert_close(&dw_bar.to_vec(), (&w_before + &w_bar).as_slice(), F64_TOL);
    }
    // Stride 2 with padding 1: ⌊(9 + 2 − 3)/2⌋ + 1 = 5 by ⌊(8 + 2 − 2)/2⌋ + 1 = 5.
    let y: Tensor<f64, (Const<2>, Const<4>, Const<5>, Const<5>), Heap> =
        x.conv2d_strided(&w, Stride::<2>, Padding::<1>);
    let dy: Tensor<f64, (Const<2>, Const<4>, Const<5>, Const<5>), Cuda> =
        dx.conv2d_strided(&dw, Stride::<2>, Padding::<1>);
    assert_close(&dy.to_vec(), y.as_slice(), F64_TOL);
    let y_bar = Tensor::random_uniform(-1.0, 1.0, 53);
    let (x_bar, w_bar) =
        host_image::conv2d_pullback::<2, 1, _, _, 3, 9, 8, 4, 3, 2, 5, 5, _>(&x, &w, &y_bar, (true, true));
    let (mut dx_bar, mut dw_bar) = (dx.clone(), dw.clone());
    device_rules::conv2d_pullback::<2, 1, _, _, 3, 9, 8, 4, 3, 2, 5, 5>(
        &dx,
        &dw,
        &y_bar.to_device(),
        Some((&mut dx_bar, Write::Overwrite)),
        Some((&mut dw_bar, Write::Overwrite)),
    );
    assert_close(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
    assert_close(&dw_bar.to_vec(), w_bar.as_slice(), F64_TOL);
    // Padding beyond a kernel column's reach: a 5×5 kernel over a 2×1 image padded by 2.
    let small: Tensor<f64, (Const<1>, Const<1>, Const<2>, Const<1>), Heap> =
        Tensor::random_uniform(-1.0, 1.0, 55);
    let wide: Tensor<f64, (Const<1>, Const<1>, Const<5>, Const<5>), Heap> =
        Tensor::random_uniform(-1.0, 1.0, 56);
    let y: Tensor<f64, (Const<1>, Const<1>, Const<2>, Const<1>), Heap> =
        small.conv2d_padded(&wide, Padding::<2>);
    let dy: Tensor<f64, (Const<1>, Const<1>, Const<2>, Const<1>), Cuda> =
        small.to_device().conv2d_padded(&wide.to_device(), Padding::<2>);
    assert_close(&dy.to_vec(), y.as_slice(), F64_TOL);

    // A bias per channel and its pullback, on a dynamic batch.
    let b: Tensor<f64, (Const<3>,), Heap> = Tensor::random_uniform(-1.0, 1.0, 54);
    let xd: Tensor<f64, (Dyn, Const<3>, Const<9>, Const<8>), Heap> =
        Tensor::from_shape_slice((Dyn(2), Const, Const, Const), x.as_slice()).unwrap();
    assert_close(
        &xd.to_device().add_channels(&b.to_device()).to_vec(),
        xd.add_channels(&b).as_slice(),
        F64_TOL,
    );
    let (_, b_bar) = host_image::add_channels_pullback(&x);
    for write in write_modes {
        let mut db_bar = b.to_device();
        device_rules::add_channels_pullback(&dx, &mut db_bar, write);
        let before = if write == Write::Accumulate { b.clone() } else { b.scale(0.0) };
        assert_close(&db_bar.to_vec(), (&before + &b_bar).as_slice(), F64_TOL);
    }

    // Max pooling 2×2: 9×8 gives 4×4 (the last row in no window); ties go to the first.
    let mut tied = x.clone();
    tied.as_mut_slice()[1] = 10.0;
    tied.as_mut_slice()[8] = 10.0;
    let pooled: Tensor<f64, (Const<2>, Const<3>, Const<4>, Const<4>), Heap> = tied.max_pool2d::<2, 4, 4>();
    assert_close(&tied.to_device().max_pool2d::<2, 4, 4>().to_vec(), pooled.as_slice(), 0.0);
    let y_bar: Tensor<f64, (Const<2>, Const<3>, Const<4>, Const<4>), Heap> =
        Tensor::random_uniform(-1.0, 1.0, 55);
    let pooling = (Window::<2>, Stride::<2>, Padding::<0>);
    let x_bar = host_pool::max_pool2d_pullback(&tied, &y_bar, pooling);
    for write in write_modes {
        let mut dx_bar = x.to_device();
        device_rules::max_pool2d_pullback(&tied.to_device(), &y_bar.to_device(), &mut dx_bar, pooling, write);
        let before = if write == Write::Accumulate { x.clone() } else { x.scale(0.0) };
        assert_close(&dx_bar.to_vec(), (&before + &x_bar).as_slice(), F64_TOL);
    }
    let rows: Tensor<f64, (Const<2>, Const<216>), Heap> = x.flatten_images();
    assert_close(&dx.flatten_images::<216>().to_vec(), rows.as_slice(), 0.0);
}

#[test]
fn traced_image_operations_agree_with_finite_differences_on_the_gpu() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let Some(_gpu) = gpu() else { return };
    type D = Tensor<f64, (Const<2>, Const<3>, Const<9>, Const<8>), Cuda>;
    let x: Images = Tensor::random_uniform(-2.0, 2.0, 56);
    let x = x.to_device();
    let w: Tensor<f64, (Const<4>, Const<3>, Const<3>, Const<2>), Heap> =
        Tensor::random_uniform(-1.0, 1.0, 57);
    let (w, options) = (w.to_device(), CheckOptions::f64());
    macro_rules! check {
        ($name:literal, $input:expr, $f:expr) => {
            if let Err(error) = check_vjp($f, $input, options) {
                panic!("{}: {error}", $name);
            }
        };
    }
    let constant_w = Var::constant(w.clone());
    check!("conv2d_strided in x", &x, move |x: Var<D>| -> Var<
        Tensor<f64, (Const<2>, Const<4>, Const<5>, Const<5>), Cuda>,
    > { x.conv2d_strided(&constant_w, Stride::<2>, Padding::<1>) });
    let constant_x = Var::constant(x.clone());
    check!("conv2d_padded in w", &w, move |w: Var<
        Tensor<f64, (Const<4>, Const<3>, Const<3>, Const<2>), Cuda>,
    >|
          -> Var<
        Tensor<f64, (Const<2>, Const<4>, Const<9>, Const<9>), Cuda>,
    > { constant_x.conv2d_padded(&w, Padding::<1>) });
    let bias: Tensor<f64, (Const<3>,), Heap> = Tensor::random_uniform(-1.0, 1.0, 58);
    let bias = Var::constant(bias.to_device());
    check!("add_channels", &x, move |x: Var<D>| x.add_channels(&bias));
    check!("max_pool2d", &x, |x: Var<D>| x.max_pool2d::<2, 4, 4>());
    check!("avg_pool2d", &x, |x: Var<D>| x.avg_pool2d::<3, 3, 2>());
    type Stem = Tensor<f64, (Const<2>, Const<3>, Const<5>, Const<4>), Cuda>;
    check!("max_pool2d_strided", &x, |x: Var<D>| -> Var<Stem> {
        x.max_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>)
    });
    check!("avg_pool2d_strided", &x, |x: Var<D>| -> Var<Stem> {
        x.avg_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>)
    });
    check!("flatten_images", &x, |x: Var<D>| x.flatten_images::<216>());
}

/// A small CNN: convolution, ReLU, max pooling, flattening, a linear read-out.
type Convolutional<K> = Sequential<(
    Conv2d<f64, 1, 4, 3, 3, 6, 6, K>,
    Relu,
    MaxPool2d<2, 3, 3>,
    Flatten<36>,
    Linear<f64, 36, 3, K>,
)>;

#[test]
fn a_convolutional_model_trains_on_the_gpu_as_on_the_host() {
    let classes: Vec<usize> = (0..12).map(|b| b % 3).collect();
    // A bright row, column or diagonal for class 0, 1 or 2, over a faint pattern.
    let x: Tensor<f64, (Dyn, Const<1>, Const<8>, Const<8>), Heap> =
        Tensor::from_shape_fn((Dyn(12), Const, Const, Const), |[b, _, i, j]| {
            let on = match classes[b] {
                0 => i == 2 + b % 4,
                1 => j == 2 + b % 4,
                _ => i == j,
            };
            ((b * 64 + i * 8 + j) as f64 * 0.31).sin() * 0.2 + if on { 1.0 } else { 0.0 }
        });
    let host = Sequential((Conv2d::new(41), Relu, MaxPool2d, Flatten, Linear::new(42)));
    let sgd = SgdConfig { learning_rate: 0.1, ..SgdConfig::default() };
    let mut host_model: Convolutional<Heap> = host.clone();
    let host_curve = train(&mut host_model, &mut Sgd::new(sgd), &x, &classes, 10);
    assert!(host_curve[9] < 0.9 * host_curve[0], "the model learns: {host_curve:?}");
    let Some(_gpu) = gpu() else { return };
    let mut device_model = host.to_device(); // the whole model, layer by layer
    let device_curve = train(&mut device_model, &mut Sgd::new(sgd), &x.to_device(), &classes, 10);
    for (step, (h, d)) in host_curve.iter().zip(&device_curve).enumerate() {
        assert!((h - d).abs() <= 1e-12 * h.abs(), "step {step}: host {h}, GPU {d}");
    }
    assert_close(&device_model.0.0.weight.to_vec(), host_model.0.0.weight.as_slice(), 1e-10);
    assert_close(&device_model.0.0.bias.to_vec(), host_model.0.0.bias.as_slice(), 1e-10);
    // Inference on plain tensors gives the host's logits, and so does the model copied
    // back to the host.
    assert_close(&device_model.forward(&x.to_device()).to_vec(), host_model.forward(&x).as_slice(), 1e-10);
    assert_close(device_model.to_host().forward(&x).as_slice(), host_model.forward(&x).as_slice(), 1e-10);
}

#[test]
fn the_row_gather_and_an_embedding_model_match_the_host() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::nn::layer::Embedding;
    use fluxion::ops::rows as host_rows;
    let Some(_gpu) = gpu() else { return };
    let table: Matrix<f64, 7, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 60);
    let indices = [3, 0, 3, 6, 3, 1, 0, 2];
    let gathered = table.gather_rows(&indices);
    assert_close(&table.to_device().gather_rows(&indices).to_vec(), gathered.as_slice(), 0.0);
    // The pullback, written and added: each row's sum in the order of the indices, as
    // on the host, so bit for bit.
    let y_bar: Tensor<f64, (Dyn, Const<5>), Heap> =
        Tensor::random_uniform_shaped((Dyn(8), Const), -1.0, 1.0, 61);
    let host_bar = host_rows::gather_rows_pullback(table.shape(), &indices, &y_bar);
    for write in [Write::Overwrite, Write::Accumulate] {
        let mut device_bar = table.to_device();
        device_rules::gather_rows_pullback(&indices, &y_bar.to_device(), &mut device_bar, write);
        let before = if write == Write::Accumulate { table.clone() } else { table.scale(0.0) };
        assert_close(&device_bar.to_vec(), (&before + &host_bar).as_slice(), 0.0);
    }
    let traced = |t: Var<Matrix<f64, 7, 5, Cuda>>| t.gather_rows(&indices);
    if let Err(error) = check_vjp(traced, &table.to_device(), CheckOptions::f64()) {
        panic!("gather_rows: {error}");
    }

    // An embedding and a linear layer: the same loss and gradient on both kinds.
    let host = (Embedding::<f64, 7, 5>::new(62), Linear::<f64, 5, 3>::new(63));
    let device = (host.0.to_device(), host.1.to_device());
    let classes = [0, 1, 2, 1, 0, 2, 2, 1];
    let (host_loss, host_gradient) = value_and_grad(
        |m: <(Embedding<f64, 7, 5>, Linear<f64, 5, 3>) as Trace>::Traced| {
            cross_entropy(&m.1.forward(&m.0.forward(&indices[..])), &classes, Reduction::Mean)
        },
        &host,
    );
    let (device_loss, device_gradient) = value_and_grad(
        |m: <(Embedding<f64, 7, 5, Cuda>, Linear<f64, 5, 3, Cuda>) as Trace>::Traced| {
            cross_entropy(&m.1.forward(&m.0.forward(&indices[..])), &classes, Reduction::Mean)
        },
        &device,
    );
    assert!((host_loss - device_loss).abs() <= 1e-12 * host_loss, "host {host_loss}, GPU {device_loss}");
    assert_close(&device_gradient.0.weight.to_vec(), host_gradient.0.weight.as_slice(), 1e-12);
    assert_close(&device_gradient.1.weight.to_vec(), host_gradient.1.weight.as_slice(), 1e-12);
    // Inference on the GPU.
    assert_close(&device.0.forward(&indices[..]).to_vec(), host.0.forward(&indices[..]).as_slice(), 0.0);
}

#[test]
fn matmul_precisions_trade_accuracy_only_when_asked() {
    use fluxion::backend::cuda::MatmulPrecision;
    let Some(_alone) = gpu_alone() else { return };
    let device = Device::get().unwrap();
    /// Puts the default precision back, also when an assertion fails.
    struct FullPrecisionAfterwards(&'static Device);
    impl Drop for FullPrecisionAfterwards {
        fn drop(&mut self) {
            self.0.set_matmul_precision(MatmulPrecision::Full).unwrap();
        }
    }
    let _restore = FullPrecisionAfterwards(device);
    const K: usize = 512;
    let a: Tensor<f32, (Dyn, Dyn), Heap> = Tensor::random_uniform_shaped((Dyn(96), Dyn(K)), -1.0, 1.0, 70);
    let b: Tensor<f32, (Dyn, Dyn), Heap> = Tensor::random_uniform_shaped((Dyn(K), Dyn(64)), -1.0, 1.0, 71);
    let widen = |t: &Tensor<f32, (Dyn, Dyn), Heap>| {
        Tensor::<f64, _, Heap>::from_flat_fn(t.shape(), |i| t.as_slice()[i] as f64)
    };
    let (a64, b64) = (widen(&a), widen(&b));
    let exact = a64.matmul(&b64);
    // Σₖ |aᵢₖ·bₖⱼ| per entry: what rounding the inputs can move an entry by, relatively.
    let magnitudes = a64.abs().matmul(&b64.abs());
    let (da, db) = (a.to_device(), b.to_device());
    // The largest error of each precision, relative to the entry's magnitude.
    let error = |precision| {
        device.set_matmul_precision(precision).unwrap();
        let product = da.matmul(&db).to_vec();
        product
            .iter()
            .zip(exact.as_slice().iter().zip(magnitudes.as_slice()))
            .map(|(&p, (&e, &m))| (p as f64 - e).abs() / m)
            .fold(0.0, f64::max)
    };
    let (full, tf32, bf16) =
        (error(MatmulPrecision::Full), error(MatmulPrecision::Tf32), error(MatmulPrecision::Bf16));
    // Inputs rounded to a mantissa of p bits move a product by at most 2^(1−p); f32
    // keeps 24 bits, TF32 11 and BF16 8 (with f32 sums on top).
    assert!(full <= 1e-5, "full f32: {full:e}");
    assert!(tf32 <= 2f64.powi(-9) && tf32 > 4.0 * full, "TF32: {tf32:e} against {full:e} in full f32");
    assert!(bf16 <= 2f64.powi(-6) && bf16 > 4.0 * tf32, "BF16: {bf16:e} against {tf32:e} with TF32");
    // f64 products ignore the setting.
    let (a64d, b64d) = (a64.to_device(), b64.to_device());
    let under_bf16 = a64d.matmul(&b64d).to_vec();
    device.set_matmul_precision(MatmulPrecision::Full).unwrap();
    assert_eq!(under_bf16, a64d.matmul(&b64d).to_vec());
}

#[test]
fn forward_mode_through_gpu_layers_matches_the_host() {
    use fluxion::autodiff::{Lift, Unlift};
    use fluxion::nn::layer::{
        Conv2dLifted, Embedding, EmbeddingLifted, GeluTanh, LayerNormLifted, LinearLifted, Softmax, Tanh,
        WithBias,
    };
    let Some(_gpu) = gpu() else { return };
    // Each parameter and the input with a tangent beside it: the lifted models, built
    // from the same values on both kinds.
    let conv: Conv2d<f64, 1, 2, 3, 3, 4, 4> = Conv2d::new(80);
    let (conv_dot, norm_dot): (Conv2d<f64, 1, 2, 3, 3, 4, 4>, Linear<f64, 8, 8>) =
        (Conv2d::new(81), Linear::new(82));
    let linear: Linear<f64, 8, 3> = Linear::new(83);
    let linear_dot: Linear<f64, 8, 3> = Linear::new(84);
    let norm_weight: Tensor<f64, (Const<8>,), Heap> = Tensor::random_uniform(0.5, 1.5, 85);
    let norm_bias: Tensor<f64, (Const<8>,), Heap> = Tensor::random_uniform(-0.5, 0.5, 86);
    let norm_dot = (norm_dot.weight.sum_axis(Axis::<1>), norm_dot.bias);
    macro_rules! lifted_cnn {
        ($to:ident, $kind:ty) => {
            Sequential((
                Conv2dLifted::<f64, 1, 2, 3, 3, 4, 4, $kind, 0, 1> {
                    weight: conv.weight.$to().lift(&conv_dot.weight.$to()),
                    bias: conv.bias.$to().lift(&conv_dot.bias.$to()),
                },
                Tanh,
                MaxPool2d::<2, 2, 2>,
                Flatten::<8>,
                LayerNormLifted::<f64, 8, $kind> {
                    weight: norm_weight.$to().lift(&norm_dot.0.$to()),
                    bias: norm_bias.$to().lift(&norm_dot.1.$to()),
                    epsilon: 1e-5,
                },
                LinearLifted::<f64, 8, 3, $kind, WithBias> {
                    weight: linear.weight.$to().lift(&linear_dot.weight.$to()),
                    bias: linear.bias.$to().lift(&linear_dot.bias.$to()),
                },
            ))
        };
    }
    let host_cnn = lifted_cnn!(clone, Heap);
    let device_cnn = lifted_cnn!(to_device, Cuda);
    let images: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::random_normal_shaped((Dyn(3), Const, Const, Const), 0.0, 1.0, 87);
    let images_dot: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::random_normal_shaped((Dyn(3), Const, Const, Const), 0.0, 1.0, 88);
    let (value, tangent) = Softmax.forward(&host_cnn.forward(&images.lift(&images_dot))).unlift();
    let (device_value, device_tangent) =
        Softmax.forward(&device_cnn.forward(&images.to_device().lift(&images_dot.to_device()))).unlift();
    assert_close(&device_value.to_vec(), value.as_slice(), F64_TOL);
    assert_close(&device_tangent.to_vec(), tangent.as_slice(), F64_TOL);
    assert!(tangent.as_slice().iter().any(|t| t.abs() > 1e-3), "a tangent that can differ");

    // An embedding, GELU, dropout in training (the same mask on both kinds) and a
    // log-softmax with its logsumexp.
    let table: Embedding<f64, 9, 8> = Embedding::new(89);
    let table_dot: Embedding<f64, 9, 8> = Embedding::new(90);
    let indices = [4, 0, 8, 4, 2];
    let dropout = || Dropout::new(0.25, 91);
    let host_rows = EmbeddingLifted::<f64, 9, 8, Heap> { weight: table.weight.lift(&table_dot.weight) }
        .forward(&indices[..]);
    let device_rows = EmbeddingLifted::<f64, 9, 8, Cuda> {
        weight: table.weight.to_device().lift(&table_dot.weight.to_device()),
    }
    .forward(&indices[..]);
    let host = Sequential((GeluTanh, dropout())).forward(&host_rows).log_softmax(Axis::<1>);
    let device = Sequential((GeluTanh, dropout())).forward(&device_rows).log_softmax(Axis::<1>);
    let ((value, tangent), (device_value, device_tangent)) = (host.unlift(), device.unlift());
    assert_close(&device_value.to_vec(), value.as_slice(), F64_TOL);
    assert_close(&device_tangent.to_vec(), tangent.as_slice(), F64_TOL);
    let (host_total, device_total) =
        (host_rows.logsumexp(Axis::<1>).unlift(), device_rows.logsumexp(Axis::<1>).unlift());
    assert_close(&device_total.1.to_vec(), host_total.1.as_slice(), F64_TOL);
}

#[test]
fn forward_mode_through_reductions_and_layout_on_the_gpu_agrees_with_reverse_mode() {
    use fluxion::autodiff::{CudaDual, jvp};
    let Some(_gpu) = gpu() else { return };
    type X = Matrix<f64, 6, 5, Cuda>;
    let x: X = Matrix::<f64, 6, 5, Heap>::random_uniform(-1.0, 1.0, 39).to_device();
    let v: X = Matrix::<f64, 6, 5, Heap>::random_uniform(-1.0, 1.0, 40).to_device();
    // Centred columns, transposed and reshaped back, normalised rows, a softmax against
    // a log-softmax, x·xᵀ and a logsumexp, slices joined again: every reduction and
    // layout change of the duals.
    macro_rules! f {
        ($x:expr) => {{
            let x = $x;
            let centred = &x - &x.mean_axis(Axis::<0>).broadcast::<(Const<6>, Const<5>)>();
            let back = centred.transpose().reshape::<(Const<6>, Const<5>)>().normalize_rows(1e-5);
            let mixed = back.softmax(Axis::<1>).hadamard(&x.log_softmax(Axis::<0>)).sum_axis(Axis::<1>);
            let gram = x.matmul_transposed(&x).logsumexp(Axis::<1>);
            let halves =
                x.narrow::<1, 0, 2>().concat::<1, Const<3>, Const<5>>(Axis::<1>, &x.narrow::<1, 2, 3>());
            &mixed.hadamard(&gram).sum() + &halves.hadamard(&halves.exp()).sum()
        }};
    }
    let (value, derivative) = jvp(|x: CudaDual<f64, (Const<6>, Const<5>)>| f!(x), &x, &v);
    let (reverse_value, gradient) = value_and_grad(|x: Var<X>| f!(x), &x);
    assert!(
        (value - reverse_value).abs() <= F64_TOL * value.abs().max(1.0),
        "{value} against {reverse_value}"
    );
    let adjoint = gradient.dot(&v);
    assert!(
        (derivative - adjoint).abs() <= 1e-10 * adjoint.abs().max(1.0),
        "jvp {derivative}, ⟨∇f, v⟩ {adjoint}"
    );
    assert!(adjoint.abs() > 1e-3, "a derivative that can differ: {adjoint}");
}

#[test]
fn a_custom_rule_on_gpu_tensors_agrees_with_finite_differences() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::autodiff::record_unary;
    let Some(_gpu) = gpu() else { return };
    type D = Matrix<f64, 4, 6, Cuda>;
    // softplus(x) = ln(1 + eˣ) as a new primitive: its value from any GPU code, its rule
    // x̄ = ȳ ⊙ σ(x) stated by hand, as a library author would add it.
    fn softplus(x: &Var<D>) -> Var<D> {
        let value = (&x.value().exp() + &Tensor::device_full(x.value().shape(), 1.0)).ln();
        let input = x.shared_value();
        record_unary(x, value, move |y_bar: &D| y_bar.hadamard(&input.sigmoid()))
    }
    let x = signed::<1, 4, 6>(92).reshape::<(Const<4>, Const<6>)>().to_device();
    let host: Matrix<f64, 4, 6, Heap> = x.to_host();
    assert_close(
        &softplus(&Var::constant(x.clone())).value().to_vec(),
        host.map(|v| (v.exp() + 1.0).ln()).as_slice(),
        F64_TOL,
    );
    if let Err(error) = check_vjp(|x: Var<D>| softplus(&x).hadamard(&x), &x, CheckOptions::f64()) {
        panic!("custom softplus: {error}");
    }
}

// Complex elements: the host's results and cotangents through cgemm/zgemm and the
// generated complex kernels.

/// ‖device − host‖ ≤ tol·max(1, ‖host‖) over all parts: complex products cancel in
/// single elements, so they are compared as a whole.
#[track_caller]
fn assert_close_complex<R: RealScalar>(device: &[Complex<R>], host: &[Complex<R>], tol: f64) {
    assert_eq!(device.len(), host.len());
    let squared = |z: Complex<f64>| z.norm_sqr();
    let wide = |z: &Complex<R>| Complex::new(z.re.to_f64(), z.im.to_f64());
    let error: f64 = device.iter().zip(host).map(|(d, h)| squared(wide(d) - wide(h))).sum::<f64>().sqrt();
    let size: f64 = host.iter().map(|h| squared(wide(h))).sum::<f64>().sqrt();
    assert!(error <= tol * size.max(1.0), "device and host differ by {error} (host norm {size})");
}

fn complex<const A: usize, const B: usize, const C: usize>(seed: u64) -> Tensor3<Complex64, A, B, C, Heap> {
    Tensor3::random_uniform(-2.0, 2.0, seed)
}

#[test]
fn complex_arithmetic_reductions_and_layout_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    // A real divisor's reciprocal is taken in real arithmetic: 1/(r + 0i) as r/r²
    // would overflow r² in f32 here and give zeros.
    let z32: Vector<Complex32, 2, Heap> =
        Vector::from_array([Complex32::new(3e19, -6e19), Complex32::new(1.5, 0.0)]);
    let quotient = (&z32.to_device() / 3e19f32).to_vec();
    assert!((quotient[0] - Complex32::new(1.0, -2.0)).norm() < 1e-6, "{quotient:?}");
    assert!((quotient[1].re - 5e-20).abs() < 1e-25, "{quotient:?}");
    let (a, b) = (complex::<2, 9, 13>(40), complex::<2, 9, 13>(41));
    let (da, db) = (a.to_device(), b.to_device());
    assert_eq!(da.to_host::<Heap>().as_slice(), a.as_slice(), "a round trip keeps every bit");
    let c = Complex64::new(0.75, -1.25);
    assert_close_complex(&(&da + &db).to_vec(), (&a + &b).as_slice(), 0.0);
    assert_close_complex(&(&da - &db).to_vec(), (&a - &b).as_slice(), 0.0);
    assert_close_complex(&(-&da).to_vec(), (-&a).as_slice(), 0.0);
    assert_close_complex(&da.hadamard(&db).to_vec(), a.hadamard(&b).as_slice(), F64_TOL);
    assert_close_complex(&(&da * c).to_vec(), (&a * c).as_slice(), F64_TOL);
    assert_close_complex(
        &(&da / c).to_vec(),
        a.map(|z| z * (Complex64::new(1.0, 0.0) / c)).as_slice(),
        F64_TOL,
    );
    assert_close_complex(&da.conj().to_vec(), a.conj().as_slice(), 0.0);
    assert_close(&da.re().to_vec(), a.re().as_slice(), 0.0);
    assert_close(&da.im().to_vec(), a.im().as_slice(), 0.0);
    assert_close(&da.norm_sqr().to_vec(), a.norm_sqr().as_slice(), F64_TOL);
    assert_close(&da.abs().to_vec(), a.abs().as_slice(), F64_TOL);
    // The elementary functions and their pullbacks x̄ = conj(f′(x))·ȳ.
    let (y_bar, earlier) = (complex::<2, 9, 13>(42), complex::<2, 9, 13>(43));
    let dy_bar = y_bar.to_device();
    for f in ELEMENTARY {
        let (y, dy) = (a.elementary(f), da.elementary(f));
        assert_close_complex(&dy.to_vec(), y.as_slice(), F64_TOL);
        for write in [Write::Overwrite, Write::Accumulate] {
            let mut x_bar = earlier.clone();
            host_rules::elementary_pullback(f, (&a, &y, &y_bar), &mut x_bar, write);
            let mut dx_bar = earlier.to_device();
            device_rules::complex_elementary_pullback(f, (&da, &dy, &dy_bar), &mut dx_bar, write);
            assert_close_complex(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
        }
    }
    assert_close_complex(&(&da * 2.5).to_vec(), (&a * 2.5).as_slice(), 0.0);
    assert_close_complex(&(&da / 4.0).to_vec(), a.map(|z| z / 4.0).as_slice(), 0.0);
    // |x| scales before squaring: no overflow at 1e200, no underflow at 1e-200.
    for magnitude in [1e200, 1e-200] {
        let extreme = a.map(|z| z * magnitude);
        let (host_abs, device_abs) = (extreme.abs(), extreme.to_device().abs().to_vec());
        for (d, h) in device_abs.iter().zip(host_abs.as_slice()) {
            assert!((d - h).abs() <= F64_TOL * h, "|x| at {magnitude}: device {d}, host {h}");
        }
    }
    // tanh, σ and eˣ at real parts where the textbook formulas overflow: the host's
    // overflow-free formulas on the GPU too (±1, 0 and 1, ∞ + 0i).
    let far: Vector<Complex64, 4, Heap> = Vector::from_array([
        Complex64::new(400.0, 0.0),
        Complex64::new(-800.0, 0.3),
        Complex64::new(800.0, 0.0),
        Complex64::new(1e-10, 1.0),
    ]);
    for f in [Elementary::Tanh, Elementary::Sigmoid, Elementary::Exp] {
        let (host, device) = (far.elementary(f), far.to_device().elementary(f).to_vec());
        for (d, h) in device.iter().zip(host.as_slice()) {
            assert!((d - h).norm() <= F64_TOL * h.norm() || d == h, "{f:?}: device {d}, host {h}");
        }
    }
    assert_close_complex(&[da.sum(), da.mean()], &[a.sum(), a.mean()], F64_TOL);
    assert_close_complex(&[da.inner(&db), da.dotu(&db)], &[a.inner(&b), a.dotu(&b)], F64_TOL);
    assert_close_complex(&da.sum_axis(Axis::<1>).to_vec(), a.sum_axis(Axis::<1>).as_slice(), F64_TOL);
    assert_close_complex(&da.mean_axis(Axis::<2>).to_vec(), a.mean_axis(Axis::<2>).as_slice(), F64_TOL);
    type Spread = (Const<3>, Const<2>, Const<9>, Const<13>);
    let spread: Tensor<Complex64, Spread, Heap> = a.broadcast();
    assert_close_complex(&da.broadcast::<Spread>().to_vec(), spread.as_slice(), 0.0);
    let joined: Tensor3<Complex64, 2, 18, 13, Heap> = a.concat(Axis::<1>, &b);
    let device_joined: Tensor3<Complex64, 2, 18, 13, Cuda> = da.concat(Axis::<1>, &db);
    assert_close_complex(&device_joined.to_vec(), joined.as_slice(), 0.0);
    let window = a.narrow::<2, 3, 5>();
    assert_close_complex(&da.narrow::<2, 3, 5>().to_vec(), window.as_slice(), 0.0);
    let flat = da.reshape::<(Const<234>,)>();
    assert_eq!(flat.try_inner(&flat.narrow::<0, 0, 234>()), Ok(da.inner(&da)));
    // Row operations, transposes and outer products read a complex row as its parts.
    let m: Matrix<Complex64, 37, 70, Heap> = Matrix::random_uniform(-1.0, 1.0, 44);
    let (row, column): (Vector<Complex64, 70, Heap>, Vector<Complex64, 37, Heap>) =
        (Vector::random_uniform(-1.0, 1.0, 45), Vector::random_uniform(-1.0, 1.0, 46));
    let (dm, drow, dcolumn) = (m.to_device(), row.to_device(), column.to_device());
    assert_close_complex(&dm.transpose().to_vec(), m.transpose().as_slice(), 0.0);
    assert_close_complex(&dm.add_rows(&drow).to_vec(), m.add_rows(&row).as_slice(), 0.0);
    assert_close_complex(&dm.mul_rows(&drow).to_vec(), m.mul_rows(&row).as_slice(), F64_TOL);
    let indices = [36, 0, 5, 36];
    assert_close_complex(&dm.gather_rows(&indices).to_vec(), m.gather_rows(&indices).as_slice(), 0.0);
    assert_close_complex(&dcolumn.outer(&drow).to_vec(), column.outer(&row).as_slice(), F64_TOL);
    let (host_column_bar, host_row_bar) = fluxion::product::outer::outer_pullback(&column, &row, &m);
    let (mut column_bar, mut row_bar) = (dcolumn.clone(), drow.clone());
    device_rules::outer_pullback(
        (&dcolumn, &drow, &dm),
        Some((&mut column_bar, Write::Overwrite)),
        Some((&mut row_bar, Write::Overwrite)),
    );
    assert_close_complex(&column_bar.to_vec(), host_column_bar.as_slice(), F64_TOL);
    assert_close_complex(&row_bar.to_vec(), host_row_bar.as_slice(), F64_TOL);
    let value = Complex64::new(0.25, -3.0);
    assert_eq!(
        Matrix::<Complex64, 2, 3, Cuda>::device_full(Default::default(), value).to_vec(),
        vec![value; 6]
    );
    // Complex32 through the f32 kernels.
    let a32: Tensor3<Complex32, 2, 9, 13, Heap> = a.map(|z| Complex32::new(z.re as f32, z.im as f32));
    let b32: Tensor3<Complex32, 2, 9, 13, Heap> = b.map(|z| Complex32::new(z.re as f32, z.im as f32));
    let (da32, db32) = (a32.to_device(), b32.to_device());
    assert_close_complex(&da32.hadamard(&db32).to_vec(), a32.hadamard(&b32).as_slice(), F32_TOL);
    assert_close_complex(&[da32.inner(&db32)], &[a32.inner(&b32)], SUM_TOL);
}

#[test]
fn complex_matrix_products_and_their_pullbacks_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let a: Matrix<Complex64, 37, 21, Heap> = Matrix::random_uniform(-1.0, 1.0, 42);
    let b: Matrix<Complex64, 21, 29, Heap> = Matrix::random_uniform(-1.0, 1.0, 43);
    let v: Vector<Complex64, 21, Heap> = Vector::random_uniform(-1.0, 1.0, 44);
    let (da, db) = (a.to_device(), b.to_device());
    assert_close_complex(&da.matmul(&db).to_vec(), a.matmul(&b).as_slice(), F64_TOL);
    assert_close_complex(&da.matmul(&v.to_device()).to_vec(), a.matmul(&v).as_slice(), F64_TOL);
    let c_bar: Matrix<Complex64, 37, 29, Heap> = Matrix::random_uniform(-1.0, 1.0, 45);
    for write in [Write::Overwrite, Write::Accumulate] {
        let (mut a_bar, mut b_bar) = (a.clone(), b.clone());
        a.matmul_pullback(&b, &c_bar, Some((&mut a_bar, write)), Some((&mut b_bar, write)));
        let (mut da_bar, mut db_bar) = (da.clone(), db.clone());
        da.matmul_pullback(&db, &c_bar.to_device(), Some((&mut da_bar, write)), Some((&mut db_bar, write)));
        assert_close_complex(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
        assert_close_complex(&db_bar.to_vec(), b_bar.as_slice(), F64_TOL);
    }
    // Matrix × vector and its pullback: products with a dimension of 1.
    let y_bar: Vector<Complex64, 37, Heap> = Vector::random_uniform(-1.0, 1.0, 56);
    let dv = v.to_device();
    for write in [Write::Overwrite, Write::Accumulate] {
        let (mut a_bar, mut v_bar) = (a.clone(), v.clone());
        a.matmul_pullback(&v, &y_bar, Some((&mut a_bar, write)), Some((&mut v_bar, write)));
        let (mut da_bar, mut dv_bar) = (da.clone(), dv.clone());
        da.matmul_pullback(&dv, &y_bar.to_device(), Some((&mut da_bar, write)), Some((&mut dv_bar, write)));
        assert_close_complex(&da_bar.to_vec(), a_bar.as_slice(), F64_TOL);
        assert_close_complex(&dv_bar.to_vec(), v_bar.as_slice(), F64_TOL);
    }
    let row: Matrix<Complex64, 1, 21, Heap> = Matrix::random_uniform(-1.0, 1.0, 57);
    assert_close_complex(&row.to_device().matmul(&db).to_vec(), row.matmul(&b).as_slice(), F64_TOL);
    // Batched, and a batch by one matrix with its pullback (B̄ summed over the batch).
    let x: Tensor3<Complex64, 3, 8, 11, Heap> = Tensor3::random_uniform(-1.0, 1.0, 46);
    let y: Tensor3<Complex64, 3, 11, 5, Heap> = Tensor3::random_uniform(-1.0, 1.0, 47);
    assert_close_complex(&x.to_device().matmul(&y.to_device()).to_vec(), x.matmul(&y).as_slice(), F64_TOL);
    let w: Matrix<Complex64, 11, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 48);
    let xw = x.matmul(&w);
    let (mut x_bar, mut w_bar) = (x.clone(), w.clone());
    x.matmul_pullback(&w, &xw, Some((&mut x_bar, Write::Overwrite)), Some((&mut w_bar, Write::Overwrite)));
    let (dx, dw) = (x.to_device(), w.to_device());
    let (mut dx_bar, mut dw_bar) = (dx.clone(), dw.clone());
    dx.matmul_pullback(
        &dw,
        &xw.to_device(),
        Some((&mut dx_bar, Write::Overwrite)),
        Some((&mut dw_bar, Write::Overwrite)),
    );
    assert_close_complex(&dx_bar.to_vec(), x_bar.as_slice(), F64_TOL);
    assert_close_complex(&dw_bar.to_vec(), w_bar.as_slice(), F64_TOL);
    // Complex32 through cgemm.
    let a32: Matrix<Complex32, 64, 128, Heap> = Matrix::random_uniform(-1.0, 1.0, 49);
    let b32: Matrix<Complex32, 128, 32, Heap> = Matrix::random_uniform(-1.0, 1.0, 50);
    assert_close_complex(
        &a32.to_device().matmul(&b32.to_device()).to_vec(),
        a32.matmul(&b32).as_slice(),
        SUM_TOL,
    );
    let c32_bar: Matrix<Complex32, 64, 32, Heap> = Matrix::random_uniform(-1.0, 1.0, 59);
    let (mut a32_bar, mut b32_bar) = (a32.clone(), b32.clone());
    a32.matmul_pullback(
        &b32,
        &c32_bar,
        Some((&mut a32_bar, Write::Overwrite)),
        Some((&mut b32_bar, Write::Overwrite)),
    );
    let (da32, db32) = (a32.to_device(), b32.to_device());
    let (mut da32_bar, mut db32_bar) = (da32.clone(), db32.clone());
    da32.matmul_pullback(
        &db32,
        &c32_bar.to_device(),
        Some((&mut da32_bar, Write::Overwrite)),
        Some((&mut db32_bar, Write::Overwrite)),
    );
    assert_close_complex(&da32_bar.to_vec(), a32_bar.as_slice(), SUM_TOL);
    assert_close_complex(&db32_bar.to_vec(), b32_bar.as_slice(), SUM_TOL);
    let v32: Vector<Complex32, 128, Heap> = Vector::random_uniform(-1.0, 1.0, 58);
    assert_close_complex(
        &a32.to_device().matmul(&v32.to_device()).to_vec(),
        a32.matmul(&v32).as_slice(),
        SUM_TOL,
    );
    // A transposed operand is transposed, never conjugated, as on the host; the
    // cotangents conjugate the other operand. Each pullback adds to what was there.
    let (p, q): (Matrix<Complex64, 7, 5, Heap>, Matrix<Complex64, 6, 5, Heap>) =
        (Matrix::random_uniform(-1.0, 1.0, 60), Matrix::random_uniform(-1.0, 1.0, 61));
    let r: Matrix<Complex64, 7, 6, Heap> = Matrix::random_uniform(-1.0, 1.0, 62);
    let (dp, dq, dr) = (p.to_device(), q.to_device(), r.to_device());
    assert_close_complex(&dp.matmul_transposed(&dq).to_vec(), p.matmul_transposed(&q).as_slice(), F64_TOL);
    assert_close_complex(&dp.transposed_matmul(&dr).to_vec(), p.transposed_matmul(&r).as_slice(), F64_TOL);
    let (mut p_bar, mut q_bar) = (p.clone(), q.clone());
    p.matmul_transposed_pullback(
        &q,
        &r,
        Some((&mut p_bar, Write::Accumulate)),
        Some((&mut q_bar, Write::Accumulate)),
    );
    let (mut dp_bar, mut dq_bar) = (dp.clone(), dq.clone());
    dp.matmul_transposed_pullback(
        &dq,
        &dr,
        Some((&mut dp_bar, Write::Accumulate)),
        Some((&mut dq_bar, Write::Accumulate)),
    );
    assert_close_complex(&dp_bar.to_vec(), p_bar.as_slice(), F64_TOL);
    assert_close_complex(&dq_bar.to_vec(), q_bar.as_slice(), F64_TOL);
    let y_bar: Matrix<Complex64, 5, 6, Heap> = Matrix::random_uniform(-1.0, 1.0, 63);
    let (mut p_bar, mut r_bar) = (p.clone(), r.clone());
    p.transposed_matmul_pullback(
        &r,
        &y_bar,
        Some((&mut p_bar, Write::Accumulate)),
        Some((&mut r_bar, Write::Overwrite)),
    );
    let (mut dp_bar, mut dr_bar) = (dp.clone(), dr.clone());
    dp.transposed_matmul_pullback(
        &dr,
        &y_bar.to_device(),
        Some((&mut dp_bar, Write::Accumulate)),
        Some((&mut dr_bar, Write::Overwrite)),
    );
    assert_close_complex(&dp_bar.to_vec(), p_bar.as_slice(), F64_TOL);
    assert_close_complex(&dr_bar.to_vec(), r_bar.as_slice(), F64_TOL);
    // With a dimension of 1 (for Complex64: four real products of the parts, flags
    // included), the cotangents overwriting what was there.
    let single: Matrix<Complex64, 1, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 64);
    let ds = single.to_device();
    assert_close_complex(
        &dp.matmul_transposed(&ds).to_vec(),
        p.matmul_transposed(&single).as_slice(),
        F64_TOL,
    );
    let column_bar: Matrix<Complex64, 7, 1, Heap> = Matrix::random_uniform(-1.0, 1.0, 65);
    let (mut p_bar, mut s_bar) = (p.clone(), single.clone());
    let (p_write, s_write) = (Some((&mut p_bar, Write::Overwrite)), Some((&mut s_bar, Write::Overwrite)));
    p.matmul_transposed_pullback(&single, &column_bar, p_write, s_write);
    let (mut dp_bar, mut ds_bar) = (dp.clone(), ds.clone());
    let (dp_write, ds_write) = (Some((&mut dp_bar, Write::Overwrite)), Some((&mut ds_bar, Write::Overwrite)));
    dp.matmul_transposed_pullback(&ds, &column_bar.to_device(), dp_write, ds_write);
    assert_close_complex(&dp_bar.to_vec(), p_bar.as_slice(), F64_TOL);
    assert_close_complex(&ds_bar.to_vec(), s_bar.as_slice(), F64_TOL);
}

#[test]
fn complex_rules_agree_with_finite_differences_and_the_host_gradient() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
    let Some(_gpu) = gpu() else { return };
    type Z = Matrix<Complex64, 4, 5, Cuda>;
    let host_z: Matrix<Complex64, 4, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 51);
    let z = host_z.to_device();
    let host_c: Matrix<Complex64, 4, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 52);
    let c = Var::constant(host_c.to_device());
    let w = Var::constant(Matrix::<Complex64, 5, 3, Heap>::random_uniform(-1.0, 1.0, 53).to_device());
    let factor = Complex64::new(0.5, -2.0);
    let options = CheckOptions::f64();
    macro_rules! check {
        ($name:literal, $check:ident, $f:expr) => {
            if let Err(error) = $check($f, &z, options) {
                panic!("{}: {error}", $name);
            }
        };
    }
    check!("add", check_vjp, |z: Var<Z>| &z + &z.hadamard(&c));
    check!("sub and neg", check_vjp, |z: Var<Z>| &(-&z) - &c);
    check!("scale", check_vjp, move |z: Var<Z>| &z * factor);
    check!("real scale", check_vjp, |z: Var<Z>| &(&z * 0.5) / 4.0);
    check!("hadamard", check_vjp, |z: Var<Z>| z.hadamard(&z));
    check!("conj", check_vjp, |z: Var<Z>| z.conj());
    check!("exp", check_vjp, |z: Var<Z>| z.exp());
    check!("ln", check_vjp, |z: Var<Z>| z.ln());
    check!("tanh", check_vjp, |z: Var<Z>| z.tanh());
    check!("sqrt", check_vjp, |z: Var<Z>| z.sqrt());
    check!("powf", check_vjp, |z: Var<Z>| z.powf(0.7));
    check!("re", check_vjp, |z: Var<Z>| z.re());
    check!("im", check_vjp, |z: Var<Z>| z.im());
    check!("abs", check_vjp, |z: Var<Z>| z.abs());
    check!("norm_sqr", check_vjp, |z: Var<Z>| z.norm_sqr());
    check!("matmul", check_vjp, move |z: Var<Z>| z.matmul(&w));
    check!("inner", check_grad, |z: Var<Z>| z.inner(&c).norm_sqr());
    check!("dotu", check_grad, |z: Var<Z>| z.dotu(&z).re());
    check!("sum and mean", check_grad, |z: Var<Z>| (z.sum() * z.mean()).im());
    check!("sum_axis", check_vjp, |z: Var<Z>| z.sum_axis(Axis::<0>));
    check!("mean_axis", check_vjp, |z: Var<Z>| z.mean_axis(Axis::<1>));
    check!("broadcast", check_vjp, |z: Var<Z>| z.broadcast::<(Const<2>, Const<4>, Const<5>)>());
    check!("reshape", check_vjp, |z: Var<Z>| z.reshape::<(Const<20>,)>());
    check!("narrow", check_vjp, |z: Var<Z>| z.narrow::<1, 1, 3>());
    check!("concat", check_vjp, |z: Var<Z>| -> Var<Matrix<Complex64, 4, 10, Cuda>> {
        z.concat(Axis::<1>, &z.conj())
    });
    check!("matmul_transposed", check_vjp, |z: Var<Z>| z.matmul_transposed(&z.conj()));
    check!("transposed_matmul", check_vjp, |z: Var<Z>| z.transposed_matmul(&z.hadamard(&c)));
    check!("transpose", check_vjp, |z: Var<Z>| z.transpose());
    check!("add_rows", check_vjp, |z: Var<Z>| z.add_rows(&z.sum_axis(Axis::<0>).conj()));
    check!("mul_rows", check_vjp, |z: Var<Z>| z.mul_rows(&z.sum_axis(Axis::<0>).conj()));
    check!("gather_rows", check_vjp, |z: Var<Z>| z.gather_rows(&[3, 0, 3, 1]));
    check!("outer", check_vjp, |z: Var<Z>| z.sum_axis(Axis::<1>).outer(&z.sum_axis(Axis::<0>).conj()));

    // A real loss of complex parameters: ‖A·z − b‖², the same gradient 2Aᴴ(Az − b)
    // on the host and on the GPU.
    let a: Matrix<Complex64, 6, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 54);
    let target: Matrix<Complex64, 6, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 55);
    let host_gradient = grad(
        |z: Var<Matrix<Complex64, 4, 5, Heap>>| {
            (&Var::constant(a.clone()).matmul(&z) - &Var::constant(target.clone())).norm_sqr().sum()
        },
        &host_z,
    );
    let (da, dtarget) = (a.to_device(), target.to_device());
    let gradient = grad(
        |z: Var<Z>| {
            (&Var::constant(da.clone()).matmul(&z) - &Var::constant(dtarget.clone())).norm_sqr().sum()
        },
        &z,
    );
    assert_close_complex(&gradient.to_vec(), host_gradient.as_slice(), F64_TOL);
    // One SGD step on the complex parameter moves both parts as on the host.
    let (mut host_parameter, mut parameter) = (host_z.clone(), z.clone());
    Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() })
        .step(&mut host_parameter, &host_gradient);
    Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() }).step(&mut parameter, &gradient);
    assert_close_complex(&parameter.to_vec(), host_parameter.as_slice(), F64_TOL);
    assert!(
        (global_norm(&gradient) - global_norm(&host_gradient)).abs() <= F64_TOL * global_norm(&host_gradient)
    );
    // Parameter files see a complex GPU tensor as the host does (re, im on a last axis
    // of 2), and writing through the visitor reaches the GPU.
    use fluxion::nn::params::{Elements, ElementsMut, Parameters};
    let leaf = |tensor: &dyn Parameters| {
        let mut found = (Vec::new(), Vec::new());
        tensor.visit_parameters(&mut String::new(), &mut |_, leaf| {
            let Elements::F64(elements) = leaf.elements else { panic!("f64 parts") };
            found = (leaf.shape.to_vec(), elements.to_vec());
        });
        found
    };
    assert_eq!(leaf(&parameter), leaf(&parameter.to_host::<Heap>()));
    assert_eq!(leaf(&parameter).0, [4, 5, 2]);
    parameter.visit_parameters_mut(&mut String::new(), &mut |_, leaf| {
        let ElementsMut::F64(elements) = leaf.elements else { panic!("f64 parts") };
        elements[1] = 7.0; // the imaginary part of element [0, 0]
    });
    assert_eq!(parameter.to_vec()[0].im, 7.0);
}

#[test]
fn forward_mode_on_complex_gpu_tensors_matches_host_duals_and_finite_differences() {
    use fluxion::autodiff::{CudaDual, Dual, jvp};
    let Some(_gpu) = gpu() else { return };
    let z: Matrix<Complex64, 5, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 60);
    let v: Matrix<Complex64, 5, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 61);
    let m: Matrix<Complex64, 3, 5, Heap> = Matrix::random_uniform(-1.0, 1.0, 62);
    let g: Vector<Complex64, 4, Heap> = Vector::random_uniform(-1.0, 1.0, 63);
    let c = Complex64::new(0.5, -1.5);
    // Every operation of a complex GPU dual: the elementary functions (holomorphic),
    // products, row operations, layout, conj and the real-valued maps.
    macro_rules! f {
        ($z:expr, $m:expr, $g:expr, $c:expr) => {{
            let z = $z;
            let wave = &z.exp().hadamard(&z.sin()) + &(&z.sqrt().tanh() * $c);
            let gained = wave.mul_rows(&$g).conj().add_rows(&$g);
            let product = $m.matmul(&gained); // 3×4
            let gram = product.matmul_transposed(&product).transpose(); // 3×3, no conjugation
            let cross = product.transposed_matmul(&product); // 4×4
            let columns = z.sum_axis(Axis::<0>).reshape::<(Const<2>, Const<2>)>();
            let moduli = gram.abs().sum() + (&cross * $c).norm_sqr().sum();
            let parts = (&gained.re() - &gained.im()).sum() + moduli;
            let holomorphic = gram.ln().sum() + cross.powi(2).dotu(&cross) - columns.inner(&columns);
            (holomorphic, parts + (-&z.cos().narrow::<0, 1, 3>()).re().sum())
        }};
    }
    type HostDual = Dual<Complex64>;
    let host_constant = |t: &Matrix<Complex64, 3, 5, Heap>| t.map(HostDual::constant);
    let (host_m, host_g) = (host_constant(&m), g.map(HostDual::constant));
    let ((host_value, host_real), (host_tangent, host_real_tangent)) =
        jvp(|z: Matrix<HostDual, 5, 4, Heap>| f!(z, host_m, host_g, HostDual::constant(c)), &z, &v);
    let (device_m, device_g) = (CudaDual::constant(m.to_device()), CudaDual::constant(g.to_device()));
    let on_gpu = |z: CudaDual<Complex64, (Const<5>, Const<4>)>| f!(z, device_m, device_g, c);
    let ((value, real), (tangent, real_tangent)) = jvp(on_gpu, &z.to_device(), &v.to_device());
    assert_close_complex(&[value, tangent], &[host_value, host_tangent], F64_TOL);
    assert_close(&[real, real_tangent], &[host_real, host_real_tangent], F64_TOL);
    // d/dt f(z + t·v) at t = 0 by central differences, on the GPU's values.
    let h = 1e-6;
    let at = |t: f64| on_gpu(CudaDual::constant((&z + &v.map(|vi| vi * t)).to_device()));
    let ((ahead, real_ahead), (behind, real_behind)) = (at(h), at(-h));
    let slope = (ahead.value() - behind.value()) / (2.0 * h);
    let real_slope = (real_ahead.value() - real_behind.value()) / (2.0 * h);
    assert_close_complex(&[slope], &[tangent], 1e-7);
    assert_close(&[real_slope], &[real_tangent], 1e-7);
    assert!(tangent.norm() > 1e-3 && real_tangent.abs() > 1e-3, "derivatives that can differ");
}

/// max(x, y)·|z| + x·y: a fused function that chooses by value.
#[derive(Clone, Copy, Debug)]
struct Choosing;

impl FusedFunction<3> for Choosing {
    fn value<T: RealScalar>(&self, [x, y, z]: [T; 3]) -> T {
        RealScalar::max(x, y) * z.abs() + x * y
    }
}

/// (x² + 1)^y: an exponent that is an input, recorded on symbolic duals too.
#[derive(Clone, Copy, Debug)]
struct Power;

impl FusedFunction<2> for Power {
    fn value<T: RealScalar>(&self, [x, y]: [T; 2]) -> T {
        (x * x + T::one()).powf(y)
    }
}

#[test]
fn a_fused_function_runs_as_one_kernel_with_generated_derivatives() {
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::autodiff::{CudaDual, jvp};
    let Some(_gpu) = gpu() else { return };
    let (x, g, r) = (signed::<2, 30, 41>(60), signed::<2, 30, 41>(61), signed::<2, 30, 41>(62));
    let (dx, dg, dr) = (x.to_device(), g.to_device(), r.to_device());
    assert_close(
        &GatedSquare.apply([&dx, &dg, &dr]).to_vec(),
        GatedSquare.apply([&x, &g, &r]).as_slice(),
        F64_TOL,
    );
    // Every input's cotangent against the host's (one kernel each), written and added.
    let y_bar = signed::<2, 30, 41>(63);
    let host = fluxion::ops::elementwise::fused_pullback(GatedSquare, [&x, &g, &r], &y_bar);
    for (k, host_bar) in host.iter().enumerate() {
        let earlier = signed::<2, 30, 41>(64);
        for write in [Write::Overwrite, Write::Accumulate] {
            let mut device_bar = earlier.to_device();
            device_rules::fused_pullback(
                (GatedSquare, k),
                [&dx, &dg, &dr],
                &y_bar.to_device(),
                &mut device_bar,
                write,
            );
            let want = if write == Write::Overwrite { host_bar.clone() } else { &earlier + host_bar };
            assert_close(&device_bar.to_vec(), want.as_slice(), F64_TOL);
        }
    }
    // Reverse mode (the same tensor in two places) and forward mode on the GPU.
    type D = Matrix<f64, 4, 6, Cuda>;
    let z = signed::<1, 4, 6>(65).reshape::<(Const<4>, Const<6>)>().to_device();
    let c = Var::constant(signed::<1, 4, 6>(66).reshape::<(Const<4>, Const<6>)>().to_device());
    if let Err(error) = check_vjp(|z: Var<D>| GatedSquare.apply([&z, &c, &z]), &z, CheckOptions::f64()) {
        panic!("fused: {error}");
    }
    // A choice by value (max, abs) in a fused function: its GPU derivative kernels,
    // recorded on symbolic duals, against the host's gradient.
    let chooser = |x: Var<D>| Choosing.apply([&x, &c, &x]).sum();
    let host_z: Matrix<f64, 4, 6, Heap> = z.to_host();
    let host_c = Var::constant(c.value().to_host::<Heap>());
    let host_gradient =
        grad(|x: Var<Matrix<f64, 4, 6, Heap>>| Choosing.apply([&x, &host_c, &x]).sum(), &host_z);
    assert_close(&grad(chooser, &z).to_vec(), host_gradient.as_slice(), F64_TOL);
    // An exponent computed from the inputs: both cotangents as on the host.
    let host_y = signed::<1, 4, 6>(68).reshape::<(Const<4>, Const<6>)>();
    let host_power = grad(
        |(x, y): (Var<Matrix<f64, 4, 6, Heap>>, Var<Matrix<f64, 4, 6, Heap>>)| Power.apply([&x, &y]).sum(),
        &(host_z.clone(), host_y.clone()),
    );
    let device_power =
        grad(|(x, y): (Var<D>, Var<D>)| Power.apply([&x, &y]).sum(), &(z.clone(), host_y.to_device()));
    assert_close(&device_power.0.to_vec(), host_power.0.as_slice(), F64_TOL);
    assert_close(&device_power.1.to_vec(), host_power.1.as_slice(), F64_TOL);
    let v = signed::<1, 4, 6>(67).reshape::<(Const<4>, Const<6>)>().to_device();
    let constant = CudaDual::constant(c.value().clone());
    let (_, derivative) =
        jvp(|z: CudaDual<f64, (Const<4>, Const<6>)>| GatedSquare.apply([&z, &constant, &z]).sum(), &z, &v);
    let gradient = grad(|z: Var<D>| GatedSquare.apply([&z, &c, &z]).sum(), &z);
    let adjoint = gradient.dot(&v);
    assert!(
        (derivative - adjoint).abs() <= 1e-12 * adjoint.abs().max(1.0),
        "jvp {derivative}, ⟨∇f, v⟩ {adjoint}"
    );
}

/// Random GPU tensors hold the host's draws for the same seed.
#[test]
fn random_gpu_tensors_equal_the_host_draws() {
    let Some(_gpu) = gpu() else { return };
    type H = Tensor<f32, (Dyn, Const<7>), Heap>;
    type D = Tensor<f32, (Dyn, Const<7>), Cuda>;
    let shape = (Dyn(33), Const);
    assert_eq!(
        D::device_random_uniform(shape, -0.5, 0.5, 3).to_vec(),
        H::random_uniform_shaped(shape, -0.5, 0.5, 3).to_vec()
    );
    assert_eq!(
        D::device_random_normal(shape, 1.0, 2.0, 4).to_vec(),
        H::random_normal_shaped(shape, 1.0, 2.0, 4).to_vec()
    );
}

/// A `ScalarFunction` that compares values cannot be recorded for a GPU kernel: the
/// panic names the function and what it asked, before anything runs.
#[test]
fn a_scalar_function_that_compares_values_is_refused_by_name() {
    /// 1 for x > 0, else 0, by a comparison (not recordable).
    #[derive(Clone, Copy, Debug)]
    struct Step;
    impl ScalarFunction for Step {
        fn value<T: RealScalar>(&self, x: T) -> T {
            if x > T::zero() { T::one() } else { T::zero() }
        }
        fn derivative<T: RealScalar>(&self, _: T, _: T) -> T {
            T::zero()
        }
    }
    let Some(_gpu) = gpu() else { return };
    let x = Vector::<f64, 3, Heap>::full(1.0).to_device();
    let panic = std::panic::catch_unwind(|| x.map_function(Step).to_vec()).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.starts_with("kernel `user_Step_value`: "), "{message}");
    assert!(message.contains("it compares values"), "{message}");
}

/// `abs`, `flatten` and `scale_by` of traced GPU tensors, as on the host:
/// values and gradients (abs at 0 passes 0).
#[test]
fn traced_abs_flatten_and_scale_by_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let mut x: Matrix<f64, 3, 4, Heap> = Matrix::random_uniform(-1.2, 1.2, 97);
    x.as_mut_slice()[5] = 0.0;
    let s = 0.75;
    let (host_value, host_gradient) = value_and_grad(
        |(x, s): (Var<Matrix<f64, 3, 4, Heap>>, Var<f64>)| {
            let y = &x.abs() + &x;
            y.scale_by(&s).flatten::<12>().hadamard(&x.flatten::<12>()).sum()
        },
        &(x.clone(), s),
    );
    let (device_value, device_gradient) = value_and_grad(
        |(x, s): (Var<Matrix<f64, 3, 4, Cuda>>, Var<f64>)| {
            let y = &x.abs() + &x;
            y.scale_by(&s).flatten::<12>().hadamard(&x.flatten::<12>()).sum()
        },
        &(x.to_device(), s),
    );
    assert_close(&[device_value], &[host_value], F64_TOL);
    assert_close(&device_gradient.0.to_vec(), host_gradient.0.as_slice(), F64_TOL);
    assert_close(&[device_gradient.1], &[host_gradient.1], F64_TOL);
}

/// `scale_by` of a traced complex GPU tensor by a traced complex scalar, beside plain
/// complex rows (`mul_rows`, `add_rows`): the host's value and gradient, x̄ = conj(s)·ȳ
/// and s̄ = ⟨x, ȳ⟩, under a real loss that reads both parts.
#[test]
fn traced_complex_scale_by_and_plain_complex_rows_match_the_host() {
    let Some(_gpu) = gpu() else { return };
    let z: Matrix<Complex64, 3, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 98);
    let g: Vector<Complex64, 4, Heap> = Vector::random_uniform(-1.0, 1.0, 99);
    let s = Complex64::new(0.75, -1.25);
    macro_rules! loss {
        ($kind:ty, $g:expr) => {
            |(z, s): (Var<Matrix<Complex64, 3, 4, $kind>>, Var<Complex64>)| {
                let y = z.scale_by(&s);
                let w = y.mul_rows($g).add_rows($g);
                &(&w.inner(&z).re() + &y.norm_sqr().sum()) + &(&w.sum() * &s).im()
            }
        };
    }
    let (host_value, host_gradient) = value_and_grad(loss!(Heap, &g), &(z.clone(), s));
    let device_g = g.to_device();
    let (device_value, device_gradient) = value_and_grad(loss!(Cuda, &device_g), &(z.to_device(), s));
    assert_close(&[device_value], &[host_value], F64_TOL);
    assert_close_complex(&device_gradient.0.to_vec(), host_gradient.0.as_slice(), F64_TOL);
    assert_close_complex(&[device_gradient.1], &[host_gradient.1], F64_TOL);
}

/// `argmax` and `accuracy` of GPU scores: one kernel, the host's picks (the first
/// largest on a tie, a NaN over any number), in f32 and f64, empty batches too.
#[test]
fn argmax_and_accuracy_of_gpu_scores_match_the_host() {
    use fluxion::nn::loss::{accuracy, argmax};
    // Alone on the device: its kernel count is checked.
    let Some(_gpu) = gpu_alone() else { return };
    let mut scores: Tensor<f64, (Dyn, Const<7>), Heap> =
        Tensor::random_uniform_shaped((Dyn(300), Const), -1.0, 1.0, 95);
    // Row 0: a tie for the largest at columns 2 and 5; row 1: a NaN at column 4.
    (scores.as_mut_slice()[2], scores.as_mut_slice()[5]) = (3.0, 3.0);
    scores.as_mut_slice()[7 + 4] = f64::NAN;
    let host = argmax(&scores);
    assert_eq!((host[0], host[1]), (2, 4));
    let classes: Vec<usize> = (0..300).map(|b| (b * 5) % 7).collect();
    let device = Device::get().expect("a GPU");
    let before = device.kernel_launches();
    assert_eq!(argmax(&scores.to_device()), host);
    assert_eq!(device.kernel_launches() - before, 1, "one kernel for the argmax");
    assert_eq!(accuracy(&scores.to_device(), &classes), accuracy(&scores, &classes));
    let single: Tensor<f32, (Dyn, Const<7>), Heap> = scores.map(|x| x as f32);
    assert_eq!(argmax(&single.to_device()), argmax(&single));
    // A pending result (a fused chain) is computed first; no rows give no picks.
    let shifted = &single.to_device() * 2.0;
    assert_eq!(argmax(&shifted), argmax(&single));
    let empty = Tensor::<f32, (Dyn, Const<7>), Cuda>::device_zeros((Dyn(0), Const));
    assert!(argmax(&empty).is_empty());
}

/// The trigonometric, error and rounding functions (kernels generated from static
/// mode's rules): values and gradients of traced GPU tensors and forward mode on
/// `CudaDual`s against the host, in f64 and f32.
#[test]
fn trigonometric_error_and_rounding_functions_match_the_host() {
    use fluxion::autodiff::{CudaDual, jvp};
    let Some(_gpu) = gpu() else { return };
    type H = Matrix<f64, 8, 50, Heap>;
    type D = Matrix<f64, 8, 50, Cuda>;
    macro_rules! all_functions {
        ($x:expr) => {{
            let x = $x;
            let smooth = [x.tan(), x.atan(), x.asin(), x.acos(), x.erf(), x.erfc(), x.fract()];
            let total = smooth[1..].iter().fold(smooth[0].clone(), |total, term| &total + term);
            let rounded = &(&x.scale(4.0).floor() + &x.scale(4.0).ceil())
                + &(&x.scale(4.0).round() + &x.scale(4.0).trunc());
            (&total + &rounded.hadamard(x)).sum()
        }};
    }
    // Inside asin's and acos's domain; random values sit on no jump.
    let x: H = Tensor::random_uniform(-0.95, 0.95, 93);
    let dx = x.to_device();
    let (host_value, host_gradient) = value_and_grad(|x: Var<H>| all_functions!(&x), &x);
    let (device_value, device_gradient) = value_and_grad(|x: Var<D>| all_functions!(&x), &dx);
    assert_close(&[device_value], &[host_value], F64_TOL);
    assert_close(&device_gradient.to_vec(), host_gradient.as_slice(), F64_TOL);
    let v: H = Tensor::random_uniform(-1.0, 1.0, 94);
    let (_, derivative) =
        jvp(|x: CudaDual<f64, (Const<8>, Const<50>)>| all_functions!(&x), &dx, &v.to_device());
    let adjoint = host_gradient.dot(&v);
    assert!(
        (derivative - adjoint).abs() <= 1e-12 * adjoint.abs().max(1.0),
        "jvp {derivative}, ⟨∇f, v⟩ {adjoint}"
    );
    // A shape mismatch of `try_maximum` is an error, as on the host.
    let (short, long) = (
        Tensor::<f64, (Dyn,), Cuda>::device_zeros((Dyn(2),)),
        Tensor::<f64, (Dyn,), Cuda>::device_zeros((Dyn(3),)),
    );
    assert!(short.try_maximum(&long).unwrap_err().to_string().contains("maximum"));
    // An infinite cotangent through a rounding function gives 0, as on the host.
    type V = Vector<f64, 2, Cuda>;
    let far: Vector<f64, 2, Heap> = Vector::from_array([1000.5, 2.0]);
    let g = grad(|x: Var<V>| x.floor().exp().sum(), &far.to_device());
    assert_eq!(g.to_vec(), [0.0, 0.0]);
    // f32 elementwise, against the host's f32.
    let x32: Matrix<f32, 8, 50, Heap> = x.map(|v| v as f32);
    let d32 = x32.to_device();
    for (host, device) in [
        (x32.erf(), d32.erf()),
        (x32.tan(), d32.tan()),
        (x32.scale(4.0).round(), d32.scale(4.0).round()),
        (x32.scale(4.0).floor(), d32.scale(4.0).floor()),
    ] {
        assert_close(&device.to_vec(), host.as_slice(), F32_TOL);
    }
}

/// The named elementwise functions (softplus, SiLU, leaky ReLU, clamp, maximum,
/// minimum): values and gradients of traced GPU tensors, and forward mode on
/// `CudaDual`s, against the host, at kinks and ties too.
#[test]
fn named_elementwise_functions_match_the_host() {
    use fluxion::autodiff::{CudaDual, jvp};
    let Some(_gpu) = gpu() else { return };
    type H = Matrix<f64, 8, 50, Heap>;
    type D = Matrix<f64, 8, 50, Cuda>;
    type Lifted = CudaDual<f64, (Const<8>, Const<50>)>;
    let (mut x, mut y): (H, H) =
        (Tensor::random_uniform(-3.0, 3.0, 90), Tensor::random_uniform(-3.0, 3.0, 91));
    // Kinks: x on clamp's bounds, and ties of x and y (half the derivative each).
    (x.as_mut_slice()[3], x.as_mut_slice()[5]) = (1.0, -1.0);
    for k in (0..400).step_by(7) {
        y.as_mut_slice()[k] = x.as_slice()[k];
    }
    let (dx, dy) = (x.to_device(), y.to_device());
    // Σ of every function's result, through references (as the GPU kinds add).
    macro_rules! all_functions {
        ($x:expr, $y:expr) => {{
            let (x, y) = ($x, $y);
            let terms =
                [x.softplus(), x.silu(), x.leaky_relu(0.01), x.clamp(-1.0, 1.0), x.maximum(y), x.minimum(y)];
            terms[1..].iter().fold(terms[0].clone(), |total, term| &total + term).sum()
        }};
    }
    let (host_y, device_y) = (Var::constant(y.clone()), Var::constant(dy.clone()));
    let (host_value, host_gradient) = value_and_grad(|x: Var<H>| all_functions!(&x, &host_y), &x);
    let (device_value, device_gradient) = value_and_grad(|x: Var<D>| all_functions!(&x, &device_y), &dx);
    assert_close(&[device_value], &[host_value], F64_TOL);
    assert_close(&device_gradient.to_vec(), host_gradient.as_slice(), F64_TOL);
    let v: H = Tensor::random_uniform(-1.0, 1.0, 92);
    let constant = CudaDual::constant(dy.clone());
    let (_, derivative) = jvp(|x: Lifted| all_functions!(&x, &constant), &dx, &v.to_device());
    let adjoint = host_gradient.dot(&v);
    assert!(
        (derivative - adjoint).abs() <= 1e-12 * adjoint.abs().max(1.0),
        "jvp {derivative}, ⟨∇f, v⟩ {adjoint}"
    );
    // Owned operands, as on the host: the same value and gradient as references.
    let owned =
        value_and_grad(|x: Var<D>| (-(x.softplus() + x.silu()) - x.clamp(-1.0, 1.0) * 2.0).sum(), &dx);
    let by_reference = value_and_grad(
        |x: Var<D>| (&-&(&x.softplus() + &x.silu()) - &(&x.clamp(-1.0, 1.0) * 2.0)).sum(),
        &dx,
    );
    assert_eq!((owned.0, owned.1.to_vec()), (by_reference.0, by_reference.1.to_vec()));
    let (_, owned_derivative) =
        jvp(|x: Lifted| (-(x.silu() + x.softplus()) / 2.0).sum(), &dx, &v.to_device());
    let (_, reference_derivative) =
        jvp(|x: Lifted| (&-&(&x.silu() + &x.softplus()) / 2.0).sum(), &dx, &v.to_device());
    assert_eq!(owned_derivative, reference_derivative);
    // An infinite cotangent reaches the picked operand only (the other gets an exact
    // 0), in reverse and forward mode, as on the host.
    type V = Vector<f64, 2, Heap>;
    let (a, b): (V, V) = (Vector::from_array([0.0, 1.0]), Vector::from_array([-1.0, 0.0]));
    let host = grad(|(a, b): (Var<V>, Var<V>)| a.maximum(&b).sqrt().sum(), &(a.clone(), b.clone()));
    let device = grad(
        |(a, b): (Var<Vector<f64, 2, Cuda>>, Var<Vector<f64, 2, Cuda>>)| a.maximum(&b).sqrt().sum(),
        &(a.to_device(), b.to_device()),
    );
    assert_eq!((device.0.to_vec(), device.1.to_vec()), (host.0.to_vec(), host.1.to_vec()));
    let infinite = Vector::<f64, 2, Heap>::from_array([f64::INFINITY, 1.0]).to_device();
    let (_, tangent) = jvp(
        |b: CudaDual<f64, (Const<2>,)>| CudaDual::constant(a.to_device()).maximum(&b).sum(),
        &b.to_device(),
        &infinite,
    );
    assert_eq!(tangent, 0.0, "the unpicked operand's infinite tangent does not reach the sum");
}

/// GELU with erf under the unreduced, weighted cross-entropy, and a checkpoint of a
/// GPU model and its optimiser read into a host model and back: as on the host.
#[cfg(feature = "safetensors")]
#[test]
fn gelu_unreduced_losses_and_checkpoints_match_the_host() {
    use fluxion::nn::io;
    use fluxion::nn::layer::Gelu;
    use fluxion::nn::loss::unreduced;
    let Some(_gpu) = gpu() else { return };
    type Rows<K> = Tensor<f64, (Dyn, Const<5>), K>;
    let x: Rows<Heap> = Tensor::random_uniform_shaped((Dyn(6), Const), -3.0, 3.0, 70);
    let classes = [0, 4, 2, 2, 1, 3];
    let weights: Tensor<f64, (Dyn,), Heap> = Tensor::from_shape_fn((Dyn(6),), |[b]| 0.5 + b as f64 / 4.0);
    let (host_loss, host_gradient) = value_and_grad(
        |y: Var<Rows<Heap>>| {
            unreduced::cross_entropy(&Gelu.forward(&y), &classes).dot(&Var::constant(weights.clone()))
        },
        &x,
    );
    let device_weights = weights.to_device();
    let (device_loss, device_gradient) = value_and_grad(
        |y: Var<Rows<Cuda>>| {
            unreduced::cross_entropy(&Gelu.forward(&y), &classes).dot(&Var::constant(device_weights.clone()))
        },
        &x.to_device(),
    );
    assert!(
        (host_loss - device_loss).abs() <= 1e-12 * host_loss.abs(),
        "host {host_loss}, GPU {device_loss}"
    );
    assert_close(&device_gradient.to_vec(), host_gradient.as_slice(), 1e-12);
    let target: Rows<Heap> = Tensor::random_uniform_shaped((Dyn(6), Const), -1.0, 1.0, 71);
    let host_errors = unreduced::binary_cross_entropy_with_logits(&x, &target);
    let device_errors = unreduced::binary_cross_entropy_with_logits(&x.to_device(), &target.to_device());
    assert_close(&device_errors.to_vec(), host_errors.as_slice(), 1e-12);

    // One Adam step on the GPU; its checkpoint read into a host model and optimiser.
    let mut device_model = Linear::<f32, 5, 3>::new(72).to_device();
    let mut device_adam = Adam::new(AdamConfig::default());
    let xs = Tensor::<f32, (Dyn, Const<5>), Heap>::random_uniform_shaped((Dyn(4), Const), -1.0, 1.0, 73)
        .to_device();
    let gradient = grad(
        |m: <Linear<f32, 5, 3, Cuda> as Trace>::Traced| {
            cross_entropy(&m.forward(&xs), &[0, 1, 2, 0], Reduction::Mean)
        },
        &device_model,
    );
    device_adam.step(&mut device_model, &gradient);
    let bytes = io::checkpoint_to_bytes(&device_model, &device_adam).unwrap();
    let (mut host_model, mut host_adam) = (Linear::<f32, 5, 3>::new(0), Adam::new(AdamConfig::default()));
    io::load_checkpoint_bytes(&mut host_model, &mut host_adam, &bytes).unwrap();
    assert_eq!(host_model.weight.as_slice(), device_model.weight.to_vec());
    let ((host_m, host_v), (device_m, device_v)) =
        (host_adam.moments().unwrap(), device_adam.moments().unwrap());
    assert_eq!(
        (host_m.weight.as_slice(), host_v.bias.as_slice()),
        (&device_m.weight.to_vec()[..], &device_v.bias.to_vec()[..])
    );
    // And back onto the GPU, bit for bit.
    let (mut again, mut again_adam) =
        (Linear::<f32, 5, 3>::new(0).to_device(), Adam::new(AdamConfig::default()));
    io::load_checkpoint_bytes(
        &mut again,
        &mut again_adam,
        &io::checkpoint_to_bytes(&host_model, &host_adam).unwrap(),
    )
    .unwrap();
    assert_eq!((again.bias.to_vec(), again_adam.steps()), (device_model.bias.to_vec(), 1));

    // `stop_gradient` on GPU duals: d/dε Σ x ⊙ stop(x) = Σ v ⊙ x, as on the host.
    use fluxion::autodiff::CudaDual;
    let point: Vector<f64, 3, Heap> = Vector::from_array([0.5, -1.0, 2.0]);
    let direction: Vector<f64, 3, Heap> = Vector::from_array([1.0, 2.0, -1.0]);
    let (_, derivative) = jvp(
        |x: CudaDual<f64, (Const<3>,)>| x.hadamard(&stop_gradient(&x)).sum(),
        &point.to_device(),
        &direction.to_device(),
    );
    assert!((derivative - direction.dot(&point)).abs() < 1e-12, "{derivative}");
}

#[test]
fn separate_elementwise_operations_fuse_into_one_kernel() {
    use fluxion::backend::cuda::MOST_LEAVES;
    // Counting launches needs the GPU to itself.
    let Some(_alone) = gpu_alone() else { return };
    let device = Device::get().unwrap();
    let (x, y) = (positive::<2, 30, 40>(300), signed::<2, 30, 40>(301));
    let (dx, dy) = (x.to_device(), y.to_device());
    let chain = |x: &Tensor3<f64, 2, 30, 40, Heap>, y: &Tensor3<f64, 2, 30, 40, Heap>| {
        let t = &(&x.exp() * 0.5) - &y.hadamard(y);
        (&t.relu() + &x.sqrt()).softplus().scale(3.0)
    };
    let dchain = |x: &Tensor3<f64, 2, 30, 40, Cuda>, y: &Tensor3<f64, 2, 30, 40, Cuda>| {
        let t = &(&x.exp() * 0.5) - &y.hadamard(y);
        (&t.relu() + &x.sqrt()).softplus().scale(3.0)
    };
    let before = device.kernel_launches();
    let result = dchain(&dx, &dy);
    assert_eq!(device.kernel_launches(), before, "elementwise operations wait to be read");
    assert_close(&result.to_vec(), chain(&x, &y).as_slice(), F64_TOL);
    assert_eq!(device.kernel_launches(), before + 1, "nine operations, one kernel");
    // Read again: not computed again.
    let sum_launches = |t: &Tensor3<f64, 2, 30, 40, Cuda>| {
        let before = device.kernel_launches();
        let _ = t.sum();
        device.kernel_launches() - before
    };
    assert_eq!(sum_launches(&result), sum_launches(&dx), "the chain is computed once");

    // A write in place after a pending read leaves the pending result as it was, and
    // so does a write to a clone.
    let mut dw = dx.clone();
    let exp_before = dw.exp();
    let kept = dw.clone();
    dw.add_scaled(1.0, &dy);
    assert_close(&exp_before.to_vec(), x.exp().as_slice(), F64_TOL);
    assert_close(&kept.to_vec(), x.as_slice(), 0.0);
    assert_close(&dw.to_vec(), (&x + &y).as_slice(), F64_TOL);
    assert_close(&dx.to_vec(), x.as_slice(), 0.0);

    // A real factor beside complex data scales each part, in the chain: one kernel.
    let (z, w) = (complex::<2, 9, 13>(302), complex::<2, 9, 13>(303));
    let (dz, dw) = (z.to_device(), w.to_device());
    let before = device.kernel_launches();
    let scaled = (&(&dz + &dw) * 0.5) / 4.0;
    assert_close_complex(&scaled.to_vec(), ((&(&z + &w) * 0.5) / 4.0).as_slice(), F64_TOL);
    assert_eq!(device.kernel_launches(), before + 1, "a sum and two real scalings, one kernel");

    // Long chains and many inputs split into several kernels at the limits, with the
    // same values.
    let (mut long, mut dlong) = (x.clone(), dx.clone());
    let before = device.kernel_launches();
    for step in 0..300 {
        let factor = 1.0 + f64::from(step % 7) * 1e-3;
        long = &(&long * factor) - &y;
        dlong = &(&dlong * factor) - &dy;
    }
    assert_close(&dlong.to_vec(), long.as_slice(), 1e-10);
    let launches = device.kernel_launches() - before;
    assert!((2..=20).contains(&launches), "600 operations in {launches} kernels");
    let inputs: Vec<Tensor3<f64, 2, 30, 40, Heap>> = (0..3 * MOST_LEAVES as u64).map(signed).collect();
    let total = inputs.iter().skip(1).fold(inputs[0].clone(), |t, x| &t + x);
    let device_inputs: Vec<_> = inputs.iter().map(|x| x.to_device()).collect();
    let before = device.kernel_launches();
    let dtotal = device_inputs.iter().skip(1).fold(device_inputs[0].clone(), |t, x| &t + x);
    assert_close(&dtotal.to_vec(), total.as_slice(), F64_TOL);
    assert_eq!(
        device.kernel_launches() - before,
        4,
        "{} inputs, at most {MOST_LEAVES} a kernel",
        3 * MOST_LEAVES
    );
}

#[test]
fn broadcast_axis_and_its_rules_match_the_host() {
    use fluxion::autodiff::{CudaDual, jvp};
    let Some(_gpu) = gpu() else { return };
    let x: Matrix<f64, 6, 7, Heap> = Matrix::random_uniform(-1.0, 1.0, 320);
    let weights: Tensor3<f64, 6, 5, 7, Heap> = Tensor3::random_uniform(-1.0, 1.0, 321);
    let dx = x.to_device();
    let along1: Tensor3<f64, 6, 5, 7, Heap> = x.broadcast_axis(Axis::<1>);
    assert_close(
        &dx.broadcast_axis::<1, (Const<6>, Const<5>, Const<7>)>(Axis).to_vec(),
        along1.as_slice(),
        0.0,
    );
    let along0: Tensor3<f64, 3, 6, 7, Heap> = x.broadcast_axis(Axis::<0>);
    assert_close(
        &dx.broadcast_axis::<0, (Const<3>, Const<6>, Const<7>)>(Axis).to_vec(),
        along0.as_slice(),
        0.0,
    );
    let along2: Tensor3<f64, 6, 7, 4, Heap> = x.broadcast_axis(Axis::<2>);
    assert_close(
        &dx.broadcast_axis::<2, (Const<6>, Const<7>, Const<4>)>(Axis).to_vec(),
        along2.as_slice(),
        0.0,
    );
    // Reverse mode: Σ w ⊙ broadcast(x), x̄ = Σ of w along the new axis.
    let dw = Var::constant(weights.to_device());
    let w = Var::constant(weights.clone());
    let host = grad(|x: Var<Matrix<f64, 6, 7, Heap>>| x.broadcast_axis(Axis::<1>).hadamard(&w).sum(), &x);
    let device = grad(|x: Var<Matrix<f64, 6, 7, Cuda>>| x.broadcast_axis(Axis::<1>).hadamard(&dw).sum(), &dx);
    assert_close(&device.to_vec(), host.as_slice(), F64_TOL);
    assert_close(&host.to_vec(), weights.sum_axis(Axis::<1>).as_slice(), F64_TOL);
    // Used twice: the second pullback adds to the first.
    let twice = grad(
        |x: Var<Matrix<f64, 6, 7, Cuda>>| {
            x.broadcast_axis(Axis::<1>).hadamard(&dw).sum() + x.broadcast_axis(Axis::<1>).hadamard(&dw).sum()
        },
        &dx,
    );
    assert_close(&twice.to_vec(), (&host * 2.0).as_slice(), F64_TOL);
    // Forward mode: the tangent is broadcast alike.
    let v: Matrix<f64, 6, 7, Heap> = Matrix::random_uniform(-1.0, 1.0, 322);
    let dweights = weights.to_device();
    let (_, derivative) = jvp(
        |x: CudaDual<f64, (Const<6>, Const<7>)>| {
            x.broadcast_axis::<1, (Const<6>, Const<5>, Const<7>)>(Axis)
                .hadamard(&CudaDual::constant(dweights.clone()))
                .sum()
        },
        &dx,
        &v.to_device(),
    );
    let expected = weights.sum_axis(Axis::<1>).hadamard(&v).sum();
    assert!(
        (derivative - expected).abs() <= F64_TOL * expected.abs().max(1.0),
        "{derivative} against {expected}"
    );
    // Complex elements move both parts.
    let z: Matrix<Complex<f64>, 3, 2, Heap> = Matrix::random_uniform(-1.0, 1.0, 323);
    let wide: Tensor3<Complex<f64>, 3, 4, 2, Heap> = z.broadcast_axis(Axis::<1>);
    let device_wide = z.to_device().broadcast_axis::<1, (Const<3>, Const<4>, Const<2>)>(Axis).to_vec();
    assert_eq!(device_wide, wide.to_vec());
}

/// Rows of 6 values on the host or the GPU, plain or traced.
type AttentionRows<K> = Tensor<f64, (Dyn, Const<6>), K>;
/// Host rows of duals.
type DualRows = Tensor<Dual<f64>, (Dyn, Const<6>), Heap>;
type AttentionOperands<K> = (Var<AttentionRows<K>>, Var<AttentionRows<K>>, Var<AttentionRows<K>>);

/// Host rows of `count` random values.
fn attention_rows(count: usize, seed: u64) -> AttentionRows<Heap> {
    Tensor::random_normal_shaped((Dyn(count), Const), 0.0, 1.0, seed)
}

/// One attention, traced, on the GPU against the host: the value and gradient of
/// Σ tanh(y), the adjoint check, and the dual form's tangent against the host's
/// duals.
fn assert_gpu_attention_is_the_hosts(
    operands: [&AttentionRows<Heap>; 3],
    dots: [&AttentionRows<Heap>; 3],
    on_host: impl Fn(AttentionOperands<Heap>) -> Var<AttentionRows<Heap>>,
    on_gpu: impl Fn(AttentionOperands<Cuda>) -> Var<AttentionRows<Cuda>> + Copy,
    on_duals: impl Fn([&DualRows; 3]) -> DualRows,
    on_gpu_duals: impl Fn(
        [&fluxion::autodiff::CudaDual<f64, (Dyn, Const<6>)>; 3],
    ) -> fluxion::autodiff::CudaDual<f64, (Dyn, Const<6>)>,
) {
    use fluxion::autodiff::CudaDual;
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let [q, k, v] = operands;
    let host_operands = (q.clone(), k.clone(), v.clone());
    let gpu_operands = (q.to_device(), k.to_device(), v.to_device());
    let (host_value, host_gradient) = value_and_grad(|x| on_host(x).tanh().sum(), &host_operands);
    let (value, gradient) = value_and_grad(|x| on_gpu(x).tanh().sum(), &gpu_operands);
    assert_close(&[value], &[host_value], F64_TOL);
    assert_close(&gradient.0.to_vec(), host_gradient.0.as_slice(), F64_TOL);
    assert_close(&gradient.1.to_vec(), host_gradient.1.as_slice(), F64_TOL);
    assert_close(&gradient.2.to_vec(), host_gradient.2.as_slice(), F64_TOL);
    if let Err(error) = check_vjp(on_gpu, &gpu_operands, CheckOptions::f64()) {
        panic!("{error}");
    }
    let host_duals = [0, 1, 2].map(|i| {
        Tensor::from_flat_fn(operands[i].shape(), |e| {
            Dual::new(operands[i].as_slice()[e], [dots[i].as_slice()[e]])
        })
    });
    let host_tangent: Vec<f64> =
        on_duals([&host_duals[0], &host_duals[1], &host_duals[2]]).iter().map(|y| y.tangent()[0]).collect();
    let gpu_duals =
        [0, 1, 2].map(|i| CudaDual { value: operands[i].to_device(), tangent: dots[i].to_device() });
    let pushed = on_gpu_duals([&gpu_duals[0], &gpu_duals[1], &gpu_duals[2]]);
    assert_close(&pushed.tangent.to_vec(), &host_tangent, F64_TOL);
}

#[test]
fn padded_and_cross_attention_give_the_hosts_values_and_derivatives_on_the_gpu() {
    use fluxion::nn::prelude::{Heads, Mask, Tokens};
    // Three sequences: 4 tokens each for the self-attention (2, 4 and 1 real), 2
    // queries to 5 keys each for the cross-attention (5, 1 and 3 real).
    const LENGTHS: [usize; 3] = [2, 4, 1];
    const KEY_LENGTHS: [usize; 3] = [5, 1, 3];
    let [q, k, v, q_dot, k_dot, v_dot] = [92, 93, 94, 95, 96, 97].map(|seed| attention_rows(12, seed));
    let (cq, cq_dot) = (attention_rows(6, 98), attention_rows(6, 99));
    let [ck, cv, ck_dot, cv_dot] = [100, 101, 102, 103].map(|seed| attention_rows(15, seed));
    let Some(_gpu) = gpu() else { return };
    // The public derivatives of the cross-attention, padded, against the host's.
    let arguments = (Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Causal, Some(&KEY_LENGTHS[..]));
    let (cq_device, ck_device, cv_device) = (cq.to_device(), ck.to_device(), cv.to_device());
    let operands = (&cq_device, [&ck_device, &cv_device]);
    let (q_bar, [k_bar, v_bar]) =
        device_rules::cross_attention_pullback(operands, &cq_dot.to_device(), arguments);
    let (host_q_bar, [host_k_bar, host_v_bar]) =
        fluxion::ops::attention::cross_attention_pullback((&cq, [&ck, &cv]), &cq_dot, arguments);
    for (device_bar, host_bar) in [(&q_bar, &host_q_bar), (&k_bar, &host_k_bar), (&v_bar, &host_v_bar)] {
        assert_close(&device_bar.to_vec(), host_bar.as_slice(), F64_TOL);
    }
    let tangents = (&cq_dot.to_device(), [&ck_dot.to_device(), &cv_dot.to_device()]);
    let y_dot = device_rules::cross_attention_push(operands, tangents, arguments);
    let host_y_dot = fluxion::ops::attention::cross_attention_push(
        (&cq, [&ck, &cv]),
        (&cq_dot, [&ck_dot, &cv_dot]),
        arguments,
    );
    assert_close(&y_dot.to_vec(), host_y_dot.as_slice(), F64_TOL);
    for mask in [Mask::Full, Mask::Causal] {
        assert_gpu_attention_is_the_hosts(
            [&q, &k, &v],
            [&q_dot, &k_dot, &v_dot],
            |(q, k, v)| q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, mask, &LENGTHS),
            move |(q, k, v)| q.padded_attention(&k, &v, Heads::<2>, Tokens::<4>, mask, &LENGTHS),
            |[q, k, v]| q.padded_attention(k, v, Heads::<2>, Tokens::<4>, mask, &LENGTHS),
            |[q, k, v]| q.padded_attention(k, v, Heads::<2>, Tokens::<4>, mask, &LENGTHS),
        );
    }
    for (mask, lengths) in [
        (Mask::Full, None),
        (Mask::Full, Some(&KEY_LENGTHS[..])),
        (Mask::Causal, None),
        (Mask::Causal, Some(&KEY_LENGTHS[..])),
    ] {
        assert_gpu_attention_is_the_hosts(
            [&cq, &ck, &cv],
            [&cq_dot, &ck_dot, &cv_dot],
            |(q, k, v)| q.cross_attention(&k, &v, Heads::<3>, Tokens::<2>, Tokens::<5>, mask, lengths),
            move |(q, k, v)| q.cross_attention(&k, &v, Heads::<3>, Tokens::<2>, Tokens::<5>, mask, lengths),
            |[q, k, v]| q.cross_attention(k, v, Heads::<3>, Tokens::<2>, Tokens::<5>, mask, lengths),
            |[q, k, v]| q.cross_attention(k, v, Heads::<3>, Tokens::<2>, Tokens::<5>, mask, lengths),
        );
    }
}

#[test]
fn attention_and_a_decoder_block_give_the_hosts_values_and_derivatives_on_the_gpu() {
    use fluxion::autodiff::CudaDual;
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    use fluxion::nn::layer::{Gelu, MultiHeadAttention};
    use fluxion::nn::prelude::{Heads, Mask, Tokens};
    use fluxion::ops::attention as host_attention;
    type Rows<T, K> = Tensor<T, (Dyn, Const<6>), K>;
    let rows =
        |seed: u64| -> Rows<f64, Heap> { Tensor::random_normal_shaped((Dyn(8), Const), 0.0, 1.0, seed) };
    let [q, k, v, q_dot, k_dot, v_dot, y_bar] = [81, 82, 83, 84, 85, 86, 87].map(rows);
    // A decoder block: causal attention and a position-wise MLP, each residual.
    type Block<K> = Sequential<(
        Residual<Sequential<(LayerNorm<f64, 6, K>, MultiHeadAttention<f64, 6, 2, 4, K>)>>,
        Residual<Sequential<(Linear<f64, 6, 12, K>, Gelu, Linear<f64, 12, 6, K>)>>,
        Linear<f64, 6, 3, K>,
    )>;
    let host: Block<Heap> = Sequential((
        Residual(Sequential((LayerNorm::default(), MultiHeadAttention::new(Mask::Causal, 88)))),
        Residual(Sequential((Linear::new(89), Gelu, Linear::new(90)))),
        Linear::new(91),
    ));
    let Some(_gpu) = gpu() else { return };
    let device = |x: &Rows<f64, Heap>| x.to_device();
    for mask in [Mask::Full, Mask::Causal] {
        let args = (Heads::<2>, Tokens::<4>, mask);
        let y = device(&q).attention(&device(&k), &device(&v), Heads::<2>, Tokens::<4>, mask);
        assert_close(&y.to_vec(), q.attention(&k, &v, Heads::<2>, Tokens::<4>, mask).as_slice(), F64_TOL);
        let bars =
            device_rules::attention_pullback([&device(&q), &device(&k), &device(&v)], &device(&y_bar), args);
        let host_bars = host_attention::attention_pullback([&q, &k, &v], &y_bar, args);
        for (bar, host_bar) in bars.iter().zip(&host_bars) {
            assert_close(&bar.to_vec(), host_bar.as_slice(), F64_TOL);
        }
        let tangent = device_rules::attention_push(
            [&device(&q), &device(&k), &device(&v)],
            [&device(&q_dot), &device(&k_dot), &device(&v_dot)],
            args,
        );
        let host_tangent = host_attention::attention_push([&q, &k, &v], [&q_dot, &k_dot, &v_dot], args);
        assert_close(&tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
        // The dual form carries the same tangent.
        let dual =
            |x: &Rows<f64, Heap>, t: &Rows<f64, Heap>| CudaDual { value: device(x), tangent: device(t) };
        let pushed =
            dual(&q, &q_dot).attention(&dual(&k, &k_dot), &dual(&v, &v_dot), Heads::<2>, Tokens::<4>, mask);
        assert_close(&pushed.tangent.to_vec(), host_tangent.as_slice(), F64_TOL);
    }
    // The traced GPU attention passes the adjoint check, all three operands traced.
    let operands = (device(&q), device(&k), device(&v));
    type Traced = (Var<Rows<f64, Cuda>>, Var<Rows<f64, Cuda>>, Var<Rows<f64, Cuda>>);
    let attend = |(q, k, v): Traced| q.attention(&k, &v, Heads::<3>, Tokens::<2>, Mask::Causal);
    if let Err(error) = check_vjp(attend, &operands, CheckOptions::f64()) {
        panic!("attention: {error}");
    }
    // The block's loss and gradient on the GPU are the host's.
    let classes = [0, 2, 1, 1, 0, 2, 2, 1];
    let (host_loss, host_gradient) = loss_and_gradient(&host, &q, &classes);
    let (loss, gradient) = loss_and_gradient(&host.to_device(), &device(&q), &classes);
    assert_close(&[loss], &[host_loss], F64_TOL);
    let (attention, host_attention) = (&gradient.0.1, &host_gradient.0.1);
    let maps = [
        (&attention.query, &host_attention.query),
        (&attention.key, &host_attention.key),
        (&attention.value, &host_attention.value),
        (&attention.output, &host_attention.output),
    ];
    for (device_map, host_map) in maps {
        assert_close(&device_map.weight.to_vec(), host_map.weight.as_slice(), 1e-10);
        assert_close(&device_map.bias.to_vec(), host_map.bias.as_slice(), 1e-10);
    }
    assert_close(&gradient.0.0.weight.to_vec(), host_gradient.0.0.weight.as_slice(), 1e-10);
    assert_close(&gradient.2.bias.to_vec(), host_gradient.2.bias.as_slice(), 1e-10);
}

#[test]
fn the_attention_layer_over_padded_sequences_and_to_a_memory_gives_the_hosts_derivatives_on_the_gpu() {
    use fluxion::autodiff::{CudaDual, Lift, jvp};
    use fluxion::nn::layer::{AttentionModule, MultiHeadAttention};
    use fluxion::nn::prelude::{Mask, Tokens};
    type Layer<K> = MultiHeadAttention<f64, 6, 2, 4, K>;
    type Traced<K> = (<Layer<K> as Trace>::Traced, Var<AttentionRows<K>>, Var<AttentionRows<K>>);
    const LENGTHS: [usize; 3] = [2, 4, 1];
    const KEY_LENGTHS: [usize; 3] = [5, 1, 3];
    // Sequences of 4 tokens attending among themselves (2, 4 and 1 real), then to a
    // memory of 5 tokens (5, 1 and 3 real).
    macro_rules! loss {
        ($m:expr, $x:expr, $memory:expr) => {{
            let attended = $m.forward_padded($x, &LENGTHS);
            $m.forward_to(&attended, $memory, Tokens::<5>, Some(&KEY_LENGTHS)).tanh().sum()
        }};
    }
    let layer: Layer<Heap> = MultiHeadAttention::new(Mask::Causal, 104);
    let (x, memory) = (attention_rows(12, 105), attention_rows(15, 106));
    let Some(_gpu) = gpu() else { return };
    let (host_value, host_gradient) = value_and_grad(
        |(m, x, memory): Traced<Heap>| loss!(m, &x, &memory),
        &(layer.clone(), x.clone(), memory.clone()),
    );
    let on_device = (layer.to_device(), x.to_device(), memory.to_device());
    let (value, gradient) = value_and_grad(|(m, x, memory): Traced<Cuda>| loss!(m, &x, &memory), &on_device);
    assert_close(&[value], &[host_value], F64_TOL);
    assert_close(&gradient.1.to_vec(), host_gradient.1.as_slice(), F64_TOL);
    assert_close(&gradient.2.to_vec(), host_gradient.2.as_slice(), F64_TOL);
    for (device_map, host_map) in
        [(&gradient.0.query, &host_gradient.0.query), (&gradient.0.key, &host_gradient.0.key)]
    {
        assert_close(&device_map.weight.to_vec(), host_map.weight.as_slice(), F64_TOL);
    }
    // Forward mode through the lifted layer on the GPU, in the direction of the
    // layer's own gradient: ⟨g, g⟩.
    let (x_dual, memory_dual) =
        (CudaDual::constant(on_device.1.clone()), CudaDual::constant(on_device.2.clone()));
    let (_, derivative) =
        jvp(|m: <Layer<Cuda> as Lift>::Lifted| loss!(m, &x_dual, &memory_dual), &on_device.0, &gradient.0);
    let mut squared = 0.0;
    host_gradient.0.for_each_real(&mut |g| squared += g * g);
    assert_close(&[derivative], &[squared], 1e-10);
}
