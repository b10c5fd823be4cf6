//! Server-side apply and managedFields with the real kubectl and the kube crate, checked against
//! what kube-apiserver answers: apply creating objects, no-op re-applies, conflicts between field
//! managers, forced takeover, pruning of dropped fields, Update managers (create, patch, scale,
//! label), and the upgrade from client-side apply.

use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use serde_json::{json, Value};

fn deployment(replicas: u32, extra_label: bool, sidecar: bool) -> String {
    let labels = if extra_label { "{app: web, tier: front}" } else { "{app: web}" };
    let side = if sidecar { "      - name: side\n        image: busybox\n" } else { "" };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels: {labels}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx:1.25\n        ports:\n        - containerPort: 80\n{side}"
    )
}

fn get(tm: &TenantMaster, args: &[&str]) -> Value {
    let mut a = vec!["-n", "shop", "get", "-o", "json", "--show-managed-fields"];
    a.extend_from_slice(args);
    let out = tm.kubectl(&a);
    assert!(out.ok, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// The managedFields entry of a manager (and subresource), if any.
fn entry<'a>(obj: &'a Value, manager: &str, subresource: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager && e["subresource"].as_str().unwrap_or("") == subresource)
}

fn apply(tm: &TenantMaster, manifest: &str, extra: &[&str]) -> kplex_e2e::Output {
    let mut a = vec!["apply", "--server-side", "-f", "-"];
    a.extend_from_slice(extra);
    kubectl_with("kubectl", &tm.kubeconfig, &a, Some(manifest))
}

#[test]
fn kubectl_server_side_apply_like_kube_apiserver() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "apply-e2e", dir.path(), kplex_e2e::API_ONLY);
    assert!(tm.kubectl(&["create", "namespace", "shop"]).ok);
    let ns: Value = serde_json::from_str(&tm.kubectl(&["get", "ns", "shop", "-o", "json", "--show-managed-fields"]).stdout).unwrap();
    let e = &ns["metadata"]["managedFields"][0];
    assert_eq!((e["manager"].as_str(), e["operation"].as_str(), e["apiVersion"].as_str()), (Some("kubectl-create"), Some("Update"), Some("v1")));
    assert_eq!(e["fieldsV1"]["f:metadata"], json!({"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}));
    // The creator owns what it sent and what defaulting added, not what the strategy sets on
    // create (a job's generated selector and labels), as kube-apiserver records it.
    assert!(tm.kubectl(&["-n", "shop", "create", "job", "once", "--image=busybox"]).ok);
    let job = get(&tm, &["job", "once"]);
    assert!(job["spec"]["selector"].is_object() && job["spec"]["template"]["metadata"]["labels"].is_object(), "{job}");
    let e = entry(&job, "kubectl-create", "").unwrap();
    assert!(e["fieldsV1"]["f:spec"].get("f:selector").is_none(), "{e}");
    assert!(e["fieldsV1"]["f:spec"]["f:template"]["f:metadata"].get("f:labels").is_none(), "{e}");
    assert_eq!(e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"once\"}"]["f:image"], json!({}));

    // Apply creates the object; the Apply entry holds exactly the applied fields.
    let out = apply(&tm, &deployment(2, false, false), &[]);
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout.trim(), "deployment.apps/web serverside-applied");
    let d = get(&tm, &["deploy", "web"]);
    let mf = d["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{mf:?}");
    let e = &mf[0];
    assert_eq!((e["manager"].as_str(), e["operation"].as_str(), e["apiVersion"].as_str(), e["fieldsType"].as_str()), (Some("kubectl"), Some("Apply"), Some("apps/v1"), Some("FieldsV1")));
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
    // Defaults are there but owned by nobody.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let rv = d["metadata"]["resourceVersion"].as_str().unwrap().to_string();

    // Re-applying the same manifest changes nothing.
    let out = apply(&tm, &deployment(2, false, false), &[]);
    assert!(out.ok && out.stdout.contains("serverside-applied"), "{out:?}");
    assert_eq!(get(&tm, &["deploy", "web"])["metadata"]["resourceVersion"], rv.as_str());

    // A manifest from `kubectl create --dry-run=client -o yaml` (nulls, empty structs) applies
    // and re-applies; the template's null creationTimestamp is owned, as upstream. (Its top-level
    // `creationTimestamp: null` counts as a change, so upstream rewrites the entry's time when a
    // new second has begun: the resourceVersion is not compared here.)
    let gen = tm.kubectl(&["-n", "shop", "create", "deployment", "gen", "--image=nginx", "--dry-run=client", "-o", "yaml"]);
    assert!(gen.ok && gen.stdout.contains("creationTimestamp: null"), "{gen:?}");
    assert!(apply(&tm, &gen.stdout, &[]).ok);
    let g = get(&tm, &["deploy", "gen"]);
    let gfv = &entry(&g, "kubectl", "").unwrap()["fieldsV1"];
    assert_eq!(gfv["f:spec"]["f:template"]["f:metadata"]["f:creationTimestamp"], json!({}));
    assert!(gfv["f:metadata"].get("f:creationTimestamp").is_none());
    assert!(apply(&tm, &gen.stdout, &[]).ok);
    let g2 = get(&tm, &["deploy", "gen"]);
    assert_eq!((&g2["spec"], &g2["metadata"]["creationTimestamp"]), (&g["spec"], &g["metadata"]["creationTimestamp"]));

    // A second manager that disagrees on replicas conflicts.
    let out = apply(&tm, &deployment(3, false, false), &["--field-manager=other"]);
    assert!(!out.ok, "{out:?}");
    assert!(out.stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#), "{}", out.stderr);
    assert_eq!(get(&tm, &["deploy", "web"])["spec"]["replicas"], 2);
    // Agreeing on the value is no conflict: both own it.
    let out = apply(&tm, &deployment(2, false, false), &["--field-manager=other"]);
    assert!(out.ok, "{out:?}");
    let d = get(&tm, &["deploy", "web"]);
    assert!(entry(&d, "kubectl", "").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());
    assert!(entry(&d, "other", "").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());

    // --force-conflicts takes replicas away from kubectl.
    let out = apply(&tm, &deployment(3, false, false), &["--field-manager=other", "--force-conflicts"]);
    assert!(out.ok, "{out:?}");
    let d = get(&tm, &["deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(entry(&d, "kubectl", "").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(entry(&d, "other", "").unwrap()["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // Apply entries come first, ordered by time then manager.
    let names: Vec<&str> = d["metadata"]["managedFields"].as_array().unwrap().iter().map(|e| e["manager"].as_str().unwrap()).collect();
    assert_eq!(names, ["kubectl", "other"]);

    // Fields a manager applied before and omits now are removed, unless someone else owns them.
    let out = apply(&tm, &deployment(3, true, true), &["--field-manager=other"]);
    assert!(out.ok, "{out:?}");
    let d = get(&tm, &["deploy", "web"]);
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);
    let out = apply(&tm, &deployment(3, false, false), &["--field-manager=other"]);
    assert!(out.ok, "{out:?}");
    let d = get(&tm, &["deploy", "web"]);
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{}", d["metadata"]);
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nginx"]);
    assert_eq!(d["metadata"]["labels"]["app"], "web", "still applied by both");

    // kubectl scale is an Update through the scale subresource: it takes replicas, and applying
    // another value afterwards conflicts with it.
    assert!(tm.kubectl(&["-n", "shop", "scale", "deploy", "web", "--replicas=5"]).ok);
    let d = get(&tm, &["deploy", "web"]);
    let s = entry(&d, "kubectl", "scale").expect("scale entry");
    assert_eq!((s["operation"].as_str(), s["apiVersion"].as_str()), (Some("Update"), Some("apps/v1")));
    assert_eq!(s["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(entry(&d, "other", "").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    let out = apply(&tm, &deployment(3, false, false), &["--field-manager=other"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(r#"conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#),
        "{}",
        out.stderr
    );

    // Update managers of the other kubectl verbs, named as kubectl names them.
    assert!(tm.kubectl(&["-n", "shop", "create", "deployment", "made", "--image=nginx"]).ok);
    assert!(tm.kubectl(&["-n", "shop", "patch", "deploy", "made", "-p", r#"{"spec":{"paused":true}}"#]).ok);
    assert!(tm.kubectl(&["-n", "shop", "label", "deploy", "made", "team=a"]).ok);
    let d = get(&tm, &["deploy", "made"]);
    let created = entry(&d, "kubectl-create", "").unwrap();
    assert_eq!(created["operation"], "Update");
    let fv = &created["fieldsV1"];
    // As kube-apiserver records a create: containers new to the empty object carry ".".
    assert_eq!(fv["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert_eq!(fv["f:spec"]["f:strategy"]["f:rollingUpdate"], json!({".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}));
    assert!(fv["f:spec"]["f:strategy"].get(".").is_none() && fv["f:spec"].get(".").is_none());
    assert_eq!(fv["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:imagePullPolicy"], json!({}));
    assert_eq!(fv["f:spec"]["f:revisionHistoryLimit"], json!({}));
    assert_eq!(entry(&d, "kubectl-patch", "").unwrap()["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));
    assert_eq!(entry(&d, "kubectl-label", "").unwrap()["fieldsV1"], json!({"f:metadata": {"f:labels": {"f:team": {}}}}));
    assert!(created["fieldsV1"]["f:spec"].get("f:paused").is_none());

    // Client-side apply, then server-side apply of a changed manifest: no conflict with
    // kubectl-client-side-apply (last-applied shows kubectl set those fields), and the
    // annotation follows the new configuration.
    let csa = deployment(2, false, false).replace("name: web\n  namespace", "name: legacy\n  namespace");
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(&csa));
    assert!(out.ok, "{out:?}");
    assert!(entry(&get(&tm, &["deploy", "legacy"]), "kubectl-client-side-apply", "").is_some());
    let out = apply(&tm, &csa.replace("replicas: 2", "replicas: 4"), &[]);
    assert!(out.ok, "{out:?}");
    let d = get(&tm, &["deploy", "legacy"]);
    assert_eq!(d["spec"]["replicas"], 4);
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap();
    assert!(last.contains(r#""replicas":4"#) && last.ends_with('\n'), "{last}");
    assert_eq!(entry(&d, "kubectl", "").unwrap()["operation"], "Apply");

    // `kubectl get -o yaml --show-managed-fields` prints entries in upstream's shape.
    let y = tm.kubectl(&["-n", "shop", "get", "deploy", "web", "-o", "yaml", "--show-managed-fields"]);
    assert!(y.ok);
    for line in ["  managedFields:\n  - apiVersion: apps/v1\n    fieldsType: FieldsV1\n    fieldsV1:\n      f:metadata:\n        f:labels:\n          f:app: {}\n", "    manager: kubectl\n    operation: Apply\n", "    operation: Update\n    subresource: scale\n", "              k:{\"name\":\"nginx\"}:\n                .: {}\n"] {
        assert!(y.stdout.contains(line), "missing {line:?} in\n{}", y.stdout);
    }
    // Without the flag kubectl hides them.
    assert!(!tm.kubectl(&["-n", "shop", "get", "deploy", "web", "-o", "yaml"]).stdout.contains("managedFields"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_crate_apply_and_errors() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};

    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "apply-kube", dir.path(), &[]);
    let client = tm.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"color": v}});

    let made = api.patch("cfg", &PatchParams::apply("mgr1"), &Patch::Apply(cm("blue"))).await.unwrap();
    assert_eq!(made.data.unwrap()["color"], "blue");
    let mf = made.metadata.managed_fields.unwrap();
    assert_eq!((mf[0].manager.as_deref(), mf[0].operation.as_deref()), (Some("mgr1"), Some("Apply")));
    let rv = made.metadata.resource_version.unwrap();
    let again = api.patch("cfg", &PatchParams::apply("mgr1"), &Patch::Apply(cm("blue"))).await.unwrap();
    assert_eq!(again.metadata.resource_version.unwrap(), rv, "no-op apply writes nothing");

    let err = api.patch("cfg", &PatchParams::apply("mgr2"), &Patch::Apply(cm("red"))).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!("{err:?}") };
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(s.message, r#"Apply failed with 1 conflict: conflict with "mgr1": .data.color"#);
    let causes = s.details.as_ref().unwrap().causes.clone();
    assert_eq!(causes.len(), 1);
    assert_eq!((causes[0].reason.as_str(), causes[0].field.as_str()), ("FieldManagerConflict", ".data.color"));

    let forced = api.patch("cfg", &PatchParams::apply("mgr2").force(), &Patch::Apply(cm("red"))).await.unwrap();
    assert_eq!(forced.data.unwrap()["color"], "red");
    let owners: Vec<String> = forced.metadata.managed_fields.unwrap().into_iter().filter_map(|e| e.manager).collect();
    assert_eq!(owners, ["mgr2"], "mgr1 owned nothing else and was dropped");

    // An Update manager that changed the field is named with its apiVersion in conflicts.
    let mut obj = api.get("cfg").await.unwrap();
    obj.data.as_mut().unwrap().insert("color".into(), "green".into());
    api.replace("cfg", &kube::api::PostParams { field_manager: Some("mgr3".into()), ..Default::default() }, &obj).await.unwrap();
    let err = api.patch("cfg", &PatchParams::apply("mgr2"), &Patch::Apply(cm("red"))).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.message, r#"Apply failed with 1 conflict: conflict with "mgr3" using v1: .data.color"#);

    // managedFields sent in an update are taken as given; a single empty entry resets them.
    let mut obj = api.get("cfg").await.unwrap();
    obj.metadata.managed_fields = Some(vec![Default::default()]);
    let reset = api.replace("cfg", &Default::default(), &obj).await.unwrap();
    assert!(reset.metadata.managed_fields.is_none(), "{:?}", reset.metadata.managed_fields);
    // Untracked since: an apply first hands everything to "before-first-apply".
    let err = api.patch("cfg", &PatchParams::apply("mgr4"), &Patch::Apply(cm("pink"))).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.message, r#"Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.color"#);

    // Apply through /status owns status fields only, recorded with the subresource.
    use k8s_openapi::api::apps::v1::Deployment;
    let deps: Api<Deployment> = Api::namespaced(tm.client().await, "default");
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let created = deps.patch("d", &PatchParams::apply("deployer"), &Patch::Apply(dep.clone())).await.unwrap();
    assert!(created.metadata.resource_version.is_some());
    let st = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "status": {"replicas": 1, "observedGeneration": 1}});
    let d = deps.patch_status("d", &PatchParams::apply("ctrl"), &Patch::Apply(st)).await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().replicas, Some(1));
    let e = d.metadata.managed_fields.unwrap().into_iter().find(|e| e.manager.as_deref() == Some("ctrl")).unwrap();
    assert_eq!((e.operation.as_deref(), e.subresource.as_deref()), (Some("Apply"), Some("status")));
    assert_eq!(e.fields_v1.unwrap().0, json!({"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}));
    // Status in an apply to the main resource is not owned (the endpoint resets it).
    let mut with_status = dep.clone();
    with_status["status"] = json!({"replicas": 7});
    let d = deps.patch("d", &PatchParams::apply("deployer"), &Patch::Apply(with_status)).await.unwrap();
    assert_eq!(d.status.unwrap().replicas, Some(1));
    let e = d.metadata.managed_fields.unwrap().into_iter().find(|e| e.manager.as_deref() == Some("deployer")).unwrap();
    assert!(e.fields_v1.unwrap().0.get("f:status").is_none());

    // Apply through /scale owns the parent's spec.replicas, recorded with subresource scale.
    let sc = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"}, "spec": {"replicas": 3}});
    let scaled = deps.patch_scale("d", &PatchParams::apply("autoscaler"), &Patch::Apply(sc)).await.unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    let d = deps.get("d").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    let e = d.metadata.managed_fields.unwrap().into_iter().find(|e| e.manager.as_deref() == Some("autoscaler")).unwrap();
    assert_eq!((e.operation.as_deref(), e.subresource.as_deref(), e.api_version.as_deref()), (Some("Apply"), Some("scale"), Some("apps/v1")));
    assert_eq!(e.fields_v1.unwrap().0, json!({"f:spec": {"f:replicas": {}}}));
    let mut more = dep.clone();
    more["spec"]["replicas"] = json!(5);
    let err = deps.patch("d", &PatchParams::apply("deployer"), &Patch::Apply(more)).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.message, r#"Apply failed with 1 conflict: conflict with "autoscaler" with subresource "scale": .spec.replicas"#);

    // Apply without a field manager, with a body for another kind or name: upstream's errors.
    let client = tm.client().await;
    let send = |path: &'static str, body: Value| {
        let client = client.clone();
        async move {
            let req = http::Request::patch(path)
                .header("Content-Type", "application/apply-patch+yaml")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            client.request::<Value>(req).await
        }
    };
    let e = send("/api/v1/namespaces/default/configmaps/cfg", cm("x")).await.unwrap_err();
    let kube::Error::Api(s) = e else { panic!() };
    assert_eq!((s.code, s.message.as_str()), (422, r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#));
    let mut wrong = cm("x");
    wrong["kind"] = json!("Secret");
    let e = send("/api/v1/namespaces/default/configmaps/cfg?fieldManager=m", wrong).await.unwrap_err();
    let kube::Error::Api(s) = e else { panic!() };
    assert_eq!((s.code, s.message.as_str()), (400, "invalid object type: /v1, Kind=Secret"));
    let e = send("/api/v1/namespaces/default/configmaps/other?fieldManager=m", cm("x")).await.unwrap_err();
    let kube::Error::Api(s) = e else { panic!() };
    assert_eq!((s.code, s.message.as_str()), (400, "the name of the object (cfg) does not match the name on the URL (other)"));
    let e = send("/api/v1/namespaces/default/configmaps/cfg?fieldManager=m&force=yes", cm("x")).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 400), "{e:?}");
}
