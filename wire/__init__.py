"""
Ponte's shared protocol package: session codes, AMP command classes, TLS
settings and client helpers used by the gateway, the console and the agent.
"""
