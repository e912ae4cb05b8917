"""Enterprises' kept risk scores: every score from the API, a scored file or a batch job, the latest
tier of each enterprise, and the officers assigned to enterprises (挂点)."""
