//! Text from outside (a peer, a client, a URL), cut to a size fit for a
//! log line, an error or a span: whoever sent it chose its length.

/// `text` cut to `max` characters, with `…` after it if it went on.
pub fn clipped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::clipped;

    #[test]
    fn text_is_cut_at_a_character_not_a_byte() {
        assert_eq!(clipped("/cart", 256), "/cart");
        let long = "é".repeat(300);
        let cut = clipped(&long, 256);
        assert_eq!(cut.chars().count(), 257);
        assert!(cut.ends_with("é…"), "{cut}");
    }
}
