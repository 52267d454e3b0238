//! The parts of a configuration whose checks never read one another's objects.
//!
//! [`load`](super::load()) checks BGP sessions (peers, their BFD profiles and password Secrets)
//! and addresses (pools and the advertisements and community aliases that attach to them)
//! separately: an advertisement names peers, but a name that matches no peer is not a problem,
//! so no address check reads a peer, and no session check reads a pool. The problems of a whole
//! configuration are therefore the problems of its scopes, each loaded alone. The admission
//! webhook relies on it to judge a change to one kind against its scope only
//! (`tests/config_scope.rs` checks the equality over the fixtures).

use super::Resources;

/// One part of the configuration (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// BGPPeers, BFDProfiles, the peers' password Secrets, and the Nodes their selectors match.
    Sessions,
    /// AddressPools, IPAddressPools, L2Advertisements, BGPAdvertisements, Communities, and the
    /// Nodes that advertisements select.
    Addresses,
    /// MetalLB resources (the operator's).
    Operator,
}

impl Scope {
    /// Every scope, once.
    pub const ALL: [Scope; 3] = [Scope::Sessions, Scope::Addresses, Scope::Operator];

    /// The scope of a `metallb.io` kind; `None` for other kinds.
    pub fn of_kind(kind: &str) -> Option<Scope> {
        match kind {
            "BGPPeer" | "BFDProfile" => Some(Scope::Sessions),
            "AddressPool" | "IPAddressPool" | "L2Advertisement" | "BGPAdvertisement"
            | "Community" => Some(Scope::Addresses),
            "MetalLB" => Some(Scope::Operator),
            _ => None,
        }
    }

    /// The objects of `resources` that this scope's checks read (moved, not copied); Services,
    /// Namespaces, EndpointSlices and ConfigMaps are no scope's: the config checks read none.
    pub fn take(self, resources: Resources) -> Resources {
        match self {
            Scope::Sessions => Resources {
                bgp_peers: resources.bgp_peers,
                bfd_profiles: resources.bfd_profiles,
                secrets: resources.secrets,
                nodes: resources.nodes,
                ..Resources::default()
            },
            Scope::Addresses => Resources {
                address_pools: resources.address_pools,
                ip_address_pools: resources.ip_address_pools,
                l2_advertisements: resources.l2_advertisements,
                bgp_advertisements: resources.bgp_advertisements,
                communities: resources.communities,
                nodes: resources.nodes,
                ..Resources::default()
            },
            Scope::Operator => Resources {
                metallbs: resources.metallbs,
                ..Resources::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::test_support::resources;

    const MIXED: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: r}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.1.0.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\n";

    #[test]
    fn every_object_lands_in_the_scope_of_its_kind() {
        let all = resources(MIXED);
        let sessions = Scope::Sessions.take(all.clone());
        assert_eq!(
            (sessions.bgp_peers.len(), sessions.ip_address_pools.len()),
            (1, 0)
        );
        let addresses = Scope::Addresses.take(all.clone());
        assert_eq!(
            (addresses.bgp_peers.len(), addresses.ip_address_pools.len()),
            (0, 1)
        );
        let operator = Scope::Operator.take(all.clone());
        assert_eq!((operator.metallbs.len(), operator.nodes.len()), (1, 0));
        assert_eq!((sessions.nodes.len(), addresses.nodes.len()), (1, 1));
    }

    #[test]
    fn kinds_map_to_scopes() {
        assert_eq!(Scope::of_kind("BFDProfile"), Some(Scope::Sessions));
        assert_eq!(Scope::of_kind("Community"), Some(Scope::Addresses));
        assert_eq!(Scope::of_kind("MetalLB"), Some(Scope::Operator));
        assert_eq!(Scope::of_kind("Service"), None);
    }
}
