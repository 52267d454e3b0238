//! The fallback: `frr-reload.py --test`, `--reload`, `--test` of the whole file, and the
//! rollback to the last good text when FRR did not take it.

use std::{path::Path, sync::Arc, time::Instant};

use tracing::{info, warn};

use super::{Applied, Applier, ApplyError, Rollback, first_lines, write_atomic};
use crate::frr::{
    conf::Conf,
    vtysh::{Output, VtyshError, run_process},
};

impl Applier {
    /// `frr-reload.py --test`, `--reload`, `--test`; returns the accepted residual diff.
    pub(super) async fn reload(&mut self, file: &Path) -> Result<String, ApplyError> {
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

    /// Re-applies the last good text (or what ran before the first apply).
    pub(super) async fn rollback(&mut self) -> Rollback {
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

    pub(super) async fn test(&self, file: &Path) -> Result<Output, VtyshError> {
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
