//! `transcode` with real ffmpeg and OpenMPI: small test videos made by
//! ffmpeg's lavfi sources, transcoded under `mpirun -np 1` and `-np 3`, then
//! checked with ffprobe against the input and against the same transcode
//! done by one ffmpeg process; and the error paths (bad inputs, missing
//! tools, options ffmpeg refuses, a segment whose ffmpeg fails or hangs once
//! or on every try, a stop signal, leftovers of dead runs).
//!
//! Prints its figures: `bad input (transcode): N cases tried, M passed, K
//! failed` for the options ffmpeg judges, and one `fault injected: NAME:
//! survived` (or `NOT survived`) line per injected fault.

use crate::util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use util::{files_in, tempdir, Run};

/// The fault-injection hook of `media` (see `media::FAULT_ENV`).
const FAULT_ENV: &str = "PIKERNELS_TRANSCODE_FAULT";

/// A test video: a few seconds of testsrc at a small size, keyframes often
/// enough for several segments.
struct Clip {
    name: &'static str,
    rate: &'static str,
    seconds: &'static str,
    gop: &'static str,
    audio: bool,
}

const CLIPS: [Clip; 3] = [
    Clip { name: "av25.mp4", rate: "25", seconds: "4", gop: "10", audio: true },
    Clip { name: "odd-ntsc.mp4", rate: "24000/1001", seconds: "3", gop: "8", audio: true },
    Clip { name: "silent15.mkv", rate: "15", seconds: "3", gop: "6", audio: false },
];

fn ffmpeg(args: &[&str]) {
    let out =
        Command::new("ffmpeg").args(["-hide_banner", "-nostdin", "-v", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn make(dir: &Path, c: &Clip) -> PathBuf {
    let path = dir.join(c.name);
    let src = format!("testsrc=size=96x64:rate={}", c.rate);
    let mut args = vec!["-f", "lavfi", "-i", &src];
    if c.audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    args.extend(["-t", c.seconds, "-c:v", "libx264", "-preset", "ultrafast", "-g", c.gop, "-pix_fmt", "yuv420p"]);
    if c.audio {
        args.extend(["-c:a", "aac"]);
    }
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

/// What the test's own ffprobe call says: frames of the first video stream,
/// container duration, frame duration, audio streams.
#[derive(Debug)]
struct Facts {
    frames: u64,
    duration: f64,
    frame_s: f64,
    audio: usize,
}

fn probe(path: &Path) -> Facts {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .arg("format=duration:stream=codec_type,avg_frame_rate,nb_read_packets")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let (n, d) = video["avg_frame_rate"].as_str().unwrap().split_once('/').unwrap();
    Facts {
        frames: video["nb_read_packets"].as_str().unwrap().parse().unwrap(),
        duration: v["format"]["duration"].as_str().unwrap().parse().unwrap(),
        frame_s: d.parse::<f64>().unwrap() / n.parse::<f64>().unwrap(),
        audio: streams.iter().filter(|s| s["codec_type"] == "audio").count(),
    }
}

/// `mpirun -np N pikernels transcode ARGS` with TMPDIR pointing at `tmp`, so
/// the test can see every temporary directory the ranks make.
fn transcode(np: usize, tmp: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec!["transcode"];
    all.extend_from_slice(args);
    let mut cmd = util::mpirun_cmd(np, &all);
    cmd.env("TMPDIR", tmp);
    for (k, v) in env {
        cmd.env(k, v);
    }
    util::run(cmd, util::TIMEOUT)
}

/// No temporary directory of the job left in `tmp`, no hidden temporary
/// output left in `dir`.
fn nothing_left(tmp: &Path, dir: &Path) {
    let left: Vec<String> = files_in(tmp).into_iter().filter(|f| f.contains("pikernels")).collect();
    let alive = |name: &String| {
        let pid = name.split('-').nth(3).and_then(|p| p.parse::<i32>().ok()).unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
    };
    let why: Vec<String> = left.iter().map(alive).collect();
    assert!(left.is_empty(), "temporary directories left: {left:?}; their processes: {why:?}");
    let hidden: Vec<String> = files_in(dir).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(hidden.is_empty(), "temporary outputs left: {hidden:?}");
}

fn within_one_frame(a: f64, b: f64, frame_s: f64) -> bool {
    (a - b).abs() <= frame_s
}

/// Runs `body`, a test of one injected fault, and prints its figure line
/// whether it passed or not; a failure still fails the test.
fn fault(name: &str, body: impl FnOnce()) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    println!("fault injected: {name}: {}", if outcome.is_ok() { "survived" } else { "NOT survived" });
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn np1_and_np3_match_the_input_and_one_ffmpeg_process() {
    let dir = tempdir();
    let tmp = tempdir();
    for clip in &CLIPS {
        let input = make(dir.path(), clip);
        let want = probe(&input);
        // The same transcode by one ffmpeg process, for comparison.
        let single = dir.path().join(format!("single-{}", clip.name));
        let mut args = vec!["-i", input.to_str().unwrap(), "-map", "0:v:0", "-map", "0:a?"];
        args.extend(["-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-c:a", "aac", "-b:a", "128k"]);
        args.push(single.to_str().unwrap());
        ffmpeg(&args);
        let single = probe(&single);
        assert_eq!(single.frames, want.frames, "{}: one-process ffmpeg keeps every frame", clip.name);

        for np in [1, 3] {
            let out = dir.path().join(format!("out{np}-{}", clip.name));
            // One-second segments and 4 KiB messages: several segments, each
            // shipped in many chunks.
            let run = transcode(
                np,
                tmp.path(),
                &[],
                &[
                    "--input",
                    input.to_str().unwrap(),
                    "--output",
                    out.to_str().unwrap(),
                    "--segment-seconds",
                    "1",
                    "--chunk-bytes",
                    "4096",
                    "--format",
                    "json",
                ],
            );
            assert!(run.success(), "{} np {np}: {run}", clip.name);
            let report = run.report();
            let got = probe(&out);
            assert_eq!(report["verified"], true, "{run}");
            assert_eq!(got.frames, want.frames, "{} np {np}: frame count", clip.name);
            assert!(
                within_one_frame(got.duration, want.duration, want.frame_s),
                "{} np {np}: duration {} vs input {}",
                clip.name,
                got.duration,
                want.duration
            );
            assert_eq!(got.audio, want.audio, "{} np {np}: audio streams", clip.name);
            assert_eq!((got.frames, got.audio), (single.frames, single.audio), "same as one ffmpeg process");
            assert!(within_one_frame(got.duration, single.duration, want.frame_s), "{got:?} vs {single:?}");

            let r = &report["result"];
            assert_eq!(r["frames"], want.frames);
            let segments = r["segments"].as_u64().unwrap();
            assert!(segments >= 3, "{} is cut into several segments: {r}", clip.name);
            let rows = report["per_rank"].as_array().unwrap();
            assert_eq!(rows.len(), np);
            let done: u64 = rows.iter().map(|row| row["units"].as_u64().unwrap()).sum();
            assert_eq!(done, segments, "every segment transcoded exactly once: {rows:?}");
            assert!(r["speed_x_realtime"].as_f64().unwrap() > 0.0);
            assert_eq!(r["retried_segments"], 0);
        }
    }
    nothing_left(tmp.path(), dir.path());
}

#[test]
fn baseline_and_shared_dir() {
    let dir = tempdir();
    let tmp = tempdir();
    let shared = tempdir();
    let input = make(dir.path(), &CLIPS[0]);
    let want = probe(&input);
    let out = dir.path().join("shared.mp4");
    let run = transcode(
        3,
        tmp.path(),
        &[],
        &[
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--shared-dir",
            shared.path().to_str().unwrap(),
            "--segment-seconds",
            "1",
            "--baseline",
            "--format",
            "json",
        ],
    );
    assert!(run.success(), "{run}");
    let report = run.report();
    let r = &report["result"];
    assert_eq!(r["transport"], "shared-dir");
    assert_eq!(probe(&out).frames, want.frames);
    let b = &r["baseline"];
    assert_eq!(b["frames"], want.frames, "{r}");
    assert!(b["seconds"].as_f64().unwrap() > 0.0 && b["speedup"].as_f64().unwrap() > 0.0, "{r}");
    assert!(files_in(shared.path()).is_empty(), "shared directory cleaned: {:?}", files_in(shared.path()));
    nothing_left(tmp.path(), dir.path());
}

#[test]
fn a_segment_failing_once_is_retried() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[1]);
    for np in [1, 3] {
        let out = dir.path().join(format!("retry{np}.mp4"));
        let args = [
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--segment-seconds",
            "1",
            "--format",
            "json",
        ];
        fault(&format!("ffmpeg fails once, np {np}"), || {
            let run = transcode(np, tmp.path(), &[(FAULT_ENV, "1:first")], &args);
            assert!(run.success(), "{run}");
            let report = run.report();
            assert_eq!(report["result"]["retried_segments"], 1, "{run}");
            assert_eq!(report["verified"], true);
            assert_eq!(probe(&out).frames, probe(&input).frames);
        });
    }
    nothing_left(tmp.path(), dir.path());
}

#[test]
fn a_segment_failing_twice_ends_the_job_with_ffmpegs_message_and_no_output() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[0]);
    for np in [1, 3] {
        fault(&format!("ffmpeg fails on every try, np {np}"), || {
            let out = dir.path().join("never.mp4");
            let args =
                ["--input", input.to_str().unwrap(), "--output", out.to_str().unwrap(), "--segment-seconds", "1"];
            let run = transcode(np, tmp.path(), &[(FAULT_ENV, "2")], &args);
            assert_eq!(run.code, Some(1), "{run}");
            assert_eq!(run.stderr.matches("ffmpeg failed twice on segment 2").count(), 1, "once: {run}");
            assert!(run.stderr.contains("Unrecognized option 'pikernels-injected-fault'"), "ffmpeg's stderr: {run}");
            assert!(!run.stderr.contains("panicked"), "{run}");
            let ranks: Vec<&str> = ["first on rank ", "then on rank "]
                .iter()
                .map(|p| {
                    let at = run.stderr.find(p).unwrap_or_else(|| panic!("{p} in {run}")) + p.len();
                    &run.stderr[at..at + 1]
                })
                .collect();
            if np > 1 {
                assert_ne!(ranks[0], ranks[1], "the retry ran on another rank: {run}");
            }
            assert!(!out.exists(), "no output");
            nothing_left(tmp.path(), dir.path());
        });
    }
}

/// A refused job: exit 2, one message, quickly, nothing written.
fn refused(run: &Run, needle: &str) {
    util::refused(run, 2, needle);
}

#[test]
fn bad_inputs_are_refused_before_any_work() {
    let dir = tempdir();
    let tmp = tempdir();
    let good = make(dir.path(), &CLIPS[2]);
    let bytes = std::fs::read(&good).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("empty.mp4"), b"").unwrap();
    std::fs::write(p("truncated.mkv"), &bytes[..bytes.len() / 10]).unwrap();
    std::fs::write(p("notes.mp4"), b"this is not a video\n").unwrap();
    ffmpeg(&["-f", "lavfi", "-i", "sine", "-t", "1", p("tone.wav").to_str().unwrap()]);
    ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", p("still.png").to_str().unwrap()]);
    let cases = [
        ("missing.mp4", "No such file"),
        ("empty.mp4", "is empty"),
        ("truncated.mkv", "is truncated or damaged"),
        ("notes.mp4", "is not a readable video file"),
        ("tone.wav", "no video stream"),
        ("still.png", "still image"),
    ];
    let out = p("out.mp4");
    for (name, needle) in cases {
        let run =
            transcode(3, tmp.path(), &[], &["--input", p(name).to_str().unwrap(), "--output", out.to_str().unwrap()]);
        refused(&run, needle);
        assert!(run.stderr.contains(name), "names the file: {run}");
        assert!(!out.exists());
    }
    nothing_left(tmp.path(), dir.path());
}

#[test]
fn missing_tools_and_bad_options_are_refused() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[2]);
    let out = dir.path().join("out.mp4");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let cases: &[(&[&str], &str)] = &[
        (&["--ffmpeg", "/nonexistent/ffmpeg"], "cannot run /nonexistent/ffmpeg"),
        (&["--ffprobe", "/nonexistent/ffprobe"], "cannot run /nonexistent/ffprobe"),
        (&["--codec", "libnope"], "no encoder 'libnope'"),
        (&["--crf", "99"], "--crf must be between 0 and 63"),
        (&["--segment-seconds", "0"], "--segment-seconds must be a positive"),
        (&["--chunk-bytes", "0"], "--chunk-bytes must be between"),
        (&["--out", "x.mp4"], "transcode writes --output"),
        // A word that is no option's value is one more ffmpeg output, which
        // ffmpeg (told -y) would write over the input itself.
        (&["--ffmpeg-arg", i], "ffmpeg would read it as one more output file"),
        (&["--ffmpeg-arg=-an", "--ffmpeg-arg", "x.mp4"], "--ffmpeg-arg x.mp4: ffmpeg would read it"),
    ];
    let before = std::fs::read(&input).unwrap();
    for (extra, needle) in cases {
        let mut args = vec!["--input", i, "--output", o];
        args.extend_from_slice(extra);
        refused(&transcode(2, tmp.path(), &[], &args), needle);
    }
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input is untouched");
    assert!(!std::path::Path::new("x.mp4").exists() && !dir.path().join("x.mp4").exists());
    // Outputs that ffmpeg writes as many files: refused before any work.
    for (name, needle) in [
        ("o.m3u8", "HLS writes a playlist"),
        ("o%03d.mkv", "a pattern for many files"),
        ("o.png", "one file per frame"),
    ] {
        let out = dir.path().join(name);
        refused(&transcode(2, tmp.path(), &[], &["--input", i, "--output", out.to_str().unwrap()]), needle);
    }
    // A work directory whose path has a line break cannot be named in ffmpeg's list of parts.
    let broken = tmp.path().join("line\nbreak");
    std::fs::create_dir(&broken).unwrap();
    let run = transcode(2, &broken, &[], &["--input", i, "--output", o]);
    refused(&run, "holds a line break");
    assert!(run.stderr.contains("TMPDIR"), "names TMPDIR: {run}");
    let _ = std::fs::remove_dir_all(&broken);
    let run = transcode(2, tmp.path(), &[], &["--input", i, "--output", dir.path().join("noext").to_str().unwrap()]);
    refused(&run, "has no extension");
    assert!(!out.exists());
    nothing_left(tmp.path(), dir.path());
}

/// Processes whose command line or environment mentions `needle`: the ranks
/// of a job run with `TMPDIR=needle` and their ffmpeg children.
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let env = std::fs::read(dir.join("environ")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&std::fs::read(dir.join("cmdline")).ok()?).replace('\0', " ");
            (cmd.contains(needle) || String::from_utf8_lossy(&env).contains(needle)).then_some(cmd)
        })
        .collect()
}

#[test]
fn sigterm_mid_transcode_leaves_nothing_behind() {
    let dir = tempdir();
    let tmp = tempdir();
    // Long enough to be caught mid-way on any machine: `mpirun` (OpenMPI
    // 4.1) passes SIGTERM on to the ranks only a second after it got it, and
    // a fast machine finished this whole job within that second (the output
    // was renamed into place before the ranks heard of the signal). The
    // `realtime` filter holds every segment's ffmpeg to the video's own pace,
    // so the farm takes at least 4 s (12 s of video, 3 ranks) however fast
    // the encoder is.
    let input = dir.path().join("long.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "12",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        input.to_str().unwrap(),
    ]);
    let out = dir.path().join("stopped.mp4");
    let args = [
        "transcode",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--segment-seconds",
        "2",
        "--preset",
        "veryslow",
        "--ffmpeg-arg=-vf",
        "--ffmpeg-arg=realtime",
    ];
    let mut cmd = util::mpirun_cmd(3, &args);
    cmd.env("TMPDIR", tmp.path());
    let tmp_path = tmp.path().to_path_buf();
    // Ready once some rank has a segment in its directory and ffmpeg runs on it.
    let ready = || {
        files_in(&tmp_path).iter().filter(|d| d.starts_with("pikernels-transcode-")).any(|d| {
            std::fs::read_dir(tmp_path.join(d))
                .map(|rd| rd.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("in-")))
                .unwrap_or(false)
        })
    };
    fault("SIGTERM to mpirun mid-transcode", || {
        let run = util::run_signalled(cmd, ready, libc::SIGTERM, util::TIMEOUT);
        assert_ne!(run.code, Some(0), "{run}");
        assert!(run.stderr.contains("stopped by SIGTERM"), "{run}");
        assert!(!out.exists(), "no output");
        // Ranks may outlive mpirun for a moment (it kills them after a grace
        // period); ffmpeg children die with their rank (PR_SET_PDEATHSIG).
        let needle = tmp.path().to_string_lossy().into_owned();
        let t = std::time::Instant::now();
        while !processes_mentioning(&needle).is_empty() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(processes_mentioning(&needle).is_empty(), "orphans: {:?}", processes_mentioning(&needle));
        // Every rank that got SIGTERM (each says so, naming its process)
        // removed all its files. One that mpirun killed outright (it sends
        // SIGKILL a second after SIGTERM, or as soon as one rank exits) could
        // not; the next run on this host removes such leftovers and says so.
        let stopped: Vec<String> = run
            .stderr
            .lines()
            .filter(|l| l.contains("stopped by SIGTERM"))
            .filter_map(|l| Some(l.rsplit_once("(process ")?.1.trim_end_matches(')').to_string()))
            .collect();
        assert!(!stopped.is_empty(), "{run}");
        let pid_of = |name: &str| name.trim_start_matches('.').split('-').nth(3).map(str::to_string);
        let left: Vec<String> = files_in(tmp.path())
            .into_iter()
            .filter(|f| f.starts_with("pikernels-transcode-"))
            .chain(files_in(dir.path()).into_iter().filter(|f| f.starts_with(".pikernels-")))
            .collect();
        let of_stopped: Vec<&String> =
            left.iter().filter(|f| pid_of(f).is_some_and(|p| stopped.contains(&p))).collect();
        assert!(of_stopped.is_empty(), "ranks that got SIGTERM left {of_stopped:?}:\n{run}");
        let small = make(dir.path(), &CLIPS[2]);
        let next = dir.path().join("next.mp4");
        let run =
            transcode(2, tmp.path(), &[], &["--input", small.to_str().unwrap(), "--output", next.to_str().unwrap()]);
        assert!(run.success(), "{run}");
        for f in &left {
            assert_eq!(run.stderr.matches(f.as_str()).count(), 1, "the next run names the leftover {f}: {run}");
        }
        std::fs::remove_file(&next).unwrap();
        nothing_left(tmp.path(), dir.path());
    });
}

#[test]
fn extra_ffmpeg_arguments_reach_every_segment() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[2]);
    let (i, o) = (input.to_str().unwrap(), dir.path().join("scaled.mp4"));
    // A real option: scale every segment to 48x32; ffprobe sees the size.
    let args = [
        "--input",
        i,
        "--output",
        o.to_str().unwrap(),
        "--segment-seconds",
        "1",
        "--ffmpeg-arg=-vf",
        "--ffmpeg-arg=scale=48:32",
    ];
    let run = transcode(2, tmp.path(), &[], &args);
    assert!(run.success(), "{run}");
    let pix = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(&o)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pix.stdout).trim(), "48,32");
    // An option ffmpeg does not know is refused before any work, in ffmpeg's words.
    let x = dir.path().join("x.mp4");
    let bad = ["--input", i, "--output", x.to_str().unwrap(), "--ffmpeg-arg=-no-such-option"];
    let run = transcode(2, tmp.path(), &[], &bad);
    refused(&run, "Unrecognized option 'no-such-option'");
    assert!(!x.exists());
    nothing_left(tmp.path(), dir.path());
}

/// Options only ffmpeg can judge (and absurd numbers): each refused before
/// any work, by the trial encode on rank 0 in pre-flight or by plain
/// validation, with exit status 2, one message (quoting ffmpeg where ffmpeg
/// judged), quickly, and no file left anywhere.
#[test]
fn options_ffmpeg_refuses_are_refused_before_any_work() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[0]); // video and audio
    let before = files_in(dir.path());
    let (i, o) = (input.to_str().unwrap().to_string(), dir.path().join("o.mp4").to_str().unwrap().to_string());
    let d = dir.path().to_str().unwrap().to_string();
    // (extra arguments, phrase the one message must hold, whether ffmpeg is quoted)
    let cases: Vec<(Vec<String>, String, bool)> = [
        (vec!["--output", "{dir}/o.txt"], "Unable to find a suitable output format for '{dir}/o.txt'", true),
        (vec!["--preset", "bogus"], "invalid preset 'bogus'", true),
        (vec!["--audio-bitrate", "lots"], "Unable to parse option value \"lots\"", true),
        (vec!["--ffmpeg-arg=-bogusflag"], "Unrecognized option 'bogusflag'", true),
        (vec!["--segment-seconds", "1e308"], "--segment-seconds must be at most 86400", false),
        (vec!["--output", "{dir}/o.wav"], "WAVE files have exactly one stream", true),
        (vec!["--ffmpeg-arg=-vf", "--ffmpeg-arg=nosuchfilter"], "No such filter: 'nosuchfilter'", true),
        (vec!["--ffmpeg-arg=-tune", "--ffmpeg-arg=bogus"], "invalid tune 'bogus'", true),
        (vec!["--audio-bitrate=-5k"], "for parameter 'b' out of range", true),
        (vec!["--audio-codec", "libx264"], "Invalid encoder type 'libx264'", true),
        (vec!["--item-timeout", "0"], "is not a positive duration", false),
        (vec!["--item-timeout", "soon"], "is not a duration", false),
        (vec!["--item-timeout", "31d"], "longer than the supported 30 days", false),
    ]
    .into_iter()
    .map(|(args, needle, quoted)| {
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &d)).collect();
        (args, needle.replace("{dir}", &d), quoted)
    })
    .collect();
    let mut failures = Vec::new();
    for (extra, needle, quoted) in &cases {
        let mut args: Vec<&str> = vec!["--input", &i];
        if !extra.iter().any(|a| a == "--output") {
            args.extend(["--output", &o]);
        }
        args.extend(extra.iter().map(String::as_str));
        let run = transcode(2, tmp.path(), &[], &args);
        let mut why = Vec::new();
        if run.code != Some(2) {
            why.push(format!("exit {:?}, expected 2", run.code));
        }
        if run.elapsed > Duration::from_secs(90) {
            why.push(format!("took {:?}", run.elapsed));
        }
        if run.stderr.matches(needle.as_str()).count() != 1 {
            why.push(format!("'{needle}' not printed exactly once"));
        }
        let said = run.stderr.matches("ffmpeg said: ").count();
        if said != usize::from(*quoted) {
            why.push(format!("'ffmpeg said: ' printed {said} times"));
        }
        if *quoted && run.stderr.matches("so nothing was transcoded").count() != 1 {
            why.push("does not say that nothing was transcoded".into());
        }
        if run.stderr.contains("panicked") || !run.stdout.is_empty() {
            why.push("a panic or a report".into());
        }
        if files_in(dir.path()) != before {
            why.push(format!("files written: {:?}", files_in(dir.path())));
        }
        if !why.is_empty() {
            failures.push(format!("{extra:?}: {}\n{run}", why.join("; ")));
        }
    }
    println!(
        "bad input (transcode): {} cases tried, {} passed, {} failed",
        cases.len(),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    nothing_left(tmp.path(), dir.path());
}

/// A stand-in for ffmpeg that sleeps instead of encoding segment 1 (the
/// segment file a rank writes for it, `in-00001.nut`): on every try, or, with
/// `HANG_ONCE` naming a directory that does not exist yet, on the first
/// only (the try that creates it). Everything else goes to the real ffmpeg.
fn hanging_ffmpeg(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("hanging-ffmpeg");
    let script = r#"#!/bin/sh
for a in "$@"; do
  case "$a" in
    */in-00001.nut)
      if [ -z "$HANG_ONCE" ] || mkdir "$HANG_ONCE" 2>/dev/null; then sleep 600; fi ;;
  esac
done
exec ffmpeg "$@"
"#;
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Waits (boundedly) until no process mentions `needle` any more: the ranks
/// and every process they started, the wrapper's `sleep` included.
fn no_processes_left(needle: &str) -> Vec<String> {
    let t = Instant::now();
    while !processes_mentioning(needle).is_empty() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    processes_mentioning(needle)
}

#[test]
fn a_hanging_ffmpeg_is_killed_at_the_item_limit_and_its_segment_retried() {
    // Long enough that a real encode of these tiny segments never reaches it,
    // even on a loaded machine; the hang itself lasts 600 s.
    const LIMIT_S: u64 = 8;
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[0]);
    let wrapper = hanging_ffmpeg(dir.path());
    let limit = format!("{LIMIT_S}s");
    let needle = tmp.path().to_string_lossy().into_owned();

    fault("ffmpeg hangs on one segment once", || {
        let out = dir.path().join("hung-once.mp4");
        let mark = dir.path().join("hung");
        let args = [
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--segment-seconds",
            "1",
            "--ffmpeg",
            wrapper.to_str().unwrap(),
            "--item-timeout",
            &limit,
            "--format",
            "json",
        ];
        let run = transcode(3, tmp.path(), &[("HANG_ONCE", mark.to_str().unwrap())], &args);
        assert!(run.success(), "{run}");
        assert!(mark.is_dir(), "the wrapper hung on a try: {run}");
        assert!(run.elapsed >= Duration::from_secs(LIMIT_S), "the retry waited for the limit: {run}");
        let report = run.report();
        assert_eq!(report["result"]["retried_segments"], 1, "{run}");
        assert_eq!(report["verified"], true, "{run}");
        assert_eq!(probe(&out).frames, probe(&input).frames);
        assert_eq!(no_processes_left(&needle), Vec::<String>::new(), "the hung try was killed with its children");
        std::fs::remove_file(&out).unwrap();
        nothing_left(tmp.path(), dir.path());
    });

    fault("ffmpeg hangs on one segment on every try", || {
        let out = dir.path().join("never.mp4");
        let args = [
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--segment-seconds",
            "1",
            "--ffmpeg",
            wrapper.to_str().unwrap(),
            "--item-timeout",
            &limit,
        ];
        let run = transcode(3, tmp.path(), &[], &args);
        assert_eq!(run.code, Some(1), "{run}");
        assert_eq!(run.stderr.matches("ffmpeg failed twice on segment 1").count(), 1, "once: {run}");
        let killed =
            format!("did not finish segment 1 within {limit} (the per-segment limit, --item-timeout) and was killed");
        assert_eq!(run.stderr.matches(&killed).count(), 2, "both tries timed out: {run}");
        assert!(run.elapsed >= Duration::from_secs(2 * LIMIT_S), "both tries waited for the limit: {run}");
        let ranks: Vec<&str> = ["first on rank ", "then on rank "]
            .iter()
            .map(|p| {
                let at = run.stderr.find(p).unwrap_or_else(|| panic!("{p} in {run}")) + p.len();
                &run.stderr[at..at + 1]
            })
            .collect();
        assert_ne!(ranks[0], ranks[1], "the retry ran on another rank: {run}");
        assert!(!run.stderr.contains("panicked"), "{run}");
        assert!(!out.exists(), "no output");
        assert_eq!(no_processes_left(&needle), Vec::<String>::new(), "every hung try was killed");
        nothing_left(tmp.path(), dir.path());
    });
}

/// This host's name as `pikernels` puts it in file names.
fn host_in_names() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    assert_eq!(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) }, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).replace(['/', '-'], "_")
}

#[test]
fn leftovers_of_dead_runs_are_removed_and_said_and_live_ones_kept() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[2]);
    let out = dir.path().join("out.mp4");
    let host = host_in_names();
    // A pid that is surely not running: a child that has ended and been reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live = std::process::id();
    let dead_dir = format!("pikernels-transcode-{host}-{dead}-0");
    let live_dir = format!("pikernels-transcode-{host}-{live}-0");
    let other_host = format!("pikernels-transcode-elsewhere-{dead}-0");
    for d in [&dead_dir, &live_dir, &other_host] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
        std::fs::write(tmp.path().join(d).join("seg-00000.nut"), b"left over").unwrap();
    }
    let dead_out = format!(".pikernels-transcode-{host}-{dead}-out.mp4");
    let live_out = format!(".pikernels-transcode-{host}-{live}-out.mp4");
    for f in [&dead_out, &live_out] {
        std::fs::write(dir.path().join(f), b"half a video").unwrap();
    }
    let run = transcode(2, tmp.path(), &[], &["--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(run.success(), "{run}");
    let said_tmp = format!("removed 1 leftover of dead runs in {}: {dead_dir}\n", tmp.path().display());
    let said_out = format!("removed 1 leftover of dead runs in {}: {dead_out}\n", dir.path().display());
    assert_eq!(run.stderr.matches(&said_tmp).count(), 1, "{run}");
    assert_eq!(run.stderr.matches(&said_out).count(), 1, "{run}");
    assert_eq!(run.stderr.matches("leftover").count(), 2, "nothing else was taken for a leftover: {run}");
    assert!(!tmp.path().join(&dead_dir).exists() && !dir.path().join(&dead_out).exists());
    assert!(tmp.path().join(&live_dir).join("seg-00000.nut").exists(), "a live run's directory is kept");
    assert!(dir.path().join(&live_out).exists(), "a live run's output is kept");
    assert!(tmp.path().join(&other_host).exists(), "another host's pid says nothing here");
    std::fs::remove_dir_all(tmp.path().join(&live_dir)).unwrap();
    std::fs::remove_dir_all(tmp.path().join(&other_host)).unwrap();
    std::fs::remove_file(dir.path().join(&live_out)).unwrap();
    std::fs::remove_file(&out).unwrap();
    nothing_left(tmp.path(), dir.path());
}

/// `--output` by what it points at: a symbolic link stays a link and its
/// target gets the video; a link to the input is refused (it would be written
/// over the input), and so is a FIFO (the video is joined under a temporary
/// name and renamed); neither changes a byte.
#[test]
fn a_linked_output_keeps_its_link_and_aliases_and_fifos_are_refused() {
    let dir = tempdir();
    let tmp = tempdir();
    let input = make(dir.path(), &CLIPS[2]);
    let input_bytes = std::fs::read(&input).unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let link = dir.path().join("out.mkv");
    std::os::unix::fs::symlink(store.join("video.mkv"), &link).unwrap();
    let run = transcode(2, tmp.path(), &[], &["--input", input.to_str().unwrap(), "--output", link.to_str().unwrap()]);
    assert!(run.success(), "{run}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    let facts = probe(&store.join("video.mkv"));
    assert!(facts.frames > 0, "{facts:?}");
    assert_eq!(files_in(&store), ["video.mkv"]);

    let alias = dir.path().join("alias.mkv");
    std::os::unix::fs::symlink(&input, &alias).unwrap();
    let run = transcode(2, tmp.path(), &[], &["--input", input.to_str().unwrap(), "--output", alias.to_str().unwrap()]);
    refused(&run, "would be written over the --input");

    let fifo = dir.path().join("pipe.mkv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let run = transcode(2, tmp.path(), &[], &["--input", input.to_str().unwrap(), "--output", fifo.to_str().unwrap()]);
    refused(&run, "is a device, FIFO or socket");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read(&input).unwrap(), input_bytes, "the input is unchanged");
    nothing_left(tmp.path(), dir.path());
}

/// Paths that a tool could read as something else: an input named like an
/// option (`-clip.mp4`), one named like a URL (`http:clip.mp4`), an output
/// named like an option, a relative work directory (`TMPDIR=rel`), all given
/// relative to the job's directory. Each is passed to ffprobe and ffmpeg as
/// the file it names: the job runs and its output has the input's frames.
#[test]
fn paths_that_look_like_options_or_urls_are_files_to_the_tools() {
    let dir = tempdir();
    let clip = make(dir.path(), &CLIPS[2]);
    let frames = probe(&clip).frames;
    std::fs::create_dir(dir.path().join("rel")).unwrap();
    for (input, output) in [("-clip.mkv", "-out.mkv"), ("http:clip.mkv", "pipe:out.mkv")] {
        std::fs::copy(&clip, dir.path().join(input)).unwrap();
        let args = ["transcode", "--input", input, "--output", output, "--preset", "ultrafast"];
        // --input=-clip.mkv, as a user would write a value that starts with '-'.
        let input_arg = format!("--input={input}");
        let output_arg = format!("--output={output}");
        let argv = [args[0], &input_arg, &output_arg, args[5], args[6]];
        let mut cmd = util::mpirun_cmd(2, &argv);
        cmd.current_dir(dir.path()).env("TMPDIR", "rel");
        let run = util::run(cmd, util::TIMEOUT);
        assert!(run.success(), "{input} -> {output}:\n{run}");
        let out = dir.path().join(output);
        assert_eq!(probe(&out).frames, frames, "{input} -> {output}: frames");
        nothing_left(&dir.path().join("rel"), dir.path());
        std::fs::remove_file(out).unwrap();
    }
}
