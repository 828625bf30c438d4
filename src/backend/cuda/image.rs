//! The written-out kernels of the image operations on `(B, C, H, W)` batches.
//!
//! A convolution runs as a product: `im2col` unfolds the images into a matrix with one
//! row per output position (b, i, j) and one column per kernel tap (c, p, q),
//! `cols[(b, i, j), (c, p, q)] = x[b, c, S·i + p − P, S·j + q − P]` (zero outside the
//! image), so that `y = cols · Wᵀ` through cuBLAS. Its pullback folds a cotangent of
//! that matrix back: `col2im` gives every input element the sum of the entries that
//! read it, one thread per element (no atomics, so the result does not depend on
//! scheduling). Pooling reads K×K windows moved S per output over the images padded
//! by P (the positions inside the image, as on the host), one thread per window: max
//! pooling the window's first largest element, average pooling its sum in the host's
//! order over K². Their pullbacks run one thread per input element, which visits the
//! windows that read it in order (windows may overlap, and no atomics are needed):
//! max pooling adds the cotangents of the windows whose first largest element it is,
//! average pooling each cotangent over K².

use std::format;
use std::string::String;

use cudarc::driver::CudaSlice;

use super::codegen::{CType, Store};
use super::{BufferArg, CudaElement, CudaError, Device, Runner, grid_stride_launch, kernel_name as name};

/// The sizes of a convolution on a batch of images: `batch` images of `channels` ×
/// `height` × `width`, a kernel of `kernel.0 × kernel.1` taps moved `stride` positions
/// per output over the images padded by `padding`, giving `output.0 × output.1`
/// positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: (usize, usize),
    pub output: (usize, usize),
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    /// Elements of the images.
    pub fn image_elements(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    /// Output positions over the batch: the rows of the unfolded matrix.
    pub fn positions(&self) -> usize {
        self.batch * self.output.0 * self.output.1
    }

    /// Kernel taps per output channel: the columns of the unfolded matrix.
    pub fn taps(&self) -> usize {
        self.channels * self.kernel.0 * self.kernel.1
    }

    /// The kernels' size arguments, in their parameter lists' order.
    fn sizes(&self) -> [u64; 10] {
        [
            self.batch,
            self.channels,
            self.height,
            self.width,
            self.kernel.0,
            self.kernel.1,
            self.output.0,
            self.output.1,
            self.stride,
            self.padding,
        ]
        .map(|size| size as u64)
    }

    /// Every output position reads inside the padded image, as the shape checks at
    /// compile time promise; checked again here so that a wrong geometry is an error,
    /// not a silent result (the kernels themselves read zeros outside the images).
    fn check(&self, operation: &str) {
        let fits = |input: usize, kernel: usize, output: usize| {
            self.stride > 0
                && (output == 0 || self.stride * (output - 1) + kernel <= input + 2 * self.padding)
        };
        assert!(
            fits(self.height, self.kernel.0, self.output.0) && fits(self.width, self.kernel.1, self.output.1),
            "{operation}: {self:?} reads outside the padded images"
        );
    }
}

/// The parameter list shared by `im2col` and `col2im`: two buffers, then the sizes.
fn conv_parameters(t: &str, first: &str, second: &str) -> String {
    let sizes = ["batch", "channels", "height", "width", "kh", "kw", "ho", "wo", "stride", "padding"]
        .map(|size| format!("const unsigned long long {size}"))
        .join(", ");
    format!("const {t}* __restrict__ {first}, {t}* __restrict__ {second}, {sizes}")
}

/// `name(x, cols, sizes…)`: the unfolded matrix of the module docs, one element per
/// round of a grid-stride loop (consecutive threads write consecutive taps).
fn im2col_source(name: &str, ctype: CType) -> String {
    let t = ctype.name();
    let parameters = conv_parameters(t, "x", "cols");
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long taps = channels * kh * kw;
    const unsigned long long n = batch * ho * wo * taps;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned long long tap = e % taps, position = e / taps;
        const unsigned long long q = tap % kw, p = (tap / kw) % kh, c = tap / (kw * kh);
        const unsigned long long j = position % wo, i = (position / wo) % ho, b = position / (wo * ho);
        const unsigned long long row = stride * i + p, column = stride * j + q;
        {t} value = ({t})0;
        if (row >= padding && row - padding < height && column >= padding && column - padding < width) {{
            value = x[((b * channels + c) * height + row - padding) * width + column - padding];
        }}
        cols[e] = value;
    }}
}}
"
    )
}

/// `name(cols_bar, x_bar, sizes…)`: x̄ (=|+=) the sum of the unfolded cotangent's
/// entries that read each input element, one element per thread.
fn col2im_source(name: &str, ctype: CType, store: Store) -> String {
    let t = ctype.name();
    let parameters = conv_parameters(t, "cols_bar", "x_bar");
    let store = store.operator();
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long taps = channels * kh * kw;
    const unsigned long long n = batch * channels * height * width;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned long long w = e % width, h = (e / width) % height;
        const unsigned long long c = (e / (width * height)) % channels, b = e / (width * height * channels);
        {t} total = ({t})0;
        for (unsigned long long p = 0; p < kh && p <= h + padding; ++p) {{
            const unsigned long long row = h + padding - p;
            if (row % stride != 0 || row / stride >= ho) continue;
            for (unsigned long long q = 0; q < kw && q <= w + padding; ++q) {{
                const unsigned long long column = w + padding - q;
                if (column % stride != 0 || column / stride >= wo) continue;
                const unsigned long long position = (b * ho + row / stride) * wo + column / stride;
                total += cols_bar[position * taps + (c * kh + p) * kw + q];
            }}
        }}
        x_bar[e] {store} total;
    }}
}}
"
    )
}

/// The statements that bound window (i, j): rows `h0..h1` and columns `w0..w1`, the
/// positions S·i + p − P (p < K) inside the image, as the host's `WindowAxis::reads`.
fn window_bounds(indent: &str) -> String {
    format!(
        "{indent}const unsigned long long h0 = i * stride >= padding ? i * stride - padding : 0;
{indent}const unsigned long long h_end = i * stride + window - padding, h1 = h_end < height ? h_end : height;
{indent}const unsigned long long w0 = j * stride >= padding ? j * stride - padding : 0;
{indent}const unsigned long long w_end = j * stride + window - padding, w1 = w_end < width ? w_end : width;
"
    )
}

/// The loop that finds the first largest element `best` (an offset into the image
/// `xi`) of window (i, j), its first NaN if it has one, row by row as the host's
/// pooling reads it.
fn window_maximum(indent: &str) -> String {
    let bounds = window_bounds(indent);
    let overtakes = super::codegen::overtakes("xi[at]", "xi[best]");
    format!(
        "{bounds}{indent}unsigned long long best = h0 * width + w0;
{indent}for (unsigned long long h = h0; h < h1; ++h) {{
{indent}    for (unsigned long long w = w0; w < w1; ++w) {{
{indent}        const unsigned long long at = h * width + w;
{indent}        if ({overtakes}) best = at;
{indent}    }}
{indent}}}
"
    )
}

/// The loops over the windows (i, j) that read input element `offset` of image
/// `image`, in order: the i with S·i − P ≤ row < S·i − P + K (and the same for j);
/// `body` runs in each with `window_bar`, the window's cotangent (of type `t`). The
/// host adds each window's share in the windows' order, so the sums agree to the bit.
fn windows_reading(indent: &str, t: &str, body: &str) -> String {
    format!(
        "{indent}const unsigned long long row = offset / width, column = offset % width;
{indent}const unsigned long long i0 = row + padding >= window ? (row + padding - window) / stride + 1 : 0;
{indent}const unsigned long long i_end = (row + padding) / stride + 1, i1 = i_end < ho ? i_end : ho;
{indent}const unsigned long long j0 = column + padding >= window ? (column + padding - window) / stride + 1 : 0;
{indent}const unsigned long long j_end = (column + padding) / stride + 1, j1 = j_end < wo ? j_end : wo;
{indent}for (unsigned long long i = i0; i < i1; ++i) {{
{indent}    for (unsigned long long j = j0; j < j1; ++j) {{
{indent}        const {t} window_bar = y_bar[(image * ho + i) * wo + j];
{body}{indent}    }}
{indent}}}
"
    )
}

/// The parameter list shared by the pooling kernels: buffers, then the sizes.
fn pool_parameters(t: &str, buffers: &[(&str, bool)]) -> String {
    let buffers = buffers.iter().map(|&(name, written)| {
        if written { format!("{t}* __restrict__ {name}") } else { format!("const {t}* __restrict__ {name}") }
    });
    let sizes = ["images", "height", "width", "window", "stride", "padding", "ho", "wo"]
        .map(|size| format!("const unsigned long long {size}"))
        .into_iter();
    buffers.chain(sizes).collect::<std::vec::Vec<_>>().join(", ")
}

/// A kernel with one thread per output window (i, j) of image `e / (ho·wo)`, `xi`
/// that image: `body` computes `y[e]`.
fn per_window_kernel(name: &str, parameters: &str, t: &str, body: &str) -> String {
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long n = images * ho * wo;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned long long j = e % wo, i = (e / wo) % ho;
        const {t}* xi = x + (e / (wo * ho)) * height * width;
{body}    }}
}}
"
    )
}

/// A kernel with one thread per input element `e` (`offset` into image `image`):
/// `body` computes `value`, stored into `x_bar[e]` by `store`.
fn per_element_kernel(name: &str, parameters: &str, t: &str, store: Store, body: &str) -> String {
    let store = store.operator();
    format!(
        "extern \"C\" __global__ void {name}({parameters}) {{
    const unsigned long long n = images * height * width;
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long e = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {{
        const unsigned long long image = e / (height * width), offset = e % (height * width);
        {t} value = ({t})0;
{body}        x_bar[e] {store} value;
    }}
}}
"
    )
}

/// `name(x, y, sizes…)`: each window's first largest element, one output per thread;
/// with `push`, `name(x, x_dot, y_dot, sizes…)` takes x_dot's element there instead
/// (the tangent of the pooling).
fn max_pool_source(name: &str, ctype: CType, push: bool) -> String {
    let t = ctype.name();
    let (buffers, read): (&[(&str, bool)], &str) = if push {
        (&[("x", false), ("x_dot", false), ("y", true)], "x_dot[(e / (wo * ho)) * height * width + best]")
    } else {
        (&[("x", false), ("y", true)], "xi[best]")
    };
    let body = format!("{}        y[e] = {read};\n", window_maximum("        "));
    per_window_kernel(name, &pool_parameters(t, buffers), t, &body)
}

/// `name(x, y_bar, x_bar, sizes…)`: x̄ (=|+=) the sum of ȳ over the windows whose
/// first largest element this is, in the windows' order; one input element per
/// thread (windows may overlap).
fn max_pool_pullback_source(name: &str, ctype: CType, store: Store) -> String {
    let t = ctype.name();
    let parameters = pool_parameters(t, &[("x", false), ("y_bar", false), ("x_bar", true)]);
    let search = format!(
        "{}                if (best == offset) value += window_bar;\n",
        window_maximum("                ")
    );
    let body = format!(
        "        const {t}* xi = x + image * height * width;\n{}",
        windows_reading("        ", t, &search)
    );
    per_element_kernel(name, &parameters, t, store, &body)
}

/// `name(x, y, sizes…)`: the sum of each window's elements inside the image, row by
/// row as on the host, over K²; one output per thread.
fn avg_pool_source(name: &str, ctype: CType) -> String {
    let t = ctype.name();
    let body = format!(
        "{}        {t} total = ({t})0;
        for (unsigned long long h = h0; h < h1; ++h) {{
            for (unsigned long long w = w0; w < w1; ++w) total += xi[h * width + w];
        }}
        y[e] = total / ({t})(window * window);
",
        window_bounds("        ")
    );
    per_window_kernel(name, &pool_parameters(t, &[("x", false), ("y", true)]), t, &body)
}

/// `name(y_bar, x_bar, sizes…)`: x̄ (=|+=) the sum of ȳ/K² over the windows that read
/// the element, in the windows' order, 0 for an element no window reads; one input
/// element per thread.
fn avg_pool_pullback_source(name: &str, ctype: CType, store: Store) -> String {
    let t = ctype.name();
    let parameters = pool_parameters(t, &[("y_bar", false), ("x_bar", true)]);
    let share = format!("                value += window_bar / ({t})(window * window);\n");
    per_element_kernel(name, &parameters, t, store, &windows_reading("        ", t, &share))
}

/// Every image kernel, as `(name, CUDA C)` for `ctype`: for the offline check.
pub(super) fn sources(ctype: CType) -> std::vec::Vec<(String, String)> {
    let mut sources = std::vec::Vec::new();
    let plain: [(&str, fn(&str, CType) -> String); 4] = [
        ("im2col", im2col_source),
        ("max_pool", |name, ctype| max_pool_source(name, ctype, false)),
        ("max_pool_push", |name, ctype| max_pool_source(name, ctype, true)),
        ("avg_pool", avg_pool_source),
    ];
    for (operation, source) in plain {
        let name = name(operation, None, ctype);
        sources.push((name.clone(), source(&name, ctype)));
    }
    for store in [Store::Overwrite, Store::Accumulate] {
        let stored = [
            ("col2im", col2im_source as fn(&str, CType, Store) -> String),
            ("max_pool_pullback", max_pool_pullback_source),
            ("avg_pool_pullback", avg_pool_pullback_source),
        ];
        for (operation, source) in stored {
            let name = name(operation, Some(store), ctype);
            sources.push((name.clone(), source(&name, ctype, store)));
        }
    }
    sources
}

/// The unfolded matrix `[positions, taps]` of the images `x` (module docs).
///
/// # Panics
/// When a buffer is shorter than `geometry` says, or the geometry reads outside the
/// padded images.
pub(crate) fn im2col<T: CudaElement>(
    x: &CudaSlice<T>,
    cols: &mut CudaSlice<T>,
    geometry: ConvGeometry,
) -> Result<(), CudaError> {
    im2col_on(Device::get()?, x, cols, geometry)
}

/// [`im2col`] on `runner`.
pub(super) fn im2col_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    cols: &mut R::Buffer,
    geometry: ConvGeometry,
) -> Result<(), CudaError> {
    geometry.check("im2col");
    let n = geometry.positions() * geometry.taps();
    assert!(
        R::len(x) >= geometry.image_elements() && R::len(cols) >= n,
        "im2col: buffers of {} and {} elements for {geometry:?}",
        R::len(x),
        R::len(cols)
    );
    if n == 0 {
        return Ok(());
    }
    let name = name("im2col", None, T::C_TYPE);
    let source = || Ok(im2col_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(cols)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `im2col_source`'s parameter list; the buffers were checked above to hold
    // the images and the unfolded matrix, and every read lies inside an image.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// x̄ (=|+=) the cotangent `cols_bar` of the unfolded matrix folded back onto the
/// images (module docs).
///
/// # Panics
/// As [`im2col`].
pub(crate) fn col2im<T: CudaElement>(
    cols_bar: &CudaSlice<T>,
    x_bar: &mut CudaSlice<T>,
    geometry: ConvGeometry,
    store: Store,
) -> Result<(), CudaError> {
    col2im_on(Device::get()?, cols_bar, x_bar, geometry, store)
}

/// [`col2im`] on `runner`.
pub(super) fn col2im_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    cols_bar: &R::Buffer,
    x_bar: &mut R::Buffer,
    geometry: ConvGeometry,
    store: Store,
) -> Result<(), CudaError> {
    geometry.check("col2im");
    let n = geometry.image_elements();
    assert!(
        R::len(cols_bar) >= geometry.positions() * geometry.taps() && R::len(x_bar) >= n,
        "col2im: buffers of {} and {} elements for {geometry:?}",
        R::len(cols_bar),
        R::len(x_bar)
    );
    if n == 0 {
        return Ok(());
    }
    let name = name("col2im", Some(store), T::C_TYPE);
    let source = || Ok(col2im_source(&name, T::C_TYPE, store));
    let mut buffers = [BufferArg::Read(cols_bar), BufferArg::Write(x_bar)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `col2im_source`'s parameter list; the buffers were checked above, and
    // every entry read is a position < ho·wo of the batch and a tap < taps.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// The sizes of a pooling: `images` (batch × channels) of `height × width`,
/// windows of `window × window` moved `stride` positions per output over the images
/// padded by `padding`, `output` windows per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolGeometry {
    pub images: usize,
    pub height: usize,
    pub width: usize,
    pub window: usize,
    pub stride: usize,
    pub padding: usize,
    pub output: (usize, usize),
}

impl PoolGeometry {
    fn sizes(&self) -> [u64; 8] {
        [
            self.images,
            self.height,
            self.width,
            self.window,
            self.stride,
            self.padding,
            self.output.0,
            self.output.1,
        ]
        .map(|size| size as u64)
    }

    /// Checks the buffers' lengths and that every window reads its image: the compile
    /// time checks' promise, checked again so that a wrong geometry is an error, not
    /// a read outside a buffer.
    fn check(&self, operation: &str, image_buffers: &[usize], pooled_buffers: &[usize]) {
        let (inputs, outputs) =
            (self.images * self.height * self.width, self.images * self.output.0 * self.output.1);
        let fits = |input: usize, output: usize| {
            output == 0 || self.stride * (output - 1) + self.window <= input + 2 * self.padding
        };
        let reads_the_images = outputs == 0 || (self.height > 0 && self.width > 0);
        assert!(
            self.window > 0
                && self.stride > 0
                && 2 * self.padding <= self.window
                && reads_the_images
                && fits(self.height, self.output.0)
                && fits(self.width, self.output.1),
            "{operation}: {self:?} has windows outside the images, or empty ones"
        );
        assert!(
            image_buffers.iter().all(|&len| len >= inputs)
                && pooled_buffers.iter().all(|&len| len >= outputs),
            "{operation}: buffers of {image_buffers:?} and {pooled_buffers:?} elements for {self:?}"
        );
    }
}

/// `y` = the first largest element of each window of `x`.
///
/// # Panics
/// When a buffer is shorter than `geometry` says or a window lies outside its image.
pub(crate) fn max_pool<T: CudaElement>(
    x: &CudaSlice<T>,
    y: &mut CudaSlice<T>,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    max_pool_on(Device::get()?, x, y, geometry)
}

/// [`max_pool`] on `runner`.
pub(super) fn max_pool_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    y: &mut R::Buffer,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    geometry.check("max_pool", &[R::len(x)], &[R::len(y)]);
    let n = geometry.images * geometry.output.0 * geometry.output.1;
    if n == 0 {
        return Ok(());
    }
    let name = name("max_pool", None, T::C_TYPE);
    let source = || Ok(max_pool_source(&name, T::C_TYPE, false));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(y)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `max_pool_source`'s parameter list, the buffers and windows checked above.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// `y_dot` = `x_dot` at the first largest element of each window of `x`: the
/// tangent of [`max_pool`].
///
/// # Panics
/// As [`max_pool`].
pub(crate) fn max_pool_push<T: CudaElement>(
    x: &CudaSlice<T>,
    x_dot: &CudaSlice<T>,
    y_dot: &mut CudaSlice<T>,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    max_pool_push_on(Device::get()?, x, x_dot, y_dot, geometry)
}

/// [`max_pool_push`] on `runner`.
pub(super) fn max_pool_push_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    x_dot: &R::Buffer,
    y_dot: &mut R::Buffer,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    geometry.check("max_pool_push", &[R::len(x), R::len(x_dot)], &[R::len(y_dot)]);
    let n = geometry.images * geometry.output.0 * geometry.output.1;
    if n == 0 {
        return Ok(());
    }
    let name = name("max_pool_push", None, T::C_TYPE);
    let source = || Ok(max_pool_source(&name, T::C_TYPE, true));
    let mut buffers = [BufferArg::Read(x), BufferArg::Read(x_dot), BufferArg::Write(y_dot)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `max_pool_source`'s parameter list with `push`, the buffers and windows
    // checked above.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// x̄ (=|+=) the sum of the cotangents of the windows whose first largest element of
/// `x` each element is, 0 for the others.
///
/// # Panics
/// As [`max_pool`].
pub(crate) fn max_pool_pullback<T: CudaElement>(
    x: &CudaSlice<T>,
    y_bar: &CudaSlice<T>,
    x_bar: &mut CudaSlice<T>,
    geometry: PoolGeometry,
    store: Store,
) -> Result<(), CudaError> {
    max_pool_pullback_on(Device::get()?, x, y_bar, x_bar, geometry, store)
}

/// [`max_pool_pullback`] on `runner`.
pub(super) fn max_pool_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    y_bar: &R::Buffer,
    x_bar: &mut R::Buffer,
    geometry: PoolGeometry,
    store: Store,
) -> Result<(), CudaError> {
    geometry.check("max_pool_pullback", &[R::len(x), R::len(x_bar)], &[R::len(y_bar)]);
    let n = geometry.images * geometry.height * geometry.width;
    if n == 0 {
        return Ok(());
    }
    let name = name("max_pool_pullback", Some(store), T::C_TYPE);
    let source = || Ok(max_pool_pullback_source(&name, T::C_TYPE, store));
    let mut buffers = [BufferArg::Read(x), BufferArg::Read(y_bar), BufferArg::Write(x_bar)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `max_pool_pullback_source`'s parameter list, the buffers and windows
    // checked above.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// `y` = the mean of each window of `x`.
///
/// # Panics
/// As [`max_pool`].
pub(crate) fn avg_pool<T: CudaElement>(
    x: &CudaSlice<T>,
    y: &mut CudaSlice<T>,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    avg_pool_on(Device::get()?, x, y, geometry)
}

/// [`avg_pool`] on `runner`.
pub(super) fn avg_pool_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    x: &R::Buffer,
    y: &mut R::Buffer,
    geometry: PoolGeometry,
) -> Result<(), CudaError> {
    geometry.check("avg_pool", &[R::len(x)], &[R::len(y)]);
    let n = geometry.images * geometry.output.0 * geometry.output.1;
    if n == 0 {
        return Ok(());
    }
    let name = name("avg_pool", None, T::C_TYPE);
    let source = || Ok(avg_pool_source(&name, T::C_TYPE));
    let mut buffers = [BufferArg::Read(x), BufferArg::Write(y)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `avg_pool_source`'s parameter list, the buffers and windows checked above.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}

/// x̄ (=|+=) the sum of the cotangents over K² of the windows that read each
/// element, 0 for an element no window reads.
///
/// # Panics
/// As [`max_pool`].
pub(crate) fn avg_pool_pullback<T: CudaElement>(
    y_bar: &CudaSlice<T>,
    x_bar: &mut CudaSlice<T>,
    geometry: PoolGeometry,
    store: Store,
) -> Result<(), CudaError> {
    avg_pool_pullback_on(Device::get()?, y_bar, x_bar, geometry, store)
}

/// [`avg_pool_pullback`] on `runner`.
pub(super) fn avg_pool_pullback_on<T: CudaElement, R: Runner<T>>(
    runner: &R,
    y_bar: &R::Buffer,
    x_bar: &mut R::Buffer,
    geometry: PoolGeometry,
    store: Store,
) -> Result<(), CudaError> {
    geometry.check("avg_pool_pullback", &[R::len(x_bar)], &[R::len(y_bar)]);
    let n = geometry.images * geometry.height * geometry.width;
    if n == 0 {
        return Ok(());
    }
    let name = name("avg_pool_pullback", Some(store), T::C_TYPE);
    let source = || Ok(avg_pool_pullback_source(&name, T::C_TYPE, store));
    let mut buffers = [BufferArg::Read(y_bar), BufferArg::Write(x_bar)];
    let config = grid_stride_launch(n, runner.multiprocessors());
    // SAFETY: `avg_pool_pullback_source`'s parameter list, the buffers and windows
    // checked above.
    unsafe { runner.launch(&name, &source, &mut buffers, &[], &geometry.sizes(), config) }
}
