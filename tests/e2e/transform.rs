//! `modelstage transform` and `modelstage invoke` against a real echo
//! endpoint. Echo answers each request with its body, so every expected
//! output below is the input reassembled by hand under the job's rules:
//! AssembleWith=Line ends each answer with one newline (adding it only when
//! missing), AssembleWith=None concatenates, a join appends the inference to
//! the original record.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn echo() -> (Server, tempfile::TempDir) {
    let model = tempdir();
    (serve(&stage_lib("echo"), model.path(), &[]), model)
}

fn echo_with(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let model = tempdir();
    (serve(&stage_lib("echo"), model.path(), env), model)
}

fn write(dir: &Path, relative: &str, bytes: &[u8]) {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// `modelstage transform` of `<dir>/in` into `<dir>/out` against `server`.
fn transform_command(server: &Server, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .arg("transform")
        .arg("--endpoint")
        .arg(&server.url)
        .arg("--input")
        .arg(dir.join("in"))
        .arg("--output")
        .arg(dir.join("out"))
        .arg("--quiet")
        .args(args);
    command
}

fn transform(server: &Server, dir: &Path, args: &[&str]) -> Output {
    transform_command(server, dir, args)
        .output()
        .expect("run modelstage transform")
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "transform failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(dir: &Path, relative: &str) -> Vec<u8> {
    fs::read(dir.join("out").join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn line_split_single_record_assembles_one_line_per_record() {
    let (server, _model) = echo();
    let dir = tempdir();
    write(dir.path(), "in/a.csv", b"M,0.44,0.365\nF,0.5,0.4\n");
    write(dir.path(), "in/part/b.csv", b"I,0.1,0.2"); // no final newline
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "text/csv",
            "--accept",
            "text/csv",
            "--split-type",
            "Line",
            "--strategy",
            "SingleRecord",
            "--assemble-with",
            "Line",
            "--max-concurrent",
            "2",
        ],
    );
    ok(&out);
    assert_eq!(read(dir.path(), "a.csv.out"), b"M,0.44,0.365\nF,0.5,0.4\n");
    assert_eq!(read(dir.path(), "part/b.csv.out"), b"I,0.1,0.2\n");
}

#[test]
fn multi_record_with_assemble_none_concatenates_answers() {
    let (server, _model) = echo();
    let dir = tempdir();
    let input: String = (1..=500).map(|i| format!("{i},{}\n", i * 2)).collect();
    write(dir.path(), "in/rows.csv", input.as_bytes());
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "text/csv",
            "--split-type",
            "Line",
            "--strategy",
            "MultiRecord",
            "--assemble-with",
            "None",
            "--max-concurrent",
            "4",
        ],
    );
    ok(&out);
    assert_eq!(read(dir.path(), "rows.csv.out"), input.as_bytes());
}

#[test]
fn split_none_sends_each_file_whole() {
    let (server, _model) = echo();
    let dir = tempdir();
    let doc = b"{\"instances\": [\n  {\"features\": [1, 2]}\n]}";
    write(dir.path(), "in/doc.json", doc);
    let out = transform(&server, dir.path(), &["--content-type", "application/json"]);
    ok(&out);
    assert_eq!(read(dir.path(), "doc.json.out"), doc);
}

/// One MXNet RecordIO record: magic, length, payload padded to 4 bytes.
fn recordio(payload: &[u8]) -> Vec<u8> {
    let mut out = 0xCED7_230Au32.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (4 - payload.len() % 4) % 4, 0);
    out
}

#[test]
fn recordio_records_travel_with_their_framing() {
    let (server, _model) = echo();
    let dir = tempdir();
    let input = [recordio(b"first"), recordio(b"2nd!"), recordio(b"x")].concat();
    write(dir.path(), "in/data.rec", &input);
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "application/x-recordio-protobuf",
            "--split-type",
            "RecordIO",
            "--strategy",
            "SingleRecord",
        ],
    );
    ok(&out);
    assert_eq!(read(dir.path(), "data.rec.out"), input);
}

#[test]
fn gzip_input_is_decompressed() {
    let (server, _model) = echo();
    let dir = tempdir();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"a,1\nb,2\n").unwrap();
    write(dir.path(), "in/a.csv.gz", &gz.finish().unwrap());
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "text/csv",
            "--split-type",
            "Line",
            "--compression-type",
            "Gzip",
            "--assemble-with",
            "Line",
        ],
    );
    ok(&out);
    assert_eq!(read(dir.path(), "a.csv.gz.out"), b"a,1\nb,2\n");
}

#[test]
fn a_request_document_with_a_csv_join() {
    let (server, _model) = echo();
    let dir = tempdir();
    write(dir.path(), "in/a.csv", b"id1,1.5,2\nid2,3,4\n");
    let request = format!(
        r#"{{
            "TransformJobName": "join", "ModelName": "echo", "BatchStrategy": "MultiRecord",
            "TransformInput": {{"DataSource": {{"S3DataSource": {{"S3DataType": "S3Prefix",
                "S3Uri": "file://{input}"}}}}, "ContentType": "text/csv", "SplitType": "Line"}},
            "TransformOutput": {{"S3OutputPath": "file://{output}", "Accept": "text/csv",
                "AssembleWith": "Line"}},
            "TransformResources": {{"InstanceType": "ml.m5.large", "InstanceCount": 1}},
            "DataProcessing": {{"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}}
        }}"#,
        input = dir.path().join("in").display(),
        output = dir.path().join("out").display()
    );
    write(dir.path(), "job.json", request.as_bytes());
    let out = Command::new(bin())
        .args(["transform", "--quiet", "--endpoint", &server.url, "--request"])
        .arg(dir.path().join("job.json"))
        .output()
        .unwrap();
    ok(&out);
    // Echo's answer is the filtered row (1.5,2); joined: id1,1.5,2,1.5,2; kept: first and last.
    assert_eq!(read(dir.path(), "a.csv.out"), b"id1,2\nid2,4\n");
}

#[test]
fn a_json_lines_join_adds_sagemaker_output() {
    let (server, _model) = echo();
    let dir = tempdir();
    write(
        dir.path(),
        "in/a.jsonl",
        b"{\"id\":\"r1\",\"features\":[1,2]}\n{\"id\":\"r2\",\"features\":[3]}\n",
    );
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "application/jsonlines",
            "--accept",
            "application/jsonlines",
            "--split-type",
            "Line",
            "--assemble-with",
            "Line",
            "--input-filter",
            "$.features",
            "--join-source",
            "Input",
            "--output-filter",
            "$['id','SageMakerOutput']",
        ],
    );
    ok(&out);
    assert_eq!(
        read(dir.path(), "a.jsonl.out"),
        b"{\"id\":\"r1\",\"SageMakerOutput\":[1,2]}\n{\"id\":\"r2\",\"SageMakerOutput\":[3]}\n"
    );
}

#[test]
fn payloads_respect_max_payload_in_mb() {
    // The endpoint itself refuses bodies over 1 MiB (413), so a job that packed
    // more than MaxPayloadInMB=1 into one request would fail.
    let (server, _model) = echo_with(&[("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1")]);
    let dir = tempdir();
    let line = format!("{}\n", "7".repeat(299_999));
    let input = line.repeat(8); // 2.4 MB: three requests of at most 3 records
    write(dir.path(), "in/big.csv", input.as_bytes());
    let args = [
        "--content-type",
        "text/csv",
        "--split-type",
        "Line",
        "--strategy",
        "MultiRecord",
    ];
    let out = transform(
        &server,
        dir.path(),
        &[&args[..], &["--max-payload-mb", "1"]].concat(),
    );
    ok(&out);
    assert_eq!(read(dir.path(), "big.csv.out"), input.as_bytes());

    // With MaxPayloadInMB=2 the job packs six records (1.8 MB) into its first
    // request, which this endpoint refuses: the error names the lines.
    fs::remove_dir_all(dir.path().join("out")).unwrap();
    let out = transform(
        &server,
        dir.path(),
        &[&args[..], &["--max-payload-mb", "2"]].concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("big.csv: lines 1-6: ClientError: 413"), "{err}");
    assert!(!dir.path().join("out/big.csv.out").exists());
}

#[test]
fn a_record_larger_than_max_payload_fails_its_file_only() {
    let (server, _model) = echo();
    let dir = tempdir();
    let mut big = b"ok\n".to_vec();
    big.extend(vec![b'9'; 1024 * 1024 + 1]);
    big.extend(b"\nok\n");
    write(dir.path(), "in/a.csv", &big);
    write(dir.path(), "in/b.csv", b"fine\n");
    let out = transform(
        &server,
        dir.path(),
        &[
            "--content-type",
            "text/csv",
            "--split-type",
            "Line",
            "--max-payload-mb",
            "1",
            "--assemble-with",
            "Line",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a.csv: line 2: the record is larger than MaxPayloadInMB"),
        "{err}"
    );
    assert!(!dir.path().join("out/a.csv.out").exists());
    assert_eq!(read(dir.path(), "b.csv.out"), b"fine\n");
}

#[test]
fn invoke_prints_the_answer_and_fails_on_errors() {
    let (server, _model) = echo();
    let out = Command::new(bin())
        .args([
            "invoke",
            &server.url,
            "--content-type",
            "text/csv",
            "--accept",
            "text/csv",
        ])
        .args(["--body", "M,0.44,0.365"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"M,0.44,0.365");

    let unused = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(bin())
        .args(["invoke", &unused, "--content-type", "text/csv", "--body", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

/// The hidden temporary outputs (`.<name>.partial-<pid>`) under `dir`.
fn partials(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".partial-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Six files of five records that take 100 ms each at the `slow` stage.
fn slow_inputs(dir: &Path) -> Vec<u8> {
    let records = b"sleep:100\n".repeat(5);
    for i in 0..6 {
        write(dir, &format!("in/f{i}.csv"), &records);
    }
    records
}

fn start_slow_transform(server: &Server, dir: &Path) -> std::process::Child {
    let args: Vec<&str> = "--content-type text/csv --accept text/csv --split-type Line \
                           --strategy SingleRecord --assemble-with Line"
        .split_whitespace()
        .collect();
    transform_command(server, dir, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start modelstage transform")
}

/// Waits until the job has a temporary output in `out` (it is in the middle of a file).
fn wait_for_partial(child: &mut std::process::Child, out: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while partials(out).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before it could be stopped"
        );
        assert!(std::time::Instant::now() < deadline, "no partial output appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Every output in `out` is whole; returns how many there are.
fn only_complete_outputs(out: &Path, records: &[u8]) -> usize {
    let mut outputs = 0;
    for entry in fs::read_dir(out).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(name.ends_with(".csv.out"), "only outputs are left, found {name}");
        assert_eq!(fs::read(entry.path()).unwrap(), records, "{name} is whole");
        outputs += 1;
    }
    outputs
}

#[test]
fn an_interrupted_transform_leaves_only_complete_outputs() {
    let model = tempdir();
    let server = serve(&stage_lib("slow"), model.path(), &[]);
    let dir = tempdir();
    let records = slow_inputs(dir.path());
    let out = dir.path().join("out");

    // Ctrl-C in the middle of a file: the job stops and removes that file's partial output.
    let mut job = start_slow_transform(&server, dir.path());
    wait_for_partial(&mut job, &out);
    let sent = Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_exit(&mut job, std::time::Duration::from_secs(60)).expect("the job stops");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut job.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    assert!(partials(&out).is_empty(), "{:?}", partials(&out));
    assert!(only_complete_outputs(&out, &records) < 6);

    // Killed outright, the job cannot clean up; the rerun removes what it left and writes
    // every output whole.
    fs::remove_dir_all(&out).unwrap();
    let mut job = start_slow_transform(&server, dir.path());
    wait_for_partial(&mut job, &out);
    job.kill().unwrap();
    job.wait().unwrap();
    let left = partials(&out);
    let mut rerun = start_slow_transform(&server, dir.path());
    let status = wait_exit(&mut rerun, std::time::Duration::from_secs(120)).expect("the rerun ends");
    assert!(status.success());
    assert_eq!(
        only_complete_outputs(&out, &records),
        6,
        "{left:?} were left by the killed job"
    );
}
