"""Pure domain rules: data in, data out. No I/O: no Slack, Docker, HTTP or database here."""
