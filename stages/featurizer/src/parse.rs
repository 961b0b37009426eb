//! Reads a `text/csv` request body into a [`Batch`]: numbers parsed,
//! categories turned into codes, the label detected by the field count.
//! Bodies without quotes and lone carriage returns take a splitter that
//! works on the body in place; the rest go through the `csv` crate.

use std::cell::RefCell;

use modelstage_sdk::codecs::csv::{plain_lines, split_fields};
use modelstage_sdk::codecs::number_cache::NumberCache;
use modelstage_sdk::{excerpt, StageError};

use crate::field::{is_missing, parse_label, parse_number, NumberError};
use crate::plan::{FieldRole, Plan, UNKNOWN};
use crate::schema::HandleUnknown;

/// The parsed records of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub rows: usize,
    /// Whether the records carry the label after the features.
    pub labelled: bool,
    /// One per record when labelled; NaN for an empty label.
    pub labels: Vec<f64>,
    /// `rows x numeric columns`, row-major; NaN marks a missing value.
    pub numbers: Vec<f64>,
    /// `rows x categorical columns`, row-major; the category's code, with
    /// missing values already replaced by the fill value's code.
    pub codes: Vec<u32>,
}

/// Entries of the per-thread cache of numeric fields by their text (40
/// bytes each). Tabular columns repeat their values: abalone's seven numeric
/// columns hold under 3,000 distinct texts, so a repeated field costs a
/// lookup instead of a parse.
const CACHE_SLOTS: usize = 16 * 1024;

thread_local! {
    static NUMBERS: RefCell<NumberCache> = RefCell::new(NumberCache::new(CACHE_SLOTS));
}

/// Parses a request body.
pub fn parse(plan: &Plan, body: &[u8]) -> Result<Batch, StageError> {
    NUMBERS.with(|cache| match cache.try_borrow_mut() {
        Ok(mut numbers) => parse_with(plan, body, &mut numbers),
        // Only reachable if parsing re-entered itself; parse uncached.
        Err(_) => parse_with(plan, body, &mut NumberCache::new(2)),
    })
}

fn parse_with(plan: &Plan, body: &[u8], numbers: &mut NumberCache) -> Result<Batch, StageError> {
    let mut builder = BatchBuilder::new(plan, body.len(), numbers);
    if simple_body(body) {
        split_simple(&mut builder, body)?;
    } else {
        split_csv(&mut builder, body)?;
    }
    builder.finish()
}

/// The fast path: lines at `\n` (a trailing `\r` dropped), fields at `,`,
/// all borrowed from the body.
fn split_simple(builder: &mut BatchBuilder<'_>, body: &[u8]) -> Result<(), StageError> {
    let mut fields: Vec<&[u8]> = Vec::with_capacity(builder.plan.width() + 1);
    for (line_no, line) in plain_lines(body) {
        split_fields(line, &mut fields);
        builder.push(&fields, line_no)?;
    }
    Ok(())
}

/// The general path: quoted fields and lone `\r` line ends, by the `csv` crate.
fn split_csv(builder: &mut BatchBuilder<'_>, body: &[u8]) -> Result<(), StageError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(builder.error(format!("line {line}: {e}"))),
        }
        if record.len() == 1 && record[0].trim_ascii().is_empty() {
            continue;
        }
        let line = record.position().map_or(line, |p| p.line());
        let fields: Vec<&[u8]> = record.iter().collect();
        builder.push(&fields, line)?;
    }
}

/// True when the fast splitter reads `body` as the CSV reader would: no
/// quotes, and every `\r` is part of a `\r\n`.
fn simple_body(body: &[u8]) -> bool {
    if memchr::memchr(b'"', body).is_some() {
        return false;
    }
    memchr::memchr_iter(b'\r', body).all(|i| body.get(i + 1) == Some(&b'\n'))
}

struct BatchBuilder<'p> {
    plan: &'p Plan,
    /// Numeric fields parsed before, by text: what `parse_number` gave,
    /// NaN for a missing value (a number it accepts is never NaN).
    numbers: &'p mut NumberCache,
    batch: Batch,
    /// Fields per record, fixed by the first record.
    fields: usize,
    first_line: u64,
    rows: usize,
}

impl<'p> BatchBuilder<'p> {
    fn new(plan: &'p Plan, body_len: usize, numbers: &'p mut NumberCache) -> Self {
        // Abalone-like records are ~50 bytes; reserving for that avoids
        // regrowing the vectors on large requests and costs little on small.
        let estimate = (body_len / 32).clamp(1, 1 << 20);
        BatchBuilder {
            plan,
            numbers,
            batch: Batch {
                rows: 0,
                labelled: false,
                labels: Vec::new(),
                numbers: Vec::with_capacity(estimate * plan.numeric.len()),
                codes: Vec::with_capacity(estimate * plan.categorical.len()),
            },
            fields: 0,
            first_line: 0,
            rows: 0,
        }
    }

    fn error(&self, message: String) -> StageError {
        StageError::bad_request(message).at_record(self.rows)
    }

    fn push(&mut self, fields: &[&[u8]], line: u64) -> Result<(), StageError> {
        let width = self.plan.width();
        if self.rows == 0 {
            if fields.len() != width && fields.len() != width + 1 {
                return Err(self.error(self.width_message(fields, line)));
            }
            self.fields = fields.len();
            self.first_line = line;
            self.batch.labelled = fields.len() == width + 1;
            if self.batch.labelled {
                self.batch
                    .labels
                    .reserve(self.batch.numbers.capacity() / self.plan.numeric.len().max(1));
            }
        } else if fields.len() != self.fields {
            return Err(self.error(format!(
                "line {line} has {} fields but line {} has {}; every record of a request must have the same \
                 fields",
                fields.len(),
                self.first_line,
                self.fields
            )));
        }
        for (field, role) in fields.iter().zip(&self.plan.fields) {
            match *role {
                FieldRole::Numeric(slot) => {
                    let number = |f: &[u8]| parse_number(f).ok().map(|v| v.unwrap_or(f64::NAN));
                    match self.numbers.get_or_parse(field, number) {
                        Some(value) => self.batch.numbers.push(value),
                        None => {
                            // Refusals are never cached: parse again for the reason.
                            let e = parse_number(field).err().unwrap_or(NumberError::NotANumber);
                            return Err(self.number_error(fields, line, slot, e));
                        }
                    }
                }
                FieldRole::Categorical(slot) => {
                    let column = &self.plan.categorical[slot];
                    let code = if is_missing(field) {
                        column.missing_code
                    } else {
                        column.categories.code(field)
                    };
                    if code == UNKNOWN && self.plan.handle_unknown == HandleUnknown::Error {
                        return Err(self.unknown_error(field, line, slot));
                    }
                    self.batch.codes.push(code);
                }
            }
        }
        if self.batch.labelled {
            let field = fields[width];
            match parse_label(field) {
                Some(label) => self.batch.labels.push(label),
                None => {
                    return Err(self.error(format!(
                        "line {line}, column '{}' (the label): '{}' is not a number",
                        self.plan.label_name,
                        excerpt(field)
                    )))
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn width_message(&self, fields: &[&[u8]], line: u64) -> String {
        let width = self.plan.width();
        let mut message = format!(
            "line {line} has {} field{}; expected {width} ({}) or {} with the label '{}' last",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" },
            self.plan.model.columns.join(","),
            width + 1,
            self.plan.label_name
        );
        if fields.len() == 1 && fields[0].contains(&b'\t') {
            message.push_str("; the line holds tabs, but fields must be separated by commas");
        }
        message
    }

    fn number_error(&self, fields: &[&[u8]], line: u64, slot: usize, e: NumberError) -> StageError {
        let column = &self.plan.model.numeric[slot];
        let field = fields[column.index];
        // A header line names its columns; say so rather than complain
        // about the one field that happened to be checked first.
        let is_header = self.rows == 0
            && fields
                .iter()
                .zip(&self.plan.model.columns)
                .any(|(f, name)| f.trim_ascii() == name.as_bytes());
        if is_header {
            return self.error(format!(
                "line {line} looks like a header (it names the columns); send records only, without a header \
                 line"
            ));
        }
        self.error(format!(
            "line {line}, column '{}': {}",
            column.name,
            e.describe(field)
        ))
    }

    fn unknown_error(&self, field: &[u8], line: u64, slot: usize) -> StageError {
        let column = &self.plan.model.categorical[slot];
        let value = if is_missing(field) {
            format!(
                "a missing value ('{}')",
                self.plan.model.options.categorical_fill_value
            )
        } else {
            format!("'{}'", excerpt(field))
        };
        self.error(format!(
            "line {line}, column '{}': unknown category {value}; the model knows {} (handle_unknown=error)",
            column.name,
            column.categories.join(", ")
        ))
    }

    fn finish(mut self) -> Result<Batch, StageError> {
        if self.rows == 0 {
            return Err(StageError::bad_request(
                "the request body is empty; send one CSV record per line".to_string(),
            ));
        }
        self.batch.rows = self.rows;
        Ok(self.batch)
    }
}
