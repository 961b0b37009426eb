//! Streams the rows of a training channel: every file, in order, one row at a
//! time, never holding a file in memory. CSV rows are `label,f1,...,fd`
//! (headerless); RecordIO-protobuf records carry `features["values"]` and
//! `label["values"]`.
//!
//! Errors name the channel, the file and the line (CSV) or record (RecordIO),
//! and the column where it applies.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use modelstage_sdk::StageError;
use prost::Message;

use crate::proto::Record;
use crate::recordio::RecordReader;
use crate::train::csv_blocks;

/// The encoding of a channel's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    RecordIoProtobuf,
}

impl Format {
    /// From the channel's `ContentType` in `inputdataconfig.json` (CSV when unset).
    pub fn from_content_type(channel: &str, content_type: Option<&str>) -> Result<Format, StageError> {
        let media = content_type.map(modelstage_sdk::media_type).unwrap_or("text/csv");
        if media.eq_ignore_ascii_case("text/csv") {
            Ok(Format::Csv)
        } else if media.eq_ignore_ascii_case("application/x-recordio-protobuf") {
            Ok(Format::RecordIoProtobuf)
        } else {
            Err(StageError::bad_request(format!(
                "channel '{channel}' has ContentType '{media}'; Linear Learner reads text/csv and \
                 application/x-recordio-protobuf"
            )))
        }
    }
}

/// One channel: its name, its files (sorted) and their format.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub format: Format,
}

/// Whether the reader should go on after a row (`Ok(false)` stops it). An
/// `Err` is a problem with the row; the reader adds where the row is.
pub type Flow = Result<bool, StageError>;

/// Calls `f(label, features)` for every row until it returns `Ok(false)`.
/// `dim` is the expected number of features; when `None`, the first row
/// sets it. Returns how many rows were read.
pub fn for_each_row(
    channel: &Channel,
    dim: &mut Option<usize>,
    mut f: impl FnMut(f64, &[f64]) -> Flow,
) -> Result<u64, StageError> {
    let mut rows = 0u64;
    let mut features = Vec::new();
    for path in &channel.files {
        let reader = open(channel, path)?;
        let go_on = match channel.format {
            Format::Csv => csv_rows(reader, channel, path, 0, dim, &mut features, &mut rows, &mut f)?,
            Format::RecordIoProtobuf => {
                recordio_rows(reader, channel, path, dim, &mut features, &mut rows, &mut f)?
            }
        };
        if !go_on {
            break;
        }
    }
    Ok(rows)
}

/// One of `channel`'s files, buffered.
pub(crate) fn open(channel: &Channel, path: &Path) -> Result<BufReader<File>, StageError> {
    let file = File::open(path).map_err(|e| {
        StageError::internal(format!(
            "channel '{}': cannot open {}: {e}",
            channel.name,
            path.display()
        ))
    })?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

/// Rows per chunk handed from the reader thread to the trainer, fewer for
/// very wide rows so that a chunk stays under `CHUNK_VALUES` numbers.
const CHUNK_ROWS: usize = 4096;
const CHUNK_VALUES: usize = 1 << 20;

/// Like [`for_each_row`] with a known `dim`, on the job's `parsers` CPUs.
/// With more than one, parsing runs on other threads, ahead of `f`, so that
/// reading and training overlap: an epoch then takes about as long as the
/// slower of the two, not their sum. A CSV channel is then parsed on
/// `parsers` threads ([`csv_blocks`]), other formats on one. With one (a job
/// given one CPU), rows are parsed on this thread between calls of `f`: a
/// second thread would only take turns with the first on that CPU. Rows
/// reach `f` in file order. `check` validates each label where it is
/// parsed, where the file and line are known for the error message.
pub fn for_each_checked_row(
    channel: &Channel,
    dim: usize,
    parsers: usize,
    check: impl Fn(f64) -> Result<(), StageError> + Sync,
    mut f: impl FnMut(f64, &[f64]),
) -> Result<u64, StageError> {
    if parsers <= 1 {
        return for_each_row(channel, &mut Some(dim), |y, x| {
            check(y)?;
            f(y, x);
            Ok(true)
        });
    }
    if channel.format == Format::Csv {
        return csv_blocks::for_each_row(channel, dim, parsers, csv_blocks::CUTTING, &check, f);
    }
    let stride = dim + 1;
    let capacity = CHUNK_ROWS.min(CHUNK_VALUES / stride).max(1) * stride;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<f64>>(4);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<f64>>();
        let check = &check;
        let reader = scope.spawn(move || {
            let mut buf = Vec::with_capacity(capacity);
            let mut d = Some(dim);
            let rows = for_each_row(channel, &mut d, |y, x| {
                check(y)?;
                buf.push(y);
                buf.extend_from_slice(x);
                if buf.len() >= capacity {
                    let next = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(capacity));
                    // The trainer stopped listening: stop reading.
                    if full_tx.send(std::mem::replace(&mut buf, next)).is_err() {
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
            if !buf.is_empty() {
                // A closed channel here means the trainer is gone; nothing to do.
                let _ = full_tx.send(buf);
            }
            Ok(rows)
        });
        for mut chunk in full_rx.iter() {
            for row in chunk.chunks_exact(stride) {
                f(row[0], &row[1..]);
            }
            chunk.clear();
            // The reader may have finished; then the buffer is simply dropped.
            let _ = empty_tx.send(chunk);
        }
        reader
            .join()
            .map_err(|_| StageError::internal(format!("the reader of channel '{}' panicked", channel.name)))?
    })
}

/// The rows of CSV text from `path`, whose first line is line
/// `lines_before + 1` of the file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn csv_rows<R: BufRead>(
    mut reader: R,
    channel: &Channel,
    path: &Path,
    lines_before: u64,
    dim: &mut Option<usize>,
    features: &mut Vec<f64>,
    rows: &mut u64,
    f: &mut impl FnMut(f64, &[f64]) -> Flow,
) -> Result<bool, StageError> {
    let mut line = Vec::with_capacity(256);
    let mut line_no = lines_before;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| {
            StageError::internal(format!(
                "channel '{}': cannot read {}: {e}",
                channel.name,
                path.display()
            ))
        })?;
        if n == 0 {
            return Ok(true);
        }
        line_no += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = |column: usize| {
            format!(
                "channel '{}', file {}, line {line_no}, column {column}",
                channel.name,
                path.display()
            )
        };
        features.clear();
        let mut fields = text.split(|&b| b == b',');
        let label_field = fields.next().unwrap_or_default();
        let label = parse_number(label_field).ok_or_else(|| not_a_number(&at(1), label_field))?;
        for (i, field) in fields.enumerate() {
            features.push(parse_number(field).ok_or_else(|| not_a_number(&at(i + 2), field))?);
        }
        check_dim(dim, features.len(), || at(2))?;
        *rows += 1;
        match f(label, features) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => return Err(StageError::new(e.kind, format!("{}: {e}", at(1)))),
        }
    }
}

/// A finite number, spaces around it allowed.
fn parse_number(field: &[u8]) -> Option<f64> {
    modelstage_sdk::number::parse_f64(field).filter(|v| v.is_finite())
}

/// The field quoted as a bounded, escaped excerpt: a data file's field can
/// be megabytes long.
fn not_a_number(at: &str, field: &[u8]) -> StageError {
    let hint = if field.trim_ascii().is_empty() {
        " (missing values are not supported; impute them before training)"
    } else {
        ""
    };
    StageError::bad_request(format!(
        "{at}: '{}' is not a finite number{hint}",
        modelstage_sdk::excerpt(field)
    ))
}

fn check_dim(dim: &mut Option<usize>, got: usize, at: impl Fn() -> String) -> Result<(), StageError> {
    match *dim {
        None if got == 0 => Err(StageError::bad_request(format!(
            "{}: the row has a label but no features (the label must be the first column)",
            at()
        ))),
        None => {
            *dim = Some(got);
            Ok(())
        }
        Some(d) if d == got => Ok(()),
        Some(d) => Err(StageError::bad_request(format!(
            "{}: the row has {got} features but feature_dim is {d}",
            at()
        ))),
    }
}

fn recordio_rows<R: BufRead>(
    reader: R,
    channel: &Channel,
    path: &Path,
    dim: &mut Option<usize>,
    features: &mut Vec<f64>,
    rows: &mut u64,
    f: &mut impl FnMut(f64, &[f64]) -> Flow,
) -> Result<bool, StageError> {
    let mut records = RecordReader::new(reader);
    let mut index = 0u64;
    loop {
        let at = |i: u64| format!("channel '{}', file {}, record {i}", channel.name, path.display());
        let payload = match records.next_record() {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(true),
            Err(e) => return Err(StageError::bad_request(format!("{}: {e}", at(index)))),
        };
        let record = Record::decode(payload.as_slice())
            .map_err(|e| StageError::bad_request(format!("{}: not an aialgs.data.Record: {e}", at(index))))?;
        let values = record.features.get("values").ok_or_else(|| {
            StageError::bad_request(format!("{}: the record has no features[\"values\"]", at(index)))
        })?;
        let dense = values
            .to_dense(*dim, "features[\"values\"]")
            .map_err(|e| StageError::bad_request(format!("{}: {e}", at(index))))?;
        let label = record
            .label
            .get("values")
            .ok_or_else(|| {
                StageError::bad_request(format!("{}: the record has no label[\"values\"]", at(index)))
            })?
            .to_dense(Some(1), "label[\"values\"]")
            .map_err(|e| StageError::bad_request(format!("{}: {e}", at(index))))?;
        let label = match label.as_slice() {
            [y] if y.is_finite() => *y,
            _ => {
                return Err(StageError::bad_request(format!(
                    "{}: label[\"values\"] must hold exactly one finite number, got {label:?}",
                    at(index)
                )))
            }
        };
        if let Some(j) = dense.iter().position(|v| !v.is_finite()) {
            return Err(StageError::bad_request(format!(
                "{}: feature {j} is not finite",
                at(index)
            )));
        }
        features.clear();
        features.extend_from_slice(&dense);
        check_dim(dim, features.len(), || at(index))?;
        *rows += 1;
        match f(label, features) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => return Err(StageError::new(e.kind, format!("{}: {e}", at(index)))),
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Value;
    use std::collections::BTreeMap;

    fn channel(dir: &Path, files: &[(&str, &[u8])], format: Format) -> Channel {
        let mut paths = Vec::new();
        for (name, body) in files {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            paths.push(p);
        }
        Channel {
            name: "train".into(),
            files: paths,
            format,
        }
    }

    fn collect(c: &Channel, dim: &mut Option<usize>) -> Result<Vec<(f64, Vec<f64>)>, StageError> {
        let mut out = Vec::new();
        for_each_row(c, dim, |y, x| {
            out.push((y, x.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    #[test]
    fn checked_rows_keep_order_and_report_locations() {
        let dir = tempfile::tempdir().unwrap();
        // More rows than one chunk, so that several chunks cross the threads.
        let body: String = (0..10_000).map(|i| format!("{i},{}\n", i * 2)).collect();
        let c = channel(dir.path(), &[("a.csv", body.as_bytes())], Format::Csv);
        // On this thread, and on two and three parsers.
        for parsers in [1, 2, 3] {
            let mut seen = Vec::new();
            let rows = for_each_checked_row(&c, 1, parsers, |_| Ok(()), |y, x| seen.push((y, x[0]))).unwrap();
            assert_eq!(rows, 10_000, "{parsers} parsers");
            assert!(
                seen.iter()
                    .enumerate()
                    .all(|(i, &(y, x))| y == i as f64 && x == 2.0 * i as f64),
                "{parsers} parsers"
            );
            let err = for_each_checked_row(
                &c,
                1,
                parsers,
                |y| {
                    if y == 7000.0 {
                        Err(StageError::bad_request("bad label"))
                    } else {
                        Ok(())
                    }
                },
                |_, _| {},
            )
            .unwrap_err();
            assert!(
                err.message.contains("line 7001") && err.message.contains("bad label"),
                "{parsers} parsers: {}",
                err.message
            );
        }
    }

    #[test]
    fn reads_every_csv_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(
            dir.path(),
            &[("a.csv", b"1,2,3\r\n\n4, 5 ,6"), ("b.csv", b"7,8,9\n")],
            Format::Csv,
        );
        let mut dim = None;
        let rows = collect(&c, &mut dim).unwrap();
        assert_eq!(dim, Some(2));
        assert_eq!(
            rows,
            vec![
                (1.0, vec![2.0, 3.0]),
                (4.0, vec![5.0, 6.0]),
                (7.0, vec![8.0, 9.0])
            ]
        );
    }

    #[test]
    fn csv_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path(), &[("a.csv", b"1,2,3\n4,x,6\n")], Format::Csv);
        let err = collect(&c, &mut None).unwrap_err().message;
        assert!(err.contains("a.csv, line 2, column 2: 'x'"), "{err}");
        let c = channel(dir.path(), &[("b.csv", b"1,2,3\n4,5\n")], Format::Csv);
        let err = collect(&c, &mut None).unwrap_err().message;
        assert!(
            err.contains("line 2") && err.contains("1 features but feature_dim is 2"),
            "{err}"
        );
        let c = channel(dir.path(), &[("c.csv", b"1,2,3\n")], Format::Csv);
        let err = collect(&c, &mut Some(10)).unwrap_err().message;
        assert!(err.contains("2 features but feature_dim is 10"), "{err}");
    }

    #[test]
    fn reads_recordio_protobuf_dense_and_sparse() {
        let mut body = Vec::new();
        let mut rec = Record::default();
        rec.features
            .insert("values".into(), Value::dense_f32(vec![1.5, 2.0]));
        rec.label.insert("values".into(), Value::dense_f32(vec![3.0]));
        crate::recordio::write_record(&mut body, &rec.encode_to_vec());
        let mut sparse = Record {
            features: BTreeMap::new(),
            ..Default::default()
        };
        sparse.features.insert(
            "values".into(),
            Value {
                kind: Some(crate::proto::value::Kind::Float32Tensor(
                    crate::proto::Float32Tensor {
                        values: vec![4.0],
                        keys: vec![1],
                        shape: vec![2],
                    },
                )),
            },
        );
        sparse.label.insert("values".into(), Value::dense_f32(vec![0.0]));
        crate::recordio::write_record(&mut body, &sparse.encode_to_vec());
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path(), &[("part.pbr", &body)], Format::RecordIoProtobuf);
        let rows = collect(&c, &mut None).unwrap();
        assert_eq!(rows, vec![(3.0, vec![1.5, 2.0]), (0.0, vec![0.0, 4.0])]);
    }
}
