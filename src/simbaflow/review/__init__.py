"""Review stage: figures, pages and the report's artefacts."""
