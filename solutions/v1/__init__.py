"""Assignment v1: handwritten digits (MNIST) with Keras."""
