//! `metallb operator`: deploys MetalLB from the `MetalLB` resource (seed chapter 26.2).
//!
//! ```text
//!  MetalLB "metallb" ─► validate ─► build (pure) ─► server-side apply ─► status
//!                                  controller Deployment, speaker DaemonSet,
//!                                  metrics Services (+ webhook), owned by the MetalLB
//! ```
//!
//! - [`build`]: the objects for a MetalLB and the images (also `metallb operator render`).
//! - [`validate`]: spec checks the schema cannot express.
//! - [`status`]: conditions from the workloads' own status.
//! - [`reconcile`]: the watch loop (kube-runtime `Controller`).

pub mod build;
pub mod reconcile;
pub mod status;
pub mod validate;

/// Field manager of every write of the operator.
pub const FIELD_MANAGER: &str = crate::api::labels::OPERATOR_FIELD_MANAGER;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The embedded manifests are broken (a bug of this build).
    #[error(transparent)]
    Build(#[from] build::BuildError),
    /// The apiserver refused an object.
    #[error("{object}: apply failed: {source}")]
    Apply {
        /// `Kind/name`.
        object: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The status could not be written.
    #[error("MetalLB/{name}: status not written: {source}")]
    Status {
        /// The MetalLB.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The built objects lack the controller or the speaker (a bug of this build).
    #[error("the built objects have no controller Deployment or speaker DaemonSet")]
    MissingWorkload,
}
