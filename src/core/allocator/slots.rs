//! Held Services: the slots addresses refer to, and the index from a Service's key to its slot.

use std::{
    collections::btree_map::Entry,
    hash::{DefaultHasher, Hash, Hasher},
};

use super::{Allocator, Assignment};
use crate::core::service::{LbService, ServiceKey};

/// Index of a held Service in [`Allocator::slots`]; what addresses record as their holders.
pub(super) type Slot = usize;

/// The held Services whose keys share a hash: nearly always one.
#[derive(Clone, Debug)]
pub(super) enum Bucket {
    One(Slot),
    Many(Vec<Slot>),
}

impl Bucket {
    pub(super) fn slots(&self) -> &[Slot] {
        match self {
            Bucket::One(slot) => std::slice::from_ref(slot),
            Bucket::Many(slots) => slots,
        }
    }
}

/// A fixed (unkeyed SipHash) hash of a Service key, for [`Allocator::services`]. Collisions only
/// cost a string compare; order never depends on it.
pub(super) fn key_hash(key: &ServiceKey) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // Unit tests fold hashes to 4 values, so that shared buckets are exercised everywhere.
    if cfg!(test) {
        hasher.finish() & 3
    } else {
        hasher.finish()
    }
}

/// A Service's assignment and the Service as it was when it got it (labels for
/// `serviceAllocation`, ports and keys for sharing).
#[derive(Clone, Debug)]
pub(super) struct Held {
    pub(super) svc: LbService,
    pub(super) assignment: Assignment,
    pub(super) pool: usize,
}

/// The Service in an occupied slot.
pub(super) fn held_in(slots: &[Option<Box<Held>>], slot: Slot) -> &Held {
    slots[slot]
        .as_deref()
        .expect("invariant: a listed slot is occupied")
}

impl Allocator {
    pub(super) fn held(&self, slot: Slot) -> &Held {
        held_in(&self.slots, slot)
    }

    pub(super) fn key(&self, slot: Slot) -> &ServiceKey {
        &self.held(slot).svc.key
    }

    /// The slot of a held Service. `O(log n)` integer compares.
    pub(super) fn find(&self, key: &ServiceKey) -> Option<Slot> {
        let bucket = self.services.get(&key_hash(key))?;
        bucket
            .slots()
            .iter()
            .copied()
            .find(|&slot| self.key(slot) == key)
    }

    /// Files a newly held Service under its key.
    pub(super) fn index_key(&mut self, slot: Slot) {
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
    pub(super) fn unindex_key(&mut self, key: &ServiceKey) -> Option<Slot> {
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
}
