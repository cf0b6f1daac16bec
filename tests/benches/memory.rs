//! A running process's memory and threads, from `/proc` (Linux; "n/a" elsewhere).

/// One `/proc/<pid>/<file>` field in MiB, such as `VmRSS:` of `status` or `Pss:` of
/// `smaps_rollup`.
pub fn mib(pid: u32, file: &str, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|kib| kib / 1024.0)
}

pub fn rss(pid: u32) -> Option<f64> {
    mib(pid, "status", "VmRSS:")
}

pub fn describe(pid: u32) -> String {
    let shown = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.1} MiB"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map_or("n/a", str::trim);
    format!(
        "RSS {}, PSS {}, threads {threads}",
        shown(rss(pid)),
        shown(mib(pid, "smaps_rollup", "Pss:"))
    )
}
