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
    log_unchecked(&resources);
    if args.namespace.is_none() {
        warn_on_namespaces(&resources);
    }
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
    tracing::error!(
        problems = loaded.problems.len(),
        "configuration invalid{admitted}"
    );
    Ok(ExitCode::from(EXIT_INVALID))
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
    let namespaces: std::collections::BTreeSet<&str> = config::metallb_objects(r)
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
