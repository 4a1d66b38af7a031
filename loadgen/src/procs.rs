//! CPU time and resident memory of the service processes, read from `/proc` (Linux) while a run
//! plays, and a line naming the machine the figures come from.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second in Linux's ABI on every
/// architecture this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Often enough to catch a peak of a few hundred milliseconds, rare enough to cost nothing.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// One process over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub name: String,
    /// CPU time over wall time: 1.0 is one core busy for the whole run.
    pub cpu_share: f64,
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
}

/// CPU ticks (user + system) from the text of `/proc/<pid>/stat`. The command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory in KiB from the text of `/proc/<pid>/status`.
fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    ticks: u64,
    rss_kib: u64,
}

fn read(pid: u32) -> Option<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Reading {
        ticks: cpu_ticks(&stat)?,
        rss_kib: rss_kib(&status)?,
    })
}

/// Samples the watched processes until stopped.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<Usage>>,
}

impl Sampler {
    pub fn start(watched: &[(String, u32)]) -> Self {
        let watched = watched.to_vec();
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let first: Vec<Option<Reading>> = watched.iter().map(|(_, pid)| read(*pid)).collect();
            let mut peak: Vec<u64> = first.iter().map(|r| r.map_or(0, |r| r.rss_kib)).collect();
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {}
                }
                for (i, (_, pid)) in watched.iter().enumerate() {
                    if let Some(r) = read(*pid) {
                        peak[i] = peak[i].max(r.rss_kib);
                    }
                }
            }
            let wall = began.elapsed().as_secs_f64();
            watched
                .iter()
                .zip(first)
                .zip(peak)
                .filter_map(|(((name, pid), first), peak)| {
                    let (first, last) = (first?, read(*pid)?);
                    Some(Usage {
                        name: name.clone(),
                        cpu_share: (last.ticks - first.ticks) as f64 / TICKS_PER_SECOND / wall,
                        rss_start_kib: first.rss_kib,
                        rss_peak_kib: peak.max(last.rss_kib),
                        rss_end_kib: last.rss_kib,
                    })
                })
                .collect()
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> Vec<Usage> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_name_with_spaces() {
        let stat = "1234 (tokio runtime) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 1000 200";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn resident_memory_is_read_from_status() {
        let status = "Name:\tstack\nVmPeak:\t  900000 kB\nVmRSS:\t  123456 kB\n";
        assert_eq!(rss_kib(status), Some(123456));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn this_process_is_sampled_for_real() {
        let me = [("self".to_string(), std::process::id())];
        let sampler = Sampler::start(&me);
        tokio::time::sleep(Duration::from_millis(50)).await; // its first reading
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(300) {
            std::hint::black_box(0u64);
        }
        let usage = sampler.stop().await;
        assert_eq!(usage.len(), 1);
        assert!(usage[0].rss_peak_kib >= usage[0].rss_start_kib && usage[0].rss_start_kib > 0);
        assert!(usage[0].cpu_share > 0.0, "{usage:?}");
    }
}
