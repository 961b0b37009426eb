/*
 * {{name}}: a modelstage stage in C, written against include/modelstage.h alone.
 *
 * Training (`modelstage fit` here, `docker run IMAGE train` on SageMaker) reads every number in
 * the files of the `train` channel (separated by commas or white space) and writes their mean,
 * times the `scale` hyperparameter (default 1), to mean.txt in the model folder. Serving answers
 * each row of a text/csv request with that mean: {"predictions": [{"score": 2.5}, ...]}.
 *
 * Without input_fn, predict_fn receives the request as a ModelstagePayload; without output_fn it
 * returns a ModelstagePayload, which becomes the response. Every allocation made here is freed
 * by a release function from this file.
 */
#define _POSIX_C_SOURCE 200809L
#define MODELSTAGE_DECLARE_HOOKS
#include "modelstage.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const ModelstageAbiDescriptor modelstage_abi = {
    .abi_major = MODELSTAGE_ABI_MAJOR,
    .abi_minor = MODELSTAGE_ABI_MINOR,
    .struct_size = sizeof(ModelstageAbiDescriptor),
    .threading = MODELSTAGE_THREADING_SHARED,
    .stage_name = "{{name}}",
    .stage_version = "0.1.0",
};

#define MODEL_FILE "mean.txt"
#define PATH_LIMIT 4096

typedef struct {
    double mean;
} Model;

/* A response: the payload and the text it points to. */
typedef struct {
    ModelstagePayload payload;
    char *text;
} Prediction;

static void release_message(uint8_t *ptr, size_t len, void *ctx) {
    (void)len;
    (void)ctx;
    free(ptr);
}

static void release_model(void *ptr) { free(ptr); }

static void release_prediction(void *ptr) {
    Prediction *p = ptr;
    if (p != NULL) {
        free(p->text);
        free(p);
    }
}

/* Fills *error with a message (printf-style) and returns status. */
static int32_t fail(ModelstageError *error, int32_t status, const char *format, ...) {
    char buffer[1024];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    size_t len = n < 0 ? 0 : ((size_t)n < sizeof buffer ? (size_t)n : sizeof buffer - 1);
    uint8_t *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, buffer, len);
        error->message.ptr = copy;
        error->message.len = len;
        error->message.ctx = NULL;
        error->message.release = release_message;
    }
    error->record = -1;
    return status;
}

/* Whether a Content-Type or one Accept entry (without parameters) is `type`. */
static int media_type_is(const uint8_t *text, size_t len, const char *type) {
    size_t start = 0, end = 0;
    while (end < len && text[end] != ';') end++;
    while (start < end && text[start] == ' ') start++;
    while (end > start && text[end - 1] == ' ') end--;
    return end - start == strlen(type) && strncasecmp((const char *)text + start, type, end - start) == 0;
}

/* Whether one of the comma-separated Accept entries is application/json or any type. */
static int accepts_json(ModelstageBytes accept) {
    size_t start = 0;
    for (size_t i = 0; i <= accept.len; i++) {
        if (i == accept.len || accept.ptr[i] == ',') {
            const uint8_t *entry = accept.ptr + start;
            if (media_type_is(entry, i - start, "application/json") || media_type_is(entry, i - start, "*/*")) {
                return 1;
            }
            start = i + 1;
        }
    }
    return 0;
}

int32_t model_fn(ModelstageBytes model_dir, ModelstageValue *model, ModelstageError *error) {
    char path[PATH_LIMIT];
    if (model_dir.len + sizeof("/" MODEL_FILE) > sizeof path) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "the model folder's path is too long");
    }
    if (model_dir.len > 0) {
        memcpy(path, model_dir.ptr, model_dir.len);
    }
    memcpy(path + model_dir.len, "/" MODEL_FILE, sizeof("/" MODEL_FILE));
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL,
                    "cannot read %s: %s (the model folder must hold " MODEL_FILE ": train first)", path,
                    strerror(errno));
    }
    double mean;
    int read = fscanf(file, "%lf", &mean);
    fclose(file);
    if (read != 1) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "%s does not hold a number", path);
    }
    Model *m = malloc(sizeof *m);
    if (m == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "out of memory");
    }
    m->mean = mean;
    model->ptr = m;
    model->release = release_model;
    return MODELSTAGE_OK;
}

int32_t predict_fn(const void *model, const void *data, const ModelstageRequest *request,
                   ModelstageValue *prediction, ModelstageError *error) {
    const Model *m = model;
    const ModelstagePayload *in = data;
    if (!media_type_is(in->content_type.ptr, in->content_type.len, "text/csv")) {
        return fail(error, MODELSTAGE_ERR_UNSUPPORTED_CONTENT_TYPE,
                    "this stage reads Content-Type text/csv only");
    }
    if (!accepts_json(request->accept)) {
        return fail(error, MODELSTAGE_ERR_UNSUPPORTED_ACCEPT, "this stage answers application/json only");
    }
    /* One score per non-empty row. */
    size_t rows = 0;
    int in_row = 0;
    for (size_t i = 0; i < in->body.len; i++) {
        uint8_t c = in->body.ptr[i];
        if (c == '\n') {
            rows += in_row;
            in_row = 0;
        } else if (c != '\r' && c != ' ' && c != '\t') {
            in_row = 1;
        }
    }
    rows += in_row;

    char score[64];
    int score_len = snprintf(score, sizeof score, "{\"score\": %.17g}", m->mean);
    if (score_len < 0 || (size_t)score_len >= sizeof score) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "cannot format the score");
    }
    /* rows is at most the body's length, which the runtime bounds. */
    size_t capacity = sizeof("{\"predictions\": []}") + rows * ((size_t)score_len + 2);
    Prediction *p = malloc(sizeof *p);
    char *text = malloc(capacity);
    if (p == NULL || text == NULL) {
        free(p);
        free(text);
        return fail(error, MODELSTAGE_ERR_INTERNAL, "out of memory");
    }
    size_t len = (size_t)sprintf(text, "{\"predictions\": [");
    for (size_t i = 0; i < rows; i++) {
        len += (size_t)sprintf(text + len, "%s%s", i == 0 ? "" : ", ", score);
    }
    len += (size_t)sprintf(text + len, "]}");

    static const char json[] = "application/json";
    p->text = text;
    p->payload.body.ptr = (const uint8_t *)text;
    p->payload.body.len = len;
    p->payload.content_type.ptr = (const uint8_t *)json;
    p->payload.content_type.len = sizeof json - 1;
    prediction->ptr = p;
    prediction->release = release_prediction;
    return MODELSTAGE_OK;
}

/* Adds every number of one file to sum and count; 0 on success, else fills *error. */
static int32_t add_file(const char *path, double *sum, size_t *count, ModelstageError *error) {
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
    }
    char field[128];
    size_t n = 0, line = 1;
    for (;;) {
        int c = fgetc(file);
        if (c == EOF || c == ',' || c == '\n' || c == '\r' || c == ' ' || c == '\t') {
            if (n > 0) {
                field[n] = '\0';
                char *end;
                double value = strtod(field, &end);
                if (*end != '\0' || !isfinite(value)) {
                    fclose(file);
                    return fail(error, MODELSTAGE_ERR_BAD_REQUEST, "%s:%zu: a field is not a finite number",
                                path, line);
                }
                *sum += value;
                *count += 1;
                n = 0;
            }
            if (c == '\n') {
                line++;
            }
            if (c == EOF) {
                break;
            }
        } else if (n + 1 < sizeof field) {
            field[n++] = (char)c;
        } else {
            fclose(file);
            return fail(error, MODELSTAGE_ERR_BAD_REQUEST, "%s:%zu: a field is longer than %zu bytes", path,
                        line, sizeof field - 1);
        }
    }
    fclose(file);
    return MODELSTAGE_OK;
}

/* `modelstage train` exports the SageMaker variables: SM_CHANNEL_TRAIN, SM_MODEL_DIR, SM_HP_*. */
int32_t train_fn(ModelstageBytes training_env_json, ModelstageError *error) {
    (void)training_env_json;
    const char *channel = getenv("SM_CHANNEL_TRAIN");
    const char *model_dir = getenv("SM_MODEL_DIR");
    if (channel == NULL || model_dir == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "the job has no `train` channel (SM_CHANNEL_TRAIN is not set)");
    }
    double scale = 1.0;
    const char *hp = getenv("SM_HP_SCALE");
    if (hp != NULL) {
        char *end;
        scale = strtod(hp, &end);
        if (end == hp || *end != '\0') {
            return fail(error, MODELSTAGE_ERR_BAD_REQUEST, "hyperparameter scale must be a number");
        }
    }

    DIR *dir = opendir(channel);
    if (dir == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "cannot list %s: %s", channel, strerror(errno));
    }
    double sum = 0.0;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char path[PATH_LIMIT];
        struct stat info;
        if (entry->d_name[0] == '.' ||
            snprintf(path, sizeof path, "%s/%s", channel, entry->d_name) >= (int)sizeof path ||
            stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
            continue;
        }
        int32_t status = add_file(path, &sum, &count, error);
        if (status != MODELSTAGE_OK) {
            closedir(dir);
            return status;
        }
    }
    closedir(dir);
    if (count == 0) {
        return fail(error, MODELSTAGE_ERR_BAD_REQUEST, "the train channel holds no numbers");
    }

    char path[PATH_LIMIT];
    if (snprintf(path, sizeof path, "%s/" MODEL_FILE, model_dir) >= (int)sizeof path) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "the model folder's path is too long");
    }
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    }
    int written = fprintf(file, "%.17g\n", sum / (double)count * scale);
    if (fclose(file) != 0 || written < 0) {
        return fail(error, MODELSTAGE_ERR_INTERNAL, "cannot write %s", path);
    }
    return MODELSTAGE_OK;
}
