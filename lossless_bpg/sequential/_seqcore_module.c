/* Python binding of seqcore.h: encode(image, recon, height, width, params[, max_error]) ->
 * bytes, encode_stats(...) -> (bytes, (R, G, B bytes), reconstruction or None) and
 * decode(data, recon, height, width, params[, max_error]) -> bytes. Buffers are any
 * C-contiguous bytes-like objects; the GIL is released while coding, so tiles code in parallel
 * threads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "seqcore.h"

static int parse_params(PyObject *tuple, SeqParams *prm) {
    int flags, o0, o1, o2, mu_fast, mu_slow, mu_cas, rate, limit;
    if (!PyArg_ParseTuple(tuple, "iiiiiiiii", &flags, &o0, &o1, &o2, &mu_fast, &mu_slow, &mu_cas, &rate, &limit))
        return 0;
    if (o0 < 0 || o0 > 2 || o1 < 0 || o1 > 2 || o2 < 0 || o2 > 2 || flags < 0) {
        PyErr_SetString(PyExc_ValueError, "invalid sequential coder parameters");
        return 0;
    }
    prm->flags = (uint32_t)flags;
    prm->order[0] = (uint8_t)o0;
    prm->order[1] = (uint8_t)o1;
    prm->order[2] = (uint8_t)o2;
    prm->lms_mu_fast = mu_fast;
    prm->lms_mu_slow = mu_slow;
    prm->cascade_mu = mu_cas;
    prm->mixer_rate = rate;
    prm->counter_limit = limit;
    return 1;
}

static int raise_status(int rc) {
    switch (rc) {
    case SEQ_ERR_PARAMS:
        PyErr_SetString(PyExc_ValueError, "invalid sequential coder parameters or image size");
        break;
    case SEQ_ERR_MEMORY:
        PyErr_NoMemory();
        break;
    case SEQ_ERR_CORRUPT:
        PyErr_SetString(PyExc_ValueError, "the residual stream is corrupted (decoded values out of range)");
        break;
    default:
        PyErr_Format(PyExc_RuntimeError, "sequential coder failed with status %d", rc);
    }
    return 0;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t expected, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return 0;
    if (expected >= 0 && view->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd", what, view->len, expected);
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

/* The arguments every function takes: (image or data, recon or None, height, width, params[, max_error]). */
typedef struct {
    Py_buffer first, recon;
    int have_recon, height, width, max_error;
    Py_ssize_t n; /* height * width * 3 */
    SeqParams prm;
} Call;

/* Parses and checks a call; the first buffer is the image (H*W*3 bytes) or the coded data (any length).
   On success the buffers are held until release_call(). */
static int parse_call(PyObject *args, Call *c, int first_is_image) {
    PyObject *first_obj, *recon_obj, *params_obj;
    memset(c, 0, sizeof(*c));
    if (!PyArg_ParseTuple(args, "OOiiO|i", &first_obj, &recon_obj, &c->height, &c->width, &params_obj,
                          &c->max_error))
        return 0;
    if (c->max_error < 0 || c->max_error > SEQ_MAX_ERROR) {
        PyErr_Format(PyExc_ValueError, "max_error must be in 0..%d", SEQ_MAX_ERROR);
        return 0;
    }
    if (!parse_params(params_obj, &c->prm)) return 0;
    if (c->height < 1 || c->width < 1) {
        PyErr_Format(PyExc_ValueError, "bad image size %dx%d", c->width, c->height);
        return 0;
    }
    c->n = (Py_ssize_t)c->height * c->width * 3;
    c->have_recon = recon_obj != Py_None;
    if (!get_buffer(first_obj, &c->first, first_is_image ? c->n : -1, first_is_image ? "image" : "data")) return 0;
    if (c->have_recon && !get_buffer(recon_obj, &c->recon, c->n, "reconstruction")) {
        PyBuffer_Release(&c->first);
        return 0;
    }
    return 1;
}

static void release_call(Call *c) {
    PyBuffer_Release(&c->first);
    if (c->have_recon) PyBuffer_Release(&c->recon);
}

static PyObject *encode_impl(PyObject *args, int with_stats) {
    Call call;
    if (!parse_call(args, &call, 1)) return NULL;
    size_t by_channel[3] = {0, 0, 0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    PyObject *reconstruction = NULL;
    if (with_stats && call.max_error > 0) {
        reconstruction = PyBytes_FromStringAndSize(NULL, call.n);
        if (!reconstruction) {
            release_call(&call);
            return NULL;
        }
    }
    uint8_t *rec_out = reconstruction ? (uint8_t *)PyBytes_AS_STRING(reconstruction) : NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = seq_encode((const uint8_t *)call.first.buf, call.have_recon ? (const uint8_t *)call.recon.buf : NULL,
                    call.height, call.width, &call.prm, call.max_error, &out, &out_len, by_channel, rec_out);
    Py_END_ALLOW_THREADS
    release_call(&call);
    if (rc != SEQ_OK) {
        Py_XDECREF(reconstruction);
        return raise_status(rc), NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
    free(out);
    if (!with_stats || !result) {
        Py_XDECREF(reconstruction);
        return result;
    }
    if (!reconstruction) {
        reconstruction = Py_None;
        Py_INCREF(Py_None);
    }
    return Py_BuildValue("N(nnn)N", result, (Py_ssize_t)by_channel[0], (Py_ssize_t)by_channel[1],
                         (Py_ssize_t)by_channel[2], reconstruction);
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    (void)self;
    return encode_impl(args, 0);
}

static PyObject *py_encode_stats(PyObject *self, PyObject *args) {
    (void)self;
    return encode_impl(args, 1);
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    Call call;
    (void)self;
    if (!parse_call(args, &call, 0)) return NULL;
    PyObject *result = PyBytes_FromStringAndSize(NULL, call.n);
    if (!result) {
        release_call(&call);
        return NULL;
    }
    uint8_t *image = (uint8_t *)PyBytes_AS_STRING(result);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = seq_decode((const uint8_t *)call.first.buf, (size_t)call.first.len,
                    call.have_recon ? (const uint8_t *)call.recon.buf : NULL, call.height, call.width, &call.prm,
                    call.max_error, image);
    Py_END_ALLOW_THREADS
    release_call(&call);
    if (rc != SEQ_OK) {
        Py_DECREF(result);
        return raise_status(rc), NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS, "encode(image, recon, height, width, params[, max_error]) -> bytes"},
    {"encode_stats", py_encode_stats, METH_VARARGS,
     "encode_stats(image, recon, height, width, params[, max_error]) -> (bytes, (R, G, B bytes), reconstruction)"},
    {"decode", py_decode, METH_VARARGS,
     "decode(data, recon, height, width, params[, max_error]) -> bytes (H*W*3 pixels)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_seqcore", "The sequential residual coder (seqcore.c).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__seqcore(void) { return PyModule_Create(&module); }
