//! Integration tests of the server foundation (issue 2): the real binary
//! over HTTP on 127.0.0.1, plus an in-process server for test-only routes.

#[path = "../support/mod.rs"]
pub mod support;

mod cli_and_config;
mod http_basics;
mod in_process;
mod lifecycle;
