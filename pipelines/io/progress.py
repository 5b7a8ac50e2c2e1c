"""A tqdm progress bar for madn_core training (a TrainerCallback)."""

from __future__ import annotations

from tqdm.auto import tqdm

from madn_core.trainer import Trainer, TrainerCallback


class ProgressBar(TrainerCallback):
    """One bar over all optimisation steps, showing the latest losses; epoch metrics on close."""

    def __init__(
        self,
        total_steps: int,
        description: str = "train",
        shown: tuple[str, ...] = ("g_total", "rec", "d_total"),
    ) -> None:
        self.bar = tqdm(total=total_steps, desc=description, unit="step", dynamic_ncols=True)
        self.shown = shown

    def on_step(self, trainer: Trainer, step: int, losses: dict[str, float]) -> None:
        self.bar.update(1)
        self.bar.set_postfix(
            {k: f"{losses[k]:.3f}" for k in self.shown if k in losses}, refresh=False
        )

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        shown = {k: f"{v:.3f}" for k, v in metrics.items() if k.startswith("val/")}
        self.bar.write(f"epoch {epoch}: {shown}")

    def close(self) -> None:
        self.bar.close()
