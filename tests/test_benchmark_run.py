"""benchmarks/run.py without an engine: the command's options and its refusal to start without root."""
from __future__ import annotations

import pytest

from benchmarks import run


def test_the_command_takes_the_documented_options(capsys):
    with pytest.raises(SystemExit) as exited:
        run.main(["--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: python -m benchmarks.run")
    for option in ("--quick", "--rate", "--second-rate", "--amp-rate", "--delay", "--scale", "--reps", "--amp-reps",
                   "--out", "--name", "--engine-dir", "--subnet"):
        assert option in usage


def test_without_root_it_stops_before_starting_anything(monkeypatch, capsys):
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    assert run.main(["--quick"]) == 2
    assert "the benchmark starts a private dockerd: run it as root" in capsys.readouterr().err
