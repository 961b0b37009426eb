//! Mini-batches: SingleRecord sends one record per request, MultiRecord packs
//! as many whole records as fit in MaxPayloadInMB (MiB, as the platform and
//! the serving side count it). A record that does not fit on its own fails
//! with its position; MaxPayloadInMB=0 means no limit.

use super::job::BatchStrategy;
use super::split::{Locator, SplitError};

/// Bytes in one "MB" of MaxPayloadInMB.
pub use modelstage_contract::payload::MB;

/// One record ready to send: its request bytes (after InputFilter) and, when
/// the output is joined with the input, the original record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub payload: Vec<u8>,
    pub locator: Locator,
    pub original: Option<Vec<u8>>,
}

/// One request's worth of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: Vec<u8>,
    pub first: Locator,
    pub last: Locator,
    pub count: usize,
    /// The original records, only when the job joins output with input.
    pub originals: Vec<Vec<u8>>,
}

/// The payload limit in bytes for MaxPayloadInMB; `None` for 0 (unlimited).
pub fn payload_limit(max_payload_in_mb: u32) -> Option<usize> {
    (max_payload_in_mb > 0).then(|| max_payload_in_mb as usize * MB)
}

/// Groups items into batches, in order.
pub struct Batcher<I> {
    items: I,
    strategy: BatchStrategy,
    max_payload_in_mb: u32,
    pending: Option<Item>,
    pending_error: Option<SplitError>,
    done: bool,
}

impl<I: Iterator<Item = Result<Item, SplitError>>> Batcher<I> {
    pub fn new(items: I, strategy: BatchStrategy, max_payload_in_mb: u32) -> Self {
        Batcher {
            items,
            strategy,
            max_payload_in_mb,
            pending: None,
            pending_error: None,
            done: false,
        }
    }

    fn check(&self, item: &Item) -> Result<(), SplitError> {
        match payload_limit(self.max_payload_in_mb) {
            Some(limit) if item.payload.len() > limit => Err(SplitError {
                locator: item.locator,
                message: format!(
                    "the record is {} bytes, larger than MaxPayloadInMB={} ({limit} bytes); \
                     raise MaxPayloadInMB or split the record",
                    item.payload.len(),
                    self.max_payload_in_mb
                ),
            }),
            _ => Ok(()),
        }
    }

    fn next_item(&mut self) -> Option<Result<Item, SplitError>> {
        self.pending.take().map(Ok).or_else(|| self.items.next())
    }
}

impl<I: Iterator<Item = Result<Item, SplitError>>> Iterator for Batcher<I> {
    type Item = Result<Batch, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending_error.take() {
            self.done = true;
            return Some(Err(error));
        }
        if self.done {
            return None;
        }
        let first = match self.next_item()? {
            Ok(item) => item,
            Err(error) => {
                self.done = true;
                return Some(Err(error));
            }
        };
        if let Err(error) = self.check(&first) {
            self.done = true;
            return Some(Err(error));
        }
        let mut batch = Batch {
            first: first.locator,
            last: first.locator,
            count: 1,
            originals: first.original.into_iter().collect(),
            body: first.payload,
        };
        if self.strategy == BatchStrategy::MultiRecord {
            let limit = payload_limit(self.max_payload_in_mb);
            loop {
                match self.next_item() {
                    None => break,
                    Some(Err(error)) => {
                        // Send what fits first, so errors surface in file order.
                        self.pending_error = Some(error);
                        break;
                    }
                    Some(Ok(item)) => {
                        if limit.is_some_and(|l| batch.body.len() + item.payload.len() > l) {
                            self.pending = Some(item);
                            break;
                        }
                        batch.body.extend_from_slice(&item.payload);
                        batch.last = item.locator;
                        batch.count += 1;
                        batch.originals.extend(item.original);
                    }
                }
            }
        }
        Some(Ok(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(size: usize, line: u64) -> Result<Item, SplitError> {
        Ok(Item {
            payload: vec![b'x'; size],
            locator: Locator::Line(line),
            original: None,
        })
    }

    fn sizes(batches: &[Result<Batch, SplitError>]) -> Vec<usize> {
        batches
            .iter()
            .map(|b| b.as_ref().map(|b| b.body.len()).unwrap_or(0))
            .collect()
    }

    #[test]
    fn single_record_sends_each_record_alone() {
        let got: Vec<_> = Batcher::new(
            vec![item(3, 1), item(4, 2)].into_iter(),
            BatchStrategy::SingleRecord,
            1,
        )
        .collect();
        assert_eq!(sizes(&got), vec![3, 4]);
        assert_eq!(got[1].as_ref().unwrap().first, Locator::Line(2));
    }

    #[test]
    fn multi_record_fills_up_to_the_exact_limit() {
        // 1 MiB limit: 512 KiB + 512 KiB fits exactly; the next byte starts a new batch.
        let half = MB / 2;
        let items = vec![
            item(half, 1),
            item(half, 2),
            item(1, 3),
            item(MB - 1, 4),
            item(2, 5),
        ];
        let got: Vec<_> = Batcher::new(items.into_iter(), BatchStrategy::MultiRecord, 1).collect();
        assert_eq!(sizes(&got), vec![MB, MB, 2]);
        let second = got[1].as_ref().unwrap();
        assert_eq!(
            (second.first, second.last, second.count),
            (Locator::Line(3), Locator::Line(4), 2)
        );
    }

    #[test]
    fn a_record_over_the_limit_fails_with_its_line() {
        let items = vec![item(10, 1), item(MB + 1, 2), item(1, 3)];
        let got: Vec<_> = Batcher::new(items.into_iter(), BatchStrategy::MultiRecord, 1).collect();
        assert_eq!(got.len(), 2, "the batch before it is sent, nothing after");
        let err = got[1].clone().unwrap_err();
        assert_eq!(err.locator, Locator::Line(2));
        assert!(
            err.message
                .contains("1048577 bytes, larger than MaxPayloadInMB=1"),
            "{}",
            err.message
        );
        // Exactly the limit on its own is fine.
        let got: Vec<_> =
            Batcher::new(vec![item(MB, 1)].into_iter(), BatchStrategy::SingleRecord, 1).collect();
        assert!(got[0].is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let items = vec![item(MB, 1), item(MB, 2), item(MB, 3)];
        let got: Vec<_> = Batcher::new(items.into_iter(), BatchStrategy::MultiRecord, 0).collect();
        assert_eq!(sizes(&got), vec![3 * MB]);
    }

    #[test]
    fn upstream_errors_come_after_the_records_before_them() {
        let error = SplitError {
            locator: Locator::Line(3),
            message: "bad".into(),
        };
        let items = vec![item(1, 1), item(1, 2), Err(error.clone()), item(1, 4)];
        let got: Vec<_> = Batcher::new(items.into_iter(), BatchStrategy::MultiRecord, 1).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().count, 2);
        assert_eq!(got[1], Err(error));
    }

    #[test]
    fn originals_travel_with_their_batch() {
        let items = (1..=3).map(|n| {
            Ok(Item {
                payload: vec![b'a'],
                locator: Locator::Line(n),
                original: Some(vec![n as u8]),
            })
        });
        let got: Vec<_> = Batcher::new(items, BatchStrategy::MultiRecord, 1).collect();
        assert_eq!(
            got[0].as_ref().unwrap().originals,
            vec![vec![1], vec![2], vec![3]]
        );
    }
}
