"""madn_core: the PyTorch library of MADN (Multimodal Artefact Disentanglement Network).

Networks, similarity measures, losses, the model, the training loop and image metrics. It imports
only torch and numpy, so it runs on any machine with PyTorch (a GPU box included).

The names below are the stable public interface. The configuration and the errors import at once
(no torch); the rest import torch on first use (PEP 562), so `import madn_core` takes about
0.03 s and `madn --help` 0.1 s, instead of the 3 s that `import torch` costs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from madn_core.config import (
    VARIANTS,
    ConfigError,
    LossConfig,
    MADNConfig,
    NetworkConfig,
    OptimConfig,
    TrainConfig,
)
from madn_core.errors import CheckpointError

if TYPE_CHECKING:
    from madn_core.model import MADN
    from madn_core.similarity import SIMILARITIES, get_similarity, lncc_map, similarity_loss
    from madn_core.trainer import NonFiniteLossError, Trainer, TrainerCallback

_LAZY = {
    "MADN": "madn_core.model",
    "SIMILARITIES": "madn_core.similarity",
    "get_similarity": "madn_core.similarity",
    "lncc_map": "madn_core.similarity",
    "similarity_loss": "madn_core.similarity",
    "NonFiniteLossError": "madn_core.trainer",
    "Trainer": "madn_core.trainer",
    "TrainerCallback": "madn_core.trainer",
}


def __getattr__(name: str) -> Any:
    """Import a torch-backed public name from its submodule on first use, then cache it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'madn_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "MADN",
    "SIMILARITIES",
    "VARIANTS",
    "CheckpointError",
    "ConfigError",
    "LossConfig",
    "MADNConfig",
    "NetworkConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "TrainConfig",
    "Trainer",
    "TrainerCallback",
    "__version__",
    "get_similarity",
    "lncc_map",
    "similarity_loss",
]
