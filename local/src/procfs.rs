//! What Linux says about a process: its peak resident set and its CPU time.

use std::time::Duration;

/// `USER_HZ`, the unit of `/proc/<pid>/stat`'s times: 100 on every Linux ABI this runs on
/// (x86-64 and arm64 fix it at 100 whatever the kernel's HZ), so no `sysconf` call is needed.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The process's peak resident set size (`VmHWM`), in bytes, while it is alive.
pub fn peak_rss(pid: u32) -> Option<u64> {
    parse_vm_hwm(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// User plus system CPU time of all the process's threads so far, while it is alive.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
        .map(|ticks| Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND))
}

pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?;
    let kilobytes = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kilobytes * 1024)
}

/// `utime + stime` (fields 14 and 15) in clock ticks. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  10 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_vm_hwm("State: Z (zombie)\n"), None);
    }

    #[test]
    fn cpu_ticks_are_user_plus_system_past_an_awkward_name() {
        let stat =
            "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 37 5 0 0 20 0 3 0 123 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(42));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak() {
        assert!(cpu_time(std::process::id()).is_some());
        assert!(peak_rss(std::process::id()).is_some_and(|bytes| bytes > 0));
    }
}
