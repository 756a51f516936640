//! Binding, serving and draining: the process's life around the route table.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::{AppState, api, api_service, build_routes, connections};
use crate::{config::Settings, db};

/// Closing a pool waits for every connection to come back. One whose request was cut off at
/// `server.shutdown_timeout` comes back only when its statement ends, which PostgreSQL sees to
/// (`database.statement_timeout`) without us; waiting for it would keep a stopping pod alive for
/// up to that long, past the drain it was promised.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound, ready-to-run server. Binding happens in [`Application::build`] so callers (and
/// tests, with port 0) learn the real port before serving.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = db::connect_lazy(&settings.database).context("database.url")?;
        if settings.database.migrate_on_start {
            db::migrate(&settings.database)
                .await
                .context("applying migrations at start-up (database.migrate_on_start)")?;
        }
        let listener = TcpListener::bind(settings.bind_address())
            .await
            .with_context(|| format!("binding {}", settings.bind_address()))?;
        let local_addr = listener
            .local_addr()
            .context("the listener reported no address")?;
        let state = AppState::new(settings, db)?;
        Ok(Self {
            listener,
            local_addr,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish for up to `server.shutdown_timeout`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let state = self.state;
        let routes = build_routes(
            &state.settings.http,
            state.keys.clone(),
            api_service(api(&state)),
        );
        tracing::info!(address = %self.local_addr, "serving");
        let limits = state.settings.server.clone();
        let result = connections::serve(self.listener, routes, limits, shutdown).await;
        let pools = async { tokio::join!(state.db.close(), state.probe.close()) };
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, pools)
            .await
            .is_err()
        {
            tracing::warn!(
                "a database connection was still busy after the drain; leaving its statement to the server"
            );
        }
        result
    }
}

/// Resolves on SIGTERM (Kubernetes, `docker stop`) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
