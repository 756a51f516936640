//! The `keel` command line: parse arguments, load configuration, dispatch.

use std::{io::IsTerminal as _, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use keel::{
    auth::Passwords,
    config::Settings,
    db,
    features::accounts::{AdminOutcome, create_or_promote_admin},
    server::{self, Application, Role},
    telemetry,
};

/// Keel: an OpenAPI-first HTTP service on PostgreSQL.
///
/// Configuration comes from app/config/default.toml and app/config/$APP_ENV.toml (both built
/// in), then $APP_CONFIG_DIR/$APP_ENV.toml, then APP__SECTION__KEY environment variables.
#[derive(Debug, Parser)]
#[command(name = "keel", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C, then drain in-flight requests. Background
    /// work runs in the same process unless worker.enabled is false.
    Serve,
    /// Run only background work (scheduled jobs) until SIGTERM or Ctrl-C; the port serves
    /// just /health/live and /health/ready.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout. Needs no database.
    Openapi,
    /// Load every feature's demo data, e.g. the example catalog (idempotent).
    Seed,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Exit 0 when the server on this host answers ready (for images without curl).
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Check this URL instead of the local server's /health/ready, e.g. through a
        /// Kubernetes Service from a `helm test` pod (no configuration is loaded then).
        #[arg(long, value_parser = parse_http_url)]
        url: Option<url::Url>,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create an admin account, or promote an existing account to admin.
    ///
    /// For a new account the password is one line read from stdin: typed without echo on a
    /// terminal, or piped (`printf '%s\n' "$PASSWORD" | keel users create-admin --email ...`).
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Display name of a newly created account.
        #[arg(long, default_value = "Administrator")]
        display_name: String,
    },
}

/// mimalloc instead of glibc's allocator: about a quarter more authenticated reads per second
/// on two cores (docs/measurements.md). Built without transparent huge pages (`no_thp`), which
/// otherwise round an idle process up to ~47 MB resident in 2 MiB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap spreads one error over several lines (the error, the missing argument, a
            // tip, the usage); keep everything before the usage, joined into one line.
            let rendered = err.render().to_string();
            let message = rendered
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("{message} (see 'keel --help')");
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
            println!("{}", server::openapi_json()?);
            Ok(())
        }
        Command::Serve | Command::Worker => {
            let role = match command {
                Command::Worker => Role::Worker,
                _ => Role::Api,
            };
            let settings = load_settings()?;
            let telemetry =
                telemetry::init(&settings.telemetry, &settings.environment.to_string())?;
            tracing::info!(
                environment = %settings.environment,
                version = env!("CARGO_PKG_VERSION"),
                "starting"
            );
            let result = async {
                let app = Application::build_as(role, settings).await?;
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
            let telemetry =
                telemetry::init(&settings.telemetry, &settings.environment.to_string())?;
            let result = async {
                db::migrate(&settings.database).await?;
                tracing::info!("migrations applied");
                anyhow::Ok(())
            }
            .await;
            telemetry.shutdown();
            result
        }
        Command::Seed => {
            let settings = load_settings()?;
            let db = db::connect_lazy(&settings.database)?;
            let mut seeds = keel::features::seeds().peekable();
            if seeds.peek().is_none() {
                eprintln!("seed: no feature has demo data");
            }
            for seed in seeds {
                let outcome = seed(&db).await.context("loading demo data")?;
                eprintln!("seed: {outcome}");
            }
            Ok(())
        }
        Command::Users {
            command:
                UsersCommand::CreateAdmin {
                    email,
                    display_name,
                },
        } => {
            let settings = load_settings()?;
            let db = db::connect_lazy(&settings.database)?;
            let passwords = Passwords::new(
                settings.auth.argon2,
                settings.auth.password_hash_concurrency,
            )?;
            let outcome = create_or_promote_admin(&db, &passwords, &email, &display_name, || {
                read_password(&email)
            })
            .await?;
            let message = match outcome {
                AdminOutcome::Created => "created admin",
                AdminOutcome::Promoted => "promoted to admin",
                AdminOutcome::AlreadyAdmin => "already an admin; nothing changed",
            };
            eprintln!("{email}: {message}");
            Ok(())
        }
        Command::Healthcheck { timeout, url } => {
            let url = match url {
                Some(url) => url.to_string(),
                None => {
                    let settings = load_settings()?;
                    let host = match settings.server.host.as_str() {
                        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
                        host => host,
                    };
                    format!("http://{host}:{}/health/ready", settings.server.port)
                }
            };
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

fn parse_http_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|err| format!("{value:?} is not a URL ({err})"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("{value:?}: expected http or https, got {other}")),
    }
}

/// One line from stdin; without echo when stdin is a terminal.
fn read_password(email: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {email}: "))?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "no password given on stdin");
    Ok(password)
}

fn load_settings() -> anyhow::Result<Settings> {
    Settings::load().context("invalid configuration")
}
