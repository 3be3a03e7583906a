//! Secrets: age encryption at rest and the one masking function.
//!
//! - [`SecretCipher`] seals secret values for `metadata.json` with one X25519
//!   identity derived from `OH_SECRET_KEY` (never scrypt per secret) and opens
//!   them with the current key, then the previous ones. Without a key, values
//!   are written as `"**********"` and are lost on restart (DECISIONS.md).
//! - [`Masker`] replaces every known secret value with `<secret-hidden>` in
//!   strings and JSON values, in one pass over the text for any number of
//!   secrets; [`StreamMasker`] does the same for text that arrives in pieces.
//!
//! Architecture invariant: every event passes through [`Masker::mask_json`]
//! in the event pipeline before it is written or published.

mod cipher;
mod mask;

pub use cipher::{OpenError, SecretCipher, REDACTED};
pub use mask::{Masker, StreamMasker, SECRET_HIDDEN};
