"""Each storage behaviour of docs/storage-behaviours.md is on by default in the profile whose server has
it. The wire tests check each behaviour as the profile answers it; this pins which answer that is, so a
profile quietly falling back to the kind variant fails here (rows 3, 4, 8, 9 and 10 have wire tests that
follow the switch either way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cs3sync.emulator import EmulatorConfig

#: (row, switch): the cernbox (Reva master + EOS) and the ocis (Reva edge + decomposedfs) answer.
REAL: dict[tuple[int, str], tuple[Any, Any]] = {
    (1, "upload_missing_parent"): ("put_409", "failed_precondition"),
    (2, "locked_write_status"): (500, 409),
    (3, "info_paths"): ("absolute", "basename"),
    (3, "checksum_type"): ("adler32", "sha1"),
    (4, "untyped_errors"): (True, False),
    (5, "move_onto_existing"): ("eos", "already_exists"),
    (6, "missing_file_on_lock_ops"): ("internal", "not_found"),
    (7, "quota_refusal"): ("put_500", "initiate"),
    (8, "empty_file_checksum"): (False, True),
    (8, "stat_reports_expired_locks"): (True, False),
    (8, "mtime_whole_seconds"): (True, False),
    (8, "dir_size"): ("tree", "tree"),
    (8, "spaces_registry"): ("reva_master", "complete"),
    (8, "resource_space_id"): ("bare", "prefixed"),
    (9, "put_needs_upload_length"): (True, False),
    (9, "replayable_upload_tokens"): (True, False),
    (10, "token_rejection"): ("empty_denied", "empty_denied"),
}


@pytest.mark.parametrize("profile", ["cernbox", "ocis"])
def test_each_profile_answers_like_its_server_by_default(tmp_path: Path, profile: str) -> None:
    config = EmulatorConfig(root=tmp_path, profile=profile)  # type: ignore[arg-type]
    wrong = {
        f"row {row}: {key}": getattr(config, key)
        for (row, key), answers in REAL.items()
        if getattr(config, key) != answers[profile == "ocis"]
    }
    assert not wrong, wrong
