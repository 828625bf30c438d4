//! Every kernel that fluxion generates compiles, with no GPU needed: NVRTC turns each
//! into PTX for `compute_90`, then `ptxas` assembles that into an `sm_90` (Hopper)
//! cubin.
//!
//! Needs NVIDIA's compiler pieces (CI installs them from PyPI, pinned at 13.0.88): the
//! folder of `libnvrtc.so.13` on `LD_LIBRARY_PATH` and `FLUXION_PTXAS` naming `ptxas`.
//! Without them the test prints why it skips; with `FLUXION_REQUIRE_NVRTC=1` (set by
//! CI) it fails instead.
#![cfg(feature = "cuda")]

use std::path::PathBuf;
use std::process::Command;

use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use fluxion::backend::cuda::{CType, builtin_kernel_sources};

/// `ptxas`, when NVRTC and it are both here.
fn compilers() -> Option<PathBuf> {
    // SAFETY: only tries to load the NVRTC library.
    let nvrtc = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    let ptxas = std::env::var_os("FLUXION_PTXAS").map(PathBuf::from).filter(|path| path.is_file());
    match (nvrtc, ptxas) {
        (true, Some(ptxas)) => Some(ptxas),
        (nvrtc, ptxas) => {
            let why = format!("NVRTC found: {nvrtc}; FLUXION_PTXAS names a file: {}", ptxas.is_some());
            assert!(
                std::env::var_os("FLUXION_REQUIRE_NVRTC").is_none(),
                "the kernel compilers are required here ({why})"
            );
            eprintln!("skipping the offline kernel compilation ({why})");
            None
        }
    }
}

#[test]
fn every_generated_kernel_compiles_to_an_sm90_cubin() {
    let Some(ptxas) = compilers() else { return };
    let folder = std::env::temp_dir().join(format!("fluxion-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let mut compiled = 0;
    for ctype in [CType::F32, CType::F64] {
        for (name, source) in builtin_kernel_sources(ctype) {
            let options = CompileOptions { arch: Some("compute_90"), ..CompileOptions::default() };
            let ptx = compile_ptx_with_opts(&source, options)
                .unwrap_or_else(|error| panic!("NVRTC rejects `{name}`: {error}\n{source}"));
            let ptx_path = folder.join(format!("{name}.ptx"));
            let cubin_path = folder.join(format!("{name}.cubin"));
            std::fs::write(&ptx_path, ptx.to_src()).unwrap();
            let output = Command::new(&ptxas)
                .arg("-arch=sm_90")
                .arg(&ptx_path)
                .arg("-o")
                .arg(&cubin_path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "ptxas rejects `{name}`: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(std::fs::metadata(&cubin_path).unwrap().len() > 0, "`{name}` gave an empty cubin");
            compiled += 1;
        }
    }
    std::fs::remove_dir_all(&folder).unwrap();
    // Two element types × (the elementwise and reduction kernels + the transpose).
    assert!(compiled >= 2 * 40, "only {compiled} kernels compiled");
    eprintln!("{compiled} kernels compiled to sm_90 cubins");
}
