//! Sending a bgpd-only batch over the persistent bgpd vty session, a line at a time, and
//! undoing it when bgpd's parser rejects a line.

use std::path::Path;

use super::Applier;
use crate::frr::vty::{self, VtyError, VtySession};

impl Applier {
    /// Sends a bgpd-only batch (`router bgp` / `address-family` / `[no] network` lines) over the
    /// bgpd vty session, one command at a time, and leaves config mode again.
    ///
    /// A line bgpd's parser rejects stops the batch and the lines before it are undone, so
    /// nothing of a rejected batch stays applied (the job `vtysh -C` does on the other path,
    /// without its 30-50 ms process). Any other failed line (`no network` of a prefix bgpd no
    /// longer has) is reported and the batch goes on; the `--test` afterwards decides.
    pub(super) async fn batch_over_vty(
        &self,
        batch: &str,
    ) -> Result<Option<String>, VtyBatchError> {
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
}

#[derive(Debug)]
pub(super) enum VtyBatchError {
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
