"""Infrastructure every stage uses: one-line errors, atomic file writes, data paths, typed settings, rotation math."""
