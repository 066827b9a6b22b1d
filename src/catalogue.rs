//! The outcome catalogue (`--outcomes FILE`): what the OutcomeId and BusinessOutcome values
//! of a contact center mean. Loaded from a CSV or JSON file into the database at start (it
//! stays there for later starts and for reports); while it holds any outcome, a message with
//! an id it lacks is refused, naming the field (README: The outcome catalogue).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// One outcome.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    #[serde(rename = "OutcomeID")]
    pub outcome_id: i64,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "CampaignID", default, deserialize_with = "text_or_number")]
    pub campaign_id: Option<String>,
    #[serde(rename = "ParentOutcomeID", default)]
    pub parent_id: Option<i64>,
    /// The outcome is final for the contact: its live callback ends.
    #[serde(rename = "Closes", default, deserialize_with = "flag")]
    pub closes: bool,
}

/// The catalogue in memory, for the checks every message makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue(HashMap<i64, Entry>);

impl Catalogue {
    pub fn new(entries: Vec<Entry>) -> Self {
        Self(entries.into_iter().map(|e| (e.outcome_id, e)).collect())
    }

    /// An empty catalogue accepts every id.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `id` may be used: any id when the catalogue is empty.
    pub fn admits(&self, id: i64) -> bool {
        self.is_empty() || self.0.contains_key(&id)
    }

    pub fn closes(&self, id: i64) -> bool {
        self.0.get(&id).is_some_and(|e| e.closes)
    }
}

/// Reads a catalogue file: JSON (an array of objects) when it ends in `.json` or starts with
/// `[`, CSV with a header row otherwise. Fields: `OutcomeID`, `Description`, `CampaignID`,
/// `ParentOutcomeID`, `Closes` (`true`/`false`, `1`/`0`, `yes`/`no`; absent: false).
pub fn load(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the outcome catalogue {}: {e}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    let entries = if json {
        serde_json::from_str::<Vec<Entry>>(&text).map_err(|e| {
            format!(
                "outcome catalogue {}: {e}; expected an array of objects with OutcomeID, \
                 Description and optional CampaignID, ParentOutcomeID, Closes",
                path.display()
            )
        })?
    } else {
        from_csv(&text).map_err(|e| format!("outcome catalogue {}: {e}", path.display()))?
    };
    let mut seen = std::collections::HashSet::new();
    for entry in &entries {
        if !seen.insert(entry.outcome_id) {
            return Err(format!(
                "outcome catalogue {}: OutcomeID {} appears more than once",
                path.display(),
                entry.outcome_id
            ));
        }
    }
    Ok(entries)
}

/// The CSV form: a header row naming the fields, in any order, then one outcome a row.
fn from_csv(text: &str) -> Result<Vec<Entry>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id), Some(description)) = (column("OutcomeID"), column("Description")) else {
        return Err(format!(
            "the header row {:?} lacks OutcomeID or Description; expected \
             OutcomeID,Description,CampaignID,ParentOutcomeID,Closes",
            header.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let (campaign, parent, closes) = (
        column("CampaignID"),
        column("ParentOutcomeID"),
        column("Closes"),
    );
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).filter(|c| !c.is_empty());
        let number = |name: &str, at: Option<usize>| -> Result<Option<i64>, String> {
            cell(at)
                .map(|c| {
                    c.parse::<i64>()
                        .map_err(|_| format!("line {line}: {name} {c:?} is not a whole number"))
                })
                .transpose()
        };
        entries.push(Entry {
            outcome_id: number("OutcomeID", Some(id))?.ok_or_else(|| {
                format!("line {line}: OutcomeID is empty; expected a whole number")
            })?,
            description: cell(Some(description))
                .ok_or_else(|| format!("line {line}: Description is empty"))?
                .to_owned(),
            campaign_id: cell(campaign).map(str::to_owned),
            parent_id: number("ParentOutcomeID", parent)?,
            closes: match cell(closes).map(str::to_ascii_lowercase).as_deref() {
                None | Some("false" | "0" | "no") => false,
                Some("true" | "1" | "yes") => true,
                Some(other) => {
                    return Err(format!(
                        "line {line}: Closes {other:?} is not a flag; expected true or false"
                    ))
                }
            },
        });
    }
    Ok(entries)
}

/// `CampaignID` as text, whether the file writes it as a number or a string; empty is none.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(i64),
    }
    Ok(match Option::<Id>::deserialize(d)? {
        None => None,
        Some(Id::Text(t)) if t.is_empty() => None,
        Some(Id::Text(t)) => Some(t),
        Some(Id::Number(n)) => Some(n.to_string()),
    })
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    match Option::<Flag>::deserialize(d)? {
        None => Ok(false),
        Some(Flag::Bool(b)) => Ok(b),
        Some(Flag::Number(n)) => Ok(n != 0),
        Some(Flag::Text(t)) => match t.to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" => Ok(false),
            "true" | "1" | "yes" => Ok(true),
            other => Err(serde::de::Error::custom(format!(
                "Closes {other:?} is not a flag; expected true or false"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn csv_and_json_read_the_same() {
        let (_a, csv) = file(
            "outcomes.csv",
            "OutcomeID,Description,CampaignID,ParentOutcomeID,Closes\n\
             4,Callback requested,1,,no\n101,\"Payment, done\",1,4,true\n",
        );
        let (_b, json) = file(
            "outcomes.json",
            r#"[{"OutcomeID": 4, "Description": "Callback requested", "CampaignID": 1},
                {"OutcomeID": 101, "Description": "Payment, done", "CampaignID": "1",
                 "ParentOutcomeID": 4, "Closes": true}]"#,
        );
        let (csv, json) = (load(&csv).unwrap(), load(&json).unwrap());
        assert_eq!(csv, json);
        assert_eq!(csv[1].description, "Payment, done");
        let catalogue = Catalogue::new(csv);
        assert!(catalogue.admits(101) && !catalogue.admits(5));
        assert!(catalogue.closes(101) && !catalogue.closes(4));
        assert!(
            Catalogue::default().admits(5),
            "an empty catalogue admits every id"
        );
    }

    #[test]
    fn a_bad_file_says_where() {
        let (_d, path) = file("o.csv", "OutcomeID,Description\nfour,Callback\n");
        let error = load(&path).unwrap_err();
        assert!(
            error.contains("o.csv") && error.contains("line 2"),
            "{error}"
        );
        let (_d, path) = file("o.csv", "OutcomeID,Description\n4,a\n4,b\n");
        assert!(load(&path)
            .unwrap_err()
            .contains("OutcomeID 4 appears more than once"));
    }
}
