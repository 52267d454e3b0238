//! The announcer: the set of addresses this node answers for, the per-interface responders
//! that answer, and the gratuitous announcements sent when an address arrives.
//!
//! ```text
//!   set_balancer / delete_balancer ──► Table (service → [(IP, interfaces)])
//!        │ new IPs                          │ read on every request
//!        ▼                                  ▼
//!   garp thread ── GARP / unsolicited NA ─► Responder per interface (thread, AF_PACKET)
//!   (now, then every 1.1 s for 5 s)          answers ARP requests and NS for table IPs
//! ```
//!
//! Every responder reads the same [`Table`], so an address is answered on an interface exactly
//! when the table lists it for that interface. IPv6 addresses also get their solicited-node
//! multicast group joined on the interfaces they are answered on, so that a NIC with a
//! multicast filter delivers the solicitations at all.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io,
    net::{IpAddr, Ipv6Addr},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use pnet_datalink::{Channel, DataLinkSender};
use regex::Regex;
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

use super::{
    interface::{self, Interface},
    packet::{self, Frame},
};
use crate::core::l2::Interfaces;

/// Upstream's gratuitous cadence: one at once, then every 1.1 s until 5 s have passed.
pub const GARP_INTERVAL: Duration = Duration::from_millis(1100);
/// How long gratuitous announcements repeat after an address arrives.
pub const GARP_DURATION: Duration = Duration::from_secs(5);
/// How often a responder thread checks whether it should stop.
const POLL: Duration = Duration::from_millis(100);

/// Per-address counters, the `metallb_layer2_*` metrics (`metrics::layer2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// ARP requests and neighbor solicitations received for the address
    /// (`metallb_layer2_requests_received`).
    pub requests_received: u64,
    /// Answers sent (`metallb_layer2_responses_sent`).
    pub responses_sent: u64,
    /// Gratuitous ARP / unsolicited NA frames sent (`metallb_layer2_gratuitous_sent`).
    pub gratuitous_sent: u64,
}

/// Failures of the announcer.
#[derive(Debug, thiserror::Error)]
pub enum AnnouncerError {
    /// Opening the AF_PACKET channel of an interface failed.
    #[error("failed to open a packet socket on {interface}")]
    OpenChannel {
        /// Interface name.
        interface: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The ICMPv6 socket used for multicast membership could not be opened.
    #[error("failed to open the ICMPv6 socket for multicast membership")]
    MulticastSocket(#[source] io::Error),
}

/// What the responders answer for.
#[derive(Debug, Default)]
struct Table {
    /// By service key (`namespace/name`), since services can share an address.
    services: BTreeMap<String, Vec<(IpAddr, Interfaces)>>,
    /// Derived: each address and the interfaces it is answered on (union over services).
    ips: HashMap<IpAddr, Interfaces>,
}

impl Table {
    fn rebuild(&mut self) {
        let mut ips: HashMap<IpAddr, Interfaces> = HashMap::new();
        for (ip, ifs) in self.services.values().flatten() {
            let merged = match (ips.remove(ip), ifs) {
                (None, ifs) => ifs.clone(),
                (Some(Interfaces::All), _) | (_, Interfaces::All) => Interfaces::All,
                (Some(Interfaces::Only(mut a)), Interfaces::Only(b)) => {
                    a.extend(b.iter().cloned());
                    Interfaces::Only(a)
                }
            };
            ips.insert(*ip, merged);
        }
        self.ips = ips;
    }

    fn answers(&self, ip: IpAddr, interface: &str) -> bool {
        self.ips.get(&ip).is_some_and(|ifs| ifs.allows(interface))
    }
}

/// State shared by the announcer, its responders and the gratuitous sender.
struct Shared {
    table: RwLock<Table>,
    counters: Mutex<BTreeMap<IpAddr, Counters>>,
    responders: Mutex<BTreeMap<String, Responder>>,
}

impl Shared {
    fn count(&self, ip: IpAddr, f: impl FnOnce(&mut Counters)) {
        let mut counters = self.counters.lock().expect("invariant: lock not poisoned");
        f(counters.entry(ip).or_default());
    }
}

/// One interface's answering thread and its sending half.
struct Responder {
    iface: Interface,
    tx: Arc<Mutex<Box<dyn DataLinkSender>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Responder {
    fn start(iface: Interface, shared: &Arc<Shared>) -> Result<Responder, AnnouncerError> {
        let config = pnet_datalink::Config {
            read_timeout: Some(POLL),
            // Solicited-node groups are joined explicitly; nothing else needs promiscuity.
            promiscuous: false,
            socket_fd: Some(filtered_packet_socket().map_err(|source| {
                AnnouncerError::OpenChannel {
                    interface: iface.name.clone(),
                    source,
                }
            })?),
            ..Default::default()
        };
        let net_iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.index == iface.index)
            .ok_or_else(|| AnnouncerError::OpenChannel {
                interface: iface.name.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "interface vanished"),
            })?;
        let (tx, mut rx) = match pnet_datalink::channel(&net_iface, config) {
            Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
            Ok(_) => {
                return Err(AnnouncerError::OpenChannel {
                    interface: iface.name.clone(),
                    source: io::Error::other("not an Ethernet channel"),
                });
            }
            Err(source) => {
                return Err(AnnouncerError::OpenChannel {
                    interface: iface.name.clone(),
                    source,
                });
            }
        };
        let tx = Arc::new(Mutex::new(tx));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tx, stop, shared, iface) =
                (tx.clone(), stop.clone(), shared.clone(), iface.clone());
            thread::Builder::new()
                .name(format!("l2-{}", iface.name))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match rx.next() {
                            Ok(frame) => {
                                if let Some(answer) = answer(&iface, &shared, frame) {
                                    send(&tx, &answer, &iface.name);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                            Err(e) => {
                                warn!(interface = %iface.name, error = %e, "packet socket read failed");
                                thread::sleep(POLL);
                            }
                        }
                    }
                })
                .expect("invariant: threads can be spawned")
        };
        info!(interface = %iface.name, mac = %iface.mac, "created ARP/NDP responder");
        Ok(Responder {
            iface,
            tx,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `ETH_P_ALL` from `<linux/if_ether.h>`.
const ETH_P_ALL: u16 = 0x0003;

/// A classic BPF program that lets only ARP and ICMPv6 Neighbor Solicitations through, so that
/// a busy node does not copy every frame it receives into the speaker:
///
/// ```text
/// 0: ldh [12]                ethertype
/// 1: jeq #0x0806  jt 7       ARP → accept
/// 2: jeq #0x86dd  jf 8       not IPv6 → drop
/// 3: ldb [20]                IPv6 next header
/// 4: jeq #58      jf 8       not ICMPv6 → drop (an NS carries no extension header)
/// 5: ldb [54]                ICMPv6 type
/// 6: jeq #135     jt 7 jf 8  Neighbor Solicitation → accept, else drop
/// 7: ret #262144             accept (whole frame)
/// 8: ret #0                  drop
/// ```
///
/// (Jump offsets in the code are relative to the next instruction.)
const NEIGHBOR_FILTER: [(u16, u8, u8, u32); 9] = {
    // Opcodes from <linux/filter.h>: BPF_LD|BPF_H|BPF_ABS, BPF_LD|BPF_B|BPF_ABS,
    // BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K.
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    [
        (LDH_ABS, 0, 0, 12),
        (JEQ_K, 5, 0, 0x0806),
        (JEQ_K, 0, 5, 0x86dd),
        (LDB_ABS, 0, 0, 20),
        (JEQ_K, 0, 3, 58),
        (LDB_ABS, 0, 0, 54),
        (JEQ_K, 0, 1, 135),
        (RET_K, 0, 0, 0x0004_0000),
        (RET_K, 0, 0, 0),
    ]
};

fn neighbor_filter() -> Vec<socket2::SockFilter> {
    NEIGHBOR_FILTER
        .iter()
        .map(|&(code, jt, jf, k)| socket2::SockFilter::new(code, jt, jf, k))
        .collect()
}

/// An `AF_PACKET` socket with [`neighbor_filter`] attached; pnet binds it to the interface.
fn filtered_packet_socket() -> io::Result<i32> {
    use std::os::fd::IntoRawFd;
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )?;
    socket.attach_filter(&neighbor_filter())?;
    Ok(socket.into_raw_fd())
}

fn send(tx: &Mutex<Box<dyn DataLinkSender>>, frame: &[u8], interface: &str) -> bool {
    let mut tx = tx.lock().expect("invariant: lock not poisoned");
    match tx.send_to(frame, None) {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            warn!(interface, error = %e, "sending a frame failed");
            false
        }
        None => false,
    }
}

/// The answer to a received frame, if it asks for one of our addresses on this interface.
fn answer(iface: &Interface, shared: &Shared, frame: &[u8]) -> Option<Vec<u8>> {
    match packet::decode(frame).ok()? {
        Frame::Arp(arp) => {
            // Only requests, not announcements, and only those addressed to everyone or to us
            // (what upstream's mdlayher/arp-based responder accepts).
            if !arp.request
                || arp.is_gratuitous()
                || arp.sender_mac == iface.mac
                || !(arp.eth_dst.is_broadcast() || arp.eth_dst == iface.mac)
            {
                return None;
            }
            let ip = IpAddr::V4(arp.target_ip);
            if !shared.table.read().ok()?.answers(ip, &iface.name) {
                return None;
            }
            shared.count(ip, |c| c.requests_received += 1);
            debug!(interface = %iface.name, %ip, from = %arp.sender_mac, "got ARP request for service IP, sending response");
            shared.count(ip, |c| c.responses_sent += 1);
            Some(packet::arp_reply(&arp, iface.mac))
        }
        Frame::Solicitation(ns) => {
            if ns.eth_src == iface.mac {
                return None;
            }
            let ip = IpAddr::V6(ns.target);
            if !shared.table.read().ok()?.answers(ip, &iface.name) {
                return None;
            }
            shared.count(ip, |c| c.requests_received += 1);
            let src = iface.link_local.unwrap_or(ns.target);
            let reply = packet::solicited_advertisement(&ns, iface.mac, src)?;
            debug!(interface = %iface.name, %ip, from = %ns.eth_src, "got NDP solicitation for service IP, sending response");
            shared.count(ip, |c| c.responses_sent += 1);
            Some(reply)
        }
        Frame::Advertisement(_) => None,
    }
}

/// Solicited-node memberships, kept equal to what the table needs.
struct Multicast {
    socket: Socket,
    joined: BTreeSet<(Ipv6Addr, u32)>,
}

/// The layer 2 announcer of one node.
pub struct Announcer {
    shared: Arc<Shared>,
    exclude: Vec<Regex>,
    garp: Option<mpsc::Sender<IpAddr>>,
    garp_thread: Option<thread::JoinHandle<()>>,
    multicast: Mutex<Multicast>,
}

impl Announcer {
    /// Starts responders on every eligible interface (see [`interface::eligible`]).
    pub fn start(exclude: Vec<Regex>) -> Result<Announcer, AnnouncerError> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(AnnouncerError::MulticastSocket)?;
        let shared = Arc::new(Shared {
            table: RwLock::default(),
            counters: Mutex::default(),
            responders: Mutex::default(),
        });
        let (garp_tx, garp_rx) = mpsc::channel();
        let garp_thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("l2-garp".into())
                .spawn(move || gratuitous_loop(&shared, garp_rx))
                .expect("invariant: threads can be spawned")
        };
        let announcer = Announcer {
            shared,
            exclude,
            garp: Some(garp_tx),
            garp_thread: Some(garp_thread),
            multicast: Mutex::new(Multicast {
                socket,
                joined: BTreeSet::new(),
            }),
        };
        announcer.refresh_interfaces()?;
        Ok(announcer)
    }

    /// Re-scans interfaces: starts responders for new eligible ones, stops those that went
    /// away or stopped being eligible. Upstream does this every 10 s.
    pub fn refresh_interfaces(&self) -> Result<(), AnnouncerError> {
        let wanted = interface::eligible(&self.exclude);
        {
            let mut responders = self.shared.responders.lock().expect("invariant: lock");
            responders.retain(|name, r| wanted.iter().any(|w| &w.name == name && *w == r.iface));
            for iface in wanted {
                if !responders.contains_key(&iface.name) {
                    let name = iface.name.clone();
                    responders.insert(name, Responder::start(iface, &self.shared)?);
                }
            }
        }
        self.sync_multicast();
        Ok(())
    }

    /// Names of the interfaces with a responder.
    pub fn interfaces(&self) -> Vec<String> {
        let responders = self.shared.responders.lock().expect("invariant: lock");
        responders.keys().cloned().collect()
    }

    /// Announces the addresses of `service` (replacing what it had). Addresses new to this
    /// node get gratuitous announcements.
    pub fn set_balancer(&self, service: &str, ips: Vec<(IpAddr, Interfaces)>) {
        let fresh: Vec<IpAddr> = {
            let mut table = self.shared.table.write().expect("invariant: lock");
            let before: BTreeSet<IpAddr> = table.ips.keys().copied().collect();
            table.services.insert(service.to_string(), ips);
            table.rebuild();
            table
                .ips
                .keys()
                .filter(|ip| !before.contains(ip))
                .copied()
                .collect()
        };
        self.sync_multicast();
        for ip in fresh {
            info!(service, %ip, "announcing");
            if let Some(garp) = &self.garp {
                let _ = garp.send(ip);
            }
        }
    }

    /// Stops announcing `service`'s addresses (those no other service shares).
    pub fn delete_balancer(&self, service: &str) {
        {
            let mut table = self.shared.table.write().expect("invariant: lock");
            if table.services.remove(service).is_none() {
                return;
            }
            table.rebuild();
        }
        info!(service, "withdrawn");
        self.sync_multicast();
    }

    /// Services announced now.
    pub fn services(&self) -> Vec<String> {
        let table = self.shared.table.read().expect("invariant: lock");
        table.services.keys().cloned().collect()
    }

    /// Whether `ip` is answered on some interface.
    pub fn announces(&self, ip: IpAddr) -> bool {
        let table = self.shared.table.read().expect("invariant: lock");
        table.ips.contains_key(&ip)
    }

    /// Counters per address since start.
    pub fn counters(&self) -> BTreeMap<IpAddr, Counters> {
        self.shared
            .counters
            .lock()
            .expect("invariant: lock")
            .clone()
    }

    /// A reader of the counters that outlives borrows of the announcer (the metrics
    /// collector reads them at scrape time).
    pub fn counters_reader(&self) -> crate::metrics::layer2::CountersReader {
        let shared = self.shared.clone();
        Arc::new(move || shared.counters.lock().expect("invariant: lock").clone())
    }

    /// Joins and leaves solicited-node groups so that exactly the needed ones are joined.
    fn sync_multicast(&self) {
        let wanted: BTreeSet<(Ipv6Addr, u32)> = {
            let table = self.shared.table.read().expect("invariant: lock");
            let responders = self.shared.responders.lock().expect("invariant: lock");
            table
                .ips
                .iter()
                .filter_map(|(ip, ifs)| match ip {
                    IpAddr::V6(v6) => Some((packet::solicited_node(*v6), ifs)),
                    IpAddr::V4(_) => None,
                })
                .flat_map(|(group, ifs)| {
                    responders
                        .values()
                        .filter(|r| ifs.allows(&r.iface.name))
                        .map(move |r| (group, r.iface.index))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let mut mc = self.multicast.lock().expect("invariant: lock");
        let leave: Vec<_> = mc.joined.difference(&wanted).copied().collect();
        for (group, index) in leave {
            if let Err(e) = mc.socket.leave_multicast_v6(&group, index) {
                debug!(%group, index, error = %e, "leaving multicast group failed");
            }
            mc.joined.remove(&(group, index));
        }
        let join: Vec<_> = wanted.difference(&mc.joined).copied().collect();
        for (group, index) in join {
            match mc.socket.join_multicast_v6(&group, index) {
                Ok(()) => {
                    mc.joined.insert((group, index));
                }
                Err(e) => warn!(%group, index, error = %e, "joining multicast group failed"),
            }
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // Closing the channel ends the gratuitous thread; dropping responders joins theirs.
        self.garp.take();
        if let Some(t) = self.garp_thread.take() {
            let _ = t.join();
        }
        self.shared
            .responders
            .lock()
            .expect("invariant: lock")
            .clear();
    }
}

/// Sends gratuitous ARP (both forms) or unsolicited NAs for each new address: at once, then
/// every [`GARP_INTERVAL`] until [`GARP_DURATION`] has passed, on every interface the address
/// is answered on, while it is still announced.
fn gratuitous_loop(shared: &Shared, rx: mpsc::Receiver<IpAddr>) {
    // ip → (first send, next send)
    let mut due: BTreeMap<IpAddr, (Instant, Instant)> = BTreeMap::new();
    loop {
        let now = Instant::now();
        let wait = due
            .values()
            .map(|(_, next)| next.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            // A re-announcement restarts the cadence, as upstream's spam channel does.
            Ok(ip) => {
                due.insert(ip, (Instant::now(), Instant::now()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        due.retain(|ip, (start, next)| {
            if *next > now {
                return true;
            }
            let sent = announce_once(shared, *ip);
            shared.count(*ip, |c| c.gratuitous_sent += sent);
            *next += GARP_INTERVAL;
            *next <= *start + GARP_DURATION
        });
    }
}

/// One round of gratuitous frames for `ip`; returns how many were sent.
fn announce_once(shared: &Shared, ip: IpAddr) -> u64 {
    let table = shared.table.read().expect("invariant: lock");
    let Some(ifs) = table.ips.get(&ip).cloned() else {
        return 0;
    };
    drop(table);
    let responders = shared.responders.lock().expect("invariant: lock");
    let mut sent = 0;
    for r in responders.values().filter(|r| ifs.allows(&r.iface.name)) {
        let frames: Vec<Vec<u8>> = match ip {
            IpAddr::V4(v4) => packet::gratuitous_arp(v4, r.iface.mac).into(),
            IpAddr::V6(v6) => vec![packet::unsolicited_advertisement(
                v6,
                r.iface.mac,
                r.iface.link_local.unwrap_or(v6),
            )],
        };
        for frame in frames {
            if send(&r.tx, &frame, &r.iface.name) {
                sent += 1;
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::packet::MacAddr;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/l2")
                .join(name),
        )
        .unwrap()
    }

    /// node1's eth0 as in the captures, plus a link-local address.
    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            mac: MacAddr(0x02, 0x77, 0, 0, 0, 0x0b),
            link_local: Some("fe80::77:ff:fe00:b".parse().unwrap()),
        }
    }

    fn shared_with(ips: &[(&str, Interfaces)]) -> Shared {
        let mut table = Table::default();
        table.services.insert(
            "default/web".into(),
            ips.iter()
                .map(|(ip, ifs)| (ip.parse().unwrap(), ifs.clone()))
                .collect(),
        );
        table.rebuild();
        Shared {
            table: RwLock::new(table),
            counters: Mutex::default(),
            responders: Mutex::default(),
        }
    }

    /// The captured requests ask for 10.77.0.11 / fd00:77::11; announcing those makes the
    /// responder answer exactly what the kernel answered.
    #[test]
    fn answers_captured_requests_for_announced_addresses_only() {
        let shared = shared_with(&[
            ("10.77.0.11", Interfaces::All),
            ("fd00:77::11", Interfaces::All),
        ]);
        let reply = answer(&eth0(), &shared, &fixture("arp_request.bin")).unwrap();
        assert_eq!(reply, fixture("arp_reply.bin"));
        let na = answer(&eth0(), &shared, &fixture("ndp_ns.bin")).unwrap();
        match packet::decode(&na).unwrap() {
            Frame::Advertisement(a) => {
                assert!(a.solicited && a.override_);
                assert_eq!(a.src_ip, eth0().link_local.unwrap());
                assert_eq!(a.target_mac, Some(eth0().mac));
            }
            other => panic!("{other:?}"),
        }
        let c = shared.counters.lock().unwrap().clone();
        let v4: IpAddr = "10.77.0.11".parse().unwrap();
        assert_eq!(c[&v4].requests_received, 1);
        assert_eq!(c[&v4].responses_sent, 1);

        // Not announced: silence, and no counters for it.
        let nothing = shared_with(&[("10.77.0.99", Interfaces::All)]);
        assert!(answer(&eth0(), &nothing, &fixture("arp_request.bin")).is_none());
        assert!(answer(&eth0(), &nothing, &fixture("ndp_ns.bin")).is_none());
        assert!(nothing.counters.lock().unwrap().is_empty());
    }

    #[test]
    fn interface_restriction_replies_and_ignored_frames() {
        let other = Interfaces::Only(["eth1".to_string()].into());
        let shared = shared_with(&[("10.77.0.11", other), ("fd00:77::11", Interfaces::All)]);
        assert!(answer(&eth0(), &shared, &fixture("arp_request.bin")).is_none());
        // Replies and gratuitous ARPs are never answered.
        let all = shared_with(&[("10.77.0.11", Interfaces::All)]);
        assert!(answer(&eth0(), &all, &fixture("arp_reply.bin")).is_none());
        assert!(answer(&eth0(), &all, &fixture("garp_request.bin")).is_none());
        // A request unicast to another host's MAC is not for us.
        let mut unicast = fixture("arp_request.bin");
        unicast[0..6].copy_from_slice(&[0x02, 0x77, 0, 0, 0, 0x0c]);
        assert!(answer(&eth0(), &all, &unicast).is_none());
        // Neighbor advertisements are never answered.
        assert!(answer(&eth0(), &shared, &fixture("ndp_na_unsolicited.bin")).is_none());
    }

    /// Runs the classic BPF program the way the kernel does, for the few opcodes it uses.
    fn bpf_accepts(frame: &[u8]) -> bool {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = NEIGHBOR_FILTER[pc];
            let at = k as usize;
            pc += 1;
            match code {
                0x28 => match frame.get(at..at + 2) {
                    Some(b) => acc = u32::from(u16::from_be_bytes([b[0], b[1]])),
                    None => return false,
                },
                0x30 => match frame.get(at) {
                    Some(b) => acc = u32::from(*b),
                    None => return false,
                },
                0x15 => pc += usize::from(if acc == k { jt } else { jf }),
                0x06 => return k != 0,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn socket_filter_passes_arp_and_solicitations_only() {
        for f in [
            "arp_request.bin",
            "arp_reply.bin",
            "garp_request.bin",
            "ndp_ns.bin",
        ] {
            assert!(bpf_accepts(&fixture(f)), "{f}");
        }
        for f in ["ndp_na_solicited.bin", "ndp_na_unsolicited.bin"] {
            assert!(!bpf_accepts(&fixture(f)), "{f}");
        }
        let mut ipv4 = fixture("arp_request.bin");
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert!(!bpf_accepts(&ipv4));
        let mut udp6 = fixture("ndp_ns.bin");
        udp6[20] = 17;
        assert!(!bpf_accepts(&udp6));
        assert!(!bpf_accepts(&[0u8; 10]));
        assert_eq!(neighbor_filter().len(), NEIGHBOR_FILTER.len());
    }

    #[test]
    fn table_merges_interfaces_of_services_sharing_an_ip() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let only = |s: &str| Interfaces::Only([s.to_string()].into());
        let mut t = Table::default();
        t.services.insert("a/x".into(), vec![(ip, only("eth0"))]);
        t.services.insert("a/y".into(), vec![(ip, only("eth1"))]);
        t.rebuild();
        assert!(t.answers(ip, "eth0") && t.answers(ip, "eth1") && !t.answers(ip, "eth2"));
        t.services.insert("a/z".into(), vec![(ip, Interfaces::All)]);
        t.rebuild();
        assert!(t.answers(ip, "eth2"));
        t.services.clear();
        t.rebuild();
        assert!(!t.answers(ip, "eth0"));
    }
}
