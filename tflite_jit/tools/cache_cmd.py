"""`tflite-jit compile MODEL...` and `tflite-jit cache info|clear`: the compile cache from the
command line.

`compile` fills the cache ahead of time (a deployment step, or before running with jit='off'):
each model is planned exactly as `Interpreter(model)` would plan it (same backend, fusion and
thread count) and every kernel it lacks is compiled, by the background tier's pool of compiler
processes (one per core); the report says per model how many kernels
were already cached and how many were compiled, and how long it took. `cache info` prints the
directory, its modules and bytes against the bound (TFLITE_JIT_CACHE_MAX_BYTES); `cache clear`
deletes our files from it (nothing else in the directory).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tflite_jit.tools.models_spec import UserError, load_model


def add_parsers(sub: Any) -> None:
    """Register `compile` and `cache` on the tflite-jit subcommand parser."""
    c = sub.add_parser("compile", help="compile models' kernels into the cache ahead of time")
    c.add_argument("models", nargs="+", help=".tflite files or built-in model names")
    c.add_argument("--backend", default=None, help="numba (default) or reference")
    c.add_argument("--fusion", default=None, help="fusion strategy (default epilogue)")
    c.add_argument("--num_threads", type=int, default=None, help="as Interpreter(num_threads=...)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compile)

    k = sub.add_parser("cache", help="the compile cache: info or clear")
    k.add_argument("action", choices=("info", "clear"))
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_cache)


def compile_model(content: bytes, *, backend: str | None = None, fusion: Any = None,
                  num_threads: int | None = None) -> dict[str, Any]:
    """Compile one model's kernels into the cache: {'steps', 'cached', 'compiled', 'reference',
    'seconds'} — steps that were already in the cache, newly compiled, and that run on the
    reference backend whatever happens (no compiled kernel for them)."""
    from tflite_jit import Interpreter

    opts = {"backend": backend, "fusion": fusion, "num_threads": num_threads}
    before = Interpreter(model_content=content, jit="off", **opts)
    before.allocate_tensors()
    cached = before.jit_status()["compiled"]
    t0 = time.perf_counter()
    # the background tier's compiler pool, not an in-process eager compile: one process per core
    # (runtime/tiers.py), so a 2-core build step compiles MobileNetV2 in ~9 s instead of ~16
    it = Interpreter(model_content=content, jit="background", **opts)
    it.allocate_tensors()
    it.wait_for_jit()
    seconds = time.perf_counter() - t0
    st = it.jit_status()
    return {"steps": st["compiled"] + st["reference"], "cached": cached,
            "compiled": st["compiled"] - cached, "reference": st["reference"], "seconds": seconds}


def cmd_compile(args: argparse.Namespace) -> int:
    from tflite_jit.backends.numba_cpu import modcache

    rows = []
    failed = 0
    for spec in args.models:
        name = spec
        try:
            content, name = load_model(spec)
            r = compile_model(content, backend=args.backend, fusion=args.fusion, num_threads=args.num_threads)
        except (ValueError, RuntimeError, UserError) as e:
            # one model the engine refuses does not stop a batch (a container image's cache fill):
            # its line goes to stderr, the others compile, and the exit status says it failed
            why = " ".join(str(e).split())[:300]
            if len(args.models) == 1:
                raise UserError(why if isinstance(e, UserError) else f"{name}: {why}") from None
            print(f"tflite-jit compile: error: {name}: {why}", file=sys.stderr, flush=True)
            rows.append({"model": name, "error": why})
            failed += 1
            continue
        rows.append({"model": name, **r})
        if not args.json:
            print(f"{name}: {r['steps']} steps: {r['compiled']} kernels compiled, {r['cached']} already "
                  f"cached, {r['reference']} on reference ({r['seconds']:.1f} s)", flush=True)
    if args.json:
        print(json.dumps({"cache": str(modcache.cache_dir()), "models": rows}, indent=2))
    else:
        print(f"cache: {modcache.cache_dir()}")
    return 1 if failed else 0


def cmd_cache(args: argparse.Namespace) -> int:
    from tflite_jit.backends.numba_cpu import modcache

    if args.action == "clear":
        n = modcache.clear()
        out = {"directory": str(modcache.cache_dir()), "deleted_modules": n}
        print(json.dumps(out) if args.json else f"deleted {n} kernel modules (and the helpers' "
                                                    f"specialisations) from {out['directory']}")
        return 0
    u = modcache.usage()
    if args.json:
        print(json.dumps(u))
    else:
        bound = "unbounded" if not u["max_bytes"] else f"{u['max_bytes'] / 2**20:.0f} MiB"
        print(f"directory: {u['directory']}\nkernel modules: {u['modules']} ({u['compiled']} with machine "
              f"code)\nhelper specialisations: {u['helpers']}\nfiles: {u['files']}\nsize: {u['bytes'] / 2**20:.1f} MiB (bound {bound}, "
              "TFLITE_JIT_CACHE_MAX_BYTES)")
    return 0
