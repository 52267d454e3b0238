//! Checks of a `MetalLB` spec that the API schema cannot express, shared by the operator (which
//! reports them in the status) and the admission webhook (which refuses them).

use k8s_openapi::api::core::v1::Toleration;

use crate::api::metallb::MetalLBSpec;

/// One problem: the field path under `spec` and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecProblem {
    /// `spec.…` path.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem of `spec`; empty when it is valid.
pub fn spec_problems(spec: &MetalLBSpec) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    check_tolerations(
        "spec.speakerTolerations",
        spec.speaker_tolerations.as_deref(),
        &mut problems,
    );
    check_tolerations(
        "spec.controllerTolerations",
        spec.controller_tolerations.as_deref(),
        &mut problems,
    );
    if let Some(class) = &spec.load_balancer_class
        && let Err(message) = check_qualified_name(class)
    {
        problems.push(SpecProblem {
            field: "spec.loadBalancerClass".into(),
            message: format!("{class:?}: {message}"),
        });
    }
    problems
}

/// `tolerationSeconds` only means something for NoExecute taints (upstream's webhook rule).
fn check_tolerations(field: &str, tolerations: Option<&[Toleration]>, out: &mut Vec<SpecProblem>) {
    for (i, toleration) in tolerations.unwrap_or_default().iter().enumerate() {
        if toleration.toleration_seconds.is_some()
            && toleration.effect.as_deref() != Some("NoExecute")
        {
            out.push(SpecProblem {
                field: format!("{field}[{i}].effect"),
                message: "must be NoExecute when tolerationSeconds is set".into(),
            });
        }
    }
}

/// A Kubernetes qualified name (`[prefix/]name`, as label keys and Service
/// `loadBalancerClass` values are): the name 1..63 alphanumerics, `-`, `_`, `.`, starting and
/// ending alphanumeric; the optional prefix a DNS subdomain.
fn check_qualified_name(text: &str) -> Result<(), String> {
    let (prefix, name) = match text.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let ends_alnum = |s: &str| s.starts_with(alnum) && s.ends_with(alnum);
    if name.is_empty() || name.len() > 63 {
        return Err("the name part must be 1 to 63 characters".into());
    }
    if !ends_alnum(name) || !name.chars().all(|c| alnum(c) || "-_.".contains(c)) {
        return Err(
            "the name part must consist of alphanumerics, '-', '_' or '.', and start and end \
             with an alphanumeric"
                .into(),
        );
    }
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                ends_alnum(label)
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !valid {
            return Err("the prefix must be a lowercase DNS subdomain".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_class_is_a_qualified_name() {
        for good in ["metallb", "metallb.io/metallb", "a", "my-class_1.x"] {
            assert_eq!(check_qualified_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-x",
            "x-",
            "Metal LB",
            "Example.com/x",
            "a/",
            "/a",
            &"x".repeat(64),
        ] {
            assert!(check_qualified_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn toleration_seconds_need_no_execute() {
        let spec: MetalLBSpec = serde_json::from_value(serde_json::json!({
            "speakerTolerations": [
                {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
                {"key": "b", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}
            ],
            "controllerTolerations": [{"key": "c", "operator": "Exists", "tolerationSeconds": 1}],
            "loadBalancerClass": "no good"
        }))
        .unwrap();
        let fields: Vec<String> = spec_problems(&spec).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "spec.speakerTolerations[1].effect",
                "spec.controllerTolerations[0].effect",
                "spec.loadBalancerClass"
            ]
        );
    }
}
