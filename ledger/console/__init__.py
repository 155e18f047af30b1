"""The web console's server side: sessions for human users (auditors, operators)."""
