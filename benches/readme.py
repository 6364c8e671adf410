"""Put the latest benchmark results into the README.

Usage::

    python benches/readme.py bench-results README.md

The README marks each embedded result with a pair of comments::

    <!-- bench:NAME -->
    ...replaced...
    <!-- /bench:NAME -->

and NAME.md in the results folder supplies the text: for the capability scripts
(``exposures``, ``attribution``, ``diversification``) their first Markdown table, for the
others (``comparisons``, ``scaling``) the whole file. The chart ``scaling.png`` is copied
to ``docs/img``. A marker whose result file is missing is left as it is.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sys
from pathlib import Path

WHOLE = ("comparisons", "scaling")


def first_table(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise SystemExit("a results file holds no Markdown table")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def splice(readme: str, results: Path) -> tuple[str, list[str]]:
    done = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        source = results / f"{name}.md"
        if not source.exists():
            return match.group(0)
        text = source.read_text().strip()
        body = text if name in WHOLE else first_table(text)
        done.append(name)
        stamp = f"_Latest run: {dt.date.today().isoformat()}._"
        return f"<!-- bench:{name} -->\n{stamp}\n\n{body}\n<!-- /bench:{name} -->"

    pattern = re.compile(r"<!-- bench:(\w+) -->.*?<!-- /bench:\1 -->", re.S)
    return pattern.sub(replace, readme), done


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    results, readme = Path(argv[0]), Path(argv[1])
    text, done = splice(readme.read_text(), results)
    readme.write_text(text)
    chart = results / "scaling.png"
    if chart.exists():
        target = readme.parent / "docs" / "img" / "scaling.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, target)
    print(f"README: updated {', '.join(done) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
