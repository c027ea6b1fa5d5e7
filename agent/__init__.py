"""
The customer's program.  So far: the connectivity test (C{ponte-agent
--check}); the session window comes with the agent issue.
"""
