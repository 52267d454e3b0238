//! The IP allocator: which addresses a LoadBalancer Service gets, from which pool, and which
//! Services may share an address.
//!
//! It follows upstream MetalLB (`internal/allocator`, `controller/service.go`) wherever users can
//! see it: requested addresses, the `address-pool` annotation (falling back to automatic pools when
//! the named pool does not exist), pools pinned with `serviceAllocation` tried by priority, the
//! `allow-shared-ip` rules, dual-stack policies, `avoidBuggyIPs`, the lowest free address first.
//! It differs where upstream is random, slow or loses addresses:
//!
//! - **Deterministic.** Pools of equal priority are tried by name, never in map order; the same
//!   calls in the same order always give the same addresses.
//! - **Restart-safe.** [`Allocator::restore`] puts back the addresses found in Service status
//!   before anything new is allocated, [`Allocator::allocate`] keeps a valid assignment (and,
//!   for a Service the allocator has not seen yet, the addresses in its status), and
//!   [`Allocator::set_pools`] keeps every assignment the new configuration still allows.
//! - **Fast.** No first-fit scan: each pool family keeps its free addresses as runs in a
//!   `BTreeMap`, so allocating, claiming a requested address and releasing are `O(log n)`, and
//!   memory is `O(allocations + ranges)` whatever the pool size (a `/64` is never materialised).
//!   Only B-trees and boxed slots grow with `n`, so no call pays for a rehash of everything.
//!
//! ```text
//!  Allocator
//!  ├── pools: Vec<PoolState>            sorted by name; rebuilt by set_pools
//!  │     └── v4, v6: Space
//!  │           ├── pieces               the ranges as written, overlaps removed, numbered by
//!  │           │                        "ordinals" 0..total in written order (O(ranges))
//!  │           └── free: BTreeMap       start → end of each run of free ordinals
//!  ├── pinned / open: Vec<usize>        automatic order: pinned pools by (priority, name),
//!  │                                    then pools without serviceAllocation by name
//!  ├── slots: Vec<Option<Box<Held>>>    each Service's assignment and the Service it was made
//!  │                                    for; addresses name their holders by slot
//!  ├── services: BTreeMap<u64, Bucket>  hash of the Service key → slot(s)
//!  ├── used: BTreeMap<IpAddr, IpUse>    held addresses: the sole holder, or the sharers with
//!  │                                    their key, backend key and (protocol, port) → holder
//!  └── groups: BTreeMap<GroupKey, Group>
//!                                       (pool, family, sharing key, backend key) → shared
//!                                       addresses, for colocation
//! ```
//!
//! One file per part, all `impl Allocator` over the state above: `pool.rs` (pools, automatic
//! order, the pool of an address), `slots.rs` (held Services and their key index),
//! `sharing.rs` (holders of an address, colocation groups, `checkSharing`), `claim.rs` (given
//! addresses: requests, restores, keeps), `fresh.rs` (new addresses), `hold.rs` (recording and
//! removing assignments), `invariants.rs` (the consistency check), `space.rs` (one pool
//! family's addresses), `error.rs`.
//!
//! With `avoidBuggyIPs` an IPv4 space numbers only the addresses that do not end in `.0` or
//! `.255` (254 per /24, computed arithmetically), so buggy addresses are neither stored nor
//! skipped one by one.

use std::{collections::BTreeMap, net::IpAddr};

use super::{
    address::Family,
    config::Pool,
    service::{IpFamilyPolicy, LbService, ServiceKey},
};

mod claim;
mod error;
mod fresh;
mod hold;
mod invariants;
mod pool;
mod sharing;
mod slots;
mod space;

use claim::{Mode, requested_pool};
pub use error::*;
use pool::PoolState;
use sharing::{Group, GroupKey, Holders, IpUse};
use slots::{Bucket, Held, Slot};

// === impl Allocator ===

/// The IP allocator of the controller: pools, every Service's addresses, and who shares what.
///
/// All methods are deterministic. `n` below is the number of held addresses; `P` the number of
/// pools and `r` the number of ranges, both configuration-sized.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    /// Pools by name.
    pools: Vec<PoolState>,
    /// autoAssign pools with a serviceAllocation, by (priority, 0 last; name).
    pinned: Vec<usize>,
    /// autoAssign pools without serviceAllocation, by name.
    open: Vec<usize>,
    /// Whether two pools share an address (the config layer should reject it; we stay correct).
    overlapping: bool,
    /// Every pool's ranges, merged per pool, sorted by (family, start): finds an address's pool.
    spans: Vec<(Family, u128, u128, usize)>,
    /// Held Services by a fixed hash of their key: integer compares instead of string compares,
    /// and, unlike a hash table, no pause to rehash everything as it grows. Only looked up:
    /// `set_pools` and `assignments` sort by key.
    services: BTreeMap<u64, Bucket>,
    /// Assignments, indexed by the slots addresses refer to; boxed so that growing the vector
    /// moves pointers, not Services.
    slots: Vec<Option<Box<Held>>>,
    /// Empty slots, reused last-freed first.
    free_slots: Vec<Slot>,
    /// Held addresses (a B-tree for the same reason as `services`).
    used: BTreeMap<IpAddr, IpUse>,
    groups: BTreeMap<GroupKey, Group>,
}

impl Allocator {
    /// Builds an allocator over the configured pools (`config.pools.values()`). Pools are known by
    /// name; of two pools with one name the last wins.
    pub fn new<'a>(pools: impl IntoIterator<Item = &'a Pool>) -> Self {
        let mut allocator = Allocator::default();
        allocator.install(pools);
        allocator
    }

    /// Replaces the pools after a configuration change. Every assignment the new pools still
    /// allow is kept as it is (no address moves, even when a lower one became free; the pool name
    /// follows the address if a pool was renamed). The others are released and their keys
    /// returned, sorted, for the controller to clear and re-allocate; a Service whose
    /// `address-pool` annotation names a pool that now exists but does not hold its addresses is
    /// among them. `O(n log n)`.
    pub fn set_pools<'a>(&mut self, pools: impl IntoIterator<Item = &'a Pool>) -> Vec<ServiceKey> {
        let mut held: Vec<Box<Held>> = std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect();
        // Key order, so the outcome never depends on the order of earlier calls.
        held.sort_unstable_by(|a, b| a.svc.key.cmp(&b.svc.key));
        self.services.clear();
        self.free_slots.clear();
        self.used.clear();
        self.groups.clear();
        self.install(pools);
        let mut lost = Vec::new();
        for h in held {
            let families = h.svc.wanted_families();
            if self
                .keep(
                    &h.svc,
                    &h.assignment.ips,
                    Some(&h.assignment.pool),
                    &families,
                )
                .is_err()
            {
                lost.push(h.svc.key);
            }
        }
        lost
    }

    /// Puts back an assignment found in Service status, before anything new is allocated, so
    /// addresses survive controller restarts. Idempotent: it replaces whatever the Service held.
    ///
    /// The addresses go through the rules of a request: they must lie in one pool that serves
    /// the Service, not be buggy in an avoidBuggyIPs pool, be of the Service's families, and be
    /// free or shareable. Unlike a request, one address of a dual-stack Service is accepted
    /// ([`Allocator::allocate`] then adds the other family) and the `address-pool` annotation
    /// only picks among overlapping pools ([`Allocator::allocate`] re-allocates when it
    /// changed). On error the Service holds nothing. `O(log n)`.
    pub fn restore(&mut self, svc: &LbService, ips: &[IpAddr]) -> Result<Assignment, AllocError> {
        self.unhold(&svc.key);
        if ips.is_empty() {
            return Err(AllocError::NothingToRestore);
        }
        self.claim(
            svc,
            ips,
            Mode::Restore,
            requested_pool(svc),
            &svc.wanted_families(),
        )
    }

    /// Allocates for a Service, or confirms what it holds.
    ///
    /// - With requested addresses (`loadBalancerIP(s)`): exactly those, or an error.
    /// - Otherwise a held assignment that is still allowed and matches the `address-pool`
    ///   annotation is kept (idempotent); for a Service never seen, the addresses in its status
    ///   are kept the same way. Families the Service no longer has are dropped, and a missing
    ///   family is added from the same pool (PreferDualStack keeps one family if that fails).
    /// - Otherwise: the pool named by `address-pool` if it exists (even with autoAssign off),
    ///   else the pinned pools selecting the Service by priority then name, then the pools
    ///   without serviceAllocation by name. In a pool: an address already used by compatible
    ///   sharers of the Service's sharing key, else the lowest free address, ranges in written
    ///   order.
    ///
    /// On error the Service holds nothing (as upstream clears its status). `O(P + log n)`, plus
    /// a scan of the addresses shared under the Service's own sharing key when it has one.
    pub fn allocate(&mut self, svc: &LbService) -> Result<Assignment, AllocError> {
        if svc.family_policy == IpFamilyPolicy::RequireDualStack
            && let [family] = svc.families.as_slice()
        {
            self.unhold(&svc.key);
            return Err(AllocError::SingleFamilyCluster { family: *family });
        }
        let families = svc.wanted_families();
        match self.unchanged(svc, &families) {
            Some(assignment) => Ok(assignment),
            None => self.reallocate(svc, &families),
        }
    }

    /// [`Allocator::allocate`] without the shortcut for unchanged Services.
    fn reallocate(
        &mut self,
        svc: &LbService,
        families: &(Vec<Family>, bool),
    ) -> Result<Assignment, AllocError> {
        let previous = self.unhold(&svc.key);
        if !svc.requested_ips.is_empty() {
            let requested = &svc.requested_ips;
            return self.claim(svc, requested, Mode::Request, requested_pool(svc), families);
        }
        let (ips, hint) = match previous {
            Some(held) => (held.assignment.ips, Some(held.assignment.pool)),
            None => (svc.current_ips.clone(), None),
        };
        if !ips.is_empty()
            && let Some(assignment) = self.try_keep(svc, &ips, hint.as_deref(), families)
        {
            return Ok(assignment);
        }
        self.fresh(svc, families)
    }

    /// The steady state of a controller resync: the Service holds every family it wants and
    /// nothing about it changed (its status aside), so the slow path would re-take the same
    /// addresses (the pools have not changed either: `set_pools` re-checked every assignment).
    fn unchanged(&self, svc: &LbService, families: &(Vec<Family>, bool)) -> Option<Assignment> {
        let held = self.held(self.find(&svc.key)?);
        // Exhaustive, so that a new field must be considered here.
        let LbService {
            key: _,
            labels,
            namespace_labels,
            requested_ips,
            requested_pool: pool_annotation,
            sharing_key: share_annotation,
            backend_key,
            ports,
            families: ip_families,
            family_policy,
            traffic_policy_local,
            current_ips: _,
        } = &held.svc;
        let same = *labels == svc.labels
            && *namespace_labels == svc.namespace_labels
            && *requested_ips == svc.requested_ips
            && *pool_annotation == svc.requested_pool
            && *share_annotation == svc.sharing_key
            && *backend_key == svc.backend_key
            && *ports == svc.ports
            && *ip_families == svc.families
            && *family_policy == svc.family_policy
            && *traffic_policy_local == svc.traffic_policy_local
            && held.assignment.ips.len() == families.0.len()
            // A restored assignment may not match the request yet.
            && (svc.requested_ips.is_empty()
                || (svc.requested_ips.len() == held.assignment.ips.len()
                    && svc.requested_ips.iter().all(|ip| held.assignment.ips.contains(ip))))
            && requested_pool(svc)
                .filter(|name| self.index(name).is_some())
                .is_none_or(|name| name == held.assignment.pool);
        let fast = same.then(|| held.assignment.clone());
        #[cfg(debug_assertions)]
        if let Some(fast) = &fast
            && self.slots.len() - self.free_slots.len() <= 64
        {
            // Small allocators (tests) check the shortcut against the full path.
            let slow = self.clone().reallocate(svc, families);
            debug_assert_eq!(
                slow.as_ref(),
                Ok(fast),
                "the shortcut differs from the full path"
            );
        }
        fast
    }

    /// Releases everything a Service holds (deleted, or no longer a LoadBalancer); an address
    /// stays in use while other sharers hold it. Returns what was released. `O(log n)`.
    pub fn release(&mut self, key: &ServiceKey) -> Option<Assignment> {
        self.unhold(key).map(|held| held.assignment)
    }

    /// The current assignment of a Service.
    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.find(key).map(|slot| &self.held(slot).assignment)
    }

    /// Every assignment, by Service key.
    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, &Assignment)> {
        let mut all: Vec<(&ServiceKey, &Assignment)> = self
            .slots
            .iter()
            .flatten()
            .map(|held| (&held.svc.key, &held.assignment))
            .collect();
        all.sort_unstable_by_key(|(key, _)| *key);
        all.into_iter()
    }

    /// The Services holding an address, sorted.
    pub fn holders(&self, ip: &IpAddr) -> impl Iterator<Item = &ServiceKey> {
        let mut keys: Vec<&ServiceKey> = match self.used.get(ip).map(|u| &u.holders) {
            None => Vec::new(),
            Some(Holders::Sole(slot)) => vec![self.key(*slot)],
            Some(Holders::Shared(shared)) => shared.holders.iter().map(|&s| self.key(s)).collect(),
        };
        keys.sort();
        keys.into_iter()
    }

    /// Usage of a pool, per family; `None` for an unknown pool. `O(log P)`.
    pub fn pool_stats(&self, pool: &str) -> Option<PoolStats> {
        let state = &self.pools[self.index(pool)?];
        Some(PoolStats {
            ipv4: state.v4.stats(),
            ipv6: state.v6.stats(),
            services: state.services,
        })
    }
}

#[cfg(test)]
mod tests;
