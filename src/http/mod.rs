//! (http: not built yet)
