//! FRR: rendering the speaker's configuration model into `frr.conf`.

pub mod render;
