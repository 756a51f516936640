//! The `keel` command line: one clear line for bad input, a non-zero exit, nothing half-done.

use keel_tests::{config_dir, free_port, run_keel};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = vec![(
        "APP_CONFIG_DIR".to_owned(),
        config_dir().display().to_string(),
    )];
    all.extend(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    all
}

fn assert_one_line_naming(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].contains(needle), "{needle} not named in: {stderr}");
}

#[test]
fn malformed_config_names_the_environment_variable() {
    let (code, _, stderr) = run_keel(&["serve"], &env(&[("APP__SERVER__PORT", "http")]));
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, "APP__SERVER__PORT");
}

#[test]
fn production_without_a_database_url_refuses_to_start() {
    let (code, _, stderr) = run_keel(&["serve"], &env(&[("APP_ENV", "production")]));
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, "APP__DATABASE__URL");
}

#[test]
fn unknown_arguments_get_one_line() {
    let (code, _, stderr) = run_keel(&["serve", "--port", "1"], &env(&[]));
    assert_eq!(code, Some(2));
    assert_one_line_naming(&stderr, "--port");

    let (code, _, stderr) = run_keel(&["frobnicate"], &env(&[]));
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
        let (code, stdout, _) = run_keel(&args, &env(&[]));
        assert_eq!(code, Some(0), "{command:?} --help");
        assert!(
            stdout.contains("Usage: keel"),
            "{command:?} --help printed: {stdout}"
        );
    }
}

#[test]
fn create_admin_requires_an_email() {
    let (code, _, stderr) = run_keel(&["users", "create-admin"], &env(&[]));
    assert_eq!(code, Some(2));
    assert_one_line_naming(&stderr, "--email");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let port = free_port().to_string();
    let (code, _, stderr) = run_keel(
        &["healthcheck", "--timeout", "1s"],
        &env(&[("APP__SERVER__PORT", &port)]),
    );
    assert_eq!(code, Some(1));
    assert_one_line_naming(&stderr, &port);
}
