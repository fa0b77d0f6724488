"""preprocess returns the digit labels as floats instead of one-hot rows."""


def preprocess(images, labels):
    images = np.asarray(images)
    x = images.reshape(len(images), IMAGE_PIXELS).astype("float32") / 255.0
    y = np.asarray(labels).astype("float32")
    return x, y
