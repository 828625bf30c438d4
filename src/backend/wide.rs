//! Loops compiled for the widest vector unit the processor has.
//!
//! The crate is built for the baseline of its target (SSE2 on x86-64), where a loop of
//! elementary functions (`f32`'s [`exp`](crate::scalar::Scalar::exp), `tanh`, `erf`,
//! `erfc` and `f64`'s `tanh`: branch-free polynomials in `f64`) runs two lanes at a
//! time or none. The hot elementwise loops of `f32` and `f64` tensors on the host run
//! inside [`wide`], which calls them from a copy of itself compiled for AVX-512 or for
//! AVX2 with FMA when the processor has them (checked once, then cached by std): the
//! loop is inlined there and vectorised 8 or 4 `f64` lanes wide. The results are the
//! same bits on every path (Rust never fuses a multiply and an add the code did not ask for),
//! except that a NaN's sign and payload may differ, as IEEE 754 allows.

/// `body()`, run where the processor's widest vector unit is enabled (with `std` on
/// x86-64; elsewhere, and without `std`, simply `body()`). For `f32` and `f64` loops
/// only: other element types call no function that vectorises better there, and each
/// copy is code.
#[inline(always)]
pub(crate) fn wide<T: 'static, R>(body: impl FnOnce() -> R) -> R {
    wide_with::<T, _, _>(
        (),
        #[inline(always)]
        |()| body(),
    )
}

/// `body(output)`, run as [`wide`] runs its body, with `output` (the slice a loop
/// writes) handed to the wide copy as an argument of its own. A `&mut` argument
/// overlaps nothing else while the call lasts, so the compiler may keep a value that
/// the loop reads through another reference (a factor a map's closure captures) in a
/// register, and vectorise the loop; reached through the body's captures instead, the
/// output might overlap that value, which is then read again after every store.
#[inline(always)]
// Elsewhere the element type picks nothing.
#[cfg_attr(not(all(feature = "std", target_arch = "x86_64")), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn wide_with<T: 'static, O, R>(output: O, body: impl FnOnce(O) -> R) -> R {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        let element = core::any::TypeId::of::<T>();
        if element == core::any::TypeId::of::<f32>() || element == core::any::TypeId::of::<f64>() {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor has AVX-512F, checked just above.
                return unsafe { with_avx512(output, body) };
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the processor has AVX2 and FMA, checked just above.
                return unsafe { with_avx2(output, body) };
            }
        }
    }
    body(output)
}

/// A value of `T` to fill a buffer with before a [`wide`] loop writes every slot: zero
/// for `f32` and `f64`, the element types `wide` vectorises; `None` for the others. Filled
/// first, a fixed-size array is written by one loop over all of its slots, which the
/// compiler vectorises with no scalar remainder.
#[inline(always)]
pub(crate) fn placeholder<T: Copy + 'static>() -> Option<T> {
    let zeros: [&dyn core::any::Any; 2] = [&0.0_f32, &0.0_f64];
    zeros.into_iter().find_map(|zero| zero.downcast_ref::<T>()).copied()
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
fn with_avx512<O, R>(output: O, body: impl FnOnce(O) -> R) -> R {
    body(output)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn with_avx2<O, R>(output: O, body: impl FnOnce(O) -> R) -> R {
    body(output)
}
