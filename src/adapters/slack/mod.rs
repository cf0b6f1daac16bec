//! Slack: the pieces of the adapter that need neither the network nor the core's ids, each
//! tested on its own. Not started by the app yet: the core's ids are numbers, and Slack's are
//! words (`U024BE7LH`), so wiring waits for string ids (issue 10).
//!
//! # Layout
//! - [`signature`]: checks events-mode requests (`X-Slack-Signature`, replay window, body cap).
//! - [`render`]: a [`crate::core::Reply`] as escaped mrkdwn and Block Kit.
//! - [`mentions`]: members as Slack writes them (`<@U123|name>`, `<@U123>`).
//! - [`manifest`]: the app manifest `cogbox slack manifest` prints.

pub mod manifest;
pub mod mentions;
pub mod render;
pub mod signature;
