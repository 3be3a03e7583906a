//! Sealing secret values for the disk with age.

use std::io::{Read, Write};

use base64::Engine;
use bech32::{Bech32, Hrp};
use sha2::{Digest, Sha256};

/// What a secret becomes on disk, in WebSocket state and in logs when it
/// cannot or must not be shown.
pub const REDACTED: &str = "**********";

/// Prefix of our sealed values: `age:` + base64 of the binary age file.
const SEALED_PREFIX: &str = "age:";

/// Domain separation for the key derivation, so the same `OH_SECRET_KEY`
/// used elsewhere never yields the same X25519 key.
const KDF_CONTEXT: &[u8] = b"agent-server/secrets-at-rest/v1\0";

/// Why a stored value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// It was written without a key (`"**********"`): the value is gone.
    Redacted,
    /// It is sealed but no configured key opens it.
    WrongKey,
    /// It looks sealed but is not valid age data.
    Corrupt,
    /// A Fernet token from the Python server (`gAAAAA…`), which we cannot read.
    Fernet,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Redacted => write!(f, "the value was stored without a secret key"),
            OpenError::WrongKey => write!(f, "no configured secret key decrypts the value"),
            OpenError::Corrupt => write!(f, "the encrypted value is corrupt"),
            OpenError::Fernet => write!(
                f,
                "the value is a Fernet token, which this server cannot decrypt"
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// Seals and opens secret values. Cheap to share behind an `Arc`.
pub struct SecretCipher {
    /// Identity from `OH_SECRET_KEY`; `None` when secrets are not persisted.
    current: Option<age::x25519::Identity>,
    /// The current identity's public half, the recipient of every new seal.
    recipient: Option<age::x25519::Recipient>,
    /// Identities of `previous_secret_keys`, tried after the current one.
    previous: Vec<age::x25519::Identity>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("has_key", &self.current.is_some())
            .field("previous_keys", &self.previous.len())
            .finish()
    }
}

/// Derives the X25519 identity for a key string: SHA-256 of a context label
/// and the key, encoded as an `AGE-SECRET-KEY-1…` string age can parse.
fn derive_identity(key: &str) -> Option<age::x25519::Identity> {
    let mut h = Sha256::new();
    h.update(KDF_CONTEXT);
    h.update(key.as_bytes());
    let bytes = h.finalize();
    let hrp = Hrp::parse("AGE-SECRET-KEY-").ok()?;
    let encoded = bech32::encode_upper::<Bech32>(hrp, &bytes).ok()?;
    encoded.parse::<age::x25519::Identity>().ok()
}

impl SecretCipher {
    /// A cipher for `key` (blank means none) and older keys for decryption.
    pub fn new(key: Option<&str>, previous: &[String]) -> Self {
        let current = key
            .filter(|k| !k.trim().is_empty())
            .and_then(derive_identity);
        let recipient = current.as_ref().map(|i| i.to_public());
        let previous = previous
            .iter()
            .filter(|k| !k.trim().is_empty())
            .filter_map(|k| derive_identity(k))
            .collect();
        SecretCipher {
            current,
            recipient,
            previous,
        }
    }

    /// The cipher of the server's configuration (`secret_key`,
    /// `previous_secret_keys`). Without a key, logs the one start-up warning
    /// that secrets will not survive a restart.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let cipher = Self::new(config.secret_key.as_deref(), &config.previous_secret_keys);
        if !cipher.has_key() {
            tracing::warn!(
                "OH_SECRET_KEY is not set: secrets and LLM API keys are stored redacted and are lost on restart"
            );
        }
        cipher
    }

    /// A cipher without a key: every value is redacted on disk.
    pub fn without_key() -> Self {
        Self::new(None, &[])
    }

    /// Whether values survive a restart.
    pub fn has_key(&self) -> bool {
        self.current.is_some()
    }

    /// Whether `s` is one of our sealed values.
    pub fn is_sealed(s: &str) -> bool {
        s.starts_with(SEALED_PREFIX)
    }

    /// Whether `s` looks like a Fernet token of the Python server.
    pub fn is_fernet(s: &str) -> bool {
        s.starts_with("gAAAAA")
    }

    /// The on-disk form of a value: sealed with the current key, or
    /// `"**********"` without one.
    pub fn seal(&self, plain: &str) -> String {
        let Some(recipient) = &self.recipient else {
            return REDACTED.to_string();
        };
        let sealed = (|| -> Option<Vec<u8>> {
            let enc =
                age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                    .ok()?;
            let mut out = Vec::with_capacity(plain.len() + 200);
            let mut w = enc.wrap_output(&mut out).ok()?;
            w.write_all(plain.as_bytes()).ok()?;
            w.finish().ok()?;
            Some(out)
        })();
        match sealed {
            Some(bytes) => format!(
                "{SEALED_PREFIX}{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
            // Encryption to a valid X25519 recipient does not fail; if it
            // ever did, losing the value beats writing it in the clear.
            None => REDACTED.to_string(),
        }
    }

    /// Reads a stored value: sealed values are decrypted with the current
    /// key, then the previous ones; anything else that is not a redaction
    /// marker is taken as plaintext.
    pub fn open(&self, stored: &str) -> Result<String, OpenError> {
        if stored == REDACTED {
            return Err(OpenError::Redacted);
        }
        let Some(b64) = stored.strip_prefix(SEALED_PREFIX) else {
            if Self::is_fernet(stored) {
                return Err(OpenError::Fernet);
            }
            return Ok(stored.to_string());
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| OpenError::Corrupt)?;
        let identities = self.current.iter().chain(self.previous.iter());
        let mut any = false;
        for id in identities {
            any = true;
            let Ok(dec) = age::Decryptor::new(&bytes[..]) else {
                return Err(OpenError::Corrupt);
            };
            if let Ok(mut r) = dec.decrypt(std::iter::once(id as &dyn age::Identity)) {
                let mut out = Vec::new();
                if r.read_to_end(&mut out).is_ok() {
                    return String::from_utf8(out).map_err(|_| OpenError::Corrupt);
                }
            }
        }
        if !any {
            return Err(OpenError::WrongKey);
        }
        Err(OpenError::WrongKey)
    }

    /// Opens a value a client sent with `secrets_encrypted: true`: it must be
    /// our own sealed form.
    pub fn open_client_sealed(&self, value: &str) -> Result<String, OpenError> {
        if Self::is_fernet(value) {
            return Err(OpenError::Fernet);
        }
        if !Self::is_sealed(value) {
            return Err(OpenError::Corrupt);
        }
        self.open(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_current_and_previous_keys() {
        let c = SecretCipher::new(Some("k1"), &[]);
        let sealed = c.seal("sk-very-secret");
        assert!(SecretCipher::is_sealed(&sealed));
        assert!(!sealed.contains("sk-very-secret"));
        assert_eq!(c.open(&sealed).unwrap(), "sk-very-secret");
        // Two seals of one value differ (fresh ephemeral key), both open.
        assert_ne!(c.seal("x"), c.seal("x"));
        // Rotation: the new key with the old one as previous still opens it.
        let rotated = SecretCipher::new(Some("k2"), &["k1".to_string()]);
        assert_eq!(rotated.open(&sealed).unwrap(), "sk-very-secret");
        let other = SecretCipher::new(Some("k3"), &[]);
        assert_eq!(other.open(&sealed), Err(OpenError::WrongKey));
        assert_eq!(
            SecretCipher::without_key().open(&sealed),
            Err(OpenError::WrongKey)
        );
        assert_eq!(c.open("age:!!!"), Err(OpenError::Corrupt));
        assert_eq!(c.open("gAAAAABtoken"), Err(OpenError::Fernet));
    }

    #[test]
    fn without_a_key_values_are_redacted() {
        let c = SecretCipher::new(Some("  "), &[]);
        assert!(!c.has_key());
        assert_eq!(c.seal("v"), REDACTED);
        assert_eq!(c.open(REDACTED), Err(OpenError::Redacted));
        assert_eq!(c.open("plain").unwrap(), "plain");
    }
}
