//! Idle cost of tenant masters with their controllers on (issue 4: 100 idle tenants must use
//! under 1% of one core together). Run as `cargo bench -p kplex-e2e --bench idle_tenants`
//! (hack/bench.sh builds the release binary and sets KPLEX_BIN).
//!
//! Starts BENCH_TENANTS tenant masters (default 100) on one throwaway etcd, lets them settle
//! for BENCH_SETTLE_SECS (default 10: controllers create their per-namespace objects), then
//! reads every process's CPU time from /proc over BENCH_IDLE_SECS (default 60).

use std::time::{Duration, Instant};

use kplex_e2e::bench::{cpu_secs, pss_private_kib, rss_kib, spawn_tm};
use kplex_e2e::{free_port, Etcd};

fn arg(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let tenants = arg("BENCH_TENANTS", 100) as usize;
    let settle = Duration::from_secs(arg("BENCH_SETTLE_SECS", 10));
    let window = Duration::from_secs(arg("BENCH_IDLE_SECS", 60));
    let etcd = Etcd::start();
    let root = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut children = Vec::new();
    for i in 0..tenants {
        let dir = root.path().join(format!("t{i}"));
        let (c, _) = spawn_tm(&etcd.endpoint, &format!("idle-{i}"), &dir, free_port(), &[]);
        children.push(c);
    }
    println!("started {tenants} tenant masters in {:.1} s", t0.elapsed().as_secs_f64());
    std::thread::sleep(settle);
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let before: Vec<f64> = pids.iter().map(|p| cpu_secs(*p)).collect();
    let etcd_before = cpu_secs(etcd.pid());
    std::thread::sleep(window);
    let after: Vec<f64> = pids.iter().map(|p| cpu_secs(*p)).collect();
    let etcd_after = cpu_secs(etcd.pid());
    let used: Vec<f64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    let total: f64 = used.iter().sum();
    let max = used.iter().cloned().fold(0.0, f64::max);
    let secs = window.as_secs_f64();
    let rss: u64 = pids.iter().map(|p| rss_kib(*p)).sum();
    println!("idle window: {secs:.0} s (after {:.0} s settling)", settle.as_secs_f64());
    println!(
        "tenant masters together: {:.3} CPU-s = {:.3}% of one core (busiest tenant {:.3}%, clock tick 10 ms)",
        total,
        100.0 * total / secs,
        100.0 * max / secs
    );
    println!("etcd: {:.3}% of one core", 100.0 * (etcd_after - etcd_before) / secs);
    println!("RSS of all tenant masters: {:.1} MiB ({:.1} MiB each; counts the shared binary text in every process)", rss as f64 / 1024.0, rss as f64 / 1024.0 / tenants as f64);
    let mem: Vec<(u64, u64)> = pids.iter().map(|p| pss_private_kib(*p)).collect();
    let pss: u64 = mem.iter().map(|m| m.0).sum();
    let private: Vec<u64> = mem.iter().map(|m| m.1).collect();
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "PSS of all tenant masters: {:.1} MiB ({:.2} MiB per tenant); private memory per tenant: mean {:.2} MiB, max {:.2} MiB",
        mib(pss),
        mib(pss) / tenants as f64,
        mib(private.iter().sum::<u64>()) / tenants as f64,
        mib(private.iter().copied().max().unwrap_or(0))
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
