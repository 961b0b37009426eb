//! `python::float_repr` against CPython's `repr(float)`.
//!
//! `data/float_repr.txt` was written by `python_reference.py floats` (CPython
//! 3.11): hand-picked edge cases, every power of two and ten in range, and a
//! fixed-seed random sample. Regenerate it with that script; never edit it by
//! hand. The ignored test compares a larger random sample straight from
//! python3 when it is installed: `cargo test -p modelstage-sdk -- --ignored`.

use modelstage_sdk::python::{float_repr, to_json, write_float};

/// Parses the "<hex bits> <repr>" lines.
fn table(text: &str) -> Vec<(f64, &str)> {
    text.lines()
        .map(|line| {
            let (bits, repr) = line.split_once(' ').expect("line is '<bits> <repr>'");
            let bits = u64::from_str_radix(bits, 16).expect("16 hex digits");
            (f64::from_bits(bits), repr)
        })
        .collect()
}

fn compare(rows: &[(f64, &str)]) {
    let mut mismatches = Vec::new();
    for &(x, want) in rows {
        let got = float_repr(x);
        if got != want {
            mismatches.push(format!("{:016x}: python {want}, ours {got}", x.to_bits()));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        rows.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}

#[test]
fn matches_the_python_table() {
    let rows = table(include_str!("data/float_repr.txt"));
    assert!(rows.len() > 6000, "the table has {} rows", rows.len());
    compare(&rows);
}

#[test]
fn json_numbers_use_the_same_text() {
    // json.dumps(x) == repr(x) for every finite float.
    for (x, want) in table(include_str!("data/float_repr.txt")).into_iter().step_by(7) {
        let value = serde_json::Value::from(x);
        assert_eq!(to_json(&value), want, "{:016x}", x.to_bits());
    }
}

/// xorshift64*: a reproducible bit-pattern source without a dependency.
fn bit_patterns(seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed;
    std::iter::repeat_with(move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[test]
fn random_values_round_trip_in_python_layout() {
    let mut out = Vec::new();
    for bits in bit_patterns(0x9E37_79B9_7F4A_7C15).take(100_000) {
        let x = f64::from_bits(bits);
        out.clear();
        write_float(&mut out, x);
        let text = std::str::from_utf8(&out).expect("ASCII");
        if x.is_nan() {
            assert_eq!(text, "nan");
            continue;
        }
        let back: f64 = text.parse().unwrap_or_else(|_| panic!("{text} does not parse"));
        assert_eq!(back.to_bits(), bits, "{text} reads back differently");
        // Python's layout: scientific iff the exponent is < -4 or >= 16, with
        // a signed exponent of at least two digits; positional always has a '.'.
        let exponent = x.abs().log10().floor() as i32;
        if let Some((_, exp)) = text.split_once('e') {
            assert!(exp.starts_with('+') || exp.starts_with('-'), "{text}");
            assert!(exp.len() >= 3, "{text}");
            // log10 can land one off right at a power of ten; allow it.
            assert!(!(-3..=14).contains(&exponent), "{text} should be positional");
        } else {
            assert!(text.contains('.'), "{text}");
            assert!((-5..=16).contains(&exponent), "{text} should be scientific");
        }
    }
}

#[test]
#[ignore = "needs python3; compares 300k more values"]
fn float_repr_matches_python_at_scale() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_reference.py");
    for seed in ["1", "2", "3"] {
        let output = std::process::Command::new("python3")
            .args([script, "random", "100000", seed])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("ASCII");
        compare(&table(&text));
    }
}
