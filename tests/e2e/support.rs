//! Helpers for the end-to-end tests: run the real `modelstage` binary
//! against the real stage libraries, and talk HTTP to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `modelstage` binary under test: this build's, or the one named by
/// `MODELSTAGE_E2E_BIN` to run the tests against another build (the stage
/// libraries are then taken from beside it).
pub fn bin() -> PathBuf {
    std::env::var_os("MODELSTAGE_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_modelstage")))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A stage library built by the workspace build: `stage_lib("echo")` is
/// `target/<profile>/libecho.so`.
pub fn stage_lib(name: &str) -> PathBuf {
    let lib = bin().parent().unwrap().join(format!("lib{name}.so"));
    assert!(
        lib.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, which ci/test.sh does)",
        lib.display()
    );
    lib
}

/// The abalone data set kept in the repo.
pub fn abalone_csv() -> PathBuf {
    repo_root().join("examples/abalone/data/abalone.csv")
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `modelstage serve`; killed on drop. Its log lines are collected.
pub struct Server {
    pub port: u16,
    pub url: String,
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Everything the server printed so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (generously) until the log holds `needle` and returns it; the log threads may still
    /// be reading after the process has exited. On a timeout the log is returned as it is, for
    /// the caller's assertion to show.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log_text();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

/// Waits for `child` to exit, up to `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(stream: impl std::io::Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
}

/// Starts `modelstage serve` without waiting for it.
pub fn spawn_serve(args: &[&str], env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(bin());
    cmd.arg("serve").args(args).arg("--port").arg(port.to_string());
    cmd.env_remove("SAGEMAKER_BIND_TO_PORT")
        .env_remove("MODELSTAGE_STAGE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start modelstage serve");
    let log = Arc::new(Mutex::new(Vec::new()));
    collect_lines(child.stdout.take().unwrap(), Arc::clone(&log));
    collect_lines(child.stderr.take().unwrap(), Arc::clone(&log));
    Server {
        port,
        url: format!("http://127.0.0.1:{port}"),
        child,
        log,
    }
}

/// Waits until `/ping` answers 200.
pub fn wait_ready(server: &mut Server, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ping(&server.url) == Some(200) {
            return;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "modelstage serve exited ({status}) before it was ready:\n{}",
                server.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "modelstage serve was not ready in {timeout:?}:\n{}",
        server.log_text()
    );
}

/// Serves `stage` with `model_dir` and waits for `/ping` 200.
pub fn serve(stage: &Path, model_dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut server = spawn_serve(
        &[
            "--stage",
            stage.to_str().unwrap(),
            "--model-dir",
            model_dir.to_str().unwrap(),
        ],
        env,
    );
    wait_ready(&mut server, Duration::from_secs(20));
    server
}

/// Runs `modelstage fit ARGS`.
pub fn fit(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("fit")
        .args(args)
        .output()
        .expect("run modelstage fit")
}

/// Unpacks a model.tar.gz (safely, as serve and deploy do).
pub fn untar_model(tar_gz: &Path, dir: &Path) {
    modelstage_runtime::archive::unpack(tar_gz, dir).expect("unpack model.tar.gz");
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `GET /ping`: the status, or `None` when the server is not reachable.
pub fn ping(url: &str) -> Option<u16> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("{url}/ping"))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

/// `GET url+path`: status and body.
pub fn get(url: &str, path: &str) -> (u16, Vec<u8>) {
    let r = client().get(format!("{url}{path}")).send().expect("GET");
    let status = r.status().as_u16();
    (status, r.bytes().unwrap().to_vec())
}

/// `POST /invocations`: status, headers (lower-case names) and body.
pub fn post(
    url: &str,
    content_type: &str,
    accept: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    post_with(url, content_type, accept, &[], body)
}

/// `POST /invocations` with extra headers.
pub fn post_with(
    url: &str,
    content_type: &str,
    accept: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut all = vec![("content-type", content_type)];
    all.extend(accept.map(|a| ("accept", a)));
    all.extend_from_slice(headers);
    request("POST", &format!("{url}/invocations"), &all, body)
}

/// `POST url+path` with these headers: status, headers (lower-case names) and body.
pub fn post_to(
    url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    request("POST", &format!("{url}{path}"), headers, body)
}

/// Any request: status, headers (lower-case names) and body.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = client().request(method, url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    (status, headers, r.bytes().unwrap().to_vec())
}

/// The value of a response header.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses a JSON error body.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// The Python that runs the pytest suites (`PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Whether a Docker engine answers. In CI (`CI=true`) an unreachable engine is a failure, never a
/// skip: a CI machine without Docker would otherwise pass without testing anything.
pub fn docker_engine() -> bool {
    match modelstage_local::docker::engine_available() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and these tests need Docker, but {e}")
        }
        Err(e) => {
            eprintln!("docker tests not run: {e}");
            false
        }
    }
}

/// Builds the built-in images (`modelstage/<stage>:latest`) once per test run with
/// `ci/docker-build.sh`, from the binaries of this test build, so that they hold exactly the code
/// under test. `false`: no engine (see [`docker_engine`]).
pub fn docker_images() -> bool {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if !docker_engine() {
        return false;
    }
    let build_dir = bin().parent().unwrap().to_path_buf();
    let profile = build_dir.file_name().unwrap().to_string_lossy().into_owned();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(repo_root().join("ci/docker-build.sh"))
            .arg(&profile)
            .env("MODELSTAGE_BUILD_DIR", &build_dir)
            .current_dir(repo_root())
            .output()
            .map_err(|e| format!("cannot run ci/docker-build.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ci/docker-build.sh {profile} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    true
}

/// A raw HTTP/1.1 answer read to its end: status, head (lower-cased) and body.
pub fn split_answer(answer: &[u8]) -> (u16, String, Vec<u8>) {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {:?}", String::from_utf8_lossy(answer)));
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, answer[end + 4..].to_vec())
}
