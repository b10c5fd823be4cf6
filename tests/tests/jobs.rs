//! Jobs, CronJobs and TTL-after-finished with the built-in controllers, one etcd and tenant
//! master shared by all checks (each in its own namespace, so the long waits run side by side).
//! The stand-in kubelet finishes Job pods after half a second (or the seconds in their
//! `kplex.test/runtime-seconds` annotation), failing those annotated `kplex.test/exit-code`.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use serde_json::Value;

/// The shared cluster; stopped when the last test using it ends.
struct Cluster {
    _kubelet: FakeKubelet,
    tm: TenantMaster,
    _etcd: Etcd,
    _dir: tempfile::TempDir,
}

fn cluster() -> Arc<Cluster> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = g.upgrade() {
        return c;
    }
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "jobs", dir.path(), &[]);
    let kubelet = FakeKubelet::start(&tm);
    let c = Arc::new(Cluster { _kubelet: kubelet, tm, _etcd: etcd, _dir: dir });
    *g = Arc::downgrade(&c);
    c
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> kplex_e2e::Output {
        self.tm.kubectl(args)
    }

    fn must(&self, args: &[&str]) -> String {
        self.kubectl(args).must()
    }

    fn apply(&self, ns: &str, yaml: &str) {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        kubectl_with(&kubectl, &self.tm.kubeconfig, &["-n", ns, "apply", "-f", "-"], Some(yaml)).must();
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.must(&a)).unwrap()
    }

    fn namespace(&self, ns: &str) {
        self.must(&["create", "namespace", ns]);
    }

    /// The pods of a Job (by its job-name label).
    fn job_pods(&self, ns: &str, job: &str) -> Vec<Value> {
        let l = self.json(&["-n", ns, "get", "pods", "-l", &format!("batch.kubernetes.io/job-name={job}")]);
        l["items"].as_array().cloned().unwrap_or_default()
    }
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
#[track_caller]
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn job_yaml(name: &str, spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}
  template:
    metadata:
      annotations: {{{annotations}}}
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox:1.36
        command: [\"sh\", \"-c\", \"true\"]
"
    )
}

fn condition_types(job: &Value) -> Vec<String> {
    job["status"]["conditions"].as_array().into_iter().flatten().map(|c| c["type"].as_str().unwrap_or("").to_string()).collect()
}

fn condition<'a>(job: &'a Value, typ: &str) -> &'a Value {
    job["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == typ)).unwrap_or(&Value::Null)
}

#[test]
fn a_parallel_job_runs_at_most_parallelism_pods_and_completes() {
    let c = cluster();
    c.namespace("par");
    c.apply("par", &job_yaml("pi", "  completions: 3\n  parallelism: 2", "kplex.test/runtime-seconds: \"2\""));
    // Watch the pods while the Job runs: never more than two unfinished ones.
    let mut seen = std::collections::BTreeSet::new();
    eventually(60, "the job to complete", || {
        let pods = c.job_pods("par", "pi");
        let running = pods.iter().filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded") | Some("Failed"))).count();
        assert!(running <= 2, "{running} unfinished pods at once");
        seen.extend(pods.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()));
        let job = c.json(&["-n", "par", "get", "job", "pi"]);
        assert!(job["status"]["active"].as_i64().unwrap_or(0) <= 2);
        (!condition(&job, "Complete").is_null()).then_some(())
    });
    c.must(&["-n", "par", "wait", "--for=condition=complete", "job/pi", "--timeout=30s"]);
    let job = c.json(&["-n", "par", "get", "job", "pi"]);
    assert_eq!(job["status"]["succeeded"], 3);
    assert!(job["status"]["active"].is_null(), "{}", job["status"]);
    assert_eq!(job["status"]["ready"], 0);
    assert_eq!(job["status"]["uncountedTerminatedPods"], serde_json::json!({}));
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
    assert_eq!(condition_types(&job), vec!["SuccessCriteriaMet", "Complete"]);
    assert_eq!(condition(&job, "Complete")["reason"], "CompletionsReached");
    assert_eq!(seen.len(), 3, "exactly three pods ran: {seen:?}");
    // Every pod is labelled, owned by the Job and free of the tracking finalizer.
    let uid = job["metadata"]["uid"].as_str().unwrap();
    for p in c.job_pods("par", "pi") {
        let l = &p["metadata"]["labels"];
        assert_eq!((l["job-name"].as_str(), l["controller-uid"].as_str(), l["batch.kubernetes.io/controller-uid"].as_str()), (Some("pi"), Some(uid), Some(uid)));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("pi-"));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert!(p["metadata"]["finalizers"].as_array().map(|f| f.is_empty()).unwrap_or(true), "{}", p["metadata"]);
    }
    let row = c.must(&["-n", "par", "get", "job", "pi", "--no-headers"]);
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..3], &["pi", "Complete", "3/3"], "{row}");
    let events = c.must(&["-n", "par", "get", "events", "--field-selector", "involvedObject.kind=Job,involvedObject.name=pi", "-o", "custom-columns=R:.reason,M:.message", "--no-headers"]);
    assert_eq!(events.lines().filter(|l| l.starts_with("SuccessfulCreate") && l.contains("Created pod: pi-")).count(), 3, "{events}");
    assert!(events.lines().any(|l| l.starts_with("Completed") && l.contains("Job completed")), "{events}");
}

#[test]
fn a_failing_job_stops_at_its_backoff_limit() {
    let c = cluster();
    c.namespace("fail");
    c.apply("fail", &job_yaml("crash", "  backoffLimit: 1", "kplex.test/exit-code: \"1\""));
    // The first failure is replaced after upstream's 10 s backoff; the second one is too many.
    c.must(&["-n", "fail", "wait", "--for=condition=failed", "job/crash", "--timeout=60s"]);
    let job = c.json(&["-n", "fail", "get", "job", "crash"]);
    assert_eq!(condition_types(&job), vec!["FailureTarget", "Failed"]);
    let failed = condition(&job, "Failed");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(failed["message"], "Job has reached the specified backoff limit");
    assert_eq!(job["status"]["failed"], 2);
    assert!(job["status"]["succeeded"].is_null());
    assert_eq!(c.job_pods("fail", "crash").len(), 2);
    let row = c.must(&["-n", "fail", "get", "job", "crash", "--no-headers"]);
    assert!(row.split_whitespace().nth(1) == Some("Failed"), "{row}");
}

#[test]
fn an_indexed_job_runs_each_index_once() {
    let c = cluster();
    c.namespace("idx");
    c.apply("idx", &job_yaml("ix", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed", ""));
    c.must(&["-n", "idx", "wait", "--for=condition=complete", "job/ix", "--timeout=60s"]);
    let job = c.json(&["-n", "idx", "get", "job", "ix"]);
    assert_eq!(job["status"]["completedIndexes"], "0-2");
    assert_eq!(job["status"]["succeeded"], 3);
    let pods = c.job_pods("idx", "ix");
    let mut idx: Vec<String> = pods.iter().map(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().unwrap().to_string()).collect();
    idx.sort();
    assert_eq!(idx, vec!["0", "1", "2"]);
    for p in &pods {
        let i = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"].as_str().unwrap();
        assert_eq!(p["spec"]["hostname"], format!("ix-{i}"));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with(&format!("ix-{i}-")));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
    }
}

#[test]
fn active_deadline_seconds_fails_a_job_that_runs_too_long() {
    let c = cluster();
    c.namespace("ads");
    c.apply("ads", &job_yaml("slow", "  activeDeadlineSeconds: 2", "kplex.test/runtime-seconds: \"600\""));
    c.must(&["-n", "ads", "wait", "--for=condition=failed", "job/slow", "--timeout=60s"]);
    let job = c.json(&["-n", "ads", "get", "job", "slow"]);
    let failed = condition(&job, "Failed");
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(failed["message"], "Job was active longer than specified deadline");
    assert_eq!(job["status"]["failed"], 1);
    assert!(job["status"]["active"].is_null());
    // Its running pod was deleted (the stand-in kubelet confirms deletions at once).
    eventually(30, "the running pod to go", || c.job_pods("ads", "slow").is_empty().then_some(()));
}

#[test]
fn a_suspended_job_waits_until_resumed() {
    let c = cluster();
    c.namespace("sus");
    c.apply("sus", &job_yaml("later", "  suspend: true", ""));
    c.must(&["-n", "sus", "wait", "--for=condition=suspended", "job/later", "--timeout=30s"]);
    assert!(c.job_pods("sus", "later").is_empty());
    let job = c.json(&["-n", "sus", "get", "job", "later"]);
    assert!(job["status"]["startTime"].is_null());
    let row = c.must(&["-n", "sus", "get", "job", "later", "--no-headers"]);
    assert_eq!(row.split_whitespace().nth(1), Some("Suspended"), "{row}");
    c.must(&["-n", "sus", "patch", "job", "later", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}"]);
    c.must(&["-n", "sus", "wait", "--for=condition=complete", "job/later", "--timeout=60s"]);
    let job = c.json(&["-n", "sus", "get", "job", "later"]);
    assert_eq!(condition(&job, "Suspended")["status"], "False");
    assert_eq!(condition(&job, "Suspended")["reason"], "JobResumed");
}

#[test]
fn ttl_seconds_after_finished_deletes_the_job() {
    let c = cluster();
    c.namespace("ttl");
    c.apply("ttl", &job_yaml("brief", "  ttlSecondsAfterFinished: 0", ""));
    // Deleted with Foreground propagation: the garbage collector removes its pods, then the Job.
    eventually(60, "the job and its pods to be deleted", || {
        let out = c.kubectl(&["-n", "ttl", "get", "job", "brief", "-o", "json"]);
        if out.ok {
            return None;
        }
        assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
        let pods = c.kubectl(&["-n", "ttl", "get", "pods", "-o", "name"]);
        (pods.ok && pods.stdout.trim().is_empty()).then_some(())
    });
}

#[test]
fn a_cronjob_creates_jobs_on_schedule_and_prunes_history() {
    let c = cluster();
    c.namespace("cron");
    c.must(&["-n", "cron", "create", "cronjob", "tick", "--image=busybox:1.36", "--schedule=*/1 * * * *", "--", "/bin/true"]);
    c.must(&["-n", "cron", "patch", "cronjob", "tick", "--type=merge", "-p", "{\"spec\":{\"successfulJobsHistoryLimit\":1}}"]);
    // Two Jobs made from the CronJob by hand (kubectl sets the CronJob as their controller);
    // once both completed, only the newer one is kept.
    c.must(&["-n", "cron", "create", "job", "--from=cronjob/tick", "manual-1"]);
    c.must(&["-n", "cron", "wait", "--for=condition=complete", "job/manual-1", "--timeout=30s"]);
    c.must(&["-n", "cron", "create", "job", "--from=cronjob/tick", "manual-2"]);
    let owner = c.json(&["-n", "cron", "get", "job", "manual-2"]);
    assert_eq!(owner["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    eventually(30, "the older manual job to be pruned", || {
        let names = c.must(&["-n", "cron", "get", "jobs", "-o", "name"]);
        (!names.contains("manual-1") && names.contains("manual-2")).then_some(())
    });
    // The first activation (at most a minute away) creates tick-<minutes since the epoch>.
    let scheduled = eventually(75, "a scheduled job", || {
        let jobs = c.json(&["-n", "cron", "get", "jobs"]);
        jobs["items"].as_array().unwrap().iter().find(|j| j["metadata"]["name"].as_str().unwrap().starts_with("tick-")).cloned()
    });
    let name = scheduled["metadata"]["name"].as_str().unwrap().to_string();
    let minutes: i64 = name.trim_start_matches("tick-").parse().unwrap();
    let stamp = scheduled["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().unwrap();
    let at = chrono_like_minutes(stamp);
    assert_eq!(at, minutes, "{stamp}");
    c.must(&["-n", "cron", "wait", "--for=condition=complete", &format!("job/{name}"), "--timeout=30s"]);
    // Its completion is recorded, and the history keeps only the newest successful Job.
    let cj = eventually(30, "the cronjob status", || {
        let cj = c.json(&["-n", "cron", "get", "cronjob", "tick"]);
        (cj["status"]["lastSuccessfulTime"].is_string() && cj["status"]["active"].is_null()).then_some(cj)
    });
    assert!(cj["status"]["lastScheduleTime"].is_string());
    eventually(30, "the manual job to be pruned", || {
        let names = c.must(&["-n", "cron", "get", "jobs", "-o", "name"]);
        (names.trim() == format!("job.batch/{name}")).then_some(())
    });
    let row = c.must(&["-n", "cron", "get", "cronjob", "tick", "--no-headers"]);
    // NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST-SCHEDULE AGE
    let after: Vec<&str> = row.split("*/1 * * * *").nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(&after[..3], &["<none>", "False", "0"], "{row}");
    assert_ne!(after[3], "<none>", "{row}");
    let events = c.must(&["-n", "cron", "get", "events", "--field-selector", "involvedObject.kind=CronJob", "-o", "custom-columns=R:.reason,M:.message", "--no-headers"]);
    assert!(events.lines().any(|l| l.starts_with("SuccessfulCreate") && l.contains(&format!("Created job {name}"))), "{events}");
    assert!(events.lines().any(|l| l.starts_with("SuccessfulDelete") && l.contains("Deleted job manual-1")), "{events}");
}

/// Minutes since the epoch of an RFC 3339 UTC timestamp ("2024-05-01T10:01:00Z").
fn chrono_like_minutes(s: &str) -> i64 {
    let out = std::process::Command::new("date").args(["-u", "-d", s, "+%s"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse::<i64>().unwrap() / 60
}
