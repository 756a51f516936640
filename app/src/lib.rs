//! Keel: an OpenAPI-first HTTP service on PostgreSQL. `main.rs` is the command line; everything
//! it runs lives here so the integration tests drive the same code.

pub mod auth;
pub mod conditional;
pub mod config;
pub mod db;
pub mod error;
pub mod features;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod json;
pub mod mail;
pub mod middleware;
pub mod openapi;
pub mod outbox;
pub mod pagination;
pub mod server;
pub mod telemetry;
pub mod text;
