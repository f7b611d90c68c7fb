"""The `tfxfer` command line (`tfxfer ...` or `python -m tfxfer ...`)."""
