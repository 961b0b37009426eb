//! Streaming record readers, one per `SplitType`. Each record keeps its bytes
//! exactly as they appear in the input (a line with its line ending, a
//! RecordIO or TFRecord record with its framing), so a MultiRecord request is
//! the plain concatenation of its records, and each carries where it came
//! from for error messages.
//!
//! Choices where the service is silent (docs/contract.md (Batch transform), #6): blank lines are
//! not records (they are counted, so later line numbers stay true); RecordIO
//! and TFRecord records are sent with their framing, which is what a
//! container reading `application/x-recordio-protobuf` parses (the SDK's
//! local mode strips it); TFRecord checksums are not verified.
//!
//! Memory stays bounded: a reader never holds more than one record, and with
//! a `limit` it stops reading a record as soon as it grows past the limit.

use std::fmt;
use std::io::{BufRead, Read};

use super::job::SplitType;

/// One record and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub data: Vec<u8>,
    pub locator: Locator,
}

/// Where a record sits in its (decompressed) file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locator {
    /// 1-based line number.
    Line(u64),
    /// 1-based record number and the byte offset of its header.
    Record { number: u64, offset: u64 },
    /// SplitType None: the file is one record.
    WholeFile,
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Line(n) => write!(f, "line {n}"),
            Locator::Record { number, offset } => write!(f, "record {number} (byte offset {offset})"),
            Locator::WholeFile => f.write_str("the whole file"),
        }
    }
}

/// Describes the records from `first` to `last`: `line 4`, `lines 4-9`.
pub fn describe_span(first: Locator, last: Locator) -> String {
    match (first, last) {
        (Locator::Line(a), Locator::Line(b)) if a != b => format!("lines {a}-{b}"),
        (Locator::Record { number: a, offset }, Locator::Record { number: b, .. }) if a != b => {
            format!("records {a}-{b} (from byte offset {offset})")
        }
        _ => first.to_string(),
    }
}

/// A reader failure, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub locator: Locator,
    pub message: String,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.locator, self.message)
    }
}

pub type Records = Box<dyn Iterator<Item = Result<Record, SplitError>> + Send>;

/// Records of `input` split as `split`. `limit` (bytes) stops a record that
/// grows past it with an error naming its position; `None` is unlimited.
pub fn records<R: BufRead + Send + 'static>(input: R, split: SplitType, limit: Option<usize>) -> Records {
    match split {
        SplitType::None => Box::new(WholeFile {
            input: Some(input),
            limit,
        }),
        SplitType::Line => Box::new(Lines {
            input,
            line: 0,
            limit,
            done: false,
        }),
        SplitType::RecordIO => Box::new(Framed::new(input, limit, Framing::RecordIO)),
        SplitType::TFRecord => Box::new(Framed::new(input, limit, Framing::TFRecord)),
    }
}

fn too_large(limit: usize) -> String {
    format!("the record is larger than MaxPayloadInMB allows ({limit} bytes)")
}

struct WholeFile<R> {
    input: Option<R>,
    limit: Option<usize>,
}

impl<R: BufRead> Iterator for WholeFile<R> {
    type Item = Result<Record, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.input.take()?;
        let mut data = Vec::new();
        let read = match self.limit {
            Some(limit) => input.take(limit as u64 + 1).read_to_end(&mut data),
            None => { input }.read_to_end(&mut data),
        };
        let fail = |message: String| {
            Some(Err(SplitError {
                locator: Locator::WholeFile,
                message,
            }))
        };
        if let Err(e) = read {
            return fail(format!("cannot read the input: {e}"));
        }
        if let Some(limit) = self.limit.filter(|&l| data.len() > l) {
            return fail(format!(
                "SplitType is None, so the file is sent in one request, and it is larger than \
                 MaxPayloadInMB allows ({limit} bytes); set SplitType or raise MaxPayloadInMB"
            ));
        }
        if data.is_empty() {
            return None;
        }
        Some(Ok(Record {
            data,
            locator: Locator::WholeFile,
        }))
    }
}

struct Lines<R> {
    input: R,
    line: u64,
    limit: Option<usize>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    /// Reads one line with its ending; `Ok(None)` at the end of the input.
    fn read_line(&mut self) -> Result<Option<Vec<u8>>, SplitError> {
        let mut data = Vec::new();
        let locator = Locator::Line(self.line);
        loop {
            let available = self.input.fill_buf().map_err(|e| SplitError {
                locator,
                message: format!("cannot read the input: {e}"),
            })?;
            if available.is_empty() {
                break;
            }
            let (take, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            data.extend_from_slice(&available[..take]);
            self.input.consume(take);
            if let Some(limit) = self.limit.filter(|&l| data.len() > l) {
                return Err(SplitError {
                    locator,
                    message: too_large(limit),
                });
            }
            if complete {
                break;
            }
        }
        Ok((!data.is_empty()).then_some(data))
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Record, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line += 1;
            match self.read_line() {
                Ok(Some(data)) if data.iter().all(|&b| b == b'\n' || b == b'\r') => continue,
                Ok(Some(data)) => {
                    return Some(Ok(Record {
                        data,
                        locator: Locator::Line(self.line),
                    }))
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[derive(Clone, Copy)]
enum Framing {
    /// MXNet RecordIO: magic 0xCED7230A, a length word whose top 3 bits are
    /// the continuation flag, the payload padded to 4 bytes. Little-endian.
    RecordIO,
    /// TFRecord: u64 length, u32 length CRC, payload, u32 payload CRC.
    TFRecord,
}

const RECORDIO_MAGIC: u32 = 0xCED7_230A;

struct Framed<R> {
    input: R,
    framing: Framing,
    limit: Option<usize>,
    number: u64,
    offset: u64,
    done: bool,
}

impl<R: Read> Framed<R> {
    fn new(input: R, limit: Option<usize>, framing: Framing) -> Self {
        Framed {
            input,
            framing,
            limit,
            number: 0,
            offset: 0,
            done: false,
        }
    }

    /// Reads exactly `n` bytes onto `out`; `Ok(false)` on a clean end of
    /// input before the first byte.
    fn read_exact_or_end(
        &mut self,
        out: &mut Vec<u8>,
        n: usize,
        locator: Locator,
    ) -> Result<bool, SplitError> {
        let start = out.len();
        let got = (&mut self.input)
            .take(n as u64)
            .read_to_end(out)
            .map_err(|e| SplitError {
                locator,
                message: format!("cannot read the input: {e}"),
            })?;
        self.offset += got as u64;
        if got == 0 && n > 0 && start == out.len() {
            return Ok(false);
        }
        if got < n {
            return Err(SplitError {
                locator,
                message: format!("the record is truncated: expected {n} more bytes, found {got}"),
            });
        }
        Ok(true)
    }

    fn check_limit(&self, data: &[u8], extra: usize, locator: Locator) -> Result<(), SplitError> {
        match self.limit {
            Some(limit) if data.len() + extra > limit => Err(SplitError {
                locator,
                message: too_large(limit),
            }),
            _ => Ok(()),
        }
    }

    fn next_record(&mut self) -> Result<Option<Record>, SplitError> {
        self.number += 1;
        let locator = Locator::Record {
            number: self.number,
            offset: self.offset,
        };
        let mut data = Vec::new();
        match self.framing {
            Framing::RecordIO => loop {
                let part_start = data.len();
                if !self.read_exact_or_end(&mut data, 8, locator)? {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    return Err(SplitError {
                        locator,
                        message: "a multi-part record has no last part".into(),
                    });
                }
                let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
                let (magic, length_word) = (word(part_start), word(part_start + 4));
                if magic != RECORDIO_MAGIC {
                    return Err(SplitError {
                        locator,
                        message: format!(
                            "not a RecordIO record: magic is {magic:#010x}, expected {RECORDIO_MAGIC:#010x}"
                        ),
                    });
                }
                let flag = length_word >> 29;
                let length = (length_word & ((1 << 29) - 1)) as usize;
                let padded = length.div_ceil(4) * 4;
                self.check_limit(&data, padded, locator)?;
                if padded > 0 && !self.read_exact_or_end(&mut data, padded, locator)? {
                    return Err(SplitError {
                        locator,
                        message: "the record's payload is missing".into(),
                    });
                }
                // Flag 0 is a whole record, 1 starts a multi-part record, 2
                // continues it and 3 ends it.
                match (flag, part_start == 0) {
                    (0, true) | (3, false) => return Ok(Some(Record { data, locator })),
                    (1, true) | (2, false) => continue,
                    _ => {
                        return Err(SplitError {
                            locator,
                            message: format!("RecordIO continuation flag {flag} out of sequence"),
                        })
                    }
                }
            },
            Framing::TFRecord => {
                if !self.read_exact_or_end(&mut data, 12, locator)? {
                    return Ok(None);
                }
                let mut len_bytes = [0u8; 8];
                len_bytes.copy_from_slice(&data[..8]);
                let length = u64::from_le_bytes(len_bytes);
                let length = usize::try_from(length).unwrap_or(usize::MAX).saturating_add(4);
                self.check_limit(&data, length, locator)?;
                if !self.read_exact_or_end(&mut data, length, locator)? {
                    return Err(SplitError {
                        locator,
                        message: "the record's payload is missing".into(),
                    });
                }
                Ok(Some(Record { data, locator }))
            }
        }
    }
}

impl<R: Read> Iterator for Framed<R> {
    type Item = Result<Record, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn split(input: &[u8], split: SplitType, limit: Option<usize>) -> Vec<Result<Record, SplitError>> {
        records(Cursor::new(input.to_vec()), split, limit).collect()
    }

    fn line(text: &str, n: u64) -> Result<Record, SplitError> {
        Ok(Record {
            data: text.as_bytes().to_vec(),
            locator: Locator::Line(n),
        })
    }

    #[test]
    fn lines_keep_their_endings_and_numbers() {
        let got = split(b"a,1\r\nb,2\n\nc,3", SplitType::Line, None);
        assert_eq!(got, vec![line("a,1\r\n", 1), line("b,2\n", 2), line("c,3", 4)]);
    }

    #[test]
    fn a_line_over_the_limit_fails_at_its_line() {
        let got = split(b"ab\nabcdef\nx\n", SplitType::Line, Some(4));
        assert_eq!(got[0], line("ab\n", 1));
        let err = got[1].clone().unwrap_err();
        assert_eq!(err.locator, Locator::Line(2));
        assert!(
            err.to_string().starts_with("line 2: the record is larger"),
            "{err}"
        );
        assert_eq!(got.len(), 2, "reading stops after an error");
        // Exactly at the limit is fine: "abc\n" is 4 bytes.
        assert!(split(b"abc\n", SplitType::Line, Some(4))[0].is_ok());
    }

    #[test]
    fn whole_file_is_one_record_within_the_limit() {
        let got = split(b"{\"a\": 1}\n", SplitType::None, Some(9));
        assert_eq!(
            got,
            vec![Ok(Record {
                data: b"{\"a\": 1}\n".to_vec(),
                locator: Locator::WholeFile
            })]
        );
        let err = split(b"0123456789", SplitType::None, Some(9))[0]
            .clone()
            .unwrap_err();
        assert!(err.message.contains("SplitType is None"), "{err}");
        assert!(split(b"", SplitType::None, None).is_empty());
    }

    fn recordio(payload: &[u8], flag: u32) -> Vec<u8> {
        let mut out = RECORDIO_MAGIC.to_le_bytes().to_vec();
        out.extend_from_slice(&((flag << 29) | payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len() + (4 - payload.len() % 4) % 4, 0);
        out
    }

    #[test]
    fn recordio_records_keep_their_framing() {
        let first = recordio(b"abcde", 0); // 8 + 5 + 3 padding = 16 bytes
        let second = recordio(b"wxyz", 0);
        let input = [first.clone(), second.clone()].concat();
        let got = split(&input, SplitType::RecordIO, None);
        assert_eq!(first.len(), 16);
        assert_eq!(
            got[0],
            Ok(Record {
                data: first,
                locator: Locator::Record { number: 1, offset: 0 }
            })
        );
        assert_eq!(
            got[1],
            Ok(Record {
                data: second,
                locator: Locator::Record {
                    number: 2,
                    offset: 16
                }
            })
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn recordio_multi_part_records_are_one_record() {
        let parts = [recordio(b"ab", 1), recordio(b"cd", 2), recordio(b"ef", 3)].concat();
        let got = split(
            &[parts.clone(), recordio(b"z", 0)].concat(),
            SplitType::RecordIO,
            None,
        );
        assert_eq!(got[0].as_ref().unwrap().data, parts);
        assert_eq!(
            got[1].as_ref().unwrap().locator,
            Locator::Record {
                number: 2,
                offset: 36
            }
        );
    }

    #[test]
    fn recordio_errors_name_the_record() {
        let mut bad = recordio(b"ok", 0);
        bad.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let err = split(&bad, SplitType::RecordIO, None)[1].clone().unwrap_err();
        assert_eq!(
            err.locator,
            Locator::Record {
                number: 2,
                offset: 12
            }
        );
        assert!(err.message.contains("magic"), "{err}");
        let truncated = &recordio(b"abcdefgh", 0)[..10];
        let err = split(truncated, SplitType::RecordIO, None)[0]
            .clone()
            .unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
    }

    #[test]
    fn tfrecord_records_keep_their_framing() {
        let mut one = 3u64.to_le_bytes().to_vec();
        one.extend_from_slice(&[0; 4]);
        one.extend_from_slice(b"abc");
        one.extend_from_slice(&[0; 4]);
        let got = split(&[one.clone(), one.clone()].concat(), SplitType::TFRecord, None);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Ok(Record {
                data: one,
                locator: Locator::Record {
                    number: 2,
                    offset: 19
                }
            })
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(describe_span(Locator::Line(3), Locator::Line(3)), "line 3");
        assert_eq!(describe_span(Locator::Line(3), Locator::Line(9)), "lines 3-9");
    }
}
