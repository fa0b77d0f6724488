"""preprocess changes Keras's global settings on its way out (float16 everywhere, every tf.function run
eagerly): a student chasing speed. preprocess's own result is right. The grader runs a submission's
checks one after another in one process, so it must undo such settings between two functions: the
float16 layers would otherwise break build_model's checks and the retrain, and none of that is
preprocess's doing."""


def preprocess(images, labels):
    import tensorflow as tf
    images = np.asarray(images)
    x = images.reshape(len(images), IMAGE_PIXELS).astype("float32") / 255.0
    y = keras.utils.to_categorical(np.asarray(labels), NUM_CLASSES).astype("float32")
    keras.config.set_floatx("float16")
    keras.config.set_epsilon(1e-3)
    tf.config.run_functions_eagerly(True)
    return x, y
