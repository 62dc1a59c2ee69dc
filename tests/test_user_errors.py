"""User-caused failures: one line on stderr, a documented exit code, nothing lost or left over."""

from __future__ import annotations

import errno
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fits_factory import spec_name, write_spec

from startrack.cli import main
from startrack.errors import EXIT_CODES, UserError
from startrack.etl.ingest import ingest
from startrack.ml.artifact import save_artifact
from startrack.ml.model import ModelConfig, StarClassifier
from startrack.warehouse.store import Warehouse


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """Run ``startrack ARGV`` in-process; argparse's own refusals exit via SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def spec_warehouse(tmp_path) -> Warehouse:
    """A warehouse with two ingested spectra and no model."""
    for fiber in (1, 2):
        write_spec(tmp_path / spec_name(1000, 52000, fiber), fiber=fiber)
    wh = Warehouse(tmp_path / "wh")
    report = ingest(wh, spectra=[tmp_path], progress=False)
    assert report.spectra_added == 2
    return wh


def test_every_user_error_has_a_documented_exit_code() -> None:
    def family(cls):
        yield cls
        for sub in cls.__subclasses__():
            yield from family(sub)

    classes = list(family(UserError))
    assert len(classes) >= 10
    assert all(cls.exit_code in EXIT_CODES for cls in classes)


def test_help_lists_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in out


def test_score_before_any_train_is_exit_3(spec_warehouse, capsys) -> None:
    code, err = _cli(capsys, "score", "--warehouse", str(spec_warehouse.root), "--no-progress")
    assert code == 3
    assert "no trained model" in _one_error_line(err) and "startrack train" in err


def test_tampered_model_weights_are_refused_with_one_line(spec_warehouse, capsys, tmp_path):
    wh = spec_warehouse
    model_dir = wh.root / "models" / "m-tampered"
    save_artifact(
        model_dir, StarClassifier(ModelConfig(n_classes=3)), {"labels": ["A0", "F5", "G2"]}
    )
    witness = tmp_path / "pwned"

    class Payload:  # what a malicious model.pt would run if it were unpickled unsafely
        def __reduce__(self):
            return (os.system, (f"touch {witness}",))

    (model_dir / "model.pt").write_bytes(pickle.dumps({"weights": Payload()}))
    with wh.writer(command="register tampered model") as w:
        row = {"version": "m-tampered", "path": "models/m-tampered", "is_current": True}
        w.put_table("models", pd.DataFrame([{**row, "created_at": pd.Timestamp.now(tz="UTC")}]))
    code, err = _cli(capsys, "score", "--warehouse", str(wh.root), "--no-progress")
    assert code == 3
    line = _one_error_line(err)
    assert "model.pt" in line and "refused" in line and "startrack train" in line
    assert not witness.exists()
    # garbage bytes (a truncated download) get the same one line
    (model_dir / "model.pt").write_bytes(b"\x80\x02not a model" * 10)
    code, err = _cli(capsys, "score", "--warehouse", str(wh.root), "--no-progress")
    assert code == 3 and "refused" in _one_error_line(err)


def _enospc_from_duckdb_build(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "startrack.duckdb")


def _enospc_like_pyarrow(real):
    def write_table(table, where, *args, **kwargs):
        if "spectra" in str(where):
            raise OSError("[errno 28] Error writing bytes to file. Detail: No space left on device")
        return real(table, where, *args, **kwargs)

    return write_table


@pytest.mark.parametrize("where", ["building the snapshot", "writing a spectrum part"])
def test_full_disk_is_exit_4_and_cleans_up_at_once(tmp_path, capsys, monkeypatch, where):
    import pyarrow.parquet as pq

    from startrack.warehouse import store

    write_spec(tmp_path / spec_name(1000, 52000, 1), fiber=1)
    wh = Warehouse(tmp_path / "wh")
    assert ingest(wh, spectra=[tmp_path / spec_name(1000, 52000, 1)], progress=False).usable
    before = wh.current_id()
    parts_before = sorted((wh.root / "spectra").iterdir())
    write_spec(tmp_path / spec_name(1000, 52000, 2), fiber=2)
    if where == "building the snapshot":
        monkeypatch.setattr(store, "_build_duckdb", _enospc_from_duckdb_build)
    else:
        monkeypatch.setattr(pq, "write_table", _enospc_like_pyarrow(pq.write_table))
    new = str(tmp_path / spec_name(1000, 52000, 2))
    code, err = _cli(capsys, "ingest", "--warehouse", str(wh.root), new)
    assert code == 4
    assert "no space left on device" in _one_error_line(err)
    assert wh.current_id() == before
    assert list((wh.root / ".staging").iterdir()) == []  # cleaned now, not by the next writer
    assert sorted((wh.root / "spectra").iterdir()) == parts_before
    assert not list(wh.root.glob(".CURRENT*.tmp"))


def test_warehouse_path_that_is_a_file_is_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("hello")
    for argv in (["status"], ["sql", "select 1"], ["ingest", str(path)]):
        code, err = _cli(capsys, *argv, "--warehouse", str(path))
        assert code == 2, argv
        assert "is a file, not a directory" in _one_error_line(err)
    assert path.read_text() == "hello"


def test_errors_reach_a_real_shell_as_one_line(spec_warehouse) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "startrack.cli", "score", "--warehouse", str(spec_warehouse.root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("startrack score: error: no trained")
    assert "Traceback" not in proc.stderr


def test_readme_documents_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    assert [int(c) for c in cells if c.isdigit()] == list(EXIT_CODES)


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["simulate", "--stars", "0", "--out", "{tmp}/s"], 2, "--stars must be at least 1"),
        (["simulate", "--out", "{tmp}/a-file"], 2, "is a file, not a folder"),
        (["fetch", "--out", "{tmp}/a-file"], 2, "is a file, not a folder"),
        (["ingest", "{tmp}/no-such.csv"], 2, "no such catalog file"),
        (["sql", "delete from stars"], 2, "read-only"),
        (["sql", "select * from no_such_table"], 2, "no_such_table"),
        (["status"], 3, "is empty: run `startrack ingest`"),
        (["train", "--no-progress", "--no-baselines"], 3, "need at least 2 labels"),
        (["score", "--no-progress"], 3, "no trained model"),
        (["serve", "--port", "{taken}"], 2, "cannot listen on 127.0.0.1:"),
        (["demo", "--survey", "{tmp}/a-file", "--until", "simulate"], 2, "is a file, not a folder"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_each_command_ends_a_user_error_in_one_line(
    argv, code, says, spec_warehouse, tmp_path, capsys
) -> None:
    """What a user can get wrong in each command: one line, its documented exit code."""
    (tmp_path / "a-file").write_text("not a folder")
    sock, taken = _taken_port()
    with sock:
        wh = spec_warehouse.root if argv[0] not in ("status", "sql") else tmp_path / "empty"
        if argv[0] == "sql":
            wh = spec_warehouse.root
        args = [a.format(tmp=tmp_path, taken=taken) for a in argv]
        got, err = _cli(capsys, *args, "--warehouse", str(wh))
    assert got == code, err
    assert says in _one_error_line(err)
    assert got in EXIT_CODES


def test_the_cli_catches_one_family() -> None:
    """Errors the commands raise for users are all UserErrors: cli.py lists no other types."""
    from startrack.etl.ingest import NoInput
    from startrack.warehouse.sql import QueryFailed, QueryRefused
    from startrack.warehouse.store import WarehouseBusy, WarehouseEmpty

    for cls in (NoInput, QueryFailed, QueryRefused, WarehouseBusy, WarehouseEmpty):
        assert issubclass(cls, UserError), cls
    source = (Path(__file__).resolve().parents[1] / "startrack" / "cli.py").read_text()
    assert "except UserError" in source and "QueryFailed" not in source


def test_default_warehouse_is_outside_the_source_tree_and_the_old_one_is_still_found(
    tmp_path, monkeypatch, caplog
) -> None:
    import logging

    from startrack.config import ENV_WAREHOUSE, warehouse_dir

    monkeypatch.delenv(ENV_WAREHOUSE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert warehouse_dir() == tmp_path / "data" / "warehouse"
    # a warehouse published at the old default (./warehouse) is still used, and said so
    write_spec(tmp_path / spec_name(1000, 52000, 1), fiber=1)
    ingest(Warehouse(tmp_path / "warehouse"), spectra=[tmp_path], progress=False)
    with caplog.at_level(logging.INFO, logger="startrack.config"):
        assert warehouse_dir() == tmp_path / "warehouse"
    assert "old default location" in caplog.text
    # ... until the new location holds one
    ingest(Warehouse(tmp_path / "data" / "warehouse"), spectra=[tmp_path], progress=False)
    assert warehouse_dir() == tmp_path / "data" / "warehouse"
    assert warehouse_dir("elsewhere") == tmp_path / "elsewhere"
