/* The sequential residual coder's C API: code an 8-bit RGB image in raster order, given the
 * lossy layer's reconstruction, with a context-mixing binary arithmetic coder whose model
 * learns online on the image itself.
 *
 * Every quantity that reaches the arithmetic coder is computed with integer arithmetic only
 * (no floating point, no libm), so the encoder and the decoder compute the same probabilities
 * on every CPU, compiler, optimisation level and thread count. The stream format is the code:
 * seqcore.c's code_image() is run by both sides and is the only definition of the model.
 */
#ifndef LOSSLESS_BPG_SEQCORE_H
#define LOSSLESS_BPG_SEQCORE_H

#include <stddef.h>
#include <stdint.h>

/* Feature switches of a model (bit mask); a file records the whole parameter set via its id. */
enum {
    SEQ_USE_RECON = 1 << 0,      /* the lossy reconstruction as NLMS, least-squares and cascade inputs */
    SEQ_USE_LMS = 1 << 1,        /* the two NLMS predictors in the blend */
    SEQ_USE_BIAS = 1 << 2,       /* bias cancellation by context */
    SEQ_USE_CASCADE = 1 << 3,    /* the NLMS error cascade after the blend */
    SEQ_USE_APM = 1 << 4,        /* secondary estimation after the mixer */
    SEQ_USE_INTER = 1 << 5,      /* inter-channel predictors */
    SEQ_USE_EXTRA_MODELS = 1 << 6, /* the spread / texture / neighbour-error context models */
    SEQ_RECON_BLEND = 1 << 7,      /* with SEQ_USE_RECON: reconstruction-based predictors in the blend */
    SEQ_RECON_CONTEXT = 1 << 8,    /* with SEQ_USE_RECON: the reconstruction's offset as a context model */
    SEQ_USE_OLS = 1 << 9,          /* least squares predictor (Gauss-Seidel, integer) in the blend */
    SEQ_LEAN_BLEND = 1 << 10       /* the smaller predictor set (fast effort) */
};

typedef struct {
    uint32_t flags;
    /* channel coding order: a permutation of {0, 1, 2} (R, G, B) */
    uint8_t order[3];
    /* NLMS step sizes (in 1/4096) of the fast and slow predictors and of the cascade */
    int32_t lms_mu_fast, lms_mu_slow, cascade_mu;
    /* mixer learning rate (integer multiplier) */
    int32_t mixer_rate;
    /* adaptation limit of the context counters (1..255) */
    int32_t counter_limit;
} SeqParams;

/* Largest per-subpixel error bound of the near-lossless mode. */
#define SEQ_MAX_ERROR 127

/* Status codes */
enum { SEQ_OK = 0, SEQ_ERR_PARAMS = 1, SEQ_ERR_MEMORY = 2, SEQ_ERR_CORRUPT = 3 };

/* Encode `image` (H*W*3 uint8, RGB interleaved) given `recon` (same layout; may be NULL when
 * SEQ_USE_RECON is off). `max_error` 0 is lossless; T in 1..SEQ_MAX_ERROR codes every subpixel
 * within T of the original (near-lossless), and the decoder gives that reconstruction, which
 * the encoder writes to `reconstruction` when it is not NULL (H*W*3). On SEQ_OK *out holds
 * *out_len bytes allocated with malloc; where `bytes_by_channel` is not NULL it receives how
 * many of them each channel (R, G, B) pushed out of the coder (statistics: they sum to
 * *out_len, the one-byte flush counted with the last). */
int seq_encode(const uint8_t *image, const uint8_t *recon, int height, int width, const SeqParams *params,
               int max_error, uint8_t **out, size_t *out_len, size_t bytes_by_channel[3], uint8_t *reconstruction);

/* Decode `data` into `image` (H*W*3, caller-allocated). Corrupted input never reads out of
 * bounds or loops: it yields SEQ_ERR_CORRUPT or wrong pixels (which the file checksum catches). */
int seq_decode(const uint8_t *data, size_t data_len, const uint8_t *recon, int height, int width,
               const SeqParams *params, int max_error, uint8_t *image);

#endif
