//! The crypto WeChat's protocols need, on aws-lc-rs: random bytes, hex, SHA-1 and SHA-256,
//! constant-time comparison, the AES-128-CBC that WeChat uses for Mini Program
//! `encryptedData`, the HMAC-SHA256 signature of a session key (`/wxa/checksession`) and the
//! SHA-1 signature of a page's JS-SDK config (`wx.config`).
//! (The webhook's AES-256-CBC is in [`crate::webhook`].)

use aws_lc_rs::cipher::{
    AES_128, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::{digest, hmac};

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

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// SHA-1 of `data`, hex (WeChat's webhook signature).
pub fn sha1_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref())
}

/// The signature `/wxa/checksession` takes for a session key: lower-case hex of HMAC-SHA256
/// over the empty message, keyed with the session key's text as WeChat hands it out (the base64,
/// not the bytes it decodes to).
pub fn session_signature(session_key: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, session_key.as_bytes());
    hex(hmac::sign(&key, b"").as_ref())
}

/// The signature of a page's `wx.config` (JS-SDK): lower-case hex of SHA-1 over
/// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, `url` being the page URL without its `#`
/// fragment, not escaped (see [`crate::js_sdk::signed_url`]).
pub fn js_sdk_signature(ticket: &str, nonce_str: &str, timestamp: i64, url: &str) -> String {
    let plain =
        format!("jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}");
    sha1_hex(plain.as_bytes())
}

/// Compares two byte strings in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
pub(crate) mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// The sample of WeChat's "开放数据校验与解密" documentation (and of its WXBizDataCrypt
    /// SDKs): a user-info `encryptedData` of the Mini Program `wx4f4bc4dec97d474b`.
    pub(crate) const SAMPLE_SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    /// The sample's iv.
    pub(crate) const SAMPLE_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    /// The sample's `encryptedData`.
    pub(crate) const SAMPLE_ENCRYPTED_DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

    #[test]
    fn wechat_documented_vector_decrypts() {
        let key = STANDARD.decode(SAMPLE_SESSION_KEY).unwrap();
        let iv = STANDARD.decode(SAMPLE_IV).unwrap();
        let data = STANDARD.decode(SAMPLE_ENCRYPTED_DATA).unwrap();
        let plain = aes128_cbc_decrypt(&key, &iv, &data).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["nickName"], "Band");
        assert_eq!(v["watermark"]["appid"], "wx4f4bc4dec97d474b");
    }

    #[test]
    fn session_signature_is_hmac_sha256_of_nothing_keyed_with_the_base64_text() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'tiihtNczf5v6AKRyjwEUhQ==',b'',
        //   hashlib.sha256).hexdigest())"
        assert_eq!(
            session_signature(SAMPLE_SESSION_KEY),
            "7154f9f8b4b76b92f541cbf0e37d48840fa06e5e42da92a6f80168a1516a4735"
        );
        assert_ne!(
            session_signature("tiihtNczf5v6AKRyjwEUhQ="),
            session_signature(SAMPLE_SESSION_KEY)
        );
    }

    #[test]
    fn js_sdk_signature_matches_wechats_documented_example() {
        // The example of WeChat's JS-SDK documentation (附录1), checked with
        // python3 -c "import hashlib;print(hashlib.sha1(b'jsapi_ticket=sM4A…&noncestr=Wm3WZYTPz0wzccnW
        //   &timestamp=1414587457&url=http://mp.weixin.qq.com?params=value').hexdigest())"
        let ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        assert_eq!(
            js_sdk_signature(
                ticket,
                "Wm3WZYTPz0wzccnW",
                1414587457,
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
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
