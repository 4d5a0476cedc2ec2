"""`tflite-jit inspect --metadata`: a model's TFLite metadata as tflite_support prints it, and
the files packed with the model."""

from __future__ import annotations

import json
from typing import Any

from tflite_jit.support import metadata


def metadata_info(content: bytes) -> dict[str, Any]:
    """{"metadata_json": the JSON text (tflite_support's, byte for byte), "associated_files":
    [{"name", "size"}]}; ValueError when the model has no metadata or it is malformed."""
    d = metadata.MetadataDisplayer.with_model_buffer(content)
    files = [{"name": n, "size": len(d.get_associated_file_buffer(n))}
             for n in d.get_packed_associated_file_list()]
    return {"metadata_json": d.get_metadata_json(), "associated_files": files}


def format_text(info: dict[str, Any]) -> str:
    lines = [info["metadata_json"].rstrip("\n"), "", "associated files:"]
    lines += [f"  {f['name']} ({f['size']} bytes)" for f in info["associated_files"]] or ["  none"]
    return "\n".join(lines) + "\n"


def format_json(info: dict[str, Any], name: str) -> str:
    """The metadata as a JSON object (as a string where it holds nan/inf, which flatc prints
    bare and JSON parsers refuse)."""
    try:
        meta: Any = json.loads(info["metadata_json"])
    except ValueError:
        meta = info["metadata_json"]
    return json.dumps({"model": name, "metadata": meta,
                       "associated_files": info["associated_files"]}, indent=2) + "\n"
