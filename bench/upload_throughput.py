"""POST /data with a large tar body beside what its own stack can take in, and the server's memory growth.

    python bench/upload_throughput.py [--size-mib 1024] [--files 64] [--rounds 3] [--workdir /tmp]

Side by side, interleaved, medians of `--rounds`: a durable copy of the files (`cp -r` + `sync`),
the service's POST /data of their tar (unpacked, hashed, committed as a data version, `sync`), and
a bare Starlette endpoint in the same venv that streams the same body into one file with sha256 and
fsync (bench/bare_app.py). Targets: the service at ≥ 0.9 of the bare endpoint (issue 18), at ≥ 35 %
of the copy (issue 3), and its peak memory growing by < 64 MiB whatever the size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
    parser.add_argument("--rounds", type=int, default=3)
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

        env = {"AZML_HOME": str(work / "aml"), "AZML_MAX_UPLOAD_BYTES": str(4 * args.size_mib * BLOCK)}
        service, url = start_uvicorn("service.app:app", env)
        bare, bare_url = start_uvicorn("bench.bare_app:app", {"BENCH_DIR": str(work)})
        times: dict[str, list[float]] = {"copy": [], "service": [], "bare": []}
        try:
            with httpx.Client(base_url=url, timeout=600) as http, httpx.Client(base_url=bare_url, timeout=600) as raw:
                with tarfile.open(work / "small.tar", "w") as small:
                    small.add(source / "part-0000.bin", arcname="warm.bin")
                http.post(
                    "/data",
                    params={"path": "warm", "wait": 60},
                    content=(work / "small.tar").read_bytes(),
                    headers={"content-type": "application/x-tar"},
                ).raise_for_status()
                raw.post("/ingest", content=(work / "small.tar").read_bytes()).raise_for_status()
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

                def ingest() -> None:
                    raw.post("/ingest", content=body(archive)).raise_for_status()

                def copy() -> None:
                    subprocess.run(["cp", "-r", str(source), str(work / "copy")], check=True)

                for _ in range(args.rounds):
                    times["copy"].append(timed(copy))
                    shutil.rmtree(work / "copy")
                    times["service"].append(timed(upload))
                    times["bare"].append(timed(ingest))
                peak = memory_kib(service.pid, "VmHWM")
        finally:
            stop(service)
            stop(bare)
        growth_mib = max(0, peak - before) / 1024
        copy_s, service_s, bare_s = (statistics.median(times[k]) for k in ("copy", "service", "bare"))
        print(f"\n{total_mib:.0f} MiB in {args.files} files; medians of {args.rounds} interleaved rounds")
        print(f"cp -r + sync                  {copy_s:7.2f} s  {total_mib / copy_s:8.1f} MiB/s")
        print(f"bare endpoint (1 file, fsync) {bare_s:7.2f} s  {total_mib / bare_s:8.1f} MiB/s")
        print(
            f"POST /data (tar) + sync       {service_s:7.2f} s  {total_mib / service_s:8.1f} MiB/s"
            f"  = {bare_s / service_s:.2f} of the bare endpoint (target ≥ 0.9), "
            f"{copy_s / service_s:.0%} of the copy (target ≥ 35 %)"
        )
        for name in ("copy", "service", "bare"):
            print(f"  {name:8} rounds: " + ", ".join(f"{total_mib / t:.0f}" for t in times[name]) + " MiB/s")
        print(
            f"server RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB: "
            f"growth {growth_mib:.1f} MiB (target < 64 MiB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
