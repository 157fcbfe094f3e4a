//! Conditions on earlier answers: when a field is asked, when a request is
//! refused, when only guidance is given. Pure and cheap to evaluate.

use serde::Serialize;

use super::value::{Answers, FieldKey, FieldValue};

/// A condition over the answers collected so far. A condition on a field
/// that has no answer yet never holds (except `Always`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Condition {
    Always,
    /// Single choice (or text) equals the value.
    Equals {
        field: FieldKey,
        value: String,
    },
    /// Single choice is one of the values.
    AnyOf {
        field: FieldKey,
        values: Vec<String>,
    },
    /// Multi choice contains the value.
    Contains {
        field: FieldKey,
        value: String,
    },
    /// Yes/no answer is the value.
    Is {
        field: FieldKey,
        value: bool,
    },
    /// Integer (or hours, or whole yuan) is greater than the value.
    GreaterThan {
        field: FieldKey,
        value: i64,
    },
}

impl Condition {
    pub fn holds(&self, answers: &Answers) -> bool {
        let Some(field) = self.field() else {
            return true;
        };
        let Some(answer) = answers.get(field) else {
            return false;
        };
        match (self, answer) {
            (Condition::Equals { value, .. }, FieldValue::Choice(s) | FieldValue::Text(s)) => {
                s == value
            }
            (Condition::AnyOf { values, .. }, FieldValue::Choice(s) | FieldValue::Text(s)) => {
                values.contains(s)
            }
            (Condition::Contains { value, .. }, FieldValue::Choices(list)) => list.contains(value),
            (Condition::Is { value, .. }, FieldValue::Bool(b)) => b == value,
            (Condition::GreaterThan { value, .. }, FieldValue::Integer(n)) => n > value,
            (Condition::GreaterThan { value, .. }, FieldValue::DurationHours(h)) => {
                i64::from(*h) > *value
            }
            (Condition::GreaterThan { value, .. }, FieldValue::Money { cents }) => {
                *cents > value.saturating_mul(100)
            }
            _ => false,
        }
    }

    /// The field the condition looks at, if any.
    pub fn field(&self) -> Option<&FieldKey> {
        match self {
            Condition::Always => None,
            Condition::Equals { field, .. }
            | Condition::AnyOf { field, .. }
            | Condition::Contains { field, .. }
            | Condition::Is { field, .. }
            | Condition::GreaterThan { field, .. } => Some(field),
        }
    }

    /// Chinese rendering for `show`, given the label of the field.
    pub fn describe(&self, label: &str) -> String {
        match self {
            Condition::Always => "总是".to_owned(),
            Condition::Equals { value, .. } => format!("{label} = {value}"),
            Condition::AnyOf { values, .. } => format!("{label} ∈ {}", values.join("/")),
            Condition::Contains { value, .. } => format!("{label} 包含 {value}"),
            Condition::Is { value, .. } => {
                format!("{label} = {}", if *value { "是" } else { "否" })
            }
            Condition::GreaterThan { value, .. } => format!("{label} > {value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> FieldKey {
        FieldKey::parse(s).expect("valid key")
    }

    #[test]
    fn missing_answer_never_holds() {
        let c = Condition::Is {
            field: key("closed"),
            value: true,
        };
        assert!(!c.holds(&Answers::new()));
        assert!(Condition::Always.holds(&Answers::new()));
    }

    #[test]
    fn each_kind_evaluates() {
        let mut a = Answers::new();
        a.insert(key("env"), FieldValue::Choice("联调环境".into()));
        a.insert(key("closed"), FieldValue::Bool(false));
        a.insert(key("n"), FieldValue::Integer(301));
        a.insert(
            key("p"),
            FieldValue::Choices(vec!["淘宝".into(), "京东".into()]),
        );
        assert!(
            Condition::Equals {
                field: key("env"),
                value: "联调环境".into()
            }
            .holds(&a)
        );
        assert!(
            !Condition::Equals {
                field: key("env"),
                value: "正式环境".into()
            }
            .holds(&a)
        );
        assert!(
            Condition::AnyOf {
                field: key("env"),
                values: vec!["x".into(), "联调环境".into()]
            }
            .holds(&a)
        );
        assert!(
            Condition::Is {
                field: key("closed"),
                value: false
            }
            .holds(&a)
        );
        assert!(
            Condition::GreaterThan {
                field: key("n"),
                value: 300
            }
            .holds(&a)
        );
        assert!(
            !Condition::GreaterThan {
                field: key("n"),
                value: 301
            }
            .holds(&a)
        );
        assert!(
            Condition::Contains {
                field: key("p"),
                value: "京东".into()
            }
            .holds(&a)
        );
        // Type mismatch never holds rather than panicking.
        assert!(
            !Condition::Is {
                field: key("env"),
                value: true
            }
            .holds(&a)
        );
    }
}
