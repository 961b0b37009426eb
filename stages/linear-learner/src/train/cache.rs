//! A channel's rows as the trainer reads them (label converted, example
//! weight, features normalised), kept in memory after the first pass when
//! they fit a bound, so that later passes neither parse the files again nor
//! normalise the rows again.
//!
//! Rows are handed out in windows of whole rows, in file order, exactly as
//! prepared: a pass reads the same numbers whether they come from the files
//! or from memory. A channel larger than the bound is streamed and prepared
//! on every pass, as before: memory stays bounded whatever the channel's
//! size.

use modelstage_sdk::StageError;

use crate::train::data::{for_each_checked_row, Channel};

/// The most numbers kept for the training channel: 512 MiB of `f64`.
pub const TRAIN_CACHE_VALUES: usize = 1 << 26;
/// The most numbers kept for the validation channel: 256 MiB of `f64`.
pub const VALIDATION_CACHE_VALUES: usize = 1 << 25;

/// Where the label and the example weight sit in a prepared row; the
/// features follow them.
pub const LABEL: usize = 0;
pub const WEIGHT: usize = 1;
pub const FEATURES: usize = 2;

/// A channel's prepared rows, as `label, weight, x_1, ..., x_d` runs of `f64`.
#[derive(Debug)]
pub struct RowCache {
    stride: usize,
    limit: usize,
    values: Vec<f64>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No full pass yet.
    Empty,
    /// Every row of the channel is held.
    Complete,
    /// The channel is larger than the bound: always stream it.
    TooLarge,
}

impl RowCache {
    /// A cache for rows of `dim` features holding at most `limit` numbers.
    pub fn new(dim: usize, limit: usize) -> RowCache {
        RowCache {
            stride: dim + FEATURES,
            limit,
            values: Vec::new(),
            state: State::Empty,
        }
    }

    /// The numbers one prepared row takes.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Every row of the channel, when a previous pass kept them all.
    pub fn complete(&self) -> Option<&[f64]> {
        (self.state == State::Complete).then_some(self.values.as_slice())
    }

    /// Calls `f(window)` for windows of at most `window_rows` prepared rows
    /// (every window but the last is full), covering every row of `channel`
    /// in file order: from memory when a previous pass kept them all, else
    /// from the files (parsed on `parsers` threads), keeping them while they
    /// fit.
    ///
    /// `check` validates each label as it is parsed, where the file and
    /// line are known (as [`for_each_checked_row`]
    /// does). `prepare(label, features, row)` fills one prepared row of
    /// [`Self::stride`] numbers, or returns `false` to leave the row out.
    pub fn for_each_window(
        &mut self,
        channel: &Channel,
        window_rows: usize,
        parsers: usize,
        check: impl Fn(f64) -> Result<(), StageError> + Sync,
        prepare: impl Fn(f64, &[f64], &mut [f64]) -> bool,
        mut f: impl FnMut(&[f64]),
    ) -> Result<(), StageError> {
        let stride = self.stride;
        let window = window_rows.max(1) * stride;
        if self.state == State::Complete {
            for rows in self.values.chunks(window) {
                f(rows);
            }
            return Ok(());
        }
        let mut keep = self.state == State::Empty;
        let limit = self.limit;
        let values = &mut self.values;
        let mut buffer = Vec::with_capacity(window);
        let mut hand_over = |buffer: &mut Vec<f64>, f: &mut dyn FnMut(&[f64])| {
            f(buffer);
            if keep {
                if values.len() + buffer.len() > limit {
                    keep = false;
                    *values = Vec::new();
                } else {
                    values.extend_from_slice(buffer);
                }
            }
            buffer.clear();
        };
        let pass = for_each_checked_row(channel, stride - FEATURES, parsers, check, |y, x| {
            let start = buffer.len();
            buffer.resize(start + stride, 0.0);
            if !prepare(y, x, &mut buffer[start..]) {
                buffer.truncate(start);
            } else if buffer.len() == window {
                hand_over(&mut buffer, &mut f);
            }
        });
        if pass.is_ok() && !buffer.is_empty() {
            hand_over(&mut buffer, &mut f);
        }
        if let Err(e) = pass {
            self.values = Vec::new();
            return Err(e);
        }
        if self.state == State::Empty {
            self.state = if keep { State::Complete } else { State::TooLarge };
            self.values.shrink_to_fit();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::Format;

    fn channel(dir: &std::path::Path, text: &str) -> Channel {
        let path = dir.join("train.csv");
        std::fs::write(&path, text).unwrap();
        Channel {
            name: "train".into(),
            files: vec![path],
            format: Format::Csv,
        }
    }

    /// Every window's rows, with the label doubled and a weight of 1 (rows
    /// with the label 0 left out), and the window sizes.
    fn windows(cache: &mut RowCache, channel: &Channel, rows: usize) -> (Vec<Vec<f64>>, Vec<usize>) {
        let stride = cache.stride();
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        cache
            .for_each_window(
                channel,
                rows,
                1,
                |_| Ok(()),
                |y, x, row| {
                    row[LABEL] = 2.0 * y;
                    row[WEIGHT] = 1.0;
                    row[FEATURES..].copy_from_slice(x);
                    y != 0.0
                },
                |window| {
                    sizes.push(window.len() / stride);
                    out.extend(window.chunks(stride).map(<[f64]>::to_vec));
                },
            )
            .unwrap();
        (out, sizes)
    }

    #[test]
    fn a_second_pass_replays_the_prepared_rows_without_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let channel = channel(dir.path(), "1,2,3\n0,9,9\n4,5,6\n7,8,9\n");
        let mut cache = RowCache::new(2, 100);
        let (first, sizes) = windows(&mut cache, &channel, 2);
        assert_eq!(
            first,
            vec![
                vec![2.0, 1.0, 2.0, 3.0],
                vec![8.0, 1.0, 5.0, 6.0],
                vec![14.0, 1.0, 8.0, 9.0]
            ]
        );
        assert_eq!(sizes, vec![2, 1], "full windows, the rest last");
        // The files are gone: only the cache can answer, in the same windows.
        std::fs::remove_file(&channel.files[0]).unwrap();
        assert_eq!(windows(&mut cache, &channel, 2), (first, sizes));
    }

    #[test]
    fn a_channel_over_the_bound_is_streamed_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let channel = channel(dir.path(), "1,2,3\n4,5,6\n");
        // Room for one prepared row of four numbers, not two.
        let mut cache = RowCache::new(2, 5);
        assert_eq!(windows(&mut cache, &channel, 1).0.len(), 2);
        assert!(cache.values.is_empty());
        std::fs::write(&channel.files[0], "7,8,9\n").unwrap();
        assert_eq!(
            windows(&mut cache, &channel, 1).0,
            vec![vec![14.0, 1.0, 8.0, 9.0]]
        );
    }

    #[test]
    fn a_failed_pass_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let channel = channel(dir.path(), "1,2,3\n4,x,6\n");
        let mut cache = RowCache::new(2, 100);
        let err = cache
            .for_each_window(&channel, 1, 1, |_| Ok(()), |_, _, _| true, |_| {})
            .unwrap_err();
        assert!(err.message.contains("line 2"), "{}", err.message);
        assert!(cache.values.is_empty());
        assert_eq!(cache.state, State::Empty);
    }
}
