//! The cuBLAS calls fluxion makes, answered on the host: strided batched products
//! (`cublasGemmStridedBatchedEx`) of `f32`, `f64`, their complex forms and bf16
//! operands, summed in `f64` (a bf16 operand is the upper half of an `f32`). Under
//! the TF32 math mode, `f32` and `Complex32` operands are first rounded to TF32's
//! 10-bit mantissa (to nearest, ties to even), as tensor cores read them.

use core::ffi::{c_int, c_longlong, c_uint, c_void};

/// `cublasStatus_t`.
type Status = c_uint;
const SUCCESS: Status = 0;
const INVALID_VALUE: Status = 7;
const NOT_SUPPORTED: Status = 15;
/// `CUBLAS_TF32_TENSOR_OP_MATH`.
const TF32_MATH: c_uint = 3;

/// A cuBLAS handle (opaque to callers): its math mode.
pub struct Handle {
    math_mode: c_uint,
}

/// `cublasCreate_v2`.
///
/// # Safety
/// `handle` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cublasCreate_v2(handle: *mut *mut Handle) -> Status {
    if handle.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: the caller's contract.
    unsafe { handle.write(Box::into_raw(Box::new(Handle { math_mode: 0 }))) };
    SUCCESS
}

/// `cublasDestroy_v2`.
///
/// # Safety
/// `handle` came from [`cublasCreate_v2`] and is destroyed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cublasDestroy_v2(handle: *mut Handle) -> Status {
    // SAFETY: the caller's contract: a box made by `cublasCreate_v2`.
    drop(unsafe { Box::from_raw(handle) });
    SUCCESS
}

/// `cublasSetStream_v2`: every stream is the same here.
#[unsafe(no_mangle)]
pub extern "C" fn cublasSetStream_v2(_handle: *mut Handle, _stream: *mut c_void) -> Status {
    SUCCESS
}

/// `cublasSetMathMode`.
///
/// # Safety
/// `handle` came from [`cublasCreate_v2`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cublasSetMathMode(handle: *mut Handle, mode: c_uint) -> Status {
    // SAFETY: the caller's contract.
    let Some(handle) = (unsafe { handle.as_mut() }) else { return INVALID_VALUE };
    handle.math_mode = mode;
    SUCCESS
}

/// How elements of one of cuBLAS's data types are read and written.
#[derive(Clone, Copy, PartialEq)]
enum Element {
    F32,
    F64,
    C32,
    C64,
    Bf16,
}

impl Element {
    /// `cudaDataType`'s value.
    fn of(data_type: c_uint) -> Option<Element> {
        Some(match data_type {
            0 => Element::F32,
            1 => Element::F64,
            4 => Element::C32,
            5 => Element::C64,
            14 => Element::Bf16,
            _ => return None,
        })
    }

    /// Element `index` of `base` as (re, im).
    ///
    /// # Safety
    /// `base` holds more than `index` elements of this type.
    unsafe fn read(self, base: *const c_void, index: usize) -> (f64, f64) {
        // SAFETY: the caller's contract.
        unsafe {
            match self {
                Element::F32 => (f64::from(base.cast::<f32>().add(index).read_unaligned()), 0.0),
                Element::F64 => (base.cast::<f64>().add(index).read_unaligned(), 0.0),
                Element::C32 => {
                    let parts = base.cast::<f32>().add(2 * index);
                    (f64::from(parts.read_unaligned()), f64::from(parts.add(1).read_unaligned()))
                }
                Element::C64 => {
                    let parts = base.cast::<f64>().add(2 * index);
                    (parts.read_unaligned(), parts.add(1).read_unaligned())
                }
                Element::Bf16 => {
                    let bits = u32::from(base.cast::<u16>().add(index).read_unaligned()) << 16;
                    (f64::from(f32::from_bits(bits)), 0.0)
                }
            }
        }
    }

    /// Writes (re, im) as element `index` of `base` (a real type drops `im`).
    ///
    /// # Safety
    /// `base` holds more than `index` elements of this type; not bf16.
    unsafe fn write(self, base: *mut c_void, index: usize, (re, im): (f64, f64)) {
        // SAFETY: the caller's contract.
        unsafe {
            match self {
                Element::F32 => base.cast::<f32>().add(index).write_unaligned(re as f32),
                Element::F64 => base.cast::<f64>().add(index).write_unaligned(re),
                Element::C32 => {
                    let parts = base.cast::<f32>().add(2 * index);
                    parts.write_unaligned(re as f32);
                    parts.add(1).write_unaligned(im as f32);
                }
                Element::C64 => {
                    let parts = base.cast::<f64>().add(2 * index);
                    parts.write_unaligned(re);
                    parts.add(1).write_unaligned(im);
                }
                Element::Bf16 => unreachable!("bf16 results are not supported"),
            }
        }
    }
}

/// `x` rounded to TF32: 10 of `f32`'s 23 mantissa bits, to nearest, ties to even.
fn tf32(x: f64) -> f64 {
    let x = x as f32;
    if !x.is_finite() {
        return f64::from(x);
    }
    let bits = x.to_bits();
    let rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & !0x1FFF;
    f64::from(f32::from_bits(rounded))
}

fn times((a, b): (f64, f64), (c, d): (f64, f64)) -> (f64, f64) {
    (a * c - b * d, a * d + b * c)
}

/// One operand of a product: its memory, type, operation (`N`, `T` or `C`), leading
/// dimension and batch stride.
struct Operand {
    base: *const c_void,
    element: Element,
    operation: c_uint,
    leading: usize,
    stride: usize,
    /// Whether elements are rounded to TF32 as they are read.
    tf32: bool,
}

impl Operand {
    /// op(M)(row, column) of matrix `batch`.
    ///
    /// # Safety
    /// The matrix holds that element (cuBLAS's contract on the call).
    unsafe fn at(&self, batch: usize, row: usize, column: usize) -> (f64, f64) {
        let index = match self.operation {
            0 => row + column * self.leading,
            _ => column + row * self.leading,
        };
        // SAFETY: the caller's contract.
        let (re, im) = unsafe { self.element.read(self.base, batch * self.stride + index) };
        let (re, im) = if self.tf32 { (tf32(re), tf32(im)) } else { (re, im) };
        if self.operation == 2 { (re, -im) } else { (re, im) }
    }
}

/// `cublasGemmStridedBatchedEx`: C = α·op(A)·op(B) + β·C for each of `batch` column-major
/// matrices (C is not read where β is 0). A and B share a type; C is `f32`, `f64` or
/// complex; α and β have C's type.
///
/// # Safety
/// cuBLAS's contract: the matrices hold the elements their sizes, leading dimensions
/// and strides address; α and β point to values of C's type.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // cuBLAS's signature
pub unsafe extern "C" fn cublasGemmStridedBatchedEx(
    handle: *mut Handle,
    transa: c_uint,
    transb: c_uint,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: *const c_void,
    a: *const c_void,
    a_type: c_uint,
    lda: c_int,
    stride_a: c_longlong,
    b: *const c_void,
    b_type: c_uint,
    ldb: c_int,
    stride_b: c_longlong,
    beta: *const c_void,
    c: *mut c_void,
    c_type: c_uint,
    ldc: c_int,
    stride_c: c_longlong,
    batch: c_int,
    compute_type: c_uint,
    _algorithm: c_int,
) -> Status {
    let size = |x: c_int| usize::try_from(x).ok();
    let stride = |x: c_longlong| usize::try_from(x).ok();
    let (Some(m), Some(n), Some(k), Some(lda), Some(ldb), Some(ldc), Some(batch)) =
        (size(m), size(n), size(k), size(lda), size(ldb), size(ldc), size(batch))
    else {
        return INVALID_VALUE;
    };
    let (Some(stride_a), Some(stride_b), Some(stride_c)) =
        (stride(stride_a), stride(stride_b), stride(stride_c))
    else {
        return INVALID_VALUE;
    };
    let (Some(a_element), Some(b_element), Some(c_element)) =
        (Element::of(a_type), Element::of(b_type), Element::of(c_type))
    else {
        return NOT_SUPPORTED;
    };
    // cuBLAS's pairs of operand and result types: alike, or bf16 operands for f32.
    let supported = a_element == b_element
        && (a_element == c_element || (a_element == Element::Bf16 && c_element == Element::F32));
    // Sums in the operands' precision: CUBLAS_COMPUTE_32F (or its TF32 form) for
    // f32, Complex32 and bf16, CUBLAS_COMPUTE_64F for f64 and Complex64.
    let single = matches!(a_element, Element::F32 | Element::C32 | Element::Bf16);
    let compute_matches = if single { matches!(compute_type, 68 | 77) } else { compute_type == 70 };
    if !supported || !compute_matches {
        return NOT_SUPPORTED;
    }
    // Each stored matrix's rows (column-major): op(A) is m×k, op(B) k×n.
    let rows =
        |operation: c_uint, plain: usize, transposed: usize| if operation == 0 { plain } else { transposed };
    if transa > 2
        || transb > 2
        || lda < rows(transa, m, k).max(1)
        || ldb < rows(transb, k, n).max(1)
        || ldc < m.max(1)
    {
        return INVALID_VALUE;
    }
    // SAFETY: the handle came from `cublasCreate_v2` (the caller's contract).
    let Some(handle) = (unsafe { handle.as_ref() }) else { return INVALID_VALUE };
    let tf32 = (handle.math_mode == TF32_MATH || compute_type == 77)
        && matches!(a_element, Element::F32 | Element::C32);
    let a = Operand { base: a, element: a_element, operation: transa, leading: lda, stride: stride_a, tf32 };
    let b = Operand { base: b, element: b_element, operation: transb, leading: ldb, stride: stride_b, tf32 };
    // SAFETY: α and β have C's type (the caller's contract).
    let (alpha, beta) = unsafe { (c_element.read(alpha, 0), c_element.read(beta, 0)) };
    for batch in 0..batch {
        for column in 0..n {
            for row in 0..m {
                let mut total = (0.0, 0.0);
                for l in 0..k {
                    // SAFETY: op(A) is m×k and op(B) k×n (the caller's contract).
                    let (x, y) = unsafe { (a.at(batch, row, l), b.at(batch, l, column)) };
                    let product = times(x, y);
                    total = (total.0 + product.0, total.1 + product.1);
                }
                let index = batch * stride_c + row + column * ldc;
                let mut result = times(alpha, total);
                if beta != (0.0, 0.0) {
                    // SAFETY: C is m×n (the caller's contract).
                    let before = times(beta, unsafe { c_element.read(c, index) });
                    result = (result.0 + before.0, result.1 + before.1);
                }
                // SAFETY: as above.
                unsafe { c_element.write(c, index, result) };
            }
        }
    }
    SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf32_keeps_ten_mantissa_bits_rounding_to_nearest_even() {
        let step = 2f64.powi(-10);
        assert_eq!(tf32(1.0 + step), 1.0 + step);
        assert_eq!(tf32(1.0 + step / 2.0), 1.0); // a tie, to the even neighbour
        assert_eq!(tf32(1.0 + 3.0 * step / 2.0), 1.0 + 2.0 * step); // a tie, to even
        assert_eq!(tf32(1.0 + step * 0.6), 1.0 + step);
        assert!(tf32(f64::NAN).is_nan());
        assert_eq!(tf32(f64::from(f32::MAX)), f64::INFINITY);
    }

    /// C = α·op(A)·op(B) + β·C for two batches of column-major complex matrices,
    /// against the sums written out.
    #[test]
    fn strided_batched_complex_products_follow_the_flags() {
        let (m, n, k) = (2usize, 3usize, 4usize);
        let value =
            |seed: usize| [((seed * 7 % 11) as f64 - 5.0) / 4.0, ((seed * 5 % 13) as f64 - 6.0) / 4.0];
        // A stored k×m (op C: its conjugate transpose is m×k), B stored k×n (op N).
        let a: Vec<[f64; 2]> = (0..2 * k * m).map(value).collect();
        let b: Vec<[f64; 2]> = (0..2 * k * n).map(|i| value(i + 100)).collect();
        let before: Vec<[f64; 2]> = (0..2 * m * n).map(|i| value(i + 200)).collect();
        let mut c = before.clone();
        let (alpha, beta) = ([0.5, -1.0], [2.0, 0.0]);
        let int = |x: usize| x as c_int;
        let mut handle = core::ptr::null_mut();
        // SAFETY: every buffer holds the matrices the sizes, leading dimensions and
        // strides address; α and β are Complex64 like C.
        let status = unsafe {
            cublasCreate_v2(&mut handle);
            let status = cublasGemmStridedBatchedEx(
                handle,
                2,
                0,
                int(m),
                int(n),
                int(k),
                alpha.as_ptr().cast(),
                a.as_ptr().cast(),
                5,
                int(k),
                (k * m) as c_longlong,
                b.as_ptr().cast(),
                5,
                int(k),
                (k * n) as c_longlong,
                beta.as_ptr().cast(),
                c.as_mut_ptr().cast(),
                5,
                int(m),
                (m * n) as c_longlong,
                2,
                70, // CUBLAS_COMPUTE_64F
                -1,
            );
            cublasDestroy_v2(handle);
            status
        };
        assert_eq!(status, SUCCESS);
        for batch in 0..2 {
            for (i, j) in (0..m).flat_map(|i| (0..n).map(move |j| (i, j))) {
                let mut total = (0.0, 0.0);
                for l in 0..k {
                    let [ar, ai] = a[batch * k * m + l + i * k];
                    let [br, bi] = b[batch * k * n + l + j * k];
                    total.0 += ar * br + ai * bi; // conj(a)·b
                    total.1 += ar * bi - ai * br;
                }
                let index = batch * m * n + i + j * m;
                let expected = times((alpha[0], alpha[1]), total);
                let expected = (expected.0 + 2.0 * before[index][0], expected.1 + 2.0 * before[index][1]);
                let got = c[index];
                assert!(
                    (got[0] - expected.0).abs() < 1e-12 && (got[1] - expected.1).abs() < 1e-12,
                    "{got:?}"
                );
            }
        }
    }
}
