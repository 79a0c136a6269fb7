"""LSTM Lens dashboard: the read side. Reads runs through pipeline.runformat; never imports TensorFlow.

``dashboard.app.create_app(runs_dir)`` builds the Dash app (see dashboard.views for the views).
"""
