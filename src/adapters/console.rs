//! The console platform: a local chat on stdin/stdout as one user in one community, running the
//! very same dispatcher, permissions and storage as the real platforms.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::ids::console_user_raw;
use crate::core::parse::command_line;
use crate::core::{
    ArgInput, Author, Capability, ChannelId, CommunityId, Dispatcher, Member, ModAction,
    ModOutcome, Platform, PlatformError, PlatformKind, Reply, Request, State, UserId, UserRef,
};

/// The console's single community and channel.
pub const COMMUNITY: CommunityId = CommunityId::new(PlatformKind::Console, 1);
pub const CHANNEL: ChannelId = ChannelId::new(PlatformKind::Console, 1);
/// Who you are in `cogbox console` unless `--as` says otherwise.
pub const DEFAULT_USER: &str = "owner";

pub struct ConsolePlatform {
    user: Author,
    /// The default user (or an owner) holds every capability, as a server owner would.
    privileged: bool,
    /// Messages nobody typed a command for (a reminder, an alert), printed between commands.
    notices: mpsc::Sender<Reply>,
}

/// Unprompted messages waiting to be printed; more than this at once are dropped and logged.
pub const NOTICES: usize = 64;

impl ConsolePlatform {
    /// The platform, and where its unprompted messages arrive for [`run`] to print.
    pub fn new(name: &str, privileged: bool) -> (Self, mpsc::Receiver<Reply>) {
        let (notices, arrived) = mpsc::channel(NOTICES);
        let platform = Self {
            user: author(name),
            privileged,
            notices,
        };
        (platform, arrived)
    }

    fn notify(&self, reply: Reply) -> Result<(), PlatformError> {
        self.notices
            .try_send(reply)
            .map_err(|e| PlatformError::Failed(format!("console: {e}").into()))
    }

    pub fn user(&self) -> &Author {
        &self.user
    }
}

pub fn user_id(name: &str) -> UserId {
    UserId::new(PlatformKind::Console, console_user_raw(name))
}

fn author(name: &str) -> Author {
    Author {
        id: user_id(name),
        name: name.to_owned(),
    }
}

#[async_trait]
impl Platform for ConsolePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Console
    }

    fn capability_name(&self, capability: Capability) -> &'static str {
        match capability {
            Capability::BanMembers => "Ban Members",
            Capability::KickMembers => "Kick Members",
            Capability::MuteMembers => "Mute Members",
            Capability::ManageMessages => "Manage Messages",
            Capability::ManageSettings => "Manage Settings",
            Capability::Owner => "Owner",
        }
    }

    async fn has_capability(
        &self,
        _: CommunityId,
        _: ChannelId,
        user: UserId,
        _: Capability,
    ) -> Result<bool, PlatformError> {
        Ok(self.privileged && user == self.user.id)
    }

    async fn resolve_user(
        &self,
        _: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Option<Member>, PlatformError> {
        Ok(Some(match user {
            UserRef::Name(name) => Member {
                id: user_id(name),
                name: name.clone(),
                is_bot: false,
            },
            UserRef::Id(id) => Member {
                id: UserId::from_raw(PlatformKind::Console, *id),
                name: format!("user {id}"),
                is_bot: false,
            },
        }))
    }

    /// The console has no ranks: only its own (privileged) user moderates, and never themself.
    async fn check_rank(
        &self,
        _: CommunityId,
        _: UserId,
        _: &Member,
        _: &str,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    /// The console community is imaginary: every action succeeds once the dispatcher's and the
    /// cog's checks have passed, which is what an admin trying commands wants to see.
    async fn moderate(
        &self,
        _: CommunityId,
        _: Option<ChannelId>,
        _: UserId,
        _: &Member,
        _: &ModAction,
        _: Option<&str>,
        _: Option<&Reply>,
    ) -> Result<ModOutcome, PlatformError> {
        Ok(ModOutcome::default())
    }

    /// As imaginary as the community: every requested message "goes".
    async fn purge(&self, _: CommunityId, _: ChannelId, count: u32) -> Result<u32, PlatformError> {
        Ok(count)
    }

    /// Only the console's own user reads this terminal; anyone else's messages go nowhere.
    async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError> {
        if user != self.user.id {
            return Ok(());
        }
        let mut reply = reply.clone();
        reply.title = Some(match reply.title {
            Some(title) => format!("(direct message) {title}"),
            None => "(direct message)".into(),
        });
        self.notify(reply)
    }

    async fn send(&self, _: ChannelId, reply: &Reply) -> Result<(), PlatformError> {
        self.notify(reply.clone())
    }
}

/// Reads stdin on its own thread: a blocking read would otherwise hold up runtime shutdown.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the chat until input ends or `cancel` fires. A command already running finishes first.
pub async fn run<S: State>(
    dispatcher: Arc<Dispatcher<S>>,
    platform: Arc<ConsolePlatform>,
    mut lines: mpsc::Receiver<String>,
    mut notices: mpsc::Receiver<Reply>,
    mut out: impl AsyncWrite + Unpin,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let author = platform.user().clone();
    let platform: Arc<dyn Platform> = platform;
    if interactive {
        out.write_all(
            format!(
                "Chatting as {} in the console. Type /help; Ctrl-D quits.\n",
                author.name
            )
            .as_bytes(),
        )
        .await?;
    }
    loop {
        if interactive {
            out.write_all(b"> ").await?;
            out.flush().await?;
        }
        // Notices first: one a command caused is shown before the next line is read.
        let line = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(notice) = notices.recv() => {
                out.write_all(render(&notice).as_bytes()).await?;
                out.flush().await?;
                continue;
            }
            line = lines.recv() => line,
        };
        let Some(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let text = match command_line(&line, &["/", "!"]) {
            Some(command) => {
                let request = Request {
                    community: Some(COMMUNITY),
                    community_name: None,
                    channel: CHANNEL,
                    author: author.clone(),
                    replied_to: None,
                    id: None,
                    name: command.name,
                    args: ArgInput::Text(command.args.to_owned()),
                };
                match dispatcher.dispatch(&platform, request).await {
                    Some(reply) => render(&reply),
                    None => continue,
                }
            }
            None => "(commands start with / - try /help)\n".to_owned(),
        };
        out.write_all(text.as_bytes()).await?;
        out.flush().await?;
    }
    Ok(())
}

/// Plain text: the title, the text, `name: value` fields (multi-line values indented below
/// their name) and buttons in brackets with the command that pressing them would run, so a
/// console user can type it.
pub fn render(reply: &Reply) -> String {
    let mut out = String::new();
    for part in [reply.title.as_deref(), Some(reply.text.as_str())]
        .into_iter()
        .flatten()
    {
        if !part.is_empty() {
            out.push_str(part);
            out.push('\n');
        }
    }
    for field in &reply.fields {
        if field.value.contains('\n') {
            out.push_str(&format!("{}:\n", field.name));
            for line in field.value.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        } else {
            out.push_str(&format!("{}: {}\n", field.name, field.value));
        }
    }
    if !reply.buttons.is_empty() {
        let buttons: Vec<String> = reply
            .buttons
            .iter()
            .map(|b| format!("[{}: {}]", b.label, b.command))
            .collect();
        out.push_str(&buttons.join(" "));
        out.push('\n');
    }
    out
}

/// The console user's name as `--as` gave it, checked so ids stay stable and readable.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--as \"{name}\": a console user name is 1-32 letters, digits, _ . -"
        ))
    }
}
