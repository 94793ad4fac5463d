/* The record walks of btsnoop, pcap and pcapng and the record-header gather, compiled (issue
 * 17). Each walk applies the same plausibility rules as the record-by-record Python walk of its
 * reader and stops at the first record it cannot take, handing it back (status 2): the Python
 * walk, which knows damage, padding, joined files and unusual blocks, reads that one. Optional:
 * when this module is not built (no compiler at install), the readers use their numpy and
 * Python walks, which find the same records.
 *
 * Only the Python buffer protocol is used (no numpy C API): the caller passes the capture
 * buffer and writable output buffers (numpy arrays).
 *
 * Record layouts: btsnoop v1 (24-byte big-endian header: original length, included length,
 * flags, cumulative drops, timestamp i64); classic pcap (16-byte header: seconds, fraction,
 * included length, original length); pcapng Enhanced Packet Block (type 6, block length,
 * interface, timestamp high/low, captured length, original length, data, options, length).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t rd32(const unsigned char *p, int big) {
    return big ? be32(p)
               : ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* what a walk checks its records against */
typedef struct {
    int big;
    unsigned long long a, b, c;
} Rules;

/* the length of the record at h (avail bytes left in the buffer), or -1: not one to take */
typedef Py_ssize_t (*RecordFn)(const unsigned char *h, Py_ssize_t avail, const Rules *r);

/* btsnoop: a = flag mask, b = largest flags value, c = largest included length */
static Py_ssize_t btsnoop_record(const unsigned char *h, Py_ssize_t avail, const Rules *r) {
    if (avail < 24)
        return -1;
    uint32_t orig = be32(h), incl = be32(h + 4), flags = be32(h + 8);
    if (incl > orig || incl > r->c || (uint64_t)incl > (uint64_t)(avail - 24) ||
        (flags & r->a) > r->b || (orig == 0 && flags == 0))
        return -1;
    return 24 + (Py_ssize_t)incl;
}

/* classic pcap: a = largest included length; seconds that spell a pcap magic are a second
 * file header */
static Py_ssize_t pcap_record(const unsigned char *h, Py_ssize_t avail, const Rules *r) {
    static const unsigned char magics[4][4] = {
        {0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d},
        {0x4d, 0x3c, 0xb2, 0xa1}};
    if (avail < 16)
        return -1;
    for (int k = 0; k < 4; k++)
        if (memcmp(h, magics[k], 4) == 0)
            return -1;
    uint32_t incl = rd32(h + 8, r->big), orig = rd32(h + 12, r->big);
    if (incl > r->a || incl > orig || orig == 0 || (uint64_t)incl > (uint64_t)(avail - 16))
        return -1;
    return 16 + (Py_ssize_t)incl;
}

/* pcapng: an option-less Enhanced Packet Block of an interface below a = the section's count */
static Py_ssize_t epb_record(const unsigned char *h, Py_ssize_t avail, const Rules *r) {
    if (avail < 32)
        return -1;
    uint32_t btype = rd32(h, r->big), blen = rd32(h + 4, r->big);
    if (btype != 6 || blen < 32 || (blen & 3) || (uint64_t)blen > (uint64_t)avail ||
        rd32(h + blen - 4, r->big) != blen)
        return -1;
    uint32_t iface = rd32(h + 8, r->big), capl = rd32(h + 20, r->big);
    uint64_t data_end = 28 + (uint64_t)capl + ((4 - (capl & 3)) & 3);
    if (iface >= r->a || data_end != (uint64_t)blen - 4)
        return -1;
    return (Py_ssize_t)blen;
}

/* payload bytes kept per frame by columns() (the frame index's HCI headers) */
#define HEAD_BYTES 8

/* Walks read ahead of themselves: following records is a chain of dependent loads (each header
 * says where the next one is), so on a cold file every header would wait for memory. One byte
 * of every cache line up to TOUCH_AHEAD bytes ahead is read first — independent loads the
 * memory system overlaps — and the walk then reads its headers from the cache. */
#define TOUCH_AHEAD (256 * 1024)
static volatile unsigned int touch_sink;

typedef struct {
    Py_ssize_t touched; /* read ahead up to here */
    unsigned int sink;  /* what was read (kept so the reads are not optimised away) */
} ReadAhead;

static void read_ahead(ReadAhead *ra, const unsigned char *data, Py_ssize_t size,
                       Py_ssize_t off) {
    if (off + TOUCH_AHEAD / 2 <= ra->touched)
        return;
    Py_ssize_t end = ra->touched + TOUCH_AHEAD < size ? ra->touched + TOUCH_AHEAD : size;
    for (Py_ssize_t p = ra->touched; p < end; p += 64)
        ra->sink += data[p];
    ra->touched = end;
}

/* the first min(have, width) bytes of src into dst, the rest of dst's width bytes zero */
static void copy_padded(unsigned char *dst, const unsigned char *src, Py_ssize_t have,
                        Py_ssize_t width) {
    Py_ssize_t k = have < 0 ? 0 : (have < width ? have : width);
    if (k > 0)
        memcpy(dst, src, (size_t)k);
    if (k < width)
        memset(dst + k, 0, (size_t)(width - k));
}

/* Record offsets from start while fn takes them -> (n, stop, status). Status 0: the records end
 * exactly at the end of the buffer; 1: out is full or the walk passed ``limit`` (call again
 * from stop); 2: the record at stop is not one to take (the Python walk reads it). Releases
 * both buffers. */
static PyObject *run_walk(Py_buffer *buf, Py_ssize_t start, Py_ssize_t limit, RecordFn fn,
                          const Rules *rules, Py_buffer *out) {
    const unsigned char *data = (const unsigned char *)buf->buf;
    const Py_ssize_t size = buf->len;
    int64_t *offs = (int64_t *)out->buf;
    const Py_ssize_t cap = out->len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t n = 0, off = start < 0 ? 0 : start;
    int status = 0;
    ReadAhead ra = {off, 0};
    Py_BEGIN_ALLOW_THREADS
    while (off < size) {
        if (n >= cap || off >= limit) {
            status = 1;
            break;
        }
        read_ahead(&ra, data, size, off);
        Py_ssize_t len = fn(data + off, size - off, rules);
        if (len <= 0) {
            status = 2;
            break;
        }
        offs[n++] = (int64_t)off;
        off += len;
    }
    Py_END_ALLOW_THREADS
    touch_sink = ra.sink;
    PyBuffer_Release(buf);
    PyBuffer_Release(out);
    return Py_BuildValue("nni", n, off, status);
}

/* columns(buf, start, limit, flag_mask, flag_max, max_record, datalink, epoch_delta, luts,
 *         off, time_us, length, orig_length, kind, direction, adapter, heads,
 *         keep, keep_at, keep_n, keep_used, keep_full, release)
 *   -> (n, stop, status, drops_first, drops_last, drops_max, keep_n, keep_used, keep_full,
 *       backwards)
 * The btsnoop record walk (btsnoop_record's rules; statuses as run_walk) writing the frame
 * table's columns as it steps over each record: payload offset (after a stripped H4 byte), Unix
 * µs, lengths (the original clipped to 0..2**31-1), kind and direction codes, the adapter
 * (monitor logs) and the payload's first HEAD_BYTES bytes (zero past its end). ``luts``: kind
 * then direction code by H4 type (1002) or monitor opcode (2001), 256 bytes each, then 6 codes:
 * ACL, event, command, unknown kind, sent, received. ``adapter``/``heads`` may be empty (not
 * wanted). Writes at most as many rows as the shortest output holds. ``backwards``: how many
 * records of this call have an earlier timestamp than the record before them.
 *
 * While a record is in the cache, the payload of each LE Meta event (an event whose first byte
 * is 0x3E: the advertising reports a later pass reads all of) is appended to ``keep`` and
 * (payload offset, end in ``keep``) to ``keep_at`` (int64 pairs), from entry ``keep_n`` and
 * byte ``keep_used`` on; at the first that does not fit, ``keep_full`` is set and no more are
 * kept. ``release`` > 0 (``buf`` is a memory-mapped file): the pages walked are dropped
 * (MADV_DONTNEED: clean file pages, read back from the page cache if needed) every
 * ``release`` bytes and at the end, so a pass never holds the whole file resident. All of it
 * runs without the GIL. */
static PyObject *columns(PyObject *self, PyObject *args) {
    Py_buffer buf, luts, o_off, o_time, o_len, o_orig, o_kind, o_dir, o_adapter, o_heads, o_keep,
        o_keep_at;
    Py_ssize_t start, limit, keep_n, keep_used, release;
    int keep_full;
    unsigned long long flag_mask, flag_max, max_record;
    int datalink;
    long long epoch;
    if (!PyArg_ParseTuple(args, "y*nnKKKiLy*w*w*w*w*w*w*w*w*w*w*nnpn", &buf, &start, &limit,
                          &flag_mask, &flag_max, &max_record, &datalink, &epoch, &luts, &o_off,
                          &o_time, &o_len, &o_orig, &o_kind, &o_dir, &o_adapter, &o_heads,
                          &o_keep, &o_keep_at, &keep_n, &keep_used, &keep_full, &release))
        return NULL;
    Py_buffer *all[] = {&buf,   &luts,  &o_off,     &o_time,    &o_len,  &o_orig,
                        &o_kind, &o_dir, &o_adapter, &o_heads, &o_keep, &o_keep_at};
    const int n_all = 12;
    Py_ssize_t cap = o_off.len / 8;
    if (o_time.len / 8 < cap) cap = o_time.len / 8;
    if (o_len.len / 4 < cap) cap = o_len.len / 4;
    if (o_orig.len / 4 < cap) cap = o_orig.len / 4;
    if (o_kind.len < cap) cap = o_kind.len;
    if (o_dir.len < cap) cap = o_dir.len;
    int want_adapter = o_adapter.len > 0, want_heads = o_heads.len > 0;
    if (want_adapter && o_adapter.len / 2 < cap) cap = o_adapter.len / 2;
    if (want_heads && o_heads.len / HEAD_BYTES < cap) cap = o_heads.len / HEAD_BYTES;
    const Py_ssize_t keep_cap = o_keep.len, keep_at_cap = o_keep_at.len / 16;
    if (luts.len < 518 || keep_n < 0 || keep_used < 0 || keep_n > keep_at_cap ||
        keep_used > keep_cap) {
        for (int i = 0; i < n_all; i++) PyBuffer_Release(all[i]);
        PyErr_SetString(PyExc_ValueError, "columns: bad luts or keep state");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)buf.buf;
    const unsigned char *kind_lut = (const unsigned char *)luts.buf, *dir_lut = kind_lut + 256;
    const unsigned char *codes = kind_lut + 512;
    int64_t *off_out = (int64_t *)o_off.buf, *time_out = (int64_t *)o_time.buf;
    int32_t *len_out = (int32_t *)o_len.buf, *orig_out = (int32_t *)o_orig.buf;
    unsigned char *kind_out = (unsigned char *)o_kind.buf, *dir_out = (unsigned char *)o_dir.buf;
    uint16_t *adapter_out = (uint16_t *)o_adapter.buf;
    unsigned char *heads_out = (unsigned char *)o_heads.buf;
    unsigned char *keep_out = (unsigned char *)o_keep.buf;
    int64_t *keep_at = (int64_t *)o_keep_at.buf;
    if (keep_cap == 0 || keep_at_cap == 0)
        keep_full = 1;
    const Py_ssize_t size = buf.len;
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || ((uintptr_t)data % (uintptr_t)page) != 0)
        release = 0; /* not a page-aligned mapping: nothing to release */
    Rules r = {1, flag_mask, flag_max, max_record};
    Py_ssize_t n = 0, off = start < 0 ? 0 : start;
    Py_ssize_t released = page > 0 ? (off + page - 1) / page * page : off;
    ReadAhead ra = {off, 0};
    int status = 0;
    uint32_t d_first = 0, d_last = 0, d_max = 0;
    Py_ssize_t backwards = 0;
    int64_t prev_ts = 0;
    Py_BEGIN_ALLOW_THREADS
    while (off < size) {
        if (n >= cap || off >= limit) {
            status = 1;
            break;
        }
        if (release > 0 && off - released >= release) {
            Py_ssize_t upto = off / page * page;
            madvise((void *)(data + released), (size_t)(upto - released), MADV_DONTNEED);
            released = upto;
        }
        read_ahead(&ra, data, size, off);
        const unsigned char *h = data + off;
        Py_ssize_t len = btsnoop_record(h, size - off, &r);
        if (len <= 0) {
            status = 2;
            break;
        }
        uint32_t orig = be32(h), incl = be32(h + 4), flags = be32(h + 8), drops = be32(h + 12);
        int64_t ts = (int64_t)(((uint64_t)be32(h + 16) << 32) | be32(h + 20));
        unsigned char kind, dir;
        uint32_t strip = 0;
        if (datalink == 1002) {
            if (incl > 0) {
                kind = kind_lut[h[24]];
                strip = kind != codes[3];
            } else {
                kind = codes[0];
            }
            dir = (flags & 1) ? codes[5] : codes[4];
        } else if (datalink == 1001) {
            kind = (flags & 2) ? ((flags & 1) ? codes[1] : codes[2]) : codes[0];
            dir = (flags & 1) ? codes[5] : codes[4];
        } else {
            uint32_t op = flags & 0xFFFF; /* below 256: the walk's rule (flag_max) */
            kind = kind_lut[op & 0xFF];
            dir = dir_lut[op & 0xFF];
            if (want_adapter)
                adapter_out[n] = (uint16_t)(flags >> 16);
        }
        /* Unix µs, wrapping as numpy's int64 subtraction does (no signed overflow in C); the
         * backwards count compares these, as the numpy path compares its time column */
        const int64_t t_us = (int64_t)((uint64_t)ts - (uint64_t)epoch);
        if (n == 0)
            d_first = drops;
        else if (t_us < prev_ts)
            backwards++;
        prev_ts = t_us;
        d_last = drops;
        if (drops > d_max)
            d_max = drops;
        int64_t o2 = (int64_t)orig - (int64_t)strip;
        const Py_ssize_t plen = (Py_ssize_t)(incl - strip);
        const unsigned char *payload = h + 24 + strip;
        off_out[n] = (int64_t)off + 24 + strip;
        time_out[n] = t_us;
        len_out[n] = (int32_t)plen;
        orig_out[n] = (int32_t)(o2 < 0 ? 0 : (o2 > 2147483647 ? 2147483647 : o2));
        kind_out[n] = kind;
        dir_out[n] = dir;
        if (want_heads) /* while the record is in the cache */
            copy_padded(heads_out + n * HEAD_BYTES, payload, plen, HEAD_BYTES);
        if (!keep_full && kind == codes[1] && plen > 0 && payload[0] == 0x3E) {
            if (keep_n < keep_at_cap && plen <= keep_cap - keep_used) {
                memcpy(keep_out + keep_used, payload, (size_t)plen);
                keep_used += plen;
                keep_at[2 * keep_n] = off_out[n];
                keep_at[2 * keep_n + 1] = (int64_t)keep_used;
                keep_n++;
            } else {
                keep_full = 1;
            }
        }
        n++;
        off += len;
    }
    if (release > 0) {
        Py_ssize_t upto = off / page * page;
        if (upto > released)
            madvise((void *)(data + released), (size_t)(upto - released), MADV_DONTNEED);
    }
    Py_END_ALLOW_THREADS
    touch_sink = ra.sink;
    for (int i = 0; i < n_all; i++)
        PyBuffer_Release(all[i]);
    return Py_BuildValue("nniIIInnin", n, off, status, d_first, d_last, d_max, keep_n, keep_used,
                         keep_full, backwards);
}

/* (buf, start, limit, big, a, out_offsets): a walk whose rules are a byte order and one bound */
static PyObject *walk_with(PyObject *args, RecordFn fn) {
    Py_buffer buf, out;
    Py_ssize_t start, limit;
    Rules r = {0, 0, 0, 0};
    if (!PyArg_ParseTuple(args, "y*nnpKw*", &buf, &start, &limit, &r.big, &r.a, &out))
        return NULL;
    return run_walk(&buf, start, limit, fn, &r, &out);
}

/* pcap_walk(buf, start, limit, big, max_incl, out_offsets): classic pcap records */
static PyObject *pcap_walk(PyObject *self, PyObject *args) { return walk_with(args, pcap_record); }

/* ng_walk(buf, start, limit, big, n_ifaces, out_offsets): option-less pcapng EPBs */
static PyObject *ng_walk(PyObject *self, PyObject *args) { return walk_with(args, epb_record); }

/* gather(buf, offsets, width, out) : the ``width`` bytes at each offset (a record header, and
 * for btsnoop the byte after it; zero where the buffer ends) copied into out
 * (len(offsets) * width bytes). */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer buf, offsets, out;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &buf, &offsets, &width, &out))
        return NULL;
    const unsigned char *data = (const unsigned char *)buf.buf;
    const Py_ssize_t size = buf.len;
    const int64_t *offs = (const int64_t *)offsets.buf;
    const Py_ssize_t n = offsets.len / (Py_ssize_t)sizeof(int64_t);
    unsigned char *dst = (unsigned char *)out.buf;
    if (width < 1 || width > 4096 || out.len < n * width) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&offsets);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "gather: bad width or output buffer too small");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t o = offs[i];
        int inside = o >= 0 && o < size;
        copy_padded(dst + i * width, inside ? data + o : data, inside ? size - o : 0, width);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* gather_runs(buf, offsets, lengths, out): the lengths[i] bytes at offsets[i] (int64 each)
 * copied one after another into out (sum of lengths bytes); bytes past the end of the buffer are
 * zero. */
static PyObject *gather_runs(PyObject *self, PyObject *args) {
    Py_buffer buf, offsets, lengths, out;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &buf, &offsets, &lengths, &out))
        return NULL;
    const unsigned char *data = (const unsigned char *)buf.buf;
    const Py_ssize_t size = buf.len;
    const int64_t *offs = (const int64_t *)offsets.buf;
    const int64_t *lens = (const int64_t *)lengths.buf;
    const Py_ssize_t n = offsets.len / (Py_ssize_t)sizeof(int64_t);
    unsigned char *dst = (unsigned char *)out.buf;
    int ok = lengths.len == offsets.len;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        if (lens[i] < 0 || lens[i] > PY_SSIZE_T_MAX - total)
            ok = 0;
        else
            total += (Py_ssize_t)lens[i];
    }
    if (!ok || total > out.len) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&offsets);
        PyBuffer_Release(&lengths);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "gather_runs: bad lengths or output buffer too small");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t o = offs[i];
        int inside = o >= 0 && o < size;
        copy_padded(dst, inside ? data + o : data, inside ? size - o : 0, (Py_ssize_t)lens[i]);
        dst += lens[i];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* HCI header fields of the frame index (Core v5.4 Vol 4 Part E §5.4), from each frame's first
 * payload bytes (heads: HEAD_BYTES per frame, any bytes past a frame's end are ignored: every
 * field is checked against the frame's length):
 * hci_fields(heads, kind u8, length i32, direction u8, kinds, code i16, sub i16, opcode i32,
 *            handle i16, pb i8, l2len i32, cid i32, diag u8)
 * kinds = (event, command, acl, sco, iso) codes of the kind column. Outputs are pre-filled with
 * -1 (diag with 0) by the caller and written where a field applies. An ACL continuation fragment
 * (PB flag 01) takes the CID of the last start fragment of the same handle and direction (-1
 * with none before it, §5.4.2). The raw handle field 0x2EDC (Qualcomm's controller debug log on
 * ACL) is no link: no handle, PB, length or CID, and diag set. Same results as the numpy
 * columns of decode/hci_columns.py and sessions/index.py's fill_continuations. */
#define ACL_KEYS ((4096 + 1) * 4)
static PyObject *hci_fields(PyObject *self, PyObject *args) {
    Py_buffer b[12];
    int k_event, k_command, k_acl, k_sco, k_iso;
    if (!PyArg_ParseTuple(args, "y*y*y*y*(iiiii)w*w*w*w*w*w*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &k_event, &k_command, &k_acl, &k_sco, &k_iso, &b[4], &b[5], &b[6],
                          &b[7], &b[8], &b[9], &b[10], &b[11]))
        return NULL;
    const Py_ssize_t n = b[1].len;
    static const Py_ssize_t item[12] = {HEAD_BYTES, 1, 4, 1, 2, 2, 4, 2, 1, 4, 4, 1};
    int ok = 1;
    for (int i = 0; i < 12; i++)
        if (b[i].len != n * item[i])
            ok = 0;
    int32_t *last = ok ? PyMem_Malloc(sizeof(int32_t) * ACL_KEYS) : NULL;
    if (ok && last) {
        const unsigned char *heads = b[0].buf, *kind = b[1].buf, *dir = b[3].buf;
        const int32_t *len = b[2].buf;
        int16_t *code = b[4].buf, *sub = b[5].buf, *handle = b[7].buf;
        int32_t *opcode = b[6].buf, *l2len = b[9].buf, *cid = b[10].buf;
        int8_t *pb = b[8].buf;
        unsigned char *diag = b[11].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < ACL_KEYS; k++)
            last[k] = -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            const unsigned char *h = heads + i * HEAD_BYTES;
            const int32_t ln = len[i];
            const int kd = kind[i];
            if (kd == k_event) {
                if (ln >= 1)
                    code[i] = h[0];
                if (ln >= 3 && h[0] == 0x3E)
                    sub[i] = h[2];
            } else if (kd == k_command) {
                if (ln >= 2)
                    opcode[i] = h[0] | (h[1] << 8);
            } else if (kd == k_acl) {
                int hd = -1, p = -1, c = -1;
                if (ln >= 2) {
                    const int raw = h[0] | (h[1] << 8);
                    if (raw == 0x2EDC) {
                        diag[i] = 1;
                    } else {
                        hd = raw & 0x0FFF;
                        p = (raw >> 12) & 3;
                        if (ln >= 8 && (p == 0 || p == 2)) {
                            c = h[6] | (h[7] << 8);
                            l2len[i] = h[4] | (h[5] << 8);
                        }
                    }
                }
                handle[i] = (int16_t)hd;
                pb[i] = (int8_t)p;
                const Py_ssize_t key = (Py_ssize_t)(hd + 1) * 4 + (dir[i] & 3);
                if (p == 1)
                    c = last[key];
                else
                    last[key] = c;
                cid[i] = c;
            } else if (kd == k_sco || kd == k_iso) {
                if (ln >= 2)
                    handle[i] = (int16_t)((h[0] | (h[1] << 8)) & 0x0FFF);
            }
        }
        Py_END_ALLOW_THREADS
        PyMem_Free(last);
    }
    for (int i = 0; i < 12; i++)
        PyBuffer_Release(&b[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "hci_fields: column buffers of different lengths");
        return NULL;
    }
    if (!last)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS, "btsnoop records walked into the frame table's columns."},
    {"pcap_walk", pcap_walk, METH_VARARGS, "Plausible classic pcap record offsets from start."},
    {"ng_walk", ng_walk, METH_VARARGS, "Option-less pcapng Enhanced Packet Block offsets."},
    {"gather", gather, METH_VARARGS, "Record headers (width bytes each) at the given offsets."},
    {"gather_runs", gather_runs, METH_VARARGS, "Variable-length byte runs, one after another."},
    {"hci_fields", hci_fields, METH_VARARGS, "The frame index's HCI header fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_btsnoop_c", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__btsnoop_c(void) { return PyModule_Create(&module); }
