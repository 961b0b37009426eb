//! The export glue behind [`export_stage!`](crate::export_stage): turns the
//! safe traits into the C symbols of the ABI.
//!
//! Every function here is called only from the `extern "C"` functions that
//! the macro generates, with the pointers the runtime passes. They catch
//! panics (a panic never unwinds into the runtime), move Rust values behind
//! `ModelstageValue` handles with release functions from this library, and
//! turn `StageError`s into status codes and owned messages.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use modelstage_abi::{
    ModelstageBytes, ModelstageError, ModelstageOwnedBytes, ModelstageRequest, ModelstageResponse,
    ModelstageValue, MODELSTAGE_ERR_PANIC, MODELSTAGE_OK,
};

use crate::{Context, Model, Response, Stage, StageError, Train, TrainingEnv, TransformStage};

/// The descriptor's threading field for `T`.
pub const fn threading<T: Model>() -> u32 {
    match T::THREADING {
        crate::Threading::Shared => modelstage_abi::MODELSTAGE_THREADING_SHARED,
        crate::Threading::PerInstance => modelstage_abi::MODELSTAGE_THREADING_PER_INSTANCE,
    }
}

/// A descriptor's number field: the declared value, 0 when not declared.
pub const fn declared(value: Option<u32>) -> u32 {
    match value {
        Some(v) => v,
        None => 0,
    }
}

/// The descriptor's batch strategy field for `T`.
pub const fn batch_strategy<T: Model>() -> u32 {
    match T::EXECUTION_PARAMETERS.batch_strategy {
        None => modelstage_abi::MODELSTAGE_BATCH_UNSET,
        Some(crate::BatchStrategy::MultiRecord) => modelstage_abi::MODELSTAGE_BATCH_MULTI_RECORD,
        Some(crate::BatchStrategy::SingleRecord) => modelstage_abi::MODELSTAGE_BATCH_SINGLE_RECORD,
    }
}

/// The JSON of `T::SIGNATURE`, NUL-terminated and kept for the life of the
/// library, or null when nothing is declared. One stage per library, so one
/// static serves.
pub fn signature_json<T: Model>() -> *const std::ffi::c_char {
    static JSON: std::sync::OnceLock<Option<std::ffi::CString>> = std::sync::OnceLock::new();
    let json = JSON.get_or_init(|| {
        catch_unwind(|| T::SIGNATURE.to_json())
            .ok()
            .flatten()
            .and_then(|j| std::ffi::CString::new(j).ok())
    });
    json.as_ref().map_or(std::ptr::null(), |j| j.as_ptr())
}

unsafe extern "C" fn release_box<T>(ptr: *mut c_void) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Box::into_raw(Box<T>)` in `into_value::<T>`
        // and the runtime releases each value exactly once.
        drop(unsafe { Box::from_raw(ptr as *mut T) });
    }
}

unsafe extern "C" fn release_bytes(ptr: *mut u8, len: usize, _ctx: *mut c_void) {
    if !ptr.is_null() {
        // SAFETY: `ptr`/`len` came from `Box::<[u8]>::into_raw` in
        // `owned_bytes` and are released exactly once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

fn into_value<T>(value: T) -> ModelstageValue {
    ModelstageValue {
        ptr: Box::into_raw(Box::new(value)) as *mut c_void,
        release: Some(release_box::<T>),
    }
}

fn owned_bytes(bytes: Vec<u8>) -> ModelstageOwnedBytes {
    if bytes.is_empty() {
        return ModelstageOwnedBytes::EMPTY;
    }
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    ModelstageOwnedBytes {
        ptr: Box::into_raw(boxed) as *mut u8,
        len,
        ctx: std::ptr::null_mut(),
        release: Some(release_bytes),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Runs `f`, turning its error or panic into a status and `*error`.
///
/// # Safety
/// `error` must be null or point to a writable `ModelstageError`.
unsafe fn guarded(error: *mut ModelstageError, f: impl FnOnce() -> Result<(), StageError>) -> i32 {
    let (status, message, record) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return MODELSTAGE_OK,
        Ok(Err(e)) => (e.kind.status(), e.message, e.record),
        Err(payload) => (
            MODELSTAGE_ERR_PANIC,
            format!("panicked: {}", panic_message(payload.as_ref())),
            None,
        ),
    };
    if !error.is_null() {
        // The fields are written one by one: `struct_size` is the runtime's.
        // SAFETY: the caller guarantees `error` is writable when not null.
        unsafe {
            (*error).message = owned_bytes(crate::excerpt::bound_message(message).into_bytes());
            (*error).record = record.map(|r| r as i64).unwrap_or(-1);
        }
    }
    status
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, StageError> {
    std::str::from_utf8(bytes).map_err(|_| StageError::bad_request(format!("{what} is not valid UTF-8")))
}

/// The bytes of the request that the ABI 1.1 field `target_model` ends at:
/// a request whose `struct_size` is smaller comes from a runtime of ABI 1.0
/// and has no such field.
const REQUEST_SIZE_1_1: usize =
    std::mem::offset_of!(ModelstageRequest, target_model) + std::mem::size_of::<ModelstageBytes>();

/// Builds the SDK context from the ABI request. Fields a later minor
/// appended are read only when the request's `struct_size` covers them, and
/// each field is read in place, so nothing past what the runtime allocated
/// is touched.
///
/// # Safety
/// `request` must point to a valid `ModelstageRequest` of at least ABI 1.0's
/// fields and of `struct_size` bytes, whose slices outlive `'a`.
unsafe fn context<'a>(request: *const ModelstageRequest) -> Result<Context<'a>, StageError> {
    use std::ptr::addr_of;
    // SAFETY: the fields of ABI 1.0 are in every request (the caller's
    // contract); each is read without making a reference to the whole,
    // possibly shorter, struct. The runtime borrows the slices for the call.
    let (id, ct, accept, attrs, size) = unsafe {
        (
            addr_of!((*request).request_id).read().as_slice(),
            addr_of!((*request).content_type).read().as_slice(),
            addr_of!((*request).accept).read().as_slice(),
            addr_of!((*request).custom_attributes).read().as_slice(),
            addr_of!((*request).struct_size).read() as usize,
        )
    };
    let target = if size >= REQUEST_SIZE_1_1 {
        // SAFETY: read only when the runtime's `struct_size` says the field
        // is there; borrowed for the call like the others.
        unsafe { addr_of!((*request).target_model).read().as_slice() }
    } else {
        &[]
    };
    crate::logging::set_request_id(std::str::from_utf8(id).ok());
    let optional = |bytes: &'a [u8], header: &str| -> Result<Option<&'a str>, StageError> {
        if bytes.is_empty() {
            Ok(None)
        } else {
            utf8(bytes, header).map(Some)
        }
    };
    Ok(Context {
        request_id: utf8(id, "the request id")?,
        content_type: utf8(ct, "Content-Type")?,
        accept: utf8(accept, "Accept")?,
        custom_attributes: optional(attrs, "X-Amzn-SageMaker-Custom-Attributes")?,
        target_model: optional(target, "X-Amzn-SageMaker-Target-Model")?,
    })
}

/// Writes a hook's `Response` into the runtime's zero-filled response.
///
/// # Safety
/// `out` must point to a writable `ModelstageResponse`.
unsafe fn write_response(out: *mut ModelstageResponse, response: Response) {
    // The fields are written one by one: `struct_size` is the runtime's.
    // SAFETY: guaranteed by the caller.
    unsafe {
        (*out).body = owned_bytes(response.body);
        (*out).content_type = owned_bytes(response.content_type.into_bytes());
        (*out).custom_attributes = owned_bytes(response.custom_attributes.unwrap_or_default().into_bytes());
    }
}

/// `model_fn` for `T`.
///
/// # Safety
/// The arguments are those of `ModelstageModelFn`, as the runtime passes them.
pub unsafe fn model_fn<T: Model>(
    stage_name: &str,
    model_dir: ModelstageBytes,
    model: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32 {
    crate::logging::init(stage_name);
    // SAFETY: arguments as the ABI specifies (borrowed path, writable out-params).
    unsafe {
        guarded(error, || {
            let dir = utf8(model_dir.as_slice(), "the model dir")?;
            let loaded = T::model_fn(Path::new(dir))?;
            *model = into_value(loaded);
            Ok(())
        })
    }
}

/// `input_fn` for `T`: the decoded input goes behind a `Box<Option<Input>>`
/// so that `predict_fn` can take it by value.
///
/// # Safety
/// The arguments are those of `ModelstageInputFn`; `model` came from `model_fn::<T>`.
pub unsafe fn input_fn<T: Stage>(
    model: *const c_void,
    body: ModelstageBytes,
    request: *const ModelstageRequest,
    data: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32 {
    // SAFETY: `model` points to the `T` that `model_fn::<T>` boxed; the other
    // arguments are borrowed or writable as the ABI specifies.
    unsafe {
        guarded(error, || {
            let stage = &*(model as *const T);
            let ctx = context(request)?;
            let input = stage.input_fn(body.as_slice(), &ctx)?;
            *data = into_value(Some(input));
            Ok(())
        })
    }
}

/// `predict_fn` for `T`.
///
/// # Safety
/// The arguments are those of `ModelstagePredictFn`; `data` came from
/// `input_fn::<T>` and is not used by the runtime during the call.
pub unsafe fn predict_fn<T: Stage>(
    model: *const c_void,
    data: *const c_void,
    request: *const ModelstageRequest,
    prediction: *mut ModelstageValue,
    error: *mut ModelstageError,
) -> i32 {
    // SAFETY: `data` is the `Box<Option<T::Input>>` from `input_fn::<T>`, owned
    // by the runtime and handed to this call alone; taking the value leaves
    // `None` for the release function.
    unsafe {
        guarded(error, || {
            let stage = &*(model as *const T);
            let ctx = context(request)?;
            let input = (*(data as *mut Option<T::Input>))
                .take()
                .ok_or_else(|| StageError::internal("predict_fn was given an input twice"))?;
            let output = stage.predict_fn(input, &ctx)?;
            *prediction = into_value(Some(output));
            Ok(())
        })
    }
}

/// `output_fn` for `T`.
///
/// # Safety
/// The arguments are those of `ModelstageOutputFn`; `prediction` came from
/// `predict_fn::<T>`.
pub unsafe fn output_fn<T: Stage>(
    model: *const c_void,
    prediction: *const c_void,
    request: *const ModelstageRequest,
    response: *mut ModelstageResponse,
    error: *mut ModelstageError,
) -> i32 {
    // SAFETY: as for `predict_fn::<T>`, with the prediction's box.
    unsafe {
        guarded(error, || {
            let stage = &*(model as *const T);
            let ctx = context(request)?;
            let prediction = (*(prediction as *mut Option<T::Output>))
                .take()
                .ok_or_else(|| StageError::internal("output_fn was given a prediction twice"))?;
            let out = stage.output_fn(prediction, &ctx)?;
            write_response(response, out);
            Ok(())
        })
    }
}

/// `transform_fn` for `T`.
///
/// # Safety
/// The arguments are those of `ModelstageTransformFn`.
pub unsafe fn transform_fn<T: TransformStage>(
    model: *const c_void,
    body: ModelstageBytes,
    request: *const ModelstageRequest,
    response: *mut ModelstageResponse,
    error: *mut ModelstageError,
) -> i32 {
    // SAFETY: as for `input_fn::<T>`.
    unsafe {
        guarded(error, || {
            let stage = &*(model as *const T);
            let ctx = context(request)?;
            let out = stage.transform_fn(body.as_slice(), &ctx)?;
            write_response(response, out);
            Ok(())
        })
    }
}

/// `train_fn` for `T`.
///
/// # Safety
/// The arguments are those of `ModelstageTrainFn`.
pub unsafe fn train_fn<T: Train>(
    stage_name: &str,
    training_env_json: ModelstageBytes,
    error: *mut ModelstageError,
) -> i32 {
    crate::logging::init(stage_name);
    // SAFETY: the JSON is borrowed for the call; `error` is writable.
    unsafe {
        guarded(error, || {
            let json = utf8(training_env_json.as_slice(), "SM_TRAINING_ENV")?;
            let env = TrainingEnv::from_json(json)?;
            T::train_fn(&env)
        })
    }
}

/// Exports a stage: the `modelstage_abi` descriptor and the hooks of the ABI.
///
/// - `export_stage!(MyStage)`: `MyStage: Stage` (input, predict, output).
/// - `export_stage!(MyStage, train)`: also `MyStage: Train` (`train_fn`).
/// - `export_stage!(transform MyStage)` / `export_stage!(transform MyStage, train)`:
///   `MyStage: TransformStage` (`transform_fn`).
///
/// The descriptor names the stage after its crate (`CARGO_PKG_NAME`,
/// `CARGO_PKG_VERSION`). Call the macro once, at the crate root.
#[macro_export]
macro_rules! export_stage {
    ($stage:ty) => {
        $crate::__export_descriptor!($stage);
        $crate::__export_stage_hooks!($stage);
    };
    ($stage:ty, train) => {
        $crate::__export_descriptor!($stage);
        $crate::__export_stage_hooks!($stage);
        $crate::__export_train!($stage);
    };
    (transform $stage:ty) => {
        $crate::__export_descriptor!($stage);
        $crate::__export_transform_hook!($stage);
    };
    (transform $stage:ty, train) => {
        $crate::__export_descriptor!($stage);
        $crate::__export_transform_hook!($stage);
        $crate::__export_train!($stage);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_descriptor {
    ($stage:ty) => {
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static modelstage_abi: $crate::abi::ModelstageAbiDescriptor =
            $crate::abi::ModelstageAbiDescriptor {
                abi_major: $crate::abi::MODELSTAGE_ABI_MAJOR,
                abi_minor: $crate::abi::MODELSTAGE_ABI_MINOR,
                struct_size: ::core::mem::size_of::<$crate::abi::ModelstageAbiDescriptor>() as u32,
                threading: $crate::export::threading::<$stage>(),
                stage_name: concat!(env!("CARGO_PKG_NAME"), "\0").as_ptr() as *const ::core::ffi::c_char,
                stage_version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr()
                    as *const ::core::ffi::c_char,
                max_concurrent_transforms: $crate::export::declared(
                    <$stage as $crate::Model>::EXECUTION_PARAMETERS.max_concurrent_transforms,
                ),
                batch_strategy: $crate::export::batch_strategy::<$stage>(),
                max_payload_in_mb: $crate::export::declared(
                    <$stage as $crate::Model>::EXECUTION_PARAMETERS.max_payload_in_mb,
                ),
                reserved: 0,
            };

        /// The optional `modelstage_signature_json`: the declared tensors.
        #[no_mangle]
        pub extern "C" fn modelstage_signature_json() -> *const ::core::ffi::c_char {
            $crate::export::signature_json::<$stage>()
        }

        /// The ABI's `model_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn model_fn(
            model_dir: $crate::abi::ModelstageBytes,
            model: *mut $crate::abi::ModelstageValue,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::model_fn::<$stage>(env!("CARGO_PKG_NAME"), model_dir, model, error) }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_stage_hooks {
    ($stage:ty) => {
        /// The ABI's `input_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn input_fn(
            model: *const ::core::ffi::c_void,
            body: $crate::abi::ModelstageBytes,
            request: *const $crate::abi::ModelstageRequest,
            data: *mut $crate::abi::ModelstageValue,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::input_fn::<$stage>(model, body, request, data, error) }
        }

        /// The ABI's `predict_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn predict_fn(
            model: *const ::core::ffi::c_void,
            data: *const ::core::ffi::c_void,
            request: *const $crate::abi::ModelstageRequest,
            prediction: *mut $crate::abi::ModelstageValue,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::predict_fn::<$stage>(model, data, request, prediction, error) }
        }

        /// The ABI's `output_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn output_fn(
            model: *const ::core::ffi::c_void,
            prediction: *const ::core::ffi::c_void,
            request: *const $crate::abi::ModelstageRequest,
            response: *mut $crate::abi::ModelstageResponse,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::output_fn::<$stage>(model, prediction, request, response, error) }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_transform_hook {
    ($stage:ty) => {
        /// The ABI's `transform_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn transform_fn(
            model: *const ::core::ffi::c_void,
            body: $crate::abi::ModelstageBytes,
            request: *const $crate::abi::ModelstageRequest,
            response: *mut $crate::abi::ModelstageResponse,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::transform_fn::<$stage>(model, body, request, response, error) }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_train {
    ($stage:ty) => {
        /// The ABI's `train_fn`.
        ///
        /// # Safety
        /// Called by the modelstage runtime with the arguments the ABI specifies.
        #[no_mangle]
        pub unsafe extern "C" fn train_fn(
            training_env_json: $crate::abi::ModelstageBytes,
            error: *mut $crate::abi::ModelstageError,
        ) -> i32 {
            // SAFETY: the runtime passes the arguments as the ABI specifies.
            unsafe { $crate::export::train_fn::<$stage>(env!("CARGO_PKG_NAME"), training_env_json, error) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of this SDK's minor, with `struct_size` as a runtime
    /// declares it.
    fn request(struct_size: usize, target: &'static [u8]) -> ModelstageRequest {
        ModelstageRequest {
            struct_size: struct_size as u32,
            request_id: ModelstageBytes::from_slice(b"r-1"),
            content_type: ModelstageBytes::from_slice(b"text/csv"),
            accept: ModelstageBytes::from_slice(b"text/csv"),
            custom_attributes: ModelstageBytes::EMPTY,
            target_model: ModelstageBytes::from_slice(target),
        }
    }

    #[test]
    fn a_1_1_request_names_its_target_model() {
        let r = request(std::mem::size_of::<ModelstageRequest>(), b"a.tar.gz");
        // SAFETY: a whole request whose slices are static.
        let ctx = unsafe { context(&r) }.unwrap();
        assert_eq!(
            (ctx.target_model, ctx.custom_attributes),
            (Some("a.tar.gz"), None)
        );
        let r = request(std::mem::size_of::<ModelstageRequest>(), b"");
        // SAFETY: as above.
        assert_eq!(unsafe { context(&r) }.unwrap().target_model, None);
    }

    #[test]
    fn a_1_0_sized_request_has_no_target_model_whatever_lies_past_it() {
        // A runtime of ABI 1.0 allocates the request without the field; what
        // follows it in memory must never be taken for one.
        let size_1_0 = std::mem::offset_of!(ModelstageRequest, target_model);
        let r = request(size_1_0, b"not-the-runtime's");
        // SAFETY: the request is whole; the test is that the field past
        // `struct_size` is left alone.
        let ctx = unsafe { context(&r) }.unwrap();
        assert_eq!(ctx.target_model, None);
        assert_eq!(ctx.request_id, "r-1");
    }

    #[test]
    fn a_target_model_that_is_not_utf8_is_a_bad_request() {
        let r = request(std::mem::size_of::<ModelstageRequest>(), b"\xff");
        // SAFETY: a whole request whose slices are static.
        let err = unsafe { context(&r) }.unwrap_err();
        assert!(
            err.message.contains("X-Amzn-SageMaker-Target-Model"),
            "{}",
            err.message
        );
    }
}
