//! Resources that are, for now, generic apart from their names. Each moves into a file of its
//! own once it gains behaviour (columns, defaults, validation).

use std::sync::Arc;

use super::{info, Basic};
use crate::registry::{ResourceInfo, Strategy};
use crate::validation::NameRule;

fn basic(i: ResourceInfo) -> Arc<dyn Strategy> {
    Arc::new(Basic::new(i))
}

fn workload(i: ResourceInfo) -> Arc<dyn Strategy> {
    let mut b = Basic::new(i);
    b.generation = true;
    Arc::new(b)
}

pub fn all() -> Vec<Arc<dyn Strategy>> {
    vec![
        basic(ResourceInfo { short_names: &["sa"], ..info("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true) }),
        basic(ResourceInfo { short_names: &["pvc"], subresources: &["status"], ..info("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true) }),
        basic(ResourceInfo { short_names: &["pv"], subresources: &["status"], ..info("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false) }),
        basic(ResourceInfo { short_names: &["quota"], subresources: &["status"], ..info("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true) }),
        basic(ResourceInfo { short_names: &["limits"], ..info("", "v1", "LimitRange", "limitranges", "limitrange", true) }),
        workload(ResourceInfo { short_names: &["rc"], categories: &["all"], subresources: &["status", "scale"], ..info("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true) }),
        workload(ResourceInfo { short_names: &["sts"], categories: &["all"], subresources: &["status", "scale"], ..info("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true) }),
        workload(ResourceInfo { short_names: &["ds"], categories: &["all"], subresources: &["status"], ..info("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true) }),
        basic(info("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true)),
        workload(ResourceInfo { categories: &["all"], subresources: &["status"], ..info("batch", "v1", "Job", "jobs", "job", true) }),
        workload(ResourceInfo { short_names: &["cj"], categories: &["all"], subresources: &["status"], ..info("batch", "v1", "CronJob", "cronjobs", "cronjob", true) }),
        basic(info("coordination.k8s.io", "v1", "Lease", "leases", "lease", true)),
        basic(info("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true)),
        basic(ResourceInfo { short_names: &["ev"], ..info("events.k8s.io", "v1", "Event", "events", "event", true) }),
        workload(ResourceInfo { short_names: &["netpol"], ..info("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true) }),
        workload(ResourceInfo { short_names: &["ing"], subresources: &["status"], ..info("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true) }),
        basic(info("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false)),
        basic(ResourceInfo { name_rule: NameRule::PathSegment, ..info("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true) }),
        basic(ResourceInfo { name_rule: NameRule::PathSegment, ..info("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true) }),
        basic(ResourceInfo { name_rule: NameRule::PathSegment, ..info("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false) }),
        basic(ResourceInfo { name_rule: NameRule::PathSegment, ..info("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false) }),
        basic(ResourceInfo { short_names: &["sc"], ..info("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false) }),
        workload(ResourceInfo { short_names: &["pdb"], subresources: &["status"], ..info("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true) }),
        basic(ResourceInfo { short_names: &["pc"], ..info("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false) }),
        workload(ResourceInfo { short_names: &["hpa"], categories: &["all"], subresources: &["status"], ..info("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true) }),
    ]
}
