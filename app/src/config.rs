//! One typed settings tree, loaded from layered sources and validated in one place.
//!
//! Layers, later wins:
//! 1. `app/config/default.toml`, then `app/config/{APP_ENV}.toml`, both embedded in the binary so
//!    `keel` behaves the same from any directory and in an image that ships no config files;
//! 2. `{APP_CONFIG_DIR}/{APP_ENV}.toml` when that file exists (an operator's override);
//! 3. environment variables `APP__SECTION__KEY`.
//!
//! Every error names the offending key both as a config path and as the environment variable
//! that sets it, because the environment is where operators fix things in production.

use std::{collections::HashMap, fmt, path::PathBuf, str::FromStr, time::Duration};

use base64::Engine as _;
use config::{Config, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "APP";
const ENV_SEPARATOR: &str = "__";
/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &[
    "http.cors.allowed_origins",
    "auth.verification_keys",
    "auth.verification_key_files",
    "webhooks.allowed_networks",
    "webhooks.retry_schedule",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Test,
    Production,
}

impl Environment {
    /// This environment's embedded defaults (`app/config/{name}.toml`), applied over
    /// `default.toml`. Embedded rather than read from disk: production must not silently fall
    /// back to developer defaults because a working directory or an image lacks the file.
    fn embedded_defaults(self) -> &'static str {
        match self {
            Self::Local => include_str!("../config/local.toml"),
            Self::Test => include_str!("../config/test.toml"),
            Self::Production => include_str!("../config/production.toml"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

impl FromStr for Environment {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "local" => Ok(Self::Local),
            "test" => Ok(Self::Test),
            "production" => Ok(Self::Production),
            other => Err(ConfigError::invalid(
                "APP_ENV",
                format!("expected one of local, test, production; got {other:?}"),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub worker: WorkerSettings,
    pub webhooks: WebhookSettings,
    pub email: EmailSettings,
    // example-domain:begin
    pub catalog: CatalogSettings,
    // example-domain:end
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 binds a free port; tests rely on that.
    pub port: u16,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub trust_request_id: bool,
    pub security_headers: bool,
    #[serde(with = "humantime_serde")]
    pub hsts_max_age: Duration,
    pub cors: CorsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    /// The schema owner's URL, used only by migrations; `url` is then the service's role.
    #[serde(default)]
    pub migration_url: Option<SecretString>,
    /// Refuse URLs that do not verify the server's certificate (`sslmode=verify-full`).
    pub require_verified_tls: bool,
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub statement_cache_capacity: usize,
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub service_name: String,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// Base URL of the OTLP receiver. Unset: the standard `OTEL_EXPORTER_OTLP_ENDPOINT`, and
    /// without either, nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http/protobuf`. Unset: the standard `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// `http/protobuf`.
    #[serde(default)]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Send log records over OTLP too (besides stdout), when exporting.
    #[serde(default)]
    pub otlp_logs: bool,
    /// Share of new traces recorded (0 to 1); a request continuing a caller's trace follows
    /// the caller's decision. The standard `OTEL_TRACES_SAMPLER`, when set, wins.
    pub sampling_ratio: f64,
}

/// The OTLP transport, named as `OTEL_EXPORTER_OTLP_PROTOCOL` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(format!(
                "{other:?} is not supported; use \"grpc\" or \"http/protobuf\""
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of issued access tokens, and the only one accepted.
    pub issuer: String,
    /// `aud` of issued access tokens, and the only one accepted.
    pub audience: String,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// How long an emailed password-reset token works, if it is not used first.
    #[serde(with = "humantime_serde")]
    pub password_reset_ttl: Duration,
    /// Ed25519 private key, PKCS#8 PEM. Exclusive with `signing_key_file`.
    pub signing_key: Option<SecretString>,
    pub signing_key_file: Option<PathBuf>,
    /// Extra Ed25519 public keys (SPKI PEM) that still verify tokens, e.g. the previous signing
    /// key during a rotation.
    pub verification_keys: Vec<String>,
    pub verification_key_files: Vec<PathBuf>,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub password_hash_concurrency: usize,
    /// Requests that may wait for a hashing permit; more are answered 429 at once.
    pub password_hash_queue: usize,
    pub argon2: Argon2Settings,
    pub throttle: ThrottleSettings,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failed logins for one account within `window` before further attempts get 429.
    pub max_failures_per_account: u32,
    /// Failed logins from one client IP within `window` before further attempts get 429.
    pub max_failures_per_ip: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Header listing the client's IP when behind proxies that append to it (e.g.
    /// `x-forwarded-for`). Unset: the TCP peer address. Never set it without such a proxy.
    pub client_ip_header: Option<String>,
    /// How many proxies in front of the service append to `client_ip_header`: the client is
    /// the entry this many places from the right, which those proxies wrote. Entries further
    /// left came from the client itself and are never believed.
    pub trusted_proxy_hops: usize,
    /// Registrations from one client network within `window` before 429.
    pub max_registrations_per_ip: u32,
    /// Password-reset requests from one client network within `window` before 429.
    pub max_password_resets_per_ip: u32,
}

/// Background work: whether `keel serve` runs it in-process, and how often each scheduled job
/// runs (`keel worker` runs it regardless of `enabled`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub enabled: bool,
    /// How often the scheduler looks for a job that is due; a job's interval is never shorter.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Connections of background work's own pool, apart from the one requests use, so neither
    /// can starve the other.
    pub max_connections: u32,
    /// Each scheduled job's interval, by job name; every registered job must have one.
    pub schedule: HashMap<String, humantime_serde::Serde<Duration>>,
    /// Tasks (webhook deliveries, emails) one process runs at once.
    pub concurrency: usize,
    /// How often a worker tells the queue it is alive; one silent for ten of these is presumed
    /// dead and its claimed tasks go back to the queue.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Besides waking on NOTIFY, how often the queue is polled (delayed retries fall due
    /// without a notification).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Dispatched events (and what features keep about them) are deleted after this long.
    #[serde(with = "humantime_serde")]
    pub outbox_retention: Duration,
}

/// Outbound webhooks: how subscribers' secrets are kept, which addresses may be called, and
/// how failed deliveries are retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Keys (base64 of 32 bytes) that encrypt signing secrets at rest, by key id. Old ids stay
    /// listed while rows encrypted with them exist.
    pub encryption_keys: HashMap<String, SecretString>,
    /// The key id new secrets are encrypted with.
    pub active_key: String,
    /// Subscriber URLs must be https.
    pub require_https: bool,
    /// Networks (CIDR) a subscriber may resolve into although they are loopback, private,
    /// link-local or otherwise internal; empty refuses all of those.
    pub allowed_networks: Vec<String>,
    /// One delivery attempt may take this long, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Waits before each retry of a failed delivery; after the last, the delivery is dead.
    pub retry_schedule: Vec<humantime_serde::Serde<Duration>>,
    /// How long a rotated-out signing secret still signs deliveries beside the new one.
    #[serde(with = "humantime_serde")]
    pub secret_rotation_grace: Duration,
}

/// Outgoing email over SMTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// Send email at all; off, messages are logged as skipped.
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// "none" (plain, for a local sink), "starttls" or "tls" (implicit TLS, port 465).
    pub smtp_tls: SmtpTls,
    #[serde(default)]
    pub smtp_username: Option<String>,
    #[serde(default)]
    pub smtp_password: Option<SecretString>,
    /// The From address, e.g. "Keel <no-reply@example.com>".
    pub from: String,
    /// The public base URL links in emails start with, e.g. "https://app.example.com".
    pub public_url: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The wait before trying again a send the SMTP server refused for now (4xx, or no
    /// connection); it doubles with each further try.
    #[serde(with = "humantime_serde")]
    pub retry_wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

// example-domain:begin
/// The example catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// A sale that leaves a product's stock below this publishes `product.low_stock`.
    pub low_stock_threshold: i32,
}
// example-domain:end

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    server: ServerSettings,
    http: HttpSettings,
    database: DatabaseSettings,
    telemetry: TelemetrySettings,
    auth: AuthSettings,
    worker: WorkerSettings,
    webhooks: WebhookSettings,
    email: EmailSettings,
    // example-domain:begin
    catalog: CatalogSettings,
    // example-domain:end
}

/// A configuration problem, always naming the key and the environment variable that sets it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{env_var} ({key}): {reason}")]
    Invalid {
        key: String,
        env_var: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

impl ConfigError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            env_var: env_var_for(key),
            reason: reason.into(),
        }
    }
}

/// `server.port` -> `APP__SERVER__PORT`; list indices (`origins[2]`) name the whole list.
pub fn env_var_for(key: &str) -> String {
    if key == "APP_ENV" {
        return key.to_owned();
    }
    let path = key.split('[').next().unwrap_or(key);
    let mut name = String::from(ENV_PREFIX);
    for part in path.split('.') {
        name.push_str(ENV_SEPARATOR);
        name.push_str(&part.to_uppercase());
    }
    name
}

impl Settings {
    /// Loads settings from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// Loads settings from the given environment, so tests need not touch the process's own.
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let environment = match vars.get("APP_ENV") {
            Some(name) => name.parse()?,
            None => Environment::Local,
        };
        let config_dir = vars
            .get("APP_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("app/config"), PathBuf::from);
        let env_file = config_dir.join(format!("{}.toml", environment.as_str()));
        let env_file = env_file.is_file().then_some(env_file);

        let layered = builder(
            &[DEFAULTS, environment.embedded_defaults()],
            env_file.as_ref(),
            &vars,
        )?;
        let raw: RawSettings = layered.try_deserialize().map_err(map_config_error)?;
        let settings = Self {
            environment,
            server: raw.server,
            http: raw.http,
            database: raw.database,
            telemetry: raw.telemetry,
            auth: raw.auth,
            worker: raw.worker,
            webhooks: raw.webhooks,
            email: raw.email,
            // example-domain:begin
            catalog: raw.catalog,
            // example-domain:end
        };
        settings.validate()?;

        if environment == Environment::Production {
            // The embedded default points at a developer database; production must say where its
            // database is rather than silently falling back to it.
            let explicit = builder(&[environment.embedded_defaults()], env_file.as_ref(), &vars)?;
            if explicit.get_string("database.url").is_err() {
                return Err(ConfigError::invalid(
                    "database.url",
                    "must be set explicitly in production",
                ));
            }
            // Without a configured key every restart would log every user out and replicas
            // could not verify each other's tokens.
            if settings.auth.signing_key.is_none() && settings.auth.signing_key_file.is_none() {
                return Err(ConfigError::invalid(
                    "auth.signing_key",
                    "must be set in production (or auth.signing_key_file)",
                ));
            }
            settings.auth.argon2.check_owasp_minimum()?;
            if !settings.webhooks.require_https {
                return Err(ConfigError::invalid(
                    "webhooks.require_https",
                    "must be true in production: a webhook carries signed data to the internet",
                ));
            }
        }
        Ok(settings)
    }

    /// Each section checks its own keys; the cross-environment rules live in `load_from`.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.http.validate()?;
        self.database.validate()?;
        self.auth.validate()?;
        self.worker.validate()?;
        self.webhooks.validate()?;
        self.email.validate()?;
        self.telemetry.validate()
    }

    /// The address to bind, as `host:port`.
    pub fn bind_address(&self) -> String {
        format!("{}:{}", self.server.host, self.server.port)
    }
}

impl ServerSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::invalid("server.host", "must not be empty"));
        }
        for (key, value) in [
            ("server.header_read_timeout", self.header_read_timeout),
            ("server.idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        // The accept loop counts connections in a semaphore, which holds at most u32::MAX.
        if self.max_connections == 0 || u32::try_from(self.max_connections).is_err() {
            return Err(ConfigError::invalid(
                "server.max_connections",
                format!("must be between 1 and {}", u32::MAX),
            ));
        }
        Ok(())
    }
}

impl HttpSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::invalid(
                "http.body_limit_bytes",
                "must be at least 1",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "http.request_timeout",
                "must be longer than 0s",
            ));
        }
        for (index, origin) in self.cors.allowed_origins.iter().enumerate() {
            validate_origin(origin).map_err(|reason| {
                ConfigError::invalid(&format!("http.cors.allowed_origins[{index}]"), reason)
            })?;
        }
        Ok(())
    }
}

impl DatabaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let urls = [
            ("database.url", Some(&self.url)),
            ("database.migration_url", self.migration_url.as_ref()),
        ];
        for (key, url) in urls {
            let Some(url) = url else { continue };
            let url = validate_database_url(key, url)?;
            // Migrations create and grant the service's role from these credentials.
            if self.migration_url.is_some()
                && key == "database.url"
                && (url.username().is_empty() || url.password().is_none_or(str::is_empty))
            {
                return Err(ConfigError::invalid(
                    key,
                    "must name a user and password when database.migration_url is set, so migrations can grant that role",
                ));
            }
            // Without verify-full, anyone on the network path can pose as the database and
            // collect the password and every row.
            let verified = url
                .query_pairs()
                .any(|(name, value)| name == "sslmode" && value == "verify-full");
            if self.require_verified_tls && !verified {
                return Err(ConfigError::invalid(
                    key,
                    "must verify the server certificate: add sslmode=verify-full&sslrootcert=<CA bundle> (or set database.require_verified_tls = false for a database without TLS)",
                ));
            }
        }
        for (key, value) in [
            ("database.acquire_timeout", self.acquire_timeout),
            // Zero would mean "no timeout" to PostgreSQL, the opposite of what was asked.
            ("database.statement_timeout", self.statement_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.min_connections > self.max_connections {
            return Err(ConfigError::invalid(
                "database.min_connections",
                "must not exceed database.max_connections",
            ));
        }
        Ok(())
    }
}

fn validate_database_url(key: &str, url: &SecretString) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(url.expose_secret())
        // The URL's own text may hold a password, so the message never quotes it.
        .map_err(|err| ConfigError::invalid(key, format!("not a URL ({err})")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(ConfigError::invalid(
            key,
            "must start with postgres:// or postgresql://",
        ));
    }
    Ok(url)
}

impl WorkerSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.tick.is_zero() {
            return Err(ConfigError::invalid(
                "worker.tick",
                "must be longer than 0s",
            ));
        }
        if self.max_connections < 2 {
            // One connection is held by the queue's LISTEN; work needs at least one more.
            return Err(ConfigError::invalid(
                "worker.max_connections",
                "must be at least 2",
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "worker.concurrency",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            ("worker.heartbeat", self.heartbeat),
            ("worker.poll_interval", self.poll_interval),
            ("worker.outbox_retention", self.outbox_retention),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        let known: Vec<&str> = crate::jobs::scheduled().map(|job| job.name).collect();
        for name in &known {
            match self.schedule.get(*name) {
                None => {
                    return Err(ConfigError::invalid(
                        &format!("worker.schedule.{name}"),
                        "is missing: every scheduled job needs an interval",
                    ));
                }
                Some(interval) if interval.is_zero() => {
                    return Err(ConfigError::invalid(
                        &format!("worker.schedule.{name}"),
                        "must be longer than 0s",
                    ));
                }
                Some(_) => {}
            }
        }
        // A misspelt job name would otherwise leave the real job on its default, silently.
        if let Some(unknown) = self
            .schedule
            .keys()
            .find(|name| !known.contains(&name.as_str()))
        {
            return Err(ConfigError::invalid(
                &format!("worker.schedule.{unknown}"),
                format!("is not a scheduled job; known: {}", known.join(", ")),
            ));
        }
        Ok(())
    }

    /// The configured interval of `job` (validated to exist at start-up).
    pub fn interval(&self, job: &str) -> Option<Duration> {
        self.schedule.get(job).map(|interval| **interval)
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.encryption_keys.is_empty() {
            return Err(ConfigError::invalid(
                "webhooks.encryption_keys",
                "needs at least one key (base64 of 32 random bytes), e.g. \
                 APP__WEBHOOKS__ENCRYPTION_KEYS__K1=$(openssl rand -base64 32)",
            ));
        }
        for (id, key) in &self.encryption_keys {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(key.expose_secret().trim())
                .map_err(|err| {
                    ConfigError::invalid(
                        &format!("webhooks.encryption_keys.{id}"),
                        format!("is not base64 ({err})"),
                    )
                })?;
            if decoded.len() != 32 {
                return Err(ConfigError::invalid(
                    &format!("webhooks.encryption_keys.{id}"),
                    format!(
                        "must be 32 bytes, base64-encoded; got {} bytes",
                        decoded.len()
                    ),
                ));
            }
        }
        if !self.encryption_keys.contains_key(&self.active_key) {
            let mut ids: Vec<&str> = self.encryption_keys.keys().map(String::as_str).collect();
            ids.sort_unstable();
            return Err(ConfigError::invalid(
                "webhooks.active_key",
                format!(
                    "{:?} is not a key of webhooks.encryption_keys ({})",
                    self.active_key,
                    ids.join(", ")
                ),
            ));
        }
        for network in self
            .allowed_networks
            .iter()
            .filter(|n| !n.trim().is_empty())
        {
            network.trim().parse::<ipnet::IpNet>().map_err(|err| {
                ConfigError::invalid(
                    "webhooks.allowed_networks",
                    format!("{network:?} is not a network in CIDR notation ({err})"),
                )
            })?;
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "webhooks.timeout",
                "must be longer than 0s",
            ));
        }
        if self.secret_rotation_grace.is_zero() {
            return Err(ConfigError::invalid(
                "webhooks.secret_rotation_grace",
                "must be longer than 0s: receivers need time to switch to a new secret",
            ));
        }
        Ok(())
    }

    /// The retry waits, in order (the first is before the second attempt).
    pub fn retry_schedule(&self) -> impl Iterator<Item = Duration> + '_ {
        self.retry_schedule.iter().map(|wait| **wait)
    }

    /// The allowlisted networks, parsed (validated at start-up).
    pub fn allowed_networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_networks
            .iter()
            .filter_map(|network| network.trim().parse().ok())
            .collect()
    }
}

impl EmailSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.smtp_host.trim().is_empty() {
            return Err(ConfigError::invalid("email.smtp_host", "must not be empty"));
        }
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|err| {
                ConfigError::invalid(
                    "email.from",
                    format!("{:?} is not a mailbox ({err})", self.from),
                )
            })?;
        let url = url::Url::parse(&self.public_url).map_err(|err| {
            ConfigError::invalid(
                "email.public_url",
                format!("{:?} is not a URL ({err})", self.public_url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "email.public_url",
                "must be an http(s) URL",
            ));
        }
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            return Err(ConfigError::invalid(
                "email.smtp_username",
                "set both email.smtp_username and email.smtp_password, or neither",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "email.timeout",
                "must be longer than 0s",
            ));
        }
        if self.retry_wait.is_zero() {
            return Err(ConfigError::invalid(
                "email.retry_wait",
                "must be longer than 0s",
            ));
        }
        Ok(())
    }
}

impl TelemetrySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "telemetry.service_name",
                "must not be empty",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|err| ConfigError::invalid("telemetry.log_filter", err.to_string()))?;
        if let Some(endpoint) = &self.otlp_endpoint {
            let parsed = url::Url::parse(endpoint).map_err(|err| {
                ConfigError::invalid("telemetry.otlp_endpoint", format!("not a URL ({err})"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    "telemetry.otlp_endpoint",
                    "must be an http:// or https:// base URL",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(ConfigError::invalid(
                "telemetry.sampling_ratio",
                "must be between 0 and 1",
            ));
        }
        if self.otlp_protocol.is_none()
            && let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
            && let Err(err) = protocol.parse::<OtlpProtocol>()
        {
            return Err(ConfigError::invalid(
                "telemetry.otlp_protocol",
                format!("unset, so OTEL_EXPORTER_OTLP_PROTOCOL decides, and its {err}"),
            ));
        }
        Ok(())
    }
}
impl Argon2Settings {
    /// OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1), which production may not go
    /// below: cheaper settings exist for tests, and must never reach real passwords.
    const OWASP_MINIMUM: [(&'static str, u32); 3] = [
        ("auth.argon2.memory_kib", 19_456),
        ("auth.argon2.iterations", 2),
        ("auth.argon2.parallelism", 1),
    ];

    fn check_owasp_minimum(&self) -> Result<(), ConfigError> {
        let values = [self.memory_kib, self.iterations, self.parallelism];
        for ((key, minimum), value) in Self::OWASP_MINIMUM.into_iter().zip(values) {
            if value < minimum {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be at least {minimum} in production (OWASP's argon2id minimum)"),
                ));
            }
        }
        Ok(())
    }
}

impl Argon2Settings {
    /// Parameters argon2 can run with at all, the error naming the one key to fix.
    fn check_possible(&self) -> Result<(), ConfigError> {
        use argon2::Error;
        let Err(err) =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
        else {
            return Ok(());
        };
        let (key, reason) = match err {
            Error::TimeTooSmall => (
                "auth.argon2.iterations",
                format!("must be at least {}", argon2::Params::MIN_T_COST),
            ),
            Error::ThreadsTooFew | Error::ThreadsTooMany => (
                "auth.argon2.parallelism",
                format!(
                    "must be between {} and {}",
                    argon2::Params::MIN_P_COST,
                    argon2::Params::MAX_P_COST
                ),
            ),
            // argon2 needs 8 KiB per lane: the minimum depends on the parallelism.
            Error::MemoryTooLittle => (
                "auth.argon2.memory_kib",
                format!(
                    "must be at least {} (8 per lane, auth.argon2.parallelism = {})",
                    (8 * u64::from(self.parallelism)).max(u64::from(argon2::Params::MIN_M_COST)),
                    self.parallelism
                ),
            ),
            other => ("auth.argon2", other.to_string()),
        };
        Err(ConfigError::invalid(key, reason))
    }
}

impl AuthSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let auth = self;
        for (key, value) in [
            ("auth.issuer", &auth.issuer),
            ("auth.audience", &auth.audience),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::invalid(key, "must not be empty"));
            }
        }
        for (key, value) in [
            ("auth.access_token_ttl", auth.access_token_ttl),
            ("auth.refresh_token_ttl", auth.refresh_token_ttl),
            ("auth.session_lifetime", auth.session_lifetime),
            ("auth.password_reset_ttl", auth.password_reset_ttl),
            ("auth.throttle.window", auth.throttle.window),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be longer than 0s"));
            }
        }
        if auth.signing_key.is_some() && auth.signing_key_file.is_some() {
            return Err(ConfigError::invalid(
                "auth.signing_key",
                "set either auth.signing_key or auth.signing_key_file, not both",
            ));
        }
        auth.argon2.check_possible()?;
        for (key, value) in [
            (
                "auth.throttle.max_failures_per_account",
                auth.throttle.max_failures_per_account,
            ),
            (
                "auth.throttle.max_failures_per_ip",
                auth.throttle.max_failures_per_ip,
            ),
            (
                "auth.throttle.max_registrations_per_ip",
                auth.throttle.max_registrations_per_ip,
            ),
            (
                "auth.throttle.max_password_resets_per_ip",
                auth.throttle.max_password_resets_per_ip,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if auth.throttle.client_ip_header.is_some() && auth.throttle.trusted_proxy_hops == 0 {
            return Err(ConfigError::invalid(
                "auth.throttle.trusted_proxy_hops",
                "must be at least 1 when auth.throttle.client_ip_header is set",
            ));
        }
        if let Some(header) = &auth.throttle.client_ip_header
            && poem::http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(ConfigError::invalid(
                "auth.throttle.client_ip_header",
                "is not a valid header name",
            ));
        }
        Ok(())
    }
}

fn builder(
    embedded: &[&str],
    env_file: Option<&PathBuf>,
    vars: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let mut builder = Config::builder();
    for layer in embedded {
        builder = builder.add_source(File::from_str(layer, FileFormat::Toml));
    }
    if let Some(path) = env_file {
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
    }
    let mut env = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .list_separator(",")
        .source(Some(vars.clone().into_iter().collect()));
    for key in LIST_KEYS {
        env = env.with_list_parse_key(key);
    }
    builder.add_source(env).build().map_err(map_config_error)
}

fn validate_origin(origin: &str) -> Result<(), String> {
    let url =
        url::Url::parse(origin).map_err(|err| format!("{origin:?} is not an origin ({err})"))?;
    let is_bare_origin = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && !origin.ends_with('/');
    if is_bare_origin {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin like https://app.example.com"
        ))
    }
}

fn map_config_error(err: config::ConfigError) -> ConfigError {
    match err {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => ConfigError::invalid(&key, format!("expected {expected}, got {unexpected}")),
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => ConfigError::invalid(&key, inner_reason(*error)),
        config::ConfigError::NotFound(key) => ConfigError::invalid(&key, "missing"),
        config::ConfigError::FileParse { uri, cause } => ConfigError::File {
            path: uri.unwrap_or_else(|| "app/config/default.toml".to_owned()),
            reason: cause.to_string(),
        },
        other => {
            let reason = other.to_string();
            match unknown_field(&reason) {
                Some(field) => ConfigError::invalid(&field, "unknown key (check its spelling)"),
                None => ConfigError::File {
                    path: "configuration".to_owned(),
                    reason,
                },
            }
        }
    }
}

fn inner_reason(err: config::ConfigError) -> String {
    match err {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, got {unexpected}"),
        config::ConfigError::At { error, .. } => inner_reason(*error),
        config::ConfigError::Message(message) => message,
        other => other.to_string(),
    }
}

/// serde reports `unknown field `x`, expected ...` without the section, so the name is all we get.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 32 bytes, base64: a webhook encryption key production accepts.
    const TEST_WEBHOOK_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        // An empty config dir keeps these tests independent of the files in app/config.
        let mut all = vec![("APP_CONFIG_DIR".to_owned(), "/nonexistent".to_owned())];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Settings::load_from(all)
    }

    fn error_for(vars: &[(&str, &str)]) -> String {
        match load(vars) {
            Ok(_) => panic!("expected {vars:?} to be rejected"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn embedded_defaults_load_without_any_file() {
        let settings = load(&[]).expect("defaults are valid");
        assert_eq!(settings.environment, Environment::Local);
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.http.body_limit_bytes, 1024 * 1024);
        assert!(settings.http.cors.allowed_origins.is_empty());
    }

    #[test]
    fn environment_variables_override_files() {
        let settings = load(&[
            ("APP__SERVER__PORT", "9090"),
            ("APP__HTTP__REQUEST_TIMEOUT", "5s"),
            (
                "APP__HTTP__CORS__ALLOWED_ORIGINS",
                "https://a.example,http://localhost:3000",
            ),
        ])
        .expect("valid overrides");
        assert_eq!(settings.server.port, 9090);
        assert_eq!(settings.http.request_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.http.cors.allowed_origins,
            vec!["https://a.example", "http://localhost:3000"]
        );
    }

    #[test]
    fn malformed_values_name_the_environment_variable() {
        let message = error_for(&[("APP__SERVER__PORT", "eighty")]);
        assert!(
            message.starts_with("APP__SERVER__PORT (server.port):"),
            "{message}"
        );

        let message = error_for(&[("APP__HTTP__REQUEST_TIMEOUT", "soon")]);
        assert!(
            message.starts_with("APP__HTTP__REQUEST_TIMEOUT"),
            "{message}"
        );

        let message = error_for(&[("APP__TELEMETRY__LOG_FORMAT", "xml")]);
        assert!(
            message.starts_with("APP__TELEMETRY__LOG_FORMAT"),
            "{message}"
        );
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let message = error_for(&[("APP__DATABASE__URL", "mysql://x")]);
        assert!(
            message.starts_with("APP__DATABASE__URL (database.url)"),
            "{message}"
        );

        let message = error_for(&[("APP__HTTP__CORS__ALLOWED_ORIGINS", "https://ok.example,*")]);
        assert!(
            message.contains("http.cors.allowed_origins[1]"),
            "{message}"
        );

        let message = error_for(&[("APP__TELEMETRY__OTLP_ENDPOINT", "collector:4318")]);
        assert!(
            message.starts_with("APP__TELEMETRY__OTLP_ENDPOINT"),
            "{message}"
        );

        let message = error_for(&[("APP__DATABASE__MIN_CONNECTIONS", "50")]);
        assert!(
            message.starts_with("APP__DATABASE__MIN_CONNECTIONS"),
            "{message}"
        );
    }

    #[test]
    fn every_scheduled_job_has_an_interval_and_no_unknown_one_is_accepted() {
        let settings = load(&[]).expect("defaults load");
        for job in crate::jobs::scheduled() {
            assert!(
                settings.worker.interval(job.name).is_some(),
                "default.toml has no worker.schedule.{}",
                job.name
            );
        }

        let message = error_for(&[("APP__WORKER__SCHEDULE__PURGE_SESION", "1h")]);
        assert!(
            message.starts_with("APP__WORKER__SCHEDULE__PURGE_SESION (worker.schedule.purge_sesion): is not a scheduled job; known: "),
            "{message}"
        );
        assert!(message.contains("purge_sessions"), "{message}");

        let message = error_for(&[("APP__WORKER__SCHEDULE__PURGE_SESSIONS", "0s")]);
        assert!(
            message.starts_with("APP__WORKER__SCHEDULE__PURGE_SESSIONS (worker.schedule.purge_sessions): must be longer than 0s"),
            "{message}"
        );
        let message = error_for(&[("APP__WORKER__TICK", "0s")]);
        assert!(message.starts_with("APP__WORKER__TICK"), "{message}");
        let message = error_for(&[("APP__WORKER__MAX_CONNECTIONS", "0")]);
        assert!(
            message.starts_with("APP__WORKER__MAX_CONNECTIONS"),
            "{message}"
        );
    }

    #[test]
    fn misspelt_keys_are_reported_not_ignored() {
        let message = error_for(&[("APP__SERVER__PROT", "1")]);
        assert!(message.contains("prot"), "{message}");
    }

    #[test]
    fn database_url_errors_never_echo_the_url() {
        let message = error_for(&[("APP__DATABASE__URL", "postgres://u:hunter2@[bad")]);
        assert!(!message.contains("hunter2"), "{message}");
    }

    const PRODUCTION_DATABASE_URL: &str =
        "postgres://app:secret@db.internal/app?sslmode=verify-full&sslrootcert=/etc/db-ca/ca.pem";

    #[test]
    fn production_refuses_database_urls_that_do_not_verify_the_server() {
        let production = [
            ("APP_ENV", "production"),
            ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
            ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
        ];
        for (key, url) in [
            (
                "APP__DATABASE__URL",
                "postgres://app@db.internal/app?sslmode=require",
            ),
            (
                "APP__DATABASE__MIGRATION_URL",
                "postgres://owner@db.internal/app",
            ),
        ] {
            let others = [("APP__DATABASE__URL", PRODUCTION_DATABASE_URL), (key, url)];
            let message = error_for(&[production.as_slice(), &others].concat());
            assert!(message.starts_with(key), "{message}");
            assert!(message.contains("verify-full"), "{message}");
        }
        let opted_out = [
            ("APP__DATABASE__URL", "postgres://app@db.internal/app"),
            ("APP__DATABASE__REQUIRE_VERIFIED_TLS", "false"),
        ];
        assert!(load(&[production.as_slice(), &opted_out].concat()).is_ok());
        // Local runs talk to a database without TLS.
        assert!(load(&[]).is_ok());
    }

    #[test]
    fn a_migration_url_needs_service_credentials_to_grant() {
        let message = error_for(&[
            (
                "APP__DATABASE__MIGRATION_URL",
                "postgres://owner:secret@db/app",
            ),
            ("APP__DATABASE__URL", "postgres://keel_app@db/app"),
        ]);
        assert!(message.starts_with("APP__DATABASE__URL"), "{message}");
        assert!(message.contains("user and password"), "{message}");
    }

    #[test]
    fn production_refuses_the_default_database_url() {
        let message = error_for(&[("APP_ENV", "production")]);
        assert!(message.starts_with("APP__DATABASE__URL"), "{message}");
    }

    #[test]
    fn webhook_settings_name_the_key_that_is_wrong() {
        let production = [
            ("APP_ENV", "production"),
            ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
            ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
        ];
        let message = error_for(&production);
        assert!(
            message.starts_with("APP__WEBHOOKS__ENCRYPTION_KEYS"),
            "{message}"
        );
        for (vars, key, says) in [
            (
                vec![("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", "c2hvcnQ=")],
                "APP__WEBHOOKS__ENCRYPTION_KEYS__K1",
                "32 bytes",
            ),
            (
                vec![
                    ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
                    ("APP__WEBHOOKS__ACTIVE_KEY", "k2"),
                ],
                "APP__WEBHOOKS__ACTIVE_KEY",
                "k1",
            ),
            (
                vec![
                    ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
                    ("APP__WEBHOOKS__ALLOWED_NETWORKS", "10.0.0.0/33"),
                ],
                "APP__WEBHOOKS__ALLOWED_NETWORKS",
                "CIDR",
            ),
            (
                vec![
                    ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
                    ("APP__WEBHOOKS__REQUIRE_HTTPS", "false"),
                ],
                "APP__WEBHOOKS__REQUIRE_HTTPS",
                "production",
            ),
            (
                vec![
                    ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
                    ("APP__EMAIL__FROM", "not a mailbox"),
                ],
                "APP__EMAIL__FROM",
                "mailbox",
            ),
        ] {
            let message = error_for(&[production.as_slice(), &vars].concat());
            assert!(message.starts_with(key), "{key}: {message}");
            assert!(message.contains(says), "{key}: {message}");
        }
    }

    #[test]
    fn production_refuses_to_run_without_a_signing_key() {
        let message = error_for(&[
            ("APP_ENV", "production"),
            ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
            ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
        ]);
        assert!(message.starts_with("APP__AUTH__SIGNING_KEY"), "{message}");

        let settings = load(&[
            ("APP_ENV", "production"),
            ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
            ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
            ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
        ])
        .expect("explicit URL and key are accepted");
        assert_eq!(settings.environment, Environment::Production);
    }

    #[test]
    fn production_defaults_are_embedded_not_read_from_disk() {
        // `load` points APP_CONFIG_DIR at a missing directory, as in an image with no files.
        let settings = load(&[
            ("APP_ENV", "production"),
            ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
            ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
            ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
        ])
        .expect("production settings load without any config file");
        assert_eq!(settings.server.host, "0.0.0.0");
        assert_eq!(settings.telemetry.log_format, LogFormat::Json);
        assert!(!settings.database.migrate_on_start);
        assert_eq!(settings.database.max_connections, 20);
    }

    #[test]
    fn a_config_dir_file_overrides_the_embedded_environment_defaults() {
        let dir = std::env::temp_dir().join(format!("keel-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("production.toml"), "[server]\nport = 9443\n").expect("write");
        let settings = Settings::load_from(
            [
                ("APP_CONFIG_DIR", dir.to_str().expect("utf-8 temp path")),
                ("APP_ENV", "production"),
                ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
                ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
                ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        std::fs::remove_dir_all(&dir).ok();
        let settings = settings.expect("loads");
        assert_eq!(settings.server.port, 9443);
        assert_eq!(
            settings.server.host, "0.0.0.0",
            "embedded production layer still applies"
        );
    }

    #[test]
    fn production_refuses_argon2_below_the_owasp_minimum() {
        let production = [
            ("APP_ENV", "production"),
            ("APP__DATABASE__URL", PRODUCTION_DATABASE_URL),
            ("APP__AUTH__SIGNING_KEY_FILE", "/etc/keel/signing.pem"),
            ("APP__WEBHOOKS__ENCRYPTION_KEYS__K1", TEST_WEBHOOK_KEY),
        ];
        for (key, weak) in [
            ("APP__AUTH__ARGON2__MEMORY_KIB", "8"),
            ("APP__AUTH__ARGON2__ITERATIONS", "1"),
        ] {
            let message = error_for(&[production.as_slice(), &[(key, weak)]].concat());
            assert!(message.starts_with(key), "{message}");
        }
        let settings = load(&production).expect("the defaults meet the minimum");
        assert!(settings.auth.argon2.memory_kib >= 19_456);
        // Production also sends HSTS and ignores caller-supplied request ids.
        assert!(!settings.http.hsts_max_age.is_zero());
        assert!(!settings.http.trust_request_id);
        // Tests may stay cheap.
        assert!(load(&[("APP__AUTH__ARGON2__MEMORY_KIB", "8")]).is_ok());
    }

    /// Weak settings are refused in production only (see above); impossible ones everywhere,
    /// each naming the one key to change.
    #[test]
    fn impossible_argon2_parameters_are_rejected_naming_the_key() {
        for (settings, key) in [
            (
                &[("APP__AUTH__ARGON2__ITERATIONS", "0")][..],
                "APP__AUTH__ARGON2__ITERATIONS (auth.argon2.iterations)",
            ),
            (
                &[("APP__AUTH__ARGON2__PARALLELISM", "0")],
                "APP__AUTH__ARGON2__PARALLELISM (auth.argon2.parallelism)",
            ),
            (
                &[("APP__AUTH__ARGON2__PARALLELISM", "16777216")],
                "APP__AUTH__ARGON2__PARALLELISM (auth.argon2.parallelism)",
            ),
            (
                &[("APP__AUTH__ARGON2__MEMORY_KIB", "7")],
                "APP__AUTH__ARGON2__MEMORY_KIB (auth.argon2.memory_kib)",
            ),
            // Enough memory for one lane, not for four.
            (
                &[
                    ("APP__AUTH__ARGON2__MEMORY_KIB", "31"),
                    ("APP__AUTH__ARGON2__PARALLELISM", "4"),
                ],
                "APP__AUTH__ARGON2__MEMORY_KIB (auth.argon2.memory_kib): must be at least 32",
            ),
        ] {
            let message = error_for(settings);
            assert!(message.starts_with(key), "{settings:?}: {message}");
        }
        assert!(
            load(&[
                ("APP__AUTH__ARGON2__MEMORY_KIB", "32"),
                ("APP__AUTH__ARGON2__PARALLELISM", "4"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn unknown_environment_is_rejected() {
        let message = error_for(&[("APP_ENV", "staging")]);
        assert!(message.starts_with("APP_ENV"), "{message}");
    }
}
