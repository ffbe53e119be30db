//! Records as files: CSV (a header row of `id`, `owner` and field names) and JSON Lines
//! (one record per line), read for imports and written for exports.
//!
//! An import checks every row before it writes any (one bad row imports nothing), then
//! writes in batches of one durable transaction each; the rows are read twice, so the
//! file is never held in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use super::{Store, StoreError};
use crate::value::{FieldValue, Record};

/// How many records one import transaction writes.
const BATCH: usize = 5000;

/// The formats records are read and written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// CSV with a header row.
    Csv,
    /// JSON Lines.
    Jsonl,
}

impl RecordFormat {
    /// The format a file name's extension names (`.csv`, `.jsonl`, `.ndjson`).
    pub fn of_path(path: &Path) -> Result<RecordFormat, StoreError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
        {
            "csv" => Ok(RecordFormat::Csv),
            "jsonl" | "ndjson" => Ok(RecordFormat::Jsonl),
            other => Err(StoreError::Invalid(format!(
                "{}: unknown format `{other}` (use .csv, .jsonl or .ndjson)",
                path.display()
            ))),
        }
    }

    /// The media type of the format.
    pub fn media_type(self) -> &'static str {
        match self {
            RecordFormat::Csv => "text/csv",
            RecordFormat::Jsonl => "application/x-ndjson",
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Rows read and written.
    pub rows: u64,
    /// Records created or changed by them.
    pub changed: u64,
}

fn invalid(line: usize, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("line {line}: {what}"))
}

/// Reads records in `format`, calling `f` with each (line, record). `object` is the object
/// type of every CSV row and of JSON lines that do not name one.
pub fn read_records(
    input: impl Read,
    format: RecordFormat,
    object: Option<&str>,
    mut f: impl FnMut(usize, Record) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    match format {
        RecordFormat::Csv => {
            let object = object
                .ok_or_else(|| StoreError::Invalid("a CSV import needs the object type".into()))?;
            let mut reader = csv::Reader::from_reader(input);
            let headers = reader.headers().map_err(|e| invalid(1, e))?.clone();
            if headers.iter().all(|h| h != "id") {
                return Err(invalid(1, "the header row needs an `id` column"));
            }
            for (i, row) in reader.records().enumerate() {
                let line = i + 2;
                let row = row.map_err(|e| invalid(line, e))?;
                let mut record = Record {
                    object: object.to_string(),
                    id: String::new(),
                    owner: None,
                    fields: BTreeMap::new(),
                };
                for (name, cell) in headers.iter().zip(row.iter()) {
                    match name {
                        "id" => record.id = cell.to_string(),
                        "owner" if !cell.is_empty() => record.owner = Some(cell.to_string()),
                        "owner" => {}
                        _ if cell.is_empty() => {}
                        field => {
                            record
                                .fields
                                .insert(field.to_string(), FieldValue::Text(cell.to_string()));
                        }
                    }
                }
                f(line, record)?;
            }
        }
        RecordFormat::Jsonl => {
            for (i, line) in BufReader::new(input).lines().enumerate() {
                let line_no = i + 1;
                let line = line.map_err(|e| invalid(line_no, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let mut value: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| invalid(line_no, format!("not JSON: {e}")))?;
                if let (Some(o), Some(map)) = (object, value.as_object_mut()) {
                    map.entry("object").or_insert_with(|| o.into());
                }
                let record: Record = serde_json::from_value(value)
                    .map_err(|e| invalid(line_no, format!("not a record: {e}")))?;
                f(line_no, record)?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// Imports the records of a file: every row is checked first (one bad row, or one
    /// record twice, imports nothing), then written in batches, each one durable
    /// transaction.
    pub fn import_file(
        &self,
        path: &Path,
        format: RecordFormat,
        object: Option<&str>,
        actor: &str,
    ) -> Result<ImportSummary, StoreError> {
        let open = || {
            std::fs::File::open(path)
                .map_err(|e| StoreError::Invalid(format!("reading {}: {e}", path.display())))
        };
        // Pass 1: check every row.
        let mut ids = BTreeSet::new();
        let mut rows = 0u64;
        read_records(open()?, format, object, |line, record| {
            let key = (record.object.clone(), record.id.clone());
            self.check_record(record).map_err(|e| invalid(line, e))?;
            if !ids.insert(key.clone()) {
                return Err(invalid(line, format!("{}/{} appears twice", key.0, key.1)));
            }
            rows += 1;
            Ok(())
        })?;
        drop(ids);
        // Pass 2: write.
        let mut batch = Vec::with_capacity(BATCH);
        let mut changed = 0u64;
        read_records(open()?, format, object, |_, record| {
            batch.push(record);
            if batch.len() == BATCH {
                changed += self.import_records(std::mem::take(&mut batch), actor)? as u64;
            }
            Ok(())
        })?;
        changed += self.import_records(batch, actor)? as u64;
        Ok(ImportSummary { rows, changed })
    }

    /// Writes every record of `object` in `format`; returns how many. Stops at the first
    /// error of `out`.
    pub fn export_records(
        &self,
        object: &str,
        format: RecordFormat,
        out: &mut impl Write,
    ) -> Result<u64, StoreError> {
        let def = self.schema().object(object)?.clone();
        let mut count = 0u64;
        let mut failure: Option<std::io::Error> = None;
        match format {
            RecordFormat::Jsonl => {
                self.for_each_record(object, |r| {
                    let written = serde_json::to_vec(&r)
                        .map_err(std::io::Error::other)
                        .and_then(|mut line| {
                            line.push(b'\n');
                            out.write_all(&line)
                        });
                    count += 1;
                    written.map_err(|e| failure = Some(e)).is_ok()
                })?;
            }
            RecordFormat::Csv => {
                let fields: Vec<&String> = def.fields.keys().collect();
                let mut writer = csv::Writer::from_writer(&mut *out);
                let mut header = vec!["id".to_string(), "owner".to_string()];
                header.extend(fields.iter().map(|f| f.to_string()));
                writer
                    .write_record(&header)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                self.for_each_record(object, |r| {
                    let mut row = vec![r.id.clone(), r.owner.clone().unwrap_or_default()];
                    row.extend(fields.iter().map(|f| cell(r.fields.get(*f))));
                    count += 1;
                    writer
                        .write_record(&row)
                        .map_err(|e| failure = Some(std::io::Error::other(e)))
                        .is_ok()
                })?;
                writer
                    .flush()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
        }
        match failure {
            Some(e) => Err(StoreError::Invalid(format!("writing the export: {e}"))),
            None => Ok(count),
        }
    }
}

/// A CSV cell for a value (timestamps as RFC 3339, lists joined with `;`).
fn cell(v: Option<&FieldValue>) -> String {
    match v {
        None | Some(FieldValue::Null) => String::new(),
        Some(FieldValue::Text(t)) => t.clone(),
        Some(FieldValue::Integer(n)) => n.to_string(),
        Some(FieldValue::Number(n)) => n.to_string(),
        Some(FieldValue::Boolean(b)) => b.to_string(),
        Some(FieldValue::TextList(l)) => l.join(";"),
        Some(FieldValue::Timestamp { timestamp }) => {
            chrono::DateTime::from_timestamp_millis(*timestamp)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        }
    }
}
