"""Shared output helpers. Takes finished arrays and text; gives files written atomically
(`atomic`: temp name, then rename), PNG figures and image grids (`figures`) and tqdm progress
bars for the training loop (`progress`). Imports no other stage."""
