//! WeChat's keyword types and the rules their values follow (subscribe messages, and template
//! messages since May 2023): checked before a send, here and in the sandbox alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::mirrored_enum! {
    /// WeChat's keyword types (the part of a keyword's name before its number: `thing1`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum KeywordType mirrored_by #[macro_export] keyword_type_variants {
        /// Text, at most 20 characters.
        Thing,
        /// A number, at most 32 characters, a sign and decimals allowed.
        Number,
        /// Letters, at most 32.
        Letter,
        /// Symbols, at most 5.
        Symbol,
        /// Digits, letters and symbols, at most 32.
        CharacterString,
        /// A time of day (`15:01`, `15:01:30`), a date in front allowed.
        Time,
        /// A date (`2019-10-01`, `2019年10月1日`), a time after it allowed.
        Date,
        /// An amount: at most 10 integer digits, decimals, a currency symbol or 元 allowed
        /// (`¥100.00`, `100元`).
        Amount,
        /// A phone number: digits, `+`, `-` and spaces, at most 17.
        PhoneNumber,
        /// A licence plate: letters, digits and Chinese characters, at most 8.
        CarNumber,
        /// A name: at most 10 Chinese characters or 20 letters.
        Name,
        /// A phrase: at most 5 Chinese characters.
        Phrase,
    }
}

impl KeywordType {
    /// Checks a keyword value against WeChat's rules for this type; why not.
    pub fn check(self, value: &str) -> Result<(), String> {
        if value.trim().is_empty() {
            return Err("is empty".into());
        }
        // WeChat's "no line breaks" (May 2023): every control character (\n, \r, tab, vertical
        // tab, NUL, U+0085 …) and the Unicode line and paragraph separators.
        if let Some(c) = value
            .chars()
            .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(format!(
                "contains a line break or control character (U+{:04X}); WeChat allows neither",
                u32::from(c)
            ));
        }
        let chars = value.chars().count();
        let at_most = |n: usize, what: &str| {
            if chars > n {
                Err(format!("is {chars} characters; a {what} holds at most {n}"))
            } else {
                Ok(())
            }
        };
        let only = |ok: &dyn Fn(char) -> bool, what: &str| {
            if value.chars().all(ok) {
                Ok(())
            } else {
                Err(format!("must hold {what} only"))
            }
        };
        let symbol =
            |c: char| c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace());
        match self {
            KeywordType::Thing => at_most(20, "thing"),
            KeywordType::Number => {
                at_most(32, "number")?;
                let digits = value.trim_start_matches(['-', '+']);
                let mut parts = digits.splitn(2, '.');
                let int = parts.next().unwrap_or("");
                let frac = parts.next();
                let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if all_digits(int) && frac.is_none_or(all_digits) {
                    Ok(())
                } else {
                    Err("must be a number".into())
                }
            }
            KeywordType::Letter => {
                at_most(32, "letter value")?;
                only(&|c| c.is_ascii_alphabetic(), "letters")
            }
            KeywordType::Symbol => {
                at_most(5, "symbol value")?;
                only(&symbol, "symbols")
            }
            KeywordType::CharacterString => {
                at_most(32, "character_string")?;
                only(&|c| c.is_ascii_graphic(), "digits, letters and symbols")
            }
            KeywordType::Time => check_when(value, false),
            KeywordType::Date => check_when(value, true),
            KeywordType::Amount => check_amount(value),
            KeywordType::PhoneNumber => {
                at_most(17, "phone_number")?;
                only(
                    &|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '),
                    "digits, +, - and spaces",
                )
            }
            KeywordType::CarNumber => {
                at_most(8, "car_number")?;
                only(
                    &|c| c.is_ascii_alphanumeric() || is_chinese(c),
                    "letters, digits and Chinese characters",
                )
            }
            KeywordType::Name => {
                if value.chars().all(is_chinese) {
                    at_most(10, "Chinese name")
                } else if value.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
                    at_most(20, "name in letters")
                } else {
                    Err("must be Chinese characters only or letters only".into())
                }
            }
            KeywordType::Phrase => {
                at_most(5, "phrase")?;
                only(&is_chinese, "Chinese characters")
            }
        }
    }

    /// The type a keyword's name implies (`thing1` → THING), if it names one.
    pub fn of_keyword(key: &str) -> Option<Self> {
        let stem = key.trim_end_matches(|c: char| c.is_ascii_digit());
        let value = serde_json::Value::String(stem.to_ascii_uppercase());
        serde_json::from_value(value).ok()
    }
}

/// `s` cut to `n` characters (echoing input in messages).
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn is_chinese(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// `date` (a date, a time allowed after it) or `time` (a time, a date allowed before it).
fn check_when(value: &str, date_first: bool) -> Result<(), String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
    const DATES: [&str; 3] = ["%Y-%m-%d", "%Y年%m月%d日", "%Y/%m/%d"];
    const TIMES: [&str; 2] = ["%H:%M", "%H:%M:%S"];
    let v = value.trim();
    let is_date = DATES
        .iter()
        .any(|f| NaiveDate::parse_from_str(v, f).is_ok());
    let is_time = TIMES
        .iter()
        .any(|f| NaiveTime::parse_from_str(v, f).is_ok());
    let is_both = DATES.iter().any(|d| {
        TIMES
            .iter()
            .any(|t| NaiveDateTime::parse_from_str(v, &format!("{d} {t}")).is_ok())
    });
    let ok = is_both || if date_first { is_date } else { is_time };
    if ok {
        Ok(())
    } else if date_first {
        Err("must be a date like 2026-11-29 or 2026年11月29日 (a time after it allowed)".into())
    } else {
        Err("must be a time like 15:01 (a date before it allowed)".into())
    }
}

fn check_amount(value: &str) -> Result<(), String> {
    let v = value.trim();
    let v = v.strip_prefix(['¥', '￥', '$']).unwrap_or(v);
    let v = v.strip_suffix('元').unwrap_or(v);
    let mut parts = v.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(int) && int.len() <= 10 && frac.is_none_or(|f| digits(f) && f.len() <= 2) {
        Ok(())
    } else {
        Err("must be an amount like ¥100.00 or 100元 (at most 10 digits before the point)".into())
    }
}

/// Keywords a template holds at most.
pub const MAX_TEMPLATE_FIELDS: usize = 20;

/// Template messages' keywords WeChat has dropped since May 2023.
pub const DROPPED_KEYWORDS: [&str; 2] = ["first", "remark"];

/// Checks `data` (WeChat's shape: `{"thing1": {"value": "…"}}`) against a template's keywords:
/// every keyword present, no other, each value a string that fits its type. The values by
/// keyword, as WeChat will get them.
pub fn check_data(
    fields: &[(String, KeywordType)],
    data: &serde_json::Value,
) -> Result<BTreeMap<String, String>, String> {
    let object = data
        .as_object()
        .ok_or("data must be an object like {\"thing1\": {\"value\": \"…\"}}")?;
    let mut out = BTreeMap::new();
    for (key, entry) in object {
        let Some((_, ty)) = fields.iter().find(|(k, _)| k == key) else {
            let hint = if DROPPED_KEYWORDS.contains(&key.as_str()) {
                " (WeChat no longer shows `first` and `remark` since May 2023)"
            } else {
                ""
            };
            return Err(format!(
                "data.{} is not a keyword of this template{hint}",
                cut(key, 32)
            ));
        };
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("data.{key} must be an object {{\"value\": \"…\"}}"))?;
        if entry.contains_key("color") {
            return Err(format!(
                "data.{key}.color: WeChat no longer shows colours since May 2023"
            ));
        }
        if let Some(other) = entry.keys().find(|k| *k != "value") {
            return Err(format!(
                "data.{key}.{} is not allowed (only `value`)",
                cut(other, 32)
            ));
        }
        let value = entry
            .get("value")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("data.{key}.value must be a string"))?;
        ty.check(value)
            .map_err(|why| format!("data.{key}.value {why}"))?;
        out.insert(key.clone(), value.to_owned());
    }
    if let Some((missing, _)) = fields.iter().find(|(k, _)| !out.contains_key(k)) {
        return Err(format!(
            "data.{missing} is missing (the template needs every keyword)"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_rules_follow_wechat() {
        use KeywordType::*;
        assert!(Thing.check("您的订单已发货").is_ok());
        assert!(Thing.check(&"字".repeat(21)).is_err());
        for c in [
            '\n', '\r', '\t', '\u{b}', '\0', '\u{85}', '\u{2028}', '\u{2029}',
        ] {
            let why = Thing.check(&format!("line{c}break")).unwrap_err();
            assert!(why.contains(&format!("U+{:04X}", u32::from(c))), "{why}");
            assert!(CharacterString.check(&format!("SN{c}1")).is_err());
        }
        assert!(Number.check("3.14").is_ok() && Number.check("3.1.4").is_err());
        assert!(Letter.check("abc").is_ok() && Letter.check("ab1").is_err());
        assert!(Symbol.check("%").is_ok() && Symbol.check("a").is_err());
        assert!(CharacterString.check("SN-2026-001").is_ok());
        assert!(Time.check("15:01").is_ok() && Time.check("2026-11-29 15:01").is_ok());
        assert!(Time.check("tomorrow").is_err());
        assert!(Date.check("2026年11月29日").is_ok() && Date.check("2026-11-29 15:01").is_ok());
        assert!(Date.check("15:01").is_err());
        assert!(Amount.check("¥100.00").is_ok() && Amount.check("100元").is_ok());
        assert!(Amount.check("12345678901").is_err());
        assert!(PhoneNumber.check("+86-0766-66888866").is_ok());
        assert!(CarNumber.check("粤A8Z888挂").is_ok() && CarNumber.check("粤A8Z888挂12").is_err());
        assert!(Name.check("张三").is_ok() && Name.check("Alice Chen").is_ok());
        assert!(Name.check("张San").is_err());
        assert!(Phrase.check("配送中").is_ok() && Phrase.check("配送中了吗啊呀").is_err());
        assert_eq!(KeywordType::of_keyword("thing12"), Some(Thing));
        assert_eq!(
            KeywordType::of_keyword("character_string3"),
            Some(CharacterString)
        );
        assert_eq!(KeywordType::of_keyword("first"), None);
    }

    #[test]
    fn data_must_fit_the_template() {
        let fields = vec![
            ("thing1".to_owned(), KeywordType::Thing),
            ("time2".to_owned(), KeywordType::Time),
        ];
        let ok = serde_json::json!({"thing1": {"value": "已发货"}, "time2": {"value": "15:01"}});
        assert_eq!(check_data(&fields, &ok).unwrap()["thing1"], "已发货");
        for (bad, why) in [
            (
                serde_json::json!({"thing1": {"value": "已发货"}}),
                "missing",
            ),
            (
                serde_json::json!({"thing1": {"value": "x"}, "time2": {"value": "15:01"}, "first": {"value": "hi"}}),
                "May 2023",
            ),
            (
                serde_json::json!({"thing1": {"value": "x", "color": "#f00"}, "time2": {"value": "15:01"}}),
                "colours",
            ),
            (
                serde_json::json!({"thing1": {"value": 3}, "time2": {"value": "15:01"}}),
                "string",
            ),
            (serde_json::json!([1]), "object"),
        ] {
            let e = check_data(&fields, &bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
