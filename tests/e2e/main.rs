//! End-to-end tests: the real `cogbox` binary, driven as a user would.

#[path = "../support/fake_discord.rs"]
mod fake_discord;
#[path = "../support/fake_releases.rs"]
mod fake_releases;
#[path = "../support/fake_slack.rs"]
mod fake_slack;
#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
#[allow(dead_code)] // Only the RSS reading is used here.
#[path = "../benches/memory.rs"]
mod memory;
#[path = "../support/mod.rs"]
mod support;

mod appliance;
mod config;
mod console;
mod discord;
mod discord_load;
mod economy;
mod fun_admin;
mod lifecycle;
mod load;
mod scheduler;
mod slack;
mod telegram;
mod update;
