//! Build: what one Service should look like, from the allocator's point of view. Pure: no API
//! calls, only the allocator's in-memory state changes.
//!
//! The order of calls is the caller's job (see [`super`]): every address found in status is
//! restored with [`restore_all`] before anything new is allocated, as `metallb plan` does.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::core::v1::Service;

use crate::{
    config::service::{self, annotation::IP_ALLOCATED_FROM_POOL},
    core::{allocator::Allocator, service::ServiceKey},
};

/// What a Service's status and annotation should be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// `status.loadBalancer.ingress` addresses, primary family first.
    pub ips: Vec<IpAddr>,
    /// The `metallb.io/ip-allocated-from-pool` annotation.
    pub pool: Option<String>,
}

/// The result of converging one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Converged {
    /// Not ours and never was: leave it alone.
    Ignore,
    /// Addresses (possibly none, for a Service that is no longer ours) to publish.
    Assigned(Desired),
    /// Allocation failed; the message is the `AllocationFailed` event's (status is cleared).
    Failed(String),
}

/// What is in a Service's status and annotation now.
pub fn observed(svc: &Service) -> Desired {
    let ips = crate::config::service::ingress_ips(svc);
    let pool = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IP_ALLOCATED_FROM_POOL))
        .cloned();
    Desired { ips, pool }
}

/// Puts back every address already in the status of the Services we handle and the allocator
/// does not hold yet, before anything is allocated: a restart (or a standby taking over) never
/// moves an address. Returns how many Services were restored.
pub(crate) fn restore_all(
    allocator: &mut Allocator,
    services: &BTreeMap<ServiceKey, std::sync::Arc<Service>>,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    lb_class: Option<&str>,
) -> usize {
    let no_labels = BTreeMap::new();
    let mut restored = 0;
    for (key, svc) in services {
        if !service::is_ours(svc, lb_class) || allocator.assignment(key).is_some() {
            continue;
        }
        let ips = observed(svc).ips;
        if ips.is_empty() {
            continue;
        }
        let labels = namespaces.get(&key.namespace).unwrap_or(&no_labels);
        if let Ok(lb) = service::lb_service(svc, labels)
            && allocator.restore(&lb, &ips).is_ok()
        {
            restored += 1;
        }
    }
    restored
}

/// Converges one Service: releases what a gone or foreign Service held, allocates (or keeps)
/// addresses for one of ours. `svc` is `None` when the Service was deleted.
pub(crate) fn converge(
    allocator: &mut Allocator,
    key: &ServiceKey,
    svc: Option<&Service>,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    lb_class: Option<&str>,
) -> Converged {
    let Some(svc) = svc else {
        allocator.release(key);
        return Converged::Ignore;
    };
    if !service::is_ours(svc, lb_class) {
        allocator.release(key);
        // Clear what we wrote when the Service stops being ours (type or class changed).
        return if observed(svc).pool.is_some() {
            Converged::Assigned(Desired::default())
        } else {
            Converged::Ignore
        };
    }
    let no_labels = BTreeMap::new();
    let labels = namespaces.get(&key.namespace).unwrap_or(&no_labels);
    let lb = match service::lb_service(svc, labels) {
        Ok(lb) => lb,
        Err(e) => {
            allocator.release(key);
            return Converged::Failed(format!("Failed to allocate IP for \"{key}\": {e}"));
        }
    };
    match allocator.allocate(&lb) {
        Ok(a) => Converged::Assigned(Desired {
            ips: a.ips.clone(),
            pool: Some(a.pool.clone()),
        }),
        Err(e) => {
            allocator.release(key);
            Converged::Failed(format!("Failed to allocate IP for \"{key}\": {e}"))
        }
    }
}
