"""Workflows: compose train and deploy (export, evaluate, parity, quickstart, text reports).

train never runs a backend and deploy never imports train; only this package and the CLI put
the two together."""
