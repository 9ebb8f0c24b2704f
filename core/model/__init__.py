"""The reference model: the BLP's semantics in plain Python (see ``engine.py``)."""
from .engine import ReferenceModel

__all__ = ["ReferenceModel"]
