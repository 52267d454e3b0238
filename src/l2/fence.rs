//! The witness check behind the partition fence ([`crate::core::l2::FenceRule`]): a thread
//! that opens a TCP connection to the witness every interval and records when that last
//! worked.
//!
//! A TCP connect is the cheapest proof of "I can still reach the outside world" that needs
//! nothing on the witness but a listening port; pointed at the API server it asks nothing of
//! it beyond the handshake.

use std::{
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use tracing::{info, warn};

/// A running witness check; dropping it stops the thread.
pub struct Witness {
    last_ok: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Witness {
    /// Checks `addr` every `interval` (each connect times out after `interval` too).
    pub fn start(addr: SocketAddr, interval: Duration) -> Witness {
        let last_ok = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (last_ok, stop) = (last_ok.clone(), stop.clone());
            thread::Builder::new()
                .name("l2-witness".into())
                .spawn(move || {
                    let mut reachable = None;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let ok = TcpStream::connect_timeout(&addr, interval).is_ok();
                        if ok {
                            *last_ok.lock().expect("invariant: lock") = Some(Instant::now());
                        }
                        if reachable != Some(ok) {
                            if ok {
                                info!(witness = %addr, "fence witness reachable");
                            } else {
                                warn!(witness = %addr, "fence witness unreachable");
                            }
                            reachable = Some(ok);
                        }
                        thread::sleep(interval.saturating_sub(started.elapsed()));
                    }
                })
                .expect("invariant: threads can be spawned")
        };
        Witness {
            last_ok,
            stop,
            thread: Some(thread),
        }
    }

    /// Time since the last successful check; `None` if none succeeded yet.
    pub fn since_ok(&self) -> Option<Duration> {
        self.last_ok
            .lock()
            .expect("invariant: lock")
            .map(|t| t.elapsed())
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The fence as the speaker uses it: the rule, the witness check and how many peers the
/// speaker was told about.
pub struct Fence {
    /// The rule.
    pub rule: crate::core::l2::FenceRule,
    /// The witness check.
    pub witness: Witness,
    /// Peers configured (membership seeds other than this speaker).
    pub configured_peers: usize,
}

impl Fence {
    /// Whether the speaker must withdraw everything, given the live speaker set (itself
    /// included).
    pub fn fenced(&self, live: usize) -> bool {
        self.rule.fenced(
            self.witness.since_ok(),
            live.saturating_sub(1),
            self.configured_peers,
        )
    }
}
