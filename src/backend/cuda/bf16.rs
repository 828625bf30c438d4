//! `f32` values rounded to bfloat16 for cuBLAS's BF16 tensor cores
//! ([`MatmulPrecision::Bf16`](super::MatmulPrecision::Bf16)): the upper 16 bits of
//! each `f32`, rounded to nearest with ties to even (NaN stays NaN), packed two to an
//! `f32` slot of the output buffer.

use std::format;
use std::string::String;

use super::codegen::CType;
use super::{BufferArg, CudaElement, CudaError, Runner, grid_stride_launch};

/// The kernel's name.
const NAME: &str = "round_to_bf16_float";

/// `round_to_bf16_float(x, out, n)`: element e of `x` as bf16 at position e of `out`
/// (a buffer of ⌈n/2⌉ `f32` slots, read as 16-bit values).
pub(super) fn source() -> String {
    format!(
        "extern \"C\" __global__ void {NAME}(const float* __restrict__ x, unsigned short* __restrict__ out, const unsigned long long n) {{
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned int bits = __float_as_uint(x[e]);
        if ((bits & 0x7fffffffu) > 0x7f800000u) {{
            out[e] = (unsigned short)((bits >> 16) | 0x40u);
        }} else {{
            out[e] = (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
        }}
    }}
}}
"
    )
}

/// Every kernel here, as `(name, CUDA C)`: for the offline check (`f32` only).
pub(super) fn sources(ctype: CType) -> std::vec::Vec<(String, String)> {
    match ctype {
        CType::F32 => std::vec![(NAME.into(), source())],
        CType::F64 => std::vec![],
    }
}

/// The first `n` elements of `x` rounded to bf16, packed into a new buffer of
/// ⌈n/2⌉ elements.
///
/// # Panics
/// When `T` is not `f32` or `x` holds fewer than `n` elements.
pub(super) fn round_to_bf16_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    n: usize,
) -> Result<R::Buffer, CudaError> {
    assert!(T::C_TYPE == CType::F32, "bf16 rounding takes f32 elements");
    assert!(R::len(x) >= n, "round_to_bf16: {} elements for {n}", R::len(x));
    let mut packed = runner.buffer(n.div_ceil(2), false)?;
    if n == 0 {
        return Ok(packed);
    }
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(&mut packed)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `source`'s parameter list for f32 elements (checked above); `x` holds n
    // elements and `packed` the ⌈n/2⌉ slots that n 16-bit values take.
    unsafe { runner.launch(NAME, &|| Ok(source()), &mut buffers, &[], &[n as u64], config) }?;
    Ok(packed)
}
