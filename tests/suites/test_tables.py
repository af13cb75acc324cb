"""The README's generated tables are what their results files say (benchmarks.tables)."""

from __future__ import annotations

import re

from benchmarks import tables


def test_the_readme_tables_match_their_results_files():
    assert tables.main(["--check"]) == 0


def test_a_typed_figure_is_caught():
    with open(tables.README) as f:
        text = f.read()
    start = text.index("<!-- table:pretrained_test_cpu -->")
    # type a figure by hand into the first row of the generated table
    typed = text[:start] + re.sub(r"\| \d+\.\d% \(", "| 12.3% (", text[start:], count=1)
    assert typed != text
    assert tables.render(typed) == text  # rendering restores the measured figure
