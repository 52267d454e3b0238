//! Every CustomResourceDefinition of the `metallb.io` group, generated from the Rust types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::crd::{CustomResourceExt, MergeError, merge_crds};

use super::{
    address_pool, bfd_profile::BFDProfile, bgp_advertisement::BGPAdvertisement, bgp_peer,
    community::Community, configuration_state::ConfigurationState, ip_address_pool::IPAddressPool,
    l2_advertisement::L2Advertisement, service_bgp_status::ServiceBGPStatus,
    service_l2_status::ServiceL2Status,
};

/// All CRDs, sorted by name, multi-version kinds merged with their stored version.
pub fn all() -> Result<Vec<CustomResourceDefinition>, MergeError> {
    let mut crds = vec![
        merge_crds(
            vec![
                address_pool::v1alpha1::AddressPool::crd(),
                address_pool::v1beta1::AddressPool::crd(),
            ],
            "v1beta1",
        )?,
        BFDProfile::crd(),
        BGPAdvertisement::crd(),
        merge_crds(
            vec![
                bgp_peer::v1beta1::BGPPeer::crd(),
                bgp_peer::v1beta2::BGPPeer::crd(),
            ],
            "v1beta2",
        )?,
        Community::crd(),
        ConfigurationState::crd(),
        IPAddressPool::crd(),
        L2Advertisement::crd(),
        super::metallb::crd(),
        ServiceBGPStatus::crd(),
        ServiceL2Status::crd(),
    ];
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(crds)
}

/// The CRDs as one multi-document YAML stream, exactly what `metallb crd` prints and what is
/// checked in under `deploy/crds/`.
pub fn to_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in all()? {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}

/// Why the CRDs could not be generated (a programming error, never bad user input).
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Two versions of one kind do not fit together.
    #[error("merging CRD versions")]
    Merge(#[from] MergeError),
    /// Serialization to YAML failed.
    #[error("serializing CRDs to YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
}

#[cfg(test)]
mod category_tests {
    use super::*;

    /// kubectl expands a category before it looks up a kind: a category named like a kind
    /// (`metallb`) would turn `kubectl get metallb -n metallb-system` into a list of every
    /// kind in it, hiding MetalLB's printer columns.
    #[test]
    fn no_category_shadows_a_kind_name() {
        let crds = all().unwrap();
        let mut names = Vec::new();
        for crd in &crds {
            let n = &crd.spec.names;
            names.push(n.plural.clone());
            names.extend(n.singular.clone());
            names.extend(n.short_names.clone().unwrap_or_default());
        }
        for crd in &crds {
            for category in crd.spec.names.categories.clone().unwrap_or_default() {
                assert!(
                    !names.contains(&category),
                    "{}: category {category:?} is also a kind's name",
                    crd.metadata.name.clone().unwrap_or_default()
                );
            }
        }
    }
}
