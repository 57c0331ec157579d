"""Media for narrated outputs: narration providers (speech from text) and what turns speech and
frames into files."""
