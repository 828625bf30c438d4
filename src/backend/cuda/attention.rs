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

/// The sizes of one attention: `sequences` of `query_tokens` query rows and
/// `key_tokens` key and value rows of `width` values, in `heads` heads of
/// width/heads, each query seeing the keys before it and itself when `causal`, else
/// its whole sequence, and of sequence n only the first `lengths[n]` when the
/// launch is given lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttentionGeometry {
    pub sequences: usize,
    pub query_tokens: usize,
    pub key_tokens: usize,
    pub width: usize,
    pub heads: usize,
    pub causal: bool,
}

impl AttentionGeometry {
    /// The elements of the queries (or of the output) and of the keys (or values).
    fn elements(&self) -> [usize; 2] {
        [self.query_tokens, self.key_tokens].map(|tokens| self.sequences * tokens * self.width)
    }

    /// The queries: one thread each.
    fn queries(&self) -> usize {
        self.sequences * self.heads * self.query_tokens
    }

    /// The keys: one thread each in the keys' pullback.
    fn keys(&self) -> usize {
        self.sequences * self.heads * self.key_tokens
    }

    /// The kernels' size arguments, in their parameter lists' order.
    fn sizes(&self, padded: bool) -> [u64; 7] {
        let Self { sequences, query_tokens, key_tokens, width, heads, causal } = *self;
        [sequences, query_tokens, key_tokens, width, heads, causal as usize, padded as usize]
            .map(|size| size as u64)
    }

    /// Checks the geometry, that every buffer of `of_queries` holds the queries' rows
    /// and every one of `of_keys` the keys' rows, and that `lengths` has one per
    /// sequence.
    #[track_caller]
    fn check(&self, operation: &str, [of_queries, of_keys]: [&[usize]; 2], lengths: Option<usize>) {
        assert!(
            self.heads > 0 && self.width.is_multiple_of(self.heads),
            "{operation}: {} heads for a width of {}",
            self.heads,
            self.width
        );
        assert!(self.key_tokens > 0 || self.queries() == 0, "{operation}: queries with no keys, {self:?}");
        for (lens, elements) in [of_queries, of_keys].into_iter().zip(self.elements()) {
            for &len in lens {
                assert!(len >= elements, "{operation}: a buffer of {len} elements for {self:?}");
            }
        }
        if let Some(len) = lengths {
            assert!(len >= self.sequences, "{operation}: {len} key lengths for {self:?}");
        }
    }
}

/// The parameter list shared by the kernels: `buffers` (name, written), the key
/// lengths (read only when `padded`), the scale 1/√d, then the sizes.
fn parameters(ctype: CType, buffers: &[(&str, bool)]) -> String {
    let t = ctype.name();
    let buffers = buffers.iter().map(|&(name, written)| {
        if written { format!("{t}* __restrict__ {name}") } else { format!("const {t}* __restrict__ {name}") }
    });
    let lengths = std::iter::once(format!("const {}* __restrict__ lengths", ctype.index_name()));
    let scale = std::iter::once(format!("const {t} scale"));
    let sizes = ["sequences", "query_tokens", "key_tokens", "width", "heads", "causal", "padded"]
        .map(|size| format!("const unsigned long long {size}"))
        .into_iter();
    buffers.chain(lengths).chain(scale).chain(sizes).collect::<Vec<_>>().join(", ")
}

/// Whose threads a kernel runs: one per query, or one per key.
#[derive(Clone, Copy)]
enum Threads {
    Queries,
    Keys,
}

/// A kernel with one thread per query (or key) `t` of head `h` of sequence `n`;
/// `q_base` and `k_base` are the offsets of head h of the sequence's first query and
/// first key, `d` the head's width, `length` the sequence's keys not padded and, for
/// a query's thread, `seen` the keys query t sees.
fn per_token_kernel(name: &str, parameters: &str, threads: Threads, body: &str) -> String {
    let (tokens, seen) = match threads {
        Threads::Queries => (
            "query_tokens",
            "        const unsigned long long unpadded = causal && t + 1 < key_tokens ? t + 1 : key_tokens;
        const unsigned long long seen = unpadded < length ? unpadded : length;
",
        ),
        Threads::Keys => ("key_tokens", ""),
    };
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long d = width / heads, n_threads = sequences * heads * {tokens};
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_threads; e += step) {{
        const unsigned long long t = e % {tokens}, h = (e / {tokens}) % heads, n = e / ({tokens} * heads);
        const unsigned long long q_base = n * query_tokens * width + h * d, k_base = n * key_tokens * width + h * d;
        const unsigned long long length = padded ? (unsigned long long)lengths[n] : key_tokens;
{seen}{body}    }}
}}
"
    )
}

/// `name = q_t·k_u/√d` for query `t` and key `u` (of head h).
fn score(name: &str, t: &str, u: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}{ty} {name} = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) {name} += q[q_base + {t} * width + i] * k[k_base + {u} * width + i];
{indent}{name} *= scale;
"
    )
}

/// `largest` and `total` of query `t`: its largest score over the keys it sees
/// (`count` of them), and the sum of the exponentials shifted by it.
fn softmax_totals(t: &str, count: &str, indent: &str, ctype: CType) -> String {
    let (ty, exp) = (ctype.name(), format!("exp{}", ctype.math_suffix()));
    let first = score("first", t, "0", indent, ctype);
    let inner = format!("{indent}    ");
    let (s1, s2) = (score("s", t, "u", &inner, ctype), score("s", t, "u", &inner, ctype));
    format!(
        "{first}{indent}{ty} largest = first;
{indent}for (unsigned long long u = 1; u < {count}; ++u) {{
{s1}{inner}if (s > largest) largest = s;
{indent}}}
{indent}{ty} total = ({ty})0;
{indent}for (unsigned long long u = 0; u < {count}; ++u) {{
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

/// `name(q, k, v, y, lengths, scale, sizes…)`: each query's output, o_t = Σ_u p_tu·v_u.
fn attention_source(name: &str, ctype: CType) -> String {
    let body = format!(
        "{}        for (unsigned long long i = 0; i < d; ++i) y[q_base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{}            for (unsigned long long i = 0; i < d; ++i) y[q_base + t * width + i] += p * v[k_base + u * width + i];
        }}
",
        softmax_totals("t", "seen", "        ", ctype),
        probability("t", "            ", ctype),
    );
    let buffers = [("q", false), ("k", false), ("v", false), ("y", true)];
    per_token_kernel(name, &parameters(ctype, &buffers), Threads::Queries, &body)
}

/// `name(q, k, v, q_dot, k_dot, v_dot, y_dot, lengths, scale, sizes…)`: each query's
/// tangent, ȯ_t = Σ_u p_tu·(ṡ_tu − c_t)·v_u + p_tu·v̇_u with c_t = Σ_u p_tu·ṡ_tu.
fn attention_push_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let s_dot = |indent: &str| {
        format!(
            "{indent}{ty} from_query = ({ty})0, from_key = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) from_query += q_dot[q_base + t * width + i] * k[k_base + u * width + i];
{indent}for (unsigned long long i = 0; i < d; ++i) from_key += q[q_base + t * width + i] * k_dot[k_base + u * width + i];
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
        for (unsigned long long i = 0; i < d; ++i) y_dot[q_base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{s_dot}            const {ty} weight = p * (s_dot - centre);
            for (unsigned long long i = 0; i < d; ++i) {{
                y_dot[q_base + t * width + i] += weight * v[k_base + u * width + i];
                y_dot[q_base + t * width + i] += p * v_dot[k_base + u * width + i];
            }}
        }}
",
        totals = softmax_totals("t", "seen", "        ", ctype),
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
    per_token_kernel(name, &parameters(ctype, &buffers), Threads::Queries, &body)
}

/// `p_bar = ō_t·v_u` for query `t` inside a loop over u.
fn output_bar_dot_value(t: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}{ty} p_bar = ({ty})0;
{indent}for (unsigned long long i = 0; i < d; ++i) p_bar += y_bar[q_base + {t} * width + i] * v[k_base + u * width + i];
"
    )
}

/// `name(q, k, v, y_bar, stats, lengths, scale, sizes…)`: per query, its largest
/// score, total and centre Σ_u p_tu·(ō_t·v_u), three values at `stats[3e]`.
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
        totals = softmax_totals("t", "seen", "        ", ctype),
        p = probability("t", inner, ctype),
        p_bar = output_bar_dot_value("t", inner, ctype),
    );
    let buffers = [("q", false), ("k", false), ("v", false), ("y_bar", false), ("stats", true)];
    per_token_kernel(name, &parameters(ctype, &buffers), Threads::Queries, &body)
}

/// `largest`, `total` and `centre` of query `query` of the thread's sequence and
/// head, from `stats`.
fn read_stats(query: &str, indent: &str, ctype: CType) -> String {
    let ty = ctype.name();
    format!(
        "{indent}const unsigned long long kept = 3 * ((n * heads + h) * query_tokens + {query});
{indent}const {ty} largest = stats[kept], total = stats[kept + 1], centre = stats[kept + 2];
"
    )
}

/// `name(q, k, v, y_bar, stats, q_bar, lengths, scale, sizes…)`: per query,
/// q̄_t = Σ_u p_tu·(ō_t·v_u − c_t)/√d·k_u.
fn attention_queries_pullback_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let inner = "            ";
    let body = format!(
        "{stats}        for (unsigned long long i = 0; i < d; ++i) q_bar[q_base + t * width + i] = 0;
        for (unsigned long long u = 0; u < seen; ++u) {{
{p}{p_bar}            const {ty} s_bar = p * (p_bar - centre) * scale;
            for (unsigned long long i = 0; i < d; ++i) q_bar[q_base + t * width + i] += s_bar * k[k_base + u * width + i];
        }}
",
        stats = read_stats("t", "        ", ctype),
        p = probability("t", inner, ctype),
        p_bar = output_bar_dot_value("t", inner, ctype),
    );
    let buffers =
        [("q", false), ("k", false), ("v", false), ("y_bar", false), ("stats", false), ("q_bar", true)];
    per_token_kernel(name, &parameters(ctype, &buffers), Threads::Queries, &body)
}

/// `name(q, k, v, y_bar, stats, k_bar, v_bar, lengths, scale, sizes…)`: per key u
/// (the thread's token), over the queries t that see it in order, v̄_u = Σ_t p_tu·ō_t
/// and k̄_u = Σ_t p_tu·(ō_t·v_u − c_t)/√d·q_t; a padding key gets zeros.
fn attention_keys_pullback_source(name: &str, ctype: CType) -> String {
    let ty = ctype.name();
    let inner = "            ";
    let body = format!(
        "        // This thread's token is key u; the queries that see it run from u
        // (causal) or 0, and none does when it is padding.
        const unsigned long long u = t;
        for (unsigned long long i = 0; i < d; ++i) {{
            k_bar[k_base + u * width + i] = 0;
            v_bar[k_base + u * width + i] = 0;
        }}
        for (unsigned long long query = causal ? u : 0; u < length && query < query_tokens; ++query) {{
{stats}{p}{p_bar}            const {ty} s_bar = p * (p_bar - centre) * scale;
            for (unsigned long long i = 0; i < d; ++i) {{
                v_bar[k_base + u * width + i] += p * y_bar[q_base + query * width + i];
                k_bar[k_base + u * width + i] += s_bar * q[q_base + query * width + i];
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
    per_token_kernel(name, &parameters(ctype, &buffers), Threads::Keys, &body)
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

/// Launches kernel `operation` of [`KERNELS`] with one thread per query (per key for
/// the keys' pullback), the key lengths after `buffers` (the first buffer stands in,
/// unread, when there are none).
///
/// # Safety
/// `buffers` must be the kernel's buffers, in its parameter list's order, each
/// holding the geometry's operand (or 3 values per query, for `stats`), the keys at
/// least one per sequence, and `lengths` one length per sequence (a kernel reads no
/// key past the key tokens whatever the lengths say; a length of 0 gives NaNs, so
/// the callers check them from 1 to the key tokens).
unsafe fn launch<T: CudaElement, R: Runner<T>>(
    runner: &R,
    operation: &str,
    buffers: Vec<BufferArg<'_, R::Buffer>>,
    lengths: Option<&R::Buffer>,
    geometry: AttentionGeometry,
) -> Result<(), CudaError> {
    let source = KERNELS.iter().find(|(name, _)| *name == operation).expect("an attention kernel").1;
    let name = kernel_name(operation, None, T::C_TYPE);
    // 1/√d as the host computes it.
    let scale = T::one() / T::from_f64((geometry.width / geometry.heads) as f64).sqrt();
    let threads = if operation == "attention_keys_pullback" { geometry.keys() } else { geometry.queries() };
    let config = grid_stride_launch(threads, runner.multiprocessors());
    let mut buffers = buffers;
    let stand_in = match &buffers[0] {
        BufferArg::Read(buffer) => *buffer,
        BufferArg::Write(_) => unreachable!("every attention kernel reads its first buffer"),
    };
    buffers.push(BufferArg::Read(lengths.unwrap_or(stand_in)));
    let sizes = geometry.sizes(lengths.is_some());
    // SAFETY: the caller's buffers and lengths; the scale and sizes complete the
    // parameter list.
    unsafe { runner.launch(&name, &|| Ok(source(&name, T::C_TYPE)), &mut buffers, &[scale], &sizes, config) }
}

/// y = the attention of the queries `q` to the keys `k`, averaging the values `v`,
/// with the keys of sequence n after `lengths[n]` padding when given.
///
/// # Panics
/// When a buffer is shorter than the geometry says, there are fewer lengths than
/// sequences, or the heads do not divide the width.
#[track_caller]
pub(crate) fn attention<T: CudaElement>(
    [q, k, v]: [&CudaSlice<T>; 3],
    y: &mut CudaSlice<T>,
    (geometry, lengths): (AttentionGeometry, Option<&[usize]>),
) -> Result<(), CudaError> {
    let device = Device::get()?;
    let lengths = upload_lengths(device, lengths)?;
    attention_on(device, [q, k, v], y, (geometry, lengths.as_ref()))
}

/// The key lengths in a buffer of elements, as their bits
/// ([`CudaElement::from_index`]).
fn upload_lengths<T: CudaElement, R: Runner<T>>(
    runner: &R,
    lengths: Option<&[usize]>,
) -> Result<Option<R::Buffer>, CudaError> {
    lengths
        .map(|lengths| {
            runner.upload(&lengths.iter().map(|&length| T::from_index(length)).collect::<Vec<T>>())
        })
        .transpose()
}

/// [`attention`] on `runner`, the lengths uploaded.
#[track_caller]
pub(super) fn attention_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    y: &mut R::Buffer,
    (geometry, lengths): (AttentionGeometry, Option<&R::Buffer>),
) -> Result<(), CudaError> {
    geometry.check("attention", [&[R::len(q), R::len(y)], &[R::len(k), R::len(v)]], lengths.map(R::len));
    if geometry.queries() == 0 {
        return Ok(());
    }
    let buffers = vec![BufferArg::Read(q), BufferArg::Read(k), BufferArg::Read(v), BufferArg::Write(y)];
    // SAFETY: `attention_source`'s buffers, each checked above to hold an operand.
    unsafe { launch(runner, "attention", buffers, lengths, geometry) }
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
    (geometry, lengths): (AttentionGeometry, Option<&[usize]>),
) -> Result<(), CudaError> {
    let device = Device::get()?;
    let lengths = upload_lengths(device, lengths)?;
    attention_push_on(device, operands, dots, y_dot, (geometry, lengths.as_ref()))
}

/// [`attention_push`] on `runner`, the lengths uploaded.
#[track_caller]
pub(super) fn attention_push_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    [q_dot, k_dot, v_dot]: [&R::Buffer; 3],
    y_dot: &mut R::Buffer,
    (geometry, lengths): (AttentionGeometry, Option<&R::Buffer>),
) -> Result<(), CudaError> {
    geometry.check(
        "attention_push",
        [&[R::len(q), R::len(q_dot), R::len(y_dot)], &[R::len(k), R::len(v), R::len(k_dot), R::len(v_dot)]],
        lengths.map(R::len),
    );
    if geometry.queries() == 0 {
        return Ok(());
    }
    let buffers = vec![
        BufferArg::Read(q),
        BufferArg::Read(k),
        BufferArg::Read(v),
        BufferArg::Read(q_dot),
        BufferArg::Read(k_dot),
        BufferArg::Read(v_dot),
        BufferArg::Write(y_dot),
    ];
    // SAFETY: `attention_push_source`'s buffers, each checked above to hold an operand.
    unsafe { launch(runner, "attention_push", buffers, lengths, geometry) }
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
    (geometry, lengths): (AttentionGeometry, Option<&[usize]>),
) -> Result<(), CudaError> {
    let device = Device::get()?;
    let lengths = upload_lengths(device, lengths)?;
    attention_pullback_on(device, operands, y_bar, bars, (geometry, lengths.as_ref()))
}

/// [`attention_pullback`] on `runner`, the lengths uploaded.
#[track_caller]
pub(super) fn attention_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    [q, k, v]: [&R::Buffer; 3],
    y_bar: &R::Buffer,
    [q_bar, k_bar, v_bar]: [&mut R::Buffer; 3],
    (geometry, lengths): (AttentionGeometry, Option<&R::Buffer>),
) -> Result<(), CudaError> {
    geometry.check(
        "attention_pullback",
        [&[R::len(q), R::len(y_bar), R::len(q_bar)], &[R::len(k), R::len(v), R::len(k_bar), R::len(v_bar)]],
        lengths.map(R::len),
    );
    if geometry.queries() == 0 {
        return Ok(());
    }
    let mut stats = runner.buffer(3 * geometry.queries(), false)?;
    let mut buffers = reading([q, k, v, y_bar]);
    buffers.push(BufferArg::Write(&mut stats));
    // SAFETY: `attention_stats_source`'s buffers: the operands checked above and 3
    // values per query.
    unsafe { launch(runner, "attention_stats", buffers, lengths, geometry)? };
    let mut buffers = reading([q, k, v, y_bar]);
    buffers.extend([BufferArg::Read(&stats), BufferArg::Write(q_bar)]);
    // SAFETY: `attention_queries_pullback_source`'s buffers, checked above.
    unsafe { launch(runner, "attention_queries_pullback", buffers, lengths, geometry)? };
    let mut buffers = reading([q, k, v, y_bar]);
    buffers.extend([BufferArg::Read(&stats), BufferArg::Write(k_bar), BufferArg::Write(v_bar)]);
    // SAFETY: `attention_keys_pullback_source`'s buffers, checked above.
    unsafe { launch(runner, "attention_keys_pullback", buffers, lengths, geometry) }
}

/// The buffers, read only.
fn reading<B>(buffers: [&B; 4]) -> Vec<BufferArg<'_, B>> {
    buffers.map(BufferArg::Read).into()
}
