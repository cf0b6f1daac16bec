//! End-to-end tests: the real `cogbox` binary, driven as a user would.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod console;
mod lifecycle;
