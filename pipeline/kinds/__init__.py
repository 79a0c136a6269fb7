"""Run kinds: one small module each, declaring its stages and defaults (``core.stages``).

``classification`` and ``language_model`` train a model here; ``imported`` writes states or models
made elsewhere. All of them end in the same project stage (``pipeline.project``).
"""
