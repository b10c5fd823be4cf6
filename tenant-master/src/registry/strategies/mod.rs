//! One file per built-in resource. Each defines a [`ResourceInfo`] and a [`Strategy`]; resources
//! with nothing special beyond their table columns use [`Basic`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Column, ResourceInfo, Strategy};
use crate::validation::NameRule;

pub mod common;
pub mod configmaps;
pub mod controllerrevisions;
pub mod cronjobs;
pub mod daemonsets;
pub mod deployments;
pub mod endpoints;
pub mod endpointslices;
pub mod events;
pub mod eventsv1;
pub mod horizontalpodautoscalers;
pub mod ingressclasses;
pub mod ingresses;
pub mod jobs;
pub mod leases;
pub mod limitranges;
pub mod namespaces;
pub mod networkpolicies;
pub mod nodes;
pub mod persistentvolumeclaims;
pub mod persistentvolumes;
pub mod poddisruptionbudgets;
pub mod pods;
pub mod podspec;
pub mod priorityclasses;
pub mod rbac;
pub mod replicasets;
pub mod replicationcontrollers;
pub mod resourcequotas;
pub mod secrets;
pub mod serviceaccounts;
pub mod services;
pub mod statefulsets;
pub mod storageclasses;
pub mod workload;

/// Every built-in resource, in discovery order.
pub fn all() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(namespaces::Namespaces),
        Arc::new(pods::Pods),
        Arc::new(services::Services),
        Arc::new(endpoints::Endpoints),
        Arc::new(configmaps::ConfigMaps),
        Arc::new(secrets::Secrets),
        Arc::new(events::Events),
        Arc::new(nodes::Nodes),
        Arc::new(deployments::Deployments),
        Arc::new(replicasets::ReplicaSets),
        Arc::new(serviceaccounts::ServiceAccounts),
        Arc::new(persistentvolumeclaims::PersistentVolumeClaims),
        Arc::new(persistentvolumes::PersistentVolumes),
        Arc::new(resourcequotas::ResourceQuotas),
        Arc::new(limitranges::LimitRanges),
        Arc::new(replicationcontrollers::ReplicationControllers),
        Arc::new(statefulsets::StatefulSets),
        Arc::new(daemonsets::DaemonSets),
        Arc::new(controllerrevisions::ControllerRevisions),
        Arc::new(jobs::Jobs),
        Arc::new(cronjobs::CronJobs),
        Arc::new(leases::Leases),
        Arc::new(endpointslices::EndpointSlices),
        Arc::new(eventsv1::EventsV1),
        Arc::new(networkpolicies::NetworkPolicies),
        Arc::new(ingresses::Ingresses),
        Arc::new(ingressclasses::IngressClasses),
        Arc::new(rbac::Roles),
        Arc::new(rbac::RoleBindings),
        Arc::new(rbac::ClusterRoles),
        Arc::new(rbac::ClusterRoleBindings),
        Arc::new(storageclasses::StorageClasses),
        Arc::new(poddisruptionbudgets::PodDisruptionBudgets),
        Arc::new(priorityclasses::PriorityClasses),
        Arc::new(horizontalpodautoscalers::HorizontalPodAutoscalers),
        Arc::new(crate::apiextensions::definition::CustomResourceDefinitions),
    ]
}

/// Builds a [`ResourceInfo`] with the common defaults (RFC 1123 subdomain names).
pub const fn info(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: std::borrow::Cow::Borrowed(group),
        version: std::borrow::Cow::Borrowed(version),
        kind: std::borrow::Cow::Borrowed(kind),
        plural: std::borrow::Cow::Borrowed(plural),
        singular: std::borrow::Cow::Borrowed(singular),
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        name_rule: NameRule::Subdomain,
    }
}

/// Cells of one row, computed from the object.
pub type RowFn = fn(&Value) -> Vec<Value>;

/// A resource with generic behaviour and its own table columns.
pub struct Basic {
    pub info: ResourceInfo,
    pub columns: fn() -> Vec<Column>,
    pub row: RowFn,
    pub generation: bool,
    pub fields: &'static [&'static str],
    pub create_on_update: bool,
}

impl Basic {
    pub fn new(info: ResourceInfo) -> Basic {
        Basic {
            info,
            columns: || vec![Column::name(), Column::age()],
            row: |o| vec![json!(crate::meta::name(o)), json!(crate::api::table::age(o))],
            generation: false,
            fields: &[],
            create_on_update: false,
        }
    }
}

impl Strategy for Basic {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn columns(&self) -> Vec<Column> {
        (self.columns)()
    }
    fn row(&self, obj: &Value) -> Vec<Value> {
        (self.row)(obj)
    }
    fn tracks_generation(&self) -> bool {
        self.generation
    }
    fn field_names(&self) -> &'static [&'static str] {
        self.fields
    }
    fn fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        self.fields.iter().map(|f| (*f, common::field_string(obj, f))).collect()
    }
    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }
}
