//! The features, each a cog that speaks only to the core and the shared services.

pub mod admin;
pub mod economy;
pub mod fun;
pub mod help;
pub mod moderation;

use crate::core::{Cog, CommandError, CommunityId};
use crate::services::{Services, StoreError};

/// The context every bundled handler receives.
pub type Ctx = crate::core::Ctx<Services>;

/// A database failure, which the user sees only as an error id.
fn stored(e: StoreError) -> CommandError {
    CommandError::Internal(e.into())
}

/// The community of a community-only command (the dispatcher ran it nowhere else).
fn community(ctx: &Ctx) -> Result<CommunityId, CommandError> {
    ctx.invocation
        .community
        .ok_or_else(|| CommandError::internal("community-only command ran outside a community"))
}

/// Every bundled cog, in the order `/help` lists them.
pub fn all() -> Vec<Cog<Services>> {
    vec![
        help::cog(),
        admin::cog(),
        moderation::cog(),
        economy::cog(),
        fun::cog(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_spec_is_valid_for_both_platforms() {
        for cog in super::all() {
            for command in cog.commands {
                command.spec.validate().unwrap();
            }
        }
    }
}
