//! Shared helpers for the end-to-end tests: a real etcd on a free loopback port with a temporary
//! data dir, real `kplex` processes, and the real kubectl. Everything started is killed on drop.

pub mod bench;
pub mod kubelet;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The workspace's target directory, where `cargo build -p kplex` put the binary.
pub fn kplex_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KPLEX_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("kplex");
    assert!(bin.exists(), "{} missing: run `cargo build -p kplex` first (hack/test.sh does)", bin.display());
    bin
}

/// A throwaway etcd.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (cp, pp) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{cp}");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{pp}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{pp}")])
            .args(["--initial-cluster", &format!("default=http://127.0.0.1:{pp}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd on PATH (apt-get install etcd-server)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", cp)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Etcd { child, endpoint, _dir: dir }
    }

    /// The etcd process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tenant master arguments for tests of the API server's own output (what a create or an apply
/// stores): the workload controllers are off, so no controller writes status, annotations or
/// managedFields of its own onto the objects under test; everything else runs.
pub const API_ONLY: &[&str] = &["--disable-controllers", "deployment,replicaset,replicationcontroller,statefulset,daemonset,job,cronjob"];

/// A running `kplex tenant-master`.
pub struct TenantMaster {
    child: Option<Child>,
    pub name: String,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub port: u16,
    etcd: String,
    extra: Vec<String>,
}

impl TenantMaster {
    /// Starts a tenant master in `dir` and waits for its `ready` line.
    pub fn start(etcd: &Etcd, name: &str, dir: &Path, extra: &[&str]) -> TenantMaster {
        let mut tm = TenantMaster {
            child: None,
            name: name.into(),
            dir: dir.to_path_buf(),
            kubeconfig: dir.join("kubeconfig"),
            port: free_port(),
            etcd: etcd.endpoint.clone(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        tm.spawn();
        tm
    }

    fn spawn(&mut self) {
        let mut child = Command::new(kplex_bin())
            .args(["tenant-master", "--name", &self.name, "--etcd-endpoints", &self.etcd])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let line = lines.next().expect("tenant master exited before ready").unwrap();
        assert!(line.contains("ready"), "unexpected first line: {line}");
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The process id (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// curl arguments authenticating as the tenant's admin (client certificate).
    pub fn admin_cert(&self) -> Vec<String> {
        let pki = self.dir.join("pki");
        ["--cert", "admin.crt", "--key", "admin.key"]
            .iter()
            .map(|a| if a.starts_with("--") { a.to_string() } else { pki.join(a).display().to_string() })
            .collect()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Runs kubectl (the dispatcher on PATH, or `KUBECTL`) against this tenant.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), &self.kubeconfig, args, None)
    }

    /// A kube client for this tenant.
    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        kube::Client::try_from(cfg).unwrap()
    }
}

impl Drop for TenantMaster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process of the `kplex` binary (any subcommand) that prints a line containing
/// `ready` on stdout once it serves. Killed on drop; `restart` kills it (SIGKILL) and starts it
/// again with the same arguments.
pub struct Process {
    child: Option<Child>,
    args: Vec<String>,
    /// The line it printed when ready.
    pub ready_line: String,
}

impl Process {
    /// Starts `kplex <args>` and waits (up to 60 s) for its ready line.
    pub fn start(args: &[&str]) -> Process {
        let mut p = Process { child: None, args: args.iter().map(|s| s.to_string()).collect(), ready_line: String::new() };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let mut child = Command::new(kplex_bin()).args(&self.args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let first = lines.next().and_then(|l| l.ok());
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(l)) => l,
            Ok(None) => {
                let status = child.wait().ok();
                panic!("kplex {} exited before ready ({status:?})", self.args.join(" "))
            }
            Err(_) => {
                let _ = child.kill();
                panic!("kplex {} not ready after 60 s", self.args.join(" "))
            }
        };
        assert!(line.contains("ready"), "unexpected first line of kplex {}: {line}", self.args.join(" "));
        self.ready_line = line;
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL) and starts it again.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `kplex node-simulator` against a tenant master (as the super cluster).
pub fn node_simulator(tm: &TenantMaster, extra: &[&str]) -> Process {
    let kc = tm.kubeconfig.display().to_string();
    let mut args = vec!["node-simulator", "--kubeconfig", &kc];
    args.extend_from_slice(extra);
    Process::start(&args)
}

/// What a curl run returned: status code, response headers and body.
#[derive(Debug)]
pub struct CurlOutput {
    pub code: u16,
    pub headers: String,
    pub body: String,
}

/// curl against a tenant with its CA; `auth` is e.g. `tm.admin_cert()` or a bearer header.
pub fn curl(tm: &TenantMaster, auth: &[String], args: &[&str]) -> CurlOutput {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(tm.dir.join("pki/ca.crt"))
        .args(auth)
        .args(args)
        .output()
        .expect("curl");
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let (rest, code) = s.rsplit_once('\n').unwrap();
    let (mut headers, mut body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    // Interim responses (100 Continue) come first: keep the final header block.
    while body.starts_with("HTTP/") {
        (headers, body) = body.split_once("\r\n\r\n").unwrap_or((body, ""));
    }
    CurlOutput { code: code.trim().parse().unwrap_or(0), headers: headers.to_string(), body: body.to_string() }
}

/// What a kubectl run printed.
#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout of a run that must have succeeded (panics with stderr otherwise).
    #[track_caller]
    pub fn must(self) -> String {
        assert!(self.ok, "kubectl failed: {}{}", self.stderr, self.stdout);
        self.stdout
    }
}

/// Runs `kubectl` (a path or name) with a kubeconfig, optional stdin.
pub fn kubectl_with(bin: &str, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl on PATH");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Output { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

/// The versioned kubectl binaries installed beside the dispatcher (`kubectl.1.NN`), newest last.
pub fn kubectl_versions() -> Vec<PathBuf> {
    let Ok(real) = std::fs::canonicalize(which("kubectl").unwrap_or_default()) else { return vec![] };
    let Some(dir) = real.parent() else { return vec![] };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.file_name().and_then(|n| n.to_str()).map(|n| n.starts_with("kubectl.1.")).unwrap_or(false)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.exists()))
}

// ---- Platform (issue 5): `kplex up`, the tenant verbs and etcdctl ----

/// A running `kplex up` on its own temporary data dir. Dropping it stops the platform with
/// SIGTERM (SIGKILL after 20 s).
pub struct Platform {
    child: Option<Child>,
    dir: tempfile::TempDir,
    nodes: usize,
    /// The line `kplex up` printed when ready.
    pub ready_line: String,
}

impl Platform {
    /// Starts `kplex up --nodes N` on a fresh data dir and waits for its ready line.
    pub fn up(nodes: usize) -> Platform {
        let mut p = Platform { child: None, dir: tempfile::tempdir().unwrap(), nodes, ready_line: String::new() };
        p.spawn();
        p
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let mut child = Command::new(kplex_bin())
            .args(["up", "--nodes", &self.nodes.to_string(), "--data-dir"])
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let _ = tx.send(lines.next().and_then(|l| l.ok()));
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(l)) => l,
            other => {
                let _ = child.kill();
                panic!("kplex up not ready: {other:?}")
            }
        };
        assert!(line.contains("ready"), "unexpected first line of kplex up: {line}");
        self.ready_line = line;
        self.child = Some(child);
    }

    /// Sends `sig` (e.g. "INT") to `kplex up` and waits for it to exit; true if it exited 0.
    pub fn stop_with(&mut self, sig: &str) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").args([&format!("-{sig}"), &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `kplex up` again on the same data dir.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// Runs `kplex <args> --data-dir DIR`.
    pub fn kplex(&self, args: &[&str]) -> Output {
        let out = Command::new(kplex_bin()).args(args).arg("--data-dir").arg(self.dir.path()).output().unwrap();
        Output { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    }

    /// kubectl against the super cluster.
    pub fn super_kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), &self.dir.path().join("super.kubeconfig"), args, None)
    }

    /// kubectl against tenant `name` (its kubeconfig as `kplex create` wrote it).
    pub fn tenant_kubectl(&self, name: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let kc = self.dir.path().join("tenants").join(name).join("kubeconfig");
        kubectl_with(&std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), &kc, args, stdin)
    }

    /// The platform's etcd endpoint (DIR/platform.json).
    pub fn etcd_endpoint(&self) -> String {
        let st: serde_json::Value = serde_json::from_slice(&std::fs::read(self.dir.path().join("platform.json")).unwrap()).unwrap();
        st["etcd_endpoints"][0].as_str().unwrap().to_string()
    }

    /// etcdctl as `user` with the password in `password_file`.
    pub fn etcdctl(&self, user: &str, password_file: &Path, args: &[&str]) -> Output {
        let pw = std::fs::read_to_string(password_file).unwrap();
        let out = Command::new("etcdctl")
            .args(["--endpoints", &self.etcd_endpoint(), "--dial-timeout", "3s", "--command-timeout", "5s", "--user", &format!("{user}:{}", pw.trim())])
            .args(args)
            .output()
            .expect("etcdctl on PATH (apt-get install etcd-client)");
        Output { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    }

    /// etcdctl as root.
    pub fn etcdctl_root(&self, args: &[&str]) -> Output {
        self.etcdctl("root", &self.dir.path().join("etcd/root.password"), args)
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop_with("TERM");
    }
}

/// Retries `f` until it returns Some (every 100 ms), panicking with `what` after `secs`.
#[track_caller]
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
