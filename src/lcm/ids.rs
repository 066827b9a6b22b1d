//! The identifiers that travel between desktops, telephony and dialers. Each is a newtype that
//! can only hold a value that passed its rule, so code past the edge never checks them again.

use std::fmt;

use serde::Serialize;

use super::fields::{check_text, FieldError};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The field's name on the wire.
            pub const FIELD: &'static str = $field;
            /// The longest value allowed, in characters.
            pub const MAX_CHARS: usize = $max;

            pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
                let s = s.into();
                check_text(Self::FIELD, &s, 1, Self::MAX_CHARS)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// A string of 1 to `MAX_CHARS` characters.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A call as the telephony side names it (`callid`).
    CallId,
    "callid",
    64
);
identifier!(
    /// The LCM key of a contact (`AccountNumber`), opaque to redial.
    AccountNumber,
    "AccountNumber",
    128
);
identifier!(
    /// An agent (`UserID`).
    UserId,
    "UserID",
    64
);
