//! The written-out kernels of a row gather (an embedding lookup) and its pullback,
//! and of an axis permutation.
//!
//! An axis permutation reads each output element from its input offset: output axis
//! k has size sₖ and stride tₖ through the input, so element (i₀, …, i₄) is read at
//! Σ iₖ·tₖ (up to 5 axes: a rank-4 tensor's and the parts of a complex element). The
//! reads are strided where the last axis moves; the writes are contiguous.
//!
//! `y[k, :] = table[indices[k], :]`. The pullback adds each row of ȳ to the table
//! row it was read from: the indices are grouped by row on the host (positions in
//! increasing order), and one thread per (distinct row, column) sums its group's
//! entries in that order, as the host does, so the result needs no atomics and does
//! not depend on scheduling. Indices reach the kernels in element buffers, as the
//! element type's bits ([`CudaElement::from_index`]).

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use cudarc::driver::CudaSlice;

use super::codegen::CType;
use super::{BufferArg, CudaElement, CudaError, Device, Runner, grid_stride_launch, kernel_name};

/// `name(table, rows, out, count, columns)`: `out[k, c] = table[rows[k], c]` (the
/// row indices in a buffer of elements, read as their bits).
fn gather_source(name: &str, ctype: CType) -> String {
    let (t, index) = (ctype.name(), ctype.index_name());
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ table, const {index}* __restrict__ rows, {t}* __restrict__ out, const unsigned long long count, const unsigned long long columns) {{
    const unsigned long long n = count * columns;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        out[e] = table[(unsigned long long)rows[e / columns] * columns + e % columns];
    }}
}}
"
    )
}

/// `name(y_bar, rows, table_bar, distinct, count, columns)`: for each distinct row u
/// and column c, `table_bar[rows[u], c] += Σ y_bar[k, c]` over u's positions k; the
/// index buffer holds `rows` (distinct), then `starts` (distinct + 1) and the
/// positions grouped by row (count).
fn scatter_add_source(name: &str, ctype: CType) -> String {
    let (t, index) = (ctype.name(), ctype.index_name());
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ y_bar, const {index}* __restrict__ rows, {t}* __restrict__ table_bar, const unsigned long long distinct, const unsigned long long count, const unsigned long long columns) {{
    const {index}* starts = rows + distinct;
    const {index}* positions = starts + distinct + 1;
    const unsigned long long n = distinct * columns;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned long long u = e / columns, c = e % columns;
        {t} total = ({t})0;
        for (unsigned long long k = starts[u]; k < starts[u + 1]; ++k) {{
            total += y_bar[(unsigned long long)positions[k] * columns + c];
        }}
        table_bar[(unsigned long long)rows[u] * columns + c] += total;
    }}
}}
"
    )
}

/// The axes a permutation kernel reads along: a rank-4 tensor's and a complex
/// element's parts.
const PERMUTED_AXES: usize = 5;

/// `name(in, out, n, s0, …, s4, t0, …, t4)`: `out[e] = in[Σ iₖ·tₖ]` for the index
/// (i₀, …, i₄) of e in sizes s (module docs).
fn permute_source(name: &str, ctype: CType) -> String {
    let t = ctype.name();
    let axes: Vec<usize> = (0..PERMUTED_AXES).collect();
    let parameters = |letter: &str| {
        axes.iter().map(|k| format!("const unsigned long long {letter}{k}")).collect::<Vec<_>>().join(", ")
    };
    let list = |letter: &str| axes.iter().map(|k| format!("{letter}{k}")).collect::<Vec<_>>().join(", ");
    let (sizes, strides) = (parameters("s"), parameters("t"));
    let (size_list, stride_list) = (list("s"), list("t"));
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ in, {t}* __restrict__ out, const unsigned long long n, {sizes}, {strides}) {{
    const unsigned long long sizes[{PERMUTED_AXES}] = {{{size_list}}};
    const unsigned long long strides[{PERMUTED_AXES}] = {{{stride_list}}};
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        unsigned long long rest = e, offset = 0;
        for (int k = {PERMUTED_AXES} - 1; k >= 0; --k) {{
            offset += rest % sizes[k] * strides[k];
            rest /= sizes[k];
        }}
        out[e] = in[offset];
    }}
}}
"
    )
}

/// The kernels' names for `ctype`.
fn names(ctype: CType) -> [String; 3] {
    ["gather_rows", "scatter_add_rows", "permute"].map(|operation| kernel_name(operation, None, ctype))
}

/// The kernels, as `(name, CUDA C)` for `ctype`: for the offline check.
pub(super) fn sources(ctype: CType) -> Vec<(String, String)> {
    let [gather, scatter, permute] = names(ctype);
    vec![
        (gather.clone(), gather_source(&gather, ctype)),
        (scatter.clone(), scatter_add_source(&scatter, ctype)),
        (permute.clone(), permute_source(&permute, ctype)),
    ]
}

/// `out` ← `x` (row-major, `dims`, each element `parts` numbers) with its axes in
/// `order`: output axis k is input axis `order[k]`.
///
/// # Panics
/// When `order` is not a permutation of `dims`'s axes (at most 4), or a buffer is
/// shorter than the tensor.
pub(crate) fn permute<T: CudaElement>(
    x: &CudaSlice<T>,
    dims: &[usize],
    order: &[usize],
    parts: usize,
    out: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    permute_on(Device::get()?, x, dims, order, parts, out)
}

/// [`permute`] on `runner`.
pub(super) fn permute_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    dims: &[usize],
    order: &[usize],
    parts: usize,
    out: &mut R::Buffer,
) -> Result<(), CudaError> {
    let rank = dims.len();
    let mut named = vec![false; rank];
    let each_axis_once = order.len() == rank
        && rank < PERMUTED_AXES
        && order.iter().all(|&axis| axis < rank && !core::mem::replace(&mut named[axis], true));
    assert!(each_axis_once, "permute: {order:?} is not an order of {rank} axes");
    let n = dims.iter().product::<usize>() * parts;
    assert!(
        R::len(x) >= n && R::len(out) >= n,
        "permute: buffers of {} and {} numbers for {n}",
        R::len(x),
        R::len(out)
    );
    if n == 0 {
        return Ok(());
    }
    // Input strides in numbers; the output's axes, then the parts, padded in front
    // with axes of size 1.
    let mut input_strides = vec![parts; rank];
    for axis in (0..rank.saturating_sub(1)).rev() {
        input_strides[axis] = input_strides[axis + 1] * dims[axis + 1];
    }
    let (mut sizes, mut strides) = ([1u64; PERMUTED_AXES], [0u64; PERMUTED_AXES]);
    let first = PERMUTED_AXES - 1 - rank;
    for (k, &axis) in order.iter().enumerate() {
        (sizes[first + k], strides[first + k]) = (dims[axis] as u64, input_strides[axis] as u64);
    }
    (sizes[PERMUTED_AXES - 1], strides[PERMUTED_AXES - 1]) = (parts as u64, 1);
    let [_, _, name] = names(T::C_TYPE);
    let source = || Ok(permute_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(out)];
    let arguments: Vec<u64> = [n as u64].into_iter().chain(sizes).chain(strides).collect();
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `permute_source`'s parameter list; every offset Σ iₖ·tₖ is that of an
    // element of `x` (the order names each axis once, checked above), which holds n
    // numbers, as `out` does.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &arguments, config) }
}

/// Checks every index against the table's `rows` (naming the first one out of
/// range) and the table's buffer against its shape.
#[track_caller]
fn check_table(operation: &str, indices: &[usize], (rows, columns): (usize, usize), buffer_len: usize) {
    crate::ops::rows::check_row_indices(operation, indices, rows);
    assert!(
        buffer_len >= rows * columns,
        "{operation}: a table of {buffer_len} elements for {rows}×{columns}"
    );
}

/// `out[k, :] = table[indices[k], :]` for a table of `shape` (rows, columns).
///
/// # Panics
/// When an index is not a row of the table, or a buffer is shorter than its shape.
#[track_caller]
pub(crate) fn gather_rows<T: CudaElement>(
    table: &CudaSlice<T>,
    shape: (usize, usize),
    indices: &[usize],
    out: &mut CudaSlice<T>,
) -> Result<(), CudaError> {
    gather_rows_on(Device::get()?, table, shape, indices, out)
}

/// [`gather_rows`] on `runner`.
#[track_caller]
pub(super) fn gather_rows_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    table: &R::Buffer,
    shape: (usize, usize),
    indices: &[usize],
    out: &mut R::Buffer,
) -> Result<(), CudaError> {
    check_table("gather_rows", indices, shape, R::len(table));
    let columns = shape.1;
    let n = indices.len() * columns;
    if n == 0 {
        return Ok(());
    }
    assert!(R::len(out) >= n, "gather_rows: an output of {} elements for {n}", R::len(out));
    let index_buffer =
        runner.upload(&indices.iter().map(|&index| T::from_index(index)).collect::<Vec<T>>())?;
    let [name, _, _] = names(T::C_TYPE);
    let source = || Ok(gather_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(table), BufferArg::Read(&index_buffer), BufferArg::Write(out)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `gather_source`'s parameter list; every index was checked above to be a
    // row of the table, and `out` to hold count·columns elements.
    unsafe {
        runner.launch(&name, &source, &mut buffers, &[], &[indices.len() as u64, columns as u64], config)
    }
}

/// `table_bar[indices[k], :] += y_bar[k, :]` for every k, each row's sum taken in
/// increasing k (module docs).
///
/// # Panics
/// As [`gather_rows`], and when `y_bar` is shorter than `indices.len()·columns`.
#[track_caller]
pub(crate) fn scatter_add_rows<T: CudaElement>(
    y_bar: &CudaSlice<T>,
    indices: &[usize],
    table_bar: &mut CudaSlice<T>,
    shape: (usize, usize),
) -> Result<(), CudaError> {
    scatter_add_rows_on(Device::get()?, y_bar, indices, table_bar, shape)
}

/// [`scatter_add_rows`] on `runner`.
#[track_caller]
pub(super) fn scatter_add_rows_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    y_bar: &R::Buffer,
    indices: &[usize],
    table_bar: &mut R::Buffer,
    shape: (usize, usize),
) -> Result<(), CudaError> {
    check_table("scatter_add_rows", indices, shape, R::len(table_bar));
    let columns = shape.1;
    if indices.is_empty() || columns == 0 {
        return Ok(());
    }
    assert!(
        R::len(y_bar) >= indices.len() * columns,
        "scatter_add_rows: a cotangent of {} elements for {} rows of {columns}",
        R::len(y_bar),
        indices.len()
    );
    // The positions grouped by row (a stable sort keeps each group's order).
    let mut positions: Vec<usize> = (0..indices.len()).collect();
    positions.sort_by_key(|&k| indices[k]);
    let mut rows = Vec::new();
    let mut starts = Vec::new();
    for (at, &k) in positions.iter().enumerate() {
        if rows.last() != Some(&indices[k]) {
            rows.push(indices[k]);
            starts.push(at);
        }
    }
    starts.push(positions.len());
    let plan: Vec<T> =
        rows.iter().chain(&starts).chain(&positions).map(|&index| T::from_index(index)).collect();
    let plan = runner.upload(&plan)?;
    let [_, name, _] = names(T::C_TYPE);
    let source = || Ok(scatter_add_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(y_bar), BufferArg::Read(&plan), BufferArg::Write(table_bar)];
    let sizes = [rows.len() as u64, indices.len() as u64, columns as u64];
    let config = grid_stride_launch(rows.len() * columns, runner.multiprocessors());
    // SAFETY: `scatter_add_source`'s parameter list; the plan holds the distinct rows
    // (each checked above to be a row of the table), their starts and the positions
    // (each < count, whose rows `y_bar` was checked to hold).
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &sizes, config) }
}
