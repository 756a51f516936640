//! Signing secrets: made here, shown once, kept encrypted, and used to sign per Standard
//! Webhooks.
//!
//! A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is those bytes. At rest it is
//! sealed with ChaCha20-Poly1305 under a configured key (`webhooks.encryption_keys`, chosen by
//! `webhooks.active_key`), with the subscription id as associated data, so neither a database
//! dump nor a ciphertext copied onto another row yields a usable secret.

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _, Nonce,
    aead::{Aead as _, Payload},
};
use hmac::{Hmac, Mac as _};
use rand_core::{OsRng, RngCore as _};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::WebhookSettings;

const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// A signing secret's key bytes.
pub struct SigningKey(SecretBox<Vec<u8>>);

impl SigningKey {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// The `whsec_...` form a subscriber is shown once.
    pub fn to_whsec(&self) -> SecretString {
        format!("{PREFIX}{}", STANDARD.encode(self.0.expose_secret())).into()
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one entry of `webhook-signature`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The configured encryption keys, decoded.
pub struct Vault {
    keys: HashMap<String, ChaCha20Poly1305>,
    active: String,
}

/// A sealed secret and the key id that opens it.
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no encryption key {0:?} is configured (webhooks.encryption_keys)")]
    UnknownKey(String),
    #[error("the secret does not decrypt: wrong key, or the row was altered")]
    Corrupt,
}

impl Vault {
    /// Keys were validated with the configuration (32 bytes of base64 each).
    pub fn new(settings: &WebhookSettings) -> Self {
        let keys = settings
            .encryption_keys
            .iter()
            .filter_map(|(id, key)| {
                let bytes = STANDARD.decode(key.expose_secret().trim()).ok()?;
                let cipher = ChaCha20Poly1305::new_from_slice(&bytes).ok()?;
                Some((id.clone(), cipher))
            })
            .collect();
        Self {
            keys,
            active: settings.active_key.clone(),
        }
    }

    pub fn seal(&self, subscription: Uuid, key: &SigningKey) -> Result<Sealed, VaultError> {
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| VaultError::UnknownKey(self.active.clone()))?;
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: key.0.expose_secret(),
                    aad: subscription.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend_from_slice(&sealed);
        Ok(Sealed {
            ciphertext,
            key_id: self.active.clone(),
        })
    }

    pub fn open(&self, subscription: Uuid, sealed: &Sealed) -> Result<SigningKey, VaultError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.ciphertext.len() < NONCE_BYTES {
            return Err(VaultError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.ciphertext.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| VaultError::Corrupt)?;
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: subscription.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        Ok(SigningKey(SecretBox::new(Box::new(plain))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(keys: &[(&str, &str)], active: &str) -> WebhookSettings {
        WebhookSettings {
            encryption_keys: keys
                .iter()
                .map(|(id, key)| ((*id).to_owned(), (*key).to_owned().into()))
                .collect(),
            active_key: active.to_owned(),
            require_https: false,
            allowed_networks: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
            retry_schedule: Vec::new(),
            secret_rotation_grace: std::time::Duration::from_secs(60),
        }
    }

    const KEY_1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_2: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example in the Standard Webhooks specification, verified by its reference
        // libraries: an independent check of the byte layout and encodings.
        let secret = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let key = SigningKey(SecretBox::new(Box::new(secret)));
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_row() {
        let vault = Vault::new(&settings(&[("k1", KEY_1)], "k1"));
        let key = SigningKey::generate();
        let row = Uuid::now_v7();
        let sealed = vault.seal(row, &key).expect("seal");
        assert!(
            !sealed
                .ciphertext
                .windows(SECRET_BYTES)
                .any(|window| window == key.0.expose_secret().as_slice())
        );
        let opened = vault.open(row, &sealed).expect("open");
        assert_eq!(opened.0.expose_secret(), key.0.expose_secret());
        // Moved to another row: refused.
        assert!(matches!(
            vault.open(Uuid::now_v7(), &sealed),
            Err(VaultError::Corrupt)
        ));
        // Under another key of the same id: refused.
        let other = Vault::new(&settings(&[("k1", KEY_2)], "k1"));
        assert!(matches!(other.open(row, &sealed), Err(VaultError::Corrupt)));
    }

    #[test]
    fn rotation_keeps_old_rows_readable_and_seals_new_ones_with_the_active_key() {
        let old = Vault::new(&settings(&[("k1", KEY_1)], "k1"));
        let row = Uuid::now_v7();
        let sealed = old.seal(row, &SigningKey::generate()).expect("seal");
        let rotated = Vault::new(&settings(&[("k1", KEY_1), ("k2", KEY_2)], "k2"));
        assert!(rotated.open(row, &sealed).is_ok());
        assert_eq!(
            rotated
                .seal(row, &SigningKey::generate())
                .expect("seal")
                .key_id,
            "k2"
        );
        let dropped = Vault::new(&settings(&[("k2", KEY_2)], "k2"));
        assert!(
            matches!(dropped.open(row, &sealed), Err(VaultError::UnknownKey(id)) if id == "k1")
        );
    }

    #[test]
    fn the_whsec_form_carries_the_key_bytes() {
        let key = SigningKey::generate();
        let shown = key.to_whsec();
        let encoded = shown.expose_secret().strip_prefix(PREFIX).expect("prefix");
        assert_eq!(
            &STANDARD.decode(encoded).expect("base64"),
            key.0.expose_secret()
        );
    }
}
