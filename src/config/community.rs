//! Community objects → the alias table, and the one way every advertisement turns a
//! `communities` entry (a literal value or an alias) into a [`Community`].

use std::collections::BTreeMap;

use super::problems::{ObjectRef, Problems, unique_by_name};
use crate::{api::community::Community as CommunityObject, core::community::Community};

/// Alias name → value. `None` marks an alias whose value is invalid: that was reported on the
/// Community object, so advertisements using the alias are not reported again.
pub(crate) type Aliases = BTreeMap<String, Option<Community>>;

/// Every alias of every Community object. Objects are read in name order, so the later
/// definition of an alias that is defined twice is the one reported.
pub(crate) fn aliases(objects: &[CommunityObject], problems: &mut Problems) -> Aliases {
    let named = objects.iter().map(|o| ("Community", &o.metadata, o));
    let mut unique = unique_by_name(named, "Community", problems);
    unique.sort_by(|a, b| a.0.cmp(&b.0));

    let mut aliases = Aliases::new();
    let mut defined_by: BTreeMap<String, (ObjectRef, usize)> = BTreeMap::new();
    for (reference, object) in unique {
        for (index, alias) in object.spec.communities.iter().enumerate() {
            let field = format!("spec.communities[{index}]");
            let value = match alias.value.parse::<Community>() {
                Ok(value) => Some(value),
                Err(e) => {
                    problems.add(&reference, format!("{field}.value"), e.to_string());
                    None
                }
            };
            if alias.name.is_empty() {
                problems.add(&reference, format!("{field}.name"), "missing alias name");
                continue;
            }
            // Advertisements look aliases up before parsing values, so an alias that reads as
            // a value would silently change what that value means.
            if Community::looks_literal(&alias.name) {
                problems.add(
                    &reference,
                    format!("{field}.name"),
                    format!(
                        "alias name {:?} looks like a community value; an alias name must not \
                         contain ':' or be a well-known community name",
                        alias.name
                    ),
                );
                continue;
            }
            if let Some((first_object, first_index)) = defined_by.get(&alias.name) {
                problems.add(
                    &reference,
                    format!("{field}.name"),
                    format!(
                        "duplicate definition of community {:?}: already defined in {first_object} \
                         spec.communities[{first_index}]",
                        alias.name
                    ),
                );
                continue;
            }
            defined_by.insert(alias.name.clone(), (reference.clone(), index));
            aliases.insert(alias.name.clone(), value);
        }
    }
    aliases
}

/// Turns one `communities` entry into a value: an alias first (as MetalLB does), then a literal
/// (`a:b`, `large:a:b:c` or a well-known name). `Ok(None)` means an alias whose own value is
/// invalid and already reported.
pub(crate) fn resolve(text: &str, aliases: &Aliases) -> Result<Option<Community>, String> {
    if let Some(value) = aliases.get(text) {
        return Ok(*value);
    }
    if Community::looks_literal(text) {
        return text
            .parse()
            .map(Some)
            .map_err(|e: crate::core::community::CommunityError| e.to_string());
    }
    Err(format!(
        "unknown community alias {text:?}: define it in a Community resource, or write a value \
         such as 65535:65282, large:64500:1:2 or NO_ADVERTISE"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::test_support::*;

    fn community_object(name: &str, aliases: &[(&str, &str)]) -> String {
        let list: Vec<String> = aliases
            .iter()
            .map(|(n, v)| format!("{{name: '{n}', value: '{v}'}}"))
            .collect();
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {{name: {name}}}\nspec: {{communities: [{}]}}\n",
            list.join(", ")
        )
    }

    #[test]
    fn values_must_parse() {
        assert_problem(
            &community_object("c", &[("ok", "65535:65282"), ("bad", "65536:1")]),
            "Community/c: spec.communities[1].value: invalid community \"65536:1\"",
        );
        assert_problem(
            &community_object("c", &[("big", "large:1:2:4294967296")]),
            "spec.communities[0].value: invalid large community",
        );
        assert_problem(
            &community_object("c", &[("ext", "rt:1:2")]),
            "spec.communities[0].value: invalid community",
        );
    }

    #[test]
    fn alias_names_must_be_present_and_not_look_like_values() {
        assert_problem(
            &community_object("c", &[("", "1:1")]),
            "spec.communities[0].name: missing alias name",
        );
        assert_problem(
            &community_object("c", &[("1:2", "1:1")]),
            "spec.communities[0].name: alias name \"1:2\" looks like a community value",
        );
        assert_problem(
            &community_object("c", &[("no_export", "1:1")]),
            "looks like a community value",
        );
    }

    #[test]
    fn duplicate_aliases_across_objects_are_rejected() {
        let text = format!(
            "{}---\n{}",
            community_object("b", &[("gold", "1:1")]),
            community_object("a", &[("silver", "1:2"), ("gold", "1:3")])
        );
        // Objects are read in name order: `a` defines gold first.
        assert_problem(
            &text,
            "Community/b: spec.communities[0].name: duplicate definition of community \"gold\": already defined in Community/a spec.communities[1]",
        );
    }

    #[test]
    fn resolve_prefers_aliases_then_literals() {
        let mut aliases = Aliases::new();
        aliases.insert("gold".into(), Some(Community::Standard(1, 1)));
        aliases.insert("broken".into(), None);
        assert_eq!(
            resolve("gold", &aliases),
            Ok(Some(Community::Standard(1, 1)))
        );
        assert_eq!(resolve("broken", &aliases), Ok(None));
        assert_eq!(
            resolve("NO_EXPORT", &aliases),
            Ok(Some(Community::Standard(65535, 65281)))
        );
        assert_eq!(
            resolve("large:1:2:3", &aliases),
            Ok(Some(Community::Large(1, 2, 3)))
        );
        assert!(
            resolve("1:70000", &aliases)
                .unwrap_err()
                .contains("invalid community")
        );
        assert!(
            resolve("silver", &aliases)
                .unwrap_err()
                .starts_with("unknown community alias \"silver\"")
        );
    }
}
