//! One simulated pod's lifecycle, as the kubelet drives it: sandbox creation (ContainerCreating),
//! init containers one after another, regular containers running, exits and restarts by
//! restartPolicy (with the kubelet's crash-loop back-off), and graceful stop on deletion.
//!
//! The model is pure: each transition takes the current time and returns the timers it wants
//! ([`Due`]); the loop in `sim` owns the clock, the API writes and the IP pool. What a pod
//! shows in its status is rendered by `podstatus`. There are no probes: a running container is
//! ready at once (readiness and startup probes are not simulated), and readiness gates are
//! honoured.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::hooks::Hooks;
use crate::quantity;
use crate::util::{self, Ts};

/// Index of a simulated node.
pub type NodeId = u32;

/// What the spec says about one container.
#[derive(Debug, Clone)]
pub struct CtrSpec {
    pub name: Box<str>,
    pub image: Box<str>,
    /// A restartable init container (sidecar: `restartPolicy: Always`).
    pub sidecar: bool,
}

/// The pod's restartPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// Resource requests the kubelet's admission compares with the node's allocatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    pub cpu_m: u128,
    pub memory_m: u128,
    pub gpus_m: u128,
}

impl Requests {
    fn of(c: &k8s_openapi::api::core::v1::Container) -> Requests {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let get = |k: &str| r.and_then(|r| r.get(k)).and_then(|q| quantity::parse_millis(&q.0)).unwrap_or(0);
        Requests { cpu_m: get("cpu"), memory_m: get("memory"), gpus_m: get("nvidia.com/gpu") }
    }
    fn add(self, o: Requests) -> Requests {
        Requests { cpu_m: self.cpu_m + o.cpu_m, memory_m: self.memory_m + o.memory_m, gpus_m: self.gpus_m + o.gpus_m }
    }
    fn max(self, o: Requests) -> Requests {
        Requests { cpu_m: self.cpu_m.max(o.cpu_m), memory_m: self.memory_m.max(o.memory_m), gpus_m: self.gpus_m.max(o.gpus_m) }
    }
}

/// The parts of a pod's spec the simulation needs (kept instead of the whole object).
#[derive(Debug, Clone)]
pub struct Shape {
    pub containers: Vec<CtrSpec>,
    pub init: Vec<CtrSpec>,
    pub restart: Restart,
    pub host_network: bool,
    pub requests: Requests,
    pub readiness_gates: Vec<Box<str>>,
}

impl Shape {
    pub fn of(pod: &Pod) -> Shape {
        let spec = pod.spec.clone().unwrap_or_default();
        let c = |c: &k8s_openapi::api::core::v1::Container, init: bool| CtrSpec {
            name: c.name.as_str().into(),
            image: c.image.as_deref().unwrap_or("").into(),
            sidecar: init && c.restart_policy.as_deref() == Some("Always"),
        };
        // Effective requests: the larger of the regular containers plus sidecars and the
        // largest plain init container (what the scheduler and the kubelet's admission use).
        let mut regular = spec.containers.iter().map(Requests::of).fold(Requests::default(), Requests::add);
        let mut init_max = Requests::default();
        for ic in spec.init_containers.iter().flatten() {
            if ic.restart_policy.as_deref() == Some("Always") {
                regular = regular.add(Requests::of(ic));
            } else {
                init_max = init_max.max(Requests::of(ic));
            }
        }
        Shape {
            containers: spec.containers.iter().map(|x| c(x, false)).collect(),
            init: spec.init_containers.iter().flatten().map(|x| c(x, true)).collect(),
            restart: match spec.restart_policy.as_deref() {
                Some("Never") => Restart::Never,
                Some("OnFailure") => Restart::OnFailure,
                _ => Restart::Always,
            },
            host_network: spec.host_network == Some(true),
            requests: regular.max(init_max),
            readiness_gates: spec.readiness_gates.iter().flatten().map(|g| g.condition_type.as_str().into()).collect(),
        }
    }
}

/// A container run that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub code: i32,
    pub started: Ts,
    pub finished: Ts,
    /// Which run of the container it was (part of its containerID).
    pub run: u32,
}

impl Term {
    /// The reason the runtime gives: Completed for exit 0, Error otherwise.
    pub fn reason(&self) -> &'static str {
        if self.code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not started yet (ContainerCreating, PodInitializing).
    Waiting(&'static str),
    Running {
        started: Ts,
    },
    Terminated(Term),
    /// Exited and waiting for its restart back-off to pass.
    BackOff {
        secs: u64,
    },
}

/// One container's runtime state.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub state: State,
    pub restarts: u32,
    pub last: Option<Term>,
}

impl Ctr {
    fn new(reason: &'static str) -> Ctr {
        Ctr { state: State::Waiting(reason), restarts: 0, last: None }
    }
    pub fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

/// Where the pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Sandbox being created, images pulled: Pending, ContainerCreating.
    Creating,
    /// Init container `i` running: Pending, Init:i/n.
    Init(usize),
    /// Regular containers started (some may have exited): Running.
    Running,
    /// Deletion requested; containers are stopping (still shown running).
    Stopping,
    /// Succeeded or Failed: nothing runs any more.
    Terminal,
    /// The kubelet refused the pod at admission (Failed, OutOf<resource>).
    Rejected,
    /// Deleted before anything ran (or after it finished): only the deletion is confirmed.
    Gone,
}

/// Which pod condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    ReadyToStart = 0,
    Initialized = 1,
    Ready = 2,
    ContainersReady = 3,
}

/// A kubelet-owned condition's status and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CondState {
    pub status: bool,
    pub since: Ts,
}

/// What the pod wants to happen later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// The sandbox is up: allocate the IP, start init containers or containers.
    Sandbox,
    /// Init container `i` finished.
    InitDone(usize),
    /// Container `c` (index) exits, on its run `run`.
    Exit(usize, u32),
    /// Container `c` restarts after its back-off, on run `run`.
    Restart(usize, u32),
    /// The containers have stopped after a deletion: write the final status.
    Stop,
}

/// A step and how long from now.
pub type Due = (Step, Duration);

/// A simulated pod.
#[derive(Debug, Clone)]
pub struct SimPod {
    pub ns: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
    pub node: NodeId,
    pub shape: Shape,
    pub hooks: Hooks,
    pub ip: Option<Ipv4Addr>,
    pub start_time: Ts,
    pub scheduled_since: Ts,
    pub stage: Stage,
    pub sandbox: bool,
    pub ctrs: Vec<Ctr>,
    pub inits: Vec<Ctr>,
    pub conds: [CondState; 4],
    /// Bit i: readiness gate i has a condition on the pod / that condition is True.
    pub gates_seen: u32,
    pub gates_true: u32,
    /// Marked not ready by the node lifecycle stand-in while its node is lost.
    pub node_lost: bool,
    /// Admission rejection (reason, message).
    pub rejected: Option<(String, String)>,
    /// The pod has been deleted from the API (delete confirmed), waiting for the watch.
    pub delete_sent: bool,
    /// Admitted: holds its node's resources and its IP (until it finishes or goes).
    pub holding: bool,
    /// `ip` was allocated from (or reserved in) the node's pool, so it goes back there.
    pub ip_held: bool,
    /// A status showing it Running has been written (for the startup latency metric).
    pub running_reported: bool,
    /// Seen with a deletionTimestamp; the grace period it was given.
    pub deleting: Option<i64>,
}

/// The kubelet's crash-loop back-off before restart `restarts` (10 s doubling to 5 min; the first
/// restart is immediate), scaled by `base` (10 s upstream).
pub fn backoff(restarts: u32, base: Duration, max: Duration) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (restarts - 1).min(16);
    (base * factor).min(max)
}

impl SimPod {
    /// A pod the kubelet sees for the first time: Pending, containers waiting.
    pub fn new(pod: &Pod, node: NodeId, now: Ts) -> SimPod {
        let shape = Shape::of(pod);
        let waiting = if shape.init.is_empty() { "ContainerCreating" } else { "PodInitializing" };
        let sched = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled" && c.status == "True"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(util::ts)
            .unwrap_or(now);
        let not_yet = CondState { status: false, since: now };
        SimPod {
            ns: pod.metadata.namespace.as_deref().unwrap_or("").into(),
            name: pod.metadata.name.as_deref().unwrap_or("").into(),
            uid: pod.metadata.uid.as_deref().unwrap_or("").into(),
            node,
            ctrs: shape.containers.iter().map(|_| Ctr::new(waiting)).collect(),
            inits: shape.init.iter().map(|_| Ctr::new("PodInitializing")).collect(),
            hooks: Hooks::of(pod),
            shape,
            ip: None,
            start_time: now,
            scheduled_since: sched,
            stage: Stage::Creating,
            sandbox: false,
            conds: [not_yet; 4],
            gates_seen: 0,
            gates_true: 0,
            node_lost: false,
            rejected: None,
            delete_sent: false,
            holding: false,
            ip_held: false,
            running_reported: false,
            deleting: None,
        }
    }

    /// "ns/name".
    pub fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    /// The pod's phase as the kubelet computes it.
    pub fn phase(&self) -> &'static str {
        match self.stage {
            Stage::Creating | Stage::Init(_) => "Pending",
            Stage::Rejected | Stage::Gone => "Failed",
            Stage::Running | Stage::Stopping | Stage::Terminal => {
                if !self.ctrs.iter().all(|c| matches!(c.state, State::Terminated(_))) {
                    return "Running";
                }
                let failed = self.ctrs.iter().any(|c| matches!(&c.state, State::Terminated(t) if t.code != 0));
                if failed {
                    "Failed"
                } else {
                    "Succeeded"
                }
            }
        }
    }

    /// Whether regular containers have ever started (Initialized stays True afterwards).
    fn containers_started(&self) -> bool {
        matches!(self.stage, Stage::Running | Stage::Stopping | Stage::Terminal)
    }

    /// The containers to start once the sandbox is up: the first init container, or (with
    /// none) all regular containers.
    pub fn sandbox_ready(&mut self, now: Ts, ip: Option<Ipv4Addr>, init_runtime: Duration) -> Vec<Due> {
        self.ip = ip;
        self.sandbox = true;
        self.next_init(0, now, init_runtime)
    }

    /// Starts init containers from `i` on: sidecars start and stay running, a plain init
    /// container runs for `init_runtime`; after the last one the regular containers start.
    fn next_init(&mut self, mut i: usize, now: Ts, init_runtime: Duration) -> Vec<Due> {
        while i < self.inits.len() {
            self.inits[i].state = State::Running { started: now };
            if !self.shape.init[i].sidecar {
                self.stage = Stage::Init(i);
                return vec![(Step::InitDone(i), init_runtime)];
            }
            i += 1;
        }
        self.stage = Stage::Running;
        let mut due = Vec::new();
        for c in 0..self.ctrs.len() {
            self.ctrs[c].state = State::Running { started: now };
            due.extend(self.exit_due(c, now));
        }
        due
    }

    /// Init container `i` completed (exit 0).
    pub fn init_done(&mut self, i: usize, now: Ts, init_runtime: Duration) -> Vec<Due> {
        if self.stage != Stage::Init(i) {
            return vec![];
        }
        let started = match self.inits[i].state {
            State::Running { started } => started,
            _ => now,
        };
        self.inits[i].state = State::Terminated(Term { code: 0, started, finished: now, run: 0 });
        self.next_init(i + 1, now, init_runtime)
    }

    /// When container `c`'s current run exits, if a hook says it should.
    pub fn exit_due(&self, c: usize, now: Ts) -> Option<Due> {
        let State::Running { started } = self.ctrs[c].state else { return None };
        let after = self.hooks.exit_after_for(&self.shape.containers[c].name)?;
        let at = started + chrono::Duration::from_std(after).unwrap_or_default();
        let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
        Some((Step::Exit(c, self.ctrs[c].restarts), wait))
    }

    /// Container `c` exits with `code`: per restartPolicy it stays terminated or restarts (at
    /// once the first time, then after the crash-loop back-off). Returns the next steps.
    pub fn container_exit(&mut self, c: usize, code: i32, now: Ts, base: Duration, max: Duration) -> Vec<Due> {
        if !matches!(self.stage, Stage::Running) {
            return vec![];
        }
        let State::Running { started } = self.ctrs[c].state else { return vec![] };
        let term = Term { code, started, finished: now, run: self.ctrs[c].restarts };
        let restart = match self.shape.restart {
            Restart::Always => true,
            Restart::OnFailure => code != 0,
            Restart::Never => false,
        };
        let mut due = Vec::new();
        if restart {
            let wait = backoff(self.ctrs[c].restarts, base, max);
            self.ctrs[c].last = Some(term);
            if wait.is_zero() {
                due.extend(self.restart(c, now));
            } else {
                self.ctrs[c].state = State::BackOff { secs: wait.as_secs().max(1) };
                due.push((Step::Restart(c, self.ctrs[c].restarts), wait));
            }
        } else {
            self.ctrs[c].state = State::Terminated(term);
            if self.ctrs.iter().all(|c| matches!(c.state, State::Terminated(_))) {
                self.finish(now, 0);
            }
        }
        due
    }

    /// Container `c` starts again after its back-off.
    pub fn restart(&mut self, c: usize, now: Ts) -> Vec<Due> {
        if self.stage != Stage::Running {
            return vec![];
        }
        self.ctrs[c].restarts += 1;
        self.ctrs[c].state = State::Running { started: now };
        self.exit_due(c, now).into_iter().collect()
    }

    /// Everything stops: containers still running are terminated with `code` (sidecars and
    /// deleted pods), the sandbox goes away and the pod is Succeeded or Failed.
    pub fn finish(&mut self, now: Ts, code: i32) {
        for c in self.ctrs.iter_mut().chain(self.inits.iter_mut()) {
            match c.state {
                State::Running { started } => c.state = State::Terminated(Term { code, started, finished: now, run: c.restarts }),
                State::BackOff { .. } => {
                    if let Some(t) = c.last.clone() {
                        c.state = State::Terminated(t);
                    }
                }
                _ => {}
            }
        }
        self.sandbox = false;
        self.stage = Stage::Terminal;
    }

    /// The deletion was seen: the containers get `delay` to stop (capped at the grace period);
    /// returns when to write the final status.
    pub fn begin_stop(&mut self, grace: i64) -> Option<Due> {
        if self.deleting.is_some() {
            return None;
        }
        self.deleting = Some(grace);
        match self.stage {
            Stage::Running | Stage::Init(_) => {
                self.stage = Stage::Stopping;
                let cap = Duration::from_secs(grace.max(0) as u64);
                Some((Step::Stop, self.hooks.stop_delay.unwrap_or(Duration::ZERO).min(cap)))
            }
            _ => {
                self.stage = Stage::Gone;
                self.sandbox = false;
                None
            }
        }
    }

    /// The containers have stopped after the deletion: exit 0 when they stopped within the
    /// grace period, 137 (SIGKILL) when the grace period ran out first.
    pub fn stopped(&mut self, now: Ts) {
        if self.stage != Stage::Stopping {
            return;
        }
        let grace = Duration::from_secs(self.deleting.unwrap_or(0).max(0) as u64);
        let killed = self.hooks.stop_delay.map(|d| d >= grace && !d.is_zero()).unwrap_or(false);
        self.finish(now, if killed { 137 } else { 0 });
    }

    /// The kubelet's admission refused the pod.
    pub fn reject(&mut self, reason: String, message: String) {
        self.rejected = Some((reason, message));
        self.stage = Stage::Rejected;
        for c in self.ctrs.iter_mut().chain(self.inits.iter_mut()) {
            c.state = State::Waiting("");
        }
    }

    /// Whether the pod has finished (Succeeded, Failed, or rejected).
    pub fn finished(&self) -> bool {
        matches!(self.stage, Stage::Terminal | Stage::Rejected | Stage::Gone)
    }

    /// Names of containers that are not ready (sidecars first, as the kubelet lists them).
    pub fn unready(&self) -> Vec<&str> {
        let sidecars = self.shape.init.iter().zip(&self.inits).filter(|(s, c)| s.sidecar && !c.running()).map(|(s, _)| &*s.name);
        let regular = self.shape.containers.iter().zip(&self.ctrs).filter(|(_, c)| !c.running()).map(|(s, _)| &*s.name);
        sidecars.chain(regular).collect()
    }

    /// Names of init containers that have not completed (or, for sidecars, started).
    pub fn incomplete_inits(&self) -> Vec<&str> {
        self.shape
            .init
            .iter()
            .zip(&self.inits)
            .filter(|(s, c)| if s.sidecar { !c.running() } else { !matches!(&c.state, State::Terminated(t) if t.code == 0) })
            .map(|(s, _)| &*s.name)
            .collect()
    }

    /// The kubelet-owned conditions' statuses right now (before the lost-node override).
    pub fn cond_statuses(&self) -> [bool; 4] {
        let phase = self.phase();
        let terminal = phase == "Succeeded" || phase == "Failed";
        let initialized = self.containers_started() || self.incomplete_inits().is_empty();
        let containers_ready = !terminal && self.unready().is_empty();
        let gates_ok = self.gates_ok();
        let ready = containers_ready && gates_ok && !self.node_lost;
        [self.sandbox, initialized, ready, containers_ready]
    }

    /// Reads the readiness gates' conditions from the pod (others set them); true if changed.
    pub fn update_gates(&mut self, pod: &Pod) -> bool {
        let (mut seen, mut yes) = (0u32, 0u32);
        let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        for (i, g) in self.shape.readiness_gates.iter().enumerate().take(32) {
            if let Some(c) = conds.and_then(|c| c.iter().find(|c| c.type_ == **g)) {
                seen |= 1 << i;
                if c.status == "True" {
                    yes |= 1 << i;
                }
            }
        }
        let changed = (seen, yes) != (self.gates_seen, self.gates_true);
        (self.gates_seen, self.gates_true) = (seen, yes);
        changed
    }

    /// Whether every readiness gate's condition is True.
    pub fn gates_ok(&self) -> bool {
        let n = self.shape.readiness_gates.len().min(32);
        let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        self.gates_true & mask == mask
    }

    /// The steps an adopted pod resumes with: hooked exits of running containers, restarts of
    /// containers that were backing off.
    pub fn resume_steps(&self, now: Ts) -> Vec<Due> {
        let mut due = Vec::new();
        for (c, ctr) in self.ctrs.iter().enumerate() {
            match ctr.state {
                State::Running { .. } => due.extend(self.exit_due(c, now)),
                State::BackOff { .. } => due.push((Step::Restart(c, ctr.restarts), Duration::ZERO)),
                _ => {}
            }
        }
        due
    }

    /// Updates the conditions' transition times; true if any status changed.
    pub fn refresh_conditions(&mut self, now: Ts) -> bool {
        let mut changed = false;
        for (i, s) in self.cond_statuses().into_iter().enumerate() {
            if self.conds[i].status != s {
                self.conds[i] = CondState { status: s, since: now };
                changed = true;
            }
        }
        changed
    }

    /// The containerID of a container's run.
    pub fn container_id(&self, name: &str, run: u32) -> String {
        format!("containerd://{}", util::hex64(&[&self.uid, name, &run.to_string()]))
    }
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
