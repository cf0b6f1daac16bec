//! Replies as Slack messages: mrkdwn with everything a user or a cog wrote escaped, so no text
//! can become `<!channel>`, `<!here>`, `<!everyone>`, a user ping or a link; and Block Kit
//! (a header, sections, fields and buttons) when the reply has structure. Messages are sent
//! without `link_names` or `parse=full`, so bare `@here` in text stays plain text too.

use serde_json::{Value, json};

use crate::adapters::{cut, escape};
use crate::core::{Button, Reply, Tone};

/// Block Kit's limits (https://api.slack.com/reference/block-kit/blocks).
const MAX_BLOCKS: usize = 50;
const MAX_HEADER: usize = 150;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_BUTTONS: usize = 25;
const MAX_BUTTON_LABEL: usize = 75;
/// The notification text is shown in push notifications and by screen readers; Slack cuts
/// messages past 40,000 characters, and a reply never needs that many.
const MAX_TEXT: usize = 3000;
/// The block that holds buttons, so a press can be told from other actions.
pub const BUTTONS_BLOCK: &str = "cogbox-buttons";

/// A reply in Slack's terms: `text` always (the fallback and notification), `blocks` when the
/// reply has a title, fields or buttons.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub blocks: Option<Vec<Value>>,
    /// Errors are shown only to the member who caused them (ephemeral or response_url).
    pub ephemeral: bool,
}

pub fn render(reply: &Reply) -> Rendered {
    let summary = match &reply.title {
        Some(title) if reply.text.is_empty() => title.clone(),
        Some(title) => format!("{title}: {}", reply.text),
        None => reply.text.clone(),
    };
    let structured = reply.title.is_some() || !reply.fields.is_empty() || !reply.buttons.is_empty();
    Rendered {
        text: escape(&cut(&summary, MAX_TEXT)),
        blocks: structured.then(|| blocks(reply)),
        ephemeral: reply.tone == Tone::Error,
    }
}

fn mrkdwn(text: &str, max: usize) -> Value {
    json!({"type": "mrkdwn", "text": cut_escaped(text, max), "verbatim": true})
}

/// Escapes first and cuts so the escaped text fits: an entity is never split in two.
fn cut_escaped(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let piece = escape(ch.encode_utf8(&mut [0; 4]));
        let len = piece.chars().count();
        if used + len > max - 1 {
            break;
        }
        used += len;
        out.push_str(&piece);
    }
    out.push('…');
    out
}

fn blocks(reply: &Reply) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(title) = &reply.title {
        // plain_text is never parsed for mentions or links: no escaping needed.
        out.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": cut(title, MAX_HEADER), "emoji": true},
        }));
    }
    if !reply.text.is_empty() {
        out.push(json!({"type": "section", "text": mrkdwn(&reply.text, MAX_SECTION_TEXT)}));
    }
    let button_blocks = reply.buttons.len().div_ceil(MAX_BUTTONS);
    let room = MAX_BLOCKS.saturating_sub(out.len() + button_blocks);
    for chunk in reply.fields.chunks(MAX_FIELDS).take(room) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|f| {
                let name = escape(&cut(&f.name, 200));
                let room = MAX_FIELD_TEXT - name.chars().count() - "**\n".len();
                let value = cut_escaped(&f.value, room);
                json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}"), "verbatim": true})
            })
            .collect();
        out.push(json!({"type": "section", "fields": fields}));
    }
    for (row, chunk) in reply.buttons.chunks(MAX_BUTTONS).enumerate() {
        out.push(json!({
            "type": "actions",
            "block_id": format!("{BUTTONS_BLOCK}-{row}"),
            "elements": chunk.iter().enumerate().map(|(i, b)| button(row * MAX_BUTTONS + i, b)).collect::<Vec<_>>(),
        }));
    }
    out
}

/// A button carries its command as its value; the action id only has to be unique.
fn button(index: usize, button: &Button) -> Value {
    json!({
        "type": "button",
        "action_id": format!("cogbox-{index}"),
        "text": {"type": "plain_text", "text": cut(&button.label, MAX_BUTTON_LABEL), "emoji": true},
        "value": button.command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_can_never_ping_or_link() {
        for hostile in [
            "<!channel> hi",
            "<!here>",
            "<!everyone|everyone>",
            "<@U024BE7LH>",
            "<https://evil.example|click me>",
            "<!subteam^S0123|admins>",
            "<!date^1392734382^{date}|x>",
        ] {
            let out = render(
                &Reply::text(hostile)
                    .field(hostile, hostile)
                    .button("b", "/ping"),
            );
            let all = format!(
                "{} {}",
                out.text,
                serde_json::to_string(&out.blocks).unwrap()
            );
            assert!(!all.contains('<'), "{hostile} became {all}");
            assert!(out.text.contains("&lt;"));
        }
        assert_eq!(escape("a & b < c > d"), "a &amp; b &lt; c &gt; d");
        assert_eq!(
            escape("&lt;"),
            "&amp;lt;",
            "an entity typed by a user stays literal"
        );
    }

    #[test]
    fn plain_replies_are_text_and_errors_are_ephemeral() {
        let out = render(&Reply::text("2d6: [3, 4] = 7"));
        assert_eq!(out.text, "2d6: [3, 4] = 7");
        assert_eq!(out.blocks, None);
        assert!(!out.ephemeral);
        assert!(render(&Reply::error("you need to be an admin")).ephemeral);
    }

    #[test]
    fn structure_becomes_a_header_sections_fields_and_buttons() {
        let reply = Reply::text("Type /cogbox help <command>.")
            .title("Commands")
            .field("fun", "/roll - Roll dice")
            .button("Flip again", "/coinflip");
        let out = render(&reply);
        assert_eq!(out.text, "Commands: Type /cogbox help &lt;command&gt;.");
        assert_eq!(
            out.blocks.unwrap(),
            vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": "Commands", "emoji": true}}),
                json!({"type": "section", "text": {"type": "mrkdwn", "text": "Type /cogbox help &lt;command&gt;.", "verbatim": true}}),
                json!({"type": "section", "fields": [{"type": "mrkdwn", "text": "*fun*\n/roll - Roll dice", "verbatim": true}]}),
                json!({"type": "actions", "block_id": "cogbox-buttons-0", "elements": [
                    {"type": "button", "action_id": "cogbox-0", "text": {"type": "plain_text", "text": "Flip again", "emoji": true}, "value": "/coinflip"}]}),
            ]
        );
    }

    #[test]
    fn everything_stays_within_block_kit_limits() {
        let mut reply = Reply::text("<".repeat(5000)).title("T".repeat(200));
        for i in 0..600 {
            reply = reply.field(format!("f{i}"), "&".repeat(2500));
        }
        for i in 0..30 {
            reply = reply.button("L".repeat(100), format!("/b{i}"));
        }
        let out = render(&reply);
        let blocks = out.blocks.unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let len = |v: &Value| v.as_str().unwrap().chars().count();
        assert_eq!(len(&blocks[0]["text"]["text"]), MAX_HEADER);
        let section = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            section.chars().count() <= MAX_SECTION_TEXT && section.ends_with("&lt;…"),
            "entities are never split"
        );
        for block in &blocks {
            for field in block["fields"].as_array().into_iter().flatten() {
                assert!(
                    len(&field["text"]) <= MAX_FIELD_TEXT,
                    "{}",
                    len(&field["text"])
                );
            }
            assert!(
                block["fields"]
                    .as_array()
                    .is_none_or(|f| f.len() <= MAX_FIELDS)
            );
        }
        let actions: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "actions").collect();
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions[0]["elements"].as_array().unwrap().len(),
            MAX_BUTTONS
        );
        assert_eq!(actions[1]["elements"][4]["value"], "/b29");
        assert_eq!(
            len(&actions[0]["elements"][0]["text"]["text"]),
            MAX_BUTTON_LABEL
        );
        assert!(
            out.text.chars().count() <= MAX_TEXT * 4,
            "escaped text stays bounded"
        );
    }
}
