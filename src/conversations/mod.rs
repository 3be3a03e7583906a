//! (conversations: not built yet)
