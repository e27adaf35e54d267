"""Report rendering: a jupytext percent-format source -> executed notebook -> HTML.

Sources are reviewable `.py` files; papermill injects the parameters into the
cell tagged `parameters` and runs a real kernel in the repository root; nbconvert
writes the HTML. Outputs appear only when the whole notebook ran.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pipeline.core.errors import DataError, PipelineError
from pipeline.core.files import atomic_path, write_text

FAILED_DIR = Path(".cache/reports")


def render(source: Path, notebook: Path, html: Path, parameters: dict, cwd: Path, preface: str | None = None) -> None:
    """`preface`: markdown put above everything else, the report's first line (a warning that
    holds for the whole report)."""
    import jupytext
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    if not source.exists():
        raise DataError(f"{source}: report source missing; restore it from git")
    nb = jupytext.read(source)
    if preface:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(preface))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as tmp, atomic_path(notebook) as out:
        src = Path(tmp) / notebook.name
        jupytext.write(nb, src, fmt="ipynb")
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
        body, _ = HTMLExporter().from_filename(str(out))
    write_text(body, html)


def show(fig) -> None:
    """Display a matplotlib figure in a notebook once: closed after display, so the inline
    backend does not draw it again at the end of the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
