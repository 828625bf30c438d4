//! A symbolic real scalar: generic Rust code evaluated on [`Sym`] records the
//! expression it computes instead of a number.
//!
//! `Sym` implements [`Scalar`] and [`RealScalar`], so the same generic definitions the
//! CPU runs on `f32` and `f64` (for example [`Elementary::apply`] and
//! [`Elementary::derivative`]) run on it unchanged. [`record`] evaluates a function
//! on symbolic inputs and returns the [`Expression`] it built; the kernel generator
//! prints that expression as CUDA C.
//!
//! What cannot be recorded is reported, not guessed: a symbolic value has no number,
//! so comparing two of them, asking for one as `f64` or parsing one from text makes
//! [`record`] fail with [`Unrecordable`], naming what was asked. A function that
//! branches on its input must use `RealScalar::max` (or a kernel of its own).
//!
//! [`Elementary::apply`]: crate::ops::elementwise::Elementary::apply
//! [`Elementary::derivative`]: crate::ops::elementwise::Elementary::derivative

use core::cell::RefCell;
use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign};
use std::vec::Vec;

use num_complex::Complex;
use num_traits::{Num, One, Zero};

use crate::scalar::{RealScalar, Scalar, complex_exp, complex_sigmoid, complex_tanh};

/// A node's position in the expression being recorded.
type NodeId = u32;

/// One operation of a recorded expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Node {
    /// The `k`-th elementwise input.
    Input(usize),
    /// The `k`-th scalar parameter (a kernel argument, the same for every element).
    Param(usize),
    /// A constant.
    Constant(f64),
    /// A function of one value.
    Unary(UnaryOp, NodeId),
    /// A function of two values.
    Binary(BinaryOp, NodeId, NodeId),
    /// xⁿ for an integer n.
    Powi(NodeId, i32),
    /// `value` where `condition > 0`, else 0 (the derivative of `max(x, 0)`).
    WherePositive { condition: NodeId, value: NodeId },
    /// `finite` where `condition` is finite, else `otherwise`.
    WhereFinite { condition: NodeId, finite: NodeId, otherwise: NodeId },
    /// `positive` where `condition > 0`, else `otherwise` ([`RealScalar::select_positive`]).
    Select { condition: NodeId, positive: NodeId, otherwise: NodeId },
}

/// Functions of one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Ln,
    Sin,
    Cos,
    Tanh,
    Sqrt,
    Sinh,
    Cosh,
    Erf,
    Erfc,
    Floor,
    Ceil,
    Round,
    Trunc,
}

/// Functions of two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    /// `RealScalar::max`: NaN when either side is NaN.
    Max,
    /// atan2(a, b): the angle of the point (b, a).
    Atan2,
    /// √(a² + b²) without overflow or underflow of the squares.
    Hypot,
}

/// What a recorded function asked of a symbolic value that has no number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unrecordable(pub &'static str);

impl fmt::Display for Unrecordable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the function cannot run on the GPU: it {}, which needs a number, not an expression \
             (choose with `RealScalar::max`, `abs` or `RealScalar::select_positive` instead of a comparison)",
            self.0
        )
    }
}

/// The operations recorded by one evaluation, and which of them are the results.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Expression {
    pub(crate) nodes: Vec<Node>,
    pub(crate) outputs: Vec<NodeId>,
}

impl Expression {
    /// A stable 64-bit hash (FNV-1a) of the nodes and the outputs, field by field:
    /// equal formulas hash alike, in every process.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        let mut write = |word: u64| {
            for byte in word.to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for node in &self.nodes {
            let words: [u64; 3] = match *node {
                Node::Input(k) => [0, k as u64, 0],
                Node::Param(k) => [1, k as u64, 0],
                Node::Constant(value) => [2, value.to_bits(), 0],
                Node::Unary(op, x) => [3, op as u64, u64::from(x)],
                Node::Binary(op, a, b) => [4, op as u64, u64::from(a) | u64::from(b) << 32],
                Node::Powi(x, n) => [5, u64::from(x), n as u32 as u64],
                Node::WherePositive { condition, value } => [6, u64::from(condition), u64::from(value)],
                Node::WhereFinite { condition, finite, otherwise } => {
                    [7, u64::from(condition), u64::from(finite) | u64::from(otherwise) << 32]
                }
                Node::Select { condition, positive, otherwise } => {
                    [9, u64::from(condition), u64::from(positive) | u64::from(otherwise) << 32]
                }
            };
            words.into_iter().for_each(&mut write);
        }
        write(8);
        self.outputs.iter().for_each(|&output| write(u64::from(output)));
        hash
    }
}

impl Expression {
    /// The first output recorded again on symbols, with `inputs` and `params` for the
    /// expression's inputs and parameters: the formula substituted into the one being
    /// recorded.
    pub(crate) fn replay(&self, inputs: &[Sym], params: &[Sym]) -> Sym {
        let mut symbols: Vec<Sym> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let at = |id: NodeId| symbols[id as usize].0;
            let symbol = match *node {
                Node::Input(k) => inputs[k],
                Node::Param(k) => params[k],
                Node::Constant(value) => Sym::push(Node::Constant(value)),
                Node::Unary(op, a) => Sym::push(Node::Unary(op, at(a))),
                Node::Binary(op, a, b) => Sym::push(Node::Binary(op, at(a), at(b))),
                Node::Powi(a, n) => Sym::push(Node::Powi(at(a), n)),
                Node::WherePositive { condition, value } => {
                    Sym::push(Node::WherePositive { condition: at(condition), value: at(value) })
                }
                Node::WhereFinite { condition, finite, otherwise } => Sym::push(Node::WhereFinite {
                    condition: at(condition),
                    finite: at(finite),
                    otherwise: at(otherwise),
                }),
                Node::Select { condition, positive, otherwise } => Sym::push(Node::Select {
                    condition: at(condition),
                    positive: at(positive),
                    otherwise: at(otherwise),
                }),
            };
            symbols.push(symbol);
        }
        symbols[self.outputs[0] as usize]
    }
}

#[cfg(test)]
impl Expression {
    /// The outputs' values for these inputs and parameters, computed on the host as
    /// the generated CUDA C computes them: a check of what was recorded.
    pub(crate) fn evaluate(&self, inputs: &[f64], params: &[f64]) -> Vec<f64> {
        let mut values: Vec<f64> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let v = |id: NodeId| values[id as usize];
            let value = match *node {
                Node::Input(k) => inputs[k],
                Node::Param(k) => params[k],
                Node::Constant(c) => c,
                Node::Unary(op, a) => match op {
                    UnaryOp::Neg => -v(a),
                    UnaryOp::Abs => v(a).abs(),
                    UnaryOp::Exp => v(a).exp(),
                    UnaryOp::Ln => v(a).ln(),
                    UnaryOp::Sin => v(a).sin(),
                    UnaryOp::Cos => v(a).cos(),
                    UnaryOp::Tanh => v(a).tanh(),
                    UnaryOp::Sqrt => v(a).sqrt(),
                    UnaryOp::Sinh => v(a).sinh(),
                    UnaryOp::Cosh => v(a).cosh(),
                    UnaryOp::Erf => RealScalar::erf(v(a)),
                    UnaryOp::Erfc => RealScalar::erfc(v(a)),
                    UnaryOp::Floor => RealScalar::floor(v(a)),
                    UnaryOp::Ceil => RealScalar::ceil(v(a)),
                    UnaryOp::Round => RealScalar::round(v(a)),
                    UnaryOp::Trunc => RealScalar::trunc(v(a)),
                },
                Node::Binary(op, a, b) => match op {
                    BinaryOp::Add => v(a) + v(b),
                    BinaryOp::Sub => v(a) - v(b),
                    BinaryOp::Mul => v(a) * v(b),
                    BinaryOp::Div => v(a) / v(b),
                    BinaryOp::Rem => v(a) % v(b),
                    BinaryOp::Pow => v(a).powf(v(b)),
                    BinaryOp::Max => RealScalar::max(v(a), v(b)),
                    BinaryOp::Atan2 => v(a).atan2(v(b)),
                    BinaryOp::Hypot => v(a).hypot(v(b)),
                },
                Node::Powi(a, n) => v(a).powi(n),
                Node::WherePositive { condition, value } => {
                    if v(condition) > 0.0 {
                        v(value)
                    } else {
                        0.0
                    }
                }
                Node::WhereFinite { condition, finite, otherwise } => {
                    if v(condition).is_finite() {
                        v(finite)
                    } else {
                        v(otherwise)
                    }
                }
                Node::Select { condition, positive, otherwise } => {
                    if v(condition) > 0.0 {
                        v(positive)
                    } else {
                        v(otherwise)
                    }
                }
            };
            values.push(value);
        }
        self.outputs.iter().map(|&id| values[id as usize]).collect()
    }
}

struct Recording {
    nodes: Vec<Node>,
    unrecordable: Option<&'static str>,
}

std::thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// A real scalar that records what is computed with it (see the module docs).
#[derive(Clone, Copy)]
pub struct Sym(NodeId);

impl Sym {
    fn push(node: Node) -> Sym {
        RECORDING.with_borrow_mut(|recording| {
            let recording = recording.as_mut().expect("a symbolic scalar is used only inside `record`");
            recording.nodes.push(node);
            Sym((recording.nodes.len() - 1) as NodeId)
        })
    }

    fn node(self) -> Node {
        RECORDING.with_borrow(|recording| {
            recording.as_ref().expect("a symbolic scalar is used only inside `record`").nodes[self.0 as usize]
        })
    }

    fn unrecordable(what: &'static str) {
        RECORDING.with_borrow_mut(|recording| {
            if let Some(recording) = recording.as_mut() {
                recording.unrecordable.get_or_insert(what);
            }
        })
    }

    /// A constant.
    pub(crate) fn constant(value: f64) -> Sym {
        Sym::push(Node::Constant(value))
    }

    /// `value` where `self > 0`, else 0.
    pub(crate) fn where_positive(self, value: Sym) -> Sym {
        Sym::push(Node::WherePositive { condition: self.0, value: value.0 })
    }

    /// `finite` where `self` is finite, else `otherwise`.
    pub(crate) fn where_finite(self, finite: Sym, otherwise: Sym) -> Sym {
        Sym::push(Node::WhereFinite { condition: self.0, finite: finite.0, otherwise: otherwise.0 })
    }

    fn unary(self, op: UnaryOp) -> Sym {
        Sym::push(Node::Unary(op, self.0))
    }

    fn binary(self, op: BinaryOp, rhs: Sym) -> Sym {
        Sym::push(Node::Binary(op, self.0, rhs.0))
    }
}

/// Evaluates `f` on `inputs` symbolic elementwise inputs and `params` symbolic scalar
/// parameters, and returns the expression of its results.
pub(crate) fn record(
    inputs: usize,
    params: usize,
    f: impl FnOnce(&[Sym], &[Sym]) -> Vec<Sym>,
) -> Result<Expression, Unrecordable> {
    RECORDING
        .with_borrow_mut(|recording| *recording = Some(Recording { nodes: Vec::new(), unrecordable: None }));
    let input_syms: Vec<Sym> = (0..inputs).map(|k| Sym::push(Node::Input(k))).collect();
    let param_syms: Vec<Sym> = (0..params).map(|k| Sym::push(Node::Param(k))).collect();
    let outputs = f(&input_syms, &param_syms);
    let recording = RECORDING.with_borrow_mut(Option::take).expect("the recording is still open");
    match recording.unrecordable {
        Some(what) => Err(Unrecordable(what)),
        None => Ok(Expression { nodes: recording.nodes, outputs: outputs.iter().map(|s| s.0).collect() }),
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl Sym {
    /// The value when the symbol is a constant.
    fn constant_value(self) -> Option<f64> {
        match self.node() {
            Node::Constant(value) => Some(value),
            _ => None,
        }
    }

    /// The ordering of two constants; any comparison that involves a value only known
    /// when the kernel runs is reported (even of a symbol with itself: `x != x` is a
    /// NaN test, true for some elements and false for others).
    fn compare(self, other: Sym) -> Option<Ordering> {
        match (self.constant_value(), other.constant_value()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => {
                Sym::unrecordable("compares values");
                None
            }
        }
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Sym) -> bool {
        self.compare(*other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Sym) -> Option<Ordering> {
        self.compare(*other)
    }
}

macro_rules! binary_operators {
    ($($Trait:ident $method:ident $Assign:ident $assign:ident => $op:ident;)*) => {$(
        impl $Trait for Sym {
            type Output = Sym;
            fn $method(self, rhs: Sym) -> Sym {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $Assign for Sym {
            fn $assign(&mut self, rhs: Sym) {
                *self = self.binary(BinaryOp::$op, rhs);
            }
        }
    )*};
}

binary_operators! {
    Add add AddAssign add_assign => Add;
    Sub sub SubAssign sub_assign => Sub;
    Mul mul MulAssign mul_assign => Mul;
    Div div DivAssign div_assign => Div;
    Rem rem RemAssign rem_assign => Rem;
}

impl Neg for Sym {
    type Output = Sym;
    fn neg(self) -> Sym {
        self.unary(UnaryOp::Neg)
    }
}

impl Zero for Sym {
    fn zero() -> Sym {
        Sym::constant(0.0)
    }
    fn is_zero(&self) -> bool {
        *self == Sym::zero()
    }
}

impl One for Sym {
    fn one() -> Sym {
        Sym::constant(1.0)
    }
}

impl Num for Sym {
    type FromStrRadixErr = Unrecordable;
    fn from_str_radix(_: &str, _: u32) -> Result<Sym, Unrecordable> {
        Sym::unrecordable("parses a number from text");
        Err(Unrecordable("parses a number from text"))
    }
}

impl Scalar for Sym {
    type Real = Sym;
    const IS_COMPLEX: bool = false;

    fn from_real(re: Sym) -> Sym {
        re
    }
    fn from_parts(re: Sym, _im: Sym) -> Sym {
        re
    }
    fn conj(self) -> Sym {
        self
    }
    fn re(self) -> Sym {
        self
    }
    fn im(self) -> Sym {
        Sym::zero()
    }
    fn abs(self) -> Sym {
        self.unary(UnaryOp::Abs)
    }
    fn norm_sqr(self) -> Sym {
        self * self
    }
    fn exp(self) -> Sym {
        self.unary(UnaryOp::Exp)
    }
    fn ln(self) -> Sym {
        self.unary(UnaryOp::Ln)
    }
    fn sin(self) -> Sym {
        self.unary(UnaryOp::Sin)
    }
    fn cos(self) -> Sym {
        self.unary(UnaryOp::Cos)
    }
    fn tanh(self) -> Sym {
        self.unary(UnaryOp::Tanh)
    }
    fn sqrt(self) -> Sym {
        self.unary(UnaryOp::Sqrt)
    }
    fn powi(self, n: i32) -> Sym {
        Sym::push(Node::Powi(self.0, n))
    }
    fn powf(self, p: Sym) -> Sym {
        self.binary(BinaryOp::Pow, p)
    }
}

/// A complex number of symbols: num-complex's own arithmetic records both parts, and
/// the functions are num-complex's formulas for finite arguments (`ln` = ln|z| +
/// i·arg z, `sin` and `cos` through sinh and cosh of the parts, `powi` by repeated
/// squaring, `sqrt` and `powf` through the polar form) but for `exp`, `tanh` and the
/// sigmoid, which are the host's own overflow-free formulas. So
/// the host's generic definitions ([`Elementary::apply`], [`Elementary::derivative`])
/// record complex kernels too. One difference: on the real axis `sqrt` keeps the
/// polar form where the host has exact special cases, so √(−r) has a real part of
/// √r·cos(π/2) — about −4e-8·√r in `f32`, 6e-17·√r in `f64` — instead of 0.
///
/// Its `Display`, `PartialEq` and `Zero::is_zero` (num-complex's) compare parts, which
/// a recording cannot do: they serve nothing on the recorded path.
///
/// [`Elementary::apply`]: crate::ops::elementwise::Elementary::apply
/// [`Elementary::derivative`]: crate::ops::elementwise::Elementary::derivative
impl Scalar for Complex<Sym> {
    type Real = Sym;
    const IS_COMPLEX: bool = true;

    fn from_real(re: Sym) -> Self {
        Complex::new(re, Sym::zero())
    }
    fn from_parts(re: Sym, im: Sym) -> Self {
        Complex::new(re, im)
    }
    fn conj(self) -> Self {
        Complex::conj(&self)
    }
    fn re(self) -> Sym {
        self.re
    }
    fn im(self) -> Sym {
        self.im
    }
    fn abs(self) -> Sym {
        self.re.binary(BinaryOp::Hypot, self.im)
    }
    fn norm_sqr(self) -> Sym {
        Complex::norm_sqr(&self)
    }
    fn exp(self) -> Self {
        let (re, im) = complex_exp(self.re, self.im);
        Complex::new(re, im)
    }
    fn ln(self) -> Self {
        Complex::new(self.abs().ln(), argument(self))
    }
    fn sin(self) -> Self {
        Complex::new(self.re.sin() * self.im.cosh(), self.re.cos() * self.im.sinh())
    }
    fn cos(self) -> Self {
        Complex::new(self.re.cos() * self.im.cosh(), -self.re.sin() * self.im.sinh())
    }
    fn tanh(self) -> Self {
        let (re, im) = complex_tanh(self.re, self.im);
        Complex::new(re, im)
    }
    fn sqrt(self) -> Self {
        polar(self.abs().sqrt(), argument(self) / Sym::constant(2.0))
    }
    fn powi(self, n: i32) -> Self {
        Complex::powi(&self, n)
    }
    fn powf(self, p: Sym) -> Self {
        polar(self.abs().powf(p), argument(self) * p)
    }
    fn sigmoid(self) -> Self {
        let (re, im) = complex_sigmoid(self.re, self.im);
        Complex::new(re, im)
    }
}

/// r·(cos θ + i·sin θ), as num-complex's `from_polar`.
fn polar(r: Sym, theta: Sym) -> Complex<Sym> {
    Complex::new(r * theta.cos(), r * theta.sin())
}

/// The principal argument atan2(im, re), as num-complex's `arg`.
fn argument(z: Complex<Sym>) -> Sym {
    z.im.binary(BinaryOp::Atan2, z.re)
}

impl Sym {
    fn sinh(self) -> Sym {
        self.unary(UnaryOp::Sinh)
    }
    fn cosh(self) -> Sym {
        self.unary(UnaryOp::Cosh)
    }
}

#[diagnostic::do_not_recommend]
impl RealScalar for Sym {
    type Complex = Complex<Sym>;
    fn from_f64(x: f64) -> Sym {
        Sym::constant(x)
    }
    fn to_f64(self) -> f64 {
        Sym::unrecordable("converts a value to `f64`");
        f64::NAN
    }
    fn neg_infinity() -> Sym {
        Sym::constant(f64::NEG_INFINITY)
    }
    fn max(self, other: Sym) -> Sym {
        self.binary(BinaryOp::Max, other)
    }
    fn epsilon() -> Sym {
        Sym::unrecordable("asks for the machine epsilon, which depends on the element type");
        Sym::constant(f64::NAN)
    }
    fn min_positive() -> Sym {
        Sym::unrecordable("asks for the smallest positive normal value, which depends on the element type");
        Sym::constant(f64::NAN)
    }
    fn erf(self) -> Sym {
        self.unary(UnaryOp::Erf)
    }
    fn erfc(self) -> Sym {
        self.unary(UnaryOp::Erfc)
    }
    fn floor(self) -> Sym {
        self.unary(UnaryOp::Floor)
    }
    fn ceil(self) -> Sym {
        self.unary(UnaryOp::Ceil)
    }
    fn round(self) -> Sym {
        self.unary(UnaryOp::Round)
    }
    fn trunc(self) -> Sym {
        self.unary(UnaryOp::Trunc)
    }
    fn atan2(self, other: Sym) -> Sym {
        self.binary(BinaryOp::Atan2, other)
    }
    fn hypot(self, other: Sym) -> Sym {
        self.binary(BinaryOp::Hypot, other)
    }
    fn select_positive(condition: Sym, positive: Sym, otherwise: Sym) -> Sym {
        Sym::push(Node::Select { condition: condition.0, positive: positive.0, otherwise: otherwise.0 })
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;
    use std::vec;

    use super::*;
    use crate::ops::elementwise::Elementary;

    #[test]
    fn records_the_generic_definition() {
        let expression = record(1, 0, |x, _| vec![Elementary::<Sym>::Sigmoid.apply(x[0])]).unwrap();
        // 1 / (1 + exp(-x)): input, one, neg, exp, add, one... in evaluation order.
        let ops: Vec<_> =
            expression.nodes.iter().filter(|n| matches!(n, Node::Unary(..) | Node::Binary(..))).collect();
        assert_eq!(ops.len(), 4, "{:?}", expression.nodes);
        assert!(matches!(
            expression.nodes[*expression.outputs.first().unwrap() as usize],
            Node::Binary(BinaryOp::Div, ..)
        ));
    }

    #[test]
    fn fingerprints_tell_formulas_apart_and_repeat_for_the_same_one() {
        let fingerprint = |f: fn(&[Sym]) -> Sym| record(2, 0, |x, _| vec![f(x)]).unwrap().fingerprint();
        let a = fingerprint(|x| x[0] - x[1] * Sym::constant(2.0));
        assert_eq!(a, fingerprint(|x| x[0] - x[1] * Sym::constant(2.0)));
        for other in [
            fingerprint(|x| x[1] - x[0] * Sym::constant(2.0)),
            fingerprint(|x| x[0] - x[1] * Sym::constant(3.0)),
            fingerprint(|x| x[0] + x[1] * Sym::constant(2.0)),
            fingerprint(|x| x[0] - x[1].powi(2)),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn comparisons_are_reported() {
        let error = record(2, 0, |x, _| vec![if x[0] < x[1] { x[0] } else { x[1] }]).unwrap_err();
        assert_eq!(error, Unrecordable("compares values"));
        // A NaN test compares a value with itself: also only known when it runs.
        let nan_test = record(1, 0, |x, _| vec![if x[0] != x[0] { Sym::zero() } else { x[0] }]);
        assert_eq!(nan_test.unwrap_err(), Unrecordable("compares values"));
        // Constants compare exactly.
        let constants = record(1, 0, |x, _| {
            vec![if Sym::constant(1.0) < Sym::constant(2.0) { x[0] } else { Sym::zero() }]
        });
        assert!(constants.is_ok());
        assert!(error.to_string().contains("RealScalar::max"));
    }
}
