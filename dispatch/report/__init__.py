"""Reports of simulation results: terminal summary, CSV, JSON, plots and maps (:mod:`.outputs`)."""
