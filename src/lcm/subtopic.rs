//! The messages of the LCM family redial serves, by their subtopic: the vendor's name of each
//! request, and of its reply.

use std::fmt;

/// A message of the family (`LCM-FAMILY.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subtopic {
    /// An outcome and a personal callback, owned by `UserID` (the seed).
    PersonalCallback,
    /// An outcome and a normal callback, which any agent may take.
    NormalCallback,
    /// An outcome, with comments; no callback.
    Comments,
    /// A personal callback and its comments; the call's outcome is left as it was.
    PersonalCallbackWithComments,
    /// A business outcome and a telephony outcome (DNC, Reject, ...).
    CallOutcome,
    /// A telephony outcome, with comments.
    CallOutcomeWithComments,
    /// An agent's state: logged in or out.
    AgentState,
    /// An agent's live personal callbacks, a page at a time.
    PersonalCallbackList,
    /// The modes (numbers) of a contact.
    CallbackModes,
    /// The outcome catalogue's primary outcomes for a contact's campaign.
    BusinessOutcome,
    /// The outcomes under one parent.
    BusinessOutcomeParent,
}

impl Subtopic {
    pub const ALL: [Subtopic; 11] = [
        Subtopic::PersonalCallback,
        Subtopic::NormalCallback,
        Subtopic::Comments,
        Subtopic::PersonalCallbackWithComments,
        Subtopic::CallOutcome,
        Subtopic::CallOutcomeWithComments,
        Subtopic::AgentState,
        Subtopic::PersonalCallbackList,
        Subtopic::CallbackModes,
        Subtopic::BusinessOutcome,
        Subtopic::BusinessOutcomeParent,
    ];

    /// The request's subtopic, as the vendor writes it.
    pub fn name(self) -> &'static str {
        match self {
            Subtopic::PersonalCallback => "SetBusinessOutcomeWithPersonalCallback",
            Subtopic::NormalCallback => "SetBusinessOutcomeWithCallback",
            Subtopic::Comments => "SetBusinessOutcomeWithComments",
            Subtopic::PersonalCallbackWithComments => "SetPersonalCallbackWithComments",
            Subtopic::CallOutcome => "SetBusinessOutcomeWithCallOutcome",
            Subtopic::CallOutcomeWithComments => "SetCallOutcomeWithComments",
            Subtopic::AgentState => "SendAgentState",
            Subtopic::PersonalCallbackList => "GetPersonalCallbackList",
            Subtopic::CallbackModes => "GetCallBackModes",
            Subtopic::BusinessOutcome => "GetBusinessOutcome",
            Subtopic::BusinessOutcomeParent => "GetBusinessOutcomeParent",
        }
    }

    /// The reply's subtopic: the request's with `Result` for a write, the vendor's own name of
    /// the data for a read.
    pub fn reply(self) -> &'static str {
        match self {
            Subtopic::PersonalCallback => "SetBusinessOutcomeWithPersonalCallbackResult",
            Subtopic::NormalCallback => "SetBusinessOutcomeWithCallbackResult",
            Subtopic::Comments => "SetBusinessOutcomeWithCommentsResult",
            Subtopic::PersonalCallbackWithComments => "SetPersonalCallbackWithCommentsResult",
            Subtopic::CallOutcome => "SetBusinessOutcomeWithCallOutcomeResult",
            Subtopic::CallOutcomeWithComments => "SetCallOutcomeWithCommentsResult",
            Subtopic::AgentState => "SendAgentStateResult",
            Subtopic::PersonalCallbackList => "PersonalCallbackList",
            Subtopic::CallbackModes => "CallbackModes",
            Subtopic::BusinessOutcome => "BusinessOutcome",
            Subtopic::BusinessOutcomeParent => "BusinessOutcomeParent",
        }
    }

    /// The message a subtopic names, in any case (`GetBusinessOutCome` occurs in the vendor's
    /// own samples).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
    }

    /// The names, for an error that lists them.
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|s| s.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for Subtopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtopics_match_in_any_case_and_reply_as_the_vendor_names_them() {
        assert_eq!(
            Subtopic::parse("GetBusinessOutCome"),
            Some(Subtopic::BusinessOutcome)
        );
        assert_eq!(
            Subtopic::parse("setbusinessoutcomewithpersonalcallback"),
            Some(Subtopic::PersonalCallback)
        );
        assert_eq!(Subtopic::parse("SetSomethingElse"), None);
        for s in Subtopic::ALL {
            assert_eq!(Subtopic::parse(s.name()), Some(s));
        }
        assert_eq!(Subtopic::CallbackModes.reply(), "CallbackModes");
    }
}
