//! Judging one admission request against the live configuration (pure: no I/O).
//!
//! The object is decoded exactly as `metallb validate` decodes a manifest, put into the
//! cached configuration (the webhook passes its kind's [scope](crate::config::scope) of it) in
//! place of its previous version, and the set is built with the same rules the controller and
//! the speakers use ([`load_problems`]). The request is
//! refused for every problem the change *introduces*: problems the stored configuration already
//! had (say, objects stored while the webhook was down) do not block unrelated edits, and an
//! edit that fixes some of them is admitted.
//!
//! References to objects that may still be created (a BFDProfile, a community alias, a pool or
//! peer named by an advertisement, a password Secret) are admitted with a warning, so that
//! objects can be applied in any order, as upstream's webhooks allow.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{
    config::{self, ConfigError, Resources},
    core::config::Config,
    manifest::Document,
};

/// What the apiserver asks about the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
    /// An object going away.
    Delete,
}

/// One admission question, in the webhook's terms.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// What is being done.
    pub operation: Operation,
    /// Kind of the object, e.g. `IPAddressPool`.
    pub kind: &'a str,
    /// Name of the object.
    pub name: &'a str,
    /// The object as it would be stored (create, update).
    pub object: Option<&'a Value>,
}

/// The answer: admitted when `denials` is empty; `warnings` are shown to the client either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Why the request is refused, each `Kind/name: field: message`.
    pub denials: Vec<ConfigError>,
    /// What is legal but likely a mistake.
    pub warnings: Vec<String>,
}

impl Verdict {
    /// Whether the request is admitted.
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The denial as one message (`; ` between problems).
    pub fn message(&self) -> String {
        self.denials
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Every problem of `resources` as MetalLB in `namespace` sees them ([`config::load`]): the
/// single place the webhook asks the config loader, so the webhook, the controller and the
/// speakers never disagree.
pub fn load_problems(resources: &Resources, namespace: &str) -> (Option<Config>, Vec<ConfigError>) {
    let options = config::LoadOptions {
        namespace: Some(namespace.to_string()),
    };
    let loaded = config::load(resources, &options);
    (loaded.config, loaded.problems)
}

/// Whether `error` is about an object that is referenced but does not exist yet, and may still
/// be created (admitted with a warning).
pub fn awaits_object(error: &ConfigError) -> bool {
    error.awaits_object()
}

/// Judges `question` against `current`, the configuration the cluster holds now (MetalLB's
/// objects in `namespace`, the Nodes, and for deletions the Services).
pub fn judge(current: &Resources, namespace: &str, question: &Question<'_>) -> Verdict {
    judge_with(current.clone(), namespace, question, |current| {
        load_problems(current, namespace).1
    })
}

/// [`judge`], with the problems `current` already has from `before` (the webhook remembers
/// them while its cache does not change, so an admission builds the configuration once).
/// Takes `current` by value: a write is judged on it with the object spliced in, not on a copy.
pub fn judge_with(
    current: Resources,
    namespace: &str,
    question: &Question<'_>,
    before: impl FnOnce(&Resources) -> Vec<ConfigError>,
) -> Verdict {
    match question.operation {
        Operation::Delete => judge_delete(&current, question),
        Operation::Create | Operation::Update => judge_write(current, namespace, question, before),
    }
}

fn judge_write(
    current: Resources,
    namespace: &str,
    question: &Question<'_>,
    before: impl FnOnce(&Resources) -> Vec<ConfigError>,
) -> Verdict {
    let Some(object) = question.object else {
        return Verdict::default();
    };
    let before = before(&current);
    let mut candidate = current;
    if let Err(denials) = splice(&mut candidate, question.kind, question.name, object) {
        return Verdict {
            denials,
            warnings: Vec::new(),
        };
    }

    let (built, after) = load_problems(&candidate, namespace);
    let before: BTreeSet<&ConfigError> = before.iter().collect();
    let mut verdict = Verdict::default();
    for error in after.iter().filter(|e| !before.contains(e)) {
        if awaits_object(error) {
            verdict
                .warnings
                .push(format!("{error} (admitted: it may be created later)"));
        } else {
            verdict.denials.push(error.clone());
        }
    }
    if let Some(config) = &built
        && matches!(question.kind, "IPAddressPool" | "AddressPool")
        && let Some(pool) = config.pools.get(question.name)
        && pool.l2_advertisements.is_empty()
        && pool.bgp_advertisements.is_empty()
    {
        verdict.warnings.push(format!(
            "{}/{}: no L2Advertisement or BGPAdvertisement selects this pool yet: its addresses \
             are assigned to Services but not announced",
            question.kind, question.name
        ));
    }
    verdict
}

/// Upstream refuses only the deletion of a BFDProfile a BGPPeer uses; deleting a pool is
/// allowed (its Services keep their addresses until the controller reconciles), with a warning
/// naming the Services that hold addresses from it.
fn judge_delete(current: &Resources, question: &Question<'_>) -> Verdict {
    let mut verdict = Verdict::default();
    match question.kind {
        "BFDProfile" => {
            for peer in &current.bgp_peers {
                if peer.peer.spec.bfd_profile.as_deref() == Some(question.name) {
                    verdict.denials.push(ConfigError::new(
                        "BFDProfile",
                        question.name,
                        "",
                        format!(
                            "cannot be deleted: BGPPeer/{} uses it (spec.bfdProfile)",
                            peer.peer.metadata.name.as_deref().unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        "IPAddressPool" | "AddressPool" => {
            let users: Vec<String> = current
                .services
                .iter()
                .filter(|svc| {
                    svc.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(config::service::annotation::IP_ALLOCATED_FROM_POOL))
                        .is_some_and(|pool| pool == question.name)
                })
                .map(|svc| {
                    format!(
                        "{}/{}",
                        svc.metadata.namespace.as_deref().unwrap_or_default(),
                        svc.metadata.name.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            if !users.is_empty() {
                verdict.warnings.push(format!(
                    "{}/{}: Services hold addresses from this pool: {}",
                    question.kind,
                    question.name,
                    users.join(", ")
                ));
            }
        }
        _ => {}
    }
    verdict
}

/// Puts `object` (of `kind`, named `name`) into `resources` in place of its previous version.
/// Fails, leaving `resources` unchanged, when the object does not decode.
pub fn splice(
    resources: &mut Resources,
    kind: &str,
    name: &str,
    object: &Value,
) -> Result<(), Vec<ConfigError>> {
    let document = Document {
        file: "admission".into(),
        line: 1,
        value: object.clone(),
    };
    let mut incoming = Resources::default();
    incoming.add(&document)?;
    remove_object(resources, kind, name);
    append(resources, incoming);
    Ok(())
}

/// The `metadata.resourceVersion` of the object `kind/name` in `resources`: `None` when the
/// object is absent, `Some(None)` when it has no version (manifests).
pub fn resource_version(resources: &Resources, kind: &str, name: &str) -> Option<Option<String>> {
    fn find<T: kube::Resource>(list: &[T], name: &str) -> Option<Option<String>> {
        list.iter()
            .find(|o| o.meta().name.as_deref() == Some(name))
            .map(|o| o.meta().resource_version.clone())
    }
    match kind {
        "AddressPool" => find(&resources.address_pools, name),
        "IPAddressPool" => find(&resources.ip_address_pools, name),
        "L2Advertisement" => find(&resources.l2_advertisements, name),
        "BGPAdvertisement" => find(&resources.bgp_advertisements, name),
        "BGPPeer" => resources
            .bgp_peers
            .iter()
            .find(|p| p.peer.metadata.name.as_deref() == Some(name))
            .map(|p| p.peer.metadata.resource_version.clone()),
        "BFDProfile" => find(&resources.bfd_profiles, name),
        "Community" => find(&resources.communities, name),
        "MetalLB" => find(&resources.metallbs, name),
        _ => None,
    }
}

/// Identifies the content of `resources`' metallb.io objects and Nodes by kind, name and
/// resourceVersion: equal fingerprints, equal problems.
pub fn fingerprint(resources: &Resources) -> u64 {
    use std::hash::{Hash, Hasher};
    fn add<T: kube::Resource>(h: &mut impl Hasher, kind: &str, list: &[T]) {
        kind.hash(h);
        list.len().hash(h);
        for o in list {
            o.meta().name.hash(h);
            o.meta().resource_version.hash(h);
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    add(&mut h, "AddressPool", &resources.address_pools);
    add(&mut h, "IPAddressPool", &resources.ip_address_pools);
    add(&mut h, "L2Advertisement", &resources.l2_advertisements);
    add(&mut h, "BGPAdvertisement", &resources.bgp_advertisements);
    "BGPPeer".hash(&mut h);
    for p in &resources.bgp_peers {
        p.peer.metadata.name.hash(&mut h);
        p.peer.metadata.resource_version.hash(&mut h);
    }
    add(&mut h, "BFDProfile", &resources.bfd_profiles);
    add(&mut h, "Community", &resources.communities);
    add(&mut h, "MetalLB", &resources.metallbs);
    add(&mut h, "Node", &resources.nodes);
    h.finish()
}

/// Drops the object `kind/name` from `resources`.
fn remove_object(resources: &mut Resources, kind: &str, name: &str) {
    fn keep<T: kube::Resource>(list: &mut Vec<T>, name: &str) {
        list.retain(|o| o.meta().name.as_deref() != Some(name));
    }
    match kind {
        "AddressPool" => keep(&mut resources.address_pools, name),
        "IPAddressPool" => keep(&mut resources.ip_address_pools, name),
        "L2Advertisement" => keep(&mut resources.l2_advertisements, name),
        "BGPAdvertisement" => keep(&mut resources.bgp_advertisements, name),
        "BGPPeer" => resources
            .bgp_peers
            .retain(|p| p.peer.metadata.name.as_deref() != Some(name)),
        "BFDProfile" => keep(&mut resources.bfd_profiles, name),
        "Community" => keep(&mut resources.communities, name),
        "MetalLB" => keep(&mut resources.metallbs, name),
        _ => {}
    }
}

/// Adds every metallb.io object of `from` to `to`.
fn append(to: &mut Resources, from: Resources) {
    to.address_pools.extend(from.address_pools);
    to.ip_address_pools.extend(from.ip_address_pools);
    to.l2_advertisements.extend(from.l2_advertisements);
    to.bgp_advertisements.extend(from.bgp_advertisements);
    to.bgp_peers.extend(from.bgp_peers);
    to.bfd_profiles.extend(from.bfd_profiles);
    to.communities.extend(from.communities);
    to.metallbs.extend(from.metallbs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    const NS: &str = "metallb-system";

    fn resources(text: &str) -> Resources {
        let docs = manifest::parse("t.yaml", text).unwrap();
        let (r, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "{errors:?}");
        r
    }

    fn ask(current: &Resources, operation: Operation, yaml: &str) -> Verdict {
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let kind = value["kind"].as_str().unwrap().to_string();
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        judge(
            current,
            NS,
            &Question {
                operation,
                kind: &kind,
                name: &name,
                object: Some(&value),
            },
        )
    }

    const POOL_A: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/24]}\n";

    #[test]
    fn an_overlapping_pool_is_refused_naming_object_and_field() {
        let current = resources(POOL_A);
        let verdict = ask(
            &current,
            Operation::Create,
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b, namespace: metallb-system}\nspec: {addresses: [10.0.0.128/25]}\n",
        );
        assert!(!verdict.allowed());
        assert!(
            verdict
                .message()
                .contains("IPAddressPool/b: spec.addresses[0]"),
            "{}",
            verdict.message()
        );
    }

    #[test]
    fn widening_a_pool_into_an_overlap_is_refused_and_its_own_update_is_not() {
        let current = resources(&format!(
            "{POOL_A}---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: b, namespace: metallb-system}}\nspec: {{addresses: [10.0.1.0/24]}}\n"
        ));
        let widened = ask(
            &current,
            Operation::Update,
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/23]}\n",
        );
        assert!(!widened.allowed());
        let same = ask(
            &current,
            Operation::Update,
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b, namespace: metallb-system}\nspec: {addresses: [10.0.1.0/25]}\n",
        );
        assert!(same.allowed(), "{}", same.message());
        assert!(same.warnings[0].contains("not announced"), "{same:?}");
    }

    #[test]
    fn problems_already_stored_do_not_block_an_unrelated_change() {
        // Two overlapping pools got in while the webhook was down.
        let current = resources(&format!(
            "{POOL_A}---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: b, namespace: metallb-system}}\nspec: {{addresses: [10.0.0.0/25]}}\n"
        ));
        let verdict = ask(
            &current,
            Operation::Create,
            "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {ipAddressPools: [a]}\n",
        );
        assert!(verdict.allowed(), "{}", verdict.message());
    }

    #[test]
    fn a_missing_bfd_profile_is_admitted_with_a_warning() {
        let verdict = ask(
            &Resources::default(),
            Operation::Create,
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: later}\n",
        );
        assert!(verdict.allowed(), "{}", verdict.message());
        let current = resources(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: other, namespace: metallb-system}\n",
        );
        let verdict = ask(
            &current,
            Operation::Create,
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: later}\n",
        );
        assert!(verdict.allowed(), "{}", verdict.message());
        assert!(
            verdict.warnings[0].starts_with("BGPPeer/p: spec.bfdProfile: "),
            "{verdict:?}"
        );
    }

    #[test]
    fn deleting_a_bfd_profile_in_use_is_refused() {
        let current = resources(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, bfdProfile: fast}\n",
        );
        let verdict = judge(
            &current,
            NS,
            &Question {
                operation: Operation::Delete,
                kind: "BFDProfile",
                name: "fast",
                object: None,
            },
        );
        assert_eq!(
            verdict.message(),
            "BFDProfile/fast: cannot be deleted: BGPPeer/p uses it (spec.bfdProfile)"
        );
    }

    #[test]
    fn decode_problems_are_denials_with_the_field_path() {
        let verdict = ask(
            &Resources::default(),
            Operation::Create,
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/24], autoAsign: true}\n",
        );
        assert_eq!(
            verdict.message(),
            "IPAddressPool/p: spec.autoAsign: unknown field"
        );
    }
}
