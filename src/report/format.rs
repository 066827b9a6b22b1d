//! How a report is printed: aligned tables that fit an 80-column terminal (columns that do
//! not fit beside the first go to a second table below, the first column repeated), CSV with
//! a header row that a spreadsheet opens, or JSON lines for pipelines.

use std::io::{self, Write};

use rusqlite::types::Value;

use crate::store::reports::Rows;

/// The width a table is laid out for.
const TERMINAL: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub fn write(rows: &Rows, format: Format, out: &mut impl Write) -> io::Result<()> {
    match format {
        Format::Table => table(rows, out),
        Format::Csv => csv(rows, out),
        Format::Json => json_lines(rows, out),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Integer(n) => n.to_string(),
        // `25.0`, not `25`: a percentage or a lag reads as one.
        Value::Real(x) => format!("{x:?}"),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

fn is_number(value: &Value) -> bool {
    matches!(value, Value::Integer(_) | Value::Real(_))
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        other => text(other),
    }
}

/// As many tables as it takes for each to fit [`TERMINAL`]: the first column, then the next
/// columns that fit beside it.
fn table(rows: &Rows, out: &mut impl Write) -> io::Result<()> {
    if rows.rows.is_empty() {
        return writeln!(out, "(no rows)");
    }
    let widths: Vec<usize> = (0..rows.columns.len())
        .map(|i| {
            rows.rows
                .iter()
                .map(|r| cell(&r[i]).chars().count())
                .chain([rows.columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut used = TERMINAL + 1;
    for i in 1..widths.len() {
        if used + 2 + widths[i] > TERMINAL {
            chunks.push(vec![0]);
            used = widths[0];
        }
        chunks.last_mut().expect("a chunk was started").push(i);
        used += 2 + widths[i];
    }
    if chunks.is_empty() {
        chunks.push(vec![0]);
    }
    for (n, columns) in chunks.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        one_table(rows, columns, &widths, out)?;
    }
    Ok(())
}

fn one_table(
    rows: &Rows,
    columns: &[usize],
    widths: &[usize],
    out: &mut impl Write,
) -> io::Result<()> {
    let numeric = |i: usize| rows.rows.iter().any(|r| is_number(&r[i]));
    let line = |cells: Vec<(usize, String)>| {
        cells
            .into_iter()
            .map(|(i, s)| {
                let w = widths[i];
                if numeric(i) {
                    format!("{s:>w$}")
                } else {
                    format!("{s:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let head = columns
        .iter()
        .map(|&i| (i, rows.columns[i].clone()))
        .collect();
    writeln!(out, "{}", line(head))?;
    let rule = columns
        .iter()
        .map(|&i| "-".repeat(widths[i]))
        .collect::<Vec<_>>();
    writeln!(out, "{}", rule.join("  "))?;
    for row in &rows.rows {
        writeln!(
            out,
            "{}",
            line(columns.iter().map(|&i| (i, cell(&row[i]))).collect())
        )?;
    }
    Ok(())
}

fn csv(rows: &Rows, out: &mut impl Write) -> io::Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer.write_record(&rows.columns)?;
    for row in &rows.rows {
        writer.write_record(row.iter().map(text))?;
    }
    writer.flush()
}

fn json_lines(rows: &Rows, out: &mut impl Write) -> io::Result<()> {
    for row in &rows.rows {
        let object: serde_json::Map<String, serde_json::Value> = rows
            .columns
            .iter()
            .zip(row)
            .map(|(name, value)| {
                let value = match value {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(n) => (*n).into(),
                    Value::Real(x) => serde_json::Number::from_f64(*x)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    other => text(other).into(),
                };
                (name.clone(), value)
            })
            .collect();
        serde_json::to_writer(&mut *out, &object)?;
        writeln!(out)?;
    }
    Ok(())
}
