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

    /// Registers an account and logs it in.
    pub async fn register_and_login(&self, email: &str, password: &str) -> Session {
        let registered = self.register(email, password, "Test User").await;
        assert_eq!(
            registered.status(),
            201,
            "{}",
            registered.text().await.unwrap_or_default()
        );
        self.sign_in(email, password).await
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

    /// The public keys tokens are verified with, `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> Value {
        assert_json(self.app.get("/.well-known/jwks.json").await, 200).await
    }

    /// A fresh admin account, signed in.
    pub async fn admin(&self) -> Session {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "admin test passphrase";
        self.register_and_login(&email, password).await;
        sqlx::query("UPDATE users SET role = 'admin' WHERE email = $1")
            .bind(&email)
            .execute(&self.app.db)
            .await
            .expect("promote");
        // The role is a claim of the token: only a new login carries it.
        self.sign_in(&email, password).await
    }
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
    /// Takes the token pair out of a login or refresh response, which must be a success.
    pub async fn from_response(response: Response) -> Self {
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 200, "no token pair: {body}");
        let token = |field: &str| {
            body[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {body}"))
                .to_owned()
        };
        Self {
            access_token: token("access_token"),
            refresh_token: token("refresh_token"),
            body,
        }
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
