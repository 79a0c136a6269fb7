"""The only package that imports TensorFlow: the classifier, the character LM, the autoencoder, and
the one Keras weight reader that turns any of them (or a user's model) into NumPy weights."""
