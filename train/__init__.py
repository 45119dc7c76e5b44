"""spikecodec.train -- torch side: datasets, spike encodings, neuron blocks, the papers' models and
learning rules, and the training loop. Import submodules directly, e.g.
``from spikecodec.train.encoding import poisson_rate``."""
