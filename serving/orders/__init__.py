"""Rectification orders (整改单) and risk supervision (督办): the loop from a confirmed report to its closing.

store.py keeps orders, their append-only transitions, the webhook outbox and reporters' receipts;
states.py is the state machine; app.py the HTTP routes; dashboard.py the officers' figures.
"""
