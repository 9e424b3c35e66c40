/* The C ABI end to end (runtime/include/ftl.h): load the `sigmoid` DPO artifact that
 * tests/capi/run.sh builds, run it on caller-owned buffers, and check the loss and gradients
 * against the formula computed here, then the error paths. Exit status 0 when all hold. */
#include "ftl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                 \
            fprintf(stderr, "\n");                        \
            failures++;                                   \
        }                                                 \
    } while (0)

static const ftl_tensor *find(const ftl_result *r, const char *name, ftl_tensor *out) {
    for (size_t i = 0; i < ftl_result_count(r); i++) {
        if (strcmp(ftl_result_name(r, i), name) == 0 && ftl_result_get(r, i, out)) return out;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DPO.ftlpack\n", argv[0]);
        return 2;
    }
    char err[512];
    ftl_artifact *a = ftl_load(argv[1], err, sizeof err);
    CHECK(a != NULL, "ftl_load: %s", err);
    if (!a) return 1;
    ftl_set_threads(a, 1);

    enum { B = 3 };
    const int64_t shape[1] = {B};
    float chosen[B] = {-10.5f, -3.25f, -7.0f}, rejected[B] = {-11.0f, -2.0f, -9.5f};
    float ref_chosen[B] = {-10.0f, -3.0f, -8.0f}, ref_rejected[B] = {-10.5f, -2.5f, -9.0f};
    double beta = 0.1;
    ftl_tensor in[4] = {
        {"chosen_logps", chosen, FTL_F32, 1, shape},
        {"rejected_logps", rejected, FTL_F32, 1, shape},
        {"ref_chosen_logps", ref_chosen, FTL_F32, 1, shape},
        {"ref_rejected_logps", ref_rejected, FTL_F32, 1, shape},
    };
    ftl_result *r = NULL;
    int32_t status = ftl_run(a, in, 4, &r, err, sizeof err);
    CHECK(status == FTL_OK, "ftl_run: %d %s", status, err);
    if (status == FTL_OK) {
        /* loss = mean(-log sigmoid(z)), z = beta((c - rc) - (r - rr));
           d loss / d c = -beta sigmoid(-z) / B, d loss / d r = +beta sigmoid(-z) / B. */
        double loss = 0.0, dc[B];
        for (int i = 0; i < B; i++) {
            double z = beta * ((chosen[i] - ref_chosen[i]) - (rejected[i] - ref_rejected[i]));
            loss += log1p(exp(-z)) / B;
            dc[i] = -beta / (1.0 + exp(z)) / B;
        }
        ftl_tensor t;
        CHECK(find(r, "loss", &t) && t.dtype == FTL_F32 && t.ndim == 0, "loss output");
        if (find(r, "loss", &t)) {
            double got = *(const float *)t.data;
            CHECK(fabs(got - loss) <= 1e-6 * fabs(loss), "loss %.9f, expected %.9f", got, loss);
        }
        CHECK(find(r, "grad.chosen_logps", &t) && t.ndim == 1 && t.shape[0] == B, "grad output");
        if (find(r, "grad.chosen_logps", &t)) {
            for (int i = 0; i < B; i++) {
                double got = ((const float *)t.data)[i];
                CHECK(fabs(got - dc[i]) <= 1e-6 * fabs(dc[i]) + 1e-9, "grad[%d] %.9g vs %.9g", i, got, dc[i]);
            }
        }
        CHECK(find(r, "grad.rejected_logps", &t) != NULL, "grad.rejected_logps");
        CHECK(!ftl_result_get(r, 99, &t), "index out of range");
        ftl_result_free(r);
    }

    /* A missing input: a user error naming it, no result. */
    r = NULL;
    status = ftl_run(a, in, 3, &r, err, sizeof err);
    CHECK(status == FTL_USER_ERROR && strstr(err, "E0091") && strstr(err, "ref_rejected_logps") && r == NULL,
          "missing input: %d %s", status, err);
    /* A wrong dtype. */
    ftl_tensor bad = in[0];
    bad.dtype = FTL_F64;
    ftl_tensor in2[4] = {bad, in[1], in[2], in[3]};
    status = ftl_run(a, in2, 4, &r, err, sizeof err);
    CHECK(status == FTL_USER_ERROR && strstr(err, "chosen_logps"), "wrong dtype: %d %s", status, err);
    /* A bad dtype code, a negative size, a NULL shape. */
    bad = in[0];
    bad.dtype = 42;
    in2[0] = bad;
    CHECK(ftl_run(a, in2, 4, &r, err, sizeof err) == FTL_USER_ERROR, "dtype code");
    const int64_t negative[1] = {-1};
    bad = in[0];
    bad.shape = negative;
    in2[0] = bad;
    CHECK(ftl_run(a, in2, 4, &r, err, sizeof err) == FTL_USER_ERROR, "negative size: %s", err);
    bad = in[0];
    bad.shape = NULL;
    in2[0] = bad;
    CHECK(ftl_run(a, in2, 4, &r, err, sizeof err) == FTL_USER_ERROR, "NULL shape");
    /* NULL handles and a missing artifact never crash. */
    CHECK(ftl_run(NULL, in, 4, &r, err, sizeof err) == FTL_ARTIFACT_ERROR, "NULL artifact");
    CHECK(ftl_run(a, in, 4, NULL, err, sizeof err) == FTL_ARTIFACT_ERROR, "NULL result");
    CHECK(ftl_result_count(NULL) == 0 && ftl_result_name(NULL, 0) == NULL, "NULL result queries");
    CHECK(ftl_load("/nonexistent.ftlpack", err, sizeof err) == NULL && strlen(err) > 0, "missing artifact");
    CHECK(ftl_load(NULL, NULL, 0) == NULL, "NULL path");
    ftl_free(a);
    ftl_free(NULL);
    ftl_result_free(NULL);
    if (failures == 0) printf("C ABI: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
