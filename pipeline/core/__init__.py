"""What every run kind shares, without TensorFlow: the NumPy LSTM, row layouts, prediction tables,
the examples table and the stage engine."""
