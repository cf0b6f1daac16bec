//! What makes cogbox an appliance rather than a program one runs by hand: one instance per
//! data folder, and warnings about how its secrets are stored.

pub mod hygiene;
pub mod lock;
