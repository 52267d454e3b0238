//! Who holds an address, the sharing groups for colocation, and upstream's `checkSharing`.

use std::{collections::BTreeMap, net::IpAddr};

use super::{Allocator, SharingConflict, slots::Slot};
use crate::core::{
    address::Family,
    service::{LbService, Port, ServiceKey},
};

/// Who holds one address.
#[derive(Clone, Debug)]
pub(super) struct IpUse {
    /// Pool the address was taken from.
    pub(super) pool: usize,
    /// Its ordinal in that pool.
    pub(super) ordinal: u128,
    pub(super) holders: Holders,
}

/// The holders of an address.
#[derive(Clone, Debug)]
pub(super) enum Holders {
    /// Taken without a sharing key: nobody may join, so its ports do not matter (and cost no
    /// allocation, which keeps the common case cheap).
    Sole(Slot),
    /// Taken with a sharing key.
    Shared(Box<Shared>),
}

/// The holders of a shareable address; they all agree on the keys and never overlap on ports.
#[derive(Clone, Debug)]
pub(super) struct Shared {
    /// Sharing key of every holder.
    pub(super) key: String,
    /// Backend key of every holder.
    pub(super) backend: String,
    pub(super) holders: Vec<Slot>,
    /// Which holder uses each (protocol, port).
    pub(super) ports: BTreeMap<Port, Slot>,
}

impl Shared {
    /// The colocation group this address belongs to.
    pub(super) fn group_key(&self, pool: usize, family: Family) -> GroupKey {
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
pub(super) struct GroupKey {
    pub(super) pool: usize,
    pub(super) family: Family,
    pub(super) sharing_key: String,
    pub(super) backend_key: String,
}

impl GroupKey {
    /// The group a Service with sharing key `key` joins in this pool family.
    pub(super) fn of_service(pool: usize, family: Family, key: &str, svc: &LbService) -> GroupKey {
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
pub(super) struct Group {
    pub(super) ips: BTreeMap<u128, IpAddr>,
    pub(super) port_ips: BTreeMap<Port, usize>,
}

pub(super) fn sharing_key(svc: &LbService) -> Option<&str> {
    svc.sharing_key.as_deref().filter(|k| !k.is_empty())
}

impl Allocator {
    /// Upstream `checkSharing`: whether a Service may join the holders of an address. The other
    /// Service named is the smallest key, so messages do not depend on history.
    pub(super) fn compatible(
        &self,
        u: &IpUse,
        svc: &LbService,
    ) -> Result<(), (ServiceKey, SharingConflict)> {
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
