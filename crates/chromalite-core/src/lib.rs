//! chromalite-core (under construction)
