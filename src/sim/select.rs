//! Field and label selectors (`fieldSelector=metadata.name=x`, `labelSelector=a=b,!c`), matched
//! against any object through its JSON form, as the API server does for the fields it indexes.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Selector {
    fields: Vec<Requirement>,
    labels: Vec<Requirement>,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Eq(String),
    Ne(String),
    Exists,
    NotExists,
}

impl Selector {
    pub fn from_params(params: &HashMap<String, String>) -> Result<Self, String> {
        let parse = |name: &str| params.get(name).map_or(Ok(Vec::new()), |s| parse(s));
        Ok(Self {
            fields: parse("fieldSelector")?,
            labels: parse("labelSelector")?,
        })
    }

    pub fn matches(&self, object: &impl Serialize) -> bool {
        if self.fields.is_empty() && self.labels.is_empty() {
            return true;
        }
        let json = serde_json::to_value(object).unwrap_or(Value::Null);
        let field = |path: &str| {
            path.split('.')
                .try_fold(&json, |v, k| v.get(k))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
        };
        let label = |key: &str| {
            json["metadata"]["labels"]
                .get(key)
                .and_then(Value::as_str)
                .map(String::from)
        };
        self.fields.iter().all(|r| r.holds(field(&r.key)))
            && self.labels.iter().all(|r| r.holds(label(&r.key)))
    }
}

impl Requirement {
    fn holds(&self, actual: Option<String>) -> bool {
        match &self.op {
            // A field selector on an absent field compares with the empty string.
            Op::Eq(v) => actual.as_deref().unwrap_or("") == v,
            Op::Ne(v) => actual.as_deref().unwrap_or("") != v,
            Op::Exists => actual.is_some(),
            Op::NotExists => actual.is_none(),
        }
    }
}

fn parse(text: &str) -> Result<Vec<Requirement>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|term| {
            let term = term.trim();
            let (key, op) = if let Some((k, v)) = term.split_once("!=") {
                (k, Op::Ne(v.to_owned()))
            } else if let Some((k, v)) = term.split_once("==") {
                (k, Op::Eq(v.to_owned()))
            } else if let Some((k, v)) = term.split_once('=') {
                (k, Op::Eq(v.to_owned()))
            } else if let Some(k) = term.strip_prefix('!') {
                (k, Op::NotExists)
            } else {
                (term, Op::Exists)
            };
            if key.is_empty() {
                return Err(format!("invalid selector: {text:?}"));
            }
            Ok(Requirement {
                key: key.trim().to_owned(),
                op,
            })
        })
        .collect()
}
