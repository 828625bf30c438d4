//! The W4 step as a performance engineer writes it by hand on the GPU: cuBLAS for the
//! five products, and fused CUDA C kernels for everything else (bias + ReLU in one
//! pass, the whole softmax cross-entropy and its gradient in one pass per row, column
//! sums through shared memory and atomics, ReLU's backward, one SGD update per tensor).

use std::sync::Arc;

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

const KERNELS: &str = r#"
extern "C" __global__ void bias_relu(float* h, const float* __restrict__ b, int rows, int cols) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) { float v = h[i] + b[i % cols]; h[i] = v > 0.f ? v : 0.f; }
}
// One thread per row: logits + b, log-softmax, and d(loss)/d(logits) = (p - onehot)/B.
extern "C" __global__ void softmax_xent(const float* __restrict__ logits, const float* __restrict__ b,
        const int* __restrict__ labels, float* __restrict__ grad, int rows, int classes, float inv_batch) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* z = logits + r * classes;
    float m = __int_as_float(0xff800000);  // -inf (NVRTC has no math.h)
    for (int c = 0; c < classes; ++c) m = fmaxf(m, z[c] + b[c]);
    float s = 0.f;
    for (int c = 0; c < classes; ++c) s += __expf(z[c] + b[c] - m);
    float inv_s = 1.f / s;
    for (int c = 0; c < classes; ++c) {
        float p = __expf(z[c] + b[c] - m) * inv_s;
        grad[r * classes + c] = (p - (c == labels[r] ? 1.f : 0.f)) * inv_batch;
    }
}
// Column sums of a rows x cols matrix: 32 columns x 8 row lanes per block, each block a
// slice of rows, combined with atomics (out starts zeroed).
extern "C" __global__ void column_sums(const float* __restrict__ g, float* out, int rows, int cols, int rows_per_block) {
    __shared__ float partial[8][32];
    int col = blockIdx.x * 32 + threadIdx.x;
    int first = blockIdx.y * rows_per_block;
    int last = min(rows, first + rows_per_block);
    float acc = 0.f;
    if (col < cols) for (int r = first + threadIdx.y; r < last; r += 8) acc += g[r * cols + col];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        float total = 0.f;
        for (int k = 0; k < 8; ++k) total += partial[k][threadIdx.x];
        atomicAdd(out + col, total);
    }
}
extern "C" __global__ void relu_backward(float* __restrict__ d, const float* __restrict__ h, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && h[i] <= 0.f) d[i] = 0.f;
}
extern "C" __global__ void sgd(float* __restrict__ w, const float* __restrict__ g, float rate, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) w[i] -= rate * g[i];
}
"#;

/// Launches `kernel` on `stream` with `config` and the arguments in order.
macro_rules! launch {
    ($stream:expr, $kernel:expr, $config:expr; $($arg:expr),* $(,)?) => {{
        let mut arguments = $stream.launch_builder($kernel);
        $(arguments.arg($arg);)*
        // SAFETY: every call passes the arguments of the kernel's signature in
        // `KERNELS`, in order, with buffers holding the elements its sizes say.
        unsafe { arguments.launch($config) }.unwrap();
    }};
}

fn elementwise(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (n.div_ceil(256) as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// The step's buffers and kernels.
pub struct HandWritten {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    kernels: [CudaFunction; 5],
    sizes: (usize, usize, usize, usize),
    x: CudaSlice<f32>,
    labels: CudaSlice<i32>,
    params: [CudaSlice<f32>; 4],
    grads: [CudaSlice<f32>; 4],
    hidden: CudaSlice<f32>,
    logits: CudaSlice<f32>,
    logits_grad: CudaSlice<f32>,
    hidden_grad: CudaSlice<f32>,
}

impl HandWritten {
    /// Batch `b`, sizes `i → h → o`, on device 0, from host inputs `x` (b×i, row-major),
    /// label classes `(r·7 + 1) mod o` and parameters `[W₁, b₁, W₂, b₂]`.
    pub fn new((b, i, h, o): (usize, usize, usize, usize), x: &[f32], params: [&[f32]; 4]) -> Self {
        let context = CudaContext::new(0).unwrap();
        let stream = context.default_stream();
        let (major, minor) = context.compute_capability().unwrap();
        let arch = Box::leak(format!("compute_{major}{minor}").into_boxed_str());
        let ptx = compile_ptx_with_opts(KERNELS, CompileOptions { arch: Some(arch), ..Default::default() })
            .unwrap();
        let module = context.load_module(ptx).unwrap();
        let kernels = ["bias_relu", "softmax_xent", "column_sums", "relu_backward", "sgd"]
            .map(|name| module.load_function(name).unwrap());
        let blas = CudaBlas::new(stream.clone()).unwrap();
        let x = stream.clone_htod(x).unwrap();
        let labels: Vec<i32> = (0..b).map(|r| ((r * 7 + 1) % o) as i32).collect();
        let labels = stream.clone_htod(&labels).unwrap();
        let params = params.map(|p| stream.clone_htod(p).unwrap());
        let grads = [i * h, h, h * o, o].map(|n| stream.alloc_zeros(n).unwrap());
        HandWritten {
            kernels,
            sizes: (b, i, h, o),
            x,
            labels,
            params,
            grads,
            hidden: stream.alloc_zeros(b * h).unwrap(),
            logits: stream.alloc_zeros(b * o).unwrap(),
            logits_grad: stream.alloc_zeros(b * o).unwrap(),
            hidden_grad: stream.alloc_zeros(b * h).unwrap(),
            blas,
            stream,
        }
    }

    /// W₁ copied to the host.
    pub fn w1(&self) -> Vec<f32> {
        self.stream.clone_dtoh(&self.params[0]).unwrap()
    }

    /// Waits for the GPU.
    pub fn synchronize(&self) {
        self.stream.synchronize().unwrap();
    }

    /// One SGD step, queued.
    pub fn step(&mut self, rate: f32) {
        let (b, i, h, o) = self.sizes;
        let s = &self.stream;
        let [bias_relu, softmax_xent, column_sums, relu_backward, sgd] = &self.kernels;
        let [w1, b1, w2, b2] = &mut self.params;
        let [gw1, gb1, gw2, gb2] = &mut self.grads;
        let (ib, ih, io) = (b as i32, h as i32, o as i32);
        // Forward: hidden = relu(x·W1 + b1); logits = hidden·W2.
        gemm(&self.blas, (b, i, h), (&self.x, false), (w1, false), &mut self.hidden);
        launch!(s, bias_relu, elementwise(b * h); &mut self.hidden, &*b1, &ib, &ih);
        gemm(&self.blas, (b, h, o), (&self.hidden, false), (w2, false), &mut self.logits);
        // Loss gradient in place of the logits.
        let inv_batch = 1.0f32 / b as f32;
        let rows = elementwise(b);
        let logits_grad = &mut self.logits_grad;
        launch!(s, softmax_xent, rows; &self.logits, &*b2, &self.labels, &mut *logits_grad, &ib, &io, &inv_batch);
        // Backward.
        gemm(&self.blas, (h, b, o), (&self.hidden, true), (&*logits_grad, false), gw2);
        column_sum(s, column_sums, logits_grad, gb2, (b, o));
        gemm(&self.blas, (b, o, h), (&*logits_grad, false), (w2, true), &mut self.hidden_grad);
        let n = b * h;
        let n32 = n as i32;
        launch!(s, relu_backward, elementwise(n); &mut self.hidden_grad, &self.hidden, &n32);
        gemm(&self.blas, (i, b, h), (&self.x, true), (&self.hidden_grad, false), gw1);
        column_sum(s, column_sums, &self.hidden_grad, gb1, (b, h));
        for (w, g) in [(w1, &*gw1), (b1, &*gb1), (w2, &*gw2), (b2, &*gb2)] {
            let n = w.len() as i32;
            launch!(s, sgd, elementwise(n as usize); w, g, &rate, &n);
        }
    }
}

/// out = Σ rows of the `rows × cols` matrix `g`.
fn column_sum(
    s: &Arc<CudaStream>,
    kernel: &CudaFunction,
    g: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    (rows, cols): (usize, usize),
) {
    s.memset_zeros(out).unwrap();
    let rows_per_block = 128;
    let config = LaunchConfig {
        grid_dim: (cols.div_ceil(32) as u32, rows.div_ceil(rows_per_block) as u32, 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    let (r, c, p) = (rows as i32, cols as i32, rows_per_block as i32);
    launch!(s, kernel, config; g, out, &r, &c, &p);
}

/// Row-major C[m×n] = op(A)·op(B) (A: m×k, B: k×n, each stored transposed when flagged).
fn gemm(
    blas: &CudaBlas,
    (m, k, n): (usize, usize, usize),
    (a, at): (&CudaSlice<f32>, bool),
    (b, bt): (&CudaSlice<f32>, bool),
    c: &mut CudaSlice<f32>,
) {
    let op = |t| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
    let config = GemmConfig {
        transa: op(bt),
        transb: op(at),
        m: n as i32,
        n: m as i32,
        k: k as i32,
        alpha: 1.0f32,
        lda: if bt { k } else { n } as i32,
        ldb: if at { m } else { k } as i32,
        beta: 0.0,
        ldc: n as i32,
    };
    // SAFETY: the buffers hold m·k, k·n and m·n elements.
    unsafe { blas.gemm(config, b, a, c) }.unwrap();
}
