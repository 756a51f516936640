//! Test harness: every test gets the real server on `127.0.0.1:0` and a database of its own.
//!
//! PostgreSQL comes from a container started through testcontainers, one per test process
//! (nextest runs each test in its own process, so tests never share state or interfere):
//! - image `postgres:17-alpine`, or `APP_TEST_PG_IMAGE` (the Makefile sets it to a locally built
//!   image when no registry is reachable);
//! - or no container at all when `APP_TEST_DATABASE_URL` names a server; each test then creates a
//!   fresh database on it.
//!
//! The tests themselves are one binary, `tests/api/main.rs`, one module per feature. Each
//! feature's requests live here in a module of the same name, reached from the app, e.g.
//! `app.auth().register_and_login(..)` returns a [`Session`]. Email the app sends is read from
//! an SMTP server in the test process, [`SmtpSink`].
//! <!-- example-domain:begin -->
//! The example domain's are `app.catalog().create(..)`, `app.orders().place(..)` and
//! `app.reports().sales(..)`: only their modules and `mod` lines, nothing else here knows them.
//! <!-- example-domain:end -->

mod app;
pub mod auth;
mod binary;
pub mod catalog;
pub mod orders;
pub mod otlp;
mod postgres;
pub mod receiver;
pub mod reports;
pub mod smtp;

pub use app::{
    TestApp, assert_json, assert_problem, config_dir, free_port, service_role_url, spawn_app,
    spawn_app_on, spawn_app_with, test_environment,
};
pub use auth::{Session, TestKey};
pub use binary::{Keel, KeelOutput, KeelProcess, migrated_database};
pub use postgres::{ReadinessBlocker, TableLock, TestPostgres};
pub use smtp::{ReceivedMail, SmtpSink};
