"""Upload a local data folder to the datastore at AZML_DATAPATH (the seed's upload-data.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib.backends import get_backend
from amllib.cli import run_main, settings_requiring


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True, help="local folder whose entire contents are uploaded")
    args = parser.parse_args()
    settings = settings_requiring("datapath")
    backend = get_backend(settings)
    print(f"### Uploading {args.data_dir} to datastore path {settings.datapath!r} ({backend.name} backend)")
    data = backend.upload_data(Path(args.data_dir), target_path=settings.datapath)
    print(f"### Uploaded {data.files} files, {data.bytes} bytes; data version {data.digest}")
    return 0


if __name__ == "__main__":
    run_main(main)
