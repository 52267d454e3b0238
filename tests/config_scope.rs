//! The problems of a configuration are the problems of its scopes, each loaded alone
//! (`config::scope`): what lets the admission webhook judge a change to one kind against that
//! kind's scope only. Checked on every fixture alone and on all of them together, where names
//! collide and pools overlap across files.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::{collections::BTreeSet, fs, path::PathBuf};

use fixtures::yaml_files;
use metallb::{
    config::{LoadOptions, Resources, load, scope::Scope},
    manifest,
};

fn decode(files: &[PathBuf]) -> Resources {
    let mut docs = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        docs.extend(manifest::parse(&file.display().to_string(), &text).unwrap());
    }
    // Objects that do not decode are left out of both sides alike.
    Resources::from_documents(&docs).0
}

fn problems(resources: &Resources, options: &LoadOptions) -> BTreeSet<String> {
    load(resources, options)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Asserts the equality for `resources` and returns how many problems it has.
fn assert_scopes_partition(what: &str, resources: &Resources) -> usize {
    let mut count = 0;
    for options in [
        LoadOptions::default(),
        LoadOptions {
            namespace: Some("metallb-system".into()),
        },
    ] {
        let whole = problems(resources, &options);
        let mut parts = BTreeSet::new();
        for scope in Scope::ALL {
            parts.extend(problems(&scope.take(resources.clone()), &options));
        }
        assert_eq!(whole, parts, "{what}, {options:?}");
        count += whole.len();
    }
    count
}

const DIRS: [&str; 3] = ["seed", "invalid", "filters"];

#[test]
fn each_fixture_has_the_problems_of_its_scopes() {
    let mut found = 0;
    for dir in DIRS {
        for file in yaml_files(dir) {
            found += assert_scopes_partition(&file.display().to_string(), &decode(&[file]));
        }
    }
    // The corpus exercises the checks: the invalid fixtures have problems.
    assert!(found >= yaml_files("invalid").len(), "{found} problems");
}

#[test]
fn all_fixtures_together_have_the_problems_of_their_scopes() {
    let files: Vec<PathBuf> = DIRS.iter().flat_map(|dir| yaml_files(dir)).collect();
    let found = assert_scopes_partition("every fixture at once", &decode(&files));
    assert!(found > 0);
}
