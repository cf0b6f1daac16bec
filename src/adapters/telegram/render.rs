//! Replies as Telegram HTML. Everything the user or a cog wrote is escaped, so no text can
//! break the markup or smuggle in a link; only the tags added here are markup.

use crate::adapters::{cut, escape};
use crate::core::{Button, Reply};

/// Telegram's limit on a message's visible text.
const MAX_VISIBLE: usize = 4096;
/// Buttons per keyboard row: three labels still fit a phone's width.
const BUTTONS_PER_ROW: usize = 3;

/// The message text in HTML: a bold title, the text, then each field as a bold name over its
/// value. Pieces are cut (with "…") so the visible text stays within Telegram's limit.
pub fn html(reply: &Reply) -> String {
    let mut budget = MAX_VISIBLE;
    let mut parts = Vec::new();
    let mut take = |text: &str, bold: bool| {
        if budget == 0 || text.is_empty() {
            return;
        }
        let text = cut(text, budget.saturating_sub(1));
        budget = budget.saturating_sub(text.chars().count() + 1);
        let text = escape(&text);
        parts.push(if bold { format!("<b>{text}</b>") } else { text });
    };
    if let Some(title) = &reply.title {
        take(title, true);
    }
    take(&reply.text, false);
    for field in &reply.fields {
        take(&field.name, true);
        take(&field.value, false);
    }
    parts.join("\n")
}

/// Buttons in rows, for an inline keyboard.
pub fn button_rows(buttons: &[Button]) -> Vec<&[Button]> {
    buttons.chunks(BUTTONS_PER_ROW).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_become_markup() {
        let reply = Reply::text("<a href=\"https://evil\">click</a> & <b>")
            .title("Tom & <Jerry>")
            .field("<i>name</i>", "1 < 2");
        assert_eq!(
            html(&reply),
            "<b>Tom &amp; &lt;Jerry&gt;</b>\n\
             &lt;a href=\"https://evil\"&gt;click&lt;/a&gt; &amp; &lt;b&gt;\n\
             <b>&lt;i&gt;name&lt;/i&gt;</b>\n\
             1 &lt; 2"
        );
    }

    #[test]
    fn long_replies_are_cut_to_telegrams_limit() {
        let reply = Reply::text("x".repeat(5000)).field("after", "dropped");
        let text = html(&reply);
        assert_eq!(text.chars().count(), 4095);
        assert!(text.ends_with('…'));
        let escaped = html(&Reply::text("<".repeat(5000)));
        assert_eq!(
            escaped.matches("&lt;").count(),
            4094,
            "the limit counts visible characters"
        );
    }

    #[test]
    fn buttons_fill_rows_of_three() {
        let reply = (0..7).fold(Reply::text("t"), |r, i| r.button(format!("b{i}"), "/ping"));
        let rows: Vec<usize> = button_rows(&reply.buttons)
            .iter()
            .map(|r| r.len())
            .collect();
        assert_eq!(rows, [3, 3, 1]);
    }
}
