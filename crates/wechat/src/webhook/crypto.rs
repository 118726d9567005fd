//! Safe-mode message encryption (WeChat's `WXBizMsgCrypt`): AES-256-CBC, iv = key[..16],
//! PKCS#7 padding to 32-byte blocks, plaintext = 16 random bytes ‖ u32 BE length ‖ xml ‖ appid.

use aws_lc_rs::cipher::{
    AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::WebhookError;

/// WeChat pads to 32-byte blocks, not to the AES block size.
const PAD_BLOCK: usize = 32;
/// Random prefix and length field before the xml.
const HEADER: usize = 20;
/// Length of an EncodingAESKey (32 bytes in base64 without its `=`).
const ENCODING_AES_KEY_LEN: usize = 43;

/// The EncodingAESKey's last character may carry non-zero unused bits (WeChat generates it
/// at random and its SDKs decode leniently), so ours must too.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Encrypts and decrypts safe-mode messages of one app.
pub struct MsgCrypt {
    key: [u8; 32],
    app_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("key", &"<redacted>")
            .field("app_id", &self.app_id)
            .finish()
    }
}

impl MsgCrypt {
    /// From the app's 43-character EncodingAESKey (`key = base64(EncodingAESKey + "=")`).
    pub fn new(encoding_aes_key: &str, app_id: impl Into<String>) -> Result<Self, WebhookError> {
        if encoding_aes_key.len() != ENCODING_AES_KEY_LEN {
            return Err(WebhookError::BadKey(
                "EncodingAESKey must be 43 base64 characters",
            ));
        }
        let bytes = LENIENT_BASE64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| WebhookError::BadKey("EncodingAESKey is not base64"))?;
        let key = bytes
            .try_into()
            .map_err(|_| WebhookError::BadKey("EncodingAESKey must decode to 32 bytes"))?;
        Ok(Self {
            key,
            app_id: app_id.into(),
        })
    }

    /// The app id messages must be sealed for.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Decrypts an `Encrypt` value into the message XML, refusing bad padding, a length that
    /// does not fit, and a message sealed for another app id. Check `msg_signature` first.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, WebhookError> {
        let mut buf = STANDARD
            .decode(encrypt_b64.trim())
            .map_err(|_| WebhookError::BadCiphertext("not base64"))?;
        if buf.is_empty() || buf.len() % PAD_BLOCK != 0 {
            return Err(WebhookError::BadCiphertext(
                "not a whole number of 32-byte blocks",
            ));
        }
        let plain = DecryptingKey::cbc(self.cipher_key())
            .and_then(|key| key.decrypt(&mut buf, DecryptionContext::Iv128(self.iv().into())))
            .map_err(|_| WebhookError::BadCiphertext("does not decrypt"))?;
        let body = strip_padding(plain)?;
        if body.len() < HEADER {
            return Err(WebhookError::BadLength);
        }
        let (header, rest) = body.split_at(HEADER);
        let xml_len = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
        let xml_len = usize::try_from(xml_len).map_err(|_| WebhookError::BadLength)?;
        if xml_len > rest.len() {
            return Err(WebhookError::BadLength);
        }
        let (xml, app_id) = rest.split_at(xml_len);
        if !crate::crypto::constant_time_eq(app_id, self.app_id.as_bytes()) {
            return Err(WebhookError::AppIdMismatch);
        }
        String::from_utf8(xml.to_vec())
            .map_err(|_| WebhookError::BadCiphertext("message is not UTF-8"))
    }

    /// Encrypts `xml` for WeChat (our sandbox's pushes, safe-mode replies): base64 of the
    /// ciphertext. `random16` must be fresh random bytes (`crate::crypto::random_bytes`).
    ///
    /// # Panics
    /// If `xml` is 4 GiB or longer (the length field is a u32).
    pub fn encrypt(&self, xml: &str, random16: &[u8; 16]) -> String {
        let xml_len = u32::try_from(xml.len()).expect("webhook XML under 4 GiB");
        let mut buf = Vec::with_capacity(HEADER + xml.len() + self.app_id.len() + PAD_BLOCK);
        buf.extend_from_slice(random16);
        buf.extend_from_slice(&xml_len.to_be_bytes());
        buf.extend_from_slice(xml.as_bytes());
        buf.extend_from_slice(self.app_id.as_bytes());
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        // `pad` is 1..=32, so it fits a byte.
        buf.resize(buf.len() + pad, pad as u8);
        EncryptingKey::cbc(self.cipher_key())
            .and_then(|key| {
                key.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(self.iv().into()))
            })
            .expect("AES-256-CBC over whole blocks with a 32-byte key cannot fail");
        STANDARD.encode(buf)
    }

    fn cipher_key(&self) -> UnboundCipherKey {
        UnboundCipherKey::new(&AES_256, &self.key).expect("a 32-byte key is valid for AES-256")
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}

/// Removes PKCS#7 padding of block size 32, checking every pad byte.
fn strip_padding(plain: &[u8]) -> Result<&[u8], WebhookError> {
    let pad = usize::from(*plain.last().ok_or(WebhookError::BadPadding)?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return Err(WebhookError::BadPadding);
    }
    let (body, padding) = plain.split_at(plain.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(WebhookError::BadPadding);
    }
    Ok(body)
}
