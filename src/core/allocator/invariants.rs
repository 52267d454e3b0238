//! The cross-check of every internal index against the others (tests and debugging).

use std::collections::BTreeMap;

use super::{
    Allocator,
    sharing::{Group, GroupKey, Holders, sharing_key},
    slots::Bucket,
};
use crate::core::address::Family;

impl Allocator {
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
}
