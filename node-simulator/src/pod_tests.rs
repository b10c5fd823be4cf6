use super::*;
use serde_json::{json, Value};

fn pod(v: Value) -> Pod {
    let mut base = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
                          "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "nginx"}]}});
    merge(&mut base, v);
    serde_json::from_value(base).unwrap()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn t(s: i64) -> Ts {
    util::parse_time("2025-01-01T00:00:00Z").unwrap() + chrono::Duration::seconds(s)
}

const IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 10);
const B: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);

fn cond<'a>(st: &'a Value, typ: &str) -> &'a Value {
    st["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == typ).unwrap()
}

#[test]
fn a_pod_goes_from_container_creating_to_running_and_ready() {
    let mut p = SimPod::new(&pod(json!({})), 0, t(0));
    p.refresh_conditions(t(0));
    let st = p.status_patch(HOST);
    assert_eq!(st["status"]["phase"], "Pending");
    assert_eq!(st["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
    assert_eq!(st["status"]["containerStatuses"][0]["image"], "docker.io/library/nginx:latest");
    assert_eq!(st["status"]["hostIP"], "172.16.0.10");
    assert!(st["status"].get("podIP").is_none());
    assert_eq!(cond(&st, "PodReadyToStartContainers")["status"], "False");
    assert_eq!(cond(&st, "Initialized")["status"], "True");
    assert_eq!(cond(&st, "Ready")["reason"], "ContainersNotReady");
    assert_eq!(cond(&st, "Ready")["message"], "containers with unready status: [c]");
    let due = p.sandbox_ready(t(1), Some(IP), B);
    assert!(due.is_empty());
    p.refresh_conditions(t(1));
    let st = p.status_patch(HOST);
    assert_eq!(st["status"]["phase"], "Running");
    assert_eq!(st["status"]["podIP"], "10.244.0.2");
    assert_eq!(st["status"]["podIPs"], json!([{"ip": "10.244.0.2"}]));
    assert_eq!(st["status"]["startTime"], "2025-01-01T00:00:00Z");
    let cs = &st["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert_eq!(cs["state"]["running"]["startedAt"], "2025-01-01T00:00:01Z");
    assert!(cs["containerID"].as_str().unwrap().starts_with("containerd://"));
    assert!(cs["imageID"].as_str().unwrap().starts_with("docker.io/library/nginx@sha256:"));
    for c in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert_eq!(cond(&st, c)["status"], "True", "{c}");
    }
    assert_eq!(cond(&st, "Ready")["lastTransitionTime"], "2025-01-01T00:00:01Z");
    assert_eq!(cond(&st, "Ready")["reason"], Value::Null);
    assert_eq!(cond(&st, "Initialized")["lastTransitionTime"], "2025-01-01T00:00:00Z");
    let order: Vec<_> = st["status"]["$setElementOrder/conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(order, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);
    assert_eq!(st["metadata"]["uid"], "u-1");
}

#[test]
fn init_containers_run_to_completion_first() {
    let spec = json!({"spec": {"initContainers": [{"name": "i1", "image": "busybox"}, {"name": "side", "image": "envoy", "restartPolicy": "Always"}, {"name": "i2", "image": "busybox"}]}});
    let mut p = SimPod::new(&pod(spec), 0, t(0));
    p.refresh_conditions(t(0));
    let st = p.status_patch(HOST);
    assert_eq!(st["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
    assert_eq!(cond(&st, "Initialized")["message"], "containers with incomplete status: [i1 side i2]");
    let due = p.sandbox_ready(t(1), Some(IP), B);
    assert_eq!(due, vec![(Step::InitDone(0), B)]);
    assert_eq!(p.stage, Stage::Init(0));
    assert_eq!(p.phase(), "Pending");
    let due = p.init_done(0, t(11), B);
    // The sidecar starts and stays running; i2 runs next.
    assert_eq!(due, vec![(Step::InitDone(2), B)]);
    assert!(p.inits[1].running());
    assert!(p.init_done(0, t(12), B).is_empty(), "a stale step does nothing");
    p.init_done(2, t(21), B);
    assert_eq!(p.stage, Stage::Running);
    p.refresh_conditions(t(21));
    let st = p.status_patch(HOST);
    let inits = st["status"]["initContainerStatuses"].as_array().unwrap();
    assert_eq!(inits[0]["state"]["terminated"]["reason"], "Completed");
    assert_eq!(inits[0]["state"]["terminated"]["finishedAt"], "2025-01-01T00:00:11Z");
    assert_eq!(inits[1]["state"]["running"]["startedAt"], "2025-01-01T00:00:11Z");
    assert_eq!(inits[1]["ready"], true);
    assert_eq!(inits[0]["ready"], true);
    assert_eq!(inits[2]["ready"], true);
    assert_eq!(inits[2]["started"], false);
    assert_eq!(st["status"]["containerStatuses"][0]["state"]["running"]["startedAt"], "2025-01-01T00:00:21Z");
    assert_eq!(cond(&st, "Initialized")["status"], "True");
    assert_eq!(cond(&st, "Ready")["status"], "True");
}

#[test]
fn an_exit_hook_completes_a_job_pod() {
    let spec = json!({"metadata": {"annotations": {"sim.kplex.io/exit-after": "5s"}}, "spec": {"restartPolicy": "Never"}});
    let mut p = SimPod::new(&pod(spec), 0, t(0));
    let due = p.sandbox_ready(t(1), Some(IP), B);
    assert_eq!(due, vec![(Step::Exit(0, 0), Duration::from_secs(5))]);
    p.container_exit(0, 0, t(6), B, MAX);
    assert_eq!(p.stage, Stage::Terminal);
    assert_eq!(p.phase(), "Succeeded");
    assert!(!p.sandbox);
    p.refresh_conditions(t(6));
    let st = p.status_patch(HOST);
    let term = &st["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["exitCode"], 0);
    assert_eq!(term["reason"], "Completed");
    assert_eq!(term["startedAt"], "2025-01-01T00:00:01Z");
    assert_eq!(term["finishedAt"], "2025-01-01T00:00:06Z");
    assert_eq!(st["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(cond(&st, "Ready")["reason"], "PodCompleted");
    assert_eq!(cond(&st, "ContainersReady")["reason"], "PodCompleted");
    assert_eq!(cond(&st, "Initialized")["reason"], "PodCompleted");
    assert_eq!(cond(&st, "PodReadyToStartContainers")["status"], "False");
    // The pod IP stays in the status, as the kubelet leaves it.
    assert_eq!(st["status"]["podIP"], "10.244.0.2");
}

#[test]
fn a_failing_container_fails_a_never_pod_and_restarts_an_on_failure_pod() {
    let never = json!({"metadata": {"annotations": {"sim.kplex.io/exit-code": "3"}}, "spec": {"restartPolicy": "Never"}});
    let mut p = SimPod::new(&pod(never), 0, t(0));
    assert_eq!(p.sandbox_ready(t(1), Some(IP), B), vec![(Step::Exit(0, 0), Duration::ZERO)]);
    p.container_exit(0, 3, t(1), B, MAX);
    assert_eq!(p.phase(), "Failed");
    p.refresh_conditions(t(1));
    let st = p.status_patch(HOST);
    assert_eq!(st["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Error");
    assert_eq!(st["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
    assert_eq!(cond(&st, "Ready")["reason"], "PodFailed");

    let on_failure =
        json!({"metadata": {"annotations": {"sim.kplex.io/exit-code": "1", "sim.kplex.io/exit-after": "2s"}}, "spec": {"restartPolicy": "OnFailure"}});
    let mut p = SimPod::new(&pod(on_failure), 0, t(0));
    p.sandbox_ready(t(0), Some(IP), B);
    // First restart at once, then the back-off doubles from 10s.
    assert_eq!(p.container_exit(0, 1, t(2), B, MAX), vec![(Step::Exit(0, 1), Duration::from_secs(2))]);
    assert_eq!(p.ctrs[0].restarts, 1);
    assert_eq!(p.container_exit(0, 1, t(4), B, MAX), vec![(Step::Restart(0, 1), B)]);
    p.refresh_conditions(t(4));
    let st = p.status_patch(HOST);
    let cs = &st["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["state"]["waiting"]["message"], "back-off 10s restarting failed container=c pod=p_ns(u-1)");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["restartCount"], 1);
    assert_eq!(st["status"]["phase"], "Running");
    assert_eq!(cond(&st, "Ready")["status"], "False");
    p.restart(0, t(14));
    assert_eq!(p.ctrs[0].restarts, 2);
    assert_eq!(p.container_exit(0, 1, t(16), B, MAX), vec![(Step::Restart(0, 2), Duration::from_secs(20))]);
    assert_eq!(backoff(9, B, MAX), MAX);
    // Exit 0 of an OnFailure pod completes it.
    let mut q = SimPod::new(&pod(json!({"spec": {"restartPolicy": "OnFailure"}})), 0, t(0));
    q.sandbox_ready(t(0), Some(IP), B);
    q.container_exit(0, 0, t(1), B, MAX);
    assert_eq!(q.phase(), "Succeeded");
}

#[test]
fn deletion_stops_containers_within_the_grace_period() {
    let spec = json!({"metadata": {"annotations": {"sim.kplex.io/stop-delay": "5s"}}});
    let mut p = SimPod::new(&pod(spec), 0, t(0));
    p.sandbox_ready(t(0), Some(IP), B);
    assert_eq!(p.begin_stop(30), Some((Step::Stop, Duration::from_secs(5))));
    assert_eq!(p.begin_stop(30), None, "only once");
    assert_eq!(p.phase(), "Running");
    p.stopped(t(5));
    assert_eq!(p.phase(), "Succeeded");
    assert!(matches!(&p.ctrs[0].state, State::Terminated(t) if t.code == 0));
    // A stop delay past the grace period ends in SIGKILL.
    let spec = json!({"metadata": {"annotations": {"sim.kplex.io/stop-delay": "60s"}}});
    let mut p = SimPod::new(&pod(spec), 0, t(0));
    p.sandbox_ready(t(0), Some(IP), B);
    assert_eq!(p.begin_stop(2), Some((Step::Stop, Duration::from_secs(2))));
    p.stopped(t(2));
    assert_eq!(p.phase(), "Failed");
    assert!(matches!(&p.ctrs[0].state, State::Terminated(t) if t.code == 137));
    // A pod that never started only needs its deletion confirmed.
    let mut q = SimPod::new(&pod(json!({})), 0, t(0));
    assert_eq!(q.begin_stop(30), None);
    assert_eq!(q.stage, Stage::Gone);
}

#[test]
fn readiness_gates_and_a_lost_node_hold_ready_back() {
    let spec = json!({"spec": {"readinessGates": [{"conditionType": "example.com/lb"}]}});
    let mut p = SimPod::new(&pod(spec.clone()), 0, t(0));
    p.sandbox_ready(t(0), Some(IP), B);
    p.refresh_conditions(t(0));
    let st = p.status_patch(HOST);
    assert_eq!(cond(&st, "ContainersReady")["status"], "True");
    assert_eq!(cond(&st, "Ready")["status"], "False");
    assert_eq!(cond(&st, "Ready")["reason"], "ReadinessGatesNotReady");
    assert_eq!(cond(&st, "Ready")["message"], "corresponding condition of pod readiness gate \"example.com/lb\" does not exist.");
    let mut with_gate = spec;
    merge(&mut with_gate, json!({"status": {"conditions": [{"type": "example.com/lb", "status": "True"}]}}));
    assert!(p.update_gates(&pod(with_gate)));
    assert!(p.refresh_conditions(t(3)));
    assert_eq!(cond(&p.status_patch(HOST), "Ready")["status"], "True");
    p.node_lost = true;
    assert!(p.refresh_conditions(t(4)));
    let st = p.status_patch(HOST);
    assert_eq!(cond(&st, "Ready")["status"], "False");
    assert_eq!(cond(&st, "Ready")["lastTransitionTime"], "2025-01-01T00:00:04Z");
}

#[test]
fn a_running_pod_is_adopted_from_its_status() {
    let mut p = SimPod::new(&pod(json!({"spec": {"restartPolicy": "Always"}, "metadata": {"annotations": {"sim.kplex.io/exit-after": "100s"}}})), 0, t(0));
    p.sandbox_ready(t(1), Some(IP), B);
    p.container_exit(0, 0, t(2), B, MAX);
    p.refresh_conditions(t(2));
    let written = p.status_patch(HOST);
    let mut obj = json!({"metadata": {"annotations": {"sim.kplex.io/exit-after": "100s"}}, "status": written["status"].clone()});
    obj["status"].as_object_mut().unwrap().remove("$setElementOrder/conditions");
    let seen = pod(obj);
    let mut q = SimPod::new(&seen, 0, t(50));
    assert!(q.adopt(&seen));
    assert_eq!(q.ip, Some(IP));
    assert_eq!(q.start_time, t(0));
    assert_eq!(q.ctrs[0].restarts, 1);
    assert_eq!(q.ctrs[0].state, State::Running { started: t(2) });
    assert_eq!(q.ctrs[0].last.as_ref().map(|l| l.finished), Some(t(2)));
    assert!(!q.refresh_conditions(t(50)), "conditions keep their transition times");
    assert_eq!(q.resume_steps(t(50)), vec![(Step::Exit(0, 1), Duration::from_secs(52))]);
    // What it reports is what was there.
    let again = q.status_patch(HOST);
    assert_eq!(again["status"]["containerStatuses"], written["status"]["containerStatuses"]);
    assert_eq!(again["status"]["conditions"], written["status"]["conditions"]);
    // A pod that was only Pending starts over.
    let pending = pod(json!({"status": {"phase": "Pending", "startTime": "2025-01-01T00:00:00Z"}}));
    assert!(!SimPod::new(&pending, 0, t(0)).adopt(&pending));
}

#[test]
fn requests_add_up_like_the_scheduler_counts_them() {
    let spec = json!({"spec": {
        "containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                       {"name": "b", "image": "x", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}}],
        "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "4"}}},
                           {"name": "s", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"memory": "1Gi"}}}]}});
    let s = Shape::of(&pod(spec));
    assert_eq!(s.requests, Requests { cpu_m: 4000, memory_m: 2 * 1024 * 1024 * 1024 * 1000, gpus_m: 1000 });
}
