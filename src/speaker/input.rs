//! The speaker's input: the objects it read, the configuration built from them and every
//! Service's addresses. This is the one place a speaker learns a Service's addresses, for BGP
//! and layer 2 alike: from `status.loadBalancer.ingress` as the controller wrote it (with
//! `--from-api`), or, without a cluster, as `metallb plan` would assign them (which keeps the
//! addresses already in status in the manifests).

use std::collections::BTreeMap;

use crate::{
    config::{self, ConfigError, Resources, service},
    core::{
        config::Config,
        service::{Addresses, ServiceKey},
    },
    plan::{self, PlanOptions},
};

/// Where the Services' addresses come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSource {
    /// `status.loadBalancer.ingress`: the controller assigns, the speaker only announces.
    Status,
    /// The allocator, as `metallb plan` runs it (manifests without a controller).
    Plan,
}

/// One consistent, valid view of the input.
#[derive(Debug)]
pub struct Input {
    /// The objects.
    pub resources: Resources,
    /// The configuration built from them.
    pub config: Config,
    /// Every Service's addresses and pool.
    pub addresses: Addresses,
    /// BGP passwords from Secrets, by peer name.
    pub passwords: BTreeMap<String, String>,
    /// Problems that [await an object](ConfigError::awaits_object): the objects at fault are
    /// left out of `config`, the rest runs, and ConfigurationState says what is missing.
    pub problems: Vec<ConfigError>,
}

/// Loads the configuration ([`config::load`], the same as the controller's) and reads the
/// addresses. Decode errors passed in, or a problem that does not [await an
/// object](ConfigError::awaits_object), reject the whole input, so the last valid one stays in
/// force for both protocols. Problems that await an object leave the objects at fault out and
/// come back in [`Input::problems`], for ConfigurationState.
pub fn accept(
    resources: Resources,
    mut errors: Vec<ConfigError>,
    lb_class: Option<&str>,
    source: AddressSource,
) -> Result<Input, Vec<ConfigError>> {
    let loaded = config::load(&resources, &config::LoadOptions::default());
    errors.extend(loaded.problems);
    let config = match loaded.config {
        Some(config) if errors.iter().all(ConfigError::awaits_object) => config,
        _ => return Err(errors),
    };
    let passwords = loaded.passwords;
    let addresses = match source {
        AddressSource::Status => addresses_from_status(&resources, &config, lb_class),
        AddressSource::Plan => {
            let options = PlanOptions {
                lb_class: lb_class.map(String::from),
                nodes: Vec::new(),
            };
            plan::addresses(&plan::plan(&resources, &config, &options))
        }
    };
    Ok(Input {
        resources,
        config,
        addresses,
        passwords,
        problems: errors,
    })
}

/// The addresses each Service has in `status.loadBalancer.ingress` and the pool holding all of
/// them. Services whose addresses span pools or belong to none are left out, as upstream's
/// speaker does.
pub fn addresses_from_status(
    resources: &Resources,
    config: &Config,
    lb_class: Option<&str>,
) -> Addresses {
    let mut out = Addresses::new();
    for svc in resources
        .services
        .iter()
        .filter(|s| service::is_ours(s, lb_class))
    {
        let key = ServiceKey::new(
            svc.metadata.namespace.as_deref().unwrap_or("default"),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let ips = service::ingress_ips(svc);
        if ips.is_empty() {
            continue;
        }
        if let Some(pool) = config
            .pools
            .values()
            .find(|p| ips.iter().all(|ip| p.contains(ip)))
        {
            out.insert(key, (pool.name.clone(), ips));
        }
    }
    out
}

/// The problem of `next` that would stop something `last` runs: a BGPPeer, BFDProfile or
/// advertisement that ran in the last valid input and is now left out because it awaits an
/// object (its password Secret was deleted, say). Taking such an input would tear down a working
/// session or withdraw working routes, so the speaker keeps the last valid input instead; objects
/// that never ran may still wait without blocking the rest.
pub fn stops_running<'a>(last: &Config, next: &'a Input) -> Option<&'a ConfigError> {
    next.problems.iter().find(|p| runs(last, &p.kind, &p.name))
}

fn runs(config: &Config, kind: &str, name: &str) -> bool {
    let source = format!("{kind}/{name}");
    match kind {
        "BGPPeer" => config.peers.contains_key(name),
        "BFDProfile" => config.bfd_profiles.contains_key(name),
        "BGPAdvertisement" => config
            .pools
            .values()
            .any(|p| p.bgp_advertisements.iter().any(|a| a.source == source)),
        "L2Advertisement" => config
            .pools
            .values()
            .any(|p| p.l2_advertisements.iter().any(|a| a.source == source)),
        _ => false,
    }
}
