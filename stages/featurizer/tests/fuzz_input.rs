//! Property tests over the serving hooks: whatever the body, `input_fn` →
//! `predict_fn` → `output_fn` never panics, fails only with a client error
//! (4xx) whose message is bounded and escaped, and a JSON answer parses with
//! every feature a number (only a label, copied as Python copies it, may be
//! `NaN` or `Infinity`, as `json.dumps` writes them).
//!
//! proptest's default 256 cases per property take a few seconds;
//! `PROPTEST_CASES=5000` searches longer.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use featurizer::{Config, Featurizer, Fitter};
use modelstage_sdk::{Context, ErrorKind, Stage, StageError};
use proptest::prelude::*;

const MAX_MESSAGE: usize = 1024;
/// Seven numeric columns and the three categories of `sex`.
const FEATURES: usize = 10;
const ACCEPTS: [&str; 3] = ["application/json", "application/jsonlines", "text/csv"];

const COLUMNS: &str = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight";
const TRAIN: &str = "\
M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9
I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7
";

fn featurizer() -> &'static Featurizer {
    static F: OnceLock<Featurizer> = OnceLock::new();
    F.get_or_init(|| {
        let hp = BTreeMap::from([
            ("columns".to_string(), COLUMNS.to_string()),
            ("categorical".to_string(), "sex".to_string()),
            ("label".to_string(), "rings".to_string()),
        ]);
        let mut fitter = Fitter::new(Config::from_hyperparameters(&hp).unwrap());
        fitter.read(TRAIN.as_bytes(), "train.csv").unwrap();
        Featurizer::from_model(fitter.finish().unwrap())
    })
}

fn run(body: &[u8], accept: &str) -> Result<Vec<u8>, StageError> {
    let ctx = Context {
        request_id: "fuzz",
        content_type: "text/csv",
        accept,
        custom_attributes: None,
        target_model: None,
    };
    let f = featurizer();
    let batch = f.input_fn(body, &ctx)?;
    let features = f.predict_fn(batch, &ctx)?;
    Ok(f.output_fn(features, &ctx)?.body)
}

fn check(body: &[u8]) {
    for accept in ACCEPTS {
        match run(body, accept) {
            Err(e) => {
                assert_eq!(
                    e.kind,
                    ErrorKind::BadRequest,
                    "{:?}: {}",
                    String::from_utf8_lossy(body),
                    e.message
                );
                assert!(
                    e.message.len() <= MAX_MESSAGE && !e.message.contains(['\n', '\r']),
                    "{:?}",
                    e.message
                );
            }
            Ok(answer) if accept != "text/csv" => {
                // A label is copied as Python copies it, so a missing or
                // infinite label is written as json.dumps writes it (`NaN`,
                // `Infinity`), which Python's json.loads reads; serde_json
                // does not, so those words become null before parsing. The
                // features themselves must all be numbers.
                let text = String::from_utf8(answer).unwrap().replace("-Infinity", "null");
                let text = text.replace("Infinity", "null").replace("NaN", "null");
                for doc in text.lines() {
                    let v: serde_json::Value =
                        serde_json::from_str(doc).unwrap_or_else(|e| panic!("not JSON ({e}): {doc}"));
                    let rows = match v.get("instances") {
                        Some(list) => list.as_array().unwrap().clone(),
                        None => vec![v.clone()],
                    };
                    for row in rows {
                        let values = row["features"].as_array().unwrap();
                        let labelled = values.len() == FEATURES + 1;
                        assert!(
                            values
                                .iter()
                                .skip(usize::from(labelled))
                                .all(serde_json::Value::is_number),
                            "{doc}"
                        );
                    }
                }
            }
            Ok(_) => {}
        }
    }
}

/// A CSV line of abalone fields, each drawn from values that matter: good
/// numbers, huge ones, missing markers, categories known and unknown,
/// quotes, separators and line breaks.
fn line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        4 => (-2.0f64..2.0).prop_map(|x| x.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:e}")),
        1 => prop::sample::select(vec!["", "NA", "nan", "inf", "1e308", "-1e308", "M", "F", "I", "X", " ", "\"", "\"a,b\"", "\r", "\t", "é"])
            .prop_map(str::to_string),
    ];
    prop::collection::vec(field, 7..11).prop_map(|fields| fields.join(","))
}

proptest! {
    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&body);
    }

    #[test]
    fn abalone_like_bodies(lines in prop::collection::vec(line(), 1..4), crlf in any::<bool>()) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        check(body.as_bytes());
    }
}
