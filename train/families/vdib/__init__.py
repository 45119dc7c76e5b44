"""VDIB (Skatchkovsky, Simeone & Jang 2021): model, learning rule, tasks and training loop."""
