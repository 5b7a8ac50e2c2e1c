"""Synthetic paired hip CT/MRI volumes with physics-based metal artefacts.

See docs/synthesis.md.
"""
