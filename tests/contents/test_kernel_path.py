"""Where kernels start (contents/kernels.py): in the notebook's folder on the local mount of the CS3
root, given relative to the server's root_dir; without a mount, in root_dir itself."""

from __future__ import annotations

from pathlib import Path

from contents.kernels import kernel_path


def test_without_a_local_mount_kernels_start_in_the_server_root(tmp_path: Path) -> None:
    assert kernel_path("", str(tmp_path), "analysis/run.ipynb") == ""


def test_with_the_mount_as_server_root_the_notebook_folder_is_the_kernel_folder(tmp_path: Path) -> None:
    assert kernel_path(str(tmp_path), str(tmp_path), "analysis/run.ipynb") == "analysis"
    assert kernel_path(str(tmp_path), None, "/analysis/deep/run.ipynb") == "analysis/deep"
    assert kernel_path(str(tmp_path), str(tmp_path), "run.ipynb") == ""


def test_a_mount_inside_the_server_root_is_given_relative_to_it(tmp_path: Path) -> None:
    mount = tmp_path / "cernbox"
    mount.mkdir()
    assert kernel_path(str(mount), str(tmp_path), "analysis/run.ipynb") == "cernbox/analysis"
