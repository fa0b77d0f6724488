"""Exhausts resources, one function each: preprocess spins forever, build_model allocates memory until
it is killed, compile_model fork-bombs up to the process limit (its children keep forking and sleep),
train_one_epoch writes 200 MB to stdout and stderr, train_model sleeps forever. Every other function is
correct and must keep its points."""


def preprocess(images, labels):
    spins = 0
    while True:
        spins += 1


def build_model(hidden_units=(500, 500), activation="sigmoid"):
    hoard = []
    while True:
        hoard.append(b"\x01" * (64 << 20))  # written, so really resident


def compile_model(model, optimizer="adam", learning_rate=None):
    import os
    import time
    me = os.getpid()
    while True:
        try:
            os.fork()
        except OSError:
            if os.getpid() == me:
                raise RuntimeError("the fork bomb reached the process limit")
            while True:
                time.sleep(1)


def train_one_epoch(model, x, y, batch_size, rng):
    import sys
    line = "all work and no play " * 500 + "\n"  # 10 KB
    for _ in range(10_000):  # 100 MB on each stream
        sys.stdout.write(line)
        sys.stderr.write(line)
    return 0


def train_model(model, x, y, batch_size=100, epochs=20):
    import time
    time.sleep(10 ** 6)
