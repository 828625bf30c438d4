//! The NVRTC calls cudarc makes, answered on the host: a "compiled" program is the
//! module's source compiled by `g++` for the host ([`crate::kernels::compile`]), and
//! its "PTX" is a line naming that library, which the driver's
//! [`cuModuleLoadData`](crate::driver::cuModuleLoadData) loads. Compiler options
//! (the GPU architecture) do not apply.

use core::ffi::{CStr, c_char, c_int, c_uint};
use std::ffi::CString;

use crate::driver::IMAGE_PREFIX;
use crate::kernels;

/// `nvrtcResult`.
type Status = c_uint;
const SUCCESS: Status = 0;
const INVALID_INPUT: Status = 3;
const INVALID_PROGRAM: Status = 4;
const COMPILATION: Status = 6;

/// A program (opaque to callers): its source, then the compiled library's image text or the compiler's
/// log.
pub struct Program {
    source: String,
    image: CString,
    log: CString,
}

/// Copies `text` with its NUL to `out`.
///
/// # Safety
/// `out` is valid for `text.as_bytes_with_nul().len()` bytes of writes.
unsafe fn copy_out(text: &CStr, out: *mut c_char) -> Status {
    if out.is_null() {
        return INVALID_INPUT;
    }
    let bytes = text.to_bytes_with_nul();
    // SAFETY: the caller's contract.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), out, bytes.len()) };
    SUCCESS
}

/// The program behind a handle.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`] and was not destroyed.
unsafe fn program<'a>(program: *mut Program) -> Option<&'a mut Program> {
    // SAFETY: the caller's contract: a live box's pointer, or null.
    unsafe { program.as_mut() }
}

/// `nvrtcCreateProgram`; headers are not supported.
///
/// # Safety
/// `source` is NUL-terminated; `program` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcCreateProgram(
    program: *mut *mut Program,
    source: *const c_char,
    _name: *const c_char,
    headers: c_int,
    _header_sources: *const *const c_char,
    _header_names: *const *const c_char,
) -> Status {
    if program.is_null() || source.is_null() || headers != 0 {
        return INVALID_INPUT;
    }
    // SAFETY: the caller's contract.
    let source = unsafe { CStr::from_ptr(source) }.to_string_lossy().into_owned();
    let created = Box::new(Program { source, image: CString::default(), log: CString::default() });
    // SAFETY: the caller's contract.
    unsafe { program.write(Box::into_raw(created)) };
    SUCCESS
}

/// `nvrtcCompileProgram`: compiles the source for the host.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcCompileProgram(
    program: *mut Program,
    _options: c_int,
    _values: *const *const c_char,
) -> Status {
    // SAFETY: the caller's contract.
    let Some(program) = (unsafe { self::program(program) }) else { return INVALID_PROGRAM };
    let text = |text: String| CString::new(text.replace('\0', " ")).unwrap_or_default();
    match kernels::compile(&program.source) {
        Ok(library) => {
            program.image = text(format!("{IMAGE_PREFIX}{}", library.display()));
            SUCCESS
        }
        Err(log) => {
            program.log = text(log);
            COMPILATION
        }
    }
}

/// Writes the length (with its NUL) of the program's `text` to `size`.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `size` is valid for a write.
unsafe fn text_size(program: *mut Program, text: fn(&Program) -> &CStr, size: *mut usize) -> Status {
    // SAFETY: the caller's contract.
    let Some(program) = (unsafe { self::program(program) }) else { return INVALID_PROGRAM };
    if size.is_null() {
        return INVALID_INPUT;
    }
    // SAFETY: the caller's contract.
    unsafe { size.write(text(program).to_bytes_with_nul().len()) };
    SUCCESS
}

/// Copies the program's `text` with its NUL to `out`.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `out` holds the bytes
/// [`text_size`] gives.
unsafe fn text_copy(program: *mut Program, text: fn(&Program) -> &CStr, out: *mut c_char) -> Status {
    // SAFETY: the caller's contract.
    let Some(program) = (unsafe { self::program(program) }) else { return INVALID_PROGRAM };
    // SAFETY: the caller's contract.
    unsafe { copy_out(text(program), out) }
}

/// `nvrtcGetPTXSize`: the length of the image text with its NUL.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `size` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcGetPTXSize(program: *mut Program, size: *mut usize) -> Status {
    // SAFETY: the caller's contract.
    unsafe { text_size(program, |p| &p.image, size) }
}

/// `nvrtcGetPTX`: the image text.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `image` holds [`nvrtcGetPTXSize`]
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcGetPTX(program: *mut Program, image: *mut c_char) -> Status {
    // SAFETY: the caller's contract.
    unsafe { text_copy(program, |p| &p.image, image) }
}

/// `nvrtcGetProgramLogSize`.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `size` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcGetProgramLogSize(program: *mut Program, size: *mut usize) -> Status {
    // SAFETY: the caller's contract.
    unsafe { text_size(program, |p| &p.log, size) }
}

/// `nvrtcGetProgramLog`: the host compiler's message.
///
/// # Safety
/// `program` came from [`nvrtcCreateProgram`]; `log` holds
/// [`nvrtcGetProgramLogSize`] bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcGetProgramLog(program: *mut Program, log: *mut c_char) -> Status {
    // SAFETY: the caller's contract.
    unsafe { text_copy(program, |p| &p.log, log) }
}

/// `nvrtcDestroyProgram`.
///
/// # Safety
/// `*program` came from [`nvrtcCreateProgram`] and is destroyed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcDestroyProgram(program: *mut *mut Program) -> Status {
    if program.is_null() {
        return INVALID_INPUT;
    }
    // SAFETY: the caller's contract: a box made by `nvrtcCreateProgram`.
    unsafe { drop(Box::from_raw(program.read())) };
    SUCCESS
}

/// `nvrtcGetErrorString`.
#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetErrorString(status: Status) -> *const c_char {
    match status {
        SUCCESS => c"NVRTC_SUCCESS",
        INVALID_INPUT => c"NVRTC_ERROR_INVALID_INPUT",
        INVALID_PROGRAM => c"NVRTC_ERROR_INVALID_PROGRAM",
        COMPILATION => c"NVRTC_ERROR_COMPILATION",
        _ => c"NVRTC_ERROR_INTERNAL_ERROR",
    }
    .as_ptr()
}

/// `nvrtcVersion`: 13.0.
///
/// # Safety
/// Both are valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvrtcVersion(major: *mut c_int, minor: *mut c_int) -> Status {
    if major.is_null() || minor.is_null() {
        return INVALID_INPUT;
    }
    // SAFETY: the caller's contract.
    unsafe { (major.write(13), minor.write(0)) };
    SUCCESS
}
