"""The Faust application: tables (tables.py), agents that move events between Kafka and the
pure decision functions in ``streams/engine`` (agents.py), and web views over the tables
(views.py). ``create_app`` wires them from lockstock's settings and broker profile."""
