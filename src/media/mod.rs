//! ffmpeg and ffprobe: probing, splitting at keyframes, transcoding a
//! segment, joining segments, a trial of all three on the input's first half
//! second (so that options ffmpeg refuses are found before any work), and
//! running the tools: what they say when they fail, a time limit past which
//! a tool and every process it started are killed, and registration with
//! `signals`, so that a stop signal kills a running tool before it removes
//! the temporary files.
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

use crate::signals;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
/// Longest `--segment-seconds` accepted: a day. A longer segment is one
/// segment for any real video, and numbers far beyond it (1e308) are typos
/// that ffmpeg's segment muxer would only refuse after the job had started.
pub const MAX_SEGMENT_OPTION_SECONDS: f64 = 86_400.0;

/// The default time limit of one segment's encode ([`default_item_limit`]):
/// a fixed allowance for starting ffmpeg and its encoder on a loaded machine...
pub const ITEM_LIMIT_BASE: Duration = Duration::from_secs(600);
/// ... plus this many seconds per second of the segment: an encode a hundred
/// times slower than real time. The default libx264 `veryfast` runs faster
/// than real time at 1080p on one core, so only an ffmpeg that is stuck (or a
/// deliberately slow encoder, which should set `--item-timeout`) reaches it.
pub const ITEM_LIMIT_PER_SECOND: f64 = 100.0;

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

/// Which of ffmpeg's options take a value, read from its own help
/// (`ffmpeg -h full`): a main option's line reads `-name value  text`
/// (`-an  text` takes none); every codec, format or filter option
/// (`  -crf  <int>  ...`) takes one.
pub struct OptionTable {
    takes_value: std::collections::HashMap<String, bool>,
}

/// ffmpeg's main options that take a value although their help line names
/// none (ffmpeg 5 and 6: `-fps_mode  set framerate mode ...`).
const VALUE_UNNAMED: &[&str] = &[
    "apad",
    "async",
    "discard",
    "disposition",
    "filter_complex_threads",
    "filter_threads",
    "fps_mode",
    "frame_drop_threshold",
    "guess_layout_max",
    "thread_queue_size",
    "top",
    "vsync",
];

impl OptionTable {
    /// This ffmpeg's options.
    pub fn of(tools: &Tools) -> Result<OptionTable> {
        let mut cmd = Command::new(&tools.ffmpeg);
        cmd.args(["-hide_banner", "-h", "full"]);
        Ok(OptionTable::parse(&String::from_utf8_lossy(&capture(cmd)?)))
    }

    fn parse(help: &str) -> OptionTable {
        let mut takes_value = std::collections::HashMap::new();
        for line in help.lines() {
            if let Some(rest) = line.strip_prefix('-') {
                // The option field ends at the first run of two spaces.
                let field = rest.split("  ").next().unwrap_or("");
                let mut words = field.split_whitespace();
                if let Some(name) = words.next() {
                    let named = words.next().is_some() || VALUE_UNNAMED.contains(&name);
                    takes_value.entry(name.to_string()).or_insert(named);
                }
            } else if let Some(rest) = line.strip_prefix("  -") {
                // A codec's or format's own option; a main option of the same
                // name (listed first: `-y`, `-stats`) is the one ffmpeg reads.
                if let Some(name) = rest.split_whitespace().next() {
                    takes_value.entry(name.to_string()).or_insert(true);
                }
            }
        }
        OptionTable { takes_value }
    }

    /// Whether option `-name` (`-c:v` is `c`'s) takes a value; `None` for an
    /// option this ffmpeg does not know (its trial refuses it).
    fn takes_value(&self, name: &str) -> Option<bool> {
        let base = name.split(':').next().unwrap_or(name);
        self.takes_value.get(base).copied().or_else(|| {
            // A boolean main option negated: -noautorotate.
            base.strip_prefix("no").and_then(|b| self.takes_value.get(b)).filter(|v| !**v).map(|_| false)
        })
    }

    /// Checks that `args` (placed before an output on ffmpeg's command line)
    /// are options and their values only: a word that is no option's value
    /// would be read as one more output file, which ffmpeg (told `-y`)
    /// writes over whatever is there: the input, or any other file.
    pub fn check_extra(&self, args: &[String]) -> Result<(), String> {
        let mut value_due = false;
        for arg in args {
            if value_due {
                value_due = false;
            } else if let Some(name) = arg.strip_prefix('-').filter(|n| !n.is_empty()) {
                value_due = self.takes_value(name).unwrap_or(false);
            } else {
                return Err(format!(
                    "--ffmpeg-arg {arg}: ffmpeg would read it as one more output file (it is the value of no \
                     option before it) and write over whatever is there; pass only options and their values"
                ));
            }
        }
        Ok(())
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
    let meta = crate::output::check_input(path, "input")?;
    if meta.len() == 0 {
        bail!("the input {} is empty", path.display());
    }
    let mut cmd = Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-count_packets", "-show_entries"])
        .arg("format=duration,format_name:stream=codec_type,codec_name,avg_frame_rate,r_frame_rate,nb_read_packets:stream_disposition=attached_pic")
        .args(["-of", "json"])
        .arg(tool_path(path));
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

/// How long the encode of a segment of `segment_s` seconds may take by
/// default before ffmpeg is taken for stuck and killed: [`ITEM_LIMIT_BASE`]
/// plus [`ITEM_LIMIT_PER_SECOND`] times its length (10 minutes and 10
/// seconds for a 0.1-second piece, 1 hour 50 minutes for a 60-second one).
pub fn default_item_limit(segment_s: f64) -> Duration {
    let extra = (segment_s.max(0.0) * ITEM_LIMIT_PER_SECOND).min(MAX_SEGMENT_OPTION_SECONDS * ITEM_LIMIT_PER_SECOND);
    ITEM_LIMIT_BASE + Duration::from_secs_f64(extra)
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
    cmd.arg("-i").arg(tool_path(input));
    cmd.args(["-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_format", "nut", "-reset_timestamps", "1"]);
    cmd.args(["-segment_time", &format!("{seconds}"), "-segment_list_type", "csv", "-segment_list"]);
    // The pattern's directory part is literal: a `%` there is doubled.
    let pattern = tool_path(dir).to_string_lossy().replace('%', "%%") + "/seg-%05d.nut";
    cmd.arg(tool_path(&list)).arg(pattern);
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

/// Transcodes one segment's video; `Err` carries ffmpeg's stderr tail (a
/// [`ToolFailure`]). `fault` adds the fault hook's unknown option (see
/// [`FAULT_ENV`]); past `limit`, ffmpeg is killed.
pub fn transcode_segment(
    tools: &Tools,
    settings: &Settings,
    input: &Path,
    output: &Path,
    fault: bool,
    limit: Option<Duration>,
) -> Result<()> {
    let mut cmd = video_command(tools, settings, &[], input, fault);
    cmd.arg(tool_path(output));
    capture_within(cmd, limit).map(drop)
}

/// ffmpeg encoding the first video stream of `input` (after the input
/// options `before`) exactly as every segment is encoded; the output path
/// is still to be added.
fn video_command(tools: &Tools, settings: &Settings, before: &[&str], input: &Path, fault: bool) -> Command {
    let mut cmd = tools.ffmpeg();
    cmd.args(before).arg("-i").arg(tool_path(input)).args(["-map", "0:v:0"]).args(settings.video_args());
    if fault {
        cmd.arg(FAULT_OPTION);
    }
    cmd
}

/// ffmpeg encoding every audio stream of `input` as the job does; the output
/// path is still to be added.
fn audio_command(tools: &Tools, settings: &Settings, before: &[&str], input: &Path) -> Command {
    let mut cmd = tools.ffmpeg();
    cmd.args(before).arg("-i").arg(tool_path(input)).args(["-vn", "-map", "0:a"]).args(settings.audio_args());
    cmd
}

/// ffmpeg joining the parts listed in `list` and the `audio` by stream copy;
/// the output path is still to be added.
fn concat_command(tools: &Tools, list: &Path, audio: Option<&Path>) -> Command {
    let mut cmd = tools.ffmpeg();
    cmd.args(["-f", "concat", "-safe", "0", "-i"]).arg(tool_path(list));
    if let Some(audio) = audio {
        cmd.arg("-i").arg(tool_path(audio)).args(["-map", "1:a"]);
    }
    cmd.args(["-map", "0:v", "-c", "copy"]);
    cmd
}

/// Encodes every audio stream of `input` once into `output` (an MP4, which
/// keeps the encoder's priming in its edit list, so the join's stream copy
/// stays aligned with the video).
pub fn encode_audio(tools: &Tools, settings: &Settings, input: &Path, output: &Path) -> Result<()> {
    let mut cmd = audio_command(tools, settings, &[], input);
    cmd.arg(tool_path(output));
    capture(cmd).with_context(|| format!("cannot encode the audio of {}", input.display()))?;
    Ok(())
}

/// Joins `parts` (in order) and the encoded `audio`, if any, all by stream
/// copy, writing `output` (format from its extension).
pub fn concat(tools: &Tools, parts: &[PathBuf], list: &Path, audio: Option<&Path>, output: &Path) -> Result<()> {
    std::fs::write(list, concat_list(parts)).with_context(|| format!("cannot write {}", list.display()))?;
    let mut cmd = concat_command(tools, list, audio);
    cmd.arg(tool_path(output));
    capture(cmd).with_context(|| format!("cannot join the segments into {}", output.display()))?;
    Ok(())
}

/// The whole transcode in one ffmpeg process (the `--baseline` comparison).
pub fn transcode_whole(tools: &Tools, settings: &Settings, input: &Path, output: &Path) -> Result<()> {
    let mut cmd = tools.ffmpeg();
    cmd.arg("-i").arg(tool_path(input)).args(["-map", "0:v:0", "-map", "0:a?"]);
    cmd.args(settings.video_args()).args(settings.audio_args()).arg(tool_path(output));
    capture(cmd).with_context(|| format!("the one-process baseline transcode of {} failed", input.display()))?;
    Ok(())
}

/// Seconds of the input the trial run ([`trial`]) encodes.
pub const TRIAL_SECONDS: f64 = 0.5;

/// Which step of the job's pipeline ffmpeg refused in [`trial`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Encoding the video as every segment is (codec, preset, CRF, extra arguments).
    Video,
    /// Encoding the audio (audio codec and bit rate).
    Audio,
    /// Joining video and audio into the output's container (its extension).
    Container,
}

/// What [`trial`] found wrong.
#[derive(Debug)]
pub struct Refusal {
    pub stage: Stage,
    /// The tool's failure (its stderr tail, or the time limit).
    pub failure: ToolFailure,
}

/// The job's own pipeline on the first [`TRIAL_SECONDS`] of `input`, in
/// `dir`: the video encoded by the very command every segment uses, the
/// audio (when `audio`) by the command of the job's audio encode, both
/// joined by the join's command into a file named `output_name` (so the
/// container comes from the same extension). Every option ffmpeg judges is
/// judged here, in a second or so, before any segment is cut. Each step is
/// killed past `limit`. The caller removes `dir`.
pub fn trial(
    tools: &Tools,
    settings: &Settings,
    input: &Path,
    audio: bool,
    dir: &Path,
    output_name: &std::ffi::OsStr,
    limit: Option<Duration>,
) -> std::result::Result<(), Refusal> {
    let seconds = format!("{TRIAL_SECONDS}");
    let before = ["-t", seconds.as_str()];
    let refused = |stage: Stage| {
        move |e: anyhow::Error| {
            let failure = match e.downcast::<ToolFailure>() {
                Ok(f) => f,
                Err(e) => {
                    ToolFailure::Failed { program: "ffmpeg".into(), status: "not run".into(), stderr: format!("{e:#}") }
                }
            };
            Refusal { stage, failure }
        }
    };
    let video = dir.join("video.mp4");
    let mut cmd = video_command(tools, settings, &before, input, false);
    cmd.arg(tool_path(&video));
    capture_within(cmd, limit).map_err(refused(Stage::Video))?;
    let audio = audio.then(|| dir.join("audio.mp4"));
    if let Some(path) = &audio {
        let mut cmd = audio_command(tools, settings, &before, input);
        cmd.arg(tool_path(path));
        capture_within(cmd, limit).map_err(refused(Stage::Audio))?;
    }
    let list = dir.join("concat.txt");
    std::fs::write(&list, concat_list(std::slice::from_ref(&video)))
        .map_err(|e| refused(Stage::Container)(anyhow!("cannot write {}: {e}", list.display())))?;
    let mut cmd = concat_command(tools, &list, audio.as_deref());
    cmd.arg(tool_path(&dir.join(output_name)));
    capture_within(cmd, limit).map_err(refused(Stage::Container))?;
    Ok(())
}

/// The lines of a tool's stderr that say what went wrong: at most `max`,
/// without the `[component @ 0x...]` prefixes, skipping ffmpeg's generic
/// follow-ups ("Error initializing output stream ...") when a specific line
/// precedes them; the last line when nothing else is left.
pub fn reason(stderr: &str, max: usize) -> Vec<String> {
    const GENERIC: [&str; 10] = [
        "Error initializing output stream",
        "Could not write header for output file",
        "Error splitting the argument list",
        "Error while processing the decoded data",
        "Failed to inject frame into filter network",
        "Error reinitializing filters",
        "Conversion failed",
        "Error opening output file",
        "Error while opening encoder",
        "...",
    ];
    let lines: Vec<String> = stderr.lines().map(strip_component).filter(|l| !l.is_empty()).collect();
    let mut said: Vec<String> = Vec::new();
    for l in &lines {
        if !GENERIC.iter().any(|g| l.starts_with(g)) && !said.contains(l) && said.len() < max {
            said.push(l.clone());
        }
    }
    if said.is_empty() {
        said.extend(lines.last().cloned());
    }
    said
}

/// `[libx264 @ 0x55d0c8a3b3c0] Error setting ...` -> `libx264: Error setting ...`
/// (the address says nothing to a reader); nested prefixes likewise.
fn strip_component(line: &str) -> String {
    let mut rest = line.trim();
    let mut names = Vec::new();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some((tag, after)) = inner.split_once(']') else { break };
        let Some((name, _addr)) = tag.split_once(" @ ") else { break };
        names.push(name.trim());
        rest = after.trim_start();
    }
    match names.last() {
        Some(&name) if name != "NULL" => format!("{name}: {rest}"),
        _ => rest.to_string(),
    }
}

/// A concat demuxer script naming `parts` in order, each path quoted and
/// absolute: the demuxer reads a relative entry relative to the script's own
/// directory (not ours), and an entry like `http:x` as a URL.
pub fn concat_list(parts: &[PathBuf]) -> String {
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    parts.iter().map(|p| format!("file '{}'\n", absolute(p).to_string_lossy().replace('\'', "'\\''"))).collect()
}

/// `path` as an argument to a tool (ffmpeg, ffprobe): absolute paths as
/// they are, relative ones behind `./`, so that no path is ever read as an
/// option (`-clip.mp4`), as standard input or output (`-`), or as a URL
/// (`http:clip.mp4`, `pipe:1`: ffmpeg takes any `letters:` prefix for a
/// protocol, but never one after a `/`).
pub fn tool_path(path: &Path) -> std::ffi::OsString {
    if path.has_root() {
        return path.as_os_str().to_owned();
    }
    let mut arg = std::ffi::OsString::from("./");
    arg.push(path);
    arg
}

/// Runs `cmd`, returning its stdout; on failure the error carries the exit
/// status and the last [`STDERR_TAIL_BYTES`] of stderr (a [`ToolFailure`]).
pub fn capture(cmd: Command) -> Result<Vec<u8>> {
    capture_within(cmd, None)
}

/// Why a tool run by [`capture_within`] did not succeed; the error chain of
/// its `Err` holds one (see `anyhow::Error::downcast_ref`).
#[derive(Debug)]
pub enum ToolFailure {
    /// It ended unsuccessfully: its exit status and the tail of its stderr.
    Failed { program: String, status: String, stderr: String },
    /// It was still running when its time limit passed, and was killed.
    TimedOut { program: String, limit: Duration },
}

impl std::fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolFailure::Failed { program, status, stderr } => {
                let said = stderr.trim();
                write!(f, "{program} failed ({status}){}{said}", if said.is_empty() { "" } else { ": " })
            }
            ToolFailure::TimedOut { program, limit } => {
                write!(f, "{program} did not finish within {:?} and was killed", limit)
            }
        }
    }
}

impl std::error::Error for ToolFailure {}

/// Runs `cmd` as [`capture`] does, killing it (and every process it started)
/// once `limit` has passed. The tool runs in a process group of its own,
/// registered with `signals` so that a stop signal kills it before the
/// temporary files are removed, and it gets SIGKILL if this process dies.
/// stdout and stderr are drained on threads, so neither pipe can fill and
/// stall the tool; the wait polls and sleeps only when there is a limit.
pub fn capture_within(mut cmd: Command, limit: Option<Duration>) -> Result<Vec<u8>> {
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
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let (mut child, running) = signals::spawn(&mut cmd).with_context(|| format!("cannot start {program}"))?;
    let start = Instant::now();
    let (out_tx, out_rx) = mpsc::channel();
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = out_tx.send(out_pipe.read_to_end(&mut out).map(|_| out));
    });
    let (err_tx, err_rx) = mpsc::channel();
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut tail = Tail::new(STDERR_TAIL_BYTES);
        let mut buf = [0u8; 8192];
        while let Ok(n) = err_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.push(&buf[..n]);
        }
        let _ = err_tx.send(tail.text());
    });
    let mut killed = false;
    while !running.exited() {
        if !killed && limit.is_some_and(|l| start.elapsed() >= l) {
            running.kill();
            killed = true;
        }
        std::thread::sleep(TOOL_POLL);
    }
    drop(running); // forgotten before it is reaped (see signals::Running)
    let status = child.wait().with_context(|| format!("cannot wait for {program}"))?;
    if killed {
        return Err(ToolFailure::TimedOut { program, limit: limit.unwrap_or_default() }.into());
    }
    // The pipes close when the tool ends, unless it left a process behind
    // holding them: do not wait for that one for long.
    let out = out_rx.recv_timeout(PIPES_GRACE).unwrap_or_else(|_| Ok(Vec::new()));
    let stderr = err_rx.recv_timeout(PIPES_GRACE).unwrap_or_default();
    let out = out.with_context(|| format!("cannot read the output of {program}"))?;
    if !status.success() {
        return Err(ToolFailure::Failed { program, status: status.to_string(), stderr }.into());
    }
    Ok(out)
}

/// How often [`capture_within`] looks whether its tool has ended. Tools run
/// for a tenth of a second at least, so this costs nothing measurable, and
/// the waiting thread sleeps in between.
const TOOL_POLL: Duration = Duration::from_millis(5);
/// How long [`capture_within`] waits for a tool's pipes to close after it ended.
const PIPES_GRACE: Duration = Duration::from_secs(5);

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
    fn the_reason_is_the_specific_lines_without_addresses() {
        let preset = "x264 [error]: invalid preset 'bogus'\n[libx264 @ 0x5593f7e27b80] Error setting preset/tune bogus/(null).\nError initializing output stream 0:0 -- Error while opening encoder for output stream #0:0 - maybe incorrect parameters such as bit_rate, rate, width or height\n";
        assert_eq!(
            reason(preset, 3),
            ["x264 [error]: invalid preset 'bogus'", "libx264: Error setting preset/tune bogus/(null)."]
        );
        let nested = "[aac @ 0x55] [Eval @ 0x7f] Undefined constant or missing '(' in 'lots'\n[aac @ 0x55] Unable to parse option value \"lots\"\n";
        assert_eq!(reason(nested, 1), ["Eval: Undefined constant or missing '(' in 'lots'"]);
        let format = "[NULL @ 0x55e1] Unable to find a suitable output format for 'o.txt'\no.txt: Invalid argument\n";
        assert_eq!(
            reason(format, 3),
            ["Unable to find a suitable output format for 'o.txt'", "o.txt: Invalid argument"]
        );
        assert_eq!(reason("Conversion failed!\n", 3), ["Conversion failed!"], "only generic lines: the last one");
        assert!(reason("", 3).is_empty());
    }

    #[test]
    fn the_default_item_limit_grows_with_the_segment() {
        assert_eq!(default_item_limit(0.0), ITEM_LIMIT_BASE);
        assert_eq!(default_item_limit(60.0), Duration::from_secs(600 + 6000));
        assert!(default_item_limit(2.0) < default_item_limit(3.0));
        assert_eq!(default_item_limit(f64::NAN), ITEM_LIMIT_BASE, "a missing length gets the base");
        assert!(default_item_limit(1e308) <= Duration::from_secs(600 + 8_640_000));
    }

    #[test]
    fn a_tool_past_its_limit_is_killed_with_its_children() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & sleep 60; echo never"]);
        let t = Instant::now();
        let e = capture_within(cmd, Some(Duration::from_millis(300))).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(30), "killed at the limit, not after the sleeps");
        assert!(matches!(e.downcast_ref::<ToolFailure>(), Some(ToolFailure::TimedOut { .. })), "{e:#}");
        assert!(format!("{e:#}").contains("did not finish within"), "{e:#}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo quick"]);
        assert_eq!(capture_within(cmd, Some(Duration::from_secs(60))).unwrap(), b"quick\n");
    }

    #[test]
    fn concat_list_quotes_paths() {
        let l = concat_list(&[PathBuf::from("/t/a.mp4"), PathBuf::from("/t/it's.mp4")]);
        assert_eq!(l, "file '/t/a.mp4'\nfile '/t/it'\\''s.mp4'\n");
        let here = std::env::current_dir().unwrap();
        assert_eq!(concat_list(&[PathBuf::from("http:x.mp4")]), format!("file '{}/http:x.mp4'\n", here.display()));
    }

    #[test]
    fn extra_arguments_are_options_and_their_values_only() {
        let help = "Main options:\n-y                  overwrite output files\n-vf filter_graph    set video filters\n\
                    -an                 disable audio\n-autorotate         automatically insert rotate filters\n\
                    -fps_mode           set framerate mode\n\
                    -c codec            codec name\nlibx264 AVOptions:\n  -crf               <float>      E..V....... quality\n\
                    some bsf AVOptions:\n  -y                 <int>        ...V....... a codec's own y\n";
        let t = OptionTable::parse(help);
        let ok = |args: &[&str]| t.check_extra(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(
            ok(&["-vf", "realtime", "-an", "-crf", "-5", "-c:v", "libx264", "-noautorotate", "-fps_mode", "cfr"]),
            Ok(())
        );
        let bad: [&[&str]; 5] =
            [&["in.mp4"], &["-an", "in.mp4"], &["-vf", "x", "out.mkv"], &["-noautorotate", "x.mp4"], &["-y", "x.mp4"]];
        for bad in bad {
            let e = ok(bad).unwrap_err();
            assert!(e.contains("one more output file"), "{bad:?}: {e}");
        }
        // An option this ffmpeg does not know is left to its trial, as taking no value.
        assert!(ok(&["-unknown", "x.mp4"]).is_err());
    }

    #[test]
    fn tool_paths_are_never_options_streams_or_urls() {
        for (given, arg) in
            [("-clip.mp4", "./-clip.mp4"), ("-", "./-"), ("http:x.mp4", "./http:x.mp4"), ("d/a.mp4", "./d/a.mp4")]
        {
            assert_eq!(tool_path(Path::new(given)), arg);
        }
        assert_eq!(tool_path(Path::new("/t/-a.mp4")), "/t/-a.mp4");
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
