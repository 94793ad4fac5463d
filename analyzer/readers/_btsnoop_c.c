/* The btsnoop record walk and the record-header gather (btsnoop, pcap, pcapng), compiled
 * (issue 17): the same plausibility rules
 * as the record-by-record walk in btsnoop.py, one pass over the record headers in C instead of
 * the numpy lockstep walk. Optional: when this module is not built (no compiler at install),
 * btsnoop.py uses the numpy walk, which gives the same records.
 *
 * Only the Python buffer protocol is used (no numpy C API): the caller passes the capture
 * buffer and writable output buffers (numpy arrays).
 *
 * Record layout (btsnoop v1): 24-byte big-endian header (original length u32, included length
 * u32, flags u32, cumulative drops u32, timestamp i64) then the included bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define REC_LEN 24

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* walk(buf, start, limit, flag_mask, flag_max, max_record, out_offsets) -> (n, stop, status)
 * status 0: the records end exactly at the end of the buffer; 1: out_offsets is full or the
 * walk passed ``limit`` (call again from stop); 2: an implausible or cut record at stop
 * (damage, padding, a joined log: the careful walk must read the file). */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer buf, out;
    Py_ssize_t start, limit;
    unsigned long long flag_mask, flag_max, max_record;
    if (!PyArg_ParseTuple(args, "y*nnKKKw*", &buf, &start, &limit, &flag_mask, &flag_max,
                          &max_record, &out))
        return NULL;
    const unsigned char *data = (const unsigned char *)buf.buf;
    const Py_ssize_t size = buf.len;
    int64_t *offs = (int64_t *)out.buf;
    const Py_ssize_t cap = out.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t n = 0, off = start < 0 ? 0 : start;
    int status = 0;
    Py_BEGIN_ALLOW_THREADS
    while (off < size) {
        if (n >= cap || off >= limit) {
            status = 1;
            break;
        }
        if (size - off < REC_LEN) {
            status = 2;
            break;
        }
        const unsigned char *h = data + off;
        uint32_t orig = be32(h), incl = be32(h + 4), flags = be32(h + 8);
        if (incl > orig || incl > max_record || (uint64_t)incl > (uint64_t)(size - off - REC_LEN) ||
            (flags & flag_mask) > flag_max || (orig == 0 && flags == 0)) {
            status = 2;
            break;
        }
        offs[n++] = (int64_t)off;
        off += REC_LEN + (Py_ssize_t)incl;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", n, off, status);
}

/* gather(buf, offsets, width, out) : the ``width`` bytes at each offset (a record header, and
 * for btsnoop the byte after it; zero where the buffer ends) copied into out
 * (len(offsets) * width bytes). */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer buf, offsets, out;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &buf, &offsets, &width, &out))
        return NULL;
    const Py_ssize_t HEAD_COPY = width;
    const unsigned char *data = (const unsigned char *)buf.buf;
    const Py_ssize_t size = buf.len;
    const int64_t *offs = (const int64_t *)offsets.buf;
    const Py_ssize_t n = offsets.len / (Py_ssize_t)sizeof(int64_t);
    unsigned char *dst = (unsigned char *)out.buf;
    if (width < 1 || width > 4096 || out.len < n * HEAD_COPY) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&offsets);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "gather: bad width or output buffer too small");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t o = offs[i];
        unsigned char *d = dst + i * HEAD_COPY;
        if (o >= 0 && o <= size - HEAD_COPY) {
            memcpy(d, data + o, (size_t)HEAD_COPY);
        } else {
            memset(d, 0, (size_t)HEAD_COPY);
            if (o >= 0 && o < size)
                memcpy(d, data + o, (size_t)(size - o));
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Record offsets of a btsnoop buffer from start."},
    {"gather", gather, METH_VARARGS, "Record headers (25 bytes each) at the given offsets."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_btsnoop_c", NULL, -1, methods};

PyMODINIT_FUNC PyInit__btsnoop_c(void) { return PyModule_Create(&module); }
