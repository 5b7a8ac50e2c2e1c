"""madn_core: the PyTorch library of MADN (Multimodal Artefact Disentanglement Network).

Networks, similarity measures, losses, the model, the training loop and image metrics. It imports
only torch and numpy, so it runs on any machine with PyTorch (a GPU box included) and imports fast.

Submodules are imported on use; the names below are the stable public interface.
"""

from __future__ import annotations

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
from madn_core.model import MADN
from madn_core.similarity import SIMILARITIES, get_similarity, lncc_map, similarity_loss
from madn_core.trainer import NonFiniteLossError, Trainer, TrainerCallback

__all__ = [
    "MADN",
    "SIMILARITIES",
    "VARIANTS",
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
