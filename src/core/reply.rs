//! A platform-neutral answer. Each adapter renders it natively: Discord as an embed, Telegram
//! as escaped HTML with an inline keyboard, the console as plain lines.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tone {
    #[default]
    Normal,
    /// Something went wrong for the user: adapters colour it, and Discord shows it only to them.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// A button that, when pressed, runs `command` (a command line such as `/coinflip`) as the
/// member who pressed it, through the same checks as if they had typed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub command: String,
}

/// Telegram's callback data holds 64 bytes; Discord's custom id 100 characters.
pub const MAX_BUTTON_COMMAND: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub title: Option<String>,
    pub text: String,
    pub fields: Vec<Field>,
    pub buttons: Vec<Button>,
    pub tone: Tone,
    /// Replace the message whose button was pressed (a poll's counts) instead of answering
    /// with a new one. Where no button was pressed (a typed command, the console) it is sent
    /// as a new message.
    pub replaces: bool,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Error,
            ..Self::default()
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Marks the reply as the new content of the message whose button was pressed.
    pub fn replacing(mut self) -> Self {
        self.replaces = true;
        self
    }

    /// Adds a button; commands longer than [`MAX_BUTTON_COMMAND`] bytes are a programming error
    /// caught by the cog's tests, and are dropped rather than sent broken.
    pub fn button(mut self, label: impl Into<String>, command: impl Into<String>) -> Self {
        let command = command.into();
        debug_assert!(
            command.len() <= MAX_BUTTON_COMMAND,
            "button command too long: {command}"
        );
        if command.len() <= MAX_BUTTON_COMMAND {
            self.buttons.push(Button {
                label: label.into(),
                command,
            });
        }
        self
    }
}
