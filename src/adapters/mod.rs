//! Platform adapters: each translates between one chat service and the core.

pub mod console;
