//! chromalite facade (under construction)
