//! Account endpoints. Handlers parse, authorize, call, map — the mechanisms live in `auth`.

use std::{sync::Arc, time::Duration};

use opentelemetry::{KeyValue, global, metrics::Counter};
use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, OpenApi, Tags, payload::Json};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{
    model::{
        ChangePasswordRequest, Jwk, JwkSet, LoginRequest, NewUser, PasswordResetConfirmation,
        PasswordResetRequest, RefreshRequest, RegisterRequest, TokenPair, User,
    },
    repo::{self, RefreshToken, Rotation},
    reset,
};
use crate::{
    auth::{BearerAuth, LoginThrottle, Passwords, Role, TokenKeys, password},
    error::{ApiError, FieldError},
    json::JsonBody,
};

#[derive(Tags)]
enum AccountTags {
    /// Registration, login, tokens and sessions.
    Auth,
    /// The signed-in user.
    Users,
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<User>),
}

#[derive(ApiResponse)]
enum AcceptedResponse {
    /// Accepted. If an account has this email, a reset link is on its way to it.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
enum EmptyResponse {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// The account as the API shows it: no password hash.
fn view(user: &repo::UserRow) -> User {
    User {
        id: user.id,
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: user.role,
        created_at: user.created_at,
    }
}

impl From<repo::InsertUserError> for ApiError {
    fn from(err: repo::InsertUserError) -> Self {
        match err {
            repo::InsertUserError::EmailTaken => {
                Self::Conflict("An account with this email already exists.".into())
            }
            repo::InsertUserError::Database(err) => err.into(),
        }
    }
}

pub struct AccountsApi {
    pub db: PgPool,
    pub passwords: Passwords,
    pub throttle: Arc<LoginThrottle>,
    pub refresh_token_ttl: Duration,
    /// How long a session lasts from its login, however often it is refreshed.
    pub session_lifetime: Duration,
    logins: Counter<u64>,
}

impl AccountsApi {
    pub fn new(
        db: PgPool,
        passwords: Passwords,
        throttle: Arc<LoginThrottle>,
        refresh_token_ttl: Duration,
        session_lifetime: Duration,
    ) -> Self {
        let logins = global::meter("keel")
            .u64_counter("keel.auth.logins")
            .with_description("Login attempts by outcome: success, failure, throttled")
            .build();
        Self {
            db,
            passwords,
            throttle,
            refresh_token_ttl,
            session_lifetime,
            logins,
        }
    }

    fn count_login(&self, outcome: &'static str) {
        self.logins.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    fn pair(
        keys: &TokenKeys,
        user: uuid::Uuid,
        role: Role,
        session: uuid::Uuid,
        refresh: RefreshToken,
    ) -> Result<TokenPair, ApiError> {
        let access_token = keys
            .issue(user, role, session)
            .map_err(|err| ApiError::Internal(err.into()))?;
        Ok(TokenPair {
            access_token,
            refresh_token: refresh.token,
            token_type: "Bearer".to_owned(),
            expires_in: keys.ttl().as_secs(),
        })
    }

    fn refresh_expiry(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.refresh_token_ttl.min(self.session_lifetime)
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl AccountsApi {
    /// Create an account (role `member`).
    ///
    /// Registrations are limited per client network (429 with `Retry-After`).
    #[oai(path = "/auth/register", method = "post", tag = "AccountTags::Auth")]
    async fn register(
        &self,
        req: &Request,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        self.throttle
            .begin_registration(self.throttle.client_of(req))
            .await?;
        let new_user = NewUser::parse(body.0)?;
        // A taken email costs no hash (the insert below still catches a concurrent one).
        if repo::find_by_email(&self.db, new_user.email.as_str())
            .await?
            .is_some()
        {
            return Err(repo::InsertUserError::EmailTaken.into());
        }
        let hash = self.passwords.hash(new_user.password).await?;
        let user = repo::insert_user(
            &self.db,
            new_user.email.as_str(),
            new_user.display_name.as_str(),
            Role::Member,
            &hash,
        )
        .await?;
        tracing::info!(user = %user.id, "account registered");
        Ok(RegisterResponse::Created(Json(view(&user))))
    }

    /// Exchange email and password for an access token and a refresh token.
    ///
    /// Failed attempts are throttled per account and per client IP (429 with `Retry-After`).
    #[oai(path = "/auth/login", method = "post", tag = "AccountTags::Auth")]
    async fn login(
        &self,
        req: &Request,
        keys: Data<&Arc<TokenKeys>>,
        body: JsonBody<LoginRequest>,
    ) -> Result<Json<TokenPair>, ApiError> {
        let LoginRequest { email, password } = body.0;
        let (email, password) = (email.into_inner(), password.into_inner());
        let account = email.trim().to_lowercase();
        let ip = self.throttle.client_of(req);
        let mut attempt = match self.throttle.begin(&account, ip).await {
            Ok(attempt) => attempt,
            Err(throttled) => {
                self.count_login("throttled");
                return Err(throttled);
            }
        };

        let user = repo::find_by_email(&self.db, email.trim()).await?;
        let verified = self
            .passwords
            .verify(
                password.clone().into(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await?;
        attempt.checked();
        let Some(user) = user.filter(|_| verified.matches) else {
            self.count_login("failure");
            return Err(ApiError::Unauthorized(
                "The email or password is not correct.".into(),
            ));
        };

        attempt.succeeded().await?;
        if verified.outdated {
            let hash = self.passwords.hash(password.into()).await?;
            repo::set_password_hash(&self.db, user.id, &hash).await?;
            tracing::info!(user = %user.id, "password hash upgraded to the configured parameters");
        }
        let refresh = RefreshToken::generate();
        let session =
            repo::start_session(&self.db, user.id, &refresh, self.refresh_expiry()).await?;
        self.count_login("success");
        Ok(Json(Self::pair(
            &keys, user.id, user.role, session, refresh,
        )?))
    }

    /// Spend a refresh token for a new token pair in the same session.
    ///
    /// Presenting a token that was already spent revokes its whole session: a copy exists.
    #[oai(path = "/auth/refresh", method = "post", tag = "AccountTags::Auth")]
    async fn refresh(
        &self,
        keys: Data<&Arc<TokenKeys>>,
        body: JsonBody<RefreshRequest>,
    ) -> Result<Json<TokenPair>, ApiError> {
        let next = RefreshToken::generate();
        match repo::rotate(
            &self.db,
            body.0.refresh_token.as_str(),
            &next,
            self.refresh_expiry(),
            self.session_lifetime
                .try_into()
                .unwrap_or(time::Duration::MAX),
        )
        .await?
        {
            Rotation::Rotated {
                user_id,
                role,
                session_id,
            } => Ok(Json(Self::pair(&keys, user_id, role, session_id, next)?)),
            Rotation::Reused => Err(ApiError::Unauthorized(
                "This refresh token was already used; the session has been revoked. Log in again."
                    .into(),
            )),
            Rotation::Invalid => Err(ApiError::Unauthorized(
                "The refresh token is invalid, expired or revoked.".into(),
            )),
        }
    }

    /// Log out: revoke the session the refresh token belongs to.
    #[oai(path = "/auth/logout", method = "post", tag = "AccountTags::Auth")]
    async fn logout(
        &self,
        auth: BearerAuth,
        body: JsonBody<RefreshRequest>,
    ) -> Result<EmptyResponse, ApiError> {
        // Idempotent: logging out of an unknown or already revoked session is still "logged out".
        repo::revoke_session_of(&self.db, body.0.refresh_token.as_str(), auth.0.sub).await?;
        Ok(EmptyResponse::NoContent)
    }

    /// Ask for a password-reset email.
    ///
    /// Always 202, whether or not an account has this email, and as fast either way: the
    /// request only queues the reset, and the account is looked up afterwards, in the
    /// background. If one has the email, it receives a link to
    /// `{email.public_url}/reset-password?token=...` and the token itself, which
    /// `POST /auth/password-reset/confirm` accepts once, for `auth.password_reset_ttl`
    /// (30 minutes by default). An account with three unused links gets no more until one is
    /// used or expires. One client network may ask `auth.throttle.max_password_resets_per_ip`
    /// times per window (429 with `Retry-After` beyond).
    #[oai(
        path = "/auth/password-reset",
        method = "post",
        tag = "AccountTags::Auth"
    )]
    async fn request_password_reset(
        &self,
        req: &Request,
        body: JsonBody<PasswordResetRequest>,
    ) -> Result<AcceptedResponse, ApiError> {
        self.throttle
            .begin_password_reset(self.throttle.client_of(req))
            .await?;
        let mut conn = self.db.acquire().await?;
        reset::enqueue(&mut conn, body.0.email.as_str()).await?;
        Ok(AcceptedResponse::Accepted)
    }

    /// Set a new password with the token from a reset email.
    ///
    /// The token is spent, every session of the account is revoked (its refresh tokens stop
    /// working; log in again with the new password), and the account's other reset links stop
    /// working too. A token that is unknown, expired or already used is refused with 422
    /// naming `/token`, without saying which of those it is.
    #[oai(
        path = "/auth/password-reset/confirm",
        method = "post",
        tag = "AccountTags::Auth"
    )]
    async fn confirm_password_reset(
        &self,
        body: JsonBody<PasswordResetConfirmation>,
    ) -> Result<EmptyResponse, ApiError> {
        let PasswordResetConfirmation {
            token,
            new_password,
        } = body.0;
        password::check_policy(new_password.as_str(), "/new_password")
            .map_err(|err| ApiError::Validation(vec![err]))?;
        let refused = || {
            ApiError::Validation(vec![FieldError::new(
                "/token",
                "is not a valid reset token: unknown, expired or already used; ask for a new reset email",
            )])
        };
        // Checked before hashing, so a made-up token costs no argon2 work.
        if repo::reset_token_owner(&self.db, token.as_str())
            .await?
            .is_none()
        {
            return Err(refused());
        }
        let hash = self
            .passwords
            .hash(new_password.into_inner().into())
            .await?;
        // One transaction: the token is spent, the password set and every session revoked
        // together, or none of it. Spending is what decides a race between two confirmations.
        let mut tx = self.db.begin().await?;
        let Some(user_id) = repo::spend_reset_token(&mut tx, token.as_str()).await? else {
            return Err(refused());
        };
        repo::set_password_hash(&mut *tx, user_id, &hash).await?;
        let revoked = repo::revoke_sessions(&mut tx, user_id, None).await?;
        repo::delete_outstanding_reset_tokens(&mut tx, user_id).await?;
        tx.commit().await?;
        tracing::info!(user = %user_id, sessions = revoked, "password reset; every session revoked");
        Ok(EmptyResponse::NoContent)
    }

    /// The signed-in user.
    #[oai(path = "/users/me", method = "get", tag = "AccountTags::Users")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<User>, ApiError> {
        let user = repo::find_by_id(&self.db, auth.0.sub)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Json(view(&user)))
    }

    /// Change the password. Every other session of the user is revoked; this one stays. Reset
    /// links mailed before the change stop working.
    ///
    /// Wrong current passwords count against the same limits as failed logins (429 with
    /// `Retry-After`), so a stolen access token is no password oracle.
    #[oai(
        path = "/users/me/password",
        method = "put",
        tag = "AccountTags::Users"
    )]
    async fn change_password(
        &self,
        req: &Request,
        auth: BearerAuth,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<EmptyResponse, ApiError> {
        auth.require_live_session(&self.db).await?;
        let ChangePasswordRequest {
            current_password,
            new_password,
        } = body.0;
        let (current_password, new_password) =
            (current_password.into_inner(), new_password.into_inner());
        password::check_policy(&new_password, "/new_password")
            .map_err(|err| ApiError::Validation(vec![err]))?;
        let user = repo::find_by_id(&self.db, auth.0.sub)
            .await?
            .ok_or(ApiError::NotFound)?;
        let account = user.email.to_lowercase();
        let ip = self.throttle.client_of(req);
        let mut attempt = self.throttle.begin(&account, ip).await?;
        let verified = self
            .passwords
            .verify(current_password.into(), Some(user.password_hash))
            .await?;
        attempt.checked();
        if verified.matches {
            attempt.succeeded().await?;
        } else {
            return Err(ApiError::Validation(vec![FieldError::new(
                "/current_password",
                "is not correct",
            )]));
        }
        let hash = self.passwords.hash(new_password.into()).await?;
        // One transaction: the new hash and the revocations land together or not at all.
        let mut tx = self.db.begin().await?;
        repo::set_password_hash(&mut *tx, user.id, &hash).await?;
        let revoked = repo::revoke_sessions(&mut tx, user.id, Some(auth.0.sid)).await?;
        // A reset link mailed before the change must not undo it.
        repo::delete_outstanding_reset_tokens(&mut tx, user.id).await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, sessions = revoked, "password changed; other sessions revoked");
        Ok(EmptyResponse::NoContent)
    }
}

/// The public keys that verify access tokens, for other services and API gateways.
pub struct KeysApi;

#[OpenApi]
impl KeysApi {
    /// JSON Web Key Set (RFC 7517) with every key that verifies access tokens.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        tag = "AccountTags::Auth"
    )]
    async fn jwks(&self, keys: Data<&Arc<TokenKeys>>) -> Result<Json<JwkSet>, ApiError> {
        let keys = keys
            .jwks()
            .keys
            .iter()
            .filter_map(|jwk| match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => Some(Jwk {
                    kty: "OKP".to_owned(),
                    crv: "Ed25519".to_owned(),
                    x: okp.x.clone(),
                    kid: jwk.common.key_id.clone().unwrap_or_default(),
                    alg: "EdDSA".to_owned(),
                    key_use: "sig".to_owned(),
                }),
                _ => None,
            })
            .collect();
        Ok(Json(JwkSet { keys }))
    }
}
