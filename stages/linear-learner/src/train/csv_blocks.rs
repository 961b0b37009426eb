//! Parses a CSV channel on several threads: one thread reads the files and
//! cuts them into blocks of whole lines, the parsing threads take blocks as
//! they come, and the caller gets the rows back in file order.
//!
//! Ordering: blocks are numbered as they are cut and handed to `f` strictly
//! in that order, so rows arrive exactly as a single reader gives them.
//! Failure: each block knows the line it starts at, so an error names the
//! same file, line and column as a single reader's; the first error in file
//! order is the one reported, after every row before it has reached `f`.
//! Memory: at most `2 × parsers` blocks wait to be parsed and `2 × parsers`
//! parsed blocks wait to be taken, besides those being worked on; a block is
//! about [`Cutting::block_bytes`] of text, more only for a single longer
//! line, and a line longer than [`Cutting::max_line_bytes`] fails the pass.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use modelstage_sdk::StageError;

use crate::train::data::{csv_rows, open, Channel};

/// How the files are cut.
#[derive(Debug, Clone, Copy)]
pub struct Cutting {
    /// The text a block carries, cut back to its last line end.
    pub block_bytes: usize,
    /// The most text read without finding a line end: a longer line fails
    /// the pass.
    pub max_line_bytes: usize,
}

/// Blocks of 1 MiB; lines of up to 64 MiB (a million features of 60
/// characters each).
pub const CUTTING: Cutting = Cutting {
    block_bytes: 1 << 20,
    max_line_bytes: 64 << 20,
};

/// Whole lines of one file.
struct Block {
    /// Its place in the channel, from 0.
    seq: u64,
    /// Which of the channel's files it comes from.
    file: usize,
    /// The number of lines of the file before it.
    lines_before: u64,
    text: Vec<u8>,
}

/// A parsed block: `label, f1, ..., fd` runs, or the first problem in it.
type Parsed = (u64, Result<Vec<f64>, StageError>);

/// Calls `f(label, features)` for every row of the CSV `channel`, in file
/// order, parsing on `parsers` threads (at least 1) besides a reading one.
/// `check` validates each label where it is parsed. Returns how many rows
/// were read.
pub fn for_each_row(
    channel: &Channel,
    dim: usize,
    parsers: usize,
    cutting: Cutting,
    check: &(impl Fn(f64) -> Result<(), StageError> + Sync),
    mut f: impl FnMut(f64, &[f64]),
) -> Result<u64, StageError> {
    let parsers = parsers.max(1);
    let stride = dim + 1;
    std::thread::scope(|scope| {
        let (block_tx, block_rx) = sync_channel::<Block>(2 * parsers);
        // Shared by the parsers alone: when they have all stopped, the reader's
        // next send fails and it stops too.
        let block_rx = Arc::new(Mutex::new(block_rx));
        let (parsed_tx, parsed_rx) = sync_channel::<Parsed>(2 * parsers);
        let reader = scope.spawn(move || cut(channel, cutting, &block_tx));
        for _ in 0..parsers {
            let (block_rx, parsed_tx) = (Arc::clone(&block_rx), parsed_tx.clone());
            scope.spawn(move || parse_blocks(channel, dim, check, &block_rx, &parsed_tx));
        }
        drop((block_rx, parsed_tx));
        let delivered = deliver(parsed_rx, stride, &mut f);
        // Stopped early on a row's error: the parsers and then the reader see
        // their channels closed and stop.
        let read = reader.join().map_err(|_| {
            StageError::internal(format!("the reader of channel '{}' panicked", channel.name))
        })?;
        let rows = delivered?;
        read.map(|()| rows)
    })
}

/// Hands the parsed blocks to `f` in order; stops at the first error.
fn deliver(
    parsed: Receiver<Parsed>,
    stride: usize,
    f: &mut impl FnMut(f64, &[f64]),
) -> Result<u64, StageError> {
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    let mut rows = 0u64;
    for (seq, result) in parsed.iter() {
        waiting.insert(seq, result);
        while let Some(result) = waiting.remove(&next) {
            next += 1;
            for row in result?.chunks_exact(stride) {
                f(row[0], &row[1..]);
                rows += 1;
            }
        }
    }
    Ok(rows)
}

/// The line ends in `text`. The reading thread counts every block's lines
/// (the parsers number the lines of their block from there), so this is on
/// the one thread every block passes: counted in runs of 255 bytes into
/// byte-sized totals, which the compiler turns into wide vector compares,
/// it is 5× faster than counting into one `u64` (1 ms per MB, a tenth of
/// the first epoch on two CPUs).
fn count_lines(text: &[u8]) -> u64 {
    text.chunks(usize::from(u8::MAX))
        .map(|run| u64::from(run.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// The reading thread: every file of the channel, in blocks of whole lines.
fn cut(channel: &Channel, cutting: Cutting, blocks: &SyncSender<Block>) -> Result<(), StageError> {
    let mut seq = 0;
    for (file, path) in channel.files.iter().enumerate() {
        let mut reader = open(channel, path)?;
        let mut lines_before = 0u64;
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut text = std::mem::take(&mut carry);
            let start = text.len();
            text.resize(start + cutting.block_bytes, 0);
            let n = read_full(&mut reader, &mut text[start..]).map_err(|e| {
                StageError::internal(format!(
                    "channel '{}': cannot read {}: {e}",
                    channel.name,
                    path.display()
                ))
            })?;
            text.truncate(start + n);
            let end_of_file = n == 0;
            // Cut after the last line end; the rest starts the next block. At
            // the end of the file the rest is the last line, without its end.
            let cut_at = match text.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if end_of_file => text.len(),
                // One line longer than a block so far: read on, to a bound.
                None if text.len() <= cutting.max_line_bytes => {
                    carry = text;
                    continue;
                }
                None => {
                    return Err(StageError::bad_request(format!(
                        "channel '{}', file {}, line {}: no line end within {} bytes",
                        channel.name,
                        path.display(),
                        lines_before + 1,
                        cutting.max_line_bytes
                    )))
                }
            };
            carry = text.split_off(cut_at);
            if !text.is_empty() {
                let lines = count_lines(&text);
                let block = Block {
                    seq,
                    file,
                    lines_before,
                    text,
                };
                if blocks.send(block).is_err() {
                    // The parsers stopped (a row's error): nothing more to do.
                    return Ok(());
                }
                seq += 1;
                lines_before += lines;
            }
            if end_of_file {
                break;
            }
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A parsing thread: blocks until there are none left or no one listens.
fn parse_blocks(
    channel: &Channel,
    dim: usize,
    check: &(impl Fn(f64) -> Result<(), StageError> + Sync),
    blocks: &Mutex<Receiver<Block>>,
    parsed: &SyncSender<Parsed>,
) {
    let mut features = Vec::with_capacity(dim);
    loop {
        // A poisoned lock means another parser panicked: stop like the others.
        let Ok(block) = blocks.lock().map_err(drop).and_then(|rx| rx.recv().map_err(drop)) else {
            return;
        };
        let mut values = Vec::with_capacity(block.text.len() / 4);
        let mut rows = 0;
        let result = csv_rows(
            block.text.as_slice(),
            channel,
            &channel.files[block.file],
            block.lines_before,
            &mut Some(dim),
            &mut features,
            &mut rows,
            &mut |y, x| {
                check(y)?;
                values.push(y);
                values.extend_from_slice(x);
                Ok(true)
            },
        )
        .map(|_| values);
        if parsed.send((block.seq, result)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::{for_each_row as read_serially, Format};

    #[test]
    fn counts_line_ends_across_runs() {
        // All line ends (a run's total reaches u8::MAX), none, and a mix, at lengths around a run.
        for len in [0, 1, 254, 255, 256, 510, 511, 4096, 100_003] {
            for text in [
                vec![b'\n'; len],
                vec![b'7'; len],
                (0..len).map(|i| if i % 7 == 3 { b'\n' } else { b',' }).collect(),
            ] {
                let expected = text.iter().filter(|&&b| b == b'\n').count() as u64;
                assert_eq!(count_lines(&text), expected, "length {len}");
            }
        }
    }

    fn channel(dir: &std::path::Path, files: &[&str]) -> Channel {
        let files = files
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.join(format!("part-{i}.csv"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        Channel {
            name: "train".into(),
            files,
            format: Format::Csv,
        }
    }

    fn serial(c: &Channel) -> Result<Vec<Vec<f64>>, StageError> {
        let mut rows = Vec::new();
        read_serially(c, &mut Some(2), |y, x| {
            if y == 666.0 {
                return Err(StageError::bad_request("a bad label"));
            }
            rows.push([&[y][..], x].concat());
            Ok(true)
        })?;
        Ok(rows)
    }

    fn parallel(c: &Channel, parsers: usize, block: usize) -> Result<Vec<Vec<f64>>, StageError> {
        let cutting = Cutting {
            block_bytes: block,
            max_line_bytes: 100,
        };
        let mut rows = Vec::new();
        let check = |y| {
            if y == 666.0 {
                Err(StageError::bad_request("a bad label"))
            } else {
                Ok(())
            }
        };
        let n = for_each_row(c, 2, parsers, cutting, &check, |y, x| {
            rows.push([&[y][..], x].concat())
        })?;
        assert_eq!(n as usize, rows.len());
        Ok(rows)
    }

    /// Rows of varied widths, blank lines, CRLF, and no line end at the end.
    fn text(rows: usize, seed: usize) -> String {
        let mut text = String::new();
        for i in 0..rows {
            text.push_str(&format!("{}.5, {}.25,{}e-1", i + seed, i * 7 % 13, i * 31 % 1000));
            text.push_str(match i % 5 {
                0 => "\r\n",
                1 => "\n\n",
                _ => "\n",
            });
        }
        text.push_str("1,2,3");
        text
    }

    #[test]
    fn rows_come_back_in_file_order_whatever_the_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let c = channel(dir.path(), &[&text(3000, 0), "", &text(500, 10_000)]);
        let want = serial(&c).unwrap();
        assert_eq!(want.len(), 3502);
        for (parsers, block) in [(1, 1 << 20), (2, 64), (3, 7), (4, 1000)] {
            assert_eq!(
                parallel(&c, parsers, block).unwrap(),
                want,
                "{parsers} parsers, {block}-byte blocks"
            );
        }
    }

    #[test]
    fn the_first_error_in_file_order_is_reported_as_a_single_reader_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = text(2000, 0);
        first.push_str("\n7,x,9\n");
        let mut second = text(2000, 0);
        second.push_str("\n666,1,2\n");
        for files in [
            vec![first.as_str(), second.as_str()],
            vec![second.as_str(), first.as_str()],
        ] {
            let c = channel(dir.path(), &files);
            let want = serial(&c).unwrap_err().message;
            for (parsers, block) in [(2, 50), (3, 4096)] {
                let got = parallel(&c, parsers, block).unwrap_err().message;
                assert_eq!(got, want, "{parsers} parsers, {block}-byte blocks");
            }
        }
        let err = parallel(&channel(dir.path(), &[&first]), 2, 64)
            .unwrap_err()
            .message;
        assert!(
            err.contains("part-0.csv, line ") && err.contains(", column 2: 'x'"),
            "{err}"
        );
    }

    #[test]
    fn a_line_over_the_bound_is_refused_a_missing_file_named_a_field_quoted_in_part() {
        let dir = tempfile::tempdir().unwrap();
        // Lines of up to 100 bytes (`parallel`'s bound), read 16 bytes at a time.
        let long = format!("1,2,{}\n", "3".repeat(150));
        let c = channel(dir.path(), &["1,2,3\n", &format!("4,5,6\n7,8,9\n{long}")]);
        let err = parallel(&c, 2, 16).unwrap_err().message;
        assert!(
            err.contains("part-1.csv, line 3: no line end within 100 bytes"),
            "{err}"
        );
        let fits = format!("1,2,{}\n", "3".repeat(90));
        assert_eq!(parallel(&channel(dir.path(), &[&fits]), 2, 16).unwrap().len(), 1);
        let mut c = channel(dir.path(), &["1,2,3\n"]);
        c.files.push(dir.path().join("gone.csv"));
        let err = parallel(&c, 2, 1 << 20).unwrap_err().message;
        assert!(err.contains("cannot open") && err.contains("gone.csv"), "{err}");
        // A field is quoted as a bounded excerpt, never whole.
        let wide = format!("1,2,{}x\n", "3".repeat(5000));
        let err = serial(&channel(dir.path(), &[&wide])).unwrap_err().message;
        assert!(err.contains("... (5001 bytes)") && err.len() < 600, "{err}");
    }
}
