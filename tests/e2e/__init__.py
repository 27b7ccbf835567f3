"""End-to-end tests: the real `reconciler` command, as a subprocess, against a local
WorkSpaces endpoint (moto's server with the fidelity layer of `tests/fidelity`)."""
