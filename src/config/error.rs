//! The one error type every validation step reports: which object, which field, what is wrong.

use std::fmt;

/// A problem with one field of one object, worded for an admin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigError {
    /// Kind of the object, e.g. `IPAddressPool`.
    pub kind: String,
    /// Name of the object.
    pub name: String,
    /// Field path, e.g. `spec.addresses[1]`; empty when the problem is the object as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem with `field` of `kind/name`.
    pub fn new(
        kind: impl Into<String>,
        name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            kind: kind.into(),
            name: name.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    /// `Kind/name: field: message`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}/{}: {}", self.kind, self.name, self.message)
        } else {
            write!(
                f,
                "{}/{}: {}: {}",
                self.kind, self.name, self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}
