//! `model.tar.gz` from training to serving: `fit` prints the commands that serve and deploy its
//! model, `serve --model-data` unpacks an archive as SageMaker does, and hostile archives (link
//! chains, absolute targets, `..`, hard links, files written through links, gzip bombs) are
//! refused by `serve --model-data`, `deploy` and `transform` alike, with nothing left behind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use tar::EntryType;

use crate::support::*;

/// The archive builder the runtime's own tests use.
#[path = "../../framework/runtime/src/archive_craft.rs"]
mod craft;

use craft::{craft, zeros, Raw};

/// Runs `modelstage ARGS` with `TMPDIR` set to `tmp` and `env`; returns its exit status and
/// everything it printed. A command still running after 60 s fails the test (an archive that
/// should be refused was served).
fn run(args: &[&str], tmp: &Path, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("TMPDIR", tmp)
        .env_remove("MODELSTAGE_UNPACK_MAX_BYTES")
        .env_remove("MODELSTAGE_UNPACK_MAX_ENTRIES")
        .env_remove("MODELSTAGE_UNPACK_MAX_RATIO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start modelstage");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_exit(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = reader.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("modelstage {args:?} kept running:\n{text}"));
    (status, text)
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `serve --model-data`, `deploy --model` and `transform --model` each refuse `archive` with a
/// message containing `needle`, and leave nothing in their temporary folder.
fn refused_everywhere(archive: &Path, needle: &str, env: &[(&str, &str)]) {
    let dir = archive.parent().unwrap();
    let stage = stage_lib("echo");
    let stage = stage.to_str().unwrap();
    let tar_gz = archive.to_str().unwrap();
    let model_json = dir.join("model.json");
    std::fs::write(
        &model_json,
        serde_json::json!({"PrimaryContainer": {"Image": stage, "ModelDataUrl": tar_gz}}).to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(dir.join("in/a.csv"), "1\n").unwrap();
    let port = free_port().to_string();
    let (input, output) = (dir.join("in"), dir.join("out"));
    let commands: [Vec<&str>; 3] = [
        vec!["serve", "--stage", stage, "--model-data", tar_gz, "--port", &port],
        vec!["deploy", "--stage", stage, "--model", tar_gz, "--port", &port],
        vec![
            "transform",
            "--model",
            model_json.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--quiet",
        ],
    ];
    for args in commands {
        let tmp = tempdir();
        let (status, err) = run(&args, tmp.path(), env);
        assert!(!status.success(), "{} accepted the archive:\n{err}", args[0]);
        assert!(err.contains(needle), "{}: {err}", args[0]);
        assert_eq!(
            names(tmp.path()),
            Vec::<String>::new(),
            "{} left files behind",
            args[0]
        );
    }
    assert!(!dir.join("out/a.csv.out").exists());
}

#[test]
fn a_chain_of_relative_links_cannot_reach_outside_the_model() {
    let dir = tempdir();
    let evil = dir.path().join("evil.tar.gz");
    // `c/..` is `.` on paper, but `c` is a link to `.`: u1 is the folder above the model,
    // and featurizer.json would be read from beside it.
    craft(
        &evil,
        &[
            ("c", EntryType::Symlink, ".", b""),
            ("u1", EntryType::Symlink, "c/..", b""),
            (
                "featurizer.json",
                EntryType::Symlink,
                "u1/outside/featurizer.json",
                b"",
            ),
        ],
    );
    refused_everywhere(
        &evil,
        "refusing entry 'featurizer.json': a symbolic link to 'u1/outside/featurizer.json', which \
         leads outside the target folder",
        &[],
    );
}

#[test]
fn absolute_and_climbing_names_and_links_are_refused() {
    let cases: [(&[Raw], &str); 5] = [
        (
            &[("etc", EntryType::Symlink, "/etc", b"")],
            "refusing entry 'etc': a symbolic link to the absolute path '/etc'",
        ),
        (
            &[("../evil.txt", EntryType::Regular, "", b"x")],
            "refusing entry '../evil.txt': it contains '..'",
        ),
        (
            &[("h", EntryType::Link, "../../etc/passwd", b"")],
            "refusing entry 'h': a hard link to '../../etc/passwd', which it contains '..'",
        ),
        (
            &[("h", EntryType::Link, "/etc/passwd", b"")],
            "refusing entry 'h': a hard link to '/etc/passwd', which it is an absolute path",
        ),
        (
            &[
                ("out", EntryType::Symlink, ".", b""),
                ("out/model.bin", EntryType::Regular, "", b"x"),
            ],
            "refusing entry 'out/model.bin': it goes through 'out', a symbolic link of the same archive",
        ),
    ];
    for (entries, needle) in cases {
        let dir = tempdir();
        let evil = dir.path().join("evil.tar.gz");
        craft(&evil, entries);
        refused_everywhere(&evil, needle, &[]);
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_cap_its_error_names() {
    let dir = tempdir();
    let bomb = dir.path().join("bomb.tar.gz");
    zeros(&bomb, "weights.bin", 80 * 1024 * 1024);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1024 * 1024);
    // The default ratio cap (200:1) stops it.
    refused_everywhere(
        &bomb,
        "refusing to unpack more than 200 bytes per compressed byte (a gzip bomb?) \
         (MODELSTAGE_UNPACK_MAX_RATIO",
        &[],
    );
    // Each cap is a setting, and the error names the one that was hit.
    refused_everywhere(
        &bomb,
        "refusing to unpack more than 1000000 bytes (MODELSTAGE_UNPACK_MAX_BYTES",
        &[
            ("MODELSTAGE_UNPACK_MAX_RATIO", "0"),
            ("MODELSTAGE_UNPACK_MAX_BYTES", "1000000"),
        ],
    );
    let many = dir.path().join("many.tar.gz");
    let entries: Vec<(String, EntryType, &str, &[u8])> = (0..5)
        .map(|i| (format!("f{i}"), EntryType::Regular, "", &b"x"[..]))
        .collect();
    let raw: Vec<Raw> = entries
        .iter()
        .map(|(n, k, l, d)| (n.as_str(), *k, *l, *d))
        .collect();
    craft(&many, &raw);
    refused_everywhere(
        &many,
        "refusing an archive of more than 4 entries (MODELSTAGE_UNPACK_MAX_ENTRIES",
        &[("MODELSTAGE_UNPACK_MAX_ENTRIES", "4")],
    );
    let (status, err) = run(
        &["serve", "--stage", "x.so", "--model-data", many.to_str().unwrap()],
        dir.path(),
        &[("MODELSTAGE_UNPACK_MAX_BYTES", "lots")],
    );
    assert!(!status.success());
    assert!(
        err.contains("MODELSTAGE_UNPACK_MAX_BYTES must be a whole number (0 for no limit), got 'lots'"),
        "{err}"
    );
}

/// The words after `prefix` on the line of `text` that starts with it.
fn command_line(text: &str, prefix: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with '{prefix}' in:\n{text}"));
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn fit_prints_the_commands_that_serve_and_deploy_its_model() {
    // The example's CreateTrainingJob document, rendered as `examples/abalone/run.sh` renders it.
    let dir = tempdir();
    let template = repo_root().join("examples/abalone/featurizer-training-job.json");
    let document = std::fs::read_to_string(template)
        .unwrap()
        .replace("@ROOT@", repo_root().to_str().unwrap())
        .replace("@WORK@", dir.path().to_str().unwrap());
    let request = dir.path().join("job.json");
    std::fs::write(&request, document).unwrap();
    let stage = stage_lib("featurizer");
    let out = fit(&[
        "--request",
        request.to_str().unwrap(),
        "--stage",
        stage.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model: PathBuf = dir.path().join("jobs/abalone-featurizer/output/model.tar.gz");
    let model = model.to_str().unwrap();
    let serve_line = command_line(&stdout, "Serve it:  ");
    assert_eq!(
        serve_line,
        [
            "modelstage",
            "serve",
            "--stage",
            stage.to_str().unwrap(),
            "--model-data",
            model
        ]
    );
    let deploy_line = command_line(&stdout, "Deploy it: ");
    assert_eq!(
        deploy_line,
        [
            "modelstage",
            "deploy",
            "--stage",
            stage.to_str().unwrap(),
            "--model",
            model
        ]
    );

    // The serve command, as printed, serves the fitted model from a private folder.
    let tmp = tempdir();
    let args: Vec<&str> = serve_line[2..].iter().map(String::as_str).collect();
    let mut server = spawn_serve(&args, &[("TMPDIR", tmp.path().to_str().unwrap())]);
    wait_ready(&mut server, Duration::from_secs(30));
    let unpacked = || -> Vec<String> {
        names(tmp.path())
            .into_iter()
            .filter(|n| n.starts_with("modelstage-model-"))
            .collect()
    };
    assert_eq!(unpacked().len(), 1, "{:?}", names(tmp.path()));
    let (status, _, body) = post(
        &server.url,
        "text/csv",
        Some("text/csv"),
        b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155",
    );
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim_end().split(',').count(), 10, "{body}");
    // Stopped, the server removes what it unpacked.
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(60)).is_some());
    assert_eq!(unpacked(), Vec::<String>::new());

    // --model-data and --model-dir are two ways to say one thing.
    let (status, err) = run(
        &[
            "serve",
            "--stage",
            "x.so",
            "--model-data",
            model,
            "--model-dir",
            "/tmp",
        ],
        tmp.path(),
        &[],
    );
    assert!(!status.success());
    assert!(
        err.contains("--model-data") && err.contains("--model-dir"),
        "{err}"
    );
}
