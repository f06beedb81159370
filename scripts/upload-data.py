"""Upload a local data folder to the datastore at AZML_DATAPATH (the seed's upload-data.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib.backends import get_backend
from amllib.cli import UploadProgress, run_main, settings_requiring
from amllib.files import list_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True, help="local folder whose entire contents are uploaded")
    parser.add_argument("--quiet", action="store_true", help="no progress (the result line is still printed)")
    args = parser.parse_args()
    settings = settings_requiring("datapath")
    backend = get_backend(settings)
    files = list_files(Path(args.data_dir)) if Path(args.data_dir).is_dir() else []
    total = sum(full.stat().st_size for _, full in files)
    if not args.quiet:
        print(
            f"### Uploading {args.data_dir} ({len(files)} files) to datastore path {settings.datapath!r} "
            f"({backend.name} backend)",
            flush=True,
        )
    progress = UploadProgress(files=len(files), total=total, quiet=args.quiet)
    try:
        data = backend.upload_data(Path(args.data_dir), target_path=settings.datapath, progress=progress)
    finally:
        progress.close()
    print(f"### Uploaded {data.files} files, {data.bytes} bytes; data version {data.digest}")
    return 0


if __name__ == "__main__":
    run_main(main)
