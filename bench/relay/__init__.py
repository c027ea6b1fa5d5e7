"""
The relay benchmark: the Ponte gateway against haproxy and a direct TLS
connection, between the same two fast blocking clients.  Run C{run.py}.
"""
