//! `metallb speaker` on the Kubernetes API: the same render pipeline as the manifest-driven
//! speaker (`cmd::speaker`), with its objects read from reflectors instead of files.
//!
//! ```text
//!  watch::run ×11 (Services, EndpointSlices, Nodes, Namespaces, 7 metallb.io kinds)
//!        │ stores                       │ Input::Changed / Synced
//!        ▼                              ▼
//!  ApiSource::resources() ◄── changed() (after every store's first list)
//!        │ Services with addresses in status only: the controller assigns, the speaker announces
//!        ▼
//!  cmd::speaker::render_resources → frr.conf → apply loop → FRR
//! ```

pub mod source;
