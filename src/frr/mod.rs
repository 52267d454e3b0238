//! Driving FRR: the vtysh client, frr.conf contexts and deltas, applying a rendered
//! configuration safely and fast, and the apply loop that feeds it.
//!
//! - [`vtysh`]: run vtysh commands with a timeout; typed JSON status (neighbors, BFD, routes).
//! - [`conf`]: frr.conf text → contexts; the incremental delta between two texts.
//! - [`apply`]: one apply (write, validate, incremental batch or frr-reload.py, verify,
//!   rollback).
//! - [`apply_loop`]: the task that debounces desired configs and applies the latest.

pub mod apply;
pub mod apply_loop;
pub mod conf;
pub mod vtysh;
