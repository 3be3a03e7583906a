//! The shared middle-truncation helper (tools.md §9).
