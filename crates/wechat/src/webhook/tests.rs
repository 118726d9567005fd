use aws_lc_rs::cipher::{AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::*;

/// EncodingAESKey of WeChat's WXBizMsgCrypt samples (its last character has unused bits set).
const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

// WeChat's official Python sample (Sample.py of the Official Account message encryption SDK,
// by jonyqin, 2014), as copied verbatim in charlesXu86/Chatbot_CN at
// Chatbot_Web/impl/weixin/Sample.py: a compatibility-mode push and its msg_signature.
const PY_TOKEN: &str = "spamtest";
const PY_APP_ID: &str = "wx2c2769f8efd9abc2";
const PY_TIMESTAMP: &str = "1409735669";
const PY_NONCE: &str = "1320562132";
const PY_MSG_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
const PY_FROM_XML: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";

// WeChat's official Java sample (WXBizMsgCryptTest.testAesEncrypt / testAesEncrypt2, token
// `pamtest`, appid wxb11529c136998cb6, fixed random "aaaabbbbccccdddd"), as carried in
// chanjarster/weixin-java-tools at
// weixin-java-common/src/test/java/me/chanjar/weixin/common/util/crypto/WxCryptUtilTest.java.
// It gives ciphertexts but no msg_signature.
const JAVA_APP_ID: &str = "wxb11529c136998cb6";
const JAVA_RANDOM: &[u8; 16] = b"aaaabbbbccccdddd";
const JAVA_REPLY: &str = "我是中文abcd123";
const JAVA_CIPHER: &str =
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
const JAVA_REPLY2: &str = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
const JAVA_CIPHER2: &str = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";

fn sample_crypt(app_id: &str) -> MsgCrypt {
    MsgCrypt::new(SAMPLE_KEY, app_id).expect("the sample key is valid")
}

/// AES-256-CBC of `plain` (whole blocks, no padding added) under the sample key, base64: lets
/// a test build plaintexts with broken padding or length fields.
fn raw_encrypt(plain: &[u8]) -> String {
    let lenient = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let key = lenient.decode(format!("{SAMPLE_KEY}=")).unwrap();
    let iv: [u8; 16] = key[..16].try_into().unwrap();
    let mut buf = plain.to_vec();
    EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, &key).unwrap())
        .unwrap()
        .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
        .unwrap();
    STANDARD.encode(buf)
}

/// A WeChat plaintext: 16 random bytes, a length field, the xml and the appid, unpadded.
fn frame(length_field: u32, xml: &str, app_id: &str) -> Vec<u8> {
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend_from_slice(&length_field.to_be_bytes());
    plain.extend_from_slice(xml.as_bytes());
    plain.extend_from_slice(app_id.as_bytes());
    plain
}

/// Pads `plain` to a multiple of 32 with `fill(pad_len)` as the pad bytes.
fn pad_with(mut plain: Vec<u8>, fill: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let pad = 32 - plain.len() % 32;
    for i in 0..pad {
        plain.push(fill(pad, i));
    }
    plain
}

// --- the official samples ---------------------------------------------------------------

#[test]
fn official_python_sample_verifies_and_decrypts() {
    let outer = parse_fields(PY_FROM_XML).unwrap();
    let encrypt = &outer["Encrypt"];
    assert_eq!(
        msg_signature(PY_TOKEN, PY_TIMESTAMP, PY_NONCE, encrypt),
        PY_MSG_SIGNATURE
    );
    assert!(verify_msg_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        PY_NONCE,
        encrypt,
        PY_MSG_SIGNATURE
    ));

    let plain = sample_crypt(PY_APP_ID).decrypt(encrypt).unwrap();
    let inner = Envelope::parse(&plain).unwrap();
    assert_eq!(inner.to_user, "gh_10f6c3c3ac5a");
    assert_eq!(inner.from_user, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert_eq!(inner.create_time, 1409735668);
    assert_eq!(inner.msg_type, "text");
    assert_eq!(inner.msg_id.as_deref(), Some("6054768590064713728"));
    assert_eq!(parse_fields(&plain).unwrap()["Content"], "abcdteT");
    assert_eq!(inner.encrypt, None);

    // Compatibility mode: the outer body carries the same plain fields next to Encrypt.
    let outer = Envelope::parse(PY_FROM_XML).unwrap();
    assert_eq!(outer.encrypt.as_deref(), Some(encrypt.as_str()));
    assert_eq!(dedupe_key(&outer), dedupe_key(&inner));
}

#[test]
fn official_python_sample_is_refused_for_another_app() {
    let encrypt = &parse_fields(PY_FROM_XML).unwrap()["Encrypt"];
    assert_eq!(
        sample_crypt(JAVA_APP_ID).decrypt(encrypt),
        Err(WebhookError::AppIdMismatch)
    );
}

#[test]
fn official_java_sample_ciphertexts_encrypt_and_decrypt() {
    let crypt = sample_crypt(JAVA_APP_ID);
    assert_eq!(crypt.encrypt(JAVA_REPLY, JAVA_RANDOM), JAVA_CIPHER);
    assert_eq!(crypt.encrypt(JAVA_REPLY2, JAVA_RANDOM), JAVA_CIPHER2);
    assert_eq!(crypt.decrypt(JAVA_CIPHER).unwrap(), JAVA_REPLY);
    assert_eq!(crypt.decrypt(JAVA_CIPHER2).unwrap(), JAVA_REPLY2);
}

#[test]
fn signature_sorts_before_hashing() {
    // Sorted and joined, these are "123456789", whose SHA-1 is the well-known check value.
    let expected = "f7c3bc1d808e04732adf679965ccc34ca7ae3441";
    assert_eq!(signature("789", "456", "123"), expected);
    assert_eq!(signature("123", "789", "456"), expected);
    assert!(verify_signature("789", "456", "123", expected));
}

// --- signatures -------------------------------------------------------------------------

#[test]
fn signature_mismatch_is_refused() {
    let encrypt = &parse_fields(PY_FROM_XML).unwrap()["Encrypt"];
    let good = PY_MSG_SIGNATURE;
    assert!(!verify_msg_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        "1320562133",
        encrypt,
        good
    ));
    assert!(!verify_msg_signature(
        "other",
        PY_TIMESTAMP,
        PY_NONCE,
        encrypt,
        good
    ));
    assert!(!verify_msg_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        PY_NONCE,
        "x",
        good
    ));
    let upper = good.to_uppercase();
    assert!(!verify_msg_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        PY_NONCE,
        encrypt,
        &upper
    ));
    assert!(!verify_msg_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        PY_NONCE,
        encrypt,
        ""
    ));

    let plain = signature(PY_TOKEN, PY_TIMESTAMP, PY_NONCE);
    assert!(verify_signature(PY_TOKEN, PY_TIMESTAMP, PY_NONCE, &plain));
    assert!(!verify_signature(PY_TOKEN, PY_TIMESTAMP, "1", &plain));
    assert!(!verify_signature(
        PY_TOKEN,
        PY_TIMESTAMP,
        PY_NONCE,
        &plain[..39]
    ));
}

// --- encryption -------------------------------------------------------------------------

#[test]
fn round_trip_encrypt_decrypt() {
    let crypt = sample_crypt("wx0000000000000001");
    // 20 + 26 + 18 = 64 is whole blocks, so a full block of padding (32) is added.
    let exact = "x".repeat(26);
    for xml in [
        "",
        "<xml><a>中文</a></xml>",
        exact.as_str(),
        &"y".repeat(5000),
    ] {
        let random = crate::crypto::random_bytes::<16>();
        let sealed = crypt.encrypt(xml, &random);
        assert_eq!(crypt.decrypt(&sealed).unwrap(), xml);
    }
    let a = crypt.encrypt("<xml/>", &[1; 16]);
    let b = crypt.encrypt("<xml/>", &[2; 16]);
    assert_ne!(a, b, "the random prefix changes the ciphertext");
}

#[test]
fn wrong_app_id_is_refused() {
    let sealed = sample_crypt("wx_app_a").encrypt("<xml/>", &[7; 16]);
    assert_eq!(
        sample_crypt("wx_app_b").decrypt(&sealed),
        Err(WebhookError::AppIdMismatch)
    );
    // A prefix of the real app id is not the app id.
    assert_eq!(
        sample_crypt("wx_app").decrypt(&sealed),
        Err(WebhookError::AppIdMismatch)
    );
}

#[test]
fn tampered_ciphertext_is_refused() {
    let crypt = sample_crypt(JAVA_APP_ID);
    let mut bytes = STANDARD.decode(JAVA_CIPHER).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = STANDARD.encode(&bytes);
    assert!(crypt.decrypt(&tampered).is_err());
    // CBC has no integrity of its own: the signature is what catches every change.
    let sig = msg_signature("pamtest", "1409304348", "xxxxxx", JAVA_CIPHER);
    assert!(!verify_msg_signature(
        "pamtest",
        "1409304348",
        "xxxxxx",
        &tampered,
        &sig
    ));

    assert!(matches!(
        crypt.decrypt("not base64!"),
        Err(WebhookError::BadCiphertext(_))
    ));
    assert!(matches!(
        crypt.decrypt(&STANDARD.encode([0u8; 48])),
        Err(WebhookError::BadCiphertext(_))
    ));
    assert!(matches!(
        crypt.decrypt(""),
        Err(WebhookError::BadCiphertext(_))
    ));
}

#[test]
fn bad_padding_is_refused() {
    let crypt = sample_crypt("wxapp");
    // 20 + 11 + 5 = 36 bytes, so 28 bytes of padding.
    let plain = frame(11, "<xml></xml>", "wxapp");
    let good = pad_with(plain.clone(), |pad, _| pad as u8);
    assert_eq!(crypt.decrypt(&raw_encrypt(&good)).unwrap(), "<xml></xml>");

    let zero = pad_with(plain.clone(), |_, _| 0);
    let mixed = pad_with(plain.clone(), |pad, i| if i == 0 { 1 } else { pad as u8 });
    let mut too_big = plain.clone();
    too_big.resize(64, 33);
    for bad in [zero, mixed, too_big] {
        assert_eq!(
            crypt.decrypt(&raw_encrypt(&bad)),
            Err(WebhookError::BadPadding)
        );
    }
}

#[test]
fn length_field_that_does_not_fit_is_refused() {
    let crypt = sample_crypt("wxapp");
    let too_long = pad_with(frame(1000, "<xml/>", "wxapp"), |pad, _| pad as u8);
    assert_eq!(
        crypt.decrypt(&raw_encrypt(&too_long)),
        Err(WebhookError::BadLength)
    );
    let huge = pad_with(frame(u32::MAX, "<xml/>", "wxapp"), |pad, _| pad as u8);
    assert_eq!(
        crypt.decrypt(&raw_encrypt(&huge)),
        Err(WebhookError::BadLength)
    );
    // 12 bytes of message then a full block of padding: shorter than the 20-byte header.
    let short = pad_with(b"0123456789ab".to_vec(), |pad, _| pad as u8);
    assert_eq!(
        crypt.decrypt(&raw_encrypt(&short)),
        Err(WebhookError::BadLength)
    );
}

#[test]
fn bad_encoding_aes_key_is_refused() {
    for key in [
        &SAMPLE_KEY[..42],
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
        "",
    ] {
        assert!(matches!(
            MsgCrypt::new(key, "wxapp"),
            Err(WebhookError::BadKey(_))
        ));
    }
    let not_base64 = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!";
    assert!(matches!(
        MsgCrypt::new(not_base64, "wxapp"),
        Err(WebhookError::BadKey(_))
    ));
    // All 'A's is a valid (if weak) key: 32 zero bytes.
    assert!(MsgCrypt::new(&"A".repeat(43), "wxapp").is_ok());
}

#[test]
fn debug_output_hides_the_key() {
    let shown = format!("{:?}", sample_crypt("wxapp"));
    assert!(shown.contains("redacted") && shown.contains("wxapp"));
    assert!(!shown.contains("105"), "no key bytes: {shown}");
}

// --- dedupe -----------------------------------------------------------------------------

fn envelope(extra: &str) -> Envelope {
    Envelope::parse(&format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\
         <FromUserName><![CDATA[openid_alice]]></FromUserName>\
         <CreateTime>1700000000</CreateTime>{extra}</xml>"
    ))
    .unwrap()
}

#[test]
fn a_message_dedupes_on_its_msg_id() {
    let text = envelope("<MsgType>text</MsgType><Content>hi</Content><MsgId>42</MsgId>");
    assert_eq!(dedupe_key(&text), "msgid:42");
}

#[test]
fn template_send_job_finish_dedupes_on_its_msg_id_spelled_msgid() {
    let job = envelope(
        "<MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>\
         <Status><![CDATA[success]]></Status>",
    );
    assert_eq!(job.msg_id.as_deref(), Some("200163836"));
    assert_eq!(dedupe_key(&job), "msgid:200163836");
}

#[test]
fn an_event_dedupes_on_sender_time_and_event() {
    let follow = "<MsgType>event</MsgType><Event>subscribe</Event><EventKey></EventKey>";
    let unfollow = "<MsgType>event</MsgType><Event>unsubscribe</Event>";
    let key = dedupe_key(&envelope(follow));
    assert_eq!(key, "event:openid_alice:1700000000:subscribe");
    assert_eq!(
        key,
        dedupe_key(&envelope(follow)),
        "WeChat's retry is the same delivery"
    );
    assert_ne!(key, dedupe_key(&envelope(unfollow)));
    assert_eq!(
        envelope(follow).event_key,
        None,
        "an empty EventKey is no key"
    );
}
