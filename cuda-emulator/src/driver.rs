//! The CUDA driver calls cudarc makes, answered on the host.
//!
//! Device memory is host memory: a `CUdeviceptr` is the address of a host allocation
//! (filled with 0xFF bytes, a NaN in `f32` and `f64`, so an element read before it
//! is written shows). Every copy and fill is checked against the allocation it
//! touches. A module is a shared library that [`crate::nvrtc`] compiled; a launch
//! calls the kernel's entry point, one launch at a time. Work runs when it is queued,
//! so streams, events and synchronisation have nothing to wait for.

use core::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::alloc::Layout;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::kernels::{Entry, entry_name};

/// `CUresult`.
type Status = c_uint;
const SUCCESS: Status = 0;
const INVALID_VALUE: Status = 1;
const OUT_OF_MEMORY: Status = 2;
const INVALID_DEVICE: Status = 101;
const INVALID_IMAGE: Status = 200;
const NOT_FOUND: Status = 500;

/// What the stand-in device calls itself.
pub const DEVICE_NAME: &str = "fluxion CUDA emulator (the host CPU; not a GPU)";

/// The prefix of the image text [`crate::nvrtc`] hands back: the module's library
/// path follows it.
pub(crate) const IMAGE_PREFIX: &str = "fluxion-cuda-emulator:";

/// Device allocations: start address → layout.
static ALLOCATIONS: Mutex<BTreeMap<u64, Layout>> = Mutex::new(BTreeMap::new());

/// One launch at a time: a module's launch state (`gridDim`, the block's barrier) is
/// global.
static LAUNCH: Mutex<()> = Mutex::new(());

/// The one context: any non-null handle does.
static CONTEXT: u8 = 0;

fn allocations() -> MutexGuard<'static, BTreeMap<u64, Layout>> {
    ALLOCATIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `bytes` bytes from `address` lie in one of `allocations`.
fn allocated(allocations: &BTreeMap<u64, Layout>, address: u64, bytes: usize) -> bool {
    allocations.range(..=address).next_back().is_some_and(|(&start, layout)| {
        address.checked_add(bytes as u64).is_some_and(|end| end <= start + layout.size() as u64)
    })
}

/// Writes `value` through `out` when it is not null.
///
/// # Safety
/// `out` is null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> Status {
    if out.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: not null, and valid for writes (the caller's contract).
    unsafe { out.write(value) };
    SUCCESS
}

/// `cuInit`.
#[unsafe(no_mangle)]
pub extern "C" fn cuInit(_flags: c_uint) -> Status {
    SUCCESS
}

/// `cuDriverGetVersion`: 13.0.
///
/// # Safety
/// `version` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> Status {
    // SAFETY: the caller's contract.
    unsafe { put(version, 13000) }
}

/// `cuDeviceGetCount`: one device.
///
/// # Safety
/// `count` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> Status {
    // SAFETY: the caller's contract.
    unsafe { put(count, 1) }
}

/// `cuDeviceGet`: device 0 only.
///
/// # Safety
/// `device` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> Status {
    if ordinal != 0 {
        return INVALID_DEVICE;
    }
    // SAFETY: the caller's contract.
    unsafe { put(device, 0) }
}

/// `cuDeviceGetName`: [`DEVICE_NAME`], cut to `len − 1` bytes.
///
/// # Safety
/// `name` is valid for `len` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, _device: c_int) -> Status {
    let Ok(len) = usize::try_from(len) else { return INVALID_VALUE };
    if name.is_null() || len == 0 {
        return INVALID_VALUE;
    }
    let bytes = &DEVICE_NAME.as_bytes()[..DEVICE_NAME.len().min(len - 1)];
    // SAFETY: `name` holds `len` bytes (the caller's contract) and `bytes` is shorter.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), name, bytes.len());
        name.add(bytes.len()).write(0);
    }
    SUCCESS
}

/// `cuDeviceGetAttribute`: one multiprocessor, compute capability 9.0, memory pools;
/// 0 for anything else.
///
/// # Safety
/// `value` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetAttribute(
    value: *mut c_int,
    attribute: c_uint,
    _device: c_int,
) -> Status {
    let answer = match attribute {
        16 => 1,  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
        75 => 9,  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        76 => 0,  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
        115 => 1, // CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED
        _ => 0,
    };
    // SAFETY: the caller's contract.
    unsafe { put(value, answer) }
}

/// `cuDevicePrimaryCtxRetain`.
///
/// # Safety
/// `context` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(context: *mut *const u8, _device: c_int) -> Status {
    // SAFETY: the caller's contract.
    unsafe { put(context, &CONTEXT) }
}

/// `cuDevicePrimaryCtxRelease_v2`.
#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(_device: c_int) -> Status {
    SUCCESS
}

/// `cuCtxSetCurrent`.
#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSetCurrent(_context: *const u8) -> Status {
    SUCCESS
}

/// `cuCtxGetCurrent`: the one context.
///
/// # Safety
/// `context` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetCurrent(context: *mut *const u8) -> Status {
    // SAFETY: the caller's contract.
    unsafe { put(context, &CONTEXT) }
}

/// `cuCtxGetDevice`: device 0.
///
/// # Safety
/// `device` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetDevice(device: *mut c_int) -> Status {
    // SAFETY: the caller's contract.
    unsafe { put(device, 0) }
}

/// `cuCtxSynchronize`: nothing is pending.
#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSynchronize() -> Status {
    SUCCESS
}

/// `cuStreamSynchronize`: nothing is pending.
#[unsafe(no_mangle)]
pub extern "C" fn cuStreamSynchronize(_stream: *mut c_void) -> Status {
    SUCCESS
}

/// `cuMemAlloc_v2`: host memory, 256-byte aligned, filled with 0xFF bytes.
///
/// # Safety
/// `address` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(address: *mut u64, bytes: usize) -> Status {
    let Ok(layout) = Layout::from_size_align(bytes.max(1), 256) else { return INVALID_VALUE };
    // SAFETY: the layout's size is not zero.
    let memory = unsafe { std::alloc::alloc(layout) };
    if memory.is_null() {
        return OUT_OF_MEMORY;
    }
    // SAFETY: `memory` holds `layout.size()` bytes.
    unsafe { memory.write_bytes(0xFF, layout.size()) };
    allocations().insert(memory as u64, layout);
    // SAFETY: the caller's contract.
    unsafe { put(address, memory as u64) }
}

/// `cuMemAllocAsync`: as [`cuMemAlloc_v2`].
///
/// # Safety
/// `address` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocAsync(address: *mut u64, bytes: usize, _stream: *mut c_void) -> Status {
    // SAFETY: the caller's contract.
    unsafe { cuMemAlloc_v2(address, bytes) }
}

/// `cuMemFree_v2`: an address that no allocation starts at is an error.
#[unsafe(no_mangle)]
pub extern "C" fn cuMemFree_v2(address: u64) -> Status {
    let Some(layout) = allocations().remove(&address) else { return INVALID_VALUE };
    // SAFETY: `address` was allocated with `layout` by `cuMemAlloc_v2` and is freed once
    // (it has just left the registry).
    unsafe { std::alloc::dealloc(address as *mut u8, layout) };
    SUCCESS
}

/// `cuMemFreeAsync`: as [`cuMemFree_v2`].
#[unsafe(no_mangle)]
pub extern "C" fn cuMemFreeAsync(address: u64, _stream: *mut c_void) -> Status {
    cuMemFree_v2(address)
}

/// `cuMemsetD8_v2`.
#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8_v2(address: u64, byte: u8, count: usize) -> Status {
    let allocations = allocations(); // held until the fill is done: no free meanwhile
    if !allocated(&allocations, address, count) {
        return INVALID_VALUE;
    }
    // SAFETY: the `count` bytes lie in one allocation (checked), which cannot be freed
    // while the registry is locked.
    unsafe { (address as *mut u8).write_bytes(byte, count) };
    SUCCESS
}

/// `cuMemsetD8Async`: as [`cuMemsetD8_v2`].
#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8Async(address: u64, byte: u8, count: usize, _stream: *mut c_void) -> Status {
    cuMemsetD8_v2(address, byte, count)
}

/// A copy of `bytes` bytes; each device side must lie in one allocation.
///
/// # Safety
/// A host side is valid for `bytes` bytes.
unsafe fn copy(to: *mut u8, to_device: bool, from: *const u8, from_device: bool, bytes: usize) -> Status {
    let allocations = allocations(); // held until the copy is done: no free meanwhile
    let outside = |device: bool, address: u64| device && !allocated(&allocations, address, bytes);
    if outside(to_device, to as u64) || outside(from_device, from as u64) {
        return INVALID_VALUE;
    }
    // SAFETY: device sides were checked (and cannot be freed while the registry is
    // locked), host sides are the caller's contract; `copy` allows the two to overlap.
    unsafe { core::ptr::copy(from, to, bytes) };
    SUCCESS
}

/// `cuMemcpyHtoDAsync_v2`.
///
/// # Safety
/// `from` is valid for `bytes` bytes of reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    to: u64,
    from: *const c_void,
    bytes: usize,
    _stream: *mut c_void,
) -> Status {
    // SAFETY: the caller's contract.
    unsafe { copy(to as *mut u8, true, from.cast(), false, bytes) }
}

/// `cuMemcpyDtoHAsync_v2`.
///
/// # Safety
/// `to` is valid for `bytes` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    to: *mut c_void,
    from: u64,
    bytes: usize,
    _stream: *mut c_void,
) -> Status {
    // SAFETY: the caller's contract.
    unsafe { copy(to.cast(), false, from as *const u8, true, bytes) }
}

/// `cuMemcpyDtoDAsync_v2`.
#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoDAsync_v2(to: u64, from: u64, bytes: usize, _stream: *mut c_void) -> Status {
    // SAFETY: both sides are device memory, checked by `copy`.
    unsafe { copy(to as *mut u8, true, from as *const u8, true, bytes) }
}

/// A loaded module: the library its kernels were compiled into.
struct Module(libloading::Library);

/// `cuModuleLoadData`: `image` is the text [`crate::nvrtc`] handed back, naming a
/// compiled library.
///
/// # Safety
/// `image` is a NUL-terminated string; `module` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut *mut c_void, image: *const c_void) -> Status {
    // SAFETY: the caller's contract.
    let image = unsafe { CStr::from_ptr(image.cast()) }.to_string_lossy();
    let Some(path) = image.strip_prefix(IMAGE_PREFIX) else { return INVALID_IMAGE };
    // SAFETY: the library was compiled by `kernels::compile` from generated kernels and
    // the prelude; loading it runs only the C++ runtime's initialisers.
    let Ok(library) = (unsafe { libloading::Library::new(path) }) else { return INVALID_IMAGE };
    // SAFETY: the caller's contract.
    unsafe { put(module, Box::into_raw(Box::new(Module(library))).cast()) }
}

/// `cuModuleUnload`.
///
/// # Safety
/// `module` came from [`cuModuleLoadData`] and is unloaded once, after its functions'
/// last launch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleUnload(module: *mut c_void) -> Status {
    // SAFETY: the caller's contract: made by `Box::into_raw` in `cuModuleLoadData`.
    drop(unsafe { Box::from_raw(module.cast::<Module>()) });
    SUCCESS
}

/// `cuModuleGetFunction`: the kernel's entry point in the module's library.
///
/// # Safety
/// `module` came from [`cuModuleLoadData`]; `name` is NUL-terminated; `function` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleGetFunction(
    function: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> Status {
    // SAFETY: the caller's contract.
    let (module, name) = unsafe { (&*module.cast::<Module>(), CStr::from_ptr(name).to_string_lossy()) };
    // SAFETY: every `run_` symbol of a compiled module is an `Entry` (`kernels`).
    let Ok(entry) = (unsafe { module.0.get::<Entry>(entry_name(&name).as_bytes()) }) else {
        return NOT_FOUND;
    };
    // SAFETY: the caller's contract.
    unsafe { put(function, *entry as *mut c_void) }
}

/// `cuLaunchKernel`: runs the kernel to the end (one launch at a time).
///
/// # Safety
/// `function` came from [`cuModuleGetFunction`] of a loaded module; `arguments` holds
/// the address of each of the kernel's arguments, of its declared types; the kernel
/// reads and writes its buffers within their allocations.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // CUDA's signature
pub unsafe extern "C" fn cuLaunchKernel(
    function: *mut c_void,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    _shared_bytes: c_uint,
    _stream: *mut c_void,
    arguments: *const *mut c_void,
    _extra: *const *mut c_void,
) -> Status {
    if function.is_null() || arguments.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: `function` is an entry point's address (`cuModuleGetFunction`).
    let entry: Entry = unsafe { core::mem::transmute::<*mut c_void, Entry>(function) };
    let (grid, block) = ([grid_x, grid_y, grid_z], [block_x, block_y, block_z]);
    let _alone = LAUNCH.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the caller's contract; the entry point reads each argument as the
    // kernel declares it.
    unsafe { entry(grid.as_ptr(), block.as_ptr(), arguments) };
    SUCCESS
}

/// `cuGetErrorName`.
///
/// # Safety
/// `name` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(status: Status, name: *mut *const c_char) -> Status {
    let text: &'static CStr = match status {
        SUCCESS => c"CUDA_SUCCESS",
        INVALID_VALUE => c"CUDA_ERROR_INVALID_VALUE",
        OUT_OF_MEMORY => c"CUDA_ERROR_OUT_OF_MEMORY",
        INVALID_DEVICE => c"CUDA_ERROR_INVALID_DEVICE",
        INVALID_IMAGE => c"CUDA_ERROR_INVALID_IMAGE",
        NOT_FOUND => c"CUDA_ERROR_NOT_FOUND",
        _ => c"CUDA_ERROR_UNKNOWN",
    };
    // SAFETY: the caller's contract.
    unsafe { put(name, text.as_ptr()) }
}

/// `cuGetErrorString`: the error's name.
///
/// # Safety
/// `text` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(status: Status, text: *mut *const c_char) -> Status {
    // SAFETY: the caller's contract.
    unsafe { cuGetErrorName(status, text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_fills_stay_inside_their_allocation() {
        let mut device = 0u64;
        // SAFETY: `device` is a valid place for the address.
        assert_eq!(unsafe { cuMemAlloc_v2(&mut device, 16) }, SUCCESS);
        let host = [1u8; 32];
        // SAFETY: `host` holds 32 bytes; the copies only read it.
        unsafe {
            assert_eq!(
                cuMemcpyHtoDAsync_v2(device, host.as_ptr().cast(), 16, core::ptr::null_mut()),
                SUCCESS
            );
            assert_eq!(
                cuMemcpyHtoDAsync_v2(device, host.as_ptr().cast(), 17, core::ptr::null_mut()),
                INVALID_VALUE
            );
            assert_eq!(
                cuMemcpyHtoDAsync_v2(device + 8, host.as_ptr().cast(), 9, core::ptr::null_mut()),
                INVALID_VALUE
            );
        }
        assert_eq!(cuMemsetD8_v2(device + 15, 0, 1), SUCCESS);
        assert_eq!(cuMemsetD8_v2(device + 16, 0, 1), INVALID_VALUE);
        let mut back = [0u8; 16];
        // SAFETY: `back` holds 16 bytes.
        let status =
            unsafe { cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), device, 16, core::ptr::null_mut()) };
        assert_eq!(status, SUCCESS);
        assert_eq!(back[..15], [1; 15]);
        assert_eq!(back[15], 0);
        assert_eq!(cuMemFree_v2(device), SUCCESS);
        assert_eq!(cuMemFree_v2(device), INVALID_VALUE, "freed twice");
    }

    #[test]
    fn new_memory_reads_as_nan() {
        let mut device = 0u64;
        // SAFETY: `device` is a valid place for the address.
        assert_eq!(unsafe { cuMemAlloc_v2(&mut device, 8) }, SUCCESS);
        // SAFETY: the allocation holds 8 bytes, aligned to 256.
        assert!(unsafe { (device as *const f64).read() }.is_nan());
        // SAFETY: as above.
        assert!(unsafe { (device as *const f32).read() }.is_nan());
        assert_eq!(cuMemFree_v2(device), SUCCESS);
    }
}
