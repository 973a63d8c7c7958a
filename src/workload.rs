//! What a run asked of its models, and what each stage cost the process: the record a
//! benchmark needs to give other engines the very same work (`examples/bench_run.rs` and
//! `scripts/bench/e2e_peers.py`: the same sentences with the same source and target lengths
//! through CTranslate2, the same prompt and reply lengths through llama.cpp).
//!
//! Nothing is kept unless a benchmark called [`start_recording`]: `polybrief run` never does,
//! so its model calls pay one uncontended lock and nothing else. A global, not a parameter
//! threaded through every stage, because the record must come from the very code paths a run
//! takes, unchanged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One batch of model work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// One batch of sentences through a translation model, in the batch's order: each
    /// sentence's source tokens and generated tokens (EOS included in both).
    Translation {
        model: String,
        beams: usize,
        source_tokens: Vec<usize>,
        target_tokens: Vec<usize>,
    },
    /// One batched generation call of the LLM: each prompt's tokens and its reply's tokens,
    /// with at most `batch` sequences decoded together. Of each prompt's tokens, the first
    /// `reused_prompt_tokens` were not computed: a sequence before it in the call began with
    /// the same tokens, and their keys and values were copied from its cache.
    Generation {
        batch: usize,
        prompt_tokens: Vec<usize>,
        reused_prompt_tokens: Vec<usize>,
        generated_tokens: Vec<usize>,
    },
}

/// [`Work`] with the stage that asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageWork {
    pub stage: &'static str,
    #[serde(flatten)]
    pub work: Work,
}

/// What one stage cost the process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageUsage {
    pub stage: &'static str,
    pub wall_seconds: f64,
    /// User + system CPU time of the whole process (every thread) during the stage.
    pub cpu_seconds: Option<f64>,
    /// The process's peak resident set during the stage (Linux: reset at the stage's start
    /// when recording), in bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Everything recorded since [`start_recording`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Record {
    pub stages: Vec<StageUsage>,
    pub work: Vec<StageWork>,
}

struct Recorder {
    stage: &'static str,
    record: Record,
}

static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);

fn with_recorder<T>(f: impl FnOnce(&mut Option<Recorder>) -> T) -> T {
    // A panic while holding the lock leaves plain data behind: still usable.
    let mut guard = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// Starts keeping model work and stage usage, dropping anything kept before.
pub fn start_recording() {
    with_recorder(|r| {
        *r = Some(Recorder {
            stage: "",
            record: Record::default(),
        })
    });
}

/// Stops recording and returns what was kept (empty if recording never started).
pub fn take_record() -> Record {
    with_recorder(|r| r.take().map(|r| r.record).unwrap_or_default())
}

fn recording() -> bool {
    with_recorder(|r| r.is_some())
}

/// Keeps `work()` when recording; `work` is not even built otherwise.
pub(crate) fn record(work: impl FnOnce() -> Work) {
    if !recording() {
        return;
    }
    let work = work();
    with_recorder(|r| {
        if let Some(r) = r {
            r.record.work.push(StageWork {
                stage: r.stage,
                work,
            });
        }
    });
}

/// The clock of one stage: wall time, the process's CPU time and its peak RSS, from
/// [`StageMeter::start`] to [`StageMeter::stop`]. Model work recorded in between is the stage's.
/// Public for the benchmark's clock around the whole run (started before recording, it
/// names no stage and resets nothing).
pub struct StageMeter {
    stage: &'static str,
    started: Instant,
    cpu_at_start: Option<Duration>,
}

impl StageMeter {
    pub fn start(stage: &'static str) -> StageMeter {
        let recording = with_recorder(|r| match r {
            Some(r) => {
                r.stage = stage;
                true
            }
            None => false,
        });
        if recording {
            // The peak a stage reports is its own only if the high-water mark starts from
            // the current RSS; a run never resets it, since nothing there reads it per stage.
            reset_peak_rss();
        }
        StageMeter {
            stage,
            started: Instant::now(),
            cpu_at_start: process_cpu_time(),
        }
    }

    pub fn stop(self) -> StageUsage {
        let usage = StageUsage {
            stage: self.stage,
            wall_seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: process_cpu_time()
                .zip(self.cpu_at_start)
                .map(|(now, then)| now.saturating_sub(then).as_secs_f64()),
            peak_rss_bytes: peak_rss_bytes(),
        };
        with_recorder(|r| {
            if let Some(r) = r {
                r.record.stages.push(usage.clone());
                r.stage = "";
            }
        });
        usage
    }
}

/// User + system time of every thread of this process so far.
#[cfg(unix)]
fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialized by the successful call above.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(not(unix))]
fn process_cpu_time() -> Option<Duration> {
    None
}

/// The peak RSS (`VmHWM` of /proc/self/status), Linux only.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_bytes(&status)
}

/// `VmHWM:  123456 kB` → bytes.
fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Linux: writing 5 to /proc/self/clear_refs resets the peak RSS to the current RSS
/// (proc(5)). Elsewhere, or where it is refused, the peak stays the process's.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        log::debug!("cannot reset the peak RSS per stage: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib_from_proc_status() {
        let status = "Name:\tpolybrief\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(123_456 * 1024));
        assert_eq!(vm_hwm_bytes("Name:\tx\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stage_meter_counts_the_cpu_time_spent_between_start_and_stop() {
        // This thread's own CPU clock, so that a loaded machine only makes the test longer.
        fn thread_cpu() -> Duration {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: a valid clock id and a valid out-pointer.
            assert_eq!(
                unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) },
                0
            );
            Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
        }
        let meter = StageMeter::start("test");
        let spun_from = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - spun_from < Duration::from_millis(150) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let usage = meter.stop();
        let cpu = usage.cpu_seconds.expect("getrusage works on Linux");
        // Other tests' threads add CPU time to the process, never take it away.
        assert!(cpu >= 0.15, "{cpu} s of CPU for 0.15 s of spinning");
        assert!(usage.wall_seconds >= cpu.min(0.15));
        assert!(usage.peak_rss_bytes.is_some_and(|b| b > 0));
    }
}
