"""BaseOptions: where the model comes from and how many threads run it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class BaseOptions:
    """As tflite_support's: `file_name` or `file_content` (the model's bytes); `num_threads`
    -1 lets the engine choose; `use_coral` is accepted for compatibility and must stay off
    (there is no Edge TPU delegate here)."""

    file_name: str | None = None
    file_content: bytes | None = None
    num_threads: int | None = -1
    use_coral: bool | None = None
