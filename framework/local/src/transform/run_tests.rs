//! Tests of the transform driver against a fake endpoint: ordering under
//! concurrency, payload splitting, per-file failure, Gzip, DataProcessing.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use super::*;
use crate::transform::job;

/// Answers each request with its body upper-cased (so the output proves the
/// body went through the model), and fails any body containing "FAIL".
#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<Vec<u8>>>,
    offered: Option<ExecutionParameters>,
    /// Sleep longer for earlier requests so answers arrive out of order.
    stagger: bool,
}

impl Invoker for Fake {
    fn invoke(
        &self,
        body: Vec<u8>,
        _content_type: &str,
        _accept: Option<&str>,
    ) -> Result<Reply, InvocationError> {
        let index = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(body.clone());
            requests.len()
        };
        if self.stagger {
            thread::sleep(Duration::from_millis(40u64.saturating_sub(index as u64 * 5)));
        }
        if body.windows(4).any(|w| w == b"FAIL") {
            return Err(InvocationError::Status {
                status: 400,
                body: "{\"error\": \"container-2 refused the row\"}".into(),
            });
        }
        Ok(Reply {
            content_type: None,
            body: body.to_ascii_uppercase(),
        })
    }

    fn execution_parameters(&self) -> Option<ExecutionParameters> {
        self.offered
    }
}

fn write(dir: &Path, relative: &str, bytes: &[u8]) {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn job(dir: &Path, extra: &str) -> TransformJob {
    let json = format!(
        r#"{{"TransformInput": {{"DataSource": {{"S3DataSource": {{"S3Uri": "file://{input}"}}}},
             "ContentType": "text/csv", "SplitType": "Line"}},
            "TransformOutput": {{"S3OutputPath": "file://{output}", "AssembleWith": "Line"}}{extra}}}"#,
        input = dir.join("in").display(),
        output = dir.join("out").display(),
    );
    TransformJob::from_request(&json, "job.json").unwrap()
}

fn run(job: &TransformJob, fake: &Fake) -> JobReport {
    run_job(job, fake, &mut Progress::hidden(), &Stop::never()).unwrap()
}

fn read(dir: &Path, relative: &str) -> String {
    fs::read_to_string(dir.join("out").join(relative)).unwrap()
}

#[test]
fn single_record_line_output_mirrors_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/a.csv", b"a,1\nb,2\n");
    write(dir.path(), "in/sub/c.csv", b"c,3");
    let fake = Fake::default();
    let report = run(&job(dir.path(), r#", "BatchStrategy": "SingleRecord""#), &fake);
    assert_eq!((report.succeeded, report.records), (2, 3));
    assert_eq!(read(dir.path(), "a.csv.out"), "A,1\nB,2\n");
    // The last line had no newline: AssembleWith=Line adds it.
    assert_eq!(read(dir.path(), "sub/c.csv.out"), "C,3\n");
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![b"a,1\n".to_vec(), b"b,2\n".to_vec(), b"c,3".to_vec()]
    );
}

#[test]
fn multi_record_packs_whole_records_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Five records of 300,000 bytes: three fit in 1 MiB (900,000), four do not.
    let line = format!("{}\n", "x".repeat(299_999));
    write(dir.path(), "in/big.csv", line.repeat(5).as_bytes());
    let fake = Fake::default();
    let report = run(
        &job(
            dir.path(),
            r#", "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 1"#,
        ),
        &fake,
    );
    assert_eq!(report.failures, vec![]);
    let sizes: Vec<usize> = fake.requests.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![900_000, 600_000]);
    assert_eq!(read(dir.path(), "big.csv.out"), line.to_uppercase().repeat(5));
}

#[test]
fn answers_are_written_in_input_order_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (1..=12).map(|i| format!("r{i}\n")).collect();
    write(dir.path(), "in/a.csv", input.as_bytes());
    let fake = Fake {
        stagger: true,
        ..Fake::default()
    };
    let extra = r#", "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 4"#;
    let report = run(&job(dir.path(), extra), &fake);
    assert_eq!(report.settings.max_concurrent_transforms, 4);
    assert_eq!(read(dir.path(), "a.csv.out"), input.to_uppercase());
}

#[test]
fn a_failing_record_fails_only_its_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/a.csv", b"ok\n");
    write(dir.path(), "in/b.csv", b"ok\nok\nFAIL\nok\n");
    write(dir.path(), "in/c.csv", b"fine\n");
    write(dir.path(), "out/b.csv.out", b"stale output of an earlier run");
    let fake = Fake::default();
    let report = run(
        &job(
            dir.path(),
            r#", "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 2"#,
        ),
        &fake,
    );
    assert_eq!(report.succeeded, 2);
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!(failure.file, Path::new("b.csv"));
    assert!(
        failure.message.starts_with("line 3: ClientError: 400"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("container-2"), "{}", failure.message);
    assert!(!dir.path().join("out/b.csv.out").exists());
    assert_eq!(read(dir.path(), "c.csv.out"), "FINE\n");
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "only a.csv.out and c.csv.out: {leftovers:?}");
}

#[test]
fn a_record_over_the_limit_fails_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = b"small\n".to_vec();
    input.extend(vec![b'y'; 1024 * 1024 + 1]);
    input.extend(b"\nsmall\n");
    write(dir.path(), "in/a.csv", &input);
    let report = run(&job(dir.path(), r#", "MaxPayloadInMB": 1"#), &Fake::default());
    assert_eq!(report.failures.len(), 1);
    let message = &report.failures[0].message;
    assert!(
        message.starts_with("line 2: the record is larger than MaxPayloadInMB"),
        "{message}"
    );
    assert!(!dir.path().join("out/a.csv.out").exists());
}

#[test]
fn split_none_sends_the_whole_file_or_fails_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/doc.json", b"{\"a\": [1,\n2]}\n");
    let fake = Fake::default();
    let mut j = job(dir.path(), "");
    j.transform_input.split_type = Some(job::SplitType::None);
    j.transform_output.assemble_with = Some(job::AssembleWith::None);
    run(&j, &fake);
    assert_eq!(fake.requests.lock().unwrap().len(), 1);
    assert_eq!(read(dir.path(), "doc.json.out"), "{\"A\": [1,\n2]}\n");

    write(dir.path(), "in/doc.json", &vec![b' '; 1024 * 1024 + 1]);
    j.max_payload_in_mb = Some(1);
    let report = run(&j, &Fake::default());
    assert!(
        report.failures[0].message.contains("SplitType is None"),
        "{:?}",
        report.failures
    );
}

#[test]
fn gzip_input_is_decompressed_before_splitting() {
    let dir = tempfile::tempdir().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"a\nb\n").unwrap();
    write(dir.path(), "in/a.csv.gz", &encoder.finish().unwrap());
    let fake = Fake::default();
    let mut j = job(dir.path(), r#", "BatchStrategy": "SingleRecord""#);
    j.transform_input.compression_type = Some(job::CompressionType::Gzip);
    run(&j, &fake);
    assert_eq!(read(dir.path(), "a.csv.gz.out"), "A\nB\n");
    assert_eq!(fake.requests.lock().unwrap().len(), 2);
}

#[test]
fn unset_values_come_from_execution_parameters() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/a.csv", b"a\nb\nc\n");
    let offered = ExecutionParameters {
        max_concurrent_transforms: Some(3),
        batch_strategy: Some(job::BatchStrategy::SingleRecord),
        max_payload_in_mb: Some(2),
    };
    let fake = Fake {
        offered: Some(offered),
        ..Fake::default()
    };
    let report = run(&job(dir.path(), ""), &fake);
    assert_eq!(
        report.settings,
        Settings {
            batch_strategy: job::BatchStrategy::SingleRecord,
            max_payload_in_mb: 2,
            max_concurrent_transforms: 3
        }
    );
    assert_eq!(fake.requests.lock().unwrap().len(), 3);
    // The request wins over the container; with nothing offered, the defaults apply.
    let report = run(&job(dir.path(), r#", "BatchStrategy": "MultiRecord""#), &fake);
    assert_eq!(report.settings.batch_strategy, job::BatchStrategy::MultiRecord);
    let report = run(&job(dir.path(), ""), &Fake::default());
    assert_eq!(
        report.settings,
        Settings {
            batch_strategy: job::BatchStrategy::MultiRecord,
            max_payload_in_mb: 6,
            max_concurrent_transforms: 1
        }
    );
}

#[test]
fn csv_join_keeps_the_id_column_the_model_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/a.csv", b"id1,x,y\nid2,z,w\n");
    let fake = Fake::default();
    let extra = r#", "BatchStrategy": "MultiRecord",
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}"#;
    let mut j = job(dir.path(), extra);
    j.transform_output.accept = Some("text/csv".into());
    let report = run(&j, &fake);
    assert_eq!(report.failures, vec![]);
    assert_eq!(
        fake.requests.lock().unwrap().clone(),
        vec![b"x,y\nz,w\n".to_vec()]
    );
    // Joined rows are id1,x,y,X,Y and id2,z,w,Z,W; the filter keeps the first and last column.
    assert_eq!(read(dir.path(), "a.csv.out"), "id1,Y\nid2,W\n");
}

/// Asks the job to stop, as Ctrl-C does, when it sends its `after`-th request.
struct StopsAfter {
    fake: Fake,
    stop: Stop,
    after: usize,
}

impl Invoker for StopsAfter {
    fn invoke(
        &self,
        body: Vec<u8>,
        content_type: &str,
        accept: Option<&str>,
    ) -> Result<Reply, InvocationError> {
        let reply = self.fake.invoke(body, content_type, accept);
        if self.fake.requests.lock().unwrap().len() >= self.after {
            self.stop.request(signal_hook::consts::SIGINT);
        }
        reply
    }

    fn execution_parameters(&self) -> Option<ExecutionParameters> {
        None
    }
}

#[test]
fn a_stopped_job_leaves_only_complete_outputs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in/a.csv", b"a,1\na,2\n");
    write(dir.path(), "in/b.csv", b"b,1\nb,2\nb,3\n");
    write(dir.path(), "in/c.csv", b"c,1\n");
    // What a job killed earlier left: its writer is not running any more.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    write(dir.path(), &format!("out/.c.csv.out.partial-{gone}"), b"c,");
    let invoker = StopsAfter {
        fake: Fake::default(),
        stop: Stop::never(),
        after: 3,
    };
    let job = job(dir.path(), r#", "BatchStrategy": "SingleRecord""#);
    let report = run_job(&job, &invoker, &mut Progress::hidden(), &invoker.stop).unwrap();
    assert_eq!(report.stopped_by, Some(signal_hook::consts::SIGINT));
    let mut left: Vec<String> = fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // b was cut short and c never started: neither has an output or a
    // temporary file; a has its whole output if it got to finish.
    assert!(left.is_empty() || left == ["a.csv.out"], "{left:?}");
    if !left.is_empty() {
        assert_eq!(read(dir.path(), "a.csv.out"), "A,1\nA,2\n");
    }
    assert!(invoker.fake.requests.lock().unwrap().len() < 6);
}
