//! Which of the node's interfaces the layer 2 speaker answers on.
//!
//! Upstream's rule (`internal/layer2/announcer.go`): an interface is used when it is up, can
//! broadcast, has ARP enabled, is not enslaved to a bridge or bond (the master answers), and
//! its name matches none of the exclusion patterns (the `metallb-excludel2` ConfigMap).

use std::{net::Ipv6Addr, path::Path};

use pnet_datalink::NetworkInterface;
use regex::Regex;

use super::packet::MacAddr;

/// The default exclusion list of upstream's `metallb-excludel2` ConfigMap: container, overlay
/// and virtual interfaces whose neighbours are never the clients of a LoadBalancer address.
pub const DEFAULT_EXCLUDED: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^nodelocaldns.*",
    "^lxc.*",
];

/// `IFF_NOARP` from `<linux/if.h>`.
const IFF_NOARP: u32 = 0x80;

/// An interface the speaker can answer on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Kernel index (for multicast membership).
    pub index: u32,
    /// Hardware address: the answer to every ARP/NDP question for our addresses.
    pub mac: MacAddr,
    /// Its IPv6 link-local address, the source of our Neighbor Advertisements, if it has one.
    pub link_local: Option<Ipv6Addr>,
}

/// A bad exclusion pattern.
#[derive(Debug, thiserror::Error)]
#[error("invalid interface exclusion pattern {pattern:?}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why it does not compile.
    #[source]
    pub source: regex::Error,
}

/// Compiles exclusion patterns.
pub fn compile_exclusions(patterns: &[String]) -> Result<Vec<Regex>, PatternError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|source| PatternError {
                pattern: p.clone(),
                source,
            })
        })
        .collect()
}

/// The eligible interfaces among the system's, in name order.
pub fn eligible(exclude: &[Regex]) -> Vec<Interface> {
    let mut out: Vec<Interface> = pnet_datalink::interfaces()
        .into_iter()
        .filter_map(|i| check(&i, exclude))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The interface as the speaker uses it, if it is eligible.
fn check(iface: &NetworkInterface, exclude: &[Regex]) -> Option<Interface> {
    let usable = iface.is_up()
        && iface.is_broadcast()
        && !iface.is_loopback()
        && iface.flags & IFF_NOARP == 0
        && !enslaved(&iface.name)
        && !exclude.iter().any(|re| re.is_match(&iface.name));
    let mac = iface.mac.filter(|m| !m.is_zero())?;
    usable.then(|| Interface {
        name: iface.name.clone(),
        index: iface.index,
        mac,
        link_local: iface.ips.iter().find_map(|net| match net.ip() {
            std::net::IpAddr::V6(ip) if ip.is_unicast_link_local() => Some(ip),
            _ => None,
        }),
    })
}

/// A bridge port or bond member has a `master` link in sysfs.
fn enslaved(name: &str) -> bool {
    Path::new("/sys/class/net")
        .join(name)
        .join("master")
        .exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exclusions_compile_and_match_upstreams_examples() {
        let res = compile_exclusions(
            &DEFAULT_EXCLUDED
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for name in [
            "docker0",
            "veth1234",
            "lo",
            "cali9f",
            "flannel.1",
            "kube-ipvs0",
            "cni0",
        ] {
            assert!(res.iter().any(|r| r.is_match(name)), "{name}");
        }
        for name in ["eth0", "ens3", "bond0", "loop1", "br-ex"] {
            assert!(!res.iter().any(|r| r.is_match(name)), "{name}");
        }
    }

    #[test]
    fn bad_patterns_are_reported() {
        let err = compile_exclusions(&["(".to_string()]).unwrap_err();
        assert_eq!(err.pattern, "(");
    }
}
