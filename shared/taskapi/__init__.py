"""Task API shared layer: settings, models, services, AWS adapters, identity and the HTTP app."""
