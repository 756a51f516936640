//! The black-box tests, one module per feature, in one binary so they link once. nextest still
//! runs every test in a process of its own, which the harness relies on: one PostgreSQL and one
//! server per test.

mod auth;
mod catalog;
mod cli;
mod connections;
mod database_roles;
mod email;
mod health;
mod idempotency;
mod jobs;
mod openapi;
mod orders;
mod problems;
mod reports;
mod resilience;
mod telemetry;
// example-domain:begin (these drive events through orders; make remove-example deletes them)
mod webhooks;
// example-domain:end
