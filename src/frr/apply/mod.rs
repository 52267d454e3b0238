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
//!
//! The steps live in one file each, all `impl Applier`: this file holds the state machine
//! ([`Applier::apply`]); `incremental.rs` the fast path, `vty_batch.rs` its bgpd vty session,
//! `withdraw.rs` the Adj-RIB-Out check after removals, `reload.rs` the frr-reload.py fallback
//! and the rollback, `confirm.rs` the deferred confirmation and the drift resync, `error.rs`
//! what a failure reports.

mod confirm;
mod error;
mod incremental;
mod reload;
mod vty_batch;
mod withdraw;

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};
use tracing::{debug, info};

use super::{
    conf::{self, Conf, DeltaStats},
    vty::{self, VtySession},
    vtysh::Vtysh,
};
use confirm::{Confirmation, PendingConfirm};
pub use error::{ApplyError, Rollback, Step};
use incremental::IncrementalMiss;

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
