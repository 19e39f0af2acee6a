"""Optional integrations: retry libraries and LLM SDKs (each imports its library lazily)."""
