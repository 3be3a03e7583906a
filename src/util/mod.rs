//! Small helpers shared by every layer: timestamps in the Python server's formats and id parsing.

pub mod env;
pub mod ids;
pub mod time;
