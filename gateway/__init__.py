"""
The Ponte gateway: TLS listeners, session-code routing, the relay, accounts
and records.
"""
