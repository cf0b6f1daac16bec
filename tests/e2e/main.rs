//! End-to-end tests: the real `cogbox` binary, driven as a user would.

#[path = "../support/fake_discord.rs"]
mod fake_discord;
#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
#[path = "../support/mod.rs"]
mod support;

mod config;
mod console;
mod discord;
mod fun_admin;
mod lifecycle;
mod telegram;
