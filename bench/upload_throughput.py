"""POST /data with a large tar body: throughput against `cp -r` + `sync`, and the server's memory growth.

    python bench/upload_throughput.py [--size-mib 1024] [--files 64] [--workdir /tmp]

Targets (issue 3): the upload runs at ≥ 35 % of a plain copy of the same files on the
same disk, and the server's peak memory grows by < 64 MiB whatever the size. Both
are measured in the same run, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import memory_kib, start_uvicorn, stop

BLOCK = 1 << 20


def make_files(folder: Path, *, size_mib: int, files: int) -> None:
    folder.mkdir(parents=True)
    per_file = size_mib // files
    chunk = os.urandom(BLOCK)
    for index in range(files):
        with (folder / f"part-{index:04d}.bin").open("wb") as handle:
            for block in range(per_file):
                handle.write(chunk[block % 7 :] + chunk[: block % 7])


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - start


def body(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            yield block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-upload-", dir=args.workdir))
    try:
        source = work / "source"
        make_files(source, size_mib=args.size_mib, files=args.files)
        archive = work / "data.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(source, arcname=".")
        subprocess.run(["sync"], check=True)
        total_mib = sum(p.stat().st_size for p in source.iterdir()) / BLOCK

        copy_seconds = timed(lambda: subprocess.run(["cp", "-r", str(source), str(work / "copy")], check=True))
        shutil.rmtree(work / "copy")

        env = {"AZML_HOME": str(work / "aml"), "AZML_MAX_UPLOAD_BYTES": str(4 * args.size_mib * BLOCK)}
        service, url = start_uvicorn("service.app:app", env)
        try:
            with httpx.Client(base_url=url, timeout=600) as http:
                with tarfile.open(work / "small.tar", "w") as small:
                    small.add(source / "part-0000.bin", arcname="warm.bin")
                http.post(
                    "/data",
                    params={"path": "warm", "wait": 60},
                    content=(work / "small.tar").read_bytes(),
                    headers={"content-type": "application/x-tar"},
                ).raise_for_status()
                before = memory_kib(service.pid, "VmRSS")

                def upload() -> None:
                    response = http.post(
                        "/data",
                        params={"path": "big", "wait": 600},
                        content=body(archive),
                        headers={"content-type": "application/x-tar"},
                    )
                    response.raise_for_status()
                    assert response.json()["status"] == "Completed", response.text

                upload_seconds = timed(upload)
                peak = memory_kib(service.pid, "VmHWM")
        finally:
            stop(service)
        growth_mib = max(0, peak - before) / 1024
        print(f"\n{total_mib:.0f} MiB in {args.files} files")
        print(f"cp -r + sync          {copy_seconds:7.2f} s  {total_mib / copy_seconds:8.1f} MiB/s")
        print(
            f"POST /data (tar) sync {upload_seconds:7.2f} s  {total_mib / upload_seconds:8.1f} MiB/s"
            f"  = {copy_seconds / upload_seconds:.0%} of the copy (target ≥ 35 %)"
        )
        print(
            f"server RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB: "
            f"growth {growth_mib:.1f} MiB (target < 64 MiB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
