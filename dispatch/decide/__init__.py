"""Decisions: incident types (:mod:`.incidents`), run cards (:mod:`.runcards`), hospitals (:mod:`.hospitals`), one-call recommendations (:mod:`.recommend`) and surge assignment (:mod:`.assign`)."""
