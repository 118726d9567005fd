//! Enums the API shows as they are in the domain: [`mirrored_enum!`] declares the domain enum
//! once, with its variants' docs, and a macro that writes the same variants with the same docs
//! into another enum (the GraphQL one, `#[graphql(remote = …)]`), so the two never drift.

/// Declares `$name` and a macro `$mirror!` that writes its variants and their docs into the
/// enum it is given (`$mirror! { #[derive(Enum, …)] pub enum X }`).
macro_rules! mirrored_enum {
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident,)*
        }
    ) => {
        $crate::mirror::mirrored_enum! { @dollar ($)
            $(#[$meta])* $vis enum $name mirrored_by $mirror { $($(#[doc = $doc])* $variant,)* }
        }
    };
    (
        @dollar ($d:tt)
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident,)*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[doc = $doc])* $variant,)*
        }

        #[doc = concat!("Writes the variants of [`", stringify!($name), "`], with their docs, into the enum it is given.")]
        macro_rules! $mirror {
            ($d($d head:tt)*) => {
                $d($d head)* {
                    $($(#[doc = $doc])* $variant,)*
                }
            };
        }
        pub(crate) use $mirror;
    };
}
pub(crate) use mirrored_enum;
