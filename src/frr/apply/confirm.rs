//! Confirming vty batches later (the apply loop does it while idle), and the resync that
//! re-applies the last text when FRR drifted from it.

use std::{path::Path, time::Instant};

use tracing::warn;

use super::{
    Applied, Applier, ApplyError, ApplyPath, ApplyReport, Rollback, config_hash, first_lines,
    write_atomic,
};
use crate::frr::{
    conf::{self, DeltaStats, RemovedNetwork},
    vtysh::{Output, VtyshError},
};

/// Work left after vty batches whose confirmation was deferred.
#[derive(Clone, Debug, Default)]
pub(super) struct PendingConfirm {
    /// `network` lines removed by the batches (checked out of every Adj-RIB-Out).
    pub(super) removed: Vec<RemovedNetwork>,
    /// The batches changed something: FRR's own frr.conf must be written.
    pub(super) persist: bool,
}

/// How an incremental apply ended.
pub(super) enum Confirmation {
    /// `--test` confirmed it (and the withdraw check and persist ran).
    Done,
    /// Confirmation deferred to [`Applier::confirm`].
    Deferred(PendingConfirm),
}

impl Applier {
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

    /// The delta's confirmation may wait for [`Applier::confirm`].
    pub(super) fn deferrable(&self, delta: &conf::Delta) -> bool {
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
}
