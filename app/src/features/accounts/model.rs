//! Request and response types. Requests are parsed into domain values once, at the edge.

use poem_openapi::Object;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    auth::{Role, password},
    error::{ApiError, FieldError},
};

#[derive(Object)]
pub struct RegisterRequest {
    /// Login email, unique regardless of case. The pattern and length are the whole of email
    /// validation: the only real proof of an address is mail reaching it.
    #[oai(validator(max_length = 254, pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))]
    pub email: String,
    /// 12 to 128 characters; common passwords are refused. No composition rules.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub password: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub display_name: String,
}

/// A registration that passed every rule: only `parse` makes one.
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password: SecretString,
}

impl NewUser {
    pub fn parse(request: RegisterRequest) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let email = request.email.trim().to_owned();
        if !looks_like_email(&email) {
            errors.push(FieldError::new("/email", "is not an email address"));
        }
        let display_name = request.display_name.trim().to_owned();
        if display_name.is_empty() {
            errors.push(FieldError::new("/display_name", "must not be blank"));
        } else if display_name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "/display_name",
                "must not contain control characters",
            ));
        }
        if let Err(error) = password::check_policy(&request.password, "/password") {
            errors.push(error);
        }
        if errors.is_empty() {
            Ok(Self {
                email,
                display_name,
                password: request.password.into(),
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The schema's pattern (`x@y.z`, no spaces), checked again after trimming.
pub(super) fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let plain = |part: &str| {
        !part.is_empty()
            && !part.contains('@')
            && !part.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    plain(local)
        && plain(domain)
        && domain
            .split_once('.')
            .is_some_and(|(host, rest)| !host.is_empty() && !rest.is_empty())
        && !domain.ends_with('.')
}

#[derive(Object)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

#[derive(Object)]
pub struct RefreshRequest {
    /// A refresh token from login or an earlier refresh; each can be used once.
    #[oai(validator(max_length = 256))]
    pub refresh_token: String,
}

#[derive(Object)]
pub struct ChangePasswordRequest {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// Same rules as at registration.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub new_password: String,
}

/// A fresh access token and the refresh token that replaces it when it expires.
#[derive(Object)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque and single-use: `POST /auth/refresh` spends it and returns a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, Object)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

/// A public key that verifies access tokens (RFC 7517).
#[derive(Debug, Object)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key's RFC 7638 thumbprint; tokens name their key with it.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    pub key_use: String,
}

#[derive(Debug, Object)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(email: &str, password: &str, name: &str) -> RegisterRequest {
        RegisterRequest {
            email: email.into(),
            password: password.into(),
            display_name: name.into(),
        }
    }

    #[test]
    fn valid_registrations_parse() {
        let user = NewUser::parse(request(
            " Ada@Example.com ",
            "analytical engine 1843",
            " Ada ",
        ))
        .expect("valid");
        assert_eq!(user.email, "Ada@Example.com");
        assert_eq!(user.display_name, "Ada");
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let Err(ApiError::Validation(errors)) =
            NewUser::parse(request("not-an-email", "password123456", "  "))
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/email", "/display_name", "/password"]);
    }
}
