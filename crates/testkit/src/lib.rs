//! Faults that a test controls, for the test suites of the workspace (never a dependency of
//! the crates themselves).
//!
//! Tests run in parallel against shared PostgreSQL and Redis servers, which must never be
//! stopped: a test that needs a server to fail puts a [`Proxy`] in front of it and cuts that,
//! or starts a [`RedisServer`] of its own and kills it.
//!
//! Layout:
//! - [`proxy`]: a TCP proxy that forwards, cuts, blackholes or refuses new connections.
//! - [`redis_server`]: a private `redis-server` child on a free port.

pub mod proxy;
pub mod redis_server;

pub use proxy::Proxy;
pub use redis_server::{RedisServer, free_port};
