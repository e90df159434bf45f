"""MkDocs hook: the exit-code table is generated from ``truelabel_db.errors.ExitCode``.

The page holds a placeholder; the table that replaces it is read from the enum, so the
documentation cannot drift from what the CLI returns.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "<!-- exit-codes -->"


def exit_code_table() -> str:
    from truelabel_db.errors import exit_code_meanings

    rows = ["| code | name | meaning |", "|---:|---|---|"]
    rows += [f"| {code} | `{name}` | {meaning} |" for code, name, meaning in exit_code_meanings()]
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, exit_code_table())
    return markdown
