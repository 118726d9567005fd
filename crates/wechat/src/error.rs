//! Errors of the WeChat client: every failure WeChat reports, mapped from its `errcode`.

/// Why a call failed when WeChat could not be reached at all (so it surely did nothing).
pub const UNREACHABLE: &str = "WeChat could not be reached";

/// A WeChat call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WechatError {
    /// WeChat is busy (-1), unreachable, timed out, or answered something we cannot parse.
    #[error("WeChat unavailable: {reason}")]
    Unavailable {
        /// What happened (no secrets, no URLs with secrets).
        reason: String,
        /// WeChat's errcode, when it sent one.
        errcode: Option<i64>,
    },
    /// WeChat rate-limited us (45011 and friends).
    #[error("WeChat rate limit (errcode {errcode})")]
    RateLimited {
        /// WeChat's errcode.
        errcode: i64,
    },
    /// The login code is invalid, already used or expired (40029, 40163, 42003).
    #[error("WeChat code invalid (errcode {errcode}): {errmsg}")]
    CodeInvalid {
        /// WeChat's errcode.
        errcode: i64,
        /// WeChat's errmsg.
        errmsg: String,
    },
    /// WeChat refused for another reason (high-risk user, bad app id or secret, ...).
    #[error("WeChat rejected the call (errcode {errcode}): {errmsg}")]
    Rejected {
        /// WeChat's errcode.
        errcode: i64,
        /// WeChat's errmsg.
        errmsg: String,
    },
}

impl WechatError {
    /// Maps a non-zero `errcode` from WeChat.
    pub fn from_errcode(errcode: i64, errmsg: &str) -> Self {
        match errcode {
            -1 => WechatError::Unavailable {
                reason: format!("system busy: {errmsg}"),
                errcode: Some(errcode),
            },
            45009 | 45011 => WechatError::RateLimited { errcode },
            40029 | 40163 | 42003 => WechatError::CodeInvalid {
                errcode,
                errmsg: errmsg.to_owned(),
            },
            _ => WechatError::Rejected {
                errcode,
                errmsg: errmsg.to_owned(),
            },
        }
    }

    /// Whether WeChat says the access token used is invalid or expired (40001, 42001, 40014):
    /// the caller may refresh it and retry once. 48001 (API unauthorized) is not one of them.
    pub fn is_token_invalid(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 42001 | 40014))
    }

    /// Whether WeChat surely did not act on the call: it answered with an errcode, or could not
    /// be reached. A timeout or a cut-off answer may hide a call WeChat carried out.
    pub fn surely_not_done(&self) -> bool {
        match self {
            WechatError::Unavailable { reason, errcode } => {
                errcode.is_some() || reason == UNREACHABLE
            }
            _ => true,
        }
    }

    /// WeChat's errcode, when it sent one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Unavailable { errcode, .. } => *errcode,
            WechatError::RateLimited { errcode }
            | WechatError::CodeInvalid { errcode, .. }
            | WechatError::Rejected { errcode, .. } => Some(*errcode),
        }
    }
}
