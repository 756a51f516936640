//! Accounts and authentication: signing up and in, and the token pair every other feature's
//! tests authenticate with.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{TestApp, assert_json};

/// The requests of `/api/v1/auth` and `/api/v1/users`, as a client makes them.
pub struct Auth<'a> {
    app: &'a TestApp,
}

impl TestApp {
    pub fn auth(&self) -> Auth<'_> {
        Auth { app: self }
    }
}

impl Auth<'_> {
    pub async fn register(&self, email: &str, password: &str, display_name: &str) -> Response {
        let body = json!({"email": email, "password": password, "display_name": display_name});
        self.app
            .send_json(Method::POST, "/api/v1/auth/register", None, &body)
            .await
    }

    /// Registers an account and logs it in, expecting both to succeed.
    pub async fn register_and_login(&self, email: &str, password: &str) -> Session {
        self.create_account(email, password).await;
        self.sign_in(email, password).await
    }

    /// Registers an account, expecting a 201 with the account as the API shows it.
    pub async fn create_account(&self, email: &str, password: &str) -> Value {
        let user = assert_success(self.register(email, password, "Test User").await, 201).await;
        for field in ["id", "email", "display_name", "role", "created_at"] {
            assert!(
                user[field].is_string(),
                "registering {email}: no {field} in {user}"
            );
        }
        assert_eq!(user["role"], "member", "registering {email}: {user}");
        assert!(
            user.get("password_hash").is_none() && !user.to_string().contains(password),
            "registering {email}: the response shows the password: {user}"
        );
        user
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        let body = json!({"email": email, "password": password});
        self.app
            .send_json(Method::POST, "/api/v1/auth/login", None, &body)
            .await
    }

    /// Logs in, expecting success.
    pub async fn sign_in(&self, email: &str, password: &str) -> Session {
        Session::from_response(self.login(email, password).await).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        let body = json!({ "refresh_token": refresh_token });
        self.app
            .send_json(Method::POST, "/api/v1/auth/refresh", None, &body)
            .await
    }

    pub async fn logout(&self, session: &Session) -> Response {
        let body = json!({ "refresh_token": session.refresh_token });
        self.app
            .send_json(
                Method::POST,
                "/api/v1/auth/logout",
                Some(&session.access_token),
                &body,
            )
            .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.app
            .send_as(Method::GET, "/api/v1/users/me", access_token)
            .await
    }

    pub async fn change_password(
        &self,
        access_token: &str,
        current_password: &str,
        new_password: &str,
    ) -> Response {
        let body = json!({"current_password": current_password, "new_password": new_password});
        self.app
            .send_json(
                Method::PUT,
                "/api/v1/users/me/password",
                Some(access_token),
                &body,
            )
            .await
    }

    /// `POST /api/v1/auth/password-reset`: asks for a reset email.
    pub async fn request_password_reset(&self, email: &str) -> Response {
        self.app
            .send_json(
                Method::POST,
                "/api/v1/auth/password-reset",
                None,
                &json!({ "email": email }),
            )
            .await
    }

    /// Asks for a reset email for `email`, expecting the 202 every address gets.
    pub async fn ask_for_password_reset(&self, email: &str) {
        let response = self.request_password_reset(email).await;
        assert_eq!(response.status(), 202, "password reset for {email}");
    }

    /// Sets `new_password` with an emailed `token` (expecting 204), then logs in with it.
    pub async fn reset_password_and_sign_in(
        &self,
        email: &str,
        token: &str,
        new_password: &str,
    ) -> Session {
        let response = self.confirm_password_reset(token, new_password).await;
        assert_eq!(response.status(), 204, "confirming the reset of {email}");
        self.sign_in(email, new_password).await
    }

    /// `POST /api/v1/auth/password-reset/confirm` with the token from a reset email.
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str) -> Response {
        self.app
            .send_json(
                Method::POST,
                "/api/v1/auth/password-reset/confirm",
                None,
                &json!({ "token": token, "new_password": new_password }),
            )
            .await
    }

    /// The public keys tokens are verified with, `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> Value {
        assert_json(self.app.get("/.well-known/jwks.json").await, 200).await
    }

    /// A fresh admin account, signed in.
    pub async fn admin(&self) -> Session {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "admin test passphrase";
        self.register_and_login(&email, password).await;
        let promoted = sqlx::query("UPDATE users SET role = 'admin' WHERE email = $1")
            .bind(&email)
            .execute(&self.app.db)
            .await
            .expect("promote");
        assert_eq!(promoted.rows_affected(), 1, "promoting {email}");
        // The role is a claim of the token: only a new login carries it.
        let session = self.sign_in(&email, password).await;
        assert_eq!(
            session.claims()["role"],
            "admin",
            "the admin's new token: {:?}",
            session.claims()
        );
        session
    }
}

/// Asserts a successful JSON response with exactly this status and returns its body, or
/// panics with the method, URL, status and body: a 401 or 429 problem is never a success.
async fn assert_success(response: Response, status: u16) -> Value {
    let url = response.url().clone();
    let actual = response.status().as_u16();
    let content_type = crate::app::header(&response, "content-type");
    let text = response.text().await.expect("a response body");
    assert_eq!(
        actual, status,
        "{url} answered {actual}, expected {status}: {text}"
    );
    assert!(
        content_type.starts_with("application/json"),
        "{url} answered {actual} with {content_type:?}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{url}: not JSON ({err}): {text}"))
}

/// A signed-in account: the token pair of a login or refresh response.
#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// The whole response body, for what a test checks beyond the tokens.
    pub body: Value,
}

impl Session {
    /// Takes the token pair out of a login or refresh response, which must be a 200 with the
    /// whole documented shape: `{access_token, refresh_token, token_type: "Bearer", expires_in}`.
    pub async fn from_response(response: Response) -> Self {
        let body = assert_success(response, 200).await;
        let token = |field: &str| {
            body[field]
                .as_str()
                .filter(|token| !token.is_empty())
                .unwrap_or_else(|| panic!("no {field} in the token pair {body}"))
                .to_owned()
        };
        let (access_token, refresh_token) = (token("access_token"), token("refresh_token"));
        assert_eq!(body["token_type"], "Bearer", "token pair {body}");
        assert!(
            body["expires_in"].as_u64().is_some_and(|secs| secs > 0),
            "token pair without a positive expires_in: {body}"
        );
        assert_eq!(
            access_token.split('.').count(),
            3,
            "the access token is no JWT: {body}"
        );
        Self {
            access_token,
            refresh_token,
            body,
        }
    }

    /// The access token's claims, decoded without verifying: what the server put in it.
    pub fn claims(&self) -> Value {
        use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
        let payload = self
            .access_token
            .split('.')
            .nth(1)
            .expect("a JWT has a payload");
        let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
        serde_json::from_slice(&json).expect("JSON claims")
    }
}

/// An Ed25519 signing key for tests that mint their own tokens: hand its PEM to the app as
/// `APP__AUTH__SIGNING_KEY`, sign with [`TestKey::encoding_key`].
pub struct TestKey {
    pub pem: String,
    key: ed25519_dalek::SigningKey,
}

impl TestKey {
    pub fn generate() -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .expect("PEM encoding")
            .to_string();
        Self { pem, key }
    }

    /// The public half, SPKI PEM, as `auth.verification_keys` takes it.
    pub fn public_pem(&self) -> String {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("PEM encoding")
    }

    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let der = self.key.to_pkcs8_der().expect("DER encoding");
        jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
    }
}

/// Median times of `timed` for `known` and for fresh unknown emails, interleaved over `rounds`
/// (alternating which goes first) after one warm-up of each: for the tests that hold an
/// operation to costing the same whether or not an account has the email.
pub async fn medians_known_and_unknown<F, Fut>(
    rounds: usize,
    known: &str,
    timed: F,
) -> (std::time::Duration, std::time::Duration)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::time::Duration>,
{
    timed(known.to_owned()).await;
    timed("warm-up@example.com".to_owned()).await;
    let (mut unknown, mut known_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let stranger = format!("nobody-{round}@example.com");
        if round % 2 == 0 {
            unknown.push(timed(stranger).await);
            known_times.push(timed(known.to_owned()).await);
        } else {
            known_times.push(timed(known.to_owned()).await);
            unknown.push(timed(stranger).await);
        }
    }
    let median = |times: &mut Vec<std::time::Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    (median(&mut unknown), median(&mut known_times))
}
