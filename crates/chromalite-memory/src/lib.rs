//! chromalite-memory (under construction)
