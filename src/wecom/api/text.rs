//! Splitting text to WeCom's byte limit without cutting a character.

/// Splits `text` into parts of at most `limit_bytes` bytes, never inside a character. A part
/// ends just after a newline when one lies in the last quarter of the chunk, so paragraphs stay
/// whole when possible. Concatenating the parts gives back `text`; empty text gives no parts.
/// `limit_bytes` below 4 is raised to 4 so that every character fits.
#[must_use]
pub fn split_on_char_boundaries(text: &str, limit_bytes: usize) -> Vec<String> {
    let limit = limit_bytes.max(4);
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let window_start = cut - cut / 4;
        if let Some(newline) = rest[..cut].rfind('\n')
            && newline + 1 > window_start
        {
            cut = newline + 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part.to_owned());
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_part_and_empty_is_none() {
        assert_eq!(split_on_char_boundaries("你好", 2048), vec!["你好"]);
        assert!(split_on_char_boundaries("", 2048).is_empty());
    }

    #[test]
    fn split_never_cuts_a_character() {
        let text = "汉".repeat(1000); // 3000 bytes
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 2046);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_prefers_a_newline_near_the_end() {
        let text = format!("{}\n{}", "a".repeat(1800), "b".repeat(1000));
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts[0], format!("{}\n", "a".repeat(1800)));
        assert_eq!(parts[1], "b".repeat(1000));
    }

    #[test]
    fn split_ignores_a_newline_far_from_the_end() {
        let text = format!("{}\n{}", "a".repeat(10), "b".repeat(3000));
        let parts = split_on_char_boundaries(&text, 2048);
        assert_eq!(parts[0].len(), 2048);
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let parts = split_on_char_boundaries("😀😀", 1);
        assert_eq!(parts, vec!["😀", "😀"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn split_round_trips_within_limit(
            text in "(\\PC|\n){0,400}",
            limit in 4usize..64,
        ) {
            let parts = split_on_char_boundaries(&text, limit);
            prop_assert_eq!(parts.concat(), text);
            for part in &parts {
                prop_assert!(!part.is_empty());
                prop_assert!(part.len() <= limit);
                prop_assert!(std::str::from_utf8(part.as_bytes()).is_ok());
            }
        }
    }
}
