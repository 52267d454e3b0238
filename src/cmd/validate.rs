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
    log_unchecked(&resources);
    if args.namespace.is_none() {
        warn_on_namespaces(&resources);
    }
    if errors.is_empty() {
        println!("valid: {} in {files} file(s)", summary(&resources));
        Ok(ExitCode::SUCCESS)
    } else {
        for error in &errors {
            println!("{error}");
        }
        tracing::error!(problems = errors.len(), "configuration invalid");
        Ok(ExitCode::from(EXIT_INVALID))
    }
}

/// Says which objects were read but are not what `validate` checks, so that "0 metallb.io
/// objects" is not a surprise.
fn log_unchecked(r: &config::Resources) {
    let counts = [
        ("EndpointSlice", r.endpoint_slices.len()),
        ("Namespace", r.namespaces.len()),
        ("Node", r.nodes.len()),
        ("Secret", r.secrets.len()),
        ("Service", r.services.len()),
    ];
    let unchecked = counted(&counts);
    if !unchecked.is_empty() {
        tracing::info!(objects = %unchecked.join(", "), "not metallb.io objects, not checked");
    }
}

/// MetalLB reads its configuration from one namespace only; objects spread over several are
/// most likely a mistake, which `--namespace` turns into errors naming them.
fn warn_on_namespaces(r: &config::Resources) {
    let namespaces: std::collections::BTreeSet<&str> = config::build::metallb_objects(r)
        .into_iter()
        .filter_map(|(_, metadata)| metadata.namespace.as_deref())
        .filter(|namespace| !namespace.is_empty())
        .collect();
    if namespaces.len() > 1 {
        let namespaces: Vec<&str> = namespaces.into_iter().collect();
        tracing::warn!(
            namespaces = %namespaces.join(","),
            "metallb.io objects in more than one namespace: MetalLB reads only its own \
             (--namespace says which objects are elsewhere)"
        );
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
    let parts = counted(&counts);
    if parts.is_empty() {
        "0 metallb.io objects".to_string()
    } else {
        format!("{total} metallb.io object(s) ({})", parts.join(", "))
    }
}

/// `["1 AddressPool", "2 BGPPeer"]`: the kinds present, with their counts.
fn counted(counts: &[(&str, usize)]) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect()
}
