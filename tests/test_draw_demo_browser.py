"""The draw demo in a real browser: real MNIST test digits, thinned to skeletons, drawn with pointer events.

The skeleton helpers are tested fast on real MNIST; the browser test is slow: it starts
``solutions/v1/draw_demo.py`` on the example model, opens it in Debian's headless Chromium through
Playwright, draws each digit's skeleton with mouse down/move/up, and reads the page's answer and the
28x28 input it shows. Its screenshots go to ``out/test-artifacts/``.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest
from PIL import Image, ImageDraw

from test_draw_demo import DEMO_PATH, EXAMPLE_MODEL, REPO, demo

ARTIFACTS = REPO / "out" / "test-artifacts"

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the others keep it from calling home, which on a closed
# network floods refused connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--no-proxy-server"]

DIGITS_PER_CLASS = 2        # the first two of each class in the MNIST test set: 20 digits, none chosen by hand
# Replayed offline (same skeletons, same brush, PIL instead of the browser), the example model reads
# these 20 right 20 times, and 96% of the first 1,000 test digits; 16 of 20 leaves room for the
# browser's own rendering, and is far beyond what a broken pipeline would score (chance is 2 of 20).
MIN_RIGHT = 16
SIMPLIFY_TOLERANCE = 0.5    # MNIST pixels a simplified pointer path may stray from the skeleton
# At most this many MNIST pixels (about 3 brush radii) between two pointer events along a stroke; the
# brush joins consecutive events with a straight line, as it does for a quick real mouse. Each event
# costs the software-rendered canvas about 0.15 s, so denser events only slow the test down.
POINTER_STEP = 3.0
# How far the 28x28 input the page shows may differ (mean absolute difference, values in [0, 1]) from
# the one computed here from a screenshot of the drawing: the screenshot is the canvas shown at the
# editor's zoom, so edges differ a little (at most 0.005 seen). Each digit's longest stroke is drawn
# last, and a drawing without it differs by 0.07 or more (the least of 806 multi-stroke test digits):
# a match is the answer to the whole drawing, not to its first strokes.
PREVIEW_TOLERANCE = 0.03
SERVER_START_S = 120        # importing TensorFlow and Gradio on a busy machine
ANSWER_S = 30
POLL_S = 0.2


# -- skeletons: an MNIST image -> pen strokes -------------------------------------------------------

# Straight steps first: on a staircase, a diagonal step would skip the pixel in between.
NEIGHBOURS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


def thin(binary):
    """Zhang and Suen's thinning (Communications of the ACM, 1984) of a boolean image.

    Two alternating sub-passes remove, all at once, the boundary pixels whose removal keeps the
    shape connected (exactly one background-to-ink transition around them, 2-6 ink neighbours) and
    that lie on the south-east, then the north-west side; they repeat until nothing changes, leaving
    lines one pixel wide with the shape's branches and holes.
    """
    image = np.pad(np.asarray(binary, bool), 1).astype(np.uint8)
    while True:
        changed = False
        for first_pass in (True, False):
            centre = image[1:-1, 1:-1]
            # p2..p9 clockwise from north, as in the paper
            p2, p3, p4 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:]
            p5, p6, p7 = image[2:, 2:], image[2:, 1:-1], image[2:, :-2]
            p8, p9 = image[1:-1, :-2], image[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = sum(p.astype(np.int32) for p in ring[:8])
            transitions = sum(((a == 0) & (b == 1)).astype(np.int32) for a, b in zip(ring, ring[1:]))
            if first_pass:
                side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                side = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (centre == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if remove.any():
                centre[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def trace(skeleton):
    """Order a skeleton's pixels into strokes, lists of (row, column) a pen visits one neighbour at a time.

    Each stroke starts where a pen would, at a free end (the pixel with the fewest undrawn neighbours),
    walks on through undrawn neighbours, and ends by joining an already drawn neighbour if it has one
    (closing a loop, reaching a junction), as a stroke that starts next to drawn ink begins there:
    together the strokes draw every pixel, connected as the skeleton is.
    """
    pixels = {(int(row), int(col)) for row, col in zip(*np.nonzero(skeleton))}

    def around(pixel):
        return [(pixel[0] + dr, pixel[1] + dc) for dr, dc in NEIGHBOURS if (pixel[0] + dr, pixel[1] + dc) in pixels]

    drawn: set[tuple[int, int]] = set()
    strokes = []
    while len(drawn) < len(pixels):
        start = min(pixels - drawn, key=lambda p: (sum(q not in drawn for q in around(p)), p))
        stroke = [q for q in around(start) if q in drawn][:1]
        pixel = start
        while pixel is not None:
            stroke.append(pixel)
            drawn.add(pixel)
            ahead = [q for q in around(pixel) if q not in drawn]
            if ahead:
                pixel = ahead[0]
            else:
                stroke += [q for q in around(pixel) if q in drawn and q not in stroke[-3:]][:1]
                pixel = None
        strokes.append(stroke)
    return strokes


def simplify(path, tolerance):
    """Ramer-Douglas-Peucker: the fewest points of ``path`` whose polyline stays within ``tolerance`` of it."""
    if len(path) < 3:
        return list(path)
    points = np.asarray(path, float)
    start, end = points[0], points[-1]
    direction = end - start
    length = math.hypot(*direction)
    if length == 0:
        distances = np.hypot(*(points - start).T)
    else:
        distances = np.abs(direction[0] * (points[:, 1] - start[1]) - direction[1] * (points[:, 0] - start[0])) / length
    farthest = int(distances.argmax())
    if distances[farthest] <= tolerance:
        return [path[0], path[-1]]
    return simplify(path[:farthest + 1], tolerance)[:-1] + simplify(path[farthest:], tolerance)


def strokes_of(image):
    """The pen strokes that redraw an MNIST image (uint8, 28x28) along its skeleton, in MNIST pixels,
    shortest first: the last stroke changes the drawing most, so its answer is easy to tell apart."""
    strokes = [simplify(stroke, SIMPLIFY_TOLERANCE) for stroke in trace(thin(image >= 128))]
    return sorted(strokes, key=lambda stroke: sum(math.dist(a, b) for a, b in zip(stroke, stroke[1:])))


def distance_to_polyline(point, polyline):
    point = np.asarray(point, float)
    best = math.inf
    for a, b in zip(polyline, polyline[1:] or polyline):
        a, b = np.asarray(a, float), np.asarray(b, float)
        segment = b - a
        t = 0.0 if not segment.any() else float(np.clip((point - a) @ segment / (segment @ segment), 0, 1))
        best = min(best, float(np.hypot(*(point - a - t * segment))))
    return best


def test_thinning_leaves_a_thick_bar_one_pixel_wide():
    bar = np.zeros((28, 28), bool)
    bar[10:17, 4:24] = True
    skeleton = thin(bar)
    assert skeleton[:, 8:20].sum(axis=0).tolist() == [1] * 12, "one pixel per column along the bar"
    assert skeleton.any(axis=1).sum() == 1, "a single straight line"
    assert skeleton[:10].sum() == 0 and skeleton[17:].sum() == 0, "the line lies inside the bar"


def test_thinning_keeps_the_hole_of_a_ring_and_leaves_no_thick_spot():
    rows, cols = np.indices((28, 28))
    radius = np.hypot(rows - 13.5, cols - 13.5)
    skeleton = thin((radius > 5) & (radius < 10))
    assert not (skeleton[:-1, :-1] & skeleton[1:, :-1] & skeleton[:-1, 1:] & skeleton[1:, 1:]).any()
    # the centre is still enclosed: background reachable from the border (4-connected) never gets there
    outside, frontier = np.zeros_like(skeleton), [(0, 0)]
    while frontier:
        row, col = frontier.pop()
        if 0 <= row < 28 and 0 <= col < 28 and not outside[row, col] and not skeleton[row, col]:
            outside[row, col] = True
            frontier += [(row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)]
    assert not outside[13:15, 13:15].any() and skeleton.sum() < 0.5 * ((radius > 5) & (radius < 10)).sum()


def test_strokes_redraw_the_whole_skeleton_of_real_mnist_digits(mnist):
    """Every skeleton pixel is on a stroke, a pen moves one neighbour at a time, and simplified strokes
    stay within tolerance of the pixels they stand for."""
    (_, _), (x_test, _) = mnist
    for image in x_test[:200]:
        skeleton = thin(image >= 128)
        strokes = trace(skeleton)
        assert {p for stroke in strokes for p in stroke} == set(zip(*map(list, np.nonzero(skeleton))))
        for stroke in strokes:
            assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1 for a, b in zip(stroke, stroke[1:]))
            simplified = simplify(stroke, SIMPLIFY_TOLERANCE)
            assert simplified[0] == stroke[0] and simplified[-1] == stroke[-1]
            assert max(distance_to_polyline(p, simplified) for p in stroke) <= SIMPLIFY_TOLERANCE + 1e-9
        lengths = [sum(math.dist(a, b) for a, b in zip(stroke, stroke[1:])) for stroke in strokes_of(image)]
        assert len(lengths) == len(strokes) and lengths == sorted(lengths), "the longest stroke comes last"


def test_a_loop_is_one_stroke_that_closes():
    rows, cols = np.indices((28, 28))
    radius = np.hypot(rows - 13.5, cols - 13.5)
    (stroke,) = trace(thin((radius > 5) & (radius < 9)))
    assert stroke[-1] in stroke[:-2], "the stroke comes back to where it started"


# -- the page in a real browser ---------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_page(url, process, log_path):
    """Poll the page until it answers 200; fail at once with the server's log if the server died."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"draw_demo.py exited with code {process.returncode} before serving the page:\n"
                        f"{log_path.read_text()[-3000:]}")
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"draw_demo.py did not serve {url} within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture
def demo_url(tmp_path):
    """draw_demo.py serving the example model on a free port, stopped (its whole process group) afterwards."""
    port = free_port()
    log_path = tmp_path / "draw_demo.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(DEMO_PATH), str(EXAMPLE_MODEL), "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_page(url, process, log_path)
        yield url
    finally:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)  # start_new_session: the server leads its own process group
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
    assert "Draw a digit at http://127.0.0.1:" in log_path.read_text(), "the command prints the page's address"


def paper(page):
    """The drawing area on screen, (left, top, side) in CSS pixels: the sketchpad centres its canvas
    in the editor and shows it at the zoom its toolbar displays."""
    box = page.locator("#canvas canvas").first.bounding_box()
    zoom = re.search(r"(\d+)%", page.inner_text("#canvas"))
    assert zoom, "the sketchpad's toolbar shows no zoom; has Gradio's ImageEditor changed?"
    side = demo.CANVAS_SIZE * int(zoom[1]) / 100
    return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side


def draw(page, strokes):
    """Replay strokes (MNIST pixel coordinates) with real mouse down, move and up events; the 28x28
    grid spans the canvas, as a digit drawn large in the middle would."""
    left, top, side = paper(page)
    cell = side / 28

    def on_screen(point):
        return left + (point[1] + 0.5) * cell, top + (point[0] + 0.5) * cell

    for stroke in strokes:
        x, y = on_screen(stroke[0])
        page.mouse.move(x, y)
        page.mouse.down()
        if len(stroke) == 1:
            page.mouse.move(x + 1, y)  # a dot: the pen still moves a little
        for a, b in zip(stroke, stroke[1:]):
            steps = max(1, math.ceil(math.hypot(b[0] - a[0], b[1] - a[1]) / POINTER_STEP))
            page.mouse.move(*on_screen(b), steps=steps)
        page.mouse.up()
    page.mouse.move(2, 2)  # away from the canvas, so the brush's cursor is not in the screenshot
    return left, top, side


def seen_by_browser(page, left, top, side):
    """A screenshot of what is drawn (a few pixels inside the canvas's border) and its MNIST-like input."""
    inset = 3
    png = page.screenshot(clip={"x": left + inset, "y": top + inset, "width": side - 2 * inset,
                                "height": side - 2 * inset})
    drawing = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    inked = drawing.min(axis=2) < 128
    assert inked.any() and not (inked[0].any() or inked[-1].any() or inked[:, 0].any() or inked[:, -1].any()), \
        "ink reaches the edge of the screenshot: the canvas is not where this test computed it (has the " \
        "sketchpad's layout changed?), or a stroke runs to the canvas's border"
    return drawing, demo.to_mnist_input(drawing)


def shown_input(page, url, src):
    """The 28x28 input the page shows (its enlarged preview, read back square by square)."""
    response = page.request.get(urljoin(url, src))
    assert response.ok, f"the preview {src} could not be read: {response.status}"
    preview = np.asarray(Image.open(io.BytesIO(response.body())).convert("L"), np.float32) / 255
    scale = demo.PREVIEW_SCALE
    assert preview.shape == (28 * scale, 28 * scale), preview.shape
    return preview.reshape(28, scale, 28, scale).mean(axis=(1, 3))


def preview_src(page):
    """The address of the preview image the page shows now, or None (no waiting: it may not exist yet)."""
    image = page.query_selector("#preview img")
    return image.get_attribute("src") if image else None


def answer_for(page, url, expected, stale_src):
    """Wait for the page's answer to this drawing: the preview it shows matches ``expected`` (so the
    answer is for the whole drawing, not its first strokes), twice in a row with the same label."""
    deadline = time.monotonic() + ANSWER_S
    shown: dict[str, np.ndarray] = {}
    differences: dict[str, float] = {}
    agreed = None
    while time.monotonic() < deadline:
        label = page.inner_text("#answer [data-testid=label-output-value]").strip()
        src = preview_src(page)
        if label in demo.CLASS_NAMES and src and src != stale_src:
            if src not in shown:
                shown[src] = shown_input(page, url, src)
                differences[src] = float(np.abs(shown[src] - expected).mean())
            if differences[src] <= PREVIEW_TOLERANCE:
                if agreed == (label, src):
                    return {"answer": label, "src": src, "shown": shown[src], "difference": differences[src]}
                agreed = (label, src)
        time.sleep(POLL_S)
    pytest.fail(f"no answer matching the drawing within {ANSWER_S} s; previews seen and their differences "
                f"from the drawing: {differences}")


def wait_for_label(page, text):
    page.wait_for_function(
        "text => document.querySelector('#answer [data-testid=label-output-value]')?.innerText.trim() === text",
        arg=text, timeout=ANSWER_S * 1000)


def clear(page):
    """Press the sketchpad's "Clear canvas"; the page answers an empty canvas with EMPTY_ANSWER."""
    page.click("#canvas button[aria-label='Clear canvas']")
    wait_for_label(page, demo.EMPTY_ANSWER)


def contact_sheet(rows, path):
    """One row per digit: the MNIST image, the browser's drawing, the input the page showed, the answer."""
    tile = 112
    sheet = Image.new("RGB", (4 * tile + 140, tile * len(rows)), "white")
    pen = ImageDraw.Draw(sheet)
    for index, row in enumerate(rows):
        y = index * tile
        sheet.paste(Image.fromarray(row["mnist"]).resize((tile, tile), Image.Resampling.NEAREST), (0, y))
        sheet.paste(Image.fromarray(row["drawing"]).resize((tile, tile)), (tile + 4, y))
        shown = Image.fromarray(np.round(row["shown"] * 255).astype(np.uint8))
        sheet.paste(shown.resize((tile, tile), Image.Resampling.NEAREST), (2 * tile + 8, y))
        verdict = "right" if row["answer"] == str(row["label"]) else "WRONG"
        pen.text((3 * tile + 20, y + 40), f"#{row['index']}: label {row['label']}\nanswer {row['answer']} ({verdict})",
                 fill="black")
    sheet.save(path)


def open_demo(browser, url, outside_requests, page_errors):
    """The page in a fresh browser context, noting every request that leaves the machine and every error."""
    # English labels: the test finds the sketchpad's buttons by them
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-US")
    context.set_default_timeout(ANSWER_S * 1000)
    page = context.new_page()

    def note_outside(request):
        address = urlparse(request.url)
        if address.scheme in ("http", "https", "ws", "wss") and address.hostname != "127.0.0.1":
            outside_requests.append(request.url)

    page.on("request", note_outside)
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(url, wait_until="load")
    wait_for_label(page, demo.EMPTY_ANSWER)
    return page


def draw_and_read(page, url, strokes):
    """Draw on the cleared canvas and return the page's answer for the whole drawing."""
    # the page takes up the brush by itself, at the start and after "Clear canvas"
    page.wait_for_selector("#canvas button.highlight[aria-label='Brush']")
    stale_src = preview_src(page)
    canvas = draw(page, strokes)
    drawing, expected = seen_by_browser(page, *canvas)
    result = answer_for(page, url, expected, stale_src)
    bars = page.locator("#answer [data-testid$='-confidence-set']").count()
    assert bars == len(demo.CLASS_NAMES), f"{bars} probability bars; expected one per class"
    return {**result, "drawing": drawing, "expected": expected, "canvas": canvas}


def check_undo(page, url, before):
    """A stray stroke across the top changes the input; Undo brings back the drawing and its answer."""
    draw(page, [[(2, 3), (2, 24)]])
    _, stray = seen_by_browser(page, *before["canvas"])
    stray_answer = answer_for(page, url, stray, before["src"])
    page.click("#canvas button[aria-label='Undo']")
    undone = answer_for(page, url, before["expected"], stray_answer["src"])
    assert undone["answer"] == before["answer"], \
        f"after Undo the page answers {undone['answer']}; before the stray stroke it answered {before['answer']}"


@pytest.mark.slow
def test_mnist_digits_drawn_in_the_browser_are_recognised(demo_url, mnist):
    """Real MNIST test digits drawn as pointer strokes on the live page: the example model, behind the
    real Gradio server, answers right for most; the page shows each drawing's 28x28 input; clear and
    undo work; nothing is fetched from beyond this machine."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install chromium "
                    "chromium-driver` (./run does it when run as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `.venv/bin/pip install -e .` installs it (pyproject.toml lists it)")
    (_, _), (x_test, y_test) = mnist
    chosen = [int(i) for digit in range(10) for i in np.flatnonzero(y_test == digit)[:DIGITS_PER_CLASS]]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rows, outside_requests, page_errors = [], [], []
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = open_demo(browser, demo_url, outside_requests, page_errors)
            try:
                for position, index in enumerate(chosen):
                    if position:
                        clear(page)
                    row = draw_and_read(page, demo_url, strokes_of(x_test[index]))
                    if position == 0:
                        check_undo(page, demo_url, row)
                    rows.append({**row, "index": index, "label": int(y_test[index]), "mnist": x_test[index]})
            finally:
                page.screenshot(path=str(ARTIFACTS / "draw_demo.png"), full_page=True)  # on a failure too
        finally:
            browser.close()
    contact_sheet(rows, ARTIFACTS / "draw_demo_digits.png")
    right = sum(row["answer"] == str(row["label"]) for row in rows)
    print(f"\n{right} of {len(rows)} drawn digits recognised in {time.monotonic() - started:.0f} s; "
          f"screenshot: {ARTIFACTS / 'draw_demo.png'}, every digit: {ARTIFACTS / 'draw_demo_digits.png'}")
    for row in rows:
        print(f"  test image {row['index']:5d}: label {row['label']}, answer {row['answer']}, "
              f"preview differs from the drawing by {row['difference']:.3f}")
    assert not outside_requests, f"the page reached beyond this machine: {outside_requests[:5]}"
    assert not page_errors, f"the page raised: {page_errors[:3]}"
    assert right >= MIN_RIGHT, f"only {right} of {len(rows)} drawn digits recognised; expected at least {MIN_RIGHT}"
