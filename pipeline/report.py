"""Report rendering: a jupytext percent-format source -> executed notebook -> HTML.

Sources are reviewable `.py` files; papermill injects the parameters into the
cell tagged `parameters` and runs a real kernel in the repository root; nbconvert
writes the HTML. Outputs appear only when the whole notebook ran.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.core.errors import DataError, PipelineError
from pipeline.core.files import atomic_path, write_text

FAILED_DIR = Path(".cache/reports")
# run first in every report (kept in the .ipynb, hidden in the HTML like all code): every table a
# report displays goes through `table` (column labels, whole numbers whole, 4 significant digits),
# with every column and cell in full
SETUP = """import pandas as pd
from pipeline.report import tables_for_people
pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_columns", None)
pd.set_option("display.width", 250)
tables_for_people()"""


def render(source: Path, notebook: Path, html: Path, parameters: dict, cwd: Path, preface: str | None = None) -> None:
    """`preface`: markdown put above everything else, the report's first line (a warning that
    holds for the whole report)."""
    import jupytext
    import nbformat
    import papermill

    if not source.exists():
        raise DataError(f"{source}: report source missing; restore it from git")
    nb = jupytext.read(source)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["setup"]}))
    if preface:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(preface))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as tmp, atomic_path(notebook) as out:
        src = Path(tmp) / notebook.name
        jupytext.write(nb, src, fmt="ipynb")
        package_root = str(Path(__file__).resolve().parents[1])     # the kernel imports `pipeline` from any cwd
        paths = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, paths)))
        try:
            papermill.execute_notebook(str(src), str(out), parameters=parameters, cwd=str(cwd),
                                       kernel_name="python3", progress_bar=False, log_output=False)
        except papermill.PapermillExecutionError as exc:
            FAILED_DIR.mkdir(parents=True, exist_ok=True)
            kept = FAILED_DIR / notebook.name
            shutil.copyfile(out, kept)
            raise PipelineError(f"report {source.name}: cell {exc.exec_count} raised {exc.ename}: "
                                f"{exc.evalue.splitlines()[0] if exc.evalue else ''}; the failed notebook "
                                f"is at {kept}") from None
        finally:
            if paths is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = paths
        body = html_page(nbformat.read(str(out), as_version=4))
    write_text(body, html)


def html_page(nb) -> str:
    """The executed notebook as a page to read: no code cells or prompts (the .ipynb keeps them),
    no stderr (library warnings are not part of a report), titled by its first heading."""
    from nbconvert import HTMLExporter

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title_of(nb)}})
    return body


def title_of(nb) -> str:
    """The text of the notebook's first `# ` heading, without markdown marks."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].replace("`", "").replace("**", "").strip()
    return "report"


# raw result keys as a table header says them
LABELS = {
    "psnr": "PSNR, training photographs (dB)", "ssim": "SSIM, training photographs",
    "holdout_psnr": "PSNR, held-out (dB)", "holdout_ssim": "SSIM, held-out",
    "parameters": "parameters", "best_epoch": "best epoch", "epochs": "epochs", "train_seconds": "training (s)",
    "test_loss": "test loss", "val_loss": "validation loss", "train_loss": "training loss",
    "test_accuracy": "test accuracy", "val_accuracy": "validation accuracy", "train_accuracy": "training accuracy",
    "final_train_loss": "final training loss", "final_val_loss": "final validation loss",
    "min_train_loss": "lowest training loss", "best_val_loss": "best validation loss",
    "samples_per_second": "samples/s", "train_samples_per_second": "training samples/s",
    "test_samples_per_second": "test samples/s", "test_balanced_accuracy": "balanced accuracy",
    "test_macro_precision": "macro precision", "test_macro_recall": "macro recall", "steps": "optimiser steps",
}


def table(frame, order=None, labels: dict | None = None, digits: int = 4):
    """A results table as people read it: rows in `order` (the rest after, as they come), columns
    named by LABELS (and `labels`), whole numbers with thousands separators, others to `digits`
    significant digits. Returns a pandas Styler; the report displays it."""
    import pandas as pd

    if order is not None:
        first = list(dict.fromkeys(i for i in order if i in frame.index))
        frame = frame.loc[first + [i for i in frame.index if i not in first]]
    names = {**LABELS, **(labels or {})}
    frame = frame.rename(columns=lambda c: names.get(c, c.replace("_", " ") if isinstance(c, str) else c))

    def number(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or pd.isna(v):
            return "—" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
        return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.{digits}g}"
    styled = frame.style.format(number)
    return styled.hide(axis="index") if isinstance(frame.index, pd.RangeIndex) else styled    # 0, 1, 2 … say nothing


def tables_for_people() -> None:
    """Make every DataFrame the running notebook displays render through `table`."""
    import pandas as pd
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, lambda df: table(df).to_html())


def seed_beside_ours(module, name: str, root: str | Path = ".", **params) -> None:
    """Display the experiment's scorecard rows: every number the seed printed beside ours, with a
    verdict (the same rows as reports/index.html). `module`: the experiment's seed module;
    `params`: the dotted keys its verdicts depend on (scale=..., **{"mnist.dataset": ...})."""
    import pandas as pd
    from IPython.display import Markdown, display

    from pipeline.scorecard.card import build, experiment, file_lookup

    exp = experiment(name, module)
    [summary], rows = build([exp], file_lookup(Path(root)), params.get)
    seeded = any(c.seed is not None for c in exp.claims)
    display(Markdown(f"**{summary.line[0].upper()}{summary.line[1:]}.**" if seeded else
                     "The seed report printed no numbers for this experiment: ours stand alone, each held against "
                     "a baseline where there is one."))
    frame = pd.DataFrame([{"what": r.item, "seed": r.seed, "ours": r.ours, "verdict": r.verdict, "why": r.detail}
                          for r in rows])
    display(frame.style.hide(axis="index")
            .set_properties(subset=["what", "verdict", "why"], **{"text-align": "left"})
            .set_properties(subset=["seed", "ours"], **{"text-align": "right", "white-space": "nowrap"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))


def show(fig) -> None:
    """Display a matplotlib figure in a notebook once: closed after display, so the inline
    backend does not draw it again at the end of the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
