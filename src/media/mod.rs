//! ffmpeg and ffprobe: probing, splitting at keyframes, transcoding a
//! segment, joining segments, and capturing what the tools say when they fail.
//!
//! This lives in the binary crate, not in `kernels`: it starts processes and
//! touches files, which the kernels crate (pure compute) never does. It knows
//! nothing about MPI either; `jobs::transcode` ties it to the runtime's task
//! farm. The pure parts (parsing ffprobe's JSON and the segment list, the
//! schedule order, the concat list, the stderr tail) are unit-tested here.
//!
//! Container choices, measured with ffmpeg 5.1 on test videos (25, 15 and
//! 24000/1001 fps): segments are cut as NUT (any codec, the stream's own time
//! base, so no rounding of timestamps), transcoded segments are MP4, and the
//! concat demuxer joins them with stream copy. Audio is *not* encoded per
//! segment: every AAC segment starts with 1024 priming samples, and joined
//! per-segment audio came out 4 frames and 0.28 s longer than the input over
//! three 2-second segments; the joined video with the audio encoded once from
//! the input matched to the frame. So rank 0 encodes the audio once, from the
//! input, into an MP4 while the ranks transcode the video (it is no serial
//! tail: 30 s of AAC took 1.15 CPU-s here), and the join copies it.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bytes of a failing tool's stderr kept for the error message.
pub const STDERR_TAIL_BYTES: usize = 2048;

/// Segments per rank the default segment length aims for: several each, so
/// that longest-first scheduling can even out the ranks.
pub const SEGMENTS_PER_RANK: f64 = 4.0;
/// Shortest default segment (seconds): shorter ones cost more in ffmpeg
/// start-up and encoder warm-up than they gain in balance.
pub const MIN_SEGMENT_SECONDS: f64 = 1.0;
/// Longest default segment (seconds), the seed's 60-second pieces.
pub const MAX_SEGMENT_SECONDS: f64 = 60.0;

/// A video whose readable frames cover less than this fraction of what its
/// header's duration and frame rate promise is refused as truncated. (The
/// container duration also covers audio, which may legitimately run a little
/// longer than the video; hence a fraction, not equality.)
pub const TRUNCATED_FRACTION: f64 = 0.9;

/// The environment variable of the fault-injection hook: `SEG` makes ffmpeg
/// fail on every attempt at segment SEG (time order, from 0), `SEG:first`
/// only on the first attempt, by handing ffmpeg an option it does not know,
/// so the failure, its stderr and the retry are all real. Used by the tests
/// of the retry path; unset in normal use.
pub const FAULT_ENV: &str = "PIKERNELS_TRANSCODE_FAULT";
/// The unknown option the fault hook passes to ffmpeg.
pub const FAULT_OPTION: &str = "-pikernels-injected-fault";

/// Where ffmpeg and ffprobe are.
#[derive(Clone, Debug)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    /// Checks that both tools run and that ffmpeg has the `encoders` asked for.
    pub fn check(&self, encoders: &[&str]) -> Result<()> {
        for tool in [&self.ffmpeg, &self.ffprobe] {
            let mut cmd = Command::new(tool);
            cmd.arg("-version");
            capture(cmd)
                .map_err(|e| anyhow!("cannot run {} (is ffmpeg installed and on PATH?): {e:#}", tool.display()))?;
        }
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-hide_banner", "-encoders"]);
        let list = String::from_utf8_lossy(&capture(cmd)?).into_owned();
        for enc in encoders {
            if !list.lines().any(|l| l.split_whitespace().nth(1) == Some(enc)) {
                bail!("{} has no encoder '{enc}' (see `ffmpeg -encoders`)", self.ffmpeg.display());
            }
        }
        Ok(())
    }

    fn ffmpeg(&self) -> Command {
        let mut cmd = Command::new(&self.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"]);
        cmd
    }
}

/// How to encode.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// ffmpeg video encoder (`-c:v`).
    pub codec: String,
    /// Encoder preset (`-preset`).
    pub preset: String,
    /// Constant rate factor (`-crf`).
    pub crf: u32,
    /// ffmpeg audio encoder (`-c:a`).
    pub audio_codec: String,
    /// Audio bit rate (`-b:a`), e.g. `128k`.
    pub audio_bitrate: String,
    /// Extra arguments, placed after the encoder options of every video encode.
    pub extra: Vec<String>,
}

impl Settings {
    fn video_args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["-c:v", &self.codec, "-preset", &self.preset, "-crf"].map(String::from).into();
        a.push(self.crf.to_string());
        a.extend(self.extra.iter().cloned());
        a
    }

    fn audio_args(&self) -> Vec<String> {
        ["-c:a", &self.audio_codec, "-b:a", &self.audio_bitrate].map(String::from).into()
    }
}

/// What ffprobe says about a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Container duration in seconds.
    pub duration_s: f64,
    /// Container format name(s), e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
    /// The first video stream's codec.
    pub video_codec: String,
    /// Its frame rate as a fraction.
    pub fps: (u64, u64),
    /// Its frame count (packets counted by reading the whole file).
    pub frames: u64,
    /// Number of audio streams.
    pub audio_streams: usize,
}

impl Probe {
    /// Seconds per frame.
    pub fn frame_s(&self) -> f64 {
        self.fps.1 as f64 / self.fps.0 as f64
    }

    /// Frames per second.
    pub fn fps_f64(&self) -> f64 {
        self.fps.0 as f64 / self.fps.1 as f64
    }
}

/// Probes `path`: a clear error if it is missing, empty, not media, or has
/// no video stream.
pub fn probe(tools: &Tools, path: &Path) -> Result<Probe> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read the input {}", path.display()))?;
    if meta.is_dir() {
        bail!("the input {} is a directory, not a video file", path.display());
    }
    if meta.len() == 0 {
        bail!("the input {} is empty", path.display());
    }
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-count_packets", "-show_entries"])
        .arg("format=duration,format_name:stream=codec_type,codec_name,avg_frame_rate,r_frame_rate,nb_read_packets:stream_disposition=attached_pic")
        .args(["-of", "json"])
        .arg(path);
    let json = capture(cmd).with_context(|| format!("{} is not a readable video file", path.display()))?;
    parse_probe(&json).with_context(|| format!("{} is not a usable video file", path.display()))
}

/// Parses the JSON of [`probe`]'s ffprobe call.
pub fn parse_probe(json: &[u8]) -> Result<Probe> {
    let v: Value = serde_json::from_slice(json).context("ffprobe printed no JSON")?;
    let format = v["format"]["format_name"].as_str().unwrap_or("").to_string();
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let is = |s: &Value, t: &str| s["codec_type"].as_str() == Some(t);
    let video = streams
        .iter()
        .find(|s| is(s, "video") && s["disposition"]["attached_pic"].as_i64() != Some(1))
        .ok_or_else(|| anyhow!("it has no video stream"))?;
    let frames: u64 = video["nb_read_packets"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    let fps = [&video["avg_frame_rate"], &video["r_frame_rate"]]
        .iter()
        .find_map(|r| parse_rate(r.as_str()?))
        .ok_or_else(|| anyhow!("its video stream has no frame rate"))?;
    let duration_s: f64 = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    if format.contains("image2") || format.ends_with("_pipe") || frames < 2 {
        bail!("it is a still image ({format}, {frames} frame), not a video");
    }
    if !(duration_s.is_finite() && duration_s > 0.0) {
        bail!("it has no duration");
    }
    let (num, den) = fps;
    let expected = duration_s * num as f64 / den as f64;
    if (frames as f64) < TRUNCATED_FRACTION * expected - 2.0 {
        bail!(
            "it is truncated or damaged: its header says {duration_s:.3} s (about {expected:.0} frames at {:.3} fps), but only {frames} frames can be read",
            num as f64 / den as f64
        );
    }
    Ok(Probe {
        duration_s,
        format,
        video_codec: video["codec_name"].as_str().unwrap_or("?").to_string(),
        fps,
        frames,
        audio_streams: streams.iter().filter(|s| is(s, "audio")).count(),
    })
}

fn parse_rate(r: &str) -> Option<(u64, u64)> {
    let (n, d) = r.split_once('/')?;
    let (n, d): (u64, u64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

/// The default segment length for a video of `duration_s` seconds on
/// `ranks` ranks: several segments per rank, within sensible bounds.
pub fn default_segment_seconds(duration_s: f64, ranks: usize) -> f64 {
    (duration_s / (ranks as f64 * SEGMENTS_PER_RANK)).clamp(MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS)
}

/// One piece of the input, cut at a keyframe.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Position in time order (0 first).
    pub index: usize,
    /// File name inside the split directory.
    pub name: String,
    /// Start in the input, seconds.
    pub start_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
}

/// Splits the first video stream of `input` into NUT segments in `dir`,
/// cut at the first keyframe after every `seconds` (stream copy, no
/// decoding). Returns them in time order.
pub fn split(tools: &Tools, input: &Path, dir: &Path, seconds: f64) -> Result<Vec<Segment>> {
    let list = dir.join("segments.csv");
    let mut cmd = tools.ffmpeg();
    cmd.arg("-i").arg(input);
    cmd.args(["-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_format", "nut", "-reset_timestamps", "1"]);
    cmd.args(["-segment_time", &format!("{seconds}"), "-segment_list_type", "csv", "-segment_list"]);
    cmd.arg(&list).arg(dir.join("seg-%05d.nut"));
    capture(cmd).with_context(|| format!("cannot split {} into segments", input.display()))?;
    let text = std::fs::read_to_string(&list).with_context(|| format!("cannot read {}", list.display()))?;
    let _ = std::fs::remove_file(&list);
    let segments = parse_segment_list(&text)?;
    if segments.is_empty() {
        bail!("splitting {} gave no segments", input.display());
    }
    Ok(segments)
}

/// Parses the segment muxer's CSV list (`name,start,end` per line).
pub fn parse_segment_list(text: &str) -> Result<Vec<Segment>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            let mut f = line.rsplitn(3, ',');
            let (end, start, name) = (f.next(), f.next(), f.next());
            let num = |s: Option<&str>| s.and_then(|s| s.trim().parse::<f64>().ok());
            match (name, num(start), num(end)) {
                (Some(name), Some(start_s), Some(end_s)) => {
                    Ok(Segment { index, name: name.to_string(), start_s, duration_s: (end_s - start_s).max(0.0) })
                }
                _ => Err(anyhow!("unexpected line in ffmpeg's segment list: {line:?}")),
            }
        })
        .collect()
}

/// The segments in the order they are handed out: longest first (ties in
/// time order), so the last pieces to finish are short ones.
pub fn longest_first(mut segments: Vec<Segment>) -> Vec<Segment> {
    segments.sort_by(|a, b| b.duration_s.total_cmp(&a.duration_s).then(a.index.cmp(&b.index)));
    segments
}

/// Transcodes one segment's video; `Err` carries ffmpeg's stderr tail.
/// `fault` adds the fault hook's unknown option (see [`FAULT_ENV`]).
pub fn transcode_segment(
    tools: &Tools,
    settings: &Settings,
    input: &Path,
    output: &Path,
    fault: bool,
) -> Result<(), String> {
    let mut cmd = tools.ffmpeg();
    cmd.arg("-i").arg(input).args(["-map", "0:v:0"]).args(settings.video_args());
    if fault {
        cmd.arg(FAULT_OPTION);
    }
    cmd.arg(output);
    capture(cmd).map(drop).map_err(|e| format!("{e:#}"))
}

/// Encodes every audio stream of `input` once into `output` (an MP4, which
/// keeps the encoder's priming in its edit list, so the join's stream copy
/// stays aligned with the video).
pub fn encode_audio(tools: &Tools, settings: &Settings, input: &Path, output: &Path) -> Result<()> {
    let mut cmd = tools.ffmpeg();
    cmd.arg("-i").arg(input).args(["-vn", "-map", "0:a"]).args(settings.audio_args()).arg(output);
    capture(cmd).with_context(|| format!("cannot encode the audio of {}", input.display()))?;
    Ok(())
}

/// Joins `parts` (in order) and the encoded `audio`, if any, all by stream
/// copy, writing `output` (format from its extension).
pub fn concat(tools: &Tools, parts: &[PathBuf], list: &Path, audio: Option<&Path>, output: &Path) -> Result<()> {
    std::fs::write(list, concat_list(parts)).with_context(|| format!("cannot write {}", list.display()))?;
    let mut cmd = tools.ffmpeg();
    cmd.args(["-f", "concat", "-safe", "0", "-i"]).arg(list);
    if let Some(audio) = audio {
        cmd.arg("-i").arg(audio).args(["-map", "1:a"]);
    }
    cmd.args(["-map", "0:v", "-c", "copy"]).arg(output);
    capture(cmd).with_context(|| format!("cannot join the segments into {}", output.display()))?;
    Ok(())
}

/// The whole transcode in one ffmpeg process (the `--baseline` comparison).
pub fn transcode_whole(tools: &Tools, settings: &Settings, input: &Path, output: &Path) -> Result<()> {
    let mut cmd = tools.ffmpeg();
    cmd.arg("-i").arg(input).args(["-map", "0:v:0", "-map", "0:a?"]);
    cmd.args(settings.video_args()).args(settings.audio_args()).arg(output);
    capture(cmd).with_context(|| format!("the one-process baseline transcode of {} failed", input.display()))?;
    Ok(())
}

/// A concat demuxer script naming `parts` in order, each path quoted.
pub fn concat_list(parts: &[PathBuf]) -> String {
    parts.iter().map(|p| format!("file '{}'\n", p.to_string_lossy().replace('\'', "'\\''"))).collect()
}

/// Runs `cmd`, returning its stdout; on failure the error carries the exit
/// status and the last [`STDERR_TAIL_BYTES`] of stderr. stderr is drained on
/// a thread while stdout is read, so neither pipe can fill and stall the tool.
pub fn capture(mut cmd: Command) -> Result<Vec<u8>> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // If this rank dies (SIGKILL, MPI_Abort, a stop signal's _exit), the
        // tool gets SIGKILL instead of running on as an orphan.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut err = child.stderr.take().expect("piped stderr");
    let tail = std::thread::spawn(move || {
        let mut tail = Tail::new(STDERR_TAIL_BYTES);
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.push(&buf[..n]);
        }
        tail.text()
    });
    let mut out = Vec::new();
    let read = child.stdout.take().expect("piped stdout").read_to_end(&mut out);
    let status = child.wait().with_context(|| format!("cannot wait for {program}"))?;
    let tail = tail.join().unwrap_or_default();
    read.with_context(|| format!("cannot read the output of {program}"))?;
    if !status.success() {
        let said = tail.trim();
        bail!("{program} failed ({status}){}{said}", if said.is_empty() { "" } else { ": " });
    }
    Ok(out)
}

/// The last `cap` bytes of a stream, starting at a line boundary where one
/// falls inside them.
pub struct Tail {
    cap: usize,
    buf: Vec<u8>,
    cut: bool,
    /// Whether `buf` starts at the beginning of a line.
    starts_line: bool,
}

impl Tail {
    pub fn new(cap: usize) -> Tail {
        Tail { cap, buf: Vec::new(), cut: false, starts_line: true }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > 2 * self.cap {
            let drop = self.buf.len() - self.cap;
            self.starts_line = self.buf[drop - 1] == b'\n';
            self.buf.drain(..drop);
            self.cut = true;
        }
    }

    pub fn text(&self) -> String {
        let mut start = self.buf.len().saturating_sub(self.cap);
        let cut = self.cut || start > 0;
        let at_line_start = if start > 0 { self.buf[start - 1] == b'\n' } else { self.starts_line };
        if cut && !at_line_start {
            if let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
                if start + nl + 1 < self.buf.len() {
                    start += nl + 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&self.buf[start..]);
        if cut {
            format!("...\n{text}")
        } else {
            text.into_owned()
        }
    }
}

/// A fault the hook injects (see [`FAULT_ENV`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The segment whose ffmpeg fails.
    pub segment: usize,
    /// Only the first attempt fails (so the retry succeeds).
    pub first_only: bool,
}

impl Fault {
    /// Whether attempt `attempt` (0 first) at `segment` fails.
    pub fn hits(self, segment: usize, attempt: u32) -> bool {
        segment == self.segment && (attempt == 0 || !self.first_only)
    }
}

/// Parses the fault hook's value, `SEG` or `SEG:first`.
pub fn parse_fault(v: &str) -> Result<Fault, String> {
    let bad = || format!("{FAULT_ENV}={v:?} is not SEGMENT or SEGMENT:first");
    let (seg, first_only) = match v.split_once(':') {
        Some((s, "first")) => (s, true),
        Some(_) => return Err(bad()),
        None => (v, false),
    };
    Ok(Fault { segment: seg.trim().parse().map_err(|_| bad())?, first_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = r#"{"programs":[],"streams":[
        {"codec_name":"h264","codec_type":"video","r_frame_rate":"24000/1001","avg_frame_rate":"24000/1001","nb_read_packets":"120","disposition":{"attached_pic":0}},
        {"codec_name":"aac","codec_type":"audio","r_frame_rate":"0/0","avg_frame_rate":"0/0","nb_read_packets":"236","disposition":{"attached_pic":0}}],
        "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"5.005000"}}"#;

    #[test]
    fn probe_json_is_read() {
        let p = parse_probe(PROBE.as_bytes()).unwrap();
        assert_eq!(p.fps, (24000, 1001));
        assert_eq!((p.frames, p.audio_streams, p.video_codec.as_str()), (120, 1, "h264"));
        assert!((p.duration_s - 5.005).abs() < 1e-12);
        assert!((p.frame_s() - 1001.0 / 24000.0).abs() < 1e-15);
    }

    #[test]
    fn audio_only_and_still_images_are_refused() {
        let audio = r#"{"streams":[{"codec_type":"audio","codec_name":"pcm_s16le"}],"format":{"format_name":"wav","duration":"2.0"}}"#;
        assert!(parse_probe(audio.as_bytes()).unwrap_err().to_string().contains("no video stream"));
        let png = r#"{"streams":[{"codec_type":"video","codec_name":"png","avg_frame_rate":"25/1","nb_read_packets":"1"}],"format":{"format_name":"png_pipe","duration":"0.04"}}"#;
        assert!(parse_probe(png.as_bytes()).unwrap_err().to_string().contains("still image"));
        assert!(parse_probe(b"not json").is_err());
        let cut = PROBE.replace("\"120\"", "\"20\"");
        assert!(parse_probe(cut.as_bytes()).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn segment_list_is_read_and_ordered_longest_first() {
        let text = "seg-00000.nut,0.000000,1.584917\nseg-00001.nut,1.584917,2.585917\nseg,odd.nut,2.585917,4.587917\n";
        let s = parse_segment_list(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].name, "seg,odd.nut");
        assert!((s[1].duration_s - 1.001).abs() < 1e-9);
        let order: Vec<usize> = longest_first(s).iter().map(|s| s.index).collect();
        assert_eq!(order, vec![2, 0, 1]);
        assert!(parse_segment_list("garbage\n").is_err());
    }

    #[test]
    fn default_segments_give_every_rank_several() {
        assert_eq!(default_segment_seconds(3600.0, 4), 60.0);
        assert_eq!(default_segment_seconds(480.0, 4), 30.0);
        assert_eq!(default_segment_seconds(3.0, 8), MIN_SEGMENT_SECONDS);
    }

    #[test]
    fn concat_list_quotes_paths() {
        let l = concat_list(&[PathBuf::from("/t/a.mp4"), PathBuf::from("/t/it's.mp4")]);
        assert_eq!(l, "file '/t/a.mp4'\nfile '/t/it'\\''s.mp4'\n");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::new(16);
        t.push(b"short\n");
        assert_eq!(t.text(), "short\n");
        for i in 0..100 {
            t.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(t.text(), "...\nline 98\nline 99\n");
    }

    #[test]
    fn fault_hook_values_parse() {
        let every = parse_fault("3").unwrap();
        assert!(every.hits(3, 0) && every.hits(3, 1) && !every.hits(2, 0));
        let first = parse_fault("2:first").unwrap();
        assert!(first.hits(2, 0) && !first.hits(2, 1));
        assert!(parse_fault("x").is_err());
        assert!(parse_fault("1:last").is_err());
    }

    #[test]
    fn failing_tools_report_their_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo 'bad thing' >&2; exit 3"]);
        let e = format!("{:#}", capture(cmd).unwrap_err());
        assert!(e.contains("bad thing") && e.contains("exit status: 3"), "{e}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out"]);
        assert_eq!(capture(cmd).unwrap(), b"out\n");
        assert!(capture(Command::new("/nonexistent/tool")).is_err());
    }
}
