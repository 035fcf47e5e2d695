/* The tags and search tags of an attached occurrence (transforms/core/engine/tags.py), their common case in C.
 *
 * index_tags(level, event) -> (occurrence_tags(level, event), search_tags(event)) or None. None means "not
 * sure": the event holds something the Python would treat in a way this file does not copy (a field of an
 * unexpected type, a user field of a type JSON does not give, an int too long for str(), ...), and the caller
 * runs the Python functions instead. Whenever a tuple is returned, it is equal to what the Python returns;
 * tests/engine/test_native_tags.py checks that on generated events. Every rule is the module docstring's of
 * tags.py; the comments below only say where this file gives up.
 * configure(...) must be called first (tags.py does, with its own rules and tables): valid_ip(str) -> bool
 * is tags.py's IP rule, asked for any address that is not a plain dotted IPv4 one; event_trees(text) ->
 * EventTrees is model.event_trees, asked for a carried event's JSON trees (in its JSON text: the whole event's
 * trees, decoded without its other fields, which the carried event holds).
 * Optional: without a compiler, or with a build of another source, tags.py runs its Python alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#define UNSURE ((PyObject *)1) /* a helper's "give up" answer; never a real object pointer */

static PyObject *valid_ip = NULL, *event_trees = NULL;
static Py_ssize_t key_max = 0, value_max = 0;

/* Interned names: tag keys, dict keys and the values the rules insert. */
static PyObject *S_environment, *S_server_name, *S_level, *S_transaction, *S_release, *S_dist, *S_user;
static PyObject *S_url, *S_type, *S_yes, *S_no, *S_space;
static PyObject *S_strip;
/* Set by configure from tags.py's tables, so that each rule's data lives in one place:
 * RESERVED_KEYS (a frozenset), _CONTEXT_TAGS (a dict: type -> ((suffix, (field, ...)), ...)), the user's
 * fields with their tag's prefixes (before the colon) and search keys (_USER_FIELDS, _USER_SEARCH_KEYS: four
 * of each, in Sentry's order, the IP address last) and the SDK's search keys (_SDK_SEARCH_KEYS: two). */
static PyObject *reserved = NULL, *context_table = NULL;
static PyObject *user_fields[4], *user_prefixes[4], *user_search[4], *sdk_fields[2], *sdk_search[2];

/* True where a and b (exact str) hold the same text. */
static int same_text(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), n * PyUnicode_KIND(a)) == 0;
}

/* tags.valid_value: 1 to value_max characters, no newline. */
static int valid_value(PyObject *v) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    return n > 0 && n <= value_max && PyUnicode_FindChar(v, '\n', 0, n, 1) == -1;
}

/* tags.valid_key: 1 to key_max characters of [a-zA-Z0-9_.:-]. */
static int valid_key(PyObject *k) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(k);
    if (n == 0 || n > key_max || PyUnicode_KIND(k) != PyUnicode_1BYTE_KIND) return 0;
    const unsigned char *c = PyUnicode_1BYTE_DATA(k);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = c[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '.' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

/* True for what ipaddress.IPv4Address takes as four decimal octets: 1-3 ASCII digits, at most 255, no
 * leading zero. Anything else is left to valid_ip. */
static int plain_ipv4(PyObject *s) {
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) return 0;
    const unsigned char *c = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || c[i] != '.') return 0;
            i++;
        }
        Py_ssize_t start = i;
        int octet = 0;
        while (i < n && c[i] >= '0' && c[i] <= '9' && i - start < 3) octet = octet * 10 + (c[i++] - '0');
        if (i == start || octet > 255 || (i - start > 1 && c[start] == '0')) return 0;
    }
    return i == n;
}

/* tags._user_field: a new str, Py_None (no value: a new reference), UNSURE, or NULL with an exception. */
static PyObject *user_field(PyObject *user, int index) {
    PyObject *v = PyDict_GetItemWithError(user, user_fields[index]);
    if (v == NULL) return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    PyObject *s;
    if (v == Py_None || PyDict_CheckExact(v) || PyList_CheckExact(v) || PyBool_Check(v)) return Py_NewRef(Py_None);
    if (PyUnicode_CheckExact(v)) {
        if (PyUnicode_GET_LENGTH(v) == 0) return Py_NewRef(Py_None);
        s = Py_NewRef(v);
    } else if (PyLong_CheckExact(v) || PyFloat_CheckExact(v)) {
        s = PyObject_Str(v);
        if (s == NULL) { /* an int past str()'s digit limit: the Python raises its own error */
            PyErr_Clear();
            return UNSURE;
        }
    } else {
        return UNSURE;
    }
    if (index == 3 && !plain_ipv4(s)) {
        PyObject *ok = PyObject_CallOneArg(valid_ip, s);
        if (ok == NULL) {
            Py_DECREF(s);
            return NULL;
        }
        int is_ip = PyObject_IsTrue(ok);
        Py_DECREF(ok);
        if (is_ip <= 0) {
            Py_DECREF(s);
            return is_ip < 0 ? NULL : Py_NewRef(Py_None);
        }
    }
    return s;
}

/* tags._context_field: a new str, Py_None (no value: a new reference), UNSURE, or NULL with an exception. */
static PyObject *context_field(PyObject *context, PyObject *field) {
    PyObject *v = PyDict_GetItemWithError(context, field);
    if (v == NULL) return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (v == Py_True) return Py_NewRef(S_yes);
    if (v == Py_False) return Py_NewRef(S_no);
    if (v == Py_None || PyDict_CheckExact(v) || PyList_CheckExact(v)) return Py_NewRef(Py_None);
    if (PyUnicode_CheckExact(v)) return Py_NewRef(PyUnicode_GET_LENGTH(v) ? v : Py_None);
    if (PyLong_CheckExact(v) || PyFloat_CheckExact(v)) {
        PyObject *s = PyObject_Str(v);
        if (s == NULL) PyErr_Clear();
        return s == NULL ? UNSURE : s;
    }
    return UNSURE;
}

/* occurrence_tags' dict: its (key, value) pairs in insertion order, a key set again keeping its place, as a
 * dict does. Keys are exact str, compared by text. An event with more than MAX_TAGS is left to the Python
 * (the linear search is for the usual dozen). Owns a reference to each key and value. */
#define MAX_TAGS 64
typedef struct {
    Py_ssize_t n;
    PyObject *keys[MAX_TAGS], *values[MAX_TAGS];
} TagMap;

static Py_ssize_t map_find(TagMap *m, PyObject *key) {
    for (Py_ssize_t i = 0; i < m->n; i++)
        if (same_text(m->keys[i], key)) return i;
    return -1;
}

/* tags[key] = value: 0 done, 1 unsure (too many tags). */
static int map_set(TagMap *m, PyObject *key, PyObject *value) {
    Py_ssize_t i = map_find(m, key);
    if (i >= 0) {
        Py_SETREF(m->values[i], Py_NewRef(value));
        return 0;
    }
    if (m->n == MAX_TAGS) return 1;
    m->keys[m->n] = Py_NewRef(key);
    m->values[m->n++] = Py_NewRef(value);
    return 0;
}

static void map_clear(TagMap *m) {
    for (Py_ssize_t i = 0; i < m->n; i++) {
        Py_DECREF(m->keys[i]);
        Py_DECREF(m->values[i]);
    }
    m->n = 0;
}

/* One spec of a context, (suffix, fields) as checked by configure: sets tags[key] = value, as context_tags
 * and tags.update do. 0 done (or no tag), 1 unsure, -1 error. */
static int context_spec(TagMap *tags, PyObject *alias, PyObject *context, PyObject *spec) {
    PyObject *suffix = PyTuple_GET_ITEM(spec, 0), *fields = PyTuple_GET_ITEM(spec, 1);
    PyObject *parts[2] = {NULL, NULL};
    int n = (int)PyTuple_GET_SIZE(fields), status = 0, missing = 0;
    for (int i = 0; i < n; i++) {
        parts[i] = context_field(context, PyTuple_GET_ITEM(fields, i));
        if (parts[i] == NULL || parts[i] == UNSURE) {
            status = parts[i] == NULL ? -1 : 1;
            parts[i] = NULL;
            goto done;
        }
        missing |= parts[i] == Py_None;
    }
    if (missing) goto done;
    PyObject *value;
    if (n == 1) {
        value = Py_NewRef(parts[0]);
    } else {
        PyObject *pair = PyTuple_Pack(2, parts[0], parts[1]);
        value = pair ? PyUnicode_Join(S_space, pair) : NULL;
        Py_XDECREF(pair);
    }
    if (value == NULL) {
        status = -1;
        goto done;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(value);
    if (len && (Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(value, 0)) ||
                Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(value, len - 1)))) {
        Py_SETREF(value, PyObject_CallMethodNoArgs(value, S_strip));
        if (value == NULL) {
            status = -1;
            goto done;
        }
        len = PyUnicode_GET_LENGTH(value);
    }
    if (len) {
        PyObject *key = PyUnicode_GET_LENGTH(suffix) ? PyUnicode_FromFormat("%U.%U", alias, suffix)
                                                      : Py_NewRef(alias);
        status = key == NULL ? -1 : map_set(tags, key, value);
        Py_XDECREF(key);
    }
    Py_DECREF(value);
done:
    Py_XDECREF(parts[0]);
    Py_XDECREF(parts[1]);
    return status;
}

/* tags.context_tags, set into tags. 0 done, 1 unsure, -1 error. */
static int context_tags(TagMap *tags, PyObject *contexts) {
    Py_ssize_t pos = 0;
    PyObject *alias, *context;
    while (PyDict_Next(contexts, &pos, &alias, &context)) {
        if (!PyUnicode_CheckExact(alias)) return 1;
        if (!PyDict_CheckExact(context)) continue;
        PyObject *kind = PyDict_GetItemWithError(context, S_type);
        if (kind == NULL) {
            if (PyErr_Occurred()) return -1;
            kind = alias;
        }
        if (!PyUnicode_CheckExact(kind)) continue;
        PyObject *specs = PyDict_GetItemWithError(context_table, kind); /* an exact str: no Python runs */
        if (specs == NULL) {
            if (PyErr_Occurred()) return -1;
            continue;
        }
        /* the table and the context are held while str() of a number runs */
        Py_INCREF(specs);
        Py_INCREF(alias);
        Py_INCREF(context);
        int status = 0;
        for (Py_ssize_t s = 0; s < PyTuple_GET_SIZE(specs) && status == 0; s++)
            status = context_spec(tags, alias, context, PyTuple_GET_ITEM(specs, s));
        Py_DECREF(specs);
        Py_DECREF(alias);
        Py_DECREF(context);
        if (status) return status;
    }
    return 0;
}

/* Where Event keeps the fields read (configure finds their slots): index_tags reads them straight from an
 * Event (and declines any other type), as its attributes' descriptors do. */
enum { F_TAGS, F_ENVIRONMENT, F_SERVER_NAME, F_TRANSACTION, F_RELEASE, F_DIST, F_USER, F_REQUEST, F_CONTEXTS,
       F_SDK, F_STORED_JSON, F_EVENT_ID, F_PROJECT_ID, F_PLATFORM, F_TIMESTAMP, F_RECEIVED, F_TRACE_ID, N_FIELDS };
static const char *FIELD_NAMES[N_FIELDS] = {"tags", "environment", "server_name", "transaction", "release",
                                            "dist", "user", "request", "contexts", "sdk", "stored_json",
                                            "event_id", "project_id", "platform", "timestamp", "received",
                                            "trace_id"};
static PyTypeObject *event_type = NULL;
static Py_ssize_t field_offsets[N_FIELDS];
/* model.EventTrees, and where it keeps the trees (at the trees' indices of FIELD_NAMES; the others unused). */
static const int TREE_FIELDS[] = {F_TAGS, F_USER, F_REQUEST, F_CONTEXTS, F_SDK};
#define N_TREES ((int)(sizeof(TREE_FIELDS) / sizeof(TREE_FIELDS[0])))
static PyTypeObject *trees_type = NULL;
static Py_ssize_t tree_offsets[N_FIELDS];

/* A field of the event, or of its trees (an EventTrees, or NULL: the event's own) where it is one of them: a
 * new reference, or NULL where it is unset (the attribute would raise). */
static PyObject *field_in(PyObject *event, PyObject *trees, int index) {
    PyObject *v = trees == NULL ? *(PyObject **)((char *)event + field_offsets[index])
                                : *(PyObject **)((char *)trees + tree_offsets[index]);
    Py_XINCREF(v);
    return v;
}

/* Python's truth of a field read (None, an exact str or an exact dict). */
#define TRUTHY(v) \
    ((v) != Py_None && (PyUnicode_CheckExact(v) ? PyUnicode_GET_LENGTH(v) > 0 : PyDict_GET_SIZE(v) > 0))

/* The filter at the end of occurrence_tags: the valid (key, value) pairs of tags, in order, as a tuple. */
static PyObject *valid_pairs(TagMap *tags) {
    char keep[MAX_TAGS];
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < tags->n; i++)
        kept += keep[i] = valid_value(tags->values[i]) && valid_key(tags->keys[i]);
    PyObject *out = PyTuple_New(kept);
    for (Py_ssize_t i = 0, at = 0; out != NULL && i < tags->n; i++) {
        if (!keep[i]) continue;
        PyObject *pair = PyTuple_Pack(2, tags->keys[i], tags->values[i]);
        if (pair == NULL) Py_CLEAR(out);
        else PyTuple_SET_ITEM(out, at++, pair);
    }
    return out;
}

/* Appends (key, value) to found when value is a valid tag value. 0 or -1. */
static int add_search(PyObject *found, PyObject *key, PyObject *value) {
    if (!valid_value(value)) return 0;
    PyObject *pair = PyTuple_Pack(2, key, value);
    int status = pair == NULL ? -1 : PyList_Append(found, pair);
    Py_XDECREF(pair);
    return status;
}

/* The fields of the event both functions read, each a new reference (or NULL), released by release_fields. */
typedef struct {
    PyObject *etags, *environment, *server_name, *transaction, *release, *dist, *user, *request, *contexts, *sdk;
    PyObject *user_values[4];
} Fields;

static void release_fields(Fields *f) {
    PyObject **all[] = {&f->etags, &f->environment, &f->server_name, &f->transaction, &f->release, &f->dist,
                        &f->user, &f->request, &f->contexts, &f->sdk, &f->user_values[0], &f->user_values[1],
                        &f->user_values[2], &f->user_values[3]};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (*all[i] != UNSURE) Py_XDECREF(*all[i]);
        *all[i] = NULL;
    }
}

/* Reads the event's fields into f: 0 done, 1 unsure (a field unset or of a type decoding never gives),
 * -1 error. */
static int read_fields(PyObject *event, PyObject *trees, Fields *f) {
    PyObject **texts[] = {&f->environment, &f->server_name, &f->transaction, &f->release, &f->dist};
    int text_fields[] = {F_ENVIRONMENT, F_SERVER_NAME, F_TRANSACTION, F_RELEASE, F_DIST};
    for (int i = 0; i < 5; i++) {
        PyObject *v = *texts[i] = field_in(event, NULL, text_fields[i]);
        if (v == NULL || (v != Py_None && !PyUnicode_CheckExact(v))) return 1;
    }
    PyObject **dicts[] = {&f->user, &f->request, &f->contexts, &f->sdk};
    int dict_fields[] = {F_USER, F_REQUEST, F_CONTEXTS, F_SDK};
    for (int i = 0; i < 4; i++) {
        PyObject *v = *dicts[i] = field_in(event, trees, dict_fields[i]);
        if (v == NULL || (v != Py_None && !PyDict_CheckExact(v))) return 1;
    }
    f->etags = field_in(event, trees, F_TAGS);
    if (f->etags == NULL || !PyTuple_CheckExact(f->etags)) return 1;
    if (TRUTHY(f->user)) {
        for (int i = 0; i < 4; i++) {
            f->user_values[i] = user_field(f->user, i);
            PyObject *v = f->user_values[i];
            if (v == NULL || v == UNSURE) return v == NULL ? -1 : 1;
        }
    }
    return 0;
}

/* occurrence_tags' dict before its filter: 0 done, 1 unsure, -1 error. */
static int gather_tags(TagMap *tags, PyObject *level, Fields *f) {
    PyObject *environment = f->environment; /* borrowed: from f or from the event's tags tuple */
    Py_ssize_t n = PyTuple_GET_SIZE(f->etags);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(f->etags, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) return 1;
        PyObject *key = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(value)) return 1;
        if (same_text(key, S_environment)) {
            if (environment == Py_None && PyUnicode_GET_LENGTH(value)) environment = value;
            continue;
        }
        int skip = PySet_Contains(reserved, key);
        if (skip < 0) return -1;
        if (!skip && map_find(tags, key) < 0 && map_set(tags, key, value)) return 1;
    }
    if (f->server_name != Py_None && map_set(tags, S_server_name, f->server_name)) return 1;
    if (map_set(tags, S_level, level)) return 1;
    if (TRUTHY(environment) && map_set(tags, S_environment, environment)) return 1;
    if (TRUTHY(f->transaction) && map_set(tags, S_transaction, f->transaction)) return 1;
    if (TRUTHY(f->release)) {
        if (map_set(tags, S_release, f->release)) return 1;
        if (TRUTHY(f->dist) && map_set(tags, S_dist, f->dist)) return 1;
    }
    if (TRUTHY(f->user)) {
        for (int i = 0; i < 4; i++) {
            if (f->user_values[i] == Py_None) continue;
            PyObject *user = PyUnicode_FromFormat("%U:%U", user_prefixes[i], f->user_values[i]);
            int status = user == NULL ? -1 : map_set(tags, S_user, user);
            Py_XDECREF(user);
            if (status) return status;
            break;
        }
    }
    if (TRUTHY(f->request)) {
        PyObject *url = map_find(tags, S_url) >= 0 ? NULL : PyDict_GetItemWithError(f->request, S_url);
        if (url == NULL && PyErr_Occurred()) return -1;
        if (url != NULL && PyUnicode_CheckExact(url) && PyUnicode_GET_LENGTH(url)) {
            Py_ssize_t len = PyUnicode_GET_LENGTH(url);
            Py_ssize_t hash = PyUnicode_FindChar(url, '#', 0, len, 1);
            Py_ssize_t end = hash >= 0 ? hash : len;
            Py_ssize_t query = PyUnicode_FindChar(url, '?', 0, end, 1);
            if (hash < -1 || query < -1) return -1;
            PyObject *cut = PyUnicode_Substring(url, 0, query >= 0 ? query : end);
            int status = cut == NULL ? -1 : map_set(tags, S_url, cut);
            Py_XDECREF(cut);
            if (status) return status;
        }
    }
    if (TRUTHY(f->contexts)) return context_tags(tags, f->contexts);
    return 0;
}

/* search_tags as a tuple, from the fields read. */
static PyObject *search_pairs(Fields *f) {
    PyObject *found = PyList_New(0);
    if (found == NULL) return NULL;
    if (TRUTHY(f->user)) {
        for (int i = 0; i < 4; i++) {
            if (f->user_values[i] != Py_None && add_search(found, user_search[i], f->user_values[i]) < 0)
                goto fail;
        }
    }
    if (TRUTHY(f->sdk)) {
        for (int i = 0; i < 2; i++) {
            PyObject *v = PyDict_GetItemWithError(f->sdk, sdk_fields[i]);
            if (v == NULL && PyErr_Occurred()) goto fail;
            if (v != NULL && PyUnicode_CheckExact(v) && add_search(found, sdk_search[i], v) < 0) goto fail;
        }
    }
    Py_SETREF(found, PyList_AsTuple(found));
    return found;
fail:
    Py_DECREF(found);
    return NULL;
}

/* The event's fields the tags do not read of the exact types decoding gives them (str, int, None). */
static int decodable_fields(PyObject *event) {
    PyObject *texts[] = {field_in(event, NULL, F_EVENT_ID), field_in(event, NULL, F_PLATFORM),
                         field_in(event, NULL, F_TRACE_ID)};
    PyObject *ints[] = {field_in(event, NULL, F_PROJECT_ID), field_in(event, NULL, F_TIMESTAMP),
                        field_in(event, NULL, F_RECEIVED)};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        if (texts[i] == NULL || !(PyUnicode_CheckExact(texts[i]) || (i == 2 && texts[i] == Py_None))) ok = 0;
        if (ints[i] == NULL || !(PyLong_CheckExact(ints[i]) || (i == 2 && ints[i] == Py_None))) ok = 0;
        Py_XDECREF(texts[i]);
        Py_XDECREF(ints[i]);
    }
    return ok;
}

static PyObject *index_tags(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "index_tags(level, event) takes 2 arguments");
        return NULL;
    }
    if (context_table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_tags.index_tags: configure was not called");
        return NULL;
    }
    PyObject *level = args[0], *result = NULL, *search = NULL;
    PyObject *event = args[1], *trees = NULL;
    if (!PyUnicode_CheckExact(level) || Py_TYPE(event) != event_type) Py_RETURN_NONE;
    /* A carried event (model.Event.stored_json set): its trees are those of its whole event, in its text
     * (event_trees); its other fields are the whole event's. */
    PyObject *text = *(PyObject **)((char *)event + field_offsets[F_STORED_JSON]);
    if (text == NULL) Py_RETURN_NONE;
    if (text != Py_None) {
        /* The fields not read here of the types decoding gives, so that its text decodes to an Event where its
         * trees decode (else full_event raises: the Python decides). */
        if (!PyUnicode_CheckExact(text) || !decodable_fields(event)) Py_RETURN_NONE;
        trees = PyObject_CallOneArg(event_trees, text);
        if (trees == NULL) PyErr_Clear(); /* a text that is no event: the Python raises its error */
        if (trees == NULL || Py_TYPE(trees) != trees_type) {
            Py_XDECREF(trees);
            Py_RETURN_NONE;
        }
    }
    Fields f = {0};
    TagMap tags;
    tags.n = 0;
    int status = read_fields(event, trees, &f);
    if (status == 0) status = gather_tags(&tags, level, &f);
    if (status == 0) {
        PyObject *pairs = valid_pairs(&tags);
        search = pairs ? search_pairs(&f) : NULL;
        result = search ? PyTuple_Pack(2, pairs, search) : NULL;
        Py_XDECREF(pairs);
        Py_XDECREF(search);
    } else if (status > 0) {
        result = Py_NewRef(Py_None);
    }
    map_clear(&tags);
    release_fields(&f);
    Py_XDECREF(trees);
    return result;
}

/* True where pairs is a tuple of n 2-tuples of str; with first and second, takes their items (new references). */
static int str_pairs(PyObject *pairs, Py_ssize_t n, PyObject **first, PyObject **second) {
    if (!PyTuple_CheckExact(pairs) || PyTuple_GET_SIZE(pairs) != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0)) || !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 1)))
            return 0;
        if (first != NULL) {
            Py_XSETREF(first[i], Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
            Py_XSETREF(second[i], Py_NewRef(PyTuple_GET_ITEM(pair, 1)));
        }
    }
    return 1;
}

/* True where table is a dict of str -> tuple of (str suffix, tuple of 1 or 2 str fields). */
static int valid_context_table(PyObject *table) {
    if (!PyDict_CheckExact(table)) return 0;
    Py_ssize_t pos = 0;
    PyObject *kind, *specs;
    while (PyDict_Next(table, &pos, &kind, &specs)) {
        if (!PyUnicode_CheckExact(kind) || !PyTuple_CheckExact(specs)) return 0;
        for (Py_ssize_t s = 0; s < PyTuple_GET_SIZE(specs); s++) {
            PyObject *spec = PyTuple_GET_ITEM(specs, s), *fields;
            if (!PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 2 ||
                !PyUnicode_CheckExact(PyTuple_GET_ITEM(spec, 0)))
                return 0;
            fields = PyTuple_GET_ITEM(spec, 1);
            if (!PyTuple_CheckExact(fields) || PyTuple_GET_SIZE(fields) < 1 || PyTuple_GET_SIZE(fields) > 2)
                return 0;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++)
                if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(fields, i))) return 0;
        }
    }
    return 1;
}

/* The slots of a type's fields (msgspec keeps a struct's fields in member slots, read by descriptors of
 * this kind), at their indices of FIELD_NAMES: those of fields (n indices), or all n of FIELD_NAMES where fields
 * is NULL. 1 found, 0 not of that shape, -1 error. */
static int find_offsets(PyObject *type, Py_ssize_t *offsets, const int *fields, int n) {
    if (!PyType_Check(type)) return 0;
    for (int j = 0; j < n; j++) {
        int i = fields == NULL ? j : fields[j];
        PyObject *descr = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, FIELD_NAMES[i]);
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) return 0;
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX) return 0;
        offsets[i] = member->offset;
    }
    return 1;
}

/* configure(event_type, valid_ip, key_max, value_max, reserved, context_table, user_fields, user_search,
 * sdk_search, trees_type, event_trees): tags.py's Event, rules and tables (see their comment at the top), and
 * model.EventTrees and model.event_trees; index_tags refuses to run before. */
static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *type, *ip, *keys, *table, *users, *searches, *sdks, *ttype, *trees;
    Py_ssize_t kmax, vmax, offsets[N_FIELDS], toffsets[N_FIELDS] = {0};
    if (!PyArg_ParseTuple(args, "OOnnOOOOOOO", &type, &ip, &kmax, &vmax, &keys, &table, &users, &searches, &sdks,
                          &ttype, &trees))
        return NULL;
    /* everything checked before anything is taken: a refused call leaves the previous tables */
    if (!find_offsets(type, offsets, NULL, N_FIELDS) || !find_offsets(ttype, toffsets, TREE_FIELDS, N_TREES) ||
        !PyCallable_Check(ip) || !PyCallable_Check(trees) || !PyFrozenSet_CheckExact(keys) ||
        !valid_context_table(table) || !str_pairs(users, 4, NULL, NULL) || !str_pairs(searches, 4, NULL, NULL) ||
        !str_pairs(sdks, 2, NULL, NULL) ||
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(PyTuple_GET_ITEM(users, 3), 0), "ip_address") != 0) {
        PyErr_SetString(PyExc_ValueError, "_tags.configure: tables not of the shape tags.py gives");
        return NULL;
    }
    /* The user's values are read once, in user_fields' order, for both tags: the search keys' fields must be
     * the same fields in the same order (else a search key would get another field's value). */
    for (Py_ssize_t i = 0; i < 4; i++) {
        if (PyUnicode_Compare(PyTuple_GET_ITEM(PyTuple_GET_ITEM(users, i), 0),
                              PyTuple_GET_ITEM(PyTuple_GET_ITEM(searches, i), 0)) != 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "_tags.configure: user_search's fields are not user_fields'");
            return NULL;
        }
    }
    PyObject *search_fields[4] = {NULL, NULL, NULL, NULL};
    str_pairs(users, 4, user_fields, user_prefixes);
    str_pairs(searches, 4, search_fields, user_search);
    str_pairs(sdks, 2, sdk_fields, sdk_search);
    for (int i = 0; i < 4; i++) Py_DECREF(search_fields[i]);
    memcpy(field_offsets, offsets, sizeof(offsets));
    memcpy(tree_offsets, toffsets, sizeof(toffsets));
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(trees_type, (PyTypeObject *)Py_NewRef(ttype));
    Py_XSETREF(reserved, Py_NewRef(keys));
    Py_XSETREF(context_table, Py_NewRef(table));
    Py_XSETREF(valid_ip, Py_NewRef(ip));
    Py_XSETREF(event_trees, Py_NewRef(trees));
    key_max = kmax;
    value_max = vmax;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"index_tags", (PyCFunction)(void (*)(void))index_tags, METH_FASTCALL,
     "index_tags(level, event) -> (occurrence_tags, search_tags), or None where the Python must decide."},
    {"configure", configure, METH_VARARGS,
     "configure(event_type, valid_ip, key_max, value_max, reserved, context_table, user_fields, "
     "user_search, sdk_search, trees_type, event_trees): tags.py's Event, rules and tables, and "
     "model.EventTrees and model.event_trees."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tags", "An attached occurrence's tags in C (see the source).", -1, methods,
};

/* SOURCE_SHA256 (defined by setup.py): the hash of this file the build was made from, checked by
 * transforms/core/extensions.py. */
PyMODINIT_FUNC PyInit__tags(void) {
    PyObject **names[] = {&S_environment, &S_server_name, &S_level, &S_transaction, &S_release, &S_dist,
                          &S_user, &S_url, &S_type, &S_yes, &S_no, &S_space, &S_strip};
    const char *texts[] = {"environment", "server_name", "level", "transaction", "release", "dist",
                           "user", "url", "type", "yes", "no", " ", "strip"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i] = PyUnicode_InternFromString(texts[i])) == NULL) return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
