"""Workspace locations: paths and file:// in place; object-store URIs staged and pushed back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailormind.data import workspace_location as location
from tailormind.data.workspace_location import (
    StagedWorkspace,
    is_in_place,
    local_path,
    open_location,
)
from tailormind.errors import WorkspaceError


def test_paths_and_file_uris_are_used_in_place(tmp_path: Path) -> None:
    assert is_in_place(str(tmp_path)) and is_in_place("relative/ws")
    assert is_in_place(f"file://{tmp_path}")
    assert not is_in_place("s3://bucket/ws") and not is_in_place("gs://bucket/ws")
    assert local_path(f"file://{tmp_path}/a%20b") == tmp_path / "a b"
    with open_location(f"file://{tmp_path}") as where:
        assert where.path == tmp_path and not where.staged and where.actor_resources() == {}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_staged_workspace_pulls_pushes_and_deletes(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "parts").mkdir(parents=True)
    (remote / "workspace.json").write_text("{}")
    (remote / "items.parquet").write_bytes(b"items-v1")
    (remote / "parts" / "00001.parquet").write_bytes(b"part")
    staged = StagedWorkspace(f"file://{remote}", tmp_path / "stage")
    assert staged.pull() == 3
    assert _tree(tmp_path / "stage") == _tree(remote)
    assert staged.pull() == 0  # nothing changed remotely: nothing copied again

    stage = tmp_path / "stage"
    (stage / "items.parquet").write_bytes(b"items-v2, longer")
    (stage / "profiles.parquet").write_bytes(b"profiles")
    (stage / "workspace.json").write_text('{"tables": ["profiles"]}')
    (stage / "parts" / "00001.parquet").unlink()
    (stage / ".items.parquet.123.tmp").write_bytes(b"half-written")  # never uploaded
    pushed, deleted = staged.push()
    assert (pushed, deleted) == (3, 1)
    assert _tree(remote) == {"workspace.json": b'{"tables": ["profiles"]}',
                             "items.parquet": b"items-v2, longer", "profiles.parquet": b"profiles"}
    assert staged.push() == (0, 0)


def test_the_manifest_is_uploaded_last(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    staged = StagedWorkspace(f"file://{remote}", tmp_path / "stage")
    staged.pull()
    for name in ("workspace.json", "a.parquet", "z.parquet"):
        (tmp_path / "stage" / name).write_text(name)
    order: list[str] = []
    real_open = staged.fs.open_output_stream

    def recording_open(path: str, *args, **kwargs):
        order.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    staged.fs = type("Recording", (), {"open_output_stream": staticmethod(recording_open),
                                        "create_dir": staged.fs.create_dir,
                                        "get_file_info": staged.fs.get_file_info,
                                        "delete_file": staged.fs.delete_file})()
    staged.push()
    assert order[-1] == "workspace.json" and sorted(order) == ["a.parquet", "workspace.json",
                                                               "z.parquet"]


def test_open_location_stages_and_pushes_even_on_failure(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "bucket" / "ws"
    remote.mkdir(parents=True)
    (remote / "workspace.json").write_text("{}")
    monkeypatch.setattr(location, "is_in_place", lambda uri: False)  # treat file:// as remote
    monkeypatch.setenv("TAILORMIND_STAGING_DIR", str(tmp_path / "staging"))
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="stage failed"):
        with open_location(f"file://{remote}", log=lines.append) as where:
            assert where.staged and where.path.is_relative_to(tmp_path / "staging")
            assert (where.path / "workspace.json").is_file()
            (where.path / "part-1.parquet").write_bytes(b"done before the failure")
            raise RuntimeError("stage failed")
    assert (remote / "part-1.parquet").read_bytes() == b"done before the failure"
    assert lines[0].startswith(f"workspace: staged file://{remote}")
    assert lines[-1] == f"workspace: pushed 1 file(s) to file://{remote}, deleted 0"


def test_unusable_uris_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="cannot open workspace URI 'nosuch://x/ws'"):
        StagedWorkspace("nosuch://x/ws", tmp_path / "stage")
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(WorkspaceError, match="is not a directory"):
        StagedWorkspace(f"file://{afile}", tmp_path / "stage").pull()


def test_staged_actors_go_to_the_driver_node_which_needs_cpus(monkeypatch) -> None:
    import ray

    ip = ray.util.get_node_ip_address()
    nodes = [{"Alive": True, "NodeManagerAddress": ip, "Resources": {"CPU": 2.0}}]
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert location.node_resources() == {f"node:{ip}": 0.001}
    nodes[0]["Resources"] = {"memory": 1e9}  # a KubeRay head: num-cpus 0
    with pytest.raises(WorkspaceError, match="offers Ray no CPUs"):
        location.node_resources()


def test_a_remote_change_of_the_same_size_is_pulled_again(tmp_path: Path) -> None:
    import os

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "workspace.json").write_text('{"v": 1}')
    staged = StagedWorkspace(f"file://{remote}", tmp_path / "stage")
    assert staged.pull() == 1
    (remote / "workspace.json").write_text('{"v": 2}')  # same size, later mtime
    stat = (remote / "workspace.json").stat()
    os.utime(remote / "workspace.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = StagedWorkspace(f"file://{remote}", tmp_path / "stage")  # a later job
    assert again.pull() == 1
    assert (tmp_path / "stage" / "workspace.json").read_text() == '{"v": 2}'
    assert again.pull() == 0
