"""Records what tflite_support 0.4.4 writes for every case in cases.py (the goldens the tests
compare against). Needs a Python 3.11 venv with tflite-support 0.4.4 (Debian: libusb-1.0-0):

    python3.11 -m venv /tmp/tfs && /tmp/tfs/bin/pip install tflite-support==0.4.4
    cd tests/data/metadata && /tmp/tfs/bin/python make_goldens.py

For each case, goldens/<case>.tflite is the populated model, <case>.json the metadata JSON of
the populated model (MetadataDisplayer.get_metadata_json), <case>.pre.json the JSON before
populating, and <case>.files.json the packed file names; for the metadata-only cases,
<case>.meta is the buffer and <case>.json its convert_to_json.

    /tmp/tfs/bin/python make_goldens.py --mediapipe DIR

also stores, for every model in DIR with metadata (the .tflite files of the MediaPipe 0.10.14
wheel, Apache-2.0), its metadata buffer and tflite_support's JSON under
goldens/mediapipe/ (the models themselves are not committed).
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases  # noqa: E402


def mediapipe(lib, folder: str) -> None:
    out = os.path.join(HERE, "goldens", "mediapipe")
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".tflite"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            buf = f.read()
        meta = lib.metadata.get_metadata_buffer(buf)
        if not meta:
            continue
        d = lib.metadata.MetadataDisplayer.with_model_buffer(buf)
        stem = os.path.join(out, name[: -len(".tflite")])
        with open(stem + ".meta", "wb") as f:
            f.write(meta)
        with open(stem + ".json", "w") as f:
            f.write(d.get_metadata_json())
        print("mediapipe", name, "ok")


def main() -> None:
    if "--mediapipe" in sys.argv:
        mediapipe(cases.tflite_support_lib(), sys.argv[sys.argv.index("--mediapipe") + 1])
        return
    os.chdir(HERE)
    lib = cases.tflite_support_lib()
    out = os.path.join(HERE, "goldens")
    os.makedirs(out, exist_ok=True)
    for name, case in cases.CASES.items():
        pre, populated = case(lib)
        d = lib.metadata.MetadataDisplayer.with_model_buffer(populated)
        with open(os.path.join(out, name + ".tflite"), "wb") as f:
            f.write(populated)
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(d.get_metadata_json())
        with open(os.path.join(out, name + ".pre.json"), "w") as f:
            f.write(pre)
        with open(os.path.join(out, name + ".files.json"), "w") as f:
            json.dump(d.get_packed_associated_file_list(), f)
        print(name, "ok")
    for name, case in cases.RAW_CASES.items():
        meta = case(lib)
        with open(os.path.join(out, name + ".meta"), "wb") as f:
            f.write(meta)
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(lib.metadata.convert_to_json(meta))
        print(name, "ok")


if __name__ == "__main__":
    main()
