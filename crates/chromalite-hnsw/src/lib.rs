//! chromalite-hnsw (under construction)
