//! The message-push ("server URL") protocol WeChat speaks to an Official Account or a Mini
//! Program webhook: pure functions, no HTTP and no database.
//!
//! - Plain mode: every request carries `signature = sha1(sort(token, timestamp, nonce))`
//!   ([`verify_signature`]); the body is a flat `<xml>` ([`parse_fields`], [`Envelope`]).
//! - Safe mode: the body is `<xml><ToUserName/><Encrypt/></xml>`; check
//!   `msg_signature = sha1(sort(token, timestamp, nonce, Encrypt))` ([`verify_msg_signature`])
//!   *before* decrypting, then [`MsgCrypt::decrypt`] the `Encrypt` field and parse the result.
//!   The signature is the only integrity check of the AES-CBC ciphertext: decrypting
//!   unauthenticated input and answering differently per failure would be a padding oracle.
//!   Compatibility mode sends both the plain fields and `Encrypt` in one body.
//! - WeChat retries a push three times within 5 s: [`dedupe_key`] names a delivery so the
//!   caller processes it once (scope the key by app yourself).
//!
//! Nothing here logs; keys and plaintext never reach a log line or a `Debug` output.

mod crypto;
mod xml;

pub use crypto::MsgCrypt;
pub use xml::{Envelope, MAX_ELEMENTS, MAX_XML_BYTES, parse_fields, parse_items};

/// Why a webhook push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// `signature` or `msg_signature` does not match the token.
    #[error("webhook signature does not match")]
    BadSignature,
    /// The `Encrypt` value is not base64 or not whole AES blocks, or the plaintext is not UTF-8.
    #[error("webhook ciphertext is malformed: {0}")]
    BadCiphertext(&'static str),
    /// The decrypted PKCS#7 padding (block size 32) is invalid.
    #[error("webhook ciphertext has bad padding")]
    BadPadding,
    /// The decrypted message length field does not fit the plaintext.
    #[error("webhook ciphertext has a bad message length")]
    BadLength,
    /// The decrypted message was sealed for another app id.
    #[error("webhook message is for another app id")]
    AppIdMismatch,
    /// The EncodingAESKey is not 43 base64 characters decoding to 32 bytes.
    #[error("bad EncodingAESKey: {0}")]
    BadKey(&'static str),
    /// The body is not the flat `<xml>` WeChat sends (or holds a DTD or a custom entity).
    #[error("malformed webhook XML: {0}")]
    MalformedXml(String),
    /// The body exceeds a size limit (the message names it).
    #[error("webhook XML too large: {0}")]
    TooLarge(String),
}

/// `signature` of a plain-mode push: sha1 hex of token, timestamp and nonce, sorted and joined.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// `msg_signature` of a safe-mode push: as [`signature`], over the `Encrypt` value too.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// Whether `signature` is the plain-mode signature of this push (constant time).
pub fn verify_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    let expected = self::signature(token, timestamp, nonce);
    crate::crypto::constant_time_eq(expected.as_bytes(), signature.as_bytes())
}

/// Whether `msg_signature` is the safe-mode signature of this push (constant time).
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    msg_signature: &str,
) -> bool {
    let expected = self::msg_signature(token, timestamp, nonce, encrypt);
    crate::crypto::constant_time_eq(expected.as_bytes(), msg_signature.as_bytes())
}

fn sorted_sha1(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    crate::crypto::sha1_hex(parts.concat().as_bytes())
}

/// The key under which a delivery is processed once: `msgid:<MsgId>` for messages (and events
/// such as TEMPLATESENDJOBFINISH that carry a `MsgID`), otherwise
/// `event:<FromUserName>:<CreateTime>:<Event>`, as WeChat recommends for events.
pub fn dedupe_key(envelope: &Envelope) -> String {
    match &envelope.msg_id {
        Some(id) => format!("msgid:{id}"),
        None => format!(
            "event:{}:{}:{}",
            envelope.from_user,
            envelope.create_time,
            envelope.event.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests;
