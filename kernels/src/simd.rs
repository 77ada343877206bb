//! Runtime instruction-set dispatch for the hot loops.
//!
//! The kernels are written once, as plain Rust loops shaped so that LLVM can
//! vectorise them (fixed lane-count accumulators, no data-dependent exits in
//! the inner loop). [`fastest`] runs such a loop inside a function compiled
//! for AVX-512 when the CPU has it, so the same source becomes 8-lane code on
//! Zen 4/5 and Ice Lake, while the default x86-64 and arm64 (NEON) builds run
//! the portable instance. Floating-point results do not change with the
//! vector width: Rust never reassociates or contracts (FMA) float operations,
//! so every lane performs exactly the operations the source spells out.

/// Runs `f` compiled for the widest vector unit this CPU offers.
#[inline(always)]
pub(crate) fn fastest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            // SAFETY: the CPU supports every feature `with_avx512` enables.
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

/// The widest vector instruction set [`fastest`] uses on this CPU, for reports.
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,bmi2,popcnt")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi2,popcnt")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
