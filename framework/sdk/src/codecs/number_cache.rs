//! Parsed numbers by their text: a bounded, two-way cache for stages
//! that read the same number texts again and again (a tabular column of
//! measurements with three decimals has a few thousand distinct texts; the
//! features a featurizer writes have as many). A hit costs a hash and a
//! compare of at most three words instead of a correctly rounded parse.
//!
//! The cache holds only what the caller's parser returned for exactly the
//! same bytes, so a lookup gives the same value the parser would; texts
//! longer than [`NumberCache::MAX_TEXT`] and texts the parser refuses are
//! never cached.
//!
//! ```
//! use modelstage_sdk::codecs::number_cache::NumberCache;
//! use modelstage_sdk::number::parse_f64;
//!
//! let mut cache = NumberCache::new(1024);
//! assert_eq!(cache.get_or_parse(b"0.455", parse_f64), Some(0.455));
//! assert_eq!(cache.get_or_parse(b"0.455", parse_f64), Some(0.455)); // a hit
//! assert_eq!(cache.get_or_parse(b"x", parse_f64), None);
//! ```

/// The key of a text of up to [`NumberCache::MAX_TEXT`] bytes: its length
/// and up to three words that together hold every byte of it, so equal keys
/// mean equal texts.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    len: u64,
    words: [u64; 3],
}

/// A length no text has: marks an empty slot.
const EMPTY: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    value: f64,
}

/// Numbers by text in pairs of slots: a new text evicts the older of the
/// two texts of its pair.
pub struct NumberCache {
    slots: Vec<Slot>,
    /// `64 - log2(slots)`: the hash's top bits pick the slot.
    shift: u32,
}

impl NumberCache {
    /// The longest text cached; longer ones are parsed every time.
    pub const MAX_TEXT: usize = 24;

    /// A cache of `slots` entries (rounded up to a power of two, at least
    /// 2); each takes 40 bytes.
    pub fn new(slots: usize) -> NumberCache {
        let slots = slots.clamp(2, 1 << 24).next_power_of_two();
        NumberCache {
            slots: vec![
                Slot {
                    key: Key {
                        len: EMPTY,
                        words: [0; 3],
                    },
                    value: 0.0,
                };
                slots
            ],
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// The value of `text`: the cached one, or `parse(text)`, cached when it
    /// is `Some` and the text is short enough.
    #[inline]
    pub fn get_or_parse(&mut self, text: &[u8], parse: impl FnOnce(&[u8]) -> Option<f64>) -> Option<f64> {
        let Some(key) = key(text) else {
            return parse(text);
        };
        let hash = (key.words[0] ^ key.words[1].rotate_left(21) ^ key.words[2].rotate_left(43) ^ key.len)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Two ways: a text may sit in either slot of its pair, and a new
        // text goes first, pushing the first one second, so two texts in use
        // that hash alike do not evict each other.
        let first = (hash >> self.shift) as usize & !1;
        let second = first + 1;
        if self.slots[first].key == key {
            return Some(self.slots[first].value);
        }
        if self.slots[second].key == key {
            return Some(self.slots[second].value);
        }
        let value = parse(text)?;
        self.slots[second] = self.slots[first];
        self.slots[first] = Slot { key, value };
        Some(value)
    }
}

/// The key of `text`, or `None` past [`NumberCache::MAX_TEXT`]. Overlapping
/// reads cover every byte without copying the text into a padded buffer.
///
/// Always inlined: it runs once per number in the decoders' loops, and left
/// to the compiler's choice it was once made a call there when unrelated code
/// of the stage grew, which cost Linear Learner's JSON decoder a third of its
/// speed.
#[inline(always)]
fn key(text: &[u8]) -> Option<Key> {
    let n = text.len();
    let word = |i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&text[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let half = |i: usize| {
        let mut w = [0; 4];
        w.copy_from_slice(&text[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let words = match n {
        0 => [0; 3],
        1..=3 => [
            u64::from(text[0]) | u64::from(text[n / 2]) << 8 | u64::from(text[n - 1]) << 16,
            0,
            0,
        ],
        4..=8 => [half(0) | half(n - 4) << 32, 0, 0],
        9..=16 => [word(0), word(n - 8), 0],
        17..=24 => [word(0), word(8), word(n - 8)],
        _ => return None,
    };
    Some(Key { len: n as u64, words })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::parse_f64;

    /// Every pair of distinct texts of up to 24 bytes has distinct keys.
    #[test]
    fn keys_tell_every_byte_apart() {
        for n in 0..=NumberCache::MAX_TEXT {
            let base: Vec<u8> = (0..n as u8).map(|i| b'0' + i % 10).collect();
            let k = key(&base).unwrap();
            for i in 0..n {
                let mut other = base.clone();
                other[i] = b'x';
                assert!(key(&other).unwrap() != k, "length {n}, byte {i}");
            }
            // A text and its extension by a zero byte differ by length.
            let mut longer = base.clone();
            longer.push(0);
            if let Some(longer) = key(&longer) {
                assert!(longer != k, "length {n}");
            }
        }
        assert!(key(&[b'1'; 25]).is_none());
    }

    #[test]
    fn hits_give_what_the_parser_gave() {
        // Two slots, one pair: texts evict each other; each lookup must still give
        // exactly the parse of its own text.
        let mut cache = NumberCache::new(2);
        let texts = [
            "0.1234567890123456",
            "0.1234567890123457",
            "1.2345678901234567e-308",
            "1.2345678901234568e-308",
            "-0",
            "0",
            "0.455",
            "0.4550",
        ];
        for _ in 0..3 {
            for t in texts {
                let got = cache.get_or_parse(t.as_bytes(), parse_f64).map(f64::to_bits);
                assert_eq!(got, parse_f64(t.as_bytes()).map(f64::to_bits), "{t}");
            }
        }
    }

    #[test]
    fn two_texts_of_one_pair_both_stay() {
        // One pair of slots: every text hashes to it.
        let mut cache = NumberCache::new(2);
        let calls = std::cell::Cell::new(0);
        let counting = |t: &[u8]| {
            calls.set(calls.get() + 1);
            parse_f64(t)
        };
        assert_eq!(cache.get_or_parse(b"1.5", counting), Some(1.5));
        assert_eq!(cache.get_or_parse(b"2.5", counting), Some(2.5));
        for _ in 0..3 {
            assert_eq!(cache.get_or_parse(b"1.5", counting), Some(1.5));
            assert_eq!(cache.get_or_parse(b"2.5", counting), Some(2.5));
        }
        assert_eq!(calls.get(), 2);
        // A third text evicts the one inserted first.
        assert_eq!(cache.get_or_parse(b"3.5", counting), Some(3.5));
        assert_eq!(cache.get_or_parse(b"2.5", counting), Some(2.5));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn refusals_and_long_texts_are_not_cached() {
        let mut cache = NumberCache::new(64);
        let calls = std::cell::Cell::new(0);
        let counting = |t: &[u8]| {
            calls.set(calls.get() + 1);
            parse_f64(t)
        };
        assert_eq!(cache.get_or_parse(b"abc", counting), None);
        assert_eq!(cache.get_or_parse(b"abc", counting), None);
        let long = "0.12345678901234567890123456789";
        for _ in 0..2 {
            assert_eq!(cache.get_or_parse(long.as_bytes(), counting), long.parse().ok());
        }
        assert_eq!(calls.get(), 4);
        assert_eq!(cache.get_or_parse(b"2.5", counting), Some(2.5));
        assert_eq!(cache.get_or_parse(b"2.5", counting), Some(2.5));
        assert_eq!(calls.get(), 5);
    }
}
