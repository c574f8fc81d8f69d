"""Training of the residual model: data preparation, the training loop, export of weights."""
