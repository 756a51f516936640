//! The `keel` binary as an operator runs it, for what only a real process shows: exit codes,
//! what it writes to stdout and stderr, what it reads from stdin, signals.

use std::{
    ffi::OsString,
    io::Write as _,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, test_environment};

/// One `keel` invocation: its arguments, exactly the environment given (plus `PATH`), and what
/// it reads on stdin (nothing unless [`Keel::stdin`] says).
///
/// ```ignore
/// let migrated = Keel::command(["migrate"]).test_environment(&app.database_url).run();
/// let server = Keel::command(["serve"]).test_environment(&database_url).start().await;
/// ```
pub struct Keel {
    args: Vec<OsString>,
    environment: Vec<(OsString, OsString)>,
    stdin: Option<String>,
}

impl Keel {
    pub fn command<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            environment: Vec::new(),
            stdin: None,
        }
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.environment.push((key.into(), value.into()));
        self
    }

    pub fn envs<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.environment
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The environment a test server gets ([`test_environment`]), on that database.
    pub fn test_environment(self, database_url: &str) -> Self {
        self.envs(test_environment(database_url))
    }

    /// Text the process reads on stdin, e.g. a password typed at a prompt.
    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_owned());
        self
    }

    /// Runs the command to completion.
    pub fn run(mut self) -> KeelOutput {
        let input = self.stdin.take();
        let mut child = self
            .spawn(Stdio::piped(), input.is_some())
            .expect("run keel");
        if let Some(input) = input {
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(input.as_bytes())
                .expect("write keel's stdin");
        }
        child.wait_with_output().expect("wait for keel").into()
    }

    /// Starts a long-running command (`serve`) on a free port and waits until it answers
    /// `/health/live`.
    pub async fn start(self) -> KeelProcess {
        let port = free_port();
        let child = self
            .env("APP__SERVER__PORT", port.to_string())
            .spawn(Stdio::piped(), false)
            .expect("start keel");
        // Drained from the first byte: a chatty start (trace logs) would otherwise fill the
        // pipe and block the server before it ever answers.
        let process = KeelProcess::drained(child, format!("http://127.0.0.1:{port}"));
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{}/health/live", process.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "keel never answered on {}",
                process.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process
    }

    fn spawn(self, output: Stdio, piped_stdin: bool) -> std::io::Result<Child> {
        Command::new(keel_bin())
            .args(self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.environment)
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(output)
            .stderr(Stdio::piped())
            .spawn()
    }
}

/// How a `keel` process ended.
#[derive(Debug)]
pub struct KeelOutput {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for KeelOutput {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A `keel` process started by [`Keel::start`], still running.
pub struct KeelProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    // Read as the process writes: a pipe nobody reads fills up (64 KiB on Linux) and then
    // blocks the server at its next log line, mid-request.
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl KeelProcess {
    fn drained(mut child: Child, base: String) -> Self {
        fn drain(
            mut pipe: impl std::io::Read + Send + 'static,
        ) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        }
        let stdout = drain(child.stdout.take().expect("stdout is piped"));
        let stderr = drain(child.stderr.take().expect("stderr is piped"));
        Self {
            child,
            base,
            stdout,
            stderr,
        }
    }

    /// Asks for a graceful shutdown: the server drains, then exits.
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// `kill -9`: the process dies mid-request, as on an OOM kill or a lost node, with no
    /// chance to drain, roll back or flush.
    pub fn sigkill(&self) {
        self.signal("KILL");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub async fn wait(self) -> KeelOutput {
        let Self {
            mut child,
            stdout,
            stderr,
            ..
        } = self;
        tokio::task::spawn_blocking(move || {
            let status = child.wait().expect("wait for keel");
            let text = |reader: std::thread::JoinHandle<Vec<u8>>| {
                String::from_utf8_lossy(&reader.join().expect("pipe reader")).into_owned()
            };
            KeelOutput {
                code: status.code(),
                stdout: text(stdout),
                stderr: text(stderr),
            }
        })
        .await
        .expect("join")
    }
}

/// The `keel` binary. `make test` builds it first; `KEEL_BIN` points elsewhere.
fn keel_bin() -> PathBuf {
    if let Ok(path) = std::env::var("KEEL_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("keel"))
        .expect("target directory layout");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p keel` first (make test does)",
        bin.display()
    );
    bin
}

/// A fresh database migrated by `keel migrate`, for tests that arrange rows before any
/// worker starts (or start several processes that must not migrate at once).
pub async fn migrated_database() -> (crate::TestPostgres, String) {
    let postgres = crate::TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let migrated = Keel::command(["migrate"])
        .test_environment(&database_url)
        .run();
    assert_eq!(migrated.code, Some(0), "{}", migrated.stderr);
    (postgres, database_url)
}
