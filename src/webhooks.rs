//! (webhooks: not built yet)
