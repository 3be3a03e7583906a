//! The `agent-server` binary: flags and exit codes; everything else lives in the library.

fn main() {
    eprintln!("agent-server: not built yet");
    std::process::exit(1);
}
