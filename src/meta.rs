//! Facts recorded beside results: the time, the machine and the commit.

use serde::Serialize;
use serde_json::{json, Value};

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The machine a benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu: String,
    pub logical_cpus: usize,
    pub os: String,
    pub memory_gib: f64,
}

pub fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown".to_string(), |s| s.trim().to_string());
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    Machine {
        hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        cpu,
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        memory_gib,
    }
}

/// The git commit this binary was built from (with `-dirty` if the working tree had changes
/// then), or `unknown` when it was built outside a repository or without git. Recorded by
/// `build.rs` at build time, so a long run reports the code it ran even if the tree moves on.
pub fn commit() -> String {
    env!("PDEKIT_BUILD_COMMIT").to_string()
}

/// The command line as typed.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// A memory figure of this process from `/proc/self/status`, in MiB.
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory (`VmHWM`) since the process started or the last [`reset_peak_rss`], in
/// MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory now (`VmRSS`), in MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// Starts a new peak: `VmHWM` drops to the memory resident now (Linux ≥ 4.0). Returns whether
/// it could; where it cannot, [`peak_rss_mib`] stays the peak since the process started.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Adds where a result came from to a report or benchmark JSON: `command`, `commit`, `machine`
/// and `created`.
pub fn record_provenance(doc: &mut Value) {
    doc["command"] = json!(command_line());
    doc["commit"] = json!(commit());
    doc["machine"] = json!(machine());
    doc["created"] = json!(now_utc());
}

/// Memory a new allocation can have without swapping (`MemAvailable`), in bytes; without
/// /proc/meminfo, 1 TiB stands for "more than any machine this runs on".
pub fn available_bytes() -> u128 {
    meminfo_available().unwrap_or(1 << 40)
}

fn meminfo_available() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a model whose weights, gradients and two optimiser moments (f32 each) cannot fit in
/// the memory available, before anything is allocated; the error says how much it needs.
pub fn model_fits_in_memory(spec: &pdekit_operators::models::ModelSpec) -> Result<(), String> {
    let available = available_bytes();
    let needed = spec.weight_values().saturating_mul(16);
    if needed <= available {
        return Ok(());
    }
    let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
    Err(format!(
        "this {} needs at least {:.3e} GiB for its weights, gradients and optimiser moments; {:.1} GiB are available",
        spec.name(),
        gib(needed),
        gib(available)
    ))
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn a_reset_peak_forgets_memory_since_freed() {
        if !reset_peak_rss() {
            return; // not Linux: nothing to check
        }
        let before = peak_rss_mib().unwrap();
        let big = vec![1u8; 256 << 20];
        std::hint::black_box(&big);
        let touched: u64 = big.iter().step_by(4096).map(|&b| b as u64).sum();
        assert!(touched > 0);
        let during = peak_rss_mib().unwrap();
        assert!(during > before + 200.0, "{before} → {during}");
        drop(big);
        assert!(reset_peak_rss());
        let after = peak_rss_mib().unwrap();
        assert!(after < during - 200.0, "{during} → {after}");
    }
}
