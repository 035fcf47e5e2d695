/* The common case of decoding an occurrence payload, in C: occurrence_payload.valid_occurrence's fast path.
 *
 * valid_occurrence(payload) -> Occurrence | None. For a parsed payload (a dict, as orjson or proto_to_payload
 * gives it) whose fields all have the plain types of a valid occurrence, it builds the same Occurrence
 * (and Event, EvidenceItems) that occurrence_payload.occurrence_from_payload builds for it. It never rejects:
 * whenever anything is unusual (a type other than the exact one, a check that fails, a time it does not read
 * itself and Python's parse_time refuses, any exception raised by what it calls) it returns None, and the
 * Python path decides, with its error. So it may give no answer, never a different one
 * (tests/decode/test_native_payload.py compares both on generated payloads). It is called only for payloads
 * whose Checks are SHALLOW (no depth or size to measure).
 *
 * configure(...) hands it, once, the model's types, the registries it looks values up in, the fingerprint
 * digest cache and the Python functions it defers to (see occurrence_payload._load_native).
 *
 * decode_json(raw, max_bytes, carry) is decode.decode's common case (see its comment); with carry, the event comes
 * carried (model.carried_event: its JSON text made of the whole event here, its trees left out).
 *
 * untrack_fields(struct) is model.Event's __post_init__: it untracks the event's JSON trees (see "Untracking").
 * Optional: without a compiler the Python path runs (and nothing is untracked).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Set by configure (strong references, kept for the process's life). */
static PyObject *occurrence_type, *event_type, *evidence_item_type, *message_type, *json_loads, *json_encode;
static PyObject *group_types, *log_levels, *hash_cache, *fingerprint_hashes, *parse_time;
static long long max_parts, max_release_bytes, max_environment_bytes, max_culprit;
static long long min_seconds, max_seconds, min_micros, max_micros, max_depth, measure_above;
static PyObject *s_info, *s_dots, *s_content_type, *s_json, *s_payload_type, *s_occurrence;
static PyObject *a_data, *a_attributes, *a_message_id, *a_message_time;

/* The payload's keys, interned once (dict lookups by an interned str compare by identity first). */
enum {
    K_ID, K_PROJECT_ID, K_EVENT_ID, K_FINGERPRINT, K_ISSUE_TITLE, K_SUBTITLE, K_TYPE, K_DETECTION_TIME,
    K_EVIDENCE_DISPLAY, K_EVENT, K_LEVEL, K_CULPRIT, K_RESOURCE_ID, K_ASSIGNEE, K_EVIDENCE_DATA, K_PRIORITY,
    K_INITIAL_PRIORITY, K_IS_BUFFERED_SPANS, K_PLATFORM, K_TIMESTAMP, K_RECEIVED, K_TAGS, K_RELEASE,
    K_ENVIRONMENT, K_DIST, K_TRANSACTION, K_SERVER_NAME, K_TRACE_ID, K_SDK, K_USER, K_REQUEST, K_CONTEXTS,
    K_NAME, K_VALUE, K_IMPORTANT, K_COUNT
};
static const char *key_names[K_COUNT] = {
    "id", "project_id", "event_id", "fingerprint", "issue_title", "subtitle", "type", "detection_time",
    "evidence_display", "event", "level", "culprit", "resource_id", "assignee", "evidence_data", "priority",
    "initial_issue_priority", "is_buffered_spans", "platform", "timestamp", "received", "tags", "release",
    "environment", "dist", "transaction", "server_name", "trace_id", "sdk", "user", "request", "contexts",
    "name", "value", "important",
};
static PyObject *keys[K_COUNT];
/* The str objects field() looks the keys up by: keys[i] at first, then the parser's own object for that key
 * (see learn_keys). orjson gives the same str object for a key in every document it parses (its key cache),
 * so a lookup by that very object is decided by identity, where one by keys[i] compares the characters.
 * Any str equal to keys[i] finds the same value: which one is used changes only the lookup's cost. */
static PyObject *lookup_keys[K_COUNT];
static PyObject *key_index; /* key name -> its index in keys, for learn_keys */
#define LEARN_EVERY 4096    /* parses between two learn_keys */
static unsigned int learn_countdown = 1;

/* Outcome of a field read: a borrowed value, or ABSENT (missing or null), or FAIL (not sure, or an error). */
#define ABSENT Py_None
#define FAIL NULL

/* d[key] borrowed, ABSENT when missing or None, FAIL on a lookup error. */
static PyObject *field(PyObject *d, int key) {
    PyObject *value = PyDict_GetItemWithError(d, lookup_keys[key]);
    if (value == NULL) return PyErr_Occurred() ? FAIL : ABSENT;
    return value;
}

/* An optional exact str (or None): borrowed, ABSENT, or FAIL for any other type. */
static PyObject *optional_str(PyObject *d, int key) {
    PyObject *value = field(d, key);
    if (value == FAIL || value == ABSENT || PyUnicode_CheckExact(value)) return value;
    return FAIL;
}

/* An optional exact dict (or None): borrowed, ABSENT, or FAIL. */
static PyObject *optional_dict(PyObject *d, int key) {
    PyObject *value = field(d, key);
    if (value == FAIL || value == ABSENT || PyDict_CheckExact(value)) return value;
    return FAIL;
}

static int hex_digit(Py_UCS1 c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* payload_fields.normalised_uuid: 32 lowercase hex characters (new reference), or NULL (not sure) when
 * value is not an ASCII str of 32 hex digits or of a dashed UUID (8-4-4-4-12). */
static PyObject *normalised_uuid(PyObject *value) {
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(value);
    char out[32];
    int n = 0, lower = 1;
    if (length == 32) {
        for (int i = 0; i < 32; i++) {
            if (!hex_digit(text[i])) return NULL;
            if (text[i] >= 'A' && text[i] <= 'F') lower = 0;
            out[n++] = (char)text[i];
        }
        if (lower) return Py_NewRef(value);
    } else if (length == 36) {
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (text[i] != '-') return NULL;
                continue;
            }
            if (!hex_digit(text[i])) return NULL;
            out[n++] = (char)text[i];
        }
    } else {
        return NULL;
    }
    for (int i = 0; i < 32; i++)
        if (out[i] >= 'A' && out[i] <= 'F') out[i] = (char)(out[i] - 'A' + 'a');
    return PyUnicode_FromStringAndSize(out, 32);
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian; Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, long long m, long long d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const Py_UCS1 *at, int count, long long *out) {
    long long v = 0;
    for (int i = 0; i < count; i++) {
        if (at[i] < '0' || at[i] > '9') return 0;
        v = v * 10 + (at[i] - '0');
    }
    *out = v;
    return 1;
}

/* The microseconds of "YYYY-MM-DDTHH:MM:SS[.fff|.ffffff][Z|+HH:MM|-HH:MM]" as datetime.fromisoformat and
 * parse_time read it; 1 when read, 0 when the text has another form or is out of range (then Python reads
 * it). */
static int iso_micros(PyObject *value, long long *micros) {
    if (!PyUnicode_IS_ASCII(value)) return 0;
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    const Py_UCS1 *t = PyUnicode_1BYTE_DATA(value);
    if (length < 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':') return 0;
    long long year, month, day, hour, minute, second, fraction = 0, offset = 0;
    if (!digits(t, 4, &year) || !digits(t + 5, 2, &month) || !digits(t + 8, 2, &day) ||
        !digits(t + 11, 2, &hour) || !digits(t + 14, 2, &minute) || !digits(t + 17, 2, &second))
        return 0;
    Py_ssize_t at = 19;
    if (at < length && t[at] == '.') {
        Py_ssize_t end = at + 1;
        while (end < length && t[end] >= '0' && t[end] <= '9') end++;
        Py_ssize_t count = end - at - 1;
        if (count != 3 && count != 6) return 0;
        digits(t + at + 1, (int)count, &fraction);
        if (count == 3) fraction *= 1000;
        at = end;
    }
    if (at < length && t[at] == 'Z') {
        at++;
    } else if (at < length && (t[at] == '+' || t[at] == '-')) {
        long long oh, om;
        if (length - at != 6 || t[at + 3] != ':' || !digits(t + at + 1, 2, &oh) || !digits(t + at + 4, 2, &om))
            return 0;
        if (oh > 23 || om > 59) return 0;
        offset = (oh * 3600 + om * 60) * (t[at] == '-' ? -1 : 1);
        at += 6;
    }
    if (at != length) return 0;
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > month_days[month - 1] || hour > 23 ||
        minute > 59 || second > 59)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap) return 0;
    long long seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    long long result = seconds * 1000000 + fraction;
    if (result < min_micros || result > max_micros) return 0;
    *micros = result;
    return 1;
}

/* payload_fields.parse_time's microseconds (new reference), or NULL when it raises (or on an error). Ints
 * and floats are read here exactly as Python reads them; the common ISO form too; other text is handed to
 * parse_time itself. */
static PyObject *time_micros(PyObject *value) {
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long seconds = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (seconds == -1 && PyErr_Occurred())) return NULL;
        if (seconds < min_seconds || seconds > max_seconds) return NULL;
        return PyLong_FromLongLong(seconds * 1000000);
    }
    if (PyFloat_CheckExact(value)) {
        double seconds = PyFloat_AS_DOUBLE(value);
        /* the bounds are integers a double holds exactly, so these comparisons are Python's */
        if (!isfinite(seconds) || seconds < (double)min_seconds || seconds > (double)max_seconds) return NULL;
        double x = seconds * 1000000.0;
        double rounded = round(x); /* float.__round__(): half to even, as CPython's double_round does */
        if (fabs(x - rounded) == 0.5) rounded = 2.0 * round(x / 2.0);
        return PyLong_FromDouble(rounded);
    }
    if (PyUnicode_CheckExact(value)) {
        long long micros;
        if (iso_micros(value, &micros)) return PyLong_FromLongLong(micros);
        return PyObject_CallOneArg(parse_time, value);
    }
    return NULL;
}

/* limits.exceeds: 1 when text's UTF-8 length (surrogates as 3 bytes) is more than limit bytes. */
static int exceeds(PyObject *text, long long limit) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length * 4 <= limit) return 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    long long size = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        size += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    return size > limit;
}

/* An exact int that is one of 25, 50, 75 (1), absent (0), or anything else (-1). */
static int priority(PyObject *value) {
    if (value == ABSENT) return 0;
    if (!PyLong_CheckExact(value)) return -1;
    int overflow;
    long v = PyLong_AsLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) return -1;
    return v == 25 || v == 50 || v == 75 ? 1 : -1;
}

/* MD5 (RFC 1321) of a whole buffer, for the fingerprint's digests: the 64 steps written out (the usual
 * forms of F, G, H, I), the words read little-endian byte by byte (one load where the CPU is little-endian). */
#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
#define MD5_STEP(f, a, b, c, d, x, t, s)                                                                        \
    (a) += f((b), (c), (d)) + (x) + (uint32_t)(t);                                                              \
    (a) = ((a) << (s)) | ((a) >> (32 - (s)));                                                                   \
    (a) += (b);

static void md5_block(uint32_t state[4], const unsigned char *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    MD5_STEP(MD5_F, a, b, c, d, w[0], 0xd76aa478, 7)
    MD5_STEP(MD5_F, d, a, b, c, w[1], 0xe8c7b756, 12)
    MD5_STEP(MD5_F, c, d, a, b, w[2], 0x242070db, 17)
    MD5_STEP(MD5_F, b, c, d, a, w[3], 0xc1bdceee, 22)
    MD5_STEP(MD5_F, a, b, c, d, w[4], 0xf57c0faf, 7)
    MD5_STEP(MD5_F, d, a, b, c, w[5], 0x4787c62a, 12)
    MD5_STEP(MD5_F, c, d, a, b, w[6], 0xa8304613, 17)
    MD5_STEP(MD5_F, b, c, d, a, w[7], 0xfd469501, 22)
    MD5_STEP(MD5_F, a, b, c, d, w[8], 0x698098d8, 7)
    MD5_STEP(MD5_F, d, a, b, c, w[9], 0x8b44f7af, 12)
    MD5_STEP(MD5_F, c, d, a, b, w[10], 0xffff5bb1, 17)
    MD5_STEP(MD5_F, b, c, d, a, w[11], 0x895cd7be, 22)
    MD5_STEP(MD5_F, a, b, c, d, w[12], 0x6b901122, 7)
    MD5_STEP(MD5_F, d, a, b, c, w[13], 0xfd987193, 12)
    MD5_STEP(MD5_F, c, d, a, b, w[14], 0xa679438e, 17)
    MD5_STEP(MD5_F, b, c, d, a, w[15], 0x49b40821, 22)
    MD5_STEP(MD5_G, a, b, c, d, w[1], 0xf61e2562, 5)
    MD5_STEP(MD5_G, d, a, b, c, w[6], 0xc040b340, 9)
    MD5_STEP(MD5_G, c, d, a, b, w[11], 0x265e5a51, 14)
    MD5_STEP(MD5_G, b, c, d, a, w[0], 0xe9b6c7aa, 20)
    MD5_STEP(MD5_G, a, b, c, d, w[5], 0xd62f105d, 5)
    MD5_STEP(MD5_G, d, a, b, c, w[10], 0x02441453, 9)
    MD5_STEP(MD5_G, c, d, a, b, w[15], 0xd8a1e681, 14)
    MD5_STEP(MD5_G, b, c, d, a, w[4], 0xe7d3fbc8, 20)
    MD5_STEP(MD5_G, a, b, c, d, w[9], 0x21e1cde6, 5)
    MD5_STEP(MD5_G, d, a, b, c, w[14], 0xc33707d6, 9)
    MD5_STEP(MD5_G, c, d, a, b, w[3], 0xf4d50d87, 14)
    MD5_STEP(MD5_G, b, c, d, a, w[8], 0x455a14ed, 20)
    MD5_STEP(MD5_G, a, b, c, d, w[13], 0xa9e3e905, 5)
    MD5_STEP(MD5_G, d, a, b, c, w[2], 0xfcefa3f8, 9)
    MD5_STEP(MD5_G, c, d, a, b, w[7], 0x676f02d9, 14)
    MD5_STEP(MD5_G, b, c, d, a, w[12], 0x8d2a4c8a, 20)
    MD5_STEP(MD5_H, a, b, c, d, w[5], 0xfffa3942, 4)
    MD5_STEP(MD5_H, d, a, b, c, w[8], 0x8771f681, 11)
    MD5_STEP(MD5_H, c, d, a, b, w[11], 0x6d9d6122, 16)
    MD5_STEP(MD5_H, b, c, d, a, w[14], 0xfde5380c, 23)
    MD5_STEP(MD5_H, a, b, c, d, w[1], 0xa4beea44, 4)
    MD5_STEP(MD5_H, d, a, b, c, w[4], 0x4bdecfa9, 11)
    MD5_STEP(MD5_H, c, d, a, b, w[7], 0xf6bb4b60, 16)
    MD5_STEP(MD5_H, b, c, d, a, w[10], 0xbebfbc70, 23)
    MD5_STEP(MD5_H, a, b, c, d, w[13], 0x289b7ec6, 4)
    MD5_STEP(MD5_H, d, a, b, c, w[0], 0xeaa127fa, 11)
    MD5_STEP(MD5_H, c, d, a, b, w[3], 0xd4ef3085, 16)
    MD5_STEP(MD5_H, b, c, d, a, w[6], 0x04881d05, 23)
    MD5_STEP(MD5_H, a, b, c, d, w[9], 0xd9d4d039, 4)
    MD5_STEP(MD5_H, d, a, b, c, w[12], 0xe6db99e5, 11)
    MD5_STEP(MD5_H, c, d, a, b, w[15], 0x1fa27cf8, 16)
    MD5_STEP(MD5_H, b, c, d, a, w[2], 0xc4ac5665, 23)
    MD5_STEP(MD5_I, a, b, c, d, w[0], 0xf4292244, 6)
    MD5_STEP(MD5_I, d, a, b, c, w[7], 0x432aff97, 10)
    MD5_STEP(MD5_I, c, d, a, b, w[14], 0xab9423a7, 15)
    MD5_STEP(MD5_I, b, c, d, a, w[5], 0xfc93a039, 21)
    MD5_STEP(MD5_I, a, b, c, d, w[12], 0x655b59c3, 6)
    MD5_STEP(MD5_I, d, a, b, c, w[3], 0x8f0ccc92, 10)
    MD5_STEP(MD5_I, c, d, a, b, w[10], 0xffeff47d, 15)
    MD5_STEP(MD5_I, b, c, d, a, w[1], 0x85845dd1, 21)
    MD5_STEP(MD5_I, a, b, c, d, w[8], 0x6fa87e4f, 6)
    MD5_STEP(MD5_I, d, a, b, c, w[15], 0xfe2ce6e0, 10)
    MD5_STEP(MD5_I, c, d, a, b, w[6], 0xa3014314, 15)
    MD5_STEP(MD5_I, b, c, d, a, w[13], 0x4e0811a1, 21)
    MD5_STEP(MD5_I, a, b, c, d, w[4], 0xf7537e82, 6)
    MD5_STEP(MD5_I, d, a, b, c, w[11], 0xbd3af235, 10)
    MD5_STEP(MD5_I, c, d, a, b, w[2], 0x2ad7d2bb, 15)
    MD5_STEP(MD5_I, b, c, d, a, w[9], 0xeb86d391, 21)
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
}

/* md5(text.encode()).hexdigest() of an ASCII str (new reference: its UTF-8 is its characters), or NULL on an
 * error. */
static PyObject *md5_hex(PyObject *text) {
    const unsigned char *data = PyUnicode_1BYTE_DATA(text);
    size_t size = (size_t)PyUnicode_GET_LENGTH(text), whole = size & ~(size_t)63, rest = size - whole;
    uint32_t state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    for (size_t at = 0; at < whole; at += 64) md5_block(state, data + at);
    /* the last bytes, the 0x80 byte, zeros and the length in bits: one block, or two when rest > 55 */
    unsigned char tail[128] = {0};
    memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    size_t blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++) tail[64 * blocks - 8 + i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < blocks; i++) md5_block(state, tail + 64 * i);
    PyObject *hex = PyUnicode_New(32, 127);
    if (hex == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(hex);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        unsigned char byte = (unsigned char)(state[i / 4] >> (8 * (i % 4)));
        out[2 * i] = (Py_UCS1)digits[byte >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[byte & 15];
    }
    return hex;
}

/* The digests of the fingerprint's parts (a tuple, new reference): hashed here when every part is ASCII (its
 * UTF-8 is its characters; cheaper than looking a recent digest up in the cache, whose entries are cold), else
 * from the digest cache when every part is in it, else from fingerprint_hashes (which fills the cache). NULL on
 * an error. */
static PyObject *hashes_of(PyObject *parts) {
    Py_ssize_t n = PyList_GET_SIZE(parts);
    PyObject *hashes = PyTuple_New(n);
    if (hashes == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *part = PyList_GET_ITEM(parts, i);
        if (PyUnicode_IS_ASCII(part)) {
            PyObject *digest = md5_hex(part);
            if (digest == NULL) {
                Py_DECREF(hashes);
                return NULL;
            }
            PyTuple_SET_ITEM(hashes, i, digest);
            continue;
        }
        PyObject *digest = PyDict_GetItemWithError(hash_cache, part);
        if (digest == NULL || !PyUnicode_CheckExact(digest)) {
            Py_DECREF(hashes);
            if (PyErr_Occurred()) return NULL;
            hashes = PyObject_CallOneArg(fingerprint_hashes, parts);
            if (hashes != NULL && !PyTuple_CheckExact(hashes)) Py_CLEAR(hashes);
            return hashes;
        }
        PyTuple_SET_ITEM(hashes, i, Py_NewRef(digest));
    }
    return hashes;
}

/* The evidence_display list as a tuple of EvidenceItem (new reference), or NULL. */
static PyObject *evidence_items(PyObject *list) {
    if (!PyList_CheckExact(list)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject *items = PyTuple_New(n);
    if (items == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyDict_CheckExact(item)) goto fail;
        PyObject *args[3] = {field(item, K_NAME), field(item, K_VALUE), field(item, K_IMPORTANT)};
        if (args[0] == FAIL || !PyUnicode_CheckExact(args[0]) || args[1] == FAIL ||
            !PyUnicode_CheckExact(args[1]) || args[2] == FAIL || !PyBool_Check(args[2]))
            goto fail;
        PyObject *made = PyObject_Vectorcall(evidence_item_type, args, 3, NULL);
        if (made == NULL) goto fail;
        PyTuple_SET_ITEM(items, i, made);
    }
    return items;
fail:
    Py_DECREF(items);
    return NULL;
}

/* The event's tags as a tuple of (key, value) pairs (new reference), or NULL: a dict of str to str, or a
 * list of [str, str] lists; none gives (). */
static PyObject *tag_pairs(PyObject *tags) {
    if (tags == ABSENT) return PyTuple_New(0);
    if (PyDict_CheckExact(tags)) {
        PyObject *pairs = PyTuple_New(PyDict_GET_SIZE(tags));
        if (pairs == NULL) return NULL;
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        while (PyDict_Next(tags, &pos, &key, &value)) {
            PyObject *pair;
            if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(value) ||
                (pair = PyTuple_Pack(2, key, value)) == NULL) {
                Py_DECREF(pairs);
                return NULL;
            }
            PyTuple_SET_ITEM(pairs, i++, pair);
        }
        return pairs;
    }
    if (!PyList_CheckExact(tags)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tags);
    PyObject *pairs = PyTuple_New(n);
    if (pairs == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(tags, i), *pair;
        if (!PyList_CheckExact(item) || PyList_GET_SIZE(item) != 2 ||
            !PyUnicode_CheckExact(PyList_GET_ITEM(item, 0)) || !PyUnicode_CheckExact(PyList_GET_ITEM(item, 1)) ||
            (pair = PyTuple_Pack(2, PyList_GET_ITEM(item, 0), PyList_GET_ITEM(item, 1))) == NULL) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyTuple_SET_ITEM(pairs, i, pair);
    }
    return pairs;
}

/* model.carried_event(event) (new reference, event released), or NULL with an Exception set that Python's would
 * not catch; event itself where its JSON cannot be made (TypeError, ValueError, RecursionError, OverflowError,
 * which carried_event catches: the event crosses whole, as there). */
static PyObject *carried(PyObject *event, PyObject *const *fields) {
    PyObject *encoded = PyObject_CallOneArg(json_encode, event), *text = NULL;
    if (encoded != NULL) {
        text = PyBytes_CheckExact(encoded)
                   ? PyUnicode_DecodeUTF8(PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded), "strict")
                   : NULL;
        Py_DECREF(encoded);
    }
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError) ||
            PyErr_ExceptionMatches(PyExc_RecursionError) || PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            return event;
        }
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "_payload: json_encode gave no bytes");
        Py_DECREF(event);
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        Py_DECREF(text);
        Py_DECREF(event);
        return NULL;
    }
    /* positional, in the order of Event's fields: the trees left at their defaults, the text last */
    PyObject *args[17] = {fields[0], fields[1], fields[2], fields[3], fields[4], empty, fields[6], fields[7],
                          fields[8], fields[9], fields[10], Py_None, Py_None, Py_None, Py_None, fields[15], text};
    PyObject *result = PyObject_Vectorcall(event_type, args, 17, NULL);
    Py_DECREF(empty);
    Py_DECREF(text);
    Py_DECREF(event);
    return result;
}

/* occurrence_payload._event for a valid event (new reference), or NULL. payload_event_id is the payload's
 * event_id normalised (or NULL when it gave none). A release or environment name over its limit is removed,
 * as Python removes it, unless strict: then it is NULL (the caller must report what is removed). carry: the
 * event carried (see carried). */
static PyObject *event_of(PyObject *ev, PyObject *project_id, PyObject *payload_event_id, int strict, int carry) {
    PyObject *event_project = field(ev, K_PROJECT_ID);
    if (event_project == FAIL || !PyLong_CheckExact(event_project)) return NULL;
    int same = PyObject_RichCompareBool(event_project, project_id, Py_EQ);
    if (same != 1) return NULL;
    PyObject *raw_id = field(ev, K_EVENT_ID), *platform = field(ev, K_PLATFORM);
    PyObject *raw_timestamp = field(ev, K_TIMESTAMP), *raw_received = field(ev, K_RECEIVED);
    PyObject *release = optional_str(ev, K_RELEASE), *environment = optional_str(ev, K_ENVIRONMENT);
    PyObject *dist = optional_str(ev, K_DIST), *transaction = optional_str(ev, K_TRANSACTION);
    PyObject *server_name = optional_str(ev, K_SERVER_NAME), *trace_id = optional_str(ev, K_TRACE_ID);
    PyObject *sdk = optional_dict(ev, K_SDK), *user = optional_dict(ev, K_USER);
    PyObject *request = optional_dict(ev, K_REQUEST), *contexts = optional_dict(ev, K_CONTEXTS);
    PyObject *raw_tags = field(ev, K_TAGS);
    if (raw_id == FAIL || platform == FAIL || raw_timestamp == FAIL || raw_timestamp == ABSENT ||
        raw_received == FAIL || release == FAIL || environment == FAIL || dist == FAIL || transaction == FAIL ||
        server_name == FAIL || trace_id == FAIL || sdk == FAIL || user == FAIL || request == FAIL ||
        contexts == FAIL || raw_tags == FAIL)
        return NULL;
    if (!PyUnicode_CheckExact(platform) || PyUnicode_GET_LENGTH(platform) == 0) return NULL;
    if ((release != ABSENT && PyUnicode_GET_LENGTH(release) == 0) ||
        (environment != ABSENT && PyUnicode_GET_LENGTH(environment) == 0))
        return NULL;
    if (release != ABSENT && exceeds(release, max_release_bytes)) {
        if (strict) return NULL;
        release = ABSENT;
    }
    if (environment != ABSENT && exceeds(environment, max_environment_bytes)) {
        if (strict) return NULL;
        environment = ABSENT;
    }

    PyObject *event_id = NULL, *timestamp = NULL, *received = NULL, *tags = NULL, *result = NULL;
    if (raw_id == ABSENT) {
        if (payload_event_id == NULL) return NULL;
        event_id = Py_NewRef(payload_event_id);
    } else if ((event_id = normalised_uuid(raw_id)) == NULL) {
        return NULL;
    }
    if ((timestamp = time_micros(raw_timestamp)) == NULL) goto done;
    if (raw_received == ABSENT) {
        received = Py_NewRef(Py_None);
    } else if ((received = time_micros(raw_received)) == NULL) {
        goto done;
    }
    if ((tags = tag_pairs(raw_tags)) == NULL) goto done;
    /* positional, in the order of Event's fields */
    PyObject *args[16] = {event_id, project_id, platform, timestamp, received, tags, release, environment,
                          dist, transaction, server_name, sdk, user, request, contexts, trace_id};
    result = PyObject_Vectorcall(event_type, args, 16, NULL);
    if (result != NULL && carry) result = carried(result, args);
done:;
    PyObject *made[] = {event_id, timestamp, received, tags};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) Py_XDECREF(made[i]);
    return result;
}

/* The Occurrence of a valid payload (new reference), or NULL: not sure, or an error. strict, carry: see event_of. */
static PyObject *occurrence_of(PyObject *p, int strict, int carry) {
    PyObject *raw_id = field(p, K_ID), *project_id = field(p, K_PROJECT_ID), *raw_event_id = field(p, K_EVENT_ID);
    PyObject *parts = field(p, K_FINGERPRINT), *title = field(p, K_ISSUE_TITLE), *subtitle = field(p, K_SUBTITLE);
    PyObject *type_id = field(p, K_TYPE), *raw_detection = field(p, K_DETECTION_TIME);
    PyObject *display = field(p, K_EVIDENCE_DISPLAY), *ev = optional_dict(p, K_EVENT);
    PyObject *level = optional_str(p, K_LEVEL), *raw_culprit = optional_str(p, K_CULPRIT);
    PyObject *resource_id = optional_str(p, K_RESOURCE_ID), *assignee = optional_str(p, K_ASSIGNEE);
    PyObject *evidence_data = optional_dict(p, K_EVIDENCE_DATA), *buffered = field(p, K_IS_BUFFERED_SPANS);
    PyObject *prio = field(p, K_PRIORITY), *initial = field(p, K_INITIAL_PRIORITY);
    if (raw_id == FAIL || project_id == FAIL || raw_event_id == FAIL || parts == FAIL || title == FAIL ||
        subtitle == FAIL || type_id == FAIL || raw_detection == FAIL || display == FAIL || ev == FAIL ||
        level == FAIL || raw_culprit == FAIL || resource_id == FAIL || assignee == FAIL ||
        evidence_data == FAIL || buffered == FAIL || prio == FAIL || initial == FAIL)
        return NULL;
    /* the required fields, with their exact types (ABSENT is None, which no check below accepts) */
    if (!PyLong_CheckExact(project_id) || !PyList_CheckExact(parts) || !PyUnicode_CheckExact(title) ||
        !PyUnicode_CheckExact(subtitle) || !PyLong_CheckExact(type_id) || raw_detection == ABSENT ||
        display == ABSENT)
        return NULL;
    int overflow;
    long long project = PyLong_AsLongLongAndOverflow(project_id, &overflow);
    if (overflow || project <= 0) return NULL; /* <= 0, -1 with an error, or more than 64 bits */
    if (level != ABSENT && PyDict_Contains(log_levels, level) != 1) return NULL;
    if (buffered != ABSENT && !PyBool_Check(buffered)) return NULL;
    int p1 = priority(prio), p2 = priority(initial);
    if (p1 < 0 || p2 < 0) return NULL;
    Py_ssize_t n_parts = PyList_GET_SIZE(parts);
    if (n_parts == 0 || n_parts > max_parts) return NULL;
    for (Py_ssize_t i = 0; i < n_parts; i++) {
        PyObject *part = PyList_GET_ITEM(parts, i);
        if (!PyUnicode_CheckExact(part) || PyUnicode_GET_LENGTH(part) == 0) return NULL;
    }
    if (PyDict_Contains(group_types, type_id) != 1) return NULL;
    if (raw_event_id == ABSENT && (ev == ABSENT || field(ev, K_EVENT_ID) == ABSENT)) return NULL;

    PyObject *id = NULL, *event_id = NULL, *fingerprint = NULL, *hashes = NULL, *detection = NULL;
    PyObject *items = NULL, *culprit = NULL, *event = NULL, *result = NULL;
    if ((id = normalised_uuid(raw_id)) == NULL) goto done;
    if (raw_event_id != ABSENT && (event_id = normalised_uuid(raw_event_id)) == NULL) goto done;
    if ((detection = time_micros(raw_detection)) == NULL) goto done;
    if ((items = evidence_items(display)) == NULL) goto done;
    if (raw_culprit == ABSENT) {
        culprit = PyUnicode_New(0, 0);
    } else if (PyUnicode_GET_LENGTH(raw_culprit) > max_culprit) {
        PyObject *head = PyUnicode_Substring(raw_culprit, 0, max_culprit - 3);
        if (head != NULL) {
            culprit = PyUnicode_Concat(head, s_dots);
            Py_DECREF(head);
        }
    } else {
        culprit = Py_NewRef(raw_culprit);
    }
    if (culprit == NULL) goto done;
    if (ev != ABSENT) {
        if ((event = event_of(ev, project_id, event_id, strict, carry)) == NULL) goto done;
        PyObject *decoded_id = PyObject_GetAttr(event, keys[K_EVENT_ID]);
        if (decoded_id == NULL) goto done;
        if (event_id == NULL) {
            event_id = decoded_id;
        } else {
            int same = PyUnicode_Compare(event_id, decoded_id);
            Py_DECREF(decoded_id);
            if (same != 0) goto done; /* event_id_mismatch (or an error) */
        }
    }
    if ((fingerprint = PyList_AsTuple(parts)) == NULL || (hashes = hashes_of(parts)) == NULL) goto done;
    /* positional, in the order of Occurrence's fields */
    PyObject *args[18] = {id, project_id, event_id, fingerprint, hashes, title, subtitle, type_id, detection, items,
                          level == ABSENT ? s_info : level, culprit, resource_id, evidence_data,
                          p1 ? prio : initial, /* priority wins over initial_issue_priority */
                          assignee, buffered == ABSENT ? Py_False : buffered, event == NULL ? Py_None : event};
    result = PyObject_Vectorcall(occurrence_type, args, 18, NULL);
done:;
    PyObject *made[] = {id, event_id, fingerprint, hashes, detection, items, culprit, event};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) Py_XDECREF(made[i]);
    return result;
}

/* After a function found no answer: -1 when a BaseException other than an Exception is pending (it must
 * propagate), else 0, with any Exception from what it called cleared (the Python path meets it again). */
static int no_answer(void) {
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        PyErr_Clear();
    }
    return 0;
}

static PyObject *valid_occurrence(PyObject *module, PyObject *payload) {
    if (occurrence_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_payload.valid_occurrence: configure was not called");
        return NULL;
    }
    if (!PyDict_CheckExact(payload)) Py_RETURN_NONE;
    PyObject *result = occurrence_of(payload, 0, 0);
    if (result != NULL || no_answer() < 0) return result;
    Py_RETURN_NONE;
}

/* Takes the parser's key objects of d (its keys equal to one of ours) as lookup_keys. 0, or -1 on an error. */
static int learn_dict(PyObject *d) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(d, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) continue;
        PyObject *index = PyDict_GetItemWithError(key_index, key);
        if (index == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (i < 0 || i >= K_COUNT) return -1;
        if (lookup_keys[i] != key) Py_SETREF(lookup_keys[i], Py_NewRef(key));
    }
    return 0;
}

/* learn_dict over a parsed payload, its event and its first evidence item: the dicts field() reads. */
static int learn_keys(PyObject *payload) {
    if (learn_dict(payload) < 0) return -1;
    PyObject *ev = PyDict_GetItemWithError(payload, keys[K_EVENT]);
    if (ev == NULL ? PyErr_Occurred() != NULL : PyDict_CheckExact(ev) && learn_dict(ev) < 0) return -1;
    PyObject *display = PyDict_GetItemWithError(payload, keys[K_EVIDENCE_DISPLAY]);
    if (display == NULL) return PyErr_Occurred() ? -1 : 0;
    if (PyList_CheckExact(display) && PyList_GET_SIZE(display) > 0 && PyDict_CheckExact(PyList_GET_ITEM(display, 0)))
        return learn_dict(PyList_GET_ITEM(display, 0));
    return 0;
}

/* The number of '{' and '[' bytes (0x7B, 0x5B: the same but for bit 0x20). With SSE2 (every x86-64), sixteen
 * bytes at a time: each byte lane of `lanes` counts its matches (a match compares to 0xFF, -1, which is
 * subtracted), summed (_mm_sad_epu8) before any lane can pass 255. Else eight bytes at a time: a byte matches
 * when (byte | 0x20) ^ 0x7B is zero, and the zero bytes of a word are found without carries between bytes
 * (the high bit of ((y & 0x7F..) + 0x7F..) | y is set exactly for the nonzero bytes of y). */
static Py_ssize_t opening_brackets(const char *bytes, Py_ssize_t size) {
    Py_ssize_t count = 0, i = 0;
#if defined(__SSE2__)
    const __m128i fold = _mm_set1_epi8(0x20), brace = _mm_set1_epi8(0x7B), zero = _mm_setzero_si128();
    while (i + 16 <= size) {
        Py_ssize_t end = size - i > 16 * 255 ? i + 16 * 255 : size;
        __m128i lanes = zero;
        for (; i + 16 <= end; i += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(bytes + i));
            lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(_mm_or_si128(block, fold), brace));
        }
        __m128i sums = _mm_sad_epu8(lanes, zero);
        count += _mm_cvtsi128_si32(sums) + _mm_extract_epi16(sums, 4);
    }
#else
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL, high = 0x8080808080808080ULL;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, bytes + i, 8);
        uint64_t y = (word | 0x2020202020202020ULL) ^ 0x7B7B7B7B7B7B7B7BULL;
        uint64_t zero = ~(((y & low7) + low7) | y) & high;
        count += (Py_ssize_t)(((zero >> 7) * 0x0101010101010101ULL) >> 56);
    }
#endif
    for (; i < size; i++) count += (bytes[i] | 0x20) == 0x7B;
    return count;
}

/* decode_json(raw, max_bytes, carry) -> Message | dict | None: decode.decode's Message for a RawMessage holding
 * a plainly valid JSON occurrence (content type JSON or none, at most max_bytes and small enough that no stored
 * document can exceed Spanner's limit, fewer opening brackets than the depth limit, nothing removed from its
 * event); with carry (true or false, as decode's), its event carried. When it parsed the payload but gives no Message it returns the parsed dict, which decode then checks
 * itself without parsing it again (the envelope's checks passed: the payload's Checks are SHALLOW); None when
 * it did not parse it. */
static PyObject *decode_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (message_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_payload.decode_json: configure was not called");
        return NULL;
    }
    if (nargs != 3 || !PyLong_CheckExact(args[1]) || !PyBool_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_payload.decode_json(raw, max_bytes, carry)");
        return NULL;
    }
    int carry = args[2] == Py_True;
    PyObject *raw = args[0], *data = NULL, *attributes = NULL, *payload = NULL, *occurrence = NULL;
    PyObject *message_id = NULL, *message_time = NULL, *result = NULL;
    long long max_bytes = PyLong_AsLongLong(args[1]);
    if (max_bytes == -1 && PyErr_Occurred()) goto done;
    if ((data = PyObject_GetAttr(raw, a_data)) == NULL || !PyBytes_CheckExact(data)) goto done;
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size > max_bytes || size > measure_above) goto done;
    if ((attributes = PyObject_GetAttr(raw, a_attributes)) == NULL || !PyDict_CheckExact(attributes)) goto done;
    PyObject *content_type = PyDict_GetItemWithError(attributes, s_content_type);
    if (content_type == NULL ? PyErr_Occurred() != NULL
                             : content_type != Py_None && (!PyUnicode_CheckExact(content_type) ||
                                                           PyUnicode_Compare(content_type, s_json) != 0))
        goto done;
    if (opening_brackets(PyBytes_AS_STRING(data), size) > max_depth) goto done;
    if ((payload = PyObject_CallOneArg(json_loads, data)) == NULL || !PyDict_CheckExact(payload)) goto done;
    result = payload; /* from here on, no Message gives the parsed payload */
    if (--learn_countdown == 0) {
        learn_countdown = LEARN_EVERY;
        if (learn_keys(payload) < 0) goto done;
    }
    PyObject *payload_type = PyDict_GetItemWithError(payload, s_payload_type);
    if (payload_type == NULL ? PyErr_Occurred() != NULL
                             : payload_type != Py_None && (!PyUnicode_CheckExact(payload_type) ||
                                                           PyUnicode_Compare(payload_type, s_occurrence) != 0))
        goto done;
    if ((occurrence = occurrence_of(payload, 1, carry)) == NULL || (message_id = PyObject_GetAttr(raw, a_message_id)) == NULL ||
        (message_time = PyObject_GetAttr(raw, a_message_time)) == NULL)
        goto done;
    PyObject *fields[5] = {message_id, message_time, occurrence, data, attributes};
    PyObject *message = PyObject_Vectorcall(message_type, fields, 5, NULL);
    if (message != NULL) result = message;
done:;
    if (result == NULL || result == payload) { /* not sure, or an Exception: decode decides */
        if (no_answer() < 0) result = NULL;
        else if (result == NULL) result = Py_NewRef(Py_None);
        else Py_INCREF(result);
    }
    PyObject *made[] = {data, attributes, payload, occurrence, message_id, message_time};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) Py_XDECREF(made[i]);
    return result;
}

/* Untracking. A JSON tree (dicts, lists and tuples of str, int, float, bool, None) cannot be part of a
 * reference cycle, and the model's structs hold theirs unchanged for good (transforms/core/model.py). CPython
 * tracks such containers anyway (a tuple or list always, a dict once it holds a container): each collection
 * of the youngest generation then visits every one still alive, and the long-lived ones (events cached or
 * kept for their writes) again in every older collection. Untracked, they are never visited; a dict is
 * tracked again by CPython if a container is ever put in it. */

/* The most levels untrack_tree descends: deeper containers (and so those above them) stay tracked. */
#define UNTRACK_DEPTH 64
/* The most tracked containers one untrack_fields call walks: past them, those left (and those above them) stay
 * tracked. A JSON tree is walked once (its containers untracked, never walked again), but a container that
 * stays tracked is walked again from every path to it: without a bound, a list holding itself twice took
 * 2**UNTRACK_DEPTH steps. */
#define UNTRACK_VISITS (1 << 20)

static int untrack_tree(PyObject *container, int depth, Py_ssize_t *visits);

/* 1 when value cannot reach a tracked object: it is not of a GC type (str, int, float, None, bool, bytes, a
 * gc=False struct, whose contents the collector never follows anyway), or it is a JSON tree untrack_tree
 * untracks. */
static inline int untracked(PyObject *value, int depth, Py_ssize_t *visits) {
    return !PyType_IS_GC(Py_TYPE(value)) || untrack_tree(value, depth, visits);
}

/* For an exact dict, list or tuple: 1 when it is untracked, having made sure its keys and items all are
 * untracked() (they first); 0 when one is not, or for any other container (a subclass, a set, an object),
 * which stays tracked, and so do the containers that hold it. A container found untracked is not walked: a
 * tuple or a dict CPython left untracked holds no container it tracks (it tracks a dict when one is put in),
 * and one untracked here held none. Never fails. */
static int untrack_tree(PyObject *container, int depth, Py_ssize_t *visits) {
    PyTypeObject *type = Py_TYPE(container);
    if (type != &PyTuple_Type && type != &PyDict_Type && type != &PyList_Type) return 0;
    if (!PyObject_GC_IsTracked(container)) return 1;
    if (depth == 0 || *visits <= 0) return 0;
    (*visits)--;
    int all = 1;
    if (type == &PyTuple_Type) {
        for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(container); i < n; i++)
            all &= untracked(PyTuple_GET_ITEM(container, i), depth - 1, visits);
    } else if (type == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(container, &pos, &key, &item))
            all &= untracked(key, depth - 1, visits) & untracked(item, depth - 1, visits);
    } else {
        for (Py_ssize_t i = 0, n = PyList_GET_SIZE(container); i < n; i++)
            all &= untracked(PyList_GET_ITEM(container, i), depth - 1, visits);
    }
    if (all) PyObject_GC_UnTrack(container);
    return all;
}

/* untrack_fields(struct) -> None: untrack_tree on each field of a struct (a msgspec Struct's fields are its
 * type's slots); a model struct's __post_init__, so that it runs wherever one is built or decoded. */
static PyObject *untrack_fields(PyObject *module, PyObject *obj) {
    Py_ssize_t visits = UNTRACK_VISITS;
    for (PyMemberDef *member = Py_TYPE(obj)->tp_members; member != NULL && member->name != NULL; member++) {
        if (member->type != T_OBJECT_EX) continue;
        PyObject *value = *(PyObject **)((char *)obj + member->offset);
        if (value != NULL) untracked(value, UNTRACK_DEPTH, &visits);
    }
    Py_RETURN_NONE;
}

static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *o, *e, *item, *message, *types, *levels, *cache, *hashes, *parse, *loads, *encode;
    long long parts, release, environment, culprit, lo, hi, depth, above;
    if (!PyArg_ParseTuple(args, "OOOOO!O!O!OOOOLLLLLLLL:configure", &o, &e, &item, &message, &PyDict_Type, &types,
                          &PyDict_Type, &levels, &PyDict_Type, &cache, &hashes, &parse, &loads, &encode, &parts,
                          &release, &environment, &culprit, &lo, &hi, &depth, &above))
        return NULL;
    if (culprit < 3 || lo > hi || lo < -(1LL << 40) || hi > (1LL << 40)) {
        PyErr_SetString(PyExc_ValueError, "_payload.configure: limits out of range");
        return NULL;
    }
    PyObject **refs[] = {&occurrence_type, &event_type, &evidence_item_type, &message_type, &group_types,
                         &log_levels, &hash_cache, &fingerprint_hashes, &parse_time, &json_loads, &json_encode};
    PyObject *values[] = {o, e, item, message, types, levels, cache, hashes, parse, loads, encode};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) Py_XSETREF(*refs[i], Py_NewRef(values[i]));
    max_parts = parts, max_release_bytes = release, max_environment_bytes = environment, max_culprit = culprit;
    min_seconds = lo, max_seconds = hi, max_depth = depth, measure_above = above;
    min_micros = lo * 1000000;
    max_micros = (hi + 1) * 1000000 - 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"valid_occurrence", valid_occurrence, METH_O,
     "valid_occurrence(payload) -> Occurrence | None: the occurrence of a plainly valid payload, else None."},
    {"decode_json", (PyCFunction)(void (*)(void))decode_json, METH_FASTCALL,
     "decode_json(raw, max_bytes, carry) -> Message | dict | None: see the source."},
    {"untrack_fields", untrack_fields, METH_O,
     "untrack_fields(struct) -> None: untrack the JSON trees its fields hold (see the source)."},
    {"configure", configure, METH_VARARGS,
     "configure(Occurrence, Event, EvidenceItem, Message, GROUP_TYPES, LOG_LEVELS, hash_cache, "
     "fingerprint_hashes, parse_time, json_loads, json_encode, max_parts, max_release_bytes, "
     "max_environment_bytes, max_culprit, min_seconds, max_seconds, max_depth, measure_above)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_payload", "Occurrence payloads decoded in C (see the source).", -1, methods,
};

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 ""
#endif

/* SOURCE_SHA256: the hash of this file the build was made from (setup.py), checked by occurrence_payload. */
PyMODINIT_FUNC PyInit__payload(void) {
    if (key_index == NULL && (key_index = PyDict_New()) == NULL) return NULL;
    for (int i = 0; i < K_COUNT; i++) {
        if (keys[i] == NULL && (keys[i] = PyUnicode_InternFromString(key_names[i])) == NULL) return NULL;
        if (lookup_keys[i] == NULL) lookup_keys[i] = Py_NewRef(keys[i]);
        PyObject *index = PyLong_FromLong(i);
        if (index == NULL || PyDict_SetItem(key_index, keys[i], index) < 0) {
            Py_XDECREF(index);
            return NULL;
        }
        Py_DECREF(index);
    }
    PyObject **names[] = {&s_info, &s_dots, &s_content_type, &s_json, &s_payload_type, &s_occurrence, &a_data,
                          &a_attributes, &a_message_id, &a_message_time};
    const char *texts[] = {"info", "...", "content_type", "application/json", "payload_type", "occurrence", "data",
                           "attributes", "message_id", "message_time"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (*names[i] == NULL && (*names[i] = PyUnicode_InternFromString(texts[i])) == NULL) return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
