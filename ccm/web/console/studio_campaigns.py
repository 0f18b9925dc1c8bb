"""The marketers' studio: campaigns (being built in issue 16)."""
