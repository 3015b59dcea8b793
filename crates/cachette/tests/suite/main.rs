//! The cachette test suite: one binary, so it links once.
//!
//! Redis tests use `REDIS_URL` (default `redis://127.0.0.1:6379`), and Upstash tests a gateway
//! each starts over it; an unreachable server fails them, it never skips them. Every test writes
//! under its own random namespace, so tests run in parallel and never touch each other's keys,
//! nor anybody else's.

mod fleet;
mod fleet_faults;
mod fleet_flight;
mod generations;
mod keys;
mod redis_down;
mod refresh;
mod stores;
mod stress;
mod support;
mod upstash_faults;
