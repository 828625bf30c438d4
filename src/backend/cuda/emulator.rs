//! The generated CUDA C run on the host, to check it without a GPU.
//!
//! The kernels' source is compiled by the host's C++ compiler together with a small
//! prelude that gives it CUDA's names: each block of a launch runs in turn, each of
//! its threads as an OS thread (`threadIdx` and `blockIdx` are thread-locals),
//! `__syncthreads` is a barrier of the block's threads, and `__shared__` memory is a
//! static, which the block's threads share. The launches go through the same
//! [`Runner`] calls as on the GPU: the same launch shapes, argument order, split
//! reductions and their second pass. The tests compare every generated kernel with
//! its recorded formula evaluated on the host.

use std::ffi::c_void;
use std::format;
use std::path::PathBuf;
use std::process::Command;
use std::string::String;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::vec::Vec;

use cudarc::driver::LaunchConfig;

use super::codegen::CType;
use super::{CudaElement, CudaError, Kernel, Runner, UpdateKernel};

/// CUDA's names for the host: see the module docs.
const PRELUDE: &str = r#"
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

struct uint3 { unsigned int x, y, z; };
static thread_local uint3 threadIdx, blockIdx;
static uint3 blockDim, gridDim;
static std::barrier<>* block_barrier;
#define __global__
#define __shared__ static
using std::isfinite;
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
static inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
static inline double __longlong_as_double(long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }

template <class Body> static void launch(const unsigned* grid, const unsigned* block, Body body) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const unsigned threads = block[0] * block[1] * block[2];
    for (unsigned z = 0; z < grid[2]; ++z)
    for (unsigned y = 0; y < grid[1]; ++y)
    for (unsigned x = 0; x < grid[0]; ++x) {
        std::barrier<> barrier(threads);
        block_barrier = &barrier;
        std::vector<std::thread> running;
        for (unsigned t = 0; t < threads; ++t) {
            running.emplace_back([=] {
                blockIdx = {x, y, z};
                threadIdx = {t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1])};
                body();
            });
        }
        for (auto& thread : running) thread.join();
    }
}
"#;

/// The entry point `run_<name>(grid, block, buffers, params, sizes)` that launches
/// kernel `name` with `buffers` cast to its pointer types, then its scalar parameters,
/// then `sizes`.
fn entry_point(name: &str, t: &str, buffers: &[&str], params: usize, sizes: usize) -> String {
    let arguments: Vec<String> = buffers
        .iter()
        .enumerate()
        .map(|(k, pointer)| format!("({pointer})buffers[{k}]"))
        .chain((0..params).map(|k| format!("params[{k}]")))
        .chain((0..sizes).map(|k| format!("sizes[{k}]")))
        .collect();
    format!(
        "extern \"C\" void run_{name}(const unsigned* grid, const unsigned* block, void** buffers, const {t}* params, \
         const unsigned long long* sizes) {{\n    launch(grid, block, [=] {{ {name}({}); }});\n}}\n",
        arguments.join(", ")
    )
}

/// The generated kernels, compiled for the host into a shared library.
pub(super) struct Emulator {
    library: libloading::Library,
    _folder: TempFolder,
}

/// A folder removed when dropped.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        // Best effort: a folder left behind in the temporary directory harms nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Emulator {
    /// Compiles `kernels` and `updates` for both element types.
    pub(super) fn new(kernels: &[Kernel], updates: &[UpdateKernel]) -> Emulator {
        let mut source = String::from(PRELUDE);
        for ctype in [CType::F32, CType::F64] {
            let t = ctype.name();
            let (input, output) = (format!("const {t}*"), format!("{t}*"));
            for kernel in kernels {
                let name = kernel.compiled_name(ctype);
                source += &kernel.source(ctype).expect("fluxion's own kernels record");
                let mut buffers: Vec<&str> = kernel.indexing.iter().map(|_| input.as_str()).collect();
                buffers.push(&output);
                let sizes = if kernel.combine.is_some() { 4 } else { 3 };
                source += &entry_point(&name, t, &buffers, kernel.params, sizes);
            }
            for update in updates {
                let (written, read) = update.buffers;
                source += &update.source(ctype);
                let buffers: Vec<&str> =
                    (0..written).map(|_| output.as_str()).chain((0..read).map(|_| input.as_str())).collect();
                source += &entry_point(&update.compiled_name(ctype), t, &buffers, update.params, 1);
            }
        }
        // One library per emulator: its launch state (the block's barrier, `gridDim`)
        // is the library's own, so tests running side by side do not share it.
        static EMULATORS: AtomicUsize = AtomicUsize::new(0);
        let id = EMULATORS.fetch_add(1, Ordering::Relaxed);
        let folder = std::env::temp_dir().join(format!("fluxion-emulator-{}-{id}", std::process::id()));
        let folder = TempFolder(folder);
        std::fs::create_dir_all(&folder.0).expect("a temporary folder");
        let (source_path, library_path) = (folder.0.join("kernels.cpp"), folder.0.join("kernels.so"));
        std::fs::write(&source_path, source).expect("the kernels' source written");
        let output = Command::new("g++")
            .args(["-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-o"])
            .arg(&library_path)
            .arg(&source_path)
            .output()
            .expect("g++ (the host's C++ compiler) runs");
        assert!(
            output.status.success(),
            "g++ rejects the kernels: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // SAFETY: the library was just built from the source above; loading runs no
        // initialisers other than the C++ runtime's.
        let library = unsafe { libloading::Library::new(&library_path) }.expect("the kernels' library loads");
        Emulator { library, _folder: folder }
    }

    /// Calls `run_<name>` with the launch shape, buffers, parameters and sizes.
    fn call<T: CudaElement>(
        &self,
        name: &str,
        config: LaunchConfig,
        buffers: &[*mut c_void],
        params: &[T],
        sizes: &[u64],
    ) {
        type Entry<T> =
            unsafe extern "C" fn(*const u32, *const u32, *const *mut c_void, *const T, *const u64);
        let grid = [config.grid_dim.0, config.grid_dim.1, config.grid_dim.2];
        let block = [config.block_dim.0, config.block_dim.1, config.block_dim.2];
        // SAFETY: `run_<name>` was generated by `entry_point` with exactly this
        // signature for element type `T`.
        let entry = unsafe { self.library.get::<Entry<T>>(format!("run_{name}").as_bytes()) }
            .unwrap_or_else(|error| panic!("no entry point for `{name}`: {error}"));
        // SAFETY: the kernel reads and writes the buffers within the sizes passed, which
        // `Kernel::launch_on` and `UpdateKernel::launch_on` check against the buffers'
        // lengths; parameters and sizes are as many as the kernel takes.
        unsafe { entry(grid.as_ptr(), block.as_ptr(), buffers.as_ptr(), params.as_ptr(), sizes.as_ptr()) }
    }
}

impl<T: CudaElement> Runner<T> for Emulator {
    type Buffer = Vec<T>;

    fn len(buffer: &Vec<T>) -> usize {
        buffer.len()
    }

    fn buffer(&self, len: usize, _zeroed: bool) -> Result<Vec<T>, CudaError> {
        Ok(std::vec![T::zero(); len.max(1)])
    }

    fn multiprocessors(&self) -> usize {
        2
    }

    fn run(
        &self,
        kernel: &Kernel,
        inputs: &[&Vec<T>],
        params: &[T],
        sizes: &[u64],
        out: &mut Vec<T>,
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        let mut buffers: Vec<*mut c_void> =
            inputs.iter().map(|input| input.as_ptr() as *mut c_void).collect();
        buffers.push(out.as_mut_ptr() as *mut c_void);
        self.call(&kernel.compiled_name(T::C_TYPE), config, &buffers, params, sizes);
        Ok(())
    }

    fn run_update(
        &self,
        kernel: &UpdateKernel,
        written: &mut [&mut Vec<T>],
        read: &[&Vec<T>],
        params: &[T],
        n: u64,
        config: LaunchConfig,
    ) -> Result<(), CudaError> {
        let buffers: Vec<*mut c_void> = written
            .iter_mut()
            .map(|buffer| buffer.as_mut_ptr() as *mut c_void)
            .chain(read.iter().map(|buffer| buffer.as_ptr() as *mut c_void))
            .collect();
        self.call(&kernel.compiled_name(T::C_TYPE), config, &buffers, params, &[n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::vec;

    use super::super::AxisSplit;
    use super::super::codegen::{Combine, Indexing, Store};
    use super::super::symbolic::record;
    use super::*;
    use crate::scalar::RealScalar;

    /// Deterministic values in [−2, 2) (xorshift64*), exact in f32.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            bits as f64 / (1u64 << 24) as f64 * 4.0 - 2.0
        }

        fn take<T: CudaElement>(&mut self, n: usize) -> Vec<T> {
            (0..n).map(|_| T::from_f64(self.next())).collect()
        }
    }

    /// |device − host| ≤ tol·max(1, |host|), NaN where the host has NaN.
    #[track_caller]
    fn assert_close(device: &[f64], host: &[f64], tol: f64, what: &str) {
        assert_eq!(device.len(), host.len(), "{what}");
        for (i, (&d, &h)) in device.iter().zip(host).enumerate() {
            let agree = if h.is_nan() || d.is_nan() {
                h.is_nan() && d.is_nan()
            } else if h.is_infinite() {
                d == h
            } else {
                (d - h).abs() <= tol * h.abs().max(1.0)
            };
            assert!(agree, "{what}, element {i}: emulated {d}, host {h}");
        }
    }

    /// What `kernel` should leave in `out` (holding `before`): its formula evaluated on
    /// the host for every element (elementwise) or folded along every line (reduction).
    fn expected(
        kernel: &Kernel,
        inputs: &[Vec<f64>],
        params: &[f64],
        axis: AxisSplit,
        before: &[f64],
    ) -> Vec<f64> {
        let expression =
            record(kernel.indexing.len(), kernel.params, |x, p| vec![(kernel.function)(x, p)]).unwrap();
        let (outer, len, inner) = axis;
        let value = |i: usize, line: usize| {
            let read: Vec<f64> = inputs
                .iter()
                .zip(&kernel.indexing)
                .map(|(input, indexing)| if *indexing == Indexing::Element { input[i] } else { input[line] })
                .collect();
            expression.evaluate(&read, params)[0]
        };
        let results: Vec<f64> = match kernel.combine {
            None => {
                (0..outer * len * inner).map(|i| value(i, (i / (len * inner)) * inner + i % inner)).collect()
            }
            Some(combine) => (0..outer * inner)
                .map(|line| {
                    let start = (line / inner) * len * inner + line % inner;
                    let values = (0..len).map(|k| value(start + k * inner, line));
                    match combine {
                        Combine::Sum => values.sum(),
                        Combine::Max => values.fold(f64::NEG_INFINITY, RealScalar::max),
                    }
                })
                .collect(),
        };
        match kernel.store {
            Store::Overwrite => results,
            Store::Accumulate => results.iter().zip(before).map(|(r, b)| b + r).collect(),
        }
    }

    /// Runs `kernel` over `axis` in the emulator on deterministic data and compares the
    /// result with [`expected`].
    fn check_kernel<T: CudaElement>(
        emulator: &Emulator,
        kernel: &Kernel,
        axis: AxisSplit,
        tol: f64,
        seed: u64,
    ) {
        let mut values = Values(seed);
        let (elements, lines) = (axis.0 * axis.1 * axis.2, axis.0 * axis.2);
        let inputs: Vec<Vec<T>> = kernel
            .indexing
            .iter()
            .map(|indexing| values.take(if *indexing == Indexing::Element { elements } else { lines }))
            .collect();
        let params: Vec<T> =
            (0..kernel.params).map(|_| T::from_f64(0.5 + values.next().abs() / 2.0)).collect();
        let mut out: Vec<T> = values.take(if kernel.combine.is_none() { elements } else { lines });
        let before: Vec<f64> = out.iter().map(|x| x.to_f64()).collect();
        let input_refs: Vec<&Vec<T>> = inputs.iter().collect();
        kernel.launch_on(emulator, &input_refs, &params, axis, &mut out).unwrap();
        let to_f64 = |xs: &[T]| xs.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
        let host_inputs: Vec<Vec<f64>> = inputs.iter().map(|input| to_f64(input)).collect();
        let want = expected(kernel, &host_inputs, &to_f64(&params), axis, &before);
        let what = format!("`{}` over {axis:?}", kernel.compiled_name(T::C_TYPE));
        assert_close(&to_f64(&out), &want, tol, &what);
    }

    #[test]
    fn every_generated_kernel_computes_its_formula() {
        let kernels = crate::ops::cuda::builtin_kernels();
        let updates = crate::nn::optim::update_kernels();
        let emulator = Emulator::new(&kernels, &updates);
        let elementwise_shapes = [(3, 5, 7), (1, 9, 1)];
        // Lines along the last axis and across it; the last two are split into chunks
        // (with two multiprocessors) and folded by a second pass.
        let reduction_shapes = [(2, 7, 3), (3, 300, 1), (2, 200, 5)];
        for axis in &reduction_shapes[1..] {
            assert!(super::super::reduction_launch(*axis, 2).1 > 1, "{axis:?} is split");
        }
        for (index, kernel) in kernels.iter().enumerate() {
            let shapes: &[AxisSplit] =
                if kernel.combine.is_none() { &elementwise_shapes } else { &reduction_shapes };
            for &axis in shapes {
                check_kernel::<f64>(&emulator, kernel, axis, 1e-12, index as u64 + 1);
                check_kernel::<f32>(&emulator, kernel, axis, 1e-4, index as u64 + 1);
            }
        }
        // More elements than a full grid's threads hold: the grid-stride loop's rounds.
        let add = kernels.iter().find(|kernel| kernel.name == "add").expect("an `add` kernel");
        check_kernel::<f32>(&emulator, add, (1, 70_001, 1), 1e-6, 99);
    }

    #[test]
    fn every_update_kernel_updates_in_place_by_its_formula() {
        let updates = crate::nn::optim::update_kernels();
        let emulator = Emulator::new(&[], &updates);
        for (index, update) in updates.iter().enumerate() {
            let (written, read) = update.buffers;
            let n = 1000;
            let mut values = Values(index as u64 + 7);
            let mut buffers: Vec<Vec<f64>> = (0..written).map(|_| values.take(n)).collect();
            let reads: Vec<Vec<f64>> = (0..read).map(|_| values.take(n)).collect();
            let params: Vec<f64> = (0..update.params).map(|_| 0.5 + values.next().abs() / 2.0).collect();
            let want: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    let inputs: Vec<f64> = buffers.iter().chain(&reads).map(|buffer| buffer[i]).collect();
                    update.expression.evaluate(&inputs, &params)
                })
                .collect();
            let mut written_refs: Vec<&mut Vec<f64>> = buffers.iter_mut().collect();
            let read_refs: Vec<&Vec<f64>> = reads.iter().collect();
            update.launch_on(&emulator, &mut written_refs, &read_refs, &params).unwrap();
            for (k, buffer) in buffers.iter().enumerate() {
                let column: Vec<f64> = want.iter().map(|outputs| outputs[k]).collect();
                assert_close(
                    buffer,
                    &column,
                    1e-12,
                    &format!("`{}`, buffer {k}", update.compiled_name(CType::F64)),
                );
            }
        }
    }
}
