"""Upload a local data folder to the datastore at AZML_DATAPATH (the seed's upload-data.py).

    python scripts/upload-data.py --data-dir data/titanic
    python scripts/upload-data.py --data-dir data/titanic --datapath titanic-data --json

Prints the data version (sha256 of the files) and hands it to the next pipeline step as AZML_DATA_VERSION
(##vso[task.setvariable]) and data_version ($GITHUB_OUTPUT).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib import cli
from amllib.backends import get_backend
from amllib.cli import ScriptParser, UploadProgress, run_main
from amllib.files import list_files


def main() -> int:
    parser = ScriptParser(__doc__, reads=("datapath",), overrides=("datapath",))
    parser.add_argument("--data-dir", required=True, help="local folder whose entire contents are uploaded")
    args = parser.parse()
    out = cli.output
    settings = parser.settings(args, "datapath")
    backend = get_backend(settings)
    files = list_files(Path(args.data_dir)) if Path(args.data_dir).is_dir() else []
    total = sum(full.stat().st_size for _, full in files)
    out.progress(
        f"### Uploading {args.data_dir} ({len(files)} files) to datastore path {settings.datapath!r} "
        f"({backend.name} backend)"
    )
    progress = UploadProgress(files=len(files), total=total, quiet=args.quiet, stream=out.text)
    try:
        data = backend.upload_data(Path(args.data_dir), target_path=settings.datapath, progress=progress)
    finally:
        progress.close()
    out.say(f"### Uploaded {data.files} files, {data.bytes} bytes; data version {data.digest}")
    out.variable("AZML_DATA_VERSION", data.digest, github_name="data_version")
    out.result(
        {
            "data_version": data.digest,
            "path": data.path,
            "files": data.files,
            "bytes": data.bytes,
            "backend": backend.name,
        }
    )
    return 0


if __name__ == "__main__":
    run_main(main)
