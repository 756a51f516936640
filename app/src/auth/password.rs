//! Password policy and argon2id hashing, off the async executor with a bounded number in flight.

use std::{
    collections::HashSet,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::{config::Argon2Settings, error::FieldError};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// Every argon2 verification this process ran. Tests read it to prove that a login for an
/// unknown email does the same work as one for a known email.
static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// NIST SP 800-63B: length limits and a blocklist, no composition rules. A password is also
/// refused when it is a listed one with digits appended ("password2024").
pub fn check_policy(password: &str, field: &str) -> Result<(), FieldError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    let lowered = password.to_lowercase();
    let stem = lowered.trim_end_matches(|c: char| c.is_ascii_digit());
    let repeated = lowered.chars().all(|c| lowered.starts_with(c));
    if COMMON_PASSWORDS.contains(lowered.as_str()) || COMMON_PASSWORDS.contains(stem) || repeated {
        return Err(FieldError::new(
            field,
            "is too common; choose a less predictable password",
        ));
    }
    Ok(())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The hash was made with other parameters than the configured ones; rehash it now that the
    /// password is known.
    pub outdated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and verifies passwords. Each operation holds `memory_kib` and one core for tens of
/// milliseconds, so they run on the blocking pool behind a semaphore: a login storm queues
/// instead of starving the executor or exhausting memory.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so both paths cost the same.
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub fn new(settings: Argon2Settings, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|err| HashError::Argon2(err.to_string()))?;
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let dummy_hash = hasher(&params)
            .hash_password(b"no user has this password: it only makes unknown emails cost the same")
            .map_err(|err| HashError::Argon2(err.to_string()))?
            .to_string();
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run(move || {
            hasher(&params)
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| HashError::Argon2(err.to_string()))
        })
        .await
    }

    /// Verifies against `stored`, or against a dummy hash when there is none (unknown email).
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        self.run(move || {
            VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
            let parsed =
                PasswordHash::new(&stored).map_err(|err| HashError::Argon2(err.to_string()))?;
            let matches = hasher(&params)
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            let outdated = Params::try_from(&parsed).map_or(true, |used| {
                (used.m_cost(), used.t_cost(), used.p_cost())
                    != (params.m_cost(), params.t_cost(), params.p_cost())
            });
            Ok(Verified {
                matches: matches && known,
                outdated,
            })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|err| HashError::Argon2(err.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await?
    }
}

fn hasher(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(
            Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .expect("valid params")
    }

    #[test]
    fn policy_follows_nist_rather_than_composition_rules() {
        assert!(check_policy("correct horse battery staple", "password").is_ok());
        assert!(check_policy("alllowercaseletters", "password").is_ok());
        assert!(check_policy("short", "password").is_err());
        assert!(check_policy(&"x".repeat(129), "password").is_err());
        assert!(check_policy("qwerty123456", "password").is_err());
        assert!(check_policy("Password20242024", "password").is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", "password").is_err());
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let passwords = cheap();
        let hash = passwords
            .hash("a fine long password".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let ok = passwords
            .verify("a fine long password".into(), Some(hash.clone()))
            .await
            .expect("verify");
        assert_eq!(
            ok,
            Verified {
                matches: true,
                outdated: false
            }
        );
        let wrong = passwords
            .verify("another password".into(), Some(hash))
            .await
            .expect("verify");
        assert!(!wrong.matches);
    }

    #[tokio::test]
    async fn unknown_users_cost_a_real_verification_and_never_match() {
        let passwords = cheap();
        let before = verifications();
        let result = passwords
            .verify("anything at all".into(), None)
            .await
            .expect("verify");
        assert!(!result.matches);
        assert_eq!(verifications(), before + 1);
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_are_flagged_for_upgrade() {
        let old = cheap()
            .hash("a fine long password".into())
            .await
            .expect("hash");
        let stronger = Passwords::new(
            Argon2Settings {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            1,
        )
        .expect("params");
        let result = stronger
            .verify("a fine long password".into(), Some(old))
            .await
            .expect("verify");
        assert_eq!(
            result,
            Verified {
                matches: true,
                outdated: true
            }
        );
    }
}
