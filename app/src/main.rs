//! The `keel` command line: parse arguments, load configuration, dispatch.

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use keel::{
    config::Settings,
    db,
    server::{self, Application},
    telemetry,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Keel: an OpenAPI-first HTTP service on PostgreSQL.
///
/// Configuration comes from app/config/default.toml (built in), then
/// $APP_CONFIG_DIR/$APP_ENV.toml, then APP__SECTION__KEY environment variables.
#[derive(Debug, Parser)]
#[command(name = "keel", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C, then drain in-flight requests.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout. Needs no database.
    Openapi,
    /// Exit 0 when the server on this host answers ready (for images without curl).
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{first} (see 'keel --help')");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` keeps anyhow's context chain on one line.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            // A pool that never connects: the document does not depend on the database.
            let db = PgPoolOptions::new().connect_lazy_with(PgConnectOptions::new());
            println!("{}", server::openapi_json(db));
            Ok(())
        }
        Command::Serve => {
            let settings = load_settings()?;
            let telemetry = telemetry::init(&settings.telemetry)?;
            tracing::info!(
                environment = %settings.environment,
                version = env!("CARGO_PKG_VERSION"),
                "starting"
            );
            let result = async {
                let app = Application::build(settings).await?;
                app.run_until(server::shutdown_signal()).await?;
                anyhow::Ok(())
            }
            .await;
            if let Err(err) = &result {
                tracing::error!(error = format!("{err:#}"), "server stopped with an error");
            }
            telemetry.shutdown();
            result
        }
        Command::Migrate => {
            let settings = load_settings()?;
            let telemetry = telemetry::init(&settings.telemetry)?;
            let result = async {
                let pool = db::connect_lazy(&settings.database)?;
                db::migrate(&pool).await.context("applying migrations")?;
                tracing::info!("migrations applied");
                anyhow::Ok(())
            }
            .await;
            telemetry.shutdown();
            result
        }
        Command::Healthcheck { timeout } => {
            let settings = load_settings()?;
            let host = match settings.server.host.as_str() {
                "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
                host => host,
            };
            let url = format!("http://{host}:{}/health/ready", settings.server.port);
            let client = reqwest::Client::builder().timeout(timeout).build()?;
            let response = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("{url} did not answer"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "{url} answered {}",
                response.status()
            );
            Ok(())
        }
    }
}

fn load_settings() -> anyhow::Result<Settings> {
    Settings::load().context("invalid configuration")
}
