//! The portable SIMD layer: which instruction-set path runs, and the few
//! operations the kernels need that `pulp`'s generic [`pulp::Simd`] lacks.
//!
//! A hot loop is written once, as a [`Kernel`] generic over [`Lanes`] (a
//! `pulp::Simd` with 64-bit shifts and rotates, the sum of squared 16-bit
//! halves and mask reductions), and [`dispatch`] runs it on the path chosen
//! at run time: AVX-512 (pulp's `V4`), AVX2 + FMA (`V3`), NEON, or scalar
//! (`Scalar128b`: plain Rust over two-lane arrays, which the baseline build
//! vectorises where it can). Why `pulp`: it is already in the tree through
//! faer, it dispatches at run time (one binary serves a laptop without
//! AVX-512 and a server with it, where `wide` fixes the ISA at compile time),
//! its `mul_add_f64s` is a fused multiply-add on every path (`wide`'s may
//! round twice), and it builds on stable Rust (`std::simd` does not). Its
//! AVX-512 type needs the crate's `x86-v4` feature, enabled in
//! `kernels/Cargo.toml`.
//!
//! Results never depend on the path: every operation a kernel uses is one
//! correctly rounded IEEE operation or exact integer arithmetic, performed in
//! the same order on every lane, so AVX-512, AVX2, NEON and scalar give the
//! same bits (the kernels' unit tests and `tests/simd_paths.rs` compare
//! them). Hand-written `std::arch` loops sit beside a generic one only where
//! a benchmark shows they win (see each kernel's module).
//!
//! This module imports no kernel; kernels import it.

use pulp::Simd;
use std::sync::OnceLock;

/// Environment variable that forces a path: `auto` (the default: the best
/// this CPU has), `avx512`, `avx2`, `neon` or `scalar` (`portable` is an
/// alias of `scalar`, the name earlier versions used).
pub const ENV_SIMD: &str = "PIKERNELS_SIMD";

/// An instruction-set path of the hot loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// AVX-512F/BW/DQ/VL (x86-64), 8 doubles per vector.
    Avx512,
    /// AVX2 + FMA (x86-64), 4 doubles per vector.
    Avx2,
    /// NEON (aarch64), 2 doubles per vector.
    Neon,
    /// No vector extension assumed: two-lane arrays in plain Rust.
    Scalar,
}

impl Path {
    /// Every path, fastest first.
    pub const ALL: [Path; 4] = [Path::Avx512, Path::Avx2, Path::Neon, Path::Scalar];

    /// The name `PIKERNELS_SIMD` and the report use.
    pub fn name(self) -> &'static str {
        match self {
            Path::Avx512 => "avx512",
            Path::Avx2 => "avx2",
            Path::Neon => "neon",
            Path::Scalar => "scalar",
        }
    }

    /// Whether this CPU (and this build) can run the path.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => pulp::x86::V4::try_new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => pulp::x86::V3::try_new().is_some(),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => pulp::aarch64::Neon::try_new().is_some(),
            Path::Scalar => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// The paths this CPU runs, fastest first.
pub fn supported() -> Vec<Path> {
    Path::ALL.into_iter().filter(|p| p.available()).collect()
}

/// The path a value of [`ENV_SIMD`] selects (`None`: unset), or why it
/// cannot run here: an unknown name, or a path this CPU lacks. The message
/// lists what this CPU supports.
pub fn choose(value: Option<&str>) -> Result<Path, String> {
    let list = || supported().iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    let wanted = match value.map(str::trim) {
        None | Some("") | Some("auto") => return Ok(supported()[0]),
        Some("portable") => Path::Scalar,
        Some(v) => match Path::ALL.into_iter().find(|p| p.name() == v) {
            Some(p) => p,
            None => {
                return Err(format!("{ENV_SIMD}={v} is not a SIMD path: use auto or one this CPU supports: {}", list()))
            }
        },
    };
    if wanted.available() {
        Ok(wanted)
    } else {
        Err(format!("{ENV_SIMD}={} is not supported by this CPU, which supports: {}", wanted.name(), list()))
    }
}

/// The path [`ENV_SIMD`] selects in this process, or why it cannot run (for
/// the binary's checks before any message is sent).
pub fn from_env() -> Result<Path, String> {
    match std::env::var(ENV_SIMD) {
        Ok(v) => choose(Some(&v)),
        Err(std::env::VarError::NotPresent) => choose(None),
        Err(std::env::VarError::NotUnicode(v)) => choose(Some(&v.to_string_lossy())),
    }
}

/// The path the kernels run in this process (chosen once, then cached).
///
/// # Panics
/// If [`ENV_SIMD`] names a path this CPU cannot run: the binary refuses
/// that before it starts (see [`from_env`]), so only a library caller that
/// skipped the check sees this.
pub fn path() -> Path {
    static PATH: OnceLock<Path> = OnceLock::new();
    *PATH.get_or_init(|| from_env().unwrap_or_else(|e| panic!("{e}")))
}

/// A hot loop written once for every path.
pub trait Kernel {
    /// What the loop returns.
    type Output;
    /// The loop on the vector type `simd`. Implementations are
    /// `#[inline(always)]` (and so is everything they call), so that the
    /// whole loop is compiled for the path's target features.
    fn run<S: Lanes>(self, simd: S) -> Self::Output;
}

/// Runs `kernel` on the path of this process ([`path`]).
#[inline]
pub fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    dispatch_on(path(), kernel)
}

/// Runs `kernel` on `path`, which must be [`available`](Path::available)
/// (tests run every path this way).
///
/// # Panics
/// If the CPU lacks `path`.
#[inline]
pub fn dispatch_on<K: Kernel>(path: Path, kernel: K) -> K::Output {
    /// pulp's entry point: `vectorize` enables the target features and calls
    /// `with_simd`, which runs the kernel on the concrete type `S` it carries.
    struct Run<S, K>(S, K);
    impl<S: Lanes, K: Kernel> pulp::WithSimd for Run<S, K> {
        type Output = K::Output;
        #[inline(always)]
        fn with_simd<T: pulp::Simd>(self, _: T) -> K::Output {
            self.1.run(self.0)
        }
    }
    let lacks = || -> ! { panic!("{ENV_SIMD}: this CPU lacks the {} path", path.name()) };
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            let s = pulp::x86::V4::try_new().unwrap_or_else(|| lacks());
            Simd::vectorize(s, Run(s, kernel))
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            let s = pulp::x86::V3::try_new().unwrap_or_else(|| lacks());
            Simd::vectorize(s, Run(s, kernel))
        }
        #[cfg(target_arch = "aarch64")]
        Path::Neon => {
            let s = pulp::aarch64::Neon::try_new().unwrap_or_else(|| lacks());
            Simd::vectorize(s, Run(s, kernel))
        }
        Path::Scalar => kernel.run(pulp::Scalar128b),
        #[allow(unreachable_patterns)]
        _ => lacks(),
    }
}

/// A `pulp::Simd` with the operations the kernels need beyond pulp's
/// generic set. Every one is exact integer arithmetic or a mask test, so
/// the paths agree bit for bit.
pub trait Lanes: pulp::Simd {
    /// Each 64-bit lane shifted left by `N`.
    fn shl_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s;
    /// Each 64-bit lane shifted right (logically) by `N`.
    fn shr_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s;
    /// Each 64-bit lane rotated left by `L`; `R` must be `64 - L` (stable
    /// Rust cannot compute it from `L` in a constant argument).
    fn rotl_u64s<const L: i32, const R: i32>(self, a: Self::u64s) -> Self::u64s;
    /// For each 32-bit word `w` of `a`: `lo^2 + hi^2`, with `lo` and `hi`
    /// its low and high 16 bits as signed integers (at most 2^31, exact).
    fn sq_halves_u32s(self, a: Self::u64s) -> Self::u32s;
    /// Whether any lane of `m` is set.
    fn any_m32s(self, m: Self::m32s) -> bool;
    /// Whether any lane of `m` is set.
    fn any_m64s(self, m: Self::m64s) -> bool;
    /// Whether every lane of `m` is set.
    fn all_m64s(self, m: Self::m64s) -> bool;
    /// One vector of 64-bit lanes from exactly one vector's worth of
    /// 32-bit words, each zero-extended (one widening load where the path
    /// has it, rather than a store of each word and a reload of the
    /// vector, which stalls store-to-load forwarding on x86).
    ///
    /// # Panics
    /// If `a` is not `U64_LANES` long.
    fn load_widen_u32s(self, a: &[u32]) -> Self::u64s;

    /// A vector from exactly one vector's worth of `a`. (pulp's
    /// `partial_load` calls a masked-load routine, which costs more than a
    /// colour's arithmetic; a whole vector needs no mask.)
    ///
    /// # Panics
    /// If `a` is not one vector long.
    #[inline(always)]
    fn load_f64s(self, a: &[f64]) -> Self::f64s {
        pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(a))
    }
    /// [`load_f64s`](Lanes::load_f64s) for `u64`.
    #[inline(always)]
    fn load_u64s(self, a: &[u64]) -> Self::u64s {
        pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(a))
    }
    /// Stores `v` into exactly one vector's worth of `a`.
    #[inline(always)]
    fn store_f64s(self, a: &mut [f64], v: Self::f64s) {
        a.copy_from_slice(pulp::bytemuck::cast_slice(std::slice::from_ref(&v)));
    }
    /// [`store_f64s`](Lanes::store_f64s) for `u64`.
    #[inline(always)]
    fn store_u64s(self, a: &mut [u64], v: Self::u64s) {
        a.copy_from_slice(pulp::bytemuck::cast_slice(std::slice::from_ref(&v)));
    }

    /// Stores `v` into exactly one vector's worth of `a`, which starts on a
    /// multiple of the vector's size, bypassing the caches where the
    /// instruction set can (x86's non-temporal stores: the line is written
    /// without first being read, a third less memory traffic for a loop that
    /// reads one stream and writes another). The value stored is `v`'s bits
    /// on every path, so results do not depend on it. After a run of these
    /// stores, [`Lanes::stream_fence`] on the same thread, before another
    /// thread may read what they wrote. Elsewhere a plain store.
    ///
    /// # Panics
    /// If `a` is not one vector long or not aligned to it.
    #[inline(always)]
    fn stream_f64s(self, a: &mut [f64], v: Self::f64s) {
        assert!(a.as_ptr().align_offset(std::mem::size_of::<Self::f64s>()) == 0, "an aligned vector");
        self.store_f64s(a, v);
    }
    /// Orders this thread's [`stream_f64s`](Lanes::stream_f64s) stores before
    /// its later stores (x86's `sfence`); nothing where they are plain stores.
    #[inline(always)]
    fn stream_fence(self) {}
    /// A hint that `a[at]` will be read soon: on x86 (`prefetcht0`) its
    /// cache line is sent for at once, so that a loop reading a stream
    /// fresh from memory has more lines in flight than the hardware
    /// prefetcher asks for; nothing if `at` is past `a`'s end, and nothing
    /// on the other paths (not measured there). Never changes a result.
    #[inline(always)]
    fn prefetch_f64(self, a: &[f64], at: usize) {
        let _ = (a, at);
    }
}

/// The sum of squared signed 16-bit halves of one 32-bit word (the
/// definition [`Lanes::sq_halves_u32s`] follows).
#[inline(always)]
pub fn sq_halves(w: u32) -> u32 {
    let (lo, hi) = (i32::from(w as u16 as i16), i32::from((w >> 16) as u16 as i16));
    (lo * lo) as u32 + (hi * hi) as u32
}

impl Lanes for pulp::Scalar128b {
    #[inline(always)]
    fn shl_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
        let a: [u64; 2] = pulp::bytemuck::cast(a);
        pulp::bytemuck::cast(a.map(|x| x << N))
    }
    #[inline(always)]
    fn shr_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
        let a: [u64; 2] = pulp::bytemuck::cast(a);
        pulp::bytemuck::cast(a.map(|x| x >> N))
    }
    #[inline(always)]
    fn rotl_u64s<const L: i32, const R: i32>(self, a: Self::u64s) -> Self::u64s {
        const { assert!(L + R == 64) };
        let a: [u64; 2] = pulp::bytemuck::cast(a);
        pulp::bytemuck::cast(a.map(|x| x.rotate_left(L as u32)))
    }
    #[inline(always)]
    fn sq_halves_u32s(self, a: Self::u64s) -> Self::u32s {
        let w: [u32; 4] = pulp::bytemuck::cast(a);
        pulp::bytemuck::cast(w.map(sq_halves))
    }
    #[inline(always)]
    fn any_m32s(self, m: Self::m32s) -> bool {
        let m: [u32; 4] = pulp::bytemuck::cast(self.transmute_u32s_m32s(m));
        m.iter().any(|&x| x != 0)
    }
    #[inline(always)]
    fn any_m64s(self, m: Self::m64s) -> bool {
        let m: [u64; 2] = pulp::bytemuck::cast(self.transmute_u64s_m64s(m));
        m.iter().any(|&x| x != 0)
    }
    #[inline(always)]
    fn all_m64s(self, m: Self::m64s) -> bool {
        let m: [u64; 2] = pulp::bytemuck::cast(self.transmute_u64s_m64s(m));
        m.iter().all(|&x| x != 0)
    }
    #[inline(always)]
    fn load_widen_u32s(self, a: &[u32]) -> Self::u64s {
        let a: &[u32; 2] = a.try_into().expect("one vector of u32");
        pulp::bytemuck::cast(a.map(u64::from))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use pulp::bytemuck::cast;
    use pulp::x86::{V3, V4};
    use pulp::Simd;
    use std::arch::x86_64::*;

    // SAFETY (every `unsafe` block below): a `V3` or `V4` value exists only
    // where pulp has detected its features (AVX2 + FMA, resp. AVX-512F/BW/
    // DQ/VL), so the intrinsics they need are present.

    /// Both paths' [`Lanes::stream_fence`].
    #[inline(always)]
    fn sfence() {
        // SAFETY: SSE, present on every x86-64.
        unsafe { _mm_sfence() }
    }

    /// Both paths' [`Lanes::prefetch_f64`].
    #[inline(always)]
    fn prefetch_t0(a: &[f64], at: usize) {
        if let Some(x) = a.get(at) {
            // SAFETY: SSE, present on every x86-64; a prefetch reads nothing
            // the program sees (and `x` is an element of `a` anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast()) }
        }
    }

    impl Lanes for V3 {
        #[inline(always)]
        fn shl_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            cast(self.avx2._mm256_slli_epi64::<N>(cast(a)))
        }
        #[inline(always)]
        fn shr_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            cast(self.avx2._mm256_srli_epi64::<N>(cast(a)))
        }
        #[inline(always)]
        fn rotl_u64s<const L: i32, const R: i32>(self, a: Self::u64s) -> Self::u64s {
            const { assert!(L + R == 64) };
            let a = cast(a);
            cast(self.avx2._mm256_or_si256(self.avx2._mm256_slli_epi64::<L>(a), self.avx2._mm256_srli_epi64::<R>(a)))
        }
        #[inline(always)]
        fn sq_halves_u32s(self, a: Self::u64s) -> Self::u32s {
            cast(self.avx2._mm256_madd_epi16(cast(a), cast(a)))
        }
        #[inline(always)]
        fn any_m32s(self, m: Self::m32s) -> bool {
            self.avx._mm256_movemask_ps(cast(self.transmute_u32s_m32s(m))) != 0
        }
        #[inline(always)]
        fn any_m64s(self, m: Self::m64s) -> bool {
            self.avx._mm256_movemask_pd(cast(self.transmute_u64s_m64s(m))) != 0
        }
        #[inline(always)]
        fn all_m64s(self, m: Self::m64s) -> bool {
            self.avx._mm256_movemask_pd(cast(self.transmute_u64s_m64s(m))) == 0xf
        }
        #[inline(always)]
        fn stream_f64s(self, a: &mut [f64], v: Self::f64s) {
            assert!(a.len() == 4 && a.as_mut_ptr().align_offset(32) == 0, "one aligned vector");
            // SAFETY: see the module comment (AVX); `a` is 4 doubles at a
            // 32-byte boundary, as the instruction requires.
            unsafe { _mm256_stream_pd(a.as_mut_ptr(), cast(v)) }
        }
        #[inline(always)]
        fn stream_fence(self) {
            sfence()
        }
        #[inline(always)]
        fn prefetch_f64(self, a: &[f64], at: usize) {
            prefetch_t0(a, at)
        }
        #[inline(always)]
        fn load_widen_u32s(self, a: &[u32]) -> Self::u64s {
            let a: [u32; 4] = a.try_into().expect("one vector of u32");
            cast(self.avx2._mm256_cvtepu32_epi64(cast(a)))
        }
    }

    impl Lanes for V4 {
        #[inline(always)]
        fn shl_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            // SAFETY: see the module comment (AVX-512F).
            unsafe { cast(_mm512_sll_epi64(cast(a), _mm_cvtsi32_si128(N))) }
        }
        #[inline(always)]
        fn shr_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            // SAFETY: see the module comment (AVX-512F).
            unsafe { cast(_mm512_srl_epi64(cast(a), _mm_cvtsi32_si128(N))) }
        }
        #[inline(always)]
        fn rotl_u64s<const L: i32, const R: i32>(self, a: Self::u64s) -> Self::u64s {
            const { assert!(L + R == 64) };
            // SAFETY: see the module comment (AVX-512F).
            unsafe { cast(_mm512_rol_epi64::<L>(cast(a))) }
        }
        #[inline(always)]
        fn sq_halves_u32s(self, a: Self::u64s) -> Self::u32s {
            // SAFETY: see the module comment (AVX-512BW).
            unsafe { cast(_mm512_madd_epi16(cast(a), cast(a))) }
        }
        #[inline(always)]
        fn any_m32s(self, m: Self::m32s) -> bool {
            m.0 != 0
        }
        #[inline(always)]
        fn any_m64s(self, m: Self::m64s) -> bool {
            m.0 != 0
        }
        #[inline(always)]
        fn all_m64s(self, m: Self::m64s) -> bool {
            m.0 == 0xff
        }
        #[inline(always)]
        fn stream_f64s(self, a: &mut [f64], v: Self::f64s) {
            assert!(a.len() == 8 && a.as_mut_ptr().align_offset(64) == 0, "one aligned vector");
            // SAFETY: see the module comment (AVX-512F); `a` is 8 doubles at
            // a 64-byte boundary, as the instruction requires.
            unsafe { _mm512_stream_pd(a.as_mut_ptr(), cast(v)) }
        }
        #[inline(always)]
        fn stream_fence(self) {
            sfence()
        }
        #[inline(always)]
        fn prefetch_f64(self, a: &[f64], at: usize) {
            prefetch_t0(a, at)
        }
        #[inline(always)]
        fn load_widen_u32s(self, a: &[u32]) -> Self::u64s {
            let a: [u32; 8] = a.try_into().expect("one vector of u32");
            // SAFETY: see the module comment (AVX-512F).
            unsafe { cast(_mm512_cvtepu32_epi64(cast(a))) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Lanes;
    use pulp::aarch64::Neon;
    use pulp::bytemuck::cast;
    use pulp::Simd;
    use std::arch::aarch64::*;

    // SAFETY (every `unsafe` block below): a `Neon` value exists only where
    // pulp has detected NEON.

    impl Lanes for Neon {
        #[inline(always)]
        fn shl_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            // SAFETY: see the module comment.
            unsafe { cast(vshlq_n_u64::<N>(cast(a))) }
        }
        #[inline(always)]
        fn shr_u64s<const N: i32>(self, a: Self::u64s) -> Self::u64s {
            // SAFETY: see the module comment.
            unsafe { cast(vshrq_n_u64::<N>(cast(a))) }
        }
        #[inline(always)]
        fn rotl_u64s<const L: i32, const R: i32>(self, a: Self::u64s) -> Self::u64s {
            const { assert!(L + R == 64) };
            // SAFETY: see the module comment.
            unsafe {
                let a: uint64x2_t = cast(a);
                cast(vsriq_n_u64::<R>(vshlq_n_u64::<L>(a), a))
            }
        }
        #[inline(always)]
        fn sq_halves_u32s(self, a: Self::u64s) -> Self::u32s {
            // SAFETY: see the module comment.
            unsafe {
                let w: int32x4_t = cast(a);
                let lo = vshrq_n_s32::<16>(vshlq_n_s32::<16>(w));
                let hi = vshrq_n_s32::<16>(w);
                cast(vmlaq_s32(vmulq_s32(lo, lo), hi, hi))
            }
        }
        #[inline(always)]
        fn any_m32s(self, m: Self::m32s) -> bool {
            // SAFETY: see the module comment.
            unsafe { vmaxvq_u32(cast(self.transmute_u32s_m32s(m))) != 0 }
        }
        #[inline(always)]
        fn any_m64s(self, m: Self::m64s) -> bool {
            // SAFETY: see the module comment.
            unsafe { vmaxvq_u32(cast(self.transmute_u64s_m64s(m))) != 0 }
        }
        #[inline(always)]
        fn all_m64s(self, m: Self::m64s) -> bool {
            // SAFETY: see the module comment.
            unsafe { vminvq_u32(cast(self.transmute_u64s_m64s(m))) != 0 }
        }
        #[inline(always)]
        fn load_widen_u32s(self, a: &[u32]) -> Self::u64s {
            let a: [u32; 2] = a.try_into().expect("one vector of u32");
            // SAFETY: see the module comment.
            unsafe { cast(vmovl_u32(cast(a))) }
        }
    }
}

/// The name of a kernel's loop on this process's [`path`], for reports:
/// `hand_written_avx512` says whether the kernel's AVX-512 path runs a
/// hand-written `std::arch` loop instead of the generic one.
pub(crate) fn implementation(hand_written_avx512: bool) -> &'static str {
    match path() {
        Path::Avx512 if hand_written_avx512 => "avx512 (std::arch)",
        p => p.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_list_what_runs() {
        assert_eq!(choose(Some("scalar")), Ok(Path::Scalar));
        assert_eq!(choose(Some("portable")), Ok(Path::Scalar));
        assert_eq!(choose(None), Ok(supported()[0]));
        assert_eq!(choose(Some("auto")), Ok(supported()[0]));
        let e = choose(Some("sse9")).unwrap_err();
        assert!(e.contains("sse9") && e.contains("scalar"), "{e}");
        let missing = if cfg!(target_arch = "x86_64") { "neon" } else { "avx2" };
        let e = choose(Some(missing)).unwrap_err();
        assert!(
            e.contains("not supported")
                && e.ends_with(&supported().iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")),
            "{e}"
        );
    }

    /// Every `Lanes` operation against its scalar definition, on every path.
    #[test]
    fn lanes_operations_match_their_definitions() {
        struct Probe;
        impl Kernel for Probe {
            type Output = Vec<u64>;
            #[inline(always)]
            fn run<S: Lanes>(self, s: S) -> Vec<u64> {
                let w = S::U64_LANES;
                let input: Vec<u64> =
                    (0..w as u64).map(|i| 0x8000_7fff_1234_ffffu64.rotate_left(7 * i as u32) ^ i).collect();
                let a = s.partial_load_u64s(&input);
                let mut out = vec![0u64; 4 * w];
                s.partial_store_u64s(&mut out[3 * w..], s.shr_u64s::<13>(a));
                s.partial_store_u64s(&mut out[..w], s.shl_u64s::<17>(a));
                s.partial_store_u64s(&mut out[w..2 * w], s.rotl_u64s::<23, 41>(a));
                let sq: S::u64s = pulp::bytemuck::cast(s.sq_halves_u32s(a));
                s.partial_store_u64s(&mut out[2 * w..3 * w], sq);
                // Words with the top bit set too: the widening is unsigned.
                let words: Vec<u32> = input.iter().map(|&x| (x >> 16) as u32 ^ 0x8000_0001).collect();
                let wide = s.load_widen_u32s(&words);
                let mut widened = vec![0u64; w];
                s.store_u64s(&mut widened, wide);
                assert!(widened.iter().zip(&words).all(|(&x, &k)| x == u64::from(k)), "{widened:x?}");
                let ones = s.equal_u64s(a, a);
                assert!(s.all_m64s(ones) && s.any_m64s(ones));
                assert!(!s.any_m64s(s.not_m64s(ones)));
                out.extend(input);
                out
            }
        }
        for p in supported() {
            let out = dispatch_on(p, Probe);
            let w = out.len() / 5;
            let input = &out[4 * w..];
            for (i, &x) in input.iter().enumerate() {
                assert_eq!(out[i], x << 17, "{p:?}");
                assert_eq!(out[3 * w + i], x >> 13, "{p:?}");
                assert_eq!(out[w + i], x.rotate_left(23), "{p:?}");
                let sq = u64::from(sq_halves(x as u32)) | u64::from(sq_halves((x >> 32) as u32)) << 32;
                assert_eq!(out[2 * w + i], sq, "{p:?}");
            }
        }
    }
}
