//! What the controller knows about each Service's allocation and each pool's usage, as the
//! status API serves it. Pure data: the controller fills it after each reconcile pass, the gRPC
//! server (`crate::status`) translates it to proto.

use std::{collections::BTreeMap, net::IpAddr};

use crate::core::{allocator::PoolStats, service::ServiceKey};

/// One Service's allocation as the controller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Addresses assigned from `pool`, primary family first.
    Allocated {
        /// The pool the addresses come from.
        pool: String,
        /// The addresses.
        ips: Vec<IpAddr>,
    },
    /// No address; `reason` is the `AllocationFailed` event's message.
    Pending {
        /// Why allocation failed.
        reason: String,
    },
}

/// The controller's whole state, as one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    /// Every Service the controller allocated for, or failed to.
    pub services: BTreeMap<ServiceKey, Allocation>,
    /// Usage of every configured pool, by name.
    pub pools: BTreeMap<String, PoolStats>,
    /// `None` while the configuration is valid; the problems (one per line) while it is not.
    pub config_error: Option<String>,
    /// Whether the controller has made its first full pass (before it, nothing is known).
    pub ready: bool,
}

impl ControllerStatus {
    /// The allocation of the Services, the pool usage and the config error from their sources:
    /// `assigned` and `failed` must not overlap (a Service is one or the other).
    pub fn build<'a>(
        assigned: impl IntoIterator<Item = (&'a ServiceKey, &'a crate::core::allocator::Assignment)>,
        failed: &BTreeMap<ServiceKey, String>,
        pools: BTreeMap<String, PoolStats>,
        config_error: Option<String>,
    ) -> Self {
        let mut services: BTreeMap<ServiceKey, Allocation> = assigned
            .into_iter()
            .map(|(key, a)| {
                (
                    key.clone(),
                    Allocation::Allocated {
                        pool: a.pool.clone(),
                        ips: a.ips.clone(),
                    },
                )
            })
            .collect();
        for (key, reason) in failed {
            services.insert(
                key.clone(),
                Allocation::Pending {
                    reason: reason.clone(),
                },
            );
        }
        ControllerStatus {
            services,
            pools,
            config_error,
            ready: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocator::Assignment;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn build_joins_assigned_and_failed_services() {
        let web = key("web");
        let assignment = Assignment {
            pool: "public".into(),
            ips: vec!["203.0.113.5".parse().unwrap()],
        };
        let failed = BTreeMap::from([(key("db"), "no available IPs".to_string())]);
        let status = ControllerStatus::build([(&web, &assignment)], &failed, BTreeMap::new(), None);
        assert!(status.ready);
        assert_eq!(
            status.services.get(&web),
            Some(&Allocation::Allocated {
                pool: "public".into(),
                ips: vec!["203.0.113.5".parse().unwrap()],
            })
        );
        assert_eq!(
            status.services.get(&key("db")),
            Some(&Allocation::Pending {
                reason: "no available IPs".into()
            })
        );
        assert_eq!(status.services.len(), 2);
    }
}
