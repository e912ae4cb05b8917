"""Workers' claims (职工诉求一张网): one queue for every channel, grouped into cases, dispatched,
closed, rated by the workers through their receipts, and feeding the labour-risk model (docs/claims.md)."""
