"""The marketers' studio: audiences (being built in issue 16)."""
