//! CUDA C kernels compiled for the host.
//!
//! [`compile`] puts [the prelude](PRELUDE) (CUDA's names: `threadIdx`, `__syncthreads`,
//! …) before a module's source and, after it, one entry point per kernel:
//! `run_<name>(grid, block, args)` launches kernel `<name>` over `grid` blocks of `block`
//! threads with its parameters read from `args` as `cuLaunchKernel` passes them (the
//! address of each argument, in order). The module is compiled by the host's `g++`
//! into a shared library, kept in a cache folder under the hash of its source.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// CUDA's names for the host (see the file's comment).
pub const PRELUDE: &str = include_str!("prelude.h");

/// An entry point `run_<name>`: grid and block dimensions (three each), then the
/// address of each kernel argument.
pub type Entry =
    unsafe extern "C" fn(grid: *const u32, block: *const u32, args: *const *mut core::ffi::c_void);

/// The name of the entry point that launches kernel `kernel`.
pub fn entry_name(kernel: &str) -> String {
    format!("run_{kernel}")
}

/// The kernels of a module: each `__global__` function's name, parameter list and
/// whether its body synchronises its block.
fn kernels(source: &str) -> Vec<(&str, &str, bool)> {
    const MARK: &str = "__global__ void ";
    let starts: Vec<usize> = source.match_indices(MARK).map(|(at, _)| at + MARK.len()).collect();
    starts
        .iter()
        .enumerate()
        .filter_map(|(k, &start)| {
            let open = start + source[start..].find('(')?;
            let close = open + source[open..].find(')')?;
            let end = starts.get(k + 1).copied().unwrap_or(source.len());
            let name = source[start..open].trim();
            Some((name, &source[open + 1..close], source[close..end].contains("__syncthreads")))
        })
        .collect()
}

/// The C type of one parameter declaration: a pointer's type up to its `*` (dropping
/// `__restrict__`), else the declaration without its name.
fn parameter_type(declaration: &str) -> &str {
    let declaration = declaration.trim();
    match declaration.find('*') {
        Some(star) => &declaration[..=star],
        None => declaration.rsplit_once(char::is_whitespace).map_or(declaration, |(kind, _)| kind),
    }
}

/// The entry point that launches kernel `name` (see the module docs).
fn entry_point(name: &str, parameters: &str, synchronises: bool) -> String {
    let arguments: Vec<String> = parameters
        .split(',')
        .filter(|parameter| !parameter.trim().is_empty())
        .enumerate()
        .map(|(k, parameter)| format!("*({}*)args[{k}]", parameter_type(parameter)))
        .collect();
    format!(
        "extern \"C\" void {}(const unsigned* grid, const unsigned* block, void** args) {{\n    \
         launch(grid, block, {synchronises}, [=] {{ {name}({}); }});\n}}\n",
        entry_name(name),
        arguments.join(", ")
    )
}

/// The host C++ for a module of CUDA C: the prelude, the source, an entry point per
/// kernel.
pub fn host_source(cuda_source: &str) -> String {
    let mut source = String::from(PRELUDE);
    source += cuda_source;
    for (name, parameters, synchronises) in kernels(cuda_source) {
        source += &entry_point(name, parameters, synchronises);
    }
    source
}

/// FNV-1a, 64 bits: a hash of the source that names its library in the cache, the
/// same in every process.
fn source_hash(source: &str) -> u64 {
    source
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

/// The cache of compiled modules: `$FLUXION_CUDA_EMULATOR_CACHE`, else a folder in
/// the temporary directory.
fn cache_folder() -> PathBuf {
    std::env::var_os("FLUXION_CUDA_EMULATOR_CACHE")
        .map_or_else(|| std::env::temp_dir().join("fluxion-cuda-emulator"), PathBuf::from)
}

/// The path of a shared library holding `cuda_source`'s kernels and their entry
/// points, compiled now or found in the cache; `Err` holds the compiler's message.
pub fn compile(cuda_source: &str) -> Result<PathBuf, String> {
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let source = host_source(cuda_source);
    let folder = cache_folder();
    let library = folder.join(format!("{:016x}.so", source_hash(&source)));
    if library.exists() {
        return Ok(library);
    }
    std::fs::create_dir_all(&folder)
        .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    // Built under a name of its own, then renamed: a process or thread building the
    // same module meanwhile never loads half a file.
    let build = BUILDS.fetch_add(1, Ordering::Relaxed);
    let stem = format!("{:016x}.{}.{build}", source_hash(&source), std::process::id());
    let (source_path, built) = (folder.join(format!("{stem}.cpp")), folder.join(format!("{stem}.so")));
    std::fs::write(&source_path, &source)
        .map_err(|error| format!("cannot write {}: {error}", source_path.display()))?;
    let output = Command::new("g++")
        .args(["-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w", "-o"])
        .arg(&built)
        .arg(&source_path)
        .output()
        .map_err(|error| format!("g++ (the host's C++ compiler, C++20) does not run: {error}"))?;
    let _ = std::fs::remove_file(&source_path);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    std::fs::rename(&built, &library)
        .map_err(|error| format!("cannot rename {}: {error}", built.display()))?;
    Ok(library)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_read_each_argument_as_declared() {
        let source = "extern \"C\" __global__ void twice(const float* __restrict__ x, float* __restrict__ out, \
                      const float scale, const unsigned long long n) { out[0] = x[0]; }\n\
                      extern \"C\" __global__ void fold(double* out) { __syncthreads(); }\n";
        let found = kernels(source);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].0, found[0].2), ("twice", false));
        assert_eq!((found[1].0, found[1].2), ("fold", true));
        let entry = entry_point(found[0].0, found[0].1, found[0].2);
        assert!(entry.contains(
            "twice(*(const float**)args[0], *(float**)args[1], *(const float*)args[2], \
             *(const unsigned long long*)args[3])"
        ));
        assert!(entry.contains("launch(grid, block, false,"));
    }

    #[test]
    fn the_hash_tells_sources_apart() {
        assert_ne!(source_hash("a"), source_hash("b"));
        assert_eq!(source_hash("kernel"), source_hash("kernel"));
    }
}
