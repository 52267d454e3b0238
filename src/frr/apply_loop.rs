//! The apply loop: one task owns the [`Applier`]; producers set the desired frr.conf, the task
//! applies the latest one, and everybody can watch the outcome.
//!
//! ```text
//!  producers ── set(text) ──► watch<Option<text>> ──► apply task ──► Applier ──► FRR
//!                              (latest wins)          │ debounce, one apply at a time,
//!                                                     │ retry with backoff on failure
//!  status readers ◄────────── watch<ApplyStatus> ◄────┘
//! ```
//!
//! Guarantees:
//! - **Coalescing.** The first change after idle arms a timer of `debounce`; every change until
//!   it fires only replaces the pending text, then the latest text is applied once. The window
//!   starts at the first change, so a steady stream of changes still gets applied every
//!   `debounce` (upstream re-arms on each change and can starve).
//! - **One apply in flight.** The task applies sequentially; changes that arrive meanwhile wait
//!   for the next round.
//! - **Last good stays running.** A failed apply is rolled back by the [`Applier`]; the status
//!   keeps the last good hash as `applied_hash` and reports the failure in `last`.
//! - **Retry.** A failure is retried with exponential backoff (`retry_initial` doubling up to
//!   `retry_max`) until it succeeds or a new text arrives.
//! - **Skip.** A text equal to the last applied one runs nothing (counted as `unchanged`).
//! - **Drift.** While idle, every `resync` the loop checks with `frr-reload.py --test` that FRR
//!   still runs the applied text, and reloads it if not (a daemon restarted from an old file, a
//!   manual change); counted as `resyncs`.
//! - **Confirmation off the critical path.** A Services-only change sent over bgpd's vty
//!   session is in FRR when its apply returns; its `frr-reload.py --test` confirmation (with
//!   the withdraw check and `write memory`) runs once the loop has been idle for `debounce`
//!   ([`Applier::confirm`]), covering every batch since the last one. A new change arriving
//!   during the `--test` stops it and goes first; the confirmation runs again afterwards. A
//!   difference it finds is reloaded like drift.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use serde::Serialize;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{Instrument as _, info, info_span, warn};

use super::{
    apply::{Applier, ApplyError, ApplyPath, ApplyReport, Step, config_hash},
    conf::DeltaStats,
};
use crate::metrics::apply::ApplyMetrics;

/// Timing of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopConfig {
    /// How long to collect changes before applying the latest.
    pub debounce: Duration,
    /// First retry delay after a failure.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often to check, while idle, that FRR still runs the applied configuration
    /// ([`Applier::resync`]); `None`: never.
    pub resync: Option<Duration>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(100),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            resync: Some(Duration::from_secs(60)),
        }
    }
}

/// What the loop has done so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyStatus {
    /// Hash of the latest desired text.
    pub desired_hash: Option<String>,
    /// Hash of the text FRR runs (the last successful apply).
    pub applied_hash: Option<String>,
    /// The latest attempt.
    pub last: Option<Attempt>,
    /// Successful applies that changed FRR.
    pub applies: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Attempts skipped because the text was already applied.
    pub unchanged: u64,
    /// Drift checks that found FRR changed behind our back and re-applied the config.
    pub resyncs: u64,
    /// True while vty batches wait for their `--test` confirmation.
    pub confirm_pending: bool,
    /// Confirmations run to the end (each covers every batch since the previous one).
    pub confirmations: u64,
}

impl ApplyStatus {
    /// Records whether vty batches wait for confirmation; a wait that ended counts as one
    /// confirmation.
    fn note_confirm_pending(&mut self, pending: bool) {
        if self.confirm_pending && !pending {
            self.confirmations += 1;
        }
        self.confirm_pending = pending;
    }
}

/// One attempt of the loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it finished.
    pub at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Hash of the text it applied.
    pub hash: String,
    /// The path that ran (`None` when it failed).
    pub path: Option<ApplyPath>,
    /// The failed step.
    pub failed_step: Option<Step>,
    /// The error, as text.
    pub error: Option<String>,
    /// Why frr-reload.py ran instead of the incremental path.
    pub fallback_reason: Option<String>,
    /// What the incremental batch changed.
    #[serde(skip)]
    pub stats: DeltaStats,
    /// 0 for the first attempt of this text, then 1, 2, ... for retries.
    pub retry: u32,
    /// Milliseconds per step of a successful apply (`batch-vty`, `batch`, `verify`, ...).
    pub steps_ms: Vec<(String, f64)>,
}

impl Attempt {
    /// A successful attempt, from the applier's report.
    fn succeeded(at: SystemTime, report: &ApplyReport, retry: u32) -> Attempt {
        Attempt {
            at,
            duration: report.duration,
            hash: report.hash.clone(),
            path: Some(report.path),
            failed_step: None,
            error: None,
            fallback_reason: report.fallback_reason.clone(),
            stats: report.stats,
            retry,
            steps_ms: report
                .steps
                .iter()
                .map(|(step, d)| (step.to_string(), d.as_secs_f64() * 1000.0))
                .collect(),
        }
    }

    /// A failed attempt of the text with `hash`.
    fn failed(
        at: SystemTime,
        duration: Duration,
        hash: String,
        error: &ApplyError,
        retry: u32,
    ) -> Attempt {
        Attempt {
            at,
            duration,
            hash,
            path: None,
            failed_step: Some(error.step()),
            error: Some(error.to_string()),
            fallback_reason: None,
            stats: DeltaStats::default(),
            retry,
            steps_ms: Vec::new(),
        }
    }

    /// True when the attempt succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The producer side and the task of a running loop.
#[derive(Debug)]
pub struct ApplyHandle {
    desired: watch::Sender<Option<Arc<str>>>,
    status: watch::Receiver<ApplyStatus>,
    task: JoinHandle<Applier>,
}

/// Starts the loop on the current tokio runtime.
pub fn spawn(applier: Applier, cfg: LoopConfig) -> ApplyHandle {
    spawn_with_metrics(applier, cfg, ApplyMetrics::default())
}

/// [`spawn`], recording every apply and failure into `metrics`.
pub fn spawn_with_metrics(applier: Applier, cfg: LoopConfig, metrics: ApplyMetrics) -> ApplyHandle {
    let (desired, desired_rx) = watch::channel(None);
    let (status_tx, status) = watch::channel(ApplyStatus::default());
    let span = info_span!(
        "frr_apply",
        pathspace = applier.config().pathspace.as_deref()
    );
    let mut applier = applier;
    applier.set_defer_confirm(true);
    let task = tokio::spawn(run(applier, cfg, desired_rx, status_tx, metrics).instrument(span));
    ApplyHandle {
        desired,
        status,
        task,
    }
}

impl ApplyHandle {
    /// Sets the desired configuration; the latest one wins.
    pub fn set(&self, text: impl Into<Arc<str>>) {
        self.desired.send_replace(Some(text.into()));
    }

    /// A receiver of the status.
    pub fn status(&self) -> watch::Receiver<ApplyStatus> {
        self.status.clone()
    }

    /// Waits until the status satisfies `pred` or `timeout` passes; returns the last status.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&ApplyStatus) -> bool,
    ) -> Result<ApplyStatus, ApplyStatus> {
        let mut rx = self.status.clone();
        let res = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
        match res {
            Ok(Ok(s)) => Ok(s.clone()),
            _ => Err(self.status.borrow().clone()),
        }
    }

    /// Stops the loop after the apply in flight (a pending text is not applied) and returns
    /// the applier.
    pub async fn shutdown(self) -> Result<Applier, tokio::task::JoinError> {
        drop(self.desired);
        self.task.await
    }
}

/// Why the loop woke up.
enum Wake {
    /// A new desired text, or a retry is due.
    Apply,
    /// Idle long enough: check for drift.
    Resync,
    /// Idle after vty batches: confirm them.
    Confirm,
    /// The producer is gone.
    Stop,
}

impl From<bool> for Wake {
    fn from(open: bool) -> Self {
        if open { Wake::Apply } else { Wake::Stop }
    }
}

/// Runs a drift check and records a re-apply in the status.
async fn resync(
    applier: &mut Applier,
    status: &watch::Sender<ApplyStatus>,
    metrics: &ApplyMetrics,
) {
    let result = applier.resync().await;
    record_check(result, applier, status, metrics);
}

/// Records the outcome of a drift check or a confirmation.
fn record_check(
    result: Result<Option<ApplyReport>, ApplyError>,
    applier: &Applier,
    status: &watch::Sender<ApplyStatus>,
    metrics: &ApplyMetrics,
) {
    status.send_modify(|s| s.note_confirm_pending(applier.confirm_pending()));
    match result {
        Ok(None) => {}
        Ok(Some(report)) => {
            info!(hash = %report.hash, reason = report.fallback_reason.as_deref().unwrap_or(""),
                  "frr: re-applied after drift");
            metrics.drift_reloaded(&report);
            status.send_modify(|s| {
                s.resyncs += 1;
                s.last = Some(Attempt::succeeded(SystemTime::now(), &report, 0));
            });
        }
        Err(e) => {
            warn!(error = %e, "frr: drift check failed");
            metrics.failed(e.step());
            status.send_modify(|s| {
                s.failures += 1;
                s.last = Some(Attempt::failed(
                    SystemTime::now(),
                    Duration::ZERO,
                    s.applied_hash.clone().unwrap_or_default(),
                    &e,
                    0,
                ));
            });
        }
    }
}

/// A text that failed, and when to try it again.
struct Retry {
    hash: String,
    /// Number of the next attempt (1 = first retry).
    attempt: u32,
    delay: Duration,
}

async fn run(
    mut applier: Applier,
    cfg: LoopConfig,
    mut desired: watch::Receiver<Option<Arc<str>>>,
    status: watch::Sender<ApplyStatus>,
    metrics: ApplyMetrics,
) -> Applier {
    let mut retry: Option<Retry> = None;
    let resync_every = cfg.resync.unwrap_or(Duration::MAX);
    let confirm_after = cfg.debounce.max(Duration::from_millis(10));
    loop {
        let confirm_due = applier.confirm_pending();
        let retry_delay = retry.as_ref().map_or(Duration::MAX, |r| r.delay);
        // Cancel safe: `changed` loses nothing when dropped, and the sleeps are recreated each
        // round on purpose, since every wake-up starts the work that resets them (an apply, a
        // confirmation, a drift check).
        let woke = tokio::select! {
            changed = desired.changed() => Wake::from(changed.is_ok()),
            () = tokio::time::sleep(confirm_after), if confirm_due => Wake::Confirm,
            () = tokio::time::sleep(retry_delay), if retry.is_some() => Wake::Apply,
            () = tokio::time::sleep(resync_every), if retry.is_none() && !confirm_due => Wake::Resync,
        };
        match woke {
            Wake::Stop => break,
            Wake::Resync => {
                resync(&mut applier, &status, &metrics).await;
                continue;
            }
            Wake::Confirm => {
                // Only the read-only `--test` races a new change; the rest runs to the end.
                // Dropping it loses nothing: it takes `&self`, its frr-reload child is killed on
                // drop, and the pending confirmation stays in the applier for the next round.
                let test = tokio::select! {
                    test = applier.confirm_test() => Some(test),
                    changed = desired.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        None
                    }
                };
                // None: a new change came; apply it now and confirm afterwards.
                if let Some(test) = test {
                    let result = applier.confirm_finish(test).await;
                    record_check(result, &applier, &status, &metrics);
                    continue;
                }
            }
            Wake::Apply => {}
        }
        tokio::time::sleep(cfg.debounce).await;
        if desired.has_changed().is_err() {
            // The producer is gone: shutting down, do not start another apply.
            break;
        }
        let Some(text) = desired.borrow_and_update().clone() else {
            continue;
        };
        let hash = config_hash(&text);
        status.send_modify(|s| s.desired_hash = Some(hash.clone()));
        let attempt_no = match &retry {
            Some(r) if r.hash == hash => r.attempt,
            _ => 0,
        };
        let started = Instant::now();
        let result = applier.apply(&text).await;
        let now = SystemTime::now();
        match result {
            Ok(report) => {
                retry = None;
                if report.path != ApplyPath::Unchanged {
                    info!(path = ?report.path, hash = %report.hash,
                          ms = report.duration.as_millis() as u64,
                          networks_added = report.stats.networks_added,
                          networks_removed = report.stats.networks_removed,
                          reason = report.fallback_reason.as_deref(),
                          "frr: applied");
                }
                metrics.applied(&report);
                let pending = applier.confirm_pending();
                status.send_modify(|s| {
                    if report.path == ApplyPath::Unchanged {
                        s.unchanged += 1;
                    } else {
                        s.applies += 1;
                    }
                    s.note_confirm_pending(pending);
                    s.applied_hash = Some(report.hash.clone());
                    s.last = Some(Attempt::succeeded(now, &report, attempt_no));
                });
            }
            Err(e) => {
                let delay = match &retry {
                    Some(r) if attempt_no > 0 => (r.delay * 2).min(cfg.retry_max),
                    _ => cfg.retry_initial,
                };
                warn!(error = %e, step = ?e.step(), hash = %hash,
                      retry_in_ms = delay.as_millis() as u64, "frr: apply failed");
                metrics.failed(e.step());
                status.send_modify(|s| {
                    s.failures += 1;
                    s.last = Some(Attempt::failed(
                        now,
                        started.elapsed(),
                        hash.clone(),
                        &e,
                        attempt_no,
                    ));
                });
                retry = Some(Retry {
                    hash,
                    attempt: attempt_no + 1,
                    delay,
                });
            }
        }
    }
    if applier.confirm_pending() {
        // Shutting down: leave FRR confirmed and its frr.conf written.
        let result = applier.confirm().await;
        record_check(result, &applier, &status, &metrics);
    }
    applier
}

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::PermissionsExt as _, path::Path};

    use super::*;
    use crate::frr::apply::ApplierConfig;

    /// A fake vtysh and frr-reload.py that log their calls; vtysh's syntax check rejects any
    /// file containing `bad`, and `show running-config` prints a header.
    fn fakes(dir: &Path) -> ApplierConfig {
        let log = dir.join("calls.log");
        let vtysh = format!(
            "#!/bin/sh\necho \"vtysh $*\" >> {log}\nfor a; do last=$a; done\n\
             case \"$*\" in *-C*) grep -q bad \"$last\" && {{ echo '% Unknown command: bad' >&2; exit 2; }};; esac\n\
             case \"$*\" in *running-config*) echo 'frr version 8.4.4';; esac\nexit 0\n",
            log = log.display()
        );
        let reload = format!(
            "#!/bin/sh\necho \"frr-reload $*\" >> {log}\n\
             case \"$*\" in *--test*) [ -f {drift} ] && printf 'Lines To Add\\n============\\nip forwarding\\n';; esac\nexit 0\n",
            log = log.display(),
            drift = dir.join("drift").display()
        );
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, body) in [("vtysh", vtysh), ("frr-reload.py", reload)] {
            let p = bin.join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut cfg = ApplierConfig::new(Some("fake".into()), dir.join("state"));
        cfg.vtysh = bin.join("vtysh");
        cfg.frr_reload = bin.join("frr-reload.py");
        cfg
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn conf(networks: &[&str]) -> String {
        let mut s = String::from(
            "router bgp 64500\n neighbor 10.0.0.1 remote-as 64501\n !\n address-family ipv4 unicast\n",
        );
        for n in networks {
            s.push_str(&format!("  network {n}\n"));
        }
        s.push_str("  neighbor 10.0.0.1 activate\n exit-address-family\nexit\n!\n");
        s
    }

    #[tokio::test]
    async fn burst_is_one_apply_of_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(
            Applier::new(fakes(dir.path())),
            LoopConfig {
                debounce: Duration::from_millis(200),
                ..LoopConfig::default()
            },
        );
        let texts: Vec<String> = (0..50)
            .map(|i| conf(&[&format!("192.0.2.{i}/32")]))
            .collect();
        for t in &texts {
            h.set(t.clone());
        }
        let want = config_hash(texts.last().unwrap());
        let s = h
            .wait_for(Duration::from_secs(10), |s| {
                s.applied_hash.as_deref() == Some(&want)
            })
            .await
            .unwrap();
        assert_eq!((s.applies, s.failures), (1, 0));
        assert_eq!(s.last.unwrap().path, Some(ApplyPath::Reload));
        let reloads = calls(dir.path())
            .iter()
            .filter(|c| c.contains("--reload"))
            .count();
        assert_eq!(reloads, 1);

        // Then one more service: the incremental path, one vtysh -f with just that line.
        let next = conf(&["192.0.2.49/32", "198.51.100.1/32"]);
        h.set(next.clone());
        let want = config_hash(&next);
        let s = h
            .wait_for(Duration::from_secs(10), |s| {
                s.applied_hash.as_deref() == Some(&want)
            })
            .await
            .unwrap();
        let last = s.last.unwrap();
        assert_eq!(last.path, Some(ApplyPath::Incremental));
        assert_eq!(last.stats.networks_added, 1);
        let batch = std::fs::read_to_string(dir.path().join("state/frr-delta.conf")).unwrap();
        assert_eq!(
            batch,
            "router bgp 64500\n address-family ipv4 unicast\n  network 198.51.100.1/32\n exit-address-family\nexit\n"
        );

        // The same text again runs no process.
        let before = calls(dir.path()).len();
        h.set(next);
        h.wait_for(Duration::from_secs(10), |s| s.unchanged == 1)
            .await
            .unwrap();
        assert_eq!(calls(dir.path()).len(), before);
        h.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn failure_keeps_the_last_good_and_retries_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(
            Applier::new(fakes(dir.path())),
            LoopConfig {
                debounce: Duration::from_millis(10),
                retry_initial: Duration::from_millis(50),
                retry_max: Duration::from_millis(200),
                resync: None,
            },
        );
        let good = conf(&["192.0.2.1/32"]);
        h.set(good.clone());
        let good_hash = config_hash(&good);
        h.wait_for(Duration::from_secs(10), |s| {
            s.applied_hash.as_deref() == Some(&good_hash)
        })
        .await
        .unwrap();
        let bad = conf(&["192.0.2.1/32"]).replace("exit\n!\n", " bad line\nexit\n!\n");
        h.set(bad.clone());
        let s = h
            .wait_for(Duration::from_secs(10), |s| s.failures >= 4)
            .await
            .unwrap();
        let last = s.last.unwrap();
        assert_eq!(last.failed_step, Some(Step::Validate));
        assert!(last.error.unwrap().contains("Unknown command"));
        assert!(last.retry >= 3);
        assert_eq!(s.applied_hash.as_deref(), Some(good_hash.as_str()));
        // Backoff: 50, 100, 200, 200 ms between the attempts, not a busy loop.
        let started = Instant::now();
        let n = s.failures;
        h.wait_for(Duration::from_secs(10), |s| s.failures >= n + 2)
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        // A good text stops the retries.
        h.set(good);
        let s = h
            .wait_for(Duration::from_secs(10), |s| {
                s.last.as_ref().is_some_and(|a| a.ok())
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(h.status().borrow().failures, s.failures);
        let applier = h.shutdown().await.unwrap();
        assert_eq!(
            applier.last_applied(),
            Some(conf(&["192.0.2.1/32"]).as_str())
        );
    }

    #[tokio::test]
    async fn drift_is_detected_and_reapplied() {
        let dir = tempfile::tempdir().unwrap();
        let h = spawn(
            Applier::new(fakes(dir.path())),
            LoopConfig {
                debounce: Duration::from_millis(10),
                resync: Some(Duration::from_millis(100)),
                ..LoopConfig::default()
            },
        );
        h.set(conf(&["192.0.2.1/32"]));
        h.wait_for(Duration::from_secs(10), |s| s.applies == 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.status().borrow().resyncs, 0, "no drift yet");
        let reloads = |d: &Path| calls(d).iter().filter(|c| c.contains("--reload")).count();
        assert_eq!(reloads(dir.path()), 1);
        // FRR now shows a diff against the applied text: the loop reloads it once; the diff
        // stays (as a non-canonical residual would), so it is accepted and not reloaded again.
        std::fs::write(dir.path().join("drift"), "").unwrap();
        let s = h
            .wait_for(Duration::from_secs(10), |s| s.resyncs == 1)
            .await
            .unwrap();
        assert!(
            s.last
                .unwrap()
                .fallback_reason
                .unwrap()
                .starts_with("drift: ")
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(h.status().borrow().resyncs, 1);
        assert_eq!(reloads(dir.path()), 2);
        h.shutdown().await.unwrap();
    }
}
