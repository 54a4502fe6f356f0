"""Scenario simulation: scenario files (:mod:`.scenario`), call generation (:mod:`.demand`), the simulator (:mod:`.simulation`), replications (:mod:`.parallel`) and statistics (:mod:`.stats`)."""
