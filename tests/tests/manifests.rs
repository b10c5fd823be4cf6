//! Issue 3's client-side apply acceptance: `kubectl apply -f` of a multi-document manifest
//! with default flags, re-applied unchanged, then with one field edited and one removed;
//! plus replace, edit, diff and `create --dry-run=server`.

use kplex_e2e::{kubectl_with, Etcd, TenantMaster};

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - {name: MODE, value: production}
        - {name: DEBUG, value: "false"}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  mode: production
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
type: Opaque
data:
  password: aHVudGVyMg==
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:16
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: busybox:1.36
            command: [sh, -c, echo backup]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port: {number: 80}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector: {}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: deployer
rules:
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: deployer
subjects:
- kind: ServiceAccount
  name: deployer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: deployer
"#;

const OBJECTS: [&str; 11] = [
    "deployment.apps/web",
    "service/web",
    "configmap/web-config",
    "secret/web-secret",
    "statefulset.apps/db",
    "cronjob.batch/backup",
    "ingress.networking.k8s.io/web",
    "networkpolicy.networking.k8s.io/web",
    "serviceaccount/deployer",
    "role.rbac.authorization.k8s.io/deployer",
    "rolebinding.rbac.authorization.k8s.io/deployer",
];

fn apply(tm: &TenantMaster, manifest: &str) -> Vec<String> {
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(manifest));
    assert!(out.ok, "kubectl apply failed: {out:?}");
    assert!(out.stderr.trim().is_empty() || !out.stderr.contains("rror"), "{}", out.stderr);
    out.stdout.lines().map(String::from).collect()
}

#[test]
fn apply_multi_document_manifest() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "manifests", dir.path(), &[]);

    let lines = apply(&tm, MANIFEST);
    let expected: Vec<String> = OBJECTS.iter().map(|o| format!("{o} created")).collect();
    assert_eq!(lines, expected);

    // Unchanged: every line says so. The StatefulSet is the one exception a real cluster
    // makes too: its volumeClaimTemplates list is atomic and the server adds defaults to the
    // templates (volumeMode, status.phase), so kubectl's three-way patch always carries it.
    let lines = apply(&tm, MANIFEST);
    let expected: Vec<String> = OBJECTS
        .iter()
        .map(|o| if *o == "statefulset.apps/db" { format!("{o} configured") } else { format!("{o} unchanged") })
        .collect();
    assert_eq!(lines, expected);

    // One object edited (replicas 2 -> 3) and, in it, one env var, one label and the
    // container port removed: only that object is configured and loses exactly those.
    let edited = MANIFEST
        .replacen("replicas: 2", "replicas: 3", 1)
        .replacen("  labels: {app: web}\nspec:\n  replicas", "spec:\n  replicas", 1)
        .replacen("        - {name: DEBUG, value: \"false\"}\n", "", 1)
        .replacen("        ports:\n        - containerPort: 80\n", "", 1);
    assert_ne!(edited, MANIFEST);
    let lines = apply(&tm, &edited);
    let expected: Vec<String> = OBJECTS
        .iter()
        .map(|o| if *o == "deployment.apps/web" || *o == "statefulset.apps/db" { format!("{o} configured") } else { format!("{o} unchanged") })
        .collect();
    assert_eq!(lines, expected);
    let out = tm.kubectl(&["get", "deployment", "web", "-o", "json"]);
    assert!(out.ok, "{out:?}");
    let d: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["metadata"].get("labels").is_none_or(|l| l.get("app").is_none()), "{}", d["metadata"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["env"], serde_json::json!([{"name": "MODE", "value": "production"}]));
    assert!(c.get("ports").is_none(), "{c}");
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert_eq!(c["image"], "nginx:1.27");

    // diff: nothing to show for the applied manifest (exit 0), a change shows up (exit 1).
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["diff", "-f", "-"], Some(&edited));
    assert!(out.ok && out.stdout.is_empty(), "{out:?}");
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["diff", "-f", "-"], Some(&edited.replacen("replicas: 3", "replicas: 4", 1)));
    assert!(!out.ok && out.stdout.contains("-  replicas: 3") && out.stdout.contains("+  replicas: 4"), "{out:?}");

    // replace with a changed ConfigMap.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  mode: staging\n";
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["replace", "-f", "-"], Some(cm));
    assert!(out.ok && out.stdout.contains("configmap/web-config replaced"), "{out:?}");
    let out = tm.kubectl(&["get", "configmap", "web-config", "-o", "jsonpath={.data.mode}"]);
    assert_eq!(out.stdout, "staging");

    // edit with an EDITOR script.
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/mode: staging/mode: edited/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&tm.kubeconfig)
        .args(["edit", "configmap", "web-config"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/web-config edited"));
    let out = tm.kubectl(&["get", "configmap", "web-config", "-o", "jsonpath={.data.mode}"]);
    assert_eq!(out.stdout, "edited");

    // set image, patch of each type.
    let out = tm.kubectl(&["set", "image", "deployment/web", "web=nginx:1.28"]);
    assert!(out.ok && out.stdout.contains("image updated"), "{out:?}");
    let out = tm.kubectl(&["patch", "deployment", "web", "--type", "merge", "-p", r#"{"spec":{"minReadySeconds":5}}"#]);
    assert!(out.ok, "{out:?}");
    let out = tm.kubectl(&["patch", "deployment", "web", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#]);
    assert!(out.ok, "{out:?}");
    let out = tm.kubectl(&["patch", "deployment", "web", "--type", "strategic", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}"#]);
    assert!(out.ok, "{out:?}");
    let out = tm.kubectl(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas} {.spec.minReadySeconds} {.spec.template.spec.containers[*].name} {.spec.template.spec.containers[?(@.name=='web')].image}"]);
    // A strategic patch without $setElementOrder puts new list items first, as upstream does.
    assert_eq!(out.stdout, "1 5 sidecar web nginx:1.28", "{out:?}");

    // create --dry-run=server -o yaml prints the object as it would be stored.
    let out = tm.kubectl(&["create", "configmap", "dry", "--from-literal=a=1", "--dry-run=server", "-o", "yaml"]);
    assert!(out.ok && out.stdout.contains("uid:") && out.stdout.contains("a: \"1\""), "{out:?}");
    assert!(!tm.kubectl(&["get", "configmap", "dry"]).ok);
}
