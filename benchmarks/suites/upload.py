"""4. Upload through JupyterLab's chunk protocol, then the push to the storage; also records the stall
figures while pushing (measurement 1) and the server's peak RSS growth (measurement 7)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import Any

from benchmarks.emulator import CallMark, raw_upload, upload_bytes
from benchmarks.env import PASSWORD, USER, Bench, Target
from benchmarks.measure import MiB, RssSampler, lag_read, lag_reset, mib, server_times
from benchmarks.rest import payload_chunks, payload_sha256
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99

PROFILES = (("cs3", "simple"), ("cs3-tus", "tus"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(4 * MiB):
            digest.update(piece)
    return digest.hexdigest()


async def one_upload(bench: Bench, target: Target, size: int) -> dict[str, Any]:
    """Chunk-upload one file and wait for it on the storage.

    The loop-lag recorder is read (and reset) just before the -1 chunk, so ``upload_lag`` covers the
    chunks 1 .. n-1 and ``push_lag`` the last chunk (staging commit, journaling, write-through wait)
    plus the push until the file is complete on the storage. "Visible" is timed from the moment the -1
    chunk was sent, because the CS3 manager may wait for the push (write-through) before replying.
    """
    name = f"upload-{size}.bin"
    seed = size % 9973
    mark = CallMark(target.admin) if target.admin else None
    if mark:
        await mark.start()
    await lag_reset(target)
    phases: dict[str, Any] = {}

    async def before_last() -> None:
        phases["upload_lag"] = await lag_read(target)
        await lag_reset(target)

    sampler = RssSampler(target.server.pid)
    sampler.start()
    try:
        result = await target.rest.upload(name, size, seed=seed, before_last=before_last)
        seen = await target.visible_at(name, size, timeout=max(60.0, size / (5 * MiB)))
        push_lag = await lag_read(target)
    finally:
        rss_growth = sampler.stop()
    upload_lag = phases.get("upload_lag") or push_lag
    chunk_ms = server_times(upload_lag, "PUT", "/" + name) + server_times(push_lag, "PUT", "/" + name)
    out: dict[str, Any] = {
        "chunk_server_ms": chunk_ms,
        "chunk_client_ms": result.chunk_ms,
        "last_chunk_ms": result.chunk_ms[-1] if result.chunk_ms else None,
        "upload_s": result.total_s,
        "visible_s": None if seen is None else max(0.0, seen[0] - result.last_chunk_sent),
        "upload_lag": upload_lag,
        "push_lag": push_lag,
        "rss_growth": rss_growth,
        "sent": upload_bytes(await mark.new_http()) if mark else None,
    }
    if seen is not None:
        on_disk = await asyncio.to_thread(_sha256_file, target.disk(name))
        out["content_ok"] = on_disk == await asyncio.to_thread(payload_sha256, size, seed)
    await target.rest.delete(name)
    return out


def write_payload(path: Path, size: int) -> Path:
    if not path.exists() or path.stat().st_size != size:
        with path.open("wb") as fh:
            for piece in payload_chunks(size, seed=size % 9973):
                fh.write(piece)
    return path


async def raw_baseline(bench: Bench, target: Target, size: int, protocol: str) -> float:
    """MiB/s of InitiateFileUpload + one PUT/PATCH of the whole file to the same emulator (best of
    ``raw_runs``: the physical limit, not a typical run)."""
    assert target.emulator is not None
    source = await asyncio.to_thread(write_payload, bench.workdir / f"payload-{size}.bin", size)
    name = f"raw-{size}.bin"
    seconds = min(
        [
            await raw_upload(target.emulator.grpc_address, USER, PASSWORD, name, source, size, protocol)
            for _ in range(bench.sizes.raw_runs)
        ]
    )
    with contextlib.suppress(OSError):
        target.disk(name).unlink()
    return size / MiB / seconds


def _ms(values: list[float], q: str) -> float | None:
    return (median(values) if q == "p50" else p99(values)) if values else None


async def run(bench: Bench) -> Measurement:
    sizes = bench.sizes
    m = Measurement(
        "upload",
        "Large uploads (chunk protocol, then the push to the storage)",
        "sequential `PUT /api/contents/<file>` of 1 MiB base64 chunks numbered 1, 2, …, -1 (as JupyterLab's "
        "file browser does); server time per chunk from tornado's request time inside the server; bytes "
        "sent to the storage from the emulator's HTTP log; raw baseline = InitiateFileUpload + one "
        "streamed PUT (simple) or PATCH (tus) of the same file to the same emulator",
        ", ".join(mib(s) for s in sizes.upload) + "; profiles cernbox (simple PUT) and ocis (tus)",
    )
    local = bench.target("local")
    local_runs: dict[int, dict[str, Any]] = {}
    if local is not None:
        for size in sizes.upload:
            try:
                local_runs[size] = await one_upload(bench, local, size)
            except Exception as exc:
                m.not_available("local", f"{mib(size)}: {type(exc).__name__}: {exc}")
    for label, protocol in PROFILES:
        target = bench.target(label)
        if target is None:
            m.not_available(f"cs3sync ({protocol})", bench.unavailable.get(label, "not started"))
            continue
        for size in sizes.upload:
            what = f"{mib(size)} {protocol}"
            try:
                run_ = await one_upload(bench, target, size)
            except Exception as exc:
                m.not_available(f"cs3sync ({protocol})", f"{mib(size)}: {type(exc).__name__}: {exc}")
                continue
            base = local_runs.get(size, {})
            for q in ("p50", "p99"):
                m.add(
                    Figure(
                        f"{what}: server time per chunk {q}",
                        "ms",
                        _ms(run_["chunk_server_ms"], q),
                        _ms(base.get("chunk_server_ms", []), q),
                        headline=q == "p50",
                    )
                )
            m.add(Figure(f"{what}: all chunks (client, wall)", "s", run_["upload_s"], base.get("upload_s")))
            sent = run_["sent"]
            m.add(
                Figure(
                    f"{what}: bytes sent to the storage",
                    "bytes",
                    sent,
                    size,
                    baseline_label="file size",
                    goal="= file size",
                    met=None if sent is None else sent == size,
                )
            )
            visible = run_["visible_s"]
            m.add(Figure(f"{what}: last chunk sent → complete on the storage", "s", visible))
            m.add(
                Figure(
                    f"{what}: server time of the last chunk (-1)",
                    "ms",
                    run_["chunk_server_ms"][-1] if run_["chunk_server_ms"] else None,
                    (base.get("chunk_server_ms") or [None])[-1],
                )
            )
            try:
                raw = await raw_baseline(bench, target, size, protocol)
            except Exception as exc:
                raw = None
                m.not_available(f"raw {protocol} baseline", f"{type(exc).__name__}: {exc}")
            push = size / MiB / visible if visible else None
            m.add(
                Figure(
                    f"{what}: push throughput",
                    "MiB/s",
                    push,
                    raw,
                    baseline_label="raw PUT" if protocol == "simple" else "raw PATCH",
                    headline=True,
                )
            )
            if run_.get("content_ok") is False:
                m.notes.append(f"{what}: the file on the storage does NOT match the bytes uploaded")
            elif run_.get("content_ok"):
                m.notes.append(f"{what}: the file on the storage matches the uploaded bytes (sha256)")
            if size == sizes.stall_upload:
                bench.shared[f"stall.push.{label}"] = run_["push_lag"]
                bench.shared[f"stall.upload.{label}"] = run_["upload_lag"]
                bench.shared[f"memory.{label}"] = run_["rss_growth"]
    biggest = local_runs.get(sizes.stall_upload)
    if biggest is not None:
        bench.shared["stall.upload.local"] = biggest["upload_lag"]
        bench.shared["stall.push.local"] = biggest["push_lag"]
        bench.shared["memory.local"] = biggest["rss_growth"]
    return m
