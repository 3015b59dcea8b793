//! API tests: the real app on port 0, over HTTP.
//!
//! Each test gets its own database (a fresh SQLite file, or a fresh PostgreSQL database) and its
//! own cache namespace, so tests run in parallel. Most tests run twice, on SQLite with the memory
//! store and on PostgreSQL with Redis (`DATABASE_URL`, `REDIS_URL`); an unreachable server fails.

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
mod outbox;
mod public;
mod redis_down;
mod seeding;
mod server_limits;
mod sign_in;
mod single_instance;
mod smoke;
mod stale;
mod user_routes;
mod validation;
