"""Jobs over data: synthesis, ingestion, shards, datasets, training, evaluation, inference.

Depends on madn_core; knows nothing of Ray or MLflow (those live in `tune`).
"""
