//! MXNet RecordIO framing, the container of `application/x-recordio-protobuf`:
//! each record is the magic word `0xCED7230A` (u32 little-endian), a u32
//! little-endian length word (the low 29 bits are the length, the high 3 bits
//! a continuation flag), the payload, then zero padding to a multiple of 4.
//!
//! SageMaker's writers emit whole records (flag 0). MXNet's writer splits a
//! payload that contains the magic word into parts (flag 1 start, 2 middle,
//! 3 end) and drops the magic word between them; the reader puts it back.

use std::io::{self, Read};

use modelstage_sdk::StageError;

/// The magic word that starts every record.
pub const MAGIC: u32 = 0xCED7_230A;
const LENGTH_MASK: u32 = (1 << 29) - 1;

/// Appends one whole record holding `payload` to `out`.
pub fn write_record(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&MAGIC.to_le_bytes());
    // Payloads are protobuf messages of a single record: far below 512 MiB.
    let len = u32::try_from(payload.len()).unwrap_or(LENGTH_MASK) & LENGTH_MASK;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + padding(payload.len()), 0);
}

fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Splits a whole RecordIO body into its payloads. A bad frame is a bad
/// request whose message names its byte offset.
pub fn split_records(body: &[u8]) -> Result<Vec<Vec<u8>>, StageError> {
    let mut reader = RecordReader::new(body);
    let mut records = Vec::new();
    while let Some(rec) = reader
        .next_record()
        .map_err(|e| StageError::bad_request(e.to_string()))?
    {
        records.push(rec);
    }
    Ok(records)
}

/// Reads RecordIO records one at a time from any reader (a training file is
/// streamed, never loaded whole).
pub struct RecordReader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R) -> Self {
        RecordReader { inner, offset: 0 }
    }

    /// The next payload, `None` at a clean end of input.
    pub fn next_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut payload = Vec::new();
        let mut in_multipart = false;
        loop {
            let start = self.offset;
            let mut header = [0u8; 8];
            let got = read_full(&mut self.inner, &mut header)?;
            if got == 0 && !in_multipart {
                return Ok(None);
            }
            if got < 8 {
                return Err(bad(format!("truncated RecordIO header at byte {start}")));
            }
            let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            if magic != MAGIC {
                return Err(bad(format!(
                    "no RecordIO magic word at byte {start} (found {magic:#010x}); \
                     is the body really application/x-recordio-protobuf?"
                )));
            }
            let word = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let flag = word >> 29;
            let len = (word & LENGTH_MASK) as usize;
            let begin = payload.len();
            // The length word is the sender's claim: read what actually
            // follows, growing the buffer with it, rather than allocating
            // the claimed size up front (8 bytes could otherwise make us
            // zero-fill 512 MiB).
            let got = (&mut self.inner).take(len as u64).read_to_end(&mut payload)?;
            if got < len {
                return Err(bad(format!(
                    "RecordIO record at byte {start} claims {len} bytes of payload but only {got} follow \
                     (truncated)"
                )));
            }
            let mut pad = [0u8; 3];
            let pad_len = padding(len);
            if read_full(&mut self.inner, &mut pad[..pad_len])? < pad_len {
                return Err(bad(format!(
                    "RecordIO record at byte {start} is missing its padding"
                )));
            }
            self.offset = start + 8 + (len + pad_len) as u64;
            match (flag, in_multipart) {
                (0, false) => return Ok(Some(payload)),
                (1, false) => in_multipart = true,
                (2, true) => payload.splice(begin..begin, MAGIC.to_le_bytes()).for_each(drop),
                (3, true) => {
                    payload.splice(begin..begin, MAGIC.to_le_bytes()).for_each(drop);
                    return Ok(Some(payload));
                }
                _ => {
                    return Err(bad(format!(
                        "RecordIO record at byte {start} has continuation flag {flag} out of sequence"
                    )))
                }
            }
        }
    }
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_pads_to_four_bytes() {
        let mut out = Vec::new();
        write_record(&mut out, b"abcde");
        // magic, length 5, five bytes, three bytes of padding
        assert_eq!(&out[..4], &[0x0A, 0x23, 0xD7, 0xCE]);
        assert_eq!(&out[4..8], &[5, 0, 0, 0]);
        assert_eq!(&out[8..13], b"abcde");
        assert_eq!(&out[13..], &[0, 0, 0]);
        write_record(&mut out, b"");
        write_record(&mut out, b"wxyz");
        let records = split_records(&out).unwrap();
        assert_eq!(records, vec![b"abcde".to_vec(), Vec::new(), b"wxyz".to_vec()]);
    }

    #[test]
    fn joins_multipart_records_with_the_magic_word() {
        let mut out = Vec::new();
        for (flag, part) in [(1u32, &b"ab"[..]), (2, b"cd"), (3, b"e")] {
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&((flag << 29) | part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
            out.resize(out.len() + padding(part.len()), 0);
        }
        let records = split_records(&out).unwrap();
        let mut expected = b"ab".to_vec();
        expected.extend_from_slice(&MAGIC.to_le_bytes());
        expected.extend_from_slice(b"cd");
        expected.extend_from_slice(&MAGIC.to_le_bytes());
        expected.extend_from_slice(b"e");
        assert_eq!(records, vec![expected]);
    }

    #[test]
    fn a_huge_claimed_length_allocates_only_what_follows() {
        // Magic, then a length word of 2^29 - 8 (512 MiB) and no payload.
        let mut body = MAGIC.to_le_bytes().to_vec();
        body.extend_from_slice(&(LENGTH_MASK - 7).to_le_bytes());
        body.extend_from_slice(b"abcd");
        let err = split_records(&body).unwrap_err().message;
        assert!(
            err.contains("claims 536870904 bytes of payload but only 4 follow"),
            "{err}"
        );
    }

    #[test]
    fn rejects_garbage_and_truncation_with_the_offset() {
        let err = split_records(b"1,2,3\n").unwrap_err().message;
        assert!(err.contains("byte 0"), "{err}");
        let mut out = Vec::new();
        write_record(&mut out, b"abcdefgh");
        out.truncate(12);
        let err = split_records(&out).unwrap_err().message;
        assert!(err.contains("truncated"), "{err}");
    }
}
