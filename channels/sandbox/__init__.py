"""Local servers that speak the Graph API, the YouTube Data API and SMTP (tests, demo)."""
