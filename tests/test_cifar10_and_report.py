"""CIFAR-10 through the real download path, and report rendering's all-or-nothing output."""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError, PipelineError
from pipeline.data import cifar10
from pipeline.data.download import RemoteFile, fetch
from pipeline.data.photos import load_images
from pipeline.report import render


def _cifar_fixture(path: Path, per_batch: int = 4) -> np.ndarray:
    """A cifar-10-python.tar.gz in the true layout: pickled dicts of bytes keys, 3072 uint8 per row."""
    rng = np.random.default_rng(0)
    test_rows = None
    with tarfile.open(path, "w:gz") as tar:
        for name in (*cifar10.TRAIN_BATCHES, "test_batch", "batches.meta"):
            rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            entry = {b"data": rows, b"labels": list(rng.integers(0, 10, per_batch)), b"batch_label": name.encode()}
            if name == "test_batch":
                test_rows = rows
            blob = pickle.dumps(entry if name != "batches.meta" else {b"label_names": []})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return test_rows


def test_cifar10_archive_downloads_from_loopback_and_reads(loopback, tmp_path):
    served = loopback.root / "~kriz" / "cifar-10-python.tar.gz"        # the official URL's path
    served.parent.mkdir()
    test_rows = _cifar_fixture(served)
    remote = RemoteFile(url=cifar10.ARCHIVE.url, md5=hashlib.md5(served.read_bytes()).hexdigest())
    archive = fetch(remote, tmp_path / "raw" / "cifar-10-python.tar.gz", mirror=loopback.url)
    x, y = cifar10.read_split(archive, "test")
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x[2].reshape(-1), torch.from_numpy(test_rows[2]))   # rows are R plane, G plane, B plane
    train_x, _ = cifar10.read_split(archive, "train")
    assert train_x.shape == (20, 3, 32, 32)
    img = load_images(("cifar10:1",), 32, archive)
    assert torch.equal(img[0], x[1])


def test_a_broken_cifar_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(DataError, match="not a readable CIFAR-10 python archive.*delete it"):
        cifar10.read_split(bad, "test")


def test_report_renders_parameters_with_a_real_kernel(tmp_path):
    src = tmp_path / "demo.py"
    src.write_text('# %% tags=["parameters"]\nanswer = 1\n\n# %%\nprint("answer is", answer * 2)\n')
    nb, html = tmp_path / "out" / "demo.ipynb", tmp_path / "out" / "demo.html"
    render(src, nb, html, {"answer": 21}, cwd=tmp_path)
    assert "answer is 42" in nb.read_text() and "answer is 42" in html.read_text()


def test_the_html_is_a_page_to_read_and_the_notebook_keeps_everything(tmp_path):
    import json

    src = tmp_path / "demo.py"
    src.write_text('# %% [markdown]\n# # `demo` — a **small** report\n\n# %% tags=["parameters"]\nanswer = 1\n\n'
                   '# %%\nimport sys\nimport pandas as pd\nprint("stdout stays")\n'
                   'print("a library warning", file=sys.stderr)\n'
                   'pd.DataFrame({"parameters": [10499.0], "psnr": [28.78512], "holdout_name": ["x" * 80]})\n')
    nb, html = tmp_path / "out" / "demo.ipynb", tmp_path / "out" / "demo.html"
    render(src, nb, html, {"answer": 2}, cwd=tmp_path)
    page = html.read_text()
    assert "<title>demo — a small report</title>" in page                # not a temporary file's name
    assert "stdout stays" in page and "a library warning" not in page
    assert "print(" not in page and "answer = 2" not in page and "In&nbsp;[" not in page   # no code, no prompts
    assert ">10,499</td>" in page and ">28.79</td>" in page and "x" * 80 in page   # whole numbers whole, 4 digits
    assert "PSNR, training photographs (dB)</th>" in page and "holdout name</th>" in page   # labels, not raw keys
    cells = json.loads(nb.read_text())["cells"]
    assert any("answer = 2" in "".join(c["source"]) for c in cells)    # the notebook keeps papermill's cell
    assert any("a library warning" in str(c.get("outputs")) for c in cells)


def test_a_failing_report_leaves_no_output_and_keeps_the_old_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "demo.py"
    src.write_text('# %% tags=["parameters"]\nx = 0\n\n# %%\nraise ValueError("no metrics yet")\n')
    nb, html = tmp_path / "demo.ipynb", tmp_path / "demo.html"
    html.write_text("previous report")
    with pytest.raises(PipelineError) as err:
        render(src, nb, html, {}, cwd=tmp_path)
    assert "raised ValueError: no metrics yet" in str(err.value) and "\n" not in str(err.value)
    assert not nb.exists() and html.read_text() == "previous report"
    assert (tmp_path / ".cache" / "reports" / "demo.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache", "demo.html", "demo.py"]
