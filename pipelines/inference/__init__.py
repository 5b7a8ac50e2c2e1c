"""Applying a trained model to a user's scans. Takes a checkpoint (or a loaded model) and CT
(plus registered MRI) volumes of any size, spacing and orientation; gives corrected volumes on
the input's own grid (`correct`)."""
