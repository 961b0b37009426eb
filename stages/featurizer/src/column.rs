//! One numeric training column kept in file order, dictionary-encoded:
//! each value is a 2-byte code into a table of the column's distinct values
//! while there are at most 65,535 of them (real measurements repeat a lot),
//! a plain f64 otherwise. File order is kept because scikit-learn's sums run
//! in that order, and matching them bit for bit means adding the same way.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::stats::BitsHasher;

/// The code of a missing value.
const MISSING: u16 = u16::MAX;

#[derive(Debug, Clone)]
enum Codes {
    Coded(Vec<u16>),
    /// NaN marks a missing value (real NaNs never reach the store).
    Plain(Vec<f64>),
}

#[derive(Debug, Clone)]
pub struct ColumnStore {
    table: Vec<f64>,
    index: HashMap<u64, u16, BuildHasherDefault<BitsHasher>>,
    codes: Codes,
}

impl Default for ColumnStore {
    fn default() -> Self {
        ColumnStore {
            table: Vec::new(),
            index: HashMap::default(),
            codes: Codes::Coded(Vec::new()),
        }
    }
}

impl ColumnStore {
    pub fn len(&self) -> usize {
        match &self.codes {
            Codes::Coded(c) => c.len(),
            Codes::Plain(v) => v.len(),
        }
    }

    /// Appends a value (None: missing).
    #[inline]
    pub fn push(&mut self, value: Option<f64>) {
        match &mut self.codes {
            Codes::Plain(values) => values.push(value.unwrap_or(f64::NAN)),
            Codes::Coded(codes) => match value {
                None => codes.push(MISSING),
                Some(x) => {
                    let next = self.table.len();
                    if let Some(&code) = self.index.get(&x.to_bits()) {
                        codes.push(code);
                    } else if next < usize::from(MISSING) {
                        self.index.insert(x.to_bits(), next as u16);
                        self.table.push(x);
                        codes.push(next as u16);
                    } else {
                        self.spill_to_plain();
                        self.push(value);
                    }
                }
            },
        }
    }

    fn spill_to_plain(&mut self) {
        if let Codes::Coded(codes) = &self.codes {
            let values = codes
                .iter()
                .map(|&c| {
                    if c == MISSING {
                        f64::NAN
                    } else {
                        self.table[usize::from(c)]
                    }
                })
                .collect();
            self.codes = Codes::Plain(values);
            self.table = Vec::new();
            self.index = HashMap::default();
        }
    }

    /// The value at `i`, or `fill` when it is missing.
    #[inline]
    pub fn get_or(&self, i: usize, fill: f64) -> f64 {
        match &self.codes {
            Codes::Coded(codes) => {
                let c = codes[i];
                if c == MISSING {
                    fill
                } else {
                    self.table[usize::from(c)]
                }
            }
            Codes::Plain(values) => {
                let v = values[i];
                if v.is_nan() {
                    fill
                } else {
                    v
                }
            }
        }
    }

    /// The distinct observed values in ascending order with their counts
    /// (-0.0 and 0.0 counted as one, as numpy compares them).
    pub fn sorted_counts(&self) -> Vec<(f64, u64)> {
        let mut pairs: Vec<(f64, u64)> = match &self.codes {
            Codes::Coded(codes) => {
                let mut counts = vec![0u64; self.table.len()];
                for &c in codes.iter().filter(|&&c| c != MISSING) {
                    counts[usize::from(c)] += 1;
                }
                self.table.iter().copied().zip(counts).collect()
            }
            Codes::Plain(values) => values.iter().filter(|v| !v.is_nan()).map(|&v| (v, 1)).collect(),
        };
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, u64)> = Vec::with_capacity(pairs.len());
        for (v, c) in pairs {
            match merged.last_mut() {
                Some((last, count)) if *last == v => *count += c,
                _ => merged.push((v, c)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_missing_values() {
        let mut s = ColumnStore::default();
        for v in [Some(2.0), None, Some(1.0), Some(2.0)] {
            s.push(v);
        }
        assert_eq!(s.len(), 4);
        let got: Vec<f64> = (0..4).map(|i| s.get_or(i, 9.0)).collect();
        assert_eq!(got, [2.0, 9.0, 1.0, 2.0]);
        assert_eq!(s.sorted_counts(), [(1.0, 1), (2.0, 2)]);
    }

    #[test]
    fn many_distinct_values_fall_back_to_plain_storage() {
        let mut s = ColumnStore::default();
        let n = 70_000;
        for i in 0..n {
            s.push(if i == 5 { None } else { Some(i as f64) });
        }
        assert!(matches!(s.codes, Codes::Plain(_)));
        assert_eq!(s.len(), n);
        assert_eq!(s.get_or(5, -1.0), -1.0);
        assert_eq!(s.get_or(69_999, -1.0), 69_999.0);
        assert_eq!(s.sorted_counts().len(), n - 1);
    }

    #[test]
    fn signed_zeros_count_as_one_value() {
        let mut s = ColumnStore::default();
        for v in [-0.0, 0.0, 0.0] {
            s.push(Some(v));
        }
        let counts = s.sorted_counts();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].1, 3);
    }
}
