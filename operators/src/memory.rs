//! This process's resident memory, from `/proc/self/status` (Linux; `None` elsewhere), so the
//! training loop can report each epoch's peak and benchmarks a step's.

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

#[cfg(test)]
mod tests {
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
