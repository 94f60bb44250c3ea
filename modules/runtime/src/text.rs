//! Text from outside (a peer, a client, a URL), cut to a size fit for a
//! log line, an error or a span: whoever sent it chose its length.

/// `text` cut to `max` characters, with `…` after it if it went on.
pub fn clipped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `text` with each control character written as its escape (`\n`,
/// `\u{1b}`): a line break in a client's text (an id in a URL, decoded
/// from `%0A`) would start a line of its own in a text log, saying
/// whatever the client wished.
pub fn without_control_characters(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// `text` (a key, an id) fit for a log line: each guest's session id in
/// it (`guest:` and the id, as the shop names a guest customer) replaced
/// by a short tag of it. The session id is what the guest's browser sends
/// to be that guest: whoever read the logs could have shopped, and moved
/// their orders, as them. The tag still tells one guest's lines from
/// another's; the rest (the checkout's own key) is kept, to find the
/// charge or the order by.
pub fn without_guest_sessions(text: &str) -> String {
    const GUEST: &str = "guest:";
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(GUEST) {
        let (before, after) = rest.split_at(at + GUEST.len());
        shown.push_str(before);
        let id_len = after
            // The characters a session id may have (the frontend takes
            // letters, digits, `-` and `_`).
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        let (id, tail) = after.split_at(id_len);
        if !id.is_empty() {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut hasher);
            shown.push_str(&format!("#{:08x}", hasher.finish() as u32));
        }
        rest = tail;
    }
    shown.push_str(rest);
    shown
}

#[cfg(test)]
mod tests {
    use super::{clipped, without_control_characters, without_guest_sessions};

    #[test]
    fn control_characters_are_written_as_their_escapes() {
        assert_eq!(
            without_control_characters("x\n2026-01-01 ERROR forged\r\u{1b}[31m"),
            "x\\n2026-01-01 ERROR forged\\r\\u{1b}[31m"
        );
        // Other text, quotes and backslashes included, is as it was.
        assert_eq!(without_control_characters("a \"b\" \\ é"), "a \"b\" \\ é");
    }

    #[test]
    fn a_guests_session_id_is_not_logged_but_told_apart() {
        let id = "0b5a8d8e-4a55-4d1c-9a67-7b4a3c2d1e0f";
        let key = format!("42:guest:{id}:k1");
        let shown = without_guest_sessions(&key);
        assert!(!shown.contains(id), "{shown}");
        assert!(
            shown.starts_with("42:guest:#") && shown.ends_with(":k1"),
            "{shown}"
        );
        // The same guest, the same tag; another, another.
        assert_eq!(shown, without_guest_sessions(&key));
        assert_ne!(shown, without_guest_sessions("42:guest:1111:k1"));
        // Any id a browser may send, not only a UUID.
        let chosen = without_guest_sessions("22:guest:x-liveness_Probe:k1");
        assert!(
            !chosen.contains("liveness") && chosen.ends_with(":k1"),
            "{chosen}"
        );
        // A user's key is shown as it is.
        assert_eq!(without_guest_sessions("36:u-1:k1"), "36:u-1:k1");
    }

    #[test]
    fn text_is_cut_at_a_character_not_a_byte() {
        assert_eq!(clipped("/cart", 256), "/cart");
        let long = "é".repeat(300);
        let cut = clipped(&long, 256);
        assert_eq!(cut.chars().count(), 257);
        assert!(cut.ends_with("é…"), "{cut}");
    }
}
