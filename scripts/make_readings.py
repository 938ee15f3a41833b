"""Build resources/nom_readings.tsv: Nôm / Hán-Nôm characters with their quốc ngữ readings.

    python scripts/make_readings.py ../shared/data/nom/nom_codepoints.tsv

Source: the kVietnamese field of Unihan 15.0 (Unicode, Inc.; Unicode License v3), as listed
in nom_codepoints.tsv. Only characters with at least one reading are kept.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "resources" / "nom_readings.tsv"
HEADER = ("# Nôm / Hán-Nôm characters and their quốc ngữ readings.\n"
          "# Source: Unihan 15.0 kVietnamese (Unicode, Inc.), Unicode License v3 "
          "(https://www.unicode.org/license.txt).\n"
          "# Columns: codepoint, char, readings (space-separated).\n")


def main() -> None:
    src = Path(sys.argv[1])
    rows = []
    with src.open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            readings = row["kVietnamese"].strip()
            if readings:
                rows.append((row["codepoint"], row["char"], readings))
    with OUT.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for r in rows:
            f.write("\t".join(r) + "\n")
    print(f"wrote {len(rows)} characters to {OUT}")


if __name__ == "__main__":
    main()
