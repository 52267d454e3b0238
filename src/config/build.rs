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

use std::{cmp::Ordering, collections::BTreeMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    ConfigError, Resources, advertisement, bfd, community, peer, pool, selector::NodeUniverse,
};
use crate::core::{address::Family, config::Config};

/// The only MetalLB resource name the operator acts on.
pub const METALLB_RESOURCE_NAME: &str = "metallb";

/// Name shown for an object without `metadata.name`.
const UNNAMED: &str = "<unnamed>";

/// Settings of one [`build`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// MetalLB's namespace. When set, every `metallb.io` object that names a namespace must name
    /// this one (upstream's "resource must be created in <ns> namespace"), and so must a BGPPeer's
    /// password Secret. Objects without a namespace pass: they land wherever they are applied.
    pub namespace: Option<String>,
}

/// Validates every `metallb.io` object in `resources` and resolves them into one [`Config`].
///
/// Returns every problem found, each naming `Kind/name`, the field path and what is wrong,
/// sorted by kind, name and field (indices in numeric order) and without duplicates. Decoding
/// problems are not repeated here: they come from [`Resources::from_documents`].
///
/// References must resolve within `resources` (pools, peers and community aliases named by
/// advertisements), with one exception: a BGPPeer's `bfdProfile` is only checked when the
/// resources hold at least one BFDProfile. Otherwise the profile is taken to live in the
/// cluster, as MetalLB's webhook does, so a file with just the peer validates on its own (the
/// seed's `doc-example-peer-bfd`). In that case the peer's `bfd_profile` names a profile that
/// is not in [`Config::bfd_profiles`].
pub fn build(resources: &Resources, options: &BuildOptions) -> Result<Config, Vec<ConfigError>> {
    let mut problems = Problems::default();
    let nodes = NodeUniverse::from_nodes(&resources.nodes);

    check_namespaces(resources, options, &mut problems);
    check_metallbs(resources, &mut problems);
    let bfd_profiles = bfd::profiles(&resources.bfd_profiles, &mut problems);
    let aliases = community::aliases(&resources.communities, &mut problems);
    let peers = peer::peers(
        &resources.bgp_peers,
        &bfd_profiles,
        options,
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
        &peers,
        &mut problems,
    );
    advertisement::check_local_prefs(&pools, &nodes, &mut problems);

    let config = Config {
        pools: pools
            .into_iter()
            .map(|(name, draft)| (name, draft.into_pool()))
            .collect(),
        peers: peers.resolved,
        bfd_profiles,
    };
    check_bfd_echo(&config, &mut problems);

    let errors = problems.into_errors();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

// === impl ObjectRef ===

/// The object a problem is about: its kind and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectRef {
    /// Kind, e.g. `IPAddressPool`.
    pub kind: &'static str,
    /// Name, or `<unnamed>`.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `kind/name`.
    pub fn new(kind: &'static str, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            name: name.into(),
        }
    }

    /// A reference to an object by its metadata.
    pub fn of(kind: &'static str, metadata: &ObjectMeta) -> ObjectRef {
        ObjectRef::new(
            kind,
            metadata
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(UNNAMED),
        )
    }
}

impl std::fmt::Display for ObjectRef {
    /// `Kind/name`, the form used in advertisement `source`s and messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

// === impl Problems ===

/// Every problem found so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Problems(Vec<ConfigError>);

impl Problems {
    /// Records a problem with `field` of `object`.
    pub fn add(
        &mut self,
        object: &ObjectRef,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0
            .push(ConfigError::new(object.kind, &object.name, field, message));
    }

    /// How many problems have been recorded; comparing counts tells whether a step found any.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems sorted by kind, name, field (numbers in numeric order) and message, without
    /// duplicates.
    pub fn into_errors(self) -> Vec<ConfigError> {
        let mut errors = self.0;
        errors.sort_by(compare_errors);
        errors.dedup();
        errors
    }
}

fn compare_errors(a: &ConfigError, b: &ConfigError) -> Ordering {
    a.kind
        .cmp(&b.kind)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| compare_natural(&a.field, &b.field))
        .then_with(|| a.message.cmp(&b.message))
}

/// Compares text with digit runs taken as numbers, so `addresses[2]` sorts before
/// `addresses[10]`.
fn compare_natural(a: &str, b: &str) -> Ordering {
    fn chunks(text: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &text[start..i]));
                start = i;
            }
        }
        out
    }
    let (left, right) = (chunks(a), chunks(b));
    for ((left_digits, l), (right_digits, r)) in left.iter().zip(right.iter()) {
        let order = if *left_digits && *right_digits {
            let (l_trim, r_trim) = (l.trim_start_matches('0'), r.trim_start_matches('0'));
            l_trim
                .len()
                .cmp(&r_trim.len())
                .then_with(|| l_trim.cmp(r_trim))
                .then_with(|| l.cmp(r))
        } else {
            l.cmp(r)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// Keeps the first object of each name among `objects` (in the order given), reporting objects
/// without a name and every later object with a name already taken (`duplicate definition of
/// <noun> "<name>"`). Kinds that share one name space, such as the two pool kinds, are passed
/// together.
pub(crate) fn unique_by_name<'a, T>(
    objects: impl IntoIterator<Item = (&'static str, &'a ObjectMeta, T)>,
    noun: &str,
    problems: &mut Problems,
) -> Vec<(ObjectRef, T)> {
    let mut first_kind: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut unique = Vec::new();
    for (kind, metadata, object) in objects {
        let reference = ObjectRef::of(kind, metadata);
        if metadata.name.as_deref().is_none_or(str::is_empty) {
            problems.add(
                &reference,
                "metadata.name",
                format!("missing name: every {kind} needs a name"),
            );
            continue;
        }
        if let Some(earlier) = first_kind.get(&reference.name) {
            let also = if *earlier == kind {
                String::new()
            } else {
                format!(" (already used by an {earlier})")
            };
            problems.add(
                &reference,
                "metadata.name",
                format!("duplicate definition of {noun} {:?}{also}", reference.name),
            );
            continue;
        }
        first_kind.insert(reference.name.clone(), kind);
        unique.push((reference, object));
    }
    unique
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
fn check_namespaces(resources: &Resources, options: &BuildOptions, problems: &mut Problems) {
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
fn check_metallbs(resources: &Resources, problems: &mut Problems) {
    let objects = resources
        .metallbs
        .iter()
        .map(|m| ("MetalLB", &m.metadata, m));
    for (reference, _) in unique_by_name(objects, "MetalLB", problems) {
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

/// FRR's BFD echo mode does not work for IPv6, so a peer whose BFD profile enables it must not
/// be sent IPv6 prefixes (MetalLB's `validateConfig`). Reported once per peer, on its
/// `bfdProfile`.
fn check_bfd_echo(config: &Config, problems: &mut Problems) {
    let mut reported = std::collections::BTreeSet::new();
    for pool in config.pools.values() {
        if !pool.ranges.iter().any(|r| r.family() == Family::V6) {
            continue;
        }
        for advertisement in &pool.bgp_advertisements {
            let targets: Vec<&String> = if advertisement.peers.is_empty() {
                config.peers.keys().collect()
            } else {
                advertisement.peers.iter().collect()
            };
            for peer_name in targets {
                let Some(peer) = config.peers.get(peer_name) else {
                    continue;
                };
                let Some(profile_name) = &peer.bfd_profile else {
                    continue;
                };
                let echo = config
                    .bfd_profiles
                    .get(profile_name)
                    .is_some_and(|p| p.echo_mode);
                if echo && reported.insert(peer_name.clone()) {
                    problems.add(
                        &ObjectRef::new("BGPPeer", peer_name),
                        "spec.bfdProfile",
                        format!(
                            "BFD profile {profile_name:?} has echoMode enabled, which is not \
                             possible with IPv6: {} announces pool {:?}, which has IPv6 \
                             addresses, to this peer",
                            advertisement.source, pool.name
                        ),
                    );
                }
            }
        }
    }
}

/// Helpers for the unit tests of every config module.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::manifest;

    /// Parses, decodes and builds a manifest, failing on decode errors.
    pub(crate) fn build_yaml(text: &str) -> Result<Config, Vec<ConfigError>> {
        build_yaml_with(text, &BuildOptions::default())
    }

    pub(crate) fn build_yaml_with(
        text: &str,
        options: &BuildOptions,
    ) -> Result<Config, Vec<ConfigError>> {
        let docs = manifest::parse("test.yaml", text).expect("test manifest is valid YAML");
        let (resources, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "decode errors: {errors:?}");
        build(&resources, options)
    }

    /// The problems as `Kind/name: field: message` lines.
    pub(crate) fn problems(text: &str) -> Vec<String> {
        match build_yaml(text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// Asserts that some problem contains `expected`.
    #[track_caller]
    pub(crate) fn assert_problem(text: &str, expected: &str) {
        let found = problems(text);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected {expected:?} in {found:#?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{test_support::*, *};

    #[test]
    fn empty_resources_build_an_empty_config() {
        assert_eq!(
            build(&Resources::default(), &BuildOptions::default()),
            Ok(Config::default())
        );
    }

    #[test]
    fn errors_sort_by_kind_name_and_numeric_field() {
        let mut problems = Problems::default();
        let pool = ObjectRef::new("IPAddressPool", "b");
        problems.add(&pool, "spec.addresses[10]", "x");
        problems.add(&pool, "spec.addresses[2]", "x");
        problems.add(&pool, "spec.addresses[2]", "x");
        problems.add(&ObjectRef::new("IPAddressPool", "a"), "spec", "x");
        problems.add(&ObjectRef::new("BGPPeer", "z"), "spec", "x");
        let fields: Vec<String> = problems
            .into_errors()
            .iter()
            .map(|e| format!("{}/{} {}", e.kind, e.name, e.field))
            .collect();
        assert_eq!(
            fields,
            [
                "BGPPeer/z spec",
                "IPAddressPool/a spec",
                "IPAddressPool/b spec.addresses[2]",
                "IPAddressPool/b spec.addresses[10]"
            ]
        );
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
        let options = BuildOptions {
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
    fn bfd_echo_with_ipv6_pool_is_rejected() {
        let text = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: echo}\nspec: {echoMode: true}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: echo}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v6}\nspec: {addresses: ['2001:db8::/120']}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n";
        assert_problem(
            text,
            "BGPPeer/p: spec.bfdProfile: BFD profile \"echo\" has echoMode enabled",
        );
        // The same with an IPv4 pool is fine.
        assert!(problems(&text.replace("2001:db8::/120", "10.1.0.0/24")).is_empty());
    }
}
