//! The route table. Each file registers its own routes and schemas; this one
//! only lists the files.

pub mod agent;
pub mod bash;
pub mod bash_socket;
pub mod conversations;
pub mod docs;
pub mod events;
pub mod files;
pub mod server_details;
pub mod sockets;
pub mod tools;
pub mod workspace;

use super::RouteTable;

/// Every route the server serves.
pub fn table() -> RouteTable {
    let mut table = RouteTable::default();
    server_details::register(&mut table);
    bash::register(&mut table);
    bash_socket::register(&mut table);
    files::register(&mut table);
    workspace::register(&mut table);
    tools::register(&mut table);
    docs::register(&mut table);
    conversations::register(&mut table);
    events::register(&mut table);
    agent::register(&mut table);
    sockets::register(&mut table);
    table
}
