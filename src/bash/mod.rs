//! (bash: not built yet)
