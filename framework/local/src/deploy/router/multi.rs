//! A multi-model endpoint (`"Mode": "MultiModel"`): what SageMaker's front end does in front of
//! the container. Each request names its model in `X-Amzn-SageMaker-Target-Model`, a
//! `*.tar.gz` under the model's `ModelDataUrl` folder. On first use the router unpacks it
//! (safely, with the `MODELSTAGE_UNPACK_*` bounds) into the container's models folder
//! (`/opt/ml/models/{name}/model`), asks the container to load it (`POST /models`), then
//! invokes it (`POST /models/{name}/invoke`, with the target header, which the stage's hooks
//! see as `Context::target_model`). When the container answers 507 (no room), the
//! least recently used model is unloaded (`DELETE /models/{name}`) and the load retried.
//! Concurrent first requests for one model load it once: the others wait for that load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use actix_web::http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use modelstage_contract::excerpt::quoted;
use modelstage_runtime::serve::mme::registry::target_problem;
use modelstage_runtime::serve::{EdgeError, EdgeRules, Invocation, REQUEST_ID_HEADER};
use tokio::sync::watch;

use super::hop::{self, HopError, HopReply, HopRequest};
use super::inbound::{self, CUSTOM_ATTRIBUTES_HEADER};
use super::{RouterConfig, Target};
use crate::container_client::ContainerClient;

pub const TARGET_MODEL_HEADER: &str = "x-amzn-sagemaker-target-model";

/// An answer the client gets instead of the model's: a status and a JSON body.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    body: String,
}

type Done = Option<Result<(), Failure>>;

#[derive(Debug)]
enum Slot {
    Loading(watch::Receiver<Done>),
    Loaded { last_used: u64 },
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<String, Slot>,
    clock: u64,
}

/// The models of a multi-model endpoint, as the router knows them.
#[derive(Debug)]
pub struct Models {
    /// The `ModelDataUrl` folder holding the model archives.
    source: PathBuf,
    /// The container's models folder, seen from here: where archives are unpacked.
    local_root: PathBuf,
    /// The same folder as the container sees it (`/opt/ml/models` in a Docker container).
    container_root: PathBuf,
    inner: Mutex<Inner>,
}

impl Models {
    pub fn new(source: PathBuf, local_root: PathBuf, container_root: PathBuf) -> Models {
        Models {
            source,
            local_root,
            container_root,
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container gave up `name` (it restarted, say): the next request loads it again.
    fn forget(&self, name: &str) {
        let mut inner = self.lock();
        if matches!(inner.slots.get(name), Some(Slot::Loaded { .. })) {
            inner.slots.remove(name);
        }
    }
}

/// The name a target model is loaded under in the container: the target itself when it is made
/// of `A-Z a-z 0-9 . _ -` (so it reads well in the container's log), else a digest of it (a
/// target such as `group/a.tar.gz` cannot be one segment of `/models/{name}`).
fn container_name(target: &str) -> String {
    if target
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return target.to_string();
    }
    // FNV-1a: stable across runs, and collisions only matter within one endpoint's targets.
    let digest = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("model-{digest:016x}")
}

fn json_failure(status: u16, label: &str, message: &str, request_id: &str) -> Failure {
    Failure {
        status,
        body: EdgeError::new(status, label, message)
            .request_id(request_id)
            .body(),
    }
}

/// The container's own answer, passed on.
fn passed_on(reply: HopReply) -> Failure {
    Failure {
        status: reply.status,
        body: String::from_utf8_lossy(&reply.body).into_owned(),
    }
}

fn hop_failure(e: HopError, target: &Target, config: &RouterConfig, request_id: &str) -> Failure {
    let (status, message) = e.answer(&target.name, config.hop_timeout);
    json_failure(status, &config.label, &message, request_id)
}

/// `POST /invocations` of a multi-model endpoint.
pub async fn invocations(
    req: HttpRequest,
    payload: web::Payload,
    config: web::Data<RouterConfig>,
    rules: web::Data<EdgeRules>,
    client: web::Data<ContainerClient>,
) -> HttpResponse {
    let headers = req.headers();
    let request_id = inbound::request_id(headers);
    let label = config.label.as_str();
    let wanted = headers
        .get(TARGET_MODEL_HEADER)
        .map(|v| v.to_str().map(str::trim));
    let target = match wanted {
        None | Some(Ok("")) => Err(
            "this is a multi-model endpoint: name the model in the X-Amzn-SageMaker-Target-Model header \
             (modelstage invoke --target-model a.tar.gz)"
                .to_string(),
        ),
        Some(Err(_)) => Err("the X-Amzn-SageMaker-Target-Model header is not visible ASCII".to_string()),
        Some(Ok(t)) => match target_problem(t) {
            Some(problem) => Err(problem),
            None => Ok(t.to_string()),
        },
    };
    let target = match target {
        Ok(t) => t,
        Err(message) => {
            return EdgeError::new(400, label, message)
                .request_id(request_id.as_str())
                .closing(payload)
                .respond()
        }
    };
    // The edge's checks come after the target's: a request for no model is refused unread.
    // The container enforces its own payload limit; the router only bounds what it reads.
    let body = match Invocation::read(&req, payload, &rules, request_id.clone()).await {
        Ok(invocation) => invocation.body,
        Err(refused) => return refused.respond(),
    };
    let name = container_name(&target);
    let container = &config.targets[0];
    let path = format!("/models/{name}/invoke");
    for attempt in 0..2 {
        if let Err(failure) = ensure(&config, &client, &target, &name, &request_id).await {
            return inbound::json_response(failure.status, failure.body, &request_id);
        }
        let request = HopRequest {
            content_type: headers.get(CONTENT_TYPE),
            accept: headers.get(ACCEPT),
            custom_attributes: headers.get(CUSTOM_ATTRIBUTES_HEADER),
            target_model: headers.get(TARGET_MODEL_HEADER),
            request_id: &request_id,
            body: body.clone(),
        };
        let reply = match hop::send(&client, container, &path, request, None).await {
            Ok(reply) => reply,
            Err(e) => {
                let failure = hop_failure(e, container, &config, &request_id);
                return inbound::json_response(failure.status, failure.body, &request_id);
            }
        };
        if reply.status == 404 && attempt == 0 {
            // The container no longer holds it (it restarted): load it again, once.
            if let Some(models) = &config.models {
                models.forget(&name);
            }
            continue;
        }
        let mut response = HttpResponse::build(
            actix_web::http::StatusCode::from_u16(reply.status)
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
        );
        if let Some(ct) = reply.content_type {
            response.insert_header((CONTENT_TYPE, ct));
        }
        if let Some(attrs) = reply.custom_attributes {
            response.insert_header((CUSTOM_ATTRIBUTES_HEADER, attrs));
        }
        response.insert_header((REQUEST_ID_HEADER, request_id));
        return response.body(reply.body);
    }
    unreachable!("the second attempt always answers")
}

/// Loads `target` into the container as `name` unless it is loaded or loading; waits for a load
/// in progress. The load runs as a task of its own, so a client that goes away does not leave
/// it half done.
async fn ensure(
    config: &web::Data<RouterConfig>,
    client: &web::Data<ContainerClient>,
    target: &str,
    name: &str,
    request_id: &str,
) -> Result<(), Failure> {
    let Some(models) = &config.models else {
        return Err(json_failure(
            500,
            &config.label,
            "the endpoint has no models folder",
            request_id,
        ));
    };
    loop {
        let waiting = {
            let mut inner = models.lock();
            inner.clock += 1;
            let clock = inner.clock;
            match inner.slots.get_mut(name) {
                Some(Slot::Loaded { last_used }) => {
                    *last_used = clock;
                    return Ok(());
                }
                Some(Slot::Loading(rx)) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inner.slots.insert(name.to_string(), Slot::Loading(rx.clone()));
                    let (config, client) = (config.clone(), client.clone());
                    let (target, name, request_id) =
                        (target.to_string(), name.to_string(), request_id.to_string());
                    actix_web::rt::spawn(async move {
                        let outcome = load(&config, &client, &target, &name, &request_id).await;
                        if let Some(models) = &config.models {
                            let mut inner = models.lock();
                            inner.clock += 1;
                            let clock = inner.clock;
                            match outcome {
                                Ok(()) => inner.slots.insert(name, Slot::Loaded { last_used: clock }),
                                Err(_) => inner.slots.remove(&name),
                            };
                        }
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        let mut rx = waiting;
        let failure = match rx.wait_for(Option::is_some).await {
            Ok(done) => match done.as_ref() {
                Some(Err(failure)) => Some(failure.clone()),
                _ => None,
            },
            Err(_) => Some(json_failure(
                500,
                &config.label,
                "the load of this model stopped",
                request_id,
            )),
        };
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
}

/// Unpacks `target` and has the container load it, making room on 507 by unloading the least
/// recently used model.
async fn load(
    config: &RouterConfig,
    client: &ContainerClient,
    target: &str,
    name: &str,
    request_id: &str,
) -> Result<(), Failure> {
    let label = &config.label;
    let Some(models) = &config.models else {
        return Err(json_failure(
            500,
            label,
            "the endpoint has no models folder",
            request_id,
        ));
    };
    let archive = models.source.join(target);
    if !archive.is_file() {
        let message = format!(
            "no model {} in {} (X-Amzn-SageMaker-Target-Model names a model.tar.gz under the model's \
             ModelDataUrl)",
            quoted(target.as_bytes()),
            models.source.display()
        );
        return Err(json_failure(404, label, &message, request_id));
    }
    let local = models.local_root.join(name);
    let unpacked = {
        let (archive, local) = (archive.clone(), local.clone());
        actix_web::rt::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&local);
            modelstage_runtime::archive::unpack(&archive, &local.join("model"))
        })
        .await
    };
    match unpacked {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let message = format!(
                "cannot unpack model {} ({}): {e:#}",
                quoted(target.as_bytes()),
                archive.display()
            );
            return Err(json_failure(400, label, &message, request_id));
        }
        Err(e) => return Err(json_failure(500, label, &e.to_string(), request_id)),
    }
    let container = &config.targets[0];
    let url = models.container_root.join(name).join("model");
    let document = serde_json::json!({ "model_name": name, "url": url.to_string_lossy() }).to_string();
    let json = HeaderValue::from_static("application/json");
    loop {
        let request = HopRequest {
            content_type: Some(&json),
            accept: None,
            custom_attributes: None,
            target_model: None,
            request_id,
            body: document.clone().into(),
        };
        let reply = hop::send(client, container, "/models", request, None)
            .await
            .map_err(|e| hop_failure(e, container, config, request_id))?;
        match reply.status {
            // 409: the container holds it already (the router restarted, say).
            200 | 409 => {
                log::info!(
                    "rid={request_id} loaded model {} as {name}",
                    quoted(target.as_bytes())
                );
                return Ok(());
            }
            507 => {
                let victim = {
                    let mut inner = models.lock();
                    let lru = inner
                        .slots
                        .iter()
                        .filter_map(|(n, slot)| match slot {
                            Slot::Loaded { last_used } => Some((*last_used, n.clone())),
                            Slot::Loading(_) => None,
                        })
                        .min()
                        .map(|(_, n)| n);
                    if let Some(victim) = &lru {
                        inner.slots.remove(victim);
                    }
                    lru
                };
                let Some(victim) = victim else {
                    let _ = std::fs::remove_dir_all(&local);
                    return Err(passed_on(reply));
                };
                log::info!(
                    "rid={request_id} {} has no room for {}: unloading {victim}, the least recently used",
                    container.name,
                    quoted(target.as_bytes())
                );
                unload(client, container, &models.local_root, &victim).await;
            }
            _ => {
                let _ = std::fs::remove_dir_all(&local);
                return Err(passed_on(reply));
            }
        }
    }
}

/// `DELETE /models/{name}` on the container, and its unpacked files.
async fn unload(client: &ContainerClient, container: &Target, local_root: &Path, name: &str) {
    let unloaded = match container.request(client, Method::DELETE, &format!("/models/{name}")) {
        Ok(request) => request.send().await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match unloaded {
        Ok(response) if response.status().is_success() || response.status().as_u16() == 404 => {}
        Ok(response) => log::warn!(
            "{} answered {} to unloading {name}",
            container.name,
            response.status().as_u16()
        ),
        Err(e) => log::warn!("cannot unload {name} from {}: {e}", container.name),
    }
    let _ = std::fs::remove_dir_all(local_root.join(name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_one_path_segment() {
        assert_eq!(container_name("a.tar.gz"), "a.tar.gz");
        let nested = container_name("group/a.tar.gz");
        assert!(nested.starts_with("model-") && !nested.contains('/'), "{nested}");
        assert_eq!(nested, container_name("group/a.tar.gz"));
        assert_ne!(nested, container_name("group/b.tar.gz"));
    }
}
