//! `pikernels transcode`: a video transcoded by every rank at once (seed 001).
//!
//! Rank 0 probes the input (pre-flight, so a bad input ends the job before
//! any work), splits its video at keyframes into NUT segments, and hands them
//! out longest first through the runtime's task farm (`spmd::tasks`): each
//! item carries the segment's bytes (or, with `--shared-dir`, its path), and
//! the transcoded bytes come back the same way, in bounded messages. Every
//! rank works in a private temporary directory registered with
//! `signals` (created and registered as one step). Meanwhile a thread on
//! rank 0 encodes the audio once,
//! from the input (see `media` for why). Rank 0 then joins the parts and the
//! audio with the concat demuxer (stream copy) under a temporary name next to
//! `--output`, checks the result with ffprobe and renames it.
//!
//! Before any of that, in pre-flight, rank 0 runs the job's own ffmpeg
//! commands on the input's first half second (`media::trial`): every option
//! ffmpeg judges (codec, preset, extra arguments, audio bit rate, the
//! output's container) is judged there, and a refusal ends the job with exit
//! status 2 and ffmpeg's reason, before anything is cut or sent.
//!
//! Every segment's ffmpeg runs under a time limit (`--item-timeout`, by
//! default `media::default_item_limit` of the segment's length); past it
//! ffmpeg is killed and the segment fails, so the farm retries it on another
//! rank, and a second timeout ends the job as a second failure does.
//!
//! Names of everything a run creates carry this host and this process's id
//! (`pikernels-transcode-HOST-PID-N` directories,
//! `.pikernels-transcode-HOST-PID-NAME` temporary outputs): a rank killed
//! outright (SIGKILL) cannot clean up, so the next run that writes to the
//! same place removes the leftovers whose process is gone and says so on
//! stderr.
//!
//! This job has its own schedule (an [`SpmdJob`]), so `--comm` does not
//! apply to it.

use super::examples::Examples;
use super::{timed, Finished, Job, Preflight, Ran, SpmdJob, UsageError};
use super::Common;
use crate::media::{self, Probe, Segment, Settings, Stage, ToolFailure, Tools};
use crate::output;
use crate::signals::{self, Tracked};
use crate::size::Size;
use crate::spmd::{self, deadline, tasks, Spmd};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Largest `--chunk-bytes`: one MPI message's count is a 32-bit int.
const MAX_CHUNK_BYTES: u64 = 1 << 30;

/// Runs of `transcode` for the scripts and benchmarks that cover every kernel.
pub const EXAMPLES: Examples = Examples {
    output: Some("--output"),
    small: &[],
    bench: &[],
    simd_paths: false,
    no_small_because: Some("it needs an input video (the tests make one with ffmpeg's test source)"),
    run_keys: &[
        "input", "output", "transport", "retried_segments", "split_s", "farm_s", "audio_s", "join_s", "total_s",
        "speed_x_realtime", "baseline",
    ],
};

/// Options of `transcode` (defaults are the seed's: libx264 veryfast, CRF 28, AAC 128k).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The video to transcode (read by rank 0 only, unless --shared-dir).
    #[arg(long, short = 'i', value_name = "PATH")]
    pub input: PathBuf,
    /// Where rank 0 writes the result; the format follows the extension.
    #[arg(long, value_name = "PATH")]
    pub output: PathBuf,
    /// Target segment length in seconds; cuts fall on the next keyframe
    /// [default: duration / (4 x ranks), between 1 and 60].
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub segment_seconds: Option<f64>,
    /// ffmpeg video encoder.
    #[arg(long, value_name = "ENCODER", default_value = "libx264")]
    pub codec: String,
    /// Encoder preset.
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Constant rate factor (0-63; lower is better quality).
    #[arg(long, default_value_t = 28, allow_hyphen_values = true)]
    pub crf: i64,
    /// ffmpeg audio encoder.
    #[arg(long, value_name = "ENCODER", default_value = "aac")]
    pub audio_codec: String,
    /// Audio bit rate.
    #[arg(long, value_name = "RATE", default_value = "128k")]
    pub audio_bitrate: String,
    /// An extra argument for every segment's ffmpeg, after the encoder
    /// options; repeat for several, e.g. --ffmpeg-arg=-tune --ffmpeg-arg=film.
    #[arg(long = "ffmpeg-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub ffmpeg_args: Vec<String>,
    /// A directory every rank sees (NFS, a hostPath): segments are exchanged
    /// there instead of being sent over MPI.
    #[arg(long, value_name = "DIR")]
    pub shared_dir: Option<PathBuf>,
    /// Also time the same transcode done by one ffmpeg process on rank 0, for the report.
    #[arg(long)]
    pub baseline: bool,
    /// Largest MPI message carrying segment bytes, e.g. 8Mi.
    #[arg(long, value_name = "BYTES", default_value_t = Size(crate::spmd::tasks::DEFAULT_CHUNK_BYTES as u64))]
    pub chunk_bytes: Size,
    /// How long one segment's ffmpeg may run before it is taken for stuck,
    /// killed, and the segment retried on another rank, e.g. 90s, 20m, 1h
    /// [default: 10 minutes plus 100 times the segment's length].
    #[arg(long, value_name = "DURATION", value_parser = crate::args::parse_duration)]
    pub item_timeout: Option<std::time::Duration>,
    /// The ffmpeg program to run on every rank.
    #[arg(long, value_name = "PATH", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,
    /// The ffprobe program to run.
    #[arg(long, value_name = "PATH", default_value = "ffprobe")]
    pub ffprobe: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// The job `a` describes.
pub fn job(a: &Args) -> Result<Job, UsageError> {
    Ok(Job::spmd(Transcode::new(a)?))
}

pub struct Transcode {
    input: PathBuf,
    output: PathBuf,
    segment_seconds: Option<f64>,
    settings: Settings,
    tools: Tools,
    shared_dir: Option<PathBuf>,
    baseline: bool,
    chunk_bytes: usize,
    /// `--item-timeout`: the limit of every segment's encode (`None`: the
    /// default, from each segment's length).
    item_timeout: Option<Duration>,
    /// The fault-injection hook ([`media::FAULT_ENV`]).
    fault: Option<media::Fault>,
}

/// What a rank's pre-flight leaves for its run.
pub enum Ready {
    /// Rank 0: the input as probed, and its working directory (where the
    /// trial ran; the segments, the transcoded parts and the audio go).
    Root { probe: Probe, dir: WorkDir },
    /// Another rank: its working directory (`None` with `--shared-dir`,
    /// where it works in rank 0's), removed as soon as its part of the farm
    /// is over.
    Worker { dir: Option<WorkDir> },
}

/// What rank 0 holds after the farm, for `finish`: the input's probe, the
/// working directory (removed when this is dropped, whichever way the job
/// ends) and the account of the run, its failure included.
pub struct Farmed {
    probe: Probe,
    dir: WorkDir,
    run: Run,
}

/// Rank 0's account of the split and the farm.
struct Run {
    segments: Vec<Segment>,
    segment_seconds: f64,
    split_s: f64,
    farm_s: f64,
    retried: usize,
    /// The input's audio, encoded once while the video was transcoded.
    audio: Option<PathBuf>,
    /// Seconds that encode took (it overlaps the farm).
    audio_s: f64,
    error: Option<anyhow::Error>,
}

impl Run {
    /// Adds the farm's account and the audio encode's (seconds, retries)
    /// and keeps the first error: the split's, the farm's, then the audio's.
    fn settle(&mut self, farm_s: f64, farm: &tasks::FarmOutcome, audio: Option<(Result<()>, f64)>, order: &[Segment]) {
        self.farm_s = farm_s; // the farm, and the audio encode if it ended later
        self.retried = farm.retried;
        if let (None, Some(e)) = (&self.error, &farm.error) {
            self.error = Some(describe_failure(e, order));
        }
        if let Some((result, audio_s)) = audio {
            self.audio_s = audio_s;
            if let (None, Err(e)) = (&self.error, result) {
                self.error = Some(e);
            }
        }
    }
}

/// A temporary directory that SIGTERM removes and that is removed when dropped.
pub struct WorkDir {
    path: PathBuf,
    _tracked: Tracked,
}

/// The start of every working directory's name; the host and process id
/// follow, so that a later run can tell a dead run's directory from a live one.
const WORKDIR_PREFIX: &str = "pikernels-transcode-";
/// The start of the temporary output's name (in the output's directory);
/// host, process id and the output's own name follow.
const TEMP_OUTPUT_PREFIX: &str = ".pikernels-transcode-";

impl WorkDir {
    /// A fresh private directory under `parent` (the system's temporary
    /// directory, or the shared directory), named
    /// `pikernels-transcode-HOST-PID-N`, created and registered with
    /// `signals` as one step. Leftovers of earlier runs on this host whose
    /// process is gone are removed first: a rank killed outright (SIGKILL;
    /// `mpirun` sometimes sends a rank only SIGCONT and SIGKILL when the job
    /// is stopped) cannot clean up after itself.
    fn create(parent: &Path) -> Result<WorkDir> {
        use std::os::unix::fs::DirBuilderExt;
        let own = format!("{WORKDIR_PREFIX}{}-", output::host_tag());
        sweep_dead(parent, &own);
        let pid = std::process::id();
        for n in 0..1000 {
            let path = parent.join(format!("{own}{pid}-{n}"));
            match signals::create_tracked(&path, |p| std::fs::DirBuilder::new().mode(0o700).create(p)) {
                Ok(tracked) => return Ok(WorkDir { _tracked: tracked, path }),
                // A directory of a dead process that had this pid before.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create a temporary directory in {}", parent.display()))
                }
            }
        }
        bail!("cannot create a temporary directory in {}: 1000 names taken", parent.display())
    }
}

/// Numbers the names under which this process claims leftovers.
static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Removes the leftovers of dead runs in `parent`: entries named `prefix`
/// (which includes this host) followed by the id of a process that no
/// longer runs here (`signals::pid_alive`), then `-`. Several ranks of a job
/// sweep the same directory at once, so each leftover is first claimed by
/// renaming it to a name carrying this process's id (only one rename can
/// succeed, and a sweeper killed halfway leaves a leftover the next run
/// claims in turn), then removed. Prints one line naming what it removed.
fn sweep_dead(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let me = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.split_once('-')?.0.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || signals::pid_alive(pid) {
            continue;
        }
        let claimed = parent.join(format!("{prefix}{me}-swept-{}", CLAIMS.fetch_add(1, Ordering::Relaxed)));
        // Fails when another process claimed it first (it is gone).
        let Ok(tracked) = signals::create_tracked(&claimed, |to| std::fs::rename(e.path(), to)) else { continue };
        let gone = match std::fs::symlink_metadata(&claimed) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&claimed),
            _ => std::fs::remove_file(&claimed),
        };
        drop(tracked);
        if gone.is_ok() {
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        removed.sort();
        let line = format!(
            "pikernels: removed {} leftover{} of dead runs in {}: {}\n",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            parent.display(),
            removed.join(", ")
        );
        // One write: `eprintln!` writes its pieces one by one, and the line
        // of another rank sweeping at the same moment could fall between them.
        eprint!("{line}");
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Transcode {
    pub fn new(a: &Args) -> Result<Transcode, UsageError> {
        if let Some(p) = &a.common.out {
            return Err(UsageError(format!("transcode writes --output, not --out {}", p.display())));
        }
        if let Some(s) = a.segment_seconds {
            if !(s.is_finite() && s > 0.0) {
                return Err(UsageError(format!("--segment-seconds must be a positive number of seconds (got {s})")));
            }
            if s > media::MAX_SEGMENT_OPTION_SECONDS {
                return Err(UsageError(format!(
                    "--segment-seconds must be at most {} (a day; one segment for any real video), got {s}",
                    media::MAX_SEGMENT_OPTION_SECONDS
                )));
            }
        }
        if !(0..=63).contains(&a.crf) {
            return Err(UsageError(format!("--crf must be between 0 and 63 (got {})", a.crf)));
        }
        if a.chunk_bytes.0 == 0 || a.chunk_bytes.0 > MAX_CHUNK_BYTES {
            return Err(UsageError(format!(
                "--chunk-bytes must be between 1 and {MAX_CHUNK_BYTES} (got {})",
                a.chunk_bytes.0
            )));
        }
        for (name, v) in [
            ("codec", &a.codec),
            ("preset", &a.preset),
            ("audio-codec", &a.audio_codec),
            ("audio-bitrate", &a.audio_bitrate),
        ] {
            if v.trim().is_empty() {
                return Err(UsageError(format!("--{name} must not be empty")));
            }
        }
        if a.output.extension().is_none() {
            return Err(UsageError(format!(
                "--output {} has no extension; ffmpeg picks the container from it (e.g. .mp4, .mkv)",
                a.output.display()
            )));
        }
        if a.output == a.input {
            return Err(UsageError("--output must differ from --input".into()));
        }
        if let Some(why) = many_files(&a.output) {
            return Err(UsageError(format!(
                "--output {}: {why}, but transcode writes one file (checked, then renamed into place): give a \
                 container such as .mp4, .mkv, .mov, .webm or .nut",
                a.output.display()
            )));
        }
        let fault = match std::env::var(media::FAULT_ENV) {
            Ok(v) => Some(media::parse_fault(&v).map_err(UsageError)?),
            Err(_) => None,
        };
        Ok(Transcode {
            input: a.input.clone(),
            output: a.output.clone(),
            segment_seconds: a.segment_seconds,
            settings: Settings {
                codec: a.codec.clone(),
                preset: a.preset.clone(),
                crf: a.crf as u32,
                audio_codec: a.audio_codec.clone(),
                audio_bitrate: a.audio_bitrate.clone(),
                extra: a.ffmpeg_args.clone(),
            },
            tools: Tools { ffmpeg: a.ffmpeg.clone(), ffprobe: a.ffprobe.clone() },
            shared_dir: a.shared_dir.clone(),
            baseline: a.baseline,
            chunk_bytes: a.chunk_bytes.0 as usize,
            item_timeout: a.item_timeout,
            fault,
        })
    }

    /// The temporary name the output is written under: hidden, in the
    /// output's directory (so the rename is atomic), ending in the output's
    /// own name so that ffmpeg picks the same container from the extension.
    /// Host and process id in the name let a later run tell a dead run's
    /// leftover from a live run's file (`sweep_dead`).
    fn temp_output(&self) -> PathBuf {
        let dest = self.destination().unwrap_or_else(|_| self.output.clone());
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        dest.with_file_name(format!("{TEMP_OUTPUT_PREFIX}{}-{}-{name}", output::host_tag(), std::process::id()))
    }

    /// Where the output is renamed to: `--output` with its links resolved (a
    /// link stays a link and its target gets the video). A device, FIFO or
    /// socket is refused: the output is joined under a temporary name and
    /// renamed, and its container is written with seeks.
    fn destination(&self) -> Result<PathBuf> {
        match output::destination(&self.output, "output")? {
            output::Dest::File(p) => Ok(p),
            output::Dest::Stream(_) => bail!(
                "--output {} is a device, FIFO or socket: transcode writes a regular file (or a link to one), \
                 since the video is joined under a temporary name and renamed",
                self.output.display()
            ),
        }
    }

    /// The directory the output goes to (`.` for a bare file name).
    fn output_dir(&self) -> PathBuf {
        let dest = self.destination().unwrap_or_else(|_| self.output.clone());
        match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The time limit of the encode of a segment of `seconds`.
    fn item_limit(&self, seconds: f64) -> Duration {
        self.item_timeout.unwrap_or_else(|| media::default_item_limit(seconds))
    }

    /// The video options as given: what a refusal of the video encode names.
    fn video_options(&self) -> String {
        let s = &self.settings;
        let mut text = format!("--codec {} --preset {} --crf {}", s.codec, s.preset, s.crf);
        for arg in &s.extra {
            text.push_str(&format!(" --ffmpeg-arg={arg}"));
        }
        text
    }

    /// Rank 0, in pre-flight: the job's own ffmpeg commands on the input's
    /// first half second, in `dir/trial` (removed after), so that options
    /// ffmpeg refuses end the job before any work, with ffmpeg's reason.
    fn trial(&self, probe: &Probe, dir: &Path) -> Result<()> {
        let trial = dir.join("trial");
        std::fs::create_dir(&trial).with_context(|| format!("cannot create {}", trial.display()))?;
        let name = self.output.file_name().unwrap_or_else(|| std::ffi::OsStr::new("output"));
        let limit = self.item_limit(media::TRIAL_SECONDS);
        let outcome =
            media::trial(&self.tools, &self.settings, &self.input, probe.audio_streams > 0, &trial, name, Some(limit));
        let _ = std::fs::remove_dir_all(&trial);
        let Err(refusal) = outcome else { return Ok(()) };
        let s = &self.settings;
        let what = match refusal.stage {
            Stage::Video => format!("the video settings ({})", self.video_options()),
            Stage::Audio => {
                format!("the audio settings (--audio-codec {} --audio-bitrate {})", s.audio_codec, s.audio_bitrate)
            }
            Stage::Container => {
                format!("--output {} (ffmpeg picks the container from the extension)", self.output.display())
            }
        };
        let seconds = media::TRIAL_SECONDS;
        match refusal.failure {
            ToolFailure::TimedOut { .. } => bail!(
                "ffmpeg did not finish a trial encode of the input's first {seconds} s with {what} within {} (the per-segment limit, --item-timeout), so nothing was transcoded",
                deadline::human(limit)
            ),
            ToolFailure::Failed { stderr, .. } => {
                let said = media::reason(&stderr, 3).join("; ");
                let said = said.replace(&trial.join(name).display().to_string(), &self.output.display().to_string());
                bail!("ffmpeg refused {what} in a trial encode of the input's first {seconds} s, so nothing was transcoded; ffmpeg said: {said}")
            }
        }
    }

    /// Works on one farm item on any rank: `[segment index: u64 LE]
    /// [attempt: u64 LE][bytes]`, the bytes being the segment itself, or with
    /// `--shared-dir` its path relative to that directory (so each rank
    /// resolves it against its own `--shared-dir`).
    fn work(&self, dir: &Path, rank: usize, payload: Vec<u8>, limit: Option<Duration>) -> Result<Vec<u8>, String> {
        if payload.len() < 16 {
            return Err(format!("malformed work item of {} bytes", payload.len()));
        }
        let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        let (index, attempt) = (word(0) as usize, word(8) as u32);
        let fault = self.fault.is_some_and(|f| f.hits(index, attempt));
        let body = &payload[16..];
        let here = |e: String| format!("on rank {rank}: {e}");
        let encode = |input: &Path, out: &Path| {
            media::transcode_segment(&self.tools, &self.settings, input, out, fault, limit).map_err(|e| {
                match e.downcast_ref::<ToolFailure>() {
                    Some(ToolFailure::TimedOut { limit, .. }) => format!(
                        "ffmpeg did not finish segment {index} within {} (the per-segment limit, --item-timeout) and was killed",
                        deadline::human(*limit)
                    ),
                    _ => format!("{e:#}"),
                }
            })
        };
        if let Some(shared) = &self.shared_dir {
            let input = shared.join(String::from_utf8_lossy(body).as_ref());
            let out = input.with_file_name(part_name(index));
            encode(&input, &out).map_err(here)?;
            return Ok(Vec::new());
        }
        let input = dir.join(format!("in-{index:05}.nut"));
        let out = dir.join(format!("enc-{index:05}.mp4"));
        let result = std::fs::write(&input, body)
            .map_err(|e| format!("cannot write {}: {e}", input.display()))
            .and_then(|()| encode(&input, &out))
            .and_then(|()| std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display())));
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&out);
        result.map_err(here)
    }

    /// Rank 0: cuts the input's video at keyframes into NUT segments in
    /// `dir` (a failed split is the run's error, with no segments), and the
    /// order they are handed out in, longest first.
    fn split(&self, probe: &Probe, dir: &Path, ranks: usize) -> (Run, Vec<Segment>) {
        let seconds = self.segment_seconds.unwrap_or_else(|| media::default_segment_seconds(probe.duration_s, ranks));
        let (split, split_s) = timed(|| media::split(&self.tools, &self.input, dir, seconds));
        let (segments, error) = match split {
            Ok(s) => (s, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let order = media::longest_first(segments.clone());
        let audio = (probe.audio_streams > 0).then(|| dir.join("audio.mp4"));
        let run =
            Run { segments, segment_seconds: seconds, split_s, farm_s: 0.0, retried: 0, audio, audio_s: 0.0, error };
        (run, order)
    }

    /// Every rank: the task farm over `order` (rank 0's segments; empty on
    /// the other ranks), each rank working in `dir`; meanwhile, on rank 0, a
    /// thread encodes the input's audio into `audio` (when given), and its
    /// result and seconds come back with the farm's outcome.
    fn farm(
        &self,
        spmd: &Spmd,
        dir: &Path,
        order: &[Segment],
        audio: Option<PathBuf>,
    ) -> (tasks::FarmOutcome, Option<(Result<()>, f64)>) {
        let rank = spmd.rank();
        let load = |item: usize, attempt: u32| -> Result<Vec<u8>, String> {
            let seg = &order[item];
            let path = dir.join(&seg.name);
            let mut payload = (seg.index as u64).to_le_bytes().to_vec();
            payload.extend_from_slice(&u64::from(attempt).to_le_bytes());
            if let Some(shared) = &self.shared_dir {
                let rel =
                    path.strip_prefix(shared).map_err(|_| format!("{} is outside --shared-dir", path.display()))?;
                payload.extend_from_slice(rel.to_string_lossy().as_bytes());
            } else {
                payload.extend(std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?);
            }
            Ok(payload)
        };
        let work = |_item: usize, payload: Vec<u8>, limit: Option<Duration>| self.work(dir, rank, payload, limit);
        let limit = |item: usize| Some(self.item_limit(order[item].duration_s));
        let store = |item: usize, bytes: Vec<u8>| -> Result<(), String> {
            let path = dir.join(part_name(order[item].index));
            if self.shared_dir.is_some() {
                return if path.is_file() { Ok(()) } else { Err(format!("{} was not written", path.display())) };
            }
            std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        let farm = tasks::Farm {
            items: order.len(),
            chunk_bytes: self.chunk_bytes,
            load: &load,
            limit: &limit,
            work: &work,
            store: &store,
        };
        std::thread::scope(|s| {
            let audio = audio.map(|path| {
                s.spawn(move || timed(|| media::encode_audio(&self.tools, &self.settings, &self.input, &path)))
            });
            let outcome = tasks::run(spmd, &farm);
            (outcome, audio.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))))
        })
    }

    /// Rank 0 after the farm: join, verify, rename, compare with the baseline.
    fn conclude(&self, probe: &Probe, run: &Run, dir: &Path, wall_s: f64) -> Result<Finished> {
        let tmp = self.temp_output();
        let tracked = signals::track(&tmp);
        let joined = self.join(probe, run, dir, &tmp).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        let check = Check::of(probe, &joined.out);
        // Only a verified result takes the output's name; a failed check
        // leaves no file behind (exit 3 with the report says why).
        let written = check.passed();
        // Whatever happens, the temporary output does not outlive this run:
        // staged, it is renamed into place once the report is out, or
        // removed (dropped uncommitted, or on an error here).
        let staged = match written.then(|| self.destination()) {
            Some(Ok(dest)) => Some(output::Staged::adopt(tmp.clone(), dest, tracked)),
            Some(Err(e)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            None => {
                let _ = std::fs::remove_file(&tmp);
                None
            }
        };
        let total_s = wall_s + joined.join_s;
        Ok(Finished {
            result: self.result(probe, run, &joined, written, staged.as_ref().map_or(0, |s| s.len), total_s),
            verified: written,
            verification: check.describe(probe, &joined.out, written),
            item: ("frames", probe.frames as f64),
            bytes_per_item: None,
            verify_s: joined.verify_s,
            output_s: joined.join_s,
            outputs: staged.into_iter().collect(),
        })
    }

    /// Rank 0: the parts and the audio joined into `tmp` (stream copy), the
    /// result probed, and the one-process baseline when asked for.
    fn join(&self, probe: &Probe, run: &Run, dir: &Path, tmp: &Path) -> Result<Joined> {
        let parts: Vec<PathBuf> = run.segments.iter().map(|s| dir.join(part_name(s.index))).collect();
        let (joined, join_s) =
            timed(|| media::concat(&self.tools, &parts, &dir.join("concat.txt"), run.audio.as_deref(), tmp));
        joined?;
        let (out, verify_s) = timed(|| media::probe(&self.tools, tmp));
        let out = out.context("cannot check the joined output")?;
        let baseline = if self.baseline { Some(self.run_baseline(probe, dir)?) } else { None };
        Ok(Joined { out, join_s, verify_s, baseline })
    }

    /// The report's result fields.
    /// `output_bytes`: the staged output's size (0 when none is written).
    fn result(&self, probe: &Probe, run: &Run, joined: &Joined, written: bool, output_bytes: u64, total_s: f64) -> Value {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        json!({
            "input": self.input.display().to_string(),
            "output": self.output.display().to_string(),
            "written": written,
            "transport": if self.shared_dir.is_some() { "shared-dir" } else { "mpi" },
            "duration_s": probe.duration_s,
            "frames": probe.frames,
            "fps": probe.fps_f64(),
            "input_video_codec": probe.video_codec,
            "audio_streams": probe.audio_streams,
            "segment_seconds": run.segment_seconds,
            "segments": run.segments.len(),
            "retried_segments": run.retried,
            "chunk_bytes": self.chunk_bytes,
            "split_s": run.split_s,
            "farm_s": run.farm_s,
            "audio_s": run.audio_s,
            "join_s": joined.join_s,
            "total_s": total_s,
            "speed_x_realtime": probe.duration_s / total_s,
            "output_frames": joined.out.frames,
            "output_duration_s": joined.out.duration_s,
            "input_bytes": size(&self.input),
            "output_bytes": output_bytes,
            "baseline": joined.baseline.as_ref().map(|(b, s)| json!({
                "seconds": s,
                "speed_x_realtime": probe.duration_s / s,
                "speedup": s / total_s,
                "frames": b.frames,
                "duration_s": b.duration_s,
            })),
        })
    }

    /// The same transcode by one ffmpeg process; returns its probe and seconds.
    fn run_baseline(&self, probe: &Probe, dir: &Path) -> Result<(Probe, f64)> {
        let ext = self.output.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dir.join(format!("baseline.{ext}"));
        let (r, s) = timed(|| media::transcode_whole(&self.tools, &self.settings, &self.input, &path));
        r?;
        let b = media::probe(&self.tools, &path).context("cannot check the baseline output")?;
        let _ = std::fs::remove_file(&path);
        if b.frames != probe.frames {
            bail!("the one-process baseline has {} frames, the input {}", b.frames, probe.frames);
        }
        Ok((b, s))
    }
}

/// The joined output, under its temporary name.
struct Joined {
    /// Its probe.
    out: Probe,
    /// Seconds joining.
    join_s: f64,
    /// Seconds probing it.
    verify_s: f64,
    /// The one-process baseline's probe and seconds, when one ran.
    baseline: Option<(Probe, f64)>,
}

/// The joined output against the input: the same frames, the same duration
/// within one frame, the same audio streams.
struct Check {
    frame_s: f64,
    diff_s: f64,
    frames_ok: bool,
    duration_ok: bool,
    streams_ok: bool,
}

/// Why ffmpeg would write `output` as many files (a pattern, a playlist
/// with segments, an image per frame), or `None` for one file.
fn many_files(output: &Path) -> Option<&'static str> {
    let name = output.file_name()?.to_string_lossy();
    // `%d`, `%03d`, `%v`: a pattern ffmpeg numbers (`100%.mp4` is one file).
    let pattern = name.match_indices('%').any(|(at, _)| {
        let rest = name[at + 1..].trim_start_matches(|c: char| c.is_ascii_digit());
        rest.starts_with('d') || rest.starts_with('v')
    });
    if pattern {
        return Some("a name with %d (or %03d, %v) is a pattern for many files");
    }
    let ext = output.extension()?.to_string_lossy().to_ascii_lowercase();
    match ext.as_str() {
        "m3u8" | "m3u" => Some("HLS writes a playlist and segment files beside it"),
        "mpd" => Some("DASH writes a manifest and segment files beside it"),
        "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff" | "pgm" | "ppm" | "pbm" | "pam" | "tga" | "dpx" | "exr"
        | "jp2" | "j2k" | "sgi" | "xwd" => Some("an image format is written one file per frame"),
        _ => None,
    }
}

/// The resolution of the durations ffprobe prints (microseconds).
const DURATION_RESOLUTION_S: f64 = 1e-6;

impl Check {
    fn of(input: &Probe, out: &Probe) -> Check {
        let frame_s = input.frame_s();
        let diff_s = (out.duration_s - input.duration_s).abs();
        Check {
            frame_s,
            diff_s,
            frames_ok: out.frames == input.frames,
            // ffprobe prints durations to the microsecond: a difference of
            // exactly one frame reads as one frame plus rounding.
            duration_ok: diff_s <= frame_s + DURATION_RESOLUTION_S,
            streams_ok: out.audio_streams == input.audio_streams,
        }
    }

    fn passed(&self) -> bool {
        self.frames_ok && self.duration_ok && self.streams_ok
    }

    /// The report's verification line.
    fn describe(&self, input: &Probe, out: &Probe, written: bool) -> String {
        format!(
            "output has {} frames, input {}{}; duration {:.4} s vs {:.4} s, off by {:.4} s ({} one frame, {:.4} s); video and {} audio stream(s), input {}{}",
            out.frames,
            input.frames,
            if self.frames_ok { " (equal)" } else { " (DIFFERENT)" },
            out.duration_s,
            input.duration_s,
            self.diff_s,
            if self.duration_ok { "within" } else { "MORE THAN" },
            self.frame_s,
            out.audio_streams,
            input.audio_streams,
            if written { "" } else { "; output NOT written" }
        )
    }
}

/// The name of segment `index`'s transcoded part.
fn part_name(index: usize) -> String {
    format!("part-{index:05}.mp4")
}

/// The farm's error in the job's terms: which segment, which ranks, what ffmpeg said.
fn describe_failure(e: &tasks::TaskError, order: &[Segment]) -> anyhow::Error {
    let Some(item) = e.item else {
        return anyhow!("{}", e.attempts.first().map(|a| a.1.as_str()).unwrap_or("the task farm failed"));
    };
    let seg = &order[item];
    let tries: Vec<String> = e.attempts.iter().map(|(_, why)| why.clone()).collect();
    anyhow!(
        "ffmpeg failed twice on segment {} ({:.3} s to {:.3} s of the input), so the job stops and writes no output:\n  first {}\n  then {}",
        seg.index,
        seg.start_s,
        seg.start_s + seg.duration_s,
        tries.first().map(String::as_str).unwrap_or("?"),
        tries.last().map(String::as_str).unwrap_or("?")
    )
}

impl SpmdJob for Transcode {
    type Prepared = Ready;
    type Output = Farmed;

    fn params(&self) -> Value {
        let s = &self.settings;
        json!({
            "input": self.input.display().to_string(),
            "output": self.output.display().to_string(),
            "segment_seconds": self.segment_seconds,
            "codec": s.codec, "preset": s.preset, "crf": s.crf,
            "audio_codec": s.audio_codec, "audio_bitrate": s.audio_bitrate,
            "ffmpeg_args": s.extra,
            "shared_dir": self.shared_dir.as_ref().map(|p| p.display().to_string()),
            "baseline": self.baseline,
            "chunk_bytes": self.chunk_bytes,
            "item_timeout_s": self.item_timeout.map(|d| d.as_secs_f64()),
        })
    }

    fn files(&self) -> Vec<output::FileUse> {
        vec![output::FileUse::reads("--input", &self.input), output::FileUse::writes("--output", &self.output)]
    }

    fn preflight(&self, ctx: &Preflight) -> Result<Ready> {
        self.tools.check(&[&self.settings.codec, &self.settings.audio_codec])?;
        if let Some(shared) = &self.shared_dir {
            if !shared.is_dir() {
                bail!("--shared-dir {} is not a directory here", shared.display());
            }
        }
        // ffmpeg's concat list holds one path a line: a line break in the
        // work directory's path cannot be written there.
        let parent = self.shared_dir.clone().unwrap_or_else(std::env::temp_dir);
        if parent.as_os_str().as_encoded_bytes().iter().any(|b| matches!(b, b'\n' | b'\r')) {
            let which = if self.shared_dir.is_some() { "--shared-dir" } else { "TMPDIR (the work directory)" };
            bail!("{which} {:?} holds a line break, which ffmpeg's list of parts cannot hold; give a path without one", parent);
        }
        if !self.settings.extra.is_empty() {
            media::OptionTable::of(&self.tools)?.check_extra(&self.settings.extra).map_err(anyhow::Error::msg)?;
        }
        if !ctx.is_root() {
            let dir = match self.shared_dir {
                None => Some(WorkDir::create(&std::env::temp_dir())?),
                Some(_) => None,
            };
            return Ok(Ready::Worker { dir });
        }
        let probe = media::probe(&self.tools, &self.input)?;
        self.destination()?;
        output::check_writable(&self.output, "output")?;
        let input_bytes = std::fs::metadata(&self.input).map(|m| m.len()).unwrap_or(0);
        // Segments (a copy of the input's video) and the transcoded parts.
        output::check_disk(&parent.join("x"), 2 * input_bytes, "the segments and their transcoded parts")?;
        output::check_disk(&self.output, input_bytes, "the output")?;
        sweep_dead(&self.output_dir(), &format!("{TEMP_OUTPUT_PREFIX}{}-", output::host_tag()));
        let dir = WorkDir::create(&parent)?;
        self.trial(&probe, &dir.path)?;
        Ok(Ready::Root { probe, dir })
    }

    /// Rank 0: split, then serve and work; every other rank: work.
    fn run(&self, spmd: &Spmd, _comm: spmd::Comm, ready: Ready) -> Ran<Farmed> {
        let t = Instant::now();
        match ready {
            Ready::Root { probe, dir } => {
                let (mut run, order) = self.split(&probe, &dir.path, spmd.size());
                // Rank 0 encodes the audio on a thread of its own (no MPI
                // there) while the farm runs, so it adds no serial tail.
                let audio = run.audio.clone().filter(|_| run.error.is_none());
                let ((farm, audio), farm_s) = timed(|| self.farm(spmd, &dir.path, &order, audio));
                run.settle(farm_s, &farm, audio, &order);
                let wall_s = t.elapsed().as_secs_f64();
                Ran { output: Some(Farmed { probe, dir, run }), stats: farm.stats, wall_s }
            }
            Ready::Worker { dir } => {
                // With --shared-dir a worker has no directory of its own: it
                // works in rank 0's there.
                let (farm, _) = self.farm(spmd, dir.as_ref().map_or(Path::new(""), |d| &d.path), &[], None);
                drop(dir); // a worker's part is over: remove its directory now
                Ran { output: None, stats: farm.stats, wall_s: t.elapsed().as_secs_f64() }
            }
        }
    }

    fn finish(&self, farmed: Farmed) -> Result<Finished> {
        let Farmed { probe, dir, mut run } = farmed;
        if let Some(e) = run.error.take() {
            return Err(e); // `dir` is dropped, and so removed, on the way out
        }
        let wall_s = run.split_s + run.farm_s;
        self.conclude(&probe, &run, &dir.path, wall_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_those_the_cli_had() {
        let line = ["pikernels", "transcode", "--input", "in.mp4", "--output", "out.mkv"];
        let kernel = crate::jobs::parse(&line).expect("parses");
        let crate::jobs::Kernel::Transcode(a) = kernel else { panic!("not transcode") };
        let want = json!({
            "input": "in.mp4", "output": "out.mkv", "segment_seconds": null,
            "codec": "libx264", "preset": "veryfast", "crf": 28, "audio_codec": "aac", "audio_bitrate": "128k",
            "ffmpeg_args": [], "shared_dir": null, "baseline": false, "chunk_bytes": 8 << 20, "item_timeout_s": null,
        });
        assert_eq!(SpmdJob::params(&Transcode::new(&a).expect("a valid transcode")), want);
    }
}
