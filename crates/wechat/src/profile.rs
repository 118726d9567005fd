//! WeChat's profile placeholders. Since 2022-11 WeChat no longer hands a Mini Program the
//! person's nickname and avatar (`wx.getUserProfile`, `wx.getUserInfo`): everyone is "微信用户"
//! with the same grey avatar. A profile showing them says nothing about the person (who may
//! fill in their own with the nickname and avatar components), so it should not overwrite one
//! that does.

/// The nickname WeChat hands out instead of the person's.
pub const PLACEHOLDER_NICKNAME: &str = "微信用户";

/// The avatar WeChat hands out instead of the person's (the 132 px size; the others differ only
/// by the last path segment).
pub const PLACEHOLDER_AVATAR_URL: &str = "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132";

/// The path segment that names the placeholder avatar, whatever the host and size.
const PLACEHOLDER_AVATAR_SEGMENT: &str =
    "POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg";

/// Whether `nickname` is WeChat's placeholder (surrounding whitespace aside).
pub fn is_placeholder_nickname(nickname: &str) -> bool {
    nickname.trim() == PLACEHOLDER_NICKNAME
}

/// Whether `url` is WeChat's placeholder avatar, on any host and in any size.
pub fn is_placeholder_avatar(url: &str) -> bool {
    url.contains(PLACEHOLDER_AVATAR_SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_nickname_is_recognized_trimmed() {
        assert!(is_placeholder_nickname(PLACEHOLDER_NICKNAME));
        assert!(is_placeholder_nickname(" 微信用户\n"));
        assert!(!is_placeholder_nickname("微信用户2"));
        assert!(!is_placeholder_nickname("Band"));
        assert!(!is_placeholder_nickname(""));
    }

    #[test]
    fn the_placeholder_avatar_is_recognized_on_any_host_and_size() {
        assert!(PLACEHOLDER_AVATAR_URL.contains(PLACEHOLDER_AVATAR_SEGMENT));
        assert!(is_placeholder_avatar(PLACEHOLDER_AVATAR_URL));
        assert!(is_placeholder_avatar(
            &PLACEHOLDER_AVATAR_URL.replace("/132", "/0")
        ));
        assert!(is_placeholder_avatar(
            &PLACEHOLDER_AVATAR_URL.replace("https://thirdwx.qlogo.cn", "http://wx.qlogo.cn")
        ));
        assert!(!is_placeholder_avatar(
            "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0"
        ));
        assert!(!is_placeholder_avatar(""));
    }
}
