//! The client behind `metallb status`: asks the controller (and the speakers it is given) and
//! joins their answers into one, as text or JSON.
//!
//! The addresses come from flags (`--controller-addr`, `--speaker-addr NODE=HOST:PORT`) or
//! from the API server ([`super::discover`]). Every call carries the kubeconfig's bearer token
//! when there is one: off loopback the servers have the apiserver authorize it.

use std::time::Duration;

use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::proto::{
    self, AllocationState, controller_client::ControllerClient, speaker_client::SpeakerClient,
};

/// Why `metallb status` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a valid endpoint.
    #[error("{addr}: not a valid address: {source}")]
    Address {
        /// The address given.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// Nothing answered at the address.
    #[error("cannot reach the {what} status API at {addr}: {source}")]
    Connect {
        /// `controller` or `speaker NODE`.
        what: String,
        /// The address.
        addr: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The call failed.
    #[error("{what}: {}", .source.message())]
    Call {
        /// The call.
        what: String,
        /// The gRPC status.
        source: tonic::Status,
    },
}

fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(url)
        .map_err(|source| ClientError::Address {
            addr: addr.to_string(),
            source,
        })?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10)))
}

async fn channel(what: &str, addr: &str) -> Result<Channel, ClientError> {
    endpoint(addr)?
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            what: what.to_string(),
            addr: addr.to_string(),
            source,
        })
}

/// A speaker to ask: its node and address.
#[derive(Clone, Debug)]
pub struct SpeakerAddr {
    /// The node the speaker runs on.
    pub node: String,
    /// `host:port` or a URL.
    pub addr: String,
}

/// Connections to the controller and the speakers.
pub struct Clients {
    controller: Option<ControllerClient<Channel>>,
    speakers: Vec<(String, SpeakerClient<Channel>)>,
    /// `Bearer <token>`, sent with every call.
    authorization: Option<tonic::metadata::AsciiMetadataValue>,
}

impl Clients {
    /// Connects to the controller at `controller` (if given; it must answer) and, lazily, to
    /// every speaker (one that does not answer is reported, not fatal). `token` is sent as a
    /// bearer token with every call.
    pub async fn connect(
        controller: Option<&str>,
        speakers: &[SpeakerAddr],
        token: Option<&str>,
    ) -> Result<Self, ClientError> {
        let controller = match controller {
            Some(addr) => Some(ControllerClient::new(channel("controller", addr).await?)),
            None => None,
        };
        let mut clients = Vec::new();
        for s in speakers {
            clients.push((
                s.node.clone(),
                SpeakerClient::new(endpoint(&s.addr)?.connect_lazy()),
            ));
        }
        let authorization = token.and_then(|t| format!("Bearer {t}").parse().ok());
        Ok(Clients {
            controller,
            speakers: clients,
            authorization,
        })
    }

    /// `message` as a request carrying the bearer token.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    fn controller(&self) -> Result<ControllerClient<Channel>, ClientError> {
        self.controller.clone().ok_or_else(|| ClientError::Call {
            what: "controller".into(),
            source: tonic::Status::failed_precondition("no controller address given"),
        })
    }

    /// Every speaker's node state, asked at once, in the order given; the speakers that did
    /// not answer, with why.
    pub async fn nodes(&self) -> (Vec<proto::NodeStatus>, Vec<String>) {
        let calls = self.speakers.iter().map(|(node, client)| {
            let mut client = client.clone();
            let request = self.request(proto::GetNodeRequest {});
            async move {
                client
                    .get_node(request)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|e| format!("{node}: {}", e.message()))
            }
        });
        let mut nodes = Vec::new();
        let mut failed = Vec::new();
        for answer in futures::future::join_all(calls).await {
            match answer {
                Ok(status) => nodes.push(status),
                Err(e) => failed.push(e),
            }
        }
        (nodes, failed)
    }

    /// Every pool's usage.
    pub async fn pools(&self) -> Result<Vec<proto::PoolUsage>, ClientError> {
        Ok(self
            .controller()?
            .list_pools(self.request(proto::ListPoolsRequest {}))
            .await
            .map_err(|source| ClientError::Call {
                what: "controller: ListPools".into(),
                source,
            })?
            .into_inner()
            .pools)
    }

    /// One Service's answer: allocation, pool usage and, from the speakers, who advertises it.
    pub async fn service(&self, namespace: &str, name: &str) -> Result<ServiceAnswer, ClientError> {
        let allocation = self
            .controller()?
            .get_service(self.request(proto::GetServiceRequest {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }))
            .await
            .map_err(|source| ClientError::Call {
                what: format!("Service {namespace}/{name}"),
                source,
            })?
            .into_inner();
        let (pools, (nodes, unreachable)) = futures::join!(self.pools(), self.nodes());
        let mut answer = ServiceAnswer::join(&allocation, &pools?, &nodes);
        if !unreachable.is_empty() {
            answer.summary = format!(
                "{} (no answer from {})",
                answer.summary,
                unreachable.join("; ")
            );
            answer.unreachable = unreachable;
        }
        Ok(answer)
    }

    /// Every speaker's BGP sessions; fails when no speaker answered.
    pub async fn peers(&self) -> Result<Vec<PeerAnswer>, ClientError> {
        let (nodes, unreachable) = self.nodes().await;
        for failure in &unreachable {
            tracing::warn!(speaker = %failure, "no answer");
        }
        if nodes.is_empty() && !unreachable.is_empty() {
            return Err(ClientError::Call {
                what: "speakers".into(),
                source: tonic::Status::unavailable(unreachable.join("; ")),
            });
        }
        Ok(nodes
            .iter()
            .flat_map(|n| {
                n.bgp.iter().map(|s| PeerAnswer {
                    node: n.node.clone(),
                    peer: s.peer.clone(),
                    vrf: s.vrf.clone(),
                    state: s.state_text.clone(),
                    uptime_seconds: s.uptime_seconds,
                    last_error: s.last_error.clone(),
                    prefixes_sent: s.prefixes_sent,
                    prefixes_received: s.prefixes_received,
                    bfd: s.bfd_status.clone(),
                })
            })
            .collect())
    }
}

/// Usage of one pool, flattened for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolAnswer {
    /// Pool name.
    pub name: String,
    /// Addresses in use, both families.
    pub used: u64,
    /// Addresses the pool has, both families.
    pub total: u64,
    /// Services holding an address of the pool.
    pub services: u64,
}

impl PoolAnswer {
    /// From the controller's answer.
    pub fn from_proto(pool: &proto::PoolUsage) -> Self {
        let (v4, v6) = (pool.ipv4.unwrap_or_default(), pool.ipv6.unwrap_or_default());
        PoolAnswer {
            name: pool.name.clone(),
            used: v4.assigned.saturating_add(v6.assigned),
            total: v4.total.saturating_add(v6.total),
            services: pool.services,
        }
    }

    /// `tiny (2/2 used)`.
    pub fn text(&self) -> String {
        format!("{} ({}/{} used)", self.name, self.used, self.total)
    }
}

/// One BGP session of one node, flattened for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerAnswer {
    /// Node of the speaker.
    pub node: String,
    /// Neighbor.
    pub peer: String,
    /// VRF.
    pub vrf: String,
    /// FRR's state word.
    pub state: String,
    /// Seconds established.
    pub uptime_seconds: u64,
    /// Why it last went down.
    pub last_error: String,
    /// Prefixes sent.
    pub prefixes_sent: u64,
    /// Prefixes received.
    pub prefixes_received: u64,
    /// BFD status, empty without BFD.
    pub bfd: String,
}

/// One node advertising an address to one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Advertised {
    /// The node.
    pub node: String,
    /// The peer FRR advertised the prefix to.
    pub peer: String,
    /// The session's state word.
    pub session: String,
    /// Seconds the session has been established.
    pub uptime_seconds: u64,
}

/// One node answering ARP/NDP for an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L2Owner {
    /// The node.
    pub node: String,
    /// The address.
    pub address: String,
    /// The interface.
    pub interface: String,
    /// Unix time the node took the address.
    pub since_unix: u64,
}

/// The joined answer of `metallb status service`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceAnswer {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `allocated` or `pending`.
    pub state: String,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Pool of the addresses.
    pub pool: String,
    /// Why pending.
    pub reason: String,
    /// Usage of the pools that matter: the Service's, or those its failure names (else all).
    pub pools: Vec<PoolAnswer>,
    /// Who advertises the addresses over BGP (only from the speakers asked).
    pub bgp: Vec<Advertised>,
    /// Which nodes answer ARP/NDP for the addresses, on which interfaces.
    pub layer2: Vec<L2Owner>,
    /// BGP sessions of the nodes asked that are not established (why an address may not be
    /// advertised).
    pub sessions_down: Vec<Advertised>,
    /// Speakers that answered.
    pub nodes_asked: Vec<String>,
    /// Speakers that did not answer, with why.
    pub unreachable: Vec<String>,
    /// The one-line answer.
    pub summary: String,
}

impl ServiceAnswer {
    /// Joins the controller's allocation, the pools' usage and the speakers' advertisements.
    pub fn join(
        allocation: &proto::ServiceAllocation,
        pools: &[proto::PoolUsage],
        nodes: &[proto::NodeStatus],
    ) -> Self {
        let pools: Vec<PoolAnswer> = pools.iter().map(PoolAnswer::from_proto).collect();
        let allocated = allocation.state() == AllocationState::Allocated;
        let relevant: Vec<PoolAnswer> = if allocated {
            pools
                .iter()
                .filter(|p| p.name == allocation.pool)
                .cloned()
                .collect()
        } else {
            let named: Vec<PoolAnswer> = pools
                .iter()
                .filter(|p| allocation.reason.contains(&format!("\"{}\"", p.name)))
                .cloned()
                .collect();
            if named.is_empty() { pools } else { named }
        };
        let mut bgp = Vec::new();
        for node in nodes {
            for address in &allocation.addresses {
                let Ok(ip) = address.parse::<std::net::IpAddr>() else {
                    continue;
                };
                for adv in node.advertisements.iter().filter(|a| {
                    a.prefix
                        .parse::<ipnet::IpNet>()
                        .is_ok_and(|net| net.contains(&ip))
                }) {
                    for peer in &adv.advertised_to {
                        let session = node
                            .bgp
                            .iter()
                            .find(|s| &s.peer == peer && s.vrf == adv.vrf);
                        bgp.push(Advertised {
                            node: node.node.clone(),
                            peer: peer.clone(),
                            session: session.map(|s| s.state_text.clone()).unwrap_or_default(),
                            uptime_seconds: session.map_or(0, |s| s.uptime_seconds),
                        });
                    }
                }
            }
        }
        let layer2: Vec<L2Owner> = nodes
            .iter()
            .flat_map(|n| {
                n.layer2
                    .iter()
                    .filter(|o| o.namespace == allocation.namespace && o.name == allocation.name)
                    .map(|o| L2Owner {
                        node: n.node.clone(),
                        address: o.address.clone(),
                        interface: o.interface.clone(),
                        since_unix: o.since_unix,
                    })
            })
            .collect();
        let sessions_down: Vec<Advertised> = nodes
            .iter()
            .flat_map(|n| {
                n.bgp
                    .iter()
                    .filter(|s| s.state() != proto::BgpState::Established)
                    .map(|s| Advertised {
                        node: n.node.clone(),
                        peer: s.peer.clone(),
                        session: s.state_text.clone(),
                        uptime_seconds: 0,
                    })
            })
            .collect();
        let nodes_asked: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
        let summary = if allocated {
            allocated_summary(allocation, &nodes_asked, &bgp, &layer2, &sessions_down)
        } else {
            // The event's "Failed to allocate IP for "ns/name": " prefix repeats the question.
            let event_prefix = format!(
                "Failed to allocate IP for \"{}/{}\": ",
                allocation.namespace, allocation.name
            );
            let reason = allocation
                .reason
                .strip_prefix(&event_prefix)
                .unwrap_or(&allocation.reason);
            let usage: Vec<String> = relevant.iter().map(PoolAnswer::text).collect();
            if usage.is_empty() {
                format!("pending: {reason}")
            } else {
                format!("pending: {reason}; pools: {}", usage.join(", "))
            }
        };
        ServiceAnswer {
            namespace: allocation.namespace.clone(),
            name: allocation.name.clone(),
            state: if allocated { "allocated" } else { "pending" }.into(),
            addresses: allocation.addresses.clone(),
            pool: allocation.pool.clone(),
            reason: allocation.reason.clone(),
            pools: relevant,
            bgp,
            layer2,
            sessions_down,
            nodes_asked,
            unreachable: Vec::new(),
            summary,
        }
    }
}

/// "ADDRESSES from pool P; BGP: ...; layer 2: ...", or "..., but no node announces it".
fn allocated_summary(
    allocation: &proto::ServiceAllocation,
    nodes_asked: &[String],
    bgp: &[Advertised],
    layer2: &[L2Owner],
    sessions_down: &[Advertised],
) -> String {
    let head = format!(
        "{} from pool {}",
        allocation.addresses.join(", "),
        allocation.pool
    );
    if nodes_asked.is_empty() {
        return format!("{head}; announcements: not asked (no speaker found or given)");
    }
    let down = if sessions_down.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = sessions_down
            .iter()
            .map(|s| format!("{} to {} ({})", s.node, s.peer, s.session))
            .collect();
        format!("; sessions down: {}", parts.join(", "))
    };
    if bgp.is_empty() && layer2.is_empty() {
        return format!(
            "{head}, but no node announces it (asked {}){down}",
            nodes_asked.join(", ")
        );
    }
    let bgp_text = if bgp.is_empty() {
        "BGP: none".to_string()
    } else {
        let parts: Vec<String> = bgp
            .iter()
            .map(|a| {
                let session = if a.session.is_empty() {
                    String::new()
                } else if a.uptime_seconds > 0 {
                    format!(" ({} {})", a.session, human_duration(a.uptime_seconds))
                } else {
                    format!(" ({})", a.session)
                };
                format!("by {} to {}{session}", a.node, a.peer)
            })
            .collect();
        format!("BGP: advertised {}", parts.join(" and "))
    };
    let l2_text = if layer2.is_empty() {
        "layer 2: none".to_string()
    } else {
        let parts: Vec<String> = layer2
            .iter()
            .map(|o| format!("{} on {} by node {}", o.address, o.interface, o.node))
            .collect();
        format!("layer 2: owned: {}", parts.join(", "))
    };
    format!("{head}; {bgp_text}; {l2_text}{down}")
}

/// `3h`, `5m`, `42s`, `2d`: the largest unit, as kubectl prints ages.
pub fn human_duration(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, assigned: u64, total: u64) -> proto::PoolUsage {
        proto::PoolUsage {
            name: name.into(),
            ipv4: Some(proto::FamilyUsage {
                total,
                assigned,
                available: total - assigned,
            }),
            ipv6: Some(proto::FamilyUsage::default()),
            services: assigned,
        }
    }

    fn allocated() -> proto::ServiceAllocation {
        let mut a = proto::ServiceAllocation {
            namespace: "default".into(),
            name: "web".into(),
            addresses: vec!["203.0.113.5".into()],
            pool: "web".into(),
            ..Default::default()
        };
        a.set_state(AllocationState::Allocated);
        a
    }

    fn node(name: &str, state: &str, uptime: u64) -> proto::NodeStatus {
        let mut status = node_unset(name, state, uptime);
        status.bgp[0].set_state(if state == "Established" {
            proto::BgpState::Established
        } else {
            proto::BgpState::Active
        });
        status
    }

    fn node_unset(name: &str, state: &str, uptime: u64) -> proto::NodeStatus {
        proto::NodeStatus {
            node: name.into(),
            bgp: vec![proto::BgpSession {
                peer: "10.77.0.1".into(),
                vrf: "default".into(),
                state_text: state.into(),
                uptime_seconds: uptime,
                ..Default::default()
            }],
            advertisements: vec![proto::BgpAdvertisement {
                prefix: "203.0.113.5/32".into(),
                vrf: "default".into(),
                advertised_to: vec!["10.77.0.1".into()],
                best_path: true,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn pending_names_the_full_pool_and_its_usage() {
        let mut a = proto::ServiceAllocation {
            namespace: "default".into(),
            name: "db".into(),
            reason: "no available IPs in pool \"tiny\"".into(),
            ..Default::default()
        };
        a.set_state(AllocationState::Pending);
        let answer = ServiceAnswer::join(&a, &[pool("tiny", 2, 2), pool("web", 1, 10)], &[]);
        assert_eq!(
            answer.summary,
            "pending: no available IPs in pool \"tiny\"; pools: tiny (2/2 used)"
        );
        assert_eq!(answer.state, "pending");
    }

    #[test]
    fn pending_without_a_named_pool_shows_every_pool() {
        let mut a = proto::ServiceAllocation {
            namespace: "default".into(),
            name: "db".into(),
            reason: "Failed to allocate IP for \"default/db\": no available IPs".into(),
            ..Default::default()
        };
        a.set_state(AllocationState::Pending);
        let answer = ServiceAnswer::join(&a, &[pool("a", 1, 1), pool("b", 4, 4)], &[]);
        assert_eq!(
            answer.summary,
            "pending: no available IPs; pools: a (1/1 used), b (4/4 used)"
        );
    }

    #[test]
    fn allocated_joins_the_speakers_advertisements() {
        let answer = ServiceAnswer::join(
            &allocated(),
            &[pool("web", 1, 10)],
            &[
                node("node1", "Established", 3 * 3_600 + 5),
                node("node2", "Active", 0),
            ],
        );
        assert_eq!(
            answer.summary,
            "203.0.113.5 from pool web; BGP: advertised by node1 to 10.77.0.1 \
             (Established 3h) and by node2 to 10.77.0.1 (Active); layer 2: none; \
             sessions down: node2 to 10.77.0.1 (Active)"
        );
        assert_eq!(answer.bgp.len(), 2);
    }

    #[test]
    fn allocated_without_speakers_says_announcements_were_not_asked() {
        let answer = ServiceAnswer::join(&allocated(), &[pool("web", 1, 10)], &[]);
        assert_eq!(
            answer.summary,
            "203.0.113.5 from pool web; announcements: not asked (no speaker found or given)"
        );
        let mut quiet = node("node1", "Established", 10);
        quiet.advertisements.clear();
        let answer = ServiceAnswer::join(&allocated(), &[], &[quiet.clone(), quiet]);
        assert_eq!(
            answer.summary,
            "203.0.113.5 from pool web, but no node announces it (asked node1, node1)"
        );
    }

    #[test]
    fn layer2_names_the_owning_node_and_interface() {
        let mut owner = node("node2", "Established", 10);
        owner.advertisements.clear();
        owner.layer2 = vec![
            proto::Layer2Ownership {
                address: "203.0.113.5".into(),
                interface: "eth0".into(),
                namespace: "default".into(),
                name: "web".into(),
                since_unix: 1,
                last_announcement_unix: 1,
            },
            proto::Layer2Ownership {
                address: "203.0.113.9".into(),
                interface: "eth0".into(),
                namespace: "default".into(),
                name: "other".into(),
                since_unix: 1,
                last_announcement_unix: 1,
            },
        ];
        let mut quiet = node("node1", "Established", 10);
        quiet.advertisements.clear();
        let answer = ServiceAnswer::join(&allocated(), &[], &[quiet, owner]);
        assert_eq!(
            answer.summary,
            "203.0.113.5 from pool web; BGP: none; layer 2: owned: 203.0.113.5 on eth0 by node node2"
        );
        assert_eq!(answer.layer2.len(), 1);
    }
}
