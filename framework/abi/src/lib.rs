//! `modelstage-abi`: the stage ABI, version 1, as `#[repr(C)]` Rust types.
//!
//! This crate has no dependencies and no code: only the types, constants and
//! symbol names that a stage library and the `modelstage` runtime agree on.
//! `include/modelstage.h` is generated from this file (see `tests/header.rs`)
//! and CI fails when the two drift. `docs/abi.md` is the reference: every hook
//! with its ownership and threading rules, the status table and the
//! versioning policy.
//!
//! The shape follows systems that proved it: a magic descriptor read before
//! anything else (PostgreSQL's `PG_MODULE_MAGIC`), ownership stated on every
//! function and a release function for everything a library hands out
//! (Triton's backend API), and a descriptor that only grows at its end.

#![warn(unreachable_pub)]
// The C ABI itself: `unsafe impl Send`/`Sync` for its pointer types and the
// slice accessors are what the crate is for (each with its `// SAFETY:`).
#![allow(unsafe_code)]
#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_void};

/// Major version of this ABI. A library built for another major is refused.
pub const MODELSTAGE_ABI_MAJOR: u32 = 1;
/// Minor version of this ABI. A library built for a newer minor than the
/// runtime's is refused; an older minor is accepted (minor changes only append).
pub const MODELSTAGE_ABI_MINOR: u32 = 1;

/// Name of the descriptor symbol every stage exports (a `ModelstageAbiDescriptor`).
pub const SYMBOL_DESCRIPTOR: &str = "modelstage_abi";
/// Required: loads the model. See `ModelstageModelFn`.
pub const SYMBOL_MODEL_FN: &str = "model_fn";
/// Optional: decodes a request body. See `ModelstageInputFn`.
pub const SYMBOL_INPUT_FN: &str = "input_fn";
/// Required unless `transform_fn` is exported. See `ModelstagePredictFn`.
pub const SYMBOL_PREDICT_FN: &str = "predict_fn";
/// Optional: encodes a prediction. See `ModelstageOutputFn`.
pub const SYMBOL_OUTPUT_FN: &str = "output_fn";
/// Optional, exclusive with input/predict/output. See `ModelstageTransformFn`.
pub const SYMBOL_TRANSFORM_FN: &str = "transform_fn";
/// Optional: the training hook. See `ModelstageTrainFn`.
pub const SYMBOL_TRAIN_FN: &str = "train_fn";

/// Threading mode: one model per worker process, shared by that process's
/// request threads, called concurrently. The stage must be thread-safe.
pub const MODELSTAGE_THREADING_SHARED: u32 = 0;
/// Threading mode: the runtime never calls into one model from two threads at
/// once (one request thread per worker process).
pub const MODELSTAGE_THREADING_PER_INSTANCE: u32 = 1;

/// Batch strategy left to the platform (or `SAGEMAKER_BATCH_STRATEGY`).
pub const MODELSTAGE_BATCH_UNSET: u32 = 0;
/// Batch strategy `MULTI_RECORD`.
pub const MODELSTAGE_BATCH_MULTI_RECORD: u32 = 1;
/// Batch strategy `SINGLE_RECORD`.
pub const MODELSTAGE_BATCH_SINGLE_RECORD: u32 = 2;

/// Status: success.
pub const MODELSTAGE_OK: i32 = 0;
/// Status: the request is malformed (HTTP 400).
pub const MODELSTAGE_ERR_BAD_REQUEST: i32 = 1;
/// Status: the request's Content-Type is not supported (HTTP 415).
pub const MODELSTAGE_ERR_UNSUPPORTED_CONTENT_TYPE: i32 = 2;
/// Status: the request's Accept is not supported (HTTP 406).
pub const MODELSTAGE_ERR_UNSUPPORTED_ACCEPT: i32 = 3;
/// Status: the stage failed (HTTP 500).
pub const MODELSTAGE_ERR_INTERNAL: i32 = 4;
/// Status: a panic was caught at the boundary (HTTP 500).
pub const MODELSTAGE_ERR_PANIC: i32 = 5;
/// Status: the stage cannot take work now (HTTP 503).
pub const MODELSTAGE_ERR_UNAVAILABLE: i32 = 6;
/// Status: the payload is too large for the stage (HTTP 413).
pub const MODELSTAGE_ERR_PAYLOAD_TOO_LARGE: i32 = 7;

/// A borrowed byte slice: valid only for the duration of the call that
/// receives it. Text is UTF-8 and not NUL-terminated. `ptr` may be null only
/// when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModelstageBytes {
    pub ptr: *const u8,
    pub len: usize,
}

/// Bytes handed from one side to the other together with the function that
/// frees them. The receiver calls `release(ptr, len, ctx)` exactly once when
/// it is done, unless `release` is null (static data). The release function
/// belongs to the library that allocated the bytes.
#[repr(C)]
pub struct ModelstageOwnedBytes {
    pub ptr: *mut u8,
    pub len: usize,
    pub ctx: *mut c_void,
    pub release: Option<unsafe extern "C" fn(ptr: *mut u8, len: usize, ctx: *mut c_void)>,
}

/// An opaque value a stage hands to the runtime (a model, decoded input or a
/// prediction), with the function that frees it. `release` may be null when
/// there is nothing to free.
#[repr(C)]
pub struct ModelstageValue {
    pub ptr: *mut c_void,
    pub release: Option<unsafe extern "C" fn(ptr: *mut c_void)>,
}

/// The error a hook reports. The hook fills it when it returns a non-zero
/// status; the runtime releases `message` (UTF-8) with its release function.
/// `record` is the zero-based index of the offending record, or -1.
#[repr(C)]
pub struct ModelstageError {
    /// `sizeof(ModelstageError)` as the runtime allocated it; set by the
    /// runtime. A hook writes only fields that lie within it, and never
    /// writes this one, so later minors can append fields.
    pub struct_size: u32,
    pub message: ModelstageOwnedBytes,
    pub record: i64,
}

/// A raw payload: what `predict_fn` receives when the stage has no
/// `input_fn`, and what it must return (behind a `ModelstageValue`) when the
/// stage has no `output_fn`. Borrowed for the call when the runtime passes it.
#[repr(C)]
pub struct ModelstagePayload {
    pub body: ModelstageBytes,
    pub content_type: ModelstageBytes,
}

/// Everything about one request besides its body, borrowed for the call.
/// `struct_size` lets later minors append fields.
#[repr(C)]
pub struct ModelstageRequest {
    pub struct_size: u32,
    /// The correlation id of the request (also in every log line).
    pub request_id: ModelstageBytes,
    /// `Content-Type` as the client sent it, parameters included.
    pub content_type: ModelstageBytes,
    /// The resolved Accept: the client's, or the default when it was
    /// missing or the wildcard (any type).
    pub accept: ModelstageBytes,
    /// `X-Amzn-SageMaker-Custom-Attributes`; `len` 0 when absent.
    pub custom_attributes: ModelstageBytes,
    /// ABI 1.1: `X-Amzn-SageMaker-Target-Model`, the model of a multi-model
    /// endpoint the request is for; `len` 0 when absent. Read it only when
    /// `struct_size` covers it: a runtime of ABI 1.0 passes a request
    /// that ends before this field.
    pub target_model: ModelstageBytes,
}

/// The response a stage produces in `output_fn` or `transform_fn`. The runtime
/// zero-fills it before the call and releases every field the stage set.
/// `custom_attributes` left empty means the header is not set.
#[repr(C)]
pub struct ModelstageResponse {
    /// `sizeof(ModelstageResponse)` as the runtime allocated it; set by the
    /// runtime. A hook writes only fields that lie within it, and never
    /// writes this one, so later minors can append fields.
    pub struct_size: u32,
    pub body: ModelstageOwnedBytes,
    pub content_type: ModelstageOwnedBytes,
    pub custom_attributes: ModelstageOwnedBytes,
}

/// The descriptor a stage exports under the symbol `modelstage_abi`. The
/// runtime reads it before touching any hook. It only ever grows at its end:
/// `struct_size` tells the runtime which fields this library knows.
#[repr(C)]
pub struct ModelstageAbiDescriptor {
    pub abi_major: u32,
    pub abi_minor: u32,
    /// `sizeof(ModelstageAbiDescriptor)` as the library was built.
    pub struct_size: u32,
    /// `MODELSTAGE_THREADING_SHARED` or `MODELSTAGE_THREADING_PER_INSTANCE`.
    pub threading: u32,
    /// Stage name, NUL-terminated, static.
    pub stage_name: *const c_char,
    /// Stage version, NUL-terminated, static.
    pub stage_version: *const c_char,
    /// Declared `MaxConcurrentTransforms`, 0 when not declared.
    pub max_concurrent_transforms: u32,
    /// `MODELSTAGE_BATCH_*`.
    pub batch_strategy: u32,
    /// Declared `MaxPayloadInMB`, 0 when not declared.
    pub max_payload_in_mb: u32,
    pub reserved: u32,
}

// SAFETY: the descriptor is immutable static data; its pointers point to
// static NUL-terminated strings, so sharing it between threads is sound.
unsafe impl Sync for ModelstageAbiDescriptor {}

/// `model_fn`: loads the model from `model_dir` (UTF-8 path, borrowed).
/// On success writes the model to `*model` and returns `MODELSTAGE_OK`; the
/// runtime keeps it for the life of the process. On failure fills `*error`.
/// Called once per worker process (per request thread in
/// `MODELSTAGE_THREADING_PER_INSTANCE` mode), before any other hook.
pub type ModelstageModelFn = unsafe extern "C" fn(
    model_dir: ModelstageBytes,
    model: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32;

/// `input_fn`: decodes `body` (borrowed) into `*data`, which the runtime owns
/// from then on and releases after `predict_fn` returns. `model` is borrowed.
pub type ModelstageInputFn = unsafe extern "C" fn(
    model: *const c_void,
    body: ModelstageBytes,
    request: *const ModelstageRequest,
    data: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32;

/// `predict_fn`: computes `*prediction` from `data` (borrowed; a
/// `ModelstagePayload*` when the stage has no `input_fn`). The runtime owns
/// the prediction and releases it after `output_fn` returns. When the stage
/// has no `output_fn`, the prediction must point to a `ModelstagePayload`
/// that stays valid until the prediction is released.
pub type ModelstagePredictFn = unsafe extern "C" fn(
    model: *const c_void,
    data: *const c_void,
    request: *const ModelstageRequest,
    prediction: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32;

/// `output_fn`: encodes `prediction` (borrowed) for `request->accept` into
/// `*response` (zero-filled by the runtime, released by the runtime).
pub type ModelstageOutputFn = unsafe extern "C" fn(
    model: *const c_void,
    prediction: *const c_void,
    request: *const ModelstageRequest,
    response: *mut ModelstageResponse,
    error: *mut ModelstageError,
) -> i32;

/// `transform_fn`: the whole request in one hook; replaces input, predict and
/// output. `body` is borrowed; `*response` as for `output_fn`.
pub type ModelstageTransformFn = unsafe extern "C" fn(
    model: *const c_void,
    body: ModelstageBytes,
    request: *const ModelstageRequest,
    response: *mut ModelstageResponse,
    error: *mut ModelstageError,
) -> i32;

/// `train_fn`: trains with the environment `training_env_json` (borrowed, the
/// `SM_TRAINING_ENV` JSON; every `SM_*` variable is also set in the process
/// environment). Writes its artifacts to the model dir named there.
pub type ModelstageTrainFn =
    unsafe extern "C" fn(training_env_json: ModelstageBytes, error: *mut ModelstageError) -> i32;

/// Maps a hook status to the HTTP status the runtime answers with.
pub const fn http_status(status: i32) -> u16 {
    match status {
        MODELSTAGE_OK => 200,
        MODELSTAGE_ERR_BAD_REQUEST => 400,
        MODELSTAGE_ERR_UNSUPPORTED_CONTENT_TYPE => 415,
        MODELSTAGE_ERR_UNSUPPORTED_ACCEPT => 406,
        MODELSTAGE_ERR_UNAVAILABLE => 503,
        MODELSTAGE_ERR_PAYLOAD_TOO_LARGE => 413,
        _ => 500,
    }
}

// The zero values below are Rust conveniences; the header defines its own
// macros of the same names in cbindgen.toml, written to compile as C and C++.

/// cbindgen:ignore
impl ModelstageBytes {
    /// An empty slice.
    pub const EMPTY: ModelstageBytes = ModelstageBytes {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// Borrows `s` for a call.
    pub const fn from_slice(s: &[u8]) -> ModelstageBytes {
        ModelstageBytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Views the bytes as a slice.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a` (or `len`
    /// must be 0).
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller, as this function's contract says.
            unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// cbindgen:ignore
impl ModelstageOwnedBytes {
    /// No bytes, nothing to release.
    pub const EMPTY: ModelstageOwnedBytes = ModelstageOwnedBytes {
        ptr: core::ptr::null_mut(),
        len: 0,
        ctx: core::ptr::null_mut(),
        release: None,
    };
}

/// cbindgen:ignore
impl ModelstageValue {
    /// No value, nothing to release.
    pub const EMPTY: ModelstageValue = ModelstageValue {
        ptr: core::ptr::null_mut(),
        release: None,
    };
}

/// cbindgen:ignore
impl ModelstageError {
    /// No error yet, with its size set, as the runtime passes it.
    pub const EMPTY: ModelstageError = ModelstageError {
        struct_size: core::mem::size_of::<ModelstageError>() as u32,
        message: ModelstageOwnedBytes::EMPTY,
        record: -1,
    };
}

/// cbindgen:ignore
impl ModelstageResponse {
    /// A zero-filled response with its size set, as the runtime passes it.
    pub const EMPTY: ModelstageResponse = ModelstageResponse {
        struct_size: core::mem::size_of::<ModelstageResponse>() as u32,
        body: ModelstageOwnedBytes::EMPTY,
        content_type: ModelstageOwnedBytes::EMPTY,
        custom_attributes: ModelstageOwnedBytes::EMPTY,
    };
}
