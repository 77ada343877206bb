//! Results are identical for any process count, thread count and strategy,
//! under real `mpirun`.

use crate::util;

use util::{direct, json_run, tempdir};

const COMMS: [&str; 3] = ["collective", "p2p", "dynamic"];

#[test]
fn pi_mc_hits_are_identical_for_any_decomposition() {
    // 7 units of which the last is partial: uneven under every np.
    let args = ["pi-mc", "--samples", "400001", "--seed", "42"];
    let reference = json_run(1, &args)["result"]["hits"].clone();
    assert!(reference.as_u64().unwrap() > 0);
    for np in 1..=4 {
        for comm in COMMS {
            for threads in ["1", "3"] {
                let mut a = args.to_vec();
                a.extend(["--comm", comm, "--threads", threads]);
                let r = json_run(np, &a);
                assert_eq!(r["result"]["hits"], reference, "np={np} comm={comm} threads={threads}");
            }
        }
    }
    let other_seed = json_run(1, &["pi-mc", "--samples", "400001", "--seed", "43"]);
    assert_ne!(other_seed["result"]["hits"], reference, "the seed must matter");
}

#[test]
fn leibniz_pi_is_bit_identical_for_any_decomposition() {
    let args = ["leibniz", "--terms", "1000003"];
    let reference = json_run(1, &args)["result"]["pi"].as_f64().unwrap();
    for np in 1..=4 {
        for comm in COMMS {
            let threads = if np % 2 == 0 { "2" } else { "1" };
            let mut a = args.to_vec();
            a.extend(["--comm", comm, "--threads", threads]);
            let pi = json_run(np, &a)["result"]["pi"].as_f64().unwrap();
            assert_eq!(pi.to_bits(), reference.to_bits(), "np={np} comm={comm}");
        }
    }
}

#[test]
fn mandelbrot_png_bytes_are_identical_for_any_decomposition() {
    // 2000 pixels wide: rows of 6000 bytes, 43 to a compressed block, so 120
    // rows make three blocks (the last short) and the ranks' shares, cut in
    // whole blocks, are uneven for every np > 1.
    let (width, height) = (2000u32, 120u32);
    let dir = tempdir();
    let render = |np: usize, comm: &str, threads: &str| {
        let out = dir.path().join(format!("m-{np}-{comm}-{threads}.png"));
        let (w, h) = (width.to_string(), height.to_string());
        let r = json_run(
            np,
            &[
                "mandelbrot",
                "--width",
                &w,
                "--height",
                &h,
                "--max-iter",
                "100",
                "--comm",
                comm,
                "--threads",
                threads,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        (std::fs::read(&out).unwrap(), r["result"]["total_iterations"].clone())
    };
    let (png, iters) = render(1, "collective", "2");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    for np in 1..=4 {
        for comm in COMMS {
            let threads = if np == 3 { "2" } else { "1" };
            let (other, other_iters) = render(np, comm, threads);
            assert!(other == png, "PNG differs at np={np} comm={comm}");
            assert_eq!(other_iters, iters, "np={np} comm={comm}");
        }
    }

    // Every pixel, decoded by the image crate, is the sequential reference's.
    let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (width, height));
    let p = kernels::mandelbrot::Params { width, height, max_iter: 100, ..kernels::mandelbrot::Params::SEED };
    for (row, pixels) in img.as_raw().chunks(width as usize * 3).enumerate() {
        assert!(kernels::mandelbrot::render_row_reference(&p, row as u32).0 == pixels, "row {row}");
    }
    // And by a second, unrelated decoder (ffmpeg's, on zlib), where installed.
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(dir.path().join("m-1-collective-2.png"))
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output();
    match decoded {
        Ok(o) => {
            assert!(o.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
            assert!(o.stdout == *img.as_raw(), "ffmpeg decodes other pixels");
        }
        Err(e) => println!("ffmpeg not run ({e}): the second decoder is skipped"),
    }
}

#[test]
fn fewer_units_than_ranks_still_works() {
    // pi-mc: one unit of work for four ranks; mandelbrot: two rows for four ranks.
    for comm in COMMS {
        let r = json_run(4, &["pi-mc", "--samples", "10", "--comm", comm]);
        let units: Vec<u64> = r["per_rank"].as_array().unwrap().iter().map(|x| x["units"].as_u64().unwrap()).collect();
        assert_eq!(units.iter().sum::<u64>(), 1, "{comm}: {units:?}");
        let dir = tempdir();
        let out = dir.path().join("tiny.png");
        let r = json_run(
            4,
            &["mandelbrot", "--width", "3", "--height", "2", "--comm", comm, "--out", out.to_str().unwrap()],
        );
        assert_eq!(r["result"]["pixels"], 6);
        let img = std::fs::read(&out).unwrap();
        assert!(img.starts_with(b"\x89PNG"));
    }
}

#[test]
fn no_launcher_runs_one_rank_on_all_cores() {
    let run = direct(&["leibniz", "--terms", "1e6", "--format", "json"]);
    assert!(run.success(), "{run}");
    let r = run.report();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(r["ranks"], 1);
    assert_eq!(r["threads_per_rank"], cores);
    assert_eq!(r["hosts"].as_array().unwrap().len(), 1);
}

/// Every kernel's declared small examples (`pikernels list --format json`,
/// the runs the MPI matrix compares across MPIs): the result but its
/// declared run keys is the same at `-np 1` and `-np 3`, with different
/// thread counts, and every declared run key is a key of the result (a key
/// missing from the list would fail here; a stale one too).
#[test]
fn every_kernels_small_examples_agree_across_process_counts_but_for_their_declared_run_keys() {
    let out = std::process::Command::new(util::bin()).args(["list", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = tempdir();
    let mut compared = 0;
    for k in listed.as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        let run_keys: Vec<&str> = k["run_keys"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for e in k["small"].as_array().unwrap() {
            let results: Vec<_> = [(1, "2"), (3, "1")]
                .map(|(np, threads)| {
                    let mut args = vec![name];
                    args.extend(e["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()));
                    let out = dir.path().join(format!("out-{np}"));
                    let out = out.to_str().unwrap();
                    if let Some(flag) = k["output"].as_str() {
                        args.extend([flag, out]);
                    }
                    args.extend(["--threads", threads]);
                    let r = json_run(np, &args);
                    assert_eq!(r["verified"], true, "{name} {args:?}");
                    r["result"].as_object().unwrap().clone()
                })
                .into_iter()
                .map(|mut result| {
                    for key in &run_keys {
                        assert!(result.remove(*key).is_some(), "{name}: run key {key} is not in the result {result:?}");
                    }
                    result
                })
                .collect();
            assert!(!results[0].is_empty(), "{name}: nothing left to compare");
            assert_eq!(results[0], results[1], "{name} {}: np 1 and np 3 differ beyond the run keys", e["label"]);
            compared += 1;
        }
    }
    assert!(compared >= 6, "only {compared} small examples");
}
