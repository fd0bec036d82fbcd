"""The headless API: what the CLI and every page ask for (specs with their command lines), and the one-call
operations both surfaces share (a run, an extrapolation, a policy explanation)."""
