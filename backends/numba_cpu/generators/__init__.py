"""Kernel generators; each module registers itself with backend.register_generator."""


def load_all() -> None:
    """Import every generator module (each registers itself); called when the backend is used."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
