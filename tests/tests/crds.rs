//! Tenant CRDs (issue 8): every tenant master serves its own CustomResourceDefinitions, in its
//! own versions, over one shared etcd. Driven with kubectl and the kube crate.
//!
//! The `schema_*` test needs the structural-schema engine (validation, pruning, defaults).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kplex_e2e::{kubectl_with, Etcd, Output, TenantMaster};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// `kubectl <args>` with `stdin` as input.
fn kubectl_in(tm: &TenantMaster, args: &[&str], stdin: &str) -> Output {
    kubectl_with(&kubectl_bin(), &tm.kubeconfig, args, Some(stdin))
}

fn apply(tm: &TenantMaster, yaml: &str) -> String {
    kubectl_in(tm, &["apply", "-f", "-"], yaml).must()
}

/// Polls `f` every 100 ms until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tenant a's CRD: v1 only.
const CRD_A: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Shape, type: string, jsonPath: .spec.shape, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    selectableFields:
    - jsonPath: .spec.color
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What a widget of tenant a looks like.
            properties:
              color: {type: string, description: The widget's color.}
              shape: {type: string}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

/// Tenant b's CRD: same group and kind, versions v1beta1 and v2 (stored), another schema.
const CRD_B: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, description: How big a widget of tenant b is.}
              labels: {type: object, additionalProperties: {type: string}}
  - name: v2
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, description: How big a widget of tenant b is.}
              labels: {type: object, additionalProperties: {type: string}}
"#;

fn widget_a(name: &str, color: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  color: {color}\n  shape: round\n  replicas: 1\n")
}

/// The API discovery of `tenant` lists widgets (as `kubectl api-resources` prints them).
fn lists_widgets(tm: &TenantMaster) -> bool {
    tm.kubectl(&["api-resources", "--api-group=example.com", "--no-headers"]).stdout.contains("widgets")
}

fn widgets_api(client: kube::Client, version: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "example.com".into(),
        version: version.into(),
        api_version: format!("example.com/{version}"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_install_different_versions_of_one_crd() {
    let etcd = Etcd::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TenantMaster::start(&etcd, "crd-a", da.path(), &[]);
    let mut b = TenantMaster::start(&etcd, "crd-b", db.path(), &[]);

    // Installing: discovery follows right away; each tenant has only its own CRD.
    apply(&a, CRD_A);
    assert!(eventually(Duration::from_secs(5), || lists_widgets(&a)), "tenant a's discovery never listed widgets");
    assert!(!lists_widgets(&b), "tenant b sees tenant a's CRD");
    apply(&b, CRD_B);
    assert!(eventually(Duration::from_secs(5), || lists_widgets(&b)));
    for tm in [&a, &b] {
        tm.kubectl(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"]).must();
    }
    let versions =
        |tm: &TenantMaster| tm.kubectl(&["get", "crd", "widgets.example.com", "-o", "jsonpath={.spec.versions[*].name} {.status.storedVersions}"]).must();
    assert_eq!(versions(&a), "v1 [\"v1\"]");
    assert_eq!(versions(&b), "v1beta1 v2 [\"v2\"]");
    let res = a.kubectl(&["api-resources", "--api-group=example.com"]).must();
    assert!(res.contains("wd") && res.contains("example.com/v1") && res.contains("Widget"), "{res}");
    let crds = a.kubectl(&["get", "crd"]).must();
    assert!(crds.starts_with("NAME") && crds.contains("CREATED AT") && crds.contains("widgets.example.com"), "{crds}");
    let conds = a.kubectl(&["get", "crd", "widgets.example.com", "-o", "jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason} {end}"]).must();
    assert!(conds.contains("NamesAccepted=True/NoConflicts") && conds.contains("Established=True/InitialNamesAccepted"), "{conds}");

    // Creating and reading: printer columns, short names, categories, several versions.
    apply(&a, &widget_a("alpha", "red"));
    apply(&b, "apiVersion: example.com/v2\nkind: Widget\nmetadata: {name: beta}\nspec: {size: 7}\n");
    apply(&b, "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata: {name: gamma}\nspec: {size: 9}\n");
    let table = a.kubectl(&["get", "widgets"]).must();
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "COLOR", "REPLICAS", "AGE"], "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("alpha") && table.contains("red"), "{table}");
    let wide = a.kubectl(&["get", "wd", "-o", "wide"]).must();
    assert!(wide.contains("SHAPE") && wide.contains("round"), "{wide}");
    let all = a.kubectl(&["get", "all"]).must();
    assert!(all.contains("widget.example.com/alpha"), "kubectl get all lists category all: {all}");
    let table_b = b.kubectl(&["get", "widgets"]).must();
    assert!(table_b.lines().next().unwrap().contains("SIZE") && table_b.contains("beta") && table_b.contains("gamma"), "{table_b}");
    // Stored in v2, served in either version.
    assert_eq!(b.kubectl(&["get", "widgets.v1beta1.example.com", "beta", "-o", "jsonpath={.apiVersion} {.spec.size}"]).must(), "example.com/v1beta1 7");
    assert_eq!(b.kubectl(&["get", "widget", "gamma", "-o", "jsonpath={.apiVersion}"]).must(), "example.com/v2");
    // Isolation: neither sees the other's objects or versions.
    assert_eq!(a.kubectl(&["get", "widgets", "-A", "-o", "name"]).must().trim(), "widget.example.com/alpha");
    assert!(!b.kubectl(&["get", "widgets", "-A", "-o", "name"]).must().contains("alpha"));
    let out = a.kubectl(&["get", "widgets.v2.example.com"]);
    assert!(!out.ok, "tenant a serves no v2: {}", out.stdout);
    // Field selectors on selectable fields.
    apply(&a, &widget_a("blue-one", "blue"));
    assert_eq!(a.kubectl(&["get", "widgets", "--field-selector", "spec.color=blue", "-o", "name"]).must().trim(), "widget.example.com/blue-one");
    let bad = b.kubectl(&["get", "widgets", "--field-selector", "spec.size=7"]);
    assert!(!bad.ok && bad.stderr.contains("field label not supported: spec.size"), "{}", bad.stderr);

    // Changing a CRD changes what is served at once (a new printer column here).
    a.kubectl(&[
        "patch",
        "crd",
        "widgets.example.com",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/versions/0/additionalPrinterColumns/0","value":{"name":"Tint","type":"string","jsonPath":".spec.color"}}]"#,
    ])
    .must();
    assert_eq!(a.kubectl(&["get", "crd", "widgets.example.com", "-o", "jsonpath={.metadata.generation}"]).must(), "2");
    assert!(
        eventually(Duration::from_secs(5), || a
            .kubectl(&["get", "widgets"])
            .stdout
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().nth(1) == Some("TINT"))),
        "{}",
        a.kubectl(&["get", "widgets"]).stdout
    );

    // Explain, from each tenant's own schema.
    let ex = a.kubectl(&["explain", "widget.spec"]).must();
    assert!(ex.contains("color") && ex.contains("The widget's color.") && !ex.contains("size"), "{ex}");
    let ex = b.kubectl(&["explain", "widget.spec"]).must();
    assert!(ex.contains("size") && ex.contains("How big") && !ex.contains("color"), "{ex}");

    // Patching: merge and JSON patches; strategic merge is refused as upstream refuses it.
    a.kubectl(&["patch", "widget", "alpha", "--type=merge", "-p", r#"{"spec":{"color":"green"}}"#]).must();
    b.kubectl(&["patch", "widget", "beta", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/size","value":8}]"#]).must();
    let smp = a.kubectl(&["patch", "widget", "alpha", "-p", r#"{"spec":{"color":"x"}}"#]);
    assert!(!smp.ok && smp.stderr.contains("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"), "{}", smp.stderr);
    assert_eq!(a.kubectl(&["get", "widget", "alpha", "-o", "jsonpath={.spec.color} {.metadata.generation}"]).must(), "green 2");
    assert_eq!(b.kubectl(&["get", "widget", "beta", "-o", "jsonpath={.spec.size}"]).must(), "8");
    // Server-side apply records managed fields typed by the schema.
    kubectl_in(
        &a,
        &["apply", "--server-side", "--field-manager=tool", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: ssa}\nspec: {color: teal, replicas: 2}\n",
    )
    .must();
    let ssa: Value = serde_json::from_str(&a.kubectl(&["get", "widget", "ssa", "--show-managed-fields", "-o", "json"]).must()).unwrap();
    let mf = &ssa["metadata"]["managedFields"][0];
    assert_eq!((mf["manager"].as_str(), mf["operation"].as_str()), (Some("tool"), Some("Apply")), "{ssa}");
    assert_eq!(mf["fieldsV1"]["f:spec"], json!({"f:color": {}, "f:replicas": {}}), "{ssa}");
    let conflict = kubectl_in(
        &a,
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: ssa}\nspec: {color: pink}\n",
    );
    assert!(!conflict.ok && conflict.stderr.contains("conflict") && conflict.stderr.contains(".spec.color"), "{}", conflict.stderr);

    // Status and scale subresources; generation moves with spec only.
    a.kubectl(&["scale", "widget/alpha", "--replicas=3"]).must();
    assert_eq!(a.kubectl(&["get", "widget", "alpha", "-o", "jsonpath={.spec.replicas}"]).must(), "3");
    a.kubectl(&["patch", "widget", "alpha", "--subresource=status", "--type=merge", "-p", r#"{"status":{"replicas":3}}"#]).must();
    let scale: Value = serde_json::from_str(&a.kubectl(&["get", "--raw", "/apis/example.com/v1/namespaces/default/widgets/alpha/scale"]).must()).unwrap();
    assert_eq!((scale["kind"].as_str(), scale["spec"]["replicas"].as_i64(), scale["status"]["replicas"].as_i64()), (Some("Scale"), Some(3), Some(3)));
    a.kubectl(&["patch", "widget", "alpha", "--type=merge", "-p", r#"{"status":{"replicas":99}}"#]).must();
    assert_eq!(a.kubectl(&["get", "widget", "alpha", "-o", "jsonpath={.status.replicas} {.metadata.generation}"]).must(), "3 3");

    // Watching through the kube crate, in each tenant.
    for (tm, version, name, body) in [
        (&a, "v1", "watched", json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "watched"}, "spec": {"color": "red"}})),
        (&b, "v1beta1", "watched", json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "watched"}, "spec": {"size": 1}})),
    ] {
        let api = widgets_api(tm.client().await, version);
        let rv = api.list(&Default::default()).await.unwrap().metadata.resource_version.unwrap();
        let mut stream = api.watch(&WatchParams::default().timeout(20), &rv).await.unwrap().boxed();
        let pp = PatchParams::apply("e2e");
        api.patch(name, &pp, &Patch::Apply(&body)).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            match ev.unwrap() {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    assert_eq!(o.types.as_ref().unwrap().api_version, format!("example.com/{version}"));
                    seen.push(o.metadata.name.unwrap());
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(seen, [name], "no watch event for the new widget in {}", tm.name);
    }

    // A real-world CRD (shaped like cert-manager's Certificate) installs and serves.
    let certs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/crds/certificates.yaml")).unwrap();
    apply(&b, &certs);
    b.kubectl(&["wait", "--for=condition=Established", "crd/certificates.pki.example.org", "--timeout=20s"]).must();
    apply(&b, "apiVersion: pki.example.org/v1\nkind: Certificate\nmetadata: {name: web}\nspec:\n  secretName: web-tls\n  dnsNames: [web.example.org]\n  issuerRef: {name: ca, kind: ClusterIssuer}\n  privateKey: {algorithm: ECDSA, size: 256}\n  usages: [server auth, digital signature]\n");
    b.kubectl(&[
        "patch",
        "certificate",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Issued","message":"Certificate is up to date"}],"revision":1}}"#,
    ])
    .must();
    let certs_table = b.kubectl(&["get", "certs", "-o", "wide"]).must();
    let head: Vec<&str> = certs_table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "READY", "SECRET", "ISSUER", "STATUS", "AGE"], "{certs_table}");
    let row = certs_table.lines().nth(1).unwrap();
    assert!(row.starts_with("web") && row.contains("True") && row.contains("web-tls") && row.contains("Certificate is up to date"), "{certs_table}");
    let ex = b.kubectl(&["explain", "certificate.spec.keystores.pkcs12"]).must();
    assert!(ex.contains("passwordSecretRef") && ex.contains("profile"), "{ex}");
    let old = b.kubectl(&["get", "certificates.v1beta1.pki.example.org", "web", "-o", "jsonpath={.apiVersion} {.status.revision}"]);
    assert_eq!(old.stdout, "pki.example.org/v1beta1 1");
    assert!(old.stderr.contains("Warning: pki.example.org/v1beta1 Certificate is deprecated; use pki.example.org/v1"), "{}", old.stderr);
    assert!(!a.kubectl(&["api-resources"]).must().contains("certificates"), "tenant a does not have tenant b's CRDs");

    // Custom resources in a deleted namespace go with it; the garbage collector deletes
    // custom resources whose owner is gone.
    a.kubectl(&["create", "namespace", "doomed"]).must();
    kubectl_in(&a, &["-n", "doomed", "apply", "-f", "-"], &widget_a("inside", "grey")).must();
    a.kubectl(&["delete", "namespace", "doomed", "--timeout=60s"]).must();
    assert!(a.kubectl(&["get", "widgets", "-n", "doomed", "-o", "name"]).must().trim().is_empty());
    a.kubectl(&["create", "configmap", "owner"]).must();
    let uid = a.kubectl(&["get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}"]).must();
    apply(&a, &format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: owned\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}}}\nspec: {{color: black}}\n"));
    a.kubectl(&["delete", "configmap", "owner"]).must();
    assert!(eventually(Duration::from_secs(30), || !a.kubectl(&["get", "widget", "owned"]).ok), "the garbage collector did not delete the owned widget");

    // A CRD with webhook conversion is refused, saying why.
    let webhook = CRD_A.replace("widgets.example.com", "gizmos.example.com").replace("plural: widgets, singular: widget, kind: Widget, shortNames: [wd]", "plural: gizmos, kind: Gizmo")
        .replace("  versions:\n", "  conversion:\n    strategy: Webhook\n    webhook:\n      conversionReviewVersions: [v1]\n      clientConfig: {url: \"https://conv.example.com/convert\"}\n  versions:\n");
    let out = kubectl_in(&a, &["apply", "-f", "-"], &webhook);
    assert!(!out.ok && out.stderr.contains("spec.conversion.strategy: Invalid value: \"Webhook\": conversion webhooks are not supported"), "{}", out.stderr);

    // Deleting the CRD deletes its widgets, then the CRD; discovery follows. Tenant b keeps its own.
    a.kubectl(&["delete", "crd", "widgets.example.com", "--timeout=60s"]).must();
    assert!(eventually(Duration::from_secs(5), || !lists_widgets(&a)));
    let gone = a.kubectl(&["get", "widgets", "-A"]);
    assert!(!gone.ok, "widgets still served: {}", gone.stdout);
    apply(&a, CRD_A);
    a.kubectl(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"]).must();
    assert!(eventually(Duration::from_secs(5), || a.kubectl(&["get", "widgets", "-A", "-o", "name"]).ok));
    assert_eq!(a.kubectl(&["get", "widgets", "-A", "-o", "name"]).must().trim(), "", "a recreated CRD starts empty");
    assert_eq!(b.kubectl(&["get", "widgets", "-o", "name"]).must().lines().count(), 3);

    // Paged lists (limit/continue) through another version than the stored one.
    let paged = b.kubectl(&["get", "widgets.v1beta1.example.com", "--chunk-size=1", "-o", "jsonpath={range .items[*]}{.apiVersion} {end}"]).must();
    assert_eq!(paged.trim(), "example.com/v1beta1 example.com/v1beta1 example.com/v1beta1", "{paged}");

    // After a restart the CRDs are served from the first request on.
    b.restart();
    assert_eq!(b.kubectl(&["get", "widgets.v1beta1.example.com", "-o", "name"]).must().lines().count(), 3);
    assert!(b.kubectl(&["get", "certificates"]).must().contains("web-tls"));
}

mod controller {
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kplex_e2e::{Etcd, TenantMaster};
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::watcher;
    use kube::{CustomResource, CustomResourceExt, ResourceExt};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    /// A widget as a kube-rs operator declares it.
    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
    #[kube(group = "example.com", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus", shortname = "wd")]
    #[serde(rename_all = "camelCase")]
    pub struct WidgetSpec {
        pub color: String,
        pub replicas: Option<i32>,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct WidgetStatus {
        pub observed_color: Option<String>,
    }

    /// Sets the status from the spec, through the status subresource.
    async fn reconcile(w: Arc<Widget>, client: Arc<kube::Client>) -> Result<Action, kube::Error> {
        let api: Api<Widget> = Api::namespaced((*client).clone(), &w.namespace().unwrap_or_default());
        let status = json!({"status": {"observedColor": w.spec.color}});
        api.patch_status(&w.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await?;
        Ok(Action::await_change())
    }

    fn error_policy(_: Arc<Widget>, _: &kube::Error, _: Arc<kube::Client>) -> Action {
        Action::requeue(Duration::from_secs(1))
    }

    async fn observed(api: &Api<Widget>, name: &str, want: &str) -> bool {
        for _ in 0..200 {
            if let Ok(w) = api.get(name).await {
                if w.status.and_then(|s| s.observed_color).as_deref() == Some(want) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kube_rs_controller_reconciles_widgets() {
        let etcd = Etcd::start();
        let dir = tempfile::tempdir().unwrap();
        let tm = TenantMaster::start(&etcd, "crd-ctrl", dir.path(), &[]);
        let client = tm.client().await;
        // The CRD kube-derive generates (its schemars schema) installs as it is.
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &Widget::crd()).await.unwrap();
        tm.kubectl(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"]).must();

        let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
        let ctrl = Controller::new(widgets.clone(), watcher::Config::default())
            .run(reconcile, error_policy, Arc::new(client.clone()))
            .for_each(|_| futures::future::ready(()));
        let handle = tokio::spawn(ctrl);

        for (name, color) in [("one", "red"), ("two", "blue")] {
            let w = Widget::new(name, WidgetSpec { color: color.into(), replicas: Some(1) });
            widgets.create(&PostParams::default(), &w).await.unwrap();
        }
        assert!(observed(&widgets, "one", "red").await, "the controller never set the status of one");
        assert!(observed(&widgets, "two", "blue").await);
        widgets.patch("one", &PatchParams::default(), &Patch::Merge(json!({"spec": {"color": "green"}}))).await.unwrap();
        assert!(observed(&widgets, "one", "green").await, "the controller did not follow the change");
        let table = tm.kubectl(&["get", "wd", "one", "-o", "jsonpath={.status.observedColor} {.metadata.generation}"]).must();
        assert_eq!(table, "green 2", "status writes do not bump the generation");
        handle.abort();
    }
}

/// Needs the structural-schema engine (validation, pruning, defaulting of custom resources).
#[test]
fn schema_validation_pruning_and_defaults() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "crd-schema", dir.path(), &[]);
    apply(
        &tm,
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, blue], default: red}
"#,
    );
    tm.kubectl(&["wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=20s"]).must();
    // 422 naming the field.
    let bad = kubectl_in(&tm, &["apply", "-f", "-"], "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: bad}\nspec: {size: 20}\n");
    assert!(!bad.ok && bad.stderr.contains("is invalid") && bad.stderr.contains("spec.size"), "{}", bad.stderr);
    let missing = kubectl_in(&tm, &["apply", "-f", "-"], "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: bad}\nspec: {color: red}\n");
    assert!(!missing.ok && missing.stderr.contains("spec.size") && missing.stderr.contains("Required value"), "{}", missing.stderr);
    // Unknown fields: refused under Strict (kubectl's default), warned about and pruned otherwise.
    let body = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {size: 3, bogus: 1}\n";
    let strict = kubectl_in(&tm, &["apply", "-f", "-"], body);
    assert!(!strict.ok && strict.stderr.contains("unknown field \"spec.bogus\""), "{}", strict.stderr);
    let warned = kubectl_in(&tm, &["apply", "--validate=warn", "-f", "-"], body);
    assert!(warned.ok && warned.stderr.contains("unknown field \"spec.bogus\""), "{}", warned.stderr);
    let stored: Value = serde_json::from_str(&tm.kubectl(&["get", "gadget", "g", "-o", "json"]).must()).unwrap();
    assert_eq!(stored["spec"], json!({"size": 3, "color": "red"}), "pruned and defaulted");
}
