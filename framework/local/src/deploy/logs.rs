//! A container's log: every line it prints is shown on our own output, prefixed with the
//! container's name, and the last lines are kept so that a container that fails to start can be
//! reported with what it said.
//!
//! The lines are relayed in batches: after showing what it has read, the relay waits
//! [`GATHER`] before reading again, so a container that logs every request (the access log)
//! wakes it a few hundred times a second instead of once per line. Waking per line took a
//! quarter of a pipeline's requests/s at 8 connections (`docs/benchmarks.md`). A line is shown
//! at most [`GATHER`] after it is written; a container that writes more than the pipe holds in
//! that time waits on its write, as it would for a slow terminal. Lines keep their order, and a
//! line longer than [`MAX_LINE`] is shown in pieces rather than held in memory whole.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many of a container's last lines are kept for error reports.
const TAIL_LINES: usize = 200;

/// Where a container's lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Its stdout on our stdout, its stderr on our stderr.
    Mirror,
    /// Everything on our stderr (when our stdout carries data, as in batch transform).
    Stderr,
}

/// The last lines of one container's output, both streams interleaved as they arrived.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn extend(&self, new: impl IntoIterator<Item = String>) {
        if let Ok(mut lines) = self.0.lock() {
            for line in new {
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        }
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Which of the container's streams is read.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How long the relay lets lines gather after showing a batch.
const GATHER: Duration = Duration::from_millis(2);

/// What the relay reads at a time: also what a container may write during one [`GATHER`]
/// before its write waits (with the pipe's own buffer).
const READ_BUFFER: usize = 64 * 1024;

/// The longest line kept whole; a longer one is shown in pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// Copies `stream` line by line to our output as `[name] line` until it closes.
pub fn forward(stream: impl Read + Send + 'static, kind: Stream, name: &str, sink: Sink, tail: Tail) {
    let prefix = format!("[{name}] ");
    // One write under the stream's lock per batch, so batches of different containers never
    // interleave.
    let show = move |batch: &[u8]| {
        let _ = match (sink, kind) {
            (Sink::Mirror, Stream::Stdout) => std::io::stdout().lock().write_all(batch),
            _ => std::io::stderr().lock().write_all(batch),
        };
    };
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || relay(stream, &prefix, &tail, show));
    if let Err(e) = spawned {
        log::warn!("cannot show the log of {name}: {e}");
    }
}

/// The relay's loop: reads lines and hands `show` each batch of them, prefixed, once no whole
/// line is left in what was read; then lets the next batch gather. The reader refills only then,
/// so a batch is at most one read's lines.
fn relay(stream: impl Read, prefix: &str, tail: &Tail, mut show: impl FnMut(&[u8])) {
    let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
    let mut raw = Vec::new();
    let mut shown = Vec::new();
    let mut lines = Vec::new();
    loop {
        raw.clear();
        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Logs are text; anything else is shown lossily rather than dropped.
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        shown.extend_from_slice(prefix.as_bytes());
        shown.extend_from_slice(line.as_bytes());
        shown.push(b'\n');
        lines.push(line);
        if !reader.buffer().contains(&b'\n') {
            show(&shown);
            shown.clear();
            tail.extend(lines.drain(..));
            std::thread::sleep(GATHER);
        }
    }
    if !shown.is_empty() {
        show(&shown);
    }
    tail.extend(lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let tail = Tail::default();
        tail.extend((0..TAIL_LINES + 5).map(|i| format!("line {i}")));
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 5");
        assert_eq!(lines[TAIL_LINES - 1], format!("line {}", TAIL_LINES + 4));
    }

    #[test]
    fn forwarded_lines_reach_the_tail() {
        let tail = Tail::default();
        let text: &'static [u8] = b"first\r\nsecond\nno newline at the end";
        forward(text, Stream::Stderr, "c1", Sink::Stderr, tail.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tail.lines().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(tail.lines(), ["first", "second", "no newline at the end"]);
    }

    /// What `relay` shows of `text`, and the tail it leaves.
    fn relayed(text: &[u8]) -> (String, Vec<String>) {
        let tail = Tail::default();
        let mut shown = Vec::new();
        relay(text, "[c1] ", &tail, |batch| shown.extend_from_slice(batch));
        (String::from_utf8(shown).unwrap(), tail.lines())
    }

    #[test]
    fn lines_read_together_are_shown_in_order_with_their_prefix() {
        let (shown, tail) = relayed(b"one\ntwo\r\n\nthree");
        assert_eq!(shown, "[c1] one\n[c1] two\n[c1] \n[c1] three\n");
        assert_eq!(tail, ["one", "two", "", "three"]);
    }

    #[test]
    fn a_line_longer_than_the_bound_is_shown_in_pieces() {
        let mut text = vec![b'a'; MAX_LINE + 10];
        text.extend_from_slice(b"\nend\n");
        let (shown, tail) = relayed(&text);
        assert_eq!(tail.len(), 3);
        assert_eq!(tail[0].len(), MAX_LINE);
        assert_eq!(tail[1], "a".repeat(10));
        assert_eq!(tail[2], "end");
        assert!(shown.ends_with("[c1] aaaaaaaaaa\n[c1] end\n"));
    }

    #[test]
    fn lines_that_are_not_text_are_shown_lossily() {
        let (shown, _) = relayed(b"ok \xff\xfe\n");
        assert_eq!(shown, "[c1] ok \u{fffd}\u{fffd}\n");
    }

    #[test]
    fn a_batch_is_never_bigger_than_a_read_and_a_line() {
        // A steady stream, with lines that straddle the refills of the read buffer.
        let text: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let tail = Tail::default();
        let (mut batches, mut biggest, mut total) = (0, 0, 0);
        relay(&text[..], "[c1] ", &tail, |batch| {
            batches += 1;
            biggest = biggest.max(batch.len());
            total += batch.len();
        });
        assert!(
            biggest <= READ_BUFFER + MAX_LINE + "[c1] \n".len(),
            "a batch of {biggest} bytes"
        );
        assert!(batches > 1);
        assert_eq!(total, text.len() + 200_000 * "[c1] ".len());
        assert_eq!(tail.lines().last().map(String::as_str), Some("line 199999"));
    }
}
