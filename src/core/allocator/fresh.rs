//! New addresses: from the annotated pool, or the automatic pools in order, lowest free first.

use std::net::IpAddr;

use super::{
    AllocError, Allocator, Assignment,
    claim::requested_pool,
    sharing::{GroupKey, Holders, sharing_key},
};
use crate::core::{address::Family, service::LbService};

/// Why a pool could not serve a Service automatically.
#[derive(Clone, Copy, Debug)]
pub(super) enum Miss {
    /// It has no addresses of a family the Service needs.
    Lacks(Family),
    /// It has, but they are all taken.
    Exhausted(Family),
}

impl Allocator {
    /// New addresses from the annotated pool, or from the automatic pools.
    pub(super) fn fresh(
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
    pub(super) fn try_pool(
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
    pub(super) fn pick(&mut self, pool: usize, family: Family, svc: &LbService) -> Option<IpAddr> {
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
}
