"""The command line: thin commands over the library; no business logic lives here."""
