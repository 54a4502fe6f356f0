"""Roads: OpenStreetMap reading (:mod:`.osm`), vehicle profiles (:mod:`.profiles`), the compiled network and its cache (:mod:`.network`), and locating points on it (:mod:`.snapping`)."""
