//! Which speakers are alive: SWIM membership (the `foca` crate) over UDP, every datagram
//! authenticated with HMAC-SHA256 under a shared secret.
//!
//! ```text
//!   UDP socket ──verify tag──► foca.handle_data ─┐
//!   timer queue ─────────────► foca.handle_timer ├─► AccumulatingRuntime
//!                                                 │     to_send ──sign──► UDP socket
//!                                                 │     to_schedule ────► timer queue
//!                                                 └─► live set changed ─► watcher channel
//! ```
//!
//! Upstream uses hashicorp memberlist with its LAN defaults (1 s probes, suspicion of several
//! seconds: 5–8 s failover). The same protocol with [`Timing::fast`] (100 ms probes, 50 ms
//! round trip, 200 ms suspicion) notices a dead speaker in about
//! `2 × probe_period + suspect_to_down` ≈ 400 ms, at the cost of about 10 small datagrams per
//! second per speaker.
//!
//! The secret is used as in upstream (`sha256(key)`), here as an HMAC key rather than AES:
//! membership is not confidential, but nobody without the key may declare a node dead or alive.
//! The tag does not stop replays of recent datagrams; SWIM's incarnation numbers make a
//! replayed "alive" harmless and a replayed "suspect" refutable.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::{SocketAddr, UdpSocket},
    num::{NonZeroU8, NonZeroUsize},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use foca::{AccumulatingRuntime, Foca, OwnedNotification, PostcardCodec, Timer};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 32;

/// A speaker's identity in the membership: its node name and where it listens. `bump` changes on
/// every start (and when the speaker has been declared dead and rejoins), so that the newest
/// incarnation of a node wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Node name.
    pub node: String,
    /// Membership address.
    pub addr: SocketAddr,
    /// Start-time bump: the larger one wins an address conflict.
    pub bump: u64,
}

impl foca::Identity for Member {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Member {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// Failure detector timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often a random member is probed.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking others to probe.
    pub probe_rtt: Duration,
    /// How long a suspected member has to refute before it is declared down.
    pub suspect_to_down: Duration,
}

impl Timing {
    /// Sub-second detection on a LAN: 100 ms probes, 50 ms rtt, 200 ms suspicion.
    pub fn fast() -> Timing {
        Timing {
            probe_period: Duration::from_millis(100),
            probe_rtt: Duration::from_millis(50),
            suspect_to_down: Duration::from_millis(200),
        }
    }

    /// The worst-case time from a speaker dying to the others declaring it down, with no
    /// datagram loss: a probe can start just before the death, fail at the end of the next
    /// period, and the suspicion then runs out.
    pub fn detection_bound(&self) -> Duration {
        2 * self.probe_period + self.suspect_to_down
    }
}

/// Membership settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node's name.
    pub node: String,
    /// Address to bind.
    pub bind: SocketAddr,
    /// Address the others reach this speaker at (the bind address unless that is unspecified,
    /// e.g. `0.0.0.0:7946` reached at the Node's InternalIP).
    pub advertise: SocketAddr,
    /// Other speakers to join through (this speaker's own address is skipped); replaced while
    /// running with [`Membership::set_seeds`] when nodes come and go.
    pub seeds: Vec<SocketAddr>,
    /// Shared secret (any bytes; hashed with sha256 into the HMAC key).
    pub secret: Vec<u8>,
    /// Failure detector timing.
    pub timing: Timing,
}

/// Failures of the membership layer.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The UDP socket could not be bound.
    #[error("failed to bind the membership socket on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// A running membership agent. Dropping it leaves the cluster (best effort) and stops the
/// thread.
pub struct Membership {
    live: Arc<Mutex<BTreeSet<String>>>,
    seeds: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Membership {
    /// Binds, joins through the seeds and starts the agent. `changes` receives the live node
    /// set (this node included) every time it changes.
    pub fn start(
        settings: Settings,
        changes: mpsc::UnboundedSender<BTreeSet<String>>,
    ) -> Result<Membership, MembershipError> {
        let socket = UdpSocket::bind(settings.bind).map_err(|source| MembershipError::Bind {
            addr: settings.bind,
            source,
        })?;
        let live = Arc::new(Mutex::new(BTreeSet::from([settings.node.clone()])));
        let seeds = Arc::new(Mutex::new(settings.seeds.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (live, seeds, stop) = (live.clone(), seeds.clone(), stop.clone());
            thread::Builder::new()
                .name("l2-membership".into())
                .spawn(move || run(settings, socket, &live, &seeds, &stop, &changes))
                .expect("invariant: threads can be spawned")
        };
        Ok(Membership {
            live,
            seeds,
            stop,
            thread: Some(thread),
        })
    }

    /// The live node names now (this node included).
    pub fn live(&self) -> BTreeSet<String> {
        self.live.lock().expect("invariant: lock").clone()
    }

    /// Replaces the addresses to join through (a node was added or removed): a speaker that is
    /// alone knocks on them at once, one that is not keeps them for its periodic re-announce.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        *self.seeds.lock().expect("invariant: lock") = seeds;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The HMAC key: sha256 of the secret, as upstream derives its memberlist key.
fn key(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// `data || HMAC-SHA256(key, data)`.
pub fn seal(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("invariant: HMAC takes any key");
    mac.update(data);
    let mut out = data.to_vec();
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

/// The payload of a sealed datagram if its tag is right (compared in constant time).
pub fn open<'a>(key: &[u8; 32], datagram: &'a [u8]) -> Option<&'a [u8]> {
    let split = datagram.len().checked_sub(TAG_LEN)?;
    let (data, tag) = datagram.split_at(split);
    let mut mac = HmacSha256::new_from_slice(key).expect("invariant: HMAC takes any key");
    mac.update(data);
    mac.verify_slice(tag).ok().map(|()| data)
}

fn foca_config(timing: Timing) -> foca::Config {
    let mut c = foca::Config::new_lan(std::num::NonZeroU32::new(8).expect("invariant: 8 > 0"));
    c.probe_period = timing.probe_period;
    c.probe_rtt = timing.probe_rtt;
    c.suspect_to_down_after = timing.suspect_to_down;
    c.num_indirect_probes = NonZeroUsize::new(3).expect("invariant: 3 > 0");
    c.max_transmissions = NonZeroU8::new(10).expect("invariant: 10 > 0");
    c.max_packet_size = NonZeroUsize::new(1400 - TAG_LEN).expect("invariant: > 0");
    // A speaker coming back after a partition must find the others again quickly.
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: Duration::from_millis(500),
        num_members: NonZeroUsize::new(2).expect("invariant: 2 > 0"),
    });
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: timing.probe_period,
        num_members: NonZeroUsize::new(3).expect("invariant: 3 > 0"),
    });
    c
}

/// How often a speaker that is not alone announces itself to every seed anyway: two groups
/// that formed apart (speakers that started while the others' nodes were not yet known) merge
/// within this time.
const REANNOUNCE: Duration = Duration::from_secs(2);

/// The SWIM state machine as this module runs it.
type SwimAgent = Foca<Member, PostcardCodec, rand::rngs::StdRng, foca::NoCustomBroadcast>;

/// Where foca's output goes: datagrams to the socket, timers to the queue, membership changes
/// to the live set and its watcher.
struct Outputs<'a> {
    socket: &'a UdpSocket,
    key: [u8; 32],
    /// This node, always live.
    node: &'a str,
    /// Timers keyed by due time, then a sequence number so equal times keep their order.
    timers: BTreeMap<(Instant, u64), Timer<Member>>,
    seq: u64,
    live: &'a Mutex<BTreeSet<String>>,
    changes: &'a mpsc::UnboundedSender<BTreeSet<String>>,
}

impl Outputs<'_> {
    /// Sends, schedules and publishes everything foca has accumulated.
    fn apply(&mut self, runtime: &mut AccumulatingRuntime<Member>, foca: &SwimAgent) {
        while let Some((to, data)) = runtime.to_send() {
            // Sending fails while our link is down; SWIM tolerates loss.
            let _ = self.socket.send_to(&seal(&self.key, &data), to.addr);
        }
        while let Some((after, timer)) = runtime.to_schedule() {
            self.seq += 1;
            self.timers
                .insert((Instant::now() + after, self.seq), timer);
        }
        let mut changed = false;
        while let Some(n) = runtime.to_notify() {
            match n {
                OwnedNotification::MemberUp(m) => {
                    info!(node = %m.node, addr = %m.addr, "event=peerUp speaker joined");
                    changed = true;
                }
                OwnedNotification::MemberDown(m) => {
                    info!(node = %m.node, addr = %m.addr, "event=peerDown speaker left or was declared dead");
                    changed = true;
                }
                OwnedNotification::Rename(..) => changed = true,
                OwnedNotification::Defunct => {
                    warn!("declared dead by the others; rejoining with a new incarnation");
                }
                _ => {}
            }
        }
        if changed {
            self.publish_live(foca);
        }
    }

    /// Hands the live node set to the watcher if it differs from the last one.
    fn publish_live(&self, foca: &SwimAgent) {
        let mut now_live: BTreeSet<String> = foca
            .iter_members()
            .map(|m| m.id().node.clone())
            .filter(|n| !n.is_empty())
            .collect();
        now_live.insert(self.node.to_string());
        let mut current = self.live.lock().expect("invariant: lock");
        if *current != now_live {
            *current = now_live.clone();
            drop(current);
            let _ = self.changes.send(now_live);
        }
    }
}

fn run(
    settings: Settings,
    socket: UdpSocket,
    live: &Mutex<BTreeSet<String>>,
    seeds: &Mutex<Vec<SocketAddr>>,
    stop: &AtomicBool,
    changes: &mpsc::UnboundedSender<BTreeSet<String>>,
) {
    let key = key(&settings.secret);
    let bump = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let me = Member {
        node: settings.node.clone(),
        addr: settings.advertise,
        bump,
    };
    let rng: rand::rngs::StdRng = rand::make_rng();
    let mut foca = Foca::new(me, foca_config(settings.timing), rng, PostcardCodec);
    let mut runtime = AccumulatingRuntime::new();
    let mut outputs = Outputs {
        socket: &socket,
        key,
        node: &settings.node,
        timers: BTreeMap::new(),
        seq: 0,
        live,
        changes,
    };
    let mut buf = vec![0u8; 2048];
    let mut last_join = Instant::now() - Duration::from_secs(60);

    while !stop.load(Ordering::Relaxed) {
        // Until someone answers, keep knocking on the seeds' doors (they may start later);
        // afterwards now and then, so that separately formed groups merge.
        let knock = if foca.num_members() == 0 {
            Duration::from_millis(250)
        } else {
            REANNOUNCE
        };
        if last_join.elapsed() >= knock {
            last_join = Instant::now();
            let seeds = seeds.lock().expect("invariant: lock").clone();
            for seed in seeds.iter().filter(|s| **s != settings.advertise) {
                let probe = Member {
                    node: String::new(),
                    addr: *seed,
                    bump: 0,
                };
                if let Err(e) = foca.announce(probe, &mut runtime) {
                    debug!(error = ?e, "announce failed");
                }
            }
        }
        let now = Instant::now();
        while let Some(entry) = outputs.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Err(e) = foca.handle_timer(timer, &mut runtime) {
                debug!(error = ?e, "timer failed");
            }
        }
        // What the timers produced goes out before the receive below blocks: a probe's next
        // timer, a suspect's countdown or a "down" would otherwise wait for a datagram or the
        // receive timeout, up to 50 ms each (the lab's failover p50 was 529 ms so, 337–388 ms
        // without: benches/l2_failover.rs).
        outputs.apply(&mut runtime, &foca);
        let wait = outputs
            .timers
            .keys()
            .next()
            .map(|(t, _)| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        let _ = socket.set_read_timeout(Some(wait));
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => match open(&key, &buf[..n]) {
                Some(data) => {
                    if let Err(e) = foca.handle_data(data, &mut runtime) {
                        debug!(%from, error = ?e, "bad membership datagram");
                    }
                }
                None => warn!(%from, "membership datagram with a bad tag dropped"),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => debug!(error = %e, "membership receive failed"),
        }
        outputs.apply(&mut runtime, &foca);
    }
    // Tell the others at once instead of letting them time out. foca gossips the leave once
    // per peer and nobody answers a departed member, so a lost datagram would cost the
    // failure detector's time: each goes out twice (a repeated "down" changes nothing).
    let _ = foca.leave_cluster(&mut runtime);
    while let Some((to, data)) = runtime.to_send() {
        let sealed = seal(&key, &data);
        for _ in 0..2 {
            let _ = socket.send_to(&sealed, to.addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_datagrams_open_only_with_the_same_key() {
        let k = key(b"secret");
        let sealed = seal(&k, b"hello");
        assert_eq!(open(&k, &sealed), Some(&b"hello"[..]));
        assert_eq!(open(&key(b"other"), &sealed), None);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(open(&k, &tampered), None);
        assert_eq!(open(&k, &sealed[..10]), None);
    }

    fn free_port() -> SocketAddr {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    fn wait_for(
        rx: &mut mpsc::UnboundedReceiver<BTreeSet<String>>,
        want: &[&str],
        timeout: Duration,
    ) -> Option<Duration> {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        let start = Instant::now();
        while start.elapsed() < timeout {
            match rx.try_recv() {
                Ok(set) if set == want => return Some(start.elapsed()),
                Ok(_) => {}
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
        None
    }

    /// Three agents on loopback find each other through one seed, and a dropped (killed
    /// without leaving is not possible in-process, so this checks the leave path) agent
    /// disappears from the others' view quickly. A wrong secret never joins.
    #[test]
    fn agents_join_detect_departure_and_reject_wrong_secrets() {
        let addrs = [free_port(), free_port(), free_port(), free_port()];
        let mut rxs = Vec::new();
        let mut agents = Vec::new();
        for (i, addr) in addrs.iter().take(3).enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            agents.push(
                Membership::start(
                    Settings {
                        node: format!("n{i}"),
                        bind: *addr,
                        advertise: *addr,
                        seeds: vec![addrs[0]],
                        secret: b"s3cret".to_vec(),
                        timing: Timing::fast(),
                    },
                    tx,
                )
                .unwrap(),
            );
            rxs.push(rx);
        }
        let (tx, _intruder_rx) = mpsc::unbounded_channel();
        let intruder = Membership::start(
            Settings {
                node: "intruder".into(),
                bind: addrs[3],
                advertise: addrs[3],
                seeds: vec![addrs[0]],
                secret: b"guess".to_vec(),
                timing: Timing::fast(),
            },
            tx,
        )
        .unwrap();
        assert!(
            wait_for(&mut rxs[0], &["n0", "n1", "n2"], Duration::from_secs(5)).is_some(),
            "n0 sees everyone: {:?}",
            agents[0].live()
        );
        drop(agents.pop());
        let took = wait_for(&mut rxs[0], &["n0", "n1"], Duration::from_secs(5));
        assert!(took.is_some(), "n2 gone: {:?}", agents[0].live());
        assert_eq!(intruder.live(), BTreeSet::from(["intruder".to_string()]));
    }
}
