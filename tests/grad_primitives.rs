//! Every primitive of `Var` against finite differences (`check_vjp`: the full
//! Jacobian, real and imaginary parts perturbed separately, plus the adjoint identity
//! on random directions), in f64, Complex64 and f32, at several static inline, static
//! heap, dynamic and mixed shapes.
//!
//! Inputs stay away from non-differentiable points: relu, abs and max see no zeros or
//! ties; ln, sqrt and powf see positive reals or complex numbers in the right half
//! plane (away from the branch cut).
//!
//! Besides the checker, a few closed forms under the crate's (PyTorch's) complex
//! convention are asserted exactly: for a real loss L of z = x + iy the gradient is
//! ∂L/∂x + i·∂L/∂y.

mod common_grad;
#[path = "common/gated_square.rs"]
mod gated_square;

use common_grad::{
    assert_close, assert_close_slices, complex_right_half_plane, complex_values, mixed_values, ok,
    positive_values, static_tensor, to_f32,
};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Var, grad};
use fluxion::ops::elementwise::{FusedFunction, fused_partials};
use fluxion::prelude::*;
use gated_square::GatedSquare;

type C64 = Complex64;
type V3 = Vector<f64, 3>;
type M23 = Matrix<f64, 2, 3>;
type M32 = Matrix<f64, 3, 2>;
type T223 = Tensor3<f64, 2, 2, 3>;
type DynBatch<T> = Tensor<T, (Dyn, Dyn, Dyn), Heap>;
/// Rows of any number, 3 columns: a mixed static/dynamic shape.
type Rows3<T> = Tensor<T, (Dyn, Const<3>), Heap>;

fn f64_opts() -> CheckOptions {
    CheckOptions::f64()
}

/// Smooth values in [−1, 1], for products where only linearity matters.
fn wave(n: usize) -> Vec<f64> {
    (0..n).map(|i| (0.7 * i as f64 + 0.3).sin()).collect()
}

fn complex_wave(n: usize) -> Vec<C64> {
    (0..n).map(|i| C64::new((0.7 * i as f64 + 0.3).sin(), (0.45 * i as f64 - 0.2).cos())).collect()
}

fn dmatrix<T: Copy + 'static>(rows: usize, cols: usize, values: &[T]) -> DMatrix<T> {
    Tensor::from_shape_vec((Dyn(rows), Dyn(cols)), values[..rows * cols].to_vec()).unwrap()
}

fn dvector<T: Copy + 'static>(len: usize, values: &[T]) -> DVector<T> {
    Tensor::from_shape_vec((Dyn(len),), values[..len].to_vec()).unwrap()
}

fn dbatch<T: Copy + 'static>((b, m, n): (usize, usize, usize), values: &[T]) -> DynBatch<T> {
    Tensor::from_shape_vec((Dyn(b), Dyn(m), Dyn(n)), values[..b * m * n].to_vec()).unwrap()
}

fn rows3<T: Copy + 'static>(rows: usize, values: &[T]) -> Rows3<T> {
    Tensor::from_shape_vec((Dyn(rows), Const::<3>), values[..rows * 3].to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------
// Generic suites: every element type, every shape.
// ---------------------------------------------------------------------------------

/// Elementwise maps and scalings. `mixed` may hold any sign (no zeros); `positive`
/// feeds ln, sqrt and powf (positive reals or the right half plane).
fn unary_suite<T, S, K>(label: &str, mixed: &Tensor<T, S, K>, positive: &Tensor<T, S, K>, opts: CheckOptions)
where
    T: Scalar,
    S: Shape,
    K: Storage<T, S> + Storage<T::Real, S>,
{
    let what = |op: &str| format!("{label}: {op}");
    let real = |x: f64| T::Real::from_f64(x);
    ok(&what("exp"), check_vjp(|x: Var<Tensor<T, S, K>>| x.exp(), mixed, opts));
    ok(&what("ln"), check_vjp(|x: Var<Tensor<T, S, K>>| x.ln(), positive, opts));
    ok(&what("sin"), check_vjp(|x: Var<Tensor<T, S, K>>| x.sin(), mixed, opts));
    ok(&what("cos"), check_vjp(|x: Var<Tensor<T, S, K>>| x.cos(), mixed, opts));
    ok(&what("tanh"), check_vjp(|x: Var<Tensor<T, S, K>>| x.tanh(), mixed, opts));
    ok(&what("sqrt"), check_vjp(|x: Var<Tensor<T, S, K>>| x.sqrt(), positive, opts));
    ok(&what("sigmoid"), check_vjp(|x: Var<Tensor<T, S, K>>| x.sigmoid(), mixed, opts));
    ok(&what("powi(3)"), check_vjp(|x: Var<Tensor<T, S, K>>| x.powi(3), mixed, opts));
    ok(&what("powi(-2)"), check_vjp(|x: Var<Tensor<T, S, K>>| x.powi(-2), mixed, opts));
    ok(&what("powi(0)"), check_vjp(|x: Var<Tensor<T, S, K>>| x.powi(0), mixed, opts));
    ok(&what("powf(1.7)"), check_vjp(|x: Var<Tensor<T, S, K>>| x.powf(real(1.7)), positive, opts));
    ok(&what("powf(-0.5)"), check_vjp(|x: Var<Tensor<T, S, K>>| x.powf(real(-0.5)), positive, opts));
    ok(&what("conj"), check_vjp(|x: Var<Tensor<T, S, K>>| x.conj(), mixed, opts));
    ok(&what("abs"), check_vjp(|x: Var<Tensor<T, S, K>>| x.abs(), mixed, opts));
    ok(&what("re"), check_vjp(|x: Var<Tensor<T, S, K>>| x.re(), mixed, opts));
    ok(&what("im"), check_vjp(|x: Var<Tensor<T, S, K>>| x.im(), mixed, opts));
    ok(&what("norm_sqr"), check_vjp(|x: Var<Tensor<T, S, K>>| x.norm_sqr(), mixed, opts));
    ok(&what("neg"), check_vjp(|x: Var<Tensor<T, S, K>>| -&x, mixed, opts));
    let factor = T::from_parts(real(2.0), real(-0.75));
    ok(&what("scale (* factor)"), check_vjp(|x: Var<Tensor<T, S, K>>| &x * factor, mixed, opts));
    ok(&what("scale method"), check_vjp(|x: Var<Tensor<T, S, K>>| x.scale(factor), mixed, opts));
    ok(&what("div by scalar"), check_vjp(|x: Var<Tensor<T, S, K>>| &x / factor, mixed, opts));
    ok(&what("sum"), check_vjp(|x: Var<Tensor<T, S, K>>| x.sum(), mixed, opts));
    ok(&what("mean"), check_vjp(|x: Var<Tensor<T, S, K>>| x.mean(), mixed, opts));
    ok(&what("norm"), check_vjp(|x: Var<Tensor<T, S, K>>| x.norm(), mixed, opts));
    ok(
        &what("composite exp(x) ⊙ conj(x) then sum"),
        check_vjp(|x: Var<Tensor<T, S, K>>| x.exp().hadamard(&x.conj()).sum(), mixed, opts),
    );
}

/// Binary operations between two tensors of one shape (both cotangents checked), and
/// scaling by a differentiated scalar.
fn binary_suite<T, S, K>(label: &str, a: &Tensor<T, S, K>, b: &Tensor<T, S, K>, opts: CheckOptions)
where
    T: Scalar,
    S: Shape,
    K: Storage<T, S>,
{
    type Pair<T, S, K> = (Var<Tensor<T, S, K>>, Var<Tensor<T, S, K>>);
    let what = |op: &str| format!("{label}: {op}");
    let ab = (a.clone(), b.clone());
    ok(&what("add"), check_vjp(|(a, b): Pair<T, S, K>| &a + &b, &ab, opts));
    ok(&what("add (owned)"), check_vjp(|(a, b): Pair<T, S, K>| a + b, &ab, opts));
    ok(&what("add method"), check_vjp(|(a, b): Pair<T, S, K>| a.add(&b), &ab, opts));
    ok(&what("sub"), check_vjp(|(a, b): Pair<T, S, K>| &a - &b, &ab, opts));
    ok(&what("sub (owned)"), check_vjp(|(a, b): Pair<T, S, K>| a - b, &ab, opts));
    ok(&what("hadamard"), check_vjp(|(a, b): Pair<T, S, K>| a.hadamard(&b), &ab, opts));
    ok(&what("dotu"), check_vjp(|(a, b): Pair<T, S, K>| a.dotu(&b), &ab, opts));
    ok(&what("inner"), check_vjp(|(a, b): Pair<T, S, K>| a.inner(&b), &ab, opts));
    ok(&what("inner with itself"), check_vjp(|a: Var<Tensor<T, S, K>>| a.inner(&a), a, opts));
    ok(&what("hadamard with itself"), check_vjp(|a: Var<Tensor<T, S, K>>| a.hadamard(&a), a, opts));
    let s = b.as_slice()[0] + T::one();
    ok(
        &what("scale_by"),
        check_vjp(|(x, s): (Var<Tensor<T, S, K>>, Var<T>)| x.scale_by(&s), &(a.clone(), s), opts),
    );
}

/// Real-only operations on any shape: relu, dot, max.
fn real_suite<T, S, K>(label: &str, a: &Tensor<T, S, K>, b: &Tensor<T, S, K>, opts: CheckOptions)
where
    T: RealScalar,
    S: Shape,
    K: Storage<T, S>,
{
    let what = |op: &str| format!("{label}: {op}");
    ok(&what("relu"), check_vjp(|x: Var<Tensor<T, S, K>>| x.relu(), a, opts));
    ok(&what("max"), check_vjp(|x: Var<Tensor<T, S, K>>| x.max(), a, opts));
    ok(
        &what("dot"),
        check_vjp(
            |(a, b): (Var<Tensor<T, S, K>>, Var<Tensor<T, S, K>>)| a.dot(&b),
            &(a.clone(), b.clone()),
            opts,
        ),
    );
    ok(&what("dot with itself"), check_vjp(|a: Var<Tensor<T, S, K>>| a.dot(&a), a, opts));
}

/// Scalar `Var<T>` operations.
fn scalar_suite<T: Scalar>(label: &str, x: T, y: T, positive: T, opts: CheckOptions) {
    let what = |op: &str| format!("{label}: {op}");
    let real = |x: f64| T::Real::from_f64(x);
    let xy = (x, y);
    ok(&what("a + b"), check_vjp(|(a, b): (Var<T>, Var<T>)| &a + &b, &xy, opts));
    ok(&what("a - b"), check_vjp(|(a, b): (Var<T>, Var<T>)| &a - &b, &xy, opts));
    ok(&what("a * b"), check_vjp(|(a, b): (Var<T>, Var<T>)| &a * &b, &xy, opts));
    ok(&what("a / b"), check_vjp(|(a, b): (Var<T>, Var<T>)| &a / &b, &xy, opts));
    ok(&what("a + b (owned)"), check_vjp(|(a, b): (Var<T>, Var<T>)| a + b, &xy, opts));
    ok(&what("a - b (owned)"), check_vjp(|(a, b): (Var<T>, Var<T>)| a - b, &xy, opts));
    ok(&what("a * b (owned)"), check_vjp(|(a, b): (Var<T>, Var<T>)| a * b, &xy, opts));
    ok(&what("a / b (owned)"), check_vjp(|(a, b): (Var<T>, Var<T>)| a / b, &xy, opts));
    ok(&what("a * a"), check_vjp(|a: Var<T>| &a * &a, &x, opts));
    ok(&what("a / a²"), check_vjp(|a: Var<T>| &a / &(&a * &a), &x, opts));
    ok(&what("-a"), check_vjp(|a: Var<T>| -&a, &x, opts));
    let c = T::from_parts(real(1.5), real(0.5));
    ok(&what("a * constant"), check_vjp(|a: Var<T>| &a * c, &x, opts));
    ok(&what("a + constant"), check_vjp(|a: Var<T>| &a + c, &x, opts));
    ok(&what("exp"), check_vjp(|a: Var<T>| a.exp(), &x, opts));
    ok(&what("ln"), check_vjp(|a: Var<T>| a.ln(), &positive, opts));
    ok(&what("sin"), check_vjp(|a: Var<T>| a.sin(), &x, opts));
    ok(&what("cos"), check_vjp(|a: Var<T>| a.cos(), &x, opts));
    ok(&what("tanh"), check_vjp(|a: Var<T>| a.tanh(), &x, opts));
    ok(&what("sqrt"), check_vjp(|a: Var<T>| a.sqrt(), &positive, opts));
    ok(&what("sigmoid"), check_vjp(|a: Var<T>| a.sigmoid(), &x, opts));
    ok(&what("powi(3)"), check_vjp(|a: Var<T>| a.powi(3), &x, opts));
    ok(&what("powi(-3)"), check_vjp(|a: Var<T>| a.powi(-3), &x, opts));
    ok(&what("powf(2.5)"), check_vjp(|a: Var<T>| a.powf(real(2.5)), &positive, opts));
    ok(&what("powf(-1.3)"), check_vjp(|a: Var<T>| a.powf(real(-1.3)), &positive, opts));
    ok(&what("abs"), check_vjp(|a: Var<T>| a.abs(), &x, opts));
    ok(&what("conj"), check_vjp(|a: Var<T>| a.conj(), &x, opts));
    ok(&what("re"), check_vjp(|a: Var<T>| a.re(), &x, opts));
    ok(&what("im"), check_vjp(|a: Var<T>| a.im(), &x, opts));
    ok(&what("norm_sqr"), check_vjp(|a: Var<T>| a.norm_sqr(), &x, opts));
}

// ---------------------------------------------------------------------------------
// Axis operations, for concrete shapes (one call per axis).
// ---------------------------------------------------------------------------------

/// sum_axis and mean_axis along each listed axis.
macro_rules! axis_suite {
    ($label:expr, $x:expr, $X:ty, $opts:expr; $($axis:literal),+) => {$(
        ok(
            &format!("{}: sum_axis {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.sum_axis(Axis::<$axis>), &$x, $opts),
        );
        ok(
            &format!("{}: mean_axis {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.mean_axis(Axis::<$axis>), &$x, $opts),
        );
    )+};
}

/// max_axis, softmax, log_softmax and logsumexp along each listed axis (real data).
macro_rules! real_axis_suite {
    ($label:expr, $x:expr, $X:ty, $opts:expr; $($axis:literal),+) => {$(
        ok(
            &format!("{}: max_axis {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.max_axis(Axis::<$axis>), &$x, $opts),
        );
        ok(
            &format!("{}: softmax {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.softmax(Axis::<$axis>), &$x, $opts),
        );
        ok(
            &format!("{}: log_softmax {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.log_softmax(Axis::<$axis>), &$x, $opts),
        );
        ok(
            &format!("{}: logsumexp {}", $label, $axis),
            check_vjp(|x: Var<$X>| x.logsumexp(Axis::<$axis>), &$x, $opts),
        );
    )+};
}

/// Runs a suite on two tensors of the static type `$X` built from value slices.
macro_rules! on_static {
    ($suite:ident, $label:expr, $X:ty, $first:expr, $second:expr, $opts:expr) => {{
        let (first, second): ($X, $X) = (static_tensor($first), static_tensor($second));
        $suite($label, &first, &second, $opts);
    }};
}

// ---------------------------------------------------------------------------------
// f64
// ---------------------------------------------------------------------------------

#[test]
fn f64_elementwise_at_every_shape() {
    let o = f64_opts();
    let (m, p) = (mixed_values(24), positive_values(24));
    on_static!(unary_suite, "Vector<3>", V3, &m[..3], &p[..3], o);
    on_static!(unary_suite, "Matrix<2,3>", M23, &m[..6], &p[..6], o);
    on_static!(unary_suite, "Tensor3<2,2,3>", T223, &m[..12], &p[..12], o);
    type T4 = Tensor4<f64, 2, 1, 2, 3>;
    on_static!(unary_suite, "Tensor4<2,1,2,3>", T4, &m[..12], &p[..12], o);
    on_static!(unary_suite, "Tensor0", Tensor0<f64>, &m[..1], &p[..1], o);
    type M23Heap = Matrix<f64, 2, 3, Heap>;
    on_static!(unary_suite, "Matrix<2,3,Heap>", M23Heap, &m[..6], &p[..6], o);
    unary_suite("DVector(5)", &dvector(5, &m), &dvector(5, &p), o);
    unary_suite("DMatrix(2,3)", &dmatrix(2, 3, &m), &dmatrix(2, 3, &p), o);
    unary_suite("DMatrix(3,1)", &dmatrix(3, 1, &m), &dmatrix(3, 1, &p), o);
    unary_suite("(Dyn, 3)", &rows3(2, &m), &rows3(2, &p), o);
    unary_suite("DynBatch(2,1,3)", &dbatch((2, 1, 3), &m), &dbatch((2, 1, 3), &p), o);
}

#[test]
fn f64_binary_at_every_shape() {
    let o = f64_opts();
    let (a, b) = (mixed_values(24), positive_values(24));
    let b: Vec<f64> = b.iter().map(|x| x - 1.1).collect();
    on_static!(binary_suite, "Vector<3>", V3, &a[..3], &b[..3], o);
    on_static!(binary_suite, "Matrix<2,3>", M23, &a[..6], &b[..6], o);
    on_static!(binary_suite, "Tensor3<2,2,3>", T223, &a[..12], &b[..12], o);
    binary_suite("DVector(4)", &dvector(4, &a), &dvector(4, &b), o);
    binary_suite("DMatrix(2,3)", &dmatrix(2, 3, &a), &dmatrix(2, 3, &b), o);
    binary_suite("(Dyn, 3)", &rows3(3, &a), &rows3(3, &b), o);
}

#[test]
fn f64_real_only_at_every_shape() {
    let o = f64_opts();
    let (a, b) = (mixed_values(24), positive_values(24));
    on_static!(real_suite, "Vector<3>", V3, &a[..3], &b[..3], o);
    on_static!(real_suite, "Matrix<2,3>", M23, &a[..6], &b[..6], o);
    on_static!(real_suite, "Tensor3<2,2,3>", T223, &a[..12], &b[..12], o);
    real_suite("DVector(5)", &dvector(5, &a), &dvector(5, &b), o);
    real_suite("DMatrix(2,3)", &dmatrix(2, 3, &a), &dmatrix(2, 3, &b), o);
    real_suite("(Dyn, 3)", &rows3(2, &a), &rows3(2, &b), o);
}

#[test]
fn f64_scalars() {
    let o = f64_opts();
    scalar_suite::<f64>("f64 positive", 0.7, 1.9, 1.3, o);
    scalar_suite::<f64>("f64 negative", -0.6, -1.4, 0.45, o);
}

#[test]
fn f64_axis_reductions_and_softmax() {
    let o = f64_opts();
    let m = mixed_values(24);
    let v: V3 = static_tensor(&m[..3]);
    axis_suite!("Vector<3>", v, V3, o; 0);
    real_axis_suite!("Vector<3>", v, V3, o; 0);
    let x: M23 = static_tensor(&m[..6]);
    axis_suite!("Matrix<2,3>", x, M23, o; 0, 1);
    real_axis_suite!("Matrix<2,3>", x, M23, o; 0, 1);
    let t: T223 = static_tensor(&m[..12]);
    axis_suite!("Tensor3<2,2,3>", t, T223, o; 0, 1, 2);
    real_axis_suite!("Tensor3<2,2,3>", t, T223, o; 0, 1, 2);
    type T4 = Tensor4<f64, 2, 2, 1, 3>;
    let t4: T4 = static_tensor(&m[..12]);
    axis_suite!("Tensor4<2,2,1,3>", t4, T4, o; 0, 1, 2, 3);
    real_axis_suite!("Tensor4<2,2,1,3>", t4, T4, o; 0, 1, 2, 3);
    let d = dmatrix(3, 4, &m);
    axis_suite!("DMatrix(3,4)", d, DMatrix<f64>, o; 0, 1);
    real_axis_suite!("DMatrix(3,4)", d, DMatrix<f64>, o; 0, 1);
    let dv = dvector(4, &m);
    axis_suite!("DVector(4)", dv, DVector<f64>, o; 0);
    real_axis_suite!("DVector(4)", dv, DVector<f64>, o; 0);
    let db = dbatch((2, 3, 2), &m);
    axis_suite!("DynBatch(2,3,2)", db, DynBatch<f64>, o; 0, 1, 2);
    real_axis_suite!("DynBatch(2,3,2)", db, DynBatch<f64>, o; 0, 1, 2);
    let r = rows3(3, &m);
    axis_suite!("(Dyn, 3)", r, Rows3<f64>, o; 0, 1);
    real_axis_suite!("(Dyn, 3)", r, Rows3<f64>, o; 0, 1);
}

#[test]
fn f64_softmax_at_large_inputs() {
    // Stable at inputs of 1000: the pullback must stay finite and correct.
    let x: M23 = Matrix::from_array([[1000.0, 1000.5, 999.0], [-1000.0, -1001.0, -999.2]]);
    real_axis_suite!("Matrix<2,3> near ±1000", x, M23, f64_opts(); 0, 1);
}

#[test]
fn f64_matmul_all_forms() {
    let o = f64_opts();
    let a = wave(600);
    let b: Vec<f64> = (0..600).map(|i| (1.3 * i as f64 - 0.4).cos()).collect();
    let mm: (M23, M32) = (static_tensor(&a[..6]), static_tensor(&b[..6]));
    ok("M23 × M32", check_vjp(|(a, b): (Var<M23>, Var<M32>)| a.matmul(&b), &mm, o));
    let mv: (M23, V3) = (static_tensor(&a[..6]), static_tensor(&b[..3]));
    ok("M23 × V3", check_vjp(|(a, b): (Var<M23>, Var<V3>)| a.matmul(&b), &mv, o));
    type B232 = Tensor3<f64, 2, 3, 2>;
    let batched: (T223, B232) = (static_tensor(&a[..12]), static_tensor(&b[..12]));
    ok("batched 2×(2×3) × 2×(3×2)", check_vjp(|(a, b): (Var<T223>, Var<B232>)| a.matmul(&b), &batched, o));
    type Heap23 = Matrix<f64, 2, 3, Heap>;
    type Heap34 = Matrix<f64, 3, 4, Heap>;
    let heap: (Heap23, Heap34) = (static_tensor(&a[..6]), static_tensor(&b[..12]));
    ok("static heap 2×3 × 3×4", check_vjp(|(a, b): (Var<Heap23>, Var<Heap34>)| a.matmul(&b), &heap, o));
    let dd = (dmatrix(2, 3, &a), dmatrix(3, 4, &b));
    ok("DMatrix 2×3 × 3×4", check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.matmul(&b), &dd, o));
    let dv = (dmatrix(3, 2, &a), dvector(2, &b));
    ok(
        "DMatrix 3×2 × DVector 2",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DVector<f64>>)| a.matmul(&b), &dv, o),
    );
    let db = (dbatch((3, 2, 2), &a), dbatch((3, 2, 3), &b));
    ok("dynamic batched", check_vjp(|(a, b): (Var<DynBatch<f64>>, Var<DynBatch<f64>>)| a.matmul(&b), &db, o));
    // A batch by one matrix: B̄ sums over the batch.
    let by_one: (T223, M32) = (static_tensor(&a[..12]), static_tensor(&b[..6]));
    ok("2×(2×3) × 3×2", check_vjp(|(a, b): (Var<T223>, Var<M32>)| a.matmul(&b), &by_one, o));
    let dyn_by_one = (dbatch((3, 2, 2), &a), dmatrix(2, 3, &b));
    ok(
        "dynamic batch × DMatrix",
        check_vjp(|(a, b): (Var<DynBatch<f64>>, Var<DMatrix<f64>>)| a.matmul(&b), &dyn_by_one, o),
    );
    type R3x2 = Tensor<f64, (Const<3>, Const<2>), Heap>;
    let mixed: (Rows3<f64>, R3x2) = (rows3(4, &a), static_tensor(&b[..6]));
    ok("(Dyn,3) × (3,2)", check_vjp(|(a, b): (Var<Rows3<f64>>, Var<R3x2>)| a.matmul(&b), &mixed, o));
    // Above SMALL_PRODUCT (16³ multiply-adds): the `gemm` crate's kernel, Jacobian in full.
    let full = CheckOptions { max_full_entries: 200_000, ..o };
    let large = (dmatrix(17, 16, &a), dmatrix(16, 16, &b[100..]));
    ok(
        "gemm DMatrix 17×16 × 16×16",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.matmul(&b), &large, full),
    );
    let large_mv = (dmatrix(80, 60, &wave(4800)), dvector(60, &b));
    ok(
        "gemm DMatrix 80×60 × DVector 60",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DVector<f64>>)| a.matmul(&b), &large_mv, o),
    );
    let large_batch = (dbatch((2, 17, 16), &wave(544)), dbatch((2, 16, 16), &b));
    ok(
        "gemm dynamic batched",
        check_vjp(|(a, b): (Var<DynBatch<f64>>, Var<DynBatch<f64>>)| a.matmul(&b), &large_batch, o),
    );
    // One operand constant: only the other receives a cotangent.
    let a_const: M23 = static_tensor(&a[..6]);
    ok(
        "constant M23 × differentiated M32",
        check_vjp(|b: Var<M32>| Var::constant(a_const).matmul(&b), &static_tensor(&b[..6]), o),
    );
}

#[test]
fn f64_matmul_transposed_and_transposed_matmul() {
    let o = f64_opts();
    let a = wave(600);
    let b: Vec<f64> = (0..600).map(|i| (1.3 * i as f64 - 0.4).cos()).collect();
    type M43 = Matrix<f64, 4, 3>;
    type M24 = Matrix<f64, 2, 4>;
    // A·Bᵀ: [2, 3]×[4, 3]; Aᵀ·B: [2, 3]×[2, 4].
    let ab: (M23, M43) = (static_tensor(&a[..6]), static_tensor(&b[..12]));
    ok("M23 · M43ᵀ", check_vjp(|(a, b): (Var<M23>, Var<M43>)| a.matmul_transposed(&b), &ab, o));
    let ab: (M23, M24) = (static_tensor(&a[..6]), static_tensor(&b[..8]));
    ok("M23ᵀ · M24", check_vjp(|(a, b): (Var<M23>, Var<M24>)| a.transposed_matmul(&b), &ab, o));
    type Heap23 = Matrix<f64, 2, 3, Heap>;
    type Heap43 = Matrix<f64, 4, 3, Heap>;
    let heap: (Heap23, Heap43) = (static_tensor(&a[..6]), static_tensor(&b[..12]));
    ok(
        "heap 2×3 · (4×3)ᵀ",
        check_vjp(|(a, b): (Var<Heap23>, Var<Heap43>)| a.matmul_transposed(&b), &heap, o),
    );
    let dd = (dmatrix(2, 3, &a), dmatrix(5, 3, &b));
    ok(
        "DMatrix 2×3 · (5×3)ᵀ",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.matmul_transposed(&b), &dd, o),
    );
    let dd = (dmatrix(3, 2, &a), dmatrix(3, 5, &b));
    ok(
        "DMatrix (3×2)ᵀ · 3×5",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.transposed_matmul(&b), &dd, o),
    );
    // A `Linear` layer's form: rows of a run-time count through static [out, in] weights.
    type W23 = Tensor<f64, (Const<2>, Const<3>), Heap>;
    let layer: (Rows3<f64>, W23) = (rows3(4, &a), static_tensor(&b[..6]));
    ok(
        "(Dyn,3) · (2,3)ᵀ",
        check_vjp(|(x, w): (Var<Rows3<f64>>, Var<W23>)| x.matmul_transposed(&w), &layer, o),
    );
    type R3x2 = Tensor<f64, (Dyn, Const<2>), Heap>;
    let r = Tensor::from_shape_vec((Dyn(4), Const::<2>), b[..8].to_vec()).unwrap();
    let weight_form: (Rows3<f64>, R3x2) = (rows3(4, &a), r);
    ok(
        "(Dyn,3)ᵀ · (Dyn,2)",
        check_vjp(|(x, y): (Var<Rows3<f64>>, Var<R3x2>)| x.transposed_matmul(&y), &weight_form, o),
    );
    // Above SMALL_PRODUCT (16³ multiply-adds): the `gemm` crate's kernel, Jacobian in full.
    let full = CheckOptions { max_full_entries: 200_000, ..o };
    let large = (dmatrix(17, 16, &a), dmatrix(16, 16, &b[100..]));
    ok(
        "gemm 17×16 · (16×16)ᵀ",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.matmul_transposed(&b), &large, full),
    );
    let large = (dmatrix(16, 17, &a), dmatrix(16, 16, &b[100..]));
    ok(
        "gemm (16×17)ᵀ · 16×16",
        check_vjp(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.transposed_matmul(&b), &large, full),
    );
    // One operand constant (a plain tensor): only the other receives a cotangent.
    let w: M43 = static_tensor(&b[..12]);
    ok("M23 · constant M43ᵀ", check_vjp(|x: Var<M23>| x.matmul_transposed(&w), &static_tensor(&a[..6]), o));
    let x: M23 = static_tensor(&a[..6]);
    ok(
        "constant M23ᵀ · M24",
        check_vjp(|y: Var<M24>| Var::constant(x).transposed_matmul(&y), &static_tensor(&b[..8]), o),
    );
}

/// Second order: Hessian-vector products through both products (a reverse pass over
/// duals) equal those through the copying forms.
#[test]
fn transposed_products_inside_hessian_vector_products() {
    type D = Dual<f64>;
    type M43 = Matrix<f64, 4, 3>;
    let (a, b): (M23, M43) = (static_tensor(&wave(6)), static_tensor(&mixed_values(12)));
    let v: (M23, M43) = (static_tensor(&mixed_values(6)), static_tensor(&wave(12)));
    let square = |y: Var<Matrix<D, 2, 4>>| y.hadamard(&y).sum();
    let (ha, hb) = hvp(
        |(a, b): (Var<Matrix<D, 2, 3>>, Var<Matrix<D, 4, 3>>)| square(a.matmul_transposed(&b)),
        &(a, b),
        &v,
    );
    let (ca, cb) = hvp(
        |(a, b): (Var<Matrix<D, 2, 3>>, Var<Matrix<D, 4, 3>>)| square(a.matmul(&b.transpose())),
        &(a, b),
        &v,
    );
    assert_close_slices(ha.as_slice(), ca.as_slice(), 1e-13);
    assert_close_slices(hb.as_slice(), cb.as_slice(), 1e-13);
    assert!(
        ha.iter().chain(hb.iter()).any(|&h| h.abs() > 0.1),
        "a vanishing Hessian-vector product proves nothing"
    );

    let (a, b): (M32, M43) = (static_tensor(&wave(6)), static_tensor(&mixed_values(12)));
    let c: M32 = static_tensor(&mixed_values(6));
    let v: (M32, M43) = (c, static_tensor(&wave(12)));
    let b2: Matrix<f64, 3, 4> = b.transpose();
    let v2 = (v.0, v.1.transpose());
    let square = |y: Var<Matrix<D, 2, 4>>| y.hadamard(&y).sum();
    let (ha, hb) = hvp(
        |(a, b): (Var<Matrix<D, 3, 2>>, Var<Matrix<D, 3, 4>>)| square(a.transposed_matmul(&b)),
        &(a, b2),
        &v2,
    );
    let (ca, cb) = hvp(
        |(a, b): (Var<Matrix<D, 3, 2>>, Var<Matrix<D, 3, 4>>)| square(a.transpose().matmul(&b)),
        &(a, b2),
        &v2,
    );
    assert_close_slices(ha.as_slice(), ca.as_slice(), 1e-13);
    assert_close_slices(hb.as_slice(), cb.as_slice(), 1e-13);
}

#[test]
fn f64_outer() {
    let o = f64_opts();
    let (a, b) = (mixed_values(8), positive_values(8));
    let ab: (V3, Vector<f64, 2>) = (static_tensor(&a[..3]), static_tensor(&b[..2]));
    ok("V3 ⊗ V2", check_vjp(|(a, b): (Var<V3>, Var<Vector<f64, 2>>)| a.outer(&b), &ab, o));
    let d = (dvector(4, &a), dvector(3, &b));
    ok(
        "DVector 4 ⊗ DVector 3",
        check_vjp(|(a, b): (Var<DVector<f64>>, Var<DVector<f64>>)| a.outer(&b), &d, o),
    );
    ok("a ⊗ a", check_vjp(|a: Var<V3>| a.outer(&a), &ab.0, o));
}

#[test]
fn f64_layout() {
    let o = f64_opts();
    let m = mixed_values(24);
    let x: M23 = static_tensor(&m[..6]);
    let t: T223 = static_tensor(&m[..12]);
    ok("transpose M23", check_vjp(|x: Var<M23>| x.transpose(), &x, o));
    ok("row 1 of M23", check_vjp(|x: Var<M23>| x.row(1), &x, o));
    ok("column 2 of M23", check_vjp(|x: Var<M23>| x.column(2), &x, o));
    ok("row 0 of DMatrix", check_vjp(|x: Var<DMatrix<f64>>| x.row(0), &dmatrix(2, 3, &m), o));
    ok("column 1 of (Dyn,3)", check_vjp(|x: Var<Rows3<f64>>| x.column(1), &rows3(2, &m), o));
    ok("transpose DMatrix", check_vjp(|x: Var<DMatrix<f64>>| x.transpose(), &dmatrix(2, 3, &m), o));
    ok("transpose (Dyn,3)", check_vjp(|x: Var<Rows3<f64>>| x.transpose(), &rows3(2, &m), o));
    ok("reshape M23 → M32", check_vjp(|x: Var<M23>| x.reshape::<(Const<3>, Const<2>)>(), &x, o));
    ok("reshape T223 → 4×3", check_vjp(|x: Var<T223>| x.reshape::<(Const<4>, Const<3>)>(), &t, o));
    ok(
        "reshape V3 → 1×3×1",
        check_vjp(|x: Var<V3>| x.reshape::<(Const<1>, Const<3>, Const<1>)>(), &static_tensor(&m[..3]), o),
    );
    type Heap23 = Matrix<f64, 2, 3, Heap>;
    ok(
        "reshape heap 2×3 → 3×2",
        check_vjp(|x: Var<Heap23>| x.reshape::<(Const<3>, Const<2>)>(), &static_tensor(&m[..6]), o),
    );
    ok("flatten M23", check_vjp(|x: Var<M23>| x.flatten::<6>(), &x, o));
    ok("flatten T223", check_vjp(|x: Var<T223>| x.flatten::<12>(), &t, o));
    let v: V3 = static_tensor(&m[..3]);
    ok("broadcast V3 → 4×3", check_vjp(|x: Var<V3>| x.broadcast::<(Const<4>, Const<3>)>(), &v, o));
    ok(
        "broadcast V3 → 2×2×3",
        check_vjp(|x: Var<V3>| x.broadcast::<(Const<2>, Const<2>, Const<3>)>(), &v, o),
    );
    ok(
        "broadcast M23 → 2×2×3",
        check_vjp(|x: Var<M23>| x.broadcast::<(Const<2>, Const<2>, Const<3>)>(), &x, o),
    );
    ok(
        "broadcast Tensor0 → 3",
        check_vjp(|x: Var<Tensor0<f64>>| x.broadcast::<(Const<3>,)>(), &static_tensor(&m[..1]), o),
    );
    type Heap3 = Vector<f64, 3, Heap>;
    ok(
        "broadcast heap V3 → 2×3",
        check_vjp(|x: Var<Heap3>| x.broadcast::<(Const<2>, Const<3>)>(), &static_tensor(&m[..3]), o),
    );
    for (name, result) in [
        (
            "broadcast_axis 0: M23 → 4×2×3",
            check_vjp(|x: Var<M23>| x.broadcast_axis::<0, (Const<4>, Const<2>, Const<3>)>(Axis), &x, o),
        ),
        (
            "broadcast_axis 1: M23 → 2×4×3",
            check_vjp(|x: Var<M23>| x.broadcast_axis::<1, (Const<2>, Const<4>, Const<3>)>(Axis), &x, o),
        ),
        (
            "broadcast_axis 2: M23 → 2×3×4",
            check_vjp(|x: Var<M23>| x.broadcast_axis::<2, (Const<2>, Const<3>, Const<4>)>(Axis), &x, o),
        ),
        (
            "broadcast_axis 1: V3 → 3×2",
            check_vjp(|x: Var<V3>| x.broadcast_axis::<1, (Const<3>, Const<2>)>(Axis), &v, o),
        ),
    ] {
        ok(name, result);
    }
    // Forward mode (tensors of duals) gives the reverse-mode directional derivative.
    let w: T223 = t.map(|v| 0.5 - v);
    let dir: M23 = x.map(|v| v * v - 0.3);
    let along = |x: Var<M23>| {
        x.broadcast_axis::<1, (Const<2>, Const<2>, Const<3>)>(Axis).hadamard(&Var::constant(w)).sum()
    };
    let reverse = grad(along, &x);
    let (_, forward) = jvp(
        |x: Tensor<Dual<f64>, (Const<2>, Const<3>), Inline>| {
            x.broadcast_axis::<1, (Const<2>, Const<2>, Const<3>)>(Axis).hadamard(&w.map(Dual::constant)).sum()
        },
        &x,
        &dir,
    );
    assert!((forward - reverse.hadamard(&dir).sum()).abs() < 1e-12, "jvp {forward} against grad·v");
    // A broadcast followed by a reduction: Σ over the copies.
    ok(
        "broadcast then sum_axis 0",
        check_vjp(|x: Var<V3>| x.broadcast::<(Const<4>, Const<3>)>().sum_axis(Axis::<0>), &v, o),
    );
}

#[test]
fn f64_concat_and_narrow() {
    let o = f64_opts();
    let (m, p) = (mixed_values(24), positive_values(24));
    type M13 = Matrix<f64, 1, 3>;
    type M22 = Matrix<f64, 2, 2>;
    let rows: (M23, M13) = (static_tensor(&m[..6]), static_tensor(&p[..3]));
    ok(
        "concat axis 0 (2×3, 1×3)",
        check_vjp(
            |(a, b): (Var<M23>, Var<M13>)| -> Var<Matrix<f64, 3, 3>> { a.concat(Axis::<0>, &b) },
            &rows,
            o,
        ),
    );
    let cols: (M23, M22) = (static_tensor(&m[..6]), static_tensor(&p[..4]));
    ok(
        "concat axis 1 (2×3, 2×2)",
        check_vjp(
            |(a, b): (Var<M23>, Var<M22>)| -> Var<Matrix<f64, 2, 5>> { a.concat(Axis::<1>, &b) },
            &cols,
            o,
        ),
    );
    let vectors: (V3, Vector<f64, 2>) = (static_tensor(&m[..3]), static_tensor(&p[..2]));
    ok(
        "concat vectors",
        check_vjp(
            |(a, b): (Var<V3>, Var<Vector<f64, 2>>)| -> Var<Vector<f64, 5>> { a.concat(Axis::<0>, &b) },
            &vectors,
            o,
        ),
    );
    type T222 = Tensor3<f64, 2, 2, 2>;
    let rank3: (T223, T222) = (static_tensor(&m[..12]), static_tensor(&p[..8]));
    ok(
        "concat rank 3 axis 2",
        check_vjp(
            |(a, b): (Var<T223>, Var<T222>)| -> Var<Tensor3<f64, 2, 2, 5>> { a.concat(Axis::<2>, &b) },
            &rank3,
            o,
        ),
    );
    type T123 = Tensor3<f64, 1, 2, 3>;
    let rank3_axis0: (T223, T123) = (static_tensor(&m[..12]), static_tensor(&p[..6]));
    ok(
        "concat rank 3 axis 0",
        check_vjp(
            |(a, b): (Var<T223>, Var<T123>)| -> Var<Tensor3<f64, 3, 2, 3>> { a.concat(Axis::<0>, &b) },
            &rank3_axis0,
            o,
        ),
    );
    let dyn_rows = (dmatrix(2, 3, &m), dmatrix(1, 3, &p));
    ok(
        "DMatrix concat axis 0",
        check_vjp(
            |(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| -> Var<DMatrix<f64>> { a.concat(Axis::<0>, &b) },
            &dyn_rows,
            o,
        ),
    );
    let dyn_cols = (dmatrix(2, 3, &m), dmatrix(2, 2, &p));
    ok(
        "DMatrix concat axis 1",
        check_vjp(
            |(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| -> Var<DMatrix<f64>> { a.concat(Axis::<1>, &b) },
            &dyn_cols,
            o,
        ),
    );
    let mixed_rows = (rows3(2, &m), rows3(3, &p));
    ok(
        "(Dyn,3) concat axis 0",
        check_vjp(
            |(a, b): (Var<Rows3<f64>>, Var<Rows3<f64>>)| -> Var<Rows3<f64>> { a.concat(Axis::<0>, &b) },
            &mixed_rows,
            o,
        ),
    );
    ok(
        "concat with itself",
        check_vjp(|a: Var<V3>| -> Var<Vector<f64, 6>> { a.concat(Axis::<0>, &a) }, &vectors.0, o),
    );

    let x: M23 = static_tensor(&m[..6]);
    ok("narrow axis 1 [1, 3)", check_vjp(|x: Var<M23>| x.narrow::<1, 1, 2>(), &x, o));
    ok("narrow axis 0 [1, 2)", check_vjp(|x: Var<M23>| x.narrow::<0, 1, 1>(), &x, o));
    ok("narrow whole axis", check_vjp(|x: Var<M23>| x.narrow::<1, 0, 3>(), &x, o));
    let t: T223 = static_tensor(&m[..12]);
    ok("narrow rank 3 axis 2", check_vjp(|x: Var<T223>| x.narrow::<2, 0, 2>(), &t, o));
    ok("narrow rank 3 axis 1", check_vjp(|x: Var<T223>| x.narrow::<1, 1, 1>(), &t, o));
    ok(
        "narrow DMatrix axis 1",
        check_vjp(|x: Var<DMatrix<f64>>| x.narrow::<1, 1, 2>(), &dmatrix(3, 4, &m), o),
    );
    ok(
        "narrow DMatrix axis 0",
        check_vjp(|x: Var<DMatrix<f64>>| x.narrow::<0, 0, 2>(), &dmatrix(3, 4, &m), o),
    );
    ok("narrow DVector", check_vjp(|x: Var<DVector<f64>>| x.narrow::<0, 2, 3>(), &dvector(6, &m), o));
}

#[test]
fn f64_known_gradients() {
    // Σ xᵢ² → 2x; mean → 1/n; max → one-hot at the first maximum.
    let x: M23 = Matrix::from_array([[1.0, -2.0, 3.0], [0.5, 3.0, -1.0]]);
    let g = grad(|x: Var<M23>| x.hadamard(&x).sum(), &x);
    assert_eq!(g.to_array(), [[2.0, -4.0, 6.0], [1.0, 6.0, -2.0]]);
    let g = grad(|x: Var<M23>| x.mean(), &x);
    assert_close_slices(g.as_slice(), &[1.0 / 6.0; 6], 1e-15);
    let g = grad(|x: Var<M23>| x.max(), &x);
    assert_eq!(g.to_array(), [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], "a tie goes to the first maximum");
    let g = grad(|x: Var<M23>| x.max_axis(Axis::<0>).sum(), &x);
    assert_eq!(g.to_array(), [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
    let g = grad(|x: Var<M23>| x.relu().sum(), &x);
    assert_eq!(g.to_array(), [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]);
    // softmax rows sum to 1, so Σ softmax has zero gradient.
    let g = grad(|x: Var<M23>| x.softmax(Axis::<1>).sum(), &x);
    assert_close_slices(g.as_slice(), &[0.0; 6], 1e-14);
    // ∂ logsumexp / ∂x = softmax.
    let g = grad(|x: Var<M23>| x.logsumexp(Axis::<1>).sum(), &x);
    assert_close_slices(g.as_slice(), x.softmax(Axis::<1>).as_slice(), 1e-14);
    // d/dx tanh(x) = 1 − tanh²(x).
    let g = grad(|x: Var<f64>| x.tanh(), &0.4);
    assert_close(g, 1.0 - 0.4f64.tanh().powi(2), 1e-15);
}

// ---------------------------------------------------------------------------------
// Complex64
// ---------------------------------------------------------------------------------

#[test]
fn complex_elementwise_at_every_shape() {
    let o = f64_opts();
    let (z, w) = (complex_values(12), complex_right_half_plane(12));
    type CV3 = Vector<C64, 3>;
    type CM23 = Matrix<C64, 2, 3>;
    type CT223 = Tensor3<C64, 2, 2, 3>;
    on_static!(unary_suite, "C Vector<3>", CV3, &z[..3], &w[..3], o);
    on_static!(unary_suite, "C Matrix<2,3>", CM23, &z[..6], &w[..6], o);
    on_static!(unary_suite, "C Tensor3<2,2,3>", CT223, &z[..12], &w[..12], o);
    type CHeap23 = Matrix<C64, 2, 3, Heap>;
    on_static!(unary_suite, "C Matrix<2,3,Heap>", CHeap23, &z[..6], &w[..6], o);
    unary_suite("C DVector(4)", &dvector(4, &z), &dvector(4, &w), o);
    unary_suite("C DMatrix(2,3)", &dmatrix(2, 3, &z), &dmatrix(2, 3, &w), o);
    unary_suite("C (Dyn, 3)", &rows3(2, &z), &rows3(2, &w), o);
}

#[test]
fn complex_binary_at_every_shape() {
    let o = f64_opts();
    let (a, b) = (complex_values(12), complex_right_half_plane(12));
    type CV3 = Vector<C64, 3>;
    type CM23 = Matrix<C64, 2, 3>;
    type CT223 = Tensor3<C64, 2, 2, 3>;
    on_static!(binary_suite, "C Vector<3>", CV3, &a[..3], &b[..3], o);
    on_static!(binary_suite, "C Matrix<2,3>", CM23, &a[..6], &b[..6], o);
    on_static!(binary_suite, "C Tensor3<2,2,3>", CT223, &a[..12], &b[..12], o);
    binary_suite("C DVector(4)", &dvector(4, &a), &dvector(4, &b), o);
    binary_suite("C DMatrix(2,3)", &dmatrix(2, 3, &a), &dmatrix(2, 3, &b), o);
}

#[test]
fn complex_scalars() {
    let o = f64_opts();
    scalar_suite("Complex64", C64::new(0.7, -0.4), C64::new(-1.1, 0.9), C64::new(1.2, 0.8), o);
    scalar_suite("Complex64 second point", C64::new(-0.3, 1.1), C64::new(0.5, 0.25), C64::new(0.6, -1.4), o);
}

#[test]
fn complex_axis_reductions() {
    let o = f64_opts();
    let z = complex_values(12);
    type CM23 = Matrix<C64, 2, 3>;
    type CT223 = Tensor3<C64, 2, 2, 3>;
    let x: CM23 = static_tensor(&z[..6]);
    axis_suite!("C Matrix<2,3>", x, CM23, o; 0, 1);
    let t: CT223 = static_tensor(&z[..12]);
    axis_suite!("C Tensor3<2,2,3>", t, CT223, o; 0, 1, 2);
    let d = dmatrix(3, 4, &z);
    axis_suite!("C DMatrix(3,4)", d, DMatrix<C64>, o; 0, 1);
}

#[test]
fn complex_matmul_all_forms() {
    let o = f64_opts();
    let (a, b) = (complex_wave(600), complex_values(12));
    let b: Vec<C64> =
        b.iter().cycle().take(600).enumerate().map(|(i, z)| z * (0.1 * i as f64).cos()).collect();
    type CM23 = Matrix<C64, 2, 3>;
    type CM32 = Matrix<C64, 3, 2>;
    type CV3 = Vector<C64, 3>;
    let mm: (CM23, CM32) = (static_tensor(&a[..6]), static_tensor(&b[..6]));
    ok("C M23 × M32", check_vjp(|(a, b): (Var<CM23>, Var<CM32>)| a.matmul(&b), &mm, o));
    let mv: (CM23, CV3) = (static_tensor(&a[..6]), static_tensor(&b[..3]));
    ok("C M23 × V3", check_vjp(|(a, b): (Var<CM23>, Var<CV3>)| a.matmul(&b), &mv, o));
    type CB223 = Tensor3<C64, 2, 2, 3>;
    type CB232 = Tensor3<C64, 2, 3, 2>;
    let batched: (CB223, CB232) = (static_tensor(&a[..12]), static_tensor(&b[..12]));
    ok("C batched", check_vjp(|(a, b): (Var<CB223>, Var<CB232>)| a.matmul(&b), &batched, o));
    let dd = (dmatrix(2, 3, &a), dmatrix(3, 4, &b));
    ok(
        "C DMatrix 2×3 × 3×4",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DMatrix<C64>>)| a.matmul(&b), &dd, o),
    );
    let dv = (dmatrix(3, 2, &a), dvector(2, &b));
    ok(
        "C DMatrix × DVector",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DVector<C64>>)| a.matmul(&b), &dv, o),
    );
    let db = (dbatch((2, 2, 3), &a), dbatch((2, 3, 2), &b));
    ok(
        "C dynamic batched",
        check_vjp(|(a, b): (Var<DynBatch<C64>>, Var<DynBatch<C64>>)| a.matmul(&b), &db, o),
    );
    // The gemm kernel with its conjugation flags.
    let full = CheckOptions { max_full_entries: 600_000, ..o };
    let large = (dmatrix(17, 16, &a), dmatrix(16, 16, &b));
    ok(
        "C gemm 17×16 × 16×16",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DMatrix<C64>>)| a.matmul(&b), &large, full),
    );
    // 80·60 = 4800 multiply-adds: matrix × vector through gemm as well.
    let large_mv = (dmatrix(80, 60, &complex_wave(4800)), dvector(60, &b));
    ok(
        "C gemm DMatrix 80×60 × DVector 60",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DVector<C64>>)| a.matmul(&b), &large_mv, o),
    );
    let large_batch = (dbatch((2, 17, 16), &complex_wave(544)), dbatch((2, 16, 16), &b));
    ok(
        "C gemm batched",
        check_vjp(|(a, b): (Var<DynBatch<C64>>, Var<DynBatch<C64>>)| a.matmul(&b), &large_batch, o),
    );
}

#[test]
fn complex_matmul_transposed_and_transposed_matmul() {
    // Plain transposes on complex data: the pullbacks conjugate the other operand
    // (Ā = Ȳ·conj(B) for A·Bᵀ), which the real and imaginary perturbations check.
    let o = f64_opts();
    let (a, b) = (complex_wave(600), complex_values(12));
    let b: Vec<C64> =
        b.iter().cycle().take(600).enumerate().map(|(i, z)| z * (0.1 * i as f64).cos()).collect();
    type CM23 = Matrix<C64, 2, 3>;
    type CM43 = Matrix<C64, 4, 3>;
    type CM24 = Matrix<C64, 2, 4>;
    let ab: (CM23, CM43) = (static_tensor(&a[..6]), static_tensor(&b[..12]));
    ok("C M23 · M43ᵀ", check_vjp(|(a, b): (Var<CM23>, Var<CM43>)| a.matmul_transposed(&b), &ab, o));
    let ab: (CM23, CM24) = (static_tensor(&a[..6]), static_tensor(&b[..8]));
    ok("C M23ᵀ · M24", check_vjp(|(a, b): (Var<CM23>, Var<CM24>)| a.transposed_matmul(&b), &ab, o));
    let full = CheckOptions { max_full_entries: 600_000, ..o };
    let large = (dmatrix(17, 16, &a), dmatrix(16, 16, &b));
    ok(
        "C gemm 17×16 · (16×16)ᵀ",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DMatrix<C64>>)| a.matmul_transposed(&b), &large, full),
    );
    let large = (dmatrix(16, 17, &a), dmatrix(16, 16, &b));
    ok(
        "C gemm (16×17)ᵀ · 16×16",
        check_vjp(|(a, b): (Var<DMatrix<C64>>, Var<DMatrix<C64>>)| a.transposed_matmul(&b), &large, full),
    );
}

#[test]
fn complex_outer() {
    let o = f64_opts();
    let (a, b) = (complex_values(6), complex_right_half_plane(6));
    type CV3 = Vector<C64, 3>;
    type CV2 = Vector<C64, 2>;
    let ab: (CV3, CV2) = (static_tensor(&a[..3]), static_tensor(&b[..2]));
    ok("C V3 ⊗ V2", check_vjp(|(a, b): (Var<CV3>, Var<CV2>)| a.outer(&b), &ab, o));
    let d = (dvector(3, &a), dvector(4, &b));
    ok("C DVector ⊗ DVector", check_vjp(|(a, b): (Var<DVector<C64>>, Var<DVector<C64>>)| a.outer(&b), &d, o));
}

#[test]
fn complex_layout() {
    let o = f64_opts();
    let (z, w) = (complex_values(12), complex_right_half_plane(12));
    type CM23 = Matrix<C64, 2, 3>;
    type CM22 = Matrix<C64, 2, 2>;
    type CM13 = Matrix<C64, 1, 3>;
    type CV3 = Vector<C64, 3>;
    let x: CM23 = static_tensor(&z[..6]);
    ok("C transpose", check_vjp(|x: Var<CM23>| x.transpose(), &x, o));
    ok("C transpose DMatrix", check_vjp(|x: Var<DMatrix<C64>>| x.transpose(), &dmatrix(3, 2, &z), o));
    ok("C reshape", check_vjp(|x: Var<CM23>| x.reshape::<(Const<3>, Const<2>)>(), &x, o));
    ok("C flatten", check_vjp(|x: Var<CM23>| x.flatten::<6>(), &x, o));
    let v: CV3 = static_tensor(&z[..3]);
    ok("C broadcast V3 → 2×3", check_vjp(|x: Var<CV3>| x.broadcast::<(Const<2>, Const<3>)>(), &v, o));
    ok(
        "C broadcast M23 → 2×2×3",
        check_vjp(|x: Var<CM23>| x.broadcast::<(Const<2>, Const<2>, Const<3>)>(), &x, o),
    );
    let rows: (CM23, CM13) = (x, static_tensor(&w[..3]));
    ok(
        "C concat axis 0",
        check_vjp(
            |(a, b): (Var<CM23>, Var<CM13>)| -> Var<Matrix<C64, 3, 3>> { a.concat(Axis::<0>, &b) },
            &rows,
            o,
        ),
    );
    let cols: (CM23, CM22) = (x, static_tensor(&w[..4]));
    ok(
        "C concat axis 1",
        check_vjp(
            |(a, b): (Var<CM23>, Var<CM22>)| -> Var<Matrix<C64, 2, 5>> { a.concat(Axis::<1>, &b) },
            &cols,
            o,
        ),
    );
    let dyn_cols = (dmatrix(2, 3, &z), dmatrix(2, 1, &w));
    ok(
        "C DMatrix concat axis 1",
        check_vjp(
            |(a, b): (Var<DMatrix<C64>>, Var<DMatrix<C64>>)| -> Var<DMatrix<C64>> { a.concat(Axis::<1>, &b) },
            &dyn_cols,
            o,
        ),
    );
    ok("C narrow axis 1", check_vjp(|x: Var<CM23>| x.narrow::<1, 1, 2>(), &x, o));
    ok("C narrow axis 0", check_vjp(|x: Var<CM23>| x.narrow::<0, 1, 1>(), &x, o));
    ok("C narrow DMatrix", check_vjp(|x: Var<DMatrix<C64>>| x.narrow::<0, 1, 2>(), &dmatrix(3, 2, &z), o));
}

#[test]
fn complex_row_operations() {
    let o = f64_opts();
    let (z, w) = (complex_values(12), complex_right_half_plane(12));
    type CM23 = Matrix<C64, 2, 3>;
    type CV3 = Vector<C64, 3>;
    let pair: (CM23, CV3) = (static_tensor(&z[..6]), static_tensor(&w[..3]));
    ok("C add_rows", check_vjp(|(x, b): (Var<CM23>, Var<CV3>)| x.add_rows(&b), &pair, o));
    ok("C mul_rows", check_vjp(|(x, g): (Var<CM23>, Var<CV3>)| x.mul_rows(&g), &pair, o));
    let batch = (dmatrix(4, 3, &z), dvector(3, &w[3..]));
    ok(
        "C mul_rows DMatrix",
        check_vjp(|(x, g): (Var<DMatrix<C64>>, Var<DVector<C64>>)| x.mul_rows(&g), &batch, o),
    );
    ok("C mul_rows, constant gain", check_vjp(|x: Var<CM23>| x.mul_rows(&pair.1), &pair.0, o));
}

#[test]
fn complex_known_gradient_of_norm_sqr() {
    // |z|² = x² + y²: ∂/∂x + i·∂/∂y = 2x + 2iy = 2z.
    let z = C64::new(3.0, 4.0);
    assert_eq!(grad(|z: Var<C64>| z.norm_sqr(), &z), C64::new(6.0, 8.0));
    // The same through a tensor, through `abs` squared, and through conj(z)·z.
    let v: Vector<C64, 2> = Vector::from_array([z, C64::new(-1.0, 0.5)]);
    let g = grad(|v: Var<Vector<C64, 2>>| v.norm_sqr().sum(), &v);
    assert_eq!(g.to_array(), [C64::new(6.0, 8.0), C64::new(-2.0, 1.0)]);
    let g = grad(|z: Var<C64>| z.abs().powi(2), &z);
    assert_close(g, C64::new(6.0, 8.0), 1e-14);
    let g = grad(|z: Var<C64>| (&z.conj() * &z).re(), &z);
    assert_close(g, C64::new(6.0, 8.0), 1e-14);
    // |z| → z/|z|; Re z → 1; Im z → i.
    assert_close(grad(|z: Var<C64>| z.abs(), &z), C64::new(0.6, 0.8), 1e-15);
    assert_eq!(grad(|z: Var<C64>| z.re(), &z), C64::new(1.0, 0.0));
    assert_eq!(grad(|z: Var<C64>| z.im(), &z), C64::new(0.0, 1.0));
    // Re(e^z): holomorphic f, Re f has gradient conj(f′(z)).
    assert_close(grad(|z: Var<C64>| z.exp().re(), &z), z.exp().conj(), 1e-14);
    // Im(z²) = 2xy: gradient 2y + 2ix.
    assert_close(grad(|z: Var<C64>| z.powi(2).im(), &z), C64::new(8.0, 6.0), 1e-14);
}

/// s = ⟨a, M b⟩ = Σᵢ conj(aᵢ)(M b)ᵢ with c = M b.
///
/// Re s: dRe s = Re Σ conj(da)ᵢcᵢ + Re Σ conj(aᵢ)(M db)ᵢ = ⟨c, da⟩ + ⟨Mᴴa, db⟩, so
/// ∇ₐ = c and ∇_b = Mᴴa.
///
/// |s|²: d|s|² = 2 Re(conj(s)·ds) = ⟨2 conj(s)·c, da⟩ + ⟨2 s·Mᴴa, db⟩, so
/// ∇ₐ = 2 conj(s)·c and ∇_b = 2s·Mᴴa.
#[test]
fn complex_known_gradients_of_inner_products() {
    type CV2 = Vector<C64, 2>;
    type CV3 = Vector<C64, 3>;
    type CM = Matrix<C64, 2, 3>;
    let c = |re: f64, im: f64| C64::new(re, im);
    let m: CM = Matrix::from_array([
        [c(1.0, 2.0), c(-0.5, 0.3), c(0.0, -1.0)],
        [c(2.0, -1.0), c(0.7, 0.7), c(-1.2, 0.4)],
    ]);
    let a: CV2 = Vector::from_array([c(0.3, -1.1), c(1.4, 0.6)]);
    let b: CV3 = Vector::from_array([c(-0.8, 0.2), c(0.5, 1.5), c(1.1, -0.9)]);

    // Closed forms, computed by hand with plain loops.
    let m_rows = m.to_array();
    let cvec: Vec<C64> = (0..2).map(|i| (0..3).map(|j| m_rows[i][j] * b.as_slice()[j]).sum()).collect();
    let mh_a: Vec<C64> =
        (0..3).map(|j| (0..2).map(|i| m_rows[i][j].conj() * a.as_slice()[i]).sum()).collect();
    let s: C64 = (0..2).map(|i| a.as_slice()[i].conj() * cvec[i]).sum();

    let re_s = |(a, b): (Var<CV2>, Var<CV3>)| a.inner(&Var::constant(m).matmul(&b)).re();
    let abs_s_sq = |(a, b): (Var<CV2>, Var<CV3>)| a.inner(&Var::constant(m).matmul(&b)).norm_sqr();

    let (ga, gb) = grad(re_s, &(a, b));
    assert_close_slices(ga.as_slice(), &cvec, 1e-14);
    assert_close_slices(gb.as_slice(), &mh_a, 1e-14);

    let (ga, gb) = grad(abs_s_sq, &(a, b));
    let expected_a: Vec<C64> = cvec.iter().map(|ci| s.conj() * ci * 2.0).collect();
    let expected_b: Vec<C64> = mh_a.iter().map(|x| s * x * 2.0).collect();
    assert_close_slices(ga.as_slice(), &expected_a, 1e-13);
    assert_close_slices(gb.as_slice(), &expected_b, 1e-13);

    // The derivation, independently: finite differences on real and imaginary parts.
    ok("Re⟨a, M b⟩", check_grad(re_s, &(a, b), CheckOptions::f64()));
    ok("|⟨a, M b⟩|²", check_grad(abs_s_sq, &(a, b), CheckOptions::f64()));
    // And by a by-hand finite difference of one imaginary coordinate of b.
    let value = |a: CV2, b: CV3| a.inner(&m.matmul(&b)).norm_sqr();
    let h = 1e-6;
    let mut b_plus = b;
    b_plus.as_mut_slice()[1] += c(0.0, h);
    let mut b_minus = b;
    b_minus.as_mut_slice()[1] -= c(0.0, h);
    let numeric = (value(a, b_plus) - value(a, b_minus)) / (2.0 * h);
    assert!((numeric - expected_b[1].im).abs() < 1e-6, "∂|s|²/∂Im b₁: {numeric} vs {}", expected_b[1].im);
}

// ---------------------------------------------------------------------------------
// f32
// ---------------------------------------------------------------------------------

#[test]
fn f32_handful() {
    let o = CheckOptions::f32();
    let (m, p) = (to_f32(&mixed_values(12)), to_f32(&positive_values(12)));
    type FM23 = Matrix<f32, 2, 3>;
    type FM32 = Matrix<f32, 3, 2>;
    on_static!(unary_suite, "f32 Matrix<2,3>", FM23, &m[..6], &p[..6], o);
    unary_suite("f32 DVector(4)", &dvector(4, &m), &dvector(4, &p), o);
    on_static!(binary_suite, "f32 Matrix<2,3>", FM23, &m[..6], &p[..6], o);
    on_static!(real_suite, "f32 Matrix<2,3>", FM23, &m[..6], &p[..6], o);
    scalar_suite::<f32>("f32", 0.7, -1.3, 1.1, o);
    let x: FM23 = static_tensor(&m[..6]);
    real_axis_suite!("f32 Matrix<2,3>", x, FM23, o; 0, 1);
    axis_suite!("f32 Matrix<2,3>", x, FM23, o; 0, 1);
    let mm: (FM23, FM32) = (x, static_tensor(&p[..6]));
    ok("f32 matmul", check_vjp(|(a, b): (Var<FM23>, Var<FM32>)| a.matmul(&b), &mm, o));
    ok("f32 transpose", check_vjp(|x: Var<FM23>| x.transpose(), &x, o));
    let (xt, yt): (FM23, FM23) = (x, static_tensor(&p[..6]));
    ok(
        "f32 matmul_transposed",
        check_vjp(|(a, b): (Var<FM23>, Var<FM23>)| a.matmul_transposed(&b), &(xt, yt), o),
    );
    ok(
        "f32 transposed_matmul",
        check_vjp(|(a, b): (Var<FM23>, Var<FM23>)| a.transposed_matmul(&b), &(xt, yt), o),
    );

    // Complex32.
    type Z3 = Vector<Complex32, 3>;
    let z: Vec<Complex32> =
        complex_values(3).iter().map(|z| Complex32::new(z.re as f32, z.im as f32)).collect();
    let w: Vec<Complex32> =
        complex_right_half_plane(3).iter().map(|z| Complex32::new(z.re as f32, z.im as f32)).collect();
    on_static!(unary_suite, "Complex32 Vector<3>", Z3, &z, &w, o);
    on_static!(binary_suite, "Complex32 Vector<3>", Z3, &z, &w, o);
    let g = grad(|z: Var<Complex32>| z.norm_sqr(), &Complex32::new(3.0, 4.0));
    assert_eq!(g, Complex32::new(6.0, 8.0));
}

// ---------------------------------------------------------------------------------
// Empty dynamic shapes
// ---------------------------------------------------------------------------------

#[test]
fn empty_dynamic_shapes() {
    let o = f64_opts();
    let empty = dmatrix::<f64>(0, 3, &[]);
    let g = grad(|x: Var<DMatrix<f64>>| x.exp().sum(), &empty);
    assert_eq!((g.shape(), g.len()), ((Dyn(0), Dyn(3)), 0));
    let g = grad(|x: Var<DMatrix<f64>>| x.max(), &empty);
    assert_eq!(g.len(), 0);
    // Inner dimension 0: the product is zero and so are the (empty) cotangents.
    let (a, b) = (dmatrix::<f64>(2, 0, &[]), dmatrix::<f64>(0, 3, &[]));
    let (g_a, g_b) = grad(|(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| a.matmul(&b).sum(), &(a, b));
    assert_eq!((g_a.shape(), g_b.shape()), ((Dyn(2), Dyn(0)), (Dyn(0), Dyn(3))));
    let (a, b) = (dbatch::<f64>((2, 3, 0), &[]), dbatch::<f64>((2, 0, 2), &[]));
    let (g_a, g_b) = grad(|(a, b): (Var<DynBatch<f64>>, Var<DynBatch<f64>>)| a.matmul(&b).sum(), &(a, b));
    assert_eq!((g_a.len(), g_b.len()), (0, 0));
    // Concatenation with an empty part, along each axis.
    let m = mixed_values(6);
    let rows = (dmatrix(2, 3, &m), dmatrix::<f64>(0, 3, &[]));
    ok(
        "concat with 0 rows",
        check_vjp(
            |(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| -> Var<DMatrix<f64>> { a.concat(Axis::<0>, &b) },
            &rows,
            o,
        ),
    );
    let cols = (dmatrix::<f64>(2, 0, &[]), dmatrix(2, 3, &m));
    ok(
        "concat after 0 columns",
        check_vjp(
            |(a, b): (Var<DMatrix<f64>>, Var<DMatrix<f64>>)| -> Var<DMatrix<f64>> { a.concat(Axis::<1>, &b) },
            &cols,
            o,
        ),
    );
}

/// The named elementwise functions: values against their formulas, gradients against
/// finite differences and the adjoint identity, forward mode against reverse mode,
/// and PyTorch's choices at the kinks.
#[test]
fn named_elementwise_functions_match_their_formulas_and_derivatives() {
    let x: M23 = static_tensor(&wave(6));
    let sigma = |v: f64| 1.0 / (1.0 + (-v).exp());
    for (value, formula) in [
        (x.softplus(), x.map(|v| (1.0 + v.exp()).ln())),
        (x.silu(), x.map(|v| v * sigma(v))),
        (x.leaky_relu(0.1), x.map(|v| if v > 0.0 { v } else { 0.1 * v })),
        (x.clamp(-0.3, 0.7), x.map(|v| v.clamp(-0.3, 0.7))),
    ] {
        assert_close_slices(value.as_slice(), formula.as_slice(), 1e-15);
    }
    ok("softplus", check_vjp(|x: Var<M23>| x.softplus(), &x, f64_opts()));
    ok("silu", check_vjp(|x: Var<M23>| x.silu(), &x, f64_opts()));
    ok("leaky_relu", check_vjp(|x: Var<M23>| x.leaky_relu(0.1), &x, f64_opts()));
    ok("clamp", check_vjp(|x: Var<M23>| x.clamp(-0.3, 0.7), &x, f64_opts()));
    let y: M23 = x.map(|v| 0.5 - v);
    ok("maximum", check_vjp(|(a, b): (Var<M23>, Var<M23>)| a.maximum(&b), &(x, y), f64_opts()));
    ok("minimum", check_vjp(|(a, b): (Var<M23>, Var<M23>)| a.minimum(&b), &(x, y), f64_opts()));
    // Forward mode (tensors of duals) gives the reverse-mode directional derivative.
    let v: M23 = static_tensor(&[0.3, -1.0, 0.5, 2.0, -0.7, 1.1]);
    let reverse = grad(|x: Var<M23>| x.silu().softplus().sum(), &x);
    let (_, forward) = jvp(|x: Matrix<Dual<f64>, 2, 3>| x.silu().softplus().sum(), &x, &v);
    let directional: f64 = reverse.iter().zip(v.iter()).map(|(g, v)| g * v).sum();
    assert!((forward - directional).abs() < 1e-14, "{forward} vs {directional}");
    // At the kinks: clamp's derivative is 1 on the closed interval, leaky ReLU's is
    // the slope at 0, a tie splits the derivative in halves (as PyTorch and JAX), and
    // a NaN is picked.
    let kinks: V3 = Vector::from_array([-1.0, 0.0, 1.0]);
    assert_eq!(grad(|x: Var<V3>| x.clamp(-1.0, 1.0).sum(), &kinks).to_array(), [1.0, 1.0, 1.0]);
    assert_eq!(grad(|x: Var<V3>| x.leaky_relu(0.1).sum(), &kinks).to_array(), [0.1, 0.1, 1.0]);
    type V4 = Vector<f64, 4>;
    let (a, b): (V4, V4) =
        (Vector::from_array([1.0, 2.0, f64::NAN, 0.0]), Vector::from_array([1.0, 3.0, 0.0, f64::NAN]));
    let larger = a.maximum(&b);
    assert!(larger[[0]] == 1.0 && larger[[1]] == 3.0 && larger[[2]].is_nan() && larger[[3]].is_nan());
    let (da, db) = grad(|(a, b): (Var<V4>, Var<V4>)| a.maximum(&b).sum(), &(a, b));
    assert_eq!((da.to_array(), db.to_array()), ([0.5, 0.0, 1.0, 0.0], [0.5, 1.0, 0.0, 1.0]));
    let (da, db) = grad(|(a, b): (Var<V4>, Var<V4>)| a.minimum(&b).sum(), &(a, b));
    assert_eq!((da.to_array(), db.to_array()), ([0.5, 1.0, 1.0, 0.0], [0.5, 0.0, 0.0, 1.0]));
    // Forward mode agrees: the tangent at a tie is the mean of both operands'.
    let (da_dot, db_dot): (V4, V4) = (Vector::full(2.0), Vector::full(6.0));
    let (_, tangent) =
        jvp(|(a, b): (Vector<Dual<f64>, 4>, Vector<Dual<f64>, 4>)| a.maximum(&b), &(a, b), &(da_dot, db_dot));
    assert_eq!(tangent.to_array(), [4.0, 6.0, 2.0, 6.0]);
    // The `try_` forms: the result when the dynamic shapes agree, an error naming both
    // shapes when they do not (plain and traced).
    let (short, long) = (dvector(2, &[1.0, -2.0]), dvector(3, &[0.5, 0.5, 0.5]));
    assert_eq!(short.try_maximum(&short.scale(-1.0)).unwrap().as_slice(), [1.0, 2.0]);
    let error = short.try_maximum(&long).unwrap_err().to_string();
    assert!(error.contains("maximum") && error.contains("[2]") && error.contains("[3]"), "{error}");
    let error = Var::constant(short).try_minimum(&Var::constant(long)).unwrap_err().to_string();
    assert!(error.contains("minimum") && error.contains("[2]") && error.contains("[3]"), "{error}");
    // max(x, x) and min(x, x) are x: the halves add up to the whole derivative.
    let x2: V4 = Vector::from_array([0.5, -1.0, 2.0, 0.0]);
    assert_eq!(grad(|x: Var<V4>| x.maximum(&x).sum(), &x2).to_array(), [1.0; 4]);
    assert_eq!(grad(|x: Var<V4>| x.minimum(&x).sum(), &x2).to_array(), [1.0; 4]);
    // Clamp keeps its derivative 1 on the bounds in forward mode too.
    let (_, tangent) =
        jvp(|x: Vector<Dual<f64>, 3>| x.clamp(-1.0, 1.0).sum(), &kinks, &Vector::from_array([1.0, 2.0, 4.0]));
    assert_eq!(tangent, 7.0);
    // Clamp's derivative is 0 at NaN (and 1 at an infinite bound reached).
    let odd: V3 = Vector::from_array([f64::NAN, f64::NEG_INFINITY, 0.5]);
    let g = grad(|x: Var<V3>| x.clamp(f64::NEG_INFINITY, 1.0).sum(), &odd);
    assert_eq!(g.to_array(), [0.0, 1.0, 1.0]);
    // Softplus to rounding at the extremes (references: `math.log1p`).
    let extremes: V4 = Vector::from_array([-40.0, -20.0, f64::INFINITY, f64::NEG_INFINITY]);
    let y = extremes.softplus();
    for (value, reference) in y.iter().zip([4.248354255291589e-18, 2.061153620314381e-09]) {
        assert!((value - reference).abs() <= 2e-16 * reference, "{value} vs {reference}");
    }
    assert!(y[[2]] == f64::INFINITY && y[[3]] == 0.0, "{y:?}");
    assert!(Vector::<f64, 1>::from_array([f64::NAN]).softplus()[[0]].is_nan());
}

/// The trigonometric, error and rounding functions of tensors: each element is the
/// scalar function's, the gradients match finite differences (away from the
/// rounding functions' jumps, where their derivative is 0), and forward mode agrees.
#[test]
fn trigonometric_error_and_rounding_functions_of_tensors() {
    let x: M23 = static_tensor(&[0.3, -1.7, 2.4, -0.45, 0.8, 1.25]);
    let inside: M23 = x.scale(0.35); // |x| < 1 for asin and acos
    // Each element is the scalar function's, to rounding (`tan` is sin/cos).
    let elementwise = |y: M23, f: fn(f64) -> f64, of: &M23| {
        for (got, v) in y.iter().zip(of.iter()) {
            let want = f(*v);
            assert!((got - want).abs() <= 1e-15 * want.abs().max(1.0), "{got} vs {want} at {v}");
        }
    };
    elementwise(x.tan(), f64::tan, &x);
    elementwise(x.atan(), |v| v.atan2(1.0), &x);
    elementwise(x.erf(), RealScalar::erf, &x);
    elementwise(x.erfc(), RealScalar::erfc, &x);
    elementwise(x.floor(), f64::floor, &x);
    elementwise(x.ceil(), f64::ceil, &x);
    elementwise(x.round(), f64::round, &x);
    elementwise(x.trunc(), f64::trunc, &x);
    elementwise(x.fract(), f64::fract, &x);
    elementwise(inside.asin(), f64::asin, &inside);
    elementwise(inside.acos(), f64::acos, &inside);
    // Half away from zero, as Rust's `round` (PyTorch rounds half to even).
    let halves: V3 = Vector::from_array([0.5, -2.5, 1.5]);
    assert_eq!(halves.round().to_array(), [1.0, -3.0, 2.0]);

    ok("tan", check_vjp(|x: Var<M23>| x.tan(), &x, f64_opts()));
    ok("atan", check_vjp(|x: Var<M23>| x.atan(), &x, f64_opts()));
    ok("asin", check_vjp(|x: Var<M23>| x.asin(), &inside, f64_opts()));
    ok("acos", check_vjp(|x: Var<M23>| x.acos(), &inside, f64_opts()));
    ok("erf", check_vjp(|x: Var<M23>| x.erf(), &x, f64_opts()));
    ok("erfc", check_vjp(|x: Var<M23>| x.erfc(), &x, f64_opts()));
    ok("fract", check_vjp(|x: Var<M23>| x.fract(), &x, f64_opts()));
    let rounded = |x: Var<M23>| &(&x.floor() + &x.ceil()) + &(&x.round() + &x.trunc());
    ok("rounding", check_vjp(|x: Var<M23>| rounded(x.clone()).hadamard(&x), &x, f64_opts()));
    assert!(grad(|x: Var<M23>| rounded(x).sum(), &x).iter().all(|&g| g == 0.0));

    // Forward mode (tensors of duals) gives the reverse-mode directional derivative.
    let v: M23 = static_tensor(&[0.3, -1.0, 0.5, 2.0, -0.7, 1.1]);
    let f = |x: Var<M23>| (&x.erf().hadamard(&x.floor()) + &x.atan().hadamard(&x.fract())).sum();
    let reverse = grad(f, &x);
    let (_, forward) = jvp(
        |x: Matrix<Dual<f64>, 2, 3>| (x.erf().hadamard(&x.floor()) + x.atan().hadamard(&x.fract())).sum(),
        &x,
        &v,
    );
    let directional: f64 = reverse.iter().zip(v.iter()).map(|(g, v)| g * v).sum();
    assert!((forward - directional).abs() < 1e-14, "{forward} vs {directional}");

    // An infinite cotangent or tangent through a rounding function gives 0, as in
    // PyTorch and JAX (not 0·∞ = NaN): tape, forward mode and static mode.
    let far: V3 = Vector::from_array([1000.5, 2.0, -1000.5]);
    assert_eq!(grad(|x: Var<V3>| x.floor().exp().sum(), &far).to_array(), [0.0; 3]);
    assert_eq!(grad(|x: Var<f64>| x.round().exp(), &1000.5), 0.0);
    let odd_tangent = Vector::from_array([f64::INFINITY, f64::NAN, -f64::INFINITY]);
    let (_, tangent) = jvp(|x: Vector<Dual<f64>, 3>| x.trunc().hadamard(&x.ceil()), &far, &odd_tangent);
    assert_eq!(tangent.to_array(), [0.0; 3]);
    assert_eq!(rounded_exponential::grad(&far).to_array(), [0.0; 3]);
    // So does `clamp` outside its bounds (0.5 inside keeps e^0.5).
    let clamped: V3 = Vector::from_array([2000.0, 0.5, -5.0]);
    let g = grad(|x: Var<V3>| x.clamp(-1.0, 1000.0).exp().sum(), &clamped);
    assert_eq!(g.to_array(), [0.0, 0.5f64.exp(), 0.0]);
}

#[differentiable]
fn rounded_exponential(x: &Vector<f64, 3>) -> f64 {
    x.floor().exp().sum() + x[[0]].ceil().exp()
}

/// A traced scalar's `map_function` takes its written derivative also when its
/// elements are duals (a Hessian through it), as a tensor's does.
#[test]
fn a_scalar_function_on_a_traced_dual_uses_its_written_derivative() {
    use fluxion::autodiff::hvp;
    use fluxion::ops::elementwise::ScalarFunction;
    /// The identity, with the derivative written as 2 (a surrogate, as in a
    /// straight-through estimator).
    #[derive(Clone, Copy, Debug)]
    struct Surrogate;
    impl ScalarFunction for Surrogate {
        fn value<T: RealScalar>(&self, x: T) -> T {
            x
        }
        fn derivative<T: RealScalar>(&self, _: T, _: T) -> T {
            T::from_f64(2.0)
        }
    }
    let on_scalar = hvp(
        |x: Var<Dual<f64>>| {
            let y = x.map_function(Surrogate);
            &y * &y
        },
        &1.0,
        &1.0,
    );
    let (one, along): (Vector<f64, 1>, Vector<f64, 1>) =
        (Vector::from_array([1.0]), Vector::from_array([1.0]));
    let on_tensor = hvp(
        |x: Var<Vector<Dual<f64>, 1>>| {
            let y = x.map_function(Surrogate);
            y.hadamard(&y).sum()
        },
        &one,
        &along,
    );
    // d/dx of 2·y·y′ with y′ = 2 along y's own tangent 2: 8.
    assert_eq!((on_scalar, on_tensor[[0]]), (8.0, 8.0));
}

/// softplus(x) = ln(1 + eˣ), a library author's elementwise function.
#[derive(Clone, Copy, Debug)]
struct Softplus;

impl fluxion::ops::elementwise::ScalarFunction for Softplus {
    fn value<T: RealScalar>(&self, x: T) -> T {
        (T::one() + x.exp()).ln()
    }
    fn derivative<T: RealScalar>(&self, x: T, _y: T) -> T {
        T::one() / (T::one() + (-x).exp())
    }
}

#[test]
fn a_scalar_function_and_its_rule_agree_with_finite_differences() {
    let x: M23 = static_tensor(&wave(6));
    ok("map_function", check_vjp(|x: Var<M23>| x.map_function(Softplus), &x, f64_opts()));
    let d = dmatrix(3, 4, &wave(12));
    ok("map_function (dynamic)", check_vjp(|x: Var<DMatrix<f64>>| x.map_function(Softplus), &d, f64_opts()));
    // The rule is the derivative the function states: σ(x).
    let g = grad(|x: Var<M23>| x.map_function(Softplus).sum(), &x);
    assert_close_slices(g.as_slice(), x.map(|v| 1.0 / (1.0 + (-v).exp())).as_slice(), 1e-15);
    // On a traced scalar: the same rule.
    ok("map_function (scalar)", check_grad(|x: Var<f64>| x.map_function(Softplus), &0.7, f64_opts()));
    assert_eq!(grad(|x: Var<f64>| x.map_function(Softplus), &x[[0, 1]]), g[[0, 1]]);
}

#[test]
fn a_fused_function_of_three_tensors_agrees_with_its_parts_and_finite_differences() {
    let (x, g, r): (M23, M23, M23) =
        (static_tensor(&wave(6)), static_tensor(&wave(7)[1..]), static_tensor(&wave(8)[2..]));
    let sigmoid = g.map(|v| 1.0 / (1.0 + (-v).exp()));
    let unfused = x.hadamard(&sigmoid) + r.hadamard(&r);
    assert_close_slices(GatedSquare.apply([&x, &g, &r]).as_slice(), unfused.as_slice(), 1e-15);
    // Every input's rule, from forward mode on duals, against central differences.
    let (gc, rc) = (Var::constant(g), Var::constant(r));
    ok("fused wrt x", check_vjp(move |x: Var<M23>| GatedSquare.apply([&x, &gc, &rc]), &x, f64_opts()));
    let (xc, rc) = (Var::constant(x), Var::constant(r));
    ok("fused wrt g", check_vjp(move |g: Var<M23>| GatedSquare.apply([&xc, &g, &rc]), &g, f64_opts()));
    ok("fused, one input thrice", check_vjp(|x: Var<M23>| GatedSquare.apply([&x, &x, &x]), &x, f64_opts()));
    // The partials themselves: σ(g), x·σ(g)(1 − σ(g)), 2r.
    let [dx, dg, dr] = fused_partials(GatedSquare, [0.5, 0.25, -2.0]);
    let s = 1.0 / (1.0 + (-0.25f64).exp());
    assert_close_slices(&[dx, dg, dr], &[s, 0.5 * s * (1.0 - s), -4.0], 1e-15);
    // Dynamic shapes must agree; the message names both.
    let a = dmatrix(2, 3, &wave(6));
    let b = dmatrix(3, 2, &wave(6));
    let error = std::panic::catch_unwind(|| GatedSquare.apply([&a, &b, &a])).unwrap_err();
    let message = error.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains("[2, 3]") && message.contains("[3, 2]"), "{message}");
}

#[test]
fn a_fused_pullback_over_several_chunks_is_each_elements_partials_times_the_cotangent() {
    use fluxion::ops::elementwise::fused_pullback;
    // 150 elements: the pullback goes 64 at a time, the last chunk short.
    let n = 150;
    let x = DVector::from_shape_vec((Dyn(n),), mixed_values(n)).unwrap();
    let g = DVector::from_shape_vec((Dyn(n),), mixed_values(n + 7)[7..].to_vec()).unwrap();
    let r = DVector::from_shape_vec((Dyn(n),), positive_values(n)).unwrap();
    let y_bar = DVector::from_shape_vec((Dyn(n),), positive_values(n + 3)[3..].to_vec()).unwrap();
    let bars = fused_pullback(GatedSquare, [&x, &g, &r], &y_bar);
    for i in 0..n {
        let partials = fused_partials(GatedSquare, [x[[i]], g[[i]], r[[i]]]);
        for (k, bar) in bars.iter().enumerate() {
            assert_eq!(bar[[i]], partials[k] * y_bar[[i]], "input {k}, element {i}");
        }
    }
}

#[test]
fn maximum_splits_its_cotangent_on_ties_in_every_chunk_for_f32_and_f64() {
    /// The gradient of Σ ȳ ⊙ max(a, b) with respect to a, or to b (the other a
    /// constant): ȳ where it is larger, ȳ/2 on a tie, 0 elsewhere.
    fn check<T: RealScalar>(n: usize) {
        let value = |i: usize, seed: usize| T::from_f64(((i * seed) % 17) as f64 - 8.0);
        let a = DVector::<T>::from_shape_fn((Dyn(n),), |[i]| value(i, 7));
        // Every third element a tie (the first of each 64 among them).
        let b = DVector::<T>::from_shape_fn((Dyn(n),), |[i]| if i % 3 == 0 { a[[i]] } else { value(i, 5) });
        let y_bar = DVector::<T>::from_shape_fn((Dyn(n),), |[i]| T::from_f64(1.0 + (i % 5) as f64));
        let weights = Var::constant(y_bar.clone());
        let (a_constant, b_constant) = (Var::constant(a.clone()), Var::constant(b.clone()));
        let a_bar = grad(|a: Var<DVector<T>>| a.maximum(&b_constant).hadamard(&weights).sum(), &a);
        let b_bar = grad(|b: Var<DVector<T>>| a_constant.maximum(&b).hadamard(&weights).sum(), &b);
        for i in 0..n {
            let (x, y, g) = (a[[i]], b[[i]], y_bar[[i]]);
            let share = if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            };
            assert_eq!(a_bar[[i]], g * T::from_f64(share), "a, element {i} of {n}");
            assert_eq!(b_bar[[i]], g * T::from_f64(1.0 - share), "b, element {i} of {n}");
        }
    }
    for n in [0, 1, 64, 128, 150] {
        check::<f32>(n);
        check::<f64>(n);
    }
}

/// atan2, asin, acos, atan and tan of traced scalars: gradients against finite
/// differences, and equal to static mode's (the same rules).
#[test]
fn inverse_trigonometry_on_the_tape_agrees_with_finite_differences() {
    use fluxion::autodiff::check::{CheckOptions, check_grad};
    let f = |(a, b): (Var<f64>, Var<f64>)| {
        let first = &a.atan2(&b) + &(&(&a * &b).asin() * &b.acos());
        &first + &(&a.atan() * &b.tan())
    };
    for point in [(0.3, 0.4), (-0.7, 0.2), (0.5, -0.9)] {
        if let Err(error) = check_grad(f, &point, CheckOptions::f64()) {
            panic!("at {point:?}: {error}");
        }
        let (a, b) = grad(f, &point);
        let h = 1e-6;
        let reference = |a: f64, b: f64| a.atan2(b) + (a * b).asin() * b.acos() + a.atan() * b.tan();
        let da = (reference(point.0 + h, point.1) - reference(point.0 - h, point.1)) / (2.0 * h);
        let db = (reference(point.0, point.1 + h) - reference(point.0, point.1 - h)) / (2.0 * h);
        assert!((a - da).abs() < 1e-8 && (b - db).abs() < 1e-8, "({a}, {b}) vs ({da}, {db})");
    }
}

/// hypot and clamp of traced scalars: gradients against finite differences.
#[test]
fn hypot_and_clamp_on_the_tape_agree_with_finite_differences() {
    use fluxion::autodiff::check::{CheckOptions, check_grad};
    let f = |(a, b): (Var<f64>, Var<f64>)| &a.hypot(&b) * &a.clamp(-0.5, 0.5);
    for point in [(0.3, 0.4), (-0.7, 0.2), (0.9, -1.3)] {
        if let Err(error) = check_grad(f, &point, CheckOptions::f64()) {
            panic!("at {point:?}: {error}");
        }
    }
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.hypot(&b), &(0.0, 0.0)), (0.0, 0.0));
    // On a bound the derivative passes (PyTorch's convention); beyond it, it does not.
    let clamped = |x: f64| grad(|a: Var<f64>| a.clamp(-0.5, 0.5), &x);
    assert_eq!([clamped(0.5), clamped(-0.5), clamped(0.7), clamped(-0.6)], [1.0, 1.0, 0.0, 0.0]);
}

/// `max` and `min` of two traced scalars: the cotangent goes to the operand picked
/// (half to each on a tie), as in static mode.
#[test]
fn max_and_min_of_traced_scalars_pass_the_cotangent_to_the_one_picked() {
    use fluxion::autodiff::check::{CheckOptions, check_grad};
    let f = |(a, b): (Var<f64>, Var<f64>)| &a.max(&b) + &(&a.min(&b) * &b);
    for point in [(0.3, -0.4), (-0.7, 0.2)] {
        if let Err(error) = check_grad(f, &point, CheckOptions::f64()) {
            panic!("at {point:?}: {error}");
        }
    }
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.max(&b), &(1.0, 1.0)), (0.5, 0.5));
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.min(&b), &(1.0, 1.0)), (0.5, 0.5));
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.min(&b), &(2.0, 1.0)), (0.0, 1.0));
    // A NaN is picked, and takes the whole cotangent.
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.max(&b), &(1.0, f64::NAN)), (0.0, 1.0));
    // Forward mode on scalar duals agrees.
    let (_, tangent) = jvp(|(a, b): (Dual<f64>, Dual<f64>)| a.max(b), &(1.0, 1.0), &(2.0, 6.0));
    assert_eq!(tangent, 4.0);
    // An infinite cotangent reaches the picked operand only: the other gets an exact 0.
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.max(&b).sqrt(), &(0.0, -1.0)), (f64::INFINITY, 0.0));
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| a.min(&b).sqrt(), &(0.0, 1.0)), (f64::INFINITY, 0.0));
    type V2 = Vector<f64, 2>;
    let (a, b): (V2, V2) = (Vector::from_array([0.0, 1.0]), Vector::from_array([-1.0, 0.0]));
    let (da, db) = grad(|(a, b): (Var<V2>, Var<V2>)| a.maximum(&b).sqrt().sum(), &(a, b));
    assert_eq!((da.to_array(), db.to_array()), ([f64::INFINITY, 0.5], [0.0, 0.0]));
}

#[test]
#[should_panic(expected = "maximum: shapes [2, 3] and [3, 3]")]
fn maximum_of_mismatched_dynamic_shapes_names_itself() {
    let a: Tensor<f64, (Dyn, Const<3>), Heap> = Tensor::zeros_shaped((Dyn(2), Const));
    let b: Tensor<f64, (Dyn, Const<3>), Heap> = Tensor::zeros_shaped((Dyn(3), Const));
    let _ = a.maximum(&b);
}

/// The scalar functions of `f64` with a static-mode rule, on the tape: each one's
/// gradient against finite differences (`check_grad`) and against static mode's
/// (the same rule), in f64 and f32.
#[test]
fn scalar_functions_on_the_tape_agree_with_finite_differences_and_static_mode() {
    use fluxion::autodiff::check::{CheckOptions, check_grad};
    use fluxion::autodiff::differentiable;

    #[differentiable]
    fn smooth(a: f64, b: f64) -> f64 {
        let first = RealScalar::erf(a) * RealScalar::erfc(b) + a.recip() * b.cbrt() + a.sinh() * b.cosh();
        let second = (a * 0.5).asinh() + (b + 2.0).acosh() * (a * 0.5).atanh() + a.ln_1p() * b.exp_m1();
        let third = a.exp2() + b.log2() * a.log10() + a.to_radians() * b.to_degrees();
        first + second + third
    }
    let traced = |(a, b): (Var<f64>, Var<f64>)| {
        let first = &(&(&a.erf() * &b.erfc()) + &(&a.recip() * &b.cbrt())) + &(&a.sinh() * &b.cosh());
        let half = &a * 0.5;
        let second = &(&half.asinh() + &(&(&b + 2.0).acosh() * &half.atanh())) + &(&a.ln_1p() * &b.exp_m1());
        let third = &(&a.exp2() + &(&b.log2() * &a.log10())) + &(&a.to_radians() * &b.to_degrees());
        &(&first + &second) + &third
    };
    for point in [(0.3, 0.4), (0.7, 1.9), (1.2, 0.6)] {
        if let Err(error) = check_grad(traced, &point, CheckOptions::f64()) {
            panic!("at {point:?}: {error}");
        }
        let (tape, expected) = (grad(traced, &point), smooth::grad(point.0, point.1));
        assert!((tape.0 - expected.0).abs() < 1e-13 && (tape.1 - expected.1).abs() < 1e-13);
    }
    // The piecewise ones: derivative 0 (1 for fract) between their jumps, the
    // remainder's −q for its divisor, and a copied sign's 0.
    let pieces = |(a, b): (Var<f64>, Var<f64>)| {
        let constant = &(&(&a.floor() + &a.ceil()) + &(&a.round() + &a.trunc())) + &b.signum();
        &(&(&constant + &a.fract()) + &a.rem_euclid(&b)) + &a.copysign(&(&b - 3.0))
    };
    // The copied sign: b − 3 < 0, so ∂/∂a of |a|·(−1) is −sign(a).
    assert_eq!(grad(pieces, &(7.3, 2.0)), (1.0, -3.0));
    assert_eq!(grad(pieces, &(-7.3, 2.0)), (3.0, 4.0));
    if let Err(error) = check_grad(|x: Var<f32>| &x.sinh() * &x.erf(), &0.8f32, CheckOptions::f32()) {
        panic!("f32: {error}");
    }
    // softplus and SiLU of a traced scalar: the tensors' functions, stable far out.
    let activations = |x: Var<f64>| &x.softplus() + &x.silu();
    for x in [-3.0, 0.0, 1.7] {
        if let Err(error) = check_grad(activations, &x, CheckOptions::f64()) {
            panic!("at {x}: {error}");
        }
        let tensor =
            grad(|v: Var<Vector<f64, 1>>| (&v.softplus() + &v.silu()).sum(), &Vector::from_array([x]));
        assert_eq!(grad(activations, &x), tensor[[0]]);
    }
    assert_eq!(value_and_grad(|x: Var<f64>| x.softplus(), &1000.0), (1000.0, 1.0));
    assert_eq!(value_and_grad(|x: Var<f64>| x.softplus(), &-1000.0), (0.0, 0.0));
}

/// The distance |a − b| between two points.
#[differentiable]
fn distance(a: &V3, b: &V3) -> f64 {
    (*a - *b).norm()
}

/// |z| of a complex scalar, written as num-complex names it.
#[differentiable]
fn modulus(z: &C64) -> f64 {
    z.norm()
}

/// |x|, generic for its Hessian.
#[differentiable]
fn length<T: RealScalar>(x: &Vector<T, 3>) -> T {
    x.norm()
}

#[test]
fn norm_in_every_mode_and_its_subgradient_at_zero() {
    let (a, b) = (V3::from_array([1.0, -2.0, 0.5]), V3::from_array([0.25, 1.0, 3.0]));
    let difference = a - b;
    let length = difference.norm();
    let unit = difference.scale(1.0 / length);
    // ∇ₐ|a − b| = u, ∇_b = −u, on the tape and in static mode; ḋ = ⟨u, ȧ − ḃ⟩
    // against duals.
    let tape = grad(|(a, b): (Var<V3>, Var<V3>)| (a - b).norm(), &(a, b));
    assert_close_slices(tape.0.as_slice(), unit.as_slice(), 1e-15);
    assert_close_slices(tape.1.as_slice(), (-unit).as_slice(), 1e-15);
    let (value, (ga, gb)) = distance::value_and_grad(&a, &b);
    assert_eq!(value, length);
    assert_close_slices(ga.as_slice(), unit.as_slice(), 1e-15);
    assert_close_slices(gb.as_slice(), (-unit).as_slice(), 1e-15);
    let (da, db) = (V3::from_array([0.3, 0.1, -0.2]), V3::from_array([-0.5, 0.4, 0.0]));
    let (_, tangent) = distance::jvp(&a, &b, &da, &db);
    let (_, dual_tangent) = fluxion::autodiff::jvp(
        |(a, b): (Vector<Dual<f64>, 3>, Vector<Dual<f64>, 3>)| (a - b).norm(),
        &(a, b),
        &(da, db),
    );
    assert_close(tangent, (da - db).dot(&unit), 1e-15);
    assert_close(dual_tangent, tangent, 1e-15);
    // The Hessian of |x|: (I − u·uᵀ)/|x|.
    let hessian: Matrix<f64, 3, 3> = length::hessian(&difference);
    let expected = (Matrix::<f64, 3, 3>::identity() - unit.outer(&unit)).scale(1.0 / length);
    assert_close_slices(hessian.as_slice(), expected.as_slice(), 1e-14);
    // At a = b every mode takes the subgradient 0, as PyTorch does.
    let zero = V3::zeros();
    let tape = grad(|(a, b): (Var<V3>, Var<V3>)| (a - b).norm(), &(a, a));
    assert_eq!((tape.0, tape.1), (zero, zero));
    assert_eq!(distance::value_and_grad(&a, &a), (0.0, (zero, zero)));
    assert_eq!(distance::jvp(&a, &a, &da, &db), (0.0, 0.0));
    let (_, dual_tangent) = fluxion::autodiff::jvp(|x: Vector<Dual<f64>, 3>| x.norm(), &zero, &da);
    assert_eq!(dual_tangent, 0.0);
    // A complex scalar in static mode, and a traced complex vector: z̄ = ȳ·z/|z|.
    assert_eq!(modulus::value_and_grad(&C64::new(3.0, 4.0)), (5.0, C64::new(0.6, 0.8)));
    let z = Vector::<C64, 2>::from_array([C64::new(3.0, 4.0), C64::new(0.0, 0.0)]);
    let gradient = grad(|z: Var<Vector<C64, 2>>| z.norm(), &z);
    assert_eq!(gradient.as_slice(), [C64::new(0.6, 0.8), C64::new(0.0, 0.0)]);
}
