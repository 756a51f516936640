//! Request and response types. Requests are parsed into domain values once, at the edge.

use poem_openapi::Object;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    auth::{
        Role,
        password::{self, NewPassword},
    },
    error::ApiError,
    text::{Line, Plain, Text, TextRule},
};

/// A login email: `local@domain.tld`, no spaces or control characters, at most 254 characters.
/// The pattern and length are the whole of email validation: the only real proof of an address
/// is mail reaching it. Unique regardless of case (the `users_email_key` index).
pub struct EmailRule;

impl TextRule for EmailRule {
    const MIN_LENGTH: usize = 3;
    const MAX_LENGTH: usize = 254;
    const PATTERN: &'static str = concat!(
        r"^[^@ \u0000-\u001f\u007f-\u009f]+@",
        r"[^@. \u0000-\u001f\u007f-\u009f]+(\.[^@. \u0000-\u001f\u007f-\u009f]+)+$"
    );
    const PATTERN_MESSAGE: &'static str = "is not an email address";
}

pub type Email = Text<EmailRule>;
pub type DisplayName = Text<Line<100>>;
/// Whatever a client sends to prove a password: any length up to 1024 (a wrong one is a 401).
pub type GivenPassword = Text<Plain<0, 1024>>;

#[derive(Object)]
pub struct RegisterRequest {
    /// Login email, unique regardless of case.
    pub email: Email,
    /// 12 to 128 characters; common passwords are refused. No composition rules.
    pub password: NewPassword,
    pub display_name: DisplayName,
}

/// A registration that passed every rule: only `parse` makes one.
pub struct NewUser {
    pub email: Email,
    pub display_name: DisplayName,
    pub password: SecretString,
}

impl NewUser {
    /// The types checked everything the schema states; what is left is the blocklist.
    pub fn parse(request: RegisterRequest) -> Result<Self, ApiError> {
        password::check_policy(request.password.as_str(), "/password")
            .map_err(|error| ApiError::Validation(vec![error]))?;
        Ok(Self {
            email: request.email,
            display_name: request.display_name,
            password: request.password.into_inner().into(),
        })
    }
}

#[derive(Object)]
pub struct LoginRequest {
    // Not an `Email`: a malformed address is answered like a wrong password.
    pub email: Text<Plain<0, 254>>,
    pub password: GivenPassword,
}

#[derive(Object)]
pub struct RefreshRequest {
    /// A refresh token from login or an earlier refresh; each can be used once.
    pub refresh_token: Text<Plain<0, 256>>,
}

#[derive(Object)]
pub struct ChangePasswordRequest {
    pub current_password: GivenPassword,
    /// Same rules as at registration.
    pub new_password: NewPassword,
}

#[derive(Object)]
pub struct PasswordResetRequest {
    /// The account's login email, in any case. Whether an account has it is never said.
    pub email: Email,
}

#[derive(Object)]
pub struct PasswordResetConfirmation {
    /// The token from the reset email (the `token` parameter of its link). It works once, and
    /// only until it expires.
    pub token: Text<Plain<0, 256>>,
    /// Same rules as at registration.
    pub new_password: NewPassword,
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

    #[test]
    fn emails_are_one_address() {
        for valid in [
            "ada@example.com",
            "Ada.Lovelace+x@mail.example.co.uk",
            "é@ü.de",
        ] {
            assert!(Email::parse(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "not-an-email",
            "a@b",
            "a@b.",
            "a@.b",
            "a@b..c",
            "a b@c.d",
            " a@b.c",
            "a@@b.c",
            "a\u{7}@b.c",
        ] {
            assert!(Email::parse(invalid).is_err(), "{invalid:?}");
        }
    }

    #[test]
    fn common_passwords_are_refused_after_the_types_passed() {
        let request = |password: &str| RegisterRequest {
            email: Email::parse("ada@example.com").expect("valid"),
            password: NewPassword::parse(password).expect("long enough"),
            display_name: DisplayName::parse(" Ada ").expect("valid"),
        };
        let user = NewUser::parse(request("analytical engine 1843")).expect("valid");
        assert_eq!(user.display_name.as_str(), "Ada");
        let Err(ApiError::Validation(errors)) = NewUser::parse(request("password123456")) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "/password");
    }

    proptest::proptest! {
        #[test]
        fn emails_agree_with_their_schema(value in "[a@. \u{0}\u{7f}é]{0,10}") {
            crate::text::tests::schema_and_check_agree::<EmailRule>(&value);
        }
    }
}
