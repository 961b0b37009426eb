/*
 * modelstage.h: the modelstage stage ABI, version 1. Compiles as C11 and as
 * C++11 or later.
 *
 * GENERATED from framework/abi/src/lib.rs by framework/abi/tests/header.rs.
 * Do not edit: change the Rust definitions and run
 *   MODELSTAGE_BLESS=1 cargo test -p modelstage-abi --test header
 * CI fails when this file and the Rust definitions drift.
 *
 * A stage exports:
 *   const ModelstageAbiDescriptor modelstage_abi;       (required, read first)
 *   int32_t model_fn(...);     ModelstageModelFn      (required)
 *   int32_t predict_fn(...);   ModelstagePredictFn    (required unless transform_fn)
 *   int32_t input_fn(...);     ModelstageInputFn      (optional)
 *   int32_t output_fn(...);    ModelstageOutputFn     (optional)
 *   int32_t transform_fn(...); ModelstageTransformFn  (optional, exclusive)
 *   int32_t train_fn(...);     ModelstageTrainFn      (optional)
 * See docs/abi.md for ownership, threading and versioning.
 */

#ifndef MODELSTAGE_H
#define MODELSTAGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
/*
 * Zero values of the structs the two sides exchange, usable as expressions
 * in C (compound literals) and in C++ (braced temporaries). The runtime
 * passes ModelstageError_EMPTY and ModelstageResponse_EMPTY to every hook,
 * with struct_size set.
 */
#ifdef __cplusplus
#define MODELSTAGE_LITERAL_(T) T
#else
#define MODELSTAGE_LITERAL_(T) (T)
#endif
#define ModelstageBytes_EMPTY MODELSTAGE_LITERAL_(ModelstageBytes){ NULL, 0 }
#define ModelstageOwnedBytes_EMPTY MODELSTAGE_LITERAL_(ModelstageOwnedBytes){ NULL, 0, NULL, NULL }
#define ModelstageValue_EMPTY MODELSTAGE_LITERAL_(ModelstageValue){ NULL, NULL }
#define ModelstageError_EMPTY MODELSTAGE_LITERAL_(ModelstageError){ \
    (uint32_t)sizeof(ModelstageError), ModelstageOwnedBytes_EMPTY, -1 }
#define ModelstageResponse_EMPTY MODELSTAGE_LITERAL_(ModelstageResponse){ \
    (uint32_t)sizeof(ModelstageResponse), ModelstageOwnedBytes_EMPTY, \
    ModelstageOwnedBytes_EMPTY, ModelstageOwnedBytes_EMPTY }


/*
 Major version of this ABI. A library built for another major is refused.
 */
#define MODELSTAGE_ABI_MAJOR 1

/*
 Minor version of this ABI. A library built for a newer minor than the
 runtime's is refused; an older minor is accepted (minor changes only append).
 */
#define MODELSTAGE_ABI_MINOR 1

/*
 Threading mode: one model per worker process, shared by that process's
 request threads, called concurrently. The stage must be thread-safe.
 */
#define MODELSTAGE_THREADING_SHARED 0

/*
 Threading mode: the runtime never calls into one model from two threads at
 once (one request thread per worker process).
 */
#define MODELSTAGE_THREADING_PER_INSTANCE 1

/*
 Batch strategy left to the platform (or `SAGEMAKER_BATCH_STRATEGY`).
 */
#define MODELSTAGE_BATCH_UNSET 0

/*
 Batch strategy `MULTI_RECORD`.
 */
#define MODELSTAGE_BATCH_MULTI_RECORD 1

/*
 Batch strategy `SINGLE_RECORD`.
 */
#define MODELSTAGE_BATCH_SINGLE_RECORD 2

/*
 Status: success.
 */
#define MODELSTAGE_OK 0

/*
 Status: the request is malformed (HTTP 400).
 */
#define MODELSTAGE_ERR_BAD_REQUEST 1

/*
 Status: the request's Content-Type is not supported (HTTP 415).
 */
#define MODELSTAGE_ERR_UNSUPPORTED_CONTENT_TYPE 2

/*
 Status: the request's Accept is not supported (HTTP 406).
 */
#define MODELSTAGE_ERR_UNSUPPORTED_ACCEPT 3

/*
 Status: the stage failed (HTTP 500).
 */
#define MODELSTAGE_ERR_INTERNAL 4

/*
 Status: a panic was caught at the boundary (HTTP 500).
 */
#define MODELSTAGE_ERR_PANIC 5

/*
 Status: the stage cannot take work now (HTTP 503).
 */
#define MODELSTAGE_ERR_UNAVAILABLE 6

/*
 Status: the payload is too large for the stage (HTTP 413).
 */
#define MODELSTAGE_ERR_PAYLOAD_TOO_LARGE 7

/*
 The descriptor a stage exports under the symbol `modelstage_abi`. The
 runtime reads it before touching any hook. It only ever grows at its end:
 `struct_size` tells the runtime which fields this library knows.
 */
typedef struct ModelstageAbiDescriptor {
  uint32_t abi_major;
  uint32_t abi_minor;
  /*
   `sizeof(ModelstageAbiDescriptor)` as the library was built.
   */
  uint32_t struct_size;
  /*
   `MODELSTAGE_THREADING_SHARED` or `MODELSTAGE_THREADING_PER_INSTANCE`.
   */
  uint32_t threading;
  /*
   Stage name, NUL-terminated, static.
   */
  const char *stage_name;
  /*
   Stage version, NUL-terminated, static.
   */
  const char *stage_version;
  /*
   Declared `MaxConcurrentTransforms`, 0 when not declared.
   */
  uint32_t max_concurrent_transforms;
  /*
   `MODELSTAGE_BATCH_*`.
   */
  uint32_t batch_strategy;
  /*
   Declared `MaxPayloadInMB`, 0 when not declared.
   */
  uint32_t max_payload_in_mb;
  uint32_t reserved;
} ModelstageAbiDescriptor;

/*
 A borrowed byte slice: valid only for the duration of the call that
 receives it. Text is UTF-8 and not NUL-terminated. `ptr` may be null only
 when `len` is 0.
 */
typedef struct ModelstageBytes {
  const uint8_t *ptr;
  size_t len;
} ModelstageBytes;

/*
 A raw payload: what `predict_fn` receives when the stage has no
 `input_fn`, and what it must return (behind a `ModelstageValue`) when the
 stage has no `output_fn`. Borrowed for the call when the runtime passes it.
 */
typedef struct ModelstagePayload {
  struct ModelstageBytes body;
  struct ModelstageBytes content_type;
} ModelstagePayload;

/*
 An opaque value a stage hands to the runtime (a model, decoded input or a
 prediction), with the function that frees it. `release` may be null when
 there is nothing to free.
 */
typedef struct ModelstageValue {
  void *ptr;
  void (*release)(void *ptr);
} ModelstageValue;

/*
 Bytes handed from one side to the other together with the function that
 frees them. The receiver calls `release(ptr, len, ctx)` exactly once when
 it is done, unless `release` is null (static data). The release function
 belongs to the library that allocated the bytes.
 */
typedef struct ModelstageOwnedBytes {
  uint8_t *ptr;
  size_t len;
  void *ctx;
  void (*release)(uint8_t *ptr, size_t len, void *ctx);
} ModelstageOwnedBytes;

/*
 The error a hook reports. The hook fills it when it returns a non-zero
 status; the runtime releases `message` (UTF-8) with its release function.
 `record` is the zero-based index of the offending record, or -1.
 */
typedef struct ModelstageError {
  /*
   `sizeof(ModelstageError)` as the runtime allocated it; set by the
   runtime. A hook writes only fields that lie within it, and never
   writes this one, so later minors can append fields.
   */
  uint32_t struct_size;
  struct ModelstageOwnedBytes message;
  int64_t record;
} ModelstageError;

/*
 `model_fn`: loads the model from `model_dir` (UTF-8 path, borrowed).
 On success writes the model to `*model` and returns `MODELSTAGE_OK`; the
 runtime keeps it for the life of the process. On failure fills `*error`.
 Called once per worker process (per request thread in
 `MODELSTAGE_THREADING_PER_INSTANCE` mode), before any other hook.
 */
typedef int32_t (*ModelstageModelFn)(struct ModelstageBytes model_dir, struct ModelstageValue *model, struct ModelstageError *error);

/*
 Everything about one request besides its body, borrowed for the call.
 `struct_size` lets later minors append fields.
 */
typedef struct ModelstageRequest {
  uint32_t struct_size;
  /*
   The correlation id of the request (also in every log line).
   */
  struct ModelstageBytes request_id;
  /*
   `Content-Type` as the client sent it, parameters included.
   */
  struct ModelstageBytes content_type;
  /*
   The resolved Accept: the client's, or the default when it was
   missing or the wildcard (any type).
   */
  struct ModelstageBytes accept;
  /*
   `X-Amzn-SageMaker-Custom-Attributes`; `len` 0 when absent.
   */
  struct ModelstageBytes custom_attributes;
  /*
   ABI 1.1: `X-Amzn-SageMaker-Target-Model`, the model of a multi-model
   endpoint the request is for; `len` 0 when absent. Read it only when
   `struct_size` covers it: a runtime of ABI 1.0 passes a request
   that ends before this field.
   */
  struct ModelstageBytes target_model;
} ModelstageRequest;

/*
 `input_fn`: decodes `body` (borrowed) into `*data`, which the runtime owns
 from then on and releases after `predict_fn` returns. `model` is borrowed.
 */
typedef int32_t (*ModelstageInputFn)(const void *model, struct ModelstageBytes body, const struct ModelstageRequest *request, struct ModelstageValue *data, struct ModelstageError *error);

/*
 `predict_fn`: computes `*prediction` from `data` (borrowed; a
 `ModelstagePayload*` when the stage has no `input_fn`). The runtime owns
 the prediction and releases it after `output_fn` returns. When the stage
 has no `output_fn`, the prediction must point to a `ModelstagePayload`
 that stays valid until the prediction is released.
 */
typedef int32_t (*ModelstagePredictFn)(const void *model, const void *data, const struct ModelstageRequest *request, struct ModelstageValue *prediction, struct ModelstageError *error);

/*
 The response a stage produces in `output_fn` or `transform_fn`. The runtime
 zero-fills it before the call and releases every field the stage set.
 `custom_attributes` left empty means the header is not set.
 */
typedef struct ModelstageResponse {
  /*
   `sizeof(ModelstageResponse)` as the runtime allocated it; set by the
   runtime. A hook writes only fields that lie within it, and never
   writes this one, so later minors can append fields.
   */
  uint32_t struct_size;
  struct ModelstageOwnedBytes body;
  struct ModelstageOwnedBytes content_type;
  struct ModelstageOwnedBytes custom_attributes;
} ModelstageResponse;

/*
 `output_fn`: encodes `prediction` (borrowed) for `request->accept` into
 `*response` (zero-filled by the runtime, released by the runtime).
 */
typedef int32_t (*ModelstageOutputFn)(const void *model, const void *prediction, const struct ModelstageRequest *request, struct ModelstageResponse *response, struct ModelstageError *error);

/*
 `transform_fn`: the whole request in one hook; replaces input, predict and
 output. `body` is borrowed; `*response` as for `output_fn`.
 */
typedef int32_t (*ModelstageTransformFn)(const void *model, struct ModelstageBytes body, const struct ModelstageRequest *request, struct ModelstageResponse *response, struct ModelstageError *error);

/*
 `train_fn`: trains with the environment `training_env_json` (borrowed, the
 `SM_TRAINING_ENV` JSON; every `SM_*` variable is also set in the process
 environment). Writes its artifacts to the model dir named there.
 */
typedef int32_t (*ModelstageTrainFn)(struct ModelstageBytes training_env_json, struct ModelstageError *error);

#endif  /* MODELSTAGE_H */

/*
 * Declarations a stage can check its definitions against. In C++ they also
 * give the definitions C linkage, so the hooks are exported unmangled and
 * the descriptor, though const, is exported at all: a C++ stage defines
 * MODELSTAGE_DECLARE_HOOKS (or wraps its definitions in extern "C").
 */
#ifdef MODELSTAGE_DECLARE_HOOKS
#ifdef __cplusplus
extern "C" {
#endif
extern const ModelstageAbiDescriptor modelstage_abi;
int32_t model_fn(ModelstageBytes model_dir, ModelstageValue *model, ModelstageError *error);
int32_t input_fn(const void *model, ModelstageBytes body, const ModelstageRequest *request,
                 ModelstageValue *data, ModelstageError *error);
int32_t predict_fn(const void *model, const void *data, const ModelstageRequest *request,
                   ModelstageValue *prediction, ModelstageError *error);
int32_t output_fn(const void *model, const void *prediction, const ModelstageRequest *request,
                  ModelstageResponse *response, ModelstageError *error);
int32_t transform_fn(const void *model, ModelstageBytes body, const ModelstageRequest *request,
                     ModelstageResponse *response, ModelstageError *error);
int32_t train_fn(ModelstageBytes training_env_json, ModelstageError *error);
#ifdef __cplusplus
}  /* extern "C" */
#endif
#endif
