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
                assert_eq!(bits(&evolve_on(path, &p)), want, "{cols}x{rows} {init:?} on {}", path.name());
            }
        }
    }
}

/// Steps a block of the grid `steps` times, filling its ghosts each step
/// from the whole grid stepped alongside (what the halo exchange delivers).
fn block_stepped(p: &Params, rows: Range<usize>, cols: Range<usize>) -> Vec<f64> {
    let (whole_b, b) = (Block { h: p.rows, w: p.cols }, Block { h: rows.len(), w: cols.len() });
    let mut whole = Block::initial(p, 0..p.rows, 0..p.cols);
    let mut whole_next = whole.clone();
    let mut cur = Block::initial(p, rows.clone(), cols.clone());
    let mut next = cur.clone();
    for _ in 0..p.steps {
        // Ghosts: the whole grid's cells (or zero boundary) around the block.
        for gi in 0..b.h + 2 {
            for gj in 0..b.w + 2 {
                if (1..=b.h).contains(&gi) && (1..=b.w).contains(&gj) {
                    continue;
                }
                cur[gi * (b.w + 2) + gj] = whole[(rows.start + gi) * (p.cols + 2) + cols.start + gj];
            }
        }
        step_interior(b, &cur, &mut next, p.r);
        step_border(b, &cur, &mut next, p.r);
        step_block(whole_b, &whole, &mut whole_next, p.r);
        std::mem::swap(&mut cur, &mut next);
        std::mem::swap(&mut whole, &mut whole_next);
    }
    b.cells(&cur)
}

#[test]
fn a_block_with_correct_ghosts_equals_those_cells_of_the_whole() {
    let p = params(23, 17, 9, Init::Hotspot);
    let whole = reference(&p, 0..p.rows, 0..p.cols);
    for (rows, cols) in [(0..17, 0..23), (3..9, 5..20), (0..1, 22..23), (16..17, 0..4), (8..10, 1..3)] {
        let got = block_stepped(&p, rows.clone(), cols.clone());
        let want: Vec<f64> = rows.clone().flat_map(|i| whole[i * p.cols..][cols.clone()].to_vec()).collect();
        assert_eq!(bits(&got), bits(&want), "rows {rows:?} cols {cols:?}");
    }
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
        let (err, bound) = (max_error(&p, &field), error_bound(&p));
        assert!(err <= bound, "{cols}x{rows}, {steps} steps: error {err:e} > bound {bound:e}");
        // The check can fail: a field off by a few bounds in one cell, or
        // run with a slightly different r, is caught.
        let mut off = field.clone();
        off[(rows / 2) * cols + cols / 3] += 3.0 * bound;
        assert!(max_error(&p, &off) > bound);
        let other = evolve(&Params { r: p.r * (1.0 + 1e-9), ..p });
        assert!(max_error(&p, &other) > bound, "{cols}x{rows}: a changed r goes unnoticed");
    }
}

#[test]
fn each_mode_decays_by_its_factor_in_one_step() {
    // One step from the modes field equals the sum of each mode times its factor.
    let p = params(12, 9, 1, Init::Modes);
    let field = reference(&p, 0..9, 0..12);
    assert!(max_error(&p, &field) <= error_bound(&p));
    assert!(decay(&p, 1, 1) < 1.0 && decay(&p, 1, 1) > decay(&p, 5, 2));
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
