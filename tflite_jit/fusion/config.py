"""The knobs of the fusion strategies: small frozen dataclasses, one per strategy family.

A strategy takes its config class's knobs by keyword (`get_strategy("rules", max_depth=4)`) and
rejects unknown ones, so a typo in an experiment fails instead of silently fusing differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _frozen(v: Any) -> frozenset:
    if isinstance(v, (str, int)):
        return frozenset({v})
    return frozenset(v)


@dataclass(frozen=True)
class FusionConfig:
    """Knobs every strategy understands.

    max_ops: most ops in one cluster (TVM's kMaxFusedOps); max_args: most inputs + outputs of a
    multi-op cluster (None: no cap); deny_ops: op names never fused; stop_fusion: tensor names or
    ids whose producer and consumers are never put in one cluster (TVM's stop_fusion)."""

    max_ops: int = 256
    max_args: int | None = None
    deny_ops: frozenset[str] = frozenset()
    stop_fusion: frozenset[str | int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "deny_ops", _frozen(self.deny_ops))
        object.__setattr__(self, "stop_fusion", _frozen(self.stop_fusion))
        if int(self.max_ops) < 1:
            raise ValueError(f"max_ops must be at least 1, got {self.max_ops}")
        if self.max_args is not None and int(self.max_args) < 1:
            raise ValueError(f"max_args must be at least 1 or None, got {self.max_args}")

    @property
    def cap(self) -> int:
        """The effective op cap (strategies with their own depth knob narrow it)."""
        return int(self.max_ops)


@dataclass(frozen=True)
class EpilogueConfig(FusionConfig):
    """activations: unary ops folded into the producer; const_ops: binary ops folded when the
    other operand is a constant (bias, scale, PRELU's alpha); residual_ops: binary ops folded when the other
    operand is a computed tensor of the same shape (residual connection); fold_pad: merge a PAD
    into the VALID convolution it feeds when it equals SAME padding (fusion.epilogue.pad_pass)."""

    activations: frozenset[str] = frozenset(
        {"RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH"})
    const_ops: frozenset[str] = frozenset({"ADD", "SUB", "MUL", "DIV", "PRELU"})
    residual_ops: frozenset[str] = frozenset({"ADD"})
    fold_pad: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("activations", "const_ops", "residual_ops"):
            object.__setattr__(self, f, _frozen(getattr(self, f)))


@dataclass(frozen=True)
class ElementwiseConfig(EpilogueConfig):
    """epilogue: run the epilogue pass first (off: element-wise chains only); into_complex: let an
    element-wise group join a convolution's or matmul's group (beyond the epilogue pass's chain).
    Off, measured: EfficientNet-B0's swish (x * sigmoid(x), two readers of the conv output) would
    otherwise join 49 convs and depthwise convs and run 8 % slower than as its own loop."""

    epilogue: bool = True
    into_complex: bool = False


@dataclass(frozen=True)
class RulesConfig(FusionConfig):
    """max_depth: TVM's max_fuse_depth (None: max_ops); fuse_reduce_epilogue: let a reduction take
    its element-wise epilogue like a complex op (off reproduces TVM); allow_injective: off treats
    injective ops (reshape, transpose, pad, ...) as barriers."""

    max_depth: int | None = None
    fuse_reduce_epilogue: bool = False
    allow_injective: bool = True

    @property
    def cap(self) -> int:
        return int(self.max_ops) if self.max_depth is None else max(1, min(int(self.max_ops),
                                                                            int(self.max_depth)))


@dataclass(frozen=True)
class GreedyCostConfig(FusionConfig):
    """Roofline constants of the cost model t = launch_s + max(flops / peak_flops, bytes / bandwidth)
    where bytes counts the cluster's boundary tensors only (plus intermediates beyond cache_bytes,
    written and read again). A producer fused into a consumer that reads each of its elements r
    times (a broadcast that grows it) is charged r times its FLOPs. Fusion stops when the best
    candidate saves no more than min_benefit_s."""

    launch_s: float = 5e-6
    peak_flops: float = 5e9
    bandwidth: float = 5e9
    cache_bytes: float = float(1 << 20)
    min_benefit_s: float = 0.0
    fuse_reduce_epilogue: bool = False
    allow_injective: bool = True

