//! Small crypto helpers on aws-lc-rs: sealing secrets at rest, signing short values, random
//! tokens. The primitives WeChat's protocols need too (random bytes, hex, SHA-256, constant-time
//! comparison, AES-128-CBC, the JS-SDK signature) live in the WeChat client crate; those the service uses are
//! re-exported here, so the service has one `crypto` module and there is one copy of each.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
pub use wechat_client::crypto::{
    CryptoError, aes128_cbc_encrypt, constant_time_eq, hex, js_sdk_signature, random_bytes,
    sha256_hex,
};

/// A random token of 32 bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Decodes hex (either case); `None` if it is not.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Parses a base64 key of 32 bytes (surrounding whitespace allowed).
pub fn key_from_base64(b64: &str) -> Result<[u8; 32], CryptoError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| CryptoError("key is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| CryptoError("key must be 32 bytes"))
}

/// Seals short secrets (WeChat session keys) at rest with AES-256-GCM.
/// Sealed form: base64(nonce ‖ ciphertext ‖ tag).
pub struct SecretBox {
    key: LessSafeKey,
}

impl SecretBox {
    /// A box with this 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        let key =
            UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is valid for AES-256-GCM");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    /// Seals `plaintext`, binding it to `context` (e.g. the identity's app and openid).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut in_out,
            )
            .expect("AES-GCM sealing of a short value cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&in_out);
        STANDARD.encode(out)
    }

    /// Opens what [`SecretBox::seal`] sealed with the same context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| CryptoError("sealed value is not base64"))?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError("sealed value too short"));
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError("bad nonce"))?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut rest)
            .map_err(|_| CryptoError("sealed value does not open with this key"))?;
        Ok(plain.to_vec())
    }
}

/// HMAC-SHA256 with a 32-byte key: `derive(master, label)` makes a purpose-bound key from the
/// service's master key, so one secret in the config serves several uses.
pub fn derive_key(master: &[u8; 32], label: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, master);
    let tag = hmac::sign(&key, label.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Signs and checks short values (OA authorization states) with HMAC-SHA256.
pub struct Signer {
    key: hmac::Key,
}

impl Signer {
    /// A signer with this key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The first `N` bytes of the HMAC of `data`.
    pub fn tag<const N: usize>(&self, data: &[u8]) -> [u8; N] {
        let tag = hmac::sign(&self.key, data);
        let mut out = [0u8; N];
        out.copy_from_slice(&tag.as_ref()[..N]);
        out
    }

    /// Whether `tag` is the first bytes of the HMAC of `data` (constant time).
    pub fn check(&self, data: &[u8], tag: &[u8]) -> bool {
        let full = hmac::sign(&self.key, data);
        tag.len() >= 16 && tag.len() <= 32 && constant_time_eq(&full.as_ref()[..tag.len()], tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_context() {
        let b = SecretBox::new(&[7u8; 32]);
        let sealed = b.seal(b"session-key", b"wxapp:openid");
        assert!(!sealed.contains("session-key"));
        assert_eq!(b.open(&sealed, b"wxapp:openid").unwrap(), b"session-key");
        assert!(b.open(&sealed, b"wxapp:other").is_err());
        assert!(
            SecretBox::new(&[8u8; 32])
                .open(&sealed, b"wxapp:openid")
                .is_err()
        );
    }

    #[test]
    fn signer_tags_check_and_keys_are_purpose_bound() {
        let master = [5u8; 32];
        let a = Signer::new(&derive_key(&master, "oauth-state"));
        let b = Signer::new(&derive_key(&master, "something-else"));
        let tag = a.tag::<16>(b"state-id|wxapp");
        assert!(a.check(b"state-id|wxapp", &tag));
        assert!(!a.check(b"state-id|wxother", &tag));
        assert!(!b.check(b"state-id|wxapp", &tag));
        assert!(
            !a.check(b"state-id|wxapp", &tag[..8]),
            "short tags are refused"
        );
    }
}
