//! Small crypto helpers on aws-lc-rs: sealing secrets at rest, hashing tokens, random values,
//! and the AES-128-CBC that WeChat uses for Mini Program `encryptedData`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// A crypto operation failed (bad key, bad ciphertext, or bad padding).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CryptoError(pub &'static str);

/// `n` random bytes from the system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("system random source failed");
    out
}

/// A random token of 32 bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
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

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// SHA-1 of `data`, hex (WeChat's webhook signature).
pub fn sha1_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref())
}

/// Compares two byte strings in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// AES-128-CBC with PKCS#7 decryption, as WeChat's `encryptedData` uses
/// (key = base64 session_key, iv = base64 iv).
pub fn aes128_cbc_decrypt(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| CryptoError("iv must be 16 bytes"))?;
    let key =
        UnboundCipherKey::new(&AES_128, key).map_err(|_| CryptoError("key must be 16 bytes"))?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| CryptoError("bad key"))?;
    let mut in_out = ciphertext.to_vec();
    let plain = key
        .decrypt(&mut in_out, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| CryptoError("ciphertext does not decrypt with this key and iv"))?;
    Ok(plain.to_vec())
}

/// AES-128-CBC with PKCS#7 encryption (the sandbox and tests play WeChat with it).
pub fn aes128_cbc_encrypt(
    key: &[u8],
    iv: &[u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key =
        UnboundCipherKey::new(&AES_128, key).map_err(|_| CryptoError("key must be 16 bytes"))?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| CryptoError("bad key"))?;
    let mut in_out = plaintext.to_vec();
    key.less_safe_encrypt(&mut in_out, EncryptionContext::Iv128((*iv).into()))
        .map_err(|_| CryptoError("encryption failed"))?;
    Ok(in_out)
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
    fn wechat_documented_vector_decrypts() {
        // The sample from WeChat's "开放数据校验与解密" documentation.
        let key = STANDARD.decode("tiihtNczf5v6AKRyjwEUhQ==").unwrap();
        let iv = STANDARD.decode("r7BXXKkLb8qrSNn05n0qiA==").unwrap();
        let data = STANDARD.decode("CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==").unwrap();
        let plain = aes128_cbc_decrypt(&key, &iv, &data).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["nickName"], "Band");
        assert_eq!(v["watermark"]["appid"], "wx4f4bc4dec97d474b");
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

    #[test]
    fn cbc_round_trips_and_rejects_wrong_key() {
        let key = [3u8; 16];
        let iv = [9u8; 16];
        let ct = aes128_cbc_encrypt(&key, &iv, b"{\"a\":1}").unwrap();
        assert_eq!(aes128_cbc_decrypt(&key, &iv, &ct).unwrap(), b"{\"a\":1}");
        let wrong = aes128_cbc_decrypt(&[4u8; 16], &iv, &ct);
        assert!(wrong.is_err() || wrong.unwrap() != b"{\"a\":1}");
    }
}
