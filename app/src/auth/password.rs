//! Password policy and argon2id hashing, off the async executor with a bounded number in flight.

use std::{
    collections::HashSet,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::{config::Argon2Settings, error::FieldError};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

/// A password being set: the length is in the schema; the blocklist is [`check_policy`]'s.
pub type NewPassword = crate::text::Text<crate::text::Plain<{ MIN_LENGTH }, { MAX_LENGTH }>>;

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
    /// More requests are already waiting to hash than the queue limit allows.
    #[error("too many password hashes are waiting")]
    Busy,
}

/// Hashes and verifies passwords. Each operation holds `memory_kib` and one core for tens of
/// milliseconds, so they run on the blocking pool behind a semaphore: a login storm queues
/// instead of starving the executor.
///
/// Each permit owns one argon2 memory buffer, reused from call to call. Allocating 19 MiB per
/// hash instead fragments the allocator's heap: measured, a login flood on two permits left
/// the process at ~500 MB resident (1.3 GB with fewer malloc arenas) rather than ~60 MB.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Verified against when the email is unknown, so both paths cost the same.
    dummy_hash: Arc<str>,
    /// Requests waiting for a permit now, and how many may: beyond it a request is turned
    /// away at once (429) instead of queueing without bound behind a flood.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
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
        let dummy_hash = dummy_hash(&params)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            buffers: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: dummy_hash.into(),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: usize::MAX,
        })
    }

    /// At most `max_waiting` requests wait for a hashing permit; more get [`HashError::Busy`].
    pub fn with_queue_limit(self, max_waiting: usize) -> Self {
        Self {
            max_waiting,
            ..self
        }
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run("hash", move |memory| {
            hash_with(&params, password.expose_secret().as_bytes(), memory)
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
        let configured = self.params.clone();
        self.run("verify", move |memory| {
            VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
            let (matches, used) =
                verify_with(&stored, password.expose_secret().as_bytes(), memory)?;
            let outdated = (used.m_cost(), used.t_cost(), used.p_cost())
                != (
                    configured.m_cost(),
                    configured.t_cost(),
                    configured.p_cost(),
                );
            Ok(Verified {
                matches: matches && known,
                outdated,
            })
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free. Traced as a span with two
    /// children, the wait for a permit and the computation, so a slow login shows which one.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let span = tracing::info_span!("password", password.operation = operation);
        async move {
            let permit = match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // Counted down on drop, so a request abandoned while it waits frees its place.
                    let _place = Waiting::join(&self.waiting, self.max_waiting)?;
                    self.permits
                        .clone()
                        .acquire_owned()
                        .instrument(tracing::info_span!("password queue wait"))
                        .await
                        .map_err(|err| HashError::Argon2(err.to_string()))?
                }
            };
            let buffers = self.buffers.clone();
            let block_count = self.params.block_count();
            let compute = tracing::info_span!("argon2id", password.operation = operation);
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _compute = compute.entered();
                // At most one buffer per permit exists, so this allocates only until every
                // permit has been used once.
                let mut memory = lock(&buffers)
                    .pop()
                    .unwrap_or_else(|| vec![Block::new(); block_count]);
                let result = work(&mut memory);
                lock(&buffers).push(memory);
                result
            })
            .await?
        }
        .instrument(span)
        .await
    }
}

/// A place in the hashing queue.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(waiting: &'a AtomicUsize, max: usize) -> Result<Self, HashError> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= max {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        Ok(Self(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock(buffers: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    buffers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn argon2_error(err: impl std::fmt::Display) -> HashError {
    HashError::Argon2(err.to_string())
}

/// A PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) made in `memory`.
fn hash_with(
    params: &Params,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    compute(&argon2, params, password, salt.as_ref(), &mut out, memory)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(argon2_error)?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(argon2_error)?),
    };
    Ok(hash.to_string())
}

/// A well-formed argon2id hash of `params` with a random salt and a random output, which no
/// password can match. Verifying against it costs exactly what verifying against a real hash
/// of the same parameters costs — the work is the same computation, only the final comparison
/// fails — so nothing needs hashing at start-up (which took 40 ms and left a 19 MiB buffer
/// behind in every idle replica).
fn dummy_hash(params: &Params) -> Result<String, HashError> {
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut out);
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(argon2_error)?,
        salt: Some(Salt::generate()),
        hash: Some(Output::new(&out).map_err(argon2_error)?),
    };
    Ok(hash.to_string())
}

/// Runs argon2 in `memory`, first growing it if `params` need more blocks than it holds.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), HashError> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut memory[..params.block_count()])
        .map_err(argon2_error)
}

/// Recomputes `stored` with its own parameters in `memory` (grown if those need more) and
/// compares in constant time. Returns whether it matched and the parameters it used.
fn verify_with(
    stored: &str,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<(bool, Params), HashError> {
    let parsed = PasswordHash::new(stored).map_err(argon2_error)?;
    let params = Params::try_from(&parsed).map_err(argon2_error)?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(argon2_error)?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(argon2_error)?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Argon2(
            "stored hash has no salt or output".into(),
        ));
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(&argon2, &params, password, salt.as_ref(), &mut out, memory)?;
    let actual = Output::new(&out).map_err(argon2_error)?;
    Ok((actual == expected, params))
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
    async fn beyond_the_queue_limit_hashing_is_refused_at_once() {
        let passwords = Passwords::new(
            Argon2Settings {
                memory_kib: 8192,
                iterations: 4,
                parallelism: 1,
            },
            1,
        )
        .expect("valid params")
        .with_queue_limit(1);
        // One hashes, one waits, the rest are turned away without waiting.
        let attempts = (0..6).map(|_| passwords.hash("a queue of passwords".to_owned().into()));
        let results = futures_util::future::join_all(attempts).await;
        let busy = results
            .iter()
            .filter(|result| matches!(result, Err(HashError::Busy)))
            .count();
        assert!(busy >= 4, "{busy} of 6 refused");
        assert!(results.iter().filter(|result| result.is_ok()).count() >= 1);
        // The queue empties again: later hashes go through.
        assert!(
            passwords
                .hash("after the flood".to_owned().into())
                .await
                .is_ok()
        );
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
