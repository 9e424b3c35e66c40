/* ftl.h — run a compiled FTL entry (an `.ftlpack` artifact made by `ftc build -o`) from C.
 *
 * Link with the runtime's shared library (`libftl_runtime.so`, built by `cargo build -p
 * ftl-runtime`). Inputs are caller-owned, dense, row-major buffers described DLPack-style
 * (data pointer, dtype, shape); they are read in place and never written, and must stay valid
 * during `ftl_run`. Outputs are owned by the returned `ftl_result` until `ftl_result_free`.
 * Every function is safe to call with NULL handles (it reports an error or returns 0/NULL).
 * Errors never abort the process: a status code and a message (`error[E0091]: ...` for inputs
 * that do not match the entry, with `ftc`'s error codes) are returned instead.
 * A CUDA artifact (`ftc build -o --target cuda...`) runs on CUDA device 0: the inputs are copied
 * to the device and the outputs back; loading one without an NVIDIA driver or a device that
 * runs its chip fails with the reason (no CUDA is needed for anything else).
 */
#ifndef FTL_H
#define FTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (the FTL dtypes). */
typedef enum ftl_dtype {
    FTL_F64 = 0,
    FTL_F32 = 1,
    FTL_BF16 = 2,
    FTL_F16 = 3,
    FTL_I64 = 4,
    FTL_I32 = 5,
    FTL_BOOL = 6, /* one byte per element, 0 or 1 */
} ftl_dtype;

/* Status codes. */
typedef enum ftl_status {
    FTL_OK = 0,
    FTL_USER_ERROR = 1,     /* wrong inputs, a failed `requires`, a run error: see the message */
    FTL_ARTIFACT_ERROR = 2, /* an unreadable, damaged or foreign artifact, or a bad argument */
} ftl_status;

/* A dense, row-major tensor the caller owns: `data` holds prod(shape) elements of `dtype`,
 * aligned to the element size (a 0-d tensor has ndim 0 and one element). */
typedef struct ftl_tensor {
    const char *name;     /* the entry's parameter name (NUL-terminated, UTF-8) */
    const void *data;
    int32_t dtype;        /* an ftl_dtype */
    int32_t ndim;
    const int64_t *shape; /* ndim sizes, each >= 0 */
} ftl_tensor;

typedef struct ftl_artifact ftl_artifact;
typedef struct ftl_result ftl_result;

/* Loads and verifies an artifact directory. NULL on failure, with the reason in `err`
 * (truncated to `err_len` bytes, NUL-terminated; `err` may be NULL). */
ftl_artifact *ftl_load(const char *path, char *err, size_t err_len);

/* Frees an artifact (NULL is ignored). Results it returned stay valid. */
void ftl_free(ftl_artifact *artifact);

/* Bounds the threads a run uses (0 or 1: the calling thread only). */
void ftl_set_threads(ftl_artifact *artifact, size_t threads);

/* Runs the entry on `inputs`; on FTL_OK `*result` holds the outputs. */
int32_t ftl_run(ftl_artifact *artifact, const ftl_tensor *inputs, size_t n_inputs,
                ftl_result **result, char *err, size_t err_len);

/* The outputs of a run, in the entry's order: `loss`, `metric.<name>`, `grad.<input>`, ... */
size_t ftl_result_count(const ftl_result *result);
const char *ftl_result_name(const ftl_result *result, size_t i);
/* Output i as a tensor description (its `name` is the output's); data owned by `result`.
 * Returns 1, or 0 when i is out of range or `result` is NULL. */
int32_t ftl_result_get(const ftl_result *result, size_t i, ftl_tensor *out);
void ftl_result_free(ftl_result *result);

#ifdef __cplusplus
}
#endif

#endif /* FTL_H */
