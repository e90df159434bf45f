"""The command line: thin Typer commands over the library (no SQL, no business rules here)."""
