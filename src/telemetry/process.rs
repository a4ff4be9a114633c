//! Process metrics (CPU time, memory, open file descriptors, start time)
//! and `build_info`, read from `/proc/self` at scrape time only: nothing
//! on any request path. Registered by both the controller and the gateway.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/self/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;
/// Page size of `/proc/self/statm` (4 KiB on the platforms served).
const PAGE: u64 = 4096;

/// The collector; see the module docs.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What one look at `/proc/self` found.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: u64,
    start_time_seconds: f64,
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields count from after it.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss
    // pages) of proc(5), here offset by the two skipped.
    let cpu_seconds = (num(11)? + num(12)?) / TICKS;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
    let resident_pages = num(21)? as u64;
    Some(Sample {
        cpu_seconds,
        resident_bytes: resident_pages * PAGE,
        virtual_bytes: num(20)? as u64,
        open_fds: std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0),
        start_time_seconds: boot + num(19)? / TICKS,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let info = ConstGauge::new(1i64);
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        info.encode(
            encoder
                .encode_descriptor("build_info", "The running authgate's version", None, info.metric_type())?
                .encode_family(&labels)?,
        )?;
        let Some(s) = sample() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            ("process_resident_memory_bytes", "Resident memory size in bytes", s.resident_bytes as f64),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes", s.virtual_bytes as f64),
            ("process_open_fds", "Open file descriptors", s.open_fds as f64),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                s.start_time_seconds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_sampled_with_plausible_values() {
        let s = sample().expect("/proc/self is readable on Linux");
        assert!(s.resident_bytes > 1 << 20, "{s:?}");
        assert!(s.virtual_bytes >= s.resident_bytes, "{s:?}");
        assert!(s.open_fds >= 3, "{s:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0, "{s:?}");
    }

    #[test]
    fn the_collector_renders_build_info_and_process_families() {
        let mut registry = prometheus_client::registry::Registry::with_prefix("authgate_test");
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(&format!("authgate_test_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains("authgate_test_process_resident_memory_bytes "), "{text}");
        assert!(text.contains("authgate_test_process_cpu_seconds_total "), "{text}");
    }
}
