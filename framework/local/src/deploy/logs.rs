//! A container's log: every line it prints is shown on our own output, prefixed with the
//! container's name, and the last lines are kept so that a container that fails to start can be
//! reported with what it said.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

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
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
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

/// Copies `stream` line by line to our output as `[name] line` until it closes.
pub fn forward(stream: impl Read + Send + 'static, kind: Stream, name: &str, sink: Sink, tail: Tail) {
    let prefix = format!("[{name}] ");
    let spawned = std::thread::Builder::new()
        .name(format!("log-{name}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                // Logs are text; anything else is shown lossily rather than dropped.
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let shown = format!("{prefix}{line}\n");
                // One write per line, so lines of different containers never interleave.
                let _ = match (sink, kind) {
                    (Sink::Mirror, Stream::Stdout) => std::io::stdout().lock().write_all(shown.as_bytes()),
                    _ => std::io::stderr().lock().write_all(shown.as_bytes()),
                };
                tail.push(line);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot show the log of {name}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let tail = Tail::default();
        for i in 0..TAIL_LINES + 5 {
            tail.push(format!("line {i}"));
        }
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
}
