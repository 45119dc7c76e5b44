"""The papers' models, one module each."""
