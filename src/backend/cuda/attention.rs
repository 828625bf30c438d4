//! The written-out kernels of multi-head attention on rows of tokens
//! ([`crate::ops::attention`]) and of its derivatives.
//!
//! One thread per query (sequence n, head h, token t), which recomputes its scores
//! q_t·k_u/√d as it needs them: a pass for the largest, one for the total of the
//! shifted exponentials, one for the output, each in the host's order. The pullback
//! first keeps each query's largest score, total and centre Σ_u p_tu·(ō_t·v_u) (three
//! values per query), then computes q̄ with one thread per query and k̄, v̄ with one
//! thread per key u, which visits the queries that see it in order: no atomics, and
//! every sum is taken in the host's order.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use cudarc::driver::CudaSlice;

use super::codegen::CType;
use super::{BufferArg, CudaElement, CudaError, Device, Runner, grid_stride_launch, kernel_name};

/// The sizes of one attention: `sequences` of `tokens` rows of `width` values, in
/// `heads` heads of width/heads, each token seeing the tokens before it and itself
/// when `causal`, else its whole sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttentionGeometry {
    pub sequences: usize,
    pub tokens: usize,
    pub width: usize,
    pub heads: usize,
    pub causal: bool,
}

impl AttentionGeometry {
    /// The elements of each operand.
    fn elements(&self) -> usize {
        self.sequences * self.tokens * self.width
    }

    /// The queries (or keys): one thread each.
    fn queries(&self) -> usize {
        self.sequences * self.heads * self.tokens
    }

    /// The kernels' size arguments, in their parameter lists' order.
    fn sizes(&self) -> [u64; 5] {
        [self.sequences, self.tokens, self.width, self.heads, self.causal as usize].map(|size| size as u64)
    }

    /// Checks the geometry and that every buffer holds its operand.
    #[track_caller]
    fn check(&self, operation: &str, lens: &[usize]) {
        assert!(
            self.heads > 0 && self.width.is_multiple_of(self.heads),
            "{operation}: {} heads for a width of {}",
            self.heads,
            self.width
        );
        for &len in lens {
            assert!(len >= self.elements(), "{operation}: a buffer of {len} elements for {self:?}");
        }
    }
}

/// The parameter list shared by the kernels: `buffers` (name, written), the scale
/// 1/√d, then the sizes.
fn parameters(t: &str, buffers: &[(&str, bool)]) -> String {
    let buffers = buffers.iter().map(|&(name, written)| {
        if written { format!("{t}* __restrict__ {name}") } else { format!("const {t}* __restrict__ {name}") }
    });
    let scale = std::iter::once(format!("const {t} scale"));
    let sizes = ["sequences", "tokens", "width", "heads", "causal"]
        .map(|size| format!("const unsigned long long {size}"))
        .into_iter();
    buffers.chain(scale).chain(sizes).collect::<Vec<_>>().join(", ")
}

/// A kernel with one thread per query or key `t` of head `h` of sequence `n`; `base`
/// is the offset of head h of the sequence's first token, `d` the head's width and
/// `seen` the tokens t sees.
fn per_token_kernel(name: &str, parameters: &str, body: &str) -> String {
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long d = width / heads, n_threads = sequences * heads * tokens;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_threads; e += step) {{
        const unsigned long long t = e % tokens, h = (e / tokens) % heads, n = e / (tokens * heads);
        const unsigned long long base = n * tokens * width + h * d, seen = causal ? t + 1 : tokens;
{body}    }}
}}
"
    )
}

/// `name = q_t·k_u/√d` for query `t` and key `u` (of head h at `base`).
fn score(name: &str, t: &str, u: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}{ty} {name} = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) {name} += q[base + {t} * width + i] * k[base + {u} * width + i];
{indent}{name} *= scale;
"
    )
}

/// `largest` and `total` of query `t`: its largest score over the tokens it sees,
/// and the sum of the exponentials shifted by it.
fn softmax_totals(t: &str, indent: &str, ctype: CType) -> String {
    let (ty, exp) = (ctype.name(), format!("exp{}", ctype.math_suffix()));
    let first = score("first", t, "0", indent, ctype);
    let inner = format!("{indent}    ");
    let (s1, s2) = (score("s", t, "u", &inner, ctype), score("s", t, "u", &inner, ctype));
    format!(
        "{first}{indent}{ty} largest = first;
{indent}for (unsigned long long u = 1; u < seen; ++u) {{
{s1}{inner}if (s > largest) largest = s;
{indent}}}
{indent}{ty} total = ({ty})0;
{indent}for (unsigned long long u = 0; u < seen; ++u) {{
{s2}{inner}total += {exp}(s - largest);
{indent}}}
"
    )
}

/// `p = exp(s_tu − largest)/total` inside a loop over u.
fn probability(t: &str, indent: &str, ctype: CType) -> String {
    let (ty, exp) = (ctype.name(), format!("exp{}", ctype.math_suffix()));
    format!("{}{indent}const {ty} p = {exp}(s - largest) / total;\n", score("s", t, "u", indent, ctype))
}

/// `name(q, k, v, y, scale, sizes…)`: each query's output, o_t = Σ_u p_tu·v_u.
fn attention_source(name: &str, ctype: CType) -> String {
    let body = format!(
        "{}        for (unsigned long long i = 0; i < d; ++i) y[base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{}            for (unsigned long long i = 0; i < d; ++i) y[base + t * width + i] += p * v[base + u * width + i];
        }}
",
        softmax_totals("t", "        ", ctype),
        probability("t", "            ", ctype),
    );
    let buffers = [("q", false), ("k", false), ("v", false), ("y", true)];
    per_token_kernel(name, &parameters(ctype.name(), &buffers), &body)
}

/// `name(q, k, v, q_dot, k_dot, v_dot, y_dot, scale, sizes…)`: each query's tangent,
/// ȯ_t = Σ_u p_tu·(ṡ_tu − c_t)·v_u + p_tu·v̇_u with c_t = Σ_u p_tu·ṡ_tu.
fn attention_push_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let s_dot = |indent: &str| {
        format!(
            "{indent}{ty} from_query = ({ty})0, from_key = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) from_query += q_dot[base + t * width + i] * k[base + u * width + i];
{indent}for (unsigned long long i = 0; i < d; ++i) from_key += q[base + t * width + i] * k_dot[base + u * width + i];
{indent}const {ty} s_dot = (from_query + from_key) * scale;
"
        )
    };
    let inner = "            ";
    let body = format!(
        "{totals}        {ty} centre = ({ty})0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{s_dot}            centre += p * s_dot;
        }}
        for (unsigned long long i = 0; i < d; ++i) y_dot[base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{s_dot}            const {ty} weight = p * (s_dot - centre);
            for (unsigned long long i = 0; i < d; ++i) {{
                y_dot[base + t * width + i] += weight * v[base + u * width + i];
                y_dot[base + t * width + i] += p * v_dot[base + u * width + i];
            }}
        }}
",
        totals = softmax_totals("t", "        ", ctype),
        p = probability("t", inner, ctype),
        s_dot = s_dot(inner),
    );
    let buffers = [
        ("q", false),
        ("k", false),
        ("v", false),
        ("q_dot", false),
        ("k_dot", false),
        ("v_dot", false),
        ("y_dot", true),
    ];
    per_token_kernel(name, &parameters(ty, &buffers), &body)
}

/// `p_bar = ō_t·v_u` for query `t` inside a loop over u.
fn output_bar_dot_value(t: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}{ty} p_bar = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) p_bar += y_bar[base + {t} * width + i] * v[base + u * width + i];
"
    )
}

/// `name(q, k, v, y_bar, stats, scale, sizes…)`: per query, its largest score, total
/// and centre Σ_u p_tu·(ō_t·v_u), three values at `stats[3e]`.
fn attention_stats_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let inner = "            ";
    let body = format!(
        "{totals}        {ty} centre = ({ty})0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{p_bar}            centre += p * p_bar;
        }}
        stats[3 * e] = largest;
        stats[3 * e + 1] = total;
        stats[3 * e + 2] = centre;
",
        totals = softmax_totals("t", "        ", ctype),
        p = probability("t", inner, ctype),
        p_bar = output_bar_dot_value("t", inner, ctype),
    );
    let buffers = [("q", false), ("k", false), ("v", false), ("y_bar", false), ("stats", true)];
    per_token_kernel(name, &parameters(ty, &buffers), &body)
}

/// `largest`, `total` and `centre` of query `query` of the thread's sequence and
/// head, from `stats`.
fn read_stats(query: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}const unsigned long long kept = 3 * ((n * heads + h) * tokens + {query});
{indent}const {ty} largest = stats[kept], total = stats[kept + 1], centre = stats[kept + 2];
"
    )
}

/// `name(q, k, v, y_bar, stats, q_bar, scale, sizes…)`: per query,
/// q̄_t = Σ_u p_tu·(ō_t·v_u − c_t)/√d·k_u.
fn attention_queries_pullback_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let inner = "            ";
    let body = format!(
        "{stats}        for (unsigned long long i = 0; i < d; ++i) q_bar[base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{p_bar}            const {ty} s_bar = p * (p_bar - centre) * scale;
            for (unsigned long long i = 0; i < d; ++i) q_bar[base + t * width + i] += s_bar * k[base + u * width + i];
        }}
",
        stats = read_stats("t", "        ", ctype),
        p = probability("t", inner, ctype),
        p_bar = output_bar_dot_value("t", inner, ctype),
    );
    let buffers =
        [("q", false), ("k", false), ("v", false), ("y_bar", false), ("stats", false), ("q_bar", true)];
    per_token_kernel(name, &parameters(ty, &buffers), &body)
}

/// `name(q, k, v, y_bar, stats, k_bar, v_bar, scale, sizes…)`: per key u (the thread's
/// token), over the queries t that see it in order, v̄_u = Σ_t p_tu·ō_t and
/// k̄_u = Σ_t p_tu·(ō_t·v_u − c_t)/√d·q_t.
fn attention_keys_pullback_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let inner = "            ";
    let body = format!(
        "        // This thread's token is key u; its queries t run from u (causal) or 0
        // (`seen` is not used here).
        const unsigned long long u = t;
        for (unsigned long long i = 0; i < d; ++i) {{
            k_bar[base + u * width + i] = 0;
            v_bar[base + u * width + i] = 0;
        }}
        for (unsigned long long query = causal ? u : 0; query < tokens; ++query) {{
{stats}{p}{p_bar}            const {ty} s_bar = p * (p_bar - centre) * scale;
            for (unsigned long long i = 0; i < d; ++i) {{
                v_bar[base + u * width + i] += p * y_bar[base + query * width + i];
                k_bar[base + u * width + i] += s_bar * q[base + query * width + i];
            }}
        }}
",
        stats = read_stats("query", inner, ctype),
        p = probability("query", inner, ctype),
        p_bar = output_bar_dot_value("query", inner, ctype),
    );
    let buffers = [
        ("q", false),
        ("k", false),
        ("v", false),
        ("y_bar", false),
        ("stats", false),
        ("k_bar", true),
        ("v_bar", true),
    ];
    per_token_kernel(name, &parameters(ty, &buffers), &body)
}

/// The kernels, `(operation, source)`, in one place for launches and the offline
/// check.
const KERNELS: [(&str, fn(&str, CType) -> String); 5] = [
    ("attention", attention_source),
    ("attention_push", attention_push_source),
    ("attention_stats", attention_stats_source),
    ("attention_queries_pullback", attention_queries_pullback_source),
    ("attention_keys_pullback", attention_keys_pullback_source),
];

/// Every attention kernel, as `(name, CUDA C)` for `ctype`: for the offline check.
pub(super) fn sources(ctype: CType) -> Vec<(String, String)> {
    KERNELS
        .iter()
        .map(|(operation, source)| {
            let name = kernel_name(operation, None, ctype);
            (name.clone(), source(&name, ctype))
        })
        .collect()
}

/// Launches kernel `operation` of [`KERNELS`] with one thread per query.
///
/// # Safety
/// `buffers` must be the kernel's buffers, in its parameter list's order, each
/// holding the geometry's operand (or 3 values per query, for `stats`).
unsafe fn launch<T: CudaElement, R: Runner<T>>(
    runner: &R,
    operation: &str,
    buffers: &mut [BufferArg<'_, R::Buffer>],
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    let source = KERNELS.iter().find(|(name, _)| *name == operation).expect("an attention kernel").1;
    let name = kernel_name(operation, None, T::C_TYPE);
    // 1/√d as the host computes it.
    let scale = T::one() / T::from_f64((geometry.width / geometry.heads) as f64).sqrt();
    let config = grid_stride_launch(geometry.queries(), runner.multiprocessors());
    // SAFETY: the caller's buffers; the scale and sizes complete the parameter list.
    unsafe {
        runner.launch(&name, &|| Ok(source(&name, T::C_TYPE)), buffers, &[scale], &geometry.sizes(), config)
    }
}

/// y = the attention of the queries `q` to the keys `k`, averaging the values `v`.
///
/// # Panics
/// When a buffer is shorter than the geometry says, or the heads do not divide the
/// width.
#[track_caller]
pub(crate) fn attention<T: CudaElement>(
    [q, k, v]: [&CudaSlice<T>; 3],
    y: &mut CudaSlice<T>,
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    attention_on(Device::get()?, [q, k, v], y, geometry)
}

/// [`attention`] on `runner`.
#[track_caller]
pub(super) fn attention_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    y: &mut R::Buffer,
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    geometry.check("attention", &[R::len(q), R::len(k), R::len(v), R::len(y)]);
    if geometry.queries() == 0 {
        return Ok(());
    }
    let mut buffers = [BufferArg::Read(q), BufferArg::Read(k), BufferArg::Read(v), BufferArg::Write(y)];
    // SAFETY: `attention_source`'s buffers, each checked above to hold an operand.
    unsafe { launch(runner, "attention", &mut buffers, geometry) }
}

/// ẏ of the attention for the tangents `dots` of q, k and v.
///
/// # Panics
/// As [`attention`].
#[track_caller]
pub(crate) fn attention_push<T: CudaElement>(
    operands: [&CudaSlice<T>; 3],
    dots: [&CudaSlice<T>; 3],
    y_dot: &mut CudaSlice<T>,
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    attention_push_on(Device::get()?, operands, dots, y_dot, geometry)
}

/// [`attention_push`] on `runner`.
#[track_caller]
pub(super) fn attention_push_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    [q_dot, k_dot, v_dot]: [&R::Buffer; 3],
    y_dot: &mut R::Buffer,
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    let lens = [q, k, v, q_dot, k_dot, v_dot].map(R::len);
    geometry.check("attention_push", &[&lens[..], &[R::len(y_dot)]].concat());
    if geometry.queries() == 0 {
        return Ok(());
    }
    let mut buffers = [
        BufferArg::Read(q),
        BufferArg::Read(k),
        BufferArg::Read(v),
        BufferArg::Read(q_dot),
        BufferArg::Read(k_dot),
        BufferArg::Read(v_dot),
        BufferArg::Write(y_dot),
    ];
    // SAFETY: `attention_push_source`'s buffers, each checked above to hold an operand.
    unsafe { launch(runner, "attention_push", &mut buffers, geometry) }
}

/// (q̄, k̄, v̄) of the attention for the output's cotangent `y_bar`, overwritten.
///
/// # Panics
/// As [`attention`].
#[track_caller]
pub(crate) fn attention_pullback<T: CudaElement>(
    operands: [&CudaSlice<T>; 3],
    y_bar: &CudaSlice<T>,
    bars: [&mut CudaSlice<T>; 3],
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    attention_pullback_on(Device::get()?, operands, y_bar, bars, geometry)
}

/// [`attention_pullback`] on `runner`.
#[track_caller]
pub(super) fn attention_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    y_bar: &R::Buffer,
    [q_bar, k_bar, v_bar]: [&mut R::Buffer; 3],
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    let lens = [q, k, v, y_bar].map(R::len);
    geometry
        .check("attention_pullback", &[&lens[..], &[R::len(q_bar), R::len(k_bar), R::len(v_bar)]].concat());
    if geometry.queries() == 0 {
        return Ok(());
    }
    let mut stats = runner.buffer(3 * geometry.queries(), false)?;
    let [bq, bk, bv, by] = reading([q, k, v, y_bar]);
    let mut buffers = vec![bq, bk, bv, by, BufferArg::Write(&mut stats)];
    // SAFETY: `attention_stats_source`'s buffers: the operands checked above and 3
    // values per query.
    unsafe { launch(runner, "attention_stats", &mut buffers, geometry)? };
    let [bq, bk, bv, by] = reading([q, k, v, y_bar]);
    let mut buffers = [bq, bk, bv, by, BufferArg::Read(&stats), BufferArg::Write(q_bar)];
    // SAFETY: `attention_queries_pullback_source`'s buffers, checked above.
    unsafe { launch(runner, "attention_queries_pullback", &mut buffers, geometry)? };
    let [bq, bk, bv, by] = reading([q, k, v, y_bar]);
    let mut buffers =
        [bq, bk, bv, by, BufferArg::Read(&stats), BufferArg::Write(k_bar), BufferArg::Write(v_bar)];
    // SAFETY: `attention_keys_pullback_source`'s buffers, checked above.
    unsafe { launch(runner, "attention_keys_pullback", &mut buffers, geometry) }
}

/// The buffers, read only.
fn reading<B>(buffers: [&B; 4]) -> [BufferArg<'_, B>; 4] {
    buffers.map(BufferArg::Read)
}
