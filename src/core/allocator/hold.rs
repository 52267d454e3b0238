//! Recording and removing assignments: addresses taken from and given back to their spaces,
//! holders and sharing groups kept in step.

use std::{
    collections::{BTreeMap, btree_map, btree_map::Entry},
    net::IpAddr,
};

use super::{
    Allocator, Assignment,
    sharing::{GroupKey, Holders, IpUse, Shared, sharing_key},
    slots::{Held, Slot},
};
use crate::core::{
    address::Family,
    service::{LbService, Port, ServiceKey},
};

impl Allocator {
    /// Records an assignment whose addresses have been checked.
    pub(super) fn hold(&mut self, svc: &LbService, pool: usize, ips: Vec<IpAddr>) -> Assignment {
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

    pub(super) fn attach(&mut self, svc: &LbService, slot: Slot, pool: usize, ip: IpAddr) {
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
    pub(super) fn unhold(&mut self, key: &ServiceKey) -> Option<Box<Held>> {
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

    pub(super) fn detach(&mut self, slot: Slot, ports: &[Port], ip: IpAddr) {
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
}
