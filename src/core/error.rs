//! Errors a command can end in. Only the user-facing variants' text reaches a chat; an internal
//! error is logged under a short id and the user sees just that id.

use std::fmt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input was wrong: shown as `/cmd: <text>`.
    #[error("{0}")]
    Usage(String),
    /// The invoker may not do this here.
    #[error("{0}")]
    Denied(String),
    /// The platform refused or the bot lacks a permission; the text names what is missing.
    #[error("{0}")]
    Platform(String),
    /// A bug or an outage: never shown, only referred to by id.
    #[error(transparent)]
    Internal(BoxError),
}

impl CommandError {
    pub fn usage(text: impl Into<String>) -> Self {
        Self::Usage(text.into())
    }

    pub fn internal(text: impl Into<String>) -> Self {
        Self::Internal(text.into().into())
    }
}

impl From<PlatformError> for CommandError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Refused(text) => Self::Platform(text),
            PlatformError::Failed(e) => Self::Internal(e),
        }
    }
}

/// What a platform adapter reports back to the core.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The platform said no for a reason the user can act on (a missing bot permission, a
    /// member above the bot); the text says which, in the platform's own words.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(BoxError),
}

/// A short random id that ties an apology in chat to its log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorId(u32);

impl ErrorId {
    pub fn new() -> Self {
        Self(fastrand::u32(..))
    }
}

impl Default for ErrorId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ErrorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
