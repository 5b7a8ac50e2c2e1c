"""Jobs over data, one subpackage per stage. Stages import only the stages listed before them
(tests/test_layering.py checks it), and everything may use madn_core:

1. `io`: atomic writes, figures and progress bars, shared by every stage.
2. `synth`: synthetic hip CT/MRI subjects with physics-based metal artefacts (and the CT
   projector the baselines reuse).
3. `baselines`: the classical MAR methods LI and NMAR.
4. `data`: manifests, volumes, registration, intensity mapping, Parquet slice shards, ingestion
   and the dataset reader (ingestion's optional LI pre-correction for registration is the one
   use of `baselines`).
5. `training`: `train_model` and the per-epoch validation metrics.
6. `inference`: correcting whole volumes with a trained model.
7. `evaluation`: the paper's protocol (sigma_CT, Dice by label propagation, PSNR/SSIM, paired
   tests), its tables and figures. Nothing imports it.
"""

STAGES = ("io", "synth", "baselines", "data", "training", "inference", "evaluation")
