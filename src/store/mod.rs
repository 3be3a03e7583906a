//! (store: not built yet)
