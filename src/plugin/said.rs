//! What a plugin says — a refusal, a warning, a verdict's reason, why its config is wrong — is
//! printed on the user's terminal, kept in the report and the journal. A plugin may be hostile
//! or merely careless, so its words reach people bounded and inert: control characters (a
//! terminal escape sequence, a newline that would forge a line of kpo's own) are shown escaped,
//! and a message is cut at [`MAX_SAID`] bytes, saying how long it was.

/// The most of one message of a plugin that kpo keeps.
pub const MAX_SAID: usize = 4096;

/// `text` made safe to print: control characters escaped (`\u{1b}`, `\n`), at most
/// [`MAX_SAID`] bytes of it kept.
pub fn said(text: String) -> String {
    if text.len() <= MAX_SAID && !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::new();
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.into()
        };
        if out.len() + piece.len() > MAX_SAID {
            out.push_str(&format!("… ({} bytes in all)", text.len()));
            return out;
        }
        out.push_str(&piece);
    }
    out
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
