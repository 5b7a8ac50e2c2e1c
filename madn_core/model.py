"""The MADN model: ADN's three encoders, two decoders and two discriminators, any variant.

Paper notation (ADN code names in brackets). For a corrupted batch x^a and an unpaired clean
batch y, each (N, C, H, W) in [-1, 1] with C = 1 (adn-ct, adn-mr) or 2 (CT, MRI):
    c^a = E_Ia(x^a), a = E_a(x^a), c = E_I(y)
    x̂^a = G_Ia(c^a, a) ["ll"]   x̂ = G_I(c^a) ["lh", the corrected image]
    ŷ^a = G_Ia(c, a)   ["hl"]   ŷ = G_I(c)   ["hh"]
    self-reduction  G_I(E_Ia(ŷ^a))  -> y    ["hlh"]
    self-synthesis  G_Ia(E_I(x̂), a) -> x^a  ["lhl", MADN's full cycle]
    identity        G_I(E_Ia(y))    -> y    [CycleGAN's identity loss, when lambda_idt > 0]
    void            G_I(E_Ia(v(y))) -> y    [MRI inpainting inside random discs, lambda_void > 0]
    gate (network.gated): g = Gate(x^a, x̂); the corrected image is g x̂ + (1 - g) x^a
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from madn_core.config import MADNConfig
from madn_core.correction import correct_images
from madn_core.losses import gan_discriminator_loss, gan_generator_loss, l1
from madn_core.networks import Decoder, Encoder, Gate, PatchDiscriminator
from madn_core.similarity import get_similarity, similarity_loss
from madn_core.voids import masked_l1, random_voids

Outputs = dict[str, torch.Tensor]
Encoded = tuple[torch.Tensor, list[torch.Tensor]]  # an encoder's (code, features deepest first)


class MADN(nn.Module):
    """Encoders E_I, E_Ia, E_a; decoders G_I, G_Ia; discriminators D_I, D_Ia (see module doc).

    The artefact encoder builds only the layers whose outputs the artefact decoder fuses (with
    the default 3 side inputs, no residual blocks: ADN's code builds four it never uses).
    """

    def __init__(self, config: MADNConfig) -> None:
        super().__init__()
        self.config = config
        net = config.network
        channels = config.in_channels

        def encoder(num_res: int) -> Encoder:
            return Encoder(
                channels, net.base_channels, net.num_down, num_res, net.encoder_norm, net.padding
            )

        def decoder(num_sides: int, residual: bool | tuple[bool, ...] = False) -> Decoder:
            return Decoder(
                channels,
                net.base_channels,
                net.num_down,
                net.num_res,
                num_sides,
                net.decoder_norm,
                net.up_norm,
                net.padding,
                residual,
            )

        def discriminator() -> PatchDiscriminator:
            return PatchDiscriminator(
                channels,
                net.discriminator_channels,
                net.discriminator_layers,
                net.discriminator_norm,
            )

        self.encoder_clean = encoder(net.num_res)  # E_I
        self.encoder_corrupt = encoder(net.num_res)  # E_Ia
        self.encoder_artefact = encoder(max(0, net.num_sides - net.num_down - 1))  # E_a
        self.decoder_clean = decoder(net.content_skips, config.residual_mask)  # G_I
        self.decoder_corrupt = decoder(net.num_sides)  # G_Ia
        self.gate = Gate(channels, net.base_channels, net.gate_bias) if net.gated else None
        self.discriminator_clean = discriminator()  # D_I
        self.discriminator_corrupt = discriminator()  # D_Ia
        loss = config.loss
        self.similarity = (
            get_similarity(loss.similarity, loss.sigma, loss.nmi_bins)
            if config.uses_similarity
            else None
        )

    # -- parameter groups -------------------------------------------------------------------
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the three encoders and two decoders (one optimiser in ADN)."""
        for module in (
            self.encoder_clean,
            self.encoder_corrupt,
            self.encoder_artefact,
            self.decoder_clean,
            self.decoder_corrupt,
            self.gate,
        ):
            if module is not None:
                yield from module.parameters()

    def discriminators(self) -> tuple[PatchDiscriminator, PatchDiscriminator]:
        return self.discriminator_clean, self.discriminator_corrupt

    # -- forward paths ----------------------------------------------------------------------
    def decode_clean(self, encoded: Encoded, image: torch.Tensor) -> torch.Tensor:
        """G_I on an encoder's (code, features) of `image` (N, C, H, W); content skips and the
        residual base are used when the network config enables them."""
        code, features = encoded
        net = self.config.network
        residual = any(self.config.residual_mask)
        return self.decoder_clean(
            code, features if net.content_skips else None, image if residual else None
        )

    def decode_corrupt(
        self, code: torch.Tensor, artefact: list[torch.Tensor], image: torch.Tensor
    ) -> torch.Tensor:
        """G_Ia on a content code of `image` (N, C, H, W) fused with artefact features (always
        ADN's synthesis: a residual G_Ia would make "add nothing, remove nothing" a minimum)."""
        return self.decoder_corrupt(code, artefact)

    @torch.no_grad()
    def correct(self, corrupted: torch.Tensor, metal: torch.Tensor | None = None) -> torch.Tensor:
        """Artefact-reduced images x̂ = G_I(E_Ia(x^a)): (N, C, H, W) -> (N, C, H, W) in [-1, 1],
        with the metal fill and implant band the network config enables (`madn_core.correction`).
        `metal`: the (N, 1, H, W) bool metal mask, found in the CT channel when not given."""
        return correct_images(
            self.config, self.encoder_corrupt, self.decoder_clean, corrupted, metal, self.gate
        )

    def forward(self, corrupted: torch.Tensor, clean: torch.Tensor) -> Outputs:
        """All generator paths of one training step; keys as in the module docstring."""
        encoded_corrupt = self.encoder_corrupt(corrupted)
        _, artefact = self.encoder_artefact(corrupted)
        encoded_clean = self.encoder_clean(clean)
        corrected = self.decode_clean(encoded_corrupt, corrupted)
        clean_corrupted = self.decode_corrupt(encoded_clean[0], artefact, clean)
        outputs: Outputs = {
            "corrupt_recon": self.decode_corrupt(encoded_corrupt[0], artefact, corrupted),
            "corrected": corrected,
            "clean_corrupted": clean_corrupted,
            "clean_recon": self.decode_clean(encoded_clean, clean),
            "self_reduction": self.decode_clean(
                self.encoder_corrupt(clean_corrupted), clean_corrupted
            ),
        }
        if self.config.loss.lambda_idt > 0 or self.gate is not None:
            with torch.set_grad_enabled(
                torch.is_grad_enabled() and self.config.loss.lambda_idt > 0
            ):
                outputs["clean_identity"] = self.decode_clean(self.encoder_corrupt(clean), clean)
        if self.uses_void_term:
            outputs.update(self.void_paths(clean))
        if self.config.full_cycle:
            outputs["self_synthesis"] = self.decode_corrupt(
                self.encoder_clean(corrected)[0], artefact, corrected
            )
        return outputs

    @property
    def uses_void_term(self) -> bool:
        """Whether the void-inpainting term is on: `loss.lambda_void` > 0 and an MRI channel."""
        return self.config.loss.lambda_void > 0 and "mri" in self.config.channels

    def void_paths(self, clean: torch.Tensor) -> Outputs:
        """{"void_mask": (N, 1, H, W) bool voids, "clean_void": G_I(E_Ia(v(y))) (N, C, H, W)}
        for a clean batch y, v voiding the MRI channel in one random disc per image, hard-edged
        or soft (`loss.void_shape`, `madn_core.voids`)."""
        loss = self.config.loss
        mri = self.config.channels.index("mri")
        voided, masks = random_voids(clean, mri, loss.void_radius_px, loss.void_shape)
        restored = self.decode_clean(self.encoder_corrupt(voided), voided)
        return {"void_mask": masks, "clean_void": restored}

    # -- objectives -------------------------------------------------------------------------
    def artefact_consistency(
        self, corrupted: torch.Tensor, clean: torch.Tensor, out: Outputs
    ) -> torch.Tensor:
        """|(x^a - x̂) - (ŷ^a - y)|_1 over the channels of `config.art_mask` (0 with none):
        the artefact removed from the corrupted image equals the one added to the clean one."""
        keep = [i for i, on in enumerate(self.config.art_mask) if on]
        if not keep:
            return corrupted.new_zeros((), dtype=torch.float32)
        removed = corrupted[:, keep].float() - out["corrected"][:, keep].float()
        return l1(removed, out["clean_corrupted"][:, keep].float() - clean[:, keep].float())

    def generator_loss(
        self, corrupted: torch.Tensor, clean: torch.Tensor
    ) -> tuple[Outputs, Outputs]:
        """(terms, outputs). terms holds each unweighted loss term and "g_total", the weighted
        sum of eq. 8 that the generator optimiser minimises; all scalars."""
        loss = self.config.loss
        out = self(corrupted, clean)
        terms: Outputs = {
            "adv_clean": gan_generator_loss(
                self.discriminator_clean(out["corrected"]), loss.gan_mode
            ),
            "adv_corrupt": gan_generator_loss(
                self.discriminator_corrupt(out["clean_corrupted"]), loss.gan_mode
            ),
            "rec": l1(out["corrupt_recon"], corrupted) + l1(out["clean_recon"], clean),
            "self_reduction": l1(out["self_reduction"], clean),
            "art": self.artefact_consistency(corrupted, clean, out),
        }
        total = (
            loss.lambda_adv * (terms["adv_clean"] + terms["adv_corrupt"])
            + loss.lambda_rec * terms["rec"]
            + loss.lambda_cycle * terms["self_reduction"]
            + loss.lambda_art * terms["art"]
        )
        if loss.lambda_idt > 0:
            terms["idt"] = l1(out["clean_identity"], clean)
            total = total + loss.lambda_idt * terms["idt"]
        if self.gate is not None:
            terms["gate"] = self.gate_loss(out, clean)
            gated = self.gate.blend(corrupted, out["corrected"].detach())
            terms["gate_adv"] = gan_generator_loss(self.discriminator_clean(gated), loss.gan_mode)
            total = (
                total + loss.lambda_gate * terms["gate"] + loss.lambda_gate_adv * terms["gate_adv"]
            )
        if "clean_void" in out:
            mri = self.config.channels.index("mri")
            terms["void"] = masked_l1(
                out["clean_void"][:, mri : mri + 1], clean[:, mri : mri + 1], out["void_mask"]
            )
            total = total + loss.lambda_void * terms["void"]
        if "self_synthesis" in out:
            terms["self_synthesis"] = l1(out["self_synthesis"], corrupted)
            total = total + loss.lambda_cycle * terms["self_synthesis"]
        if self.similarity is not None:
            corrected = out["corrected"]
            terms["sim"] = similarity_loss(corrected[:, 0], corrected[:, 1], self.similarity)
            total = total + loss.lambda_sim * terms["sim"]
        terms["g_total"] = total
        return terms, out

    def gate_loss(self, out: Outputs, clean: torch.Tensor) -> torch.Tensor:
        """The gate's term (`loss.lambda_gate`): |g r + (1 - g) b - y|_1 summed over the
        synthetic pair (b = ŷ^a, r its self-reduction) and the clean pair (b = y, r its identity
        output), with b and r detached: G_I is not trained by it, only the gate."""
        assert self.gate is not None
        total = clean.new_zeros(())
        for base, reduced in (
            (out["clean_corrupted"], out["self_reduction"]),
            (clean, out["clean_identity"]),
        ):
            blended = self.gate.blend(base.detach(), reduced.detach())
            total = total + l1(blended, clean)
        return total

    def discriminator_loss(
        self, corrupted: torch.Tensor, clean: torch.Tensor, outputs: Outputs
    ) -> Outputs:
        """D_I: clean y real vs x̂ fake; D_Ia: x^a real vs ŷ^a fake (fakes detached). Scalars
        "d_clean", "d_corrupt" and their sum "d_total"."""
        mode = self.config.loss.gan_mode
        d_clean = gan_discriminator_loss(
            self.discriminator_clean(clean),
            self.discriminator_clean(outputs["corrected"].detach()),
            mode,
        )
        d_corrupt = gan_discriminator_loss(
            self.discriminator_corrupt(corrupted),
            self.discriminator_corrupt(outputs["clean_corrupted"].detach()),
            mode,
        )
        return {"d_clean": d_clean, "d_corrupt": d_corrupt, "d_total": d_clean + d_corrupt}
