//! The cluster selector (`run --cluster-selector`): which clusters this
//! operator manages, so that several operators can share one swarm.
//!
//! Without a selector an operator manages every service that carries
//! `aerospike.cluster.replicas` (or labels that try to declare a cluster).
//! With one, it manages only those whose labels also match it:
//!
//! - `LABEL=VALUE`: the service has label `LABEL` with exactly `VALUE`
//!   (`team=` asks for the label with an empty value, as
//!   `docker service create --label team=` sets it);
//! - `LABEL`: the service has label `LABEL`, with any value.
//!
//! A service the selector does not match is, for this operator, exactly an
//! unmanaged service: the resync never queues it, and a pass that reads it
//! (after a service event) forgets it without a write — no status, not
//! even an Error status for invalid `aerospike.cluster.*` labels: they are
//! the business of the operator that selects it. [`managed_spec`] is the
//! one place that decides; the triggers ([`super::watch`]) and the
//! reconciler ([`super::reconcile`]) both ask it.
//!
//! The label must be one of the user's own: a spec label
//! (`aerospike.cluster.*`, or what the spec parser takes for a misspelling
//! of one) or a status label (`aerospike.status.*`, which the operator
//! writes) is refused.

use std::fmt;
use std::str::FromStr;

use crate::spec::{ClusterSpec, SpecErrors, STATUS_PREFIX};

/// Which services an operator manages: those carrying a label, optionally
/// with one value. Parse one with [`ClusterSelector::parse`] or
/// [`str::parse`]; it displays as it is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterSelector {
    label: String,
    value: Option<String>,
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// `=VALUE`, or nothing but `=`.
    #[error("{text:?} names no label: expected LABEL=VALUE or LABEL, e.g. team=a")]
    EmptyLabel {
        /// The selector as given.
        text: String,
    },
    /// The label has a space, a tab or a newline in it.
    #[error("the label {label:?} contains whitespace: expected LABEL=VALUE or LABEL, e.g. team=a")]
    Whitespace {
        /// The label as given.
        label: String,
    },
    /// The label is one the operator reads or writes itself.
    #[error(
        "the label {label:?} is {what}, not a label of your own: select clusters by a label \
         such as team=a"
    )]
    Reserved {
        /// The label as given.
        label: String,
        /// What it is: part of the spec, or of the status.
        what: &'static str,
    },
}

impl ClusterSelector {
    /// Parses `LABEL=VALUE` or `LABEL`. The empty text is no selector
    /// (`Ok(None)`: every cluster), which is what an unset
    /// `${ASW_CLUSTER_SELECTOR:-}` in a stack file gives. The value is
    /// everything after the first `=`, taken as written.
    pub fn parse(text: &str) -> Result<Option<ClusterSelector>, SelectorError> {
        if text.is_empty() {
            return Ok(None);
        }
        let (label, value) = match text.split_once('=') {
            Some((label, value)) => (label, Some(value)),
            None => (text, None),
        };
        if label.is_empty() {
            return Err(SelectorError::EmptyLabel { text: text.into() });
        }
        if label.contains(char::is_whitespace) {
            return Err(SelectorError::Whitespace {
                label: label.into(),
            });
        }
        if label.starts_with(STATUS_PREFIX) {
            return Err(SelectorError::Reserved {
                label: label.into(),
                what: "a status label (aerospike.status.*, written by the operator)",
            });
        }
        // A label the spec parser reads (or takes for a misspelling of one
        // of its own) would make every selected service an invalid spec.
        let alone = [(label.to_string(), value.unwrap_or_default().to_string())];
        if !matches!(
            ClusterSpec::from_labels(alone.iter().map(|(k, v)| (k, v)), None),
            Ok(None)
        ) {
            return Err(SelectorError::Reserved {
                label: label.into(),
                what: "part of the cluster spec (aerospike.cluster.*)",
            });
        }
        Ok(Some(ClusterSelector {
            label: label.into(),
            value: value.map(str::to_string),
        }))
    }

    /// The label a selected service carries.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The value it must have; `None`: any value.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// Whether a service with these labels is selected.
    pub fn matches<'a, I>(&self, labels: I) -> bool
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        labels.into_iter().any(|(key, value)| {
            *key == self.label && self.value.as_ref().is_none_or(|wanted| wanted == value)
        })
    }
}

impl FromStr for ClusterSelector {
    type Err = SelectorError;

    /// As [`ClusterSelector::parse`], but the empty text is an error.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ClusterSelector::parse(text)?.ok_or_else(|| SelectorError::EmptyLabel { text: text.into() })
    }
}

impl fmt::Display for ClusterSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.label),
            None => f.write_str(&self.label),
        }
    }
}

/// The spec of a service as this operator sees it: `Ok(None)` when the
/// service is not its business — `selector` does not match its labels, or
/// it declares no cluster — otherwise what [`ClusterSpec::from_labels`]
/// says (a spec, or the errors its Error status names).
pub fn managed_spec(
    selector: Option<&ClusterSelector>,
    labels: &std::collections::BTreeMap<String, String>,
    image: Option<&str>,
) -> Result<Option<ClusterSpec>, SpecErrors> {
    if selector.is_some_and(|selector| !selector.matches(labels)) {
        return Ok(None);
    }
    ClusterSpec::from_labels(labels, image)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::spec::label_map as labels;

    fn selector(text: &str) -> ClusterSelector {
        text.parse().unwrap()
    }

    #[test]
    fn parses_label_value_label_alone_and_nothing() {
        let s = selector("team=a");
        assert_eq!((s.label(), s.value()), ("team", Some("a")));
        let s = selector("com.example.team");
        assert_eq!((s.label(), s.value()), ("com.example.team", None));
        // The value is everything after the first `=`, spaces included.
        let s = selector("owner=a=b c");
        assert_eq!((s.label(), s.value()), ("owner", Some("a=b c")));
        // An empty value is a value.
        let s = selector("team=");
        assert_eq!((s.label(), s.value()), ("team", Some("")));
        assert_eq!(ClusterSelector::parse(""), Ok(None));
        assert!("".parse::<ClusterSelector>().is_err());
        for text in ["team=a", "team", "team=", "owner=a=b c"] {
            assert_eq!(selector(text).to_string(), text);
        }
    }

    #[test]
    fn refuses_a_missing_label_whitespace_and_our_own_labels() {
        for text in ["=a", "=", " ", "\t=a"] {
            let error = ClusterSelector::parse(text).unwrap_err();
            assert!(
                matches!(
                    error,
                    SelectorError::EmptyLabel { .. } | SelectorError::Whitespace { .. }
                ),
                "{text:?}: {error:?}"
            );
        }
        assert!(matches!(
            ClusterSelector::parse("=a"),
            Err(SelectorError::EmptyLabel { .. })
        ));
        for text in ["te am=a", " team=a", "team =a", "team\n", "team\t=a"] {
            assert!(
                matches!(
                    ClusterSelector::parse(text),
                    Err(SelectorError::Whitespace { .. })
                ),
                "{text:?}"
            );
        }
        for text in [
            "aerospike.cluster.team=a",
            "aerospike.cluster.replicas",
            "aerospike.cluser.replicas=3",
            "aerospike.status.phase=Ready",
        ] {
            assert!(
                matches!(
                    ClusterSelector::parse(text),
                    Err(SelectorError::Reserved { .. })
                ),
                "{text:?}"
            );
        }
        let error = ClusterSelector::parse("=a").unwrap_err().to_string();
        assert!(error.contains("LABEL=VALUE or LABEL"), "{error}");
        let error = ClusterSelector::parse("te am=a").unwrap_err().to_string();
        assert!(error.contains("\"te am\" contains whitespace"), "{error}");
    }

    #[test]
    fn matches_the_value_or_the_presence() {
        let team_a = selector("team=a");
        assert!(team_a.matches(&labels(&[("team", "a"), ("x", "y")])));
        assert!(!team_a.matches(&labels(&[("team", "b")])));
        assert!(!team_a.matches(&labels(&[("team", "")])));
        assert!(!team_a.matches(&labels(&[("x", "a")])));
        assert!(!team_a.matches(&labels(&[])));
        let any_team = selector("team");
        assert!(any_team.matches(&labels(&[("team", "a")])));
        assert!(any_team.matches(&labels(&[("team", "")])));
        assert!(!any_team.matches(&labels(&[("teams", "a")])));
        let empty_team = selector("team=");
        assert!(empty_team.matches(&labels(&[("team", "")])));
        assert!(!empty_team.matches(&labels(&[("team", "a")])));
    }

    #[test]
    fn an_unselected_service_is_unmanaged_even_with_an_invalid_spec() {
        let team_a = selector("team=a");
        let valid = |team: &str| {
            labels(&[
                ("aerospike.cluster.replicas", "3"),
                ("aerospike.cluster.version", "7.1.0.0"),
                ("team", team),
            ])
        };
        let invalid = labels(&[("aerospike.cluster.replicas", "three"), ("team", "b")]);
        assert!(matches!(
            managed_spec(Some(&team_a), &valid("a"), None),
            Ok(Some(_))
        ));
        assert!(matches!(
            managed_spec(Some(&team_a), &valid("b"), None),
            Ok(None)
        ));
        assert!(matches!(
            managed_spec(Some(&team_a), &invalid, None),
            Ok(None)
        ));
        // Selected, a service still needs a spec to be managed.
        assert!(matches!(
            managed_spec(Some(&team_a), &labels(&[("team", "a")]), None),
            Ok(None)
        ));
        // Without a selector: the spec alone decides.
        assert!(matches!(managed_spec(None, &valid("b"), None), Ok(Some(_))));
        assert!(managed_spec(None, &invalid, None).is_err());
    }
}
