//! `modelstage deploy`: serial pipelines behind the router, with the stage library containers
//! hosted in it (the default) or each a `serve` process of its own (`--process-per-container`),
//! and fused in one process (the same bytes), Content-Type and Accept on each hop
//! (docs/contract.md (Serial pipelines)), errors that name the failing container, a hosted
//! container's crash, health, Direct mode, and stopping everything on SIGTERM.
//!
//! The stages: `doubler` (the SDK's default codecs around "double every number": it answers JSON
//! when it gets no Accept) and `echo` (the body and Content-Type it got, unchanged).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// A running `modelstage deploy`; stopped with SIGTERM on drop.
pub(crate) struct Deploy {
    pub(crate) url: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Deploy {
    pub(crate) fn start(args: &[&str]) -> Deploy {
        let deploy = Deploy::spawn(args);
        deploy.wait_ready();
        deploy
    }

    pub(crate) fn spawn(args: &[&str]) -> Deploy {
        let port = free_port();
        let mut child = Command::new(bin())
            .arg("deploy")
            .args(args)
            .args(["--port", &port.to_string()])
            .env_remove("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start modelstage deploy");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        Deploy {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits up to 10 s for a log line `wanted` accepts (a container's line travels through its
    /// pipe after the router has answered); panics with the log if none comes.
    fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log_text().lines().any(&wanted) {
            assert!(Instant::now() < deadline, "{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.log_text().contains("endpoint ready at") && ping(&self.url) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("modelstage deploy was not ready:\n{}", self.log_text());
    }

    /// The pid of each container, from the `started NAME (pid N, port P)` lines.
    fn container_pids(&self) -> Vec<(String, u32)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let rest = line.strip_prefix("modelstage deploy: started ")?;
                let (name, rest) = rest.split_once(" (pid ")?;
                let pid = rest.split_once(',')?.0.parse().ok()?;
                Some((name.to_string(), pid))
            })
            .collect()
    }

    /// The Unix socket each container said it serves on (`MODELSTAGE_UNIX_SOCKET`, which the
    /// router's hops go over).
    fn container_sockets(&self) -> Vec<PathBuf> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let rest = line.split_once("serving on the Unix socket ")?.1;
                Some(PathBuf::from(rest.split_whitespace().next()?))
            })
            .collect()
    }

    fn terminate(&self) {
        signal(self.child.id(), "TERM");
    }

    /// SIGTERM; `deploy` must exit with success, and every one of `pids` (processes it started)
    /// end soon after.
    fn stop_and_outlive(&mut self, pids: &[u32]) {
        self.terminate();
        let status = self
            .wait_exit(Duration::from_secs(20))
            .expect("deploy exits on SIGTERM");
        assert!(status.success(), "{status}\n{}", self.log_text());
        assert_all_end(pids);
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

impl Drop for Deploy {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
            if self.wait_exit(Duration::from_secs(20)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Every one of `pids` ends within 10 s. A worker ends when it sees its server's sockets close
/// (or its parent die), a moment after the server itself.
fn assert_all_end(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|p| alive(*p));
    }
    assert!(
        left.is_empty(),
        "still running 10 s after deploy exited: {left:?}"
    );
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A live process (a zombie that only waits to be reaped counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A process and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        // Children are listed per thread: a server starts its workers from several threads.
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten();
        for task in tasks {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            }
        }
        i += 1;
    }
    all
}

fn write_model(dir: &Path, document: serde_json::Value) -> PathBuf {
    let path = dir.join("model.json");
    std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    path
}

fn lib(name: &str) -> String {
    stage_lib(name).display().to_string()
}

fn pipeline(containers: &[serde_json::Value]) -> serde_json::Value {
    json!({ "ModelName": "pipeline-test", "Containers": containers })
}

/// One request of the comparison set: Content-Type, Accept, body.
type Case = (&'static str, Option<&'static str>, Vec<u8>);

#[test]
fn router_and_fused_pipelines_answer_with_the_same_bytes() {
    let dir = tempdir();
    // The first container declares a 1 MB request limit: both forms must refuse a bigger body alike.
    let model = write_model(
        dir.path(),
        pipeline(&[
            json!({"Image": lib("doubler"), "Environment": {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"}}),
            json!({"Image": lib("doubler")}),
        ]),
    );
    let model = model.to_str().unwrap();
    // The router hosting the stage library containers (the default), and with each container a
    // `modelstage serve` process of its own.
    let hosted = Deploy::start(&["--request", model]);
    let processes = Deploy::start(&["--request", model, "--process-per-container"]);
    let fused = Deploy::start(&["--request", model, "--fused"]);
    assert!(fused.log_text().contains("fused in one process"));
    assert_eq!(fused.container_pids().len(), 1, "{}", fused.log_text());
    assert_eq!(processes.container_pids().len(), 2, "{}", processes.log_text());
    assert!(hosted.container_pids().is_empty(), "{}", hosted.log_text());
    for name in ["container-1", "container-2"] {
        let line = format!("modelstage deploy: hosting {name} in the router");
        assert!(hosted.log_text().contains(&line), "{}", hosted.log_text());
    }

    let cases: Vec<Case> = vec![
        ("text/csv", Some("text/csv"), b"1,2,3\n4,5,6".to_vec()),
        ("text/csv", None, b"1,2,3".to_vec()),
        ("text/csv", Some("*/*"), b"0.5".to_vec()),
        (
            "application/json",
            Some("application/jsonlines"),
            b"[[1.5, -2], [3, 4]]".to_vec(),
        ),
        // 406 from the last container, 415 and 400 from the first.
        ("text/csv", Some("application/x-foo"), b"1,2".to_vec()),
        ("application/x-foo", Some("application/json"), b"1,2".to_vec()),
        ("text/csv", Some("application/json"), b"1,x\n".to_vec()),
        // Over the first container's 1 MB limit.
        ("text/csv", None, vec![b'1'; 1024 * 1024 + 1]),
    ];
    for (shape, router) in [("hosted", &hosted), ("processes", &processes)] {
        let mut statuses = Vec::new();
        for (i, (content_type, accept, body)) in cases.iter().enumerate() {
            let rid = format!("same-bytes-{i}");
            let headers = [("X-Modelstage-Request-Id", rid.as_str())];
            let (rs, rh, rb) = post_with(&router.url, content_type, *accept, &headers, body);
            let (fs, fh, fb) = post_with(&fused.url, content_type, *accept, &headers, body);
            let case = format!("{shape}: case {i} ({content_type}, {accept:?})");
            assert_eq!(rs, fs, "{case}: {}", String::from_utf8_lossy(&rb));
            assert_eq!(
                String::from_utf8_lossy(&rb),
                String::from_utf8_lossy(&fb),
                "{case}"
            );
            assert_eq!(header(&rh, "content-type"), header(&fh, "content-type"), "{case}");
            assert_eq!(
                header(&rh, "x-modelstage-request-id"),
                Some(rid.as_str()),
                "{case}"
            );
            assert_eq!(
                header(&fh, "x-modelstage-request-id"),
                Some(rid.as_str()),
                "{case}"
            );
            statuses.push(rs);
        }
        assert_eq!(statuses, [200, 200, 200, 200, 424, 424, 424, 413], "{shape}");
    }
    let router = &hosted;

    // And the answers are right, not only alike: doubled twice.
    let (_, headers, body) = post(&router.url, "text/csv", Some("text/csv"), b"1,2,3\n4,5,6");
    assert_eq!(String::from_utf8_lossy(&body), "4.0,8.0,12.0\n16.0,20.0,24.0\n");
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));
    // */* is no Accept: the last container's default, JSON.
    let (_, headers, body) = post(&router.url, "text/csv", Some("*/*"), b"1,2\n3,4");
    assert_eq!(String::from_utf8_lossy(&body), "[[4.0, 8.0], [12.0, 16.0]]");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let (status, _, body) = post(&router.url, "text/csv", None, &vec![b'1'; 1024 * 1024 + 1]);
    assert_eq!(status, 413);
    let e = json(&body);
    assert_eq!(e["stage"], "container-1 -> container-2");
    assert!(e["message"].as_str().unwrap().contains("1 MB limit"), "{e}");
}

#[test]
fn each_hop_gets_the_content_type_and_accept_of_the_contract() {
    let dir = tempdir();
    // doubler -> echo: echo shows what the second hop received.
    let deploy = Deploy::start(&["--stage", &lib("doubler"), "--stage", &lib("echo")]);
    let (status, headers, body) = post(&deploy.url, "text/csv", Some("text/csv"), b"1,2,3\n4,5,6");
    assert_eq!(status, 200);
    // The first container got no Accept, so it answered its default, JSON; that body and its
    // Content-Type reached the second container. (Had the client's Accept reached the first, the
    // answer would be CSV.)
    assert_eq!(
        String::from_utf8_lossy(&body),
        "[[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]]"
    );
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    drop(deploy);

    // An intermediate container's own SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT chooses its output.
    let model = write_model(
        dir.path(),
        pipeline(&[
            json!({"Image": lib("doubler"),
                   "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}}),
            json!({"Image": lib("echo")}),
        ]),
    );
    for fused in [false, true] {
        let mut args = vec!["--request", model.to_str().unwrap()];
        if fused {
            args.push("--fused");
        }
        let deploy = Deploy::start(&args);
        let (status, headers, body) =
            post(&deploy.url, "text/csv", Some("application/json"), b"1,2,3\n4,5,6");
        assert_eq!(status, 200, "fused={fused}");
        assert_eq!(
            String::from_utf8_lossy(&body),
            "2.0,4.0,6.0\n8.0,10.0,12.0\n",
            "fused={fused}"
        );
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/csv"),
            "fused={fused}"
        );
    }

    // The client's Accept reaches the last container only: an Accept nobody supports fails in
    // container-2, not container-1.
    let deploy = Deploy::start(&["--stage", &lib("doubler"), "--stage", &lib("doubler")]);
    let (status, _, body) = post(&deploy.url, "text/csv", Some("application/x-foo"), b"1");
    assert_eq!(status, 424);
    let e = json(&body);
    assert_eq!(e["container"], "container-2");
    assert_eq!(e["original_status"], 406);

    // Custom attributes travel to the containers and back.
    let echo = Deploy::start(&["--stage", &lib("echo"), "--stage", &lib("echo")]);
    let (status, headers, body) = post_with(
        &echo.url,
        "application/octet-stream",
        None,
        &[("X-Amzn-SageMaker-Custom-Attributes", "trace=abc")],
        b"\x00\xffbytes",
    );
    assert_eq!(status, 200);
    assert_eq!(body, b"\x00\xffbytes");
    assert_eq!(header(&headers, "content-type"), Some("application/octet-stream"));
    assert_eq!(
        header(&headers, "x-amzn-sagemaker-custom-attributes"),
        Some("trace=abc")
    );
}

#[test]
fn a_failing_middle_container_names_itself() {
    let stages = [lib("echo"), lib("doubler"), lib("echo")];
    for shape in ["hosted", "--process-per-container"] {
        let mut args = Vec::new();
        if shape != "hosted" {
            args.push(shape);
        }
        for stage in &stages {
            args.extend(["--stage", stage.as_str()]);
        }
        let deploy = Deploy::start(&args);
        let (status, headers, body) = post_with(
            &deploy.url,
            "text/csv",
            Some("text/csv"),
            &[("X-Modelstage-Request-Id", "rid-middle-1")],
            b"1,2\n3,oops\n",
        );
        assert_eq!(status, 424, "{shape}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        let e = json(&body);
        assert_eq!(e["error"], "ModelError");
        assert_eq!(e["container"], "container-2");
        assert_eq!(e["original_status"], 400);
        assert_eq!(e["request_id"], "rid-middle-1");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with("Received client error (400) from container-2 with message \""),
            "{message}"
        );
        // The original body is container-2's own error, naming the record.
        let original = json(e["original_message"].as_str().unwrap().as_bytes());
        assert_eq!(original["stage"], "doubler");
        assert_eq!(original["hook"], "input_fn");
        assert_eq!(original["request_id"], "rid-middle-1");

        // The request id is in the log with container-2's name: the router's line about its
        // answer, or, with a process per container, container-2's own access log line, shown
        // under its name. The router answers before that line has travelled through
        // container-2's pipe, so wait for that very line.
        deploy.wait_for_line(|l| {
            l.contains("rid=rid-middle-1")
                && match shape {
                    "hosted" => l.contains("container-2 answered 400"),
                    _ => l.starts_with("[container-2]"),
                }
        });
    }
}

#[test]
fn ping_is_503_when_a_container_is_killed() {
    let deploy = Deploy::start(&[
        "--process-per-container",
        "--stage",
        &lib("echo"),
        "--stage",
        &lib("echo"),
        "--stage",
        &lib("echo"),
    ]);
    assert_eq!(ping(&deploy.url), Some(200));
    let pids = deploy.container_pids();
    let (name, pid) = pids.iter().find(|(n, _)| n == "container-2").unwrap();
    signal(*pid, "KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ping(&deploy.url) == Some(200) {
        assert!(Instant::now() < deadline, "still healthy after {name} was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = get(&deploy.url, "/ping");
    assert_eq!(status, 503);
    let e = json(&body);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("1 of 3 containers") && message.contains("container-2 (no answer"),
        "{e}"
    );
    assert!(
        !message.contains("container-1") && !message.contains("container-3"),
        "{e}"
    );
    // The deploy itself is still up, and says what happened.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !deploy.log_text().contains("container-2 was killed by signal 9") {
        assert!(Instant::now() < deadline, "{}", deploy.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn direct_mode_routes_by_target_hostname() {
    let dir = tempdir();
    let model = write_model(
        dir.path(),
        json!({
            "InferenceExecutionConfig": {"Mode": "Direct"},
            "Containers": [
                {"Image": lib("doubler"), "ContainerHostname": "double"},
                {"Image": lib("echo"), "ContainerHostname": "echo"},
            ]
        }),
    );
    let deploy = Deploy::start(&["--request", model.to_str().unwrap()]);
    let target = |name: &str, accept: Option<&str>| {
        post_with(
            &deploy.url,
            "text/csv",
            accept,
            &[("X-Amzn-SageMaker-Target-Container-Hostname", name)],
            b"1,2\n3,4",
        )
    };
    let (status, headers, body) = target("double", Some("text/csv"));
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (200, "2.0,4.0\n6.0,8.0\n")
    );
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));
    let (status, _, body) = target("echo", None);
    assert_eq!((status, body.as_slice()), (200, b"1,2\n3,4".as_slice()));
    // A failing container is a ModelError naming it.
    let (status, _, body) = target("double", Some("application/x-foo"));
    assert_eq!(status, 424);
    assert_eq!(json(&body)["container"], "double");

    let (status, _, body) = post(&deploy.url, "text/csv", None, b"1");
    assert_eq!(status, 400);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("X-Amzn-SageMaker-Target-Container-Hostname") && message.contains("double, echo"),
        "{message}"
    );
    let (status, _, body) = target("nope", None);
    assert_eq!(status, 400);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("'nope'") && message.contains("double, echo"),
        "{message}"
    );
}

#[test]
fn inter_container_payloads_over_5_mb_are_refused() {
    let deploy = Deploy::start(&["--stage", &lib("doubler"), "--stage", &lib("echo")]);
    // 1,200,000 rows of "1" (2.4 MB of CSV, one column: a vector) double into the JSON list
    // "[2.0, 2.0, ...]": 3 bytes a value, 2 per separator and 2 brackets, 5 x 1,200,000 =
    // 6,000,000 bytes, over the 5 MB hop limit (and SageMaker's own example figure).
    let body = "1\n".repeat(1_200_000);
    let (status, _, out) = post(&deploy.url, "text/csv", None, body.as_bytes());
    assert_eq!(
        status,
        413,
        "{}",
        String::from_utf8_lossy(&out[..out.len().min(500)])
    );
    let message = json(&out)["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        "Received response from container-1 with status code 200. However, the request payload from \
         container-1 to container-2 is 6000000 bytes, which has exceeded the maximum limit of 5 MB."
    );
}

#[test]
fn deploy_stops_its_children_on_sigterm() {
    let mut deploy = Deploy::start(&[
        "--process-per-container",
        "--stage",
        &lib("echo"),
        "--stage",
        &lib("doubler"),
    ]);
    let containers = deploy.container_pids();
    assert_eq!(containers.len(), 2, "{}", deploy.log_text());
    // Every process it started: the servers and their worker processes.
    let pids: Vec<u32> = containers
        .iter()
        .flat_map(|(_, pid)| process_tree(*pid))
        .collect();
    assert!(pids.len() > 2, "the servers have workers: {pids:?}");
    assert!(pids.iter().all(|p| alive(*p)));
    // Each process was given a socket of its own, in one private folder, short enough for the OS.
    let sockets = deploy.container_sockets();
    assert_eq!(sockets.len(), 2, "{}", deploy.log_text());
    assert_ne!(sockets[0], sockets[1]);
    let folder = sockets[0].parent().unwrap().to_path_buf();
    assert_eq!(sockets[1].parent(), Some(folder.as_path()));
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", folder.display());
        for socket in &sockets {
            assert!(socket.as_os_str().len() <= 107, "{}", socket.display());
            let meta = std::fs::symlink_metadata(socket).unwrap();
            assert!(meta.file_type().is_socket(), "{}", socket.display());
        }
    }
    // The router's hops go over them.
    let (status, _, body) = post(&deploy.url, "text/csv", Some("text/csv"), b"1,2");
    assert_eq!((status, body.as_slice()), (200, &b"2.0\n4.0\n"[..]));
    deploy.stop_and_outlive(&pids);
    assert!(deploy.log_text().contains("modelstage deploy: stopped"));
    assert!(!folder.exists(), "the sockets' folder outlived the endpoint");
}

#[test]
fn a_container_that_fails_to_start_is_named_with_its_log() {
    let mut deploy = Deploy::spawn(&[
        "--process-per-container",
        "--stage",
        &lib("echo"),
        "--stage",
        &lib("failing_model"),
    ]);
    let status = deploy
        .wait_exit(Duration::from_secs(30))
        .expect("deploy gives up");
    assert!(!status.success());
    let log = deploy.log_text();
    assert!(log.contains("container container-2 (pid"), "{log}");
    assert!(log.contains("before it was ready; its last log lines:"), "{log}");
    // The healthy container it had started is stopped too.
    let pids = deploy.container_pids();
    assert_eq!(pids.len(), 2, "{log}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|(_, p)| alive(*p)) {
        assert!(Instant::now() < deadline, "left running: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hosted_container_that_fails_to_start_is_named_with_the_cause() {
    let mut deploy = Deploy::spawn(&["--stage", &lib("echo"), "--stage", &lib("failing_model")]);
    let status = deploy
        .wait_exit(Duration::from_secs(30))
        .expect("deploy gives up");
    assert!(!status.success());
    let log = deploy.log_text();
    // Named, with why its model did not load (its workers' log, if they printed any, follows).
    assert!(
        log.contains("container container-2 (hosted in the router) did not start: failing-model: model_fn: "),
        "{log}"
    );
    assert!(!log.contains("endpoint ready"), "{log}");
}

/// SIGTERM while a hosted container's model loads stops `deploy` at once, its workers with it,
/// rather than after the load.
#[test]
fn a_hosted_start_is_cut_short_by_sigterm() {
    let dir = tempdir();
    let model = write_model(
        dir.path(),
        pipeline(&[
            json!({"Image": lib("echo")}),
            json!({"Image": lib("slow"), "Environment": {"FIXTURE_MODEL_SLEEP_MS": "60000"}}),
        ]),
    );
    let mut deploy = Deploy::spawn(&["--request", model.to_str().unwrap()]);
    // Both containers' workers have started: the slow one is loading its model.
    let deadline = Instant::now() + Duration::from_secs(20);
    let workers = loop {
        let tree = process_tree(deploy.child.id());
        if tree.len() >= 3 {
            break tree[1..].to_vec();
        }
        assert!(Instant::now() < deadline, "{}", deploy.log_text());
        std::thread::sleep(Duration::from_millis(20));
    };
    let signalled = Instant::now();
    deploy.terminate();
    let status = deploy
        .wait_exit(Duration::from_secs(10))
        .expect("deploy stops while a model loads");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert!(!status.success());
    let log = deploy.log_text();
    assert!(
        log.contains("stopped before a worker of stage slow loaded its model"),
        "{log}"
    );
    assert_all_end(&workers);
}

/// What a hosted container's workers print is shown under the container's name, as a process's
/// output is: here the panic message of a stage that panics.
#[test]
fn a_hosted_container_s_output_is_shown_under_its_name() {
    let deploy = Deploy::start(&["--stage", &lib("echo"), "--stage", &lib("panicking")]);
    let (status, _, body) = post(&deploy.url, "text/plain", Some("text/plain"), b"x");
    assert_eq!(status, 424, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["container"], "container-2");
    deploy.wait_for_line(|l| l.starts_with("[container-2] ") && l.contains("the fixture panics on purpose"));
}

/// A stage that aborts in a container the router hosts costs its own request: the endpoint, the
/// other container and the next requests go on.
#[test]
fn a_hosted_container_that_aborts_costs_only_its_request() {
    let deploy = Deploy::start(&["--stage", &lib("echo"), "--stage", &lib("abort_on_request")]);
    let (status, _, body) = post(&deploy.url, "text/plain", Some("text/plain"), b"abort");
    assert_eq!(status, 424, "{}", String::from_utf8_lossy(&body));
    let e = json(&body);
    assert_eq!(e["container"], "container-2");
    assert_eq!(e["original_status"], 500, "{e}");
    for i in 0..20 {
        let sent = format!("after-{i}");
        let (status, _, body) = post(&deploy.url, "text/plain", Some("text/plain"), sent.as_bytes());
        assert_eq!((status, body.as_slice()), (200, sent.as_bytes()));
    }
    wait_healthy(&deploy, Duration::from_secs(10));
}

/// Without `--process-per-container` the only processes are `deploy` and the hosted
/// containers' workers: SIGTERM stops them all.
#[test]
fn a_hosted_pipeline_stops_its_workers_on_sigterm() {
    let mut deploy = Deploy::start(&["--stage", &lib("echo"), "--stage", &lib("doubler")]);
    let workers: Vec<u32> = process_tree(deploy.child.id())
        .into_iter()
        .filter(|p| *p != deploy.child.id())
        .collect();
    assert!(workers.len() >= 2, "each container has workers: {workers:?}");
    let (status, _, body) = post(&deploy.url, "text/csv", Some("text/csv"), b"1,2");
    assert_eq!((status, body.as_slice()), (200, &b"2.0\n4.0\n"[..]));
    deploy.stop_and_outlive(&workers);
}

#[test]
fn bad_requests_are_refused_before_anything_starts() {
    let dir = tempdir();
    let model = write_model(
        dir.path(),
        json!({"Containers": [{"Image": lib("echo")}, {"Image": "no/such/libstage.so"}]}),
    );
    let out = Command::new(bin())
        .args([
            "deploy",
            "--request",
            model.to_str().unwrap(),
            "--port",
            &free_port().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container-2: Image 'no/such/libstage.so' is not a stage library file"),
        "{err}"
    );
    assert!(!err.contains("started"), "nothing was started: {err}");
}

/// Waits until `url` answers `GET /ping` with 200; `deploy`'s log is in the panic message.
fn wait_healthy(deploy: &Deploy, within: Duration) {
    let deadline = Instant::now() + within;
    while ping(&deploy.url) != Some(200) {
        assert!(Instant::now() < deadline, "not healthy:\n{}", deploy.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn upstream_mode_chains_endpoints_that_already_run() {
    let models = tempdir();
    let doubler = serve(&stage_lib("doubler"), models.path(), &[]);
    let mut echo = serve(&stage_lib("echo"), models.path(), &[]);
    // The first upstream keeps SageMaker's default name, the second is named.
    let upstream = Deploy::spawn(&[
        "--upstream",
        &doubler.url,
        "--upstream",
        &format!("echo={}/", echo.url),
    ]);
    wait_healthy(&upstream, Duration::from_secs(20));
    // It starts nothing: no container, and no child process at all.
    assert!(upstream.container_pids().is_empty(), "{}", upstream.log_text());
    assert_eq!(process_tree(upstream.child.id()), [upstream.child.id()]);

    // The chain of the contract: no Accept to the first, so it answers JSON, which the echo returns.
    let (status, headers, body) = post(&upstream.url, "text/csv", Some("text/csv"), b"1,2,3\n4,5,6");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        String::from_utf8_lossy(&body),
        "[[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]]"
    );
    assert_eq!(header(&headers, "content-type"), Some("application/json"));

    // A failing upstream gives the 424 of a pipeline `deploy` starts itself, byte for byte.
    let started = Deploy::start(&["--stage", &lib("doubler"), "--stage", &lib("echo")]);
    let bad = |url: &str| {
        post_with(
            url,
            "application/x-foo",
            None,
            &[("X-Modelstage-Request-Id", "rid-upstream-1")],
            b"1,2",
        )
    };
    let (status, _, body) = bad(&upstream.url);
    let (started_status, _, started_body) = bad(&started.url);
    assert_eq!((status, started_status), (424, 424));
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&started_body)
    );
    let e = json(&body);
    assert_eq!(e["container"], "container-1");
    assert_eq!(e["original_status"], 415);
    assert!(doubler.log_text().contains("rid=rid-upstream-1"));

    // An upstream that goes away: /ping names it, requests name it, the router says so.
    let _ = echo.child.kill();
    let _ = echo.child.wait();
    let (status, body) = get(&upstream.url, "/ping");
    assert_eq!(status, 503);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("1 of 2 containers") && message.contains("echo (no answer"),
        "{message}"
    );
    assert!(!message.contains("container-1"), "{message}");
    let (status, _, body) = post(&upstream.url, "text/csv", None, b"1");
    assert_eq!(status, 503);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("echo could not be reached"), "{message}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !upstream.log_text().contains("echo stopped answering GET /ping") {
        assert!(Instant::now() < deadline, "{}", upstream.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn upstream_mode_routes_direct_requests_by_name() {
    let models = tempdir();
    let doubler = serve(&stage_lib("doubler"), models.path(), &[]);
    let echo = serve(&stage_lib("echo"), models.path(), &[]);
    let upstream = Deploy::spawn(&[
        "--upstream",
        &format!("double={}", doubler.url),
        "--upstream",
        &format!("echo={}", echo.url),
        "--mode",
        "Direct",
    ]);
    wait_healthy(&upstream, Duration::from_secs(20));
    let target = |name: &str| {
        post_with(
            &upstream.url,
            "text/csv",
            Some("text/csv"),
            &[("X-Amzn-SageMaker-Target-Container-Hostname", name)],
            b"1,2\n3,4",
        )
    };
    let (status, _, body) = target("double");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (200, "2.0,4.0\n6.0,8.0\n")
    );
    let (status, _, body) = target("echo");
    assert_eq!((status, body.as_slice()), (200, b"1,2\n3,4".as_slice()));
    let (status, _, body) = target("nope");
    assert_eq!(status, 400);
    assert!(json(&body)["message"].as_str().unwrap().contains("double, echo"));
}

#[test]
fn bad_upstreams_are_refused_with_the_argument_named() {
    for (args, expected) in [
        (
            vec!["--upstream", "a=https://x:1"],
            "--upstream 'a=https://x:1': https is not supported",
        ),
        (
            vec!["--upstream", "a=http://x:1", "--upstream", "a=http://y:2"],
            "two upstreams are named 'a'",
        ),
        (
            vec!["--upstream", "http://x:1", "--stage", "libecho.so"],
            "cannot be used with",
        ),
    ] {
        let out = Command::new(bin()).arg("deploy").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// `transform --model` starts the model of a CreateModel document itself, one container or a
/// pipeline behind the router, and stops it at the end; the echo stage returns every record, so
/// the output files are the input files.
#[test]
fn transform_starts_the_model_of_a_document() {
    let dir = tempdir();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("part")).unwrap();
    let a: String = (1..=300).map(|i| format!("{i},{}\n", i * 3)).collect();
    std::fs::write(input.join("a.csv"), &a).unwrap();
    std::fs::write(input.join("part/b.csv"), "M,0.44,0.365\nF,0.5,0.4\n").unwrap();
    let documents = [
        (
            "primary",
            json!({"ModelName": "echo", "PrimaryContainer": {"Image": lib("echo")}}),
        ),
        (
            "pipeline",
            pipeline(&[json!({"Image": lib("echo")}), json!({"Image": lib("echo")})]),
        ),
    ];
    for (kind, document) in documents {
        let model = dir.path().join(format!("{kind}.json"));
        std::fs::write(&model, document.to_string()).unwrap();
        let output = dir.path().join(format!("out-{kind}"));
        let out = Command::new(bin())
            .arg("transform")
            .arg("--model")
            .arg(&model)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--content-type", "text/csv", "--split-type", "Line"])
            .args(["--strategy", "MultiRecord", "--assemble-with", "Line", "--quiet"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kind}: {log}");
        assert_eq!(
            std::fs::read_to_string(output.join("a.csv.out")).unwrap(),
            a,
            "{kind}"
        );
        assert_eq!(
            std::fs::read_to_string(output.join("part/b.csv.out")).unwrap(),
            "M,0.44,0.365\nF,0.5,0.4\n",
            "{kind}"
        );
        // The containers' logs are on stderr under their names; stdout stays free. A pipeline's
        // containers are hosted in its router, which says so.
        let first = if kind == "primary" {
            "[primary] "
        } else {
            "container-1 is hosted in the router"
        };
        assert!(log.contains(first), "{kind}: {log}");
        assert!(out.stdout.is_empty(), "{kind}");
    }
}
