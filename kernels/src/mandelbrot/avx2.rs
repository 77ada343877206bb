//! The hand-written AVX2 (`std::arch`) loop of the Mandelbrot escape loop,
//! the AVX-512 loop's (`avx512.rs`) twin with what AVX2 has: four lanes of
//! `f64` to a vector, masks in vector registers (`vcmppd`) read with
//! `vmovmskpd`, and sixteen vector registers. It performs the same IEEE
//! operations in the same order as the generic loop in `simd.rs`, so all
//! give the same bits (the unit tests compare them). Callers check that the
//! run-time path is AVX2 first: functions here are `unsafe` only because
//! they need those CPU features.

use std::arch::x86_64::*;

/// Mandelbrot: escape counts and final `|z|^2` of the pixels `cr[i] + ci i`
/// (one row: `ci` is shared), into `n` and `m2`, and the counts' sum; all
/// three slices have a length that is a multiple of 4. `widest` is the
/// element of `cr` of the largest magnitude. The two phases are those of
/// [`super::avx512::mandel_span`], with groups of four pixels:
///
/// 1. *Blocks* ([`blocks`]): [`VECTORS`] vectors in rounds without escape
///    tests, one test after each round; a vector whose round saw an escape
///    is set aside with its state from before the round and takes the next
///    group.
/// 2. *Exact* ([`exact`]): the groups set aside, and those sorted straight
///    here, with a test before every iteration. Without masked operations,
///    the lanes are not frozen: every lane steps on, and what a lane that
///    failed the test needs, its count and its `|z|^2` at that test, is kept
///    aside (an integer subtract of the mask, a masked store of the `|z|^2`
///    tested), where freezing `z` would take two blends (six micro-ops) per
///    iteration.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mandel_span(
    cr: &[f64],
    widest: f64,
    ci: f64,
    max_iter: u32,
    bailout: f64,
    n: &mut [u32],
    m2: &mut [f64],
) -> u64 {
    assert!(cr.len().is_multiple_of(4) && n.len() == cr.len() && m2.len() == cr.len());
    debug_assert!(cr.iter().all(|x| x.abs() <= widest.abs()));
    let k = Span {
        cr,
        groups: cr.len() / 4,
        ci: _mm256_set1_pd(ci),
        r2: _mm256_set1_pd(bailout * bailout),
        block_c2: _mm256_set1_pd(crate::mandelbrot::block_c2(bailout)),
        max_iter,
        round: super::round_len(max_iter),
    };
    let mut out = Out { n, m2, total: _mm256_setzero_si256() };
    // The thread's lists from the previous row, so rows allocate nothing.
    let mut lists = LISTS.take();
    // `|c|^2 = fma(cr, cr, ci^2)` grows with `|cr|` (rounding is monotone),
    // so the widest `cr` decides for the whole row.
    let row_near = k.within_bound(_mm256_set1_pd(widest));
    lists.sort_groups(&k, out.n, row_near);
    let (block, fresh) = (&lists.block[..lists.lens.0], &lists.fresh[..lists.lens.1]);
    blocks(&k, &mut out, block, &mut lists.set_aside);
    exact(&k, &mut out, fresh, &lists.set_aside);
    LISTS.set(lists);
    let t: [u64; 4] = std::mem::transmute(out.total);
    t.iter().sum()
}

thread_local! {
    /// [`mandel_span`]'s lists, kept between calls.
    static LISTS: std::cell::Cell<Lists> = const { std::cell::Cell::new(Lists::new()) };
}

/// A row's groups, by the phase they go through (as in `avx512.rs`).
#[derive(Default)]
struct Lists {
    /// Groups that start in the block phase (the first `lens.0`).
    block: Vec<u32>,
    /// Groups that go straight to the exact phase, from `z = 0` (the first
    /// `lens.1`).
    fresh: Vec<u32>,
    /// How many of `block` and `fresh` are this row's.
    lens: (usize, usize),
    /// Groups the block phase hands on to the exact phase, with their state.
    set_aside: Vec<SetAside>,
}

impl Lists {
    const fn new() -> Lists {
        Lists { block: Vec::new(), fresh: Vec::new(), lens: (0, 0), set_aside: Vec::new() }
    }

    /// Sorts the span's groups into `block` and `fresh`, in order, and
    /// empties `set_aside`, by the rule of `avx512.rs`: a group starts in
    /// the block phase if its `c` is within the bound and `max_iter` allows
    /// a round, unless `n` (the row above's counts, usually) shows all four
    /// escaping within a round. Without a branch on any group: each is
    /// written to both lists, and the list it belongs to moves on.
    #[target_feature(enable = "avx2,fma")]
    fn sort_groups(&mut self, k: &Span, n: &[u32], row_near: bool) {
        let groups = k.groups;
        self.set_aside.clear();
        // Each group is set aside at most once, and `Blocks::retire` writes
        // a record before it knows whether to keep it.
        self.set_aside.reserve(groups + 1);
        if self.block.len() < groups {
            self.block.resize(groups, 0);
            self.fresh.resize(groups, 0);
        }
        let rounds_fit = k.max_iter >= k.round;
        // `c < round` as `min(c, round - 1) == c` (unsigned).
        let below = _mm_set1_epi32(k.round.wrapping_sub(1) as i32);
        let (mut to_block, mut to_fresh) = (0, 0);
        for g in 0..groups {
            // SAFETY: this function requires AVX2, and `g` is a group of the span.
            let near = row_near || unsafe { k.near(g) };
            let four: [u32; 4] = n[4 * g..4 * g + 4].try_into().expect("four counts");
            // SAFETY: this function requires SSE4.1 (part of AVX2).
            let early = unsafe {
                let c: __m128i = std::mem::transmute(four);
                _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_min_epu32(c, below), c))) == 0xf
            };
            let block = near & !early & rounds_fit;
            // Both below `g + 1`, so within the lists.
            self.block[to_block] = g as u32;
            self.fresh[to_fresh] = g as u32;
            to_block += usize::from(block);
            to_fresh += usize::from(!block);
        }
        self.lens = (to_block, to_fresh);
    }
}

/// What both phases share.
struct Span<'a> {
    cr: &'a [f64],
    groups: usize,
    ci: __m256d,
    r2: __m256d,
    block_c2: __m256d,
    max_iter: u32,
    /// Iterations per round of the block phase ([`super::round_len`]).
    round: u32,
}

impl Span<'_> {
    /// Whether all of group `group`'s points have `|c|^2` within `block_c2`.
    #[inline(always)]
    unsafe fn near(&self, group: usize) -> bool {
        self.within_bound(self.cr(group))
    }

    /// Whether all four points `cr + ci i` have `|c|^2` within `block_c2`.
    #[inline(always)]
    unsafe fn within_bound(&self, cr: __m256d) -> bool {
        _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(norm(cr, self.ci), self.block_c2)) == 0xf
    }

    /// The real parts of group `group`'s four points.
    #[inline(always)]
    unsafe fn cr(&self, group: usize) -> __m256d {
        let four = &self.cr[4 * group..4 * group + 4]; // bounds-checked
        _mm256_loadu_pd(four.as_ptr())
    }
}

/// Where results go.
struct Out<'a> {
    n: &'a mut [u32],
    m2: &'a mut [f64],
    /// The final counts added up, per lane.
    total: __m256i,
}

impl Out<'_> {
    /// Stores group `group`'s counts (`i64` lanes), and adds them to the
    /// total where `last` (all lanes or none: a group the block phase hands
    /// on is stored again when it is done).
    #[inline(always)]
    unsafe fn store_counts(&mut self, group: usize, count: __m256i, last: __m256i) {
        let n = &mut self.n[4 * group..4 * group + 4]; // bounds-checked
                                                       // The low halves of the four counts (below 2^32) to the low 128 bits.
        let low = _mm256_permutevar8x32_epi32(count, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
        _mm_storeu_si128(n.as_mut_ptr().cast(), _mm256_castsi256_si128(low));
        self.total = _mm256_add_epi64(self.total, _mm256_and_si256(count, last));
    }

    /// Stores `m2` as the final `|z|^2` of the lanes `lanes` of the four
    /// pixels from `at` (a multiple of 4 below the span's length).
    #[inline(always)]
    unsafe fn store_m2(&mut self, at: usize, m2: __m256d, lanes: __m256i) {
        debug_assert!(at.is_multiple_of(4) && at < self.m2.len());
        _mm256_maskstore_pd(self.m2.as_mut_ptr().add(at), lanes, m2);
    }
}

/// `|z|^2` as [`crate::mandelbrot::norm`] computes it: `fma(a, a, b*b)`.
#[inline(always)]
unsafe fn norm(a: __m256d, b: __m256d) -> __m256d {
    _mm256_fmadd_pd(a, a, _mm256_mul_pd(b, b))
}

/// `z <- z^2 + c` with the operations of [`crate::mandelbrot::step`].
#[inline(always)]
unsafe fn step(zr: &mut __m256d, zi: &mut __m256d, cr: __m256d, ci: __m256d) {
    let (a, b) = (*zr, *zi);
    let t = _mm256_fnmadd_pd(b, b, cr); // cr - b*b, one rounding
    *zr = _mm256_fmadd_pd(a, a, t);
    *zi = _mm256_fmadd_pd(_mm256_add_pd(a, a), b, ci);
}

/// All lanes set where `b`, none where not.
#[inline(always)]
unsafe fn lanes_if(b: bool) -> __m256i {
    _mm256_set1_epi64x(-i64::from(b))
}

/// A group's state when it leaves the block phase: every lane has run
/// `iters` iterations and none has escaped.
struct SetAside {
    group: usize,
    zr: __m256d,
    zi: __m256d,
    iters: u32,
}

/// Vectors in flight in the block phase: each iteration is a chain of two
/// dependent FMAs (eight cycles) and three FMAs on two ports (the add can
/// go to a third). Six would cover the latency on paper (nine cycles of
/// FMAs a step) and keep `z` in twelve of the sixteen registers, but
/// llvm-mca (Sapphire Rapids) puts their round at 62 cycles for 5 steps,
/// 2.1 a vector-step, bound by latency; eight, with some `z` spilled to
/// the stack, at 60 cycles for 5 steps, 1.5 a vector-step, the FMA ports'
/// bound (and measured faster on the benchmark picture).
const VECTORS: usize = 8;

/// The block phase of [`mandel_span`], as in `avx512.rs`: [`VECTORS`]
/// vectors in lock-step rounds, all of whose lanes are running; a vector
/// whose round saw an escape is set aside from before the round, one that
/// reaches `max_iter` is stored, and either way it takes the next group.
#[inline(always)]
unsafe fn blocks(k: &Span, out: &mut Out, groups: &[u32], set_aside: &mut Vec<SetAside>) {
    let zero = _mm256_setzero_pd();
    let mut b = Blocks { groups, next: 0, out, set_aside };
    let (mut group, mut iters) = ([IDLE; VECTORS], [0u32; VECTORS]);
    let (mut cr, mut zr, mut zi) = ([zero; VECTORS], [zero; VECTORS], [zero; VECTORS]);
    let mut live = 0;
    for v in 0..VECTORS {
        let g;
        (g, cr[v]) = b.take(k);
        group[v] = g;
        live += usize::from(g != IDLE);
    }
    while live > 0 {
        let (zr0, zi0) = (zr, zi);
        // Idle vectors iterate too (from z = c = 0, harmlessly).
        round_steps(k.round, &mut zr, &mut zi, &cr, k.ci);
        // Whether each vector goes on to another round: no lane escaped
        // (ordered: a NaN, from overflow, fails, i.e. counts as escaped), and
        // at least a round is left after the next.
        macro_rules! check {
            ($($v:literal)*) => {$(
                let held = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(norm(zr[$v], zi[$v]), k.r2)) == 0xf;
                if held && k.max_iter - iters[$v] >= 2 * k.round {
                    iters[$v] += k.round;
                } else if group[$v] != IDLE {
                    let state = (group[$v], zr[$v], zi[$v], iters[$v]);
                    (group[$v], cr[$v]) = b.retire(k, held, state, (zr0[$v], zi0[$v]));
                    (zr[$v], zi[$v], iters[$v]) = (zero, zero, 0);
                    live -= usize::from(group[$v] == IDLE);
                }
            )*};
        }
        check!(0 1 2 3 4 5 6 7);
    }
}

/// `round` steps of every vector, five at a time unrolled in full (as in
/// `avx512.rs`: in a loop of single steps the compiler spends a register
/// copy per vector and step, since an FMA overwrites one of its operands).
#[inline(always)]
unsafe fn round_steps(
    round: u32,
    zr: &mut [__m256d; VECTORS],
    zi: &mut [__m256d; VECTORS],
    cr: &[__m256d; VECTORS],
    ci: __m256d,
) {
    for _ in 0..round / 5 {
        steps::<5>(zr, zi, cr, ci);
    }
    match round % 5 {
        1 => steps::<1>(zr, zi, cr, ci),
        2 => steps::<2>(zr, zi, cr, ci),
        3 => steps::<3>(zr, zi, cr, ci),
        4 => steps::<4>(zr, zi, cr, ci),
        _ => {}
    }
}

/// `R` steps of every vector.
#[inline(always)]
unsafe fn steps<const R: u32>(
    zr: &mut [__m256d; VECTORS],
    zi: &mut [__m256d; VECTORS],
    cr: &[__m256d; VECTORS],
    ci: __m256d,
) {
    for _ in 0..R {
        for v in 0..VECTORS {
            step(&mut zr[v], &mut zi[v], cr[v], ci);
        }
    }
}

/// An idle vector's group.
const IDLE: usize = usize::MAX;

/// The block phase's bookkeeping: the groups it runs, the next of them, and
/// where groups go.
struct Blocks<'a, 'b> {
    groups: &'a [u32],
    next: usize,
    out: &'a mut Out<'b>,
    set_aside: &'a mut Vec<SetAside>,
}

impl Blocks<'_, '_> {
    /// The next group with its `c`; `IDLE` when none is left.
    #[inline(always)]
    unsafe fn take(&mut self, k: &Span) -> (usize, __m256d) {
        match self.groups.get(self.next) {
            Some(&g) => {
                self.next += 1;
                (g as usize, k.cr(g as usize))
            }
            None => (IDLE, _mm256_setzero_pd()),
        }
    }

    /// Ends a vector's group after a round, as `avx512.rs`'s `retire` does
    /// (branch-free): `held` if no lane escaped in it, `(group, zr, zi,
    /// iters)` its state before counting the round, `z0` the state before
    /// it. Stores the group if it reached `max_iter`, else sets it aside
    /// (from before the round if a lane escaped, from after it if fewer
    /// iterations are left than a round), and takes the next group.
    #[inline(never)]
    #[target_feature(enable = "avx2,fma")]
    fn retire(
        &mut self,
        k: &Span,
        held: bool,
        (group, zr, zi, iters): (usize, __m256d, __m256d, u32),
        (zr0, zi0): (__m256d, __m256d),
    ) -> (usize, __m256d) {
        let done = held && iters + k.round == k.max_iter;
        // SAFETY: this function requires AVX2 and FMA; `group` came from
        // `take`, so its four results fit.
        unsafe {
            let count = _mm256_set1_epi64x(i64::from(k.max_iter));
            self.out.store_counts(group, count, lanes_if(done));
            self.out.store_m2(4 * group, norm(zr, zi), lanes_if(true));
        }
        // SAFETY: this function requires AVX2.
        let after = unsafe { _mm256_castsi256_pd(lanes_if(held)) };
        let record = SetAside {
            group,
            zr: _mm256_blendv_pd(zr0, zr, after),
            zi: _mm256_blendv_pd(zi0, zi, after),
            iters: iters + k.round * u32::from(held),
        };
        // `Lists::sort_groups` reserved room for every group.
        let len = self.set_aside.len();
        self.set_aside.spare_capacity_mut()[0].write(record);
        // SAFETY: the record at `len` was just written.
        unsafe { self.set_aside.set_len(len + usize::from(!done)) };
        // SAFETY: this function requires AVX2.
        unsafe { self.take(k) }
    }
}

/// A vector in the exact phase.
#[derive(Clone, Copy)]
struct Exact {
    /// Its group of four pixels; `IDLE` when idle.
    group: usize,
    /// Where its pixels' results are (0 when idle).
    at: usize,
    cr: __m256d,
    /// `z`, stepped on every lane, also those that failed the test.
    zr: __m256d,
    zi: __m256d,
    /// Iterations per lane (`i64`): the running mask (-1) subtracted.
    count: __m256i,
    /// Lanes that have not failed a test (none when idle).
    running: __m256d,
    iters: u32,
}

/// Where the exact phase takes its groups: the fresh ones, then those set
/// aside, in order.
struct Queue<'a> {
    fresh: &'a [u32],
    set_aside: &'a [SetAside],
    next: usize,
}

impl Exact {
    /// The next group of `q`, or an idle vector when none is left.
    #[inline(always)]
    unsafe fn take(k: &Span, q: &mut Queue) -> Exact {
        let zero = _mm256_setzero_pd();
        let (group, zr, zi, iters) = if let Some(&g) = q.fresh.get(q.next) {
            (g as usize, zero, zero, 0)
        } else if let Some(s) = q.set_aside.get(q.next - q.fresh.len()) {
            (s.group, s.zr, s.zi, s.iters)
        } else {
            let none = _mm256_setzero_si256();
            return Exact { group: IDLE, at: 0, cr: zero, zr: zero, zi: zero, count: none, running: zero, iters: 0 };
        };
        q.next += 1;
        let (count, running) = (_mm256_set1_epi64x(i64::from(iters)), _mm256_castsi256_pd(lanes_if(true)));
        Exact { group, at: 4 * group, cr: k.cr(group), zr, zi, count, running, iters }
    }

    /// One iteration, the reference's way on the lanes still running: test
    /// (storing the `|z|^2` tested, a masked store that leaves the lanes
    /// already stopped alone), count if passed; then a step of every lane.
    #[inline(always)]
    unsafe fn once(&mut self, k: &Span, out: &mut Out) {
        let m2 = norm(self.zr, self.zi);
        out.store_m2(self.at, m2, _mm256_castpd_si256(self.running));
        self.running = _mm256_and_pd(self.running, _mm256_cmp_pd::<_CMP_LE_OQ>(m2, k.r2));
        self.count = _mm256_sub_epi64(self.count, _mm256_castpd_si256(self.running));
        step(&mut self.zr, &mut self.zi, self.cr, k.ci);
        self.iters += 1;
    }

    /// Two iterations (one if only one is left); then stores the group and
    /// takes the next when it is done.
    #[inline(always)]
    unsafe fn iterate(&mut self, k: &Span, q: &mut Queue, out: &mut Out) {
        self.once(k, out);
        if self.iters < k.max_iter {
            self.once(k, out);
        }
        let stopped = _mm256_movemask_pd(self.running) == 0;
        if (stopped || self.iters == k.max_iter) && self.group != IDLE {
            // Lanes running at `max_iter` end with the `|z|^2` of their final `z`.
            out.store_m2(self.at, norm(self.zr, self.zi), _mm256_castpd_si256(self.running));
            out.store_counts(self.group, self.count, lanes_if(true));
            *self = Exact::take(k, q);
        }
    }
}

/// The exact phase of [`mandel_span`]: three vectors iterated in turn
/// (their state fills the registers), each taking the next group (`fresh`, then `set_aside`) as soon
/// as its own is done.
#[inline(always)]
unsafe fn exact(k: &Span, out: &mut Out, fresh: &[u32], set_aside: &[SetAside]) {
    let mut q = Queue { fresh, set_aside, next: 0 };
    let mut e0 = Exact::take(k, &mut q);
    let mut e1 = Exact::take(k, &mut q);
    let mut e2 = Exact::take(k, &mut q);
    while [&e0, &e1, &e2].iter().any(|e| e.group != IDLE) {
        e0.iterate(k, &mut q, out);
        e1.iterate(k, &mut q, out);
        e2.iterate(k, &mut q, out);
    }
}
