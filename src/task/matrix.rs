//! `[matrix]`: one task file, many tasks. Its lists give their product, less the `exclude` rows
//! (a row leaves out every member it matches), plus the `include` rows (each a whole member);
//! every member is a task of its own, named `<name>-<values>`, its values set as parameters —
//! `((region))` — and as environment variables (`REGION`). A matrix file runs as a batch.

use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};

use super::locate::KeyPath;
use super::params::{Found, is_name};

/// The most members one matrix may have: a batch's worth (`--parallel` decides how many run at
/// once); more is more likely a mistake than a plan.
pub const MAX_MEMBERS: usize = 1000;

/// One member of a matrix: its values, in the order the matrix names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<(String, String)>);

impl Row {
    /// The member's task name: `<name>-<value>-<value>…`, each value lowercased with every run
    /// of characters other than letters and digits made one `-`; when that is longer than a
    /// label value may be (63), its start and a hash of the whole.
    pub fn member_name(&self, task: &str) -> String {
        let mut name = task.to_owned();
        for (_, value) in &self.0 {
            let part = label_safe(value);
            if !part.is_empty() {
                name.push('-');
                name.push_str(&part);
            }
        }
        if name.len() <= 63 {
            return name;
        }
        let hash: String = Sha256::digest(name.as_bytes())
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        let stem = name[..54].trim_end_matches(['-', '_', '.']);
        format!("{stem}-{hash}")
    }

    /// The member's environment variables: each name upper-cased.
    pub fn env(&self) -> impl Iterator<Item = (String, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.to_ascii_uppercase(), value.as_str()))
    }
}

fn label_safe(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The matrix's members, in order (the product, first list slowest, then the `include` rows);
/// `None` when the file has no `[matrix]`.
pub(super) fn rows(doc: &DeTable) -> Result<Option<Vec<Row>>, Found> {
    let at = KeyPath::default().key("matrix");
    let table = match doc.get("matrix").map(|m| m.get_ref()) {
        None => return Ok(None),
        Some(DeValue::Table(t)) => t,
        Some(_) => {
            return Err(vec![(
                at,
                "must be a table of lists: `region = [\"eu\", \"us\"]`".into(),
            )]);
        }
    };
    let mut found = Found::new();
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (key, value) in table {
        let key = key.get_ref().to_string();
        let here = at.clone().key(&key);
        match (key.as_str(), value.get_ref()) {
            ("include", DeValue::Array(items)) => include = tables(items, &here, &mut found),
            ("exclude", DeValue::Array(items)) => exclude = tables(items, &here, &mut found),
            ("include" | "exclude", _) => {
                found.push((here, "must be a list of tables: `[{ region = \"eu\" }]`".into()))
            }
            (_, DeValue::Array(items)) if is_name(&key) => {
                let values: Vec<String> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        scalar(v.get_ref()).or_else(|| {
                            found.push((
                                here.clone().index(i),
                                "a matrix value is a string, an integer or a boolean".into(),
                            ));
                            None
                        })
                    })
                    .collect();
                if values.is_empty() {
                    found.push((here.clone(), "an empty list leaves the matrix no member".into()));
                }
                axes.push((key, values));
            }
            (_, DeValue::Array(_)) => found.push((
                here,
                "a matrix's name is a parameter's: letters, digits and _, not first a digit".into(),
            )),
            _ => found.push((here, "must be a list of values".into())),
        }
    }
    if axes.is_empty() {
        found.push((at.clone(), "has no list to take members from".into()));
    }
    let names: Vec<&str> = axes.iter().map(|(n, _)| n.as_str()).collect();
    for (index, (row, which)) in exclude
        .iter()
        .map(|r| (r, "exclude"))
        .enumerate()
        .chain(include.iter().map(|r| (r, "include")).enumerate())
    {
        for (name, _) in &row.0 {
            if !names.contains(&name.as_str()) {
                found.push((
                    at.clone().key(which).index(index),
                    format!("`{name}` is none of the matrix's lists ({})", names.join(", ")),
                ));
            }
        }
        if which == "include" && row.0.len() != names.len() {
            found.push((
                at.clone().key(which).index(index),
                format!(
                    "an included member gives a value for each of {}",
                    names.join(", ")
                ),
            ));
        }
    }
    if !found.is_empty() {
        return Err(found);
    }
    let mut members: Vec<Row> = vec![Row(Vec::new())];
    for (name, values) in &axes {
        members = members
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |v| {
                    let mut row = row.clone();
                    row.0.push((name.clone(), v.clone()));
                    row
                })
            })
            .collect();
        if members.len() > MAX_MEMBERS {
            break;
        }
    }
    members.retain(|m| !exclude.iter().any(|x| matches(m, x)));
    for row in include {
        let ordered = Row(names
            .iter()
            .filter_map(|n| row.0.iter().find(|(k, _)| k == n).cloned())
            .collect());
        if !members.contains(&ordered) {
            members.push(ordered);
        }
    }
    if members.len() > MAX_MEMBERS {
        return Err(vec![(
            at,
            format!(
                "has {}+ members, more than the limit of {MAX_MEMBERS}",
                members.len()
            ),
        )]);
    }
    if members.is_empty() {
        return Err(vec![(at, "`exclude` leaves the matrix no member".into())]);
    }
    Ok(Some(members))
}

/// Whether `member` has every value of the `exclude` row.
fn matches(member: &Row, row: &Row) -> bool {
    row.0.iter().all(|pair| member.0.contains(pair))
}

fn tables(items: &[toml::Spanned<DeValue<'_>>], at: &KeyPath, found: &mut Found) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let DeValue::Table(t) = item.get_ref() else {
            found.push((
                at.clone().index(i),
                "must be a table: `{ region = \"eu\" }`".into(),
            ));
            continue;
        };
        let mut row = Row(Vec::new());
        for (k, v) in t {
            match scalar(v.get_ref()) {
                Some(value) => row.0.push((k.get_ref().to_string(), value)),
                None => found.push((
                    at.clone().index(i).key(k.get_ref().to_string()),
                    "a matrix value is a string, an integer or a boolean".into(),
                )),
            }
        }
        rows.push(row);
    }
    rows
}

fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str) -> Result<Option<Vec<Row>>, Found> {
        rows(&DeTable::parse(text).unwrap().into_inner())
    }

    fn named(rows: &[Row]) -> Vec<String> {
        rows.iter().map(|r| r.member_name("etl")).collect()
    }

    #[test]
    fn the_product_less_exclude_plus_include() {
        let rows = rows_of(
            "[matrix]\nregion = [\"eu\", \"us\"]\nsize = [1, 2]\nexclude = [{ region = \"us\", size = 2 }]\ninclude = [{ size = 9, region = \"ap-south\" }]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            named(&rows),
            ["etl-eu-1", "etl-eu-2", "etl-us-1", "etl-ap-south-9"]
        );
        assert_eq!(
            rows[3].env().collect::<Vec<_>>(),
            [("REGION".to_owned(), "ap-south"), ("SIZE".to_owned(), "9")]
        );
    }

    #[test]
    fn a_long_name_keeps_its_start_and_a_hash() {
        let row = Row(vec![("path".into(), "s3://Bucket/".to_owned() + &"x".repeat(80))]);
        let name = row.member_name("etl");
        assert!(
            name.len() <= 63 && name.starts_with("etl-s3-bucket-xxx"),
            "{name}"
        );
        assert!(crate::names::check_task_name(&name).is_ok(), "{name}");
    }

    #[test]
    fn mistakes_are_located() {
        let found = rows_of("[matrix]\nregion = []\nexclude = [{ zone = \"a\" }]\n").unwrap_err();
        let keys: Vec<String> = found.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["matrix.region", "matrix.exclude[0]"], "{found:?}");
        let too_many = rows_of(
            "[matrix]\na = [1,2,3,4,5,6,7,8,9,10]\nb = [1,2,3,4,5,6,7,8,9,10]\nc = [1,2,3,4,5,6,7,8,9,10,11]\n",
        );
        assert!(too_many.unwrap_err()[0].1.contains("more than the limit of 1000"));
    }
}
