//! A plugin's `config` table, read into the plugin's own type: a misspelt key or a value of the
//! wrong type is an error naming the key, reported when kpo loads the plugin.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The config of a plugin that takes none: any key is an error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct NoConfig {}

/// Reads a config (a JSON object, as kpo passes it) into `T`. Keys `T` does not have are
/// refused — a misspelling must not silently fall back to a default — and a value of the wrong
/// type is named by its key.
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_str(json);
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let watched = serde_ignored::Deserializer::new(&mut de, &mut note);
    let value: T = serde_path_to_error::deserialize(watched).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde_json's place in the text kpo wrote means nothing to the plugin's user.
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        if path == "." {
            format!("the config: {message}")
        } else {
            format!("config key `{path}`: {message}")
        }
    })?;
    match unknown.first() {
        Some(key) => Err(format!("unknown config key `{key}`")),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Limits {
        #[serde(default)]
        allow_root: bool,
        registries: Option<Vec<String>>,
    }

    #[test]
    fn a_config_reads_into_its_type() {
        let c: Limits = parse(r#"{"registries": ["docker.io"]}"#).unwrap();
        assert_eq!(c, Limits { allow_root: false, registries: Some(vec!["docker.io".into()]) });
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        assert_eq!(parse::<Limits>(r#"{"allow_rot": true}"#).unwrap_err(), "unknown config key `allow_rot`");
        assert_eq!(parse::<NoConfig>(r#"{"x": 1}"#).unwrap_err(), "unknown config key `x`");
        assert_eq!(parse::<NoConfig>("{}").unwrap(), NoConfig {});
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_key() {
        let e = parse::<Limits>(r#"{"allow_root": "yes"}"#).unwrap_err();
        assert_eq!(e, "config key `allow_root`: invalid type: string \"yes\", expected a boolean");
        let e = parse::<Limits>(r#"{"registries": [1]}"#).unwrap_err();
        assert!(e.starts_with("config key `registries[0]`: invalid type: integer `1`"), "{e}");
    }
}
