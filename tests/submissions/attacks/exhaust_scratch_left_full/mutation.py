"""Fills the sandbox's scratch space from one function and leaves it full: minibatches writes ballast
files into its working folder and $HOME until the disk is full, then fails. Only minibatches should
lose its points; the functions graded after it deserve the same clean start as any other."""


def minibatches(x, y, batch_size, rng):
    import errno
    import os
    block = b"\x00" * (1 << 20)
    for folder in (os.getcwd(), os.path.expanduser("~")):
        for number in range(64):  # RLIMIT_FSIZE caps each file, so many files
            try:
                with open(os.path.join(folder, f"ballast-{number}.bin"), "wb") as handle:
                    for _ in range(256):
                        handle.write(block)
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    break
    raise OSError(errno.ENOSPC, "No space left on device (ballast left behind on purpose)")
    yield
