/* The loops of a commit's planning that walk plain containers, in C: the tag writer's counting, marking, value rows
 * and lookups of rows known stored (tag_writer.py), writes' mutation estimates (spanner_writer.py) and the
 * grouping of rows into mutations (commit_plan.py).
 *
 * Each does the usual case (exact str and int keys and values, rows in the shapes the Python makes, numbers
 * within 64 bits) and answers None ("not sure") for anything else, having changed nothing (count_tags stops
 * before a tag it cannot count, mark_tags before an item it cannot mark; write_values checks every row first): the Python loop then decides, so an
 * answer is always the Python's and an unusual input gets the Python's own result or error. Optional:
 * without a compiler the Python loops run (one INFO line of spanner_rows says which path runs).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* Row states of tag_writer (_STORED, _COUNTED, _MOVED, _NEW); tag_writer checks they are its own. */
enum { STORED = 0, COUNTED = 1, MOVED = 2, NEW = 3 };

/* configure(): tag_writer's constants, set once at its import. */
static PyObject *text_key = NULL;   /* TEXT_KEY: its values are capped at TERMS_PER_GROUP */
static PyObject *search_prefix = NULL; /* SEARCH_PREFIX: the start of a key of search-only values */
static PyObject *value_columns[3];  /* TAG_VALUE_COLUMNS, TAG_VALUE_COUNT_COLUMNS, TAG_VALUE_UPDATE_COLUMNS */
static PyObject *rfc3339 = NULL;    /* to_rfc3339 (or the C one of _mutations) */

/* A prefetch of the memory at ``address`` (a hint, no effect on results; nothing where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch((const void *)(address))
#else
#define PREFETCH(address) ((void)0)
#endif

/* An exact str or exact int: their hash and equality run no Python code. */
static inline int plain(PyObject *o) { return PyUnicode_CheckExact(o) || PyLong_CheckExact(o); }

/* A new tuple ``(*head, *item)`` when ``pairs`` (``item`` an exact 2-tuple), else ``(*head, item)``; NULL with
 * no error set when ``item`` is not of that shape or not plain (the caller answers None). ``head`` is checked
 * plain by the caller. */
static PyObject *joined(PyObject *head, PyObject *item, int pairs) {
    Py_ssize_t n = PyTuple_GET_SIZE(head), m = pairs ? 2 : 1;
    if (pairs ? !(PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) : !plain(item)) return NULL;
    PyObject *key = PyTuple_New(n + m);
    if (key == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(key, i, Py_NewRef(PyTuple_GET_ITEM(head, i)));
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *o = pairs ? PyTuple_GET_ITEM(item, i) : item;
        if (!plain(o)) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, n + i, Py_NewRef(o));
    }
    return key;
}

static int plain_tuple(PyObject *t) {
    if (!PyTuple_CheckExact(t)) return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++)
        if (!plain(PyTuple_GET_ITEM(t, i))) return 0;
    return 1;
}

/* Walks ``items`` (an exact tuple) and looks ``joined(head, item, pairs)`` up in ``known`` (an exact set or frozenset).
 * With ``out`` NULL returns how many are in it; else appends to ``out`` those that are not and returns 0.
 * -1 with an error set on failure, -2 (no error) when not sure. */
static Py_ssize_t walk(PyObject *known, PyObject *head, PyObject *items, int pairs, PyObject *out) {
    if (!PyAnySet_CheckExact(known) || !plain_tuple(head) || !PyTuple_CheckExact(items)) return -2;
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        PyObject *key = joined(head, item, pairs);
        if (key == NULL) return PyErr_Occurred() ? -1 : -2;
        int in = PySet_Contains(known, key);
        Py_DECREF(key);
        if (in < 0) return -1;
        if (in) {
            found++;
        } else if (out != NULL && PyList_Append(out, item) < 0) {
            return -1;
        }
    }
    return out == NULL ? found : 0;
}

/* missing(known, head, items, pairs) -> list | None: the items, in order, not in the set ``known`` as
 * ``(*head, key, value)`` (``pairs`` true: the items are (key, value) pairs) or ``(*head, item)``. */
static PyObject *missing(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "missing(known, head, items, pairs)");
        return NULL;
    }
    if (!PyBool_Check(args[3])) Py_RETURN_NONE; /* Python reads any truth; C only True or False */
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t result = walk(args[0], args[1], args[2], args[3] == Py_True, out);
    if (result < 0) {
        Py_DECREF(out);
        if (result == -1) return NULL;
        Py_RETURN_NONE;
    }
    return out;
}

/* An exact int that fits a long long, into *v; 0 when it is not one. */
static inline int small_int(PyObject *o, long long *v) {
    if (!PyLong_CheckExact(o)) return 0;
    int overflow;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (*v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Sets list[i] to the int v (a new reference stolen by the list); -1 on error. */
static inline int set_int(PyObject *list, Py_ssize_t i, long long v) {
    PyObject *o = PyLong_FromLongLong(v);
    if (o == NULL) return -1;
    PyObject *old = PyList_GET_ITEM(list, i);
    PyList_SET_ITEM(list, i, o);
    Py_DECREF(old);
    return 0;
}

/* ``seq`` (an exact list, or an exact tuple with ``tuple``) of n small ints, read into r; 0 when it is not. */
static int small_ints(PyObject *seq, int tuple, Py_ssize_t n, long long *r) {
    if (!(tuple ? PyTuple_CheckExact(seq) : PyList_CheckExact(seq)) || PySequence_Fast_GET_SIZE(seq) != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!small_int(PySequence_Fast_GET_ITEM(seq, i), &r[i])) return 0;
    return 1;
}

/* dict[key] = made (a new reference, or NULL on an error before), made released; -1 on error. */
static int put_new(PyObject *dict, PyObject *key, PyObject *made) {
    if (made == NULL) return -1;
    int failed = PyDict_SetItem(dict, key, made);
    Py_DECREF(made);
    return failed ? -1 : 0;
}

/* A new list of the ``n`` new references ``items`` (stolen, also on error; a NULL one is an error). */
static PyObject *list_of(Py_ssize_t n, PyObject *items[]) {
    PyObject *list = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL) goto fail;
    if ((list = PyList_New(n)) == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) PyList_SET_ITEM(list, i, items[i]);
    return list;
fail:
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(items[i]);
    return NULL;
}

/* A row as tag_writer makes it: the items of the tuple ``found`` (a stored row) and ``state``. */
static PyObject *stored_row(PyObject *found, Py_ssize_t n, long state) {
    PyObject *items[4];
    for (Py_ssize_t i = 0; i < n; i++) items[i] = Py_NewRef(PyTuple_GET_ITEM(found, i));
    items[n] = PyLong_FromLong(state);
    return list_of(n + 1, items);
}

/* The key row of ``key`` (an exact str) as ``_Group._key`` finds or makes it, when that needs no Python: in
 * ``keys`` (*made 0), else made (*made 1: [*stored, STORED] from ``stored_keys[(group_id, key)]``, or
 * [0, 0, NEW] for a search key not stored), which the caller puts in ``keys`` (keep_key_row) once it is sure
 * to use it. A new reference; NULL with no error when not sure (a tag key new to its group, whose keys
 * _Group._key counts; a stored row of another shape). ``stored`` None: the group is new, nothing is stored;
 * else ``stored_keys`` is StoredTags.keys when the group's key rows were read, None when not (_Group._key
 * raises). */
static PyObject *key_row_of(PyObject *keys, PyObject *stored, PyObject *stored_keys, PyObject *group_id,
                            PyObject *key, int *made_row) {
    PyObject *row = PyDict_GetItemWithError(keys, key);
    *made_row = row == NULL;
    if (row != NULL || PyErr_Occurred()) return Py_XNewRef(row);
    PyObject *made = NULL;
    if (stored != Py_None) {
        if (stored_keys == Py_None) return NULL;
        PyObject *full = PyTuple_Pack(2, group_id, key);
        if (full == NULL) return NULL;
        PyObject *found = PyDict_GetItemWithError(stored_keys, full);
        Py_DECREF(full);
        if (found == NULL && PyErr_Occurred()) return NULL;
        if (found != NULL) {
            long long r[2];
            if (!small_ints(found, 1, 2, r) || r[0] == LLONG_MAX || r[1] == LLONG_MAX) return NULL;
            made = stored_row(found, 2, STORED);
        }
    }
    if (made == NULL) {
        Py_ssize_t search = PyUnicode_Tailmatch(key, search_prefix, 0, PY_SSIZE_T_MAX, -1);
        if (search <= 0) return NULL; /* an error, or a tag key new to its group */
        made = list_of(3, (PyObject *[]){PyLong_FromLong(0), PyLong_FromLong(0), PyLong_FromLong(NEW)});
    }
    return made;
}

/* keys[key] = row when key_row_of made it; -1 on error. */
static inline int keep_key_row(PyObject *keys, PyObject *key, PyObject *row, int made) {
    return made ? PyDict_SetItem(keys, key, row) : 0;
}

/* count_one's tag without a value row, given its key's row (key_row_of's). */
static int count_new(PyObject *values, PyObject *keys, PyObject *tag, PyObject *key_row, int made, long long seen,
                     long long values_cap, long long terms_cap) {
    PyObject *key = PyTuple_GET_ITEM(tag, 0);
    long long k[3];
    if (!small_ints(key_row, 0, 3, k) || k[0] == LLONG_MAX || k[1] == LLONG_MAX) return 0;
    int text = PyUnicode_Compare(key, text_key);
    if (text == -1 && PyErr_Occurred()) return -1;
    long long cap = text == 0 ? terms_cap : values_cap;
    if (keep_key_row(keys, key, key_row, made) < 0) return -1;
    if (k[2] == STORED && set_int(key_row, 2, COUNTED) < 0) return -1;
    if (k[0] < cap) {
        if (set_int(key_row, 0, k[0] + 1) < 0) return -1;
        /* first and last seen one int object: write_one then formats its time once */
        PyObject *at = PyLong_FromLongLong(seen);
        PyObject *items[4] = {PyLong_FromLong(1), at, Py_XNewRef(at), PyLong_FromLong(NEW)};
        return put_new(values, tag, list_of(4, items)) < 0 ? -1 : 1;
    }
    return set_int(key_row, 1, k[1] + 1) < 0 ? -1 : 1;
}

/* One tag counted as ``_Group.count`` counts it, when its rows are at hand: 1 done, 0 not sure (nothing
 * changed), -1 error. */
static int count_one(PyObject *values, PyObject *stored, PyObject *stored_keys, PyObject *keys, PyObject *group_id,
                     PyObject *tag, long long seen, long long values_cap, long long terms_cap) {
    if (!PyTuple_CheckExact(tag) || PyTuple_GET_SIZE(tag) != 2) return 0;
    PyObject *key = PyTuple_GET_ITEM(tag, 0), *value = PyTuple_GET_ITEM(tag, 1);
    if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(value)) return 0;
    /* ``tag`` is the (key, value) tuple _Group.values is keyed by. */
    PyObject *row = PyDict_GetItemWithError(values, tag); /* borrowed */
    long long r[4];
    if (row == NULL) {
        if (PyErr_Occurred()) return -1;
        if (stored != Py_None) {
            PyObject *full = PyTuple_Pack(3, group_id, key, value);
            if (full == NULL) return -1;
            PyObject *found = PyDict_GetItemWithError(stored, full);
            Py_DECREF(full);
            if (found == NULL && PyErr_Occurred()) return -1;
            if (found != NULL) { /* [*stored, _STORED], when the stored row is three small ints */
                if (!small_ints(found, 1, 3, r) || r[0] == LLONG_MAX) return 0;
                PyObject *made = stored_row(found, 3, STORED);
                if (put_new(values, tag, made) < 0) return -1;
                row = made; /* borrowed: the dict holds it */
                r[3] = STORED;
            }
        }
    } else if (!small_ints(row, 0, 4, r) || r[0] == LLONG_MAX || r[3] < STORED || r[3] > NEW) {
        return 0;
    }
    if (row != NULL) {
        long long state = r[3];
        if (set_int(row, 0, r[0] + 1) < 0) return -1;
        if (state == STORED) state = COUNTED;
        if (seen < r[1]) {
            if (set_int(row, 1, seen) < 0) return -1;
            if (state == COUNTED) state = MOVED;
        }
        if (seen > r[2] && set_int(row, 2, seen) < 0) return -1;
        return set_int(row, 3, state) < 0 ? -1 : 1;
    }
    int made;
    PyObject *key_row = key_row_of(keys, stored, stored_keys, group_id, key, &made);
    if (key_row == NULL) return PyErr_Occurred() ? -1 : 0; /* _Group._key decides */
    int done = count_new(values, keys, tag, key_row, made, seen, values_cap, terms_cap);
    Py_DECREF(key_row);
    return done;
}

/* count_tags(values, stored, stored_keys, keys, group_id, tags, start, seen, values_cap, terms_cap) -> int | None:
 * ``_Group.count(key, value, seen)`` for the tags from ``start`` on (a key keeps ``values_cap`` values,
 * TEXT_KEY ``terms_cap``: tag_writer's limits, read at each call), up to the first it cannot count without Python (a tag key
 * new to its group, anything unusual): returns that tag's index (len(tags) when all are counted); None when
 * not sure of the arguments. ``values``, ``keys``: the group's dicts; ``stored``: StoredTags.values or None;
 * ``stored_keys``: as key_row_of's. */
static PyObject *count_tags(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(
            PyExc_TypeError,
            "count_tags(values, stored, stored_keys, keys, group_id, tags, start, seen, values_cap, terms_cap)");
        return NULL;
    }
    PyObject *values = args[0], *stored = args[1], *stored_keys = args[2], *keys = args[3], *group_id = args[4];
    PyObject *tags = args[5];
    long long seen, values_cap, terms_cap;
    Py_ssize_t start = PyLong_Check(args[6]) ? PyLong_AsSsize_t(args[6]) : -1;
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (text_key == NULL || !PyDict_CheckExact(values) || !PyDict_CheckExact(keys) ||
        !(stored == Py_None || PyDict_CheckExact(stored)) || !(stored_keys == Py_None || PyDict_CheckExact(stored_keys)) ||
        !PyLong_CheckExact(group_id) || !PyTuple_CheckExact(tags) || start < 0 || !small_int(args[7], &seen) ||
        !small_int(args[8], &values_cap) || !small_int(args[9], &terms_cap))
        Py_RETURN_NONE;
    Py_ssize_t i = start;
    for (; i < PyTuple_GET_SIZE(tags); i++) {
        int done = count_one(values, stored, stored_keys, keys, group_id, PyTuple_GET_ITEM(tags, i), seen, values_cap,
                             terms_cap);
        if (done < 0) return NULL;
        if (!done) break;
    }
    return PyLong_FromSsize_t(i);
}

/* mark_one's item without a value row, given its key's row (key_row_of's). */
static int mark_new(PyObject *values, PyObject *keys, PyObject *tag, PyObject *key_row, int made,
                    long long values_cap, long long terms_cap) {
    PyObject *key = PyTuple_GET_ITEM(tag, 0);
    long long k[3];
    if (!small_ints(key_row, 0, 3, k)) return 0;
    int text = PyUnicode_Compare(key, text_key);
    if (text == -1 && PyErr_Occurred()) return -1;
    /* A full key marks nothing; a full TEXT_KEY may mark the group full: _Group.mark decides. */
    int full = k[0] >= (text == 0 ? terms_cap : values_cap);
    if (full && text == 0) return 0;
    if (keep_key_row(keys, key, key_row, made) < 0) return -1;
    if (full) return 1;
    if (set_int(key_row, 0, k[0] + 1) < 0) return -1;
    if (k[2] == STORED && set_int(key_row, 2, COUNTED) < 0) return -1;
    PyObject *items[4] = {Py_NewRef(Py_None), Py_NewRef(Py_None), Py_NewRef(Py_None), PyLong_FromLong(NEW)};
    return put_new(values, tag, list_of(4, items)) < 0 ? -1 : 1;
}

/* One item marked as ``_Group.mark`` marks it, when its rows are at hand: 1 done, 0 not sure (nothing
 * changed), -1 error. ``tag``: the (key, value) tuple _Group.values is keyed by; ``full``: (group_id, key,
 * value), StoredTags.values' key. */
static int mark_one(PyObject *values, PyObject *stored, PyObject *stored_keys, PyObject *keys, PyObject *group_id,
                    PyObject *tag, PyObject *full, long long values_cap, long long terms_cap) {
    PyObject *key = PyTuple_GET_ITEM(tag, 0), *value = PyTuple_GET_ITEM(tag, 1);
    if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(value)) return 0;
    PyObject *row = PyDict_GetItemWithError(values, tag); /* borrowed */
    if (row != NULL) return 1;                             /* the group has the row: nothing to mark */
    if (PyErr_Occurred()) return -1;
    if (stored != Py_None) {
        PyObject *found = PyDict_GetItemWithError(stored, full);
        if (found == NULL && PyErr_Occurred()) return -1;
        if (found != NULL) { /* [*stored, _STORED]: the row is stored, nothing to mark */
            if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 3) return 0;
            PyObject *made = stored_row(found, 3, STORED);
            return put_new(values, tag, made) < 0 ? -1 : 1;
        }
    }
    int made;
    PyObject *key_row = key_row_of(keys, stored, stored_keys, group_id, key, &made);
    if (key_row == NULL) return PyErr_Occurred() ? -1 : 0; /* _Group._key decides */
    int done = mark_new(values, keys, tag, key_row, made, values_cap, terms_cap);
    Py_DECREF(key_row);
    return done;
}

/* mark_tags(values, stored, stored_keys, keys, group_id, items, key, start, known, values_cap, terms_cap)
 * -> int | None:
 * for the items from ``start`` on, ``_Group.mark(k, v)`` of those whose (group_id, k, v) is not in the set
 * ``known`` (rows known stored): ``items`` are (k, v) pairs when ``key`` is None, else values v of ``key``.
 * Up to the first item it cannot decide without Python (a tag key new to its group, a full TEXT_KEY,
 * anything unusual): returns that item's index (len(items) when all are done), which the caller
 * looks up in ``known`` and marks itself; None when not sure of the arguments. The caps as count_tags'. */
static PyObject *mark_tags(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "mark_tags(values, stored, stored_keys, keys, group_id, items, key, start, "
                                         "known, values_cap, terms_cap)");
        return NULL;
    }
    PyObject *values = args[0], *stored = args[1], *stored_keys = args[2], *keys = args[3], *group_id = args[4];
    PyObject *items = args[5], *key = args[6], *known = args[8];
    long long values_cap, terms_cap;
    Py_ssize_t start = PyLong_Check(args[7]) ? PyLong_AsSsize_t(args[7]) : -1;
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (text_key == NULL || !PyDict_CheckExact(values) || !PyDict_CheckExact(keys) ||
        !(stored == Py_None || PyDict_CheckExact(stored)) || !(stored_keys == Py_None || PyDict_CheckExact(stored_keys)) ||
        !PyLong_CheckExact(group_id) || !PyTuple_CheckExact(items) || !(key == Py_None || PyUnicode_CheckExact(key)) ||
        !PyAnySet_CheckExact(known) || start < 0 || !small_int(args[9], &values_cap) || !small_int(args[10], &terms_cap))
        Py_RETURN_NONE;
    int pairs = key == Py_None;
    PyObject *head = pairs ? PyTuple_Pack(1, group_id) : PyTuple_Pack(2, group_id, key);
    if (head == NULL) return NULL;
    Py_ssize_t i = start;
    int done = 1;
    for (; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        PyObject *full = joined(head, item, pairs); /* (group_id, k, v) */
        if (full == NULL) {
            done = PyErr_Occurred() ? -1 : 0;
            break;
        }
        done = PySet_Contains(known, full);
        if (done == 0) { /* not known stored: marked */
            PyObject *tag = pairs ? Py_NewRef(item) : PyTuple_Pack(2, key, item);
            done = tag == NULL ? -1
                               : mark_one(values, stored, stored_keys, keys, group_id, tag, full, values_cap, terms_cap);
            Py_XDECREF(tag);
        }
        Py_DECREF(full);
        if (done <= 0) break;
    }
    Py_DECREF(head);
    if (done < 0) return NULL;
    return PyLong_FromSsize_t(i);
}

/* A time's text through ``times`` (a cache shared by the commit's rows); a new reference. */
static PyObject *time_text(PyObject *times, PyObject *micros) {
    PyObject *text = PyDict_GetItemWithError(times, micros);
    if (text != NULL) {
        Py_INCREF(text);
        return text;
    }
    if (PyErr_Occurred()) return NULL;
    text = PyObject_CallOneArg(rfc3339, micros);
    if (text == NULL) return NULL;
    if (PyDict_SetItem(times, micros, text) < 0) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* One changed value row of write_values (its arguments ``args``): planned, and its key recorded; -1 on error. */
static int write_one(PyObject *const *args, PyObject *tag, PyObject *count, PyObject *first, PyObject *last,
                     long long state) {
    PyObject *group_id = args[1], *organization_id = args[2], *project_id = args[3];
    PyObject *key = PyTuple_GET_ITEM(tag, 0), *value = PyTuple_GET_ITEM(tag, 1), *cells = NULL;
    PyObject *first_seen = NULL, *last_seen = NULL, *row_key = PyTuple_Pack(3, group_id, key, value);
    int result = -1;
    if (row_key == NULL || PyList_Append(args[6], row_key) < 0) goto done;
    if (last == Py_None) {
        first_seen = Py_NewRef(Py_None);
        last_seen = Py_NewRef(Py_None);
    } else if ((last_seen = time_text(args[7], last)) == NULL) {
        goto done;
    } else if ((first_seen = first == last ? Py_NewRef(last_seen) : time_text(args[7], first)) == NULL) {
        goto done; /* first == last: a new row's one time (count_new) */
    }
    int which = state == NEW ? 0 : state == COUNTED ? 1 : 2;
    if (which == 0)
        cells = PyTuple_Pack(8, group_id, key, value, organization_id, project_id, count, first_seen, last_seen);
    else if (which == 1)
        cells = PyTuple_Pack(5, group_id, key, value, count, last_seen);
    else
        cells = PyTuple_Pack(6, group_id, key, value, count, first_seen, last_seen);
    if (cells == NULL) goto done;
    if (put_new(args[4], row_key, PyTuple_Pack(2, value_columns[which], cells)) < 0) goto done;
    result = state != NEW && PySet_Add(args[5], row_key) < 0 ? -1 : 0;
done:
    Py_XDECREF(cells);
    Py_XDECREF(first_seen);
    Py_XDECREF(last_seen);
    Py_XDECREF(row_key);
    return result;
}

/* write_values(values, group_id, organization_id, project_id, planned, updated, written, times) -> bool:
 * the value rows part of ``_Group.write``: every row of ``values`` this commit changed planned in
 * ``planned`` (GroupTagValues: row key -> (columns, values)), those known to exist added to ``updated``,
 * every row key written appended to ``written``, times formatted through ``times``. False, having changed
 * nothing, when a row is not as tag_writer makes them. */
static PyObject *write_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "write_values(values, group_id, organization_id, project_id, planned, "
                                         "updated, written, times)");
        return NULL;
    }
    PyObject *values = args[0];
    if (rfc3339 == NULL || !PyDict_CheckExact(values) || !PyDict_CheckExact(args[4]) || !PySet_CheckExact(args[5]) ||
        !PyList_CheckExact(args[6]) || !PyDict_CheckExact(args[7]) || !plain(args[1]))
        Py_RETURN_FALSE;
    Py_ssize_t pos = 0;
    PyObject *tag, *row;
    long long state;
    while (PyDict_Next(values, &pos, &tag, &row)) {
        if (!PyTuple_CheckExact(tag) || PyTuple_GET_SIZE(tag) != 2 || !plain(PyTuple_GET_ITEM(tag, 0)) ||
            !plain(PyTuple_GET_ITEM(tag, 1)) || !PyList_CheckExact(row) || PyList_GET_SIZE(row) != 4 ||
            !small_int(PyList_GET_ITEM(row, 3), &state) || state < STORED || state > NEW)
            Py_RETURN_FALSE;
    }
    pos = 0;
    while (PyDict_Next(values, &pos, &tag, &row)) {
        /* Rows were checked above; only the rfc3339 fallback (Python) could change them since. */
        if (!PyList_CheckExact(row) || PyList_GET_SIZE(row) != 4 || !small_int(PyList_GET_ITEM(row, 3), &state)) {
            PyErr_SetString(PyExc_RuntimeError, "_planning.write_values: a row changed while it was written");
            return NULL;
        }
        if (state == STORED) continue;
        /* held: a time's formatting may run Python code */
        PyObject *held[4] = {Py_NewRef(tag), Py_NewRef(PyList_GET_ITEM(row, 0)), Py_NewRef(PyList_GET_ITEM(row, 1)),
                             Py_NewRef(PyList_GET_ITEM(row, 2))};
        int result = write_one(args, held[0], held[1], held[2], held[3], state);
        for (int i = 0; i < 4; i++) Py_DECREF(held[i]);
        if (result < 0) return NULL;
    }
    Py_RETURN_TRUE;
}

/* --- A commit's occurrences counted and marked (the loop of tag_writer.plan_tags) ------------------------ */

static PyObject *str_occurrence_id, *str_seen, *str_values, *str_keys, *str_stored_values, *str_stored_keys,
    *str_tag_keys, *str_full_marked, *str_stored_tag_keys, *str_index_group_id, *str_index_tags,
    *str_index_search_tags, *str_index_terms, *str_organization_id;

/* The attribute names index_tags reads, interned at its first call; -1 on error. */
static int index_names(void) {
    if (str_index_terms != NULL) return 0; /* interned last */
    PyObject **names[14] = {&str_organization_id, &str_occurrence_id,   &str_seen,           &str_values,
                            &str_keys,            &str_stored_values,   &str_stored_keys,    &str_tag_keys,
                            &str_full_marked,     &str_stored_tag_keys, &str_index_group_id, &str_index_tags,
                            &str_index_search_tags, &str_index_terms};
    const char *text[14] = {"organization_id", "occurrence_id",    "seen",     "values", "keys",
                            "stored_values",   "stored_keys",      "tag_keys", "full_marked",
                            "_stored_tag_keys", "group_id",        "tags",     "search_tags", "terms"};
    for (int i = 0; i < 14; i++)
        if (*names[i] == NULL && (*names[i] = PyUnicode_InternFromString(text[i])) == NULL) return -1;
    return 0;
}

/* The _Group index_tags works on: its containers, as new references (NULL when none is at hand). */
typedef struct {
    PyObject *group, *values, *keys, *stored, *stored_keys;
    long long keys_cap, values_cap, terms_cap; /* TAG_KEYS_PER_GROUP, TAG_VALUES_PER_KEY, TERMS_PER_GROUP */
    PyObject *full_tag;                         /* (FULL_KEY, FULL_VALUE) */
} tag_group;

static void release_group(tag_group *g) {
    Py_CLEAR(g->group);
    Py_CLEAR(g->values);
    Py_CLEAR(g->keys);
    Py_CLEAR(g->stored);
    Py_CLEAR(g->stored_keys);
}

/* ``group`` (a new reference, stolen) as g's group with its containers: 1, 0 when they are not of the usual
 * types (g then has none), -1 on error. */
static int take_group(tag_group *g, PyObject *group) {
    if (g->group == group) {
        Py_DECREF(group);
        return 1;
    }
    release_group(g);
    g->group = group;
    if ((g->values = PyObject_GetAttr(group, str_values)) == NULL ||
        (g->keys = PyObject_GetAttr(group, str_keys)) == NULL ||
        (g->stored = PyObject_GetAttr(group, str_stored_values)) == NULL ||
        (g->stored_keys = PyObject_GetAttr(group, str_stored_keys)) == NULL) {
        release_group(g);
        return -1;
    }
    if (PyDict_CheckExact(g->values) && PyDict_CheckExact(g->keys) &&
        (g->stored == Py_None || PyDict_CheckExact(g->stored)) &&
        (g->stored_keys == Py_None || PyDict_CheckExact(g->stored_keys)))
        return 1;
    release_group(g);
    return 0;
}

/* Whether neither ``values`` nor the stored values have a row of ``tag`` (an exact 2-tuple of exact strs):
 * 1 none, 0 one has, -1 error. */
static int no_value_row(tag_group *g, PyObject *group_id, PyObject *tag) {
    PyObject *row = PyDict_GetItemWithError(g->values, tag);
    if (row != NULL) return 0;
    if (PyErr_Occurred()) return -1;
    if (g->stored == Py_None) return 1;
    PyObject *full = PyTuple_Pack(3, group_id, PyTuple_GET_ITEM(tag, 0), PyTuple_GET_ITEM(tag, 1));
    if (full == NULL) return -1;
    row = PyDict_GetItemWithError(g->stored, full);
    Py_DECREF(full);
    if (row != NULL) return 0;
    return PyErr_Occurred() ? -1 : 1;
}

static int exact_str_pair(PyObject *tag) {
    return PyTuple_CheckExact(tag) && PyTuple_GET_SIZE(tag) == 2 && PyUnicode_CheckExact(PyTuple_GET_ITEM(tag, 0)) &&
           PyUnicode_CheckExact(PyTuple_GET_ITEM(tag, 1));
}

/* The tag count_one left, when it is the first value of a tag key new to its group: ``_Group._key`` for it,
 * the group's tag keys counted (``tag_keys``, found by ``_stored_tag_keys`` at the first), then count_one
 * again when the group keeps the key (nothing when it has TAG_KEYS_PER_GROUP keys). 1 done, 0 not sure
 * (nothing changed), -1 error. */
static int count_new_key(tag_group *g, PyObject *group_id, PyObject *tag, long long seen) {
    if (!exact_str_pair(tag)) return 0;
    PyObject *key = PyTuple_GET_ITEM(tag, 0);
    int none = no_value_row(g, group_id, tag);
    if (none <= 0) return none;
    PyObject *row = PyDict_GetItemWithError(g->keys, key);
    if (row != NULL || PyErr_Occurred()) return row != NULL ? 0 : -1;
    if (g->stored != Py_None) {
        if (g->stored_keys == Py_None) return 0; /* not read: _Group._key raises */
        PyObject *full = PyTuple_Pack(2, group_id, key);
        if (full == NULL) return -1;
        row = PyDict_GetItemWithError(g->stored_keys, full);
        Py_DECREF(full);
        if (row != NULL || PyErr_Occurred()) return row != NULL ? 0 : -1;
    }
    Py_ssize_t search = PyUnicode_Tailmatch(key, search_prefix, 0, PY_SSIZE_T_MAX, -1);
    if (search != 0) return search < 0 ? -1 : 0;
    long long tag_keys;
    PyObject *count = PyObject_GetAttr(g->group, str_tag_keys);
    if (count == NULL) return -1;
    int usual = small_int(count, &tag_keys);
    Py_DECREF(count);
    if (!usual) return 0;
    if (tag_keys < 0) {
        if ((count = PyObject_CallMethodNoArgs(g->group, str_stored_tag_keys)) == NULL) return -1;
        usual = small_int(count, &tag_keys) && tag_keys >= 0 && tag_keys < LLONG_MAX;
        /* as _Group._key: the count is kept even when the key is not */
        int failed = usual && PyObject_SetAttr(g->group, str_tag_keys, count) < 0;
        Py_DECREF(count);
        if (failed) return -1;
        if (!usual) return 0;
    }
    if (tag_keys >= g->keys_cap) return 1; /* past the group's keys: not counted */
    if ((count = PyLong_FromLongLong(tag_keys + 1)) == NULL) return -1;
    int failed = PyObject_SetAttr(g->group, str_tag_keys, count);
    Py_DECREF(count);
    if (failed < 0) return -1;
    PyObject *items[3] = {PyLong_FromLong(0), PyLong_FromLong(0), PyLong_FromLong(NEW)};
    if (put_new(g->keys, key, list_of(3, items)) < 0) return -1;
    return count_one(g->values, g->stored, g->stored_keys, g->keys, group_id, tag, seen, g->values_cap, g->terms_cap);
}

/* The item mark_one left, when it is a word of a group whose words are full (TEXT_KEY at TERMS_PER_GROUP):
 * as ``_Group.mark``, the key row kept and, the first time, the group marked full (``full_marked``; the row
 * ``full_tag`` marked). ``full``: (group_id, key, value). 1 done, 0 not sure, -1 error. */
static int mark_full_text(tag_group *g, PyObject *group_id, PyObject *tag, PyObject *full) {
    if (!exact_str_pair(tag)) return 0;
    PyObject *key = PyTuple_GET_ITEM(tag, 0);
    int text = PyUnicode_Compare(key, text_key);
    if (text != 0) return text == -1 && PyErr_Occurred() ? -1 : 0;
    PyObject *row = PyDict_GetItemWithError(g->values, tag);
    if (row != NULL || PyErr_Occurred()) return row != NULL ? 0 : -1;
    if (g->stored != Py_None) {
        row = PyDict_GetItemWithError(g->stored, full);
        if (row != NULL || PyErr_Occurred()) return row != NULL ? 0 : -1;
    }
    int made;
    PyObject *key_row = key_row_of(g->keys, g->stored, g->stored_keys, group_id, key, &made);
    if (key_row == NULL) return PyErr_Occurred() ? -1 : 0;
    long long k[3];
    int done = 0;
    if (!small_ints(key_row, 0, 3, k) || k[0] < g->terms_cap) goto out;
    done = -1;
    if (keep_key_row(g->keys, key, key_row, made) < 0) goto out;
    PyObject *marked = PyObject_GetAttr(g->group, str_full_marked);
    if (marked == NULL) goto out;
    int is_marked = PyObject_IsTrue(marked);
    Py_DECREF(marked);
    if (is_marked < 0) goto out;
    done = 1;
    if (is_marked) goto out;
    /* the mark: Python's when C is not sure of it (the kept key row is the one _Group._key keeps) */
    PyObject *full_row = PyTuple_Pack(3, group_id, PyTuple_GET_ITEM(g->full_tag, 0), PyTuple_GET_ITEM(g->full_tag, 1));
    if (full_row == NULL) {
        done = -1;
        goto out;
    }
    done = mark_one(g->values, g->stored, g->stored_keys, g->keys, group_id, g->full_tag, full_row, g->values_cap,
                    g->terms_cap);
    Py_DECREF(full_row);
    if (done == 1 && PyObject_SetAttr(g->group, str_full_marked, Py_True) < 0) done = -1;
out:
    Py_DECREF(key_row);
    return done;
}

/* The set ``known``'s slots (and what they hold) of the keys ``keys`` (their ``hashes``) asked for ahead, so that
 * their look-ups, one after the other, do not each wait for memory: the set of rows known stored is large and
 * cold. A hint only: the look-ups themselves are PySet_Contains's. Always inlined: called as a function, the
 * same loops made write_costs and mark_items slower, not faster. */
#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif
static ALWAYS_INLINE void prefetch_entries(PyObject *known, PyObject *const *keys, const Py_hash_t *hashes,
                                           Py_ssize_t n) {
    setentry *table = ((PySetObject *)known)->table;
    size_t mask = (size_t)((PySetObject *)known)->mask;
    for (Py_ssize_t i = 0; i < n; i++) PREFETCH(&table[(size_t)hashes[i] & mask]);
    for (Py_ssize_t i = 0; i < n; i++) {
        setentry *entry = &table[(size_t)hashes[i] & mask];
        if (entry->hash == hashes[i] && entry->key != NULL) PREFETCH(entry->key);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        setentry *entry = &table[(size_t)hashes[i] & mask];
        PyObject *stored = entry->hash == hashes[i] ? entry->key : NULL;
        if (stored != NULL && stored != keys[i] && PyTuple_CheckExact(stored))
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(stored); j++) PREFETCH(PyTuple_GET_ITEM(stored, j));
    }
}

#define MARK_AHEAD 32 /* items of one mark_items or words_of call whose look-ups are asked for ahead */

/* The items of one occurrence (``key`` NULL: its search tags, else its words of ``key``),
 * those not in ``known`` marked: the index of the first C leaves to Python (len(items) when none), -1 on
 * error. */
static Py_ssize_t mark_items(tag_group *g, PyObject *group_id, PyObject *items, PyObject *key, PyObject *known) {
    int pairs = key == NULL;
    PyObject *head = pairs ? PyTuple_Pack(1, group_id) : PyTuple_Pack(2, group_id, key);
    if (head == NULL) return -1;
    /* the first items' keys made and hashed ahead (up to the first not of the usual shape), their slots fetched */
    PyObject *ahead[MARK_AHEAD];
    Py_hash_t hashes[MARK_AHEAD];
    Py_ssize_t made = 0, n = PyTuple_GET_SIZE(items);
    int done = 1;
    if (PyAnySet_CheckExact(known)) {
        while (made < n && made < MARK_AHEAD) {
            PyObject *full = joined(head, PyTuple_GET_ITEM(items, made), pairs);
            if (full == NULL) {
                if (PyErr_Occurred()) done = -1;
                break;
            }
            ahead[made] = full;
            if ((hashes[made++] = PyObject_Hash(full)) == -1) {
                done = -1;
                break;
            }
        }
        if (done > 0) prefetch_entries(known, ahead, hashes, made);
    }
    Py_ssize_t i = 0;
    for (; done > 0 && i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        PyObject *full = i < made ? Py_NewRef(ahead[i]) : joined(head, item, pairs);
        if (full == NULL) {
            done = PyErr_Occurred() ? -1 : 0;
            break;
        }
        done = PySet_Contains(known, full);
        if (done == 0) {
            PyObject *tag = pairs ? Py_NewRef(item) : PyTuple_Pack(2, key, item);
            done = tag == NULL ? -1
                               : mark_one(g->values, g->stored, g->stored_keys, g->keys, group_id, tag, full,
                                          g->values_cap, g->terms_cap);
            if (done == 0) done = mark_full_text(g, group_id, tag, full);
            Py_XDECREF(tag);
        }
        Py_DECREF(full);
        if (done <= 0) break;
    }
    for (Py_ssize_t j = 0; j < made; j++) Py_DECREF(ahead[j]);
    Py_DECREF(head);
    return done < 0 ? -1 : i;
}

/* An attribute of an occurrence, a new reference; NULL with no error when it has none (Python decides). */
static PyObject *field_of(PyObject *intent, PyObject *name) {
    PyObject *value = PyObject_GetAttr(intent, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) PyErr_Clear();
    return value;
}

/* One occurrence of index_tags (its arguments ``args``): 1 done (counted, or not the first write of its
 * row), 0 left to Python from *stage and *item, -1 error; *counted counts it. */
static int index_one(tag_group *g, PyObject *intent, PyObject *const *args, Py_ssize_t *stage, Py_ssize_t *item,
                     Py_ssize_t *counted) {
    PyObject *group_id = NULL, *occurrence = NULL, *seen_of = NULL, *row_key = NULL, *parts[3] = {NULL, NULL, NULL};
    PyObject *names[3] = {str_index_tags, str_index_search_tags, str_index_terms};
    long long seen;
    int result = -1;
    *stage = *item = 0;
    if ((group_id = field_of(intent, str_index_group_id)) == NULL ||
        (occurrence = field_of(intent, str_occurrence_id)) == NULL || (seen_of = field_of(intent, str_seen)) == NULL)
        goto unsure;
    for (int p = 0; p < 3; p++)
        if ((parts[p] = field_of(intent, names[p])) == NULL || !PyTuple_CheckExact(parts[p])) goto unsure;
    if (!PyLong_CheckExact(group_id) || !plain(occurrence) || !small_int(seen_of, &seen)) goto unsure;
    /* the first write of its occurrence row (_first_write) */
    if ((row_key = PyTuple_Pack(2, group_id, occurrence)) == NULL) goto done;
    int in = PyDict_Contains(args[4], row_key);
    if (in > 0) in = !PySet_Contains(args[5], row_key);
    if (in > 0) in = !PySet_Contains(args[6], row_key);
    if (PyErr_Occurred()) goto done;
    if (!in) {
        result = 1;
        goto done;
    }
    PyObject *group = PyDict_GetItemWithError(args[2], group_id);
    if (group != NULL) Py_INCREF(group);
    else if (PyErr_Occurred() || (group = PyObject_CallOneArg(args[3], intent)) == NULL) goto done;
    int took = take_group(g, group);
    if (took <= 0) {
        if (took == 0) goto unsure;
        goto done;
    }
    if (PySet_Add(args[6], row_key) < 0) goto done;
    (*counted)++;
    *stage = 1;
    for (; *item < PyTuple_GET_SIZE(parts[0]); (*item)++) {
        PyObject *tag = PyTuple_GET_ITEM(parts[0], *item);
        int one = count_one(g->values, g->stored, g->stored_keys, g->keys, group_id, tag, seen, g->values_cap,
                            g->terms_cap);
        if (one == 0) one = count_new_key(g, group_id, tag, seen);
        if (one < 0) goto done;
        if (one == 0) goto unsure;
    }
    for (*stage = 2; *stage <= 3; (*stage)++) {
        PyObject *items = parts[*stage - 1];
        *item = 0;
        if (PyTuple_GET_SIZE(items) == 0) continue;
        *item = mark_items(g, group_id, items, *stage == 2 ? NULL : text_key, args[7]);
        if (*item < 0) goto done;
        if (*item < PyTuple_GET_SIZE(items)) goto unsure;
    }
    result = 1;
    goto done;
unsure:
    result = PyErr_Occurred() ? -1 : 0;
done:
    Py_XDECREF(group_id);
    Py_XDECREF(occurrence);
    Py_XDECREF(seen_of);
    Py_XDECREF(row_key);
    for (int p = 0; p < 3; p++) Py_XDECREF(parts[p]);
    return result;
}

/* index_tags(indexed, start, groups, make_group, planned, stored_occurrences, done, known, full_tag,
 *            values_cap, terms_cap, keys_cap) -> (at, stage, item, counted) | None:
 * plan_tags' loop over the occurrences ``indexed[start:]`` (a list): each whose occurrence row this commit
 * writes for the first time (its (group_id, occurrence_id) a key of the dict ``planned``, the plan's
 * Occurrences rows, and in neither the set ``stored_occurrences`` nor the set ``done``, to which it is then
 * added) is counted and marked in its group: ``_Group.index`` of it, the group from the dict ``groups`` or
 * else ``make_group(intent)`` (which adds it). Up to the first occurrence it leaves to Python: ``at`` is its
 * index (len(indexed) when none), ``stage`` 0 when C did nothing of it, else 1, 2 or 3: C counted it and did
 * it up to its tag, search tag or word ``item`` (``_Group.index`` from there); ``counted``: how many
 * occurrences it counted. ``known``: KnownRows.rows; ``full_tag``: (FULL_KEY, FULL_VALUE); the caps
 * TAG_VALUES_PER_KEY, TERMS_PER_GROUP and TAG_KEYS_PER_GROUP, read at each call. None when not sure of the
 * arguments. */
static PyObject *index_tags(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "index_tags(indexed, start, groups, make_group, planned, stored_occurrences, "
                                         "done, known, full_tag, values_cap, terms_cap, keys_cap)");
        return NULL;
    }
    tag_group g = {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, args[8]};
    PyObject *indexed = args[0];
    Py_ssize_t start = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (index_names() < 0) return NULL;
    if (text_key == NULL || !PyList_CheckExact(indexed) || start < 0 || !PyDict_CheckExact(args[2]) ||
        !PyDict_CheckExact(args[4]) || !PySet_CheckExact(args[5]) || !PySet_CheckExact(args[6]) ||
        !PyAnySet_CheckExact(args[7]) || !exact_str_pair(g.full_tag) || !small_int(args[9], &g.values_cap) ||
        !small_int(args[10], &g.terms_cap) || !small_int(args[11], &g.keys_cap))
        Py_RETURN_NONE;
    Py_ssize_t i = start, stage = 0, item = 0, counted = 0;
    for (; i < PyList_GET_SIZE(indexed); i++) {
        PyObject *intent = Py_NewRef(PyList_GET_ITEM(indexed, i)); /* held: Python code may run */
        int one = index_one(&g, intent, args, &stage, &item, &counted);
        Py_DECREF(intent);
        if (one < 0) {
            release_group(&g);
            return NULL;
        }
        if (one == 0) break;
    }
    release_group(&g);
    if (i >= PyList_GET_SIZE(indexed)) stage = item = 0;
    return Py_BuildValue("(nnnn)", i, stage, item, counted);
}

/* The vocabulary rows of one occurrence's words (plan_words' ``args``): 1 done, 0 left to Python (nothing
 * changed), -1 error. */
static int words_of(PyObject *intent, PyObject *const *args, PyObject **planned) {
    PyObject *organization_id = field_of(intent, str_organization_id), *terms = NULL;
    int result = 0;
    if (organization_id == NULL || (terms = field_of(intent, str_index_terms)) == NULL) goto done;
    if (!PyLong_CheckExact(organization_id) || !PyTuple_CheckExact(terms)) goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(terms); i++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(terms, i))) goto done;
    result = -1;
    /* the first words made and hashed ahead, their slots in the set of words known stored fetched */
    PyObject *ahead[MARK_AHEAD];
    Py_hash_t hashes[MARK_AHEAD];
    Py_ssize_t made = 0, n = PyTuple_GET_SIZE(terms);
    if (PyAnySet_CheckExact(args[2])) {
        for (; made < n && made < MARK_AHEAD; made++) {
            if ((ahead[made] = PyTuple_Pack(2, organization_id, PyTuple_GET_ITEM(terms, made))) == NULL) break;
            hashes[made] = PyObject_Hash(ahead[made]); /* a tuple of an int and a str: never fails */
        }
        if (made < n && made < MARK_AHEAD) goto release; /* out of memory */
        prefetch_entries(args[2], ahead, hashes, made);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = i < made ? Py_NewRef(ahead[i]) : PyTuple_Pack(2, organization_id, PyTuple_GET_ITEM(terms, i));
        if (word == NULL) goto release;
        int in = PySet_Contains(args[2], word);
        if (in == 0 && *planned == NULL) { /* the table's rows, made at the first word to write */
            if ((*planned = PyDict_New()) == NULL || PyDict_SetItem(args[3], args[4], *planned) < 0) in = -1;
        }
        if (in == 0) in = PyDict_Contains(*planned, word);
        if (in == 0) {
            PyObject *row = PyTuple_Pack(2, args[5], word);
            in = row == NULL || PyDict_SetItem(*planned, word, row) < 0 || PyList_Append(args[6], word) < 0 ? -1 : 1;
            Py_XDECREF(row);
        }
        Py_DECREF(word);
        if (in < 0) goto release;
    }
    result = 1;
release:
    for (Py_ssize_t j = 0; j < made; j++) Py_DECREF(ahead[j]);
done:
    Py_XDECREF(organization_id);
    Py_XDECREF(terms);
    return PyErr_Occurred() ? -1 : result;
}

/* plan_words(indexed, start, known, upserts, table, columns, words) -> int | None: tag_writer._plan_words for
 * the occurrences ``indexed[start:]`` (a list): each of their words (organization_id, term) not in the set
 * ``known`` planned in ``upserts[table]`` (made at the first) as ``(columns, word)`` unless planned already,
 * and appended to the list ``words``. Up to the first occurrence it leaves to Python (odd types): returns its
 * index (len(indexed) when none). None when not sure of the arguments. */
static PyObject *plan_words(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "plan_words(indexed, start, known, upserts, table, columns, words)");
        return NULL;
    }
    PyObject *indexed = args[0], *planned;
    Py_ssize_t start = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (index_names() < 0) return NULL;
    if (!PyList_CheckExact(indexed) || start < 0 || !PyAnySet_CheckExact(args[2]) || !PyDict_CheckExact(args[3]) ||
        !PyUnicode_CheckExact(args[4]) || !PyList_CheckExact(args[6]))
        Py_RETURN_NONE;
    planned = PyDict_GetItemWithError(args[3], args[4]);
    if (planned == NULL && PyErr_Occurred()) return NULL;
    if (planned != NULL && !PyDict_CheckExact(planned)) Py_RETURN_NONE;
    Py_XINCREF(planned);
    Py_ssize_t i = start;
    for (; i < PyList_GET_SIZE(indexed); i++) {
        PyObject *intent = Py_NewRef(PyList_GET_ITEM(indexed, i));
        int one = words_of(intent, args, &planned);
        Py_DECREF(intent);
        if (one < 0) {
            Py_XDECREF(planned);
            return NULL;
        }
        if (one == 0) break;
    }
    Py_XDECREF(planned);
    return PyLong_FromSsize_t(i);
}

/* write_keys(keys, group_id, organization_id, project_id, planned, updated, new_columns, update_columns) -> bool:
 * the key rows part of ``_Group.write``: every row of ``keys`` (key -> [values seen, other count, state])
 * this commit changed planned in ``planned`` (GroupTagKeys: row key -> (columns, values)), a new one with
 * ``new_columns``, the others with ``update_columns`` and added to ``updated``. False, having changed
 * nothing, when a row is not as tag_writer makes them. */
static PyObject *write_keys(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "write_keys(keys, group_id, organization_id, project_id, planned, updated, "
                                         "new_columns, update_columns)");
        return NULL;
    }
    PyObject *keys = args[0], *group_id = args[1], *planned = args[4], *updated = args[5];
    if (!PyDict_CheckExact(keys) || !plain(group_id) || !PyDict_CheckExact(planned) || !PySet_CheckExact(updated) ||
        !PyTuple_CheckExact(args[6]) || !PyTuple_CheckExact(args[7]))
        Py_RETURN_FALSE;
    Py_ssize_t pos = 0;
    PyObject *key, *row;
    long long state;
    while (PyDict_Next(keys, &pos, &key, &row)) {
        if (!plain(key) || !PyList_CheckExact(row) || PyList_GET_SIZE(row) != 3 ||
            !small_int(PyList_GET_ITEM(row, 2), &state) || state < STORED || state > NEW)
            Py_RETURN_FALSE;
    }
    pos = 0;
    while (PyDict_Next(keys, &pos, &key, &row)) { /* no Python code runs below: the rows stay as checked */
        state = PyLong_AsLongLong(PyList_GET_ITEM(row, 2));
        if (state == STORED) continue;
        PyObject *seen = PyList_GET_ITEM(row, 0), *other = PyList_GET_ITEM(row, 1), *cells;
        PyObject *row_key = PyTuple_Pack(2, group_id, key);
        if (row_key == NULL) return NULL;
        if (state == NEW)
            cells = PyTuple_Pack(6, group_id, key, args[2], args[3], seen, other);
        else
            cells = PyTuple_Pack(4, group_id, key, seen, other);
        int failed = cells == NULL ||
                     put_new(planned, row_key, PyTuple_Pack(2, args[state == NEW ? 6 : 7], cells)) < 0 ||
                     (state != NEW && PySet_Add(updated, row_key) < 0);
        Py_XDECREF(cells);
        Py_DECREF(row_key);
        if (failed) return NULL;
    }
    Py_RETURN_TRUE;
}

/* count_tag_keys(keys) -> dict | None: StoredTags.tag_key_count's pass: of the dict ``keys`` ((group_id, key)
 * -> row), how many keys not starting with SEARCH_PREFIX each group has. None when a key is not (exact int
 * or str, exact str). */
static PyObject *count_tag_keys(PyObject *module, PyObject *keys) {
    if (search_prefix == NULL || !PyDict_CheckExact(keys)) Py_RETURN_NONE;
    PyObject *counts = PyDict_New(), *row_key, *row;
    if (counts == NULL) return NULL;
    Py_ssize_t pos = 0;
    while (PyDict_Next(keys, &pos, &row_key, &row)) {
        if (!PyTuple_CheckExact(row_key) || PyTuple_GET_SIZE(row_key) != 2 || !plain(PyTuple_GET_ITEM(row_key, 0)) ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(row_key, 1))) {
            Py_DECREF(counts);
            Py_RETURN_NONE;
        }
        PyObject *group_id = PyTuple_GET_ITEM(row_key, 0);
        Py_ssize_t search = PyUnicode_Tailmatch(PyTuple_GET_ITEM(row_key, 1), search_prefix, 0, PY_SSIZE_T_MAX, -1);
        if (search < 0) goto fail;
        if (search) continue;
        PyObject *count = PyDict_GetItemWithError(counts, group_id);
        if (count == NULL && PyErr_Occurred()) goto fail;
        if (put_new(counts, group_id, PyLong_FromSsize_t(count == NULL ? 1 : PyLong_AsSsize_t(count) + 1)) < 0)
            goto fail;
    }
    return counts;
fail:
    Py_DECREF(counts);
    return NULL;
}

/* Whether ``items`` is an exact tuple of exact 2-tuples (``pairs``) of plain items, or of plain items. */
static int plain_items(PyObject *items, int pairs) {
    if (!PyTuple_CheckExact(items)) return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (pairs ? !(PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2 && plain_tuple(item)) : !plain(item))
            return 0;
    }
    return 1;
}

/* The value row keys of one occurrence (value_keys' ``args``): 1 done, 0 left to Python (nothing changed), -1
 * error. */
static int value_keys_of(PyObject *intent, PyObject *const *args) {
    PyObject *group_id = field_of(intent, str_index_group_id), *occurrence = NULL, *row_key = NULL;
    PyObject *parts[3] = {NULL, NULL, NULL}, *names[3] = {str_index_tags, str_index_search_tags, str_index_terms};
    int result = 0;
    if (group_id == NULL || (occurrence = field_of(intent, str_occurrence_id)) == NULL) goto done;
    for (int p = 0; p < 3; p++)
        if ((parts[p] = field_of(intent, names[p])) == NULL || !plain_items(parts[p], p < 2)) goto done;
    if (!PyLong_CheckExact(group_id) || !plain(occurrence)) goto done;
    result = -1;
    if ((row_key = PyTuple_Pack(2, group_id, occurrence)) == NULL) goto done;
    int in = PySet_Contains(args[2], row_key);
    if (in != 0) {
        result = in < 0 ? -1 : 1; /* stored: its tags are not counted again */
        goto done;
    }
    for (int p = 0; p < 3; p++) {
        PyObject *head = p < 2 ? PyTuple_Pack(1, group_id) : PyTuple_Pack(2, group_id, text_key);
        if (head == NULL) goto done;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(parts[p]) && in == 0; i++) {
            PyObject *full = joined(head, PyTuple_GET_ITEM(parts[p], i), p < 2); /* plain: never NULL unsure */
            if (full == NULL) {
                in = -1;
                break;
            }
            in = p == 0 ? 0 : PySet_Contains(args[3], full); /* tags are read whatever is known */
            if (in == 0) in = PySet_Add(args[4], full);
            else if (in == 1) in = 0;
            Py_DECREF(full);
        }
        Py_DECREF(head);
        if (in < 0) goto done;
    }
    result = 1;
done:
    Py_XDECREF(group_id);
    Py_XDECREF(occurrence);
    Py_XDECREF(row_key);
    for (int p = 0; p < 3; p++) Py_XDECREF(parts[p]);
    return PyErr_Occurred() ? -1 : result;
}

/* value_keys(wanted, start, stored_occurrences, known, out) -> int | None: read_stored's value row keys of the
 * occurrences ``wanted[start:]`` (a list) whose (group_id, occurrence_id) is not in the set
 * ``stored_occurrences``: (group_id, key, value) of each tag, and of each search tag and word (TEXT_KEY) not
 * in the set ``known``, added to the set ``out``. Up to the first occurrence it leaves to Python (odd types):
 * returns its index (len(wanted) when none). None when not sure of the arguments. */
static PyObject *value_keys(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "value_keys(wanted, start, stored_occurrences, known, out)");
        return NULL;
    }
    PyObject *wanted = args[0];
    Py_ssize_t start = PyLong_Check(args[1]) ? PyLong_AsSsize_t(args[1]) : -1;
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (index_names() < 0) return NULL;
    if (text_key == NULL || !PyList_CheckExact(wanted) || start < 0 || !PyAnySet_CheckExact(args[2]) ||
        !PyAnySet_CheckExact(args[3]) || !PySet_CheckExact(args[4]))
        Py_RETURN_NONE;
    Py_ssize_t i = start;
    for (; i < PyList_GET_SIZE(wanted); i++) {
        PyObject *intent = Py_NewRef(PyList_GET_ITEM(wanted, i));
        int one = value_keys_of(intent, args);
        Py_DECREF(intent);
        if (one < 0) return NULL;
        if (one == 0) break;
    }
    return PyLong_FromSsize_t(i);
}

/* --- Upper bounds of the mutations of writes (spanner_writer.estimate_mutations) ------------------------ */

static PyObject *str_intents, *str_hashes, *str_group_id, *str_tags, *str_search_tags, *str_terms;

/* len(getattr(o, name)) into *n; 0 when not sure (not an exact tuple), -1 on error. */
static int tuple_len(PyObject *o, PyObject *name, PyObject **out, Py_ssize_t *n) {
    PyObject *value = PyObject_GetAttr(o, name);
    if (value == NULL) return -1;
    if (!PyTuple_CheckExact(value)) {
        Py_DECREF(value);
        return 0;
    }
    *n = PyTuple_GET_SIZE(value);
    if (out != NULL) *out = value;
    else Py_DECREF(value);
    return 1;
}

#define BATCH 64 /* items of one intent looked up together (walk_batch) */

/* walk(known, head, items, pairs, NULL) of tags, search tags (``head``) and terms (``text_head``) into
 * found[0..2], the lookups of all the items made together: their set slots, then the stored keys found there
 * and their items, are fetched into the cache before the first lookup (a known set too large for the cache
 * made each lookup wait for three or four reads from memory in turn). The answers are PySet_Contains': the
 * prefetches only read the set's table. 0 done, -1 error, -2 not sure (as walk); -3: more than BATCH items,
 * not done. */
static int walk_batch(PyObject *known, PyObject *head, PyObject *text_head, PyObject *const *lists,
                      Py_ssize_t *found) {
    PyObject *keys[BATCH];
    Py_hash_t hashes[BATCH];
    int segment[BATCH];
    Py_ssize_t n = 0;
    if (!PyAnySet_CheckExact(known) || !plain_tuple(head) || !plain_tuple(text_head)) return -2;
    for (int l = 0; l < 3; l++) {
        if (!PyTuple_CheckExact(lists[l])) return -2;
        n += PyTuple_GET_SIZE(lists[l]);
    }
    if (n > BATCH) return -3;
    int result = 0;
    Py_ssize_t made = 0;
    for (int l = 0; l < 3 && result == 0; l++) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(lists[l]); i++) {
            PyObject *key = joined(l == 2 ? text_head : head, PyTuple_GET_ITEM(lists[l], i), l < 2);
            if (key == NULL) {
                result = PyErr_Occurred() ? -1 : -2;
                break;
            }
            keys[made] = key;
            segment[made] = l;
            if ((hashes[made++] = PyObject_Hash(key)) == -1) {
                result = -1;
                break;
            }
        }
    }
    if (result == 0) {
        prefetch_entries(known, keys, hashes, made);
        found[0] = found[1] = found[2] = 0;
        for (Py_ssize_t i = 0; i < made && result == 0; i++) {
            int in = PySet_Contains(known, keys[i]);
            if (in < 0) result = -1;
            else found[segment[i]] += in;
        }
    }
    for (Py_ssize_t i = 0; i < made; i++) Py_DECREF(keys[i]);
    return result;
}

/* tag_writer.estimate_mutations(intent, known) into *cost (``known``: KnownRows.rows, or None for the bound
 * without what is known): 1 done, 0 not sure, -1 error. */
static int tag_cost(PyObject *intent, PyObject *known, long long insert, long long update, long long term_cells,
                    long long *cost) {
    PyObject *tags = NULL, *search = NULL, *terms = NULL, *head = NULL, *text_head = NULL, *group_id = NULL;
    Py_ssize_t n_tags, n_search, n_terms;
    int ok = -1;
    int got = tuple_len(intent, str_tags, &tags, &n_tags);
    if (got <= 0) return got;
    if ((got = tuple_len(intent, str_search_tags, &search, &n_search)) <= 0) goto done_got;
    if ((got = tuple_len(intent, str_terms, &terms, &n_terms)) <= 0) goto done_got;
    long long new_terms = n_terms, tags_known = 0, search_known = 0;
    if (known != Py_None) {
        if ((group_id = PyObject_GetAttr(intent, str_group_id)) == NULL) goto done;
        if ((head = PyTuple_Pack(1, group_id)) == NULL || (text_head = PyTuple_Pack(2, group_id, text_key)) == NULL)
            goto done;
        PyObject *lists[3] = {tags, search, terms};
        Py_ssize_t found[3], a, b, c;
        int batch = walk_batch(known, head, text_head, lists, found);
        if (batch == -3) {
            a = walk(known, head, tags, 1, NULL);
            b = a < 0 ? a : walk(known, head, search, 1, NULL);
            c = b < 0 ? b : walk(known, text_head, terms, 0, NULL);
        } else {
            a = batch < 0 ? batch : found[0];
            b = batch < 0 ? batch : found[1];
            c = batch < 0 ? batch : found[2];
        }
        if (c == -1) goto done;
        if (c == -2) {
            ok = 0;
            goto done;
        }
        tags_known = a;
        search_known = b;
        new_terms = n_terms - c;
    }
    /* tag rows: an update of a row known stored, else an insert; search rows known stored cost nothing */
    *cost = n_tags * insert - tags_known * (insert - update) + (n_search - search_known) * insert;
    /* words: their rows, and the full-group mark a new word may bring */
    if (new_terms) *cost += new_terms * term_cells + insert;
    ok = 1;
    goto done;
done_got:
    ok = got;
done:
    Py_XDECREF(tags);
    Py_XDECREF(search);
    Py_XDECREF(terms);
    Py_XDECREF(head);
    Py_XDECREF(text_head);
    Py_XDECREF(group_id);
    return ok;
}

/* write_costs(writes, fixed, special, known, tag_cells) -> list[int] | None: ``estimate_mutations`` of each
 * write (spanner_writer), its tag part ``tag_writer.estimate_mutations`` with ``known`` (KnownRows.rows, or
 * None). ``fixed``: intent class -> cost; ``special``: (LinkHashes, cells of a hash, DeleteGroup,
 * IndexOccurrence); ``tag_cells``: (insert, update, term) cells of tag_writer. None when not sure. */
static PyObject *write_costs(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "write_costs(writes, fixed, special, known, tag_cells)");
        return NULL;
    }
    PyObject *writes = args[0], *fixed = args[1], *special = args[2], *known = args[3], *cells = args[4];
    long long link_cells, insert, update, term_cells;
    if (text_key == NULL || !PyList_CheckExact(writes) || !PyDict_CheckExact(fixed) || !PyTuple_CheckExact(special) ||
        PyTuple_GET_SIZE(special) != 4 || !small_int(PyTuple_GET_ITEM(special, 1), &link_cells) ||
        !PyTuple_CheckExact(cells) || PyTuple_GET_SIZE(cells) != 3 || !small_int(PyTuple_GET_ITEM(cells, 0), &insert) ||
        !small_int(PyTuple_GET_ITEM(cells, 1), &update) || !small_int(PyTuple_GET_ITEM(cells, 2), &term_cells) ||
        !(known == Py_None || PyAnySet_CheckExact(known)))
        Py_RETURN_NONE;
    PyObject *link = PyTuple_GET_ITEM(special, 0), *delete = PyTuple_GET_ITEM(special, 2);
    PyObject *index = PyTuple_GET_ITEM(special, 3);
    Py_ssize_t count = PyList_GET_SIZE(writes);
    PyObject *costs = PyList_New(count);
    if (costs == NULL) return NULL;
    for (Py_ssize_t w = 0; w < count; w++) {
        PyObject *intents = PyObject_GetAttr(PyList_GET_ITEM(writes, w), str_intents);
        if (intents == NULL) goto fail;
        if (!PyTuple_CheckExact(intents)) {
            Py_DECREF(intents);
            goto unsure;
        }
        long long total = 0;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(intents); i++) {
            PyObject *intent = PyTuple_GET_ITEM(intents, i), *kind = (PyObject *)Py_TYPE(intent);
            PyObject *cost = PyDict_GetItemWithError(fixed, kind);
            long long part = 0;
            int got = 1;
            Py_ssize_t n;
            if (cost != NULL) {
                got = small_int(cost, &part);
            } else if (PyErr_Occurred()) {
                got = -1;
            } else if (kind == link) {
                got = tuple_len(intent, str_hashes, NULL, &n);
                part = n * link_cells;
            } else if (kind == delete) {
                got = tuple_len(intent, str_hashes, NULL, &n);
                part = 2 + 2 * n;
            } else if (kind == index) {
                got = tag_cost(intent, known, insert, update, term_cells, &part);
            } else {
                part = 8;
            }
            if (got <= 0 || part < 0 || part > (1LL << 40)) {
                Py_DECREF(intents);
                if (got < 0) goto fail;
                goto unsure;
            }
            total += part; /* at most 2^40 a part and fewer than 2^20 intents: no overflow */
        }
        Py_DECREF(intents);
        PyObject *value = PyLong_FromLongLong(total);
        if (value == NULL) goto fail;
        PyList_SET_ITEM(costs, w, value);
    }
    return costs;
unsure:
    Py_DECREF(costs);
    Py_RETURN_NONE;
fail:
    Py_DECREF(costs);
    return NULL;
}

/* --- A commit's rows grouped into mutations (commit_plan.mutation_groups) ------------------------------- */

static PyObject *kind_names[3]; /* "insert", "update", "insert_or_update" */
static PyObject *type_column = NULL; /* "Type" */
#define MAX_GROUPS 32

/* group_rows(table, planned, new, updated, groups) -> (order, not_updated) | None: one table's part of
 * ``mutation_groups``' pass: the rows of ``planned`` (row key -> (columns, values)) as mutations ``(kind,
 * table, columns, rows)`` grouped by kind and columns object in the order of their first row (``kind``: insert
 * for keys in ``new``, update for keys in ``updated`` or, with ``groups``, a row without a "Type" column,
 * else insert_or_update), and how many row keys are not in ``updated``. ``new`` and ``updated`` are sets or
 * empty tuples. None when a row is not (exact tuple, value) or more than MAX_GROUPS groups form. */
static PyObject *group_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "group_rows(table, planned, new, updated, groups)");
        return NULL;
    }
    PyObject *table = args[0], *planned = args[1], *new = args[2], *updated = args[3];
    int groups = args[4] == Py_True;
    if (!PyBool_Check(args[4]) || !PyDict_CheckExact(planned) || !(PyAnySet_CheckExact(new) || (PyTuple_CheckExact(new) && PyTuple_GET_SIZE(new) == 0)) ||
        !(PyAnySet_CheckExact(updated) || (PyTuple_CheckExact(updated) && PyTuple_GET_SIZE(updated) == 0)))
        Py_RETURN_NONE;
    int check_new = PyAnySet_Check(new) && PySet_GET_SIZE(new) > 0;
    int check_updated = PyAnySet_Check(updated) && PySet_GET_SIZE(updated) > 0;
    /* the groups: kind and columns object -> its list of rows */
    int kinds[MAX_GROUPS];
    PyObject *columns_of[MAX_GROUPS], *lists[MAX_GROUPS];
    int count = 0;
    Py_ssize_t not_updated = 0, pos = 0;
    PyObject *row_key, *row, *order = NULL, *result = NULL;
    PyObject *typed_columns = NULL; /* the last columns object looked at, and whether it has "Type" */
    int typed = 0;
    while (PyDict_Next(planned, &pos, &row_key, &row)) {
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 2 || !plain_tuple(row_key)) goto unsure;
        PyObject *columns = PyTuple_GET_ITEM(row, 0), *values = PyTuple_GET_ITEM(row, 1);
        if (!PyTuple_CheckExact(columns)) goto unsure;
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
            PyObject *list = PyList_New(0);
            if (list == NULL) goto fail;
            kinds[count] = kind;
            columns_of[count] = columns;
            lists[count] = list;
            g = count++;
        }
        if (PyList_Append(lists[g], values) < 0) goto fail;
    }
    order = PyList_New(count);
    if (order == NULL) goto fail;
    for (int g = 0; g < count; g++) {
        PyObject *mutation = PyTuple_Pack(4, kind_names[kinds[g]], table, columns_of[g], lists[g]);
        if (mutation == NULL) goto fail;
        PyList_SET_ITEM(order, g, mutation);
    }
    result = Py_BuildValue("(Nn)", order, not_updated);
    order = NULL;
    goto done;
unsure:
    result = Py_NewRef(Py_None);
    goto done;
fail:
    result = NULL;
done:
    Py_XDECREF(order);
    for (int g = 0; g < count; g++) Py_DECREF(lists[g]);
    return result;
}

/* --- A commit's writes planned (commit_plan.plan_commit) ------------------------------------------------- */

/* configure_commit(): commit_plan's classes, columns, tables and functions, set once at its import. The writes
 * whose intents are all of the commonest classes (``commit_kinds``) are planned here, as commit_plan's planners
 * and spanner_rows' row builders plan them; any other write is handed to ``commit_plan._plan_write``, the
 * Python's plan of one write, so each write is planned whole by one of the two. */
enum {
    K_EVENT, K_INDEX, K_OCCURRENCE, K_GROUP, K_KEY_STATE, K_RELEASE, K_ENVIRONMENT, K_GROUP_RELEASE, K_HASHES,
    K_ACTIVITY, N_KINDS
};
enum {
    C_GROUP, C_GROUP_STATE, C_KEY_STATE, C_OCCURRENCE, C_OCCURRENCE_EVENT, C_EVENT, C_RELEASE, C_ENVIRONMENT,
    C_GROUP_RELEASE, C_HASH, C_ACTIVITY, N_COLUMNS
};
enum {
    T_GROUPS, T_KEY_STATES, T_OCCURRENCES, T_EVENTS, T_RELEASES, T_ENVIRONMENTS, T_GROUP_RELEASES, T_HASHES,
    T_ACTIVITIES, N_TABLES
};
enum {
    F_PLAN_WRITE, F_SPLIT_KEY, F_MERGED_ROW, F_RFC3339, F_ENCODE, F_DUMPS, F_BYTES, F_RAW, F_EVIDENCE_DATA,
    F_EVIDENCE_DISPLAY, N_FUNCTIONS
};
static PyObject *commit_kinds[N_KINDS];
static int guarded_kind[N_KINDS]; /* the class is in _KEY_GUARDED */
static PyObject *commit_columns[N_COLUMNS], *commit_functions[N_FUNCTIONS];
static PyObject *table_names[N_TABLES], *commit_timestamp = NULL, *zero = NULL, *one = NULL, *empty_text = NULL;
/* spanner_rows.event_payload (configure_payloads), or NULL: an event's JSON text encoded here (F_ENCODE). */
static PyObject *payload_function = NULL;

/* Attribute names, interned at import (PyInit__planning). */
enum {
    A_KEY, A_SEQ, A_INTENTS, A_EVENT, A_EVENT_ID, A_PROJECT_ID, A_PLATFORM, A_TIMESTAMP, A_RECEIVED, A_LEVEL,
    A_RELEASE, A_ENVIRONMENT, A_GROUP_ID, A_OCCURRENCE, A_ID, A_MESSAGE_ID, A_MESSAGE_TIME, A_FINGERPRINT,
    A_HASHES, A_TYPE, A_ISSUE_TITLE, A_SUBTITLE, A_CULPRIT, A_DETECTION_TIME, A_EVENT_TIME, A_RESOURCE_ID,
    A_EVIDENCE_DATA, A_EVIDENCE_DISPLAY, A_PRIORITY, A_ASSIGNEE, A_ROW, A_ORGANIZATION_ID, A_PRIMARY_HASH,
    A_GENERATION, A_CATEGORY, A_STATUS, A_SUBSTATUS, A_TITLE, A_MESSAGE, A_FIRST_SEEN, A_LAST_SEEN, A_ACTIVE_AT,
    A_RESOLVED_AT, A_TIMES_SEEN, A_FIRST_RELEASE, A_RESOLUTION_TYPE, A_RESOLUTION_VERSION, A_DATA, A_STATE,
    A_RELINK, A_VERSION, A_PLAN, A_KEY_SEQ, A_GROUP_SEQ, A_ALIVE, A_RELEASES, A_ASSUMED_NEW, A_UPSERTS,
    A_DELETES, A_INSERTS, A_INDEXED, A_STALE_WRITES, A_ENVIRONMENT_CHECKS, A_ACTIVITY_ID, A_ACTIVITY_TIME,
    A_STORED_JSON, N_ATTRIBUTES
};
static const char *attribute_names[N_ATTRIBUTES] = {
    "key", "seq", "intents", "event", "event_id", "project_id", "platform", "timestamp", "received", "level",
    "release", "environment", "group_id", "occurrence", "id", "message_id", "message_time", "fingerprint",
    "hashes", "type", "issue_title", "subtitle", "culprit", "detection_time", "event_time", "resource_id",
    "evidence_data", "evidence_display", "priority", "assignee", "row", "organization_id", "primary_hash",
    "generation", "category", "status", "substatus", "title", "message", "first_seen", "last_seen", "active_at",
    "resolved_at", "times_seen", "first_release", "resolution_type", "resolution_version", "data", "state",
    "relink", "version", "plan", "key_seq", "group_seq", "alive", "releases", "assumed_new", "upserts",
    "deletes", "inserts", "indexed", "stale_writes", "environment_checks", "activity_id", "activity_time",
    "stored_json"};
static PyObject *attribute[N_ATTRIBUTES];

/* A row's cells as spanner_rows builds them: an attribute of one of two sources, converted. */
enum { PLAIN, TS, TIME, JSON, ENCODE, PAYLOAD, LIST, SEQ, NONE, COMMIT };
typedef struct {
    unsigned char source, convert;
    short name; /* an attribute, or -1: the source itself */
} Cell;

/* spanner_rows.group_values(row, seq, None) */
static const Cell group_cells[] = {
    {0, PLAIN, A_GROUP_ID}, {0, PLAIN, A_PROJECT_ID}, {0, PLAIN, A_ORGANIZATION_ID}, {0, PLAIN, A_PRIMARY_HASH},
    {0, PLAIN, A_FINGERPRINT}, {0, PLAIN, A_GENERATION}, {0, PLAIN, A_TYPE}, {0, PLAIN, A_CATEGORY},
    {0, PLAIN, A_STATUS}, {0, PLAIN, A_SUBSTATUS}, {0, PLAIN, A_PRIORITY}, {0, PLAIN, A_LEVEL},
    {0, PLAIN, A_TITLE}, {0, PLAIN, A_SUBTITLE}, {0, PLAIN, A_CULPRIT}, {0, PLAIN, A_MESSAGE},
    {0, PLAIN, A_PLATFORM}, {0, TS, A_FIRST_SEEN}, {0, TS, A_LAST_SEEN}, {0, TS, A_ACTIVE_AT},
    {0, TS, A_RESOLVED_AT}, {0, PLAIN, A_TIMES_SEEN}, {0, PLAIN, A_FIRST_RELEASE}, {0, PLAIN, A_ASSIGNEE},
    {0, PLAIN, A_RESOLUTION_TYPE}, {0, PLAIN, A_RESOLUTION_VERSION}, {0, JSON, A_DATA}, {0, SEQ, -1},
    {0, NONE, -1}, {0, COMMIT, -1}};
/* spanner_rows.occurrence_values(insert): source 0 the intent, 1 its occurrence */
static const Cell occurrence_cells[] = {
    {0, PLAIN, A_GROUP_ID}, {1, PLAIN, A_ID}, {1, PLAIN, A_PROJECT_ID}, {1, PLAIN, A_EVENT_ID},
    {0, PLAIN, A_MESSAGE_ID}, {0, TIME, A_MESSAGE_TIME}, {1, LIST, A_FINGERPRINT}, {1, LIST, A_HASHES},
    {1, PLAIN, A_TYPE}, {1, PLAIN, A_ISSUE_TITLE}, {1, PLAIN, A_SUBTITLE}, {1, PLAIN, A_CULPRIT},
    {1, PLAIN, A_LEVEL}, {1, TIME, A_DETECTION_TIME}, {0, TIME, A_EVENT_TIME}, {1, PLAIN, A_RESOURCE_ID},
    {1, JSON, A_EVIDENCE_DATA}, {1, ENCODE, A_EVIDENCE_DISPLAY}, {1, PLAIN, A_PRIORITY}, {1, PLAIN, A_ASSIGNEE},
    {0, PLAIN, A_RELEASE}, {0, PLAIN, A_ENVIRONMENT}};
/* spanner_rows.event_values(record): source 0 the intent, 1 its event */
static const Cell event_cells[] = {
    {1, PLAIN, A_PROJECT_ID}, {1, PLAIN, A_EVENT_ID}, {1, PLAIN, A_PLATFORM}, {1, TIME, A_TIMESTAMP},
    {1, TS, A_RECEIVED}, {0, PLAIN, A_LEVEL}, {1, PLAIN, A_RELEASE}, {1, PLAIN, A_ENVIRONMENT},
    {1, PAYLOAD, -1}};
/* spanner_rows.activity_values(insert) */
static const Cell activity_cells[] = {
    {0, PLAIN, A_GROUP_ID}, {0, PLAIN, A_ACTIVITY_ID}, {0, PLAIN, A_PROJECT_ID}, {0, PLAIN, A_TYPE},
    {0, PLAIN, A_MESSAGE_ID}, {0, TS, A_ACTIVITY_TIME}, {0, JSON, A_DATA}};
/* spanner_rows.environment_values(record) */
static const Cell environment_cells[] = {
    {0, PLAIN, A_GROUP_ID}, {0, PLAIN, A_ENVIRONMENT}, {0, PLAIN, A_FIRST_RELEASE}, {0, TS, A_FIRST_SEEN}};
/* spanner_rows.event_inline_values(record) (PAYLOAD: an event's JSON text, spanner_rows.event_payload) */
static const Cell inline_cells[] = {{1, PLAIN, A_EVENT_ID}, {1, PAYLOAD, -1}};
#define CELLS(cells) cells, (Py_ssize_t)(sizeof(cells) / sizeof(cells[0]))

/* bytes.decode() of a new reference, released; a new reference or NULL. */
static PyObject *decoded(PyObject *raw) {
    if (raw == NULL) return NULL;
    PyObject *text = PyBytes_CheckExact(raw)
                         ? PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), "strict")
                         : PyObject_CallMethod(raw, "decode", NULL);
    Py_DECREF(raw);
    return text;
}

/* An event's JSON text without configure_payloads: a carried event's own (model.Event.stored_json), else
 * msgspec.json.encode(event).decode(), as spanner_rows.event_payload gives it. A new reference or NULL. */
static PyObject *encoded_payload(PyObject *event) {
    PyObject *text = PyObject_GetAttr(event, attribute[A_STORED_JSON]);
    if (text == NULL) return NULL;
    if (text != Py_None) return text;
    Py_DECREF(text);
    return decoded(PyObject_CallOneArg(commit_functions[F_ENCODE], event));
}

static int32_t slot_offset(int t, int name);

/* One cell: a new reference or NULL. ``types``: the sources' indexes in offset_types (-1: none), whose
 * attributes are read straight from their slots (what the generic attribute look-up reads there). */
static PyObject *cell(const Cell *c, PyObject *const *sources, const int *types, PyObject *seq) {
    if (c->convert == SEQ) return Py_NewRef(seq);
    if (c->convert == NONE) return Py_NewRef(Py_None);
    if (c->convert == COMMIT) return Py_NewRef(commit_timestamp);
    PyObject *value = NULL;
    if (c->name < 0) {
        value = Py_NewRef(sources[c->source]);
    } else {
        int32_t offset = types[c->source] < 0 ? -1 : slot_offset(types[c->source], c->name);
        if (offset > 0) value = *(PyObject **)((char *)sources[c->source] + offset);
        /* an empty slot: the look-up raises its AttributeError (or gives None) */
        value = value != NULL ? Py_NewRef(value) : PyObject_GetAttr(sources[c->source], attribute[c->name]);
    }
    /* evidence still its msgpack bytes (a msgspec.Raw: model.EvidenceData): the model's decoder's value */
    if (value != NULL && (c->name == A_EVIDENCE_DATA || c->name == A_EVIDENCE_DISPLAY) &&
        (PyObject *)Py_TYPE(value) == commit_functions[F_RAW]) {
        PyObject *raw = value, *decode = commit_functions[c->name == A_EVIDENCE_DATA ? F_EVIDENCE_DATA
                                                                                      : F_EVIDENCE_DISPLAY];
        value = PyObject_CallOneArg(decode, raw);
        Py_DECREF(raw);
    }
    if (value == NULL || c->convert == PLAIN) return value;
    if ((c->convert == TS || c->convert == JSON) && value == Py_None) return value;
    PyObject *made;
    if (c->convert == TS || c->convert == TIME)
        made = PyObject_CallOneArg(commit_functions[F_RFC3339], value);
    else if (c->convert == JSON)
        made = decoded(PyObject_CallOneArg(commit_functions[F_DUMPS], value));
    else if (c->convert == ENCODE)
        made = decoded(PyObject_CallOneArg(commit_functions[F_ENCODE], value));
    else if (c->convert == PAYLOAD)
        made = payload_function != NULL ? PyObject_CallOneArg(payload_function, value) : encoded_payload(value);
    else /* LIST */
        made = PySequence_List(value);
    Py_DECREF(value);
    return made;
}

/* Where the attributes of a row's sources are, for prefetching them and reading them (``cell``) without the
 * generic attribute look-up's steps (the class's dictionaries, then the member descriptor's call), which
 * would read the same slot: the offsets of the member slots (msgspec's structs keep their fields in slots) of
 * the first classes seen, by attribute; 0 not yet looked up, -1 not a slot. Each class is held, so that its
 * address names it; its offsets are looked up again when it changes (a new version tag), and a class whose
 * instances' attributes are not found by the generic look-up, or without a valid version tag, is not used. */
#define OFFSET_TYPES 32 /* a power of two */
static PyTypeObject *offset_types[OFFSET_TYPES];
static int32_t offsets[OFFSET_TYPES][N_ATTRIBUTES];
static unsigned int offset_versions[OFFSET_TYPES]; /* the type's version tag its offsets were looked up at */

/* The index of ``type`` in offset_types (added if there is room; found from its address), or -1: also when
 * its attributes are not found by the generic look-up, or its version tag is not valid. A type changed since
 * (a new version tag) has its offsets looked up again. */
static int offset_type(PyTypeObject *type) {
    if (type->tp_getattro != PyObject_GenericGetAttr || !PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG))
        return -1;
    size_t start = (size_t)((uintptr_t)type >> 6); /* types are far apart: their addresses' middle bits */
    for (size_t probe = 0; probe < OFFSET_TYPES; probe++) {
        int t = (int)((start + probe) & (OFFSET_TYPES - 1));
        if (offset_types[t] == NULL) offset_types[t] = (PyTypeObject *)Py_NewRef((PyObject *)type);
        else if (offset_types[t] != type) continue;
        if (offset_versions[t] != type->tp_version_tag) { /* new here (a valid tag is never 0), or changed */
            memset(offsets[t], 0, sizeof offsets[t]);
            offset_versions[t] = type->tp_version_tag;
        }
        return t;
    }
    return -1;
}

/* The offset of the slot of attribute ``name`` in the instances of offset_types[t], or -1. */
static int32_t slot_offset(int t, int name) {
    int32_t offset = offsets[t][name];
    if (offset == 0) {
        offset = -1;
        PyObject *descriptor = _PyType_Lookup(offset_types[t], attribute[name]); /* borrowed; never an error */
        /* a member of this class or a base (a member of another class would refuse the instance) */
        if (descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type) &&
            PyType_IsSubtype(offset_types[t], PyDescr_TYPE(descriptor))) {
            PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
            if ((member->type == T_OBJECT_EX || member->type == T_OBJECT) && member->offset > 0 &&
                member->offset < INT32_MAX && !(member->flags & PY_AUDIT_READ))
                offset = (int32_t)member->offset;
        }
        offsets[t][name] = offset;
    }
    return offset;
}

/* getattr(o, attribute[name]), a new reference or NULL: read from its slot when slot_offset knows it (what
 * the generic look-up reads there), else by the look-up. */
static PyObject *attr_of(PyObject *o, int name) {
    int t = offset_type(Py_TYPE(o));
    if (t >= 0) {
        int32_t offset = slot_offset(t, name);
        if (offset > 0) {
            PyObject *value = *(PyObject **)((char *)o + offset);
            if (value != NULL) return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(o, attribute[name]);
}

/* The objects a row's cells will read from its sources' slots, asked for all at once: the sources were made
 * long before the commit (the engine's intents), and the cells' reads, one after the other, would each wait
 * for memory. A hint only: the cells read them as before. */
static void prefetch_cells(const Cell *cells, Py_ssize_t n, PyObject *const *sources, const int *types) {
    for (Py_ssize_t i = 0; i < n; i++) {
        const Cell *c = &cells[i];
        if (c->name < 0 || types[c->source] < 0) continue;
        int32_t offset = slot_offset(types[c->source], c->name);
        if (offset > 0) {
            PyObject *value = *(PyObject **)((char *)sources[c->source] + offset);
            if (value != NULL) PREFETCH(value);
        }
    }
}

/* A row's values (a new tuple) or NULL. */
static PyObject *row_values(const Cell *cells, Py_ssize_t n, PyObject *first, PyObject *second, PyObject *seq) {
    PyObject *sources[2] = {first, second};
    int types[2] = {-1, -1};
    for (int s = 0; s < 2; s++)
        if (sources[s] != NULL) types[s] = offset_type(Py_TYPE(sources[s]));
    prefetch_cells(cells, n, sources, types);
    PyObject *values = PyTuple_New(n);
    if (values == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = cell(&cells[i], sources, types, seq);
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyTuple_SET_ITEM(values, i, value);
    }
    return values;
}

/* spanner_rows.spanner_bytes(raw): base64 text, in C for exact bytes; a new reference or NULL. */
static PyObject *base64_text(PyObject *raw) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!PyBytes_CheckExact(raw)) return PyObject_CallOneArg(commit_functions[F_BYTES], raw);
    Py_ssize_t n = PyBytes_GET_SIZE(raw);
    if (n > PY_SSIZE_T_MAX / 2) return PyObject_CallOneArg(commit_functions[F_BYTES], raw);
    const unsigned char *in = (const unsigned char *)PyBytes_AS_STRING(raw);
    PyObject *text = PyUnicode_New(4 * ((n + 2) / 3), 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8) | in[i + 2];
        *out++ = alphabet[(v >> 18) & 63];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)in[i] << 16 | (i + 1 < n ? (unsigned long)in[i + 1] << 8 : 0);
        *out++ = alphabet[(v >> 18) & 63];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return text;
}

/* Whether the exact str a equals the exact str b: 1, 0, or -1 when either is not an exact str. */
static inline int same_text(PyObject *a, PyObject *b) {
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b)) return -1;
    return a == b || PyUnicode_Compare(a, b) == 0;
}

/* commit_plan.merged_row(previous, columns, values) in its usual cases (the row written again with the same
 * column tuple; its key and last columns written again, as a group's state after its row), else by the Python
 * function; a new reference or NULL. */
static PyObject *merged(PyObject *previous, PyObject *columns, PyObject *values) {
    if (!(PyTuple_CheckExact(previous) && PyTuple_GET_SIZE(previous) == 2 && PyTuple_CheckExact(columns) &&
          PyTuple_CheckExact(values)))
        goto python;
    PyObject *old_columns = PyTuple_GET_ITEM(previous, 0), *old_values = PyTuple_GET_ITEM(previous, 1);
    if (!PyTuple_CheckExact(old_columns) || !PyTuple_CheckExact(old_values)) goto python;
    if (columns == old_columns) return PyTuple_Pack(2, old_columns, values);
    Py_ssize_t n_old = PyTuple_GET_SIZE(old_columns), n = PyTuple_GET_SIZE(columns), cut = n_old - n + 1;
    if (n == 0 || n_old == 0 || cut <= 0 || PyTuple_GET_SIZE(values) == 0) goto python;
    for (Py_ssize_t i = 0; i < n; i++) {
        int same = same_text(PyTuple_GET_ITEM(old_columns, i == 0 ? 0 : cut + i - 1), PyTuple_GET_ITEM(columns, i));
        if (same != 1) goto python; /* not sure, or the dictionary merge: the Python's */
    }
    Py_ssize_t kept = (cut < PyTuple_GET_SIZE(old_values) ? cut : PyTuple_GET_SIZE(old_values)) - 1;
    if (kept < 0) kept = 0;
    Py_ssize_t n_values = PyTuple_GET_SIZE(values);
    PyObject *row = PyTuple_New(n_values + kept);
    if (row == NULL) return NULL;
    PyTuple_SET_ITEM(row, 0, Py_NewRef(PyTuple_GET_ITEM(values, 0)));
    for (Py_ssize_t i = 0; i < kept; i++)
        PyTuple_SET_ITEM(row, 1 + i, Py_NewRef(PyTuple_GET_ITEM(old_values, 1 + i)));
    for (Py_ssize_t i = 1; i < n_values; i++) PyTuple_SET_ITEM(row, kept + i, Py_NewRef(PyTuple_GET_ITEM(values, i)));
    PyObject *result = PyTuple_Pack(2, old_columns, row);
    Py_DECREF(row);
    return result;
python:
    return PyObject_CallFunctionObjArgs(commit_functions[F_MERGED_ROW], previous, columns, values, NULL);
}

/* What plan_writes reads of the Planning once: its containers (borrowed through ``held``). */
typedef struct {
    PyObject *p, *plan, *key_seq, *group_seq, *alive, *releases, *assumed_new, *upserts, *deletes, *inserts,
        *indexed, *environment_checks;
} Commit;

/* CommitPlan.upsert(table, key, columns, values), ``values`` a new reference (released; NULL: an error
 * before); -1 on error. */
static int upsert(Commit *c, int table, PyObject *key, PyObject *columns, PyObject *values) {
    if (values == NULL) return -1;
    PyObject *name = table_names[table], *row = NULL;
    int ok = -1;
    PyObject *deleted = PyDict_GetItemWithError(c->deletes, name);
    if (deleted == NULL && PyErr_Occurred()) goto done;
    if (deleted != NULL) {
        int truth = PyObject_IsTrue(deleted);
        if (truth < 0) goto done;
        if (truth) {
            PyObject *gone = PyObject_CallMethod(deleted, "pop", "OO", key, Py_None);
            if (gone == NULL) goto done;
            Py_DECREF(gone);
        }
    }
    PyObject *planned = PyDict_GetItemWithError(c->upserts, name);
    if (planned == NULL) {
        if (PyErr_Occurred()) goto done;
        planned = PyDict_New();
        if (planned == NULL || PyDict_SetItem(c->upserts, name, planned) < 0) {
            Py_XDECREF(planned);
            goto done;
        }
        Py_DECREF(planned); /* held by upserts */
    }
    if (!PyDict_CheckExact(planned)) {
        PyErr_SetString(PyExc_TypeError, "_planning.plan_writes: a table's planned rows are not a dict");
        goto done;
    }
    Py_INCREF(planned);
    PyObject *previous = PyDict_GetItemWithError(planned, key);
    if (previous == NULL && PyErr_Occurred()) {
        Py_DECREF(planned);
        goto done;
    }
    row = previous == NULL ? PyTuple_Pack(2, columns, values) : merged(previous, columns, values);
    if (row != NULL) ok = PyDict_SetItem(planned, key, row);
    Py_DECREF(planned);
done:
    Py_XDECREF(row);
    Py_DECREF(values);
    return ok;
}

/* ``if key in c->assumed_new: plan.inserts.add((table, row_key))`` (the write's key taken for new); -1 on error. */
static int mark_insert(Commit *c, PyObject *key, int table, PyObject *row_key) {
    int in = PySet_Contains(c->assumed_new, key);
    if (in <= 0) return in;
    PyObject *entry = PyTuple_Pack(2, table_names[table], row_key);
    if (entry == NULL) return -1;
    int failed = PySet_Add(c->inserts, entry);
    Py_DECREF(entry);
    return failed;
}

/* dict.get(key, 0) < seq (a borrowed look-up); -1 on error. */
static int newer(PyObject *seq, PyObject *dict, PyObject *key) {
    PyObject *stored = PyDict_GetItemWithError(dict, key);
    if (stored == NULL) {
        if (PyErr_Occurred()) return -1;
        stored = zero;
    }
    Py_INCREF(stored);
    int result = PyObject_RichCompareBool(seq, stored, Py_GT);
    Py_DECREF(stored);
    return result;
}

/* group_ok[group_id] (KeyError when missing, as the planners' subscript) by its truth; -1 on error. */
static int group_is_ok(PyObject *group_ok, PyObject *group_id) {
    PyObject *ok = group_ok == NULL ? NULL : PyDict_GetItemWithError(group_ok, group_id);
    if (ok == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, group_id);
        return -1;
    }
    return PyObject_IsTrue(ok);
}

/* split_group_key(key): (int(project), primary hash); a new reference or NULL. */
static PyObject *split_key(PyObject *key) {
    if (!PyUnicode_CheckExact(key)) return PyObject_CallOneArg(commit_functions[F_SPLIT_KEY], key);
    Py_ssize_t n = PyUnicode_GET_LENGTH(key), at = PyUnicode_FindChar(key, ':', 0, n, 1);
    if (at == -2) return NULL;
    PyObject *project = at < 0 ? Py_NewRef(key) : PyUnicode_Substring(key, 0, at);
    PyObject *hash = at < 0 ? Py_NewRef(empty_text) : PyUnicode_Substring(key, at + 1, n);
    PyObject *number = project == NULL ? NULL : PyLong_FromUnicodeObject(project, 10);
    PyObject *result = number == NULL || hash == NULL ? NULL : PyTuple_Pack(2, number, hash);
    Py_XDECREF(project);
    Py_XDECREF(hash);
    Py_XDECREF(number);
    return result;
}

/* plan.stale_writes += 1; -1 on error. */
static int one_more_stale(Commit *c) {
    PyObject *count = attr_of(c->plan, A_STALE_WRITES);
    if (count == NULL) return -1;
    PyObject *more = PyNumber_Add(count, one);
    Py_DECREF(count);
    if (more == NULL) return -1;
    int failed = PyObject_SetAttr(c->plan, attribute[A_STALE_WRITES], more);
    Py_DECREF(more);
    return failed;
}

/* The planners of commit_plan for the commonest classes, in C (``_upsert_group``, ``_save_key_state``,
 * ``_insert_occurrence``, ``_record_release``; RecordEvent and IndexOccurrence inline); -1 on error. */
static int plan_group(Commit *c, PyObject *intent, PyObject *key, PyObject *seq, PyObject *group_ok) {
    PyObject *row = attr_of(intent, A_ROW), *group_id = NULL, *row_key = NULL;
    int ok = -1;
    if (row == NULL || (group_id = attr_of(row, A_GROUP_ID)) == NULL) goto done;
    int go = group_is_ok(group_ok, group_id);
    if (go <= 0) {
        ok = go;
        goto done;
    }
    if ((row_key = PyTuple_Pack(1, group_id)) == NULL) goto done;
    if (upsert(c, T_GROUPS, row_key, commit_columns[C_GROUP], row_values(CELLS(group_cells), row, NULL, seq)) < 0 ||
        mark_insert(c, key, T_GROUPS, row_key) < 0 || PyDict_SetItem(c->group_seq, group_id, seq) < 0 ||
        PySet_Add(c->alive, group_id) < 0)
        goto done;
    ok = 0;
done:
    Py_XDECREF(row);
    Py_XDECREF(group_id);
    Py_XDECREF(row_key);
    return ok;
}

static int plan_key_state(Commit *c, PyObject *intent, PyObject *key, PyObject *seq, int key_ok,
                          PyObject *group_ok) {
    PyObject *group_id = attr_of(intent, A_GROUP_ID), *state = NULL, *values = NULL;
    PyObject *row_key = NULL;
    int ok = -1;
    if (group_id == NULL) return -1;
    int write_key = key_ok;
    if (write_key && group_id != Py_None) {
        PyObject *relink = attr_of(intent, A_RELINK);
        if (relink == NULL) goto done;
        write_key = PyObject_IsTrue(relink);
        Py_DECREF(relink);
        if (write_key < 0) goto done;
    }
    if (write_key) { /* spanner_rows.key_state_values(intent, seq) */
        if (group_id == Py_None) {
            PyObject *raw = attr_of(intent, A_STATE);
            if (raw == NULL) goto done;
            state = base64_text(raw);
            Py_DECREF(raw);
            if (state == NULL) goto done;
        } else {
            state = Py_NewRef(Py_None);
        }
        PyObject *cells[3] = {NULL, NULL, NULL};
        static const int names[3] = {A_PROJECT_ID, A_PRIMARY_HASH, A_GENERATION};
        for (int i = 0; i < 3; i++)
            if ((cells[i] = attr_of(intent, names[i])) == NULL) break;
        if (cells[2] != NULL)
            values = PyTuple_Pack(7, cells[0], cells[1], cells[2], seq, group_id, state, commit_timestamp);
        for (int i = 0; i < 3; i++) Py_XDECREF(cells[i]);
        Py_CLEAR(state);
        if (values == NULL) goto done;
        PyObject *row = values;
        values = NULL;
        if (upsert(c, T_KEY_STATES, key, commit_columns[C_KEY_STATE], row) < 0) goto done;
        if (mark_insert(c, key, T_KEY_STATES, key) < 0 || PyDict_SetItem(c->key_seq, key, seq) < 0) goto done;
    }
    if (group_id != Py_None) {
        int go = group_is_ok(group_ok, group_id);
        if (go > 0) go = PySet_Contains(c->alive, group_id);
        if (go < 0) goto done;
        if (go) {
            PyObject *raw = attr_of(intent, A_STATE);
            if (raw == NULL) goto done;
            state = base64_text(raw);
            Py_DECREF(raw);
            if (state == NULL || (row_key = PyTuple_Pack(1, group_id)) == NULL) goto done;
            if (upsert(c, T_GROUPS, row_key, commit_columns[C_GROUP_STATE],
                       PyTuple_Pack(4, group_id, seq, state, commit_timestamp)) < 0 ||
                PyDict_SetItem(c->group_seq, group_id, seq) < 0)
                goto done;
        }
    }
    ok = 0;
done:
    Py_DECREF(group_id);
    Py_XDECREF(state);
    Py_XDECREF(values);
    Py_XDECREF(row_key);
    return ok;
}

static int plan_occurrence(Commit *c, PyObject *intent, PyObject *events) {
    PyObject *group_id = attr_of(intent, A_GROUP_ID), *occurrence = NULL, *id = NULL;
    PyObject *row_key = NULL, *values = NULL, *event_id = NULL, *record = NULL, *event = NULL;
    int ok = -1;
    if (group_id == NULL) return -1;
    int alive = PySet_Contains(c->alive, group_id);
    if (alive <= 0) {
        ok = alive;
        goto done;
    }
    if ((occurrence = attr_of(intent, A_OCCURRENCE)) == NULL ||
        (id = attr_of(occurrence, A_ID)) == NULL ||
        (row_key = PyTuple_Pack(2, group_id, id)) == NULL ||
        (values = row_values(CELLS(occurrence_cells), intent, occurrence, NULL)) == NULL ||
        (event_id = attr_of(occurrence, A_EVENT_ID)) == NULL)
        goto done;
    /* events.pop(event_id, None) */
    record = PyDict_GetItemWithError(events, event_id);
    if (record == NULL) {
        if (PyErr_Occurred()) goto done;
        ok = upsert(c, T_OCCURRENCES, row_key, commit_columns[C_OCCURRENCE], values);
        values = NULL;
        goto done;
    }
    Py_INCREF(record);
    if (PyDict_DelItem(events, event_id) < 0 || (event = attr_of(record, A_EVENT)) == NULL)
        goto done;
    PyObject *inline_values = row_values(CELLS(inline_cells), record, event, NULL);
    if (inline_values == NULL) goto done;
    PyObject *both = PySequence_Concat(values, inline_values);
    Py_DECREF(inline_values);
    Py_SETREF(values, both);
    ok = upsert(c, T_OCCURRENCES, row_key, commit_columns[C_OCCURRENCE_EVENT], values);
    values = NULL;
done:
    Py_DECREF(group_id);
    Py_XDECREF(occurrence);
    Py_XDECREF(id);
    Py_XDECREF(row_key);
    Py_XDECREF(values);
    Py_XDECREF(event_id);
    Py_XDECREF(record);
    Py_XDECREF(event);
    return ok;
}

static int plan_release(Commit *c, PyObject *intent) {
    PyObject *project_id = attr_of(intent, A_PROJECT_ID), *version = NULL, *first_seen = NULL;
    PyObject *release_key = NULL, *known = NULL;
    int ok = -1;
    if (project_id == NULL) return -1;
    if ((version = attr_of(intent, A_VERSION)) == NULL ||
        (release_key = PyTuple_Pack(2, project_id, version)) == NULL)
        goto done;
    known = PyDict_GetItemWithError(c->releases, release_key);
    if (known == NULL && PyErr_Occurred()) goto done;
    Py_XINCREF(known);
    if ((first_seen = attr_of(intent, A_FIRST_SEEN)) == NULL) goto done;
    int earlier = known == NULL || known == Py_None ? 1 : PyObject_RichCompareBool(first_seen, known, Py_LT);
    if (earlier <= 0) {
        ok = earlier;
        goto done;
    }
    if (PyDict_SetItem(c->releases, release_key, first_seen) < 0) goto done;
    PyObject *text = first_seen == Py_None ? Py_NewRef(Py_None)
                                           : PyObject_CallOneArg(commit_functions[F_RFC3339], first_seen);
    if (text == NULL) goto done;
    PyObject *values = PyTuple_Pack(3, project_id, version, text);
    Py_DECREF(text);
    ok = upsert(c, T_RELEASES, release_key, commit_columns[C_RELEASE], values);
done:
    Py_DECREF(project_id);
    Py_XDECREF(version);
    Py_XDECREF(first_seen);
    Py_XDECREF(release_key);
    Py_XDECREF(known);
    return ok;
}

/* ``_record_environment``, ``_record_group_release``, ``_link_hashes`` and ``_insert_activity``. */
static int plan_group_rows(Commit *c, int kind, PyObject *intent, PyObject *group_ok) {
    PyObject *group_id = attr_of(intent, A_GROUP_ID), *other = NULL, *row_key = NULL;
    PyObject *hashes = NULL, *hash;
    int ok = -1, go;
    if (group_id == NULL) return -1;
    if (kind == K_ACTIVITY) { /* the group's guard first, then whether it exists */
        go = group_is_ok(group_ok, group_id);
        if (go > 0) go = PySet_Contains(c->alive, group_id);
    } else {
        go = PySet_Contains(c->alive, group_id);
    }
    if (go <= 0) {
        ok = go;
        goto done;
    }
    switch (kind) {
    case K_ENVIRONMENT:
        if ((go = group_is_ok(group_ok, group_id)) < 0) goto done;
        if (!go) { /* an older write than the stored group: decided against the stored row (spanner_writer) */
            ok = PyList_Append(c->environment_checks, intent);
            goto done;
        }
        if ((other = attr_of(intent, A_ENVIRONMENT)) == NULL ||
            (row_key = PyTuple_Pack(2, group_id, other)) == NULL)
            goto done;
        ok = upsert(c, T_ENVIRONMENTS, row_key, commit_columns[C_ENVIRONMENT],
                    row_values(CELLS(environment_cells), intent, NULL, NULL));
        break;
    case K_GROUP_RELEASE:
        if ((other = attr_of(intent, A_RELEASE)) == NULL ||
            (row_key = PyTuple_Pack(2, group_id, other)) == NULL)
            goto done;
        ok = upsert(c, T_GROUP_RELEASES, row_key, commit_columns[C_GROUP_RELEASE], PyTuple_Pack(2, group_id, other));
        break;
    case K_HASHES:
        if ((other = attr_of(intent, A_PROJECT_ID)) == NULL ||
            (hashes = attr_of(intent, A_HASHES)) == NULL)
            goto done;
        PyObject *iterator = PyObject_GetIter(hashes);
        if (iterator == NULL) goto done;
        ok = 0;
        while (ok == 0 && (hash = PyIter_Next(iterator)) != NULL) {
            PyObject *key = PyTuple_Pack(2, other, hash);
            PyObject *values = key == NULL ? NULL : PyTuple_Pack(3, other, hash, group_id);
            ok = key == NULL ? -1 : upsert(c, T_HASHES, key, commit_columns[C_HASH], values);
            Py_XDECREF(key);
            Py_DECREF(hash);
        }
        Py_DECREF(iterator);
        if (PyErr_Occurred()) ok = -1;
        break;
    default: /* K_ACTIVITY */
        if ((other = attr_of(intent, A_ACTIVITY_ID)) == NULL ||
            (row_key = PyTuple_Pack(2, group_id, other)) == NULL)
            goto done;
        ok = upsert(c, T_ACTIVITIES, row_key, commit_columns[C_ACTIVITY],
                    row_values(CELLS(activity_cells), intent, NULL, NULL));
    }
done:
    Py_DECREF(group_id);
    Py_XDECREF(other);
    Py_XDECREF(row_key);
    Py_XDECREF(hashes);
    return ok;
}

/* The leftover events of a write: their own Events rows. */
static int plan_events(Commit *c, PyObject *events) {
    Py_ssize_t pos = 0;
    PyObject *event_id, *record;
    while (PyDict_Next(events, &pos, &event_id, &record)) {
        Py_INCREF(record);
        PyObject *event = attr_of(record, A_EVENT), *project_id = NULL, *id = NULL;
        PyObject *row_key = NULL;
        int ok = -1;
        if (event != NULL && (project_id = attr_of(event, A_PROJECT_ID)) != NULL &&
            (id = attr_of(event, A_EVENT_ID)) != NULL &&
            (row_key = PyTuple_Pack(2, project_id, id)) != NULL)
            ok = upsert(c, T_EVENTS, row_key, commit_columns[C_EVENT],
                        row_values(CELLS(event_cells), record, event, NULL));
        Py_DECREF(record);
        Py_XDECREF(event);
        Py_XDECREF(project_id);
        Py_XDECREF(id);
        Py_XDECREF(row_key);
        if (ok < 0) return -1;
    }
    return 0;
}

/* The class's index in commit_kinds, or -1. */
static inline int kind_of(PyObject *intent) {
    PyObject *kind = (PyObject *)Py_TYPE(intent);
    for (int k = 0; k < N_KINDS; k++)
        if (commit_kinds[k] == kind) return k;
    return -1;
}

/* The group an intent of commit_kinds names (commit_plan.group_ids: its ``group_id``, an UpsertGroup's row's, a
 * SaveKeyState's unless None): a new reference, or NULL (with an error, or none when it names no group). */
static PyObject *group_of(PyObject *intent) {
    int kind = kind_of(intent);
    if (kind == K_EVENT || kind == K_INDEX || kind == K_RELEASE) return NULL;
    if (kind != K_GROUP) {
        PyObject *group_id = attr_of(intent, A_GROUP_ID);
        if (kind == K_KEY_STATE && group_id == Py_None) Py_CLEAR(group_id);
        return group_id;
    }
    PyObject *row = attr_of(intent, A_ROW);
    if (row == NULL) return NULL;
    PyObject *group_id = attr_of(row, A_GROUP_ID);
    Py_DECREF(row);
    return group_id;
}

/* One write: in C when its intents are all of commit_kinds, else by commit_plan._plan_write. -1 on error. */
static int plan_write(Commit *c, PyObject *write) {
    PyObject *intents = attr_of(write, A_INTENTS);
    PyObject *key = NULL, *seq = NULL, *group_ok = NULL, *events = NULL;
    int ok = -1, guarded = 0;
    if (intents == NULL) return -1;
    int native = PyTuple_CheckExact(intents);
    for (Py_ssize_t i = 0; native && i < PyTuple_GET_SIZE(intents); i++) {
        int k = kind_of(PyTuple_GET_ITEM(intents, i));
        if (k < 0) native = 0;
        else guarded |= guarded_kind[k];
    }
    if (!native) {
        Py_DECREF(intents);
        PyObject *done = PyObject_CallFunctionObjArgs(commit_functions[F_PLAN_WRITE], c->p, write, NULL);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    PyObject *key_text = attr_of(write, A_KEY);
    if (key_text == NULL) goto done;
    key = split_key(key_text);
    Py_DECREF(key_text);
    if (key == NULL || (seq = attr_of(write, A_SEQ)) == NULL) goto done;
    int key_ok = 0;
    if (guarded) {
        /* each guarded row decided once per write, against what is stored before it (plan_commit) */
        if ((key_ok = newer(seq, c->key_seq, key)) < 0 || (group_ok = PyDict_New()) == NULL) goto done;
        int all_ok = 1;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(intents); i++) {
            PyObject *group_id = group_of(PyTuple_GET_ITEM(intents, i));
            if (group_id == NULL) {
                if (PyErr_Occurred()) goto done;
                continue;
            }
            int seen = PyDict_Contains(group_ok, group_id), newer_group = 0;
            if (seen == 0 && key_ok) newer_group = newer(seq, c->group_seq, group_id);
            int failed = seen < 0 || newer_group < 0 ||
                         (!seen && PyDict_SetItem(group_ok, group_id, newer_group ? Py_True : Py_False) < 0);
            Py_DECREF(group_id);
            if (failed) goto done;
            if (!seen) all_ok &= newer_group;
        }
        if ((!key_ok || !all_ok) && one_more_stale(c) < 0) goto done;
    }
    if ((events = PyDict_New()) == NULL) goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(intents); i++) {
        PyObject *intent = PyTuple_GET_ITEM(intents, i);
        int result = 0;
        switch (kind_of(intent)) {
        case K_EVENT: {
            PyObject *event = attr_of(intent, A_EVENT);
            PyObject *event_id = event == NULL ? NULL : attr_of(event, A_EVENT_ID);
            result = event_id == NULL ? -1 : PyDict_SetItem(events, event_id, intent);
            Py_XDECREF(event);
            Py_XDECREF(event_id);
            break;
        }
        case K_INDEX:
            result = PyList_Append(c->indexed, intent);
            break;
        case K_OCCURRENCE:
            result = plan_occurrence(c, intent, events);
            break;
        case K_GROUP:
            result = plan_group(c, intent, key, seq, group_ok);
            break;
        case K_KEY_STATE:
            result = plan_key_state(c, intent, key, seq, key_ok, group_ok);
            break;
        case K_RELEASE:
            result = plan_release(c, intent);
            break;
        default:
            result = plan_group_rows(c, kind_of(intent), intent, group_ok);
        }
        if (result < 0) goto done;
    }
    ok = plan_events(c, events);
done:
    Py_DECREF(intents);
    Py_XDECREF(key);
    Py_XDECREF(seq);
    Py_XDECREF(group_ok);
    Py_XDECREF(events);
    return ok;
}

/* plan_writes(p, writes) -> True | None: ``plan_commit``'s loop over ``writes`` (a list, in plan order) for the
 * Planning ``p``, each write planned whole in C or by commit_plan._plan_write; None, having changed nothing,
 * when not configured or ``p``'s containers are not of the exact types the C reads. */
static PyObject *plan_writes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "plan_writes(p, writes)");
        return NULL;
    }
    if (commit_timestamp == NULL || !PyList_CheckExact(args[1])) Py_RETURN_NONE;
    Commit c = {.p = args[0]};
    PyObject **held[] = {&c.key_seq, &c.group_seq, &c.alive, &c.releases, &c.assumed_new, &c.plan};
    static const int of_p[] = {A_KEY_SEQ, A_GROUP_SEQ, A_ALIVE, A_RELEASES, A_ASSUMED_NEW, A_PLAN};
    PyObject **of_plan_held[] = {&c.upserts, &c.deletes, &c.inserts, &c.indexed, &c.environment_checks};
    static const int of_plan[] = {A_UPSERTS, A_DELETES, A_INSERTS, A_INDEXED, A_ENVIRONMENT_CHECKS};
    PyObject *result = NULL;
    int i;
    for (i = 0; i < 6; i++)
        if ((*held[i] = PyObject_GetAttr(c.p, attribute[of_p[i]])) == NULL) goto done;
    for (i = 0; i < 5; i++)
        if ((*of_plan_held[i] = PyObject_GetAttr(c.plan, attribute[of_plan[i]])) == NULL) goto done;
    if (!PyDict_CheckExact(c.key_seq) || !PyDict_CheckExact(c.group_seq) || !PySet_CheckExact(c.alive) ||
        !PyDict_CheckExact(c.releases) || !PyAnySet_CheckExact(c.assumed_new) || !PyDict_CheckExact(c.upserts) ||
        !PyDict_CheckExact(c.deletes) || !PySet_CheckExact(c.inserts) || !PyList_CheckExact(c.indexed) ||
        !PyList_CheckExact(c.environment_checks)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *writes = Py_NewRef(args[1]);
    for (Py_ssize_t w = 0; w < PyList_GET_SIZE(writes); w++) {
        PyObject *write = Py_NewRef(PyList_GET_ITEM(writes, w));
        int failed = plan_write(&c, write) < 0;
        Py_DECREF(write);
        if (failed) {
            Py_DECREF(writes);
            goto done;
        }
    }
    Py_DECREF(writes);
    result = Py_NewRef(Py_True);
done:
    for (i = 0; i < 6; i++) Py_XDECREF(*held[i]);
    for (i = 0; i < 5; i++) Py_XDECREF(*of_plan_held[i]);
    return result;
}

/* configure_commit(kinds, guarded, columns, tables, functions, commit_timestamp): commit_plan's constants (see
 * above the enums: kinds are RecordEvent, IndexOccurrence, InsertOccurrence, UpsertGroup, SaveKeyState,
 * RecordRelease, RecordEnvironment, RecordGroupRelease, LinkHashes, InsertActivity; ``guarded`` the set
 * _KEY_GUARDED; functions _plan_write, split_group_key, merged_row, rfc3339, msgspec.json.encode, orjson.dumps,
 * spanner_bytes, msgspec.Raw, model.decode_evidence_data, model.decode_evidence_display). */
static PyObject *configure_commit(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "configure_commit(kinds, guarded, columns, tables, functions, commit_timestamp)");
        return NULL;
    }
    Py_ssize_t sizes[] = {N_KINDS, 0, N_COLUMNS, N_TABLES, N_FUNCTIONS};
    for (int i = 0; i < 5; i++)
        if (i != 1 && !(PyTuple_CheckExact(args[i]) && PyTuple_GET_SIZE(args[i]) == sizes[i])) {
            PyErr_SetString(PyExc_ValueError, "_planning.configure_commit: not the constants this build knows");
            return NULL;
        }
    if (!PyAnySet_Check(args[1]) || !PyUnicode_CheckExact(args[5])) {
        PyErr_SetString(PyExc_ValueError, "_planning.configure_commit: not the constants this build knows");
        return NULL;
    }
    for (int k = 0; k < N_KINDS; k++) {
        PyObject *kind = PyTuple_GET_ITEM(args[0], k);
        int in = PySet_Contains(args[1], kind);
        if (in < 0) return NULL;
        if (!PyType_Check(kind)) {
            PyErr_SetString(PyExc_TypeError, "_planning.configure_commit: kinds are classes");
            return NULL;
        }
        guarded_kind[k] = in;
        Py_XSETREF(commit_kinds[k], Py_NewRef(kind));
    }
    for (int i = 0; i < N_COLUMNS; i++) Py_XSETREF(commit_columns[i], Py_NewRef(PyTuple_GET_ITEM(args[2], i)));
    for (int i = 0; i < N_TABLES; i++) Py_XSETREF(table_names[i], Py_NewRef(PyTuple_GET_ITEM(args[3], i)));
    for (int i = 0; i < N_FUNCTIONS; i++) Py_XSETREF(commit_functions[i], Py_NewRef(PyTuple_GET_ITEM(args[4], i)));
    for (int i = 0; i < N_ATTRIBUTES; i++)
        if (attribute[i] == NULL && (attribute[i] = PyUnicode_InternFromString(attribute_names[i])) == NULL)
            return NULL;
    if (zero == NULL && ((zero = PyLong_FromLong(0)) == NULL || (one = PyLong_FromLong(1)) == NULL ||
                         (empty_text = PyUnicode_FromStringAndSize("", 0)) == NULL))
        return NULL;
    Py_XSETREF(commit_timestamp, Py_NewRef(args[5]));
    Py_RETURN_NONE;
}

/* configure_payloads(event_payload): the function that gives an event's JSON text (spanner_rows.event_payload,
 * which takes the text made ahead by keep_payloads); until it is called, or after it is called with None, an
 * event's text is made here (encoded_payload: a carried event's own, else encoded), the same text. */
static PyObject *configure_payloads(PyObject *module, PyObject *function) {
    if (function != Py_None && !PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "_planning.configure_payloads: not a function");
        return NULL;
    }
    Py_XSETREF(payload_function, function == Py_None ? NULL : Py_NewRef(function));
    Py_RETURN_NONE;
}

/* configure(text_key, new_columns, count_columns, update_columns, rfc3339, states, search_prefix):
 * tag_writer's constants; refused (ValueError) when ``states`` are not this file's. */
static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "configure(text_key, new_columns, count_columns, update_columns, rfc3339, "
                                         "states, search_prefix)");
        return NULL;
    }
    PyObject *expected = Py_BuildValue("(iiii)", STORED, COUNTED, MOVED, NEW);
    if (expected == NULL) return NULL;
    int same = PyObject_RichCompareBool(args[5], expected, Py_EQ);
    Py_DECREF(expected);
    if (same < 0) return NULL;
    if (!same || !PyUnicode_CheckExact(args[0]) || !PyUnicode_CheckExact(args[6])) {
        PyErr_SetString(PyExc_ValueError, "_planning.configure: not the constants this build knows");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (!PyTuple_CheckExact(args[1 + i])) {
            PyErr_SetString(PyExc_TypeError, "_planning.configure: columns are tuples");
            return NULL;
        }
        Py_XSETREF(value_columns[i], Py_NewRef(args[1 + i]));
    }
    Py_XSETREF(text_key, Py_NewRef(args[0]));
    Py_XSETREF(search_prefix, Py_NewRef(args[6]));
    Py_XSETREF(rfc3339, Py_NewRef(args[4]));
    Py_RETURN_NONE;
}

/* untrack_rows(rows) -> None: each exact tuple of ``rows`` (an exact list; anything else is left as it is) whose
 * items are all exact str or int is untracked by the collector, as CPython itself untracks such a tuple when a
 * collection first examines it (it can be in no reference cycle). For KnownRows.add_all: the rows a cache keeps
 * then cost no visit of the next collection. Never fails. */
static PyObject *untrack_rows(PyObject *module, PyObject *rows) {
    if (!PyList_CheckExact(rows)) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (plain_tuple(row) && PyObject_GC_IsTracked(row)) PyObject_GC_UnTrack(row);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"missing", (PyCFunction)(void (*)(void))missing, METH_FASTCALL,
     "missing(known, head, items, pairs) -> list | None: the items not in the set known."},
    {"count_tags", (PyCFunction)(void (*)(void))count_tags, METH_FASTCALL,
     "count_tags(values, stored, stored_keys, keys, group_id, tags, start, seen, values_cap, terms_cap) -> int | None."},
    {"mark_tags", (PyCFunction)(void (*)(void))mark_tags, METH_FASTCALL,
     "mark_tags(values, stored, stored_keys, keys, group_id, items, key, start, known, values_cap, terms_cap)."},
    {"write_values", (PyCFunction)(void (*)(void))write_values, METH_FASTCALL,
     "write_values(values, group_id, organization_id, project_id, planned, updated, written, times) -> bool."},
    {"write_costs", (PyCFunction)(void (*)(void))write_costs, METH_FASTCALL,
     "write_costs(writes, fixed, special, known, tag_cells) -> list[int] | None: estimate_mutations of each."},
    {"group_rows", (PyCFunction)(void (*)(void))group_rows, METH_FASTCALL,
     "group_rows(table, planned, new, updated, groups) -> (order, not_updated) | None: mutation_groups' pass."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(text_key, new_columns, count_columns, update_columns, rfc3339, states, search_prefix)."},
    {"index_tags", (PyCFunction)(void (*)(void))index_tags, METH_FASTCALL,
     "index_tags(indexed, start, groups, make_group, planned, stored_occurrences, done, known, full_tag, "
     "values_cap, terms_cap, keys_cap) -> (at, stage, item, counted) | None."},
    {"plan_words", (PyCFunction)(void (*)(void))plan_words, METH_FASTCALL,
     "plan_words(indexed, start, known, upserts, table, columns, words) -> int | None."},
    {"write_keys", (PyCFunction)(void (*)(void))write_keys, METH_FASTCALL,
     "write_keys(keys, group_id, organization_id, project_id, planned, updated, new_columns, update_columns)."},
    {"count_tag_keys", (PyCFunction)count_tag_keys, METH_O, "count_tag_keys(keys) -> dict | None."},
    {"untrack_rows", (PyCFunction)untrack_rows, METH_O, "untrack_rows(rows) -> None: its tuples of str and int untracked."},
    {"value_keys", (PyCFunction)(void (*)(void))value_keys, METH_FASTCALL,
     "value_keys(wanted, start, stored_occurrences, known, out) -> int | None: read_stored's value row keys."},
    {"plan_writes", (PyCFunction)(void (*)(void))plan_writes, METH_FASTCALL,
     "plan_writes(p, writes) -> True | None: plan_commit's loop over the writes, in C where it is sure."},
    {"configure_commit", (PyCFunction)(void (*)(void))configure_commit, METH_FASTCALL,
     "configure_commit(kinds, guarded, columns, tables, functions, commit_timestamp): commit_plan's constants."},
    {"configure_payloads", (PyCFunction)configure_payloads, METH_O,
     "configure_payloads(event_payload | None): the function that gives an event's JSON text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_planning", "A commit's tag planning in C (see the source).", -1, methods,
};

#ifndef SOURCE_SHA256
#define SOURCE_SHA256 ""
#endif

/* SOURCE_SHA256: the hash of this file the build was made from (setup.py), checked by tag_writer. */
PyMODINIT_FUNC PyInit__planning(void) {
    const char *names[3] = {"insert", "update", "insert_or_update"};
    for (int i = 0; i < 3; i++)
        if (kind_names[i] == NULL && (kind_names[i] = PyUnicode_InternFromString(names[i])) == NULL) return NULL;
    if (type_column == NULL && (type_column = PyUnicode_InternFromString("Type")) == NULL) return NULL;
    PyObject **names_of[6] = {&str_intents, &str_hashes, &str_group_id, &str_tags, &str_search_tags, &str_terms};
    const char *attributes[6] = {"intents", "hashes", "group_id", "tags", "search_tags", "terms"};
    for (int i = 0; i < 6; i++)
        if (*names_of[i] == NULL && (*names_of[i] = PyUnicode_InternFromString(attributes[i])) == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
