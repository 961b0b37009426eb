//! The training channel's parsed rows, kept in memory after the first epoch
//! when they fit a bound, so that later epochs replay them instead of
//! parsing the files again.
//!
//! Parsing a text channel costs about as much as training several models on
//! it, so without the cache every epoch is bound by one parsing thread.
//! Replayed rows reach the trainer in file order, exactly as parsed, so an
//! epoch trains on the same numbers either way. A channel larger than the
//! bound is streamed every epoch, as before: memory stays bounded whatever
//! the channel's size.

use modelstage_sdk::StageError;

use crate::train::data::{for_each_row_pipelined, Channel};

/// The most numbers (labels and features) kept: 512 MiB of `f64`.
pub const CACHE_VALUES: usize = 1 << 26;

/// A channel's rows, as `label, f1, ..., fd` runs of `f64`.
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
            stride: dim + 1,
            limit,
            values: Vec::new(),
            state: State::Empty,
        }
    }

    /// Calls `f(label, features)` for every row of `channel` in file order:
    /// from memory when a previous pass kept them all, else from the files
    /// (then keeping them, while they fit). `check` validates each label as
    /// it is parsed, as [`for_each_row_pipelined`] does.
    pub fn for_each_row(
        &mut self,
        channel: &Channel,
        check: impl Fn(f64) -> Result<(), StageError> + Sync,
        mut f: impl FnMut(f64, &[f64]),
    ) -> Result<(), StageError> {
        if self.state == State::Complete {
            for row in self.values.chunks_exact(self.stride) {
                f(row[0], &row[1..]);
            }
            return Ok(());
        }
        let keep = self.state == State::Empty;
        let (stride, limit) = (self.stride, self.limit);
        let values = &mut self.values;
        let mut overflowed = false;
        let pass = for_each_row_pipelined(channel, stride - 1, check, |y, x| {
            if keep && !overflowed {
                if values.len() + stride > limit {
                    overflowed = true;
                    *values = Vec::new();
                } else {
                    values.push(y);
                    values.extend_from_slice(x);
                }
            }
            f(y, x);
        });
        if let Err(e) = pass {
            self.values = Vec::new();
            return Err(e);
        }
        if keep {
            self.state = if overflowed {
                State::TooLarge
            } else {
                State::Complete
            };
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

    fn rows(cache: &mut RowCache, channel: &Channel) -> Vec<Vec<f64>> {
        let mut out = Vec::new();
        cache
            .for_each_row(
                channel,
                |_| Ok(()),
                |y, x| {
                    let mut row = vec![y];
                    row.extend_from_slice(x);
                    out.push(row);
                },
            )
            .unwrap();
        out
    }

    #[test]
    fn a_second_pass_replays_the_rows_without_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let channel = channel(dir.path(), "1,2,3\n4,5,6\n");
        let mut cache = RowCache::new(2, 100);
        let first = rows(&mut cache, &channel);
        assert_eq!(first, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        // The files are gone: only the cache can answer.
        std::fs::remove_file(&channel.files[0]).unwrap();
        assert_eq!(rows(&mut cache, &channel), first);
    }

    #[test]
    fn a_channel_over_the_bound_is_streamed_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let channel = channel(dir.path(), "1,2,3\n4,5,6\n");
        // Room for one row of three numbers, not two.
        let mut cache = RowCache::new(2, 5);
        assert_eq!(rows(&mut cache, &channel).len(), 2);
        assert!(cache.values.is_empty());
        std::fs::write(&channel.files[0], "7,8,9\n").unwrap();
        assert_eq!(rows(&mut cache, &channel), vec![vec![7.0, 8.0, 9.0]]);
    }
}
