//! The one way from `metallb.io` objects to the configuration a component runs: [`load`] for
//! typed objects (controller, speaker, admission webhook), [`load_documents`] for manifests
//! (`metallb validate`, `metallb plan`, the manifest-driven speakers).
//!
//! Each layer reads the same [`Loaded`] its own way:
//!
//! | layer | problems that [await an object](ConfigError::awaits_object) | other problems |
//! |---|---|---|
//! | admission webhook | admitted: the object may still come | rejected |
//! | controller, speaker | errors (ConfigurationState, events); the objects at fault are left out, the rest runs | errors; the last good config stays |
//! | `metallb validate` | errors (exit 1), marked as what the webhook would admit | errors (exit 1) |
//! | `metallb plan` | errors; the plan shows what would run without the objects at fault, `-o frr` renders nothing | errors, nothing planned |

use std::collections::BTreeMap;

use super::{ConfigError, Resources, build::build, secrets};
use crate::{core::config::Config, manifest::Document};

/// Settings of one [`load`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// MetalLB's namespace. When set, every `metallb.io` object that names a namespace must name
    /// this one (upstream's "resource must be created in <ns> namespace"), and so must a BGPPeer's
    /// password Secret. Objects without a namespace pass: they land wherever they are applied.
    pub namespace: Option<String>,
}

/// What [`load`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The configuration to run. `None` when some problem does not
    /// [await an object](ConfigError::awaits_object): then nothing new may run and the last
    /// good configuration stays. With only awaiting problems (or none) it holds every object
    /// that passed; the objects at fault (a peer without its password Secret or BFDProfile, an
    /// advertisement with an unknown community alias) are left out.
    pub config: Option<Config>,
    /// Session passwords read from `passwordSecret` Secrets, by BGPPeer name.
    pub passwords: BTreeMap<String, String>,
    /// Every problem, decoding first, then sorted by kind, name and field, without duplicates.
    pub problems: Vec<ConfigError>,
}

impl Loaded {
    /// The configuration when there is no problem at all, else every problem: the strict
    /// reading of `metallb validate` and of tests.
    pub fn valid(self) -> Result<Config, Vec<ConfigError>> {
        match self.config {
            Some(config) if self.problems.is_empty() => Ok(config),
            _ => Err(self.problems),
        }
    }

    /// The problems that are not [awaiting an object](ConfigError::awaits_object): those the
    /// admission webhook rejects and that stop a new configuration from running.
    pub fn blocking(&self) -> impl Iterator<Item = &ConfigError> {
        self.problems.iter().filter(|p| !p.awaits_object())
    }
}

/// Validates every `metallb.io` object in `resources` with the admission webhooks' rules
/// (MetalLB 4.10 operator and current upstream, FRR mode), resolves both API styles (legacy
/// `AddressPool`, or `IPAddressPool` plus advertisements) into one [`Config`], and reads the
/// BGP passwords from their Secrets.
///
/// Unlike upstream it does not stop at the first problem, so an admin sees everything that is
/// wrong in one run. Advertisements select pools, peers and nodes; a name that selects nothing
/// is not a problem (upstream's rule: the object may come later). References that a peer or an
/// advertisement needs to work as asked are problems that [await the
/// object](ConfigError::awaits_object).
pub fn load(resources: &Resources, options: &LoadOptions) -> Loaded {
    let (mut config, mut problems) = build(resources, options);
    let (passwords, secret_problems) = secrets::peer_passwords(resources, &config);
    // A session without the password it asks for is not brought up at all.
    for problem in &secret_problems {
        config.peers.remove(&problem.name);
    }
    problems.extend(secret_problems);
    let problems = problems.into_errors();
    let runnable = problems.iter().all(ConfigError::awaits_object);
    Loaded {
        config: runnable.then_some(config),
        passwords,
        problems,
    }
}

/// Decodes manifest documents and [`load`]s them. Decoding problems come first and leave no
/// configuration to run: an object that could not be read may be one the others depend on.
pub fn load_documents<'a>(
    docs: impl IntoIterator<Item = &'a Document>,
    options: &LoadOptions,
) -> (Resources, Loaded) {
    let (resources, mut decode_problems) = Resources::from_documents(docs);
    let mut loaded = load(&resources, options);
    if !decode_problems.is_empty() {
        loaded.config = None;
        decode_problems.append(&mut loaded.problems);
        let mut seen = std::collections::BTreeSet::new();
        decode_problems.retain(|e| seen.insert(e.clone()));
        loaded.problems = decode_problems;
    }
    (resources, loaded)
}

/// Helpers for the unit tests of every config module.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::manifest;

    /// Parses, decodes and loads a manifest, failing on decode errors; any problem is an
    /// `Err`.
    pub(crate) fn build_yaml(text: &str) -> Result<Config, Vec<ConfigError>> {
        build_yaml_with(text, &LoadOptions::default())
    }

    pub(crate) fn build_yaml_with(
        text: &str,
        options: &LoadOptions,
    ) -> Result<Config, Vec<ConfigError>> {
        load_yaml_with(text, options).valid()
    }

    /// Parses and decodes a manifest, failing on decode errors.
    pub(crate) fn resources(text: &str) -> Resources {
        let docs = manifest::parse("test.yaml", text).expect("test manifest is valid YAML");
        let (resources, errors) = Resources::from_documents(&docs);
        assert!(errors.is_empty(), "decode errors: {errors:?}");
        resources
    }

    /// Parses, decodes and loads a manifest, failing on decode errors.
    pub(crate) fn load_yaml_with(text: &str, options: &LoadOptions) -> Loaded {
        load(&resources(text), options)
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
    use crate::manifest;

    const PEER_WITH_SECRET: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: guarded}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, passwordSecret: {name: auth}}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: open}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2}\n";

    #[test]
    fn a_missing_secret_leaves_that_peer_out_and_the_rest_runs() {
        let loaded = load_yaml_with(PEER_WITH_SECRET, &LoadOptions::default());
        let config = loaded.config.as_ref().expect("the rest of the config runs");
        assert_eq!(config.peers.keys().collect::<Vec<_>>(), ["open"]);
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        assert!(loaded.problems[0].awaits_object());
        assert_eq!(loaded.blocking().count(), 0);
        assert!(
            loaded.clone().valid().is_err(),
            "strict readers see the error"
        );

        let with_secret = format!(
            "{PEER_WITH_SECRET}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: auth}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: pw}}\n"
        );
        let loaded = load_yaml_with(&with_secret, &LoadOptions::default());
        assert_eq!(loaded.passwords["guarded"], "pw");
        assert_eq!(loaded.valid().unwrap().peers.len(), 2);
    }

    #[test]
    fn any_other_problem_leaves_no_config_to_run() {
        let text = format!(
            "{PEER_WITH_SECRET}---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bad}}\nspec: {{addresses: [nonsense]}}\n"
        );
        let loaded = load_yaml_with(&text, &LoadOptions::default());
        assert_eq!(loaded.config, None);
        assert_eq!(loaded.blocking().count(), 1, "{:?}", loaded.problems);
    }

    #[test]
    fn decode_problems_come_first_and_leave_no_config() {
        let text = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/24], autoAsign: false}\n---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {namespace: x}\n";
        let docs = manifest::parse("t.yaml", text).unwrap();
        let (_, loaded) = load_documents(&docs, &LoadOptions::default());
        assert_eq!(loaded.config, None);
        let shown: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "IPAddressPool/p: spec.autoAsign: unknown field",
                "BFDProfile/<unnamed>: metadata.name: missing name: every BFDProfile needs a name"
            ]
        );
    }
}
