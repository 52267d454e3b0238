//! BFDProfile objects → [`BfdProfile`]s, with the value ranges FRR accepts.
//!
//! The CRD schema enforces the same ranges, but files checked with `metallb validate` never
//! meet the API server, and FRR refuses the whole configuration when one value is out of range.

use std::collections::BTreeMap;

use super::problems::{Problems, unique_by_name};
use crate::{api::bfd_profile::BFDProfile, core::config::BfdProfile};

/// Receive, transmit and echo intervals in milliseconds (FRR `bfdd`).
const INTERVAL_MS: (u32, u32) = (10, 60_000);
/// Detection multiplier.
const DETECT_MULTIPLIER: (u32, u32) = (2, 255);
/// Minimum incoming TTL.
const MINIMUM_TTL: (u32, u32) = (1, 254);

/// Every uniquely named BFDProfile, keyed by name. Profiles with out-of-range values are kept
/// (and reported), so peers that name them are not also told the profile does not exist.
pub(crate) fn profiles(
    objects: &[BFDProfile],
    problems: &mut Problems,
) -> BTreeMap<String, BfdProfile> {
    let named = objects.iter().map(|o| ("BFDProfile", &o.metadata, o));
    let mut profiles = BTreeMap::new();
    for (reference, object) in unique_by_name(named, "BFDProfile", problems) {
        let spec = &object.spec;
        let mut checked = |field: &str, value: Option<u32>, (min, max): (u32, u32)| {
            if let Some(v) = value
                && !(min..=max).contains(&v)
            {
                problems.add(
                    &reference,
                    format!("spec.{field}"),
                    format!("invalid value {v}, must be in {min}-{max} range"),
                );
            }
            value
        };
        let profile = BfdProfile {
            name: reference.name.clone(),
            receive_interval: checked("receiveInterval", spec.receive_interval, INTERVAL_MS),
            transmit_interval: checked("transmitInterval", spec.transmit_interval, INTERVAL_MS),
            detect_multiplier: checked(
                "detectMultiplier",
                spec.detect_multiplier,
                DETECT_MULTIPLIER,
            ),
            echo_interval: checked("echoInterval", spec.echo_interval, INTERVAL_MS),
            echo_mode: spec.echo_mode.unwrap_or(false),
            passive_mode: spec.passive_mode.unwrap_or(false),
            minimum_ttl: checked("minimumTtl", spec.minimum_ttl, MINIMUM_TTL),
        };
        profiles.insert(reference.name.clone(), profile);
    }
    profiles
}

#[cfg(test)]
mod tests {
    use crate::config::load::test_support::*;

    const FULL: &str = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: doc-example-bfd-profile-full, namespace: metallb-system}\nspec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: true, minimumTtl: 254}\n";

    fn profile(spec: &str) -> String {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: b}}\nspec: {spec}\n"
        )
    }

    #[test]
    fn seed_profile_resolves() {
        let config = build_yaml(FULL).unwrap();
        let profile = &config.bfd_profiles["doc-example-bfd-profile-full"];
        assert_eq!(profile.receive_interval, Some(300));
        assert_eq!(profile.detect_multiplier, Some(3));
        assert!(profile.passive_mode);
        assert!(!profile.echo_mode);
        assert_eq!(profile.minimum_ttl, Some(254));
        assert_eq!(profile.echo_interval, None);
    }

    #[test]
    fn intervals_are_10_to_60000_ms() {
        assert_problem(
            &profile("{receiveInterval: 9}"),
            "BFDProfile/b: spec.receiveInterval: invalid value 9, must be in 10-60000 range",
        );
        assert_problem(
            &profile("{transmitInterval: 60001}"),
            "spec.transmitInterval: invalid value 60001",
        );
        assert_problem(
            &profile("{echoInterval: 0}"),
            "spec.echoInterval: invalid value 0",
        );
        assert!(
            problems(&profile(
                "{receiveInterval: 10, transmitInterval: 60000, echoInterval: 50}"
            ))
            .is_empty()
        );
    }

    #[test]
    fn detect_multiplier_is_2_to_255() {
        assert_problem(
            &profile("{detectMultiplier: 1}"),
            "spec.detectMultiplier: invalid value 1, must be in 2-255 range",
        );
        assert_problem(&profile("{detectMultiplier: 256}"), "spec.detectMultiplier");
    }

    #[test]
    fn minimum_ttl_is_1_to_254() {
        assert_problem(
            &profile("{minimumTtl: 0}"),
            "spec.minimumTtl: invalid value 0, must be in 1-254 range",
        );
        assert_problem(&profile("{minimumTtl: 255}"), "spec.minimumTtl");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        assert_problem(
            &format!("{}---\n{}", profile("{}"), profile("{}")),
            "BFDProfile/b: metadata.name: duplicate definition of BFDProfile \"b\"",
        );
    }
}
