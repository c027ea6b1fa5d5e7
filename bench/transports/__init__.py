"""
The transports benchmark: what each way of reaching the gateway (raw TLS,
the HTTPS port, CONNECT through a proxy, the request tunnel streaming or
long-polling) costs in throughput and round trip.  Run C{run.py}.
"""
