//! The configured pools: their address spaces, which Services they accept, the automatic
//! order, and finding the pool that holds an address.

use std::{collections::BTreeMap, net::IpAddr};

use super::{AllocError, Allocator, NotSelected, space::Space};
use crate::core::{
    address::{Family, ip_to_u128},
    config::Pool,
    service::LbService,
};

/// A configured pool and its address spaces.
#[derive(Clone, Debug)]
pub(super) struct PoolState {
    pub(super) pool: Pool,
    pub(super) v4: Space,
    pub(super) v6: Space,
    /// Services holding addresses through this pool.
    pub(super) services: usize,
}

impl PoolState {
    pub(super) fn new(pool: Pool) -> PoolState {
        let v4 = Space::new(Family::V4, &pool.ranges, pool.avoid_buggy_ips);
        let v6 = Space::new(Family::V6, &pool.ranges, pool.avoid_buggy_ips);
        PoolState {
            pool,
            v4,
            v6,
            services: 0,
        }
    }

    pub(super) fn space(&self, family: Family) -> &Space {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    pub(super) fn space_mut(&mut self, family: Family) -> &mut Space {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    pub(super) fn has(&self, family: Family) -> bool {
        !self.space(family).is_empty()
    }

    /// Whether the pool's ranges contain the address (buggy or not).
    pub(super) fn contains(&self, ip: &IpAddr) -> bool {
        self.pool.contains(ip)
    }

    /// Upstream `isPoolCompatibleWithService`: a namespace restriction (names or selectors) and
    /// service selectors, each empty meaning "any".
    pub(super) fn rejects(&self, svc: &LbService) -> Option<NotSelectedKind> {
        let alloc = self.pool.allocation.as_ref()?;
        let namespace_ok = (alloc.namespaces.is_empty() && alloc.namespace_selectors.is_empty())
            || alloc.namespaces.contains(&svc.key.namespace)
            || alloc
                .namespace_selectors
                .iter()
                .any(|s| s.matches(&svc.namespace_labels));
        if !namespace_ok {
            return Some(NotSelectedKind::Namespace);
        }
        let service_ok = alloc.service_selectors.is_empty()
            || alloc
                .service_selectors
                .iter()
                .any(|s| s.matches(&svc.labels));
        (!service_ok).then_some(NotSelectedKind::ServiceLabels)
    }
}

/// [`NotSelected`] without its allocation, for filtering pools.
#[derive(Clone, Copy, Debug)]
pub(super) enum NotSelectedKind {
    Namespace,
    ServiceLabels,
}

impl Allocator {
    pub(super) fn install<'a>(&mut self, pools: impl IntoIterator<Item = &'a Pool>) {
        let by_name: BTreeMap<&str, &Pool> =
            pools.into_iter().map(|p| (p.name.as_str(), p)).collect();
        self.pools = by_name
            .into_values()
            .map(|p| PoolState::new(p.clone()))
            .collect();
        let auto = |i: &usize| self.pools[*i].pool.auto_assign;
        let mut pinned: Vec<usize> = (0..self.pools.len())
            .filter(auto)
            .filter(|&i| self.pools[i].pool.allocation.is_some())
            .collect();
        // Lower priority first, 0 (unset) after every positive one; then name (= index).
        pinned.sort_by_key(|&i| {
            let priority = self.pools[i]
                .pool
                .allocation
                .as_ref()
                .map_or(0, |a| a.priority);
            (priority == 0, priority, i)
        });
        self.open = (0..self.pools.len())
            .filter(auto)
            .filter(|&i| self.pools[i].pool.allocation.is_none())
            .collect();
        self.pinned = pinned;
        // Each pool's ranges merged, so that without overlaps between pools the spans are
        // disjoint and one binary search finds an address's pool.
        let mut spans: Vec<(Family, u128, u128, usize)> = Vec::new();
        for (i, state) in self.pools.iter().enumerate() {
            let mut own: Vec<(Family, u128, u128)> = state
                .pool
                .ranges
                .iter()
                .map(|r| (r.family(), ip_to_u128(r.start()), ip_to_u128(r.end())))
                .collect();
            own.sort_unstable();
            let start = spans.len();
            for (family, s, e) in own {
                match spans[start..].last_mut() {
                    Some(last) if last.0 == family && s <= last.2.saturating_add(1) => {
                        last.2 = last.2.max(e)
                    }
                    _ => spans.push((family, s, e, i)),
                }
            }
        }
        spans.sort_unstable();
        // Sorted by start, any overlap shows between neighbours.
        self.overlapping = spans
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[1].1 <= w[0].2);
        self.spans = spans;
    }

    pub(super) fn index(&self, name: &str) -> Option<usize> {
        self.pools
            .binary_search_by(|p| p.pool.name.as_str().cmp(name))
            .ok()
    }

    /// The first pool (by name) whose ranges contain every address. `O(log r)` when pools do not
    /// overlap.
    pub(super) fn containing(&self, ips: &[IpAddr]) -> Option<usize> {
        let first = ips.first()?;
        if self.overlapping {
            return (0..self.pools.len())
                .find(|&i| ips.iter().all(|ip| self.pools[i].contains(ip)));
        }
        let (family, v) = (Family::of(first), ip_to_u128(*first));
        let i = self
            .spans
            .partition_point(|s| (s.0, s.1) <= (family, v))
            .checked_sub(1)?;
        let (f, _, end, pool) = self.spans[i];
        (f == family && v <= end && ips.iter().all(|ip| self.pools[pool].contains(ip)))
            .then_some(pool)
    }

    pub(super) fn not_allowed(&self, pool: usize, svc: &LbService) -> Result<(), AllocError> {
        match self.pools[pool].rejects(svc) {
            None => Ok(()),
            Some(kind) => Err(AllocError::PoolNotAllowed {
                pool: self.pools[pool].pool.name.clone(),
                service: svc.key.clone(),
                reason: match kind {
                    NotSelectedKind::Namespace => NotSelected::Namespace(svc.key.namespace.clone()),
                    NotSelectedKind::ServiceLabels => NotSelected::ServiceLabels,
                },
            }),
        }
    }
}
