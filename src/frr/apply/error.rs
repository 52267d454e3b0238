//! Why an apply failed, in which step, and what became of FRR's configuration.

use std::path::PathBuf;

use crate::frr::vtysh::VtyshError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
