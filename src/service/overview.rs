//! What the supervisor page reads: the counters and the next hour at a glance, a report
//! over a range, and one callback's history.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Error, Service};
use crate::store::callbacks::Callback;
use crate::store::overview::{self, Counts, Slice, Step};
use crate::store::reports::{self, Rows};
use crate::zone::{serialize_utc, Zone};

/// `GET /v1/overview`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overview {
    #[serde(serialize_with = "serialize_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// The zone "today" is read in.
    pub timezone: Zone,
    pub counts: Counts,
    /// Live windows opening in the next hour, by five minutes.
    pub next_hour: Vec<Slice>,
}

/// `GET /v1/callbacks/{id}/history`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct History {
    pub callback: Callback,
    pub history: Vec<Step>,
}

impl Service {
    /// The counters and the next hour now, "today" beginning at midnight in `zone`.
    pub async fn overview(&self, zone: Tz) -> Result<Overview, Error> {
        let now = self.clock.now();
        let midnight = now.with_timezone(&zone).date_naive();
        let day_start =
            crate::zone::range_end(&midnight.to_string(), zone, crate::zone::Bound::From)
                .unwrap_or(now);
        let (counts, next_hour) = self
            .store
            .read(move |conn| {
                Ok((
                    overview::counts(conn, now, day_start)?,
                    overview::next_hour(conn, now)?,
                ))
            })
            .await?;
        Ok(Overview {
            at: now,
            timezone: Zone::from(zone),
            counts,
            next_hour,
        })
    }

    /// The callback and everything recorded about it, oldest first.
    pub async fn history(&self, id: i64) -> Result<History, Error> {
        let callback = self.callback(id).await?;
        let history = self
            .store
            .read(move |conn| Ok(overview::history(conn, id)?))
            .await?;
        Ok(History { callback, history })
    }

    /// Runs one of the reports' statements (`store::reports`) on a read connection.
    pub async fn report(&self, statement: String) -> Result<Rows, Error> {
        Ok(self
            .store
            .read(move |conn| Ok(reports::run(conn, &statement)?))
            .await?)
    }
}
