//! What a simulated pod shows in `status`, written as the kubelet's status manager writes it: a
//! strategic merge patch of pods/status (conditions merge by type, so conditions other writers
//! own survive), and the reverse, rebuilding a pod's state from its status after a restart.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::{json, Map, Value};

use crate::pod::{Cond, CondState, Ctr, SimPod, Stage, State, Term};
use crate::util::{self, time, Ts};

const COND_TYPES: [(&str, Cond); 4] =
    [("PodReadyToStartContainers", Cond::ReadyToStart), ("Initialized", Cond::Initialized), ("Ready", Cond::Ready), ("ContainersReady", Cond::ContainersReady)];

fn bool_status(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

impl SimPod {
    /// Reason and message of a kubelet-owned condition, as `status/generate.go` words them.
    fn cond_reason(&self, c: Cond) -> (Option<&'static str>, Option<String>) {
        let phase = self.phase();
        let fmt = |names: Vec<&str>| format!("[{}]", names.join(" "));
        match c {
            Cond::ReadyToStart => (None, None),
            Cond::Initialized => {
                if phase == "Succeeded" {
                    (Some("PodCompleted"), None)
                } else if self.conds[1].status {
                    (None, None)
                } else {
                    (Some("ContainersNotInitialized"), Some(format!("containers with incomplete status: {}", fmt(self.incomplete_inits()))))
                }
            }
            Cond::ContainersReady | Cond::Ready => {
                if phase == "Succeeded" {
                    return (Some("PodCompleted"), None);
                }
                if phase == "Failed" {
                    return (Some("PodFailed"), None);
                }
                let unready = self.unready();
                if !unready.is_empty() {
                    return (Some("ContainersNotReady"), Some(format!("containers with unready status: {}", fmt(unready))));
                }
                if c == Cond::Ready && !self.gates_ok() {
                    let msgs: Vec<String> = self
                        .shape
                        .readiness_gates
                        .iter()
                        .enumerate()
                        .take(32)
                        .filter(|(i, _)| self.gates_true & (1 << i) == 0)
                        .map(|(i, g)| {
                            if self.gates_seen & (1 << i) == 0 {
                                format!("corresponding condition of pod readiness gate {g:?} does not exist.")
                            } else {
                                format!("the status of pod readiness gate {g:?} is not \"True\", but False")
                            }
                        })
                        .collect();
                    return (Some("ReadinessGatesNotReady"), Some(msgs.join(", ")));
                }
                (None, None)
            }
        }
    }

    fn container_status(&self, spec_name: &str, image: &str, c: &Ctr, long_running: bool) -> Value {
        let mut o = Map::new();
        let image_norm = util::normalize_image(image);
        let mut state = json!({});
        let mut id = None;
        let mut image_id = String::new();
        match &c.state {
            State::Waiting(reason) => state = json!({"waiting": {"reason": reason}}),
            State::Running { started } => {
                id = Some(self.container_id(spec_name, c.restarts));
                state = json!({"running": {"startedAt": time(*started)}});
            }
            State::Terminated(t) => {
                id = Some(self.container_id(spec_name, t.run));
                state = json!({"terminated": self.term_json(spec_name, t)});
            }
            State::BackOff { secs } => {
                state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                    "back-off {secs}s restarting failed container={spec_name} pod={}_{}({})", self.name, self.ns, self.uid)}});
            }
        }
        if id.is_some() || c.last.is_some() {
            image_id = util::image_id(image);
        }
        if let Some(id) = id.or_else(|| c.last.as_ref().map(|t| self.container_id(spec_name, t.run))) {
            o.insert("containerID".into(), json!(id));
        }
        o.insert("image".into(), json!(image_norm));
        o.insert("imageID".into(), json!(image_id));
        o.insert("lastState".into(), c.last.as_ref().map(|t| json!({"terminated": self.term_json(spec_name, t)})).unwrap_or(json!({})));
        o.insert("name".into(), json!(spec_name));
        // A running container is ready (no probes); a plain init container is ready once it
        // completed successfully (the prober manager's rule).
        let ready = if long_running { c.running() } else { matches!(&c.state, State::Terminated(t) if t.code == 0) };
        o.insert("ready".into(), json!(ready));
        o.insert("restartCount".into(), json!(c.restarts));
        o.insert("started".into(), json!(c.running()));
        o.insert("state".into(), state);
        Value::Object(o)
    }

    fn term_json(&self, name: &str, t: &Term) -> Value {
        json!({"containerID": self.container_id(name, t.run), "exitCode": t.code, "finishedAt": time(t.finished),
               "reason": t.reason(), "startedAt": time(t.started)})
    }

    /// The strategic merge patch of pods/status that reports this pod.
    pub fn status_patch(&self, host_ip: Ipv4Addr) -> Value {
        let mut st = Map::new();
        if let Some((reason, message)) = &self.rejected {
            st.insert("phase".into(), json!("Failed"));
            st.insert("reason".into(), json!(reason));
            st.insert("message".into(), json!(message));
            st.insert("startTime".into(), json!(time(self.start_time)));
            return json!({"metadata": {"uid": &*self.uid}, "status": st});
        }
        let mut conds = Vec::new();
        for (name, c) in COND_TYPES {
            let CondState { status, since } = self.conds[c as usize];
            let (reason, message) = self.cond_reason(c);
            conds.push(json!({"type": name, "status": bool_status(status), "lastProbeTime": null, "lastTransitionTime": time(since),
                              "reason": reason, "message": message}));
        }
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": time(self.scheduled_since)}));
        let order: Vec<Value> = conds.iter().map(|c| json!({"type": c["type"]})).collect();
        st.insert("$setElementOrder/conditions".into(), json!(order));
        st.insert("conditions".into(), json!(conds));
        let host = host_ip.to_string();
        st.insert("hostIP".into(), json!(host));
        st.insert("hostIPs".into(), json!([{"ip": host}]));
        if let Some(ip) = self.ip {
            st.insert("podIP".into(), json!(ip.to_string()));
            st.insert("podIPs".into(), json!([{"ip": ip.to_string()}]));
        }
        st.insert("phase".into(), json!(self.phase()));
        st.insert("startTime".into(), json!(time(self.start_time)));
        if !self.inits.is_empty() {
            let v: Vec<Value> = self.shape.init.iter().zip(&self.inits).map(|(s, c)| self.container_status(&s.name, &s.image, c, s.sidecar)).collect();
            st.insert("initContainerStatuses".into(), json!(v));
        }
        let v: Vec<Value> = self.shape.containers.iter().zip(&self.ctrs).map(|(s, c)| self.container_status(&s.name, &s.image, c, true)).collect();
        st.insert("containerStatuses".into(), json!(v));
        json!({"metadata": {"uid": &*self.uid}, "status": st})
    }

    /// Picks up where a previous simulator left a pod: its IP, start time, containers' states,
    /// restart counts and conditions' transition times. Returns false if the status is not
    /// one this simulator wrote (the pod then starts over).
    pub fn adopt(&mut self, pod: &Pod) -> bool {
        let Some(st) = &pod.status else { return false };
        let phase = st.phase.as_deref().unwrap_or("");
        let Some(start) = st.start_time.as_ref().map(util::ts) else { return false };
        let ip: Option<Ipv4Addr> = st.pod_ip.as_deref().and_then(|s| s.parse().ok());
        if phase != "Running" || (ip.is_none() && !self.shape.host_network) {
            return false;
        }
        let statuses = st.container_statuses.clone().unwrap_or_default();
        let inits = st.init_container_statuses.clone().unwrap_or_default();
        let find = |list: &[ContainerStatus], n: &str| list.iter().find(|s| s.name == n).cloned();
        let mut ctrs = Vec::new();
        for s in &self.shape.containers {
            let Some(cs) = find(&statuses, &s.name) else { return false };
            ctrs.push(ctr_from(&cs, start));
        }
        let mut ictrs = Vec::new();
        for s in &self.shape.init {
            let Some(cs) = find(&inits, &s.name) else { return false };
            ictrs.push(ctr_from(&cs, start));
        }
        self.ctrs = ctrs;
        self.inits = ictrs;
        self.ip = if self.shape.host_network { None } else { ip };
        self.start_time = start;
        self.sandbox = true;
        self.stage = Stage::Running;
        let existing = st.conditions.clone().unwrap_or_default();
        for (name, c) in COND_TYPES {
            if let Some(e) = existing.iter().find(|e| e.type_ == name) {
                let since = e.last_transition_time.as_ref().map(util::ts).unwrap_or(start);
                self.conds[c as usize] = CondState { status: e.status == "True", since };
            }
        }
        true
    }
}

fn ctr_from(cs: &ContainerStatus, fallback: Ts) -> Ctr {
    let term = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated, run: u32| Term {
        code: t.exit_code,
        started: t.started_at.as_ref().map(util::ts).unwrap_or(fallback),
        finished: t.finished_at.as_ref().map(util::ts).unwrap_or(fallback),
        run,
    };
    let restarts = cs.restart_count.max(0) as u32;
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| term(t, restarts.saturating_sub(1)));
    let state = cs.state.clone().unwrap_or_default();
    let state = if let Some(r) = state.running {
        State::Running { started: r.started_at.as_ref().map(util::ts).unwrap_or(fallback) }
    } else if let Some(t) = state.terminated {
        State::Terminated(term(&t, restarts))
    } else if state.waiting.as_ref().and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff") {
        // Restart right away: the back-off is not remembered across restarts (neither is the
        // kubelet's).
        State::BackOff { secs: 0 }
    } else {
        State::Running { started: fallback }
    };
    Ctr { state, restarts, last }
}
