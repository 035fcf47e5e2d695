/* The values of a Spanner Mutation.Write, encoded straight to protobuf wire bytes, and their times' text.
 *
 * encode_values(rows) -> bytes: the bytes of ``Write.values`` (field 3, one ListValue a row) for rows of
 * values in wire form, the same bytes upb writes for the message ``spanner_rows.write_mutation_python``
 * builds cell by cell; the caller parses them once into the Write (``MergeFromString``). Every decision
 * follows that Python function's: str -> string_value, None -> null_value, bool -> bool_value, int ->
 * string_value of str(int), float -> number_value, list/tuple -> list_value (recursively), anything else a
 * TypeError with its message. A str that UTF-8 cannot encode (a lone surrogate) raises the same
 * UnicodeEncodeError as the assignment upb does. rfc3339(micros): ``to_rfc3339``'s text (below).
 * Optional: without a compiler the Python path runs (spanner_rows).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The bytes being written. One scratch buffer is kept between calls and reused (the first call of a
 * process that finds it free takes it): a buffer allocated and freed per call made the allocator give its
 * pages back and fault them in again, which cost more than the encoding (up to 0.5 µs a cell of 1 KB). A
 * call made while it is taken (another thread, when a value's __str__ let go of the GIL) uses its own. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    /* encode_table's: a value whose encoding would run Python code (an int or list subclass, an iterable
     * other than an exact list or tuple, a value of no wire form, whose error message needs its repr) is
     * not encoded: -2 with no error set, so that the caller can hand the rows to the Python path. */
    int strict;
} Buf;

static Buf scratch = {NULL, 0, 0, 0};
static int scratch_taken = 0;
/* A scratch buffer grown over this by a huge write is given back rather than kept. */
#define SCRATCH_KEPT (8 << 20)

/* The scratch buffer for a call (emptied, ``strict`` as asked), or a buffer of its own when it is taken;
 * ``*own`` says which, for ``scratch_give_back``. */
static Buf scratch_take(int strict, int *own) {
    Buf b = {NULL, 0, 0, strict};
    *own = scratch_taken;
    if (!*own) {
        scratch_taken = 1;
        b = scratch;
        b.len = 0;
        b.strict = strict;
    }
    return b;
}

/* Ends a call's use of ``b``: freed if it was its own or grew past SCRATCH_KEPT, else kept as the scratch. */
static void scratch_give_back(Buf b, int own) {
    if (own || b.cap > SCRATCH_KEPT) {
        PyMem_Free(b.data);
        b.data = NULL;
        b.cap = 0;
    }
    if (!own) {
        b.strict = 0;
        scratch = b;
        scratch_taken = 0;
    }
}

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap * 2 : 65536;
    if (cap < b->len + extra) cap = b->len + extra;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline void put_varint(Buf *b, uint64_t v) {
    while (v >= 0x80) {
        b->data[b->len++] = (char)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (char)v;
}

/* A length-delimited field of rows and lists, whose length is known only once written: its tag, then the
 * length as a varint of a fixed 5 bytes (zero-padded, which protobuf parsers read as the same number;
 * upb re-encodes it in the shortest form when serialising, so the mutation's bytes are unchanged). */
#define LENGTH_WIDTH 5

static Py_ssize_t open_field(Buf *b, uint8_t tag) {
    if (buf_reserve(b, 1 + LENGTH_WIDTH) < 0) return -1;
    b->data[b->len++] = (char)tag;
    Py_ssize_t start = b->len;
    b->len += LENGTH_WIDTH;
    return start;
}

static int close_field(Buf *b, Py_ssize_t start) {
    uint64_t size = (uint64_t)(b->len - start - LENGTH_WIDTH);
    if (size >> (7 * LENGTH_WIDTH)) {
        PyErr_SetString(PyExc_OverflowError, "a row of a Spanner mutation over 32 GiB");
        return -1;
    }
    char *at = b->data + start;
    for (int i = 0; i < LENGTH_WIDTH - 1; i++) {
        at[i] = (char)((size & 0x7f) | 0x80);
        size >>= 7;
    }
    at[LENGTH_WIDTH - 1] = (char)size;
    return 0;
}

static inline int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Value's fields: null_value 1 (varint), number_value 2 (fixed64), string_value 3, bool_value 4,
 * list_value 6; ListValue.values 1; Write.values 3. */
#define TAG_NULL 0x08
#define TAG_NUMBER 0x11
#define TAG_STRING 0x1a
#define TAG_BOOL 0x20
#define TAG_LIST 0x32
#define TAG_ITEM 0x0a
#define TAG_WRITE_VALUES 0x1a

/* An item (a ListValue.values entry) whose Value is string_value ``data``. */
static int put_string_item(Buf *b, const char *data, Py_ssize_t size) {
    uint64_t value_size = 1 + (uint64_t)varint_size((uint64_t)size) + (uint64_t)size;
    if (buf_reserve(b, 2 + 2 * 10 + size) < 0) return -1;
    b->data[b->len++] = TAG_ITEM;
    put_varint(b, value_size);
    b->data[b->len++] = TAG_STRING;
    put_varint(b, (uint64_t)size);
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += size;
    return 0;
}

static int put_unicode_item(Buf *b, PyObject *text) {
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(text, &size);
    if (data == NULL) return -1;
    return put_string_item(b, data, size);
}

/* str(n) of an int that fits a long long, as the digits Python writes. */
static int put_int_item(Buf *b, long long n) {
    char digits[24];
    char *end = digits + sizeof digits, *at = end;
    unsigned long long magnitude = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do {
        *--at = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (n < 0) *--at = '-';
    return put_string_item(b, at, end - at);
}

static int put_items(Buf *b, PyObject *items);

/* One item of a ListValue, its Value decided as ``spanner_rows._set_value`` decides it. */
static int put_item(Buf *b, PyObject *value) {
    if (PyUnicode_Check(value)) return put_unicode_item(b, value);
    if (value == Py_None || PyBool_Check(value)) {
        if (buf_reserve(b, 4) < 0) return -1;
        b->data[b->len++] = TAG_ITEM;
        b->data[b->len++] = 2;
        b->data[b->len++] = value == Py_None ? TAG_NULL : TAG_BOOL;
        b->data[b->len++] = value == Py_True ? 1 : 0;
        return 0;
    }
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            if (n == -1 && PyErr_Occurred()) return -1;
            return put_int_item(b, n);
        }
    }
    if (b->strict && !PyLong_CheckExact(value) && (PyLong_Check(value) || !(PyFloat_Check(value) || PyList_CheckExact(value) || PyTuple_CheckExact(value))))
        return -2;
    if (PyLong_Check(value)) {
        /* Huge ints and int subclasses: str(value), as the Python path (a subclass's __str__ included). */
        PyObject *text = PyObject_Str(value);
        if (text == NULL) return -1;
        int result = put_unicode_item(b, text);
        Py_DECREF(text);
        return result;
    }
    if (PyFloat_Check(value)) {
        double number = PyFloat_AS_DOUBLE(value);
        uint64_t bits;
        memcpy(&bits, &number, sizeof bits);
        if (buf_reserve(b, 11) < 0) return -1;
        b->data[b->len++] = TAG_ITEM;
        b->data[b->len++] = 9;
        b->data[b->len++] = TAG_NUMBER;
        for (int i = 0; i < 8; i++) b->data[b->len++] = (char)(bits >> (8 * i));
        return 0;
    }
    if (PyList_Check(value) || PyTuple_Check(value)) {
        /* A list inside itself, or nested past the recursion limit, raises RecursionError as _set_value's
         * recursion does, rather than overflowing the C stack. */
        if (Py_EnterRecursiveCall(" while encoding a Spanner list value")) return -1;
        Py_ssize_t item = open_field(b, TAG_ITEM), list = item < 0 ? -1 : open_field(b, TAG_LIST);
        int put = list < 0 ? -1 : put_items(b, value);
        int failed = put < 0 ? put : (close_field(b, list) < 0 || close_field(b, item) < 0) ? -1 : 0;
        Py_LeaveRecursiveCall();
        return failed;
    }
    PyObject *name = PyType_GetName(Py_TYPE(value));
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "no Spanner wire form for %U: %R", name, value);
        Py_DECREF(name);
    }
    return -1;
}

/* The ListValue content of ``items``: one item each, iterated as ``for item in items``. */
static int put_items(Buf *b, PyObject *items) {
    if (PyList_CheckExact(items) || PyTuple_CheckExact(items)) {
        /* A list may change under us only through a value's __str__: its length is read afresh each time. */
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(items, i);
            Py_INCREF(item);
            int result = put_item(b, item);
            Py_DECREF(item);
            if (result < 0) return result;
        }
        return 0;
    }
    if (b->strict) return -2;
    PyObject *iterator = PyObject_GetIter(items);
    if (iterator == NULL) return -1;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        int result = put_item(b, item);
        Py_DECREF(item);
        if (result < 0) {
            Py_DECREF(iterator);
            return -1;
        }
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *encode_values(PyObject *module, PyObject *rows) {
    int own;
    Buf b = scratch_take(0, &own);
    PyObject *encoded = NULL;
    PyObject *iterator = PyObject_GetIter(rows);
    if (iterator != NULL) {
        PyObject *row;
        int failed = 0;
        while (!failed && (row = PyIter_Next(iterator)) != NULL) {
            Py_ssize_t start = open_field(&b, TAG_WRITE_VALUES);
            failed = start < 0 || put_items(&b, row) < 0 || close_field(&b, start) < 0;
            Py_DECREF(row);
        }
        Py_DECREF(iterator);
        if (!failed && !PyErr_Occurred()) encoded = PyBytes_FromStringAndSize(b.data, b.len);
    }
    scratch_give_back(b, own);
    return encoded;
}

/* --- A table's rows grouped and encoded (commit_plan.mutation_groups) -------------------------------------
 * encode_table(table, planned, new, updated, groups) -> (order, not_updated, cells) | None: ``_planning.
 * group_rows``' grouping of one table's rows (row key -> (columns, values)) into mutations (kind, table,
 * columns, rows) by kind and columns object in the order of their first row, each group's rows given as the
 * bytes ``encode_values`` makes of them (a Write's values are repeated: a group's bytes are its rows' bytes in
 * order), in the same pass over the rows; ``not_updated``: the row keys not in ``updated``; ``cells``: the
 * groups' columns times rows. None, before anything is built, when a row key is not an exact tuple of exact
 * str and int, a row not an exact (columns tuple, values tuple or list), more than MAX_GROUPS groups form, or
 * a value would run Python code to be encoded (``Buf.strict``): the caller groups and encodes those rows
 * itself (a value with no wire form included: the Python path raises its error). Raises what ``encode_values``
 * raises for a text it cannot encode (a lone surrogate), an int too long for str() or a list inside itself. */

#define MAX_GROUPS 32
static PyObject *kind_names[3]; /* "insert", "update", "insert_or_update" */
static PyObject *type_column = NULL; /* "Type" */

static inline int plain(PyObject *o) { return PyUnicode_CheckExact(o) || PyLong_CheckExact(o); }

static int plain_tuple(PyObject *t) {
    if (!PyTuple_CheckExact(t)) return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++)
        if (!plain(PyTuple_GET_ITEM(t, i))) return 0;
    return 1;
}

typedef struct {
    int group;
    Py_ssize_t start, end;
} Segment;

static PyObject *encode_table(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "encode_table(table, planned, new, updated, groups)");
        return NULL;
    }
    PyObject *table = args[0], *planned = args[1], *new = args[2], *updated = args[3];
    int groups = args[4] == Py_True;
    if (!PyBool_Check(args[4]) || !PyDict_CheckExact(planned) ||
        !(PyAnySet_CheckExact(new) || (PyTuple_CheckExact(new) && PyTuple_GET_SIZE(new) == 0)) ||
        !(PyAnySet_CheckExact(updated) || (PyTuple_CheckExact(updated) && PyTuple_GET_SIZE(updated) == 0)))
        Py_RETURN_NONE;
    int check_new = PyAnySet_Check(new) && PySet_GET_SIZE(new) > 0;
    int check_updated = PyAnySet_Check(updated) && PySet_GET_SIZE(updated) > 0;
    int kinds[MAX_GROUPS];
    PyObject *columns_of[MAX_GROUPS];
    Py_ssize_t sizes[MAX_GROUPS], rows_of[MAX_GROUPS];
    int count = 0;
    Py_ssize_t not_updated = 0, pos = 0, n_segments = 0, segments_cap = 0;
    Segment *segments = NULL;
    PyObject *row_key, *row, *order = NULL, *result = NULL;
    PyObject *typed_columns = NULL; /* the last columns object looked at, and whether it has "Type" */
    int typed = 0;
    int own;
    Buf b = scratch_take(1, &own);
    /* The dict cannot change under this loop: set look-ups of plain tuples and the strict encoding run no
     * Python code. */
    while (PyDict_Next(planned, &pos, &row_key, &row)) {
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 2 || !plain_tuple(row_key)) goto unsure;
        PyObject *columns = PyTuple_GET_ITEM(row, 0), *values = PyTuple_GET_ITEM(row, 1);
        if (!PyTuple_CheckExact(columns) || !(PyTuple_CheckExact(values) || PyList_CheckExact(values))) goto unsure;
        int kind = 2, in_new = 0, in_updated = 0;
        if (check_new && (in_new = PySet_Contains(new, row_key)) < 0) goto fail;
        if (check_updated && (in_updated = PySet_Contains(updated, row_key)) < 0) goto fail;
        if (!in_updated) not_updated++;
        if (in_new) {
            kind = 0;
        } else if (in_updated) {
            kind = 1;
        } else if (groups) {
            if (columns != typed_columns) {
                if (!plain_tuple(columns)) goto unsure;
                typed = PySequence_Contains(columns, type_column);
                if (typed < 0) goto fail;
                typed_columns = columns;
            }
            if (!typed) kind = 1; /* a Groups row written without its Type is a state-only update */
        }
        int g = count - 1;
        while (g >= 0 && !(kinds[g] == kind && columns_of[g] == columns)) g--;
        if (g < 0) {
            if (count == MAX_GROUPS) goto unsure;
            kinds[count] = kind;
            columns_of[count] = columns;
            sizes[count] = 0;
            rows_of[count] = 0;
            g = count++;
        }
        Py_ssize_t start = open_field(&b, TAG_WRITE_VALUES);
        if (start < 0) goto fail;
        int put = put_items(&b, values);
        if (put == -2) goto unsure;
        if (put < 0 || close_field(&b, start) < 0) goto fail;
        if (n_segments == segments_cap) {
            Py_ssize_t cap = segments_cap ? 2 * segments_cap : 256;
            Segment *grown = PyMem_Realloc(segments, (size_t)cap * sizeof(Segment));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            segments = grown;
            segments_cap = cap;
        }
        /* the row's bytes begin at its field's tag, one byte before ``start`` */
        segments[n_segments++] = (Segment){g, start - 1, b.len};
        sizes[g] += b.len - (start - 1);
        rows_of[g]++;
    }
    order = PyList_New(count);
    if (order == NULL) goto fail;
    Py_ssize_t cells = 0;
    for (int g = 0; g < count; g++) {
        PyObject *data;
        if (count == 1) {
            data = PyBytes_FromStringAndSize(b.data, b.len);
        } else {
            data = PyBytes_FromStringAndSize(NULL, sizes[g]);
            if (data != NULL) {
                char *at = PyBytes_AS_STRING(data);
                for (Py_ssize_t i = 0; i < n_segments; i++)
                    if (segments[i].group == g) {
                        memcpy(at, b.data + segments[i].start, (size_t)(segments[i].end - segments[i].start));
                        at += segments[i].end - segments[i].start;
                    }
            }
        }
        if (data == NULL) goto fail;
        PyObject *mutation = PyTuple_Pack(4, kind_names[kinds[g]], table, columns_of[g], data);
        Py_DECREF(data);
        if (mutation == NULL) goto fail;
        PyList_SET_ITEM(order, g, mutation);
        cells += PyTuple_GET_SIZE(columns_of[g]) * rows_of[g];
    }
    result = Py_BuildValue("(Nnn)", order, not_updated, cells);
    order = NULL;
    goto done;
unsure:
    result = Py_NewRef(Py_None);
    goto done;
fail:
    result = NULL;
done:
    Py_XDECREF(order);
    PyMem_Free(segments);
    scratch_give_back(b, own);
    return result;
}

/* --- Times ------------------------------------------------------------------------------------------
 * rfc3339(micros) -> str: ``transforms.core.model.to_rfc3339`` ("2026-05-28T20:26:42.123456Z", the fraction
 * only when non-zero) for an int of microseconds since the epoch in years 1 to 9999; anything else (another
 * type, an int subclass, a time outside those years) is handed to that function (set_rfc3339_fallback), so
 * that what it returns or raises is what this returns or raises. */

static PyObject *rfc3339_fallback = NULL;

static PyObject *set_rfc3339_fallback(PyObject *module, PyObject *function) {
    Py_INCREF(function);
    Py_XSETREF(rfc3339_fallback, function);
    Py_RETURN_NONE;
}

static inline long long floor_div(long long a, long long b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

static inline void put_digits(char *at, long long value, int width) {
    for (int i = width - 1; i >= 0; i--) {
        at[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

static PyObject *rfc3339(PyObject *module, PyObject *value) {
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long micros = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (micros == -1 && PyErr_Occurred()) return NULL;
        /* |micros| < 2^62: the arithmetic below cannot overflow (far beyond year 9999 either way). */
        if (!overflow && micros > -(1LL << 62) && micros < (1LL << 62)) {
            long long seconds = floor_div(micros, 1000000), fraction = micros - seconds * 1000000;
            long long days = floor_div(seconds, 86400), of_day = seconds - days * 86400;
            /* The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's civil_from_days). */
            long long z = days + 719468;
            long long era = floor_div(z, 146097);
            long long of_era = z - era * 146097;
            long long year_of_era = (of_era - of_era / 1460 + of_era / 36524 - of_era / 146096) / 365;
            long long of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
            long long shifted_month = (5 * of_year + 2) / 153;
            long long day = of_year - (153 * shifted_month + 2) / 5 + 1;
            long long month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
            long long year = year_of_era + era * 400 + (month <= 2);
            if (year >= 1 && year <= 9999) {
                Py_ssize_t size = fraction ? 27 : 20;
                PyObject *text = PyUnicode_New(size, 127);
                if (text == NULL) return NULL;
                char *at = (char *)PyUnicode_DATA(text);
                put_digits(at, year, 4);
                at[4] = '-';
                put_digits(at + 5, month, 2);
                at[7] = '-';
                put_digits(at + 8, day, 2);
                at[10] = 'T';
                put_digits(at + 11, of_day / 3600, 2);
                at[13] = ':';
                put_digits(at + 14, of_day / 60 % 60, 2);
                at[16] = ':';
                put_digits(at + 17, of_day % 60, 2);
                if (fraction) {
                    at[19] = '.';
                    put_digits(at + 20, fraction, 6);
                }
                at[size - 1] = 'Z';
                return text;
            }
        }
    }
    if (rfc3339_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_mutations.rfc3339: set_rfc3339_fallback was not called");
        return NULL;
    }
    return PyObject_CallOneArg(rfc3339_fallback, value);
}

static PyMethodDef methods[] = {
    {"encode_values", encode_values, METH_O,
     "encode_values(rows) -> bytes: the wire bytes of Mutation.Write.values for rows in wire form."},
    {"encode_table", (PyCFunction)(void (*)(void))encode_table, METH_FASTCALL,
     "encode_table(table, planned, new, updated, groups) -> (order, not_updated, cells) | None: a table's "
     "mutations, their rows encoded."},
    {"rfc3339", rfc3339, METH_O, "rfc3339(micros) -> str: transforms.core.model.to_rfc3339's text."},
    {"set_rfc3339_fallback", set_rfc3339_fallback, METH_O,
     "set_rfc3339_fallback(function): what rfc3339 calls for a value it does not format itself."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mutations", "Spanner mutation values encoded in C (see the source).", -1, methods,
};

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 ""
#endif

/* SOURCE_SHA256: the hash of this file the build was made from (setup.py), checked by spanner_rows. */
PyMODINIT_FUNC PyInit__mutations(void) {
    static const char *names[3] = {"insert", "update", "insert_or_update"};
    for (int i = 0; i < 3; i++)
        if (kind_names[i] == NULL && (kind_names[i] = PyUnicode_InternFromString(names[i])) == NULL) return NULL;
    if (type_column == NULL && (type_column = PyUnicode_InternFromString("Type")) == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
