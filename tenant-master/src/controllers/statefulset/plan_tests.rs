//! Ordering decisions of [`super::plan`].

use super::*;

fn set(replicas: i64, policy: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 2},
           "spec": {"replicas": replicas, "serviceName": "web", "podManagementPolicy": policy,
                    "selector": {"matchLabels": {"app": "web"}},
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]},
           "status": {"replicas": 0}})
}

/// A pod of ordinal `ord` at revision `rev` in `phase`, Ready or not.
fn pod(s: &Value, ord: i64, rev: &str, phase: &str, ready: bool) -> Value {
    let mut p = versioned_pod(s, s, rev, rev, ord);
    p["metadata"]["uid"] = json!(format!("pod-{ord}"));
    p["status"] = json!({"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                          "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
    p
}

fn claim_all(_: &str) -> Option<Value> {
    Some(json!({"metadata": {"name": "x"}}))
}

fn run(s: &Value, pods: &[Value], cur: &str, upd: &str) -> Plan {
    run_with(s, s, pods, cur, upd)
}

fn run_with(s: &Value, upd_set: &Value, pods: &[Value], cur: &str, upd: &str) -> Plan {
    let inp = Inputs {
        set: s,
        current_set: s,
        update_set: upd_set,
        current_revision: cur,
        update_revision: upd,
        collision_count: 0,
        pods,
        claim: &claim_all,
        now: Utc::now(),
    };
    plan(&inp)
}

/// Each step as `verb name`.
fn steps(p: &Plan) -> Vec<String> {
    p.stages
        .iter()
        .flatten()
        .map(|s| {
            let (verb, pod) = match s {
                Step::Recreate(p) => ("recreate", p),
                Step::Create(p) => ("create", p),
                Step::CreateClaims(p) => ("claims", p),
                Step::Update(p) => ("update", p),
                Step::FixClaims(p) => ("fix", p),
                Step::Delete(p) => ("delete", p),
            };
            format!("{verb} {}", meta::name(pod))
        })
        .collect()
}

#[test]
fn ordered_ready_creates_one_ordinal_at_a_time() {
    let s = set(3, "OrderedReady");
    assert_eq!(steps(&run(&s, &[], "r1", "r1")), vec!["create web-0"]);
    // web-0 exists but is not Running and Ready: nothing more.
    let p0 = pod(&s, 0, "r1", "Running", false);
    assert!(steps(&run(&s, &[p0], "r1", "r1")).is_empty());
    let p0 = pod(&s, 0, "r1", "Pending", false);
    assert!(steps(&run(&s, &[p0], "r1", "r1")).is_empty());
    // web-0 Ready: web-1 next, and only web-1.
    let p0 = pod(&s, 0, "r1", "Running", true);
    assert_eq!(steps(&run(&s, std::slice::from_ref(&p0), "r1", "r1")), vec!["create web-1"]);
    // A missing lower ordinal comes before anything else.
    let p1 = pod(&s, 1, "r1", "Running", true);
    assert_eq!(steps(&run(&s, &[p1], "r1", "r1")), vec!["create web-0"]);
}

#[test]
fn min_ready_seconds_holds_the_next_ordinal() {
    let mut s = set(2, "OrderedReady");
    s["spec"]["minReadySeconds"] = json!(30);
    let mut p0 = pod(&s, 0, "r1", "Running", true);
    p0["status"]["conditions"][0]["lastTransitionTime"] = json!(meta::now_rfc3339());
    assert!(steps(&run(&s, &[p0.clone()], "r1", "r1")).is_empty());
    p0["status"]["conditions"][0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(steps(&run(&s, &[p0], "r1", "r1")), vec!["create web-1"]);
}

#[test]
fn parallel_creates_and_deletes_all_at_once() {
    let s = set(3, "Parallel");
    assert_eq!(steps(&run(&s, &[], "r1", "r1")), vec!["create web-0", "create web-1", "create web-2"]);
    let s1 = set(1, "Parallel");
    let pods: Vec<Value> = (0..3).map(|i| pod(&s1, i, "r1", "Running", false)).collect();
    assert_eq!(steps(&run(&s1, &pods, "r1", "r1")), vec!["delete web-2", "delete web-1"]);
}

#[test]
fn ordered_scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
    let s = set(1, "OrderedReady");
    let mut pods: Vec<Value> = (0..3).map(|i| pod(&s, i, "r1", "Running", true)).collect();
    assert_eq!(steps(&run(&s, &pods, "r1", "r1")), vec!["delete web-2"]);
    // While web-2 terminates, web-1 waits.
    pods[2]["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    assert!(steps(&run(&s, &pods, "r1", "r1")).is_empty());
    pods.pop();
    assert_eq!(steps(&run(&s, &pods, "r1", "r1")), vec!["delete web-1"]);
    // An unready condemned pod that is not the first unavailable one blocks.
    let mut pods: Vec<Value> = (0..3).map(|i| pod(&s, i, "r1", "Running", false)).collect();
    pods[0] = pod(&s, 0, "r1", "Running", true);
    assert!(steps(&run(&s, &pods, "r1", "r1")).is_empty());
    // ... unless it is the first unavailable one.
    pods[1] = pod(&s, 1, "r1", "Running", true);
    assert_eq!(steps(&run(&s, &pods, "r1", "r1")), vec!["delete web-2"]);
}

#[test]
fn rolling_update_honours_the_partition() {
    let mut s = set(3, "OrderedReady");
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
    let mut pods: Vec<Value> = (0..3).map(|i| pod(&s, i, "r1", "Running", true)).collect();
    let p = run(&s, &pods, "r1", "r2");
    assert_eq!(steps(&p), vec!["delete web-2"]);
    assert_eq!(p.status["currentReplicas"], 2);
    // web-2 back at r2 but not ready yet: wait.
    pods[2] = pod(&s, 2, "r2", "Running", false);
    assert!(steps(&run(&s, &pods, "r1", "r2")).is_empty());
    pods[2] = pod(&s, 2, "r2", "Running", true);
    assert_eq!(steps(&run(&s, &pods, "r1", "r2")), vec!["delete web-1"]);
    // Ordinal 0 stays below the partition.
    pods[1] = pod(&s, 1, "r2", "Running", true);
    let p = run(&s, &pods, "r1", "r2");
    assert!(steps(&p).is_empty());
    assert_eq!((p.status["updatedReplicas"].clone(), p.status["currentReplicas"].clone()), (json!(2), json!(1)));
    // A recreated pod below the partition comes from the current revision.
    let p = run(&s, &pods[1..], "r1", "r2");
    match &p.stages[0][0] {
        Step::Create(p) => assert_eq!(pod_revision(p), "r1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_delete_leaves_old_pods_alone() {
    let mut s = set(2, "OrderedReady");
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    let pods: Vec<Value> = (0..2).map(|i| pod(&s, i, "r1", "Running", true)).collect();
    assert!(steps(&run(&s, &pods, "r1", "r2")).is_empty());
    // A replacement is made at the update revision.
    let p = run(&s, &pods[..1], "r1", "r2");
    match &p.stages[0][0] {
        Step::Create(p) => assert_eq!(pod_revision(p), "r2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_pods_are_recreated_and_identities_repaired() {
    let s = set(2, "OrderedReady");
    let p0 = pod(&s, 0, "r1", "Failed", false);
    assert_eq!(steps(&run(&s, &[p0], "r1", "r1")), vec!["recreate web-0"]);
    let mut p0 = pod(&s, 0, "r1", "Running", true);
    p0["metadata"]["labels"].as_object_mut().unwrap().remove(POD_NAME_LABEL);
    let p1 = pod(&s, 1, "r1", "Running", true);
    assert_eq!(steps(&run(&s, &[p0, p1], "r1", "r1")), vec!["update web-0"]);
}

#[test]
fn status_counts_and_completion() {
    let s = set(2, "OrderedReady");
    let pods = vec![pod(&s, 0, "r1", "Running", true), pod(&s, 1, "r1", "Pending", false)];
    let p = run(&s, &pods, "r1", "r1");
    let st = &p.status;
    assert_eq!((st["replicas"].clone(), st["readyReplicas"].clone(), st["availableReplicas"].clone()), (json!(2), json!(1), json!(1)));
    assert_eq!((st["currentReplicas"].clone(), st["updatedReplicas"].clone(), st["observedGeneration"].clone()), (json!(2), json!(2), json!(2)));
    assert!(inconsistent(&s, st));
    let mut done = json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentReplicas": 0, "currentRevision": "r1", "updateRevision": "r2"});
    complete_rolling_update(&s, &mut done);
    assert_eq!((done["currentRevision"].clone(), done["currentReplicas"].clone()), (json!("r2"), json!(2)));
}
