//! What makes cogbox an appliance rather than a program one runs by hand: one instance per
//! data folder, warnings about how its secrets are stored, and signed self-update.

pub mod hygiene;
pub mod lock;
pub mod update;
