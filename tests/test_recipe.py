"""The training recipe's parts: EMA weights, best.ckpt, residual content path, learned gate,
patches, and the promotion gate's decision rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from streaks import streak_batches

from madn_core.checkpoint import load_checkpoint, load_model
from madn_core.config import ConfigError
from madn_core.model import MADN
from madn_core.trainer import Trainer
from tune.train_settings import build_config


def test_ema_follows_the_documented_update_and_is_what_load_model_returns(
    tmp_path: Path,
) -> None:
    trainer = Trainer(tiny_config("adn-ct", **{"train.ema_decay": 0.99}))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    corrupted, clean = next(iter(streak_batches(2, 32, batch_size=2, seed=0, channels=(0,))))
    trainer.train_step(corrupted, clean)
    after = trainer.model.state_dict()
    averaged = trainer.ema.model.state_dict()
    name = "decoder_clean.layers.0.body.0.1.weight"
    first_decay = 1.0 / 10.0  # min(0.99, (1 + 0) / (10 + 0))
    expected = first_decay * before[name] + (1 - first_decay) * after[name]
    torch.testing.assert_close(averaged[name], expected)
    assert not torch.equal(averaged[name], after[name])
    trainer.save(tmp_path / "x.ckpt")
    loaded = load_model(tmp_path / "x.ckpt").state_dict()
    torch.testing.assert_close(loaded[name], averaged[name])
    resumed = Trainer(tiny_config("adn-ct", **{"train.ema_decay": 0.99}))
    resumed.load(tmp_path / "x.ckpt")
    assert resumed.ema.updates == 1
    torch.testing.assert_close(resumed.ema.model.state_dict()[name], averaged[name])


def test_best_checkpoint_is_the_epoch_with_the_highest_validation_score(
    dataset_path: Path, tmp_path: Path
) -> None:
    from pipelines.training.train import train_model

    config = tiny_config("adn-ct", **{"train.epochs": 3, "train.batch_size": 2})
    result = train_model(dataset_path, config, tmp_path / "run", progress=False)
    scores = [entry["val/score"] for entry in result.history]
    best_epoch = max(range(3), key=scores.__getitem__) + 1
    assert load_checkpoint(result.best)["epoch"] == best_epoch
    assert load_checkpoint(result.checkpoint)["epoch"] == 3
    last_line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last_line["best_epoch"] == best_epoch


def test_val_every_validates_every_nth_and_the_last_epoch_and_picks_best_among_them(
    dataset_path: Path, tmp_path: Path
) -> None:
    from pipelines.training.train import train_model

    config = tiny_config(
        "adn-ct", **{"train.epochs": 5, "train.batch_size": 2, "train.val_every": 2}
    )
    result = train_model(dataset_path, config, tmp_path / "run", progress=False)
    validated = [i + 1 for i, entry in enumerate(result.history) if "val/score" in entry]
    assert validated == [2, 4, 5]
    assert all("train/g_total" in entry for entry in result.history)
    scores = {epoch: result.history[epoch - 1]["val/score"] for epoch in validated}
    best_epoch = max(scores, key=scores.__getitem__)
    assert load_checkpoint(result.best)["epoch"] == best_epoch
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    assert json.loads(lines[-1])["best_epoch"] == best_epoch
    assert (tmp_path / "run" / "samples.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match=r"train\.val_every"):
        tiny_config("adn-ct", **{"train.val_every": 0})


def test_residual_clean_decoder_starts_as_the_identity() -> None:
    config = tiny_config("madn", **{"network.residual": True, "network.content_skips": 3})
    model = MADN(config).eval()
    images = torch.rand(2, 2, 32, 32) * 1.8 - 0.9
    torch.testing.assert_close(model.correct(images), images)
    plain = MADN(tiny_config("madn")).eval()
    assert not torch.allclose(plain.correct(images), images, atol=1e-2)


def test_residual_channels_make_only_the_chosen_channel_start_as_the_identity() -> None:
    images = torch.rand(2, 2, 32, 32) * 1.8 - 0.9
    mri_only = {"network.residual": True, "network.residual_channels": ["mri"]}
    model = MADN(tiny_config("madn", **mri_only)).eval()
    assert model.config.residual_mask == (False, True)
    out = model.correct(images)
    torch.testing.assert_close(out[:, 1], images[:, 1])  # MRI: the identity
    assert not torch.allclose(out[:, 0], images[:, 0], atol=1e-2)  # CT: ADN's synthesis
    assert out[:, 0].abs().max() < 1.0  # still through the tanh
    plain = MADN(tiny_config("madn")).eval()  # the same CT path as the plain decoder
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(out[:, 0], plain.correct(images)[:, 0])
    trainer = Trainer(tiny_config("madn", **mri_only))
    corrupted, clean = next(iter(streak_batches(2, 32, batch_size=2, seed=0, channels=(0, 1))))
    trainer.train_step(corrupted, clean)
    trained = trainer.model.eval().correct(corrupted)  # one step moves the MRI off the identity
    assert (trained[:, 1] - corrupted[:, 1]).abs().max() > 1e-4
    ct_only = MADN(tiny_config("adn-ct", **mri_only))  # no MRI channel: ADN's decoder
    assert ct_only.config.residual_mask == (False,) and not ct_only.decoder_clean.residual
    with pytest.raises(ConfigError, match=r"network\.residual_channels"):
        tiny_config("madn", **{"network.residual": True, "network.residual_channels": ["pet"]})


def test_gate_blends_the_correction_with_the_input_and_only_the_gate_learns_from_its_term():
    images = torch.rand(2, 2, 32, 32) * 1.8 - 0.9
    shut = MADN(tiny_config("madn", **{"network.gated": True, "network.gate_bias": -30.0}))
    torch.testing.assert_close(shut.eval().correct(images), images)  # gate shut: the input
    gated = MADN(tiny_config("madn", **{"network.gated": True})).eval()
    plain = MADN(tiny_config("madn")).eval()
    plain.load_state_dict(gated.state_dict(), strict=False)  # the same E_Ia and G_I, no gate
    half = 0.5 * plain.correct(images) + 0.5 * images  # sigmoid(0) = 0.5 everywhere at first
    torch.testing.assert_close(gated.correct(images), half)
    model = MADN(tiny_config("madn", **{"network.gated": True})).train()
    clean = torch.rand(2, 2, 32, 32) * 1.8 - 0.9
    terms, out = model.generator_loss(images, clean)
    model.gate_loss(out, clean).backward()
    assert model.gate.head.bias.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.decoder_clean.parameters())
    assert {"gate", "gate_adv"} <= terms.keys() and "idt" not in terms
    with pytest.raises(ConfigError, match=r"network\.gate_bias"):
        tiny_config("madn", **{"network.gated": True, "network.gate_bias": math.inf})


def test_patches_train_a_model_that_corrects_whole_slices(dataset_path: Path, tmp_path: Path):
    from pipelines.training.train import train_model

    config = tiny_config(
        "adn-ct", **{"train.patch": 16, "train.patch_focus": 0.5, "train.epochs": 1}
    )
    result = train_model(dataset_path, config, tmp_path / "run", progress=False)
    model = load_model(result.checkpoint)
    assert model.config.train.patch_focus == 0.5
    assert model.correct(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ConfigError, match=r"train\.patch"):
        tiny_config("adn-ct", **{"train.patch": 18})
    with pytest.raises(ConfigError, match=r"train\.patch_focus must be <= 1, got 2"):
        tiny_config("adn-ct", **{"train.patch_focus": 2.0})


@pytest.mark.parametrize(
    ("gain", "score", "champion", "crowned", "reason"),
    [
        (-0.4, -0.4, None, False, "does not beat No MAR"),
        (0.0, 0.0, None, False, "does not beat No MAR"),
        (math.nan, math.nan, None, False, "does not beat No MAR"),
        (0.3, 0.3, None, True, "no champion before"),
        (0.3, 0.3, 0.5, False, "does not beat the champion"),
        (0.6, 0.6, 0.5, True, "and the champion"),
    ],
)
def test_gate_crowns_only_models_better_than_no_mar_and_the_champion(
    gain: float, score: float, champion: float | None, crowned: bool, reason: str
) -> None:
    from tune.registry import gate

    decision, why = gate(gain, score, champion, "max")
    assert decision is crowned and reason in why


@pytest.mark.parametrize(
    ("settings", "size", "residual_mri", "band"),
    [
        ({"variant": "madn"}, 256, True, 30.0),  # the recipe: a residual MRI, 30 mm band
        ({"variant": "adn-mr"}, 256, True, 30.0),
        ({"variant": "madn", "residual": False}, 256, False, 10.0),  # ADN's MRI: 10 mm
        ({"variant": "madn"}, 64, False, 10.0),  # no patch, no void term: no residual MRI
        ({"variant": "madn", "model": {"network": {"mri_band_mm": 20.0}}}, 256, True, 20.0),
        ({"variant": "madn", "model": {"network": {"mri_band_mm": 0.0}}}, 256, True, 0.0),  # CT's
        ({"variant": "madn", "residual": True}, 256, True, 30.0),  # --residual: both channels
    ],
)
def test_quality_recipe_gives_the_mri_decoder_its_measured_band(
    settings: dict, size: int, residual_mri: bool, band: float
) -> None:
    config = build_config({"recipe": "quality", **settings}, size)
    assert config.residual_mask[config.channels.index("mri")] is residual_mri
    assert config.network.mri_band_mm == band
    assert (config.loss.lambda_void > 0) is (size > 64)
    # a residual MRI learns from the void term; the artefact-consistency term compares the CT
    assert config.loss.art_channels == (["ct"] if residual_mri else None)
    if "ct" in config.channels:  # the CT's decoder is residual only with --residual alone
        assert config.residual_mask[0] is (settings.get("residual") is True)
    ct = build_config({"recipe": "quality", "variant": "adn-ct"}, 256)
    assert ct.residual_mask == (False,)  # the CT keeps ADN's synthesis


def test_an_explicit_art_channels_setting_overrides_the_recipe() -> None:
    explicit = {"recipe": "quality", "variant": "madn", "model": {"loss": {"art_channels": None}}}
    assert build_config(explicit, 256).loss.art_channels is None
    assert build_config({"recipe": "quality", "variant": "madn"}, 256).loss.art_channels == ["ct"]
