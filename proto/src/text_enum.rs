//! Enums that travel as words: in JSON, in TOML, in SQL `TEXT` columns.
//!
//! Roles, kinds and states are closed sets. Holding them as `String` lets a typo through
//! to the store and makes every reader check again; an enum is checked once, where the
//! value enters (serde refuses an unknown word with the list of known ones), and matched
//! exhaustively everywhere after. [`text_enum!`](crate::text_enum) gives each such enum
//! its word (`as_str`), parsing from a word (`FromStr`, for what the store reads back),
//! and the list of all variants.

/// A word that names no variant of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what}; expected one of {expected}")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

/// Declares an enum whose variants are written as the given words.
///
/// The words are taken as raw tokens (`tt`), not `literal` fragments: a fragment reaches
/// derive macros wrapped in an invisible group, which some (utoipa) do not look into, so
/// the OpenAPI schema would show the Rust names instead of the words.
///
/// ```
/// ispvm_proto::text_enum! {
///     /// How a link is built.
///     pub enum Medium {
///         Fiber = "fiber",
///         Copper = "copper",
///     }
/// }
/// assert_eq!(Medium::Fiber.as_str(), "fiber");
/// assert_eq!("copper".parse::<Medium>(), Ok(Medium::Copper));
/// assert!("wet string".parse::<Medium>().is_err());
/// assert_eq!(serde_json::to_string(&Medium::Fiber).unwrap(), "\"fiber\"");
/// ```
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:tt),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word this variant is written as.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text_enum::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err($crate::text_enum::UnknownVariant {
                        what: stringify!($name),
                        value: s.chars().take(64).collect(),
                        expected: [$($word),+].join(", "),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
