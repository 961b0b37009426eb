//! Multi-model endpoints end to end (`SAGEMAKER_MULTI_MODEL=true`): the
//! container API as SageMaker calls it, every status code, paging, many
//! featurizer models fitted on different data answering concurrently (each
//! with its own answer), a load failing in `model_fn`, the memory budget
//! (507, and LRU eviction when asked for), a crash while serving one model,
//! and `/invocations` with `X-Amzn-SageMaker-Target-Model` (which the
//! hooks see, as on `/models/{name}/invoke`); the metrics
//! of loads, unloads, 507s and the models loaded move with them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::featurizer::fit_featurizer;
use crate::metrics::{parse_with_prometheus_client, sample, scrape};
use crate::support::*;

const TARGET: &str = "X-Amzn-SageMaker-Target-Model";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `modelstage serve` of `stage` as a multi-model endpoint whose
/// `/opt/ml` is `base`.
pub(crate) fn serve_mme(stage: &str, base: &Path, env: &[(&str, &str)]) -> Server {
    let lib = stage_lib(stage);
    let base = base.to_str().unwrap();
    let mut all = vec![("SAGEMAKER_MULTI_MODEL", "true"), ("SAGEMAKER_BASE_DIR", base)];
    all.extend_from_slice(env);
    let mut server = spawn_serve(&["--stage", lib.to_str().unwrap()], &all);
    wait_ready(&mut server, Duration::from_secs(20));
    server
}

/// `method url+path` with `body` and `headers`: status, headers, body.
fn call(
    method: &str,
    url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    request(method, &format!("{url}{path}"), headers, body)
}

/// `POST /models`: status and body.
fn load(url: &str, name: &str, dir: &Path) -> (u16, String) {
    let body = serde_json::json!({ "model_name": name, "url": dir.to_str().unwrap() }).to_string();
    let (status, _, body) = call("POST", url, "/models", &[], body.as_bytes());
    (status, text(&body))
}

/// `POST /models/{name}/invoke` of a text body: status and body.
fn invoke(url: &str, name: &str, body: &str) -> (u16, String) {
    let (status, _, body) = call(
        "POST",
        url,
        &format!("/models/{name}/invoke"),
        &[("content-type", "text/plain")],
        body.as_bytes(),
    );
    (status, text(&body))
}

/// The names `GET /models` lists, every page followed with `limit`.
fn listed(url: &str, limit: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/models?limit={limit}&next_page_token={t}"),
            None => format!("/models?limit={limit}"),
        };
        let (status, body) = get(url, &path);
        assert_eq!(status, 200, "{}", text(&body));
        let page = json(&body);
        let models = page["models"].as_array().unwrap();
        assert!(models.len() <= limit);
        names.extend(
            models
                .iter()
                .map(|m| m["modelName"].as_str().unwrap().to_string()),
        );
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return names,
        }
    }
}

/// A ballast model folder: answers `tag:...`, holds `mb` MB.
fn ballast_model(dir: &Path, tag: &str, mb: u32) -> PathBuf {
    let model = dir.join(tag);
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("tag"), tag).unwrap();
    std::fs::write(model.join("ballast_mb"), mb.to_string()).unwrap();
    model
}

#[test]
fn mme_api_answers_every_status_and_pages() {
    let dir = tempdir();
    let server = serve_mme("ballast", dir.path(), &[]);
    let url = &server.url;

    // Healthy with no model loaded; nothing listed.
    assert_eq!(ping(url), Some(200));
    assert_eq!(listed(url, 10), Vec::<String>::new());

    let a = ballast_model(dir.path(), "a", 0);
    assert_eq!(load(url, "a", &a).0, 200);
    let (status, body) = load(url, "a", &a);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(r#"model \"a\" is already loaded"#), "{body}");

    // The stage's hooks on that model: Content-Type, Accept and custom attributes pass through.
    let (status, headers, body) = call(
        "POST",
        url,
        "/models/a/invoke",
        &[
            ("content-type", "text/csv"),
            ("accept", "application/x-answer"),
            ("x-amzn-sagemaker-custom-attributes", "trace=1"),
            (TARGET, "a"),
        ],
        b"1,2",
    );
    assert_eq!((status, text(&body).as_str()), (200, "a:text/csv:1,2"));
    assert_eq!(header(&headers, "content-type"), Some("application/x-answer"));
    assert_eq!(
        header(&headers, "x-amzn-sagemaker-custom-attributes"),
        Some("trace=1")
    );

    // 404s name the model.
    let (status, body) = invoke(url, "nope", "x");
    assert_eq!(status, 404);
    assert!(body.contains(r#"model \"nope\" is not loaded"#), "{body}");
    let (status, body) = get(url, "/models/nope");
    assert_eq!(status, 404, "{}", text(&body));
    let (status, body) = get(url, "/models/a");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["modelUrl"], a.to_str().unwrap());
    assert_eq!(json(&body)["modelName"], "a");

    // 400: a body that is not the API's, a folder that does not exist, and
    // model_fn failing: the stage's message, the model name and the path.
    let (status, _, body) = call("POST", url, "/models", &[], b"{\"name\": 1}");
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains("model_name"), "{}", text(&body));
    let (status, body) = load(url, "ghost", &dir.path().join("missing"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a folder"), "{body}");
    let untagged = dir.path().join("untagged");
    std::fs::create_dir_all(&untagged).unwrap();
    let (status, body) = load(url, "broken", &untagged);
    assert_eq!(status, 400, "{body}");
    let error = json(body.as_bytes());
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("no tag in"), "{message}");
    assert!(message.contains(r#""broken""#), "{message}");
    assert!(message.contains(untagged.to_str().unwrap()), "{message}");
    assert!(message.contains("model_fn"), "{message}");
    assert!(
        message.starts_with("stage ballast cannot load model"),
        "{message}"
    );
    assert_eq!(error["stage"], "ballast");
    // A failed load leaves nothing behind: the name is free again.
    assert_eq!(get(url, "/models/broken").0, 404);

    // Paging: 7 models, pages of 3.
    for tag in ["b", "c", "d", "e", "f", "g"] {
        let model = ballast_model(dir.path(), tag, 0);
        assert_eq!(load(url, tag, &model).0, 200);
    }
    assert_eq!(listed(url, 3), ["a", "b", "c", "d", "e", "f", "g"]);
    let (status, body) = get(url, "/models?limit=3");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["nextPageToken"], "c");
    let (status, body) = get(url, "/models?limit=3&next_page_token=f");
    assert_eq!(status, 200);
    let last = json(&body);
    assert_eq!(last["models"].as_array().unwrap().len(), 1);
    assert!(last.get("nextPageToken").is_none(), "{last}");
    assert_eq!(get(url, "/models?limit=0").0, 400);

    // DELETE: 200 once released, then 404; the model no longer answers.
    let (status, _, _) = call("DELETE", url, "/models/a", &[], b"");
    assert_eq!(status, 200);
    let (status, _, _) = call("DELETE", url, "/models/a", &[], b"");
    assert_eq!(status, 404);
    assert_eq!(invoke(url, "a", "x").0, 404);
    assert_eq!(invoke(url, "b", "x"), (200, "b:text/plain:x".to_string()));
    assert_eq!(listed(url, 100), ["b", "c", "d", "e", "f", "g"]);

    // Metrics: 7 loads, 2 failed (the 409 is no load), 1 unload, 6 models;
    // the routes are labelled by pattern, not by model name.
    let scraped = scrape(url);
    let stage = "stage=\"ballast\"";
    let loads = |outcome: &str| {
        let outcome = format!("outcome=\"{outcome}\"");
        sample(&scraped, "modelstage_mme_model_loads_total", &[stage, &outcome])
    };
    assert_eq!(loads("loaded"), Some(7.0), "{scraped}");
    assert_eq!(loads("failed"), Some(2.0), "{scraped}");
    assert_eq!(loads("insufficient_storage"), Some(0.0), "{scraped}");
    assert_eq!(
        sample(
            &scraped,
            "modelstage_mme_model_load_duration_seconds_count",
            &[stage]
        ),
        Some(7.0)
    );
    assert_eq!(
        sample(
            &scraped,
            "modelstage_mme_model_unloads_total",
            &["reason=\"request\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&scraped, "modelstage_mme_models_loaded", &[stage]),
        Some(6.0)
    );
    let requests = |route: &str, status: &str| {
        let (route, status) = (format!("route=\"{route}\""), format!("status=\"{status}\""));
        sample(&scraped, "modelstage_http_requests_total", &[&route, &status])
    };
    assert_eq!(requests("/models", "409"), Some(1.0), "{scraped}");
    // GET /models/nope, GET /models/broken, and the second DELETE.
    assert_eq!(requests("/models/{name}", "404"), Some(3.0), "{scraped}");
    assert_eq!(requests("/models/{name}/invoke", "200"), Some(2.0), "{scraped}");

    // A multi-model endpoint's /invocations needs the target header.
    let (status, _, body) = call("POST", url, "/invocations", &[], b"x");
    assert_eq!(status, 400);
    assert!(text(&body).contains(TARGET), "{}", text(&body));
}

#[test]
fn mme_invocations_load_the_target_model_on_first_use() {
    let dir = tempdir();
    let models = dir.path().join("model");
    std::fs::create_dir_all(&models).unwrap();
    // A folder, and the same kind of model packed as a tarball.
    ballast_model(&models, "folder", 0);
    ballast_tarball(&models, "packed", 0);
    let server = serve_mme("ballast", dir.path(), &[]);
    let url = &server.url;

    let post = |target: &str| {
        let (status, _, body) = call(
            "POST",
            url,
            "/invocations",
            &[("content-type", "text/plain"), (TARGET, target)],
            b"hi",
        );
        (status, text(&body))
    };
    // Eight first requests at once for one model: all answered, one load.
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| post("packed.tar.gz"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer, &(200, "packed:text/plain:hi".to_string()));
    }
    let log = server.wait_for_log(r#"model "packed.tar.gz" of ballast loaded"#);
    assert_eq!(
        log.matches(r#"model "packed.tar.gz" of ballast loaded"#).count(),
        1,
        "{log}"
    );
    assert_eq!(post("folder"), (200, "folder:text/plain:hi".to_string()));
    assert_eq!(listed(url, 10), ["folder", "packed.tar.gz"]);

    // Names that leave the model folder, or name nothing, are refused.
    let (status, body) = post("../model/folder");
    assert_eq!(status, 400, "{body}");
    let (status, body) = post("/etc");
    assert_eq!(status, 400, "{body}");
    let (status, body) = post("absent.tar.gz");
    assert_eq!(status, 404, "{body}");
    let message = json(body.as_bytes())["message"].as_str().unwrap().to_string();
    assert!(message.contains(r#""absent.tar.gz""#), "{message}");
}

/// `POST {path}` of the body `target` with `headers`: what the ballast
/// stage's hooks saw as the target model.
fn target_seen(url: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("content-type", "text/plain")];
    all.extend_from_slice(headers);
    let (status, _, body) = call("POST", url, path, &all, b"target");
    (status, text(&body))
}

#[test]
fn mme_hooks_see_the_target_model() {
    let dir = tempdir();
    let models = dir.path().join("model");
    std::fs::create_dir_all(&models).unwrap();
    ballast_model(&models, "folder", 0);
    let server = serve_mme("ballast", dir.path(), &[]);
    let url = &server.url;

    // The SDK's local mode: /invocations naming the model.
    assert_eq!(
        target_seen(url, "/invocations", &[(TARGET, "folder")]),
        (200, "folder:target=folder".to_string())
    );
    // The platform's call: the header as the client sent it, else the model's name.
    assert_eq!(load(url, "a", &ballast_model(dir.path(), "a", 0)).0, 200);
    assert_eq!(
        target_seen(url, "/models/a/invoke", &[]),
        (200, "a:target=a".to_string())
    );
    assert_eq!(
        target_seen(url, "/models/a/invoke", &[(TARGET, "a.tar.gz")]),
        (200, "a:target=a.tar.gz".to_string())
    );
    // A header past its bound is refused, naming it.
    let long = "m".repeat(1025);
    for path in ["/models/a/invoke", "/invocations"] {
        let (status, body) = target_seen(url, path, &[(TARGET, &long)]);
        assert_eq!(status, 400, "{path}: {body}");
        let message = json(body.as_bytes())["message"].as_str().unwrap().to_string();
        assert!(message.contains(TARGET), "{path}: {message}");
        assert!(message.len() < 600, "the value is excerpted: {message}");
    }

    // A single-model endpoint passes the header through too, and none when absent.
    let single = serve(&stage_lib("ballast"), &ballast_model(dir.path(), "one", 0), &[]);
    assert_eq!(
        target_seen(&single.url, "/invocations", &[(TARGET, "x.tar.gz")]),
        (200, "one:target=x.tar.gz".to_string())
    );
    assert_eq!(
        target_seen(&single.url, "/invocations", &[]),
        (200, "one:target=-".to_string())
    );
}

/// Fits `n` featurizer models, each on a different slice of abalone, and
/// returns their `model.tar.gz` files.
pub(crate) fn fit_featurizers(dir: &Path, n: usize) -> Vec<PathBuf> {
    let rows: Vec<String> = std::fs::read_to_string(abalone_csv())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (0..n)
        .map(|i| {
            let data = dir.join(format!("data-{i}"));
            std::fs::create_dir_all(&data).unwrap();
            let start = i * 300;
            let slice: String = rows[start..start + 400]
                .iter()
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(data.join("abalone.csv"), slice).unwrap();
            fit_featurizer(
                &data,
                &dir.join(format!("artifacts-{i}")),
                &format!("featurizer-{i}"),
            )
        })
        .collect()
}

#[test]
fn mme_featurizers_fitted_on_different_data_each_answer_their_own() {
    const MODELS: usize = 8;
    let dir = tempdir();
    let tarballs = fit_featurizers(dir.path(), MODELS);
    let base = dir.path().join("opt-ml");
    let model_root = base.join("model");
    std::fs::create_dir_all(&model_root).unwrap();
    let request =
        b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\nF,0.53,0.42,0.135,0.677,0.2565,0.1415,0.21\n";

    // What each model answers on its own, served alone.
    let mut expected = Vec::new();
    for (i, tar_gz) in tarballs.iter().enumerate() {
        std::fs::copy(tar_gz, model_root.join(format!("m{i}.tar.gz"))).unwrap();
        let folder = dir.path().join(format!("unpacked-{i}"));
        untar_model(tar_gz, &folder);
        if i < 2 {
            let single = serve(&stage_lib("featurizer"), &folder, &[]);
            let (status, _, body) = post(&single.url, "text/csv", Some("text/csv"), request);
            assert_eq!(status, 200, "{}", text(&body));
            expected.push(text(&body));
        }
    }

    let server = serve_mme("featurizer", &base, &[("SAGEMAKER_MODEL_SERVER_WORKERS", "2")]);
    let url = &server.url;
    let target = |i: usize| {
        let name = format!("m{i}.tar.gz");
        let (status, _, body) = call(
            "POST",
            url,
            "/invocations",
            &[
                ("content-type", "text/csv"),
                ("accept", "text/csv"),
                (TARGET, &name),
            ],
            request,
        );
        assert_eq!(status, 200, "{}", text(&body));
        (i, text(&body))
    };
    // Every model's first requests at once, four per model, then more.
    let answers: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..MODELS * 4)
            .map(|k| s.spawn(move || (0..5).map(|_| target(k % MODELS)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut by_model: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, answer) in answers {
        by_model.entry(i).or_default().insert(answer);
    }
    // One answer per model, and eight different ones: each model answers with its own fit.
    assert_eq!(by_model.len(), MODELS);
    assert!(by_model.values().all(|a| a.len() == 1), "{by_model:?}");
    let distinct: BTreeSet<&String> = by_model.values().flatten().collect();
    assert_eq!(distinct.len(), MODELS, "{by_model:?}");
    for (i, answer) in expected.iter().enumerate() {
        assert_eq!(by_model[&i].first().unwrap(), answer, "model {i}");
    }
    let log = server.log_text();
    for i in 0..MODELS {
        let line = format!("model \"m{i}.tar.gz\" of featurizer loaded");
        assert_eq!(log.matches(&line).count(), 1, "{log}");
    }

    // The same models loaded by POST /models from their folders, invoked by name.
    std::thread::scope(|s| {
        for i in 0..MODELS {
            let folder = dir.path().join(format!("unpacked-{i}"));
            s.spawn(move || assert_eq!(load(url, &format!("f{i}"), &folder).0, 200));
        }
    });
    std::thread::scope(|s| {
        for i in 0..MODELS * 2 {
            let expected = by_model[&(i % MODELS)].first().unwrap().clone();
            s.spawn(move || {
                for _ in 0..5 {
                    let (status, _, body) = call(
                        "POST",
                        url,
                        &format!("/models/f{}/invoke", i % MODELS),
                        &[("content-type", "text/csv"), ("accept", "text/csv")],
                        request,
                    );
                    assert_eq!((status, text(&body)), (200, expected.clone()));
                }
            });
        }
    });
    assert_eq!(listed(url, 5).len(), MODELS * 2);
}

/// The multi-model metrics of a scrape: models loaded, loads that loaded,
/// loads answered 507, unloads asked for, unloads to make room.
fn mme_metrics(text: &str) -> [f64; 5] {
    let value = |name: &str, label: &str| sample(text, name, &[label]).unwrap_or(f64::NAN);
    [
        value("modelstage_mme_models_loaded", "stage=\"ballast\""),
        value("modelstage_mme_model_loads_total", "outcome=\"loaded\""),
        value(
            "modelstage_mme_model_loads_total",
            "outcome=\"insufficient_storage\"",
        ),
        value("modelstage_mme_model_unloads_total", "reason=\"request\""),
        value("modelstage_mme_model_unloads_total", "reason=\"evicted\""),
    ]
}

#[test]
fn mme_budget_answers_507_and_evicts_least_recently_used_when_asked() {
    // One worker, models of 100 MB, a budget of 400 MB: with the server's and
    // the worker's own few tens of MB, three models fit and a fourth does not
    // (the margin holds for anything between 0 and about 95 MB of their own).
    let dir = tempdir();
    let models: Vec<PathBuf> = (0..5)
        .map(|i| ballast_model(dir.path(), &format!("m{i}"), 100))
        .collect();
    let env = [
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ("MODELSTAGE_MME_MEMORY_MB", "400"),
    ];
    {
        let server = serve_mme("ballast", dir.path(), &env);
        let url = &server.url;
        for (i, model) in models.iter().take(3).enumerate() {
            let (status, body) = load(url, &format!("m{i}"), model);
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = load(url, "m3", &models[3]);
        assert_eq!(status, 507, "{body}");
        assert!(body.contains("MODELSTAGE_MME_MEMORY_MB"), "{body}");
        assert!(body.contains("InsufficientStorage"), "{body}");
        // Nothing was unloaded to make room: that is the platform's call.
        assert_eq!(listed(url, 10), ["m0", "m1", "m2"]);
        let text = scrape(url);
        assert_eq!(mme_metrics(&text), [3.0, 3.0, 1.0, 0.0, 0.0], "{text}");
        // Room made by the platform: the load fits again.
        assert_eq!(call("DELETE", url, "/models/m1", &[], b"").0, 200);
        assert_eq!(mme_metrics(&scrape(url)), [2.0, 3.0, 1.0, 1.0, 0.0]);
        let (status, body) = load(url, "m3", &models[3]);
        assert_eq!(status, 200, "{body}");
        let text = scrape(url);
        assert_eq!(mme_metrics(&text), [3.0, 4.0, 1.0, 1.0, 0.0], "{text}");
        assert_eq!(
            sample(&text, "modelstage_mme_model_load_duration_seconds_count", &[]),
            Some(4.0)
        );
        let families = parse_with_prometheus_client(&text);
        for family in [
            "modelstage_mme_models_loaded gauge",
            "modelstage_mme_model_loads counter",
            "modelstage_mme_model_unloads counter",
            "modelstage_mme_model_load_duration_seconds histogram",
        ] {
            assert!(
                families.iter().any(|f| f == family),
                "{family} missing from {families:?}"
            );
        }
    }
    let mut lru_env = env.to_vec();
    lru_env.push(("MODELSTAGE_MME_EVICT", "lru"));
    let server = serve_mme("ballast", dir.path(), &lru_env);
    let url = &server.url;
    for (i, model) in models.iter().take(3).enumerate() {
        assert_eq!(load(url, &format!("m{i}"), model).0, 200);
    }
    // m0 is used, so m1 is the least recently used when m3 needs room.
    assert_eq!(invoke(url, "m0", "x"), (200, "m0:text/plain:x".to_string()));
    let (status, body) = load(url, "m3", &models[3]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed(url, 10), ["m0", "m2", "m3"]);
    let text = scrape(url);
    assert_eq!(mme_metrics(&text), [3.0, 4.0, 0.0, 0.0, 1.0], "{text}");
    assert_eq!(invoke(url, "m1", "x").0, 404);
    assert_eq!(invoke(url, "m3", "x"), (200, "m3:text/plain:x".to_string()));
    server.wait_for_log(r#"unloading model "m1" of ballast, the least recently used"#);
}

#[test]
fn mme_eviction_that_cannot_make_room_unloads_nothing() {
    // A budget of 100 MB: the worker's own few tens of MB and one model of
    // 100 MB fit only while no model is loaded, so a second load is over it
    // even with the first evicted: 507, and the first stays loaded.
    let dir = tempdir();
    let env = [
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "1"),
        ("MODELSTAGE_MME_MEMORY_MB", "100"),
        ("MODELSTAGE_MME_EVICT", "lru"),
    ];
    let server = serve_mme("ballast", dir.path(), &env);
    let url = &server.url;
    let (status, body) = load(url, "m0", &ballast_model(dir.path(), "m0", 100));
    assert_eq!(status, 200, "{body}");
    let (status, body) = load(url, "m1", &ballast_model(dir.path(), "m1", 100));
    assert_eq!(status, 507, "{body}");
    assert_eq!(listed(url, 10), ["m0"]);
    assert_eq!(invoke(url, "m0", "x"), (200, "m0:text/plain:x".to_string()));
    let text = scrape(url);
    assert_eq!(mme_metrics(&text), [1.0, 1.0, 1.0, 0.0, 0.0], "{text}");
}

#[test]
fn mme_a_crash_serving_one_model_costs_its_request_and_the_models_come_back() {
    let dir = tempdir();
    let server = serve_mme("ballast", dir.path(), &[("SAGEMAKER_MODEL_SERVER_WORKERS", "2")]);
    let url = &server.url;
    for tag in ["a", "b"] {
        assert_eq!(load(url, tag, &ballast_model(dir.path(), tag, 0)).0, 200);
    }
    let (status, body) = invoke(url, "a", "abort");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("SIGABRT"), "{body}");
    // The other model answers at once, on the other worker.
    assert_eq!(invoke(url, "b", "x"), (200, "b:text/plain:x".to_string()));
    // The replacement reloads both models before it takes requests.
    let log = server.wait_for_log("reloaded 2 model(s)");
    assert!(log.contains("reloaded 2 model(s)"), "{log}");
    for _ in 0..20 {
        assert_eq!(invoke(url, "a", "y"), (200, "a:text/plain:y".to_string()));
        assert_eq!(invoke(url, "b", "y"), (200, "b:text/plain:y".to_string()));
    }
    assert_eq!(listed(url, 10), ["a", "b"]);
}

/// Packs a ballast model as `<dir>/<tag>.tar.gz`.
fn ballast_tarball(dir: &Path, tag: &str, mb: u32) -> PathBuf {
    let staging = tempdir();
    let model = ballast_model(staging.path(), tag, mb);
    let tar_gz = dir.join(format!("{tag}.tar.gz"));
    let status = std::process::Command::new("tar")
        .args([
            "-czf",
            tar_gz.to_str().unwrap(),
            "-C",
            model.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    tar_gz
}

#[test]
fn mme_local_deploy_loads_on_first_use_and_evicts_on_507() {
    let dir = tempdir();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for tag in ["a", "b", "c", "d"] {
        ballast_tarball(&models, tag, 100);
    }
    // One worker and room for three models of 100 MB: the fourth load answers 507 and the router
    // unloads the least recently used.
    let document = serde_json::json!({
        "ModelName": "many",
        "PrimaryContainer": {
            "Image": stage_lib("ballast").to_str().unwrap(),
            "Mode": "MultiModel",
            "ModelDataUrl": format!("file://{}/", models.display()),
            "Environment": {
                "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                "MODELSTAGE_MME_MEMORY_MB": "400"
            }
        }
    });
    let request = dir.path().join("model.json");
    std::fs::write(&request, document.to_string()).unwrap();
    let deploy = crate::pipeline::Deploy::start(&["--request", request.to_str().unwrap()]);
    let url = &deploy.url;
    let invoke_cli = |target: &str, body: &str| invoke_target(url, target, body);

    // Concurrent first requests for one model: one load, every answer its own.
    let answers: Vec<(bool, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| invoke_cli("a.tar.gz", "hi"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (ok, out, err) in &answers {
        assert!(ok, "{err}");
        assert_eq!(out, "a:text/plain:hi");
    }
    assert_eq!(
        deploy
            .log_text()
            .matches(r#"loaded model "a.tar.gz" as a.tar.gz"#)
            .count(),
        1,
        "{}",
        deploy.log_text()
    );
    // The router put the model where SageMaker does and asked the container to load it.
    let container = get(url, "/ping").0;
    assert_eq!(container, 200);

    for tag in ["b", "c"] {
        let (ok, out, err) = invoke_cli(&format!("{tag}.tar.gz"), "x");
        assert!(ok, "{err}");
        assert_eq!(out, format!("{tag}:text/plain:x"));
    }
    // a is used again, so b is the least recently used when d needs room.
    assert!(invoke_cli("a.tar.gz", "again").0);
    let (ok, out, err) = invoke_cli("d.tar.gz", "x");
    assert!(ok, "{err}\n{}", deploy.log_text());
    assert_eq!(out, "d:text/plain:x");
    let log = deploy.log_text();
    assert!(
        log.contains("unloading b.tar.gz, the least recently used"),
        "{log}"
    );
    // b comes back on its next use (c is then the least recently used).
    let (ok, out, err) = invoke_cli("b.tar.gz", "back");
    assert!(ok, "{err}");
    assert_eq!(out, "b:text/plain:back");

    // The router's own errors: no target, a target outside the folder, one that is not there.
    let (status, _, body) = call("POST", url, "/invocations", &[], b"x");
    assert_eq!(status, 400, "{}", text(&body));
    assert!(text(&body).contains(TARGET), "{}", text(&body));
    let (status, _, _) = call("POST", url, "/invocations", &[(TARGET, "../x.tar.gz")], b"x");
    assert_eq!(status, 400);
    let (status, _, body) = call("POST", url, "/invocations", &[(TARGET, "zz.tar.gz")], b"x");
    assert_eq!(status, 404, "{}", text(&body));
}

/// `modelstage invoke URL --target-model TARGET` of a text body: success, stdout, stderr.
fn invoke_target(url: &str, target: &str, body: &str) -> (bool, String, String) {
    let out = std::process::Command::new(bin())
        .args(["invoke", url, "--content-type", "text/plain", "--body", body])
        .args(["--target-model", target])
        .output()
        .unwrap();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn mme_upstream_router_loads_each_target_into_a_running_container() {
    let dir = tempdir();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for tag in ["a", "b"] {
        ballast_tarball(&models, tag, 0);
    }
    let server = serve_mme("ballast", dir.path(), &[]);
    let unpacked = dir.path().join("unpacked");
    let upstream = crate::pipeline::Deploy::spawn(&[
        "--upstream",
        &server.url,
        "--mode",
        "MultiModel",
        "--model-data",
        models.to_str().unwrap(),
        "--models-dir",
        unpacked.to_str().unwrap(),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ping(&upstream.url) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "{}", upstream.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }

    // Each target answers with its own model, the first use and the next.
    for round in ["first", "again"] {
        for tag in ["a", "b"] {
            let (ok, out, err) = invoke_target(&upstream.url, &format!("{tag}.tar.gz"), round);
            assert!(ok, "{err}\n{}", upstream.log_text());
            assert_eq!(out, format!("{tag}:text/plain:{round}"));
        }
    }
    // The router unpacked each where it said, and the running container loaded each once.
    assert_eq!(listed(&server.url, 10), ["a.tar.gz", "b.tar.gz"]);
    assert_eq!(
        std::fs::read_to_string(unpacked.join("b.tar.gz/model/tag")).unwrap(),
        "b"
    );
    let log = upstream.log_text();
    assert_eq!(
        log.matches(r#"loaded model "a.tar.gz" as a.tar.gz"#).count(),
        1,
        "{log}"
    );
    // The hooks see the target model the client named.
    let (status, body) = target_seen(&upstream.url, "/invocations", &[(TARGET, "b.tar.gz")]);
    assert_eq!((status, body.as_str()), (200, "b:target=b.tar.gz"));
    // A model that is not in --model-data.
    let (status, _, body) = call(
        "POST",
        &upstream.url,
        "/invocations",
        &[(TARGET, "zz.tar.gz")],
        b"x",
    );
    assert_eq!(status, 404, "{}", text(&body));

    // The flags say what is missing.
    let refused = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args([
                "deploy",
                "--upstream",
                &server.url,
                "--mode",
                "MultiModel",
                "--port",
                "0",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        text(&out.stderr)
    };
    assert!(refused(&[]).contains("needs --model-data DIR"));
    let err = refused(&[
        "--upstream",
        &server.url,
        "--model-data",
        models.to_str().unwrap(),
    ]);
    assert!(err.contains("give one --upstream, got 2"), "{err}");
    let err = refused(&["--model-data", dir.path().join("absent").to_str().unwrap()]);
    assert!(err.contains("is not a folder"), "{err}");
}

#[test]
fn mme_local_deploy_of_a_docker_image_loads_into_opt_ml_models() {
    if !docker_images() {
        return;
    }
    let dir = tempdir();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let request = b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n";
    // Two featurizers fitted on different data, and what each answers served alone.
    let mut expected = Vec::new();
    for (i, tar_gz) in fit_featurizers(dir.path(), 2).iter().enumerate() {
        std::fs::copy(tar_gz, models.join(format!("f{i}.tar.gz"))).unwrap();
        let folder = dir.path().join(format!("unpacked-{i}"));
        untar_model(tar_gz, &folder);
        let single = serve(&stage_lib("featurizer"), &folder, &[]);
        let (status, _, body) = post(&single.url, "text/csv", Some("text/csv"), request);
        assert_eq!(status, 200, "{}", text(&body));
        expected.push(text(&body));
    }
    assert_ne!(expected[0], expected[1]);
    let document = serde_json::json!({
        "PrimaryContainer": {
            "Image": "modelstage/featurizer:latest",
            "Mode": "MultiModel",
            "ModelDataUrl": format!("file://{}/", models.display())
        }
    });
    let path = dir.path().join("model.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let deploy = crate::pipeline::Deploy::start(&["--request", path.to_str().unwrap()]);
    for _ in 0..2 {
        for (i, answer) in expected.iter().enumerate() {
            let target = format!("f{i}.tar.gz");
            let (status, _, body) = call(
                "POST",
                &deploy.url,
                "/invocations",
                &[
                    ("content-type", "text/csv"),
                    ("accept", "text/csv"),
                    (TARGET, &target),
                ],
                request,
            );
            assert_eq!(status, 200, "{}\n{}", text(&body), deploy.log_text());
            assert_eq!(&text(&body), answer, "model {i}");
        }
    }
}

#[test]
fn mme_a_load_that_crashes_its_workers_fails_alone() {
    let dir = tempdir();
    let server = serve_mme("ballast", dir.path(), &[("SAGEMAKER_MODEL_SERVER_WORKERS", "2")]);
    let url = &server.url;
    assert_eq!(load(url, "a", &ballast_model(dir.path(), "a", 0)).0, 200);
    let (status, body) = load(url, "boom", &ballast_model(dir.path(), "abort", 0));
    assert_eq!(status, 500, "{body}");
    let message = json(body.as_bytes())["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(r#"ended while loading model "boom""#),
        "{message}"
    );
    // The endpoint keeps its other model, and the workers that replace the crashed ones do not
    // load the failed one again.
    assert_eq!(listed(url, 10), ["a"]);
    server.wait_for_log("reloaded 1 model(s)");
    for _ in 0..10 {
        assert_eq!(invoke(url, "a", "x"), (200, "a:text/plain:x".to_string()));
    }
    assert_eq!(invoke(url, "boom", "x").0, 404);
    assert_eq!(load(url, "b", &ballast_model(dir.path(), "b", 0)).0, 200);
    assert_eq!(invoke(url, "b", "x"), (200, "b:text/plain:x".to_string()));
}
