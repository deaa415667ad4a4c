//! chromalite-sqlite (under construction)
