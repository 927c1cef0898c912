//! Maps a key path inside a TOML document (`run.on_finish`, `volumes[1].name`) to a line and column.
//!
//! Errors are found at different stages — the TOML parser, serde, `serde_ignored`, validation —
//! and each knows a different thing (a byte span or a key path). Resolving paths against the
//! spanned document gives every error the same `file:line:column` form.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a value in the task file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Segment::Key(key.into()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }

    pub fn from_path_to_error(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Enum { variant } => Some(Segment::Key(variant.clone())),
                    S::Unknown => None,
                })
                .collect(),
        )
    }

    pub fn from_ignored(path: &serde_ignored::Path) -> Self {
        fn walk(p: &serde_ignored::Path, out: &mut Vec<Segment>) {
            use serde_ignored::Path as P;
            match p {
                P::Root => {}
                P::Seq { parent, index } => {
                    walk(parent, out);
                    out.push(Segment::Index(*index));
                }
                P::Map { parent, key } => {
                    walk(parent, out);
                    out.push(Segment::Key(key.clone()));
                }
                P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                    walk(parent, out)
                }
            }
        }
        let mut out = Vec::new();
        walk(path, &mut out);
        KeyPath(out)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Finds the byte span of the deepest part of `path` present in `doc`: the key itself when the
/// path ends at a key (so an unknown key points at its name), else the value.
pub fn span_of(doc: &Spanned<DeTable<'_>>, path: &KeyPath) -> Option<Range<usize>> {
    let mut best = None;
    let mut table: Option<&DeTable> = Some(doc.get_ref());
    let mut array: Option<&toml::de::DeArray> = None;
    for seg in &path.0 {
        let value = match (seg, table, array) {
            (Segment::Key(k), Some(t), _) => {
                let (key, value) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                best = Some(key.span());
                value
            }
            (Segment::Index(i), _, Some(a)) => {
                let value = a.get(*i)?;
                best = Some(value.span());
                value
            }
            _ => break,
        };
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    best
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_array_items() {
        let text = "name = \"x\"\n[run]\non_finish = \"never\"\n[[volumes]]\nname = \"a\"\n[[volumes]]\nname = \"b\"\n";
        let doc = DeTable::parse(text).unwrap();
        let span = span_of(&doc, &KeyPath::default().key("run").key("on_finish")).unwrap();
        assert_eq!(line_col(text, span.start), (3, 1));
        let span = span_of(&doc, &KeyPath::default().key("volumes").index(1).key("name")).unwrap();
        assert_eq!(line_col(text, span.start), (7, 1));
        assert_eq!(
            KeyPath::default().key("volumes").index(1).key("name").to_string(),
            "volumes[1].name"
        );
    }
}
