//! The server's table of a multi-model endpoint's models: which are loaded
//! or loading, in which workers, what each costs, and which was used least
//! recently.
//!
//! Every worker holds every loaded model. A load goes to every worker and
//! succeeds once each has run `model_fn`; if any fails, the model is
//! unloaded from the others and the load fails with that worker's message.
//! A worker that starts later (a replacement after a crash) reloads every
//! model before it takes requests ([`Registry::attach`]); a model it cannot
//! reload is unloaded everywhere, so `GET /models` never lists a model some
//! worker lacks.
//!
//! Requests for a model that is loading wait for its load, so concurrent
//! first requests for one model load it once.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use modelstage_contract::excerpt::quoted;
use tokio::sync::{oneshot, watch};

use super::super::metrics::{self, LoadOutcome, UnloadReason};
use super::super::process::WorkerProcess as Worker;
use super::budget::{self, Budget};
use super::control::{LoadFailed, Outcome};

/// Why a load did not happen; each maps to the status SageMaker expects.
#[derive(Debug, Clone)]
pub enum LoadRefusal {
    /// 409: the name is loaded (or loading) already.
    Conflict(String),
    /// 507: loading would exceed the memory budget.
    NoRoom(String),
    /// Any other failure, with its status: 400 when `model_fn` (or the
    /// model's files) failed, 500 when a worker died loading it, 504 past
    /// the time limit.
    Failed {
        /// The HTTP status it answers with.
        status: u16,
        /// Why, naming the model and the stage.
        message: String,
    },
}

impl LoadRefusal {
    /// The HTTP status it answers with.
    pub fn status(&self) -> u16 {
        match self {
            LoadRefusal::Conflict(_) => 409,
            LoadRefusal::NoRoom(_) => 507,
            LoadRefusal::Failed { status, .. } => *status,
        }
    }

    /// Why, naming the model and the stage.
    pub fn message(&self) -> &str {
        match self {
            LoadRefusal::Conflict(m) | LoadRefusal::NoRoom(m) | LoadRefusal::Failed { message: m, .. } => m,
        }
    }
}

/// Where a model's files are.
pub enum Source {
    /// An unpacked model folder (what `POST /models` names).
    Folder(PathBuf),
    /// A `model.tar.gz`, unpacked (safely, with the `MODELSTAGE_UNPACK_*`
    /// bounds) into a private folder that goes when the model is unloaded.
    Archive(PathBuf),
}

/// A model as `GET /models` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The name it was loaded under.
    #[serde(rename = "modelName")]
    pub name: String,
    /// Where it was loaded from, as the load named it.
    #[serde(rename = "modelUrl")]
    pub url: String,
}

type Done = Option<Result<(), LoadRefusal>>;

/// Models taken out to make room, each with the workers to unload it from.
type Evicted = Vec<(String, Vec<Arc<Worker>>)>;

enum State {
    /// Being loaded; its outcome arrives here.
    Loading(watch::Receiver<Done>),
    Loaded,
}

struct Entry {
    url: String,
    state: State,
    /// The folder the workers load, once the load has sent it to them: from
    /// then on a worker that starts loads it itself.
    dir: Option<PathBuf>,
    /// The private folder an archive was unpacked into.
    unpacked: Option<Unpacked>,
    last_used: u64,
    /// What loading it added to the workers' resident memory, in bytes.
    cost: u64,
    /// What a load in progress is counted as, against the budget.
    reserved: u64,
}

struct Inner {
    models: BTreeMap<String, Entry>,
    workers: Vec<Arc<Worker>>,
    clock: u64,
}

impl Inner {
    /// Sets the loaded-models gauge from the table (after every change).
    fn count_loaded(&self) {
        let loaded = self
            .models
            .values()
            .filter(|e| matches!(e.state, State::Loaded))
            .count();
        metrics::models_loaded(loaded);
    }
}

/// The table of models, shared by the routes and the workers' slots.
pub struct Registry {
    inner: Mutex<Inner>,
    budget: Budget,
    /// `MODELSTAGE_MME_EVICT=lru`: unload least recently used models to
    /// make room, instead of answering 507.
    evict_lru: bool,
    /// The stage, in messages: known once a worker has described it.
    stage: std::sync::OnceLock<String>,
    /// How long a load may take in every worker.
    load_timeout: Duration,
    /// Where archives are unpacked: a private folder, made on first use.
    unpack_root: Mutex<Option<PathBuf>>,
    next_unpack: AtomicU64,
}

/// A model archive's private folder, removed when the model goes.
struct Unpacked(PathBuf);

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for the outcomes of one operation in several workers. A worker
/// that ended first counts as `None`.
async fn gather(
    pending: Vec<(u32, oneshot::Receiver<Outcome>)>,
    deadline: Instant,
) -> Result<Vec<(u32, Option<Outcome>)>, u32> {
    let mut outcomes = Vec::with_capacity(pending.len());
    for (pid, rx) in pending {
        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx).await {
            Ok(outcome) => outcomes.push((pid, outcome.ok())),
            Err(_) => return Err(pid),
        }
    }
    Ok(outcomes)
}

impl Registry {
    /// An empty table; `load_timeout` bounds each load in every worker.
    pub fn new(budget: Budget, evict_lru: bool, load_timeout: Duration) -> Registry {
        Registry {
            inner: Mutex::new(Inner {
                models: BTreeMap::new(),
                workers: Vec::new(),
                clock: 0,
            }),
            budget,
            evict_lru,
            stage: std::sync::OnceLock::new(),
            load_timeout,
            unpack_root: Mutex::new(None),
            next_unpack: AtomicU64::new(0),
        }
    }

    /// The budget in MB, for the start-up log line; `None`: no budget.
    pub fn budget_mb(&self) -> Option<u64> {
        self.budget.limit_mb()
    }

    /// Where the budget came from.
    pub fn budget_source(&self) -> &str {
        &self.budget.source
    }

    /// Whether a load makes room by unloading the least recently used models.
    pub fn evicts(&self) -> bool {
        self.evict_lru
    }

    /// Names the stage in messages, once a worker has described it.
    pub fn set_stage(&self, label: &str) {
        let _ = self.stage.set(label.to_string());
    }

    fn stage(&self) -> &str {
        self.stage.get().map_or("(starting)", String::as_str)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every step leaves the table consistent; a panic elsewhere while it
        // was held leaves nothing to repair.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the endpoint holds now, in bytes: the server process's own
    /// resident memory (request bodies, the tables of models) and its
    /// workers' (the models).
    pub fn resident(&self) -> u64 {
        let pids: Vec<u32> = self.lock().workers.iter().map(|w| w.pid).collect();
        budget::resident(std::process::id()) + pids.into_iter().map(budget::resident).sum::<u64>()
    }

    /// Loads `name` in every worker; 409 while it is loaded or loading. The
    /// load runs as a task of its own, so it completes (and the requests
    /// waiting for it learn how) even if the client that asked goes away.
    pub async fn load(self: &Arc<Self>, name: &str, url: &str, source: Source) -> Result<(), LoadRefusal> {
        let this = Arc::clone(self);
        let (name, url) = (name.to_string(), url.to_string());
        tokio::spawn(async move { this.load_here(&name, &url, source).await })
            .await
            .unwrap_or_else(|e| {
                Err(LoadRefusal::Failed {
                    status: 500,
                    message: format!("the load stopped: {e}"),
                })
            })
    }

    async fn load_here(&self, name: &str, url: &str, source: Source) -> Result<(), LoadRefusal> {
        let (done, evicted) = match self.admit(name, url) {
            Ok(admitted) => admitted,
            Err(e) => {
                if let LoadRefusal::NoRoom(_) = e {
                    metrics::model_not_loaded(LoadOutcome::InsufficientStorage);
                }
                return Err(e);
            }
        };
        for (victim, workers) in evicted {
            metrics::model_unloaded(UnloadReason::Evicted);
            log::info!(
                "unloading model {} of {}, the least recently used, to make room for {} (MODELSTAGE_MME_EVICT=lru)",
                quoted(victim.as_bytes()),
                self.stage(),
                quoted(name.as_bytes())
            );
            self.unload_from(&workers, &victim).await;
        }
        let started = Instant::now();
        let outcome = self.run_load(name, source).await;
        match &outcome {
            Ok(_) => metrics::model_loaded(started.elapsed()),
            Err(_) => metrics::model_not_loaded(LoadOutcome::Failed),
        }
        if let Ok(cost) = &outcome {
            let shown = match self.budget.limit {
                Some(_) => format!(" (+{} KiB resident)", cost / 1024),
                None => String::new(),
            };
            log::info!(
                "model {} of {} loaded in {:.2} ms{shown}",
                quoted(name.as_bytes()),
                self.stage(),
                started.elapsed().as_secs_f64() * 1000.0,
            );
        }
        let mut inner = self.lock();
        match &outcome {
            Ok(cost) => {
                if let Some(entry) = inner.models.get_mut(name) {
                    entry.state = State::Loaded;
                    entry.cost = *cost;
                    entry.reserved = 0;
                }
            }
            Err(_) => {
                inner.models.remove(name);
            }
        }
        inner.count_loaded();
        drop(inner);
        let outcome = outcome.map(drop);
        let _ = done.send(Some(outcome.clone()));
        outcome
    }

    /// Takes the name for a load, if it is free and the budget allows
    /// (making room first with `MODELSTAGE_MME_EVICT=lru`). Returns where the
    /// load's outcome goes and the models taken out to make room, with the
    /// workers to unload them from.
    fn admit(&self, name: &str, url: &str) -> Result<(watch::Sender<Done>, Evicted), LoadRefusal> {
        let conflict = || {
            LoadRefusal::Conflict(format!(
                "model {} is already loaded in stage {}",
                quoted(name.as_bytes()),
                self.stage()
            ))
        };
        if self.lock().models.contains_key(name) {
            return Err(conflict());
        }
        // Read outside the lock: a read of /proc per worker (only against a budget).
        let resident = if self.budget.limit.is_some() {
            self.resident()
        } else {
            0
        };
        let mut inner = self.lock();
        if inner.models.contains_key(name) {
            return Err(conflict());
        }
        let mut evicted = Vec::new();
        let mut reserved = 0;
        if let Some(limit) = self.budget.limit {
            let loaded: Vec<u64> = inner
                .models
                .values()
                .filter(|e| matches!(e.state, State::Loaded))
                .map(|e| e.cost)
                .collect();
            // A model is expected to cost what the loaded ones cost on average.
            let estimate = if loaded.is_empty() {
                0
            } else {
                loaded.iter().sum::<u64>() / loaded.len() as u64
            };
            let in_flight: u64 = inner.models.values().map(|e| e.reserved).sum();
            let held = resident + in_flight;
            // The least recently used models that make room, chosen first
            // and taken out only if they are enough: a load that cannot fit
            // anyway unloads nothing.
            let mut victims = Vec::new();
            let mut freed = 0;
            if held + estimate > limit && self.evict_lru {
                let mut by_age: Vec<(u64, &String, u64)> = inner
                    .models
                    .iter()
                    .filter(|(_, e)| matches!(e.state, State::Loaded))
                    .map(|(n, e)| (e.last_used, n, e.cost))
                    .collect();
                by_age.sort();
                for (_, victim, cost) in by_age {
                    if held.saturating_sub(freed) + estimate <= limit {
                        break;
                    }
                    freed += cost;
                    victims.push(victim.clone());
                }
            }
            if held.saturating_sub(freed) + estimate <= limit {
                for victim in victims {
                    if inner.models.remove(&victim).is_some() {
                        evicted.push((victim, inner.workers.clone()));
                    }
                }
                inner.count_loaded();
            }
            if held.saturating_sub(freed) + estimate > limit {
                const MB: u64 = 1024 * 1024;
                return Err(LoadRefusal::NoRoom(format!(
                    "cannot load model {} in stage {}: the server and its workers hold {} MB and a model costs about {} MB, \
                     over the budget of {} MB ({}); unload a model and retry",
                    quoted(name.as_bytes()),
                    self.stage(),
                    held / MB,
                    estimate.div_ceil(MB),
                    limit / MB,
                    self.budget.source
                )));
            }
            reserved = estimate;
        }
        let (tx, rx) = watch::channel(None);
        inner.clock += 1;
        let last_used = inner.clock;
        inner.models.insert(
            name.to_string(),
            Entry {
                url: url.to_string(),
                state: State::Loading(rx),
                dir: None,
                unpacked: None,
                last_used,
                cost: 0,
                reserved,
            },
        );
        Ok((tx, evicted))
    }

    /// Unpacks the model if it is an archive, then loads it in every
    /// worker. Returns what the load added to the workers' memory.
    async fn run_load(&self, name: &str, source: Source) -> Result<u64, LoadRefusal> {
        let failed = |status, message| LoadRefusal::Failed { status, message };
        let (dir, unpacked) = match source {
            Source::Folder(dir) => {
                if !dir.is_dir() {
                    return Err(failed(
                        400,
                        format!(
                            "cannot load model {} in stage {}: {} is not a folder",
                            quoted(name.as_bytes()),
                            self.stage(),
                            quoted(dir.to_string_lossy().as_bytes())
                        ),
                    ));
                }
                (dir, None)
            }
            Source::Archive(tar_gz) => {
                let unpacked = self.unpack(name, &tar_gz).await?;
                (unpacked.0.join("model"), Some(unpacked))
            }
        };
        // What a model costs is measured only where a budget needs it.
        let measure = || {
            if self.budget.limit.is_some() {
                self.resident()
            } else {
                0
            }
        };
        let before = measure();
        let workers = {
            let mut inner = self.lock();
            let Some(entry) = inner.models.get_mut(name) else {
                return Err(failed(
                    500,
                    format!("model {} was removed while loading", quoted(name.as_bytes())),
                ));
            };
            entry.dir = Some(dir.clone());
            entry.unpacked = unpacked;
            inner.workers.clone()
        };
        let pending = workers
            .iter()
            .map(|w| (w.pid, w.models.load(name, &dir)))
            .collect();
        let outcomes = gather(pending, Instant::now() + self.load_timeout).await;
        let failure = match outcomes {
            Err(pid) => Some(failed(
                504,
                format!(
                    "model {} of stage {} did not load within {} s in worker {pid} (SAGEMAKER_MODEL_SERVER_TIMEOUT)",
                    quoted(name.as_bytes()),
                    self.stage(),
                    self.load_timeout.as_secs()
                ),
            )),
            Ok(outcomes) => outcomes.into_iter().find_map(|(pid, outcome)| match outcome {
                Some(Ok(())) => None,
                Some(Err(LoadFailed(message))) => Some(failed(400, message)),
                None => Some(failed(
                    500,
                    format!(
                        "the worker process {pid} of stage {} ended while loading model {} from {}",
                        self.stage(),
                        quoted(name.as_bytes()),
                        dir.display()
                    ),
                )),
            }),
        };
        if let Some(failure) = failure {
            // Those that loaded it let it go; a replacement that started
            // meanwhile is among the workers now.
            let workers = self.lock().workers.clone();
            self.unload_from(&workers, name).await;
            return Err(failure);
        }
        Ok(measure().saturating_sub(before))
    }

    async fn unpack(&self, name: &str, tar_gz: &Path) -> Result<Unpacked, LoadRefusal> {
        let root = self.unpack_root()?;
        let folder = root.join(self.next_unpack.fetch_add(1, Ordering::Relaxed).to_string());
        let unpacked = Unpacked(folder.clone());
        let tar = tar_gz.to_path_buf();
        let result =
            tokio::task::spawn_blocking(move || crate::archive::unpack(&tar, &folder.join("model"))).await;
        let failed = |why: &dyn std::fmt::Display| LoadRefusal::Failed {
            status: 400,
            message: format!(
                "cannot load model {} in stage {}: cannot unpack {}: {why}",
                quoted(name.as_bytes()),
                self.stage(),
                tar_gz.display()
            ),
        };
        match result {
            Ok(Ok(())) => Ok(unpacked),
            Ok(Err(e)) => Err(failed(&format_args!("{e:#}"))),
            Err(e) => Err(failed(&e)),
        }
    }

    /// The private folder archives are unpacked into, made on first use; a
    /// 500 when it cannot be made.
    fn unpack_root(&self) -> Result<PathBuf, LoadRefusal> {
        use std::os::unix::fs::DirBuilderExt;
        let mut root = self.unpack_root.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(root) = root.as_ref() {
            return Ok(root.clone());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("modelstage-models-{}-{nanos}", std::process::id()));
        // Fails if the name is taken: nobody can prepare it for us.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| LoadRefusal::Failed {
                status: 500,
                message: format!(
                    "cannot create a private folder for models at {}: {e}",
                    dir.display()
                ),
            })?;
        *root = Some(dir.clone());
        Ok(dir)
    }

    /// Removes the unpacked models (when the server stops).
    pub fn shutdown(&self) {
        self.lock().models.clear();
        if let Some(root) = self.unpack_root.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = std::fs::remove_dir_all(root);
        }
    }

    /// Unloads `name` from `workers` and waits until each released it (or
    /// ended, or the time limit passed).
    async fn unload_from(&self, workers: &[Arc<Worker>], name: &str) {
        let pending = workers.iter().map(|w| (w.pid, w.models.unload(name))).collect();
        if let Err(pid) = gather(pending, Instant::now() + self.load_timeout).await {
            log::error!(
                "worker {pid} of {} did not confirm unloading model {} in time",
                self.stage(),
                quoted(name.as_bytes())
            );
        }
    }

    /// Unloads `name` from every worker. `false` if no such model is
    /// loaded. A model still loading is waited for first.
    pub async fn unload(&self, name: &str) -> bool {
        let (entry, workers) = loop {
            let loading = {
                let mut inner = self.lock();
                match inner.models.get(name).map(|e| &e.state) {
                    None => return false,
                    Some(State::Loading(rx)) => rx.clone(),
                    Some(State::Loaded) => {
                        let entry = inner.models.remove(name);
                        inner.count_loaded();
                        metrics::model_unloaded(UnloadReason::Request);
                        break (entry, inner.workers.clone());
                    }
                }
            };
            let deadline = Instant::now() + self.load_timeout;
            if !wait_for(loading, deadline).await {
                return false;
            }
        };
        self.unload_from(&workers, name).await;
        drop(entry);
        true
    }

    /// Whether `name` is loaded, waiting for it while it loads (up to
    /// `deadline`); marks it used. `Err` carries its load's failure.
    pub async fn ready(&self, name: &str, deadline: Instant) -> Result<bool, LoadRefusal> {
        loop {
            let loading = {
                let mut inner = self.lock();
                inner.clock += 1;
                let clock = inner.clock;
                match inner.models.get_mut(name) {
                    None => return Ok(false),
                    Some(entry) => match &entry.state {
                        State::Loaded => {
                            entry.last_used = clock;
                            return Ok(true);
                        }
                        State::Loading(rx) => rx.clone(),
                    },
                }
            };
            let mut rx = loading.clone();
            let waited = tokio::time::timeout_at(
                tokio::time::Instant::from_std(deadline),
                rx.wait_for(Option::is_some),
            )
            .await;
            match waited {
                Err(_) => {
                    return Err(LoadRefusal::Failed {
                        status: 504,
                        message: format!(
                            "model {} of stage {} was still loading at the request's deadline (SAGEMAKER_MODEL_SERVER_TIMEOUT)",
                            quoted(name.as_bytes()),
                            self.stage()
                        ),
                    })
                }
                Ok(Ok(done)) => {
                    if let Some(Err(e)) = done.as_ref() {
                        return Err(e.clone());
                    }
                }
                Ok(Err(_)) => {
                    return Err(LoadRefusal::Failed {
                        status: 500,
                        message: format!("the load of model {} stopped", quoted(name.as_bytes())),
                    })
                }
            }
        }
    }

    /// Loads `name` from `source` unless it is loaded or loading, then
    /// waits for it: concurrent first requests for one model load it once.
    pub async fn ensure(
        self: &Arc<Self>,
        name: &str,
        url: &str,
        source: impl Fn() -> Result<Source, LoadRefusal>,
        deadline: Instant,
    ) -> Result<(), LoadRefusal> {
        loop {
            if self.ready(name, deadline).await? {
                return Ok(());
            }
            match self.load(name, url, source()?).await {
                Ok(()) => return Ok(()),
                // Someone else started it first: wait for theirs.
                Err(LoadRefusal::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `name`'s listing, if it is loaded.
    pub fn describe(&self, name: &str) -> Option<Listed> {
        let inner = self.lock();
        let entry = inner.models.get(name)?;
        matches!(entry.state, State::Loaded).then(|| Listed {
            name: name.to_string(),
            url: entry.url.clone(),
        })
    }

    /// Up to `limit` loaded models in name order, after `after`; and the
    /// token of the next page when there are more.
    pub fn list(&self, after: Option<&str>, limit: usize) -> (Vec<Listed>, Option<String>) {
        use std::ops::Bound;
        let inner = self.lock();
        let start = match after {
            Some(token) => Bound::Excluded(token.to_string()),
            None => Bound::Unbounded,
        };
        let mut loaded = inner
            .models
            .range::<String, _>((start, Bound::Unbounded))
            .filter(|(_, e)| matches!(e.state, State::Loaded))
            .map(|(name, e)| Listed {
                name: name.clone(),
                url: e.url.clone(),
            });
        let page: Vec<Listed> = loaded.by_ref().take(limit).collect();
        let next = match loaded.next() {
            Some(_) => page.last().map(|l| l.name.clone()),
            None => None,
        };
        (page, next)
    }

    /// A worker that has opened its lanes: it loads every model the others
    /// hold (and those being loaded) before it takes requests. A model it
    /// cannot load is unloaded everywhere, so that every worker holds every
    /// model `GET /models` lists. Runs on the worker's slot thread.
    pub fn attach(&self, worker: &Arc<Worker>) {
        let jobs: Vec<(String, PathBuf)> = {
            let mut inner = self.lock();
            inner.workers.push(Arc::clone(worker));
            inner
                .models
                .iter()
                .filter_map(|(name, e)| e.dir.clone().map(|d| (name.clone(), d)))
                .collect()
        };
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                log::error!("cannot wait for worker {}'s models: {e}", worker.pid);
                return;
            }
        };
        let pending: Vec<_> = jobs
            .iter()
            .map(|(name, dir)| (name.clone(), worker.models.load(name, dir)))
            .collect();
        let deadline = Instant::now() + self.load_timeout;
        let mut lost = Vec::new();
        runtime.block_on(async {
            for (name, rx) in pending {
                match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(LoadFailed(message)))) => lost.push((name, message)),
                    Ok(Err(_)) => return, // the worker ended: its slot starts another
                    Err(_) => lost.push((
                        name,
                        format!("not loaded within {} s", self.load_timeout.as_secs()),
                    )),
                }
            }
        });
        for (name, why) in lost {
            log::error!(
                "worker {} of {} could not reload model {}: {why}; unloading it from every worker",
                worker.pid,
                self.stage(),
                quoted(name.as_bytes())
            );
            let workers = {
                let mut inner = self.lock();
                if matches!(inner.models.get(&name).map(|e| &e.state), Some(State::Loaded)) {
                    inner.models.remove(&name);
                    inner.count_loaded();
                    metrics::model_unloaded(UnloadReason::ReloadFailed);
                }
                inner.workers.clone()
            };
            runtime.block_on(self.unload_from(&workers, &name));
        }
        log::info!(
            "worker {} of {} reloaded {} model(s) in {} ms",
            worker.pid,
            self.stage(),
            jobs.len(),
            started.elapsed().as_millis()
        );
    }

    /// A worker ended: it holds nothing any more.
    pub fn detach(&self, worker: &Arc<Worker>) {
        self.lock().workers.retain(|w| !Arc::ptr_eq(w, worker));
    }
}

/// Waits until a load finishes; `false` past `deadline`.
async fn wait_for(mut loading: watch::Receiver<Done>, deadline: Instant) -> bool {
    tokio::time::timeout_at(
        tokio::time::Instant::from_std(deadline),
        loading.wait_for(Option::is_some),
    )
    .await
    .is_ok_and(|done| done.is_ok())
}

/// Why a target model name cannot name a file under the model folder, if it
/// cannot: it must be a relative path of plain components (no `..`, no
/// root), as SageMaker's `TargetModel` is a key under the model prefix.
pub fn target_problem(target: &str) -> Option<String> {
    if target.is_empty() || target.len() > 1024 {
        return Some(format!(
            "the target model must be 1 to 1024 bytes, got {} bytes",
            target.len()
        ));
    }
    let plain = Path::new(target)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !plain || target.contains('\0') {
        return Some(format!(
            "the target model {} must be a relative path inside the model folder (no '..', no leading '/')",
            quoted(target.as_bytes())
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_stay_inside_the_model_folder() {
        assert!(target_problem("a.tar.gz").is_none());
        assert!(target_problem("group/b.tar.gz").is_none());
        for bad in ["", "../etc/passwd", "/etc/passwd", "a/../../b", "a\0b"] {
            assert!(target_problem(bad).is_some(), "{bad:?}");
        }
        assert!(target_problem(&"x".repeat(1025)).is_some());
    }

    #[tokio::test]
    async fn paging_lists_loaded_models_in_name_order() {
        let registry = Arc::new(Registry::new(
            Budget {
                limit: None,
                source: String::new(),
            },
            false,
            Duration::from_secs(1),
        ));
        for name in ["c", "a", "b", "d", "e"] {
            let dir = std::env::temp_dir();
            registry
                .load(name, &format!("/m/{name}"), Source::Folder(dir))
                .await
                .unwrap();
        }
        let (page, next) = registry.list(None, 2);
        let names: Vec<_> = page.iter().map(|l| l.name.as_str()).collect();
        assert_eq!((names, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (page, next) = registry.list(Some("b"), 2);
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some("d"));
        let (page, next) = registry.list(Some("d"), 2);
        assert_eq!((page.len(), next), (1, None));
        assert!(matches!(
            registry
                .load("a", "/m/a", Source::Folder(std::env::temp_dir()))
                .await,
            Err(LoadRefusal::Conflict(_))
        ));
        assert!(registry.unload("a").await);
        assert!(!registry.unload("a").await);
        assert!(registry.describe("a").is_none());
        assert_eq!(registry.describe("b").unwrap().url, "/m/b");
    }
}
