//! The `metallb.io` API: every custom resource kind an admin applies, as Rust types.
//!
//! Each kind lives in its own file with one module per served version. The types are the single
//! source of truth for the CRD YAML (`metallb crd`, checked in under `deploy/crds/`): field docs
//! become schema descriptions, and rules that need no other object are expressed in the schema
//! (OpenAPI ranges and patterns, CEL `x-kubernetes-validations`) so that a cluster rejects simple
//! mistakes even when no webhook is reachable. Cross-object rules live in [`crate::config`].

// kube's `printcolumn(name = .., type_ = .., json_path = ..)` repeats keys across columns by
// design; clippy's `duplicated_attributes` (1.95) mistakes each repeated `type_` for a duplicate.
#![allow(clippy::duplicated_attributes)]

pub mod address_pool;
pub mod bfd_profile;
pub mod bgp_advertisement;
pub mod bgp_peer;
pub mod community;
pub mod configuration_state;
pub mod conversion;
pub mod crd;
pub mod ip_address_pool;
pub mod l2_advertisement;
pub mod labels;
pub mod metallb;
pub mod service_bgp_status;
pub mod service_l2_status;

/// The API group of every MetalLB resource.
pub const GROUP: &str = "metallb.io";

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// An IPv4 address in dotted-quad form without leading zeros (what Kubernetes' `isIP` takes).
macro_rules! ipv4_re {
    () => {
        "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])[.]){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    };
}

/// An IPv6 address: eight groups, `::` compression, or an embedded IPv4 tail.
macro_rules! ipv6_re {
    () => {
        concat!(
            "(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
            "|([0-9a-fA-F]{1,4}:){1,7}:",
            "|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
            "|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}",
            "|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
            "|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}",
            "|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
            "|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}",
            "|:((:[0-9a-fA-F]{1,4}){1,7}|:)",
            "|([0-9a-fA-F]{1,4}:){6}",
            ipv4_re!(),
            "|([0-9a-fA-F]{1,4}:){1,5}:",
            ipv4_re!(),
            "|([0-9a-fA-F]{1,4}:)(:[0-9a-fA-F]{1,4}){1,4}:",
            ipv4_re!(),
            "|([0-9a-fA-F]{1,4}:){2}(:[0-9a-fA-F]{1,4}){1,3}:",
            ipv4_re!(),
            "|([0-9a-fA-F]{1,4}:){3}(:[0-9a-fA-F]{1,4}){1,2}:",
            ipv4_re!(),
            "|([0-9a-fA-F]{1,4}:){4}(:[0-9a-fA-F]{1,4}):",
            ipv4_re!(),
            "|::([0-9a-fA-F]{1,4}:){0,5}",
            ipv4_re!(),
            ")"
        )
    };
}

/// CEL rule: an IPv4 or IPv6 address. A regular expression rather than CEL's `isIP`, which
/// only Kubernetes 1.31+ knows: `matches` works on every version with CEL rules (1.25+).
pub(crate) const IP_RULE: &str = concat!("self.matches('^(", ipv4_re!(), "|", ipv6_re!(), ")$')");

/// CEL rule: an IPv4 address (see [`IP_RULE`]).
pub(crate) const IPV4_RULE: &str = concat!("self.matches('^", ipv4_re!(), "$')");

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The regular expression inside a `self.matches('...')` rule.
    fn regex(rule: &str) -> regex::Regex {
        let inner = rule
            .strip_prefix("self.matches('")
            .and_then(|r| r.strip_suffix("')"))
            .unwrap();
        regex::Regex::new(inner).unwrap()
    }

    proptest! {
        #[test]
        fn the_ip_rules_accept_what_rust_formats(v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), mapped in any::<[u8; 4]>()) {
            let ip = regex(super::IP_RULE);
            let ipv4 = regex(super::IPV4_RULE);
            let v4 = std::net::Ipv4Addr::from(v4).to_string();
            let v6 = std::net::Ipv6Addr::from(v6).to_string();
            let mapped = std::net::Ipv4Addr::from(mapped).to_ipv6_mapped().to_string();
            prop_assert!(ip.is_match(&v4), "{}", v4);
            prop_assert!(ipv4.is_match(&v4), "{}", v4);
            prop_assert!(ip.is_match(&v6), "{}", v6);
            prop_assert!(!ipv4.is_match(&v6), "{}", v6);
            prop_assert!(ip.is_match(&mapped), "{}", mapped);
        }

        #[test]
        fn the_ip_rules_refuse_what_rust_does_not_parse(text in "[0-9a-f:.]{1,20}") {
            let parses = text.parse::<std::net::IpAddr>().is_ok();
            prop_assert_eq!(regex(super::IP_RULE).is_match(&text), parses, "{}", text);
        }
    }

    #[test]
    fn leading_zeros_zones_and_cidrs_are_refused() {
        let ip = regex(super::IP_RULE);
        for bad in [
            "010.0.0.1",
            "10.0.0.256",
            "fe80::1%eth0",
            "10.0.0.0/24",
            "1::2::3",
            "",
            "1.2.3",
        ] {
            assert!(!ip.is_match(bad), "{bad}");
        }
        for good in [
            "::",
            "::1",
            "fe80::1",
            "64:ff9b::192.0.2.1",
            "1:2:3:4:5:6:1.2.3.4",
            "0.0.0.0",
            "1:2::3:1.2.3.4",
        ] {
            assert!(ip.is_match(good), "{good}");
        }
    }
}
