"""Which upstream cases do not apply to a remote contents manager, and why."""

from __future__ import annotations

import os

import pytest

FS_BOUND = {
    "test_get_nb_invalid": "writes an invalid notebook on the FCM's disk",
    "test_get_404_hidden": "creates hidden files on the FCM's disk",
    "test_copy_400_hidden": "creates hidden files and folders on the FCM's disk",
    "test_upload_txt_hidden": "takes the FCM's on-disk contents_dir",
    "test_copy_put_400_hidden": "takes the FCM's on-disk contents_dir",
    "test_rename_400_hidden": "takes the FCM's on-disk contents_dir",
    "test_api.test_rename": "its final check probes the FCM's disk",
    "test_regression_is_hidden": "seeds hidden folders on disk and patches the FCM's is_hidden import",
    "test_save_in_subdirectory": "creates its folder with tmp_path.mkdir under the FCM root",
    "test_copy_big_dir": "builds a big folder on the FCM's disk",
    "test_created_timestamp": "uses os.utime on the FCM's files",
    "test_created_timestamp_fallback_to_epoch": "patches os.lstat",
    "test_base_model_invalid_timestamp_fallback": "patches os.lstat",
}
FCM_ONLY_FIXTURES = {"jp_file_contents_manager_class", "file_manager_with_notary"}
POLICY = {
    "test_copy_dir": "directory copy is optional policy (set JS_CM_RUN_OPTIONAL=1)",
    "test_delete_non_empty_folder": "FCM delete_to_trash/always_delete_dir policy (JS_CM_RUN_OPTIONAL=1)",
}
PLATFORM = {
    "test_created_uses_birthtime_on_macos": "macOS only",
    "test_created_uses_ctime_on_windows": "Windows only",
}
CM_FIXTURES = {"jp_contents_manager", "jp_large_contents_manager", "contents_manager", "jp_fetch"}


def skip_reason(item: pytest.Item) -> str | None:
    name = item.name.split("[")[0]
    fixtures = set(getattr(item, "fixturenames", ()))
    if name in PLATFORM:
        return PLATFORM[name]
    module = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else ""
    bound = FS_BOUND.get(name) or FS_BOUND.get(f"{module}.{name}")
    if bound:
        return "filesystem-bound: " + bound
    if fixtures & FCM_ONLY_FIXTURES or not fixtures & CM_FIXTURES:
        return "FileContentsManager-only (no contents-manager fixture to substitute)"
    if name in POLICY and not os.environ.get("JS_CM_RUN_OPTIONAL"):
        return "optional policy: " + POLICY[name]
    return None
