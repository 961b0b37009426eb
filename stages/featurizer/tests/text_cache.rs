//! The cache of numeric fields by their text changes what a request costs,
//! never what it gets: answers on inputs chosen to trip a text cache (the
//! same text in columns with different statistics, texts one digit apart,
//! spellings of one number, fields past the cache's key length, more
//! distinct texts than the cache holds) equal answers computed here without
//! any cache, cold and warm, in any order.

use std::collections::BTreeMap;

use featurizer::{encode, Config, Featurizer, Fitter, Format};
use modelstage_sdk::python::float_repr;

/// Two numeric columns whose statistics differ by orders of magnitude, and
/// a categorical one, so one text in both numeric columns gives two answers.
fn featurizer() -> Featurizer {
    let hp: BTreeMap<String, String> = [("columns", "a,b,kind"), ("categorical", "kind")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let train = "0.1,100,x\n0.3,300,y\n0.2,250,x\n,1000,y\n";
    let mut fitter = Fitter::new(Config::from_hyperparameters(&hp).unwrap());
    fitter.read(train.as_bytes(), "train.csv").unwrap();
    Featurizer::from_model(fitter.finish().unwrap())
}

/// The CSV answer for `records`, computed from the model's statistics with
/// the standard library's parser and Python's repr: no cache anywhere.
fn expected(featurizer: &Featurizer, records: &[[&str; 3]]) -> String {
    let model = featurizer.model();
    let categories = &model.categorical[0].categories;
    let mut out = String::new();
    for record in records {
        let mut values: Vec<String> = model
            .numeric
            .iter()
            .map(|column| {
                let text = record[column.index];
                let x = if text.is_empty() {
                    column.fill
                } else {
                    text.trim().parse::<f64>().unwrap()
                };
                float_repr((x - column.mean) / column.scale)
            })
            .collect();
        values.extend(
            categories
                .iter()
                .map(|c| if c == record[2] { "1.0" } else { "0.0" }.to_string()),
        );
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

fn answer(featurizer: &Featurizer, records: &[[&str; 3]]) -> String {
    let body: String = records.iter().map(|r| format!("{}\n", r.join(","))).collect();
    let batch = featurizer.parse(body.as_bytes()).unwrap();
    let features = featurizer.transform(&batch).unwrap();
    String::from_utf8(encode(&features, Format::Csv)).unwrap()
}

/// Checks `records` on a thread of its own (a cold cache), twice (warm),
/// reversed, and one record per request.
fn check(records: &[[&str; 3]]) {
    let featurizer = featurizer();
    std::thread::scope(|s| {
        s.spawn(|| {
            let want = expected(&featurizer, records);
            assert_eq!(answer(&featurizer, records), want, "cold");
            assert_eq!(answer(&featurizer, records), want, "warm");
            let reversed: Vec<[&str; 3]> = records.iter().rev().copied().collect();
            assert_eq!(
                answer(&featurizer, &reversed),
                expected(&featurizer, &reversed),
                "reversed"
            );
            for record in records {
                let one = std::slice::from_ref(record);
                assert_eq!(answer(&featurizer, one), expected(&featurizer, one), "{record:?}");
            }
        });
    });
}

#[test]
fn one_text_in_two_columns_gives_each_column_its_answer() {
    check(&[
        ["0.25", "0.25", "x"],
        ["250", "250", "y"],
        ["0.25", "250", "x"],
        ["250", "0.25", "y"],
        ["", "", "x"],
        ["0.25", "", "y"],
    ]);
}

#[test]
fn texts_one_digit_apart_and_spellings_of_one_number_stay_apart() {
    check(&[
        ["0.1234567890123456", "0.1234567890123457", "x"],
        ["0.1234567890123457", "0.1234567890123456", "y"],
        // Same first and last eight bytes, one byte apart in the middle.
        ["1.23456789012345678", "1.23456789112345678", "x"],
        ["1e-05", "1E-05", "y"],
        ["0.00001", " 1e-05", "x"],
        ["1e-05 ", "0.000010", "y"],
        ["-0", "0", "x"],
        ["0.0", "-0.0", "y"],
        ["9007199254740993", "9007199254740992", "x"],
        ["2.2250738585072011e-308", "2.2250738585072014e-308", "y"],
    ]);
}

#[test]
fn fields_past_the_key_length_are_parsed_every_time() {
    // 24 bytes is the longest key; these share their first 24 bytes.
    check(&[
        ["0.1234567890123456789012345", "0.1234567890123456789012346", "x"],
        ["0.1234567890123456789012346", "0.1234567890123456789012345", "y"],
        ["0.12345678901234567890123", "0.123456789012345678901234", "x"],
        [
            "00000000000000000000000000000.5",
            "1.000000000000000000000000000001",
            "y",
        ],
    ]);
}

#[test]
fn more_distinct_texts_than_the_cache_holds() {
    // 40,000 distinct texts per column against 16,384 slots: evictions
    // throughout, and both columns share every text.
    let texts: Vec<String> = (0..40_000).map(|i| format!("{}.{:03}", i % 997, i)).collect();
    let records: Vec<[&str; 3]> = texts
        .iter()
        .zip(texts.iter().rev())
        .enumerate()
        .map(|(i, (a, b))| [a.as_str(), b.as_str(), if i % 2 == 0 { "x" } else { "y" }])
        .collect();
    let featurizer = featurizer();
    std::thread::scope(|s| {
        s.spawn(|| {
            let want = expected(&featurizer, &records);
            assert_eq!(answer(&featurizer, &records), want);
            assert_eq!(answer(&featurizer, &records), want);
        });
    });
}

#[test]
fn a_refused_text_is_refused_every_time() {
    let featurizer = featurizer();
    for _ in 0..2 {
        let e = featurizer.parse(b"0.5,2,x\n0.5,inf,y\n").unwrap_err().to_string();
        assert!(e.contains("'inf' is infinite"), "{e}");
        let e = featurizer.parse(b"0.5,abc,x\n").unwrap_err().to_string();
        assert!(e.contains("'abc' is not a number"), "{e}");
    }
}
