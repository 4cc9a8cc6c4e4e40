"""`python -m assay ...` is the `assay` command (as `python -m assay.cli` is)."""
from assay.entry import main

main()
