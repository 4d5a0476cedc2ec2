"""Hash tables: HASHTABLE, HASHTABLE_IMPORT, HASHTABLE_FIND, HASHTABLE_SIZE, and the older
HASHTABLE_LOOKUP.

The first four are TF's static lookup tables (tf.lookup.StaticHashTable) as LiteRT's builtin
resolver runs them: int64 -> string or string -> int64 (HashtableOptions key_dtype/value_dtype,
TensorType codes). State, as LiteRT keeps it per interpreter:

* HASHTABLE creates the table `table_id` if this interpreter has none yet (a second HASHTABLE
  with the same id, whatever its dtypes, reuses the first) and outputs a RESOURCE handle [1]
  holding the id. Tables live in the interpreter's `RunContext` (ops/control.py explains the
  context), shared by all its subgraphs; reset_all_variables leaves them alone, as LiteRT does.
* HASHTABLE_IMPORT fills an empty table once: later imports are no-ops (the table is static).
  With duplicate keys the first occurrence wins.
* HASHTABLE_FIND maps each key to its value or to element 0 of the default tensor; the output
  has the keys' shape. Finding in a table nobody imported into is LiteRT's invoke error.
* HASHTABLE_SIZE: the number of entries (0 before the import), int64 [1].

Checks LiteRT makes at prepare (handle tensors typed RESOURCE and shaped [1], the dtype pairs)
are made by `bind`/`infer`; the ones it makes at invoke (the table exists, its key/value types
match, it was imported) by the reference kernels, so both raise at the same stage as LiteRT.

HASHTABLE_LOOKUP (TFLite's own, older op): int32 lookups binary-searched in an int32 key vector
(meant to be sorted), selecting rows of `values` (any type; strings 1-D); misses give zero rows
(empty strings) and `hits` (uint8) says which were found. The search probes the midpoints the
C library's bsearch probes, so unsorted keys give LiteRT's answers too. LiteRT's comparator is
a plain int32 subtraction, which would wrap for far-apart values, but the built library
compares exactly (measured: INT32_MAX is not found among keys [INT32_MAX, -1] with a wrapping
compare, and is with an exact one, as LiteRT does) — we compare exactly.

Strings are object arrays of `bytes` at run time (runtime.executable.storage_dtype).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.ir.model import TENSOR_TYPE_CODES, TENSOR_TYPE_NAMES
from tflite_jit.ops.base import Cost, InferCtx, OpError
from tflite_jit.ops.common import define
from tflite_jit.ops.control import ContextAttrs, ContextOpDef, attach_context, run_context

_INT64 = TENSOR_TYPE_CODES["INT64"]
_STRING = TENSOR_TYPE_CODES["STRING"]
_PAIRS = ((_INT64, _STRING), (_STRING, _INT64))


@dataclass
class _Table:
    key_type: int  # TensorType code
    value_type: int
    initialized: bool = False
    # string keys: {bytes: value}; int64 keys: sorted unique keys and their values
    mapping: dict[bytes, Any] = field(default_factory=dict)
    keys: np.ndarray | None = None
    values: np.ndarray | None = None

    def size(self) -> int:
        if not self.initialized:
            return 0
        return len(self.mapping) if self.key_type == _STRING else int(self.keys.size)


def _tables(a: ContextAttrs, op: str) -> dict[int, _Table]:
    rc = run_context(a, op)
    # One dict of tables per interpreter, kept on its RunContext beside the resource variables.
    tables = getattr(rc, "hashtables", None)
    if tables is None:
        tables = rc.hashtables = {}
    return tables


def _type_name(code: int) -> str:
    return TENSOR_TYPE_NAMES.get(int(code), f"type code {code}")


def _code_of(dtype: Any) -> int | None:
    """TensorType code of an inferred dtype, for the two types tables hold (None otherwise)."""
    d = np.dtype(dtype)
    if d.kind in "SO":
        return _STRING
    if d == np.int64:
        return _INT64
    return None


def _dtype_name(dtype: Any) -> str:
    d = np.dtype(dtype)
    return "STRING" if d.kind in "SO" else d.name.upper()


def _check_pair(op: str, key: Any, value: Any, what: str) -> None:
    k, v = _code_of(key), _code_of(value)
    if (k, v) not in _PAIRS:
        raise OpError(f"{op}: keys are {_dtype_name(key)} and {what} {_dtype_name(value)}; hash tables "
                      "map INT64 keys to STRING values or STRING keys to INT64 values")


def _bind_arity(n_in: int, n_out: int, handle_in: bool) -> Any:
    """A bind hook checking the node's arity and its RESOURCE handle tensor (LiteRT's prepare
    rejects an INT32 handle in this version; the handle's value is only meaningful as one)."""

    def bind(a: ContextAttrs, ins: list, outs: list) -> ContextAttrs:
        op = a.options.get("_op", "")
        if len(ins) != n_in or len(outs) != n_out:
            raise OpError(f"{op} takes {n_in} inputs and {n_out} outputs, the node has {len(ins)} "
                          f"and {len(outs)}")
        t = ins[0] if handle_in else outs[0]
        where = "input 0" if handle_in else "output 0"
        if t is None or t.type_name != "RESOURCE":
            got = "omitted" if t is None else t.type_name
            raise OpError(f"{op}: {where} ('{getattr(t, 'name', '')}') must be a RESOURCE tensor (the "
                          f"hash table handle), it is {got}")
        return a

    return bind


def _check_handle(ctx: InferCtx) -> None:
    s = ctx.shapes[0]
    if s is None or tuple(s) != (1,):
        raise OpError(f"{ctx.op_name}: the handle '{ctx.name(0)}' must have shape [1], it has "
                      f"{None if s is None else list(s)}")


def _table_of(a: ContextAttrs, handle: Any, op: str) -> _Table:
    h = np.asarray(handle).reshape(-1)
    if h.size != 1:
        raise OpError(f"{op}: the handle must hold one table id, it holds {h.size} values")
    tid = int(h[0])
    table = _tables(a, op).get(tid)
    if table is None:
        raise OpError(f"{op}: no hash table with id {tid} exists in this interpreter (the handle must "
                      "come from a HASHTABLE op that ran before)")
    return table


def _check_types(table: _Table, keys: np.ndarray, values: np.ndarray, op: str, what: str) -> None:
    k, v = _code_of(keys.dtype), _code_of(values.dtype)
    if k != table.key_type:
        raise OpError(f"{op}: the keys are {_dtype_name(keys.dtype)} but the table's keys are "
                      f"{_type_name(table.key_type)}")
    if v != table.value_type:
        raise OpError(f"{op}: the {what} are {_dtype_name(values.dtype)} but the table's values are "
                      f"{_type_name(table.value_type)}")


def _small_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    n = sum(int(np.prod(s)) for s in (*in_shapes, *out_shapes) if s is not None)
    return Cost(flops=float(n), bytes=8.0 * n)


# ---- HASHTABLE -----------------------------------------------------------------------------------

def _hashtable_parse(options: dict[str, Any]) -> ContextAttrs:
    o = {**options, "_op": "HASHTABLE"}
    kd, vd = int(o.get("key_dtype", 0)), int(o.get("value_dtype", 0))
    if (kd, vd) not in _PAIRS:
        raise OpError(f"HASHTABLE: key_dtype {_type_name(kd)} and value_dtype {_type_name(vd)} are not "
                      "supported; hash tables map INT64 keys to STRING values or STRING keys to INT64 "
                      "values")
    return ContextAttrs(o)


def _hashtable_infer(ctx: InferCtx) -> list:
    return [((1,), np.dtype(np.int32))]  # RESOURCE handles hold the int32 table id


def _hashtable_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    tid = int(a.options.get("table_id", 0))
    tables = _tables(a, "HASHTABLE")
    if tid not in tables:  # an existing table keeps its types, as LiteRT's CreateIfNotAvailable
        tables[tid] = _Table(int(a.options["key_dtype"]), int(a.options["value_dtype"]))
    return [np.array([tid], np.int32)]


# ---- HASHTABLE_IMPORT ----------------------------------------------------------------------------

def _import_infer(ctx: InferCtx) -> list:
    _check_handle(ctx)
    _check_pair("HASHTABLE_IMPORT", ctx.dtypes[1], ctx.dtypes[2], "values")
    if tuple(ctx.shapes[1]) != tuple(ctx.shapes[2]):
        raise OpError(f"HASHTABLE_IMPORT: keys '{ctx.name(1)}' {list(ctx.shapes[1])} and values "
                      f"'{ctx.name(2)}' {list(ctx.shapes[2])} must have the same shape")
    return []


def _import_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    table = _table_of(a, inputs[0], "HASHTABLE_IMPORT")
    keys, values = np.asarray(inputs[1]), np.asarray(inputs[2])
    _check_types(table, keys, values, "HASHTABLE_IMPORT", "values")
    if table.initialized:
        return []  # a static table is filled once; later imports do nothing (as in LiteRT)
    keys, values = keys.reshape(-1), values.reshape(-1)
    if table.key_type == _STRING:
        mapping: dict[bytes, Any] = {}
        for k, v in zip(keys.tolist(), values.tolist()):
            mapping.setdefault(k, v)  # the first occurrence of a duplicate key wins
        table.mapping = mapping
    else:
        uniq, first = np.unique(keys.astype(np.int64), return_index=True)  # first occurrences
        table.keys = uniq
        table.values = np.array(values[first], dtype=object)
    table.initialized = True
    return []


# ---- HASHTABLE_FIND ------------------------------------------------------------------------------

def _find_infer(ctx: InferCtx) -> list:
    _check_handle(ctx)
    _check_pair("HASHTABLE_FIND", ctx.dtypes[1], ctx.dtypes[2], "the default value is")
    if int(np.prod(ctx.shapes[2])) < 1:
        # LiteRT reads element 0 of the default tensor unchecked (a crash when it is empty).
        raise OpError(f"HASHTABLE_FIND: the default value '{ctx.name(2)}' is empty; give it one element")
    return [(tuple(ctx.shapes[1]), np.dtype(ctx.dtypes[2]))]


def _find_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    table = _table_of(a, inputs[0], "HASHTABLE_FIND")
    keys, default = np.asarray(inputs[1]), np.asarray(inputs[2])
    _check_types(table, keys, default, "HASHTABLE_FIND", "default values")
    if default.size < 1:
        raise OpError("HASHTABLE_FIND: the default value is empty; give it one element")
    if not table.initialized:
        raise OpError("HASHTABLE_FIND: hashtable need to be initialized before using: no "
                      "HASHTABLE_IMPORT ran on this table before the lookup")
    d = default.reshape(-1)[0]
    flat = keys.reshape(-1)
    if table.key_type == _STRING:
        m = table.mapping
        out = np.fromiter((m.get(k, d) for k in flat.tolist()), dtype=np.int64, count=flat.size)
    else:
        out = np.empty(flat.size, dtype=object)
        out[:] = d
        if table.keys.size and flat.size:
            pos = np.minimum(np.searchsorted(table.keys, flat), table.keys.size - 1)
            hit = table.keys[pos] == flat
            out[hit] = table.values[pos[hit]]
    return [out.reshape(keys.shape)]


# ---- HASHTABLE_SIZE ------------------------------------------------------------------------------

def _size_infer(ctx: InferCtx) -> list:
    _check_handle(ctx)
    return [((1,), np.dtype(np.int64))]


def _size_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    return [np.array([_table_of(a, inputs[0], "HASHTABLE_SIZE").size()], np.int64)]


def _parse_named(name: str) -> Any:
    """Options plus the op's name, for the bind hooks' messages."""
    return lambda options: ContextAttrs({**options, "_op": name})


for _name, _parse, _infer, _run, _bind in (
        ("HASHTABLE", _hashtable_parse, _hashtable_infer, _hashtable_run, _bind_arity(0, 1, False)),
        ("HASHTABLE_IMPORT", _parse_named("HASHTABLE_IMPORT"), _import_infer, _import_run, _bind_arity(3, 0, True)),
        ("HASHTABLE_FIND", _parse_named("HASHTABLE_FIND"), _find_infer, _find_run, _bind_arity(3, 1, True)),
        ("HASHTABLE_SIZE", _parse_named("HASHTABLE_SIZE"), _size_infer, _size_run, _bind_arity(1, 1, True))):
    define(_name, parse=_parse, infer=_infer, reference=_run, cost=_small_cost, bind=_bind, opdef=ContextOpDef,
           attach=attach_context)


# ---- HASHTABLE_LOOKUP ----------------------------------------------------------------------------

def _lookup_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 3 or any(s is None for s in ctx.shapes):
        raise OpError(f"HASHTABLE_LOOKUP takes 3 inputs (lookups, keys, values), got {len(ctx.shapes)}")
    lk, keys, values = (tuple(s) for s in ctx.shapes)
    for i, s in ((0, lk), (1, keys)):
        if len(s) != 1 or np.dtype(ctx.dtypes[i]) != np.int32:
            raise OpError(f"HASHTABLE_LOOKUP: input {i} '{ctx.name(i)}' must be a 1-D INT32 tensor, it is "
                          f"{_dtype_name(ctx.dtypes[i])} of shape {list(s)}")
    if len(values) < 1:
        raise OpError(f"HASHTABLE_LOOKUP: the values '{ctx.name(2)}' must have at least 1 dimension")
    if keys[0] != values[0]:
        raise OpError(f"HASHTABLE_LOOKUP: {keys[0]} keys but {values[0]} value rows; each key needs one "
                      "row of values")
    vdt = np.dtype(ctx.dtypes[2])
    if vdt.kind == "S" and len(values) != 1:
        raise OpError(f"HASHTABLE_LOOKUP: string values '{ctx.name(2)}' must be 1-D, got shape "
                      f"{list(values)}")
    return [((lk[0], *values[1:]), vdt), ((lk[0],), np.dtype(np.uint8))]


def _bsearch(lookups: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of each lookup in `keys` as the C library's bsearch finds it (-1: not found):
    midpoint (lo + hi) // 2 of [lo, hi), exact comparisons."""
    look = lookups.astype(np.int64)
    k = keys.astype(np.int64)
    lo = np.zeros(look.size, np.int64)
    hi = np.full(look.size, k.size, np.int64)
    found = np.full(look.size, -1, np.int64)
    active = lo < hi
    while active.any():
        mid = (lo + hi) // 2
        cmp = np.sign(look - k[np.minimum(mid, k.size - 1)])  # int64: no overflow
        eq = active & (cmp == 0)
        found[eq] = mid[eq]
        hi = np.where(active & (cmp < 0), mid, hi)
        lo = np.where(active & (cmp > 0), mid + 1, lo)
        active = active & ~eq & (lo < hi)
    return found


def _lookup_run(inputs: list, a: Any) -> list[np.ndarray]:
    lookups, keys, values = (np.asarray(x) for x in inputs)
    if values.shape[0] == 0:
        # LiteRT checks this at invoke (it divides the value bytes by the row count).
        raise OpError("HASHTABLE_LOOKUP: num_rows != 0 was not true: the keys and values are empty")
    idx = _bsearch(lookups.reshape(-1), keys.reshape(-1))
    hit = idx >= 0
    if values.dtype == object:
        out = np.full(idx.size, b"", dtype=object)
    else:
        out = np.zeros((idx.size, *values.shape[1:]), values.dtype)
    out[hit] = values[idx[hit]]
    return [out, hit.astype(np.uint8)]


define("HASHTABLE_LOOKUP", parse=lambda o: dict(o), infer=_lookup_infer, reference=_lookup_run,
       cost=_small_cost)
