//! Runtime instruction-set dispatch for the hot loops.
//!
//! Each kernel has two implementations of its inner loop that perform the
//! same IEEE operations in the same order, lane by lane:
//!
//! - a portable one, plain Rust over fixed-size lane arrays, which LLVM
//!   vectorises for the build's baseline (SSE2 on x86-64, NEON on arm64) and
//!   which is the only path on other targets;
//! - an explicit AVX-512 one ([`crate::avx512`], `std::arch` intrinsics),
//!   used when the CPU has AVX-512F/DQ/VL/BW.
//!
//! Leibniz's portable loop is also compiled for AVX2 + FMA (x86-64 without
//! AVX-512), because its `mul_add`s would otherwise be libm calls.
//!
//! An earlier version compiled a generic closure inside a
//! `#[target_feature]` wrapper and relied on auto-vectorisation; the
//! disassembly showed scalar code (`divsd`, no `vdivpd`), so the hot loops
//! are now spelled out. Results never depend on the path: no FMA
//! contraction, no reassociation, and the unit tests compare both paths bit
//! for bit.

/// Environment variable that, set to `portable`, turns the AVX-512 paths off
/// (to compare the paths' speed; both give the same bits).
pub const ENV_SIMD: &str = "PIKERNELS_SIMD";

/// Whether the AVX-512 paths run on this CPU (detected once, then cached).
#[inline]
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::env::var(ENV_SIMD).map_or(true, |v| v != "portable")
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the portable loops may also be compiled for AVX2 + FMA (used where
/// `mul_add` would otherwise be a libm call); off with `PIKERNELS_SIMD=portable`.
#[inline]
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::env::var(ENV_SIMD).map_or(true, |v| v != "portable")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    })
}

/// The instruction set the hot loops use on this CPU, for reports.
pub fn isa() -> &'static str {
    if avx512() {
        return "avx512";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if avx2_fma() {
            return "avx2+fma (leibniz), sse2 (portable)";
        }
    }
    if cfg!(target_arch = "x86_64") {
        "sse2 (portable)"
    } else if cfg!(target_arch = "aarch64") {
        "neon (portable)"
    } else {
        "scalar (portable)"
    }
}
