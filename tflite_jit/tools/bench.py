"""`tflite-jit bench`: TFLite benchmark_model's flags, loop rules and printed output.

Scripts written against benchmark_model (its `--name=value` flags, its `INFO:` lines, its
"Inference timings in us:" line and its op-profiling tables) work unchanged; tflite_jit's
additions (compile/cache figures, --json, a Chrome trace of the op profile, --compare_litert)
are extra lines or extra flags. The facts of the format are in shared/INTERPRETER_API.md §5.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tflite_jit.tools.measure import (
    PeakMemory,
    Stats,
    kernel_counts,
    kernel_snapshot,
    proc_status,
    random_input,
    rss_mb,
    run_loop,
)
from tflite_jit.tools.models_spec import UserError, load_model


def _log_to(stream: Any) -> Callable[[str], None]:
    def log(msg: str = "") -> None:
        print(f"INFO: {msg}" if msg else "", file=stream, flush=True)

    return log


# -- flags -----------------------------------------------------------------------------------------
#: (flag, type, default, description as benchmark_model logs it)
FLAGS: list[tuple[str, Any, Any, str]] = [
    ("graph", str, "", "Graph"),
    ("num_runs", int, 50, "Min num runs"),
    ("min_secs", float, 1.0, "Min runs duration (seconds)"),
    ("max_secs", float, 150.0, "Max runs duration (seconds)"),
    ("run_delay", float, -1.0, "Inter-run delay (seconds)"),
    ("run_frequency", float, -1.0, "Number of prorated runs per second"),
    ("num_threads", int, -1, "Num threads"),
    ("use_caching", "bool", False, "Use caching"),
    ("benchmark_name", str, "", "Benchmark name"),
    ("output_prefix", str, "", "Output prefix"),
    ("warmup_runs", int, 1, "Min warmup runs"),
    ("warmup_min_secs", float, 0.5, "Min warmup runs duration (seconds)"),
    ("verbose", "bool", False, "Log parameter values verbosely"),
    ("dry_run", "bool", False, "Dry run"),
    ("report_peak_memory_footprint", "bool", False, "Report the peak memory footprint"),
    ("memory_footprint_check_interval_ms", int, 50, "Memory footprint check interval (ms)"),
    ("signature_to_run_for", str, "", "Signature to run"),
    ("list_signatures", "bool", False, "List signatures"),
    ("input_layer", str, "", "Input layers"),
    ("input_layer_shape", str, "", "Input shapes"),
    ("input_layer_value_range", str, "", "Input value ranges"),
    ("input_layer_value_files", str, "", "Input value files"),
    ("enable_op_profiling", "bool", False, "Enable op profiling"),
    ("op_profiling_output_mode", str, "stdout", "Op profiling output mode"),
    ("op_profiling_output_file", str, "", "Op profiling output file"),
    ("profiling_output_csv_file", str, "", "CSV File to export profiling data to"),
    ("use_gpu", "bool", False, "Use gpu"),
    ("use_xnnpack", "bool", False, "Use xnnpack"),
]
#: benchmark_model flags accepted for compatibility that change nothing here (logged once if set).
NO_EFFECT_FLAGS = [
    "allow_fp16", "require_full_delegation", "max_profiling_buffer_entries",
    "allow_dynamic_profiling_buffer_increase", "print_preinvoke_state", "print_postinvoke_state",
    "release_dynamic_tensors", "optimize_memory_for_large_tensors", "disable_delegate_clustering",
    "enable_builtin_cast_constant_cache", "output_filepath", "gpu_invoke_loop_times",
    "max_delegated_partitions", "min_nodes_per_partition", "delegate_serialize_dir",
    "delegate_serialize_token", "first_delegate_node_index", "last_delegate_node_index",
    "xnnpack_force_fp16", "gpu_precision_loss_allowed", "gpu_experimental_enable_quant",
    "gpu_inference_for_sustained_speed", "gpu_backend", "use_nnapi", "use_hexagon", "use_coreml",
    "external_delegate_path", "external_delegate_options", "tensor_name_display_length",
    "tensor_type_display_length", "alignment_display_length",
]
PROFILE_MODES = ("stdout", "csv", "proto", "trace")


def parse_bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def add_arguments(b: argparse.ArgumentParser) -> None:
    for name, typ, default, desc in FLAGS:
        if typ == "bool":
            b.add_argument(f"--{name}", type=parse_bool, nargs="?", const=True, default=default, help=desc)
        else:
            b.add_argument(f"--{name}", type=typ, default=default, help=desc)
    for name in NO_EFFECT_FLAGS:
        b.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    b.add_argument("--backend", default=None, help="tflite_jit backend: numba (default) or reference")
    b.add_argument("--fusion", default=None,
                   help="fusion strategy: none, epilogue (default), elementwise, rules, greedy_cost")
    b.add_argument("--jit", default=None, choices=("background", "eager", "off"),
                   help="when kernels compile: background (default: the first runs use the reference "
                        "kernels; timed runs start once compiles finish), eager (in init) or off")
    b.add_argument("--compare_litert", type=parse_bool, nargs="?", const=True, default=False,
                   help="also time LiteRT (XNNPACK) in the same run, alternating, and print the ratio")
    b.add_argument("--json", default="",
                   help="write every figure as JSON to this file ('-': stdout, the INFO log goes to stderr)")


# -- the target: what is fed and invoked -----------------------------------------------------------
class Target:
    """The inputs and invoke of subgraph 0, or of a signature on another subgraph (run through
    its SignatureRunner, which re-prepares on every call: timings then include that)."""

    def __init__(self, it: Any, signature: str | None):
        self.it = it
        self.si = 0
        self.runner = None
        self.sig_names: list[str] | None = None
        if signature is not None:
            sig = it._signature_defs[signature]
            self.si = sig.subgraph_index
            self.sig_names = list(sig.inputs)
            self.indices = [sig.inputs[n] for n in self.sig_names]
            if self.si != 0:
                self.runner = it.get_signature_runner(signature)
        else:
            self.indices = [int(d["index"]) for d in it.get_input_details()]
        sg = it._model.subgraphs[self.si]
        self.names = self.sig_names or [sg.tensors[i].name for i in self.indices]
        self.shapes = [tuple(int(s) for s in sg.tensors[i].shape) for i in self.indices]
        from tflite_jit.ir.model import numpy_type

        self.dtypes = [np.dtype(numpy_type(sg.tensors[i].type)) for i in self.indices]
        self.values: list[np.ndarray] = []

    def resize(self, k: int, shape: tuple[int, ...]) -> None:
        self.shapes[k] = shape
        if self.runner is None:
            self.it.resize_tensor_input(self.indices[k], list(shape))

    def allocate(self) -> None:
        if self.runner is None:
            self.it.allocate_tensors()

    def set_inputs(self) -> None:
        if self.runner is None:
            for i, x in zip(self.indices, self.values):
                self.it.set_tensor(i, x)

    def invoke(self) -> None:
        if self.runner is None:
            self.it.invoke()
        else:
            self.runner(**dict(zip(self.sig_names or [], self.values)))

    def executable(self) -> Any:
        return self.it._interpreter.execs.get(self.si)


def _parse_shapes(spec: str) -> list[tuple[int, ...]]:
    shapes = []
    for part in spec.split(":"):
        try:
            dims = tuple(int(d) for d in part.split(",")) if part.strip() else ()
        except ValueError:
            raise UserError(f"--input_layer_shape: {part!r} is not a comma-separated list of integers") from None
        if any(d < 0 for d in dims):
            raise UserError(f"--input_layer_shape: {part!r} has a negative dimension; -1 is not allowed, "
                            "give the concrete size")
        shapes.append(dims)
    return shapes


def _split_files(spec: str) -> list[tuple[str, str]]:
    """`name:path` entries joined by ','; '::' escapes a ':' inside a name."""
    out = []
    for entry in spec.split(","):
        if not entry:
            continue
        e = entry.replace("::", "\0")
        name, sep, path = e.partition(":")
        if not sep:
            raise UserError(f"--input_layer_value_files: {entry!r} is not NAME:PATH")
        out.append((name.replace("\0", ":"), path.replace("\0", ":")))
    return out


def _set_flags(args: argparse.Namespace) -> list[tuple[str, Any]]:
    shown = []
    for name, _typ, default, desc in FLAGS:
        v = getattr(args, name)
        if args.verbose or v != default or name in ("graph", "signature_to_run_for"):
            shown.append((desc, int(v) if isinstance(v, bool) else v))
    return shown


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 on success, 1 with 'Benchmarking failed.' like benchmark_model."""
    to_stdout_json = args.json == "-"
    log = _log_to(sys.stderr if to_stdout_json else sys.stdout)
    start_rss = rss_mb()
    result: dict[str, Any] = {"tool": "tflite-jit bench", "flags": {}}
    try:
        code = _bench(args, log, start_rss, result)
    except UserError as e:
        log(str(e))
        log("Benchmarking failed.")
        print(f"tflite-jit bench: error: {e}", file=sys.stderr)
        return 1
    if args.json and code == 0:
        text = json.dumps(result, indent=2, default=_jsonable)
        if to_stdout_json:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return code


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _bench(args: argparse.Namespace, log: Callable[..., None], start_rss: float,
           result: dict[str, Any]) -> int:
    from tflite_jit import Interpreter

    log("STARTING!")
    log(f"Log parameter values verbosely: [{int(args.verbose)}]")
    for desc, v in _set_flags(args):
        log(f"{desc}: [{v}]")
    for name in NO_EFFECT_FLAGS:
        if getattr(args, name) is not None:
            log(f"--{name} has no effect in tflite_jit (accepted for benchmark_model compatibility)")
    result["flags"] = {k: v for k, v in vars(args).items() if v is not None and k != "func"}
    if args.op_profiling_output_mode not in PROFILE_MODES:
        raise UserError(f"--op_profiling_output_mode={args.op_profiling_output_mode}: use one of "
                        + ", ".join(PROFILE_MODES))
    if args.op_profiling_output_mode == "proto":
        raise UserError("--op_profiling_output_mode=proto is not supported by tflite_jit: use stdout, csv "
                        "or trace (Chrome/Perfetto JSON)")
    if args.profiling_output_csv_file:  # deprecated spelling of csv mode plus a file
        args.op_profiling_output_mode, args.op_profiling_output_file = "csv", args.profiling_output_csv_file
    if args.memory_footprint_check_interval_ms <= 0:
        log("WARNING: --memory_footprint_check_interval_ms must be > 0; using 50")
        args.memory_footprint_check_interval_ms = 50
    if args.graph:
        content, name = load_model(args.graph)
    else:  # benchmark_model requires --graph; a bare `tflite-jit bench` shows the demo instead
        from tflite_jit.tools.models import tiny_convnet

        content, name = tiny_convnet(), "<built-in demo model: tiny_convnet>"
        log("No --graph given: running the built-in demo model (pass --graph=MODEL.tflite for yours)")
    log(f"Loaded model {name}")
    log(f"The input model file size (MB): {len(content) / 1e6:g}")
    result["model"] = {"name": name, "size_bytes": len(content)}

    threads = None if args.num_threads == -1 else args.num_threads
    delegates = []
    if args.use_gpu:
        delegates = _gpu_delegate(log)
    before = kernel_snapshot()
    t0 = time.perf_counter()
    try:
        it = Interpreter(model_content=content, num_threads=threads, backend=args.backend,
                         fusion=args.fusion, experimental_delegates=delegates or None, jit=args.jit)
    except (ValueError, RuntimeError, TypeError) as e:
        raise UserError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    sigs = list(it._signature_defs)
    if args.list_signatures:
        log(f"The model has {len(sigs)} signature(s):")
        for key, d in it.get_signature_list().items():
            log(f"Signature key: {key}, inputs: {d['inputs']}, outputs: {d['outputs']}")
        result["signatures"] = it.get_signature_list()
        return 0
    signature = args.signature_to_run_for or None
    if signature is None and len(sigs) > 1:
        raise UserError(f"The model has {len(sigs)} signatures ({', '.join(sigs)}): choose one with "
                        "--signature_to_run_for")
    if signature is not None and signature not in sigs:
        raise UserError(f"Signature {signature!r} not found; the model has: {', '.join(sigs) or 'none'}")
    if signature is None and len(sigs) == 1 and it._signature_defs[sigs[0]].subgraph_index != 0:
        signature = sigs[0]
    target = Target(it, signature)
    _apply_input_flags(args, target, log)
    try:
        target.allocate()
    except (ValueError, RuntimeError) as e:
        raise UserError(" ".join(str(e).split())) from None
    rng = np.random.default_rng(0)
    _make_inputs(args, target, rng, log)
    if target.runner is not None:  # the runner prepares on its first call: part of init
        try:
            target.invoke()
        except (ValueError, RuntimeError) as e:
            raise UserError(" ".join(str(e).split())) from None
    init_ms = (time.perf_counter() - t0) * 1000
    init_rss = rss_mb()
    log(f"Initialized session in {init_ms:g}ms.")
    ex = target.executable()
    if ex is not None:
        _report_plan(ex, log, delegates, result, before)
    result["init_ms"] = init_ms
    jit = it.jit_status()
    result["jit"] = {"at_init": jit}
    if jit["pending"]:
        log(f"JIT ({jit['mode']}): {jit['compiled']} steps compiled, {jit['pending']} compiling in the "
            "background (running on the reference kernels meanwhile)")

    litert = None
    if args.compare_litert:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteInterpreter
        except ImportError:
            raise UserError("--compare_litert needs ai-edge-litert (pip install 'tflite-jit[test]')") from None
        if target.runner is not None:
            raise UserError("--compare_litert runs subgraph 0 only; this signature is on another subgraph")
        litert = LiteInterpreter(model_content=content, num_threads=threads)
        for k, i in enumerate(target.indices):
            litert.resize_tensor_input(i, list(target.shapes[k]))
        litert.allocate_tensors()

    warmup_runs, num_runs = (0, 0) if args.dry_run else (args.warmup_runs, args.num_runs)
    warmup_secs, min_secs = (0.0, 0.0) if args.dry_run else (args.warmup_min_secs, args.min_secs)
    max_secs = 0.0 if args.dry_run else args.max_secs
    peak = PeakMemory(args.memory_footprint_check_interval_ms) if args.report_peak_memory_footprint else None
    if peak is not None:
        peak.__enter__()
    try:
        log(f"Running benchmark for at least {warmup_runs} iterations and at least "
            f"{warmup_secs:g} seconds but terminate if exceeding {max_secs:g} seconds.")
        warm = _timed(target, warmup_runs, warmup_secs, max_secs, args)
        log(warm.line())
        log()
        if it.jit_status()["pending"] and not args.dry_run:
            it.wait_for_jit()
            steady_s = time.perf_counter() - t0
            result["jit"]["steady_after_s"] = steady_s
            st = it.jit_status()
            log(f"JIT: all kernels ready {steady_s:.1f} s after start ({st['compiled']} compiled, "
                f"{st['reference']} on reference); timing the compiled kernels")
        prof = None
        if args.enable_op_profiling and target.runner is not None:
            log("WARNING: op profiling needs a stable plan; a signature on another subgraph re-prepares on "
                "every call, so no op profile is collected")
        elif args.enable_op_profiling and ex is not None:
            from tflite_jit.tools.profiling import Profiler

            prof = Profiler(ex)
            prof.install()
        log(f"Running benchmark for at least {num_runs} iterations and at least {min_secs:g} "
            f"seconds but terminate if exceeding {max_secs:g} seconds.")
        lite_runs = None
        try:
            if litert is None:
                runs = _timed(target, num_runs, min_secs, max_secs, args, after=prof.end_run if prof else None)
            else:
                runs, lite_runs = _alternate(target, litert, num_runs, min_secs, max_secs)
        finally:
            if prof is not None:
                prof.remove()
        log(runs.line())
        log()
    finally:
        if peak is not None:
            peak.__exit__()
    first = warm.values[0] if warm.values else 0
    log(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {first}, "
        f"Warmup (avg): {warm.avg:g}, Inference (avg): {runs.avg:g}")
    end_rss = rss_mb()
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE "
        "to the actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={init_rss - start_rss:g} "
        f"overall={end_rss - start_rss:g}")
    result.update({"init_us": int(init_ms * 1000), "first_inference_us": first, "warmup": warm.to_dict(),
                   "inference": runs.to_dict(),
                   "memory_mb": {"init": init_rss - start_rss, "overall": end_rss - start_rss}})
    if peak is not None:
        log(f"Overall peak memory footprint (MB) via periodic monitoring: {peak.peak:g}")
        st = proc_status()
        if st:
            log("Memory status at the end of exeution:")
            log(f"- VmRSS              : {st.get('VmRSS', 0):g} MB")
            log(f"+ RssAnnon           : {st.get('RssAnon', 0):g} MB")
            log(f"+ RssFile + RssShmem : {st.get('RssFile', 0) + st.get('RssShmem', 0):g} MB")
        result["memory_mb"]["peak"] = peak.peak
    if lite_runs is not None:
        log(f"LiteRT (XNNPACK) timings in us: {lite_runs.line()}")
        log(f"Median latency tflite_jit / LiteRT: {runs.median / max(lite_runs.median, 1):.2f}x "
            f"({runs.median:g} us vs {lite_runs.median:g} us)")
        result["litert"] = lite_runs.to_dict()
    if prof is not None:
        _write_profile(args, prof, init_ms * 1000, runs, log, result)
    return 0


def _gpu_delegate(log: Callable[..., None]) -> list[Any]:
    """--use_gpu=true: tflite_jit's OpenCL delegate, or one line saying why not (then CPU)."""
    import tflite_jit

    try:
        return [tflite_jit.load_delegate("opencl")]
    except Exception as e:  # missing pyopencl, no OpenCL platform, delegate not built: say so, go on
        why = " ".join(str(e).split()) or type(e).__name__
        log(f"GPU acceleration is unavailable (tflite_jit OpenCL delegate: {why[:200]}); running on the CPU.")
        return []


def _report_plan(ex: Any, log: Callable[..., None], delegates: list[Any], result: dict[str, Any],
                 before: dict[int, tuple[int, int]]) -> None:
    by_backend: dict[str, int] = {}
    for step in ex.steps:
        by_backend[step.backend] = by_backend.get(step.backend, 0) + len(step.cluster.ops)
    counts = kernel_counts(ex, before)
    file_ops = len((ex.sg.source or ex.sg).ops)  # the file's, before runtime/stacking's rewrite
    log(f"tflite_jit: {file_ops} ops in {len(ex.steps)} kernels; ops per backend: "
        + ", ".join(f"{k}={v}" for k, v in sorted(by_backend.items()))
        + f"; arena {ex.arena_bytes / 1e6:g} MB")
    log(f"tflite_jit: compile: {counts['compiled']} kernels compiled, {counts['loaded_from_cache']} loaded "
        f"from the compile cache, {counts['already_in_memory']} already in memory, {counts['not_compiled']} "
        "need no compilation (Init includes this)")
    if delegates:
        names = {getattr(getattr(d, "backend", None), "name", None) or getattr(d, "name", "") for d in delegates}
        gpu = [s for s in ex.steps if s.backend in names]
        if gpu and len(gpu) == len(ex.steps):
            log("Explicitly applied GPU delegate, and the model graph will be completely executed by the "
                "delegate.")
        elif gpu:
            log(f"Explicitly applied GPU delegate, and the model graph will be partially executed by the "
                f"delegate w/ {len(gpu)} delegate kernels.")
        else:
            log("Though GPU delegate is explicitly applied, the model graph will not be executed by the "
                "delegate.")
    result["plan"] = {"ops": file_ops, "kernels": len(ex.steps), "ops_per_backend": by_backend,
                      "arena_bytes": ex.arena_bytes, "compile": counts}


def _apply_input_flags(args: argparse.Namespace, target: Target, log: Callable[..., None]) -> None:
    names = [n for n in args.input_layer.split(",") if n] if args.input_layer else []
    if names:
        if len(names) != len(target.names):
            raise UserError(f"--input_layer names {len(names)} inputs but the model has {len(target.names)} "
                            f"({', '.join(target.names)}); list all of them, in order")
        for given, actual in zip(names, target.names):
            if given != actual:
                log(f"WARNING: Tensor # {target.names.index(actual)} is named {actual} but flags call it "
                    f"{given}")
    if args.input_layer_shape:
        if not names:
            raise UserError("--input_layer_shape needs --input_layer (the same number of entries)")
        shapes = _parse_shapes(args.input_layer_shape)
        if len(shapes) != len(names):
            raise UserError(f"--input_layer_shape has {len(shapes)} shapes for {len(names)} --input_layer "
                            "names")
        for k, shape in enumerate(shapes):
            if len(shape) != len(target.shapes[k]):
                raise UserError(f"--input_layer_shape: input {target.names[k]} has rank {len(target.shapes[k])} "
                                f"{list(target.shapes[k])}, got {list(shape)}")
            if shape != target.shapes[k]:
                try:
                    target.resize(k, shape)
                except (ValueError, RuntimeError) as e:
                    raise UserError(f"cannot resize input {target.names[k]} to {list(shape)}: "
                                    f"{' '.join(str(e).split())}") from None


def _make_inputs(args: argparse.Namespace, target: Target, rng: np.random.Generator,
                 log: Callable[..., None]) -> None:
    ranges: dict[str, tuple[int, int]] = {}
    # '::' escapes a ':' inside a name, as in --input_layer_value_files (TFLite names often end ':0')
    for entry in filter(None, args.input_layer_value_range.replace("::", "\0").split(":")):
        parts = entry.replace("\0", ":").split(",")
        try:
            name, lo, hi = parts[0], int(parts[1]), int(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise UserError(f"--input_layer_value_range: {entry!r} is not NAME,LOW,HIGH (integers)") from None
        if lo > hi:
            raise UserError(f"--input_layer_value_range: {entry!r} has LOW > HIGH")
        ranges[name] = (lo, hi)
    files = dict(_split_files(args.input_layer_value_files))
    for name in list(ranges) + list(files):
        if name not in target.names:
            raise UserError(f"input {name!r} (in --input_layer_value_range/files) is not an input of the "
                            f"model; inputs: {', '.join(target.names)}")
    ex = target.executable()
    values = []
    for k, (name, dtype) in enumerate(zip(target.names, target.dtypes)):
        shape = target.shapes[k]
        if ex is not None and ex.infos and target.runner is None:
            shape = tuple(ex.infos[target.indices[k]].shape or shape)
        if name in files:
            if name in ranges:
                log(f"WARNING: input {name}: the value file overrides the value range")
            values.append(_read_value_file(files[name], name, shape, dtype))
            continue
        if name in ranges and dtype.kind not in "iub":
            raise UserError(f"--input_layer_value_range: input {name} is {dtype}; ranges apply to integer "
                            "inputs only")
        values.append(random_input(shape, dtype, rng, ranges.get(name)))
    target.values = values


def _read_value_file(path: str, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"--input_layer_value_files: cannot read {path!r} for input {name}: {e.strerror}") from None
    if dtype.kind in "SO":
        vals = data.split(b"\0")
        if vals and vals[-1] == b"":
            vals = vals[:-1]
        n = int(np.prod(shape, dtype=np.int64))
        if len(vals) != n:
            raise UserError(f"input {name}: {path} holds {len(vals)} strings, the tensor {list(shape)} needs {n}")
        return np.array(vals, dtype=object).reshape(shape)
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != need:
        raise UserError(f"input {name}: {path} has {len(data)} bytes but the tensor {list(shape)} {dtype} "
                        f"needs {need}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _timed(target: Target, runs: int, min_secs: float, max_secs: float, args: argparse.Namespace,
           after: Callable[[], None] | None = None) -> Stats:
    try:
        return run_loop(target.invoke, target.set_inputs, runs, min_secs, max_secs, args.run_delay,
                        args.run_frequency, after)
    except (ValueError, RuntimeError) as e:
        raise UserError(" ".join(str(e).split())) from None


def _alternate(target: Target, litert: Any, num_runs: int, min_secs: float,
               max_secs: float) -> tuple[Stats, Stats]:
    """Time ours and LiteRT in one loop, alternating, so machine noise hits both alike."""
    ours, theirs = Stats(), Stats()
    start = time.perf_counter()
    i = 0
    while ((i < num_runs or time.perf_counter() - start < min_secs)
           and time.perf_counter() - start <= max_secs):
        target.set_inputs()
        t0 = time.perf_counter_ns()
        target.invoke()
        ours.add((time.perf_counter_ns() - t0) // 1000)
        for idx, x in zip(target.indices, target.values):
            litert.set_tensor(idx, x)
        t0 = time.perf_counter_ns()
        litert.invoke()
        theirs.add((time.perf_counter_ns() - t0) // 1000)
        i += 1
    return ours, theirs


def _write_profile(args: argparse.Namespace, prof: Any, init_us: float, runs: Stats,
                   log: Callable[..., None], result: dict[str, Any]) -> None:
    from tflite_jit.tools.profiling import report

    mode, path = args.op_profiling_output_mode, args.op_profiling_output_file
    result["op_profile"] = prof.to_dict()
    if mode == "trace":
        text = json.dumps({"traceEvents": prof.trace_events(), "displayTimeUnit": "ms"})
    else:
        text = report(prof, init_us, runs.line(), csv=(mode == "csv"))
    if path:
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise UserError(f"cannot write --op_profiling_output_file {path!r}: {e.strerror}") from None
        log(f"Op profile ({mode}) written to {path}")
    elif args.json == "-":
        print(text, file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n", flush=True)
