//! One lab at a time on a machine: the labs of `lab.rs` and `l2lab.rs` use fixed addresses
//! (10.77.0.0/24, the host port 10.77.0.254), so two test processes bringing labs up at once
//! would tear each other's down. A lab holds an exclusive `flock` on [`PATH`] for its lifetime;
//! labs of one process share it (tests of one binary use distinct prefixes and may run in
//! parallel), another process waits.
//!
//! Not `/tmp/mlb-lab.lock`: people and scripts wrap whole test runs in
//! `flock /tmp/mlb-lab.lock cargo test ...`, and a test taking that same lock would deadlock.

use std::{
    fs::File,
    sync::{Arc, Mutex, Weak},
};

/// The lock file.
pub const PATH: &str = "/run/lock/metallb-lab.lock";

/// The lock of this process, while any of its labs is up.
static HELD: Mutex<Weak<File>> = Mutex::new(Weak::new());

/// Holds the machine's lab lock until dropped (with the last lab of this process).
pub struct LabLock(#[allow(dead_code)] Arc<File>);

/// Takes the lab lock, waiting for another process's labs to go away.
pub fn acquire() -> LabLock {
    let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(file) = held.upgrade() {
        return LabLock(file);
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PATH)
        .unwrap_or_else(|e| panic!("{PATH}: {e}"));
    if file.try_lock().is_err() {
        eprintln!("waiting for {PATH}: another process has a lab up");
        file.lock().unwrap_or_else(|e| panic!("flock {PATH}: {e}"));
    }
    let file = Arc::new(file);
    *held = Arc::downgrade(&file);
    LabLock(file)
}
