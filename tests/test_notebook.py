"""The guided notebook runs end to end (solution filled in) on the reduced "ci" data budget."""

import shutil

import pytest

from autograder import assignment, release

pytestmark = pytest.mark.slow


def test_notebook_executes_on_a_small_budget(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    v1 = assignment.load("v1")
    shutil.copy(v1.source_dir / v1.notebook, tmp_path / v1.notebook)
    shutil.copy(v1.solution_module, tmp_path / v1.module)
    for name, text in release.release_loader(v1).items():  # the loader as students get it
        (tmp_path / name).write_text(text)
    notebook = nbformat.read(tmp_path / "hello_mnist.ipynb", as_version=4)
    # The kernel inherits this environment. No MPLBACKEND: the kernel's inline backend is what turns each
    # chart into an image output.
    monkeypatch.setenv("HELLO_MNIST_BUDGET", "ci")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors, errors[:1]
    # the ci budget's smoke-test model never takes the submission model's name
    assert (tmp_path / "model_ci_smoke.keras").exists() and not (tmp_path / "model.keras").exists()
    text = sum(len("".join(output.get("text", ""))) for cell in notebook.cells for output in cell.get("outputs", []))
    assert text < 200_000, f"{text:,} characters of printed output: progress bars (verbose=1) left in?"
    images = sum(1 for cell in notebook.cells for output in cell.get("outputs", [])
                 if "image/png" in output.get("data", {}))
    assert images >= 6, f"expected the lecture's charts and digit grids, found {images} images"
