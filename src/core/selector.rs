//! Kubernetes label selectors, evaluated without Kubernetes.

use std::collections::{BTreeMap, BTreeSet};

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// How a requirement compares a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// The label exists and its value is one of the values.
    In,
    /// The label is missing or its value is none of the values.
    NotIn,
    /// The label exists.
    Exists,
    /// The label is missing.
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Comparison.
    pub operator: Operator,
    /// Values for `In` and `NotIn`.
    pub values: BTreeSet<String>,
}

/// A label selector: every `match_labels` pair and every requirement must hold. An empty
/// selector selects everything, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSelector {
    /// Exact key/value pairs.
    pub match_labels: Labels,
    /// Set-based requirements.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether the selector selects an object with these labels.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Whether it has no terms, and so selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

impl Requirement {
    /// Whether the labels satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// Whether any selector of a list selects the labels; an empty list selects everything. This is
/// how MetalLB reads `nodeSelectors`, `serviceSelectors` and pool selectors.
pub fn any_matches(selectors: &[LabelSelector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn match_labels_and_expressions_all_apply() {
        let sel = LabelSelector {
            match_labels: labels(&[("zone", "a")]),
            match_expressions: vec![req(
                "kubernetes.io/hostname",
                Operator::In,
                &["compute-1.example.com", "compute-2.example.com"],
            )],
        };
        assert!(sel.matches(&labels(&[
            ("zone", "a"),
            ("kubernetes.io/hostname", "compute-1.example.com")
        ])));
        assert!(!sel.matches(&labels(&[
            ("zone", "b"),
            ("kubernetes.io/hostname", "compute-1.example.com")
        ])));
        assert!(!sel.matches(&labels(&[
            ("zone", "a"),
            ("kubernetes.io/hostname", "compute-3.example.com")
        ])));
    }

    #[test]
    fn operators_follow_kubernetes() {
        let l = labels(&[("a", "1")]);
        assert!(req("a", Operator::Exists, &[]).matches(&l));
        assert!(!req("b", Operator::Exists, &[]).matches(&l));
        assert!(req("b", Operator::DoesNotExist, &[]).matches(&l));
        assert!(req("b", Operator::NotIn, &["1"]).matches(&l));
        assert!(!req("a", Operator::NotIn, &["1"]).matches(&l));
        assert!(!req("b", Operator::In, &["1"]).matches(&l));
    }

    #[test]
    fn empty_selectors_select_everything() {
        assert!(LabelSelector::default().matches(&Labels::new()));
        assert!(any_matches(&[], &Labels::new()));
        let only_a = LabelSelector {
            match_labels: labels(&[("a", "1")]),
            ..Default::default()
        };
        assert!(!any_matches(&[only_a], &Labels::new()));
    }
}
