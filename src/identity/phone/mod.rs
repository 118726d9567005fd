//! Phone numbers WeChat vouches for: the Mini Program phone button's one-time code, exchanged
//! through `getuserphonenumber` (paid: each success costs money, so [`Parts::phone_number`]
//! never pays twice for one code), stored in E.164 on the user, and optionally merging two
//! users who share a verified number (`identity.merge_on_phone_number`, through the merge
//! engine). A number reaches a user only through a sighting ([`super::sighting::record`]).

mod exchange;
mod link;

use crate::db::Conn;
use crate::db::models::now;
use crate::db::models::user::UserRow;
use crate::types::AppId;

use super::IdentityError;
use super::events;
use super::rules::{self, MergePair, MergeReason};

/// Checks a phone code from the phone button before anything uses it: what a WeChat code is
/// (1-128 printable ASCII characters).
pub(in crate::identity) fn check_phone_code(phone_code: &str) -> Result<(), IdentityError> {
    super::check_code(phone_code).map_err(|_| {
        IdentityError::BadInput("phoneCode must be 1..128 printable ASCII characters".into())
    })
}

/// A phone number in E.164: `+`, the country code and the national number, 8 to 15 digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The number from WeChat's parts (`countryCode` "86", `purePhoneNumber` "13800138000");
    /// None unless both are digits of plausible lengths.
    pub fn from_parts(country_code: &str, national: &str) -> Option<Self> {
        let cc = country_code.trim().trim_start_matches('+');
        let national = national.trim();
        let digits = |s: &str, min, max| {
            (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        (digits(cc, 1, 3) && !cc.starts_with('0') && digits(national, 4, 14))
            .then(|| format!("+{cc}{national}"))
            .filter(|n| n.len() <= 16)
            .map(Self)
    }

    /// A number as people write it: E.164 (`+8613800138000`, spaces and dashes ignored), or a
    /// bare Chinese mobile number (`13800138000`, 11 digits from 1), which gets `+86`.
    pub fn parse(text: &str) -> Option<Self> {
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match compact.strip_prefix('+') {
            Some(rest) if all_digits(rest) && (8..=15).contains(&rest.len()) => {
                (!rest.starts_with('0')).then(|| Self(compact.clone()))
            }
            Some(_) => None,
            None if all_digits(&compact) && compact.len() == 11 && compact.starts_with('1') => {
                Some(Self(format!("+86{compact}")))
            }
            None => None,
        }
    }

    /// The number in E.164.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A number WeChat vouched for in a sighting, and whether a verified number shared with
/// another user merges the two (`identity.merge_on_phone_number`).
#[derive(Clone, Copy, Debug)]
pub struct PhoneSighting<'a> {
    /// The number.
    pub number: &'a PhoneNumber,
    /// Merge with another live user who holds the same verified number.
    pub merge: bool,
}

/// Gives `user` the verified number (a newer one replaces the old: it is what WeChat vouches
/// for now) and, when `phone.merge`, merges it into the oldest other live user holding the
/// same verified number (reason `PHONE_NUMBER`, `actor` the app); returns the live user
/// afterwards and whether a merge happened. Users with different unionids are a CONFLICT, as
/// in every merge: the caller's transaction then changes nothing.
pub(super) async fn apply(
    conn: &mut Conn,
    user: UserRow,
    phone: PhoneSighting<'_>,
    actor: &AppId,
) -> Result<(UserRow, bool), IdentityError> {
    let at = now();
    UserRow::set_verified_phone(conn, &user.id, phone.number.as_str(), at).await?;
    if user.phone_number.as_deref() != Some(phone.number.as_str()) {
        let change = events::Change::Updated {
            user: &user.id,
            nickname: None,
            avatar_url: None,
            phone_number: Some(phone.number.as_str()),
        };
        events::emit(conn, change).await?;
    }
    let user = UserRow {
        phone_number: Some(phone.number.as_str().to_owned()),
        phone_number_verified_at: Some(at),
        updated_at: at,
        ..user
    };
    if !phone.merge {
        return Ok((user, false));
    }
    let Some(holder) =
        UserRow::find_live_by_verified_phone(conn, phone.number.as_str(), &user.id).await?
    else {
        return Ok((user, false));
    };
    let pair = MergePair {
        source: &user.id,
        target: &holder.id,
    };
    let survivor = rules::merge(conn, pair, MergeReason::PhoneNumber, Some(actor.as_str())).await?;
    Ok((survivor, true))
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn numbers_are_stored_in_e164() {
        let cn = PhoneNumber::from_parts("86", "13800138000").unwrap();
        assert_eq!(cn.as_str(), "+8613800138000");
        assert_eq!(
            PhoneNumber::from_parts("+1", "2025550123")
                .unwrap()
                .as_str(),
            "+12025550123"
        );
        assert_eq!(PhoneNumber::parse("13800138000"), Some(cn.clone()));
        assert_eq!(PhoneNumber::parse("+86 138-0013-8000"), Some(cn.clone()));
        assert_eq!(PhoneNumber::parse(" +8613800138000 "), Some(cn));
        for bad in [
            "",
            "+",
            "12345",
            "23800138000",
            "+0123456789",
            "+86abc",
            "phone",
            "+1234567890123456",
        ] {
            assert_eq!(PhoneNumber::parse(bad), None, "{bad}");
        }
        for (cc, n) in [
            ("", "13800138000"),
            ("086", "1"),
            ("86", ""),
            ("8a", "1380013800"),
            ("1234", "5550123"),
        ] {
            assert_eq!(PhoneNumber::from_parts(cc, n), None, "{cc} {n}");
        }
    }
}
