//! A small client for FRR's `vtysh`: run one command with a timeout, and read the JSON status
//! commands the speaker needs into typed values.
//!
//! Every call is one `vtysh [-N pathspace] ...` process (about 25 ms on the lab VM). The JSON
//! shapes were captured from FRR 8.4.4 (`tests/fixtures/frr/`); every field is
//! `#[serde(default)]` and unknown keys are ignored, so newer FRR versions that add keys still
//! parse. State strings stay open-ended (`"Idle (Admin)"`), as FRR prints them.
//!
//! The parsers are plain functions over `&str` (`parse_*`), so they are tested on the fixtures
//! without FRR.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::{Deserialize, de::DeserializeOwned};
use tokio::process::Command;

/// Where `vtysh` lives on Debian and in the FRR images.
pub const DEFAULT_VTYSH: &str = "/usr/bin/vtysh";

/// Why a vtysh call failed.
#[derive(Debug, thiserror::Error)]
pub enum VtyshError {
    /// The process could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The process ran longer than the timeout and was killed.
    #[error("{what} timed out after {timeout:?}")]
    Timeout {
        /// The command line, shortened.
        what: String,
        /// The limit.
        timeout: Duration,
    },
    /// The process exited non-zero.
    #[error("{what} exited with {code:?}: {output}")]
    Failed {
        /// The command line, shortened.
        what: String,
        /// Exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// stderr and stdout, trimmed.
        output: String,
    },
    /// The output was not the JSON we expected.
    #[error("cannot parse the JSON of `{command}`: {source}")]
    Json {
        /// The vtysh command.
        command: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// FRR answered with a `{"warning": ...}` object instead of data.
    #[error("`{command}`: FRR says: {warning}")]
    Warning {
        /// The vtysh command.
        command: String,
        /// FRR's text, e.g. "View/Vrf is unknown".
        warning: String,
    },
}

/// The output of a finished process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// True when the process exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stderr then stdout, trimmed, for error messages.
    pub fn text(&self) -> String {
        let mut s = self.stderr.trim().to_string();
        if !self.stdout.trim().is_empty() {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(self.stdout.trim());
        }
        s
    }
}

/// Runs `program args...` with a timeout; the child is killed when the timeout expires.
pub async fn run_process(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<Output, VtyshError> {
    let what = describe(program, args);
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| VtyshError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(VtyshError::Timeout { what, timeout }),
        Ok(Err(source)) => Err(VtyshError::Spawn {
            program: program.display().to_string(),
            source,
        }),
        Ok(Ok(out)) => Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

fn describe(program: &Path, args: &[&str]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A vtysh bound to one FRR instance.
#[derive(Clone, Debug)]
pub struct Vtysh {
    binary: PathBuf,
    pathspace: Option<String>,
    timeout: Duration,
}

impl Vtysh {
    /// A client for the instance with this pathspace (`-N`), or the default instance.
    pub fn new(pathspace: Option<String>) -> Self {
        Self {
            binary: PathBuf::from(DEFAULT_VTYSH),
            pathspace,
            timeout: Duration::from_secs(30),
        }
    }

    /// Uses another vtysh binary.
    pub fn with_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Limits every call to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The pathspace, if any.
    pub fn pathspace(&self) -> Option<&str> {
        self.pathspace.as_deref()
    }

    /// The vtysh binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs vtysh with these arguments after `-N pathspace`; any exit code is returned.
    pub async fn raw(&self, args: &[&str]) -> Result<Output, VtyshError> {
        let mut full: Vec<&str> = Vec::with_capacity(args.len() + 2);
        if let Some(ns) = &self.pathspace {
            full.extend(["-N", ns.as_str()]);
        }
        full.extend_from_slice(args);
        run_process(&self.binary, &full, self.timeout).await
    }

    /// `vtysh -c CMD`; a non-zero exit is an error.
    pub async fn command(&self, cmd: &str) -> Result<String, VtyshError> {
        let out = self.raw(&["-c", cmd]).await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(VtyshError::Failed {
                what: format!("vtysh -c '{cmd}'"),
                code: out.code,
                output: out.text(),
            })
        }
    }

    /// `vtysh -c CMD` parsed as JSON.
    pub async fn json<T: DeserializeOwned>(&self, cmd: &str) -> Result<T, VtyshError> {
        let text = self.command(cmd).await?;
        parse_json(cmd, &text)
    }

    /// `show running-config` without vtysh's 4-line preamble (the text frr.conf would hold).
    pub async fn running_config(&self) -> Result<String, VtyshError> {
        Ok(strip_running_preamble(
            &self.command("show running-config").await?,
        ))
    }

    /// VRF names with a BGP instance (`show bgp vrf all json`; the default VRF is `default`).
    pub async fn bgp_vrfs(&self) -> Result<Vec<String>, VtyshError> {
        let cmd = "show bgp vrf all json";
        parse_bgp_vrfs(&self.command(cmd).await?).map_err(|source| VtyshError::Json {
            command: cmd.into(),
            source,
        })
    }

    /// BGP neighbors of a VRF by address (or interface name).
    pub async fn bgp_neighbors(
        &self,
        vrf: &str,
    ) -> Result<BTreeMap<String, BgpNeighbor>, VtyshError> {
        self.json(&format!("show bgp vrf {vrf} neighbors json"))
            .await
    }

    /// BFD sessions of a VRF.
    pub async fn bfd_peers(&self, vrf: &str) -> Result<Vec<BfdPeer>, VtyshError> {
        self.json(&format!("show bfd vrf {vrf} peers json")).await
    }

    /// BFD sessions of every VRF.
    pub async fn bfd_peers_all(&self) -> Result<Vec<BfdPeer>, VtyshError> {
        self.json("show bfd peers json").await
    }

    /// Packet and event counters of every BFD session (all VRFs).
    pub async fn bfd_counters(&self) -> Result<Vec<BfdPeerCounters>, VtyshError> {
        self.json("show bfd peers counters json").await
    }

    /// The BGP table of one VRF and address family.
    pub async fn bgp_routes(&self, vrf: &str, afi: Afi) -> Result<BgpTable, VtyshError> {
        let cmd = format!("show bgp vrf {vrf} {} unicast json", afi.as_str());
        let table: BgpTable = self.json(&cmd).await?;
        table.into_result(&cmd)
    }

    /// The detailed entry for one prefix (communities live only here, not in the table view).
    /// `Ok(None)` when the prefix is not in the table.
    pub async fn bgp_prefix(
        &self,
        vrf: &str,
        prefix: &str,
    ) -> Result<Option<BgpPrefix>, VtyshError> {
        let afi = if prefix.contains(':') {
            Afi::Ipv6
        } else {
            Afi::Ipv4
        };
        let cmd = format!("show bgp vrf {vrf} {} unicast {prefix} json", afi.as_str());
        parse_bgp_prefix(&self.command(&cmd).await?).map_err(|source| VtyshError::Json {
            command: cmd,
            source,
        })
    }
}

/// Address family of a unicast table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Afi {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Afi {
    /// The word vtysh uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        }
    }
}

/// Strips `Building configuration...`, the blank line, `Current configuration:` and `!`.
pub fn strip_running_preamble(text: &str) -> String {
    let mut lines = text.lines().peekable();
    for expected in [
        "Building configuration...",
        "",
        "Current configuration:",
        "!",
    ] {
        if lines.peek().map(|l| l.trim_end()) == Some(expected) {
            lines.next();
        }
    }
    let mut out = String::with_capacity(text.len());
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Parses JSON, turning FRR's `{"warning": "..."}` answers into [`VtyshError::Warning`].
pub fn parse_json<T: DeserializeOwned>(command: &str, text: &str) -> Result<T, VtyshError> {
    if let Ok(w) = serde_json::from_str::<WarningOnly>(text)
        && let Some(warning) = w.warning
    {
        return Err(VtyshError::Warning {
            command: command.into(),
            warning,
        });
    }
    serde_json::from_str(text).map_err(|source| VtyshError::Json {
        command: command.into(),
        source,
    })
}

#[derive(Deserialize)]
struct WarningOnly {
    warning: Option<String>,
}

/// The VRF names of `show bgp vrf all json` (its keys; the per-VRF contents are not reliable,
/// frr-reference §4).
pub fn parse_bgp_vrfs(text: &str) -> Result<Vec<String>, serde_json::Error> {
    let map: BTreeMap<String, serde::de::IgnoredAny> = serde_json::from_str(text)?;
    Ok(map.into_keys().collect())
}

/// Parses `show bgp vrf V neighbors json`.
pub fn parse_bgp_neighbors(text: &str) -> Result<BTreeMap<String, BgpNeighbor>, VtyshError> {
    parse_json("show bgp neighbors json", text)
}

/// Parses `show bfd vrf V peers json`.
pub fn parse_bfd_peers(text: &str) -> Result<Vec<BfdPeer>, VtyshError> {
    parse_json("show bfd peers json", text)
}

/// Parses `show bfd peers counters json`.
pub fn parse_bfd_counters(text: &str) -> Result<Vec<BfdPeerCounters>, VtyshError> {
    parse_json("show bfd peers counters json", text)
}

/// Parses `show bgp vrf V ipv4|ipv6 unicast json`.
pub fn parse_bgp_table(text: &str) -> Result<BgpTable, VtyshError> {
    let cmd = "show bgp unicast json";
    parse_json::<BgpTable>(cmd, text)?.into_result(cmd)
}

/// Parses `show bgp vrf V ipv4|ipv6 unicast PREFIX json`; `None` for the empty `{}` FRR prints
/// when the prefix is absent.
pub fn parse_bgp_prefix(text: &str) -> Result<Option<BgpPrefix>, serde_json::Error> {
    let p: BgpPrefix = serde_json::from_str(text)?;
    Ok(if p.prefix.is_empty() && p.paths.is_empty() {
        None
    } else {
        Some(p)
    })
}

// === JSON shapes ===

/// One neighbor of `show bgp neighbors json`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct BgpNeighbor {
    /// `Established`, `Active`, `Idle (Admin)`, ...
    pub bgp_state: String,
    /// Peer AS.
    pub remote_as: u32,
    /// Our AS towards this peer.
    pub local_as: u32,
    /// Peer router id.
    pub remote_router_id: String,
    /// Sessions established so far (a reset increments it).
    pub connections_established: u64,
    /// Sessions dropped so far.
    pub connections_dropped: u64,
    /// Milliseconds in the current state (uptime when established).
    pub bgp_timer_up_msec: u64,
    /// Unix time the session was established.
    pub bgp_timer_up_established_epoch: u64,
    /// Why the last session ended.
    pub last_reset_due_to: String,
    /// Per address family counters, keyed `ipv4Unicast`, `ipv6Unicast`, ...
    pub address_family_info: BTreeMap<String, AddressFamilyInfo>,
    /// BFD state of this neighbor, when BFD is on.
    pub peer_bfd_info: Option<PeerBfdInfo>,
    /// Messages sent and received on the session (reset with the session).
    pub message_stats: MessageStats,
}

/// `messageStats` of a neighbor: BGP messages by type.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct MessageStats {
    /// OPEN messages sent.
    pub opens_sent: u64,
    /// OPEN messages received.
    pub opens_recv: u64,
    /// NOTIFICATION messages sent.
    pub notifications_sent: u64,
    /// NOTIFICATION messages received.
    pub notifications_recv: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// UPDATE messages received.
    pub updates_recv: u64,
    /// KEEPALIVE messages sent.
    pub keepalives_sent: u64,
    /// KEEPALIVE messages received.
    pub keepalives_recv: u64,
    /// ROUTE-REFRESH messages sent.
    pub route_refresh_sent: u64,
    /// ROUTE-REFRESH messages received.
    pub route_refresh_recv: u64,
    /// All messages sent.
    pub total_sent: u64,
    /// All messages received.
    pub total_recv: u64,
}

impl BgpNeighbor {
    /// True when the session is up.
    pub fn is_established(&self) -> bool {
        self.bgp_state == "Established"
    }
}

/// Prefix counters of one address family of a neighbor.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct AddressFamilyInfo {
    /// Prefixes accepted from the peer.
    pub accepted_prefix_counter: u64,
    /// Prefixes sent to the peer.
    pub sent_prefix_counter: u64,
}

/// `peerBfdInfo` of a neighbor.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PeerBfdInfo {
    /// `single hop` or `multi hop`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Detect multiplier.
    pub detect_multiplier: u32,
    /// Receive interval, ms.
    pub rx_min_interval: u32,
    /// Transmit interval, ms.
    pub tx_min_interval: u32,
    /// `Up`, `Down`, `Admin Down`, `Unknown`.
    pub status: String,
    /// Time since the last change, `d:hh:mm:ss`.
    pub last_update: String,
}

/// One session of `show bfd peers json` (bfdd uses hyphenated keys and lower-case states).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
pub struct BfdPeer {
    /// Multi-hop session.
    pub multihop: bool,
    /// Peer address.
    pub peer: String,
    /// Local address.
    pub local: String,
    /// VRF name.
    pub vrf: String,
    /// Interface, for single-hop sessions.
    pub interface: String,
    /// `up`, `down`, `init`, `shutdown`, `unknown`.
    pub status: String,
    /// Seconds up (when up).
    pub uptime: Option<u64>,
    /// Seconds down (when down).
    pub downtime: Option<u64>,
    /// Local diagnostic.
    pub diagnostic: String,
    /// Passive mode.
    pub passive_mode: bool,
    /// Receive interval, ms.
    pub receive_interval: u32,
    /// Transmit interval, ms.
    pub transmit_interval: u32,
    /// Echo receive interval, ms.
    pub echo_receive_interval: u32,
    /// Echo transmit interval, ms.
    pub echo_transmit_interval: u32,
    /// Detect multiplier.
    pub detect_multiplier: u32,
    /// The peer's receive interval, ms.
    pub remote_receive_interval: u32,
    /// The peer's transmit interval, ms.
    pub remote_transmit_interval: u32,
    /// The peer's detect multiplier.
    pub remote_detect_multiplier: u32,
}

/// One session of `show bfd peers counters json`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
pub struct BfdPeerCounters {
    /// Peer address.
    pub peer: String,
    /// VRF name.
    pub vrf: String,
    /// Control packets received.
    pub control_packet_input: u64,
    /// Control packets sent.
    pub control_packet_output: u64,
    /// Echo packets received.
    pub echo_packet_input: u64,
    /// Echo packets sent.
    pub echo_packet_output: u64,
    /// Times the session went up.
    #[serde(rename = "session-up")]
    pub session_up_events: u64,
    /// Times the session went down.
    #[serde(rename = "session-down")]
    pub session_down_events: u64,
    /// Notifications to and from zebra about this session.
    pub zebra_notifications: u64,
}

impl BfdPeer {
    /// True when the session is up.
    pub fn is_up(&self) -> bool {
        self.status == "up"
    }
}

/// `show bgp vrf V ipv4|ipv6 unicast json`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct BgpTable {
    /// VRF name.
    pub vrf_name: String,
    /// Router id.
    pub router_id: String,
    /// Our AS.
    #[serde(rename = "localAS")]
    pub local_as: u32,
    /// Default local preference.
    pub default_loc_prf: u32,
    /// Paths by prefix (`198.51.100.10/32`).
    pub routes: BTreeMap<String, Vec<BgpPath>>,
    /// Set by FRR when there is no such instance or VRF.
    warning: Option<String>,
}

impl BgpTable {
    fn into_result(self, command: &str) -> Result<Self, VtyshError> {
        match self.warning {
            Some(warning) => Err(VtyshError::Warning {
                command: command.into(),
                warning,
            }),
            None => Ok(self),
        }
    }

    /// The best path of a prefix, if any.
    pub fn best(&self, prefix: &str) -> Option<&BgpPath> {
        self.routes.get(prefix)?.iter().find(|p| p.bestpath)
    }
}

/// One path in the table view.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct BgpPath {
    /// Valid.
    pub valid: bool,
    /// Selected as best.
    pub bestpath: bool,
    /// `external`, `internal`.
    pub path_from: String,
    /// Prefix length.
    pub prefix_len: u8,
    /// MED.
    pub metric: u32,
    /// LOCAL_PREF (absent for eBGP-learned paths without a policy that sets it).
    #[serde(rename = "locPrf")]
    pub loc_prf: Option<u32>,
    /// Weight (32768 for local routes).
    pub weight: u32,
    /// Peer the path came from (`(unspec)` for local routes).
    pub peer_id: String,
    /// AS path as text.
    pub path: String,
    /// `IGP`, `EGP`, `incomplete`.
    pub origin: String,
    /// Next hops.
    pub nexthops: Vec<Nexthop>,
}

impl BgpPath {
    /// The next-hop addresses.
    pub fn nexthop_ips(&self) -> impl Iterator<Item = &str> {
        self.nexthops.iter().map(|n| n.ip.as_str())
    }
}

/// A next hop of a path.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Nexthop {
    /// Address.
    pub ip: String,
    /// Peer hostname.
    pub hostname: String,
    /// `ipv4`, `ipv6`.
    pub afi: String,
    /// `global` or `link-local` (IPv6).
    pub scope: String,
    /// Used for forwarding.
    pub used: bool,
}

/// `show bgp vrf V ipv4|ipv6 unicast PREFIX json`: the detailed view, with communities.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct BgpPrefix {
    /// The prefix.
    pub prefix: String,
    /// Its paths.
    pub paths: Vec<BgpPrefixPath>,
}

impl BgpPrefix {
    /// The best path, if any.
    pub fn best(&self) -> Option<&BgpPrefixPath> {
        self.paths.iter().find(|p| p.bestpath.overall)
    }
}

/// One path in the detailed prefix view.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct BgpPrefixPath {
    /// AS path.
    pub aspath: AsPath,
    /// Origin.
    pub origin: String,
    /// MED.
    pub metric: u32,
    /// LOCAL_PREF.
    #[serde(rename = "locPrf")]
    pub loc_prf: Option<u32>,
    /// Valid.
    pub valid: bool,
    /// Best-path selection.
    pub bestpath: Bestpath,
    /// Standard communities (`string` is FRR's text: `64500:100 no-export`).
    pub community: Option<Communities>,
    /// Large communities.
    pub large_community: Option<Communities>,
    /// Next hops.
    pub nexthops: Vec<Nexthop>,
    /// Where the path came from.
    pub peer: PathPeer,
}

/// `aspath` of a detailed path.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AsPath {
    /// As text.
    pub string: String,
    /// Number of ASes.
    pub length: u32,
}

/// `bestpath` of a detailed path.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Bestpath {
    /// Selected as best.
    pub overall: bool,
    /// Why.
    pub selection_reason: String,
}

/// A community attribute in the detailed view.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Communities {
    /// FRR's text form, well-known values as names.
    pub string: String,
    /// One entry per value (well-known values in camelCase, `noExport`).
    pub list: Vec<String>,
}

/// `peer` of a detailed path.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PathPeer {
    /// Peer address.
    pub peer_id: String,
    /// Peer router id.
    pub router_id: String,
    /// `external`, `internal`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/frr/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn vrf_names_are_the_keys() {
        assert_eq!(
            parse_bgp_vrfs(&fixture("router-bgp-vrf-all.json")).unwrap(),
            ["default"]
        );
        assert!(parse_bgp_vrfs("{\n}\n").unwrap().is_empty());
    }

    #[test]
    fn neighbors_parse_with_counters_and_bfd() {
        let n = parse_bgp_neighbors(&fixture("router-bgp-neighbors.json")).unwrap();
        assert_eq!(
            n.keys().collect::<Vec<_>>(),
            ["10.77.0.11", "10.77.0.12", "fd00:77::11", "fd00:77::12"]
        );
        let up = &n["10.77.0.11"];
        assert!(up.is_established());
        assert_eq!((up.remote_as, up.local_as), (64500, 64501));
        assert_eq!(up.connections_established, 2);
        assert_eq!(up.connections_dropped, 1);
        assert!(up.bgp_timer_up_established_epoch > 1_700_000_000);
        assert_eq!(
            up.address_family_info["ipv4Unicast"].accepted_prefix_counter,
            2
        );
        assert_eq!(up.address_family_info["ipv4Unicast"].sent_prefix_counter, 1);
        let bfd = up.peer_bfd_info.as_ref().unwrap();
        assert_eq!(
            (bfd.kind.as_str(), bfd.status.as_str()),
            ("single hop", "Up")
        );
        assert_eq!(bfd.detect_multiplier, 3);
        let down = &n["10.77.0.12"];
        assert_eq!(down.bgp_state, "Active");
        assert_eq!(down.connections_established, 0);
    }

    #[test]
    fn empty_neighbor_list_parses() {
        assert!(parse_bgp_neighbors("{}").unwrap().is_empty());
    }

    #[test]
    fn bfd_counters_use_hyphenated_keys() {
        // The shape of FRR 8.4's `show bfd peers counters json`.
        let text = r#"[{"multihop":false,"peer":"10.77.0.1","local":"10.77.0.11","vrf":"default",
            "interface":"eth0","control-packet-input":52,"control-packet-output":55,
            "echo-packet-input":0,"echo-packet-output":0,"session-up":2,"session-down":1,
            "zebra-notifications":6}]"#;
        let counters = parse_bfd_counters(text).unwrap();
        assert_eq!(counters.len(), 1);
        let c = &counters[0];
        assert_eq!((c.peer.as_str(), c.vrf.as_str()), ("10.77.0.1", "default"));
        assert_eq!((c.control_packet_input, c.control_packet_output), (52, 55));
        assert_eq!((c.session_up_events, c.session_down_events), (2, 1));
        assert_eq!(c.zebra_notifications, 6);
    }

    #[test]
    fn neighbors_carry_message_stats() {
        let n = parse_bgp_neighbors(&fixture("node1-bgp-neighbors.json")).unwrap();
        let m = n["10.77.0.1"].message_stats;
        assert_eq!(
            (m.opens_sent, m.updates_sent, m.updates_recv, m.total_sent),
            (2, 3, 2, 8)
        );
    }

    #[test]
    fn bfd_peers_use_hyphenated_keys() {
        let peers = parse_bfd_peers(&fixture("router-bfd-peers.json")).unwrap();
        assert_eq!(peers.len(), 4);
        let down = peers.iter().find(|p| p.peer == "10.77.0.12").unwrap();
        assert!(!down.is_up());
        assert!(down.downtime.is_some());
        let v4 = peers.iter().find(|p| p.peer == "10.77.0.11").unwrap();
        assert!(v4.is_up());
        assert!(!v4.multihop);
        assert_eq!(v4.interface, "eth0");
        assert_eq!((v4.receive_interval, v4.transmit_interval), (300, 300));
        assert_eq!(v4.detect_multiplier, 3);
        assert_eq!(v4.remote_detect_multiplier, 3);
        assert!(v4.uptime.is_some());
        assert!(parse_bfd_peers("[\n]\n").unwrap().is_empty());
    }

    #[test]
    fn table_has_routes_with_nexthops() {
        let t = parse_bgp_table(&fixture("router-bgp-ipv4-unicast.json")).unwrap();
        assert_eq!((t.vrf_name.as_str(), t.local_as), ("default", 64501));
        let best = t.best("198.51.100.11/32").unwrap();
        assert_eq!(best.nexthop_ips().collect::<Vec<_>>(), ["10.77.0.11"]);
        assert_eq!(best.path, "64500");
        assert_eq!(best.loc_prf, None);
        let t = parse_bgp_table(&fixture("router-bgp-ipv4-unicast-locprf.json")).unwrap();
        assert_eq!(t.best("198.51.100.10/32").unwrap().loc_prf, Some(250));
        let t6 = parse_bgp_table(&fixture("router-bgp-ipv6-unicast.json")).unwrap();
        let p = t6.best("2001:db8::10/128").unwrap();
        assert_eq!(
            p.nexthop_ips().collect::<Vec<_>>(),
            ["fd00:77::11", "fe80::77:ff:fe00:b"]
        );
        assert_eq!(p.nexthops[1].scope, "link-local");
        let local = parse_bgp_table(&fixture("node1-bgp-ipv4-unicast.json")).unwrap();
        let p = local.best("198.51.100.10/32").unwrap();
        assert_eq!((p.weight, p.peer_id.as_str()), (32768, "(unspec)"));
    }

    #[test]
    fn missing_instance_or_vrf_is_a_warning() {
        for f in [
            "no-instance-ipv4-unicast.json",
            "unknown-vrf-ipv4-unicast.json",
        ] {
            match parse_bgp_table(&fixture(f)) {
                Err(VtyshError::Warning { warning, .. }) => assert!(!warning.is_empty()),
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn prefix_detail_has_communities_and_local_pref() {
        let p = parse_bgp_prefix(&fixture("router-bgp-ipv4-prefix.json"))
            .unwrap()
            .unwrap();
        assert_eq!(p.prefix, "198.51.100.11/32");
        let best = p.best().unwrap();
        assert_eq!(
            best.community.as_ref().unwrap().string,
            "64500:100 no-export"
        );
        assert_eq!(
            best.community.as_ref().unwrap().list,
            ["64500:100", "noExport"]
        );
        assert_eq!(best.large_community.as_ref().unwrap().string, "64500:1:2");
        assert_eq!(best.loc_prf, Some(250));
        assert_eq!(best.aspath.string, "64500");
        assert_eq!(best.peer.peer_id, "10.77.0.11");
        assert_eq!(best.nexthops[0].ip, "10.77.0.11");
        assert_eq!(parse_bgp_prefix("{}").unwrap(), None);
    }

    #[test]
    fn running_config_preamble_is_stripped() {
        let text =
            "Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\n!\nend\n";
        assert_eq!(strip_running_preamble(text), "frr version 8.4.4\n!\nend\n");
    }
}
