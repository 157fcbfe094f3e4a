//! Splitting text to WeCom's byte limits where a reader would: between paragraphs, lines or
//! sentences, never inside a character. The limits themselves are [`super::TEXT_LIMIT_BYTES`]
//! (a text message) and [`super::aibot_json::STREAM_LIMIT_BYTES`] (an AI-bot stream).

/// Characters that end a sentence; a part may end right after one (and the closing quotes or
/// brackets that follow it).
const SENTENCE_ENDS: &[char] = &['。', '！', '？', '!', '?', '；', ';', '…'];
/// Characters after which a sentence pauses; the last resort before cutting between characters.
const PAUSES: &[char] = &['，', ',', '、', '：', ':', ' ', '\t'];
/// Closing marks that stay with the sentence they close.
const CLOSERS: &[char] = &['”', '’', '」', '』', '）', ')', '】', '》'];

/// Splits `text` into parts of at most `limit_bytes` bytes. A part ends, in order of preference:
/// after a blank line in its second half, after its last line break, after its last sentence
/// end, after its last pause (comma, colon, space), and only when it has none of these between
/// two characters. Concatenating the parts gives back `text`; empty text gives no parts.
/// `limit_bytes` below 4 is raised to 4 so that every character fits.
#[must_use]
pub fn split_text(text: &str, limit_bytes: usize) -> Vec<String> {
    let limit = limit_bytes.max(4);
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > limit {
        let cut = cut_point(rest, limit);
        let (part, tail) = rest.split_at(cut);
        parts.push(part.to_owned());
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

/// Where to end the part that starts `rest` (longer than `limit`): a byte offset in `1..=limit`
/// on a character boundary.
fn cut_point(rest: &str, limit: usize) -> usize {
    let mut end = limit;
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    let window = &rest[..end];
    if let Some(p) = window.rfind("\n\n")
        && p + 2 > end / 2
    {
        return p + 2;
    }
    if let Some(p) = window.rfind('\n')
        && p > 0
    {
        return p + 1;
    }
    if let Some(after) = last_after(window, SENTENCE_ENDS) {
        // Closing quotes and brackets right after the sentence end stay with it.
        let closed = window[after..]
            .char_indices()
            .find(|(_, c)| !CLOSERS.contains(c))
            .map_or(window.len(), |(i, _)| after + i);
        return closed;
    }
    last_after(window, PAUSES).unwrap_or(end)
}

/// The offset just after the last of `marks` in `window`.
fn last_after(window: &str, marks: &[char]) -> Option<usize> {
    window
        .char_indices()
        .rev()
        .find(|(_, c)| marks.contains(c))
        .map(|(i, c)| i + c.len_utf8())
}

/// The parts of `text` to send as separate messages: [`split_text`] without the line breaks at
/// the seams (a message does not start or end with an empty line) and without blank parts.
#[must_use]
pub fn message_parts(text: &str, limit_bytes: usize) -> Vec<String> {
    split_text(text, limit_bytes)
        .into_iter()
        .map(|part| part.trim_matches('\n').to_owned())
        .filter(|part| !part.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_part_and_empty_is_none() {
        assert_eq!(split_text("你好", 2048), vec!["你好"]);
        assert!(split_text("", 2048).is_empty());
    }

    #[test]
    fn split_never_cuts_a_character() {
        let text = "汉".repeat(1000); // 3000 bytes, no boundary at all
        let parts = split_text(&text, 2048);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 2046);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_prefers_a_blank_line_then_a_line_then_a_sentence() {
        let text = format!(
            "{}\n\n{}\n{}",
            "a".repeat(1500),
            "b".repeat(400),
            "c".repeat(1000)
        );
        let parts = split_text(&text, 2048);
        assert_eq!(parts[0], format!("{}\n\n", "a".repeat(1500)));

        let text = format!("{}\n{}", "a".repeat(10), "b".repeat(3000));
        assert_eq!(split_text(&text, 2048)[0], format!("{}\n", "a".repeat(10)));

        let text = format!(
            "{}。{}，{}",
            "一".repeat(300),
            "二".repeat(300),
            "三".repeat(300)
        );
        let parts = split_text(&text, 2048);
        assert_eq!(parts[0], format!("{}。", "一".repeat(300)));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        let text = format!("他说「{}。」{}", "好".repeat(10), "后".repeat(30));
        let parts = split_text(&text, 60);
        assert!(parts[0].ends_with("。」"), "{parts:?}");
    }

    #[test]
    fn message_parts_drop_the_line_breaks_at_the_seams_and_blank_parts() {
        let text = format!("{}\n\n{}\n", "a".repeat(30), "b".repeat(30));
        assert_eq!(
            message_parts(&text, 40),
            vec!["a".repeat(30), "b".repeat(30)]
        );
        assert!(message_parts("\n\n", 40).is_empty());
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let parts = split_text("😀😀", 1);
        assert_eq!(parts, vec!["😀", "😀"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn split_round_trips_within_limit(
            text in "(\\PC|\n|。|，){0,400}",
            limit in 4usize..64,
        ) {
            let parts = split_text(&text, limit);
            prop_assert_eq!(parts.concat(), text);
            for part in &parts {
                prop_assert!(!part.is_empty());
                prop_assert!(part.len() <= limit);
            }
        }
    }
}
