//! Invalid manifests are refused as a real v1.33 kube-apiserver refuses them: 422 Invalid with
//! upstream's wording, kubectl printing it the way it does for a real cluster, and nothing
//! stored or changed afterwards.

use std::process::Command;

use kplex_e2e::{kubectl_with, Etcd, Output, TenantMaster};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn deployment(name: &str, selector: &str, labels: &str, containers: &[(&str, &str)]) -> String {
    let cs: String = containers.iter().map(|(n, i)| format!("      - name: {n}\n        image: {i}\n")).collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n{selector}  template:\n    metadata:\n      labels: {labels}\n    spec:\n      containers:\n{cs}"
    )
}

fn apply(tm: &TenantMaster, verb: &str, manifest: &str) -> Output {
    kubectl_with("kubectl", &tm.kubeconfig, &["-n", "v", verb, "-f", "-"], Some(manifest))
}

/// The request's JSON body POSTed with curl: the Status exactly as the server sends it.
fn post(tm: &TenantMaster, path: &str, body: &str) -> (u16, serde_json::Value) {
    let pki = tm.dir.join("pki");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .args(["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, &format!("{}{path}", tm.url())])
        .output()
        .expect("curl");
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = s.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), serde_json::from_str(body).unwrap())
}

fn absent(tm: &TenantMaster, what: &str) {
    let got = tm.kubectl(&["-n", "v", "get", what]);
    assert!(!got.ok && got.stderr.contains("NotFound"), "{what} was stored: {got:?}");
}

#[test]
fn invalid_manifests_are_refused_with_upstream_messages_and_not_stored() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "validation-e2e", dir.path(), &[]);
    assert!(tm.kubectl(&["create", "namespace", "v"]).ok);
    let sel = "  selector:\n    matchLabels: {app: web}\n";

    // A bad name.
    let out = apply(&tm, "create", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
    assert_eq!(out.stderr.trim(), format!("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN}"));
    absent(&tm, "configmap/Bad_Name");

    // Label syntax.
    let out = apply(&tm, "create", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  labels:\n    \"bad key\": x\n");
    assert_eq!(out.stderr.trim(), "The ConfigMap \"cfg\" is invalid: metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
    absent(&tm, "configmap/cfg");

    // Selector not matching the template's labels, duplicate container names: kubectl lists
    // the causes, the Status message aggregates them with the group-qualified kind.
    let bad = deployment("web", sel, "{app: other}", &[("web", "nginx"), ("web", "nginx")]);
    let out = apply(&tm, "apply", &bad);
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"web\" is invalid: \n* spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`\n* spec.template.spec.containers[1].name: Duplicate value: \"web\""
    );
    absent(&tm, "deployment/web");
    let json = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}"#;
    let (code, status) = post(&tm, "/apis/apps/v1/namespaces/v/deployments", json);
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]"
    );
    assert_eq!(status["details"]["causes"][0], serde_json::json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}));
    assert_eq!((status["details"]["kind"].as_str(), status["details"]["group"].as_str()), (Some("Deployment"), Some("apps")));
    absent(&tm, "deployment/web");

    // Unique port names, a volume mount without its volume.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - {name: http, containerPort: 80}\n    - {name: http, containerPort: 81}\n    volumeMounts:\n    - {name: data, mountPath: /data}\n";
    let out = apply(&tm, "create", pod);
    assert_eq!(
        out.stderr.trim(),
        "The Pod \"p\" is invalid: \n* spec.containers[0].ports[1].name: Duplicate value: \"http\"\n* spec.containers[0].volumeMounts[0].name: Not found: \"data\""
    );
    absent(&tm, "pod/p");

    // Immutable fields. The deployment's selector:
    assert!(apply(&tm, "apply", &deployment("web", sel, "{app: web}", &[("web", "nginx:1.25")])).ok);
    let moved = deployment("web", "  selector:\n    matchLabels: {app: web2}\n", "{app: web2}", &[("web", "nginx:1.25")]);
    let out = apply(&tm, "apply", &moved);
    assert_eq!(
        out.stderr.trim(),
        "The Deployment \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
    let kept = tm.kubectl(&["-n", "v", "get", "deploy", "web", "-o", "jsonpath={.spec.selector.matchLabels.app} {.metadata.generation}"]);
    assert_eq!(kept.stdout, "web 1");

    // A service's cluster IP:
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n";
    assert!(apply(&tm, "create", svc).ok);
    let ip = tm.kubectl(&["-n", "v", "get", "svc", "s", "-o", "jsonpath={.spec.clusterIP}"]).stdout;
    let out = tm.kubectl(&["-n", "v", "patch", "svc", "s", "--type", "merge", "-p", r#"{"spec":{"clusterIP":"10.96.200.200"}}"#]);
    assert_eq!(out.stderr.trim(), "The Service \"s\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.200.200\"}: may not change once set");
    assert_eq!(tm.kubectl(&["-n", "v", "get", "svc", "s", "-o", "jsonpath={.spec.clusterIP}"]).stdout, ip);
    // ... while a replace that leaves the allocated IP out keeps it.
    assert!(apply(&tm, "replace", svc).ok);
    assert_eq!(tm.kubectl(&["-n", "v", "get", "svc", "s", "-o", "jsonpath={.spec.clusterIP}"]).stdout, ip);

    // Most of a pod's spec:
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    assert!(apply(&tm, "create", pod).ok);
    let out = tm.kubectl(&["-n", "v", "patch", "pod", "p", "--type", "merge", "-p", r#"{"spec":{"restartPolicy":"Never"}}"#]);
    assert!(
        out.stderr.starts_with("The Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{\n"),
        "{out:?}"
    );
    assert_eq!(tm.kubectl(&["-n", "v", "get", "pod", "p", "-o", "jsonpath={.spec.restartPolicy}"]).stdout, "Always");
    let image = r#"[{"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.36"}]"#;
    let out = tm.kubectl(&["-n", "v", "patch", "pod", "p", "--type", "json", "-p", image]);
    assert!(out.ok, "images may change: {out:?}");

    // A job's template:
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n";
    assert!(apply(&tm, "create", job).ok);
    let image = r#"[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "busybox:1.36"}]"#;
    let out = tm.kubectl(&["-n", "v", "patch", "job", "j", "--type", "json", "-p", image]);
    assert!(out.stderr.starts_with("The Job \"j\" is invalid: spec.template: Invalid value: ") && out.stderr.trim_end().ends_with(": field is immutable"), "{out:?}");
    assert_eq!(tm.kubectl(&["-n", "v", "get", "job", "j", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).stdout, "busybox");

    // A claim's spec, resources aside:
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: c\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    assert!(apply(&tm, "create", pvc).ok);
    let out = tm.kubectl(&["-n", "v", "patch", "pvc", "c", "--type", "merge", "-p", r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#]);
    assert!(out.stderr.starts_with("The PersistentVolumeClaim \"c\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"), "{out:?}");
    assert_eq!(tm.kubectl(&["-n", "v", "get", "pvc", "c", "-o", "jsonpath={.spec.accessModes[0]}"]).stdout, "ReadWriteOnce");
}
