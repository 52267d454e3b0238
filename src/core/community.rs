//! BGP communities: standard (RFC 1997) and large (RFC 8092).

use std::{fmt, str::FromStr};

/// A BGP community value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// `a:b` with 16-bit halves.
    Standard(u16, u16),
    /// `large:a:b:c` with 32-bit parts.
    Large(u32, u32, u32),
}

/// Well-known standard communities (RFC 1997), by the names MetalLB users write.
const WELL_KNOWN: &[(&str, Community)] = &[
    ("NO_EXPORT", Community::Standard(65535, 65281)),
    ("NO_ADVERTISE", Community::Standard(65535, 65282)),
    ("NO_EXPORT_SUBCONFED", Community::Standard(65535, 65283)),
];

/// Why a community string is not a community.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// Not of the form `a:b` or `large:a:b:c`.
    #[error(
        "invalid community {0:?}: expected a:b with 16-bit numbers, large:a:b:c with 32-bit numbers, or NO_EXPORT, NO_ADVERTISE, NO_EXPORT_SUBCONFED"
    )]
    Syntax(String),
    /// A part of a standard community is not a 16-bit number.
    #[error("invalid community {value:?}: {part:?} is not a number from 0 to 65535")]
    Standard16 {
        /// The whole value.
        value: String,
        /// The part that failed.
        part: String,
    },
    /// A part of a large community is not a 32-bit number.
    #[error("invalid large community {value:?}: {part:?} is not a number from 0 to 4294967295")]
    Large32 {
        /// The whole value.
        value: String,
        /// The part that failed.
        part: String,
    },
}

impl Community {
    /// Whether the string looks like a literal community rather than an alias name.
    pub fn looks_literal(text: &str) -> bool {
        text.starts_with("large:")
            || text.contains(':')
            || WELL_KNOWN
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(text))
    }
}

impl FromStr for Community {
    type Err = CommunityError;

    fn from_str(text: &str) -> Result<Community, CommunityError> {
        if let Some((_, c)) = WELL_KNOWN
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            return Ok(*c);
        }
        if let Some(rest) = text.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let [a, b, c] = parts.as_slice() else {
                return Err(CommunityError::Syntax(text.to_string()));
            };
            let parse = |p: &str| {
                p.parse::<u32>().map_err(|_| CommunityError::Large32 {
                    value: text.to_string(),
                    part: p.to_string(),
                })
            };
            return Ok(Community::Large(parse(a)?, parse(b)?, parse(c)?));
        }
        let Some((a, b)) = text.split_once(':') else {
            return Err(CommunityError::Syntax(text.to_string()));
        };
        let parse = |p: &str| {
            p.parse::<u16>().map_err(|_| CommunityError::Standard16 {
                value: text.to_string(),
                part: p.to_string(),
            })
        };
        Ok(Community::Standard(parse(a)?, parse(b)?))
    }
}

impl fmt::Display for Community {
    /// `a:b` or `large:a:b:c`, the form MetalLB resources use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("65535:65282".parse(), Ok(Community::Standard(65535, 65282)));
        assert_eq!(
            "NO_ADVERTISE".parse(),
            Ok(Community::Standard(65535, 65282))
        );
        assert_eq!("no_export".parse(), Ok(Community::Standard(65535, 65281)));
        assert_eq!(
            "large:1:2:4294967295".parse(),
            Ok(Community::Large(1, 2, u32::MAX))
        );
        assert_eq!(Community::Large(1, 2, 3).to_string(), "large:1:2:3");
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        assert!(matches!(
            "65536:1".parse::<Community>(),
            Err(CommunityError::Standard16 { .. })
        ));
        assert!(matches!(
            "1:-1".parse::<Community>(),
            Err(CommunityError::Standard16 { .. })
        ));
        assert!(matches!(
            "large:1:2".parse::<Community>(),
            Err(CommunityError::Syntax(_))
        ));
        assert!(matches!(
            "large:1:2:4294967296".parse::<Community>(),
            Err(CommunityError::Large32 { .. })
        ));
        assert!(matches!(
            "8000".parse::<Community>(),
            Err(CommunityError::Syntax(_))
        ));
    }
}
