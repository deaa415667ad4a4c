//! chromalite facade (Client and Collection arrive in the next commit).
pub use chromalite_core as core;
