"""Training one model on an ingested dataset. Takes a dataset (`pipelines.data`) and a
MADNConfig; gives a run folder with last.ckpt, best.ckpt, metrics.jsonl and samples.png
(`train`), scoring every epoch against No MAR on the validation split (`validation`)."""
