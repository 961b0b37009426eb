//! A stage library loaded by the real loader, and a model its `model_fn` loaded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use modelstage_runtime::loader::{HookError, LoadedModel, LoadedStage, StageInfo};

use crate::library::built_library;
use crate::request::{Answer, Request};
use crate::server::Server;
use crate::training::{Trained, TrainingJob};
use crate::Error;

/// A stage library opened by `modelstage_runtime::loader`, as `serve` and `train` open it.
/// Libraries stay loaded for the rest of the test process (the loader never unloads them).
pub struct TestStage {
    stage: &'static LoadedStage,
    path: PathBuf,
}

impl TestStage {
    /// The stage library of the package under test: `lib<package name>.so` (dashes become
    /// underscores) of this test build, built if missing (see [`crate::library`]). Panics with
    /// the reason when it cannot be found or is not a usable stage.
    ///
    /// It reads `CARGO_MANIFEST_DIR` and `CARGO_PKG_NAME`, which cargo sets for `cargo test`; a
    /// package whose `[lib] name` differs uses [`TestStage::built`].
    pub fn this_package() -> TestStage {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the test with `cargo test`, or use TestStage::load")
            })
        };
        let manifest_dir = var("CARGO_MANIFEST_DIR");
        TestStage::built(Path::new(&manifest_dir), &var("CARGO_PKG_NAME"))
    }

    /// The stage library `lib<lib_name>.so` of the package at `manifest_dir`, built if missing.
    /// Panics with the reason when it cannot be found or is not a usable stage.
    pub fn built(manifest_dir: &Path, lib_name: &str) -> TestStage {
        let path = built_library(manifest_dir, lib_name).unwrap_or_else(|e| panic!("{e}"));
        TestStage::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens the library at `path`; the error is the loader's, which says what to do.
    pub fn load(path: &Path) -> Result<TestStage, Error> {
        let stage = LoadedStage::open(path).map_err(Error::Load)?;
        Ok(TestStage {
            stage,
            path: path.to_path_buf(),
        })
    }

    /// What the loader read from the ABI descriptor (name, version, ABI, threading, …).
    pub fn info(&self) -> &StageInfo {
        self.stage.info()
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the library exports a training hook.
    pub fn can_train(&self) -> bool {
        self.stage.has_train()
    }

    /// Calls `model_fn` on `model_dir`, as a worker of `serve` does at start-up.
    pub fn load_model(&self, model_dir: &Path) -> Result<TestModel, HookError> {
        Ok(TestModel {
            model: self.stage.load_model(model_dir)?,
        })
    }

    /// Runs the training hook on a temporary `/opt/ml` tree laid out from `job`, as
    /// `modelstage train` runs it (see [`TrainingJob`]). A failed job is [`Error::Training`],
    /// whose text is the job's failure reason, the text `output/failure` received (a test looks
    /// for its words in `to_string()`); the tree not laid out is [`Error::TrainingTree`] or
    /// [`Error::LayOut`].
    pub fn train(&self, job: &TrainingJob) -> Result<Trained, Error> {
        job.run(&self.path)
    }

    /// Starts `modelstage serve` for this stage and `model_dir` on a free port of 127.0.0.1 and
    /// waits until `/ping` answers 200 (see [`Server`]).
    pub fn serve(&self, model_dir: &Path) -> Result<Server, Error> {
        Server::start(&self.path, model_dir, &[])
    }
}

/// A model that `model_fn` loaded, ready for requests.
pub struct TestModel {
    model: LoadedModel,
}

impl TestModel {
    /// Runs one request through the hooks exactly as a worker of `serve` does (`transform_fn`, or
    /// `input_fn` → `predict_fn` → `output_fn` with the ABI's defaults). The error carries the
    /// hook, the message, the record and, through `http_status()`, the status `serve` answers.
    pub fn invoke(&self, request: &Request) -> Result<Answer, HookError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.model
            .invoke(&request.body, &request.meta(id))
            .map(Answer::from_reply)
    }
}
