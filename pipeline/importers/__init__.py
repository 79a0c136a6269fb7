"""Readers of states and models made elsewhere (arrays, LSTMVis projects, Keras, PyTorch): each turns
its input into an ``importers.base.ImportedRun``; ``kinds.imported`` writes it as an ordinary run."""
