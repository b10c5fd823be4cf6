//! Helpers shared by the benchmarks in tests/benches: starting tenant masters directly (timing
//! their `ready` line) and reading a process's CPU time and memory from /proc.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kplex_bin;

/// Starts `kplex tenant-master` with `extra` arguments and returns (child, time to its `ready`
/// line).
pub fn spawn_tm(etcd: &str, name: &str, dir: &std::path::Path, port: u16, extra: &[&str]) -> (std::process::Child, Duration) {
    let t0 = Instant::now();
    let mut child = Command::new(kplex_bin())
        .args(["tenant-master", "--name", name, "--etcd-endpoints", etcd])
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("tenant master exited before ready").unwrap();
    let took = t0.elapsed();
    assert!(line.contains("ready"), "unexpected first line: {line}");
    std::thread::spawn(move || for _ in lines {});
    (child, took)
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
}

/// Memory of a process from /proc/PID/smaps_rollup, in KiB: (PSS, private). RSS counts the
/// binary's text in full for every process although all tenant masters share it; PSS divides
/// shared pages among the processes mapping them, so summed over tenants it is what they cost.
pub fn pss_private_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("Pss:"), field("Private_Clean:") + field("Private_Dirty:"))
}
