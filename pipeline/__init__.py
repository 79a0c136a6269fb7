"""LSTM Lens pipeline: the write side. Turns data and models into run directories (the contract is
``pipeline.runformat``; the packages and their layers are in docs/architecture.md).

Importing this package does not import TensorFlow; only the modules that train or run models do.
"""
