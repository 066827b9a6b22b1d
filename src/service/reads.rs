//! The LCM family's reads: an agent's live personal callbacks (`GetPersonalCallbackList`),
//! a contact's modes (`GetCallBackModes`) and the outcome catalogue for it
//! (`GetBusinessOutcome`, `GetBusinessOutcomeParent`). Each has the family's prerequisite:
//! the agent is logged in or on an active call.

use super::{Error, Service};
use crate::lcm::request::{CallbackList, ContactRead};
use crate::lcm::rows::{CallbackRow, ModeRow, OutcomeRow, Rows};
use crate::lcm::Subtopic;
use crate::store::{catalogue, contacts, lists, telephony};

impl Service {
    /// A page of `UserID`'s live personal callbacks (scheduled, due or leased; a finished one
    /// is not listed) whose window starts on a local date from `FromDate` to `ToDate`, in
    /// window order, each in its own zone.
    pub async fn callback_list(&self, list: CallbackList) -> Result<Vec<CallbackRow>, Error> {
        self.store
            .read(move |conn| {
                if !telephony::agent_is_present(conn, &list.user_id)? {
                    return Ok(Err(Error::AgentNotLoggedIn(list.user_id.clone())));
                }
                let listed = lists::personal_callbacks(
                    conn,
                    &list.user_id,
                    list.from,
                    list.to,
                    list.first,
                    list.rows,
                )?;
                Ok(Ok(listed
                    .into_iter()
                    .zip(list.first..)
                    .map(|(entry, number)| row(number, entry))
                    .collect()))
            })
            .await?
    }

    /// The modes of the call's contact, or the catalogue's outcomes for it (the primary ones,
    /// or those under `ParentBusinessOutcomeId`), for the contact's campaign.
    pub async fn contact_read(&self, read: ContactRead) -> Result<Rows, Error> {
        self.store
            .read(move |conn| {
                let Some((call, present)) = telephony::call_and_presence(conn, &read.callid)?
                else {
                    return Ok(Err(Error::UnknownCall(read.callid.clone())));
                };
                if call.account_number != read.account_number {
                    return Ok(Err(Error::AccountMismatch {
                        callid: read.callid.clone(),
                        registered: call.account_number,
                        sent: read.account_number.clone(),
                    }));
                }
                if !present {
                    return Ok(Err(Error::AgentNotLoggedIn(call.user_id)));
                }
                let account = &read.account_number;
                if read.subtopic == Subtopic::CallbackModes {
                    let modes = contacts::modes(conn, account)?;
                    return Ok(Ok(Rows::Modes(
                        modes
                            .into_iter()
                            .map(|m| ModeRow {
                                mode_id: m.mode_id.to_string(),
                                description: m.description,
                                cvalue: m.cvalue,
                            })
                            .collect(),
                    )));
                }
                let campaign = contacts::contact(conn, account)?.and_then(|c| c.campaign_id);
                let outcomes = catalogue::under(conn, read.parent, campaign.as_deref())?;
                Ok(Ok(Rows::Outcomes(
                    outcomes
                        .into_iter()
                        .map(|e| OutcomeRow {
                            outcome_id: e.outcome_id.to_string(),
                            description: e.description,
                            campaign_id: e.campaign_id.unwrap_or_default(),
                        })
                        .collect(),
                )))
            })
            .await?
    }
}

/// A listed callback as the vendor's row: its window's local date and time, read from the
/// RFC 3339 text stored with it in its own zone (`2026-03-29T09:00:00+01:00`).
fn row(number: i64, entry: lists::Listed) -> CallbackRow {
    let (start_date, start_time) = date_and_time(&entry.window_start_local);
    let (end_date, end_time) = date_and_time(&entry.window_end_local);
    CallbackRow {
        row_number: number.to_string(),
        campaign_id: entry.campaign_id.unwrap_or_default(),
        contact_id: entry.contact_id.unwrap_or_default(),
        mode_id: entry.callback_mode_id.to_string(),
        mode_description: entry.mode_description.unwrap_or_default(),
        cvalue: entry.cvalue.unwrap_or_default(),
        call_start_date: start_date,
        call_end_date: end_date,
        call_start_time: start_time,
        call_end_time: end_time,
    }
}

/// `DD/MM/YYYY` and `HH:mm` of the RFC 3339 local time stored with a window
/// (`2026-03-29T09:05:00+01:00`), read from its fixed places: a page of 1,000 rows would
/// otherwise spend most of its time parsing and formatting dates. Empty when it is not one.
fn date_and_time(rfc3339: &str) -> (String, String) {
    let b = rfc3339.as_bytes();
    let digits = |at: std::ops::Range<usize>| b[at].iter().all(u8::is_ascii_digit);
    let shaped = b.len() >= 16
        && (b[4], b[7], b[10], b[13]) == (b'-', b'-', b'T', b':')
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16);
    if !shaped {
        return (String::new(), String::new());
    }
    let mut date = String::with_capacity(10);
    for part in [&rfc3339[8..10], "/", &rfc3339[5..7], "/", &rfc3339[0..4]] {
        date.push_str(part);
    }
    (date, rfc3339[11..16].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_window_reads_in_its_own_zone() {
        assert_eq!(
            date_and_time("2026-03-29T09:05:00+01:00"),
            ("29/03/2026".to_owned(), "09:05".to_owned())
        );
        assert_eq!(
            date_and_time("2026-01-13T23:30:00Z"),
            ("13/01/2026".to_owned(), "23:30".to_owned())
        );
        for broken in [
            "",
            "2026-01-13",
            "2026/01/13T23:30:00Z",
            "2026-01-13T2x:30:00Z",
        ] {
            assert_eq!(date_and_time(broken), (String::new(), String::new()));
        }
    }
}
