"""Check a machine before the hours start: `python -m pipeline.doctor` (or `make doctor`).

One table: Python and torch, torch's CUDA build, the NVIDIA driver, every GPU and whether torch
can use it, what `device: auto` and `precision: auto` pick, whether `torch.compile` works, free
disk against what a full `dvc repro` needs, each dataset (present, its source or mirror, its
official host reachable), the MLflow store the stages will use and the DVC remote. Exit status 1
with one line per problem, 0 when there is none. Nothing here imports dvc, mlflow or papermill:
the check runs on a bare GPU node too (`make gpu-check`, step 1).

    python -m pipeline.doctor [--require-gpu] [--no-network] [--json PATH]
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import configparser
import json
import os
import platform
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from pipeline.tracking import store_file, tracking_uri   # stdlib only at import: mlflow is imported where a run starts

GB = 10**9
# What a full `dvc repro` writes, in GB, from the datasets' published sizes and the outputs' shapes
# (uint8 images, fp16 features): downloads, extracted and prepared tensors, features, models, and
# the MLflow artifacts; DVC's cache keeps a second copy of every output (DISK_FACTOR).
DISK_ESTIMATE_GB = {"mnist / fashion_mnist": 0.15, "emnist": 2.2, "fer": 0.5, "cifar10 + distill": 4.5,
                    "colourize": 0.3, "resnet50 weights": 0.2, "superres, separable, theory": 0.1}
DISK_FACTOR = 2
HEAD_TIMEOUT = 4.0


@dataclass
class Row:
    area: str
    item: str
    value: str
    problem: str = ""       # one line saying what is wrong and what to do; "" when fine

    @property
    def status(self) -> str:
        return "PROBLEM" if self.problem else "ok"


# --- the machine ---------------------------------------------------------------------------------

def machine_rows(require_gpu: bool = False) -> list[Row]:
    import torch

    from pipeline.core import device as dv

    rows = [Row("machine", "python", f"{platform.python_version()} ({sys.executable})",
                "" if sys.version_info >= (3, 11, 4) else "Python 3.11.4 or newer is needed (tarfile extraction filters)"),
            Row("machine", "torch", f"{torch.__version__}, CUDA build {torch.version.cuda or 'none (CPU-only)'}")]
    gpus = dv.nvidia_gpus()
    rows.append(Row("machine", "nvidia driver", gpus[0].driver if gpus and gpus[0].driver else
                    ("present, version unknown" if gpus else "none found (no nvidia-smi, no kernel module)")))
    if torch.version.cuda and gpus and gpus[0].driver:
        needed = dv.driver_needed(torch.version.cuda)
        rows[-1].value += f" (torch's CUDA {torch.version.cuda} needs ≥ {needed})"
    problem = dv.cuda_problem()
    sees = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(sees):
        p = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        rows.append(Row("gpu", f"cuda:{i}", f"{p.name}, compute {p.major}.{p.minor}, {total / 2**30:.1f} GiB "
                        f"({free / 2**30:.1f} GiB free), bf16 {'native' if p.major >= 8 else 'emulated'}"))
    if not sees:
        for g in gpus:
            rows.append(Row("gpu", g.name, f"{g.memory_mb / 1024:.1f} GiB, compute {g.capability or '?'}; "
                            "torch cannot use it"))
    rows.append(Row("gpu", "usable by torch", "yes" if sees and not problem else "no",
                    problem or ("no CUDA GPU torch can use; run on a GPU machine (or drop --require-gpu)"
                                if require_gpu and not sees else "")))
    try:
        dev = dv.pick_device("auto")
        amp = dv.autocast_dtype(dev, "auto")
        rows.append(Row("choice", "device: auto", str(dev)))
        name = dv.precision_name(amp)
        rows.append(Row("choice", "precision: auto", name + (" + loss scaling" if name == "fp16" else "")))
    except Exception as exc:  # noqa: BLE001 - the DeviceError line is already in the GPU row
        rows.append(Row("choice", "device: auto", f"stops: {str(exc).splitlines()[0][:80]}…"))
        dev = torch.device("cpu")
    rows.append(compile_row(dev))
    return rows


def compile_row(dev) -> Row:
    from pipeline.core import runtime

    reason = runtime._probe(dev)
    return Row("choice", "torch.compile", "works" if not reason else f"does not work here ({reason[:90]}); "
               "keep compile: false")


# --- disk --------------------------------------------------------------------------------------------

def disk_rows(root: Path, need_bytes: int | None = None,
              usage: Callable[[Path], tuple] = shutil.disk_usage) -> list[Row]:
    need = need_bytes if need_bytes is not None else int(sum(DISK_ESTIMATE_GB.values()) * DISK_FACTOR * GB)
    free = usage(root).free
    value = f"{free / GB:.1f} GB free under {root}; a full dvc repro needs about {need / GB:.1f} GB " \
            f"({sum(DISK_ESTIMATE_GB.values()):.1f} GB of outputs, twice with DVC's cache)"
    problem = "" if free >= need else (f"disk: {free / GB:.1f} GB free under {root}, a full dvc repro needs about "
                                      f"{need / GB:.1f} GB; free space or move the DVC cache (dvc cache dir)")
    return [Row("disk", "repository", value, problem)]


# --- datasets ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    name: str
    raw: str                # where the pipeline keeps it once fetched
    url: str                # the official host's file ("" when there is none)
    source_key: str         # the params key that points at a copy of one's own
    by_hand: str = ""       # a step only a person can do


def datasets(params: dict) -> list[Dataset]:
    from pipeline.data import cifar10, mnist
    from pipeline.emnist.data import ARCHIVE as EMNIST
    from pipeline.fer.data import WHERE_TO_GET

    which = params.get("mnist", {}).get("dataset", "mnist")
    first = next(iter(mnist.SOURCES[which].values()))
    weights = params.get("distill", {}).get("teacher", {}).get("weights", "IMAGENET1K_V2")
    try:
        from pipeline.distill.models import weights_remote
        weights_url = weights_remote(weights).url
    except Exception:  # noqa: BLE001 - torchvision absent or an unknown name: the host is still pytorch's
        weights_url = "https://download.pytorch.org/models/"
    return [Dataset(which, f"data/raw/{which}", first.url, "mnist.source"),
            Dataset("emnist", "data/raw/emnist", EMNIST.url, "emnist.source"),
            Dataset("cifar10", "data/raw/cifar10", cifar10.ARCHIVE.url, "cifar10.source"),
            Dataset("resnet50", "data/raw/resnet50", weights_url, "data.mirror"),
            Dataset("fer", "data/raw/fer", "", "fer.source", WHERE_TO_GET)]


def head(url: str, timeout: float = HEAD_TIMEOUT) -> str:
    """"" when the host answers a HEAD request for `url` (any HTTP status: the host is there), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        return ""
    except urllib.error.HTTPError:
        return ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{reason.__class__.__name__}: {reason}"[:100]


def dataset_rows(root: Path, params: dict, network: bool = True, found: list[Dataset] | None = None) -> list[Row]:
    mirror = os.environ.get("DLREPRO_MIRROR") or params.get("data", {}).get("mirror", "")
    found = datasets(params) if found is None else found
    with concurrent.futures.ThreadPoolExecutor(len(found)) as pool:
        reach = list(pool.map(lambda d: head(d.url) if network and d.url and not mirror else None, found))
    rows = []
    for d, why in zip(found, reach):
        folder = root / d.raw
        present = folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
        section, _, key = d.source_key.partition(".")
        source = params.get(section, {}).get(key, "") if d.source_key != "data.mirror" else ""
        if present:
            rows.append(Row("data", d.name, f"present in {d.raw}"))
        elif source:
            rows.append(Row("data", d.name, f"{d.source_key}: {source}",
                            "" if "://" in source or Path(source).exists() else
                            f"{d.name}: {d.source_key} {source} does not exist; point it at the file or folder"))
        elif d.by_hand:
            rows.append(Row("data", d.name, "not present; fetched by hand",
                            f"{d.name}: {d.by_hand}; then set {d.source_key} or put it in {d.raw}/"))
        elif mirror:
            rows.append(Row("data", d.name, f"from the mirror {mirror}"))
        elif why is None:
            rows.append(Row("data", d.name, f"not present; {d.url} not checked (--no-network)"))
        elif why:
            rows.append(Row("data", d.name, f"not present; {_host(d.url)} unreachable ({why})",
                            f"{d.name}: not present and {_host(d.url)} is unreachable (offline?); set "
                            f"{' or '.join(dict.fromkeys(('data.mirror', d.source_key)))} to a copy"))
        else:
            rows.append(Row("data", d.name, f"not present; {_host(d.url)} reachable (dvc repro downloads it)"))
    return rows


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


# --- tracking and remote -------------------------------------------------------------------------------

def tracking_row(root: Path, env: dict | None = None, timeout: float = 5.0) -> Row:
    env = dict(os.environ if env is None else env)
    uri = tracking_uri(env, root)          # what the stages will use
    path = store_file(uri)
    if path is not None:
        folder = path.parent
        if path.exists():
            return Row("mlflow", "store", f"{uri} ({path.stat().st_size / 2**20:.1f} MiB)",
                       "" if os.access(path, os.W_OK) else f"mlflow: {path} is not writable; fix its permissions")
        return Row("mlflow", "store", f"{uri} (made by the first stage)",
                   "" if os.access(folder, os.W_OK) else f"mlflow: cannot create {path}; {folder} is not writable")
    if not uri.startswith(("http://", "https://")):
        return Row("mlflow", "store", uri)
    user = env.get("MLFLOW_TRACKING_USERNAME", "")
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    if user:
        token = base64.b64encode(f"{user}:{env.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = None
    if uri.startswith("https://"):
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    who = f" as {user}" if user else ""
    try:
        urllib.request.urlopen(request, timeout=timeout, context=context).close()
        return Row("mlflow", "store", f"{uri}: reachable{who}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return Row("mlflow", "store", f"{uri}: refused{who} (HTTP {exc.code})",
                       f"mlflow: {uri} refuses {'user ' + user if user else 'anonymous access'} (HTTP {exc.code}); "
                       "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account with EDIT")
        return Row("mlflow", "store", f"{uri}: HTTP {exc.code}",
                   f"mlflow: {uri} answered HTTP {exc.code}; is it an MLflow tracking server?")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        hint = ("set MLFLOW_TRACKING_SERVER_CERT_PATH to the server's CA certificate"
                if isinstance(reason, ssl.SSLError) else "start it (make tracking-server) or unset MLFLOW_TRACKING_URI")
        return Row("mlflow", "store", f"{uri}: unreachable",
                   f"mlflow: {uri} is unreachable ({reason.__class__.__name__}: {str(reason)[:80]}); {hint}")


def remote_row(root: Path) -> Row:
    config = configparser.ConfigParser(interpolation=None, strict=False)      # a URL may hold '%' 
    config.read([root / ".dvc" / "config", root / ".dvc" / "config.local"])
    default = config.get("core", "remote", fallback="")
    if not default:
        return Row("dvc", "remote", "none configured (outputs stay in this clone's cache)")
    # dvc writes the section as ['remote "name"'], quotes included
    url = config.get(f"'remote \"{default}\"'", "url", fallback="") or config.get(f'remote "{default}"', "url", fallback="")
    if not url:
        return Row("dvc", "remote", default, f"dvc: core.remote is {default!r} but no remote of that name has a url")
    if "://" not in url:
        path = Path(url) if Path(url).is_absolute() else root / ".dvc" / url
        return Row("dvc", "remote", f"{default}: {url}", "" if path.exists() else
                   f"dvc: remote {default!r} folder {path} does not exist; create it or fix its url")
    return Row("dvc", "remote", f"{default}: {url}")


def plots_row(root: Path) -> Row:
    """Which page `dvc plots show` writes here; never a problem (a GPU node needs no plots)."""
    from pipeline.plots_page import PAGE, installed

    why = installed(root)
    return Row("dvc", "plots page", f"CDN page ({why}); `make env` or `python -m pipeline.plots_page` fixes it"
               if why else f"{PAGE}: Vega inlined, draws offline")


# --- the report ----------------------------------------------------------------------------------

def check(root: Path, require_gpu: bool = False, network: bool = True) -> list[Row]:
    from pipeline.core.params import load_params

    params_file = root / "params.yaml"
    params = load_params(str(params_file)) if params_file.exists() else {}
    return [*machine_rows(require_gpu), *disk_rows(root), *dataset_rows(root, params, network),
            tracking_row(root), remote_row(root), plots_row(root)]


def table(rows: list[Row]) -> str:
    width = max(len(r.item) for r in rows)
    lines = [f"{'':8s} {'check':{width}s}  status   value"]
    for r in rows:
        lines.append(f"{r.area:8s} {r.item:{width}s}  {r.status:7s}  {r.value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--require-gpu", action="store_true", help="no CUDA GPU that torch can use is a problem")
    ap.add_argument("--no-network", action="store_true", help="do not try the datasets' official hosts")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    root = Path.cwd()
    rows = check(root, args.require_gpu, not args.no_network)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([{**asdict(r), "status": r.status} for r in rows], indent=2) + "\n")
    problems = [r.problem for r in rows if r.problem]
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print(f"{len(problems)} problem(s)" if problems else "no problems found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
