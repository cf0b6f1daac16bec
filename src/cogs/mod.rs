//! The features, each a cog that speaks only to the core and the shared services.

pub mod admin;
pub mod economy;
pub mod fun;
pub mod help;
pub mod moderation;

use crate::core::Cog;
use crate::services::Services;

/// The context every bundled handler receives.
pub type Ctx = crate::core::Ctx<Services>;

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
