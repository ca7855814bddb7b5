"""Domain adaptation as pluggable losses: one interface, one module per method, a registry of names.

See :mod:`aims_lib.adaptation.base` (the interface) and :mod:`aims_lib.adaptation.registry`
(the names, and how to add a method).
"""

from aims_lib.adaptation.base import AdaptationBatch, DomainAdaptation
from aims_lib.adaptation.registry import METHODS, build_method, get_method

__all__ = ["METHODS", "AdaptationBatch", "DomainAdaptation", "build_method", "get_method"]
