"""The frame format between sandbox and grader: round trip, and hard refusals of malformed streams."""

import io

import pytest

from autograder.harness.protocol import MAGIC, ProtocolError, encode_frame, read_frame

CAPS = {"max_file_bytes": 1000, "max_frame_bytes": 1500}


def test_round_trip():
    stream = io.BytesIO(encode_frame("preprocess", {"seconds": 1.5}, [("x.npy", b"abc"), ("result.json", b"{}")]))
    header, files = read_frame(stream, **CAPS)
    assert header["probe"] == "preprocess" and header["status"] == {"seconds": 1.5}
    assert files == [("x.npy", b"abc"), ("result.json", b"{}")]
    assert read_frame(stream, **CAPS) is None


@pytest.mark.parametrize("data, message", [
    (b"garbage!" + b"0" * 20, "magic"),
    (MAGIC + b"zzzzzzzz\n", "length"),
    (MAGIC + b"%08x\n" % 10**6, "too long"),
    (MAGIC + b"00000005\n[1,2]", "lacks"),
    (encode_frame("p", {}, [("../escape", b"x")]), "bad file name"),
    (encode_frame("p", {}, [("big.npy", b"x" * 1001)]), "above the cap"),
    (encode_frame("p", {}, [("a.npy", b"x" * 900), ("b.npy", b"x" * 900)]), "larger than the cap"),
    (encode_frame("p", {}, [("a.npy", b"x" * 10)])[:-3], "ended"),
])
def test_malformed_streams_are_refused(data, message):
    with pytest.raises(ProtocolError, match=message):
        read_frame(io.BytesIO(data), **CAPS)
