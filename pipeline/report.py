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
# run first in every report (kept in the .ipynb, hidden in the HTML like all code): tables show whole
# numbers as whole numbers, six significant digits otherwise, and every column and cell in full
SETUP = """import pandas as pd
pd.set_option("display.float_format", "{:.6g}".format)
pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_columns", None)
pd.set_option("display.width", 250)"""


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


def show(fig) -> None:
    """Display a matplotlib figure in a notebook once: closed after display, so the inline
    backend does not draw it again at the end of the cell."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
