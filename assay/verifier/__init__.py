"""The Z3 side of assay: the Python → Z3 translation (`prove` and its parts), the proof
obligations of `assay verify` (`verify`), suggested preconditions (`suggest`) and protocol
compatibility of connected ports (`compat`).  Explicit-state search lives in `assay.checker`."""
