//! A worker's side of a multi-model endpoint: the models this process
//! holds, by name, and the loads and unloads the server asks for on the
//! control connection.
//!
//! A load runs `model_fn` on one of a few loader threads, so loads of
//! different models proceed side by side and never hold up a request. An
//! unload takes the model out of the table at once; the model itself is
//! released when the last request running on it finishes (requests hold it
//! by reference). Each load carries an operation number: a load that
//! finishes after its model was unloaded (or loaded again) drops what it
//! made instead of installing a model nobody asked for any more.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use modelstage_contract::excerpt::{bounded, quoted};

use super::super::chain::Pipeline;
use super::super::config::StagePlan;
use super::super::protocol::{self, FrameReader, FrameWriter, WireAnswer, WireRequest};
use crate::loader::{HookError, LoadedStage};

/// The longest stage message a failed load reports whole.
const MESSAGE_MAX: usize = 4096;

/// Loads running at once in one worker.
const LOADERS: usize = 4;

/// A model `model_fn` could not load: what the worker logs and tells the
/// server (`MODEL_LOAD_FAILED`), which answers the load with it.
#[derive(Debug, thiserror::Error)]
#[error(
    "stage {stage} cannot load model {} from {}: {}",
    quoted(.model.as_bytes()),
    .dir.display(),
    bounded(&.error.to_string(), MESSAGE_MAX)
)]
struct ModelLoadError<'a> {
    /// The stage's name.
    stage: &'a str,
    /// The name the model was to be loaded as.
    model: &'a str,
    /// Its folder.
    dir: &'a Path,
    /// The stage's error (boxed: the `Ok` of a load is empty).
    error: Box<HookError>,
}

struct Slot {
    /// The load that made (or is making) this model.
    op: u64,
    /// `None` while `model_fn` runs.
    model: Option<Arc<Pipeline>>,
}

/// The models one worker holds.
pub struct Held {
    stage: &'static LoadedStage,
    /// The stage's name in errors and logs.
    name: String,
    default_accept: String,
    models: RwLock<HashMap<String, Slot>>,
}

impl Held {
    /// Holds no model yet; `stage` is the library the worker opened. Errors
    /// name the stage as its descriptor does.
    pub fn new(plan: &StagePlan, stage: &'static LoadedStage) -> Held {
        Held {
            stage,
            name: stage.info().name.clone(),
            default_accept: plan.default_accept.clone(),
            models: RwLock::new(HashMap::new()),
        }
    }

    fn model(&self, name: &str) -> Option<Arc<Pipeline>> {
        let models = self.models.read().unwrap_or_else(|e| e.into_inner());
        models.get(name).and_then(|slot| slot.model.clone())
    }

    /// Runs `request` on the model it names; 404 naming the model when this
    /// worker does not hold it (it was unloaded while the request was on its
    /// way).
    pub fn handle(&self, request: &WireRequest) -> WireAnswer {
        let name = request.model.as_deref().unwrap_or_default();
        match self.model(name) {
            Some(model) => model.handle(request),
            None => WireAnswer::Error {
                id: request.id,
                http_status: 404,
                container: None,
                stage: self.name.clone(),
                hook: String::new(),
                message: format!(
                    "model {} is not loaded in this endpoint of stage {}",
                    quoted(name.as_bytes()),
                    self.name
                ),
                record: None,
                hook_nanos: 0,
            },
        }
    }

    /// Calls `model_fn` on `dir` and installs the model as `name`, unless
    /// another operation on `name` came after this one.
    fn load<'a>(&'a self, op: u64, name: &'a str, dir: &'a Path) -> Result<(), ModelLoadError<'a>> {
        self.models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), Slot { op, model: None });
        let loaded = self.stage.load_model(dir).map_err(|error| ModelLoadError {
            stage: &self.name,
            model: name,
            dir,
            error: Box::new(error),
        });
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        let current = models.get(name).is_some_and(|slot| slot.op == op);
        if !current {
            // Unloaded (or loaded anew) meanwhile: what this load made is
            // dropped, after the lock.
            drop(models);
            return loaded.map(drop);
        }
        match loaded {
            Ok(model) => {
                let model = Arc::new(Pipeline::of_model(&self.name, &self.default_accept, model));
                if let Some(slot) = models.get_mut(name) {
                    slot.model = Some(model);
                }
                Ok(())
            }
            Err(e) => {
                models.remove(name);
                Err(e)
            }
        }
    }

    /// Takes `name` out of the table; its model is released once the
    /// requests running on it finish.
    fn unload(&self, name: &str) {
        let slot = self
            .models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        drop(slot);
    }
}

/// One load the control thread hands to a loader thread.
struct LoadJob {
    op: u64,
    name: String,
    dir: PathBuf,
}

/// Writes one frame to the control connection (the only writer once the
/// worker has said it is ready). A failed write means the server is gone.
fn send(writer: &Mutex<UnixStream>, frame: &[u8]) {
    if let Ok(mut w) = writer.lock() {
        let _ = w.write_all(frame);
    }
}

/// Answers the server's load and unload frames on the control connection
/// until it closes. Runs on its own thread.
pub fn serve_control(held: Arc<Held>, control: UnixStream) {
    let writer = match control.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            log::error!("cannot answer the server's model operations: {e}");
            return;
        }
    };
    let (jobs_tx, jobs_rx) = mpsc::channel::<LoadJob>();
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    for i in 0..LOADERS {
        let (held, writer, jobs_rx) = (Arc::clone(&held), Arc::clone(&writer), Arc::clone(&jobs_rx));
        let spawned = std::thread::Builder::new()
            .name(format!("model-loader-{i}"))
            .spawn(move || loop {
                let job = match jobs_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let frame = match held.load(job.op, &job.name, &job.dir) {
                    Ok(()) => FrameWriter::new(protocol::MODEL_LOADED, 8).u64(job.op).finish(),
                    Err(e) => {
                        let message = e.to_string();
                        log::error!("{message}");
                        FrameWriter::new(protocol::MODEL_LOAD_FAILED, 16 + message.len())
                            .u64(job.op)
                            .bytes(message.as_bytes())
                            .finish()
                    }
                };
                send(&writer, &frame);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a model loader thread: {e}");
        }
    }
    let mut reader = BufReader::new(control);
    let mut buf = Vec::new();
    while let Ok(Some(kind)) = protocol::read_frame(&mut reader, &mut buf) {
        let mut fields = FrameReader::new(&buf[1..]);
        let parsed = match kind {
            protocol::LOAD_MODEL => (|| {
                let op = fields.u64()?;
                let name = fields.string()?;
                let dir = PathBuf::from(fields.string()?);
                let _ = jobs_tx.send(LoadJob { op, name, dir });
                Ok::<(), std::io::Error>(())
            })(),
            protocol::UNLOAD_MODEL => (|| {
                let op = fields.u64()?;
                held.unload(&fields.string()?);
                send(
                    &writer,
                    &FrameWriter::new(protocol::MODEL_UNLOADED, 8).u64(op).finish(),
                );
                Ok(())
            })(),
            other => {
                log::error!("unexpected frame kind {other} on the control connection");
                Ok(())
            }
        };
        if let Err(e) = parsed {
            log::error!("dropping a malformed model operation from the server: {e}");
        }
    }
}
