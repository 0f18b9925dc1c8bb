"""The marketers' studio: templates (being built in issue 16)."""
