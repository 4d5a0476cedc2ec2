"""The strategy interface and the registry strategies are found in by name.

A strategy is pure and deterministic: `plan(sg, env)` returns clusters, and calling the strategy
runs `plan` and then the shared validator (fusion.validate), which subclasses cannot skip, so
shipped, registered and ad-hoc strategies are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any, ClassVar

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.fusion.clusters import single_cluster
from tflite_jit.fusion.config import FusionConfig
from tflite_jit.fusion.validate import validate_clusters
from tflite_jit.ir.model import Subgraph


class FusionStrategy:
    """Base class of every strategy. Subclasses implement `plan(sg, env)`; calling the strategy
    runs `plan` and then the shared validator, which cannot be skipped."""

    name: str = "custom"
    config_class: ClassVar[type[FusionConfig]] = FusionConfig

    def __init__(self, config: FusionConfig | None = None, **knobs: Any):
        cfg = config if config is not None else self.config_class()
        if not isinstance(cfg, self.config_class):  # e.g. a plain FusionConfig for "rules"
            mine = {f.name for f in fields(self.config_class)}
            cfg = self.config_class(**{f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in mine})
        if knobs:
            known = {f.name for f in fields(cfg)}
            bad = sorted(set(knobs) - known)
            if bad:
                raise TypeError(f"fusion strategy {self.name!r} has no option(s) {bad}; "
                                f"it has {sorted(known)}")
            cfg = replace(cfg, **knobs)
        self.config = cfg

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "__call__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement plan(), not __call__ (the validator runs there)")

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        raise NotImplementedError

    def __call__(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        clusters = list(self.plan(sg, env))
        validate_clusters(sg, clusters, self.config, strategy=self.name, env=env)
        return clusters

    def with_config(self, config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
        """A copy of this strategy with another config and/or some knobs changed."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        FusionStrategy.__init__(other, config if config is not None else self.config, **knobs)
        return other

    def __repr__(self) -> str:
        return f"<fusion strategy {self.name!r} {self.config}>"


class FunctionStrategy(FusionStrategy):
    """A plain `(sg, env) -> list[Cluster]` function as a strategy (validated like the others)."""

    def __init__(self, fn: Callable[[Subgraph, CompileEnv], Sequence[Cluster]], name: str | None = None,
                 config: FusionConfig | None = None, **knobs: Any):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "custom")
        super().__init__(config, **knobs)

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        return list(self.fn(sg, env))


_STRATEGIES: dict[str, Callable[..., FusionStrategy]] = {}
_ALIASES = {"elementwise_chain": "elementwise", "rule_based": "rules", "s0": "none",
            "s1": "epilogue", "s2": "elementwise", "s3": "rules", "s4": "greedy_cost"}


def register_strategy(name: str, fn: Any) -> Any:
    """Register a strategy under `name`: a `FusionStrategy` subclass or instance, or a plain
    `(sg, env) -> list[Cluster]` function. Returns `fn` (usable as a decorator via partial)."""
    if isinstance(fn, type) and issubclass(fn, FusionStrategy):
        cls = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            s = cls(config, **knobs)
            s.name = name
            return s
    elif isinstance(fn, FusionStrategy):
        inst = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            s = inst.with_config(config, **knobs)
            s.name = name
            return s
    elif callable(fn):
        func = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            return FunctionStrategy(func, name, config, **knobs)
    else:
        raise TypeError(f"register_strategy({name!r}, ...): expected a FusionStrategy or a callable, "
                        f"got {type(fn).__name__}")
    _STRATEGIES[name] = factory
    return fn


def get_strategy(spec: str | FusionStrategy | Callable, config: FusionConfig | None = None,
                 **knobs: Any) -> FusionStrategy:
    """A strategy by name (with optional config / knobs), or an object made into a validated one."""
    if isinstance(spec, FusionStrategy):
        return spec if config is None and not knobs else spec.with_config(config, **knobs)
    if isinstance(spec, type) and issubclass(spec, FusionStrategy):
        return spec(config, **knobs)
    if isinstance(spec, str):
        key = _ALIASES.get(spec, spec)
        try:
            factory = _STRATEGIES[key]
        except KeyError:
            raise ValueError(f"Unknown fusion strategy {spec!r}; known: {sorted(_STRATEGIES)}") from None
        return factory(config, **knobs)
    if callable(spec):
        return FunctionStrategy(spec, None, config, **knobs)
    raise TypeError(f"fusion strategy must be a name, a FusionStrategy or a callable, got {type(spec).__name__}")


def strategies() -> list[str]:
    return sorted(_STRATEGIES)


class NoFusion(FusionStrategy):
    """One op a cluster: the numerical reference."""

    name = "none"

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        return [single_cluster(sg, i) for i in range(len(sg.ops))]


register_strategy("none", NoFusion)

