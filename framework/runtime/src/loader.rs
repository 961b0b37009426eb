//! The stage loader: opens a stage library, reads and checks its
//! `modelstage_abi` descriptor before touching any hook (as PostgreSQL checks
//! `PG_MODULE_MAGIC`), resolves the hooks, and calls them with the ownership
//! rules of `docs/abi.md`.
//!
//! Libraries are opened once with `RTLD_NOW` (every symbol resolved at load,
//! so a missing dependency fails here and not in the middle of a request) and
//! never unloaded: a stage may have spawned threads or registered
//! destructors that must not outlive its code.

use std::ffi::{c_void, CStr};
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use modelstage_abi as abi;
use modelstage_abi::{
    ModelstageAbiDescriptor, ModelstageBytes, ModelstageError, ModelstageOwnedBytes, ModelstagePayload,
    ModelstageRequest, ModelstageResponse, ModelstageValue,
};

/// `sizeof(ModelstageAbiDescriptor)` as each minor of this major defines it,
/// indexed by minor. A minor only appends fields, so a library's descriptor is
/// at least its own minor's size, and a field appended by minor `k` is read
/// only from a library whose `struct_size` reaches `DESCRIPTOR_SIZES[k]`. The
/// array is as long as the current minor is high: raising the minor does not
/// compile until its size is added here (docs/abi.md, "Versioning").
/// Minor 1 grew `ModelstageRequest` (the runtime's struct, sized by its
/// own `struct_size`), not the descriptor, so both minors share one size.
const DESCRIPTOR_SIZES: [u32; abi::MODELSTAGE_ABI_MINOR as usize + 1] = [
    std::mem::size_of::<ModelstageAbiDescriptor>() as u32,
    std::mem::size_of::<ModelstageAbiDescriptor>() as u32,
];

/// Why a library cannot be used as a stage. Every message says what to do.
#[derive(Debug)]
pub enum LoadError {
    /// The dynamic loader could not open the library.
    Open {
        /// The library as given.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// The library exports no `modelstage_abi_descriptor`: not a stage.
    NoDescriptor {
        /// The library's file name.
        file: String,
    },
    /// Built against another major version of the ABI.
    WrongMajor {
        /// The library's file name.
        file: String,
        /// The major version the library declares.
        found: u32,
    },
    /// Built against a newer minor version than this runtime speaks.
    NewerMinor {
        /// The library's file name.
        file: String,
        /// The minor version the library declares.
        found: u32,
        /// The runtime's own minor.
        speaks: u32,
    },
    /// The descriptor is smaller than its own minor version defines.
    DescriptorTooSmall {
        /// The library's file name.
        file: String,
        /// The minor version the library declares.
        minor: u32,
        /// The descriptor's declared `struct_size`.
        size: u32,
        /// The size that minor defines.
        needed: u32,
    },
    /// The descriptor's threading model is none the ABI defines.
    BadThreading {
        /// The library's file name.
        file: String,
        /// The value found.
        value: u32,
    },
    /// A hook the stage needs is not exported.
    MissingHook {
        /// The library's file name.
        file: String,
        /// The hook's symbol.
        hook: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// `transform_fn` exported with some of the hooks it replaces, which
    /// would never be called.
    TransformWithHooks {
        /// The library's file name.
        file: String,
        /// The hooks `transform_fn` makes dead.
        others: Vec<&'static str>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open { path, reason } => {
                write!(f, "cannot open {}: {reason}", path.display())
            }
            LoadError::NoDescriptor { file } => write!(
                f,
                "{file} has no modelstage_abi descriptor: it is not a modelstage stage \
                 (a Rust stage gets one from export_stage!; a C stage defines \
                 `const ModelstageAbiDescriptor modelstage_abi` from modelstage.h)"
            ),
            LoadError::WrongMajor { file, found } => write!(
                f,
                "{file} was built for stage ABI {found}.x but this modelstage speaks ABI {}.{}: \
                 rebuild the stage against modelstage-sdk (or modelstage.h) of ABI {}",
                abi::MODELSTAGE_ABI_MAJOR,
                abi::MODELSTAGE_ABI_MINOR,
                abi::MODELSTAGE_ABI_MAJOR
            ),
            LoadError::NewerMinor { file, found, speaks } => write!(
                f,
                "{file} needs stage ABI {}.{found} but this modelstage only speaks ABI {}.{speaks}: \
                 upgrade modelstage, or rebuild the stage against an older SDK",
                abi::MODELSTAGE_ABI_MAJOR,
                abi::MODELSTAGE_ABI_MAJOR,
            ),
            LoadError::DescriptorTooSmall {
                file,
                minor,
                size,
                needed,
            } => write!(
                f,
                "{file} has a modelstage_abi descriptor of {size} bytes, smaller than the \
                 {needed} bytes of ABI {}.{minor} it declares: it is corrupt or was not built from modelstage.h",
                abi::MODELSTAGE_ABI_MAJOR
            ),
            LoadError::BadThreading { file, value } => write!(
                f,
                "{file} declares threading mode {value}, which is neither \
                 MODELSTAGE_THREADING_SHARED (0) nor MODELSTAGE_THREADING_PER_INSTANCE (1)"
            ),
            LoadError::MissingHook { file, hook, why } => {
                write!(
                    f,
                    "{file} does not export {hook}, which {why}: export it and rebuild"
                )
            }
            LoadError::TransformWithHooks { file, others } => write!(
                f,
                "{file} exports transform_fn together with {}: transform_fn replaces \
                 input_fn, predict_fn and output_fn, so export either transform_fn or those",
                others.join(", ")
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// How the runtime may call into one model (from the descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threading {
    /// One model, called from many threads at once.
    Shared,
    /// One model per worker thread; each is called from its thread only.
    PerInstance,
}

impl Threading {
    /// The name logs, `inspect` and the execution parameters use.
    pub fn as_str(self) -> &'static str {
        match self {
            Threading::Shared => "shared",
            Threading::PerInstance => "per-instance",
        }
    }
}

/// What the descriptor says about the stage.
#[derive(Debug, Clone)]
pub struct StageInfo {
    /// The library's file name, as messages name it.
    pub file: String,
    /// Where the library was loaded from.
    pub path: PathBuf,
    /// The ABI major version the library was built against.
    pub abi_major: u32,
    /// The ABI minor version the library was built against.
    pub abi_minor: u32,
    /// The stage's declared name.
    pub name: String,
    /// The stage's declared version.
    pub version: String,
    /// How the runtime may call into one model.
    pub threading: Threading,
    /// The stage's preferred `MaxConcurrentTransforms` (0: not declared).
    pub max_concurrent_transforms: u32,
    /// `MULTI_RECORD`, `SINGLE_RECORD`, or `None` when not declared.
    pub batch_strategy: Option<&'static str>,
    /// The stage's preferred `MaxPayloadInMB` (0: not declared).
    pub max_payload_in_mb: u32,
    /// The tensors the stage declares for the Open Inference Protocol, as
    /// JSON (the optional `modelstage_signature_json`), `None` when it
    /// declares none.
    pub signature_json: Option<String>,
}

#[derive(Clone, Copy)]
struct Hooks {
    model_fn: abi::ModelstageModelFn,
    input_fn: Option<abi::ModelstageInputFn>,
    predict_fn: Option<abi::ModelstagePredictFn>,
    output_fn: Option<abi::ModelstageOutputFn>,
    transform_fn: Option<abi::ModelstageTransformFn>,
    train_fn: Option<abi::ModelstageTrainFn>,
}

/// A loaded, checked stage library. Lives for the rest of the process.
pub struct LoadedStage {
    info: StageInfo,
    hooks: Hooks,
    _library: Library,
}

/// An error a hook reported (or a panic the SDK caught), with what the
/// runtime needs to answer: the ABI status, the hook and the record.
#[derive(Debug, Clone)]
pub struct HookError {
    /// The stage's name.
    pub stage: String,
    /// The hook that failed (`input_fn`, ...).
    pub hook: &'static str,
    /// The ABI status the hook returned.
    pub status: i32,
    /// The stage's message.
    pub message: String,
    /// The record (0-based) the error applies to, when the stage named one.
    pub record: Option<u64>,
}

impl HookError {
    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> u16 {
        abi::http_status(self.status)
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.stage, self.hook, self.message)?;
        if let Some(r) = self.record {
            write!(f, " (record {r})")?;
        }
        Ok(())
    }
}

/// Request metadata, as the runtime hands it to the hooks.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The request's id, for the stage's log lines.
    pub request_id: String,
    /// The request's Content-Type, as the client sent it.
    pub content_type: String,
    /// Already resolved (default applied).
    pub accept: String,
    /// `X-Amzn-SageMaker-Custom-Attributes`, when sent.
    pub custom_attributes: Option<String>,
    /// `X-Amzn-SageMaker-Target-Model` (ABI 1.1): the model of a
    /// multi-model endpoint the request is for, when known.
    pub target_model: Option<String>,
}

/// A stage's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The stage's own buffer, released through the library when the last
    /// reference drops: a response body is not copied on its way out.
    pub body: Bytes,
    /// The answer's Content-Type.
    pub content_type: String,
    /// `X-Amzn-SageMaker-Custom-Attributes` for the client, when set.
    pub custom_attributes: Option<String>,
}

fn bytes(s: &[u8]) -> ModelstageBytes {
    ModelstageBytes::from_slice(s)
}

/// Bytes a stage handed over, released with the library's function on drop.
struct StageBytes(ModelstageOwnedBytes);

// SAFETY: the ABI lets the runtime read owned bytes from any thread and call
// their release function once, from any thread (docs/abi.md, "Ownership").
unsafe impl Send for StageBytes {}

impl AsRef<[u8]> for StageBytes {
    fn as_ref(&self) -> &[u8] {
        if self.0.ptr.is_null() || self.0.len == 0 {
            return &[];
        }
        // SAFETY: the stage handed us `len` readable bytes at `ptr` that stay
        // valid until their release function is called, in `drop`.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }
}

impl Drop for StageBytes {
    fn drop(&mut self) {
        if let Some(release) = self.0.release.take() {
            // SAFETY: released exactly once (we took the function out), with
            // the pointer, length and context the stage gave us.
            unsafe { release(self.0.ptr, self.0.len, self.0.ctx) };
        }
    }
}

/// Takes over owned bytes without copying them.
fn take_shared(owned: &mut ModelstageOwnedBytes) -> Bytes {
    let taken = std::mem::replace(owned, ModelstageOwnedBytes::EMPTY);
    if taken.ptr.is_null() || taken.len == 0 {
        drop(StageBytes(taken));
        return Bytes::new();
    }
    Bytes::from_owner(StageBytes(taken))
}

/// Copies owned bytes out and releases them with the library's function.
fn take_owned(owned: &mut ModelstageOwnedBytes) -> Vec<u8> {
    let out = if owned.ptr.is_null() || owned.len == 0 {
        Vec::new()
    } else {
        // SAFETY: the stage handed us `len` readable bytes at `ptr` that stay
        // valid until we call its release function below.
        unsafe { std::slice::from_raw_parts(owned.ptr, owned.len) }.to_vec()
    };
    if let Some(release) = owned.release.take() {
        // SAFETY: released exactly once (we took the function out), with the
        // pointer, length and context the stage gave us.
        unsafe { release(owned.ptr, owned.len, owned.ctx) };
    }
    *owned = ModelstageOwnedBytes::EMPTY;
    out
}

/// Releases an opaque value with the library's function.
fn release_value(value: &mut ModelstageValue) {
    if let Some(release) = value.release.take() {
        // SAFETY: released exactly once, with the pointer the stage gave us.
        unsafe { release(value.ptr) };
    }
    value.ptr = std::ptr::null_mut();
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The descriptor fields of ABI 1.0, copied out of the library.
#[derive(Debug, Clone, Copy)]
struct Descriptor {
    abi_major: u32,
    abi_minor: u32,
    threading: u32,
    stage_name: *const std::ffi::c_char,
    stage_version: *const std::ffi::c_char,
    max_concurrent_transforms: u32,
    batch_strategy: u32,
    max_payload_in_mb: u32,
}

/// Why a descriptor is refused, before the library's file name is known.
#[derive(Debug, PartialEq, Eq)]
enum DescriptorError {
    WrongMajor { found: u32 },
    NewerMinor { found: u32, speaks: u32 },
    TooSmall { minor: u32, size: u32, needed: u32 },
}

impl DescriptorError {
    fn into_load_error(self, file: String) -> LoadError {
        match self {
            DescriptorError::WrongMajor { found } => LoadError::WrongMajor { file, found },
            DescriptorError::NewerMinor { found, speaks } => LoadError::NewerMinor { file, found, speaks },
            DescriptorError::TooSmall { minor, size, needed } => LoadError::DescriptorTooSmall {
                file,
                minor,
                size,
                needed,
            },
        }
    }
}

/// Checks a descriptor's version and size against a runtime that speaks minor
/// `speaks` (whose descriptor sizes per minor are `sizes`) and copies out the
/// fields that lie under its `struct_size`. No field is read past what the
/// library declared, so a library built for an older minor, with a smaller
/// static, keeps loading when the runtime's minor grows.
///
/// # Safety
/// `descriptor` must point to a readable `modelstage_abi` static of at least
/// the three leading `u32` fields, and of `struct_size` bytes when its major is
/// this runtime's.
unsafe fn read_descriptor(
    descriptor: *const ModelstageAbiDescriptor,
    speaks: u32,
    sizes: &[u32],
) -> Result<Descriptor, DescriptorError> {
    use std::ptr::addr_of;
    // SAFETY: the first three u32 fields are common to every ABI version, so
    // they can be read whatever the library was built for.
    let (major, minor, size) = unsafe {
        (
            addr_of!((*descriptor).abi_major).read(),
            addr_of!((*descriptor).abi_minor).read(),
            addr_of!((*descriptor).struct_size).read(),
        )
    };
    if major != abi::MODELSTAGE_ABI_MAJOR {
        return Err(DescriptorError::WrongMajor { found: major });
    }
    if minor > speaks {
        return Err(DescriptorError::NewerMinor { found: minor, speaks });
    }
    let needed = sizes[minor as usize];
    if size < needed {
        return Err(DescriptorError::TooSmall { minor, size, needed });
    }
    // Every field below is ABI 1.0's, so it lies under `sizes[0] <= needed <= size`.
    // A field a later minor appends is read only when `size >= sizes[that minor]`.
    // SAFETY: the library's static holds `size` readable bytes (the caller's
    // contract), which cover all of these fields; each is read in place
    // without making a reference to the whole, possibly smaller, struct.
    unsafe {
        Ok(Descriptor {
            abi_major: major,
            abi_minor: minor,
            threading: addr_of!((*descriptor).threading).read(),
            stage_name: addr_of!((*descriptor).stage_name).read(),
            stage_version: addr_of!((*descriptor).stage_version).read(),
            max_concurrent_transforms: addr_of!((*descriptor).max_concurrent_transforms).read(),
            batch_strategy: addr_of!((*descriptor).batch_strategy).read(),
            max_payload_in_mb: addr_of!((*descriptor).max_payload_in_mb).read(),
        })
    }
}

/// Calls the optional `modelstage_signature_json`: a function without
/// arguments returning a static NUL-terminated JSON string, or null.
///
/// # Safety
/// A symbol of that name must have that type (docs/abi.md).
unsafe fn read_signature(library: &Library) -> Option<String> {
    type SignatureFn = unsafe extern "C" fn() -> *const std::ffi::c_char;
    // SAFETY: the caller vouches for the symbol's type.
    let f = unsafe { library.get::<SignatureFn>(b"modelstage_signature_json\0") }.ok()?;
    // SAFETY: as above; the function takes no arguments.
    let p = unsafe { f() };
    if p.is_null() {
        return None;
    }
    // SAFETY: the ABI requires a NUL-terminated string that lives as long
    // as the library, which is never unloaded.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

impl LoadedStage {
    /// Opens and checks a stage library. The library is leaked on purpose:
    /// stages are never unloaded.
    pub fn open(path: &Path) -> Result<&'static LoadedStage, LoadError> {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        // dlopen only searches the library path for bare names; a relative
        // path with a slash is fine, a bare file name in the current
        // directory needs "./".
        let open_path = if path.components().count() == 1 {
            Path::new(".").join(path)
        } else {
            path.to_path_buf()
        };
        // SAFETY: loading a library runs its initialisers. That is what a
        // stage is for; the user named this library as their stage.
        let library = unsafe { Library::open(Some(&open_path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            LoadError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;

        // SAFETY: we only read the address of the symbol here; its contents
        // are checked field by field below before anything else is used.
        let descriptor: *const ModelstageAbiDescriptor = unsafe {
            library
                .get::<*const ModelstageAbiDescriptor>(b"modelstage_abi\0")
                .map(|s| *s)
        }
        .ok()
        .filter(|p| !p.is_null())
        .ok_or_else(|| LoadError::NoDescriptor { file: file.clone() })?;

        // SAFETY: the symbol is the library's descriptor, a static that lives
        // as long as the library, which is never unloaded.
        let d = unsafe { read_descriptor(descriptor, abi::MODELSTAGE_ABI_MINOR, &DESCRIPTOR_SIZES) }
            .map_err(|e| e.into_load_error(file.clone()))?;
        let (major, minor) = (d.abi_major, d.abi_minor);
        let threading = match d.threading {
            abi::MODELSTAGE_THREADING_SHARED => Threading::Shared,
            abi::MODELSTAGE_THREADING_PER_INSTANCE => Threading::PerInstance,
            other => return Err(LoadError::BadThreading { file, value: other }),
        };
        let c_text = |p: *const std::ffi::c_char| -> String {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: the ABI requires NUL-terminated static strings.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        let info = StageInfo {
            file: file.clone(),
            path: path.to_path_buf(),
            abi_major: major,
            abi_minor: minor,
            name: c_text(d.stage_name),
            version: c_text(d.stage_version),
            threading,
            max_concurrent_transforms: d.max_concurrent_transforms,
            batch_strategy: match d.batch_strategy {
                abi::MODELSTAGE_BATCH_MULTI_RECORD => Some("MULTI_RECORD"),
                abi::MODELSTAGE_BATCH_SINGLE_RECORD => Some("SINGLE_RECORD"),
                _ => None,
            },
            max_payload_in_mb: d.max_payload_in_mb,
            // SAFETY: the symbol is looked up under its name in docs/abi.md
            // and typed as that page specifies.
            signature_json: unsafe { read_signature(&library) },
        };

        // SAFETY: each symbol is looked up under its ABI name and typed with
        // the ABI's function type for that name (modelstage.h).
        let hooks = unsafe {
            let model_fn = library
                .get::<abi::ModelstageModelFn>(b"model_fn\0")
                .ok()
                .map(|s| *s);
            Hooks {
                model_fn: model_fn.ok_or_else(|| LoadError::MissingHook {
                    file: file.clone(),
                    hook: "model_fn",
                    why: "every stage needs to load its model",
                })?,
                input_fn: library
                    .get::<abi::ModelstageInputFn>(b"input_fn\0")
                    .ok()
                    .map(|s| *s),
                predict_fn: library
                    .get::<abi::ModelstagePredictFn>(b"predict_fn\0")
                    .ok()
                    .map(|s| *s),
                output_fn: library
                    .get::<abi::ModelstageOutputFn>(b"output_fn\0")
                    .ok()
                    .map(|s| *s),
                transform_fn: library
                    .get::<abi::ModelstageTransformFn>(b"transform_fn\0")
                    .ok()
                    .map(|s| *s),
                train_fn: library
                    .get::<abi::ModelstageTrainFn>(b"train_fn\0")
                    .ok()
                    .map(|s| *s),
            }
        };
        if hooks.transform_fn.is_some() {
            let others: Vec<&'static str> = [
                ("input_fn", hooks.input_fn.is_some()),
                ("predict_fn", hooks.predict_fn.is_some()),
                ("output_fn", hooks.output_fn.is_some()),
            ]
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| name)
            .collect();
            if !others.is_empty() {
                return Err(LoadError::TransformWithHooks { file, others });
            }
        } else if hooks.predict_fn.is_none() {
            return Err(LoadError::MissingHook {
                file,
                hook: "predict_fn",
                why: "a stage needs unless it exports transform_fn",
            });
        }

        Ok(Box::leak(Box::new(LoadedStage {
            info,
            hooks,
            _library: library,
        })))
    }

    /// What the descriptor says about the stage.
    pub fn info(&self) -> &StageInfo {
        &self.info
    }

    /// The hooks the library exports, in ABI order, for `inspect`.
    pub fn hook_names(&self) -> Vec<(&'static str, bool)> {
        let h = &self.hooks;
        vec![
            ("model_fn", true),
            ("input_fn", h.input_fn.is_some()),
            ("predict_fn", h.predict_fn.is_some()),
            ("output_fn", h.output_fn.is_some()),
            ("transform_fn", h.transform_fn.is_some()),
            ("train_fn", h.train_fn.is_some()),
        ]
    }

    /// Whether the stage can train (`train_fn` exported).
    pub fn has_train(&self) -> bool {
        self.hooks.train_fn.is_some()
    }

    fn hook_error(&self, hook: &'static str, status: i32, error: &mut ModelstageError) -> HookError {
        let mut message = text(take_owned(&mut error.message));
        if message.is_empty() {
            message = format!("failed with status {status} and no message");
        }
        HookError {
            stage: self.info.name.clone(),
            hook,
            status,
            message,
            record: u64::try_from(error.record).ok(),
        }
    }

    /// Calls `model_fn`. The model lives until the returned value is dropped:
    /// for the rest of the process, unless a multi-model endpoint unloads it.
    pub fn load_model(&'static self, model_dir: &Path) -> Result<LoadedModel, HookError> {
        let dir = model_dir.to_string_lossy().into_owned();
        let mut model = ModelstageValue::EMPTY;
        let mut error = ModelstageError::EMPTY;
        // SAFETY: arguments as ModelstageModelFn specifies: the path is
        // borrowed for the call, the out-parameters are writable.
        let status = unsafe { (self.hooks.model_fn)(bytes(dir.as_bytes()), &mut model, &mut error) };
        if status != abi::MODELSTAGE_OK {
            release_value(&mut model);
            return Err(self.hook_error("model_fn", status, &mut error));
        }
        Ok(LoadedModel { stage: self, model })
    }

    /// Calls `train_fn` with the `SM_TRAINING_ENV` JSON.
    pub fn train(&self, training_env_json: &str) -> Result<(), HookError> {
        let Some(train_fn) = self.hooks.train_fn else {
            return Err(HookError {
                stage: self.info.name.clone(),
                hook: "train_fn",
                status: abi::MODELSTAGE_ERR_INTERNAL,
                message: format!(
                    "{} has no training hook (train_fn); it can serve but not train",
                    self.info.file
                ),
                record: None,
            });
        };
        let mut error = ModelstageError::EMPTY;
        // SAFETY: the JSON is borrowed for the call; `error` is writable.
        let status = unsafe { train_fn(bytes(training_env_json.as_bytes()), &mut error) };
        if status != abi::MODELSTAGE_OK {
            return Err(self.hook_error("train_fn", status, &mut error));
        }
        Ok(())
    }
}

/// A model returned by `model_fn`, ready for requests.
pub struct LoadedModel {
    stage: &'static LoadedStage,
    model: ModelstageValue,
}

// SAFETY: the model is only ever called through `&self` methods. For stages
// that declare MODELSTAGE_THREADING_SHARED the ABI makes concurrent calls the
// stage's responsibility; for PER_INSTANCE stages the worker runs exactly one
// request thread per model, so the handle never sees concurrent calls.
unsafe impl Send for LoadedModel {}
// SAFETY: see `Send` above.
unsafe impl Sync for LoadedModel {}

impl Drop for LoadedModel {
    /// Releases the model through the stage's own function. Nothing else
    /// holds it: every call borrows `self`.
    fn drop(&mut self) {
        release_value(&mut self.model);
    }
}

/// An owned intermediate value, released on drop.
struct Owned(ModelstageValue);

impl Drop for Owned {
    fn drop(&mut self) {
        release_value(&mut self.0);
    }
}

impl LoadedModel {
    /// The stage the model was loaded by.
    pub fn stage(&self) -> &'static LoadedStage {
        self.stage
    }

    /// Runs one request: `transform_fn`, or `input_fn` → `predict_fn` →
    /// `output_fn` with the pass-through defaults of the ABI.
    pub fn invoke(&self, body: &[u8], meta: &RequestMeta) -> Result<Reply, HookError> {
        let attrs = meta.custom_attributes.as_deref().unwrap_or("");
        let target = meta.target_model.as_deref().unwrap_or("");
        // Always the whole request of this runtime's minor: a stage of an
        // older minor reads only the fields it knows.
        let request = ModelstageRequest {
            struct_size: std::mem::size_of::<ModelstageRequest>() as u32,
            request_id: bytes(meta.request_id.as_bytes()),
            content_type: bytes(meta.content_type.as_bytes()),
            accept: bytes(meta.accept.as_bytes()),
            custom_attributes: bytes(attrs.as_bytes()),
            target_model: bytes(target.as_bytes()),
        };
        let model = self.model.ptr as *const c_void;
        let hooks = &self.stage.hooks;
        let mut error = ModelstageError::EMPTY;

        if let Some(transform_fn) = hooks.transform_fn {
            let mut response = ModelstageResponse::EMPTY;
            // SAFETY: arguments as ModelstageTransformFn specifies; body and
            // request are borrowed for the call.
            let status = unsafe { transform_fn(model, bytes(body), &request, &mut response, &mut error) };
            return self.finish("transform_fn", status, response, &mut error, meta);
        }

        // input_fn, or the pass-through payload when the stage has none.
        let passthrough = ModelstagePayload {
            body: bytes(body),
            content_type: bytes(meta.content_type.as_bytes()),
        };
        let data = match hooks.input_fn {
            Some(input_fn) => {
                let mut data = ModelstageValue::EMPTY;
                // SAFETY: arguments as ModelstageInputFn specifies.
                let status = unsafe { input_fn(model, bytes(body), &request, &mut data, &mut error) };
                let data = Owned(data);
                if status != abi::MODELSTAGE_OK {
                    return Err(self.stage.hook_error("input_fn", status, &mut error));
                }
                Some(data)
            }
            None => None,
        };
        let data_ptr = match &data {
            Some(d) => d.0.ptr as *const c_void,
            None => &passthrough as *const ModelstagePayload as *const c_void,
        };

        let predict_fn = hooks
            .predict_fn
            .expect("checked at load: predict_fn or transform_fn");
        let mut prediction = ModelstageValue::EMPTY;
        // SAFETY: arguments as ModelstagePredictFn specifies; `data_ptr` is
        // the stage's own input value or our borrowed payload.
        let status = unsafe { predict_fn(model, data_ptr, &request, &mut prediction, &mut error) };
        let prediction = Owned(prediction);
        drop(data);
        if status != abi::MODELSTAGE_OK {
            return Err(self.stage.hook_error("predict_fn", status, &mut error));
        }

        match hooks.output_fn {
            Some(output_fn) => {
                let mut response = ModelstageResponse::EMPTY;
                // SAFETY: arguments as ModelstageOutputFn specifies.
                let status =
                    unsafe { output_fn(model, prediction.0.ptr, &request, &mut response, &mut error) };
                self.finish("output_fn", status, response, &mut error, meta)
            }
            None => {
                if prediction.0.ptr.is_null() {
                    return Err(HookError {
                        stage: self.stage.info.name.clone(),
                        hook: "predict_fn",
                        status: abi::MODELSTAGE_ERR_INTERNAL,
                        message: "returned no prediction; a stage without output_fn must return \
                                  a ModelstagePayload"
                            .into(),
                        record: None,
                    });
                }
                // SAFETY: without output_fn the ABI requires the prediction to
                // point to a ModelstagePayload valid until it is released.
                let payload = unsafe { &*(prediction.0.ptr as *const ModelstagePayload) };
                // SAFETY: the payload's slices are valid while the prediction lives.
                let (body, content_type) =
                    unsafe { (payload.body.as_slice(), payload.content_type.as_slice()) };
                Ok(Reply {
                    body: Bytes::copy_from_slice(body),
                    content_type: text(content_type.to_vec()),
                    custom_attributes: None,
                })
            }
        }
    }

    fn finish(
        &self,
        hook: &'static str,
        status: i32,
        mut response: ModelstageResponse,
        error: &mut ModelstageError,
        meta: &RequestMeta,
    ) -> Result<Reply, HookError> {
        let body = take_shared(&mut response.body);
        let content_type = text(take_owned(&mut response.content_type));
        let attrs = text(take_owned(&mut response.custom_attributes));
        if status != abi::MODELSTAGE_OK {
            return Err(self.stage.hook_error(hook, status, error));
        }
        Ok(Reply {
            body,
            content_type: if content_type.is_empty() {
                meta.accept.clone()
            } else {
                content_type
            },
            custom_attributes: if attrs.is_empty() { None } else { Some(attrs) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE_1_0: u32 = std::mem::size_of::<ModelstageAbiDescriptor>() as u32;

    /// A descriptor as a stage built from the 1.0 header declares it.
    fn descriptor(minor: u32, struct_size: u32) -> ModelstageAbiDescriptor {
        ModelstageAbiDescriptor {
            abi_major: abi::MODELSTAGE_ABI_MAJOR,
            abi_minor: minor,
            struct_size,
            threading: abi::MODELSTAGE_THREADING_PER_INSTANCE,
            stage_name: c"old".as_ptr(),
            stage_version: c"1.0.0".as_ptr(),
            max_concurrent_transforms: 3,
            batch_strategy: abi::MODELSTAGE_BATCH_SINGLE_RECORD,
            max_payload_in_mb: 7,
            reserved: 0,
        }
    }

    fn read(d: &ModelstageAbiDescriptor, speaks: u32, sizes: &[u32]) -> Result<Descriptor, DescriptorError> {
        // SAFETY: `d` is a whole descriptor of `struct_size` bytes or more.
        unsafe { read_descriptor(d, speaks, sizes) }
    }

    #[test]
    fn the_current_minor_loads_with_its_own_size() {
        let d = read(
            &descriptor(abi::MODELSTAGE_ABI_MINOR, SIZE_1_0),
            abi::MODELSTAGE_ABI_MINOR,
            &DESCRIPTOR_SIZES,
        )
        .unwrap();
        assert_eq!(
            (
                d.threading,
                d.max_concurrent_transforms,
                d.batch_strategy,
                d.max_payload_in_mb
            ),
            (1, 3, 2, 7)
        );
    }

    #[test]
    fn a_1_0_stage_keeps_loading_when_the_runtime_speaks_a_later_minor() {
        // A runtime of ABI 1.1 whose descriptor grew by a pointer-sized field.
        let sizes_1_1 = [SIZE_1_0, SIZE_1_0 + 8];
        let d = read(&descriptor(0, SIZE_1_0), 1, &sizes_1_1).unwrap();
        assert_eq!((d.abi_minor, d.threading, d.max_payload_in_mb), (0, 1, 7));
        // SAFETY: the test's static string.
        assert_eq!(unsafe { CStr::from_ptr(d.stage_name) }, c"old");
        // A stage that says 1.1 must bring the 1.1 size.
        assert_eq!(
            read(&descriptor(1, SIZE_1_0), 1, &sizes_1_1).unwrap_err(),
            DescriptorError::TooSmall {
                minor: 1,
                size: SIZE_1_0,
                needed: SIZE_1_0 + 8
            }
        );
    }

    #[test]
    fn this_runtime_loads_1_0_and_1_1_stages_and_refuses_1_2() {
        assert_eq!(abi::MODELSTAGE_ABI_MINOR, 1);
        for minor in [0, 1] {
            let d = read(&descriptor(minor, SIZE_1_0), 1, &DESCRIPTOR_SIZES).unwrap();
            assert_eq!((d.abi_minor, d.max_payload_in_mb), (minor, 7));
        }
        assert_eq!(
            read(&descriptor(2, SIZE_1_0), 1, &DESCRIPTOR_SIZES).unwrap_err(),
            DescriptorError::NewerMinor { found: 2, speaks: 1 }
        );
    }

    #[test]
    fn a_newer_minor_is_refused_with_both_versions_named() {
        let err = read(&descriptor(2, SIZE_1_0 + 16), 1, &[SIZE_1_0, SIZE_1_0 + 8]).unwrap_err();
        assert_eq!(err, DescriptorError::NewerMinor { found: 2, speaks: 1 });
        let message = err.into_load_error("libnew.so".into()).to_string();
        assert!(
            message.starts_with(
                "libnew.so needs stage ABI 1.2 but this modelstage only speaks ABI 1.1: upgrade"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_short_or_foreign_descriptor_is_refused() {
        let err = read(&descriptor(0, SIZE_1_0 - 4), 0, &DESCRIPTOR_SIZES).unwrap_err();
        let message = err.into_load_error("libshort.so".into()).to_string();
        assert!(
            message.contains(&format!("smaller than the {SIZE_1_0} bytes of ABI 1.0")),
            "{message}"
        );
        let mut foreign = descriptor(0, SIZE_1_0);
        foreign.abi_major = 2;
        assert_eq!(
            read(&foreign, 0, &DESCRIPTOR_SIZES).unwrap_err(),
            DescriptorError::WrongMajor { found: 2 }
        );
    }
}
