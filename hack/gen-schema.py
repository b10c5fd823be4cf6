#!/usr/bin/env python3
"""Generates tenant-master/src/schema.json, the schema of the built-in kinds that
tenant-master/src/schema.rs loads: tenant-master/src/api/protobuf.rs uses it to turn Kubernetes protobuf request bodies
(`application/vnd.kubernetes.protobuf`) into the JSON a client would have sent.

Usage (from the repository root; re-runnable, output is deterministic):

    python3 hack/gen-schema.py [--pb DIR] [--openapi DIR] [--out FILE]

Inputs (crate sources in the cargo registry, found under $CARGO_HOME or ~/.cargo
unless given; `cargo fetch` / building once brings them there):

  * k8s-pb 0.9.0: prost-generated structs for every Kubernetes message. Gives the
    message fields, their protobuf tags and wire types, map / repeated-ness and
    message references (`#[prost(string, optional, tag = "1")]`, ...).
  * k8s-openapi 0.29.0 (all of its v1_* API versions, newest first wins): gives the
    Kubernetes JSON field names (from its serde `"podIPs" => Field::Key_pod_ips`
    tables), the Go type names, which fields are required (non-`Option` in any
    version), and the
    `apiVersion`s of the API groups. Prost field names are matched to JSON names by
    normalising both (lowercase, only [a-z0-9]).

Output (one message per line, so diffs stay readable):

  {"kinds":    {"apps/v1/deployment": "apps.v1.Deployment", ...},
   "special":  {"meta.v1.Time": "time", ...},
   "types":    {"meta.v1.LabelSelector": {"st": "atomic"}, ...},
   "markers":  {"core.v1.PodSpec": {"containers": {"ps": "merge", "pk": "name",
                                                    "lt": "map", "lk": ["name"]}, ...}, ...},
   "messages": {"apps.v1.Deployment": [[tag, jsonName, type, card], ...], ...}}

  * kinds: "<apiVersion>/<lowercased kind>" -> message, for every message of a
    group version that k8s-openapi knows (i.e. one a supported Kubernetes release
    serves) that has an ObjectMeta `metadata` field (top-level kinds,
    including subresource kinds like Scale, Eviction, TokenRequest), plus
    DeleteOptions (accepted under any apiVersion by the decoder).
  * type: "string" | "int32" | "int64" | "bool" | "double" | "bytes" | a message.
  * card: 0 = singular, omitted from JSON when zero ("", 0, false: a Go value field
    with `omitempty`, which gogo-protobuf always puts on the wire);
    1 = singular, kept even when zero (a Go pointer, or a required field);
    2 = repeated; 3 = map with string keys (values of `type`); 4 = a Go embedded
    struct (`json:",inline"`): its JSON fields go into the parent object.
  * special: messages with a custom JSON form (Time, MicroTime, Duration,
    Quantity, IntOrString, RawExtension / FieldsV1 / apiextensions JSON, the
    JSONSchemaPropsOr* unions, and `+protobuf.nullable=true` list wrappers such as
    ExtraValue that are JSON arrays).
  * types / markers: the Go comment markers of a type / of a field (by JSON name):
    ps = +patchStrategy, pk = +patchMergeKey, lt = +listType, lk = +listMapKey
    (in order), mt = +mapType, st = +structType. Strategic merge patch,
    server-side apply and the OpenAPI extensions are driven by them.

Whether a zero scalar is a Go pointer cannot be seen in either crate; POINTERS
below lists the pointer scalar fields (Go `*int32`, `*bool`, `*string`, ...) whose
explicit zero value means something, keyed by Go type name and JSON field name.
Only messages reachable from the kinds are written.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys

# Go pointer scalar fields ("GoType.jsonField", or "group.GoType.jsonField" where the
# group is the first part of the message key), whose zero value must be kept.
POINTERS = """
ObjectMeta.deletionGracePeriodSeconds
OwnerReference.controller OwnerReference.blockOwnerDeletion
DeleteOptions.gracePeriodSeconds DeleteOptions.orphanDependents DeleteOptions.propagationPolicy
DeleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential
Preconditions.uid Preconditions.resourceVersion ListMeta.remainingItemCount
PodSpec.terminationGracePeriodSeconds PodSpec.activeDeadlineSeconds PodSpec.automountServiceAccountToken
PodSpec.shareProcessNamespace PodSpec.priority PodSpec.enableServiceLinks PodSpec.preemptionPolicy
PodSpec.setHostnameAsFQDN PodSpec.hostUsers PodSpec.runtimeClassName PodSpec.hostnameOverride
PodSecurityContext.runAsUser PodSecurityContext.runAsGroup PodSecurityContext.runAsNonRoot
PodSecurityContext.fsGroup PodSecurityContext.fsGroupChangePolicy PodSecurityContext.supplementalGroupsPolicy
PodSecurityContext.seLinuxChangePolicy
SecurityContext.privileged SecurityContext.runAsUser SecurityContext.runAsGroup SecurityContext.runAsNonRoot
SecurityContext.readOnlyRootFilesystem SecurityContext.allowPrivilegeEscalation SecurityContext.procMount
WindowsSecurityContextOptions.gmsaCredentialSpecName WindowsSecurityContextOptions.gmsaCredentialSpec
WindowsSecurityContextOptions.runAsUserName WindowsSecurityContextOptions.hostProcess
SeccompProfile.localhostProfile AppArmorProfile.localhostProfile
Container.restartPolicy EphemeralContainerCommon.restartPolicy Probe.terminationGracePeriodSeconds GRPCAction.service
VolumeMount.mountPropagation VolumeMount.recursiveReadOnly
SecretVolumeSource.defaultMode SecretVolumeSource.optional ConfigMapVolumeSource.defaultMode ConfigMapVolumeSource.optional
ProjectedVolumeSource.defaultMode DownwardAPIVolumeSource.defaultMode KeyToPath.mode DownwardAPIVolumeFile.mode
SecretProjection.optional ConfigMapProjection.optional ServiceAccountTokenProjection.expirationSeconds
ConfigMapKeySelector.optional SecretKeySelector.optional ConfigMapEnvSource.optional SecretEnvSource.optional
FileKeySelector.optional ClusterTrustBundleProjection.name ClusterTrustBundleProjection.signerName
ClusterTrustBundleProjection.optional PodCertificateProjection.maxExpirationSeconds
CSIVolumeSource.readOnly CSIVolumeSource.fsType ISCSIVolumeSource.initiatorName ISCSIPersistentVolumeSource.initiatorName
AzureDiskVolumeSource.readOnly AzureDiskVolumeSource.fsType AzureDiskVolumeSource.cachingMode AzureDiskVolumeSource.kind
AzureFilePersistentVolumeSource.secretNamespace HostPathVolumeSource.type LocalVolumeSource.fsType
PersistentVolumeClaimSpec.storageClassName PersistentVolumeClaimSpec.volumeMode
PersistentVolumeClaimSpec.volumeAttributesClassName PersistentVolumeSpec.volumeMode
PersistentVolumeSpec.volumeAttributesClassName PersistentVolumeClaimStatus.currentVolumeAttributesClassName
ModifyVolumeStatus.targetVolumeAttributesClassName
TypedLocalObjectReference.apiGroup TypedObjectReference.apiGroup TypedObjectReference.namespace
ServiceSpec.allocateLoadBalancerNodePorts ServiceSpec.loadBalancerClass ServiceSpec.internalTrafficPolicy
ServiceSpec.ipFamilyPolicy ServiceSpec.trafficDistribution ClientIPConfig.timeoutSeconds
ServicePort.appProtocol EndpointPort.appProtocol EndpointAddress.nodeName LoadBalancerIngress.ipMode PortStatus.error
ConfigMap.immutable Secret.immutable ServiceAccount.automountServiceAccountToken
ReplicationControllerSpec.replicas ContainerStatus.started ContainerStatus.stopSignal Lifecycle.stopSignal
TopologySpreadConstraint.minDomains TopologySpreadConstraint.nodeAffinityPolicy TopologySpreadConstraint.nodeTaintsPolicy
Toleration.tolerationSeconds PodDNSConfigOption.value PodDNSConfigOption.name
PodResourceClaim.resourceClaimName PodResourceClaim.resourceClaimTemplateName
PodResourceClaimStatus.resourceClaimName NodeSwapStatus.capacity
NodeRuntimeHandlerFeatures.recursiveReadOnlyMounts NodeRuntimeHandlerFeatures.userNamespaces
NodeFeatures.supplementalGroupsPolicy
DeploymentSpec.replicas DeploymentSpec.revisionHistoryLimit DeploymentSpec.progressDeadlineSeconds
DeploymentStatus.collisionCount DeploymentStatus.terminatingReplicas
ReplicaSetSpec.replicas ReplicaSetStatus.terminatingReplicas
StatefulSetSpec.replicas StatefulSetSpec.revisionHistoryLimit StatefulSetStatus.collisionCount
RollingUpdateStatefulSetStrategy.partition DaemonSetSpec.revisionHistoryLimit DaemonSetStatus.collisionCount
JobSpec.parallelism JobSpec.completions JobSpec.activeDeadlineSeconds JobSpec.backoffLimit
JobSpec.backoffLimitPerIndex JobSpec.maxFailedIndexes JobSpec.ttlSecondsAfterFinished JobSpec.manualSelector
JobSpec.suspend JobSpec.completionMode JobSpec.podReplacementPolicy JobSpec.managedBy
JobStatus.ready JobStatus.terminating JobStatus.failedIndexes
PodFailurePolicyOnExitCodesRequirement.containerName SuccessPolicyRule.succeededIndexes SuccessPolicyRule.succeededCount
CronJobSpec.startingDeadlineSeconds CronJobSpec.suspend CronJobSpec.successfulJobsHistoryLimit
CronJobSpec.failedJobsHistoryLimit CronJobSpec.timeZone
HorizontalPodAutoscalerSpec.minReplicas HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage
HorizontalPodAutoscalerStatus.observedGeneration HorizontalPodAutoscalerStatus.currentCPUUtilizationPercentage
MetricTarget.averageUtilization MetricValueStatus.averageUtilization
HPAScalingRules.stabilizationWindowSeconds HPAScalingRules.selectPolicy
PodDisruptionBudgetSpec.unhealthyPodEvictionPolicy
IngressSpec.ingressClassName HTTPIngressPath.pathType NetworkPolicyPort.protocol NetworkPolicyPort.endPort
IngressClassParametersReference.apiGroup IngressClassParametersReference.scope
IngressClassParametersReference.namespace IngressPortStatus.error
StorageClass.reclaimPolicy StorageClass.allowVolumeExpansion StorageClass.volumeBindingMode
CSIDriverSpec.attachRequired CSIDriverSpec.podInfoOnMount CSIDriverSpec.storageCapacity CSIDriverSpec.fsGroupPolicy
CSIDriverSpec.requiresRepublish CSIDriverSpec.seLinuxMount CSIDriverSpec.nodeAllocatableUpdatePeriodSeconds
CSIDriverSpec.serviceAccountTokenInSecrets
VolumeAttachmentSource.persistentVolumeName VolumeError.errorCode VolumeNodeResources.count
PriorityClass.preemptionPolicy
LeaseSpec.holderIdentity LeaseSpec.leaseDurationSeconds LeaseSpec.leaseTransitions LeaseSpec.strategy
LeaseSpec.preferredHolder
discovery.EndpointPort.name discovery.EndpointPort.port discovery.EndpointPort.protocol
Endpoint.hostname Endpoint.nodeName Endpoint.zone EndpointConditions.ready EndpointConditions.serving
EndpointConditions.terminating
CertificateSigningRequestSpec.expirationSeconds TokenRequestSpec.expirationSeconds
ValidatingWebhook.failurePolicy ValidatingWebhook.matchPolicy ValidatingWebhook.sideEffects
ValidatingWebhook.timeoutSeconds MutatingWebhook.failurePolicy MutatingWebhook.matchPolicy
MutatingWebhook.sideEffects MutatingWebhook.timeoutSeconds MutatingWebhook.reinvocationPolicy
WebhookClientConfig.url ServiceReference.path ServiceReference.port Rule.scope
ValidatingAdmissionPolicySpec.failurePolicy MutatingAdmissionPolicySpec.failurePolicy
MutatingAdmissionPolicySpec.reinvocationPolicy ParamRef.parameterNotFoundAction
MatchResources.matchPolicy Validation.reason ValidationRule.optionalOldSelf ValidationRule.reason
CustomResourceDefinitionVersion.deprecationWarning CustomResourceSubresourceScale.labelSelectorPath
JSONSchemaProps.maximum JSONSchemaProps.minimum JSONSchemaProps.maxLength JSONSchemaProps.minLength
JSONSchemaProps.maxItems JSONSchemaProps.minItems JSONSchemaProps.multipleOf JSONSchemaProps.maxProperties
JSONSchemaProps.minProperties JSONSchemaProps.x-kubernetes-preserve-unknown-fields
JSONSchemaProps.x-kubernetes-list-type JSONSchemaProps.x-kubernetes-map-type
LimitedPriorityLevelConfiguration.nominalConcurrencyShares LimitedPriorityLevelConfiguration.lendablePercent
LimitedPriorityLevelConfiguration.borrowingLimitPercent ExemptPriorityLevelConfiguration.nominalConcurrencyShares
ExemptPriorityLevelConfiguration.lendablePercent
DeviceAttribute.int DeviceAttribute.bool DeviceAttribute.string DeviceAttribute.version
DeviceRequest.adminAccess ExactDeviceRequest.adminAccess DeviceToleration.tolerationSeconds
DeviceRequestAllocationResult.adminAccess ResourceSliceSpec.nodeName ResourceSliceSpec.allNodes
ResourceSliceSpec.perDeviceNodeSelection BasicDevice.allNodes BasicDevice.nodeName Device.allNodes Device.nodeName
"""

# Modules (k8s-pb directory paths) not worth decoding.
SKIP_MODULES = ("metrics/", "apimachinery/pkg/apis/testapigroup/")

# API groups for module directories whose group no Resource impl names.
GROUP_FALLBACK = {
    "core": "", "extensions": "extensions", "imagepolicy": "imagepolicy.k8s.io",
    "admission": "admission.k8s.io", "apidiscovery": "apidiscovery.k8s.io",
}


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


def registry_dirs():
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    return os.path.join(home, "registry", "src", "*")


def find_crate(name):
    hits = sorted(glob.glob(os.path.join(registry_dirs(), name)))
    if not hits:
        sys.exit(f"cannot find {name} in the cargo registry (run `cargo fetch` first or pass its path)")
    return hits[-1]


def short_module(mod):
    """api/core/v1 -> core.v1; apimachinery/pkg/apis/meta/v1 -> meta.v1; ..."""
    m = mod
    if m.startswith("api/"):
        m = m[4:]
    elif m.startswith("apimachinery/pkg/"):
        m = m[len("apimachinery/pkg/"):]
        if m.startswith("apis/"):
            m = m[5:]
    else:
        m = re.sub(r"^[a-z_]+/pkg/apis/", "", m)
    return m.replace("/", ".")


# ---------------------------------------------------------------- k8s-openapi

def parse_openapi(root):
    """Returns (structs, groups): structs[(module, lowername)] = {...}, newest version wins
    (but a field required in any version is required)."""
    structs = {}
    groups = {}
    versions = sorted((d for d in os.listdir(os.path.join(root, "src")) if re.fullmatch(r"v\d+_\d+", d)),
                      key=lambda v: tuple(int(x) for x in v[1:].split("_")))
    for ver in versions:
        base = os.path.join(root, "src", ver)
        for dirpath, _, files in os.walk(base):
            mod = os.path.relpath(dirpath, base).replace(os.sep, "/")
            for f in files:
                if not f.endswith(".rs") or f in ("mod.rs", "list.rs"):
                    continue
                text = open(os.path.join(dirpath, f), encoding="utf-8").read()
                m = re.search(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.S | re.M)
                if not m:
                    continue
                name, body = m.group(1), m.group(2)
                rust_fields = {}
                for fm in re.finditer(r"^    pub (\w+): (.+),$", body, re.M):
                    rust_fields[fm.group(1)] = not fm.group(2).startswith("Option<")
                fields = {}
                for km in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
                    j, key = km.group(1), km.group(2)
                    fields[norm(j)] = (j, rust_fields.get(key, False))
                av = re.search(r'const API_VERSION: &\'static str = "([^"]*)";', text)
                kind = re.search(r'const KIND: &\'static str = "([^"]*)";', text)
                # A field required in any version counts as required (newer specs relax some).
                old = structs.get((mod, name.lower()))
                if old:
                    for n, (j, req) in fields.items():
                        if not req and old["fields"].get(n, ("", False))[1]:
                            fields[n] = (j, True)
                structs[(mod, name.lower())] = {"name": name, "fields": fields,
                                                "kind": kind.group(1) if kind else None}
                if av:
                    groups[mod] = av.group(1).rsplit("/", 1)[0] if "/" in av.group(1) else ""
    return structs, groups


# ---------------------------------------------------------------- k8s-pb

ATTR = re.compile(r"#\[prost\((.*)\)\]")


def parse_pb(root):
    """Returns (messages, groups): messages[(module, name)] = {...}."""
    src = os.path.join(root, "src")
    messages = {}
    groups = {}
    for dirpath, _, files in os.walk(src):
        if "mod.rs" not in files:
            continue
        mod = os.path.relpath(dirpath, src).replace(os.sep, "/")
        if mod == "." or any(mod.startswith(s) or (mod + "/").startswith(s) for s in SKIP_MODULES):
            continue
        lines = open(os.path.join(dirpath, "mod.rs"), encoding="utf-8").read().split("\n")
        doc = []
        cur = None
        i = 0
        while i < len(lines):
            line = lines[i]
            s = line.strip()
            if s.startswith("///"):
                doc.append(s[3:].strip())
            elif m := re.match(r"pub struct (\w+) \{(\})?", line):
                cur = {"name": m.group(1), "module": mod, "doc": doc, "fields": []}
                messages[(mod, cur["name"])] = cur
                if m.group(2):
                    cur = None
                doc = []
            elif cur is not None and line == "}":
                cur = None
                doc = []
            elif cur is not None and (am := ATTR.search(s)):
                attr = am.group(1)
                # The declaration: until a line ending in ',' with balanced <>.
                decl = ""
                i += 1
                while True:
                    decl += lines[i].strip()
                    if decl.endswith(",") and decl.count("<") == decl.count(">"):
                        break
                    i += 1
                decl = re.sub(r",\s*>", ">", decl)
                dm = re.match(r"pub (r#)?(\w+):\s*(.*),$", decl)
                cur["fields"].append({"attr": attr, "rust": dm.group(2), "ty": dm.group(3), "doc": doc})
                doc = []
            elif m := re.match(r'\s*const API_VERSION: &\'static str = "([^"]*)";', line):
                groups[mod] = m.group(1).rsplit("/", 1)[0] if "/" in m.group(1) else ""
            elif not s.startswith("#["):
                doc = []
            i += 1
    return messages, groups


def resolve(mod, path):
    """Resolves a Rust type path (relative to mod) to (module, name)."""
    parts = [p for p in path.split("::") if p]
    cur = mod.split("/")
    if parts[0] == "crate":
        cur, parts = [], parts[1:]
    while parts and parts[0] == "super":
        cur = cur[:-1]
        parts = parts[1:]
    return "/".join(cur + parts[:-1]), parts[-1]


def message_type(ty):
    """The message type path inside a field's Rust type."""
    t = ty
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        if t.startswith(wrapper):
            t = t[len(wrapper):-1]
            return message_type(t)
    if t.startswith("::prost::alloc::collections::BTreeMap<"):
        inner = t[len("::prost::alloc::collections::BTreeMap<"):-1].rstrip(",")
        key, val = inner.split(",", 1)
        return message_type(val.strip().rstrip(","))
    return t


MARKER = re.compile(r"^\+(patchStrategy|patchMergeKey|listType|listMapKey|mapType|structType)=(\S+)$")
MARKER_KEYS = {"patchStrategy": "ps", "patchMergeKey": "pk", "listType": "lt", "listMapKey": "lk",
               "mapType": "mt", "structType": "st"}


def markers(doc):
    """The `+patchStrategy`, `+patchMergeKey`, `+listType`, `+listMapKey` (repeatable),
    `+mapType` and `+structType` comment markers of a Go field or type, as carried into
    k8s-pb's doc comments: what strategic merge patch, server-side apply and the OpenAPI
    extensions (x-kubernetes-patch-strategy, x-kubernetes-list-type, ...) need."""
    out = {}
    for line in doc:
        if m := MARKER.match(line.strip()):
            k = MARKER_KEYS[m.group(1)]
            if k == "lk":
                out.setdefault("lk", []).append(m.group(2))
            else:
                out[k] = m.group(2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pb", help="k8s-pb crate directory")
    ap.add_argument("--openapi", help="k8s-openapi crate directory")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tenant-master", "src", "schema.json"))
    args = ap.parse_args()
    pb_root = args.pb or find_crate("k8s-pb-0.9.0")
    oa_root = args.openapi or find_crate("k8s-openapi-0.29.0")

    oa_structs, oa_groups = parse_openapi(oa_root)
    oa_modules = {mod for mod, _ in oa_structs}
    messages, pb_groups = parse_pb(pb_root)

    # Global fallback for JSON names: normalised name -> most common JSON key.
    global_names = collections.defaultdict(collections.Counter)
    oa_by_name = collections.defaultdict(list)
    for (mod, lname), st in oa_structs.items():
        oa_by_name[lname].append((mod, st))
        for n, (j, _) in st["fields"].items():
            global_names[n][j] += 1

    def openapi_struct(mod, name):
        st = oa_structs.get((mod, name.lower()))
        if st:
            return st
        # Same type in another version of the same group, else anywhere.
        group_dir = mod.rsplit("/", 1)[0]
        cands = oa_by_name.get(name.lower(), [])
        for m, s in cands:
            if m.rsplit("/", 1)[0] == group_dir:
                return s
        return cands[0][1] if len(cands) == 1 else None

    pointers = set(POINTERS.split())
    key = {k: f"{short_module(k[0])}.{k[1]}" for k in messages}

    special = {}
    for k, msg in messages.items():
        mod, name = k
        full = key[k]
        docs = "\n".join(msg["doc"])
        if mod == "apimachinery/pkg/apis/meta/v1" and name in ("Time", "MicroTime", "Duration"):
            special[full] = name.lower()
        elif (mod, name) in (("apimachinery/pkg/apis/meta/v1", "FieldsV1"), ("apimachinery/pkg/runtime", "RawExtension")) \
                or (mod.startswith("apiextensions_apiserver/") and name == "Json"):
            special[full] = "rawjson"
        elif mod == "apimachinery/pkg/api/resource" and name in ("Quantity", "QuantityValue"):
            special[full] = "quantity"
        elif mod == "apimachinery/pkg/util/intstr" and name == "IntOrString":
            special[full] = "intorstring"
        elif mod.startswith("apiextensions_apiserver/") and name.startswith("JsonSchemaPropsOr"):
            special[full] = {"JsonSchemaPropsOrArray": "orarray", "JsonSchemaPropsOrBool": "orbool",
                             "JsonSchemaPropsOrStringArray": "orstringarray"}[name]
        elif "+protobuf.nullable=true" in docs and len(msg["fields"]) == 1 and msg["fields"][0]["rust"] == "items":
            special[full] = "list"

    for (mod, name), msg in messages.items():
        msg["st"] = openapi_struct(mod, name)

    def field_type(mod, f):
        """(module, name) of a message-typed field, else None."""
        if not re.match(r'(message|btree_map = "string, message")', f["attr"]):
            return None
        return resolve(mod, message_type(f["ty"]))

    flat_memo = {}

    def flat(k):
        """Normalised JSON field names of message k, embedded structs spliced in."""
        if k not in flat_memo:
            flat_memo[k] = set()  # recursion guard
            mod, _ = k
            st = messages[k]["st"]
            names = set()
            for f in messages[k]["fields"]:
                n, t = norm(f["rust"]), field_type(mod, f)
                if t and "repeated" not in f["attr"] and not (st and n in st["fields"]) and is_inline(st, t):
                    names |= flat(t)
                else:
                    names.add(n)
            flat_memo[k] = names
        return flat_memo[k]

    def is_inline(parent_st, t):
        """A Go embedded struct (`json:",inline"`) is a message field on the wire whose
        fields are JSON fields of the parent: recognised by all of them being there."""
        if not parent_st or key[t] in special:
            return False
        names = flat(t)
        return bool(names) and all(c in parent_st["fields"] for c in names)

    out_msgs = {}
    out_markers = {}
    out_type_markers = {}
    refs = {}
    unmatched = []
    used_pointers = set()
    for k, msg in messages.items():
        mod, name = k
        st = msg["st"]
        go_name = st["name"] if st else name
        msg["go_name"] = go_name
        fields = []
        deps = []
        for f in msg["fields"]:
            attr = f["attr"]
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            n = norm(f["rust"])
            required = False
            if st and n in st["fields"]:
                jname, required = st["fields"][n]
            else:
                first = f["doc"][0].split()[0].strip(".,:`'\"") if f["doc"] and f["doc"][0].split() else ""
                if global_names.get(n):
                    jname = global_names[n].most_common(1)[0][0]
                elif norm(first) == n and first[:1].islower():
                    jname = first
                else:
                    p = f["rust"].split("_")
                    jname = p[0] + "".join(x[:1].upper() + x[1:] for x in p[1:])
                if st:
                    unmatched.append(f"{go_name}.{jname}")
            if mm := re.match(r'btree_map = "string, (\w+)"', attr):
                vt = mm.group(1)
                card = 3
            else:
                vt = attr.split(",")[0].split("=")[0].strip()
                card = 2 if "repeated" in attr else 0
            if vt == "message":
                tm, tn = resolve(mod, message_type(f["ty"]))
                if (tm, tn) not in messages:
                    sys.exit(f"unresolved type {f['ty']} in {mod}.{name}")
                ty = key[(tm, tn)]
                deps.append((tm, tn))
                if card == 0 and not (st and n in st["fields"]) and is_inline(st, (tm, tn)):
                    card = 4
                    jname = ""
            elif vt in ("string", "int32", "int64", "bool", "double", "bytes"):
                ty = vt
            else:
                sys.exit(f"unsupported field kind {attr} in {mod}.{name}")
            ptr = {f"{go_name}.{jname}", f"{key[k].split('.')[0]}.{go_name}.{jname}"} & pointers
            used_pointers |= ptr
            if card == 0 and vt != "message" and (required or ptr
                              or "pointer to distinguish" in " ".join(f["doc"])):
                card = 1
            fields.append([tag, jname, ty, card])
            if (mk := markers(f["doc"])) and jname:
                out_markers.setdefault(k, {})[jname] = mk
        if tm := markers(msg["doc"]):
            out_type_markers[k] = tm
        out_msgs[k] = fields
        refs[k] = deps

    # Group of each module, then the kinds.
    groups = dict(pb_groups)
    for mod, g in oa_groups.items():
        groups.setdefault(mod, g)
    by_dir = {m.rsplit("/", 1)[0]: g for m, g in groups.items()}
    object_meta = ("apimachinery/pkg/apis/meta/v1", "ObjectMeta")
    kinds = {}
    roots = [("apimachinery/pkg/apis/meta/v1", "DeleteOptions")]
    for k, msg in messages.items():
        mod, name = k
        if not re.fullmatch(r"v\d+((alpha|beta)\d+)?", mod.rsplit("/", 1)[-1]) or mod.startswith("apimachinery/"):
            continue
        if mod not in oa_modules:
            continue  # a group version no Kubernetes release k8s-openapi covers serves
        md = [f for f in msg["fields"] if f["rust"] == "metadata"]
        if not md or "message" not in md[0]["attr"] or resolve(mod, message_type(md[0]["ty"])) != object_meta:
            continue
        group_dir = mod.rsplit("/", 1)[0]
        group = groups.get(mod, by_dir.get(group_dir))
        if group is None:
            group = GROUP_FALLBACK.get(group_dir.rsplit("/", 1)[-1])
        if group is None:
            print(f"warning: no API group for {mod}; skipping its kinds", file=sys.stderr)
            continue
        version = mod.rsplit("/", 1)[-1]
        api_version = f"{group}/{version}" if group else version
        kinds[f"{api_version}/{msg['go_name'].lower()}"] = key[k]
        roots.append(k)
    kinds["meta.k8s.io/v1/deleteoptions"] = key[roots[0]]

    seen = set()
    stack = list(roots)
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        stack.extend(refs[k])

    used_special = {key[k]: special[key[k]] for k in sorted(seen, key=lambda k: key[k]) if key[k] in special}
    lines = ["{", '"kinds": ' + json.dumps(dict(sorted(kinds.items())), separators=(",", ":")) + ",",
             '"special": ' + json.dumps(used_special, separators=(",", ":")) + ",",
             '"types": ' + json.dumps({key[k]: out_type_markers[k] for k in sorted(seen, key=lambda k: key[k])
                                       if k in out_type_markers}, separators=(",", ":")) + ",",
             '"markers": {']
    mitems = sorted((key[k], out_markers[k]) for k in seen if k in out_markers)
    for idx, (name, mk) in enumerate(mitems):
        sep = "," if idx + 1 < len(mitems) else ""
        lines.append(json.dumps(name) + ":" + json.dumps(mk, separators=(",", ":")) + sep)
    lines += ["},", '"messages": {']
    items = sorted((key[k], out_msgs[k]) for k in seen)
    for idx, (name, fields) in enumerate(items):
        sep = "," if idx + 1 < len(items) else ""
        lines.append(json.dumps(name) + ":" + json.dumps(fields, separators=(",", ":")) + sep)
    lines += ["}", "}"]
    out = os.path.normpath(args.out)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {out}: {len(kinds)} kinds, {len(items)} messages, {os.path.getsize(out)} bytes", file=sys.stderr)
    if pointers - used_pointers:
        print("warning: POINTERS entries matching no field: " + " ".join(sorted(pointers - used_pointers)), file=sys.stderr)
    if os.environ.get("VERBOSE"):
        print("fields without a k8s-openapi JSON name (guessed): " + " ".join(sorted(set(unmatched))), file=sys.stderr)


if __name__ == "__main__":
    main()
