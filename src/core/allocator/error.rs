//! The allocator's public results and errors: assignments, pool usage, and why an allocation
//! failed, worded as MetalLB's `AllocationFailed` events.

use std::net::IpAddr;

use serde::Serialize;

use crate::core::{
    address::Family,
    service::{IpFamilyPolicy, Port, ServiceKey},
};

// === Public types ===

/// The addresses given to one Service and the pool they come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// Pool name, for the `metallb.io/ip-allocated-from-pool` annotation.
    pub pool: String,
    /// One address, or two of different families; primary family first, as
    /// `status.loadBalancer.ingress` lists them.
    pub ips: Vec<IpAddr>,
}

/// Address usage of one family of a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FamilyStats {
    /// Addresses the pool can hand out (without `.0`/`.255` under `avoidBuggyIPs`); saturates at
    /// `u128::MAX` for `::/0`.
    pub total: u128,
    /// Addresses held by at least one Service; a shared address counts once.
    pub assigned: u128,
    /// Addresses nobody holds: `total - assigned`.
    pub available: u128,
}

impl FamilyStats {
    /// [`FamilyStats::total`] capped at `i64::MAX`, as upstream reports it.
    pub fn total_i64(&self) -> i64 {
        cap_i64(self.total)
    }

    /// [`FamilyStats::assigned`] capped at `i64::MAX`.
    pub fn assigned_i64(&self) -> i64 {
        cap_i64(self.assigned)
    }

    /// [`FamilyStats::available`] capped at `i64::MAX`, for `IPAddressPool` status.
    pub fn available_i64(&self) -> i64 {
        cap_i64(self.available)
    }
}

/// Address usage of a pool, per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// IPv4 addresses.
    pub ipv4: FamilyStats,
    /// IPv6 addresses.
    pub ipv6: FamilyStats,
    /// Services holding at least one address of the pool.
    pub services: usize,
}

/// A counter as Kubernetes status and Prometheus want it: upstream caps pool sizes at `i64::MAX`.
pub fn cap_i64(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Why a Service did not get addresses. Messages follow the upstream wording users see in
/// `AllocationFailed` events (`Failed to allocate IP for "ns/name": <message>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// A requested (or restored) address lies in no pool.
    #[error("\"{ip}\" is not allowed in config")]
    NotAllowed {
        /// The address.
        ip: IpAddr,
    },
    /// More than two addresses requested.
    #[error("{count} addresses requested, but at most 2 (one per family) are allowed")]
    TooManyIps {
        /// How many were requested.
        count: usize,
    },
    /// Two requested addresses of one family.
    #[error(
        "requested addresses \"{first}\" and \"{second}\" are both {family}, but at most one \
         per family is allowed"
    )]
    SameFamily {
        /// First address.
        first: IpAddr,
        /// Second address.
        second: IpAddr,
        /// Their family.
        family: Family,
    },
    /// A requested address of a family the Service does not have.
    #[error(
        "requested address \"{ip}\" is {family}, but the service is {policy:?} {}",
        families_text(.wanted)
    )]
    FamilyMismatch {
        /// The address.
        ip: IpAddr,
        /// Its family.
        family: Family,
        /// The Service's `ipFamilyPolicy`.
        policy: IpFamilyPolicy,
        /// The Service's families, primary first.
        wanted: Vec<Family>,
    },
    /// A RequireDualStack Service requested an address of one family only.
    #[error(
        "requested addresses do not match the service's IP family: the service is {policy:?} and \
         needs one requested address per family, but no {family} address was requested"
    )]
    MissingFamily {
        /// The family without an address.
        family: Family,
        /// The Service's `ipFamilyPolicy`.
        policy: IpFamilyPolicy,
    },
    /// A RequireDualStack Service whose cluster IPs have one family only.
    #[error(
        "the service is RequireDualStack but its cluster IPs are {family} only: it can not get \
         an address of each family"
    )]
    SingleFamilyCluster {
        /// The one family of its cluster IPs.
        family: Family,
    },
    /// A requested address outside the pool named by the `address-pool` annotation.
    #[error(
        "requested address \"{ip}\" is in pool \"{actual}\", not in the requested pool \"{requested}\""
    )]
    NotInRequestedPool {
        /// The address.
        ip: IpAddr,
        /// The pool named by the annotation.
        requested: String,
        /// The pool the address belongs to.
        actual: String,
    },
    /// Two requested addresses from different pools.
    #[error(
        "requested addresses \"{first}\" (pool \"{first_pool}\") and \"{second}\" (pool \
         \"{second_pool}\") must come from the same pool"
    )]
    DifferentPools {
        /// First address.
        first: IpAddr,
        /// Its pool.
        first_pool: String,
        /// Second address.
        second: IpAddr,
        /// Its pool.
        second_pool: String,
    },
    /// The pool's `serviceAllocation` does not select the Service.
    #[error("pool \"{pool}\" does not serve service \"{service}\": {reason}")]
    PoolNotAllowed {
        /// The pool.
        pool: String,
        /// The Service.
        service: ServiceKey,
        /// What did not match.
        reason: NotSelected,
    },
    /// A requested `.0`/`.255` address in a pool with `avoidBuggyIPs`.
    #[error(
        "requested address \"{ip}\" ends in .0 or .255, which pool \"{pool}\" avoids \
         (avoidBuggyIPs)"
    )]
    BuggyIp {
        /// The address.
        ip: IpAddr,
        /// The pool.
        pool: String,
    },
    /// A requested address held by a Service it may not be shared with.
    #[error("address \"{ip}\" is already used by service \"{other}\": {reason}")]
    Conflict {
        /// The address.
        ip: IpAddr,
        /// The Service holding it.
        other: ServiceKey,
        /// Why they may not share it.
        reason: SharingConflict,
    },
    /// Every pool the Service may use automatically is full.
    #[error("no available IPs")]
    NoAvailableIps,
    /// No pool the Service may use automatically has the families it needs.
    #[error(
        "no available IPs: no pool this service may use automatically has {} addresses{}",
        families_text(.families),
        dual_stack_note(*.policy, .families)
    )]
    NoPoolWithFamilies {
        /// The families needed from one pool.
        families: Vec<Family>,
        /// The Service's `ipFamilyPolicy`.
        policy: IpFamilyPolicy,
    },
    /// The pool named by the `address-pool` annotation is full.
    #[error("no available IPs in pool \"{pool}\"{}", exhausted_family_note(.family))]
    PoolExhausted {
        /// The pool.
        pool: String,
        /// For a dual-stack Service, the family that ran out.
        family: Option<Family>,
    },
    /// The pool named by the `address-pool` annotation lacks a family the Service needs.
    #[error(
        "no available IPs in pool \"{pool}\": it has no {family} addresses, which the {policy:?} \
         service needs"
    )]
    PoolLacksFamily {
        /// The pool.
        pool: String,
        /// The missing family.
        family: Family,
        /// The Service's `ipFamilyPolicy`.
        policy: IpFamilyPolicy,
    },
    /// [`Allocator::restore`] called without addresses.
    #[error("no addresses to restore")]
    NothingToRestore,
}

/// Why a pool's `serviceAllocation` does not select a Service.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotSelected {
    /// Neither the namespace list nor the namespace selectors select the namespace.
    #[error("its serviceAllocation does not select namespace \"{0}\"")]
    Namespace(String),
    /// No service selector matches the Service labels.
    #[error("its serviceAllocation service selectors do not match the service labels")]
    ServiceLabels,
}

/// Why two Services may not share an address (upstream `checkSharing`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SharingConflict {
    /// The Service holding the address has no sharing key.
    #[error("it does not allow sharing (no allow-shared-ip key)")]
    NotShared,
    /// The Service asking has no sharing key.
    #[error("this service has no allow-shared-ip key")]
    NoSharingKey,
    /// The keys differ.
    #[error("different sharing key (\"{ours}\" here, \"{theirs}\" there)")]
    DifferentKey {
        /// The asking Service's key.
        ours: String,
        /// The holder's key.
        theirs: String,
    },
    /// Both use a (protocol, port) pair.
    #[error("ports overlap on {0}")]
    PortsOverlap(Port),
    /// Backend keys differ (the pod selectors, with `externalTrafficPolicy: Local`).
    #[error(
        "different backends: with externalTrafficPolicy Local both services must select the same \
         pods"
    )]
    DifferentBackends,
}

fn families_text(families: &[Family]) -> String {
    match families {
        [one] => one.to_string(),
        [a, b] => format!("both {a} and {b}"),
        _ => "no".to_string(),
    }
}

fn dual_stack_note(policy: IpFamilyPolicy, families: &[Family]) -> &'static str {
    if families.len() == 2 && policy == IpFamilyPolicy::RequireDualStack {
        " (RequireDualStack takes both from one pool)"
    } else {
        ""
    }
}

fn exhausted_family_note(family: &Option<Family>) -> String {
    family
        .map(|f| format!(": no free {f} address"))
        .unwrap_or_default()
}
