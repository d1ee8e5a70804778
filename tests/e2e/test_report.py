"""The run report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scengrid_cli.local.demo import run_on_stack
from scengrid.spec import GeneratedScenarios, RunSpec

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Offline and quiet, as a root sandbox needs: no sandbox, no GPU, no background networking.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--window-size=1000,1600",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def report(local_stack, tmp_path_factory) -> Path:  # noqa: ANN001
    out = tmp_path_factory.mktemp("report")
    spec = RunSpec(scenarios=GeneratedScenarios(count=8_000, seed=11), shard_size=2_000, workers=2)
    outcome = run_on_stack(local_stack, spec, out, timeout_s=300)
    assert outcome.results_dir is not None
    return outcome.results_dir


def test_report_files_are_written(report: Path) -> None:
    page = (report / "report.html").read_text()
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)  # nothing to fetch
    assert Image.open(report / "pnl-histogram.png").size[0] > 400


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="needs Debian's chromium (CI installs it)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    url = (report / "report.html").as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="bar"') == 60  # the histogram's bars
    for table in ("measures", "worst", "metadata"):
        rows = re.search(rf'<table id="{table}">.*?</table>', dom.stdout, re.S).group(0).count("<tr>")
        assert rows >= 2, table
    assert "CONSOLE" not in dom.stderr, [line for line in dom.stderr.splitlines() if "CONSOLE" in line]

    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", url)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    bar_blue = np.all(np.abs(pixels - [0x4C, 0x78, 0xA8]) < 12, axis=1).sum()
    assert bar_blue > 2_000  # the histogram is drawn, not a blank page
