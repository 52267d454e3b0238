//! Taking given addresses: requested ones, and the ones a Service held or shows in its status.

use std::net::IpAddr;

use super::{AllocError, Allocator, Assignment};
use crate::core::{
    address::{Family, is_buggy_ip},
    service::LbService,
};

/// How strictly [`Allocator::claim`] checks the addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Requested addresses: every family of a RequireDualStack Service must be present and the
    /// `address-pool` annotation, when it names an existing pool, must contain them.
    Request,
    /// Addresses already given out: a subset of the families is fine (allocation completes it)
    /// and the annotation only breaks ties.
    Restore,
}

pub(super) fn requested_pool(svc: &LbService) -> Option<&str> {
    svc.requested_pool.as_deref().filter(|p| !p.is_empty())
}

/// The addresses, one per wanted family, primary first.
pub(super) fn in_family_order(wanted: &[Family], ips: &[IpAddr]) -> Vec<IpAddr> {
    wanted
        .iter()
        .filter_map(|f| ips.iter().copied().find(|ip| Family::of(ip) == *f))
        .collect()
}

impl Allocator {
    /// Takes exactly these addresses for the Service, checking them as [`Mode`] says.
    pub(super) fn claim(
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
    pub(super) fn keep(
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
    pub(super) fn try_keep(
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
}
