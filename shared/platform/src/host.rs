//! The machine a figure was measured on, printed by every benchmark and the load generator.

/// The CPU model and how many cores this process may use, e.g.
/// `AMD EPYC 7B13, 2 core(s) available to this process`.
pub fn describe() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} core(s) available to this process")
}
