//! The GPU: one context and stream per process, cuBLAS, and the cache of compiled
//! kernels.

use std::borrow::Cow;
use std::boxed::Box;
use std::collections::HashMap;
use std::format;
use std::string::{String, ToString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::vec::Vec;

use cudarc::cublas::{CudaBlas, GemmConfig, StridedBatchedConfig, sys as cublas_sys};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, LaunchArgs,
    LaunchConfig, ValidAsZeroBits, sys as driver_sys,
};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::codegen::CType;
use num_complex::Complex;

use super::Cuda;
use crate::autodiff::Var;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// What went wrong on the GPU, with CUDA's own name for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CudaError {
    /// No GPU can be used: the CUDA libraries are missing or no device answers.
    Unavailable(String),
    /// A CUDA driver call failed (the name is CUDA's, e.g. `CUDA_ERROR_OUT_OF_MEMORY`).
    Driver(String),
    /// NVRTC rejected a generated kernel; the log is the compiler's.
    Compile {
        /// The kernel's name.
        kernel: String,
        /// NVRTC's message and log.
        log: String,
    },
    /// A cuBLAS call failed (e.g. `CUBLAS_STATUS_NOT_SUPPORTED`).
    Blas(String),
    /// A function given for a kernel cannot be evaluated symbolically.
    Unrecordable(String),
}

impl core::fmt::Display for CudaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CudaError::Unavailable(why) => write!(f, "no CUDA device can be used: {why}"),
            CudaError::Driver(error) => write!(f, "CUDA driver error: {error}"),
            CudaError::Compile { kernel, log } => {
                write!(f, "NVRTC could not compile kernel `{kernel}`: {log}")
            }
            CudaError::Blas(error) => write!(f, "cuBLAS error: {error}"),
            CudaError::Unrecordable(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for CudaError {}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(error: cudarc::driver::DriverError) -> Self {
        CudaError::Driver(format!("{error:?}"))
    }
}

impl From<cudarc::cublas::result::CublasError> for CudaError {
    fn from(error: cudarc::cublas::result::CublasError) -> Self {
        CudaError::Blas(format!("{:?}", error.0))
    }
}

/// Unwraps a GPU result in an operation that is infallible by design (an operator, a
/// `Clone`), panicking with the CUDA error's message.
#[track_caller]
pub(crate) fn or_panic_cuda<T>(result: Result<T, CudaError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    }
}

mod sealed {
    /// Only `f32`, `f64`, `Complex32` and `Complex64` live on the GPU: kernels and
    /// cuBLAS read a buffer's parts as the C type [`CudaElement::C_TYPE`](super::CudaElement::C_TYPE)
    /// names, two to a complex number.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for num_complex::Complex<f32> {}
    impl Sealed for num_complex::Complex<f64> {}
}

/// The element types of `Tensor<T, S, Cuda>`: `f32`, `f64`, [`Complex32`](crate::Complex32)
/// and [`Complex64`](crate::Complex64) (sealed). GPU memory holds each element as
/// [`CudaScalar::PARTS`] real numbers of type [`CudaScalar::Part`]: a complex number
/// as its real part, then its imaginary part (CUDA's `cuComplex` layout).
pub trait CudaScalar: sealed::Sealed + Scalar {
    /// The real type of each part: `f32` for `f32` and `Complex32`.
    type Part: CudaElement;

    /// Real numbers per element: 1, or 2 for a complex number.
    const PARTS: usize;

    /// cuBLAS's name for the element type.
    #[doc(hidden)]
    const BLAS_TYPE: cublas_sys::cudaDataType;

    /// The elements as their parts, in memory order.
    #[doc(hidden)]
    fn to_parts(elements: &[Self]) -> Cow<'_, [Self::Part]>;

    /// Elements from their parts, in memory order.
    #[doc(hidden)]
    fn elements_from_parts(parts: Vec<Self::Part>) -> Vec<Self>;

    /// `a`·`factor` on the GPU: the real scaling kernel, or the complex one (a real
    /// factor scales each part, in the fused elementwise chain).
    #[doc(hidden)]
    fn scale_on_device<S: Shape>(a: &Tensor<Self, S, Cuda>, factor: Self) -> Tensor<Self, S, Cuda>;

    /// `a`/`divisor` on the GPU, as `a`·(1/`divisor`) (a real divisor's reciprocal
    /// taken in real arithmetic).
    #[doc(hidden)]
    fn divide_on_device<S: Shape>(a: &Tensor<Self, S, Cuda>, divisor: Self) -> Tensor<Self, S, Cuda>;

    /// `a`·`factor` for a traced tensor, with its rule.
    #[doc(hidden)]
    fn scale_traced<S: Shape>(a: &Var<Tensor<Self, S, Cuda>>, factor: Self) -> Var<Tensor<Self, S, Cuda>>;

    /// `a`/`divisor` for a traced tensor, with its rule.
    #[doc(hidden)]
    fn divide_traced<S: Shape>(a: &Var<Tensor<Self, S, Cuda>>, divisor: Self) -> Var<Tensor<Self, S, Cuda>>;

    /// a⁻¹ elementwise for a traced tensor (`powi(-1)`'s rule, real or complex).
    #[doc(hidden)]
    fn reciprocal_traced<S: Shape>(a: &Var<Tensor<Self, S, Cuda>>) -> Var<Tensor<Self, S, Cuda>>;
}

/// The real element types on the GPU, and the parts of the complex ones: `f32` and
/// `f64` (sealed: the kernels read a buffer as the C type `C_TYPE` names, so no other
/// type may claim one).
pub trait CudaElement:
    CudaScalar<Part = Self> + RealScalar + DeviceRepr + ValidAsZeroBits + Default + Unpin
{
    /// The element type of the generated kernels.
    const C_TYPE: CType;

    /// An element holding `index`'s bits: row indices travel to a kernel in a buffer
    /// of elements, which reads them back as [`CType::index_name`] (no arithmetic
    /// touches them, so every bit survives).
    ///
    /// # Panics
    /// For `f32`, when `index` needs more than 32 bits.
    fn from_index(index: usize) -> Self;

    /// The index whose bits `self` holds, as a kernel wrote it ([`Self::from_index`]
    /// undone).
    fn to_index(self) -> usize;
}

macro_rules! cuda_element {
    ($t:ty, $c:ident, $bits:ty, $real:ident, $complex:ident) => {
        impl CudaElement for $t {
            const C_TYPE: CType = CType::$c;

            fn from_index(index: usize) -> $t {
                let bits = <$bits>::try_from(index).unwrap_or_else(|_| {
                    panic!("index {index} does not fit the {} bits of {}", <$bits>::BITS, stringify!($t))
                });
                <$t>::from_bits(bits)
            }

            fn to_index(self) -> usize {
                usize::try_from(self.to_bits()).expect("an index written for this machine")
            }
        }

        impl CudaScalar for $t {
            type Part = $t;
            const PARTS: usize = 1;
            const BLAS_TYPE: cublas_sys::cudaDataType = cublas_sys::cudaDataType::$real;

            fn to_parts(elements: &[$t]) -> Cow<'_, [$t]> {
                Cow::Borrowed(elements)
            }

            fn elements_from_parts(parts: Vec<$t>) -> Vec<$t> {
                parts
            }

            fn scale_on_device<S: Shape>(a: &Tensor<$t, S, Cuda>, factor: $t) -> Tensor<$t, S, Cuda> {
                crate::ops::cuda::CudaRealOps::scale(a, factor)
            }

            fn divide_on_device<S: Shape>(a: &Tensor<$t, S, Cuda>, divisor: $t) -> Tensor<$t, S, Cuda> {
                crate::ops::cuda::CudaRealOps::scale(a, divisor.recip())
            }

            fn scale_traced<S: Shape>(a: &Var<Tensor<$t, S, Cuda>>, factor: $t) -> Var<Tensor<$t, S, Cuda>> {
                crate::autodiff::CudaRealVarOps::scale(a, factor)
            }

            fn divide_traced<S: Shape>(
                a: &Var<Tensor<$t, S, Cuda>>,
                divisor: $t,
            ) -> Var<Tensor<$t, S, Cuda>> {
                crate::autodiff::CudaRealVarOps::scale(a, divisor.recip())
            }

            fn reciprocal_traced<S: Shape>(a: &Var<Tensor<$t, S, Cuda>>) -> Var<Tensor<$t, S, Cuda>> {
                crate::autodiff::CudaElementaryVarOps::powi(a, -1)
            }
        }

        impl CudaScalar for Complex<$t> {
            type Part = $t;
            const PARTS: usize = 2;
            const BLAS_TYPE: cublas_sys::cudaDataType = cublas_sys::cudaDataType::$complex;

            fn to_parts(elements: &[Complex<$t>]) -> Cow<'_, [$t]> {
                Cow::Owned(elements.iter().flat_map(|z| [z.re, z.im]).collect())
            }

            fn elements_from_parts(parts: Vec<$t>) -> Vec<Complex<$t>> {
                parts.chunks_exact(2).map(|z| Complex::new(z[0], z[1])).collect()
            }

            fn scale_on_device<S: Shape>(
                a: &Tensor<Complex<$t>, S, Cuda>,
                factor: Complex<$t>,
            ) -> Tensor<Complex<$t>, S, Cuda> {
                if factor.im == 0.0 {
                    a.scale_parts(factor.re)
                } else {
                    crate::ops::cuda::CudaComplexOps::scale(a, factor)
                }
            }

            fn divide_on_device<S: Shape>(
                a: &Tensor<Complex<$t>, S, Cuda>,
                divisor: Complex<$t>,
            ) -> Tensor<Complex<$t>, S, Cuda> {
                if divisor.im == 0.0 {
                    a.scale_parts(divisor.re.recip())
                } else {
                    crate::ops::cuda::CudaComplexOps::scale(a, divisor.inv())
                }
            }

            fn scale_traced<S: Shape>(
                a: &Var<Tensor<Complex<$t>, S, Cuda>>,
                factor: Complex<$t>,
            ) -> Var<Tensor<Complex<$t>, S, Cuda>> {
                if factor.im == 0.0 {
                    a.scaled_parts(factor.re)
                } else {
                    crate::autodiff::CudaComplexVarOps::scale(a, factor)
                }
            }

            fn divide_traced<S: Shape>(
                a: &Var<Tensor<Complex<$t>, S, Cuda>>,
                divisor: Complex<$t>,
            ) -> Var<Tensor<Complex<$t>, S, Cuda>> {
                if divisor.im == 0.0 {
                    a.scaled_parts(divisor.re.recip())
                } else {
                    crate::autodiff::CudaComplexVarOps::scale(a, divisor.inv())
                }
            }

            fn reciprocal_traced<S: Shape>(
                a: &Var<Tensor<Complex<$t>, S, Cuda>>,
            ) -> Var<Tensor<Complex<$t>, S, Cuda>> {
                crate::autodiff::CudaComplexElementaryVarOps::powi(a, -1)
            }
        }
    };
}

cuda_element!(f32, F32, u32, CUDA_R_32F, CUDA_C_32F);
cuda_element!(f64, F64, u64, CUDA_R_64F, CUDA_C_64F);

/// `c = α·op(a)·op(b) + β·c` for `config.batch_size` column-major matrices (as cuBLAS
/// sees them): `a` and `b` of cuBLAS type `operand_type`, `c`, α and β of type `T`,
/// sums in `T::Part`.
///
/// # Safety
/// `a` and `b` must hold `config.batch_size` matrices of `operand_type` and `c` as
/// many of `T` of the sizes, leading dimensions and strides in `config`.
unsafe fn gemm_ex<T: CudaScalar>(
    blas: &CudaBlas,
    stream: &CudaStream,
    config: StridedBatchedConfig<T>,
    (a, b, operand_type): (&CudaSlice<T::Part>, &CudaSlice<T::Part>, cublas_sys::cudaDataType),
    c: &mut CudaSlice<T::Part>,
) -> Result<(), CudaError> {
    let compute = if T::Part::C_TYPE == CType::F32 {
        cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    } else {
        cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_64F
    };
    let (a, _record_a) = a.device_ptr(stream);
    let (b, _record_b) = b.device_ptr(stream);
    let (c, _record_c) = c.device_ptr_mut(stream);
    let gemm = &config.gemm;
    // SAFETY: the pointers address buffers of the types and sizes in `config` (the
    // caller's contract); α and β are `T`, which is `c`'s type and, for a complex `T`,
    // `cuComplex`'s layout (`num_complex::Complex` is `repr(C)`: re, then im); the
    // handle is bound to `stream`.
    unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            *blas.handle(),
            gemm.transa,
            gemm.transb,
            gemm.m,
            gemm.n,
            gemm.k,
            (&gemm.alpha as *const T).cast(),
            a as *const _,
            operand_type,
            gemm.lda,
            config.stride_a,
            b as *const _,
            operand_type,
            gemm.ldb,
            config.stride_b,
            (&gemm.beta as *const T).cast(),
            c as *mut _,
            T::BLAS_TYPE,
            gemm.ldc,
            config.stride_c,
            config.batch_size,
            compute,
            cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }?;
    Ok(())
}

/// How cuBLAS may compute `f32` matrix products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// Full `f32` arithmetic (the default).
    #[default]
    Full,
    /// TensorFloat-32 tensor cores: inputs rounded to a 10-bit mantissa, several times
    /// faster on Ampere and later. Only when asked for.
    Tf32,
    /// BF16 tensor cores: each product rounds its `f32` operands to bfloat16 (an 8-bit
    /// mantissa) in a kernel of its own, then cuBLAS multiplies them with sums in
    /// `f32`. The tensors stay `f32`. Only when asked for.
    Bf16,
}

/// cuBLAS's handle and how it computes `f32` products.
struct Blas {
    handle: CudaBlas,
    precision: MatmulPrecision,
}

/// The GPU that `Cuda` tensors live on: device 0, one stream, cuBLAS and the kernels
/// compiled so far. Every operation is queued on the one stream, in order; reading a
/// tensor back to the host waits for it.
pub struct Device {
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: Mutex<Blas>,
    kernels: Mutex<HashMap<String, CudaFunction>>,
    multiprocessors: u32,
    arch: &'static str,
    launches: AtomicU64,
}

static DEVICE: OnceLock<Result<Device, CudaError>> = OnceLock::new();

impl Device {
    /// The GPU, opened on first use; an error says why there is none (no CUDA
    /// library, no device).
    pub fn get() -> Result<&'static Device, CudaError> {
        DEVICE.get_or_init(Device::open).as_ref().map_err(Clone::clone)
    }

    fn open() -> Result<Device, CudaError> {
        // SAFETY: these only try to load the shared libraries; nothing is called yet.
        let present = unsafe {
            [
                ("libcuda (the NVIDIA driver)", driver_sys::is_culib_present()),
                ("libnvrtc", cudarc::nvrtc::sys::is_culib_present()),
                ("libcublas", cublas_sys::is_culib_present()),
            ]
        };
        if let Some((missing, _)) = present.iter().find(|(_, found)| !found) {
            return Err(CudaError::Unavailable(format!(
                "{missing} is not found; install the NVIDIA driver and CUDA 13 libraries, or add their folder to LD_LIBRARY_PATH"
            )));
        }
        let count = CudaContext::device_count().map_err(|e| CudaError::Unavailable(format!("{e:?}")))?;
        if count < 1 {
            return Err(CudaError::Unavailable("the driver reports no CUDA device".to_string()));
        }
        let context = CudaContext::new(0)?;
        // SAFETY: fluxion queues everything on one stream, so no buffer is ever used by
        // two streams and the per-buffer events that order streams are not needed.
        unsafe { context.disable_event_tracking() };
        let stream = context.default_stream();
        let blas = CudaBlas::new(stream.clone())?;
        let multiprocessors = context
            .attribute(driver_sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?
            as u32;
        let (major, minor) = context.compute_capability()?;
        let arch: &'static str = Box::leak(format!("compute_{major}{minor}").into_boxed_str());
        Ok(Device {
            context,
            stream,
            blas: Mutex::new(Blas { handle: blas, precision: MatmulPrecision::Full }),
            kernels: Mutex::new(HashMap::new()),
            multiprocessors,
            arch,
            launches: AtomicU64::new(0),
        })
    }

    /// The device's name, e.g. "NVIDIA H200".
    pub fn name(&self) -> Result<String, CudaError> {
        Ok(self.context.name()?)
    }

    /// The number of streaming multiprocessors.
    pub(crate) fn multiprocessors(&self) -> usize {
        self.multiprocessors as usize
    }

    /// The stream every operation is queued on.
    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The number of kernels launched so far on this device, the process's one (generated kernels and
    /// the hand-written ones; cuBLAS products are not counted): how many passes over
    /// memory a computation took, e.g. to see a chain of elementwise operations run
    /// as one kernel.
    pub fn kernel_launches(&self) -> u64 {
        self.launches.load(Ordering::Relaxed)
    }

    /// Waits until every queued operation has finished.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        Ok(self.stream.synchronize()?)
    }

    /// Lets cuBLAS use TF32 or BF16 tensor cores for `f32` products, or not (the
    /// default). cuBLAS's TF32 mode may use tensor cores for `Complex32` products too
    /// (not measured); BF16 rounds real `f32` operands only, so a
    /// `Complex32` product under it runs in full precision; `f64` and `Complex64`
    /// products are unaffected.
    pub fn set_matmul_precision(&self, precision: MatmulPrecision) -> Result<(), CudaError> {
        let mode = match precision {
            MatmulPrecision::Full | MatmulPrecision::Bf16 => cublas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH,
            MatmulPrecision::Tf32 => cublas_sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
        };
        let mut blas = self.blas.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: the handle is valid for as long as `blas` lives, and the lock keeps
        // other threads from using it meanwhile.
        unsafe { cublas_sys::cublasSetMathMode(*blas.handle.handle(), mode) }.result()?;
        blas.precision = precision;
        Ok(())
    }

    /// A zeroed buffer of `len` real parts (elements of a real tensor).
    pub(crate) fn zeros<T: CudaElement>(&self, len: usize) -> Result<CudaSlice<T>, CudaError> {
        Ok(self.stream.alloc_zeros(len.max(1))?)
    }

    /// A buffer of `len` real parts whose contents the caller overwrites in full before
    /// reading.
    pub(crate) fn uninitialized<T: CudaElement>(&self, len: usize) -> Result<CudaSlice<T>, CudaError> {
        // SAFETY: every caller launches a kernel that writes all `len` elements before
        // anything reads them (elementwise kernels, reductions, gemm with beta = 0).
        Ok(unsafe { self.stream.alloc(len.max(1)) }?)
    }

    /// Copies host parts to a new device buffer.
    pub(crate) fn upload<T: CudaElement>(&self, elements: &[T]) -> Result<CudaSlice<T>, CudaError> {
        if elements.is_empty() {
            return self.zeros(0);
        }
        Ok(self.stream.clone_htod(elements)?)
    }

    /// Copies the first `len` parts of a device buffer to the host (waits for the
    /// stream).
    pub(crate) fn download<T: CudaElement>(
        &self,
        buffer: &CudaSlice<T>,
        len: usize,
    ) -> Result<Vec<T>, CudaError> {
        let mut all = self.stream.clone_dtoh(buffer)?;
        self.stream.synchronize()?;
        all.truncate(len);
        Ok(all)
    }

    /// The compiled kernel `name`, compiled from `source()` on first use.
    pub(crate) fn kernel(
        &self,
        name: &str,
        source: impl FnOnce() -> Result<String, CudaError>,
    ) -> Result<CudaFunction, CudaError> {
        if let Some(kernel) = self.cached_kernels().get(name) {
            return Ok(kernel.clone());
        }
        // Generated and compiled outside the lock: the generator runs a user's function,
        // which may panic; a kernel compiled twice by racing threads is only work lost.
        let source = source()?;
        let options = CompileOptions { arch: Some(self.arch), ..CompileOptions::default() };
        let ptx = compile_ptx_with_opts(&source, options)
            .map_err(|error| CudaError::Compile { kernel: name.to_string(), log: format!("{error}") })?;
        let module = self.context.load_module(ptx)?;
        let kernel = module.load_function(name)?;
        self.cached_kernels().insert(name.to_string(), kernel.clone());
        Ok(kernel)
    }

    /// The compiled kernels; the map stays valid if a thread panicked holding it.
    fn cached_kernels(&self) -> std::sync::MutexGuard<'_, HashMap<String, CudaFunction>> {
        self.kernels.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Launches a kernel whose arguments are pushed on `arguments`.
    pub(crate) fn launch(
        &self,
        mut arguments: LaunchArgs<'_>,
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        // SAFETY: every kernel is generated in `codegen` together with the argument list
        // its callers push (buffers, then scalars, then sizes as u64), and each caller
        // passes buffers of at least the sizes it passes.
        unsafe { arguments.launch(config) }?;
        self.launches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// C = op(A)·op(B) for `batch` row-major matrices (A: m×k, B: k×n, C: m×n, each
    /// stored as its adjoint when its flag says so: its transpose, conjugated for
    /// complex elements), `C = alpha·A·B + beta·C`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm<T: CudaScalar>(
        &self,
        (m, k, n, batch): (usize, usize, usize, usize),
        (a, a_adjoint): (&CudaSlice<T::Part>, bool),
        (b, b_adjoint): (&CudaSlice<T::Part>, bool),
        c: &mut CudaSlice<T::Part>,
        (alpha, beta): (T, T),
    ) -> Result<(), CudaError> {
        let fits = |buffer_len: usize, needed: usize| buffer_len >= (needed * T::PARTS).max(1);
        assert!(
            fits(a.len(), batch * m * k) && fits(b.len(), batch * k * n) && fits(c.len(), batch * m * n),
            "gemm buffers are smaller than their shapes"
        );
        if m == 0 || n == 0 || batch == 0 {
            return Ok(());
        }
        let int = |x: usize| {
            i32::try_from(x)
                .map_err(|_| CudaError::Blas(format!("dimension {x} exceeds cuBLAS's 32-bit sizes")))
        };
        let operation = |adjoint| match (adjoint, T::PARTS) {
            (false, _) => cublas_sys::cublasOperation_t::CUBLAS_OP_N,
            (true, 1) => cublas_sys::cublasOperation_t::CUBLAS_OP_T,
            (true, _) => cublas_sys::cublasOperation_t::CUBLAS_OP_C,
        };
        // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap the operands.
        let gemm = GemmConfig {
            transa: operation(b_adjoint),
            transb: operation(a_adjoint),
            m: int(n)?,
            n: int(m)?,
            k: int(k)?,
            alpha,
            // cuBLAS wants every leading dimension ≥ 1, also for an empty inner size.
            lda: int(if b_adjoint { k } else { n }.max(1))?,
            ldb: int(if a_adjoint { m } else { k }.max(1))?,
            beta,
            ldc: int(n.max(1))?,
        };
        let config = StridedBatchedConfig {
            gemm,
            batch_size: int(batch)?,
            stride_a: (k * n) as i64,
            stride_b: (m * k) as i64,
            stride_c: (m * n) as i64,
        };
        let blas = self.blas.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blas.precision == MatmulPrecision::Bf16 && T::PARTS == 1 && T::Part::C_TYPE == CType::F32 {
            let a = super::bf16::round_to_bf16_on(self, a, batch * m * k)?;
            let b = super::bf16::round_to_bf16_on(self, b, batch * k * n)?;
            let bf16 = cublas_sys::cudaDataType::CUDA_R_16BF;
            // SAFETY: `a` and `b` now hold the operands' bf16 values, two to an `f32`
            // slot, and `c` was checked to hold the `f32` products.
            unsafe { gemm_ex(&blas.handle, &self.stream, config, (&b, &a, bf16), c) }
        } else {
            // SAFETY: the three buffers were checked to hold the matrices of `config`,
            // of `T`'s cuBLAS type.
            unsafe { gemm_ex(&blas.handle, &self.stream, config, (b, a, T::BLAS_TYPE), c) }
        }
    }
}

impl core::fmt::Debug for Device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device")
            .field("arch", &self.arch)
            .field("multiprocessors", &self.multiprocessors)
            .finish()
    }
}
