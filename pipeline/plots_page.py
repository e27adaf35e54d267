"""The page `dvc plots show` and `dvc plots diff` write, drawn with no network.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline (a cluster node, a
train) it is blank. DVC takes an HTML template of the project's own (`plots.html_template`);
this module writes one with the three libraries inlined, from the bundle the environment's
`vl-convert-python` ships (nothing of anyone's JavaScript is kept in the repository), and points
this checkout's `.dvc/config.local` at it. `make env` runs it after every install, so the page
always matches the installed bundle:

    python -m pipeline.plots_page [--repo DIR]

Without it (an environment made some other way) DVC falls back to its CDN page: charts online,
a blank page offline; `make doctor` says so.
"""
from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
from pathlib import Path
from string import Template

PAGE = Path(".dvc/plots_page.html")       # ignored (.dvc/.gitignore): generated per environment
SETTING = "plots.html_template"           # relative to .dvc/, as DVC resolves it
VEGA_LITE_MAJOR = "5"                     # the $schema of .dvc/plots/*.json and DVC's own templates

TEMPLATE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{refresh_tag}
<title>dvc plots</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px; color: #1a202c; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p.note { color: #4a5568; font-size: 13px; margin: 0 0 16px; }
  body > div { margin: 0 0 28px; }
  table { border-spacing: 15px; }
</style>
<!-- Vega $vega, Vega-Lite $vega_lite, Vega-Embed $embed: vl-convert-python $vlc's bundle, inlined -->
<script>
$bundle
</script>
</head>
<body>
<h1>dvc plots</h1>
<p class="note">Drawn from this page alone (no network); regenerate with <code>python -m pipeline.plots_page</code>.</p>
{plot_divs}
</body>
</html>
""")      # $names are filled here; DVC fills {refresh_tag} and {plot_divs}


def vega_lite_version(available: list[str], major: str = VEGA_LITE_MAJOR) -> str:
    """The newest of `available` ('5.8', '5.21', '6.4', ...) with the given major version."""
    mine = [v for v in available if v.split(".")[0] == major]
    if not mine:
        raise RuntimeError(f"vl-convert-python bundles no Vega-Lite {major}.x (it has {', '.join(available)}); "
                           f"install a version that does (requirements.lock pins one)")
    return max(mine, key=lambda v: tuple(int(p) for p in v.split(".")))


def page() -> str:
    """The template: DVC's `{plot_divs}` (and `{refresh_tag}`) placeholders, the bundle inlined
    (a `</script` inside it would end the element early: written `<\\/script`, the same to JS)."""
    from importlib.metadata import version

    import vl_convert as vlc

    vl = vega_lite_version(vlc.get_vegalite_versions())
    bundle = vlc.javascript_bundle(vl_version=vl).replace("</script", "<\\/script")
    clash = [p for p in ("{plot_divs}", "{scripts}", "{refresh_tag}") if p in bundle]
    if clash:                                            # DVC would fill them inside the bundle too
        raise RuntimeError(f"vl-convert-python's bundle contains DVC's placeholder {clash[0]}; pin another version")
    return TEMPLATE.substitute(bundle=bundle, vega=vlc.get_vega_version(), vega_lite=vl,
                               embed=vlc.get_vega_embed_version(), vlc=version("vl-convert-python"))


def install(repo: Path) -> Path:
    """Write the page into `repo`'s .dvc/ and set this checkout's plots.html_template to it."""
    from pipeline.core.files import write_text

    if not (repo / ".dvc").is_dir():
        raise RuntimeError(f"{repo}: not a DVC repository (no .dvc/); run this in the project's root")
    target = repo / PAGE
    write_text(page(), target)
    proc = subprocess.run([sys.executable, "-m", "dvc", "config", "--local", SETTING, PAGE.name], cwd=repo,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc config --local {SETTING} {PAGE.name} failed: "
                           f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return target


def installed(repo: Path) -> str:
    """'' when `dvc plots show` in `repo` will use this page, else why not (for the doctor)."""
    config = configparser.ConfigParser(interpolation=None, strict=False)      # as the doctor reads DVC's config
    config.read(repo / ".dvc" / "config.local")
    if config.get("plots", "html_template", fallback="").strip() != PAGE.name:
        return f"{SETTING} is not set in .dvc/config.local: `dvc plots show` loads Vega from a CDN (blank offline)"
    if not (repo / PAGE).is_file():
        return f"{PAGE} is missing: `dvc plots show` would fail"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.plots_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the repository's root (default: here)")
    args = parser.parse_args(argv)
    try:
        target = install(args.repo)
    except (RuntimeError, OSError, ImportError) as exc:
        print(f"plots page: {exc}", file=sys.stderr)
        return 2
    print(f"plots page: {target} ({target.stat().st_size / 1e6:.1f} MB); `dvc plots show` draws offline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
