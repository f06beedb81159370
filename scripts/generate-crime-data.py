"""Write synthetic police street-crime data as crime.zip (YYYY-MM/*.csv inside) for scikit-batcomputer.py.

The real data (data.police.uk) can't be downloaded here. These rows have the same
columns, and whether a crime ends with someone caught depends on the force and the
crime type (plus noise), so a model has something to learn.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import zipfile
from pathlib import Path

COLUMNS = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
]
FORCES = {  # force: how often it catches someone, relative
    "Avon and Somerset Constabulary": 0.9,
    "Cheshire Constabulary": 1.2,
    "Durham Constabulary": 1.4,
    "Kent Police": 1.0,
    "Merseyside Police": 0.8,
    "Metropolitan Police Service": 0.6,
    "Northumbria Police": 1.1,
    "West Yorkshire Police": 0.7,
}
CRIMES = {  # crime type: base chance that someone is caught
    "Anti-social behaviour": 0.05,
    "Bicycle theft": 0.05,
    "Burglary": 0.12,
    "Criminal damage and arson": 0.15,
    "Drugs": 0.75,
    "Other theft": 0.08,
    "Possession of weapons": 0.65,
    "Public order": 0.35,
    "Robbery": 0.2,
    "Shoplifting": 0.45,
    "Theft from the person": 0.06,
    "Vehicle crime": 0.06,
    "Violence and sexual offences": 0.3,
    "Other crime": 0.25,
}
CAUGHT = [
    "Offender given a caution",
    "Local resolution",
    "Awaiting court outcome",
    "Offender fined",
    "Suspect charged as part of another case",
    "Offender given community sentence",
]
NOT_CAUGHT = [
    "Investigation complete; no suspect identified",
    "Unable to prosecute suspect",
    "Status update unavailable",
    "Under investigation",
]


def crime_row(rng: random.Random, month: str) -> list[str]:
    force = rng.choice(list(FORCES))
    crime = rng.choice(list(CRIMES))
    caught = rng.random() < min(0.95, CRIMES[crime] * FORCES[force])
    outcome = "" if crime == "Anti-social behaviour" else rng.choice(CAUGHT if caught else NOT_CAUGHT)
    lsoa = rng.randint(1000, 9999)
    return [
        f"{rng.getrandbits(128):032x}" if outcome else "",
        month,
        force,
        force,
        f"{rng.uniform(-3.5, 1.5):.6f}",
        f"{rng.uniform(50.5, 55.5):.6f}",
        "On or near High Street",
        f"E0100{lsoa}",
        f"Somewhere {lsoa % 300:03d}A",
        crime,
        outcome,
        "",
    ]


def write_zip(out_dir: Path, *, rows: int, year: int, months: int, seed: int) -> Path:
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "crime.zip"
    per_month = [rows // months + (1 if i < rows % months else 0) for i in range(months)]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, count in enumerate(per_month):
            month = f"{year}-{index + 1:02d}"
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(COLUMNS)
            for _ in range(count):
                writer.writerow(crime_row(rng, month))
            archive.writestr(f"{month}/{month}-synthetic-street.csv", buffer.getvalue())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data/batcomputer", help="folder to write crime.zip into")
    parser.add_argument("--rows", type=int, default=20000, help="total rows")
    parser.add_argument("--year", type=int, default=2017)
    parser.add_argument("--months", type=int, default=12, choices=range(1, 13), metavar="1-12")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    target = write_zip(Path(args.out), rows=args.rows, year=args.year, months=args.months, seed=args.seed)
    print(f"wrote {args.rows} rows to {target}")


if __name__ == "__main__":
    main()
