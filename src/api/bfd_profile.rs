//! `BFDProfile` (v1beta1): Bidirectional Forwarding Detection timers shared by BGP peers.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// BFD settings that BGP peers refer to by name. Unset fields keep FRR's defaults
/// (300 ms intervals, multiplier 3, echo interval 50 ms, minimum TTL 254).
#[derive(
    CustomResource, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize,
)]
#[kube(
    group = "metallb.io",
    derive = "PartialEq",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    category = "metallb-all",
    printcolumn(
        name = "Passive Mode",
        type_ = "boolean",
        json_path = ".spec.passiveMode"
    ),
    printcolumn(
        name = "Transmit Interval",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive Interval",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Minimum interval, in milliseconds, at which this system can receive control packets
    /// (10 to 60000, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Minimum interval, in milliseconds and less jitter, at which this system sends control
    /// packets (10 to 60000, default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Lost packets tolerated before the session is declared down: the remote transmit interval
    /// times this value is the detection time (2 to 255, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Minimum interval, in milliseconds and less jitter, for sending and receiving echo packets
    /// (10 to 60000, default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Enables echo mode. Unless BFD is distributed it only works when the peer is FRR too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// A passive session waits for the peer's control packets before it replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Minimum TTL expected on incoming control packets; multi-hop sessions only
    /// (1 to 254, default 254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}
