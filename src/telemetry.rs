//! (telemetry: not built yet)
