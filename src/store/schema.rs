//! Applies `schema.sql`, step by step, recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use super::StoreError;

/// The schema, compiled into the binary so a deployment is one file.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// One numbered step of `schema.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub version: u32,
    pub sql: &'static str,
}

/// The steps of `schema.sql`, in order. A step starts at a line `-- step N: ...`.
pub fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut current: Option<(u32, usize)> = None;
    let mut offset = 0;
    for line in SCHEMA_SQL.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("-- step ") {
            let number = rest.split(':').next().unwrap_or_default().trim();
            let version = number
                .parse()
                .expect("schema.sql: a step line names its number");
            if let Some((v, start)) = current.take() {
                steps.push(Step {
                    version: v,
                    sql: &SCHEMA_SQL[start..offset],
                });
            }
            current = Some((version, offset));
        }
        offset += line.len();
    }
    if let Some((v, start)) = current {
        steps.push(Step {
            version: v,
            sql: &SCHEMA_SQL[start..],
        });
    }
    steps
}

/// The schema version this binary brings a database to.
pub fn latest_version() -> u32 {
    steps().last().map_or(0, |s| s.version)
}

/// Brings `conn` to `target` (default: the latest version), one transaction per step, and
/// returns the version it is at. A database from a newer binary is refused, not touched.
pub fn migrate(conn: &mut Connection, target: Option<u32>) -> Result<u32, StoreError> {
    let latest = latest_version();
    let target = target.unwrap_or(latest);
    let mut version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > latest {
        return Err(StoreError::Schema(format!(
            "the database is at schema version {version}, newer than this binary's {latest}; \
             run a newer redial or restore a backup"
        )));
    }
    let pending: Vec<Step> = steps()
        .into_iter()
        .filter(|s| s.version > version && s.version <= target)
        .collect();
    for step in pending {
        let tx = conn.transaction()?;
        tx.execute_batch(step.sql)
            .map_err(|e| StoreError::Schema(format!("schema step {} failed: {e}", step.version)))?;
        tx.pragma_update(None, "user_version", step.version)?;
        tx.commit()?;
        version = step.version;
        tracing::info!(version, "schema step applied");
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_one_up() {
        let steps = steps();
        assert!(!steps.is_empty());
        for (i, step) in steps.iter().enumerate() {
            assert_eq!(
                step.version as usize,
                i + 1,
                "steps must count 1, 2, 3, ..."
            );
            assert!(
                ["CREATE", "ALTER", "DROP"]
                    .iter()
                    .any(|verb| step.sql.contains(verb)),
                "step {} changes nothing",
                step.version
            );
        }
    }
}
