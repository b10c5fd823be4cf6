//! The event loop's pod side: pods appearing on a simulated node (admitted, or adopted after a
//! restart), their steps coming due, deletions, and what happens once a write lands.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;

use crate::hooks::{Hooks, NodeMode};
use crate::node::PodRef;
use crate::pod::{NodeId, SimPod, Stage, State, Step};
use crate::sim::{release, Sim, Timer, Work};
use crate::util::now;

fn key_of(p: &Pod) -> String {
    format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or(""))
}

fn transition(to: &'static str) {
    metrics::counter!("kplex_nodesim_pod_transitions_total", "to" => to).increment(1);
}

impl Sim {
    pub(crate) fn pod_event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Init => self.relist = Some(HashSet::new()),
            Event::InitApply(p) => {
                if let Some(seen) = &mut self.relist {
                    seen.insert(key_of(&p));
                }
                self.apply_pod(p);
            }
            Event::InitDone => {
                // Pods deleted while the watch was down: gone from the list.
                let Some(seen) = self.relist.take() else { return };
                let gone: Vec<u32> = self
                    .pod_idx
                    .iter()
                    .filter(|(k, slot)| {
                        !seen.contains(*k) && self.pods[**slot as usize].as_ref().map(|p| self.nodes[p.node as usize].kubelet_up()).unwrap_or(false)
                    })
                    .map(|(_, s)| *s)
                    .collect();
                for slot in gone {
                    self.remove_pod(slot);
                }
            }
            Event::Apply(p) => self.apply_pod(p),
            Event::Delete(p) => {
                if let Some(&slot) = self.pod_idx.get(&key_of(&p)) {
                    if self.pods[slot as usize].as_ref().map(|s| Some(&*s.uid) == p.metadata.uid.as_deref()).unwrap_or(false) {
                        self.remove_pod(slot);
                        transition("deleted");
                    }
                }
            }
        }
    }

    /// A pod was added or changed.
    pub(crate) fn apply_pod(&mut self, pod: Pod) {
        let Some(&node) = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).and_then(|n| self.node_idx.get(n)) else { return };
        if !self.nodes[node as usize].kubelet_up() {
            // The kubelet is down: it lists its pods again when it comes back.
            return;
        }
        let key = key_of(&pod);
        match self.pod_idx.get(&key).copied() {
            Some(slot) => {
                let r = self.pod_ref(slot);
                let same = self.pods[slot as usize].as_ref().map(|p| Some(&*p.uid) == pod.metadata.uid.as_deref()).unwrap_or(false);
                if same {
                    self.update_pod(r, &pod);
                } else {
                    self.remove_pod(slot);
                    self.new_pod(&pod, node);
                }
            }
            None => self.new_pod(&pod, node),
        }
    }

    fn new_pod(&mut self, pod: &Pod, node: NodeId) {
        let t = now();
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        let mut sp = SimPod::new(pod, node, t);
        if phase == "Succeeded" || phase == "Failed" {
            // Finished pods are not tracked; one being deleted only needs the confirmation.
            if deleting {
                sp.stage = Stage::Gone;
                sp.deleting = Some(0);
                let r = self.insert_pod(sp);
                self.dirty(Work::PodDelete(r));
            }
            return;
        }
        sp.update_gates(pod);
        if sp.adopt(pod) {
            let n = &mut self.nodes[node as usize];
            if let Some(ip) = sp.ip {
                sp.ip_held = n.ips.reserve(ip);
                if !sp.ip_held {
                    tracing::warn!(pod = %sp.key(), %ip, "adopted pod's IP is not free in its node's range");
                }
            }
            n.take(&sp.shape.requests);
            sp.holding = true;
            sp.running_reported = true;
            let changed = sp.refresh_conditions(t);
            let dues = sp.resume_steps(t);
            let r = self.insert_pod(sp);
            metrics::counter!("kplex_nodesim_pods_adopted_total").increment(1);
            if changed {
                self.dirty(Work::PodStatus(r));
            }
            self.schedule(r, dues);
            if deleting {
                self.begin_delete(r, pod);
            }
            return;
        }
        if deleting {
            // Never started here: nothing to stop.
            sp.stage = Stage::Gone;
            sp.deleting = Some(0);
            let r = self.insert_pod(sp);
            self.dirty(Work::PodDelete(r));
            return;
        }
        let n = &mut self.nodes[node as usize];
        if let Err((reason, message)) = n.admit(&sp.shape.requests) {
            tracing::info!(pod = %sp.key(), node = %n.name(), %reason, "pod rejected at admission");
            sp.reject(reason, message);
            let r = self.insert_pod(sp);
            transition("rejected");
            self.dirty(Work::PodStatus(r));
            return;
        }
        n.take(&sp.shape.requests);
        sp.holding = true;
        sp.refresh_conditions(t);
        let delay = sp.hooks.start_delay.unwrap_or(self.s.pod_start_delay);
        let r = self.insert_pod(sp);
        if delay.is_zero() {
            self.pod_step(r, Step::Sandbox);
        } else {
            self.dirty(Work::PodStatus(r));
            self.timers.insert(Timer::Pod(r, Step::Sandbox), delay);
        }
    }

    fn update_pod(&mut self, r: PodRef, pod: &Pod) {
        let t = now();
        let Some(sp) = self.pod_mut(r) else { return };
        if sp.delete_sent || sp.stage == Stage::Gone {
            return;
        }
        let mut dues = Vec::new();
        let hooks = Hooks::of(pod);
        if hooks != sp.hooks {
            sp.hooks = hooks;
            for c in 0..sp.ctrs.len() {
                dues.extend(sp.exit_due(c, t));
            }
        }
        let changed = sp.update_gates(pod) && sp.refresh_conditions(t);
        let start_deleting = pod.metadata.deletion_timestamp.is_some() && sp.deleting.is_none();
        if changed {
            self.dirty(Work::PodStatus(r));
        }
        self.schedule(r, dues);
        if start_deleting {
            self.begin_delete(r, pod);
        }
    }

    /// The pod got a deletionTimestamp: stop its containers (within the grace period), or,
    /// if none run, confirm the deletion at once.
    fn begin_delete(&mut self, r: PodRef, pod: &Pod) {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        let Some(sp) = self.pod_mut(r) else { return };
        match sp.begin_stop(grace) {
            Some((step, wait)) if wait.is_zero() => self.pod_step(r, step),
            Some((step, wait)) => {
                self.timers.insert(Timer::Pod(r, step), wait);
            }
            None => {
                let node = sp.node as usize;
                let sp = self.pods[r.slot as usize].as_mut().expect("checked");
                release(&mut self.nodes[node], sp);
                self.dirty(Work::PodDelete(r));
            }
        }
    }

    pub(crate) fn schedule(&mut self, r: PodRef, dues: Vec<(Step, Duration)>) {
        for (step, wait) in dues {
            self.timers.insert(Timer::Pod(r, step), wait);
        }
    }

    /// A pod's step came due.
    pub(crate) fn pod_step(&mut self, r: PodRef, step: Step) {
        let t = now();
        let Some(sp) = self.pod(r) else { return };
        let node = sp.node as usize;
        let n = &self.nodes[node];
        if !n.kubelet_up() || (n.mode == NodeMode::NotReady && step == Step::Sandbox) {
            // Nothing happens without a kubelet; no sandbox gets its network while the
            // node's network is not ready.
            self.nodes[node].parked.push((r, step));
            return;
        }
        let s = self.s.clone();
        let init_rt = s.pod_start_delay;
        let sp = self.pods[r.slot as usize].as_mut().expect("checked");
        let dues = match step {
            Step::Sandbox => {
                if sp.stage != Stage::Creating {
                    return;
                }
                let ip = if sp.shape.host_network {
                    None
                } else {
                    match self.nodes[node].ips.allocate() {
                        Some(ip) => Some(ip),
                        None => {
                            tracing::warn!(pod = %sp.key(), "no free pod IP on the node; retrying");
                            self.timers.insert(Timer::Pod(r, step), Duration::from_secs(1));
                            return;
                        }
                    }
                };
                sp.ip_held = ip.is_some();
                let d = sp.sandbox_ready(t, ip, init_rt);
                if sp.stage == Stage::Running {
                    transition("running");
                }
                d
            }
            Step::InitDone(i) => {
                let d = sp.init_done(i, t, init_rt);
                if sp.stage == Stage::Running {
                    transition("running");
                }
                d
            }
            Step::Exit(c, run) => {
                let valid = sp.ctrs.get(c).map(|x| x.restarts == run && x.running()).unwrap_or(false);
                if !valid || sp.stage != Stage::Running {
                    return;
                }
                match sp.exit_due(c, t) {
                    None => return,
                    Some((step, wait)) if !wait.is_zero() => {
                        self.timers.insert(Timer::Pod(r, step), wait);
                        return;
                    }
                    Some(_) => {
                        transition("container_exited");
                        let code = sp.hooks.code();
                        sp.container_exit(c, code, t, s.crash_backoff, s.crash_backoff_max)
                    }
                }
            }
            Step::Restart(c, run) => {
                let valid = sp.ctrs.get(c).map(|x| x.restarts == run && matches!(x.state, State::BackOff { .. })).unwrap_or(false);
                if !valid || sp.stage != Stage::Running {
                    return;
                }
                transition("container_restarted");
                sp.restart(c, t)
            }
            Step::Stop => {
                if sp.stage != Stage::Stopping {
                    return;
                }
                sp.stopped(t);
                vec![]
            }
        };
        sp.refresh_conditions(t);
        if sp.finished() {
            transition(if sp.phase() == "Succeeded" { "succeeded" } else { "failed" });
            release(&mut self.nodes[node], sp);
        }
        self.schedule(r, dues);
        self.dirty(Work::PodStatus(r));
    }

    /// A pod's status write landed.
    pub(crate) fn pod_written(&mut self, r: PodRef, not_found: bool) {
        let Some(sp) = self.pod_mut(r) else { return };
        if not_found {
            return;
        }
        if sp.stage == Stage::Running && !sp.running_reported {
            sp.running_reported = true;
            let secs = (now() - sp.start_time).to_std().unwrap_or_default().as_secs_f64();
            metrics::histogram!("kplex_nodesim_pod_startup_seconds").record(secs);
        }
        if sp.finished() {
            if sp.deleting.is_some() {
                self.dirty(Work::PodDelete(r));
            } else {
                // Nothing more happens to a finished pod: stop tracking it.
                self.remove_pod(r.slot);
            }
        }
    }
}
