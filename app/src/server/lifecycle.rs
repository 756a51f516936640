//! Binding, serving and draining: the process's life around the route table.

use std::{future::Future, net::SocketAddr, sync::OnceLock, time::Duration};

use anyhow::Context as _;
use poem::EndpointExt as _;
use tokio::{net::TcpListener, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{AppState, api, api_service, build_routes, connections};
use crate::{config::Settings, db, health::HealthApi, jobs, mail::Mailer};

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
    role: Role,
    mailer: Mailer,
}

/// What a process serves: `keel serve` the API (with background work unless
/// `worker.enabled` is false), `keel worker` background work with only the probes on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_as(Role::Api, settings).await
    }

    pub async fn build_as(role: Role, settings: Settings) -> anyhow::Result<Self> {
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
        // Built here, so a bad SMTP setting stops the start instead of the first email.
        let mailer = Mailer::new(&settings.email).context("email")?;
        let state = AppState::new(settings, db)?;
        Ok(Self {
            listener,
            local_addr,
            state,
            role,
            mailer,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// (and the background job in hand) finish for up to `server.shutdown_timeout`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let state = self.state;
        let routes = match self.role {
            Role::Api => build_routes(
                &state.settings.http,
                state.keys.clone(),
                api_service(api(&state)),
            )
            .map_to_response()
            .boxed(),
            Role::Worker => build_routes(
                &state.settings.http,
                state.keys.clone(),
                api_service(HealthApi {
                    probe: state.probe.clone(),
                }),
            )
            .map_to_response()
            .boxed(),
        };
        let stop_work = CancellationToken::new();
        let work = if self.role == Role::Worker || state.settings.worker.enabled {
            let pool = db::worker_lazy(
                &state.settings.database,
                state.settings.worker.max_connections,
            )
            .map_err(std::io::Error::other)?;
            let task = tokio::spawn(jobs::run(
                pool.clone(),
                state.settings.clone(),
                self.mailer,
                stop_work.clone(),
            ));
            Some((task, pool))
        } else {
            None
        };
        tracing::info!(address = %self.local_addr, role = ?self.role, "serving");
        let limits = state.settings.server.clone();
        let signalled = OnceLock::new();
        let shutdown = async {
            shutdown.await;
            let _ = signalled.set(Instant::now());
            // Background work stops taking jobs at the signal, as the listener stops accepting.
            stop_work.cancel();
        };
        let shutdown_timeout = limits.shutdown_timeout;
        let result = connections::serve(self.listener, routes, limits, shutdown).await;
        let mut pools = vec![state.db.clone(), state.probe.clone()];
        if let Some((task, pool)) = work {
            // One budget for both: the job in hand gets what the drain left of shutdown_timeout.
            let deadline = signalled.get().copied().unwrap_or_else(Instant::now) + shutdown_timeout;
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("shutdown timeout reached; abandoning the background job in hand");
            }
            pools.push(pool);
        }
        let close = futures_util::future::join_all(pools.iter().map(|pool| pool.close()));
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, close)
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
