"""Writes the Task Library fixtures with tflite_support 0.4.4 (a Python 3.11 venv where it
installs; Debian needs libusb-1.0-0):

    python tests/data/task/build_models.py             # the base models (project venv)
    cd tests/data/task && PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python \\
        /path/to/tfs-venv/bin/python make_goldens.py

models/<name>.tflite: the base models with metadata written by tflite_support's writers
(task_cases.WRITERS); goldens/<case>.json: what tflite_support's Task Library returns for each of
task_cases.CASES (or {"error": [type, message]} when it raises).
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import task_cases as cases  # noqa: E402  (metadata has a `cases` too)


def main() -> None:
    os.chdir(HERE)
    os.makedirs("models", exist_ok=True)
    os.makedirs("goldens", exist_ok=True)
    only = sys.argv[1:]
    if not only:
        m = cases.writer_lib("tflite_support")
        for name, write in cases.WRITERS.items():
            with open(os.path.join("models", name + ".tflite"), "wb") as f:
                f.write(bytes(write(m)))
            print("model", name)
    t = cases.task_lib("tflite_support")
    for name, case in cases.CASES.items():
        if only and name not in only:
            continue
        try:
            result = cases.jsonable(case(t))
        except Exception as e:  # the error is the golden
            result = {"error": [type(e).__name__, str(e)]}
        with open(os.path.join("goldens", name + ".json"), "w") as f:
            json.dump(result, f, indent=1)
        print("case", name, "error" if "error" in result else "ok")


if __name__ == "__main__":
    main()
