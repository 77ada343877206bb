//! `pikernels heat` under mpirun: the same field (its digest and the PNG's
//! bytes) for every process count, grid, thread count, --comm and
//! --halo-depth; the refusals; the PNG decodes to the field's colours.

use crate::util;

use serde_json::Value;
use util::{json_run, mpirun, tempdir, Run};

/// The field of one run, as the report and the file show it.
#[derive(Debug, PartialEq)]
struct Field {
    digest: Value,
    min: Value,
    max: Value,
    png: Vec<u8>,
}

/// Runs heat on `np` ranks with `extra` flags on a 61x47 grid (odd sizes,
/// so blocks are uneven) for 40 steps; returns the field and the report.
fn field(np: usize, extra: &[&str]) -> (Field, Value) {
    let dir = tempdir();
    let out = dir.path().join("heat.png");
    let mut args = vec!["heat", "--size", "61x47", "--steps", "40", "--out", out.to_str().unwrap()];
    args.extend(extra);
    let r = json_run(np, &args);
    let png = std::fs::read(&out).unwrap();
    let res = &r["result"];
    (Field { digest: res["field_digest"].clone(), min: res["min"].clone(), max: res["max"].clone(), png }, r)
}

#[test]
fn the_field_is_identical_for_any_decomposition_thread_count_and_comm() {
    for init in ["modes", "hotspot"] {
        let (want, r) = field(1, &["--init", init, "--comm", "p2p"]);
        assert!(want.png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(r["result"]["grid"], "1x1");
        let runs: &[(usize, &[&str])] = &[
            (1, &["--comm", "collective", "--threads", "2"]),
            (2, &["--comm", "p2p"]),
            (2, &["--comm", "collective", "--grid", "1x2"]),
            (3, &["--comm", "p2p", "--threads", "2"]),
            (3, &["--comm", "collective", "--grid", "1x3"]),
            (4, &["--comm", "p2p"]),
            (4, &["--comm", "collective", "--grid", "4x1"]),
            (6, &["--comm", "collective"]),
            (6, &["--comm", "p2p", "--grid", "2x3"]),
        ];
        for (np, extra) in runs {
            let mut args = vec!["--init", init];
            args.extend(*extra);
            let (got, r) = field(*np, &args);
            assert!(
                got == want,
                "{init}: np={np} {extra:?} gives another field ({:?} vs {:?})",
                got.digest,
                want.digest
            );
            if let Some(i) = extra.iter().position(|a| *a == "--grid") {
                assert_eq!(r["result"]["grid"], extra[i + 1]);
            }
        }
    }
}

#[test]
fn a_png_of_many_blocks_is_the_same_bytes_whichever_ranks_compressed_its_bands() {
    // 600 columns: 145 rows to a PNG block, so 5 blocks of 700 rows, cut
    // into bands that do not follow the process grid's rows (1 to 6 ranks,
    // 2-D grids, both comms; with 6 ranks one band is empty).
    let dir = tempdir();
    let out = dir.path().join("heat.png");
    let png = |np: usize, extra: &[&str]| {
        let mut args = vec!["heat", "--size", "600x700", "--steps", "3", "--init", "hotspot"];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra);
        let r = json_run(np, &args);
        (std::fs::read(&out).unwrap(), r["result"]["field_digest"].clone())
    };
    let want = png(1, &[]);
    let img = image::load_from_memory_with_format(&want.0, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (600, 700));
    for (np, extra) in [
        (2, &["--comm", "p2p"][..]),
        (3, &["--comm", "collective", "--grid", "1x3"]),
        (4, &["--comm", "p2p", "--grid", "2x2"]),
        (6, &["--comm", "collective", "--grid", "3x2"]),
        (6, &["--comm", "p2p", "--grid", "1x6"]),
    ] {
        assert!(png(np, extra) == want, "np={np} {extra:?}: another PNG or digest");
    }
}

#[test]
fn the_field_is_identical_for_any_halo_depth() {
    // 7 steps: a multiple of neither 2 nor 3, so the last exchange covers
    // fewer steps than the depth. A hot disc, so the field is not smooth.
    let dir = tempdir();
    let out = dir.path().join("heat.png");
    let digest = |np: usize, comm: &str, k: &str, grid: Option<&str>| {
        let mut args = vec!["heat", "--size", "60x40", "--steps", "7", "--init", "hotspot", "--comm", comm];
        args.extend(["--halo-depth", k, "--out", out.to_str().unwrap()]);
        args.extend(grid.map(|g| ["--grid", g]).into_iter().flatten());
        let r = json_run(np, &args);
        assert_eq!(r["params"]["halo_depth"].as_u64(), k.parse().ok(), "the report gives the depth");
        r["result"]["field_digest"].clone()
    };
    let want = digest(1, "p2p", "1", None);
    let mut runs = Vec::new();
    for np in [1, 2, 4, 6] {
        for comm in ["p2p", "collective"] {
            for k in ["1", "2", "3"] {
                runs.push((np, comm, k, None));
            }
        }
    }
    // Thin blocks: 6 process columns of 10, one row of 40 (no north or south neighbour).
    runs.extend([(6, "p2p", "3", Some("6x1")), (6, "collective", "2", Some("1x6"))]);
    for (np, comm, k, grid) in runs {
        assert_eq!(digest(np, comm, k, grid), want, "np={np} --comm {comm} --halo-depth {k} --grid {grid:?}");
    }
}

#[test]
fn streamed_and_cached_stores_give_one_field() {
    // 1700 x 1700 cells: one rank's two buffers (46 MB) exceed the 32 MiB
    // above which a step streams its stores (kernels::heat::Stores), so np 1
    // streams on x86; np 4's 850 x 850 blocks (12 MB for both buffers) stay
    // under it on any machine with a last-level cache of 12 MB or more, so
    // they use plain stores, with the halo exchange between. Three threads
    // at np 1 split the rows unevenly. The sine modes are nonzero in every
    // cell, so a cell the streamed loop skipped or misplaced would show
    // (a hot disc leaves the rows' ends at 0 for the first steps).
    let digest = |np: usize, threads: &str, comm: &str| {
        let args = ["heat", "--size", "1700x1700", "--steps", "3", "--init", "modes", "--comm", comm];
        let r = json_run(np, &[&args[..], &["--threads", threads, "--out", "/dev/null"]].concat());
        assert_eq!(r["verified"], true, "{r}");
        r["result"]["field_digest"].clone()
    };
    let want = digest(1, "3", "p2p");
    assert_eq!(digest(4, "1", "p2p"), want, "np 4, p2p");
    assert_eq!(digest(4, "1", "collective"), want, "np 4, collective");
}

#[test]
fn the_report_names_its_parameters_by_flag_and_states_the_bound() {
    let (_, r) = field(2, &["--comm", "p2p"]);
    let p = &r["params"];
    assert_eq!(
        (p["size"].as_str(), p["steps"].as_u64(), p["r"].as_f64(), p["init"].as_str()),
        (Some("61x47"), Some(40), Some(0.2), Some("modes"))
    );
    let (err, bound) = (r["result"]["max_error"].as_f64().unwrap(), r["result"]["error_bound"].as_f64().unwrap());
    assert!(err <= bound && bound < 1e-12, "error {err} bound {bound}");
    assert_eq!(r["per_rank"].as_array().unwrap().len(), 2);
    assert!(r["per_rank"][1]["compute_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_png_shows_the_field_dark_at_the_cold_edges() {
    let (f, _) = field(2, &["--init", "hotspot", "--comm", "p2p"]);
    let img = image::load_from_memory_with_format(&f.png, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (61, 47));
    // The field's minimum (0, at the fixed edges far from the hot disc) is
    // black; the hot centre is the brightest pixel there is.
    assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
    let luma = |p: &image::Rgb<u8>| p.0.iter().map(|&c| u32::from(c)).sum::<u32>();
    let brightest = img.pixels().map(luma).max().unwrap();
    assert_eq!(luma(img.get_pixel(30, 23)), brightest);
}

fn refused(run: &Run, needle: &str) {
    util::refused(run, 2, needle);
}

#[test]
fn bad_parameters_exit_2_with_one_message() {
    let dir = tempdir();
    let out = dir.path().join("h.png");
    let out = out.to_str().unwrap();
    let cases: &[(usize, &[&str], &str)] = &[
        (2, &["--r", "0.3"], "unstable beyond 1/4"),
        (2, &["--r", "NaN"], "finite"),
        (2, &["--size", "0x5"], "--size 0x5"),
        (2, &["--size", "7"], "is not COLSxROWS"),
        (6, &["--grid", "4x4"], "--grid 4x4 has 16 processes but the job has 6"),
        (2, &["--comm", "dynamic"], "dynamic does not apply"),
        (4, &["--size", "3x1"], "need at least"),
        (2, &["--halo-depth", "0"], "--halo-depth 0"),
        (4, &["--size", "60x5", "--halo-depth", "3"], "--halo-depth 3: on the 2x2 process grid over 60x5 cells"),
        (6, &["--size", "60x40", "--grid", "6x1", "--halo-depth", "11"], "thinnest block has 10 columns"),
        (2, &["--frames", "1"], "--frames 1: an animation needs at least 2 frames"),
        (2, &["--frames", "0"], "--frames 0: an animation needs at least 2 frames"),
        (2, &["--frames", "5"], "--frames 5: 3 steps give at most 4 distinct frames"),
        (2, &["--frames", "3", "--animation", "h.mp4"], ".gif (GIF) or .apng / .png (APNG)"),
        (2, &["--animation", "h.gif"], "--animation applies to the animation: give --frames K"),
        (2, &["--frame-size", "9"], "--frame-size applies to the animation"),
        (2, &["--frames", "3", "--frame-size", "0"], "--frame-size 0: the frames' longer side"),
        (2, &["--frames", "3", "--animation", out], "are the same file"),
    ];
    for (np, extra, needle) in cases {
        let mut args = vec!["heat", "--steps", "3", "--out", out];
        args.extend(*extra);
        refused(&mpirun(*np, &args), needle);
    }
    assert!(!std::path::Path::new(out).exists(), "nothing written");
}

/// Runs heat with `--frames` on `np` ranks (61x47, 40 steps, hotspot:
/// blocks uneven, lattice stride 4 at `--frame-size 16`); returns the
/// animation's bytes and the report.
fn animation(np: usize, name: &str, extra: &[&str]) -> (Vec<u8>, Value) {
    let dir = tempdir();
    let (out, anim) = (dir.path().join("heat.png"), dir.path().join(name));
    let mut args = vec!["heat", "--size", "61x47", "--steps", "40", "--init", "hotspot", "--frames", "6"];
    args.extend(["--out", out.to_str().unwrap(), "--animation", anim.to_str().unwrap()]);
    args.extend(extra);
    let r = json_run(np, &args);
    (std::fs::read(&anim).unwrap(), r)
}

/// The colour map's input for each frame pixel of the initial hotspot field
/// sampled every `stride` cells: `(v - lo) / (hi - lo)` over the samples' range.
fn initial_levels(stride: usize) -> (usize, usize, Vec<f64>) {
    use kernels::heat::{initial, Init, Params};
    let p = Params { cols: 61, rows: 47, steps: 40, r: 0.2, init: Init::Hotspot };
    let (w, h) = (p.cols.div_ceil(stride), p.rows.div_ceil(stride));
    let v: Vec<f64> = (0..h * w).map(|k| initial(&p, k / w * stride, k % w * stride)).collect();
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(hi > lo, "the samples see the hot disc");
    (w, h, v.iter().map(|x| (x - lo) / (hi - lo)).collect())
}

#[test]
fn the_animation_is_identical_for_any_process_count_grid_and_comm_and_leaves_the_field_alone() {
    let (plain, _) = field(1, &["--init", "hotspot", "--comm", "p2p"]);
    for name in ["a.apng", "a.gif"] {
        let (want, r) = animation(1, name, &["--comm", "p2p", "--frame-size", "16"]);
        assert_eq!(r["result"]["field_digest"], plain.digest, "--frames changes no bit of the field");
        assert_eq!(r["result"]["frame_size"], "16x12");
        assert_eq!(r["result"]["animation_bytes"].as_u64(), Some(want.len() as u64));
        let runs: &[(usize, &[&str])] = &[
            (3, &["--comm", "p2p"]),
            (3, &["--comm", "collective", "--grid", "1x3"]),
            (4, &["--comm", "collective"]),
            (4, &["--comm", "p2p", "--grid", "4x1", "--threads", "2"]),
        ];
        for (np, extra) in runs {
            let mut args = vec!["--frame-size", "16"];
            args.extend(*extra);
            let (got, r) = animation(*np, name, &args);
            assert!(got == want, "{name}: np={np} {extra:?} writes other bytes");
            assert_eq!(r["result"]["field_digest"], plain.digest);
        }
    }
}

#[test]
fn the_apng_holds_k_frames_from_the_initial_field_on_one_colour_scale() {
    let (file, r) = animation(2, "h.apng", &["--comm", "p2p", "--frame-size", "16"]);
    assert_eq!((r["result"]["frames"].as_u64(), r["params"]["frames"].as_u64()), (Some(6), Some(6)));
    let mut dec = png::Decoder::new(std::io::Cursor::new(&file)).read_info().unwrap();
    assert_eq!(dec.info().animation_control.map(|a| a.num_frames), Some(6));
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let (w, h, levels) = initial_levels(4);
    let mut frames = Vec::new();
    for _ in 0..6 {
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        frames.push(buf[..info.buffer_size()].to_vec());
    }
    assert!(dec.next_frame(&mut buf).is_err(), "6 frames, no more");
    let want: Vec<u8> = levels.iter().flat_map(|&t| kernels::heat::cubehelix(t)).collect();
    assert!(frames[0] == want, "the first frame is the initial field's colours at the sampled cells");
    // One scale for all: the disc cools, so the brightest pixel never brightens and ends dimmer.
    let brightest: Vec<u32> =
        frames.iter().map(|f| f.chunks(3).map(|p| p.iter().map(|&c| u32::from(c)).sum()).max().unwrap()).collect();
    assert!(brightest.windows(2).all(|b| b[1] <= b[0]) && brightest[5] < brightest[0], "{brightest:?}");
    // Without --frame-size the lattice is the whole grid (61x47 < 640).
    let (_, r) = animation(1, "h.png", &[]);
    assert_eq!(r["result"]["frame_size"], "61x47");
}

#[test]
fn the_gif_decodes_to_k_frames_of_the_quantised_colour_map() {
    let (file, _) = animation(3, "h.gif", &["--comm", "collective", "--frame-size", "16"]);
    let dir = tempdir();
    let path = dir.path().join("h.gif");
    std::fs::write(&path, &file).unwrap();
    // ffmpeg's GIF decoder as the independent reader, where installed.
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output();
    let o = match decoded {
        Ok(o) => o,
        Err(e) => return println!("ffmpeg not run ({e}): the GIF decode is skipped"),
    };
    assert!(o.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
    let (w, h, levels) = initial_levels(4);
    assert_eq!(o.stdout.len(), 6 * w * h * 3, "6 frames of {w}x{h}");
    let want: Vec<u8> = levels.iter().flat_map(|&t| kernels::heat::cubehelix(((t * 255.0).round()) / 255.0)).collect();
    assert!(o.stdout[..w * h * 3] == want[..], "the first frame is the palette's nearest colours");
}

/// The report gives the step's memory traffic per core: 16 bytes per cell
/// update times the per-core update rate, the one rate the report derives.
#[test]
fn the_report_gives_bytes_per_second_per_core() {
    let (_, r) = field(2, &["--comm", "p2p"]);
    let bytes = r["result"]["bytes_per_s_per_core"].as_f64().expect("bytes_per_s_per_core");
    let per_core = r["throughput"]["per_core_per_s"].as_f64().unwrap();
    assert!(bytes > 0.0 && per_core > 0.0, "{r}");
    assert!((bytes / (16.0 * per_core) - 1.0).abs() < 1e-12, "{bytes} against 16 x {per_core}");
}
