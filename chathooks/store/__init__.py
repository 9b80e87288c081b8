"""Every table and every SQL statement of chathooks; nothing outside this package queries."""
