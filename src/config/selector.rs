//! Label selectors as admins write them in `metallb.io` objects (the Kubernetes `LabelSelector`),
//! converted to [`crate::core::selector::LabelSelector`] with the checks the API server and
//! MetalLB make, and the one question every node-related rule asks: can two node selections
//! share a node?
//!
//! Every selector field of every kind goes through [`convert`] (one selector) or
//! [`convert_list`] (a `...Selectors` list), so operators, label syntax and duplicates are judged
//! the same way everywhere.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Node;

use super::problems::{ObjectRef, Problems};
use crate::{
    api::LabelSelector as ApiLabelSelector,
    core::selector::{LabelSelector, Labels, Operator, Requirement, any_matches},
};

/// Longest label name (the part after an optional `prefix/`) and label value Kubernetes accepts.
const MAX_LABEL_NAME: usize = 63;
/// Longest label key prefix (a DNS subdomain).
const MAX_LABEL_PREFIX: usize = 253;

/// Why a selector is not valid; each comes with the field it is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An operator Kubernetes does not know.
    #[error("unknown operator {0:?}: must be one of In, NotIn, Exists, DoesNotExist")]
    UnknownOperator(String),
    /// `In` or `NotIn` without values.
    #[error("operator {0} needs at least one value")]
    MissingValues(&'static str),
    /// `Exists` or `DoesNotExist` with values.
    #[error("operator {0} takes no values")]
    UnexpectedValues(&'static str),
    /// A label key that Kubernetes would refuse.
    #[error("invalid label key {key:?}: {reason}")]
    Key {
        /// The key as written.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label value that Kubernetes would refuse.
    #[error(
        "invalid label value {0:?}: must be at most 63 characters, start and end with a letter or \
         digit, and contain only letters, digits, '-', '_' and '.'"
    )]
    Value(String),
    /// The same value twice in one requirement.
    #[error("duplicate definition of match expression value {0:?}")]
    DuplicateValue(String),
    /// The same requirement twice in one selector.
    #[error("duplicate definition of match expressions: same as matchExpressions[{0}]")]
    DuplicateExpression(usize),
}

/// A selector problem and the field it is about, relative to the selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorProblem {
    /// Relative field path such as `matchExpressions[0].operator`; empty for the whole selector.
    pub field: String,
    /// What is wrong.
    pub error: SelectorError,
}

/// Converts one Kubernetes label selector, checking what the API server checks (operators,
/// values, label syntax) plus MetalLB's duplicate rules. Requirements are sorted, so two
/// selectors that mean the same compare equal.
pub fn convert(selector: &ApiLabelSelector) -> Result<LabelSelector, Vec<SelectorProblem>> {
    let mut problems = Vec::new();
    let mut match_labels = Labels::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        let field = format!("matchLabels.{key}");
        if let Err(error) = check_key(key) {
            problems.push(SelectorProblem {
                field: field.clone(),
                error,
            });
        }
        if let Err(error) = check_value(value) {
            problems.push(SelectorProblem { field, error });
        }
        match_labels.insert(key.clone(), value.clone());
    }

    let mut match_expressions: Vec<Requirement> = Vec::new();
    for (index, expression) in selector.match_expressions.iter().flatten().enumerate() {
        let field = |leaf: &str| format!("matchExpressions[{index}]{leaf}");
        if let Err(error) = check_key(&expression.key) {
            problems.push(SelectorProblem {
                field: field(".key"),
                error,
            });
        }
        let values = expression.values.as_deref().unwrap_or_default();
        let operator = match expression.operator.as_str() {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            other => {
                problems.push(SelectorProblem {
                    field: field(".operator"),
                    error: SelectorError::UnknownOperator(other.to_string()),
                });
                None
            }
        };
        match operator {
            Some(op @ (Operator::In | Operator::NotIn)) if values.is_empty() => {
                problems.push(SelectorProblem {
                    field: field(".values"),
                    error: SelectorError::MissingValues(operator_name(op)),
                });
            }
            Some(op @ (Operator::Exists | Operator::DoesNotExist)) if !values.is_empty() => {
                problems.push(SelectorProblem {
                    field: field(".values"),
                    error: SelectorError::UnexpectedValues(operator_name(op)),
                });
            }
            _ => {}
        }
        let mut value_set = BTreeSet::new();
        for (value_index, value) in values.iter().enumerate() {
            let value_field = field(&format!(".values[{value_index}]"));
            if let Err(error) = check_value(value) {
                problems.push(SelectorProblem {
                    field: value_field.clone(),
                    error,
                });
            }
            if !value_set.insert(value.clone()) {
                problems.push(SelectorProblem {
                    field: value_field,
                    error: SelectorError::DuplicateValue(value.clone()),
                });
            }
        }
        let Some(operator) = operator else { continue };
        let requirement = Requirement {
            key: expression.key.clone(),
            operator,
            values: value_set,
        };
        if let Some(first) = match_expressions.iter().position(|r| *r == requirement) {
            problems.push(SelectorProblem {
                field: field(""),
                error: SelectorError::DuplicateExpression(first),
            });
        }
        match_expressions.push(requirement);
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    match_expressions.sort();
    match_expressions.dedup();
    Ok(LabelSelector {
        match_labels,
        match_expressions,
    })
}

/// Converts a `...Selectors` list at `field` (for example `spec.nodeSelectors`), reporting
/// every invalid selector and every selector equal to an earlier one. Returns the valid ones.
pub(crate) fn convert_list(
    object: &ObjectRef,
    field: &str,
    selectors: &[ApiLabelSelector],
    problems: &mut Problems,
) -> Vec<LabelSelector> {
    let list_name = field.rsplit('.').next().unwrap_or(field);
    let mut converted: Vec<LabelSelector> = Vec::new();
    for (index, selector) in selectors.iter().enumerate() {
        let item_field = format!("{field}[{index}]");
        let Some(selector) = convert_one(object, &item_field, selector, problems) else {
            continue;
        };
        if let Some(first) = converted.iter().position(|s| *s == selector) {
            problems.add(
                object,
                item_field,
                format!(
                    "duplicate definition of {list_name}: same selector as {list_name}[{first}]"
                ),
            );
            continue;
        }
        converted.push(selector);
    }
    converted
}

/// Converts a single selector at `field`, reporting its problems.
pub(crate) fn convert_one(
    object: &ObjectRef,
    field: &str,
    selector: &ApiLabelSelector,
    problems: &mut Problems,
) -> Option<LabelSelector> {
    match convert(selector) {
        Ok(selector) => Some(selector),
        Err(found) => {
            for problem in found {
                let full = if problem.field.is_empty() {
                    field.to_string()
                } else {
                    format!("{field}.{}", problem.field)
                };
                problems.add(object, full, problem.error.to_string());
            }
            None
        }
    }
}

fn operator_name(operator: Operator) -> &'static str {
    match operator {
        Operator::In => "In",
        Operator::NotIn => "NotIn",
        Operator::Exists => "Exists",
        Operator::DoesNotExist => "DoesNotExist",
    }
}

/// A Kubernetes qualified name: an optional DNS-subdomain prefix and `/`, then a label name.
fn check_key(key: &str) -> Result<(), SelectorError> {
    let invalid = |reason| {
        Err(SelectorError::Key {
            key: key.to_string(),
            reason,
        })
    };
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return invalid("a key contains at most one '/'");
    }
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return invalid(
            "the prefix before '/' must be a lowercase DNS subdomain such as example.com",
        );
    }
    if name.is_empty() {
        return invalid("the name must not be empty");
    }
    if !is_label_name(name) {
        return invalid(
            "the name must be at most 63 characters, start and end with a letter or digit, and \
             contain only letters, digits, '-', '_' and '.'",
        );
    }
    Ok(())
}

/// Label values may be empty; otherwise they follow the label name rules.
fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(SelectorError::Value(value.to_string()))
    }
}

fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL_NAME
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LABEL_PREFIX
        && text.split('.').all(|part| {
            let bytes = part.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_LABEL_NAME
                && is_lower_alnum(bytes[0])
                && is_lower_alnum(bytes[bytes.len() - 1])
                && bytes.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        })
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

// === impl NodeUniverse ===

/// What is known about the cluster's nodes when deciding whether two node selections overlap.
///
/// Rules such as "peers on the same node share one router ID" only bind selections that can
/// pick a common node. With Node objects at hand the answer is exact for those nodes (as
/// MetalLB's webhook computes it); without them a pair is assumed to overlap unless the selector
/// terms contradict each other (`zone: a` against `zone: b`), which no node can ever satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeUniverse {
    /// No Node objects: any node might exist.
    Unknown,
    /// The labels of every known node.
    Known(Vec<Labels>),
}

impl NodeUniverse {
    /// `Known` when the resources hold at least one Node, `Unknown` otherwise.
    pub fn from_nodes(nodes: &[Node]) -> NodeUniverse {
        if nodes.is_empty() {
            return NodeUniverse::Unknown;
        }
        NodeUniverse::Known(
            nodes
                .iter()
                .map(|n| n.metadata.labels.clone().unwrap_or_default())
                .collect(),
        )
    }

    /// Whether some node can be selected by both selector lists (an empty list selects every
    /// node).
    pub fn may_share_node(&self, a: &[LabelSelector], b: &[LabelSelector]) -> bool {
        match self {
            NodeUniverse::Known(nodes) => nodes
                .iter()
                .any(|labels| any_matches(a, labels) && any_matches(b, labels)),
            NodeUniverse::Unknown => {
                let everything = [LabelSelector::default()];
                let a = if a.is_empty() { &everything[..] } else { a };
                let b = if b.is_empty() { &everything[..] } else { b };
                a.iter().any(|sa| b.iter().any(|sb| satisfiable(&[sa, sb])))
            }
        }
    }
}

/// Whether some set of labels satisfies every selector at once. Each label key is judged on its
/// own: label values are arbitrary strings, so only `In`/`matchLabels` sets that exclude each
/// other, or `Exists` against `DoesNotExist`, make the conjunction impossible.
fn satisfiable(selectors: &[&LabelSelector]) -> bool {
    #[derive(Default)]
    struct KeyConstraint<'a> {
        allowed: Option<BTreeSet<&'a str>>,
        forbidden: BTreeSet<&'a str>,
        must_exist: bool,
        must_not_exist: bool,
    }
    impl<'a> KeyConstraint<'a> {
        fn allow_only(&mut self, values: impl IntoIterator<Item = &'a str>) {
            let values: BTreeSet<&str> = values.into_iter().collect();
            self.allowed = Some(match self.allowed.take() {
                Some(current) => current.intersection(&values).copied().collect(),
                None => values,
            });
            self.must_exist = true;
        }
    }

    let mut keys: BTreeMap<&str, KeyConstraint<'_>> = BTreeMap::new();
    for selector in selectors {
        for (key, value) in &selector.match_labels {
            keys.entry(key).or_default().allow_only([value.as_str()]);
        }
        for requirement in &selector.match_expressions {
            let constraint = keys.entry(&requirement.key).or_default();
            let values = requirement.values.iter().map(String::as_str);
            match requirement.operator {
                Operator::In => constraint.allow_only(values),
                Operator::NotIn => constraint.forbidden.extend(values),
                Operator::Exists => constraint.must_exist = true,
                Operator::DoesNotExist => constraint.must_not_exist = true,
            }
        }
    }
    keys.values().all(|c| {
        !(c.must_exist && c.must_not_exist)
            && c.allowed
                .as_ref()
                .is_none_or(|allowed| !allowed.is_subset(&c.forbidden))
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn api(
        labels: &[(&str, &str)],
        expressions: Vec<LabelSelectorRequirement>,
    ) -> ApiLabelSelector {
        ApiLabelSelector {
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        }
    }

    fn core(labels: &[(&str, &str)], expressions: Vec<LabelSelectorRequirement>) -> LabelSelector {
        convert(&api(labels, expressions)).unwrap()
    }

    fn errors(selector: ApiLabelSelector) -> Vec<(String, SelectorError)> {
        convert(&selector)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.field, p.error))
            .collect()
    }

    #[test]
    fn converts_labels_and_expressions() {
        let selector = core(
            &[("zone", "a")],
            vec![expression(
                "kubernetes.io/hostname",
                "In",
                &["compute-2", "compute-1"],
            )],
        );
        assert_eq!(selector.match_labels["zone"], "a");
        let requirement = &selector.match_expressions[0];
        assert_eq!(requirement.operator, Operator::In);
        assert_eq!(
            requirement.values.iter().collect::<Vec<_>>(),
            ["compute-1", "compute-2"]
        );
    }

    #[test]
    fn in_and_not_in_need_values() {
        assert_eq!(
            errors(api(&[], vec![expression("a", "In", &[])])),
            [(
                "matchExpressions[0].values".to_string(),
                SelectorError::MissingValues("In")
            )]
        );
        assert_eq!(
            errors(api(&[], vec![expression("a", "NotIn", &[])])),
            [(
                "matchExpressions[0].values".to_string(),
                SelectorError::MissingValues("NotIn")
            )]
        );
    }

    #[test]
    fn exists_and_does_not_exist_take_no_values() {
        assert_eq!(
            errors(api(&[], vec![expression("a", "Exists", &["x"])])),
            [(
                "matchExpressions[0].values".to_string(),
                SelectorError::UnexpectedValues("Exists")
            )]
        );
        assert!(convert(&api(&[], vec![expression("a", "DoesNotExist", &[])])).is_ok());
    }

    #[test]
    fn unknown_operator_is_rejected() {
        assert_eq!(
            errors(api(&[], vec![expression("a", "Equals", &["x"])])),
            [(
                "matchExpressions[0].operator".to_string(),
                SelectorError::UnknownOperator("Equals".into())
            )]
        );
    }

    #[test]
    fn label_syntax_is_checked() {
        assert!(convert(&api(&[("example.com/zone", "a-1")], vec![])).is_ok());
        assert!(convert(&api(&[("zone", "")], vec![])).is_ok());
        for bad_key in [
            "",
            "-zone",
            "Example.com/zone",
            "a/b/c",
            "/zone",
            "x".repeat(64).as_str(),
        ] {
            let found = errors(api(&[(bad_key, "a")], vec![]));
            assert!(
                matches!(found[0].1, SelectorError::Key { .. }),
                "{bad_key:?}: {found:?}"
            );
        }
        let found = errors(api(&[("zone", "a b")], vec![]));
        assert_eq!(
            found,
            [(
                "matchLabels.zone".to_string(),
                SelectorError::Value("a b".into())
            )]
        );
    }

    #[test]
    fn duplicates_inside_a_selector_are_rejected() {
        let found = errors(api(&[], vec![expression("a", "In", &["x", "x"])]));
        assert_eq!(found[0].1, SelectorError::DuplicateValue("x".into()));
        let found = errors(api(
            &[],
            vec![
                expression("a", "Exists", &[]),
                expression("a", "Exists", &[]),
            ],
        ));
        assert_eq!(
            found,
            [(
                "matchExpressions[1]".to_string(),
                SelectorError::DuplicateExpression(0)
            )]
        );
    }

    #[test]
    fn duplicate_selectors_in_a_list_are_reported_with_their_index() {
        let object = ObjectRef::new("BGPPeer", "p");
        let mut problems = Problems::default();
        let list = [
            api(&[("a", "1")], vec![]),
            api(&[("b", "1")], vec![]),
            api(&[("a", "1")], vec![]),
        ];
        let converted = convert_list(&object, "spec.nodeSelectors", &list, &mut problems);
        assert_eq!(converted.len(), 2);
        let errors = problems.into_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "BGPPeer/p: spec.nodeSelectors[2]: duplicate definition of nodeSelectors: same selector as nodeSelectors[0]"
        );
    }

    #[test]
    fn unknown_nodes_overlap_unless_labels_contradict() {
        let nodes = NodeUniverse::Unknown;
        // Each list is one selector, unless built with `[..].concat()`.
        let zone_a = [core(&[("zone", "a")], vec![])];
        let zone_b = [core(&[("zone", "b")], vec![])];
        let rack_1 = [core(&[("rack", "1")], vec![])];
        assert!(nodes.may_share_node(&[], &zone_a));
        assert!(nodes.may_share_node(&zone_a, &rack_1));
        assert!(!nodes.may_share_node(&zone_a, &zone_b));
        assert!(nodes.may_share_node(&zone_a, &[zone_b.clone(), rack_1].concat()));
        let not_a = [core(&[], vec![expression("zone", "NotIn", &["a"])])];
        assert!(!nodes.may_share_node(&zone_a, &not_a));
        assert!(nodes.may_share_node(&zone_b, &not_a));
        let no_zone = [core(&[], vec![expression("zone", "DoesNotExist", &[])])];
        assert!(!nodes.may_share_node(&zone_a, &no_zone));
        let in_ab = [core(&[], vec![expression("zone", "In", &["a", "b"])])];
        let in_bc = [core(&[], vec![expression("zone", "In", &["b", "c"])])];
        assert!(nodes.may_share_node(&in_ab, &in_bc));
    }

    #[test]
    fn known_nodes_decide_overlap_exactly() {
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let nodes = NodeUniverse::Known(vec![labels(&[("zone", "a")]), labels(&[("rack", "1")])]);
        let zone_a = [core(&[("zone", "a")], vec![])];
        let rack_1 = [core(&[("rack", "1")], vec![])];
        assert!(!nodes.may_share_node(&zone_a, &rack_1));
        assert!(nodes.may_share_node(&zone_a, &[]));
        assert!(!NodeUniverse::Known(vec![]).may_share_node(&[], &[]));
    }
}
