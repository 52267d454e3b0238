//! Address ranges as admins write them in pools: CIDRs, `start-end` ranges and their mixes.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use serde::Serialize;

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    /// IPv4.
    #[serde(rename = "IPv4")]
    V4,
    /// IPv6.
    #[serde(rename = "IPv6")]
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as an integer, so ranges can be compared and stepped through.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inverse of [`ip_to_u128`]; `value` must fit the family.
pub fn u128_to_ip(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// A contiguous, inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

/// Why an address entry could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Neither a CIDR nor a range.
    #[error(
        "invalid address {0:?}: expected a CIDR (192.168.10.0/24) or a range (192.168.10.1-192.168.10.5)"
    )]
    Syntax(String),
    /// A bare address: MetalLB wants it written as a range or a host prefix.
    #[error(
        "invalid address {0:?}: write a single address as a range ({0}-{0}) or as a /32 or /128 CIDR"
    )]
    BareAddress(String),
    /// The CIDR part did not parse.
    #[error("invalid CIDR {0:?}")]
    Cidr(String),
    /// The start of a range did not parse.
    #[error("invalid IP range {0:?}: invalid start IP")]
    RangeStart(String),
    /// The end of a range did not parse.
    #[error("invalid IP range {0:?}: invalid end IP")]
    RangeEnd(String),
    /// The ends of a range are of different families.
    #[error("invalid IP range {0:?}: start and end must both be IPv4 or both be IPv6")]
    MixedFamilies(String),
    /// The range runs backwards.
    #[error("invalid IP range {range:?}: start IP {start} is after the end IP {end}")]
    Backwards {
        /// The entry as written.
        range: String,
        /// Its start.
        start: IpAddr,
        /// Its end.
        end: IpAddr,
    },
}

impl IpRange {
    /// A range from `start` to `end` inclusive; `None` when the families differ or it runs
    /// backwards.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<IpRange> {
        (Family::of(&start) == Family::of(&end) && ip_to_u128(start) <= ip_to_u128(end))
            .then_some(IpRange { start, end })
    }

    /// The range covering a CIDR.
    pub fn from_net(net: IpNet) -> IpRange {
        IpRange {
            start: net.network(),
            end: net.broadcast(),
        }
    }

    /// Parses one `addresses` entry of a pool: `a.b.c.d/n`, `a-b` (spaces around the dash are
    /// allowed), for IPv4 and IPv6. A CIDR with host bits set is taken as its network.
    pub fn parse(entry: &str) -> Result<IpRange, AddressError> {
        let text = entry.trim();
        if let Some((start, end)) = text.split_once('-') {
            let start_ip = IpAddr::from_str(start.trim())
                .map_err(|_| AddressError::RangeStart(entry.to_string()))?;
            let end_ip = IpAddr::from_str(end.trim())
                .map_err(|_| AddressError::RangeEnd(entry.to_string()))?;
            if Family::of(&start_ip) != Family::of(&end_ip) {
                return Err(AddressError::MixedFamilies(entry.to_string()));
            }
            return IpRange::new(start_ip, end_ip).ok_or(AddressError::Backwards {
                range: entry.to_string(),
                start: start_ip,
                end: end_ip,
            });
        }
        if text.contains('/') {
            let net = IpNet::from_str(text).map_err(|_| AddressError::Cidr(entry.to_string()))?;
            return Ok(IpRange::from_net(net.trunc()));
        }
        if IpAddr::from_str(text).is_ok() {
            return Err(AddressError::BareAddress(text.to_string()));
        }
        Err(AddressError::Syntax(entry.to_string()))
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address.
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// The family of both ends.
    pub fn family(&self) -> Family {
        Family::of(&self.start)
    }

    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family() && {
            let v = ip_to_u128(*ip);
            ip_to_u128(self.start) <= v && v <= ip_to_u128(self.end)
        }
    }

    /// Whether the two ranges share at least one address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.family() == other.family()
            && ip_to_u128(self.start) <= ip_to_u128(other.end)
            && ip_to_u128(other.start) <= ip_to_u128(self.end)
    }

    /// Number of addresses, saturating at `u128::MAX` for the whole IPv6 space.
    pub fn size(&self) -> u128 {
        (ip_to_u128(self.end) - ip_to_u128(self.start)).saturating_add(1)
    }

    /// The smallest list of CIDRs that covers exactly this range.
    pub fn cidrs(&self) -> Vec<IpNet> {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => Ipv4Subnets::new(s, e, 0).map(IpNet::V4).collect(),
            (IpAddr::V6(s), IpAddr::V6(e)) => Ipv6Subnets::new(s, e, 0).map(IpNet::V6).collect(),
            _ => unreachable!("invariant: both ends of an IpRange have one family"),
        }
    }

    /// The range as a single CIDR, when it is exactly one.
    pub fn as_cidr(&self) -> Option<IpNet> {
        match self.cidrs().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

impl fmt::Display for IpRange {
    /// CIDR notation when the range is exactly one CIDR, `start-end` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_cidr() {
            Some(net) => write!(f, "{net}"),
            None => write!(f, "{}-{}", self.start, self.end),
        }
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether an IPv4 address ends in `.0` or `.255`, which some old clients treat as network or
/// broadcast addresses whatever the prefix length (MetalLB's `avoidBuggyIPs`).
pub fn is_buggy_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_cidr_range_and_single_address_range() {
        let cidr = IpRange::parse("192.168.100.0/24").unwrap();
        assert_eq!(
            (cidr.start(), cidr.end()),
            (ip("192.168.100.0"), ip("192.168.100.255"))
        );
        let range = IpRange::parse("203.0.113.1-203.0.113.10").unwrap();
        assert_eq!(range.size(), 10);
        let single = IpRange::parse("1.1.1.1-1.1.1.1").unwrap();
        assert_eq!(single.size(), 1);
        assert_eq!(single.to_string(), "1.1.1.1/32");
        let v6 = IpRange::parse("2002:2:2::1-2002:2:2::100").unwrap();
        assert_eq!(v6.size(), 0x100);
        assert_eq!(v6.family(), Family::V6);
        let spaced = IpRange::parse(" 10.0.0.1 - 10.0.0.3 ").unwrap();
        assert_eq!(spaced.size(), 3);
    }

    #[test]
    fn cidr_with_host_bits_is_its_network() {
        let r = IpRange::parse("203.0.113.201/30").unwrap();
        assert_eq!(r.start(), ip("203.0.113.200"));
        assert_eq!(r.to_string(), "203.0.113.200/30");
    }

    #[test]
    fn rejects_bad_entries_with_a_reason() {
        assert!(matches!(
            IpRange::parse("1.1.1.1"),
            Err(AddressError::BareAddress(_))
        ));
        assert!(matches!(
            IpRange::parse("1.1.1.300/24"),
            Err(AddressError::Cidr(_))
        ));
        assert!(matches!(
            IpRange::parse("1.1.1.1/33"),
            Err(AddressError::Cidr(_))
        ));
        assert!(matches!(
            IpRange::parse("x-1.1.1.1"),
            Err(AddressError::RangeStart(_))
        ));
        assert!(matches!(
            IpRange::parse("1.1.1.1-y"),
            Err(AddressError::RangeEnd(_))
        ));
        assert!(matches!(
            IpRange::parse("1.1.1.1-::1"),
            Err(AddressError::MixedFamilies(_))
        ));
        assert!(matches!(
            IpRange::parse("1.1.1.9-1.1.1.1"),
            Err(AddressError::Backwards { .. })
        ));
        assert!(matches!(
            IpRange::parse("banana"),
            Err(AddressError::Syntax(_))
        ));
        assert!(matches!(IpRange::parse(""), Err(AddressError::Syntax(_))));
    }

    #[test]
    fn ranges_summarise_to_cidrs() {
        let r = IpRange::parse("192.168.255.1-192.168.255.5").unwrap();
        let nets: Vec<String> = r.cidrs().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            ["192.168.255.1/32", "192.168.255.2/31", "192.168.255.4/31"]
        );
        assert_eq!(r.to_string(), "192.168.255.1-192.168.255.5");
    }

    #[test]
    fn overlap_needs_a_shared_address_and_family() {
        let a = IpRange::parse("10.0.0.0/24").unwrap();
        assert!(a.overlaps(&IpRange::parse("10.0.0.255-10.0.1.3").unwrap()));
        assert!(!a.overlaps(&IpRange::parse("10.0.1.0/24").unwrap()));
        assert!(!a.overlaps(&IpRange::parse("::/0").unwrap()));
    }

    #[test]
    fn whole_ipv6_space_size_saturates() {
        assert_eq!(IpRange::parse("::/0").unwrap().size(), u128::MAX);
    }
}
