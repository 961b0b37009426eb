/*
 * echo.c: the echo stage in C, written from modelstage.h alone.
 *
 * It exports the descriptor, model_fn and predict_fn. Without input_fn,
 * predict_fn receives the request as a ModelstagePayload; without output_fn,
 * it returns a ModelstagePayload, which becomes the response as is. Every
 * allocation made here is freed by a release function from this file.
 */
#define MODELSTAGE_DECLARE_HOOKS
#include "modelstage.h"

#include <stdlib.h>
#include <string.h>

const ModelstageAbiDescriptor modelstage_abi = {
    .abi_major = MODELSTAGE_ABI_MAJOR,
    .abi_minor = MODELSTAGE_ABI_MINOR,
    .struct_size = sizeof(ModelstageAbiDescriptor),
    .threading = MODELSTAGE_THREADING_SHARED,
    .stage_name = "c-echo",
    .stage_version = "0.1.0",
};

/* The echo model has no state; any non-null pointer would do. */
static int the_model;

/* Owns one copy of the request: the payload and the bytes it points to. */
typedef struct {
    ModelstagePayload payload;
    uint8_t *bytes;
} EchoPrediction;

static void release_prediction(void *ptr) {
    EchoPrediction *p = ptr;
    if (p != NULL) {
        free(p->bytes);
        free(p);
    }
}

static void release_message(uint8_t *ptr, size_t len, void *ctx) {
    (void)len;
    (void)ctx;
    free(ptr);
}

static int32_t fail(ModelstageError *error, const char *text) {
    size_t len = strlen(text);
    uint8_t *copy = malloc(len);
    if (copy != NULL) {
        memcpy(copy, text, len);
        error->message.ptr = copy;
        error->message.len = len;
        error->message.ctx = NULL;
        error->message.release = release_message;
    }
    error->record = -1;
    return MODELSTAGE_ERR_INTERNAL;
}

int32_t model_fn(ModelstageBytes model_dir, ModelstageValue *model, ModelstageError *error) {
    (void)model_dir;
    (void)error;
    model->ptr = &the_model;
    model->release = NULL;
    return MODELSTAGE_OK;
}

int32_t predict_fn(const void *model, const void *data, const ModelstageRequest *request,
                   ModelstageValue *prediction, ModelstageError *error) {
    (void)model;
    (void)request;
    const ModelstagePayload *in = data;
    EchoPrediction *out = malloc(sizeof *out);
    /* One block for body and content type; +1 so a zero-length malloc is never asked for. */
    uint8_t *bytes = malloc(in->body.len + in->content_type.len + 1);
    if (out == NULL || bytes == NULL) {
        free(out);
        free(bytes);
        return fail(error, "c-echo: out of memory");
    }
    if (in->body.len > 0) {
        memcpy(bytes, in->body.ptr, in->body.len);
    }
    if (in->content_type.len > 0) {
        memcpy(bytes + in->body.len, in->content_type.ptr, in->content_type.len);
    }
    out->bytes = bytes;
    out->payload.body.ptr = bytes;
    out->payload.body.len = in->body.len;
    out->payload.content_type.ptr = bytes + in->body.len;
    out->payload.content_type.len = in->content_type.len;
    prediction->ptr = out;
    prediction->release = release_prediction;
    return MODELSTAGE_OK;
}
