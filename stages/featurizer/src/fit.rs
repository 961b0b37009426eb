//! Training: reads headerless CSV files record by record and fits the
//! imputers, the scaler and the category lists, keeping per column only the
//! statistics (and, for a median or mode, the value counts) they need.

use std::collections::HashSet;
use std::io::Read;
use std::time::{Duration, Instant};

use modelstage_sdk::{excerpt, StageError};

use crate::column::ColumnStore;
use crate::field::{is_missing, parse_number};
use crate::model::{CategoricalColumn, FitOptions, FittedModel, NumericColumn, FORMAT};
use crate::schema::{Config, NumericImputer};
use crate::stats::{mean_and_variance, median, most_frequent, observed_mean, scale_of};

/// How often a long read logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

struct NumericAcc {
    index: usize,
    name: String,
    values: ColumnStore,
    missing: u64,
}

struct CategoricalAcc {
    index: usize,
    name: String,
    seen: HashSet<Vec<u8>>,
    missing: u64,
}

/// Accumulates the training data; [`Fitter::finish`] gives the model.
pub struct Fitter {
    config: Config,
    numeric: Vec<NumericAcc>,
    categorical: Vec<CategoricalAcc>,
    rows: u64,
    bytes: u64,
    started: Instant,
    last_log: Instant,
}

impl Fitter {
    pub fn new(config: Config) -> Fitter {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        for (index, column) in config.columns.iter().enumerate() {
            if column.categorical {
                categorical.push(CategoricalAcc {
                    index,
                    name: column.name.clone(),
                    seen: HashSet::new(),
                    missing: 0,
                });
            } else {
                numeric.push(NumericAcc {
                    index,
                    name: column.name.clone(),
                    values: ColumnStore::default(),
                    missing: 0,
                });
            }
        }
        let now = Instant::now();
        Fitter {
            config,
            numeric,
            categorical,
            rows: 0,
            bytes: 0,
            started: now,
            last_log: now,
        }
    }

    /// Reads one headerless CSV source (`name` is used in messages).
    pub fn read<R: Read>(&mut self, reader: R, name: &str) -> Result<(), StageError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(reader);
        let mut record = csv::ByteRecord::new();
        let mut last_byte = 0;
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(StageError::bad_request(format!("{name}: {e}"))),
            }
            let line = record.position().map_or(0, |p| p.line());
            // A line of spaces is blank to pandas, which skips it.
            if record.len() == 1 && record[0].trim_ascii().is_empty() {
                continue;
            }
            self.push(&record, name, line)?;
            if self.rows & 0xFFFF == 0 {
                let byte = csv.position().byte();
                self.bytes += byte - last_byte;
                last_byte = byte;
                self.log_progress(name);
            }
        }
        self.bytes += csv.position().byte() - last_byte;
        Ok(())
    }

    fn log_progress(&mut self, name: &str) {
        let now = Instant::now();
        if now.duration_since(self.last_log) >= PROGRESS_EVERY {
            self.last_log = now;
            let secs = now.duration_since(self.started).as_secs_f64();
            log::info!(
                "{} records, {:.0} MB read in {secs:.1} s ({:.0} MB/s), now in {name}",
                self.rows,
                self.bytes as f64 / 1e6,
                self.bytes as f64 / 1e6 / secs.max(1e-9),
            );
        }
    }

    /// Adds one record (`line` is 1-based, for messages).
    fn push(&mut self, record: &csv::ByteRecord, name: &str, line: u64) -> Result<(), StageError> {
        let width = self.config.training_width();
        if record.len() != width {
            return Err(self.width_error(record, name, line));
        }
        for acc in &mut self.numeric {
            let field = &record[acc.index];
            match parse_number(field) {
                Ok(value) => {
                    acc.missing += u64::from(value.is_none());
                    acc.values.push(value);
                }
                Err(e) => {
                    let hint = if line == 1 && field.trim_ascii() == acc.name.as_bytes() {
                        " (training files have no header line)"
                    } else {
                        ""
                    };
                    return Err(StageError::bad_request(format!(
                        "{name}, line {line}, column '{}': {}{hint}",
                        acc.name,
                        e.describe(field)
                    )));
                }
            }
        }
        for acc in &mut self.categorical {
            let field = &record[acc.index];
            if is_missing(field) {
                acc.missing += 1;
            } else if !acc.seen.contains(field) {
                if std::str::from_utf8(field).is_err() {
                    return Err(StageError::bad_request(format!(
                        "{name}, line {line}, column '{}': '{}' is not valid UTF-8",
                        acc.name,
                        excerpt(field)
                    )));
                }
                acc.seen.insert(field.to_vec());
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn width_error(&self, record: &csv::ByteRecord, name: &str, line: u64) -> StageError {
        let width = self.config.training_width();
        let names: Vec<&str> = self.config.columns.iter().map(|c| c.name.as_str()).collect();
        let expected = match &self.config.label {
            Some(label) => format!("{width}: the columns {} and the label '{label}'", names.join(",")),
            None => format!("{width}: the columns {}", names.join(",")),
        };
        let mut message = format!(
            "{name}, line {line}: {} fields, expected {expected}",
            record.len()
        );
        if record.len() == 1 && record[0].contains(&b'\t') {
            message.push_str("; the line holds tabs, but fields must be separated by commas");
        } else if self.config.label.is_none() && record.len() == width + 1 {
            message.push_str("; if the last field is the label, set the hyperparameter 'label'");
        }
        StageError::bad_request(message)
    }

    /// Computes the fitted statistics.
    pub fn finish(self) -> Result<FittedModel, StageError> {
        if self.rows == 0 {
            return Err(StageError::bad_request("the training data has no records"));
        }
        let config = &self.config;
        log::info!(
            "fitted on {} records ({:.1} MB) in {:.3} s",
            self.rows,
            self.bytes as f64 / 1e6,
            self.started.elapsed().as_secs_f64()
        );
        let mut numeric = Vec::new();
        for acc in &self.numeric {
            let observed = self.rows - acc.missing;
            let fill = match config.numeric_imputer {
                NumericImputer::Constant => Some(config.numeric_fill_value),
                NumericImputer::Mean => observed_mean(&acc.values, observed),
                NumericImputer::Median => median(&acc.values.sorted_counts()),
                NumericImputer::MostFrequent => most_frequent(&acc.values.sorted_counts()),
            };
            // scikit-learn drops such a column with a warning, which shifts
            // every later feature; failing is the safer answer.
            let fill = fill.ok_or_else(|| {
                StageError::bad_request(format!(
                    "column '{}' has no values in the training data (all {} are missing), so there is \
                     nothing to impute from; fill it in or use numeric_imputer=constant",
                    acc.name, self.rows
                ))
            })?;
            let (mean, variance, scale) = if config.scale {
                let column = &acc.values;
                let (mean, variance) = mean_and_variance(column.len(), &|i| column.get_or(i, fill));
                (mean, variance, scale_of(variance, mean, self.rows))
            } else {
                (0.0, 0.0, 1.0)
            };
            numeric.push(NumericColumn {
                name: acc.name.clone(),
                index: acc.index,
                fill,
                mean,
                variance,
                scale,
                missing: acc.missing,
            });
        }
        let mut categorical = Vec::new();
        for acc in &self.categorical {
            let mut categories: Vec<String> = acc
                .seen
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            if acc.missing > 0 && !categories.contains(&config.categorical_fill_value) {
                categories.push(config.categorical_fill_value.clone());
            }
            // Byte order of UTF-8 is code point order, which is Python's.
            categories.sort_unstable();
            categorical.push(CategoricalColumn {
                name: acc.name.clone(),
                index: acc.index,
                categories,
                missing: acc.missing,
            });
        }
        let mut feature_names: Vec<String> = numeric.iter().map(|c| c.name.clone()).collect();
        for c in &categorical {
            feature_names.extend(c.categories.iter().map(|cat| format!("{}_{cat}", c.name)));
        }
        Ok(FittedModel {
            format: FORMAT.to_string(),
            columns: config.columns.iter().map(|c| c.name.clone()).collect(),
            label: config.label.clone(),
            options: FitOptions {
                numeric_imputer: config.numeric_imputer,
                scale: config.scale,
                handle_unknown: config.handle_unknown,
                categorical_fill_value: config.categorical_fill_value.clone(),
            },
            rows: self.rows,
            numeric,
            categorical,
            feature_names,
        })
    }
}
