//! Progress of a transform job: a bar (records, MB/s, ETA) when stderr is a
//! terminal, a plain line every few seconds otherwise, so a log shows the
//! job moving without drowning in redraws. Progress is measured in input
//! bytes read from disk (compressed bytes for Gzip input).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const LOG_INTERVAL: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    log_lines: bool,
    total: u64,
    position: u64,
    records: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// A bar on a terminal, log lines otherwise.
    pub fn auto() -> Progress {
        let total_bytes = 0;
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            Progress::with(Some(bar), false, total_bytes)
        } else {
            Progress::with(None, true, total_bytes)
        }
    }

    /// Reports nothing (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress::with(None, false, 0)
    }

    fn with(bar: Option<ProgressBar>, log_lines: bool, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            bar,
            log_lines,
            total,
            position: 0,
            records: 0,
            started: now,
            last_line: now,
        }
    }

    /// Sets the job's total input bytes once the inputs are listed.
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// `position`: input bytes read so far over the whole job; `records`:
    /// records just written.
    pub fn update(&mut self, position: u64, records: u64) {
        self.position = position.max(self.position);
        self.records += records;
        if let Some(bar) = &self.bar {
            bar.set_position(self.position);
            bar.set_message(format!("{} records", self.records));
        } else if self.log_lines && self.last_line.elapsed() >= LOG_INTERVAL {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The plain progress line.
    pub fn line(&self) -> String {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = mb(self.position) / elapsed;
        let percent = if self.total > 0 {
            100.0 * self.position as f64 / self.total as f64
        } else {
            100.0
        };
        let eta = if rate > 0.0 && self.total > self.position {
            format_duration((mb(self.total - self.position) / rate) as u64)
        } else {
            "0s".to_string()
        };
        format!(
            "transform: {} records, {:.1}/{:.1} MB ({percent:.1}%), {rate:.1} MB/s, ETA {eta}",
            self.records,
            mb(self.position),
            mb(self.total)
        )
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.log_lines {
            eprintln!("{}", self.line());
        }
    }
}

fn format_duration(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_compactly() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(110), "1m50s");
        assert_eq!(format_duration(3725), "1h02m");
    }

    #[test]
    fn the_line_counts_records_and_bytes() {
        let mut p = Progress::with(None, false, 4_000_000);
        p.update(1_000_000, 7);
        p.update(500_000, 3); // positions never go backwards
        let line = p.line();
        assert!(
            line.starts_with("transform: 10 records, 1.0/4.0 MB (25.0%)"),
            "{line}"
        );
    }
}
