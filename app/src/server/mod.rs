//! Builds the HTTP application: the OpenAPI service, docs, probes and the middleware stack.
//! Split by what changes together: [`state`] (what handlers share), [`routes`] (the route table
//! and middleware order), [`lifecycle`] (bind, serve, drain on SIGTERM) and [`connections`]
//! (the accept loop and its per-connection limits).

mod connections;
mod lifecycle;
mod routes;
mod state;

pub use lifecycle::{Application, Role, shutdown_signal};
pub use routes::{ServiceApi, api, api_service, build_routes, openapi_json};
pub use state::AppState;
