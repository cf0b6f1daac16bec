//! cogbox: a self-hosted chat-bot appliance.
//!
//! # Layout
//! - [`core`]: the platform-agnostic engine (ids, command specs, parsing, dispatch, replies,
//!   the [`core::Platform`] trait). It names no chat library and no database.
//! - [`cogs`]: the features, written once against the core and the services.
//! - [`services`]: what cogs share: the SQLite store and per-community settings.
//! - [`adapters`]: platforms that translate between a chat service and the core.
//! - The appliance around them: [`config`], [`logging`], [`appliance`] (the data folder's lock,
//!   secret hygiene), [`app`] (the composition root, the only module that sees everything) and
//!   [`cli`].
//!
//! Dependencies point one way: `cogs → services → core ← adapters`.

pub mod adapters;
pub mod app;
pub mod appliance;
pub mod cli;
pub mod cogs;
pub mod config;
pub mod core;
pub mod logging;
pub mod services;
pub mod shutdown;
