"""How many kernels a retrained twin shares with its original (issue #14, item 2), without
compiling anything: both models are planned with jit='off' on an empty cache and their generated
modules (content-addressed names) are compared.

    python benchmarks/twin_kernels.py [--models mobilenet_v2,mobilenet_v2_int8,efficientnet_b0_int8]

A twin module that the original does not have is a kernel the twin must compile even on a cache
holding every kernel of the original: its code differs only because some weight, bias or
quantization parameter is printed into it. Per model: kernels (steps), distinct modules, and the
twin's modules missing from the original's set; `--show` prints a diff of one such pair.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))


def modules(data: bytes) -> dict[str, str]:
    """{module name: source} of every compiled-backend step of the model."""
    from tflite_jit import Interpreter

    it = Interpreter(model_content=data, jit="off")
    it.allocate_tensors()
    ex = it._executables()[0]
    out = {}
    from tflite_jit.backends.numba_cpu.backend import NumbaBackend
    from tflite_jit.runtime.executable import PlanEnv

    backend = NumbaBackend()
    env = PlanEnv(ex.sg, ex.attrs, ex.infos, ex.num_threads)
    for step in ex.steps:
        try:  # the backend's own path (chain tables included), never compiling machine code
            kernel = backend.compile(step.cluster, env)
        except Exception:
            continue
        out[kernel.module] = kernel.src.source
    return out


def main() -> None:
    from first_result import build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,mobilenet_v2_int8,efficientnet_b0_int8")
    p.add_argument("--show", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TFLITE_JIT_CACHE_DIR"] = cache
        for name in a.models.split(","):
            orig, twin = modules(build(name)), modules(build(name, twin=True))
            new = [m for m in twin if m not in orig]
            print(f"{name:<24} original {len(orig)} modules, twin {len(twin)}: {len(new)} not in the original's "
                  f"({100 * len(new) / max(1, len(twin)):.0f}%)", flush=True)
            for m in new if a.show else ():
                a_src = twin[m]
                b_src = min(orig.values(), key=lambda s: sum(1 for _ in difflib.unified_diff(
                    s.splitlines(), a_src.splitlines(), n=0)))
                diff = [ln for ln in difflib.unified_diff(b_src.splitlines(), a_src.splitlines(), lineterm="", n=0)
                        if ln[:1] in "+-" and ln[:3] not in ("---", "+++")]
                print(f"  {m}: {len(diff)} lines differ, e.g. " + " | ".join(d.strip()[:110] for d in diff[:2]))

if __name__ == "__main__":
    main()
