//! Small helpers shared by every layer: timestamps in the Python server's formats, id parsing,
//! Python-style value formatting and the environment for child processes.

pub mod env;
pub mod ids;
pub mod pyfmt;
pub mod time;
