//! (agent: not built yet)
