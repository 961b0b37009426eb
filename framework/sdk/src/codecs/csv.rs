//! `text/csv`: Python `csv`-module records in, `csv.writer` lines out.
//!
//! The reader follows Python's default dialect with `strict=True`: `,`
//! separates fields, a field that starts with `"` is quoted (it may hold `,`
//! and line breaks, `""` is a literal quote), a quote anywhere else is an
//! ordinary character, and lines end with `\n`, `\r\n` or `\r`. Where Python
//! would silently mend a broken body (an unclosed quote), we answer 400.

use super::Array;
use crate::python::write_float;
use crate::{excerpt, StageError};

/// One CSV record, its fields unquoted. Buffers are reused from record to
/// record, so reading a body allocates once per body, not per field.
#[derive(Debug, Default)]
pub struct CsvRow {
    text: String,
    ends: Vec<usize>,
    line: usize,
    index: usize,
}

impl CsvRow {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the record has no fields (never true for a record handed to
    /// a callback: blank lines are skipped).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` (zero-based), unquoted.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    /// The fields in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// The line (1-based) the record starts on, for error messages.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The record's position among the records (0-based; blank lines are not
    /// records), for `StageError::at_record`.
    pub fn index(&self) -> usize {
        self.index
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// The lines of a CSV body that has no quoted fields, borrowed from it, with
/// their line numbers (1-based): split at `\n`, a `\r` before it dropped,
/// lines of spaces skipped. The fast way through the bodies stages get most
/// (numbers and short codes); a body with `\"` or a lone `\r` needs
/// [`for_each_record`]'s full reader.
pub fn plain_lines(body: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut start = 0;
    let mut line_no = 0u64;
    std::iter::from_fn(move || loop {
        if start >= body.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i);
        let raw = &body[start..end];
        start = end + 1;
        line_no += 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if !line.trim_ascii().is_empty() {
            return Some((line_no, line));
        }
    })
}

/// Splits a line of a plain body at every `,` into `fields` (cleared first).
pub fn split_fields<'a>(line: &'a [u8], fields: &mut Vec<&'a [u8]>) {
    fields.clear();
    let mut field_start = 0;
    let mut cut = |i: usize| {
        fields.push(&line[field_start..i]);
        field_start = i + 1;
    };
    // Measured in instructions: eight bytes at a time is cheaper than a
    // byte loop on short lines (abalone's records), memchr's vector search
    // on long ones (rows of full-precision features) by about 40%.
    if line.len() < 64 {
        let mut chunks = line.chunks_exact(8);
        let mut at = 0;
        for chunk in chunks.by_ref() {
            let mut commas = comma_bytes(chunk);
            while commas != 0 {
                cut(at + (commas.trailing_zeros() / 8) as usize);
                commas &= commas - 1;
            }
            at += 8;
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            if b == b',' {
                cut(at + i);
            }
        }
    } else {
        memchr::memchr_iter(b',', line).for_each(cut);
    }
    fields.push(&line[field_start..]);
}

/// The top bit of each byte of `chunk` (8 bytes, little-endian order) that
/// is a `,`, and no other bit set.
#[inline]
fn comma_bytes(chunk: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(chunk);
    // Zero where the byte is a comma; the sum below cannot carry between
    // bytes (at most 0x7f + 0x7f), so no other byte is flagged.
    let x = u64::from_le_bytes(w) ^ 0x2C2C_2C2C_2C2C_2C2C;
    let low = 0x7F7F_7F7F_7F7F_7F7F;
    !(((x & low) + low) | x) & 0x8080_8080_8080_8080
}

/// Checks the body is UTF-8, as the toolkits decode it.
pub(crate) fn utf8<'a>(body: &'a [u8], format: &str) -> Result<&'a str, StageError> {
    std::str::from_utf8(body).map_err(|e| {
        StageError::bad_request(format!(
            "{format} body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Calls `on_record` for every record of `body` in order, stopping at the
/// first error (the callback's, or a malformed quote). Blank lines are
/// skipped.
pub fn for_each_record<F>(body: &str, mut on_record: F) -> Result<(), StageError>
where
    F: FnMut(&CsvRow) -> Result<(), StageError>,
{
    let b = body.as_bytes();
    let mut row = CsvRow::default();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        if b[i] == b'\n' || b[i] == b'\r' {
            i = skip_line_end(b, i);
            line += 1;
            continue;
        }
        row.clear();
        row.line = line;
        loop {
            if i < b.len() && b[i] == b'"' {
                i = read_quoted(body, i + 1, &mut row, &mut line)?;
                if i < b.len() && !matches!(b[i], b',' | b'\n' | b'\r') {
                    return Err(StageError::bad_request(format!(
                        "CSV line {line}, column {}: unexpected character after the closing quote \
                         (a quoted field must end at ',' or the end of the line)",
                        row.len() + 1
                    ))
                    .at_record(row.index));
                }
            } else {
                let start = i;
                while i < b.len() && !matches!(b[i], b',' | b'\n' | b'\r') {
                    i += 1;
                }
                row.text.push_str(&body[start..i]);
            }
            row.ends.push(row.text.len());
            if i < b.len() && b[i] == b',' {
                i += 1;
                continue;
            }
            if i < b.len() {
                i = skip_line_end(b, i);
                line += 1;
            }
            break;
        }
        on_record(&row)?;
        row.index += 1;
    }
    Ok(())
}

/// Past the line end at `i` (`\r\n` counts once).
fn skip_line_end(b: &[u8], i: usize) -> usize {
    if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
        i + 2
    } else {
        i + 1
    }
}

/// Reads a quoted field whose text starts at `i` (after the opening quote)
/// into `row.text`; returns the position after the closing quote.
fn read_quoted(body: &str, mut i: usize, row: &mut CsvRow, line: &mut usize) -> Result<usize, StageError> {
    let b = body.as_bytes();
    let opened_on = *line;
    loop {
        let Some(offset) = b[i..].iter().position(|&c| c == b'"') else {
            return Err(StageError::bad_request(format!(
                "CSV line {opened_on}, column {}: the quote opened here is never closed",
                row.len() + 1
            ))
            .at_record(row.index));
        };
        let chunk = &body[i..i + offset];
        *line += chunk.bytes().filter(|&c| c == b'\n').count();
        row.text.push_str(chunk);
        i += offset + 1;
        if b.get(i) == Some(&b'"') {
            row.text.push('"');
            i += 1;
        } else {
            return Ok(i);
        }
    }
}

/// Reads every record as a row of numbers: shape `[rows, columns]`, without
/// the legacy squeeze. An empty body (no records) is an error.
pub fn decode_rows(body: &[u8]) -> Result<Array, StageError> {
    let text = utf8(body, "CSV")?;
    let mut data = Vec::new();
    let mut columns = 0;
    let mut rows = 0;
    let mut first_line = 1;
    for_each_record(text, |row| {
        if rows == 0 {
            columns = row.len();
            first_line = row.line();
        } else if row.len() != columns {
            return Err(StageError::bad_request(format!(
                "CSV line {} has {} fields but line {first_line} has {columns}; \
                 every row must have the same number of fields",
                row.line(),
                row.len()
            ))
            .at_record(row.index()));
        }
        for (column, field) in row.fields().enumerate() {
            data.push(parse_number(field).ok_or_else(|| {
                StageError::bad_request(format!(
                    "CSV line {}, column {}: \"{}\" is not a number",
                    row.line(),
                    column + 1,
                    excerpt(field.as_bytes())
                ))
                .at_record(row.index())
            })?);
        }
        rows += 1;
        Ok(())
    })?;
    if rows == 0 {
        return Err(StageError::bad_request(
            "the CSV body is empty; send at least one line of comma-separated numbers",
        ));
    }
    Array::new(vec![rows, columns], data)
}

/// A field as Python's `float()` reads it: spaces around it ignored.
fn parse_number(field: &str) -> Option<f64> {
    field.trim().parse::<f64>().ok()
}

/// The legacy decoder: [`decode_rows`], then numpy's `squeeze()`.
pub fn decode(body: &[u8]) -> Result<Array, StageError> {
    Ok(decode_rows(body)?.squeeze())
}

/// Appends one CSV line: the values as Python's `repr`, separated by `,`,
/// then `\n` (what `csv.writer(lineterminator="\n")` writes for floats).
pub fn write_row(out: &mut Vec<u8>, row: &[f64]) {
    for (i, &x) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_float(out, x);
    }
    out.push(b'\n');
}

/// One line per row of a 2-D array, one value per line for a 1-D array.
/// `array` must be consistent (see [`Array::check`]).
pub fn encode(array: &Array) -> Result<Vec<u8>, StageError> {
    let columns = match array.shape.as_slice() {
        [_] => 1,
        [_, columns] => *columns,
        shape => return Err(super::shape_not_held(super::CSV, "1-D or 2-D arrays", shape)),
    };
    // Most values print in under 20 bytes; one reservation avoids regrowth.
    let mut out = Vec::with_capacity(array.data.len() * 20 + 1);
    if columns == 0 {
        // Rows without values are still lines, as csv.writer writes them.
        out.resize(array.shape[0], b'\n');
        return Ok(out);
    }
    for row in array.data.chunks(columns) {
        write_row(&mut out, row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn plain_lines_number_lines_drop_cr_and_skip_blank_ones() {
        let body = b"1, 2\r\n  \n\n,x,\n3";
        let lines: Vec<(u64, &[u8])> = plain_lines(body).collect();
        assert_eq!(lines, vec![(1, &b"1, 2"[..]), (4, &b",x,"[..]), (5, &b"3"[..])]);
        let mut fields = vec![&b"stale"[..]];
        split_fields(lines[1].1, &mut fields);
        assert_eq!(fields, vec![&b""[..], &b"x"[..], &b""[..]]);
        split_fields(lines[0].1, &mut fields);
        assert_eq!(fields, vec![&b"1"[..], &b" 2"[..]]);
        assert_eq!(plain_lines(b"").count(), 0);
        // A long line takes the vector search.
        let long = [&b"0.30000000000000004"[..]; 8].join(&b',');
        split_fields(&long, &mut fields);
        assert_eq!(fields, vec![&b"0.30000000000000004"[..]; 8]);
    }

    #[test]
    fn split_fields_agrees_with_a_plain_split() {
        // Commas next to the bytes a word-wide search could confuse with
        // them (`-` and `+` differ from `,` by one bit), high bytes, and
        // every line length around the chunk size and the vector threshold.
        let alphabet = b",,-+.0\x80\xff\x2c\x2d\x01 ";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..80 {
            for _ in 0..200 {
                let mut fields = Vec::new();
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        alphabet[(state >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                split_fields(&line, &mut fields);
                let expected: Vec<&[u8]> = line.split(|&b| b == b',').collect();
                assert_eq!(fields, expected, "{line:?}");
            }
        }
    }

    fn records(body: &str) -> Result<Vec<Vec<String>>, StageError> {
        let mut all = Vec::new();
        for_each_record(body, |row| {
            all.push(row.fields().map(str::to_string).collect());
            Ok(())
        })?;
        Ok(all)
    }

    #[test]
    fn python_csv_quoting() {
        // Expected lists from list(csv.reader(io.StringIO(body), strict=True)),
        // minus the empty list Python yields for the blank line.
        let got = records("a,\"b,c\",\"d\"\"e\"\r\n\n\"multi\nline\",x\"y,\nlast").unwrap();
        let want = vec![
            vec!["a", "b,c", "d\"e"],
            vec!["multi\nline", "x\"y", ""],
            vec!["last"],
        ];
        assert_eq!(got, want);
        assert_eq!(records(" \"1\",2").unwrap(), vec![vec![" \"1\"", "2"]]);
        assert_eq!(records("\"\"").unwrap(), vec![vec![""]]);
        // A lone CR ends a line too (Python's StringIO reader would fail
        // with "new-line character seen in unquoted field").
        assert_eq!(records("1\r2").unwrap(), vec![vec!["1"], vec!["2"]]);
    }

    #[test]
    fn record_lines_and_indexes() {
        let mut seen = Vec::new();
        for_each_record("1\n\n\"a\nb\"\n3\n", |row| {
            seen.push((row.index(), row.line()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 1), (1, 3), (2, 5)]);
    }

    #[test]
    fn broken_quotes_are_400() {
        let e = records("1,2\n3,\"4\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("line 2, column 2"), "{}", e.message);
        assert_eq!(e.record, Some(1));
        let e = records("\"ab\"c,1").unwrap_err();
        assert!(e.message.contains("line 1, column 1"), "{}", e.message);
    }

    #[test]
    fn decode_squeezes_like_numpy() {
        assert_eq!(decode(b"1,2,3").unwrap(), Array::vector(vec![1.0, 2.0, 3.0]));
        let a = decode(b"1,2,3\n4,5,6\n").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(decode(b"\"1\",2\r\n3,\"4\"\r\n").unwrap().shape, vec![2, 2]);
        assert_eq!(decode(b"1.5").unwrap(), Array::scalar(1.5));
        assert_eq!(decode(b"1\n2\n").unwrap(), Array::vector(vec![1.0, 2.0]));
        assert_eq!(decode_rows(b"1,2,3").unwrap().shape, vec![1, 3]);
    }

    #[test]
    fn numbers_as_python_float_reads_them() {
        let a = decode(b" 0.44, -1e-5 ,+3,.5,5.,nan,-inf,Infinity").unwrap();
        assert_eq!(&a.data[..5], &[0.44, -1e-5, 3.0, 0.5, 5.0]);
        assert!(a.data[5].is_nan());
        assert_eq!(&a.data[6..], &[f64::NEG_INFINITY, f64::INFINITY]);
    }

    #[test]
    fn bad_bodies_name_line_and_column() {
        let e = decode(b"1,2\n3,abc\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("line 2, column 2"), "{}", e.message);
        assert!(e.message.contains("\"abc\""), "{}", e.message);
        assert_eq!(e.record, Some(1));

        let e = decode(b"1,2\n\n3\n").unwrap_err();
        assert!(
            e.message.contains("line 3 has 1 fields but line 1 has 2"),
            "{}",
            e.message
        );

        let e = decode(b"1,,3").unwrap_err();
        assert!(e.message.contains("column 2"), "{}", e.message);

        assert_eq!(decode(b"").unwrap_err().kind, ErrorKind::BadRequest);
        assert_eq!(decode(b"\n\n").unwrap_err().kind, ErrorKind::BadRequest);
        let e = decode(b"1,\xff").unwrap_err();
        assert!(e.message.contains("UTF-8"), "{}", e.message);
    }

    #[test]
    fn encode_matches_python_csv_writer() {
        // Expected bytes from `python_reference.py codecs` (csv.writer,
        // lineterminator "\n"; 1-D reshaped to a column as the legacy does).
        let two_d = Array::new(vec![2, 2], vec![1.5, 2.0, 3.0, 4.25]).unwrap();
        assert_eq!(encode(&two_d).unwrap(), b"1.5,2.0\n3.0,4.25\n");
        assert_eq!(
            encode(&Array::vector(vec![1.0, 2.5, 3.0])).unwrap(),
            b"1.0\n2.5\n3.0\n"
        );
        let special = Array::vector(vec![f64::NAN, f64::INFINITY, -f64::INFINITY, 1e-05, 1e16, -0.0]);
        assert_eq!(encode(&special).unwrap(), b"nan\ninf\n-inf\n1e-05\n1e+16\n-0.0\n");
        assert_eq!(encode(&Array::new(vec![2, 0], vec![]).unwrap()).unwrap(), b"\n\n");
        assert_eq!(encode(&Array::vector(vec![])).unwrap(), b"");
    }

    #[test]
    fn encode_refuses_what_csv_cannot_hold() {
        assert_eq!(
            encode(&Array::scalar(7.5)).unwrap_err().kind,
            ErrorKind::UnsupportedAccept
        );
        let cube = Array::new(vec![1, 1, 1], vec![1.0]).unwrap();
        assert!(encode(&cube).unwrap_err().message.contains("[1, 1, 1]"));
    }
}
