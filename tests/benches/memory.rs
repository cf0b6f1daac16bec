//! A running process's memory and threads, from `/proc` (Linux; "n/a" elsewhere).

pub fn describe(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("n/a".to_owned(), |kb| format!("{:.1} MiB", kb / 1024.0))
    };
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map_or("n/a", str::trim);
    format!(
        "RSS {}, PSS {}, threads {threads}",
        field(&status, "VmRSS:"),
        field(&rollup, "Pss:")
    )
}
