"""Assignment v2: clothing images (Fashion-MNIST) with Keras."""
