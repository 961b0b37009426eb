//! Isolation under load: a crash, a slow request or a stray local process
//! costs only itself. Every test runs the `sleep-from-body` fixture, whose
//! requests sleep, abort or allocate as their body says.

use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;

fn sleeper(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempdir();
    (serve(&stage_lib("sleep_from_body"), dir.path(), env), dir)
}

/// A client that keeps its connection, as a load generator does.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// `POST /invocations` with a text body: status and body text.
fn call(client: &reqwest::blocking::Client, url: &str, body: &str) -> (u16, String) {
    let response = client
        .post(format!("{url}/invocations"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .unwrap_or_else(|e| panic!("POST {body}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Sends `body` from a thread of its own, after `delay`.
fn call_later(url: &str, body: &str, delay: Duration) -> JoinHandle<(u16, String)> {
    let (url, body) = (url.to_string(), body.to_string());
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        call(&client(), &url, &body)
    })
}

/// The message of a JSON error body.
fn message(body: &str) -> String {
    json(body.as_bytes())["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The process ids of the workers the server reported ready.
fn worker_pids(server: &Server) -> Vec<u32> {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains(" ready in "))
        .filter_map(|l| {
            let rest = &l[l.find("worker ")? + "worker ".len()..];
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}

/// Waits until the server has reported `n` workers ready (its log is read
/// by threads of its own, a little behind), and returns their process ids.
fn wait_for_workers(server: &Server, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = worker_pids(server);
        if pids.len() >= n || Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while `pid` is a running (not a dead, unreaped) process.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[test]
fn a_crash_hands_the_requests_waiting_for_its_worker_to_the_replacement() {
    // One worker with one thread: everything but the running request waits.
    let (server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ("MODELSTAGE_WORKER_THREADS", "1"),
    ]);
    let busy = call_later(&server.url, "600", Duration::ZERO);
    let abort = call_later(&server.url, "abort", Duration::from_millis(150));
    let waiting: Vec<_> = (0..8)
        .map(|i| call_later(&server.url, &format!("waiting {i}"), Duration::from_millis(300)))
        .collect();

    assert_eq!(busy.join().unwrap(), (200, "600".to_string()));
    let (status, body) = abort.join().unwrap();
    assert_eq!(status, 500, "{body}");
    let m = message(&body);
    assert!(m.contains("SIGABRT") && m.contains("during this request"), "{m}");
    // The endpoint can answer while the replacement starts.
    assert_eq!(ping(&server.url), Some(200));
    for (i, handle) in waiting.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), (200, format!("waiting {i}")));
    }
}

#[test]
fn a_slow_request_costs_only_itself() {
    let (server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "2"),
        ("MODELSTAGE_WORKER_THREADS", "2"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "2"),
    ]);
    let slow = call_later(&server.url, "8000", Duration::ZERO);
    // Twelve clients, 5 requests of 100 ms each, while the slow one holds
    // one of the four threads and then retires its worker.
    let clients: Vec<_> = (0..12)
        .map(|c| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let client = client();
                (0..5)
                    .map(|i| {
                        let (status, body) = call(&client, &url, "100");
                        (c, i, status, body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in clients {
        for (c, i, status, body) in handle.join().unwrap() {
            assert_eq!((status, body.as_str()), (200, "100"), "client {c} request {i}");
        }
    }
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 504, "{body}");
    let m = message(&body);
    assert!(
        m.contains("did not answer within 2 s") && m.contains("its worker is being replaced"),
        "{m}"
    );
}

#[test]
fn requests_start_as_soon_as_any_thread_is_free() {
    // 16 requests of 1.5 s on 2 workers x 2 threads: four rounds, the first
    // four answers at about 1.5 s and the last at about 6 s. Answers held
    // until a worker's whole batch is done would all come at the end.
    let (server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "2"),
        ("MODELSTAGE_WORKER_THREADS", "2"),
    ]);
    let start = Arc::new(Barrier::new(16));
    let began = Instant::now();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (url, start) = (server.url.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let client = client();
                start.wait();
                let answer = call(&client, &url, "1500");
                (answer, began.elapsed())
            })
        })
        .collect();
    let mut done: Vec<Duration> = handles
        .into_iter()
        .map(|h| {
            let (answer, at) = h.join().unwrap();
            assert_eq!(answer, (200, "1500".to_string()));
            at
        })
        .collect();
    done.sort();
    // Rounds, not batches: the fourth answer comes at least two rounds
    // before the last (three rounds when nothing else runs).
    assert!(
        done[3] + Duration::from_millis(3000) <= done[15],
        "answers at {done:?}"
    );
}

#[test]
fn retiring_a_worker_fails_none_of_the_other_requests() {
    let (server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ("MODELSTAGE_WORKER_THREADS", "2"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "3"),
    ]);
    // Passes the timeout at 3 s: its worker is retired.
    let hung = call_later(&server.url, "20000", Duration::ZERO);
    // Runs on the same worker from 1.5 s to 3.5 s: past the retirement.
    let running = call_later(&server.url, "2000", Duration::from_millis(1500));
    // Arrive while both threads are busy; they go to the replacement.
    let waiting: Vec<_> = (0..4)
        .map(|i| call_later(&server.url, &format!("waiting {i}"), Duration::from_millis(2000)))
        .collect();
    let (status, body) = hung.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(running.join().unwrap(), (200, "2000".to_string()));
    for (i, handle) in waiting.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), (200, format!("waiting {i}")));
    }
}

#[test]
fn sigterm_answers_every_request_received_when_the_work_fits_the_grace_period() {
    // 64 requests of 1.5 s on 2 workers x 2 threads: 24 s of work, inside
    // the 30 s grace period.
    let (mut server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "2"),
        ("MODELSTAGE_WORKER_THREADS", "2"),
    ]);
    let handles: Vec<_> = (0..64)
        .map(|_| call_later(&server.url, "1500", Duration::ZERO))
        .collect();
    // Every request is in before the signal: the serving port's in-flight gauge counts the 64
    // and the scrape that reads it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = crate::metrics::scrape(&server.url);
        let in_flight = crate::metrics::sample(&text, "modelstage_http_requests_in_flight", &[]);
        if in_flight.is_some_and(|n| n >= 65.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "64 requests were not all received within 30 s: {in_flight:?} in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    let answered = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|answer| answer == &(200, "1500".to_string()))
        .count();
    assert_eq!(answered, 64, "{}", server.log_text());
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn workers_die_with_the_server() {
    let (mut server, _dir) = sleeper(&[("SAGEMAKER_MODEL_SERVER_WORKERS", "2")]);
    // Keep a hook running, as a killed server would find it.
    let _hook = call_later(&server.url, "20000", Duration::ZERO);
    std::thread::sleep(Duration::from_millis(300));
    let pids = wait_for_workers(&server, 2);
    assert_eq!(pids.len(), 2, "{}", server.log_text());
    assert!(pids.iter().all(|&pid| running(pid)));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| running(pid)) {
        assert!(
            Instant::now() < deadline,
            "workers {pids:?} outlived the killed server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stray_connection_to_the_worker_socket_does_not_stop_replacements() {
    let (server, _dir) = sleeper(&[("SAGEMAKER_MODEL_SERVER_WORKERS", "1")]);
    // The socket the workers connect to: a local process finds it too.
    let prefix = format!("modelstage-{}-", server.child.id());
    let socket = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("workers.sock"))
        .expect("the worker socket");
    // Connect and stay silent (the connection stays open to the end).
    let _stray = std::os::unix::net::UnixStream::connect(&socket);
    std::thread::sleep(Duration::from_millis(100));

    let (status, body) = call(&client(), &server.url, "abort");
    assert_eq!(status, 500, "{body}");
    // The replacement comes up and answers.
    let (status, body) = call(&client(), &server.url, "after");
    assert_eq!((status, body.as_str()), (200, "after"), "{}", server.log_text());
    assert_eq!(wait_for_workers(&server, 2).len(), 2, "{}", server.log_text());
}

#[test]
fn the_worker_memory_cap_costs_the_request_that_hits_it() {
    let (server, _dir) = sleeper(&[
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ("MODELSTAGE_WORKER_MEMORY_MB", "300"),
    ]);
    let client = client();
    let (status, body) = call(&client, &server.url, "alloc:1000");
    assert_eq!(status, 500, "{body}");
    let m = message(&body);
    assert!(
        m.contains("SIGABRT") && m.contains("MODELSTAGE_WORKER_MEMORY_MB"),
        "{m}"
    );
    assert_eq!(
        call(&client, &server.url, "alloc:50"),
        (200, "allocated 50 MB".to_string())
    );
}

/// What one run of the load test saw.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    /// Requests that fail as they should: the abort or slow request itself.
    expected: usize,
    /// Good requests that were running in a process when it crashed.
    crashed_with: usize,
    /// Everything else: losses.
    lost: Vec<String>,
}

/// 64 connections for `seconds`, each sending `good` bodies; every
/// `bad_every`-th connection also sends one `bad` body, which must fail
/// with `bad_status`, at a time of its own in the first 75% of the run.
fn load(url: &str, seconds: u64, good: &str, bad: &str, bad_status: u16, bad_every: usize) -> Tally {
    let began = Instant::now();
    let stop = began + Duration::from_secs(seconds);
    let bad_count = 64 / bad_every;
    let handles: Vec<_> = (0..64)
        .map(|c| {
            let (url, good, bad) = (url.to_string(), good.to_string(), bad.to_string());
            std::thread::spawn(move || {
                let client = client();
                let mut tally = Tally::default();
                let mut bad_at = (c % bad_every == 0).then(|| {
                    began + Duration::from_secs(seconds) * 3 / 4 * (c / bad_every) as u32 / bad_count as u32
                });
                while Instant::now() < stop {
                    let is_bad = bad_at.is_some_and(|at| Instant::now() >= at);
                    if is_bad {
                        bad_at = None;
                    }
                    let body = if is_bad { &bad } else { &good };
                    let (status, text) = call(&client, &url, body);
                    if is_bad {
                        if status == bad_status {
                            tally.expected += 1;
                        } else {
                            tally.lost.push(format!("bad request got {status}: {text}"));
                        }
                    } else if status == 200 && text == good {
                        tally.ok += 1;
                    } else if status == 500 && message(&text).contains("during this request") {
                        tally.crashed_with += 1;
                    } else {
                        tally.lost.push(format!("{status}: {text}"));
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        let t = h.join().unwrap();
        total.ok += t.ok;
        total.expected += t.expected;
        total.crashed_with += t.crashed_with;
        total.lost.extend(t.lost);
    }
    total
}

#[test]
fn isolation_holds_at_64_connections() {
    // (timeout, bad body, its status, every how many connections sends one,
    // most good requests it may take with it)
    let scenarios = [
        // Aborts: 16 of the 64 connections abort once each; a crash may
        // cost the one other request running in its process (2 threads),
        // nothing else, and no request waits out a restart as a 503.
        ("60", "abort", 500, 4, 1),
        // Slow requests: 4 connections send one past the 2 s timeout, 1.5 s
        // apart, so that threads stay free for the rest (each holds one
        // for 2 s, and its worker's other thread until the replacement is
        // up): every other request is answered.
        ("2", "5000", 504, 16, 0),
    ];
    for (timeout, bad, status, every, may_take) in scenarios {
        let (server, _dir) = sleeper(&[
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "2"),
            ("MODELSTAGE_WORKER_THREADS", "2"),
            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", timeout),
        ]);
        let t = load(&server.url, 8, "5", bad, status, every);
        assert!(
            t.lost.is_empty(),
            "{bad}: {} lost: {:?}",
            t.lost.len(),
            &t.lost[..t.lost.len().min(5)]
        );
        assert_eq!(t.expected, 64 / every, "{bad}: {t:?}");
        assert!(t.crashed_with <= t.expected * may_take, "{bad}: {t:?}");
        assert!(t.ok > 100, "{bad}: {t:?}");
    }
}
