//! Access tokens: EdDSA (Ed25519) JWTs with a `kid`, verified against a key set that may hold
//! several keys so signing keys can rotate without logging anyone out.

use std::{collections::HashMap, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    },
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::config::{AuthSettings, Environment};

/// A user's role, carried in the access token.
// One spelling everywhere: the JSON of tokens and responses, the OpenAPI enum, and the `text`
// column (`CHECK (role IN ('member', 'admin'))`), which decodes with no fallback: a value the
// enum does not know is an error, never a silent `Member`. (Not a doc comment: poem-openapi
// would publish it as the schema's description.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum, sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    pub role: Role,
    /// The session (refresh-token family) the token was issued for.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// RFC 9068's `typ` for JWT access tokens. Issued, and required on verification, so that any
/// other JWT a fork ever signs with the same key (a password-reset or an email-confirmation
/// token, say) can never pass as an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// RFC 9068 §4: `at+jwt`, or its full media type, compared without regard to case.
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// Why a token was refused. The variants are for logs; clients only learn "invalid token".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token has no kid")]
    MissingKid,
    #[error("typ {0:?} is not at+jwt")]
    NotAnAccessToken(Option<String>),
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    #[error(transparent)]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// The signing key, every verification key by `kid`, and the published JWKS.
pub struct TokenKeys {
    signing: EncodingKey,
    signing_kid: String,
    verifying: HashMap<String, DecodingKey>,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    ttl: Duration,
    verified: VerifiedTokens,
}

/// Tokens this process has verified, by the SHA-256 of the whole token: a client presents the
/// same token for its whole life (15 minutes), and an Ed25519 verification costs far more than
/// the rest of a cheap authenticated read. A hit is the exact token that passed every check
/// before; it is served only until its `exp`, never past it, and any other token — another
/// signature on the same claims included — hashes elsewhere and is verified in full.
struct VerifiedTokens {
    entries: std::sync::Mutex<hashlink::LruCache<[u8; 32], Claims>>,
}

/// The most tokens remembered; beyond it the least recently used is forgotten (and verified
/// again when it comes back). About 300 bytes each.
const VERIFIED_TOKENS: usize = 10_000;

impl VerifiedTokens {
    fn new() -> Self {
        Self {
            entries: std::sync::Mutex::new(hashlink::LruCache::new(VERIFIED_TOKENS)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, hashlink::LruCache<[u8; 32], Claims>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, digest: &[u8; 32], now: i64) -> Option<Claims> {
        let mut entries = self.lock();
        let claims = entries.get(digest)?;
        if now < claims.exp {
            Some(claims.clone())
        } else {
            entries.remove(digest);
            None
        }
    }

    fn insert(&self, digest: [u8; 32], claims: &Claims) {
        self.lock().insert(digest, claims.clone());
    }
}

impl TokenKeys {
    pub fn from_settings(
        settings: &AuthSettings,
        environment: Environment,
    ) -> Result<Self, KeyError> {
        let signing = match (&settings.signing_key, &settings.signing_key_file) {
            (Some(pem), _) => parse_signing_key(pem.expose_secret(), "auth.signing_key")?,
            (None, Some(path)) => parse_signing_key(&read(path)?, "auth.signing_key_file")?,
            (None, None) => {
                // Config validation already refused this in production.
                tracing::warn!(
                    environment = %environment,
                    "no auth.signing_key configured: using a throwaway key; tokens die with this process"
                );
                SigningKey::generate(&mut rand_core::OsRng)
            }
        };
        let mut extra = Vec::new();
        for pem in &settings.verification_keys {
            extra.push(parse_verifying_key(pem, "auth.verification_keys")?);
        }
        for path in &settings.verification_key_files {
            extra.push(parse_verifying_key(
                &read(path)?,
                "auth.verification_key_files",
            )?);
        }
        Self::new(signing, extra, settings)
    }

    fn new(
        signing: SigningKey,
        extra: Vec<VerifyingKey>,
        settings: &AuthSettings,
    ) -> Result<Self, KeyError> {
        let der = signing.to_pkcs8_der().map_err(|err| KeyError::Invalid {
            key: "auth.signing_key",
            reason: err.to_string(),
        })?;
        let signing_jwk = public_jwk(&signing.verifying_key())?;
        let signing_kid = signing_jwk.common.key_id.clone().unwrap_or_default();
        let mut keys = vec![signing_jwk];
        for key in &extra {
            let jwk = public_jwk(key)?;
            if !keys
                .iter()
                .any(|known| known.common.key_id == jwk.common.key_id)
            {
                keys.push(jwk);
            }
        }
        let mut verifying = HashMap::new();
        for jwk in &keys {
            let key = DecodingKey::from_jwk(jwk).map_err(|err| KeyError::Invalid {
                key: "auth.verification_keys",
                reason: err.to_string(),
            })?;
            verifying.insert(jwk.common.key_id.clone().unwrap_or_default(), key);
        }
        Ok(Self {
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            signing_kid,
            verifying,
            jwks: JwkSet { keys },
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
            verified: VerifiedTokens::new(),
        })
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(
        &self,
        user: Uuid,
        role: Role,
        session: Uuid,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: user,
            role,
            sid: session,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.signing)
    }

    /// Accepts only EdDSA tokens signed by a known `kid`, for our issuer and audience, inside
    /// their validity window. `alg: none`, HMAC (whatever the secret) and every other algorithm
    /// fail the algorithm pin before any key is used.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(claims) = self.verified.get(&digest, now) {
            return Ok(claims);
        }
        let claims = self.verify_uncached(token)?;
        self.verified.insert(digest, &claims);
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(TokenError::NotAnAccessToken(header.typ));
        }
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let key = self
            .verifying
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKid(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Ok(jsonwebtoken::decode::<Claims>(token, key, &validation)?.claims)
    }
}

fn read(path: &std::path::Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::File {
        path: path.display().to_string(),
        source,
    })
}

fn parse_signing_key(pem: &str, key: &'static str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|err| KeyError::Invalid {
        key,
        reason: format!("not an Ed25519 private key in PKCS#8 PEM ({err})"),
    })
}

fn parse_verifying_key(pem: &str, key: &'static str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|err| KeyError::Invalid {
        key,
        reason: format!("not an Ed25519 public key in SPKI PEM ({err})"),
    })
}

/// The key's JWK with `kid` set to its RFC 7638 thumbprint: stable, and derived rather than
/// configured, so a kid can never point at the wrong key.
fn public_jwk(key: &VerifyingKey) -> Result<Jwk, KeyError> {
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
        }),
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|err| KeyError::Invalid {
            key: "auth.verification_keys",
            reason: err.to_string(),
        })?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        crate::config::Settings::load_from([(
            "APP_CONFIG_DIR".to_owned(),
            "/nonexistent".to_owned(),
        )])
        .expect("defaults")
        .auth
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let keys = TokenKeys::from_settings(&settings(), Environment::Test).expect("keys");
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(user, Role::Admin, session).expect("token");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(
            (claims.sub, claims.role, claims.sid),
            (user, Role::Admin, session)
        );
        assert_eq!(claims.aud, "keel-api");
    }

    #[test]
    fn only_jwts_typed_as_access_tokens_are_accepted() {
        let keys = TokenKeys::from_settings(&settings(), Environment::Test).expect("keys");
        let token = keys
            .issue(Uuid::new_v4(), Role::Member, Uuid::new_v4())
            .expect("token");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let claims = keys.verify(&token).expect("valid");

        // The same claims and key, typed as some other JWT: refused.
        for typ in [Some("JWT"), None, Some("reset+jwt")] {
            let mut other = Header::new(Algorithm::EdDSA);
            other.kid = header.kid.clone();
            other.typ = typ.map(str::to_owned);
            let forged = jsonwebtoken::encode(&other, &claims, &keys.signing).expect("signed");
            assert!(
                matches!(keys.verify(&forged), Err(TokenError::NotAnAccessToken(_))),
                "{typ:?}"
            );
        }
        let mut media_type = header.clone();
        media_type.typ = Some("application/AT+JWT".to_owned());
        let token = jsonwebtoken::encode(&media_type, &claims, &keys.signing).expect("signed");
        assert!(keys.verify(&token).is_ok());
    }

    #[test]
    fn tokens_from_another_key_are_refused_until_that_key_is_trusted() {
        let settings = settings();
        let old = TokenKeys::from_settings(&settings, Environment::Test).expect("keys");
        let token = old
            .issue(Uuid::new_v4(), Role::Member, Uuid::new_v4())
            .expect("token");
        let new = TokenKeys::from_settings(&settings, Environment::Test).expect("keys");
        assert!(matches!(new.verify(&token), Err(TokenError::UnknownKid(_))));

        // Rotation: the new signer still trusts the old public key.
        let old_x = match &old.jwks().keys[0].algorithm {
            AlgorithmParameters::OctetKeyPair(p) => URL_SAFE_NO_PAD.decode(&p.x).expect("b64"),
            other => panic!("unexpected key {other:?}"),
        };
        let old_public =
            VerifyingKey::from_bytes(&old_x.try_into().expect("32 bytes")).expect("public key");
        let rotated = TokenKeys::new(
            SigningKey::generate(&mut rand_core::OsRng),
            vec![old_public],
            &settings,
        )
        .expect("keys");
        assert!(rotated.verify(&token).is_ok());
        assert_eq!(rotated.jwks().keys.len(), 2);
    }

    #[test]
    fn a_remembered_token_is_served_only_until_its_exp() {
        let keys = TokenKeys::from_settings(&settings(), Environment::Test).expect("keys");
        let token = keys
            .issue(Uuid::new_v4(), Role::Member, Uuid::new_v4())
            .expect("token");
        let claims = keys.verify(&token).expect("valid");
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(
            keys.verified.get(&digest, claims.exp - 1),
            Some(claims.clone())
        );
        assert_eq!(keys.verified.get(&digest, claims.exp), None, "not at exp");
        assert_eq!(
            keys.verified.get(&digest, claims.exp - 1),
            None,
            "and forgotten once past it"
        );
        // A token differing in one signature byte is another entry, verified in full.
        let mut forged = token.into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert!(keys.verify(&forged).is_err());
    }
}
