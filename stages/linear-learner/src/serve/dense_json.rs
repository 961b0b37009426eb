//! The fast path of `application/json` requests: the common dense shape
//! `{"instances": [{"features": [x1, ..., xd]}, ...]}` scanned byte by byte
//! straight into the batch, with no `serde_json::Value` tree and no
//! deserializer in between.
//!
//! It accepts only that shape, exactly: any other key, a repeated key, a key
//! spelled with escapes, a record of the wrong length, a number outside
//! JSON's grammar or past the largest double, or anything else makes it give
//! up, and the caller decodes the body again on the general path, which
//! accepts every shape the stage takes and words the errors. Numbers are
//! parsed correctly rounded, as `serde_json` (with `float_roundtrip`) parses
//! them. So the fast path changes what a request costs, never what it gets.

use std::cell::RefCell;

use modelstage_sdk::codecs::number_cache::NumberCache;
use modelstage_sdk::number::parse_f64;

use super::input::Batch;

/// Entries of the per-thread cache of parsed numbers (40 bytes each). The
/// featurizer's features repeat: abalone's give about 6,000 distinct texts,
/// of which a warm cache of 16,384 slots misses 2.8% of lookups (three texts
/// in use hashing to one pair keep evicting each other), of 32,768 slots 0.8%.
const CACHE_SLOTS: usize = 32 * 1024;

thread_local! {
    static NUMBERS: RefCell<NumberCache> = RefCell::new(NumberCache::new(CACHE_SLOTS));
}

/// Appends the records of `body` to `batch` and returns true, or returns
/// false (with `batch` holding a partial decode, to be discarded) when the
/// body is not exactly the dense shape with `dim` features per record.
pub fn decode(body: &[u8], dim: usize, batch: &mut Batch) -> bool {
    // What the featurizer writes per value is about 20 bytes; reserving
    // from the body keeps the vector from regrowing on large requests.
    batch.reserve_dense(body.len() / 16);
    with_numbers(|numbers| Scanner { body, at: 0, numbers }.body(dim, batch).is_some())
}

/// Runs `f` with this thread's cache of parsed numbers, which the CSV
/// decoder shares.
pub fn with_numbers<R>(f: impl FnOnce(&mut NumberCache) -> R) -> R {
    NUMBERS.with(|cache| match cache.try_borrow_mut() {
        Ok(mut numbers) => f(&mut numbers),
        // Only reachable if decoding re-entered itself; parse uncached.
        Err(_) => f(&mut NumberCache::new(2)),
    })
}

/// A position in the body; every method returns `None` to give up.
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
    numbers: &'a mut NumberCache,
}

impl Scanner<'_> {
    /// `{"instances": [instance, ...]}` and nothing after it but whitespace.
    ///
    /// Never inlined: the loop over a body ran 13% slower when the
    /// compiler merges it into the cache's borrow in [`decode`] (measured
    /// with 1,000-record requests), which it started doing when unrelated
    /// code of the stage grew.
    #[inline(never)]
    fn body(&mut self, dim: usize, batch: &mut Batch) -> Option<()> {
        self.expect(b'{')?;
        self.key(b"instances")?;
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                self.instance(dim, batch)?;
                if !self.more()? {
                    break;
                }
            }
        }
        self.expect(b'}')?;
        self.skip_whitespace();
        (self.at == self.body.len()).then_some(())
    }

    /// `{"features": [x1, ..., xd]}`, appended as one dense record.
    fn instance(&mut self, dim: usize, batch: &mut Batch) -> Option<()> {
        self.expect(b'{')?;
        self.key(b"features")?;
        self.expect(b'[')?;
        let start = batch.dense_len();
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                let x = self.number()?;
                if batch.dense_len() - start == dim {
                    return None;
                }
                batch.push_value(x);
                if !self.more()? {
                    break;
                }
            }
        }
        batch.end_dense(start, dim).ok()?;
        self.expect(b'}')
    }

    /// After a list item: true at `,` (another item follows), false at `]`.
    #[inline]
    fn more(&mut self) -> Option<bool> {
        let next = self.peek()?;
        self.at += 1;
        match next {
            b',' => Some(true),
            b']' => Some(false),
            _ => None,
        }
    }

    /// `"key":`, the key spelled without escapes.
    fn key(&mut self, key: &[u8]) -> Option<()> {
        self.expect(b'"')?;
        let end = self.at + key.len();
        if self.body.get(self.at..end)? != key || self.body.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.expect(b':')
    }

    /// A number in JSON's grammar, `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`,
    /// finite as a double.
    #[inline]
    fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let start = self.at;
        let mut i = start;
        if self.body.get(i) == Some(&b'-') {
            i += 1;
        }
        match self.body.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = self.digits(i + 1),
            _ => return None,
        }
        if self.body.get(i) == Some(&b'.') {
            let end = self.digits(i + 1);
            if end == i + 1 {
                return None;
            }
            i = end;
        }
        if let Some(b'e' | b'E') = self.body.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = self.body.get(i) {
                i += 1;
            }
            let end = self.digits(i);
            if end == i {
                return None;
            }
            i = end;
        }
        self.at = i;
        // Correctly rounded, as serde_json's float_roundtrip parse; a number
        // past the largest double is an error there, so a give-up here.
        let finite = |text: &[u8]| parse_f64(text).filter(|x| x.is_finite());
        self.numbers.get_or_parse(&self.body[start..i], finite)
    }

    /// The end of the run of ASCII digits from `i`.
    #[inline]
    fn digits(&self, mut i: usize) -> usize {
        // Eight bytes at a time: a full-precision feature has 16 or 17 digits.
        while let Some(chunk) = self.body.get(i..i + 8) {
            let mut w = [0; 8];
            w.copy_from_slice(chunk);
            let w = u64::from_le_bytes(w);
            // A byte's top bit is set in `above | below` exactly when it is
            // not a digit, for every byte up to the first non-digit: digits
            // neither carry nor borrow into the next byte.
            let above = w.wrapping_add(0x4646_4646_4646_4646);
            let below = w.wrapping_sub(0x3030_3030_3030_3030);
            let not_digits = (above | below) & 0x8080_8080_8080_8080;
            if not_digits != 0 {
                return i + (not_digits.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while self.body.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    }

    /// Skips whitespace and consumes `byte`.
    #[inline]
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Skips whitespace and returns the next byte, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.body.get(self.at).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(&b) = self.body.get(self.at) {
            // Every byte a request has most of sorts above the space.
            if b > b' ' || !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return;
            }
            self.at += 1;
        }
    }
}
