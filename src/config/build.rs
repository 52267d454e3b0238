//! `metallb.io` objects → one validated [`Config`]: the logic the admission webhooks, the
//! controller and `metallb validate` share.
//!
//! [`build`] runs every check of MetalLB's webhooks (4.10 operator and current upstream, FRR
//! mode) and resolves both API styles, legacy `AddressPool` and `IPAddressPool` plus
//! advertisements, into the one core model. Unlike upstream it does not stop at the first
//! problem: every step reports into one [`Problems`] list and carries on with what is valid, so
//! an admin sees everything that is wrong in one run. Objects that fail a check still occupy
//! their name, so a reference to them is not reported a second time as "does not exist".
//!
//! ```text
//!  MetalLB ─────────► name and namespace checks only
//!  BFDProfile ──────► bfd::profiles ───────────┐ bfdProfile references
//!  Community ───────► community::aliases ──┐   ▼
//!  BGPPeer ─────────► peer::peers ─────────┼─► peers (+ FRR cross-peer rules)
//!  AddressPool ─┐                          │       │ peers references
//!  IPAddressPool┴───► pool::pools ─────────┤       ▼
//!  L2Advertisement ─► advertisement::attach_l2 / attach_bgp ◄── BGPAdvertisement
//!                     advertisement::check_local_prefs, check_bfd_echo ──► Config
//! ```
//!
//! The peers' half and the pools' half read nothing of each other ([`super::scope`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    LoadOptions, Resources, advertisement, bfd, community, peer, pool,
    problems::{ObjectRef, Problems, unique_by_name},
    selector::NodeUniverse,
};
use crate::core::config::{Config, PeerAddress};

/// The only MetalLB resource name the operator acts on.
pub const METALLB_RESOURCE_NAME: &str = "metallb";

/// Validates every `metallb.io` object in `resources` and resolves them into one [`Config`]
/// of the objects that passed (callers go through [`super::load()`]).
///
/// Every problem found is recorded, each naming `Kind/name`, the field path and what is wrong.
/// An object with a problem is left out of the config; whether the rest may run is the caller's
/// decision ([`ConfigError::awaits_object`]).
pub(super) fn build(resources: &Resources, options: &LoadOptions) -> (Config, Problems) {
    let mut problems = Problems::default();
    let nodes = NodeUniverse::from_nodes(&resources.nodes);

    check_namespaces(resources, options, &mut problems);
    check_metallbs(resources, &mut problems);
    let bfd_profiles = bfd::profiles(&resources.bfd_profiles, &mut problems);
    let aliases = community::aliases(&resources.communities, &mut problems);
    let peers = peer::peers(
        &resources.bgp_peers,
        &bfd_profiles,
        options.namespace.as_deref(),
        &nodes,
        &mut problems,
    );
    let mut pools = pool::pools(resources, &mut problems);
    advertisement::attach_legacy(&mut pools, &aliases, &mut problems);
    advertisement::attach_l2(&resources.l2_advertisements, &mut pools, &mut problems);
    advertisement::attach_bgp(
        &resources.bgp_advertisements,
        &mut pools,
        &aliases,
        &mut problems,
    );
    advertisement::check_local_prefs(&pools, &nodes, &mut problems);

    let config = Config {
        pools: pools
            .into_iter()
            .map(|(name, draft)| (name, draft.into_pool()))
            .collect(),
        peers,
        bfd_profiles,
    };
    check_bfd_echo(&config, &mut problems);
    (config, problems)
}

// === cross-kind checks ===

/// Every `metallb.io` object with its kind, for checks that apply to all of them.
pub(crate) fn metallb_objects(resources: &Resources) -> Vec<(&'static str, &ObjectMeta)> {
    let mut all: Vec<(&'static str, &ObjectMeta)> = Vec::new();
    all.extend(
        resources
            .address_pools
            .iter()
            .map(|o| ("AddressPool", &o.metadata)),
    );
    all.extend(
        resources
            .ip_address_pools
            .iter()
            .map(|o| ("IPAddressPool", &o.metadata)),
    );
    all.extend(
        resources
            .l2_advertisements
            .iter()
            .map(|o| ("L2Advertisement", &o.metadata)),
    );
    all.extend(
        resources
            .bgp_advertisements
            .iter()
            .map(|o| ("BGPAdvertisement", &o.metadata)),
    );
    all.extend(
        resources
            .bgp_peers
            .iter()
            .map(|o| ("BGPPeer", &o.peer.metadata)),
    );
    all.extend(
        resources
            .bfd_profiles
            .iter()
            .map(|o| ("BFDProfile", &o.metadata)),
    );
    all.extend(
        resources
            .communities
            .iter()
            .map(|o| ("Community", &o.metadata)),
    );
    all.extend(resources.metallbs.iter().map(|o| ("MetalLB", &o.metadata)));
    all
}

/// MetalLB only reads objects in its own namespace; one elsewhere is silently ignored by the
/// cluster, so say so before it is applied.
fn check_namespaces(resources: &Resources, options: &LoadOptions, problems: &mut Problems) {
    let Some(expected) = options.namespace.as_deref() else {
        return;
    };
    for (kind, metadata) in metallb_objects(resources) {
        if let Some(namespace) = metadata.namespace.as_deref().filter(|ns| !ns.is_empty())
            && namespace != expected
        {
            problems.add(
                &ObjectRef::of(kind, metadata),
                "metadata.namespace",
                format!("resource must be created in {expected} namespace, not {namespace:?}"),
            );
        }
    }
}

/// The operator honours one MetalLB resource, named `metallb`; any other is marked Degraded.
/// Its spec must pass the operator's checks.
fn check_metallbs(resources: &Resources, problems: &mut Problems) {
    let objects = resources
        .metallbs
        .iter()
        .map(|m| ("MetalLB", &m.metadata, m));
    for (reference, metallb) in unique_by_name(objects, "MetalLB", problems) {
        for problem in crate::operator::validate::spec_problems(&metallb.spec) {
            problems.add(&reference, problem.field, problem.message);
        }
        if reference.name != METALLB_RESOURCE_NAME {
            problems.add(
                &reference,
                "metadata.name",
                format!(
                    "Incorrect MetalLB resource name: {}: the operator only acts on a MetalLB \
                     named {METALLB_RESOURCE_NAME:?}",
                    reference.name
                ),
            );
        }
    }
}

/// FRR's BFD echo mode works for IPv4 sessions only, and a BFD session has its BGP session's
/// address family: a peer whose profile enables echo is refused when its own address is IPv6
/// (or it is an unnumbered peer, whose session runs over IPv6 link-local addresses). Upstream
/// (since 0.13.10) refuses echo on every peer that is sent an IPv6 prefix instead, which would
/// refuse the seed's own §26.7.2 configuration (echo on IPv4 peers that also carry an IPv6
/// pool); the prefixes a session carries do not change the family of its BFD packets.
fn check_bfd_echo(config: &Config, problems: &mut Problems) {
    for peer in config.peers.values() {
        let Some(profile_name) = &peer.bfd_profile else {
            continue;
        };
        let echo = config
            .bfd_profiles
            .get(profile_name)
            .is_some_and(|p| p.echo_mode);
        let session = match &peer.address {
            PeerAddress::Ip(ip) if ip.is_ipv6() => format!("peer address {ip} is IPv6"),
            PeerAddress::Interface(name) => {
                format!("an unnumbered session on {name} runs over IPv6 link-local addresses")
            }
            PeerAddress::Ip(_) => continue,
        };
        if echo {
            problems.add(
                &ObjectRef::new("BGPPeer", &peer.name),
                "spec.bfdProfile",
                format!(
                    "BFD profile {profile_name:?} has echoMode enabled, which is not possible \
                     for an IPv6 BFD session: the {session}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::test_support::*;

    #[test]
    fn empty_resources_build_an_empty_config() {
        let (config, problems) = build(&Resources::default(), &LoadOptions::default());
        assert_eq!(config, Config::default());
        assert_eq!(problems.len(), 0);
    }

    #[test]
    fn missing_names_are_reported() {
        assert_problem(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {namespace: metallb-system}\n",
            "BFDProfile/<unnamed>: metadata.name: missing name",
        );
    }

    #[test]
    fn namespace_must_be_metallbs_own_when_configured() {
        let text = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: b, namespace: default}\n---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: c}\n";
        assert!(build_yaml(text).is_ok());
        let options = LoadOptions {
            namespace: Some("metallb-system".into()),
        };
        let errors = build_yaml_with(text, &options).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "BFDProfile/b: metadata.namespace: resource must be created in metallb-system namespace, not \"default\""
        );
    }

    #[test]
    fn metallb_must_be_named_metallb() {
        assert!(
            problems("apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n")
                .is_empty()
        );
        assert_problem(
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: mine}\n",
            "MetalLB/mine: metadata.name: Incorrect MetalLB resource name: mine",
        );
    }

    #[test]
    fn only_one_metallb_named_metallb() {
        assert_problem(
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n---\napiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n",
            "MetalLB/metallb: metadata.name: duplicate definition of MetalLB \"metallb\"",
        );
    }

    #[test]
    fn bfd_echo_is_refused_only_for_ipv6_sessions() {
        let text = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: echo}\nspec: {echoMode: true}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: echo}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v6}\nspec: {addresses: ['2001:db8::/120']}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n";
        // An IPv4 session announcing an IPv6 pool: its BFD packets are IPv4, so echo works
        // (the seed's §26.7.2 configuration; this test used to expect upstream's refusal).
        assert!(problems(text).is_empty(), "{:#?}", problems(text));
        assert_problem(
            &text.replace("peerAddress: 10.0.0.1", "peerAddress: '2001:db8::1'"),
            "BGPPeer/p: spec.bfdProfile: BFD profile \"echo\" has echoMode enabled, which is not possible for an IPv6 BFD session: the peer address 2001:db8::1 is IPv6",
        );
        assert_problem(
            &text.replace("peerAddress: 10.0.0.1", "interface: eth1"),
            "an unnumbered session on eth1 runs over IPv6 link-local addresses",
        );
        // Without echo, IPv6 sessions are fine.
        assert!(
            problems(
                &text
                    .replace("echoMode: true", "echoMode: false")
                    .replace("peerAddress: 10.0.0.1", "peerAddress: '2001:db8::1'")
            )
            .is_empty()
        );
    }
}
