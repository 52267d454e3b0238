//! The address space of one pool family: its ranges as pieces, the free intervals, and the
//! ranking that skips `.0`/`.255` addresses when the pool avoids them.

use std::{collections::BTreeMap, net::IpAddr};

use super::FamilyStats;
use crate::core::address::{Family, IpRange, ip_to_u128, is_buggy_ip, u128_to_ip};

// === Address space of one pool family ===

/// A run of addresses of one range, numbered from `base`. `first` and `last` are address keys:
/// the address as an integer, or its rank among non-buggy IPv4 addresses under `avoidBuggyIPs`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Piece {
    pub(super) base: u128,
    pub(super) first: u128,
    pub(super) last: u128,
}

/// The usable addresses of one family of a pool, numbered 0..total in the order the ranges are
/// written ("ordinals"), and which of them are free.
#[derive(Clone, Debug)]
pub(super) struct Space {
    pub(super) family: Family,
    /// IPv4 with avoidBuggyIPs: keys are ranks among addresses not ending in .0 or .255.
    pub(super) skip_buggy: bool,
    /// In ordinal order (the order the ranges are written); disjoint.
    pub(super) pieces: Vec<Piece>,
    /// Indices into `pieces`, by key.
    pub(super) by_key: Vec<usize>,
    /// Number of usable addresses, saturating.
    pub(super) total: u128,
    /// Free ordinals: start → end (inclusive) of maximal runs.
    pub(super) free: BTreeMap<u128, u128>,
    /// Addresses held through this pool.
    pub(super) in_use: u128,
}

/// Rank of a non-buggy IPv4 address among non-buggy addresses (254 per /24).
pub(super) fn good_rank(v: u128) -> u128 {
    (v / 256) * 254 + (v % 256 - 1)
}

/// Inverse of [`good_rank`].
pub(super) fn good_unrank(r: u128) -> u128 {
    (r / 254) * 256 + r % 254 + 1
}

/// Keys of the first and last non-buggy addresses of `[s, e]`, if any.
pub(super) fn good_span(s: u128, e: u128) -> Option<(u128, u128)> {
    let a = match s % 256 {
        0 => s + 1,
        255 => s + 2,
        _ => s,
    };
    let b = match e % 256 {
        255 => e - 1,
        0 => e.checked_sub(2)?,
        _ => e,
    };
    (a <= b).then(|| (good_rank(a), good_rank(b)))
}

/// The parts of `[s, e]` not covered by `covered` (sorted, merged), ascending.
fn uncovered(covered: &[(u128, u128)], s: u128, e: u128) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut cur = s;
    for &(a, b) in covered {
        if b < cur {
            continue;
        }
        if a > e {
            break;
        }
        if a > cur {
            out.push((cur, a - 1));
        }
        if b >= e {
            return out;
        }
        cur = b + 1;
    }
    out.push((cur, e));
    out
}

impl Space {
    pub(super) fn new(family: Family, ranges: &[IpRange], avoid_buggy: bool) -> Space {
        let skip_buggy = avoid_buggy && family == Family::V4;
        let mut covered: Vec<(u128, u128)> = Vec::new();
        let mut pieces = Vec::new();
        let (mut next, mut total) = (0u128, 0u128);
        for range in ranges.iter().filter(|r| r.family() == family) {
            let (s, e) = (ip_to_u128(range.start()), ip_to_u128(range.end()));
            let span = if skip_buggy {
                good_span(s, e)
            } else {
                Some((s, e))
            };
            let Some((s, e)) = span else { continue };
            // A range written twice (or overlapping an earlier one) keeps its first position.
            for (first, last) in uncovered(&covered, s, e) {
                pieces.push(Piece {
                    base: next,
                    first,
                    last,
                });
                // Wrapping only past the very last ordinal of ::/0, which is never used.
                next = next.wrapping_add(last - first).wrapping_add(1);
                total = total.saturating_add(last - first).saturating_add(1);
            }
            covered.push((s, e));
            covered.sort_unstable();
            covered = covered
                .into_iter()
                .fold(Vec::new(), |mut acc: Vec<(u128, u128)>, (a, b)| {
                    match acc.last_mut() {
                        Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                        _ => acc.push((a, b)),
                    }
                    acc
                });
        }
        let mut by_key: Vec<usize> = (0..pieces.len()).collect();
        by_key.sort_unstable_by_key(|&i| pieces[i].first);
        // Ordinals are contiguous, so every address starts in a single free run.
        let free = pieces
            .last()
            .map(|p| (0, p.base + (p.last - p.first)))
            .into_iter()
            .collect();
        Space {
            family,
            skip_buggy,
            pieces,
            by_key,
            total,
            free,
            in_use: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Ordinal of an address, if it is usable in this space.
    pub(super) fn ordinal(&self, ip: IpAddr) -> Option<u128> {
        if Family::of(&ip) != self.family || (self.skip_buggy && is_buggy_ip(&ip)) {
            return None;
        }
        let v = ip_to_u128(ip);
        let k = if self.skip_buggy { good_rank(v) } else { v };
        let i = self.by_key.partition_point(|&i| self.pieces[i].first <= k);
        let piece = self.pieces[*self.by_key.get(i.checked_sub(1)?)?];
        (k <= piece.last).then(|| piece.base + (k - piece.first))
    }

    /// Address of an ordinal below `total`.
    pub(super) fn address(&self, ordinal: u128) -> IpAddr {
        let i = self.pieces.partition_point(|p| p.base <= ordinal) - 1;
        let piece = self.pieces[i];
        let k = piece.first + (ordinal - piece.base);
        u128_to_ip(
            self.family,
            if self.skip_buggy { good_unrank(k) } else { k },
        )
    }

    /// The lowest free ordinal.
    pub(super) fn lowest_free(&self) -> Option<u128> {
        self.free.first_key_value().map(|(&s, _)| s)
    }

    /// Marks an ordinal used; false if it was not free.
    pub(super) fn take(&mut self, ordinal: u128) -> bool {
        let Some((&s, &e)) = self.free.range(..=ordinal).next_back() else {
            return false;
        };
        if e < ordinal {
            return false;
        }
        if s == ordinal {
            self.free.remove(&s);
        } else {
            self.free.insert(s, ordinal - 1);
        }
        if ordinal < e {
            self.free.insert(ordinal + 1, e);
        }
        true
    }

    /// Marks an ordinal free, merging with its neighbours; false if it was free already.
    pub(super) fn give(&mut self, ordinal: u128) -> bool {
        let (mut start, mut end) = (ordinal, ordinal);
        if let Some((&s, &e)) = self.free.range(..=ordinal).next_back() {
            if e >= ordinal {
                return false;
            }
            if e + 1 == ordinal {
                start = s;
            }
        }
        if let Some(e) = ordinal
            .checked_add(1)
            .and_then(|next| self.free.remove(&next))
        {
            end = e;
        }
        self.free.insert(start, end);
        true
    }

    pub(super) fn stats(&self) -> FamilyStats {
        FamilyStats {
            total: self.total,
            assigned: self.in_use,
            available: self.total.saturating_sub(self.in_use),
        }
    }
}
