//! Enums shown as they are in the domain: [`mirrored_enum!`](crate::mirrored_enum) declares the
//! domain enum once, with its variants' docs, and a macro that writes the same variants with the
//! same docs into another enum (the service's GraphQL one, `#[graphql(remote = …)]`), so the two
//! never drift. The service declares its own mirrored enums with it too.

/// Declares `$name` and a macro `$mirror!` that writes its variants and their docs into the
/// enum it is given (`$mirror! { #[derive(Enum, …)] pub enum X }`).
///
/// `mirrored_by $mirror` makes `$mirror!` usable in the declaring crate (`pub(crate)`, at the
/// enum's module path); `mirrored_by #[macro_export] $mirror` exports it from the crate root
/// instead, for enums of this crate that another crate mirrors.
#[macro_export]
macro_rules! mirrored_enum {
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by #[macro_export] $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident,)*
        }
    ) => {
        $crate::mirrored_enum! { @dollar ($) (#[macro_export])
            $(#[$meta])* $vis enum $name mirrored_by $mirror { $($(#[doc = $doc])* $variant,)* }
        }
    };
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident,)*
        }
    ) => {
        $crate::mirrored_enum! { @dollar ($) ()
            $(#[$meta])* $vis enum $name mirrored_by $mirror { $($(#[doc = $doc])* $variant,)* }
        }
        pub(crate) use $mirror;
    };
    (
        @dollar ($d:tt) ($(#[$export:meta])?)
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident,)*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[doc = $doc])* $variant,)*
        }

        #[doc = concat!("Writes the variants of [`", stringify!($name), "`], with their docs, into the enum it is given.")]
        $(#[$export])?
        macro_rules! $mirror {
            ($d($d head:tt)*) => {
                $d($d head)* {
                    $($(#[doc = $doc])* $variant,)*
                }
            };
        }
    };
}
