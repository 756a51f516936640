//! The `keel` command line: one clear line for bad input, a non-zero exit, nothing half-done.

use keel_tests::{Keel, KeelOutput, config_dir, free_port};

/// `keel <args>` with the committed configuration and these settings, nothing else.
fn run_keel(args: &[&str], settings: &[(&str, &str)]) -> KeelOutput {
    Keel::command(args)
        .env("APP_CONFIG_DIR", config_dir())
        .envs(settings.iter().copied())
        .run()
}

fn assert_one_line_naming(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].contains(needle), "{needle} not named in: {stderr}");
}

#[test]
fn malformed_config_names_the_environment_variable() {
    let KeelOutput { code, stderr, .. } = run_keel(&["serve"], &[("APP__SERVER__PORT", "http")]);
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, "APP__SERVER__PORT");
}

#[test]
fn production_without_a_database_url_refuses_to_start() {
    let KeelOutput { code, stderr, .. } = run_keel(&["serve"], &[("APP_ENV", "production")]);
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, "APP__DATABASE__URL");
}

#[test]
fn unknown_arguments_get_one_line() {
    let KeelOutput { code, stderr, .. } = run_keel(&["serve", "--port", "1"], &[]);
    assert_eq!(code, Some(2));
    assert_one_line_naming(&stderr, "--port");

    let KeelOutput { code, stderr, .. } = run_keel(&["frobnicate"], &[]);
    assert_eq!(code, Some(2));
    assert_one_line_naming(&stderr, "frobnicate");
}

#[test]
fn every_command_has_help() {
    let commands: [&[&str]; 7] = [
        &["serve"],
        &["migrate"],
        &["openapi"],
        &["seed"],
        &["healthcheck"],
        &["users"],
        &["users", "create-admin"],
    ];
    for command in commands {
        let args = [command, &["--help"]].concat();
        let KeelOutput { code, stdout, .. } = run_keel(&args, &[]);
        assert_eq!(code, Some(0), "{command:?} --help");
        assert!(
            stdout.contains("Usage: keel"),
            "{command:?} --help printed: {stdout}"
        );
    }
}

#[test]
fn create_admin_requires_an_email() {
    let KeelOutput { code, stderr, .. } = run_keel(&["users", "create-admin"], &[]);
    assert_eq!(code, Some(2));
    assert_one_line_naming(&stderr, "--email");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let port = free_port().to_string();
    let KeelOutput { code, stderr, .. } = run_keel(
        &["healthcheck", "--timeout", "1s"],
        &[("APP__SERVER__PORT", &port)],
    );
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, &port);
}
