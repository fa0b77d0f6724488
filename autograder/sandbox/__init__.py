"""The trusted side of the sandbox: build the isolated command, run it, read its frames into artifacts."""
