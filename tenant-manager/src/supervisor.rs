//! A supervised child process: started, watched, restarted with exponential backoff when it
//! dies, stopped gracefully (SIGTERM, then SIGKILL after a grace period). Used by the tenant
//! manager for tenant masters and by `kplex up` for every platform component.
//!
//! Each child runs in its own process group (a Ctrl-C at the terminal reaches only its
//! supervisor, which stops children in order) and gets SIGKILL if its supervisor dies
//! (`PR_SET_PDEATHSIG`), so no child outlives a crashed supervisor. Its stdout and stderr are
//! appended to a log file; readiness is a stdout line containing a marker (kplex components
//! print a line containing `ready`).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, watch};

/// How long a child gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that ran this long before dying is restarted after the shortest backoff again.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// For logs.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
    /// The child is ready once it prints a stdout line containing this; `None`: once spawned.
    pub ready_marker: Option<String>,
    /// Where to write the current pid (removed on stop).
    pub pid_file: Option<PathBuf>,
}

/// Where a supervised child is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Spawned (pid), not yet ready.
    Starting {
        pid: u32,
    },
    Ready {
        pid: u32,
    },
    /// Died (or could not be spawned); restarted after a backoff.
    Restarting {
        restarts: u32,
        last_exit: String,
    },
    Stopped,
}

/// Called on every state change (the tenant manager requeues the tenant).
pub type Notify = Arc<dyn Fn(&State) + Send + Sync>;

/// A child under supervision; dropping it without [`Supervised::stop`] kills the child.
pub struct Supervised {
    pub spec: ChildSpec,
    state: watch::Receiver<State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Supervised {
    /// Spawns the child and keeps it running until [`Supervised::stop`].
    pub fn start(spec: ChildSpec, notify: Option<Notify>) -> Supervised {
        let (tx, rx) = watch::channel(State::Stopped);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(spec.clone(), Arc::new(tx), stop_rx, notify));
        Supervised { spec, state: rx, stop: Some(stop_tx), task: Some(task) }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// Waits until the child is ready (its pid), or fails after `timeout` with the last state.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<u32, String> {
        let mut rx = self.state.clone();
        let wait = async move { rx.wait_for(|s| matches!(s, State::Ready { .. })).await.map(|s| s.clone()) };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(State::Ready { pid })) => Ok(pid),
            Ok(Ok(s)) => Err(format!("{s:?}")),
            Ok(Err(_)) => Err("supervisor gone".into()),
            Err(_) => Err(format!("{} not ready after {timeout:?} ({:?}; log {})", self.spec.name, self.state(), self.spec.log.display())),
        }
    }

    /// Stops the child (SIGTERM, SIGKILL after [`STOP_GRACE`]) and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // Dropping the stop sender ends the loop, which kills the child (kill_on_drop).
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn spawn(spec: &ChildSpec) -> std::io::Result<tokio::process::Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = OpenOptions::new().create(true).append(true).open(&spec.log)?;
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log)).process_group(0).kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

fn set(tx: &watch::Sender<State>, notify: &Option<Notify>, s: State) {
    tx.send_replace(s.clone());
    if let Some(n) = notify {
        n(&s);
    }
}

async fn run(spec: ChildSpec, tx: Arc<watch::Sender<State>>, mut stop: oneshot::Receiver<()>, notify: Option<Notify>) {
    let mut restarts = 0u32;
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let last_exit = match spawn(&spec) {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                if let Some(f) = &spec.pid_file {
                    let _ = std::fs::write(f, format!("{pid}\n"));
                }
                set(&tx, &notify, State::Starting { pid });
                if spec.ready_marker.is_none() {
                    set(&tx, &notify, State::Ready { pid });
                }
                if let Some(out) = child.stdout.take() {
                    tokio::spawn(copy_stdout(out, spec.clone(), pid, tx.clone(), notify.clone()));
                }
                tokio::select! {
                    status = child.wait() => {
                        // Restarts count those in a row without becoming ready.
                        if *tx.borrow() == (State::Ready { pid }) {
                            restarts = 0;
                        }
                        status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
                    }
                    _ = &mut stop => {
                        terminate(&mut child, pid).await;
                        if let Some(f) = &spec.pid_file {
                            let _ = std::fs::remove_file(f);
                        }
                        set(&tx, &notify, State::Stopped);
                        return;
                    }
                }
            }
            Err(e) => format!("spawn failed: {e}"),
        };
        if started.elapsed() > BACKOFF_RESET_AFTER {
            backoff = BACKOFF_MIN;
        }
        restarts += 1;
        tracing::warn!(child = %spec.name, %last_exit, restarts, backoff_ms = backoff.as_millis() as u64, "child died; restarting");
        set(&tx, &notify, State::Restarting { restarts, last_exit });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop => {
                set(&tx, &notify, State::Stopped);
                return;
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Appends the child's stdout to its log and marks it ready on the marker line.
async fn copy_stdout(out: tokio::process::ChildStdout, spec: ChildSpec, pid: u32, tx: Arc<watch::Sender<State>>, notify: Option<Notify>) {
    let mut log = tokio::fs::OpenOptions::new().create(true).append(true).open(&spec.log).await.ok();
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(f) = log.as_mut() {
            let _ = f.write_all(format!("{line}\n").as_bytes()).await;
        }
        if spec.ready_marker.as_deref().is_some_and(|m| line.contains(m)) {
            // Only the child this reader belongs to, and only once.
            let changed = tx.send_if_modified(|s| {
                if *s == (State::Starting { pid }) {
                    *s = State::Ready { pid };
                    true
                } else {
                    false
                }
            });
            if changed {
                if let Some(n) = &notify {
                    n(&State::Ready { pid });
                }
            }
        }
    }
}

async fn terminate(child: &mut tokio::process::Child, pid: u32) {
    if pid > 0 {
        // SAFETY: plain kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, script: &str) -> ChildSpec {
        ChildSpec {
            name: "t".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            log: dir.join("t.log"),
            ready_marker: Some("ready".into()),
            pid_file: Some(dir.join("t.pid")),
        }
    }

    #[tokio::test]
    async fn restarts_a_dead_child_and_stops_cleanly() {
        let dir = std::env::temp_dir().join(format!("kplex-sup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Supervised::start(spec(&dir, "echo ready; sleep 30"), None);
        let pid = s.wait_ready(Duration::from_secs(5)).await.unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let mut rx = s.state.clone();
        rx.wait_for(|st| matches!(st, State::Ready { pid: p } if *p != pid)).await.unwrap();
        let pid2 = s.wait_ready(Duration::from_secs(5)).await.unwrap();
        s.stop().await;
        // The second child is gone (reaped): kill(pid, 0) fails.
        assert_ne!(unsafe { libc::kill(pid2 as i32, 0) }, 0);
        assert!(!dir.join("t.pid").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
