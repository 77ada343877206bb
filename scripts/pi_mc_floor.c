// The hardware floor of pi-mc's inner loop on an AVX-512 CPU: the same
// generator and inside test as kernels/src/avx512.rs (xoshiro256++, four
// vectors of eight lanes, two outputs per two samples, the top halves sorted
// by one vpmaddwd and two compares, one kortestw per two vectors, the rare
// band settled exactly), written with C intrinsics with no seeding, no
// units and no threads, beside earlier and alternative loops, and a clock
// measurement that turns the rates into cycles per eight samples. Each
// loop's operation count over two (the 512-bit ports) is its floor in cycles.
//
//   gcc -O3 -march=native scripts/pi_mc_floor.c -o /tmp/pi_mc_floor && /tmp/pi_mc_floor
//
// Rates are per CPU-second of this process (CLOCK_PROCESS_CPUTIME_ID), so a
// busy machine's time-sharing does not count against them; each loop runs
// five times and the best is printed. Not part of the build or the tests.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define V 4
#define STEPS 50000000ULL /* per vector: 1.6e9 samples per loop */

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *z) {
    uint64_t q = (*z += 0x9e3779b97f4a7c15ULL);
    q = (q ^ (q >> 30)) * 0xbf58476d1ce4e5b9ULL;
    q = (q ^ (q >> 27)) * 0x94d049bb133111ebULL;
    return q ^ (q >> 31);
}

static void seed(__m512i st[V][4]) {
    uint64_t z = 1, a[8];
    for (int v = 0; v < V; v++)
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 8; l++) a[l] = splitmix(&z);
            st[v][k] = _mm512_loadu_si512(a);
        }
}

// One xoshiro256 state step without an output (six operations).
static inline void advance(__m512i s[4]) {
    __m512i t = _mm512_slli_epi64(s[1], 17);
    __m512i s3x = _mm512_xor_si512(s[3], s[1]);
    __m512i s0 = _mm512_xor_si512(s[0], s3x);
    __m512i s1 = _mm512_ternarylogic_epi64(s[1], s[2], s[0], 0x96);
    __m512i s2 = _mm512_ternarylogic_epi64(s[2], s[0], t, 0x96);
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = _mm512_rol_epi64(s3x, 45);
}

// One xoshiro256+ step of eight lanes: its output and the update (seven operations).
static inline __m512i next(__m512i s[4]) {
    __m512i r = _mm512_add_epi64(s[0], s[3]);
    advance(s);
    return r;
}

// Inside the disc: x^2 + y^2 < 2^62, x and y the signed halves. Six
// operations with the count.
static inline __mmask8 inside(__m512i r, __m512i limit) {
    __m512i x = _mm512_srli_epi64(r, 32);
    __m512i sum = _mm512_add_epi64(_mm512_mul_epi32(x, x), _mm512_mul_epi32(r, r));
    return _mm512_cmplt_epu64_mask(sum, limit);
}

// Generator, test and count per vector (13 operations per 8 samples).
__attribute__((noinline)) static uint64_t full(uint64_t steps) {
    __m512i st[V][4];
    seed(st);
    __m512i limit = _mm512_set1_epi64(1LL << 62);
    __m512d one = _mm512_set1_pd(1.0), c[V];
    for (int v = 0; v < V; v++) c[v] = _mm512_setzero_pd();
    for (uint64_t i = 0; i < steps; i++)
        for (int v = 0; v < V; v++) c[v] = _mm512_mask_add_pd(c[v], inside(next(st[v]), limit), c[v], one);
    double t = 0;
    for (int v = 0; v < V; v++) t += _mm512_reduce_add_pd(c[v]);
    return (uint64_t)t;
}

// The previous loop: the compare and count shared by two vectors, the sums' high
// halves (inside iff below 2^30) packed into one vector of sixteen (12.5 ops).
static inline __m512i sum_sq(__m512i r) {
    __m512i x = _mm512_srli_epi64(r, 32);
    return _mm512_add_epi64(_mm512_mul_epi32(x, x), _mm512_mul_epi32(r, r));
}

__attribute__((noinline)) static uint64_t packed(uint64_t steps) {
    __m512i st[V][4];
    seed(st);
    __m512i limit = _mm512_set1_epi32(1 << 30);
    __m512 one = _mm512_set1_ps(1.0f), c[V / 2];
    for (int v = 0; v < V / 2; v++) c[v] = _mm512_setzero_ps();
    for (uint64_t i = 0; i < steps; i++)
        for (int v = 0; v < V; v += 2) {
            __m512i a = sum_sq(next(st[v])), b = sum_sq(next(st[v + 1]));
            __m512i hi = _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), 0xdd));
            c[v / 2] = _mm512_mask_add_ps(c[v / 2], _mm512_cmplt_epu32_mask(hi, limit), c[v / 2], one);
        }
    double t = 0;
    for (int v = 0; v < V / 2; v++) t += _mm512_reduce_add_ps(c[v]);
    return (uint64_t)t;
}

// xoroshiro128+ (6 ops) with the packed test: 11.5 ops.
__attribute__((noinline)) static uint64_t xoro_packed(uint64_t steps) {
    __m512i st[V][4];
    seed(st);
    __m512i limit = _mm512_set1_epi32(1 << 30);
    __m512 one = _mm512_set1_ps(1.0f), c[V / 2];
    for (int v = 0; v < V / 2; v++) c[v] = _mm512_setzero_ps();
    for (uint64_t i = 0; i < steps; i++)
        for (int v = 0; v < V; v += 2) {
            __m512i sum[2];
            for (int w = 0; w < 2; w++) {
                __m512i *s = st[v + w], s0 = s[0], s1 = s[1];
                __m512i r = _mm512_add_epi64(s0, s1);
                s1 = _mm512_xor_si512(s1, s0);
                s[0] = _mm512_ternarylogic_epi64(_mm512_rol_epi64(s0, 24), s1, _mm512_slli_epi64(s1, 16), 0x96);
                s[1] = _mm512_rol_epi64(s1, 37);
                sum[w] = sum_sq(r);
            }
            __m512i hi = _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(sum[0]), _mm512_castsi512_ps(sum[1]), 0xdd));
            c[v / 2] = _mm512_mask_add_ps(c[v / 2], _mm512_cmplt_epu32_mask(hi, limit), c[v / 2], one);
        }
    double t = 0;
    for (int v = 0; v < V / 2; v++) t += _mm512_reduce_add_ps(c[v]);
    return (uint64_t)t;
}

// The generator alone, its outputs xor-folded so they are not dead (8 ops).
__attribute__((noinline)) static uint64_t gen_only(uint64_t steps) {
    __m512i st[V][4], acc[V];
    seed(st);
    for (int v = 0; v < V; v++) acc[v] = _mm512_setzero_si512();
    for (uint64_t i = 0; i < steps; i++)
        for (int v = 0; v < V; v++) acc[v] = _mm512_xor_si512(acc[v], next(st[v]));
    uint64_t t = 0;
    for (int v = 0; v < V; v++) t ^= _mm512_reduce_add_epi64(acc[v]);
    return t;
}

// The previous generator: counter-based SplitMix64, two vpmullq per sample.
__attribute__((noinline)) static uint64_t splitmix_full(uint64_t steps) {
    __m512i h[V], limit = _mm512_set1_epi64(1LL << 62), step = _mm512_set1_epi64(0x9e3779b97f4a7c15ULL * 8 * V);
    __m512i m1 = _mm512_set1_epi64(0xbf58476d1ce4e5b9ULL), m2 = _mm512_set1_epi64(0x94d049bb133111ebULL);
    __m512d one = _mm512_set1_pd(1.0), c[V];
    for (int v = 0; v < V; v++) {
        uint64_t a[8];
        for (int l = 0; l < 8; l++) a[l] = 0x9e3779b97f4a7c15ULL * (8 * v + l);
        h[v] = _mm512_loadu_si512(a);
        c[v] = _mm512_setzero_pd();
    }
    for (uint64_t i = 0; i < steps; i++)
        for (int v = 0; v < V; v++) {
            __m512i z = h[v];
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), m1);
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), m2);
            z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
            c[v] = _mm512_mask_add_pd(c[v], inside(z, limit), c[v], one);
            h[v] = _mm512_add_epi64(h[v], step);
        }
    double t = 0;
    for (int v = 0; v < V; v++) t += _mm512_reduce_add_pd(c[v]);
    return (uint64_t)t;
}



// The xoshiro256++ output of a state (three operations).
static inline __m512i output_pp(const __m512i s[4]) {
    return _mm512_add_epi64(_mm512_rol_epi64(_mm512_add_epi64(s[0], s[3]), 23), s[0]);
}

// pi_mc::SURE_INSIDE and SURE_OUTSIDE.
#define SURE_IN ((1u << 30) - 92681u)
#define SURE_OUT ((1u << 30) + 131072u)

// The exact test for the band's samples: x takes the low halves of the two
// outputs' words, y the high halves, the first output's half on top.
__attribute__((noinline, cold)) static uint64_t band(__m512i r1, __m512i r2, __mmask16 m) {
    uint32_t h[16], l[16];
    uint64_t n = 0;
    _mm512_storeu_si512(h, r1);
    _mm512_storeu_si512(l, r2);
    for (int j = 0; j < 16; j++)
        if (m >> j & 1) {
            int64_t x = (int32_t)((h[j] << 16) | (l[j] & 0xffff));
            int64_t y = (int32_t)((h[j] & 0xffff0000u) | (l[j] >> 16));
            n += (uint64_t)(x * x) + (uint64_t)(y * y) < (1ULL << 62);
        }
    return n;
}

// pi-mc's loop: per sixteen samples 15 generator operations and 4.5 for the
// test (vpmaddwd, two compares, the masked count, half of a kortestw).
__attribute__((noinline)) static uint64_t pairs(uint64_t steps) {
    __m512i st[V][4];
    seed(st);
    __m512i lo = _mm512_set1_epi32(SURE_IN), hi = _mm512_set1_epi32(SURE_OUT);
    __m512 one = _mm512_set1_ps(1.0f), c[V / 2];
    uint64_t extra = 0;
    for (int v = 0; v < V / 2; v++) c[v] = _mm512_setzero_ps();
    for (uint64_t i = 0; i < steps / 2; i++)
        for (int v = 0; v < V; v += 2) {
            __m512i *p = st[v], *q = st[v + 1];
            __m512i h0 = output_pp(p), h1 = output_pp(q);
            advance(p), advance(q);
            __m512i s0 = _mm512_madd_epi16(h0, h0), s1 = _mm512_madd_epi16(h1, h1);
            __mmask16 u0 = _mm512_cmpge_epu32_mask(s0, lo), u1 = _mm512_cmpge_epu32_mask(s1, lo);
            __mmask16 b0 = _mm512_mask_cmplt_epu32_mask(u0, s0, hi), b1 = _mm512_mask_cmplt_epu32_mask(u1, s1, hi);
            c[v / 2] = _mm512_mask_add_ps(c[v / 2], u0, c[v / 2], one);
            c[v / 2] = _mm512_mask_add_ps(c[v / 2], u1, c[v / 2], one);
            if (__builtin_expect(!_kortestz_mask16_u8(b0, b1), 0))
                extra += band(h0, output_pp(p), b0) + band(h1, output_pp(q), b1);
            advance(p), advance(q);
        }
    double t = 0;
    for (int v = 0; v < V / 2; v++) t += _mm512_reduce_add_ps(c[v]);
    return steps * V * 8 - (uint64_t)t + extra;
}

// Clock: a chain of dependent 64-bit imuls (3 cycles each), then a chain of
// dependent zmm vpaddq (1 cycle each) for the AVX-512 clock.
__attribute__((noinline)) static double ghz_scalar(void) {
    uint64_t n = 400000000, x = 1, y = 3;
    double t0 = cpu_s();
    __asm__ volatile("1: imul %2,%0\n imul %2,%0\n imul %2,%0\n imul %2,%0\n sub $4,%1\n jnz 1b"
                     : "+r"(x), "+r"(n)
                     : "r"(y));
    return 3 * 400000000.0 / (cpu_s() - t0) / 1e9;
}

__attribute__((noinline)) static double ghz_zmm(void) {
    uint64_t n = 1000000000;
    __m512i a = _mm512_set1_epi64(1), b = _mm512_set1_epi64(2);
    double t0 = cpu_s();
    __asm__ volatile("1: vpaddq %1,%0,%0\n vpaddq %1,%0,%0\n vpaddq %1,%0,%0\n vpaddq %1,%0,%0\n sub $4,%2\n jnz 1b"
                     : "+v"(a), "+v"(b), "+r"(n));
    return 1e9 / (cpu_s() - t0) / 1e9;
}

typedef uint64_t (*loop_fn)(uint64_t);

static double best_rate(loop_fn f, uint64_t *sink) {
    double best = 0;
    for (int k = 0; k < 5; k++) {
        double t0 = cpu_s();
        *sink += f(STEPS);
        double r = (double)STEPS * V * 8 / (cpu_s() - t0);
        if (r > best) best = r;
    }
    return best;
}

int main(void) {
    uint64_t sink = 0;
    double g = 0, gz = 0;
    for (int k = 0; k < 3; k++) {
        double a = ghz_scalar(), b = ghz_zmm();
        if (a > g) g = a;
        if (b > gz) gz = b;
    }
    printf("clock: %.2f GHz (scalar imul chain), %.2f GHz (zmm vpaddq chain)\n", g, gz);
    struct {
        const char *name;
        loop_fn f;
        double ops;
    } loops[] = {
        {"xoshiro256++, top-halves test (pi-mc's loop)", pairs, 9.75},
        {"xoshiro256+, compare and count per vector", full, 13},
        {"xoshiro256+, shared compare (before)", packed, 12.5},
        {"xoroshiro128+, shared compare", xoro_packed, 11.5},
        {"xoshiro256+ alone, outputs xor-folded", gen_only, 8},
        {"SplitMix64 counter, compare per vector (before)", splitmix_full, 19},
    };
    for (int i = 0; i < 6; i++) {
        double r = best_rate(loops[i].f, &sink);
        double cyc = 8 / r * gz * 1e9;
        printf("%-50s %.3e samples/s  %.2f cycles/8 samples  (%.1f ops: floor %.2f cycles on 2 ports)\n", loops[i].name,
               r, cyc, loops[i].ops, loops[i].ops / 2.0);
    }
    return sink == 42; // keeps the results live
}
