//! The rows of the family's read replies, every field a string as the vendor writes them.

use serde::Serialize;

/// A read's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Rows {
    Callbacks(Vec<CallbackRow>),
    Modes(Vec<ModeRow>),
    Outcomes(Vec<OutcomeRow>),
}

/// A row of `PersonalCallbackList`: a callback's window in its own zone, `DD/MM/YYYY` and
/// `HH:mm`, and the contact's campaign, ids and the number to dial as the telephony side
/// registered them (empty where it did not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallbackRow {
    pub row_number: String,
    #[serde(rename = "CampaignID")]
    pub campaign_id: String,
    #[serde(rename = "ContactID")]
    pub contact_id: String,
    #[serde(rename = "ModeID")]
    pub mode_id: String,
    pub mode_description: String,
    #[serde(rename = "CValue")]
    pub cvalue: String,
    pub call_start_date: String,
    pub call_end_date: String,
    pub call_start_time: String,
    pub call_end_time: String,
}

/// A row of `CallbackModes`: one of the contact's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeRow {
    #[serde(rename = "ModeID")]
    pub mode_id: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Cvalue")]
    pub cvalue: String,
}

/// A row of `BusinessOutcome` and `BusinessOutcomeParent`: an outcome of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRow {
    #[serde(rename = "OutcomeID")]
    pub outcome_id: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "CampaignID")]
    pub campaign_id: String,
}
