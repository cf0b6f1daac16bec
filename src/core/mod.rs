//! The platform-agnostic engine: ids, command specs, argument parsing, dispatch, replies and
//! the [`Platform`] trait adapters implement. Nothing here names a chat library or a database.

pub mod args;
pub mod clock;
pub mod command;
pub mod dispatch;
pub mod duration;
pub mod error;
pub mod ids;
pub mod moderation;
pub mod parse;
pub mod platform;
pub mod ratelimit;
pub mod reply;
pub mod spec;

pub use args::{Args, UserRef, Value};
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use command::{Author, Catalog, Cog, Command, CommandResult, Ctx, Invocation, State};
pub use dispatch::{ArgInput, Dispatcher, ErrorReport, Request};
pub use error::{BoxError, CommandError, ErrorId, PlatformError};
pub use ids::{ChannelId, CommunityId, PlatformKind, Raw, UserId, Word};
pub use moderation::ModAction;
pub use platform::{Member, ModOutcome, Platform, Platforms};
pub use ratelimit::RateQuota;
pub use reply::{Button, Field, Reply, Tone};
pub use spec::{Capability, CommandSpec, ParamKind, Scope};
