//! API tests: the real app on port 0, over HTTP.
//!
//! Each test gets its own database (a fresh SQLite file, or a fresh PostgreSQL database) and its
//! own cache namespace, so tests run in parallel. Most tests run three times: on SQLite with the
//! memory store, on PostgreSQL with Redis (`DATABASE_URL`, `REDIS_URL`), and on PostgreSQL with
//! the Upstash store through an `upstash-gateway` the test starts over that Redis; an
//! unreachable server fails.

mod admin_routes;
mod auth;
mod bench;
mod browser;
mod cache_admin;
mod connections;
mod dashboard;
mod database_outage;
mod fleet;
mod freshness;
mod hardening;
mod helpers;
mod isolation;
mod logout;
mod metrics;
mod openapi;
mod outbox;
mod public;
mod redis_down;
mod seeding;
mod server_limits;
mod sign_in;
mod single_instance;
mod smoke;
mod stale;
mod upstash;
mod user_routes;
mod validation;
mod warming;
