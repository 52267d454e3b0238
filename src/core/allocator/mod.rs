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
//! With `avoidBuggyIPs` an IPv4 space numbers only the addresses that do not end in `.0` or
//! `.255` (254 per /24, computed arithmetically), so buggy addresses are neither stored nor
//! skipped one by one.

use std::{
    collections::{BTreeMap, btree_map, btree_map::Entry},
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use super::{
    address::{Family, ip_to_u128, is_buggy_ip},
    config::Pool,
    service::{IpFamilyPolicy, LbService, Port, ServiceKey},
};

mod error;
mod space;

pub use error::*;
use space::Space;

// === Internal state ===

/// A configured pool and its address spaces.
#[derive(Clone, Debug)]
struct PoolState {
    pool: Pool,
    v4: Space,
    v6: Space,
    /// Services holding addresses through this pool.
    services: usize,
}

impl PoolState {
    fn new(pool: Pool) -> PoolState {
        let v4 = Space::new(Family::V4, &pool.ranges, pool.avoid_buggy_ips);
        let v6 = Space::new(Family::V6, &pool.ranges, pool.avoid_buggy_ips);
        PoolState {
            pool,
            v4,
            v6,
            services: 0,
        }
    }

    fn space(&self, family: Family) -> &Space {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn space_mut(&mut self, family: Family) -> &mut Space {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    fn has(&self, family: Family) -> bool {
        !self.space(family).is_empty()
    }

    /// Whether the pool's ranges contain the address (buggy or not).
    fn contains(&self, ip: &IpAddr) -> bool {
        self.pool.contains(ip)
    }

    /// Upstream `isPoolCompatibleWithService`: a namespace restriction (names or selectors) and
    /// service selectors, each empty meaning "any".
    fn rejects(&self, svc: &LbService) -> Option<NotSelectedKind> {
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
enum NotSelectedKind {
    Namespace,
    ServiceLabels,
}

/// Index of a held Service in [`Allocator::slots`]; what addresses record as their holders.
type Slot = usize;

/// The held Services whose keys share a hash: nearly always one.
#[derive(Clone, Debug)]
enum Bucket {
    One(Slot),
    Many(Vec<Slot>),
}

impl Bucket {
    fn slots(&self) -> &[Slot] {
        match self {
            Bucket::One(slot) => std::slice::from_ref(slot),
            Bucket::Many(slots) => slots,
        }
    }
}

/// A fixed (unkeyed SipHash) hash of a Service key, for [`Allocator::services`]. Collisions only
/// cost a string compare; order never depends on it.
fn key_hash(key: &ServiceKey) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // Unit tests fold hashes to 4 values, so that shared buckets are exercised everywhere.
    if cfg!(test) {
        hasher.finish() & 3
    } else {
        hasher.finish()
    }
}

/// Who holds one address.
#[derive(Clone, Debug)]
struct IpUse {
    /// Pool the address was taken from.
    pool: usize,
    /// Its ordinal in that pool.
    ordinal: u128,
    holders: Holders,
}

/// The holders of an address.
#[derive(Clone, Debug)]
enum Holders {
    /// Taken without a sharing key: nobody may join, so its ports do not matter (and cost no
    /// allocation, which keeps the common case cheap).
    Sole(Slot),
    /// Taken with a sharing key.
    Shared(Box<Shared>),
}

/// The holders of a shareable address; they all agree on the keys and never overlap on ports.
#[derive(Clone, Debug)]
struct Shared {
    /// Sharing key of every holder.
    key: String,
    /// Backend key of every holder.
    backend: String,
    holders: Vec<Slot>,
    /// Which holder uses each (protocol, port).
    ports: BTreeMap<Port, Slot>,
}

impl Shared {
    /// The colocation group this address belongs to.
    fn group_key(&self, pool: usize, family: Family) -> GroupKey {
        GroupKey {
            pool,
            family,
            sharing_key: self.key.clone(),
            backend_key: self.backend.clone(),
        }
    }
}

/// Addresses of one pool family shared under one (sharing key, backend key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    pool: usize,
    family: Family,
    sharing_key: String,
    backend_key: String,
}

impl GroupKey {
    /// The group a Service with sharing key `key` joins in this pool family.
    fn of_service(pool: usize, family: Family, key: &str, svc: &LbService) -> GroupKey {
        GroupKey {
            pool,
            family,
            sharing_key: key.to_string(),
            backend_key: svc.backend_key.clone(),
        }
    }
}

/// The addresses of a [`GroupKey`], by ordinal, and how many of them use each port. When all of
/// them use one of the asking Service's ports, colocation is impossible without scanning them.
#[derive(Clone, Debug, Default)]
struct Group {
    ips: BTreeMap<u128, IpAddr>,
    port_ips: BTreeMap<Port, usize>,
}

/// A Service's assignment and the Service as it was when it got it (labels for
/// `serviceAllocation`, ports and keys for sharing).
#[derive(Clone, Debug)]
struct Held {
    svc: LbService,
    assignment: Assignment,
    pool: usize,
}

/// How strictly [`Allocator::claim`] checks the addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Requested addresses: every family of a RequireDualStack Service must be present and the
    /// `address-pool` annotation, when it names an existing pool, must contain them.
    Request,
    /// Addresses already given out: a subset of the families is fine (allocation completes it)
    /// and the annotation only breaks ties.
    Restore,
}

/// Why a pool could not serve a Service automatically.
#[derive(Clone, Copy, Debug)]
enum Miss {
    /// It has no addresses of a family the Service needs.
    Lacks(Family),
    /// It has, but they are all taken.
    Exhausted(Family),
}

fn sharing_key(svc: &LbService) -> Option<&str> {
    svc.sharing_key.as_deref().filter(|k| !k.is_empty())
}

fn requested_pool(svc: &LbService) -> Option<&str> {
    svc.requested_pool.as_deref().filter(|p| !p.is_empty())
}

/// The Service in an occupied slot.
fn held_in(slots: &[Option<Box<Held>>], slot: Slot) -> &Held {
    slots[slot]
        .as_deref()
        .expect("invariant: a listed slot is occupied")
}

/// The addresses, one per wanted family, primary first.
fn in_family_order(wanted: &[Family], ips: &[IpAddr]) -> Vec<IpAddr> {
    wanted
        .iter()
        .filter_map(|f| ips.iter().copied().find(|ip| Family::of(ip) == *f))
        .collect()
}

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

    /// Cross-checks the internal indexes (free runs, address holders, sharing groups, slots,
    /// counters) against each other and describes the first inconsistency. For tests and
    /// debugging: `O(n log n)`.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut in_use: BTreeMap<(usize, Family), u128> = BTreeMap::new();
        let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
        for (ip, u) in &self.used {
            let family = Family::of(ip);
            let space = self.pools[u.pool].space(family);
            if space.ordinal(*ip) != Some(u.ordinal) || space.address(u.ordinal) != *ip {
                return Err(format!("{ip}: wrong ordinal {}", u.ordinal));
            }
            let free = space.free.range(..=u.ordinal).next_back();
            if free.is_some_and(|(_, &end)| end >= u.ordinal) {
                return Err(format!("{ip} is held and free"));
            }
            *in_use.entry((u.pool, family)).or_default() += 1;
            let (holders, shared) = match &u.holders {
                Holders::Sole(slot) => (vec![*slot], None),
                Holders::Shared(shared) => (shared.holders.clone(), Some(shared)),
            };
            if holders.is_empty() {
                return Err(format!("{ip} is used by nobody"));
            }
            for slot in holders {
                let held = self.slots.get(slot).and_then(Option::as_ref);
                let held = held.ok_or(format!("{ip}: slot {slot} is empty"))?;
                let key = &held.svc.key;
                if self.find(key) != Some(slot) || !held.assignment.ips.contains(ip) {
                    return Err(format!("{ip}: {key} does not hold it"));
                }
                let consistent = match shared {
                    None => sharing_key(&held.svc).is_none(),
                    Some(shared) => {
                        sharing_key(&held.svc) == Some(shared.key.as_str())
                            && held.svc.backend_key == shared.backend
                            && held
                                .svc
                                .ports
                                .iter()
                                .all(|p| shared.ports.get(p) == Some(&slot))
                    }
                };
                if !consistent {
                    return Err(format!("{ip}: {key} does not match its co-holders"));
                }
            }
            if let Some(shared) = shared {
                if shared.ports.values().any(|h| !shared.holders.contains(h)) {
                    return Err(format!("{ip}: a port belongs to no holder"));
                }
                let group_key = shared.group_key(u.pool, family);
                let group = groups.entry(group_key).or_default();
                group.ips.insert(u.ordinal, *ip);
                for port in shared.ports.keys() {
                    *group.port_ips.entry(*port).or_default() += 1;
                }
            }
        }
        let group_view = |g: &BTreeMap<GroupKey, Group>| {
            g.iter()
                .map(|(k, v)| (k.clone(), v.ips.clone(), v.port_ips.clone()))
                .collect::<Vec<_>>()
        };
        if group_view(&groups) != group_view(&self.groups) {
            return Err("sharing groups do not match the addresses".to_string());
        }
        let occupied = self.slots.iter().filter(|s| s.is_some()).count();
        let indexed: usize = self.services.values().map(|b| b.slots().len()).sum();
        if occupied != indexed
            || occupied + self.free_slots.len() != self.slots.len()
            || self.free_slots.iter().any(|&s| self.slots[s].is_some())
            || self
                .services
                .values()
                .any(|b| matches!(b, Bucket::Many(all) if all.len() < 2))
        {
            return Err("slots do not match the services".to_string());
        }
        for (slot, held) in self.slots.iter().enumerate() {
            let Some(held) = held else { continue };
            let key = &held.svc.key;
            if self.find(key) != Some(slot) {
                return Err(format!("{key}: slot {slot} is not indexed"));
            }
            for ip in &held.assignment.ips {
                let listed = match self.used.get(ip).map(|u| &u.holders) {
                    Some(Holders::Sole(s)) => *s == slot,
                    Some(Holders::Shared(shared)) => shared.holders.contains(&slot),
                    None => false,
                };
                if !listed {
                    return Err(format!("{key} holds {ip}, which does not list it"));
                }
            }
        }
        for (i, state) in self.pools.iter().enumerate() {
            let services = self.slots.iter().flatten().filter(|h| h.pool == i).count();
            if services != state.services {
                return Err(format!(
                    "pool {}: {} services counted",
                    state.pool.name, services
                ));
            }
            for family in [Family::V4, Family::V6] {
                let space = state.space(family);
                let used = in_use.get(&(i, family)).copied().unwrap_or(0);
                if used != space.in_use {
                    return Err(format!(
                        "pool {} {family}: in use {}",
                        state.pool.name, used
                    ));
                }
                let mut previous: Option<u128> = None;
                let mut free = 0u128;
                for (&start, &end) in &space.free {
                    if start > end || previous.is_some_and(|p| p.checked_add(1) >= Some(start)) {
                        return Err(format!("pool {} {family}: free runs", state.pool.name));
                    }
                    previous = Some(end);
                    free = free.saturating_add(end - start).saturating_add(1);
                }
                let last = space.pieces.last().map(|p| p.base + (p.last - p.first));
                if previous.is_some() && previous > last {
                    return Err(format!(
                        "pool {} {family}: free past the end",
                        state.pool.name
                    ));
                }
                if !self.overlapping && free.saturating_add(used) != space.total {
                    return Err(format!(
                        "pool {} {family}: free + used != total",
                        state.pool.name
                    ));
                }
            }
        }
        Ok(())
    }

    fn held(&self, slot: Slot) -> &Held {
        held_in(&self.slots, slot)
    }

    fn key(&self, slot: Slot) -> &ServiceKey {
        &self.held(slot).svc.key
    }

    /// The slot of a held Service. `O(log n)` integer compares.
    fn find(&self, key: &ServiceKey) -> Option<Slot> {
        let bucket = self.services.get(&key_hash(key))?;
        bucket
            .slots()
            .iter()
            .copied()
            .find(|&slot| self.key(slot) == key)
    }

    /// Files a newly held Service under its key.
    fn index_key(&mut self, slot: Slot) {
        match self
            .services
            .entry(key_hash(&held_in(&self.slots, slot).svc.key))
        {
            Entry::Vacant(entry) => {
                entry.insert(Bucket::One(slot));
            }
            Entry::Occupied(mut entry) => {
                let mut all = entry.get().slots().to_vec();
                all.push(slot);
                entry.insert(Bucket::Many(all));
            }
        }
    }

    /// Takes a Service out of the key index.
    fn unindex_key(&mut self, key: &ServiceKey) -> Option<Slot> {
        let Entry::Occupied(mut entry) = self.services.entry(key_hash(key)) else {
            return None;
        };
        let slots = &self.slots;
        let slot = entry
            .get()
            .slots()
            .iter()
            .copied()
            .find(|&s| held_in(slots, s).svc.key == *key)?;
        match entry.get_mut() {
            Bucket::One(_) => {
                entry.remove();
            }
            Bucket::Many(all) => {
                all.retain(|&s| s != slot);
                if let [one] = all.as_slice() {
                    let one = *one;
                    entry.insert(Bucket::One(one));
                }
            }
        }
        Some(slot)
    }

    // --- configuration ---

    fn install<'a>(&mut self, pools: impl IntoIterator<Item = &'a Pool>) {
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

    fn index(&self, name: &str) -> Option<usize> {
        self.pools
            .binary_search_by(|p| p.pool.name.as_str().cmp(name))
            .ok()
    }

    /// The first pool (by name) whose ranges contain every address. `O(log r)` when pools do not
    /// overlap.
    fn containing(&self, ips: &[IpAddr]) -> Option<usize> {
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

    fn not_allowed(&self, pool: usize, svc: &LbService) -> Result<(), AllocError> {
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

    // --- allocation paths ---

    /// Takes exactly these addresses for the Service, checking them as [`Mode`] says.
    fn claim(
        &mut self,
        svc: &LbService,
        ips: &[IpAddr],
        mode: Mode,
        preferred: Option<&str>,
        (wanted, required): &(Vec<Family>, bool),
    ) -> Result<Assignment, AllocError> {
        if ips.len() > 2 {
            return Err(AllocError::TooManyIps { count: ips.len() });
        }
        if let [first, second] = ips
            && Family::of(first) == Family::of(second)
        {
            return Err(AllocError::SameFamily {
                first: *first,
                second: *second,
                family: Family::of(first),
            });
        }
        if let Some(ip) = ips.iter().find(|ip| !wanted.contains(&Family::of(ip))) {
            return Err(AllocError::FamilyMismatch {
                ip: *ip,
                family: Family::of(ip),
                policy: svc.family_policy,
                wanted: wanted.clone(),
            });
        }
        if mode == Mode::Request
            && *required
            && let Some(family) = wanted
                .iter()
                .find(|f| !ips.iter().any(|ip| Family::of(ip) == **f))
        {
            return Err(AllocError::MissingFamily {
                family: *family,
                policy: svc.family_policy,
            });
        }
        let ips = in_family_order(wanted, ips);
        let mut pools = [0; 2];
        for (ip, pool) in ips.iter().zip(&mut pools) {
            *pool = self
                .containing(&[*ip])
                .ok_or(AllocError::NotAllowed { ip: *ip })?;
        }
        let preferred = preferred.and_then(|name| self.index(name));
        let pool = match (mode, preferred) {
            (Mode::Request, Some(requested)) => {
                if let Some((ip, actual)) = ips
                    .iter()
                    .zip(&pools)
                    .find(|(ip, _)| !self.pools[requested].contains(ip))
                {
                    return Err(AllocError::NotInRequestedPool {
                        ip: *ip,
                        requested: self.pools[requested].pool.name.clone(),
                        actual: self.pools[*actual].pool.name.clone(),
                    });
                }
                requested
            }
            (_, Some(p)) if ips.iter().all(|ip| self.pools[p].contains(ip)) => p,
            _ => self
                .containing(&ips)
                .ok_or_else(|| AllocError::DifferentPools {
                    first: ips[0],
                    first_pool: self.pools[pools[0]].pool.name.clone(),
                    second: ips[1],
                    second_pool: self.pools[pools[1]].pool.name.clone(),
                })?,
        };
        self.not_allowed(pool, svc)?;
        if self.pools[pool].pool.avoid_buggy_ips
            && let Some(ip) = ips.iter().find(|ip| is_buggy_ip(ip))
        {
            return Err(AllocError::BuggyIp {
                ip: *ip,
                pool: self.pools[pool].pool.name.clone(),
            });
        }
        for ip in &ips {
            if let Some(u) = self.used.get(ip) {
                self.compatible(u, svc)
                    .map_err(|(other, reason)| AllocError::Conflict {
                        ip: *ip,
                        other,
                        reason,
                    })?;
            }
        }
        Ok(self.hold(svc, pool, ips))
    }

    /// Re-takes addresses a Service had (`set_pools`, `allocate`): allowed by the pools, and in
    /// the annotated pool when that exists.
    fn keep(
        &mut self,
        svc: &LbService,
        ips: &[IpAddr],
        hint: Option<&str>,
        families: &(Vec<Family>, bool),
    ) -> Result<Assignment, AllocError> {
        let requested = requested_pool(svc).filter(|name| self.index(name).is_some());
        let assignment = self.claim(svc, ips, Mode::Restore, requested.or(hint), families)?;
        match requested {
            Some(name) if name != assignment.pool => {
                self.unhold(&svc.key);
                Err(AllocError::NotInRequestedPool {
                    ip: assignment.ips[0],
                    requested: name.to_string(),
                    actual: assignment.pool,
                })
            }
            _ => Ok(assignment),
        }
    }

    /// [`Allocator::keep`] after dropping addresses of families the Service no longer has, then
    /// adding missing families from the same pool. `None` when nothing can be kept.
    fn try_keep(
        &mut self,
        svc: &LbService,
        ips: &[IpAddr],
        hint: Option<&str>,
        families: &(Vec<Family>, bool),
    ) -> Option<Assignment> {
        let (wanted, required) = families;
        let kept: Vec<IpAddr> = ips
            .iter()
            .copied()
            .filter(|ip| wanted.contains(&Family::of(ip)))
            .collect();
        if kept.is_empty() {
            return None;
        }
        let assignment = self.keep(svc, &kept, hint, families).ok()?;
        if assignment.ips.len() == wanted.len() {
            return Some(assignment);
        }
        let pool = self
            .held(self.find(&svc.key).expect("invariant: kept above"))
            .pool;
        let mut all = assignment.ips;
        for &family in wanted {
            if all.iter().any(|ip| Family::of(ip) == family) {
                continue;
            }
            match self.pools[pool]
                .has(family)
                .then(|| self.pick(pool, family, svc))
                .flatten()
            {
                Some(ip) => all.push(ip),
                // RequireDualStack: both from one pool, so start over (possibly elsewhere).
                None if *required => {
                    self.unhold(&svc.key);
                    return None;
                }
                // PreferDualStack: one family will do (upstream `AdditionalAssignFailed`).
                None => {}
            }
        }
        self.unhold(&svc.key);
        Some(self.hold(svc, pool, in_family_order(wanted, &all)))
    }

    /// New addresses from the annotated pool, or from the automatic pools.
    fn fresh(
        &mut self,
        svc: &LbService,
        (wanted, required): &(Vec<Family>, bool),
    ) -> Result<Assignment, AllocError> {
        let required = *required;
        if let Some(pool) = requested_pool(svc).and_then(|name| self.index(name)) {
            self.not_allowed(pool, svc)?;
            return match self.try_pool(pool, svc, wanted, required) {
                Ok(ips) => Ok(self.hold(svc, pool, ips)),
                Err(Miss::Lacks(family)) => Err(AllocError::PoolLacksFamily {
                    pool: self.pools[pool].pool.name.clone(),
                    family,
                    policy: svc.family_policy,
                }),
                Err(Miss::Exhausted(family)) => Err(AllocError::PoolExhausted {
                    pool: self.pools[pool].pool.name.clone(),
                    family: (wanted.len() > 1).then_some(family),
                }),
            };
        }
        // A missing annotated pool falls back to automatic pools (OCP 4.10 docs, 26.6.2): the
        // pinned pools that select the Service, then the open ones. A PreferDualStack Service
        // first looks for a pool that gives both families, then takes one family from the
        // first pool that has either (upstream's findBestPoolForService).
        let passes: &[bool] = if !required && wanted.len() > 1 {
            &[true, false]
        } else {
            &[required]
        };
        let (mut candidates, mut exhausted) = (0, false);
        for &every_family in passes {
            (candidates, exhausted) = (0, false);
            for i in 0..self.pinned.len() + self.open.len() {
                let pool = match self.pinned.get(i) {
                    Some(&pool) if self.pools[pool].rejects(svc).is_some() => continue,
                    Some(&pool) => pool,
                    None => self.open[i - self.pinned.len()],
                };
                candidates += 1;
                match self.try_pool(pool, svc, wanted, every_family) {
                    Ok(ips) => return Ok(self.hold(svc, pool, ips)),
                    Err(Miss::Lacks(_)) => {}
                    Err(Miss::Exhausted(_)) => exhausted = true,
                }
            }
        }
        if candidates == 0 || exhausted {
            Err(AllocError::NoAvailableIps)
        } else {
            let families = if required {
                wanted.clone()
            } else {
                vec![wanted[0]]
            };
            Err(AllocError::NoPoolWithFamilies {
                families,
                policy: svc.family_policy,
            })
        }
    }

    /// One address per wanted family from one pool. With `every_family`, each wanted family
    /// must be served; otherwise one address of any wanted family will do (PreferDualStack).
    fn try_pool(
        &mut self,
        pool: usize,
        svc: &LbService,
        wanted: &[Family],
        every_family: bool,
    ) -> Result<Vec<IpAddr>, Miss> {
        let has = |f: &Family| self.pools[pool].has(*f);
        let lacking = if every_family {
            wanted.iter().find(|f| !has(f))
        } else {
            wanted.iter().all(|f| !has(f)).then_some(&wanted[0])
        };
        if let Some(&family) = lacking {
            return Err(Miss::Lacks(family));
        }
        let mut ips = Vec::with_capacity(wanted.len());
        for &family in wanted {
            if !self.pools[pool].has(family) {
                continue;
            }
            match self.pick(pool, family, svc) {
                Some(ip) => ips.push(ip),
                None if every_family => return Err(Miss::Exhausted(family)),
                None => {}
            }
        }
        match ips.first() {
            Some(_) => Ok(ips),
            None => Err(Miss::Exhausted(wanted[0])),
        }
    }

    /// The address a Service would get in one pool family, without taking it: one used by
    /// compatible sharers of its key (lowest first), else the lowest free one.
    fn pick(&mut self, pool: usize, family: Family, svc: &LbService) -> Option<IpAddr> {
        if let Some(key) = sharing_key(svc) {
            let group_key = GroupKey::of_service(pool, family, key, svc);
            if let Some(group) = self.groups.get(&group_key) {
                let all = group.ips.len();
                let hopeless = svc
                    .ports
                    .iter()
                    .any(|p| group.port_ips.get(p) == Some(&all));
                if !hopeless {
                    let shareable = group.ips.values().find(|ip| match &self.used[*ip].holders {
                        Holders::Shared(shared) => {
                            svc.ports.iter().all(|p| !shared.ports.contains_key(p))
                        }
                        Holders::Sole(_) => false,
                    });
                    if let Some(ip) = shareable {
                        return Some(*ip);
                    }
                }
            }
        }
        let space = self.pools[pool].space_mut(family);
        loop {
            let ordinal = space.lowest_free()?;
            let ip = space.address(ordinal);
            if !self.used.contains_key(&ip) {
                return Some(ip);
            }
            // Only with overlapping pools: taken through another pool. It comes back to this
            // pool's free set when released (see `detach`).
            space.take(ordinal);
        }
    }

    // --- bookkeeping ---

    /// Records an assignment whose addresses have been checked.
    fn hold(&mut self, svc: &LbService, pool: usize, ips: Vec<IpAddr>) -> Assignment {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        for &ip in &ips {
            self.attach(svc, slot, pool, ip);
        }
        self.pools[pool].services += 1;
        let assignment = Assignment {
            pool: self.pools[pool].pool.name.clone(),
            ips,
        };
        debug_assert!(
            self.find(&svc.key).is_none(),
            "invariant: a service is unheld before held"
        );
        let held = Held {
            svc: svc.clone(),
            assignment: assignment.clone(),
            pool,
        };
        self.slots[slot] = Some(Box::new(held));
        self.index_key(slot);
        assignment
    }

    fn attach(&mut self, svc: &LbService, slot: Slot, pool: usize, ip: IpAddr) {
        let family = Family::of(&ip);
        let sharing = sharing_key(svc);
        let u = match self.used.entry(ip) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let space = self.pools[pool].space_mut(family);
                let ordinal = space
                    .ordinal(ip)
                    .expect("invariant: a claimed address is usable in its pool");
                space.take(ordinal);
                space.in_use += 1;
                let holders = match sharing {
                    None => Holders::Sole(slot),
                    Some(key) => {
                        let group_key = GroupKey::of_service(pool, family, key, svc);
                        self.groups
                            .entry(group_key)
                            .or_default()
                            .ips
                            .insert(ordinal, ip);
                        Holders::Shared(Box::new(Shared {
                            key: key.to_string(),
                            backend: svc.backend_key.clone(),
                            holders: Vec::new(),
                            ports: BTreeMap::new(),
                        }))
                    }
                };
                entry.insert(IpUse {
                    pool,
                    ordinal,
                    holders,
                })
            }
        };
        let Holders::Shared(shared) = &mut u.holders else {
            return;
        };
        shared.holders.push(slot);
        let mut added = Vec::new();
        for port in &svc.ports {
            if let btree_map::Entry::Vacant(entry) = shared.ports.entry(*port) {
                entry.insert(slot);
                added.push(*port);
            }
        }
        if !added.is_empty() {
            let group_key = shared.group_key(u.pool, family);
            let group = self
                .groups
                .get_mut(&group_key)
                .expect("invariant: shared address has a group");
            for port in added {
                *group.port_ips.entry(port).or_default() += 1;
            }
        }
    }

    /// Removes an assignment, freeing addresses nobody else holds.
    fn unhold(&mut self, key: &ServiceKey) -> Option<Box<Held>> {
        let slot = self.unindex_key(key)?;
        let held = self.slots[slot]
            .take()
            .expect("invariant: a held service has a slot");
        self.free_slots.push(slot);
        for &ip in &held.assignment.ips {
            self.detach(slot, &held.svc.ports, ip);
        }
        self.pools[held.pool].services -= 1;
        Some(held)
    }

    fn detach(&mut self, slot: Slot, ports: &[Port], ip: IpAddr) {
        let family = Family::of(&ip);
        let Some(u) = self.used.get_mut(&ip) else {
            return;
        };
        let now_free = match &mut u.holders {
            Holders::Sole(holder) => {
                debug_assert_eq!(*holder, slot, "invariant: only holders detach");
                true
            }
            Holders::Shared(shared) => {
                shared.holders.retain(|&h| h != slot);
                let group_key = shared.group_key(u.pool, family);
                let group = self
                    .groups
                    .get_mut(&group_key)
                    .expect("invariant: shared address has a group");
                for port in ports {
                    if shared.ports.get(port) == Some(&slot) {
                        shared.ports.remove(port);
                        if let Some(count) = group.port_ips.get_mut(port) {
                            *count -= 1;
                            if *count == 0 {
                                group.port_ips.remove(port);
                            }
                        }
                    }
                }
                let now_free = shared.holders.is_empty();
                if now_free {
                    group.ips.remove(&u.ordinal);
                    if group.ips.is_empty() {
                        self.groups.remove(&group_key);
                    }
                }
                now_free
            }
        };
        if now_free {
            let u = self.used.remove(&ip).expect("invariant: looked up above");
            let space = self.pools[u.pool].space_mut(family);
            space.give(u.ordinal);
            space.in_use -= 1;
            if self.overlapping {
                for (i, state) in self.pools.iter_mut().enumerate() {
                    let space = state.space_mut(family);
                    if let Some(ordinal) = space.ordinal(ip).filter(|_| i != u.pool) {
                        space.give(ordinal);
                    }
                }
            }
        }
    }

    /// Upstream `checkSharing`: whether a Service may join the holders of an address. The other
    /// Service named is the smallest key, so messages do not depend on history.
    fn compatible(&self, u: &IpUse, svc: &LbService) -> Result<(), (ServiceKey, SharingConflict)> {
        let shared = match &u.holders {
            Holders::Sole(slot) => {
                return Err((self.key(*slot).clone(), SharingConflict::NotShared));
            }
            Holders::Shared(shared) => shared,
        };
        let Some(other) = shared.holders.iter().map(|&s| self.key(s)).min() else {
            return Ok(());
        };
        let conflict = |reason| Err((other.clone(), reason));
        let Some(ours) = sharing_key(svc) else {
            return conflict(SharingConflict::NoSharingKey);
        };
        if ours != shared.key {
            return conflict(SharingConflict::DifferentKey {
                ours: ours.to_string(),
                theirs: shared.key.clone(),
            });
        }
        if shared.backend != svc.backend_key {
            return conflict(SharingConflict::DifferentBackends);
        }
        for port in &svc.ports {
            if let Some(&holder) = shared.ports.get(port) {
                return Err((
                    self.key(holder).clone(),
                    SharingConflict::PortsOverlap(*port),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
