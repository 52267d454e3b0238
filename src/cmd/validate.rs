//! `metallb validate`: every problem on its own line, `Kind/name: field: message`.
//!
//! It is given the whole configuration, so it judges as the controller does: a reference to an
//! object that is not there (a password Secret, a BFDProfile, a community alias) is an error.
//! Such lines say that the admission webhook would still admit the object, because the missing
//! one may be created after it.

use std::process::ExitCode;

use super::{EXIT_INVALID, load_manifests};
use crate::{cli::ValidateArgs, config};

/// Appended to a problem that the admission webhook admits.
const ADMITTED_NOTE: &str = " (admission admits this: the missing object may still be created)";

pub(super) fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let options = config::LoadOptions {
        namespace: args.namespace.clone(),
    };
    let (resources, loaded, files) = match load_manifests(&args.paths, &options) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    if loaded.problems.is_empty() {
        println!("valid: {} in {files} file(s)", summary(&resources));
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &loaded.problems {
        let note = if problem.awaits_object() {
            ADMITTED_NOTE
        } else {
            ""
        };
        println!("{problem}{note}");
    }
    let admitted = loaded.problems.len() - loaded.blocking().count();
    let admitted = if admitted > 0 {
        format!(" ({admitted} of them admitted by the webhook)")
    } else {
        String::new()
    };
    eprintln!("invalid: {} problem(s){admitted}", loaded.problems.len());
    Ok(ExitCode::from(EXIT_INVALID))
}

/// `3 metallb.io objects (1 AddressPool, 2 BGPPeer)`.
fn summary(r: &config::Resources) -> String {
    let counts = [
        ("AddressPool", r.address_pools.len()),
        ("BFDProfile", r.bfd_profiles.len()),
        ("BGPAdvertisement", r.bgp_advertisements.len()),
        ("BGPPeer", r.bgp_peers.len()),
        ("Community", r.communities.len()),
        ("IPAddressPool", r.ip_address_pools.len()),
        ("L2Advertisement", r.l2_advertisements.len()),
        ("MetalLB", r.metallbs.len()),
    ];
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    if parts.is_empty() {
        "0 metallb.io objects".to_string()
    } else {
        format!("{total} metallb.io object(s) ({})", parts.join(", "))
    }
}
