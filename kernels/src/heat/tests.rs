use super::*;
use crate::simd::supported;

fn params(cols: usize, rows: usize, steps: u64, init: Init) -> Params {
    Params { cols, rows, steps, r: 0.2, init }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn validation_names_the_field_and_gives_the_reason() {
    let ok = params(5, 4, 3, Init::Modes);
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(Params { cols: 0, ..ok }.validate().unwrap_err().param, Some("cols"));
    assert_eq!(Params { rows: 0, ..ok }.validate().unwrap_err().param, Some("rows"));
    for r in [0.0, -0.1, 0.2500001, f64::NAN, f64::INFINITY] {
        let e = Params { r, ..ok }.validate().unwrap_err();
        assert_eq!(e.param, Some("r"), "{r}");
    }
    assert!(Params { r: 0.3, ..ok }.validate().unwrap_err().problem.contains("unstable"));
    assert_eq!(Params { r: R_MAX, ..ok }.validate(), Ok(()));
}

#[test]
fn every_simd_path_gives_the_reference_bits() {
    // Widths around the vector lengths (2, 4, 8) exercise the scalar tails.
    for (cols, rows) in [(1, 1), (2, 3), (7, 5), (8, 9), (17, 6), (33, 12)] {
        for init in [Init::Modes, Init::Hotspot] {
            let p = params(cols, rows, 13, init);
            let want = bits(&reference(&p, 0..rows, 0..cols));
            for path in supported() {
                for stores in [Stores::Cached, Stores::Streamed] {
                    let got = bits(&evolve_on(path, stores, &p));
                    assert_eq!(got, want, "{cols}x{rows} {init:?} on {} {stores:?}", path.name());
                }
            }
        }
    }
}

#[test]
fn streamed_stores_give_the_same_bits_at_every_alignment() {
    // Every width from 1 to 40 puts the rows' starts at every offset from
    // a vector boundary (the buffer rows are `w + 2` cells), so the cells
    // before the first boundary, the vectors and the tail all occur with
    // rows of either parity in a pair; an odd row count leaves a middle row.
    for cols in 1..=40 {
        let p = params(cols, 7, 5, Init::Hotspot);
        let want = bits(&evolve_on(crate::simd::Path::Scalar, Stores::Cached, &p));
        for path in supported() {
            assert_eq!(bits(&evolve_on(path, Stores::Streamed, &p)), want, "{cols} columns on {}", path.name());
        }
    }
}

#[test]
fn cache_sizes_parse_as_sysfs_writes_them() {
    assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
    assert_eq!(parse_cache_size("1M"), Some(1 << 20));
    assert_eq!(parse_cache_size("512"), Some(512));
    assert_eq!(parse_cache_size("1G"), Some(1 << 30));
    assert_eq!(parse_cache_size("12Q"), None);
    assert_eq!(parse_cache_size(""), None);
    assert!((1 << 10..=32 << 20).contains(&stream_threshold_bytes()));
    // A 4000 x 4000 field (two 128 MB buffers) exceeds any cache of today;
    // a 10 x 10 one fits in any.
    assert_eq!(Stores::for_len(4002 * 4002), Stores::Streamed);
    assert_eq!(Stores::for_len(12 * 12), Stores::Cached);
}

/// Steps a block with `k` ghost layers `p.steps` times as the runtime does:
/// every `k` steps (fewer at the end: `m`) its ghosts are filled from the
/// whole grid stepped alongside, corners included (what the halo exchange
/// delivers; outside the grid they stay 0), then `m` sub-steps each update
/// what [`grown`] allows, the first as interior then the rest. Ghost layers
/// deeper than `m`, and every ghost of `next` at first, hold NaN, so a
/// read beyond the schedule shows in the result.
fn block_stepped(p: &Params, rows: Range<usize>, cols: Range<usize>, k: usize) -> Vec<f64> {
    let whole_b = Block { h: p.rows, w: p.cols, g: 1 };
    let b = Block { h: rows.len(), w: cols.len(), g: k };
    let sides = [rows.start > 0, rows.end < p.rows, cols.start > 0, cols.end < p.cols];
    let mut whole = whole_b.initial(p, 0..p.rows, 0..p.cols);
    let mut whole_next = whole.clone();
    let mut cur = b.initial(p, rows.clone(), cols.clone());
    // A ghost at buffer (gi, gj): its grid cell (if inside the grid) and
    // how many layers out it lies (0 for an owned cell).
    let place = |gi: usize, gj: usize| {
        let (i, j) = ((rows.start + gi).checked_sub(k), (cols.start + gj).checked_sub(k));
        let out = |x: usize, lo: usize, n: usize| lo.saturating_sub(x).max((x + 1).saturating_sub(lo + n));
        let depth = out(gi, k, b.h).max(out(gj, k, b.w));
        let inside = match (i, j) {
            (Some(i), Some(j)) if i < p.rows && j < p.cols => Some((i, j)),
            _ => None,
        };
        (inside, depth)
    };
    let mut next = cur.clone();
    for gi in 0..b.h + 2 * k {
        for gj in 0..b.stride() {
            if let (Some(_), 1..) = place(gi, gj) {
                next[gi * b.stride() + gj] = f64::NAN;
            }
        }
    }
    let mut done = 0;
    while done < p.steps {
        let m = (k as u64).min(p.steps - done) as usize;
        for gi in 0..b.h + 2 * k {
            for gj in 0..b.stride() {
                if let (Some((i, j)), depth @ 1..) = place(gi, gj) {
                    let v = if depth <= m { whole[(i + 1) * (p.cols + 2) + j + 1] } else { f64::NAN };
                    cur[gi * b.stride() + gj] = v;
                }
            }
        }
        for s in 0..m {
            step_interior(b, &cur, &mut next, p.r);
            step_around(b, grown(sides, m, s), &cur, &mut next, p.r);
            step_block(whole_b, &whole, &mut whole_next, p.r);
            std::mem::swap(&mut cur, &mut next);
            std::mem::swap(&mut whole, &mut whole_next);
        }
        done += m as u64;
    }
    b.cells(&cur)
}

#[test]
fn a_block_with_correct_ghosts_equals_those_cells_of_the_whole() {
    // 11 steps: a multiple of no depth above 1, so the last exchange of
    // each covers fewer sub-steps.
    let p = params(23, 17, 11, Init::Hotspot);
    let whole = reference(&p, 0..p.rows, 0..p.cols);
    // The whole grid, interior blocks, edge and corner blocks, thin ones.
    let windows = [
        (0..17, 0..23),
        (3..9, 5..20),
        (5..12, 6..13),
        (0..1, 22..23),
        (16..17, 0..4),
        (8..10, 1..3),
        (0..6, 0..7),
        (12..17, 15..23),
        (4..13, 0..23),
    ];
    for k in 1..=4 {
        for (rows, cols) in windows.clone() {
            let got = block_stepped(&p, rows.clone(), cols.clone(), k);
            let want: Vec<f64> = rows.clone().flat_map(|i| whole[i * p.cols..][cols.clone()].to_vec()).collect();
            assert_eq!(bits(&got), bits(&want), "depth {k}, rows {rows:?} cols {cols:?}");
        }
    }
}

#[test]
fn a_sub_step_reaches_one_layer_less_each_time_and_never_past_the_grid_edge() {
    let sides = [true, false, true, true];
    assert_eq!(grown(sides, 4, 0), [3, 0, 3, 3]);
    assert_eq!(grown(sides, 4, 3), [0; 4]);
    assert_eq!(grown(sides, 2, 0), [1, 0, 1, 1]);
    assert_eq!(grown([false; 4], 3, 0), [0; 4]);
}

#[test]
fn m_sub_steps_need_exactly_an_m_deep_halo() {
    // A block with 3 ghost layers, 2 sub-steps: a NaN 3 layers out never
    // reaches a cell; one 2 layers out (beside the middle of the north
    // edge) reaches the first row, so the schedule reads every layer it
    // claims to need and no more.
    let p = params(23, 17, 2, Init::Modes);
    let b = Block { h: 6, w: 7, g: 3 };
    let run = |poison: usize| {
        let mut cur = b.initial(&p, 4..10, 5..12);
        for (i, v) in cur.iter_mut().enumerate() {
            let (gi, gj) = (i / b.stride(), i % b.stride());
            if (gi < b.g && gj >= b.g && gj < b.g + b.w) || (gj < b.g && gi >= b.g && gi < b.g + b.h) {
                *v = 1.0; // the ghosts any halo would bring, here all 1
            }
        }
        cur[(b.g - poison) * b.stride() + b.g + 3] = f64::NAN;
        let mut next = cur.clone();
        for s in 0..2 {
            step_interior(b, &cur, &mut next, p.r);
            step_around(b, grown([true; 4], 2, s), &cur, &mut next, p.r);
            std::mem::swap(&mut cur, &mut next);
        }
        b.cells(&cur)
    };
    assert!(run(3).iter().all(|v| v.is_finite()));
    let poisoned = run(2);
    assert!(poisoned[3].is_nan() && poisoned[b.w + 3].is_finite());
}

#[test]
fn a_window_of_the_reference_is_exact_far_enough_from_its_edges() {
    let p = params(40, 30, 6, Init::Modes);
    let whole = reference(&p, 0..30, 0..40);
    let window = reference(&p, 5..25, 8..30);
    // Cell (15, 19) is 10 rows and 11 columns from the window's edges: exact.
    assert_eq!(window[(15 - 5) * 22 + (19 - 8)].to_bits(), whole[15 * 40 + 19].to_bits());
    // Next to an inner window edge the zero outside shows.
    assert_ne!(window[0].to_bits(), whole[5 * 40 + 8].to_bits());
}

#[test]
fn the_modes_field_keeps_within_the_bound_of_the_closed_form() {
    for (cols, rows, steps) in [(31, 23, 200), (64, 48, 500), (5, 7, 50)] {
        let p = params(cols, rows, steps, Init::Modes);
        let field = evolve(&p);
        let whole = |f: &[f64]| max_error(&p, 0..rows, 0..cols, f);
        let (err, bound) = (whole(&field), error_bound(&p));
        assert!(err <= bound, "{cols}x{rows}, {steps} steps: error {err:e} > bound {bound:e}");
        // The check can fail: a field off by a few bounds in one cell, or
        // run with a slightly different r, is caught.
        let mut off = field.clone();
        off[(rows / 2) * cols + cols / 3] += 3.0 * bound;
        assert!(whole(&off) > bound);
        let other = evolve(&Params { r: p.r * (1.0 + 1e-9), ..p });
        assert!(whole(&other) > bound, "{cols}x{rows}: a changed r goes unnoticed");
    }
}

#[test]
fn each_mode_decays_by_its_factor_in_one_step() {
    // One step from the modes field equals the sum of each mode times its factor.
    let p = params(12, 9, 1, Init::Modes);
    let field = reference(&p, 0..9, 0..12);
    assert!(max_error(&p, 0..9, 0..12, &field) <= error_bound(&p));
    assert!(decay(&p, 1, 1) < 1.0 && decay(&p, 1, 1) > decay(&p, 5, 2));
    // A NaN anywhere is no pass: its error is infinite, not skipped.
    let mut bad = field.clone();
    bad[50] = f64::NAN;
    assert_eq!(max_error(&p, 0..9, 0..12, &bad), f64::INFINITY);
}

#[test]
fn cubehelix_runs_black_to_white_with_rising_brightness() {
    assert_eq!(cubehelix(0.0), [0, 0, 0]);
    assert_eq!(cubehelix(1.0), [255, 255, 255]);
    // Green's luma weights; the 8-bit rounding and clamping may dip it by
    // less than one level, never more.
    let luma = |c: [u8; 3]| 0.30 * f64::from(c[0]) + 0.59 * f64::from(c[1]) + 0.11 * f64::from(c[2]);
    let mut last = 0.0;
    for k in 0..=1024 {
        let l = luma(cubehelix(f64::from(k) / 1024.0));
        assert!(l >= last - 1.0, "brightness falls at {k}: {l} after {last}");
        last = last.max(l);
    }
    assert_eq!(colour(&[0.0, 2.0, 1.0], 0.0, 2.0), [[0, 0, 0], [255, 255, 255], cubehelix(0.5)].concat());
}

/// The window `rows x cols` of a row-major field `width` wide.
fn window(field: &[f64], width: usize, rows: Range<usize>, cols: Range<usize>) -> Vec<f64> {
    rows.flat_map(|i| field[i * width..][cols.clone()].to_vec()).collect()
}

#[test]
fn a_windows_error_is_the_closed_form_cell_by_cell_and_tilings_agree() {
    let p = params(37, 29, 40, Init::Modes);
    let field = evolve(&p);
    let by_cell = |rows: Range<usize>, cols: Range<usize>| {
        rows.flat_map(|i| cols.clone().map(move |j| (i, j)))
            .map(|(i, j)| (field[i * 37 + j] - exact(&p, i, j)).abs())
            .fold(0.0, f64::max)
    };
    for (rows, cols) in [(0..29, 0..37), (3..17, 5..6), (28..29, 0..37), (10..20, 30..37)] {
        let got = max_error(&p, rows.clone(), cols.clone(), &window(&field, 37, rows.clone(), cols.clone()));
        assert_eq!(got.to_bits(), by_cell(rows, cols).to_bits());
    }
    // The largest over a 3 x 2 tiling is the whole field's.
    let tiles = [(0..10, 0..20), (0..10, 20..37), (10..21, 0..20), (10..21, 20..37), (21..29, 0..20), (21..29, 20..37)];
    let most =
        tiles.iter().map(|(r, c)| max_error(&p, r.clone(), c.clone(), &window(&field, 37, r.clone(), c.clone())));
    assert_eq!(most.fold(0.0, f64::max).to_bits(), max_error(&p, 0..29, 0..37, &field).to_bits());
}

#[test]
fn the_digest_of_any_tiling_is_the_fields_and_notices_one_bit_or_a_swap() {
    let p = params(23, 17, 9, Init::Hotspot);
    let field = evolve(&p);
    let whole = digest_hex([digest_share(&p, 0..17, 0..23, &field)]);
    let tilings: [&[(Range<usize>, Range<usize>)]; 3] = [
        &[(0..17, 0..23)],
        &[(0..5, 0..23), (5..17, 0..23)],
        &[(0..8, 0..11), (0..8, 11..23), (8..17, 0..4), (8..17, 4..23)],
    ];
    for tiles in tilings {
        let shares = tiles
            .iter()
            .map(|(r, c)| digest_share(&p, r.clone(), c.clone(), &window(&field, 23, r.clone(), c.clone())));
        assert_eq!(digest_hex(shares), whole);
    }
    let mut flipped = field.clone();
    flipped[100] = f64::from_bits(flipped[100].to_bits() ^ 1);
    assert_ne!(digest_hex([digest_share(&p, 0..17, 0..23, &flipped)]), whole);
    let mut swapped = field.clone();
    let (a, b) = (8 * 23 + 11, 8 * 23 + 12);
    assert_ne!(swapped[a], swapped[b], "the test needs two different cells");
    swapped.swap(a, b);
    assert_ne!(digest_hex([digest_share(&p, 0..17, 0..23, &swapped)]), whole);
}

#[test]
fn a_blocks_initial_cells_are_the_initial_field_bit_for_bit() {
    for init in [Init::Modes, Init::Hotspot] {
        let p = params(41, 33, 1, init);
        let b = Block { h: 12, w: 17, g: 2 };
        let cells = b.cells(&b.initial(&p, 20..32, 9..26));
        let want: Vec<f64> =
            (20..32).flat_map(|i| (9..26).map(move |j| (i, j))).map(|(i, j)| initial(&p, i, j)).collect();
        assert_eq!(bits(&cells), bits(&want), "{init:?}");
    }
}

#[test]
fn the_colour_table_is_within_one_level_of_the_formula_and_exact_at_its_steps() {
    let n = 100_000;
    let field: Vec<f64> = (0..=n).map(|k| -2.0 + 4.0 * k as f64 / n as f64).collect();
    let rgb = colour(&field, -2.0, 2.0);
    let mut differ = 0;
    for (px, &v) in rgb.chunks(3).zip(&field) {
        let want = cubehelix((v + 2.0) / 4.0);
        for (got, want) in px.iter().zip(want) {
            assert!(got.abs_diff(want) <= 1, "{v}: {px:?} against {want:?}");
            differ += usize::from(*got != want);
        }
    }
    assert!(differ < 3 * n / 20, "{differ} channels of {} differ by a level", 3 * n);
    // At a table step the colour is the formula's; outside the range it clamps; NaN is black.
    let at = |t: f64| colour(&[t], 0.0, 1.0);
    assert_eq!(at(0.25), cubehelix(0.25).to_vec());
    assert_eq!(at(-3.0), [0, 0, 0]);
    assert_eq!(at(7.0), [255, 255, 255]);
    assert_eq!(at(f64::NAN), [0, 0, 0]);
    assert_eq!(colour(&[5.0, 5.0], 5.0, 5.0), [0; 6], "a flat field is the scheme's start");
}
