"""The background compiler process (runtime/tiers.py starts it as `python -m
tflite_jit.runtime.compile_worker`).

It reads pickled compile jobs from stdin until EOF, compiles each into the shared on-disk cache
(Numba holds the GIL while it compiles, so this must be another process, not a thread of the
interpreter's), and writes one JSON line per job to stdout: {"key", "ok", "error", "s"}. It has
no state worth protecting: killing it at any moment leaves at worst a half-written cache entry,
which modcache detects and redoes. It runs at normal priority: a lower one (nice) starved it
on a loaded machine (minutes for a dozen kernels), and the interpreter needs one core only.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time


def main() -> int:
    inp, out = sys.stdin.buffer, sys.stdout
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:  # the interpreter's process is done with us
            out.flush()
            # skip the interpreter's teardown (Numba and LLVM: ~0.1-0.2 CPU s): every cache file
            # is already written (atomically), and a process started right after ours -- the next
            # run of the same script -- would share the cores with that teardown
            os._exit(0)
        except Exception as e:  # the interpreter sent something we cannot read: nothing to report to
            print(json.dumps({"key": None, "ok": False, "error": f"{type(e).__name__}: {e}"}), file=out,
                  flush=True)
            return 1
        t0 = time.perf_counter()
        try:
            job.run()
            reply = {"key": job.key, "ok": True, "error": "", "s": time.perf_counter() - t0}
        except Exception as e:  # a kernel that fails here fails in no other way: report and go on
            reply = {"key": job.key, "ok": False, "error": f"{type(e).__name__}: {e}"[:500],
                     "s": time.perf_counter() - t0}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
