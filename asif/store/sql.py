"""SQL literals for LanceDB filters (`where`, `delete`), which take SQL text, not parameters."""


def quote(value: str) -> str:
    """`value` as a SQL string literal: in single quotes, with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
