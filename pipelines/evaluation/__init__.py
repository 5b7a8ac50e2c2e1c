"""The paper's evaluation protocol. Takes a dataset's test split and trained models; gives
per-subject sigma_CT per muscle and side, MRI label propagation Dice, PSNR/SSIM against ground
truth, paired t-tests against each method (`evaluate`, `propagation`, `paired_stats`), and their
tables, box plots and comparison grid (`figures`). The last stage: nothing imports it."""
