//! (secrets: not built yet)
