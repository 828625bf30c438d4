//! CUDA C for the GPU kernels, generated from recorded [`Expression`]s.
//!
//! Two families cover every elementwise and reducing operation:
//!
//! | family | computes | used for |
//! | --- | --- | --- |
//! | elementwise | `out[i] = f(in₀[·], in₁[·], …; p₀, p₁, …)` | maps, `+`, `−`, scaling, fills, broadcasting a removed axis back, the elementwise pullbacks, softmax and its relatives' last pass |
//! | reduction | `out[l] = ⊕ₖ f(in₀[·], …)` over line `l` of one axis, ⊕ = Σ or max | `sum_axis`, `max_axis`, `sum`, softmax's max and totals, broadcast pullbacks |
//! | in-place update | `(w₀[i], w₁[i], …) = f(w₀[i], …, r₀[i], …; p₀, …)` | the optimisers' fused updates (a [`CoordinateUpdate`](crate::autodiff::CoordinateUpdate)) |
//!
//! Each input is read either at the element (`in[i]`) or at the element's line along
//! an axis (`in[line(i)]`, one value per line, as a tensor with that axis removed). A
//! tensor of dims `[outer, len, inner]` around the axis has `outer·inner` lines;
//! element `i` lies on line `(i / (len·inner))·inner + i mod inner`. Scalars `p` are
//! kernel arguments, so one compiled kernel serves every value (a learning rate, the
//! exponent of `powf`). The matrix transpose is the one kernel written out by hand.
//!
//! Every kernel is `extern "C"`, so its name in the compiled module is the name given
//! here.

use core::fmt::Write as _;
use std::borrow::ToOwned;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::symbolic::{BinaryOp, Expression, Node, UnaryOp};

/// The element types kernels are generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CType {
    /// `float`.
    F32,
    /// `double`.
    F64,
}

impl CType {
    /// The type's name in CUDA C.
    pub fn name(self) -> &'static str {
        match self {
            CType::F32 => "float",
            CType::F64 => "double",
        }
    }

    /// The unsigned integer type of this type's size: how a kernel reads the row
    /// indices that an element buffer carries ([`CudaElement::from_index`]).
    ///
    /// [`CudaElement::from_index`]: super::CudaElement::from_index
    pub fn index_name(self) -> &'static str {
        match self {
            CType::F32 => "unsigned int",
            CType::F64 => "unsigned long long",
        }
    }

    /// The suffix of the math library's functions for this type (`expf`, `exp`).
    pub(super) fn math_suffix(self) -> &'static str {
        match self {
            CType::F32 => "f",
            CType::F64 => "",
        }
    }

    /// `value` as an exact literal of this type.
    fn literal(self, value: f64) -> String {
        match self {
            CType::F32 => {
                let value = value as f32;
                if value.is_finite() {
                    format!("({value:?}f)")
                } else {
                    format!("__int_as_float(0x{:08x})", value.to_bits())
                }
            }
            CType::F64 => {
                if value.is_finite() {
                    format!("({value:?})")
                } else {
                    format!("__longlong_as_double(0x{:016x}LL)", value.to_bits())
                }
            }
        }
    }
}

/// Where a kernel reads an input for element `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Indexing {
    /// At the element itself: `in[i]`.
    Element,
    /// At the element's line along the axis: `in[line(i)]`.
    Line,
}

/// How a kernel stores its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    /// `out = value`.
    Overwrite,
    /// `out += value`.
    Accumulate,
}

impl Store {
    /// The C assignment operator that stores this way.
    pub fn operator(self) -> &'static str {
        match self {
            Store::Overwrite => "=",
            Store::Accumulate => "+=",
        }
    }
}

/// How a reduction combines the values along a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Combine {
    /// Σ, starting from 0.
    Sum,
    /// max, starting from −∞, NaN when any value is NaN.
    Max,
}

/// The C condition for `candidate` taking the lead from `leader` in a search for the
/// first largest element, as the host's: it is greater, or it is the first NaN (so
/// NaN wins wherever it stands, and a maximum of values with a NaN is NaN's position).
pub(super) fn overtakes(candidate: &str, leader: &str) -> String {
    format!("({candidate} > {leader} || ({candidate} != {candidate} && {leader} == {leader}))")
}

/// The C expression for the maximum of `a` and `b` that propagates NaN, as
/// `RealScalar::max` does on the CPU (`a + b` is NaN when either is).
fn max_expression(a: &str, b: &str) -> String {
    format!("(({a} != {a} || {b} != {b}) ? ({a} + {b}) : ({a} >= {b} ? {a} : {b}))")
}

/// Statements computing `expression`, with `inputs[k]` the C expression of input `k`;
/// returns them and the names of the outputs.
fn emit_body(expression: &Expression, ctype: CType, inputs: &[String]) -> (String, Vec<String>) {
    let mut used = vec![false; expression.nodes.len()];
    for &output in &expression.outputs {
        used[output as usize] = true;
    }
    for index in (0..expression.nodes.len()).rev() {
        if !used[index] {
            continue;
        }
        match expression.nodes[index] {
            Node::Unary(_, a) | Node::Powi(a, _) => used[a as usize] = true,
            Node::Binary(_, a, b) | Node::WherePositive { condition: a, value: b } => {
                used[a as usize] = true;
                used[b as usize] = true;
            }
            Node::WhereFinite { condition, finite, otherwise }
            | Node::Select { condition, positive: finite, otherwise } => {
                for id in [condition, finite, otherwise] {
                    used[id as usize] = true;
                }
            }
            Node::Input(_) | Node::Param(_) | Node::Constant(_) => {}
        }
    }
    let (t, suffix) = (ctype.name(), ctype.math_suffix());
    let mut body = String::new();
    for (index, node) in expression.nodes.iter().enumerate().filter(|&(index, _)| used[index]) {
        let v = |id: u32| format!("v{id}");
        let value = match *node {
            Node::Input(k) => inputs[k].clone(),
            Node::Param(k) => format!("p{k}"),
            Node::Constant(c) => ctype.literal(c),
            Node::Unary(op, a) => {
                let a = v(a);
                match op {
                    UnaryOp::Neg => format!("-{a}"),
                    UnaryOp::Abs => format!("fabs{suffix}({a})"),
                    UnaryOp::Exp => format!("exp{suffix}({a})"),
                    UnaryOp::Ln => format!("log{suffix}({a})"),
                    UnaryOp::Sin => format!("sin{suffix}({a})"),
                    UnaryOp::Cos => format!("cos{suffix}({a})"),
                    UnaryOp::Tanh => format!("tanh{suffix}({a})"),
                    UnaryOp::Sqrt => format!("sqrt{suffix}({a})"),
                    UnaryOp::Sinh => format!("sinh{suffix}({a})"),
                    UnaryOp::Cosh => format!("cosh{suffix}({a})"),
                    UnaryOp::Erf => format!("erf{suffix}({a})"),
                    UnaryOp::Erfc => format!("erfc{suffix}({a})"),
                    // CUDA's `round` rounds half away from zero, as Rust's does.
                    UnaryOp::Floor => format!("floor{suffix}({a})"),
                    UnaryOp::Ceil => format!("ceil{suffix}({a})"),
                    UnaryOp::Round => format!("round{suffix}({a})"),
                    UnaryOp::Trunc => format!("trunc{suffix}({a})"),
                }
            }
            Node::Binary(op, a, b) => {
                let (a, b) = (v(a), v(b));
                match op {
                    BinaryOp::Add => format!("{a} + {b}"),
                    BinaryOp::Sub => format!("{a} - {b}"),
                    BinaryOp::Mul => format!("{a} * {b}"),
                    BinaryOp::Div => format!("{a} / {b}"),
                    BinaryOp::Rem => format!("fmod{suffix}({a}, {b})"),
                    BinaryOp::Pow => format!("pow{suffix}({a}, {b})"),
                    BinaryOp::Max => max_expression(&a, &b),
                    BinaryOp::Atan2 => format!("atan2{suffix}({a}, {b})"),
                    BinaryOp::Hypot => format!("hypot{suffix}({a}, {b})"),
                }
            }
            Node::Powi(a, n) => format!("pow{suffix}(v{a}, ({t})({n}))"),
            Node::WherePositive { condition, value } => {
                format!("(v{condition} > ({t})0 ? v{value} : ({t})0)")
            }
            Node::WhereFinite { condition, finite, otherwise } => {
                format!("(isfinite(v{condition}) ? v{finite} : v{otherwise})")
            }
            Node::Select { condition, positive, otherwise } => {
                format!("(v{condition} > ({t})0 ? v{positive} : v{otherwise})")
            }
        };
        writeln!(body, "            const {t} v{index} = {value};").expect("writing to a String");
    }
    let outputs = expression.outputs.iter().map(|id| format!("v{id}")).collect();
    (body, outputs)
}

/// The kernel's parameter list: the inputs, the output, the scalar parameters, then
/// `extra` (sizes).
fn parameters(ctype: CType, inputs: usize, params: usize, extra: &str) -> String {
    let t = ctype.name();
    let mut list: Vec<String> = (0..inputs).map(|k| format!("const {t}* __restrict__ in{k}")).collect();
    list.push(format!("{t}* __restrict__ out"));
    list.extend((0..params).map(|k| format!("const {t} p{k}")));
    list.push(extra.into());
    list.join(", ")
}

/// Reads of each input at element `i` (`in[i]`) or at its line (`in[line]`).
fn input_reads(indexing: &[Indexing]) -> Vec<String> {
    indexing
        .iter()
        .enumerate()
        .map(|(k, indexing)| match indexing {
            Indexing::Element => format!("in{k}[i]"),
            Indexing::Line => format!("in{k}[line]"),
        })
        .collect()
}

/// Elements each thread handles per round of an elementwise kernel: independent loads
/// in flight, for memory bandwidth.
pub const UNROLL: usize = 4;

/// An elementwise kernel `name(in…, out, p…, n, len, inner)` ([`element_loop`]);
/// `len` and `inner` locate the element's line for [`Indexing::Line`] inputs (pass 1
/// and 1 when there are none).
pub fn elementwise_source(
    name: &str,
    ctype: CType,
    expression: &Expression,
    indexing: &[Indexing],
    params: usize,
    store: Store,
) -> String {
    let (body, outputs) = emit_body(expression, ctype, &input_reads(indexing));
    let parameters = parameters(
        ctype,
        indexing.len(),
        params,
        "const unsigned long long n, const unsigned long long len, const unsigned long long inner",
    );
    let line = if indexing.contains(&Indexing::Line) {
        "            const unsigned long long line = (i / (len * inner)) * inner + i % inner;\n"
    } else {
        ""
    };
    let store = store.operator();
    let output = &outputs[0];
    element_loop(name, &parameters, &format!("{line}{body}            out[i] {store} {output};\n"))
}

/// A kernel `name(parameters)` running `body` for every element `i < n`: each thread
/// handles [`UNROLL`] elements a block-width apart per round of a grid-stride loop
/// (coalesced reads, several in flight).
fn element_loop(name: &str, parameters: &str, body: &str) -> String {
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x * {UNROLL};
    for (unsigned long long base = (unsigned long long)blockIdx.x * blockDim.x * {UNROLL} + threadIdx.x; base < n; base += stride) {{
#pragma unroll
        for (unsigned int step = 0; step < {UNROLL}; ++step) {{
            const unsigned long long i = base + step * blockDim.x;
            if (i >= n) break;
{body}        }}
    }}
}}
"
    )
}

/// An in-place update kernel `name(w…, r…, p…, n)`: for every element `i`, the
/// expression's outputs (one per written buffer) computed from `w₀[i], …, r₀[i], …`
/// (written buffers first) are stored back into `w₀[i], …`. Every element is read
/// before it is written, by the one thread that owns it.
pub fn update_source(
    name: &str,
    ctype: CType,
    expression: &Expression,
    (written, read): (usize, usize),
    params: usize,
) -> String {
    let t = ctype.name();
    let reads: Vec<String> =
        (0..written).map(|k| format!("w{k}[i]")).chain((0..read).map(|k| format!("r{k}[i]"))).collect();
    let (mut body, outputs) = emit_body(expression, ctype, &reads);
    for (k, output) in outputs.iter().enumerate() {
        writeln!(body, "            w{k}[i] = {output};").expect("writing to a String");
    }
    let parameters: Vec<String> = (0..written)
        .map(|k| format!("{t}* __restrict__ w{k}"))
        .chain((0..read).map(|k| format!("const {t}* __restrict__ r{k}")))
        .chain((0..params).map(|k| format!("const {t} p{k}")))
        .chain(["const unsigned long long n".into()])
        .collect();
    element_loop(name, &parameters.join(", "), &body)
}

/// An elementwise kernel `name(in…, out, p…, n)` over `n` elements of several parts
/// each (a complex number is two: re, then im): input `k` holds `input_parts[k]`
/// consecutive values per element, read as the expression's inputs in order, and the
/// expression's outputs are the result's `output_parts` values, stored at
/// `out[i·output_parts + q]`.
pub fn parts_source(
    name: &str,
    ctype: CType,
    expression: &Expression,
    (input_parts, output_parts): (&[usize], usize),
    params: usize,
    store: Store,
) -> String {
    let reads: Vec<String> = input_parts
        .iter()
        .enumerate()
        .flat_map(|(k, &parts)| (0..parts).map(move |q| format!("in{k}[i * {parts} + {q}]")))
        .collect();
    let (mut body, outputs) = emit_body(expression, ctype, &reads);
    let store = store.operator();
    for (q, output) in outputs.iter().enumerate().take(output_parts) {
        writeln!(body, "            out[i * {output_parts} + {q}] {store} {output};")
            .expect("writing to a String");
    }
    let parameters = parameters(ctype, input_parts.len(), params, "const unsigned long long n");
    element_loop(name, &parameters, &body)
}

/// A reduction kernel `name(in…, out, p…, outer, len, inner, chunk)` for blocks of
/// `blockDim.x` lines × `blockDim.y` lanes (a power of two, at most 256 threads in
/// all). Block row `blockIdx.y` folds the values `k` of its lines with
/// `blockIdx.y·chunk ≤ k < (blockIdx.y + 1)·chunk`, each lane every `blockDim.y`-th of
/// them, then combines its lanes in shared memory and stores the result for chunk
/// `blockIdx.y` at `out[blockIdx.y·lines + line]` (with one chunk: `out[line]`). A
/// second reduction over the chunks finishes a split line.
pub fn reduction_source(
    name: &str,
    ctype: CType,
    expression: &Expression,
    indexing: &[Indexing],
    params: usize,
    combine: Combine,
    store: Store,
) -> String {
    let t = ctype.name();
    let (body, outputs) = emit_body(expression, ctype, &input_reads(indexing));
    let parameters = parameters(
        ctype,
        indexing.len(),
        params,
        "const unsigned long long outer, const unsigned long long len, const unsigned long long inner, const unsigned long long chunk",
    );
    let (identity, fold) = match combine {
        Combine::Sum => (ctype.literal(0.0), "acc + value".to_owned()),
        Combine::Max => (ctype.literal(f64::NEG_INFINITY), max_expression("acc", "value")),
    };
    let merge = match combine {
        Combine::Sum => "mine + theirs".to_owned(),
        Combine::Max => max_expression("mine", "theirs"),
    };
    let store = store.operator();
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    __shared__ {t} partial[256];
    const unsigned long long lines = outer * inner;
    const unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int slot = threadIdx.y * blockDim.x + threadIdx.x;
    const unsigned long long first = (unsigned long long)blockIdx.y * chunk;
    const unsigned long long end = first + chunk < len ? first + chunk : len;
    {t} acc = {identity};
    if (line < lines) {{
        const unsigned long long start = (line / inner) * len * inner + line % inner;
        for (unsigned long long k = first + threadIdx.y; k < end; k += blockDim.y) {{
            const unsigned long long i = start + k * inner;
{body}            const {t} value = {output};
            acc = {fold};
        }}
    }}
    partial[slot] = acc;
    __syncthreads();
    for (unsigned int half = blockDim.y / 2; half > 0; half /= 2) {{
        if (threadIdx.y < half) {{
            const {t} mine = partial[slot];
            const {t} theirs = partial[slot + half * blockDim.x];
            partial[slot] = {merge};
        }}
        __syncthreads();
    }}
    if (threadIdx.y == 0 && line < lines) {{
        out[(unsigned long long)blockIdx.y * lines + line] {store} partial[threadIdx.x];
    }}
}}
",
        output = outputs[0]
    )
}

/// The block copy `name(src, dst, outer, count, inner, src_len, src_start, dst_len,
/// dst_start)`: for every outer index o, `count` positions k along the axis and inner
/// index i, `dst[(o·dst_len + dst_start + k)·inner + i] (=|+=) src[(o·src_len +
/// src_start + k)·inner + i]` — concatenation, narrowing and their pullbacks, in a
/// grid-stride loop over the `outer·count·inner` copied elements.
pub fn copy_block_source(name: &str, ctype: CType, store: Store) -> String {
    let t = ctype.name();
    let store = store.operator();
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ src, {t}* __restrict__ dst, const unsigned long long outer, const unsigned long long count, const unsigned long long inner, const unsigned long long src_len, const unsigned long long src_start, const unsigned long long dst_len, const unsigned long long dst_start) {{
    const unsigned long long n = outer * count * inner;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += stride) {{
        const unsigned long long i = e % inner;
        const unsigned long long k = (e / inner) % count;
        const unsigned long long o = e / (inner * count);
        dst[(o * dst_len + dst_start + k) * inner + i] {store} src[(o * src_len + src_start + k) * inner + i];
    }}
}}
"
    )
}

/// The pullback of a maximum along an axis, `name(x, y_bar, x_bar, outer, len,
/// inner)`: one thread per line finds the line's first largest element (its first
/// NaN if it has one, as on the host) and writes ȳ there and 0 elsewhere (or adds
/// them).
pub fn max_pullback_source(name: &str, ctype: CType, store: Store) -> String {
    let t = ctype.name();
    let store = store.operator();
    let overtakes = overtakes("x[i]", "x[best]");
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ x, const {t}* __restrict__ y_bar, {t}* __restrict__ x_bar, const unsigned long long outer, const unsigned long long len, const unsigned long long inner) {{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; line < outer * inner; line += stride) {{
        const unsigned long long start = (line / inner) * len * inner + line % inner;
        unsigned long long best = start;
        for (unsigned long long k = 1; k < len; ++k) {{
            const unsigned long long i = start + k * inner;
            if ({overtakes}) best = i;
        }}
        for (unsigned long long k = 0; k < len; ++k) {{
            const unsigned long long i = start + k * inner;
            x_bar[i] {store} (i == best ? y_bar[line] : ({t})0);
        }}
    }}
}}
"
    )
}

/// The argmax of each line, `name(x, indices, outer, len, inner)`: one thread per
/// line writes the position along the axis of the line's first largest element (its
/// first NaN if it has one), as the bits of an element (read back by
/// `CudaElement::to_index`).
pub fn line_argmax_source(name: &str, ctype: CType) -> String {
    let (t, index) = (ctype.name(), ctype.index_name());
    let overtakes = overtakes("x[start + k * inner]", "x[start + best * inner]");
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ x, {index}* __restrict__ indices, const unsigned long long outer, const unsigned long long len, const unsigned long long inner) {{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; line < outer * inner; line += stride) {{
        const unsigned long long start = (line / inner) * len * inner + line % inner;
        unsigned long long best = 0;
        for (unsigned long long k = 1; k < len; ++k) {{
            if ({overtakes}) best = k;
        }}
        indices[line] = ({index})best;
    }}
}}
"
    )
}

/// The rest of logsumexp's pullback, `name(x, s, s_bar, x_bar, outer, len, inner)`:
/// one thread per line; along a line whose logsumexp `s` is +∞ (where the
/// elementwise pass wrote 0), s̄ is added to the line's first +∞, the limit of the
/// softmax there, as on the host. Other lines are left as they are.
pub fn infinite_line_pullback_source(name: &str, ctype: CType) -> String {
    let t = ctype.name();
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ x, const {t}* __restrict__ s, const {t}* __restrict__ s_bar, {t}* __restrict__ x_bar, const unsigned long long outer, const unsigned long long len, const unsigned long long inner) {{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; line < outer * inner; line += stride) {{
        const {t} total = s[line];
        if (!(total > ({t})0 && isinf(total))) continue;
        const unsigned long long start = (line / inner) * len * inner + line % inner;
        for (unsigned long long k = 0; k < len; ++k) {{
            const unsigned long long i = start + k * inner;
            if (x[i] == total) {{
                x_bar[i] += s_bar[line];
                break;
            }}
        }}
    }}
}}
"
    )
}

/// The tile transpose `name(in, out, batch, rows, cols)`: `out[b, c, r] = in[b, r, c]`
/// through a 32×33 shared tile (the extra column avoids bank conflicts), for blocks of
/// 32×8 threads; `blockIdx.x` numbers the tiles row by row, and `blockIdx.z` steps
/// through the batch (`gridDim.z` matrices apart).
pub fn transpose_source(name: &str, ctype: CType) -> String {
    let t = ctype.name();
    format!(
        "extern \"C\" __global__ void {name}(const {t}* __restrict__ in, {t}* __restrict__ out, const unsigned long long batch, const unsigned long long rows, const unsigned long long cols) {{
    __shared__ {t} tile[32][33];
    const unsigned long long column_tiles = (cols + 31) / 32;
    const unsigned long long tile_row = blockIdx.x / column_tiles;
    const unsigned long long tile_column = blockIdx.x % column_tiles;
    for (unsigned long long b = blockIdx.z; b < batch; b += gridDim.z) {{
        const unsigned long long offset = b * rows * cols;
        const unsigned long long column = tile_column * 32 + threadIdx.x;
        for (unsigned int j = threadIdx.y; j < 32; j += 8) {{
            const unsigned long long row = tile_row * 32 + j;
            if (row < rows && column < cols) tile[j][threadIdx.x] = in[offset + row * cols + column];
        }}
        __syncthreads();
        const unsigned long long out_column = tile_row * 32 + threadIdx.x;
        for (unsigned int j = threadIdx.y; j < 32; j += 8) {{
            const unsigned long long out_row = tile_column * 32 + j;
            if (out_row < cols && out_column < rows) out[offset + out_row * rows + out_column] = tile[threadIdx.x][j];
        }}
        __syncthreads();
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::symbolic::record;
    use crate::ops::elementwise::Elementary;
    use crate::scalar::Scalar;

    #[test]
    fn elementwise_kernel_prints_the_recorded_formula() {
        let expression = record(1, 0, |x, _| vec![Elementary::Tanh.apply(x[0])]).unwrap();
        let source = elementwise_source(
            "tanh_f32",
            CType::F32,
            &expression,
            &[Indexing::Element],
            0,
            Store::Overwrite,
        );
        assert!(source.contains(
            "extern \"C\" __global__ void tanh_f32(const float* __restrict__ in0, float* __restrict__ out,"
        ));
        assert!(source.contains("const float v1 = tanhf(v0);"), "{source}");
        assert!(source.contains("out[i] = v1;"), "{source}");
    }

    #[test]
    fn update_kernels_read_every_buffer_before_storing_into_the_written_ones() {
        // (x, v) ← (x − p₀·v′, v′) with v′ = p₁·v + g.
        let expression = record(3, 2, |x, p| {
            let velocity = p[1] * x[1] + x[2];
            vec![x[0] - p[0] * velocity, velocity]
        })
        .unwrap();
        let source = update_source("step_f64", CType::F64, &expression, (2, 1), 2);
        assert!(
            source.contains(
                "step_f64(double* __restrict__ w0, double* __restrict__ w1, const double* __restrict__ r0, \
                 const double p0, const double p1, const unsigned long long n)"
            ),
            "{source}"
        );
        let position = |text: &str| source.find(text).unwrap_or_else(|| panic!("no `{text}` in\n{source}"));
        assert!(position("= w0[i];") < position("w0[i] = v"));
        assert!(position("= w1[i];") < position("w0[i] = v"));
        assert!(position("= r0[i];") < position("w0[i] = v"));
        assert!(position("w0[i] = v") < position("w1[i] = v"));
    }

    #[test]
    fn literals_are_exact_and_non_finite_values_are_bit_patterns() {
        assert_eq!(CType::F64.literal(0.1), "(0.1)");
        assert_eq!(CType::F32.literal(-2.5), "(-2.5f)");
        assert_eq!(CType::F32.literal(f64::NEG_INFINITY), "__int_as_float(0xff800000)");
        assert_eq!(CType::F64.literal(f64::INFINITY), "__longlong_as_double(0x7ff0000000000000LL)");
    }

    #[test]
    fn line_inputs_are_read_at_the_line_and_unused_nodes_are_dropped() {
        let expression = record(2, 1, |x, p| {
            let _unused = x[0].exp();
            vec![(x[0] - x[1]).exp() * p[0]]
        })
        .unwrap();
        let source = elementwise_source(
            "shifted_exp",
            CType::F64,
            &expression,
            &[Indexing::Element, Indexing::Line],
            1,
            Store::Accumulate,
        );
        assert!(source.contains("const double v1 = in1[line];"), "{source}");
        assert!(source.contains("const double p0"), "{source}");
        assert!(source.contains("out[i] += "), "{source}");
        assert_eq!(source.matches("= exp(").count(), 1, "{source}");
    }

    #[test]
    fn reductions_fold_with_the_nan_propagating_max() {
        let expression = record(1, 0, |x, _| vec![x[0]]).unwrap();
        let source = reduction_source(
            "max_rows",
            CType::F32,
            &expression,
            &[Indexing::Element],
            0,
            Combine::Max,
            Store::Overwrite,
        );
        assert!(source.contains("acc != acc"), "{source}");
        assert!(source.contains("__int_as_float(0xff800000)"), "{source}");
    }
}
