//! (systemd: not built yet)
