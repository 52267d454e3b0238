//! What every validation step reports into: the object a problem is about ([`ObjectRef`]), the
//! list of problems found so far ([`Problems`]), and the duplicate-name rule every kind shares
//! ([`unique_by_name`]). The per-kind modules and [`super::build`] depend on this module, never
//! the other way round.

use std::{cmp::Ordering, collections::HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ConfigError;

/// Name shown for an object without `metadata.name`.
const UNNAMED: &str = "<unnamed>";

// === impl ObjectRef ===

/// The object a problem is about: its kind and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectRef {
    /// Kind, e.g. `IPAddressPool`.
    pub kind: &'static str,
    /// Name, or `<unnamed>`.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `kind/name`.
    pub fn new(kind: &'static str, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            name: name.into(),
        }
    }

    /// A reference to an object by its metadata.
    pub fn of(kind: &'static str, metadata: &ObjectMeta) -> ObjectRef {
        ObjectRef::new(
            kind,
            metadata
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(UNNAMED),
        )
    }
}

impl std::fmt::Display for ObjectRef {
    /// `Kind/name`, the form used in advertisement `source`s and messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

// === impl Problems ===

/// Every problem found so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Problems(Vec<ConfigError>);

impl Problems {
    /// Records a problem with `field` of `object`.
    pub fn add(
        &mut self,
        object: &ObjectRef,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0
            .push(ConfigError::new(object.kind, &object.name, field, message));
    }

    /// Records a problem that an object still to come can solve
    /// ([`ConfigError::awaits_object`]).
    pub fn add_awaiting(
        &mut self,
        object: &ObjectRef,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigError::awaiting(
            object.kind,
            &object.name,
            field,
            message,
        ));
    }

    /// Records problems found elsewhere (Secrets, decoding).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = ConfigError>) {
        self.0.extend(errors);
    }

    /// How many problems have been recorded; comparing counts tells whether a step found any.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems sorted by kind, name, field (numbers in numeric order) and message, without
    /// duplicates.
    pub fn into_errors(self) -> Vec<ConfigError> {
        let mut errors = self.0;
        errors.sort_by(compare_errors);
        errors.dedup();
        errors
    }
}

fn compare_errors(a: &ConfigError, b: &ConfigError) -> Ordering {
    a.kind
        .cmp(&b.kind)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| compare_natural(&a.field, &b.field))
        .then_with(|| a.message.cmp(&b.message))
}

/// Compares text with digit runs taken as numbers, so `addresses[2]` sorts before
/// `addresses[10]`.
fn compare_natural(a: &str, b: &str) -> Ordering {
    fn chunks(text: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &text[start..i]));
                start = i;
            }
        }
        out
    }
    let (left, right) = (chunks(a), chunks(b));
    for ((left_digits, l), (right_digits, r)) in left.iter().zip(right.iter()) {
        let order = if *left_digits && *right_digits {
            let (l_trim, r_trim) = (l.trim_start_matches('0'), r.trim_start_matches('0'));
            l_trim
                .len()
                .cmp(&r_trim.len())
                .then_with(|| l_trim.cmp(r_trim))
                .then_with(|| l.cmp(r))
        } else {
            l.cmp(r)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// Keeps the first object of each name among `objects` (in the order given), reporting objects
/// without a name and every later object with a name already taken (`duplicate definition of
/// <noun> "<name>"`). Kinds that share one name space, such as the two pool kinds, are passed
/// together.
pub(crate) fn unique_by_name<'a, T>(
    objects: impl IntoIterator<Item = (&'static str, &'a ObjectMeta, T)>,
    noun: &str,
    problems: &mut Problems,
) -> Vec<(ObjectRef, T)> {
    // Borrowed names in a hash map: the webhook runs this over thousands of objects per
    // admission, and copying each name into an ordered map was a tenth of its time.
    let objects = objects.into_iter();
    let mut first_kind: HashMap<&'a str, &'static str> =
        HashMap::with_capacity(objects.size_hint().0);
    let mut unique = Vec::with_capacity(objects.size_hint().0);
    for (kind, metadata, object) in objects {
        let reference = ObjectRef::of(kind, metadata);
        let Some(name) = metadata.name.as_deref().filter(|n| !n.is_empty()) else {
            problems.add(
                &reference,
                "metadata.name",
                format!("missing name: every {kind} needs a name"),
            );
            continue;
        };
        if let Some(earlier) = first_kind.get(name) {
            let also = if *earlier == kind {
                String::new()
            } else {
                format!(" (already used by an {earlier})")
            };
            problems.add(
                &reference,
                "metadata.name",
                format!("duplicate definition of {noun} {:?}{also}", reference.name),
            );
            continue;
        }
        first_kind.insert(name, kind);
        unique.push((reference, object));
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_sort_by_kind_name_and_numeric_field() {
        let mut problems = Problems::default();
        let pool = ObjectRef::new("IPAddressPool", "b");
        problems.add(&pool, "spec.addresses[10]", "x");
        problems.add(&pool, "spec.addresses[2]", "x");
        problems.add(&pool, "spec.addresses[2]", "x");
        problems.add(&ObjectRef::new("IPAddressPool", "a"), "spec", "x");
        problems.add(&ObjectRef::new("BGPPeer", "z"), "spec", "x");
        let fields: Vec<String> = problems
            .into_errors()
            .iter()
            .map(|e| format!("{}/{} {}", e.kind, e.name, e.field))
            .collect();
        assert_eq!(
            fields,
            [
                "BGPPeer/z spec",
                "IPAddressPool/a spec",
                "IPAddressPool/b spec.addresses[2]",
                "IPAddressPool/b spec.addresses[10]"
            ]
        );
    }
}
