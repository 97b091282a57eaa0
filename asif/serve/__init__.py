"""The query service: a live model following its anchor table, behind a FastAPI app.

`LiveModel` (snapshots swapped atomically, incremental updates), `TableWatcher` (polls the
table's version), `create_app` (the FastAPI app), `add_serve_parser` (the `asif serve` CLI).
"""
