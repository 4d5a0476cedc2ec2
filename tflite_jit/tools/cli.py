"""`tflite-jit` command line: bench, inspect, compare, experiment, plan, predict, compile, cache.

argparse (stdlib) handles benchmark_model's `--name=value` syntax directly, so scripts written
for benchmark_model need no changes; booleans accept true/false like the C++ flag parser. Every
user error (a missing model, a bad flag) is one line on stderr and a nonzero exit, never a
traceback; set TFLITE_JIT_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tflite_jit.tools.bench import add_arguments, bench
from tflite_jit.tools.models_spec import UserError, load_model

__all__ = ["build_parser", "main"]

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong and where help is)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _err(cmd: str, msg: str) -> None:
    print(f"tflite-jit {cmd}: error: {msg}", file=sys.stderr)


def cmd_inspect(args: argparse.Namespace) -> int:
    from tflite_jit.tools.inspection import format_text, inspect_model

    content, name = load_model(args.model)
    if args.metadata:
        return _inspect_metadata(content, name, args.json)
    try:
        info = inspect_model(content)
    except ValueError as e:
        raise UserError(f"{name} is not a valid .tflite model: {' '.join(str(e).split())}") from None
    print(json.dumps(info, indent=2) if args.json else format_text(info, name), end="" if not args.json else "\n")
    return 0


def _inspect_metadata(content: bytes, name: str, as_json: bool) -> int:
    from tflite_jit.tools.metadata_view import format_json, format_text, metadata_info

    try:
        info = metadata_info(content)
    except ValueError as e:
        raise UserError(f"{name}: {' '.join(str(e).split())}") from None
    print(format_json(info, name) if as_json else format_text(info), end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tflite_jit.tools.compare import format_text, run_compare

    content, name = load_model(args.model)
    if args.trials < 1:
        raise UserError("--trials must be >= 1")
    res = run_compare(content, trials=args.trials, seed=args.seed, backend=args.backend, fusion=args.fusion,
                      resolver=args.litert_resolver)
    res["model"] = name
    print(json.dumps(res, indent=2) if args.json else format_text(res, name), end="" if not args.json else "\n")
    return 0 if res["ok"] else 1


def cmd_experiment(args: argparse.Namespace) -> int:
    from tflite_jit.fusion import strategies
    from tflite_jit.tools import experiment as exp

    if args.runs < 1:
        raise UserError("--runs must be >= 1")
    default = ["none"] + [s for s in strategies() if s != "none"]
    strats = list(dict.fromkeys(s for item in (args.strategies or default) for s in item.split(",") if s))
    rows = exp.run_experiment(args.models, strats, runs=args.runs, warmup=args.warmup, backend=args.backend,
                              seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    print(exp.format_table(rows))
    if args.out:
        meta = exp.meta() | {"runs": args.runs, "warmup": args.warmup, "backend": args.backend or "numba"}
        paths = exp.write_results(rows, args.out, meta)
        print("wrote " + ", ".join(paths))
        if not any(p.endswith(".png") for p in paths):
            print("plot skipped: matplotlib is not installed (pip install 'tflite-jit[plot]')")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        from tflite_jit.tools.plan import plan_main
    except ImportError:
        raise UserError("`plan` is not available in this build (tflite_jit.tools.plan is missing)") from None
    return int(plan_main(list(args.rest)) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tflite-jit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    b = sub.add_parser("bench", help="benchmark a model (TFLite benchmark_model flags and output)")
    add_arguments(b)
    b.set_defaults(func=bench)

    i = sub.add_parser("inspect", help="inputs, outputs, signatures, ops, types, quantization, backends")
    i.add_argument("model", help="a .tflite file or a built-in model name (e.g. mobilenet_v2:input_size=96)")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.add_argument("--metadata", action="store_true",
                   help="print the TFLite metadata (tflite_support's JSON) and the packed files")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser("compare", help="run ours and LiteRT on the same inputs; exit 1 if they differ")
    c.add_argument("model")
    c.add_argument("--trials", type=int, default=3, help="random input sets (default 3)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--backend", default=None, help="numba (default) or reference")
    c.add_argument("--fusion", default=None, help="fusion strategy (default epilogue)")
    c.add_argument("--litert_resolver", choices=("builtin", "xnnpack", "ref"), default="builtin",
                   help="LiteRT kernels to compare with (default builtin: no XNNPACK)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("experiment", help="every model x fusion strategy: structure, bytes, compile, latency")
    e.add_argument("--models", nargs="+", required=True, help="files or built-in names with KEY=VALUE options")
    e.add_argument("--strategies", nargs="+", default=None, help="fusion strategies (default: all)")
    e.add_argument("--runs", type=int, default=20, help="timed rounds; each round runs every strategy once")
    e.add_argument("--warmup", type=int, default=2)
    e.add_argument("--backend", default=None)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="", help="directory for results.csv, results.json, results.png")
    e.set_defaults(func=cmd_experiment)

    from tflite_jit.tools.tasks_cli import add_parsers as add_task_parsers

    add_task_parsers(sub)  # classify, detect, segment (the Task Library)

    from tflite_jit.tools import predict

    pr = sub.add_parser("predict", help="run a model over a .npy/.npz/.parquet file of examples, here or on Ray")
    predict.add_arguments(pr)

    pl = sub.add_parser("plan", help="explain how a model is planned (tflite_jit.explain)", add_help=False)
    pl.add_argument("rest", nargs=argparse.REMAINDER)
    pl.set_defaults(func=cmd_plan)

    from tflite_jit.tools import cache_cmd

    cache_cmd.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["bench"]
    parser = build_parser()
    if argv[0] == "plan":  # everything after `plan` belongs to plan_main, --help included
        args = argparse.Namespace(command="plan", rest=argv[1:], func=cmd_plan)
    else:
        args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except UserError as e:
        _err(args.command, str(e))
        return 1
    except KeyboardInterrupt:
        _err(args.command, "interrupted")
        return 130
    except Exception as e:  # an internal error: one line unless debugging
        if os.environ.get("TFLITE_JIT_DEBUG"):
            raise
        msg = " ".join(str(e).split())[:300]
        _err(args.command, f"{type(e).__name__}: {msg} (internal error; rerun with TFLITE_JIT_DEBUG=1 for "
             "the traceback and please report it)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
