//! Applying a rendered frr.conf to a running FRR: safely (nothing FRR rejects stays applied)
//! and fast (a service change is one `vtysh -f` batch, not a frr-reload.py run).
//!
//! ```text
//!  text ──► same as last applied? ──yes──► Unchanged (no process runs)
//!             │ no
//!             ▼
//!  write FILE atomically (0600) ──► vtysh -C -f FILE (syntax; rc≠0 → Validate error, FRR untouched)
//!             │
//!             ▼
//!  delta(last applied, text) only networks / prefix-list entries / route-map entries?
//!     │ yes                                              │ no (structural, or first apply)
//!     ▼                                                  ▼
//!  only `network` lines? → bgpd vty session, a line   frr-reload.py --test FILE (rc≠0 → Validate)
//!    at a time (syntax error → undo, Validate)        frr-reload.py --reload FILE
//!  else vtysh -C DELTA, vtysh -f DELTA (one batch)
//!  frr-reload.py --test FILE: empty? ──yes──► done
//!     │ no (or batch failed)                          frr-reload.py --test FILE
//!     └──────────────► fall back to reload ──────►   empty, or rc 0 → done (Reload)
//!                                                     rc≠0 and not empty → roll back to the last
//!                                                     good text, report Reload error
//! ```
//!
//! Why the checks are shaped like this (frr/CANONICAL.md, frr-reference §3):
//! - `vtysh -C` and `frr-reload.py --test` check syntax only; a semantic error (a route-map on
//!   an unknown neighbor) is only caught by applying, and then the other lines are applied too.
//!   So a failed apply is rolled back to the last good text.
//! - frr-reload.py exits 1 when it re-adds `neighbor X graceful-restart` although everything was
//!   applied (CANONICAL.md fact 7): rc≠0 is trusted only together with a non-empty `--test`.
//! - A render that is not in canonical form leaves a permanent `--test` diff even though FRR
//!   accepted it. After a clean (rc 0) reload that diff is recorded as the *residual* and is
//!   reported, not treated as a failure; the fast path accepts exactly that residual.
//! - frr-reload.py deletes one line per vtysh process (26 s for 1,000 lines); the fast path
//!   sends the `no` lines in one batch (0.09 s).
//! - A Service's own change is `network` lines only, which only bgpd hears. A vtysh process
//!   costs 25-40 ms before its first command; a line on the open bgpd vty session costs
//!   ~0.1 ms. After that, bgpd holds its process queue 50 ms before it announces (FRR's
//!   `spec.hold`, not configurable), and the peer holds its own 50 ms before selecting.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};
use tracing::{debug, info, warn};

use super::{
    conf::{self, Conf, DeltaStats, RemovedNetwork},
    vty::{self, VtyError, VtySession},
    vtysh::{Output, Vtysh, VtyshError, run_process},
};

/// How long a removed network may stay in an Adj-RIB-Out before it is re-withdrawn (a queued
/// withdrawal is sent within a few ms on the lab; see [`Applier::ensure_withdrawn`]).
const WITHDRAW_GRACE: Duration = Duration::from_millis(300);
/// How long to keep re-withdrawing before giving up with a warning.
const WITHDRAW_DEADLINE: Duration = Duration::from_secs(10);

/// Where frr-reload.py lives on Debian and in the FRR images.
pub const DEFAULT_FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";

/// How to reach and drive one FRR instance.
#[derive(Clone, Debug)]
pub struct ApplierConfig {
    /// FRR pathspace (`-N`), or `None` for the default instance.
    pub pathspace: Option<String>,
    /// Directory for the files this module writes (`frr.conf`, `frr-delta.conf`, ...).
    pub dir: PathBuf,
    /// The vtysh binary.
    pub vtysh: PathBuf,
    /// frr-reload.py.
    pub frr_reload: PathBuf,
    /// Limit for vtysh calls.
    pub command_timeout: Duration,
    /// Limit for one `frr-reload.py --reload` (it deletes one line per process).
    pub reload_timeout: Duration,
    /// Use the incremental path when the change allows it (off: always frr-reload.py).
    pub incremental: bool,
    /// After an incremental apply, `write memory` so FRR's own frr.conf follows (frr-reload.py
    /// does that itself).
    pub persist: bool,
    /// FRR's socket directory (`/var/run/frr`): bgpd-only batches (`network` lines) go over a
    /// persistent session on `<dir>/[<pathspace>/]bgpd.vty` instead of a `vtysh -f` process.
    /// `None`: always `vtysh -f`.
    pub vty_run_dir: Option<PathBuf>,
}

impl ApplierConfig {
    /// Defaults for the instance with this pathspace, writing into `dir`.
    pub fn new(pathspace: Option<String>, dir: impl Into<PathBuf>) -> Self {
        Self {
            pathspace,
            dir: dir.into(),
            vtysh: PathBuf::from(super::vtysh::DEFAULT_VTYSH),
            frr_reload: PathBuf::from(DEFAULT_FRR_RELOAD),
            command_timeout: Duration::from_secs(60),
            reload_timeout: Duration::from_secs(600),
            incremental: true,
            persist: true,
            vty_run_dir: Some(PathBuf::from(vty::DEFAULT_RUN_DIR)),
        }
    }
}

/// The step an apply failed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Writing the file.
    Write,
    /// Syntax check (`vtysh -C`, `frr-reload.py --test`).
    Validate,
    /// The `vtysh -f` batch.
    IncrementalApply,
    /// `frr-reload.py --reload`.
    Reload,
    /// The `--test` after applying.
    Verify,
}

/// What happened to FRR after a failed apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollback {
    /// Nothing had been changed (the failure came before any change).
    NotNeeded,
    /// The last good configuration was re-applied and verified.
    Restored,
    /// Re-applying the last good configuration failed too.
    Failed(String),
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rollback::NotNeeded => f.write_str("FRR unchanged"),
            Rollback::Restored => f.write_str("the previous configuration was restored"),
            Rollback::Failed(e) => write!(f, "restoring the previous configuration failed: {e}"),
        }
    }
}

/// Why an apply failed. Every variant names the step; the previous configuration is still
/// the one running unless the rollback says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// FRR's parser rejects the text; nothing was applied.
    #[error("validate: FRR rejects the configuration: {output}")]
    Validate {
        /// What vtysh or frr-reload.py said.
        output: String,
    },
    /// The `vtysh -f` batch could not run.
    #[error("incremental apply: {source} ({rollback})")]
    IncrementalApply {
        /// The process error.
        #[source]
        source: VtyshError,
        /// What was done about it.
        rollback: Rollback,
    },
    /// frr-reload.py failed and the configuration is not in place.
    #[error("reload: {output} ({rollback})")]
    Reload {
        /// frr-reload.py's errors and the remaining diff.
        output: String,
        /// What was done about it.
        rollback: Rollback,
    },
    /// The check after applying could not run.
    #[error("verify: {source} ({rollback})")]
    Verify {
        /// The process error.
        #[source]
        source: VtyshError,
        /// What was done about it.
        rollback: Rollback,
    },
}

impl ApplyError {
    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            ApplyError::Write { .. } => Step::Write,
            ApplyError::Validate { .. } => Step::Validate,
            ApplyError::IncrementalApply { .. } => Step::IncrementalApply,
            ApplyError::Reload { .. } => Step::Reload,
            ApplyError::Verify { .. } => Step::Verify,
        }
    }
}

/// How a configuration reached FRR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ApplyPath {
    /// Same text as the last successful apply: nothing ran.
    Unchanged,
    /// One `vtysh -f` batch, confirmed by `frr-reload.py --test`.
    Incremental,
    /// `frr-reload.py --reload`.
    Reload,
}

/// A successful apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyReport {
    /// Which path ran.
    pub path: ApplyPath,
    /// Hash of the applied text ([`config_hash`]).
    pub hash: String,
    /// Wall time of the apply.
    pub duration: Duration,
    /// What the incremental batch changed (zero for a reload).
    pub stats: DeltaStats,
    /// Why the incremental path was not used or not enough (for a reload).
    pub fallback_reason: Option<String>,
    /// A `--test` diff FRR keeps showing although it accepted everything (non-canonical render).
    pub residual: Option<String>,
    /// Wall time of each step (`write`, `validate`, `batch`, `verify`, `persist`, `reload`).
    pub steps: Vec<(&'static str, Duration)>,
}

/// Short, stable hash of a configuration text (hex SHA-256, first 16 characters).
pub fn config_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug)]
struct Applied {
    text: Arc<str>,
    conf: Option<Conf>,
    /// The `--test` output accepted with this text (empty when canonical).
    residual: String,
}

/// Applies configurations to one FRR instance, remembering the last good one.
#[derive(Debug)]
pub struct Applier {
    cfg: ApplierConfig,
    vtysh: Vtysh,
    last: Option<Applied>,
    /// What ran before the first successful apply: the rollback target until then.
    baseline: Option<Applied>,
    /// Step timings of the apply in progress.
    steps: std::sync::Mutex<Vec<(&'static str, Duration)>>,
    /// The open session on bgpd's vty socket, opened on first use and dropped on any I/O error.
    bgpd: tokio::sync::Mutex<Option<VtySession>>,
    /// Leave the `--test` confirmation of vty batches to [`Applier::confirm`] (the apply loop
    /// runs it while idle) instead of running it inside [`Applier::apply`].
    defer_confirm: bool,
    /// What the deferred confirmation still has to check, accumulated over batches.
    pending: Option<PendingConfirm>,
}

/// Work left after vty batches whose confirmation was deferred.
#[derive(Clone, Debug, Default)]
struct PendingConfirm {
    /// `network` lines removed by the batches (checked out of every Adj-RIB-Out).
    removed: Vec<RemovedNetwork>,
    /// The batches changed something: FRR's own frr.conf must be written.
    persist: bool,
}

/// How an incremental apply ended.
enum Confirmation {
    /// `--test` confirmed it (and the withdraw check and persist ran).
    Done,
    /// Confirmation deferred to [`Applier::confirm`].
    Deferred(PendingConfirm),
}

impl Applier {
    /// An applier that has applied nothing yet (the first apply uses frr-reload.py).
    pub fn new(cfg: ApplierConfig) -> Self {
        let vtysh = Vtysh::new(cfg.pathspace.clone())
            .with_binary(cfg.vtysh.clone())
            .with_timeout(cfg.command_timeout);
        Self {
            cfg,
            vtysh,
            last: None,
            baseline: None,
            steps: Default::default(),
            bgpd: Default::default(),
            defer_confirm: false,
            pending: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ApplierConfig {
        &self.cfg
    }

    /// The vtysh client for this instance.
    pub fn vtysh(&self) -> &Vtysh {
        &self.vtysh
    }

    /// The last text applied successfully.
    pub fn last_applied(&self) -> Option<&str> {
        self.last.as_ref().map(|a| &*a.text)
    }

    /// The file the desired configuration is written to.
    pub fn config_path(&self) -> PathBuf {
        self.cfg.dir.join("frr.conf")
    }

    /// Applies `text`. On error FRR runs the previous configuration (see [`Rollback`]) and the
    /// last applied text is unchanged.
    pub async fn apply(&mut self, text: &str) -> Result<ApplyReport, ApplyError> {
        let start = Instant::now();
        let hash = config_hash(text);
        if self.last.as_ref().is_some_and(|a| &*a.text == text) {
            return Ok(ApplyReport {
                path: ApplyPath::Unchanged,
                hash,
                duration: start.elapsed(),
                stats: DeltaStats::default(),
                fallback_reason: None,
                residual: None,
                steps: Vec::new(),
            });
        }
        self.steps.lock().expect("invariant: steps lock").clear();
        let file = self.config_path();
        let t = Instant::now();
        write_atomic(&file, text)?;
        self.mark("write", t);

        let new_conf = Conf::parse(text);
        let fallback: String = match (&self.last, &new_conf) {
            _ if !self.cfg.incremental => "incremental path disabled".into(),
            (None, _) => "first apply".into(),
            (Some(Applied { conf: None, .. }), _) => "previous text not parsable".into(),
            (_, Err(e)) => format!("new text not parsable: {e}"),
            (
                Some(Applied {
                    conf: Some(old),
                    residual,
                    ..
                }),
                Ok(new),
            ) => {
                let delta = conf::delta(old, new);
                if delta.is_incremental() {
                    let residual = residual.clone();
                    if self.pending.is_some() && !self.deferrable(&delta) {
                        // This change will be confirmed now: confirm the earlier batches first,
                        // so their withdraw check and persist are not lost.
                        self.confirm().await?;
                    }
                    match self.incremental(&file, &delta, &residual).await {
                        Ok(confirmation) => {
                            if let Confirmation::Deferred(more) = confirmation {
                                let pending = self.pending.get_or_insert_with(Default::default);
                                pending.removed.extend(more.removed);
                                pending.persist |= more.persist;
                            }
                            self.remember(text, new_conf.ok(), residual.clone());
                            let report = ApplyReport {
                                path: ApplyPath::Incremental,
                                hash,
                                duration: start.elapsed(),
                                stats: delta.stats,
                                fallback_reason: None,
                                residual: (!residual.is_empty()).then_some(residual),
                                steps: self.take_steps(),
                            };
                            debug!(?report, "frr: incremental apply done");
                            return Ok(report);
                        }
                        Err(IncrementalMiss::Rejected(output)) => {
                            return Err(ApplyError::Validate { output });
                        }
                        Err(IncrementalMiss::Left(why)) => why,
                        Err(IncrementalMiss::Process(source)) => {
                            let rollback = self.rollback().await;
                            return Err(ApplyError::IncrementalApply { source, rollback });
                        }
                    }
                } else {
                    format!("structural: {}", delta.structural.join("; "))
                }
            }
        };

        if self.pending.is_some() {
            self.confirm().await?;
        }
        info!(reason = %fallback, "frr: applying with frr-reload.py");
        let t = Instant::now();
        self.check_syntax(&file).await?;
        self.mark("validate", t);
        let residual = self.reload(&file).await?;
        self.remember(text, new_conf.ok(), residual.clone());
        Ok(ApplyReport {
            path: ApplyPath::Reload,
            hash,
            duration: start.elapsed(),
            stats: DeltaStats::default(),
            fallback_reason: Some(fallback),
            residual: (!residual.is_empty()).then_some(residual),
            steps: self.take_steps(),
        })
    }

    fn mark(&self, step: &'static str, since: Instant) {
        self.steps
            .lock()
            .expect("invariant: steps lock")
            .push((step, since.elapsed()));
    }

    fn take_steps(&self) -> Vec<(&'static str, Duration)> {
        std::mem::take(&mut *self.steps.lock().expect("invariant: steps lock"))
    }

    fn remember(&mut self, text: &str, conf: Option<Conf>, residual: String) {
        self.last = Some(Applied {
            text: Arc::from(text),
            conf,
            residual,
        });
    }

    /// `vtysh -C -f FILE`: rc 0 means FRR's parser accepts every line.
    async fn check_syntax(&self, file: &Path) -> Result<(), ApplyError> {
        check_file(&self.vtysh, file).await
    }

    /// One batch with `vtysh -f`, then `--test` must show nothing but the accepted residual.
    ///
    /// Only the batch is syntax-checked (`vtysh -C`): every other line of the file is the last
    /// applied text, which FRR already accepted, and the `--test` afterwards parses the whole
    /// file again. That saves one full parse (70 ms at 5,000 lines) before the change.
    async fn incremental(
        &self,
        file: &Path,
        delta: &conf::Delta,
        residual: &str,
    ) -> Result<Confirmation, IncrementalMiss> {
        let batch = delta.batch.as_str();
        let removed = delta.removed_networks.as_slice();
        let mut batch_note = None;
        let mut sent = false;
        if self.goes_over_vty(delta) {
            let t = Instant::now();
            match self.batch_over_vty(batch).await {
                Ok(note) => {
                    self.mark("batch-vty", t);
                    batch_note = note;
                    sent = true;
                }
                Err(VtyBatchError::Unavailable(e)) => {
                    debug!(error = %e, "frr: bgpd vty unavailable, using vtysh -f");
                }
                Err(VtyBatchError::Rejected(output)) => {
                    return Err(IncrementalMiss::Rejected(output));
                }
                Err(VtyBatchError::Mismatch(why)) => {
                    return Err(IncrementalMiss::Left(format!("bgpd refused {why}")));
                }
                Err(VtyBatchError::Broken(e)) => {
                    // Part of the batch may be in; frr-reload.py diffs against what is running.
                    return Err(IncrementalMiss::Left(format!(
                        "bgpd vty session broke: {e}"
                    )));
                }
            }
        }
        if sent && batch_note.is_none() && self.defer_confirm {
            return Ok(Confirmation::Deferred(PendingConfirm {
                removed: removed.to_vec(),
                persist: self.cfg.persist,
            }));
        }
        if !batch.is_empty() && !sent {
            let delta_file = self.cfg.dir.join("frr-delta.conf");
            write_atomic(&delta_file, batch)
                .map_err(|e| IncrementalMiss::Left(format!("cannot write the batch: {e}")))?;
            let t = Instant::now();
            match self.check_syntax(&delta_file).await {
                Ok(()) => {}
                Err(ApplyError::Validate { output }) => {
                    return Err(IncrementalMiss::Rejected(output));
                }
                Err(e) => return Err(IncrementalMiss::Left(e.to_string())),
            }
            self.mark("validate", t);
            let t = Instant::now();
            let out = self
                .vtysh
                .raw(&["-f", &delta_file.to_string_lossy()])
                .await
                .map_err(IncrementalMiss::Process)?;
            self.mark("batch", t);
            if !out.success() {
                // Some line failed; the rest was applied. The check below decides.
                warn!(code = ?out.code, output = %out.text(), "frr: incremental batch reported errors");
                batch_note = Some(format!(
                    "batch exited {:?}: {}",
                    out.code,
                    first_lines(&out.text(), 5)
                ));
            }
        }
        let t = Instant::now();
        let test = self.test(file).await.map_err(IncrementalMiss::Process)?;
        self.mark("verify", t);
        if test.success() && test.stdout.trim() == residual.trim() {
            if !removed.is_empty() {
                let t = Instant::now();
                self.ensure_withdrawn(removed).await;
                self.mark("withdraw-check", t);
            }
            if self.cfg.persist && !batch.is_empty() {
                // FRR's own frr.conf must follow, or a daemon restart brings back old lines.
                let t = Instant::now();
                if let Err(e) = self.vtysh.command("write memory").await {
                    warn!(error = %e, "frr: write memory failed after incremental apply");
                }
                self.mark("persist", t);
            }
            return Ok(Confirmation::Done);
        }
        let mut why = format!(
            "after the batch, --test shows: {}",
            first_lines(&test.stdout, 6)
        );
        if let Some(note) = batch_note {
            why = format!("{note}; {why}");
        }
        Err(IncrementalMiss::Left(why))
    }

    /// Sends a bgpd-only batch (`router bgp` / `address-family` / `[no] network` lines) over the
    /// bgpd vty session, one command at a time, and leaves config mode again.
    ///
    /// A line bgpd's parser rejects stops the batch and the lines before it are undone, so
    /// nothing of a rejected batch stays applied (the job `vtysh -C` does on the other path,
    /// without its 30-50 ms process). Any other failed line (`no network` of a prefix bgpd no
    /// longer has) is reported and the batch goes on; the `--test` afterwards decides.
    async fn batch_over_vty(&self, batch: &str) -> Result<Option<String>, VtyBatchError> {
        let mut guard = self.bgpd.lock().await;
        if guard.is_none() {
            let dir = self
                .cfg
                .vty_run_dir
                .as_deref()
                .unwrap_or(Path::new(vty::DEFAULT_RUN_DIR));
            let path = vty::socket_path(dir, self.cfg.pathspace.as_deref(), "bgpd");
            let session = VtySession::connect(path, self.cfg.command_timeout)
                .await
                .map_err(VtyBatchError::Unavailable)?;
            *guard = Some(session);
        }
        let session = guard.as_mut().expect("invariant: connected above");
        let result = run_vty_batch(session, batch).await;
        match result {
            Ok(VtyBatchOutcome::Done { failures }) => Ok(
                (!failures.is_empty()).then(|| format!("bgpd refused: {}", failures.join("; ")))
            ),
            Ok(VtyBatchOutcome::Rejected {
                syntax,
                line,
                output,
                applied,
            }) => {
                let undo = undo_batch(&applied);
                if !undo.is_empty()
                    && let Err(e) = run_vty_batch(session, &undo).await
                {
                    *guard = None;
                    return Err(VtyBatchError::Broken(e));
                }
                let why = format!("`{line}`: {}", output.trim());
                Err(if syntax {
                    VtyBatchError::Rejected(why)
                } else {
                    VtyBatchError::Mismatch(why)
                })
            }
            Err(e) => {
                *guard = None;
                Err(VtyBatchError::Broken(e))
            }
        }
    }

    /// Makes sure every removed `network` really left the Adj-RIB-Out of every established
    /// neighbor, re-withdrawing it (`network X`, then `no network X`) when bgpd lost the
    /// withdrawal.
    ///
    /// Measured in the netns lab (shell repro of the k8s_lab
    /// `service_through_the_api_reaches_the_router_and_is_withdrawn` flake: two nodes, the
    /// prefix announced by the first reload, `no network` via `vtysh -f` right after the
    /// session is Established or right after the router has both paths): 2 of ~44 deletes
    /// were lost. In both, the node's `show bgp ipv4 unicast` had 0 prefixes but
    /// `neighbors 10.77.0.1 advertised-routes` still listed the prefix (Adj-RIB-Out entry with
    /// no path), no withdrawal was sent, and the router kept a normal, not stale, path from
    /// that node (GR is helper-only, no AFI in the capability) indefinitely.
    /// `clear bgp ipv4 unicast 10.77.0.1 soft out` did not remove it; `network X` followed by
    /// `no network X` (two vtysh runs) did.
    ///
    /// Likely mechanism (FRR source, not proven step by step): `group_announce_route_walkcb`
    /// skips update subgroups whose coalesce timer runs, and the table walk when the timer
    /// fires only announces selected paths; it never withdraws an Adj-RIB-Out entry whose
    /// prefix has no path. The timer runs around session establishment.
    async fn ensure_withdrawn(&self, removed: &[RemovedNetwork]) {
        let start = Instant::now();
        let mut rewithdrawn = 0usize;
        loop {
            let stale = match self.still_advertised(removed).await {
                Ok(stale) => stale,
                Err(e) => {
                    warn!(error = %e, "frr: cannot check that removed networks were withdrawn");
                    return;
                }
            };
            if stale.is_empty() {
                if rewithdrawn > 0 {
                    info!(
                        rounds = rewithdrawn,
                        ms = start.elapsed().as_millis() as u64,
                        "frr: bgpd had lost withdrawals; re-withdrawn"
                    );
                }
                return;
            }
            let elapsed = start.elapsed();
            if elapsed >= WITHDRAW_DEADLINE {
                let left: Vec<&str> = stale.iter().map(|r| r.prefix.as_str()).collect();
                warn!(prefixes = ?left, "frr: removed networks are still advertised");
                return;
            }
            if elapsed < WITHDRAW_GRACE {
                // A withdrawal that is queued but not sent yet (bgpd holds its process queue
                // for 50 ms) is still in the Adj-RIB-Out.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            rewithdrawn += 1;
            debug!(
                count = stale.len(),
                "frr: re-withdrawing networks bgpd still advertises"
            );
            if let Err(e) = self.rewithdraw(&stale).await {
                warn!(error = %e, "frr: re-withdrawing networks failed");
                return;
            }
            // Give a running coalesce timer (1.05 s on FRR 8.4) time to end before checking.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// A bgpd `show` command's output: over the bgpd vty session when it is available (sub-ms),
    /// else one vtysh process.
    async fn bgpd_show(&self, command: &str) -> Result<String, VtyshError> {
        if self.cfg.vty_run_dir.is_some() {
            let mut guard = self.bgpd.lock().await;
            if let Some(session) = guard.as_mut() {
                match session.command(command).await {
                    Ok(reply) if reply.success() => return Ok(reply.output),
                    Ok(reply) => {
                        return Err(VtyshError::Failed {
                            what: format!("bgpd vty `{command}`"),
                            code: Some(i32::from(reply.status)),
                            output: reply.output.trim().to_string(),
                        });
                    }
                    Err(e) => {
                        debug!(error = %e, "frr: bgpd vty session lost; using vtysh");
                        *guard = None;
                    }
                }
            }
        }
        self.vtysh.command(command).await
    }

    /// The removed networks that some established neighbor still has in its Adj-RIB-Out.
    async fn still_advertised<'a>(
        &self,
        removed: &'a [RemovedNetwork],
    ) -> Result<Vec<&'a RemovedNetwork>, VtyshError> {
        let mut vrfs: Vec<&str> = removed.iter().map(|r| r.vrf()).collect();
        vrfs.sort_unstable();
        vrfs.dedup();
        let mut stale: Vec<&RemovedNetwork> = Vec::new();
        for vrf in vrfs {
            let neighbors = self
                .bgpd_show(&format!("show bgp vrf {vrf} neighbors json"))
                .await
                .and_then(|text| super::vtysh::parse_bgp_neighbors(&text))?;
            let mut afis: Vec<&str> = removed
                .iter()
                .filter(|r| r.vrf() == vrf)
                .map(|r| r.afi_safi())
                .collect();
            afis.sort_unstable();
            afis.dedup();
            for (peer, n) in neighbors.iter().filter(|(_, n)| n.is_established()) {
                for afi in &afis {
                    // `ipv4 unicast` → `ipv4Unicast`: only neighbors active in the family
                    // (FRR answers "No such neighbor or address family" for the others).
                    let key = afi.replacen(" u", "U", 1);
                    if !n.address_family_info.contains_key(&key) {
                        continue;
                    }
                    let cmd =
                        format!("show bgp vrf {vrf} {afi} neighbors {peer} advertised-routes json");
                    let v: serde_json::Value = match self
                        .bgpd_show(&cmd)
                        .await
                        .and_then(|text| super::vtysh::parse_json(&cmd, &text))
                    {
                        Ok(v) => v,
                        Err(e) => {
                            debug!(error = %e, "frr: advertised-routes check skipped");
                            continue;
                        }
                    };
                    let Some(adv) = v.get("advertisedRoutes").and_then(|a| a.as_object()) else {
                        continue;
                    };
                    for r in removed {
                        if r.vrf() == vrf
                            && r.afi_safi() == *afi
                            && adv.contains_key(&r.prefix)
                            && !stale.contains(&r)
                        {
                            stale.push(r);
                        }
                    }
                }
            }
        }
        Ok(stale)
    }

    /// `network X` and then, once bgpd has processed it, `no network X`: the path comes back
    /// and goes again, and this time the withdrawal reaches every subgroup.
    async fn rewithdraw(&self, stale: &[&RemovedNetwork]) -> Result<(), VtyshError> {
        let mut add = String::new();
        let mut remove = String::new();
        for r in stale {
            add.push_str(&format!(
                "{}\n {}\n  network {}\n exit-address-family\nexit\n",
                r.router, r.family, r.prefix
            ));
            remove.push_str(&format!(
                "{}\n {}\n  no network {}\n exit-address-family\nexit\n",
                r.router, r.family, r.prefix
            ));
        }
        let file = self.cfg.dir.join("frr-rewithdraw.conf");
        for (i, text) in [add, remove].iter().enumerate() {
            if i == 1 {
                // Both lines in one batch can be folded into one bgp_process run that sees no
                // change at all; let bgpd process the re-added path first.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            if self.cfg.vty_run_dir.is_some() && self.batch_over_vty(text).await.is_ok() {
                continue;
            }
            write_atomic(&file, text).map_err(|e| VtyshError::Failed {
                what: "write the re-withdraw batch".into(),
                code: None,
                output: e.to_string(),
            })?;
            let out = self.vtysh.raw(&["-f", &file.to_string_lossy()]).await?;
            if !out.success() {
                return Err(VtyshError::Failed {
                    what: "vtysh -f re-withdraw batch".into(),
                    code: out.code,
                    output: out.text(),
                });
            }
        }
        Ok(())
    }

    /// `frr-reload.py --test`, `--reload`, `--test`; returns the accepted residual diff.
    async fn reload(&mut self, file: &Path) -> Result<String, ApplyError> {
        let pre = self.test(file).await.map_err(|e| ApplyError::Validate {
            output: e.to_string(),
        })?;
        if !pre.success() {
            // frr-reload --test prints a bogus "Lines To Delete" on parse errors (FRR #10453);
            // only stderr is worth showing.
            return Err(ApplyError::Validate {
                output: pre.stderr.trim().to_string(),
            });
        }
        // Before the first apply there is no last good text: keep what runs now, so a failed
        // first apply can still be undone.
        if self.last.is_none() && self.baseline.is_none() {
            match self.vtysh.running_config().await {
                Ok(running) => {
                    let conf = Conf::parse(&running).ok();
                    self.baseline = Some(Applied {
                        text: Arc::from(running.as_str()),
                        conf,
                        residual: String::new(),
                    });
                }
                Err(e) => {
                    warn!(error = %e, "frr: cannot read the running config before the first apply")
                }
            }
        }
        let t = Instant::now();
        let out = self.frr_reload(&["--reload", "--stdout"], file).await;
        self.mark("reload", t);
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let rollback = self.rollback().await;
                return Err(ApplyError::Reload {
                    output: e.to_string(),
                    rollback,
                });
            }
        };
        let t = Instant::now();
        let post = self.test(file).await;
        self.mark("verify", t);
        let post = match post {
            Ok(post) => post,
            Err(source) => {
                let rollback = self.rollback().await;
                return Err(ApplyError::Verify { source, rollback });
            }
        };
        let left = post.stdout.trim().to_string();
        if post.success() && (left.is_empty() || out.success()) {
            if !out.success() {
                info!(code = ?out.code, "frr: frr-reload.py exited non-zero but nothing is left to apply");
            }
            if !left.is_empty() {
                warn!(diff = %first_lines(&left, 10), "frr: configuration applied but not in canonical form: frr-reload.py keeps a diff");
            }
            return Ok(left);
        }
        let output = format!(
            "frr-reload.py exited {:?}: {}; still to apply: {}",
            out.code,
            first_lines(&reload_errors(&out), 8),
            first_lines(&left, 8)
        );
        let rollback = self.rollback().await;
        Err(ApplyError::Reload { output, rollback })
    }

    /// Makes [`Applier::apply`] leave the `--test` confirmation of bgpd vty batches (and their
    /// withdraw check and `write memory`) to [`Applier::confirm`]. The apply loop turns this on
    /// and confirms while idle, so a Service change is not queued behind the previous change's
    /// 100-300 ms `frr-reload.py --test`.
    pub fn set_defer_confirm(&mut self, defer: bool) {
        self.defer_confirm = defer;
    }

    /// True when vty batches wait for [`Applier::confirm`].
    pub fn confirm_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The delta is sent over the bgpd vty session (when the session can be opened).
    fn goes_over_vty(&self, delta: &conf::Delta) -> bool {
        self.cfg.vty_run_dir.is_some() && delta.is_bgpd_only() && !delta.batch.is_empty()
    }

    /// The delta's confirmation may wait for [`Applier::confirm`].
    fn deferrable(&self, delta: &conf::Delta) -> bool {
        self.defer_confirm && self.goes_over_vty(delta)
    }

    /// The read-only half of [`Applier::confirm`]: `frr-reload.py --test` of the last applied
    /// text. Dropping it mid-way is safe (the process is killed), which is how the loop puts a
    /// new change ahead of a confirmation.
    pub async fn confirm_test(&self) -> Result<Output, VtyshError> {
        let text = self
            .last
            .as_ref()
            .map(|a| a.text.clone())
            .unwrap_or_default();
        let file = self.cfg.dir.join("frr-confirm.conf");
        write_atomic(&file, &text).map_err(|e| VtyshError::Failed {
            what: format!("write {}", file.display()),
            code: None,
            output: e.to_string(),
        })?;
        self.test(&file).await
    }

    /// The rest of [`Applier::confirm`] once `test` is known: when FRR runs the applied text,
    /// check that removed networks left every Adj-RIB-Out and `write memory`; otherwise reload
    /// the applied text (`Ok(Some(report))`).
    pub async fn confirm_finish(
        &mut self,
        test: Result<Output, VtyshError>,
    ) -> Result<Option<ApplyReport>, ApplyError> {
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let Some(last) = self.last.clone() else {
            return Ok(None);
        };
        let start = Instant::now();
        self.steps.lock().expect("invariant: steps lock").clear();
        let test = test.map_err(|source| ApplyError::Verify {
            source,
            rollback: Rollback::NotNeeded,
        })?;
        if test.success() && test.stdout.trim() == last.residual.trim() {
            if !pending.removed.is_empty() {
                self.ensure_withdrawn(&pending.removed).await;
            }
            if pending.persist
                && let Err(e) = self.vtysh.command("write memory").await
            {
                warn!(error = %e, "frr: write memory failed after incremental applies");
            }
            return Ok(None);
        }
        let left = first_lines(&test.stdout, 6);
        warn!(diff = %left, "frr: vty batches left a difference; reloading the applied text");
        let file = self.cfg.dir.join("frr-confirm.conf");
        let why = format!("after vty batches, --test shows: {left}");
        self.reload_applied(&last, &file, why, start)
            .await
            .map(Some)
    }

    /// Reloads `last` (written to `file`) after a `--test` showed FRR runs something else.
    async fn reload_applied(
        &mut self,
        last: &Applied,
        file: &Path,
        why: String,
        start: Instant,
    ) -> Result<ApplyReport, ApplyError> {
        let residual = self.reload(file).await?;
        self.remember(&last.text, last.conf.clone(), residual.clone());
        Ok(ApplyReport {
            path: ApplyPath::Reload,
            hash: config_hash(&last.text),
            duration: start.elapsed(),
            stats: DeltaStats::default(),
            fallback_reason: Some(why),
            residual: (!residual.is_empty()).then_some(residual),
            steps: self.take_steps(),
        })
    }

    /// Confirms deferred vty batches: [`Applier::confirm_test`], then
    /// [`Applier::confirm_finish`]. `Ok(None)` when nothing was pending or FRR runs the text.
    pub async fn confirm(&mut self) -> Result<Option<ApplyReport>, ApplyError> {
        if self.pending.is_none() {
            return Ok(None);
        }
        let test = self.confirm_test().await;
        self.confirm_finish(test).await
    }

    /// Checks that FRR still runs the last applied text (`frr-reload.py --test` shows nothing
    /// beyond the accepted residual) and re-applies it with frr-reload.py if not: a daemon
    /// restart from an old file, or someone's manual `vtysh` change. `Ok(None)` when nothing
    /// was applied yet or nothing drifted.
    pub async fn resync(&mut self) -> Result<Option<ApplyReport>, ApplyError> {
        if self.pending.is_some() {
            // The same check, plus the deferred withdraw check and persist.
            return self.confirm().await;
        }
        let Some(last) = self.last.clone() else {
            return Ok(None);
        };
        let start = Instant::now();
        self.steps.lock().expect("invariant: steps lock").clear();
        let file = self.cfg.dir.join("frr-applied.conf");
        write_atomic(&file, &last.text)?;
        let t = Instant::now();
        let test = self
            .test(&file)
            .await
            .map_err(|source| ApplyError::Verify {
                source,
                rollback: Rollback::NotNeeded,
            })?;
        self.mark("verify", t);
        if test.success() && test.stdout.trim() == last.residual.trim() {
            return Ok(None);
        }
        let drift = first_lines(&test.stdout, 6);
        warn!(diff = %drift, "frr: running configuration drifted from the applied one; reloading");
        let why = format!("drift: {drift}");
        self.reload_applied(&last, &file, why, start)
            .await
            .map(Some)
    }

    /// Re-applies the last good text (or what ran before the first apply).
    async fn rollback(&mut self) -> Rollback {
        let Some(target) = self.last.clone().or_else(|| self.baseline.clone()) else {
            return Rollback::Failed("no previous configuration known".into());
        };
        let file = self.cfg.dir.join("frr-rollback.conf");
        if let Err(e) = write_atomic(&file, &target.text) {
            return Rollback::Failed(e.to_string());
        }
        if let Err(e) = self.frr_reload(&["--reload", "--stdout"], &file).await {
            return Rollback::Failed(e.to_string());
        }
        match self.test(&file).await {
            Ok(t) if t.success() && t.stdout.trim() == target.residual.trim() => {
                warn!("frr: rolled back to the previous configuration");
                Rollback::Restored
            }
            Ok(t) => Rollback::Failed(format!(
                "after the rollback --test shows: {}",
                first_lines(&t.stdout, 6)
            )),
            Err(e) => Rollback::Failed(e.to_string()),
        }
    }

    async fn test(&self, file: &Path) -> Result<Output, VtyshError> {
        self.frr_reload(&["--test", "--stdout"], file).await
    }

    async fn frr_reload(&self, mode: &[&str], file: &Path) -> Result<Output, VtyshError> {
        let file = file.to_string_lossy();
        let mut args: Vec<&str> = Vec::new();
        if let Some(ns) = &self.cfg.pathspace {
            args.extend(["-N", ns.as_str()]);
        }
        let bindir = self
            .cfg
            .vtysh
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/usr/bin".into());
        args.extend(["--bindir", &bindir]);
        args.extend_from_slice(mode);
        args.push(&file);
        let timeout = if mode.contains(&"--reload") {
            self.cfg.reload_timeout
        } else {
            self.cfg.command_timeout
        };
        run_process(&self.cfg.frr_reload, &args, timeout).await
    }
}

enum IncrementalMiss {
    /// FRR's parser rejects a line of the batch; nothing was applied.
    Rejected(String),
    /// Something is left after the batch: fall back to frr-reload.py.
    Left(String),
    /// The batch or the check could not run at all.
    Process(VtyshError),
}

/// The error lines of a frr-reload.py run (it logs everything to stderr with `--stdout`).
fn reload_errors(out: &Output) -> String {
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .filter(|l| l.contains("ERROR") || l.contains("% ") || l.contains("Failed"))
        .collect();
    if errors.is_empty() {
        out.text()
    } else {
        errors.join("\n")
    }
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    if lines.len() <= n {
        lines.join(" | ")
    } else {
        format!(
            "{} | … ({} more lines)",
            lines[..n].join(" | "),
            lines.len() - n
        )
    }
}

/// `vtysh -C -f FILE`: rc 0 means FRR's parser accepts every line; FRR's daemons are not
/// asked.
pub async fn check_file(vtysh: &Vtysh, file: &Path) -> Result<(), ApplyError> {
    let out = vtysh
        .raw(&["-C", "-f", &file.to_string_lossy()])
        .await
        .map_err(|e| ApplyError::Validate {
            output: e.to_string(),
        })?;
    if out.success() {
        Ok(())
    } else {
        Err(ApplyError::Validate { output: out.text() })
    }
}

/// [`check_file`] on `text`, through a private (0600: it can hold passwords) temporary file in
/// `dir` that is removed afterwards; nothing is applied.
pub async fn check_text(vtysh: &Vtysh, dir: &Path, text: &str) -> Result<(), ApplyError> {
    let err = |source| ApplyError::Write {
        path: dir.to_path_buf(),
        source,
    };
    let tmp = private_tempfile(dir, ".frr-check-", text).map_err(err)?;
    check_file(vtysh, tmp.path()).await
}

/// A new temporary file in `dir` (created if missing), mode 0600, holding `text` on disk.
fn private_tempfile(
    dir: &Path,
    prefix: &str,
    text: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, mode
/// 0600 (the file can hold BGP passwords). Readers never see a half-written file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), ApplyError> {
    let err = |source| ApplyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = private_tempfile(dir, ".frr-", text).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Why a batch did not go over the bgpd vty session.
#[derive(Debug)]
enum VtyBatchError {
    /// No session could be opened; nothing was sent (use `vtysh -f`).
    Unavailable(VtyError),
    /// bgpd's parser rejected a line; the lines before it were undone.
    Rejected(String),
    /// bgpd refused a context line (it runs something else); the lines before it were undone.
    Mismatch(String),
    /// The session failed mid-batch; what was applied is unknown.
    Broken(VtyError),
}

/// How a batch sent over a vty session ended.
#[derive(Debug, PartialEq, Eq)]
enum VtyBatchOutcome {
    /// Every line was sent; `failures` lists the lines bgpd refused for other than syntax.
    Done { failures: Vec<String> },
    /// `line` was a syntax error (or a context line bgpd refused); `applied` holds the
    /// `network` changes made before it.
    Rejected {
        syntax: bool,
        line: String,
        output: String,
        applied: Vec<NetworkChange>,
    },
}

/// One `[no] network` line and where it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NetworkChange {
    router: String,
    family: String,
    line: String,
}

/// Runs a batch of config lines from enable mode: `configure terminal`, each line, `end`.
async fn run_vty_batch(session: &mut VtySession, batch: &str) -> Result<VtyBatchOutcome, VtyError> {
    let reply = session.command("configure terminal").await?;
    if !reply.success() {
        return Err(VtyError::Io {
            path: session.path().to_path_buf(),
            command: "configure terminal".into(),
            source: std::io::Error::other(reply.output.trim().to_string()),
        });
    }
    let mut router = String::new();
    let mut family = String::new();
    let mut applied = Vec::new();
    let mut failures = Vec::new();
    let mut outcome = None;
    for line in batch.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let reply = session.command(line).await?;
        let is_network = line.starts_with("network ") || line.starts_with("no network ");
        // A refused context line (`router bgp` of another ASN) would send the lines after it
        // to the wrong node: stop there too.
        if reply.is_syntax_error() || (!is_network && !reply.success()) {
            outcome = Some(VtyBatchOutcome::Rejected {
                syntax: reply.is_syntax_error(),
                line: line.to_string(),
                output: reply.output,
                applied: std::mem::take(&mut applied),
            });
            break;
        }
        if !reply.success() {
            failures.push(format!("`{line}`: {}", reply.output.trim()));
        }
        if line.starts_with("router bgp ") {
            router = line.to_string();
        } else if line.starts_with("address-family ") {
            family = line.to_string();
        } else if is_network && reply.success() {
            applied.push(NetworkChange {
                router: router.clone(),
                family: family.clone(),
                line: line.to_string(),
            });
        }
    }
    // Back to enable mode whatever happened, so the next batch starts from a known node.
    session.command("end").await?;
    Ok(outcome.unwrap_or(VtyBatchOutcome::Done { failures }))
}

/// The batch that reverts `applied` (newest first).
fn undo_batch(applied: &[NetworkChange]) -> String {
    let mut undo = String::new();
    for c in applied.iter().rev() {
        let inverse = match c.line.strip_prefix("no ") {
            Some(add) => add.to_string(),
            None => format!("no {}", c.line),
        };
        undo.push_str(&format!(
            "{}\n {}\n  {inverse}\n exit-address-family\nexit\n",
            c.router, c.family
        ));
    }
    undo
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn write_is_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/frr.conf");
        write_atomic(&path, "a\n").unwrap();
        write_atomic(&path, "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["frr.conf"]);
    }

    #[test]
    fn hash_is_short_and_stable() {
        assert_eq!(config_hash("x"), config_hash("x"));
        assert_ne!(config_hash("x"), config_hash("y"));
        assert_eq!(config_hash("").len(), 16);
    }

    #[test]
    fn errors_name_their_step() {
        let e = ApplyError::Validate {
            output: "line 3: % Unknown command".into(),
        };
        assert_eq!(e.step(), Step::Validate);
        assert!(e.to_string().starts_with("validate: "));
        let e = ApplyError::Reload {
            output: "x".into(),
            rollback: Rollback::Restored,
        };
        assert_eq!(
            e.to_string(),
            "reload: x (the previous configuration was restored)"
        );
    }

    #[tokio::test]
    async fn same_text_twice_runs_nothing() {
        // A vtysh that does not exist: any process would fail the apply.
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ApplierConfig::new(None, dir.path());
        cfg.vtysh = dir.path().join("no-vtysh");
        cfg.frr_reload = dir.path().join("no-frr-reload");
        let mut a = Applier::new(cfg);
        a.last = Some(Applied {
            text: Arc::from("x\n"),
            conf: None,
            residual: String::new(),
        });
        let r = a.apply("x\n").await.unwrap();
        assert_eq!(r.path, ApplyPath::Unchanged);
        assert!(a.apply("y\n").await.is_err());
        assert_eq!(a.last_applied(), Some("x\n"));
    }
}
