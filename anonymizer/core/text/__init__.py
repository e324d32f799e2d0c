"""Free text: detectors, decoding disguises, and the people of a roster."""
