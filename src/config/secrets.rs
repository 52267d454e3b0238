//! BGP session passwords from Secrets (`BGPPeer.spec.passwordSecret`).
//!
//! Upstream's rule: the Secret is in MetalLB's namespace, of type `kubernetes.io/basic-auth`,
//! with a `password` key. A peer whose Secret is missing or malformed is a configuration
//! error, not a session without a password: a router that enforces TCP MD5 would reject it,
//! and one that does not would run unauthenticated without anybody having asked for that.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::{ConfigError, Resources};
use crate::core::config::{Config, Password};

/// The Secret type upstream requires for BGP passwords.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

/// Passwords of the peers whose password is in a Secret, by peer name, and one error per peer
/// whose Secret is missing or malformed ([`super::load()`] leaves such a peer out).
pub fn peer_passwords(
    resources: &Resources,
    config: &Config,
) -> (BTreeMap<String, String>, Vec<ConfigError>) {
    let mut passwords = BTreeMap::new();
    let mut errors = Vec::new();
    for peer in config.peers.values() {
        let Some(Password::Secret { name, namespace }) = &peer.password else {
            continue;
        };
        // Without an explicit namespace the Secret is next to the BGPPeer.
        let peer_namespace = resources
            .bgp_peers
            .iter()
            .find(|p| p.peer.metadata.name.as_deref() == Some(peer.name.as_str()))
            .and_then(|p| p.peer.metadata.namespace.clone());
        let namespace = namespace.clone().or(peer_namespace);
        // The Secret may be created or fixed after the peer: the webhook admits the peer.
        let error = |message: String| {
            ConfigError::awaiting("BGPPeer", &peer.name, "spec.passwordSecret", message)
        };
        let shown = match &namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        };
        let Some(secret) = find(&resources.secrets, name, namespace.as_deref()) else {
            errors.push(error(format!("Secret {shown} not found")));
            continue;
        };
        match password_of(secret) {
            Ok(password) => {
                passwords.insert(peer.name.clone(), password);
            }
            Err(why) => errors.push(error(format!("Secret {shown}: {why}"))),
        }
    }
    (passwords, errors)
}

/// The Secret `name` in `namespace`; a Secret without a namespace (a manifest file) matches
/// any.
fn find<'a>(secrets: &'a [Secret], name: &str, namespace: Option<&str>) -> Option<&'a Secret> {
    secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && match (namespace, s.metadata.namespace.as_deref()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    })
}

/// The `password` of a basic-auth Secret, from `data` (base64 on the wire, bytes here) or
/// `stringData` (manifests).
fn password_of(secret: &Secret) -> Result<String, String> {
    let kind = secret.type_.as_deref().unwrap_or("Opaque");
    if kind != BASIC_AUTH {
        return Err(format!("is of type {kind:?}, want {BASIC_AUTH:?}"));
    }
    let password = match (
        secret.data.as_ref().and_then(|d| d.get("password")),
        secret.string_data.as_ref().and_then(|d| d.get("password")),
    ) {
        (_, Some(text)) => text.clone(),
        (Some(bytes), None) => String::from_utf8(bytes.0.clone())
            .map_err(|_| "the \"password\" key is not UTF-8 text".to_string())?,
        (None, None) => return Err("has no \"password\" key".into()),
    };
    if password.is_empty() {
        return Err("the \"password\" key is empty".into());
    }
    // frr.conf takes the password as one word on the neighbor line.
    if password.chars().any(char::is_whitespace) {
        return Err("the password must not contain spaces or line breaks".into());
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, manifest};

    const PEERS: &str = r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: with-secret, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
  passwordSecret: {name: bgp-auth}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: plain, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.2
  password: inline
"#;

    fn passwords(secret: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
        let text = format!("{PEERS}---\n{secret}");
        let docs = manifest::parse("test.yaml", &text).unwrap();
        let (resources, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "{errors:?}");
        let (config, problems) = config::build::build(&resources, &Default::default());
        assert_eq!(problems.len(), 0, "{problems:?}");
        let (passwords, errors) = peer_passwords(&resources, &config);
        if errors.is_empty() {
            Ok(passwords)
        } else {
            Err(errors.iter().map(ToString::to_string).collect())
        }
    }

    #[test]
    fn a_basic_auth_secret_gives_the_peer_its_password() {
        // `data` is base64 on the wire: "s3cret".
        let got = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth, namespace: metallb-system}\n\
             type: kubernetes.io/basic-auth\ndata: {password: czNjcmV0}\n",
        )
        .unwrap();
        assert_eq!(
            got,
            BTreeMap::from([("with-secret".into(), "s3cret".into())])
        );
        let got = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth}\n\
             type: kubernetes.io/basic-auth\nstringData: {password: fromfile}\n",
        )
        .unwrap();
        assert_eq!(got["with-secret"], "fromfile");
    }

    #[test]
    fn missing_or_malformed_secrets_are_errors_naming_the_peer() {
        let missing = passwords("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n");
        assert_eq!(
            missing.unwrap_err(),
            ["BGPPeer/with-secret: spec.passwordSecret: Secret metallb-system/bgp-auth not found"]
        );
        let elsewhere = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth, namespace: other}\n\
             type: kubernetes.io/basic-auth\nstringData: {password: x}\n",
        );
        assert!(elsewhere.unwrap_err()[0].contains("not found"));
        let opaque = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth}\nstringData: {password: x}\n",
        );
        assert!(
            opaque.unwrap_err()[0]
                .contains("is of type \"Opaque\", want \"kubernetes.io/basic-auth\"")
        );
        let no_key = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth}\n\
             type: kubernetes.io/basic-auth\nstringData: {username: x}\n",
        );
        assert!(no_key.unwrap_err()[0].ends_with("has no \"password\" key"));
        let spaced = passwords(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-auth}\n\
             type: kubernetes.io/basic-auth\nstringData: {password: \"two words\"}\n",
        );
        assert!(spaced.unwrap_err()[0].contains("spaces"));
    }
}
