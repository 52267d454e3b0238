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
    /// The problem is an object this one refers to that does not exist yet (or not in the
    /// needed shape); see [`ConfigError::awaits_object`].
    awaits: bool,
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
            awaits: false,
        }
    }

    /// A problem that only an object still to come can solve: a BGPPeer's password Secret that
    /// is missing or malformed, a BFDProfile it names, a community alias an advertisement uses.
    pub fn awaiting(
        kind: impl Into<String>,
        name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            awaits: true,
            ..ConfigError::new(kind, name, field, message)
        }
    }

    /// True when the problem is that a referenced object is missing (or not yet as needed)
    /// and may still be created. The admission webhook admits such an object, since objects
    /// arrive in any order; the controller and the speaker treat it as an error of this object
    /// only (it is left out, the rest of the configuration keeps working); `metallb validate`
    /// reports it as an error and says the webhook would let it through.
    pub fn awaits_object(&self) -> bool {
        self.awaits
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
