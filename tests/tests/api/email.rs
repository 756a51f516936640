//! Email, black-box: the app's worker (in-process, as `keel serve` runs it) sends over real SMTP
//! to a sink in this process, and the tests read what arrived as a mail client would. The
//! password reset is tested here because its only output is an email.

use std::time::Duration;

// example-domain:begin
use keel_tests::catalog::NewProduct;
// example-domain:end
use keel_tests::{ReceivedMail, SmtpSink, TestApp, assert_problem, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
/// Long enough for a loaded machine; mail normally arrives within a second.
const DELIVERY: Duration = Duration::from_secs(30);

/// An app whose email goes to `sink`, with links starting `https://app.example.com`.
async fn spawn_app_mailing(sink: &SmtpSink, overrides: &[(&str, &str)]) -> TestApp {
    let mut settings = sink.settings();
    settings.push((
        "APP__EMAIL__PUBLIC_URL".to_owned(),
        "https://app.example.com".to_owned(),
    ));
    let mut borrowed: Vec<(&str, &str)> = settings
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    borrowed.extend_from_slice(overrides);
    spawn_app_with(&borrowed).await
}

/// The token a reset email carries: in its link, and on a line of its own in both parts.
fn reset_token(mail: &ReceivedMail) -> String {
    let text = mail.text();
    let prefix = "https://app.example.com/reset-password?token=";
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no reset link in: {text}"))
        + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "a 32-byte base64url token: {text}");
    assert!(
        text.lines().any(|line| line == token),
        "the token on its own line: {text}"
    );
    let html = mail.html();
    assert!(
        html.contains(&format!("href=\"{prefix}{token}\"")),
        "the same link in the HTML part: {html}"
    );
    token
}

/// Waits until every queued password-reset task has run, so what they would send has been sent.
async fn wait_for_reset_tasks(app: &TestApp, expected: i64) {
    let deadline = tokio::time::Instant::now() + DELIVERY;
    loop {
        let (queued, done): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status = 'Done') FROM apalis.jobs
             WHERE convert_from(job, 'UTF8')::jsonb ->> 'kind' = 'accounts.password_reset'",
        )
        .fetch_one(&app.db)
        .await
        .expect("read the task queue");
        if queued == expected && done == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done} of {queued} reset tasks done, {expected} expected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// example-domain:begin
#[tokio::test]
async fn placing_an_order_emails_the_buyer_a_receipt_naming_the_product() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let admin = app.auth().admin().await;
    let product = app
        .catalog()
        .create(
            &admin.access_token,
            &NewProduct::new("SCOPE-1")
                .named("Brass Telescope")
                .priced(12_999),
        )
        .await;
    let buyer = app
        .auth()
        .register_and_login("buyer@example.com", PASSWORD)
        .await;

    let order = app
        .orders()
        .place(&buyer.access_token, &[(&product.id, 2)])
        .await;

    let received = sink.wait_for(1, DELIVERY).await;
    assert_eq!(received.len(), 1, "one receipt");
    let receipt = &received[0];
    assert_eq!(receipt.to, ["buyer@example.com"]);
    assert_eq!(receipt.from, "no-reply@keel.localhost");
    assert_eq!(receipt.from_header(), "no-reply@keel.localhost");
    assert_eq!(receipt.subject(), format!("Your order {}", order.id));
    let text = receipt.text();
    assert!(text.contains("2 x Brass Telescope at 129.99 EUR"), "{text}");
    assert!(text.contains("Total: 259.98 EUR"), "{text}");
    let html = receipt.html();
    assert!(html.contains("<td>Brass Telescope</td>"), "{html}");
    assert!(html.contains(&order.id), "{html}");
}
// example-domain:end

#[tokio::test]
async fn a_reset_for_an_unknown_email_sends_nothing_and_a_known_one_sends_one_link() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let auth = app.auth();
    auth.create_account("known@example.com", PASSWORD).await;

    for email in ["stranger@example.com", "Known@Example.com"] {
        let response = auth.request_password_reset(email).await;
        assert_eq!(response.status(), 202, "{email}");
        assert_eq!(response.text().await.expect("a body"), "", "{email}");
    }

    // The known one arriving proves the worker runs; both tasks finishing proves the unknown
    // one had its chance to send, and a few seconds more leave room for a late straggler.
    let received = sink.wait_for(1, DELIVERY).await;
    wait_for_reset_tasks(&app, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_now = sink.received();
    assert_eq!(received_now.len(), 1, "only the known account got mail");
    let mail = &received[0];
    assert_eq!(mail.to, ["known@example.com"], "the account's own address");
    assert_eq!(mail.subject(), "Reset your password");
    reset_token(mail);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM password_reset_tokens")
        .fetch_one(&app.db)
        .await
        .expect("count tokens");
    assert_eq!(stored, 1, "a token for the known account only");
}

#[tokio::test]
async fn a_malformed_email_is_422_and_queues_nothing() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let problem =
        assert_problem(app.auth().request_password_reset("not-an-email").await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "/email", "{problem}");
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs
         WHERE convert_from(job, 'UTF8')::jsonb ->> 'kind' = 'accounts.password_reset'",
    )
    .fetch_one(&app.db)
    .await
    .expect("read the task queue");
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn the_emailed_token_resets_the_password_once_and_ends_every_session() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let auth = app.auth();
    let before = auth.register_and_login("ada@example.com", PASSWORD).await;
    // Two emails, two links: using one must end the other too.
    for _ in 0..2 {
        auth.ask_for_password_reset("ada@example.com").await;
    }
    let received = sink.wait_for(2, DELIVERY).await;
    let (token, other_token) = (reset_token(&received[0]), reset_token(&received[1]));
    assert_ne!(token, other_token);

    // A refused password leaves the token unspent.
    let weak = assert_problem(
        auth.confirm_password_reset(&token, "password123456").await,
        422,
    )
    .await;
    assert_eq!(weak["errors"][0]["field"], "/new_password", "{weak}");

    let confirmed = auth.confirm_password_reset(&token, NEW_PASSWORD).await;
    assert_eq!(confirmed.status(), 204);

    for (case, spent) in [("used again", &token), ("the other link", &other_token)] {
        let refused = assert_problem(
            auth.confirm_password_reset(spent, "yet another passphrase")
                .await,
            422,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "/token", "{case}: {refused}");
    }
    let unknown = "A".repeat(43);
    assert_problem(
        auth.confirm_password_reset(&unknown, NEW_PASSWORD).await,
        422,
    )
    .await;

    assert_problem(auth.refresh(&before.refresh_token).await, 401).await;
    assert_problem(auth.login("ada@example.com", PASSWORD).await, 401).await;
    let after = auth.sign_in("ada@example.com", NEW_PASSWORD).await;
    assert_eq!(auth.me(&after.access_token).await.status(), 200);
}

#[tokio::test]
async fn a_reset_token_past_its_expiry_is_refused() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[("APP__AUTH__PASSWORD_RESET_TTL", "3s")]).await;
    let auth = app.auth();
    auth.create_account("ada@example.com", PASSWORD).await;

    auth.ask_for_password_reset("ada@example.com").await;
    let expired = reset_token(&sink.wait_for(1, DELIVERY).await[0]);
    // The token was stored before its email was sent, so this is past its 3 s.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let refused = assert_problem(
        auth.confirm_password_reset(&expired, NEW_PASSWORD).await,
        422,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "/token", "{refused}");

    // A fresh one, used at once, works with the same settings.
    auth.ask_for_password_reset("ada@example.com").await;
    let fresh = reset_token(&sink.wait_for(2, DELIVERY).await[1]);
    auth.reset_password_and_sign_in("ada@example.com", &fresh, NEW_PASSWORD)
        .await;
}

#[tokio::test]
async fn an_account_gets_at_most_three_outstanding_reset_links() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let auth = app.auth();
    auth.create_account("ada@example.com", PASSWORD).await;

    for _ in 0..5 {
        auth.ask_for_password_reset("ada@example.com").await;
    }
    sink.wait_for(3, DELIVERY).await;
    wait_for_reset_tasks(&app, 5).await;
    assert_eq!(sink.received().len(), 3, "two requests sent nothing");
}

/// The request only queues a task, the same for every address, so a known email answers no
/// slower than an unknown one. The worker is off here: its runs would disturb the timings, and
/// without it the queue shows what the requests did, and that no token was made by them.
#[tokio::test]
async fn reset_requests_for_known_and_unknown_emails_take_as_long() {
    const ROUNDS: usize = 25;
    let app = spawn_app_with(&[("APP__WORKER__ENABLED", "false")]).await;
    let auth = app.auth();
    let auth = &auth;
    auth.create_account("known@example.com", PASSWORD).await;
    let timed = |email: String| async move {
        let started = std::time::Instant::now();
        let response = auth.request_password_reset(&email).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 202, "{email}");
        elapsed
    };
    let (unknown, known) =
        keel_tests::auth::medians_known_and_unknown(ROUNDS, "known@example.com", timed).await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    // Measured 1.04-1.35 (medians 2-6 ms) on 2 busy cores: milliseconds are noisy, hence the
    // loose bounds. Work that depended on the account (a lookup and a hash, ~45 ms) would
    // put the ratio near 0.1.
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown email {unknown:?}, known email {known:?}: ratio {ratio:.2}"
    );

    let (queued, tokens): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM apalis.jobs
                 WHERE convert_from(job, 'UTF8')::jsonb ->> 'kind' = 'accounts.password_reset'),
                (SELECT count(*) FROM password_reset_tokens)",
    )
    .fetch_one(&app.db)
    .await
    .expect("read the queue and the tokens");
    assert_eq!(queued, 2 + 2 * ROUNDS as i64, "one task per request");
    assert_eq!(tokens, 0, "no request made a token itself");
}

/// A relay that answers 451 (busy, try later) gets the reset again: the refused token is
/// deleted — no one received it — and the retry mails a fresh one that works.
#[tokio::test]
async fn a_reset_the_smtp_server_refuses_for_now_is_sent_again_with_a_fresh_token() {
    let sink = SmtpSink::start().await;
    sink.refuse_next(1);
    let app = spawn_app_mailing(&sink, &[]).await;
    let auth = app.auth();
    auth.create_account("ada@example.com", PASSWORD).await;

    auth.ask_for_password_reset("ada@example.com").await;
    // test.toml's email.retry_wait is 1 s.
    let received = sink.wait_for(1, DELIVERY).await;
    assert_eq!(
        received.len(),
        1,
        "one email: the refused one was never taken"
    );
    let token = reset_token(&received[0]);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM password_reset_tokens")
        .fetch_one(&app.db)
        .await
        .expect("count tokens");
    assert_eq!(stored, 1, "the refused email's token is gone");
    auth.reset_password_and_sign_in("ada@example.com", &token, NEW_PASSWORD)
        .await;
}

#[tokio::test]
async fn changing_the_password_voids_reset_links_mailed_before() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_mailing(&sink, &[]).await;
    let auth = app.auth();
    let session = auth.register_and_login("ada@example.com", PASSWORD).await;
    auth.ask_for_password_reset("ada@example.com").await;
    let token = reset_token(&sink.wait_for(1, DELIVERY).await[0]);

    let changed = app
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/users/me/password",
            Some(&session.access_token),
            &serde_json::json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(changed.status(), 204);
    let refused = assert_problem(
        auth.confirm_password_reset(&token, "an attacker's passphrase")
            .await,
        422,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "/token", "{refused}");
    auth.sign_in("ada@example.com", NEW_PASSWORD).await;
}

#[tokio::test]
async fn reset_requests_are_limited_per_client_network() {
    let app = spawn_app_with(&[
        ("APP__WORKER__ENABLED", "false"),
        ("APP__AUTH__THROTTLE__MAX_PASSWORD_RESETS_PER_IP", "3"),
    ])
    .await;
    let auth = app.auth();
    for n in 0..3 {
        let email = format!("someone{n}@example.com");
        auth.ask_for_password_reset(&email).await;
    }
    let response = auth.request_password_reset("one-more@example.com").await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert_problem(response, 429).await;
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs
         WHERE convert_from(job, 'UTF8')::jsonb ->> 'kind' = 'accounts.password_reset'",
    )
    .fetch_one(&app.db)
    .await
    .expect("read the task queue");
    assert_eq!(queued, 3, "the refused request queued nothing");
}
