//! The stage through its hooks: training from a SageMaker environment,
//! loading, content negotiation, output formats and the 400 answers where
//! scikit-learn raises (the README's rules).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use featurizer::Featurizer;
use modelstage_sdk::{Context, ErrorKind, Model, Response, Stage, StageError, Train, TrainingEnv};

const COLUMNS: &str = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight";

/// Ten abalone records: medians and categories F, I, M.
const TRAIN: &str = "\
M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15
M,0.35,0.265,0.09,0.2255,0.0995,0.0485,0.07,7
F,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21,9
M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10
I,0.33,0.255,0.08,0.205,0.0895,0.0395,0.055,7
I,0.425,0.3,0.095,0.3515,0.141,0.0775,0.12,8
F,0.53,0.415,0.15,0.7775,0.237,0.1415,0.33,20
F,0.545,0.425,0.125,0.768,0.294,0.1495,0.26,16
M,0.475,0.37,0.125,0.5095,0.2165,0.1125,0.165,9
F,0.55,0.44,0.15,0.8945,0.3145,0.151,0.32,19
";

const BLOG: &[u8] = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155\n";

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("featurizer-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn train(dir: &Path, hyperparameters: serde_json::Value) -> Result<(), StageError> {
    let model_dir = dir.join("model");
    let channel = dir.join("input/data/train");
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::create_dir_all(&channel).unwrap();
    // Two files: training reads every file of the channel.
    let (first, second) = TRAIN.split_at(TRAIN.find("I,0.33").unwrap());
    std::fs::write(channel.join("part-1.csv"), first).unwrap();
    std::fs::write(channel.join("part-2.csv"), second).unwrap();
    let env = serde_json::json!({
        "model_dir": model_dir,
        "channel_input_dirs": {"train": channel},
        "hyperparameters": hyperparameters,
    });
    let env = TrainingEnv::from_json(&env.to_string()).unwrap();
    Featurizer::train_fn(&env)
}

fn abalone_hyperparameters() -> serde_json::Value {
    serde_json::json!({"columns": COLUMNS, "categorical": "sex", "label": "rings"})
}

fn trained(hyperparameters: serde_json::Value) -> (TempDir, Featurizer) {
    let dir = TempDir::new();
    train(&dir.0, hyperparameters).unwrap();
    // Files that are not the model must be ignored.
    std::fs::write(dir.0.join("model/notes.txt"), "not a model").unwrap();
    let featurizer = Featurizer::model_fn(&dir.0.join("model")).unwrap();
    (dir, featurizer)
}

fn ctx<'a>(content_type: &'a str, accept: &'a str) -> Context<'a> {
    Context {
        request_id: "test",
        content_type,
        accept,
        custom_attributes: None,
        target_model: None,
    }
}

fn invoke(f: &Featurizer, body: &[u8], content_type: &str, accept: &str) -> Result<Response, StageError> {
    let ctx = ctx(content_type, accept);
    let input = f.input_fn(body, &ctx)?;
    let output = f.predict_fn(input, &ctx)?;
    f.output_fn(output, &ctx)
}

fn csv(f: &Featurizer, body: &[u8]) -> Result<String, StageError> {
    invoke(f, body, "text/csv", "text/csv").map(|r| String::from_utf8(r.body).unwrap())
}

fn bad_request(f: &Featurizer, body: &[u8]) -> StageError {
    let e = csv(f, body).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest, "{}", e.message);
    e
}

/// The expected features of BLOG on the ten training records, by hand:
/// each numeric value minus the column mean over the standard deviation,
/// then sex one-hot over F, I, M.
fn blog_features() -> Vec<f64> {
    let rows: Vec<Vec<f64>> = TRAIN
        .lines()
        .map(|l| l.split(',').skip(1).take(7).map(|v| v.parse().unwrap()).collect())
        .collect();
    let request = [0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155];
    let mut out = Vec::new();
    for (c, x) in request.iter().enumerate() {
        let n = rows.len() as f64;
        let mean = rows.iter().map(|r| r[c]).sum::<f64>() / n;
        let var = rows.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n;
        out.push((x - mean) / var.sqrt());
    }
    out.extend([0.0, 0.0, 1.0]);
    out
}

fn assert_close(ours: &[f64], expected: &[f64]) {
    assert_eq!(ours.len(), expected.len());
    for (a, b) in ours.iter().zip(expected) {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{ours:?} vs {expected:?}"
        );
    }
}

#[test]
fn trains_from_the_environment_and_serves_the_blog_request() {
    let (dir, f) = trained(abalone_hyperparameters());
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("model/featurizer.json")).unwrap()).unwrap();
    assert_eq!(model["rows"], 10);
    assert_eq!(
        model["categorical"][0]["categories"],
        serde_json::json!(["F", "I", "M"])
    );
    // Median of an even count: sorted lengths 0.33 0.35 0.425 0.44 0.455 | 0.475 ..., so (0.455 + 0.475) / 2.
    assert_eq!(model["numeric"][0]["fill"], (0.455 + 0.475) / 2.0);

    let out = csv(&f, BLOG).unwrap();
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    let values: Vec<f64> = out.trim_end().split(',').map(|v| v.parse().unwrap()).collect();
    assert_close(&values, &blog_features());
}

#[test]
fn label_goes_first_and_prints_as_a_float() {
    let (_dir, f) = trained(abalone_hyperparameters());
    let out = csv(
        &f,
        b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,10\nF,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,\n",
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("10.0,"), "{out}");
    assert!(lines[1].starts_with("nan,"), "{out}");
    assert!(lines[1].ends_with(",1.0,0.0,0.0"), "{out}");
    assert_eq!(lines[0].split(',').count(), 11);
}

#[test]
fn json_and_jsonlines_outputs() {
    let (_dir, f) = trained(abalone_hyperparameters());
    let expected = blog_features();

    let r = invoke(&f, BLOG, "text/csv; charset=utf-8", "application/json").unwrap();
    assert_eq!(r.content_type, "application/json");
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.starts_with(r#"{"instances": [{"features": ["#), "{text}");
    assert!(text.contains(", 0.0, 0.0, 1.0]}]}"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_close(&floats(&json["instances"][0]["features"]), &expected);

    let two = [BLOG, BLOG].concat();
    let r = invoke(&f, &two, "text/csv", "application/jsonlines").unwrap();
    assert_eq!(r.content_type, "application/jsonlines");
    let text = String::from_utf8(r.body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_close(&floats(&json["features"]), &expected);
    }

    // A list with a quality value: the first supported type wins.
    let r = invoke(&f, BLOG, "text/csv", "application/x-npy, text/csv;q=0.5").unwrap();
    assert_eq!(r.content_type, "text/csv");
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn unsupported_media_types() {
    let (_dir, f) = trained(abalone_hyperparameters());
    let e = invoke(&f, BLOG, "application/json", "text/csv").unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedContentType);
    assert!(e.message.contains("text/csv"), "{}", e.message);
    let e = invoke(&f, BLOG, "text/csv", "application/x-npy").unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedAccept);
    assert!(e.message.contains("application/jsonlines"), "{}", e.message);
}

#[test]
fn bad_requests_name_the_line_and_column() {
    let (_dir, f) = trained(abalone_hyperparameters());
    let good = "M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n";

    let e = bad_request(&f, format!("{good}{good}M,0.44,0.365,0.125\n").as_bytes());
    assert_eq!(e.record, Some(2));
    assert!(
        e.message.contains("line 3 has 4 fields but line 1 has 8"),
        "{}",
        e.message
    );

    let e = bad_request(&f, b"M,0.44,0.365\n");
    assert_eq!(e.record, Some(0));
    assert!(
        e.message.contains("line 1 has 3 fields; expected 8"),
        "{}",
        e.message
    );
    assert!(e.message.contains("'rings'"), "{}", e.message);

    let e = bad_request(
        &f,
        format!("{good}M,0.44,abc,0.125,0.516,0.2155,0.114,0.155\n").as_bytes(),
    );
    assert_eq!(e.record, Some(1));
    assert!(
        e.message
            .contains("line 2, column 'diameter': 'abc' is not a number"),
        "{}",
        e.message
    );

    let e = bad_request(
        &f,
        format!("{good}M,0.44,0.365,inf,0.516,0.2155,0.114,0.155\n").as_bytes(),
    );
    assert!(
        e.message.contains("line 2, column 'height': 'inf' is infinite"),
        "{}",
        e.message
    );

    let e = bad_request(&f, format!("{COLUMNS}\n{good}").as_bytes());
    assert_eq!(e.record, Some(0));
    assert!(e.message.contains("line 1 looks like a header"), "{}", e.message);

    for empty in [&b""[..], b"\n\n", b"  \r\n"] {
        let e = bad_request(&f, empty);
        assert!(e.message.contains("body is empty"), "{}", e.message);
    }

    let e = bad_request(&f, b"M\t0.44\t0.365\t0.125\t0.516\t0.2155\t0.114\t0.155\n");
    assert!(e.message.contains("separated by commas"), "{}", e.message);

    let e = bad_request(
        &f,
        format!("{good}M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,ten\n").as_bytes(),
    );
    assert!(
        e.message.contains("line 2 has 9 fields but line 1 has 8"),
        "{}",
        e.message
    );
    let e = bad_request(&f, b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155,ten\n");
    assert!(
        e.message
            .contains("line 1, column 'rings' (the label): 'ten' is not a number"),
        "{}",
        e.message
    );

    // Blank lines count for line numbers but not for record indices.
    let e = bad_request(
        &f,
        format!("\n{good}\nM,x,0.365,0.125,0.516,0.2155,0.114,0.155\n").as_bytes(),
    );
    assert_eq!(e.record, Some(1));
    assert!(e.message.contains("line 4, column 'length'"), "{}", e.message);

    // The quoted path reports lines the same way.
    let e = bad_request(
        &f,
        format!("\"M\",0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n{good}M,\"x\",1,1,1,1,1,1\n").as_bytes(),
    );
    assert!(e.message.contains("line 3, column 'length'"), "{}", e.message);
}

#[test]
fn lone_carriage_returns_end_lines() {
    let (_dir, f) = trained(abalone_hyperparameters());
    let unix = csv(&f, [BLOG, BLOG].concat().as_slice()).unwrap();
    let mac = csv(&f, [BLOG, BLOG].concat().replace_newlines_with_cr().as_slice()).unwrap();
    assert_eq!(unix, mac);
}

trait CrLines {
    fn replace_newlines_with_cr(self) -> Vec<u8>;
}

impl CrLines for Vec<u8> {
    fn replace_newlines_with_cr(self) -> Vec<u8> {
        self.into_iter()
            .map(|b| if b == b'\n' { b'\r' } else { b })
            .collect()
    }
}

#[test]
fn unknown_categories_can_be_refused() {
    let mut hp = abalone_hyperparameters();
    hp["handle_unknown"] = "error".into();
    let (_dir, f) = trained(hp);
    assert!(csv(&f, BLOG).is_ok());
    let e = bad_request(
        &f,
        b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\nX,0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n",
    );
    assert_eq!(e.record, Some(1));
    assert!(
        e.message
            .contains("line 2, column 'sex': unknown category 'X'; the model knows F, I, M"),
        "{}",
        e.message
    );
    // No missing value in training: a missing category is unknown too.
    let e = bad_request(&f, b",0.44,0.365,0.125,0.516,0.2155,0.114,0.155\n");
    assert!(e.message.contains("a missing value ('missing')"), "{}", e.message);
}

#[test]
fn scaling_off_gives_the_imputed_values() {
    let mut hp = abalone_hyperparameters();
    hp["scale"] = serde_json::Value::Bool(false);
    let (_dir, f) = trained(hp);
    // The length median (0.455 + 0.475) / 2 prints as Python prints it.
    let out = csv(&f, b"I,,0.365,0.125,0.516,0.2155,0.114,1e-05\n").unwrap();
    assert_eq!(
        out,
        "0.46499999999999997,0.365,0.125,0.516,0.2155,0.114,1e-05,0.0,1.0,0.0\n"
    );
}

#[test]
fn training_errors_name_what_to_fix() {
    let dir = TempDir::new();
    let e = train(
        &dir.0,
        serde_json::json!({"columns": COLUMNS, "label": "rings", "epochs": 10}),
    )
    .unwrap_err();
    assert!(
        e.message.contains("unknown hyperparameter(s) 'epochs'"),
        "{}",
        e.message
    );

    // Without 'categorical', sex must be a number: line 1 of part-1.csv fails.
    let e = train(&dir.0, serde_json::json!({"columns": COLUMNS, "label": "rings"})).unwrap_err();
    assert!(
        e.message
            .contains("part-1.csv, line 1, column 'sex': 'M' is not a number"),
        "{}",
        e.message
    );

    // Without 'label', the extra field is reported with the fix.
    let e = train(
        &dir.0,
        serde_json::json!({"columns": COLUMNS, "categorical": "sex"}),
    )
    .unwrap_err();
    assert!(e.message.contains("9 fields, expected 8"), "{}", e.message);
    assert!(
        e.message.contains("set the hyperparameter 'label'"),
        "{}",
        e.message
    );
}

#[test]
fn missing_model_file_is_reported() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("model.bin"), b"x").unwrap();
    let e = Featurizer::model_fn(&dir.0).err().unwrap();
    assert!(e.message.contains("featurizer.json"), "{}", e.message);
}

#[test]
fn finite_values_that_scale_past_the_largest_double_are_400() {
    let (_dir, f) = trained(abalone_hyperparameters());
    // length's scale is about 0.07: 1e308 / 0.07 is beyond f64.
    let body = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155\nM, 1e308, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155\n";
    for accept in ["application/json", "text/csv", "application/jsonlines"] {
        let e = invoke(&f, body, "text/csv", accept).unwrap_err();
        assert_eq!(
            (e.kind, e.record),
            (ErrorKind::BadRequest, Some(1)),
            "{}",
            e.message
        );
        assert!(e.message.contains("record 1, column 'length'"), "{}", e.message);
    }
}

#[test]
fn a_huge_bad_field_is_quoted_as_a_bounded_excerpt() {
    let (_dir, f) = trained(abalone_hyperparameters());
    // A quoted field holding a line break: the general CSV path.
    let mut body = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, \"".to_vec();
    body.extend(std::iter::repeat_n(b'z', 5 << 20));
    body.extend_from_slice(b"\r\nforged, 0.365\"\n");
    let e = bad_request(&f, &body);
    assert!(e.message.len() < 400, "{} bytes", e.message.len());
    assert!(e.message.contains(" bytes)' is not a number"), "{}", e.message);
    assert!(
        !e.message.contains('\n') && !e.message.contains('\r'),
        "{}",
        e.message
    );
}
