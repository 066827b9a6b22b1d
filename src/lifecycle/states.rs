//! The states and reasons stored in the database, as Rust values. Each has one name, the one
//! in the database and on the wire; `store::sql` reads and writes them by it.

use std::fmt;

use serde::{Serialize, Serializer};

/// An enum whose every variant has one name.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$variant_doc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_doc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// A string, one of the names (the OpenAPI document lists them).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text,)+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

named!(
    /// Where a callback is in its life (the table in [`crate::lifecycle`]).
    CallbackState {
        Scheduled = "scheduled",
        Due = "due",
        /// Never stored: a live callback whose current redial a dialer holds, as the
        /// `callbacks_shown` view reports it.
        Leased = "leased",
        Completed = "completed",
        Expired = "expired",
        Cancelled = "cancelled",
        Superseded = "superseded",
    }
);

impl CallbackState {
    /// Whether the callback may still be dialed.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            CallbackState::Scheduled | CallbackState::Due | CallbackState::Leased
        )
    }
}

named!(
    /// Why a callback ended as it did.
    EndReason {
        /// A dial reached the customer.
        Connected = "connected",
        WindowEnded = "window-ended",
        MaxAttempts = "max-attempts",
        OwnerAbsent = "owner-absent",
        /// A decision needed the callback's zone, which this build does not know.
        UnknownZone = "unknown-zone",
        Cancelled = "cancelled",
        /// A DNC telephony outcome: the contact is on the do-not-call list.
        Dnc = "dnc",
        /// A Reject telephony outcome.
        Reject = "reject",
        /// An outcome the catalogue marks as closing the contact.
        Closed = "closed",
        /// A later outcome for the same call asked for no callback.
        Replaced = "replaced",
        /// An outcome was set on another call for the same contact: the customer was
        /// reached another way (`--complete-on-contact`).
        Contacted = "contacted",
    }
);

named!(
    /// What an event on the queue tells dialers.
    EventKind {
        /// Dial the contact now, inside the window.
        Redial = "redial",
        /// The callback ended without reaching the customer.
        Expired = "expired",
    }
);

named!(
    /// What a dialer reports after dialing.
    AttemptResult {
        Connected = "connected",
        Busy = "busy",
        NoAnswer = "no_answer",
        Failed = "failed",
    }
);

named!(
    /// Whether a call is still going on.
    CallState {
        Active = "active",
        Ended = "ended",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_its_value() {
        for state in CallbackState::ALL {
            assert_eq!(CallbackState::parse(state.as_str()), Some(*state));
        }
        for reason in EndReason::ALL {
            assert_eq!(EndReason::parse(reason.as_str()), Some(*reason));
        }
        for result in AttemptResult::ALL {
            assert_eq!(AttemptResult::parse(result.as_str()), Some(*result));
        }
        assert_eq!(CallbackState::parse("Scheduled"), None);
        assert_eq!(
            serde_json::to_string(&AttemptResult::NoAnswer).unwrap(),
            "\"no_answer\""
        );
    }
}
