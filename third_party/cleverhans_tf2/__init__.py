"""Adapter around CleverHans 4.0.0's TF2 attacks that fixes its known bugs.

See third_party/cleverhans_tf2/README.md for the upstream version, the bugs and the fixes.
"""

from third_party.cleverhans_tf2.carlini_wagner_l2 import CarliniWagnerL2, CWOutput
from third_party.cleverhans_tf2.gradient_attacks import (
    fast_gradient_method,
    projected_gradient_descent,
)
from third_party.cleverhans_tf2.spsa import spsa

UPSTREAM_VERSION = "4.0.0"

__all__ = [
    "UPSTREAM_VERSION",
    "CWOutput",
    "CarliniWagnerL2",
    "fast_gradient_method",
    "projected_gradient_descent",
    "spsa",
]
