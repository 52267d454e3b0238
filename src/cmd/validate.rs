//! `metallb validate`: every problem on its own line, `Kind/name: field: message`.

use std::process::ExitCode;

use super::{EXIT_INVALID, load};
use crate::{cli::ValidateArgs, config};

pub(super) fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let (resources, mut errors, files) = match load(&args.paths) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let options = config::BuildOptions {
        namespace: args.namespace.clone(),
    };
    if let Err(mut build_errors) = config::build(&resources, &options) {
        errors.append(&mut build_errors);
    }
    super::dedup(&mut errors);
    if errors.is_empty() {
        println!("valid: {} in {files} file(s)", summary(&resources));
        Ok(ExitCode::SUCCESS)
    } else {
        for error in &errors {
            println!("{error}");
        }
        eprintln!("invalid: {} problem(s)", errors.len());
        Ok(ExitCode::from(EXIT_INVALID))
    }
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
