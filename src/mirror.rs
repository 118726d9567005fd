//! Enums the API shows as they are in the domain: [`mirrored_enum!`] (the WeChat client crate's,
//! which mirrors its own enums with it too) declares the domain enum once, with its variants'
//! docs, and a macro that writes the same variants with the same docs into another enum (the
//! GraphQL one, `#[graphql(remote = …)]`), so the two never drift.

pub(crate) use wechat_client::mirrored_enum;
