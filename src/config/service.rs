//! Kubernetes `Service` → [`LbService`]: reading the fields and MetalLB annotations that decide
//! how a LoadBalancer service gets its addresses.

use std::{collections::BTreeMap, net::IpAddr};

use k8s_openapi::api::core::v1::Service;

use crate::core::{
    address::Family,
    service::{IpFamilyPolicy, LbService, Port, Protocol, ServiceKey},
};

/// Annotation keys, read with the current prefix first and the deprecated one second.
pub mod annotation {
    /// Current prefix.
    pub const PREFIX: &str = "metallb.io/";
    /// Deprecated prefix, still read (upstream emits a `deprecatedAnnotation` warning for it).
    pub const LEGACY_PREFIX: &str = "metallb.universe.tf/";
    /// Pool to allocate from.
    pub const ADDRESS_POOL: &str = "address-pool";
    /// Comma-separated requested addresses.
    pub const LOAD_BALANCER_IPS: &str = "loadBalancerIPs";
    /// Sharing key.
    pub const ALLOW_SHARED_IP: &str = "allow-shared-ip";
    /// Written by the controller: the pool an address came from.
    pub const IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";
}

/// Why a Service's MetalLB settings cannot be used; the text is what the `LoadBalancerFailed`
/// event says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// `spec.loadBalancerIP` is not an address.
    #[error("invalid spec.loadBalancerIP {0:?}: not an IP address")]
    InvalidLoadBalancerIp(String),
    /// An entry of the `loadBalancerIPs` annotation is not an address.
    #[error("invalid {annotation} annotation: {value:?} is not an IP address")]
    InvalidAnnotationIp {
        /// Full annotation key.
        annotation: String,
        /// The bad entry.
        value: String,
    },
    /// Both ways of requesting addresses are used at once.
    #[error("spec.loadBalancerIP and the loadBalancerIPs annotation cannot be used together")]
    BothRequestStyles,
    /// More than two addresses, or two of one family.
    #[error("at most one IPv4 and one IPv6 address can be requested, got {0}")]
    TooManyRequested(String),
    /// `spec.ipFamilies` holds something else than IPv4/IPv6.
    #[error("unknown ip family {0:?} in spec.ipFamilies")]
    UnknownFamily(String),
}

/// Whether MetalLB handles this Service: type LoadBalancer and a `loadBalancerClass` equal to
/// ours (no class only when we have none, as upstream's `--lb-class`).
pub fn is_ours(service: &Service, lb_class: Option<&str>) -> bool {
    let Some(spec) = &service.spec else {
        return false;
    };
    spec.type_.as_deref() == Some("LoadBalancer") && spec.load_balancer_class.as_deref() == lb_class
}

/// Reads an annotation under either prefix, the current one winning.
pub fn annotation<'a>(service: &'a Service, name: &str) -> Option<&'a str> {
    let annotations = service.metadata.annotations.as_ref()?;
    annotations
        .get(&format!("{}{name}", annotation::PREFIX))
        .or_else(|| annotations.get(&format!("{}{name}", annotation::LEGACY_PREFIX)))
        .map(String::as_str)
}

/// The addresses in `status.loadBalancer.ingress` (entries that are not IPs are skipped).
pub fn ingress_ips(service: &Service) -> Vec<IpAddr> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
        .collect()
}

/// The allocator's view of a Service. `namespace_labels` are the labels of its namespace.
pub fn lb_service(
    service: &Service,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<LbService, ServiceError> {
    let spec = service.spec.clone().unwrap_or_default();
    let key = ServiceKey::new(
        service
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        service.metadata.name.clone().unwrap_or_default(),
    );

    let mut requested_ips = Vec::new();
    if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        requested_ips.push(
            ip.parse()
                .map_err(|_| ServiceError::InvalidLoadBalancerIp(ip.into()))?,
        );
    }
    if let Some(list) = annotation(service, annotation::LOAD_BALANCER_IPS) {
        if !requested_ips.is_empty() {
            return Err(ServiceError::BothRequestStyles);
        }
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            requested_ips.push(entry.parse::<IpAddr>().map_err(|_| {
                ServiceError::InvalidAnnotationIp {
                    annotation: annotation::LOAD_BALANCER_IPS.into(),
                    value: entry.into(),
                }
            })?);
        }
    }
    let v4 = requested_ips.iter().filter(|ip| ip.is_ipv4()).count();
    if requested_ips.len() > 2 || v4 == 2 || (requested_ips.len() == 2 && v4 == 0) {
        let list: Vec<String> = requested_ips.iter().map(ToString::to_string).collect();
        return Err(ServiceError::TooManyRequested(list.join(",")));
    }

    let traffic_policy_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let backend_key = if traffic_policy_local {
        // Services sharing an address with policy Local must select the same pods: the node
        // that attracts the traffic can only hand it to local endpoints (upstream #271).
        spec.selector
            .as_ref()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    } else {
        String::new()
    };

    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            },
            port: u16::try_from(p.port).unwrap_or(0),
        })
        .collect();

    let mut families = Vec::new();
    for family in spec.ip_families.iter().flatten() {
        families.push(match family.as_str() {
            "IPv4" => Family::V4,
            "IPv6" => Family::V6,
            other => return Err(ServiceError::UnknownFamily(other.into())),
        });
    }
    if families.is_empty() {
        let cluster_ips = spec.cluster_ips.clone().unwrap_or_default();
        let ips = if cluster_ips.is_empty() {
            spec.cluster_ip.clone().into_iter().collect()
        } else {
            cluster_ips
        };
        families = ips
            .iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| Family::of(&ip))
            .collect();
    }
    if families.is_empty() {
        // No cluster IP yet (a manifest, not a live object): assume the primary family of the
        // addresses asked for, else IPv4, as a default single-stack cluster would.
        families.push(requested_ips.first().map(Family::of).unwrap_or(Family::V4));
    }

    let family_policy = match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
        _ => IpFamilyPolicy::SingleStack,
    };

    let current_ips = ingress_ips(service);

    Ok(LbService {
        key,
        labels: service.metadata.labels.clone().unwrap_or_default(),
        namespace_labels: namespace_labels.clone(),
        requested_ips,
        requested_pool: annotation(service, annotation::ADDRESS_POOL).map(str::to_string),
        sharing_key: annotation(service, annotation::ALLOW_SHARED_IP)
            .filter(|k| !k.is_empty())
            .map(str::to_string),
        backend_key,
        ports,
        families,
        family_policy,
        traffic_policy_local,
        current_ips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn reads_requested_ip_pool_and_sharing_key_from_either_prefix() {
        let svc = service(
            "metadata: {name: s, namespace: ns, annotations: {metallb.universe.tf/address-pool: gold, metallb.io/allow-shared-ip: k}}\nspec: {type: LoadBalancer, loadBalancerIP: 172.31.249.7, ports: [{port: 53, protocol: UDP}]}",
        );
        let lb = lb_service(&svc, &BTreeMap::new()).unwrap();
        assert_eq!(lb.key.to_string(), "ns/s");
        assert_eq!(
            lb.requested_ips,
            vec!["172.31.249.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(lb.requested_pool.as_deref(), Some("gold"));
        assert_eq!(lb.sharing_key.as_deref(), Some("k"));
        assert_eq!(
            lb.ports,
            vec![Port {
                protocol: Protocol::Udp,
                port: 53
            }]
        );
        assert_eq!(lb.families, vec![Family::V4]);
    }

    #[test]
    fn dual_stack_families_and_policy_local_backend_key() {
        let svc = service(
            "metadata: {name: s}\nspec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: web, tier: a}, ipFamilies: [IPv6, IPv4], ipFamilyPolicy: RequireDualStack}",
        );
        let lb = lb_service(&svc, &BTreeMap::new()).unwrap();
        assert_eq!(lb.families, vec![Family::V6, Family::V4]);
        assert_eq!(lb.family_policy, IpFamilyPolicy::RequireDualStack);
        assert_eq!(lb.backend_key, "app=web,tier=a");
        assert_eq!(lb.key.namespace, "default");
    }

    #[test]
    fn bad_requests_are_errors() {
        let bad_ip = service(
            "metadata: {name: s}\nspec: {type: LoadBalancer, loadBalancerIP: <ip_address>}",
        );
        assert_eq!(
            lb_service(&bad_ip, &BTreeMap::new()),
            Err(ServiceError::InvalidLoadBalancerIp("<ip_address>".into()))
        );
        let both = service(
            "metadata: {name: s, annotations: {metallb.io/loadBalancerIPs: 10.0.0.1}}\nspec: {type: LoadBalancer, loadBalancerIP: 10.0.0.2}",
        );
        assert_eq!(
            lb_service(&both, &BTreeMap::new()),
            Err(ServiceError::BothRequestStyles)
        );
        let two_v4 = service(
            "metadata: {name: s, annotations: {metallb.io/loadBalancerIPs: '10.0.0.1, 10.0.0.2'}}\nspec: {type: LoadBalancer}",
        );
        assert!(matches!(
            lb_service(&two_v4, &BTreeMap::new()),
            Err(ServiceError::TooManyRequested(_))
        ));
    }

    #[test]
    fn only_load_balancers_of_our_class_are_ours() {
        let plain = service("metadata: {name: s}\nspec: {type: LoadBalancer}");
        let classed =
            service("metadata: {name: s}\nspec: {type: LoadBalancer, loadBalancerClass: other}");
        let cluster_ip = service("metadata: {name: s}\nspec: {type: ClusterIP}");
        assert!(is_ours(&plain, None));
        assert!(!is_ours(&plain, Some("metallb")));
        assert!(!is_ours(&classed, None));
        assert!(is_ours(&classed, Some("other")));
        assert!(!is_ours(&cluster_ip, None));
    }
}
