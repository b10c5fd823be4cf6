//! The platform's benchmarks (issue 5). Run as `./hack/bench.sh platform` (builds the release
//! binary and sets KPLEX_BIN).
//!
//! 1. `kplex create NAME` to a serving tenant (the command returns only once the tenant's API
//!    answers with the kubeconfig it wrote), BENCH_CREATES (default 100) sequential creates on
//!    one `kplex up`: p50, p90, p99, max of the whole command's wall time.
//! 2. Those tenants left idle for BENCH_SETTLE_SECS (default 15): memory of every tenant master
//!    (the processes in DATA_DIR/tenants/*/master.pid), per tenant and in total: RSS, and from
//!    /proc/PID/smaps_rollup the private anonymous memory and PSS (RSS counts the pages of the
//!    one shared `kplex` binary in every process; PSS divides them among the processes).

use std::time::{Duration, Instant};

use kplex_e2e::bench::rss_kib;
use kplex_e2e::Platform;

fn arg(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A field of /proc/PID/smaps_rollup in KiB.
fn smaps_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let creates = arg("BENCH_CREATES", 100) as usize;
    let settle = Duration::from_secs(arg("BENCH_SETTLE_SECS", 15));
    let t0 = Instant::now();
    let p = Platform::up(3);
    println!("kplex up: ready after {:.2} s ({})", t0.elapsed().as_secs_f64(), p.ready_line);
    let mut took = Vec::with_capacity(creates);
    for i in 0..creates {
        let name = format!("t{i}");
        let t = Instant::now();
        let out = p.kplex(&["create", &name]);
        took.push(t.elapsed());
        assert!(out.ok, "create {name}: {}", out.stderr);
    }
    let mut sorted = took.clone();
    sorted.sort();
    println!("\n## kplex create to serving ({creates} sequential creates on one platform, wall time of the command)");
    println!(
        "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; first {:.0} ms, last {:.0} ms",
        pct(&sorted, 0.50),
        pct(&sorted, 0.90),
        pct(&sorted, 0.99),
        pct(&sorted, 1.0),
        took[0].as_secs_f64() * 1000.0,
        took[creates - 1].as_secs_f64() * 1000.0
    );
    std::thread::sleep(settle);
    let pids: Vec<u32> = (0..creates)
        .filter_map(|i| std::fs::read_to_string(p.dir().join(format!("tenants/t{i}/master.pid"))).ok())
        .filter_map(|s| s.trim().parse::<u32>().ok())
        .collect();
    let mib = |k: u64| k as f64 / 1024.0;
    println!("\n## {} idle tenant masters, {} s after the last create", pids.len(), settle.as_secs());
    let report = |what: &str, mut v: Vec<u64>| {
        v.sort();
        let total: u64 = v.iter().sum();
        println!(
            "{what} per tenant: median {:.1} MiB, max {:.1} MiB, mean {:.1} MiB; total {:.0} MiB",
            mib(v[v.len() / 2]),
            mib(v[v.len() - 1]),
            mib(total / v.len() as u64),
            mib(total)
        );
    };
    report("RSS", pids.iter().map(|p| rss_kib(*p)).collect());
    report("PSS", pids.iter().map(|p| smaps_kib(*p, "Pss:")).collect());
    report("private anonymous", pids.iter().map(|p| smaps_kib(*p, "Anonymous:")).collect());
    let comp = |f: &str| std::fs::read_to_string(p.dir().join(format!("logs/{f}.pid"))).ok().and_then(|s| s.trim().parse::<u32>().ok()).map(rss_kib);
    for c in ["etcd", "super-api", "tenant-manager", "node-simulator", "super-scheduler"] {
        if let Some(k) = comp(c) {
            println!("{c}: RSS {:.1} MiB", mib(k));
        }
    }
}
