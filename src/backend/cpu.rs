//! CPU matrix product C = op(A)·B for f32, f64, Complex32 and Complex64.
//!
//! Products with at most [`SMALL_PRODUCT`] multiply-adds (m·k·n) and some dimension
//! below 16 run a plain loop that the compiler unrolls for static sizes: the cost of
//! packing panels would dominate there (measured: the plain loop wins at 8×8×8, the
//! AVX-512 kernels from 16×16×16). Larger products of the four built-in element types go to the
//! `gemm` crate (with the `std` feature); from 2²³ multiply-adds they are split into
//! one block of output rows or columns per thread (see [`set_num_threads`]; below
//! that, waking a second thread costs about what it saves). Other element types
//! always take the plain loop.

#[cfg(feature = "std")]
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::scalar::Scalar;

/// Products with at most this many multiply-adds use the plain loop.
pub const SMALL_PRODUCT: usize = 16 * 16 * 16;

/// A read-only strided view of an m×n matrix: element (i, j) is
/// `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix with `cols` columns.
    #[inline(always)]
    pub fn row_major(data: &'a [T], cols: usize) -> Self {
        MatRef { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns, without copying.
    #[inline(always)]
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        MatRef { data, row_stride: 1, col_stride: cols }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> &T {
        &self.data[i * self.row_stride + j * self.col_stride]
    }
}

#[cfg(feature = "std")]
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads large matrix products may use, the calling thread included;
/// `0` (the default) means one per processor, `1` means single-threaded. A product
/// uses at most one thread per processor (two on a single processor, if asked).
/// After a product split across threads, one of them spins for a while, waiting for
/// the next (see [`set_spin_time`]).
#[cfg(feature = "std")]
pub fn set_num_threads(threads: usize) {
    THREADS.store(threads, Ordering::Relaxed);
}

/// The thread setting of [`set_num_threads`].
#[cfg(feature = "std")]
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

#[cfg(feature = "std")]
static SPIN_MICROSECONDS: AtomicUsize = AtomicUsize::new(1000);

/// Sets how long a product thread spins after a product split across threads,
/// waiting for the next one, before it sleeps: 1 ms unless set; zero sleeps at once.
/// Spinning keeps a processor busy meanwhile, and saves the next product the wake of
/// a sleeping thread (see `BENCHMARKS.md`: on a 2-core virtual machine, a training
/// step 22 % faster at two threads). Microsecond resolution.
#[cfg(feature = "std")]
pub fn set_spin_time(time: std::time::Duration) {
    SPIN_MICROSECONDS.store(usize::try_from(time.as_micros()).unwrap_or(usize::MAX), Ordering::Relaxed);
}

/// The setting of [`set_spin_time`].
#[cfg(feature = "std")]
pub fn spin_time() -> std::time::Duration {
    std::time::Duration::from_micros(SPIN_MICROSECONDS.load(Ordering::Relaxed) as u64)
}

/// `out` (row-major m×n) ← op(a)·op(b), where a is m×k, b is k×n and `op` conjugates
/// the elements of an operand whose flag in `conjugate` is set (the identity on reals).
///
/// # Panics
/// When a view is too short for its dimensions or `out` is not m·n long.
#[inline(always)]
pub fn matmul_into<T: Scalar>(
    dims: (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    conjugate: (bool, bool),
    out: &mut [T],
) {
    product("matmul_into", Write::Overwrite, dims, a, b, conjugate, out);
}

/// Whether a kernel replaces its output or adds to it: what pullbacks use to write a
/// cotangent straight into an adjoint, with no temporary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// `out ← result`; every element is written, the old contents are never read.
    Overwrite,
    /// `out ← out + result`.
    Accumulate,
}

/// `out ← values` or `out ← out + values`, as `write` says: how a pullback puts an
/// elementwise cotangent into an adjoint.
///
/// # Panics
/// When `values` does not yield exactly one value per element of `out` (a partial
/// write would leave stale elements behind).
#[inline(always)]
#[track_caller]
pub fn write_elements<T: Scalar>(write: Write, out: &mut [T], values: impl ExactSizeIterator<Item = T>) {
    assert_eq!(values.len(), out.len(), "write_elements: {} values for {} elements", values.len(), out.len());
    match write {
        Write::Overwrite => out.iter_mut().zip(values).for_each(|(out, value)| *out = value),
        Write::Accumulate => out.iter_mut().zip(values).for_each(|(out, value)| *out += value),
    }
}

/// [`matmul_into`], replacing `out` or adding the product to it as `write` says.
///
/// # Panics
/// When a view is too short for its dimensions or `out` is not m·n long.
#[inline(always)]
pub fn matmul_write<T: Scalar>(
    write: Write,
    dims: (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    conjugate: (bool, bool),
    out: &mut [T],
) {
    product("matmul_write", write, dims, a, b, conjugate, out);
}

/// The product behind [`matmul_into`] and [`matmul_write`]; `name` is the one the
/// caller called, for the panic messages.
#[inline(always)]
fn product<T: Scalar>(
    name: &str,
    write: Write,
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    conjugate: (bool, bool),
    out: &mut [T],
) {
    assert_eq!(Some(out.len()), m.checked_mul(n), "{name}: output length");
    if out.is_empty() {
        return;
    }
    let fits = |view: MatRef<'_, T>, rows: usize, cols: usize| {
        span(view, rows, cols).is_some_and(|end| end <= view.data.len())
            && isize::try_from(view.row_stride).is_ok()
            && isize::try_from(view.col_stride).is_ok()
    };
    assert!(fits(a, m, k) && fits(b, k, n), "{name}: operand views are too short");
    #[cfg(feature = "std")]
    if (m * k * n > SMALL_PRODUCT || m.min(k).min(n) >= 16) && has_gemm_kernel::<T>() {
        gemm_crate((m, k, n), a, b, conjugate, write, out);
        return;
    }
    plain_loop(k, n, a, b, conjugate, write, out);
}

/// The pullback of y = A·x for a row-major m×k matrix A, in one pass over A:
/// Ā = ȳ ⊗ conj(x) and x̄ = Aᴴ·ȳ, each written or added as its [`Write`] says.
///
/// # Panics
/// When a slice's length does not match m and k.
#[inline(always)]
pub fn matvec_pullback<T: Scalar>(
    (a, x, y_bar): (&[T], &[T], &[T]),
    (a_bar, a_write): (&mut [T], Write),
    (x_bar, x_write): (&mut [T], Write),
) {
    let k = x.len();
    assert!(
        a.len() == y_bar.len() * k && a_bar.len() == a.len() && x_bar.len() == k,
        "matvec_pullback: lengths"
    );
    if x_write == Write::Overwrite {
        x_bar.fill(T::zero());
    }
    if k == 0 {
        return;
    }
    let mut sweep = |put: fn(&mut T, T)| {
        for ((a_row, a_bar_row), &g) in a.chunks_exact(k).zip(a_bar.chunks_exact_mut(k)).zip(y_bar) {
            for (((&a_ij, a_bar_ij), &x_j), x_bar_j) in
                a_row.iter().zip(a_bar_row).zip(x).zip(x_bar.iter_mut())
            {
                *x_bar_j += a_ij.conj() * g;
                put(a_bar_ij, g * x_j.conj());
            }
        }
    };
    match a_write {
        Write::Overwrite => sweep(|slot, cotangent| *slot = cotangent),
        Write::Accumulate => sweep(|slot, cotangent| *slot += cotangent),
    }
}

/// One past the largest offset a view of an r×c matrix touches.
/// `None` when the offsets overflow `usize`.
fn span<T>(view: MatRef<'_, T>, rows: usize, cols: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    let last_row = (rows - 1).checked_mul(view.row_stride)?;
    let last_col = (cols - 1).checked_mul(view.col_stride)?;
    last_row.checked_add(last_col)?.checked_add(1)
}

/// The plain kernel. It picks the loop order whose innermost loop runs over
/// contiguous memory, so that the compiler vectorises it:
/// - rows of `a` and columns of `b` contiguous: out[i, j] = a[i, :] · b[:, j]
///   (matrix × vector, and a·bᵀ with `b` read in place), unless n > 4 and the rows of
///   `b` are contiguous too;
/// - rows of `b` contiguous: out[i, :] += a[i, p] · b[p, :] (row-major products);
/// - columns of `a` contiguous and n = 1: out[:] += a[:, p] · b[p] (transposed
///   matrix × vector, as in the matrix × vector pullback).
#[inline(always)]
fn plain_loop<T: Scalar>(
    k: usize,
    n: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    (conj_a, conj_b): (bool, bool),
    write: Write,
    out: &mut [T],
) {
    let op_a = |x: T| if conj_a { x.conj() } else { x };
    let op_b = |x: T| if conj_b { x.conj() } else { x };
    let start = |previous: T| if write == Write::Accumulate { previous } else { T::zero() };
    let clear = |out: &mut [T]| {
        if write == Write::Overwrite {
            out.fill(T::zero());
        }
    };
    let m = out.len() / n;
    if a.col_stride == 1 && b.row_stride == 1 && (n <= 4 || b.col_stride != 1) {
        for (i, out_row) in out.chunks_exact_mut(n).enumerate() {
            let a_row = &a.data[i * a.row_stride..][..k];
            for (j, out_ij) in out_row.iter_mut().enumerate() {
                let b_col = &b.data[j * b.col_stride..][..k];
                *out_ij = start(*out_ij) + dot(a_row, b_col, op_a, op_b);
            }
        }
    } else if a.row_stride == 1 && n == 1 {
        clear(out);
        for p in 0..k {
            let b_p = op_b(b.data[p * b.row_stride]);
            let a_col = &a.data[p * a.col_stride..][..m];
            for (out_i, &x) in out.iter_mut().zip(a_col) {
                *out_i += op_a(x) * b_p;
            }
        }
    } else if b.col_stride == 1 {
        for (i, out_row) in out.chunks_exact_mut(n).enumerate() {
            clear(out_row);
            for p in 0..k {
                let a_ip = op_a(*a.at(i, p));
                let b_row = &b.data[p * b.row_stride..][..n];
                for (out_ij, &y) in out_row.iter_mut().zip(b_row) {
                    *out_ij += a_ip * op_b(y);
                }
            }
        }
    } else {
        for (i, out_row) in out.chunks_exact_mut(n).enumerate() {
            for (j, out_ij) in out_row.iter_mut().enumerate() {
                *out_ij = (0..k).fold(start(*out_ij), |acc, p| acc + op_a(*a.at(i, p)) * op_b(*b.at(p, j)));
            }
        }
    }
}

/// Σ op_a(aᵢ)·op_b(bᵢ) over equally long slices, in four interleaved partial sums:
/// independent chains of additions that the processor overlaps (one chain would wait
/// for each addition in turn) and that the compiler vectorises.
#[inline(always)]
pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T], op_a: impl Fn(T) -> T, op_b: impl Fn(T) -> T) -> T {
    const LANES: usize = 4;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a_chunks.remainder().iter().zip(b_chunks.remainder());
    let mut partial = [T::zero(); LANES];
    for (a_chunk, b_chunk) in a_chunks.zip(b_chunks) {
        for ((sum, &x), &y) in partial.iter_mut().zip(a_chunk).zip(b_chunk) {
            *sum += op_a(x) * op_b(y);
        }
    }
    let head = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    tail.fold(head, |sum, (&x, &y)| sum + op_a(x) * op_b(y))
}

#[cfg(feature = "std")]
fn has_gemm_kernel<T: 'static>() -> bool {
    use core::any::TypeId;
    let id = TypeId::of::<T>();
    id == TypeId::of::<f32>()
        || id == TypeId::of::<f64>()
        || id == TypeId::of::<num_complex::Complex32>()
        || id == TypeId::of::<num_complex::Complex64>()
}

/// Products with at least this many multiply-adds are split across threads.
#[cfg(feature = "std")]
const PARALLEL_PRODUCT: usize = 1 << 23;

/// Each thread's block of a split product has at least this many rows (or columns).
#[cfg(feature = "std")]
const MIN_BLOCK: usize = 32;

/// The output of a product as a raw pointer, so that threads can write disjoint blocks
/// of it (column blocks of a row-major matrix interleave in memory, so they are not
/// subslices).
#[cfg(feature = "std")]
#[derive(Clone, Copy)]
struct OutputBlocks<T>(*mut T);

// SAFETY: an `OutputBlocks` is only created in `gemm_crate` from an exclusive borrow of
// the output, and each thread given a copy writes a block of rows or columns that no
// other thread touches (see `gemm_crate`); `T: Send` elements may be written from
// another thread.
#[cfg(feature = "std")]
unsafe impl<T: Send> Send for OutputBlocks<T> {}
// SAFETY: as above: the copies shared between threads address disjoint blocks.
#[cfg(feature = "std")]
unsafe impl<T: Send> Sync for OutputBlocks<T> {}

/// The `gemm` crate's product, split by hand into one block of output rows (or
/// columns, along the longer side) per thread, each block computed on one thread: the
/// calling thread takes the first block and rayon's pool the others (so that no
/// extra thread competes with the caller's serial work between products). Measured on two cores, this beats `gemm`'s own threading by up to 1.4×
/// on the skinny products of a training step (128×784·784×256 with a transposed
/// operand: 173 µs against 222 µs; one thread 247 µs) and matches it on square ones.
#[cfg(feature = "std")]
fn gemm_crate<T: Scalar>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    conjugate: (bool, bool),
    write: Write,
    out: &mut [T],
) {
    let along_rows = m >= n;
    let length = if along_rows { m } else { n };
    let wanted = match num_threads() {
        0 => processors(),
        threads => threads,
    };
    // The pool is only started (and only consulted) for a product worth splitting.
    let pool =
        (m * k * n >= PARALLEL_PRODUCT && wanted > 1 && length >= 2 * MIN_BLOCK).then(product_pool).flatten();
    let blocks = match pool {
        // One block per thread that can run at once, each at least MIN_BLOCK long.
        Some(pool) => wanted.min(pool.current_num_threads() + 1).min(length / MIN_BLOCK),
        None => 1,
    };
    let output = OutputBlocks(out.as_mut_ptr());
    let block = |index: usize| {
        let (start, end) = (index * length / blocks, (index + 1) * length / blocks);
        let (rows, a_offset, b_offset, out_offset, cols) = if along_rows {
            (end - start, start * a.row_stride, 0, start * n, n)
        } else {
            (m, 0, start * b.col_stride, start, end - start)
        };
        // SAFETY: `product` asserted out.len() = m·n and that the m×k and k×n views
        // lie inside their slices. Block `index` covers rows start..end (or columns
        // start..end), so its output offset and its operand offsets stay inside those
        // bounds, and blocks of different indices write disjoint elements of `out`,
        // which the caller borrows exclusively for the whole call.
        unsafe {
            gemm_block((rows, k, cols), a, a_offset, b, b_offset, conjugate, write, output, out_offset, n)
        };
    };
    match pool {
        Some(pool) if blocks > 1 => {
            pool.in_place_scope(|scope| {
                for index in 1..blocks {
                    scope.spawn(move |_| block(index));
                }
                block(0);
            });
            keep_awake(pool);
        }
        _ => block(0),
    }
}

/// Keeps one product thread awake after a split product, for [`spin_time`], running
/// the blocks of later products as they come, as BLAS libraries keep their threads
/// spinning: a thread that has gone to sleep costs a system call to wake, and on a
/// virtual machine the wake of an idle processor besides, about as long as the
/// smaller products of a training step take (measured on W2 at two threads, where
/// the pool has this one thread: 7 % of the samples in waking, and the step 22 %
/// faster with the spin). Other threads of a larger pool still sleep between
/// products. Nothing spins on a single processor, where it would take the caller's
/// time. A product that comes just as the spinning thread gives up (between its last
/// look for work and `AWAKE` cleared) wakes a thread as before.
#[cfg(feature = "std")]
fn keep_awake(pool: &'static rayon::ThreadPool) {
    use core::sync::atomic::AtomicBool;
    static AWAKE: AtomicBool = AtomicBool::new(false);
    let spin = spin_time();
    if spin.is_zero() || processors() < 2 || AWAKE.swap(true, Ordering::AcqRel) {
        return;
    }
    pool.spawn(move || {
        let mut idle_since = std::time::Instant::now();
        while idle_since.elapsed() < spin {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => idle_since = std::time::Instant::now(),
                _ => core::hint::spin_loop(),
            }
        }
        AWAKE.store(false, Ordering::Release);
    });
}

/// The number of processors this process may use (1 when it cannot be read).
#[cfg(feature = "std")]
fn processors() -> usize {
    static PROCESSORS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PROCESSORS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The threads that compute the blocks of split products beside the calling thread:
/// one per processor but one (at least one, for an explicit thread count on a single
/// processor), started at the first product worth splitting; `None` when they could
/// not be started (products then run on the calling thread). Not rayon's global pool,
/// which has one per processor: with the caller that would be one thread too many,
/// and one of them, spinning between products, would share the caller's processor
/// (here the spinning thread has a processor of its own, see `keep_awake`).
#[cfg(feature = "std")]
fn product_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(processors().saturating_sub(1).max(1))
            .thread_name(|index| alloc::format!("fluxion-product-{index}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// One single-threaded `gemm` call: the m×n block at `out_offset` of a row-major output
/// with row stride `out_row_stride` ← (or +=) op(a)·op(b), the operands starting at
/// their offsets.
///
/// # Safety
/// `T` is one of the four types `gemm` supports; the m×k view of `a` from `a_offset`,
/// the k×n view of `b` from `b_offset` and the m×n block of the output lie inside their
/// buffers, every stride fits in `isize`, and no other thread accesses that block
/// during the call.
#[cfg(feature = "std")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_block<T: Scalar>(
    (m, k, n): (usize, usize, usize),
    a: MatRef<'_, T>,
    a_offset: usize,
    b: MatRef<'_, T>,
    b_offset: usize,
    (conj_a, conj_b): (bool, bool),
    write: Write,
    out: OutputBlocks<T>,
    out_offset: usize,
    out_row_stride: usize,
) {
    let stride = |s: usize| s as isize;
    // SAFETY: the caller's contract: every pointer offset stays inside its buffer, the
    // output block is written by this call only, and the operands are shared borrows
    // that cannot alias the output. With `read_dst = false` (overwrite) the previous
    // contents of the block are never read; when accumulating they are the caller's
    // initialised elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.0.add(out_offset),
            1,
            stride(out_row_stride),
            write == Write::Accumulate,
            a.data.as_ptr().add(a_offset),
            stride(a.col_stride),
            stride(a.row_stride),
            b.data.as_ptr().add(b_offset),
            stride(b.col_stride),
            stride(b.row_stride),
            T::one(),
            T::one(),
            false,
            conj_a,
            conj_b,
            gemm::Parallelism::None,
        );
    }
}
