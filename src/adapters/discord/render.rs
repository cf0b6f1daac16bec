//! Replies as Discord messages: an embed (title, fields, colour) when the reply has structure
//! or is an error, plain content otherwise, and buttons as components. Every message the bot
//! sends may ping users but never roles or @everyone, whatever a member typed into it.

use serenity::all::{
    ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    EditInteractionResponse,
};

use crate::adapters::cut;
use crate::core::{Button, Reply, Tone};

/// Discord's blurple, and its red for errors.
const COLOUR: u32 = 0x5865F2;
const ERROR_COLOUR: u32 = 0xED4245;

/// Discord's limits on a message and an embed's parts.
const MAX_CONTENT: usize = 2000;
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 4096;
const MAX_FIELDS: usize = 25;
const MAX_FIELD_NAME: usize = 256;
const MAX_FIELD_VALUE: usize = 1024;
const MAX_EMBED: usize = 6000;
const MAX_LABEL: usize = 80;
const BUTTONS_PER_ROW: usize = 5;
const MAX_ROWS: usize = 5;

/// A reply in Discord's terms, to be put into whichever builder the answer needs.
pub struct Rendered {
    content: Option<String>,
    embed: Option<CreateEmbed>,
    components: Vec<CreateActionRow>,
    /// Errors are shown only to the member who caused them, where Discord allows it.
    ephemeral: bool,
}

pub fn render(reply: &Reply) -> Rendered {
    let error = reply.tone == Tone::Error;
    let structured = reply.title.is_some() || !reply.fields.is_empty();
    let (content, embed) = if structured || error {
        (None, Some(embed(reply)))
    } else {
        (Some(cut(&reply.text, MAX_CONTENT)), None)
    };
    Rendered {
        content,
        embed,
        components: buttons(&reply.buttons),
        ephemeral: error,
    }
}

/// Nobody is pinged by a reply: a mention shows as a name but notifies no one, so
/// `!choose` with 40 members in it cannot ping 40 people, and no text can reach a role or
/// @everyone. Every route (messages, interaction responses, follow-ups) uses this.
fn mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .all_users(false)
        .all_roles(false)
        .everyone(false)
}

impl Rendered {
    pub fn message(self) -> CreateMessage {
        let message = CreateMessage::new()
            .embeds(self.embed.into_iter().collect())
            .components(self.components)
            .allowed_mentions(mentions());
        match self.content {
            Some(content) => message.content(content),
            None => message,
        }
    }

    pub fn response(self) -> CreateInteractionResponseMessage {
        let response = CreateInteractionResponseMessage::new()
            .embeds(self.embed.into_iter().collect())
            .components(self.components)
            .allowed_mentions(mentions())
            .ephemeral(self.ephemeral);
        match self.content {
            Some(content) => response.content(content),
            None => response,
        }
    }

    /// The new content of a pressed message: every part is sent, empty ones too, so that
    /// nothing of the old message (its buttons, an embed) survives.
    pub fn update(self) -> CreateInteractionResponseMessage {
        CreateInteractionResponseMessage::new()
            .content(self.content.unwrap_or_default())
            .embeds(self.embed.into_iter().collect())
            .components(self.components)
            .allowed_mentions(mentions())
    }

    /// A new message after a deferred button press, seen by the presser alone when an error.
    pub fn followup(self) -> CreateInteractionResponseFollowup {
        let followup = CreateInteractionResponseFollowup::new()
            .embeds(self.embed.into_iter().collect())
            .components(self.components)
            .allowed_mentions(mentions())
            .ephemeral(self.ephemeral);
        match self.content {
            Some(content) => followup.content(content),
            None => followup,
        }
    }

    /// For the answer to a deferred interaction, which is public whatever its tone: the
    /// deferral had to be sent before the reply's tone was known, so errors go as a private
    /// follow-up instead.
    pub fn edit(self) -> EditInteractionResponse {
        let edit = EditInteractionResponse::new()
            .embeds(self.embed.into_iter().collect())
            .components(self.components)
            .allowed_mentions(mentions());
        match self.content {
            Some(content) => edit.content(content),
            None => edit,
        }
    }
}

/// Title, text and fields, each cut to Discord's limit and all within the embed's total.
fn embed(reply: &Reply) -> CreateEmbed {
    let mut budget = MAX_EMBED;
    let mut take = |text: &str, max: usize| {
        let text = cut(text, max.min(budget));
        budget -= text.chars().count();
        text
    };
    let colour = if reply.tone == Tone::Error {
        ERROR_COLOUR
    } else {
        COLOUR
    };
    let mut embed = CreateEmbed::new().colour(colour);
    if let Some(title) = &reply.title {
        embed = embed.title(take(title, MAX_TITLE));
    }
    if !reply.text.is_empty() {
        embed = embed.description(take(&reply.text, MAX_DESCRIPTION));
    }
    for field in reply.fields.iter().take(MAX_FIELDS) {
        let name = take(&field.name, MAX_FIELD_NAME);
        let value = take(&field.value, MAX_FIELD_VALUE);
        if name.is_empty() || value.is_empty() {
            break;
        }
        embed = embed.field(name, value, false);
    }
    embed
}

fn buttons(buttons: &[Button]) -> Vec<CreateActionRow> {
    buttons
        .chunks(BUTTONS_PER_ROW)
        .take(MAX_ROWS)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|b| {
                        CreateButton::new(&b.command)
                            .label(cut(&b.label, MAX_LABEL))
                            .style(ButtonStyle::Primary)
                    })
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn json(message: CreateMessage) -> Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn plain_replies_are_content_and_never_ping_roles_or_everyone() {
        let out = json(render(&Reply::text("@everyone 2d6: [3, 4] = 7")).message());
        assert_eq!(out["content"], "@everyone 2d6: [3, 4] = 7");
        assert_eq!(out["embeds"], json!([]));
        assert_eq!(out["allowed_mentions"]["parse"], json!([]));
        assert_eq!(out["allowed_mentions"]["roles"], json!([]));
    }

    #[test]
    fn a_reply_naming_40_members_pings_none_on_any_route() {
        let names: Vec<String> = (1..=40).map(|i| format!("<@{}>", 1000 + i)).collect();
        let reply = Reply::text(format!("I choose: {}", names.join(" ")));
        let nobody = json!({"parse": [], "users": [], "roles": []});
        let routes = [
            json(render(&reply).message()),
            serde_json::to_value(render(&reply).response()).unwrap(),
            serde_json::to_value(render(&reply).edit()).unwrap(),
        ];
        for out in routes {
            assert_eq!(out["allowed_mentions"], nobody, "{out}");
        }
    }

    #[test]
    fn structured_replies_become_embeds_and_errors_are_red_and_private() {
        let help = Reply::text("Type /help <command>.")
            .title("Commands")
            .field("fun", "/ping - Check");
        let out = json(render(&help).message());
        assert_eq!(out.get("content"), None);
        assert_eq!(
            out["embeds"][0],
            json!({
                "type": "rich",
                "title": "Commands",
                "description": "Type /help <command>.",
                "color": COLOUR,
                "fields": [{"name": "fun", "value": "/ping - Check", "inline": false}],
            })
        );
        let error = render(&Reply::error(
            "/mute: you need the Moderate Members permission",
        ));
        assert!(error.ephemeral);
        let out = serde_json::to_value(error.response()).unwrap();
        assert_eq!(out["embeds"][0]["color"], ERROR_COLOUR);
        assert_eq!(out["flags"], 64, "ephemeral");
        assert_eq!(
            out["embeds"][0]["description"],
            "/mute: you need the Moderate Members permission"
        );
    }

    #[test]
    fn buttons_carry_their_command_and_fill_rows_of_five() {
        let reply = (0..7).fold(Reply::text("Heads."), |r, i| {
            r.button(format!("b{i}"), "/coinflip")
        });
        let out = json(render(&reply).message());
        let rows = out["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[1]["components"][1]["custom_id"], "/coinflip");
        assert_eq!(rows[1]["components"][1]["label"], "b6");
    }

    #[test]
    fn everything_is_cut_to_discords_limits() {
        let long = Reply::text("x".repeat(2500));
        let content = json(render(&long).message())["content"].clone();
        assert_eq!(content.as_str().unwrap().chars().count(), 2000);
        assert!(content.as_str().unwrap().ends_with('…'));
        let fields = (0..30).fold(Reply::text("t").title("T"), |r, i| {
            r.field(format!("f{i}"), "v".repeat(1500))
        });
        let embed = json(render(&fields).message())["embeds"][0].clone();
        let fields = embed["fields"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .all(|f| f["value"].as_str().unwrap().chars().count() <= 1024)
        );
        let total: usize = fields
            .iter()
            .map(|f| {
                f["name"].as_str().unwrap().chars().count()
                    + f["value"].as_str().unwrap().chars().count()
            })
            .sum::<usize>()
            + 2;
        assert!(total <= MAX_EMBED, "{total}");
    }
}
