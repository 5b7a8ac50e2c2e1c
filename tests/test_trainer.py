"""The MADN objective and training loop on tiny generated streak pairs."""

from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from streaks import streak_batches

from madn_core.checkpoint import CheckpointError, load_model
from madn_core.trainer import NonFiniteLossError, Trainer, TrainerCallback

G_TERMS = {"adv_clean", "adv_corrupt", "rec", "self_reduction", "art", "g_total"}
D_TERMS = {"d_clean", "d_corrupt", "d_total"}


@pytest.mark.parametrize(
    ("variant", "channels", "extra"),
    [
        ("adn-ct", (0,), set()),
        ("adn-mr", (1,), set()),
        ("multichannel", (0, 1), set()),
        ("madn", (0, 1), {"self_synthesis", "sim"}),
    ],
)
def test_every_variant_steps_and_names_its_terms(
    variant: str, channels: tuple[int, ...], extra: set
) -> None:
    trainer = Trainer(tiny_config(variant))
    corrupted, clean = streak_batches(4, 32, 4, seed=1, channels=channels)[0]
    values = trainer.train_step(corrupted, clean)
    assert set(values) == G_TERMS | D_TERMS | extra
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())


@pytest.mark.parametrize("similarity", ["lncc", "cc", "nmi"])
def test_similarity_term_uses_configured_measure(similarity: str) -> None:
    trainer = Trainer(tiny_config("madn", **{"loss.similarity": similarity, "loss.sigma": 2.0}))
    corrupted, clean = streak_batches(4, 32, 4, seed=1)[0]
    values = trainer.train_step(corrupted, clean)
    assert 0.0 <= values["sim"] <= 1.0


def test_identity_term_is_weighted_into_the_total_and_leaves_clean_images_alone() -> None:
    """loss.lambda_idt adds |G_I(E_Ia(y)) - y|_1 to g_total, and training with it keeps the
    correction path closer to the identity on clean images than training without it."""
    corrupted, clean = streak_batches(4, 32, 4, seed=1)[0]
    base = tiny_config("multichannel", **{"train.seed": 3, "optim.lr": 1e-3})
    with_idt = base.with_overrides({"loss.lambda_idt": 10.0})
    torch.manual_seed(0)
    model = Trainer(with_idt).model
    terms, _ = model.generator_loss(corrupted, clean)
    off = model.config.with_overrides({"loss.lambda_idt": 0.0})
    model.config = off
    terms_off, _ = model.generator_loss(corrupted, clean)
    assert "idt" in terms and "idt" not in terms_off
    expected = terms_off["g_total"] + 10.0 * terms["idt"]
    assert torch.allclose(terms["g_total"], expected, rtol=1e-4)

    batches = streak_batches(24, 32, 4, seed=2)
    errors = {}
    for name, config in (("off", base), ("on", with_idt)):
        trainer = Trainer(config.with_overrides({"train.epochs": 8}))
        trainer.fit(batches)
        net = trainer.inference_model.eval()
        with torch.no_grad():
            out = net.decode_clean(net.encoder_corrupt(clean), clean)
        errors[name] = float((out - clean).abs().mean())
    assert errors["on"] < 0.8 * errors["off"], errors


def test_vanilla_gan_objective() -> None:
    trainer = Trainer(tiny_config("madn", **{"loss.gan_mode": "vanilla"}))
    values = trainer.train_step(*streak_batches(4, 32, 4, seed=1)[0])
    # BCE of a random discriminator is near log 2, least squares near 0.25-1
    assert 0.3 < values["d_clean"] < 1.5


def test_reconstruction_loss_falls() -> None:
    trainer = Trainer(tiny_config("madn", **{"train.epochs": 6}))
    batches = streak_batches(32, 32, 4, seed=2)
    history = trainer.fit(batches)
    assert trainer.step == 48
    first, last = history[0]["train/rec"], history[-1]["train/rec"]
    assert last < 0.6 * first, (first, last)
    assert history[-1]["train/g_total"] < history[0]["train/g_total"]


def test_resume_is_bit_exact(tmp_path: Path) -> None:
    batches = streak_batches(8, 32, 4, seed=3)

    def shuffled(epoch: int) -> list:
        order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(epoch))
        return [batches[i] for i in order]

    straight = Trainer(tiny_config("madn", **{"train.epochs": 3}))
    straight.fit(shuffled)

    first = Trainer(tiny_config("madn", **{"train.epochs": 3}))
    first.fit(shuffled, epochs=1, checkpoint_path=tmp_path / "last.ckpt")
    resumed = Trainer(tiny_config("madn", **{"train.epochs": 3}))
    resumed.load(tmp_path / "last.ckpt")
    assert resumed.epoch == 1 and resumed.step == 2
    resumed.fit(shuffled)

    assert resumed.history == straight.history
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_accepts_changed_inference_settings_only(tmp_path: Path) -> None:
    """A run resumed with another shrink or band (read by MADN.correct only), or with a residual
    channel the variant lacks, loads; one with another width or decoder does not."""
    path = Trainer(tiny_config("adn-ct")).save(tmp_path / "last.ckpt")
    inference = {"network.correction_shrink": 0.15, "network.shrink_rule": "garrote"}
    resumed = Trainer(tiny_config("adn-ct", **inference, **{"network.correction_band_mm": 30.0}))
    resumed.load(path)
    assert resumed.config.network.shrink_rule == "garrote"  # the new settings, the old weights
    wider = Trainer(tiny_config("adn-ct", **{"network.base_channels": 16}))
    with pytest.raises(CheckpointError, match="another architecture"):
        wider.load(path)
    mri_residual = {"network.residual": True, "network.residual_channels": ["mri"]}
    Trainer(tiny_config("adn-ct", **mri_residual)).load(path)  # no MRI channel: the same G_I
    with pytest.raises(CheckpointError, match="another architecture"):
        Trainer(tiny_config("adn-ct", **{"network.residual": True})).load(path)


def test_non_finite_loss_is_a_clear_error_before_any_update() -> None:
    trainer = Trainer(tiny_config("madn"))
    corrupted, clean = streak_batches(4, 32, 4, seed=4)[0]
    corrupted = corrupted.clone()
    corrupted[0, 0, 0, 0] = float("nan")
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 1: .*rec=nan"):
        trainer.train_step(corrupted, clean)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


class Recorder(TrainerCallback):
    def __init__(self, stop_after: int) -> None:
        self.steps: list[int] = []
        self.epochs: list[tuple[int, dict]] = []
        self.stop_after = stop_after

    def on_step(self, trainer: Trainer, step: int, losses: dict[str, float]) -> None:
        self.steps.append(step)

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, metrics))
        if epoch >= self.stop_after:
            trainer.request_stop()


def test_callbacks_validation_and_stop() -> None:
    recorder = Recorder(stop_after=2)
    trainer = Trainer(tiny_config("adn-ct", **{"train.epochs": 5}), callbacks=[recorder])
    batches = streak_batches(8, 32, 4, seed=5, channels=(0,))

    def validate(model: torch.nn.Module, epoch: int) -> dict[str, float]:
        assert not torch.is_grad_enabled()
        return {"val/score": float(epoch)}

    trainer.fit(batches, validate=validate)
    assert recorder.steps == [1, 2, 3, 4]
    assert [e for e, _ in recorder.epochs] == [1, 2]
    assert recorder.epochs[1][1]["val/score"] == 2.0
    assert "train/rec" in recorder.epochs[0][1]


def test_bf16_autocast_and_channels_last_run_on_cpu() -> None:
    trainer = Trainer(tiny_config("madn", **{"train.amp": True, "train.channels_last": True}))
    values = trainer.train_step(*streak_batches(4, 32, 4, seed=6)[0])
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())


def test_checkpoint_errors(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("adn-ct"))
    path = trainer.save(tmp_path / "adn.ckpt")
    model = load_model(path, expected_variant="adn-ct")
    assert not model.training
    with pytest.raises(
        CheckpointError, match=r"adn.ckpt: checkpoint is of variant 'adn-ct', expected 'madn'"
    ):
        load_model(path, expected_variant="madn")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_model(tmp_path / "missing.ckpt")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"broken\.ckpt: not a readable madn checkpoint"):
        load_model(broken)
    other = Trainer(tiny_config("madn"))
    with pytest.raises(CheckpointError, match="another architecture"):
        other.load(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "adn.ckpt",
        "broken.ckpt",
    ]  # no temp files left
