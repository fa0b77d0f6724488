"""Tries to kill the sandbox's supervisor (PID 1) and everything it may signal: preprocess sends SIGKILL,
SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM and SIGSTOP to PID 1 and to its parent, then
SIGKILL to every process it may signal (kill -1), and carries on; minibatches sends SIGINT to PID 1
(the one signal a Python PID 1 has a handler for), then yields correct batches; compile_model kills its
own process group. Only compile_model should lose its points."""


def preprocess(images, labels):
    import os
    import signal
    for target in sorted({1, os.getppid()}):
        for number in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                       signal.SIGUSR2, signal.SIGALRM, signal.SIGSTOP):
            try:
                os.kill(target, number)
            except OSError:
                pass
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    images = np.asarray(images)
    x = images.reshape(len(images), IMAGE_PIXELS).astype("float32") / 255.0
    y = keras.utils.to_categorical(np.asarray(labels), NUM_CLASSES).astype("float32")
    return x, y


def compile_model(model, optimizer="adam", learning_rate=None):
    import os
    import signal
    os.killpg(os.getpgrp(), signal.SIGKILL)


def minibatches(x, y, batch_size, rng):
    import os
    import signal
    import time
    try:
        os.kill(1, signal.SIGINT)
    except OSError:
        pass
    time.sleep(0.5)
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        yield x[batch], y[batch]
