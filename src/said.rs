//! Text from outside kpo — what a plugin says (a refusal, a warning, a verdict's reason, why its
//! config is wrong), what a pod says (its termination message, its outputs), what the cluster
//! says (events, statuses, an API server's refusal) — is printed on the user's terminal as part
//! of kpo's own lines, and kept in reports and journals. Its source may be hostile or merely
//! careless, so it reaches people bounded and inert: control characters (a terminal escape
//! sequence, a newline that would forge a line of kpo's own) are shown escaped, and a message is
//! cut, saying how long it was. One function does it for every source; the container's log on
//! stdout is not kpo's words and stays byte for byte.

use std::borrow::Cow;

/// The most of one message of a plugin that kpo keeps.
pub const MAX_SAID: usize = 4096;

/// The longest line kpo prints on stderr: its own words and every fragment from outside.
pub const MAX_SHOWN: usize = 16 * 1024;

/// `text` made safe to print: control characters escaped (`\u{1b}`, `\n`), at most
/// [`MAX_SAID`] bytes of it kept. For what a plugin hands back, before kpo keeps it.
pub fn said(text: String) -> String {
    match inert(&text, MAX_SAID) {
        Cow::Borrowed(_) => text,
        Cow::Owned(made) => made,
    }
}

/// A line of kpo's on stderr made safe to print, whatever fragments from a pod, the cluster or a
/// plugin it carries: control characters escaped, at most [`MAX_SHOWN`] bytes.
pub fn shown(line: &str) -> Cow<'_, str> {
    inert(line, MAX_SHOWN)
}

/// `text` with control characters escaped and cut at `max` bytes (on a character), saying how
/// long it was; borrowed when nothing needed doing.
pub fn inert(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.into()
        };
        if out.len() + piece.len() > max {
            out.push_str(&format!("… ({} bytes in all)", text.len()));
            return Cow::Owned(out);
        }
        out.push_str(&piece);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_pass_unchanged() {
        assert_eq!(
            said("container x is privileged".into()),
            "container x is privileged"
        );
    }

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(
            said("\u{1b}[2Jgone\nkpo: task succeeded".into()),
            "\\u{1b}[2Jgone\\nkpo: task succeeded"
        );
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_and_says_so() {
        let long = "é".repeat(MAX_SAID);
        let cut = said(long.clone());
        assert!(cut.len() <= MAX_SAID + 40, "{}", cut.len());
        assert!(
            cut.ends_with(&format!("… ({} bytes in all)", long.len())),
            "{cut}"
        );
        assert!(cut.starts_with("éé"));
    }
}
