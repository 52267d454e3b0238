//! `BGPPeer` (v1beta1 as documented for OpenShift 4.10, and v1beta2, the stored version): a BGP
//! router the speakers open sessions with.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::LabelSelector;

/// A Go duration such as `3s`, `1m` or `5m30s`.
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// `metallb.io/v1beta1` BGPPeer, with the fields of the OpenShift 4.10 documentation.
pub mod v1beta1 {
    use super::*;

    /// A BGP router that speakers on the selected nodes peer with.
    #[derive(
        CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
    )]
    #[kube(
        group = "metallb.io",
        derive = "PartialEq",
        version = "v1beta1",
        kind = "BGPPeer",
        plural = "bgppeers",
        namespaced,
        category = "metallb-all",
        printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
        printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
        printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
        printcolumn(
            name = "Multi Hops",
            type_ = "boolean",
            json_path = ".spec.ebgpMultiHop"
        )
    )]
    #[x_kube(validation = Rule::new("!has(self.keepaliveTime) || has(self.holdTime)").message("keepaliveTime requires holdTime"))]
    #[x_kube(validation = Rule::new("!has(self.ebgpMultiHop) || !self.ebgpMultiHop || self.myASN != self.peerASN").message("ebgpMultiHop is only valid for an eBGP peer (myASN differs from peerASN)"))]
    pub struct BGPPeerSpec {
        /// AS number of the speakers' end of the session. Every BGPPeer uses the same one.
        #[serde(rename = "myASN")]
        pub my_asn: u32,
        /// AS number of the peer.
        #[serde(rename = "peerASN")]
        pub peer_asn: u32,
        /// Address of the peer.
        #[serde(rename = "peerAddress")]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IP_RULE).message("must be an IPv4 or IPv6 address"))]
        pub peer_address: String,
        /// Source address of the session.
        #[serde(
            rename = "sourceAddress",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IP_RULE).message("must be an IPv4 or IPv6 address"))]
        pub source_address: Option<String>,
        /// TCP port of the peer (default 179).
        #[serde(rename = "peerPort", default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0, max = 16384))]
        pub peer_port: Option<u16>,
        /// Hold time proposed to the peer, as a duration: 0 or at least `3s`.
        #[serde(rename = "holdTime", default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub hold_time: Option<String>,
        /// Interval between keepalives; needs `holdTime` and must not exceed it.
        #[serde(
            rename = "keepaliveTime",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub keepalive_time: Option<String>,
        /// BGP router ID to advertise; every BGPPeer on a node uses the same one.
        #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IPV4_RULE).message("must be an IPv4 address"))]
        pub router_id: Option<String>,
        /// TCP MD5 password of the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
        /// Name of a BFDProfile to run BFD with.
        #[serde(
            rename = "bfdProfile",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub bfd_profile: Option<String>,
        /// Nodes whose speakers open this session; empty means every node.
        #[serde(
            rename = "nodeSelectors",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        pub node_selectors: Vec<LabelSelector>,
        /// The peer is more than one hop away (eBGP only).
        #[serde(
            rename = "ebgpMultiHop",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub ebgp_multi_hop: Option<bool>,
    }
}

/// `metallb.io/v1beta2` BGPPeer, the stored version.
pub mod v1beta2 {
    use super::*;

    /// Which ASN the peer has when it is not given as a number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum DynamicAsn {
        /// The same ASN as ours (iBGP).
        Internal,
        /// Any ASN other than ours (eBGP).
        External,
    }

    /// A reference to the Secret holding the session password.
    #[derive(schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct SecretReference {
        /// Name of a `kubernetes.io/basic-auth` Secret with a `password` key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Its namespace; it must be MetalLB's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespace: Option<String>,
    }

    /// A BGP router that speakers on the selected nodes peer with.
    #[derive(
        CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
    )]
    #[kube(
        group = "metallb.io",
        derive = "PartialEq",
        version = "v1beta2",
        kind = "BGPPeer",
        plural = "bgppeers",
        namespaced,
        category = "metallb-all",
        printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
        printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
        printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
        printcolumn(
            name = "Multi Hops",
            type_ = "boolean",
            json_path = ".spec.ebgpMultiHop"
        )
    )]
    #[x_kube(validation = Rule::new("has(self.peerASN) != has(self.dynamicASN)").message("exactly one of peerASN and dynamicASN must be set"))]
    #[x_kube(validation = Rule::new("has(self.peerAddress) != has(self.interface)").message("exactly one of peerAddress and interface must be set"))]
    #[x_kube(validation = Rule::new("!has(self.password) || !has(self.passwordSecret)").message("password and passwordSecret cannot both be set"))]
    #[x_kube(validation = Rule::new("!has(self.ebgpMultiHop) || !self.ebgpMultiHop || (has(self.peerASN) ? self.peerASN != self.myASN : self.dynamicASN == 'external')").message("ebgpMultiHop is only valid for an eBGP peer"))]
    pub struct BGPPeerSpec {
        /// AS number of the speakers' end of the session.
        #[serde(rename = "myASN")]
        pub my_asn: u32,
        /// AS number of the peer; exclusive with `dynamicASN`.
        #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
        pub peer_asn: Option<u32>,
        /// `internal` or `external` instead of a number; exclusive with `peerASN`.
        #[serde(
            rename = "dynamicASN",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub dynamic_asn: Option<DynamicAsn>,
        /// AS number presented to this peer instead of `myASN` (eBGP only).
        #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
        pub local_asn: Option<u32>,
        /// Address of the peer; exclusive with `interface`.
        #[serde(
            rename = "peerAddress",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IP_RULE).message("must be an IPv4 or IPv6 address"))]
        pub peer_address: Option<String>,
        /// Interface for an unnumbered session; exclusive with `peerAddress`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interface: Option<String>,
        /// Source address of the session.
        #[serde(
            rename = "sourceAddress",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IP_RULE).message("must be an IPv4 or IPv6 address"))]
        pub source_address: Option<String>,
        /// TCP port of the peer (default 179).
        #[serde(rename = "peerPort", default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0, max = 16384))]
        pub peer_port: Option<u16>,
        /// Hold time proposed to the peer: 0 or at least `3s`. With only `keepaliveTime` set it
        /// is three keepalives.
        #[serde(rename = "holdTime", default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub hold_time: Option<String>,
        /// Interval between keepalives, at most the hold time; with only `holdTime` set it is a
        /// third of it.
        #[serde(
            rename = "keepaliveTime",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub keepalive_time: Option<String>,
        /// Time between connection attempts (whole seconds, 1s to 65535s).
        #[serde(
            rename = "connectTime",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub connect_time: Option<String>,
        /// BGP router ID to advertise; peers that share a node use the same one.
        #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 64))]
        #[x_kube(validation = Rule::new(super::super::IPV4_RULE).message("must be an IPv4 address"))]
        pub router_id: Option<String>,
        /// TCP MD5 password of the session; exclusive with `passwordSecret`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
        /// Secret holding the TCP MD5 password; exclusive with `password`.
        #[serde(
            rename = "passwordSecret",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub password_secret: Option<SecretReference>,
        /// Name of a BFDProfile to run BFD with.
        #[serde(
            rename = "bfdProfile",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub bfd_profile: Option<String>,
        /// Enables BGP graceful restart; cannot be changed after creation.
        #[serde(
            rename = "enableGracefulRestart",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[x_kube(validation = Rule::new("self == oldSelf").message("enableGracefulRestart cannot be changed after creation"))]
        pub enable_graceful_restart: Option<bool>,
        /// Nodes whose speakers open this session; empty means every node.
        #[serde(
            rename = "nodeSelectors",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        pub node_selectors: Vec<LabelSelector>,
        /// The peer is more than one hop away (eBGP only).
        #[serde(
            rename = "ebgpMultiHop",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub ebgp_multi_hop: Option<bool>,
        /// VRF the session lives in; empty means the default VRF.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vrf: Option<String>,
        /// Deprecated and ignored: IPv4 and IPv6 are negotiated on their own sessions unless
        /// `dualStackAddressFamily` is set.
        #[serde(rename = "disableMP", default, skip_serializing_if = "Option::is_none")]
        pub disable_mp: Option<bool>,
        /// Announce both IPv4 and IPv6 prefixes over this one session.
        #[serde(
            rename = "dualStackAddressFamily",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub dual_stack_address_family: Option<bool>,
    }
}
