/* The duplicate memory's hot pure functions (transforms/core/engine/dedup.py and ids.py), in C.
 *
 * Every function answers exactly what the Python it stands for answers, or None ("not sure"): for any input
 * that is not the common case (another type, a subclass, a length or a number out of the usual range, text
 * UTF-8 cannot encode) it returns None and the Python decides, raising its own errors. So C never gives a
 * different answer, only sometimes no answer (tests/engine/test_native_engine.py checks this on generated
 * inputs). Optional: without a compiler the Python path runs (dedup.py, ids.py).
 *
 * The memory's layout (dedup.py): ``ids`` is the concatenation of 16-byte ids, ``times`` the matching
 * little-endian int64 message times.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define ID 16
#define TIME 8

/* ---- MD5 (RFC 1321), for the memory's hashed ids ---- */

typedef struct {
    uint32_t a, b, c, d;
    uint64_t length; /* bytes hashed so far */
    unsigned char block[64];
    size_t used; /* bytes in ``block`` */
} Md5;

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const unsigned char R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(Md5 *m, const unsigned char *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = m->a, b = m->b, c = m->c, d = m->d;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = a + f + K[i] + w[g];
        a = d;
        d = c;
        c = b;
        b = b + ((t << R[i]) | (t >> (32 - R[i])));
    }
    m->a += a;
    m->b += b;
    m->c += c;
    m->d += d;
}

static void md5_init(Md5 *m) {
    m->a = 0x67452301;
    m->b = 0xefcdab89;
    m->c = 0x98badcfe;
    m->d = 0x10325476;
    m->length = 0;
    m->used = 0;
}

static void md5_update(Md5 *m, const unsigned char *p, size_t n) {
    m->length += n;
    while (n > 0) {
        size_t take = 64 - m->used < n ? 64 - m->used : n;
        memcpy(m->block + m->used, p, take);
        m->used += take;
        p += take;
        n -= take;
        if (m->used == 64) {
            md5_block(m, m->block);
            m->used = 0;
        }
    }
}

static void md5_digest(Md5 *m, unsigned char out[16]) {
    uint64_t bits = m->length * 8;
    static const unsigned char pad[64] = {0x80};
    size_t padding = m->used < 56 ? 56 - m->used : 120 - m->used;
    md5_update(m, pad, padding);
    unsigned char tail[8];
    for (int i = 0; i < 8; i++) tail[i] = (unsigned char)(bits >> (8 * i));
    md5_update(m, tail, 8);
    uint32_t words[4] = {m->a, m->b, m->c, m->d};
    for (int i = 0; i < 16; i++) out[i] = (unsigned char)(words[i / 4] >> (8 * (i % 4)));
}

/* memory_id(prefix: bytes, text: str) -> bytes | None: ``md5(prefix + text.encode()).digest()``
 * (ids.occurrence_memory_id, ids.status_change_memory_id). None unless prefix is exactly bytes and text
 * exactly str that UTF-8 encodes (a lone surrogate: Python raises its UnicodeEncodeError). */
static PyObject *memory_id(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyUnicode_CheckExact(args[1])) Py_RETURN_NONE;
    PyObject *text = args[1];
    PyObject *encoded = NULL; /* a temporary UTF-8 copy of non-ASCII text (not cached on the str) */
    const char *data;
    Py_ssize_t size;
    if (PyUnicode_IS_ASCII(text)) {
        data = (const char *)PyUnicode_DATA(text);
        size = PyUnicode_GET_LENGTH(text);
    } else {
        encoded = PyUnicode_AsUTF8String(text);
        if (encoded == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        data = PyBytes_AS_STRING(encoded);
        size = PyBytes_GET_SIZE(encoded);
    }
    Md5 m;
    md5_init(&m);
    md5_update(&m, (const unsigned char *)PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]));
    md5_update(&m, (const unsigned char *)data, (size_t)size);
    Py_XDECREF(encoded);
    unsigned char digest[16];
    md5_digest(&m, digest);
    return PyBytes_FromStringAndSize((const char *)digest, 16);
}

/* ---- the memory ---- */

static int64_t read_time(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = TIME - 1; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

static void write_time(unsigned char *p, int64_t value) {
    uint64_t v = (uint64_t)value;
    for (int i = 0; i < TIME; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* An exact int that fits int64 into *out: 1; anything else (another type, bool, out of range): 0. */
static int exact_int64(PyObject *value, int64_t *out) {
    if (!PyLong_CheckExact(value)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

/* find(ids: bytes, memory_id: bytes) -> int | None: the index of the first 16-byte entry of ``ids`` equal
 * to ``memory_id``, -1 if none (DuplicateMemory._index's scan). None unless both are exactly bytes,
 * ``memory_id`` has 16 bytes and ``ids`` a multiple of 16. */
static PyObject *find(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) Py_RETURN_NONE;
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (PyBytes_GET_SIZE(args[1]) != ID || size % ID) Py_RETURN_NONE;
    const char *ids = PyBytes_AS_STRING(args[0]);
    const char *wanted = PyBytes_AS_STRING(args[1]);
    for (Py_ssize_t start = 0; start < size; start += ID)
        if (memcmp(ids + start, wanted, ID) == 0) return PyLong_FromSsize_t(start / ID);
    return PyLong_FromLong(-1);
}

/* time_at(times: bytes, index: int) -> int | None: the time of entry ``index`` (DuplicateMemory's stored
 * time). None unless ``times`` is exactly bytes of whole entries and 0 <= index < its entries. */
static PyObject *time_at(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyLong_CheckExact(args[1])) Py_RETURN_NONE;
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (size % TIME || index < 0 || index >= size / TIME) Py_RETURN_NONE;
    return PyLong_FromLongLong(read_time((const unsigned char *)PyBytes_AS_STRING(args[0]) + index * TIME));
}

/* freeze(ids: bytes, times: bytes, added: dict[bytes, int], updated: dict[int, int]) -> (bytes, bytes) | None:
 * DuplicateMemory.freeze: ``times`` with each ``updated`` index set to its time, then ``added``'s ids and
 * times appended in the dict's order. None unless ids and times are exactly bytes of the same number of
 * entries, the dicts exactly dicts, every added id exactly 16 bytes, every index an exact int in range and
 * every time an exact int that fits int64 (array('q') refuses larger ones; Python raises). */
static PyObject *freeze(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1]) ||
        !PyDict_CheckExact(args[2]) || !PyDict_CheckExact(args[3]))
        Py_RETURN_NONE;
    PyObject *ids = args[0], *times = args[1], *added = args[2], *updated = args[3];
    Py_ssize_t entries = PyBytes_GET_SIZE(times) / TIME;
    if (PyBytes_GET_SIZE(times) % TIME || PyBytes_GET_SIZE(ids) != entries * ID) Py_RETURN_NONE;
    Py_ssize_t more = PyDict_GET_SIZE(added);
    if (more > (PY_SSIZE_T_MAX / ID) - entries - 1) Py_RETURN_NONE;
    PyObject *new_ids = PyBytes_FromStringAndSize(NULL, (entries + more) * ID);
    PyObject *new_times = PyBytes_FromStringAndSize(NULL, (entries + more) * TIME);
    if (new_ids == NULL || new_times == NULL) goto fail;
    char *id_out = PyBytes_AS_STRING(new_ids);
    unsigned char *time_out = (unsigned char *)PyBytes_AS_STRING(new_times);
    memcpy(id_out, PyBytes_AS_STRING(ids), (size_t)(entries * ID));
    memcpy(time_out, PyBytes_AS_STRING(times), (size_t)(entries * TIME));
    Py_ssize_t position = 0;
    PyObject *key, *value;
    int64_t index, time;
    while (PyDict_Next(updated, &position, &key, &value)) {
        if (!exact_int64(key, &index) || index < 0 || index >= entries || !exact_int64(value, &time))
            goto unsure;
        write_time(time_out + index * TIME, time);
    }
    position = 0;
    Py_ssize_t slot = entries;
    while (PyDict_Next(added, &position, &key, &value)) {
        if (!PyBytes_CheckExact(key) || PyBytes_GET_SIZE(key) != ID || !exact_int64(value, &time)) goto unsure;
        memcpy(id_out + slot * ID, PyBytes_AS_STRING(key), ID);
        write_time(time_out + slot * TIME, time);
        slot++;
    }
    if (slot != entries + more) goto unsure; /* the dict changed size meanwhile: cannot, without the GIL let go */
    PyObject *result = PyTuple_Pack(2, new_ids, new_times);
    Py_DECREF(new_ids);
    Py_DECREF(new_times);
    return result;
unsure:
    Py_DECREF(new_ids);
    Py_DECREF(new_times);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(new_ids);
    Py_XDECREF(new_times);
    return NULL;
}

/* prune(ids: bytes, times: bytes, horizon: int) -> (bytes, bytes) | None: dedup.prune: the entries whose
 * time is at least ``horizon``, in their order; the same two objects when none is dropped. None unless ids
 * and times are exactly bytes of the same number of entries and horizon an exact int that fits int64. */
static PyObject *prune(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t horizon;
    if (nargs != 3 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1]) ||
        !exact_int64(args[2], &horizon))
        Py_RETURN_NONE;
    PyObject *ids = args[0], *times = args[1];
    Py_ssize_t entries = PyBytes_GET_SIZE(times) / TIME;
    if (PyBytes_GET_SIZE(times) % TIME || PyBytes_GET_SIZE(ids) != entries * ID) Py_RETURN_NONE;
    const unsigned char *time_in = (const unsigned char *)PyBytes_AS_STRING(times);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < entries; i++) kept += read_time(time_in + i * TIME) >= horizon;
    if (kept == entries) return PyTuple_Pack(2, ids, times);
    PyObject *new_ids = PyBytes_FromStringAndSize(NULL, kept * ID);
    PyObject *new_times = PyBytes_FromStringAndSize(NULL, kept * TIME);
    if (new_ids == NULL || new_times == NULL) {
        Py_XDECREF(new_ids);
        Py_XDECREF(new_times);
        return NULL;
    }
    const char *id_in = PyBytes_AS_STRING(ids);
    char *id_out = PyBytes_AS_STRING(new_ids);
    char *time_out = PyBytes_AS_STRING(new_times);
    Py_ssize_t slot = 0;
    for (Py_ssize_t i = 0; i < entries; i++) {
        if (read_time(time_in + i * TIME) >= horizon) {
            memcpy(id_out + slot * ID, id_in + i * ID, ID);
            memcpy(time_out + slot * TIME, time_in + i * TIME, TIME);
            slot++;
        }
    }
    PyObject *result = PyTuple_Pack(2, new_ids, new_times);
    Py_DECREF(new_ids);
    Py_DECREF(new_times);
    return result;
}

static PyMethodDef methods[] = {
    {"memory_id", (PyCFunction)(void (*)(void))memory_id, METH_FASTCALL, "md5(prefix + text.encode()).digest()"},
    {"find", (PyCFunction)(void (*)(void))find, METH_FASTCALL, "index of a 16-byte entry, -1 if none"},
    {"time_at", (PyCFunction)(void (*)(void))time_at, METH_FASTCALL, "the time of an entry"},
    {"freeze", (PyCFunction)(void (*)(void))freeze, METH_FASTCALL, "the memory's new (ids, times)"},
    {"prune", (PyCFunction)(void (*)(void))prune, METH_FASTCALL, "the entries at or after a horizon"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_engine", NULL, -1, methods};

PyMODINIT_FUNC PyInit__engine(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
