/* The sequential residual coder: one model, run by both the encoder and the decoder.
 *
 * Pixels are coded in raster order, the three channels of a pixel in params->order. For each
 * subpixel:
 *   1. up to MAXP predictors (neighbours, gradients, CALIC's GAP, MED, inter-channel
 *      differences, two NLMS filters, an integer least-squares predictor; optionally the lossy
 *      reconstruction corrected by its local error) are blended with weights
 *      1 / (their recent local error)^2;
 *   2. an NLMS cascade on the neighbours' final errors (and, optionally, a bias cancellation by
 *      texture context) corrects the blend;
 *   3. the error e = x - round(prediction) (near-lossless: e quantised with step 2T + 1) is
 *      binarised (zero?, sign, unary bucket of |e| - 1, then the bucket's low bits) and every
 *      binary decision is coded with a probability mixed from up to NMODELS context models
 *      (adaptive counters) by a gated logistic mixer and refined by an adaptive probability
 *      map, then the models learn from the decision.
 * Everything is integer arithmetic: the same bytes on every machine (see seqcore.h).
 * Units: predictions and errors are in 1/16 of a grey level.
 */
#include "seqcore.h"

#include <stdlib.h>
#include <string.h>

#define PAD 2
#define MAXP 40
#define NLMS_MAX 16
#define NOLS 20
#define OLS_DECAY 9 /* the least squares forget with lambda = 1 - 2^-9 per subpixel in raster order */
#define NCAS 12
#define NDEC 66     /* binary decisions per subpixel: zero, sign, 8 unary, 7x8 mantissa */
#define NCLASS 12   /* decision classes that select mixer weights */
#define NMODELS 14
#define NINPUTS (NMODELS + 1)
#define BIAS_CTX 256
#define APM_BINS 33
#define INV_SQ_SIZE 4096
#define ERR_DEFAULT 32
#define FULL 4080 /* 255 in 1/16 */

/* ---- portable integer helpers (floor semantics for right shifts of negatives) ---- */
static inline int64_t asr64(int64_t x, int s) { return x >= 0 ? (x >> s) : -((-x - 1) >> s) - 1; }
static inline int32_t asr32(int32_t x, int s) { return x >= 0 ? (x >> s) : -((-x - 1) >> s) - 1; }
static inline int32_t clampi(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }
static inline int32_t absi(int32_t v) { return v < 0 ? -v : v; }
static inline int32_t mini(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t maxi(int32_t a, int32_t b) { return a > b ? a : b; }

/* ---- logistic squash (12-bit probability of a stretch-domain value) and its inverse ---- */
static int32_t squash(int32_t d) {
    static const int16_t t[33] = {1,    2,    3,    6,    10,   16,   27,   45,   73,   120,  194,
                                  310,  488,  747,  1101, 1546, 2047, 2549, 2994, 3348, 3607, 3785,
                                  3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094};
    if (d > 2047) return 4095;
    if (d < -2047) return 1;
    int32_t s = d + 2048, w = s & 127, i = s >> 7;
    return (t[i] * (128 - w) + t[i + 1] * w + 64) >> 7;
}

/* ---- binary arithmetic coder (carry-less range coder over 32 bits, 12-bit probabilities) ---- */
typedef struct {
    uint32_t x1, x2, x;
    uint8_t *buf;
    size_t len, cap;
    const uint8_t *in;
    size_t pos, in_len;
    int decoding, oom;
    int channel;                 /* the channel whose decisions are being coded (statistics) */
    size_t bytes_by_channel[3];  /* encoder: output bytes attributed to the channel that pushed them out */
} Coder;

static void put_byte(Coder *c, uint8_t b) {
    if (c->len == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1 << 16;
        uint8_t *nb = (uint8_t *)realloc(c->buf, cap);
        if (!nb) {
            c->oom = 1;
            return;
        }
        c->buf = nb;
        c->cap = cap;
    }
    c->buf[c->len++] = b;
    c->bytes_by_channel[c->channel]++;
}

/* Past the end of the stream the decoder reads 0xFF, which the encoder's one-byte flush relies on. */
static inline uint32_t next_byte(Coder *c) { return c->pos < c->in_len ? c->in[c->pos++] : 255u; }

static inline int code_bit(Coder *c, int32_t p1, int bit) {
    uint32_t xmid = c->x1 + (uint32_t)(((uint64_t)(c->x2 - c->x1) * (uint32_t)p1) >> 12);
    if (c->decoding) bit = c->x <= xmid;
    if (bit)
        c->x2 = xmid;
    else
        c->x1 = xmid + 1;
    while (((c->x1 ^ c->x2) & 0xff000000u) == 0) {
        if (c->decoding)
            c->x = (c->x << 8) | next_byte(c);
        else
            put_byte(c, (uint8_t)(c->x2 >> 24));
        c->x1 <<= 8;
        c->x2 = (c->x2 << 8) | 255u;
    }
    return bit;
}

/* ---- adaptive probability counter: p in 1/65536, learning rate 1/(n + 1.5) down to 1/limit ---- */
typedef struct {
    uint16_t p, n;
} Counter;

/* ---- the model state ---- */
typedef struct {
    SeqParams prm;
    int H, W, stride;
    int lean;      /* the smaller predictor set (fast effort) */
    int max_error; /* 0: lossless; T > 0: every value within T (near-lossless) */
    int use_recon, use_lms, use_bias, use_cascade, use_apm, use_inter, use_extra, recon_blend, recon_ctx, use_ols;
    int64_t ols_a[3][NOLS][NOLS], ols_b[3][NOLS];
    int32_t ols_w[3][NOLS];
    int16_t *val[3]; /* decoded values, (H + PAD) x stride, rows above the image are padding */
    int16_t *rec[3]; /* reconstruction, (H + 2 PAD) x stride, edge-replicated */
    uint16_t *perr;  /* |error| of each predictor: [k][MAXP][3 rows][stride] */
    int16_t *ferr;   /* final signed error: [k][3 rows][stride] */
    int32_t lms_w[3][2][NLMS_MAX];
    int32_t cas_w[3][NCAS];
    int32_t bias_sum[3][BIAS_CTX], bias_cnt[3][BIAS_CTX];
    Counter *counters;
    int ctx_size[NMODELS], ctx_base[NMODELS];
    int active[NMODELS], n_active; /* the context models this parameter set mixes */
    int32_t *mixer;  /* [3 k][NCLASS][4][NINPUTS] */
    uint16_t *apm;   /* [3 k][NDEC][16][APM_BINS] */
    int16_t stretch_t[4096];
    int64_t inv_sq[INV_SQ_SIZE]; /* 2^42 / i^2: the blend's weights without a division */
    int32_t rate_t[256];
    int corrupt;
} State;

/* Decision ids: 0 zero?, 1 sign, 2 + j unary "bucket > j" (j < 8), 10 + 8 (b - 2) + i mantissa bit i of bucket b. */
static inline int decision_class(int d) { return d < 10 ? d : (d - 10) % 8 == 0 ? 10 : 11; }

static const int32_t QA_T[15] = {24, 40, 64, 96, 136, 184, 248, 336, 448, 600, 800, 1072, 1440, 1920, 2560};
static const int32_t QM_T[7] = {8, 20, 40, 72, 128, 224, 400};
static const int32_t QC_T[7] = {8, 16, 32, 56, 96, 160, 272};
static const int32_t QD_T[5] = {12, 32, 64, 128, 256};
static const int32_t QO_T[6] = {6, 16, 32, 64, 128, 256};
/* signed offset -> 0 .. 12 */
static inline int qoff(int32_t d) {
    int q = 0;
    int32_t a = d < 0 ? -d : d;
    while (q < 6 && a >= QO_T[q]) q++;
    return q == 0 ? 0 : d < 0 ? q + 6 : q;
}

static inline int quant(int32_t v, const int32_t *t, int n) {
    int q = 0;
    while (q < n && v >= t[q]) q++;
    return q;
}

/* Frees a state from open_state() (or a partly initialised one) and everything it holds. */
static void close_state(State *s) {
    for (int c = 0; c < 3; c++) {
        free(s->val[c]);
        free(s->rec[c]);
    }
    free(s->perr);
    free(s->ferr);
    free(s->counters);
    free(s->mixer);
    free(s->apm);
    free(s);
}

static int init_state(State *s, const uint8_t *recon, int H, int W, const SeqParams *prm) {
    memset(s, 0, sizeof(*s));
    s->prm = *prm;
    s->H = H;
    s->W = W;
    s->stride = W + 2 * PAD;
    s->use_recon = (prm->flags & SEQ_USE_RECON) != 0;
    s->use_lms = (prm->flags & SEQ_USE_LMS) != 0;
    s->use_ols = (prm->flags & SEQ_USE_OLS) != 0;
    s->lean = (prm->flags & SEQ_LEAN_BLEND) != 0;
    s->use_bias = (prm->flags & SEQ_USE_BIAS) != 0;
    s->use_cascade = (prm->flags & SEQ_USE_CASCADE) != 0;
    s->use_apm = (prm->flags & SEQ_USE_APM) != 0;
    s->use_inter = (prm->flags & SEQ_USE_INTER) != 0;
    s->use_extra = (prm->flags & SEQ_USE_EXTRA_MODELS) != 0;
    s->recon_blend = s->use_recon && (prm->flags & SEQ_RECON_BLEND) != 0;
    s->recon_ctx = s->use_recon && (prm->flags & SEQ_RECON_CONTEXT) != 0;
    size_t stride = (size_t)s->stride;
    for (int c = 0; c < 3; c++) {
        s->val[c] = (int16_t *)malloc(sizeof(int16_t) * (size_t)(H + PAD) * stride);
        s->rec[c] = (int16_t *)malloc(sizeof(int16_t) * (size_t)(H + 2 * PAD) * stride);
        if (!s->val[c] || !s->rec[c]) return SEQ_ERR_MEMORY;
    }
    s->perr = (uint16_t *)malloc(sizeof(uint16_t) * 3 * MAXP * 3 * stride);
    s->ferr = (int16_t *)malloc(sizeof(int16_t) * 3 * 3 * stride);
    /* context sizes of the models (per k and decision) */
    s->ctx_size[0] = 16;      /* activity */
    s->ctx_size[1] = 16 * 16; /* activity x earlier channel's error */
    s->ctx_size[2] = 8 * 8;   /* predictor spread x activity */
    s->ctx_size[3] = 11 * 8;  /* reconstruction's offset x activity */
    s->ctx_size[4] = 64 * 4;  /* texture x fraction of the prediction */
    s->ctx_size[5] = 8 * 8;   /* |error| at W x |error| at N */
    s->ctx_size[6] = 13 * 8;  /* the most trusted predictor's offset from the prediction x activity */
    s->ctx_size[7] = 13 * 8;  /* the least squares predictor's (or the fast NLMS's) offset x activity */
    s->ctx_size[8] = 13 * 8;  /* the gradient (inter-channel where there is an earlier channel) offset */
    s->ctx_size[9] = 13 * 13;
    s->ctx_size[10] = 13 * 8; /* the fast NLMS's offset */
    s->ctx_size[11] = 13 * 8; /* W's (inter-channel: W + the earlier channel's step) offset */
    s->ctx_size[12] = 13 * 8; /* N's (inter-channel: N + the earlier channel's step) offset */
    s->ctx_size[13] = 13 * 16; /* the most trusted predictor's offset x the earlier channel's error */ /* the two first offsets together */
    int total = 0;
    for (int m = 0; m < NMODELS; m++) {
        s->ctx_base[m] = total;
        total += 3 * NDEC * s->ctx_size[m];
    }
    s->counters = (Counter *)malloc(sizeof(Counter) * (size_t)total);
    s->mixer = (int32_t *)malloc(sizeof(int32_t) * 3 * NCLASS * 4 * NINPUTS);
    s->apm = (uint16_t *)malloc(sizeof(uint16_t) * 3 * NDEC * 16 * APM_BINS);
    if (!s->perr || !s->ferr || !s->counters || !s->mixer || !s->apm) return SEQ_ERR_MEMORY;
    for (int i = 0; i < total; i++) {
        s->counters[i].p = 32768;
        s->counters[i].n = 0;
    }
    for (int m = 0; m < NMODELS; m++) {
        /* the lean set's few: the most trusted predictor's and the last linear predictor's offsets */
        int few = m == 6 || m == 7 || m == 13;
        if (m < 2 || (s->use_extra && (!s->lean || few)) || (m == 3 && s->recon_ctx)) s->active[s->n_active++] = m;
    }
    for (int i = 0; i < 3 * NCLASS * 4; i++)
        for (int j = 0; j < NINPUTS; j++) s->mixer[i * NINPUTS + j] = j < s->n_active ? 65536 / s->n_active : 0;
    for (int i = 0; i < 3 * NDEC * 16; i++)
        for (int j = 0; j < APM_BINS; j++) s->apm[i * APM_BINS + j] = (uint16_t)(squash((j - 16) * 128) * 16);
    /* stretch = inverse of squash */
    int pi = 0;
    for (int x = -2047; x <= 2047; x++) {
        int v = squash(x);
        for (int i = pi; i <= v; i++) s->stretch_t[i] = (int16_t)x;
        pi = v + 1;
    }
    for (int i = pi; i < 4096; i++) s->stretch_t[i] = 2047;
    s->inv_sq[0] = (int64_t)1 << 42;
    for (int i = 1; i < INV_SQ_SIZE; i++) s->inv_sq[i] = ((int64_t)1 << 42) / ((int64_t)i * i);
    for (int n = 0; n < 256; n++) s->rate_t[n] = (int32_t)(131072 / (2 * n + 3)); /* 65536 / (n + 1.5) */
    for (size_t i = 0; i < 3 * MAXP * 3 * stride; i++) s->perr[i] = ERR_DEFAULT;
    for (size_t i = 0; i < 3 * 3 * stride; i++) s->ferr[i] = ERR_DEFAULT;
    /* reconstruction planes, edge-replicated; without one, a flat grey */
    for (int c = 0; c < 3; c++) {
        for (int yy = -PAD; yy < H + PAD; yy++) {
            int sy = clampi(yy, 0, H - 1);
            for (int xx = -PAD; xx < W + PAD; xx++) {
                int sx = clampi(xx, 0, W - 1);
                int v = s->use_recon ? recon[((size_t)sy * W + sx) * 3 + c] : 128;
                s->rec[c][(size_t)(yy + PAD) * stride + (xx + PAD)] = (int16_t)v;
            }
        }
        /* rows above the image: the reconstruction's first row (or grey) */
        for (int yy = 0; yy < PAD; yy++)
            for (int xx = 0; xx < s->stride; xx++)
                s->val[c][(size_t)yy * stride + xx] = s->rec[c][(size_t)PAD * stride + xx];
    }
    return SEQ_OK;
}

/* One binary decision: mix, refine, code, learn. */
typedef struct {
    int k, cls_sel;
    int ctx[NMODELS];
    int qa;
} DecisionContext;

static int code_decision(State *s, Coder *c, const DecisionContext *dc, int d, int bit) {
    const int k = dc->k, na = s->n_active;
    Counter *cn[NMODELS];
    int32_t st[NINPUTS];
    for (int i = 0; i < na; i++) {
        int m = s->active[i];
        cn[i] = &s->counters[s->ctx_base[m] + (k * NDEC + d) * s->ctx_size[m] + dc->ctx[m]];
        st[i] = s->stretch_t[cn[i]->p >> 4];
    }
    st[na] = 256;
    int32_t *w = &s->mixer[((k * NCLASS + decision_class(d)) * 4 + dc->cls_sel) * NINPUTS];
    int64_t dot = 0;
    for (int i = 0; i <= na; i++) dot += (int64_t)w[i] * st[i];
    int32_t pm = squash((int32_t)clampi((int32_t)asr64(dot, 16), -2047, 2047));
    int32_t p = pm;
    uint16_t *a = NULL;
    int ai = 0;
    if (s->use_apm) {
        a = &s->apm[((k * NDEC + d) * 16 + dc->qa) * APM_BINS];
        int32_t sv = s->stretch_t[pm] + 2048;
        int32_t j = sv >> 7, wt = sv & 127;
        int32_t pa = (a[j] * (128 - wt) + a[j + 1] * wt) >> 11;
        ai = j + (wt >> 6);
        p = (pm + pa) >> 1;
    }
    p = clampi(p, 1, 4095);
    bit = code_bit(c, p, bit);
    /* learn */
    int32_t err = ((bit << 12) - pm) * s->prm.mixer_rate;
    for (int i = 0; i <= na; i++) w[i] = clampi(w[i] + (int32_t)asr64((int64_t)st[i] * err, 14), -(1 << 22), 1 << 22);
    int32_t target = bit ? 65535 : 0;
    for (int i = 0; i < na; i++) {
        Counter *q = cn[i];
        q->p = (uint16_t)(q->p + asr64((int64_t)(target - q->p) * s->rate_t[q->n], 16));
        if (q->n < s->prm.counter_limit) q->n++;
    }
    if (a) a[ai] = (uint16_t)(a[ai] + asr32(target - a[ai], 6));
    return bit;
}

#define BUCKETS 9

static inline int bucket_of(int m) { /* m = |e| - 1 >= 0 */
    int b = 0;
    while (m > 0) {
        b++;
        m >>= 1;
    }
    return b; /* 0 for 0, 1 for 1, 2 for 2..3, ..., 8 for 128..255 */
}

/* Code the error e (encoder) or return it (decoder); `lo`..`hi` is its possible range. */
static int code_error(State *s, Coder *c, const DecisionContext *dc, int e, int lo, int hi) {
    int enc = !c->decoding;
    int zero = code_decision(s, c, dc, 0, enc ? e == 0 : 0);
    if (zero) return 0;
    int neg;
    if (lo >= 0)
        neg = 0;
    else if (hi <= 0)
        neg = 1;
    else
        neg = code_decision(s, c, dc, 1, enc ? e < 0 : 0);
    int mmax = (neg ? -lo : hi) - 1; /* largest |e| - 1 */
    if (mmax < 0) {                  /* impossible: only from corrupted data */
        s->corrupt = 1;
        return 0;
    }
    int m = enc ? (neg ? -e : e) - 1 : 0;
    int b_true = enc ? bucket_of(m) : 0;
    int b = 0;
    while (b < BUCKETS - 1 && (1 << b) <= mmax) { /* bucket b + 1 starts at 2^b */
        int more = code_decision(s, c, dc, 2 + b, enc ? b_true > b : 0);
        if (!more) break;
        b++;
    }
    int mag;
    if (b <= 1) {
        mag = b;
    } else {
        mag = 1;
        for (int i = 0; i < b - 1; i++) {
            int sh = b - 2 - i;
            int bitv = code_decision(s, c, dc, 10 + 8 * (b - 2) + i, enc ? (m >> sh) & 1 : 0);
            mag = (mag << 1) | bitv;
        }
    }
    if (mag > mmax) {
        s->corrupt = 1;
        mag = mmax;
    }
    return neg ? -(mag + 1) : mag + 1;
}

/* Runs the model over the image. Encoder: `in` holds the pixels; decoder: `out` receives them
   (the encoder may pass `out` too, for the near-lossless reconstruction). */
static int code_image(State *s, Coder *c, const uint8_t *in, uint8_t *out) {
    const int H = s->H, W = s->W;
    const size_t stride = (size_t)s->stride;
    const int enc = !c->decoding;
    int32_t p[MAXP];
    int32_t u[NLMS_MAX];
    int32_t cas_in[NCAS];
    for (int y = 0; y < H; y++) {
        const int r0 = y % 3, r1 = (y + 2) % 3, r2 = (y + 1) % 3;
        for (int k = 0; k < 3; k++) {
            int ch = s->prm.order[k];
            /* left padding of this row: the pixel above the row's first (or the reconstruction) */
            int16_t *vr = s->val[ch] + (size_t)(y + PAD) * stride;
            int16_t left = y > 0 ? s->val[ch][(size_t)(y - 1 + PAD) * stride + PAD] : s->rec[ch][(size_t)PAD * stride + PAD];
            vr[0] = vr[1] = left;
            for (int i = 0; i < MAXP; i++) {
                uint16_t *er = s->perr + ((size_t)(k * MAXP + i) * 3 + r0) * stride;
                er[0] = er[1] = er[stride - 1] = er[stride - 2] = ERR_DEFAULT;
            }
            int16_t *fr = s->ferr + ((size_t)k * 3 + r0) * stride;
            fr[0] = fr[1] = fr[stride - 1] = fr[stride - 2] = ERR_DEFAULT;
        }
        for (int x = 0; x < W; x++) {
            const size_t xi = (size_t)(x + PAD);
            for (int k = 0; k < 3; k++) {
                const int ch = s->prm.order[k];
                const int16_t *v0 = s->val[ch] + (size_t)(y + PAD) * stride + xi;
                const int16_t *v1 = v0 - stride, *v2 = v0 - 2 * stride;
                const int32_t Wv = v0[-1], WW = v0[-2], N = v1[0], NW = v1[-1], NE = v1[1], NN = v2[0], NNE = v2[1],
                              NWW = v1[-2], NNW = v2[-1], NEE = v1[2];
                const int16_t *rc = s->rec[ch] + (size_t)(y + PAD) * stride + xi;
                int np = 0;
                /* 1. predictors, in 1/16 */
                const int lean = s->lean;
                p[np++] = 16 * Wv;
                p[np++] = 16 * N;
                p[np++] = 16 * NE;
                if (!lean) p[np++] = 16 * NW;
                const int i_grad = np;
                p[np++] = 16 * (N + Wv - NW);
                {
                    int32_t mx = maxi(N, Wv), mn = mini(N, Wv);
                    p[np++] = 16 * (NW >= mx ? mn : NW <= mn ? mx : N + Wv - NW);
                }
                p[np++] = 8 * (Wv + N);
                if (!lean) {
                    p[np++] = 8 * (Wv + NE);
                    p[np++] = 16 * (Wv + NE - N);
                    p[np++] = 16 * (N + NE - NNE);
                    p[np++] = 16 * (2 * N - NN);
                    p[np++] = 16 * (2 * Wv - WW);
                    p[np++] = 4 * (Wv + N + NE + NW);
                }
                {
                    int32_t dh = absi(Wv - WW) + absi(N - NW) + absi(N - NE);
                    int32_t dv = absi(Wv - NW) + absi(N - NN) + absi(NE - NNE);
                    int32_t t;
                    if (dv - dh > 80)
                        t = 16 * Wv;
                    else if (dh - dv > 80)
                        t = 16 * N;
                    else {
                        t = 8 * (Wv + N) + 4 * (NE - NW);
                        if (dv - dh > 32)
                            t = (t + 16 * Wv) / 2;
                        else if (dv - dh > 8)
                            t = (3 * t + 16 * Wv) / 4;
                        else if (dh - dv > 32)
                            t = (t + 16 * N) / 2;
                        else if (dh - dv > 8)
                            t = (3 * t + 16 * N) / 4;
                    }
                    p[np++] = t;
                }
                /* inter-channel: this pixel's earlier channels carry the local gradient over */
                const int i_inter = (s->use_inter && k > 0) ? np : -1;
                if (s->use_inter) {
                    for (int j = 0; j < k; j++) {
                        int cj = s->prm.order[j];
                        const int16_t *a0 = s->val[cj] + (size_t)(y + PAD) * stride + xi;
                        const int16_t *a1 = a0 - stride;
                        int32_t X = a0[0], aW = a0[-1], aN = a1[0], aNW = a1[-1], aNE = a1[1];
                        p[np++] = 16 * (Wv + X - aW);
                        p[np++] = 16 * (N + X - aN);
                        p[np++] = 16 * (N + Wv - NW + X - (aN + aW - aNW));
                        if (!lean) {
                            p[np++] = 16 * (NE + X - aNE);
                            p[np++] = 8 * (N + Wv - aN - aW) + 16 * X;
                            p[np++] = 16 * (NW + X - aNW);
                        }
                    }
                }
                /* the lossy reconstruction, corrected by its error at the decoded neighbours */
                if (s->recon_blend) {
                    const int16_t *r1 = rc - stride;
                    int32_t xt = rc[0];
                    p[np++] = 16 * xt;
                    p[np++] = 16 * xt + 8 * ((Wv - rc[-1]) + (N - r1[0]));
                    p[np++] = 16 * (xt + N - r1[0]);
                    p[np++] = 16 * (xt + Wv - rc[-1]);
                    if (k > 0) {
                        int cj = s->prm.order[k - 1];
                        int32_t X = s->val[cj][(size_t)(y + PAD) * stride + xi];
                        int32_t Xt = s->rec[cj][(size_t)(y + PAD) * stride + xi];
                        p[np++] = 16 * (xt + X - Xt);
                    }
                }
                /* NLMS predictors on inputs centred at the local mean M */
                int32_t M = 4 * (N + Wv + NE + NW);
                int nu = 0;
                int64_t energy = 0;
                int lms_first = np;
                if (s->use_lms) {
                    const int32_t nb[10] = {N, Wv, NW, NE, WW, NN, NNE, NWW, NNW, NEE};
                    for (int i = 0; i < 10; i++) u[nu++] = 16 * nb[i] - M;
                    for (int j = 0; j < k && j < 2; j++) {
                        int cj = s->prm.order[j];
                        const int16_t *a0 = s->val[cj] + (size_t)(y + PAD) * stride + xi;
                        const int16_t *a1 = a0 - stride;
                        u[nu++] = 16 * a0[0] - 4 * (a1[0] + a0[-1] + a1[1] + a1[-1]);
                    }
                    if (s->use_recon) {
                        u[nu++] = 16 * rc[0] - M;
                        u[nu++] = 16 * rc[1] - M;
                        u[nu++] = 16 * rc[stride] - M;
                        u[nu++] = 16 * rc[stride + 1] - M;
                    }
                    for (int i = 0; i < nu; i++) energy += (int64_t)u[i] * u[i];
                    for (int f = 0; f < 2; f++) {
                        int64_t acc = 0;
                        for (int i = 0; i < nu; i++) acc += (int64_t)s->lms_w[k][f][i] * u[i];
                        p[np++] = M + (int32_t)clampi((int32_t)asr64(acc, 16), -FULL, FULL);
                    }
                }
                /* least squares on the causal neighbourhood, this pixel's earlier channels and the
                   reconstruction; solved by one Gauss-Seidel sweep per subpixel from the last solution */
                int32_t xo[NOLS];
                int no = 0;
                if (s->use_ols) {
                    const int32_t nb[12] = {N, Wv, NW, NE, WW, NN, NNE, NWW, NNW, NEE, v2[-2], v2[2]};
                    for (int i = 0; i < 12; i++) xo[no++] = 16 * nb[i] - M;
                    for (int j = 0; j < k; j++) {
                        int cj = s->prm.order[j];
                        const int16_t *a0 = s->val[cj] + (size_t)(y + PAD) * stride + xi;
                        const int16_t *a1 = a0 - stride;
                        int32_t Mj = 4 * (a1[0] + a0[-1] + a1[1] + a1[-1]);
                        xo[no++] = 16 * a0[0] - Mj;
                        xo[no++] = 16 * a0[-1] - Mj;
                        xo[no++] = 16 * a1[0] - Mj;
                    }
                    if (s->use_recon) xo[no++] = 16 * rc[0] - M;
                    xo[no++] = 256;
                    int64_t acc = 0;
                    for (int i = 0; i < no; i++) acc += (int64_t)s->ols_w[k][i] * xo[i];
                    p[np++] = M + (int32_t)clampi((int32_t)asr64(acc, 16), -FULL, FULL);
                }
                for (int i = 0; i < np; i++) p[i] = clampi(p[i], 0, FULL);
                /* 2. blend by inverse squared local error */
                int64_t wsum = 0, psum = 0;
                int64_t wts[MAXP];
                for (int i = 0; i < np; i++) {
                    const uint16_t *e0 = s->perr + ((size_t)(k * MAXP + i) * 3 + r0) * stride + xi;
                    const uint16_t *e1 = s->perr + ((size_t)(k * MAXP + i) * 3 + r1) * stride + xi;
                    const uint16_t *e2 = s->perr + ((size_t)(k * MAXP + i) * 3 + r2) * stride + xi;
                    int64_t sum = 2 * (int64_t)e0[-1] + 2 * (int64_t)e1[0] + e1[-1] + e1[1] + e0[-2] + e2[0] + 32;
                    int sh = 0;
                    while (sum >= INV_SQ_SIZE) {
                        sum >>= 2;
                        sh += 4;
                    }
                    int64_t wi = s->inv_sq[sum] >> sh;
                    wts[i] = wi;
                    wsum += wi;
                    psum += wi * p[i];
                }
                int32_t P0 = (int32_t)(psum / wsum);
                int64_t spread = 0;
                for (int i = 0; i < np; i++) spread += wts[i] * absi(p[i] - P0);
                int32_t spr = (int32_t)(spread / wsum);
                int best = 0;
                for (int i = 1; i < np; i++)
                    if (wts[i] > wts[best]) best = i;
                int32_t p_best = p[best], p_ref = s->use_ols ? p[np - 1] : s->use_lms ? p[lms_first] : p[best];
                /* final errors around this subpixel */
                const int16_t *f0 = s->ferr + ((size_t)k * 3 + r0) * stride + xi;
                const int16_t *f1 = s->ferr + ((size_t)k * 3 + r1) * stride + xi;
                const int16_t *f2 = s->ferr + ((size_t)k * 3 + r2) * stride + xi;
                int32_t eW = f0[-1], eN = f1[0], eNW = f1[-1], eNE = f1[1], eWW = f0[-2], eNN = f2[0];
                int32_t eb = 0; /* the previous channel's final error at this pixel */
                if (k > 0) eb = s->ferr[((size_t)(k - 1) * 3 + r0) * stride + xi];
                /* cascade: NLMS on the neighbours' final errors */
                int32_t P1 = P0, corr = 0;
                int ncas = 0;
                int64_t cas_energy = 0;
                if (s->use_cascade) {
                    cas_in[ncas++] = eW;
                    cas_in[ncas++] = eN;
                    cas_in[ncas++] = eNW;
                    cas_in[ncas++] = eNE;
                    cas_in[ncas++] = eWW;
                    cas_in[ncas++] = eNN;
                    for (int j = 0; j < k; j++) cas_in[ncas++] = s->ferr[((size_t)j * 3 + r0) * stride + xi];
                    if (s->use_recon) cas_in[ncas++] = clampi(16 * rc[0] - P0, -1024, 1024);
                    cas_in[ncas++] = 64;
                    int64_t acc = 0;
                    for (int i = 0; i < ncas; i++) {
                        acc += (int64_t)s->cas_w[k][i] * cas_in[i];
                        cas_energy += (int64_t)cas_in[i] * cas_in[i];
                    }
                    corr = clampi((int32_t)asr64(acc, 16), -512, 512);
                    P1 = P0 + corr;
                }
                /* bias cancellation by texture and activity */
                int32_t act = 2 * absi(eW) + 2 * absi(eN) + absi(eNW) + absi(eNE) + absi(eWW) + absi(eNN);
                int qa = quant(act, QA_T, 15);
                int tex = (16 * N > P1) | (16 * Wv > P1) << 1 | (16 * NW > P1) << 2 | (16 * NE > P1) << 3 |
                          (16 * NN > P1) << 4 | (16 * WW > P1) << 5;
                int bctx = tex * 4 + (qa >> 2);
                int32_t P2 = P1;
                if (s->use_bias) P2 += s->bias_sum[k][bctx] / (s->bias_cnt[k][bctx] + 8);
                int32_t P = clampi(P2, 0, FULL);
                int32_t xhat = (P + 8) >> 4;
                int32_t frac = P - 16 * xhat; /* -8 .. 7 */
                /* 3. contexts of the decisions */
                DecisionContext dc;
                dc.k = k;
                dc.qa = qa;
                dc.cls_sel = qa >> 2;
                int qb;
                if (k > 0)
                    qb = quant(absi(eb), QM_T, 7) * 2 + (eb < 0);
                else
                    qb = quant(absi(eW), QM_T, 7) * 2 + (eW < 0);
                dc.ctx[0] = qa;
                dc.ctx[1] = qa * 16 + qb;
                dc.ctx[2] = quant(spr, QC_T, 7) * 8 + (qa >> 1);
                {
                    int32_t dx = s->recon_ctx ? 16 * rc[0] - P : 0;
                    int qd = quant(absi(dx), QD_T, 5);
                    int sq = qd == 0 ? 0 : (dx < 0 ? qd + 5 : qd);
                    dc.ctx[3] = sq * 8 + (qa >> 1);
                }
                dc.ctx[4] = tex * 4 + ((frac + 8) >> 2);
                dc.ctx[5] = quant(absi(eW), QM_T, 7) * 8 + quant(absi(eN), QM_T, 7);
                {
                    int o6 = qoff(p_best - P), o7 = qoff(p_ref - P);
                    int o8 = qoff(p[i_inter >= 0 ? i_inter + 2 : i_grad] - P);
                    dc.ctx[6] = o6 * 8 + (qa >> 1);
                    dc.ctx[7] = o7 * 8 + (qa >> 1);
                    dc.ctx[8] = o8 * 8 + (qa >> 1);
                    dc.ctx[9] = o6 * 13 + o7;
                    int ik = i_inter >= 0 ? i_inter : 0;
                    dc.ctx[10] = qoff((s->use_lms ? p[lms_first] : p[i_grad + 1]) - P) * 8 + (qa >> 1);
                    dc.ctx[11] = qoff(p[ik] - P) * 8 + (qa >> 1);
                    dc.ctx[12] = qoff(p[ik + 1] - P) * 8 + (qa >> 1);
                    dc.ctx[13] = o6 * 16 + qb;
                }
                /* 4. code the error */
                size_t pix = ((size_t)y * W + x) * 3 + ch;
                c->channel = ch;
                int32_t xv;
                if (s->max_error == 0) {
                    int e = enc ? (int)in[pix] - xhat : 0;
                    e = code_error(s, c, &dc, e, -xhat, 255 - xhat);
                    xv = xhat + e;
                    if (xv < 0 || xv > 255) {
                        s->corrupt = 1;
                        xv = clampi(xv, 0, 255);
                    }
                } else {
                    /* near-lossless: the error quantised with step 2T + 1 (JPEG-LS's NEAR), so
                       |x - xv| <= T; from here on the model sees only the reconstruction xv */
                    const int32_t T = s->max_error, step = 2 * T + 1;
                    int q = 0;
                    if (enc) {
                        int32_t e = (int32_t)in[pix] - xhat;
                        q = e >= 0 ? (e + T) / step : -((T - e) / step);
                    }
                    q = code_error(s, c, &dc, q, -((xhat + T) / step), (255 - xhat + T) / step);
                    xv = clampi(xhat + q * step, 0, 255);
                }
                if (out) out[pix] = (uint8_t)xv;
                /* 5. learn */
                s->val[ch][(size_t)(y + PAD) * stride + xi] = (int16_t)xv;
                int32_t X16 = 16 * xv;
                for (int i = 0; i < np; i++) {
                    uint16_t *e0 = s->perr + ((size_t)(k * MAXP + i) * 3 + r0) * stride + xi;
                    *e0 = (uint16_t)mini(absi(X16 - p[i]), 65535);
                }
                s->ferr[((size_t)k * 3 + r0) * stride + xi] = (int16_t)clampi(X16 - P, -4095, 4095);
                if (s->use_lms) {
                    for (int f = 0; f < 2; f++) {
                        int32_t err = clampi(X16 - p[lms_first + f], -2048, 2048);
                        int64_t inv = (((int64_t)(f == 0 ? s->prm.lms_mu_fast : s->prm.lms_mu_slow)) << 28) /
                                      (energy + 4096);
                        int32_t *wv = s->lms_w[k][f];
                        for (int i = 0; i < nu; i++)
                            wv[i] = clampi(wv[i] + (int32_t)asr64((int64_t)err * u[i] * inv, 24), -(1 << 20), 1 << 20);
                    }
                }
                if (s->use_ols) {
                    int32_t t = clampi(X16 - M, -FULL, FULL);
                    int64_t(*A)[NOLS] = s->ols_a[k];
                    int64_t *bv = s->ols_b[k];
                    int32_t *wv = s->ols_w[k];
                    for (int i = 0; i < no; i++) {
                        for (int j = 0; j <= i; j++) {
                            int64_t v = A[i][j] - asr64(A[i][j], OLS_DECAY) + (int64_t)xo[i] * xo[j];
                            A[i][j] = v;
                        }
                        bv[i] = bv[i] - asr64(bv[i], OLS_DECAY) + (int64_t)xo[i] * t;
                    }
                    for (int i = 0; i < no; i++) {
                        int64_t r = bv[i] * 65536;
                        for (int j = 0; j < no; j++) {
                            if (j == i) continue;
                            r -= (j < i ? A[i][j] : A[j][i]) * wv[j];
                        }
                        int64_t diag = A[i][i] + asr64(A[i][i], 6) + 4096;
                        wv[i] = clampi((int32_t)(r / diag), -(1 << 18), 1 << 18);
                    }
                }
                if (s->use_cascade) {
                    int32_t err = clampi(X16 - P1, -2048, 2048);
                    int64_t inv = ((int64_t)s->prm.cascade_mu << 28) / (cas_energy + 4096);
                    for (int i = 0; i < ncas; i++)
                        s->cas_w[k][i] =
                            clampi(s->cas_w[k][i] + (int32_t)asr64((int64_t)err * cas_in[i] * inv, 24), -(1 << 20), 1 << 20);
                }
                if (s->use_bias) {
                    s->bias_sum[k][bctx] += clampi(X16 - P1, -1024, 1024);
                    if (++s->bias_cnt[k][bctx] >= 256) {
                        s->bias_sum[k][bctx] /= 2;
                        s->bias_cnt[k][bctx] /= 2;
                    }
                }
            }
        }
        /* right padding of this row, read as NE / NEE by the next row */
        for (int k = 0; k < 3; k++) {
            int16_t *vr = s->val[s->prm.order[k]] + (size_t)(y + PAD) * stride;
            vr[W + PAD] = vr[W + PAD + 1] = vr[W + PAD - 1];
        }
        if (c->oom) return SEQ_ERR_MEMORY;
    }
    return s->corrupt ? SEQ_ERR_CORRUPT : SEQ_OK;
}

static int check_params(const SeqParams *prm, int height, int width, const uint8_t *recon) {
    if (height < 1 || width < 1) return SEQ_ERR_PARAMS;
    int seen = 0;
    for (int k = 0; k < 3; k++) {
        if (prm->order[k] > 2) return SEQ_ERR_PARAMS;
        seen |= 1 << prm->order[k];
    }
    if (seen != 7) return SEQ_ERR_PARAMS;
    if ((prm->flags & SEQ_USE_RECON) && !recon) return SEQ_ERR_PARAMS;
    if (prm->counter_limit < 1 || prm->counter_limit > 255) return SEQ_ERR_PARAMS;
    if (prm->lms_mu_fast < 0 || prm->lms_mu_fast > 4096 || prm->lms_mu_slow < 0 || prm->lms_mu_slow > 4096 ||
        prm->cascade_mu < 0 || prm->cascade_mu > 4096 || prm->mixer_rate < 0 || prm->mixer_rate > 256)
        return SEQ_ERR_PARAMS;
    return SEQ_OK;
}

/* The model's state for one image: parameters checked, everything allocated and initialised
   (freed again on failure). */
static int open_state(State **out, const uint8_t *recon, int height, int width, const SeqParams *params,
                      int max_error) {
    int rc = check_params(params, height, width, recon);
    if (rc != SEQ_OK) return rc;
    if (max_error < 0 || max_error > SEQ_MAX_ERROR) return SEQ_ERR_PARAMS;
    State *s = (State *)calloc(1, sizeof(State));
    if (!s) return SEQ_ERR_MEMORY;
    rc = init_state(s, recon, height, width, params);
    if (rc != SEQ_OK) {
        close_state(s);
        return rc;
    }
    s->max_error = max_error;
    *out = s;
    return SEQ_OK;
}

int seq_encode(const uint8_t *image, const uint8_t *recon, int height, int width, const SeqParams *params,
               int max_error, uint8_t **out, size_t *out_len, size_t bytes_by_channel[3], uint8_t *reconstruction) {
    State *s = NULL;
    int rc = open_state(&s, recon, height, width, params, max_error);
    if (rc != SEQ_OK) return rc;
    Coder c;
    memset(&c, 0, sizeof(c));
    c.x2 = 0xffffffffu;
    rc = code_image(s, &c, image, reconstruction);
    if (rc == SEQ_OK) {
        put_byte(&c, (uint8_t)(c.x1 >> 24)); /* flush: the decoder pads with 0xFF */
        if (c.oom) rc = SEQ_ERR_MEMORY;
    }
    close_state(s);
    if (rc != SEQ_OK) {
        free(c.buf);
        return rc;
    }
    *out = c.buf;
    *out_len = c.len;
    if (bytes_by_channel)
        for (int i = 0; i < 3; i++) bytes_by_channel[i] = c.bytes_by_channel[i];
    return SEQ_OK;
}

int seq_decode(const uint8_t *data, size_t data_len, const uint8_t *recon, int height, int width,
               const SeqParams *params, int max_error, uint8_t *image) {
    State *s = NULL;
    int rc = open_state(&s, recon, height, width, params, max_error);
    if (rc != SEQ_OK) return rc;
    Coder c;
    memset(&c, 0, sizeof(c));
    c.x2 = 0xffffffffu;
    c.decoding = 1;
    c.in = data;
    c.in_len = data_len;
    for (int i = 0; i < 4; i++) c.x = (c.x << 8) | next_byte(&c);
    rc = code_image(s, &c, NULL, image);
    close_state(s);
    return rc;
}
