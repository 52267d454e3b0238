//! FRR: rendering the speaker's configuration model into `frr.conf`, applying it to a running
//! FRR safely and fast, and reading FRR's state back.
//!
//! - [`render`]: the FRR configuration model → canonical `frr.conf` text.
//! - [`vty`]: a persistent session on a daemon's vty socket (bgpd-only batches, sub-ms).
//! - [`vtysh`]: run vtysh commands with a timeout; typed JSON status (neighbors, BFD, routes).
//! - [`conf`]: frr.conf text → contexts; the incremental delta between two texts.
//! - [`apply`]: one apply (write, validate, incremental batch or frr-reload.py, verify,
//!   rollback).
//! - [`apply_loop`]: the task that debounces desired configs and applies the latest.

pub mod apply;
pub mod apply_loop;
pub mod conf;
pub mod render;
pub mod vty;
pub mod vtysh;
