//! The hand-written AVX-512 (`std::arch`) loop of the Mandelbrot escape loop, beside the generic
//! one in `simd.rs`: it performs the same IEEE operations in the same order,
//! so both give the same bits (the unit tests compare them). Callers check
//! that the run-time path is AVX-512 first: functions here are `unsafe` only
//! because they need those CPU features.

use std::arch::x86_64::*;

/// Mandelbrot: escape counts and final `|z|^2` of the pixels `cr[i] + ci i`
/// (one row: `ci` is shared), into `n` and `m2`, and the counts' sum (the
/// caller need not add up `n` again); all three slices have a
/// length that is a multiple of 8. `widest` is the element of `cr` of the
/// largest magnitude. A pixel escapes when `|z| > bailout`, and a vector may
/// skip escape checks where `|c|^2` is within
/// [`block_c2`](crate::mandelbrot::block_c2).
///
/// Pixels go eight to a vector, and several vectors are in flight at a time
/// so that there is enough independent work to hide the FMA latency (two
/// dependent operations, eight cycles, per iteration). Two phases:
///
/// 1. *Blocks* ([`blocks`]): rounds of 8 to 25 iterations ([`round_len`])
///    without escape tests (four operations per iteration instead of nine),
///    one test after each round. If no lane has escaped then, none escaped
///    during the round, because an escaped point stays escaped (the proof is
///    in [`crate::mandelbrot`]), and the round stands. Otherwise the vector
///    is set aside with its state from before the round. Points inside the
///    set, most of the work, never leave this phase.
/// 2. *Exact* ([`exact`]): the vectors set aside, and those sorted straight
///    here ([`Lists::sort_groups`]: a `c` outside the bound, or pixels in
///    the row above that all escaped within a round), go on from their
///    state with a test before every iteration, freezing the lanes that
///    fail, exactly like the scalar reference.
///
/// Either way each lane ends with the reference's count and final `z`.
///
/// Where the way a vector goes follows the picture (which phase, whether a
/// round held, whether a group is done), the code avoids branches that a
/// predictor would miss: on the Benchmarks Game image each misprediction
/// avoided was worth a few percent.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ.
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn mandel_span(
    cr: &[f64],
    widest: f64,
    ci: f64,
    max_iter: u32,
    bailout: f64,
    n: &mut [u32],
    m2: &mut [f64],
) -> u64 {
    assert!(cr.len().is_multiple_of(8) && n.len() == cr.len() && m2.len() == cr.len());
    debug_assert!(cr.iter().all(|x| x.abs() <= widest.abs()));
    let k = Span {
        cr,
        groups: cr.len() / 8,
        ci: _mm512_set1_pd(ci),
        r2: _mm512_set1_pd(bailout * bailout),
        block_c2: _mm512_set1_pd(crate::mandelbrot::block_c2(bailout)),
        max_iter,
        round: super::round_len(max_iter),
    };
    let mut out = Out { n, m2, total: _mm512_setzero_si512() };
    // The thread's lists from the previous row, so rows allocate nothing.
    let mut lists = LISTS.take();
    // `|c|^2 = fma(cr, cr, ci^2)` grows with `|cr|` (rounding is monotone),
    // so the widest `cr` decides for the whole row.
    let row_near = k.within_bound(_mm512_set1_pd(widest));
    lists.sort_groups(&k, out.n, row_near);
    let (block, fresh) = (&lists.block[..lists.lens.0], &lists.fresh[..lists.lens.1]);
    blocks(&k, &mut out, block, &mut lists.set_aside);
    exact(&k, &mut out, fresh, &lists.set_aside);
    LISTS.set(lists);
    _mm512_reduce_add_epi64(out.total) as u64
}

thread_local! {
    /// [`mandel_span`]'s lists, kept between calls.
    static LISTS: std::cell::Cell<Lists> = const { std::cell::Cell::new(Lists::new()) };
}

/// A row's groups, by the phase they go through.
#[derive(Default)]
struct Lists {
    /// Groups that start in the block phase (the first `lens.0`).
    block: Vec<u32>,
    /// Groups that go straight to the exact phase, from `z = 0` (the first
    /// `lens.1`).
    fresh: Vec<u32>,
    /// How many of `block` and `fresh` are this row's: the vectors keep
    /// their length, so a row writes no zeros into them.
    lens: (usize, usize),
    /// Groups the block phase hands on to the exact phase, with their state.
    set_aside: Vec<SetAside>,
}

impl Lists {
    const fn new() -> Lists {
        Lists { block: Vec::new(), fresh: Vec::new(), lens: (0, 0), set_aside: Vec::new() }
    }

    /// Sorts the span's groups into `block` and `fresh`, in order (their
    /// lengths in `lens`), and empties `set_aside`. A group starts in the block phase if its `c` is
    /// within the bound and `max_iter` allows a round, unless `n` shows all
    /// eight escaping within a round: `n` still holds the row above's
    /// counts, usually, and where those all escaped early this row's likely
    /// do too, so a round in block mode would only be replayed. (A guess
    /// about speed only: either phase gives the same results.)
    ///
    /// Sixteen groups at a time, without a branch on any group (which list
    /// a group goes to follows the picture, not a pattern a branch predictor
    /// could learn): their masks give the two lists' entries, which are
    /// compressed into place.
    #[target_feature(enable = "avx512f")]
    fn sort_groups(&mut self, k: &Span, n: &[u32], row_near: bool) {
        let groups = k.groups;
        self.set_aside.clear();
        // Each group is set aside at most once, and `Blocks::retire` writes
        // a record before it knows whether to keep it.
        self.set_aside.reserve(groups + 1);
        // Room for a whole vector of 16 entries past the last group.
        if self.block.len() < groups + 16 {
            self.block.resize(groups + 16, 0);
            self.fresh.resize(groups + 16, 0);
        }
        let rounds_fit = if k.max_iter >= k.round { u16::MAX } else { 0 };
        let round = _mm512_set1_epi32(k.round as i32);
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let (mut to_block, mut to_fresh) = (0, 0);
        for g0 in (0..groups).step_by(16) {
            let here = (groups - g0).min(16);
            let valid = (u32::MAX >> (32 - here)) as u16;
            let near = if row_near {
                u16::MAX
            } else {
                // SAFETY: this function requires AVX-512F, and `g0 + j` is
                // a group of the span.
                (0..here).fold(0, |m, j| m | u16::from(unsafe { k.near(g0 + j) }) << j)
            };
            // Two groups' counts to a vector; a group is early if all eight
            // of its bits are set.
            let mut early = 0u16;
            for pair in (0..here).step_by(2) {
                let g = g0 + pair;
                let m = if pair + 1 < here {
                    let sixteen = &n[8 * g..8 * g + 16]; // bounds-checked
                                                         // SAFETY: `sixteen` is 16 `u32`s.
                    _mm512_cmplt_epu32_mask(unsafe { _mm512_loadu_si512(sixteen.as_ptr().cast()) }, round)
                } else {
                    let eight = &n[8 * g..8 * g + 8]; // bounds-checked
                                                      // SAFETY: `eight` is eight `u32`s, the low half of the
                                                      // vector (the high half is undefined and masked off).
                    let v = _mm512_castsi256_si512(unsafe { _mm256_loadu_si256(eight.as_ptr().cast()) });
                    _mm512_cmplt_epu32_mask(v, round) & 0xff
                };
                early |= (u16::from(m & 0xff == 0xff) | u16::from(m >> 8 == 0xff) << 1) << pair;
            }
            let block = near & !early & rounds_fit & valid;
            let fresh = !block & valid;
            let index = _mm512_add_epi32(_mm512_set1_epi32(g0 as i32), lanes);
            let (b, f) = (&mut self.block[to_block..to_block + 16], &mut self.fresh[to_fresh..to_fresh + 16]);
            // SAFETY: `b` and `f` are 16 `u32`s each (bounds-checked above).
            unsafe {
                _mm512_storeu_si512(b.as_mut_ptr().cast(), _mm512_maskz_compress_epi32(block, index));
                _mm512_storeu_si512(f.as_mut_ptr().cast(), _mm512_maskz_compress_epi32(fresh, index));
            }
            to_block += block.count_ones() as usize;
            to_fresh += fresh.count_ones() as usize;
        }
        self.lens = (to_block, to_fresh);
    }
}

/// What both phases share.
struct Span<'a> {
    cr: &'a [f64],
    groups: usize,
    ci: __m512d,
    r2: __m512d,
    block_c2: __m512d,
    max_iter: u32,
    /// Iterations per round of the block phase ([`round_len`]).
    round: u32,
}

impl Span<'_> {
    /// Whether all of group `group`'s points have `|c|^2` within `block_c2`.
    #[inline(always)]
    unsafe fn near(&self, group: usize) -> bool {
        self.within_bound(self.cr(group))
    }

    /// Whether all eight points `cr + ci i` have `|c|^2` within `block_c2`.
    #[inline(always)]
    unsafe fn within_bound(&self, cr: __m512d) -> bool {
        _mm512_cmp_pd_mask::<_CMP_LE_OQ>(norm(cr, self.ci), self.block_c2) == 0xff
    }

    /// The real parts of group `group`'s eight points.
    #[inline(always)]
    unsafe fn cr(&self, group: usize) -> __m512d {
        let eight = &self.cr[8 * group..8 * group + 8]; // bounds-checked
        _mm512_loadu_pd(eight.as_ptr())
    }
}

/// Where results go.
struct Out<'a> {
    n: &'a mut [u32],
    m2: &'a mut [f64],
    /// The final counts added up, per lane.
    total: __m512i,
}

impl Out<'_> {
    /// Stores group `group`'s counts and final `|z|^2`, and adds the counts
    /// to the total if `last` (all of them or none: a group the block phase
    /// hands on is stored again when it is done).
    #[inline(always)]
    unsafe fn store(&mut self, group: usize, count: __m512d, zr: __m512d, zi: __m512d, last: __mmask8) {
        let at = 8 * group;
        _mm256_storeu_si256(self.n.as_mut_ptr().add(at).cast(), _mm512_cvttpd_epu32(count));
        _mm512_storeu_pd(self.m2.as_mut_ptr().add(at), norm(zr, zi));
        self.total = _mm512_mask_add_epi64(self.total, last, self.total, _mm512_cvttpd_epu64(count));
    }
}

/// `|z|^2` as [`crate::mandelbrot::norm`] computes it: `fma(a, a, b*b)`.
#[inline(always)]
unsafe fn norm(a: __m512d, b: __m512d) -> __m512d {
    _mm512_fmadd_pd(a, a, _mm512_mul_pd(b, b))
}

/// `z <- z^2 + c` with the operations of [`crate::mandelbrot::step`], on
/// the lanes `live` (the others keep their `z`).
#[inline(always)]
unsafe fn step(zr: &mut __m512d, zi: &mut __m512d, cr: __m512d, ci: __m512d, live: __mmask8) {
    let (a, b) = (*zr, *zi);
    let t = _mm512_fnmadd_pd(b, b, cr); // cr - b*b, one rounding
    *zr = _mm512_mask_fmadd_pd(a, live, a, t);
    *zi = _mm512_mask_fmadd_pd(b, live, _mm512_add_pd(a, a), ci);
}

/// A group's state when it leaves the block phase: every lane has run
/// `iters` iterations and none has escaped.
struct SetAside {
    group: usize,
    zr: __m512d,
    zi: __m512d,
    iters: u32,
}

/// Vectors in flight in the block phase: each iteration is a chain of two
/// dependent FMAs (eight cycles) and four operations, so keeping two 512-bit
/// ports busy needs at least four; more absorb the rounds' tests.
const VECTORS: usize = 6;

/// The block phase of [`mandel_span`]: [`VECTORS`] vectors in lock-step
/// rounds, all of whose lanes are running. A vector whose round saw an
/// escape is set aside from before the round; one that reaches `max_iter`
/// is stored; either way it takes the next group ([`Blocks::retire`]).
///
/// The vectors' state is in arrays indexed by constants once the loops are
/// unrolled, so it stays in registers; the rare work is out of line.
#[inline(always)]
unsafe fn blocks(k: &Span, out: &mut Out, groups: &[u32], set_aside: &mut Vec<SetAside>) {
    let zero = _mm512_setzero_pd();
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
        // Idle vectors iterate too (from z = c = 0, harmlessly): no test per
        // vector and iteration.
        round_steps(k.round, &mut zr, &mut zi, &cr, k.ci);
        // Whether each vector goes on to another round: no lane escaped
        // (ordered: a NaN, from overflow, fails, i.e. counts as escaped), and
        // at least a round is left after the next. Tested for all vectors
        // with one branch, so the common case has no other.
        macro_rules! check {
            ($($v:literal)*) => {$(
                let held = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(norm(zr[$v], zi[$v]), k.r2) == 0xff;
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
        check!(0 1 2 3 4 5);
    }
}

/// `round` steps of every vector, five at a time unrolled in full: in a
/// loop of single steps the compiler spends a register copy per vector and
/// step, since an FMA overwrites one of its operands.
#[inline(always)]
unsafe fn round_steps(
    round: u32,
    zr: &mut [__m512d; VECTORS],
    zi: &mut [__m512d; VECTORS],
    cr: &[__m512d; VECTORS],
    ci: __m512d,
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

/// `R` unmasked steps of every vector.
#[inline(always)]
unsafe fn steps<const R: u32>(
    zr: &mut [__m512d; VECTORS],
    zi: &mut [__m512d; VECTORS],
    cr: &[__m512d; VECTORS],
    ci: __m512d,
) {
    for _ in 0..R {
        for v in 0..VECTORS {
            step(&mut zr[v], &mut zi[v], cr[v], ci, 0xff);
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
    unsafe fn take(&mut self, k: &Span) -> (usize, __m512d) {
        match self.groups.get(self.next) {
            Some(&g) => {
                self.next += 1;
                (g as usize, k.cr(g as usize))
            }
            None => (IDLE, _mm512_setzero_pd()),
        }
    }

    /// Ends a vector's group after a round: `held` if no lane escaped in it,
    /// `(group, zr, zi, iters)` its state before counting the round, `z0` the
    /// state before it. Stores the group if it reached `max_iter`, else sets
    /// it aside (from before the round if a lane escaped, from after it if
    /// fewer iterations are left than a round), and takes the next group.
    ///
    /// Branch-free, since which it is follows the picture, which no branch
    /// predictor learns: the results are stored either way (the exact phase
    /// overwrites them if the group goes on there), and the record is
    /// written either way, and kept only if the group goes on.
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    fn retire(
        &mut self,
        k: &Span,
        held: bool,
        (group, zr, zi, iters): (usize, __m512d, __m512d, u32),
        (zr0, zi0): (__m512d, __m512d),
    ) -> (usize, __m512d) {
        let done = held && iters + k.round == k.max_iter;
        // SAFETY: `group` came from `take`, so its eight results fit.
        let last = if done { 0xff } else { 0 };
        unsafe { self.out.store(group, _mm512_set1_pd(f64::from(k.max_iter)), zr, zi, last) };
        let after = if held { 0xff } else { 0 };
        let record = SetAside {
            group,
            zr: _mm512_mask_blend_pd(after, zr0, zr),
            zi: _mm512_mask_blend_pd(after, zi0, zi),
            iters: iters + k.round * u32::from(held),
        };
        // `Lists::sort_groups` reserved room for every group.
        let len = self.set_aside.len();
        self.set_aside.spare_capacity_mut()[0].write(record);
        // SAFETY: the record at `len` was just written.
        unsafe { self.set_aside.set_len(len + usize::from(!done)) };
        // SAFETY: this function requires AVX-512F.
        unsafe { self.take(k) }
    }
}

/// A vector in the exact phase.
#[derive(Clone, Copy)]
struct Exact {
    /// Its group of eight pixels; `usize::MAX` when idle.
    group: usize,
    cr: __m512d,
    zr: __m512d,
    zi: __m512d,
    /// Iterations per lane, counted in `f64` (exact below 2^53): a masked
    /// floating-point add is one instruction, a masked integer one two.
    count: __m512d,
    /// Lanes that have not escaped (none when idle).
    running: __mmask8,
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
        let zero = _mm512_setzero_pd();
        let (group, zr, zi, iters) = if let Some(&g) = q.fresh.get(q.next) {
            (g as usize, zero, zero, 0)
        } else if let Some(s) = q.set_aside.get(q.next - q.fresh.len()) {
            (s.group, s.zr, s.zi, s.iters)
        } else {
            return Exact { group: IDLE, cr: zero, zr: zero, zi: zero, count: zero, running: 0, iters: 0 };
        };
        q.next += 1;
        Exact { group, cr: k.cr(group), zr, zi, count: _mm512_set1_pd(f64::from(iters)), running: 0xff, iters }
    }

    /// One iteration, the reference's way: test, then step the lanes that
    /// passed. A lane that failed, or an idle vector, keeps its state.
    #[inline(always)]
    unsafe fn once(&mut self, k: &Span) {
        self.running = _mm512_mask_cmp_pd_mask::<_CMP_LE_OQ>(self.running, norm(self.zr, self.zi), k.r2);
        self.count = _mm512_mask_add_pd(self.count, self.running, self.count, _mm512_set1_pd(1.0));
        step(&mut self.zr, &mut self.zi, self.cr, k.ci, self.running);
        self.iters += 1;
    }

    /// Two iterations (one if only one is left); then stores the group and
    /// takes the next when it is done. Checking every other iteration halves
    /// the bookkeeping; a vector whose lanes all failed after the first does
    /// nothing in the second.
    #[inline(always)]
    unsafe fn iterate(&mut self, k: &Span, q: &mut Queue, out: &mut Out) {
        self.once(k);
        if self.iters < k.max_iter {
            self.once(k);
        }
        if (self.running == 0 || self.iters == k.max_iter) && self.group != IDLE {
            out.store(self.group, self.count, self.zr, self.zi, 0xff);
            *self = Exact::take(k, q);
        }
    }
}

/// The exact phase of [`mandel_span`]: six vectors iterated in turn, each
/// taking the next group (`fresh`, then `set_aside`) as soon as its own is
/// done, so no vector waits for another's slowest pixel.
#[inline(always)]
unsafe fn exact(k: &Span, out: &mut Out, fresh: &[u32], set_aside: &[SetAside]) {
    let mut q = Queue { fresh, set_aside, next: 0 };
    let mut e0 = Exact::take(k, &mut q);
    let mut e1 = Exact::take(k, &mut q);
    let mut e2 = Exact::take(k, &mut q);
    let mut e3 = Exact::take(k, &mut q);
    let mut e4 = Exact::take(k, &mut q);
    let mut e5 = Exact::take(k, &mut q);
    while [&e0, &e1, &e2, &e3, &e4, &e5].iter().any(|e| e.group != IDLE) {
        e0.iterate(k, &mut q, out);
        e1.iterate(k, &mut q, out);
        e2.iterate(k, &mut q, out);
        e3.iterate(k, &mut q, out);
        e4.iterate(k, &mut q, out);
        e5.iterate(k, &mut q, out);
    }
}

/// `x = m 2^e` with `m` in `[1, 2)` for positive normal finite lanes `x`,
/// as [`crate::mandelbrot::colour`]'s generic `split` computes it (both
/// exact, so the same bits): `m` by `vgetmantpd` with that interval, `e` by
/// `vgetexppd`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[inline(always)]
pub(super) unsafe fn split(x: __m512d) -> (__m512d, __m512d) {
    (_mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(x), _mm512_getexp_pd(x))
}
